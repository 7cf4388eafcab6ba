//! The shared store conformance suite, run against a fresh in-memory [`SqliteStore`] per test.

use std::sync::Arc;

use async_trait::async_trait;
use rnd_domain::change::OrderChange;
use rnd_domain::ids::{ConnectionId, OrderId};
use rnd_store_conformance::Harness;
use rnd_store_sqlite::SqliteStore;

/// A private in-memory database, read back through the crate's `test-support` readers.
struct SqliteHarness {
    store: Arc<SqliteStore>,
}

impl SqliteHarness {
    fn new() -> Self {
        Self {
            store: Arc::new(SqliteStore::in_memory().expect("in-memory sqlite store opens")),
        }
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    type Store = SqliteStore;

    fn store(&self) -> Arc<SqliteStore> {
        Arc::clone(&self.store)
    }

    async fn recorded_changes(&self, order: &OrderId) -> Vec<OrderChange> {
        self.store
            .changes_of_order(order)
            .await
            .expect("change log reads")
            .into_iter()
            .map(|logged| logged.change)
            .collect()
    }

    async fn stored_connection_ttl(&self, connection: &ConnectionId) -> Option<i64> {
        self.store
            .stored_connection_ttl(connection)
            .await
            .expect("connection ttl reads")
    }

    async fn stored_membership_ttls(&self, connection: &ConnectionId) -> Vec<i64> {
        self.store
            .stored_membership_ttls(connection)
            .await
            .expect("membership ttls read")
    }
}

rnd_store_conformance::conformance_suite!(SqliteHarness::new());
