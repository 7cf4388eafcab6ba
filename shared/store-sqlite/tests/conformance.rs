//! The shared store conformance suite, run against a fresh [`SqliteStore`] per test: in memory,
//! and on a file (whose change log is its table, where an in-memory store keeps its own).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use rnd_domain::change::OrderChange;
use rnd_domain::ids::{ConnectionId, OrderId};
use rnd_store_conformance::Harness;
use rnd_store_sqlite::SqliteStore;

/// A private database, in memory or on a file of its own (removed with the harness), read
/// back through the crate's `test-support` readers.
struct SqliteHarness {
    store: Arc<SqliteStore>,
    dir: Option<PathBuf>,
}

impl SqliteHarness {
    fn in_memory() -> Self {
        Self {
            store: Arc::new(SqliteStore::in_memory().expect("in-memory sqlite store opens")),
            dir: None,
        }
    }

    fn on_a_file() -> Self {
        let dir = std::env::temp_dir().join(format!("rnd-conformance-{}", uuid::Uuid::new_v4()));
        Self {
            store: Arc::new(SqliteStore::open(&dir.join("rnd.sqlite3")).expect("file store opens")),
            dir: Some(dir),
        }
    }
}

impl Drop for SqliteHarness {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
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
            .map(|logged| Arc::unwrap_or_clone(logged.change))
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

mod in_memory {
    rnd_store_conformance::conformance_suite!(super::SqliteHarness::in_memory());
}

mod on_a_file {
    rnd_store_conformance::conformance_suite!(super::SqliteHarness::on_a_file());
}
