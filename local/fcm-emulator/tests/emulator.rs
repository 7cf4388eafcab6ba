//! The emulator's own checks, with hand-made requests to its Router: the token endpoint
//! refuses what Google refuses, and `messages:send` answers FCM's bodies. (The adapter's tests
//! in `rnd-push-fcm` drive it over real HTTP.)

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rnd_fcm_emulator::{
    DEV_CLIENT_EMAIL, DEV_PRIVATE_KEY_ID, DEV_PRIVATE_KEY_PEM, DEV_PROJECT_ID, FCM_SCOPE, Fault,
    FcmEmulator,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const BASE: &str = "http://fcm.test";
const TOKEN_URL: &str = "http://fcm.test/token";
const UNTRUSTED_PRIVATE_KEY_PEM: &str = include_str!("keys/untrusted_private.pem");
const DEVICE: &str = "fcm-registration-token-of-a-phone";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims the adapter signs, at `now`.
fn claims() -> Value {
    json!({
        "iss": DEV_CLIENT_EMAIL,
        "scope": FCM_SCOPE,
        "aud": TOKEN_URL,
        "iat": now(),
        "exp": now() + 3600,
    })
}

/// `claims` signed RS256 with `key_pem`, `kid` the development key's id.
fn sign(claims: &Value, key_pem: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(DEV_PRIVATE_KEY_ID.to_owned());
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("an RSA key");
    jsonwebtoken::encode(&header, claims, &key).expect("signed")
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let response = app.clone().oneshot(request).await.expect("answered");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, headers)
}

async fn token_request(app: &Router, form: &str) -> (StatusCode, Value) {
    let request = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let (status, body, _) = call(app, request).await;
    (status, body)
}

async fn grant(app: &Router, assertion: &str) -> (StatusCode, Value) {
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    );
    token_request(app, &form).await
}

/// An access token for the development account.
async fn access_token(app: &Router) -> String {
    let (status, body) = grant(app, &sign(&claims(), DEV_PRIVATE_KEY_PEM)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn send_as(
    app: &Router,
    project: &str,
    bearer: Option<&str>,
    body: &Value,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut request = Request::post(format!("/v1/projects/{project}/messages:send"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(bearer) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
    }
    call(app, request.body(Body::from(body.to_string())).unwrap()).await
}

async fn send(app: &Router, body: &Value) -> (StatusCode, Value, axum::http::HeaderMap) {
    let token = access_token(app).await;
    send_as(app, DEV_PROJECT_ID, Some(&token), body).await
}

fn message() -> Value {
    json!({"message": {
        "token": DEVICE,
        "notification": {"title": "Order ready", "body": "Come and get it"},
        "data": {"event": "order:status_update", "orderId": "ord-1", "seq": "3"},
        "android": {"collapse_key": "order-ord-1", "priority": "HIGH"},
        "apns": {"headers": {"apns-collapse-id": "order-ord-1", "apns-priority": "10"}},
    }})
}

fn fcm_error_code(body: &Value) -> Option<&str> {
    body["error"]["details"]
        .as_array()?
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.firebase.fcm.v1.FcmError")?["errorCode"]
        .as_str()
}

#[tokio::test]
async fn a_valid_assertion_gets_a_bearer_token_for_the_configured_lifetime() {
    // GIVEN an emulator whose tokens live 10 minutes
    let fcm = FcmEmulator::new(BASE);
    fcm.set_token_lifetime(Duration::from_secs(600));

    // WHEN the development account asks for a token
    let (status, body) = grant(&fcm.router(), &sign(&claims(), DEV_PRIVATE_KEY_PEM)).await;

    // THEN it gets one, as Google answers, and the grant is counted
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(fcm.token_grants(), 1);
}

/// The `error` and `error_description` of a refused grant of `claims` signed with `key_pem`.
async fn refusal(claims: &Value, key_pem: &str) -> (String, String) {
    let fcm = FcmEmulator::new(BASE);
    let (status, body) = grant(&fcm.router(), &sign(claims, key_pem)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(fcm.token_grants(), 0);
    (
        body["error"].as_str().unwrap().to_owned(),
        body["error_description"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn an_assertion_signed_with_another_key_is_refused() {
    // GIVEN the right claims signed with a key the emulator does not trust WHEN posted THEN
    // Google's refusal of the signature
    let (error, description) = refusal(&claims(), UNTRUSTED_PRIVATE_KEY_PEM).await;
    assert_eq!(error, "invalid_grant");
    assert_eq!(description, "Invalid JWT Signature.");
}

#[tokio::test]
async fn an_assertion_for_another_audience_is_refused() {
    // GIVEN an assertion for Google's token URL, not the emulator's WHEN posted THEN refused,
    // naming the right audience
    let mut claims = claims();
    claims["aud"] = json!("https://oauth2.googleapis.com/token");
    let (error, description) = refusal(&claims, DEV_PRIVATE_KEY_PEM).await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("audience"), "{description}");
    assert!(description.contains(TOKEN_URL), "{description}");
}

#[tokio::test]
async fn an_expired_or_too_long_lived_assertion_is_refused() {
    // GIVEN an assertion that expired an hour ago
    let mut expired = claims();
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    let (error, description) = refusal(&expired, DEV_PRIVATE_KEY_PEM).await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("short-lived"), "{description}");

    // AND one that would live two hours
    let mut long_lived = claims();
    long_lived["exp"] = json!(now() + 7200);
    let (error, _) = refusal(&long_lived, DEV_PRIVATE_KEY_PEM).await;
    assert_eq!(error, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_without_the_fcm_scope_is_refused() {
    // GIVEN an assertion asking for another scope WHEN posted THEN invalid_scope
    let mut claims = claims();
    claims["scope"] = json!("https://www.googleapis.com/auth/userinfo.email");
    let (error, _) = refusal(&claims, DEV_PRIVATE_KEY_PEM).await;
    assert_eq!(error, "invalid_scope");
}

#[tokio::test]
async fn an_unknown_account_is_refused() {
    // GIVEN an assertion from an account the emulator does not trust WHEN posted THEN refused
    let mut claims = claims();
    claims["iss"] = json!("someone@elsewhere.iam.gserviceaccount.com");
    let (error, description) = refusal(&claims, DEV_PRIVATE_KEY_PEM).await;
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("account not found"), "{description}");
}

#[tokio::test]
async fn an_hs256_assertion_is_refused_even_with_the_right_claims() {
    // GIVEN the right claims signed HS256 WHEN posted THEN refused: only RS256 verifies
    let fcm = FcmEmulator::new(BASE);
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(b"guess").unwrap(),
    )
    .unwrap();
    let (status, body) = grant(&fcm.router(), &hs256).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn another_grant_type_or_a_missing_assertion_is_refused() {
    // GIVEN a client-credentials request, then a jwt-bearer one without assertion WHEN posted
    // THEN unsupported_grant_type, then invalid_request
    let app = FcmEmulator::new(BASE).router();
    let (status, body) = token_request(&app, "grant_type=client_credentials").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    let (_, body) = token_request(
        &app,
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
    )
    .await;
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_valid_message_is_delivered_named_and_listed() {
    // GIVEN an emulator WHEN a valid message is sent with a fresh token
    let fcm = FcmEmulator::new(BASE);
    let app = fcm.router();
    let (status, body, _) = send(&app, &message()).await;

    // THEN FCM's answer names the message in the project
    assert_eq!(status, StatusCode::OK, "{body}");
    let name = body["name"].as_str().unwrap();
    assert!(
        name.starts_with(&format!("projects/{DEV_PROJECT_ID}/messages/")),
        "{name}"
    );

    // AND the phone's view holds it, also through GET /messages?token=
    let received = fcm.messages_to(DEVICE);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].name, name);
    assert_eq!(received[0].body.as_deref(), Some("Come and get it"));
    assert_eq!(received[0].data["seq"], "3");
    assert_eq!(received[0].apns_collapse_id.as_deref(), Some("order-ord-1"));
    assert!(received[0].high_priority);
    let list = Request::get(format!("/messages?token={DEVICE}"))
        .body(Body::empty())
        .unwrap();
    let (status, listed, _) = call(&app, list).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["title"], "Order ready");
    assert_eq!(listed[0]["collapseKey"], "order-ord-1");
    assert_eq!(listed[0]["androidPriority"], "HIGH");
    assert_eq!(listed[0]["request"], message());
    let (_, others, _) = call(
        &app,
        Request::get("/messages?token=another")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(others, json!([]));
}

#[tokio::test]
async fn a_send_without_a_valid_access_token_is_unauthenticated() {
    // GIVEN no bearer token, then one the emulator never issued WHEN sending THEN 401
    // UNAUTHENTICATED with WWW-Authenticate, and nothing delivered
    let fcm = FcmEmulator::new(BASE);
    let app = fcm.router();
    for bearer in [None, Some("ya29.made-up")] {
        let (status, body, headers) = send_as(&app, DEV_PROJECT_ID, bearer, &message()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bearer:?}");
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    }
    assert!(fcm.messages().is_empty());
}

#[tokio::test]
async fn expired_access_tokens_are_refused_and_new_ones_work() {
    // GIVEN a token the emulator then expires
    let fcm = FcmEmulator::new(BASE);
    let app = fcm.router();
    let old = access_token(&app).await;
    fcm.expire_access_tokens();

    // WHEN it is used THEN 401, naming the expiry
    let (status, body, _) = send_as(&app, DEV_PROJECT_ID, Some(&old), &message()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_EXPIRED"
    );

    // AND a token fetched afterwards works
    let fresh = access_token(&app).await;
    let (status, _, _) = send_as(&app, DEV_PROJECT_ID, Some(&fresh), &message()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_for_one_project_cannot_send_in_another() {
    // GIVEN a token of the development project WHEN sending in another project THEN 403
    let app = FcmEmulator::new(BASE).router();
    let token = access_token(&app).await;
    let (status, body, _) = send_as(&app, "someone-elses-project", Some(&token), &message()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
}

/// The answer to `message` after `change` is applied to it.
async fn answer_to(change: impl FnOnce(&mut Value)) -> (StatusCode, Value) {
    let fcm = FcmEmulator::new(BASE);
    let mut message = message();
    change(&mut message);
    let (status, body, _) = send(&fcm.router(), &message).await;
    if status != StatusCode::OK {
        assert!(fcm.messages().is_empty());
    }
    (status, body)
}

#[tokio::test]
async fn a_data_value_that_is_not_a_string_is_an_invalid_argument() {
    // GIVEN a number as a data value WHEN sent THEN 400 naming the field, as FCM does
    let (status, body) = answer_to(|m| m["message"]["data"]["seq"] = json!(3)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["details"][0]["fieldViolations"][0]["field"],
        "message.data[2].value"
    );
}

#[tokio::test]
async fn a_message_needs_exactly_one_target() {
    // GIVEN a message without a target, then one with two WHEN sent THEN 400 each
    let (status, body) = answer_to(|m| {
        m["message"].as_object_mut().unwrap().remove("token");
    })
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "Recipient of the message is not set."
    );

    let (status, body) = answer_to(|m| m["message"]["topic"] = json!("news")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("oneof"));
}

#[tokio::test]
async fn unknown_fields_and_priorities_are_invalid_arguments() {
    // GIVEN a misspelt field, an unknown Android priority, an APNs priority of 7 WHEN sent
    // THEN 400 each
    let (status, _) = answer_to(|m| m["message"]["android"]["colapse_key"] = json!("x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = answer_to(|m| m["message"]["android"]["priority"] = json!("URGENT")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) =
        answer_to(|m| m["message"]["apns"]["headers"]["apns-priority"] = json!("7")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn proto_json_camel_case_names_are_accepted() {
    // GIVEN `collapseKey`, as proto3 JSON allows WHEN sent THEN delivered with that key
    let fcm = FcmEmulator::new(BASE);
    let mut message = message();
    message["message"]["android"] = json!({"collapseKey": "order-ord-1", "priority": "NORMAL"});
    let (status, _, _) = send(&fcm.router(), &message).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        fcm.messages()[0].collapse_key.as_deref(),
        Some("order-ord-1")
    );
}

#[tokio::test]
async fn a_payload_over_4096_bytes_is_too_big() {
    // GIVEN data whose keys and values with the title and body pass 4096 bytes
    let (status, body) =
        answer_to(|m| m["message"]["data"]["note"] = json!("x".repeat(4096))).await;
    // THEN FCM's INVALID_ARGUMENT
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "Android message is too big");
    assert_eq!(fcm_error_code(&body), Some("INVALID_ARGUMENT"));
}

#[tokio::test]
async fn faults_answer_fcms_real_bodies() {
    let cases = [
        (Fault::Unregistered, 404, "NOT_FOUND", Some("UNREGISTERED")),
        (
            Fault::InvalidToken,
            400,
            "INVALID_ARGUMENT",
            Some("INVALID_ARGUMENT"),
        ),
        (
            Fault::QuotaExceeded {
                retry_after: Some(Duration::from_secs(30)),
            },
            429,
            "RESOURCE_EXHAUSTED",
            Some("QUOTA_EXCEEDED"),
        ),
        (
            Fault::Unavailable { retry_after: None },
            503,
            "UNAVAILABLE",
            Some("UNAVAILABLE"),
        ),
        (Fault::Internal, 500, "INTERNAL", Some("INTERNAL")),
        (
            Fault::SenderIdMismatch,
            403,
            "PERMISSION_DENIED",
            Some("SENDER_ID_MISMATCH"),
        ),
        (
            Fault::ThirdPartyAuthError,
            401,
            "UNAUTHENTICATED",
            Some("THIRD_PARTY_AUTH_ERROR"),
        ),
        (Fault::Unauthenticated, 401, "UNAUTHENTICATED", None),
    ];
    for (fault, code, status, error_code) in cases {
        // GIVEN a device with the fault WHEN a message is sent to it
        let fcm = FcmEmulator::new(BASE);
        fcm.fail(DEVICE, fault);
        let (answered, body, _) = send(&fcm.router(), &message()).await;
        // THEN FCM's status, google.rpc status and FCM error code
        assert_eq!(answered.as_u16(), code, "{fault:?}");
        assert_eq!(body["error"]["code"], code, "{fault:?}");
        assert_eq!(body["error"]["status"], status, "{fault:?}");
        assert_eq!(fcm_error_code(&body), error_code, "{fault:?}");
        assert!(fcm.messages().is_empty(), "{fault:?}");
    }
}

#[tokio::test]
async fn a_counted_fault_answers_n_times_with_retry_after_then_delivers() {
    // GIVEN two throttled sends to the device, asking for 30 s
    let fcm = FcmEmulator::new(BASE);
    let app = fcm.router();
    fcm.fail_next(
        DEVICE,
        Fault::QuotaExceeded {
            retry_after: Some(Duration::from_secs(30)),
        },
        2,
    );
    // WHEN three messages are sent THEN two 429 with Retry-After: 30, then delivered
    for _ in 0..2 {
        let (status, _, headers) = send(&app, &message()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "30");
    }
    let (status, _, _) = send(&app, &message()).await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<u16> = fcm.attempts().iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![429, 429, 200]);
}

#[tokio::test]
async fn validate_only_checks_without_delivering() {
    // GIVEN a valid message with validate_only WHEN sent THEN accepted and not delivered
    let fcm = FcmEmulator::new(BASE);
    let mut message = message();
    message["validate_only"] = json!(true);
    let (status, body, _) = send(&fcm.router(), &message).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(fcm.messages().is_empty());
}

#[tokio::test]
async fn nested_under_a_path_the_token_url_includes_it() {
    // GIVEN the emulator mounted at /fcm, as the local stack mounts it
    let fcm = FcmEmulator::new("http://127.0.0.1:9001/fcm/");
    let app = Router::new().nest("/fcm", fcm.router());
    assert_eq!(fcm.token_url(), "http://127.0.0.1:9001/fcm/token");

    // WHEN an assertion for that token URL is posted there THEN it is granted
    let mut claims = claims();
    claims["aud"] = json!(fcm.token_url());
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
        sign(&claims, DEV_PRIVATE_KEY_PEM)
    );
    let request = Request::post("/fcm/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let (status, body, _) = call(&app, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // AND the service account it hands out points there
    let account: Value = serde_json::from_str(&fcm.dev_service_account_json()).unwrap();
    assert_eq!(account["token_uri"], "http://127.0.0.1:9001/fcm/token");
}

#[test]
fn another_account_can_be_trusted_and_a_non_key_cannot() {
    // GIVEN an emulator WHEN told to trust a non-key, then a public key THEN only the key is
    // taken
    let fcm = FcmEmulator::new(BASE);
    assert!(
        fcm.trust("a@b.iam.gserviceaccount.com", "k1", "p", b"not a key")
            .is_err()
    );
    assert!(
        fcm.trust(
            "a@b.iam.gserviceaccount.com",
            "k1",
            "p",
            rnd_fcm_emulator::DEV_PUBLIC_KEY_PEM.as_bytes()
        )
        .is_ok()
    );
}
