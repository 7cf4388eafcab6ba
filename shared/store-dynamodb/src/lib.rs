//! DynamoDB adapter for the RND Realtime ports: [`DynamoStore`] implements
//! [`ConnectionStore`](rnd_domain::ports::ConnectionStore),
//! [`OrderStore`](rnd_domain::ports::OrderStore),
//! [`LiveLocationStore`](rnd_domain::ports::LiveLocationStore),
//! [`ProfileStore`](rnd_domain::ports::ProfileStore),
//! [`InboxStore`](rnd_domain::ports::InboxStore),
//! [`DeviceStore`](rnd_domain::ports::DeviceStore),
//! [`PushLedger`](rnd_domain::ports::PushLedger) and
//! [`PresenceStore`](rnd_domain::ports::PresenceStore) on the two tables of
//! `docs/table-design.md`, with `aws-sdk-dynamodb` and `serde_dynamo`.
//!
//! The client is the caller's: build one `aws_sdk_dynamodb::Client` at cold start and hand it
//! to [`DynamoStore::new`] with the table names. Every conditional write of the design is one
//! request (a `TransactWriteItems` where two items must change together), so concurrent Lambda
//! invocations are serialised by DynamoDB, not by this process.
//!
//! # Layout
//! - [`DynamoStore`], [`TableNames`]: the store and the tables it uses (this file).
//! - [`items`]: the items the store writes and their metered size (metering, stream images).
//! - `fields`: some attributes of a record's item without building the item.
//! - [`create_tables`]: creates both tables as designed (idempotent; local stack and tests).
//! - `keys`: key and attribute names, index names, sort-key formats.
//! - `error`: SDK errors to [`StoreError`](rnd_domain::ports::StoreError), transaction
//!   cancellation reasons, bounded retries of contended writes.
//! - `connections`: connection, membership and session rows.
//! - `orders`: order and live rows, order numbers; `listing`: paged listing over the GSIs.
//! - `live`: the one conditional `UpdateItem` of a driver location.
//! - `profiles`: profile rows (`USER#{userId}` / `PROFILE` in the orders table).
//! - `inbox`: the per-user inbox (`INBOX#{userId}` in the connections table).
//! - `presence`: connection analytics' minute counters (`CSTATS#`) and last-seen rows
//!   (`USER#{userId}` / `PRESENCE`), in the connections table.
//! - `devices`: push devices (`USER#{userId}` / `DEVICE#`, `DEVTOKEN#`) and the push ledger
//!   (`PUSHED#`), in the connections table.
//! - `stream` (feature `stream`): reads the orders table's stream (conformance harness, local
//!   stack); no Lambda compiles it.
//!
//! # Errors
//! Lost conditions become `Conflict`, `AlreadyExists` or `ConnectionGone` as each port method
//! documents; items that do not parse become `Corrupt`; everything else (network, throttling,
//! validation by DynamoDB) is `Backend` with the SDK error as its source.

use aws_sdk_dynamodb::Client;

mod connections;
mod devices;
mod error;
mod fields;
mod idempotency;
mod inbox;
mod item_size;
pub mod items;
mod keys;
mod limits;
mod listing;
mod live;
mod orders;
mod presence;
mod profiles;
#[cfg(feature = "stream")]
pub mod stream;
mod tables;
#[cfg(feature = "test-support")]
pub mod testing;

pub use tables::create_tables;

/// The names of the two tables (they differ per stage and per test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// The `connections` table: connection, membership and session rows (TTL `ttl`).
    pub connections: String,
    /// The `orders` table: order, live and counter rows, with the four GSIs and the stream.
    pub orders: String,
}

/// The DynamoDB store: every port of the domain over the two tables.
///
/// Cheap to clone (the SDK client is an `Arc` inside).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
}

impl DynamoStore {
    /// A store over `tables`, using `client` (built once by the caller, at cold start). Makes no
    /// request; the tables must exist (see [`create_tables`]).
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    /// The table names this store uses.
    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    /// The SDK client this store uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The item at `key` in `table`, read with `GetItem` (strongly consistent), whatever its
    /// TTL; `None` when there is none.
    pub(crate) async fn get_consistent(
        &self,
        table: &str,
        key: keys::Item,
    ) -> Result<Option<keys::Item>, rnd_domain::ports::StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(error::backend)?
            .item)
    }

    /// [`DynamoStore::get_consistent`], decoded as `T` with `serde_dynamo`; an item that does
    /// not decode is `Corrupt`, named by `what()`.
    pub(crate) async fn get_decoded<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: keys::Item,
        what: impl FnOnce() -> String,
    ) -> Result<Option<T>, rnd_domain::ports::StoreError> {
        self.get_consistent(table, key)
            .await?
            .map(|item| serde_dynamo::from_item(item).map_err(|e| error::corrupt(what(), e)))
            .transpose()
    }
}
