//! A Lambda Runtime API emulator: the HTTP API a function's runtime client (`lambda_runtime`)
//! polls for events and answers on, served on a loopback port.
//!
//! It serves, under `/2018-06-01/runtime`:
//! - `GET invocation/next`: long-polls until an event is queued with [`RuntimeApi::invoke`],
//!   then hands it out with the headers Lambda sends (`Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms`, `Lambda-Runtime-Invoked-Function-Arn`,
//!   `Lambda-Runtime-Trace-Id`);
//! - `POST invocation/{id}/response`: the function's result (`202`);
//! - `POST invocation/{id}/error`: the function's error report (`202`), recorded as a failed
//!   invocation;
//! - `POST init/error`: a failed cold start (`202`), recorded.
//!
//! A response or error for a request id that was never handed out is refused with `400`
//! (`InvalidRequestID`), as Lambda does. It records when the first `invocation/next` arrived
//! (the end of the function's init) and, per invocation, when the event was handed out and when
//! its answer arrived.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The path prefix of the Runtime API.
pub const PREFIX: &str = "/2018-06-01/runtime";
/// The header naming the invocation.
pub const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
/// The header with the invocation's deadline, ms since the epoch.
pub const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
/// The header with the invoked function's ARN.
pub const FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
/// The header with the X-Ray trace id.
pub const TRACE_ID: &str = "lambda-runtime-trace-id";
/// The header a runtime may send with an error report, naming its type.
pub const FUNCTION_ERROR_TYPE: &str = "lambda-runtime-function-error-type";

/// The emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No loopback port could be bound.
    #[error("could not bind a loopback port for the Runtime API")]
    Bind(#[source] std::io::Error),
}

/// An error the function reported (`invocation/{id}/error` or `init/error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// The `Lambda-Runtime-Function-Error-Type` header, else the body's `errorType`.
    pub error_type: Option<String>,
    /// The body as sent (JSON with `errorMessage` and `errorType`, normally).
    pub body: String,
}

impl ErrorReport {
    fn new(headers: &HeaderMap, body: &Bytes) -> Self {
        let body = String::from_utf8_lossy(body).into_owned();
        let error_type = headers
            .get(FUNCTION_ERROR_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                serde_json::from_str::<serde_json::Value>(&body)
                    .ok()?
                    .get("errorType")?
                    .as_str()
                    .map(str::to_owned)
            });
        Self { error_type, body }
    }
}

impl std::fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error_type {
            Some(kind) => write!(f, "{kind}: {}", self.body),
            None => f.write_str(&self.body),
        }
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `invocation/{id}/response`: the body.
    Response(Bytes),
    /// `invocation/{id}/error`.
    Error(ErrorReport),
}

/// One finished invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Its request id.
    pub request_id: String,
    /// When `invocation/next` handed the event out.
    pub handed_out: Instant,
    /// When the response or error arrived.
    pub answered: Instant,
    /// The answer.
    pub outcome: Outcome,
}

impl Invocation {
    /// From handing the event out to the answer: the handler's time as Lambda bills it, plus
    /// two loopback HTTP exchanges.
    pub fn duration(&self) -> Duration {
        self.answered.saturating_duration_since(self.handed_out)
    }
}

/// An event waiting for `invocation/next`.
#[derive(Debug)]
struct Queued {
    request_id: String,
    payload: Bytes,
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Queued>,
    /// When the first `invocation/next` arrived.
    first_next: Option<Instant>,
    /// Handed out, not answered: request id → when.
    in_flight: HashMap<String, Instant>,
    /// Answered, not yet collected by [`RuntimeApi::invoke`].
    finished: HashMap<String, Invocation>,
    /// Every invocation error, in order.
    errors: Vec<ErrorReport>,
    init_error: Option<ErrorReport>,
}

#[derive(Debug)]
struct Shared {
    function_arn: String,
    deadline: Duration,
    inner: Mutex<Inner>,
    /// Woken on every change of `inner`.
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock guards plain data updated in single steps: a panic elsewhere cannot leave it
        // half-updated.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `update` and wakes every waiter.
    fn update<T>(&self, update: impl FnOnce(&mut Inner) -> T) -> T {
        let out = update(&mut self.lock());
        self.changed.notify_waiters();
        out
    }

    /// Waits until `check` finds what it looks for in the state.
    async fn wait_for<T>(&self, mut check: impl FnMut(&mut Inner) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a change between the check and the await is
            // not missed.
            notified.as_mut().enable();
            if let Some(found) = check(&mut self.lock()) {
                return found;
            }
            notified.await;
        }
    }
}

/// The running emulator. Stops when dropped.
#[derive(Debug)]
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Starts the emulator on a free loopback port, for the function `function_arn`, giving
    /// each invocation `deadline` (announced in `Lambda-Runtime-Deadline-Ms`).
    pub async fn start(
        function_arn: impl Into<String>,
        deadline: Duration,
    ) -> Result<Self, StartError> {
        let shared = Arc::new(Shared {
            function_arn: function_arn.into(),
            deadline,
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{request_id}}/response"),
                post(response),
            )
            .route(
                &format!("{PREFIX}/invocation/{{request_id}}/error"),
                post(invocation_error),
            )
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(StartError::Bind)?;
        let addr = listener.local_addr().map_err(StartError::Bind)?;
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the Runtime API emulator stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// The address to give the function as `AWS_LAMBDA_RUNTIME_API` (`127.0.0.1:port`).
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// Waits for the function's first `invocation/next` (its init is done) and returns when it
    /// arrived; fails with the report if the function posted `init/error` first.
    pub async fn ready(&self) -> Result<Instant, ErrorReport> {
        self.shared
            .wait_for(|inner| match (&inner.init_error, inner.first_next) {
                (Some(report), _) => Some(Err(report.clone())),
                (None, Some(at)) => Some(Ok(at)),
                (None, None) => None,
            })
            .await
    }

    /// Queues `payload` as an invocation and waits for its answer. The caller bounds the wait
    /// (the function may never answer).
    pub async fn invoke(&self, payload: impl Into<Bytes>) -> Invocation {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.shared.update(|inner| {
            inner.queue.push_back(Queued {
                request_id: request_id.clone(),
                payload: payload.into(),
            })
        });
        self.shared
            .wait_for(|inner| inner.finished.remove(&request_id))
            .await
    }

    /// The `init/error` report, if the function posted one.
    pub fn init_error(&self) -> Option<ErrorReport> {
        self.shared.lock().init_error.clone()
    }

    /// Every `invocation/{id}/error` report so far, in order.
    pub fn errors(&self) -> Vec<ErrorReport> {
        self.shared.lock().errors.clone()
    }
}

fn epoch_ms(after: Duration) -> u128 {
    (SystemTime::now() + after)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// An X-Ray trace header of the shape Lambda sends.
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &random[..24],
        &random[16..32]
    )
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    shared.update(|inner| {
        inner.first_next.get_or_insert(now);
    });
    let event = shared
        .wait_for(|inner| {
            let event = inner.queue.pop_front()?;
            inner
                .in_flight
                .insert(event.request_id.clone(), Instant::now());
            Some(event)
        })
        .await;
    let mut response = Response::new(Body::from(event.payload));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REQUEST_ID, header_value(&event.request_id));
    headers.insert(
        DEADLINE_MS,
        header_value(&epoch_ms(shared.deadline).to_string()),
    );
    headers.insert(FUNCTION_ARN, header_value(&shared.function_arn));
    headers.insert(TRACE_ID, header_value(&trace_id()));
    response
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

fn invalid_request_id() -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
    )
        .into_response()
}

/// Records the answer to `request_id`; false when it was not in flight.
fn finish(shared: &Shared, request_id: String, outcome: Outcome) -> bool {
    let answered = Instant::now();
    shared.update(|inner| {
        let Some(handed_out) = inner.in_flight.remove(&request_id) else {
            return false;
        };
        if let Outcome::Error(report) = &outcome {
            inner.errors.push(report.clone());
        }
        inner.finished.insert(
            request_id.clone(),
            Invocation {
                request_id,
                handed_out,
                answered,
                outcome,
            },
        );
        true
    })
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    if finish(&shared, request_id, Outcome::Response(body)) {
        accepted()
    } else {
        invalid_request_id()
    }
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let report = ErrorReport::new(&headers, &body);
    if finish(&shared, request_id, Outcome::Error(report)) {
        accepted()
    } else {
        invalid_request_id()
    }
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let report = ErrorReport::new(&headers, &body);
    shared.update(|inner| inner.init_error = Some(report));
    accepted()
}
