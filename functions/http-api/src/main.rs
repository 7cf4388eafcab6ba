//! `http-api`: the HTTP API (order tracking, lifecycle, profiles) behind API Gateway's HTTP API.
//!
//! Wiring only: the Router lives in this crate's library, the cold-start set-up (DynamoDB
//! store, JWT verifier from SSM) in `rnd-lambda`.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rnd_lambda::init_tracing();
    let config = rnd_lambda::aws_config().await;
    let store = rnd_lambda::dynamo_store(&config)?;
    let verifier = Arc::new(rnd_lambda::verifier(&config).await?);
    lambda_http::run(http_api::router(http_api::AppState::new(store, verifier))).await
}
