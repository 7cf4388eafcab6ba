//! [`ConnectionStore`]: connection rows (with their TTL), room memberships carrying the same TTL,
//! and session rows for closed connections.
//!
//! As in DynamoDB, expired rows are not deleted eagerly: readers treat a connection whose
//! `expires_at` is not after `now` ([`Connection::is_live_at`]), or a membership whose `ttl` is
//! not after `now`, as absent. TTLs are whole epoch seconds (`expires_at` rounded down) and are
//! compared with `now` rounded down, so within the last second of a connection whose
//! `expires_at` has a fraction, its memberships may vanish just before the connection does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::ids::{ConnectionId, UserId};
use rnd_domain::ports::{
    ClosedConnection, Connection, ConnectionStore, RoomMembers, SESSION_RETENTION_SECS, StoreError,
};
use rnd_domain::presence::ConnectionEvent;
use rnd_domain::{Role, Room};
use rusqlite::{OptionalExtension, named_params, params};

use crate::SqliteStore;
use crate::codec::{DbResultExt, decode_time, encode_time, parse_column, to_json, ttl_of};
use crate::tx::WriteTx;

#[async_trait]
impl ConnectionStore for SqliteStore {
    /// Inserts the connection (TTL = `expires_at` in epoch seconds) and a membership of each of
    /// `rooms` carrying the same TTL, in one transaction.
    ///
    /// Fails with [`StoreError::AlreadyExists`] when a row with this connection id exists, and
    /// with [`StoreError::Backend`] when SQLite fails.
    async fn open_connection(
        &self,
        connection: &Connection,
        rooms: &[Room],
    ) -> Result<(), StoreError> {
        let connection = connection.clone();
        let rooms = rooms.to_vec();
        let cache = self.room_cache();
        self.run(move |conn| {
            RoomCache::forget_in(cache.as_deref(), &rooms);
            let tx = WriteTx::begin(conn)?;
            let ttl = ttl_of(connection.expires_at);
            let inserted = tx
                .execute(
                    "INSERT INTO connections (connection_id, user_id, role, name, connected_at,
                         source_ip, user_agent, token_expires_at, expires_at, ttl)
                     VALUES (:connection_id, :user_id, :role, :name, :connected_at, :source_ip,
                         :user_agent, :token_expires_at, :expires_at, :ttl)
                     ON CONFLICT (connection_id) DO NOTHING",
                    named_params! {
                        ":connection_id": connection.connection_id.as_str(),
                        ":user_id": connection.user_id.as_str(),
                        ":role": connection.role.as_str(),
                        ":name": connection.name,
                        ":connected_at": encode_time(connection.connected_at),
                        ":source_ip": connection.source_ip,
                        ":user_agent": connection.user_agent,
                        ":token_expires_at": encode_time(connection.token_expires_at),
                        ":expires_at": encode_time(connection.expires_at),
                        ":ttl": ttl,
                    },
                )
                .db()?;
            if inserted == 0 {
                tracing::debug!(connection_id = %connection.connection_id, "connection exists");
                return Err(StoreError::AlreadyExists);
            }
            for room in &rooms {
                put_membership(
                    &tx,
                    room,
                    &connection.connection_id,
                    &connection.user_id,
                    ttl,
                )?;
            }
            crate::presence::count_connection_event(
                &tx,
                &connection.user_id,
                ConnectionEvent::Opened {
                    role: connection.role,
                    at: connection.connected_at,
                },
            )?;
            tx.commit()?;
            tracing::debug!(
                connection_id = %connection.connection_id,
                rooms = rooms.len(),
                "opened connection"
            );
            Ok(())
        })
        .await
    }

    /// The connection, or `None` when there is no row or it expired (`expires_at <= now`).
    ///
    /// Fails with [`StoreError::Corrupt`] when the row does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn get_connection(
        &self,
        id: &ConnectionId,
        now: DateTime<Utc>,
    ) -> Result<Option<Connection>, StoreError> {
        let id = id.clone();
        self.run(move |conn| {
            Ok(read_connection(conn, &id)?.filter(|connection| connection.is_live_at(now)))
        })
        .await
    }

    /// Adds a membership of `room` with the connection's TTL. Idempotent.
    ///
    /// Fails with [`StoreError::ConnectionGone`] when the connection has no row or expired at
    /// `now`, with [`StoreError::Corrupt`] when its row does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn join_room(
        &self,
        id: &ConnectionId,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        let room = room.clone();
        let cache = self.room_cache();
        self.run(move |conn| {
            RoomCache::forget_in(cache.as_deref(), std::slice::from_ref(&room));
            let tx = WriteTx::begin(conn)?;
            let Some(connection) = read_connection(&tx, &id)?.filter(|c| c.is_live_at(now)) else {
                tracing::debug!(connection_id = %id, %room, "join refused: connection gone");
                return Err(StoreError::ConnectionGone);
            };
            let ttl = ttl_of(connection.expires_at);
            put_membership(&tx, &room, &id, &connection.user_id, ttl)?;
            tx.commit()?;
            tracing::debug!(connection_id = %id, %room, "joined room");
            Ok(())
        })
        .await
    }

    /// Removes the membership of `room`; returns whether there was one.
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails.
    async fn leave_room(&self, id: &ConnectionId, room: &Room) -> Result<bool, StoreError> {
        let id = id.clone();
        let room = room.clone();
        let cache = self.room_cache();
        self.run(move |conn| {
            RoomCache::forget_in(cache.as_deref(), std::slice::from_ref(&room));
            let removed = conn
                .execute(
                    "DELETE FROM memberships WHERE room = ?1 AND connection_id = ?2",
                    params![room.to_string(), id.as_str()],
                )
                .db()?;
            tracing::debug!(connection_id = %id, %room, removed, "left room");
            Ok(removed > 0)
        })
        .await
    }

    /// The connections with a membership of `room` whose TTL is after `now` (in epoch seconds),
    /// sorted by connection id, split by whether their connection's token is still valid at
    /// `now`.
    ///
    /// Fails with [`StoreError::Corrupt`] when a stored id does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn room_members(
        &self,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<RoomMembers, StoreError> {
        // An in-memory store answers from the members it last read: every write of a room's
        // memberships forgets them first, under the connection's lock, and they are only ever
        // kept under it, so what is kept is what the tables hold. (The query was 6 % of the
        // stack's instructions per location update in `make bench-knee`.)
        let cache = self.room_cache();
        if let Some(members) = cache.as_deref().and_then(|c| c.get(room)) {
            return Ok(members.at(now));
        }
        let room = room.clone();
        self.run(move |conn| {
            let members = read_members(conn, &room)?;
            if let Some(cache) = cache.as_deref() {
                cache.keep(room, Arc::clone(&members));
            }
            Ok(members.at(now))
        })
        .await
    }

    /// The rooms the connection has a membership of, sorted; empty for an unknown connection.
    ///
    /// Fails with [`StoreError::Corrupt`] when a stored room name does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn rooms_of(&self, id: &ConnectionId) -> Result<Vec<Room>, StoreError> {
        let id = id.clone();
        self.run(move |conn| read_rooms(conn, &id)).await
    }

    /// In one transaction: deletes the connection row and its memberships, and records a session
    /// row (`disconnected_at = at`, `duration_ms`, TTL `at` + 30 days). Returns the closed
    /// connection with the rooms it was in, or `None` when there was no row (already closed or
    /// never opened). A row that expired but was not deleted is closed like an open one.
    ///
    /// Fails with [`StoreError::Corrupt`] when the row does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn close_connection(
        &self,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<Option<ClosedConnection>, StoreError> {
        let id = id.clone();
        let cache = self.room_cache();
        self.run(move |conn| {
            let tx = WriteTx::begin(conn)?;
            let Some(connection) = read_connection(&tx, &id)? else {
                tracing::debug!(connection_id = %id, "close: no such connection");
                return Ok(None);
            };
            let rooms = read_rooms(&tx, &id)?;
            RoomCache::forget_in(cache.as_deref(), &rooms);
            tx.execute(
                "DELETE FROM memberships WHERE connection_id = ?1",
                [id.as_str()],
            )
            .db()?;
            tx.execute(
                "DELETE FROM connections WHERE connection_id = ?1",
                [id.as_str()],
            )
            .db()?;
            let closed = ClosedConnection {
                connection,
                disconnected_at: at,
                rooms,
            };
            let room_names: Vec<String> = closed.rooms.iter().map(Room::to_string).collect();
            let c = &closed.connection;
            tx.execute(
                "INSERT OR REPLACE INTO sessions (connection_id, user_id, role, name,
                     connected_at, source_ip, user_agent, token_expires_at, expires_at, rooms,
                     disconnected_at, duration_ms, ttl)
                 VALUES (:connection_id, :user_id, :role, :name, :connected_at, :source_ip,
                     :user_agent, :token_expires_at, :expires_at, :rooms, :disconnected_at,
                     :duration_ms, :ttl)",
                named_params! {
                    ":connection_id": c.connection_id.as_str(),
                    ":user_id": c.user_id.as_str(),
                    ":role": c.role.as_str(),
                    ":name": c.name,
                    ":connected_at": encode_time(c.connected_at),
                    ":source_ip": c.source_ip,
                    ":user_agent": c.user_agent,
                    ":token_expires_at": encode_time(c.token_expires_at),
                    ":expires_at": encode_time(c.expires_at),
                    ":rooms": to_json(&room_names)?,
                    ":disconnected_at": encode_time(at),
                    ":duration_ms": closed.duration().num_milliseconds(),
                    ":ttl": ttl_of(at) + SESSION_RETENTION_SECS,
                },
            )
            .db()?;
            // As in DynamoDB, a connection past its TTL was counted as expired, not closed.
            if c.is_live_at(at) {
                crate::presence::count_connection_event(
                    &tx,
                    &c.user_id,
                    ConnectionEvent::Closed {
                        role: c.role,
                        opened_at: c.connected_at,
                        at,
                    },
                )?;
            }
            tx.commit()?;
            tracing::debug!(
                connection_id = %id,
                rooms = closed.rooms.len(),
                duration_ms = closed.duration().num_milliseconds(),
                "closed connection"
            );
            Ok(Some(closed))
        })
        .await
    }
}

/// One membership of a room as stored, with its connection's token expiry: whether it is
/// delivered to depends on the moment it is read at.
#[derive(Debug)]
struct Member {
    id: ConnectionId,
    /// The membership's TTL (epoch seconds).
    ttl: i64,
    /// The connection's `token_expires_at` as stored (compared as SQLite compares text).
    token_expires_at: String,
}

/// Every membership of one room, sorted by connection id, expired ones included.
#[derive(Debug)]
pub(crate) struct Members(Vec<Member>);

impl Members {
    /// The room's members at `now`: memberships whose TTL is after `now` (in epoch seconds),
    /// split by whether their connection's token is still valid at `now`.
    fn at(&self, now: DateTime<Utc>) -> RoomMembers {
        let (ttl_now, now) = (ttl_of(now), encode_time(now));
        let mut members = RoomMembers::default();
        for member in self.0.iter().filter(|m| m.ttl > ttl_now) {
            if member.token_expires_at > now {
                members.open.push(member.id.clone());
            } else {
                members.token_expired.push(member.id.clone());
            }
        }
        members
    }
}

/// Every membership of `room`, with its connection's token expiry.
fn read_members(conn: &rusqlite::Connection, room: &Room) -> Result<Arc<Members>, StoreError> {
    // The token's expiry is the connection row's (a membership lives and dies with it).
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.connection_id, m.ttl, c.token_expires_at
             FROM memberships m JOIN connections c USING (connection_id)
             WHERE m.room = ?1
             ORDER BY m.connection_id",
        )
        .db()?;
    let rows = stmt
        .query_map(params![room.to_string()], |row| {
            Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?))
        })
        .db()?;
    let mut members = Vec::new();
    for row in rows {
        let (id, ttl, token_expires_at) = row.db()?;
        let id = parse_column("memberships.connection_id", &id, ConnectionId::parse)?;
        members.push(Member {
            id,
            ttl,
            token_expires_at,
        });
    }
    Ok(Arc::new(Members(members)))
}

/// An in-memory store's rooms as last read. Kept and forgotten only under the store's
/// connection lock (a write forgets the rooms it touches before it writes them), so a kept
/// room is what the tables hold; read without that lock.
#[derive(Debug, Default)]
pub(crate) struct RoomCache(Mutex<HashMap<Room, Arc<Members>>>);

impl RoomCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Room, Arc<Members>>> {
        crate::lock(&self.0)
    }

    fn get(&self, room: &Room) -> Option<Arc<Members>> {
        self.lock().get(room).cloned()
    }

    fn keep(&self, room: Room, members: Arc<Members>) {
        self.lock().insert(room, members);
    }

    /// Forgets `rooms` in `cache`, if there is one.
    fn forget_in(cache: Option<&Self>, rooms: &[Room]) {
        if let Some(cache) = cache {
            let mut kept = cache.lock();
            for room in rooms {
                kept.remove(room);
            }
        }
    }
}

/// Inserts or refreshes a membership (idempotent).
fn put_membership(
    conn: &rusqlite::Connection,
    room: &Room,
    connection_id: &ConnectionId,
    user_id: &UserId,
    ttl: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO memberships (room, connection_id, user_id, ttl) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (room, connection_id) DO UPDATE
         SET user_id = excluded.user_id, ttl = excluded.ttl",
    )
    .db()?
    .execute(params![
        room.to_string(),
        connection_id.as_str(),
        user_id.as_str(),
        ttl
    ])
    .db()?;
    Ok(())
}

/// The connection row, expired or not.
fn read_connection(
    conn: &rusqlite::Connection,
    id: &ConnectionId,
) -> Result<Option<Connection>, StoreError> {
    let raw = conn
        .prepare_cached(
            "SELECT user_id, role, name, connected_at, source_ip, user_agent, token_expires_at,
                    expires_at
             FROM connections WHERE connection_id = ?1",
        )
        .db()?
        .query_row([id.as_str()], |row| {
            Ok(RawConnection {
                user_id: row.get(0)?,
                role: row.get(1)?,
                name: row.get(2)?,
                connected_at: row.get(3)?,
                source_ip: row.get(4)?,
                user_agent: row.get(5)?,
                token_expires_at: row.get(6)?,
                expires_at: row.get(7)?,
            })
        })
        .optional()
        .db()?;
    raw.map(|raw| raw.decode(id.clone())).transpose()
}

/// The rooms of the connection's memberships, sorted.
fn read_rooms(conn: &rusqlite::Connection, id: &ConnectionId) -> Result<Vec<Room>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT room FROM memberships WHERE connection_id = ?1")
        .db()?;
    let names = stmt
        .query_map([id.as_str()], |row| row.get::<_, String>(0))
        .db()?;
    let mut rooms = Vec::new();
    for name in names {
        let name = name.db()?;
        rooms.push(parse_column("memberships.room", &name, str::parse::<Room>)?);
    }
    rooms.sort();
    Ok(rooms)
}

/// A connection row as stored.
struct RawConnection {
    user_id: String,
    role: String,
    name: Option<String>,
    connected_at: String,
    source_ip: Option<String>,
    user_agent: Option<String>,
    token_expires_at: String,
    expires_at: String,
}

impl RawConnection {
    fn decode(self, connection_id: ConnectionId) -> Result<Connection, StoreError> {
        Ok(Connection {
            connection_id,
            user_id: parse_column("connections.user_id", &self.user_id, UserId::parse)?,
            role: parse_column("connections.role", &self.role, str::parse::<Role>)?,
            name: self.name,
            connected_at: decode_time("connections.connected_at", &self.connected_at)?,
            source_ip: self.source_ip,
            user_agent: self.user_agent,
            token_expires_at: decode_time("connections.token_expires_at", &self.token_expires_at)?,
            expires_at: decode_time("connections.expires_at", &self.expires_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use rnd_domain::OrderId;
    use rnd_store_conformance::fixtures::{connection, customer, now};

    use super::*;

    fn ids(ids: &[ConnectionId]) -> Vec<&str> {
        ids.iter().map(ConnectionId::as_str).collect()
    }

    #[tokio::test]
    async fn room_members_read_before_each_membership_write_are_never_served_after_it() {
        // GIVEN an in-memory store (which keeps the members it reads) with two open
        // connections, the first in an order's room, and the room read once
        let store = SqliteStore::in_memory().unwrap();
        let at = now();
        let room = Room::Order(OrderId::parse("o-cached").unwrap());
        let (first, second) = (
            connection("c-first", &customer(), at),
            connection("c-second", &customer(), at),
        );
        store.open_connection(&first, &[]).await.unwrap();
        store.open_connection(&second, &[]).await.unwrap();
        store
            .join_room(&first.connection_id, &room, at)
            .await
            .unwrap();
        assert_eq!(
            ids(&store.room_members(&room, at).await.unwrap().open),
            ["c-first"]
        );

        // WHEN the second joins, THEN the next read has both
        store
            .join_room(&second.connection_id, &room, at)
            .await
            .unwrap();
        assert_eq!(
            ids(&store.room_members(&room, at).await.unwrap().open),
            ["c-first", "c-second"]
        );

        // WHEN the first leaves, THEN the next read has the second only
        store.leave_room(&first.connection_id, &room).await.unwrap();
        assert_eq!(
            ids(&store.room_members(&room, at).await.unwrap().open),
            ["c-second"]
        );

        // WHEN a third connection opens with the room among its initial rooms, THEN it is in
        let third = connection("c-third", &customer(), at);
        store
            .open_connection(&third, std::slice::from_ref(&room))
            .await
            .unwrap();
        assert_eq!(
            ids(&store.room_members(&room, at).await.unwrap().open),
            ["c-second", "c-third"]
        );

        // WHEN the room is read after the tokens expired, THEN the same kept members are
        // judged at that moment: nothing is delivered, both are to be told
        let later = at + Duration::hours(1) + Duration::seconds(1);
        let members = store.room_members(&room, later).await.unwrap();
        assert!(members.open.is_empty());
        assert_eq!(ids(&members.token_expired), ["c-second", "c-third"]);

        // WHEN the second closes, THEN the next read has the third only
        store
            .close_connection(&second.connection_id, at)
            .await
            .unwrap();
        assert_eq!(
            ids(&store.room_members(&room, at).await.unwrap().open),
            ["c-third"]
        );

        // AND past the memberships' TTL the room is empty
        let expired = third.expires_at + Duration::seconds(1);
        assert_eq!(
            store.room_members(&room, expired).await.unwrap(),
            RoomMembers::default()
        );
    }

    #[tokio::test]
    async fn closing_records_a_session_kept_for_thirty_days() {
        // GIVEN an open connection in its initial rooms (a customer's: its user room)
        let store = SqliteStore::in_memory().unwrap();
        let at = now();
        let c = connection("c-session", &customer(), at);
        let rooms = rnd_domain::rooms::initial_rooms(&customer());
        store.open_connection(&c, &rooms).await.unwrap();

        // WHEN it closes 90 seconds later
        let closed_at = at + Duration::seconds(90);
        store
            .close_connection(&c.connection_id, closed_at)
            .await
            .unwrap();

        // THEN a session row keeps who it was, its rooms, its duration and a 30-day TTL
        let conn = store.conn.lock().unwrap();
        let (user_id, role, room_names, duration_ms, ttl): (String, String, String, i64, i64) =
            conn.query_row(
                "SELECT user_id, role, rooms, duration_ms, ttl FROM sessions
                 WHERE connection_id = ?1",
                [c.connection_id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(user_id, "customer-1");
        assert_eq!(role, "customer");
        let mut room_names: Vec<String> = serde_json::from_str(&room_names).unwrap();
        room_names.sort();
        assert_eq!(room_names, ["user:customer-1"]);
        assert_eq!(duration_ms, 90_000);
        assert_eq!(ttl, closed_at.timestamp() + SESSION_RETENTION_SECS);
    }
}
