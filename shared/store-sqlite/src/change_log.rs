//! The change log: the embedded stand-in for the orders table's DynamoDB stream.
//!
//! Every write to an order or live row appends one row to `change_log` in the same SQLite
//! transaction as the write, with the item's old and new image as JSON of [`OrderRecord`]. So a
//! committed change is always in the log, a rolled-back one never is, and positions follow
//! commit order. A poller reads with [`SqliteStore::changes_after`] and remembers how far it got
//! with [`SqliteStore::save_checkpoint`]; both survive a restart.

use chrono::{DateTime, Utc};
use rnd_domain::OrderRecord;
use rnd_domain::change::{ChangeKind, OrderChange};
use rnd_domain::ids::OrderId;
use rnd_domain::ports::StoreError;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::SqliteStore;
use crate::codec::{
    DbResultExt, decode_time, encode_time, from_json, parse_column, to_i64, to_json, to_u64,
};

/// One change of one order item, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedChange {
    /// Position in the log: increasing in commit order, never reused.
    pub position: u64,
    /// The order whose item changed.
    pub order_id: OrderId,
    /// What happened to the item, and the item before and after.
    pub change: OrderChange,
    /// When the change was logged (the store's clock).
    pub at: DateTime<Utc>,
}

impl SqliteStore {
    /// Up to `limit` changes with a position greater than `position`, in position order. Start
    /// from 0 (or a saved [`checkpoint`](Self::checkpoint)) and pass the last position seen to
    /// get the next page; an empty page means the poller is caught up.
    ///
    /// Fails with [`StoreError::Corrupt`] when a logged image does not parse as an
    /// [`OrderRecord`], and with [`StoreError::Backend`] when SQLite fails.
    pub async fn changes_after(
        &self,
        position: u64,
        limit: usize,
    ) -> Result<Vec<LoggedChange>, StoreError> {
        // Past i64::MAX there is nothing (positions are SQLite integers).
        let Ok(position) = i64::try_from(position) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| read_changes(conn, Filter::After(position), limit))
            .await
    }

    /// The position `consumer` last saved with [`save_checkpoint`](Self::save_checkpoint), or 0
    /// when it never saved one (read the log from the start).
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails.
    pub async fn checkpoint(&self, consumer: &str) -> Result<u64, StoreError> {
        let consumer = consumer.to_owned();
        self.run(move |conn| {
            let position: Option<i64> = conn
                .query_row(
                    "SELECT position FROM checkpoints WHERE consumer = ?1",
                    [&consumer],
                    |row| row.get(0),
                )
                .optional()
                .db()?;
            position.map_or(Ok(0), |p| to_u64("checkpoint", p))
        })
        .await
    }

    /// Records that `consumer` has handled every change up to and including `position`.
    /// Durable once it returns. Saving a lower position than before moves the checkpoint back
    /// (a consumer may choose to re-read).
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails, and with [`StoreError::Corrupt`]
    /// when `position` exceeds `i64::MAX`.
    pub async fn save_checkpoint(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        let consumer = consumer.to_owned();
        let stored = to_i64("checkpoint", position)?;
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO checkpoints (consumer, position, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (consumer) DO UPDATE
                 SET position = excluded.position, updated_at = excluded.updated_at",
                params![consumer, stored, encode_time(Utc::now())],
            )
            .db()?;
            tracing::debug!(%consumer, position, "saved change log checkpoint");
            Ok(())
        })
        .await
    }
}

/// Which rows [`read_changes`] returns.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    /// Every change after a position.
    After(i64),
    /// Every change of one order.
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    Order(OrderId),
}

/// Reads logged changes in position order (at most `limit`).
pub(crate) fn read_changes(
    conn: &Connection,
    filter: Filter,
    limit: i64,
) -> Result<Vec<LoggedChange>, StoreError> {
    const COLUMNS: &str =
        "SELECT position, order_id, event_name, old_image, new_image, created_at FROM change_log";
    let (sql, key): (String, rusqlite::types::Value) = match filter {
        Filter::After(position) => (
            format!("{COLUMNS} WHERE position > ?1 ORDER BY position LIMIT ?2"),
            position.into(),
        ),
        Filter::Order(order_id) => (
            format!("{COLUMNS} WHERE order_id = ?1 ORDER BY position LIMIT ?2"),
            String::from(order_id).into(),
        ),
    };
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(params![key, limit], |row| {
            Ok(RawChange {
                position: row.get(0)?,
                order_id: row.get(1)?,
                event_name: row.get(2)?,
                old_image: row.get(3)?,
                new_image: row.get(4)?,
                created_at: row.get(5)?,
            })
        })
        .db()?;
    let mut changes = Vec::new();
    for raw in rows {
        changes.push(raw.db()?.decode()?);
    }
    Ok(changes)
}

/// A change log row as stored.
struct RawChange {
    position: i64,
    order_id: String,
    event_name: String,
    old_image: Option<String>,
    new_image: Option<String>,
    created_at: String,
}

impl RawChange {
    fn decode(self) -> Result<LoggedChange, StoreError> {
        let what = |side: &str| format!("change {} {side} image", self.position);
        let kind: ChangeKind = parse_column("change_log.event_name", &self.event_name, str::parse)?;
        let old = self
            .old_image
            .as_deref()
            .map(|text| from_json(&what("old"), text))
            .transpose()?;
        let new = self
            .new_image
            .as_deref()
            .map(|text| from_json(&what("new"), text))
            .transpose()?;
        let change = OrderChange::between(old, new)
            .filter(|c| c.kind == kind)
            .ok_or_else(|| {
                StoreError::corrupt(format!(
                    "change {}: its event name disagrees with its images",
                    self.position
                ))
            })?;
        Ok(LoggedChange {
            position: to_u64("change_log.position", self.position)?,
            order_id: parse_column("change_log.order_id", &self.order_id, OrderId::parse)?,
            change,
            at: decode_time("change_log.created_at", &self.created_at)?,
        })
    }
}

/// Appends the change of one item (`old` → `new`) to the log, inside the caller's transaction,
/// and returns its position. The kind follows from which images are present.
///
/// Fails with [`StoreError::Corrupt`] when both images are absent or they name different
/// orders (a bug in the caller), and with [`StoreError::Backend`] when SQLite fails.
pub(crate) fn append(
    tx: &Transaction<'_>,
    old: Option<&OrderRecord>,
    new: Option<&OrderRecord>,
) -> Result<u64, StoreError> {
    let (Some(event_name), Some(record)) = (ChangeKind::of(old, new), new.or(old)) else {
        return Err(StoreError::corrupt(
            "a logged change needs an old or a new image",
        ));
    };
    let (order_id, item_kind) = identify(record);
    if let (Some(old), Some(new)) = (old, new)
        && identify(old) != identify(new)
    {
        return Err(StoreError::corrupt(format!(
            "a logged change must keep its item ({order_id} {item_kind})"
        )));
    }
    let old_image = old.map(to_json).transpose()?;
    let new_image = new.map(to_json).transpose()?;
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO change_log (order_id, item_kind, event_name, old_image, new_image,
                                     created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .db()?;
    stmt.execute(params![
        order_id.as_str(),
        item_kind,
        event_name.as_str(),
        old_image,
        new_image,
        encode_time(Utc::now()),
    ])
    .db()?;
    let position = to_u64("change_log.position", tx.last_insert_rowid())?;
    tracing::debug!(
        %order_id,
        item_kind,
        event_name = event_name.as_str(),
        seq = record.seq(),
        position,
        "logged order change"
    );
    Ok(position)
}

/// The order and item kind (`order` or `live`) a record is about.
fn identify(record: &OrderRecord) -> (&OrderId, &'static str) {
    match record {
        OrderRecord::Order(order) => (&order.order_id, "order"),
        OrderRecord::Live(live) => (&live.order_id, "live"),
    }
}
