//! Google's error bodies: the token endpoint's OAuth 2.0 errors (`{"error",
//! "error_description"}`) and FCM's `google.rpc.Status` (`{"error": {"code", "message",
//! "status", "details"}}`, the FCM error code in a `google.firebase.fcm.v1.FcmError` detail).

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Fault;

/// The `@type` of the detail carrying FCM's `errorCode`.
pub(crate) const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

/// The token endpoint's refusal: 400 with `{"error": error, "error_description": description}`.
pub(crate) fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// The canonical `google.rpc.Code` name of an HTTP status, as FCM sends it in `status`.
fn rpc_status(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// FCM's error answer: `code`, a `message`, its `google.rpc` status and `details`, and the
/// headers that go with some (`Retry-After`, `WWW-Authenticate`).
#[derive(Debug)]
pub(crate) struct RpcError {
    code: StatusCode,
    message: String,
    details: Vec<Value>,
    retry_after: Option<Duration>,
    www_authenticate: bool,
}

impl RpcError {
    pub(crate) fn new(code: StatusCode, message: impl Into<String>, details: Vec<Value>) -> Self {
        Self {
            code,
            message: message.into(),
            details,
            retry_after: None,
            www_authenticate: false,
        }
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "code": self.code.as_u16(),
            "message": self.message,
            "status": rpc_status(self.code),
        });
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details);
        }
        let mut response = (self.code, Json(json!({ "error": error }))).into_response();
        let headers = response.headers_mut();
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: the header has no fractions.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
            );
        }
        response
    }
}

/// A `google.firebase.fcm.v1.FcmError` detail naming `error_code`.
pub(crate) fn fcm_detail(error_code: &str) -> Value {
    json!({ "@type": FCM_ERROR_TYPE, "errorCode": error_code })
}

/// A `google.rpc.BadRequest` detail naming the offending `field`.
pub(crate) fn bad_request_detail(field: &str, description: &str) -> Value {
    json!({
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{ "field": field, "description": description }],
    })
}

/// 400 `INVALID_ARGUMENT` about `field`, as FCM answers a message that does not fit its schema.
pub(crate) fn invalid_field(field: &str, description: &str) -> RpcError {
    RpcError::new(
        StatusCode::BAD_REQUEST,
        description,
        vec![bad_request_detail(field, description)],
    )
}

/// 400 `INVALID_ARGUMENT` with FCM's `INVALID_ARGUMENT` error code.
pub(crate) fn invalid_argument(message: impl Into<String>) -> RpcError {
    RpcError::new(
        StatusCode::BAD_REQUEST,
        message,
        vec![fcm_detail("INVALID_ARGUMENT")],
    )
}

/// 401 `UNAUTHENTICATED` for a missing, unknown or expired access token (`reason` in the
/// `google.rpc.ErrorInfo` detail: `CREDENTIALS_MISSING`, `ACCESS_TOKEN_EXPIRED`, …), with the
/// `WWW-Authenticate` header Google sends.
pub(crate) fn unauthenticated(reason: &str) -> RpcError {
    RpcError {
        www_authenticate: true,
        ..RpcError::new(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential. See \
             https://developers.google.com/identity/sign-in/web/devconsole-project.",
            vec![json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {
                    "service": "fcm.googleapis.com",
                    "method": "google.firebase.fcm.v1.FcmService.SendMessage",
                },
            })],
        )
    }
}

/// FCM's answer for a send that hit `fault`.
pub(crate) fn fault(fault: Fault) -> RpcError {
    let (code, message, error_code, retry_after) = match fault {
        Fault::Unauthenticated => return unauthenticated("ACCESS_TOKEN_EXPIRED"),
        Fault::Unregistered => (
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            "UNREGISTERED",
            None,
        ),
        Fault::InvalidToken => (
            StatusCode::BAD_REQUEST,
            "The registration token is not a valid FCM registration token",
            "INVALID_ARGUMENT",
            None,
        ),
        Fault::QuotaExceeded { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per \
             minute' of service 'fcm.googleapis.com'.",
            "QUOTA_EXCEEDED",
            retry_after,
        ),
        Fault::Unavailable { retry_after } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is currently unavailable.",
            "UNAVAILABLE",
            retry_after,
        ),
        Fault::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error encountered.",
            "INTERNAL",
            None,
        ),
        Fault::SenderIdMismatch => (
            StatusCode::FORBIDDEN,
            "SenderId mismatch",
            "SENDER_ID_MISMATCH",
            None,
        ),
        Fault::ThirdPartyAuthError => (
            StatusCode::UNAUTHORIZED,
            "Auth error from APNS or Web Push Service",
            "THIRD_PARTY_AUTH_ERROR",
            None,
        ),
    };
    RpcError {
        retry_after,
        ..RpcError::new(code, message, vec![fcm_detail(error_code)])
    }
}
