//! What each party sees of an order over HTTP — the tracking payload, the order bodies of the
//! listing and of the transitions — over role × relation × status, and the driver's access
//! ending hours after the order ends. On both stores.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Duration;
use rnd_domain::ports::Store;
use serde_json::Value;

use crate::helpers::*;

/// What one party finds in one body: (delivery location, chef location, driver phone, who
/// changed each status).
type Shape = (bool, bool, bool, bool);

fn shape(body: &Value) -> Shape {
    let has = |k: &str| body.get(k).is_some();
    let history = body["statusHistory"].as_array().expect("statusHistory");
    (
        has("deliveryAddress") && has("deliveryLatitude") && has("deliveryLongitude"),
        has("chefAddress") && has("chefLatitude") && has("chefLongitude"),
        has("driverPhone"),
        !history.is_empty() && history.iter().all(|e| e.get("changedBy").is_some()),
    )
}

/// The order `id` as `who` finds it in their listing.
async fn listed(app: &TestApp, who: As, id: &str) -> Option<Value> {
    let page = app.get("/orders?limit=100", who).await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    page.body["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .find(|o| o["orderId"] == id)
        .cloned()
}

pub async fn each_party_sees_its_shape_of_an_order_in_every_status(store: Arc<dyn Store>) {
    // GIVEN an order placed by the customer, with a driver who has a phone
    let app = spawn_app(store);
    app.seed_profiles().await;
    let id = app.place_order().await;
    for (status, accepted, assigned) in [
        ("pending", false, false),
        ("payment_confirmed", false, false),
        ("accepted", true, false),
        ("ready_for_pickup", true, false),
        ("assigned_to_driver", true, true),
        ("in_transit", true, true),
        ("delivered", true, true),
    ] {
        app.advance(&id, status).await;
        // party → the shape it must find
        let mut table = vec![
            (CUSTOMER, (true, accepted, assigned, false)),
            (CHEF, (accepted, true, false, false)),
            (ADMIN, (true, true, assigned, true)),
        ];
        if assigned {
            table.push((DRIVER, (true, true, false, false)));
        }
        for (who, expected) in table {
            // WHEN the party tracks it and lists it
            let tracking = app.get(&format!("/orders/{id}/tracking"), who).await;
            assert_eq!(tracking.status, StatusCode::OK, "{status} {who:?}");
            let listed = listed(&app, who, &id).await.expect("listed");
            // THEN both show exactly what it may see
            assert_eq!(
                shape(&tracking.body),
                expected,
                "tracking, {status}, {who:?}"
            );
            assert_eq!(shape(&listed), expected, "listing, {status}, {who:?}");
        }
        // AND a driver not (yet) assigned sees nothing of it
        let stranger = app.get(&format!("/orders/{id}/tracking"), DRIVER).await;
        if !assigned {
            assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{status}");
        }
    }
}

pub async fn a_transition_answers_the_order_as_its_caller_sees_it(store: Arc<dyn Store>) {
    // GIVEN an order with its payment confirmed
    let app = spawn_app(store);
    app.seed_profiles().await;
    let id = app.place_order().await;
    let confirmed = app
        .post(&format!("/orders/{id}/confirm-payment"), ADMIN, None)
        .await;
    // THEN the admin's answer names who made each change
    assert_eq!(shape(&confirmed.body), (true, true, false, true));
    // WHEN the chef accepts
    let accepted = app.post(&format!("/orders/{id}/accept"), CHEF, None).await;
    // THEN the chef's answer has the delivery address it just earned, and no user ids
    assert_eq!(accepted.status, StatusCode::OK);
    assert_eq!(shape(&accepted.body), (true, true, false, false));
}

pub async fn the_driver_loses_an_order_hours_after_it_was_delivered(store: Arc<dyn Store>) {
    // GIVEN an order delivered now
    let app = spawn_app(Arc::clone(&store));
    app.seed_profiles().await;
    let id = app.place_order().await;
    app.advance(&id, "delivered").await;
    let delivered_at = app.stored(&id).await.order.delivered_at.expect("delivered");

    // WHEN its parties look five hours later, and seven
    let later = |hours| spawn_app_at(Arc::clone(&store), delivered_at + Duration::hours(hours));
    let (five, seven) = (later(5), later(7));

    // THEN the driver still has it at five hours, in tracking and listing
    let tracking = five.get(&format!("/orders/{id}/tracking"), DRIVER).await;
    assert_eq!(tracking.status, StatusCode::OK);
    assert!(listed(&five, DRIVER, &id).await.is_some());
    // AND at seven it is gone for the driver, as if it never existed
    let tracking = seven.get(&format!("/orders/{id}/tracking"), DRIVER).await;
    assert_eq!(tracking.status, StatusCode::NOT_FOUND);
    assert_eq!(tracking.problem_code(), "not_found");
    assert!(listed(&seven, DRIVER, &id).await.is_none());
    // AND the customer, the chef and the admin keep it
    for who in [CUSTOMER, CHEF, ADMIN] {
        let tracking = seven.get(&format!("/orders/{id}/tracking"), who).await;
        assert_eq!(tracking.status, StatusCode::OK, "{who:?}");
    }
}
