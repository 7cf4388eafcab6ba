//! [`ConnectionStore`]: connection rows (with their TTL), room memberships carrying the same TTL,
//! and session rows for closed connections.
//!
//! As in DynamoDB, expired rows are not deleted eagerly: readers treat a connection whose
//! `expires_at` is not after `now` ([`Connection::is_live_at`]), or a membership whose `ttl` is
//! not after `now`, as absent. TTLs are whole epoch seconds (`expires_at` rounded down) and are
//! compared with `now` rounded down, so within the last second of a connection whose
//! `expires_at` has a fraction, its memberships may vanish just before the connection does.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::ids::{ConnectionId, UserId};
use rnd_domain::ports::{
    ClosedConnection, Connection, ConnectionStore, RoomMembers, SESSION_RETENTION_SECS, StoreError,
};
use rnd_domain::presence::ConnectionEvent;
use rnd_domain::{Role, Room};
use rusqlite::{OptionalExtension, TransactionBehavior, named_params, params};

use crate::SqliteStore;
use crate::codec::{DbResultExt, decode_time, encode_time, parse_column, to_json, ttl_of};

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
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db()?;
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
            tx.commit().db()?;
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
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db()?;
            let Some(connection) = read_connection(&tx, &id)?.filter(|c| c.is_live_at(now)) else {
                tracing::debug!(connection_id = %id, %room, "join refused: connection gone");
                return Err(StoreError::ConnectionGone);
            };
            let ttl = ttl_of(connection.expires_at);
            put_membership(&tx, &room, &id, &connection.user_id, ttl)?;
            tx.commit().db()?;
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
        let room = room.to_string();
        self.run(move |conn| {
            let removed = conn
                .execute(
                    "DELETE FROM memberships WHERE room = ?1 AND connection_id = ?2",
                    params![room, id.as_str()],
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
        let room = room.to_string();
        self.run(move |conn| {
            // The token's expiry is the connection row's (a membership lives and dies with it).
            let mut stmt = conn
                .prepare_cached(
                    "SELECT m.connection_id, c.token_expires_at > ?3
                     FROM memberships m JOIN connections c USING (connection_id)
                     WHERE m.room = ?1 AND m.ttl > ?2
                     ORDER BY m.connection_id",
                )
                .db()?;
            let rows = stmt
                .query_map(params![room, ttl_of(now), encode_time(now)], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?))
                })
                .db()?;
            let mut members = RoomMembers::default();
            for row in rows {
                let (id, token_valid) = row.db()?;
                let id = parse_column("memberships.connection_id", &id, ConnectionId::parse)?;
                if token_valid {
                    members.open.push(id);
                } else {
                    members.token_expired.push(id);
                }
            }
            Ok(members)
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
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db()?;
            let Some(connection) = read_connection(&tx, &id)? else {
                tracing::debug!(connection_id = %id, "close: no such connection");
                return Ok(None);
            };
            let rooms = read_rooms(&tx, &id)?;
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
            tx.commit().db()?;
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
    use rnd_store_conformance::fixtures::{connection, customer, now};

    use super::*;

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
