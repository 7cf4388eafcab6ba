//! Routes from a routing provider, and following a driver along one.
//!
//! A routing call costs far more than a WebSocket message, and a driver reports a position every
//! few seconds, so a route is asked for rarely and reused: once per leg (on the first location
//! after the assignment, through the chef to the customer; and after the pickup, to the
//! customer), then the driver is followed along the stored geometry ([`progress`]), and
//! [`ReroutePolicy::decide`] asks for a new route only when the driver leaves it, when it is
//! old, or when the driver's pace drifts from the route's. The route lives on the order's live
//! item as a [`StoredRoute`]: an encoded polyline simplified to at most [`MAX_ROUTE_POINTS`]
//! points, so the item (written with every location) stays small.
//!
//! [`Router`] is the port the providers (OSRM, Mapbox, Google) implement; the routed
//! estimator that calls it, with its timeouts and circuit breaker, lives with them.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::geo::GeoPoint;
use crate::order::OrderStatus;

/// At most this many points of a route are kept on the live item.
pub const MAX_ROUTE_POINTS: usize = 120;

/// Google's encoded polyline format at 5 decimal places (about a metre), as OSRM and Google
/// answer and as stored.
pub const POLYLINE_PRECISION: u32 = 5;

/// Where a route goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteLeg {
    /// From the driver through the chef (pickup) to the customer: before the pickup.
    ViaPickup,
    /// From the driver to the customer: after the pickup.
    ToDropoff,
}

impl RouteLeg {
    /// The leg a driver is on in `status`, if any.
    pub fn of(status: OrderStatus) -> Option<RouteLeg> {
        match status {
            OrderStatus::AssignedToDriver => Some(RouteLeg::ViaPickup),
            OrderStatus::PickedUp | OrderStatus::InTransit => Some(RouteLeg::ToDropoff),
            _ => None,
        }
    }
}

/// What to route: from the driver, through the pickup when there is one, to the customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteRequest {
    /// The driver's position.
    pub from: GeoPoint,
    /// The chef's, on the [`RouteLeg::ViaPickup`] leg.
    pub via: Option<GeoPoint>,
    /// The customer's.
    pub to: GeoPoint,
}

/// A point along a route: how far and how long from its start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waypoint {
    /// Metres from the start.
    pub distance_m: f64,
    /// Seconds from the start.
    pub duration_s: f64,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The geometry, start to end.
    pub points: Vec<GeoPoint>,
    /// Its length, metres.
    pub distance_m: f64,
    /// The provider's driving time, seconds (with traffic where it has it).
    pub duration_s: f64,
    /// Where the pickup is along it, when the request went through one.
    pub pickup: Option<Waypoint>,
}

/// Why a routing call gave no route.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoutingError {
    /// No whole answer within the time allowed.
    #[error("no answer in time")]
    Timeout,
    /// The provider said to slow down (HTTP 429 or its equivalent).
    #[error("rate limited")]
    RateLimited {
        /// How long it asked to wait, when it said.
        retry_after: Option<std::time::Duration>,
    },
    /// The provider failed (5xx, a connection error, an answer that does not parse).
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider found no road route between the points.
    #[error("no route between the points")]
    NoRoute,
    /// The provider refused the request (a bad key, a malformed request): retrying will not help.
    #[error("request refused: {0}")]
    Refused(String),
}

impl RoutingError {
    /// Whether trying again soon may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RoutingError::Timeout | RoutingError::RateLimited { .. } | RoutingError::Unavailable(_)
        )
    }
}

/// A routing provider.
#[async_trait]
pub trait Router: Send + Sync {
    /// Its name in logs, metrics and [`StoredRoute::provider`] (`osrm`, `mapbox`, `google`).
    fn provider(&self) -> &'static str;
    /// A driving route for `request`.
    async fn route(&self, request: &RouteRequest) -> Result<Route, RoutingError>;
}

/// A route as the live item keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRoute {
    /// The leg it covers.
    pub leg: RouteLeg,
    /// The geometry, simplified to at most [`MAX_ROUTE_POINTS`] points, encoded.
    pub polyline: String,
    /// The provider's length, metres.
    pub distance_m: f64,
    /// The provider's driving time, seconds.
    pub duration_s: f64,
    /// Where the pickup is along it ([`RouteLeg::ViaPickup`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup: Option<Waypoint>,
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
    /// Which provider computed it.
    pub provider: String,
}

impl StoredRoute {
    /// Keeps `route` for `leg`: its geometry simplified and encoded.
    pub fn keep(
        route: &Route,
        leg: RouteLeg,
        provider: &str,
        computed_at: DateTime<Utc>,
    ) -> StoredRoute {
        StoredRoute {
            leg,
            polyline: encode(&simplify(&route.points, MAX_ROUTE_POINTS)),
            distance_m: route.distance_m,
            duration_s: route.duration_s,
            pickup: route.pickup,
            computed_at,
            provider: provider.to_owned(),
        }
    }

    /// The geometry (empty if the polyline does not decode).
    pub fn points(&self) -> Vec<GeoPoint> {
        decode(&self.polyline).unwrap_or_default()
    }
}

/// Encodes `points` as an encoded polyline at [`POLYLINE_PRECISION`].
pub fn encode(points: &[GeoPoint]) -> String {
    let coordinates = points.iter().map(|p| geo_types::Coord {
        x: p.longitude.get(),
        y: p.latitude.get(),
    });
    polyline::encode_coordinates(coordinates, POLYLINE_PRECISION).unwrap_or_default()
}

/// Decodes an encoded polyline of `precision` decimal places (5 for OSRM and Google, 6 for
/// Mapbox's `polyline6`); `None` when it is malformed or leaves the globe.
pub fn decode_with(encoded: &str, precision: u32) -> Option<Vec<GeoPoint>> {
    let line = polyline::decode_polyline(encoded, precision).ok()?;
    line.0
        .into_iter()
        .map(|c| GeoPoint::parse(c.y, c.x).ok())
        .collect()
}

/// [`decode_with`] at [`POLYLINE_PRECISION`].
pub fn decode(encoded: &str) -> Option<Vec<GeoPoint>> {
    decode_with(encoded, POLYLINE_PRECISION)
}

/// A local flat frame around a point: metres east and north (equirectangular; exact enough
/// over a city).
#[derive(Debug, Clone, Copy)]
struct Frame {
    lat0: f64,
    lon0: f64,
    metres_per_degree_lon: f64,
}

const METRES_PER_DEGREE: f64 = crate::geo::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

impl Frame {
    fn around(p: &GeoPoint) -> Frame {
        Frame {
            lat0: p.latitude.get(),
            lon0: p.longitude.get(),
            metres_per_degree_lon: METRES_PER_DEGREE * p.latitude.get().to_radians().cos(),
        }
    }

    fn xy(&self, p: &GeoPoint) -> (f64, f64) {
        (
            (p.longitude.get() - self.lon0) * self.metres_per_degree_lon,
            (p.latitude.get() - self.lat0) * METRES_PER_DEGREE,
        )
    }
}

/// The point of segment `a`–`b` nearest `p` (all in one frame): its distance to `p` and how far
/// along the segment it is (0–1).
fn nearest_on_segment(a: (f64, f64), b: (f64, f64), p: (f64, f64)) -> (f64, f64) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    };
    let (x, y) = (a.0 + t * dx, a.1 + t * dy);
    (((p.0 - x).powi(2) + (p.1 - y).powi(2)).sqrt(), t)
}

/// Douglas–Peucker over the local frame, tightening the tolerance until at most `max` points
/// remain (the ends are always kept).
pub fn simplify(points: &[GeoPoint], max: usize) -> Vec<GeoPoint> {
    if points.len() <= max.max(2) {
        return points.to_vec();
    }
    let frame = Frame::around(&points[0]);
    let xy: Vec<(f64, f64)> = points.iter().map(|p| frame.xy(p)).collect();
    let mut tolerance = 1.0;
    loop {
        let mut keep = vec![false; xy.len()];
        keep[0] = true;
        keep[xy.len() - 1] = true;
        let mut stack = vec![(0, xy.len() - 1)];
        while let Some((first, last)) = stack.pop() {
            let mut worst = (0.0, first);
            for i in first + 1..last {
                let (d, _) = nearest_on_segment(xy[first], xy[last], xy[i]);
                if d > worst.0 {
                    worst = (d, i);
                }
            }
            if worst.0 > tolerance {
                keep[worst.1] = true;
                stack.push((first, worst.1));
                stack.push((worst.1, last));
            }
        }
        let kept: Vec<GeoPoint> = points
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(p, _)| *p)
            .collect();
        if kept.len() <= max.max(2) {
            return kept;
        }
        tolerance *= 2.0;
    }
}

/// Where a driver is relative to a route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Distance from the driver to the nearest point of the route, metres.
    pub off_route_m: f64,
    /// How much of the route lies behind that point (0–1, by length).
    pub fraction: f64,
}

/// Projects `at` onto the route `points`: the nearest point of the line, how far off it `at`
/// is and how much of the line lies behind it. `None` for a line of fewer than two points.
pub fn progress(points: &[GeoPoint], at: &GeoPoint) -> Option<Progress> {
    if points.len() < 2 {
        return None;
    }
    let frame = Frame::around(at);
    let xy: Vec<(f64, f64)> = points.iter().map(|p| frame.xy(p)).collect();
    let lengths: Vec<f64> = xy
        .windows(2)
        .map(|w| ((w[1].0 - w[0].0).powi(2) + (w[1].1 - w[0].1).powi(2)).sqrt())
        .collect();
    let total: f64 = lengths.iter().sum();
    let mut best: Option<(f64, f64)> = None; // (off route, length behind)
    let mut behind = 0.0;
    for (i, w) in xy.windows(2).enumerate() {
        let (d, t) = nearest_on_segment(w[0], w[1], (0.0, 0.0));
        if best.is_none_or(|(b, _)| d < b) {
            best = Some((d, behind + t * lengths[i]));
        }
        behind += lengths[i];
    }
    let (off_route_m, along) = best?;
    Some(Progress {
        off_route_m,
        fraction: if total > 0.0 { along / total } else { 1.0 },
    })
}

/// Why a new route is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// There is none for this leg yet (a new assignment, or the pickup).
    NewLeg,
    /// The driver left the route.
    OffRoute,
    /// The route is older than [`ReroutePolicy::max_age`] (traffic changes).
    Stale,
    /// The driver is far ahead of or behind the route's timing.
    Drift,
}

impl RouteReason {
    /// Its name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::NewLeg => "new_leg",
            RouteReason::OffRoute => "off_route",
            RouteReason::Stale => "stale",
            RouteReason::Drift => "drift",
        }
    }
}

/// What to do with a location: follow the stored route, or ask for a new one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RouteDecision {
    /// Follow the stored route: the driver is here on it.
    Follow(Progress),
    /// Ask for a new route.
    Route(RouteReason),
}

/// When to route again. Configuration, with defaults that keep calls well under one per 20
/// location updates at a report every few seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReroutePolicy {
    /// A driver farther than this from the route has left it, metres.
    pub off_route_m: f64,
    /// Never route again sooner than this after the last route (a driver off the road's
    /// geometry for a moment, a GPS jump).
    pub min_interval: Duration,
    /// Route again after this long whatever happens (traffic changes).
    pub max_age: Duration,
    /// Route again when the driver is this share of the route's duration ahead of or behind
    /// its timing…
    pub drift_tolerance: f64,
    /// …and at least this far, seconds.
    pub drift_floor_s: f64,
}

impl Default for ReroutePolicy {
    fn default() -> Self {
        Self {
            off_route_m: 100.0,
            min_interval: Duration::seconds(60),
            max_age: Duration::minutes(15),
            drift_tolerance: 0.25,
            drift_floor_s: 180.0,
        }
    }
}

impl ReroutePolicy {
    /// Follow `stored` or route again, for a driver at `at` on `leg` at `now`.
    pub fn decide(
        &self,
        stored: Option<&StoredRoute>,
        leg: RouteLeg,
        at: &GeoPoint,
        now: DateTime<Utc>,
    ) -> RouteDecision {
        let Some(route) = stored.filter(|r| r.leg == leg) else {
            return RouteDecision::Route(RouteReason::NewLeg);
        };
        let Some(progress) = progress(&route.points(), at) else {
            return RouteDecision::Route(RouteReason::NewLeg);
        };
        let age = now - route.computed_at;
        if age < self.min_interval {
            return RouteDecision::Follow(progress);
        }
        if progress.off_route_m > self.off_route_m {
            return RouteDecision::Route(RouteReason::OffRoute);
        }
        if age >= self.max_age {
            return RouteDecision::Route(RouteReason::Stale);
        }
        let expected_s = route.duration_s * progress.fraction;
        let drift_s = (age.num_milliseconds() as f64 / 1000.0 - expected_s).abs();
        if drift_s
            > self
                .drift_floor_s
                .max(self.drift_tolerance * route.duration_s)
        {
            return RouteDecision::Route(RouteReason::Drift);
        }
        RouteDecision::Follow(progress)
    }
}

/// What is left of `route` for a driver at `progress` along it: seconds and metres to the end,
/// and seconds to the pickup while it is ahead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Remaining {
    /// Seconds to the end of the route.
    pub duration_s: f64,
    /// Metres to the end of the route.
    pub distance_m: f64,
    /// Seconds to the pickup, while it is ahead.
    pub to_pickup_s: Option<f64>,
}

/// [`Remaining`] of a route of `distance_m`, `duration_s` and `pickup`, `fraction` of it behind.
pub fn remaining(
    distance_m: f64,
    duration_s: f64,
    pickup: Option<Waypoint>,
    fraction: f64,
) -> Remaining {
    let fraction = fraction.clamp(0.0, 1.0);
    let done_m = distance_m * fraction;
    let done_s = duration_s * fraction;
    Remaining {
        duration_s: (duration_s - done_s).max(0.0),
        distance_m: (distance_m - done_m).max(0.0),
        to_pickup_s: pickup
            .filter(|p| p.distance_m > done_m)
            .map(|p| (p.duration_s - done_s).max(0.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint::parse(lat, lon).unwrap()
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    /// A straight road north from Austin's centre, ~1.1 km, 11 points.
    fn north() -> Vec<GeoPoint> {
        (0..=10)
            .map(|i| p(30.2672 + f64::from(i) * 0.001, -97.7431))
            .collect()
    }

    fn stored(points: &[GeoPoint], leg: RouteLeg, at: DateTime<Utc>) -> StoredRoute {
        let route = Route {
            points: points.to_vec(),
            distance_m: 1_112.0,
            duration_s: 120.0,
            pickup: None,
        };
        StoredRoute::keep(&route, leg, "osrm", at)
    }

    #[test]
    fn a_polyline_round_trips_and_googles_example_decodes() {
        let line = vec![p(38.5, -120.2), p(40.7, -120.95), p(43.252, -126.453)];
        assert_eq!(encode(&line), "_p~iF~ps|U_ulLnnqC_mqNvxq`@");
        assert_eq!(decode("_p~iF~ps|U_ulLnnqC_mqNvxq`@").unwrap(), line);
        assert_eq!(decode("not a polyline ~~~"), None);
    }

    #[test]
    fn a_long_route_is_simplified_to_the_bound_keeping_its_ends_and_its_corners() {
        // GIVEN 1 000 points north, then 1 000 points east (an L)
        let mut line: Vec<GeoPoint> = (0..1000)
            .map(|i| p(30.0 + f64::from(i) * 1e-5, -97.0))
            .collect();
        line.extend((0..1000).map(|i| p(30.01, -97.0 + f64::from(i) * 1e-5)));
        // WHEN simplified THEN at most the bound remains, the ends and the corner included
        let simple = simplify(&line, MAX_ROUTE_POINTS);
        assert!(
            simple.len() <= MAX_ROUTE_POINTS && simple.len() >= 3,
            "{}",
            simple.len()
        );
        assert_eq!(simple.first(), line.first());
        assert_eq!(simple.last(), line.last());
        assert!(
            simple
                .iter()
                .any(|q| q.distance_m(&p(30.00999, -97.0)) < 5.0)
        );
        // AND the stored form stays small
        let kept = StoredRoute::keep(
            &Route {
                points: line,
                distance_m: 2_000.0,
                duration_s: 200.0,
                pickup: None,
            },
            RouteLeg::ToDropoff,
            "osrm",
            t(0),
        );
        assert!(kept.polyline.len() < 1_000, "{}", kept.polyline.len());
    }

    #[test]
    fn progress_is_the_share_behind_the_nearest_point_and_the_distance_off_the_line() {
        let line = north();
        // Halfway up, 50 m east of the road.
        let at = p(
            30.2722,
            -97.7431 + 50.0 / (METRES_PER_DEGREE * 30.2722f64.to_radians().cos()),
        );
        let got = progress(&line, &at).unwrap();
        assert!((got.fraction - 0.5).abs() < 0.01, "{got:?}");
        assert!((got.off_route_m - 50.0).abs() < 1.0, "{got:?}");
        // Before the start: nothing behind; past the end: all of it.
        assert_eq!(
            progress(&line, &p(30.2600, -97.7431)).unwrap().fraction,
            0.0
        );
        assert_eq!(
            progress(&line, &p(30.2900, -97.7431)).unwrap().fraction,
            1.0
        );
        assert_eq!(progress(&line[..1], &at), None);
    }

    #[test]
    fn a_driver_on_the_route_is_followed_and_one_who_leaves_it_is_routed_again_but_not_at_once() {
        let policy = ReroutePolicy::default();
        let route = stored(&north(), RouteLeg::ToDropoff, t(0));
        let on_route = p(30.2700, -97.7431);
        let detour = p(30.2700, -97.7331); // ~960 m east
        // Following a route of this leg.
        assert!(matches!(
            policy.decide(Some(&route), RouteLeg::ToDropoff, &on_route, t(30)),
            RouteDecision::Follow(_)
        ));
        // Off the route, but the route is younger than the minimum interval: follow still.
        assert!(matches!(
            policy.decide(Some(&route), RouteLeg::ToDropoff, &detour, t(30)),
            RouteDecision::Follow(_)
        ));
        // Off the route after it: route again.
        assert_eq!(
            policy.decide(Some(&route), RouteLeg::ToDropoff, &detour, t(61)),
            RouteDecision::Route(RouteReason::OffRoute)
        );
        // No route, or one of the other leg: a new one.
        assert_eq!(
            policy.decide(None, RouteLeg::ToDropoff, &on_route, t(30)),
            RouteDecision::Route(RouteReason::NewLeg)
        );
        assert_eq!(
            policy.decide(Some(&route), RouteLeg::ViaPickup, &on_route, t(30)),
            RouteDecision::Route(RouteReason::NewLeg)
        );
    }

    #[test]
    fn an_old_route_or_a_pace_far_from_the_routes_is_routed_again() {
        let policy = ReroutePolicy::default();
        let route = StoredRoute {
            duration_s: 1_200.0,
            ..stored(&north(), RouteLeg::ToDropoff, t(0))
        };
        let quarter = p(30.2697, -97.7431);
        // A quarter along after a quarter of the time: on pace.
        assert!(matches!(
            policy.decide(Some(&route), RouteLeg::ToDropoff, &quarter, t(300)),
            RouteDecision::Follow(_)
        ));
        // Still a quarter along after 12 minutes: 9 minutes behind the route.
        assert_eq!(
            policy.decide(Some(&route), RouteLeg::ToDropoff, &quarter, t(720)),
            RouteDecision::Route(RouteReason::Drift)
        );
        // Older than the maximum age.
        let half = p(30.2722, -97.7431);
        let slow = StoredRoute {
            duration_s: 1_800.0,
            ..route.clone()
        };
        assert_eq!(
            policy.decide(Some(&slow), RouteLeg::ToDropoff, &half, t(15 * 60)),
            RouteDecision::Route(RouteReason::Stale)
        );
    }

    #[test]
    fn what_remains_scales_with_the_share_behind_and_the_pickup_counts_while_ahead() {
        let pickup = Some(Waypoint {
            distance_m: 400.0,
            duration_s: 60.0,
        });
        let left = remaining(1_000.0, 200.0, pickup, 0.25);
        assert_eq!(left.duration_s, 150.0);
        assert_eq!(left.distance_m, 750.0);
        assert_eq!(left.to_pickup_s, Some(10.0));
        assert_eq!(remaining(1_000.0, 200.0, pickup, 0.5).to_pickup_s, None);
        assert_eq!(
            RouteLeg::of(OrderStatus::AssignedToDriver),
            Some(RouteLeg::ViaPickup)
        );
        assert_eq!(
            RouteLeg::of(OrderStatus::InTransit),
            Some(RouteLeg::ToDropoff)
        );
        assert_eq!(RouteLeg::of(OrderStatus::Delivered), None);
    }
}
