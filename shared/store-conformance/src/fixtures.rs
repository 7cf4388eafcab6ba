//! Orders, actors and connections to test with.

use chrono::{DateTime, Duration, DurationRound, Utc};
use rnd_domain::geo::{GeoPoint, Latitude, Longitude};
use rnd_domain::identity::{Actor, Role};
use rnd_domain::ids::{ConnectionId, OrderId, UserId};
use rnd_domain::live::{DriverLocation, Eta, EtaSource, LocationWrite};
use rnd_domain::order::{Action, ChefInfo, DriverInfo, NewOrder, OrderItem, OrderStatus};
use rnd_domain::ports::{Connection, OrderFilter, OrderQuery, OrderStore};
use rnd_domain::profile::{Profile, ProfileFields};
use rnd_domain::{Order, OrderView};

/// Now, truncated to milliseconds (what every store keeps exactly).
pub fn now() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(Duration::milliseconds(1))
        .expect("truncating to ms cannot overflow")
}

fn user(id: &str) -> UserId {
    UserId::parse(id).expect("fixture user ids are valid")
}

/// The customer of every fixture order.
pub fn customer() -> Actor {
    Actor::new(user("customer-1"), Role::Customer)
}

/// Another customer.
pub fn other_customer() -> Actor {
    Actor::new(user("customer-2"), Role::Customer)
}

/// The chef of every fixture order.
pub fn chef() -> Actor {
    Actor::new(user("chef-1"), Role::Chef)
}

/// The driver assigned by [`advance`].
pub fn driver() -> Actor {
    Actor::new(user("driver-1"), Role::Driver)
}

/// A driver who is not assigned.
pub fn other_driver() -> Actor {
    Actor::new(user("driver-2"), Role::Driver)
}

/// An admin.
pub fn admin() -> Actor {
    Actor::new(user("admin-1"), Role::Admin)
}

/// An order id.
pub fn order_id(id: &str) -> OrderId {
    OrderId::parse(id).expect("fixture order ids are valid")
}

/// A pending order from [`customer`] to [`chef`], placed at `at`.
pub fn placed_order(id: &str, customer: &Actor, at: DateTime<Utc>) -> OrderView {
    let order = Order::place(
        NewOrder {
            order_id: order_id(id),
            order_number: format!("RND-{}-{:04}", at.format("%Y%m%d"), id.len()),
            customer_id: customer.user_id.clone(),
            customer_name: "Ada Customer".into(),
            delivery_address: "1 Congress Ave, Austin, TX".into(),
            delivery: GeoPoint::parse(30.2747, -97.7404).expect("valid point"),
            chef: ChefInfo {
                chef_id: chef().user_id,
                chef_name: "Carla Chef".into(),
                chef_business_name: "Carla's Kitchen".into(),
                chef_address: "500 E 7th St, Austin, TX".into(),
                chef_latitude: Latitude::parse(30.2676).expect("valid"),
                chef_longitude: Longitude::parse(-97.7360).expect("valid"),
            },
            items: vec![OrderItem {
                name: "Tamales".into(),
                quantity: 6,
            }],
            notes: Some("Ring twice".into()),
        },
        at,
    );
    OrderView::new_placed(order)
}

/// The action (and actor) that moves an order out of `status` along the happy path.
pub fn next_step(status: OrderStatus) -> Option<(Actor, Action)> {
    Some(match status {
        OrderStatus::Pending => (admin(), Action::ConfirmPayment),
        OrderStatus::PaymentConfirmed => (chef(), Action::Accept),
        OrderStatus::Accepted => (chef(), Action::MarkReady),
        OrderStatus::ReadyForPickup => (
            admin(),
            Action::AssignDriver(DriverInfo {
                driver_id: driver().user_id,
                driver_name: "Dan Driver".into(),
                driver_phone: Some("+1 512 555 0100".into()),
            }),
        ),
        OrderStatus::AssignedToDriver => (driver(), Action::PickUp),
        OrderStatus::PickedUp => (driver(), Action::StartTransit),
        OrderStatus::InTransit => (driver(), Action::Deliver),
        OrderStatus::Delivered | OrderStatus::Cancelled => return None,
    })
}

/// Commits happy-path transitions until the stored order is in `target`; returns the view.
pub async fn advance<S: OrderStore + ?Sized>(
    store: &S,
    mut view: OrderView,
    target: OrderStatus,
) -> OrderView {
    while view.order.status != target {
        let (actor, action) = next_step(view.order.status).expect("target is on the happy path");
        let next = view
            .apply(&actor, action, now())
            .expect("happy-path transition is valid");
        store
            .commit_transition(&view, &next)
            .await
            .expect("uncontended commit succeeds");
        view = next;
    }
    view
}

/// Three of the customer's orders (`o-cur-0` to `o-cur-2`, a minute apart) placed in `store`,
/// and the cursor a one-order page of the customer's listing ends with.
pub async fn a_customer_listing_cursor<S: OrderStore + ?Sized>(store: &S) -> String {
    for i in 0..3 {
        let view = placed_order(
            &format!("o-cur-{i}"),
            &customer(),
            now() - Duration::minutes(i),
        );
        store.create_order(&view).await.expect("create");
    }
    store
        .list_orders(&OrderQuery {
            filter: OrderFilter::Customer(customer().user_id),
            limit: 1,
            cursor: None,
        })
        .await
        .expect("page")
        .next_cursor
        .expect("more pages")
}

/// An open connection of `actor`, connected at `at`.
pub fn connection(id: &str, actor: &Actor, at: DateTime<Utc>) -> Connection {
    Connection {
        connection_id: ConnectionId::parse(id).expect("fixture connection ids are valid"),
        user_id: actor.user_id.clone(),
        role: actor.role,
        name: Some("Test User".into()),
        connected_at: at,
        source_ip: Some("203.0.113.7".into()),
        user_agent: Some("conformance/1.0".into()),
        token_expires_at: at + Duration::hours(1),
        expires_at: Connection::expiry_for(at),
    }
}

/// A connection id.
pub fn connection_id(id: &str) -> ConnectionId {
    ConnectionId::parse(id).expect("fixture connection ids are valid")
}

/// The profile of [`chef`], complete (business name, address, pickup point), saved at `at`; the
/// same chef details [`placed_order`] copies.
pub fn chef_profile(at: DateTime<Utc>) -> Profile {
    let chef = chef();
    Profile::parse(
        chef.user_id,
        chef.role,
        ProfileFields {
            name: "Carla Chef".into(),
            phone: Some("+1 512 555 0101".into()),
            business_name: Some("Carla's Kitchen".into()),
            address: Some("500 E 7th St, Austin, TX".into()),
            latitude: Some(30.2676),
            longitude: Some(-97.7360),
        },
        at,
    )
    .expect("fixture chef profile is valid")
}

/// The profile of [`customer`], saved at `at`.
pub fn customer_profile(at: DateTime<Utc>) -> Profile {
    let customer = customer();
    Profile::parse(
        customer.user_id,
        customer.role,
        ProfileFields {
            name: "Ada Customer".into(),
            phone: Some("+1 512 555 0199".into()),
            ..ProfileFields::default()
        },
        at,
    )
    .expect("fixture customer profile is valid")
}

/// The profile of [`driver`], saved at `at`; the same driver details [`next_step`] assigns.
pub fn driver_profile(at: DateTime<Utc>) -> Profile {
    let driver = driver();
    Profile::parse(
        driver.user_id,
        driver.role,
        ProfileFields {
            name: "Dan Driver".into(),
            phone: Some("+1 512 555 0100".into()),
            ..ProfileFields::default()
        },
        at,
    )
    .expect("fixture driver profile is valid")
}

/// The `order:new` of a placed order `id` (what the chef's inbox keeps), as an inbox event.
pub fn inbox_event(id: &str) -> rnd_domain::inbox::InboxEvent {
    let view = placed_order(id, &customer(), now());
    let order = rnd_domain::OrderRecord::Order(view.order);
    let derived = rnd_domain::derive_events(None, Some(&order));
    let message = &derived
        .first()
        .expect("a placed order derives order:new")
        .message;
    rnd_domain::inbox::InboxEvent::of(message).expect("order:new goes to an inbox")
}

/// A registration of `token` (an FCM-looking token made from `name`) by `actor`, on Android,
/// with a fresh device id.
pub fn registration(actor: &Actor, name: &str) -> rnd_domain::device::DeviceRegistration {
    rnd_domain::device::DeviceRegistration {
        new_id: rnd_domain::device::DeviceId::parse(uuid_like()).expect("a device id"),
        user_id: actor.user_id.clone(),
        token: rnd_domain::device::DeviceToken::parse(format!("fcm-{name}:APA91b-token"))
            .expect("a token"),
        platform: rnd_domain::device::Platform::Android,
        app_version: Some("1.4.0".into()),
        locale: Some("en-US".into()),
    }
}

/// A fresh id of letters and digits (no uuid crate in the suite: time and a counter).
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("dev-{nanos:x}-{n:x}")
}

/// A location from `driver` for `view`'s order at `now_ms`, with a speed and an ETA, asking for
/// at least 1 s since the last accepted one.
pub fn location_write(view: &OrderView, driver: &Actor, now_ms: i64) -> LocationWrite {
    let at = DateTime::from_timestamp_millis(now_ms).expect("valid ms");
    LocationWrite {
        order_id: view.order.order_id.clone(),
        driver_id: driver.user_id.clone(),
        location: DriverLocation {
            latitude: Latitude::parse(30.27).expect("valid"),
            longitude: Longitude::parse(-97.74).expect("valid"),
            heading: None,
            speed: Some(rnd_domain::geo::Speed::parse(8.5).expect("valid")),
            accuracy: None,
            recorded_at: at,
        },
        eta: Some(Eta {
            eta_minutes: 7,
            estimated_delivery_time: at + Duration::minutes(7),
            computed_at: at,
            source: EtaSource::Estimate,
            estimated_pickup_time: None,
        }),
        observed_speed_mps: Some(8.5),
        route: None,
        now_ms,
        min_interval_ms: 1_000,
        announced: false,
    }
}
