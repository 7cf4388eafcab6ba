//! The stream pollers: each emulates one Lambda event source mapping on the orders table's
//! stream — the fan-out's and the push consumer's, each with the template's settings and its
//! own checkpoint. A poller reads changes (the SQLite change log, or the DynamoDB table's
//! stream), builds the DynamoDB stream event exactly as Lambda delivers it, applies its
//! mapping's filter criteria, invokes its [`Consumer`] — [`Fanout`]
//! ([`rnd_handlers::fanout::fan_out`] posting to this stack's connections, in-process or
//! through the real API Gateway notifier and `@connections`) or [`Push`] ([`rnd_handlers::push::push_batch`] with
//! the FCM sender) in `ParallelizationFactor` concurrent batches split by partition key — and
//! honours `batchItemFailures`: the batch is re-delivered from the
//! earliest failed record up to `MaximumRetryAttempts` times, then skipped (logged as an
//! error).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use rnd_domain::OrderRecord;
use rnd_domain::change::OrderChange;
use rnd_domain::ports::{Notifier, Store, StoreError};
use rnd_domain::push::PushSender;
use rnd_handlers::fanout::{FanoutConfig, fan_out};
use rnd_handlers::push::{PushConfig, push_batch};
use rnd_store_dynamodb::items::{Item, Wanted};
use rnd_store_dynamodb::stream::{CheckpointTable, StartingPosition, StreamTail, TailOptions};
use rnd_store_sqlite::SqliteStore;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::template::{FilterFields, ImageFields, StreamSettings};

/// How often a poller looks at the DynamoDB stream for new records (nothing wakes it: other
/// writers, a Lambda's for one, write to the table too).
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often a change log poller looks without being woken: for another process writing to the
/// same SQLite file (this process's writes wake it at once).
const OTHER_WRITERS_POLL: Duration = Duration::from_secs(1);
/// The longest pause before re-delivering a batch that reported failed records.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polled {
    /// Nothing was waiting: wait for a change.
    Idle,
    /// A batch was delivered: look again at once (more may be waiting).
    Delivered,
    /// The consumer reported failed records: pause before re-delivering them.
    Retry,
}

/// The consumer name the fan-out's position is checkpointed under: in the SQLite change log's
/// checkpoints, or in the DynamoDB checkpoint table
/// ([`CheckpointTable::name_for`] the orders table).
pub const STREAM_CONSUMER: &str = "stream-fanout";
/// The consumer name the push consumer's position is checkpointed under.
pub const PUSH_CONSUMER: &str = "stream-push";

/// A function an event source mapping invokes with batches of stream records.
#[async_trait]
pub(crate) trait Consumer: Send + Sync {
    /// The function's name (its checkpoint's consumer name, its metrics).
    fn function(&self) -> &'static str;

    /// Invokes the function with `event` at `now`; its partial batch response.
    async fn invoke(
        &self,
        event: &aws_lambda_events::dynamodb::Event,
        now: DateTime<Utc>,
    ) -> DynamoDbEventResponse;
}

/// The stream fan-out, posting to this stack's connections.
pub(crate) struct Fanout {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) config: FanoutConfig,
}

#[async_trait]
impl Consumer for Fanout {
    fn function(&self) -> &'static str {
        crate::metrics::FANOUT_FUNCTION
    }

    async fn invoke(
        &self,
        event: &aws_lambda_events::dynamodb::Event,
        now: DateTime<Utc>,
    ) -> DynamoDbEventResponse {
        let outcome = fan_out(&*self.store, &*self.notifier, &self.config, event, now).await;
        tracing::debug!(
            records = outcome.metrics.records,
            deliveries = outcome.metrics.delivery.deliveries,
            "stream batch fanned out"
        );
        outcome.response
    }
}

/// The push consumer, sending through FCM (the built-in FCM sink, or the endpoint given).
pub(crate) struct Push {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sender: Arc<dyn PushSender>,
    pub(crate) config: PushConfig,
}

#[async_trait]
impl Consumer for Push {
    fn function(&self) -> &'static str {
        PUSH_CONSUMER
    }

    async fn invoke(
        &self,
        event: &aws_lambda_events::dynamodb::Event,
        now: DateTime<Utc>,
    ) -> DynamoDbEventResponse {
        let outcome = push_batch(&*self.store, &*self.sender, &self.config, event, now).await;
        // In AWS these go to the function's on-failure queue; the local stack has none.
        for failed in &outcome.failed_pushes {
            tracing::error!(
                key = %failed.key,
                user_id = %failed.user_id,
                device_id = %failed.device_id,
                reason = failed.reason,
                "PUSH DROPPED: it kept failing (in AWS it goes to the push failure queue)"
            );
        }
        tracing::debug!(
            records = outcome.metrics.records,
            sent = outcome.metrics.sent,
            "stream batch pushed"
        );
        outcome.response
    }
}

/// Sequence numbers are made 21 digits long, like DynamoDB's.
const SEQUENCE_BASE: u128 = 100_000_000_000_000_000_000;

/// One change of an order or live row, where it is in the stream and when it was made.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) sequence_number: String,
    pub(crate) change: Arc<OrderChange>,
    pub(crate) at: DateTime<Utc>,
}

/// Where changes come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// The SQLite change log, resuming from the saved checkpoint.
    Sqlite {
        store: Arc<SqliteStore>,
        /// Moves on when this process logs a change.
        changes: watch::Receiver<u64>,
        /// How long an idle poller waits without being woken (other writers).
        fallback: Duration,
        /// Whose checkpoint.
        consumer: &'static str,
        position: u64,
        /// The positions of the last batch read, in order.
        pending: Vec<u64>,
    },
    /// The DynamoDB stream of the orders table, read incrementally from the consumer's
    /// checkpoints in the checkpoint table (the template's `StartingPosition` on the
    /// consumer's first start): a restart resumes after the last change delivered.
    Dynamo {
        tail: Box<rnd_store_dynamodb::stream::StreamTail>,
    },
}

impl Source {
    /// The SQLite change log from `consumer`'s checkpoint in `store`.
    pub(crate) async fn sqlite(
        store: Arc<SqliteStore>,
        consumer: &'static str,
    ) -> Result<Self, StoreError> {
        let position = store.checkpoint(consumer).await?;
        Ok(Self::Sqlite {
            changes: store.subscribe_changes(),
            fallback: OTHER_WRITERS_POLL,
            store,
            consumer,
            position,
            pending: Vec::new(),
        })
    }

    /// The DynamoDB stream `stream_arn`, from `consumer`'s checkpoints in `checkpoints` (the
    /// table must exist), or from `starting_position` on the consumer's first start.
    pub(crate) async fn dynamo(
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: &str,
        checkpoints: CheckpointTable,
        starting_position: StartingPosition,
        consumer: &'static str,
    ) -> Result<Self, StoreError> {
        let tail = StreamTail::start(
            streams,
            stream_arn,
            TailOptions::durable(starting_position, checkpoints, consumer),
        )
        .await?;
        Ok(Self::Dynamo {
            tail: Box::new(tail),
        })
    }

    /// Up to `limit` undelivered changes, oldest first.
    async fn next_batch(&mut self, limit: usize) -> Result<Vec<Change>, StoreError> {
        match self {
            Source::Sqlite {
                store,
                changes: woken,
                position,
                pending,
                ..
            } => {
                // Seen before reading: a change logged from now on wakes the next wait.
                woken.borrow_and_update();
                let changes = store.changes_after(*position, limit).await?;
                *pending = changes.iter().map(|c| c.position).collect();
                Ok(changes
                    .into_iter()
                    .map(|c| Change {
                        sequence_number: (SEQUENCE_BASE + u128::from(c.position)).to_string(),
                        change: c.change,
                        at: c.at,
                    })
                    .collect())
            }
            Source::Dynamo { tail } => {
                let changes = tail.next_batch(limit).await?;
                Ok(changes
                    .into_iter()
                    .map(|c| Change {
                        at: c.approximate_creation.unwrap_or_else(Utc::now),
                        sequence_number: c.sequence_number,
                        change: Arc::new(c.change),
                    })
                    .collect())
            }
        }
    }

    /// Waits until something new may be there: a change this process logged (the change log:
    /// at once), or a while (other writers; the DynamoDB stream).
    async fn changes(&mut self) {
        match self {
            Source::Sqlite {
                changes, fallback, ..
            } => {
                let _ = tokio::time::timeout(*fallback, changes.changed()).await;
            }
            Source::Dynamo { .. } => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }

    /// Marks the first `count` changes of the last batch as delivered, durably (the SQLite
    /// checkpoint, or the DynamoDB checkpoint table).
    async fn commit(&mut self, count: usize) -> Result<(), StoreError> {
        if count == 0 {
            return Ok(());
        }
        match self {
            Source::Sqlite {
                store,
                consumer,
                position,
                pending,
                ..
            } => {
                if let Some(last) = pending.get(count - 1) {
                    *position = *last;
                    store.save_checkpoint(consumer, *last).await?;
                }
            }
            Source::Dynamo { tail } => tail.commit(count).await?,
        }
        Ok(())
    }
}

/// The item `DynamoStore` writes for `record` (its own item builder: the record's fields,
/// `itemType`, the keys and, for orders, the index attributes).
fn item(record: &OrderRecord) -> Result<Item, StoreError> {
    rnd_store_dynamodb::items::order_record(record)
}

/// An item as DynamoDB JSON (`{"name": {"S": "…"}}`), as stream records carry it.
fn dynamodb_json(item: Item) -> Result<Value, StoreError> {
    serde_json::to_value(serde_dynamo::Item::from(item)).map_err(StoreError::backend)
}

/// One stream record as Lambda delivers it (see `events/stream/`).
pub(crate) fn record_json(change: &Change, stream_arn: &str) -> Result<Value, StoreError> {
    let new = change.change.new.as_ref().map(item).transpose()?;
    let old = change.change.old.as_ref().map(item).transpose()?;
    let Some(any) = new.as_ref().or(old.as_ref()) else {
        return Err(StoreError::backend(std::io::Error::other(
            "a change without images",
        )));
    };
    let keys: Item = any
        .iter()
        .filter(|(name, _)| name.as_str() == "pk" || name.as_str() == "sk")
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    // What DynamoDB reports: the size of the keys and of the images the record carries.
    let size = [Some(&keys), new.as_ref(), old.as_ref()]
        .into_iter()
        .flatten()
        .map(rnd_store_dynamodb::items::size)
        .sum::<usize>();
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change.at.timestamp(),
        "Keys": dynamodb_json(keys)?,
        "SequenceNumber": change.sequence_number,
        "SizeBytes": size,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    if let Some(new) = new {
        dynamodb["NewImage"] = dynamodb_json(new)?;
    }
    if let Some(old) = old {
        dynamodb["OldImage"] = dynamodb_json(old)?;
    }
    Ok(json!({
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventID": uuid::Uuid::new_v4().simple().to_string(),
        "eventName": change.change.kind.as_str(),
        "eventSource": "aws:dynamodb",
        "eventSourceARN": stream_arn,
        "eventVersion": "1.1",
    }))
}

/// The parts of `change`'s stream record that `fields` names (see
/// [`StreamSettings::filter_fields`]): each image the record has, holding only the named
/// attributes, and the event name if named. A filter accepts it exactly when it accepts the
/// whole record, which costs several times more to build (the keys, both whole images as
/// DynamoDB JSON, an event id): most changes (accepted locations) are dropped on this alone.
/// The images hold only the named attributes from the start
/// ([`order_record_attributes`](rnd_store_dynamodb::items::order_record_attributes)): building
/// a live row whole was a fifth of the stack's instructions per location update.
pub(crate) fn filter_view(
    change: &Change,
    fields: &FilterFields,
) -> Result<FilterView, StoreError> {
    let image = |record: &OrderRecord, names: &ImageFields| {
        if names.is_empty() {
            return Ok(Item::new());
        }
        // Of a map the patterns read by key, only those keys (the push filter reads one key of
        // the `eta` map): converting the rest was most of the view's work.
        rnd_store_dynamodb::items::order_record_attributes(record, &|name| match names.get(name) {
            None => Wanted::No,
            Some(None) => Wanted::Whole,
            Some(Some(keys)) => Wanted::Keys(keys),
        })
    };
    Ok(FilterView {
        new_image: change
            .change
            .new
            .as_ref()
            .map(|new| image(new, &fields.new_image))
            .transpose()?,
        old_image: change
            .change
            .old
            .as_ref()
            .map(|old| image(old, &fields.old_image))
            .transpose()?,
        event_name: fields.event_name.then(|| change.change.kind.as_str()),
    })
}

/// A [`filter_view`]: the images' named attributes as the item builder makes them, matched
/// by the patterns as the record's DynamoDB JSON (`{"dynamodb": {"NewImage": {name: {"S":
/// …}}}}`) without being written as JSON: writing them, and dropping what was written, was
/// half a poller's filtering per location update.
#[derive(Debug)]
pub(crate) struct FilterView {
    pub(crate) new_image: Option<Item>,
    pub(crate) old_image: Option<Item>,
    pub(crate) event_name: Option<&'static str>,
}

impl FilterView {
    /// The view as the JSON it stands for (the record's named parts).
    #[cfg(test)]
    fn to_json(&self) -> Value {
        self.root().json()
    }

    /// The record, for the filter patterns to read.
    pub(crate) fn root(&self) -> ViewNode<'_> {
        ViewNode::Record(self)
    }
}

/// A place in a [`FilterView`], as the record's JSON has it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ViewNode<'a> {
    /// `{"dynamodb": …, "eventName": …}`.
    Record(&'a FilterView),
    /// `{"NewImage": …, "OldImage": …}`.
    Dynamodb(&'a FilterView),
    /// An image, or a map attribute's value: `{name: {"S": …}}`.
    Attributes(&'a HashMap<String, AttributeValue>),
    /// One attribute: `{"S": …}`, `{"N": …}`, `{"M": …}`…
    Attribute(&'a AttributeValue),
    /// A string (`S` and `N` values, the event name).
    Text(&'a str),
    /// `BOOL` and `NULL` values.
    Flag(bool),
    /// What a list, set or binary attribute holds under its type (`[…]`, or the base64 text).
    Payload(&'a AttributeValue),
}

impl ViewNode<'_> {
    /// The JSON this node stands for (for the rare pattern that lists objects or arrays).
    fn json(self) -> Value {
        match self {
            ViewNode::Record(view) => {
                let mut record = serde_json::Map::new();
                record.insert("dynamodb".to_owned(), ViewNode::Dynamodb(view).json());
                if let Some(name) = view.event_name {
                    record.insert("eventName".to_owned(), name.into());
                }
                Value::Object(record)
            }
            ViewNode::Dynamodb(view) => {
                let mut dynamodb = serde_json::Map::new();
                for (name, image) in [("NewImage", &view.new_image), ("OldImage", &view.old_image)]
                {
                    if let Some(image) = image {
                        dynamodb.insert(name.to_owned(), ViewNode::Attributes(image).json());
                    }
                }
                Value::Object(dynamodb)
            }
            ViewNode::Attributes(map) => dynamodb_json(map.clone()).unwrap_or(Value::Null),
            ViewNode::Attribute(value) => {
                serde_json::to_value(serde_dynamo::AttributeValue::from(value.clone()))
                    .unwrap_or(Value::Null)
            }
            ViewNode::Text(text) => text.into(),
            ViewNode::Flag(flag) => flag.into(),
            ViewNode::Payload(value) => match ViewNode::Attribute(value).json() {
                Value::Object(typed) => typed.into_iter().next().map_or(Value::Null, |(_, v)| v),
                other => other,
            },
        }
    }

    /// The name of the one field an attribute has in DynamoDB JSON (`S`, `N`, `L`, `SS`…).
    fn type_name(value: &AttributeValue) -> Option<&'static str> {
        Some(match value {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null(_) => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
            _ => return None,
        })
    }
}

impl crate::template::Node for ViewNode<'_> {
    fn field(self, key: &str) -> Option<Self> {
        match self {
            ViewNode::Record(view) => match key {
                "dynamodb" => Some(ViewNode::Dynamodb(view)),
                "eventName" => view.event_name.map(ViewNode::Text),
                _ => None,
            },
            ViewNode::Dynamodb(view) => match key {
                "NewImage" => view.new_image.as_ref().map(ViewNode::Attributes),
                "OldImage" => view.old_image.as_ref().map(ViewNode::Attributes),
                _ => None,
            },
            ViewNode::Attributes(map) => map.get(key).map(ViewNode::Attribute),
            // An attribute has one field, named by its type, holding its value.
            ViewNode::Attribute(value) if ViewNode::type_name(value) == Some(key) => {
                Some(match value {
                    AttributeValue::S(text) | AttributeValue::N(text) => ViewNode::Text(text),
                    AttributeValue::Bool(flag) | AttributeValue::Null(flag) => {
                        ViewNode::Flag(*flag)
                    }
                    AttributeValue::M(map) => ViewNode::Attributes(map),
                    // Lists, sets and binaries: compared whole, as the JSON they hold.
                    other => ViewNode::Payload(other),
                })
            }
            ViewNode::Attribute(_) => None,
            ViewNode::Text(_) | ViewNode::Flag(_) | ViewNode::Payload(_) => None,
        }
    }

    fn equals(self, expected: &Value) -> bool {
        match self {
            ViewNode::Text(text) => expected.as_str() == Some(text),
            ViewNode::Flag(flag) => expected.as_bool() == Some(flag),
            node => node.json() == *expected,
        }
    }
}

/// The stream records of recent changes, built once and shared by the event source mappings
/// that read the same stream, as in AWS both read one stream record (same `eventID`). Building
/// a record (the item images as DynamoDB JSON) was a quarter of the stack's CPU per location
/// update when each poller built its own, only for the filter to drop most of them; now a
/// poller filters on a [`filter_view`] and builds the record only for what passes. Holds the
/// last [`StreamRecords::CAPACITY`]; a poller further behind builds its own again.
///
/// The filter views are shared the same way: built once per change with the fields every
/// mapping of the stream names ([`StreamRecords::for_mappings`]), where each mapping built its
/// own (a quarter of the stack's instructions per location update went to the two pollers'
/// filters, most of it building views).
#[derive(Debug, Default)]
pub(crate) struct StreamRecords {
    records: std::sync::Mutex<Kept<Arc<Value>>>,
    views: std::sync::Mutex<Kept<Arc<FilterView>>>,
    /// The fields of the shared views: those of every mapping that filters on a view.
    view_fields: Option<FilterFields>,
}

/// Values by sequence number, the oldest forgotten first.
#[derive(Debug)]
struct Kept<T> {
    by_sequence_number: HashMap<String, T>,
    oldest_first: VecDeque<String>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Self {
            by_sequence_number: HashMap::new(),
            oldest_first: VecDeque::new(),
        }
    }
}

impl<T: Clone> Kept<T> {
    /// The value kept for `change`, or `build`'s, kept from now on (built outside the lock).
    fn get_or_build(
        kept: &std::sync::Mutex<Self>,
        change: &Change,
        build: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let lock = || crate::lock(kept);
        if let Some(value) = lock().by_sequence_number.get(&change.sequence_number) {
            return Ok(value.clone());
        }
        let value = build()?;
        let mut kept = lock();
        if kept.oldest_first.len() == StreamRecords::CAPACITY
            && let Some(oldest) = kept.oldest_first.pop_front()
        {
            kept.by_sequence_number.remove(&oldest);
        }
        if kept
            .by_sequence_number
            .insert(change.sequence_number.clone(), value.clone())
            .is_none()
        {
            kept.oldest_first.push_back(change.sequence_number.clone());
        }
        Ok(value)
    }
}

impl StreamRecords {
    /// How many recent records are kept: a few batches of the default size.
    const CAPACITY: usize = 1_024;

    /// The records of the stream that `mappings` read, with shared filter views holding the
    /// fields any of them filters on.
    pub(crate) fn for_mappings<'a>(mappings: impl IntoIterator<Item = &'a StreamSettings>) -> Self {
        let fields: Vec<FilterFields> = mappings
            .into_iter()
            .filter_map(StreamSettings::filter_fields)
            .collect();
        Self {
            view_fields: (!fields.is_empty()).then(|| FilterFields::union(&fields)),
            ..Self::default()
        }
    }

    /// The filter view of `change` for a mapping whose patterns read `fields`: the shared
    /// view when its fields cover them (built once per change), else one of `fields` alone.
    /// Either judges the mapping's patterns alike: they read only the fields they name.
    pub(crate) fn view(
        &self,
        change: &Change,
        fields: &FilterFields,
    ) -> Result<Arc<FilterView>, StoreError> {
        match &self.view_fields {
            Some(shared) if shared.covers(fields) => {
                Kept::get_or_build(&self.views, change, || {
                    filter_view(change, shared).map(Arc::new)
                })
            }
            _ => filter_view(change, fields).map(Arc::new),
        }
    }

    /// The record of `change`, built by [`record_json`] unless another poller already did.
    pub(crate) fn record(
        &self,
        change: &Change,
        stream_arn: &str,
    ) -> Result<Arc<Value>, StoreError> {
        Kept::get_or_build(&self.records, change, || {
            record_json(change, stream_arn).map(Arc::new)
        })
    }
}

/// The records of a batch split into at most `factor` lanes by partition key (a key's records
/// all in one lane, in stream order); lanes without records are left out.
fn lanes(records: &[(usize, Arc<Value>)], factor: usize) -> Vec<Vec<&Value>> {
    use std::hash::{Hash, Hasher};
    let factor = factor.max(1);
    let mut lanes: Vec<Vec<&Value>> = vec![Vec::new(); factor];
    for (_, record) in records {
        let lane = if factor == 1 {
            0
        } else {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            record["dynamodb"]["Keys"]["pk"]["S"]
                .as_str()
                .unwrap_or_default()
                .hash(&mut hasher);
            usize::try_from(hasher.finish() % factor as u64).unwrap_or(0)
        };
        lanes[lane].push(record);
    }
    lanes.retain(|lane| !lane.is_empty());
    lanes
}

/// The poller's fixed parts.
pub(crate) struct Poller {
    pub(crate) source: Source,
    pub(crate) consumer: Arc<dyn Consumer>,
    pub(crate) settings: StreamSettings,
    pub(crate) stream_arn: String,
    /// The stream's records, shared with the other pollers of this stream.
    pub(crate) records: Arc<StreamRecords>,
    /// Turned true when a poll found nothing waiting, false when a batch is read.
    pub(crate) idle: watch::Sender<bool>,
    /// Counts each invocation and its time.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

impl Poller {
    /// Runs [`Poller::run`] as a task of the current runtime.
    pub(crate) fn spawn(
        self,
        enabled: watch::Receiver<bool>,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(enabled, shutdown))
    }

    /// Polls while `enabled` is true (the event source mapping's `Enabled`: while it is false,
    /// nothing is read and the position stays where it is), until `shutdown` turns true.
    pub(crate) async fn run(
        mut self,
        mut enabled: watch::Receiver<bool>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut attempts: u32 = 0;
        let mut polled = Polled::Delivered;
        let fields = self.settings.filter_fields();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if !*enabled.borrow_and_update() {
                tokio::select! {
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    changed = enabled.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
                continue;
            }
            // Nothing waits while records do: only an idle poller waits for a change, and a
            // failing batch pauses (growing with its attempts) before it is re-delivered.
            let pause = async {
                match polled {
                    Polled::Delivered => {}
                    Polled::Idle => self.source.changes().await,
                    Polled::Retry => {
                        let pause = POLL_INTERVAL.saturating_mul(attempts.max(1));
                        tokio::time::sleep(pause.min(MAX_RETRY_PAUSE)).await;
                    }
                }
            };
            // Disabling stops a waiting poller too, before it reads what woke it.
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
                changed = enabled.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
                () = pause => {}
            }
            polled = match self.poll_once(&mut attempts, fields.as_ref()).await {
                Ok(Polled::Idle) => {
                    self.idle.send_replace(true);
                    Polled::Idle
                }
                Ok(polled) => polled,
                Err(e) => {
                    tracing::error!(
                        error = &e as &dyn std::error::Error,
                        "stream poller could not read or checkpoint the stream"
                    );
                    Polled::Retry
                }
            };
        }
    }

    /// Invokes the consumer with the records of one lane and returns the failures it reported,
    /// an unknown or empty identifier replaced by the lane's first record (the lane failed
    /// from its start).
    async fn invoke(
        &self,
        lane: Vec<&Value>,
        now: DateTime<Utc>,
    ) -> Result<Vec<aws_lambda_events::streams::DynamoDbBatchItemFailure>, StoreError> {
        let sequence_numbers: Vec<&str> = lane
            .iter()
            .filter_map(|record| record["dynamodb"]["SequenceNumber"].as_str())
            .collect();
        let mut event = aws_lambda_events::dynamodb::Event::default();
        event.records = lane
            .iter()
            .map(|record| {
                aws_lambda_events::dynamodb::EventRecord::deserialize(*record)
                    .map_err(StoreError::backend)
            })
            .collect::<Result<_, _>>()?;
        let started = std::time::Instant::now();
        let response = self.consumer.invoke(&event, now).await;
        self.metrics
            .invoked(self.consumer.function(), started.elapsed());
        let mut failures = response.batch_item_failures;
        for failure in &mut failures {
            let known = failure
                .item_identifier
                .as_deref()
                .is_some_and(|id| sequence_numbers.contains(&id));
            if !known {
                failure.item_identifier = sequence_numbers.first().map(|id| (*id).to_owned());
            }
        }
        Ok(failures)
    }

    /// Whether the filter criteria pass `change`: judged on its [`filter_view`] when `fields`
    /// say what the patterns read, else on its whole record.
    fn accepts(&self, change: &Change, fields: Option<&FilterFields>) -> Result<bool, StoreError> {
        match fields {
            Some(fields) => Ok(self
                .settings
                .accepts(self.records.view(change, fields)?.root())),
            None => {
                let record = self.records.record(change, &self.stream_arn)?;
                Ok(self.settings.accepts(record.as_ref()))
            }
        }
    }

    /// Delivers one batch (if there is one) and moves the position past what succeeded. The
    /// filter criteria are judged on `fields` when given ([`StreamSettings::filter_fields`]).
    async fn poll_once(
        &mut self,
        attempts: &mut u32,
        fields: Option<&FilterFields>,
    ) -> Result<Polled, StoreError> {
        let limit = self.settings.batch_size;
        let mut changes = self.source.next_batch(limit).await?;
        if changes.is_empty() {
            return Ok(Polled::Idle);
        }
        self.idle.send_replace(false);
        if changes.len() < limit && !self.settings.batching_window.is_zero() {
            tokio::time::sleep(self.settings.batching_window).await;
            changes = self.source.next_batch(limit).await?;
        }
        let mut records = Vec::new();
        for (index, change) in changes.iter().enumerate() {
            let record = match self.accepts(change, fields) {
                Ok(true) => self.records.record(change, &self.stream_arn).map(Some),
                Ok(false) => Ok(None),
                Err(e) => Err(e),
            };
            match record {
                Ok(Some(record)) => records.push((index, record)),
                Ok(None) => {}
                Err(e) => tracing::error!(
                    sequence_number = %change.sequence_number,
                    error = %rnd_domain::error::Chain(&e),
                    "could not build a stream record; skipping it"
                ),
            }
        }
        if records.is_empty() {
            self.source.commit(changes.len()).await?;
            return Ok(Polled::Delivered);
        }
        // `ParallelizationFactor` batches at once, each with the records of some partition keys
        // (in stream order), as Lambda processes one shard.
        let now = Utc::now();
        let lanes = lanes(&records, self.settings.parallelization_factor);
        let invocations = lanes.into_iter().map(|lane| self.invoke(lane, now));
        let failures: Vec<_> = futures::future::join_all(invocations)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        if failures.is_empty() || !self.settings.report_batch_item_failures {
            *attempts = 0;
            self.source.commit(changes.len()).await?;
            return Ok(Polled::Delivered);
        }
        // The earliest failed record of any lane: the batch is delivered again from there (the
        // other lanes' records after it too: at least once, each key's records in order).
        let failed_change = failures
            .iter()
            .map(|f| {
                f.item_identifier
                    .as_deref()
                    .and_then(|id| changes.iter().position(|c| c.sequence_number == id))
                    .unwrap_or(0)
            })
            .min()
            .unwrap_or(0);
        *attempts = if failed_change > 0 { 1 } else { *attempts + 1 };
        if self
            .settings
            .max_retry_attempts
            .is_some_and(|max| *attempts > max)
        {
            tracing::error!(
                from = %changes[failed_change].sequence_number,
                to = %changes[changes.len() - 1].sequence_number,
                attempts = *attempts,
                function = self.consumer.function(),
                "STREAM RECORDS DROPPED: the consumer kept failing past MaximumRetryAttempts; \
                 skipping the rest of the batch (in AWS it goes to the on-failure destination)"
            );
            *attempts = 0;
            self.source.commit(changes.len()).await?;
            return Ok(Polled::Delivered);
        }
        tracing::warn!(
            from = %changes[failed_change].sequence_number,
            attempt = *attempts,
            function = self.consumer.function(),
            "the consumer reported failed records; re-delivering from the earliest"
        );
        self.source.commit(failed_change).await?;
        Ok(Polled::Retry)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use rnd_domain::ports::OrderStore;
    use rnd_store_conformance::fixtures;

    use super::*;

    /// A consumer that fails every batch from its first record (as the fan-out does when our
    /// store fails), counting its invocations.
    #[derive(Debug, Default)]
    struct AlwaysFailing(AtomicUsize);

    #[async_trait]
    impl Consumer for AlwaysFailing {
        fn function(&self) -> &'static str {
            "always-failing"
        }

        async fn invoke(
            &self,
            event: &aws_lambda_events::dynamodb::Event,
            _now: DateTime<Utc>,
        ) -> DynamoDbEventResponse {
            self.0.fetch_add(1, Ordering::SeqCst);
            let mut failure = aws_lambda_events::streams::DynamoDbBatchItemFailure::default();
            failure.item_identifier = event.records[0].change.sequence_number.clone();
            let mut response = DynamoDbEventResponse::default();
            response.batch_item_failures.push(failure);
            response
        }
    }

    fn fixture_record(name: &str) -> Value {
        let path = format!(
            "{}/../../events/stream/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        event["Records"][0].clone()
    }

    fn sorted_keys(value: &Value) -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn a_batch_splits_into_parallel_lanes_by_partition_key_keeping_each_keys_order() {
        // GIVEN a batch of three changes each of six orders, interleaved as a stream has them
        let records: Vec<(usize, Arc<Value>)> = (0..18)
            .map(|n| {
                let record = json!({"dynamodb": {
                    "Keys": {"pk": {"S": format!("ORDER#order-{}", n % 6)}},
                    "SequenceNumber": format!("{n:021}"),
                }});
                (n, Arc::new(record))
            })
            .collect();
        let key = |r: &Value| {
            r["dynamodb"]["Keys"]["pk"]["S"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let position = |r: &Value| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned();

        // WHEN it is split for a ParallelizationFactor of 2, and of 1
        let two = lanes(&records, 2);
        let one = lanes(&records, 1);

        // THEN there are at most two lanes, holding every record once, each order in one lane
        // and in stream order
        assert!(!two.is_empty() && two.len() <= 2);
        assert_eq!(two.iter().map(Vec::len).sum::<usize>(), 18);
        for lane in &two {
            let positions: Vec<String> = lane.iter().map(|r| position(r)).collect();
            let mut sorted = positions.clone();
            sorted.sort();
            assert_eq!(positions, sorted, "a lane keeps stream order");
            for record in lane {
                let elsewhere = two
                    .iter()
                    .filter(|other| !std::ptr::eq(*other, lane))
                    .flatten()
                    .any(|other| key(other) == key(record));
                assert!(!elsewhere, "{} is in one lane only", key(record));
            }
        }
        // AND a factor of 1 keeps the whole batch in one lane, in order
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].len(), 18);
    }

    #[test]
    fn the_pollers_of_one_stream_read_one_record_per_change() {
        // GIVEN a change of an order and the records shared by a stream's pollers
        let view = fixtures::placed_order("order-1", &fixtures::customer(), fixtures::now());
        let change = Change {
            sequence_number: "100000000000000000001".into(),
            change: OrderChange::between(None, Some(OrderRecord::Order(view.order)))
                .unwrap()
                .into(),
            at: Utc::now(),
        };
        let records = StreamRecords::default();
        // WHEN two pollers ask for its record
        let first = records.record(&change, "arn:stream").unwrap();
        let second = records.record(&change, "arn:stream").unwrap();
        // THEN they get the same record, eventID included, as two consumers of one stream do
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first["eventID"], second["eventID"]);
    }

    #[test]
    fn a_filter_view_is_matched_as_the_json_it_stands_for_attributes_of_every_type_included() {
        // GIVEN a view whose new image holds an attribute of every type, and no old image
        let s = |text: &str| AttributeValue::S(text.to_owned());
        let image: Item = [
            ("itemType", s("live")),
            ("seq", AttributeValue::N("12".to_owned())),
            ("done", AttributeValue::Bool(true)),
            ("nothing", AttributeValue::Null(true)),
            ("tags", AttributeValue::L(vec![s("a"), s("b")])),
            ("names", AttributeValue::Ss(vec!["x".to_owned()])),
            (
                "eta",
                AttributeValue::M(
                    [("etaMinutes".to_owned(), AttributeValue::N("3".to_owned()))].into(),
                ),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        let view = FilterView {
            new_image: Some(image),
            old_image: None,
            event_name: Some("MODIFY"),
        };
        let json = view.to_json();
        // WHEN patterns on each kind of field judge it as it is, and as its JSON
        let patterns = [
            json!({"dynamodb": {"NewImage": {"itemType": {"S": ["live"]}}}}),
            json!({"dynamodb": {"NewImage": {"itemType": {"S": ["order"]}}}}),
            json!({"dynamodb": {"NewImage": {"seq": {"N": ["12"]}}}}),
            json!({"dynamodb": {"NewImage": {"seq": {"S": ["12"]}}}}),
            json!({"dynamodb": {"NewImage": {"done": {"BOOL": [true]}}}}),
            json!({"dynamodb": {"NewImage": {"done": {"BOOL": [false]}}}}),
            json!({"dynamodb": {"NewImage": {"nothing": {"NULL": [true]}}}}),
            json!({"dynamodb": {"NewImage": {"tags": {"L": [[{"S": "a"}, {"S": "b"}]]}}}}),
            json!({"dynamodb": {"NewImage": {"tags": {"L": [[{"S": "a"}]]}}}}),
            json!({"dynamodb": {"NewImage": {"names": {"SS": [["x"]]}}}}),
            json!({"dynamodb": {"NewImage": {"eta": {"M": {"etaMinutes": {"N": ["1", "3"]}}}}}}),
            json!({"dynamodb": {"NewImage": {"eta": {"M": [{"etaMinutes": {"N": "3"}}]}}}}),
            json!({"dynamodb": {"NewImage": {"eta": {"M": {"other": {"N": [{"exists": false}]}}}}}}),
            json!({"dynamodb": {"NewImage": {"seq": {"N": [{"exists": true}]}}}}),
            json!({"dynamodb": {"NewImage": {"missing": [{"exists": true}]}}}),
            json!({"dynamodb": {"OldImage": {"itemType": {"S": [{"exists": false}]}}}}),
            json!({"dynamodb": {"OldImage": {"itemType": {"S": ["live"]}}}}),
            json!({"eventName": ["MODIFY"]}),
            json!({"eventName": ["INSERT"]}),
            json!({"dynamodb": {"SequenceNumber": ["1"]}}),
        ];
        let mut outcomes = std::collections::BTreeSet::new();
        for pattern in patterns {
            let settings = StreamSettings {
                filters: vec![pattern.clone()],
                ..StreamSettings::default()
            };
            let as_is = settings.accepts(view.root());
            // THEN both ways agree, for patterns that pass and that do not
            assert_eq!(as_is, settings.accepts(&json), "{pattern}");
            outcomes.insert(as_is);
        }
        assert_eq!(outcomes.len(), 2);
    }

    #[test]
    fn the_filters_judge_a_change_by_its_filter_view_as_they_would_by_its_whole_record() {
        // GIVEN changes of every kind the table makes: an order placed, its status changed,
        // its live row moved with and without the fast path's announcedSeq, almost there and
        // not, and the order removed
        let view = fixtures::placed_order("order-1", &fixtures::customer(), fixtures::now());
        let order = OrderRecord::Order(view.order.clone());
        let mut accepted = view.order.clone();
        accepted.status = rnd_domain::OrderStatus::Accepted;
        accepted.seq += 1;
        let live = |announced: Option<u64>, eta_minutes: Option<u32>| {
            let mut live = view.live.clone();
            live.seq += 1;
            live.announced_seq = announced;
            live.eta = eta_minutes.map(|eta_minutes| rnd_domain::Eta {
                eta_minutes,
                estimated_delivery_time: fixtures::now(),
                computed_at: fixtures::now(),
                source: rnd_domain::live::EtaSource::Estimate,
                estimated_pickup_time: None,
            });
            OrderRecord::Live(live)
        };
        let was = OrderRecord::Live(view.live.clone());
        let changes = [
            (None, Some(order.clone())),
            (Some(order.clone()), Some(OrderRecord::Order(accepted))),
            (Some(was.clone()), Some(live(None, None))),
            (Some(was.clone()), Some(live(Some(2), None))),
            (Some(was.clone()), Some(live(Some(2), Some(3)))),
            (Some(was.clone()), Some(live(None, Some(12)))),
            (Some(order), None),
            (Some(was), None),
        ];
        let template = crate::template::Template::embedded().unwrap();
        let shared = StreamRecords::for_mappings([&template.stream, &template.push_stream]);
        let mut outcomes = std::collections::BTreeSet::new();
        let mut views = Vec::new();
        for settings in [&template.stream, &template.push_stream] {
            let fields = settings.filter_fields().unwrap();
            for (n, (old, new)) in changes.iter().cloned().enumerate() {
                let change = Change {
                    sequence_number: format!("{}", SEQUENCE_BASE + n as u128),
                    change: OrderChange::between(old, new).unwrap().into(),
                    at: Utc::now(),
                };
                // WHEN a mapping's filter judges each by its own filter view, and by the view
                // the stream's mappings share (the fields of both)
                let own = filter_view(&change, &fields).unwrap();
                let by_view = settings.accepts(own.root());
                let view = shared.view(&change, &fields).unwrap();
                let by_shared_view = settings.accepts(view.root());
                // (and as on the JSON the views stand for)
                assert_eq!(settings.accepts(&own.to_json()), by_view, "change {n}");
                assert_eq!(settings.accepts(&view.to_json()), by_view, "change {n}");
                // THEN it decides as it does on the whole record, either way
                let by_record = settings.accepts(&record_json(&change, "arn:stream").unwrap());
                assert_eq!(by_view, by_record, "change {n}");
                assert_eq!(by_shared_view, by_record, "change {n}");
                outcomes.insert(by_view);
                views.push(view);
            }
        }
        // AND the changes include some each way (the comparison can fail)
        assert_eq!(outcomes.len(), 2);
        // AND the two mappings were given one view per change, built once
        let (fanout, push) = views.split_at(changes.len());
        assert!(fanout.iter().zip(push).all(|(a, b)| Arc::ptr_eq(a, b)));
        // AND of the eta map, which the push filter reads by key, the view holds that key only
        let eta = fanout[4].to_json()["dynamodb"]["NewImage"]["eta"]["M"].clone();
        let eta = eta.as_object().expect("an eta map");
        assert_eq!(eta.keys().collect::<Vec<_>>(), ["etaMinutes"]);
    }

    #[tokio::test]
    async fn records_have_the_shape_and_attributes_of_the_real_stream_fixtures() {
        // GIVEN a placed order, as the change log holds its insert
        let view = fixtures::placed_order("order-1", &fixtures::customer(), fixtures::now());
        let change = Change {
            sequence_number: "100000000000000000001".into(),
            change: OrderChange::between(None, Some(OrderRecord::Order(view.order.clone())))
                .unwrap()
                .into(),
            at: Utc::now(),
        };
        // WHEN it becomes a Lambda stream record
        let record = record_json(&change, "arn:stream").unwrap();
        // THEN it has the keys of helper A's recorded fixture, down to the image attributes
        let expected = fixture_record("order-insert");
        assert_eq!(sorted_keys(&record), sorted_keys(&expected));
        assert_eq!(
            sorted_keys(&record["dynamodb"]),
            sorted_keys(&expected["dynamodb"])
        );
        assert_eq!(
            sorted_keys(&record["dynamodb"]["NewImage"]),
            sorted_keys(&expected["dynamodb"]["NewImage"])
        );
        assert_eq!(record["dynamodb"]["Keys"], expected["dynamodb"]["Keys"]);
        // AND it parses as the event type the fan-out takes
        serde_json::from_value::<aws_lambda_events::dynamodb::Event>(
            json!({ "Records": [record] }),
        )
        .unwrap();
    }

    #[tokio::test]
    async fn a_batch_that_keeps_failing_is_retried_up_to_the_limit_then_skipped() {
        // GIVEN an order placed, and a consumer that fails every batch
        let sqlite = Arc::new(SqliteStore::in_memory().unwrap());
        let view = fixtures::placed_order("order-1", &fixtures::customer(), fixtures::now());
        sqlite.create_order(&view).await.unwrap();
        let last = sqlite
            .changes_after(0, 100)
            .await
            .unwrap()
            .last()
            .unwrap()
            .position;
        let consumer = Arc::new(AlwaysFailing::default());
        let mut poller = Poller {
            source: Source::sqlite(Arc::clone(&sqlite), STREAM_CONSUMER)
                .await
                .unwrap(),
            consumer: Arc::clone(&consumer) as Arc<dyn Consumer>,
            settings: StreamSettings {
                max_retry_attempts: Some(2),
                ..StreamSettings::default()
            },
            stream_arn: "arn:stream".into(),
            records: Arc::default(),
            idle: watch::Sender::new(false),
            metrics: Arc::default(),
        };
        let mut attempts = 0;

        // WHEN the poller delivers it and it fails, then retries it once
        for _ in 0..2 {
            poller.poll_once(&mut attempts, None).await.unwrap();
            // THEN the checkpoint stays before the failed record
            assert_eq!(sqlite.checkpoint(STREAM_CONSUMER).await.unwrap(), 0);
        }
        assert_eq!(consumer.0.load(Ordering::SeqCst), 2);

        // WHEN the second retry (the limit) fails too
        poller.poll_once(&mut attempts, None).await.unwrap();
        // THEN the batch is skipped: the checkpoint moves past it and it is not delivered again
        assert_eq!(consumer.0.load(Ordering::SeqCst), 3);
        assert_eq!(sqlite.checkpoint(STREAM_CONSUMER).await.unwrap(), last);
        poller.poll_once(&mut attempts, None).await.unwrap();
        assert_eq!(consumer.0.load(Ordering::SeqCst), 3);
    }

    /// A consumer that records the sequence numbers it was invoked with.
    #[derive(Debug, Default)]
    struct Recording(std::sync::Mutex<Vec<String>>);

    #[async_trait]
    impl Consumer for Recording {
        fn function(&self) -> &'static str {
            "recording"
        }

        async fn invoke(
            &self,
            event: &aws_lambda_events::dynamodb::Event,
            _now: DateTime<Utc>,
        ) -> DynamoDbEventResponse {
            let mut seen = self.0.lock().unwrap();
            for record in &event.records {
                seen.push(record.change.sequence_number.clone().unwrap_or_default());
            }
            DynamoDbEventResponse::default()
        }
    }

    #[tokio::test]
    async fn a_change_logged_by_this_process_wakes_an_idle_poller_without_waiting_for_a_poll() {
        // GIVEN an idle poller of the change log that would look again on its own only after an
        // hour
        let sqlite = Arc::new(SqliteStore::in_memory().unwrap());
        let mut source = Source::sqlite(Arc::clone(&sqlite), STREAM_CONSUMER)
            .await
            .unwrap();
        if let Source::Sqlite { fallback, .. } = &mut source {
            *fallback = Duration::from_secs(3600);
        }
        let consumer = Arc::new(Recording::default());
        let poller = Poller {
            source,
            consumer: Arc::clone(&consumer) as Arc<dyn Consumer>,
            settings: StreamSettings::default(),
            stream_arn: "arn:stream".into(),
            records: Arc::default(),
            idle: watch::Sender::new(false),
            metrics: Arc::default(),
        };
        let (_enabled, enabled_rx) = watch::channel(true);
        let (stop, stop_rx) = watch::channel(false);
        let running = poller.spawn(enabled_rx, stop_rx);
        tokio::time::sleep(Duration::from_millis(50)).await;

        // WHEN an order is placed through the store
        let view = fixtures::placed_order("order-1", &fixtures::customer(), fixtures::now());
        sqlite.create_order(&view).await.unwrap();

        // THEN the consumer gets both of its changes (long before the hour is up; the bound
        // below only keeps a broken wake-up from hanging the suite)
        let delivered = tokio::time::timeout(Duration::from_secs(10), async {
            while consumer.0.lock().unwrap().len() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(delivered.is_ok(), "the write did not wake the poller");
        stop.send_replace(true);
        running.await.unwrap();
    }
}
