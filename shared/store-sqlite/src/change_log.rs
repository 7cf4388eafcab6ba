//! The change log: the embedded stand-in for the orders table's DynamoDB stream.
//!
//! Every write to an order or live row appends one row to `change_log` in the same SQLite
//! transaction as the write, with the item's old and new image as JSON of [`OrderRecord`]. So a
//! committed change is always in the log, a rolled-back one never is, and positions follow
//! commit order. A poller reads with [`SqliteStore::changes_after`] and remembers how far it got
//! with [`SqliteStore::save_checkpoint`]; both survive a restart. [`SqliteStore::trim_changes`]
//! drops what the named consumers have all checkpointed.

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
        if let Some(recent) = &self.recent
            && let Some(changes) = recent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .after(position, limit)
        {
            return Ok(changes);
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
        self.run(move |conn| {
            let mut read_by_all = i64::MAX;
            for consumer in &consumers {
                read_by_all = read_by_all.min(read_checkpoint(conn, consumer)?.unwrap_or(0));
            }
            if consumers.is_empty() || read_by_all <= 0 {
                return Ok(0);
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
            change,
            at: decode_time("change_log.created_at", &self.created_at)?,
        })
    }
}

thread_local! {
    /// While an in-memory store's work runs on this thread ([`collect_appended`]), the changes
    /// [`append`] logs, in order: committed if that work returns `Ok` (every caller of
    /// [`append`] commits or fails). `None` otherwise: a store on a file keeps nothing.
    static APPENDED: std::cell::RefCell<Option<Vec<Appended>>> =
        const { std::cell::RefCell::new(None) };
}

/// A change just logged, with its new image as logged (JSON, `None` for a removal).
pub(crate) type Appended = (LoggedChange, Option<String>);

/// Runs `work` collecting the changes it logs on this thread; returns its result and them.
pub(crate) fn collect_appended<T>(work: impl FnOnce() -> T) -> (T, Vec<Appended>) {
    APPENDED.set(Some(Vec::new()));
    let result = work();
    (result, APPENDED.take().unwrap_or_default())
}

/// The latest committed changes of an in-memory store, up to [`RecentChanges::CAPACITY`], so
/// its pollers read them without a query and without parsing two JSON images per change:
/// reading the log back was a fifth of the stack's instructions per location update
/// (callgrind, `make bench-knee`). Only an in-memory store keeps them: nothing else can write
/// to its database, so every change passes through here, in position order.
///
/// It also keeps each order's latest live state, from the same committed changes (every write
/// of a live row is logged), so the location path reads it without a query and a JSON parse.
#[derive(Debug, Default)]
pub(crate) struct RecentChanges {
    changes: std::collections::VecDeque<LoggedChange>,
    live: std::collections::HashMap<OrderId, KeptLive>,
}

/// An order's live state as last committed, and its image as logged then: the old image of
/// the next change of the row, which so is not encoded again.
#[derive(Debug, Clone)]
pub(crate) struct KeptLive {
    pub(crate) state: rnd_domain::LiveState,
    pub(crate) image: String,
}

impl RecentChanges {
    /// How many changes are kept: many batches of the default size, so a poller falls back to
    /// the query only when it is far behind.
    pub(crate) const CAPACITY: usize = 4_096;

    /// Adds changes just committed, in position order. A gap in positions (which a single
    /// writer never leaves) forgets the older ones rather than serve around it.
    pub(crate) fn push(&mut self, committed: Vec<Appended>) {
        for (change, new_image) in committed {
            match (&change.change.old, &change.change.new, new_image) {
                (_, Some(OrderRecord::Live(live)), Some(image)) => {
                    let kept = KeptLive {
                        state: live.clone(),
                        image,
                    };
                    self.live.insert(change.order_id.clone(), kept);
                }
                (Some(OrderRecord::Live(_)), _, _) => {
                    self.live.remove(&change.order_id);
                }
                _ => {}
            }
            if self
                .changes
                .back()
                .is_some_and(|last| last.position + 1 != change.position)
            {
                self.changes.clear();
            }
            if self.changes.len() == Self::CAPACITY {
                self.changes.pop_front();
            }
            self.changes.push_back(change);
        }
    }

    /// The live state of `order` as last committed, if this store logged it (through the
    /// store's lock of its recent changes).
    pub(crate) fn live_in(recent: &std::sync::Mutex<Self>, order: &OrderId) -> Option<KeptLive> {
        recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .live
            .get(order)
            .cloned()
    }

    /// Up to `limit` changes after `position`, when every change after it is kept here;
    /// `None` when older ones are asked for (or none is kept yet): read the log then.
    pub(crate) fn after(&self, position: u64, limit: usize) -> Option<Vec<LoggedChange>> {
        let first = self.changes.front()?.position;
        if position.saturating_add(1) < first {
            return None;
        }
        let skip = usize::try_from(position.saturating_add(1) - first).unwrap_or(usize::MAX);
        if skip >= self.changes.len() {
            return Some(Vec::new());
        }
        // `range`, not `iter().skip()`: a caught-up poller starts near the end, and skipping
        // walks every kept change before it.
        Some(self.changes.range(skip..).take(limit).cloned().collect())
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
    fn encoded(record: Option<&OrderRecord>) -> Result<Option<(&OrderRecord, String)>, StoreError> {
        record.map(|r| Ok((r, to_json(r)?))).transpose()
    }
    append_images(tx, encoded(old)?, encoded(new)?)
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

/// [`append`] for records whose images (JSON of the [`OrderRecord`]) are at hand.
pub(crate) fn append_images(
    tx: &Transaction<'_>,
    old: Option<(&OrderRecord, String)>,
    new: Option<(&OrderRecord, String)>,
) -> Result<u64, StoreError> {
    let (old, old_image) = old.unzip();
    let (new, new_image) = new.unzip();
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
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO change_log (order_id, item_kind, event_name, old_image, new_image,
                                     created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .db()?;
    let at = Utc::now();
    stmt.execute(params![
        order_id.as_str(),
        item_kind,
        event_name.as_str(),
        old_image,
        &new_image,
        encode_time(at),
    ])
    .db()?;
    let position = to_u64("change_log.position", tx.last_insert_rowid())?;
    APPENDED.with_borrow_mut(|appended| {
        let Some(appended) = appended else { return };
        let change = LoggedChange {
            position,
            order_id: order_id.clone(),
            change: OrderChange {
                kind: event_name,
                old: old.cloned(),
                new: new.cloned(),
            },
            at,
        };
        appended.push((change, new_image));
    });
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
        admin, advance, customer, driver, location_write, now, placed_order,
    };

    use super::*;

    /// What the log itself holds after `position` (a query), bypassing the recent changes.
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
            change: OrderChange::between(None, Some(OrderRecord::Live(view.live))).unwrap(),
            at: now(),
        }
    }

    fn positions(changes: Option<Vec<LoggedChange>>) -> Option<Vec<u64>> {
        changes.map(|c| c.iter().map(|c| c.position).collect())
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

    #[tokio::test]
    async fn an_in_memory_store_serves_from_memory_exactly_the_changes_its_log_holds() {
        // GIVEN an in-memory store with orders placed and moved on, locations accepted and
        // refused, and a stale transition refused
        let store = SqliteStore::in_memory().unwrap();
        for n in 0..3 {
            let view = placed_order(&format!("o-{n}"), &customer(), now());
            store.create_order(&view).await.unwrap();
            let stale = view.apply(&admin(), Action::ConfirmPayment, now()).unwrap();
            let moving = advance(&store, view.clone(), OrderStatus::PickedUp).await;
            assert!(store.commit_transition(&view, &stale).await.is_err());
            let mut write = location_write(&moving, &driver(), now().timestamp_millis());
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
        let last = logged(&store, 0, 1_000).await.last().unwrap().position;
        assert!(last > 20, "{last} changes");
        // WHEN its pollers page through the log from every position, in pages of every size
        for position in 0..=last + 1 {
            for limit in [1, 3, 100] {
                // THEN each page is the one the log holds: positions, kinds, images and times
                assert_eq!(
                    store.changes_after(position, limit).await.unwrap(),
                    logged(&store, position, limit).await,
                    "after {position}, {limit} at most"
                );
            }
        }
        // AND the pages came from memory
        let recent = store.recent.as_ref().unwrap().lock().unwrap();
        assert_eq!(positions(recent.after(0, 1)), Some(vec![1]));
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
    fn the_recent_changes_keep_the_latest_and_send_older_reads_to_the_log() {
        // GIVEN more changes than are kept
        let capacity = RecentChanges::CAPACITY as u64;
        let mut recent = RecentChanges::default();
        recent.push((1..=capacity + 10).map(|p| (change_at(p), None)).collect());
        // WHEN pollers read from various positions
        // THEN a read within the kept ones is answered, a read of older ones is not
        assert_eq!(positions(recent.after(10, 3)), Some(vec![11, 12, 13]));
        assert_eq!(positions(recent.after(9, 3)), None);
        // AND a caught-up poller is told there is nothing more
        assert_eq!(positions(recent.after(capacity + 10, 3)), Some(vec![]));
        // WHEN a change arrives after a gap in positions
        recent.push(vec![(change_at(capacity + 20), None)]);
        // THEN only what follows the gap is kept: the changes before it are read from the log
        assert_eq!(positions(recent.after(capacity + 10, 3)), None);
        assert_eq!(
            positions(recent.after(capacity + 19, 3)),
            Some(vec![capacity + 20])
        );
    }
}
