//! FCM's answers to [`PushError`]: what to do about each failure.
//!
//! FCM answers errors as `google.rpc.Status` (`{"error": {"code", "message", "status",
//! "details"}}`), the FCM error code in a `google.firebase.fcm.v1.FcmError` detail
//! (`errorCode`). The error code decides when there is one, else the HTTP status:
//!
//! | FCM | HTTP | becomes |
//! |---|---|---|
//! | `UNREGISTERED` | 404 | [`PushError::Unregistered`] |
//! | `INVALID_ARGUMENT` about the registration token | 400 | [`PushError::Unregistered`] |
//! | `INVALID_ARGUMENT` otherwise (too big, bad data) | 400 | [`PushError::Rejected`] |
//! | `QUOTA_EXCEEDED` | 429 | [`PushError::Throttled`] with `Retry-After` |
//! | `UNAVAILABLE`, `INTERNAL` | 503, 500, other 5xx | [`PushError::Unavailable`] with `Retry-After` |
//! | `SENDER_ID_MISMATCH`, `THIRD_PARTY_AUTH_ERROR` | 403, 401 | [`PushError::Rejected`] |
//! | (none: the access token) | 401 | refresh the token and send once more |
//! | `PERMISSION_DENIED` | 403 | [`PushError::Unauthorized`] |
//!
//! `SENDER_ID_MISMATCH` is rejected, not unregistered: the token belongs to another Firebase
//! project, which is almost always our configuration (a deployment holding another project's
//! service account) rather than the device's, and deleting devices would make a fixable
//! mistake destroy every registration. `THIRD_PARTY_AUTH_ERROR` (HTTP 401) is the project's
//! APNs or web push credential being refused, not our access token: a fresh token cannot
//! help, Android devices still receive, and only this message is lost, so it is rejected too.
//! A 404 whose body is not Google's (no `NOT_FOUND` status: a wrong endpoint or path) is
//! rejected rather than unregistered, for the same reason.

use hyper::StatusCode;
use rnd_domain::push::PushError;

use rnd_http_client::Answer;
use rnd_http_client::google_rpc::RpcStatus;

/// Longest part of an answer's message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// What FCM answered to a send that did not fail outright.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// 2xx: FCM accepted the message.
    Delivered,
    /// 401 without an FCM error code: the access token was refused.
    Unauthenticated(FcmRefusal),
}

/// FCM's refusal of a send, kept as the source of a [`PushError`].
#[derive(Debug, thiserror::Error)]
#[error("FCM answered {status} {rpc_status} {error_code}: {message}")]
pub(crate) struct FcmRefusal {
    status: u16,
    /// The `google.rpc` status (`INVALID_ARGUMENT`, …), or `-`.
    rpc_status: String,
    /// The FCM error code (`UNREGISTERED`, …), or `-`.
    error_code: String,
    /// FCM's message (truncated; FCM does not quote the registration token).
    message: String,
}

/// The `errorCode` of the `FcmError` detail.
fn fcm_error_code(rpc: &RpcStatus) -> Option<&str> {
    rpc.details
        .iter()
        .filter(|d| d.type_url.ends_with("google.firebase.fcm.v1.FcmError"))
        .find_map(|d| d.error_code.as_deref())
}

/// True when the error is about the registration token (its message, or a field violation of
/// `message.token`).
fn concerns_the_token(rpc: &RpcStatus) -> bool {
    let about_token = |text: &str| text.to_ascii_lowercase().contains("registration token");
    about_token(&rpc.message)
        || rpc
            .details
            .iter()
            .flat_map(|d| &d.field_violations)
            .any(|v| v.field == "message.token" || about_token(&v.description))
}

/// What to do about FCM's `answer` to a send (see the module docs).
pub(crate) fn classify(answer: Answer) -> Result<Outcome, PushError> {
    if answer.status.is_success() {
        return Ok(Outcome::Delivered);
    }
    // A body that is not Google's error (a proxy's HTML page) still gets classified by status.
    let rpc = RpcStatus::from_body(&answer.body);
    let retry_after = answer.retry_after;
    let refusal = FcmRefusal {
        status: answer.status.as_u16(),
        rpc_status: non_empty(&rpc.status),
        error_code: non_empty(fcm_error_code(&rpc).unwrap_or_default()),
        message: if rpc.message.is_empty() {
            String::from_utf8_lossy(&answer.body)
                .chars()
                .take(MAX_MESSAGE_CHARS)
                .collect()
        } else {
            rpc.message.chars().take(MAX_MESSAGE_CHARS).collect()
        },
    };
    let rejected = |refusal: FcmRefusal| Err(PushError::Rejected(Box::new(refusal)));
    let unavailable = |refusal: FcmRefusal| {
        Err(PushError::Unavailable {
            retry_after,
            source: Box::new(refusal),
        })
    };
    match fcm_error_code(&rpc) {
        Some("UNREGISTERED") => return Err(PushError::Unregistered),
        Some("QUOTA_EXCEEDED") => return Err(PushError::Throttled { retry_after }),
        Some("UNAVAILABLE" | "INTERNAL") => return unavailable(refusal),
        Some("SENDER_ID_MISMATCH" | "THIRD_PARTY_AUTH_ERROR") => return rejected(refusal),
        Some("INVALID_ARGUMENT") if concerns_the_token(&rpc) => {
            return Err(PushError::Unregistered);
        }
        Some("INVALID_ARGUMENT") => return rejected(refusal),
        _ => {}
    }
    match answer.status {
        StatusCode::BAD_REQUEST if concerns_the_token(&rpc) => Err(PushError::Unregistered),
        StatusCode::NOT_FOUND if rpc.status == "NOT_FOUND" => Err(PushError::Unregistered),
        StatusCode::UNAUTHORIZED => Ok(Outcome::Unauthenticated(refusal)),
        StatusCode::FORBIDDEN => Err(PushError::Unauthorized(Box::new(refusal))),
        StatusCode::TOO_MANY_REQUESTS => Err(PushError::Throttled { retry_after }),
        status if status.is_server_error() => unavailable(refusal),
        _ => rejected(refusal),
    }
}

fn non_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::body::Bytes;
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: serde_json::Value) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: Some(Duration::from_secs(7)),
            max_age: None,
            body: Bytes::from(body.to_string()),
        }
    }

    fn fcm_error(code: u16, status: &str, message: &str, error_code: &str) -> serde_json::Value {
        json!({"error": {"code": code, "message": message, "status": status, "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}
        ]}})
    }

    #[test]
    fn an_invalid_registration_token_is_unregistered() {
        let body = fcm_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            "INVALID_ARGUMENT",
        );
        assert!(matches!(
            classify(answer(400, body)),
            Err(PushError::Unregistered)
        ));
    }

    #[test]
    fn a_bad_request_naming_message_token_is_unregistered() {
        // GIVEN a BadRequest field violation of message.token, without an FCM error code
        let body = json!({"error": {"code": 400, "message": "Invalid value", "status": "INVALID_ARGUMENT", "details": [
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "message.token", "description": "Invalid value"}]}
        ]}});
        // WHEN classified THEN the device is to be pruned
        assert!(matches!(
            classify(answer(400, body)),
            Err(PushError::Unregistered)
        ));
    }

    #[test]
    fn a_bad_data_value_is_rejected_not_unregistered() {
        let body = json!({"error": {"code": 400, "message": "Invalid value at 'message.data[0].value' (TYPE_STRING), 12", "status": "INVALID_ARGUMENT", "details": [
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "message.data[0].value", "description": "Invalid value at 'message.data[0].value' (TYPE_STRING), 12"}]}
        ]}});
        assert!(matches!(
            classify(answer(400, body)),
            Err(PushError::Rejected(_))
        ));
    }

    #[test]
    fn a_third_party_auth_error_is_rejected_without_a_token_refresh() {
        // GIVEN FCM's 401 about the project's APNs credentials WHEN classified THEN rejected
        let body = fcm_error(
            401,
            "UNAUTHENTICATED",
            "Auth error from APNS or Web Push Service",
            "THIRD_PARTY_AUTH_ERROR",
        );
        assert!(matches!(
            classify(answer(401, body)),
            Err(PushError::Rejected(_))
        ));
    }

    #[test]
    fn a_sender_id_mismatch_is_rejected_and_keeps_the_device() {
        let body = fcm_error(
            403,
            "PERMISSION_DENIED",
            "SenderId mismatch",
            "SENDER_ID_MISMATCH",
        );
        assert!(matches!(
            classify(answer(403, body)),
            Err(PushError::Rejected(_))
        ));
    }

    #[test]
    fn permission_denied_on_the_project_is_unauthorized() {
        let body = json!({"error": {"code": 403, "message": "Permission 'cloudmessaging.messages.create' denied", "status": "PERMISSION_DENIED"}});
        assert!(matches!(
            classify(answer(403, body)),
            Err(PushError::Unauthorized(_))
        ));
    }

    #[test]
    fn a_404_that_is_not_googles_does_not_unregister_the_device() {
        // GIVEN a 404 page from a wrong endpoint WHEN classified THEN rejected, not unregistered
        let not_google = Answer {
            status: StatusCode::NOT_FOUND,
            retry_after: None,
            max_age: None,
            body: Bytes::from_static(b"<html>Not Found</html>"),
        };
        assert!(matches!(classify(not_google), Err(PushError::Rejected(_))));
    }

    #[test]
    fn server_errors_without_a_code_are_unavailable_with_retry_after() {
        for status in [500, 502, 503, 504] {
            let err = classify(answer(status, json!({}))).expect_err("a failure");
            assert!(
                matches!(err, PushError::Unavailable { .. }),
                "{status}: {err:?}"
            );
            assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        }
    }

    #[test]
    fn a_plain_401_asks_for_a_fresh_token() {
        let body = json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}});
        assert!(matches!(
            classify(answer(401, body)),
            Ok(Outcome::Unauthenticated(_))
        ));
    }
}
