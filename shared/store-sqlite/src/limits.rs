//! [`RateLimitStore`]: one row per limit bucket and window.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::limits::{Allowance, Limit};
use rnd_domain::ports::{RateLimitStore, StoreError};
use rusqlite::params;

use crate::SqliteStore;
use crate::codec::DbResultExt;

#[async_trait]
impl RateLimitStore for SqliteStore {
    /// One `INSERT … ON CONFLICT DO UPDATE … WHERE uses < limit`: it writes only while the
    /// window has room.
    async fn take(
        &self,
        limit: Limit,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Allowance, StoreError> {
        let bucket = limit.bucket(subject);
        let start = limit.window_start(now);
        let end = start + limit.window;
        let (start_ms, ttl, cap) = (
            start.timestamp_millis(),
            end.timestamp(),
            i64::from(limit.per_window),
        );
        let counted = self
            .run(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO rate_windows (bucket, window_start, uses, ttl)
                     VALUES (?1, ?2, 1, ?3)
                     ON CONFLICT (bucket, window_start) DO UPDATE SET uses = uses + 1
                     WHERE rate_windows.uses < ?4",
                )
                .db()?
                .execute(params![bucket, start_ms, ttl, cap])
                .db()
            })
            .await?;
        Ok(if counted > 0 {
            Allowance::Granted
        } else {
            Allowance::Refused {
                retry_after: end - now,
            }
        })
    }
}
