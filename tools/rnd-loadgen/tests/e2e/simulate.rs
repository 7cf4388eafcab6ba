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
