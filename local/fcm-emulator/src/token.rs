//! `POST /token`: Google's OAuth 2.0 token endpoint for a service account's JWT bearer grant
//! (RFC 7523). The assertion is checked as Google checks it — signature against the trusted
//! account's key, `iss`, `aud`, lifetime, scope — and refused with Google's error bodies.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::json;

use crate::FCM_SCOPE;
use crate::answers::oauth_error;
use crate::state::Shared;

/// The only grant type a service account uses.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A scope that includes FCM's.
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Longest an assertion may live (`exp - iat`), as Google requires.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;
/// How far in the future `iat` may be (the signer's clock running ahead).
const CLOCK_SKEW_SECS: i64 = 300;
/// Google's words for an assertion whose times do not fit.
const NOT_SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and \
                               in a reasonable timeframe. Check your iat and exp values in the \
                               JWT claim.";
/// Google's words for an assertion whose signature does not verify.
const BAD_SIGNATURE: &str = "Invalid JWT Signature.";

/// The form fields of a token request.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    assertion: Option<String>,
}

/// The assertion's claims the emulator reads (`aud` is checked by the validation).
#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    #[serde(default)]
    scope: String,
    iat: i64,
    exp: i64,
}

/// Why a token request is refused: the OAuth `error` and its description.
#[derive(Debug)]
struct Refusal {
    error: &'static str,
    description: String,
}

impl Refusal {
    fn invalid_grant(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_grant",
            description: description.into(),
        }
    }
}

/// `POST /token`: issues an access token for a valid assertion; else Google's 400.
pub(crate) async fn grant(
    State(shared): State<Arc<Shared>>,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    shared.lock().token_requests += 1;
    let Ok(Form(request)) = form else {
        return oauth_error(
            "invalid_request",
            "The request must be a form (application/x-www-form-urlencoded).",
        );
    };
    let now = chrono::Utc::now().timestamp();
    match check(&shared, &request, now) {
        Ok(project_id) => {
            let (access_token, expires_in) = shared.lock().issue(&project_id, Instant::now());
            Json(json!({
                "access_token": access_token,
                "expires_in": expires_in,
                "token_type": "Bearer",
            }))
            .into_response()
        }
        Err(refusal) => {
            tracing::debug!(error = refusal.error, description = %refusal.description, "token request refused");
            oauth_error(refusal.error, &refusal.description)
        }
    }
}

/// Checks a token request at `now` (Unix seconds); returns the project of the account it
/// authenticates.
fn check(shared: &Shared, request: &TokenRequest, now: i64) -> Result<String, Refusal> {
    match request.grant_type.as_deref() {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(Refusal {
                error: "unsupported_grant_type",
                description: format!("Invalid grant_type: {other}"),
            });
        }
        None => return Err(missing("grant_type")),
    }
    let Some(assertion) = request.assertion.as_deref() else {
        return Err(missing("assertion"));
    };
    let (claims, project_id) = verify(shared, assertion)?;
    let lifetime = claims.exp - claims.iat;
    if lifetime <= 0
        || lifetime > MAX_ASSERTION_LIFETIME_SECS
        || claims.iat > now + CLOCK_SKEW_SECS
        || claims.exp <= now
    {
        return Err(Refusal::invalid_grant(NOT_SHORT_LIVED));
    }
    let grants_fcm = claims
        .scope
        .split(' ')
        .any(|scope| scope == FCM_SCOPE || scope == CLOUD_PLATFORM_SCOPE);
    if !grants_fcm {
        return Err(Refusal {
            error: "invalid_scope",
            description: "Invalid OAuth scope or ID token audience provided.".to_owned(),
        });
    }
    Ok(project_id)
}

fn missing(parameter: &str) -> Refusal {
    Refusal {
        error: "invalid_request",
        description: format!("Missing required parameter: {parameter}"),
    }
}

/// Verifies `assertion`'s signature with the key of the account it names as `iss` (and as
/// `kid`, when it names one), and its `aud`; returns its claims and the account's project.
fn verify(shared: &Shared, assertion: &str) -> Result<(Claims, String), Refusal> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| Refusal::invalid_grant("Invalid JWT: the assertion is not a JWT."))?;
    // Read unverified only to find whose key verifies it; nothing else is trusted before that.
    let unverified: Claims = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| Refusal::invalid_grant("Invalid JWT: the claims do not parse."))?;
    let (key, private_key_id, project_id) = {
        let recorded = shared.lock();
        let account = recorded
            .accounts
            .get(&unverified.iss)
            .ok_or_else(|| Refusal::invalid_grant("Invalid grant: account not found"))?;
        (
            account.key.clone(),
            account.private_key_id.clone(),
            account.project_id.clone(),
        )
    };
    if header.alg != Algorithm::RS256
        || header
            .kid
            .as_deref()
            .is_some_and(|kid| kid != private_key_id)
    {
        return Err(Refusal::invalid_grant(BAD_SIGNATURE));
    }
    let token_url = format!("{}/token", shared.base_url);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&token_url]);
    validation.set_issuer(&[&unverified.iss]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let verified = jsonwebtoken::decode::<Claims>(assertion, &key, &validation).map_err(|e| {
        Refusal::invalid_grant(match e.kind() {
            ErrorKind::InvalidAudience => {
                format!("Invalid JWT: Failed audience check. The right audience is {token_url}")
            }
            ErrorKind::ExpiredSignature => NOT_SHORT_LIVED.to_owned(),
            ErrorKind::MissingRequiredClaim(claim) => {
                format!("Invalid JWT: the required claim {claim} is missing.")
            }
            _ => BAD_SIGNATURE.to_owned(),
        })
    })?;
    Ok((verified.claims, project_id))
}
