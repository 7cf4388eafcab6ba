//! The real adapter (and the real SDK client) against the mock Management API: what reaches
//! the connection, and how each failure of `PostToConnection` is classified.

use std::time::Duration;

use rnd_domain::ids::ConnectionId;
use rnd_domain::ports::{Notifier, NotifyError};
use rnd_notifier_apigw::ApiGatewayNotifier;
use rnd_notifier_apigw::mock::{self, Attempt, MockManagementApi, Post};

/// An API Gateway-style connection id: base64, ending with `=`, with `+` and `/` in it.
const CONN: &str = "L0SM9c+OFv/HcCIhw=";
const TIMEOUT: Duration = Duration::from_secs(2);

fn conn(id: &str) -> ConnectionId {
    ConnectionId::parse(id).expect("valid connection id")
}

#[tokio::test]
async fn a_post_reaches_the_connection_with_its_body_and_an_encoded_id_round_trips() {
    // GIVEN the mock API and the real notifier pointed at it
    let api = MockManagementApi::start().await;
    let notifier = api.notifier(TIMEOUT);

    // WHEN a message is posted to a connection whose id needs percent-encoding in the path
    let payload = r#"{"event":"order:status_update","data":{"seq":7}}"#;
    notifier.post(&conn(CONN), payload).await.expect("accepted");

    // THEN the server received exactly that body, for exactly that connection id
    assert_eq!(
        api.posts(),
        vec![Post {
            connection_id: CONN.to_owned(),
            body: payload.to_owned(),
        }]
    );
}

async fn failure_for(status: u16) -> (NotifyError, Vec<Attempt>) {
    let api = MockManagementApi::start().await;
    api.answer(CONN, status);
    let err = api
        .notifier(TIMEOUT)
        .post(&conn(CONN), "{}")
        .await
        .expect_err("the mock refuses");
    (err, api.attempts())
}

#[tokio::test]
async fn gone_410_becomes_gone() {
    // GIVEN a connection the API says is gone WHEN posting THEN the error is Gone
    let (err, attempts) = failure_for(410).await;
    assert!(matches!(err, NotifyError::Gone), "{err:?}");
    // AND the SDK made exactly one request (retries belong to the caller)
    assert_eq!(attempts.len(), 1);
}

#[tokio::test]
async fn limit_exceeded_429_becomes_throttled_and_is_not_retried_by_the_sdk() {
    let (err, attempts) = failure_for(429).await;
    assert!(matches!(err, NotifyError::Throttled), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(attempts.len(), 1);
}

#[tokio::test]
async fn server_errors_become_unavailable_keeping_the_sdk_error_as_source() {
    for status in [500, 502, 503] {
        let (err, attempts) = failure_for(status).await;
        assert!(
            matches!(err, NotifyError::Unavailable(_)),
            "{status}: {err:?}"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "{status}: no source"
        );
        assert_eq!(attempts.len(), 1, "{status}: the SDK must not retry");
    }
}

#[tokio::test]
async fn payload_too_large_and_forbidden_are_rejected_not_retryable() {
    for status in [413, 403, 400] {
        let (err, _) = failure_for(status).await;
        assert!(matches!(err, NotifyError::Rejected(_)), "{status}: {err:?}");
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn a_connection_failing_only_its_first_calls_then_accepts() {
    // GIVEN a connection that answers 500 twice, then accepts
    let api = MockManagementApi::start().await;
    api.answer_first(CONN, 500, 2);
    let notifier = api.notifier(TIMEOUT);

    // WHEN posting three times
    let results = [
        notifier.post(&conn(CONN), "1").await.is_ok(),
        notifier.post(&conn(CONN), "2").await.is_ok(),
        notifier.post(&conn(CONN), "3").await.is_ok(),
    ];

    // THEN the first two fail and the third is delivered
    assert_eq!(results, [false, false, true]);
    assert_eq!(api.bodies_to(CONN), ["3"]);
}

#[tokio::test]
async fn a_post_that_outlasts_the_attempt_timeout_is_unavailable() {
    // GIVEN a connection whose answers take longer than the notifier waits
    let api = MockManagementApi::start().await;
    api.delay(CONN, Duration::from_secs(5));
    let notifier = api.notifier(Duration::from_millis(200));

    // WHEN posting THEN it times out as Unavailable (retryable)
    let err = notifier.post(&conn(CONN), "{}").await.unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    // GIVEN a notifier pointed at a port where nothing listens any more
    let endpoint = {
        let api = MockManagementApi::start().await;
        api.endpoint()
    };
    let notifier = ApiGatewayNotifier::from_sdk_config(&mock::sdk_config(), &endpoint, TIMEOUT);

    // WHEN posting THEN the dispatch failure is Unavailable (retryable)
    let err = notifier.post(&conn(CONN), "{}").await.unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn unsigned_requests_are_refused_like_aws_does() {
    // GIVEN the mock WHEN a request arrives without a SigV4 signature
    let api = MockManagementApi::start().await;
    let url = format!("{}/@connections/abc%3D", api.endpoint());
    let status = raw_post(&url).await;
    // THEN it is refused with 403 and nothing is recorded
    assert_eq!(status, 403);
    assert!(api.posts().is_empty());
}

/// A bare HTTP/1.1 POST without credentials; returns the status code.
async fn raw_post(url: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line")
}

#[tokio::test]
async fn the_mock_also_serves_get_and_delete_connection_to_the_sdk() {
    // GIVEN the mock, one open connection and one gone
    let api = MockManagementApi::start().await;
    api.answer("G0neC0nn=", 410);
    let client = api.notifier(TIMEOUT).client().clone();

    // WHEN the SDK gets and deletes them
    let open = client.get_connection().connection_id(CONN).send().await;
    let gone = client
        .get_connection()
        .connection_id("G0neC0nn=")
        .send()
        .await;
    client
        .delete_connection()
        .connection_id(CONN)
        .send()
        .await
        .expect("deleted");

    // THEN the open one is described, the gone one is GoneException, the deletion recorded
    assert!(open.expect("described").connected_at().is_some());
    let err = gone.expect_err("gone");
    assert!(err.into_service_error().is_gone_exception());
    assert_eq!(api.deleted(), [CONN]);
}
