//! The history behind `events/stream/`: one order's life written through the real
//! `DynamoStore` at fixed times, and how its stream records become the fixture files.

use chrono::{DateTime, Duration, Utc};
use rnd_domain::OrderView;
use rnd_domain::geo::{Accuracy, Heading, Latitude, Longitude, Speed};
use rnd_domain::live::{DriverLocation, Eta, LocationOutcome, LocationWrite};
use rnd_domain::order::{Action, OrderStatus};
use rnd_domain::ports::{LiveLocationStore, OrderStore};
use rnd_store_conformance::fixtures::{chef, customer, driver, next_step, order_id, placed_order};
use rnd_store_dynamodb::DynamoStore;
use serde_json::{Value, json};

/// When `order-1` is placed in the fixtures.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-14T12:00:00Z")
        .expect("valid time")
        .to_utc()
}

fn at(minutes: i64, seconds: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes) + Duration::seconds(seconds)
}

/// Takes the happy-path step out of the current status at `when`; returns the new view.
async fn step(store: &DynamoStore, view: OrderView, when: DateTime<Utc>) -> OrderView {
    let (actor, action) = next_step(view.order.status).expect("not final");
    transition(store, view, &actor, action, when).await
}

async fn transition(
    store: &DynamoStore,
    view: OrderView,
    actor: &rnd_domain::Actor,
    action: Action,
    when: DateTime<Utc>,
) -> OrderView {
    let next = view.apply(actor, action, when).expect("valid transition");
    store
        .commit_transition(&view, &next)
        .await
        .expect("commit transition");
    next
}

/// driver-1 at (`latitude`, `longitude`) at `when`, expecting to arrive at `arrival`.
async fn locate(
    store: &DynamoStore,
    latitude: f64,
    longitude: f64,
    when: DateTime<Utc>,
    arrival: DateTime<Utc>,
) {
    let remaining = (arrival - when).num_seconds();
    let write = LocationWrite {
        order_id: order_id("order-1"),
        driver_id: driver().user_id,
        location: DriverLocation {
            latitude: Latitude::parse(latitude).expect("valid"),
            longitude: Longitude::parse(longitude).expect("valid"),
            heading: Some(Heading::parse(330.0).expect("valid")),
            speed: Some(Speed::parse(8.5).expect("valid")),
            accuracy: Some(Accuracy::parse(5.0).expect("valid")),
            recorded_at: when,
        },
        eta: Some(Eta {
            eta_minutes: u32::try_from((remaining + 59) / 60).expect("positive"),
            estimated_delivery_time: arrival,
            computed_at: when,
            source: rnd_domain::live::EtaSource::Estimate,
            estimated_pickup_time: None,
        }),
        observed_speed_mps: Some(8.2),
        route: None,
        now_ms: when.timestamp_millis(),
        min_interval_ms: 1_000,
        announced: false,
    };
    let outcome = store
        .record_location(&write)
        .await
        .expect("record location");
    assert!(
        matches!(outcome, LocationOutcome::Accepted { .. }),
        "{outcome:?}"
    );
}

/// order-1's whole life: its number (a counter row), placement, every happy-path transition,
/// three locations in transit (the first ETA, a move that shifts the ETA by 20 s, one that
/// shifts it by 100 s), delivery, and finally the order row's removal.
pub async fn write_happy_path(store: &DynamoStore) {
    store
        .next_order_number(t0().date_naive())
        .await
        .expect("order number");
    let mut view = placed_order("order-1", &customer(), t0());
    store.create_order(&view).await.expect("create order");
    for minutes in [1, 2, 3, 4, 20, 25] {
        view = step(store, view, at(minutes, 0)).await;
    }
    assert_eq!(view.order.status, OrderStatus::InTransit);
    locate(store, 30.2690, -97.7368, at(26, 0), at(38, 0)).await;
    locate(store, 30.2701, -97.7375, at(26, 5), at(38, 20)).await;
    locate(store, 30.2712, -97.7381, at(26, 10), at(40, 0)).await;
    // The live row moved on: re-read it so the delivery's condition holds.
    let view = store
        .get_order(&order_id("order-1"))
        .await
        .expect("get order")
        .expect("exists");
    let view = step(store, view, at(40, 0)).await;
    assert_eq!(view.order.status, OrderStatus::Delivered);
    store
        .client()
        .delete_item()
        .table_name(&store.tables().orders)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("ORDER#order-1".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("ORDER".into()),
        )
        .send()
        .await
        .expect("delete the order row");
}

/// order-1 placed, paid, accepted, then cancelled by its chef.
pub async fn write_cancellation(store: &DynamoStore) {
    let mut view = placed_order("order-1", &customer(), t0());
    store.create_order(&view).await.expect("create order");
    for minutes in [1, 2] {
        view = step(store, view, at(minutes, 0)).await;
    }
    let reason = "Out of masa, sorry".to_owned();
    transition(store, view, &chef(), Action::Cancel { reason }, at(3, 0)).await;
}

/// The stream ARN the fixtures name (a deployed dev stack's orders table).
pub const FIXTURE_STREAM_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/rnd-realtime-dev-orders/stream/2026-03-01T00:00:00.000";

/// When the change of a record was made: its new image's `updatedAt`, a minute after the old
/// one's for a removal, [`t0`] for a counter.
fn change_time(record: &Value) -> DateTime<Utc> {
    let updated = |image: &str| {
        record["dynamodb"][image]["updatedAt"]["S"]
            .as_str()
            .map(|t| DateTime::parse_from_rfc3339(t).expect("RFC 3339").to_utc())
    };
    updated("NewImage")
        .or_else(|| updated("OldImage").map(|t| t + Duration::minutes(1)))
        .unwrap_or_else(t0)
}

/// Makes Lambda-shaped records from the test database look like a deployed stack's: region,
/// stream ARN, event source and version, and deterministic sequence numbers (from `first`, in
/// stream order), event ids and creation times (the change's time, whole seconds as AWS sends).
pub fn normalize(records: Vec<Value>, first: u128) -> Vec<Value> {
    records
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            let sequence = first + 1_000 * (i as u128 + 1);
            r["awsRegion"] = "us-east-1".into();
            r["eventSource"] = "aws:dynamodb".into();
            r["eventVersion"] = "1.1".into();
            r["eventSourceARN"] = FIXTURE_STREAM_ARN.into();
            r["eventID"] = event_id(sequence).into();
            r["dynamodb"]["ApproximateCreationDateTime"] = change_time(&r).timestamp().into();
            r["dynamodb"]["SequenceNumber"] = sequence.to_string().into();
            r
        })
        .collect()
}

/// A 32-hex-digit event id derived from a sequence number (splitmix64 of each half).
fn event_id(sequence: u128) -> String {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let (high, low) = ((sequence >> 64) as u64, sequence as u64);
    format!("{:016x}{:016x}", mix(low ^ high), mix(low.rotate_left(17)))
}

/// The fixture a record of the happy path (or the cancellation) stands for, if any: the
/// counter, the order insert, each order transition by its new status, the removal, the first
/// live-row part of a transition, and the three locations in order.
pub fn fixture_names(records: &[Value]) -> Vec<Option<String>> {
    let mut locations = 0;
    let mut live_transitions = 0;
    records
        .iter()
        .map(|r| {
            let sk = r["dynamodb"]["Keys"]["sk"]["S"]
                .as_str()
                .unwrap_or_default();
            let event = r["eventName"].as_str().unwrap_or_default();
            let field = |image: &str, name: &str| r["dynamodb"][image][name].clone();
            match (sk, event) {
                (s, _) if s.starts_with("COUNTER") => Some("counter".to_owned()),
                ("ORDER", "INSERT") => Some("order-insert".to_owned()),
                ("ORDER", "REMOVE") => Some("order-removed".to_owned()),
                ("ORDER", "MODIFY") => {
                    let status = field("NewImage", "status")["S"]
                        .as_str()
                        .unwrap_or_default()
                        .replace('_', "-");
                    Some(format!("order-{status}"))
                }
                ("LIVE", "MODIFY")
                    if field("NewImage", "locationAcceptedAtMs")
                        != field("OldImage", "locationAcceptedAtMs") =>
                {
                    locations += 1;
                    let names = ["live-first-location", "live-location", "live-eta-change"];
                    names.get(locations - 1).map(|n| (*n).to_owned())
                }
                ("LIVE", "MODIFY") => {
                    live_transitions += 1;
                    (live_transitions == 1).then(|| "live-transition".to_owned())
                }
                _ => None,
            }
        })
        .collect()
}

/// One event holding `record`.
pub fn fixture_of(record: Value) -> Value {
    json!({ "Records": [record] })
}
