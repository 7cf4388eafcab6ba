//! DynamoDB Local clients and fresh tables for tests (feature `test-support`): every test suite
//! that runs against DynamoDB Local (this crate's, the handlers', the HTTP API's, the local
//! stack's) builds its clients and tables here.

use crate::{DynamoStore, TableNames, create_tables};

/// The DynamoDB Local endpoint; panics with what to run when it is not set.
pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "DYNAMODB_ENDPOINT is not set. DynamoDB Local is required: run `make test`, which \
             starts it (or `scripts/dynamodb-local.sh run -- cargo test -p rnd-store-dynamodb`)"
        )
    })
}

/// A DynamoDB client for DynamoDB Local (static test credentials, us-east-1: DynamoDB Local
/// keeps tables per access key and region).
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

/// A DynamoDB Streams client for DynamoDB Local (same credentials and region).
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
        .expect("create the test tables in DynamoDB Local");
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

/// A store on fresh tables with random names.
pub async fn fresh_store() -> DynamoStore {
    let client = client();
    let tables = fresh_tables(&client).await;
    DynamoStore::new(client, tables)
}
