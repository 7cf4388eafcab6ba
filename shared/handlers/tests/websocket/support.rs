//! Stores to run the handlers against, the event fixtures, and small helpers.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use chrono::{DateTime, TimeZone, Utc};
use rnd_domain::eta::OfflineEta;
use rnd_domain::ports::Store;
use rnd_domain::protocol::ServerMessage;
use rnd_handlers::routes::{RouteConfig, Routes};
use rnd_notifier_apigw::mock::MockManagementApi;
use serde_json::Value;

// Runs a scenario on both stores (`$name::sqlite`, `$name::dynamodb`).
pub use rnd_test_support::on_both_stores;

/// A fixture from `events/websocket/`, as JSON, to tweak before parsing.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../events/websocket/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A WebSocket proxy event from a fixture, parsed as AWS's types parse it.
pub fn ws_event(json: Value) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json).expect("fixture parses as an API Gateway WebSocket event")
}

/// An authorizer request from a fixture.
pub fn authorizer_event(name: &str) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    serde_json::from_value(fixture(name)).expect("fixture parses as an authorizer request")
}

/// The fixture with the caller replaced (as the authorizer would have described them).
pub fn as_caller(mut json: Value, user: &str, role: &str, connection: &str) -> Value {
    let ctx = &mut json["requestContext"];
    ctx["connectionId"] = connection.into();
    ctx["authorizer"]["principalId"] = user.into();
    ctx["authorizer"]["userId"] = user.into();
    ctx["authorizer"]["role"] = role.into();
    json
}

/// The fixture with another body.
pub fn with_body(mut json: Value, body: Value) -> Value {
    json["body"] = body.to_string().into();
    json
}

/// The fixture's request time.
pub fn request_time(json: &Value) -> DateTime<Utc> {
    let ms = json["requestContext"]["requestTimeEpoch"]
        .as_i64()
        .expect("requestTimeEpoch");
    Utc.timestamp_millis_opt(ms).single().expect("valid time")
}

/// Routes over `store` with the default settings, replaying nothing (as the functions of the
/// routes that never replay).
pub fn routes<S: Store + 'static>(store: Arc<S>) -> Routes<S> {
    Routes::new(
        store,
        Arc::new(OfflineEta::default()),
        RouteConfig::default(),
    )
}

/// Routes over `store` whose replays are posted to `api` (the mock Management API, through
/// the real notifier).
pub fn replaying_routes<S: Store + 'static>(store: Arc<S>, api: &MockManagementApi) -> Routes<S> {
    Routes::new(
        store,
        Arc::new(OfflineEta::default()),
        RouteConfig::default(),
    )
    .posting_through(Arc::new(api.notifier(Duration::from_secs(5))))
}

/// The server message in a proxy response body.
pub fn body_message(response: &aws_lambda_events::apigw::ApiGatewayProxyResponse) -> ServerMessage {
    let Some(aws_lambda_events::encodings::Body::Text(text)) = &response.body else {
        panic!("response has no text body: {response:?}")
    };
    serde_json::from_str(text).expect("body is a server message")
}
