//! `subscribe:order`: joins an order's room and answers with its tracking snapshot (replaying
//! the order's status updates after `sinceSeq` first, when asked).
//!
//! Wiring only: the handler lives in `rnd-handlers`, the cold-start set-up in `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_posting_routes().await
}
