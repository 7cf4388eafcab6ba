//! The tracking payload, as the product notes list it, plus `seq`, shaped for its viewer
//! ([`Visibility`]): what a party may not see is absent.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::live::EtaSource;
use crate::order::{OrderStatus, OrderView, StatusChange};
use crate::visibility::{Place, Visibility};

/// One entry of the tracking payload's status history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingStatus {
    /// Status entered.
    pub status: OrderStatus,
    /// When.
    pub timestamp: DateTime<Utc>,
    /// Who changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
}

impl TrackingStatus {
    /// The entry of `change`, naming who made it only when `seen` allows.
    pub fn of(change: &StatusChange, seen: Visibility) -> Self {
        TrackingStatus {
            status: change.status,
            timestamp: change.timestamp,
            changed_by: seen.changed_by(change),
        }
    }
}

/// `GET /orders/{id}/tracking` and the `subscribed` event's `tracking`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct OrderTracking {
    pub order_id: String,
    pub order_number: String,
    pub status: OrderStatus,
    pub customer_name: String,
    /// Absent for the chef until they accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_longitude: Option<f64>,
    pub chef_name: String,
    pub chef_business_name: String,
    /// Absent for the customer until the chef accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef_latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chef_longitude: Option<f64>,
    pub driver_assigned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_longitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_location_update: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_delivery_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_minutes: Option<u32>,
    /// What the ETA came from: `route` (a routing provider's) or `estimate` (offline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_source: Option<EtaSource>,
    /// The driver's arrival at the chef, while on the way there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_pickup_time: Option<DateTime<Utc>>,
    pub status_history: Vec<TrackingStatus>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_confirmed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picked_up_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The order's sequence number this snapshot reflects.
    pub seq: u64,
}

impl OrderTracking {
    /// The tracking of `view` as a viewer who may see `seen` sees it.
    pub fn of(view: &OrderView, seen: Visibility) -> Self {
        let o = &view.order;
        let (delivery_address, delivery_latitude, delivery_longitude) =
            Place::split(seen.delivery(o));
        let (chef_address, chef_latitude, chef_longitude) = Place::split(seen.chef(o));
        // A location is only meaningful while a driver is working the order.
        let location = view.live.location.as_ref().filter(|_| o.driver.is_some());
        let eta = view.live.eta.filter(|_| !o.status.is_final());
        OrderTracking {
            order_id: o.order_id.to_string(),
            order_number: o.order_number.clone(),
            status: o.status,
            customer_name: o.customer_name.clone(),
            delivery_address,
            delivery_latitude,
            delivery_longitude,
            chef_name: o.chef.chef_name.clone(),
            chef_business_name: o.chef.chef_business_name.clone(),
            chef_address,
            chef_latitude,
            chef_longitude,
            driver_assigned: o.driver.is_some(),
            driver_name: o.driver.as_ref().map(|d| d.driver_name.clone()),
            driver_phone: seen.driver_phone(o),
            driver_latitude: location.map(|l| l.latitude.get()),
            driver_longitude: location.map(|l| l.longitude.get()),
            last_location_update: location.map(|l| l.recorded_at),
            estimated_delivery_time: eta.map(|e| e.estimated_delivery_time),
            eta_minutes: eta.map(|e| e.eta_minutes),
            eta_source: eta.map(|e| e.source),
            estimated_pickup_time: eta.and_then(|e| e.estimated_pickup_time),
            status_history: o
                .status_history
                .iter()
                .map(|c| TrackingStatus::of(c, seen))
                .collect(),
            created_at: o.created_at,
            payment_confirmed_at: o.payment_confirmed_at,
            accepted_at: o.accepted_at,
            ready_at: o.ready_at,
            assigned_at: o.assigned_at,
            picked_up_at: o.picked_up_at,
            delivered_at: o.delivered_at,
            seq: view.seq(),
        }
    }
}
