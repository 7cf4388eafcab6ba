//! Reading the orders table's stream (`NEW_AND_OLD_IMAGES`) with the DynamoDB Streams API.
//!
//! - [`StreamTail`]: an incremental reader, as a Lambda event source mapping reads the stream
//!   (the local stack runs the fan-out on it): a shard iterator per shard, batches, commits,
//!   checkpoints kept in a [`CheckpointTable`] so that a restarted reader resumes where it
//!   stopped.
//! - [`read_order_changes`]: the whole stream at once (the conformance harness checks what the
//!   store recorded with it).
//!
//! Only order and live rows become [`StreamChange`]s: records of other rows (the order-number
//! counters, `itemType=counter`) are **skipped**, as the deployed event source mapping's filter
//! drops them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, OperationType, Record, Shard, ShardIteratorType,
};
use chrono::{DateTime, Utc};
pub use rnd_domain::ChangeKind;
use rnd_domain::change::{OrderChange, decode_change};
use rnd_domain::ports::StoreError;

use crate::error::{backend, corrupt, query_all, written};

/// Consecutive reads fetching nothing after which an open shard counts as read through.
const MAX_EMPTY_POLLS: u32 = 3;
/// Pause after an empty `GetRecords` answer of an open shard.
const EMPTY_POLL_DELAY: Duration = Duration::from_millis(50);
/// Records per `GetRecords` (the API's maximum), also the batch limit of
/// [`read_order_changes`].
const RECORDS_PER_CALL: usize = 1000;

/// One change of an order or live row, as the stream carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChange {
    /// The record's sequence number within its shard.
    pub sequence_number: String,
    /// The item's partition key (`ORDER#{orderId}`).
    pub pk: String,
    /// The item's sort key (`ORDER` or `LIVE`).
    pub sk: String,
    /// What happened, and the item before and after (decoded by the domain's one decoder).
    pub change: OrderChange,
    /// When DynamoDB made the change, approximately (whole seconds in AWS).
    pub approximate_creation: Option<DateTime<Utc>>,
}

type Image = HashMap<String, AttributeValue>;

fn key_part(keys: Option<&Image>, name: &str) -> Option<String> {
    match keys?.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// An image as the domain's decoder takes it (an empty item when the record has none).
fn image(image: Option<&Image>) -> serde_dynamo::Item {
    image.cloned().unwrap_or_default().into()
}

impl StreamChange {
    /// The change a stream record carries. Returns `Ok(None)` for records of rows that are not
    /// order or live rows (counters) or that carry no image. Fails with
    /// [`StoreError::Corrupt`] when the record lacks its keys, sequence number or event name,
    /// its event name disagrees with its images, or an order/live image does not parse as an
    /// [`OrderRecord`](rnd_domain::OrderRecord).
    pub fn from_record(record: &Record) -> Result<Option<StreamChange>, StoreError> {
        let Some(data) = record.dynamodb() else {
            return Err(corrupt("stream record", "no dynamodb data"));
        };
        let decoded = decode_change(&image(data.old_image()), &image(data.new_image()));
        let sequence_number = data
            .sequence_number()
            .ok_or_else(|| corrupt("stream record", "no sequence number"))?
            .to_owned();
        let what = || format!("stream record {sequence_number}");
        let change = match decoded {
            Ok(Some(change)) => change,
            Ok(None) => return Ok(None),
            Err(e) => return Err(corrupt(what(), e)),
        };
        let pk = key_part(data.keys(), "pk").ok_or_else(|| corrupt(what(), "no pk"))?;
        let sk = key_part(data.keys(), "sk").ok_or_else(|| corrupt(what(), "no sk"))?;
        let kind = match record.event_name() {
            Some(OperationType::Insert) => ChangeKind::Insert,
            Some(OperationType::Modify) => ChangeKind::Modify,
            Some(OperationType::Remove) => ChangeKind::Remove,
            _ => return Err(corrupt(what(), "unknown event name")),
        };
        if kind != change.kind {
            return Err(corrupt(what(), "event name disagrees with its images"));
        }
        let approximate_creation = data
            .approximate_creation_date_time()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
        Ok(Some(StreamChange {
            sequence_number,
            pk,
            sk,
            change,
            approximate_creation,
        }))
    }
}

/// Reads every record of the stream `stream_arn` from `TRIM_HORIZON`, shard by shard with
/// parents before their children, and returns the order and live changes in stream order
/// (records of other rows are skipped, see the module documentation). Nothing is
/// checkpointed: it is a [`StreamTail`] from `TRIM_HORIZON` with checkpoints in memory only,
/// read until it has caught up.
///
/// It has caught up when every shard is closed and read, or when three reads in a row, 50 ms
/// apart, fetch no record at all (what is there has been read). It does not wait for more: the
/// test database (moto) shows a record as soon as the write returns, but in AWS a record can
/// lag its write by up to about a second.
///
/// Fails with [`StoreError::Backend`] when a Streams request fails and
/// [`StoreError::Corrupt`] when a record does not parse.
pub async fn read_order_changes(
    streams: &Client,
    stream_arn: &str,
) -> Result<Vec<StreamChange>, StoreError> {
    let mut tail = StreamTail::start(
        streams.clone(),
        stream_arn,
        TailOptions::in_memory(StartingPosition::TrimHorizon),
    )
    .await?;
    let mut changes = Vec::new();
    let mut empty_reads = 0;
    loop {
        let batch = tail.next_batch(RECORDS_PER_CALL).await?;
        let fetched = tail.last_fetched;
        if !batch.is_empty() {
            let count = batch.len();
            changes.extend(batch);
            tail.commit(count).await?;
        }
        if tail.all_shards_ended() {
            break;
        }
        if fetched == 0 {
            empty_reads += 1;
            if empty_reads >= MAX_EMPTY_POLLS {
                break;
            }
            tokio::time::sleep(EMPTY_POLL_DELAY).await;
        } else {
            empty_reads = 0;
        }
    }
    tracing::debug!(count = changes.len(), "read order changes");
    Ok(changes)
}
/// Every shard of the stream (`DescribeStream`, all pages).
async fn list_shards(streams: &Client, stream_arn: &str) -> Result<Vec<Shard>, StoreError> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = streams
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .map_err(backend)?;
        let Some(description) = out.stream_description else {
            break;
        };
        shards.extend(description.shards.unwrap_or_default());
        match description.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => break,
        }
    }
    Ok(shards)
}

/// Sequence numbers are decimal strings of varying length: compare them as numbers.
fn sequence_order(shard: &Shard) -> (usize, String) {
    let start = shard
        .sequence_number_range()
        .and_then(|r| r.starting_sequence_number())
        .unwrap_or_default();
    (start.len(), start.to_owned())
}

/// Shard ids with every parent before its children; shards whose parent is not listed (it has
/// been trimmed) come first, each group by starting sequence number.
fn parents_first(mut shards: Vec<Shard>) -> Vec<String> {
    shards.sort_by_key(sequence_order);
    let listed: std::collections::HashSet<String> = shards
        .iter()
        .filter_map(|s| s.shard_id().map(str::to_owned))
        .collect();
    let mut done: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut ordered = Vec::new();
    while !shards.is_empty() {
        let before = shards.len();
        shards.retain(|shard| {
            let Some(id) = shard.shard_id() else {
                return false;
            };
            let ready = shard
                .parent_shard_id()
                .is_none_or(|p| !listed.contains(p) || done.contains(p));
            if ready {
                done.insert(id.to_owned());
                ordered.push(id.to_owned());
            }
            !ready
        });
        if shards.len() == before {
            // A parent cycle cannot happen; read what is left rather than loop forever.
            ordered.extend(
                shards
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned)),
            );
            break;
        }
    }
    ordered
}

/// Where a consumer starts reading the shards that were there when it first started (the event
/// source mapping's `StartingPosition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// From the oldest record still in the stream.
    TrimHorizon,
    /// After the newest record: only what is written from now on.
    Latest,
}

/// How a [`StreamTail`] starts and where it keeps its checkpoints.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Where the shards that exist when the consumer *first* starts are read from. Shards with
    /// a checkpoint always resume after it; shards without one that appear later (or after a
    /// restart of a consumer that has started before) are read from `TRIM_HORIZON`, or their
    /// first records would be lost.
    pub starting_position: StartingPosition,
    /// Durable checkpoints, and the consumer name they are kept under; `None` keeps them in
    /// memory only (nothing survives the tail).
    pub checkpoints: Option<(CheckpointTable, String)>,
    /// How often `DescribeStream` is asked for new shards (also asked whenever a shard closes,
    /// and on every read while no open shard is known).
    pub describe_interval: Duration,
}

impl TailOptions {
    /// Checkpoints in memory only, from `starting_position`.
    pub fn in_memory(starting_position: StartingPosition) -> Self {
        Self {
            starting_position,
            checkpoints: None,
            describe_interval: DESCRIBE_INTERVAL,
        }
    }

    /// Checkpoints of `consumer` in `table`, from `starting_position` on the consumer's first
    /// start.
    pub fn durable(
        starting_position: StartingPosition,
        table: CheckpointTable,
        consumer: impl Into<String>,
    ) -> Self {
        Self {
            starting_position,
            checkpoints: Some((table, consumer.into())),
            describe_interval: DESCRIBE_INTERVAL,
        }
    }
}

/// How often a tail asks `DescribeStream` for new shards, by default.
pub const DESCRIBE_INTERVAL: Duration = Duration::from_secs(10);
/// Width the sequence numbers are zero-padded to in the checkpoint table, so that comparing
/// the padded strings compares the numbers (DynamoDB Streams' are at most 40 digits).
const SEQUENCE_WIDTH: usize = 48;
/// The sort key of a consumer's own row in the checkpoint table (shard ids never start with
/// `#`): its presence means the consumer has started before.
const CONSUMER_ROW: &str = "#CONSUMER";
/// Attributes of the checkpoint table.
const SEQUENCE_NUMBER: &str = "sequenceNumber";
const SEQUENCE_ORDER: &str = "sequenceOrder";
const UPDATED_AT: &str = "updatedAt";

/// The zero-padded form of a sequence number, or `Corrupt` when it is not one.
fn sequence_key(sequence_number: &str) -> Result<String, StoreError> {
    if sequence_number.is_empty()
        || sequence_number.len() > SEQUENCE_WIDTH
        || !sequence_number.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(corrupt(
            format_args!("sequence number {sequence_number:?}"),
            "not a decimal number of at most 48 digits",
        ));
    }
    Ok(format!("{sequence_number:0>SEQUENCE_WIDTH$}"))
}

/// Whether sequence number `a` comes after `b` (decimal strings of varying length).
fn is_after(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

/// The checkpoint table of a stream's consumers, like the Kinesis Client Library's lease table:
/// one row per consumer and shard (`pk` = consumer name, `sk` = shard id) holding the sequence
/// number of the last record the consumer is done with (`sequenceNumber`), plus one row per
/// consumer (`sk` = `#CONSUMER`) saying it has started. Writes are conditional: a checkpoint
/// only ever moves forward.
#[derive(Debug, Clone)]
pub struct CheckpointTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// What a consumer has saved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerCheckpoints {
    /// Whether the consumer has started before (its starting position is used only once).
    pub started: bool,
    /// The last sequence number done with, per shard id.
    pub shards: HashMap<String, String>,
}

impl CheckpointTable {
    /// The table `table`, using `client`. Makes no request (see [`CheckpointTable::create`]).
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The conventional name of the checkpoint table of the orders table `orders_table`:
    /// `{orders_table}-stream-checkpoints`.
    pub fn name_for(orders_table: &str) -> String {
        format!("{orders_table}-stream-checkpoints")
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.table
    }

    /// Creates the table (on demand, `pk`/`sk` strings) when it is missing and waits until it
    /// is ACTIVE. Fails with [`StoreError::Backend`] when a request fails.
    pub async fn create(&self) -> Result<(), StoreError> {
        let request = crate::tables::keyed_table(&self.client, &self.table)?;
        crate::tables::create_if_missing(request, &self.table).await?;
        crate::tables::wait_until_active(&self.client, &self.table).await
    }

    /// Everything `consumer` has saved (strongly consistent). Fails with
    /// [`StoreError::Backend`] when the query fails and [`StoreError::Corrupt`] when a row
    /// lacks its sequence number.
    pub async fn load(&self, consumer: &str) -> Result<ConsumerCheckpoints, StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue as Av;
        let mut saved = ConsumerCheckpoints::default();
        let items = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :consumer")
                .expression_attribute_values(":consumer", Av::S(consumer.to_owned()))
                .consistent_read(true),
        )
        .await?;
        for item in items {
            let Some(Av::S(sk)) = item.get(crate::keys::SK) else {
                return Err(corrupt(format_args!("checkpoint of {consumer}"), "no sk"));
            };
            if sk == CONSUMER_ROW {
                saved.started = true;
                continue;
            }
            let Some(Av::S(sequence)) = item.get(SEQUENCE_NUMBER) else {
                return Err(corrupt(
                    format_args!("checkpoint of {consumer} in {sk}"),
                    "no sequenceNumber",
                ));
            };
            saved.shards.insert(sk.clone(), sequence.clone());
        }
        Ok(saved)
    }

    /// Saves that `consumer` is done with `shard_id` up to `sequence_number`. Saving the same
    /// checkpoint again is fine; one behind the saved one fails with [`StoreError::Conflict`]
    /// (another reader got further: this one must not move it back). Fails with
    /// [`StoreError::Backend`] when the write fails.
    pub async fn save(
        &self,
        consumer: &str,
        shard_id: &str,
        sequence_number: &str,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue as Av;
        let order = sequence_key(sequence_number)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(crate::keys::PK, Av::S(consumer.to_owned()))
            .key(crate::keys::SK, Av::S(shard_id.to_owned()))
            .update_expression("SET #seq = :seq, #order = :order, #at = :at")
            .condition_expression("attribute_not_exists(#order) OR #order <= :order")
            .expression_attribute_names("#seq", SEQUENCE_NUMBER)
            .expression_attribute_names("#order", SEQUENCE_ORDER)
            .expression_attribute_names("#at", UPDATED_AT)
            .expression_attribute_values(":seq", Av::S(sequence_number.to_owned()))
            .expression_attribute_values(":order", Av::S(order))
            .expression_attribute_values(":at", Av::S(Utc::now().to_rfc3339()))
            .send()
            .await;
        if written(result)? {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    /// Records that `consumer` has started (once; later calls change nothing).
    async fn mark_started(&self, consumer: &str) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue as Av;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(crate::keys::PK, Av::S(consumer.to_owned()))
            .item(crate::keys::SK, Av::S(CONSUMER_ROW.to_owned()))
            .item(UPDATED_AT, Av::S(Utc::now().to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        written(result).map(|_| ())
    }
}

/// What a tail knows of one shard.
#[derive(Debug, Default)]
struct ShardState {
    /// The parent shard, if any (read to its end before this one).
    parent: Option<String>,
    /// Where the next `GetRecords` reads; `None` until one is needed (or after it expired).
    iterator: Option<String>,
    /// The last record fetched from the shard (delivered, buffered or skipped).
    read_through: Option<String>,
    /// The last record committed (and saved, when the checkpoints are durable).
    checkpoint: Option<String>,
    /// The shard is closed and every record of it has been fetched.
    ended: bool,
}

/// An incremental reader of the orders table's stream, as a Lambda event source mapping or the
/// Kinesis Client Library reads it:
///
/// - it keeps a shard iterator per open shard and reads every shard from where it left off;
///   it asks `DescribeStream` for new shards every `describe_interval`, whenever a shard
///   closes and while it knows no open shard, and reads a parent shard to its end before its
///   children;
/// - a shard with a checkpoint resumes after it (`AFTER_SEQUENCE_NUMBER`); the shards present
///   when a consumer first starts begin at its [`StartingPosition`]; any other shard (one that
///   appeared later) from `TRIM_HORIZON`;
/// - an iterator that expired (`ExpiredIteratorException`) or points at trimmed data
///   (`TrimmedDataAccessException`) is replaced by one after the last record fetched from the
///   shard, else after its checkpoint; when that position itself has been trimmed away, the
///   shard continues from `TRIM_HORIZON` (the trimmed records are lost, and logged as such);
/// - [`StreamTail::next_batch`] returns up to `limit` changes in stream order, the same ones
///   again until [`StreamTail::commit`] marks the first `count` of them done; only committed
///   changes are checkpointed (durably, in a [`CheckpointTable`], when configured).
///
/// `LATEST` is implemented as "everything already in the shard is done": on the consumer's
/// first start each open shard is read through once and its last sequence number checkpointed
/// (a closed shard is checkpointed at its end), so that a later restart resumes exactly there
/// rather than at a new `LATEST` that would skip what was written while it was down. That read
/// costs what the open shards hold, once per consumer, never again on later starts.
///
/// Records of rows that are not order or live rows are skipped (see the module documentation)
/// and checkpointed with the changes around them.
pub struct StreamTail {
    streams: Client,
    stream_arn: String,
    options: TailOptions,
    /// What the consumer had saved when the tail started (for shards discovered later).
    saved: HashMap<String, String>,
    shards: HashMap<String, ShardState>,
    /// Shard ids, parents first.
    order: Vec<String>,
    described_at: Instant,
    /// Changes fetched and not committed yet, in stream order, with their shard.
    buffer: VecDeque<(String, StreamChange)>,
    /// Records (changes or skipped) fetched by the last `next_batch`.
    last_fetched: usize,
}

impl std::fmt::Debug for StreamTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTail")
            .field("stream_arn", &self.stream_arn)
            .field("shards", &self.shards.len())
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl StreamTail {
    /// Starts tailing `stream_arn`: loads the consumer's checkpoints (when durable), lists the
    /// shards and, on the consumer's first start at [`StartingPosition::Latest`], reads through
    /// what the open shards already hold and checkpoints it.
    ///
    /// Fails with [`StoreError::Backend`] when a request fails and [`StoreError::Corrupt`] when
    /// a saved checkpoint does not parse.
    pub async fn start(
        streams: Client,
        stream_arn: &str,
        options: TailOptions,
    ) -> Result<Self, StoreError> {
        let saved = match &options.checkpoints {
            Some((table, consumer)) => table.load(consumer).await?,
            None => ConsumerCheckpoints::default(),
        };
        let mut tail = StreamTail {
            streams,
            stream_arn: stream_arn.to_owned(),
            options,
            saved: saved.shards,
            shards: HashMap::new(),
            order: Vec::new(),
            described_at: Instant::now(),
            buffer: VecDeque::new(),
            last_fetched: 0,
        };
        let listed = tail.describe().await?;
        if !saved.started && tail.options.starting_position == StartingPosition::Latest {
            for shard in &listed {
                let Some(id) = shard.shard_id() else { continue };
                if tail.shards.get(id).is_some_and(|s| s.checkpoint.is_some()) {
                    continue;
                }
                let end = shard
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number());
                match end {
                    Some(end) => {
                        let end = end.to_owned();
                        tail.save(id, &end).await?;
                        if let Some(state) = tail.shards.get_mut(id) {
                            state.ended = true;
                        }
                    }
                    None => tail.read_through(id).await?,
                }
            }
        }
        if let Some((table, consumer)) = &tail.options.checkpoints {
            table.mark_started(consumer).await?;
        }
        tracing::debug!(
            stream = %tail.stream_arn,
            shards = tail.shards.len(),
            resumed = saved.started,
            "stream tail started"
        );
        Ok(tail)
    }

    /// Up to `limit` changes not committed yet, oldest first: the ones returned before and not
    /// committed, then new ones. Reads each shard that is ready (open, its parent read) at most
    /// once per call, and only while fewer than `limit` changes are buffered.
    ///
    /// Fails with [`StoreError::Backend`] when a request fails and [`StoreError::Corrupt`] when
    /// a record does not parse (the shard then stops before that record).
    pub async fn next_batch(&mut self, limit: usize) -> Result<Vec<StreamChange>, StoreError> {
        self.last_fetched = 0;
        // With no open shard known (none yet: a stream may get its first shard only with its
        // first write), there is nothing to read but new shards: look for them every time.
        if self.all_shards_ended() || self.described_at.elapsed() >= self.options.describe_interval
        {
            self.describe().await?;
        }
        let mut read: HashSet<String> = HashSet::new();
        loop {
            let mut closed = false;
            for id in self.order.clone() {
                if self.buffer.len() >= limit {
                    break;
                }
                if read.contains(&id) || !self.is_ready(&id) {
                    continue;
                }
                read.insert(id.clone());
                closed |= self.fetch(&id).await?;
            }
            if !closed || self.buffer.len() >= limit {
                break;
            }
            // A shard closed: its children (maybe new to us) can be read now.
            self.describe().await?;
        }
        Ok(self
            .buffer
            .iter()
            .take(limit)
            .map(|(_, change)| change.clone())
            .collect())
    }

    /// Marks the first `count` changes of the last batch done, and checkpoints each shard after
    /// its last change done (or, when none of its changes is left waiting, after the last record
    /// fetched from it). Later changes of the batch are returned again by the next
    /// [`StreamTail::next_batch`].
    ///
    /// Fails with [`StoreError::Conflict`] when a saved checkpoint is already further (another
    /// reader of the same consumer got there), and [`StoreError::Backend`] when saving fails.
    pub async fn commit(&mut self, count: usize) -> Result<(), StoreError> {
        let mut done: HashMap<String, String> = HashMap::new();
        for _ in 0..count.min(self.buffer.len()) {
            if let Some((shard, change)) = self.buffer.pop_front() {
                done.insert(shard, change.sequence_number);
            }
        }
        for (id, state) in &self.shards {
            let waiting = self.buffer.iter().any(|(shard, _)| shard == id);
            if let (false, Some(through)) = (waiting, &state.read_through) {
                done.insert(id.clone(), through.clone());
            }
        }
        for (id, sequence) in done {
            let behind = self.shards.get(&id).is_some_and(|s| {
                s.checkpoint
                    .as_deref()
                    .is_none_or(|saved| is_after(&sequence, saved))
            });
            if behind {
                self.save(&id, &sequence).await?;
            }
        }
        Ok(())
    }

    /// Whether every known shard is closed and read (nothing more can come from them).
    pub fn all_shards_ended(&self) -> bool {
        self.shards.values().all(|s| s.ended)
    }

    /// Saves the checkpoint of `shard_id` (durably when configured) and remembers it.
    async fn save(&mut self, shard_id: &str, sequence: &str) -> Result<(), StoreError> {
        if let Some((table, consumer)) = &self.options.checkpoints {
            table.save(consumer, shard_id, sequence).await?;
        }
        if let Some(state) = self.shards.get_mut(shard_id) {
            state.checkpoint = Some(sequence.to_owned());
        }
        Ok(())
    }

    /// Lists the shards and takes up the new ones; returns the listing.
    async fn describe(&mut self) -> Result<Vec<Shard>, StoreError> {
        let listed = list_shards(&self.streams, &self.stream_arn).await?;
        for shard in &listed {
            let Some(id) = shard.shard_id() else { continue };
            self.shards.entry(id.to_owned()).or_insert_with(|| {
                let checkpoint = self.saved.get(id).cloned();
                tracing::debug!(shard = id, ?checkpoint, "taking up a shard");
                ShardState {
                    parent: shard.parent_shard_id().map(str::to_owned),
                    checkpoint,
                    ..ShardState::default()
                }
            });
        }
        self.order = parents_first(listed.clone());
        self.described_at = Instant::now();
        Ok(listed)
    }

    /// Whether `id` can be read: open (or not read to its end yet) and its parent, if still
    /// known, read to its end.
    fn is_ready(&self, id: &str) -> bool {
        let Some(state) = self.shards.get(id) else {
            return false;
        };
        !state.ended
            && state
                .parent
                .as_deref()
                .and_then(|p| self.shards.get(p))
                .is_none_or(|parent| parent.ended)
    }

    /// A fresh iterator for `id`: after the last record fetched or committed, else from
    /// `TRIM_HORIZON`. `None` when the shard no longer exists.
    async fn iterator(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        let state = self.shards.get(id);
        let after = state.and_then(|s| s.read_through.clone().or_else(|| s.checkpoint.clone()));
        let request = |kind: ShardIteratorType, after: Option<String>| {
            self.streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(id)
                .shard_iterator_type(kind)
                .set_sequence_number(after)
                .send()
        };
        let result = match after {
            Some(sequence) => {
                match request(
                    ShardIteratorType::AfterSequenceNumber,
                    Some(sequence.clone()),
                )
                .await
                {
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_trimmed_data_access_exception()) =>
                    {
                        tracing::error!(
                            shard = id,
                            after = %sequence,
                            "STREAM RECORDS LOST: the shard was trimmed past the checkpoint; \
                             continuing from TRIM_HORIZON"
                        );
                        request(ShardIteratorType::TrimHorizon, None).await
                    }
                    other => other,
                }
            }
            None => request(ShardIteratorType::TrimHorizon, None).await,
        };
        match result {
            Ok(out) => Ok(out.shard_iterator),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                tracing::warn!(shard = id, "the shard no longer exists");
                Ok(None)
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// One `GetRecords` of shard `id`; buffers its changes. Returns whether the shard ended.
    ///
    /// An iterator that expired (`ExpiredIteratorException`) or whose position was trimmed
    /// (`TrimmedDataAccessException`) is replaced once by a fresh one after the last record
    /// fetched or committed (see [`StreamTail::iterator`]).
    async fn fetch(&mut self, id: &str) -> Result<bool, StoreError> {
        let mut renewed = false;
        let out = loop {
            let current = match self.shards.get_mut(id).and_then(|s| s.iterator.take()) {
                Some(iterator) => Some(iterator),
                None => self.iterator(id).await?,
            };
            let Some(current) = current else {
                return Ok(self.end(id));
            };
            let result = self
                .streams
                .get_records()
                .shard_iterator(current.clone())
                .limit(RECORDS_PER_CALL as i32)
                .send()
                .await;
            match result {
                Ok(out) => break out,
                Err(e)
                    if e.as_service_error().is_some_and(|e| {
                        e.is_expired_iterator_exception() || e.is_trimmed_data_access_exception()
                    }) =>
                {
                    tracing::debug!(
                        shard = id,
                        error = &e as &dyn std::error::Error,
                        "shard iterator unusable; getting a new one"
                    );
                    if renewed {
                        return Err(backend(e));
                    }
                    renewed = true;
                }
                Err(e) => {
                    if let Some(state) = self.shards.get_mut(id) {
                        state.iterator = Some(current);
                    }
                    return Err(backend(e));
                }
            }
        };
        let records = out.records.unwrap_or_default();
        self.last_fetched += records.len();
        for record in &records {
            let sequence = record
                .dynamodb()
                .and_then(|d| d.sequence_number())
                .map(str::to_owned);
            // A record that does not parse stops the shard before it: the next read re-gets an
            // iterator after the last good record and meets it again.
            let change = StreamChange::from_record(record)?;
            if let (Some(state), Some(sequence)) = (self.shards.get_mut(id), sequence) {
                state.read_through = Some(sequence);
            }
            if let Some(change) = change {
                self.buffer.push_back((id.to_owned(), change));
            }
        }
        match out.next_shard_iterator {
            Some(next) => {
                if let Some(state) = self.shards.get_mut(id) {
                    state.iterator = Some(next);
                }
                Ok(false)
            }
            None => Ok(self.end(id)),
        }
    }

    /// Marks `id` read to its end; returns `true`.
    fn end(&mut self, id: &str) -> bool {
        if let Some(state) = self.shards.get_mut(id) {
            state.ended = true;
            state.iterator = None;
        }
        tracing::debug!(shard = id, "shard read to its end");
        true
    }

    /// Reads open shard `id` from `TRIM_HORIZON` to its current end without delivering
    /// anything, and checkpoints its last record: [`StartingPosition::Latest`] on a
    /// consumer's first start.
    async fn read_through(&mut self, id: &str) -> Result<(), StoreError> {
        let mut empty_reads = 0;
        loop {
            self.last_fetched = 0;
            let closed = self.fetch(id).await?;
            self.buffer.retain(|(shard, _)| shard != id);
            if closed {
                break;
            }
            if self.last_fetched > 0 {
                empty_reads = 0;
                continue;
            }
            empty_reads += 1;
            if empty_reads >= MAX_EMPTY_POLLS {
                break;
            }
            tokio::time::sleep(EMPTY_POLL_DELAY).await;
        }
        self.last_fetched = 0;
        let through = self.shards.get(id).and_then(|s| s.read_through.clone());
        if let Some(through) = through {
            self.save(id, &through).await?;
        }
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::SequenceNumberRange;

    fn shard(id: &str, parent: Option<&str>, start: &str) -> Shard {
        Shard::builder()
            .shard_id(id)
            .set_parent_shard_id(parent.map(str::to_owned))
            .sequence_number_range(
                SequenceNumberRange::builder()
                    .starting_sequence_number(start)
                    .build(),
            )
            .build()
    }

    #[test]
    fn parents_come_before_children() {
        let shards = vec![
            shard("child", Some("parent"), "9"),
            shard("grandchild", Some("child"), "100"),
            shard("parent", Some("trimmed"), "10"),
            shard("other", None, "5"),
        ];
        assert_eq!(
            parents_first(shards),
            ["other", "parent", "child", "grandchild"]
        );
    }

    #[test]
    fn counter_records_are_skipped() {
        let image = HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S("COUNTER#orderNumber#20260101".into()),
            ),
            ("itemType".to_owned(), AttributeValue::S("counter".into())),
        ]);
        let record = Record::builder()
            .event_name(OperationType::Insert)
            .dynamodb(
                aws_sdk_dynamodbstreams::types::StreamRecord::builder()
                    .set_new_image(Some(image))
                    .sequence_number("1")
                    .build(),
            )
            .build();
        assert_eq!(StreamChange::from_record(&record).unwrap(), None);
    }
}
