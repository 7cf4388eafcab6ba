//! `Idempotency-Key` on placing orders and on transitions, on both stores: a retry gets the first
//! answer, no second order; another request under the key is refused; a running one is waited
//! for; keys are per user; without a key nothing changes.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use rnd_domain::ports::{KeyClaim, Store};
use rnd_http_api::idempotency::request_fingerprint;
use serde_json::Value;

use crate::helpers::*;

/// `POST path` as `who` with `body`, under `key`.
async fn post_keyed(
    app: &TestApp,
    path: &str,
    who: As,
    key: &str,
    body: Option<Value>,
) -> TestResponse {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", token(who.0, who.1)),
        )
        .header("Idempotency-Key", key);
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    send(&app.router, request.body(body).expect("request")).await
}

/// The customer places the new order with `key`.
async fn place_keyed(app: &TestApp, key: &str) -> TestResponse {
    post_keyed(app, "/orders", CUSTOMER, key, Some(new_order_body())).await
}

async fn orders_of_the_customer(app: &TestApp) -> usize {
    app.get("/orders?limit=100", CUSTOMER).await.body["orders"]
        .as_array()
        .expect("orders")
        .len()
}

pub async fn a_retried_order_with_its_key_answers_the_same_order_and_places_no_second(
    store: Arc<dyn Store>,
) {
    // GIVEN a customer placing an order with a key
    let app = spawn_app(store);
    app.seed_profiles().await;
    let first = place_keyed(&app, "order-attempt-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    // WHEN the app retries it (its answer was lost), with the same key and body
    let retry = place_keyed(&app, "order-attempt-1").await;
    // THEN it gets the same answer, marked as a replay, and there is one order
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, first.body);
    assert_eq!(
        retry.headers[header::LOCATION],
        first.headers[header::LOCATION]
    );
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(orders_of_the_customer(&app).await, 1);
    // AND another key places another order
    let other = place_keyed(&app, "order-attempt-2").await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_ne!(other.body["orderId"], first.body["orderId"]);
    // AND without a key each request places an order, as before
    app.post("/orders", CUSTOMER, Some(new_order_body())).await;
    assert_eq!(orders_of_the_customer(&app).await, 3);
}

pub async fn the_same_key_with_another_request_is_refused(store: Arc<dyn Store>) {
    // GIVEN an order placed with a key
    let app = spawn_app(store);
    app.seed_profiles().await;
    place_keyed(&app, "k").await;
    // WHEN the key comes back with another body, and on another path
    let mut changed = new_order_body();
    changed["notes"] = "no onions".into();
    let other_body = post_keyed(&app, "/orders", CUSTOMER, "k", Some(changed)).await;
    let id = app.get("/orders", CUSTOMER).await.body["orders"][0]["orderId"]
        .as_str()
        .expect("id")
        .to_owned();
    let other_path = post_keyed(&app, &format!("/orders/{id}/cancel"), CUSTOMER, "k", None).await;
    // THEN both are refused, naming the header, and nothing else happened
    for refused in [&other_body, &other_path] {
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{refused:?}"
        );
        assert_eq!(refused.problem_code(), "idempotency_key_reused");
        assert_eq!(refused.field(), Some("Idempotency-Key"));
    }
    assert_eq!(orders_of_the_customer(&app).await, 1);
}

pub async fn a_retried_transition_that_succeeded_answers_its_200_not_409(store: Arc<dyn Store>) {
    // GIVEN an order whose payment is confirmed, and the chef accepting it with a key
    let app = spawn_app(store);
    app.seed_profiles().await;
    let id = app.place_order().await;
    app.advance(&id, "payment_confirmed").await;
    let path = format!("/orders/{id}/accept");
    let first = post_keyed(&app, &path, CHEF, "accept-1", None).await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    // WHEN the chef's app retries it with the key
    let retry = post_keyed(&app, &path, CHEF, "accept-1", None).await;
    // THEN it gets the first 200 again
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.body, first.body);
    // AND without the key the repeat is refused as today
    let unkeyed = app.post(&path, CHEF, None).await;
    assert_eq!(unkeyed.status, StatusCode::CONFLICT);
    assert_eq!(unkeyed.problem_code(), "invalid_transition");
}

pub async fn a_retry_while_the_first_runs_is_told_to_wait(store: Arc<dyn Store>) {
    // GIVEN a request under a key that is still running (its claim holds the key, unanswered)
    let app = spawn_app(Arc::clone(&store));
    app.seed_profiles().await;
    let body = new_order_body();
    let fingerprint = request_fingerprint(&Method::POST, "/orders", body.to_string().as_bytes());
    let now = chrono::Utc::now();
    let claim = store
        .claim_idempotency_key(
            &rnd_domain::UserId::parse(CUSTOMER.0).unwrap(),
            "slow",
            &fingerprint,
            now,
            now + chrono::Duration::hours(24),
        )
        .await
        .expect("claim");
    assert_eq!(claim, KeyClaim::Claimed);
    // WHEN the app retries it
    let retry = post_keyed(&app, "/orders", CUSTOMER, "slow", Some(body)).await;
    // THEN it is told to retry shortly, and nothing is placed
    assert_eq!(retry.status, StatusCode::CONFLICT, "{retry:?}");
    assert_eq!(retry.problem_code(), "request_in_progress");
    assert_eq!(retry.headers[header::RETRY_AFTER], "1");
    assert_eq!(orders_of_the_customer(&app).await, 0);
}

pub async fn a_key_that_is_not_visible_ascii_is_refused(store: Arc<dyn Store>) {
    let app = spawn_app(store);
    app.seed_profiles().await;
    for key in [
        String::new(),
        "has space".into(),
        "é".into(),
        "k".repeat(256),
    ] {
        let response = place_keyed(&app, &key).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{key:?}");
        assert_eq!(response.field(), Some("Idempotency-Key"));
    }
    assert_eq!(orders_of_the_customer(&app).await, 0);
}
