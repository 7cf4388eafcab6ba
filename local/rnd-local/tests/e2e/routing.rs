//! The routed ETA through the whole stack: `rnd-local` with the built-in OSRM emulator (OSRM's
//! contract server) routes a driver's first location, follows the next ones along the route
//! without calling again, and the customer sees `etaSource: route` in `order:eta_update` and
//! in the tracking over HTTP.

use std::time::Duration;

use rnd_domain::order::OrderStatus;
use rnd_local::{Config, RoutingConfig};
use serde_json::json;

use crate::helpers::*;

on_both_stores!(a_driver_is_routed_once_then_followed_and_the_customer_sees_a_routed_eta,);

async fn a_driver_is_routed_once_then_followed_and_the_customer_sees_a_routed_eta(
    store: StoreKind,
) {
    // GIVEN a stack routing with the built-in OSRM emulator, accepting every location
    let stack = spawn_with(Config {
        routing: RoutingConfig::BuiltinOsrm,
        location_min_interval: Duration::ZERO,
        ..store.config()
    })
    .await;
    let stats = stack
        .routing_stats()
        .expect("a routed stack counts its calls");
    assert!(stack.osrm_emulator_url().is_some());
    // AND order-1 picked up by driver-1 at the chef's, its customer subscribed
    let view = place_order(&*stack.store(), "order-1").await;
    advance_to(&*stack.store(), view, OrderStatus::PickedUp).await;
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    customer.subscribe("order-1").await;
    let mut driver = Client::connect(&stack, "driver-1", "driver").await;

    // WHEN the driver reports six positions heading north from the chef (the grid's first
    // stretch towards the customer)
    for step in 0..6 {
        driver
            .send(json!({"action": "driver:location", "orderId": "order-1",
                         "latitude": 30.2676 + f64::from(step) * 0.0005, "longitude": -97.7360}))
            .await;
        let ack = driver.next_event("driver:location_acknowledged").await;
        assert_eq!(ack["data"]["accepted"], true, "{ack}");
    }

    // THEN the customer's ETA comes from the route
    let update = customer.next_event("order:eta_update").await;
    assert_eq!(update["data"]["etaSource"], "route", "{update}");
    assert!(
        update["data"].get("estimatedPickupTime").is_none(),
        "{update}"
    );
    // AND the router was called once, for the first position; the others followed the route
    let counts = stats.snapshot();
    assert_eq!((counts.calls, counts.routed, counts.followed), (1, 1, 5));
    assert_eq!((counts.estimated, counts.failures), (0, 0));
    // AND the tracking says so over HTTP
    let (status, body) = http_to(
        stack.addr(),
        &format!(
            "GET /orders/order-1/tracking HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            token("customer-1", "customer")
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tracking: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(tracking["etaSource"], "route", "{tracking}");
    stack.stop().await;
}
