//! [`PresenceStore`]: connection analytics' minute counters (`connection_minutes`, one row per
//! minute and counter, as DynamoDB keeps one attribute per counter; one shard: SQLite serialises
//! writers anyway) and users' last-seen rows (`presence`), both written in the transaction that
//! opens or closes the connection; presence reads the user's room.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::ids::UserId;
use rnd_domain::ports::{PresenceStore, SESSION_RETENTION_SECS, StoreError};
use rnd_domain::presence::{ConnectionEvent, ConnectionMinute, Presence, STATS_RETENTION_SECS};
use rnd_domain::rooms::Room;
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::codec::{DbResultExt, decode_time, encode_time, ttl_of};

/// Adds `event`'s counters and moves `user`'s last-seen time to it unless it is later already,
/// within the caller's transaction.
pub(crate) fn count_connection_event(
    conn: &rusqlite::Connection,
    user: &UserId,
    event: ConnectionEvent,
) -> Result<(), StoreError> {
    let mut add = conn
        .prepare_cached(
            "INSERT INTO connection_minutes (minute, counter, value, ttl) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (minute, counter) DO UPDATE SET value = value + excluded.value",
        )
        .db()?;
    for counter in event.counters() {
        let minute = counter.minute.timestamp();
        add.execute(params![
            minute,
            counter.counter,
            counter.delta,
            minute + STATS_RETENTION_SECS
        ])
        .db()?;
    }
    let at = event.at();
    conn.prepare_cached(
        "INSERT INTO presence (user_id, last_seen_at, ttl) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE
         SET last_seen_at = excluded.last_seen_at, ttl = excluded.ttl
         WHERE excluded.last_seen_at > presence.last_seen_at",
    )
    .db()?
    .execute(params![
        user.as_str(),
        encode_time(at),
        ttl_of(at) + SESSION_RETENTION_SECS
    ])
    .db()?;
    Ok(())
}

#[async_trait]
impl PresenceStore for SqliteStore {
    /// The user's room's live memberships joined with their connections, and their last-seen
    /// row (unless past its TTL).
    async fn presence(&self, user: &UserId, now: DateTime<Utc>) -> Result<Presence, StoreError> {
        let user = user.clone();
        self.run(move |conn| {
            let room = Room::User(user.clone()).to_string();
            let (connections, since): (u32, Option<String>) = conn
                .prepare_cached(
                    "SELECT count(*), min(c.connected_at)
                     FROM memberships m JOIN connections c USING (connection_id)
                     WHERE m.room = ?1 AND m.ttl > ?2",
                )
                .db()?
                .query_row(params![room, ttl_of(now)], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .db()?;
            let last_seen: Option<String> = conn
                .prepare_cached("SELECT last_seen_at FROM presence WHERE user_id = ?1 AND ttl > ?2")
                .db()?
                .query_row(params![user.as_str(), ttl_of(now)], |row| row.get(0))
                .optional()
                .db()?;
            Ok(Presence {
                connections,
                since: since.map(|t| decode_time("connected_at", &t)).transpose()?,
                last_seen_at: last_seen
                    .map(|t| decode_time("last_seen_at", &t))
                    .transpose()?,
            })
        })
        .await
    }

    /// The counters of the minutes from `from` to `to`, grouped by minute.
    async fn connection_minutes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ConnectionMinute>, StoreError> {
        self.run(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT minute, counter, value FROM connection_minutes
                     WHERE minute BETWEEN ?1 AND ?2 ORDER BY minute",
                )
                .db()?;
            let rows = statement
                .query_map(params![from.timestamp(), to.timestamp()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .db()?;
            let mut minutes: Vec<ConnectionMinute> = Vec::new();
            for row in rows {
                let (minute, counter, value) = row.db()?;
                let minute = DateTime::from_timestamp(minute, 0).ok_or_else(|| {
                    StoreError::corrupt("connection_minutes.minute is out of range")
                })?;
                match minutes.last_mut() {
                    Some(last) if last.minute == minute => last.add(&counter, value),
                    _ => minutes.push(ConnectionMinute::from_counters(
                        minute,
                        [(counter.as_str(), value)],
                    )),
                }
            }
            Ok(minutes)
        })
        .await
    }
}
