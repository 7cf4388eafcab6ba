//! The [`Notifier`] port over the API Gateway Management API: [`ApiGatewayNotifier`] sends a
//! message to one WebSocket connection with `PostToConnection`, using the official
//! `aws-sdk-apigatewaymanagement` client, and says how a failed post failed (gone, throttled,
//! unavailable, refused) so the caller knows whether to forget the connection, retry or give
//! up.
//!
//! The client is built once per cold start ([`ApiGatewayNotifier::from_sdk_config`]) against
//! the API's management endpoint: `https://{domainName}/{stage}` ([`management_endpoint`]) in
//! AWS, or an override URL (the local stack, tests). The SDK's own retries are switched off:
//! the caller (the fan-out) retries with jittered backoff, counts the retries and bounds them.
//!
//! # Layout
//! - [`ApiGatewayNotifier`], [`management_endpoint`]: the adapter (this file).
//! - `error`: SDK errors to [`NotifyError`](rnd_domain::ports::NotifyError).
//! - [`mock`] (feature `test-support`): [`mock::MockManagementApi`], an HTTP server that speaks
//!   the Management API, records posts and answers 410 / 429 / 5xx on demand.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use rnd_domain::ids::ConnectionId;
use rnd_domain::ports::{Notifier, NotifyError};

mod error;
#[cfg(feature = "test-support")]
pub mod mock;

/// How long one `PostToConnection` may take (connecting included) before it counts as
/// unavailable. API Gateway answers in milliseconds; a post that hangs must not eat the
/// Lambda's time budget.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// The management endpoint of a WebSocket API stage: `https://{domainName}/{stage}` (the
/// `domainName` and `stage` of the API's events, or of a custom domain and its mapping).
pub fn management_endpoint(domain_name: &str, stage: &str) -> String {
    format!(
        "https://{}/{}",
        domain_name.trim_end_matches('/'),
        stage.trim_matches('/')
    )
}

/// Posts to WebSocket connections through the API Gateway Management API.
///
/// Cheap to clone (the SDK client is an `Arc` inside).
#[derive(Debug, Clone)]
pub struct ApiGatewayNotifier {
    client: Client,
}

impl ApiGatewayNotifier {
    /// A notifier using `client` exactly as it is configured (endpoint, retries, timeouts).
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A notifier posting to `endpoint` (see [`management_endpoint`], or an override URL) with
    /// the region and credentials of `config`. The SDK's retries are off (the caller retries
    /// and counts), and each attempt, connecting included, is bounded by `attempt_timeout`.
    /// Makes no request.
    pub fn from_sdk_config(
        config: &aws_config::SdkConfig,
        endpoint: &str,
        attempt_timeout: Duration,
    ) -> Self {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(config)
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(attempt_timeout)
                    .operation_attempt_timeout(attempt_timeout)
                    .build(),
            )
            .build();
        Self::new(Client::from_conf(conf))
    }

    /// The SDK client this notifier uses.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl Notifier for ApiGatewayNotifier {
    /// One `PostToConnection` of `payload` to `connection`.
    ///
    /// Fails with [`NotifyError::Gone`] on 410 (`GoneException`), [`NotifyError::Throttled`] on
    /// 429 (`LimitExceededException`, throttling), [`NotifyError::Unavailable`] on 5xx,
    /// timeouts and connection failures, and [`NotifyError::Rejected`] on anything else (413
    /// `PayloadTooLargeException`, 403 `ForbiddenException`, a request that cannot be built).
    /// The SDK error is kept as the source of the last two.
    async fn post(&self, connection: &ConnectionId, payload: &str) -> Result<(), NotifyError> {
        self.client
            .post_to_connection()
            .connection_id(connection.as_str())
            .data(Blob::new(payload.as_bytes()))
            .send()
            .await
            .map(|_| ())
            .map_err(error::classify)
    }

    /// One `DeleteConnection`: API Gateway closes the socket and runs `$disconnect`. Fails as a
    /// post does (410 `GoneException` is [`NotifyError::Gone`]).
    async fn disconnect(&self, connection: &ConnectionId) -> Result<(), NotifyError> {
        self.client
            .delete_connection()
            .connection_id(connection.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(error::classify_delete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_domain_and_the_stage() {
        assert_eq!(
            management_endpoint("abc123def4.execute-api.us-east-1.amazonaws.com", "prod"),
            "https://abc123def4.execute-api.us-east-1.amazonaws.com/prod"
        );
        assert_eq!(
            management_endpoint("ws.example.com/", "/dev/"),
            "https://ws.example.com/dev"
        );
    }
}
