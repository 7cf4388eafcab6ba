//! The error body every Google API answers with (FCM, the Routes API): a `google.rpc.Status`
//! under `error`, `{"error": {"code": 404, "message": "…", "status": "NOT_FOUND", "details":
//! […]}}`. One decoder for the adapters that call Google.

use serde::Deserialize;

/// A `google.rpc.Status`, as far as our adapters read it. Every field defaults, so a body that
/// is not Google's error (a proxy's HTML page) reads as an empty status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RpcStatus {
    /// What went wrong, in English (may quote the request; truncate before logging).
    #[serde(default)]
    pub message: String,
    /// The canonical code's name (`INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, …).
    #[serde(default)]
    pub status: String,
    /// Typed details (`@type` names each).
    #[serde(default)]
    pub details: Vec<Detail>,
}

/// One typed detail of a [`RpcStatus`]: the fields our adapters read of the types they use
/// (FCM's `FcmError`, `google.rpc.BadRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Detail {
    /// The detail's type URL (`type.googleapis.com/google.firebase.fcm.v1.FcmError`, …).
    #[serde(rename = "@type", default)]
    pub type_url: String,
    /// `FcmError`'s code (`UNREGISTERED`, …).
    #[serde(rename = "errorCode", default)]
    pub error_code: Option<String>,
    /// `BadRequest`'s field violations.
    #[serde(rename = "fieldViolations", default)]
    pub field_violations: Vec<FieldViolation>,
}

/// A `google.rpc.BadRequest.FieldViolation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FieldViolation {
    /// The request field's path (`message.token`).
    #[serde(default)]
    pub field: String,
    /// Why it is wrong.
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: RpcStatus,
}

impl RpcStatus {
    /// The status in a Google error `body`; empty when the body is not one.
    pub fn from_body(body: &[u8]) -> Self {
        serde_json::from_slice::<ErrorBody>(body)
            .map(|b| b.error)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_google_error_body_reads_as_its_status_and_details() {
        // GIVEN FCM's answer for a token it no longer knows
        let body = br#"{"error": {"code": 404, "message": "Requested entity was not found.",
            "status": "NOT_FOUND", "details": [{"@type":
            "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"},
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations":
            [{"field": "message.token", "description": "Invalid registration token"}]}]}}"#;
        // WHEN it is read
        let status = RpcStatus::from_body(body);
        // THEN its status, message and details are there
        assert_eq!(status.status, "NOT_FOUND");
        assert_eq!(status.message, "Requested entity was not found.");
        assert_eq!(
            status.details[0].error_code.as_deref(),
            Some("UNREGISTERED")
        );
        assert_eq!(status.details[1].field_violations[0].field, "message.token");
    }

    #[test]
    fn a_body_that_is_not_a_google_error_reads_as_empty() {
        // GIVEN a proxy's page and an empty body WHEN read THEN both are the empty status
        assert_eq!(
            RpcStatus::from_body(b"<html>502 Bad Gateway</html>"),
            RpcStatus::default()
        );
        assert_eq!(RpcStatus::from_body(b""), RpcStatus::default());
    }
}
