//! Shared fixtures for the domain tests.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use rnd_domain::geo::{GeoPoint, Latitude, Longitude};
use rnd_domain::identity::{Actor, Role};
use rnd_domain::ids::{OrderId, UserId};
use rnd_domain::order::{Action, ChefInfo, DriverInfo, NewOrder, OrderItem, OrderStatus};
use rnd_domain::{Order, OrderView};

pub fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 31, 0, minute, 0).unwrap()
}

pub fn actor(id: &str, role: Role) -> Actor {
    Actor::new(UserId::parse(id).unwrap(), role)
}

pub fn customer() -> Actor {
    actor("customer-1", Role::Customer)
}
pub fn other_customer() -> Actor {
    actor("customer-2", Role::Customer)
}
pub fn chef() -> Actor {
    actor("chef-1", Role::Chef)
}
pub fn other_chef() -> Actor {
    actor("chef-2", Role::Chef)
}
pub fn driver() -> Actor {
    actor("driver-1", Role::Driver)
}
pub fn other_driver() -> Actor {
    actor("driver-2", Role::Driver)
}
pub fn admin() -> Actor {
    actor("admin-1", Role::Admin)
}

pub fn assign() -> Action {
    Action::AssignDriver(DriverInfo {
        driver_id: driver().user_id,
        driver_name: "John Driver".into(),
        driver_phone: Some("+1 512 555 0100".into()),
    })
}

pub fn cancel() -> Action {
    Action::Cancel {
        reason: "customer changed their mind".into(),
    }
}

pub fn placed() -> OrderView {
    OrderView::new_placed(Order::place(
        NewOrder {
            order_id: OrderId::parse("order-1").unwrap(),
            order_number: "RND-20260131-0001".into(),
            customer_id: customer().user_id,
            customer_name: "Ada Customer".into(),
            delivery_address: "1 Congress Ave, Austin, TX".into(),
            delivery: GeoPoint::parse(30.2747, -97.7404).unwrap(),
            chef: ChefInfo {
                chef_id: chef().user_id,
                chef_name: "Carla".into(),
                chef_business_name: "Carla's Kitchen".into(),
                chef_address: "500 E 7th St, Austin, TX".into(),
                chef_latitude: Latitude::parse(30.2676).unwrap(),
                chef_longitude: Longitude::parse(-97.7360).unwrap(),
            },
            items: vec![OrderItem {
                name: "Tamales".into(),
                quantity: 6,
            }],
            notes: None,
        },
        t(0),
    ))
}

/// The happy-path step out of `status`.
pub fn step(status: OrderStatus) -> (Actor, Action) {
    match status {
        OrderStatus::Pending => (admin(), Action::ConfirmPayment),
        OrderStatus::PaymentConfirmed => (chef(), Action::Accept),
        OrderStatus::Accepted => (chef(), Action::MarkReady),
        OrderStatus::ReadyForPickup => (admin(), assign()),
        OrderStatus::AssignedToDriver => (driver(), Action::PickUp),
        OrderStatus::PickedUp => (driver(), Action::StartTransit),
        OrderStatus::InTransit => (driver(), Action::Deliver),
        s => panic!("no step out of {s}"),
    }
}

/// An order moved along the happy path to `target`, one minute per step.
pub fn order_in(target: OrderStatus) -> OrderView {
    let mut view = placed();
    let mut minute = 1;
    while view.order.status != target {
        if target == OrderStatus::Cancelled {
            return view.apply(&admin(), cancel(), t(minute)).unwrap();
        }
        let (who, what) = step(view.order.status);
        view = view.apply(&who, what, t(minute)).unwrap();
        minute += 1;
    }
    view
}
