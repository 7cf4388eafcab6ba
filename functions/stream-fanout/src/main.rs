//! The orders table's stream fan-out: turns order and live-row changes into WebSocket events
//! and posts them, once, to the connections of the rooms that should see them; reports what it
//! could not deliver as partial batch failures.
//!
//! Wiring only: the handler lives in `rnd-handlers` (`fanout`), the cold-start set-up in
//! `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_fanout().await
}
