//! Which change calls for which push notification, to whom, saying what.

mod common;

use chrono::Duration;
use common::*;
use rnd_domain::change::OrderChange;
use rnd_domain::live::{Eta, LiveState};
use rnd_domain::order::OrderStatus;
use rnd_domain::push::{ALMOST_THERE_MINUTES, Notification, Recipient, notifications};
use rnd_domain::{OrderRecord, OrderView, UserId};

fn order(view: &OrderView) -> OrderRecord {
    OrderRecord::Order(view.order.clone())
}

fn change(old: Option<OrderRecord>, new: Option<OrderRecord>) -> OrderChange {
    OrderChange::between(old, new).expect("a change")
}

fn to(user: &UserId) -> Recipient {
    Recipient::User(user.clone())
}

/// The notifications of moving `view` one step along the happy path.
fn step_from(view: &OrderView) -> (OrderView, Vec<Notification>) {
    let (who, what) = step(view.order.status);
    let next = view.apply(&who, what, t(30)).unwrap();
    let found = notifications(&change(Some(order(view)), Some(order(&next))));
    (next, found)
}

#[test]
fn a_placed_order_wakes_the_chef_with_its_number_and_item_count() {
    let placed = placed();
    let found = notifications(&change(None, Some(order(&placed))));
    assert_eq!(found.len(), 1);
    let n = &found[0];
    assert_eq!(n.to, to(&chef().user_id));
    assert_eq!(n.title, "New order RND-20260131-0001");
    assert_eq!(n.body, "6 items for Ada Customer");
    assert!(n.high_priority);
    assert_eq!(n.collapse_key, "order-1");
    assert_eq!(n.data["event"], "order:new");
    assert_eq!(n.data["orderId"], "order-1");
    assert_eq!(n.order_id(), Some("order-1"));
    assert_eq!(n.data["status"], "pending");
    assert_eq!(n.data["seq"], "1");
}

#[test]
fn the_customer_hears_of_each_status_that_matters_once_and_the_driver_of_the_assignment() {
    let mut view = placed();
    let mut customer_statuses = Vec::new();
    let mut driver_events = Vec::new();
    while !view.order.status.is_final() {
        let (next, found) = step_from(&view);
        for n in found {
            assert_eq!(n.data["seq"], next.order.seq.to_string());
            assert_eq!(n.collapse_key, "order-1");
            if n.to == to(&customer().user_id) {
                assert!(!n.high_priority);
                assert_eq!(n.title, "Order RND-20260131-0001");
                customer_statuses.push(n.data["status"].clone());
            } else if n.to == to(&driver().user_id) {
                assert!(n.high_priority);
                assert!(n.body.contains("Carla's Kitchen"), "{}", n.body);
                assert!(n.body.contains("1 Congress Ave"), "{}", n.body);
                driver_events.push(n.data["event"].clone());
            } else {
                panic!("unexpected recipient {:?}", n.to);
            }
        }
        view = next;
    }
    assert_eq!(
        customer_statuses,
        [
            "accepted",
            "assigned_to_driver",
            "picked_up",
            "in_transit",
            "delivered"
        ]
    );
    assert_eq!(driver_events, ["driver:new_assignment"]);
}

#[test]
fn cancelling_an_assigned_order_tells_the_customer_and_the_driver() {
    let assigned = order_in(OrderStatus::AssignedToDriver);
    let cancelled = assigned.apply(&admin(), cancel(), t(40)).unwrap();
    let found = notifications(&change(Some(order(&assigned)), Some(order(&cancelled))));
    let recipients: Vec<&Recipient> = found.iter().map(|n| &n.to).collect();
    assert_eq!(
        recipients,
        [&to(&customer().user_id), &to(&driver().user_id)]
    );
    assert!(found[0].body.starts_with("Your order was cancelled"));
    assert_eq!(found[1].title, "Delivery RND-20260131-0001 cancelled");
    // AND a cancellation before any driver was assigned tells the customer only
    let accepted = order_in(OrderStatus::Accepted);
    let early = accepted.apply(&admin(), cancel(), t(10)).unwrap();
    let found = notifications(&change(Some(order(&accepted)), Some(order(&early))));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].to, to(&customer().user_id));
}

fn live_with_eta(view: &OrderView, minutes: Option<u32>, seq: u64) -> OrderRecord {
    OrderRecord::Live(LiveState {
        seq,
        eta: minutes.map(|m| Eta {
            eta_minutes: m,
            estimated_delivery_time: t(50) + Duration::minutes(i64::from(m)),
            computed_at: t(50),
            source: rnd_domain::live::EtaSource::Estimate,
            estimated_pickup_time: None,
        }),
        ..view.live.clone()
    })
}

#[test]
fn the_customer_is_told_the_driver_is_almost_there_once_when_the_eta_first_gets_close() {
    let moving = order_in(OrderStatus::InTransit);
    let seq = moving.seq();
    let almost = ALMOST_THERE_MINUTES;
    let push = |old: Option<u32>, new: Option<u32>| {
        notifications(&change(
            Some(live_with_eta(&moving, old, seq)),
            Some(live_with_eta(&moving, new, seq + 1)),
        ))
    };
    // From far to close: once, to the order's customer, keyed once per order
    let found = push(Some(9), Some(almost));
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].to,
        Recipient::CustomerOf(moving.order.order_id.clone())
    );
    assert_eq!(found[0].key, "order-1#almost_there");
    assert_eq!(found[0].title, "Your driver is almost there");
    assert_eq!(found[0].data["event"], "order:eta_update");
    // The first ETA already close counts too
    assert_eq!(push(None, Some(1)).len(), 1);
    // Close to closer, still far, or no ETA: nothing
    assert!(push(Some(almost), Some(1)).is_empty());
    assert!(push(Some(12), Some(almost + 1)).is_empty());
    assert!(push(Some(5), None).is_empty());
}

#[test]
fn nothing_is_pushed_for_a_replay_a_removal_or_an_eta_after_delivery() {
    let placed = placed();
    assert!(notifications(&change(Some(order(&placed)), Some(order(&placed)))).is_empty());
    assert!(notifications(&change(Some(order(&placed)), None)).is_empty());
    let delivered = order_in(OrderStatus::Delivered);
    let found = notifications(&change(
        Some(live_with_eta(&delivered, Some(9), delivered.seq())),
        Some(live_with_eta(&delivered, Some(1), delivered.seq() + 1)),
    ));
    assert!(found.is_empty());
}
