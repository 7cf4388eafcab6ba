//! The test harness's account of moto (`testing::as_dynamodb_writes_them`,
//! `testing::stream_record_size`; `docs/moto.md`): stream records taken through it read as
//! DynamoDB writes them, and a stream DynamoDB wrote passes unchanged. Against the test
//! database (`DYNAMODB_ENDPOINT`, see `tests/conformance.rs`) where a real stream is needed.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record, StreamRecord};
use chrono::NaiveDate;
use rnd_domain::ports::OrderStore;
use rnd_store_dynamodb::testing;

type Image = HashMap<String, AttributeValue>;

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn keys(pk: &str) -> Image {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s("COUNTER"))])
}

/// A stream record of `event` on the item `pk`, with `new` as its new image.
fn record(event: OperationType, pk: &str, new: Option<Image>, sequence: &str) -> Record {
    let data = StreamRecord::builder()
        .set_keys(Some(keys(pk)))
        .set_new_image(new)
        .sequence_number(sequence)
        .build();
    Record::builder().event_name(event).dynamodb(data).build()
}

fn counter(pk: &str, value: &str) -> Image {
    let mut image = keys(pk);
    image.insert("itemType".into(), s("counter"));
    image.insert("value".into(), AttributeValue::N(value.into()));
    image
}

fn sequences(records: &[Record]) -> Vec<&str> {
    records
        .iter()
        .filter_map(|r| r.dynamodb().and_then(|d| d.sequence_number()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_created_by_update_item_is_one_insert_of_the_whole_item_as_dynamodb_writes_it() {
    // GIVEN a fresh orders table, and the day's order-number counter created by UpdateItem
    let store = testing::fresh_store().await;
    let day = NaiveDate::from_ymd_opt(2026, 3, 14).expect("a date");
    store.next_order_number(day).await.expect("order number");

    // WHEN its stream is read as DynamoDB writes it
    let records = testing::as_dynamodb_writes_them(testing::raw_stream(&store).await.1);

    // THEN there is one record: the INSERT of the whole counter
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.event_name(), Some(&OperationType::Insert));
    let image = record
        .dynamodb()
        .and_then(|d| d.new_image())
        .expect("a new image");
    assert_eq!(image.get("itemType"), Some(&s("counter")));
    assert_eq!(image.get("value"), Some(&AttributeValue::N("1".into())));
}

#[test]
fn a_stream_as_dynamodb_writes_it_passes_unchanged() {
    // GIVEN records as DynamoDB writes them: two counters inserted whole, one updated, and an
    // item whose only attributes are its keys, inserted and then modified
    let records = vec![
        record(OperationType::Insert, "A", Some(counter("A", "1")), "1"),
        record(OperationType::Insert, "B", Some(counter("B", "1")), "2"),
        record(OperationType::Modify, "A", Some(counter("A", "2")), "3"),
        record(OperationType::Insert, "C", Some(keys("C")), "4"),
        record(OperationType::Modify, "C", Some(counter("C", "1")), "5"),
    ];
    // WHEN they are taken as DynamoDB writes them
    let kept = testing::as_dynamodb_writes_them(records.clone());
    // THEN nothing is dropped
    assert_eq!(kept, records);
}

#[test]
fn only_a_keys_only_insert_that_the_next_record_inserts_again_is_dropped() {
    // GIVEN moto's two INSERTs for an item created by UpdateItem, between other records, and a
    // keys-only INSERT followed by an INSERT of another item
    let records = vec![
        record(OperationType::Insert, "A", Some(keys("A")), "1"),
        record(OperationType::Insert, "A", Some(counter("A", "1")), "2"),
        record(OperationType::Insert, "B", Some(keys("B")), "3"),
        record(OperationType::Insert, "C", Some(counter("C", "1")), "4"),
    ];
    // WHEN they are taken as DynamoDB writes them
    let kept = testing::as_dynamodb_writes_them(records);
    // THEN only A's keys-only INSERT is gone
    assert_eq!(sequences(&kept), ["2", "3", "4"]);
}

#[test]
fn a_records_size_is_its_keys_and_images_as_dynamodb_meters_them() {
    // GIVEN a counter's INSERT: keys pk "A" (2 + 1) and sk "COUNTER" (2 + 7), and the image's
    // itemType "counter" (8 + 7) and value 1 (5 + 2) besides the keys again
    let data = record(OperationType::Insert, "A", Some(counter("A", "1")), "1")
        .dynamodb
        .expect("data");
    // WHEN it is sized
    // THEN it is what DynamoDB reports: 12 for the keys, 12 + 15 + 7 for the image
    assert_eq!(testing::stream_record_size(&data), 12 + 12 + 15 + 7);
}
