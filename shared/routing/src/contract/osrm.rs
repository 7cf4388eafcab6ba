//! OSRM's route service, `GET /route/v1/{profile}/{coordinates}`, as `osrm-routed` answers it
//! (behind a proxy that answers 429 and 5xx with its own pages).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::grid::{self, GridRoute};
use super::{
    BadCoordinates, Fault, Shape, Shared, delayed, garbled, json, lon_lat_points, query_pairs,
    with_retry_after,
};

/// The route service's options (and the general ones every OSRM service takes).
const OPTIONS: &[&str] = &[
    "alternatives",
    "steps",
    "annotations",
    "geometries",
    "overview",
    "continue_straight",
    "waypoints",
    "bearings",
    "radiuses",
    "generate_hints",
    "hints",
    "approaches",
    "exclude",
    "snapping",
    "skip_waypoints",
];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/route/v1/{profile}/{coordinates}", get(route))
        .with_state(shared)
}

fn error(code: &str, message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &json!({ "code": code, "message": message }),
    )
}

/// A proxy's own page (nginx's), as OSRM deployments answer overload and failure.
fn proxy_page(status: StatusCode) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html")],
        format!(
            "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        ),
    )
        .into_response()
}

/// The options of `query`; `None` when OSRM would answer `InvalidQuery`.
fn options(query: Option<&str>) -> Option<Shape> {
    let mut options = Shape::default();
    for (name, value) in query_pairs(query) {
        if !OPTIONS.contains(&name.as_str()) {
            return None;
        }
        let allowed: &[&str] = match name.as_str() {
            "overview" => &["simplified", "full", "false"],
            "geometries" => &["polyline", "polyline6", "geojson"],
            "steps" | "continue_straight" | "generate_hints" | "skip_waypoints" => {
                &["true", "false"]
            }
            _ => continue,
        };
        if !allowed.contains(&value.as_str()) {
            return None;
        }
        match name.as_str() {
            "overview" => options.overview = value,
            "geometries" => options.geometries = value,
            _ => {}
        }
    }
    Some(options)
}

async fn route(
    State(shared): State<Arc<Shared>>,
    Path((_profile, coordinates)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let fault = delayed(shared.begin()).await;
    let coordinates = coordinates.strip_suffix(".json").unwrap_or(&coordinates);
    let stops = match lon_lat_points(coordinates) {
        Ok(stops) => stops,
        Err(BadCoordinates::Malformed(part)) => {
            return error(
                "InvalidUrl",
                &format!("URL string malformed close to position 0: \"{part}\""),
            );
        }
        Err(BadCoordinates::OutOfRange(_)) => {
            return error("InvalidValue", "Invalid coordinate value.");
        }
    };
    if stops.len() < 2 {
        return error(
            "InvalidOptions",
            "Number of coordinates needs to be at least two.",
        );
    }
    let Some(options) = options(query.as_deref()) else {
        return error("InvalidQuery", "Query string malformed close to position 0");
    };
    match fault {
        Some(Fault::RateLimited { retry_after }) => {
            return with_retry_after(proxy_page(StatusCode::TOO_MANY_REQUESTS), retry_after);
        }
        Some(Fault::Internal) => return proxy_page(StatusCode::INTERNAL_SERVER_ERROR),
        Some(Fault::NoRoute) => return error("NoRoute", "Impossible route between points"),
        Some(Fault::Refused) => {
            return error(
                "TooBig",
                "Number of coordinates exceeds the maximum allowed",
            );
        }
        Some(Fault::Garbled) => return garbled(),
        Some(Fault::Delay(_)) | None => {}
    }
    let route = grid::route(&stops);
    json(StatusCode::OK, &answer(&route, &stops, &options))
}

fn answer(route: &GridRoute, stops: &[rnd_domain::geo::GeoPoint], options: &Shape) -> Value {
    let legs: Vec<Value> = route
        .legs
        .iter()
        .map(|leg| {
            json!({
                "steps": [],
                "summary": "",
                "weight": grid::round(leg.duration_s, 1),
                "duration": grid::round(leg.duration_s, 1),
                "distance": grid::round(leg.distance_m, 1),
            })
        })
        .collect();
    let (first, waypoints) = options.route_and_waypoints(
        route,
        json!({
            "legs": legs,
            "weight_name": "routability",
            "weight": grid::round(route.duration_s(), 1),
            "duration": grid::round(route.duration_s(), 1),
            "distance": grid::round(route.distance_m(), 1),
        }),
        stops,
        &json!({ "hint": "", "distance": 0.0, "name": "" }),
    );
    json!({ "code": "Ok", "routes": [first], "waypoints": waypoints })
}
