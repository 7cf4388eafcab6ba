//! Identity: roles, JWT claims and their verification.
//!
//! A token carries `sub` (user id), `role`, `exp` (required) and optionally `name`, `nbf`, `iat`,
//! `iss` and `aud`. [`JwtVerifier`] accepts exactly one algorithm family per configuration (HS256
//! with a shared secret, RS256 or ES256 with a public key, or a JWKS document of RSA/EC keys), so
//! `alg: none` and HS/RS confusion are refused before any signature check.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// The development HS256 secret used by the local stack and the event fixtures. Public on
/// purpose: never configure it in a deployed stage.
pub const DEV_JWT_SECRET: &str = "rnd-local-dev-secret-not-for-production-use";

/// Default clock leeway for `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// What a user is to the platform.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Places orders.
    Customer,
    /// Cooks orders.
    Chef,
    /// Delivers orders.
    Driver,
    /// Operates the platform.
    Admin,
}

impl Role {
    /// The wire name (`customer`, `chef`, `driver`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Chef => "chef",
            Role::Driver => "driver",
            Role::Admin => "admin",
        }
    }

    /// Every role, in a stable order.
    pub const ALL: [Role; 4] = [Role::Customer, Role::Chef, Role::Driver, Role::Admin];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRole)
    }
}

/// A role name that is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown role")]
pub struct UnknownRole;

/// Who is acting: the verified user and their role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user's id (`sub`).
    pub user_id: UserId,
    /// The user's role.
    pub role: Role,
}

impl Actor {
    /// An actor from its parts.
    pub fn new(user_id: UserId, role: Role) -> Self {
        Self { user_id, role }
    }
}

/// A verified identity, as the authorizer passes it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The acting user.
    pub actor: Actor,
    /// Display name, when the token has one.
    pub name: Option<String>,
    /// When the token expires; messages after this are refused with `token_expired`.
    pub expires_at: DateTime<Utc>,
}

/// The claims of our tokens, as they appear in the JWT payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// User id.
    pub sub: String,
    /// Role name.
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience (a string or a list of strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

/// Why a token was refused. The `Display` text is safe to show to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("a token is required")]
    Missing,
    /// Not a JWT, or its header or claims do not parse.
    #[error("the token is malformed")]
    Malformed,
    /// The token's algorithm is not the one this service accepts (includes `none`).
    #[error("the token's algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// No key with the token's `kid` in the JWKS.
    #[error("the token's key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    InvalidSignature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// Required claims are missing or invalid (`sub`, `role`, `exp`).
    #[error("the token's claims are invalid")]
    InvalidClaims,
}

/// Where the verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// HS256 with a shared secret.
    Hs256Secret(Vec<u8>),
    /// RS256 with an RSA public key in PEM.
    Rs256PublicKeyPem(String),
    /// ES256 with a P-256 public key in PEM.
    Es256PublicKeyPem(String),
    /// A JWKS document (RSA keys → RS256, P-256 keys → ES256), keys selected by `kid`.
    Jwks(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        let kind = match self {
            KeySource::Hs256Secret(_) => "Hs256Secret(..)",
            KeySource::Rs256PublicKeyPem(_) => "Rs256PublicKeyPem(..)",
            KeySource::Es256PublicKeyPem(_) => "Es256PublicKeyPem(..)",
            KeySource::Jwks(_) => "Jwks(..)",
        };
        f.write_str(kind)
    }
}

/// How tokens are verified.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The keys.
    pub keys: KeySource,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Clock leeway for `exp`/`nbf`, seconds.
    pub leeway_secs: u64,
}

impl VerifierConfig {
    /// HS256 with `secret`, no issuer or audience check, default leeway.
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            keys: KeySource::Hs256Secret(secret.into()),
            issuer: None,
            audience: None,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The HS256 secret is shorter than 32 bytes.
    #[error("the HS256 secret must be at least 32 bytes")]
    WeakSecret,
    /// A PEM key did not parse.
    #[error("the public key does not parse: {0}")]
    BadKey(#[source] jsonwebtoken::errors::Error),
    /// The JWKS document did not parse or holds no usable key.
    #[error("the JWKS document is unusable: {0}")]
    BadJwks(String),
}

struct KeyEntry {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies tokens against one configuration. Build once (at cold start), share freely.
pub struct JwtVerifier {
    /// Keys by `kid`; the `None` entry is used for tokens without `kid` (single-key configs).
    keys: HashMap<Option<String>, KeyEntry>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl JwtVerifier {
    /// Builds a verifier; fails when the key material is unusable.
    pub fn new(config: VerifierConfig) -> Result<Self, ConfigError> {
        let mut keys = HashMap::new();
        match &config.keys {
            KeySource::Hs256Secret(secret) => {
                if secret.len() < 32 {
                    return Err(ConfigError::WeakSecret);
                }
                keys.insert(
                    None,
                    KeyEntry {
                        algorithm: Algorithm::HS256,
                        key: DecodingKey::from_secret(secret).map_err(ConfigError::BadKey)?,
                    },
                );
            }
            KeySource::Rs256PublicKeyPem(pem) => {
                let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(ConfigError::BadKey)?;
                keys.insert(
                    None,
                    KeyEntry {
                        algorithm: Algorithm::RS256,
                        key,
                    },
                );
            }
            KeySource::Es256PublicKeyPem(pem) => {
                let key = DecodingKey::from_ec_pem(pem.as_bytes()).map_err(ConfigError::BadKey)?;
                keys.insert(
                    None,
                    KeyEntry {
                        algorithm: Algorithm::ES256,
                        key,
                    },
                );
            }
            KeySource::Jwks(doc) => {
                let set: JwkSet =
                    serde_json::from_str(doc).map_err(|e| ConfigError::BadJwks(e.to_string()))?;
                for jwk in &set.keys {
                    let algorithm = match &jwk.algorithm {
                        AlgorithmParameters::RSA(_) => Algorithm::RS256,
                        AlgorithmParameters::EllipticCurve(ec)
                            if ec.curve == EllipticCurve::P256 =>
                        {
                            Algorithm::ES256
                        }
                        // Symmetric or other curves are not accepted from a JWKS.
                        _ => continue,
                    };
                    let key = DecodingKey::from_jwk(jwk)
                        .map_err(|e| ConfigError::BadJwks(e.to_string()))?;
                    keys.insert(jwk.common.key_id.clone(), KeyEntry { algorithm, key });
                }
                if keys.is_empty() {
                    return Err(ConfigError::BadJwks("no RS256 or ES256 key".into()));
                }
            }
        }
        Ok(Self {
            keys,
            issuer: config.issuer,
            audience: config.audience,
            leeway: config.leeway_secs,
        })
    }

    /// Verifies `token` and returns the identity it proves.
    ///
    /// Fails with the [`AuthError`] that says why: malformed, algorithm not allowed (including
    /// `none` and HS/RS confusion), unknown key, bad signature, expired, not yet valid, wrong
    /// issuer or audience, invalid claims.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let entry = self
            .keys
            .get(&header.kid)
            // A single PEM/secret key accepts tokens whatever their kid says.
            .or_else(|| self.keys.get(&None))
            // A JWKS with exactly one key accepts tokens without a kid.
            .or_else(|| match (&header.kid, self.keys.len()) {
                (None, 1) => self.keys.values().next(),
                _ => None,
            })
            .ok_or(AuthError::UnknownKey)?;
        if header.alg != entry.algorithm {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let mut validation = Validation::new(entry.algorithm);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<TokenClaims>(token, &entry.key, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::InvalidSignature => AuthError::InvalidSignature,
                ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAllowed,
                ErrorKind::MissingRequiredClaim(_) => AuthError::InvalidClaims,
                ErrorKind::Json(_) => AuthError::InvalidClaims,
                _ => AuthError::Malformed,
            },
        )?;
        let claims = data.claims;
        let user_id = UserId::parse(claims.sub).map_err(|_| AuthError::InvalidClaims)?;
        let role: Role = claims.role.parse().map_err(|_| AuthError::InvalidClaims)?;
        let expires_at = Utc
            .timestamp_opt(claims.exp, 0)
            .single()
            .ok_or(AuthError::InvalidClaims)?;
        Ok(Identity {
            actor: Actor { user_id, role },
            name: claims.name.filter(|n| !n.trim().is_empty()),
            expires_at,
        })
    }
}

/// Verifies bearer tokens: the port the authorizer and the HTTP API check tokens through. A
/// [`JwtVerifier`] holds a fixed key set; an adapter may hold one it refreshes (a JWKS URL).
#[async_trait::async_trait]
pub trait VerifyTokens: Send + Sync + fmt::Debug {
    /// Verifies `token` and returns the identity it proves, or why it is refused.
    async fn verify(&self, token: &str) -> Result<Identity, AuthError>;
}

#[async_trait::async_trait]
impl VerifyTokens for JwtVerifier {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        JwtVerifier::verify(self, token)
    }
}

/// Signs claims with HS256. For the local stack's `token` helper and for tests.
pub fn issue_hs256(
    claims: &TokenClaims,
    secret: &[u8],
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret)?,
    )
}

/// Finds the bearer token in a WebSocket upgrade / HTTP request: the `token` query parameter,
/// an `Authorization: Bearer` header, or a `Sec-WebSocket-Protocol` entry (browsers cannot set
/// headers on a WebSocket). A protocol entry may be the bare JWT or the JWT prefixed with
/// `bearer.` or `token.`; entries that are not JWT-shaped (such as a real subprotocol name) are
/// skipped.
///
/// `header` must look headers up case-insensitively.
pub fn extract_token<'a>(
    query_token: Option<&'a str>,
    header: impl Fn(&str) -> Option<&'a str>,
) -> Option<&'a str> {
    if let Some(t) = query_token.map(str::trim).filter(|t| !t.is_empty()) {
        return Some(t);
    }
    if let Some(auth) = header("authorization") {
        let auth = auth.trim();
        if let Some((scheme, rest)) = auth.split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
            && !rest.trim().is_empty()
        {
            return Some(rest.trim());
        }
    }
    if let Some(protocols) = header("sec-websocket-protocol") {
        for p in protocols.split(',').map(str::trim) {
            let candidate = p
                .strip_prefix("bearer.")
                .or_else(|| p.strip_prefix("token."))
                .unwrap_or(p);
            if looks_like_jwt(candidate) {
                return Some(candidate);
            }
        }
    }
    None
}

fn looks_like_jwt(s: &str) -> bool {
    s.split('.').count() == 3
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
