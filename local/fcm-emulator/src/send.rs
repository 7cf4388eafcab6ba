//! `POST /v1/projects/{project}/messages:send`, FCM's send, and `GET /messages`, what was
//! delivered.
//!
//! A send is checked in FCM's order: the bearer token (issued here, not expired: else 401),
//! the project (the token's account's: else 403), the body, then the fault programmed for the
//! registration token. The body is read as FCM reads proto3 JSON: field names in snake_case or
//! lowerCamelCase, unknown names refused. The message needs exactly one target (`token`; the
//! emulator delivers to tokens only, so it refuses `topic` and `condition`); `notification`
//! holds strings; `data` values are strings and its keys not reserved (`from`,
//! `message_type`, `notification`, `google…`, `gcm…`); `android.priority` is `NORMAL` or
//! `HIGH`; `apns.headers` are strings, `apns-priority` is `5` or `10`, `apns-collapse-id` at
//! most 64 bytes; and the payload (title, body, every data key and value) is at most
//! [`MAX_PAYLOAD_BYTES`] bytes. `validate_only` checks without delivering.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::answers::{self, RpcError, invalid_argument, invalid_field};
use crate::state::{ReceivedMessage, SendAttempt, Shared};

/// Largest payload FCM accepts for a message to a token: title, body and data keys and values.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// Longest `apns-collapse-id` APNs accepts.
const MAX_APNS_COLLAPSE_ID_BYTES: usize = 64;

/// What a valid send asks for.
#[derive(Debug)]
struct Parsed {
    token: String,
    title: Option<String>,
    body: Option<String>,
    data: BTreeMap<String, String>,
    collapse_key: Option<String>,
    android_priority: Option<String>,
    apns_collapse_id: Option<String>,
    apns_priority: Option<String>,
    validate_only: bool,
}

/// `POST /v1/projects/{project}/messages:send`.
pub(crate) async fn send(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = serde_json::from_slice::<Value>(&body).ok();
    let token = request
        .as_ref()
        .and_then(|r| r.pointer("/message/token"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let response = answer(&shared, &project, &headers, request);
    shared.lock().record_attempt(SendAttempt {
        token,
        status: response.status().as_u16(),
    });
    response
}

/// The answer to one send: its name, after delivering it when it is valid and no fault
/// applies.
fn answer(shared: &Shared, project: &str, headers: &HeaderMap, request: Option<Value>) -> Response {
    match deliver(shared, project, headers, request) {
        Ok(name) => Json(json!({ "name": name })).into_response(),
        Err(refused) => refused.into_response(),
    }
}

fn deliver(
    shared: &Shared,
    project: &str,
    headers: &HeaderMap,
    request: Option<Value>,
) -> Result<String, RpcError> {
    authenticate(shared, headers, project, Instant::now())?;
    let Some(request) = request else {
        return Err(RpcError::new(
            StatusCode::BAD_REQUEST,
            "Invalid JSON payload received.",
            Vec::new(),
        ));
    };
    let parsed = parse(&request)?;
    let mut recorded = shared.lock();
    if let Some(fault) = recorded.take_fault(&parsed.token) {
        return Err(answers::fault(fault));
    }
    if parsed.validate_only {
        return Ok(format!("projects/{project}/messages/fake_message_id"));
    }
    let name = format!(
        "projects/{project}/messages/0:{}%{}",
        chrono::Utc::now().timestamp_micros(),
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let high_priority = match parsed.android_priority.as_deref() {
        Some(priority) => priority == "HIGH",
        None => parsed.apns_priority.as_deref() == Some("10"),
    };
    recorded.record_message(ReceivedMessage {
        name: name.clone(),
        token: parsed.token,
        title: parsed.title,
        body: parsed.body,
        data: parsed.data,
        collapse_key: parsed.collapse_key,
        android_priority: parsed.android_priority,
        apns_collapse_id: parsed.apns_collapse_id,
        apns_priority: parsed.apns_priority,
        high_priority,
        received_at: chrono::Utc::now(),
        request,
    });
    Ok(name)
}

/// Checks the bearer token at `now`: issued here, not expired, for `project`.
fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    project: &str,
    now: Instant,
) -> Result<(), RpcError> {
    let Some(authorization) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(answers::unauthenticated("CREDENTIALS_MISSING"));
    };
    let Some(access_token) = authorization.strip_prefix("Bearer ") else {
        return Err(answers::unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED"));
    };
    let recorded = shared.lock();
    let Some(issued) = recorded.issued.get(access_token) else {
        return Err(answers::unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED"));
    };
    if issued.expires_at <= now {
        return Err(answers::unauthenticated("ACCESS_TOKEN_EXPIRED"));
    }
    if issued.project_id != project {
        let message = format!(
            "Permission 'cloudmessaging.messages.create' denied on resource \
             '//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."
        );
        return Err(RpcError::new(
            StatusCode::FORBIDDEN,
            &message,
            vec![json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "cloudresourcemanager.googleapis.com",
            })],
        ));
    }
    Ok(())
}

/// A proto3 JSON field: `name` (snake_case) or its lowerCamelCase spelling.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .get(name)
        .or_else(|| object.get(&lower_camel(name)))
        .filter(|value| !value.is_null())
}

fn lower_camel(snake: &str) -> String {
    let mut camel = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    camel
}

/// `value` as an object whose fields are all among `known` (snake_case names); else FCM's 400
/// naming `at`.
fn object<'a>(
    value: &'a Value,
    at: &str,
    known: &[&str],
) -> Result<&'a Map<String, Value>, RpcError> {
    let Some(object) = value.as_object() else {
        return Err(invalid_field(
            at,
            &format!("Invalid value at '{at}': expected an object."),
        ));
    };
    if let Some(unknown) = object.keys().find(|key| {
        !known
            .iter()
            .any(|k| *k == key.as_str() || lower_camel(k) == **key)
    }) {
        return Err(invalid_field(
            at,
            &format!(
                "Invalid JSON payload received. Unknown name \"{unknown}\" at '{at}': Cannot find field."
            ),
        ));
    }
    Ok(object)
}

/// The string field `name` of `object` (at path `at`), if present.
fn string(object: &Map<String, Value>, name: &str, at: &str) -> Result<Option<String>, RpcError> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            let path = format!("{at}.{name}");
            Err(invalid_field(
                &path,
                &format!("Invalid value at '{path}' (TYPE_STRING), {other}"),
            ))
        }
    }
}

/// The whole request: `{"message": {…}, "validate_only": bool}`.
fn parse(request: &Value) -> Result<Parsed, RpcError> {
    let top = object(request, "", &["message", "validate_only"])?;
    let validate_only = field(top, "validate_only")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(message) = field(top, "message") else {
        return Err(invalid_field(
            "message",
            "Request contains an invalid argument.",
        ));
    };
    let message = object(
        message,
        "message",
        &[
            "name",
            "data",
            "notification",
            "android",
            "webpush",
            "apns",
            "fcm_options",
            "token",
            "topic",
            "condition",
        ],
    )?;
    let token = target(message)?;
    let (title, body) = match field(message, "notification") {
        Some(n) => {
            let n = object(n, "message.notification", &["title", "body", "image"])?;
            (
                string(n, "title", "message.notification")?,
                string(n, "body", "message.notification")?,
            )
        }
        None => (None, None),
    };
    let data = data(message)?;
    let (collapse_key, android_priority) = android(message)?;
    let (apns_collapse_id, apns_priority) = apns(message)?;
    let size = title.as_ref().map_or(0, String::len)
        + body.as_ref().map_or(0, String::len)
        + data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    if size > MAX_PAYLOAD_BYTES {
        return Err(invalid_argument("Android message is too big"));
    }
    Ok(Parsed {
        token,
        title,
        body,
        data,
        collapse_key,
        android_priority,
        apns_collapse_id,
        apns_priority,
        validate_only,
    })
}

/// The message's one target, which must be a registration token.
fn target(message: &Map<String, Value>) -> Result<String, RpcError> {
    let targets: Vec<&str> = ["token", "topic", "condition"]
        .into_iter()
        .filter(|name| field(message, name).is_some())
        .collect();
    match targets.as_slice() {
        [] => Err(invalid_argument("Recipient of the message is not set.")),
        ["token"] => match string(message, "token", "message")? {
            Some(token) if !token.is_empty() => Ok(token),
            _ => Err(invalid_argument(
                "The registration token is not a valid FCM registration token",
            )),
        },
        [other] => Err(invalid_field(
            &format!("message.{other}"),
            "The FCM emulator delivers to registration tokens (message.token) only.",
        )),
        [first, second, ..] => Err(invalid_field(
            "message",
            &format!(
                "Invalid value at 'message' (oneof), oneof field 'target' is already set. \
                 Cannot set '{second}' after '{first}'"
            ),
        )),
    }
}

/// `message.data`: string values, no reserved keys.
fn data(message: &Map<String, Value>) -> Result<BTreeMap<String, String>, RpcError> {
    let Some(data) = field(message, "data") else {
        return Ok(BTreeMap::new());
    };
    let Some(data) = data.as_object() else {
        return Err(invalid_field(
            "message.data",
            "Invalid value at 'message.data': expected a map of strings.",
        ));
    };
    let mut strings = BTreeMap::new();
    for (i, (key, value)) in data.iter().enumerate() {
        let Value::String(value) = value else {
            let path = format!("message.data[{i}].value");
            return Err(invalid_field(
                &path,
                &format!("Invalid value at '{path}' (TYPE_STRING), {value}"),
            ));
        };
        let lower = key.to_ascii_lowercase();
        if ["from", "message_type", "notification"].contains(&lower.as_str())
            || lower.starts_with("google")
            || lower.starts_with("gcm")
        {
            return Err(invalid_argument(format!("Invalid data payload key: {key}")));
        }
        strings.insert(key.clone(), value.clone());
    }
    Ok(strings)
}

/// `message.android`: its collapse key and priority.
fn android(message: &Map<String, Value>) -> Result<(Option<String>, Option<String>), RpcError> {
    let Some(android) = field(message, "android") else {
        return Ok((None, None));
    };
    let android = object(
        android,
        "message.android",
        &[
            "collapse_key",
            "priority",
            "ttl",
            "restricted_package_name",
            "data",
            "notification",
            "fcm_options",
            "direct_boot_ok",
        ],
    )?;
    let collapse_key = string(android, "collapse_key", "message.android")?;
    let priority = string(android, "priority", "message.android")?;
    if let Some(priority) = &priority
        && priority != "NORMAL"
        && priority != "HIGH"
    {
        return Err(invalid_field(
            "message.android.priority",
            &format!(
                "Invalid value at 'message.android.priority' \
                 (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), \"{priority}\""
            ),
        ));
    }
    Ok((collapse_key, priority))
}

/// `message.apns`: its `apns-collapse-id` and `apns-priority` headers.
fn apns(message: &Map<String, Value>) -> Result<(Option<String>, Option<String>), RpcError> {
    let Some(apns) = field(message, "apns") else {
        return Ok((None, None));
    };
    let apns = object(
        apns,
        "message.apns",
        &["headers", "payload", "fcm_options", "live_activity_token"],
    )?;
    let Some(headers) = field(apns, "headers") else {
        return Ok((None, None));
    };
    let Some(headers) = headers.as_object() else {
        return Err(invalid_field(
            "message.apns.headers",
            "Invalid value at 'message.apns.headers': expected a map of strings.",
        ));
    };
    if let Some((name, _)) = headers.iter().find(|(_, v)| !v.is_string()) {
        return Err(invalid_field(
            "message.apns.headers",
            &format!("Invalid value at 'message.apns.headers' ({name}): expected a string."),
        ));
    }
    let collapse_id = string(headers, "apns-collapse-id", "message.apns.headers")?;
    let priority = string(headers, "apns-priority", "message.apns.headers")?;
    if collapse_id
        .as_ref()
        .is_some_and(|id| id.len() > MAX_APNS_COLLAPSE_ID_BYTES)
    {
        return Err(invalid_argument(
            "Invalid APNs headers: apns-collapse-id is longer than 64 bytes",
        ));
    }
    if priority.as_deref().is_some_and(|p| p != "5" && p != "10") {
        return Err(invalid_argument(
            "Invalid APNs headers: apns-priority must be 5 or 10",
        ));
    }
    Ok((collapse_id, priority))
}

/// The query of `GET /messages`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    token: Option<String>,
}

/// `GET /messages[?token=…]`: the delivered messages (to one token), oldest first.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ListQuery>,
) -> Json<Vec<ReceivedMessage>> {
    let recorded = shared.lock();
    Json(match query.token {
        Some(token) => recorded.messages_to(&token),
        None => recorded.messages.iter().cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names_have_their_proto3_json_camel_case_spelling() {
        assert_eq!(lower_camel("collapse_key"), "collapseKey");
        assert_eq!(
            lower_camel("restricted_package_name"),
            "restrictedPackageName"
        );
        assert_eq!(lower_camel("token"), "token");
        assert_eq!(lower_camel("apns-priority"), "apns-priority");
    }
}
