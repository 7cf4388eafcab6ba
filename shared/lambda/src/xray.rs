//! X-Ray subsegments from tracing spans, sent to the X-Ray daemon Lambda runs beside the
//! function (`Tracing: Active`), over its UDP protocol: one datagram per subsegment, the header
//! `{"format": "json", "version": 1}`, a newline, then the segment document.
//!
//! Which spans become subsegments, under the function segment Lambda opened for the invocation
//! (`Parent` of its `X-Amzn-Trace-Id`), nested as the spans are:
//! - the handlers' own steps, by name ([`SUBSEGMENT_SPANS`]: `authorize`, `route`, `fan-out`,
//!   `push`);
//! - every AWS SDK operation (the span each generated client opens with `rpc.service` and
//!   `rpc.method`): DynamoDB's reads and writes, the Management API's `PostToConnection`, SQS,
//!   named by the service, namespace `aws`, `aws.operation` the method.
//!
//! Annotations (indexed, so `annotation.order_id = "…"` finds an order's traces): the
//! [`ANNOTATIONS`] fields (`order_id`, `connection_id`, `route`) of the span and of the spans it
//! is in; nothing else of a span is sent (no tokens, no addresses). An `ERROR` event inside a
//! subsegment marks it `fault`, a `WARN` one `error`.
//!
//! Active only where the daemon is: with `AWS_XRAY_DAEMON_ADDRESS` set, and for an invocation
//! whose trace header says `Sampled=1`; elsewhere (local runs, tests) nothing is sent.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use crate::logging::{INVOCATION_SPAN, TRACE_HEADER_FIELD};

/// The handlers' spans sent as subsegments (besides the AWS SDK's operations).
pub const SUBSEGMENT_SPANS: [&str; 4] = ["authorize", "route", "fan-out", "push"];

/// The span fields sent as annotations.
pub const ANNOTATIONS: [&str; 3] = ["order_id", "connection_id", "route"];

/// The daemon protocol's header line.
const HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

/// A tracing-subscriber layer sending subsegments to the X-Ray daemon.
#[derive(Debug)]
pub struct XrayLayer {
    socket: UdpSocket,
}

impl XrayLayer {
    /// The layer sending to `AWS_XRAY_DAEMON_ADDRESS` (`host:port`, or Lambda's
    /// `tcp:… udp:…` form); `None` without it or when it does not resolve.
    pub fn from_env() -> Option<Self> {
        let address = std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?;
        Self::to(daemon_address(&address)?).ok()
    }

    /// The layer sending to the daemon at `daemon`.
    pub fn to(daemon: SocketAddr) -> std::io::Result<Self> {
        let local: SocketAddr = if daemon.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(daemon)?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket })
    }
}

/// The daemon's UDP address in `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or the `udp:` one of
/// `tcp:host:port udp:host:port`.
fn daemon_address(value: &str) -> Option<SocketAddr> {
    let udp = value
        .split_whitespace()
        .find_map(|a| a.strip_prefix("udp:"))
        .unwrap_or(value.trim());
    udp.to_socket_addrs().ok()?.next()
}

/// Whether the layer looks at `meta`: spans at `INFO` and above (for their annotations and the
/// invocation's trace header), the AWS SDK's operation spans, and `WARN`/`ERROR` events.
pub fn interesting(meta: &Metadata<'_>) -> bool {
    if meta.is_span() {
        *meta.level() <= Level::INFO || sdk_operation(meta)
    } else {
        *meta.level() <= Level::WARN
    }
}

/// The span an AWS SDK client opens per operation.
fn sdk_operation(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("aws_sdk_")
        && meta.fields().field("rpc.service").is_some()
        && meta.fields().field("rpc.method").is_some()
}

/// The sampled invocation's trace, from its header.
struct Trace {
    root: String,
    parent: String,
}

impl Trace {
    fn from_header(header: &str) -> Option<Self> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) => root = Some(v.to_owned()),
                Some(("Parent", v)) => parent = Some(v.to_owned()),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        sampled.then_some(Self {
            root: root?,
            parent: parent?,
        })
    }
}

/// What a span contributes: its annotations, and for a subsegment its document so far.
#[derive(Default)]
struct Fields {
    annotations: Map<String, Value>,
    trace_header: Option<String>,
    rpc_service: Option<String>,
    rpc_method: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            TRACE_HEADER_FIELD => self.trace_header = Some(value.to_owned()),
            "rpc.service" => self.rpc_service = Some(value.to_owned()),
            "rpc.method" => self.rpc_method = Some(value.to_owned()),
            name if ANNOTATIONS.contains(&name) => {
                self.annotations.insert(name.to_owned(), value.into());
            }
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        if ANNOTATIONS.contains(&name)
            || name == TRACE_HEADER_FIELD
            || name == "rpc.service"
            || name == "rpc.method"
        {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// A span's annotations, as it and the spans it is in give them.
struct Annotations(Map<String, Value>);

/// A span sent as a subsegment when it closes.
struct Subsegment {
    id: String,
    name: String,
    start_time: f64,
    aws_operation: Option<String>,
    error: bool,
    fault: bool,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A subsegment id: 16 hex digits, random.
fn new_id() -> String {
    format!("{:016x}", fastrand::u64(1..))
}

impl<S> tracing_subscriber::Layer<S> for XrayLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let mut annotations = span
            .parent()
            .and_then(|p| p.extensions().get::<Annotations>().map(|a| a.0.clone()))
            .unwrap_or_default();
        annotations.extend(fields.annotations);
        let meta = span.metadata();
        let mut extensions = span.extensions_mut();
        extensions.insert(Annotations(annotations));
        if meta.name() == INVOCATION_SPAN {
            if let Some(trace) = fields.trace_header.as_deref().and_then(Trace::from_header) {
                extensions.insert(trace);
            }
        } else if sdk_operation(meta) {
            extensions.insert(Subsegment {
                id: new_id(),
                name: fields.rpc_service.unwrap_or_else(|| meta.name().to_owned()),
                start_time: now(),
                aws_operation: fields.rpc_method,
                error: false,
                fault: false,
            });
        } else if SUBSEGMENT_SPANS.contains(&meta.name()) {
            extensions.insert(Subsegment {
                id: new_id(),
                name: meta.name().to_owned(),
                start_time: now(),
                aws_operation: None,
                error: false,
                fault: false,
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(Annotations(annotations)) = span.extensions_mut().get_mut::<Annotations>() {
            annotations.extend(fields.annotations);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let level = *event.metadata().level();
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(subsegment) = span.extensions_mut().get_mut::<Subsegment>() {
                if level == Level::ERROR {
                    subsegment.fault = true;
                } else {
                    subsegment.error = true;
                }
                return;
            }
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(subsegment) = extensions.get::<Subsegment>() else {
            return;
        };
        // The invocation's trace, and the nearest enclosing subsegment (else the function's
        // segment) as the parent.
        let mut parent_id = None;
        let mut trace = None;
        for ancestor in span.scope().skip(1) {
            let ancestor_extensions = ancestor.extensions();
            if parent_id.is_none() {
                parent_id = ancestor_extensions
                    .get::<Subsegment>()
                    .map(|s| s.id.clone());
            }
            if let Some(t) = ancestor_extensions.get::<Trace>() {
                trace = Some((t.root.clone(), t.parent.clone()));
                break;
            }
        }
        let Some((root, function_segment)) = trace else {
            return;
        };
        let mut document = json!({
            "name": subsegment.name,
            "id": subsegment.id,
            "trace_id": root,
            "parent_id": parent_id.unwrap_or(function_segment),
            "type": "subsegment",
            "start_time": subsegment.start_time,
            "end_time": now(),
        });
        if let Some(operation) = &subsegment.aws_operation {
            document["namespace"] = "aws".into();
            document["aws"] = json!({ "operation": operation });
        }
        if subsegment.error {
            document["error"] = true.into();
        }
        if subsegment.fault {
            document["fault"] = true.into();
        }
        if let Some(Annotations(annotations)) = extensions.get::<Annotations>()
            && !annotations.is_empty()
        {
            document["annotations"] = Value::Object(annotations.clone());
        }
        let mut datagram = HEADER.as_bytes().to_vec();
        if serde_json::to_writer(&mut datagram, &document).is_ok() {
            // Best effort, never blocking the invocation: a lost subsegment is a gap in a trace.
            let _ = self.socket.send(&datagram);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::invocation_span;
    use lambda_runtime::Context;
    use std::time::Duration;
    use tracing_subscriber::layer::SubscriberExt;

    const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
    const FUNCTION_SEGMENT: &str = "53995c3f42cd8ad8";

    /// A daemon stand-in: the datagrams the layer sends, as the daemon's protocol defines them.
    struct Daemon(UdpSocket);

    impl Daemon {
        fn start() -> Self {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            Self(socket)
        }

        fn layer(&self) -> XrayLayer {
            XrayLayer::to(self.0.local_addr().unwrap()).unwrap()
        }

        /// The next datagram: its header line and its document as text; `None` if none comes.
        fn receive(&self) -> Option<(String, String)> {
            let mut buf = [0u8; 65_536];
            let n = self.0.recv(&mut buf).ok()?;
            let text = String::from_utf8(buf[..n].to_vec()).unwrap();
            let (header, document) = text.split_once('\n').expect("a header line");
            Some((header.to_owned(), document.to_owned()))
        }
    }

    fn subscriber(daemon: &Daemon) -> impl Subscriber + Send + Sync {
        use tracing_subscriber::Layer as _;
        tracing_subscriber::registry().with(
            daemon
                .layer()
                .with_filter(tracing_subscriber::filter::filter_fn(interesting)),
        )
    }

    fn context(sampled: &str) -> Context {
        let mut context = Context::default();
        context.request_id = "req-1".into();
        context.xray_trace_id = Some(format!(
            "Root={ROOT};Parent={FUNCTION_SEGMENT};Sampled={sampled}"
        ));
        context
    }

    /// A route handling an order's message, whose store call is an AWS SDK operation.
    fn handle_a_message() {
        let route = tracing::info_span!(
            "route",
            route = "subscribe:order",
            connection_id = "Cu5t+mer/1Conn=",
            order_id = tracing::field::Empty,
            access_token = "eyJhbGciOi.secret",
        );
        let _route = route.enter();
        route.record("order_id", "ord_42");
        let put = tracing::debug_span!(
            target: "aws_sdk_dynamodb::operation::put_item",
            "DynamoDB.PutItem",
            "rpc.service" = "DynamoDB",
            "rpc.method" = "PutItem",
            "rpc.system" = "aws-api",
        );
        let _put = put.enter();
        std::thread::sleep(Duration::from_millis(2));
        tracing::warn!("conditional check failed; retrying");
    }

    #[test]
    fn the_daemon_receives_the_route_and_its_store_call_as_subsegments_of_the_function() {
        // GIVEN the layer, a daemon, and a sampled invocation
        let daemon = Daemon::start();
        tracing::subscriber::with_default(subscriber(&daemon), || {
            let _invocation = invocation_span(&context("1"), false).entered();
            // WHEN a route handles an order's message, calling DynamoDB
            handle_a_message();
        });

        // THEN the store call arrives first (it closes first), then the route, each with the
        // daemon's header, the invocation's trace, and the nesting of the spans
        let (header, put_text) = daemon.receive().expect("the store call's subsegment");
        assert_eq!(header, r#"{"format": "json", "version": 1}"#);
        let (header, route_text) = daemon.receive().expect("the route's subsegment");
        assert_eq!(header, r#"{"format": "json", "version": 1}"#);
        assert!(daemon.receive().is_none(), "nothing else");
        let put: Value = serde_json::from_str(&put_text).unwrap();
        let route: Value = serde_json::from_str(&route_text).unwrap();

        assert_eq!(route["name"], "route");
        assert_eq!(route["type"], "subsegment");
        assert_eq!(route["trace_id"], ROOT);
        assert_eq!(route["parent_id"], FUNCTION_SEGMENT);
        assert!(route.get("namespace").is_none());
        assert_eq!(
            route["annotations"],
            json!({ "order_id": "ord_42", "connection_id": "Cu5t+mer/1Conn=", "route": "subscribe:order" })
        );

        assert_eq!(put["name"], "DynamoDB");
        assert_eq!(put["namespace"], "aws");
        assert_eq!(put["aws"]["operation"], "PutItem");
        assert_eq!(put["trace_id"], ROOT);
        assert_eq!(put["parent_id"], route["id"]);
        assert_eq!(put["annotations"]["order_id"], "ord_42");
        assert_eq!(put["error"], true, "a warning inside marks it");
        assert!(put.get("fault").is_none());

        for s in [&put, &route] {
            let id = s["id"].as_str().unwrap();
            assert!(
                id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
                "{id}"
            );
        }
        assert_ne!(put["id"], route["id"]);
        let (start, end) = (
            put["start_time"].as_f64().unwrap(),
            put["end_time"].as_f64().unwrap(),
        );
        assert!(end - start >= 0.002, "{start} .. {end}");
        assert!(route["start_time"].as_f64().unwrap() <= start);
        assert!(route["end_time"].as_f64().unwrap() >= end);

        // No token, nor anything else of the spans but their annotations.
        for text in [&put_text, &route_text] {
            assert!(!text.contains("eyJhbGciOi"), "{text}");
            assert!(!text.contains("token"), "{text}");
        }
    }

    #[test]
    fn nothing_is_sent_for_an_unsampled_invocation_or_outside_one() {
        // GIVEN the layer and a daemon
        let daemon = Daemon::start();
        tracing::subscriber::with_default(subscriber(&daemon), || {
            // WHEN a message is handled in an invocation X-Ray did not sample, and outside any
            {
                let _invocation = invocation_span(&context("0"), false).entered();
                handle_a_message();
            }
            handle_a_message();
        });

        // THEN the daemon hears nothing
        assert!(daemon.receive().is_none());
    }

    #[test]
    fn the_daemon_address_is_read_in_both_of_lambdas_forms() {
        // GIVEN the address as `host:port` and as `tcp:… udp:…` (WHEN read) THEN the UDP one
        assert_eq!(
            daemon_address("127.0.0.1:2000"),
            Some(([127, 0, 0, 1], 2000).into())
        );
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001"),
            Some(([127, 0, 0, 2], 2001).into())
        );
        assert_eq!(daemon_address("not an address"), None);
    }
}
