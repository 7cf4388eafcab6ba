//! Starting a stack per test, on either store.

use rnd_local::{Config, RunningStack, StoreConfig};

/// The store a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded SQLite store, in memory.
    Embedded,
    /// The DynamoDB store on the test database at `DYNAMODB_ENDPOINT`, with tables of the
    /// test's own (the stack creates them).
    DynamoDb,
}

/// A stack on a free port on fresh data in `store`.
pub async fn spawn_on(store: StoreKind) -> RunningStack {
    rnd_local::start(config_on(store))
        .await
        .expect("the stack starts")
}

/// The configuration of a stack on a free port on fresh data in `store`.
pub fn config_on(store: StoreKind) -> Config {
    match store {
        StoreKind::Embedded => Config::in_memory(),
        StoreKind::DynamoDb => Config {
            store: StoreConfig::DynamoDb {
                endpoint: rnd_store_dynamodb::testing::endpoint(),
                tables: rnd_store_dynamodb::testing::table_names(),
            },
            ..Config::in_memory()
        },
    }
}

/// A stack on a free port with an in-memory store.
pub async fn spawn_stack() -> RunningStack {
    spawn_on(StoreKind::Embedded).await
}
