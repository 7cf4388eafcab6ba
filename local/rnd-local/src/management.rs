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

use crate::AppState;
use crate::metrics::PostOutcome;
use crate::ws::{CLOSE_NORMAL, MAX_MESSAGE_BYTES, Outbound};

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

/// `POST`: 200 once the body is queued for the socket, 410 when the connection is not open,
/// 413 when the body exceeds 128 KB.
pub(crate) async fn post(
    State(state): State<Arc<AppState>>,
    Path(connection_id): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() > MAX_MESSAGE_BYTES {
        state.metrics.posted(PostOutcome::TooLarge, &body);
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "Payload too large",
        );
    }
    match state.connections.get(&connection_id) {
        Some(live) if live.send(Outbound::Text(String::from_utf8_lossy(&body).into_owned())) => {
            state.metrics.posted(PostOutcome::Delivered, &body);
            StatusCode::OK.into_response()
        }
        _ => {
            state.metrics.posted(PostOutcome::Gone, &body);
            gone()
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
    match state.connections.remove(&connection_id) {
        Some(live) => {
            live.send(Outbound::Close(CLOSE_NORMAL, ""));
            StatusCode::NO_CONTENT.into_response()
        }
        None => gone(),
    }
}
