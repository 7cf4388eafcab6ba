//! The stream fan-out, driven by the fixtures in `events/stream/` (and by real stream records
//! of the test database, moto), against the embedded store and the DynamoDB store on moto,
//! posting through the real API Gateway notifier to a mock Management API.

#[path = "../websocket/support.rs"]
#[allow(dead_code)]
mod support;

mod continuity;
mod harness;
mod history;

use std::collections::HashSet;
use std::sync::Arc;

use harness::*;
use rnd_domain::ports::{ConnectionStore, Store};
use rnd_handlers::fanout::BatchOutcome;
use rnd_store_conformance::fixtures;
use serde_json::{Value, json};

const STATUS: &str = "order:status_update";
const NEW: &str = "order:new";
const ASSIGNMENT: &str = "driver:new_assignment";
const LOCATION: &str = "driver:location_update";
const ETA: &str = "order:eta_update";

/// Who must receive which events (everyone else: nothing).
type Audience = &'static [(&'static str, &'static [&'static str])];

/// Every fixture and its audience.
const AUDIENCES: [(&str, Audience); 15] = [
    ("order-insert", &[(CHEF, &[NEW])]),
    (
        "order-payment-confirmed",
        &[
            (CUSTOMER, &[STATUS]),
            (CUSTOMER_PHONE, &[STATUS]),
            (ADMIN, &[STATUS]),
        ],
    ),
    (
        "order-accepted",
        &[
            (CUSTOMER, &[STATUS]),
            (CUSTOMER_PHONE, &[STATUS]),
            (ADMIN, &[STATUS]),
        ],
    ),
    (
        "order-ready-for-pickup",
        &[
            (CUSTOMER, &[STATUS]),
            (CUSTOMER_PHONE, &[STATUS]),
            (ADMIN, &[STATUS]),
        ],
    ),
    (
        "order-assigned-to-driver",
        &[
            (CUSTOMER, &[STATUS]),
            (CUSTOMER_PHONE, &[STATUS]),
            (ADMIN, &[STATUS]),
            (DRIVER, &[ASSIGNMENT]),
        ],
    ),
    (
        "order-picked-up",
        &[
            (CUSTOMER, &[STATUS]),
            (CUSTOMER_PHONE, &[STATUS]),
            (ADMIN, &[STATUS]),
        ],
    ),
    (
        "order-in-transit",
        &[
            (CUSTOMER, &[STATUS]),
            (CUSTOMER_PHONE, &[STATUS]),
            (ADMIN, &[STATUS]),
        ],
    ),
    (
        "order-delivered",
        &[
            (CUSTOMER, &[STATUS]),
            (CUSTOMER_PHONE, &[STATUS]),
            (ADMIN, &[STATUS]),
        ],
    ),
    (
        "order-cancelled",
        &[
            (CUSTOMER, &[STATUS]),
            (CUSTOMER_PHONE, &[STATUS]),
            (ADMIN, &[STATUS]),
        ],
    ),
    (
        "live-first-location",
        &[(CUSTOMER, &[LOCATION, ETA]), (ADMIN, &[LOCATION, ETA])],
    ),
    (
        "live-location",
        &[(CUSTOMER, &[LOCATION]), (ADMIN, &[LOCATION])],
    ),
    (
        "live-eta-change",
        &[(CUSTOMER, &[LOCATION, ETA]), (ADMIN, &[LOCATION, ETA])],
    ),
    ("live-transition", &[]),
    ("counter", &[]),
    ("order-removed", &[]),
];

/// The `seq` of a fixture's new image.
fn image_seq(fixture: &Value) -> u64 {
    fixture["Records"][0]["dynamodb"]["NewImage"]["seq"]["N"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .expect("the new image has a seq")
}

fn assert_no_failures(outcome: &BatchOutcome, context: &str) {
    assert!(
        outcome.response.batch_item_failures.is_empty(),
        "{context}: unexpected failures {:?}",
        failures(outcome)
    );
}

// ---------------------------------------------------------------------------------------------
// Audiences

async fn every_seed_event_reaches_exactly_its_audience_once<S: Store + 'static>(store: Arc<S>) {
    // GIVEN the cast: the customer and an admin watch order-1; the chef, the driver, the
    // customer's phone and a stranger are only in their user rooms, the admin also in
    // role:admin (the customer's status updates reach both its connections through its user
    // room)
    open_cast(&*store).await;
    for (name, audience) in AUDIENCES {
        // WHEN the fixture's record is fanned out
        let fanout = Fanout::start().await;
        let fixture = stream_fixture(name);
        let outcome = fanout.run(&*store, &event(fixture.clone())).await;

        // THEN exactly its audience received exactly its events, each once, with the
        // record's seq; nobody else received anything
        assert_no_failures(&outcome, name);
        for id in CAST {
            let expected: Vec<&str> = audience
                .iter()
                .find(|(c, _)| *c == id)
                .map(|(_, events)| events.to_vec())
                .unwrap_or_default();
            let received = fanout.events_to(id);
            let names: Vec<&str> = received.iter().map(|(e, _)| *e).collect();
            assert_eq!(names, expected, "{name}: what {id} received");
            for (event, seq) in received {
                assert_eq!(seq, image_seq(&fixture), "{name}: seq of {event}");
            }
        }
        let deliveries: usize = audience.iter().map(|(_, e)| e.len()).sum();
        assert_eq!(
            outcome.metrics.delivery.deliveries, deliveries as u64,
            "{name}"
        );
        assert_eq!(outcome.metrics.records, 1, "{name}");
        assert_eq!(
            fanout.api.attempts().len(),
            deliveries,
            "{name}: no extra posts"
        );
    }
}

#[tokio::test]
async fn events_carry_the_documented_payloads() {
    // GIVEN the cast on the embedded store
    let store = rnd_test_support::sqlite().await;
    open_cast(&*store).await;
    let fanout = Fanout::start().await;

    // WHEN the assignment and an ETA-moving location are fanned out
    let outcome = fanout
        .run(
            &*store,
            &batch(&["order-assigned-to-driver", "live-eta-change"]),
        )
        .await;
    assert_no_failures(&outcome, "payloads");

    // THEN each payload has exactly the documented fields
    let keys = |body: &Value| -> HashSet<String> {
        body["data"]
            .as_object()
            .expect("data is an object")
            .keys()
            .cloned()
            .collect()
    };
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<HashSet<_>>()
    };
    let customer = fanout.bodies_to(CUSTOMER);
    assert_eq!(customer.len(), 3);
    assert_eq!(customer[0]["event"], STATUS);
    assert_eq!(
        keys(&customer[0]),
        set(&[
            "orderId",
            "orderNumber",
            "status",
            "previousStatus",
            "timestamp",
            "seq",
            "previousStatusSeq",
            "cursor"
        ])
    );
    assert_eq!(customer[0]["data"]["status"], "assigned_to_driver");
    // (the previous status update is the record before it; the cursor is the customer's,
    // since it came through the customer's user room)
    assert_eq!(
        customer[0]["data"]["previousStatusSeq"].as_u64(),
        customer[0]["data"]["seq"].as_u64().map(|s| s - 1)
    );
    assert!(customer[0]["data"]["cursor"].is_string());
    let admin = fanout.bodies_to(ADMIN);
    assert!(
        admin[0]["data"].get("cursor").is_none(),
        "no cursor outside a user room"
    );
    assert_eq!(customer[0]["data"]["previousStatus"], "ready_for_pickup");
    // (who made the change is an admin's to know: the admin, in the order room and in
    // role:admin, gets it through role:admin)
    assert_eq!(admin[0]["data"]["changedBy"], "admin-1");
    assert_eq!(customer[1]["event"], LOCATION);
    assert_eq!(
        keys(&customer[1]),
        set(&[
            "orderId",
            "driverId",
            "latitude",
            "longitude",
            "heading",
            "speed",
            "timestamp",
            "seq"
        ])
    );
    assert_eq!(customer[1]["data"]["driverId"], "driver-1");
    assert_eq!(customer[2]["event"], ETA);
    assert_eq!(
        keys(&customer[2]),
        set(&[
            "orderId",
            "etaMinutes",
            "estimatedDeliveryTime",
            "etaSource",
            "seq"
        ])
    );
    // (an ETA estimated offline after the pickup: no pickup time, source `estimate`)
    assert_eq!(customer[2]["data"]["etaSource"], "estimate");
    let driver = fanout.bodies_to(DRIVER);
    assert_eq!(driver.len(), 1);
    assert_eq!(driver[0]["event"], ASSIGNMENT);
    assert!(driver[0]["data"]["cursor"].is_string());
    let pickup = &driver[0]["data"]["pickup"];
    let dropoff = &driver[0]["data"]["dropoff"];
    assert_eq!(pickup["name"], "Carla's Kitchen");
    assert_eq!(pickup["address"], "500 E 7th St, Austin, TX");
    assert_eq!(dropoff["name"], "Ada Customer");
    assert_eq!(dropoff["address"], "1 Congress Ave, Austin, TX");
    for stop in [pickup, dropoff] {
        assert!(stop["latitude"].is_f64() && stop["longitude"].is_f64());
    }
}

// ---------------------------------------------------------------------------------------------
// Expired tokens

/// An admin who connected with a token valid for three hours and watches order-1.
const FRESH_ADMIN: &str = "Fr3shAdm1nC0nn=";

async fn a_member_past_its_token_is_told_once_and_closed_instead_of_getting_events<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN the cast, whose tokens expire an hour after they connected, and an admin whose
    // token lasts three hours, all watching order-1
    open_cast(&*store).await;
    let at = fixtures::now();
    let fresh = rnd_domain::ports::Connection {
        token_expires_at: at + chrono::Duration::hours(3),
        ..fixtures::connection(FRESH_ADMIN, &fixtures::admin(), at)
    };
    store
        .open_connection(
            &fresh,
            &rnd_domain::rooms::initial_rooms(&fixtures::admin()),
        )
        .await
        .expect("open");
    join(&*store, FRESH_ADMIN, "order:order-1").await;
    let fanout = Fanout::start().await;

    // WHEN a status update and a location are fanned out 61 minutes later
    let later = at + chrono::Duration::minutes(61);
    let outcome = fanout
        .run_at(
            &*store,
            &batch(&["order-in-transit", "live-location"]),
            later,
        )
        .await;

    // THEN the batch succeeds, and the admin with a valid token got both events
    assert_no_failures(&outcome, "expired tokens");
    let names: Vec<&str> = fanout
        .events_to(FRESH_ADMIN)
        .iter()
        .map(|(e, _)| *e)
        .collect();
    assert_eq!(names, [STATUS, LOCATION]);
    // AND every member past its token got no event, only one token_expired, and was closed
    for expired in [CUSTOMER, CUSTOMER_PHONE, ADMIN] {
        let received = fanout.received(expired);
        assert_eq!(received.len(), 1, "{expired}: {received:?}");
        assert_eq!(
            received[0],
            rnd_domain::protocol::ServerMessage::token_expired(),
            "{expired}"
        );
    }
    let mut closed = fanout.api.deleted();
    closed.sort();
    let mut expected = vec![CUSTOMER, CUSTOMER_PHONE, ADMIN];
    expected.sort();
    assert_eq!(closed, expected);
    assert_eq!(outcome.metrics.delivery.expired, 3);
    // AND the members of no room of these events were left alone
    for untouched in [CHEF, DRIVER, STRANGER] {
        assert!(fanout.received(untouched).is_empty(), "{untouched}");
    }
}

async fn an_expired_member_that_has_already_gone_is_removed<S: Store + 'static>(store: Arc<S>) {
    // GIVEN the cast, and the customer's connection already gone at API Gateway
    open_cast(&*store).await;
    let fanout = Fanout::start().await;
    fanout.api.answer(CUSTOMER, 410);

    // WHEN a status update is fanned out after the tokens expired
    let later = fixtures::now() + chrono::Duration::minutes(61);
    let outcome = fanout
        .run_at(&*store, &batch(&["order-in-transit"]), later)
        .await;

    // THEN the batch succeeds and the gone connection is removed from the store
    assert_no_failures(&outcome, "expired and gone");
    assert_eq!(
        store
            .get_connection(&conn(CUSTOMER), later)
            .await
            .expect("get"),
        None
    );
    assert!(
        store
            .room_members(&room("order:order-1"), later)
            .await
            .expect("members")
            .token_expired
            .iter()
            .all(|c| c.as_str() != CUSTOMER)
    );
}

// ---------------------------------------------------------------------------------------------
// 410 Gone

async fn a_connection_answering_gone_while_still_opening_is_kept_and_hears_the_next_event<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN the cast, and the customer's phone, stored by its `$connect` a second ago but not yet
    // connected at API Gateway (which answers 410 until `$connect` returns)
    open_cast(&*store).await;
    join(&*store, CUSTOMER_PHONE, "order:order-1").await;
    let fanout = Fanout::start().await;
    fanout.api.answer_first(CUSTOMER_PHONE, 410, 1);
    let soon = fixtures::now() + chrono::Duration::seconds(1);

    // WHEN a status update is fanned out
    let outcome = fanout
        .run_at(&*store, &batch(&["order-payment-confirmed"]), soon)
        .await;

    // THEN the batch succeeds and the phone is kept, in every room it was in
    assert_no_failures(&outcome, "opening");
    assert_eq!(fanout.api.attempts_to(CUSTOMER_PHONE), 1);
    assert!(
        store
            .get_connection(&conn(CUSTOMER_PHONE), soon)
            .await
            .unwrap()
            .is_some()
    );
    let rooms: HashSet<String> = store
        .rooms_of(&conn(CUSTOMER_PHONE))
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        rooms,
        HashSet::from(["order:order-1".to_owned(), "user:customer-1".to_owned()])
    );
    // AND once connected it hears the next update
    fanout
        .run_at(
            &*store,
            &batch(&["order-accepted"]),
            soon + chrono::Duration::seconds(1),
        )
        .await;
    let heard: Vec<&str> = fanout
        .events_to(CUSTOMER_PHONE)
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(heard, ["order:status_update"]);
}

async fn a_gone_connection_is_removed_with_its_memberships_and_only_that_one<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN the cast, and the customer's phone also watching order-1 but gone at API Gateway
    open_cast(&*store).await;
    join(&*store, CUSTOMER_PHONE, "order:order-1").await;
    let fanout = Fanout::start().await;
    fanout.api.answer(CUSTOMER_PHONE, 410);

    // WHEN two status updates are fanned out, a minute after it connected
    let outcome = fanout
        .run_at(
            &*store,
            &batch(&["order-payment-confirmed", "order-accepted"]),
            fixtures::now() + chrono::Duration::minutes(1),
        )
        .await;

    // THEN the batch succeeds, the gone connection was posted to once and then removed with
    // every membership, and nobody else was touched
    assert_no_failures(&outcome, "gone");
    assert_eq!(outcome.metrics.delivery.gone, 1);
    assert_eq!(fanout.api.attempts_to(CUSTOMER_PHONE), 1);
    let now = fixtures::now();
    assert_eq!(
        store
            .get_connection(&conn(CUSTOMER_PHONE), now)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .rooms_of(&conn(CUSTOMER_PHONE))
            .await
            .unwrap()
            .is_empty()
    );
    for room_name in ["order:order-1", "user:customer-1"] {
        let members = store
            .room_members(&room(room_name), now)
            .await
            .unwrap()
            .open;
        assert!(!members.contains(&conn(CUSTOMER_PHONE)), "{room_name}");
    }
    for id in CAST.iter().filter(|id| **id != CUSTOMER_PHONE) {
        assert!(
            store
                .get_connection(&conn(id), now)
                .await
                .unwrap()
                .is_some(),
            "{id}"
        );
    }
    assert_eq!(
        store
            .room_members(&room("user:customer-1"), now)
            .await
            .unwrap()
            .open,
        vec![conn(CUSTOMER)]
    );
    // AND the others received both updates
    for id in [CUSTOMER, ADMIN] {
        assert_eq!(fanout.events_to(id), [(STATUS, 2), (STATUS, 3)], "{id}");
    }
}

// ---------------------------------------------------------------------------------------------
// Failures and retries

async fn a_connection_whose_posts_keep_failing_is_skipped_and_the_shard_moves_on<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN the cast, and API Gateway answering 500 to every post to the customer
    open_cast(&*store).await;
    let fanout = Fanout::start().await;
    fanout.api.answer(CUSTOMER, 500);
    let names = ["order-insert", "order-payment-confirmed", "order-accepted"];

    // WHEN a batch of three records is fanned out
    let outcome = fanout.run(&*store, &batch(&names)).await;

    // THEN the batch succeeds: nothing is sent again to everyone else, and nothing waits
    assert_no_failures(&outcome, "a failing connection");
    // AND the customer's first post was tried max_attempts times, then the customer was
    // skipped for the rest of the batch, counted
    assert_eq!(fanout.api.attempts_to(CUSTOMER), 3);
    assert_eq!(outcome.metrics.delivery.retried, 2);
    assert_eq!(outcome.metrics.delivery.skipped, 1);
    assert_eq!(outcome.metrics.delivery.failed, 0);
    assert!(fanout.events_to(CUSTOMER).is_empty());
    // AND everyone else got everything, once
    assert_eq!(fanout.events_to(CHEF), [(NEW, 1)]);
    assert_eq!(fanout.events_to(ADMIN), [(STATUS, 2), (STATUS, 3)]);

    // WHEN API Gateway recovers and the next change is fanned out
    fanout.api.accept(CUSTOMER);
    let next = fanout
        .run(&*store, &batch(&["order-ready-for-pickup"]))
        .await;

    // THEN the customer gets it, and it shows the gap: its previous status was seq 3, which
    // the customer never saw, so it resumes from its inbox, which kept both it missed
    assert_no_failures(&next, "next");
    let received = fanout.bodies_to(CUSTOMER);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["data"]["seq"], 4);
    assert_eq!(received[0]["data"]["previousStatusSeq"], 3);
    let inbox = store
        .read_inbox(&fixtures::customer().user_id, 0, 10, fixtures::now())
        .await
        .expect("the inbox");
    let kept: Vec<u64> = inbox
        .events
        .iter()
        .filter_map(|e| e.message.seq())
        .collect();
    assert_eq!(kept, [2, 3, 4]);
}

/// What Lambda sends after a partial failure: the batch's records from the reported sequence
/// number on.
fn redelivery(names: &[&str], from_sequence_number: &str) -> aws_lambda_events::dynamodb::Event {
    let start = names
        .iter()
        .position(|n| sequence_number(n) == from_sequence_number)
        .expect("the reported record is in the batch");
    batch(&names[start..])
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_delivered() {
    // GIVEN API Gateway throttling the customer once and failing the admin twice
    let store = rnd_test_support::sqlite().await;
    open_cast(&*store).await;
    let fanout = Fanout::start().await;
    fanout.api.answer_first(CUSTOMER, 429, 1);
    fanout.api.answer_first(ADMIN, 503, 2);

    // WHEN a status update is fanned out
    let before = fixtures::now();
    let outcome = fanout.run(&*store, &batch(&["order-accepted"])).await;
    let after = fixtures::now();

    // THEN both got it after their retries (and the customer's phone at once), and the batch
    // succeeds
    assert_no_failures(&outcome, "retries");
    assert_eq!(fanout.events_to(CUSTOMER), [(STATUS, 3)]);
    assert_eq!(fanout.events_to(CUSTOMER_PHONE), [(STATUS, 3)]);
    assert_eq!(fanout.events_to(ADMIN), [(STATUS, 3)]);
    assert_eq!(fanout.api.attempts_to(CUSTOMER), 2);
    assert_eq!(fanout.api.attempts_to(ADMIN), 3);
    let m = outcome.metrics;
    let d = m.delivery;
    assert_eq!((d.deliveries, d.retried, d.failed, d.gone), (3, 3, 0, 0));
    // AND the stream lag is now minus the record's ApproximateCreationDateTime
    let created =
        stream_fixture("order-accepted")["Records"][0]["dynamodb"]["ApproximateCreationDateTime"]
            .as_i64()
            .expect("seconds")
            * 1000;
    let lag = m.stream_lag_ms.expect("a lag");
    assert!(
        (before.timestamp_millis() - created..=after.timestamp_millis() - created).contains(&lag)
    );
}

#[tokio::test]
async fn a_refused_post_is_not_retried_and_does_not_fail_the_batch() {
    // GIVEN API Gateway refusing posts to the customer as too large
    let store = rnd_test_support::sqlite().await;
    open_cast(&*store).await;
    let fanout = Fanout::start().await;
    fanout.api.answer(CUSTOMER, 413);

    // WHEN two status updates are fanned out
    let outcome = fanout
        .run(
            &*store,
            &batch(&["order-payment-confirmed", "order-accepted"]),
        )
        .await;

    // THEN each was tried once, refused, and the batch succeeds (a retry could never succeed)
    assert_no_failures(&outcome, "rejected");
    assert_eq!(fanout.api.attempts_to(CUSTOMER), 2);
    assert_eq!(outcome.metrics.delivery.rejected, 2);
    assert_eq!(outcome.metrics.delivery.retried, 0);
    assert_eq!(fanout.events_to(ADMIN), [(STATUS, 2), (STATUS, 3)]);
}

/// Log lines written as JSON, each with the list of spans it was logged in: those of the
/// thread that called [`Logs::capture`]. One global subscriber serves every test of this binary
/// (a scoped one races with the other tests' threads over tracing's per-callsite cache).
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURED: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// Writes to the current thread's [`Logs`], if it captures; else nowhere.
struct ThreadLogs;

impl std::io::Write for ThreadLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with_borrow(|logs| {
            if let Some(logs) = logs {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's log lines from now on.
    fn capture() -> Logs {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            tracing_subscriber::fmt()
                .json()
                .with_span_list(true)
                .with_current_span(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(|| ThreadLogs)
                .init();
        });
        let logs = Logs::default();
        CAPTURED.set(Some(logs.clone()));
        logs
    }

    /// The line whose message is `message`.
    fn line(&self, message: &str) -> Value {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no line {message:?} in {text}"))
    }
}

#[tokio::test]
async fn the_fan_out_logs_name_the_order_of_each_event_and_post() {
    // GIVEN API Gateway refusing posts to the customer, and the log lines captured
    let store = rnd_test_support::sqlite().await;
    open_cast(&*store).await;
    let fanout = Fanout::start().await;
    fanout.api.answer(CUSTOMER, 413);
    let logs = Logs::capture();

    // WHEN a status update is fanned out
    let outcome = fanout
        .run(&*store, &batch(&["order-payment-confirmed"]))
        .await;

    // THEN the refusal is logged in a `post` span naming the order and the connection, and the
    // event's own line names the order and how many connections got it
    assert_no_failures(&outcome, "logged");
    let order_id = fanout.received(ADMIN)[0]
        .order_id()
        .expect("a status update names its order")
        .to_string();
    let refused = logs.line("post refused; not retried");
    let post = refused["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "post")
        .expect("logged in the post's span");
    assert_eq!(post["order_id"], order_id.as_str());
    assert_eq!(post["connection_id"], CUSTOMER);
    assert_eq!(post["event"], STATUS);
    let fanned_out = logs.line("event fanned out");
    assert_eq!(fanned_out["fields"]["order_id"], order_id.as_str());
    assert_eq!(fanned_out["fields"]["event"], STATUS);
    assert_eq!(fanned_out["fields"]["connections"], 2);
    assert_eq!(fanned_out["level"], "INFO");
}

#[tokio::test]
async fn posts_run_concurrently_but_never_beyond_the_bound() {
    // GIVEN five connections to post to, each answer taking 100 ms, and a bound of two
    let store = rnd_test_support::sqlite().await;
    open_cast(&*store).await;
    let mut fanout = Fanout::start().await;
    fanout.config.concurrency = 2;
    for id in [CHEF, CUSTOMER, CUSTOMER_PHONE, ADMIN, DRIVER] {
        fanout.api.delay(id, std::time::Duration::from_millis(100));
    }

    // WHEN an insert and an assignment are fanned out
    let outcome = fanout
        .run(
            &*store,
            &batch(&["order-insert", "order-assigned-to-driver"]),
        )
        .await;

    // THEN all five posts were made, two at a time at most
    assert_no_failures(&outcome, "bounded");
    assert_eq!(outcome.metrics.delivery.deliveries, 5);
    assert_eq!(fanout.api.max_in_flight(), 2);
}

#[tokio::test]
async fn the_fan_out_runs_on_a_spawned_task_over_a_dyn_store() {
    // GIVEN a store behind `dyn Store`, as the local stack holds it
    let store: Arc<dyn Store> = rnd_test_support::sqlite().await;
    open_cast(&*store).await;
    let fanout = Arc::new(Fanout::start().await);

    // WHEN the fan-out runs on a spawned task (its future must be Send)
    let task = tokio::spawn({
        let fanout = Arc::clone(&fanout);
        async move { fanout.run(&*store, &batch(&["order-insert"])).await }
    });

    // THEN it delivers
    let outcome = task.await.expect("the task completes");
    assert_no_failures(&outcome, "spawned");
    assert_eq!(fanout.events_to(CHEF), [(NEW, 1)]);
}

#[tokio::test]
async fn a_room_that_cannot_be_read_fails_the_records_addressed_to_it() {
    // GIVEN a store that cannot read role:admin
    let inner = rnd_test_support::sqlite().await;
    open_cast(&*inner).await;
    let mut store = CountingStore::new(inner).failing("role:admin");
    let fanout = Fanout::start().await;
    let names = ["order-insert", "order-accepted"];

    // WHEN an insert (to the chef) and a status update (to the order and the admins) are
    // fanned out
    let outcome = fanout.run(&store, &batch(&names)).await;

    // THEN the status update's record is reported, what could be addressed was delivered
    assert_eq!(failures(&outcome), [sequence_number("order-accepted")]);
    assert_eq!(fanout.events_to(CHEF), [(NEW, 1)]);
    assert_eq!(fanout.events_to(CUSTOMER), [(STATUS, 3)]);
    assert_eq!(
        fanout.events_to(ADMIN),
        [(STATUS, 3)],
        "through order:order-1"
    );

    // WHEN the store recovers and Lambda redelivers from the reported record on
    store.heal();
    let retry = fanout
        .run(&store, &redelivery(&names, &failures(&outcome)[0]))
        .await;

    // THEN the record before it is not sent again, and the status update is, with its seq
    assert_no_failures(&retry, "retry");
    assert_eq!(retry.metrics.records, 1);
    assert_eq!(fanout.events_to(CHEF), [(NEW, 1)]);
    assert_eq!(fanout.events_to(ADMIN), [(STATUS, 3), (STATUS, 3)]);
}

#[tokio::test]
async fn a_failed_record_without_a_sequence_number_fails_the_whole_batch() {
    // GIVEN a record without its sequence number, and a room of its event that cannot be read
    let inner = rnd_test_support::sqlite().await;
    open_cast(&*inner).await;
    let store = CountingStore::new(inner).failing("role:admin");
    let fanout = Fanout::start().await;
    let mut fixture = stream_fixture("order-accepted");
    fixture["Records"][0]["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("SequenceNumber");

    // WHEN it is fanned out
    let outcome = fanout.run(&store, &event(fixture)).await;

    // THEN the failure is an empty identifier, which makes Lambda retry the whole batch
    assert_eq!(failures(&outcome), [""]);
}

#[tokio::test]
async fn a_malformed_order_image_is_skipped_and_does_not_block_the_stream() {
    // GIVEN a status change whose new image does not parse, followed by a good one
    let store = rnd_test_support::sqlite().await;
    open_cast(&*store).await;
    let fanout = Fanout::start().await;
    let mut broken = stream_fixture("order-payment-confirmed");
    broken["Records"][0]["dynamodb"]["NewImage"]["status"] = json!({"S": "teleported"});
    let good = stream_fixture("order-accepted");

    // WHEN both are fanned out
    let outcome = fanout
        .run(&*store, &event(batch_json(&[broken, good])))
        .await;

    // THEN the broken record is skipped (counted), not reported, and the good one delivered
    assert_no_failures(&outcome, "malformed");
    assert_eq!(outcome.metrics.malformed, 1);
    assert_eq!(fanout.events_to(CUSTOMER), [(STATUS, 3)]);
}

// ---------------------------------------------------------------------------------------------
// Cost

async fn coalescing_sends_only_the_newest_location_and_eta_per_order_but_every_status_update<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN the cast, and the stranger watching another order with the same history
    open_cast(&*store).await;
    join(&*store, STRANGER, "order:order-2").await;
    let fanout = Fanout::start().await;
    let names = [
        "order-picked-up",
        "order-in-transit",
        "live-first-location",
        "live-location",
        "live-eta-change",
        "order-delivered",
    ];
    let mut fixtures: Vec<Value> = names.iter().map(|n| stream_fixture(n)).collect();
    let order_2: Vec<Value> = ["live-first-location", "live-location"]
        .iter()
        .map(|n| for_order(&stream_fixture(n), "order-2"))
        .collect();
    fixtures.splice(3..3, order_2);

    // WHEN they arrive in one batch
    let outcome = fanout.run(&*store, &event(batch_json(&fixtures))).await;

    // THEN order-1's watchers get every status update, and of the three locations and two
    // ETAs only the newest of each, in stream order
    assert_no_failures(&outcome, "coalescing");
    let expected = [
        (STATUS, 6),
        (STATUS, 7),
        (LOCATION, 10),
        (ETA, 10),
        (STATUS, 11),
    ];
    assert_eq!(fanout.events_to(CUSTOMER), expected);
    assert_eq!(fanout.events_to(ADMIN), expected);
    // AND order-2's watcher gets order-2's newest location and its only ETA
    assert_eq!(fanout.events_to(STRANGER), [(ETA, 8), (LOCATION, 9)]);
    // (superseded: order-1's locations 8 and 9 and ETA 8, order-2's location 8)
    assert_eq!(outcome.metrics.coalesced, 4);
    assert_eq!(outcome.metrics.events, 7);
}

async fn each_distinct_room_is_read_once_per_batch_and_nothing_else_is_read<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN the cast, behind a store that counts its calls
    open_cast(&*store).await;
    let counting = CountingStore::new(store);
    let fanout = Fanout::start().await;
    let mut history: Vec<&str> = AUDIENCES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| *n != "order-cancelled")
        .collect();
    history.sort_by_key(|n| sequence_number(n).parse::<u128>().expect("numeric"));

    // WHEN every record of order-1's life arrives in one batch, in stream order
    let outcome = fanout.run(&counting, &batch(&history)).await;

    // THEN each room was read exactly once, each user's inbox was appended to once, and no
    // other store call was made
    assert_no_failures(&outcome, "lookups");
    let lookups = counting.room_lookups();
    let rooms: HashSet<&str> = lookups.keys().map(String::as_str).collect();
    assert_eq!(
        rooms,
        HashSet::from([
            "user:chef-1",
            "user:customer-1",
            "order:order-1",
            "role:admin",
            "user:driver-1"
        ])
    );
    assert!(lookups.values().all(|n| *n == 1), "{lookups:?}");
    let appends: HashSet<String> = counting
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("append_to_inbox "))
        .collect();
    assert_eq!(
        appends,
        HashSet::from([
            "append_to_inbox chef-1".to_owned(),
            "append_to_inbox customer-1".to_owned(),
            "append_to_inbox driver-1".to_owned(),
        ])
    );
    assert_eq!(counting.calls().len(), 5 + 3, "{:?}", counting.calls());
    assert_eq!(outcome.metrics.room_lookups, 5);
    // AND the customer got its events in stream order
    let seqs: Vec<u64> = fanout.events_to(CUSTOMER).iter().map(|(_, s)| *s).collect();
    assert!(seqs.is_sorted(), "{seqs:?}");
}

support::on_both_stores!(
    every_seed_event_reaches_exactly_its_audience_once,
    a_gone_connection_is_removed_with_its_memberships_and_only_that_one,
    a_connection_answering_gone_while_still_opening_is_kept_and_hears_the_next_event,
    a_connection_whose_posts_keep_failing_is_skipped_and_the_shard_moves_on,
    coalescing_sends_only_the_newest_location_and_eta_per_order_but_every_status_update,
    each_distinct_room_is_read_once_per_batch_and_nothing_else_is_read,
    a_member_past_its_token_is_told_once_and_closed_instead_of_getting_events,
    an_expired_member_that_has_already_gone_is_removed,
);

/// Only DynamoDB can hold a membership without its connection row (SQLite's memberships cascade
/// with their connection): a `$disconnect` that removed the row but not every membership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_whose_connection_row_vanished_is_removed_at_its_first_410() {
    // GIVEN the cast, the customer's connection row deleted behind the store's back, and API
    // Gateway answering 410 for it
    let store = rnd_test_support::dynamodb().await;
    open_cast(&*store).await;
    store
        .client()
        .delete_item()
        .table_name(&store.tables().connections)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CONN#{CUSTOMER}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CONN".into()),
        )
        .send()
        .await
        .expect("delete the connection row");
    let fanout = Fanout::start().await;
    fanout.api.answer(CUSTOMER, 410);

    // WHEN a status update is fanned out, and then another
    let first = fanout
        .run(&*store, &batch(&["order-payment-confirmed"]))
        .await;
    let second = fanout.run(&*store, &batch(&["order-accepted"])).await;

    // THEN the first 410 removed its memberships: the second update costs it no post
    assert_no_failures(&first, "first");
    assert_no_failures(&second, "second");
    assert_eq!(first.metrics.delivery.gone, 1);
    assert_eq!(fanout.api.attempts_to(CUSTOMER), 1);
    let now = fixtures::now();
    for room_name in ["order:order-1", "user:customer-1"] {
        let members = store
            .room_members(&room(room_name), now)
            .await
            .expect("members");
        assert!(
            !members.open.contains(&conn(CUSTOMER)),
            "{room_name}: {members:?}"
        );
    }
    // AND the customer's phone, in the same user room, still got both
    assert_eq!(fanout.events_to(CUSTOMER_PHONE), [(STATUS, 2), (STATUS, 3)]);
}

// ---------------------------------------------------------------------------------------------
// The real stream (of the test database)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_stream_records_parse_and_reach_their_audiences() {
    // GIVEN order-1's whole life written through DynamoStore, and the cast connected
    let store = rnd_test_support::dynamodb().await;
    open_cast(&*store).await;
    history::write_happy_path(&store).await;

    // WHEN the stream's real records, shaped as Lambda delivers them, are fanned out
    let (arn, records) = read_stream(&store).await;
    let records: Vec<Value> = records.iter().map(|r| lambda_record(r, &arn)).collect();
    let count = records.len();
    let fanout = Fanout::start().await;
    let outcome = fanout
        .run(&*store, &event(json!({ "Records": records })))
        .await;

    // THEN every record parsed and every audience got its events in order, coalesced
    assert_no_failures(&outcome, "real stream");
    assert_eq!(outcome.metrics.records, count as u64);
    assert_eq!(outcome.metrics.malformed, 0);
    let watchers = [
        (STATUS, 2),
        (STATUS, 3),
        (STATUS, 4),
        (STATUS, 5),
        (STATUS, 6),
        (STATUS, 7),
        (LOCATION, 10),
        (ETA, 10),
        (STATUS, 11),
    ];
    assert_eq!(fanout.events_to(CUSTOMER), watchers);
    assert_eq!(fanout.events_to(ADMIN), watchers);
    assert_eq!(fanout.events_to(CHEF), [(NEW, 1)]);
    assert_eq!(fanout.events_to(DRIVER), [(ASSIGNMENT, 5)]);
    let statuses: Vec<_> = watchers
        .iter()
        .filter(|(e, _)| *e == STATUS)
        .copied()
        .collect();
    assert_eq!(fanout.events_to(CUSTOMER_PHONE), statuses);
    assert!(fanout.events_to(STRANGER).is_empty());
    assert!(outcome.metrics.stream_lag_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_fixtures_are_exactly_what_the_store_writes() {
    // GIVEN order-1's life (and a cancelled order-1 in other tables) written through
    // DynamoStore, its real stream records shaped as Lambda delivers them
    let mut generated = fixture_records(false, 400_000_000_000_000_000_000).await;
    generated.extend(
        fixture_records(true, 500_000_000_000_000_000_000)
            .await
            .into_iter()
            .filter(|(name, _)| name == "order-cancelled"),
    );
    let names: HashSet<&str> = generated.iter().map(|(n, _)| n.as_str()).collect();
    let expected: HashSet<&str> = AUDIENCES.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected, "one record per fixture");
    assert_eq!(generated.len(), expected.len());

    // WHEN RND_WRITE_FIXTURES=1: (re)write them
    if std::env::var("RND_WRITE_FIXTURES").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(fixtures_dir()).expect("create events/stream");
        for (name, fixture) in &generated {
            let text = serde_json::to_string_pretty(fixture).expect("JSON") + "\n";
            std::fs::write(fixtures_dir().join(format!("{name}.json")), text).expect("write");
        }
    }

    // THEN the committed fixtures are exactly these records
    for (name, fixture) in &generated {
        assert_eq!(
            &stream_fixture(name),
            fixture,
            "events/stream/{name}.json is not what the store writes now; regenerate with \
             RND_WRITE_FIXTURES=1 scripts/moto.sh run -- cargo test -p rnd-handlers \
             --test fanout stream_fixtures"
        );
        // AND each parses as AWS's event type
        let parsed = event(fixture.clone());
        assert_eq!(parsed.records.len(), 1, "{name}");
    }
}

/// The fixtures one history yields (the happy path, or the cancellation), named, normalized,
/// as Lambda would deliver them; sequence numbers start after `first`.
async fn fixture_records(cancellation: bool, first: u128) -> Vec<(String, Value)> {
    let store = rnd_test_support::dynamodb().await;
    if cancellation {
        history::write_cancellation(&store).await;
    } else {
        history::write_happy_path(&store).await;
    }
    let (arn, records) = read_stream(&store).await;
    let records = history::normalize(
        records.iter().map(|r| lambda_record(r, &arn)).collect(),
        first,
    );
    history::fixture_names(&records)
        .into_iter()
        .zip(records)
        .filter_map(|(name, record)| Some((name?, history::fixture_of(record))))
        .collect()
}
