//! Logs in the structured format of Powertools for AWS Lambda: one JSON object per line with
//! Powertools' keys, so CloudWatch Logs Insights queries written for Powertools functions work on
//! these too, across every function's log group.
//!
//! | key | value |
//! |---|---|
//! | `level` | `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR` |
//! | `message` | the event's message |
//! | `timestamp` | RFC 3339, UTC, milliseconds (Lambda's log-level filtering reads it) |
//! | `service` | `POWERTOOLS_SERVICE_NAME`; else the function's name; else `service_undefined` |
//! | `location` | `module::path:line` of the event |
//! | `function_name`, `function_memory_size` | `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` |
//! | `cold_start` | `true` during the first invocation of the execution environment only |
//! | `function_arn`, `function_request_id` | the invocation's function ARN and request id |
//! | `xray_trace_id` | the invocation's X-Ray trace id (`Root`), when it has one |
//!
//! plus the fields of every span the event is in (outermost first) and the event's own fields,
//! flattened at the top level: a handler that puts `order_id` on its span makes every line it
//! logs inside it carry `order_id`, so `filter order_id = "…"` finds one order's path through
//! all the functions.
//!
//! The invocation keys come from the span [`run`] opens per invocation (in place of
//! `lambda_runtime`'s, which names them `requestId`/`xrayTraceId` and has no ARN or cold start).
//!
//! Fields whose names say they hold a credential (`token`, `secret`, `password`, `authorization`,
//! `cookie`, `credential`, `api_key`, …) are never written, whatever their value: handlers log
//! ids, never tokens, but one slip must not put a bearer token in CloudWatch.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task;

use chrono::{SecondsFormat, Utc};
use lambda_runtime::tower::{Layer as TowerLayer, Service};
use lambda_runtime::{Context, Diagnostic, Error, LambdaEvent, LambdaInvocation};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::instrument::Instrumented;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Instrument, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context as LayerContext, Filter};
use tracing_subscriber::registry::LookupSpan;

/// The name of the span [`run`] opens per invocation.
pub const INVOCATION_SPAN: &str = "Lambda runtime invoke";

/// The invocation span's field holding the whole `X-Amzn-Trace-Id` header (`Root=…;Parent=…;
/// Sampled=…`), for the X-Ray layer; never logged (`xray_trace_id` is).
pub(crate) const TRACE_HEADER_FIELD: &str = "xray_trace_header";

/// The level from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's `LoggingConfig`), else `RUST_LOG`'s
/// directives, else `INFO`: as `lambda_runtime`'s default subscriber reads them.
pub fn env_filter() -> EnvFilter {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy()
}

/// A tracing-subscriber layer writing each event as one Powertools-style JSON line to its
/// writer (stdout in Lambda; a buffer in tests).
pub struct PowertoolsLayer<W> {
    writer: W,
    service: String,
    function_name: Option<String>,
    function_memory_size: Option<u64>,
}

impl<W> fmt::Debug for PowertoolsLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowertoolsLayer")
            .field("service", &self.service)
            .field("function_name", &self.function_name)
            .finish_non_exhaustive()
    }
}

impl<W> PowertoolsLayer<W> {
    /// The layer writing to `writer`, the service and function read from the environment.
    pub fn new(writer: W) -> Self {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let function_name = var("AWS_LAMBDA_FUNCTION_NAME");
        Self {
            writer,
            service: var("POWERTOOLS_SERVICE_NAME")
                .or_else(|| function_name.clone())
                .unwrap_or_else(|| "service_undefined".to_owned()),
            function_memory_size: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .and_then(|m| m.trim().parse().ok()),
            function_name,
        }
    }

    /// The layer with `service` as its `service` key.
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }
}

/// The fields recorded on a span, as they are logged.
struct SpanFields(Map<String, Value>);

/// Whether a field named `name` is left out of the logs: the invocation's whole trace header,
/// and anything named like a credential.
fn withheld(name: &str) -> bool {
    const CREDENTIALS: [&str; 10] = [
        "token",
        "secret",
        "password",
        "passwd",
        "authorization",
        "cookie",
        "credential",
        "api_key",
        "apikey",
        "private_key",
    ];
    let lower = name.to_ascii_lowercase();
    name == TRACE_HEADER_FIELD || CREDENTIALS.iter().any(|c| lower.contains(c))
}

/// Records fields into a JSON object, leaving out the [`withheld`] ones.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        if !withheld(field.name()) {
            self.0.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, serde_json::json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The error and its causes, outermost first.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.put(field, text.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl<S, W> tracing_subscriber::Layer<S> for PowertoolsLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let meta = event.metadata();
        let mut line = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let message = fields.remove("message").unwrap_or_else(|| "".into());
        line.extend(fields);
        // Powertools' own keys win over fields of the same name.
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("message".into(), message);
        line.insert(
            "timestamp".into(),
            Utc::now()
                .to_rfc3339_opts(SecondsFormat::Millis, true)
                .into(),
        );
        line.insert("service".into(), self.service.clone().into());
        line.insert("location".into(), location(meta).into());
        if let Some(name) = &self.function_name {
            line.insert("function_name".into(), name.clone().into());
        }
        if let Some(memory) = self.function_memory_size {
            line.insert("function_memory_size".into(), memory.into());
        }
        let Ok(mut text) = serde_json::to_vec(&line) else {
            return;
        };
        text.push(b'\n');
        // One write per line, so concurrent lines do not interleave. A failed write is lost:
        // there is nowhere else to report it.
        let _ = self.writer.make_writer_for(meta).write_all(&text);
    }
}

/// `module::path:line` of an event, Powertools' `location`.
fn location(meta: &Metadata<'_>) -> String {
    let module = meta.module_path().unwrap_or_else(|| meta.target());
    match meta.line() {
        Some(line) => format!("{module}:{line}"),
        None => module.to_owned(),
    }
}

/// The log layer's filter: events by the [`env_filter`] level; spans at `INFO` and above
/// always, so a `WARN` line still carries its invocation's request id and its order id when the
/// level is `WARN`; more verbose spans by the filter.
#[derive(Debug)]
pub struct EventsByLevel(pub EnvFilter);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Filter<S> for EventsByLevel {
    fn enabled(&self, meta: &Metadata<'_>, cx: &LayerContext<'_, S>) -> bool {
        (meta.is_span() && *meta.level() <= Level::INFO) || Filter::<S>::enabled(&self.0, meta, cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if meta.is_span() && *meta.level() <= Level::INFO {
            tracing::subscriber::Interest::always()
        } else {
            Filter::<S>::callsite_enabled(&self.0, meta)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Filter::<S>::max_level_hint(&self.0).map(|l| l.max(LevelFilter::INFO))
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        Filter::<S>::on_new_span(&self.0, attrs, id, ctx)
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        Filter::<S>::on_record(&self.0, id, values, ctx)
    }
    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        Filter::<S>::on_enter(&self.0, id, ctx)
    }
    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        Filter::<S>::on_exit(&self.0, id, ctx)
    }
    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        Filter::<S>::on_close(&self.0, id, ctx)
    }
}

/// The Powertools log layer to stdout with its filter, for [`crate::init_tracing`].
pub fn stdout_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    PowertoolsLayer::new(std::io::stdout).with_filter(EventsByLevel(env_filter()))
}

/// The `Root` of an `X-Amzn-Trace-Id` header (`Root=1-…;Parent=…;Sampled=1`).
pub(crate) fn trace_root(header: &str) -> Option<&str> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
}

/// The span of one invocation, carrying Powertools' invocation keys.
pub fn invocation_span(context: &Context, cold_start: bool) -> tracing::Span {
    let header = context.xray_trace_id.as_deref();
    tracing::info_span!(
        INVOCATION_SPAN,
        function_request_id = %context.request_id,
        function_arn = %context.invoked_function_arn,
        cold_start,
        xray_trace_id = header.and_then(trace_root),
        xray_trace_header = header,
    )
}

/// A tower layer for the Lambda runtime opening [`invocation_span`] around each invocation:
/// `cold_start` is true for the first one it sees only.
#[derive(Debug, Clone)]
pub struct InvocationLayer {
    cold: Arc<AtomicBool>,
}

impl InvocationLayer {
    /// A layer whose first invocation is the cold start.
    pub fn new() -> Self {
        Self {
            cold: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl Default for InvocationLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> TowerLayer<S> for InvocationLayer {
    type Service = InvocationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InvocationService {
            inner,
            cold: Arc::clone(&self.cold),
        }
    }
}

/// The service of [`InvocationLayer`].
#[derive(Debug, Clone)]
pub struct InvocationService<S> {
    inner: S,
    cold: Arc<AtomicBool>,
}

impl<S> Service<LambdaInvocation> for InvocationService<S>
where
    S: Service<LambdaInvocation, Response = (), Error = Error>,
{
    type Response = ();
    type Error = Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut task::Context<'_>) -> task::Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let cold_start = self.cold.swap(false, Ordering::Relaxed);
        let span = invocation_span(&invocation.context, cold_start);
        // Entered while the inner service builds its future, so spans it opens there are
        // children of the invocation's too.
        let future = span.in_scope(|| self.inner.call(invocation));
        future.instrument(span)
    }
}

/// Runs `handler` as `lambda_runtime::run` does, each invocation in an [`invocation_span`]
/// (instead of `lambda_runtime`'s own span). Buffered responses only: no function here streams.
pub async fn run<A, F, R>(handler: F) -> Result<(), Error>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + fmt::Debug,
    A: for<'de> serde::Deserialize<'de>,
    R: serde::Serialize,
{
    lambda_runtime::Runtime::new(handler)
        .layer(InvocationLayer::new())
        .run()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap();
            String::from_utf8(bytes.clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
                .collect()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn layer(captured: &Captured) -> PowertoolsLayer<Captured> {
        PowertoolsLayer {
            writer: captured.clone(),
            service: "rnd-realtime".into(),
            function_name: Some("rnd-realtime-dev-stream-fanout".into()),
            function_memory_size: Some(256),
        }
    }

    /// `layer` filtered as in Lambda at `level`.
    fn subscriber(captured: &Captured, level: &str) -> impl Subscriber + Send + Sync {
        use tracing_subscriber::Layer as _;
        let filter = EnvFilter::builder()
            .with_default_directive(level.parse::<LevelFilter>().unwrap().into())
            .parse_lossy("");
        tracing_subscriber::registry().with(layer(captured).with_filter(EventsByLevel(filter)))
    }

    fn context(request_id: &str) -> Context {
        let mut context = Context::default();
        context.request_id = request_id.into();
        context.invoked_function_arn =
            "arn:aws:lambda:eu-west-1:123456789012:function:rnd-realtime-dev-stream-fanout".into();
        context.xray_trace_id = Some(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into(),
        );
        context
    }

    fn invocation(request_id: &str) -> LambdaInvocation {
        LambdaInvocation {
            parts: http::Response::new(()).into_parts().0,
            body: bytes::Bytes::new(),
            context: context(request_id),
        }
    }

    #[test]
    fn a_line_has_the_powertools_keys() {
        // GIVEN the layer, inside an invocation's span
        let captured = Captured::default();
        tracing::subscriber::with_default(subscriber(&captured, "info"), || {
            let _invocation = invocation_span(&context("req-1"), true).entered();
            // WHEN a handler logs
            tracing::info!(records = 3, "fan-out batch done");
        });

        // THEN the line is one JSON object with Powertools' keys and the event's fields
        let lines = captured.lines();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "fan-out batch done");
        assert_eq!(line["service"], "rnd-realtime");
        assert_eq!(line["cold_start"], true);
        assert_eq!(line["function_name"], "rnd-realtime-dev-stream-fanout");
        assert_eq!(line["function_memory_size"], 256);
        assert_eq!(
            line["function_arn"],
            "arn:aws:lambda:eu-west-1:123456789012:function:rnd-realtime-dev-stream-fanout"
        );
        assert_eq!(line["function_request_id"], "req-1");
        assert_eq!(line["xray_trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(line["records"], 3);
        assert!(
            line["location"]
                .as_str()
                .unwrap()
                .starts_with("rnd_lambda::logging::tests:")
        );
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
        assert!(timestamp.ends_with('Z'));
        // The whole trace header (with the parent segment) is the X-Ray layer's, not the logs'.
        assert!(line.get(TRACE_HEADER_FIELD).is_none());
    }

    #[tokio::test]
    async fn cold_start_is_true_on_the_first_invocation_only() {
        // GIVEN the runtime's service wrapped in the invocation layer, logging once per call
        let captured = Captured::default();
        let _default = tracing::subscriber::set_default(subscriber(&captured, "info"));
        let handler = lambda_runtime::tower::service_fn(|_: LambdaInvocation| async {
            tracing::info!("handled");
            Ok::<(), Error>(())
        });
        let mut service = InvocationLayer::new().layer(handler);

        // WHEN three invocations come in, one after the other
        for id in ["req-1", "req-2", "req-3"] {
            service.call(invocation(id)).await.unwrap();
        }

        // THEN the first one's line says cold start, the later ones' do not, each with its id
        let lines = captured.lines();
        let seen: Vec<_> = lines
            .iter()
            .map(|l| (l["function_request_id"].clone(), l["cold_start"].clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("req-1".into(), true.into()),
                ("req-2".into(), false.into()),
                ("req-3".into(), false.into()),
            ]
        );
    }

    #[test]
    fn a_field_of_an_enclosing_span_is_at_the_top_level() {
        // GIVEN a handler's span carrying the order id, inside the invocation's span
        let captured = Captured::default();
        tracing::subscriber::with_default(subscriber(&captured, "warn"), || {
            let _invocation = invocation_span(&context("req-9"), false).entered();
            let _order = tracing::info_span!("record", order_id = "ord_42").entered();
            // WHEN it logs a warning (at level WARN, where INFO spans' fields must still show)
            tracing::warn!(connection_id = "c-1", "post refused; not retried");
            tracing::info!("not written at WARN");
        });

        // THEN the warning carries order_id and the request id at the top level
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["order_id"], "ord_42");
        assert_eq!(lines[0]["connection_id"], "c-1");
        assert_eq!(lines[0]["function_request_id"], "req-9");
        assert_eq!(lines[0]["level"], "WARN");
    }

    #[test]
    fn a_credential_named_field_is_never_written() {
        // GIVEN fields named like credentials on a span and on an event
        let captured = Captured::default();
        tracing::subscriber::with_default(subscriber(&captured, "info"), || {
            let _span =
                tracing::info_span!("connect", access_token = "eyJhbGciOi.secret").entered();
            // WHEN an event is logged with more of them
            tracing::info!(
                device_token = "fcm-token-value",
                authorization = "Bearer eyJhbGciOi",
                api_key = "AIza-key",
                connection_id = "c-1",
                "connected"
            );
        });

        // THEN none of them, names or values, is in the output; the id is
        let raw = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        for leaked in [
            "eyJhbGciOi",
            "fcm-token-value",
            "AIza-key",
            "token",
            "authorization",
            "api_key",
        ] {
            assert!(!raw.contains(leaked), "{leaked} leaked: {raw}");
        }
        assert_eq!(captured.lines()[0]["connection_id"], "c-1");
    }

    #[test]
    fn an_error_is_written_with_its_causes() {
        // GIVEN an error with a cause
        #[derive(Debug, thiserror::Error)]
        #[error("could not store the connection")]
        struct Outer(#[source] std::io::Error);
        let captured = Captured::default();
        tracing::subscriber::with_default(subscriber(&captured, "info"), || {
            // WHEN it is logged as a field
            let e = Outer(std::io::Error::other("throttled"));
            tracing::error!(error = &e as &dyn std::error::Error, "failed");
        });

        // THEN the line says both
        assert_eq!(
            captured.lines()[0]["error"],
            "could not store the connection: throttled"
        );
    }
}
