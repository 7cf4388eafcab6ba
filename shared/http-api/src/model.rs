//! The wire types of the API: request bodies as clients send them (raw values, parsed by the
//! handlers) and responses built from domain values. They derive [`ToSchema`], so the OpenAPI
//! document describes exactly what is sent and read. Enums are converted with exhaustive
//! matches, so a new status or role cannot be left out of the document.

use chrono::{DateTime, Utc};
use rnd_domain::device::{Device, Platform};
use rnd_domain::order::{Order, OrderItem, OrderStatus, StatusChange};
use rnd_domain::ports::OrderPage;
use rnd_domain::profile::Profile;
use rnd_domain::tracking::{OrderTracking, TrackingStatus};
use rnd_domain::visibility::{Place, Visibility};
use rnd_domain::{Actor, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::schema;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Placed, awaiting payment.
    Pending,
    /// Paid.
    PaymentConfirmed,
    /// The chef is cooking.
    Accepted,
    /// Cooked, waiting for a driver.
    ReadyForPickup,
    /// A driver is on the way to the chef.
    AssignedToDriver,
    /// The driver has the food.
    PickedUp,
    /// On the way to the customer.
    InTransit,
    /// Handed over. Final.
    Delivered,
    /// Called off. Final.
    Cancelled,
}

impl From<OrderStatus> for Status {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::Pending => Status::Pending,
            OrderStatus::PaymentConfirmed => Status::PaymentConfirmed,
            OrderStatus::Accepted => Status::Accepted,
            OrderStatus::ReadyForPickup => Status::ReadyForPickup,
            OrderStatus::AssignedToDriver => Status::AssignedToDriver,
            OrderStatus::PickedUp => Status::PickedUp,
            OrderStatus::InTransit => Status::InTransit,
            OrderStatus::Delivered => Status::Delivered,
            OrderStatus::Cancelled => Status::Cancelled,
        }
    }
}

/// What an ETA came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum EtaSource {
    /// A routing provider's route, followed as the driver moves.
    Route,
    /// The offline estimate (no provider configured, or it failed).
    Estimate,
}

impl From<rnd_domain::live::EtaSource> for EtaSource {
    fn from(s: rnd_domain::live::EtaSource) -> Self {
        match s {
            rnd_domain::live::EtaSource::Route => EtaSource::Route,
            rnd_domain::live::EtaSource::Estimate => EtaSource::Estimate,
        }
    }
}

/// What a user is to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// Places orders.
    Customer,
    /// Cooks orders.
    Chef,
    /// Delivers orders.
    Driver,
    /// Operates the platform.
    Admin,
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Customer => RoleName::Customer,
            Role::Chef => RoleName::Chef,
            Role::Driver => RoleName::Driver,
            Role::Admin => RoleName::Admin,
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// Dish name, 1–100 characters.
    #[schema(schema_with = schema::item_name)]
    pub name: String,
    /// How many, 1–99: a whole number (`6`, or `6.0` as some JSON encoders write it).
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 99, example = 6)]
    pub quantity: u32,
}

/// Reads a `u32` from any JSON number without a fractional part: JSON, and JSON Schema's
/// `integer`, do not tell `6` from `6.0`, and encoders whose numbers are floats write the latter.
/// Anything else is refused as a number of the wrong kind or range.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    struct Whole;

    impl serde::de::Visitor<'_> for Whole {
        type Value = u32;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a whole number from 0 to {}", u32::MAX)
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u32, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                // Whole and in range: the cast is exact.
                Ok(v as u32)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }
    }

    deserializer.deserialize_any(Whole)
}

impl From<&OrderItem> for OrderLine {
    fn from(i: &OrderItem) -> Self {
        OrderLine {
            name: i.name.clone(),
            quantity: i.quantity,
        }
    }
}

/// `POST /orders`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderRequest {
    /// The chef to order from (their user id).
    #[schema(schema_with = schema::chef_id)]
    pub chef_id: String,
    /// Drop-off address, 1–200 characters.
    #[schema(schema_with = schema::delivery_address)]
    pub delivery_address: String,
    /// Drop-off latitude, −90 to 90.
    #[schema(minimum = -90, maximum = 90, example = 30.2747)]
    pub delivery_latitude: f64,
    /// Drop-off longitude, −180 to 180.
    #[schema(minimum = -180, maximum = 180, example = -97.7404)]
    pub delivery_longitude: f64,
    /// What to cook (at most 50 lines).
    #[serde(default)]
    #[schema(max_items = 50)]
    pub items: Option<Vec<OrderLine>>,
    /// Notes for the chef and driver, at most 500 characters.
    #[serde(default)]
    #[schema(schema_with = schema::notes)]
    pub notes: Option<String>,
}

/// `POST /orders/{id}/assign`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignRequest {
    /// The driver to assign (their user id; they need a driver profile).
    #[schema(schema_with = schema::driver_id)]
    pub driver_id: String,
}

/// `POST /orders/{id}/cancel`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest {
    /// Why, 1–500 characters.
    #[schema(schema_with = schema::reason)]
    pub reason: String,
}

/// One entry of an order's status history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChangeBody {
    /// The status entered.
    pub status: Status,
    /// When.
    pub timestamp: DateTime<Utc>,
    /// Who made the change (user id): admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
    /// The reason, for cancellations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The order's `seq` this status was entered at (the `seq` of its `order:status_update`;
    /// absent in orders written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl StatusChangeBody {
    /// The entry of `c`, naming who made it only when `seen` allows.
    fn of(c: &StatusChange, seen: Visibility) -> Self {
        StatusChangeBody {
            status: c.status.into(),
            timestamp: c.timestamp,
            changed_by: seen.changed_by(c),
            reason: c.reason.clone(),
            seq: c.seq,
        }
    }
}

/// An order, as the lifecycle endpoints answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderBody {
    /// Id (a UUID).
    pub order_id: String,
    /// `RND-YYYYMMDD-NNNN`.
    #[schema(example = "RND-20260131-0001")]
    pub order_number: String,
    /// Current status.
    pub status: Status,
    /// The order's sequence number as of this state (events carry the same numbers).
    pub seq: u64,
    /// The customer's user id.
    pub customer_id: String,
    /// The customer's name (from their profile).
    pub customer_name: String,
    /// Drop-off address (absent for the chef until they accept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<String>,
    /// Drop-off latitude (absent for the chef until they accept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_latitude: Option<f64>,
    /// Drop-off longitude (absent for the chef until they accept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_longitude: Option<f64>,
    /// The chef's user id.
    pub chef_id: String,
    /// The chef's name (from their profile).
    pub chef_name: String,
    /// The chef's business name.
    pub chef_business_name: String,
    /// Pickup address (absent for the customer until the chef accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef_address: Option<String>,
    /// Pickup latitude (absent for the customer until the chef accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef_latitude: Option<f64>,
    /// Pickup longitude (absent for the customer until the chef accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef_longitude: Option<f64>,
    /// The assigned driver's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<String>,
    /// The assigned driver's name (from their profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_name: Option<String>,
    /// The assigned driver's phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_phone: Option<String>,
    /// What was ordered.
    pub items: Vec<OrderLine>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Every status the order has been in, oldest first.
    pub status_history: Vec<StatusChangeBody>,
    /// When placed.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
    /// When payment was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_confirmed_at: Option<DateTime<Utc>>,
    /// When the chef accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it became ready for pickup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    /// When a driver was assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// When the driver picked it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picked_up_at: Option<DateTime<Utc>>,
    /// When transit started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_transit_at: Option<DateTime<Utc>>,
    /// When delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// When cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
}

impl OrderBody {
    /// The order as a viewer who may see `seen` sees it ([`Visibility`]).
    pub fn of(o: &Order, seen: Visibility) -> Self {
        let (delivery_address, delivery_latitude, delivery_longitude) =
            Place::split(seen.delivery(o));
        let (chef_address, chef_latitude, chef_longitude) = Place::split(seen.chef(o));
        OrderBody {
            order_id: o.order_id.to_string(),
            order_number: o.order_number.clone(),
            status: o.status.into(),
            seq: o.seq,
            customer_id: o.customer_id.to_string(),
            customer_name: o.customer_name.clone(),
            delivery_address,
            delivery_latitude,
            delivery_longitude,
            chef_id: o.chef.chef_id.to_string(),
            chef_name: o.chef.chef_name.clone(),
            chef_business_name: o.chef.chef_business_name.clone(),
            chef_address,
            chef_latitude,
            chef_longitude,
            driver_id: o.driver.as_ref().map(|d| d.driver_id.to_string()),
            driver_name: o.driver.as_ref().map(|d| d.driver_name.clone()),
            driver_phone: seen.driver_phone(o),
            items: o.items.iter().map(OrderLine::from).collect(),
            notes: o.notes.clone(),
            status_history: o
                .status_history
                .iter()
                .map(|c| StatusChangeBody::of(c, seen))
                .collect(),
            created_at: o.created_at,
            updated_at: o.updated_at,
            payment_confirmed_at: o.payment_confirmed_at,
            accepted_at: o.accepted_at,
            ready_at: o.ready_at,
            assigned_at: o.assigned_at,
            picked_up_at: o.picked_up_at,
            in_transit_at: o.in_transit_at,
            delivered_at: o.delivered_at,
            cancelled_at: o.cancelled_at,
            cancellation_reason: o.cancellation_reason.clone(),
        }
    }
}

/// `GET /orders`: a page of orders, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPageBody {
    /// The orders.
    pub orders: Vec<OrderBody>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl OrderPageBody {
    /// The page as `viewer` sees each of its orders.
    pub fn seen_by(page: &OrderPage, viewer: &Actor) -> Self {
        OrderPageBody {
            orders: page
                .orders
                .iter()
                .map(|o| OrderBody::of(o, Visibility::for_actor(viewer, o)))
                .collect(),
            next_cursor: page.next_cursor.clone(),
        }
    }
}

/// `GET /orders` query parameters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–100 (default 20): a whole number (`20`, or `20.0`).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page, as it was given (empty: the first page). A cursor
    /// this API did not issue for this listing is refused with 400 `invalid_cursor`.
    #[param(pattern = "^[A-Za-z0-9_-]*$", max_length = 1024)]
    pub cursor: Option<String>,
}

/// One entry of the tracking payload's status history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingStatusBody {
    /// Status entered.
    pub status: Status,
    /// When.
    pub timestamp: DateTime<Utc>,
    /// Who changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
}

impl From<&TrackingStatus> for TrackingStatusBody {
    fn from(s: &TrackingStatus) -> Self {
        TrackingStatusBody {
            status: s.status.into(),
            timestamp: s.timestamp,
            changed_by: s.changed_by.clone(),
        }
    }
}

/// `GET /orders/{id}/tracking`: the product's tracking payload, plus `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingBody {
    /// Id.
    pub order_id: String,
    /// `RND-YYYYMMDD-NNNN`.
    pub order_number: String,
    /// Current status.
    pub status: Status,
    /// The customer's name.
    pub customer_name: String,
    /// Drop-off address (absent for the chef until they accept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<String>,
    /// Drop-off latitude (absent for the chef until they accept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_latitude: Option<f64>,
    /// Drop-off longitude (absent for the chef until they accept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_longitude: Option<f64>,
    /// The chef's name.
    pub chef_name: String,
    /// The chef's business name.
    pub chef_business_name: String,
    /// Pickup address (absent for the customer until the chef accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef_address: Option<String>,
    /// Pickup latitude (absent for the customer until the chef accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef_latitude: Option<f64>,
    /// Pickup longitude (absent for the customer until the chef accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef_longitude: Option<f64>,
    /// Whether a driver is assigned.
    pub driver_assigned: bool,
    /// The driver's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_name: Option<String>,
    /// The driver's phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_phone: Option<String>,
    /// The driver's last accepted latitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_latitude: Option<f64>,
    /// The driver's last accepted longitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_longitude: Option<f64>,
    /// When the driver's device recorded that position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_location_update: Option<DateTime<Utc>>,
    /// Estimated delivery time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_delivery_time: Option<DateTime<Utc>>,
    /// Minutes until delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_minutes: Option<u32>,
    /// What the ETA came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_source: Option<EtaSource>,
    /// When the driver reaches the chef, while on the way there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_pickup_time: Option<DateTime<Utc>>,
    /// Every status the order has been in, oldest first.
    pub status_history: Vec<TrackingStatusBody>,
    /// When placed.
    pub created_at: DateTime<Utc>,
    /// When payment was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_confirmed_at: Option<DateTime<Utc>>,
    /// When the chef accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it became ready for pickup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    /// When a driver was assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// When the driver picked it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picked_up_at: Option<DateTime<Utc>>,
    /// When delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The order's sequence number this snapshot reflects (WebSocket events carry the same).
    pub seq: u64,
}

impl From<&OrderTracking> for TrackingBody {
    fn from(t: &OrderTracking) -> Self {
        TrackingBody {
            order_id: t.order_id.clone(),
            order_number: t.order_number.clone(),
            status: t.status.into(),
            customer_name: t.customer_name.clone(),
            delivery_address: t.delivery_address.clone(),
            delivery_latitude: t.delivery_latitude,
            delivery_longitude: t.delivery_longitude,
            chef_name: t.chef_name.clone(),
            chef_business_name: t.chef_business_name.clone(),
            chef_address: t.chef_address.clone(),
            chef_latitude: t.chef_latitude,
            chef_longitude: t.chef_longitude,
            driver_assigned: t.driver_assigned,
            driver_name: t.driver_name.clone(),
            driver_phone: t.driver_phone.clone(),
            driver_latitude: t.driver_latitude,
            driver_longitude: t.driver_longitude,
            last_location_update: t.last_location_update,
            estimated_delivery_time: t.estimated_delivery_time,
            eta_minutes: t.eta_minutes,
            eta_source: t.eta_source.map(EtaSource::from),
            estimated_pickup_time: t.estimated_pickup_time,
            status_history: t
                .status_history
                .iter()
                .map(TrackingStatusBody::from)
                .collect(),
            created_at: t.created_at,
            payment_confirmed_at: t.payment_confirmed_at,
            accepted_at: t.accepted_at,
            ready_at: t.ready_at,
            assigned_at: t.assigned_at,
            picked_up_at: t.picked_up_at,
            delivered_at: t.delivered_at,
            seq: t.seq,
        }
    }
}

/// `PUT /profiles/me`. Its schema is written out in `schema`: the pickup point's `latitude` and
/// `longitude` come together or not at all.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileRequest {
    /// Display name, 1–100 characters.
    pub name: String,
    /// Phone: digits, optional leading `+`, spaces, `-`, `.`, parentheses; 7–15 digits.
    #[serde(default)]
    pub phone: Option<String>,
    /// Chefs only: business name, 1–100 characters.
    #[serde(default)]
    pub business_name: Option<String>,
    /// Chefs only: pickup address, 1–200 characters.
    #[serde(default)]
    pub address: Option<String>,
    /// Chefs only: pickup latitude (with `longitude`).
    #[serde(default)]
    pub latitude: Option<f64>,
    /// Chefs only: pickup longitude (with `latitude`).
    #[serde(default)]
    pub longitude: Option<f64>,
}

/// A profile, as `GET`/`PUT /profiles/me` answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileBody {
    /// Whose.
    pub user_id: String,
    /// Their role.
    pub role: RoleName,
    /// Display name.
    pub name: String,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Chefs: business name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    /// Chefs: pickup address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Chefs: pickup latitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Chefs: pickup longitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// When last saved.
    pub updated_at: DateTime<Utc>,
}

impl From<&Profile> for ProfileBody {
    fn from(p: &Profile) -> Self {
        ProfileBody {
            user_id: p.user_id.to_string(),
            role: p.role.into(),
            name: p.name.clone(),
            phone: p.phone.clone(),
            business_name: p.business_name.clone(),
            address: p.address.clone(),
            latitude: p.location.map(|l| l.latitude.get()),
            longitude: p.location.map(|l| l.longitude.get()),
            updated_at: p.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use rnd_domain::order::OrderStatus;

    use super::*;

    #[test]
    fn every_status_and_role_has_the_same_wire_name_as_the_domain() {
        for status in OrderStatus::ALL {
            assert_eq!(
                serde_json::to_value(Status::from(status)).unwrap(),
                serde_json::to_value(status).unwrap()
            );
        }
        for role in Role::ALL {
            assert_eq!(
                serde_json::to_value(RoleName::from(role)).unwrap(),
                serde_json::to_value(role).unwrap()
            );
        }
    }
}

/// What a device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlatformName {
    /// Android (FCM).
    Android,
    /// iOS (FCM through APNs).
    Ios,
    /// A browser (FCM web push).
    Web,
}

impl From<Platform> for PlatformName {
    fn from(p: Platform) -> Self {
        match p {
            Platform::Android => PlatformName::Android,
            Platform::Ios => PlatformName::Ios,
            Platform::Web => PlatformName::Web,
        }
    }
}

/// `POST /devices`: a device to push notifications to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRequest {
    /// The FCM registration token: at most 4 096 bytes of letters, digits, `-`, `_`, `:`, `.`.
    #[schema(schema_with = schema::device_token)]
    pub token: String,
    /// `android`, `ios` or `web`.
    #[schema(value_type = PlatformName)]
    pub platform: String,
    /// The app's version, at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::app_version)]
    pub app_version: Option<String>,
    /// The device's locale (e.g. `es-MX`), at most 64 characters; apps localize pushes with
    /// the `data` payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::locale)]
    pub locale: Option<String>,
}

/// A registered device. Its token is not echoed: it is known to the app that registered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceBody {
    /// The device's id (for `DELETE /devices/{deviceId}`).
    pub device_id: String,
    /// What it runs.
    pub platform: PlatformName,
    /// The app's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// The device's locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// When this user first registered it.
    pub registered_at: DateTime<Utc>,
    /// When it was last registered; it is forgotten 270 days after.
    pub last_seen_at: DateTime<Utc>,
}

impl From<&Device> for DeviceBody {
    fn from(d: &Device) -> Self {
        DeviceBody {
            device_id: d.device_id.to_string(),
            platform: d.platform.into(),
            app_version: d.app_version.clone(),
            locale: d.locale.clone(),
            registered_at: d.registered_at,
            last_seen_at: d.last_seen_at,
        }
    }
}

/// `GET /devices`: the caller's devices, most recently seen first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevicesBody {
    /// At most 10.
    pub devices: Vec<DeviceBody>,
}

/// `GET /presence/{userId}`: whether a user is connected now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceBody {
    /// Whom this is about.
    #[schema(value_type = String)]
    pub user_id: rnd_domain::UserId,
    /// True while they have a connection open.
    pub online: bool,
    /// Their connections open now (devices, tabs).
    pub connections: u32,
    /// When the earliest of those opened; absent when offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// The last time a connection of theirs opened or closed (for one that dropped without
    /// closing, when it opened); absent if not seen in the last 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl PresenceBody {
    /// The body for `user`'s `presence`.
    pub fn new(user: rnd_domain::UserId, presence: &rnd_domain::presence::Presence) -> Self {
        Self {
            user_id: user,
            online: presence.online(),
            connections: presence.connections,
            since: presence.since,
            last_seen_at: presence.last_seen_at,
        }
    }
}

/// Connections by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleCountsBody {
    /// Every role together.
    pub total: u64,
    /// Customers.
    pub customer: u64,
    /// Chefs.
    pub chef: u64,
    /// Drivers.
    pub driver: u64,
    /// Admins (dispatchers).
    pub admin: u64,
}

impl From<&rnd_domain::presence::RoleCounts> for RoleCountsBody {
    fn from(c: &rnd_domain::presence::RoleCounts) -> Self {
        Self {
            total: c.total(),
            customer: c.customer,
            chef: c.chef,
            driver: c.driver,
            admin: c.admin,
        }
    }
}

/// How long the sessions that closed in a window had been open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDurationBody {
    /// Sessions that closed in the window.
    pub count: u64,
    /// Their mean, ms; absent when none closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_ms: Option<f64>,
    /// Their median, ms (from a histogram: within its bucket, interpolated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// Their 95th percentile, ms (likewise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
}

/// Connections over a window ending now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionWindowBody {
    /// Connections opened.
    pub connects: u64,
    /// Connections closed (`$disconnect`, API Gateway's idle and 2-hour closes, or found gone).
    pub disconnects: u64,
    /// Connections that vanished without closing, counted when their TTL (2 h 5 min after
    /// they opened) passed.
    pub expired: u64,
    /// How long the closed ones had been open.
    pub session_duration: SessionDurationBody,
}

impl From<&rnd_domain::presence::WindowStats> for ConnectionWindowBody {
    fn from(w: &rnd_domain::presence::WindowStats) -> Self {
        let d = &w.session_duration;
        Self {
            connects: w.connects,
            disconnects: w.disconnects,
            expired: w.expired,
            session_duration: SessionDurationBody {
                count: d.count,
                average_ms: d.average_ms,
                p50_ms: d.p50_ms,
                p95_ms: d.p95_ms,
            },
        }
    }
}

/// The most connections open at once today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeakBody {
    /// The most connections open at the end of a minute today (UTC).
    pub connections: u64,
    /// The end of that minute (the day's start while nobody connected).
    pub at: DateTime<Utc>,
}

/// `GET /stats/connections`: connection analytics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStatsBody {
    /// When these were taken.
    pub at: DateTime<Utc>,
    /// Connections open now, by role.
    pub connected_now: RoleCountsBody,
    /// The last 60 minutes.
    pub last_hour: ConnectionWindowBody,
    /// The last 24 hours.
    pub last_day: ConnectionWindowBody,
    /// The peak today (UTC).
    pub peak_today: PeakBody,
}

impl From<&rnd_domain::presence::ConnectionStats> for ConnectionStatsBody {
    fn from(s: &rnd_domain::presence::ConnectionStats) -> Self {
        Self {
            at: s.at,
            connected_now: RoleCountsBody::from(&s.connected_now),
            last_hour: ConnectionWindowBody::from(&s.last_hour),
            last_day: ConnectionWindowBody::from(&s.last_day),
            peak_today: PeakBody {
                connections: s.peak_today.0,
                at: s.peak_today.1,
            },
        }
    }
}
