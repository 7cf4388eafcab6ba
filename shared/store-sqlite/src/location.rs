//! [`LiveLocationStore`]: the driver location write, one conditional `UPDATE` of the live row.
//!
//! The rule (assigned driver, driver phase, rate limit) is the domain's
//! ([`LocationOutcome::allows`]); here it is expressed as the `WHERE` clause, as DynamoDB's
//! condition expression, and a refusal is classified from the row as it was
//! ([`LocationOutcome::classify_refusal`]).

use async_trait::async_trait;
use rnd_domain::ports::{LiveLocationStore, StoreError};
use rnd_domain::{LiveState, LocationOutcome, LocationWrite, OrderId, OrderRecord, OrderStatus};
use rusqlite::{Connection, named_params};

use crate::SqliteStore;
use crate::change_log;
use crate::codec::{DbResultExt, to_i64, to_json};
use crate::orders::{read_live, read_live_doc};
use crate::tx::WriteTx;

#[async_trait]
impl LiveLocationStore for SqliteStore {
    /// Records the location on the live row if the sender is the assigned driver, the order is
    /// `assigned_to_driver`, `picked_up` or `in_transit`, and the last accepted location is at
    /// least `min_interval_ms` older than `now_ms`; logs the change in the same transaction.
    ///
    /// Returns [`LocationOutcome::Accepted`] with the live row's new `seq`, or why the write was
    /// refused (nothing is written then). Fails with [`StoreError::Corrupt`] when the live
    /// document does not parse, and with [`StoreError::Backend`] when SQLite fails.
    async fn record_location(&self, write: &LocationWrite) -> Result<LocationOutcome, StoreError> {
        let write = write.clone();
        let log = self.memory_log();
        let outcome = self
            .run(move |conn| {
                // Read under the connection's lock: every write committed so far is in it.
                let cached = log.and_then(|log| crate::lock(&log).live(&write.order_id));
                record_location(conn, &write, cached)
            })
            .await;
        self.changed(matches!(outcome, Ok(LocationOutcome::Accepted { .. })));
        outcome
    }

    /// The live row of `order` (one indexed read). Fails with [`StoreError::Corrupt`] when its
    /// document does not parse.
    async fn get_live(&self, order: &OrderId) -> Result<Option<LiveState>, StoreError> {
        // An in-memory store keeps the last committed state of every live row it logged.
        if let Some(live) = self
            .memory_log()
            .and_then(|log| crate::lock(&log).live(order))
        {
            return Ok(Some(live));
        }
        let order = order.clone();
        self.run(move |conn| read_live(conn, &order)).await
    }
}

/// The conditional write, from `cached` (an in-memory store's last committed live state) when
/// given, else from the row. The write's `seq` condition checks the cached state is the row's:
/// a refusal from it is judged again from the row.
fn record_location(
    conn: &mut Connection,
    write: &LocationWrite,
    cached: Option<LiveState>,
) -> Result<LocationOutcome, StoreError> {
    let from_cache = cached.is_some();
    let tx = WriteTx::begin(conn)?;
    // The state as last committed (kept by an in-memory log), or the row's, with its document:
    // the old image of a change logged in the table, which so is not encoded again.
    let current = match cached {
        Some(state) => Some((state, None)),
        None => read_live_doc(&tx, &write.order_id)?.map(|(live, doc)| (live, Some(doc))),
    };
    let Some((current, current_doc)) = current else {
        tracing::debug!(order_id = %write.order_id, "location for an unknown order");
        return Ok(LocationOutcome::NotFound);
    };
    let next = LocationOutcome::apply(&current, write);
    let next_doc = to_json(&next)?;
    let [active_1, active_2, active_3] = OrderStatus::DRIVER_ACTIVE.map(OrderStatus::as_str);
    // Cached: one statement per location update, parsed once (parsing it each time was a
    // tenth of the stack's CPU in `make bench-knee`).
    let changed = tx
        .prepare_cached(
            "UPDATE order_live
             SET seq = :seq, location_accepted_at_ms = :now_ms, doc = :doc
             WHERE order_id = :order_id
               AND seq = :current_seq
               AND driver_id = :driver_id
               AND (status = :active_1 OR status = :active_2 OR status = :active_3)
               AND (location_accepted_at_ms IS NULL
                    OR location_accepted_at_ms <= :accepted_before_ms)",
        )
        .db()?
        .execute(named_params! {
                ":seq": to_i64("order_live.seq", next.seq)?,
                ":now_ms": write.now_ms,
                ":doc": next_doc,
                ":order_id": write.order_id.as_str(),
                ":current_seq": to_i64("order_live.seq", current.seq)?,
                ":driver_id": write.driver_id.as_str(),
                ":active_1": active_1,
                ":active_2": active_2,
                ":active_3": active_3,
                ":accepted_before_ms": write.now_ms.saturating_sub(write.min_interval_ms),
        })
        .db()?;
    if changed == 0 && from_cache {
        drop(tx);
        return record_location(conn, write, None);
    }
    // The columns mirror the document, so SQL and the domain rule must agree.
    debug_assert_eq!(
        changed == 1,
        LocationOutcome::allows(&current, write),
        "the conditional update disagrees with LocationOutcome::allows"
    );
    if changed == 0 {
        let outcome = LocationOutcome::classify_refusal(Some(&current), write);
        tracing::debug!(order_id = %write.order_id, ?outcome, "location refused");
        return Ok(outcome);
    }
    let seq = next.seq;
    let (current, next) = (OrderRecord::Live(current), OrderRecord::Live(next));
    match current_doc {
        // The documents at hand: the row's and the one just written.
        Some(current_doc) => change_log::append_documents(
            &tx,
            Some((&current, &current_doc)),
            Some((&next, &next_doc)),
        )?,
        None => change_log::append(&tx, Some(&current), Some(&next))?,
    };
    tx.commit()?;
    tracing::debug!(order_id = %write.order_id, seq, "location accepted");
    Ok(LocationOutcome::Accepted { seq })
}
