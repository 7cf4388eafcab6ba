//! The Runtime API emulator, driven over real HTTP the way a Lambda runtime client drives it:
//! what it hands out, what it records. Behaviour only, no timing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_init_bench::runtime::{Outcome, PREFIX, RuntimeApi};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test-fn";
const WAIT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 answer: status, headers (names lower-cased), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on its own connection (`Connection: close`), the answer read to the end.
async fn request(
    api: &RuntimeApi,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(api.runtime_api())
        .await
        .expect("connect");
    let mut text = format!(
        "{method} {PREFIX}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        api.runtime_api(),
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn start() -> Arc<RuntimeApi> {
    Arc::new(
        RuntimeApi::start(ARN, Duration::from_secs(30))
            .await
            .expect("the emulator starts"),
    )
}

/// Queues `payload` in the background; the handle yields the finished invocation.
fn invoke(
    api: &Arc<RuntimeApi>,
    payload: &'static str,
) -> tokio::task::JoinHandle<lambda_init_bench::runtime::Invocation> {
    let api = Arc::clone(api);
    tokio::spawn(async move { api.invoke(payload).await })
}

/// A started emulator with `payload` invoked and handed out by a poll of `/invocation/next`:
/// the emulator, the invocation and its request id.
async fn handed_out(
    payload: &'static str,
) -> (
    Arc<RuntimeApi>,
    tokio::task::JoinHandle<lambda_init_bench::runtime::Invocation>,
    String,
) {
    let api = start().await;
    let invocation = invoke(&api, payload);
    let next = request(&api, "GET", "/invocation/next", &[], "").await;
    let id = next
        .header("lambda-runtime-aws-request-id")
        .expect("a request id")
        .to_owned();
    (api, invocation, id)
}

/// The invocation `invoke` queued, once answered.
async fn finished(
    invocation: tokio::task::JoinHandle<lambda_init_bench::runtime::Invocation>,
) -> lambda_init_bench::runtime::Invocation {
    tokio::time::timeout(WAIT, invocation)
        .await
        .expect("answered in time")
        .expect("the task ran")
}

#[tokio::test]
async fn next_hands_out_the_event_with_lambdas_headers_and_the_response_completes_it() {
    let api = start().await;
    let invocation = invoke(&api, r#"{"hello":"world"}"#);

    let next = request(&api, "GET", "/invocation/next", &[], "").await;
    assert_eq!(next.status, 200);
    assert_eq!(next.body, r#"{"hello":"world"}"#);
    assert_eq!(next.header("content-type"), Some("application/json"));
    assert_eq!(
        next.header("lambda-runtime-invoked-function-arn"),
        Some(ARN)
    );
    let trace = next.header("lambda-runtime-trace-id").expect("a trace id");
    assert!(trace.starts_with("Root=1-"), "{trace}");
    let deadline: u128 = next
        .header("lambda-runtime-deadline-ms")
        .expect("a deadline")
        .parse()
        .expect("ms since the epoch");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(
        deadline > now && deadline <= now + 30_000,
        "{deadline} vs {now}"
    );
    let id = next
        .header("lambda-runtime-aws-request-id")
        .expect("a request id")
        .to_owned();

    // init ended with that first poll
    tokio::time::timeout(WAIT, api.ready())
        .await
        .expect("ready")
        .expect("no init error");

    let answer = request(
        &api,
        "POST",
        &format!("/invocation/{id}/response"),
        &[("Content-Type", "application/json")],
        r#"{"statusCode":200}"#,
    )
    .await;
    assert_eq!(answer.status, 202);

    let done = finished(invocation).await;
    assert_eq!(done.request_id, id);
    assert_eq!(
        done.outcome,
        Outcome::Response(r#"{"statusCode":200}"#.into())
    );
    assert!(done.answered >= done.handed_out);
    assert!(api.errors().is_empty());

    // A second answer to the same invocation is refused.
    let again = request(
        &api,
        "POST",
        &format!("/invocation/{id}/response"),
        &[],
        "{}",
    )
    .await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("InvalidRequestID"), "{}", again.body);
}

#[tokio::test]
async fn events_are_handed_out_in_order_one_per_poll() {
    let api = start().await;
    let first = invoke(&api, r#"{"n":1}"#);
    let next = request(&api, "GET", "/invocation/next", &[], "").await;
    assert_eq!(next.body, r#"{"n":1}"#);
    // Queued while the first is in flight: handed out by the next poll, not before.
    let second = invoke(&api, r#"{"n":2}"#);
    let id1 = next
        .header("lambda-runtime-aws-request-id")
        .unwrap()
        .to_owned();
    request(
        &api,
        "POST",
        &format!("/invocation/{id1}/response"),
        &[],
        "1",
    )
    .await;

    let next = request(&api, "GET", "/invocation/next", &[], "").await;
    assert_eq!(next.body, r#"{"n":2}"#);
    let id2 = next
        .header("lambda-runtime-aws-request-id")
        .unwrap()
        .to_owned();
    assert_ne!(id1, id2);
    request(
        &api,
        "POST",
        &format!("/invocation/{id2}/response"),
        &[],
        "2",
    )
    .await;

    let first = first.await.expect("first");
    let second = second.await.expect("second");
    assert_eq!(first.outcome, Outcome::Response("1".into()));
    assert_eq!(second.outcome, Outcome::Response("2".into()));
}

#[tokio::test]
async fn an_error_post_is_recorded_as_a_failed_invocation() {
    let (api, invocation, id) = handed_out("{}").await;

    let body = r#"{"errorType":"alloc::string::String","errorMessage":"table not found"}"#;
    let answer = request(
        &api,
        "POST",
        &format!("/invocation/{id}/error"),
        &[
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Function-Error-Type", "Runtime.Handler"),
        ],
        body,
    )
    .await;
    assert_eq!(answer.status, 202);

    let done = finished(invocation).await;
    let Outcome::Error(report) = done.outcome else {
        panic!("expected an error, got {:?}", done.outcome);
    };
    assert_eq!(report.error_type.as_deref(), Some("Runtime.Handler"));
    assert_eq!(report.body, body);
    assert_eq!(api.errors(), vec![report]);
}

#[tokio::test]
async fn an_error_without_the_header_takes_its_type_from_the_body() {
    let (api, invocation, id) = handed_out("{}").await;
    request(
        &api,
        "POST",
        &format!("/invocation/{id}/error"),
        &[],
        r#"{"errorType":"Boom","errorMessage":"no"}"#,
    )
    .await;
    let done = invocation.await.expect("the task ran");
    let Outcome::Error(report) = done.outcome else {
        panic!("expected an error");
    };
    assert_eq!(report.error_type.as_deref(), Some("Boom"));
}

#[tokio::test]
async fn an_init_error_is_recorded_and_fails_readiness() {
    let api = start().await;
    let body = r#"{"errorType":"ConfigError","errorMessage":"environment variable ORDERS_TABLE is required"}"#;
    let answer = request(
        &api,
        "POST",
        "/init/error",
        &[("Lambda-Runtime-Function-Error-Type", "Runtime.ConfigError")],
        body,
    )
    .await;
    assert_eq!(answer.status, 202);
    let report = tokio::time::timeout(WAIT, api.ready())
        .await
        .expect("decided in time")
        .expect_err("init failed");
    assert_eq!(report.error_type.as_deref(), Some("Runtime.ConfigError"));
    assert_eq!(report.body, body);
    assert_eq!(api.init_error(), Some(report));
}

#[tokio::test]
async fn an_answer_for_an_unknown_request_id_is_refused() {
    let api = start().await;
    for kind in ["response", "error"] {
        let answer = request(
            &api,
            "POST",
            &format!("/invocation/no-such-id/{kind}"),
            &[],
            "{}",
        )
        .await;
        assert_eq!(answer.status, 400, "{kind}");
    }
    assert!(api.errors().is_empty());
}
