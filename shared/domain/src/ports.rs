//! Ports: what handlers need from the outside world. Adapters implement them — DynamoDB and the
//! API Gateway Management API in AWS, SQLite and an in-process socket registry locally.
//!
//! Every port takes the current time from its caller (`now`), so behaviour that depends on time
//! (TTL, rate limits) is testable without sleeping.

use std::error::Error as StdError;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::device::{Device, DeviceId, DeviceRegistration, Registered};
use crate::identity::Role;
use crate::ids::{ConnectionId, OrderId, UserId};
use crate::inbox::{Appended, InboxEvent, InboxPage};
use crate::live::{LiveState, LocationOutcome, LocationWrite};
use crate::order::{Order, OrderView};
use crate::profile::Profile;
use crate::rooms::Room;

/// A boxed error from a backend (SDK, SQLite, I/O).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

// How long a connection lives is presence's to say; stores and handlers name it here too.
pub use crate::presence::{CONNECTION_MAX_LIFETIME_SECS, CONNECTION_TTL_GRACE_SECS};
/// How long a closed connection's session record is kept for analytics.
pub const SESSION_RETENTION_SECS: i64 = 30 * 24 * 60 * 60;

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the item changed since it was read.
    #[error("the item changed since it was read")]
    Conflict,
    /// The item to create already exists.
    #[error("the item already exists")]
    AlreadyExists,
    /// The connection is not open (closed, expired or unknown).
    #[error("the connection is not open")]
    ConnectionGone,
    /// A list cursor that is not one this store issued (malformed, or from another listing).
    #[error("the cursor is not valid")]
    InvalidCursor,
    /// A stored item does not parse as what it should be. `what` names the item and what is
    /// wrong with it (never quoting the stored data); `source` is why, when a parser said so.
    #[error("stored data is invalid: {what}")]
    Corrupt {
        /// The item and what is wrong with it.
        what: String,
        /// The parser's error, kept as this error's source.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend failed (network, throttling, I/O). Retrying may help.
    #[error("store backend failure")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(e: impl Into<BoxError>) -> Self {
        StoreError::Backend(e.into())
    }

    /// Stored data that is invalid as `what` says (no underlying error).
    pub fn corrupt(what: impl Into<String>) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            source: None,
        }
    }

    /// Stored data `what` that a parser refused with `source`, which is kept as the source.
    pub fn corrupt_by(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

/// An open WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// API Gateway's connection id.
    pub connection_id: ConnectionId,
    /// Who is connected.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
    /// Their display name.
    pub name: Option<String>,
    /// When the connection opened.
    pub connected_at: DateTime<Utc>,
    /// Client IP, as API Gateway saw it.
    pub source_ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// When the token used to connect expires.
    pub token_expires_at: DateTime<Utc>,
    /// When this row is dead whatever happens (TTL): connected_at + 2 h + grace.
    pub expires_at: DateTime<Utc>,
}

impl Connection {
    /// The TTL for a connection opened at `connected_at`: 2 h + grace later, in whole seconds
    /// (a DynamoDB TTL attribute holds epoch seconds, so every store agrees on the instant).
    pub fn expiry_for(connected_at: DateTime<Utc>) -> DateTime<Utc> {
        let secs =
            connected_at.timestamp() + CONNECTION_MAX_LIFETIME_SECS + CONNECTION_TTL_GRACE_SECS;
        DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// True while the row is alive at `now`.
    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

/// A connection that has been closed, with what analytics need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedConnection {
    /// The connection as it was.
    pub connection: Connection,
    /// When it closed.
    pub disconnected_at: DateTime<Utc>,
    /// The rooms it was in when it closed.
    pub rooms: Vec<Room>,
}

impl ClosedConnection {
    /// How long it was open.
    pub fn duration(&self) -> chrono::Duration {
        self.disconnected_at - self.connection.connected_at
    }
}

/// A room's connections at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomMembers {
    /// Connections whose token is still valid: what events are delivered to.
    pub open: Vec<ConnectionId>,
    /// Connections whose token has expired ([`Connection::token_expires_at`] not after the
    /// moment): nothing is delivered to them; the fan-out tells each `token_expired` and closes
    /// it.
    pub token_expired: Vec<ConnectionId>,
}

/// Connections and their room memberships.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Stores a new connection and makes it a member of `rooms` (as `$connect` decides them:
    /// [`crate::rooms::initial_rooms`]), and counts it ([`PresenceStore`]).
    /// Fails with [`StoreError::AlreadyExists`] when the id is already open.
    async fn open_connection(
        &self,
        connection: &Connection,
        rooms: &[Room],
    ) -> Result<(), StoreError>;

    /// The connection, if it is open at `now` (not closed, not past its TTL).
    async fn get_connection(
        &self,
        id: &ConnectionId,
        now: DateTime<Utc>,
    ) -> Result<Option<Connection>, StoreError>;

    /// Adds the connection to `room`. Idempotent. Fails with [`StoreError::ConnectionGone`]
    /// when the connection is not open at `now`.
    async fn join_room(
        &self,
        id: &ConnectionId,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Removes the connection from `room`. Returns whether it was a member.
    async fn leave_room(&self, id: &ConnectionId, room: &Room) -> Result<bool, StoreError>;

    /// The connections in `room` at `now`: those to deliver to, and those whose token has
    /// expired (deliver nothing to them). Rows past their TTL are not returned even if the
    /// store has not deleted them yet.
    async fn room_members(
        &self,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<RoomMembers, StoreError>;

    /// The rooms the connection is in.
    async fn rooms_of(&self, id: &ConnectionId) -> Result<Vec<Room>, StoreError>;

    /// Closes the connection: removes it and every membership it had, keeps a session record
    /// for analytics and counts it ([`PresenceStore`]). Idempotent: returns `None` when it was
    /// not open (then nothing is counted).
    async fn close_connection(
        &self,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<Option<ClosedConnection>, StoreError>;
}

/// Presence and connection analytics ([`crate::presence`]). A store keeps them in
/// [`ConnectionStore::open_connection`] and [`ConnectionStore::close_connection`]: the user's
/// last-seen time and the minute counters of [`crate::presence::ConnectionEvent::counters`],
/// sharded by [`crate::presence::shard_of`] the connection id. Nothing here scans connections.
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// `user`'s presence at `now`: their connections open at `now` (their user room's members,
    /// TTL respected), since when, and when they were last seen.
    async fn presence(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<crate::presence::Presence, StoreError>;

    /// The minutes counted from `from` to `to` (minute starts, both included), every shard
    /// merged, in order; a minute with nothing counted is absent.
    async fn connection_minutes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<crate::presence::ConnectionMinute>, StoreError>;
}

/// Whose orders to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderFilter {
    /// Orders a customer placed.
    Customer(UserId),
    /// Orders a chef received.
    Chef(UserId),
    /// Orders a driver was assigned.
    Driver(UserId),
    /// Every order (admins).
    All,
}

/// A page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    /// Whose orders.
    pub filter: OrderFilter,
    /// At most this many (1–100).
    pub limit: u32,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

/// A page of orders, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderPage {
    /// The orders.
    pub orders: Vec<Order>,
    /// Cursor for the next page, when there is one.
    pub next_cursor: Option<String>,
}

/// Orders and their live items.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Stores a new order and its live item. Fails with [`StoreError::AlreadyExists`] when the
    /// id is taken.
    async fn create_order(&self, view: &OrderView) -> Result<(), StoreError>;

    /// The order and its live item.
    async fn get_order(&self, id: &OrderId) -> Result<Option<OrderView>, StoreError>;

    /// Replaces `previous` with `next` (both items) if neither item changed since `previous`
    /// was read; else fails with [`StoreError::Conflict`]. So of two racing transitions exactly
    /// one wins.
    async fn commit_transition(
        &self,
        previous: &OrderView,
        next: &OrderView,
    ) -> Result<(), StoreError>;

    /// The next order number of `day` (1, 2, 3, …), atomic under concurrency.
    async fn next_order_number(&self, day: NaiveDate) -> Result<u32, StoreError>;

    /// Orders matching `query`, newest first. [`OrderFilter::All`] covers at least the last
    /// twelve months. Fails with [`StoreError::InvalidCursor`] for a cursor this store did not
    /// issue for this filter.
    async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, StoreError>;
}

/// Live driver locations.
#[async_trait]
pub trait LiveLocationStore: Send + Sync {
    /// Records an accepted location with one conditional write on the small live item: it holds
    /// only if the sender is the assigned driver, the order is in a driver phase and the last
    /// accepted location is at least `min_interval_ms` old — across concurrent writers.
    async fn record_location(&self, write: &LocationWrite) -> Result<LocationOutcome, StoreError>;

    /// The order's live item alone (one small read; it may lag a write by up to a second, like
    /// an eventually consistent read): what a location's ETA is computed from. `None` when the
    /// order does not exist.
    async fn get_live(&self, order: &OrderId) -> Result<Option<LiveState>, StoreError>;
}

/// User profiles (the orders table's `USER#{userId}` / `PROFILE` rows).
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// The user's profile, or `None` when they have not saved one.
    async fn get_profile(&self, user: &UserId) -> Result<Option<Profile>, StoreError>;

    /// Saves `profile`, replacing the user's previous one (last write wins).
    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError>;
}

/// The per-user inbox of the events that go to `user:{id}` rooms (see [`crate::inbox`]).
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Appends `events` to `user`'s inbox, in order, each kept until `now + retention`: an
    /// event gets the next position, unless an event with its key is still kept (then it keeps
    /// the position it has and nothing is written for it). The first append creates the inbox,
    /// with `now` (ms) as its epoch. Concurrent appends to one inbox get distinct positions with
    /// no holes, in the order they commit; a reader never sees a position before the events
    /// below it.
    ///
    /// Returns the inbox's epoch and each event's position. On failure a prefix of the new
    /// events may be kept (appending them again is harmless). Fails with
    /// [`StoreError::Backend`] when the backend fails, also when contention outlasts the
    /// retries.
    async fn append_to_inbox(
        &self,
        user: &UserId,
        events: &[InboxEvent],
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<Appended, StoreError>;

    /// `user`'s inbox: its epoch and head (read first), then up to `limit` events still kept
    /// at `now` with a position above `after`, oldest first. A user without an inbox has
    /// epoch 0 and head 0.
    ///
    /// Fails with [`StoreError::Corrupt`] when a kept event does not parse, and with
    /// [`StoreError::Backend`] when the backend fails.
    async fn read_inbox(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<InboxPage, StoreError>;
}

/// The devices users get push notifications on (see [`crate::device`] for the rules).
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Registers `registration` at `now`. The same token from the same user refreshes the
    /// device (`lastSeenAt`, platform, version, locale) and keeps its id (`created` false); a
    /// token another user registered moves to this user as a new device; past
    /// [`MAX_DEVICES_PER_USER`](crate::device::MAX_DEVICES_PER_USER) the least recently seen
    /// devices are dropped. Atomic per token under concurrency.
    ///
    /// Fails with [`StoreError::Backend`] when the backend fails (also when contention
    /// outlasts the retries).
    async fn register_device(
        &self,
        registration: &DeviceRegistration,
        now: DateTime<Utc>,
    ) -> Result<Registered, StoreError>;

    /// `user`'s devices remembered at `now`, most recently seen first.
    async fn devices_of(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Device>, StoreError>;

    /// Removes `user`'s device `device` (and forgets its token). Returns whether there was
    /// one: another user's device is not removed and answers `false`.
    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> Result<bool, StoreError>;
}

/// What the push consumer has sent, so that a retried stream batch pushes nothing twice.
#[async_trait]
pub trait PushLedger: Send + Sync {
    /// Whether the notification `key` was recorded as sent to `user` and is still kept at
    /// `now`.
    async fn was_pushed(
        &self,
        key: &str,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records the notification `key` as sent to `user`, kept until `now + retention`, with a
    /// conditional write. Returns false when it was recorded already (another delivery of the
    /// same record got there first).
    async fn record_pushed(
        &self,
        key: &str,
        user: &UserId,
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<bool, StoreError>;
}

/// The answer a request gave, kept with its idempotency key to give again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// `Location`, when it had one.
    pub location: Option<String>,
    /// The body.
    pub body: String,
}

/// Who holds an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// Nobody did (or their claim expired): the caller holds it now and runs the request.
    Claimed,
    /// A request holds it: its fingerprint, and its answer once it has one.
    Held {
        /// What the first request was (method, path and body, hashed).
        fingerprint: String,
        /// What it answered; `None` while it runs.
        answer: Option<KeptAnswer>,
    },
}

/// `Idempotency-Key`s of the HTTP API, per user.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for `user`'s request `fingerprint` until `expires_at`, with a conditional
    /// write, so that of two requests racing with one key exactly one runs.
    async fn claim_idempotency_key(
        &self,
        user: &UserId,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError>;

    /// Keeps the answer of the request holding `key`.
    async fn keep_idempotent_answer(
        &self,
        user: &UserId,
        key: &str,
        answer: &KeptAnswer,
    ) -> Result<(), StoreError>;

    /// Gives `key` up (its request failed on our side), so that a retry runs again.
    async fn release_idempotency_key(&self, user: &UserId, key: &str) -> Result<(), StoreError>;
}

/// Fixed-window counters of the [`crate::limits`].
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Counts one use of `limit` for `subject` in the window holding `now`, unless the window
    /// has counted `limit.per_window` already: a conditional write, so that concurrent
    /// invocations share the limit. Refused, it says how long until the window ends.
    async fn take(
        &self,
        limit: crate::limits::Limit,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<crate::limits::Allowance, StoreError>;
}

/// Declares a capability: a trait that is all of `bounds` together, implemented for every type
/// that is (Rust cannot name `dyn A + B`, so a capability names it).
macro_rules! capability {
    ($(#[$doc:meta])* $name:ident: $first:ident $(+ $bound:ident)*) => {
        $(#[$doc])*
        pub trait $name: $first $(+ $bound)* {}
        impl<T: $first $(+ $bound)*> $name for T {}
    };
}

capability! {
    /// What the HTTP API uses: orders, profiles, devices, idempotency keys, rate limits and
    /// presence. Every [`Store`] is one, and an `Arc<dyn Store>` upcasts to
    /// `Arc<dyn ApiStore>`.
    ApiStore: OrderStore + ProfileStore + DeviceStore + IdempotencyStore + RateLimitStore
        + PresenceStore
}

capability! {
    /// Everything a store adapter provides.
    Store: ConnectionStore + OrderStore + LiveLocationStore + ProfileStore + InboxStore
        + DeviceStore + PushLedger + ApiStore
}

/// Why a post to a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The connection is gone (HTTP 410): forget it.
    #[error("the connection is gone")]
    Gone,
    /// Throttled (HTTP 429): retry later.
    #[error("throttled")]
    Throttled,
    /// The service failed (HTTP 5xx or network): retry later.
    #[error("the service is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else (e.g. a payload too large): retrying will not help.
    #[error("the post was refused")]
    Rejected(#[source] BoxError),
}

impl NotifyError {
    /// True for failures worth retrying.
    pub fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Throttled | NotifyError::Unavailable(_))
    }
}

/// Posts a message to one connection (API Gateway's PostToConnection).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends `payload` (a JSON text) to the connection.
    async fn post(&self, connection: &ConnectionId, payload: &str) -> Result<(), NotifyError>;

    /// Closes the connection from the server's side (API Gateway then runs `$disconnect`).
    /// Fails with [`NotifyError::Gone`] when it is already closed.
    async fn disconnect(&self, connection: &ConnectionId) -> Result<(), NotifyError>;
}
