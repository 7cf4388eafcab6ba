//! Reading the orders table's stream (`NEW_AND_OLD_IMAGES`) with the DynamoDB Streams API:
//! the conformance harness checks what the store recorded with it, and the local stack can
//! poll it where AWS would run the fan-out from an event source mapping.
//!
//! Only order and live rows become [`StreamChange`]s: records of other rows (the order-number
//! counters, `itemType=counter`) are **skipped**, as the deployed event source mapping's filter
//! drops them.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, OperationType, Record, Shard, ShardIteratorType,
};
use chrono::{DateTime, Utc};
use rnd_domain::OrderRecord;
use rnd_domain::ports::StoreError;

use crate::error::{backend, corrupt};

/// Consecutive empty `GetRecords` answers after which an open shard counts as read.
const MAX_EMPTY_POLLS: u32 = 3;
/// Pause after an empty `GetRecords` answer of an open shard.
const EMPTY_POLL_DELAY: Duration = Duration::from_millis(50);
/// Records per `GetRecords` (the API's maximum).
const RECORDS_PER_CALL: i32 = 1000;

/// What happened to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created (`INSERT`): no old image.
    Insert,
    /// Replaced or updated (`MODIFY`).
    Modify,
    /// Deleted (`REMOVE`): no new image.
    Remove,
}

/// One change of an order or live row, as the stream carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChange {
    /// The record's sequence number within its shard.
    pub sequence_number: String,
    /// Insert, modify or remove.
    pub event_name: ChangeKind,
    /// The item's partition key (`ORDER#{orderId}`).
    pub pk: String,
    /// The item's sort key (`ORDER` or `LIVE`).
    pub sk: String,
    /// The item before (`None` for an insert).
    pub old: Option<OrderRecord>,
    /// The item after (`None` for a removal).
    pub new: Option<OrderRecord>,
    /// When DynamoDB made the change, approximately (whole seconds in AWS).
    pub approximate_creation: Option<DateTime<Utc>>,
}

type Image = HashMap<String, AttributeValue>;

/// The `itemType` of an image.
fn item_type(image: &Image) -> Option<&str> {
    match image.get("itemType") {
        Some(AttributeValue::S(t)) => Some(t),
        _ => None,
    }
}

fn is_order_item(image: &Image) -> bool {
    matches!(item_type(image), Some("order" | "live"))
}

fn key_part(keys: Option<&Image>, name: &str) -> Option<String> {
    match keys?.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

impl StreamChange {
    /// The change a stream record carries. Returns `Ok(None)` for records of rows that are not
    /// order or live rows (counters) or that carry no image. Fails with
    /// [`StoreError::Corrupt`] when the record lacks its keys, sequence number or event name,
    /// or an order/live image does not parse as an [`OrderRecord`].
    pub fn from_record(record: &Record) -> Result<Option<StreamChange>, StoreError> {
        let Some(data) = record.dynamodb() else {
            return Err(corrupt("stream record", "no dynamodb data"));
        };
        let (old, new) = (data.old_image(), data.new_image());
        let images: Vec<&Image> = old.iter().chain(new.iter()).copied().collect();
        if images.is_empty() || !images.iter().all(|i| is_order_item(i)) {
            return Ok(None);
        }
        let sequence_number = data
            .sequence_number()
            .ok_or_else(|| corrupt("stream record", "no sequence number"))?
            .to_owned();
        let pk = key_part(data.keys(), "pk")
            .ok_or_else(|| corrupt(format_args!("stream record {sequence_number}"), "no pk"))?;
        let sk = key_part(data.keys(), "sk")
            .ok_or_else(|| corrupt(format_args!("stream record {sequence_number}"), "no sk"))?;
        let event_name = match record.event_name() {
            Some(OperationType::Insert) => ChangeKind::Insert,
            Some(OperationType::Modify) => ChangeKind::Modify,
            Some(OperationType::Remove) => ChangeKind::Remove,
            _ => {
                return Err(corrupt(
                    format_args!("stream record {sequence_number}"),
                    "unknown event name",
                ));
            }
        };
        let parse = |image: Option<&Image>, which: &str| {
            image
                .map(|i| {
                    serde_dynamo::from_item::<_, OrderRecord>(i.clone())
                        .map_err(|e| corrupt(format_args!("stream {which} image of {pk}/{sk}"), e))
                })
                .transpose()
        };
        let approximate_creation = data
            .approximate_creation_date_time()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
        Ok(Some(StreamChange {
            old: parse(old, "old")?,
            new: parse(new, "new")?,
            sequence_number,
            event_name,
            pk,
            sk,
            approximate_creation,
        }))
    }
}

/// Reads every record of the stream `stream_arn` from `TRIM_HORIZON`, shard by shard with
/// parents before their children, and returns the order and live changes in stream order
/// (records of other rows are skipped, see the module documentation).
///
/// A shard is read until `GetRecords` returns no records and no next iterator (a closed shard),
/// or returns no records three times in a row, 50 ms apart (an open shard: what is there has
/// been read). It does not wait for more: DynamoDB Local shows a record as soon as the write
/// returns, but in AWS a record can lag its write by up to about a second.
///
/// Fails with [`StoreError::Backend`] when a Streams request fails and
/// [`StoreError::Corrupt`] when a record does not parse.
pub async fn read_order_changes(
    streams: &Client,
    stream_arn: &str,
) -> Result<Vec<StreamChange>, StoreError> {
    let shards = parents_first(list_shards(streams, stream_arn).await?);
    let mut changes = Vec::new();
    for shard_id in shards {
        for record in read_shard(streams, stream_arn, &shard_id).await? {
            if let Some(change) = StreamChange::from_record(&record)? {
                changes.push(change);
            }
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

/// Every record of one shard from `TRIM_HORIZON` (see [`read_order_changes`] for when it
/// stops).
async fn read_shard(
    streams: &Client,
    stream_arn: &str,
    shard_id: &str,
) -> Result<Vec<Record>, StoreError> {
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(stream_arn)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .map_err(backend)?
        .shard_iterator;
    let mut records = Vec::new();
    let mut empty_polls = 0;
    while let Some(current) = iterator.take() {
        let out = streams
            .get_records()
            .shard_iterator(current)
            .limit(RECORDS_PER_CALL)
            .send()
            .await
            .map_err(backend)?;
        iterator = out.next_shard_iterator;
        let batch = out.records.unwrap_or_default();
        if batch.is_empty() {
            empty_polls += 1;
            if empty_polls >= MAX_EMPTY_POLLS {
                break;
            }
            if iterator.is_some() {
                tokio::time::sleep(EMPTY_POLL_DELAY).await;
            }
        } else {
            empty_polls = 0;
            records.extend(batch);
        }
    }
    Ok(records)
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
