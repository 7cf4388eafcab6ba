//! What is particular to the DynamoDB adapter, beyond the conformance suite: the tables as
//! created, the stored rows, the stream reader, cursors, and error mapping. Against the test
//! database (`DYNAMODB_ENDPOINT`, see `tests/conformance.rs`).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, ProjectionType, StreamViewType, TimeToLiveStatus,
};
use chrono::Duration;
use rnd_domain::order::OrderStatus;
use rnd_domain::ports::{
    ConnectionStore, OrderFilter, OrderQuery, OrderStore, SESSION_RETENTION_SECS, StoreError,
};
use rnd_domain::rooms::initial_rooms;
use rnd_store_conformance::fixtures::{
    a_customer_listing_cursor, admin, advance, chef, connection, customer, driver, now, order_id,
    placed_order,
};
use rnd_store_dynamodb::stream::{ChangeKind, read_order_changes};
use rnd_store_dynamodb::{DynamoStore, TableNames, create_tables};

use rnd_store_dynamodb::testing as common;

type Item = HashMap<String, AttributeValue>;

async fn store() -> (DynamoStore, aws_sdk_dynamodb::Client, TableNames) {
    let client = common::client();
    let tables = common::fresh_tables(&client).await;
    (
        DynamoStore::new(client.clone(), tables.clone()),
        client,
        tables,
    )
}

async fn raw_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
    sk: &str,
) -> Option<Item> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
}

fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

#[tokio::test]
async fn tables_are_created_as_designed_and_creating_again_is_harmless() {
    let client = common::client();
    let tables = common::fresh_tables(&client).await;
    create_tables(&client, &tables)
        .await
        .expect("creating existing tables is fine");

    let orders = client
        .describe_table()
        .table_name(&tables.orders)
        .send()
        .await
        .expect("describe orders");
    let orders = orders.table().expect("table");
    assert_eq!(
        orders.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let key: Vec<_> = orders
        .key_schema()
        .iter()
        .map(|k| k.attribute_name())
        .collect();
    assert_eq!(key, ["pk", "sk"]);
    let mut indexes: Vec<_> = orders
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            (
                i.index_name().unwrap_or_default().to_owned(),
                i.key_schema()
                    .iter()
                    .map(|k| k.attribute_name().to_owned())
                    .collect::<Vec<_>>(),
                i.projection().and_then(|p| p.projection_type()).cloned(),
            )
        })
        .collect();
    indexes.sort();
    let expected: Vec<_> = (1..=4)
        .map(|n| {
            (
                format!("gsi{n}"),
                vec![format!("gsi{n}pk"), format!("gsi{n}sk")],
                Some(ProjectionType::KeysOnly),
            )
        })
        .collect();
    assert_eq!(indexes, expected);
    let stream = orders.stream_specification().expect("stream");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&StreamViewType::NewAndOldImages)
    );

    let ttl = client
        .describe_time_to_live()
        .table_name(&tables.connections)
        .send()
        .await
        .expect("describe TTL");
    let ttl = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("ttl"));
}

#[tokio::test]
async fn order_rows_carry_their_type_and_index_keys_and_the_driver_index_once_assigned() {
    let (store, client, tables) = store().await;
    let view = placed_order("o-rows", &customer(), now());
    store.create_order(&view).await.expect("create");
    let order = raw_item(&client, &tables.orders, "ORDER#o-rows", "ORDER")
        .await
        .expect("order row");
    let created = view
        .order
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let sk = format!("{created}#o-rows");
    assert_eq!(string(&order, "itemType"), Some("order"));
    assert_eq!(string(&order, "gsi1pk"), Some("CUSTOMER#customer-1"));
    assert_eq!(string(&order, "gsi2pk"), Some("CHEF#chef-1"));
    let month = format!("ORDERS#{}", view.order.created_at.format("%Y-%m"));
    assert_eq!(string(&order, "gsi4pk"), Some(month.as_str()));
    for n in [1, 2, 4] {
        assert_eq!(string(&order, &format!("gsi{n}sk")), Some(sk.as_str()));
    }
    assert!(!order.contains_key("gsi3pk"), "no driver yet");
    let live = raw_item(&client, &tables.orders, "ORDER#o-rows", "LIVE")
        .await
        .expect("live row");
    assert_eq!(string(&live, "itemType"), Some("live"));
    assert_eq!(number(&live, "seq"), Some(1));

    advance(&store, view, OrderStatus::AssignedToDriver).await;
    let order = raw_item(&client, &tables.orders, "ORDER#o-rows", "ORDER")
        .await
        .expect("order row");
    assert_eq!(string(&order, "gsi3pk"), Some("DRIVER#driver-1"));
    assert_eq!(string(&order, "gsi3sk"), Some(sk.as_str()));
    let live = raw_item(&client, &tables.orders, "ORDER#o-rows", "LIVE")
        .await
        .expect("live row");
    assert_eq!(string(&live, "driverId"), Some("driver-1"));
    assert_eq!(string(&live, "status"), Some("assigned_to_driver"));
}

#[tokio::test]
async fn the_stream_reader_returns_order_changes_and_skips_counters() {
    let (store, client, tables) = store().await;
    store
        .next_order_number(now().date_naive())
        .await
        .expect("number");
    let view = placed_order("o-stream", &customer(), now());
    store.create_order(&view).await.expect("create");
    let next = view
        .apply(&admin(), rnd_domain::Action::ConfirmPayment, now())
        .expect("valid");
    store.commit_transition(&view, &next).await.expect("commit");

    let arn = common::orders_stream_arn(&client, &tables).await;
    let changes = read_order_changes(&common::streams_client(), &arn)
        .await
        .expect("read stream");
    assert!(
        changes.iter().all(|c| c.pk == "ORDER#o-stream"),
        "no counter"
    );
    let kinds: Vec<_> = changes
        .iter()
        .map(|c| (c.sk.as_str(), c.change.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("ORDER", ChangeKind::Insert),
            ("LIVE", ChangeKind::Insert),
            ("ORDER", ChangeKind::Modify),
            ("LIVE", ChangeKind::Modify),
        ]
    );
    assert!(changes.iter().all(|c| c.approximate_creation.is_some()));
    let sequence: Vec<_> = changes.iter().map(|c| c.sequence_number.clone()).collect();
    let mut sorted = sequence.clone();
    sorted.sort_by_key(|s| (s.len(), s.clone()));
    assert_eq!(sequence, sorted, "in stream order");
    assert_eq!(
        changes[2].change.new,
        Some(rnd_domain::OrderRecord::Order(next.order))
    );
}

#[tokio::test]
async fn listing_everything_walks_back_month_by_month() {
    let (store, _, _) = store().await;
    let at = now();
    let ages = [0, 40, 75, 400];
    for (i, days) in ages.iter().enumerate() {
        let view = placed_order(
            &format!("o-age-{i}"),
            &customer(),
            at - Duration::days(*days),
        );
        store.create_order(&view).await.expect("create");
    }
    let mut listed = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = store
            .list_orders(&OrderQuery {
                filter: OrderFilter::All,
                limit: 1,
                cursor: cursor.take(),
            })
            .await
            .expect("page");
        listed.extend(page.orders.into_iter().map(|o| o.order_id.to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // The 400-day-old order is outside the twelve-month window.
    assert_eq!(listed, ["o-age-0", "o-age-1", "o-age-2"]);
}

#[tokio::test]
async fn a_cursor_from_another_listing_or_not_a_cursor_is_refused() {
    let (store, _, _) = store().await;
    let cursor = a_customer_listing_cursor(&store).await;
    for (filter, cursor) in [
        (OrderFilter::Chef(chef().user_id), cursor.clone()),
        (OrderFilter::All, cursor),
        (
            OrderFilter::Customer(customer().user_id),
            "not-a-cursor!".into(),
        ),
    ] {
        let err = store
            .list_orders(&OrderQuery {
                filter,
                limit: 1,
                cursor: Some(cursor),
            })
            .await
            .expect_err("refused");
        assert!(matches!(err, StoreError::InvalidCursor), "{err:?}");
    }
}

#[tokio::test]
async fn an_admin_cursor_naming_a_month_outside_the_listing_is_refused_before_any_query() {
    // GIVEN cursors forged for the whole listing: a month far in the future (walking back from
    // it would query one partition per month, thousands of them), one before the listed year,
    // and one this listing does walk
    let (store, _, _) = store().await;
    let forge = |month: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"m":"{month}"}}"#))
    };
    let last_month = (now() - Duration::days(31)).format("%Y-%m").to_string();
    // WHEN an admin lists with each
    for (month, accepted) in [("9999-12", false), ("1900-01", false), (&*last_month, true)] {
        let result = store
            .list_orders(&OrderQuery {
                filter: OrderFilter::All,
                limit: 10,
                cursor: Some(forge(month)),
            })
            .await;
        // THEN only the month the listing walks is accepted
        match accepted {
            true => assert!(result.is_ok(), "{month}: {result:?}"),
            false => assert!(
                matches!(result, Err(StoreError::InvalidCursor)),
                "{month}: {result:?}"
            ),
        }
    }
}

#[tokio::test]
async fn closing_keeps_a_session_row_for_thirty_days() {
    let (store, client, tables) = store().await;
    let at = now();
    let c = connection("c-session", &driver(), at);
    store
        .open_connection(&c, &initial_rooms(&driver()))
        .await
        .expect("open");
    let later = at + Duration::seconds(42);
    store
        .close_connection(&c.connection_id, later)
        .await
        .expect("close")
        .expect("was open");
    let session = raw_item(&client, &tables.connections, "CONN#c-session", "SESSION")
        .await
        .expect("session row");
    assert_eq!(string(&session, "itemType"), Some("session"));
    assert_eq!(string(&session, "connectionId"), Some("c-session"));
    assert_eq!(number(&session, "durationMs"), Some(42_000));
    assert_eq!(
        number(&session, "ttl"),
        Some(later.timestamp() + SESSION_RETENTION_SECS)
    );
    assert!(session.contains_key("disconnectedAt"));
    assert!(
        raw_item(&client, &tables.connections, "CONN#c-session", "CONN")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_row_that_does_not_parse_is_corrupt() {
    let (store, client, tables) = store().await;
    for (sk, item_type) in [("ORDER", "order"), ("LIVE", "live")] {
        client
            .put_item()
            .table_name(&tables.orders)
            .item("pk", AttributeValue::S("ORDER#o-bad".into()))
            .item("sk", AttributeValue::S(sk.into()))
            .item("itemType", AttributeValue::S(item_type.into()))
            .item("seq", AttributeValue::S("not a number".into()))
            .send()
            .await
            .expect("put");
    }
    let err = store
        .get_order(&order_id("o-bad"))
        .await
        .expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[tokio::test]
async fn a_backend_failure_keeps_the_sdk_error_as_its_source() {
    let store = DynamoStore::new(common::client(), common::table_names());
    let err = store
        .get_order(&order_id("o-none"))
        .await
        .expect_err("no such table");
    let StoreError::Backend(source) = &err else {
        panic!("expected Backend, got {err:?}");
    };
    let sdk = source
        .downcast_ref::<SdkError<QueryError>>()
        .expect("the SDK error is the source");
    assert!(
        sdk.as_service_error()
            .is_some_and(QueryError::is_resource_not_found_exception),
        "{sdk:?}"
    );
    assert!(std::error::Error::source(&err).is_some());
}
