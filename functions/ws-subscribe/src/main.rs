//! `subscribe:order`: joins an order's room and answers with its tracking snapshot.
//!
//! Wiring only: the handler lives in `rnd-handlers`, the cold-start set-up in `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_routes().await
}
