//! [`OrderStore`]: the order row (JSON of `Order` plus index columns), the live row (JSON of
//! `LiveState` plus the columns location writes are conditioned on), per-day order numbers and
//! newest-first listing.

use async_trait::async_trait;
use chrono::NaiveDate;
use rnd_domain::ids::OrderId;
use rnd_domain::ports::{OrderFilter, OrderPage, OrderQuery, OrderStore, StoreError};
use rnd_domain::{LiveState, Order, OrderRecord, OrderView};
use rusqlite::{Connection, OptionalExtension};

use crate::SqliteStore;
use crate::change_log;
use crate::codec::{Cursor, DbResultExt, encode_time, from_json, parse_column, to_i64, to_json};
use crate::tx::WriteTx;

/// Most orders one page may hold.
const MAX_PAGE: u32 = 100;

#[async_trait]
impl OrderStore for SqliteStore {
    /// Inserts the order and live rows and logs both inserts, in one transaction.
    ///
    /// Fails with [`StoreError::AlreadyExists`] when the order id is taken, with
    /// [`StoreError::Corrupt`] when the live item belongs to another order, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn create_order(&self, view: &OrderView) -> Result<(), StoreError> {
        let view = view.clone();
        let created = self.run(move |conn| create_order(conn, &view)).await;
        self.changed(created.is_ok());
        created
    }

    /// The order and its live item, or `None` when there is no such order.
    ///
    /// Fails with [`StoreError::Corrupt`] when a document does not parse or the live row is
    /// missing, and with [`StoreError::Backend`] when SQLite fails.
    async fn get_order(&self, id: &OrderId) -> Result<Option<OrderView>, StoreError> {
        let id = id.clone();
        self.run(move |conn| read_view(conn, &id)).await
    }

    /// Replaces both rows with `next` and logs both changes, in one transaction conditioned on
    /// the order row still being at `previous.order.seq` and the live row at
    /// `previous.live.seq`.
    ///
    /// Fails with [`StoreError::Conflict`] when either row moved on (or is gone), with
    /// [`StoreError::Corrupt`] when `next` is about another order or a stored document does not
    /// parse, and with [`StoreError::Backend`] when SQLite fails.
    async fn commit_transition(
        &self,
        previous: &OrderView,
        next: &OrderView,
    ) -> Result<(), StoreError> {
        let previous_seqs = (previous.order.seq, previous.live.seq);
        let id = previous.order.order_id.clone();
        let next = next.clone();
        let committed = self
            .run(move |conn| commit_transition(conn, &id, previous_seqs, &next))
            .await;
        self.changed(committed.is_ok());
        committed
    }

    /// The next number of `day`'s counter: 1 for its first order, then 2, 3, … Atomic: one
    /// `INSERT … ON CONFLICT DO UPDATE … RETURNING`.
    ///
    /// Fails with [`StoreError::Corrupt`] when the counter is past `u32::MAX`, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn next_order_number(&self, day: NaiveDate) -> Result<u32, StoreError> {
        let name = format!("orderNumber#{}", day.format("%Y%m%d"));
        self.run(move |conn| {
            let value: i64 = conn
                .query_row(
                    "INSERT INTO counters (name, value) VALUES (?1, 1)
                     ON CONFLICT (name) DO UPDATE SET value = value + 1
                     RETURNING value",
                    [&name],
                    |row| row.get(0),
                )
                .db()?;
            u32::try_from(value)
                .map_err(|_| StoreError::corrupt(format!("counter {name} is out of range")))
        })
        .await
    }

    /// A page of orders matching the filter, newest first by `(created_at, order_id)`; the limit
    /// is clamped to 1–100. `next_cursor` is set only when more orders follow.
    ///
    /// Fails with [`StoreError::InvalidCursor`] when the cursor is not one this store issued,
    /// with [`StoreError::Corrupt`] when a document does not parse, and with
    /// [`StoreError::Backend`] when SQLite fails.
    async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, StoreError> {
        let after = query.cursor.as_deref().map(Cursor::decode).transpose()?;
        let filter = query.filter.clone();
        let limit = query.limit.clamp(1, MAX_PAGE);
        self.run(move |conn| list_orders(conn, &filter, after.as_ref(), limit))
            .await
    }
}

fn create_order(conn: &mut Connection, view: &OrderView) -> Result<(), StoreError> {
    let order = &view.order;
    let live = &view.live;
    if live.order_id != order.order_id {
        return Err(StoreError::corrupt(format!(
            "the live item of order {} names order {}",
            order.order_id, live.order_id
        )));
    }
    let tx = WriteTx::begin(conn)?;
    let inserted = tx
        .execute(
            "INSERT INTO orders (order_id, customer_id, chef_id, driver_id, created_at, seq, doc)
             VALUES (:order_id, :customer_id, :chef_id, :driver_id, :created_at, :seq, :doc)
             ON CONFLICT (order_id) DO NOTHING",
            order_params(order)?.named().as_slice(),
        )
        .db()?;
    if inserted == 0 {
        tracing::debug!(order_id = %order.order_id, "order already exists");
        return Err(StoreError::AlreadyExists);
    }
    // A live row without its order cannot exist (foreign key), so this cannot collide.
    tx.execute(
        "INSERT INTO order_live (order_id, seq, status, driver_id, location_accepted_at_ms, doc)
         VALUES (:order_id, :seq, :status, :driver_id, :accepted_at_ms, :doc)",
        live_params(live)?.named().as_slice(),
    )
    .db()?;
    change_log::append(&tx, None, Some(&OrderRecord::Order(order.clone())))?;
    change_log::append(&tx, None, Some(&OrderRecord::Live(live.clone())))?;
    tx.commit()?;
    tracing::debug!(order_id = %order.order_id, seq = view.seq(), "created order");
    Ok(())
}

fn commit_transition(
    conn: &mut Connection,
    id: &OrderId,
    (previous_order_seq, previous_live_seq): (u64, u64),
    next: &OrderView,
) -> Result<(), StoreError> {
    if &next.order.order_id != id || &next.live.order_id != id {
        return Err(StoreError::corrupt(format!(
            "a transition of order {id} must keep its id"
        )));
    }
    let tx = WriteTx::begin(conn)?;
    let (Some(old_order), Some(old_live)) = (read_order(&tx, id)?, read_live(&tx, id)?) else {
        tracing::debug!(order_id = %id, "transition conflict: order gone");
        return Err(StoreError::Conflict);
    };
    if old_order.seq != previous_order_seq || old_live.seq != previous_live_seq {
        tracing::debug!(
            order_id = %id,
            expected_order_seq = previous_order_seq,
            stored_order_seq = old_order.seq,
            expected_live_seq = previous_live_seq,
            stored_live_seq = old_live.seq,
            "transition conflict: the order moved on"
        );
        return Err(StoreError::Conflict);
    }
    let order = &next.order;
    let updated = tx
        .execute(
            "UPDATE orders
             SET customer_id = :customer_id, chef_id = :chef_id, driver_id = :driver_id,
                 created_at = :created_at, seq = :seq, doc = :doc
             WHERE order_id = :order_id AND seq = :previous_seq",
            order_params(order)?
                .with_previous_seq(to_i64("orders.seq", previous_order_seq)?)
                .named()
                .as_slice(),
        )
        .db()?;
    let updated_live = tx
        .execute(
            "UPDATE order_live
             SET seq = :seq, status = :status, driver_id = :driver_id,
                 location_accepted_at_ms = :accepted_at_ms, doc = :doc
             WHERE order_id = :order_id AND seq = :previous_seq",
            live_params(&next.live)?
                .with_previous_seq(to_i64("order_live.seq", previous_live_seq)?)
                .named()
                .as_slice(),
        )
        .db()?;
    if updated != 1 || updated_live != 1 {
        // Unreachable under BEGIN IMMEDIATE after the reads above; kept as the real condition.
        return Err(StoreError::Conflict);
    }
    change_log::append(
        &tx,
        Some(&OrderRecord::Order(old_order)),
        Some(&OrderRecord::Order(next.order.clone())),
    )?;
    change_log::append(
        &tx,
        Some(&OrderRecord::Live(old_live)),
        Some(&OrderRecord::Live(next.live.clone())),
    )?;
    tx.commit()?;
    tracing::debug!(
        order_id = %id,
        seq = next.seq(),
        status = next.order.status.as_str(),
        "committed transition"
    );
    Ok(())
}

fn list_orders(
    conn: &Connection,
    filter: &OrderFilter,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<OrderPage, StoreError> {
    let party = match filter {
        OrderFilter::Customer(id) | OrderFilter::Chef(id) | OrderFilter::Driver(id) => {
            Some(id.as_str())
        }
        OrderFilter::All => None,
    };
    let sql = list_sql(filter, after.is_some());
    // One more than asked tells whether another page follows.
    let fetch = i64::from(limit) + 1;
    let after_id = after.map(|a| a.order_id.as_str());
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":limit", &fetch)];
    if let Some(party) = &party {
        params.push((":party", party));
    }
    if let (Some(after), Some(after_id)) = (after, &after_id) {
        params.push((":after_created_at", &after.created_at));
        params.push((":after_order_id", after_id));
    }
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let rows = stmt
        .query_map(params.as_slice(), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .db()?;
    let mut page = Vec::new();
    for row in rows {
        page.push(row.db()?);
    }
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_cursor = match page.last() {
        Some((created_at, order_id, _)) if more => Some(
            Cursor {
                created_at: created_at.clone(),
                order_id: parse_column("orders.order_id", order_id, OrderId::parse)?,
            }
            .encode(),
        ),
        _ => None,
    };
    let orders = page
        .into_iter()
        .map(|(_, order_id, doc)| from_json::<Order>(&format!("order {order_id}"), &doc))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::debug!(count = orders.len(), more, "listed orders");
    Ok(OrderPage {
        orders,
        next_cursor,
    })
}

/// The listing query: one index range per filter (`orders_by_customer`, `_by_chef`,
/// `_by_driver`, `_by_created`), read backwards, so SQLite never sorts. Binds `:party` (unless
/// `All`), `:after_created_at` and `:after_order_id` (with a cursor) and `:limit`.
fn list_sql(filter: &OrderFilter, with_cursor: bool) -> String {
    let party_clause = match filter {
        OrderFilter::Customer(_) => "customer_id = :party",
        OrderFilter::Chef(_) => "chef_id = :party",
        OrderFilter::Driver(_) => "driver_id = :party",
        OrderFilter::All => "1 = 1",
    };
    let cursor_clause = if with_cursor {
        "AND (created_at, order_id) < (:after_created_at, :after_order_id)"
    } else {
        ""
    };
    // Only static fragments are spliced in; every value is bound.
    format!(
        "SELECT created_at, order_id, doc FROM orders
         WHERE {party_clause} {cursor_clause}
         ORDER BY created_at DESC, order_id DESC
         LIMIT :limit"
    )
}

/// The order and live rows of `id`, or `None` when there is no order row.
pub(crate) fn read_view(conn: &Connection, id: &OrderId) -> Result<Option<OrderView>, StoreError> {
    let Some(order) = read_order(conn, id)? else {
        return Ok(None);
    };
    let live = read_live(conn, id)?
        .ok_or_else(|| StoreError::corrupt(format!("order {id} has no live item")))?;
    Ok(Some(OrderView { order, live }))
}

/// The order row of `id`, parsed.
pub(crate) fn read_order(conn: &Connection, id: &OrderId) -> Result<Option<Order>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM orders WHERE order_id = ?1")
        .db()?
        .query_row([id.as_str()], |row| row.get(0))
        .optional()
        .db()?;
    doc.map(|doc| from_json(&format!("order {id}"), &doc))
        .transpose()
}

/// The live row of `id`, parsed.
pub(crate) fn read_live(conn: &Connection, id: &OrderId) -> Result<Option<LiveState>, StoreError> {
    Ok(read_live_doc(conn, id)?.map(|(live, _)| live))
}

/// The live row of `id` and its document as stored (the JSON it was parsed from).
pub(crate) fn read_live_doc(
    conn: &Connection,
    id: &OrderId,
) -> Result<Option<(LiveState, String)>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM order_live WHERE order_id = ?1")
        .db()?
        .query_row([id.as_str()], |row| row.get(0))
        .optional()
        .db()?;
    doc.map(|doc| Ok((from_json(&format!("live item of order {id}"), &doc)?, doc)))
        .transpose()
}

/// The bound values of a row write, by parameter name, computed once from the document so the
/// columns and the JSON agree.
struct RowParams(Vec<(&'static str, rusqlite::types::Value)>);

/// The bound values of an order row write (`:order_id`, `:customer_id`, `:chef_id`,
/// `:driver_id`, `:created_at`, `:seq`, `:doc`).
fn order_params(order: &Order) -> Result<RowParams, StoreError> {
    Ok(RowParams(vec![
        (":order_id", order.order_id.to_string().into()),
        (":customer_id", order.customer_id.to_string().into()),
        (":chef_id", order.chef.chef_id.to_string().into()),
        (
            ":driver_id",
            order.driver_id().map(ToString::to_string).into(),
        ),
        (":created_at", encode_time(order.created_at).into()),
        (":seq", to_i64("orders.seq", order.seq)?.into()),
        (":doc", to_json(order)?.into()),
    ]))
}

/// The bound values of a live row write (`:order_id`, `:seq`, `:status`, `:driver_id`,
/// `:accepted_at_ms`, `:doc`).
fn live_params(live: &LiveState) -> Result<RowParams, StoreError> {
    Ok(RowParams(vec![
        (":order_id", live.order_id.to_string().into()),
        (":seq", to_i64("order_live.seq", live.seq)?.into()),
        (":status", live.status.as_str().to_owned().into()),
        (
            ":driver_id",
            live.driver_id.as_ref().map(ToString::to_string).into(),
        ),
        (":accepted_at_ms", live.location_accepted_at_ms.into()),
        (":doc", to_json(live)?.into()),
    ]))
}

impl RowParams {
    /// Adds `:previous_seq` for a conditional update.
    fn with_previous_seq(mut self, previous_seq: i64) -> Self {
        self.0.push((":previous_seq", previous_seq.into()));
        self
    }

    /// The named parameters, for `execute`.
    fn named(&self) -> Vec<(&str, &dyn rusqlite::ToSql)> {
        self.0
            .iter()
            .map(|(name, value)| (*name, value as &dyn rusqlite::ToSql))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rnd_store_conformance::fixtures::{customer, now, placed_order};

    use super::*;

    #[tokio::test]
    async fn logged_images_are_order_records_tagged_by_item_type() {
        // GIVEN a placed order, on a file (whose log is the table)
        let dir = std::env::temp_dir().join(format!("rnd-images-{}", uuid::Uuid::new_v4()));
        let store = SqliteStore::open(&dir.join("rnd.sqlite3")).unwrap();
        let view = placed_order("o-images", &customer(), now());
        store.create_order(&view).await.unwrap();

        // WHEN the raw images of the log are read
        let conn = store.conn.lock().unwrap();
        let mut stmt = conn
            .prepare("SELECT item_kind, event_name, new_image FROM change_log ORDER BY position")
            .unwrap();
        let rows: Vec<(String, String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();

        // THEN each is the JSON of an OrderRecord carrying its itemType
        assert_eq!(rows.len(), 2);
        let (kind, event, image) = &rows[0];
        assert_eq!((kind.as_str(), event.as_str()), ("order", "INSERT"));
        assert_eq!(
            serde_json::from_str::<OrderRecord>(image).unwrap(),
            OrderRecord::Order(view.order.clone())
        );
        let (kind, _, image) = &rows[1];
        assert_eq!(kind, "live");
        let raw: serde_json::Value = serde_json::from_str(image).unwrap();
        assert_eq!(raw["itemType"], "live");
        assert_eq!(
            serde_json::from_str::<OrderRecord>(image).unwrap(),
            OrderRecord::Live(view.live.clone())
        );
        drop(stmt);
        drop(conn);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn index_columns_follow_the_document() {
        // GIVEN a placed order
        let store = SqliteStore::in_memory().unwrap();
        let view = placed_order("o-columns", &customer(), now());
        store.create_order(&view).await.unwrap();

        // WHEN its index columns are read
        let conn = store.conn.lock().unwrap();
        let (customer_id, chef_id, driver_id, seq): (String, String, Option<String>, i64) = conn
            .query_row(
                "SELECT customer_id, chef_id, driver_id, seq FROM orders WHERE order_id = ?1",
                ["o-columns"],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        let (status, live_seq): (String, i64) = conn
            .query_row(
                "SELECT status, seq FROM order_live WHERE order_id = ?1",
                ["o-columns"],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();

        // THEN they mirror the order
        assert_eq!(customer_id, view.order.customer_id.as_str());
        assert_eq!(chef_id, view.order.chef.chef_id.as_str());
        assert_eq!(driver_id, None);
        assert_eq!((seq, live_seq), (1, 1));
        assert_eq!(status, "pending");
    }

    #[test]
    fn listing_reads_one_index_range_and_never_sorts() {
        // GIVEN the listing query of every filter, with and without a cursor
        let store = SqliteStore::in_memory().unwrap();
        let conn = store.conn.lock().unwrap();
        let party = rnd_domain::ids::UserId::parse("u-1").unwrap();
        let filters = [
            (OrderFilter::Customer(party.clone()), "orders_by_customer"),
            (OrderFilter::Chef(party.clone()), "orders_by_chef"),
            (OrderFilter::Driver(party), "orders_by_driver"),
            (OrderFilter::All, "orders_by_created"),
        ];
        for (filter, index) in filters {
            for with_cursor in [false, true] {
                // WHEN SQLite plans it (every parameter bound to some text)
                let sql = format!("EXPLAIN QUERY PLAN {}", list_sql(&filter, with_cursor));
                let mut stmt = conn.prepare(&sql).unwrap();
                let names: Vec<String> = (1..=stmt.parameter_count())
                    .map(|i| stmt.parameter_name(i).unwrap().to_owned())
                    .collect();
                let params: Vec<(&str, &dyn rusqlite::ToSql)> =
                    names.iter().map(|n| (n.as_str(), &"x" as _)).collect();
                let plan: Vec<String> = stmt
                    .query_map(params.as_slice(), |r| r.get(3))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                // THEN it searches the filter's index and needs no sort
                let plan = plan.join("; ");
                assert!(plan.contains(&format!("USING INDEX {index}")), "{plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            }
        }
    }
}
