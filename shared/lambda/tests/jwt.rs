//! A function's token verifier as its environment configures it: which way it verifies, and
//! the configurations it refuses to start with.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rnd_domain::identity::{DEV_JWT_SECRET, TokenClaims, issue_hs256};
use rnd_lambda::{ConfigError, Parameters, verifier_from};

const RSA_PRIVATE: &str = include_str!("../../domain/tests/keys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../../domain/tests/keys/rsa_public.pem");
const STAGE_SECRET: &str = "the-prod-stage-own-secret-of-enough-length";

/// SSM as the tests need it: parameters by name.
struct Ssm(HashMap<&'static str, &'static str>);

#[async_trait::async_trait]
impl Parameters for Ssm {
    async fn read(&self, name: &str) -> Result<String, ConfigError> {
        self.0
            .get(name)
            .map(|v| (*v).to_owned())
            .ok_or_else(|| ConfigError::Ssm {
                name: name.to_owned(),
                source: "ParameterNotFound".into(),
            })
    }
}

fn ssm() -> Ssm {
    Ssm(HashMap::from([
        ("/rnd-realtime/prod/jwt-secret", STAGE_SECRET),
        ("/rnd-realtime/dev/jwt-secret", DEV_JWT_SECRET),
        ("/idp/public-key", RSA_PUBLIC),
    ]))
}

fn env(vars: &[(&'static str, &'static str)]) -> impl Fn(&'static str) -> Option<String> {
    let vars: HashMap<&'static str, &'static str> = vars.iter().copied().collect();
    move |name| vars.get(name).map(|v| (*v).to_owned())
}

fn claims() -> TokenClaims {
    TokenClaims {
        sub: "customer-1".into(),
        role: "customer".into(),
        exp: chrono::Utc::now().timestamp() + 600,
        nbf: None,
        iat: None,
        name: None,
        iss: None,
        aud: None,
    }
}

#[tokio::test]
async fn a_function_refuses_to_start_with_the_public_development_secret() {
    // GIVEN the development secret, given directly or read from a parameter
    for vars in [
        vec![("JWT_SECRET", DEV_JWT_SECRET)],
        vec![("JWT_SECRET_PARAMETER", "/rnd-realtime/dev/jwt-secret")],
    ] {
        // WHEN the function builds its verifier
        let verdict = verifier_from(env(&vars), &ssm()).await;
        // THEN it refuses to start
        assert!(
            matches!(verdict, Err(ConfigError::DevSecret)),
            "{vars:?}: {verdict:?}"
        );
    }
}

#[tokio::test]
async fn a_local_run_may_opt_in_to_the_development_secret() {
    // GIVEN the development secret and the local opt-in
    let vars = [
        ("JWT_SECRET", DEV_JWT_SECRET),
        ("JWT_ALLOW_DEV_SECRET", "true"),
    ];
    // WHEN the function builds its verifier
    let verifier = verifier_from(env(&vars), &ssm()).await.expect("starts");
    // THEN tokens signed with it verify
    let token = issue_hs256(&claims(), DEV_JWT_SECRET.as_bytes()).unwrap();
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn the_stages_own_secret_verifies_its_tokens_and_refuses_dev_tokens() {
    // GIVEN a function reading the prod stage's secret
    let vars = [("JWT_SECRET_PARAMETER", "/rnd-realtime/prod/jwt-secret")];
    let verifier = verifier_from(env(&vars), &ssm()).await.expect("starts");
    // WHEN a token minted for prod and one minted for dev arrive
    let prod = issue_hs256(&claims(), STAGE_SECRET.as_bytes()).unwrap();
    let dev = issue_hs256(&claims(), DEV_JWT_SECRET.as_bytes()).unwrap();
    // THEN only the prod one opens
    assert!(verifier.verify(&prod).await.is_ok());
    assert!(verifier.verify(&dev).await.is_err());
}

#[tokio::test]
async fn a_public_key_read_from_its_parameter_verifies_without_any_signing_key() {
    // GIVEN a function configured with a public key parameter and RS256, and no secret
    let vars = [
        ("JWT_PUBLIC_KEY_PARAMETER", "/idp/public-key"),
        ("JWT_ALGORITHM", "RS256"),
    ];
    let verifier = verifier_from(env(&vars), &ssm()).await.expect("starts");
    // WHEN a token the provider signed with its private key arrives
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &key).unwrap();
    // THEN it verifies, and an HS256 token is refused
    assert!(verifier.verify(&token).await.is_ok());
    let hs = issue_hs256(&claims(), STAGE_SECRET.as_bytes()).unwrap();
    assert!(verifier.verify(&hs).await.is_err());
}

#[tokio::test]
async fn an_unreachable_jwks_url_or_an_unknown_algorithm_stops_the_cold_start() {
    // GIVEN a JWKS URL nothing answers at, and a public key of an unnamed algorithm
    let closed = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let url: &'static str = format!("http://{closed}/jwks.json").leak();
    let jwks = verifier_from(env(&[("JWT_JWKS_URL", url)]), &ssm()).await;
    let no_algorithm = verifier_from(
        env(&[("JWT_PUBLIC_KEY_PARAMETER", "/idp/public-key")]),
        &ssm(),
    )
    .await;
    // THEN neither function starts
    assert!(matches!(jwks, Err(ConfigError::Jwks(_))), "{jwks:?}");
    assert!(
        matches!(no_algorithm, Err(ConfigError::Invalid("JWT_ALGORITHM", _))),
        "{no_algorithm:?}"
    );
    // AND nothing configured at all is refused too
    assert!(matches!(
        verifier_from(env(&[]), &ssm()).await,
        Err(ConfigError::Missing(_))
    ));
}
