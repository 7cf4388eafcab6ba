//! [`IdempotencyStore`]: the HTTP API's idempotency keys, one row per user and key.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::ids::UserId;
use rnd_domain::ports::{IdempotencyStore, KeptAnswer, KeyClaim, StoreError};
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::codec::{DbResultExt, ttl_of};
use crate::tx::WriteTx;

#[async_trait]
impl IdempotencyStore for SqliteStore {
    /// In one IMMEDIATE transaction: the live row of the key, else a new one holding
    /// `fingerprint` (replacing an expired one).
    async fn claim_idempotency_key(
        &self,
        user: &UserId,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError> {
        let (user, key, fingerprint) = (user.to_string(), key.to_owned(), fingerprint.to_owned());
        let (now_s, ttl) = (ttl_of(now), ttl_of(expires_at));
        self.run(move |conn| {
            let tx = WriteTx::begin(conn)?;
            let held = tx
                .prepare_cached(
                    "SELECT fingerprint, status, content_type, location, body
                     FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND ttl > ?3",
                )
                .db()?
                .query_row(params![user, key, now_s], |row| {
                    let answer = match row.get::<_, Option<i64>>(1)? {
                        Some(status) => Some(KeptAnswer {
                            status: u16::try_from(status).unwrap_or(500),
                            content_type: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                            location: row.get(3)?,
                            body: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        }),
                        None => None,
                    };
                    Ok(KeyClaim::Held {
                        fingerprint: row.get(0)?,
                        answer,
                    })
                })
                .optional()
                .db()?;
            if let Some(held) = held {
                return Ok(held);
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys (user_id, key, fingerprint, ttl)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .db()?
            .execute(params![user, key, fingerprint, ttl])
            .db()?;
            tx.commit()?;
            Ok(KeyClaim::Claimed)
        })
        .await
    }

    async fn keep_idempotent_answer(
        &self,
        user: &UserId,
        key: &str,
        answer: &KeptAnswer,
    ) -> Result<(), StoreError> {
        let (user, key, answer) = (user.to_string(), key.to_owned(), answer.clone());
        self.run(move |conn| {
            conn.prepare_cached(
                "UPDATE idempotency_keys SET status = ?3, content_type = ?4, location = ?5, body = ?6
                 WHERE user_id = ?1 AND key = ?2",
            )
            .db()?
            .execute(params![
                user,
                key,
                i64::from(answer.status),
                answer.content_type,
                answer.location,
                answer.body
            ])
            .db()?;
            Ok(())
        })
        .await
    }

    async fn release_idempotency_key(&self, user: &UserId, key: &str) -> Result<(), StoreError> {
        let (user, key) = (user.to_string(), key.to_owned());
        self.run(move |conn| {
            conn.prepare_cached("DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2")
                .db()?
                .execute(params![user, key])
                .db()?;
            Ok(())
        })
        .await
    }
}
