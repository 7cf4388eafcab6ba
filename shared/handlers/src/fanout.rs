//! The orders table's stream fan-out: a batch of DynamoDB stream records
//! (`NEW_AND_OLD_IMAGES`) in, WebSocket events posted to the rooms that should see them, a
//! partial batch response out.
//!
//! Per batch, [`fan_out`]:
//! 1. derives the events of every record in stream order with
//!    [`derive_events`](rnd_domain::events::derive_events) (`order:new` → `user:{chefId}`;
//!    `order:status_update` → `order:{id}` and `role:admin`; `driver:new_assignment` →
//!    `user:{driverId}`; `driver:location_update` and `order:eta_update` → `order:{id}`);
//! 2. coalesces: of an order's `driver:location_update`s only the newest (highest `seq`) is
//!    sent, likewise its `order:eta_update`s; every other event is sent;
//! 3. keeps every event addressed to a `user:{id}` room in that user's inbox
//!    ([`InboxStore::append_to_inbox`], one call per user, idempotent by event), **before**
//!    anything is posted: an event whose append fails is not posted at all and fails its
//!    record, so nothing is acknowledged that is not stored; the position it gets becomes the
//!    `cursor` of the copy sent through that user's room;
//! 4. reads each distinct room once (`room_members`, one query of one partition; never a scan)
//!    and sends each event once to each connection in any of its rooms (through its user room,
//!    with that user's cursor);
//!    A member whose token has expired gets none of them: it is told `token_expired` once and
//!    closed (`DeleteConnection`; one that already went is removed as on a 410);
//! 5. posts with bounded concurrency, one task per connection sending that connection's events
//!    in stream order. A 410 Gone closes *that* connection (and its memberships; when its row
//!    is already gone, the memberships this batch found) and skips its other events, unless it
//!    opened within [`CONNECTING_GRACE`]: API Gateway answers 410 until `$connect` returns, so
//!    a connection that young is still opening and is kept (its `resume` catches it up);
//!    throttling and 5xx are retried with full-jitter exponential backoff; a connection whose
//!    post still fails is skipped for the rest of the batch, counted and logged by id. It does
//!    **not** fail the record: a redelivery would resend the whole shard to everyone and stall
//!    it behind one slow socket, and the client sees the gap in `seq` and catches up (`resume`);
//! 6. answers `batchItemFailures` with the sequence number of the earliest record whose events
//!    our side could not handle (an inbox that could not keep them, a room that could not be
//!    read: what a retry can fix): Lambda checkpoints before it and redelivers from there, so
//!    the records before it are not sent again. Redelivered events carry the same `seq`, so
//!    clients drop what they already have.
//!
//! [`BatchMetrics`] counts what happened; [`BatchMetrics::to_emf`] renders them as one
//! CloudWatch Embedded Metric Format line.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use rnd_domain::events::{Outgoing, derive_events};
use rnd_domain::ids::{ConnectionId, OrderId, UserId};
use rnd_domain::inbox::{Cursor, DEFAULT_RETENTION_SECS, InboxEvent};
use rnd_domain::ports::{
    ConnectionStore, InboxStore, Notifier, NotifyError, RoomMembers, StoreError,
};
use rnd_domain::protocol::ServerMessage;
use rnd_domain::rooms::Room;
use tracing::Instrument;

/// Default number of connections posted to at once.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// Default attempts of one post that is throttled or meets a 5xx (the first included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default cap of the first retry's backoff; doubles per attempt, full jitter.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(50);
/// Default cap of any retry's backoff.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(1);
/// The function name the metrics are published under.
pub const METRICS_FUNCTION: &str = "stream-fanout";
/// The CloudWatch namespace of the metrics.
pub use crate::stream::METRICS_NAMESPACE;

/// Settings of the fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutConfig {
    /// Connections posted to at once (at least 1).
    pub concurrency: usize,
    /// Attempts of one post that is throttled or meets a 5xx, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff cap of the first retry; the cap doubles per retry up to `max_delay`, and the
    /// actual pause is uniformly random below the cap ("full jitter").
    pub base_delay: Duration,
    /// Largest backoff cap.
    pub max_delay: Duration,
    /// How long a user's inbox keeps an event (at least a day by default).
    pub inbox_retention: Duration,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            inbox_retention: Duration::from_secs(DEFAULT_RETENTION_SECS.unsigned_abs()),
        }
    }
}

impl FanoutConfig {
    /// Reads `FANOUT_CONCURRENCY` (default 32), `FANOUT_MAX_ATTEMPTS` (default 3),
    /// `FANOUT_RETRY_BASE_MS` (default 50) and `INBOX_RETENTION_SECS` (default 86400) from the
    /// environment; unset, unparsable or zero values take the default.
    pub fn from_env() -> Self {
        fn positive(name: &str) -> Option<u64> {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|v| *v > 0)
        }
        let defaults = Self::default();
        Self {
            concurrency: positive("FANOUT_CONCURRENCY")
                .and_then(|v| usize::try_from(v).ok())
                .unwrap_or(defaults.concurrency),
            max_attempts: positive("FANOUT_MAX_ATTEMPTS")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(defaults.max_attempts),
            base_delay: positive("FANOUT_RETRY_BASE_MS")
                .map(Duration::from_millis)
                .unwrap_or(defaults.base_delay),
            max_delay: defaults.max_delay,
            inbox_retention: positive("INBOX_RETENTION_SECS")
                .map(Duration::from_secs)
                .unwrap_or(defaults.inbox_retention),
        }
    }

    /// The pause before retry number `retry` (1 for the first): uniformly random in
    /// `[0, min(max_delay, base_delay · 2^(retry-1))]`.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        crate::stream::full_jitter(self.base_delay, self.max_delay, retry)
    }
}

/// What one batch did. Every count is of this batch only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchMetrics {
    /// Stream records in the batch.
    pub records: u64,
    /// Events to send after coalescing.
    pub events: u64,
    /// Superseded location and ETA events that were not sent.
    pub coalesced: u64,
    /// Events newly kept in users' inboxes (a retried batch keeps nothing twice).
    pub inbox_kept: u64,
    /// Distinct rooms read (one `room_members` each).
    pub room_lookups: u64,
    /// What delivering the batch's events did.
    pub delivery: Deliveries,
    /// Records skipped because an order or live image does not parse.
    pub malformed: u64,
    /// Now minus the oldest record's `ApproximateCreationDateTime`, ms; `None` when no record
    /// carries one.
    pub stream_lag_ms: Option<i64>,
}

impl BatchMetrics {
    /// The metrics as one CloudWatch Embedded Metric Format JSON line (namespace
    /// `RndRealtime`, dimension `Function` = `stream-fanout`, timestamp `at`). Stream lag is
    /// left out when unknown.
    pub fn to_emf(&self, at: DateTime<Utc>) -> String {
        let counts = [
            ("Records", self.records),
            ("Events", self.events),
            ("Coalesced", self.coalesced),
            ("InboxKept", self.inbox_kept),
            ("RoomLookups", self.room_lookups),
            ("Deliveries", self.delivery.deliveries),
            ("Gone", self.delivery.gone),
            ("TokenExpired", self.delivery.expired),
            ("Retried", self.delivery.retried),
            ("Skipped", self.delivery.skipped),
            ("Failed", self.delivery.failed),
            ("Rejected", self.delivery.rejected),
            ("Malformed", self.malformed),
        ]
        .map(|(name, value)| (name.to_owned(), value));
        let lag: Vec<(&str, i64)> = self
            .stream_lag_ms
            .map(|lag| ("StreamLagMs", lag))
            .into_iter()
            .collect();
        crate::stream::emf_line(METRICS_FUNCTION, &counts, &lag, at)
    }
}

/// The answer to Lambda and what the batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    /// `batchItemFailures`: empty when everything was delivered (or refused for good), else
    /// the sequence number of the earliest record with an undelivered event.
    pub response: DynamoDbEventResponse,
    /// The counts.
    pub metrics: BatchMetrics,
}

/// One event to send, with the record it came from.
#[derive(Debug)]
struct Planned {
    /// Index of the record in the batch.
    record: usize,
    message: ServerMessage,
    rooms: Vec<Room>,
}

/// The events of one record, in the order clients should see them. A record of a row that is
/// not an order or live row produces nothing.
///
/// A record whose order or live image does not parse is logged (its ids only, never the item)
/// and produces nothing, and the batch does **not** fail for it: it would fail the same way on
/// every redelivery and block the shard until the record expires, holding back every later
/// change of every order on it. Returns `None` for such a record.
///
/// This is step 1 of [`fan_out`] for one record; public so the benchmarks time exactly it.
pub fn record_events(record: &EventRecord) -> Option<Vec<Outgoing>> {
    let change = crate::stream::record_change(record)?;
    Some(change.map_or_else(Vec::new, |c| derive_events(c.old.as_ref(), c.new.as_ref())))
}

/// Which events supersede each other: an order's locations, an order's ETAs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Supersedes {
    Location(OrderId),
    Eta(OrderId),
}

fn supersedes(message: &ServerMessage) -> Option<Supersedes> {
    match message {
        ServerMessage::LocationUpdate(d) => Some(Supersedes::Location(d.order_id.clone())),
        ServerMessage::EtaUpdate(d) => Some(Supersedes::Eta(d.order_id.clone())),
        _ => None,
    }
}

/// Keeps, of each order's location updates and of its ETA updates, only the one with the
/// highest `seq` (the later one on a tie); keeps every other event. Returns the kept events in
/// their order and how many were dropped.
fn coalesce(planned: Vec<Planned>) -> (Vec<Planned>, u64) {
    let mut newest: HashMap<Supersedes, (u64, usize)> = HashMap::new();
    for (i, p) in planned.iter().enumerate() {
        if let Some(key) = supersedes(&p.message) {
            let seq = p.message.seq().unwrap_or(0);
            let best = newest.entry(key).or_insert((seq, i));
            if seq >= best.0 {
                *best = (seq, i);
            }
        }
    }
    let before = planned.len();
    let kept: Vec<Planned> = planned
        .into_iter()
        .enumerate()
        .filter(|(i, p)| supersedes(&p.message).is_none_or(|key| newest[&key].1 == *i))
        .map(|(_, p)| p)
        .collect();
    let dropped = (before - kept.len()) as u64;
    (kept, dropped)
}

/// What became of one connection's events.
#[derive(Debug, Default)]
struct ConnectionReport {
    delivered: u64,
    retried: u64,
    rejected: u64,
    gone: bool,
    /// A post still failed after the last attempt: the connection's later events were skipped.
    skipped: bool,
    /// The events (indexes into the planned events) delivered to it.
    delivered_events: Vec<usize>,
}

/// What every connection's delivery shares: the ports, the settings, the time, the batch's
/// events with their payloads, and the rooms each connection was found in.
struct Delivery<'a, S: ?Sized> {
    store: &'a S,
    notifier: &'a dyn Notifier,
    config: &'a FanoutConfig,
    now: DateTime<Utc>,
    planned: &'a [Planned],
    payloads: &'a Payloads,
    found_in: &'a HashMap<&'a ConnectionId, Vec<&'a Room>>,
}

/// One event to one connection: the event (index into the planned events) and the payload it
/// is sent as (index into [`Payloads::texts`]).
#[derive(Debug, Clone, Copy)]
struct Post {
    event: usize,
    payload: usize,
}

impl<S: ConnectionStore + ?Sized> Delivery<'_, S> {
    /// Posts `posts` to `connection` in order. On Gone, closes the connection and stops; on a
    /// post that still fails after the last attempt, skips the connection's later events (it
    /// sees the gap in `seq` and resumes).
    async fn to(&self, connection: &ConnectionId, posts: &[Post]) -> ConnectionReport {
        let mut report = ConnectionReport::default();
        for &post in posts {
            let message = &self.planned[post.event].message;
            // Ids only: what the post's log lines and its PostToConnection call are about.
            let span = tracing::info_span!(
                "post",
                connection_id = %connection,
                order_id = message.order_id().map(tracing::field::display),
                event = message.event_name(),
                seq = message.seq(),
            );
            if !self
                .post(connection, post, &mut report)
                .instrument(span)
                .await
            {
                return report;
            }
        }
        report
    }

    /// Posts one event to `connection` with the retry policy, counting in `report`; `false`
    /// when the connection's later events are not to be posted (gone, or still failing).
    async fn post(
        &self,
        connection: &ConnectionId,
        Post { event, payload }: Post,
        report: &mut ConnectionReport,
    ) -> bool {
        let mut attempt = 1;
        loop {
            match self
                .notifier
                .post(connection, &self.payloads.texts[payload])
                .await
            {
                Ok(()) => {
                    report.delivered += 1;
                    report.delivered_events.push(event);
                    return true;
                }
                Err(NotifyError::Gone) => {
                    report.gone = true;
                    self.close_gone(connection).await;
                    return false;
                }
                Err(NotifyError::Rejected(e)) => {
                    report.rejected += 1;
                    tracing::warn!(
                        error = &*e as &dyn std::error::Error,
                        "post refused; not retried"
                    );
                    return true;
                }
                Err(e) if attempt < self.config.max_attempts.max(1) => {
                    report.retried += 1;
                    tracing::debug!(
                        attempt,
                        error = &e as &dyn std::error::Error,
                        "post failed; retrying"
                    );
                    tokio::time::sleep(self.config.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::warn!(
                        attempts = attempt,
                        error = &e as &dyn std::error::Error,
                        "post failed after the last attempt; connection skipped for this batch"
                    );
                    report.skipped = true;
                    return false;
                }
            }
        }
    }
}

impl<S: ConnectionStore + ?Sized> Delivery<'_, S> {
    /// Tells a connection past its token's expiry so (`token_expired`) and closes it. Nothing
    /// is retried: a connection still there meets the next event's attempt. One that has gone
    /// is removed as on a 410.
    async fn expire(&self, connection: &ConnectionId) {
        let told = self
            .notifier
            .post(connection, &ServerMessage::token_expired().to_json())
            .await;
        let closed = match told {
            Err(NotifyError::Gone) => Err(NotifyError::Gone),
            _ => self.notifier.disconnect(connection).await,
        };
        match closed {
            Ok(()) => {
                tracing::info!(connection_id = %connection, "token expired; connection closed")
            }
            Err(NotifyError::Gone) => self.close_gone(connection).await,
            Err(e) => tracing::warn!(
                connection_id = %connection,
                error = &e as &dyn std::error::Error,
                "token expired, but closing the connection failed"
            ),
        }
    }
}

/// The rooms each member was found in (open or past its token).
fn rooms_by_member<'a>(
    members: &'a HashMap<&'a Room, Result<RoomMembers, StoreError>>,
) -> HashMap<&'a ConnectionId, Vec<&'a Room>> {
    let mut found: HashMap<&ConnectionId, Vec<&Room>> = HashMap::new();
    for (room, result) in members {
        if let Ok(m) = result {
            for id in m.open.iter().chain(&m.token_expired) {
                found.entry(id).or_default().push(*room);
            }
        }
    }
    found
}

/// The members of the rooms read whose token has expired, each once.
fn expired_members<'a>(
    members: &'a HashMap<&Room, Result<RoomMembers, StoreError>>,
) -> Vec<&'a ConnectionId> {
    let mut seen = HashSet::new();
    members
        .values()
        .filter_map(|m| m.as_ref().ok())
        .flat_map(|m| &m.token_expired)
        .filter(|id| seen.insert(*id))
        .collect()
}

impl<S: ConnectionStore + ?Sized> Delivery<'_, S> {
    /// Closes a connection that answered 410 Gone: removes it and its memberships. When its
    /// row is already gone (a `$disconnect` that removed it but not every membership), removes
    /// the memberships this batch found it in, so they stop costing a 410 on every event. A
    /// store failure is logged only: the rows expire by TTL, and the next event to it meets
    /// the 410 again.
    async fn close_gone(&self, connection: &ConnectionId) {
        // Until `$connect` returns, API Gateway answers 410 for a connection its handler has
        // already stored (and made a member of its user and role rooms): that one is not gone
        // but still opening, and closing it would drop a client that is about to be connected.
        // What it missed is replayed by its `resume` and `sinceSeq`.
        if let Ok(Some(open)) = self.store.get_connection(connection, self.now).await
            && self.now - open.connected_at < CONNECTING_GRACE
        {
            tracing::debug!(connection_id = %connection, "410 from a connection still opening; kept");
            return;
        }
        match self.store.close_connection(connection, self.now).await {
            Ok(Some(_)) => tracing::info!(connection_id = %connection, "connection gone; removed"),
            Ok(None) => {
                let rooms = self.found_in.get(connection).map_or(&[][..], Vec::as_slice);
                for room in rooms {
                    if let Err(e) = self.store.leave_room(connection, room).await {
                        tracing::warn!(
                            connection_id = %connection,
                            %room,
                            error = &e as &dyn std::error::Error,
                            "could not remove the membership of a gone connection"
                        );
                    }
                }
                tracing::info!(
                    connection_id = %connection,
                    rooms = rooms.len(),
                    "connection gone and its row already removed; its memberships removed"
                );
            }
            Err(e) => tracing::warn!(
                connection_id = %connection,
                error = &e as &dyn std::error::Error,
                "connection gone, but removing it failed"
            ),
        }
    }
}

/// Fans one batch of orders-table stream records out to the WebSocket connections that should
/// see them (see the module documentation for the steps), at `now`.
///
/// Never fails as a whole: what could not be delivered is reported in the response's
/// `batchItemFailures` as the earliest failed record's sequence number (an empty identifier,
/// which makes Lambda retry the whole batch, if that record has none). Throttled and 5xx posts
/// are retried up to `config.max_attempts` first; a 410 Gone closes the connection (one older
/// than [`CONNECTING_GRACE`]) and is not a failure; a refused post (e.g. too large) is logged and is not a failure; a room that
/// cannot be read, or an inbox that cannot keep an event, fails the records of those events.
/// A connection whose posts still fail is skipped, never a failure: one slow socket must not
/// stall the shard.
///
/// Runs in a `fan-out` span (an X-Ray subsegment where the function is traced; its posts are
/// the `PostToConnection` subsegments under it).
#[tracing::instrument(name = "fan-out", skip_all, fields(records = event.records.len()))]
pub async fn fan_out<S: ConnectionStore + InboxStore + ?Sized>(
    store: &S,
    notifier: &dyn Notifier,
    config: &FanoutConfig,
    event: &Event,
    now: DateTime<Utc>,
) -> BatchOutcome {
    let records = &event.records;
    let mut metrics = BatchMetrics {
        records: records.len() as u64,
        stream_lag_ms: stream_lag_ms(records, now),
        ..BatchMetrics::default()
    };
    let mut failed_records: Vec<usize> = Vec::new();

    // 1. Derive, in stream order; 2. coalesce superseded locations and ETAs.
    let (planned, malformed) = derive(records);
    metrics.malformed = malformed;
    let (planned, coalesced) = coalesce(planned);
    metrics.coalesced = coalesced;
    metrics.events = planned.len() as u64;

    // 3.–5. Keep user-room events in their inboxes, read the rooms, post.
    let delivered = deliver(store, notifier, config, &planned, now).await;
    metrics.inbox_kept = delivered.inbox_kept;
    metrics.room_lookups = delivered.room_lookups;
    metrics.delivery = delivered.counts;
    failed_records.extend(delivered.failed.iter().map(|&event| planned[event].record));

    for (p, &connections) in planned.iter().zip(&delivered.per_event) {
        fanned_out(&p.message, connections);
    }

    // 6. Report the earliest failed record.
    let response = crate::stream::partial_failure(records, failed_records);
    tracing::info!(
        records = metrics.records,
        events = metrics.events,
        inbox_kept = metrics.inbox_kept,
        deliveries = metrics.delivery.deliveries,
        gone = metrics.delivery.gone,
        expired = metrics.delivery.expired,
        skipped = metrics.delivery.skipped,
        failed = metrics.delivery.failed,
        "fan-out batch done"
    );
    BatchOutcome { response, metrics }
}

/// Logs that `message` was delivered to `connections` connections, with its order id: the
/// fan-out's line on an order's path. Status changes, orders and assignments at `INFO`; the
/// frequent locations and ETAs at `DEBUG`.
fn fanned_out(message: &ServerMessage, connections: u64) {
    let order_id = message.order_id().map(tracing::field::display);
    let (event, seq) = (message.event_name(), message.seq());
    match message {
        ServerMessage::LocationUpdate(_) | ServerMessage::EtaUpdate(_) => {
            tracing::debug!(order_id, event, seq, connections, "event fanned out")
        }
        _ => tracing::info!(order_id, event, seq, connections, "event fanned out"),
    }
}

/// What steps 3–5 did with a list of events.
#[derive(Debug, Default)]
struct Delivered {
    inbox_kept: u64,
    room_lookups: u64,
    /// The counts (`failed`: of `failed` below).
    counts: Deliveries,
    /// Events (indexes into the planned events) our side could not handle: an inbox could not
    /// keep them or a room of theirs could not be read; one entry per such failure.
    failed: Vec<usize>,
    /// Per planned event, the connections it was delivered to.
    per_event: Vec<u64>,
}

/// Steps 3–5 for `planned`: keeps the user-room events in their users' inboxes, reads each
/// distinct room once, and posts each event once to each connection in any of its rooms, a
/// bounded number of connections at once, each connection's events in order.
async fn deliver<S: ConnectionStore + InboxStore + ?Sized>(
    store: &S,
    notifier: &dyn Notifier,
    config: &FanoutConfig,
    planned: &[Planned],
    now: DateTime<Utc>,
) -> Delivered {
    let mut delivered = Delivered {
        per_event: vec![0; planned.len()],
        ..Delivered::default()
    };

    // 3. Keep user-room events in their users' inboxes, before anything is posted.
    let kept = keep(store, config, planned, now).await;
    delivered.inbox_kept = kept.added;
    delivered.failed.extend(kept.failed.iter().copied());

    // 4. Read each distinct room once, and address each event once per connection.
    let members = read_rooms(store, config, planned, now).await;
    delivered.room_lookups = members.len() as u64;
    let payloads = Payloads::of(planned, &kept);
    let addressed = address(planned, &kept, &members, &payloads);
    delivered
        .failed
        .extend(addressed.unaddressed.iter().copied());

    // 5. Deliver, a bounded number of connections at once; close those past their token.
    let expired = expired_members(&members);
    delivered.counts.expired = expired.len() as u64;
    let found_in = rooms_by_member(&members);
    let delivery = Delivery {
        store,
        notifier,
        config,
        now,
        planned,
        payloads: &payloads,
        found_in: &found_in,
    };
    let posts: Vec<_> = addressed
        .connections
        .iter()
        .map(|id| delivery.to(id, &addressed.queues[id]))
        .collect();
    let reports: Vec<ConnectionReport> = stream::iter(posts)
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    let closings: Vec<_> = expired.into_iter().map(|id| delivery.expire(id)).collect();
    let _: Vec<()> = stream::iter(closings)
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    for report in &reports {
        let counts = &mut delivered.counts;
        counts.deliveries += report.delivered;
        counts.retried += report.retried;
        counts.rejected += report.rejected;
        counts.gone += u64::from(report.gone);
        counts.skipped += u64::from(report.skipped);
        for &event in &report.delivered_events {
            delivered.per_event[event] += 1;
        }
    }
    delivered.counts.failed = delivered.failed.len() as u64;
    delivered
}

/// How long after it opened a connection answering 410 Gone is taken for one still opening (API
/// Gateway's integration timeout, which bounds `$connect`, is 29 s), not for a gone one.
pub const CONNECTING_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// What delivering events did: the fan-out's batch ([`BatchMetrics::delivery`]), or an
/// [`announce`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deliveries {
    /// Posts that were accepted (one per event and connection).
    pub deliveries: u64,
    /// Connections that answered 410 Gone and were closed.
    pub gone: u64,
    /// Connections past their token's expiry, told `token_expired` and closed instead of
    /// being sent the events.
    pub expired: u64,
    /// Posts retried after throttling or a 5xx.
    pub retried: u64,
    /// Connections whose post still failed after the last attempt: skipped for the rest of
    /// the events (they catch up with `resume`), not a failure of the batch.
    pub skipped: u64,
    /// Events whose rooms could not be read or that could not be kept in an inbox: what makes
    /// a batch report a failure.
    pub failed: u64,
    /// Posts refused for good (payload too large, forbidden): logged, not retried.
    pub rejected: u64,
}

/// Delivers `events` to their rooms at once, as the fan-out delivers a record's events (the
/// same inbox keeping, room reads, retries and Gone handling, under `config`): what the
/// `driver:location` fast path posts right after its write, instead of waiting for the
/// stream. Never fails: what could not be delivered is counted and logged; nothing redelivers
/// it (a location is superseded by the next one).
pub async fn announce<S: ConnectionStore + InboxStore + ?Sized>(
    store: &S,
    notifier: &dyn Notifier,
    config: &FanoutConfig,
    events: Vec<Outgoing>,
    now: DateTime<Utc>,
) -> Deliveries {
    let planned: Vec<Planned> = events
        .into_iter()
        .map(|o| Planned {
            record: 0,
            message: o.message,
            rooms: o.rooms,
        })
        .collect();
    if planned.is_empty() {
        return Deliveries::default();
    }
    let announced = deliver(store, notifier, config, &planned, now).await.counts;
    if announced.failed > 0 {
        tracing::warn!(
            events = planned.len(),
            failed = announced.failed,
            "some announced events were not delivered everywhere"
        );
    }
    announced
}

/// Step 1: the events of every record, in stream order, and how many records were malformed.
fn derive(records: &[EventRecord]) -> (Vec<Planned>, u64) {
    let mut planned = Vec::new();
    let mut malformed = 0;
    for (index, record) in records.iter().enumerate() {
        match record_events(record) {
            Some(events) => planned.extend(events.into_iter().map(|o| Planned {
                record: index,
                message: o.message,
                rooms: o.rooms,
            })),
            None => malformed += 1,
        }
    }
    (planned, malformed)
}

/// What step 3 kept: the cursor of each event sent through a user's room, and the events that
/// could not be kept (not to be posted).
#[derive(Debug, Default)]
struct Kept {
    /// `(event, user)` → the user's cursor after the event.
    cursors: HashMap<(usize, UserId), String>,
    /// Events at least one inbox could not keep.
    failed: HashSet<usize>,
    /// Events newly kept.
    added: u64,
}

/// Step 3: appends each event addressed to a `user:{id}` room to that user's inbox (one call
/// per user, its events in stream order; users concurrently, bounded).
async fn keep<S: InboxStore + ?Sized>(
    store: &S,
    config: &FanoutConfig,
    planned: &[Planned],
    now: DateTime<Utc>,
) -> Kept {
    let mut by_user: HashMap<&UserId, Vec<usize>> = HashMap::new();
    for (index, p) in planned.iter().enumerate() {
        for room in &p.rooms {
            if let Room::User(user) = room {
                let events = by_user.entry(user).or_default();
                if events.last() != Some(&index) {
                    events.push(index);
                }
            }
        }
    }
    let retention = chrono::Duration::from_std(config.inbox_retention)
        .unwrap_or_else(|_| chrono::Duration::seconds(DEFAULT_RETENTION_SECS));
    let appends: Vec<_> = by_user
        .into_iter()
        .map(|(user, events)| async move {
            // A user's inbox is a party's: it keeps nothing only admins see.
            let kept: Vec<InboxEvent> = events
                .iter()
                .filter_map(|&i| InboxEvent::of(&planned[i].message.clone().without_admin_fields()))
                .collect();
            let result = store.append_to_inbox(user, &kept, now, retention).await;
            (user, events, result)
        })
        .collect();
    let results: Vec<_> = stream::iter(appends)
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    let mut kept = Kept::default();
    for (user, events, result) in results {
        match result {
            Ok(appended) => {
                kept.added += appended.added as u64;
                for (&event, position) in events.iter().zip(appended.positions) {
                    let cursor = Cursor {
                        epoch: appended.epoch,
                        position,
                    };
                    kept.cursors
                        .insert((event, user.clone()), cursor.encode(user));
                }
            }
            Err(e) => {
                tracing::error!(
                    user_id = %user,
                    events = events.len(),
                    error = &e as &dyn std::error::Error,
                    "could not keep events in the inbox; their records will be retried"
                );
                kept.failed.extend(events);
            }
        }
    }
    kept
}

/// Step 4: each distinct room of the events, read once (bounded concurrency).
async fn read_rooms<'a, S: ConnectionStore + ?Sized>(
    store: &'a S,
    config: &FanoutConfig,
    planned: &'a [Planned],
    now: DateTime<Utc>,
) -> HashMap<&'a Room, Result<RoomMembers, StoreError>> {
    let mut rooms: Vec<&Room> = Vec::new();
    let mut seen: HashSet<&Room> = HashSet::new();
    for room in planned.iter().flat_map(|p| &p.rooms) {
        if seen.insert(room) {
            rooms.push(room);
        }
    }
    // The futures are built before they are streamed (not by a closure inside the stream), so
    // the whole fan-out future stays `Send` for callers that spawn it.
    let lookups: Vec<_> = rooms
        .into_iter()
        .map(|room| members_of(store, room, now))
        .collect();
    let members: HashMap<&Room, Result<RoomMembers, StoreError>> = stream::iter(lookups)
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    for (room, result) in &members {
        if let Err(e) = result {
            tracing::error!(
                room = %room,
                error = e as &dyn std::error::Error,
                "could not read the room; the records of its events will be retried"
            );
        }
    }
    members
}

/// The texts posted: first each event as derived, with what only admins see (index = event;
/// sent through `role:admin`), then the copies without it for every other room of the events
/// that have some, then each copy sent through a user's room with that user's cursor (without
/// it too: user rooms are the parties').
#[derive(Debug)]
struct Payloads {
    texts: Vec<String>,
    /// event → index of its copy without what only admins see, for the events that differ.
    for_parties: HashMap<usize, usize>,
    /// `(event, user)` → index of the copy with the user's cursor.
    with_cursor: HashMap<(usize, UserId), usize>,
}

impl Payloads {
    fn of(planned: &[Planned], kept: &Kept) -> Payloads {
        let mut texts: Vec<String> = planned.iter().map(|p| p.message.to_json()).collect();
        let mut for_parties = HashMap::new();
        for (event, p) in planned.iter().enumerate() {
            if p.message.has_admin_fields() {
                for_parties.insert(event, texts.len());
                texts.push(p.message.clone().without_admin_fields().to_json());
            }
        }
        let mut with_cursor = HashMap::new();
        for ((event, user), cursor) in &kept.cursors {
            let copy = planned[*event]
                .message
                .clone()
                .without_admin_fields()
                .delivered(Some(cursor.clone()), false);
            with_cursor.insert((*event, user.clone()), texts.len());
            texts.push(copy.to_json());
        }
        Payloads {
            texts,
            for_parties,
            with_cursor,
        }
    }

    /// The copy of `event` a member of `room` gets, and how strongly it claims a connection
    /// in several of the event's rooms: a user room's (with its cursor) over `role:admin`'s
    /// (with what admins see) over any other's.
    fn through(&self, event: usize, room: &Room) -> (usize, u8) {
        match room {
            Room::User(user) => match self.with_cursor.get(&(event, user.clone())) {
                Some(&copy) => (copy, 2),
                None => (self.for_parties.get(&event).copied().unwrap_or(event), 0),
            },
            Room::Role(rnd_domain::Role::Admin) => (event, 1),
            _ => (self.for_parties.get(&event).copied().unwrap_or(event), 0),
        }
    }
}

/// Who gets what: each connection's posts in stream order, and the events whose rooms could
/// not be read.
#[derive(Debug, Default)]
struct Addressed<'a> {
    connections: Vec<&'a ConnectionId>,
    queues: HashMap<&'a ConnectionId, Vec<Post>>,
    unaddressed: Vec<usize>,
}

/// Each event once to each connection in any of its rooms — through its user room (with the
/// user's cursor) when it is in one — skipping events an inbox could not keep.
fn address<'a>(
    planned: &[Planned],
    kept: &Kept,
    members: &'a HashMap<&Room, Result<RoomMembers, StoreError>>,
    payloads: &Payloads,
) -> Addressed<'a> {
    let mut addressed = Addressed::default();
    for (event, p) in planned.iter().enumerate() {
        if kept.failed.contains(&event) {
            continue;
        }
        // Connection → (payload, its claim): the strongest claim wins.
        let mut audience: HashMap<&ConnectionId, (usize, u8)> = HashMap::new();
        let mut unaddressed = false;
        for room in &p.rooms {
            let Ok(RoomMembers { open: ids, .. }) = &members[room] else {
                unaddressed = true;
                continue;
            };
            let copy = payloads.through(event, room);
            for id in ids {
                let held = audience.entry(id).or_insert(copy);
                if copy.1 > held.1 {
                    *held = copy;
                }
            }
        }
        if unaddressed {
            addressed.unaddressed.push(event);
        }
        for (id, (payload, _)) in audience {
            let queue = addressed.queues.entry(id).or_insert_with(|| {
                addressed.connections.push(id);
                Vec::new()
            });
            queue.push(Post { event, payload });
        }
    }
    addressed
}

/// The members of `room` at `now`, with the room.
async fn members_of<'a, S: ConnectionStore + ?Sized>(
    store: &'a S,
    room: &'a Room,
    now: DateTime<Utc>,
) -> (&'a Room, Result<RoomMembers, StoreError>) {
    (room, store.room_members(room, now).await)
}

/// Now minus the oldest `ApproximateCreationDateTime` of the batch, ms (records without one,
/// i.e. at the epoch, are ignored).
fn stream_lag_ms(records: &[EventRecord], now: DateTime<Utc>) -> Option<i64> {
    records
        .iter()
        .map(|r| r.change.approximate_creation_date_time)
        .filter(|t| t.timestamp() > 0)
        .min()
        .map(|oldest| (now - oldest).num_milliseconds().max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let config = FanoutConfig {
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(120),
            ..FanoutConfig::default()
        };
        for _ in 0..200 {
            assert!(config.backoff(1) <= Duration::from_millis(50));
            assert!(config.backoff(2) <= Duration::from_millis(100));
            assert!(config.backoff(3) <= Duration::from_millis(120));
            assert!(config.backoff(40) <= Duration::from_millis(120));
        }
    }

    #[test]
    fn emf_line_declares_every_metric_it_carries() {
        let metrics = BatchMetrics {
            records: 3,
            events: 2,
            delivery: Deliveries {
                deliveries: 5,
                gone: 1,
                retried: 2,
                failed: 1,
                ..Deliveries::default()
            },
            stream_lag_ms: Some(1500),
            ..BatchMetrics::default()
        };
        let at = DateTime::from_timestamp_millis(1_773_489_600_000).unwrap();
        let line: serde_json::Value = serde_json::from_str(&metrics.to_emf(at)).unwrap();
        assert_eq!(line["_aws"]["Timestamp"], 1_773_489_600_000_i64);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "RndRealtime");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Function"]]));
        assert_eq!(line["Function"], "stream-fanout");
        for definition in directive["Metrics"].as_array().unwrap() {
            let name = definition["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} is declared but not set");
        }
        assert_eq!(line["Records"], 3);
        assert_eq!(line["Deliveries"], 5);
        assert_eq!(line["Gone"], 1);
        assert_eq!(line["Retried"], 2);
        assert_eq!(line["Failed"], 1);
        assert_eq!(line["StreamLagMs"], 1500);
    }
}
