//! The conformance cases. Each takes a fresh harness and asserts behaviour through the ports
//! only (plus the harness's view of what was recorded).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use futures::future::join_all;
use rnd_domain::device::{DEVICE_TTL_DAYS, MAX_DEVICES_PER_USER, Platform};
use rnd_domain::identity::{Actor, Role};
use rnd_domain::inbox::InboxEvent;
use rnd_domain::limits::{Allowance, Limit};
use rnd_domain::live::{LocationOutcome, LocationWrite};
use rnd_domain::order::{Action, OrderStatus};
use rnd_domain::ports::{
    Connection, ConnectionStore, DeviceStore, IdempotencyStore, InboxStore, KeptAnswer, KeyClaim,
    LiveLocationStore, OrderFilter, OrderQuery, OrderStore, PresenceStore, ProfileStore,
    PushLedger, RateLimitStore, StoreError,
};
use rnd_domain::presence::{ConnectionStats, Presence, connection_stats, minute_of, stats_from};
use rnd_domain::rooms::Room;
use rnd_domain::{OrderRecord, OrderView};

use crate::Harness;
use crate::fixtures::*;

/// An order placed and read back is the same order, with its live item at sequence 1.
pub async fn order_round_trips_through_the_store<H: Harness>(h: &H) {
    // GIVEN a placed order
    let store = h.store();
    let view = placed_order("o-round", &customer(), now());
    // WHEN it is stored and read back
    store.create_order(&view).await.expect("create");
    let read = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    // THEN it is unchanged
    assert_eq!(read, view);
    assert_eq!(read.seq(), 1);
}

/// Placing an order with an id that exists fails with `AlreadyExists` and changes nothing.
pub async fn creating_an_order_twice_is_refused<H: Harness>(h: &H) {
    let store = h.store();
    let view = placed_order("o-twice", &customer(), now());
    store.create_order(&view).await.expect("first create");
    let mut other = placed_order("o-twice", &other_customer(), now());
    other.order.customer_name = "Someone Else".into();
    let err = store.create_order(&other).await.expect_err("second create");
    assert!(matches!(err, StoreError::AlreadyExists), "got {err:?}");
    let read = store.get_order(&view.order.order_id).await.expect("get");
    assert_eq!(read, Some(view));
}

/// Reading an order that was never placed gives `None`.
pub async fn unknown_order_is_none<H: Harness>(h: &H) {
    let read = h.store().get_order(&order_id("o-none")).await.expect("get");
    assert_eq!(read, None);
}

/// A committed transition is stored with its history, timestamp and the next sequence.
pub async fn a_transition_is_committed_with_the_next_sequence<H: Harness>(h: &H) {
    let store = h.store();
    let view = placed_order("o-next", &customer(), now());
    store.create_order(&view).await.expect("create");
    let next = view
        .apply(&admin(), Action::ConfirmPayment, now())
        .expect("valid");
    store.commit_transition(&view, &next).await.expect("commit");
    let read = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(read.order.status, OrderStatus::PaymentConfirmed);
    assert_eq!(read.order.status_history.len(), 2);
    assert!(read.order.payment_confirmed_at.is_some());
    assert_eq!((read.order.seq, read.live.seq), (2, 2));
    assert_eq!(read.live.status, OrderStatus::PaymentConfirmed);
    assert_eq!(read, next);
}

/// Two transitions computed from the same state race; exactly one is committed, the other
/// fails with `Conflict`, and the stored order is the winner's.
pub async fn two_racing_transitions_have_exactly_one_winner<H: Harness>(h: &H) {
    for round in 0..5 {
        let store = h.store();
        let view = placed_order(&format!("o-race-{round}"), &customer(), now());
        store.create_order(&view).await.expect("create");
        let confirm = view
            .apply(&admin(), Action::ConfirmPayment, now())
            .expect("valid");
        let cancel = view
            .apply(
                &customer(),
                Action::Cancel {
                    reason: "changed my mind".into(),
                },
                now(),
            )
            .expect("valid");
        let (a, b) = {
            let (s1, s2) = (Arc::clone(&store), Arc::clone(&store));
            let (v1, v2) = (view.clone(), view.clone());
            let (c1, c2) = (confirm.clone(), cancel.clone());
            tokio::join!(
                tokio::spawn(async move { s1.commit_transition(&v1, &c1).await }),
                tokio::spawn(async move { s2.commit_transition(&v2, &c2).await })
            )
        };
        let (a, b) = (a.expect("task"), b.expect("task"));
        let winners = [a.is_ok(), b.is_ok()].iter().filter(|w| **w).count();
        assert_eq!(winners, 1, "round {round}: {a:?} / {b:?}");
        let loser = if a.is_ok() { b } else { a };
        assert!(matches!(loser, Err(StoreError::Conflict)), "{loser:?}");
        let stored = store
            .get_order(&view.order.order_id)
            .await
            .expect("get")
            .expect("present");
        let expected = if stored.order.status == OrderStatus::Cancelled {
            cancel
        } else {
            confirm
        };
        assert_eq!(stored, expected);
    }
}

/// A transition computed before a location was accepted must not overwrite the live item:
/// it fails with `Conflict`.
pub async fn a_transition_read_before_a_location_write_conflicts<H: Harness>(h: &H) {
    let store = h.store();
    let view = placed_order("o-stale", &customer(), now());
    store.create_order(&view).await.expect("create");
    let view = advance(&*store, view, OrderStatus::InTransit).await;
    let stale_next = view
        .apply(&driver(), Action::Deliver, now())
        .expect("valid");
    let outcome = store
        .record_location(&location_write(&view, &driver(), now().timestamp_millis()))
        .await
        .expect("location");
    assert!(matches!(outcome, LocationOutcome::Accepted { .. }));
    let err = store
        .commit_transition(&view, &stale_next)
        .await
        .expect_err("stale transition");
    assert!(matches!(err, StoreError::Conflict), "got {err:?}");
    let stored = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(stored.order.status, OrderStatus::InTransit);
    assert!(stored.live.location.is_some(), "the location survived");
}

/// Fifty concurrent requests for a day's next order number get fifty distinct numbers, 1–50.
pub async fn order_numbers_are_distinct_under_concurrency<H: Harness>(h: &H) {
    let store = h.store();
    let day = NaiveDate::from_ymd_opt(2026, 11, 28).expect("valid date");
    let tasks = (0..50).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.next_order_number(day).await })
    });
    let numbers: BTreeSet<u32> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("number"))
        .collect();
    assert_eq!(numbers, (1..=50).collect::<BTreeSet<u32>>());
}

/// Order numbers restart at 1 each day.
pub async fn order_numbers_count_per_day<H: Harness>(h: &H) {
    let store = h.store();
    let d1 = NaiveDate::from_ymd_opt(2026, 1, 31).expect("valid date");
    let d2 = NaiveDate::from_ymd_opt(2026, 2, 1).expect("valid date");
    assert_eq!(store.next_order_number(d1).await.expect("n"), 1);
    assert_eq!(store.next_order_number(d1).await.expect("n"), 2);
    assert_eq!(store.next_order_number(d2).await.expect("n"), 1);
    assert_eq!(store.next_order_number(d1).await.expect("n"), 3);
}

/// The live item reads alone (eventually: the port allows it to lag), with the pickup and
/// drop-off mirrored from the order, then with an accepted location; an unknown order has none.
pub async fn the_live_item_is_read_alone_with_the_points_its_eta_needs<H: Harness>(h: &H) {
    // GIVEN a placed order
    let store = h.store();
    let view = placed_order("o-live-read", &customer(), now());
    store.create_order(&view).await.expect("create");
    // WHEN its live item is read alone
    let live = eventually_live(&*store, &view, |l| l.seq == view.seq()).await;
    // THEN it is the order's live item, with the chef's and the customer's points
    assert_eq!(live, view.live);
    assert_eq!(live.pickup, Some(view.order.pickup_point()));
    assert_eq!(live.dropoff, Some(view.order.dropoff_point()));
    // AND after an accepted location it holds the location, at the new sequence
    let view = advance(&*store, view, OrderStatus::InTransit).await;
    let write = location_write(&view, &driver(), now().timestamp_millis());
    store.record_location(&write).await.expect("location");
    let live = eventually_live(&*store, &view, |l| l.seq == view.seq() + 1).await;
    assert_eq!(live.location, Some(write.location));
    assert_eq!(live.pickup, Some(view.order.pickup_point()));
    // AND an order that was never placed has no live item
    let unknown = rnd_domain::OrderId::parse("o-never-placed").expect("id");
    assert_eq!(store.get_live(&unknown).await.expect("get_live"), None);
}

/// The live item as `get_live` reads it once `done` holds (for up to 5 s).
async fn eventually_live<S: LiveLocationStore + ?Sized>(
    store: &S,
    view: &OrderView,
    done: impl Fn(&rnd_domain::LiveState) -> bool,
) -> rnd_domain::LiveState {
    let mut last = None;
    for _ in 0..100 {
        last = store
            .get_live(&view.order.order_id)
            .await
            .expect("get_live");
        if last.as_ref().is_some_and(&done) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    last.expect("the live item is there")
}

/// A location whose writer announces it records `announcedSeq` = its sequence, in the item and
/// in the recorded change; the next location that is not announced, and a transition, leave no
/// mark.
pub async fn an_announced_location_marks_the_live_item_until_another_write<H: Harness>(h: &H) {
    // GIVEN an order in transit
    let store = h.store();
    let view = placed_order("o-announced", &customer(), now());
    store.create_order(&view).await.expect("create");
    let view = advance(&*store, view, OrderStatus::InTransit).await;
    let t0 = now().timestamp_millis();
    // WHEN a location is written by a writer that announces it
    let announced = LocationWrite {
        announced: true,
        ..location_write(&view, &driver(), t0)
    };
    let outcome = store.record_location(&announced).await.expect("location");
    let LocationOutcome::Accepted { seq } = outcome else {
        panic!("{outcome:?}")
    };
    // THEN the live item carries the mark of that sequence
    let read = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(read.live.announced_seq, Some(seq));
    assert!(read.live.announced());
    // AND so does the change the stream carries
    let changes = h.recorded_changes(&view.order.order_id).await;
    let last = changes.last().and_then(|c| c.new.clone());
    assert!(
        matches!(&last, Some(OrderRecord::Live(l)) if l.announced_seq == Some(seq)),
        "{last:?}"
    );
    // WHEN the next location is left to the stream
    let plain = location_write(&view, &driver(), t0 + 1_000);
    store.record_location(&plain).await.expect("location");
    // THEN the mark is gone
    let read = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(read.live.announced_seq, None);
    // AND a transition after an announced location leaves none either
    let again = LocationWrite {
        announced: true,
        ..location_write(&view, &driver(), t0 + 2_000)
    };
    store.record_location(&again).await.expect("location");
    let read = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert!(read.live.announced());
    let delivered = advance(&*store, read, OrderStatus::Delivered).await;
    let read = store
        .get_order(&delivered.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(read.live.announced_seq, None);
}

/// The assigned driver's location is accepted, stored with the ETA, and moves the sequence.
pub async fn assigned_driver_location_is_accepted_and_moves_the_sequence<H: Harness>(h: &H) {
    let store = h.store();
    let view = placed_order("o-loc", &customer(), now());
    store.create_order(&view).await.expect("create");
    let view = advance(&*store, view, OrderStatus::PickedUp).await;
    let write = location_write(&view, &driver(), now().timestamp_millis());
    let outcome = store.record_location(&write).await.expect("location");
    assert_eq!(
        outcome,
        LocationOutcome::Accepted {
            seq: view.seq() + 1
        }
    );
    let stored = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(stored.seq(), view.seq() + 1);
    assert_eq!(stored.live.location, Some(write.location.clone()));
    assert_eq!(stored.live.eta, write.eta);
    assert_eq!(stored.live.observed_speed_mps, Some(8.5));
    assert_eq!(stored.live.location_accepted_at_ms, Some(write.now_ms));
    assert_eq!(stored.order, view.order, "the order item is not rewritten");
}

/// A route written with a location is kept on the live item with its ETA's source; a later
/// location without one leaves it; a location with a new one replaces it.
pub async fn a_route_written_with_a_location_is_kept_until_another_replaces_it<H: Harness>(h: &H) {
    // GIVEN an order picked up
    let store = h.store();
    let view = placed_order("o-route", &customer(), now());
    store.create_order(&view).await.expect("create");
    let view = advance(&*store, view, OrderStatus::PickedUp).await;
    let route = |leg, minutes: i64| {
        let points = [(30.27, -97.74), (30.28, -97.74), (30.28, -97.73)]
            .map(|(lat, lon)| rnd_domain::geo::GeoPoint::parse(lat, lon).expect("valid"));
        rnd_domain::route::StoredRoute::keep(
            &rnd_domain::route::Route {
                points: points.to_vec(),
                distance_m: 2_100.0,
                duration_s: 300.0,
                pickup: None,
            },
            leg,
            "osrm",
            now() + Duration::minutes(minutes),
        )
    };
    // WHEN a location is written with a route and a routed ETA
    let t0 = now().timestamp_millis();
    let mut first = location_write(&view, &driver(), t0);
    first.route = Some(route(rnd_domain::route::RouteLeg::ToDropoff, 0));
    if let Some(eta) = first.eta.as_mut() {
        eta.source = rnd_domain::live::EtaSource::Route;
    }
    store.record_location(&first).await.expect("location");
    // AND another without a route
    let second = location_write(&view, &driver(), t0 + 5_000);
    store.record_location(&second).await.expect("location");
    // THEN the live item keeps the first route
    let live = store
        .get_live(&view.order.order_id)
        .await
        .expect("live")
        .expect("present");
    assert_eq!(live.route, first.route);
    assert_eq!(live.location, Some(second.location.clone()));
    // WHEN a third brings a new route THEN it replaces the first, and its ETA's source is kept
    let mut third = location_write(&view, &driver(), t0 + 10_000);
    third.route = Some(route(rnd_domain::route::RouteLeg::ToDropoff, 1));
    if let Some(eta) = third.eta.as_mut() {
        eta.source = rnd_domain::live::EtaSource::Route;
    }
    store.record_location(&third).await.expect("location");
    let live = store
        .get_live(&view.order.order_id)
        .await
        .expect("live")
        .expect("present");
    assert_eq!(live.route, third.route);
    assert_eq!(
        live.eta.map(|e| e.source),
        Some(rnd_domain::live::EtaSource::Route)
    );
}

/// A second location inside the interval is rate-limited with the time to wait; after the
/// interval it is accepted.
pub async fn location_too_soon_after_the_last_is_rate_limited<H: Harness>(h: &H) {
    let store = h.store();
    let view = placed_order("o-rate", &customer(), now());
    store.create_order(&view).await.expect("create");
    let view = advance(&*store, view, OrderStatus::InTransit).await;
    let t0 = now().timestamp_millis();
    let first = store
        .record_location(&location_write(&view, &driver(), t0))
        .await
        .expect("first");
    assert!(matches!(first, LocationOutcome::Accepted { .. }));
    let soon = store
        .record_location(&location_write(&view, &driver(), t0 + 400))
        .await
        .expect("soon");
    assert_eq!(
        soon,
        LocationOutcome::RateLimited {
            retry_after_ms: 600
        }
    );
    let later = store
        .record_location(&location_write(&view, &driver(), t0 + 1_000))
        .await
        .expect("later");
    assert_eq!(
        later,
        LocationOutcome::Accepted {
            seq: view.seq() + 2
        }
    );
}

/// Ten concurrent locations in the same interval: exactly one is accepted, across writers.
pub async fn concurrent_locations_in_one_interval_accept_exactly_one<H: Harness>(h: &H) {
    let store = h.store();
    let view = placed_order("o-burst", &customer(), now());
    store.create_order(&view).await.expect("create");
    let view = advance(&*store, view, OrderStatus::InTransit).await;
    let t0 = now().timestamp_millis();
    let tasks = (0..10).map(|i| {
        let store = Arc::clone(&store);
        let write = location_write(&view, &driver(), t0 + i);
        tokio::spawn(async move { store.record_location(&write).await })
    });
    let outcomes: Vec<LocationOutcome> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("outcome"))
        .collect();
    let accepted = outcomes
        .iter()
        .filter(|o| matches!(o, LocationOutcome::Accepted { .. }))
        .count();
    let limited = outcomes
        .iter()
        .filter(|o| matches!(o, LocationOutcome::RateLimited { .. }))
        .count();
    assert_eq!((accepted, limited), (1, 9), "{outcomes:?}");
    let stored = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(stored.seq(), view.seq() + 1);
}

/// A driver who is not assigned to the order cannot write its location.
pub async fn location_from_another_driver_is_refused<H: Harness>(h: &H) {
    let store = h.store();
    let view = placed_order("o-thief", &customer(), now());
    store.create_order(&view).await.expect("create");
    let view = advance(&*store, view, OrderStatus::InTransit).await;
    let outcome = store
        .record_location(&location_write(
            &view,
            &other_driver(),
            now().timestamp_millis(),
        ))
        .await
        .expect("outcome");
    assert_eq!(outcome, LocationOutcome::NotAssignedDriver);
    let stored = store
        .get_order(&view.order.order_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(stored.live.location, None);
    assert_eq!(stored.seq(), view.seq());
}

/// Before pickup assignment and after delivery the driver's locations are refused.
pub async fn location_outside_a_driver_phase_is_refused<H: Harness>(h: &H) {
    let store = h.store();
    let view = placed_order("o-phase", &customer(), now());
    store.create_order(&view).await.expect("create");
    let ready = advance(&*store, view, OrderStatus::ReadyForPickup).await;
    let before = store
        .record_location(&location_write(&ready, &driver(), now().timestamp_millis()))
        .await
        .expect("outcome");
    assert_eq!(before, LocationOutcome::NotAssignedDriver, "no driver yet");
    let delivered = advance(&*store, ready, OrderStatus::Delivered).await;
    let after = store
        .record_location(&location_write(
            &delivered,
            &driver(),
            now().timestamp_millis(),
        ))
        .await
        .expect("outcome");
    assert_eq!(after, LocationOutcome::NotActive);
}

/// A location for an order that does not exist is `NotFound`, and creates nothing.
pub async fn location_for_an_unknown_order_is_not_found<H: Harness>(h: &H) {
    let store = h.store();
    let ghost = placed_order("o-ghost", &customer(), now());
    let outcome = store
        .record_location(&location_write(&ghost, &driver(), now().timestamp_millis()))
        .await
        .expect("outcome");
    assert_eq!(outcome, LocationOutcome::NotFound);
    assert_eq!(
        store.get_order(&ghost.order.order_id).await.expect("get"),
        None
    );
}

/// A newly opened connection is readable and is in exactly the rooms it was opened with: an
/// admin in its user room and `role:admin`; a driver in its user room only, so the
/// `role:driver` room (one partition shared by every driver) gets no membership.
pub async fn opened_connection_is_in_its_initial_rooms_and_no_other<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    // GIVEN an admin's and a driver's connections WHEN opened with their initial rooms
    let a = connection("c-open-admin", &admin(), at);
    let admin_rooms = rnd_domain::rooms::initial_rooms(&admin());
    store.open_connection(&a, &admin_rooms).await.expect("open");
    let d = connection("c-open-driver", &driver(), at);
    let driver_rooms = rnd_domain::rooms::initial_rooms(&driver());
    store
        .open_connection(&d, &driver_rooms)
        .await
        .expect("open");
    // THEN each is readable and a member of each of its rooms
    for (c, rooms) in [(&a, &admin_rooms), (&d, &driver_rooms)] {
        assert_eq!(
            store
                .get_connection(&c.connection_id, at)
                .await
                .expect("get"),
            Some(c.clone())
        );
        for room in rooms.iter() {
            assert_eq!(
                store.room_members(room, at).await.expect("members").open,
                vec![c.connection_id.clone()]
            );
        }
        let mut of = store.rooms_of(&c.connection_id).await.expect("rooms");
        of.sort();
        let mut expected = rooms.to_vec();
        expected.sort();
        assert_eq!(of, expected);
    }
    // AND the admin is in role:admin, while nobody is in role:driver
    assert_eq!(admin_rooms.len(), 2);
    assert_eq!(driver_rooms, vec![Room::User(driver().user_id)]);
    assert!(
        store
            .room_members(&Room::Role(Role::Driver), at)
            .await
            .expect("members")
            .open
            .is_empty()
    );
}

/// Joining an order room adds the connection to its members; leaving removes it.
pub async fn joining_and_leaving_an_order_room<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let a = connection("c-a", &customer(), at);
    let b = connection("c-b", &admin(), at);
    store.open_connection(&a, &[]).await.expect("open a");
    store.open_connection(&b, &[]).await.expect("open b");
    let room = Room::Order(order_id("o-room"));
    store
        .join_room(&a.connection_id, &room, at)
        .await
        .expect("join a");
    store
        .join_room(&b.connection_id, &room, at)
        .await
        .expect("join b");
    let mut members = store.room_members(&room, at).await.expect("members").open;
    members.sort();
    assert_eq!(
        members,
        vec![a.connection_id.clone(), b.connection_id.clone()]
    );
    assert!(
        store
            .leave_room(&a.connection_id, &room)
            .await
            .expect("leave")
    );
    assert!(
        !store
            .leave_room(&a.connection_id, &room)
            .await
            .expect("leave again"),
        "leaving twice reports it was not a member"
    );
    assert_eq!(
        store.room_members(&room, at).await.expect("members").open,
        vec![b.connection_id.clone()]
    );
    assert_eq!(
        store.rooms_of(&a.connection_id).await.expect("rooms"),
        Vec::<Room>::new()
    );
}

/// Joining a room twice leaves one membership.
pub async fn joining_twice_is_idempotent<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let c = connection("c-twice", &customer(), at);
    store.open_connection(&c, &[]).await.expect("open");
    let room = Room::Order(order_id("o-twice"));
    store
        .join_room(&c.connection_id, &room, at)
        .await
        .expect("join");
    store
        .join_room(&c.connection_id, &room, at)
        .await
        .expect("join again");
    assert_eq!(
        store.room_members(&room, at).await.expect("members").open,
        vec![c.connection_id.clone()]
    );
    assert_eq!(
        store.rooms_of(&c.connection_id).await.expect("rooms"),
        vec![room]
    );
}

/// Unknown, closed and expired connections cannot join rooms.
pub async fn joining_with_a_closed_connection_is_refused<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let room = Room::Order(order_id("o-closed"));
    let unknown = store
        .join_room(&connection_id("c-unknown"), &room, at)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::ConnectionGone)),
        "{unknown:?}"
    );
    let c = connection("c-closed", &customer(), at);
    store.open_connection(&c, &[]).await.expect("open");
    store
        .close_connection(&c.connection_id, at)
        .await
        .expect("close");
    let closed = store.join_room(&c.connection_id, &room, at).await;
    assert!(
        matches!(closed, Err(StoreError::ConnectionGone)),
        "{closed:?}"
    );
    let old = connection("c-old", &customer(), at - Duration::hours(3));
    store.open_connection(&old, &[]).await.expect("open old");
    let expired = store.join_room(&old.connection_id, &room, at).await;
    assert!(
        matches!(expired, Err(StoreError::ConnectionGone)),
        "{expired:?}"
    );
    assert!(
        store
            .room_members(&room, at)
            .await
            .expect("members")
            .open
            .is_empty()
    );
}

/// Closing a connection removes it and every membership, and reports its rooms and duration.
pub async fn closing_removes_the_connection_and_every_membership<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let c = connection("c-close", &driver(), at);
    let initial = rnd_domain::rooms::initial_rooms(&driver());
    store.open_connection(&c, &initial).await.expect("open");
    let order_room = Room::Order(order_id("o-close"));
    store
        .join_room(&c.connection_id, &order_room, at)
        .await
        .expect("join");
    let later = at + Duration::seconds(95);
    let closed = store
        .close_connection(&c.connection_id, later)
        .await
        .expect("close")
        .expect("was open");
    assert_eq!(closed.connection, c);
    assert_eq!(closed.duration(), Duration::seconds(95));
    let mut rooms = closed.rooms.clone();
    rooms.sort();
    let mut expected = vec![order_room.clone(), Room::User(driver().user_id)];
    expected.sort();
    assert_eq!(rooms, expected);
    assert_eq!(
        store
            .get_connection(&c.connection_id, later)
            .await
            .expect("get"),
        None
    );
    for room in expected {
        assert!(
            store
                .room_members(&room, later)
                .await
                .expect("members")
                .open
                .is_empty(),
            "{room} still has members"
        );
    }
}

/// Closing removes every membership the connection row lists, whatever `$connect` gave it: an
/// admin's `role:admin`, and the `role:driver` of a driver connected before `$connect` stopped
/// joining role rooms other than `role:admin` (such connections live up to 2 hours after the
/// deploy, and their rows name the room).
pub async fn closing_removes_role_memberships_too<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    // GIVEN an admin's connection in its initial rooms (its user room and role:admin) ...
    let admin_connection = connection("c-close-admin", &admin(), at);
    let admin_rooms = rnd_domain::rooms::initial_rooms(&admin());
    assert!(admin_rooms.contains(&Room::Role(Role::Admin)));
    // AND a driver's connection opened in its user room and role:driver, as before
    let legacy = connection("c-close-legacy", &driver(), at);
    let legacy_rooms = vec![Room::User(driver().user_id), Room::Role(Role::Driver)];
    for (c, rooms) in [(&admin_connection, &admin_rooms), (&legacy, &legacy_rooms)] {
        store.open_connection(c, rooms).await.expect("open");
        // WHEN it is closed
        let closed = store
            .close_connection(&c.connection_id, at)
            .await
            .expect("close")
            .expect("was open");
        // THEN it reports those rooms, and none of them still has it as a member
        let mut reported = closed.rooms.clone();
        reported.sort();
        let mut expected = rooms.clone();
        expected.sort();
        assert_eq!(reported, expected);
        for room in rooms {
            assert!(
                store
                    .room_members(room, at)
                    .await
                    .expect("members")
                    .open
                    .is_empty(),
                "{room} still has members"
            );
        }
    }
}

/// Closing an unknown or already closed connection is harmless and says so.
pub async fn closing_twice_is_harmless<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let c = connection("c-again", &chef(), at);
    store
        .open_connection(&c, &rnd_domain::rooms::initial_rooms(&chef()))
        .await
        .expect("open");
    assert!(
        store
            .close_connection(&c.connection_id, at)
            .await
            .expect("close")
            .is_some()
    );
    assert_eq!(
        store
            .close_connection(&c.connection_id, at)
            .await
            .expect("close again"),
        None
    );
    assert_eq!(
        store
            .close_connection(&connection_id("c-never"), at)
            .await
            .expect("close unknown"),
        None
    );
}

/// A connection past its TTL is not returned, nor counted in its rooms, even though the store
/// has not deleted it yet (DynamoDB deletes expired items lazily).
pub async fn expired_connections_are_invisible_before_the_store_deletes_them<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let old = connection("c-stale", &customer(), at - Duration::hours(3));
    let fresh = connection("c-fresh", &other_customer(), at);
    let room = Room::Order(order_id("o-stale"));
    store
        .open_connection(&old, std::slice::from_ref(&room))
        .await
        .expect("open old");
    store
        .open_connection(&fresh, std::slice::from_ref(&room))
        .await
        .expect("open fresh");
    assert_eq!(
        store
            .get_connection(&old.connection_id, at)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store.room_members(&room, at).await.expect("members").open,
        vec![fresh.connection_id.clone()]
    );
}

/// The connection row and each membership row carry the TTL attribute: connectedAt + 2 h +
/// grace, in epoch seconds.
pub async fn connection_and_membership_rows_carry_the_ttl<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let c = connection("c-ttl", &admin(), at);
    let initial = rnd_domain::rooms::initial_rooms(&admin());
    store.open_connection(&c, &initial).await.expect("open");
    store
        .join_room(&c.connection_id, &Room::Order(order_id("o-ttl")), at)
        .await
        .expect("join");
    let expected = c.expires_at.timestamp();
    assert_eq!(
        expected,
        at.timestamp() + 2 * 3600 + rnd_domain::ports::CONNECTION_TTL_GRACE_SECS
    );
    assert_eq!(
        h.stored_connection_ttl(&c.connection_id).await,
        Some(expected)
    );
    let ttls = h.stored_membership_ttls(&c.connection_id).await;
    assert_eq!(ttls, vec![expected; initial.len() + 1]);
}

/// Every change of an order's items is recorded, per item in write order: the first has no
/// old image, each old image is the previous new image, and sequence numbers increase.
pub async fn change_log_records_every_change_in_order<H: Harness>(h: &H) {
    let store = h.store();
    let view = placed_order("o-log", &customer(), now());
    store.create_order(&view).await.expect("create");
    let view = advance(&*store, view, OrderStatus::InTransit).await;
    let t0 = now().timestamp_millis();
    for i in 0..3 {
        let outcome = store
            .record_location(&location_write(&view, &driver(), t0 + i * 1_000))
            .await
            .expect("location");
        assert!(matches!(outcome, LocationOutcome::Accepted { .. }));
    }
    let changes = h.recorded_changes(&view.order.order_id).await;
    let orders: Vec<_> = changes
        .iter()
        .filter(|c| matches!(c.new, Some(OrderRecord::Order(_))))
        .collect();
    let lives: Vec<_> = changes
        .iter()
        .filter(|c| matches!(c.new, Some(OrderRecord::Live(_))))
        .collect();
    assert_eq!(orders.len(), 7, "insert + 6 transitions");
    assert_eq!(lives.len(), 10, "insert + 6 transitions + 3 locations");
    for kind in [orders, lives] {
        assert_eq!(kind[0].old, None, "first change is an insert");
        for pair in kind.windows(2) {
            assert_eq!(
                pair[1].old, pair[0].new,
                "old image is the previous new image"
            );
            let (a, b) = (
                pair[0].new.as_ref().map(OrderRecord::seq),
                pair[1].new.as_ref().map(OrderRecord::seq),
            );
            assert!(a < b, "sequence increases: {a:?} then {b:?}");
        }
    }
    let last_seq = changes
        .iter()
        .filter_map(|c| c.new.as_ref().map(OrderRecord::seq))
        .max();
    assert_eq!(last_seq, Some(10));
}

/// Orders are listed per customer, chef, driver and for admins, newest first, in pages.
pub async fn orders_are_listed_newest_first_per_party_with_a_cursor<H: Harness>(h: &H) {
    let store = h.store();
    let base = now() - Duration::minutes(30);
    let mut ids = Vec::new();
    for i in 0..5 {
        let who = if i % 2 == 0 {
            customer()
        } else {
            other_customer()
        };
        let view = placed_order(&format!("o-list-{i}"), &who, base + Duration::minutes(i));
        store.create_order(&view).await.expect("create");
        ids.push(view);
    }
    // o-list-0, 2, 4 are customer-1's; 1, 3 are customer-2's; all are chef-1's.
    let names = |orders: &[rnd_domain::Order]| -> Vec<String> {
        orders.iter().map(|o| o.order_id.to_string()).collect()
    };
    let page1 = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::Customer(customer().user_id),
            limit: 2,
            cursor: None,
        })
        .await
        .expect("page 1");
    assert_eq!(names(&page1.orders), ["o-list-4", "o-list-2"]);
    let cursor = page1.next_cursor.expect("more pages");
    let page2 = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::Customer(customer().user_id),
            limit: 2,
            cursor: Some(cursor),
        })
        .await
        .expect("page 2");
    assert_eq!(names(&page2.orders), ["o-list-0"]);
    assert_eq!(page2.next_cursor, None);

    let chef_page = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::Chef(chef().user_id),
            limit: 10,
            cursor: None,
        })
        .await
        .expect("chef");
    assert_eq!(
        names(&chef_page.orders),
        ["o-list-4", "o-list-3", "o-list-2", "o-list-1", "o-list-0"]
    );

    let driver_before = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::Driver(driver().user_id),
            limit: 10,
            cursor: None,
        })
        .await
        .expect("driver");
    assert!(driver_before.orders.is_empty());
    advance(&*store, ids[1].clone(), OrderStatus::AssignedToDriver).await;
    let driver_after = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::Driver(driver().user_id),
            limit: 10,
            cursor: None,
        })
        .await
        .expect("driver");
    assert_eq!(names(&driver_after.orders), ["o-list-1"]);
    assert_eq!(
        driver_after.orders[0].status,
        OrderStatus::AssignedToDriver,
        "listing shows the current state"
    );

    let all = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::All,
            limit: 3,
            cursor: None,
        })
        .await
        .expect("all");
    assert_eq!(names(&all.orders), ["o-list-4", "o-list-3", "o-list-2"]);
    let rest = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::All,
            limit: 3,
            cursor: all.next_cursor,
        })
        .await
        .expect("all rest");
    assert_eq!(names(&rest.orders), ["o-list-1", "o-list-0"]);
}

/// A cursor that is not one the store issued (garbage, or another filter's) is refused as
/// `InvalidCursor`, a caller mistake, not as corrupt data.
pub async fn a_cursor_the_store_did_not_issue_is_refused<H: Harness>(h: &H) {
    let store = h.store();
    let cursor = a_customer_listing_cursor(&*store).await;
    let garbage = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::Customer(customer().user_id),
            limit: 1,
            cursor: Some("not-a-cursor-%%".into()),
        })
        .await;
    assert!(
        matches!(garbage, Err(StoreError::InvalidCursor)),
        "{garbage:?}"
    );
    // A cursor from another party's listing must not page through this one.
    let foreign = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::Chef(chef().user_id),
            limit: 1,
            cursor: Some(cursor.clone()),
        })
        .await;
    match foreign {
        Err(StoreError::InvalidCursor) => {}
        Ok(page) => assert!(
            page.orders.iter().all(|o| o.chef.chef_id == chef().user_id),
            "a foreign cursor never leaks other orders"
        ),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

/// Opening a connection id that is already open fails with `AlreadyExists` and changes nothing.
pub async fn opening_a_connection_id_twice_is_refused<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let first = connection("c-dup", &customer(), at);
    store
        .open_connection(&first, &rnd_domain::rooms::initial_rooms(&customer()))
        .await
        .expect("open");
    let second = connection("c-dup", &other_customer(), at);
    let err = store
        .open_connection(
            &second,
            &rnd_domain::rooms::initial_rooms(&other_customer()),
        )
        .await
        .expect_err("second open");
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    assert_eq!(
        store
            .get_connection(&first.connection_id, at)
            .await
            .expect("get"),
        Some(first)
    );
    assert!(
        store
            .room_members(&Room::User(other_customer().user_id), at)
            .await
            .expect("members")
            .open
            .is_empty()
    );
}

/// A room lists the members whose token has expired apart from the open ones, from the instant
/// of the expiry, whether they joined at `$connect` or later: nothing is to be delivered to them.
pub async fn members_past_their_token_are_listed_apart_from_the_open_ones<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let room = Room::Order(order_id("o-tokens"));
    // GIVEN two customers' connections in the order room (one joined at connect, one later),
    // the first token expiring in 10 minutes and the second in an hour
    let short = Connection {
        token_expires_at: at + Duration::minutes(10),
        ..connection("c-short", &customer(), at)
    };
    let long = connection("c-long", &other_customer(), at);
    store
        .open_connection(&short, std::slice::from_ref(&room))
        .await
        .expect("open short");
    store.open_connection(&long, &[]).await.expect("open long");
    store
        .join_room(&long.connection_id, &room, at)
        .await
        .expect("join long");
    let late = Connection {
        token_expires_at: at + Duration::minutes(10),
        ..connection("c-late", &driver(), at)
    };
    store.open_connection(&late, &[]).await.expect("open late");
    store
        .join_room(&late.connection_id, &room, at)
        .await
        .expect("join late");
    let expiry = short.token_expires_at;

    // WHEN the room is read a second before the short tokens expire
    let before = store
        .room_members(&room, expiry - Duration::seconds(1))
        .await
        .expect("members");
    // THEN all three are open
    let mut open = before.open.clone();
    open.sort();
    assert_eq!(
        open,
        vec![
            late.connection_id.clone(),
            long.connection_id.clone(),
            short.connection_id.clone()
        ]
    );
    assert!(before.token_expired.is_empty());

    // WHEN it is read at the instant they expire
    let after = store.room_members(&room, expiry).await.expect("members");
    // THEN the two short ones are listed apart, whichever way they joined
    let mut expired = after.token_expired.clone();
    expired.sort();
    assert_eq!(
        expired,
        vec![late.connection_id.clone(), short.connection_id.clone()]
    );
    assert_eq!(after.open, vec![long.connection_id.clone()]);
}

/// At the TTL instant a connection and its memberships are gone; a second before, they are
/// alive. Every store agrees to the second.
pub async fn a_connection_is_dead_from_the_instant_of_its_ttl<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    // A token that outlives the connection: only the TTL ends it.
    let c = Connection {
        token_expires_at: Connection::expiry_for(at) + Duration::hours(1),
        ..connection("c-edge", &customer(), at)
    };
    let room = Room::User(customer().user_id);
    store
        .open_connection(&c, std::slice::from_ref(&room))
        .await
        .expect("open");
    let before = c.expires_at - Duration::seconds(1);
    assert!(
        store
            .get_connection(&c.connection_id, before)
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        store
            .room_members(&room, before)
            .await
            .expect("members")
            .open,
        vec![c.connection_id.clone()]
    );
    assert!(
        store
            .get_connection(&c.connection_id, c.expires_at)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .room_members(&room, c.expires_at)
            .await
            .expect("members")
            .open
            .is_empty()
    );
}

/// A saved profile reads back unchanged, location and all.
pub async fn a_profile_round_trips_through_the_store<H: Harness>(h: &H) {
    // GIVEN a complete chef profile
    let store = h.store();
    let profile = chef_profile(now());
    // WHEN it is saved and read back
    store.put_profile(&profile).await.expect("put");
    let read = store.get_profile(&profile.user_id).await.expect("get");
    // THEN it is the same profile
    assert_eq!(read, Some(profile));
}

/// Saving again replaces the whole profile: fields left out are gone.
pub async fn saving_a_profile_again_replaces_it<H: Harness>(h: &H) {
    // GIVEN a saved chef profile with a pickup point
    let store = h.store();
    let first = chef_profile(now());
    store.put_profile(&first).await.expect("first put");
    // WHEN the chef saves it again without the pickup point and with another name
    let second = rnd_domain::profile::Profile {
        name: "Carla C.".into(),
        location: None,
        phone: None,
        updated_at: first.updated_at + Duration::seconds(5),
        ..first.clone()
    };
    store.put_profile(&second).await.expect("second put");
    // THEN the second version is stored
    let read = store
        .get_profile(&first.user_id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(read, second);
    assert!(read.chef_info().is_err(), "no pickup point any more");
}

/// Reading the profile of a user who never saved one gives `None`.
pub async fn an_unknown_profile_is_none<H: Harness>(h: &H) {
    let read = h
        .store()
        .get_profile(&other_customer().user_id)
        .await
        .expect("get");
    assert_eq!(read, None);
}

/// Each user has their own profile, and profiles never show up as orders.
pub async fn profiles_are_kept_per_user_and_are_not_orders<H: Harness>(h: &H) {
    // GIVEN profiles of a chef, a customer and a driver
    let store = h.store();
    let at = now();
    for profile in [chef_profile(at), customer_profile(at), driver_profile(at)] {
        store.put_profile(&profile).await.expect("put");
    }
    // WHEN each is read back and orders are listed
    let driver = store
        .get_profile(&driver().user_id)
        .await
        .expect("get")
        .expect("present");
    let customer = store
        .get_profile(&customer().user_id)
        .await
        .expect("get")
        .expect("present");
    let all = store
        .list_orders(&OrderQuery {
            filter: OrderFilter::All,
            limit: 10,
            cursor: None,
        })
        .await
        .expect("list");
    // THEN each is its own user's, and there are no orders
    assert_eq!(driver, driver_profile(at));
    assert_eq!(driver.role, Role::Driver);
    assert_eq!(customer, customer_profile(at));
    assert!(all.orders.is_empty(), "{:?}", all.orders);
}

/// The retention the inbox cases keep events for.
fn day() -> Duration {
    Duration::hours(24)
}

fn kept_messages(page: &rnd_domain::inbox::InboxPage) -> Vec<(u64, String)> {
    page.events
        .iter()
        .map(|e| (e.position, e.message.to_json()))
        .collect()
}

/// Events appended to a user's inbox come back in order at positions 1, 2, 3, exactly as
/// appended, with the inbox's epoch (its creation time, ms) and head.
pub async fn an_inbox_keeps_events_in_order_at_gapless_positions<H: Harness>(h: &H) {
    // GIVEN a chef's inbox, written by two appends
    let store = h.store();
    let chef = chef().user_id;
    let at = now();
    let (a, b, c) = (
        inbox_event("o-in-1"),
        inbox_event("o-in-2"),
        inbox_event("o-in-3"),
    );
    let first = store
        .append_to_inbox(&chef, &[a.clone(), b.clone()], at, day())
        .await
        .expect("append");
    let second = store
        .append_to_inbox(&chef, std::slice::from_ref(&c), at, day())
        .await
        .expect("append");
    // THEN the positions follow each other and the epoch is the creation time
    assert_eq!(first.positions, [1, 2]);
    assert_eq!(second.positions, [3]);
    let epoch = u64::try_from(at.timestamp_millis()).expect("after 1970");
    assert_eq!((first.epoch, second.epoch), (epoch, epoch));
    // AND reading from the start gives the three messages as appended
    let page = store.read_inbox(&chef, 0, 100, at).await.expect("read");
    assert_eq!((page.epoch, page.head), (epoch, 3));
    let expected: Vec<(u64, String)> = [(1, &a), (2, &b), (3, &c)]
        .into_iter()
        .map(|(p, e)| (p, e.message.to_json()))
        .collect();
    assert_eq!(kept_messages(&page), expected);
}

/// Appending an event whose key is kept (a retried stream batch) keeps its position, writes
/// nothing for it and moves the head only for the new ones.
pub async fn appending_a_kept_event_again_keeps_its_position_and_adds_nothing<H: Harness>(h: &H) {
    // GIVEN a driver's inbox holding a and b
    let store = h.store();
    let driver = driver().user_id;
    let at = now();
    let (a, b, c) = (
        inbox_event("o-re-1"),
        inbox_event("o-re-2"),
        inbox_event("o-re-3"),
    );
    store
        .append_to_inbox(&driver, &[a.clone(), b.clone()], at, day())
        .await
        .expect("append");
    // WHEN b is appended again, with c, and b twice in one call
    let again = store
        .append_to_inbox(&driver, &[b.clone(), c.clone(), b.clone()], at, day())
        .await
        .expect("append again");
    // THEN b keeps position 2, c is 3, and the inbox holds three events
    assert_eq!(again.positions, [2, 3, 2]);
    let page = store.read_inbox(&driver, 0, 100, at).await.expect("read");
    assert_eq!(page.head, 3);
    assert_eq!(
        page.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

/// A read returns only events after the given position, oldest first, at most `limit`; the
/// head is the newest position whatever the limit.
pub async fn an_inbox_is_read_after_a_position_up_to_a_limit<H: Harness>(h: &H) {
    let store = h.store();
    let chef = chef().user_id;
    let at = now();
    let events: Vec<InboxEvent> = (1..=5)
        .map(|i| inbox_event(&format!("o-lim-{i}")))
        .collect();
    store
        .append_to_inbox(&chef, &events, at, day())
        .await
        .expect("append");
    let page = store.read_inbox(&chef, 2, 2, at).await.expect("read");
    assert_eq!(page.head, 5);
    assert_eq!(
        page.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        [3, 4]
    );
    let rest = store.read_inbox(&chef, 4, 100, at).await.expect("read");
    assert_eq!(
        rest.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        [5]
    );
    let none = store.read_inbox(&chef, 5, 100, at).await.expect("read");
    assert!(none.events.is_empty());
    let head_only = store.read_inbox(&chef, 0, 0, at).await.expect("read");
    assert_eq!((head_only.head, head_only.events.len()), (5, 0));
}

/// A user who never had an event has an inbox at epoch 0 with head 0 and nothing in it.
pub async fn a_user_without_an_inbox_reads_as_empty_at_epoch_zero<H: Harness>(h: &H) {
    let page = h
        .store()
        .read_inbox(&other_customer().user_id, 0, 100, now())
        .await
        .expect("read");
    assert_eq!((page.epoch, page.head), (0, 0));
    assert!(page.events.is_empty());
}

/// An event past its retention is not read (whether or not the store deleted it yet), the head
/// stays where it was, and the same event appended again is kept at a new position.
pub async fn expired_events_are_not_read_and_can_be_kept_again<H: Harness>(h: &H) {
    // GIVEN an event kept for one hour
    let store = h.store();
    let chef = chef().user_id;
    let at = now();
    let a = inbox_event("o-exp-1");
    store
        .append_to_inbox(&chef, std::slice::from_ref(&a), at, Duration::hours(1))
        .await
        .expect("append");
    // WHEN it is read two hours later
    let later = at + Duration::hours(2);
    let page = store.read_inbox(&chef, 0, 100, later).await.expect("read");
    // THEN it is gone, but the head remembers it
    assert!(page.events.is_empty());
    assert_eq!(page.head, 1);
    // AND appending it again keeps it anew at the next position
    let again = store
        .append_to_inbox(&chef, std::slice::from_ref(&a), later, Duration::hours(1))
        .await
        .expect("append again");
    assert_eq!(again.positions, [2]);
    let page = store.read_inbox(&chef, 0, 100, later).await.expect("read");
    assert_eq!(
        page.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        [2]
    );
}

/// Appends racing on one inbox all succeed, at distinct positions with no holes, and every
/// event is read back once.
pub async fn concurrent_appends_get_distinct_gapless_positions<H: Harness>(h: &H) {
    // GIVEN eight appends of different events to one chef's inbox at once
    let store = h.store();
    let chef = chef().user_id;
    let at = now();
    let appends = (0..8).map(|i| {
        let store = Arc::clone(&store);
        let chef = chef.clone();
        async move {
            let event = inbox_event(&format!("o-race-{i}"));
            store
                .append_to_inbox(&chef, std::slice::from_ref(&event), at, day())
                .await
        }
    });
    // WHEN they all complete
    let results = join_all(appends).await;
    // THEN each got its own position, 1 to 8
    let positions: BTreeSet<u64> = results
        .into_iter()
        .map(|r| r.expect("append").positions[0])
        .collect();
    assert_eq!(positions, (1..=8).collect());
    // AND the inbox holds the eight, each once
    let page = store.read_inbox(&chef, 0, 100, at).await.expect("read");
    assert_eq!(page.head, 8);
    let keys: BTreeSet<String> = page.events.iter().map(|e| e.message.to_json()).collect();
    assert_eq!(keys.len(), 8);
}

/// One user's events are not in another user's inbox.
pub async fn inboxes_are_kept_per_user<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    store
        .append_to_inbox(&chef().user_id, &[inbox_event("o-own-1")], at, day())
        .await
        .expect("append");
    let other = store
        .read_inbox(&driver().user_id, 0, 100, at)
        .await
        .expect("read");
    assert_eq!((other.epoch, other.head, other.events.len()), (0, 0, 0));
}

/// A registered device is listed for its user, with what was registered, and for no one else.
pub async fn a_registered_device_is_listed_for_its_user_only<H: Harness>(h: &H) {
    // GIVEN a chef who registers a phone
    let store = h.store();
    let at = now();
    let registration = registration(&chef(), "chef-phone");
    let registered = store
        .register_device(&registration, at)
        .await
        .expect("register");
    // THEN it is new, keeps the id it was given and what was registered
    assert!(registered.created);
    assert!(registered.dropped.is_empty());
    let device = &registered.device;
    assert_eq!(device.device_id, registration.new_id);
    assert_eq!(device.token, registration.token);
    assert_eq!(device.platform, Platform::Android);
    assert_eq!(device.app_version.as_deref(), Some("1.4.0"));
    assert_eq!((device.registered_at, device.last_seen_at), (at, at));
    // AND it is the chef's only device, and nobody else's
    let listed = store.devices_of(&chef().user_id, at).await.expect("list");
    assert_eq!(listed, vec![device.clone()]);
    let others = store.devices_of(&driver().user_id, at).await.expect("list");
    assert!(others.is_empty());
}

/// The same user registering the same token again keeps the device id, refreshes
/// `lastSeenAt` and what it runs, and adds no device.
pub async fn registering_a_token_again_keeps_the_device_and_refreshes_it<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let first = store
        .register_device(&registration(&chef(), "again"), at)
        .await
        .expect("register");
    // WHEN the app registers the token again later, from a new version, with a new id offered
    let later = at + Duration::minutes(5);
    let mut again = registration(&chef(), "again");
    again.app_version = Some("1.5.0".into());
    again.platform = Platform::Ios;
    let second = store.register_device(&again, later).await.expect("again");
    // THEN it is the same device, refreshed
    assert!(!second.created);
    assert_eq!(second.device.device_id, first.device.device_id);
    assert_eq!(second.device.registered_at, at);
    assert_eq!(second.device.last_seen_at, later);
    assert_eq!(second.device.app_version.as_deref(), Some("1.5.0"));
    assert_eq!(second.device.platform, Platform::Ios);
    let listed = store
        .devices_of(&chef().user_id, later)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
}

/// A token another user registered moves to the new user: the previous owner no longer has it.
pub async fn a_token_registered_by_another_user_moves_to_them<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    store
        .register_device(&registration(&customer(), "shared-phone"), at)
        .await
        .expect("register");
    // WHEN another account signs in on the same phone
    let moved = store
        .register_device(&registration(&other_customer(), "shared-phone"), at)
        .await
        .expect("register");
    // THEN the device is new for them, and gone for the first user
    assert!(moved.created);
    assert_eq!(moved.device.user_id, other_customer().user_id);
    assert!(
        store
            .devices_of(&customer().user_id, at)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store
            .devices_of(&other_customer().user_id, at)
            .await
            .expect("list"),
        vec![moved.device]
    );
}

/// Past ten devices, registering one more drops the least recently seen.
pub async fn an_eleventh_device_drops_the_least_recently_seen<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let mut ids = Vec::new();
    for i in 0..MAX_DEVICES_PER_USER {
        let r = registration(&driver(), &format!("phone-{i}"));
        let when = at + Duration::seconds(i64::try_from(i).expect("small"));
        ids.push(
            store
                .register_device(&r, when)
                .await
                .expect("register")
                .device
                .device_id,
        );
    }
    // WHEN an eleventh one is registered
    let when = at + Duration::minutes(1);
    let eleventh = store
        .register_device(&registration(&driver(), "phone-new"), when)
        .await
        .expect("register");
    // THEN the first (least recently seen) was dropped, and ten remain
    assert_eq!(eleventh.dropped, vec![ids[0].clone()]);
    let listed = store
        .devices_of(&driver().user_id, when)
        .await
        .expect("list");
    assert_eq!(listed.len(), MAX_DEVICES_PER_USER);
    assert_eq!(
        listed[0].device_id, eleventh.device.device_id,
        "most recent first"
    );
    assert!(listed.iter().all(|d| d.device_id != ids[0]));
}

/// A device is removed by its owner only; another user's attempt answers false and leaves it.
pub async fn only_its_owner_removes_a_device<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let device = store
        .register_device(&registration(&chef(), "remove-me"), at)
        .await
        .expect("register")
        .device;
    assert!(
        !store
            .remove_device(&driver().user_id, &device.device_id)
            .await
            .expect("remove")
    );
    assert_eq!(
        store
            .devices_of(&chef().user_id, at)
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(
        store
            .remove_device(&chef().user_id, &device.device_id)
            .await
            .expect("remove")
    );
    assert!(
        store
            .devices_of(&chef().user_id, at)
            .await
            .expect("list")
            .is_empty()
    );
    // AND its token is free: registering it again makes a new device
    let again = store
        .register_device(&registration(&chef(), "remove-me"), at)
        .await
        .expect("register");
    assert!(again.created);
}

/// A device is forgotten 270 days after it was last seen (before the store deletes it), and
/// its token registers anew.
pub async fn a_device_is_forgotten_270_days_after_it_was_last_seen<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    store
        .register_device(&registration(&chef(), "stale"), at)
        .await
        .expect("register");
    let before = at + Duration::days(DEVICE_TTL_DAYS) - Duration::minutes(1);
    assert_eq!(
        store
            .devices_of(&chef().user_id, before)
            .await
            .expect("list")
            .len(),
        1
    );
    let after = at + Duration::days(DEVICE_TTL_DAYS) + Duration::minutes(1);
    assert!(
        store
            .devices_of(&chef().user_id, after)
            .await
            .expect("list")
            .is_empty()
    );
    let fresh = store
        .register_device(&registration(&chef(), "stale"), after)
        .await
        .expect("register");
    assert!(fresh.created);
}

/// Two users registering one token at once: exactly one of them holds it after.
pub async fn racing_registrations_of_one_token_leave_one_holder<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let racers = [customer(), other_customer(), chef(), driver()];
    let results = join_all(racers.iter().map(|actor| {
        let store = Arc::clone(&store);
        let r = registration(actor, "contested");
        async move { store.register_device(&r, at).await }
    }))
    .await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    let mut holders = 0;
    for actor in &racers {
        holders += store
            .devices_of(&actor.user_id, at)
            .await
            .expect("list")
            .len();
    }
    assert_eq!(holders, 1, "one token, one device");
}

/// The push ledger records a notification once per user, forgets it after its retention.
pub async fn the_push_ledger_records_a_notification_once_per_user<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let key = "order-1#00000000000000000003#order:status_update";
    let me = customer().user_id;
    assert!(!store.was_pushed(key, &me, at).await.expect("read"));
    assert!(
        store
            .record_pushed(key, &me, at, Duration::days(2))
            .await
            .expect("record")
    );
    assert!(store.was_pushed(key, &me, at).await.expect("read"));
    // a second delivery of the same record finds it recorded
    assert!(
        !store
            .record_pushed(key, &me, at, Duration::days(2))
            .await
            .expect("record")
    );
    // another user, or another key, is not
    assert!(
        !store
            .was_pushed(key, &chef().user_id, at)
            .await
            .expect("read")
    );
    assert!(
        !store
            .was_pushed("order-1#almost_there", &me, at)
            .await
            .expect("read")
    );
    // after its retention it is forgotten and may be recorded again
    let later = at + Duration::days(3);
    assert!(!store.was_pushed(key, &me, later).await.expect("read"));
    assert!(
        store
            .record_pushed(key, &me, later, Duration::days(2))
            .await
            .expect("record")
    );
}

/// An idempotency key is claimed once per user: a second request with it finds the first's
/// fingerprint, then its answer once kept; another user's key of the same text is another key;
/// an expired or released claim can be claimed again.
pub async fn an_idempotency_key_is_claimed_once_and_then_answers_what_its_request_answered<
    H: Harness,
>(
    h: &H,
) {
    let store = h.store();
    let at = now();
    let until = at + Duration::hours(24);
    let user = customer().user_id;
    // GIVEN a request claiming a key
    let first = store
        .claim_idempotency_key(&user, "k-1", "POST /orders #a", at, until)
        .await
        .expect("claim");
    assert_eq!(first, KeyClaim::Claimed);
    // WHEN a retry claims it while the request runs
    let running = store
        .claim_idempotency_key(&user, "k-1", "POST /orders #a", at, until)
        .await
        .expect("claim");
    // THEN it finds the request, without an answer yet
    assert_eq!(
        running,
        KeyClaim::Held {
            fingerprint: "POST /orders #a".into(),
            answer: None
        }
    );
    // WHEN the request's answer is kept, and the key claimed again
    let answer = KeptAnswer {
        status: 201,
        content_type: "application/json".into(),
        location: Some("/orders/o-1/tracking".into()),
        body: r#"{"orderId":"o-1"}"#.into(),
    };
    store
        .keep_idempotent_answer(&user, "k-1", &answer)
        .await
        .expect("keep");
    let answered = store
        .claim_idempotency_key(&user, "k-1", "POST /orders #b", at, until)
        .await
        .expect("claim");
    // THEN the answer comes back with the first request's fingerprint
    assert_eq!(
        answered,
        KeyClaim::Held {
            fingerprint: "POST /orders #a".into(),
            answer: Some(answer)
        }
    );
    // AND another user's key of the same text is theirs
    assert_eq!(
        store
            .claim_idempotency_key(&other_customer().user_id, "k-1", "x", at, until)
            .await
            .expect("claim"),
        KeyClaim::Claimed
    );
    // AND after its expiry, or once released, a key can be claimed again
    assert_eq!(
        store
            .claim_idempotency_key(&user, "k-1", "later", until, until + Duration::hours(24))
            .await
            .expect("claim"),
        KeyClaim::Claimed
    );
    store
        .release_idempotency_key(&user, "k-1")
        .await
        .expect("release");
    assert_eq!(
        store
            .claim_idempotency_key(&user, "k-1", "again", at, until)
            .await
            .expect("claim"),
        KeyClaim::Claimed
    );
}

/// Of requests racing with one key, exactly one claims it.
pub async fn racing_claims_of_one_idempotency_key_leave_exactly_one_claimant<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let user = customer().user_id;
    let claims = join_all((0..8).map(|i| {
        let store = Arc::clone(&store);
        let user = user.clone();
        async move {
            store
                .claim_idempotency_key(
                    &user,
                    "race",
                    &format!("request {i}"),
                    at,
                    at + Duration::hours(24),
                )
                .await
                .expect("claim")
        }
    }))
    .await;
    let winners = claims.iter().filter(|c| **c == KeyClaim::Claimed).count();
    assert_eq!(winners, 1, "{claims:?}");
}

/// A limit admits its uses per window, then refuses until the window ends; the next window
/// admits again; subjects are counted apart.
pub async fn a_limit_admits_its_uses_per_window_then_says_when_to_come_back<H: Harness>(h: &H) {
    let store = h.store();
    let limit = Limit {
        name: "test",
        per_window: 3,
        window: Duration::minutes(1),
    };
    let start = limit.window_start(now());
    let at = start + Duration::seconds(20);
    // WHEN four uses come in one window
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(store.take(limit, "user-a", at).await.expect("take"));
    }
    // THEN three are granted and the fourth is told to come back when the window ends
    assert_eq!(answers[..3], [Allowance::Granted; 3]);
    assert_eq!(
        answers[3],
        Allowance::Refused {
            retry_after: Duration::seconds(40)
        }
    );
    // AND another subject has its own count, and the next window admits again
    assert_eq!(
        store.take(limit, "user-b", at).await.expect("take"),
        Allowance::Granted
    );
    assert_eq!(
        store
            .take(limit, "user-a", start + limit.window)
            .await
            .expect("take"),
        Allowance::Granted
    );
}

/// Concurrent uses share a limit: exactly `per_window` of them are granted.
pub async fn concurrent_uses_of_a_limit_grant_exactly_its_uses<H: Harness>(h: &H) {
    let store = h.store();
    let limit = Limit {
        name: "race",
        per_window: 4,
        window: Duration::hours(1),
    };
    let at = now();
    let answers = join_all((0..10).map(|_| {
        let store = Arc::clone(&store);
        async move { store.take(limit, "user", at).await.expect("take") }
    }))
    .await;
    let granted = answers.iter().filter(|a| **a == Allowance::Granted).count();
    assert_eq!(granted, 4, "{answers:?}");
}

/// The connection statistics at `at`, from the minutes the store counted.
async fn stats_at<S: PresenceStore + ?Sized>(
    store: &S,
    at: chrono::DateTime<chrono::Utc>,
) -> ConnectionStats {
    let minutes = store
        .connection_minutes(stats_from(at), minute_of(at))
        .await
        .expect("connection minutes");
    connection_stats(&minutes, at)
}

/// Presence follows a user's connections: online with how many and since the earliest open one,
/// and last seen at their latest opening or closing.
pub async fn presence_says_who_is_online_since_when_and_when_last_seen<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let user = driver().user_id;
    // GIVEN a driver never seen
    let never = store.presence(&user, at).await.expect("presence");
    assert_eq!(never, Presence::default());
    assert!(!never.online());
    // WHEN they connect from two devices, 30 s apart (and someone else connects too)
    let first = connection("c-pres-1", &driver(), at);
    let second = connection("c-pres-2", &driver(), at + Duration::seconds(30));
    let stranger = connection("c-pres-x", &other_driver(), at + Duration::seconds(40));
    for c in [&first, &second, &stranger] {
        let rooms = rnd_domain::rooms::initial_rooms(&Actor {
            user_id: c.user_id.clone(),
            role: c.role,
        });
        store.open_connection(c, &rooms).await.expect("open");
    }
    // THEN they are online on two connections since the first, last seen at the second
    let both = store
        .presence(&user, at + Duration::seconds(45))
        .await
        .expect("presence");
    assert_eq!(
        both,
        Presence {
            connections: 2,
            since: Some(at),
            last_seen_at: Some(at + Duration::seconds(30)),
        }
    );
    // WHEN the first closes, THEN they are online on one since the second, seen at the close
    store
        .close_connection(&first.connection_id, at + Duration::seconds(60))
        .await
        .expect("close")
        .expect("was open");
    let one = store
        .presence(&user, at + Duration::seconds(61))
        .await
        .expect("presence");
    assert_eq!(
        one,
        Presence {
            connections: 1,
            since: Some(at + Duration::seconds(30)),
            last_seen_at: Some(at + Duration::seconds(60)),
        }
    );
    // WHEN the second closes, THEN they are offline, last seen then
    store
        .close_connection(&second.connection_id, at + Duration::seconds(90))
        .await
        .expect("close")
        .expect("was open");
    let gone = store
        .presence(&user, at + Duration::seconds(91))
        .await
        .expect("presence");
    assert_eq!(
        gone,
        Presence {
            connections: 0,
            since: None,
            last_seen_at: Some(at + Duration::seconds(90)),
        }
    );
    assert!(!gone.online());
}

/// Connects and disconnects are counted by role, with the closed sessions' durations, and the
/// connections open now are those not closed.
pub async fn connects_and_disconnects_are_counted_by_role_with_their_durations<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    // GIVEN a driver, two customers and an admin connected, one customer gone after 95 s
    let opened = [
        connection("c-stat-d", &driver(), at),
        connection("c-stat-c1", &customer(), at),
        connection("c-stat-c2", &other_customer(), at + Duration::seconds(5)),
        connection("c-stat-a", &admin(), at + Duration::seconds(10)),
    ];
    for c in &opened {
        store.open_connection(c, &[]).await.expect("open");
    }
    store
        .close_connection(&opened[1].connection_id, at + Duration::seconds(95))
        .await
        .expect("close")
        .expect("was open");
    // WHEN the statistics are taken two minutes in
    let stats = stats_at(&*store, at + Duration::seconds(120)).await;
    // THEN three are connected, one of each role but one customer
    assert_eq!(stats.connected_now.driver, 1);
    assert_eq!(stats.connected_now.customer, 1);
    assert_eq!(stats.connected_now.admin, 1);
    assert_eq!(stats.connected_now.chef, 0);
    // AND the hour and the day saw four connects and one disconnect of 95 s
    for window in [stats.last_hour, stats.last_day] {
        assert_eq!(window.connects, 4);
        assert_eq!(window.disconnects, 1);
        assert_eq!(window.expired, 0);
        assert_eq!(window.session_duration.count, 1);
        assert_eq!(window.session_duration.average_ms, Some(95_000.0));
    }
    // AND the peak today was four (unless the day began between the connects)
    if stats.peak_today.1 > at {
        assert!(stats.peak_today.0 >= 3, "{:?}", stats.peak_today);
    }
}

/// A connection that vanishes without `$disconnect` is online until its TTL (2 h + grace), then
/// offline and counted as expired, never as a disconnect; closing it after its TTL counts
/// nothing.
pub async fn a_connection_past_its_ttl_is_offline_and_counted_as_expired<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    // GIVEN a chef who connected 3 hours ago and was never seen to disconnect
    let opened_at = at - Duration::hours(3);
    let stale = connection("c-vanished", &chef(), opened_at);
    store
        .open_connection(&stale, &rnd_domain::rooms::initial_rooms(&chef()))
        .await
        .expect("open");
    // WHEN presence and statistics are taken now, and the late close arrives
    let presence = store.presence(&chef().user_id, at).await.expect("presence");
    let late = store
        .close_connection(&stale.connection_id, at)
        .await
        .expect("close");
    let stats = stats_at(&*store, at).await;
    // THEN the chef is offline, last seen when they connected
    assert_eq!(
        presence,
        Presence {
            connections: 0,
            since: None,
            last_seen_at: Some(opened_at),
        }
    );
    // AND nobody is connected; the connection expired 55 minutes ago, within the hour, and
    // was not a disconnect, whatever the late close answered
    assert!(late.is_none() || late.is_some_and(|c| c.connection == stale));
    assert_eq!(stats.connected_now.total(), 0);
    assert_eq!(stats.last_hour.expired, 1);
    assert_eq!(stats.last_hour.disconnects, 0);
    assert_eq!(stats.last_day.connects, 1);
}

/// Connects and disconnects racing from many connections (spread over the counters' shards) are
/// each counted exactly once.
pub async fn concurrent_connects_and_disconnects_are_each_counted_once<H: Harness>(h: &H) {
    let store = h.store();
    let at = now();
    let actors = [customer(), other_customer(), driver(), chef()];
    let connections: Vec<Connection> = (0..24)
        .map(|i| connection(&format!("c-race-{i}"), &actors[i % 4], at))
        .collect();
    // GIVEN 24 connections opened at once
    join_all(connections.iter().map(|c| {
        let store = Arc::clone(&store);
        async move { store.open_connection(c, &[]).await.expect("open") }
    }))
    .await;
    // WHEN 10 of them close at once, each twice
    let closing = at + Duration::seconds(30);
    join_all(connections[..10].iter().chain(&connections[..10]).map(|c| {
        let store = Arc::clone(&store);
        async move {
            store
                .close_connection(&c.connection_id, closing)
                .await
                .expect("close")
        }
    }))
    .await;
    // THEN 24 connects, 10 disconnects and 14 connections open are counted
    let stats = stats_at(&*store, closing + Duration::seconds(1)).await;
    assert_eq!(stats.last_hour.connects, 24);
    assert_eq!(stats.last_hour.disconnects, 10);
    assert_eq!(stats.last_hour.session_duration.count, 10);
    assert_eq!(stats.connected_now.total(), 14);
}
