//! What both consumers of the orders table's stream (the fan-out and the push consumer) do the
//! same way: decode a record with the domain's one decoder (a record that does not parse is
//! logged by its ids and skipped), answer Lambda's partial batch response, back off with full
//! jitter, and render their counts as one CloudWatch Embedded Metric Format line.

use std::time::Duration;

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use rnd_domain::change::{OrderChange, decode_change};
use serde_dynamo::{AttributeValue, Item};

/// The CloudWatch namespace of the consumers' metrics.
pub const METRICS_NAMESPACE: &str = "RndRealtime";

/// The `S` value of attribute `name`.
fn string_attribute<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// The change a record carries: `Some(None)` for a record of another row (a counter, a
/// profile), `None` when an order or live image does not parse.
///
/// Such a record is logged (its ids only, never the item) and skipped, and the batch does
/// **not** fail for it: it would fail the same way on every redelivery and block the shard
/// until the record expires, holding back every later change of every order on it.
pub(crate) fn record_change(record: &EventRecord) -> Option<Option<OrderChange>> {
    let change = &record.change;
    match decode_change(&change.old_image, &change.new_image) {
        Ok(decoded) => Some(decoded),
        Err(e) => {
            tracing::error!(
                event_id = %record.event_id,
                sequence_number = change.sequence_number.as_deref().unwrap_or(""),
                pk = string_attribute(&change.keys, "pk").unwrap_or(""),
                sk = string_attribute(&change.keys, "sk").unwrap_or(""),
                // Not the source: a parser's message can quote the item's data.
                error = %e,
                "stream image does not parse as an order or live item; record skipped"
            );
            None
        }
    }
}

/// `batchItemFailures` naming the earliest of the `failed` records (an empty identifier,
/// which makes Lambda retry the whole batch, when it has no sequence number); none when
/// nothing failed. Lambda checkpoints before it and redelivers from there.
pub(crate) fn partial_failure(
    records: &[EventRecord],
    failed: impl IntoIterator<Item = usize>,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    if let Some(earliest) = failed.into_iter().min() {
        let record = &records[earliest];
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(record.change.sequence_number.clone().unwrap_or_default());
        tracing::warn!(
            event_id = %record.event_id,
            sequence_number = failure.item_identifier.as_deref().unwrap_or(""),
            "reporting a partial batch failure; Lambda retries from this record"
        );
        response.batch_item_failures.push(failure);
    }
    response
}

/// The pause before retry `retry` (1 for the first): uniformly random in
/// `[0, min(max, base · 2^(retry-1))]` ("full jitter").
pub(crate) fn full_jitter(base: Duration, max: Duration, retry: u32) -> Duration {
    let cap = base
        .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
        .min(max);
    let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(fastrand::u64(0..=cap_ms))
}

/// One EMF line for `function` at `at`: each count (unit `Count`) and each of `timings`
/// (unit `Milliseconds`), all declared, under namespace `RndRealtime`, dimension `Function`.
pub(crate) fn emf_line(
    function: &str,
    counts: &[(String, u64)],
    timings: &[(&str, i64)],
    at: DateTime<Utc>,
) -> String {
    let mut definitions: Vec<serde_json::Value> = Vec::new();
    let mut line = serde_json::Map::new();
    line.insert("Function".into(), function.into());
    for (name, value) in counts {
        definitions.push(serde_json::json!({"Name": name, "Unit": "Count"}));
        line.insert(name.clone(), (*value).into());
    }
    for (name, value) in timings {
        definitions.push(serde_json::json!({"Name": name, "Unit": "Milliseconds"}));
        line.insert((*name).into(), (*value).into());
    }
    line.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }],
        }),
    );
    serde_json::Value::Object(line).to_string()
}
