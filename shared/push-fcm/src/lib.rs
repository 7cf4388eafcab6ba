//! The [`PushSender`] port over Firebase Cloud Messaging HTTP v1: [`FcmSender`] sends one
//! notification to one device with `POST {endpoint}/v1/projects/{project}/messages:send`,
//! authenticated as a Google service account ([`ServiceAccount`], parsed from its JSON key
//! file), and says how a failed send failed (device gone, throttled, unavailable, refused) so
//! the caller knows whether to prune the device, retry or give up.
//!
//! The access token comes from the service account's OAuth 2.0 JWT bearer grant at its
//! `token_uri`; it is cached for its lifetime and shared by every send (concurrent sends wait
//! for one fetch), refreshed shortly before it expires, and once more when FCM answers 401,
//! after which the send is retried once; a second 401 is [`PushError::Unauthorized`]. Apart
//! from that, a send is one request: the caller owns the retry policy.
//!
//! The endpoint is `https://fcm.googleapis.com` ([`DEFAULT_ENDPOINT`]) or any other URL, such
//! as the FCM emulator's (`rnd-fcm-emulator`) in tests and in the local stack; the token
//! endpoint is the service account's `token_uri`. HTTPS uses rustls with the `ring` provider
//! and the system's root certificates; plain `http` works too.
//!
//! # Layout
//! - [`FcmSender`], [`FcmSetupError`], the constants (this file).
//! - `account`: [`ServiceAccount`] and [`ServiceAccountError`].
//! - `token`: the assertion, the token request and the shared token cache.
//! - `message`: a [`PushMessage`] as FCM v1's request body.
//! - `error`: FCM's error answers to [`PushError`] (the table of what becomes what).
//! - The HTTP client (timeout, `Retry-After`) is `rnd-http-client`'s.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hyper::Uri;
use hyper::body::Bytes;
use rnd_domain::push::{PushError, PushMessage, PushSender};

mod account;
mod error;
mod message;
mod token;

pub use account::{ServiceAccount, ServiceAccountError};

use error::Outcome;
use rnd_http_client::HttpClient;
use token::{AccessToken, TokenError, TokenSource};

/// FCM's endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";

/// How long one request (to FCM or to the token endpoint), connecting included, may take
/// before it counts as unavailable. FCM answers in well under a second; a request that hangs
/// must not eat the function's time budget.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The OAuth scope the access token is requested for.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// Why an [`FcmSender`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum FcmSetupError {
    /// The endpoint is not an absolute http(s) URL.
    #[error("the FCM endpoint is not an absolute http(s) URL")]
    Endpoint(#[source] Option<hyper::http::uri::InvalidUri>),
    /// The system's root certificates could not be loaded (none found).
    #[error("the system's root certificates could not be loaded")]
    RootCertificates(#[source] std::io::Error),
}

/// Sends push notifications through FCM HTTP v1 as one service account.
///
/// Cheap to clone: clones share the HTTP connection pool and the access token. Build it once
/// per process (a Lambda's cold start). Its `Debug` shows no key and no token.
#[derive(Debug, Clone)]
pub struct FcmSender {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    send_uri: Uri,
    http: HttpClient,
    tokens: TokenSource,
}

impl FcmSender {
    /// A sender for `account`'s project to `endpoint` ([`DEFAULT_ENDPOINT`], or an emulator's
    /// base URL), each request bounded by `request_timeout` ([`DEFAULT_REQUEST_TIMEOUT`]).
    /// Makes no request: the first send fetches the access token.
    ///
    /// Fails when `endpoint` is not an http(s) URL or the system's root certificates cannot
    /// be loaded.
    pub fn new(
        account: ServiceAccount,
        endpoint: &str,
        request_timeout: Duration,
    ) -> Result<Self, FcmSetupError> {
        let send_uri: Uri = format!(
            "{}/v1/projects/{}/messages:send",
            endpoint.trim_end_matches('/'),
            account.project_id()
        )
        .parse()
        .map_err(|e| FcmSetupError::Endpoint(Some(e)))?;
        if !matches!(send_uri.scheme_str(), Some("https" | "http")) || send_uri.host().is_none() {
            return Err(FcmSetupError::Endpoint(None));
        }
        let http = HttpClient::new(request_timeout).map_err(FcmSetupError::RootCertificates)?;
        Ok(Self {
            inner: Arc::new(Inner {
                send_uri,
                tokens: TokenSource::new(account, http.clone()),
                http,
            }),
        })
    }

    /// The service account it sends as.
    pub fn account(&self) -> &ServiceAccount {
        self.inner.tokens.account()
    }

    /// How many access-token requests it has completed so far (the push function's
    /// `TokenRefreshes` metric is the difference over a batch).
    pub fn token_fetches(&self) -> u64 {
        self.inner.tokens.fetches()
    }

    /// One `messages:send` of `body` with `token`.
    async fn post(&self, token: &AccessToken, body: Bytes) -> Result<Outcome, PushError> {
        let answer = self
            .inner
            .http
            .post(
                &self.inner.send_uri,
                "application/json",
                Some(token.authorization()),
                body,
            )
            .await
            .map_err(|e| PushError::Unavailable {
                retry_after: None,
                source: Box::new(e),
            })?;
        error::classify(answer)
    }
}

#[async_trait]
impl PushSender for FcmSender {
    /// One `messages:send` of `message` (two when FCM refuses the access token: a fresh one
    /// is fetched and the send made once more).
    ///
    /// Fails as the `error` module's table says: [`PushError::Unregistered`] (404
    /// `UNREGISTERED`, 400 about the token), [`PushError::Throttled`] (429),
    /// [`PushError::Unavailable`] (5xx, timeouts, connection failures, a token endpoint that
    /// failed), [`PushError::Unauthorized`] (401 twice, 403, a token endpoint that refused
    /// the grant), [`PushError::Rejected`] (any other 4xx, `SENDER_ID_MISMATCH`,
    /// `THIRD_PARTY_AUTH_ERROR`).
    async fn send(&self, message: &PushMessage) -> Result<(), PushError> {
        let body = message::request_body(message);
        let tokens = &self.inner.tokens;
        let token = tokens.current().await.map_err(token_failure)?;
        if let Outcome::Delivered = self.post(&token, body.clone()).await? {
            return Ok(());
        }
        tracing::info!("FCM refused the access token; fetching a new one and sending again");
        let fresh = tokens.replace(&token).await.map_err(token_failure)?;
        match self.post(&fresh, body).await? {
            Outcome::Delivered => Ok(()),
            Outcome::Unauthenticated(refusal) => Err(PushError::Unauthorized(Box::new(refusal))),
        }
    }
}

/// No access token could be had: the source of a [`PushError`]. Shared by the sends that
/// waited on the same fetch.
#[derive(Debug, thiserror::Error)]
#[error("no FCM access token")]
struct NoAccessToken(#[source] Arc<TokenError>);

/// A failed token fetch as a send's failure: unavailable when waiting may help, else
/// unauthorized.
fn token_failure(failure: Arc<TokenError>) -> PushError {
    if failure.is_transient() {
        PushError::Unavailable {
            retry_after: failure.retry_after(),
            source: Box::new(NoAccessToken(failure)),
        }
    } else {
        PushError::Unauthorized(Box::new(NoAccessToken(failure)))
    }
}
