//! Shared fixtures for the domain tests.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use rnd_domain::geo::{GeoPoint, Latitude, Longitude};
use rnd_domain::identity::{Actor, Role};
use rnd_domain::ids::{OrderId, UserId};
use rnd_domain::live::{DriverLocation, Eta, LiveState};
use rnd_domain::order::{Action, ChefInfo, DriverInfo, NewOrder, OrderItem, OrderStatus};
use rnd_domain::protocol::{
    ConnectedData, LocationAckData, LocationRejection, PongData, ProtocolError, ResumedData,
    ServerMessage, SubscribedData, UnsubscribedData,
};
use rnd_domain::tracking::OrderTracking;
use rnd_domain::visibility::Visibility;
use rnd_domain::{Order, OrderRecord, OrderView, derive_events};

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

/// Every kind of server message: adding one fails to compile until it is listed here.
pub fn every_server_message_kind(message: &ServerMessage) {
    match message {
        ServerMessage::Connected(_)
        | ServerMessage::Subscribed(_)
        | ServerMessage::Unsubscribed(_)
        | ServerMessage::LocationAcknowledged(_)
        | ServerMessage::Pong(_)
        | ServerMessage::Resumed(_)
        | ServerMessage::Error(_)
        | ServerMessage::OrderNew(_)
        | ServerMessage::StatusUpdate(_)
        | ServerMessage::NewAssignment(_)
        | ServerMessage::LocationUpdate(_)
        | ServerMessage::EtaUpdate(_) => {}
    }
}

/// One of each kind of server message, with every optional field set.
pub fn server_message_examples() -> Vec<ServerMessage> {
    let view = order_in(OrderStatus::InTransit);
    let mut out = vec![
        ServerMessage::Connected(ConnectedData {
            connection_id: rnd_domain::ConnectionId::parse("c-1").unwrap(),
            user_id: customer().user_id,
            role: customer().role,
            server_time: t(0),
        }),
        ServerMessage::Subscribed(Box::new(SubscribedData {
            order_id: view.order.order_id.clone(),
            seq: view.seq(),
            tracking: OrderTracking::of(&view, Visibility::ALL),
            continuity: Some(rnd_domain::inbox::Continuity::Ok),
            replayed: Some(2),
        })),
        ServerMessage::Unsubscribed(UnsubscribedData {
            order_id: view.order.order_id.clone(),
        }),
        ServerMessage::LocationAcknowledged(LocationAckData {
            order_id: view.order.order_id.clone(),
            accepted: false,
            eta_minutes: Some(5),
            reason: Some(LocationRejection::RateLimited),
            retry_after_ms: Some(300),
            seq: Some(9),
        }),
        ServerMessage::Pong(PongData { server_time: t(0) }),
        ServerMessage::Resumed(ResumedData {
            cursor: "c".into(),
            replayed: 1,
            continuity: rnd_domain::inbox::Continuity::Ok,
        }),
        ProtocolError::rate_limited("slow down", 1_500).to_message(),
    ];
    // The order events, as derived, with notes, a reason, a heading and a speed.
    let mut placed = placed();
    placed.order.notes = Some("ring twice".into());
    for o in derive_events(None, Some(&OrderRecord::Order(placed.order.clone()))) {
        out.push(o.message.delivered(Some("c".into()), true));
    }
    let ready = order_in(OrderStatus::ReadyForPickup);
    let mut assigned = ready.apply(&admin(), assign(), t(20)).unwrap();
    assigned.order.notes = Some("ring twice".into());
    for o in derive_events(
        Some(&OrderRecord::Order(ready.order.clone())),
        Some(&OrderRecord::Order(assigned.order.clone())),
    ) {
        out.push(o.message.delivered(Some("c".into()), true));
    }
    let cancelled = ready.apply(&admin(), cancel(), t(21)).unwrap();
    for o in derive_events(
        Some(&OrderRecord::Order(ready.order.clone())),
        Some(&OrderRecord::Order(cancelled.order.clone())),
    ) {
        out.push(o.message.delivered(Some("c".into()), true));
    }
    let moving: LiveState = LiveState {
        location: Some(
            serde_json::from_value::<DriverLocation>(serde_json::json!({
                "latitude": 30.27, "longitude": -97.74, "heading": 90.0, "speed": 8.0,
                "accuracy": 5.0, "recordedAt": t(30),
            }))
            .unwrap(),
        ),
        location_accepted_at_ms: Some(t(30).timestamp_millis()),
        eta: Some(Eta {
            eta_minutes: 7,
            estimated_delivery_time: t(37),
            computed_at: t(30),
            source: rnd_domain::live::EtaSource::Estimate,
            estimated_pickup_time: None,
        }),
        seq: view.live.seq + 1,
        ..view.live.clone()
    };
    for o in derive_events(
        Some(&OrderRecord::Live(view.live.clone())),
        Some(&OrderRecord::Live(moving)),
    ) {
        out.push(o.message);
    }
    out
}
