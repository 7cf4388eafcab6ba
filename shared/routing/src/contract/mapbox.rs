//! Mapbox Directions v5, `GET /directions/v5/{user}/{profile}/{coordinates}`, as Mapbox
//! answers it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::grid::{self, GridRoute};
use super::{
    BadCoordinates, Fault, Shape, Shared, delayed, garbled, json, lon_lat_points, query_pairs,
};

const PROFILES: &[&str] = &["driving-traffic", "driving", "walking", "cycling"];

/// The most coordinates a request may have.
const MAX_COORDINATES: usize = 25;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/directions/v5/{user}/{profile}/{coordinates}", get(route))
        .with_state(shared)
}

fn message(status: StatusCode, message: &str) -> Response {
    json(status, &json!({ "message": message }))
}

fn invalid_input(message: &str) -> Response {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({ "message": message, "code": "InvalidInput" }),
    )
}

/// Mapbox's 429: `X-Rate-Limit-Interval`, `-Limit` and, when there is a wait, `-Reset` (Unix
/// seconds).
fn rate_limited(wait: Option<Duration>) -> Response {
    let mut response = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    let headers = response.headers_mut();
    headers.insert("x-rate-limit-interval", HeaderValue::from_static("60"));
    headers.insert("x-rate-limit-limit", HeaderValue::from_static("300"));
    if let Some(wait) = wait {
        let reset = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + wait;
        let seconds = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
        headers.insert("x-rate-limit-reset", HeaderValue::from(seconds));
    }
    response
}

async fn route(
    State(shared): State<Arc<Shared>>,
    Path((user, profile, coordinates)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let fault = delayed(shared.begin()).await;
    let pairs = query_pairs(query.as_deref());
    match pairs.iter().find(|(name, _)| name == "access_token") {
        None => return message(StatusCode::UNAUTHORIZED, "Not Authorized - No Token"),
        Some((_, token)) if token != shared.secret() => {
            return message(StatusCode::UNAUTHORIZED, "Not Authorized - Invalid Token");
        }
        Some(_) => {}
    }
    if user != "mapbox" || !PROFILES.contains(&profile.as_str()) {
        return json(
            StatusCode::NOT_FOUND,
            &json!({ "message": "Profile not found", "code": "ProfileNotFound" }),
        );
    }
    let coordinates = coordinates.strip_suffix(".json").unwrap_or(&coordinates);
    let stops = match lon_lat_points(coordinates) {
        Ok(stops) => stops,
        Err(BadCoordinates::Malformed(part) | BadCoordinates::OutOfRange(part)) => {
            return invalid_input(&format!("Coordinate is invalid: {part}"));
        }
    };
    if stops.len() < 2 {
        return invalid_input("At least two coordinates must be provided");
    }
    if stops.len() > MAX_COORDINATES {
        return invalid_input("Too many coordinates; maximum number of coordinates is 25.");
    }
    let mut options = Shape::default();
    for (name, value) in &pairs {
        let allowed: &[&str] = match name.as_str() {
            "overview" => &["full", "simplified", "false"],
            "geometries" => &["geojson", "polyline", "polyline6"],
            "steps" | "alternatives" => &["true", "false"],
            _ => continue,
        };
        if !allowed.contains(&value.as_str()) {
            return invalid_input(&format!("{name} must be one of [{}]", allowed.join(", ")));
        }
        match name.as_str() {
            "overview" => options.overview = value.clone(),
            "geometries" => options.geometries = value.clone(),
            _ => {}
        }
    }
    match fault {
        Some(Fault::RateLimited { retry_after }) => return rate_limited(retry_after),
        Some(Fault::Internal) => {
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
        Some(Fault::NoRoute) => {
            return json(
                StatusCode::OK,
                &json!({ "code": "NoRoute", "message": "No route found", "routes": [] }),
            );
        }
        Some(Fault::Refused) => return invalid_input("Request is invalid"),
        Some(Fault::Garbled) => return garbled(),
        Some(Fault::Delay(_)) | None => {}
    }
    let route = grid::route(&stops);
    let uuid = format!(
        "rnd-contract-{:08}",
        shared.requests.load(std::sync::atomic::Ordering::SeqCst)
    );
    json(StatusCode::OK, &answer(&route, &stops, &options, &uuid))
}

fn answer(
    route: &GridRoute,
    stops: &[rnd_domain::geo::GeoPoint],
    options: &Shape,
    uuid: &str,
) -> Value {
    let legs: Vec<Value> = route
        .legs
        .iter()
        .map(|leg| {
            json!({
                "via_waypoints": [],
                "admins": [{ "iso_3166_1_alpha3": "USA", "iso_3166_1": "US" }],
                "weight": grid::round(leg.duration_s, 3),
                "duration": grid::round(leg.duration_s, 3),
                "steps": [],
                "distance": grid::round(leg.distance_m, 3),
                "summary": "",
            })
        })
        .collect();
    let (first, waypoints) = options.route_and_waypoints(
        route,
        json!({
            "weight_name": "auto",
            "weight": grid::round(route.duration_s(), 3),
            "duration": grid::round(route.duration_s(), 3),
            "distance": grid::round(route.distance_m(), 3),
            "legs": legs,
        }),
        stops,
        &json!({ "distance": 0.0, "name": "" }),
    );
    json!({ "routes": [first], "waypoints": waypoints, "code": "Ok", "uuid": uuid })
}
