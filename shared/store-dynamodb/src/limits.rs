//! [`RateLimitStore`]: one item per limit bucket and window in the connections table,
//! `LIMIT#{bucket}` / `W#{windowStart}`, its TTL the window's end.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::limits::{Allowance, Limit};
use rnd_domain::ports::{RateLimitStore, StoreError};

use crate::DynamoStore;
use crate::error::written;
use crate::keys::{TTL, key, n};

#[async_trait]
impl RateLimitStore for DynamoStore {
    /// One `UpdateItem` `ADD uses :one` conditioned on `uses < limit` (or a new window): a
    /// refused condition is a full window.
    async fn take(
        &self,
        limit: Limit,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Allowance, StoreError> {
        let start = limit.window_start(now);
        let end = start + limit.window;
        let result = self
            .client
            .update_item()
            .table_name(self.connections_table())
            .set_key(Some(key(
                format!("LIMIT#{}", limit.bucket(subject)),
                format!("W#{}", start.timestamp_millis()),
            )))
            .update_expression("ADD #uses :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#uses) OR #uses < :cap")
            .expression_attribute_names("#uses", "uses")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(limit.per_window))
            .expression_attribute_values(":ttl", n(end.timestamp()))
            .send()
            .await;
        Ok(if written(result)? {
            Allowance::Granted
        } else {
            Allowance::Refused {
                retry_after: end - now,
            }
        })
    }
}
