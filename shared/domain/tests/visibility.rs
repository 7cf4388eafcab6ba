//! What each party sees of an order, over every relation and every status: the table of
//! `rnd_domain::visibility`, and the driver's access ending after the order ends.

mod common;

use chrono::Duration;
use common::*;
use rnd_domain::order::{OrderStatus, Relation};
use rnd_domain::tracking::OrderTracking;
use rnd_domain::visibility::{DriverAccess, Visibility};

/// Whether the chef had accepted by `status` on the way `order_in` takes there (a cancelled
/// order here was cancelled while pending).
fn accepted_by(status: OrderStatus) -> bool {
    !matches!(
        status,
        OrderStatus::Pending | OrderStatus::PaymentConfirmed | OrderStatus::Cancelled
    )
}

#[test]
fn each_party_sees_what_the_table_says_in_every_status() {
    for status in OrderStatus::ALL {
        let view = order_in(status);
        let accepted = accepted_by(status);
        // relation → (delivery location, chef location, driver phone, changedBy)
        let table = [
            (Relation::Customer, (true, accepted, true, false)),
            (Relation::Chef, (accepted, true, false, false)),
            (Relation::Driver, (true, true, false, false)),
            (Relation::Admin, (true, true, true, true)),
            (Relation::Stranger, (false, false, false, false)),
        ];
        for (relation, (delivery, chef, phone, changed_by)) in table {
            // GIVEN the order in `status`, WHEN `relation` looks at it
            let seen = Visibility::of(relation, &view.order);
            // THEN it sees what the table says
            assert_eq!(
                (
                    seen.delivery_location,
                    seen.chef_location,
                    seen.driver_phone,
                    seen.changed_by
                ),
                (delivery, chef, phone, changed_by),
                "{relation:?} in {status}"
            );
        }
    }
}

#[test]
fn the_tracking_payload_leaves_out_what_its_viewer_may_not_see() {
    // GIVEN an order in transit (accepted, with a driver who has a phone)
    let view = order_in(OrderStatus::InTransit);
    let keys = |relation: Relation| {
        let tracking = OrderTracking::of(&view, Visibility::of(relation, &view.order));
        let json = serde_json::to_value(&tracking).unwrap();
        let has = |k: &str| json.get(k).is_some();
        let history_names_who = json["statusHistory"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("changedBy").is_some());
        (
            has("deliveryAddress") && has("deliveryLatitude") && has("deliveryLongitude"),
            has("chefAddress") && has("chefLatitude") && has("chefLongitude"),
            has("driverPhone"),
            history_names_who,
        )
    };
    // THEN the customer gets the driver's phone, only the admin gets who changed each status
    assert_eq!(keys(Relation::Customer), (true, true, true, false));
    assert_eq!(keys(Relation::Chef), (true, true, false, false));
    assert_eq!(keys(Relation::Driver), (true, true, false, false));
    assert_eq!(keys(Relation::Admin), (true, true, true, true));

    // AND before the chef accepts, the chef has no delivery address and the customer no
    // chef address
    let early = order_in(OrderStatus::PaymentConfirmed);
    let chef = serde_json::to_value(OrderTracking::of(
        &early,
        Visibility::of(Relation::Chef, &early.order),
    ))
    .unwrap();
    let customer = serde_json::to_value(OrderTracking::of(
        &early,
        Visibility::of(Relation::Customer, &early.order),
    ))
    .unwrap();
    for key in ["deliveryAddress", "deliveryLatitude", "deliveryLongitude"] {
        assert!(chef.get(key).is_none(), "{key}");
        assert!(customer.get(key).is_some(), "{key}");
    }
    for key in ["chefAddress", "chefLatitude", "chefLongitude"] {
        assert!(customer.get(key).is_none(), "{key}");
        assert!(chef.get(key).is_some(), "{key}");
    }
}

#[test]
fn an_order_cancelled_after_acceptance_keeps_what_acceptance_revealed() {
    // GIVEN an order accepted, then cancelled by an admin
    let accepted = order_in(OrderStatus::Accepted);
    let cancelled = accepted.apply(&admin(), cancel(), t(30)).unwrap();
    // THEN the chef still sees the delivery address, the customer the chef's
    assert!(Visibility::of(Relation::Chef, &cancelled.order).delivery_location);
    assert!(Visibility::of(Relation::Customer, &cancelled.order).chef_location);
}

#[test]
fn the_driver_loses_the_order_some_hours_after_it_ends_and_nobody_else_does() {
    let access = DriverAccess(Duration::hours(6));
    for status in [OrderStatus::Delivered, OrderStatus::Cancelled] {
        // GIVEN an order that ended (a cancelled one after its driver was assigned)
        let view = match status {
            OrderStatus::Cancelled => order_in(OrderStatus::PickedUp)
                .apply(&admin(), cancel(), t(40))
                .unwrap(),
            _ => order_in(status),
        };
        let ended = view.order.ended_at().expect("it ended");
        // WHEN each party looks just before and at the end of the driver's access
        let before = ended + Duration::hours(6) - Duration::seconds(1);
        let after = ended + Duration::hours(6);
        // THEN its driver sees it until then and is a stranger from then on
        assert_eq!(
            view.order.relation_at(&driver(), before, access),
            Relation::Driver
        );
        assert_eq!(
            view.order.relation_at(&driver(), after, access),
            Relation::Stranger,
            "{status}"
        );
        assert!(!view.order.is_visible_to_at(&driver(), after, access));
        // AND its customer, chef and admins keep it
        for who in [customer(), chef(), admin()] {
            assert!(
                view.order
                    .is_visible_to_at(&who, after + Duration::days(365), access),
                "{}",
                who.user_id
            );
        }
    }
    // AND a driver keeps an order that has not ended, however long it takes
    let ongoing = order_in(OrderStatus::InTransit);
    assert!(
        ongoing
            .order
            .is_visible_to_at(&driver(), t(0) + Duration::days(30), access)
    );
}
