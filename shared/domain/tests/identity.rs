//! Token verification: what is accepted, and every attack we know of, refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rnd_domain::identity::{
    AuthError, JwtVerifier, KeySource, Role, TokenClaims, VerifierConfig, extract_token,
    issue_hs256,
};

const SECRET: &[u8] = b"a-test-secret-that-is-long-enough-for-hs256";
const RSA_PRIVATE: &str = include_str!("keys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa_public.pem");
const EC_PRIVATE: &str = include_str!("keys/ec_private.pem");
const EC_PUBLIC: &str = include_str!("keys/ec_public.pem");
const JWKS: &str = include_str!("keys/jwks.json");

fn claims(role: &str, exp_in: i64) -> TokenClaims {
    let now = Utc::now().timestamp();
    TokenClaims {
        sub: "user-42".into(),
        role: role.into(),
        exp: now + exp_in,
        nbf: None,
        iat: Some(now),
        name: Some("Ada".into()),
        iss: None,
        aud: None,
    }
}

fn hs_verifier() -> JwtVerifier {
    JwtVerifier::new(VerifierConfig::hs256(SECRET)).unwrap()
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &TokenClaims) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap()
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap()
}

#[test]
fn a_valid_hs256_token_yields_the_user_role_name_and_expiry() {
    let c = claims("driver", 600);
    let token = issue_hs256(&c, SECRET).unwrap();
    let id = hs_verifier().verify(&token).unwrap();
    assert_eq!(id.actor.user_id.as_str(), "user-42");
    assert_eq!(id.actor.role, Role::Driver);
    assert_eq!(id.name.as_deref(), Some("Ada"));
    assert_eq!(id.expires_at.timestamp(), c.exp);
}

#[test]
fn an_alg_none_token_is_refused() {
    let header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = B64.encode(serde_json::to_vec(&claims("admin", 600)).unwrap());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        let err = hs_verifier().verify(&token).unwrap_err();
        assert!(
            matches!(err, AuthError::Malformed | AuthError::AlgorithmNotAllowed),
            "{err:?}"
        );
    }
}

#[test]
fn an_hs256_token_signed_with_the_rsa_public_key_is_refused_by_an_rs256_verifier() {
    // The classic algorithm-confusion attack: the attacker knows the public key and uses it as
    // an HMAC secret.
    let verifier = JwtVerifier::new(VerifierConfig {
        keys: KeySource::Rs256PublicKeyPem(RSA_PUBLIC.into()),
        issuer: None,
        audience: None,
        leeway_secs: 0,
    })
    .unwrap();
    let forged = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()).unwrap(),
        &claims("admin", 600),
    );
    assert_eq!(
        verifier.verify(&forged).unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
    let genuine = sign(Algorithm::RS256, None, &rsa_key(), &claims("admin", 600));
    assert_eq!(verifier.verify(&genuine).unwrap().actor.role, Role::Admin);
}

#[test]
fn an_rs256_token_is_refused_by_an_hs256_verifier() {
    let token = sign(Algorithm::RS256, None, &rsa_key(), &claims("admin", 600));
    assert_eq!(
        hs_verifier().verify(&token).unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[test]
fn an_expired_token_is_refused_beyond_the_leeway_and_accepted_within_it() {
    let expired = issue_hs256(&claims("customer", -120), SECRET).unwrap();
    assert_eq!(
        hs_verifier().verify(&expired).unwrap_err(),
        AuthError::Expired
    );
    let just_expired = issue_hs256(&claims("customer", -5), SECRET).unwrap();
    assert!(hs_verifier().verify(&just_expired).is_ok(), "within leeway");
}

#[test]
fn a_token_not_yet_valid_is_refused() {
    let mut c = claims("customer", 3600);
    c.nbf = Some(Utc::now().timestamp() + 600);
    let token = issue_hs256(&c, SECRET).unwrap();
    assert_eq!(
        hs_verifier().verify(&token).unwrap_err(),
        AuthError::NotYetValid
    );
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let verifier = JwtVerifier::new(VerifierConfig {
        issuer: Some("https://auth.rnd.example".into()),
        audience: Some("rnd-realtime".into()),
        ..VerifierConfig::hs256(SECRET)
    })
    .unwrap();
    let mut good = claims("chef", 600);
    good.iss = Some("https://auth.rnd.example".into());
    good.aud = Some(serde_json::json!(["other", "rnd-realtime"]));
    assert!(
        verifier
            .verify(&issue_hs256(&good, SECRET).unwrap())
            .is_ok()
    );

    let mut wrong_iss = good.clone();
    wrong_iss.iss = Some("https://evil.example".into());
    assert_eq!(
        verifier
            .verify(&issue_hs256(&wrong_iss, SECRET).unwrap())
            .unwrap_err(),
        AuthError::WrongIssuer
    );
    let mut wrong_aud = good.clone();
    wrong_aud.aud = Some(serde_json::json!("someone-else"));
    assert_eq!(
        verifier
            .verify(&issue_hs256(&wrong_aud, SECRET).unwrap())
            .unwrap_err(),
        AuthError::WrongAudience
    );
    let mut no_iss = good;
    no_iss.iss = None;
    assert!(
        verifier
            .verify(&issue_hs256(&no_iss, SECRET).unwrap())
            .is_err()
    );
}

#[test]
fn a_tampered_payload_or_signature_is_refused() {
    let token = issue_hs256(&claims("customer", 600), SECRET).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    // Promote ourselves to admin without re-signing.
    parts[1] = B64.encode(serde_json::to_vec(&claims("admin", 600)).unwrap());
    assert_eq!(
        hs_verifier().verify(&parts.join(".")).unwrap_err(),
        AuthError::InvalidSignature
    );
    let mut sig = B64.decode(token.split('.').nth(2).unwrap()).unwrap();
    sig[0] ^= 0x01;
    let original: Vec<&str> = token.split('.').collect();
    let flipped = format!("{}.{}.{}", original[0], original[1], B64.encode(sig));
    assert_eq!(
        hs_verifier().verify(&flipped).unwrap_err(),
        AuthError::InvalidSignature
    );
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let token = issue_hs256(
        &claims("customer", 600),
        b"another-secret-that-is-also-long-enough!!",
    )
    .unwrap();
    assert_eq!(
        hs_verifier().verify(&token).unwrap_err(),
        AuthError::InvalidSignature
    );
}

#[test]
fn tokens_without_exp_or_with_an_unknown_role_are_refused() {
    let now = Utc::now().timestamp();
    let no_exp = serde_json::json!({"sub": "u1", "role": "customer", "iat": now});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &no_exp,
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap();
    assert_eq!(
        hs_verifier().verify(&token).unwrap_err(),
        AuthError::InvalidClaims
    );
    let pilot = issue_hs256(&claims("pilot", 600), SECRET).unwrap();
    assert_eq!(
        hs_verifier().verify(&pilot).unwrap_err(),
        AuthError::InvalidClaims
    );
    let mut bad_sub = claims("customer", 600);
    bad_sub.sub = "user#1".into();
    assert_eq!(
        hs_verifier()
            .verify(&issue_hs256(&bad_sub, SECRET).unwrap())
            .unwrap_err(),
        AuthError::InvalidClaims
    );
}

#[test]
fn garbage_and_empty_tokens_are_refused() {
    assert_eq!(hs_verifier().verify("").unwrap_err(), AuthError::Missing);
    assert_eq!(
        hs_verifier().verify("not-a-jwt").unwrap_err(),
        AuthError::Malformed
    );
    assert_eq!(
        hs_verifier().verify("a.b.c").unwrap_err(),
        AuthError::Malformed
    );
}

#[test]
fn es256_tokens_verify_with_an_ec_public_key() {
    let verifier = JwtVerifier::new(VerifierConfig {
        keys: KeySource::Es256PublicKeyPem(EC_PUBLIC.into()),
        issuer: None,
        audience: None,
        leeway_secs: 30,
    })
    .unwrap();
    let token = sign(Algorithm::ES256, None, &ec_key(), &claims("driver", 600));
    assert_eq!(verifier.verify(&token).unwrap().actor.role, Role::Driver);
    let rs = sign(Algorithm::RS256, None, &rsa_key(), &claims("driver", 600));
    assert_eq!(
        verifier.verify(&rs).unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[test]
fn a_jwks_selects_the_key_by_kid_and_its_algorithm() {
    let verifier = JwtVerifier::new(VerifierConfig {
        keys: KeySource::Jwks(JWKS.into()),
        issuer: None,
        audience: None,
        leeway_secs: 30,
    })
    .unwrap();
    let rs = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa_key(),
        &claims("customer", 600),
    );
    assert!(verifier.verify(&rs).is_ok());
    let es = sign(
        Algorithm::ES256,
        Some("ec-1"),
        &ec_key(),
        &claims("customer", 600),
    );
    assert!(verifier.verify(&es).is_ok());
    // An RS256 signature presented under the EC key's kid is confusion: refused.
    let swapped = sign(
        Algorithm::RS256,
        Some("ec-1"),
        &rsa_key(),
        &claims("customer", 600),
    );
    assert_eq!(
        verifier.verify(&swapped).unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
    let unknown = sign(
        Algorithm::RS256,
        Some("rsa-9"),
        &rsa_key(),
        &claims("customer", 600),
    );
    assert_eq!(
        verifier.verify(&unknown).unwrap_err(),
        AuthError::UnknownKey
    );
    // An HS256 token whose secret is the JWKS text is refused too.
    let hs = sign(
        Algorithm::HS256,
        Some("rsa-1"),
        &EncodingKey::from_secret(JWKS.as_bytes()).unwrap(),
        &claims("admin", 600),
    );
    assert_eq!(
        verifier.verify(&hs).unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[test]
fn a_short_hs256_secret_is_a_configuration_error() {
    assert!(JwtVerifier::new(VerifierConfig::hs256(b"short".to_vec())).is_err());
}

#[test]
fn the_token_is_found_in_the_query_the_authorization_header_or_the_websocket_protocol() {
    let jwt = "aaa.bbb.ccc";
    assert_eq!(extract_token(Some(jwt), |_| None), Some(jwt));
    let bearer = format!("Bearer {jwt}");
    assert_eq!(
        extract_token(None, |h| (h == "authorization").then_some(bearer.as_str())),
        Some(jwt)
    );
    let protocols = format!("rnd.v1, bearer.{jwt}");
    assert_eq!(
        extract_token(None, |h| (h == "sec-websocket-protocol")
            .then_some(protocols.as_str())),
        Some(jwt)
    );
    assert_eq!(
        extract_token(None, |h| (h == "sec-websocket-protocol")
            .then_some("rnd.v1")),
        None
    );
    assert_eq!(
        extract_token(None, |h| (h == "authorization")
            .then_some("Basic dXNlcjpwYXNz")),
        None
    );
    assert_eq!(extract_token(Some("  "), |_| None), None);
}
