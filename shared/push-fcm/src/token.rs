//! OAuth 2.0 access tokens for FCM: the service account's JWT bearer grant (RFC 7523) and the
//! cache every send shares.
//!
//! The grant is one form POST to the account's `token_uri` with an RS256 assertion (`iss` the
//! account's email, `scope` FCM's, `aud` the `token_uri`, one hour from `iat` to `exp`, `kid`
//! the key's id) signed with `jsonwebtoken`, which the workspace already builds with its pure
//! Rust backend. An OAuth crate (`gcp_auth`, `yup-oauth2`) would bring its own HTTP and TLS
//! stack, and none lets us drop one cached token when FCM refuses it, which the 401 path
//! needs.
//!
//! [`TokenSource`] caches the token for its lifetime and fetches a new one [`refresh_after`]
//! (5 minutes before it expires, halfway for short-lived ones), or when FCM refused the cached
//! one. The cache is behind a tokio `Mutex` held across the fetch, so concurrent sends wait for
//! one fetch and share its token, or its failure. A proactive refresh that fails falls back on
//! the cached token while it has not expired, trying again at most every
//! [`REFRESH_RETRY_INTERVAL`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use crate::FCM_SCOPE;
use crate::account::ServiceAccount;
use rnd_http_client::{HttpClient, TransportError};

/// The grant type of a service account's token request.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an assertion is valid (Google's maximum).
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// How long before its expiry a token is replaced (at most half its lifetime).
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// While a refresh fails and the current token still works, how often to try again.
const REFRESH_RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// When to refresh a token that lives `lifetime` from its fetch: [`REFRESH_MARGIN`] before it
/// expires, or halfway through when it lives less than twice that.
pub(crate) fn refresh_after(lifetime: Duration) -> Duration {
    lifetime - REFRESH_MARGIN.min(lifetime / 2)
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// The token endpoint refused the grant (`invalid_grant`, `invalid_scope`, …; 4xx): the
    /// account, its key or its configuration is wrong.
    #[error("the token endpoint refused the grant ({status}: {error}: {description})")]
    Refused {
        status: u16,
        error: String,
        description: String,
    },
    /// The token endpoint failed (429, 5xx): it may work later.
    #[error("the token endpoint answered {status}")]
    Failed {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// A 200 whose body is not a bearer token.
    #[error("the token endpoint's answer is not a bearer token")]
    Malformed(#[source] Option<serde_json::Error>),
    /// The assertion could not be signed.
    #[error("the assertion could not be signed")]
    Signing(#[source] jsonwebtoken::errors::Error),
    /// The token endpoint could not be reached in time.
    #[error("the token endpoint could not be reached")]
    Transport(#[source] TransportError),
}

impl TokenError {
    /// True when waiting may help (the endpoint failed or could not be reached); false when
    /// the credentials or their configuration are wrong.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            TokenError::Failed { .. } | TokenError::Malformed(_) | TokenError::Transport(_)
        )
    }

    /// The endpoint's `Retry-After`, when it failed with one.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            TokenError::Failed { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// An access token and when to stop using it. `Debug` shows no token.
pub(crate) struct AccessToken {
    /// `Bearer {token}`, marked sensitive.
    authorization: HeaderValue,
    refresh_at: Instant,
    expires_at: Instant,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("authorization", &"Bearer <redacted>")
            .field("refresh_at", &self.refresh_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AccessToken {
    /// The `Authorization` header value.
    pub(crate) fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }
}

/// The claims of a token request's assertion.
#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// The token endpoint's answer to a granted request.
#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: u64,
    token_type: String,
}

/// The token endpoint's refusal (`{"error", "error_description"}`).
#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The RS256 assertion `account` signs at `now` (Unix seconds).
fn sign_assertion(
    account: &ServiceAccount,
    now: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(account.private_key_id().to_owned());
    let claims = Assertion {
        iss: account.client_email(),
        scope: FCM_SCOPE,
        aud: account.token_uri(),
        iat: now,
        exp: now + ASSERTION_LIFETIME_SECS,
    };
    jsonwebtoken::encode(&header, &claims, account.key())
}

#[derive(Debug, Default)]
struct Cached {
    token: Option<Arc<AccessToken>>,
    /// The last fetch's failure and when it happened, for the callers that waited on that
    /// fetch, and to space out retries of a failing refresh.
    last_failure: Option<(Arc<TokenError>, Instant)>,
}

/// The access tokens of one service account, fetched when needed and shared.
#[derive(Debug)]
pub(crate) struct TokenSource {
    account: ServiceAccount,
    http: HttpClient,
    cached: tokio::sync::Mutex<Cached>,
    /// Fetches completed so far (read before waiting on the lock, to tell whether a fetch
    /// finished while waiting).
    fetches: AtomicU64,
}

impl TokenSource {
    pub(crate) fn new(account: ServiceAccount, http: HttpClient) -> Self {
        Self {
            account,
            http,
            cached: tokio::sync::Mutex::default(),
            fetches: AtomicU64::new(0),
        }
    }

    pub(crate) fn account(&self) -> &ServiceAccount {
        &self.account
    }

    /// How many fetches have completed (access tokens obtained or refused), for metrics.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Acquire)
    }

    /// A token to send with: the cached one until its refresh time, else a fetched one.
    ///
    /// Fails when the fetch fails and no unexpired token is cached; callers that waited on
    /// that same fetch get its failure without fetching again.
    pub(crate) async fn current(&self) -> Result<Arc<AccessToken>, Arc<TokenError>> {
        self.get(None).await
    }

    /// A token other than `refused`, which FCM answered 401 to: the one another caller
    /// fetched meanwhile, or a fetched one. Fails as [`TokenSource::current`].
    pub(crate) async fn replace(
        &self,
        refused: &Arc<AccessToken>,
    ) -> Result<Arc<AccessToken>, Arc<TokenError>> {
        self.get(Some(refused)).await
    }

    async fn get(
        &self,
        refused: Option<&Arc<AccessToken>>,
    ) -> Result<Arc<AccessToken>, Arc<TokenError>> {
        let fetches_seen = self.fetches.load(Ordering::Acquire);
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        // The cached token, unless FCM refused it or it expired.
        let usable = cached
            .token
            .as_ref()
            .filter(|token| !refused.is_some_and(|r| Arc::ptr_eq(r, token)))
            .filter(|token| now < token.expires_at)
            .cloned();
        if let Some(token) = &usable
            && now < token.refresh_at
        {
            return Ok(Arc::clone(token));
        }
        // A fetch failed while this caller waited, or a refresh failed moments ago: share
        // that outcome instead of fetching again.
        if let Some((failure, failed_at)) = &cached.last_failure {
            let fetched_meanwhile = self.fetches.load(Ordering::Acquire) != fetches_seen;
            let retry_later = usable.is_some() && now < *failed_at + REFRESH_RETRY_INTERVAL;
            if fetched_meanwhile || retry_later {
                return usable.ok_or_else(|| Arc::clone(failure));
            }
        }
        let fetched = self.fetch().await;
        self.fetches.fetch_add(1, Ordering::Release);
        match fetched {
            Ok(token) => {
                let token = Arc::new(token);
                *cached = Cached {
                    token: Some(Arc::clone(&token)),
                    last_failure: None,
                };
                Ok(token)
            }
            Err(failure) => {
                let failure = Arc::new(failure);
                cached.last_failure = Some((Arc::clone(&failure), Instant::now()));
                if usable.is_some() {
                    tracing::warn!(error = %failure, "refreshing the FCM access token failed; using the current one until it expires");
                } else {
                    cached.token = None;
                }
                usable.ok_or(failure)
            }
        }
    }

    /// One token request.
    async fn fetch(&self) -> Result<AccessToken, TokenError> {
        let started = Instant::now();
        let assertion = sign_assertion(&self.account, chrono::Utc::now().timestamp())
            .map_err(TokenError::Signing)?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER)
            .append_pair("assertion", &assertion)
            .finish();
        let answer = self
            .http
            .post(
                self.account.token_endpoint(),
                "application/x-www-form-urlencoded",
                None,
                Bytes::from(form),
            )
            .await
            .map_err(TokenError::Transport)?;
        if answer.status == StatusCode::OK {
            let granted: Granted =
                serde_json::from_slice(&answer.body).map_err(|e| TokenError::Malformed(Some(e)))?;
            return bearer(granted, started);
        }
        if answer.status == StatusCode::TOO_MANY_REQUESTS || answer.status.is_server_error() {
            return Err(TokenError::Failed {
                status: answer.status.as_u16(),
                retry_after: answer.retry_after,
            });
        }
        let refusal = serde_json::from_slice::<Refusal>(&answer.body).unwrap_or(Refusal {
            error: String::new(),
            error_description: String::new(),
        });
        Err(TokenError::Refused {
            status: answer.status.as_u16(),
            error: refusal.error,
            description: refusal.error_description,
        })
    }
}

/// The cached form of a granted token fetched at `started`.
fn bearer(granted: Granted, started: Instant) -> Result<AccessToken, TokenError> {
    if !granted.token_type.eq_ignore_ascii_case("bearer") || granted.expires_in == 0 {
        return Err(TokenError::Malformed(None));
    }
    let mut authorization = HeaderValue::try_from(format!("Bearer {}", granted.access_token))
        .map_err(|_| TokenError::Malformed(None))?;
    authorization.set_sensitive(true);
    let lifetime = Duration::from_secs(granted.expires_in);
    Ok(AccessToken {
        authorization,
        refresh_at: started + refresh_after(lifetime),
        expires_at: started + lifetime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_long_token_is_refreshed_five_minutes_before_it_expires() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3300)
        );
    }

    #[test]
    fn a_short_lived_token_is_refreshed_halfway() {
        assert_eq!(
            refresh_after(Duration::from_secs(240)),
            Duration::from_secs(120)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn an_access_token_does_not_show_in_debug() {
        // GIVEN a granted token
        let token = bearer(
            Granted {
                access_token: "ya29.secret-value".to_owned(),
                expires_in: 3600,
                token_type: "Bearer".to_owned(),
            },
            Instant::now(),
        )
        .expect("a bearer token");
        // WHEN printed with Debug THEN the token is not there
        let printed = format!("{token:?}");
        assert!(!printed.contains("secret-value"), "{printed}");
    }

    #[test]
    fn a_token_that_is_not_bearer_is_malformed() {
        let granted = Granted {
            access_token: "x".to_owned(),
            expires_in: 3600,
            token_type: "MAC".to_owned(),
        };
        assert!(matches!(
            bearer(granted, Instant::now()),
            Err(TokenError::Malformed(None))
        ));
    }
}
