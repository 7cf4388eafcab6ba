//! `http_bodies`: the HTTP API's request bodies, through its Router.
//!
//! Each input is one request to the real Router ([`rnd_http_api::router`]), driven in-process:
//! the body-size limit, authentication, routing, the JSON body extractor (content type, field
//! errors), each handler's validation of what it read, and the mapping of every refusal to a
//! problem response all run as in the Lambda. The first byte picks the request
//! (`byte % 6`), the second the caller's role (`byte % 4`: customer, chef, driver, admin) and
//! the `Content-Type` (`byte / 4 % 4`: `application/json`, with `; charset=utf-8`,
//! `application/merge-patch+json`, `text/plain`); the rest is the body — or, for the listing,
//! the query string:
//!
//! | byte 0 | request |
//! |---|---|
//! | 0 | `POST /orders` |
//! | 1 | `POST /orders/order-ready/assign` (an order ready for pickup) |
//! | 2 | `POST /orders/order-pending/cancel` (a pending order) |
//! | 3 | `PUT /profiles/me` |
//! | 4 | `POST /devices` |
//! | 5 | `GET /orders?{rest}` |
//!
//! The store is [`SeededStore`]: the conformance fixtures' profiles and two orders, in memory,
//! read-only — what a request writes is accepted and forgotten, so every input meets the same
//! state (a finding reproduces from its input alone) and nothing grows over millions of runs.
//!
//! Asserted: nothing is answered 500 (the store never fails, so every refusal is the client's
//! and must say so); every refusal is an `application/problem+json` whose `status` is the
//! response's and that has a `code`; every success is JSON.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rnd_domain::OrderView;
use rnd_domain::device::{Device, DeviceId, DeviceRegistration, Registered};
use rnd_domain::identity::{DEV_JWT_SECRET, JwtVerifier, TokenClaims, VerifierConfig, issue_hs256};
use rnd_domain::ids::{OrderId, UserId};
use rnd_domain::limits::{Allowance, Limit};
use rnd_domain::order::OrderStatus;
use rnd_domain::ports::{
    DeviceStore, IdempotencyStore, KeptAnswer, KeyClaim, OrderFilter, OrderPage, OrderQuery,
    OrderStore, PresenceStore, ProfileStore, RateLimitStore, StoreError,
};
use rnd_domain::presence::{ConnectionMinute, Presence};
use rnd_domain::profile::Profile;
use rnd_http_api::{AppState, Clock, PROBLEM_JSON};
use rnd_store_conformance::fixtures;
use tower::ServiceExt;

/// The pending order (cancellable by its customer, chef and admins).
pub const PENDING_ORDER: &str = "order-pending";
/// The order ready for pickup (an admin assigns it a driver).
pub const READY_ORDER: &str = "order-ready";

/// The requests an input can make: method and path (the listing's query comes from the input).
const REQUESTS: [(&str, &str); 6] = [
    ("POST", "/orders"),
    ("POST", "/orders/order-ready/assign"),
    ("POST", "/orders/order-pending/cancel"),
    ("PUT", "/profiles/me"),
    ("POST", "/devices"),
    ("GET", "/orders"),
];

/// The callers: user id and role, as the fixtures name them.
const CALLERS: [(&str, &str); 4] = [
    ("customer-1", "customer"),
    ("chef-1", "chef"),
    ("driver-1", "driver"),
    ("admin-1", "admin"),
];

/// The `Content-Type`s an input can send.
const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "application/json; charset=utf-8",
    "application/merge-patch+json",
    "text/plain",
];

/// The time the requests are handled at (the fixtures' day).
fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_769_817_660, 0)
        .single()
        .expect("a valid instant")
}

/// Runs one input; panics on a finding.
pub fn run(data: &[u8]) {
    answer(data);
}

/// What the API answered.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The `Content-Type`.
    pub content_type: Option<String>,
    /// The body, parsed (`Null` when empty).
    pub body: serde_json::Value,
}

/// The API's checked answer to one input; `None` when the input makes no request.
pub fn answer(data: &[u8]) -> Option<Answer> {
    let [which, who, rest @ ..] = data else {
        return None;
    };
    let (method, path) = REQUESTS[usize::from(*which) % REQUESTS.len()];
    let (user, role) = CALLERS[usize::from(*who) % CALLERS.len()];
    let content_type = CONTENT_TYPES[usize::from(*who / 4) % CONTENT_TYPES.len()];
    let builder = Request::builder().header(
        header::AUTHORIZATION,
        format!("Bearer {}", token(user, role)),
    );
    let request = if method == "GET" {
        builder
            .method(Method::GET)
            .uri(format!("{path}?{}", String::from_utf8_lossy(rest)))
            .body(Body::empty())
    } else {
        builder
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, rest.len())
            .body(Body::from(rest.to_vec()))
    };
    // Not a URI: no request reaches the API with it.
    let request = request.ok()?;
    let (status, content_type, bytes) = crate::runtime().block_on(async {
        let response = router()
            .clone()
            .oneshot(request)
            .await
            .expect("the Router is infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("an in-memory body reads");
        (status, content_type, body)
    });
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{method} {path}: a refusal of client input is not an internal error: {}",
        String::from_utf8_lossy(&bytes)
    );
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("an answer is JSON")
    };
    if status.is_client_error() {
        assert_eq!(content_type.as_deref(), Some(PROBLEM_JSON), "{status}");
        assert_eq!(body["status"], status.as_u16(), "{body}");
        assert!(body["code"].is_string(), "{body}");
    } else {
        assert!(status.is_success(), "{status}");
    }
    Some(Answer {
        status,
        content_type,
        body,
    })
}

/// A token of `user` as `role`, signed with the dev secret, valid until 2100.
fn token(user: &str, role: &str) -> &'static str {
    static TOKENS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    let tokens = TOKENS.get_or_init(|| {
        CALLERS
            .iter()
            .map(|(user, role)| {
                let claims = TokenClaims {
                    sub: (*user).into(),
                    role: (*role).into(),
                    exp: 4_102_444_800,
                    nbf: None,
                    iat: Some(1_769_817_600),
                    name: None,
                    iss: None,
                    aud: None,
                };
                let token = issue_hs256(&claims, DEV_JWT_SECRET.as_bytes()).expect("signs");
                (*user, token)
            })
            .collect()
    });
    debug_assert!(CALLERS.contains(&(user, role)));
    &tokens[user]
}

/// A clock stuck at [`now`].
#[derive(Debug)]
struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let verifier =
            JwtVerifier::new(VerifierConfig::hs256(DEV_JWT_SECRET)).expect("the dev secret");
        let state = AppState::new(Arc::new(SeededStore::new()), Arc::new(verifier))
            .with_clock(Arc::new(FixedClock));
        rnd_http_api::router(state)
    })
}

/// What the HTTP API uses of a store, in memory and read-only: the conformance fixtures'
/// customer, chef and driver profiles (the admin has none), [`PENDING_ORDER`] and
/// [`READY_ORDER`] (the fixtures' customer's, to the fixtures' chef). Writes succeed and are
/// forgotten; a listing is one page, so it issued no cursor and refuses any.
#[derive(Debug)]
pub struct SeededStore {
    orders: HashMap<OrderId, OrderView>,
    profiles: HashMap<UserId, Profile>,
}

impl SeededStore {
    /// The seeded state.
    pub fn new() -> Self {
        let at = now();
        let pending = fixtures::placed_order(PENDING_ORDER, &fixtures::customer(), at);
        let mut ready = fixtures::placed_order(READY_ORDER, &fixtures::customer(), at);
        while ready.order.status != OrderStatus::ReadyForPickup {
            let (actor, action) = fixtures::next_step(ready.order.status).expect("on the way");
            ready = ready.apply(&actor, action, at).expect("a happy-path step");
        }
        let orders = [pending, ready]
            .into_iter()
            .map(|view| (view.order.order_id.clone(), view))
            .collect();
        let profiles = [
            fixtures::customer_profile(at),
            fixtures::chef_profile(at),
            fixtures::driver_profile(at),
        ]
        .into_iter()
        .map(|profile| (profile.user_id.clone(), profile))
        .collect();
        Self { orders, profiles }
    }
}

impl Default for SeededStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl OrderStore for SeededStore {
    async fn create_order(&self, _view: &OrderView) -> Result<(), StoreError> {
        Ok(())
    }

    async fn get_order(&self, id: &OrderId) -> Result<Option<OrderView>, StoreError> {
        Ok(self.orders.get(id).cloned())
    }

    async fn commit_transition(
        &self,
        _previous: &OrderView,
        _next: &OrderView,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn next_order_number(&self, _day: NaiveDate) -> Result<u32, StoreError> {
        Ok(1)
    }

    async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, StoreError> {
        if query.cursor.is_some() {
            return Err(StoreError::InvalidCursor);
        }
        let mine = |view: &&OrderView| match &query.filter {
            OrderFilter::Customer(user) => view.order.customer_id == *user,
            OrderFilter::Chef(user) => view.order.chef.chef_id == *user,
            OrderFilter::Driver(user) => view.order.driver_id() == Some(user),
            OrderFilter::All => true,
        };
        Ok(OrderPage {
            orders: self
                .orders
                .values()
                .filter(mine)
                .take(query.limit as usize)
                .map(|view| view.order.clone())
                .collect(),
            next_cursor: None,
        })
    }
}

#[async_trait]
impl ProfileStore for SeededStore {
    async fn get_profile(&self, user: &UserId) -> Result<Option<Profile>, StoreError> {
        Ok(self.profiles.get(user).cloned())
    }

    async fn put_profile(&self, _profile: &Profile) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Nobody has connected: everyone is offline, never seen, and no minute was counted.
#[async_trait]
impl PresenceStore for SeededStore {
    async fn presence(&self, _user: &UserId, _now: DateTime<Utc>) -> Result<Presence, StoreError> {
        Ok(Presence::default())
    }

    async fn connection_minutes(
        &self,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
    ) -> Result<Vec<ConnectionMinute>, StoreError> {
        Ok(Vec::new())
    }
}

/// Read-only: every use is granted, and nothing is counted.
#[async_trait]
impl RateLimitStore for SeededStore {
    async fn take(
        &self,
        _limit: Limit,
        _subject: &str,
        _now: DateTime<Utc>,
    ) -> Result<Allowance, StoreError> {
        Ok(Allowance::Granted)
    }
}

/// Read-only: every key is free, and nothing is kept.
#[async_trait]
impl IdempotencyStore for SeededStore {
    async fn claim_idempotency_key(
        &self,
        _user: &UserId,
        _key: &str,
        _fingerprint: &str,
        _now: DateTime<Utc>,
        _expires_at: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError> {
        Ok(KeyClaim::Claimed)
    }

    async fn keep_idempotent_answer(
        &self,
        _user: &UserId,
        _key: &str,
        _answer: &KeptAnswer,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release_idempotency_key(&self, _user: &UserId, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl DeviceStore for SeededStore {
    async fn register_device(
        &self,
        registration: &DeviceRegistration,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError> {
        Ok(Registered {
            device: Device {
                device_id: registration.new_id.clone(),
                user_id: registration.user_id.clone(),
                token: registration.token.clone(),
                platform: registration.platform,
                app_version: registration.app_version.clone(),
                locale: registration.locale.clone(),
                registered_at: now,
                last_seen_at: now,
            },
            created: true,
            dropped: Vec::new(),
        })
    }

    async fn devices_of(
        &self,
        _user: &UserId,
        _now: DateTime<Utc>,
    ) -> Result<Vec<Device>, StoreError> {
        Ok(Vec::new())
    }

    async fn remove_device(&self, _user: &UserId, _device: &DeviceId) -> Result<bool, StoreError> {
        Ok(false)
    }
}
