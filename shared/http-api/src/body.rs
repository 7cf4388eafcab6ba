//! Request bodies: [`JsonBody`] reads a JSON body within the size limit and names the field that
//! does not fit; [`limit_body`] refuses a declared oversize body before anything else runs.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rnd_domain::ValidationError;
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, ProblemCode};

/// Largest request body accepted, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a request body was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Larger than [`MAX_BODY_BYTES`].
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// No JSON `Content-Type`.
    #[error("the body must be JSON")]
    NotJson,
    /// Not JSON at all (syntax error, empty, trailing characters).
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    /// JSON, but a field is missing or of the wrong type.
    #[error("{field}: {message}")]
    Field {
        /// Path of the field, e.g. `items[0].quantity`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The body could not be read (the connection failed).
    #[error("the body could not be read")]
    Unreadable(#[source] axum::Error),
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            },
            BodyError::NotJson => ApiError::UnsupportedMediaType,
            BodyError::Malformed(_) => ApiError::Invalid {
                code: ProblemCode::MalformedJson,
                field: None,
                detail: e.to_string(),
            },
            BodyError::Field { field, message } => ApiError::invalid_field(field, message),
            BodyError::Unreadable(source) => ApiError::unexpected(source),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid_field(e.field, e.to_string())
    }
}

/// A JSON request body of type `T`.
///
/// Refuses with 415 when the `Content-Type` is not `application/json` (or `application/*+json`),
/// 413 past [`MAX_BODY_BYTES`], 400 `malformed_json` when it is not JSON, and 400
/// `validation_failed` naming the field when a field is missing or of the wrong type.
#[derive(Debug, Clone)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(BodyError::NotJson.into());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                BodyError::TooLarge
            } else {
                BodyError::Unreadable(axum::Error::new(e))
            }
        })?;
        Ok(JsonBody(parse_json(&bytes)?))
    }
}

/// Parses `bytes` as one JSON value of type `T`; see [`JsonBody`] for the refusals.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = without_position(&inner);
        if !inner.is_data() {
            return BodyError::Malformed(message);
        }
        // A missing field is reported at its parent: name the field itself.
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned());
        let field = match (missing, path.as_str()) {
            (Some(name), ".") => name,
            (Some(name), parent) => format!("{parent}.{name}"),
            (None, ".") => "body".to_owned(),
            (None, path) => path.to_owned(),
        };
        BodyError::Field { field, message }
    })?;
    de.end()
        .map_err(|e| BodyError::Malformed(without_position(&e)))?;
    Ok(value)
}

/// serde_json's message without its ` at line L column C` suffix.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_owned(),
        None => text,
    }
}

/// True when the `Content-Type` is `application/json` or `application/*+json` (parameters such
/// as `charset` allowed).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Middleware: refuses a request whose `Content-Length` is over [`MAX_BODY_BYTES`] with 413
/// before authentication or routing, whatever the endpoint reads. Bodies without a length are
/// bounded where they are read ([`JsonBody`] under `DefaultBodyLimit`).
pub(crate) async fn limit_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => {
            ApiError::from(BodyError::TooLarge).into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Line {
        name: String,
        quantity: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        chef_id: String,
        #[serde(default)]
        items: Vec<Line>,
    }

    fn field_of(json: &str) -> String {
        match parse_json::<Body>(json.as_bytes()) {
            Err(BodyError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_or_mistyped_field_is_named_with_its_path() {
        assert_eq!(field_of("{}"), "chefId");
        assert_eq!(field_of(r#"{"chefId": 7}"#), "chefId");
        assert_eq!(
            field_of(r#"{"chefId": "c", "items": [{"name": "x", "quantity": -1}]}"#),
            "items[0].quantity"
        );
        assert_eq!(
            field_of(r#"{"chefId": "c", "items": [{"quantity": 1}]}"#),
            "items[0].name"
        );
        assert_eq!(field_of("[]"), "body");
    }

    #[test]
    fn broken_json_is_malformed_not_a_field_error() {
        for text in ["", "{", r#"{"chefId": "c"} trailing"#, "nope"] {
            assert!(
                matches!(
                    parse_json::<Body>(text.as_bytes()),
                    Err(BodyError::Malformed(_))
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn json_content_types_are_recognised() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
