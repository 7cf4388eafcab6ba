//! `rnd-loadgen bench`: a load generator that drives a running local stack over real WebSockets,
//! on loopback only, and stops by itself.
//!
//! **Load** ([`load`]): `orders` orders are driven to `in_transit` over the HTTP API (as
//! `rnd-loadgen simulate` does); each gets `subscribers` subscribed WebSocket clients (its
//! customer and chef, alternately, as on several devices) and its assigned driver, who streams
//! `driver:location` at `rate_hz` for `duration` on a fixed schedule (open loop: a slow server
//! shows as latency, not as fewer sends), asking for every acknowledgement or for refusals only
//! (`acks`); `idle` more connections of other customers, drivers and chefs are held open
//! meanwhile (in their user rooms, not in the orders' rooms). Latency runs from the
//! driver's send to each subscriber's receipt of the `driver:location_update`, matched on order
//! and position (each send is a few metres further north).
//! The stack's `GET /dev/metrics` is read before and after the measured window; the difference,
//! divided by the accepted updates, is the work per update, which [`cost`] prices.
//!
//! **Idle** ([`idle`]): the server's resident memory before and after opening `connections`
//! connections gives the bytes per connection; the metrics before and after give the work of
//! each connect, and, once they are closed again and their `$disconnect`s have run, of each
//! disconnect.

pub mod cost;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt, TryStreamExt};
use rnd_domain::protocol::LocationAcks;
use rnd_local::metrics::MetricsSnapshot;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::simulate::{Client, OrderSetup, PreparedOrder, SimulateError, Tick, order_in_transit};
use cost::{CostPerMillion, PRICES, Prices, Work};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a driver waits for the acknowledgement of one location.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a subscriber waits for the answer to `subscribe:order`.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the setup's events to be fanned out before measuring.
const QUIET_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the idle bench waits for the `$disconnect`s of the sockets it closed.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The `$disconnect` function in the stack's metrics.
const DISCONNECT_FUNCTION: &str = "$disconnect";
/// Central Austin, where the benchmarked drivers drive.
const CENTRE: (f64, f64) = (30.2672, -97.7431);
/// Orders set up at once over the HTTP API.
const SETUP_PARALLELISM: usize = 8;

/// Why a bench failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The URL does not point at this machine.
    #[error("the bench only talks to loopback; {0} is not a loopback http://HOST:PORT")]
    NotLoopback(String),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    Options(&'static str),
    /// The HTTP API failed (setting up orders, reading metrics).
    #[error("the stack's HTTP API failed")]
    Http(#[from] SimulateError),
    /// The stack has no `/dev/metrics` answer that parses (not an `rnd-local` stack?).
    #[error("GET /dev/metrics did not answer metrics: {0}")]
    Metrics(String),
    /// A WebSocket connection failed.
    #[error("WebSocket")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The stack answered something the protocol does not promise.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// A token could not be issued.
    #[error("could not issue a token")]
    Token(#[from] rnd_local::TokenError),
    /// A bench task panicked or was cancelled.
    #[error("a bench task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// The load run's parameters.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The running stack, `http://HOST:PORT` on loopback.
    pub url: String,
    /// Orders, each with its own driver streaming locations.
    pub orders: u32,
    /// Subscribed clients per order.
    pub subscribers: u32,
    /// Location messages per second per driver (the stack accepts about one per second).
    pub rate_hz: f64,
    /// How long the drivers stream.
    pub duration: Duration,
    /// Idle connections held open besides the orders' rooms.
    pub idle: u32,
    /// The stack's JWT secret.
    pub jwt_secret: String,
    /// Connections opened at once.
    pub parallelism: usize,
    /// How long after the last send deliveries may still arrive before they count as lost.
    pub grace: Duration,
    /// Which locations the drivers ask to have acknowledged.
    pub acks: LocationAcks,
}

impl LoadOptions {
    /// The defaults of `rnd-loadgen bench` against `url`: 50 orders, 4 subscribers each, 1 Hz,
    /// 20 s, no idle connections, 64 connects at once, 5 s grace.
    pub fn new(url: impl Into<String>, jwt_secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            orders: 50,
            subscribers: 4,
            rate_hz: 1.0,
            duration: Duration::from_secs(20),
            idle: 0,
            jwt_secret: jwt_secret.into(),
            parallelism: 64,
            grace: Duration::from_secs(5),
            acks: LocationAcks::All,
        }
    }
}

/// The idle run's parameters.
#[derive(Debug, Clone)]
pub struct IdleOptions {
    /// The running stack, `http://HOST:PORT` on loopback.
    pub url: String,
    /// Connections to open and hold.
    pub connections: u32,
    /// The stack's JWT secret.
    pub jwt_secret: String,
    /// Connections opened at once.
    pub parallelism: usize,
    /// Pause after the last connect before reading the server's memory.
    pub settle: Duration,
}

impl IdleOptions {
    /// `connections` idle connections against `url`, 64 connects at once, 2 s settle.
    pub fn new(url: impl Into<String>, connections: u32, jwt_secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connections,
            jwt_secret: jwt_secret.into(),
            parallelism: 64,
            settle: Duration::from_secs(2),
        }
    }
}

/// Connection counts of a load run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connections {
    /// Opened by the bench: drivers, subscribers and idle ones.
    pub bench: u64,
    /// Open at the server when the window started (all clients, the bench's included).
    pub server: u64,
    /// The orders' room members: drivers and subscribers.
    pub room_members: u64,
}

/// Location messages of a load run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Updates {
    /// `driver:location` messages sent.
    pub sent: u64,
    /// Acknowledged as accepted.
    pub accepted: u64,
    /// Refused by the rate limit.
    pub rate_limited: u64,
    /// Refused otherwise.
    pub refused: u64,
}

/// Deliveries of a load run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deliveries {
    /// Accepted updates × subscribers.
    pub expected: u64,
    /// `driver:location_update`s received that match an accepted update.
    pub received: u64,
    /// Expected but not received within the grace period.
    pub lost: u64,
    /// `driver:location_update`s received that match no accepted update (should be 0).
    pub unmatched: u64,
    /// `order:eta_update`s the subscribers received meanwhile.
    pub eta_updates: u64,
}

/// Latency from the driver's send to a subscriber's receipt, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The CPU the server process used in a window (`utime + stime`), from its `/dev/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ServerCpu {
    /// CPU seconds, all threads together; `None` when the server cannot tell.
    pub seconds: Option<f64>,
    /// CPU seconds per second while the drivers were sending (1.0 is one core busy all the
    /// time): the load's steady state. Over the whole window it read low at a rate the stack
    /// could not keep up with, as the window then ends with the bench waiting out its grace
    /// period for deliveries that never come.
    pub cores: Option<f64>,
}

/// DynamoDB work of one store operation per accepted update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationWork {
    /// Port calls.
    pub calls: f64,
    /// DynamoDB requests.
    pub requests: f64,
    /// Read request units.
    pub read_units: f64,
    /// Write request units.
    pub write_units: f64,
}

/// Everything the stack did in the window, per accepted update.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PerUpdate {
    /// Billable work (what [`cost`] prices).
    #[serde(flatten)]
    pub work: Work,
    /// PostToConnection calls.
    pub posts: f64,
    /// Posts by event.
    pub posts_by_event: std::collections::BTreeMap<String, f64>,
    /// DynamoDB requests.
    pub dynamodb_requests: f64,
    /// DynamoDB work by store operation.
    pub dynamodb_by_operation: std::collections::BTreeMap<String, OperationWork>,
}

/// The JSON line of a load run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// `"load"`.
    pub mode: &'static str,
    /// Orders.
    pub orders: u32,
    /// Subscribers per order.
    pub subscribers_per_order: u32,
    /// Location messages per second per driver.
    pub rate_hz: f64,
    /// How long the drivers streamed, s.
    pub duration_s: f64,
    /// Which locations the drivers asked to have acknowledged.
    pub acks: LocationAcks,
    /// Connection counts.
    pub connections: Connections,
    /// Location messages.
    pub updates: Updates,
    /// Deliveries.
    pub deliveries: Deliveries,
    /// Send-to-receipt latency.
    pub latency_ms: Latency,
    /// Matched deliveries per second of streaming.
    pub deliveries_per_second: f64,
    /// The CPU the server used in the window.
    pub server_cpu: ServerCpu,
    /// The CPU this bench used while its drivers sent (cores, as `server_cpu.cores`): on one
    /// machine, the two together show when the machine, not the server, is full.
    pub bench_cores: Option<f64>,
    /// The server's resident memory at the end of the window, bytes.
    pub server_rss_bytes: Option<u64>,
    /// The server's peak resident memory, bytes.
    pub server_peak_rss_bytes: Option<u64>,
    /// Work per accepted update.
    pub per_accepted_update: PerUpdate,
    /// USD per million accepted updates.
    pub cost_per_million_updates_usd: CostPerMillion,
    /// The prices used.
    pub prices: Prices,
    /// What the work and cost figures assume.
    pub assumptions: cost::Assumptions,
    /// Routing calls per order for its first location, before the window (the route of the
    /// leg, once per trip), when the stack routes ETAs; the window's are in
    /// `per_accepted_update.work.routing_calls` (reroutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_calls_per_order_at_start: Option<f64>,
    /// What those routing calls cost at each provider's list price (`cost::ROUTING_PRICES`,
    /// checked on `routingPricesChecked`), when the stack routes ETAs. Not in
    /// `costPerMillionUpdatesUsd`, which is the AWS bill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_cost_usd: Option<Vec<cost::RoutingCost>>,
    /// When the routing prices were checked, when the stack routes ETAs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_prices_checked: Option<&'static str>,
}

/// The JSON line of an idle run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleReport {
    /// `"idle"`.
    pub mode: &'static str,
    /// Connections opened.
    pub connections: u32,
    /// Open at the server before.
    pub server_connections_before: u64,
    /// Open at the server after.
    pub server_connections_after: u64,
    /// Server RSS before, bytes.
    pub rss_before_bytes: Option<u64>,
    /// Server RSS with the connections open, bytes.
    pub rss_after_bytes: Option<u64>,
    /// `(after − before) / connections`.
    pub bytes_per_connection: Option<f64>,
    /// Server peak RSS, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Wall time to open them all, s.
    pub connect_seconds: f64,
    /// Connections opened per second.
    pub connects_per_second: f64,
    /// Lambda invocations per connection (authorizer + `$connect`).
    pub lambda_invocations_per_connection: f64,
    /// DynamoDB write units per connection.
    pub write_units_per_connection: f64,
    /// Lambda invocations per close (`$disconnect`), once every socket is closed and its
    /// `$disconnect` has run.
    pub lambda_invocations_per_disconnect: f64,
    /// DynamoDB read units per close (`$disconnect` reads the connection row).
    pub read_units_per_disconnect: f64,
    /// DynamoDB write units per close (memberships deleted, the row swapped for a session).
    pub write_units_per_disconnect: f64,
}

/// The authority of `url` when it is `http://HOST:PORT` on loopback (`localhost`, 127.0.0.0/8,
/// `::1`).
fn loopback_client(url: &str) -> Result<Client, BenchError> {
    let client = Client::new(url).map_err(|_| BenchError::NotLoopback(url.to_owned()))?;
    let host = client
        .authority()
        .rsplit_once(':')
        .map_or(client.authority(), |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(client)
    } else {
        Err(BenchError::NotLoopback(url.to_owned()))
    }
}

/// `GET /dev/metrics`.
async fn snapshot(client: &Client) -> Result<MetricsSnapshot, BenchError> {
    let value = client
        .call("GET", "/dev/metrics", "", None)
        .await
        .map_err(|e| BenchError::Metrics(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| BenchError::Metrics(e.to_string()))
}

/// Waits until the stack has posted nothing for half a second (the setup's events are out),
/// for at most [`QUIET_TIMEOUT`].
async fn quiet(client: &Client) -> Result<(), BenchError> {
    let deadline = Instant::now() + QUIET_TIMEOUT;
    let mut last = snapshot(client).await?.post_to_connection.calls;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = snapshot(client).await?.post_to_connection.calls;
        if now == last {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}

/// Each bench socket's read buffer. Tungstenite's default (128 KiB) is zeroed up to its
/// capacity before every read: with thousands of sockets each reading a few small frames a
/// second, that zeroing was 8 % of the machine's CPU (`perf record` during `make bench-knee`),
/// taken from the stack it measures. The stack's frames are a few hundred bytes; a larger one
/// is read in several chunks.
const READ_BUFFER_BYTES: usize = 4 * 1024;

async fn connect(client: &Client, token: &str) -> Result<Socket, BenchError> {
    let url = format!("ws://{}/realtime?token={token}", client.authority());
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false).await?;
    Ok(ws)
}

/// Opens one connection per token, `parallelism` at a time, in order.
async fn connect_all(
    client: &Client,
    tokens: Vec<String>,
    parallelism: usize,
) -> Result<Vec<Socket>, BenchError> {
    futures::stream::iter(tokens)
        .map(|token| async move { connect(client, &token).await })
        .buffered(parallelism.max(1))
        .try_collect()
        .await
}

/// Closes every socket, `parallelism` at a time.
async fn close_all(sockets: Vec<Socket>, parallelism: usize) {
    futures::stream::iter(sockets)
        .for_each_concurrent(parallelism.max(1), |mut ws| async move {
            let _ = ws.close(None).await;
        })
        .await;
}

/// Tokens of `count` idle users: 7 in 10 customers, 2 drivers, 1 chef, each its own user.
fn idle_tokens(secret: &str, run_id: &str, count: u32) -> Result<Vec<String>, BenchError> {
    (0..count)
        .map(|i| {
            let role = match i % 10 {
                0..=6 => "customer",
                7 | 8 => "driver",
                _ => "chef",
            };
            rnd_local::issue_token(
                secret,
                &format!("bench-idle-{role}-{run_id}-{i}"),
                role,
                None,
                Duration::from_secs(3600),
            )
            .map_err(BenchError::from)
        })
        .collect()
}

/// A frame the bench reads.
#[derive(Debug, Deserialize)]
struct Frame {
    event: String,
    #[serde(default)]
    data: FrameData,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FrameData {
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    accepted: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
}

/// Degrees of latitude between two sends of a driver (about 9 m).
const STEP_DEGREES: f64 = 0.000_08;

/// Where the bench's driver of order number `order` starts.
fn origin(order: usize) -> (f64, f64) {
    (
        CENTRE.0 + (order % 100) as f64 * 0.001,
        CENTRE.1 + (order / 100) as f64 * 0.001,
    )
}

/// The latitude of send number `step` of order number `order`'s driver.
fn latitude_at(order: usize, step: u32) -> f64 {
    origin(order).0 + f64::from(step) * STEP_DEGREES
}

/// The send number a `driver:location_update` of order number `order` at `latitude` is for
/// (the nearest step: JSON may move the last digit).
fn step_of(order: usize, latitude: f64) -> Option<u32> {
    let step = ((latitude - origin(order).0) / STEP_DEGREES).round();
    (step >= 0.0 && step <= f64::from(u32::MAX)).then_some(step as u32)
}

/// The next text frame, parsed, within `wait`.
async fn next_frame(ws: &mut Socket, wait: Duration) -> Result<Frame, BenchError> {
    loop {
        let message = tokio::time::timeout(wait, ws.next())
            .await
            .map_err(|_| BenchError::Protocol(format!("no answer in {wait:?}")))?
            .ok_or_else(|| BenchError::Protocol("the WebSocket closed".into()))??;
        match message {
            Message::Text(text) => {
                return serde_json::from_str(text.as_str())
                    .map_err(|e| BenchError::Protocol(format!("{e}: {text}")));
            }
            Message::Close(frame) => {
                return Err(BenchError::Protocol(format!("closed: {frame:?}")));
            }
            _ => {}
        }
    }
}

/// Subscribes `ws` to `order_id`.
async fn subscribe(ws: &mut Socket, order_id: &str) -> Result<(), BenchError> {
    let message = json!({"action": "subscribe:order", "orderId": order_id}).to_string();
    ws.send(Message::text(message)).await?;
    loop {
        let frame = next_frame(ws, SUBSCRIBE_TIMEOUT).await?;
        match frame.event.as_str() {
            "subscribed" => return Ok(()),
            "error" => {
                return Err(BenchError::Protocol(format!(
                    "subscribe:order {order_id} refused"
                )));
            }
            _ => {}
        }
    }
}

/// One `driver:location_update` received.
#[derive(Debug, Clone, Copy)]
struct Receipt {
    order: usize,
    /// The driver's send it is for.
    step: u32,
    at: Instant,
}

/// What a subscriber heard until told to stop.
#[derive(Debug, Default)]
struct Heard {
    receipts: Vec<Receipt>,
    unknown_orders: u64,
    eta_updates: u64,
}

async fn listen(
    mut ws: Socket,
    orders: Arc<HashMap<String, usize>>,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> (Socket, Heard) {
    let mut heard = Heard::default();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            message = ws.next() => {
                let at = Instant::now();
                let Some(Ok(message)) = message else { break };
                let Message::Text(text) = message else { continue };
                let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else { continue };
                match frame.event.as_str() {
                    "driver:location_update" => {
                        let order = frame.data.order_id.as_ref().and_then(|id| orders.get(id));
                        let step = order.zip(frame.data.latitude).and_then(|(&o, lat)| step_of(o, lat));
                        match (order, step) {
                            (Some(&order), Some(step)) => {
                                heard.receipts.push(Receipt { order, step, at });
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => heard.unknown_orders += 1,
                        }
                    }
                    "order:eta_update" => heard.eta_updates += 1,
                    _ => {}
                }
            }
        }
    }
    (ws, heard)
}

/// What one driver did.
#[derive(Debug, Default)]
struct Drove {
    updates: Updates,
    /// Every send: step → when sent (a refused one is never delivered).
    sent_at: HashMap<u32, Instant>,
    /// The last step sent (the next window goes on from there).
    last_step: u32,
}

/// How long a driver keeps reading after its last send when only refusals are answered (an
/// accepted location is answered by nothing, so nothing says the last one was accepted).
const REFUSALS_DRAIN: Duration = Duration::from_millis(500);

/// Streams `driver:location` for `order_id` every `period` from `start` until `end` on a fixed
/// schedule, whatever the answers (each point a few metres further north), asking for `acks`;
/// reads the answers meanwhile and after the last send until each is answered (or, asking for
/// refusals only, for [`REFUSALS_DRAIN`]), at most [`ACK_TIMEOUT`].
async fn drive(
    ws: Socket,
    order: usize,
    order_id: &str,
    period: Duration,
    (start, end): (Instant, Instant),
    acks: LocationAcks,
    mut step: u32,
) -> Result<(Socket, Drove), BenchError> {
    let (mut sink, mut stream) = ws.split();
    let mut ticker = tokio::time::interval_at(start, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut drove = Drove::default();
    let mut answered = 0u64;
    let mut deadline: Option<Instant> = None;
    loop {
        if let Some(deadline) = deadline {
            let all_answered = acks == LocationAcks::All && answered >= drove.updates.sent;
            if all_answered || Instant::now() >= deadline {
                break;
            }
        }
        tokio::select! {
            tick = ticker.tick(), if deadline.is_none() => {
                if tick >= end {
                    let drain = match acks {
                        LocationAcks::All => ACK_TIMEOUT,
                        LocationAcks::Refusals => REFUSALS_DRAIN,
                    };
                    deadline = Some(Instant::now() + drain);
                    continue;
                }
                step += 1;
                let message = json!({
                    "action": "driver:location", "orderId": order_id,
                    "latitude": latitude_at(order, step), "longitude": origin(order).1,
                    "heading": 0, "speed": 8.3, "ack": acks.as_str(),
                })
                .to_string();
                let sent_at = Instant::now();
                sink.send(Message::text(message)).await?;
                drove.updates.sent += 1;
                drove.sent_at.insert(step, sent_at);
            }
            message = stream.next() => {
                let message = message
                    .ok_or_else(|| BenchError::Protocol("the WebSocket closed".into()))??;
                let Message::Text(text) = message else { continue };
                let frame: Frame = serde_json::from_str(text.as_str())
                    .map_err(|e| BenchError::Protocol(format!("{e}: {text}")))?;
                match frame.event.as_str() {
                    "driver:location_acknowledged" => {
                        answered += 1;
                        match frame.data.accepted {
                            Some(true) => drove.updates.accepted += 1,
                            _ if frame.data.reason.as_deref() == Some("rate_limited") => {
                                drove.updates.rate_limited += 1;
                            }
                            _ => drove.updates.refused += 1,
                        }
                    }
                    "error" => {
                        answered += 1;
                        drove.updates.refused += 1;
                    }
                    _ => {}
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or(end)), if deadline.is_some() => {}
        }
    }
    if acks == LocationAcks::All && answered < drove.updates.sent {
        return Err(BenchError::Protocol(format!(
            "{} of {} locations unanswered after {ACK_TIMEOUT:?}",
            drove.updates.sent - answered,
            drove.updates.sent
        )));
    }
    if acks == LocationAcks::Refusals {
        // Only refusals were answered: every other send was accepted.
        drove.updates.accepted = drove
            .updates
            .sent
            .saturating_sub(drove.updates.rate_limited + drove.updates.refused);
    }
    drove.last_step = step;
    let ws = sink
        .reunite(stream)
        .map_err(|_| BenchError::Protocol("a driver's socket halves do not match".into()))?;
    Ok((ws, drove))
}

/// The value at quantile `q` of sorted `values` (nearest rank); 0 when empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    Latency {
        p50: quantile(&ms, 0.50),
        p90: quantile(&ms, 0.90),
        p99: quantile(&ms, 0.99),
        max: ms.last().copied().unwrap_or(0.0),
    }
}

/// The stack's work between `before` and `after`, per accepted update.
fn per_update(
    before: &MetricsSnapshot,
    after: &MetricsSnapshot,
    accepted: u64,
    connection_minutes: f64,
) -> PerUpdate {
    let per = |v: f64| {
        if accepted == 0 {
            0.0
        } else {
            v / accepted as f64
        }
    };
    let diff = |a: u64, b: u64| a.saturating_sub(b) as f64;
    let mut work = Work {
        messages_in: per(diff(
            after.websocket.billed_messages_in,
            before.websocket.billed_messages_in,
        )),
        messages_out: per(diff(
            after.websocket.billed_messages_out,
            before.websocket.billed_messages_out,
        )),
        connection_minutes: per(connection_minutes),
        read_units: per(after.dynamodb.total.read_units - before.dynamodb.total.read_units),
        write_units: per(after.dynamodb.total.write_units - before.dynamodb.total.write_units),
        routing_calls: after
            .routing
            .map(|a| per(diff(a.calls, before.routing.map_or(0, |b| b.calls)))),
        ..Work::default()
    };
    for (function, counts) in &after.lambda {
        let old = before.lambda.get(function).copied().unwrap_or_default();
        let invocations = diff(counts.invocations, old.invocations);
        if invocations > 0.0 {
            work.lambda_invocations
                .insert(function.clone(), per(invocations));
            work.lambda_billed_ms
                .insert(function.clone(), per(diff(counts.billed_ms, old.billed_ms)));
        }
    }
    let posts = &after.post_to_connection;
    let old_posts = &before.post_to_connection;
    let posts_by_event = posts
        .by_event
        .iter()
        .filter_map(|(event, n)| {
            let d = diff(*n, old_posts.by_event.get(event).copied().unwrap_or(0));
            (d > 0.0).then(|| (event.clone(), per(d)))
        })
        .collect();
    let dynamodb_by_operation = after
        .dynamodb
        .by_operation
        .iter()
        .filter_map(|(op, units)| {
            let old = before
                .dynamodb
                .by_operation
                .get(op)
                .copied()
                .unwrap_or_default();
            let calls = diff(units.calls, old.calls);
            (calls > 0.0).then(|| {
                (
                    op.clone(),
                    OperationWork {
                        calls: per(calls),
                        requests: per(diff(units.requests, old.requests)),
                        read_units: per(units.read_units - old.read_units),
                        write_units: per(units.write_units - old.write_units),
                    },
                )
            })
        })
        .collect();
    PerUpdate {
        work,
        posts: per(diff(posts.calls, old_posts.calls)),
        posts_by_event,
        dynamodb_requests: per(diff(
            after.dynamodb.total.requests,
            before.dynamodb.total.requests,
        )),
        dynamodb_by_operation,
    }
}

/// Progress that nobody sees.
struct Silent;

impl Tick for Silent {
    fn tick(&self, _: Option<String>) {}
}

/// The client of the stack `options` name, once the options are in range.
///
/// Fails when the URL is not loopback or an option is out of range.
fn load_client(options: &LoadOptions) -> Result<Client, BenchError> {
    let client = loopback_client(&options.url)?;
    if options.orders == 0 {
        return Err(BenchError::Options("--orders must be at least 1"));
    }
    if !(options.rate_hz.is_finite() && options.rate_hz > 0.0) {
        return Err(BenchError::Options("--rate-hz must be positive"));
    }
    if options.duration.is_zero() {
        return Err(BenchError::Options("--duration-secs must be positive"));
    }
    Ok(client)
}

/// The set-up: `options.orders` orders driven to `in_transit` over the HTTP API, as
/// `rnd-loadgen simulate` does, [`SETUP_PARALLELISM`] at a time.
///
/// Fails on the first refused request or an unreachable stack.
async fn prepare_orders(
    client: &Client,
    options: &LoadOptions,
    run_id: &str,
) -> Result<Vec<PreparedOrder>, BenchError> {
    let admin = rnd_local::issue_token(
        &options.jwt_secret,
        &format!("bench-admin-{run_id}"),
        "admin",
        None,
        Duration::from_secs(3600),
    )?;
    let setup = OrderSetup {
        client,
        jwt_secret: &options.jwt_secret,
        run_id,
        admin: &admin,
        step_pause: Duration::ZERO,
    };
    let started = Instant::now();
    let prepared: Vec<_> = futures::stream::iter(0..options.orders)
        .map(|k| {
            let setup = &setup;
            let chef = (CENTRE.0 + f64::from(k % 50) * 0.002, CENTRE.1);
            let customer = (chef.0 + 0.02, chef.1 + 0.02);
            async move { order_in_transit(setup, k + 1, chef, customer, &Silent).await }
        })
        .buffered(SETUP_PARALLELISM)
        .try_collect()
        .await?;
    eprintln!(
        "bench: {} orders in transit in {:.1} s",
        prepared.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(prepared)
}

/// The load run's open sockets.
struct LoadSockets {
    /// Idle connections, in no order's room.
    idle: Vec<Socket>,
    /// `options.subscribers` per order, subscribed to it, order by order.
    subscribers: Vec<Socket>,
    /// One per order, its assigned driver, order by order, with the last step it sent.
    drivers: Vec<(Socket, u32)>,
}

/// Opens the idle connections, then the subscribers (each subscribed to its order: its customer
/// and chef, alternately), then the drivers, `options.parallelism` at a time.
///
/// Fails when a connection or a subscription fails.
async fn open_connections(
    client: &Client,
    options: &LoadOptions,
    run_id: &str,
    prepared: &[PreparedOrder],
) -> Result<LoadSockets, BenchError> {
    let started = Instant::now();
    let idle = connect_all(
        client,
        idle_tokens(&options.jwt_secret, run_id, options.idle)?,
        options.parallelism,
    )
    .await?;
    let subscriber_tokens: Vec<String> = prepared
        .iter()
        .flat_map(|o| {
            (0..options.subscribers).map(move |j| {
                if j % 2 == 0 {
                    o.customer.clone()
                } else {
                    o.chef.clone()
                }
            })
        })
        .collect();
    let mut subscribers = connect_all(client, subscriber_tokens, options.parallelism).await?;
    let subscriptions = subscribers.iter_mut().enumerate().map(|(i, ws)| {
        let order_id = &prepared[i / options.subscribers as usize].order_id;
        async move { subscribe(ws, order_id).await }
    });
    futures::stream::iter(subscriptions)
        .buffer_unordered(options.parallelism.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    let drivers = connect_all(
        client,
        prepared.iter().map(|o| o.driver.clone()).collect(),
        options.parallelism,
    )
    .await?
    .into_iter()
    .map(|ws| (ws, 0))
    .collect();
    eprintln!(
        "bench: {} connections open in {:.1} s ({} idle)",
        room_members(options) + u64::from(options.idle),
        started.elapsed().as_secs_f64(),
        options.idle
    );
    Ok(LoadSockets {
        idle,
        subscribers,
        drivers,
    })
}

/// The orders' room members: a driver and `options.subscribers` subscribers per order.
fn room_members(options: &LoadOptions) -> u64 {
    u64::from(options.orders) * u64::from(1 + options.subscribers)
}

/// What the drivers did in the window.
struct Driven {
    updates: Updates,
    /// Per order: step → when it was sent.
    sent_at: Vec<HashMap<u32, Instant>>,
    /// The drivers' sockets, order by order, with the last step each sent.
    sockets: Vec<(Socket, u32)>,
}

/// Every driver streams `driver:location` every `1 / rate_hz` from its start, spread over the
/// first period after `first` as real drivers are, until `end`.
///
/// Fails when a driver's send or acknowledgement fails.
async fn drive_all(
    drivers: Vec<(Socket, u32)>,
    prepared: &[PreparedOrder],
    options: &LoadOptions,
    first: Instant,
    end: Instant,
) -> Result<Driven, BenchError> {
    let period = Duration::from_secs_f64(1.0 / options.rate_hz);
    let acks = options.acks;
    let driving: Vec<_> = drivers
        .into_iter()
        .zip(prepared.iter())
        .enumerate()
        .map(|(k, ((ws, last_step), order))| {
            let order_id = order.order_id.clone();
            // Drivers spread over the period, as real ones are.
            let start = first + period.mul_f64(k as f64 / f64::from(options.orders));
            tokio::spawn(async move {
                drive(ws, k, &order_id, period, (start, end), acks, last_step).await
            })
        })
        .collect();
    let mut driven = Driven {
        updates: Updates::default(),
        sent_at: Vec::with_capacity(driving.len()),
        sockets: Vec::with_capacity(driving.len()),
    };
    for task in driving {
        let (ws, drove) = task.await??;
        driven.updates.sent += drove.updates.sent;
        driven.updates.accepted += drove.updates.accepted;
        driven.updates.rate_limited += drove.updates.rate_limited;
        driven.updates.refused += drove.updates.refused;
        driven.sent_at.push(drove.sent_at);
        driven.sockets.push((ws, drove.last_step));
    }
    Ok(driven)
}

/// What the measured window gave.
struct Window {
    /// `GET /dev/metrics` when it started.
    before: MetricsSnapshot,
    /// `GET /dev/metrics` when it ended.
    after: MetricsSnapshot,
    /// The server's CPU seconds when the last driver stopped (`None` when it cannot tell).
    cpu_when_driven: Option<f64>,
    /// The bench's own CPU seconds from the window's start until the last driver stopped.
    bench_cpu_driven: Option<f64>,
    /// The drivers' location messages.
    updates: Updates,
    /// Send-to-receipt latency of every matched delivery, ms.
    latencies_ms: Vec<f64>,
    /// Deliveries that match no accepted update.
    unmatched: u64,
    /// `order:eta_update`s the subscribers received.
    eta_updates: u64,
    /// From its start until the last driver stopped.
    driven: Duration,
    /// From its start until the stack was quiet after the grace period.
    length: Duration,
    /// The sockets, still open, for the next window or [`close`].
    sockets: LoadSockets,
}

/// The measured window: the subscribers listen, the drivers stream for `options.duration`,
/// deliveries may arrive for `options.grace` more, and the stack is left to go quiet; the sockets
/// stay open. Deliveries are matched to the accepted updates on order and `seq`.
///
/// Fails when the stack has no `/dev/metrics`, or a driver's send or acknowledgement fails.
async fn measure(
    client: &Client,
    options: &LoadOptions,
    prepared: &[PreparedOrder],
    sockets: LoadSockets,
) -> Result<Window, BenchError> {
    let order_index: Arc<HashMap<String, usize>> = Arc::new(
        prepared
            .iter()
            .enumerate()
            .map(|(k, o)| (o.order_id.clone(), k))
            .collect(),
    );
    let received = Arc::new(AtomicU64::new(0));
    let (stop, stop_rx) = watch::channel(false);
    let listeners: Vec<_> = sockets
        .subscribers
        .into_iter()
        .map(|ws| {
            tokio::spawn(listen(
                ws,
                Arc::clone(&order_index),
                Arc::clone(&received),
                stop_rx.clone(),
            ))
        })
        .collect();
    let before = snapshot(client).await?;
    let bench_cpu_before = rnd_local::metrics::cpu().total_seconds();
    let window_start = Instant::now();
    let first = window_start + Duration::from_millis(100);
    let end = first + options.duration;
    let driven = drive_all(sockets.drivers, prepared, options, first, end).await?;
    let driven_for = window_start.elapsed();
    let bench_cpu_driven = rnd_local::metrics::cpu()
        .total_seconds()
        .zip(bench_cpu_before)
        .map(|(at_end, at_start)| (at_end - at_start).max(0.0));
    let cpu_when_driven = snapshot(client).await?.cpu.total_seconds();
    let expected = driven.updates.accepted * u64::from(options.subscribers);
    let grace_end = Instant::now() + options.grace;
    while received.load(Ordering::Relaxed) < expected && Instant::now() < grace_end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    quiet(client).await?;
    let after = snapshot(client).await?;
    let length = window_start.elapsed();
    let _ = stop.send(true);

    let mut latencies_ms = Vec::new();
    let mut unmatched = 0;
    let mut eta_updates = 0;
    let mut subscribers = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let (ws, heard) = listener.await?;
        subscribers.push(ws);
        unmatched += heard.unknown_orders;
        eta_updates += heard.eta_updates;
        for r in heard.receipts {
            match driven.sent_at[r.order].get(&r.step) {
                Some(sent) => latencies_ms.push(r.at.duration_since(*sent).as_secs_f64() * 1000.0),
                None => unmatched += 1,
            }
        }
    }
    Ok(Window {
        before,
        after,
        cpu_when_driven,
        bench_cpu_driven,
        updates: driven.updates,
        latencies_ms,
        unmatched,
        eta_updates,
        driven: driven_for,
        length,
        sockets: LoadSockets {
            idle: sockets.idle,
            subscribers,
            drivers: driven.sockets,
        },
    })
}

/// Closes every socket of a load run, `parallelism` at a time.
async fn close(sockets: LoadSockets, parallelism: usize) {
    let LoadSockets {
        idle,
        mut subscribers,
        drivers,
    } = sockets;
    subscribers.extend(drivers.into_iter().map(|(ws, _)| ws));
    subscribers.extend(idle);
    close_all(subscribers, parallelism).await;
}

/// The load report of `window` (its sockets are handed back): counts, latency, server CPU, and
/// the work per accepted update, priced.
fn load_report(options: &LoadOptions, window: Window) -> (LoadReport, LoadSockets) {
    let Window {
        before,
        after,
        cpu_when_driven,
        bench_cpu_driven,
        updates,
        latencies_ms,
        unmatched,
        eta_updates,
        driven,
        length,
        sockets,
    } = window;
    let cpu_seconds = match (after.cpu.total_seconds(), before.cpu.total_seconds()) {
        (Some(a), Some(b)) => Some((a - b).max(0.0)),
        _ => None,
    };
    let room_members = room_members(options);
    let expected = updates.accepted * u64::from(options.subscribers);
    let matched = latencies_ms.len() as u64;
    let connection_minutes = room_members as f64 * length.as_secs_f64() / 60.0;
    let per_accepted_update = per_update(&before, &after, updates.accepted, connection_minutes);
    let cost = cost::cost_per_million(&per_accepted_update.work, options.subscribers, &PRICES);
    let report = LoadReport {
        mode: "load",
        orders: options.orders,
        subscribers_per_order: options.subscribers,
        rate_hz: options.rate_hz,
        duration_s: options.duration.as_secs_f64(),
        acks: options.acks,
        connections: Connections {
            bench: room_members + u64::from(options.idle),
            server: before.connections,
            room_members,
        },
        updates,
        deliveries: Deliveries {
            expected,
            received: matched,
            lost: expected.saturating_sub(matched),
            unmatched,
            eta_updates,
        },
        latency_ms: latency(latencies_ms),
        deliveries_per_second: matched as f64 / driven.as_secs_f64(),
        server_cpu: ServerCpu {
            seconds: cpu_seconds,
            cores: cpu_when_driven
                .zip(before.cpu.total_seconds())
                .map(|(at_end, at_start)| (at_end - at_start).max(0.0) / driven.as_secs_f64()),
        },
        bench_cores: bench_cpu_driven.map(|seconds| seconds / driven.as_secs_f64()),
        server_rss_bytes: after.memory.rss_bytes,
        server_peak_rss_bytes: after.memory.peak_rss_bytes,
        per_accepted_update,
        cost_per_million_updates_usd: cost,
        prices: PRICES,
        assumptions: cost::ASSUMPTIONS,
        routing_calls_per_order_at_start: None,
        routing_cost_usd: None,
        routing_prices_checked: None,
    };
    (report, sockets)
}

/// Runs the load bench (see the module documentation) and returns its report: the set-up, the
/// connections, then the measured window.
///
/// Fails when the URL is not loopback, an option is out of range, the stack is unreachable or
/// has no `/dev/metrics`, or a connection, subscription or acknowledgement fails.
pub async fn load(options: &LoadOptions) -> Result<LoadReport, BenchError> {
    let client = load_client(options)?;
    snapshot(&client).await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let prepared = prepare_orders(&client, options, &run_id).await?;
    let sockets = open_connections(&client, options, &run_id, &prepared).await?;
    quiet(&client).await?;
    // Each driver's first location of the trip goes before the measured window: it announces
    // the order's first ETA, an event of the order (once per trip), which a short window would
    // otherwise charge to every update as if ETAs changed that often.
    let first_fix = LoadOptions {
        duration: Duration::from_secs_f64(1.0 / options.rate_hz),
        ..options.clone()
    };
    let first = measure(&client, &first_fix, &prepared, sockets).await?;
    let routing_calls_at_start = first.after.routing.map(|after| {
        let before = first.before.routing.map_or(0, |b| b.calls);
        after.calls.saturating_sub(before) as f64 / f64::from(options.orders.max(1))
    });
    let window = measure(&client, options, &prepared, first.sockets).await?;
    let (mut report, sockets) = load_report(options, window);
    report.routing_calls_per_order_at_start = routing_calls_at_start;
    if let Some(calls_per_update) = report.per_accepted_update.work.routing_calls {
        report.routing_cost_usd = Some(cost::routing_cost(
            calls_per_update,
            routing_calls_at_start,
            &cost::ROUTING_PRICES,
        ));
        report.routing_prices_checked = Some(cost::ROUTING_PRICES_CHECKED);
    }
    close(sockets, options.parallelism).await;
    Ok(report)
}

/// The knee sweep's parameters.
#[derive(Debug, Clone)]
pub struct KneeOptions {
    /// The load at every rate; its `rate_hz` is replaced by each of `rates` in turn.
    pub load: LoadOptions,
    /// Location messages per second per driver, swept in this order.
    pub rates: Vec<f64>,
    /// The latency a rate must keep its p99 under to count, ms.
    pub p99_limit_ms: f64,
    /// The sweep stops after this many rates in a row miss (p99 over the limit or anything
    /// lost): past the knee, higher rates only take longer to fail.
    pub misses_to_stop: usize,
}

impl KneeOptions {
    /// `load` at 1, 2, 4, 6, 8, 10, 12, 14, 16 and 20 Hz, p99 ≤ 50 ms, stopping after two misses
    /// in a row.
    pub fn new(load: LoadOptions) -> Self {
        Self {
            load,
            rates: vec![1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0],
            p99_limit_ms: 50.0,
            misses_to_stop: 2,
        }
    }
}

/// One rate of the knee sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KneeRow {
    /// Location messages per second per driver asked for.
    pub rate_hz: f64,
    /// Orders × subscribers × rate: the deliveries per second asked for.
    pub asked_deliveries_per_second: f64,
    /// Matched deliveries per second of streaming.
    pub deliveries_per_second: f64,
    /// Send-to-receipt latency.
    pub latency_ms: Latency,
    /// Expected but never received.
    pub lost: u64,
    /// Received but matching no accepted update.
    pub unmatched: u64,
    /// Locations refused (the stack's rate limit included).
    pub refused: u64,
    /// The CPU the server used meanwhile.
    pub server_cpu: ServerCpu,
    /// The CPU this bench used while its drivers sent, cores.
    pub bench_cores: Option<f64>,
    /// p99 within the limit and nothing lost or refused.
    pub within_limit: bool,
}

/// The JSON line of a knee sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KneeReport {
    /// `"knee"`.
    pub mode: &'static str,
    /// Orders.
    pub orders: u32,
    /// Subscribers per order.
    pub subscribers_per_order: u32,
    /// Streaming time at each rate, s.
    pub duration_s: f64,
    /// Which locations the drivers asked to have acknowledged.
    pub acks: LocationAcks,
    /// The p99 a rate had to keep, ms.
    pub p99_limit_ms: f64,
    /// Every rate swept, in order.
    pub rates: Vec<KneeRow>,
    /// The highest delivered rate with p99 within the limit and nothing lost (0 when none).
    pub knee_deliveries_per_second: f64,
    /// The driver rate that delivered it.
    pub knee_rate_hz: Option<f64>,
}

impl KneeRow {
    fn of(report: &LoadReport, p99_limit_ms: f64) -> Self {
        let refused = report.updates.rate_limited + report.updates.refused;
        Self {
            rate_hz: report.rate_hz,
            asked_deliveries_per_second: f64::from(report.orders)
                * f64::from(report.subscribers_per_order)
                * report.rate_hz,
            deliveries_per_second: report.deliveries_per_second,
            latency_ms: report.latency_ms,
            lost: report.deliveries.lost,
            unmatched: report.deliveries.unmatched,
            refused,
            server_cpu: report.server_cpu,
            bench_cores: report.bench_cores,
            within_limit: report.latency_ms.p99 <= p99_limit_ms
                && report.deliveries.lost == 0
                && report.deliveries.unmatched == 0
                && refused == 0
                && report.deliveries.received > 0,
        }
    }
}

impl KneeReport {
    /// The report of the rows swept: the knee is the best row within the limit.
    fn of(options: &KneeOptions, rates: Vec<KneeRow>) -> Self {
        let knee = rates
            .iter()
            .filter(|r| r.within_limit)
            .max_by(|a, b| a.deliveries_per_second.total_cmp(&b.deliveries_per_second));
        Self {
            mode: "knee",
            orders: options.load.orders,
            subscribers_per_order: options.load.subscribers,
            duration_s: options.load.duration.as_secs_f64(),
            acks: options.load.acks,
            p99_limit_ms: options.p99_limit_ms,
            knee_deliveries_per_second: knee.map_or(0.0, |r| r.deliveries_per_second),
            knee_rate_hz: knee.map(|r| r.rate_hz),
            rates,
        }
    }
}

/// Sweeps the load over `options.rates` on one set of orders and connections, one measured
/// window per rate (the stack quiet between them), calling `on_row` after each, and returns the
/// knee: the highest delivered rate whose p99 stays within the limit with nothing lost.
///
/// The stack must accept every location at the highest rate (`rnd-local serve
/// --location-min-interval-ms 0`): a refused location counts as a miss.
///
/// Fails as [`load`] does, or when no rate is given or one is not positive.
pub async fn knee(
    options: &KneeOptions,
    mut on_row: impl FnMut(&KneeRow),
) -> Result<KneeReport, BenchError> {
    if options.rates.is_empty() {
        return Err(BenchError::Options("--rates needs at least one rate"));
    }
    if !options.rates.iter().all(|r| r.is_finite() && *r > 0.0) {
        return Err(BenchError::Options(
            "every rate of --rates must be positive",
        ));
    }
    let client = load_client(&options.load)?;
    snapshot(&client).await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let prepared = prepare_orders(&client, &options.load, &run_id).await?;
    let mut sockets = open_connections(&client, &options.load, &run_id, &prepared).await?;
    let mut rows = Vec::with_capacity(options.rates.len());
    let mut misses = 0;
    for &rate_hz in &options.rates {
        let at_rate = LoadOptions {
            rate_hz,
            ..options.load.clone()
        };
        quiet(&client).await?;
        let window = measure(&client, &at_rate, &prepared, sockets).await?;
        let (report, open) = load_report(&at_rate, window);
        sockets = open;
        let row = KneeRow::of(&report, options.p99_limit_ms);
        on_row(&row);
        misses = if row.within_limit { 0 } else { misses + 1 };
        rows.push(row);
        if misses >= options.misses_to_stop.max(1) {
            break;
        }
    }
    close(sockets, options.load.parallelism).await;
    Ok(KneeReport::of(options, rows))
}

/// Runs the idle bench (see the module documentation) and returns its report.
///
/// Fails when the URL is not loopback, the stack is unreachable or has no `/dev/metrics`, or a
/// connection fails.
pub async fn idle(options: &IdleOptions) -> Result<IdleReport, BenchError> {
    let client = loopback_client(&options.url)?;
    if options.connections == 0 {
        return Err(BenchError::Options("--connections must be at least 1"));
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let tokens = idle_tokens(&options.jwt_secret, &run_id, options.connections)?;
    let before = snapshot(&client).await?;
    let started = Instant::now();
    let sockets = connect_all(&client, tokens, options.parallelism).await?;
    let connect_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(options.settle).await;
    let after = snapshot(&client).await?;
    close_all(sockets, options.parallelism).await;
    let closed = disconnected(&client, &after, u64::from(options.connections)).await?;

    let n = f64::from(options.connections);
    let bytes_per_connection = match (before.memory.rss_bytes, after.memory.rss_bytes) {
        (Some(b), Some(a)) => Some((a as f64 - b as f64) / n),
        _ => None,
    };
    let connects = IdleWork::between(&before, &after, n);
    let disconnects = IdleWork::between(&after, &closed, n);
    Ok(IdleReport {
        mode: "idle",
        connections: options.connections,
        server_connections_before: before.connections,
        server_connections_after: after.connections,
        rss_before_bytes: before.memory.rss_bytes,
        rss_after_bytes: after.memory.rss_bytes,
        bytes_per_connection,
        peak_rss_bytes: after.memory.peak_rss_bytes,
        connect_seconds,
        connects_per_second: n / connect_seconds.max(f64::EPSILON),
        lambda_invocations_per_connection: connects.invocations,
        write_units_per_connection: connects.write_units,
        lambda_invocations_per_disconnect: disconnects.invocations,
        read_units_per_disconnect: disconnects.read_units,
        write_units_per_disconnect: disconnects.write_units,
    })
}

/// What the stack did between two metrics snapshots, per one of the `n` connects (or
/// disconnects) done meanwhile.
struct IdleWork {
    /// Lambda invocations, every function.
    invocations: f64,
    /// DynamoDB read request units.
    read_units: f64,
    /// DynamoDB write request units.
    write_units: f64,
}

impl IdleWork {
    fn between(from: &MetricsSnapshot, to: &MetricsSnapshot, n: f64) -> Self {
        let invocations =
            |s: &MetricsSnapshot| s.lambda.values().map(|c| c.invocations).sum::<u64>();
        let (a, b) = (&from.dynamodb.total, &to.dynamodb.total);
        Self {
            invocations: invocations(to).saturating_sub(invocations(from)) as f64 / n,
            read_units: (b.read_units - a.read_units) / n,
            write_units: (b.write_units - a.write_units) / n,
        }
    }
}

/// The stack's metrics once `count` more `$disconnect`s than in `since` have run, waiting at
/// most [`DISCONNECT_TIMEOUT`].
async fn disconnected(
    client: &Client,
    since: &MetricsSnapshot,
    count: u64,
) -> Result<MetricsSnapshot, BenchError> {
    let ran = |s: &MetricsSnapshot| {
        s.lambda
            .get(DISCONNECT_FUNCTION)
            .map_or(0, |c| c.invocations)
    };
    let deadline = Instant::now() + DISCONNECT_TIMEOUT;
    loop {
        let now = snapshot(client).await?;
        if ran(&now).saturating_sub(ran(since)) >= count || Instant::now() >= deadline {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_driven() {
        // GIVEN loopback and other URLs WHEN checked THEN only loopback ones pass
        for url in [
            "http://127.0.0.1:9001",
            "http://localhost:9001/",
            "http://127.0.0.2:80",
            "http://[::1]:9001",
        ] {
            assert!(loopback_client(url).is_ok(), "{url}");
        }
        for url in [
            "http://10.0.0.1:9001",
            "http://example.com:9001",
            "https://127.0.0.1:9001",
            "http://0.0.0.0:9001",
        ] {
            assert!(
                matches!(loopback_client(url), Err(BenchError::NotLoopback(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        // GIVEN latencies 1..=100 ms WHEN summarised THEN p50 = 50, p90 = 90, p99 = 99, max 100
        let l = latency((1..=100).rev().map(f64::from).collect());
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(latency(Vec::new()), Latency::default());
    }

    fn row(rate_hz: f64, delivered: f64, p99: f64, lost: u64) -> KneeRow {
        KneeRow {
            rate_hz,
            asked_deliveries_per_second: delivered,
            deliveries_per_second: delivered,
            latency_ms: Latency {
                p99,
                ..Latency::default()
            },
            lost,
            unmatched: 0,
            refused: 0,
            server_cpu: ServerCpu::default(),
            bench_cores: None,
            within_limit: p99 <= 50.0 && lost == 0,
        }
    }

    #[test]
    fn the_knee_is_the_highest_delivered_rate_within_the_limit() {
        // GIVEN a sweep whose 12 Hz row is fastest within 50 ms, a faster one over it, and a
        // faster one that lost deliveries
        let options = KneeOptions::new(LoadOptions::new("http://127.0.0.1:1", "s"));
        let rows = vec![
            row(1.0, 2_000.0, 3.0, 0),
            row(12.0, 24_000.0, 41.0, 0),
            row(14.0, 27_000.0, 80.0, 0),
            row(16.0, 29_000.0, 20.0, 3),
        ];
        // WHEN the report is made
        let report = KneeReport::of(&options, rows);
        // THEN the knee is the 12 Hz row's delivered rate
        assert_eq!(report.knee_deliveries_per_second, 24_000.0);
        assert_eq!(report.knee_rate_hz, Some(12.0));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["kneeDeliveriesPerSecond"], 24_000.0);
        assert_eq!(json["mode"], "knee");
    }

    #[test]
    fn a_sweep_with_no_rate_within_the_limit_has_no_knee() {
        // GIVEN a sweep where every rate misses WHEN the report is made THEN the knee is 0
        let options = KneeOptions::new(LoadOptions::new("http://127.0.0.1:1", "s"));
        let report = KneeReport::of(&options, vec![row(1.0, 2_000.0, 51.0, 0)]);
        assert_eq!(report.knee_deliveries_per_second, 0.0);
        assert_eq!(report.knee_rate_hz, None);
    }

    #[test]
    fn the_windows_work_is_divided_by_the_accepted_updates() {
        // GIVEN metrics before and after a window of 10 accepted updates
        let before = MetricsSnapshot::default();
        let mut after = MetricsSnapshot::default();
        after.websocket.billed_messages_in = 12;
        after.websocket.billed_messages_out = 52;
        after.dynamodb.total.write_units = 12.0;
        after.dynamodb.total.read_units = 15.0;
        after.post_to_connection.calls = 40;
        after
            .post_to_connection
            .by_event
            .insert("driver:location_update".into(), 40);
        after.lambda.insert(
            "driver:location".into(),
            rnd_local::metrics::LambdaCounts {
                invocations: 12,
                handler_micros: 9000,
                billed_ms: 20,
            },
        );
        // WHEN the work per update is computed
        let per = per_update(&before, &after, 10, 5.0);
        // THEN every count is per accepted update
        assert_eq!(per.work.messages_in, 1.2);
        assert_eq!(per.work.messages_out, 5.2);
        assert_eq!(per.work.write_units, 1.2);
        assert_eq!(per.work.read_units, 1.5);
        assert_eq!(per.work.connection_minutes, 0.5);
        assert_eq!(per.posts, 4.0);
        assert_eq!(per.posts_by_event["driver:location_update"], 4.0);
        assert_eq!(per.work.lambda_invocations["driver:location"], 1.2);
        assert_eq!(per.work.lambda_billed_ms["driver:location"], 2.0);
    }
}
