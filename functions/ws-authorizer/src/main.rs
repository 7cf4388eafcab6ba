//! The `$connect` REQUEST authorizer: verifies the JWT, answers Allow with the caller or Deny.
//!
//! Wiring only: the handler lives in `rnd-handlers`, the cold-start set-up in `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_authorizer().await
}
