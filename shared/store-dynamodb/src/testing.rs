//! Clients of the test database and fresh tables for tests (feature `test-support`): every
//! test suite that runs against a DynamoDB-protocol server (this crate's, the handlers', the
//! HTTP API's, the local stack's, the load tools') builds its clients and tables here. The
//! server is moto's (`scripts/moto.sh`, see `docs/moto.md`); any DynamoDB-compatible endpoint
//! works.

use crate::{DynamoStore, TableNames, create_tables};

/// What a test that needs the DynamoDB side says when `DYNAMODB_ENDPOINT` is not set: such a
/// test fails loudly, it never skips.
pub const ENDPOINT_MISSING: &str = "DYNAMODB_ENDPOINT is not set. The test database (moto's \
     DynamoDB server) is required: run `make test`, which starts it, or \
     `scripts/moto.sh run -- cargo test …`";

/// The test database's endpoint (`DYNAMODB_ENDPOINT`).
///
/// # Panics
/// Saying what to run, when `DYNAMODB_ENDPOINT` is not set.
pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| panic!("{ENDPOINT_MISSING}"))
}

/// A DynamoDB client for the test database (static test credentials, us-east-1: moto keeps
/// tables per account, which it derives from the access key, and region).
pub fn client() -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "static"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A DynamoDB Streams client for the test database (same credentials and region).
pub fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "static"))
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// Random table names for one test.
pub fn table_names() -> TableNames {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    TableNames {
        connections: format!("test-connections-{suffix}"),
        orders: format!("test-orders-{suffix}"),
    }
}

/// Creates fresh tables with random names; returns their names.
pub async fn fresh_tables(client: &aws_sdk_dynamodb::Client) -> TableNames {
    let tables = table_names();
    create_tables(client, &tables)
        .await
        .expect("create the test tables in the test database");
    tables
}

/// The orders table's stream ARN.
pub async fn orders_stream_arn(client: &aws_sdk_dynamodb::Client, tables: &TableNames) -> String {
    client
        .describe_table()
        .table_name(&tables.orders)
        .send()
        .await
        .expect("DescribeTable orders")
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("the orders table has a stream")
        .to_owned()
}

/// Every record of `store`'s orders stream so far, as the server wrote them: `GetRecords` from
/// `TRIM_HORIZON`, shard by shard (a fresh table has one), until two reads in a row find
/// nothing. Returns the stream's ARN and the records.
///
/// # Panics
/// When a Streams request fails.
pub async fn raw_stream(
    store: &DynamoStore,
) -> (String, Vec<aws_sdk_dynamodbstreams::types::Record>) {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let streams = streams_client();
    let arn = orders_stream_arn(store.client(), store.tables()).await;
    let shards = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("DescribeStream")
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default();
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().expect("shard id"))
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator;
        let mut empty = 0;
        while let Some(current) = iterator.take() {
            let out = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .expect("GetRecords");
            let batch = out.records.unwrap_or_default();
            if batch.is_empty() {
                empty += 1;
                if empty >= 2 {
                    break;
                }
            } else {
                empty = 0;
            }
            records.extend(batch);
            iterator = out.next_shard_iterator;
        }
    }
    (arn, records)
}

/// A store on fresh tables with random names.
pub async fn fresh_store() -> DynamoStore {
    let client = client();
    let tables = fresh_tables(&client).await;
    DynamoStore::new(client, tables)
}

/// `records` as DynamoDB would have written them, from what moto wrote.
///
/// moto writes an item that an `UpdateItem` creates to the stream twice: first an `INSERT`
/// whose new image holds the key attributes only (it creates the bare item, then applies the
/// update), then an `INSERT` of the whole item. DynamoDB writes one `INSERT` of the whole item.
/// This drops a keys-only `INSERT` that the next record inserts again (see `docs/moto.md`);
/// records of a real DynamoDB stream pass unchanged. (The stores' own readers need no such
/// step: a keys-only image has no `itemType`, so it is not an order or live row and is
/// skipped, as the deployed filter drops it.)
pub fn as_dynamodb_writes_them(
    records: Vec<aws_sdk_dynamodbstreams::types::Record>,
) -> Vec<aws_sdk_dynamodbstreams::types::Record> {
    use aws_sdk_dynamodbstreams::types::{OperationType, Record};
    fn keys_only_insert(record: &Record) -> bool {
        let Some(data) = record.dynamodb() else {
            return false;
        };
        record.event_name() == Some(&OperationType::Insert)
            && data
                .new_image()
                .is_some_and(|image| Some(image) == data.keys())
    }
    fn inserts_same_item(first: &Record, next: &Record) -> bool {
        next.event_name() == Some(&OperationType::Insert)
            && first.dynamodb().and_then(|d| d.keys()) == next.dynamodb().and_then(|d| d.keys())
    }
    let mut kept = Vec::with_capacity(records.len());
    let mut records = records.into_iter().peekable();
    while let Some(record) = records.next() {
        let reinserted = records
            .peek()
            .is_some_and(|next| inserts_same_item(&record, next));
        if !(keys_only_insert(&record) && reinserted) {
            kept.push(record);
        }
    }
    kept
}

/// The `SizeBytes` DynamoDB reports for the stream record `data`: the size of its keys and of
/// the images it carries, metered as DynamoDB meters items ([`crate::items::size`], which the
/// local stack's stream records use too). moto reports the length of the record's JSON
/// instead (see `docs/moto.md`), so tests that compare records take this.
pub fn stream_record_size(data: &aws_sdk_dynamodbstreams::types::StreamRecord) -> usize {
    [data.keys(), data.new_image(), data.old_image()]
        .into_iter()
        .flatten()
        .map(|image| {
            let item: crate::items::Item = serde_dynamo::Item::from(image.clone()).into();
            crate::items::size(&item)
        })
        .sum()
}
