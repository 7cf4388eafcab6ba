//! `resume`: replays every event the caller's inbox kept after its cursor (posted to its
//! connection, oldest first), then answers `resumed` with the newest cursor and whether
//! continuity held.
//!
//! Wiring only: the handler lives in `rnd-handlers`, the cold-start set-up in `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_posting_routes().await
}
