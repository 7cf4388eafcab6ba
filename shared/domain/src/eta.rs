//! Estimated time of arrival.
//!
//! [`OfflineEta`] needs no network: great-circle distance × a road circuity factor ÷ a speed
//! that adapts to the driver's observed speed. Before pickup the route is driver → chef →
//! customer; after pickup it is driver → customer. A routing provider's route replaces it
//! where one is configured ([`crate::route`]; [`OfflineEta::along_route`] is the ETA of a
//! driver following a stored route), and it remains the fallback when the provider fails.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::geo::GeoPoint;
use crate::live::{Eta, EtaSource};
use crate::order::OrderStatus;
use crate::route::{StoredRoute, remaining};

/// What an estimate is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct EtaRequest {
    /// The order.
    pub order_id: crate::ids::OrderId,
    /// The driver's position.
    pub driver: GeoPoint,
    /// The chef (pickup).
    pub pickup: GeoPoint,
    /// The customer (drop-off).
    pub dropoff: GeoPoint,
    /// The order's status: before `picked_up` the route goes through the chef.
    pub status: OrderStatus,
    /// The driver's reported speed now, m/s.
    pub reported_speed_mps: Option<f64>,
    /// The smoothed speed so far, m/s.
    pub observed_speed_mps: Option<f64>,
    /// The route the live item keeps, if any.
    pub route: Option<StoredRoute>,
    /// When.
    pub now: DateTime<Utc>,
}

/// An estimate and the smoothed speed to remember for next time.
#[derive(Debug, Clone, PartialEq)]
pub struct EtaEstimate {
    /// The ETA.
    pub eta: Eta,
    /// The smoothed speed after this observation, m/s.
    pub observed_speed_mps: Option<f64>,
    /// Remaining route distance, metres.
    pub distance_m: f64,
    /// A new route to keep on the live item (none: keep the one there).
    pub route: Option<StoredRoute>,
}

/// Something that estimates arrival times.
#[async_trait]
pub trait EtaEstimator: Send + Sync {
    /// Estimates the arrival at the customer.
    async fn estimate(&self, request: &EtaRequest) -> EtaEstimate;
}

/// The offline model's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OfflineEta {
    /// Road distance ÷ great-circle distance (≈1.3 in cities).
    pub circuity: f64,
    /// Speed assumed before the driver has told us anything, m/s.
    pub default_speed_mps: f64,
    /// Slowest speed the model will assume, m/s (a driver stopped at lights is not stuck).
    pub min_speed_mps: f64,
    /// Fastest speed the model will assume, m/s.
    pub max_speed_mps: f64,
    /// Weight of a new observation in the moving average (0–1).
    pub smoothing: f64,
    /// Time spent at the chef's door before pickup.
    pub pickup_handling: Duration,
}

impl Default for OfflineEta {
    fn default() -> Self {
        Self {
            circuity: 1.3,
            default_speed_mps: 25.0 / 3.6,
            min_speed_mps: 10.0 / 3.6,
            max_speed_mps: 90.0 / 3.6,
            smoothing: 0.2,
            pickup_handling: Duration::minutes(2),
        }
    }
}

impl OfflineEta {
    /// Pure form of [`EtaEstimator::estimate`].
    pub fn compute(&self, r: &EtaRequest) -> EtaEstimate {
        let observed = match (r.observed_speed_mps, r.reported_speed_mps) {
            (Some(avg), Some(now)) => Some(avg + self.smoothing * (now - avg)),
            (None, Some(now)) => Some(now),
            (avg, None) => avg,
        };
        let speed = observed
            .unwrap_or(self.default_speed_mps)
            .clamp(self.min_speed_mps, self.max_speed_mps);
        let before_pickup = matches!(
            r.status,
            OrderStatus::Pending
                | OrderStatus::PaymentConfirmed
                | OrderStatus::Accepted
                | OrderStatus::ReadyForPickup
                | OrderStatus::AssignedToDriver
        );
        let straight = if before_pickup {
            r.driver.distance_m(&r.pickup) + r.pickup.distance_m(&r.dropoff)
        } else {
            r.driver.distance_m(&r.dropoff)
        };
        let distance_m = straight * self.circuity;
        let mut seconds = distance_m / speed;
        let to_pickup_s =
            before_pickup.then(|| r.driver.distance_m(&r.pickup) * self.circuity / speed);
        if before_pickup {
            seconds += self.pickup_handling.num_seconds() as f64;
        }
        EtaEstimate {
            eta: eta_at(r.now, seconds, to_pickup_s, EtaSource::Estimate),
            observed_speed_mps: observed,
            distance_m,
            route: None,
        }
    }

    /// The ETA of a driver with `fraction` of `route` behind them at `now`, and the metres
    /// left: the route's remaining driving time, plus the time at the chef's door while the
    /// pickup is ahead.
    pub fn along_route(
        &self,
        route: &StoredRoute,
        fraction: f64,
        now: DateTime<Utc>,
    ) -> (Eta, f64) {
        let left = remaining(route.distance_m, route.duration_s, route.pickup, fraction);
        let mut seconds = left.duration_s;
        if left.to_pickup_s.is_some() {
            seconds += self.pickup_handling.num_seconds() as f64;
        }
        (
            eta_at(now, seconds, left.to_pickup_s, EtaSource::Route),
            left.distance_m,
        )
    }
}

/// An ETA `seconds` after `now` (at the chef `to_pickup_s` after it), from `source`.
fn eta_at(now: DateTime<Utc>, seconds: f64, to_pickup_s: Option<f64>, source: EtaSource) -> Eta {
    let seconds = seconds.round() as i64;
    Eta {
        eta_minutes: u32::try_from((seconds + 59) / 60).unwrap_or(u32::MAX),
        estimated_delivery_time: now + Duration::seconds(seconds),
        computed_at: now,
        source,
        estimated_pickup_time: to_pickup_s.map(|s| now + Duration::seconds(s.round() as i64)),
    }
}

#[async_trait]
impl EtaEstimator for OfflineEta {
    async fn estimate(&self, request: &EtaRequest) -> EtaEstimate {
        self.compute(request)
    }
}
