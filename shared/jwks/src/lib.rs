//! Tokens verified against an identity provider's JWKS URL, so a deployment holds no signing
//! key (RFC 7517 key sets of RS256 and P-256 ES256 keys, chosen by `kid`).
//!
//! [`JwksVerifier::fetch`] reads the key set once at cold start and fails when it cannot, so a
//! function never serves without keys. The set is then kept until its `Cache-Control: max-age`
//! (or [`JwksSettings::max_age`]) runs out, and a token naming a `kid` the set lacks (the
//! provider rotated its keys) fetches it again. Fetches are bounded: at most one attempt per
//! [`JwksSettings::min_refresh_interval`], whatever the number of tokens with unknown keys, and
//! concurrent callers wait for that one attempt instead of starting their own. A failed
//! refresh keeps the keys already held.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::Uri;
use rnd_domain::identity::{
    AuthError, ConfigError, DEFAULT_LEEWAY_SECS, Identity, JwtVerifier, KeySource, VerifierConfig,
    VerifyTokens,
};
use rnd_http_client::{HttpClient, TransportError};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How the key set is fetched, kept and checked.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Clock leeway for `exp`/`nbf`, seconds.
    pub leeway_secs: u64,
    /// At most one fetch per this interval (default 60 s); also the shortest a set is kept.
    pub min_refresh_interval: Duration,
    /// The longest a set is kept, whatever its `Cache-Control` says (default 1 h).
    pub max_age: Duration,
    /// One fetch, connecting and reading included (default 5 s).
    pub timeout: Duration,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            min_refresh_interval: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why the key set could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The URL does not parse.
    #[error("the JWKS URL is not a URL")]
    Url(#[source] hyper::http::uri::InvalidUri),
    /// The system's root certificates could not be loaded.
    #[error("no root certificates")]
    RootCertificates(#[source] std::io::Error),
    /// No answer.
    #[error("the JWKS could not be fetched")]
    Transport(#[source] TransportError),
    /// An answer that is not a success.
    #[error("the JWKS URL answered {0}")]
    Status(u16),
    /// The document holds no usable key.
    #[error("the JWKS is unusable")]
    Keys(#[source] ConfigError),
}

/// A verifier whose keys come from a JWKS URL (see the crate docs). Build once per cold start.
pub struct JwksVerifier {
    url: Uri,
    http: HttpClient,
    settings: JwksSettings,
    current: RwLock<Arc<KeySet>>,
    /// When a fetch was last attempted; held while one runs.
    last_attempt: Mutex<Instant>,
}

struct KeySet {
    verifier: JwtVerifier,
    keep_until: Instant,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("url", &self.url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JwksVerifier {
    /// Fetches the key set at `url`; fails when it cannot be fetched or holds no usable key.
    pub async fn fetch(url: &str, settings: JwksSettings) -> Result<Self, JwksError> {
        let url: Uri = url.parse().map_err(JwksError::Url)?;
        let http = HttpClient::new(settings.timeout).map_err(JwksError::RootCertificates)?;
        let keys = load(&http, &url, &settings).await?;
        Ok(Self {
            url,
            http,
            settings,
            current: RwLock::new(Arc::new(keys)),
            last_attempt: Mutex::new(Instant::now()),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Fetches the set again unless `seen` was already replaced (then true) or a fetch was
    /// attempted within the minimum interval (then false). True when a newer set is in place.
    async fn refresh(&self, seen: &Arc<KeySet>) -> bool {
        let mut last_attempt = self.last_attempt.lock().await;
        if !Arc::ptr_eq(&self.current(), seen) {
            return true;
        }
        if last_attempt.elapsed() < self.settings.min_refresh_interval {
            return false;
        }
        *last_attempt = Instant::now();
        match load(&self.http, &self.url, &self.settings).await {
            Ok(keys) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                tracing::info!(url = %self.url, "JWKS refreshed");
                true
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = &e as &dyn std::error::Error, "could not refresh the JWKS; keeping the keys already held");
                false
            }
        }
    }
}

#[async_trait::async_trait]
impl VerifyTokens for JwksVerifier {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let mut keys = self.current();
        if Instant::now() >= keys.keep_until && self.refresh(&keys).await {
            keys = self.current();
        }
        match keys.verifier.verify(token) {
            Err(AuthError::UnknownKey) if self.refresh(&keys).await => {
                self.current().verifier.verify(token)
            }
            verdict => verdict,
        }
    }
}

async fn load(http: &HttpClient, url: &Uri, settings: &JwksSettings) -> Result<KeySet, JwksError> {
    let answer = http.get(url).await.map_err(JwksError::Transport)?;
    if !answer.status.is_success() {
        return Err(JwksError::Status(answer.status.as_u16()));
    }
    let document = String::from_utf8(answer.body.to_vec())
        .map_err(|_| JwksError::Keys(ConfigError::BadJwks("not UTF-8".into())))?;
    let verifier = JwtVerifier::new(VerifierConfig {
        keys: KeySource::Jwks(document),
        issuer: settings.issuer.clone(),
        audience: settings.audience.clone(),
        leeway_secs: settings.leeway_secs,
    })
    .map_err(JwksError::Keys)?;
    let keep_for = answer
        .max_age
        .unwrap_or(settings.max_age)
        .min(settings.max_age)
        .max(settings.min_refresh_interval);
    Ok(KeySet {
        verifier,
        keep_until: Instant::now() + keep_for,
    })
}
