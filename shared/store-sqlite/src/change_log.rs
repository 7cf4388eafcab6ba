//! The change log: the embedded stand-in for the orders table's DynamoDB stream.
//!
//! Every write to an order or live row logs one change, with the item's old and new image, as
//! part of the write: a committed change is always in the log, a rolled-back one never is, and
//! positions follow commit order. A poller reads with [`SqliteStore::changes_after`] and
//! remembers how far it got with [`SqliteStore::save_checkpoint`]; [`SqliteStore::trim_changes`]
//! drops what the named consumers have all checkpointed.
//!
//! Where the log lives follows the store:
//! - on a **file**, in the `change_log` table, appended in the write's own SQLite transaction
//!   (images as JSON of [`OrderRecord`]), so it survives a restart and other processes sharing
//!   the file see it;
//! - **in memory**, in [`MemoryLog`], appended when the write's work commits. Nothing else can
//!   write an in-memory database, and nothing of it survives the process, so the table would
//!   only be a slower copy: writing both images of every change into it and trimming it again
//!   was the largest part of the location write (`make bench-knee`), and a poller more than a
//!   few thousand changes behind read it back by query, parsing both images of every change.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rnd_domain::OrderRecord;
use rnd_domain::change::{ChangeKind, OrderChange};
use rnd_domain::ids::OrderId;
use rnd_domain::ports::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

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
    /// What happened to the item, and the item before and after. Shared: every consumer of
    /// an in-memory log takes it from there (copying both rows for each was a tenth of a
    /// poller's work per location update).
    pub change: Arc<OrderChange>,
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
        if let Some(log) = &self.memory {
            return Ok(crate::lock(log).after(position, limit));
        }
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
            read_checkpoint(conn, &consumer)?.map_or(Ok(0), |p| to_u64("checkpoint", p))
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
            conn.prepare_cached(
                "INSERT INTO checkpoints (consumer, position, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (consumer) DO UPDATE
                 SET position = excluded.position, updated_at = excluded.updated_at",
            )
            .db()?
            .execute(params![consumer, stored, encode_time(Utc::now())])
            .db()?;
            tracing::debug!(%consumer, position, "saved change log checkpoint");
            Ok(())
        })
        .await
    }

    /// Removes the changes that every one of `consumers` has checkpointed (a consumer that
    /// never saved a checkpoint has read nothing, so nothing goes), and returns how many went.
    /// DynamoDB drops a stream's records after 24 hours whoever read them; the change log
    /// keeps exactly what its consumers have yet to read, so a busy stack's database stays
    /// the size of its items. A consumer not named here finds the log trimmed.
    ///
    /// Fails with [`StoreError::Backend`] when SQLite fails.
    pub async fn trim_changes(&self, consumers: &[&str]) -> Result<u64, StoreError> {
        let consumers: Vec<String> = consumers.iter().map(|&c| c.to_owned()).collect();
        let memory = self.memory.clone();
        self.run(move |conn| {
            let mut read_by_all = i64::MAX;
            for consumer in &consumers {
                read_by_all = read_by_all.min(read_checkpoint(conn, consumer)?.unwrap_or(0));
            }
            if consumers.is_empty() || read_by_all <= 0 {
                return Ok(0);
            }
            if let Some(log) = memory {
                let removed = crate::lock(&log).trim(to_u64("checkpoint", read_by_all)?);
                tracing::debug!(removed, up_to = read_by_all, "trimmed the change log");
                return Ok(removed);
            }
            let removed = conn
                .prepare_cached("DELETE FROM change_log WHERE position <= ?1")
                .db()?
                .execute([read_by_all])
                .db()?;
            tracing::debug!(removed, up_to = read_by_all, "trimmed the change log");
            Ok(u64::try_from(removed).unwrap_or(u64::MAX))
        })
        .await
    }
}

/// The position `consumer` last checkpointed, if it ever did.
fn read_checkpoint(conn: &Connection, consumer: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT position FROM checkpoints WHERE consumer = ?1")
        .db()?
        .query_row([consumer], |row| row.get(0))
        .optional()
        .db()
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
            change: Arc::new(change),
            at: decode_time("change_log.created_at", &self.created_at)?,
        })
    }
}

thread_local! {
    /// While an in-memory store's work runs on this thread ([`collect_appended`]), the changes
    /// [`append`] logs, in order: committed if that work returns `Ok` (every caller of
    /// [`append`] commits or fails). `None` otherwise: a store on a file writes its table.
    static APPENDED: std::cell::RefCell<Option<Collected>> =
        const { std::cell::RefCell::new(None) };
}

/// The changes one piece of work logged, positioned from the log's next position.
struct Collected {
    next_position: u64,
    changes: Vec<LoggedChange>,
}

/// Runs `work` collecting the changes it logs on this thread, positioned from `next_position`
/// (the in-memory log's, read under the connection's lock, which `work` runs under too);
/// returns its result and them.
pub(crate) fn collect_appended<T>(
    next_position: u64,
    work: impl FnOnce() -> T,
) -> (T, Vec<LoggedChange>) {
    /// Ends the collection however `work` ends (a panic too), so no later work on this thread
    /// logs into a collection nobody reads.
    struct Ends;
    impl Drop for Ends {
        fn drop(&mut self) {
            APPENDED.set(None);
        }
    }
    APPENDED.set(Some(Collected {
        next_position,
        changes: Vec::new(),
    }));
    let ends = Ends;
    let result = work();
    let changes = APPENDED.take().map(|c| c.changes).unwrap_or_default();
    drop(ends);
    (result, changes)
}

/// Whether this thread's work logs into an in-memory log (which needs no JSON images).
fn collecting() -> bool {
    APPENDED.with_borrow(Option::is_some)
}

/// The log of an in-memory store: every change not yet trimmed, in position order, so its
/// pollers read without a query and without parsing two JSON images per change (reading them
/// back was a fifth of the stack's instructions per location update). It holds what the
/// `change_log` table would: nothing is dropped until every consumer has checkpointed it.
///
/// It also keeps each order's latest live state, from the same committed changes (every write
/// of a live row is logged), so the location path reads it without a query and a JSON parse.
#[derive(Debug, Default)]
pub(crate) struct MemoryLog {
    changes: std::collections::VecDeque<LoggedChange>,
    /// The last position given out (0 before the first change): positions are never reused,
    /// even once trimming has emptied the log.
    last_position: u64,
    live: std::collections::HashMap<OrderId, rnd_domain::LiveState>,
}

impl MemoryLog {
    /// The position the next logged change gets.
    pub(crate) fn next_position(&self) -> u64 {
        self.last_position + 1
    }

    /// Adds changes just committed, positioned from [`next_position`](Self::next_position) in
    /// order (as [`collect_appended`] positions them under the connection's lock).
    ///
    /// Fails with [`StoreError::Corrupt`] (and adds nothing) when their positions do not follow
    /// on: a bug of the caller, which would otherwise serve a log with a hole.
    pub(crate) fn push(&mut self, committed: Vec<LoggedChange>) -> Result<(), StoreError> {
        for (n, change) in committed.iter().enumerate() {
            if change.position != self.last_position + 1 + n as u64 {
                return Err(StoreError::corrupt(format!(
                    "change {} committed after position {}",
                    change.position, self.last_position
                )));
            }
        }
        for change in committed {
            match (&change.change.old, &change.change.new) {
                (_, Some(OrderRecord::Live(live))) => {
                    self.live.insert(change.order_id.clone(), live.clone());
                }
                (Some(OrderRecord::Live(_)), None) => {
                    self.live.remove(&change.order_id);
                }
                _ => {}
            }
            self.last_position = change.position;
            self.changes.push_back(change);
        }
        Ok(())
    }

    /// The live state of `order` as last committed, if this log holds it.
    pub(crate) fn live(&self, order: &OrderId) -> Option<rnd_domain::LiveState> {
        self.live.get(order).cloned()
    }

    /// Up to `limit` changes after `position`, in position order; what was trimmed is gone,
    /// as from the table.
    pub(crate) fn after(&self, position: u64, limit: usize) -> Vec<LoggedChange> {
        let Some(first) = self.changes.front().map(|c| c.position) else {
            return Vec::new();
        };
        // Positions in the log are consecutive, so the first one wanted is found by counting.
        let skip =
            usize::try_from(position.saturating_add(1).saturating_sub(first)).unwrap_or(usize::MAX);
        if skip >= self.changes.len() {
            return Vec::new();
        }
        self.changes.range(skip..).take(limit).cloned().collect()
    }

    /// Every change of `order` still in the log, in position order.
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    pub(crate) fn of_order(&self, order: &OrderId) -> Vec<LoggedChange> {
        self.changes
            .iter()
            .filter(|c| &c.order_id == order)
            .cloned()
            .collect()
    }

    /// Drops the changes up to and including `position`; returns how many went.
    pub(crate) fn trim(&mut self, position: u64) -> u64 {
        let before = self.changes.len();
        while self.changes.front().is_some_and(|c| c.position <= position) {
            self.changes.pop_front();
        }
        (before - self.changes.len()) as u64
    }
}

/// The kind of a change (`old` → `new`) and the record it is about (the new one, or the old
/// one of a removal).
///
/// Fails with [`StoreError::Corrupt`] when both images are absent or they name different
/// orders or items (a bug in the caller).
fn describe<'a>(
    old: Option<&'a OrderRecord>,
    new: Option<&'a OrderRecord>,
) -> Result<(ChangeKind, &'a OrderRecord), StoreError> {
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
    Ok((event_name, record))
}

/// Appends the change of one item (`old` → `new`) to the log as part of the caller's
/// transaction, and returns its position. The kind follows from which images are present. On a
/// file the images are encoded for the table; an in-memory log takes the records as they are.
///
/// Fails with [`StoreError::Corrupt`] when both images are absent or they name different
/// orders (a bug in the caller), and with [`StoreError::Backend`] when SQLite fails.
pub(crate) fn append(
    tx: &Connection,
    old: Option<&OrderRecord>,
    new: Option<&OrderRecord>,
) -> Result<u64, StoreError> {
    if let Some(position) = collect(old, new)? {
        return Ok(position);
    }
    fn encoded(record: Option<&OrderRecord>) -> Result<Option<(&OrderRecord, String)>, StoreError> {
        record.map(|r| Ok((r, to_json(r)?))).transpose()
    }
    append_images(tx, encoded(old)?, encoded(new)?)
}

/// Logs the change in this thread's in-memory log, if its work has one ([`collect_appended`]);
/// `None` when the change goes to the table.
fn collect(
    old: Option<&OrderRecord>,
    new: Option<&OrderRecord>,
) -> Result<Option<u64>, StoreError> {
    if !collecting() {
        return Ok(None);
    }
    let (kind, record) = describe(old, new)?;
    let (order_id, item_kind) = identify(record);
    let position = APPENDED.with_borrow_mut(|collected| {
        let collected = collected.as_mut()?;
        let position = collected.next_position + collected.changes.len() as u64;
        collected.changes.push(LoggedChange {
            position,
            order_id: order_id.clone(),
            change: Arc::new(OrderChange {
                kind,
                old: old.cloned(),
                new: new.cloned(),
            }),
            at: Utc::now(),
        });
        Some(position)
    });
    if let Some(position) = position {
        tracing::debug!(%order_id, item_kind, event_name = kind.as_str(), position, "logged order change");
    }
    Ok(position)
}

/// `record`'s image from its item document `doc` (the JSON of the order or live state, as its
/// row stores it): `{"itemType":"…",` followed by the document's fields, which is what
/// serializing the internally tagged [`OrderRecord`] writes, so nothing is encoded twice.
pub(crate) fn image(record: &OrderRecord, doc: &str) -> Result<String, StoreError> {
    let (_, item_type) = identify(record);
    let fields = doc
        .strip_prefix('{')
        .filter(|rest| rest.len() > 1)
        .ok_or_else(|| StoreError::corrupt(format!("the {item_type} document is not an object")))?;
    Ok(format!("{{\"itemType\":\"{item_type}\",{fields}"))
}

/// [`append`] for records whose item documents (their rows' JSON) are at hand: a file's table
/// takes the images made from them ([`image`]), so nothing is encoded again; an in-memory log
/// takes the records alone.
pub(crate) fn append_documents(
    tx: &Connection,
    old: Option<(&OrderRecord, &str)>,
    new: Option<(&OrderRecord, &str)>,
) -> Result<u64, StoreError> {
    if let Some(position) = collect(old.map(|(r, _)| r), new.map(|(r, _)| r))? {
        return Ok(position);
    }
    fn imaged<'a>(
        side: Option<(&'a OrderRecord, &str)>,
    ) -> Result<Option<(&'a OrderRecord, String)>, StoreError> {
        side.map(|(record, doc)| Ok((record, image(record, doc)?)))
            .transpose()
    }
    append_images(tx, imaged(old)?, imaged(new)?)
}

/// The table's row of a change whose images (JSON of the [`OrderRecord`]) are made.
fn append_images(
    tx: &Connection,
    old: Option<(&OrderRecord, String)>,
    new: Option<(&OrderRecord, String)>,
) -> Result<u64, StoreError> {
    let (old, old_image) = old.unzip();
    let (new, new_image) = new.unzip();
    let (event_name, record) = describe(old, new)?;
    let (order_id, item_kind) = identify(record);
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
        &new_image,
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

#[cfg(test)]
mod tests {
    use rnd_domain::ports::{LiveLocationStore, OrderStore};
    use rnd_domain::{Action, LocationOutcome, OrderStatus};
    use rnd_store_conformance::fixtures::{
        admin, advance, customer, driver, location_write, next_step, now, placed_order,
    };

    use super::*;

    /// What the `change_log` table holds after `position` (a query), whatever the store.
    async fn logged(store: &SqliteStore, position: u64, limit: usize) -> Vec<LoggedChange> {
        let (position, limit) = (
            i64::try_from(position).unwrap(),
            i64::try_from(limit).unwrap(),
        );
        store
            .run(move |conn| read_changes(conn, Filter::After(position), limit))
            .await
            .unwrap()
    }

    /// A change at `position` (a live row placed).
    fn change_at(position: u64) -> LoggedChange {
        let view = placed_order("o-recent", &customer(), now());
        LoggedChange {
            position,
            order_id: view.order.order_id.clone(),
            change: Arc::new(
                OrderChange::between(None, Some(OrderRecord::Live(view.live))).unwrap(),
            ),
            at: now(),
        }
    }

    fn positions(changes: Vec<LoggedChange>) -> Vec<u64> {
        changes.iter().map(|c| c.position).collect()
    }

    #[tokio::test]
    async fn an_in_memory_store_reads_live_rows_from_what_it_committed_and_a_stale_copy_is_caught()
    {
        // GIVEN an in-memory store with an order picked up and one location accepted
        let store = SqliteStore::in_memory().unwrap();
        let view = placed_order("o-cached", &customer(), now());
        store.create_order(&view).await.unwrap();
        let moving = advance(&store, view, OrderStatus::PickedUp).await;
        let mut write = location_write(&moving, &driver(), now().timestamp_millis());
        let LocationOutcome::Accepted { seq } = store.record_location(&write).await.unwrap() else {
            panic!("accepted")
        };
        // THEN the live read is the row as committed
        let id = moving.order.order_id.clone();
        let read = store.get_live(&id).await.unwrap().expect("live");
        assert_eq!(read.seq, seq);
        assert_eq!(
            Some(read),
            store
                .run({
                    let id = id.clone();
                    move |conn| crate::orders::read_live(conn, &id)
                })
                .await
                .unwrap()
        );

        // WHEN the row moves on behind the store's back (no log), so its kept copy is stale
        let moved = store
            .run({
                let id = id.clone();
                move |conn| {
                    conn.execute(
                        "UPDATE order_live SET seq = seq + 5, doc = json_set(doc, '$.seq', seq + 5)
                         WHERE order_id = ?1",
                        [id.as_str()],
                    )
                    .map_err(StoreError::backend)
                }
            })
            .await
            .unwrap();
        assert_eq!(moved, 1);
        write.now_ms += 2_000;
        write.min_interval_ms = 1_000;

        // THEN the next location is still judged on the row: accepted after the row's seq
        assert_eq!(
            store.record_location(&write).await.unwrap(),
            LocationOutcome::Accepted { seq: seq + 6 }
        );
        assert_eq!(
            store.get_live(&id).await.unwrap().expect("live").seq,
            seq + 6
        );
    }

    /// The same writes, on each of `stores` alike: orders placed and moved on, locations
    /// accepted and refused, a stale transition refused.
    async fn busy(stores: [&SqliteStore; 2]) {
        for n in 0..3 {
            let at = now();
            let view = placed_order(&format!("o-{n}"), &customer(), at);
            let stale = view.apply(&admin(), Action::ConfirmPayment, at).unwrap();
            let mut steps = vec![view.clone()];
            while let Some((actor, action)) = next_step(steps.last().unwrap().order.status)
                .filter(|_| steps.last().unwrap().order.status != OrderStatus::PickedUp)
            {
                let next = steps.last().unwrap().apply(&actor, action, at).unwrap();
                steps.push(next);
            }
            for store in stores {
                store.create_order(&view).await.unwrap();
                for pair in steps.windows(2) {
                    store.commit_transition(&pair[0], &pair[1]).await.unwrap();
                }
                assert!(store.commit_transition(&view, &stale).await.is_err());
                let moving = steps.last().unwrap();
                let mut write = location_write(moving, &driver(), at.timestamp_millis());
                assert!(matches!(
                    store.record_location(&write).await.unwrap(),
                    LocationOutcome::Accepted { .. }
                ));
                write.now_ms += 1;
                assert!(!matches!(
                    store.record_location(&write).await.unwrap(),
                    LocationOutcome::Accepted { .. }
                ));
            }
        }
    }

    /// A change without its time (the two stores log at different instants).
    fn timeless(changes: Vec<LoggedChange>) -> Vec<(u64, OrderId, OrderChange)> {
        changes
            .into_iter()
            .map(|c| (c.position, c.order_id, Arc::unwrap_or_clone(c.change)))
            .collect()
    }

    #[tokio::test]
    async fn an_in_memory_log_pages_exactly_as_a_file_stores_table() {
        // GIVEN the same writes on an in-memory store and on a store on a file
        let memory = SqliteStore::in_memory().unwrap();
        let dir = std::env::temp_dir().join(format!("rnd-change-log-{}", uuid::Uuid::new_v4()));
        let file = SqliteStore::open(&dir.join("rnd.sqlite3")).unwrap();
        busy([&memory, &file]).await;
        let last = logged(&file, 0, 1_000).await.last().unwrap().position;
        assert!(last > 20, "{last} changes");
        // AND the in-memory store wrote none of them to the table
        assert!(logged(&memory, 0, 1_000).await.is_empty());

        // WHEN their pollers page through the log from every position, in pages of every size
        for position in 0..=last + 1 {
            for limit in [1, 3, 100] {
                // THEN each page from memory is the one the file's table holds: positions,
                // kinds and images
                assert_eq!(
                    timeless(memory.changes_after(position, limit).await.unwrap()),
                    timeless(file.changes_after(position, limit).await.unwrap()),
                    "after {position}, {limit} at most"
                );
            }
        }
        // AND once both are trimmed to the same checkpoint, they still agree
        for store in [&memory, &file] {
            store.save_checkpoint("fanout", last / 2).await.unwrap();
            assert_eq!(store.trim_changes(&["fanout"]).await.unwrap(), last / 2);
        }
        assert_eq!(
            timeless(memory.changes_after(0, 1_000).await.unwrap()),
            timeless(file.changes_after(0, 1_000).await.unwrap()),
        );
        drop(file);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_image_from_an_item_document_is_the_records_own_json() {
        // GIVEN an order and its live state, as their rows store them
        let view = placed_order("o-tagged", &customer(), now());
        for record in [
            OrderRecord::Order(view.order.clone()),
            OrderRecord::Live(view.live.clone()),
        ] {
            let doc = match &record {
                OrderRecord::Order(order) => to_json(order),
                OrderRecord::Live(live) => to_json(live),
            }
            .expect("document");
            // WHEN the image is made from the document THEN it is the record's JSON, to the byte
            assert_eq!(
                image(&record, &doc).expect("image"),
                to_json(&record).expect("json")
            );
        }
        // AND a document that is not an object is refused
        let live = OrderRecord::Live(view.live);
        assert!(matches!(
            image(&live, "{}"),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            image(&live, "[1]"),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn the_memory_log_serves_any_position_keeps_positions_and_drops_only_what_was_trimmed() {
        // GIVEN ten changes committed
        let mut log = MemoryLog::default();
        assert_eq!(log.next_position(), 1);
        log.push((1..=10).map(change_at).collect()).unwrap();
        // WHEN pollers read from various positions
        // THEN each gets the changes after its position, as many as it asked for at most
        assert_eq!(positions(log.after(0, 3)), [1, 2, 3]);
        assert_eq!(positions(log.after(7, 100)), [8, 9, 10]);
        // AND a caught-up poller is told there is nothing more
        assert_eq!(positions(log.after(10, 3)), Vec::<u64>::new());
        assert_eq!(positions(log.after(u64::MAX, 3)), Vec::<u64>::new());

        // WHEN what every consumer has read (up to 4) is trimmed
        // THEN those four go, and a reader from before them gets what is left
        assert_eq!(log.trim(4), 4);
        assert_eq!(positions(log.after(0, 2)), [5, 6]);
        assert_eq!(positions(log.after(5, 2)), [6, 7]);

        // WHEN changes that do not follow on are pushed
        // THEN they are refused and nothing is added
        assert!(matches!(
            log.push(vec![change_at(12)]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(log.push(vec![change_at(11), change_at(13)]).is_err());
        assert_eq!(log.next_position(), 11);

        // WHEN everything is trimmed THEN the log is empty and positions are not reused
        assert_eq!(log.trim(u64::MAX), 6);
        assert!(log.after(0, 100).is_empty());
        assert_eq!(log.next_position(), 11);
        log.push(vec![change_at(11)]).unwrap();
        assert_eq!(positions(log.after(0, 100)), [11]);
    }
}
