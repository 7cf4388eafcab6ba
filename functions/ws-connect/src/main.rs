//! `$connect`: registers the connection and its user and role rooms.
//!
//! Wiring only: the handler lives in `rnd-handlers`, the cold-start set-up in `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_connect().await
}
