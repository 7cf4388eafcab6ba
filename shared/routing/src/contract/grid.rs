//! The contract servers' synthetic street grid: deterministic routes any test can predict.
//!
//! Between two stops the road goes first north or south along the start's meridian to the
//! next stop's latitude, then east or west along that parallel to the stop (an L), with a
//! point every [`STEP_M`] metres or less. A leg's length is the sum of the great-circle
//! (haversine) distances between its consecutive points, its duration that length at
//! [`SPEED_M_S`] (about 30 km/h). A route through a pickup is two legs, split at the pickup.

use rnd_domain::geo::GeoPoint;

/// The grid's driving speed: 8.33 m/s, about 30 km/h.
pub const SPEED_M_S: f64 = 8.33;

/// The largest gap between consecutive points of a route, metres.
pub const STEP_M: f64 = 50.0;

/// One leg of a grid route: from one stop to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridLeg {
    /// Its length, metres.
    pub distance_m: f64,
    /// Its driving time at [`SPEED_M_S`], seconds.
    pub duration_s: f64,
}

/// A route along the grid through some stops.
#[derive(Debug, Clone, PartialEq)]
pub struct GridRoute {
    /// Every point, a stop first and last, at most [`STEP_M`] apart.
    pub points: Vec<GeoPoint>,
    /// The stops and the corners between them: the route's shape without its intermediate
    /// points (what `overview=simplified` answers).
    pub outline: Vec<GeoPoint>,
    /// One leg per pair of consecutive stops.
    pub legs: Vec<GridLeg>,
}

impl GridRoute {
    /// Its whole length, metres.
    pub fn distance_m(&self) -> f64 {
        self.legs.iter().map(|l| l.distance_m).sum()
    }

    /// Its whole driving time, seconds.
    pub fn duration_s(&self) -> f64 {
        self.legs.iter().map(|l| l.duration_s).sum()
    }
}

/// The grid route through `stops` in order (at least one).
pub fn route(stops: &[GeoPoint]) -> GridRoute {
    let mut points: Vec<GeoPoint> = stops.first().copied().into_iter().collect();
    let mut outline = points.clone();
    let mut legs = Vec::with_capacity(stops.len().saturating_sub(1));
    for pair in stops.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let corner = GeoPoint {
            latitude: to.latitude,
            longitude: from.longitude,
        };
        let mut leg = vec![from];
        straight(&mut leg, corner);
        straight(&mut leg, to);
        let distance_m: f64 = leg.windows(2).map(|w| w[0].distance_m(&w[1])).sum();
        legs.push(GridLeg {
            distance_m,
            duration_s: distance_m / SPEED_M_S,
        });
        points.extend(leg.into_iter().skip(1));
        for p in [corner, to] {
            if outline.last() != Some(&p) {
                outline.push(p);
            }
        }
    }
    GridRoute {
        points,
        outline,
        legs,
    }
}

/// Extends `line` from its last point to `to` in steps of at most [`STEP_M`].
fn straight(line: &mut Vec<GeoPoint>, to: GeoPoint) {
    let from = *line.last().expect("a line starts at a stop");
    let length = from.distance_m(&to);
    if length == 0.0 {
        return;
    }
    let steps = (length / STEP_M).ceil().max(1.0) as u32;
    let (lat0, lon0) = (from.latitude.get(), from.longitude.get());
    let (dlat, dlon) = (to.latitude.get() - lat0, to.longitude.get() - lon0);
    for i in 1..steps {
        let t = f64::from(i) / f64::from(steps);
        line.push(
            GeoPoint::parse(lat0 + t * dlat, lon0 + t * dlon)
                .expect("a point between two points on the globe is on it"),
        );
    }
    line.push(to);
}

/// `points` as an encoded polyline of `precision` decimal places.
pub(crate) fn encode(points: &[GeoPoint], precision: u32) -> String {
    let coordinates = points.iter().map(|p| geo_types::Coord {
        x: p.longitude.get(),
        y: p.latitude.get(),
    });
    polyline::encode_coordinates(coordinates, precision).unwrap_or_default()
}

/// `points` as a GeoJSON `LineString`.
pub(crate) fn geojson(points: &[GeoPoint]) -> serde_json::Value {
    let coordinates: Vec<[f64; 2]> = points
        .iter()
        .map(|p| [p.longitude.get(), p.latitude.get()])
        .collect();
    serde_json::json!({ "type": "LineString", "coordinates": coordinates })
}

/// `value` rounded to `decimals` places, as the providers print metres and seconds.
pub(crate) fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint::parse(lat, lon).unwrap()
    }

    #[test]
    fn a_grid_route_goes_along_the_meridian_then_the_parallel_in_short_steps() {
        // GIVEN a start and an end ~1.1 km north and ~960 m east of it
        let (from, to) = (p(30.2672, -97.7431), p(30.2772, -97.7331));
        // WHEN routed on the grid
        let route = route(&[from, to]);
        // THEN it turns once, at the end's latitude on the start's longitude
        assert_eq!(route.outline, vec![from, p(30.2772, -97.7431), to]);
        assert_eq!(route.points.first(), Some(&from));
        assert_eq!(route.points.last(), Some(&to));
        assert!(route.points.contains(&p(30.2772, -97.7431)));
        // AND its points are at most 50 m apart, and its length is theirs
        assert!(
            route
                .points
                .windows(2)
                .all(|w| w[0].distance_m(&w[1]) <= STEP_M + 1e-6)
        );
        let expected =
            from.distance_m(&p(30.2772, -97.7431)) + p(30.2772, -97.7431).distance_m(&to);
        assert!(
            (route.distance_m() - expected).abs() < 0.5,
            "{}",
            route.distance_m()
        );
        assert!((route.duration_s() - route.distance_m() / SPEED_M_S).abs() < 1e-9);
    }

    #[test]
    fn a_route_through_a_pickup_has_two_legs_split_there() {
        let (from, via, to) = (p(30.26, -97.75), p(30.27, -97.74), p(30.265, -97.73));
        let route = route(&[from, via, to]);
        assert_eq!(route.legs.len(), 2);
        assert!((route.legs[0].distance_m - self::route(&[from, via]).distance_m()).abs() < 1e-9);
        assert!(route.points.contains(&via));
        assert_eq!(route.points.iter().filter(|q| **q == via).count(), 1);
    }

    #[test]
    fn a_route_to_where_it_starts_is_one_point_long_zero() {
        let here = p(30.26, -97.75);
        let route = route(&[here, here]);
        assert_eq!(route.points, vec![here]);
        assert_eq!(route.distance_m(), 0.0);
    }
}
