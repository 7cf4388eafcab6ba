//! Event derivation: every kind of order change reaches exactly its audiences.

mod common;

use chrono::Duration;
use common::*;
use rnd_domain::events::{OrderRecord, derive_events, location_announcements};
use rnd_domain::geo::{Latitude, Longitude, Speed};
use rnd_domain::identity::Role;
use rnd_domain::live::{DriverLocation, Eta, LiveState};
use rnd_domain::order::OrderStatus;
use rnd_domain::protocol::ServerMessage;
use rnd_domain::rooms::{ROLES_WITH_A_ROOM, Room, role_has_room};

fn order(view: &rnd_domain::OrderView) -> OrderRecord {
    OrderRecord::Order(view.order.clone())
}

fn live(state: &LiveState) -> OrderRecord {
    OrderRecord::Live(state.clone())
}

fn room(s: &str) -> Room {
    s.parse().unwrap()
}

fn moved(prev: &LiveState, minute: u32, eta_minutes: u32, eta_at_minute: i64) -> LiveState {
    let at = t(minute);
    LiveState {
        seq: prev.seq + 1,
        location: Some(DriverLocation {
            latitude: Latitude::parse(30.27).unwrap(),
            longitude: Longitude::parse(-97.74).unwrap(),
            heading: None,
            speed: Some(Speed::parse(9.0).unwrap()),
            accuracy: None,
            recorded_at: at,
        }),
        location_accepted_at_ms: Some(at.timestamp_millis()),
        eta: Some(Eta {
            eta_minutes,
            estimated_delivery_time: t(0) + Duration::minutes(eta_at_minute),
            computed_at: at,
            source: rnd_domain::live::EtaSource::Estimate,
            estimated_pickup_time: None,
        }),
        updated_at: at,
        ..prev.clone()
    }
}

#[test]
fn an_inserted_order_tells_its_chef_and_no_one_else() {
    let view = placed();
    let out = derive_events(None, Some(&order(&view)));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rooms, vec![room("user:chef-1")]);
    let ServerMessage::OrderNew(data) = &out[0].message else {
        panic!("{:?}", out[0].message)
    };
    assert_eq!(data.order_number, "RND-20260131-0001");
    assert_eq!(data.seq, 1);
    assert_eq!(data.items[0].name, "Tamales");
}

#[test]
fn each_status_change_goes_to_the_order_room_admins_and_the_customer_with_its_sequence() {
    let mut prev = placed();
    let mut expected_seq = 2;
    while !prev.order.status.is_final() {
        let (who, what) = step(prev.order.status);
        let next = prev.apply(&who, what, t(10)).unwrap();
        let out = derive_events(Some(&order(&prev)), Some(&order(&next)));
        let status: Vec<_> = out
            .iter()
            .filter(|o| matches!(o.message, ServerMessage::StatusUpdate(_)))
            .collect();
        assert_eq!(status.len(), 1);
        assert_eq!(
            status[0].rooms,
            vec![
                room("order:order-1"),
                Room::Role(Role::Admin),
                room("user:customer-1")
            ]
        );
        let ServerMessage::StatusUpdate(d) = &status[0].message else {
            unreachable!()
        };
        assert_eq!(d.previous_status, prev.order.status);
        assert_eq!(d.status, next.order.status);
        assert_eq!(d.changed_by, Some(who.user_id.clone()));
        assert_eq!(d.timestamp, t(10));
        assert_eq!(d.seq, expected_seq);
        // AND it names the seq of the status update before it (the creation's for the first)
        assert_eq!(d.previous_status_seq, Some(expected_seq - 1));
        assert_eq!((d.cursor.as_deref(), d.replayed), (None, false));
        expected_seq += 1;
        prev = next;
    }
}

#[test]
fn an_assignment_tells_the_driver_with_pickup_and_dropoff() {
    let ready = order_in(OrderStatus::ReadyForPickup);
    let assigned = ready.apply(&admin(), assign(), t(20)).unwrap();
    let out = derive_events(Some(&order(&ready)), Some(&order(&assigned)));
    let names: Vec<_> = out.iter().map(|o| o.message.event_name()).collect();
    assert_eq!(names, ["order:status_update", "driver:new_assignment"]);
    assert_eq!(out[1].rooms, vec![room("user:driver-1")]);
    let ServerMessage::NewAssignment(d) = &out[1].message else {
        unreachable!()
    };
    assert_eq!(d.pickup.name, "Carla's Kitchen");
    assert_eq!(d.pickup.latitude, 30.2676);
    assert_eq!(d.dropoff.name, "Ada Customer");
    assert_eq!(d.dropoff.address, "1 Congress Ave, Austin, TX");
    assert_eq!(d.assigned_at, t(20));
    assert_eq!(d.seq, assigned.seq());
}

#[test]
fn a_cancellation_carries_its_reason() {
    let view = placed();
    let next = view.apply(&customer(), cancel(), t(3)).unwrap();
    let out = derive_events(Some(&order(&view)), Some(&order(&next)));
    let ServerMessage::StatusUpdate(d) = &out[0].message else {
        panic!()
    };
    assert_eq!(d.status, OrderStatus::Cancelled);
    assert_eq!(d.reason.as_deref(), Some("customer changed their mind"));
}

#[test]
fn a_new_location_goes_to_the_order_room_with_the_driver_and_sequence() {
    let view = order_in(OrderStatus::InTransit);
    let after = moved(&view.live, 30, 12, 42);
    let out = derive_events(Some(&live(&view.live)), Some(&live(&after)));
    let names: Vec<_> = out.iter().map(|o| o.message.event_name()).collect();
    assert_eq!(names, ["driver:location_update", "order:eta_update"]);
    for o in &out {
        assert_eq!(o.rooms, vec![room("order:order-1")]);
        assert_eq!(o.message.seq(), Some(after.seq));
    }
    let ServerMessage::LocationUpdate(d) = &out[0].message else {
        unreachable!()
    };
    assert_eq!(d.driver_id.as_str(), "driver-1");
    assert_eq!((d.latitude, d.longitude), (30.27, -97.74));
    assert_eq!(d.speed, Some(9.0));
    assert_eq!(d.timestamp, t(30));
}

#[test]
fn an_eta_that_moves_less_than_a_minute_is_not_announced_but_a_minute_is() {
    let view = order_in(OrderStatus::InTransit);
    let first = moved(&view.live, 30, 12, 42);
    // Same estimated delivery time, 30 s later: the countdown is the client's job.
    let mut same = moved(&first, 31, 11, 42);
    same.eta.as_mut().unwrap().estimated_delivery_time += Duration::seconds(30);
    let out = derive_events(Some(&live(&first)), Some(&live(&same)));
    let names: Vec<_> = out.iter().map(|o| o.message.event_name()).collect();
    assert_eq!(names, ["driver:location_update"]);
    let later = moved(&first, 31, 13, 43);
    let out = derive_events(Some(&live(&first)), Some(&live(&later)));
    let names: Vec<_> = out.iter().map(|o| o.message.event_name()).collect();
    assert_eq!(names, ["driver:location_update", "order:eta_update"]);
}

#[test]
fn two_locations_accepted_in_the_same_millisecond_are_each_announced() {
    // GIVEN an order in transit with a location accepted at minute 30
    let view = order_in(OrderStatus::InTransit);
    let first = moved(&view.live, 30, 12, 42);
    // WHEN another position is accepted within the same millisecond (no minimum interval)
    let mut second = moved(&first, 30, 12, 42);
    second.location.as_mut().unwrap().latitude = Latitude::parse(30.28).unwrap();
    assert_eq!(
        second.location_accepted_at_ms,
        first.location_accepted_at_ms
    );
    // THEN it is announced too, by its writer and by the stream alike
    let names = |out: Vec<rnd_domain::events::Outgoing>| -> Vec<&'static str> {
        out.iter().map(|o| o.message.event_name()).collect()
    };
    assert_eq!(
        names(location_announcements(&first, &second)),
        ["driver:location_update"]
    );
    assert_eq!(
        names(derive_events(Some(&live(&first)), Some(&live(&second)))),
        ["driver:location_update"]
    );
    // AND the very same position again in that millisecond moves nothing
    let again = LiveState {
        seq: second.seq + 1,
        ..second.clone()
    };
    assert!(location_announcements(&second, &again).is_empty());
}

#[test]
fn a_location_its_writer_announced_produces_nothing_from_the_stream_and_the_same_events_for_the_writer()
 {
    // GIVEN a location whose writer posted its events itself (announcedSeq = its seq)
    let view = order_in(OrderStatus::InTransit);
    let plain = moved(&view.live, 30, 12, 42);
    let announced = LiveState {
        announced_seq: Some(plain.seq),
        ..plain.clone()
    };
    assert!(announced.announced() && !plain.announced());
    // WHEN the stream's change of it is derived THEN it announces nothing more
    assert!(derive_events(Some(&live(&view.live)), Some(&live(&announced))).is_empty());
    // AND what the writer posts is exactly what the stream would have derived without the mark
    assert_eq!(
        location_announcements(&view.live, &announced),
        derive_events(Some(&live(&view.live)), Some(&live(&plain)))
    );
    // AND a later write that is not announced (a mark left behind) is the stream's again
    let stale_mark = moved(&announced, 31, 13, 43);
    assert_eq!(stale_mark.announced_seq, Some(plain.seq));
    assert!(!derive_events(Some(&live(&announced)), Some(&live(&stale_mark))).is_empty());
}

#[test]
fn a_transition_clears_the_announced_mark_of_the_live_item() {
    // GIVEN an order in transit whose live item was last written by an announced location
    let view = order_in(OrderStatus::InTransit);
    let mut announced = view.clone();
    announced.live = moved(&view.live, 30, 12, 42);
    announced.live.announced_seq = Some(announced.live.seq);
    // WHEN it is delivered THEN the transition's live item carries no mark
    let (who, what) = step(OrderStatus::InTransit);
    let delivered = announced.apply(&who, what, t(40)).unwrap();
    assert_eq!(delivered.live.announced_seq, None);
}

#[test]
fn the_live_items_part_of_a_transition_produces_nothing() {
    let ready = order_in(OrderStatus::ReadyForPickup);
    let assigned = ready.apply(&admin(), assign(), t(20)).unwrap();
    let out = derive_events(Some(&live(&ready.live)), Some(&live(&assigned.live)));
    assert!(out.is_empty(), "{out:?}");
    // And the live item's insert with a new order produces nothing either.
    let placed = placed();
    assert!(derive_events(None, Some(&live(&placed.live))).is_empty());
}

#[test]
fn removals_and_replays_produce_nothing() {
    let view = order_in(OrderStatus::Accepted);
    assert!(derive_events(Some(&order(&view)), None).is_empty());
    // A redelivered or stale record: the new image is not newer than the old.
    assert!(derive_events(Some(&order(&view)), Some(&order(&view))).is_empty());
    let after = moved(&view.live, 5, 10, 20);
    assert!(derive_events(Some(&live(&after)), Some(&live(&view.live))).is_empty());
}

#[test]
fn a_change_without_status_or_driver_change_produces_nothing() {
    let view = order_in(OrderStatus::Accepted);
    let mut touched = view.order.clone();
    touched.seq += 1;
    touched.notes = Some("extra napkins".into());
    let out = derive_events(Some(&order(&view)), Some(&OrderRecord::Order(touched)));
    assert!(out.is_empty());
}

#[test]
fn order_records_round_trip_through_json_with_their_item_type() {
    let view = order_in(OrderStatus::InTransit);
    for record in [order(&view), live(&moved(&view.live, 30, 12, 42))] {
        let json = serde_json::to_value(&record).unwrap();
        assert!(json.get("itemType").is_some());
        let back: OrderRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }
    let json = serde_json::to_value(order(&view)).unwrap();
    assert_eq!(json["itemType"], "order");
    assert_eq!(json["status"], "in_transit");
    assert_eq!(json["chefBusinessName"], "Carla's Kitchen");
    assert_eq!(json["driverId"], "driver-1");
    // Stored items carry key attributes too; they are ignored when reading.
    let mut stored = json.clone();
    stored["pk"] = "ORDER#order-1".into();
    stored["sk"] = "ORDER".into();
    let back: OrderRecord = serde_json::from_value(stored).unwrap();
    assert_eq!(back, order(&view));
    let unassigned = serde_json::to_value(order(&placed())).unwrap();
    assert!(unassigned.get("driverId").is_none());
    let back: OrderRecord = serde_json::from_value(unassigned).unwrap();
    assert_eq!(back, order(&placed()));
}

#[test]
fn every_action_changes_what_its_audience_sees() {
    // Drive a whole lifecycle and collect the derived events per room, the way the fan-out
    // would: the chef hears of the order, the driver of the assignment, the order room, the
    // admins and the customer of every status.
    let mut events: Vec<(String, String)> = Vec::new();
    let mut prev = placed();
    for o in derive_events(None, Some(&order(&prev))) {
        for r in &o.rooms {
            events.push((r.to_string(), o.message.event_name().into()));
        }
    }
    while !prev.order.status.is_final() {
        let (who, what) = step(prev.order.status);
        let next = prev.apply(&who, what, t(10)).unwrap();
        for o in derive_events(Some(&order(&prev)), Some(&order(&next))) {
            for r in &o.rooms {
                events.push((r.to_string(), o.message.event_name().into()));
            }
        }
        prev = next;
    }
    let count = |room: &str, name: &str| {
        events
            .iter()
            .filter(|(r, n)| r == room && n == name)
            .count()
    };
    assert_eq!(count("user:chef-1", "order:new"), 1);
    assert_eq!(count("user:driver-1", "driver:new_assignment"), 1);
    assert_eq!(count("order:order-1", "order:status_update"), 7);
    assert_eq!(count("role:admin", "order:status_update"), 7);
    assert_eq!(count("user:customer-1", "order:status_update"), 7);
    assert_eq!(events.len(), 1 + 1 + 7 + 7 + 7);
}

#[test]
fn the_role_rooms_events_go_to_are_exactly_the_role_rooms_connections_join() {
    // GIVEN every event of an order's life: placed, each status to delivered, a cancellation,
    // and a location with its ETA
    let mut outgoing = derive_events(None, Some(&order(&placed())));
    let mut prev = placed();
    while !prev.order.status.is_final() {
        let (who, what) = step(prev.order.status);
        let next = prev.apply(&who, what, t(10)).unwrap();
        outgoing.extend(derive_events(Some(&order(&prev)), Some(&order(&next))));
        prev = next;
    }
    let cancelled = placed().apply(&customer(), cancel(), t(3)).unwrap();
    outgoing.extend(derive_events(
        Some(&order(&placed())),
        Some(&order(&cancelled)),
    ));
    let moving = order_in(OrderStatus::InTransit);
    outgoing.extend(derive_events(
        Some(&live(&moving.live)),
        Some(&live(&moved(&moving.live, 30, 12, 42))),
    ));
    // WHEN the role rooms they are addressed to are collected
    let mut addressed: Vec<Role> = outgoing
        .iter()
        .flat_map(|o| o.rooms.iter())
        .filter_map(|r| match r {
            Room::Role(role) => Some(*role),
            _ => None,
        })
        .collect();
    addressed.sort();
    addressed.dedup();
    // THEN each is a room connections join at $connect (no event goes to an empty room) ...
    assert!(addressed.iter().all(|r| role_has_room(*r)), "{addressed:?}");
    // AND no role has a room that no event is sent to (no membership is written for nobody):
    // only admins, for status updates
    assert_eq!(addressed, ROLES_WITH_A_ROOM);
    assert_eq!(addressed, [Role::Admin]);
}

#[test]
fn status_updates_rebuilt_from_the_history_are_the_ones_derived_when_they_happened() {
    // GIVEN an order driven through its whole lifecycle, keeping every derived status update
    let mut prev = placed();
    let mut derived = Vec::new();
    while !prev.order.status.is_final() {
        let (who, what) = step(prev.order.status);
        let next = prev.apply(&who, what, t(10)).unwrap();
        for o in derive_events(Some(&order(&prev)), Some(&order(&next))) {
            if let ServerMessage::StatusUpdate(d) = o.message {
                derived.push(d);
            }
        }
        prev = next;
    }
    // WHEN they are rebuilt from the final order's history after each seq
    for since in 0..=prev.order.seq + 1 {
        let rebuilt = rnd_domain::events::status_updates_since(&prev.order, since).unwrap();
        // THEN they are exactly the derived ones after that seq, oldest first
        let expected: Vec<_> = derived.iter().filter(|d| d.seq > since).cloned().collect();
        assert_eq!(rebuilt, expected, "since {since}");
    }
}

#[test]
fn a_history_without_recorded_seqs_cannot_be_replayed() {
    // GIVEN an order written before history entries recorded their seq
    let mut view = order_in(OrderStatus::Accepted);
    for entry in &mut view.order.status_history {
        entry.seq = None;
    }
    // THEN what it missed cannot be rebuilt, but "nothing after the current seq" still can
    assert_eq!(
        rnd_domain::events::status_updates_since(&view.order, 1),
        None
    );
    assert_eq!(
        rnd_domain::events::status_updates_since(&view.order, view.order.seq),
        Some(Vec::new())
    );
}
