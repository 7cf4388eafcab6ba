//! `authorizer_token`: the `$connect` authorizer — token extraction and verification.
//!
//! The whole handler runs ([`authorize`], as the `ws-authorizer` function calls it) with the
//! dev-secret HS256 verifier the local stack uses; it makes no network call. The first byte of
//! the input picks what the rest is (`mode = byte % 4`) and, for a token, where it is presented
//! (`byte / 4 % 3`: the `token` query parameter, `Authorization: Bearer`, or a
//! `Sec-WebSocket-Protocol` entry `bearer.<jwt>` after a real subprotocol):
//!
//! | mode | the rest of the input |
//! |---|---|
//! | 0 | the authorizer's event JSON (as in `events/websocket/authorizer-*.json`) |
//! | 1 | a token's claims (the JWT payload), signed HS256 with the dev secret |
//! | 2 | a token's header, over valid claims, signed with the dev secret |
//! | 3 | the token's text itself |
//!
//! Signing the fuzzed claims and headers reaches what lies behind the signature check (claim
//! types, `exp`/`nbf`, the role, the user id), which unsigned inputs never pass.
//!
//! Asserted: a Deny says nothing (principal `anonymous`, empty context); an Allow's token
//! verifies, its principal is its `userId`, none of its values holds the token, and its context
//! reads back, through the message routes' [`caller`], as the very identity the token proves.

use std::collections::HashMap;
use std::sync::OnceLock;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::iam::IamPolicyEffect;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use rnd_domain::identity::{DEV_JWT_SECRET, JwtVerifier, VerifierConfig, extract_token};
use rnd_handlers::authorizer::authorize;
use rnd_handlers::context::caller;
use serde_json::{Value, json};

/// The method ARN of the fixtures' `$connect`.
const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123def4/dev/$connect";
/// A JWT header as our tokens have it.
const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
/// Claims that verify until 2100.
const VALID_CLAIMS: &str = r#"{"sub":"customer-1","role":"customer","name":"Ada Customer","iat":1769817600,"exp":4102444800}"#;

fn verifier() -> &'static JwtVerifier {
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        JwtVerifier::new(VerifierConfig::hs256(DEV_JWT_SECRET)).expect("the dev secret is valid")
    })
}

/// Runs one input; panics on a finding.
pub fn run(data: &[u8]) {
    answer(data);
}

/// The authorizer's checked answer to one input; `None` when the input makes no event.
pub fn answer(data: &[u8]) -> Option<ApiGatewayCustomAuthorizerResponse> {
    let (&selector, rest) = data.split_first()?;
    let token = match selector % 4 {
        0 => {
            return serde_json::from_slice(rest)
                .ok()
                .map(|request| check(&request));
        }
        1 => signed(HS256_HEADER.as_bytes(), rest),
        2 => signed(rest, VALID_CLAIMS.as_bytes()),
        _ => String::from_utf8_lossy(rest).into_owned(),
    };
    presenting(&token, selector / 4 % 3).map(|request| check(&request))
}

/// `header.payload.signature`, signed HS256 with the dev secret.
fn signed(header: &[u8], payload: &[u8]) -> String {
    static KEY: OnceLock<EncodingKey> = OnceLock::new();
    let key = KEY
        .get_or_init(|| EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes()).expect("an HMAC key"));
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), key, Algorithm::HS256).expect("HMAC signs");
    format!("{input}.{signature}")
}

/// The authorizer's event with `token` in the query (0), the `Authorization` header (1) or the
/// `Sec-WebSocket-Protocol` header (2); `None` when it cannot be a header value.
fn presenting(token: &str, place: u8) -> Option<ApiGatewayCustomAuthorizerRequestTypeRequest> {
    let mut headers = json!({
        "Host": "abc123def4.execute-api.us-east-1.amazonaws.com",
        "Sec-WebSocket-Version": "13",
    });
    let mut query = json!({});
    match place {
        0 => query["token"] = token.into(),
        1 => headers["Authorization"] = format!("Bearer {token}").into(),
        _ => headers["Sec-WebSocket-Protocol"] = format!("rnd.v1, bearer.{token}").into(),
    }
    serde_json::from_value(json!({
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers,
        "queryStringParameters": query,
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "stage": "dev",
            "connectionId": "L0SM9cOFvHcCIhw=",
            "apiId": "abc123def4",
        },
    }))
    .ok()
}

/// Authorizes `request`, checks the answer and returns it.
fn check(
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> ApiGatewayCustomAuthorizerResponse {
    let response = crate::runtime().block_on(authorize(verifier(), request));
    let token = extract_token(request.query_string_parameters.first("token"), |name| {
        request.headers.get(name).and_then(|v| v.to_str().ok())
    });
    serde_json::to_string(&response).expect("the response is JSON");
    let statement = &response.policy_document.statement;
    assert_eq!(statement.len(), 1, "one statement");
    let expected_resource = request.method_arn.as_deref().unwrap_or("*");
    assert_eq!(statement[0].resource, [expected_resource]);
    match statement[0].effect {
        IamPolicyEffect::Allow => {
            let token = token.expect("an Allow has a token");
            let identity = verifier().verify(token).expect("an Allow's token verifies");
            let context: HashMap<String, Value> =
                serde_json::from_value(response.context.clone()).expect("the context is a map");
            // What the authorizer writes itself (the resource is the request's own ARN); each
            // value on its own, as API Gateway passes them on.
            let written = context
                .values()
                .map(Value::to_string)
                .chain(response.principal_id.clone());
            for value in written {
                assert!(!value.contains(token), "the token is not in the response");
            }
            assert_eq!(
                response.principal_id.as_deref(),
                Some(identity.actor.user_id.as_str()),
                "the principal is the user"
            );
            // The message routes read the caller back from this context.
            let mut event = ApiGatewayWebsocketProxyRequest::default();
            event.request_context.connection_id = Some("L0SM9cOFvHcCIhw=".into());
            event.request_context.authorizer.fields = context;
            let read_back = caller(&event).expect("an Allow's context describes a caller");
            assert_eq!(
                read_back.identity, identity,
                "the routes see the token's identity"
            );
        }
        _ => {
            // Nothing of the request, so not its token either.
            assert_eq!(response.principal_id.as_deref(), Some("anonymous"));
            assert_eq!(response.context, json!({}), "a Deny says nothing");
        }
    }
    response
}
