//! The store conformance suite against the test database (moto's DynamoDB server).
//!
//! Needs `DYNAMODB_ENDPOINT`: run `make test`, or
//! `scripts/moto.sh run -- cargo test -p rnd-store-dynamodb`, which start moto and set it.
//! Every test creates its own pair of tables (random names).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use rnd_domain::change::OrderChange;
use rnd_domain::ids::{ConnectionId, OrderId};
use rnd_store_conformance::Harness;
use rnd_store_dynamodb::stream::read_order_changes;
use rnd_store_dynamodb::{DynamoStore, TableNames};

use rnd_store_dynamodb::testing as common;

struct DynamoHarness {
    client: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    tables: TableNames,
    store: Arc<DynamoStore>,
}

impl DynamoHarness {
    async fn new() -> Self {
        let client = common::client();
        let tables = common::fresh_tables(&client).await;
        let store = Arc::new(DynamoStore::new(client.clone(), tables.clone()));
        DynamoHarness {
            client,
            streams: common::streams_client(),
            tables,
            store,
        }
    }

    fn ttl_of(item: &HashMap<String, AttributeValue>) -> Option<i64> {
        match item.get("ttl") {
            Some(AttributeValue::N(n)) => n.parse().ok(),
            _ => None,
        }
    }

    fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk)),
            ("sk".to_owned(), AttributeValue::S(sk)),
        ])
    }

    async fn connection_row(&self, id: &ConnectionId) -> Option<HashMap<String, AttributeValue>> {
        self.client
            .get_item()
            .table_name(&self.tables.connections)
            .set_key(Some(Self::key(format!("CONN#{id}"), "CONN".into())))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem connection")
            .item
    }
}

#[async_trait]
impl Harness for DynamoHarness {
    type Store = DynamoStore;

    fn store(&self) -> Arc<DynamoStore> {
        Arc::clone(&self.store)
    }

    async fn recorded_changes(&self, order: &OrderId) -> Vec<OrderChange> {
        let arn = common::orders_stream_arn(&self.client, &self.tables).await;
        let pk = format!("ORDER#{order}");
        read_order_changes(&self.streams, &arn)
            .await
            .expect("read the orders stream")
            .into_iter()
            .filter(|c| c.pk == pk)
            .map(|c| c.change)
            .collect()
    }

    async fn stored_connection_ttl(&self, connection: &ConnectionId) -> Option<i64> {
        self.connection_row(connection)
            .await
            .and_then(|item| Self::ttl_of(&item))
    }

    async fn stored_membership_ttls(&self, connection: &ConnectionId) -> Vec<i64> {
        // The connection row names its rooms; each membership is `ROOM#{room}` / `CONN#{id}`.
        let rooms = match self
            .connection_row(connection)
            .await
            .and_then(|mut item| item.remove("rooms"))
        {
            Some(AttributeValue::Ss(rooms)) => rooms,
            _ => Vec::new(),
        };
        let mut ttls = Vec::new();
        for room in rooms {
            let out = self
                .client
                .query()
                .table_name(&self.tables.connections)
                .key_condition_expression("pk = :pk AND sk = :sk")
                .expression_attribute_values(":pk", AttributeValue::S(format!("ROOM#{room}")))
                .expression_attribute_values(":sk", AttributeValue::S(format!("CONN#{connection}")))
                .consistent_read(true)
                .send()
                .await
                .expect("Query membership");
            ttls.extend(out.items().iter().filter_map(Self::ttl_of));
        }
        ttls
    }
}

rnd_store_conformance::conformance_suite!(DynamoHarness::new().await);
