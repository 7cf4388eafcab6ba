//! The API Gateway WebSocket events the local stack hands to the handlers, built as JSON in
//! exactly the shape AWS sends (see `events/websocket/`) and parsed into the
//! `aws_lambda_events` types, so the handlers cannot tell the difference.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The API id the local stack reports (AWS ids are ten lower-case letters and digits).
pub(crate) const API_ID: &str = "rndlocal01";
/// The stage every event and URL uses.
pub(crate) const STAGE: &str = "realtime";
/// The region in ARNs.
const REGION: &str = "us-east-1";
/// The account in ARNs.
const ACCOUNT: &str = "000000000000";

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// An API-Gateway-like id: 11 random bytes in base64 (16 characters, ending in `=`), the
/// shape of connection ids, request ids and message ids.
pub(crate) fn new_id() -> String {
    let mut id: String = (0..14)
        .map(|_| char::from(BASE64[fastrand::usize(..64)]))
        .collect();
    // The last character of 11 bytes carries 4 bits: its two low bits are zero.
    id.push(char::from(BASE64[fastrand::usize(..16) * 4]));
    id.push('=');
    id
}

/// What API Gateway knows about a connection, repeated in every event of it.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionContext {
    /// The connection id.
    pub(crate) connection_id: String,
    /// When the upgrade request arrived.
    pub(crate) connected_at: DateTime<Utc>,
    /// The client's address.
    pub(crate) source_ip: String,
    /// The client's `User-Agent`, if it sent one.
    pub(crate) user_agent: Option<String>,
    /// The `Host` the client used.
    pub(crate) domain_name: String,
    /// The authorizer's context plus `principalId` and `integrationLatency` (set once the
    /// authorizer allowed the connection).
    pub(crate) authorizer: Option<Value>,
}

/// The upgrade request's headers and query, in order, names as received.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpgradeRequest {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) query: Vec<(String, String)>,
}

fn single_and_multi(pairs: &[(String, String)]) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in pairs {
        single.insert(name.clone(), Value::String(value.clone()));
        match multi.get_mut(name) {
            Some(Value::Array(values)) => values.push(Value::String(value.clone())),
            _ => {
                multi.insert(name.clone(), json!([value]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// API Gateway's `requestTime` of `at` (`04/Dec/2026:23:00:00 +0000`). It names whole seconds:
/// each thread formats it once per second and hands out copies (formatting it with `chrono` for
/// every message was 1 % of the stack's CPU under `make bench-knee`).
fn request_time(at: DateTime<Utc>) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, String)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((second, text)) if *second == at.timestamp() => text.clone(),
        _ => {
            let text = at.format("%d/%b/%Y:%H:%M:%S +0000").to_string();
            *last = Some((at.timestamp(), text.clone()));
            text
        }
    })
}

/// The `requestContext` every WebSocket event carries.
fn request_context(
    conn: &ConnectionContext,
    route_key: &str,
    event_type: &str,
    at: DateTime<Utc>,
) -> Map<String, Value> {
    let request_id = new_id();
    let mut identity = Map::new();
    if let Some(agent) = &conn.user_agent {
        identity.insert("userAgent".into(), Value::String(agent.clone()));
    }
    identity.insert("sourceIp".into(), Value::String(conn.source_ip.clone()));
    let mut ctx = json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(at),
        "messageDirection": "IN",
        "stage": STAGE,
        "connectedAt": conn.connected_at.timestamp_millis(),
        "requestTimeEpoch": at.timestamp_millis(),
        "identity": identity,
        "requestId": request_id,
        "domainName": conn.domain_name,
        "connectionId": conn.connection_id,
        "apiId": API_ID,
    });
    if let Some(authorizer) = &conn.authorizer {
        ctx["authorizer"] = authorizer.clone();
    }
    match ctx {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// The headers API Gateway adds to the client's upgrade request.
fn forwarded_headers(conn: &ConnectionContext, request: &UpgradeRequest) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter(|(name, _)| {
            !["connection", "upgrade", "x-forwarded-for"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
        })
        .cloned()
        .collect();
    headers.push(("X-Forwarded-For".into(), conn.source_ip.clone()));
    headers.push(("X-Forwarded-Port".into(), "443".into()));
    headers.push(("X-Forwarded-Proto".into(), "https".into()));
    headers
}

/// The fields the authorizer's event and the `$connect` event share: the request's headers
/// and query (single- and multi-valued) and the `$connect` request context.
fn connect_fields(
    conn: &ConnectionContext,
    request: &UpgradeRequest,
    at: DateTime<Utc>,
) -> Map<String, Value> {
    let (headers, multi_headers) = single_and_multi(&forwarded_headers(conn, request));
    let (query, multi_query) = single_and_multi(&request.query);
    let mut fields = Map::new();
    fields.insert("headers".into(), headers);
    fields.insert("multiValueHeaders".into(), multi_headers);
    fields.insert("queryStringParameters".into(), query);
    fields.insert("multiValueQueryStringParameters".into(), multi_query);
    fields.insert(
        "requestContext".into(),
        Value::Object(request_context(conn, "$connect", "CONNECT", at)),
    );
    fields
}

/// The REQUEST authorizer's event (like `events/websocket/authorizer-query-token.json`).
pub(crate) fn authorizer_request(
    conn: &ConnectionContext,
    request: &UpgradeRequest,
    at: DateTime<Utc>,
) -> Value {
    let mut event = connect_fields(conn, request, at);
    if let Some(Value::Object(ctx)) = event.get_mut("requestContext") {
        ctx.remove("authorizer");
    }
    event.insert("type".into(), "REQUEST".into());
    event.insert(
        "methodArn".into(),
        format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/$connect").into(),
    );
    event.insert("stageVariables".into(), json!({}));
    Value::Object(event)
}

/// The `$connect` proxy event (like `events/websocket/connect.json`); `conn.authorizer` must
/// be set.
pub(crate) fn connect_event(
    conn: &ConnectionContext,
    request: &UpgradeRequest,
    at: DateTime<Utc>,
) -> Value {
    let mut event = connect_fields(conn, request, at);
    event.insert("isBase64Encoded".into(), false.into());
    Value::Object(event)
}

/// A MESSAGE event of `route_key` carrying `body` (like `events/websocket/subscribe-order.json`).
pub(crate) fn message_event(
    conn: &ConnectionContext,
    route_key: &str,
    body: &str,
    at: DateTime<Utc>,
) -> Value {
    let mut ctx = request_context(conn, route_key, "MESSAGE", at);
    ctx.insert("messageId".into(), Value::String(new_id()));
    json!({
        "requestContext": ctx,
        "body": body,
        "isBase64Encoded": false,
    })
}

/// The MESSAGE events of one connection, as [`message_event`] builds them: what API Gateway
/// repeats in every one (the connection, its identity and authorizer context) is built and
/// parsed once, and each message sets only its own route, ids, time and body. Building and
/// parsing each event whole was a tenth of the stack's instructions per location update.
#[derive(Debug)]
pub(crate) struct MessageEvents {
    event: ApiGatewayWebsocketProxyRequest,
}

impl MessageEvents {
    /// The events of the connection `conn` (whose `authorizer` is set).
    pub(crate) fn new(conn: &ConnectionContext) -> Result<Self, serde_json::Error> {
        let event = serde_json::from_value(message_event(conn, "$default", "", Utc::now()))?;
        Ok(Self { event })
    }

    /// The event of a message to `route_key` carrying `body`, received `at`.
    pub(crate) fn next(
        &mut self,
        route_key: &str,
        body: String,
        at: DateTime<Utc>,
    ) -> &ApiGatewayWebsocketProxyRequest {
        let ctx = &mut self.event.request_context;
        let request_id = new_id();
        if ctx.route_key.as_deref() != Some(route_key) {
            ctx.route_key = Some(route_key.to_owned());
        }
        ctx.extended_request_id = Some(request_id.clone());
        ctx.request_id = Some(request_id);
        ctx.request_time = Some(request_time(at));
        ctx.request_time_epoch = at.timestamp_millis();
        ctx.message_id = Some(new_id());
        self.event.body = Some(body);
        &self.event
    }
}

/// The `$disconnect` event (like `events/websocket/disconnect.json`).
pub(crate) fn disconnect_event(
    conn: &ConnectionContext,
    status_code: u16,
    reason: &str,
    at: DateTime<Utc>,
) -> Value {
    let mut ctx = request_context(conn, "$disconnect", "DISCONNECT", at);
    ctx.insert("disconnectStatusCode".into(), status_code.into());
    ctx.insert("disconnectReason".into(), Value::String(reason.to_owned()));
    let host = vec![("Host".to_owned(), conn.domain_name.clone())];
    let extra = ["x-api-key", "X-Forwarded-For", "x-restapi"]
        .into_iter()
        .map(|h| (h.to_owned(), String::new()));
    let (headers, multi_headers) =
        single_and_multi(&host.into_iter().chain(extra).collect::<Vec<_>>());
    json!({
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "requestContext": ctx,
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../events/websocket/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn conn() -> ConnectionContext {
        ConnectionContext {
            connection_id: new_id(),
            connected_at: Utc::now(),
            source_ip: "127.0.0.1".into(),
            user_agent: Some("test".into()),
            domain_name: "localhost:9001".into(),
            authorizer: Some(json!({"principalId": "customer-1", "userId": "customer-1",
                "role": "customer", "name": "", "exp": 4102444800_i64, "integrationLatency": 0})),
        }
    }

    /// The sorted keys of an object.
    fn keys(value: &Value) -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn ids_look_like_api_gateway_ids() {
        // GIVEN / WHEN many generated ids
        for _ in 0..100 {
            let id = new_id();
            // THEN each is 16 base64 characters ending in `=` and a valid connection id
            assert_eq!(id.len(), 16);
            assert!(id.ends_with('='));
            rnd_domain::ConnectionId::parse(&id).unwrap();
        }
    }

    #[test]
    fn events_have_the_fixtures_shape_and_parse_as_aws_types() {
        // GIVEN a connection and an upgrade request with a token
        let conn = conn();
        let request = UpgradeRequest {
            headers: vec![("Host".into(), "localhost:9001".into())],
            query: vec![("token".into(), "t".into())],
        };
        let now = Utc::now();
        // WHEN each event is built
        let authorizer = authorizer_request(&conn, &request, now);
        let connect = connect_event(&conn, &request, now);
        let message = message_event(&conn, "subscribe:order", "{}", now);
        let disconnect = disconnect_event(&conn, 1001, "Going away", now);
        // THEN each has the top-level and requestContext keys of its fixture
        for (built, name) in [
            (&authorizer, "authorizer-query-token"),
            (&connect, "connect"),
            (&message, "subscribe-order"),
            (&disconnect, "disconnect"),
        ] {
            let expected = fixture(name);
            assert_eq!(keys(built), keys(&expected), "{name}");
            assert_eq!(
                keys(&built["requestContext"]),
                keys(&expected["requestContext"]),
                "{name} requestContext"
            );
        }
        // AND they parse as the types the handlers take
        serde_json::from_value::<ApiGatewayCustomAuthorizerRequestTypeRequest>(authorizer).unwrap();
        for event in [connect, message, disconnect] {
            serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(event).unwrap();
        }
    }

    /// `next`'s event of `conn` for `body` to `route` at `at`, checked against the one built
    /// whole for it (its own ids aside).
    fn next_is_built_whole(
        (conn, events): (&ConnectionContext, &mut MessageEvents),
        route: &str,
        body: &str,
        at: DateTime<Utc>,
    ) {
        let event = serde_json::to_value(events.next(route, body.into(), at)).unwrap();
        let mut whole: Value = serde_json::to_value(
            serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(message_event(
                conn, route, body, at,
            ))
            .unwrap(),
        )
        .unwrap();
        for id in ["requestId", "extendedRequestId", "messageId"] {
            assert_ne!(event["requestContext"][id], Value::Null, "{id}");
            whole["requestContext"][id] = event["requestContext"][id].clone();
        }
        assert_eq!(event, whole, "{route} at {at}");
        assert_eq!(
            event["requestContext"]["requestId"],
            event["requestContext"]["extendedRequestId"]
        );
    }

    #[test]
    fn request_time_names_the_second_of_each_instant_in_api_gateways_form() {
        // GIVEN instants in one second, in the next, minutes later, and back in the first
        let start = DateTime::from_timestamp_millis(1_764_889_199_250).unwrap();
        for ms in [0, 500, 749, 750, 1_749, 200_000, 0, -1_000] {
            let at = start + chrono::Duration::milliseconds(ms);
            // WHEN each is written as a requestTime
            // THEN it is that instant's second, as API Gateway writes it
            assert_eq!(
                request_time(at),
                at.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
                "{at}"
            );
        }
        assert_eq!(request_time(start), "04/Dec/2025:22:59:59 +0000");
    }

    #[test]
    fn a_connections_message_events_are_built_whole_for_each_message() {
        // GIVEN a connection's message events, after a first message
        let conn = conn();
        let mut events = MessageEvents::new(&conn).unwrap();
        let start = DateTime::from_timestamp_millis(1_764_889_199_250).unwrap();
        events.next("driver:location", "{\"action\":\"x\"}".into(), start);
        let body = r#"{"action":"subscribe:order","orderId":"o-1"}"#;
        // WHEN the next messages arrive: to another route in the same second, to the same
        // route in the same second, at the next second (its last millisecond), minutes later,
        // and back at the first second
        let later = |ms: i64| start + chrono::Duration::milliseconds(ms);
        // THEN each event is the one built whole for it, its requestTime that of its own second
        next_is_built_whole((&conn, &mut events), "subscribe:order", body, later(500));
        next_is_built_whole((&conn, &mut events), "subscribe:order", body, later(700));
        next_is_built_whole((&conn, &mut events), "$default", "{}", later(1_749));
        next_is_built_whole(
            (&conn, &mut events),
            "driver:location",
            body,
            later(200_000),
        );
        next_is_built_whole((&conn, &mut events), "subscribe:order", body, start);
    }
}
