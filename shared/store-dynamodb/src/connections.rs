//! [`ConnectionStore`] on the connections table: connection rows (`CONN#{id}` / `CONN`),
//! membership rows (`ROOM#{room}` / `CONN#{id}`) and session rows (`CONN#{id}` / `SESSION`).
//!
//! Every row carries `ttl` (epoch seconds); a row is alive at `now` while `ttl > now` — also
//! before DynamoDB's TTL sweep has deleted it, which can take days.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Utc};
use rnd_domain::identity::Role;
use rnd_domain::ids::{ConnectionId, UserId};
use rnd_domain::ports::{
    ClosedConnection, Connection, ConnectionStore, RoomMembers, SESSION_RETENTION_SECS, StoreError,
};
use rnd_domain::presence::ConnectionEvent;
use rnd_domain::rooms::Room;
use serde::{Deserialize, Serialize};

use crate::DynamoStore;
use crate::error::{
    AdapterError, BATCH_ATTEMPTS, TxFailure, backend, backoff, condition_failures, corrupt,
    query_all, transact, written,
};
use crate::keys::{
    CONNECTION_SK, Item, PK, SESSION_SK, TTL, connection_pk, get_n, get_s, key, membership_sk, n,
    room_pk, s,
};

/// A membership row's copy of its connection's token expiry (epoch seconds).
const TOKEN_EXP: &str = "tokenExp";

/// Most delete requests in one `BatchWriteItem`.
const BATCH_WRITE_MAX: usize = 25;

/// A connection row, or (with the `disconnected*` fields) a session row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionRow {
    item_type: String,
    connection_id: ConnectionId,
    user_id: UserId,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    connected_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    token_expires_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// Epoch seconds: `expiresAt` for a connection, `disconnectedAt` + 30 days for a session.
    ttl: i64,
    /// A string set; DynamoDB has no empty sets, so no rooms means no attribute.
    #[serde(
        with = "serde_dynamo::string_set",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    rooms: Vec<Room>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disconnected_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration_ms: Option<i64>,
}

impl ConnectionRow {
    pub(crate) fn open(c: &Connection, rooms: Vec<Room>) -> Self {
        ConnectionRow {
            item_type: "connection".into(),
            connection_id: c.connection_id.clone(),
            user_id: c.user_id.clone(),
            role: c.role,
            name: c.name.clone(),
            connected_at: c.connected_at,
            source_ip: c.source_ip.clone(),
            user_agent: c.user_agent.clone(),
            token_expires_at: c.token_expires_at,
            expires_at: c.expires_at,
            ttl: c.expires_at.timestamp(),
            rooms,
            disconnected_at: None,
            duration_ms: None,
        }
    }

    pub(crate) fn session(&self, at: DateTime<Utc>) -> Self {
        ConnectionRow {
            item_type: "session".into(),
            ttl: at.timestamp() + SESSION_RETENTION_SECS,
            disconnected_at: Some(at),
            duration_ms: Some((at - self.connected_at).num_milliseconds()),
            ..self.clone()
        }
    }

    fn connection(&self) -> Connection {
        Connection {
            connection_id: self.connection_id.clone(),
            user_id: self.user_id.clone(),
            role: self.role,
            name: self.name.clone(),
            connected_at: self.connected_at,
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            token_expires_at: self.token_expires_at,
            expires_at: self.expires_at,
        }
    }

    pub(crate) fn to_item(&self, sk: &str) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(self).map_err(backend)?;
        item.extend(key(connection_pk(&self.connection_id), sk));
        Ok(item)
    }
}

/// A membership row: its item ([`MembershipRow::to_item`]) and that item's size
/// ([`MembershipRow::size`], without building it).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipRow<'a> {
    item_type: &'static str,
    connection_id: &'a ConnectionId,
    room: &'a Room,
    user_id: &'a UserId,
    ttl: i64,
    /// When the connection's token expires (epoch seconds), so a room's reader can tell the
    /// connections it must deliver nothing to without reading their rows.
    token_exp: i64,
    /// When the connection opened (epoch ms), so presence can say since when a user is online
    /// from their room alone.
    connected_at: i64,
}

impl<'a> MembershipRow<'a> {
    /// The membership row of `connection_id` (of `user_id`) in `room`, living until `ttl`, its
    /// connection's token expiring at `token_exp` (both epoch seconds), opened at
    /// `connected_at` (epoch ms).
    pub fn new(
        connection_id: &'a ConnectionId,
        user_id: &'a UserId,
        room: &'a Room,
        ttl: i64,
        token_exp: i64,
        connected_at: i64,
    ) -> Self {
        MembershipRow {
            item_type: "membership",
            connection_id,
            room,
            user_id,
            ttl,
            token_exp,
            connected_at,
        }
    }

    /// The item `DynamoStore` writes.
    pub fn to_item(&self) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(self).map_err(backend)?;
        item.extend(self.key());
        Ok(item)
    }

    /// The size of [`MembershipRow::to_item`], without building it.
    pub fn size(&self) -> Result<usize, StoreError> {
        let fields = crate::item_size::item_size(self).map_err(backend)?;
        Ok(fields + crate::item_size::size(&self.key()))
    }

    fn key(&self) -> Item {
        key(room_pk(self.room), membership_sk(self.connection_id))
    }
}

/// `rooms` without repeats, sorted (as a connection row's string set holds them).
pub(crate) fn distinct(rooms: &[Room]) -> Vec<Room> {
    rooms
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// True while a row with this `ttl` is alive at `now` (`ttl > now`, in whole seconds).
fn alive(ttl: i64, now: DateTime<Utc>) -> bool {
    ttl > now.timestamp()
}

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if let Some(condition) = condition {
        put = put
            .condition_expression(condition)
            .expression_attribute_names("#pk", PK);
    }
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(backend)?)
        .build())
}

impl DynamoStore {
    pub(crate) fn connections_table(&self) -> &str {
        &self.tables.connections
    }

    /// The connection row (consistent read), whatever its TTL.
    async fn load_connection(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let table = self.connections_table();
        self.get_decoded(table, key(connection_pk(id), CONNECTION_SK), || {
            format!("{table} connection {id}")
        })
        .await
    }

    /// Deletes the membership rows of `id` in `rooms` with `BatchWriteItem` (25 at a time),
    /// retrying unprocessed items a bounded number of times.
    async fn delete_memberships(
        &self,
        id: &ConnectionId,
        rooms: &[Room],
    ) -> Result<(), StoreError> {
        let table = self.connections_table();
        for chunk in rooms.chunks(BATCH_WRITE_MAX) {
            let mut pending = chunk
                .iter()
                .map(|room| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(key(room_pk(room), membership_sk(id))))
                        .build()
                        .map_err(backend)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut attempt = 1;
            loop {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(backend)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt >= BATCH_ATTEMPTS {
                    return Err(backend(AdapterError::Unprocessed {
                        operation: "BatchWriteItem",
                        count: pending.len(),
                        attempts: attempt,
                    }));
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    /// One `TransactWriteItems`: the connection row (`attribute_not_exists(pk)`) and one
    /// membership row per room (duplicates ignored). Fails with
    /// [`StoreError::AlreadyExists`] when a row with this connection id exists.
    async fn open_connection(
        &self,
        connection: &Connection,
        rooms: &[Room],
    ) -> Result<(), StoreError> {
        let table = self.connections_table();
        let rooms = distinct(rooms);
        let row = ConnectionRow::open(connection, rooms.clone());
        let mut items = vec![put(
            table,
            row.to_item(CONNECTION_SK)?,
            Some("attribute_not_exists(#pk)"),
        )?];
        for room in &rooms {
            let membership = MembershipRow::new(
                &connection.connection_id,
                &connection.user_id,
                room,
                row.ttl,
                connection.token_expires_at.timestamp(),
                connection.connected_at.timestamp_millis(),
            );
            items.push(put(table, membership.to_item()?, None)?);
        }
        match transact(&self.client, "open_connection", items).await {
            Ok(()) => {
                tracing::debug!(table, connection = %connection.connection_id, "opened connection");
                self.count_connection_event(
                    &connection.connection_id,
                    &connection.user_id,
                    ConnectionEvent::Opened {
                        role: connection.role,
                        at: connection.connected_at,
                    },
                )
                .await;
                Ok(())
            }
            Err(TxFailure::ConditionFailed(_)) => Err(StoreError::AlreadyExists),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    /// `GetItem` (consistent) of the connection row; `None` when absent or `ttl <= now`.
    async fn get_connection(
        &self,
        id: &ConnectionId,
        now: DateTime<Utc>,
    ) -> Result<Option<Connection>, StoreError> {
        Ok(self
            .load_connection(id)
            .await?
            .filter(|row| alive(row.ttl, now))
            .map(|row| row.connection()))
    }

    /// Reads the connection (it must be alive at `now`), then one `TransactWriteItems`:
    /// `ADD rooms` on the connection row (condition: it exists and `ttl > now`) and a `Put` of
    /// the membership row with the connection's TTL. Idempotent. Fails with
    /// [`StoreError::ConnectionGone`] when the connection is absent, expired or closed
    /// meanwhile.
    async fn join_room(
        &self,
        id: &ConnectionId,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let table = self.connections_table();
        let Some(row) = self
            .load_connection(id)
            .await?
            .filter(|r| alive(r.ttl, now))
        else {
            return Err(StoreError::ConnectionGone);
        };
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key(connection_pk(id), CONNECTION_SK)))
            .update_expression("ADD #rooms :room")
            .condition_expression("attribute_exists(#pk) AND #ttl > :now")
            .expression_attribute_names("#rooms", "rooms")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":room", AttributeValue::Ss(vec![room.to_string()]))
            .expression_attribute_values(":now", n(now.timestamp()))
            .build()
            .map_err(backend)?;
        let membership = MembershipRow::new(
            id,
            &row.user_id,
            room,
            row.ttl,
            row.token_expires_at.timestamp(),
            row.connected_at.timestamp_millis(),
        );
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            put(table, membership.to_item()?, None)?,
        ];
        match transact(&self.client, "join_room", items).await {
            Ok(()) => {
                tracing::debug!(table, connection = %id, %room, "joined room");
                Ok(())
            }
            Err(TxFailure::ConditionFailed(_)) => Err(StoreError::ConnectionGone),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    /// One `TransactWriteItems`: `Delete` of the membership row (condition: it exists) and
    /// `DELETE rooms` on the connection row (condition: it exists). Returns `true` when the
    /// membership row existed. When only one of the two exists, that one is cleaned up alone.
    async fn leave_room(&self, id: &ConnectionId, room: &Room) -> Result<bool, StoreError> {
        let table = self.connections_table();
        let membership_key = key(room_pk(room), membership_sk(id));
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(membership_key.clone()))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(backend)?;
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key(connection_pk(id), CONNECTION_SK)))
            .update_expression("DELETE #rooms :room")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#rooms", "rooms")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":room", AttributeValue::Ss(vec![room.to_string()]))
            .build()
            .map_err(backend)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        let failed = match transact(&self.client, "leave_room", items).await {
            Ok(()) => {
                tracing::debug!(table, connection = %id, %room, "left room");
                return Ok(true);
            }
            Err(TxFailure::ConditionFailed(reasons)) => condition_failures(&reasons),
            Err(TxFailure::Failed(e)) => return Err(e),
        };
        let membership_missing = failed.first().copied().unwrap_or(true);
        let connection_missing = failed.get(1).copied().unwrap_or(true);
        match (membership_missing, connection_missing) {
            // Not a member, but the connection is there: make sure its set agrees.
            (true, false) => {
                let result = self
                    .client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(key(connection_pk(id), CONNECTION_SK)))
                    .update_expression("DELETE #rooms :room")
                    .condition_expression("attribute_exists(#pk)")
                    .expression_attribute_names("#rooms", "rooms")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_values(
                        ":room",
                        AttributeValue::Ss(vec![room.to_string()]),
                    )
                    .send()
                    .await;
                // Cleaned up, or the connection went meanwhile: not a member either way.
                written(result).map(|_| false)
            }
            // A membership left behind by a connection that is gone: remove it.
            (false, true) => {
                self.client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(membership_key))
                    .send()
                    .await
                    .map_err(backend)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// `Query` of `pk = ROOM#{room}` (projection `connectionId, ttl`, eventually consistent as
    /// designed: fan-out runs from the stream, after the write), every page; rows with
    /// `ttl <= now` are dropped. In sort-key order (by connection id).
    async fn room_members(
        &self,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<RoomMembers, StoreError> {
        let table = self.connections_table();
        let mut members = RoomMembers::default();
        let items = query_all(
            self.client
                .query()
                .table_name(table)
                .key_condition_expression("#pk = :pk")
                .projection_expression("#cid, #ttl, #exp")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#cid", "connectionId")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_names("#exp", TOKEN_EXP)
                .expression_attribute_values(":pk", s(room_pk(room))),
        )
        .await?;
        for item in &items {
            let ttl = get_n::<i64>(item, TTL)
                .ok_or_else(|| corrupt(format_args!("{table} room {room}"), "no ttl"))?;
            if !alive(ttl, now) {
                continue;
            }
            let id = get_s(item, "connectionId")
                .ok_or_else(|| corrupt(format_args!("{table} room {room}"), "no connectionId"))
                .and_then(|id| {
                    ConnectionId::parse(id)
                        .map_err(|e| corrupt(format_args!("{table} room {room}"), e))
                })?;
            // A row written before memberships carried the token's expiry is left to its
            // TTL.
            match get_n::<i64>(item, TOKEN_EXP) {
                Some(exp) if exp <= now.timestamp() => members.token_expired.push(id),
                _ => members.open.push(id),
            }
        }
        Ok(members)
    }

    /// `GetItem` (consistent) of the connection row → its `rooms`, sorted; empty when the row
    /// is absent.
    async fn rooms_of(&self, id: &ConnectionId) -> Result<Vec<Room>, StoreError> {
        let mut rooms = self
            .load_connection(id)
            .await?
            .map(|row| row.rooms)
            .unwrap_or_default();
        rooms.sort();
        Ok(rooms)
    }

    /// Reads the connection; when it is alive at `at`, deletes its membership rows
    /// (`BatchWriteItem`), then one `TransactWriteItems`: `Delete` of the connection row
    /// (condition: it exists) and `Put` of the session row (`ttl` = `at` + 30 days). Returns
    /// the connection with its rooms, or `None` when it was absent, expired (its rows are left
    /// to the TTL sweep) or closed concurrently.
    async fn close_connection(
        &self,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<Option<ClosedConnection>, StoreError> {
        let table = self.connections_table();
        let Some(row) = self.load_connection(id).await?.filter(|r| alive(r.ttl, at)) else {
            return Ok(None);
        };
        self.delete_memberships(id, &row.rooms).await?;
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(key(connection_pk(id), CONNECTION_SK)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(backend)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            put(table, row.session(at).to_item(SESSION_SK)?, None)?,
        ];
        match transact(&self.client, "close_connection", items).await {
            Ok(()) => {
                tracing::debug!(table, connection = %id, "closed connection");
                self.count_connection_event(
                    id,
                    &row.user_id,
                    ConnectionEvent::Closed {
                        role: row.role,
                        opened_at: row.connected_at,
                        at,
                    },
                )
                .await;
                Ok(Some(ClosedConnection {
                    connection: row.connection(),
                    disconnected_at: at,
                    rooms: row.rooms,
                }))
            }
            Err(TxFailure::ConditionFailed(_)) => Ok(None),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SK;

    fn row() -> ConnectionRow {
        let at = DateTime::parse_from_rfc3339("2026-03-01T10:00:00.123Z")
            .unwrap()
            .to_utc();
        let c = Connection {
            connection_id: ConnectionId::parse("L0SM9cOFvHcCIhw=").unwrap(),
            user_id: UserId::parse("u-1").unwrap(),
            role: Role::Driver,
            name: None,
            connected_at: at,
            source_ip: Some("203.0.113.7".into()),
            user_agent: None,
            token_expires_at: at,
            expires_at: Connection::expiry_for(at),
        };
        ConnectionRow::open(
            &c,
            vec!["user:u-1".parse().unwrap(), "role:driver".parse().unwrap()],
        )
    }

    #[test]
    fn connection_rows_follow_the_design() {
        let row = row();
        let item = row.to_item(CONNECTION_SK).unwrap();
        assert_eq!(get_s(&item, PK), Some("CONN#L0SM9cOFvHcCIhw="));
        assert_eq!(get_s(&item, SK), Some("CONN"));
        assert_eq!(get_s(&item, "itemType"), Some("connection"));
        assert_eq!(get_n::<i64>(&item, TTL), Some(row.expires_at.timestamp()));
        assert!(matches!(item.get("rooms"), Some(AttributeValue::Ss(r)) if r.len() == 2));
        assert!(!item.contains_key("name"));
        let back: ConnectionRow = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back.connection(), row.connection());
        assert_eq!(back.rooms, row.rooms);
    }

    #[test]
    fn a_connection_without_rooms_has_no_rooms_attribute() {
        let mut row = row();
        row.rooms.clear();
        let item = row.to_item(CONNECTION_SK).unwrap();
        assert!(!item.contains_key("rooms"));
        let back: ConnectionRow = serde_dynamo::from_item(item).unwrap();
        assert!(back.rooms.is_empty());
    }

    #[test]
    fn session_rows_keep_the_connection_and_its_duration() {
        let row = row();
        let at = row.connected_at + chrono::Duration::seconds(95);
        let item = row.session(at).to_item(SESSION_SK).unwrap();
        assert_eq!(get_s(&item, "itemType"), Some("session"));
        assert_eq!(get_n::<i64>(&item, "durationMs"), Some(95_000));
        assert_eq!(
            get_n::<i64>(&item, TTL),
            Some(at.timestamp() + SESSION_RETENTION_SECS)
        );
    }
}
