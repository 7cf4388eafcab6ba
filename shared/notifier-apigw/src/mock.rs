//! A mock of the API Gateway Management API (feature `test-support`): a real HTTP server on a
//! loopback port, so tests drive the real SDK client and [`ApiGatewayNotifier`] through the
//! real protocol instead of stubbing the port.
//!
//! It serves `POST /{stage}/@connections/{connectionId}` (PostToConnection; the body is the
//! message), `GET` (GetConnection) and `DELETE` (DeleteConnection) on the same path. The SDK
//! percent-encodes the connection id in the path (`=` → `%3D`, `/` → `%2F`); the server
//! decodes it. Requests without a SigV4 `Authorization` header are refused with 403, as AWS
//! does. Every connection is open and accepts posts until told otherwise with
//! [`MockManagementApi::answer`] or [`MockManagementApi::answer_first`]; error answers carry
//! the error type header and body the real service sends (`GoneException`,
//! `LimitExceededException`, `PayloadTooLargeException`, `ForbiddenException`; 5xx without a
//! type). [`MockManagementApi::notifier`] gives the real adapter pointed at it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_apigatewaymanagement::config::{Credentials, SharedCredentialsProvider};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::ApiGatewayNotifier;

/// The stage the mock serves.
pub const STAGE: &str = "test";

/// A message the mock accepted (answered 200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// The connection it was posted to (decoded from the path).
    pub connection_id: String,
    /// The body, as text.
    pub body: String,
}

/// One `PostToConnection` request, accepted or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The connection it was posted to.
    pub connection_id: String,
    /// The HTTP status the mock answered.
    pub status: u16,
}

/// An answer to give a connection instead of accepting: always, or for the next `remaining`
/// requests.
#[derive(Debug, Clone, Copy)]
struct Rule {
    status: u16,
    remaining: Option<usize>,
}

#[derive(Debug, Default)]
struct Recorded {
    posts: Vec<Post>,
    attempts: Vec<Attempt>,
    deleted: Vec<String>,
    rules: HashMap<String, Rule>,
    delays: HashMap<String, Duration>,
    in_flight: usize,
    max_in_flight: usize,
}

impl Recorded {
    /// The status to answer for `connection` now (200 when no rule applies), using up one
    /// request of a counted rule.
    fn take_answer(&mut self, connection: &str) -> u16 {
        let Some(rule) = self.rules.get_mut(connection) else {
            return 200;
        };
        let status = rule.status;
        if let Some(remaining) = &mut rule.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                self.rules.remove(connection);
            }
        }
        status
    }
}

type Shared = Arc<Mutex<Recorded>>;

fn lock(state: &Shared) -> MutexGuard<'_, Recorded> {
    // A panicking test thread cannot leave the record half-written: every update is one push.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An SDK configuration for tests: static credentials `local`/`local`, region `us-east-1`.
pub fn sdk_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "local", "local", None, None, "static",
        )))
        .build()
}

/// A running mock of the API Gateway Management API. Stops when dropped.
#[derive(Debug)]
pub struct MockManagementApi {
    addr: SocketAddr,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockManagementApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockManagementApi {
    /// Starts the server on a free loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound (a test environment problem).
    pub async fn start() -> Self {
        let state = Shared::default();
        let app = Router::new()
            .route(
                "/{stage}/@connections/{connection_id}",
                post(post_to_connection)
                    .get(get_or_delete_connection)
                    .delete(get_or_delete_connection),
            )
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the mock Management API");
        let addr = listener.local_addr().expect("the bound address");
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "mock Management API stopped");
            }
        });
        Self {
            addr,
            state,
            server,
        }
    }

    /// The endpoint to give the client: `http://127.0.0.1:{port}/test`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/{STAGE}", self.addr)
    }

    /// The real [`ApiGatewayNotifier`] (SDK client included) pointed at this mock, with test
    /// credentials, region `us-east-1` and `attempt_timeout` per post.
    pub fn notifier(&self, attempt_timeout: Duration) -> ApiGatewayNotifier {
        ApiGatewayNotifier::from_sdk_config(&sdk_config(), &self.endpoint(), attempt_timeout)
    }

    /// Answers every request for `connection` with `status` from now on (410, 429, 500, …).
    pub fn answer(&self, connection: &str, status: u16) {
        lock(&self.state).rules.insert(
            connection.to_owned(),
            Rule {
                status,
                remaining: None,
            },
        );
    }

    /// Answers the next `times` requests for `connection` with `status`, then accepts again.
    pub fn answer_first(&self, connection: &str, status: u16, times: usize) {
        let mut state = lock(&self.state);
        if times == 0 {
            state.rules.remove(connection);
        } else {
            state.rules.insert(
                connection.to_owned(),
                Rule {
                    status,
                    remaining: Some(times),
                },
            );
        }
    }

    /// Accepts every request for `connection` again (drops its rule).
    pub fn accept(&self, connection: &str) {
        lock(&self.state).rules.remove(connection);
    }

    /// Waits `delay` before answering any request for `connection` (to provoke timeouts).
    pub fn delay(&self, connection: &str, delay: Duration) {
        lock(&self.state)
            .delays
            .insert(connection.to_owned(), delay);
    }

    /// The accepted posts, in the order they arrived.
    pub fn posts(&self) -> Vec<Post> {
        lock(&self.state).posts.clone()
    }

    /// The bodies accepted for `connection`, in the order they arrived.
    pub fn bodies_to(&self, connection: &str) -> Vec<String> {
        lock(&self.state)
            .posts
            .iter()
            .filter(|p| p.connection_id == connection)
            .map(|p| p.body.clone())
            .collect()
    }

    /// Every post request, accepted or not, in the order they arrived.
    pub fn attempts(&self) -> Vec<Attempt> {
        lock(&self.state).attempts.clone()
    }

    /// How many post requests `connection` received, accepted or not.
    pub fn attempts_to(&self, connection: &str) -> usize {
        lock(&self.state)
            .attempts
            .iter()
            .filter(|a| a.connection_id == connection)
            .count()
    }

    /// The most post requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        lock(&self.state).max_in_flight
    }

    /// The connections deleted with `DeleteConnection`.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.state).deleted.clone()
    }
}

/// True when the request carries a SigV4 signature (the mock does not verify it).
fn is_signed(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 "))
}

/// The answer the real service gives with `status`: the `x-amzn-ErrorType` header and the
/// `{"message": …}` body of its errors.
fn answer(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::OK {
        return StatusCode::OK.into_response();
    }
    let (error_type, message) = match status.as_u16() {
        403 => (Some("ForbiddenException"), "Forbidden"),
        410 => (Some("GoneException"), "Gone"),
        413 => (Some("PayloadTooLargeException"), "Message too long"),
        429 => (Some("LimitExceededException"), "Too Many Requests"),
        _ => (None, "Internal server error"),
    };
    let body = format!("{{\"message\":\"{message}\"}}");
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(error_type) = error_type
        && let Ok(value) = error_type.parse()
    {
        response.headers_mut().insert("x-amzn-ErrorType", value);
    }
    response
}

/// Sleeps as [`MockManagementApi::delay`] asked, then returns the status to answer.
async fn decide(state: &Shared, connection: &str) -> u16 {
    let delay = lock(state).delays.get(connection).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    lock(state).take_answer(connection)
}

async fn post_to_connection(
    State(state): State<Shared>,
    Path((_stage, connection_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_signed(&headers) {
        return answer(403);
    }
    {
        let mut recorded = lock(&state);
        recorded.in_flight += 1;
        recorded.max_in_flight = recorded.max_in_flight.max(recorded.in_flight);
    }
    let status = decide(&state, &connection_id).await;
    let mut recorded = lock(&state);
    recorded.in_flight -= 1;
    recorded.attempts.push(Attempt {
        connection_id: connection_id.clone(),
        status,
    });
    if status == 200 {
        recorded.posts.push(Post {
            connection_id,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    answer(status)
}

/// GetConnection and DeleteConnection: 403 when the request is unsigned, else the status a
/// rule asks for (after any delay), else the connection's description or its deletion.
async fn get_or_delete_connection(
    method: Method,
    State(state): State<Shared>,
    Path((_stage, connection_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !is_signed(&headers) {
        return answer(403);
    }
    match decide(&state, &connection_id).await {
        200 => {}
        status => return answer(status),
    }
    if method == Method::DELETE {
        lock(&state).deleted.push(connection_id);
        return StatusCode::NO_CONTENT.into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"connectedAt":"2026-01-01T00:00:00Z","identity":{"sourceIp":"203.0.113.7","userAgent":"mock"},"lastActiveAt":"2026-01-01T00:00:00Z"}"#,
    )
        .into_response()
}
