//! The live item of an order: the driver's last position, the ETA, and the order's current
//! sequence number. It is small on purpose: a location write rewrites only this item, never the
//! order item with its history (DynamoDB charges writes by item size).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::geo::{Accuracy, GeoPoint, Heading, Latitude, Longitude, Speed};
use crate::ids::{OrderId, UserId};
use crate::order::{Order, OrderStatus};
use crate::route::StoredRoute;

/// A driver's reported position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverLocation {
    /// Latitude.
    pub latitude: Latitude,
    /// Longitude.
    pub longitude: Longitude,
    /// Heading, degrees from north.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<Heading>,
    /// Speed, m/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Speed>,
    /// Accuracy radius, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Accuracy>,
    /// When the device recorded it (the server's receipt time when the device did not say).
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub recorded_at: DateTime<Utc>,
}

impl DriverLocation {
    /// The position as a point.
    pub fn point(&self) -> GeoPoint {
        GeoPoint {
            latitude: self.latitude,
            longitude: self.longitude,
        }
    }
}

/// An estimated time of arrival at the customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Eta {
    /// Whole minutes from `computed_at`, rounded up.
    pub eta_minutes: u32,
    /// `computed_at` plus the estimate.
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub estimated_delivery_time: DateTime<Utc>,
    /// When the estimate was made.
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub computed_at: DateTime<Utc>,
    /// What it came from (items written before it was recorded: the estimate).
    #[serde(default)]
    pub source: EtaSource,
    /// The arrival at the chef, while the driver is on the way there.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::time::rfc3339_option"
    )]
    pub estimated_pickup_time: Option<DateTime<Utc>>,
}

/// What an ETA came from.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum EtaSource {
    /// A routing provider's route, followed along as the driver moves.
    Route,
    /// The offline estimate (distance × circuity ÷ speed): no provider configured, or it failed.
    #[default]
    Estimate,
}

/// The live item of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveState {
    /// The order.
    pub order_id: OrderId,
    /// The order's current sequence number: moved by every transition and accepted location.
    pub seq: u64,
    /// Mirror of the order's status, so a location write can be conditioned on it.
    pub status: OrderStatus,
    /// Mirror of the assigned driver, so a location write can be conditioned on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<UserId>,
    /// Last accepted location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<DriverLocation>,
    /// Server time (ms since the epoch) of the last accepted location: the rate limit's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_accepted_at_ms: Option<i64>,
    /// Current ETA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<Eta>,
    /// The route the ETA follows, when a routing provider gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<StoredRoute>,
    /// Smoothed observed driver speed, m/s (feeds the ETA model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_speed_mps: Option<f64>,
    /// Mirror of the chef's position (the pickup), so a location's ETA needs only this item.
    /// Absent on items written before it was mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup: Option<GeoPoint>,
    /// Mirror of the customer's position (the drop-off), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropoff: Option<GeoPoint>,
    /// The `seq` whose events this item's writer has already delivered itself (the
    /// `driver:location` fast path): when it equals `seq`, the stream's change of this item
    /// announces nothing more. Any other write leaves it behind (or clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_seq: Option<u64>,
    /// When last written.
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl LiveState {
    /// The live item of a just-placed order.
    pub fn for_new_order(order: &Order) -> LiveState {
        LiveState {
            route: None,
            order_id: order.order_id.clone(),
            seq: order.seq,
            status: order.status,
            driver_id: order.driver_id().cloned(),
            location: None,
            location_accepted_at_ms: None,
            eta: None,
            observed_speed_mps: None,
            pickup: Some(order.pickup_point()),
            dropoff: Some(order.dropoff_point()),
            announced_seq: None,
            updated_at: order.updated_at,
        }
    }

    /// Whether this item's events were already delivered by its writer (see
    /// [`LiveState::announced_seq`]).
    pub fn announced(&self) -> bool {
        self.announced_seq == Some(self.seq)
    }
}

/// An accepted-location write: what the store must record, under which conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationWrite {
    /// The order.
    pub order_id: OrderId,
    /// The driver sending it; the write holds only if this is the order's assigned driver.
    pub driver_id: UserId,
    /// The position.
    pub location: DriverLocation,
    /// The new ETA, if one could be computed.
    pub eta: Option<Eta>,
    /// A new route to keep (the item's route stays as it is when `None`).
    pub route: Option<StoredRoute>,
    /// The new smoothed speed.
    pub observed_speed_mps: Option<f64>,
    /// Server time of this write, ms since the epoch.
    pub now_ms: i64,
    /// Minimum spacing between accepted locations for this order, ms.
    pub min_interval_ms: i64,
    /// The writer delivers this location's events itself (the fast path): the item records
    /// [`LiveState::announced_seq`], and the stream's change of it announces nothing.
    pub announced: bool,
}

/// What became of a location write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationOutcome {
    /// Stored; the order's sequence is now `seq`.
    Accepted {
        /// The new sequence number.
        seq: u64,
    },
    /// Another location for this order was accepted less than the interval ago.
    RateLimited {
        /// How long until the next one may be accepted, ms.
        retry_after_ms: i64,
    },
    /// The sender is not the order's assigned driver.
    NotAssignedDriver,
    /// The order is not in a driver phase (`assigned_to_driver`, `picked_up`, `in_transit`).
    NotActive,
    /// No such order.
    NotFound,
}

impl LocationOutcome {
    /// Classifies a refused write from the live item as it was: the order of the checks is the
    /// order a client would fix them in (wrong driver, then phase, then rate).
    pub fn classify_refusal(current: Option<&LiveState>, write: &LocationWrite) -> LocationOutcome {
        let Some(live) = current else {
            return LocationOutcome::NotFound;
        };
        if live.driver_id.as_ref() != Some(&write.driver_id) {
            return LocationOutcome::NotAssignedDriver;
        }
        if !live.status.is_driver_active() {
            return LocationOutcome::NotActive;
        }
        let last = live.location_accepted_at_ms.unwrap_or(i64::MIN);
        let retry_after_ms = (last.saturating_add(write.min_interval_ms) - write.now_ms).max(1);
        LocationOutcome::RateLimited { retry_after_ms }
    }

    /// The refusal `live` already gives `write` for coming too soon after the last accepted
    /// location of the same driver in a driver phase, or `None` when only the conditional write
    /// can tell. An item read before the write may lag it but is never ahead of it, and its
    /// last accepted location only moves later, so the write would refuse too.
    pub fn too_soon(live: &LiveState, write: &LocationWrite) -> Option<LocationOutcome> {
        let same_phase =
            live.driver_id.as_ref() == Some(&write.driver_id) && live.status.is_driver_active();
        (same_phase && !Self::allows(live, write))
            .then(|| Self::classify_refusal(Some(live), write))
    }

    /// True when `live` allows `write` (same rules the stores express as a conditional write).
    pub fn allows(live: &LiveState, write: &LocationWrite) -> bool {
        live.driver_id.as_ref() == Some(&write.driver_id)
            && live.status.is_driver_active()
            && live
                .location_accepted_at_ms
                .is_none_or(|last| last <= write.now_ms.saturating_sub(write.min_interval_ms))
    }

    /// The live item after `write` is accepted on top of `live` (updated at the write's time).
    pub fn apply(live: &LiveState, write: &LocationWrite) -> LiveState {
        let now = DateTime::from_timestamp_millis(write.now_ms).unwrap_or(live.updated_at);
        let seq = live.seq + 1;
        LiveState {
            seq,
            location: Some(write.location.clone()),
            location_accepted_at_ms: Some(write.now_ms),
            eta: write.eta.or(live.eta),
            route: write.route.clone().or_else(|| live.route.clone()),
            observed_speed_mps: write.observed_speed_mps.or(live.observed_speed_mps),
            announced_seq: write.announced.then_some(seq),
            updated_at: now,
            ..live.clone()
        }
    }
}
