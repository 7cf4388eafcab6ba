//! [`InboxStore`]: the per-user inbox in two tables, `inbox_heads` (one row per user: the
//! epoch and the newest position) and `inbox` (one row per kept event: its position, key, the
//! message as JSON and its TTL), mirroring the DynamoDB design's `HEAD`, `POS#` and `KEY#`
//! items. An append is one `IMMEDIATE` transaction, so positions are gapless and concurrent
//! appends serialise.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::ids::UserId;
use rnd_domain::inbox::{Appended, InboxEvent, InboxPage, KeptEvent};
use rnd_domain::ports::{InboxStore, StoreError};
use rnd_domain::protocol::ServerMessage;
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::codec::{DbResultExt, from_json, to_i64, to_json, to_u64, ttl_of};
use crate::tx::WriteTx;

#[async_trait]
impl InboxStore for SqliteStore {
    /// One transaction: drops the user's expired rows (as DynamoDB's TTL would, eventually),
    /// reads or creates the head, keeps each event whose key is not kept yet at the next
    /// position, and moves the head.
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails.
    async fn append_to_inbox(
        &self,
        user: &UserId,
        events: &[InboxEvent],
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<Appended, StoreError> {
        let user = user.to_string();
        let rows = events
            .iter()
            .map(|e| Ok((e.key.as_str().to_owned(), to_json(&e.message)?)))
            .collect::<Result<Vec<(String, String)>, StoreError>>()?;
        let now_s = ttl_of(now);
        let ttl = ttl_of(now + retention);
        let epoch_now = to_i64(
            "inbox epoch",
            u64::try_from(now.timestamp_millis()).unwrap_or(1),
        )?;
        self.run(move |conn| {
            let tx = WriteTx::begin(conn)?;
            tx.prepare_cached("DELETE FROM inbox WHERE user_id = ?1 AND ttl <= ?2")
                .db()?
                .execute(params![user, now_s])
                .db()?;
            let stored: Option<(i64, i64)> = tx
                .prepare_cached("SELECT epoch, head FROM inbox_heads WHERE user_id = ?1")
                .db()?
                .query_row([&user], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .db()?;
            let (epoch, mut head) = stored.unwrap_or((epoch_now, 0));
            let old_head = head;
            let mut positions = Vec::with_capacity(rows.len());
            for (key, message) in &rows {
                let kept: Option<i64> = tx
                    .prepare_cached(
                        "SELECT position FROM inbox WHERE user_id = ?1 AND event_key = ?2",
                    )
                    .db()?
                    .query_row(params![user, key], |row| row.get(0))
                    .optional()
                    .db()?;
                let position = match kept {
                    Some(position) => position,
                    None => {
                        head += 1;
                        tx.prepare_cached(
                            "INSERT INTO inbox (user_id, position, event_key, message, ttl)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )
                        .db()?
                        .execute(params![user, head, key, message, ttl])
                        .db()?;
                        head
                    }
                };
                positions.push(to_u64("inbox.position", position)?);
            }
            tx.prepare_cached(
                "INSERT INTO inbox_heads (user_id, epoch, head) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET head = excluded.head",
            )
            .db()?
            .execute(params![user, epoch, head])
            .db()?;
            tx.commit()?;
            tracing::debug!(user_id = %user, head, "appended to inbox");
            Ok(Appended {
                epoch: to_u64("inbox_heads.epoch", epoch)?,
                positions,
                added: usize::try_from(head - old_head).unwrap_or(usize::MAX),
            })
        })
        .await
    }

    /// The head row, then the kept rows after `after` (one read transaction, so the head is
    /// never ahead of the rows).
    ///
    /// Fails with [`StoreError::Corrupt`] when a kept message does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn read_inbox(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<InboxPage, StoreError> {
        let user = user.to_string();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let now_s = ttl_of(now);
        self.run(move |conn| {
            let tx = conn.transaction().db()?;
            let (epoch, head): (i64, i64) = tx
                .prepare_cached("SELECT epoch, head FROM inbox_heads WHERE user_id = ?1")
                .db()?
                .query_row([&user], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .db()?
                .unwrap_or((0, 0));
            let mut stmt = tx
                .prepare_cached(
                    "SELECT position, message FROM inbox
                     WHERE user_id = ?1 AND position > ?2 AND ttl > ?3
                     ORDER BY position LIMIT ?4",
                )
                .db()?;
            let rows = stmt
                .query_map(params![user, after, now_s, limit], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                })
                .db()?;
            let mut events = Vec::new();
            for row in rows {
                let (position, message) = row.db()?;
                let message: ServerMessage =
                    from_json(&format!("inbox event {position} of {user}"), &message)?;
                events.push(KeptEvent {
                    position: to_u64("inbox.position", position)?,
                    message,
                });
            }
            drop(stmt);
            tx.commit().db()?;
            Ok(InboxPage {
                epoch: to_u64("inbox_heads.epoch", epoch)?,
                head: to_u64("inbox_heads.head", head)?,
                events,
            })
        })
        .await
    }
}
