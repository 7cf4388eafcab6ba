//! The fan-out's test harness: the cast of connections, the stream fixtures, the mock
//! Management API with the real notifier, a store wrapper that counts (and can fail) calls,
//! and the DynamoDB Streams reader that turns real stream records into Lambda's event JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::dynamodb::Event;
use aws_sdk_dynamodbstreams::types::Record;
use chrono::{DateTime, Utc};
use rnd_domain::identity::Actor;
use rnd_domain::ids::{ConnectionId, UserId};
use rnd_domain::inbox::{Appended, InboxEvent, InboxPage};
use rnd_domain::ports::{
    ClosedConnection, Connection, ConnectionStore, InboxStore, RoomMembers, StoreError,
};
use rnd_domain::protocol::ServerMessage;
use rnd_domain::rooms::{Room, initial_rooms};
use rnd_handlers::fanout::{BatchOutcome, FanoutConfig, fan_out};
use rnd_notifier_apigw::ApiGatewayNotifier;
use rnd_notifier_apigw::mock::MockManagementApi;
use rnd_store_conformance::fixtures::{self, admin, chef, customer, driver, other_customer};
use rnd_store_dynamodb::{DynamoStore, testing};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The cast

/// customer-1, subscribed to `order:order-1` (the id has `+`, `/` and `=`, as API Gateway's do).
pub const CUSTOMER: &str = "Cu5t+mer/1Conn=";
/// customer-1 on another device, in no order room.
pub const CUSTOMER_PHONE: &str = "Cu5tPh0neConn=";
/// chef-1, in its user room only.
pub const CHEF: &str = "Chef1C0nnId0Q=";
/// driver-1, in its user room only.
pub const DRIVER: &str = "Dr1vErC0nnId0Q=";
/// admin-1, also subscribed to `order:order-1` (so status updates reach it through two rooms).
pub const ADMIN: &str = "Adm1nC0nnId0Q=";
/// customer-2, in no order room.
pub const STRANGER: &str = "Str4ngerC0nn=";
/// Every connection of the cast.
pub const CAST: [&str; 6] = [CUSTOMER, CUSTOMER_PHONE, CHEF, DRIVER, ADMIN, STRANGER];

pub fn conn(id: &str) -> ConnectionId {
    ConnectionId::parse(id).expect("valid connection id")
}

pub fn room(name: &str) -> Room {
    name.parse().expect("valid room")
}

/// Opens `id` for `actor` in the rooms `$connect` gives it (its user room, and `role:admin` for
/// an admin), connected now.
pub async fn open<S: ConnectionStore + ?Sized>(store: &S, id: &str, actor: &Actor) {
    store
        .open_connection(
            &fixtures::connection(id, actor, fixtures::now()),
            &initial_rooms(actor),
        )
        .await
        .expect("open connection");
}

/// Joins `id` to `room`.
pub async fn join<S: ConnectionStore + ?Sized>(store: &S, id: &str, room_name: &str) {
    store
        .join_room(&conn(id), &room(room_name), fixtures::now())
        .await
        .expect("join room");
}

/// Opens the whole cast; [`CUSTOMER`] and [`ADMIN`] join `order:order-1`.
pub async fn open_cast<S: ConnectionStore + ?Sized>(store: &S) {
    open(store, CUSTOMER, &customer()).await;
    open(store, CUSTOMER_PHONE, &customer()).await;
    open(store, CHEF, &chef()).await;
    open(store, DRIVER, &driver()).await;
    open(store, ADMIN, &admin()).await;
    open(store, STRANGER, &other_customer()).await;
    join(store, CUSTOMER, "order:order-1").await;
    join(store, ADMIN, "order:order-1").await;
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// The directory of the stream fixtures.
pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/stream")
}

/// A fixture from `events/stream/`, as JSON.
pub fn stream_fixture(name: &str) -> Value {
    let path = fixtures_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// One event holding the records of `fixtures`, in that order.
pub fn batch_json(fixtures: &[Value]) -> Value {
    let records: Vec<Value> = fixtures
        .iter()
        .flat_map(|f| f["Records"].as_array().expect("Records").clone())
        .collect();
    json!({ "Records": records })
}

/// The event as AWS's types parse it.
pub fn event(json: Value) -> Event {
    serde_json::from_value(json).expect("parses as a DynamoDB stream event")
}

/// The batch of the named fixtures, in that order.
pub fn batch(names: &[&str]) -> Event {
    let fixtures: Vec<Value> = names.iter().map(|n| stream_fixture(n)).collect();
    event(batch_json(&fixtures))
}

/// The sequence number of the first record of a fixture.
pub fn sequence_number(name: &str) -> String {
    stream_fixture(name)["Records"][0]["dynamodb"]["SequenceNumber"]
        .as_str()
        .expect("SequenceNumber")
        .to_owned()
}

/// The fixture's JSON with every `order-1` replaced by `order_id` (keys, images, ids).
pub fn for_order(fixture: &Value, order_id: &str) -> Value {
    serde_json::from_str(&fixture.to_string().replace("order-1", order_id)).expect("still JSON")
}

// ---------------------------------------------------------------------------------------------
// The notifier side

/// The mock Management API, the real notifier pointed at it, and fast retry settings.
pub struct Fanout {
    pub api: MockManagementApi,
    notifier: ApiGatewayNotifier,
    pub config: FanoutConfig,
}

impl Fanout {
    pub async fn start() -> Self {
        let api = MockManagementApi::start().await;
        let notifier = api.notifier(Duration::from_secs(5));
        let config = FanoutConfig {
            concurrency: 4,
            max_attempts: 3,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(10),
            ..FanoutConfig::default()
        };
        Self {
            api,
            notifier,
            config,
        }
    }

    /// Runs the handler on `event` against `store`, now.
    pub async fn run<S: ConnectionStore + InboxStore + ?Sized>(
        &self,
        store: &S,
        event: &Event,
    ) -> BatchOutcome {
        self.run_at(store, event, fixtures::now()).await
    }

    /// Runs the handler on `event` against `store`, at `now`.
    pub async fn run_at<S: ConnectionStore + InboxStore + ?Sized>(
        &self,
        store: &S,
        event: &Event,
        now: DateTime<Utc>,
    ) -> BatchOutcome {
        fan_out(store, &self.notifier, &self.config, event, now).await
    }

    /// The messages `connection` received, in arrival order.
    pub fn received(&self, connection: &str) -> Vec<ServerMessage> {
        self.api
            .bodies_to(connection)
            .iter()
            .map(|b| serde_json::from_str(b).expect("a server message"))
            .collect()
    }

    /// `(event name, seq)` of what `connection` received, in arrival order.
    pub fn events_to(&self, connection: &str) -> Vec<(&'static str, u64)> {
        self.received(connection)
            .iter()
            .map(|m| (m.event_name(), m.seq().expect("events carry a seq")))
            .collect()
    }

    /// The raw bodies `connection` received, as JSON.
    pub fn bodies_to(&self, connection: &str) -> Vec<Value> {
        self.api
            .bodies_to(connection)
            .iter()
            .map(|b| serde_json::from_str(b).expect("JSON"))
            .collect()
    }
}

/// The `itemIdentifier`s of a response.
pub fn failures(outcome: &BatchOutcome) -> Vec<String> {
    outcome
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A store that counts

/// Wraps a store: records every call by method name (and room for `room_members`, user for
/// `append_to_inbox`), and can fail the reads of one room or the appends to one user's inbox.
pub struct CountingStore<S> {
    inner: Arc<S>,
    calls: Mutex<Vec<String>>,
    failing_room: Option<Room>,
    failing_inbox: Option<UserId>,
}

impl<S> CountingStore<S> {
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            calls: Mutex::default(),
            failing_room: None,
            failing_inbox: None,
        }
    }

    /// Reading `room` fails with a backend error.
    pub fn failing(mut self, room_name: &str) -> Self {
        self.failing_room = Some(room(room_name));
        self
    }

    /// Appending to `user`'s inbox fails with a backend error (a transient store failure).
    pub fn failing_inbox_of(mut self, user: &str) -> Self {
        self.failing_inbox = Some(UserId::parse(user).expect("valid user"));
        self
    }

    /// Appends to `user`'s inbox succeed again.
    pub fn heal(&mut self) {
        self.failing_inbox = None;
        self.failing_room = None;
    }

    fn record(&self, call: String) {
        self.calls.lock().expect("lock").push(call);
    }

    /// Every call, as `method` or `room_members {room}`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }

    /// How often each room was read.
    pub fn room_lookups(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for call in self.calls() {
            if let Some(room) = call.strip_prefix("room_members ") {
                *counts.entry(room.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }
}

#[async_trait]
impl<S: ConnectionStore> ConnectionStore for CountingStore<S> {
    async fn open_connection(&self, c: &Connection, rooms: &[Room]) -> Result<(), StoreError> {
        self.record("open_connection".into());
        self.inner.open_connection(c, rooms).await
    }

    async fn get_connection(
        &self,
        id: &ConnectionId,
        now: DateTime<Utc>,
    ) -> Result<Option<Connection>, StoreError> {
        self.record("get_connection".into());
        self.inner.get_connection(id, now).await
    }

    async fn join_room(
        &self,
        id: &ConnectionId,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record("join_room".into());
        self.inner.join_room(id, room, now).await
    }

    async fn leave_room(&self, id: &ConnectionId, room: &Room) -> Result<bool, StoreError> {
        self.record("leave_room".into());
        self.inner.leave_room(id, room).await
    }

    async fn room_members(
        &self,
        room: &Room,
        now: DateTime<Utc>,
    ) -> Result<RoomMembers, StoreError> {
        self.record(format!("room_members {room}"));
        if self.failing_room.as_ref() == Some(room) {
            return Err(StoreError::backend("injected: the room cannot be read"));
        }
        self.inner.room_members(room, now).await
    }

    async fn rooms_of(&self, id: &ConnectionId) -> Result<Vec<Room>, StoreError> {
        self.record("rooms_of".into());
        self.inner.rooms_of(id).await
    }

    async fn close_connection(
        &self,
        id: &ConnectionId,
        at: DateTime<Utc>,
    ) -> Result<Option<ClosedConnection>, StoreError> {
        self.record("close_connection".into());
        self.inner.close_connection(id, at).await
    }
}

#[async_trait]
impl<S: InboxStore> InboxStore for CountingStore<S> {
    async fn append_to_inbox(
        &self,
        user: &UserId,
        events: &[InboxEvent],
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Result<Appended, StoreError> {
        self.record(format!("append_to_inbox {user}"));
        if self.failing_inbox.as_ref() == Some(user) {
            return Err(StoreError::backend("injected: the inbox cannot be written"));
        }
        self.inner
            .append_to_inbox(user, events, now, retention)
            .await
    }

    async fn read_inbox(
        &self,
        user: &UserId,
        after: u64,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<InboxPage, StoreError> {
        self.record(format!("read_inbox {user}"));
        self.inner.read_inbox(user, after, limit, now).await
    }
}

// ---------------------------------------------------------------------------------------------
// The real stream

/// Every record of the orders table's stream so far, as DynamoDB writes them
/// ([`testing::as_dynamodb_writes_them`]: moto writes an item created by `UpdateItem` twice).
pub async fn read_stream(store: &DynamoStore) -> (String, Vec<Record>) {
    let (arn, records) = testing::raw_stream(store).await;
    (arn, testing::as_dynamodb_writes_them(records))
}

/// An SDK image as DynamoDB JSON (`{"attr": {"S": "…"}}`), as Lambda delivers it.
fn image_json(
    image: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
) -> Option<Value> {
    image.map(|i| {
        serde_json::to_value(serde_dynamo::Item::from(i.clone())).expect("an image serializes")
    })
}

/// A stream record as the Lambda service puts it in the event it invokes the function with.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let data = record
        .dynamodb()
        .expect("a stream record has dynamodb data");
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": data.approximate_creation_date_time().map(|t| t.secs()),
        "Keys": image_json(data.keys()),
        "SequenceNumber": data.sequence_number(),
        // DynamoDB's figure (moto reports its JSON's length).
        "SizeBytes": testing::stream_record_size(data),
        "StreamViewType": data.stream_view_type().map(|v| v.as_str()),
    });
    if let Some(new) = image_json(data.new_image()) {
        dynamodb["NewImage"] = new;
    }
    if let Some(old) = image_json(data.old_image()) {
        dynamodb["OldImage"] = old;
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source(),
        "awsRegion": record.aws_region(),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}
