//! Never miss an event: the fan-out keeps user-room events in the user's inbox before it
//! posts them, `resume` replays the inbox after a cursor, and `subscribe:order` with
//! `sinceSeq` replays an order's status updates — on both stores, through the real notifier
//! to the mock Management API.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use rnd_domain::inbox::Continuity;
use rnd_domain::order::OrderStatus;
use rnd_domain::ports::Store;
use rnd_domain::protocol::{ErrorCode, ServerMessage};
use rnd_domain::{Actor, OrderView, Role, derive_events};
use rnd_store_conformance::fixtures::{self, advance, chef, customer, driver, placed_order};
use serde_json::{Value, json};

use crate::harness::*;
use crate::support::{
    self, as_caller, body_message, fixture, replaying_routes, with_body, ws_event,
};

/// A second connection of the chef (after a reconnect).
const CHEF_AGAIN: &str = "Chef1Ag4inC0nn=";
/// A third one (a second device).
const CHEF_TABLET: &str = "Chef1T4bletC0nn=";

/// Sends `body` on `connection` as `actor` through the message routes at `at`, replaying to
/// `fanout`'s mock Management API; returns the route response.
async fn send<S: Store + 'static>(
    store: &Arc<S>,
    fanout: &Fanout,
    actor: &Actor,
    connection: &str,
    body: Value,
    at: DateTime<Utc>,
) -> ServerMessage {
    let json = with_body(
        as_caller(
            fixture("subscribe-order"),
            actor.user_id.as_str(),
            actor.role.as_str(),
            connection,
        ),
        body,
    );
    let routes = replaying_routes(Arc::clone(store), &fanout.api);
    body_message(&routes.handle(&ws_event(json), at).await)
}

async fn resume<S: Store + 'static>(
    store: &Arc<S>,
    fanout: &Fanout,
    actor: &Actor,
    connection: &str,
    cursor: Option<&str>,
    at: DateTime<Utc>,
) -> ServerMessage {
    let body = match cursor {
        Some(c) => json!({"action": "resume", "cursor": c}),
        None => json!({"action": "resume"}),
    };
    send(store, fanout, actor, connection, body, at).await
}

/// The `resumed` answer's (cursor, replayed, continuity).
fn resumed(answer: &ServerMessage) -> (String, u32, Continuity) {
    match answer {
        ServerMessage::Resumed(d) => (d.cursor.clone(), d.replayed, d.continuity),
        other => panic!("expected resumed, got {other:?}"),
    }
}

/// The `cursor` an event carries.
fn cursor_of(body: &Value) -> String {
    body["data"]["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("no cursor in {body}"))
        .to_owned()
}

/// The batch holding `order-insert` for order `id`.
fn placed(id: &str) -> aws_lambda_events::dynamodb::Event {
    event(batch_json(&[for_order(
        &stream_fixture("order-insert"),
        id,
    )]))
}

fn error_code(message: &ServerMessage) -> ErrorCode {
    match message {
        ServerMessage::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The chef was online for order-0 (and kept its cursor), went away, and order-1 was placed.
/// Returns the cursor the chef kept.
async fn chef_missed_an_order<S: Store + 'static>(store: &Arc<S>, fanout: &Fanout) -> String {
    open(&**store, CHEF, &chef()).await;
    fanout.run(&**store, &placed("order-0")).await;
    let seen = fanout.bodies_to(CHEF);
    assert_eq!(seen.len(), 1, "the chef heard of order-0 live");
    let kept = cursor_of(&seen[0]);
    store
        .close_connection(&conn(CHEF), fixtures::now())
        .await
        .expect("close");
    let outcome = fanout.run(&**store, &placed("order-1")).await;
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(
        outcome.metrics.delivery.deliveries, 0,
        "nobody is online to hear of it"
    );
    kept
}

async fn a_chef_offline_while_an_order_is_placed_gets_its_order_new_on_resume_once<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN a chef who missed order-1 while away, holding the cursor of order-0
    let fanout = Fanout::start().await;
    let kept = chef_missed_an_order(&store, &fanout).await;

    // WHEN it reconnects and resumes from that cursor
    open(&*store, CHEF_AGAIN, &chef()).await;
    let answer = resume(
        &store,
        &fanout,
        &chef(),
        CHEF_AGAIN,
        Some(&kept),
        fixtures::now(),
    )
    .await;

    // THEN it gets order-1's order:new, marked replayed, with its new cursor, before `resumed`
    let replayed = fanout.bodies_to(CHEF_AGAIN);
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["event"], "order:new");
    assert_eq!(replayed[0]["data"]["orderId"], "order-1");
    assert_eq!(replayed[0]["data"]["replayed"], true);
    let (newest, count, continuity) = resumed(&answer);
    assert_eq!((count, continuity), (1, Continuity::Ok));
    assert_eq!(cursor_of(&replayed[0]), newest);
    // AND it is the event exactly as the fan-out derived it from the record, plus its cursor
    // and `replayed`
    let derived = rnd_handlers::fanout::record_events(&placed("order-1").records[0])
        .expect("the record parses");
    let mut expected = serde_json::to_value(&derived[0].message).expect("JSON");
    expected["data"]["cursor"] = newest.clone().into();
    expected["data"]["replayed"] = true.into();
    assert_eq!(replayed[0], expected);

    // WHEN it resumes again from the newest cursor
    let again = resume(
        &store,
        &fanout,
        &chef(),
        CHEF_AGAIN,
        Some(&newest),
        fixtures::now(),
    )
    .await;
    // THEN nothing is replayed the second time, and the cursor stays
    assert_eq!(resumed(&again), (newest, 0, Continuity::Ok));
    assert_eq!(fanout.bodies_to(CHEF_AGAIN).len(), 1);
}

async fn resume_without_a_cursor_replays_nothing_and_tells_the_current_cursor<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN a chef with two orders in its inbox
    let fanout = Fanout::start().await;
    let kept = chef_missed_an_order(&store, &fanout).await;
    open(&*store, CHEF_AGAIN, &chef()).await;
    // WHEN it resumes without a cursor
    let answer = resume(&store, &fanout, &chef(), CHEF_AGAIN, None, fixtures::now()).await;
    // THEN nothing is replayed and the cursor is past both orders
    let (current, count, continuity) = resumed(&answer);
    assert_eq!((count, continuity), (0, Continuity::Ok));
    assert!(fanout.bodies_to(CHEF_AGAIN).is_empty());
    assert!(current > kept, "{current} after {kept}");
    let from_it = resume(
        &store,
        &fanout,
        &chef(),
        CHEF_AGAIN,
        Some(&current),
        fixtures::now(),
    )
    .await;
    assert_eq!(resumed(&from_it).1, 0);
    // AND a user with no inbox gets a cursor to start from
    open(&*store, DRIVER, &driver()).await;
    let fresh = resume(&store, &fanout, &driver(), DRIVER, None, fixtures::now()).await;
    assert_eq!(resumed(&fresh).1, 0);
}

async fn a_cursor_that_is_not_ours_is_refused_and_nothing_is_replayed<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN the chef's cursor from before order-1
    let fanout = Fanout::start().await;
    let chefs = chef_missed_an_order(&store, &fanout).await;
    open(&*store, DRIVER, &driver()).await;
    open(&*store, CHEF_AGAIN, &chef()).await;

    // WHEN the driver sends the chef's cursor, or anyone sends a malformed one or one past the
    // inbox's head
    let foreign = resume(
        &store,
        &fanout,
        &driver(),
        DRIVER,
        Some(&chefs),
        fixtures::now(),
    )
    .await;
    let malformed = resume(
        &store,
        &fanout,
        &chef(),
        CHEF_AGAIN,
        Some("garbage"),
        fixtures::now(),
    )
    .await;
    let mut parts: Vec<String> = chefs.split('-').map(str::to_owned).collect();
    parts[1] = format!("{:012x}", 99);
    let beyond = resume(
        &store,
        &fanout,
        &chef(),
        CHEF_AGAIN,
        Some(&parts.join("-")),
        fixtures::now(),
    )
    .await;

    // THEN each is refused with invalid_message and nothing is replayed to anyone
    for answer in [&foreign, &malformed, &beyond] {
        assert_eq!(error_code(answer), ErrorCode::InvalidMessage, "{answer:?}");
    }
    assert!(fanout.bodies_to(DRIVER).is_empty());
    assert!(fanout.bodies_to(CHEF_AGAIN).is_empty());
}

async fn an_expired_cursor_replays_what_is_kept_and_says_continuity_was_lost<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN inboxes that keep events for one hour, and a chef whose cursor is before order-1
    let mut fanout = Fanout::start().await;
    fanout.config.inbox_retention = std::time::Duration::from_secs(3600);
    let kept = chef_missed_an_order(&store, &fanout).await;
    // AND order-2 placed 90 minutes later (order-1 expires before it)
    let later = fixtures::now() + Duration::minutes(90);
    fanout.run_at(&*store, &placed("order-2"), later).await;

    // WHEN the chef resumes two hours after order-1
    open(&*store, CHEF_AGAIN, &chef()).await;
    let at = fixtures::now() + Duration::hours(2);
    let answer = resume(&store, &fanout, &chef(), CHEF_AGAIN, Some(&kept), at).await;

    // THEN what is still kept (order-2) is replayed, and continuity is lost
    let replayed = fanout.bodies_to(CHEF_AGAIN);
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0]["data"]["orderId"], "order-2");
    let (newest, count, continuity) = resumed(&answer);
    assert_eq!((count, continuity), (1, Continuity::Lost));
    assert_eq!(cursor_of(&replayed[0]), newest);

    // AND after everything expired, a resume from the old cursor replays nothing but still
    // says continuity was lost, and moves the cursor past what was lost
    let much_later = fixtures::now() + Duration::hours(5);
    let gone = resume(
        &store,
        &fanout,
        &chef(),
        CHEF_AGAIN,
        Some(&kept),
        much_later,
    )
    .await;
    let (past, count, continuity) = resumed(&gone);
    assert_eq!((count, continuity), (0, Continuity::Lost));
    assert_eq!(past, newest);
}

async fn concurrent_resumes_each_replay_everything_in_order<S: Store + 'static>(store: Arc<S>) {
    // GIVEN a chef who missed order-1 and order-2, back on two devices at once
    let fanout = Fanout::start().await;
    let kept = chef_missed_an_order(&store, &fanout).await;
    fanout.run(&*store, &placed("order-2")).await;
    open(&*store, CHEF_AGAIN, &chef()).await;
    open(&*store, CHEF_TABLET, &chef()).await;

    // WHEN both resume from the same cursor at the same time
    let answers = join_all([CHEF_AGAIN, CHEF_TABLET].map(|connection| {
        let (store, fanout, kept) = (&store, &fanout, &kept);
        async move {
            resume(
                store,
                fanout,
                &chef(),
                connection,
                Some(kept),
                fixtures::now(),
            )
            .await
        }
    }))
    .await;

    // THEN each device got both orders, in order, and the same `resumed`
    for (connection, answer) in [CHEF_AGAIN, CHEF_TABLET].iter().zip(&answers) {
        let orders: Vec<Value> = fanout
            .bodies_to(connection)
            .iter()
            .map(|b| b["data"]["orderId"].clone())
            .collect();
        assert_eq!(orders, [json!("order-1"), json!("order-2")], "{connection}");
        assert_eq!(resumed(answer).1, 2);
        assert_eq!(resumed(answer).2, Continuity::Ok);
    }
    assert_eq!(resumed(&answers[0]).0, resumed(&answers[1]).0);
}

async fn a_retried_batch_keeps_no_second_entry_and_resends_the_same_cursor<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN the chef online
    open(&*store, CHEF, &chef()).await;
    let fanout = Fanout::start().await;
    // WHEN the same batch is delivered twice (Lambda's retry)
    fanout.run(&*store, &placed("order-1")).await;
    fanout.run(&*store, &placed("order-1")).await;
    // THEN the chef got the same event twice with the same cursor, and its inbox holds one
    let bodies = fanout.bodies_to(CHEF);
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1]);
    let inbox = store
        .read_inbox(&chef().user_id, 0, 100, fixtures::now())
        .await
        .expect("read");
    assert_eq!((inbox.head, inbox.events.len()), (1, 1));
}

async fn an_inbox_that_cannot_keep_an_event_fails_its_record_and_posts_none_of_it<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN the cast, and the customer's inbox failing (a transient store failure)
    open_cast(&*store).await;
    let mut counting = CountingStore::new(Arc::clone(&store)).failing_inbox_of("customer-1");
    let fanout = Fanout::start().await;
    let names = ["order-insert", "order-payment-confirmed"];

    // WHEN the insert and the first status update are fanned out
    let outcome = fanout.run(&counting, &batch(&names)).await;

    // THEN the status update's record is reported failed, and nobody got the status update
    // (not even through other rooms): nothing is acknowledged that is not stored
    assert_eq!(
        failures(&outcome),
        [sequence_number("order-payment-confirmed")]
    );
    assert_eq!(fanout.events_to(CHEF), [("order:new", 1)]);
    for id in [CUSTOMER, CUSTOMER_PHONE, ADMIN] {
        assert!(fanout.events_to(id).is_empty(), "{id}");
    }

    // WHEN the store recovers and Lambda redelivers from the failed record
    counting.heal();
    let retry = fanout.run(&counting, &batch(&names[1..])).await;
    // THEN the status update is kept once and reaches its whole audience
    assert!(retry.response.batch_item_failures.is_empty());
    for id in [CUSTOMER, CUSTOMER_PHONE, ADMIN] {
        assert_eq!(fanout.events_to(id), [("order:status_update", 2)], "{id}");
    }
    let inbox = store
        .read_inbox(&customer().user_id, 0, 100, fixtures::now())
        .await
        .expect("read");
    assert_eq!(inbox.head, 1);
}

/// order-1 placed and moved to `status` in `store`; returns its view.
async fn order_in<S: Store + ?Sized>(store: &S, status: OrderStatus) -> OrderView {
    let view = placed_order("order-1", &customer(), fixtures::now());
    store.create_order(&view).await.expect("create");
    advance(store, view, status).await
}

async fn a_customer_offline_during_three_transitions_gets_them_on_subscribe_with_since_seq<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN the customer saw order-1 accepted, then went away while it became ready, assigned
    // and picked up
    let seen = order_in(&*store, OrderStatus::Accepted).await;
    let since = seen.seq();
    let now = advance(&*store, seen.clone(), OrderStatus::PickedUp).await;
    let fanout = Fanout::start().await;

    // WHEN it reconnects and subscribes with the last seq it saw
    open(&*store, CUSTOMER, &customer()).await;
    let answer = send(
        &store,
        &fanout,
        &customer(),
        CUSTOMER,
        json!({"action": "subscribe:order", "orderId": "order-1", "sinceSeq": since}),
        fixtures::now(),
    )
    .await;

    // THEN the three status updates come first, oldest first, marked replayed, each naming
    // the previous one's seq
    let replayed = fanout.bodies_to(CUSTOMER);
    let statuses: Vec<(&str, u64, u64)> = replayed
        .iter()
        .map(|b| {
            assert_eq!(b["event"], "order:status_update");
            assert_eq!(b["data"]["replayed"], true);
            (
                b["data"]["status"].as_str().expect("status"),
                b["data"]["seq"].as_u64().expect("seq"),
                b["data"]["previousStatusSeq"].as_u64().expect("previous"),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("ready_for_pickup", since + 1, since),
            ("assigned_to_driver", since + 2, since + 1),
            ("picked_up", since + 3, since + 2),
        ]
    );
    // AND `subscribed` says continuity is ok, with the snapshot at the current seq
    let ServerMessage::Subscribed(data) = answer else {
        panic!("expected subscribed, got {answer:?}")
    };
    assert_eq!(data.continuity, Some(Continuity::Ok));
    assert_eq!(data.replayed, Some(3));
    assert_eq!(data.seq, now.seq());
    // AND each replayed update is the one derived when it happened
    let record = |v: &OrderView| rnd_domain::OrderRecord::Order(v.order.clone());
    let mut view = seen;
    for body in &replayed {
        let (actor, action) = fixtures::next_step(view.order.status).expect("not final");
        let next = view.apply(&actor, action, fixtures::now()).expect("valid");
        let derived = derive_events(Some(&record(&view)), Some(&record(&next)));
        // (as its customer sees it: without who made the change)
        let mut expected =
            serde_json::to_value(derived[0].message.clone().seen_by(Role::Customer)).expect("JSON");
        expected["data"]["replayed"] = true.into();
        expected["data"]["timestamp"] = body["data"]["timestamp"].clone();
        assert_eq!(body, &expected);
        view = next;
    }
}

async fn subscribing_since_a_seq_the_order_never_reached_says_continuity_was_lost<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    let current = order_in(&*store, OrderStatus::Accepted).await;
    let fanout = Fanout::start().await;
    open(&*store, CUSTOMER, &customer()).await;
    let answer = send(
        &store,
        &fanout,
        &customer(),
        CUSTOMER,
        json!({"action": "subscribe:order", "orderId": "order-1", "sinceSeq": current.seq() + 5}),
        fixtures::now(),
    )
    .await;
    let ServerMessage::Subscribed(data) = answer else {
        panic!("expected subscribed, got {answer:?}")
    };
    assert_eq!(data.continuity, Some(Continuity::Lost));
    assert!(fanout.bodies_to(CUSTOMER).is_empty());
    // AND without sinceSeq, `subscribed` says nothing of continuity, as before
    let plain = send(
        &store,
        &fanout,
        &customer(),
        CUSTOMER,
        json!({"action": "subscribe:order", "orderId": "order-1"}),
        fixtures::now(),
    )
    .await;
    let ServerMessage::Subscribed(plain) = plain else {
        panic!("expected subscribed")
    };
    assert_eq!((plain.continuity, plain.replayed), (None, None));
}

async fn a_stranger_asking_for_an_orders_history_gets_not_found_and_nothing<S: Store + 'static>(
    store: Arc<S>,
) {
    order_in(&*store, OrderStatus::Accepted).await;
    let fanout = Fanout::start().await;
    let stranger = fixtures::other_customer();
    open(&*store, STRANGER, &stranger).await;
    let answer = send(
        &store,
        &fanout,
        &stranger,
        STRANGER,
        json!({"action": "subscribe:order", "orderId": "order-1", "sinceSeq": 0}),
        fixtures::now(),
    )
    .await;
    assert_eq!(error_code(&answer), ErrorCode::NotFound);
    assert!(fanout.bodies_to(STRANGER).is_empty());
    // AND a resume reads only the stranger's own (empty) inbox, whatever happened to others
    fanout.run(&*store, &placed("order-9")).await;
    let own = resume(&store, &fanout, &stranger, STRANGER, None, fixtures::now()).await;
    let cursor = resumed(&own).0;
    let from_start = resume(
        &store,
        &fanout,
        &stranger,
        STRANGER,
        Some(&cursor),
        fixtures::now(),
    )
    .await;
    assert_eq!(resumed(&from_start).1, 0);
    assert!(fanout.bodies_to(STRANGER).is_empty());
}

support::on_both_stores!(
    a_chef_offline_while_an_order_is_placed_gets_its_order_new_on_resume_once,
    resume_without_a_cursor_replays_nothing_and_tells_the_current_cursor,
    a_cursor_that_is_not_ours_is_refused_and_nothing_is_replayed,
    an_expired_cursor_replays_what_is_kept_and_says_continuity_was_lost,
    concurrent_resumes_each_replay_everything_in_order,
    a_retried_batch_keeps_no_second_entry_and_resends_the_same_cursor,
    an_inbox_that_cannot_keep_an_event_fails_its_record_and_posts_none_of_it,
    a_customer_offline_during_three_transitions_gets_them_on_subscribe_with_since_seq,
    subscribing_since_a_seq_the_order_never_reached_says_continuity_was_lost,
    a_stranger_asking_for_an_orders_history_gets_not_found_and_nothing,
);
