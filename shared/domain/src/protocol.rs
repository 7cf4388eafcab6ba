//! The WebSocket wire format.
//!
//! Client → server: `{"action": "...", ...fields}`. Server → client: `{"event": "...", "data":
//! {...}}`. [`parse_client_message`] turns raw text into a typed [`ClientMessage`] or a
//! [`ProtocolError`] with a stable [`ErrorCode`] and a message that names the field.

use chrono::{DateTime, TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::geo::{Accuracy, Heading, Latitude, Longitude, Speed};
use crate::identity::Role;
use crate::ids::{ConnectionId, OrderId, UserId};
use crate::inbox::Continuity;
use crate::live::{DriverLocation, EtaSource};
use crate::order::{OrderItem, OrderStatus};
use crate::tracking::OrderTracking;

/// The WebSocket subprotocol the server speaks. A client that offers subprotocols (a browser
/// passing its token as `bearer.<jwt>` must offer at least one) gets this name back in
/// `Sec-WebSocket-Protocol`, whatever else it offered, so a token is never reflected; offer it
/// first: `new WebSocket(url, ["rnd.v1", "bearer." + token])`.
pub const SUBPROTOCOL: &str = "rnd.v1";

/// Largest client message we read: 128 KB, as API Gateway WebSocket frames allow.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// Stable error codes of the `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, missing or invalid fields, too large.
    InvalidMessage,
    /// `action` is not one we know.
    UnknownAction,
    /// Not allowed.
    Forbidden,
    /// No such order (or not yours).
    NotFound,
    /// Too many messages.
    RateLimited,
    /// The connection's token has expired; reconnect with a fresh one.
    TokenExpired,
    /// Something went wrong on our side.
    Internal,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A refused client message. `message` is safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    /// Stable code.
    pub code: ErrorCode,
    /// Client-safe explanation.
    pub message: String,
    /// For `rate_limited`: send again after this many milliseconds.
    pub retry_after_ms: Option<u64>,
}

impl ProtocolError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// A `rate_limited` refusal: send again after `retry_after_ms`.
    pub fn rate_limited(message: impl Into<String>, retry_after_ms: u64) -> Self {
        Self {
            retry_after_ms: Some(retry_after_ms),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    /// The `error` event for this refusal.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error(ErrorData {
            code: self.code,
            message: self.message.clone(),
            retry_after_ms: self.retry_after_ms,
        })
    }
}

impl From<ValidationError> for ProtocolError {
    fn from(e: ValidationError) -> Self {
        ProtocolError::new(ErrorCode::InvalidMessage, e.to_string())
    }
}

/// The actions a client can send.
pub mod action {
    /// Join an order's room.
    pub const SUBSCRIBE_ORDER: &str = "subscribe:order";
    /// Leave an order's room.
    pub const UNSUBSCRIBE_ORDER: &str = "unsubscribe:order";
    /// A driver's position.
    pub const DRIVER_LOCATION: &str = "driver:location";
    /// Keep-alive.
    pub const PING: &str = "ping";
    /// Ask for the `connected` event.
    pub const HELLO: &str = "hello";
    /// Replay what the user's inbox kept after a cursor.
    pub const RESUME: &str = "resume";
    /// Every action, in route order.
    pub const ALL: [&str; 6] = [
        SUBSCRIBE_ORDER,
        UNSUBSCRIBE_ORDER,
        DRIVER_LOCATION,
        RESUME,
        PING,
        HELLO,
    ];
    /// The actions that have a route of their own; the rest (`ping`, `hello`) are answered by
    /// `$default`.
    pub const ROUTED: [&str; 4] = [SUBSCRIBE_ORDER, UNSUBSCRIBE_ORDER, DRIVER_LOCATION, RESUME];
}

/// A parsed client message.
///
/// It serializes to the wire form [`parse_client_message`] reads (a client written in Rust can
/// send it as it is), and its JSON Schema (`protocol_schema`, docs/asyncapi.yaml) is derived
/// from these same attributes; a test holds the parser to both.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "action")]
pub enum ClientMessage {
    /// Join the order's room and get its tracking snapshot (`subscribed`); with `sinceSeq`, its
    /// status updates after that `seq` are replayed first.
    #[serde(rename = "subscribe:order")]
    SubscribeOrder {
        /// The order.
        #[serde(rename = "orderId")]
        order_id: OrderId,
        /// Replay the order's status updates after this `seq` before answering.
        #[serde(rename = "sinceSeq", default, skip_serializing_if = "Option::is_none")]
        since_seq: Option<u64>,
    },
    /// Leave the order's room (`unsubscribed`).
    #[serde(rename = "unsubscribe:order")]
    UnsubscribeOrder {
        /// The order.
        #[serde(rename = "orderId")]
        order_id: OrderId,
    },
    /// The assigned driver's position (`driver:location_acknowledged`, or with `ack:
    /// "refusals"` an answer only when it is refused).
    #[serde(rename = "driver:location")]
    DriverLocation(LocationReport),
    /// Replay the user's inbox after `cursor`, then `resumed`.
    #[serde(rename = "resume")]
    Resume {
        /// The last cursor the client saw (its opaque text), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// Keep-alive: answered with `pong`.
    #[serde(rename = "ping")]
    Ping,
    /// Answered with `connected`.
    #[serde(rename = "hello")]
    Hello,
}

impl ClientMessage {
    /// The order the message is about, for the logs' and traces' `order_id`.
    pub fn order_id(&self) -> Option<&OrderId> {
        match self {
            ClientMessage::SubscribeOrder { order_id, .. }
            | ClientMessage::UnsubscribeOrder { order_id } => Some(order_id),
            ClientMessage::DriverLocation(report) => Some(&report.order_id),
            _ => None,
        }
    }
}

/// A driver's `driver:location` message, parsed.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(inline)]
pub struct LocationReport {
    /// The order being delivered.
    pub order_id: OrderId,
    /// Latitude in degrees.
    pub latitude: Latitude,
    /// Longitude in degrees.
    pub longitude: Longitude,
    /// Heading in degrees clockwise from north.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<Heading>,
    /// Ground speed, m/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Speed>,
    /// Horizontal accuracy, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Accuracy>,
    /// When the device recorded it: an RFC 3339 time or epoch milliseconds (the server's time
    /// when absent or in the future).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<RecordedAt>")]
    pub recorded_at: Option<DateTime<Utc>>,
    /// Which outcomes are acknowledged (`ack`; every one unless the driver app asks for
    /// refusals only).
    #[serde(default)]
    pub ack: LocationAcks,
}

/// What `recordedAt` may be on the wire: an RFC 3339 time or epoch milliseconds (the schema
/// only; `parse_client_message` reads the value).
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum RecordedAt {
    /// An RFC 3339 time.
    Time(DateTime<Utc>),
    /// Milliseconds since the Unix epoch.
    EpochMillis(i64),
}

/// Which `driver:location` messages get a `driver:location_acknowledged` answer: its `ack`
/// field. A driver app that only needs to hear when it should act (slow down, stop sending)
/// asks for `"refusals"` and saves a message per accepted location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LocationAcks {
    /// `"all"` (the default): every location is answered, accepted or not.
    #[default]
    All,
    /// `"refusals"`: only a refused location is answered (`accepted: false`, or an `error`);
    /// an accepted one is answered by nothing.
    Refusals,
}

impl LocationAcks {
    /// The wire values, in this order.
    pub const NAMES: [&'static str; 2] = ["all", "refusals"];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            LocationAcks::All => Self::NAMES[0],
            LocationAcks::Refusals => Self::NAMES[1],
        }
    }

    /// The mode named `name` on the wire, if any.
    pub fn parse(name: &str) -> Option<Self> {
        [LocationAcks::All, LocationAcks::Refusals]
            .into_iter()
            .find(|mode| mode.as_str() == name)
    }

    /// Whether an accepted location is answered.
    pub fn accepted(self) -> bool {
        self == LocationAcks::All
    }
}

impl LocationReport {
    /// The location to store, stamping `now` when the device gave no time (or a time in the
    /// future beyond a small skew, which we do not trust).
    pub fn to_location(&self, now: DateTime<Utc>) -> DriverLocation {
        let max_skew = chrono::Duration::seconds(30);
        let recorded_at = self
            .recorded_at
            .filter(|t| *t <= now + max_skew)
            .unwrap_or(now);
        DriverLocation {
            latitude: self.latitude,
            longitude: self.longitude,
            heading: self.heading,
            speed: self.speed,
            accuracy: self.accuracy,
            recorded_at,
        }
    }
}

fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidMessage, message)
}

/// Parses a client frame.
///
/// Fails with `invalid_message` when the text is over [`MAX_MESSAGE_BYTES`], not JSON, not an
/// object, has no string `action`, or has a missing or invalid field (the message names it);
/// with `unknown_action` when `action` is not one of [`action::ALL`].
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(invalid(format!(
            "message is larger than {MAX_MESSAGE_BYTES} bytes"
        )));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|_| invalid("message is not valid JSON"))?;
    let Value::Object(obj) = value else {
        return Err(invalid("message must be a JSON object"));
    };
    let action = match obj.get("action") {
        Some(Value::String(a)) => a.as_str(),
        Some(_) => return Err(invalid("action must be a string")),
        None => return Err(invalid("action is required")),
    };
    match action {
        action::SUBSCRIBE_ORDER => Ok(ClientMessage::SubscribeOrder {
            order_id: order_id(&obj)?,
            since_seq: since_seq(&obj)?,
        }),
        action::UNSUBSCRIBE_ORDER => Ok(ClientMessage::UnsubscribeOrder {
            order_id: order_id(&obj)?,
        }),
        action::DRIVER_LOCATION => Ok(ClientMessage::DriverLocation(LocationReport {
            order_id: order_id(&obj)?,
            latitude: Latitude::parse(
                number(&obj, "latitude")?.ok_or_else(|| invalid("latitude is required"))?,
            )?,
            longitude: Longitude::parse(
                number(&obj, "longitude")?.ok_or_else(|| invalid("longitude is required"))?,
            )?,
            heading: number(&obj, "heading")?.map(Heading::parse).transpose()?,
            speed: number(&obj, "speed")?.map(Speed::parse).transpose()?,
            accuracy: number(&obj, "accuracy")?.map(Accuracy::parse).transpose()?,
            recorded_at: timestamp(&obj, "recordedAt")?,
            ack: match obj.get("ack") {
                None | Some(Value::Null) => LocationAcks::default(),
                Some(Value::String(name)) => LocationAcks::parse(name)
                    .ok_or_else(|| invalid("ack must be \"all\" or \"refusals\""))?,
                Some(_) => return Err(invalid("ack must be \"all\" or \"refusals\"")),
            },
        })),
        action::RESUME => Ok(ClientMessage::Resume {
            cursor: match obj.get("cursor") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(invalid("cursor must be a string")),
            },
        }),
        action::PING => Ok(ClientMessage::Ping),
        action::HELLO => Ok(ClientMessage::Hello),
        _ => Err(ProtocolError::new(
            ErrorCode::UnknownAction,
            "unknown action; expected one of subscribe:order, unsubscribe:order, driver:location, resume, ping, hello",
        )),
    }
}

fn order_id(obj: &Map<String, Value>) -> Result<OrderId, ProtocolError> {
    match obj.get("orderId") {
        Some(Value::String(s)) => Ok(OrderId::parse(s.as_str())?),
        Some(Value::Null) | None => Err(invalid("orderId is required")),
        Some(_) => Err(invalid("orderId must be a string")),
    }
}

fn since_seq(obj: &Map<String, Value>) -> Result<Option<u64>, ProtocolError> {
    match obj.get("sinceSeq") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid("sinceSeq must be a non-negative integer")),
        Some(_) => Err(invalid("sinceSeq must be a non-negative integer")),
    }
}

fn number(obj: &Map<String, Value>, field: &str) -> Result<Option<f64>, ProtocolError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{field} must be a finite number"))),
        Some(_) => Err(invalid(format!("{field} must be a number"))),
    }
}

fn timestamp(
    obj: &Map<String, Value>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, ProtocolError> {
    let bad = || {
        invalid(format!(
            "{field} must be an RFC 3339 time or epoch milliseconds"
        ))
    };
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| bad()),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// Payload of `connected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ConnectedData {
    pub connection_id: ConnectionId,
    pub user_id: UserId,
    pub role: Role,
    pub server_time: DateTime<Utc>,
}

/// Payload of `subscribed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct SubscribedData {
    pub order_id: OrderId,
    pub seq: u64,
    pub tracking: OrderTracking,
    /// With `sinceSeq` only: whether every status update after it was replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuity: Option<Continuity>,
    /// With `sinceSeq` only: how many status updates were replayed before this answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed: Option<u32>,
}

/// Payload of `resumed`: the answer to `resume`, after the replayed events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ResumedData {
    /// The user's newest position: keep it as the last cursor.
    pub cursor: String,
    /// How many events were replayed before this answer.
    pub replayed: u32,
    /// Whether every event after the client's cursor was replayed.
    pub continuity: Continuity,
}

/// Payload of `unsubscribed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct UnsubscribedData {
    pub order_id: OrderId,
}

/// Why a location was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LocationRejection {
    /// Sent too soon after the previous accepted one.
    RateLimited,
}

/// Payload of `driver:location_acknowledged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct LocationAckData {
    pub order_id: OrderId,
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<LocationRejection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// Payload of `pong`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct PongData {
    pub server_time: DateTime<Utc>,
}

/// Payload of `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ErrorData {
    pub code: ErrorCode,
    pub message: String,
    /// For `rate_limited`: send again after this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Payload of `order:new` (to the chef).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct OrderNewData {
    pub order_id: OrderId,
    pub order_number: String,
    pub status: OrderStatus,
    pub customer_name: String,
    pub items: Vec<OrderItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub seq: u64,
    /// Through a user room only: the user's inbox position after this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Only on a replay (`resume`, `subscribe:order` with `sinceSeq`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// Payload of `order:status_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct StatusUpdateData {
    pub order_id: OrderId,
    pub order_number: String,
    pub status: OrderStatus,
    pub previous_status: OrderStatus,
    /// Who made the change: sent to admins only (`ServerMessage::seen_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<UserId>,
    pub timestamp: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub seq: u64,
    /// The `seq` of the order's previous status update (its creation for the first): a client
    /// that has not seen that one missed a status update. Absent for orders written before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status_seq: Option<u64>,
    /// Through a user room only: the user's inbox position after this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Only on a replay (`resume`, `subscribe:order` with `sinceSeq`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// A place in an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Stop {
    pub name: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// Payload of `driver:new_assignment` (to the driver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct NewAssignmentData {
    pub order_id: OrderId,
    pub order_number: String,
    pub pickup: Stop,
    pub dropoff: Stop,
    pub items: Vec<OrderItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub assigned_at: DateTime<Utc>,
    pub seq: u64,
    /// Through a user room only: the user's inbox position after this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Only on a replay (`resume`, `subscribe:order` with `sinceSeq`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// Payload of `driver:location_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct LocationUpdateData {
    pub order_id: OrderId,
    pub driver_id: UserId,
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    pub timestamp: DateTime<Utc>,
    pub seq: u64,
}

/// Payload of `order:eta_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct EtaUpdateData {
    pub order_id: OrderId,
    pub eta_minutes: u32,
    pub estimated_delivery_time: DateTime<Utc>,
    /// `route`: along a routing provider's route; `estimate`: the offline estimate.
    pub eta_source: EtaSource,
    /// The driver's arrival at the chef, while on the way there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_pickup_time: Option<DateTime<Utc>>,
    pub seq: u64,
}

/// A message from the server: `{"event": name, "data": payload}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", content = "data")]
pub enum ServerMessage {
    /// Answer to `hello`.
    #[serde(rename = "connected")]
    Connected(ConnectedData),
    /// Answer to `subscribe:order`.
    #[serde(rename = "subscribed")]
    Subscribed(Box<SubscribedData>),
    /// Answer to `unsubscribe:order`.
    #[serde(rename = "unsubscribed")]
    Unsubscribed(UnsubscribedData),
    /// Answer to `driver:location`.
    #[serde(rename = "driver:location_acknowledged")]
    LocationAcknowledged(LocationAckData),
    /// Answer to `ping`.
    #[serde(rename = "pong")]
    Pong(PongData),
    /// Answer to `resume`, after the replayed events.
    #[serde(rename = "resumed")]
    Resumed(ResumedData),
    /// A refusal.
    #[serde(rename = "error")]
    Error(ErrorData),
    /// A new order, to its chef.
    #[serde(rename = "order:new")]
    OrderNew(OrderNewData),
    /// A status change, to the order room and admins.
    #[serde(rename = "order:status_update")]
    StatusUpdate(StatusUpdateData),
    /// A new assignment, to the driver.
    #[serde(rename = "driver:new_assignment")]
    NewAssignment(NewAssignmentData),
    /// A driver position, to the order room.
    #[serde(rename = "driver:location_update")]
    LocationUpdate(LocationUpdateData),
    /// A changed ETA, to the order room.
    #[serde(rename = "order:eta_update")]
    EtaUpdate(EtaUpdateData),
}

impl ServerMessage {
    /// The event name.
    pub fn event_name(&self) -> &'static str {
        match self {
            ServerMessage::Connected(_) => "connected",
            ServerMessage::Subscribed(_) => "subscribed",
            ServerMessage::Unsubscribed(_) => "unsubscribed",
            ServerMessage::LocationAcknowledged(_) => "driver:location_acknowledged",
            ServerMessage::Pong(_) => "pong",
            ServerMessage::Resumed(_) => "resumed",
            ServerMessage::Error(_) => "error",
            ServerMessage::OrderNew(_) => "order:new",
            ServerMessage::StatusUpdate(_) => "order:status_update",
            ServerMessage::NewAssignment(_) => "driver:new_assignment",
            ServerMessage::LocationUpdate(_) => "driver:location_update",
            ServerMessage::EtaUpdate(_) => "order:eta_update",
        }
    }

    /// The order sequence number the message carries, for events derived from order changes.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerMessage::OrderNew(d) => Some(d.seq),
            ServerMessage::StatusUpdate(d) => Some(d.seq),
            ServerMessage::NewAssignment(d) => Some(d.seq),
            ServerMessage::LocationUpdate(d) => Some(d.seq),
            ServerMessage::EtaUpdate(d) => Some(d.seq),
            ServerMessage::Subscribed(d) => Some(d.seq),
            _ => None,
        }
    }

    /// The order the message is about, for the logs' and traces' `order_id`.
    pub fn order_id(&self) -> Option<&OrderId> {
        match self {
            ServerMessage::OrderNew(d) => Some(&d.order_id),
            ServerMessage::StatusUpdate(d) => Some(&d.order_id),
            ServerMessage::NewAssignment(d) => Some(&d.order_id),
            ServerMessage::LocationUpdate(d) => Some(&d.order_id),
            ServerMessage::EtaUpdate(d) => Some(&d.order_id),
            ServerMessage::Subscribed(d) => Some(&d.order_id),
            ServerMessage::Unsubscribed(d) => Some(&d.order_id),
            _ => None,
        }
    }

    /// The message as sent through a user room (`cursor`: the user's position after it) and/or
    /// as replayed (`replayed`). Only `order:new`, `order:status_update` and
    /// `driver:new_assignment` carry these; any other message is returned as it is.
    pub fn delivered(mut self, cursor: Option<String>, replayed: bool) -> ServerMessage {
        let (slot, flag) = match &mut self {
            ServerMessage::OrderNew(d) => (&mut d.cursor, &mut d.replayed),
            ServerMessage::StatusUpdate(d) => (&mut d.cursor, &mut d.replayed),
            ServerMessage::NewAssignment(d) => (&mut d.cursor, &mut d.replayed),
            _ => return self,
        };
        *slot = cursor;
        *flag = replayed;
        self
    }

    /// The JSON text sent on the wire.
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail: no maps with non-string keys, no
        // fallible Serialize impls.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"event":"error","data":{"code":"internal","message":"internal error"}}"#.into()
        })
    }

    /// An `error` event.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error(ErrorData {
            code,
            message: message.into(),
            retry_after_ms: None,
        })
    }

    /// The message as a viewer of `role` may see it ([`crate::visibility`]): who changed a
    /// status is an admin's to know only. Every other message is the same for everyone.
    pub fn seen_by(self, role: Role) -> ServerMessage {
        if role == Role::Admin {
            self
        } else {
            self.without_admin_fields()
        }
    }

    /// The message without what only admins see (a status update's `changedBy`).
    pub fn without_admin_fields(self) -> ServerMessage {
        match self {
            ServerMessage::StatusUpdate(mut data) => {
                data.changed_by = None;
                ServerMessage::StatusUpdate(data)
            }
            other => other,
        }
    }

    /// Whether the message carries something only admins see.
    pub fn has_admin_fields(&self) -> bool {
        matches!(self, ServerMessage::StatusUpdate(data) if data.changed_by.is_some())
    }

    /// The `token_expired` error a connection past its token's expiry gets, for a message it
    /// sent or instead of an event it would have been sent (then the connection is closed).
    pub fn token_expired() -> ServerMessage {
        ServerMessage::error(
            ErrorCode::TokenExpired,
            "the token has expired; reconnect with a fresh token",
        )
    }
}
