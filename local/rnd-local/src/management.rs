//! The API Gateway Management API at `/realtime/@connections/{connectionId}`: `POST` sends the
//! body to the connection as a text frame, `GET` describes it, `DELETE` closes it (then
//! `$disconnect` runs). Unknown or closed connections answer 410 `GoneException`, as AWS does.
//!
//! Every `POST` is counted in [`crate::metrics`] by outcome (and, when delivered, by event).
//!
//! Requests signed with SigV4 by the real `aws-sdk-apigatewaymanagement` client are accepted
//! without checking the signature (any credentials do). The SDK percent-encodes the `=` of
//! connection ids; the path extractor decodes it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use async_trait::async_trait;
use rnd_domain::ids::ConnectionId;
use rnd_domain::ports::{Notifier, NotifyError};

use crate::AppState;
use crate::metrics::{Metrics, PostOutcome};
use crate::ws::{CLOSE_NORMAL, Connections, MAX_MESSAGE_BYTES, Outbound};

/// An error as the Management API answers it: the status, `x-amzn-ErrorType` and a JSON
/// `message`, which the SDK turns into its typed exceptions.
fn error(status: StatusCode, kind: &'static str, message: &'static str) -> Response {
    (
        status,
        [("x-amzn-ErrorType", kind)],
        Json(json!({ "message": message })),
    )
        .into_response()
}

fn gone() -> Response {
    error(StatusCode::GONE, "GoneException", "Gone")
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// PostToConnection, however it arrives (over HTTP, or from [`InProcessNotifier`]): queues
/// `body` for the connection's socket and counts the post. `TooLarge` above 128 KB, `Gone`
/// when the connection is not open.
fn post_to_connection(
    connections: &Connections,
    metrics: &Metrics,
    connection_id: &str,
    body: String,
) -> PostOutcome {
    if body.len() > MAX_MESSAGE_BYTES {
        metrics.posted(PostOutcome::TooLarge, body.as_bytes());
        return PostOutcome::TooLarge;
    }
    match connections.get(connection_id) {
        Some(live) if live.is_open() => {
            // Counted before it is queued, as the queue takes the body. A socket that ends
            // in between drops it, like a post that reached a connection as it closed.
            metrics.posted(PostOutcome::Delivered, body.as_bytes());
            live.send(Outbound::Text(body));
            PostOutcome::Delivered
        }
        _ => {
            metrics.posted(PostOutcome::Gone, body.as_bytes());
            PostOutcome::Gone
        }
    }
}

/// `POST`: 200 once the body is queued for the socket, 410 when the connection is not open,
/// 413 when the body exceeds 128 KB.
pub(crate) async fn post(
    State(state): State<Arc<AppState>>,
    Path(connection_id): Path<String>,
    body: Bytes,
) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    match post_to_connection(&state.connections, &state.metrics, &connection_id, body) {
        PostOutcome::Delivered => StatusCode::OK.into_response(),
        PostOutcome::Gone => gone(),
        PostOutcome::TooLarge => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "Payload too large",
        ),
    }
}

/// The stack's own functions posting to its connections without leaving the process: the
/// same PostToConnection as `POST @connections/{id}` ([`post_to_connection`]), its outcomes
/// mapped as the API Gateway notifier maps the HTTP answers (410 `Gone`, 413 `Rejected`), minus
/// the HTTP request, SigV4 signature and SDK round trip that cost more CPU than the rest of a
/// location update together (`make bench-knee`). `rnd-local serve --post-over-http` uses the
/// real notifier instead.
#[derive(Debug)]
pub(crate) struct InProcessNotifier {
    pub(crate) connections: Arc<Connections>,
    pub(crate) metrics: Arc<Metrics>,
}

#[async_trait]
impl Notifier for InProcessNotifier {
    async fn post(&self, connection: &ConnectionId, payload: &str) -> Result<(), NotifyError> {
        match post_to_connection(
            &self.connections,
            &self.metrics,
            connection.as_str(),
            payload.to_owned(),
        ) {
            PostOutcome::Delivered => Ok(()),
            PostOutcome::Gone => Err(NotifyError::Gone),
            PostOutcome::TooLarge => Err(NotifyError::Rejected("Payload too large".into())),
        }
    }

    /// As `DELETE @connections/{id}` ([`delete_connection`]).
    async fn disconnect(&self, connection: &ConnectionId) -> Result<(), NotifyError> {
        if delete_connection(&self.connections, connection.as_str()) {
            Ok(())
        } else {
            Err(NotifyError::Gone)
        }
    }
}

/// `GET`: `{connectedAt, identity: {sourceIp, userAgent}, lastActiveAt}` (ISO-8601 times), or
/// 410.
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path(connection_id): Path<String>,
) -> Response {
    let Some(live) = state.connections.get(&connection_id) else {
        return gone();
    };
    let ctx = &live.context;
    Json(json!({
        "connectedAt": iso(ctx.connected_at),
        "identity": {
            "sourceIp": ctx.source_ip,
            "userAgent": ctx.user_agent.clone().unwrap_or_default(),
        },
        "lastActiveAt": iso(live.last_active_at()),
    }))
    .into_response()
}

/// `DELETE`: 204 once the connection is closed to the API (later posts get 410); the socket
/// closes with 1000 and `$disconnect` runs right after. 410 when it is not open.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(connection_id): Path<String>,
) -> Response {
    if delete_connection(&state.connections, &connection_id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        gone()
    }
}

/// DeleteConnection: closes the connection to the API (later posts get 410) and its socket
/// with 1000 (`$disconnect` runs right after). False when it was not open.
pub(crate) fn delete_connection(connections: &Connections, connection_id: &str) -> bool {
    match connections.remove(connection_id) {
        Some(live) => {
            live.send(Outbound::Close(CLOSE_NORMAL, ""));
            true
        }
        None => false,
    }
}
