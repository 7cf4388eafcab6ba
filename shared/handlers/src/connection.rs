//! `$connect` and `$disconnect`.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::http::HeaderValue;
use chrono::{DateTime, TimeZone, Utc};
use rnd_domain::ports::{Connection, ConnectionStore};
use rnd_domain::protocol::SUBPROTOCOL;
use rnd_domain::rooms::initial_rooms;

use crate::context::{self, caller, header};
use crate::status_response;

/// `$connect`: stores the connection (id, user, role, connectedAt, source IP, user agent, TTL)
/// and joins it to its initial rooms ([`initial_rooms`]): `user:{userId}`, and `role:admin` for
/// an admin (no event goes to any other role's room, so no other role writes a membership
/// there).
///
/// Answers 200 (with `Sec-WebSocket-Protocol: rnd.v1` when the client offered any subprotocol, as
/// browsers require an answer then; never one of the offered entries, which may be the token), 401 when the event carries no authorizer context (misconfiguration: the
/// authorizer must guard `$connect`), 500 when the store fails — API Gateway then refuses the
/// connection, so nothing half-registered is left open.
pub async fn connect<S: ConnectionStore + ?Sized>(
    store: &S,
    event: &ApiGatewayWebsocketProxyRequest,
    now: DateTime<Utc>,
) -> ApiGatewayProxyResponse {
    let caller = match caller(event) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "$connect without authorizer context");
            return status_response(401);
        }
    };
    let ctx = &event.request_context;
    let connected_at = Utc
        .timestamp_millis_opt(ctx.connected_at)
        .single()
        .filter(|t| t.timestamp_millis() > 0)
        .unwrap_or(now);
    let connection = Connection {
        connection_id: caller.connection_id.clone(),
        user_id: caller.identity.actor.user_id.clone(),
        role: caller.identity.actor.role,
        name: caller.identity.name.clone(),
        connected_at,
        source_ip: ctx.identity.source_ip.clone(),
        user_agent: header(&event.headers, "user-agent").map(|s| s.chars().take(256).collect()),
        token_expires_at: caller.identity.expires_at,
        expires_at: Connection::expiry_for(connected_at),
    };
    let rooms = initial_rooms(&caller.identity.actor);
    match store.open_connection(&connection, &rooms).await {
        Ok(()) => {
            tracing::info!(
                connection_id = %connection.connection_id,
                user_id = %connection.user_id,
                role = %connection.role,
                "connected"
            );
            let mut response = status_response(200);
            if offered_a_subprotocol(event) {
                response.headers.insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_static(SUBPROTOCOL),
                );
            }
            response
        }
        Err(e) => {
            tracing::error!(connection_id = %connection.connection_id, error = &e as &dyn std::error::Error, "could not store the connection");
            status_response(500)
        }
    }
}

/// Whether the upgrade request offered any subprotocol (then the answer must name one).
fn offered_a_subprotocol(event: &ApiGatewayWebsocketProxyRequest) -> bool {
    header(&event.headers, "sec-websocket-protocol")
        .is_some_and(|offered| offered.split(',').any(|p| !p.trim().is_empty()))
}

/// `$disconnect`: removes the connection and all its memberships, keeping a session record
/// (duration) for analytics. Always answers 200: API Gateway ignores the answer, and a
/// connection the store no longer knows is already gone.
pub async fn disconnect<S: ConnectionStore + ?Sized>(
    store: &S,
    event: &ApiGatewayWebsocketProxyRequest,
    now: DateTime<Utc>,
) -> ApiGatewayProxyResponse {
    let ctx = &event.request_context;
    let Some(connection_id) = ctx
        .connection_id
        .as_deref()
        .and_then(|id| rnd_domain::ConnectionId::parse(id).ok())
    else {
        tracing::error!("$disconnect without a connection id");
        return status_response(200);
    };
    let at = context::request_time(event, now);
    match store.close_connection(&connection_id, at).await {
        Ok(Some(closed)) => {
            tracing::info!(
                connection_id = %connection_id,
                user_id = %closed.connection.user_id,
                role = %closed.connection.role,
                duration_ms = closed.duration().num_milliseconds(),
                rooms = closed.rooms.len(),
                disconnect_status_code = ctx.disconnect_status_code,
                disconnect_reason = ctx.disconnect_reason.as_deref().unwrap_or(""),
                "disconnected"
            );
        }
        Ok(None) => {
            tracing::info!(connection_id = %connection_id, "disconnect of an unknown connection")
        }
        Err(e) => {
            // TTL removes the rows within hours; the fan-out also removes connections that
            // answer 410. Report the failure so it is visible, but do not fail the event.
            tracing::error!(connection_id = %connection_id, error = &e as &dyn std::error::Error, "could not remove the connection");
        }
    }
    status_response(200)
}
