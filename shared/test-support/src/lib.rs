//! Test support shared by the suites that run one scenario against every store: the handlers'
//! WebSocket and fan-out tests and the HTTP API's tests (the stores' own conformance suite lives
//! in `rnd-store-conformance`).
//!
//! ```ignore
//! async fn a_scenario<S: Store + 'static>(store: Arc<S>) { /* GIVEN / WHEN / THEN */ }
//! rnd_test_support::on_both_stores!(a_scenario);
//! // → tests `a_scenario::sqlite` and `a_scenario::dynamodb`
//! ```
//!
//! A scenario may also take `Arc<dyn Store>`: the concrete `Arc`s below coerce to it.

use std::sync::Arc;

use rnd_store_dynamodb::DynamoStore;
use rnd_store_sqlite::SqliteStore;

/// A fresh embedded store (SQLite in memory).
///
/// # Panics
/// When SQLite cannot open an in-memory database.
pub async fn sqlite() -> Arc<SqliteStore> {
    Arc::new(SqliteStore::in_memory().expect("in-memory SQLite"))
}

/// A fresh DynamoDB store with tables of its own (random names) in the test database (moto's
/// DynamoDB server at `DYNAMODB_ENDPOINT`).
///
/// # Panics
/// Saying what to run, when `DYNAMODB_ENDPOINT` is not set; when the tables cannot be created.
pub async fn dynamodb() -> Arc<DynamoStore> {
    Arc::new(rnd_store_dynamodb::testing::fresh_store().await)
}

/// Runs each named scenario (`async fn(Arc<S>)`) against both stores, as the tests
/// `$name::sqlite` and `$name::dynamodb`. The calling crate needs `tokio` (with `macros`) among
/// its dev-dependencies.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::sqlite().await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn dynamodb() {
                    super::$name($crate::dynamodb().await).await;
                }
            }
        )*
    };
}
