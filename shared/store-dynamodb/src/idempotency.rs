//! [`IdempotencyStore`]: the HTTP API's idempotency keys in the connections table, one item per
//! user and key: `IDEM#{userId}` / `KEY#{key}`, with the request's fingerprint, its answer once
//! there is one, and the TTL (the claim's expiry).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::ids::UserId;
use rnd_domain::ports::{IdempotencyStore, KeptAnswer, KeyClaim, StoreError};

use crate::DynamoStore;
use crate::error::{backend, put_unless_live};
use crate::keys::{ITEM_TYPE, Item, PK, TTL, get_n, get_s, key, n, s};

/// Claims a key lost to a racing claim that then expired are retried this many times.
const CLAIM_ATTEMPTS: u32 = 3;

fn idem_key(user: &UserId, idempotency_key: &str) -> Item {
    key(format!("IDEM#{user}"), format!("KEY#{idempotency_key}"))
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    /// A `PutItem` conditioned on no live claim; when one holds the key, a consistent `GetItem`
    /// of it.
    async fn claim_idempotency_key(
        &self,
        user: &UserId,
        idempotency_key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let mut item = idem_key(user, idempotency_key);
            item.insert(ITEM_TYPE.into(), s("idempotency"));
            item.insert("fingerprint".into(), s(fingerprint));
            item.insert(TTL.into(), n(expires_at.timestamp()));
            if put_unless_live(&self.client, self.connections_table(), item, now).await? {
                return Ok(KeyClaim::Claimed);
            }
            let held = self
                .get_consistent(self.connections_table(), idem_key(user, idempotency_key))
                .await?
                .filter(|i| get_n::<i64>(i, TTL).is_some_and(|t| t > now.timestamp()));
            // Gone or expired between the two requests: claim again.
            let Some(item) = held else { continue };
            let answer = get_n::<u16>(&item, "status").map(|status| KeptAnswer {
                status,
                content_type: get_s(&item, "contentType").unwrap_or_default().to_owned(),
                location: get_s(&item, "location").map(str::to_owned),
                body: get_s(&item, "body").unwrap_or_default().to_owned(),
            });
            return Ok(KeyClaim::Held {
                fingerprint: get_s(&item, "fingerprint").unwrap_or_default().to_owned(),
                answer,
            });
        }
        Err(StoreError::Conflict)
    }

    /// An `UpdateItem` of the claim (it must exist).
    async fn keep_idempotent_answer(
        &self,
        user: &UserId,
        idempotency_key: &str,
        answer: &KeptAnswer,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(self.connections_table())
            .set_key(Some(idem_key(user, idempotency_key)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#type", "contentType")
            .expression_attribute_names("#body", "body")
            .expression_attribute_values(":status", n(i64::from(answer.status)))
            .expression_attribute_values(":type", s(answer.content_type.as_str()))
            .expression_attribute_values(":body", s(answer.body.as_str()));
        let mut set = "SET #status = :status, #type = :type, #body = :body".to_owned();
        if let Some(location) = &answer.location {
            update = update
                .expression_attribute_names("#location", "location")
                .expression_attribute_values(":location", s(location.as_str()));
            set.push_str(", #location = :location");
        }
        update
            .update_expression(set)
            .send()
            .await
            .map(|_| ())
            .map_err(backend)
    }

    /// A `DeleteItem` of the claim.
    async fn release_idempotency_key(
        &self,
        user: &UserId,
        idempotency_key: &str,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(self.connections_table())
            .set_key(Some(idem_key(user, idempotency_key)))
            .send()
            .await
            .map(|_| ())
            .map_err(backend)
    }
}
