//! `Idempotency-Key` on `POST /orders` and the order transitions (`POST /orders/{id}/…`).
//!
//! A request with a key runs once per user and key: a retry with the same key and the same
//! request (method, path and body) gets the first answer again (`Idempotent-Replayed: true`),
//! whatever happened since (the same order, no second one; a transition that succeeded answers
//! its 200, not 409); the same key with another request is refused (422
//! `idempotency_key_reused`), and a retry while the first still runs is told to wait (409
//! `request_in_progress`, `Retry-After`). The key is claimed with a conditional write before the
//! request runs, so of two racing requests exactly one runs. Answers are kept for
//! [`KEEP_HOURS`]; a request that fails on our side (5xx) or is refused for now (429) gives its
//! key up, so a retry runs again. Without a key nothing changes.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rnd_domain::identity::Identity;
use rnd_domain::ports::{KeptAnswer, KeyClaim};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::body::MAX_BODY_BYTES;
use crate::problem::{ApiError, ProblemCode};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The answer header on a replay.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a key and its answer are kept.
pub const KEEP_HOURS: i64 = 24;
/// Longest key.
pub const MAX_KEY_LEN: usize = 255;
/// The key's pattern: 1 to 255 visible ASCII characters.
pub const KEY_PATTERN: &str = "^[\\x21-\\x7E]{1,255}$";

/// Whether the request may carry a key: `POST /orders` and the order transitions.
fn applies(method: &Method, path: &str) -> bool {
    method == Method::POST && (path == "/orders" || path.starts_with("/orders/"))
}

fn valid(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7E).contains(&b))
}

/// What identifies a request under a key: its method, path and body, hashed.
pub fn request_fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b" ");
    hash.update(path.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Middleware (after authentication): runs a keyed request once per user and key.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !applies(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let Some(key) = raw.to_str().ok().filter(|k| valid(k)).map(str::to_owned) else {
        return ApiError::invalid_field(
            "Idempotency-Key",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        )
        .into_response();
    };
    let Some(user) = request
        .extensions()
        .get::<Identity>()
        .map(|i| i.actor.user_id.clone())
    else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        }
        .into_response();
    };
    let fingerprint = request_fingerprint(&parts.method, parts.uri.path(), &bytes);
    let now = state.now();
    let until = now + chrono::Duration::hours(KEEP_HOURS);
    let store = state.store();
    match store
        .claim_idempotency_key(&user, &key, &fingerprint, now, until)
        .await
    {
        Err(e) => ApiError::unexpected(e).into_response(),
        Ok(KeyClaim::Held {
            fingerprint: first, ..
        }) if first != fingerprint => ApiError::Unprocessable {
            code: ProblemCode::IdempotencyKeyReused,
            field: Some("Idempotency-Key".into()),
            detail: "this Idempotency-Key was used with another request".into(),
        }
        .into_response(),
        Ok(KeyClaim::Held {
            answer: Some(answer),
            ..
        }) => replay(answer),
        Ok(KeyClaim::Held { answer: None, .. }) => {
            let mut response = ApiError::Conflict {
                code: ProblemCode::RequestInProgress,
                detail: "a request with this Idempotency-Key is still running; retry shortly"
                    .into(),
            }
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Ok(KeyClaim::Claimed) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            // A failure on our side, or a refusal to run it now (429), is no answer to keep:
            // a retry with the key runs again.
            let status = response.status();
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                if let Err(e) = store.release_idempotency_key(&user, &key).await {
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "could not release an idempotency key"
                    );
                }
                return response;
            }
            let (parts, body) = response.into_parts();
            let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
                let _ = store.release_idempotency_key(&user, &key).await;
                return ApiError::unexpected("an answer too large to keep").into_response();
            };
            let text = |name: HeaderName| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let answer = KeptAnswer {
                status: parts.status.as_u16(),
                content_type: text(header::CONTENT_TYPE).unwrap_or_default(),
                location: text(header::LOCATION),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            if let Err(e) = store.keep_idempotent_answer(&user, &key, &answer).await {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "could not keep an idempotent answer"
                );
            }
            Response::from_parts(parts, Body::from(body))
        }
    }
}

/// The kept answer, marked as a replay.
fn replay(answer: KeptAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Some(value) = answer.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Documents the header and its refusals on every operation that takes it.
pub(crate) fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Ref, RefOr, Required, ResponseBuilder};
    let parameter: Parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Runs the request once: a retry with the same key and request gets the first \
             answer again (`Idempotent-Replayed: true`); the same key with another request \
             is refused (422 `idempotency_key_reused`); one while the first still runs, 409 \
             `request_in_progress`. Kept for 24 hours.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_KEY_LEN))
                .pattern(Some(KEY_PATTERN)),
        ))
        .build();
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    crate::PROBLEM_JSON,
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let Some(post) = item.post.as_mut() else {
            continue;
        };
        if !applies(&Method::POST, path) {
            continue;
        }
        post.parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(parameter.clone()));
        let responses = &mut post.responses.responses;
        responses.entry("409".into()).or_insert_with(|| {
            problem("The order's status does not allow this now, another transition won the race, or a request with this Idempotency-Key is still running (`invalid_transition`, `conflict`, `request_in_progress`)")
        });
        responses.entry("422".into()).or_insert_with(|| {
            problem("This Idempotency-Key was used with another request (`idempotency_key_reused`)")
        });
    }
}
