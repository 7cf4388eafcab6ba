//! `rnd-loadgen simulate` against an in-process stack, on both stores.

use std::time::Duration;

use rnd_loadgen::simulate::{SimulateOptions, run};

use crate::helpers::{StoreKind, spawn_on};

/// The scenario on the embedded SQLite store.
mod embedded {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simulating_two_orders_delivers_both_with_the_drivers_moving() {
        super::simulating_two_orders_delivers_both_with_the_drivers_moving(
            super::StoreKind::Embedded,
        )
        .await;
    }
}

/// The scenario on the DynamoDB store (the test database, moto).
mod dynamodb {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simulating_two_orders_delivers_both_with_the_drivers_moving() {
        super::simulating_two_orders_delivers_both_with_the_drivers_moving(
            super::StoreKind::DynamoDb,
        )
        .await;
    }
}

async fn simulating_two_orders_delivers_both_with_the_drivers_moving(store: StoreKind) {
    // GIVEN a running stack
    let stack = spawn_on(store).await;
    // WHEN two orders are simulated, fast (a long stride, one report every 1.1 s)
    let options = SimulateOptions {
        speed_mps: 1000.0,
        interval: Duration::from_millis(1100),
        step_pause: Duration::from_millis(10),
        progress: false,
        ..SimulateOptions::new(stack.http_url(), 2, rnd_domain::identity::DEV_JWT_SECRET)
    };
    let orders = tokio::time::timeout(Duration::from_secs(60), run(&options))
        .await
        .expect("the simulation ends in time")
        .expect("the simulation succeeds");
    // THEN both orders end delivered, each after at least two accepted locations
    assert_eq!(orders.len(), 2);
    for order in &orders {
        assert_eq!(order.status, "delivered", "{order:?}");
        assert!(order.locations_accepted >= 2, "{order:?}");
    }
    assert_ne!(orders[0].order_id, orders[1].order_id);
    stack.stop().await;
}

/// The routed scenario on both stores.
mod routed {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::drivers_along_the_routing_engines_roads_are_routed_once_and_followed_after(
            super::StoreKind::Embedded,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb() {
        super::drivers_along_the_routing_engines_roads_are_routed_once_and_followed_after(
            super::StoreKind::DynamoDb,
        )
        .await;
    }
}

async fn drivers_along_the_routing_engines_roads_are_routed_once_and_followed_after(
    store: StoreKind,
) {
    // GIVEN a stack routing ETAs with its built-in OSRM emulator, accepting every location
    let stack = rnd_local::start(rnd_local::Config {
        routing: rnd_local::RoutingConfig::BuiltinOsrm,
        location_min_interval: Duration::ZERO,
        ..crate::helpers::config_on(store)
    })
    .await
    .expect("the stack starts");
    let osrm = stack
        .osrm_emulator_url()
        .expect("the emulator runs")
        .to_owned();
    // WHEN an order is simulated with its driver following the emulator's roads, 100 m a report
    let options = SimulateOptions {
        speed_mps: 1000.0,
        interval: Duration::from_millis(100),
        step_pause: Duration::from_millis(10),
        progress: false,
        osrm: Some(osrm),
        ..SimulateOptions::new(stack.http_url(), 1, rnd_domain::identity::DEV_JWT_SECRET)
    };
    let orders = tokio::time::timeout(Duration::from_secs(60), run(&options))
        .await
        .expect("the simulation ends in time")
        .expect("the simulation succeeds");
    // THEN it is delivered after at least ten locations
    let order = &orders[0];
    assert_eq!(order.status, "delivered", "{order:?}");
    assert!(order.locations_accepted >= 10, "{order:?}");
    // AND the stack asked the routing engine once for its leg and followed every other location
    let stats = stack.routing_stats().expect("routed");
    let counts = stats.snapshot();
    assert_eq!(
        (
            counts.calls,
            counts.routed,
            counts.failures,
            counts.estimated
        ),
        (1, 1, 0, 0)
    );
    assert_eq!(
        counts.followed + counts.routed,
        u64::from(order.locations_accepted)
    );
    stack.stop().await;
}
