//! `spawn_app()`: a fresh Router over a fresh store per test, the stores to run on, tokens,
//! requests and seeds.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, NaiveDate, Utc};
use rnd_domain::OrderView;
use rnd_domain::device::{Device, DeviceId, DeviceRegistration, Registered};
use rnd_domain::identity::{DEV_JWT_SECRET, JwtVerifier, TokenClaims, VerifierConfig, issue_hs256};
use rnd_domain::ids::{OrderId, UserId};
use rnd_domain::limits::{Allowance, Limit};
use rnd_domain::live::{LocationOutcome, LocationWrite};
use rnd_domain::ports::{
    DeviceStore, IdempotencyStore, KeptAnswer, KeyClaim, OrderPage, OrderQuery, OrderStore,
    PresenceStore, ProfileStore, RateLimitStore, Store, StoreError,
};
use rnd_domain::presence::{ConnectionMinute, Presence};
use rnd_domain::profile::Profile;
use rnd_http_api::{AppState, Clock};
use rnd_store_conformance::fixtures::{chef_profile, customer_profile, driver_profile};
use serde_json::Value;
use tower::ServiceExt;

// A fresh embedded store, and `on_both_stores!` (`$name::sqlite`, `$name::dynamodb`).
pub use rnd_test_support::{on_both_stores, sqlite};

/// A clock stuck at one instant.
#[derive(Debug)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The API under test and the store behind it (seeds and reads go straight to it).
pub struct TestApp {
    pub router: Router,
    pub store: Arc<dyn Store>,
}

/// The dev-secret verifier, as the local stack and the fixtures use.
pub fn verifier() -> Arc<JwtVerifier> {
    Arc::new(JwtVerifier::new(VerifierConfig::hs256(DEV_JWT_SECRET)).expect("dev secret is valid"))
}

/// The Router over `store`, on the system clock.
pub fn spawn_app(store: Arc<dyn Store>) -> TestApp {
    TestApp {
        router: rnd_http_api::router(AppState::new(Arc::<dyn Store>::clone(&store), verifier())),
        store,
    }
}

/// The Router over `store`, on a clock stuck at `now`.
pub fn spawn_app_at(store: Arc<dyn Store>, now: DateTime<Utc>) -> TestApp {
    let state = AppState::new(Arc::<dyn Store>::clone(&store), verifier())
        .with_clock(Arc::new(FixedClock(now)));
    TestApp {
        router: rnd_http_api::router(state),
        store,
    }
}

/// The Router over `meddling` (what the API uses of a store: orders and profiles); seeds and
/// reads go straight to its inner store.
pub fn spawn_meddling(meddling: Meddling) -> TestApp {
    let store = Arc::clone(&meddling.inner);
    TestApp {
        router: rnd_http_api::router(AppState::new(Arc::new(meddling), verifier())),
        store,
    }
}

/// A token for `user` as `role`, signed with the dev secret, valid for an hour.
pub fn token(user: &str, role: &str) -> String {
    token_expiring(user, role, Utc::now().timestamp() + 3600)
}

/// A token that expired an hour ago (beyond any leeway).
pub fn expired_token(user: &str, role: &str) -> String {
    token_expiring(user, role, Utc::now().timestamp() - 3600)
}

fn token_expiring(user: &str, role: &str, exp: i64) -> String {
    let claims = TokenClaims {
        sub: user.into(),
        role: role.into(),
        exp,
        nbf: None,
        iat: Some(Utc::now().timestamp() - 60),
        name: None,
        iss: None,
        aud: None,
    };
    issue_hs256(&claims, DEV_JWT_SECRET.as_bytes()).expect("sign")
}

/// Who calls: a user id and a role.
#[derive(Debug, Clone, Copy)]
pub struct As(pub &'static str, pub &'static str);

pub const CUSTOMER: As = As("customer-1", "customer");
pub const OTHER_CUSTOMER: As = As("customer-2", "customer");
pub const CHEF: As = As("chef-1", "chef");
pub const OTHER_CHEF: As = As("chef-2", "chef");
pub const DRIVER: As = As("driver-1", "driver");
pub const OTHER_DRIVER: As = As("driver-2", "driver");
pub const ADMIN: As = As("admin-1", "admin");

/// A response, its body parsed as JSON (`Null` when empty).
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestResponse {
    /// The problem's `code`, asserting the body is a problem with this status.
    pub fn problem_code(&self) -> &str {
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{self:?}"
        );
        assert_eq!(self.body["status"], self.status.as_u16(), "{self:?}");
        for member in ["type", "title", "detail", "code"] {
            assert!(self.body[member].is_string(), "{member} in {self:?}");
        }
        self.body["code"].as_str().expect("code")
    }

    /// The problem's `field`.
    pub fn field(&self) -> Option<&str> {
        self.body["field"].as_str()
    }
}

/// Sends any request to the Router.
pub async fn send(router: &Router, request: Request<Body>) -> TestResponse {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    TestResponse {
        status,
        headers,
        body,
    }
}

impl TestApp {
    /// Sends `method path` as `who` with an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        who: As,
        body: Option<Value>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(path).header(
            header::AUTHORIZATION,
            format!("Bearer {}", token(who.0, who.1)),
        );
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        send(&self.router, request.body(body).expect("request")).await
    }

    pub async fn get(&self, path: &str, who: As) -> TestResponse {
        self.call(Method::GET, path, who, None).await
    }

    pub async fn post(&self, path: &str, who: As, body: Option<Value>) -> TestResponse {
        self.call(Method::POST, path, who, body).await
    }

    pub async fn put(&self, path: &str, who: As, body: Value) -> TestResponse {
        self.call(Method::PUT, path, who, Some(body)).await
    }

    /// Saves the fixture profiles of customer-1, chef-1 and driver-1 straight into the store.
    pub async fn seed_profiles(&self) {
        let now = Utc::now();
        for profile in [
            customer_profile(now),
            chef_profile(now),
            driver_profile(now),
        ] {
            self.store
                .put_profile(&profile)
                .await
                .expect("seed profile");
        }
    }

    /// Places an order from customer-1 with chef-1 through the API; returns its id.
    pub async fn place_order(&self) -> String {
        let response = self.post("/orders", CUSTOMER, Some(new_order_body())).await;
        assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
        response.body["orderId"]
            .as_str()
            .expect("orderId")
            .to_owned()
    }

    /// Moves order `id` along the happy path through the API until it is in `status`
    /// (assigning driver-1 on the way).
    pub async fn advance(&self, id: &str, status: &str) {
        let steps: [(&str, &str, As, Option<Value>); 7] = [
            ("payment_confirmed", "confirm-payment", ADMIN, None),
            ("accepted", "accept", CHEF, None),
            ("ready_for_pickup", "ready", CHEF, None),
            (
                "assigned_to_driver",
                "assign",
                ADMIN,
                Some(serde_json::json!({"driverId": "driver-1"})),
            ),
            ("picked_up", "pickup", DRIVER, None),
            ("in_transit", "in-transit", DRIVER, None),
            ("delivered", "deliver", DRIVER, None),
        ];
        let current = self
            .get(&format!("/orders/{id}/tracking"), ADMIN)
            .await
            .body["status"]
            .as_str()
            .expect("status")
            .to_owned();
        if current == status {
            return;
        }
        let start = steps
            .iter()
            .position(|(s, ..)| *s == current)
            .map_or(0, |i| i + 1);
        for (reached, path, who, body) in &steps[start..] {
            let response = self
                .post(&format!("/orders/{id}/{path}"), *who, body.clone())
                .await;
            assert_eq!(response.status, StatusCode::OK, "{path}: {response:?}");
            if *reached == status {
                return;
            }
        }
        panic!("{status} is not on the happy path");
    }

    /// The stored view of order `id`.
    pub async fn stored(&self, id: &str) -> OrderView {
        self.store
            .get_order(&OrderId::parse(id).expect("id"))
            .await
            .expect("get")
            .expect("present")
    }
}

/// A valid `POST /orders` body for chef-1.
pub fn new_order_body() -> Value {
    serde_json::json!({
        "chefId": "chef-1",
        "deliveryAddress": "1 Congress Ave, Austin, TX",
        "deliveryLatitude": 30.2747,
        "deliveryLongitude": -97.7404,
        "items": [{"name": "Tamales", "quantity": 6}],
        "notes": "Ring twice"
    })
}

/// Orders and profiles (all the API uses of a store) that misbehave on purpose around an inner
/// store: it can accept a driver location for the order just before the first transition commit
/// (so that commit loses its condition and the API must re-read), or fail every order read with
/// an internal-looking error.
pub struct Meddling {
    pub inner: Arc<dyn Store>,
    pub location_before_first_commit: std::sync::Mutex<Option<LocationWrite>>,
    pub fail_reads: bool,
}

/// The internal detail a failing read carries; it must never reach a client.
pub const INTERNAL_DETAIL: &str = "socket to 10.0.0.7:8000 reset";

#[derive(Debug, thiserror::Error)]
#[error("{INTERNAL_DETAIL}")]
struct InternalFailure;

#[async_trait]
impl OrderStore for Meddling {
    async fn create_order(&self, view: &OrderView) -> Result<(), StoreError> {
        self.inner.create_order(view).await
    }
    async fn get_order(&self, id: &OrderId) -> Result<Option<OrderView>, StoreError> {
        if self.fail_reads {
            return Err(StoreError::backend(InternalFailure));
        }
        self.inner.get_order(id).await
    }
    async fn commit_transition(
        &self,
        previous: &OrderView,
        next: &OrderView,
    ) -> Result<(), StoreError> {
        let write = self
            .location_before_first_commit
            .lock()
            .expect("lock")
            .take();
        if let Some(write) = write {
            let outcome = self.inner.record_location(&write).await?;
            assert!(
                matches!(outcome, LocationOutcome::Accepted { .. }),
                "{outcome:?}"
            );
        }
        self.inner.commit_transition(previous, next).await
    }
    async fn next_order_number(&self, day: NaiveDate) -> Result<u32, StoreError> {
        self.inner.next_order_number(day).await
    }
    async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, StoreError> {
        self.inner.list_orders(query).await
    }
}

#[async_trait]
impl ProfileStore for Meddling {
    async fn get_profile(&self, user: &UserId) -> Result<Option<Profile>, StoreError> {
        self.inner.get_profile(user).await
    }
    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        self.inner.put_profile(profile).await
    }
}

#[async_trait]
impl PresenceStore for Meddling {
    async fn presence(&self, user: &UserId, now: DateTime<Utc>) -> Result<Presence, StoreError> {
        self.inner.presence(user, now).await
    }
    async fn connection_minutes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ConnectionMinute>, StoreError> {
        self.inner.connection_minutes(from, to).await
    }
}

#[async_trait]
impl RateLimitStore for Meddling {
    async fn take(
        &self,
        limit: Limit,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Allowance, StoreError> {
        self.inner.take(limit, subject, now).await
    }
}

#[async_trait]
impl IdempotencyStore for Meddling {
    async fn claim_idempotency_key(
        &self,
        user: &UserId,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError> {
        self.inner
            .claim_idempotency_key(user, key, fingerprint, now, expires_at)
            .await
    }
    async fn keep_idempotent_answer(
        &self,
        user: &UserId,
        key: &str,
        answer: &KeptAnswer,
    ) -> Result<(), StoreError> {
        self.inner.keep_idempotent_answer(user, key, answer).await
    }
    async fn release_idempotency_key(&self, user: &UserId, key: &str) -> Result<(), StoreError> {
        self.inner.release_idempotency_key(user, key).await
    }
}

#[async_trait]
impl DeviceStore for Meddling {
    async fn register_device(
        &self,
        registration: &DeviceRegistration,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError> {
        self.inner.register_device(registration, now).await
    }
    async fn devices_of(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Device>, StoreError> {
        self.inner.devices_of(user, now).await
    }
    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> Result<bool, StoreError> {
        self.inner.remove_device(user, device).await
    }
}
