//! `$connect`: registers the connection in its user room (and an admin's in `role:admin`).
//!
//! Wiring only: the handler lives in `rnd-handlers`, the cold-start set-up in `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_connect().await
}
