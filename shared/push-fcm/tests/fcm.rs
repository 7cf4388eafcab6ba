//! The real adapter against the FCM emulator over HTTP: what reaches FCM, how the access token
//! is fetched, shared and refreshed, and how each of FCM's failures is classified.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::time::{Duration, Instant};

use rnd_domain::push::{PushError, PushMessage, PushSender};
use rnd_fcm_emulator::{Fault, RunningEmulator, SendAttempt};
use rnd_push_fcm::{FcmSender, ServiceAccount, ServiceAccountError};
use serde_json::json;

const DEVICE: &str = "fcm-registration-token-of-a-phone";
const TIMEOUT: Duration = Duration::from_secs(3);

async fn emulator() -> RunningEmulator {
    rnd_fcm_emulator::start().await.expect("start the emulator")
}

/// The real sender, as the development service account, pointed at `emulator`.
fn sender(emulator: &RunningEmulator) -> FcmSender {
    let account = ServiceAccount::from_json(&emulator.dev_service_account_json())
        .expect("the development account parses");
    FcmSender::new(account, emulator.base_url(), TIMEOUT).expect("a sender")
}

/// The real sender as the development account under an email `emulator` does not trust: the
/// token endpoint refuses its grant.
fn untrusted_sender(emulator: &RunningEmulator) -> FcmSender {
    let json = emulator
        .dev_service_account_json()
        .replace("fcm-sender@", "someone-else@");
    let account = ServiceAccount::from_json(&json).expect("parses");
    FcmSender::new(account, emulator.base_url(), TIMEOUT).expect("a sender")
}

fn message(token: &str) -> PushMessage {
    PushMessage {
        token: token.to_owned(),
        title: "Your order is on its way".to_owned(),
        body: "Chef Ana's lasagne left the kitchen".to_owned(),
        data: BTreeMap::from([
            ("event".to_owned(), "order:status_update".to_owned()),
            ("orderId".to_owned(), "ord-42".to_owned()),
            ("status".to_owned(), "picked_up".to_owned()),
            ("seq".to_owned(), "7".to_owned()),
        ]),
        collapse_key: "order-ord-42".to_owned(),
        high_priority: true,
    }
}

fn attempt(status: u16) -> SendAttempt {
    SendAttempt {
        token: Some(DEVICE.to_owned()),
        status,
    }
}

/// The error and its sources, as one line.
fn chain(err: &PushError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_send_delivers_exactly_the_fcm_v1_body() {
    // GIVEN the emulator and the sender, signed in as the development account
    let fcm = emulator().await;
    let sender = sender(&fcm);

    // WHEN a high-priority message is sent
    sender.send(&message(DEVICE)).await.expect("delivered");

    // THEN the assertion passed the token endpoint's checks, and FCM received exactly this body
    assert_eq!(fcm.token_grants(), 1);
    let received = fcm.messages_to(DEVICE);
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].request,
        json!({"message": {
            "token": DEVICE,
            "notification": {
                "title": "Your order is on its way",
                "body": "Chef Ana's lasagne left the kitchen",
            },
            "data": {"event": "order:status_update", "orderId": "ord-42", "seq": "7", "status": "picked_up"},
            "android": {"collapse_key": "order-ord-42", "priority": "HIGH"},
            "apns": {"headers": {"apns-collapse-id": "order-ord-42", "apns-priority": "10"}},
        }})
    );
    // AND the phone would show it now, collapsing older pushes of the order
    assert_eq!(
        received[0].title.as_deref(),
        Some("Your order is on its way")
    );
    assert!(received[0].high_priority);
    assert_eq!(received[0].collapse_key.as_deref(), Some("order-ord-42"));
}

#[tokio::test]
async fn the_access_token_is_fetched_once_for_many_sends() {
    // GIVEN a sender WHEN it sends five messages one after another
    let fcm = emulator().await;
    let sender = sender(&fcm);
    for _ in 0..5 {
        sender.send(&message(DEVICE)).await.expect("delivered");
    }
    // THEN one token served them all
    assert_eq!(fcm.token_grants(), 1);
    assert_eq!(fcm.messages_to(DEVICE).len(), 5);
}

#[tokio::test]
async fn concurrent_sends_share_one_token_fetch() {
    // GIVEN a sender that has no token yet
    let fcm = emulator().await;
    let sender = sender(&fcm);

    // WHEN twenty sends start at once
    let messages: Vec<PushMessage> = (0..20).map(|i| message(&format!("device-{i}"))).collect();
    let results = futures::future::join_all(messages.iter().map(|m| sender.send(m))).await;

    // THEN all were delivered with the one token a single fetch got
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(fcm.token_grants(), 1);
    assert_eq!(fcm.messages().len(), 20);
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_and_the_send_succeeds() {
    // GIVEN a sender holding a token that the emulator then expires
    let fcm = emulator().await;
    let sender = sender(&fcm);
    sender.send(&message(DEVICE)).await.expect("delivered");
    fcm.expire_access_tokens();

    // WHEN it sends again
    sender
        .send(&message(DEVICE))
        .await
        .expect("delivered after a refresh");

    // THEN FCM answered 401 once, a second token was fetched, and the retry was delivered
    assert_eq!(fcm.token_grants(), 2);
    assert_eq!(
        fcm.attempts(),
        vec![attempt(200), attempt(401), attempt(200)]
    );
    assert_eq!(fcm.messages_to(DEVICE).len(), 2);
}

#[tokio::test]
async fn a_token_is_refreshed_shortly_before_it_expires_without_a_401() {
    // GIVEN tokens that live 2 s (refreshed halfway)
    let fcm = emulator().await;
    fcm.set_token_lifetime(Duration::from_secs(2));
    let sender = sender(&fcm);
    sender.send(&message(DEVICE)).await.expect("delivered");

    // WHEN the next send comes past the refresh time but before expiry
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sender.send(&message(DEVICE)).await.expect("delivered");

    // THEN a new token was fetched first and FCM never refused one
    assert_eq!(fcm.token_grants(), 2);
    assert_eq!(fcm.attempts(), vec![attempt(200), attempt(200)]);
}

#[tokio::test]
async fn a_second_401_is_unauthorized_after_exactly_one_refresh() {
    // GIVEN FCM refuses every access token on sends to the device
    let fcm = emulator().await;
    fcm.fail(DEVICE, Fault::Unauthenticated);
    let sender = sender(&fcm);

    // WHEN a message is sent
    let err = sender.send(&message(DEVICE)).await.expect_err("refused");

    // THEN it is unauthorized, after one refresh and one retry, with FCM's answer as the source
    assert!(matches!(err, PushError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(chain(&err).contains("UNAUTHENTICATED"), "{}", chain(&err));
    assert_eq!(fcm.token_grants(), 2);
    assert_eq!(fcm.attempts(), vec![attempt(401), attempt(401)]);
}

#[tokio::test]
async fn one_401_then_success_is_a_delivered_send() {
    // GIVEN FCM refuses the first access token once WHEN a message is sent THEN it is
    // delivered with a fresh token, after one 401
    let fcm = emulator().await;
    fcm.fail_next(DEVICE, Fault::Unauthenticated, 1);
    sender(&fcm)
        .send(&message(DEVICE))
        .await
        .expect("delivered with the fresh token");
    assert_eq!(fcm.attempts(), vec![attempt(401), attempt(200)]);
}

/// The error of one send to a device that the emulator fails with `fault`, and the attempts.
async fn failure_for(fault: Fault) -> (PushError, Vec<SendAttempt>) {
    let fcm = emulator().await;
    fcm.fail(DEVICE, fault);
    let err = sender(&fcm)
        .send(&message(DEVICE))
        .await
        .expect_err("the emulator fails it");
    (err, fcm.attempts())
}

#[tokio::test]
async fn unregistered_becomes_unregistered() {
    // GIVEN an uninstalled app WHEN sending THEN unregistered, after one request
    let (err, attempts) = failure_for(Fault::Unregistered).await;
    assert!(matches!(err, PushError::Unregistered), "{err:?}");
    assert_eq!(attempts, vec![attempt(404)]);
}

#[tokio::test]
async fn an_invalid_registration_token_becomes_unregistered() {
    // GIVEN a token FCM calls invalid WHEN sending THEN unregistered (the device is pruned)
    let (err, _) = failure_for(Fault::InvalidToken).await;
    assert!(matches!(err, PushError::Unregistered), "{err:?}");
}

#[tokio::test]
async fn quota_exceeded_becomes_throttled_with_the_retry_after_wait() {
    // GIVEN FCM throttles the next send to the device, asking for 30 s
    let fcm = emulator().await;
    fcm.fail_next(
        DEVICE,
        Fault::QuotaExceeded {
            retry_after: Some(Duration::from_secs(30)),
        },
        1,
    );
    let sender = sender(&fcm);

    // WHEN a message is sent THEN it is throttled with that wait, without a retry inside send
    let err = sender.send(&message(DEVICE)).await.expect_err("throttled");
    assert!(matches!(err, PushError::Throttled { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(err.is_retryable());
    assert_eq!(fcm.attempts(), vec![attempt(429)]);

    // AND the caller's retry is delivered
    sender.send(&message(DEVICE)).await.expect("delivered");
}

#[tokio::test]
async fn unavailable_503_becomes_unavailable_and_is_not_retried_inside_send() {
    // GIVEN FCM unavailable for the next two sends, asking for 5 s
    let fcm = emulator().await;
    fcm.fail_next(
        DEVICE,
        Fault::Unavailable {
            retry_after: Some(Duration::from_secs(5)),
        },
        2,
    );

    // WHEN a message is sent THEN unavailable with that wait, after exactly one request
    let err = sender(&fcm)
        .send(&message(DEVICE))
        .await
        .expect_err("unavailable");
    assert!(matches!(err, PushError::Unavailable { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    assert!(chain(&err).contains("UNAVAILABLE"), "{}", chain(&err));
    assert_eq!(fcm.attempts(), vec![attempt(503)]);
}

#[tokio::test]
async fn internal_500_becomes_unavailable() {
    // GIVEN FCM failing internally WHEN sending THEN unavailable (retryable)
    let (err, _) = failure_for(Fault::Internal).await;
    assert!(matches!(err, PushError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn sender_id_mismatch_and_third_party_auth_errors_are_rejected_without_a_refresh() {
    // GIVEN a token of another project, then a project whose APNs credentials are refused
    // WHEN sending THEN rejected, with no token refresh and no second request
    for fault in [Fault::SenderIdMismatch, Fault::ThirdPartyAuthError] {
        let (err, attempts) = failure_for(fault).await;
        assert!(matches!(err, PushError::Rejected(_)), "{fault:?}: {err:?}");
        assert_eq!(attempts.len(), 1, "{fault:?}: no refresh and retry");
    }
}

#[tokio::test]
async fn an_oversize_message_is_rejected() {
    // GIVEN a message whose data is larger than FCM's 4096-byte payload
    let fcm = emulator().await;
    let mut big = message(DEVICE);
    big.data.insert("note".to_owned(), "x".repeat(4096));

    // WHEN sent THEN FCM refuses it and nothing reaches the phone
    let err = sender(&fcm).send(&big).await.expect_err("too big");
    assert!(matches!(err, PushError::Rejected(_)), "{err:?}");
    assert!(chain(&err).contains("too big"), "{}", chain(&err));
    assert!(fcm.messages().is_empty());
}

#[tokio::test]
async fn a_service_account_the_token_endpoint_refuses_is_unauthorized() {
    // GIVEN the development account under an email the emulator does not know
    let fcm = emulator().await;
    let sender = untrusted_sender(&fcm);

    // WHEN a message is sent THEN the grant is refused: unauthorized, nothing sent to FCM
    let err = sender.send(&message(DEVICE)).await.expect_err("refused");
    assert!(matches!(err, PushError::Unauthorized(_)), "{err:?}");
    assert!(chain(&err).contains("invalid_grant"), "{}", chain(&err));
    assert!(fcm.attempts().is_empty());
}

#[tokio::test]
async fn concurrent_sends_share_one_refused_token_request() {
    // GIVEN a sender whose account the token endpoint refuses
    let fcm = emulator().await;
    let sender = untrusted_sender(&fcm);

    // WHEN ten sends start at once
    let messages: Vec<PushMessage> = (0..10).map(|i| message(&format!("device-{i}"))).collect();
    let results = futures::future::join_all(messages.iter().map(|m| sender.send(m))).await;

    // THEN each is unauthorized, from the one token request they waited on
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(PushError::Unauthorized(_)))),
        "{results:?}"
    );
    assert_eq!(fcm.token_requests(), 1);
}

#[tokio::test]
async fn an_unreachable_fcm_or_token_endpoint_is_unavailable() {
    // GIVEN a loopback port nothing listens on
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let fcm = emulator().await;

    // WHEN FCM is there but unreachable THEN unavailable
    let account = ServiceAccount::from_json(&fcm.dev_service_account_json()).unwrap();
    let to_nowhere = FcmSender::new(account, &format!("http://{closed}"), TIMEOUT).unwrap();
    let err = to_nowhere
        .send(&message(DEVICE))
        .await
        .expect_err("unreachable");
    assert!(matches!(err, PushError::Unavailable { .. }), "{err:?}");

    // AND when the token endpoint is unreachable THEN unavailable too
    let json = rnd_fcm_emulator::dev_service_account_json(&format!("http://{closed}/token"));
    let account = ServiceAccount::from_json(&json).unwrap();
    let no_tokens = FcmSender::new(account, fcm.base_url(), TIMEOUT).unwrap();
    let err = no_tokens
        .send(&message(DEVICE))
        .await
        .expect_err("no token");
    assert!(matches!(err, PushError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn an_https_url_goes_through_tls_and_a_failed_handshake_is_unavailable() {
    // GIVEN the emulator (plain HTTP) named with https URLs, so the client must speak TLS
    let fcm = emulator().await;
    let json = rnd_fcm_emulator::dev_service_account_json(&format!("https://{}/token", fcm.addr()));
    let account = ServiceAccount::from_json(&json).unwrap();
    let sender = FcmSender::new(account, &format!("https://{}", fcm.addr()), TIMEOUT).unwrap();

    // WHEN a message is sent THEN the TLS handshake fails: unavailable, nothing granted
    let err = sender
        .send(&message(DEVICE))
        .await
        .expect_err("no TLS there");
    assert!(matches!(err, PushError::Unavailable { .. }), "{err:?}");
    assert!(chain(&err).contains("token endpoint"), "{}", chain(&err));
    assert_eq!(fcm.token_grants(), 0);
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_within_the_timeout() {
    // GIVEN a server that accepts connections and never answers
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let json = rnd_fcm_emulator::dev_service_account_json(&format!("http://{addr}/token"));
    let account = ServiceAccount::from_json(&json).unwrap();
    let timeout = Duration::from_millis(300);
    let sender = FcmSender::new(account, &format!("http://{addr}"), timeout).unwrap();

    // WHEN a message is sent
    let started = Instant::now();
    let err = sender.send(&message(DEVICE)).await.expect_err("timed out");

    // THEN it is unavailable after about the timeout
    assert!(matches!(err, PushError::Unavailable { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    held.abort();
}

#[tokio::test]
async fn secrets_never_appear_in_debug() {
    // GIVEN a sender that holds a token after a send, and the error of a refused grant
    let fcm = emulator().await;
    let account = ServiceAccount::from_json(&fcm.dev_service_account_json()).unwrap();
    let sender = sender(&fcm);
    sender.send(&message(DEVICE)).await.expect("delivered");
    let refused = untrusted_sender(&fcm)
        .send(&message(DEVICE))
        .await
        .expect_err("refused");

    // WHEN each is printed with Debug
    let printed = format!("{account:?} {sender:?} {refused:?}");

    // THEN no key material and no access token shows
    let key_body = rnd_fcm_emulator::DEV_PRIVATE_KEY_PEM
        .lines()
        .nth(1)
        .unwrap();
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    assert!(!printed.contains(key_body), "{printed}");
    assert!(!printed.contains("ya29."), "{printed}");
    assert!(printed.contains("<redacted>"), "{printed}");
}

#[test]
fn a_key_file_that_is_not_a_usable_service_account_is_refused_with_the_reason() {
    let good: serde_json::Value = serde_json::from_str(
        &rnd_fcm_emulator::dev_service_account_json("https://oauth2.googleapis.com/token"),
    )
    .unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut file = good.clone();
        file[field] = value;
        ServiceAccount::from_json(&file.to_string())
    };

    // GIVEN Google's shape, the account parses and keeps the token_uri as written
    let account = ServiceAccount::from_json(&good.to_string()).expect("parses");
    assert_eq!(account.token_uri(), "https://oauth2.googleapis.com/token");
    assert_eq!(account.project_id(), rnd_fcm_emulator::DEV_PROJECT_ID);

    // WHEN a part is wrong THEN the error names it
    assert!(matches!(
        with("type", json!("authorized_user")),
        Err(ServiceAccountError::NotAServiceAccount(_))
    ));
    assert!(matches!(
        with(
            "private_key",
            json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        ),
        Err(ServiceAccountError::PrivateKey(_))
    ));
    assert!(matches!(
        with("token_uri", json!("not a url")),
        Err(ServiceAccountError::TokenUri(_))
    ));
    assert!(matches!(
        with("project_id", json!("a/b")),
        Err(ServiceAccountError::Invalid("project_id"))
    ));
    assert!(matches!(
        with("client_email", json!(5)),
        Err(ServiceAccountError::Json(_))
    ));
}
