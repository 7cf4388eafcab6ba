//! RND Realtime's Lambda handlers. Each takes the event exactly as AWS sends it (the
//! `aws_lambda_events` types), calls the domain through its ports, and returns the response AWS
//! expects. The function crates' `main.rs` only wire them to the runtime; the local stack calls
//! the very same functions with the same event JSON.
//!
//! # Layout
//! - [`authorizer`]: the `$connect` REQUEST authorizer (JWT → Allow with context, or Deny).
//! - [`connection`]: `$connect` and `$disconnect`.
//! - [`routes`]: `subscribe:order`, `unsubscribe:order`, `driver:location` and `$default`
//!   (`ping`, `hello`, errors), answering as the route response.
//! - [`routed_eta`]: the ETA along a routing provider's route (route rarely, follow the kept
//!   route, budget, breaker, fall back to the offline estimate).
//! - [`context`]: the caller as the authorizer described it, read back from a proxy event.
//! - [`fanout`]: the orders table's stream fan-out (stream records → WebSocket events posted
//!   to their rooms, partial batch failures, EMF metrics).
//! - `stream`: what both stream consumers share (decoding a record, the partial batch
//!   response, backoff, EMF lines).
//! - [`push`]: the stream's second consumer (stream records → push notifications to the
//!   recipients' devices, pruning, the push ledger, EMF metrics).

pub mod authorizer;
pub mod connection;
pub mod context;
pub mod fanout;
pub mod push;
pub mod routed_eta;
pub mod routes;
mod stream;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use rnd_domain::protocol::ServerMessage;

/// A `200` proxy response whose body is `message` (API Gateway sends it to the client as the
/// route response).
pub fn message_response(message: &ServerMessage) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    response.body = Some(Body::Text(message.to_json()));
    response
}

/// A proxy response with `status` and no body (for `$connect` / `$disconnect`).
pub fn status_response(status: i64) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response
}
