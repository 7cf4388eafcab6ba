//! The orders table's second stream consumer: turns order changes into push notifications to
//! the devices of the users they concern (FCM HTTP v1), prunes devices FCM no longer knows,
//! and keeps a ledger so a retried batch pushes nothing twice.
//!
//! Wiring only: the handler lives in `rnd-handlers` (`push`), the cold-start set-up (the FCM
//! service account from SSM, the on-failure queue) in `rnd-lambda`.

#[tokio::main]
async fn main() -> Result<(), rnd_lambda::lambda_runtime::Error> {
    rnd_lambda::serve_push().await
}
