//! The JWKS verifier against an identity provider's key-set endpoint: a contract server that
//! answers `GET /.well-known/jwks.json` with an RFC 7517 document, as providers do, and counts
//! the fetches. The keys are the domain tests' (`shared/domain/tests/keys`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rnd_domain::identity::{AuthError, TokenClaims, VerifyTokens};
use rnd_jwks::{JwksError, JwksSettings, JwksVerifier};
use serde_json::{Value, json};

const JWKS: &str = include_str!("../../domain/tests/keys/jwks.json");
const RSA_PRIVATE: &str = include_str!("../../domain/tests/keys/rsa_private.pem");
const EC_PRIVATE: &str = include_str!("../../domain/tests/keys/ec_private.pem");

/// What the provider answers: a status, a key set and its `Cache-Control`.
struct Answer {
    status: StatusCode,
    keys: Value,
    cache_control: Option<&'static str>,
}

#[derive(Clone)]
struct Provider {
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
    addr: SocketAddr,
}

impl Provider {
    /// A provider publishing the keys with these ids.
    async fn publishing(kids: &[&str]) -> Provider {
        let answer = Arc::new(Mutex::new(Answer {
            status: StatusCode::OK,
            keys: key_set(kids),
            cache_control: None,
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let provider = Provider {
            answer,
            fetches,
            addr,
        };
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        provider
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn publish(&self, kids: &[&str]) {
        self.answer.lock().unwrap().keys = key_set(kids);
    }

    fn fail_with(&self, status: StatusCode) {
        self.answer.lock().unwrap().status = status;
    }

    fn cache_for(&self, cache_control: &'static str) {
        self.answer.lock().unwrap().cache_control = Some(cache_control);
    }
}

async fn serve(State(provider): State<Provider>) -> impl IntoResponse {
    provider.fetches.fetch_add(1, Ordering::SeqCst);
    let answer = provider.answer.lock().unwrap();
    let mut response = (
        answer.status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.keys.to_string(),
    )
        .into_response();
    if let Some(value) = answer.cache_control {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, value.parse().unwrap());
    }
    response
}

/// The test key set with only the keys named.
fn key_set(kids: &[&str]) -> Value {
    let all: Value = serde_json::from_str(JWKS).unwrap();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
        .cloned()
        .collect();
    json!({ "keys": keys })
}

fn token(kid: &str) -> String {
    let (algorithm, key) = match kid {
        "rsa-1" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        ),
        _ => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        ),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    let claims = TokenClaims {
        sub: "customer-1".into(),
        role: "customer".into(),
        exp: chrono::Utc::now().timestamp() + 600,
        nbf: None,
        iat: None,
        name: None,
        iss: Some("https://idp.example".into()),
        aud: Some(json!("rnd-realtime")),
    };
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn settings(min_refresh_interval: Duration) -> JwksSettings {
    JwksSettings {
        issuer: Some("https://idp.example".into()),
        audience: Some("rnd-realtime".into()),
        min_refresh_interval,
        ..JwksSettings::default()
    }
}

#[tokio::test]
async fn a_token_signed_by_a_published_key_verifies_with_one_fetch_at_start() {
    // GIVEN a provider publishing the RSA key, and a verifier built from its URL
    let provider = Provider::publishing(&["rsa-1"]).await;
    let verifier = JwksVerifier::fetch(&provider.url(), settings(Duration::from_secs(60)))
        .await
        .expect("the key set is fetched");
    // WHEN tokens signed with that key arrive
    for _ in 0..3 {
        let identity = verifier.verify(&token("rsa-1")).await.expect("verifies");
        // THEN each verifies, with the caller it names
        assert_eq!(identity.actor.user_id.as_str(), "customer-1");
    }
    // AND the key set was fetched once
    assert_eq!(provider.fetches(), 1);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_first_names_it() {
    // GIVEN a verifier that fetched a set with the RSA key only, a minute ago
    let provider = Provider::publishing(&["rsa-1"]).await;
    let verifier = JwksVerifier::fetch(&provider.url(), settings(Duration::from_millis(50)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    // WHEN the provider rotates in the EC key and a token signed with it arrives
    provider.publish(&["rsa-1", "ec-1"]);
    let verdict = verifier.verify(&token("ec-1")).await;
    // THEN the verifier fetched the set again and the token verifies
    assert!(verdict.is_ok(), "{verdict:?}");
    assert_eq!(provider.fetches(), 2);
    // AND the old key still verifies, without another fetch
    assert!(verifier.verify(&token("rsa-1")).await.is_ok());
    assert_eq!(provider.fetches(), 2);
}

#[tokio::test]
async fn tokens_with_unknown_keys_fetch_at_most_once_per_interval() {
    // GIVEN a verifier that may fetch at most every 400 ms, past its first interval
    let provider = Provider::publishing(&["rsa-1"]).await;
    let verifier = Arc::new(
        JwksVerifier::fetch(&provider.url(), settings(Duration::from_millis(400)))
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    // WHEN fifty tokens naming a key the provider does not publish arrive at once
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let verifier = Arc::clone(&verifier);
            tokio::spawn(async move { verifier.verify(&token("ec-1")).await })
        })
        .collect();
    for attempt in attempts {
        // THEN each is refused as signed by an unknown key
        assert_eq!(attempt.await.unwrap().unwrap_err(), AuthError::UnknownKey);
    }
    // AND the provider saw one refresh, not fifty
    assert_eq!(provider.fetches(), 2);
    // AND more within the interval fetch nothing
    assert_eq!(
        verifier.verify(&token("ec-1")).await.unwrap_err(),
        AuthError::UnknownKey
    );
    assert_eq!(provider.fetches(), 2);
    // AND once the interval has passed, one more is allowed
    tokio::time::sleep(Duration::from_millis(450)).await;
    let _ = verifier.verify(&token("ec-1")).await;
    assert_eq!(provider.fetches(), 3);
}

#[tokio::test]
async fn a_provider_that_fails_leaves_the_keys_already_held() {
    // GIVEN a verifier with the RSA key, and a provider that then fails
    let provider = Provider::publishing(&["rsa-1"]).await;
    let verifier = JwksVerifier::fetch(&provider.url(), settings(Duration::from_millis(50)))
        .await
        .unwrap();
    provider.fail_with(StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_millis(60)).await;
    // WHEN a token with an unknown key makes it try again
    assert_eq!(
        verifier.verify(&token("ec-1")).await.unwrap_err(),
        AuthError::UnknownKey
    );
    assert_eq!(provider.fetches(), 2);
    // THEN tokens signed with the key it holds still verify
    assert!(verifier.verify(&token("rsa-1")).await.is_ok());
}

#[tokio::test]
async fn a_key_set_is_kept_for_its_max_age_then_fetched_again() {
    // GIVEN a provider whose set may be kept for 1 s
    let provider = Provider::publishing(&["rsa-1"]).await;
    provider.cache_for("public, max-age=1");
    let verifier = JwksVerifier::fetch(&provider.url(), settings(Duration::from_millis(100)))
        .await
        .unwrap();
    // WHEN tokens arrive within that second
    assert!(verifier.verify(&token("rsa-1")).await.is_ok());
    // THEN nothing is fetched
    assert_eq!(provider.fetches(), 1);
    // AND after it the set is fetched again, once, the token still verifying
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(verifier.verify(&token("rsa-1")).await.is_ok());
    assert!(verifier.verify(&token("rsa-1")).await.is_ok());
    assert_eq!(provider.fetches(), 2);
}

#[tokio::test]
async fn a_cold_start_without_a_usable_key_set_fails() {
    // GIVEN a provider answering 404, and one publishing no usable key
    let missing = Provider::publishing(&["rsa-1"]).await;
    missing.fail_with(StatusCode::NOT_FOUND);
    let empty = Provider::publishing(&[]).await;
    // WHEN verifiers are built from them
    let from_missing = JwksVerifier::fetch(&missing.url(), JwksSettings::default()).await;
    let from_empty = JwksVerifier::fetch(&empty.url(), JwksSettings::default()).await;
    // THEN neither starts, each saying why
    assert!(
        matches!(from_missing, Err(JwksError::Status(404))),
        "{from_missing:?}"
    );
    assert!(
        matches!(from_empty, Err(JwksError::Keys(_))),
        "{from_empty:?}"
    );
}
