//! What only the SQLite store promises: a file database that keeps its change log and
//! checkpoints across reopening, a log that pages in position order, and clear refusals. The
//! log's cases run on an in-memory store and on a file: each keeps its log its own way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rnd_domain::geo::{Latitude, Longitude};
use rnd_domain::live::{DriverLocation, LocationOutcome, LocationWrite};
use rnd_domain::order::OrderStatus;
use rnd_domain::ports::{LiveLocationStore, OrderFilter, OrderQuery, OrderStore, StoreError};
use rnd_domain::{OrderRecord, OrderView};
use rnd_store_conformance::fixtures::{admin, advance, customer, driver, now, placed_order};
use rnd_store_sqlite::{ChangeKind, SqliteStore};

/// A directory under the system temp dir, unique to one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("rnd-store-sqlite-{}", uuid::Uuid::new_v4()));
        Self(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("nested").join("rnd.sqlite3")
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh in-memory store and a fresh store on a file in `dir`: the change log lives in the
/// log's own memory in the first and in the `change_log` table in the second, and both keep the
/// same promises.
fn both(dir: &TempDir) -> [SqliteStore; 2] {
    [
        SqliteStore::in_memory().expect("open in memory"),
        SqliteStore::open(&dir.db()).expect("open a file"),
    ]
}

/// A location from the fixture driver for `view`'s order, now.
fn location_write(view: &OrderView) -> LocationWrite {
    let at = now();
    LocationWrite {
        order_id: view.order.order_id.clone(),
        driver_id: driver().user_id,
        location: DriverLocation {
            latitude: Latitude::parse(30.27).expect("valid"),
            longitude: Longitude::parse(-97.74).expect("valid"),
            heading: None,
            speed: None,
            accuracy: None,
            recorded_at: at,
        },
        eta: None,
        observed_speed_mps: None,
        route: None,
        now_ms: at.timestamp_millis(),
        min_interval_ms: 1_000,
        announced: false,
    }
}

#[tokio::test]
async fn change_log_survives_reopening_the_database() {
    // GIVEN a file store with an order placed and moved on, then closed
    let dir = TempDir::new();
    let view = placed_order("o-durable", &customer(), now());
    let written = {
        let store = SqliteStore::open(&dir.db()).expect("open");
        store.create_order(&view).await.expect("create");
        advance(&store, view.clone(), OrderStatus::PaymentConfirmed).await;
        store.changes_after(0, 100).await.expect("changes")
    };
    assert_eq!(written.len(), 4, "order + live insert, order + live modify");

    // WHEN the file is opened again
    let reopened = SqliteStore::open(&dir.db()).expect("reopen");

    // THEN the log is the same, and the order is there
    assert_eq!(
        reopened.changes_after(0, 100).await.expect("changes"),
        written
    );
    let stored = reopened
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(stored.order.status, OrderStatus::PaymentConfirmed);
    assert_eq!(reopened.path(), Some(dir.db().as_path()));
}

#[tokio::test]
async fn changes_after_pages_through_the_log_in_position_order() {
    // GIVEN three orders placed (six logged inserts)
    let dir = TempDir::new();
    for store in both(&dir) {
        for i in 0..3 {
            let view = placed_order(&format!("o-page-{i}"), &customer(), now());
            store.create_order(&view).await.expect("create");
        }

        // WHEN the log is read two changes at a time from the last position seen
        let mut pages = Vec::new();
        let mut position = 0;
        loop {
            let page = store.changes_after(position, 2).await.expect("page");
            let Some(last) = page.last() else { break };
            position = last.position;
            pages.push(page);
        }

        // THEN there are three pages of two, positions strictly increase, each order's order
        // insert comes before its live insert, and every change is an insert with a new image
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2]);
        let all: Vec<_> = pages.into_iter().flatten().collect();
        assert!(all.windows(2).all(|w| w[0].position < w[1].position));
        for (i, pair) in all.chunks(2).enumerate() {
            assert_eq!(pair[0].order_id.as_str(), format!("o-page-{i}"));
            assert!(matches!(pair[0].change.new, Some(OrderRecord::Order(_))));
            assert!(matches!(pair[1].change.new, Some(OrderRecord::Live(_))));
        }
        assert!(
            all.iter()
                .all(|c| c.change.kind == ChangeKind::Insert && c.change.old.is_none())
        );
        assert!(
            store
                .changes_after(position, 0)
                .await
                .expect("empty")
                .is_empty()
        );
        assert!(
            store
                .changes_after(u64::MAX, 10)
                .await
                .expect("past the end")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn transitions_and_locations_are_logged_as_modifications_with_both_images() {
    // GIVEN an order moved to payment confirmed, and another already picked up
    let dir = TempDir::new();
    for store in both(&dir) {
        let view = placed_order("o-modify", &customer(), now());
        store.create_order(&view).await.expect("create");
        let next = advance(&store, view.clone(), OrderStatus::PaymentConfirmed).await;
        let transition_log = store.changes_after(2, 10).await.expect("changes");
        let moving = placed_order("o-moving", &customer(), now());
        store.create_order(&moving).await.expect("create");
        let moving = advance(&store, moving, OrderStatus::PickedUp).await;
        let before_location = store.changes_after(0, 1_000).await.expect("changes");

        // WHEN its driver's location is accepted
        let write = location_write(&moving);
        let outcome = store.record_location(&write).await.expect("location");

        // THEN the transition logged both rows as MODIFY, old image as it was, new as committed
        assert_eq!(transition_log.len(), 2);
        assert!(
            transition_log
                .iter()
                .all(|c| c.change.kind == ChangeKind::Modify)
        );
        assert_eq!(
            transition_log[0].change.old,
            Some(OrderRecord::Order(view.order.clone()))
        );
        assert_eq!(
            transition_log[0].change.new,
            Some(OrderRecord::Order(next.order.clone()))
        );
        assert_eq!(
            transition_log[1].change.old,
            Some(OrderRecord::Live(view.live.clone()))
        );
        assert_eq!(
            transition_log[1].change.new,
            Some(OrderRecord::Live(next.live.clone()))
        );
        // AND the location logged one live MODIFY at the accepted sequence
        assert_eq!(
            outcome,
            LocationOutcome::Accepted {
                seq: moving.seq() + 1
            }
        );
        let last = store
            .changes_after(before_location.last().expect("logged").position, 10)
            .await
            .expect("changes");
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].change.kind, ChangeKind::Modify);
        assert_eq!(
            last[0].change.old,
            Some(OrderRecord::Live(moving.live.clone()))
        );
        let Some(OrderRecord::Live(live)) = &last[0].change.new else {
            panic!("expected a live image, got {:?}", last[0].change.new);
        };
        assert_eq!(live.seq, moving.seq() + 1);
        assert_eq!(live.location.as_ref(), Some(&write.location));
    }
}

#[tokio::test]
async fn a_refused_write_logs_nothing() {
    // GIVEN an order and a transition already committed from its first state
    let dir = TempDir::new();
    for store in both(&dir) {
        let view = placed_order("o-refused", &customer(), now());
        store.create_order(&view).await.expect("create");
        let next = view
            .apply(&admin(), rnd_domain::Action::ConfirmPayment, now())
            .expect("valid");
        store.commit_transition(&view, &next).await.expect("commit");
        let before = store.changes_after(0, 100).await.expect("changes");

        // WHEN the same transition is committed again, the order is created again, and a location
        // arrives before any driver is assigned
        let conflict = store.commit_transition(&view, &next).await;
        let duplicate = store.create_order(&view).await;
        let location = store
            .record_location(&location_write(&next))
            .await
            .expect("location");

        // THEN all are refused and the log is unchanged
        assert!(
            matches!(conflict, Err(StoreError::Conflict)),
            "{conflict:?}"
        );
        assert!(
            matches!(duplicate, Err(StoreError::AlreadyExists)),
            "{duplicate:?}"
        );
        assert_eq!(location, LocationOutcome::NotAssignedDriver);
        assert_eq!(store.changes_after(0, 100).await.expect("changes"), before);
    }
}

#[tokio::test]
async fn trimming_removes_only_what_every_named_consumer_has_read() {
    // GIVEN a store with three orders (six logged changes: each order and its live row),
    // read by "fanout" up to 6 and by "push" up to 4
    let dir = TempDir::new();
    for store in both(&dir) {
        for id in ["o-trim-1", "o-trim-2", "o-trim-3"] {
            store
                .create_order(&placed_order(id, &customer(), now()))
                .await
                .expect("create");
        }
        store.save_checkpoint("fanout", 6).await.expect("save");
        store.save_checkpoint("push", 4).await.expect("save");

        // WHEN the log is trimmed for a consumer that never read it, then for the two readers
        let unread = store
            .trim_changes(&["fanout", "push", "analytics"])
            .await
            .expect("trim");
        let removed = store.trim_changes(&["fanout", "push"]).await.expect("trim");

        // THEN nothing goes while one consumer has read nothing; then the four changes both read
        // go, the last two stay, and the next changes still get new positions
        assert_eq!(unread, 0);
        assert_eq!(removed, 4);
        let left = |changes: Vec<rnd_store_sqlite::LoggedChange>| {
            changes.iter().map(|c| c.position).collect::<Vec<_>>()
        };
        assert_eq!(
            left(store.changes_after(0, 100).await.expect("read")),
            [5, 6]
        );
        store
            .create_order(&placed_order("o-trim-4", &customer(), now()))
            .await
            .expect("create");
        assert_eq!(
            left(store.changes_after(0, 100).await.expect("read")),
            [5, 6, 7, 8]
        );
    }
}

#[tokio::test]
async fn checkpoints_persist_across_reopening() {
    // GIVEN a file store where one consumer saved a checkpoint twice
    let dir = TempDir::new();
    {
        let store = SqliteStore::open(&dir.db()).expect("open");
        assert_eq!(store.checkpoint("fanout").await.expect("read"), 0);
        store.save_checkpoint("fanout", 3).await.expect("save");
        store
            .save_checkpoint("fanout", 7)
            .await
            .expect("save again");
    }

    // WHEN the file is opened again
    let store = SqliteStore::open(&dir.db()).expect("reopen");

    // THEN the consumer's last checkpoint is there, and other consumers start at 0
    assert_eq!(store.checkpoint("fanout").await.expect("read"), 7);
    assert_eq!(store.checkpoint("analytics").await.expect("read"), 0);
}

#[tokio::test]
async fn opening_a_file_creates_its_directory_and_reopening_keeps_the_schema() {
    // GIVEN a path whose directory does not exist yet
    let dir = TempDir::new();
    assert!(!dir.path().exists());

    // WHEN a store is opened there, dropped, and opened again
    drop(SqliteStore::open(&dir.db()).expect("open"));
    let again = SqliteStore::open(&dir.db());

    // THEN the file exists and the second open succeeds (migrations are idempotent)
    assert!(dir.db().is_file());
    assert!(again.is_ok(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_serialise_their_transitions() {
    // GIVEN two stores (as two processes would) on the same file and one order
    let dir = TempDir::new();
    let a = Arc::new(SqliteStore::open(&dir.db()).expect("open a"));
    let b = Arc::new(SqliteStore::open(&dir.db()).expect("open b"));
    let view = placed_order("o-two-files", &customer(), now());
    a.create_order(&view).await.expect("create");
    let confirm = view
        .apply(&admin(), rnd_domain::Action::ConfirmPayment, now())
        .expect("valid");

    // WHEN both commit the same transition at once
    let (ra, rb) = {
        let (va, vb, ca, cb) = (view.clone(), view.clone(), confirm.clone(), confirm.clone());
        let (a, b) = (Arc::clone(&a), Arc::clone(&b));
        tokio::join!(
            tokio::spawn(async move { a.commit_transition(&va, &ca).await }),
            tokio::spawn(async move { b.commit_transition(&vb, &cb).await })
        )
    };

    // THEN exactly one wins, the other conflicts, and both see one logged transition
    let (ra, rb) = (ra.expect("task"), rb.expect("task"));
    assert_eq!([ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(), 1);
    assert!(matches!(ra.err().or(rb.err()), Some(StoreError::Conflict)));
    assert_eq!(b.changes_after(0, 100).await.expect("changes").len(), 4);
}

#[tokio::test]
async fn a_page_limit_outside_one_to_a_hundred_is_clamped() {
    // GIVEN two orders
    let store = SqliteStore::in_memory().expect("open");
    for i in 0..2 {
        let view = placed_order(&format!("o-clamp-{i}"), &customer(), now());
        store.create_order(&view).await.expect("create");
    }
    let query = |limit| OrderQuery {
        filter: OrderFilter::All,
        limit,
        cursor: None,
    };

    // WHEN they are listed with a limit of 0 and of 1000
    let zero = store.list_orders(&query(0)).await.expect("limit 0");
    let huge = store.list_orders(&query(1_000)).await.expect("limit 1000");

    // THEN 0 behaves as 1 (with a cursor to the rest) and 1000 returns everything
    assert_eq!(zero.orders.len(), 1);
    assert!(zero.next_cursor.is_some());
    assert_eq!(huge.orders.len(), 2);
    assert_eq!(huge.next_cursor, None);
}
