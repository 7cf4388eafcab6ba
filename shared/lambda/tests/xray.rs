//! The X-Ray layer against the spans a real AWS SDK client opens: a DynamoDB call on the test
//! database (moto) inside a traced invocation reaches a stand-in daemon as an `aws` subsegment
//! of the handler's step.

use std::net::UdpSocket;
use std::time::Duration;

use rnd_lambda::lambda_runtime::Context;
use rnd_lambda::logging::invocation_span;
use rnd_lambda::xray::{XrayLayer, interesting};
use serde_json::Value;
use tracing::Instrument;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;

const ROOT: &str = "1-6759e988-bd862e3fe1be46a994272793";
const FUNCTION_SEGMENT: &str = "63995c3f42cd8ad8";

#[tokio::test]
async fn a_dynamodb_call_is_an_aws_subsegment_of_the_step_that_made_it() {
    // GIVEN a daemon stand-in, the layer sending to it, and a sampled invocation
    let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let layer = XrayLayer::to(daemon.local_addr().unwrap())
        .unwrap()
        .with_filter(tracing_subscriber::filter::filter_fn(interesting));
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let mut context = Context::default();
    context.xray_trace_id = Some(format!("Root={ROOT};Parent={FUNCTION_SEGMENT};Sampled=1"));
    let client = rnd_store_dynamodb::testing::client();

    // WHEN the fan-out's step calls DynamoDB
    let invocation = invocation_span(&context, true);
    let step = invocation.in_scope(|| tracing::info_span!("fan-out", order_id = "ord_7"));
    async {
        client
            .list_tables()
            .send()
            .await
            .expect("the test database answers");
    }
    .instrument(step)
    .instrument(invocation)
    .await;

    // THEN the daemon gets the SDK's call, then the step, nested under the function's segment
    let mut received = Vec::new();
    let mut buf = [0u8; 65_536];
    for _ in 0..2 {
        let n = daemon.recv(&mut buf).expect("a subsegment");
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        let (header, document) = text.split_once('\n').unwrap();
        assert_eq!(header, r#"{"format": "json", "version": 1}"#);
        received.push(serde_json::from_str::<Value>(document).unwrap());
    }
    let (call, step) = (&received[0], &received[1]);
    assert_eq!(call["name"], "DynamoDB");
    assert_eq!(call["namespace"], "aws");
    assert_eq!(call["aws"]["operation"], "ListTables");
    assert_eq!(call["trace_id"], ROOT);
    assert_eq!(call["parent_id"], step["id"]);
    assert_eq!(call["annotations"]["order_id"], "ord_7");
    assert_eq!(step["name"], "fan-out");
    assert_eq!(step["parent_id"], FUNCTION_SEGMENT);
    assert!(call.get("fault").is_none() && call.get("error").is_none());
}
