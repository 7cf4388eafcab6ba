//! What the AWS deployment would be billed for, counted by the local stack on its own code paths,
//! and served read-only at `GET /dev/metrics` (JSON).
//!
//! **Local stack only**, like `POST /dev/token`: nothing deployed has this route.
//!
//! - WebSocket messages in and out (`ws`): every text or binary frame a client sends, every
//!   route response and every posted message the stack sends; `billed*` counts them in API
//!   Gateway's 32 KB metering increments.
//! - Lambda invocations per function and their handler time (`ws`, the poller): the authorizer
//!   and `$connect` per upgrade, `$disconnect`, each message route by route key, and each
//!   fan-out batch (`stream-fanout`). `billedMs` rounds each invocation up to the millisecond, as
//!   Lambda bills; the time is the local handler's, without Lambda's own overhead.
//! - PostToConnection calls by outcome and by the posted message's `event` (`management`).
//! - DynamoDB requests and read/write request units per store operation (`metering`).
//! - The server's resident memory (`VmRSS`, `VmHWM` of `/proc/self/status`), the CPU time it
//!   has used (`utime`, `stime` of `/proc/self/stat`) and its open WebSocket connections.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::{AppState, lock};

/// API Gateway meters WebSocket messages in 32 KB increments.
pub(crate) const MESSAGE_METERING_BYTES: u64 = 32 * 1024;

/// The counters. Cheap to update from any task (atomics, and short-held locks for the maps).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    messages_in: AtomicU64,
    billed_messages_in: AtomicU64,
    messages_out: AtomicU64,
    billed_messages_out: AtomicU64,
    lambda: Mutex<BTreeMap<String, LambdaCounts>>,
    posts: Mutex<PostCounts>,
    dynamodb: Mutex<DynamoCounts>,
}

/// Invocations of one Lambda function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaCounts {
    /// Invocations.
    pub invocations: u64,
    /// Handler time, microseconds, summed.
    pub handler_micros: u64,
    /// Handler time rounded up to the millisecond per invocation (Lambda's billing unit), summed.
    pub billed_ms: u64,
}

/// PostToConnection calls, as the Management API received them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostCounts {
    /// Every call.
    pub calls: u64,
    /// Queued for an open connection (200).
    pub delivered: u64,
    /// The connection was not open (410 `GoneException`).
    pub gone: u64,
    /// Over 128 KB (413).
    pub too_large: u64,
    /// Delivered posts by the message's `event` (`driver:location_update`, …).
    pub by_event: BTreeMap<String, u64>,
}

/// DynamoDB work of one store operation (or of all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamoUnits {
    /// Port calls.
    pub calls: u64,
    /// DynamoDB API requests they make (GetItem, Query, UpdateItem, TransactWriteItems, …).
    pub requests: u64,
    /// Read request units (an eventually consistent read counts ½ per 4 KB).
    pub read_units: f64,
    /// Write request units (a transactional write counts 2 per KB and item).
    pub write_units: f64,
}

impl DynamoUnits {
    fn add(&mut self, other: &DynamoUnits) {
        self.calls += other.calls;
        self.requests += other.requests;
        self.read_units += other.read_units;
        self.write_units += other.write_units;
    }
}

/// DynamoDB work in total and by store operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamoCounts {
    /// Every operation.
    pub total: DynamoUnits,
    /// By store port operation (`record_location`, `room_members`, …).
    pub by_operation: BTreeMap<String, DynamoUnits>,
}

/// WebSocket messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageCounts {
    /// Frames received from clients.
    pub messages_in: u64,
    /// The same in 32 KB metering increments.
    pub billed_messages_in: u64,
    /// Frames sent to clients (route responses and posts).
    pub messages_out: u64,
    /// The same in 32 KB metering increments.
    pub billed_messages_out: u64,
}

/// The server process's memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Resident set size now (`VmRSS`), bytes; `None` where `/proc/self/status` is missing.
    pub rss_bytes: Option<u64>,
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// The CPU time the server process has used since it started, all threads together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    /// In user mode (`utime`), seconds; `None` where `/proc/self/stat` is missing.
    pub user_seconds: Option<f64>,
    /// In the kernel on its behalf (`stime`), seconds.
    pub system_seconds: Option<f64>,
}

impl Cpu {
    /// User and system time together, seconds.
    pub fn total_seconds(&self) -> Option<f64> {
        Some(self.user_seconds? + self.system_seconds?)
    }
}

/// `GET /dev/metrics`: every counter since the stack started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    /// Open WebSocket connections now.
    pub connections: u64,
    /// The server's memory now.
    pub memory: Memory,
    /// The server's CPU time so far.
    #[serde(default)]
    pub cpu: Cpu,
    /// WebSocket messages.
    pub websocket: MessageCounts,
    /// Lambda invocations by function (`authorizer`, `$connect`, a route key, `stream-fanout`).
    pub lambda: BTreeMap<String, LambdaCounts>,
    /// PostToConnection calls.
    pub post_to_connection: PostCounts,
    /// DynamoDB requests and units.
    pub dynamodb: DynamoCounts,
    /// What the routed ETA did, when a routing provider is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<rnd_handlers::routed_eta::RoutingCounts>,
}

/// The name of the fan-out function in [`MetricsSnapshot::lambda`].
pub const FANOUT_FUNCTION: &str = "stream-fanout";
/// The name of the authorizer function in [`MetricsSnapshot::lambda`].
pub const AUTHORIZER_FUNCTION: &str = "authorizer";

/// Messages of `bytes` bytes in 32 KB increments (an empty message is still one).
pub(crate) fn billed_messages(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(MESSAGE_METERING_BYTES).max(1)
}

impl Metrics {
    /// A frame of `bytes` bytes received from a client.
    pub(crate) fn message_in(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.billed_messages_in
            .fetch_add(billed_messages(bytes), Ordering::Relaxed);
    }

    /// A frame of `bytes` bytes sent to a client.
    pub(crate) fn message_out(&self, bytes: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.billed_messages_out
            .fetch_add(billed_messages(bytes), Ordering::Relaxed);
    }

    /// One invocation of `function` whose handler ran for `took`.
    pub(crate) fn invoked(&self, function: &str, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut lambda = lock(&self.lambda);
        let counts = match lambda.get_mut(function) {
            Some(c) => c,
            None => lambda.entry(function.to_owned()).or_default(),
        };
        counts.invocations += 1;
        counts.handler_micros = counts.handler_micros.saturating_add(micros);
        counts.billed_ms = counts
            .billed_ms
            .saturating_add(micros.div_ceil(1000).max(1));
    }

    /// One PostToConnection: `delivered` or not (`gone`, else too large), of `body`.
    pub(crate) fn posted(&self, outcome: PostOutcome, body: &[u8]) {
        let mut posts = lock(&self.posts);
        posts.calls += 1;
        match outcome {
            PostOutcome::Delivered => {
                posts.delivered += 1;
                let event = event_name(body);
                match posts.by_event.get_mut(event) {
                    Some(n) => *n += 1,
                    None => {
                        posts.by_event.insert(event.to_owned(), 1);
                    }
                }
            }
            PostOutcome::Gone => posts.gone += 1,
            PostOutcome::TooLarge => posts.too_large += 1,
        }
    }

    /// One store operation's DynamoDB work.
    pub(crate) fn dynamodb(&self, operation: &'static str, units: DynamoUnits) {
        let mut dynamodb = lock(&self.dynamodb);
        dynamodb.total.add(&units);
        match dynamodb.by_operation.get_mut(operation) {
            Some(u) => u.add(&units),
            None => {
                dynamodb.by_operation.insert(operation.to_owned(), units);
            }
        }
    }

    /// Every counter now, with `connections` open.
    pub(crate) fn snapshot(&self, connections: u64) -> MetricsSnapshot {
        MetricsSnapshot {
            connections,
            memory: memory(),
            cpu: cpu(),
            websocket: MessageCounts {
                messages_in: self.messages_in.load(Ordering::Relaxed),
                billed_messages_in: self.billed_messages_in.load(Ordering::Relaxed),
                messages_out: self.messages_out.load(Ordering::Relaxed),
                billed_messages_out: self.billed_messages_out.load(Ordering::Relaxed),
            },
            lambda: lock(&self.lambda).clone(),
            post_to_connection: lock(&self.posts).clone(),
            dynamodb: lock(&self.dynamodb).clone(),
            routing: None,
        }
    }
}

/// How a PostToConnection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostOutcome {
    Delivered,
    Gone,
    TooLarge,
}

/// The `event` of a posted message (`"?"` when it has none).
fn event_name(body: &[u8]) -> &'static str {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        event: Option<std::borrow::Cow<'a, str>>,
    }
    // The protocol's event names are few; keep them as static strings.
    const KNOWN: [&str; 8] = [
        "driver:location_update",
        "order:eta_update",
        "order:status_update",
        "order:new",
        "driver:new_assignment",
        "connected",
        "error",
        "pong",
    ];
    // What this stack posts starts with its event (`{"event":"…",`): read there, the body is
    // not parsed (parsing every delivery was a fifth of the posting's cost).
    if let Some(rest) = body.strip_prefix(br#"{"event":""#)
        && let Some(known) = KNOWN.into_iter().find(|k| {
            rest.strip_prefix(k.as_bytes())
                .is_some_and(|after| after.first() == Some(&b'"'))
        })
    {
        return known;
    }
    match serde_json::from_slice::<Event<'_>>(body)
        .ok()
        .and_then(|e| e.event)
    {
        Some(name) => KNOWN.into_iter().find(|k| *k == name).unwrap_or("other"),
        None => "?",
    }
}

/// `VmRSS` and `VmHWM` of `/proc/self/status`.
fn memory() -> Memory {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Memory::default();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Memory {
        rss_bytes: field("VmRSS:"),
        peak_rss_bytes: field("VmHWM:"),
    }
}

/// Clock ticks per second of `/proc/[pid]/stat`'s times: `USER_HZ`, which Linux fixes at 100 in
/// its user-space ABI whatever the kernel's own `HZ`.
const USER_HZ: f64 = 100.0;

/// `utime` and `stime` of `/proc/self/stat` (fields 14 and 15), in seconds: this process's
/// CPU (the stack's in its metrics; the bench reads its own with it too).
pub fn cpu() -> Cpu {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Cpu::default();
    };
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return Cpu::default();
    };
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let mut fields = after_name.split_whitespace().skip(11);
    let mut seconds = || {
        fields
            .next()
            .and_then(|ticks| ticks.parse::<u64>().ok())
            .map(|ticks| ticks as f64 / USER_HZ)
    };
    let user_seconds = seconds();
    let system_seconds = seconds();
    Cpu {
        user_seconds,
        system_seconds,
    }
}

/// `GET /dev/metrics`.
pub(crate) async fn serve(State(state): State<Arc<AppState>>) -> Json<MetricsSnapshot> {
    let mut snapshot = state.metrics.snapshot(state.connections.open_count());
    snapshot.routing = state.routing_stats.as_deref().map(|s| s.snapshot());
    Json(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_billed_in_32_kb_increments_and_invocations_per_started_millisecond() {
        // GIVEN fresh counters
        let metrics = Metrics::default();
        // WHEN a small and a 40 KB frame arrive, and a function runs 1.2 ms then 10 µs
        metrics.message_in(200);
        metrics.message_in(40 * 1024);
        metrics.invoked("driver:location", Duration::from_micros(1200));
        metrics.invoked("driver:location", Duration::from_micros(10));
        // THEN two messages are three billed ones, and the two runs bill 2 + 1 ms
        let snap = metrics.snapshot(0);
        assert_eq!(snap.websocket.messages_in, 2);
        assert_eq!(snap.websocket.billed_messages_in, 3);
        let route = snap.lambda["driver:location"];
        assert_eq!(route.invocations, 2);
        assert_eq!(route.handler_micros, 1210);
        assert_eq!(route.billed_ms, 3);
    }

    #[test]
    fn delivered_posts_are_counted_by_their_event() {
        // GIVEN fresh counters
        let metrics = Metrics::default();
        // WHEN a location update and a status update are delivered and one post is gone
        metrics.posted(
            PostOutcome::Delivered,
            br#"{"event":"driver:location_update","data":{}}"#,
        );
        metrics.posted(
            PostOutcome::Delivered,
            br#"{"data":{},"event":"order:status_update"}"#,
        );
        metrics.posted(PostOutcome::Gone, b"{}");
        // AND an event whose name only starts like a known one, and a body without an event
        metrics.posted(
            PostOutcome::Delivered,
            br#"{"event":"order:newer","data":{}}"#,
        );
        metrics.posted(PostOutcome::Delivered, br#"{"data":{}}"#);
        // THEN all calls are counted, and the delivered ones by event
        let posts = metrics.snapshot(0).post_to_connection;
        assert_eq!((posts.calls, posts.delivered, posts.gone), (5, 4, 1));
        assert_eq!(posts.by_event["driver:location_update"], 1);
        assert_eq!(posts.by_event["order:status_update"], 1);
        assert_eq!(posts.by_event["other"], 1);
        assert_eq!(posts.by_event["?"], 1);
        assert!(!posts.by_event.contains_key("order:new"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_snapshot_reads_this_process_memory() {
        // GIVEN a Linux process WHEN its memory is read
        let memory = memory();
        // THEN it has a resident size, and a peak at least as large
        let (rss, peak) = (memory.rss_bytes.unwrap(), memory.peak_rss_bytes.unwrap());
        assert!(rss > 0 && peak >= rss);
    }

    #[test]
    fn the_snapshot_reads_the_cpu_time_this_process_has_used() {
        // GIVEN a Linux process's CPU time
        let before = cpu();
        let start = before.total_seconds().unwrap();
        // WHEN it spins (at most 10 s of wall time, however busy the machine)
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        let mut now = start;
        while now < start + 0.1 && std::time::Instant::now() < deadline {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
            now = cpu().total_seconds().unwrap();
        }
        // THEN the reading grows by the CPU it burnt, most of it in user mode
        assert!(now >= start + 0.1, "{start} s, then {now} s after spinning");
        assert!(cpu().user_seconds.unwrap() > before.user_seconds.unwrap());
    }
}
