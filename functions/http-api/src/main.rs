//! `http-api`: the HTTP API (order tracking, lifecycle, profiles) behind API Gateway's HTTP API.
//!
//! Wiring only: the Router lives in `rnd-http-api`, the cold-start set-up (DynamoDB store, JWT
//! verifier from SSM) in `rnd-lambda`; `lambda_http` runs the one with the other.

use rnd_http_api::{AppState, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rnd_lambda::init_tracing();
    let config = rnd_lambda::aws_config().await;
    let store = rnd_lambda::dynamo_store(&config)?;
    let verifier = rnd_lambda::verifier(&config).await?;
    let state = AppState::new(store, verifier)
        .with_driver_access(rnd_domain::visibility::DriverAccess::from_env())
        .with_order_limit(
            rnd_domain::limits::Limit::ORDERS_PER_CUSTOMER.from_env("ORDERS_PER_CUSTOMER_PER_HOUR"),
        );
    // lambda_http's adapter under rnd-lambda's runner: each request in the invocation span
    // that gives its log lines their request id, ARN and cold start.
    rnd_lambda::run(lambda_http::Adapter::from(router(state))).await
}
