//! The service account FCM is used with, parsed from the JSON key file Google issues. Its
//! private key never leaves this type except into a signature: `Debug` prints no key.

use hyper::Uri;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;

/// Why a service-account key file cannot be used. No variant quotes the key.
#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountError {
    /// Not JSON, or a field is missing or not a string.
    #[error("the service account key file is not JSON of the expected shape")]
    Json(#[source] serde_json::Error),
    /// The file's `type` is not `service_account` (e.g. `authorized_user`).
    #[error("the key file is of type {0:?}, not service_account")]
    NotAServiceAccount(String),
    /// A field is empty or holds characters it cannot have (`project_id`, `client_email`).
    #[error("the service account's {0} is not valid")]
    Invalid(&'static str),
    /// `token_uri` is not an absolute http(s) URL.
    #[error("the service account's token_uri is not an absolute http(s) URL")]
    TokenUri(#[source] Option<hyper::http::uri::InvalidUri>),
    /// `private_key` is not an RSA private key in PEM that can sign.
    #[error("the service account's private key is not a usable RSA key")]
    PrivateKey(#[source] jsonwebtoken::errors::Error),
}

/// The fields of Google's key file this adapter uses (the others are ignored).
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    project_id: String,
    private_key_id: String,
    private_key: String,
    client_email: String,
    token_uri: String,
}

/// A Google service account: who signs the token requests, with which key, and where it sends
/// them. Built with [`ServiceAccount::from_json`]; its `Debug` shows no key.
#[derive(Clone)]
pub struct ServiceAccount {
    project_id: String,
    private_key_id: String,
    client_email: String,
    token_uri: String,
    token_endpoint: Uri,
    key: EncodingKey,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl ServiceAccount {
    /// Parses Google's service-account key file (`type`, `project_id`, `private_key_id`,
    /// `private_key`, `client_email`, `token_uri`; other fields are ignored) and checks that
    /// the key can sign an RS256 assertion.
    ///
    /// Fails with a [`ServiceAccountError`] saying which part is wrong, never quoting the key.
    pub fn from_json(json: &str) -> Result<Self, ServiceAccountError> {
        let file: KeyFile = serde_json::from_str(json).map_err(ServiceAccountError::Json)?;
        if file.kind != "service_account" {
            return Err(ServiceAccountError::NotAServiceAccount(file.kind));
        }
        // Project ids are lowercase letters, digits and hyphens (old domain-scoped ones add
        // `.` and `:`); the id goes into the send URL's path.
        let path_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':');
        if file.project_id.is_empty() || !file.project_id.chars().all(path_safe) {
            return Err(ServiceAccountError::Invalid("project_id"));
        }
        if !file.client_email.contains('@') {
            return Err(ServiceAccountError::Invalid("client_email"));
        }
        let token_endpoint: Uri = file
            .token_uri
            .parse()
            .map_err(|e| ServiceAccountError::TokenUri(Some(e)))?;
        if !matches!(token_endpoint.scheme_str(), Some("https" | "http"))
            || token_endpoint.host().is_none()
        {
            return Err(ServiceAccountError::TokenUri(None));
        }
        let key = EncodingKey::from_rsa_pem(file.private_key.as_bytes())
            .map_err(ServiceAccountError::PrivateKey)?;
        // Parsing the PEM does not parse the RSA key inside; one signature does.
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &serde_json::Map::new(),
            &key,
        )
        .map_err(ServiceAccountError::PrivateKey)?;
        Ok(Self {
            project_id: file.project_id,
            private_key_id: file.private_key_id,
            client_email: file.client_email,
            token_uri: file.token_uri,
            token_endpoint,
            key,
        })
    }

    /// The Firebase (Google Cloud) project messages are sent in.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The account's email: the `iss` of its assertions.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The id of the account's key: the `kid` of its assertions.
    pub fn private_key_id(&self) -> &str {
        &self.private_key_id
    }

    /// Where access tokens are requested: the `aud` of its assertions, exactly as the key
    /// file spells it.
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    pub(crate) fn token_endpoint(&self) -> &Uri {
        &self.token_endpoint
    }

    pub(crate) fn key(&self) -> &EncodingKey {
        &self.key
    }
}
