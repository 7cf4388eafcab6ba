//! The tables and their migrations. `PRAGMA user_version` holds the schema version; each
//! migration moves it by one inside the transaction that changes the schema, so a database is
//! always at exactly one known version.
//!
//! Timestamps are stored as fixed-width RFC 3339 text (nanoseconds, `Z`), which sorts like the
//! instant it names; TTL columns are epoch seconds, as DynamoDB's TTL attribute.

use rusqlite::{Connection, TransactionBehavior};

use rnd_domain::ports::StoreError;

use crate::codec::DbResultExt;

/// The schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = 8;

/// Migrations, in order: `MIGRATIONS[n]` moves the schema from version `n` to `n + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [V1, V2, V3, V4, V5, V6, V7, V8];

/// Version 1: every item of the DynamoDB design, the change log and checkpoints.
const V1: &str = r#"
-- connections table: the connection item. `ttl` is the TTL (epoch seconds, = expires_at).
CREATE TABLE connections (
    connection_id    TEXT    NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    role             TEXT    NOT NULL,
    name             TEXT,
    connected_at     TEXT    NOT NULL,
    source_ip        TEXT,
    user_agent       TEXT,
    token_expires_at TEXT    NOT NULL,
    expires_at       TEXT    NOT NULL,
    ttl              INTEGER NOT NULL
) STRICT;

-- connections table: the membership items, `ROOM#{room}` / `CONN#{connectionId}`.
CREATE TABLE memberships (
    room          TEXT    NOT NULL,
    connection_id TEXT    NOT NULL REFERENCES connections (connection_id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL,
    ttl           INTEGER NOT NULL,
    PRIMARY KEY (room, connection_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_by_connection ON memberships (connection_id);

-- connections table: the session items (closed connections, kept for analytics).
CREATE TABLE sessions (
    connection_id    TEXT    NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    role             TEXT    NOT NULL,
    name             TEXT,
    connected_at     TEXT    NOT NULL,
    source_ip        TEXT,
    user_agent       TEXT,
    token_expires_at TEXT    NOT NULL,
    expires_at       TEXT    NOT NULL,
    rooms            TEXT    NOT NULL, -- JSON array of room names
    disconnected_at  TEXT    NOT NULL,
    duration_ms      INTEGER NOT NULL,
    ttl              INTEGER NOT NULL
) STRICT;

-- orders table: the order item (JSON of `Order`) and its index keys.
CREATE TABLE orders (
    order_id    TEXT    NOT NULL PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    chef_id     TEXT    NOT NULL,
    driver_id   TEXT,
    created_at  TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    doc         TEXT    NOT NULL
) STRICT;
CREATE INDEX orders_by_customer ON orders (customer_id, created_at, order_id);
CREATE INDEX orders_by_chef ON orders (chef_id, created_at, order_id);
CREATE INDEX orders_by_driver ON orders (driver_id, created_at, order_id)
    WHERE driver_id IS NOT NULL;
CREATE INDEX orders_by_created ON orders (created_at, order_id);

-- orders table: the live item (JSON of `LiveState`) and the columns location writes test.
CREATE TABLE order_live (
    order_id                TEXT    NOT NULL PRIMARY KEY
                                    REFERENCES orders (order_id) ON DELETE CASCADE,
    seq                     INTEGER NOT NULL,
    status                  TEXT    NOT NULL,
    driver_id               TEXT,
    location_accepted_at_ms INTEGER,
    doc                     TEXT    NOT NULL
) STRICT;

-- orders table: counters (order numbers per day).
CREATE TABLE counters (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

-- The orders table's stream: every change of an order or live row, in commit order.
CREATE TABLE change_log (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id   TEXT    NOT NULL,
    item_kind  TEXT    NOT NULL CHECK (item_kind IN ('order', 'live')),
    event_name TEXT    NOT NULL CHECK (event_name IN ('INSERT', 'MODIFY', 'REMOVE')),
    old_image  TEXT,
    new_image  TEXT,
    created_at TEXT    NOT NULL
) STRICT;
CREATE INDEX change_log_by_order ON change_log (order_id, position);

-- How far each stream consumer has read.
CREATE TABLE checkpoints (
    consumer   TEXT    NOT NULL PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
) STRICT;
"#;

/// Version 2: user profiles (the DynamoDB design's `USER#{userId}` / `PROFILE` rows). Not
/// logged in `change_log`: profiles are not order items and produce no events.
const V2: &str = r#"
CREATE TABLE profiles (
    user_id    TEXT NOT NULL PRIMARY KEY,
    role       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    doc        TEXT NOT NULL
) STRICT;
"#;

/// Version 3: the per-user inbox (the DynamoDB design's `INBOX#{userId}` items of the
/// connections table): a head per user, and the kept events with their TTL (epoch seconds).
const V3: &str = r#"
CREATE TABLE inbox_heads (
    user_id TEXT    NOT NULL PRIMARY KEY,
    epoch   INTEGER NOT NULL, -- ms, when the inbox was created
    head    INTEGER NOT NULL  -- the newest position
) STRICT;

CREATE TABLE inbox (
    user_id   TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    event_key TEXT    NOT NULL, -- {orderId}#{seq}#{event}: appends are idempotent by it
    message   TEXT    NOT NULL, -- JSON of the message as first sent, without its cursor
    ttl       INTEGER NOT NULL,
    PRIMARY KEY (user_id, position)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX inbox_by_key ON inbox (user_id, event_key);
"#;

/// Version 4: devices for push notifications (the DynamoDB design's `USER#{userId}` /
/// `DEVICE#` and `DEVTOKEN#` items) and the push ledger (`PUSHED#`).
const V4: &str = r#"
CREATE TABLE devices (
    device_id     TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    token         TEXT    NOT NULL UNIQUE, -- one user at a time
    platform      TEXT    NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    app_version   TEXT,
    locale        TEXT,
    registered_at TEXT    NOT NULL,
    last_seen_at  TEXT    NOT NULL,
    ttl           INTEGER NOT NULL  -- last_seen_at + 270 days, epoch seconds
) STRICT;
CREATE INDEX devices_by_user ON devices (user_id, last_seen_at);

CREATE TABLE push_ledger (
    push_key TEXT    NOT NULL, -- {orderId}#{seq}#{event}, or {orderId}#almost_there
    user_id  TEXT    NOT NULL,
    ttl      INTEGER NOT NULL,
    PRIMARY KEY (push_key, user_id)
) STRICT, WITHOUT ROWID;
"#;

/// Version 5: the HTTP API's idempotency keys (DynamoDB: `IDEM#{userId}` / `KEY#{key}` in the
/// connections table).
const V5: &str = r#"
CREATE TABLE idempotency_keys (
    user_id      TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    status       INTEGER,          -- the answer, once there is one
    content_type TEXT,
    location     TEXT,
    body         TEXT,
    ttl          INTEGER NOT NULL, -- epoch seconds
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;
"#;

/// Version 6: the limits' fixed-window counters (DynamoDB: `LIMIT#{bucket}` / `W#{start}` in the
/// connections table).
const V6: &str = r#"
CREATE TABLE rate_windows (
    bucket       TEXT    NOT NULL, -- {limit}#{subject}
    window_start INTEGER NOT NULL, -- epoch ms
    uses         INTEGER NOT NULL,
    ttl          INTEGER NOT NULL, -- epoch seconds: the window's end
    PRIMARY KEY (bucket, window_start)
) STRICT, WITHOUT ROWID;
"#;

/// Version 7: connection analytics' minute counters (DynamoDB: `CSTATS#{day}#{shard}` /
/// `MIN#{HH:MM}`, one counter per attribute; one shard here) and users' last-seen rows
/// (`USER#{userId}` / `PRESENCE`), both in the connections table.
const V7: &str = r#"
CREATE TABLE connection_minutes (
    minute  INTEGER NOT NULL, -- epoch seconds of the minute's start
    counter TEXT    NOT NULL, -- rnd_domain::presence::ConnectionEvent::counters names
    value   INTEGER NOT NULL,
    ttl     INTEGER NOT NULL,
    PRIMARY KEY (minute, counter)
) STRICT, WITHOUT ROWID;

CREATE TABLE presence (
    user_id      TEXT    NOT NULL PRIMARY KEY,
    last_seen_at TEXT    NOT NULL,
    ttl          INTEGER NOT NULL
) STRICT;
"#;

/// Version 8: the change log loses its per-order index. Every change of every order (each
/// accepted location) wrote it and every trim deleted from it, and only the test support read
/// by it (pollers read by position).
const V8: &str = r#"
DROP INDEX change_log_by_order;
"#;

/// Brings the database to [`SCHEMA_VERSION`], one migration per transaction.
///
/// Fails with [`StoreError::Corrupt`] when the database is at a newer version than this build
/// knows, and with [`StoreError::Backend`] when SQLite fails.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        // IMMEDIATE: two processes opening a fresh file at once migrate it once.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .db()?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let Some(migration) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Err(StoreError::corrupt(format!(
                "the database is at schema version {version}; this build knows up to \
                 {SCHEMA_VERSION}"
            )));
        };
        tx.execute_batch(migration).db()?;
        tx.pragma_update(None, "user_version", version + 1).db()?;
        tx.commit().db()?;
        tracing::debug!(version = version + 1, "migrated sqlite schema");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_changes_nothing() {
        // GIVEN a migrated database
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        // WHEN it is migrated again
        migrate(&mut conn).unwrap();
        // THEN it is at the current version
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_1_database_gains_profiles_and_keeps_its_rows() {
        // GIVEN a database at version 1 holding a counter
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute("INSERT INTO counters (name, value) VALUES ('c', 7)", [])
            .unwrap();
        // WHEN it is migrated
        migrate(&mut conn).unwrap();
        // THEN it is at the current version, has the profiles table and kept the counter
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let profiles: i64 = conn
            .query_row("SELECT count(*) FROM profiles", [], |r| r.get(0))
            .unwrap();
        assert_eq!(profiles, 0);
        let inbox: i64 = conn
            .query_row("SELECT count(*) FROM inbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(inbox, 0);
        let value: i64 = conn
            .query_row("SELECT value FROM counters WHERE name = 'c'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(value, 7);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        // GIVEN a database at a version this build does not know
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        // WHEN it is migrated
        let err = migrate(&mut conn).unwrap_err();
        // THEN it is refused, naming the version
        match err {
            StoreError::Corrupt { what, .. } => {
                assert!(what.contains(&format!("schema version {}", SCHEMA_VERSION + 1)));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
