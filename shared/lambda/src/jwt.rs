//! The token verifier from the environment (feature `jwt`; the variables are in the crate
//! docs). One way to verify is configured: a JWKS URL, a public key (read from SSM or given),
//! or an HS256 secret (read from SSM or given). A function refuses to start with the public
//! development secret unless a local run opts in.

use std::sync::Arc;

use rnd_domain::identity::{
    DEFAULT_LEEWAY_SECS, DEV_JWT_SECRET, JwtVerifier, KeySource, VerifierConfig, VerifyTokens,
};
use rnd_jwks::{JwksSettings, JwksVerifier};

use crate::ConfigError;

/// Reads the parameters the environment names (SSM in AWS): secrets and public keys.
#[async_trait::async_trait]
pub trait Parameters: Sync {
    /// The value of the parameter `name` (decrypted when it is a SecureString).
    async fn read(&self, name: &str) -> Result<String, ConfigError>;
}

struct Ssm<'a>(&'a aws_config::SdkConfig);

#[async_trait::async_trait]
impl Parameters for Ssm<'_> {
    async fn read(&self, name: &str) -> Result<String, ConfigError> {
        crate::ssm_secret(self.0, name).await
    }
}

/// The token verifier from the process environment, reading parameters from SSM.
pub async fn verifier(
    config: &aws_config::SdkConfig,
) -> Result<Arc<dyn VerifyTokens>, ConfigError> {
    verifier_from(crate::var, &Ssm(config)).await
}

/// The token verifier from the variables `var` gives, reading parameters from `parameters`.
///
/// Fails when no way to verify is configured, a key is unusable, the JWKS cannot be fetched,
/// or the HS256 secret is the public development secret without `JWT_ALLOW_DEV_SECRET=true`.
pub async fn verifier_from(
    var: impl Fn(&'static str) -> Option<String>,
    parameters: &dyn Parameters,
) -> Result<Arc<dyn VerifyTokens>, ConfigError> {
    let (issuer, audience) = (var("JWT_ISSUER"), var("JWT_AUDIENCE"));
    if let Some(url) = var("JWT_JWKS_URL") {
        let settings = JwksSettings {
            issuer,
            audience,
            ..JwksSettings::default()
        };
        let verifier = JwksVerifier::fetch(&url, settings)
            .await
            .map_err(ConfigError::Jwks)?;
        return Ok(Arc::new(verifier));
    }
    let keys = if let Some(name) = var("JWT_PUBLIC_KEY_PARAMETER") {
        public_key(var("JWT_ALGORITHM"), parameters.read(&name).await?)?
    } else if let Some(pem) = var("JWT_PUBLIC_KEY_PEM") {
        public_key(var("JWT_ALGORITHM"), pem)?
    } else if let Some(name) = var("JWT_SECRET_PARAMETER") {
        KeySource::Hs256Secret(parameters.read(&name).await?.into_bytes())
    } else if let Some(secret) = var("JWT_SECRET") {
        KeySource::Hs256Secret(secret.into_bytes())
    } else if let Some(jwks) = var("JWT_JWKS") {
        KeySource::Jwks(jwks)
    } else {
        return Err(ConfigError::Missing(
            "JWT_JWKS_URL, JWT_PUBLIC_KEY_PARAMETER or JWT_SECRET_PARAMETER (locally JWT_SECRET)",
        ));
    };
    if let KeySource::Hs256Secret(secret) = &keys
        && secret.trim_ascii() == DEV_JWT_SECRET.as_bytes()
        && var("JWT_ALLOW_DEV_SECRET").as_deref() != Some("true")
    {
        return Err(ConfigError::DevSecret);
    }
    Ok(Arc::new(JwtVerifier::new(VerifierConfig {
        keys,
        issuer,
        audience,
        leeway_secs: DEFAULT_LEEWAY_SECS,
    })?))
}

fn public_key(algorithm: Option<String>, pem: String) -> Result<KeySource, ConfigError> {
    match algorithm.as_deref() {
        Some("RS256") => Ok(KeySource::Rs256PublicKeyPem(pem)),
        Some("ES256") => Ok(KeySource::Es256PublicKeyPem(pem)),
        other => Err(ConfigError::Invalid(
            "JWT_ALGORITHM",
            format!("expected RS256 or ES256, got {other:?}"),
        )),
    }
}
