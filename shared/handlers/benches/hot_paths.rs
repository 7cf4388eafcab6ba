//! Micro-benchmarks of the fan-out's hot path: event derivation from DynamoDB stream records.
//!
//! Each benchmark runs the path the `stream-fanout` function takes for its records, with the
//! real fixtures in `events/stream/`: the stream event's JSON text is parsed into
//! `aws_lambda_events`' [`Event`] (what the Lambda runtime does with the payload), then each
//! record goes through [`record_events`] (step 1 of [`fan_out`](rnd_handlers::fanout::fan_out):
//! `serde_dynamo` images → `OrderRecord` → `derive_events`).
//!
//! - `derive/<fixture>`: one record, JSON text → events;
//! - `derive_parsed/<fixture>`: one already parsed record → events (no JSON parsing);
//! - `derive_batch/100_records`: a 100-record batch (the fixtures' records in turn) JSON text
//!   → the events of every record.
//!
//! `cargo bench -p rnd-handlers --bench hot_paths` prints the figures (`make bench-micro`);
//! under `cargo test --all-targets` each benchmark runs once, as a check that it still works.

use std::hint::black_box;

use aws_lambda_events::dynamodb::Event;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rnd_handlers::fanout::record_events;

/// Every stream fixture, by name.
const FIXTURES: [(&str, &str); 15] = [
    (
        "order-insert",
        include_str!("../../../events/stream/order-insert.json"),
    ),
    (
        "order-payment-confirmed",
        include_str!("../../../events/stream/order-payment-confirmed.json"),
    ),
    (
        "order-accepted",
        include_str!("../../../events/stream/order-accepted.json"),
    ),
    (
        "order-ready-for-pickup",
        include_str!("../../../events/stream/order-ready-for-pickup.json"),
    ),
    (
        "order-assigned-to-driver",
        include_str!("../../../events/stream/order-assigned-to-driver.json"),
    ),
    (
        "order-picked-up",
        include_str!("../../../events/stream/order-picked-up.json"),
    ),
    (
        "order-in-transit",
        include_str!("../../../events/stream/order-in-transit.json"),
    ),
    (
        "order-delivered",
        include_str!("../../../events/stream/order-delivered.json"),
    ),
    (
        "order-cancelled",
        include_str!("../../../events/stream/order-cancelled.json"),
    ),
    (
        "order-removed",
        include_str!("../../../events/stream/order-removed.json"),
    ),
    (
        "live-first-location",
        include_str!("../../../events/stream/live-first-location.json"),
    ),
    (
        "live-location",
        include_str!("../../../events/stream/live-location.json"),
    ),
    (
        "live-eta-change",
        include_str!("../../../events/stream/live-eta-change.json"),
    ),
    (
        "live-transition",
        include_str!("../../../events/stream/live-transition.json"),
    ),
    (
        "counter",
        include_str!("../../../events/stream/counter.json"),
    ),
];

/// The fixtures benchmarked one by one: one per kind of event the fan-out sends.
const SINGLE: [&str; 5] = [
    "order-insert",             // order:new
    "order-accepted",           // order:status_update
    "order-assigned-to-driver", // order:status_update + driver:new_assignment
    "live-location",            // driver:location_update
    "live-eta-change",          // order:eta_update
];

/// Records in the batch benchmark.
const BATCH: usize = 100;

fn fixture(name: &str) -> &'static str {
    FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .expect("a known fixture")
}

/// Parses the event and derives the events of every record; the number of events.
fn derive_all(text: &str) -> usize {
    let event: Event = serde_json::from_str(text).expect("the fixture is a stream event");
    event
        .records
        .iter()
        .map(|record| record_events(record).map_or(0, |events| events.len()))
        .sum()
}

/// A stream event of `BATCH` records: the fixtures' records in turn, as JSON text.
fn batch() -> String {
    let records: Vec<serde_json::Value> = FIXTURES
        .iter()
        .flat_map(|(name, text)| {
            let mut event: serde_json::Value =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            match event["Records"].take() {
                serde_json::Value::Array(records) => records,
                _ => panic!("{name}: no Records"),
            }
        })
        .cycle()
        .take(BATCH)
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

fn derive(c: &mut Criterion) {
    let mut group = c.benchmark_group("derive");
    for name in SINGLE {
        let text = fixture(name);
        // A fixture that derives nothing would time a no-op: check it derives something.
        assert!(derive_all(text) > 0, "{name} derives events");
        group.bench_function(name, |b| b.iter(|| derive_all(black_box(text))));
    }
    group.finish();

    let mut group = c.benchmark_group("derive_parsed");
    for name in SINGLE {
        let event: Event = serde_json::from_str(fixture(name)).expect("a stream event");
        let record = &event.records[0];
        group.bench_function(name, |b| {
            b.iter(|| record_events(black_box(record)).expect("the record parses"))
        });
    }
    group.finish();

    let text = batch();
    let events = derive_all(&text);
    assert!(events > 0, "the batch derives events");
    let mut group = c.benchmark_group("derive_batch");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(format!("{BATCH}_records"), |b| {
        b.iter(|| derive_all(black_box(&text)))
    });
    group.finish();
}

criterion_group!(benches, derive);
criterion_main!(benches);
