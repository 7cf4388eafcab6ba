//! A store adapter that meters DynamoDB work: [`MeteredStore`] wraps the store the handlers use,
//! forwards every port call, and records the DynamoDB requests and read/write request units
//! `DynamoStore` (`shared/store-dynamodb`) would consume for the same call, whichever store
//! actually runs (embedded SQLite by default).
//!
//! The mapping follows DynamoStore's actual requests (see `docs/table-design.md`) and
//! DynamoDB's on-demand metering:
//! - write: 1 WRU per started KB of the item (the larger of before and after for an update;
//!   the deleted item for a delete); a `TransactWriteItems` costs 2 WRU per started KB of each
//!   item; a failed conditional write costs the same as a successful one; each GSI whose key
//!   attributes are written costs 1 WRU more (the indexes are KEYS_ONLY, so entries are small),
//!   2 when the key changes (delete + put);
//! - read: 1 RRU per started 4 KB for a strongly consistent read, ½ for an eventually
//!   consistent one; a `Query` sums the sizes of the items it reads (projection does not
//!   reduce it) before rounding, and reading nothing still costs one increment.
//!
//! Item sizes are those of the very items DynamoStore writes, built by its own item builders and
//! sized by DynamoDB's rules (`rnd_store_dynamodb::items`) where the call carries them: order
//! and live rows, profiles, connection, membership and session rows. Where it
//! does not — a connection row read or updated by id (`get_connection`, `rooms_of`,
//! `join_room`, `leave_room`) and the user id of each member a room query returns — the size
//! is bounded instead: a connection row is a few hundred bytes, under 1 KB unless its user agent
//! is very long, so it is counted as 1 WRU / 1 RRU; a member's user id is counted as
//! [`ASSUMED_USER_ID_BYTES`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rnd_domain::OrderRecord;
use rnd_domain::device::{Device, DeviceId, DeviceRegistration, Registered};
use rnd_domain::ids::{ConnectionId, OrderId, UserId};
use rnd_domain::inbox::{Appended, EventKey, InboxEvent, InboxPage};
use rnd_domain::limits::{Allowance, Limit};
use rnd_domain::live::{LiveState, LocationOutcome, LocationWrite};
use rnd_domain::order::{OrderStatus, OrderView};
use rnd_domain::ports::{
    ClosedConnection, Connection, ConnectionStore, DeviceStore, IdempotencyStore, InboxStore,
    KeptAnswer, KeyClaim, LiveLocationStore, OrderPage, OrderQuery, OrderStore, PresenceStore,
    ProfileStore, PushLedger, RateLimitStore, RoomMembers, Store, StoreError,
};
use rnd_domain::presence::{ConnectionMinute, Presence};
use rnd_domain::profile::Profile;
use rnd_domain::rooms::Room;

use rnd_store_dynamodb::items::{self, Item};

use crate::metrics::{DynamoUnits, Metrics};

/// A write request unit covers this many bytes of an item.
const WRITE_UNIT_BYTES: usize = 1024;
/// A read request unit covers this many bytes (strongly consistent).
const READ_UNIT_BYTES: usize = 4096;
/// Most items one `BatchWriteItem` takes.
const BATCH_WRITE_MAX: usize = 25;
/// A `Query` returns at most 1 MB per page.
const QUERY_PAGE_BYTES: usize = 1024 * 1024;
/// The size counted for a room member's user id, which the member list does not carry.
pub(crate) const ASSUMED_USER_ID_BYTES: usize = 36;
/// Bytes of one KEYS_ONLY index entry of an order (table keys + index keys), for listings.
const INDEX_ENTRY_BYTES: usize = 160;
/// Inbox events DynamoStore appends in one transaction.
const INBOX_EVENTS_PER_TRANSACTION: usize = 32;

/// WRU of a standard write of an item of `bytes`.
pub(crate) fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// RRU of reading `bytes` in one request.
pub(crate) fn read_units(bytes: usize, consistent: bool) -> f64 {
    let increments = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent {
        increments
    } else {
        increments / 2.0
    }
}

/// The metered size of an item built by `DynamoStore`'s own item builders.
fn sized(item: Result<Item, StoreError>) -> Result<usize, StoreError> {
    item.map(|i| items::size(&i))
}

/// The size of an order or live row as DynamoStore writes it.
fn record_bytes(record: &OrderRecord) -> Result<usize, StoreError> {
    items::order_record_size(record)
}

/// The size of a profile row as DynamoStore writes it.
fn profile_bytes(profile: &Profile) -> Result<usize, StoreError> {
    sized(items::profile(profile))
}

/// A user id of [`ASSUMED_USER_ID_BYTES`], for rows whose user the call does not carry.
fn assumed_user() -> UserId {
    UserId::parse("u".repeat(ASSUMED_USER_ID_BYTES)).expect("a user id of letters is valid")
}

/// The size of the membership row of `connection` in `room` (living until `ttl`, its token
/// expiring then too, opened then in ms: numbers of the same width).
fn membership_bytes(
    connection: &ConnectionId,
    user: &UserId,
    room: &Room,
    ttl: i64,
) -> Result<usize, StoreError> {
    // The opening in epoch ms has three digits more than the TTL in epoch s.
    items::Membership::new(connection, user, room, ttl, ttl, ttl * 1000).size()
}

/// The GSI key attributes (`gsiNpk`) an order row carries, by name and value.
fn index_keys(item: &Item) -> BTreeSet<(String, String)> {
    item.iter()
        .filter(|(k, _)| k.starts_with("gsi") && k.ends_with("pk"))
        .map(|(k, v)| (k.clone(), v.as_s().cloned().unwrap_or_default()))
        .collect()
}

/// WRU of the index entries written when an order row goes from `before` to `after`: 1 per
/// index entry added or removed (a changed key is both).
fn index_write_units(before: Option<&Item>, after: &Item) -> f64 {
    let old = before.map(index_keys).unwrap_or_default();
    let new = index_keys(after);
    (old.symmetric_difference(&new).count()) as f64
}

fn units(requests: u64, read_units: f64, write_units: f64) -> DynamoUnits {
    DynamoUnits {
        calls: 1,
        requests,
        read_units,
        write_units,
    }
}

/// `open_connection`: one `TransactWriteItems` of the connection row and one membership row
/// per distinct room.
pub(crate) fn open_connection_units(
    c: &Connection,
    rooms: &[Room],
) -> Result<DynamoUnits, StoreError> {
    let connection = sized(items::connection(c, rooms))?;
    let ttl = c.expires_at.timestamp();
    let mut memberships = 0.0;
    for room in rooms.iter().collect::<BTreeSet<_>>() {
        memberships += write_units(membership_bytes(&c.connection_id, &c.user_id, room, ttl)?);
    }
    let mut counted = units(1, 0.0, 2.0 * (write_units(connection) + memberships));
    add_counting(&mut counted, 1);
    Ok(counted)
}

/// Bytes assumed for one minute-counter item of connection analytics (a few dozen counters).
const ASSUMED_MINUTE_ITEM_BYTES: usize = 256;

/// What counting an opening or closing adds ([`rnd_store_dynamodb`]'s `presence`): an `ADD`
/// `UpdateItem` per minute it touches (`minutes`: 1 for an opening, 1 or 2 for a closing) and
/// one `UpdateItem` of the user's last-seen row, each under 1 KB.
fn add_counting(units: &mut DynamoUnits, minutes: u64) {
    units.requests += minutes + 1;
    units.write_units += (minutes + 1) as f64;
}

/// `presence`: a consistent `Query` of the user's room and a consistent `GetItem` of their
/// last-seen row, each under 4 KB.
pub(crate) fn presence_units() -> DynamoUnits {
    units(2, 2.0, 0.0)
}

/// `connection_minutes`: one eventually consistent `Query` per day and shard, each reading at
/// most that day's minutes of [`ASSUMED_MINUTE_ITEM_BYTES`] (the shards' share is unknown, so
/// every shard is counted as holding every minute counted).
pub(crate) fn connection_minutes_units(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    minutes: usize,
) -> DynamoUnits {
    let days = (to.date_naive() - from.date_naive()).num_days().max(0) as u64 + 1;
    let queries = days * u64::from(rnd_domain::presence::STATS_SHARDS);
    let per_query = minutes.div_ceil(days as usize) * ASSUMED_MINUTE_ITEM_BYTES;
    units(queries, queries as f64 * read_units(per_query, false), 0.0)
}

/// `close_connection`: a consistent `GetItem` of the connection row; when it was open, a
/// `BatchWriteItem` deleting its memberships (25 per request) and a `TransactWriteItems`
/// deleting the connection row and putting the session row.
pub(crate) fn close_connection_units(
    closed: Option<&ClosedConnection>,
) -> Result<DynamoUnits, StoreError> {
    let Some(closed) = closed else {
        return Ok(units(1, read_units(0, true), 0.0));
    };
    let c = &closed.connection;
    let row = sized(items::connection(c, &closed.rooms))?;
    let ttl = c.expires_at.timestamp();
    let mut memberships = 0.0;
    for room in &closed.rooms {
        memberships += write_units(membership_bytes(&c.connection_id, &c.user_id, room, ttl)?);
    }
    let batches = closed.rooms.len().div_ceil(BATCH_WRITE_MAX) as u64;
    let session = sized(items::session(closed))?;
    let transaction = 2.0 * (write_units(row) + write_units(session));
    let mut counted = units(
        1 + batches + 1,
        read_units(row, true),
        memberships + transaction,
    );
    let counted_minutes = if c.is_live_at(closed.disconnected_at) {
        let opened = rnd_domain::presence::minute_of(c.connected_at);
        let closed_minute = rnd_domain::presence::minute_of(closed.disconnected_at);
        if opened == closed_minute { 1 } else { 2 }
    } else {
        0
    };
    if counted_minutes > 0 {
        add_counting(&mut counted, counted_minutes);
    }
    Ok(counted)
}

/// The size of `member`'s row in `room` as a room query reads it (of the assumed user, living
/// until `u32::MAX`), remembered by what it depends on. An item's size depends on its strings'
/// lengths only, so these rows, in one kind of room, differ only by the lengths of the room's
/// id and of the connection's: one row is sized per such shape (sizing the rows of every room
/// read was a tenth of a location update's delivery).
fn membership_size(member: &ConnectionId, room: &Room) -> Result<usize, StoreError> {
    /// More shapes than this are forgotten at once (ids have a bounded length, so it is rare).
    const REMEMBERED: usize = 4_096;
    thread_local! {
        static SIZES: std::cell::RefCell<HashMap<(u8, usize, usize), usize>> =
            std::cell::RefCell::new(HashMap::new());
    }
    let room_shape = match room {
        Room::User(id) => (0, id.as_str().len()),
        Room::Role(role) => (1, role.as_str().len()),
        Room::Order(id) => (2, id.as_str().len()),
    };
    let shape = (room_shape.0, room_shape.1, member.as_str().len());
    if let Some(size) = SIZES.with_borrow(|sizes| sizes.get(&shape).copied()) {
        return Ok(size);
    }
    let size = membership_bytes(member, &assumed_user(), room, i64::from(u32::MAX))?;
    SIZES.with_borrow_mut(|sizes| {
        if sizes.len() >= REMEMBERED {
            sizes.clear();
        }
        sizes.insert(shape, size);
    });
    Ok(size)
}

/// `room_members`: an eventually consistent `Query` of the room's partition, paged by 1 MB,
/// reading every membership row (the projection does not reduce the units).
pub(crate) fn room_members_units(
    room: &Room,
    members: &[ConnectionId],
) -> Result<DynamoUnits, StoreError> {
    let mut pages: Vec<usize> = vec![0];
    for member in members {
        let size = membership_size(member, room)?;
        let last = pages.len() - 1;
        if pages[last] + size > QUERY_PAGE_BYTES {
            pages.push(size);
        } else {
            pages[last] += size;
        }
    }
    let rru = pages.iter().map(|bytes| read_units(*bytes, false)).sum();
    Ok(units(pages.len() as u64, rru, 0.0))
}

/// `record_location`: one conditional `UpdateItem` of the live row, whose size is the row
/// with this write applied (the status counted as the longest driver phase, the mirrored pickup
/// and drop-off as long as the location's point); refused writes cost the same.
pub(crate) fn record_location_units(
    write: &LocationWrite,
    outcome: &LocationOutcome,
) -> Result<DynamoUnits, StoreError> {
    let seq = match outcome {
        LocationOutcome::Accepted { seq } => *seq,
        _ => 0,
    };
    let live = LiveState {
        order_id: write.order_id.clone(),
        seq,
        status: OrderStatus::AssignedToDriver,
        driver_id: Some(write.driver_id.clone()),
        location: Some(write.location.clone()),
        location_accepted_at_ms: Some(write.now_ms),
        eta: write.eta,
        route: write.route.clone(),
        observed_speed_mps: write.observed_speed_mps,
        pickup: Some(write.location.point()),
        dropoff: Some(write.location.point()),
        announced_seq: write.announced.then_some(seq),
        updated_at: DateTime::from_timestamp_millis(write.now_ms).unwrap_or_default(),
    };
    let bytes = live_row_billed_bytes(&live, WRITE_UNIT_BYTES)?;
    Ok(units(1, 0.0, write_units(bytes)))
}

/// The bytes to bill `live`'s row by, in units of `unit_bytes`: a bound of its size when that
/// fits in one unit (the row is then billed one unit whatever its exact size), else its size.
/// Sizing exactly finds every number's significant digits (a float's shortest form): the live
/// row holds about ten and is metered twice per location update, which was 4 % of the stack's
/// CPU under `make bench-knee`.
fn live_row_billed_bytes(live: &LiveState, unit_bytes: usize) -> Result<usize, StoreError> {
    let bound = items::live_row_size_at_most(live)?;
    if bound <= unit_bytes {
        Ok(bound)
    } else {
        items::live_row_size(live)
    }
}

/// `get_order`: a consistent `Query` of the order's partition (order row + live row).
pub(crate) fn get_order_units(view: Option<&OrderView>) -> Result<DynamoUnits, StoreError> {
    let bytes = match view {
        Some(v) => {
            record_bytes(&OrderRecord::Order(v.order.clone()))?
                + record_bytes(&OrderRecord::Live(v.live.clone()))?
        }
        None => 0,
    };
    Ok(units(1, read_units(bytes, true), 0.0))
}

/// `create_order`: one `TransactWriteItems` putting the order and live rows, plus the order's
/// index entries.
pub(crate) fn create_order_units(view: &OrderView) -> Result<DynamoUnits, StoreError> {
    let order = items::order_record(&OrderRecord::Order(view.order.clone()))?;
    let live = record_bytes(&OrderRecord::Live(view.live.clone()))?;
    let wru = 2.0 * (write_units(items::size(&order)) + write_units(live))
        + index_write_units(None, &order);
    Ok(units(1, 0.0, wru))
}

/// `commit_transition`: one `TransactWriteItems` putting both rows (each the larger of before
/// and after), plus index entries whose keys changed (assigning a driver adds one).
pub(crate) fn commit_transition_units(
    previous: &OrderView,
    next: &OrderView,
) -> Result<DynamoUnits, StoreError> {
    let image = |r: OrderRecord| items::order_record(&r);
    let (old_order, new_order) = (
        image(OrderRecord::Order(previous.order.clone()))?,
        image(OrderRecord::Order(next.order.clone()))?,
    );
    let (old_live, new_live) = (
        record_bytes(&OrderRecord::Live(previous.live.clone()))?,
        record_bytes(&OrderRecord::Live(next.live.clone()))?,
    );
    let wru = 2.0
        * (write_units(items::size(&old_order).max(items::size(&new_order)))
            + write_units(old_live.max(new_live)))
        + index_write_units(Some(&old_order), &new_order);
    Ok(units(1, 0.0, wru))
}

/// `list_orders`: an eventually consistent `Query` of an index (KEYS_ONLY entries), then a
/// consistent `BatchGetItem` of the page's orders. A month-by-month admin listing may query
/// more than once; one query is counted.
pub(crate) fn list_orders_units(page: &OrderPage) -> Result<DynamoUnits, StoreError> {
    let keys = read_units((page.orders.len() + 1) * INDEX_ENTRY_BYTES, false);
    let mut rru = keys;
    for order in &page.orders {
        rru += read_units(record_bytes(&OrderRecord::Order(order.clone()))?, true);
    }
    let requests = if page.orders.is_empty() { 1 } else { 2 };
    Ok(units(requests, rru, 0.0))
}

/// `append_to_inbox`: a consistent `BatchGetItem` of the head and each event's key item (1 RRU
/// each: they are small), then, when something is new, a `TransactWriteItems` of the head and
/// each new event's key and event items (chunks of 32 events).
pub(crate) fn append_inbox_units(
    user: &UserId,
    events: &[InboxEvent],
    appended: &Appended,
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> Result<DynamoUnits, StoreError> {
    let chunks = events.len().div_ceil(INBOX_EVENTS_PER_TRANSACTION).max(1) as u64;
    let reads = (chunks + events.len() as u64) as f64;
    if appended.added == 0 {
        return Ok(units(chunks, reads, 0.0));
    }
    let ttl = (now + retention).timestamp();
    let mut new: Vec<(u64, &InboxEvent)> = appended.positions.iter().copied().zip(events).collect();
    new.sort_by_key(|(position, _)| std::cmp::Reverse(*position));
    new.dedup_by_key(|(position, _)| *position);
    new.truncate(appended.added);
    let head = appended.positions.iter().copied().max().unwrap_or(0);
    let mut wru = write_units(items::size(&items::inbox_head(user, appended.epoch, head)));
    for (position, event) in new {
        wru += write_units(items::size(&items::inbox_key(
            user, &event.key, position, ttl,
        )));
        wru += write_units(items::size(&items::inbox_event(
            user,
            event,
            appended.epoch,
            position,
            ttl,
        )?));
    }
    Ok(units(2 * chunks, reads, 2.0 * wru))
}

/// `read_inbox`: a consistent `GetItem` of the head, then (when there is something after the
/// position) a consistent `Query` of the event items.
pub(crate) fn read_inbox_units(user: &UserId, page: &InboxPage) -> Result<DynamoUnits, StoreError> {
    if page.events.is_empty() {
        return Ok(units(1, 1.0, 0.0));
    }
    let mut bytes = 0;
    for event in &page.events {
        let kept = InboxEvent {
            key: EventKey::of(&event.message).unwrap_or_else(|| EventKey::from_stored("")),
            message: event.message.clone(),
        };
        bytes += items::size(&items::inbox_event(
            user,
            &kept,
            page.epoch,
            event.position,
            0,
        )?);
    }
    Ok(units(2, 1.0 + read_units(bytes, true), 0.0))
}

/// The store the handlers use, metered into [`Metrics`].
pub(crate) struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for MeteredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredStore").finish_non_exhaustive()
    }
}

impl MeteredStore {
    /// Meters `inner` into `metrics`.
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn record(&self, operation: &'static str, units: DynamoUnits) {
        self.metrics.dynamodb(operation, units);
    }

    /// Records a size computation that failed as a bare request, so no call goes uncounted.
    fn record_or_request(
        &self,
        operation: &'static str,
        units: Result<DynamoUnits, StoreError>,
        fallback: DynamoUnits,
    ) {
        match units {
            Ok(u) => self.record(operation, u),
            Err(e) => {
                tracing::warn!(
                    operation,
                    error = %rnd_domain::error::Chain(&e),
                    "could not size the item; counting the minimum"
                );
                self.record(operation, fallback);
            }
        }
    }
}

#[async_trait]
impl ConnectionStore for MeteredStore {
    async fn open_connection(
        &self,
        connection: &Connection,
        rooms: &[Room],
    ) -> Result<(), StoreError> {
        let result = self.inner.open_connection(connection, rooms).await;
        self.record_or_request(
            "open_connection",
            open_connection_units(connection, rooms),
            units(1, 0.0, 0.0),
        );
        result
    }

    /// A consistent `GetItem` of the connection row (under 4 KB: 1 RRU).
    async fn get_connection(
        &self,
        id: &ConnectionId,
        now: DateTime<Utc>,
    ) -> Result<Option<Connection>, StoreError> {
        let result = self.inner.get_connection(id, now).await;
        self.record("get_connection", units(1, 1.0, 0.0));
        result
    }

    /// A consistent `GetItem` of the connection row (1 RRU), then a `TransactWriteItems`
    /// updating it (under 1 KB: 2 WRU) and putting the membership row, unless it was gone.
    async fn join_room(
        &self,
        id: &ConnectionId,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self.inner.join_room(id, room, now).await;
        let counted = match &result {
            Err(StoreError::ConnectionGone) => Ok(units(1, 1.0, 0.0)),
            _ => membership_bytes(id, &assumed_user(), room, i64::from(u32::MAX))
                .map(|bytes| units(2, 1.0, 2.0 * (1.0 + write_units(bytes)))),
        };
        self.record_or_request("join_room", counted, units(2, 1.0, 0.0));
        result
    }

    /// A `TransactWriteItems` deleting the membership row and updating the connection row;
    /// when it was not a member, the cancelled transaction and one clean-up write.
    async fn leave_room(&self, id: &ConnectionId, room: &Room) -> Result<bool, StoreError> {
        let result = self.inner.leave_room(id, room).await;
        let counted = match &result {
            Ok(true) => units(1, 0.0, 4.0),
            _ => units(2, 0.0, 5.0),
        };
        self.record("leave_room", counted);
        result
    }

    async fn room_members(
        &self,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<RoomMembers, StoreError> {
        let result = self.inner.room_members(room, now).await;
        // Every row read counts, whether its token is valid or not.
        let members: Vec<ConnectionId> = result
            .as_ref()
            .map(|m| m.open.iter().chain(&m.token_expired).cloned().collect())
            .unwrap_or_default();
        self.record_or_request(
            "room_members",
            room_members_units(room, &members),
            units(1, 0.5, 0.0),
        );
        result
    }

    /// A consistent `GetItem` of the connection row (1 RRU).
    async fn rooms_of(&self, id: &ConnectionId) -> Result<Vec<Room>, StoreError> {
        let result = self.inner.rooms_of(id).await;
        self.record("rooms_of", units(1, 1.0, 0.0));
        result
    }

    async fn close_connection(
        &self,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<Option<ClosedConnection>, StoreError> {
        let result = self.inner.close_connection(id, at).await;
        let closed = result.as_ref().ok().and_then(Option::as_ref);
        self.record_or_request(
            "close_connection",
            close_connection_units(closed),
            units(1, 1.0, 0.0),
        );
        result
    }
}

#[async_trait]
impl PresenceStore for MeteredStore {
    async fn presence(&self, user: &UserId, now: DateTime<Utc>) -> Result<Presence, StoreError> {
        let result = self.inner.presence(user, now).await;
        self.record("presence", presence_units());
        result
    }

    async fn connection_minutes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ConnectionMinute>, StoreError> {
        let result = self.inner.connection_minutes(from, to).await;
        let minutes = result.as_ref().map_or(0, Vec::len);
        self.record(
            "connection_minutes",
            connection_minutes_units(from, to, minutes),
        );
        result
    }
}

#[async_trait]
impl OrderStore for MeteredStore {
    async fn create_order(&self, view: &OrderView) -> Result<(), StoreError> {
        let result = self.inner.create_order(view).await;
        self.record_or_request("create_order", create_order_units(view), units(1, 0.0, 4.0));
        result
    }

    async fn get_order(&self, id: &OrderId) -> Result<Option<OrderView>, StoreError> {
        let result = self.inner.get_order(id).await;
        let view = result.as_ref().ok().and_then(Option::as_ref);
        self.record_or_request("get_order", get_order_units(view), units(1, 1.0, 0.0));
        result
    }

    async fn commit_transition(
        &self,
        previous: &OrderView,
        next: &OrderView,
    ) -> Result<(), StoreError> {
        let result = self.inner.commit_transition(previous, next).await;
        self.record_or_request(
            "commit_transition",
            commit_transition_units(previous, next),
            units(1, 0.0, 4.0),
        );
        result
    }

    /// An `UpdateItem` of the small counter row (1 WRU).
    async fn next_order_number(&self, day: NaiveDate) -> Result<u32, StoreError> {
        let result = self.inner.next_order_number(day).await;
        self.record("next_order_number", units(1, 0.0, 1.0));
        result
    }

    async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, StoreError> {
        let result = self.inner.list_orders(query).await;
        let counted = match &result {
            Ok(page) => list_orders_units(page),
            Err(_) => Ok(units(1, 0.5, 0.0)),
        };
        self.record_or_request("list_orders", counted, units(1, 0.5, 0.0));
        result
    }
}

#[async_trait]
impl LiveLocationStore for MeteredStore {
    async fn record_location(&self, write: &LocationWrite) -> Result<LocationOutcome, StoreError> {
        let result = self.inner.record_location(write).await;
        let counted = match &result {
            Ok(outcome) => record_location_units(write, outcome),
            Err(_) => Ok(units(1, 0.0, 1.0)),
        };
        self.record_or_request("record_location", counted, units(1, 0.0, 1.0));
        result
    }

    /// An eventually consistent `GetItem` of the live row.
    async fn get_live(&self, order: &OrderId) -> Result<Option<LiveState>, StoreError> {
        let result = self.inner.get_live(order).await;
        let counted = match &result {
            Ok(Some(live)) => live_row_billed_bytes(live, READ_UNIT_BYTES)
                .map(|bytes| units(1, read_units(bytes, false), 0.0)),
            _ => Ok(units(1, read_units(0, false), 0.0)),
        };
        self.record_or_request("get_live", counted, units(1, 0.5, 0.0));
        result
    }
}

#[async_trait]
impl ProfileStore for MeteredStore {
    /// A consistent `GetItem` of the profile row.
    async fn get_profile(&self, user: &UserId) -> Result<Option<Profile>, StoreError> {
        let result = self.inner.get_profile(user).await;
        let bytes = match &result {
            Ok(Some(p)) => profile_bytes(p).unwrap_or(0),
            _ => 0,
        };
        self.record("get_profile", units(1, read_units(bytes, true), 0.0));
        result
    }

    /// A `PutItem` of the profile row.
    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        let result = self.inner.put_profile(profile).await;
        let counted = profile_bytes(profile).map(|b| units(1, 0.0, write_units(b)));
        self.record_or_request("put_profile", counted, units(1, 0.0, 1.0));
        result
    }
}

#[async_trait]
impl InboxStore for MeteredStore {
    async fn append_to_inbox(
        &self,
        user: &UserId,
        events: &[InboxEvent],
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<Appended, StoreError> {
        let result = self
            .inner
            .append_to_inbox(user, events, now, retention)
            .await;
        let minimum = units(1, 1.0, 0.0);
        match &result {
            Ok(appended) => self.record_or_request(
                "append_to_inbox",
                append_inbox_units(user, events, appended, now, retention),
                minimum,
            ),
            Err(_) => self.record("append_to_inbox", minimum),
        }
        result
    }

    async fn read_inbox(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<InboxPage, StoreError> {
        let result = self.inner.read_inbox(user, after, limit, now).await;
        let minimum = units(1, 1.0, 0.0);
        match &result {
            Ok(page) => self.record_or_request("read_inbox", read_inbox_units(user, page), minimum),
            Err(_) => self.record("read_inbox", minimum),
        }
        result
    }
}

/// `register_device`: a consistent `GetItem` of the token's item (and of the device, when the
/// same user registers again), a `TransactWriteItems` of the token and device items (and the
/// previous holder's device deleted), a consistent `Query` of the user's devices, and two
/// `DeleteItem`s per device dropped.
fn register_device_units(registered: &Registered) -> Result<DynamoUnits, StoreError> {
    let device = items::size(&items::device(&registered.device)?);
    let token = items::size(&items::device_token(&registered.device));
    let reads = if registered.created { 1.0 } else { 2.0 };
    let moved = if registered.created { 1.0 } else { 0.0 };
    let transaction = 2.0 * (write_units(device) + write_units(token) + moved);
    let dropped = registered.dropped.len() as f64;
    let query = read_units(device * (registered.dropped.len() + 1), true);
    let requests = 3 + u64::from(!registered.created) + 2 * registered.dropped.len() as u64;
    Ok(units(requests, reads + query, transaction + 2.0 * dropped))
}

#[async_trait]
impl DeviceStore for MeteredStore {
    async fn register_device(
        &self,
        registration: &DeviceRegistration,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError> {
        let result = self.inner.register_device(registration, now).await;
        let minimum = units(1, 1.0, 0.0);
        match &result {
            Ok(registered) => self.record_or_request(
                "register_device",
                register_device_units(registered),
                minimum,
            ),
            Err(_) => self.record("register_device", minimum),
        }
        result
    }

    /// A consistent `Query` of the user's device items.
    async fn devices_of(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Device>, StoreError> {
        let result = self.inner.devices_of(user, now).await;
        let bytes = match &result {
            Ok(devices) => devices
                .iter()
                .map(|d| items::device(d).map(|i| items::size(&i)).unwrap_or(0))
                .sum(),
            Err(_) => 0,
        };
        self.record("devices_of", units(1, read_units(bytes, true), 0.0));
        result
    }

    /// A consistent `GetItem` of the device, then (when it is there) two `DeleteItem`s.
    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> Result<bool, StoreError> {
        let result = self.inner.remove_device(user, device).await;
        let removed = matches!(result, Ok(true));
        let deletes = if removed { 2.0 } else { 0.0 };
        self.record(
            "remove_device",
            units(1 + if removed { 2 } else { 0 }, 1.0, deletes),
        );
        result
    }
}

#[async_trait]
impl PushLedger for MeteredStore {
    /// A consistent `GetItem`.
    async fn was_pushed(
        &self,
        key: &str,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self.inner.was_pushed(key, user, now).await;
        self.record("was_pushed", units(1, 1.0, 0.0));
        result
    }

    /// A conditional `PutItem` of a small item (refused or not, 1 WRU).
    async fn record_pushed(
        &self,
        key: &str,
        user: &UserId,
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let result = self.inner.record_pushed(key, user, now, retention).await;
        self.record("record_pushed", units(1, 0.0, 1.0));
        result
    }
}

#[async_trait]
impl RateLimitStore for MeteredStore {
    /// A conditional `UpdateItem` of a small item (1 WRU, refused or not).
    async fn take(
        &self,
        limit: Limit,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<Allowance, StoreError> {
        let result = self.inner.take(limit, subject, now).await;
        self.record("take", units(1, 0.0, 1.0));
        result
    }
}

#[async_trait]
impl IdempotencyStore for MeteredStore {
    /// A conditional `PutItem` of a small item (1 WRU, refused or not), then, when a claim
    /// holds the key, a consistent `GetItem` (its answer: 1 RRU per 4 KB).
    async fn claim_idempotency_key(
        &self,
        user: &UserId,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError> {
        let result = self
            .inner
            .claim_idempotency_key(user, key, fingerprint, now, expires_at)
            .await;
        let counted = match &result {
            Ok(KeyClaim::Held { answer, .. }) => {
                let bytes = answer.as_ref().map_or(0, |a| a.body.len());
                units(2, read_units(bytes, true), 1.0)
            }
            _ => units(1, 0.0, 1.0),
        };
        self.record("claim_idempotency_key", counted);
        result
    }

    /// An `UpdateItem` of the claim with the answer (1 WRU per KB).
    async fn keep_idempotent_answer(
        &self,
        user: &UserId,
        key: &str,
        answer: &KeptAnswer,
    ) -> Result<(), StoreError> {
        let result = self.inner.keep_idempotent_answer(user, key, answer).await;
        self.record(
            "keep_idempotent_answer",
            units(1, 0.0, write_units(answer.body.len() + 100)),
        );
        result
    }

    /// A `DeleteItem` (1 WRU).
    async fn release_idempotency_key(&self, user: &UserId, key: &str) -> Result<(), StoreError> {
        let result = self.inner.release_idempotency_key(user, key).await;
        self.record("release_idempotency_key", units(1, 0.0, 1.0));
        result
    }
}

#[cfg(test)]
mod tests {
    use rnd_domain::live::LocationOutcome;
    use rnd_store_conformance::fixtures;
    use serde_json::json;

    use super::*;

    #[test]
    fn units_round_up_per_kilobyte_written_and_per_4_kb_read() {
        // GIVEN item sizes WHEN converted to request units THEN they round up, with a minimum
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(100, false), 0.5);
    }

    fn location_write(order_id: &OrderId, driver: &UserId) -> LocationWrite {
        let now = fixtures::now();
        let location: rnd_domain::live::DriverLocation = serde_json::from_value(json!({
            "latitude": 30.2672, "longitude": -97.7431, "heading": 270.0, "speed": 8.5,
            "accuracy": 5.0, "recordedAt": now,
        }))
        .unwrap();
        LocationWrite {
            order_id: order_id.clone(),
            driver_id: driver.clone(),
            location,
            eta: Some(rnd_domain::live::Eta {
                eta_minutes: 12,
                estimated_delivery_time: now,
                computed_at: now,
                source: rnd_domain::live::EtaSource::Route,
                estimated_pickup_time: Some(now),
            }),
            observed_speed_mps: Some(8.4),
            route: None,
            now_ms: now.timestamp_millis(),
            min_interval_ms: 1000,
            announced: false,
        }
    }

    #[test]
    fn a_location_is_one_write_unit_on_the_small_live_row_accepted_or_refused() {
        // GIVEN a full location write (heading, speed, accuracy, ETA, speed estimate)
        let order_id = OrderId::parse("0b7c4a2e-6f1d-4c5e-9a8b-3d2f1e0c9b8a").unwrap();
        let driver = UserId::parse("driver-00000000-0000-0000-0000-000000000001").unwrap();
        let write = location_write(&order_id, &driver);
        // WHEN it is accepted, or refused by the rate limit
        let accepted =
            record_location_units(&write, &LocationOutcome::Accepted { seq: 123_456 }).unwrap();
        let refused = record_location_units(
            &write,
            &LocationOutcome::RateLimited {
                retry_after_ms: 400,
            },
        )
        .unwrap();
        // THEN each is one UpdateItem of one WRU: the live row stays under 1 KB
        assert_eq!((accepted.requests, accepted.write_units), (1, 1.0));
        assert_eq!((refused.requests, refused.write_units), (1, 1.0));
        assert_eq!(accepted.read_units, 0.0);
    }

    #[test]
    fn a_live_row_carrying_the_largest_route_still_costs_one_write_unit() {
        // GIVEN the full location write with a route of a long, winding drive kept on the row
        // (3 000 points zig-zagging 15 km north, simplified to the bound)
        let order_id = OrderId::parse("0b7c4a2e-6f1d-4c5e-9a8b-3d2f1e0c9b8a").unwrap();
        let driver = UserId::parse("driver-00000000-0000-0000-0000-000000000001").unwrap();
        let points: Vec<_> = (0..3000)
            .map(|i| {
                let wiggle = if i % 2 == 0 { 0.0 } else { 0.004 };
                rnd_domain::geo::GeoPoint::parse(30.0 + f64::from(i) * 5e-5, -97.7 + wiggle)
                    .unwrap()
            })
            .collect();
        let route = rnd_domain::route::Route {
            points,
            distance_m: 15_000.0,
            duration_s: 1_800.0,
            pickup: Some(rnd_domain::route::Waypoint {
                distance_m: 7_000.0,
                duration_s: 840.0,
            }),
        };
        let write = LocationWrite {
            route: Some(rnd_domain::route::StoredRoute::keep(
                &route,
                rnd_domain::route::RouteLeg::ViaPickup,
                "mapbox",
                fixtures::now(),
            )),
            ..location_write(&order_id, &driver)
        };
        // WHEN it is accepted THEN it is still one WRU: the bound keeps the row under 1 KB
        let accepted =
            record_location_units(&write, &LocationOutcome::Accepted { seq: 123_456 }).unwrap();
        assert_eq!(accepted.write_units, 1.0);
    }

    #[test]
    fn a_live_row_is_billed_the_units_of_its_exact_size_small_or_large() {
        // GIVEN live rows as location writes leave them: a small one, and ones whose route
        // holds a geometry of 500, 3 500 and 6 000 characters (just under 1 KB and 4 KB, whose
        // bounds are just over, and 7 KB)
        let order_id = OrderId::parse("0b7c4a2e-6f1d-4c5e-9a8b-3d2f1e0c9b8a").unwrap();
        let driver = UserId::parse("driver-00000000-0000-0000-0000-000000000001").unwrap();
        let write = location_write(&order_id, &driver);
        let row = |polyline: Option<usize>| LiveState {
            route: polyline.map(|length| rnd_domain::route::StoredRoute {
                leg: rnd_domain::route::RouteLeg::ToDropoff,
                polyline: "a".repeat(length),
                distance_m: 15_123.4,
                duration_s: 1_801.7,
                pickup: None,
                computed_at: fixtures::now(),
                provider: "osrm".into(),
            }),
            location_accepted_at_ms: Some(write.now_ms),
            eta: write.eta,
            observed_speed_mps: write.observed_speed_mps,
            ..LiveState::for_new_order(
                &fixtures::placed_order("o-1", &fixtures::customer(), fixtures::now()).order,
            )
        };
        let mut sizes = Vec::new();
        for polyline in [None, Some(500), Some(3_500), Some(6_000)] {
            let live = row(polyline);
            let exact = items::live_row_size(&live).unwrap();
            sizes.push((exact, items::live_row_size_at_most(&live).unwrap()));
            eprintln!(
                "DEBUG {exact} {}",
                items::live_row_size_at_most(&live).unwrap()
            );
            // WHEN it is billed for a write and for a read
            let written = live_row_billed_bytes(&live, WRITE_UNIT_BYTES).unwrap();
            let read = live_row_billed_bytes(&live, READ_UNIT_BYTES).unwrap();
            // THEN the units are those of its exact size
            assert_eq!(write_units(written), write_units(exact), "{exact} bytes");
            assert_eq!(
                read_units(read, false),
                read_units(exact, false),
                "{exact} bytes"
            );
        }
        // AND the rows span one to several units of each, two of them fitting in one unit
        // where their bound does not
        let [small, under_1_kb, under_4_kb, large] = sizes[..] else {
            unreachable!()
        };
        assert!(small.1 <= WRITE_UNIT_BYTES, "{sizes:?}");
        assert!(under_1_kb.0 <= WRITE_UNIT_BYTES && under_1_kb.1 > WRITE_UNIT_BYTES);
        assert!(under_4_kb.0 <= READ_UNIT_BYTES && under_4_kb.1 > READ_UNIT_BYTES);
        assert!(large.0 > READ_UNIT_BYTES, "{sizes:?}");
    }

    #[test]
    fn placing_an_order_is_a_doubled_transaction_plus_its_index_entries() {
        // GIVEN a placed order (no driver yet: customer, chef and month indexes)
        let view = fixtures::placed_order("order-1", &fixtures::customer(), fixtures::now());
        let order_bytes = record_bytes(&OrderRecord::Order(view.order.clone())).unwrap();
        let live_bytes = record_bytes(&OrderRecord::Live(view.live.clone())).unwrap();
        // WHEN its creation and a consistent read of it are metered
        let created = create_order_units(&view).unwrap();
        let read = get_order_units(Some(&view)).unwrap();
        // THEN the transaction costs 2 WRU per started KB of each row, + 1 per index entry
        assert_eq!(
            created.write_units,
            2.0 * (write_units(order_bytes) + write_units(live_bytes)) + 3.0
        );
        // AND the read costs 1 RRU per started 4 KB of both rows
        assert_eq!(read.read_units, read_units(order_bytes + live_bytes, true));
        assert_eq!(read.requests, 1);
    }

    #[test]
    fn assigning_a_driver_adds_the_driver_index_entry_to_the_transition() {
        // GIVEN an order ready for pickup and the same order assigned to a driver
        let mut view = fixtures::placed_order("order-1", &fixtures::customer(), fixtures::now());
        let before = view.clone();
        let mut image = items::order_record(&OrderRecord::Order(view.order.clone())).unwrap();
        image.insert(
            "gsi3pk".into(),
            aws_sdk_dynamodb::types::AttributeValue::S("DRIVER#driver-1".into()),
        );
        // WHEN the index difference is counted
        let added = index_write_units(
            Some(&items::order_record(&OrderRecord::Order(before.order.clone())).unwrap()),
            &image,
        );
        // THEN one entry is written; an unchanged order writes none
        assert_eq!(added, 1.0);
        view.order.seq += 1;
        let same = commit_transition_units(&before, &view).unwrap();
        let rows = 2.0
            * (write_units(record_bytes(&OrderRecord::Order(view.order.clone())).unwrap()) + 1.0);
        assert_eq!(same.write_units, rows);
    }

    #[test]
    fn a_room_query_is_half_a_unit_per_started_4_kb_of_members() {
        // GIVEN a room of 4 members and one of 100
        let room: Room = "order:order-1".parse().unwrap();
        let ids = |count: usize| -> Vec<ConnectionId> {
            (0..count)
                .map(|i| ConnectionId::parse(format!("C{i:014}Q=")).unwrap())
                .collect()
        };
        // WHEN their member queries are metered
        let small = room_members_units(&room, &ids(4)).unwrap();
        let large = room_members_units(&room, &ids(100)).unwrap();
        let empty = room_members_units(&room, &[]).unwrap();
        // THEN 4 members (well under 4 KB) cost ½ RRU, 100 members more, and none still ½
        assert_eq!((small.requests, small.read_units), (1, 0.5));
        assert!(large.read_units > 0.5);
        assert_eq!(empty.read_units, 0.5);
    }

    #[test]
    fn members_are_sized_by_the_length_of_their_ids_and_metered_as_if_each_were_sized() {
        // GIVEN a room, and connection ids of two lengths
        let room: Room = "order:order-1".parse().unwrap();
        let id = |text: String| ConnectionId::parse(text).unwrap();
        let (short, long) = (
            |i: usize| format!("C{i:014}Q="),
            |i: usize| format!("C{i:030}Q="),
        );
        let user = assumed_user();
        let ttl = i64::from(u32::MAX);
        let bytes_in = |member: &ConnectionId, room: &Room| {
            membership_bytes(member, &user, room, ttl).unwrap()
        };
        let bytes = |member: &ConnectionId| bytes_in(member, &room);
        // WHEN rows are sized THEN ids of one length give one size, and a longer id a larger one
        assert_eq!(bytes(&id(short(1))), bytes(&id(short(999))));
        assert!(bytes(&id(long(1))) > bytes(&id(short(1))));
        // AND a room whose members' ids alternate between the lengths is metered as sizing
        // every member's row one by one gives: pages of up to 1 MB, ½ RRU per started 4 KB
        let members: Vec<ConnectionId> = (0..9_000)
            .map(|i| id(if i % 3 == 0 { long(i) } else { short(i) }))
            .collect();
        let mut pages = vec![0usize];
        for member in &members {
            let size = bytes(member);
            if pages[pages.len() - 1] + size > QUERY_PAGE_BYTES {
                pages.push(size);
            } else {
                *pages.last_mut().unwrap() += size;
            }
        }
        let metered = room_members_units(&room, &members).unwrap();
        assert!(pages.len() > 1, "the room spans pages: {pages:?}");
        // AND rows remembered by shape are the rows sized afresh, in rooms of every kind and
        // of ids of several lengths (each shape met twice, with other ids)
        let rooms = [
            "user:u-1",
            "user:u-22",
            "user:u-1234567",
            "role:driver",
            "role:admin",
            "order:o-1",
            "order:o-7654321",
            "order:o-2",
        ];
        for room in rooms.map(|r| r.parse::<Room>().unwrap()) {
            for member in [id(short(5)), id(long(6)), id(short(7)), id(long(8))] {
                assert_eq!(
                    membership_size(&member, &room).unwrap(),
                    bytes_in(&member, &room),
                    "{member} in {room}"
                );
            }
        }
        assert_eq!(metered.requests, pages.len() as u64);
        assert_eq!(
            metered.read_units,
            pages.iter().map(|b| read_units(*b, false)).sum::<f64>()
        );
    }

    #[test]
    fn opening_and_closing_a_connection_write_its_rows_in_transactions() {
        // GIVEN a customer's connection in its initial rooms (its user room only)
        let at = fixtures::now();
        let customer = fixtures::customer();
        let connection = fixtures::connection("Ch3fConnId0001Q=", &customer, at);
        let rooms = rnd_domain::rooms::initial_rooms(&customer);
        // WHEN it is opened and closed
        let opened = open_connection_units(&connection, &rooms).unwrap();
        let closed = close_connection_units(Some(&ClosedConnection {
            connection: connection.clone(),
            disconnected_at: at,
            rooms: rooms.to_vec(),
        }))
        .unwrap();
        // THEN opening is one transaction of two small rows, the connection and its user-room
        // membership (2 WRU each), then counting it: its minute's counters and the user's
        // last-seen row (1 WRU each)
        assert_eq!((opened.requests, opened.write_units), (1 + 2, 4.0 + 2.0));
        // AND closing (in the minute it opened) reads the row, batch-deletes its one
        // membership, swaps row for session, and counts it in that minute and last-seen
        assert_eq!(
            (closed.requests, closed.read_units, closed.write_units),
            (3 + 2, 1.0, 1.0 + 4.0 + 2.0)
        );
        // AND closing it in a later minute counts it in both minutes
        let later = close_connection_units(Some(&ClosedConnection {
            connection: connection.clone(),
            disconnected_at: at + chrono::Duration::minutes(3),
            rooms: rooms.to_vec(),
        }))
        .unwrap();
        assert_eq!(
            (later.requests, later.write_units),
            (3 + 3, 1.0 + 4.0 + 3.0)
        );
        // AND closing a connection that was not open is the read alone
        assert_eq!(close_connection_units(None).unwrap().write_units, 0.0);
        // AND an admin's opening also writes its role:admin membership: three rows, 6 WRU
        let admin = fixtures::admin();
        let connection = fixtures::connection("Adm1nConnId001Q=", &admin, at);
        let opened =
            open_connection_units(&connection, &rnd_domain::rooms::initial_rooms(&admin)).unwrap();
        assert_eq!((opened.requests, opened.write_units), (1 + 2, 6.0 + 2.0));
    }
}
