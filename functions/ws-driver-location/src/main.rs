//! `driver:location`: the assigned driver's position, rate-limited, with a fresh ETA, posted to
//! the order's room right after it is written (the fast path).
//!
//! Wiring only: the handler lives in `rnd-handlers`, the cold-start set-up in `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_posting_routes().await
}
