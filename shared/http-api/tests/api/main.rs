//! The HTTP API through its Router, against the embedded store and the test database (moto).
//! The API Gateway HTTP API (payload v2) fixtures in `events/http/`, through `lambda_http`, are
//! the Lambda's (`functions/http-api/tests/lambda.rs`).
//!
//! The test database is required: `make test`, or
//! `scripts/moto.sh run -- cargo test -p rnd-http-api`.

mod helpers;
mod idempotency;
mod presence;
mod visibility;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{TimeZone, Utc};
use futures::future::join_all;
use helpers::*;
use idempotency::*;
use presence::*;
use rnd_domain::geo::{Latitude, Longitude};
use rnd_domain::limits::Limit;
use rnd_domain::live::{DriverLocation, LocationWrite};
use rnd_domain::order::Relation;
use rnd_domain::ports::Store;
use rnd_domain::profile::{Profile, ProfileFields};
use rnd_domain::tracking::OrderTracking;
use rnd_domain::visibility::Visibility;
use rnd_domain::{Role, UserId};
use rnd_http_api::AppState;
use serde_json::{Value, json};
use visibility::*;

const PROBLEM: &str = "application/problem+json";

// ---------------------------------------------------------------- placing orders

async fn a_customer_places_a_pending_numbered_order_with_the_chefs_details(store: Arc<dyn Store>) {
    // GIVEN profiles of the customer and of a chef with a pickup location
    let app = spawn_app(store);
    app.seed_profiles().await;

    // WHEN the customer places an order
    let response = app.post("/orders", CUSTOMER, Some(new_order_body())).await;

    // THEN it is created pending, numbered for today, with the chef's and customer's details
    assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
    let order = &response.body;
    let id = order["orderId"].as_str().expect("orderId");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "a UUID: {id}");
    assert_eq!(order["status"], "pending");
    assert_eq!(
        order["orderNumber"],
        format!("RND-{}-0001", Utc::now().format("%Y%m%d"))
    );
    assert_eq!(order["customerName"], "Ada Customer");
    assert_eq!(order["chefBusinessName"], "Carla's Kitchen");
    assert_eq!(order["items"], json!([{"name": "Tamales", "quantity": 6}]));
    assert_eq!(order["seq"], 1);
    assert_eq!(
        response.headers[header::LOCATION],
        format!("/orders/{id}/tracking").as_str()
    );
    // AND the body is the stored order, field for field, as its customer may see it: not the
    // chef's address before the chef accepts, nor who made each change
    let stored = app.stored(id).await;
    let mut expected = serde_json::to_value(&stored.order).unwrap();
    for hidden in ["chefAddress", "chefLatitude", "chefLongitude"] {
        assert!(order.get(hidden).is_none(), "{hidden}");
        expected.as_object_mut().unwrap().remove(hidden);
    }
    for entry in expected["statusHistory"].as_array_mut().unwrap() {
        entry.as_object_mut().unwrap().remove("changedBy");
    }
    assert_eq!(order, &expected);
}

async fn only_customers_place_orders(store: Arc<dyn Store>) {
    // GIVEN profiles
    let app = spawn_app(store);
    app.seed_profiles().await;
    // WHEN a chef, a driver and an admin try to place an order
    for who in [CHEF, DRIVER, ADMIN] {
        let response = app.post("/orders", who, Some(new_order_body())).await;
        // THEN each is forbidden
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{who:?}");
        assert_eq!(response.problem_code(), "forbidden");
    }
}

async fn a_chef_without_a_location_cannot_receive_orders(store: Arc<dyn Store>) {
    // GIVEN a customer, a chef who saved only a name, and a driver
    let app = spawn_app(store);
    app.seed_profiles().await;
    let no_location = Profile::parse(
        UserId::parse("chef-2").unwrap(),
        Role::Chef,
        ProfileFields {
            name: "Bo Chef".into(),
            ..ProfileFields::default()
        },
        Utc::now(),
    )
    .unwrap();
    app.store.put_profile(&no_location).await.unwrap();

    // WHEN the customer orders from the chef without a location, from a driver, from nobody
    let mut body = new_order_body();
    body["chefId"] = "chef-2".into();
    let no_location = app.post("/orders", CUSTOMER, Some(body.clone())).await;
    body["chefId"] = "driver-1".into();
    let not_a_chef = app.post("/orders", CUSTOMER, Some(body.clone())).await;
    body["chefId"] = "chef-404".into();
    let nobody = app.post("/orders", CUSTOMER, Some(body)).await;

    // THEN each is unprocessable, naming chefId, the first saying what is missing
    assert_eq!(no_location.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_location.problem_code(), "chef_location_missing");
    assert_eq!(no_location.field(), Some("chefId"));
    let detail = no_location.body["detail"].as_str().unwrap();
    assert!(detail.contains("pickup location"), "{detail}");
    for response in [not_a_chef, nobody] {
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.problem_code(), "not_a_chef");
        assert_eq!(response.field(), Some("chefId"));
    }
    // AND no order number was used up
    assert_eq!(
        app.store
            .next_order_number(Utc::now().date_naive())
            .await
            .unwrap(),
        1
    );
}

async fn a_customer_without_a_profile_is_asked_to_create_one(store: Arc<dyn Store>) {
    // GIVEN a chef's profile but none for the customer
    let app = spawn_app(store);
    app.seed_profiles().await;
    // WHEN another customer, who has no profile, places an order
    let response = app
        .post("/orders", OTHER_CUSTOMER, Some(new_order_body()))
        .await;
    // THEN it is unprocessable: profile required
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.problem_code(), "profile_required");
}

async fn invalid_order_fields_are_refused_naming_the_field(store: Arc<dyn Store>) {
    // GIVEN profiles
    let app = spawn_app(store);
    app.seed_profiles().await;
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("chefId", Box::new(|b| b["chefId"] = "chef#1".into())),
        ("chefId", Box::new(|b| b["chefId"] = 42.into())),
        (
            "chefId",
            Box::new(|b| drop(b.as_object_mut().unwrap().remove("chefId"))),
        ),
        (
            "deliveryAddress",
            Box::new(|b| b["deliveryAddress"] = "  ".into()),
        ),
        (
            "deliveryLatitude",
            Box::new(|b| b["deliveryLatitude"] = 91.0.into()),
        ),
        (
            "deliveryLongitude",
            Box::new(|b| b["deliveryLongitude"] = (-181.0).into()),
        ),
        (
            "deliveryLatitude",
            Box::new(|b| b["deliveryLatitude"] = "north".into()),
        ),
        (
            "items[0].quantity",
            Box::new(|b| b["items"][0]["quantity"] = 0.into()),
        ),
        (
            "items[0].quantity",
            Box::new(|b| b["items"][0]["quantity"] = (-2).into()),
        ),
        (
            "items[0].name",
            Box::new(|b| b["items"][0]["name"] = "".into()),
        ),
        (
            "items[1].name",
            Box::new(|b| b["items"] = json!([{"name": "a", "quantity": 1}, {"quantity": 1}])),
        ),
        ("notes", Box::new(|b| b["notes"] = "x".repeat(501).into())),
    ];
    for (field, mutate) in cases {
        // WHEN an order is placed with one bad field
        let mut body = new_order_body();
        mutate(&mut body);
        let response = app.post("/orders", CUSTOMER, Some(body.clone())).await;
        // THEN it is a 400 naming that field
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{body}: {response:?}"
        );
        assert_eq!(response.problem_code(), "validation_failed", "{body}");
        assert_eq!(response.field(), Some(field), "{body}: {response:?}");
    }
}

async fn a_quantity_is_any_whole_json_number_and_nothing_else(store: Arc<dyn Store>) {
    // GIVEN profiles
    let app = spawn_app(store);
    app.seed_profiles().await;
    for (quantity, answer) in [
        // JSON (and JSON Schema's `integer`) do not tell 6 from 6.0 or 6e0
        (json!(6.0), Ok(6)),
        (serde_json::from_str::<Value>("6e0").unwrap(), Ok(6)),
        (json!(99), Ok(99)),
        (json!(6.5), Err(())),
        (json!(1e2), Err(())),
        (json!(-0.5), Err(())),
        (json!(4294967296.0), Err(())),
        (json!("6"), Err(())),
    ] {
        // WHEN an order is placed with that quantity
        let mut body = new_order_body();
        body["items"][0]["quantity"] = quantity.clone();
        let response = app.post("/orders", CUSTOMER, Some(body)).await;
        // THEN a whole number in range is that number, anything else a 400 naming the field
        match answer {
            Ok(n) => {
                assert_eq!(
                    response.status,
                    StatusCode::CREATED,
                    "{quantity}: {response:?}"
                );
                assert_eq!(response.body["items"][0]["quantity"], n);
            }
            Err(()) => {
                assert_eq!(
                    response.status,
                    StatusCode::BAD_REQUEST,
                    "{quantity}: {response:?}"
                );
                assert_eq!(response.field(), Some("items[0].quantity"), "{quantity}");
            }
        }
    }
}

async fn a_customer_past_their_orders_per_hour_is_told_when_to_come_back(store: Arc<dyn Store>) {
    // GIVEN a customer who placed ten orders this hour (the limit), on a clock at 12:15
    let quarter_past = Utc.with_ymd_and_hms(2026, 11, 28, 12, 15, 0).unwrap();
    let app = spawn_app_at(Arc::clone(&store), quarter_past);
    app.seed_profiles().await;
    for _ in 0..Limit::ORDERS_PER_CUSTOMER.per_window {
        let placed = app.post("/orders", CUSTOMER, Some(new_order_body())).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{placed:?}");
    }
    // WHEN they place an eleventh
    let refused = app.post("/orders", CUSTOMER, Some(new_order_body())).await;
    // THEN it is refused with 429, and Retry-After says when the hour is over (45 minutes)
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    assert_eq!(refused.problem_code(), "rate_limited");
    assert_eq!(refused.headers[header::RETRY_AFTER], "2700");
    // AND a refusal for another reason costs nothing: an invalid order is still a 400
    let mut invalid = new_order_body();
    invalid["deliveryLatitude"] = json!(200.0);
    assert_eq!(
        app.post("/orders", CUSTOMER, Some(invalid)).await.status,
        StatusCode::BAD_REQUEST
    );
    // AND when the next hour starts they may place orders again
    let next_hour = spawn_app_at(store, quarter_past + chrono::Duration::minutes(45));
    let placed = next_hour
        .post("/orders", CUSTOMER, Some(new_order_body()))
        .await;
    assert_eq!(placed.status, StatusCode::CREATED);
}

async fn fifty_concurrent_orders_on_one_day_get_fifty_distinct_numbers(store: Arc<dyn Store>) {
    // GIVEN profiles, a clock stuck on one day, and no orders-per-hour limit in the way
    let day = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
    let app = Arc::new(TestApp {
        router: rnd_http_api::router(
            AppState::new(Arc::<dyn Store>::clone(&store), verifier())
                .with_clock(Arc::new(FixedClock(day)))
                .with_order_limit(Limit {
                    per_window: 100,
                    ..Limit::ORDERS_PER_CUSTOMER
                }),
        ),
        store,
    });
    app.seed_profiles().await;

    // WHEN fifty orders are placed at once
    let tasks = (0..50).map(|_| {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.post("/orders", CUSTOMER, Some(new_order_body())).await })
    });
    let responses: Vec<TestResponse> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();

    // THEN all are created, numbered RND-20261128-0001 … -0050, each once
    let numbers: BTreeSet<String> = responses
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
            r.body["orderNumber"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = (1..=50).map(|n| format!("RND-20261128-{n:04}")).collect();
    assert_eq!(numbers, expected);
}

// ---------------------------------------------------------------- lifecycle and tracking

async fn the_whole_lifecycle_runs_end_to_end_and_tracking_shows_it(store: Arc<dyn Store>) {
    // GIVEN a placed order
    let app = spawn_app(store);
    app.seed_profiles().await;
    let id = app.place_order().await;

    // WHEN every party moves it along the happy path
    let steps: [(&str, As, Option<Value>, &str); 7] = [
        ("confirm-payment", ADMIN, None, "payment_confirmed"),
        ("accept", CHEF, None, "accepted"),
        ("ready", CHEF, None, "ready_for_pickup"),
        (
            "assign",
            ADMIN,
            Some(json!({"driverId": "driver-1"})),
            "assigned_to_driver",
        ),
        ("pickup", DRIVER, None, "picked_up"),
        ("in-transit", DRIVER, None, "in_transit"),
        ("deliver", DRIVER, None, "delivered"),
    ];
    for (n, (path, who, body, status)) in steps.into_iter().enumerate() {
        let response = app.post(&format!("/orders/{id}/{path}"), who, body).await;
        // THEN each answers the updated order, one sequence number further on
        assert_eq!(response.status, StatusCode::OK, "{path}: {response:?}");
        assert_eq!(response.body["status"], status);
        assert_eq!(response.body["seq"], n as u64 + 2);
    }

    // AND the tracking payload shows the delivered order with the driver from their profile
    let tracking = app.get(&format!("/orders/{id}/tracking"), CUSTOMER).await;
    assert_eq!(tracking.status, StatusCode::OK);
    let t = &tracking.body;
    assert_eq!(t["status"], "delivered");
    assert_eq!(t["driverAssigned"], true);
    assert_eq!(t["driverName"], "Dan Driver");
    assert_eq!(t["driverPhone"], "+1 512 555 0100");
    assert_eq!(t["chefName"], "Carla Chef");
    assert_eq!(t["customerName"], "Ada Customer");
    assert_eq!(t["seq"], 8);
    for at in [
        "createdAt",
        "paymentConfirmedAt",
        "acceptedAt",
        "readyAt",
        "assignedAt",
        "pickedUpAt",
        "deliveredAt",
    ] {
        assert!(t[at].is_string(), "{at}");
    }
    let history: Vec<&str> = t["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "pending",
            "payment_confirmed",
            "accepted",
            "ready_for_pickup",
            "assigned_to_driver",
            "picked_up",
            "in_transit",
            "delivered"
        ]
    );
    // (who made each change is an admin's to know)
    assert!(t["statusHistory"][4].get("changedBy").is_none(), "{t}");
    // AND it is exactly the domain's tracking payload of the stored order, as its customer
    // sees it
    let stored = app.stored(&id).await;
    assert_eq!(
        t,
        &serde_json::to_value(OrderTracking::of(
            &stored,
            Visibility::of(Relation::Customer, &stored.order)
        ))
        .unwrap()
    );
}

async fn tracking_with_a_live_location_carries_the_driver_position_and_eta(store: Arc<dyn Store>) {
    // GIVEN an order in transit and an accepted driver location with an ETA
    let app = spawn_app(store);
    app.seed_profiles().await;
    let id = app.place_order().await;
    app.advance(&id, "in_transit").await;
    let view = app.stored(&id).await;
    let at = Utc::now();
    let write = location_write(&view.order.order_id, at);
    app.store.record_location(&write).await.unwrap();

    // WHEN the customer tracks it
    let tracking = app.get(&format!("/orders/{id}/tracking"), CUSTOMER).await;

    // THEN the payload has the position, its time, the ETA and the live sequence number
    assert_eq!(tracking.status, StatusCode::OK);
    let stored = app.stored(&id).await;
    assert_eq!(
        tracking.body,
        serde_json::to_value(OrderTracking::of(
            &stored,
            Visibility::of(Relation::Customer, &stored.order)
        ))
        .unwrap()
    );
    assert_eq!(tracking.body["driverLatitude"], 30.27);
    assert_eq!(tracking.body["etaMinutes"], 7);
    assert!(tracking.body["lastLocationUpdate"].is_string());
    assert_eq!(tracking.body["seq"], stored.seq());
}

fn location_write(order: &rnd_domain::OrderId, at: chrono::DateTime<Utc>) -> LocationWrite {
    LocationWrite {
        order_id: order.clone(),
        driver_id: UserId::parse("driver-1").unwrap(),
        location: DriverLocation {
            latitude: Latitude::parse(30.27).unwrap(),
            longitude: Longitude::parse(-97.74).unwrap(),
            heading: None,
            speed: None,
            accuracy: None,
            recorded_at: at,
        },
        eta: Some(rnd_domain::Eta {
            eta_minutes: 7,
            estimated_delivery_time: at + chrono::Duration::minutes(7),
            computed_at: at,
            source: rnd_domain::live::EtaSource::Route,
            estimated_pickup_time: None,
        }),
        observed_speed_mps: Some(8.0),
        route: None,
        now_ms: at.timestamp_millis(),
        min_interval_ms: 1_000,
        announced: false,
    }
}

async fn tracking_is_for_the_orders_parties_and_admins_and_404_for_anyone_else(
    store: Arc<dyn Store>,
) {
    // GIVEN an order assigned to driver-1
    let app = spawn_app(store);
    app.seed_profiles().await;
    let id = app.place_order().await;
    app.advance(&id, "assigned_to_driver").await;
    let path = format!("/orders/{id}/tracking");

    // WHEN each party and each stranger asks for its tracking
    // THEN its customer, chef, driver and any admin see it …
    for who in [CUSTOMER, CHEF, DRIVER, ADMIN, As("admin-2", "admin")] {
        let response = app.get(&path, who).await;
        assert_eq!(response.status, StatusCode::OK, "{who:?}");
        assert_eq!(response.body["orderId"], id.as_str());
    }
    // … and strangers get the same 404 as for an order that does not exist
    for who in [OTHER_CUSTOMER, OTHER_CHEF, OTHER_DRIVER] {
        let response = app.get(&path, who).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{who:?}");
        assert_eq!(response.problem_code(), "not_found");
        assert!(!response.body.to_string().contains("customer-1"));
    }
    let unknown = app.get("/orders/no-such-order/tracking", ADMIN).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // AND an id that cannot be an order id is a 400 naming it
    let bad = app.get("/orders/b%C3%A4d/tracking", ADMIN).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.field(), Some("orderId"));
}

async fn each_transition_refuses_the_wrong_party_and_hides_the_order_from_strangers(
    store: Arc<dyn Store>,
) {
    // GIVEN orders in each transition's starting status
    let app = spawn_app(store);
    app.seed_profiles().await;
    let assign = json!({"driverId": "driver-1"});
    let cases: [(&str, &str, Option<Value>, As, As); 7] = [
        // (from, action, body, a party that may not, a stranger)
        ("pending", "confirm-payment", None, CUSTOMER, OTHER_CUSTOMER),
        ("payment_confirmed", "accept", None, CUSTOMER, OTHER_CHEF),
        ("accepted", "ready", None, ADMIN, OTHER_CHEF),
        (
            "ready_for_pickup",
            "assign",
            Some(assign),
            CHEF,
            OTHER_DRIVER,
        ),
        ("assigned_to_driver", "pickup", None, CHEF, OTHER_DRIVER),
        ("picked_up", "in-transit", None, ADMIN, OTHER_DRIVER),
        ("in_transit", "deliver", None, CUSTOMER, OTHER_DRIVER),
    ];
    for (from, action, body, party, stranger) in cases {
        let id = app.place_order().await;
        app.advance(&id, from).await;
        let path = format!("/orders/{id}/{action}");
        // WHEN a party to the order who may not take the action tries
        let forbidden = app.post(&path, party, body.clone()).await;
        // THEN it is a 403
        assert_eq!(
            forbidden.status,
            StatusCode::FORBIDDEN,
            "{action} by {party:?}: {forbidden:?}"
        );
        assert_eq!(forbidden.problem_code(), "forbidden");
        // WHEN a stranger tries
        let hidden = app.post(&path, stranger, body).await;
        // THEN it is a 404
        assert_eq!(
            hidden.status,
            StatusCode::NOT_FOUND,
            "{action} by {stranger:?}"
        );
        // AND the order did not move
        assert_eq!(
            app.stored(&id).await.order.status.as_str(),
            from,
            "{action}"
        );
    }
}

async fn a_transition_the_status_does_not_allow_is_a_conflict(store: Arc<dyn Store>) {
    // GIVEN a pending order and a delivered one
    let app = spawn_app(store);
    app.seed_profiles().await;
    let pending = app.place_order().await;
    let delivered = app.place_order().await;
    app.advance(&delivered, "delivered").await;
    let accepted = app.place_order().await;
    app.advance(&accepted, "accepted").await;
    let cancel = json!({"reason": "too late"});

    // WHEN transitions are tried from statuses that do not allow them
    let cases = [
        app.post(&format!("/orders/{pending}/accept"), CHEF, None)
            .await,
        app.post(&format!("/orders/{pending}/deliver"), ADMIN, None)
            .await,
        app.post(&format!("/orders/{delivered}/deliver"), DRIVER, None)
            .await,
        app.post(
            &format!("/orders/{delivered}/cancel"),
            ADMIN,
            Some(cancel.clone()),
        )
        .await,
        app.post(
            &format!("/orders/{accepted}/cancel"),
            CUSTOMER,
            Some(cancel),
        )
        .await,
    ];
    // THEN each is a 409 invalid_transition (the admin's deliver is forbidden first: 403)
    let statuses: Vec<StatusCode> = cases.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            StatusCode::CONFLICT,
            StatusCode::FORBIDDEN,
            StatusCode::CONFLICT,
            StatusCode::CONFLICT,
            StatusCode::CONFLICT
        ],
        "{cases:?}"
    );
    assert_eq!(cases[0].problem_code(), "invalid_transition");
}

async fn two_concurrent_transitions_of_one_order_have_exactly_one_winner(store: Arc<dyn Store>) {
    let app = Arc::new(spawn_app(store));
    app.seed_profiles().await;
    for round in 0..3 {
        // GIVEN a paid order, and one in transit
        let paid = app.place_order().await;
        app.advance(&paid, "payment_confirmed").await;
        let moving = app.place_order().await;
        app.advance(&moving, "in_transit").await;

        // WHEN the chef accepts the paid order twice at once, and the driver delivers the
        // other while an admin cancels it
        let spawn = |path: String, who: As, body: Option<Value>| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.post(&path, who, body).await })
        };
        let (a, b, c, d) = tokio::join!(
            spawn(format!("/orders/{paid}/accept"), CHEF, None),
            spawn(format!("/orders/{paid}/accept"), CHEF, None),
            spawn(format!("/orders/{moving}/deliver"), DRIVER, None),
            spawn(
                format!("/orders/{moving}/cancel"),
                ADMIN,
                Some(json!({"reason": "customer unreachable"}))
            )
        );
        let (a, b, c, d) = (a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap());

        // THEN in each race exactly one answers 200 and the other 409
        for (x, y) in [(&a, &b), (&c, &d)] {
            let mut statuses = [x.status, y.status];
            statuses.sort();
            assert_eq!(
                statuses,
                [StatusCode::OK, StatusCode::CONFLICT],
                "round {round}: {x:?} / {y:?}"
            );
        }
        // AND the stored orders hold the winners, each one step further on
        let paid_view = app.stored(&paid).await;
        assert_eq!(paid_view.order.status.as_str(), "accepted");
        assert_eq!(paid_view.order.status_history.len(), 3);
        let moving_view = app.stored(&moving).await;
        let winner = if c.status == StatusCode::OK {
            "delivered"
        } else {
            "cancelled"
        };
        assert_eq!(moving_view.order.status.as_str(), winner);
        assert_eq!(moving_view.order.status_history.len(), 8);
    }
}

async fn a_transition_that_loses_to_a_driver_location_is_re_read_and_committed(
    store: Arc<dyn Store>,
) {
    // GIVEN an order in transit, and a store that accepts a driver location for it just before
    // the first transition commit (so that commit's condition no longer holds)
    let plain = spawn_app(Arc::clone(&store));
    plain.seed_profiles().await;
    let id = plain.place_order().await;
    plain.advance(&id, "in_transit").await;
    let before = plain.stored(&id).await;
    let app = spawn_meddling(Meddling {
        inner: store,
        location_before_first_commit: std::sync::Mutex::new(Some(location_write(
            &before.order.order_id,
            Utc::now(),
        ))),
        fail_reads: false,
    });

    // WHEN the driver delivers it
    let response = app
        .post(&format!("/orders/{id}/deliver"), DRIVER, None)
        .await;

    // THEN the delivery is re-applied to the new state and committed past the location's seq
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert_eq!(response.body["status"], "delivered");
    let after = app.stored(&id).await;
    assert_eq!(after.order.status.as_str(), "delivered");
    assert_eq!(after.seq(), before.seq() + 2, "location, then delivery");
    assert!(after.live.location.is_some(), "the location survived");
}

async fn cancelling_needs_a_reason_and_records_it(store: Arc<dyn Store>) {
    // GIVEN a pending order
    let app = spawn_app(store);
    app.seed_profiles().await;
    let id = app.place_order().await;
    let path = format!("/orders/{id}/cancel");

    // WHEN the customer cancels without a reason, with an empty one, one with a control
    // character, then with a real one
    let missing = app.post(&path, CUSTOMER, Some(json!({}))).await;
    let empty = app
        .post(&path, CUSTOMER, Some(json!({"reason": "   "})))
        .await;
    let control = app
        .post(
            &path,
            CUSTOMER,
            Some(json!({"reason": "changed\u{0}my mind"})),
        )
        .await;
    let cancelled = app
        .post(&path, CUSTOMER, Some(json!({"reason": "changed my mind"})))
        .await;

    // THEN the first three are 400s naming `reason`, the last cancels the order
    for response in [missing, empty, control] {
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{response:?}");
        assert_eq!(response.field(), Some("reason"));
    }
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["cancellationReason"], "changed my mind");
    assert_eq!(
        cancelled.body["statusHistory"][1]["reason"],
        "changed my mind"
    );
}

async fn assigning_needs_a_driver_with_a_profile(store: Arc<dyn Store>) {
    // GIVEN an order ready for pickup
    let app = spawn_app(store);
    app.seed_profiles().await;
    let id = app.place_order().await;
    app.advance(&id, "ready_for_pickup").await;
    let path = format!("/orders/{id}/assign");

    // WHEN an admin assigns a driver without a profile, a chef, and an invalid id
    let unknown = app
        .post(&path, ADMIN, Some(json!({"driverId": "driver-9"})))
        .await;
    let chef = app
        .post(&path, ADMIN, Some(json!({"driverId": "chef-1"})))
        .await;
    let invalid = app
        .post(&path, ADMIN, Some(json!({"driverId": "a b"})))
        .await;

    // THEN the first two are 422 naming driverId, the last a 400 naming it
    for response in [unknown, chef] {
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{response:?}"
        );
        assert_eq!(response.problem_code(), "not_a_driver");
        assert_eq!(response.field(), Some("driverId"));
    }
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.field(), Some("driverId"));
    assert_eq!(
        app.stored(&id).await.order.status.as_str(),
        "ready_for_pickup"
    );
}

// ---------------------------------------------------------------- listing

async fn each_party_lists_their_own_orders_newest_first_a_page_at_a_time(store: Arc<dyn Store>) {
    // GIVEN three orders of customer-1 with chef-1, the oldest assigned to driver-1
    let app = spawn_app(store);
    app.seed_profiles().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.place_order().await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    app.advance(&ids[0], "assigned_to_driver").await;
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    // WHEN the customer lists two at a time
    let first = app.get("/orders?limit=2", CUSTOMER).await;
    let cursor = first.body["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = app
        .get(&format!("/orders?limit=2&cursor={cursor}"), CUSTOMER)
        .await;

    // THEN the pages hold the orders newest first, the last page without a cursor
    let ids_of = |r: &TestResponse| -> Vec<String> {
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        r.body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["orderId"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut listed = ids_of(&first);
    listed.extend(ids_of(&second));
    assert_eq!(listed, newest_first);
    assert!(second.body.get("nextCursor").is_none(), "{:?}", second.body);
    // AND the chef sees the orders received, the driver only the assigned one, an admin all,
    // another customer none
    assert_eq!(ids_of(&app.get("/orders", CHEF).await), newest_first);
    assert_eq!(
        ids_of(&app.get("/orders", DRIVER).await),
        vec![ids[0].clone()]
    );
    assert_eq!(ids_of(&app.get("/orders", ADMIN).await), newest_first);
    assert!(ids_of(&app.get("/orders", OTHER_CUSTOMER).await).is_empty());
    assert!(ids_of(&app.get("/orders", OTHER_DRIVER).await).is_empty());
}

async fn a_bad_limit_or_a_cursor_the_api_did_not_issue_is_a_400_naming_it(store: Arc<dyn Store>) {
    // GIVEN an order
    let app = spawn_app(store);
    app.seed_profiles().await;
    app.place_order().await;
    // WHEN orders are listed with bad limits and foreign cursors
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=eyJrIjp7InBrIjoiT1JERVIjeCJ9fQ", "cursor"),
        ("cursor=7b7d", "cursor"),
    ] {
        let response = app.get(&format!("/orders?{query}"), CUSTOMER).await;
        // THEN each is a 400 naming the parameter
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{query}: {response:?}"
        );
        assert_eq!(response.field(), Some(field), "{query}");
    }
    assert_eq!(
        app.get("/orders?cursor=not-a-cursor", CUSTOMER)
            .await
            .problem_code(),
        "invalid_cursor"
    );
}

async fn a_limit_is_a_whole_number_written_either_way_and_nothing_else(store: Arc<dyn Store>) {
    // GIVEN three orders
    let app = spawn_app(store);
    app.seed_profiles().await;
    for _ in 0..3 {
        app.place_order().await;
    }
    // WHEN orders are listed two at a time, the limit written as an integer or as a float
    for limit in ["2", "2.0", "2.000"] {
        let response = app.get(&format!("/orders?limit={limit}"), CUSTOMER).await;
        // THEN the page holds two
        assert_eq!(response.status, StatusCode::OK, "{limit}: {response:?}");
        assert_eq!(response.body["orders"].as_array().map(Vec::len), Some(2));
    }
    // WHEN the limit is anything but a whole number from 1 to 100
    for limit in [
        "%202", "2%20", "+2", "2.", ".0", "2.5", "2e0", "0.0", "101.0", "-1", "",
    ] {
        let response = app.get(&format!("/orders?limit={limit}"), CUSTOMER).await;
        // THEN it is a 400 naming it
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{limit}: {response:?}"
        );
        assert_eq!(response.field(), Some("limit"), "{limit}");
    }
}

async fn a_cursor_outside_the_documented_shape_is_refused_before_any_store_reads_it(
    store: Arc<dyn Store>,
) {
    use base64::Engine;
    // GIVEN an order, and cursors that are no cursor of this API's by their shape alone: a
    // character outside base64url, and one longer than the document allows — a cursor the
    // DynamoDB store would read (its own JSON, padded past the limit)
    let app = spawn_app(store);
    app.seed_profiles().await;
    app.place_order().await;
    let padded = serde_json::to_vec(&json!({
        "m": Utc::now().format("%Y-%m").to_string(),
        "pad": "x".repeat(rnd_http_api::MAX_CURSOR_LEN),
    }))
    .unwrap();
    let long = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(padded);
    assert!(long.len() > rnd_http_api::MAX_CURSOR_LEN);
    for cursor in [long.as_str(), "ab%2Bcd", "ab%3D", "%C3%A4"] {
        // WHEN an admin lists orders after it
        let response = app.get(&format!("/orders?cursor={cursor}"), ADMIN).await;
        // THEN it is the documented 400 invalid_cursor
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{cursor}: {response:?}"
        );
        assert_eq!(response.problem_code(), "invalid_cursor", "{cursor}");
        assert_eq!(response.field(), Some("cursor"));
    }
    // AND an empty cursor is the first page
    let first = app.get("/orders?cursor=", ADMIN).await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
}

// ---------------------------------------------------------------- profiles

async fn profiles_are_saved_whole_and_read_back(store: Arc<dyn Store>) {
    // GIVEN a chef without a profile
    let app = spawn_app(store);
    let before = app.get("/profiles/me", CHEF).await;
    assert_eq!(before.status, StatusCode::NOT_FOUND);
    assert_eq!(before.problem_code(), "not_found");

    // WHEN the chef saves a complete profile and reads it back
    let body = json!({
        "name": "Carla Chef", "phone": "+1 512 555 0101", "businessName": "Carla's Kitchen",
        "address": "500 E 7th St, Austin, TX", "latitude": 30.2676, "longitude": -97.736
    });
    let saved = app.put("/profiles/me", CHEF, body).await;
    let read = app.get("/profiles/me", CHEF).await;

    // THEN both show it, with the token's user and role
    assert_eq!(saved.status, StatusCode::OK, "{saved:?}");
    assert_eq!(read.body, saved.body);
    assert_eq!(read.body["userId"], "chef-1");
    assert_eq!(read.body["role"], "chef");
    assert_eq!(read.body["latitude"], 30.2676);

    // WHEN it is saved again without the location
    let saved = app
        .put("/profiles/me", CHEF, json!({"name": "Carla Chef"}))
        .await;
    // THEN the location is gone
    assert_eq!(saved.status, StatusCode::OK);
    assert!(
        app.get("/profiles/me", CHEF)
            .await
            .body
            .get("latitude")
            .is_none()
    );
}

async fn invalid_profiles_are_refused_naming_the_field(store: Arc<dyn Store>) {
    let app = spawn_app(store);
    for (who, body, field) in [
        (CUSTOMER, json!({"name": ""}), "name"),
        (CUSTOMER, json!({}), "name"),
        (
            CUSTOMER,
            json!({"name": "Ada", "phone": "call me maybe"}),
            "phone",
        ),
        (
            CHEF,
            json!({"name": "Carla", "latitude": 30.0}),
            "longitude",
        ),
        (
            CHEF,
            json!({"name": "Carla", "latitude": 30.0, "longitude": 200.0}),
            "longitude",
        ),
        (
            CHEF,
            json!({"name": "Carla", "latitude": "thirty", "longitude": 1.0}),
            "latitude",
        ),
    ] {
        // WHEN a bad profile is saved
        let response = app.put("/profiles/me", who, body.clone()).await;
        // THEN it is a 400 naming the field, and nothing is saved
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{body}: {response:?}"
        );
        assert_eq!(response.field(), Some(field), "{body}: {response:?}");
    }
    assert_eq!(
        app.get("/profiles/me", CHEF).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn chef_fields_from_anyone_but_a_chef_are_forbidden_naming_the_field(store: Arc<dyn Store>) {
    let app = spawn_app(store);
    for (who, body, field) in [
        (
            CUSTOMER,
            json!({"name": "Ada", "businessName": "Ada's"}),
            "businessName",
        ),
        (
            DRIVER,
            json!({"name": "Dan", "latitude": 1.0, "longitude": 1.0}),
            "latitude",
        ),
        (
            ADMIN,
            json!({"name": "Ana", "address": "1 Main St"}),
            "address",
        ),
        // Even a business name a chef could not save: who may send it comes first.
        (
            CUSTOMER,
            json!({"name": "Ada", "businessName": ""}),
            "businessName",
        ),
    ] {
        // WHEN someone who is not a chef saves a profile with a chef's field, well-formed or not
        let response = app.put("/profiles/me", who, body.clone()).await;
        // THEN it is a 403 naming the field (a chef could send it), and nothing is saved
        assert_eq!(
            response.status,
            StatusCode::FORBIDDEN,
            "{who:?} {body}: {response:?}"
        );
        assert_eq!(response.problem_code(), "forbidden");
        assert_eq!(response.field(), Some(field), "{body}: {response:?}");
        assert_eq!(
            app.get("/profiles/me", who).await.status,
            StatusCode::NOT_FOUND
        );
    }
    // AND a chef's field sent as null is no field at all
    let saved = app
        .put(
            "/profiles/me",
            CUSTOMER,
            json!({"name": "Ada", "businessName": null, "latitude": null, "longitude": null}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{saved:?}");
    assert!(saved.body.get("businessName").is_none());
}

// ---------------------------------------------------------------- refusals at the edge

async fn missing_invalid_and_expired_tokens_are_401_problems(store: Arc<dyn Store>) {
    let app = spawn_app(store);
    let wrong_secret = rnd_domain::identity::issue_hs256(
        &rnd_domain::identity::TokenClaims {
            sub: "customer-1".into(),
            role: "customer".into(),
            exp: Utc::now().timestamp() + 3600,
            nbf: None,
            iat: None,
            name: None,
            iss: None,
            aud: None,
        },
        b"another-secret-that-is-long-enough-for-hs256",
    )
    .unwrap();
    let cases = [
        (None, "unauthorized", "Bearer"),
        (Some("Bearer".to_owned()), "unauthorized", "Bearer"),
        (
            Some("Basic Y3VzdG9tZXI6cGFzcw==".to_owned()),
            "unauthorized",
            "Bearer",
        ),
        (
            Some("Bearer not.a.jwt".to_owned()),
            "unauthorized",
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some(format!("Bearer {wrong_secret}")),
            "unauthorized",
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some(format!(
                "Bearer {}",
                expired_token("customer-1", "customer")
            )),
            "token_expired",
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some(format!("Bearer {}", token("customer-1", "superuser"))),
            "unauthorized",
            "Bearer error=\"invalid_token\"",
        ),
    ];
    for path in ["/orders", "/profiles/me", "/openapi.json", "/no-such-route"] {
        for (authorization, code, challenge) in &cases {
            // WHEN a request comes with this Authorization header
            let mut request = Request::builder().uri(path);
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            let response = send(&app.router, request.body(Body::empty()).unwrap()).await;
            // THEN it is a 401 problem with a Bearer challenge, even for unknown routes
            assert_eq!(
                response.status,
                StatusCode::UNAUTHORIZED,
                "{path} {authorization:?}"
            );
            assert_eq!(response.problem_code(), *code, "{authorization:?}");
            assert_eq!(response.headers[header::WWW_AUTHENTICATE], *challenge);
        }
    }
}

async fn oversize_non_json_and_malformed_bodies_are_4xx_problems(store: Arc<dyn Store>) {
    // GIVEN profiles
    let app = spawn_app(store);
    app.seed_profiles().await;
    let auth = format!("Bearer {}", token("customer-1", "customer"));
    let request = |content_type: Option<&str>, length: Option<usize>, body: Vec<u8>| {
        let mut r = Request::builder()
            .method(Method::POST)
            .uri("/orders")
            .header(header::AUTHORIZATION, auth.as_str());
        if let Some(ct) = content_type {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        if let Some(length) = length {
            r = r.header(header::CONTENT_LENGTH, length);
        }
        r.body(Body::from(body)).unwrap()
    };
    let mut big = new_order_body();
    big["notes"] = "x".repeat(70 * 1024).into();
    let big = big.to_string().into_bytes();
    let cases = [
        // (request, status, code)
        (
            request(Some("application/json"), None, big.clone()),
            413,
            "payload_too_large",
        ),
        (
            request(Some("application/json"), Some(big.len()), big),
            413,
            "payload_too_large",
        ),
        (
            request(Some("text/plain"), None, b"{}".to_vec()),
            415,
            "unsupported_media_type",
        ),
        (
            request(None, None, new_order_body().to_string().into_bytes()),
            415,
            "unsupported_media_type",
        ),
        (
            request(Some("application/json"), None, b"{\"chefId\": ".to_vec()),
            400,
            "malformed_json",
        ),
        (
            request(Some("application/json"), None, Vec::new()),
            400,
            "malformed_json",
        ),
        (
            request(
                Some("application/json"),
                None,
                format!("{} []", new_order_body()).into_bytes(),
            ),
            400,
            "malformed_json",
        ),
    ];
    for (n, (request, status, code)) in cases.into_iter().enumerate() {
        // WHEN the body is refused
        let response = send(&app.router, request).await;
        // THEN it is the 4xx problem that says why
        assert_eq!(response.status.as_u16(), status, "case {n}: {response:?}");
        assert_eq!(response.problem_code(), code, "case {n}");
    }
    // AND a profile body is bounded the same way
    let response = app
        .put(
            "/profiles/me",
            CUSTOMER,
            json!({"name": "x".repeat(65 * 1024)}),
        )
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn unknown_routes_and_methods_are_problems_too(store: Arc<dyn Store>) {
    let app = spawn_app(store);
    let unknown = app.get("/nope", CUSTOMER).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.problem_code(), "not_found");
    let method = app.call(Method::DELETE, "/orders", ADMIN, None).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(method.problem_code(), "method_not_allowed");
}

async fn an_unexpected_store_failure_is_a_generic_500(store: Arc<dyn Store>) {
    // GIVEN a store whose order reads fail with an internal-looking error
    let app = spawn_meddling(Meddling {
        inner: store,
        location_before_first_commit: std::sync::Mutex::new(None),
        fail_reads: true,
    });
    // WHEN an order is tracked
    let response = app.get("/orders/order-1/tracking", CUSTOMER).await;
    // THEN it is a 500 problem that reveals nothing
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.problem_code(), "internal");
    assert!(!response.body.to_string().contains(INTERNAL_DETAIL));
    assert!(!response.body.to_string().contains("10.0.0.7"));
}

// ---------------------------------------------------------------------------------------------
// Devices

fn device_body(token: &str) -> Value {
    json!({"token": token, "platform": "android", "appVersion": "1.4.0", "locale": "es-MX"})
}

async fn a_user_registers_a_device_and_registering_it_again_refreshes_the_same_one(
    store: Arc<dyn Store>,
) {
    // GIVEN a chef's app
    let app = spawn_app(store);
    // WHEN it registers its FCM token
    let first = app
        .post("/devices", CHEF, Some(device_body("dXa1:APA91b-chef")))
        .await;
    // THEN it is created, with an id, a Location and what was registered (not the token)
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let id = first.body["deviceId"]
        .as_str()
        .expect("deviceId")
        .to_owned();
    assert_eq!(
        first.headers[header::LOCATION],
        format!("/devices/{id}").as_str()
    );
    assert_eq!(first.body["platform"], "android");
    assert_eq!(first.body["locale"], "es-MX");
    assert!(first.body.get("token").is_none(), "the token is not echoed");
    // WHEN the same token is registered again
    let again = app
        .post("/devices", CHEF, Some(device_body("dXa1:APA91b-chef")))
        .await;
    // THEN it is the same device, 200
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["deviceId"], id.as_str());
    // AND the chef's list holds exactly it
    let list = app.get("/devices", CHEF).await;
    assert_eq!(list.status, StatusCode::OK);
    let devices = list.body["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["deviceId"], id.as_str());
}

async fn a_token_registered_by_another_user_moves_to_the_caller(store: Arc<dyn Store>) {
    let app = spawn_app(store);
    app.post("/devices", CUSTOMER, Some(device_body("shared:phone")))
        .await;
    // WHEN another account registers the same phone's token
    let moved = app
        .post(
            "/devices",
            OTHER_CUSTOMER,
            Some(device_body("shared:phone")),
        )
        .await;
    // THEN it is a new device of theirs, and the first user has none
    assert_eq!(moved.status, StatusCode::CREATED);
    let first = app.get("/devices", CUSTOMER).await;
    assert_eq!(first.body["devices"], json!([]));
    let second = app.get("/devices", OTHER_CUSTOMER).await;
    assert_eq!(second.body["devices"].as_array().map(Vec::len), Some(1));
}

async fn only_its_owner_deletes_a_device(store: Arc<dyn Store>) {
    let app = spawn_app(store);
    let created = app
        .post("/devices", DRIVER, Some(device_body("driver:token")))
        .await;
    let id = created.body["deviceId"].as_str().expect("id").to_owned();
    // WHEN someone else, then the owner, deletes it
    let theirs = app
        .call(
            Method::DELETE,
            &format!("/devices/{id}"),
            OTHER_DRIVER,
            None,
        )
        .await;
    let unknown = app
        .call(Method::DELETE, "/devices/not-a-device", DRIVER, None)
        .await;
    let mine = app
        .call(Method::DELETE, &format!("/devices/{id}"), DRIVER, None)
        .await;
    // THEN the others get 404 and the owner 204, after which it is gone
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(theirs.problem_code(), "not_found");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(mine.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/devices", DRIVER).await.body["devices"], json!([]));
}

async fn device_registrations_are_checked_and_refused_naming_the_field(store: Arc<dyn Store>) {
    let app = spawn_app(store);
    let cases = [
        (json!({"token": "", "platform": "android"}), "token"),
        (
            json!({"token": "has space", "platform": "android"}),
            "token",
        ),
        (
            json!({"token": "x".repeat(4097), "platform": "android"}),
            "token",
        ),
        (
            json!({"token": "ok:token", "platform": "windows"}),
            "platform",
        ),
        (
            json!({"token": "ok:token", "platform": "ios", "appVersion": "v".repeat(65)}),
            "appVersion",
        ),
    ];
    for (body, field) in cases {
        let response = app.post("/devices", CUSTOMER, Some(body)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(response.problem_code(), "validation_failed", "{field}");
        assert_eq!(response.field(), Some(field));
    }
    // AND a token of the longest allowed size is accepted
    let longest = app
        .post(
            "/devices",
            CUSTOMER,
            Some(json!({"token": "x".repeat(4096), "platform": "web"})),
        )
        .await;
    assert_eq!(longest.status, StatusCode::CREATED);
    // AND nothing was stored by the refused ones
    assert_eq!(
        app.get("/devices", CUSTOMER).await.body["devices"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

async fn an_eleventh_device_replaces_the_least_recently_seen(store: Arc<dyn Store>) {
    let app = spawn_app(store);
    let mut first = None;
    for i in 0..11 {
        let response = app
            .post("/devices", CHEF, Some(device_body(&format!("phone-{i}"))))
            .await;
        assert_eq!(response.status, StatusCode::CREATED);
        first.get_or_insert(response.body["deviceId"].clone());
        // (distinct lastSeenAt, so "least recently seen" is well defined)
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let devices = app.get("/devices", CHEF).await.body["devices"].clone();
    let ids: Vec<&Value> = devices
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| &d["deviceId"])
        .collect();
    assert_eq!(ids.len(), 10);
    assert!(!ids.contains(&first.as_ref().expect("first")));
}

#[tokio::test]
async fn devices_need_a_token() {
    let app = spawn_app(rnd_test_support::sqlite().await);
    let request = Request::builder()
        .method(Method::GET)
        .uri("/devices")
        .body(Body::empty())
        .expect("request");
    let response = send(&app.router, request).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

on_both_stores!(
    a_retried_order_with_its_key_answers_the_same_order_and_places_no_second,
    the_same_key_with_another_request_is_refused,
    a_retried_transition_that_succeeded_answers_its_200_not_409,
    a_retry_while_the_first_runs_is_told_to_wait,
    a_key_that_is_not_visible_ascii_is_refused,
    each_party_sees_its_shape_of_an_order_in_every_status,
    a_transition_answers_the_order_as_its_caller_sees_it,
    the_driver_loses_an_order_hours_after_it_was_delivered,
    a_user_registers_a_device_and_registering_it_again_refreshes_the_same_one,
    a_token_registered_by_another_user_moves_to_the_caller,
    only_its_owner_deletes_a_device,
    device_registrations_are_checked_and_refused_naming_the_field,
    an_eleventh_device_replaces_the_least_recently_seen,
    a_customer_places_a_pending_numbered_order_with_the_chefs_details,
    only_customers_place_orders,
    a_chef_without_a_location_cannot_receive_orders,
    a_customer_without_a_profile_is_asked_to_create_one,
    invalid_order_fields_are_refused_naming_the_field,
    fifty_concurrent_orders_on_one_day_get_fifty_distinct_numbers,
    a_customer_past_their_orders_per_hour_is_told_when_to_come_back,
    the_whole_lifecycle_runs_end_to_end_and_tracking_shows_it,
    tracking_with_a_live_location_carries_the_driver_position_and_eta,
    tracking_is_for_the_orders_parties_and_admins_and_404_for_anyone_else,
    each_transition_refuses_the_wrong_party_and_hides_the_order_from_strangers,
    a_transition_the_status_does_not_allow_is_a_conflict,
    two_concurrent_transitions_of_one_order_have_exactly_one_winner,
    a_transition_that_loses_to_a_driver_location_is_re_read_and_committed,
    cancelling_needs_a_reason_and_records_it,
    assigning_needs_a_driver_with_a_profile,
    each_party_lists_their_own_orders_newest_first_a_page_at_a_time,
    a_bad_limit_or_a_cursor_the_api_did_not_issue_is_a_400_naming_it,
    a_limit_is_a_whole_number_written_either_way_and_nothing_else,
    a_cursor_outside_the_documented_shape_is_refused_before_any_store_reads_it,
    a_quantity_is_any_whole_json_number_and_nothing_else,
    profiles_are_saved_whole_and_read_back,
    invalid_profiles_are_refused_naming_the_field,
    chef_fields_from_anyone_but_a_chef_are_forbidden_naming_the_field,
    missing_invalid_and_expired_tokens_are_401_problems,
    oversize_non_json_and_malformed_bodies_are_4xx_problems,
    unknown_routes_and_methods_are_problems_too,
    an_unexpected_store_failure_is_a_generic_500,
    a_dispatcher_sees_whether_a_driver_is_online_since_when_and_when_last_seen,
    a_customer_sees_the_presence_of_their_active_orders_driver_only,
    connection_statistics_count_connects_by_role_for_admins_only,
);

// ---------------------------------------------------------------- the OpenAPI document

#[tokio::test]
async fn the_openapi_document_lists_every_problem_code_as_the_codes_enum() {
    // GIVEN the API
    let app = spawn_app(sqlite().await);

    // WHEN its document is fetched
    let doc = app.get("/openapi.json", CUSTOMER).await.body;

    // THEN a problem's `code` is the ProblemCode enum
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Problem"]["properties"]["code"]["$ref"], "#/components/schemas/ProblemCode",
        "{}",
        schemas["Problem"]
    );
    // AND the enum lists exactly every code the API answers with
    let listed: BTreeSet<String> = schemas["ProblemCode"]["enum"]
        .as_array()
        .expect("ProblemCode is an enum")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect();
    let codes: BTreeSet<String> = rnd_http_api::ProblemCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(listed, codes);
}

#[tokio::test]
async fn the_openapi_document_is_served_valid_and_lists_every_route() {
    // GIVEN the API
    let app = spawn_app(sqlite().await);

    // WHEN its document is fetched
    let response = app.get("/openapi.json", CUSTOMER).await;

    // THEN it is OpenAPI 3.1 JSON that parses as an OpenAPI 3.1 spec
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers[header::CONTENT_TYPE], "application/json");
    let doc = &response.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let spec = oas3::from_json(doc.to_string()).expect("a valid OpenAPI 3.1 document");
    assert_eq!(spec.info.title, "RND Realtime HTTP API");

    // AND every route of the Router is in `paths` with its method, and nothing else
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let routes: BTreeSet<(String, String)> = [
        ("GET", "/orders/{id}/tracking"),
        ("POST", "/orders"),
        ("GET", "/orders"),
        ("POST", "/orders/{id}/confirm-payment"),
        ("POST", "/orders/{id}/accept"),
        ("POST", "/orders/{id}/ready"),
        ("POST", "/orders/{id}/assign"),
        ("POST", "/orders/{id}/pickup"),
        ("POST", "/orders/{id}/in-transit"),
        ("POST", "/orders/{id}/deliver"),
        ("POST", "/orders/{id}/cancel"),
        ("GET", "/profiles/me"),
        ("PUT", "/profiles/me"),
        ("POST", "/devices"),
        ("GET", "/devices"),
        ("DELETE", "/devices/{deviceId}"),
        ("GET", "/presence/{userId}"),
        ("GET", "/stats/connections"),
        ("GET", "/openapi.json"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(documented, routes);
    // AND every documented route is served (no 404/405 from the Router for any of them)
    for (method, path) in &routes {
        let concrete = path
            .replace("{id}", "no-such-order")
            .replace("{userId}", "no-such-user");
        let response = app
            .call(method.parse().unwrap(), &concrete, ADMIN, None)
            .await;
        let unrouted = response.status == StatusCode::METHOD_NOT_ALLOWED
            || (response.status == StatusCode::NOT_FOUND
                && response.body["detail"] == "no such resource");
        assert!(!unrouted, "{method} {path}: {response:?}");
    }

    // AND it is the same document the code generates, every operation is secured by the bearer
    // scheme, every `$ref` resolves, and every error response is a problem
    assert_eq!(doc, &serde_json::to_value(rnd_http_api::openapi()).unwrap());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for r in &refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
            assert!(op["responses"]["401"].is_object(), "{method} {path}");
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"][PROBLEM].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap_or_default().to_owned());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The schema at `pointer` of the document, following one `$ref` at its end.
fn schema_at<'a>(doc: &'a Value, pointer: &str) -> &'a Value {
    let value = doc
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the document"));
    match value.get("$ref").and_then(Value::as_str) {
        Some(target) => schema_at(doc, target.trim_start_matches('#')),
        None => value,
    }
}

#[tokio::test]
async fn the_openapi_document_names_the_idempotency_key_and_the_limits_refusal() {
    // GIVEN the document
    let doc = serde_json::to_value(rnd_http_api::openapi()).unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    // THEN every POST that places or moves an order takes Idempotency-Key and documents the
    // 409 and 422 it may answer with, and nothing else takes it
    let mut keyed = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let takes_key = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
            let should = method == "post" && path.starts_with("/orders");
            assert_eq!(takes_key, should, "{method} {path}");
            if should {
                keyed += 1;
                for status in ["409", "422"] {
                    assert!(
                        operation["responses"].get(status).is_some(),
                        "{method} {path} documents {status}"
                    );
                }
            }
        }
    }
    assert!(keyed >= 9, "placing and every transition: {keyed}");
    // AND placing an order documents its 429 with Retry-After
    let too_many = &paths["/orders"]["post"]["responses"]["429"];
    assert!(
        too_many
            .get("headers")
            .is_some_and(|h| h.get("retry-after").is_some()),
        "{too_many}"
    );
}

#[tokio::test]
async fn the_openapi_document_gives_every_path_id_the_pattern_of_its_parser() {
    // GIVEN the document
    let doc = serde_json::to_value(rnd_http_api::openapi()).unwrap();
    // WHEN every path parameter is read
    let mut seen = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] != "path" {
                    continue;
                }
                let name = parameter["name"].as_str().unwrap();
                seen.insert(name.to_owned());
                // THEN each is required and carries exactly its id's pattern and length
                let (pattern, max) = match name {
                    "id" => (rnd_domain::OrderId::PATTERN, rnd_domain::ids::MAX_ID_LEN),
                    "deviceId" => (rnd_domain::device::DeviceId::PATTERN, 64),
                    "userId" => (rnd_domain::UserId::PATTERN, rnd_domain::ids::MAX_ID_LEN),
                    other => panic!("{method} {path}: an unknown path parameter {other}"),
                };
                assert_eq!(parameter["required"], true, "{method} {path}");
                let schema = &parameter["schema"];
                assert_eq!(
                    (
                        &schema["type"],
                        &schema["pattern"],
                        &schema["minLength"],
                        &schema["maxLength"]
                    ),
                    (&json!("string"), &json!(pattern), &json!(1), &json!(max)),
                    "{method} {path} {name}"
                );
                // AND its name is the one in the path
                assert!(path.contains(&format!("{{{name}}}")), "{method} {path}");
            }
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["id".to_owned(), "deviceId".to_owned(), "userId".to_owned()])
    );
}

#[tokio::test]
async fn the_openapi_document_says_what_each_request_field_accepts() {
    use rnd_domain::profile::{optional_text_pattern, phone_pattern, text_pattern};
    // GIVEN the document
    let doc = serde_json::to_value(rnd_http_api::openapi()).unwrap();
    let order = "/components/schemas/CreateOrderRequest/properties";
    let profile = "/components/schemas/ProfileRequest/allOf/0/properties";
    let device = "/components/schemas/DeviceRequest/properties";
    let user_id = rnd_domain::UserId::PATTERN.to_owned();

    // THEN every text and id of a request body has the pattern of the parser that reads it
    for (pointer, pattern) in [
        (format!("{order}/chefId"), user_id.clone()),
        (format!("{order}/deliveryAddress"), text_pattern(200)),
        (format!("{order}/notes"), optional_text_pattern(500)),
        (
            "/components/schemas/OrderLine/properties/name".into(),
            text_pattern(100),
        ),
        (
            "/components/schemas/AssignRequest/properties/driverId".into(),
            user_id,
        ),
        (
            "/components/schemas/CancelRequest/properties/reason".into(),
            text_pattern(500),
        ),
        (format!("{profile}/name"), text_pattern(100)),
        (format!("{profile}/businessName"), text_pattern(100)),
        (format!("{profile}/address"), text_pattern(200)),
        (format!("{profile}/phone/allOf/1"), phone_pattern()),
        (format!("{profile}/phone/allOf/2"), text_pattern(32)),
        (
            format!("{device}/token"),
            rnd_domain::device::DeviceToken::PATTERN.into(),
        ),
        (format!("{device}/appVersion"), optional_text_pattern(64)),
        (format!("{device}/locale"), optional_text_pattern(64)),
    ] {
        assert_eq!(schema_at(&doc, &pointer)["pattern"], pattern, "{pointer}");
    }
    // AND the optional ones may be null, which the API reads as absent
    for pointer in [
        format!("{order}/notes"),
        format!("{profile}/businessName"),
        format!("{profile}/address"),
        format!("{profile}/phone/allOf/0"),
        format!("{device}/appVersion"),
        format!("{device}/locale"),
    ] {
        assert_eq!(
            schema_at(&doc, &pointer)["type"],
            json!(["string", "null"]),
            "{pointer}"
        );
    }
    // AND every number has its range
    for (pointer, bound) in [
        (format!("{order}/deliveryLatitude"), 90),
        (format!("{order}/deliveryLongitude"), 180),
        (format!("{profile}/latitude"), 90),
        (format!("{profile}/longitude"), 180),
    ] {
        let schema = schema_at(&doc, &pointer);
        assert_eq!(
            (&schema["minimum"], &schema["maximum"]),
            (&json!(-bound), &json!(bound)),
            "{pointer}"
        );
    }
    let quantity = schema_at(&doc, "/components/schemas/OrderLine/properties/quantity");
    assert_eq!(
        (
            &quantity["type"],
            &quantity["minimum"],
            &quantity["maximum"]
        ),
        (&json!("integer"), &json!(1), &json!(99))
    );
    assert_eq!(schema_at(&doc, &format!("{order}/items"))["maxItems"], 50);
    // AND the pickup point is both coordinates or neither
    assert_eq!(
        schema_at(&doc, "/components/schemas/ProfileRequest/allOf/1")["anyOf"],
        json!([
            {"type": "object", "required": ["latitude", "longitude"],
             "properties": {"latitude": {"type": "number"}, "longitude": {"type": "number"}}},
            {"type": "object",
             "properties": {"latitude": {"type": "null"}, "longitude": {"type": "null"}}}
        ])
    );
    // AND a profile with a chef's field from anyone else is a documented 403
    assert!(doc["paths"]["/profiles/me"]["put"]["responses"]["403"].is_object());
    // AND the listing's parameters are a whole limit of 1 to 100 and a base64url cursor
    let parameters = doc["paths"]["/orders"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let parameter = |name: &str| {
        &parameters
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))["schema"]
    };
    let limit = parameter("limit");
    assert_eq!(
        (&limit["type"], &limit["minimum"], &limit["maximum"]),
        (&json!("integer"), &json!(1), &json!(rnd_http_api::MAX_PAGE))
    );
    let cursor = parameter("cursor");
    assert_eq!(
        (&cursor["pattern"], &cursor["maxLength"]),
        (
            &json!("^[A-Za-z0-9_-]*$"),
            &json!(rnd_http_api::MAX_CURSOR_LEN)
        )
    );
    assert!(doc["paths"]["/orders"]["get"]["responses"]["400"].is_object());
}

#[tokio::test]
async fn no_string_in_the_openapi_document_reads_as_a_path_of_the_api() {
    // GIVEN the document, which tools that crawl responses read like any other (schemathesis
    // follows every same-origin path it finds in a response, `{id}` and all)
    let doc = serde_json::to_value(rnd_http_api::openapi()).unwrap();
    // WHEN every string in it is read
    let mut strings = Vec::new();
    collect_strings(&doc, &mut strings);
    // THEN none is a path: descriptions name paths inside prose, never alone
    for s in strings {
        assert!(!s.starts_with('/'), "{s:?}");
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
