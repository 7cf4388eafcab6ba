//! The location fast path, end to end: `driver:location` posts the location to the order's
//! room right after its write, the stream's fan-out posts it no second time, and status
//! changes still reach clients through the stream.

use std::time::Duration;

use rnd_domain::order::OrderStatus;
use rnd_local::Config;
use serde_json::{Value, json};

use crate::helpers::*;

on_both_stores!(
    each_location_reaches_a_subscriber_once_in_order_and_a_status_change_through_the_stream,
    a_driver_asking_for_refusals_only_hears_only_its_refusals_while_the_room_hears_everything,
    posting_over_http_through_the_management_api_client_delivers_the_same,
);

/// A stack on `store` that accepts every location (no minimum interval), so a test can send
/// several at once.
async fn stack_accepting_every_location(store: StoreKind) -> rnd_local::RunningStack {
    spawn_with(Config {
        location_min_interval: Duration::ZERO,
        ..store.config()
    })
    .await
}

async fn posting_over_http_through_the_management_api_client_delivers_the_same(store: StoreKind) {
    // GIVEN a stack whose functions post as the Lambdas do: the API Gateway Management API
    // client, SigV4 and HTTP to its own `@connections`
    let stack = spawn_with(Config {
        location_min_interval: Duration::ZERO,
        post_over_http: true,
        ..store.config()
    })
    .await;
    // THEN the fast path and the stream deliver exactly as they do in-process
    locations_reach_a_subscriber_once_in_order_and_a_status_change_through_the_stream(stack).await;
}

async fn each_location_reaches_a_subscriber_once_in_order_and_a_status_change_through_the_stream(
    store: StoreKind,
) {
    let stack = stack_accepting_every_location(store).await;
    locations_reach_a_subscriber_once_in_order_and_a_status_change_through_the_stream(stack).await;
}

/// A location of order-1 `step` blocks north of Austin's centre, asking for `ack`.
fn location(step: u32, ack: &str) -> Value {
    json!({"action": "driver:location", "orderId": "order-1",
           "latitude": 30.2672 + f64::from(step) * 0.001, "longitude": -97.7431, "ack": ack})
}

async fn locations_reach_a_subscriber_once_in_order_and_a_status_change_through_the_stream(
    stack: rnd_local::RunningStack,
) {
    // GIVEN order-1 picked up by driver-1, its customer subscribed
    let store = stack.store();
    let view = place_order(&*store, "order-1").await;
    let view = advance_to(&*store, view, OrderStatus::PickedUp).await;
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    customer.subscribe("order-1").await;
    let mut driver = Client::connect(&stack, "driver-1", "driver").await;

    // WHEN the driver streams three locations
    let mut acknowledged = Vec::new();
    for step in 1..=3 {
        driver.send(location(step, "all")).await;
        let ack = driver.next_event("driver:location_acknowledged").await;
        assert_eq!(ack["data"]["accepted"], true, "{ack}");
        acknowledged.push(ack["data"]["seq"].as_u64().expect("seq"));
    }
    // AND then the order moves on through the store (as any writer of the table would)
    let current = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    let in_transit = step(&*store, current).await;

    // THEN the customer has each location once, in the order sent, then the status update,
    // which came through the stream after the locations' own changes
    let mut locations = Vec::new();
    let mut frames = Vec::new();
    let status = loop {
        let frame = customer.next().await;
        frames.push(format!("{} {}", frame["event"], frame["data"]["seq"]));
        match frame["event"].as_str() {
            Some("driver:location_update") => {
                locations.push(frame["data"]["seq"].as_u64().expect("seq"));
            }
            // The earlier transitions reach the customer's user room too, maybe late.
            Some("order:status_update") if frame["data"]["status"] == "in_transit" => break frame,
            _ => {}
        }
    };
    assert_eq!(locations, acknowledged, "the customer heard {frames:?}");
    assert_eq!(status["data"]["seq"].as_u64(), Some(in_transit.seq()));
    // AND the stream, which has carried the locations' changes by now, posts none again
    customer
        .expect_no_event("driver:location_update", Duration::from_millis(700))
        .await;
    stack.stop().await;
}

async fn a_driver_asking_for_refusals_only_hears_only_its_refusals_while_the_room_hears_everything(
    store: StoreKind,
) {
    // GIVEN order-1 in transit with its customer subscribed, on a stack that accepts one
    // location a second per order (the default)
    let stack = spawn_on(store).await;
    let store = stack.store();
    let view = place_order(&*store, "order-1").await;
    advance_to(&*store, view, OrderStatus::InTransit).await;
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    customer.subscribe("order-1").await;
    let mut driver = Client::connect(&stack, "driver-1", "driver").await;

    // WHEN the driver sends two locations at once, asking for refusals only
    driver.send(location(1, "refusals")).await;
    driver.send(location(2, "refusals")).await;

    // THEN the driver hears only of the second, refused as too soon
    let refusal = driver.next_event("driver:location_acknowledged").await;
    assert_eq!(refusal["data"]["accepted"], false, "{refusal}");
    assert_eq!(refusal["data"]["reason"], "rate_limited", "{refusal}");
    driver
        .expect_no_event("driver:location_acknowledged", Duration::from_millis(500))
        .await;
    // AND the customer has the first location
    let update = customer.next_event("driver:location_update").await;
    assert_eq!(update["data"]["latitude"], 30.2682, "{update}");
    customer
        .expect_no_event("driver:location_update", Duration::from_millis(500))
        .await;
    stack.stop().await;
}
