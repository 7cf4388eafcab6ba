//! The caller, as the authorizer described it in `requestContext.authorizer`.

use std::collections::HashMap;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::{DateTime, TimeZone, Utc};
use rnd_domain::identity::{Actor, Identity, Role};
use rnd_domain::ids::{ConnectionId, UserId};
use serde_json::Value;

/// Keys of the authorizer context.
pub mod keys {
    /// The user id (`sub`).
    pub const USER_ID: &str = "userId";
    /// The role.
    pub const ROLE: &str = "role";
    /// The display name (empty when the token had none).
    pub const NAME: &str = "name";
    /// The token's expiry, epoch seconds.
    pub const EXP: &str = "exp";
}

/// Why the event does not describe a caller. Means the API is misconfigured (a route without
/// the authorizer's context), never the client's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// `requestContext.connectionId` is missing or invalid.
    #[error("the event has no valid connection id")]
    NoConnection,
    /// The authorizer context is missing a field or has an invalid one.
    #[error("the authorizer context has no valid {0}")]
    BadField(&'static str),
}

/// The connection and identity an event comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Who, with what role, until when.
    pub identity: Identity,
}

fn text(fields: &HashMap<String, Value>, key: &'static str) -> Option<String> {
    match fields.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads the connection id and the authorizer's context from a WebSocket proxy event.
///
/// Fails when the connection id or the `userId`, `role` or `exp` context fields are missing or
/// invalid.
pub fn caller(event: &ApiGatewayWebsocketProxyRequest) -> Result<Caller, ContextError> {
    let ctx = &event.request_context;
    let connection_id = ctx
        .connection_id
        .as_deref()
        .and_then(|id| ConnectionId::parse(id).ok())
        .ok_or(ContextError::NoConnection)?;
    let fields = &ctx.authorizer.fields;
    let user_id = text(fields, keys::USER_ID)
        .and_then(|s| UserId::parse(s).ok())
        .ok_or(ContextError::BadField(keys::USER_ID))?;
    let role: Role = text(fields, keys::ROLE)
        .and_then(|s| s.parse().ok())
        .ok_or(ContextError::BadField(keys::ROLE))?;
    let expires_at: DateTime<Utc> = text(fields, keys::EXP)
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
        .ok_or(ContextError::BadField(keys::EXP))?;
    let name = text(fields, keys::NAME).filter(|n| !n.trim().is_empty());
    Ok(Caller {
        connection_id,
        identity: Identity {
            actor: Actor::new(user_id, role),
            name,
            expires_at,
        },
    })
}

/// The time API Gateway received the request (`requestTimeEpoch`, ms), or `fallback`.
pub fn request_time(
    event: &ApiGatewayWebsocketProxyRequest,
    fallback: DateTime<Utc>,
) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(event.request_context.request_time_epoch)
        .single()
        .filter(|t| t.timestamp_millis() > 0)
        .unwrap_or(fallback)
}

/// Looks a header up case-insensitively.
pub fn header<'a>(headers: &'a aws_lambda_events::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
