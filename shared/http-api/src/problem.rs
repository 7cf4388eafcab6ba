//! Every refusal and failure the API answers, and the one place that turns them into RFC 9457
//! `application/problem+json` responses.
//!
//! Endpoint families have their own error enums (the domain's `AuthError` for tokens,
//! [`BodyError`](crate::body::BodyError) for request bodies, `OrderError`, `ProfileError`);
//! each converts into an [`ApiError`], which says only *what kind* of refusal it is and which
//! stable `code` it carries. [`ApiError::into_response`] alone decides the status and the body.
//! An [`ApiError::Unexpected`] is answered with a generic 500 and logged with its source chain;
//! its text is never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rnd_domain::error::Chain;
use rnd_domain::identity::AuthError;
use rnd_domain::ports::BoxError;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:rnd:problem:validation_failed",
    "title": "Bad Request",
    "status": 400,
    "detail": "deliveryLatitude must be between -90 and 90",
    "code": "validation_failed",
    "field": "deliveryLatitude"
}))]
pub struct Problem {
    /// `urn:rnd:problem:{code}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The HTTP status phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for humans; never internal error text.
    pub detail: String,
    /// A stable, machine-readable code: one of [`ProblemCode`]'s, as the document lists them.
    #[schema(value_type = ProblemCode)]
    pub code: String,
    /// The offending request field (its JSON name or path, e.g. `items[0].quantity`): for
    /// validation errors, and for a field the caller may not send (403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Every stable `code` a problem carries (its `type` is `urn:rnd:problem:{code}`). The OpenAPI
/// document lists them as the `code` enum; clients switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// No token, or one that does not verify (401).
    Unauthorized,
    /// The token has expired (401).
    TokenExpired,
    /// Known caller, not allowed (403).
    Forbidden,
    /// No such resource, or not one the caller may see (404).
    NotFound,
    /// The order's status does not allow the transition (409).
    InvalidTransition,
    /// The order changed meanwhile and the retries ran out (409).
    Conflict,
    /// A field is invalid; `field` names it (400).
    ValidationFailed,
    /// The body is not JSON of the expected shape (400).
    MalformedJson,
    /// A list cursor that is not one this API issued (400).
    InvalidCursor,
    /// The chef has no pickup location in their profile (422).
    ChefLocationMissing,
    /// The named chef is not a chef (422).
    NotAChef,
    /// The named driver is not a driver (422).
    NotADriver,
    /// The caller must save a profile first (422).
    ProfileRequired,
    /// The body is larger than the limit (413).
    PayloadTooLarge,
    /// The body is not JSON by its `Content-Type` (415).
    UnsupportedMediaType,
    /// The route exists, the method does not (405).
    MethodNotAllowed,
    /// An `Idempotency-Key` used before with another request (422).
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still running (409).
    RequestInProgress,
    /// Too many of these requests; retry after `Retry-After` seconds (429).
    RateLimited,
    /// An unexpected failure, logged and never described (500).
    Internal,
}

impl ProblemCode {
    /// Every code.
    pub const ALL: [ProblemCode; 20] = [
        ProblemCode::Unauthorized,
        ProblemCode::TokenExpired,
        ProblemCode::Forbidden,
        ProblemCode::NotFound,
        ProblemCode::InvalidTransition,
        ProblemCode::Conflict,
        ProblemCode::ValidationFailed,
        ProblemCode::MalformedJson,
        ProblemCode::InvalidCursor,
        ProblemCode::ChefLocationMissing,
        ProblemCode::NotAChef,
        ProblemCode::NotADriver,
        ProblemCode::ProfileRequired,
        ProblemCode::PayloadTooLarge,
        ProblemCode::UnsupportedMediaType,
        ProblemCode::MethodNotAllowed,
        ProblemCode::IdempotencyKeyReused,
        ProblemCode::RequestInProgress,
        ProblemCode::RateLimited,
        ProblemCode::Internal,
    ];

    /// The wire name, e.g. `validation_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::Unauthorized => "unauthorized",
            ProblemCode::TokenExpired => "token_expired",
            ProblemCode::Forbidden => "forbidden",
            ProblemCode::NotFound => "not_found",
            ProblemCode::InvalidTransition => "invalid_transition",
            ProblemCode::Conflict => "conflict",
            ProblemCode::ValidationFailed => "validation_failed",
            ProblemCode::MalformedJson => "malformed_json",
            ProblemCode::InvalidCursor => "invalid_cursor",
            ProblemCode::ChefLocationMissing => "chef_location_missing",
            ProblemCode::NotAChef => "not_a_chef",
            ProblemCode::NotADriver => "not_a_driver",
            ProblemCode::ProfileRequired => "profile_required",
            ProblemCode::PayloadTooLarge => "payload_too_large",
            ProblemCode::UnsupportedMediaType => "unsupported_media_type",
            ProblemCode::MethodNotAllowed => "method_not_allowed",
            ProblemCode::IdempotencyKeyReused => "idempotency_key_reused",
            ProblemCode::RequestInProgress => "request_in_progress",
            ProblemCode::RateLimited => "rate_limited",
            ProblemCode::Internal => "internal",
        }
    }
}

/// The problem responses of the OpenAPI document, one per status, for `responses(...)` of
/// `#[utoipa::path]`. Documentation only: responses are built by [`ApiError`].
#[allow(dead_code)]
pub(crate) mod responses {
    use super::*;

    /// The request is malformed or a field is invalid (`validation_failed` naming the field,
    /// `malformed_json`, `invalid_cursor`).
    #[derive(IntoResponses)]
    #[response(status = 400, content_type = "application/problem+json")]
    pub(crate) struct BadRequest(Problem);

    /// The bearer token is missing, invalid or expired (`unauthorized`, `token_expired`).
    #[derive(IntoResponses)]
    #[response(status = 401, content_type = "application/problem+json")]
    pub(crate) struct Unauthorized(Problem);

    /// The caller may not do this, or send this field (`forbidden`, naming the field).
    #[derive(IntoResponses)]
    #[response(status = 403, content_type = "application/problem+json")]
    pub(crate) struct Forbidden(Problem);

    /// No such resource, or not one the caller may see (`not_found`).
    #[derive(IntoResponses)]
    #[response(status = 404, content_type = "application/problem+json")]
    pub(crate) struct NotFound(Problem);

    /// The order's status does not allow this now, or it lost a race (`invalid_transition`,
    /// `conflict`).
    #[derive(IntoResponses)]
    #[response(status = 409, content_type = "application/problem+json")]
    pub(crate) struct Conflict(Problem);

    /// What a lifecycle transition may be refused with, besides its body's refusals.
    #[derive(IntoResponses)]
    pub(crate) enum TransitionRefusals {
        /// The order id or a field is invalid (`validation_failed` naming the field,
        /// `malformed_json`).
        #[response(status = 400, content_type = "application/problem+json")]
        BadRequest(Problem),
        /// The bearer token is missing, invalid or expired (`unauthorized`, `token_expired`).
        #[response(status = 401, content_type = "application/problem+json")]
        Unauthorized(Problem),
        /// The caller is a party to the order but may not do this (`forbidden`).
        #[response(status = 403, content_type = "application/problem+json")]
        Forbidden(Problem),
        /// No such order, or the caller is a stranger to it (`not_found`).
        #[response(status = 404, content_type = "application/problem+json")]
        NotFound(Problem),
        /// The order's status does not allow this now, or another transition won the race
        /// (`invalid_transition`, `conflict`).
        #[response(status = 409, content_type = "application/problem+json")]
        Conflict(Problem),
        /// An unexpected failure (`internal`).
        #[response(status = 500, content_type = "application/problem+json")]
        Internal(Problem),
    }

    /// The body is over 64 KiB (`payload_too_large`).
    #[derive(IntoResponses)]
    #[response(status = 413, content_type = "application/problem+json")]
    pub(crate) struct PayloadTooLarge(Problem);

    /// The body is not `application/json` (`unsupported_media_type`).
    #[derive(IntoResponses)]
    #[response(status = 415, content_type = "application/problem+json")]
    pub(crate) struct UnsupportedMediaType(Problem);

    /// Well-formed but cannot be processed now (`profile_required`, `not_a_chef`,
    /// `chef_location_missing`, `not_a_driver`).
    #[derive(IntoResponses)]
    #[response(status = 422, content_type = "application/problem+json")]
    pub(crate) struct Unprocessable(Problem);

    /// Too many of these requests (`rate_limited`); retry after `Retry-After` seconds.
    #[derive(IntoResponses)]
    #[response(
        status = 429,
        content_type = "application/problem+json",
        headers(("retry-after" = u64, description = "Seconds until a retry may succeed"))
    )]
    pub(crate) struct TooManyRequests(Problem);

    /// An unexpected failure (`internal`); details are logged, never sent.
    #[derive(IntoResponses)]
    #[response(status = 500, content_type = "application/problem+json")]
    pub(crate) struct Internal(Problem);
}

/// What kind of refusal (or failure) a request met. Each family's error converts into one; the
/// status code and the body are decided only in [`ApiError::into_response`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No token, or a token that does not verify (401).
    #[error("{detail}")]
    Unauthorized {
        /// `unauthorized` or `token_expired`.
        code: ProblemCode,
        /// Why, safe to show.
        detail: String,
        /// Whether a token was presented at all (for the `WWW-Authenticate` challenge).
        presented: bool,
    },
    /// Known caller, not allowed (403).
    #[error("{detail}")]
    Forbidden {
        /// The request field the caller may not send, when that is why.
        field: Option<String>,
        /// Why.
        detail: String,
    },
    /// No such resource, or not one the caller may see (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource's state does not allow it now (409).
    #[error("{detail}")]
    Conflict {
        /// `invalid_transition` or `conflict`.
        code: ProblemCode,
        /// Why.
        detail: String,
    },
    /// The request is malformed or a field is invalid (400).
    #[error("{detail}")]
    Invalid {
        /// `validation_failed`, `malformed_json`, `invalid_cursor`.
        code: ProblemCode,
        /// The offending field, when there is one.
        field: Option<String>,
        /// Why.
        detail: String,
    },
    /// Well-formed, but cannot be processed as things stand (422).
    #[error("{detail}")]
    Unprocessable {
        /// `chef_location_missing`, `not_a_chef`, `not_a_driver`, `profile_required`.
        code: ProblemCode,
        /// The field the problem is about, when there is one.
        field: Option<String>,
        /// Why.
        detail: String,
    },
    /// The body is larger than the limit (413).
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON by its `Content-Type` (415).
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// The route exists, the method does not (405).
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed,
    /// Too many of these requests (429).
    #[error("{detail}")]
    RateLimited {
        /// Why, with the limit.
        detail: String,
        /// When a retry may succeed.
        retry_after: std::time::Duration,
    },
    /// Anything we did not expect: a backend failure, corrupt data (500). Never shown.
    #[error("unexpected failure")]
    Unexpected(#[source] BoxError),
}

impl ApiError {
    /// An unexpected failure, keeping `source` for the log.
    pub(crate) fn unexpected(source: impl Into<BoxError>) -> Self {
        ApiError::Unexpected(source.into())
    }

    /// A 403 without a field.
    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::Forbidden {
            field: None,
            detail: detail.into(),
        }
    }

    /// A 400 naming `field`.
    pub(crate) fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::Invalid {
            code: ProblemCode::ValidationFailed,
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> ProblemCode {
        match self {
            ApiError::Unauthorized { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Invalid { code, .. }
            | ApiError::Unprocessable { code, .. } => *code,
            ApiError::Forbidden { .. } => ProblemCode::Forbidden,
            ApiError::NotFound(_) => ProblemCode::NotFound,
            ApiError::PayloadTooLarge { .. } => ProblemCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => ProblemCode::UnsupportedMediaType,
            ApiError::MethodNotAllowed => ProblemCode::MethodNotAllowed,
            ApiError::RateLimited { .. } => ProblemCode::RateLimited,
            ApiError::Unexpected(_) => ProblemCode::Internal,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::Invalid { field, .. }
            | ApiError::Unprocessable { field, .. }
            | ApiError::Forbidden { field, .. } => field.clone(),
            _ => None,
        }
    }

    /// The problem body this error is answered with.
    pub(crate) fn problem(&self) -> Problem {
        let status = self.status();
        let code = self.code().as_str();
        let detail = match self {
            ApiError::Unexpected(_) => {
                "an unexpected error occurred; it has been logged, please retry later".to_owned()
            }
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("urn:rnd:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            field: self.field(),
        }
    }
}

impl IntoResponse for ApiError {
    /// The one mapping of errors to responses: status, `application/problem+json` body, and for
    /// 401 a `WWW-Authenticate: Bearer` challenge. Unexpected errors are logged here.
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unexpected(source) => {
                tracing::error!(error = %Chain(source.as_ref()), "request failed unexpectedly");
            }
            other => tracing::debug!(code = other.code().as_str(), "request refused"),
        }
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let ApiError::RateLimited { retry_after, .. } = &self {
            // Whole seconds, rounded up: a client that waits that long is not refused again.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if let ApiError::Unauthorized { presented, .. } = &self {
            let challenge = if *presented {
                "Bearer error=\"invalid_token\""
            } else {
                "Bearer"
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Unauthorized {
            code: match e {
                AuthError::Expired => ProblemCode::TokenExpired,
                _ => ProblemCode::Unauthorized,
            },
            detail: e.to_string(),
            presented: e != AuthError::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection reset by peer at 10.0.0.7")]
    struct Secret;

    #[derive(Debug, thiserror::Error)]
    #[error("dynamodb query failed")]
    struct Outer(#[source] Secret);

    #[test]
    fn an_unexpected_error_is_a_generic_500_that_keeps_its_chain_for_the_log() {
        // GIVEN an unexpected error with an internal cause
        let err = ApiError::unexpected(Outer(Secret));
        // WHEN it becomes a problem and its chain is rendered
        let problem = err.problem();
        let ApiError::Unexpected(source) = &err else {
            unreachable!()
        };
        let chain = Chain(source.as_ref()).to_string();
        // THEN the body says nothing internal, the log line says everything
        assert_eq!(problem.status, 500);
        assert_eq!(problem.code, "internal");
        assert!(!problem.detail.contains("10.0.0.7"));
        assert_eq!(
            chain,
            "dynamodb query failed: connection reset by peer at 10.0.0.7"
        );
    }

    #[test]
    fn problems_carry_a_type_title_status_code_and_field() {
        let problem = ApiError::invalid_field("chefId", "chefId must not be empty").problem();
        assert_eq!(problem.problem_type, "urn:rnd:problem:validation_failed");
        assert_eq!(problem.title, "Bad Request");
        assert_eq!(problem.field.as_deref(), Some("chefId"));
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["type"], "urn:rnd:problem:validation_failed");
    }

    #[test]
    fn each_codes_wire_name_is_its_serialized_name() {
        for code in ProblemCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn an_expired_token_has_its_own_code() {
        let problem = ApiError::from(AuthError::Expired).problem();
        assert_eq!(
            (problem.status, problem.code.as_str()),
            (401, "token_expired")
        );
    }
}
