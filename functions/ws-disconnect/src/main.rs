//! `$disconnect`: removes the connection and its memberships, keeps its session for analytics.
//!
//! Wiring only: the handler lives in `rnd-handlers`, the cold-start set-up in `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_disconnect().await
}
