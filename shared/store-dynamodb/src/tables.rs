//! Creating the two tables (local stack and tests; `template.yaml` mirrors this).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use rnd_domain::ports::StoreError;

use crate::TableNames;
use crate::error::{AdapterError, backend};
use crate::keys::{OrderIndex, PK, SK, TTL};

/// Longest wait for a table and its indexes to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(600);

/// Creates both tables as `docs/table-design.md` designs them, and waits until they are ACTIVE:
///
/// - both: on-demand (`PAY_PER_REQUEST`), `pk` (S) partition key, `sk` (S) sort key;
/// - `connections`: TTL on `ttl` (`UpdateTimeToLive`, once the table is ACTIVE);
/// - `orders`: GSIs `gsi1`…`gsi4` (`gsiNpk`/`gsiNsk`, S, KEYS_ONLY) and a
///   `NEW_AND_OLD_IMAGES` stream.
///
/// Idempotent: a table that already exists is left as it is (only TTL is switched on when it is
/// off). Encryption at rest is DynamoDB's default (always on); PITR is set by the deployment
/// template, not here (local DynamoDB-compatible servers have no backups).
///
/// Fails with [`StoreError::Backend`] when a request fails or a table is not ACTIVE within ten
/// minutes.
pub async fn create_tables(client: &Client, tables: &TableNames) -> Result<(), StoreError> {
    let connections = keyed_table(client, &tables.connections)?;
    create_if_missing(connections, &tables.connections).await?;

    let mut orders = keyed_table(client, &tables.orders)?.stream_specification(
        StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build()
            .map_err(backend)?,
    );
    for index in OrderIndex::ALL {
        orders = orders
            .attribute_definitions(string_attribute(index.pk_attr())?)
            .attribute_definitions(string_attribute(index.sk_attr())?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name())
                    .key_schema(key_element(index.pk_attr(), KeyType::Hash)?)
                    .key_schema(key_element(index.sk_attr(), KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()
                    .map_err(backend)?,
            );
    }
    create_if_missing(orders, &tables.orders).await?;

    wait_until_active(client, &tables.connections).await?;
    wait_until_active(client, &tables.orders).await?;
    enable_ttl(client, &tables.connections).await
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(backend)
}

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(backend)
}

/// A `CreateTable` request with the key schema and billing both tables share.
pub(crate) fn keyed_table(
    client: &Client,
    name: &str,
) -> Result<CreateTableFluentBuilder, StoreError> {
    Ok(client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .key_schema(key_element(PK, KeyType::Hash)?)
        .key_schema(key_element(SK, KeyType::Range)?))
}

/// Sends `request`; a table that already exists is fine.
pub(crate) async fn create_if_missing(
    request: CreateTableFluentBuilder,
    table: &str,
) -> Result<(), StoreError> {
    match request.send().await {
        Ok(_) => {
            tracing::debug!(table, "created table");
            Ok(())
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            tracing::debug!(table, "table exists");
            Ok(())
        }
        Err(err) => Err(backend(err)),
    }
}

/// Polls `DescribeTable` until the table and every index are ACTIVE.
pub(crate) async fn wait_until_active(client: &Client, table: &str) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(backend)?;
        let description = described
            .table()
            .ok_or_else(|| backend(AdapterError::Unexpected("DescribeTable without a table")))?;
        let table_active = description.table_status() == Some(&TableStatus::Active);
        let indexes_active = description
            .global_secondary_indexes()
            .iter()
            .all(|i| i.index_status() == Some(&IndexStatus::Active));
        if table_active && indexes_active {
            return Ok(());
        }
        if started.elapsed() >= ACTIVE_TIMEOUT {
            return Err(backend(AdapterError::NotActive {
                table: table.to_owned(),
                waited_secs: started.elapsed().as_secs(),
            }));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Switches TTL on for `ttl`, unless it is on (or being switched on) already.
async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(backend)?;
    let status = described
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL)
                .build()
                .map_err(backend)?,
        )
        .send()
        .await
        .map_err(backend)?;
    tracing::debug!(table, "enabled TTL");
    Ok(())
}
