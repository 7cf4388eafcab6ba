//! The Lambda's adapter: API Gateway HTTP API (payload v2) events from `events/http/`, parsed by
//! `lambda_http` as the Lambda runtime does, sent to the `rnd-http-api` Router, and its answers
//! turned back into Lambda responses, as the runtime returns them to API Gateway. The Router's own behaviour is tested in `rnd-http-api`.
//!
//! The test database is required: `make test`, or
//! `scripts/moto.sh run -- cargo test -p http-api`.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use rnd_domain::identity::{DEV_JWT_SECRET, JwtVerifier, VerifierConfig};
use rnd_domain::order::OrderStatus;
use rnd_domain::ports::Store;
use rnd_http_api::{AppState, Problem};
use rnd_store_conformance::fixtures::{
    advance, chef_profile, customer, customer_profile, driver_profile, now, placed_order,
};
use rnd_test_support::{on_both_stores, sqlite};
use serde_json::Value;
use tower::ServiceExt;

const PROBLEM: &str = "application/problem+json";

/// The Router over `store`, verifying tokens with the dev secret (as the fixtures are signed).
fn router(store: Arc<dyn Store>) -> Router {
    let verifier =
        JwtVerifier::new(VerifierConfig::hs256(DEV_JWT_SECRET)).expect("dev secret is valid");
    rnd_http_api::router(AppState::new(store, Arc::new(verifier)))
}

/// The text of `events/http/{name}.json`.
fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../../events/http/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Router's answer to a fixture.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    /// The problem's `code`, asserting the body is a problem with this status.
    fn problem_code(&self) -> &str {
        assert_eq!(self.headers[header::CONTENT_TYPE], PROBLEM, "{self:?}");
        assert_eq!(self.body["status"], self.status.as_u16(), "{self:?}");
        for member in ["type", "title", "detail", "code"] {
            assert!(self.body[member].is_string(), "{member} in {self:?}");
        }
        self.body["code"].as_str().expect("code")
    }
}

/// Parses fixture `name` with lambda_http, as the Lambda runtime does, sends the request to the
/// Router, and turns its answer into the Lambda response the runtime returns to API Gateway.
async fn lambda_response(router: &Router, name: &str) -> lambda_http::Response<lambda_http::Body> {
    let request = lambda_http::request::from_str(&fixture(name))
        .unwrap_or_else(|e| panic!("{name} parses as a Lambda HTTP request: {e}"));
    let response = router.clone().oneshot(request).await.expect("infallible");
    lambda_http::IntoResponse::into_response(response).await
}

/// The Lambda's answer to fixture `name`, its body parsed as JSON (`Null` when empty).
async fn send_fixture(router: &Router, name: &str) -> Answer {
    let response = lambda_response(router, name).await;
    let body = match response.body() {
        lambda_http::Body::Empty => Value::Null,
        lambda_http::Body::Text(text) => serde_json::from_str(text).expect("JSON body"),
        lambda_http::Body::Binary(bytes) => serde_json::from_slice(bytes).expect("JSON body"),
        other => panic!("{name}: unexpected body {other:?}"),
    };
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body,
    }
}

async fn api_gateway_v2_fixtures_drive_the_router_through_lambda_http(store: Arc<dyn Store>) {
    // GIVEN profiles and order-1 (customer-1, chef-1) placed straight into the store
    let router = router(Arc::clone(&store));
    for profile in [
        customer_profile(now()),
        chef_profile(now()),
        driver_profile(now()),
    ] {
        store.put_profile(&profile).await.expect("seed profile");
    }
    let view = placed_order("order-1", &customer(), now());
    store.create_order(&view).await.unwrap();

    // WHEN the v2 fixtures are parsed by lambda_http and sent to the Router, in lifecycle order
    // (the admin confirming the payment straight in the store on the way)
    let tracking = send_fixture(&router, "get-tracking").await;
    let created = send_fixture(&router, "create-order").await;
    let listed = send_fixture(&router, "list-orders").await;
    let profile = send_fixture(&router, "get-profile").await;
    let chef_profile = send_fixture(&router, "put-profile-chef").await;
    let early_accept = send_fixture(&router, "accept-order").await;
    advance(&*store, view, OrderStatus::PaymentConfirmed).await;
    let accepted = send_fixture(&router, "accept-order").await;
    let early_assign = send_fixture(&router, "assign-driver").await;
    let cancelled = send_fixture(&router, "cancel-order").await;
    let no_token = send_fixture(&router, "no-token").await;
    let expired = send_fixture(&router, "expired-token").await;
    let form = send_fixture(&router, "create-order-wrong-content-type").await;
    let openapi = send_fixture(&router, "get-openapi").await;

    // THEN each answers as the API does to any client
    assert_eq!(tracking.status, StatusCode::OK, "{tracking:?}");
    assert_eq!(tracking.body["orderId"], "order-1");
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["orders"].as_array().unwrap().len(), 2);
    assert_eq!(profile.status, StatusCode::OK);
    assert_eq!(profile.body["name"], "Ada Customer");
    assert_eq!(chef_profile.status, StatusCode::OK, "{chef_profile:?}");
    assert_eq!(early_accept.status, StatusCode::CONFLICT);
    assert_eq!(accepted.status, StatusCode::OK);
    assert_eq!(accepted.body["status"], "accepted");
    assert_eq!(
        early_assign.status,
        StatusCode::CONFLICT,
        "{early_assign:?}"
    );
    assert_eq!(
        cancelled.status,
        StatusCode::CONFLICT,
        "a customer cannot cancel once accepted"
    );
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.problem_code(), "token_expired");
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(openapi.status, StatusCode::OK);
    assert!(openapi.body["openapi"].as_str().unwrap().starts_with("3.1"));
}

on_both_stores!(api_gateway_v2_fixtures_drive_the_router_through_lambda_http);

#[tokio::test]
async fn problem_responses_become_text_api_gateway_responses() {
    // GIVEN a request without a token, which the Router answers with 401
    let router = router(sqlite().await);
    // WHEN lambda_http turns that answer into the Lambda response body
    let response = lambda_response(&router, "no-token").await;
    // THEN the problem is sent as text (not base64), with its media type
    assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM);
    match response.body() {
        lambda_http::Body::Text(text) => {
            let problem: Problem = serde_json::from_str(text).unwrap();
            assert_eq!(problem.code, "unauthorized");
        }
        other => panic!("expected a text body, got {other:?}"),
    }
}
