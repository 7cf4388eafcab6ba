//! Google's Routes API, `POST /directions/v2:computeRoutes`, as Google answers it: errors as
//! `google.rpc.Status`, answers trimmed to the field mask.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use rnd_domain::geo::GeoPoint;
use serde_json::{Map, Value, json};

use super::grid::{self, GridRoute};
use super::{Fault, Shared, delayed, garbled, json, query_pairs, with_retry_after};

/// The fields of a `ComputeRoutesRequest`.
const REQUEST_FIELDS: &[&str] = &[
    "origin",
    "destination",
    "intermediates",
    "travelMode",
    "routingPreference",
    "polylineQuality",
    "polylineEncoding",
    "departureTime",
    "arrivalTime",
    "computeAlternativeRoutes",
    "routeModifiers",
    "languageCode",
    "regionCode",
    "units",
    "optimizeWaypointOrder",
    "requestedReferenceRoutes",
    "extraComputations",
    "trafficModel",
    "transitPreferences",
];

const TRAVEL_MODES: &[&str] = &[
    "TRAVEL_MODE_UNSPECIFIED",
    "DRIVE",
    "BICYCLE",
    "WALK",
    "TWO_WHEELER",
    "TRANSIT",
];

const ROUTING_PREFERENCES: &[&str] = &[
    "ROUTING_PREFERENCE_UNSPECIFIED",
    "TRAFFIC_UNAWARE",
    "TRAFFIC_AWARE",
    "TRAFFIC_AWARE_OPTIMAL",
];

const POLYLINE_ENCODINGS: &[&str] = &[
    "POLYLINE_ENCODING_UNSPECIFIED",
    "ENCODED_POLYLINE",
    "GEO_JSON_LINESTRING",
];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/directions/v2:computeRoutes", post(compute_routes))
        .with_state(shared)
}

/// A `google.rpc.Status` answer.
#[derive(Debug)]
struct Refusal {
    code: StatusCode,
    rpc_status: &'static str,
    message: String,
    details: Option<Value>,
}

impl Refusal {
    fn new(code: StatusCode, rpc_status: &'static str, message: &str) -> Self {
        Self {
            code,
            rpc_status,
            message: message.to_owned(),
            details: None,
        }
    }

    fn into_response(self) -> Response {
        let mut error = json!({
            "code": self.code.as_u16(),
            "message": self.message,
            "status": self.rpc_status,
        });
        if let Some(details) = self.details {
            error["details"] = details;
        }
        json(self.code, &json!({ "error": error }))
    }
}

fn invalid_argument(message: &str) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

/// The key check: Google's answers to no key and to another key.
fn check_key(
    shared: &Shared,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<(), Refusal> {
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            query
                .iter()
                .find(|(n, _)| n == "key")
                .map(|(_, v)| v.clone())
        });
    match key {
        None => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "The request is missing a valid API key.",
        )),
        Some(key) if key != shared.secret() => Err(Refusal {
            details: Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": { "service": "routes.googleapis.com" }
            }])),
            ..invalid_argument("API key not valid. Please pass a valid API key.")
        }),
        Some(_) => Ok(()),
    }
}

/// The field mask's paths, from the header or the `$fields` / `fields` parameter.
fn field_mask(headers: &HeaderMap, query: &[(String, String)]) -> Result<Vec<String>, Refusal> {
    let mask = headers
        .get("x-goog-fieldmask")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            query
                .iter()
                .find(|(n, _)| n == "$fields" || n == "fields")
                .map(|(_, v)| v.clone())
        })
        .filter(|m| !m.trim().is_empty());
    let Some(mask) = mask else {
        return Err(invalid_argument(
            "FieldMask is a required parameter. See https://cloud.google.com/apis/docs/system-parameters on how to provide it. As an example, you can set the header 'X-Goog-FieldMask' to value 'routes.distanceMeters,routes.duration,routes.polyline.encodedPolyline' to ask for the route distance, duration, and polyline in the response. You can also set the value to '*' in manual testing to get all the available response fields. However, using the '*' wildcard is discouraged in production.",
        ));
    };
    Ok(mask.split(',').map(|p| p.trim().to_owned()).collect())
}

/// The point of the `Waypoint` at `field` of `body`.
fn waypoint(value: Option<&Value>, field: &str) -> Result<GeoPoint, Refusal> {
    let Some(value) = value else {
        return Err(invalid_argument(&format!(
            "Invalid {field}: the waypoint is not set."
        )));
    };
    let lat_lng = value
        .get("location")
        .and_then(|l| l.get("latLng"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            invalid_argument(&format!(
                "Invalid {field}: the contract server supports only location.latLng waypoints."
            ))
        })?;
    // proto3 JSON: an absent number is zero.
    let number = |name: &str| match lat_lng.get(name) {
        None => Ok(0.0),
        Some(v) => v.as_f64().ok_or_else(|| {
            invalid_argument(&format!(
                "Invalid value at '{field}.location.lat_lng.{name}' (TYPE_DOUBLE), {v}"
            ))
        }),
    };
    let (latitude, longitude) = (number("latitude")?, number("longitude")?);
    GeoPoint::parse(latitude, longitude).map_err(|_| {
        invalid_argument(&format!(
            "Invalid {field}: latitude must be in [-90, 90] and longitude in [-180, 180]."
        ))
    })
}

/// An enum field of `body`, checked against its values.
fn enum_value<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    values: &[&str],
    proto: &str,
) -> Result<Option<&'a str>, Refusal> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(v)) if values.contains(&v.as_str()) => Ok(Some(v)),
        Some(v) => Err(invalid_argument(&format!(
            "Invalid value at '{field}' (type.googleapis.com/google.maps.routing.v2.{proto}), {v}"
        ))),
    }
}

/// The stops of a `ComputeRoutesRequest`, and whether it asked for GeoJSON.
fn read_request(body: &Bytes) -> Result<(Vec<GeoPoint>, bool), Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid_argument(&format!("Invalid JSON payload received. {e}")))?;
    let Value::Object(body) = value else {
        return Err(invalid_argument(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    if let Some(unknown) = body.keys().find(|k| !REQUEST_FIELDS.contains(&k.as_str())) {
        return Err(invalid_argument(&format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        )));
    }
    enum_value(&body, "travelMode", TRAVEL_MODES, "RouteTravelMode")?;
    enum_value(
        &body,
        "routingPreference",
        ROUTING_PREFERENCES,
        "RoutingPreference",
    )?;
    let encoding = enum_value(
        &body,
        "polylineEncoding",
        POLYLINE_ENCODINGS,
        "PolylineEncoding",
    )?;
    let mut stops = vec![waypoint(body.get("origin"), "origin")?];
    match body.get("intermediates") {
        None => {}
        Some(Value::Array(intermediates)) => {
            for (i, w) in intermediates.iter().enumerate() {
                stops.push(waypoint(Some(w), &format!("intermediates[{i}]"))?);
            }
        }
        Some(_) => {
            return Err(invalid_argument(
                "Invalid value at 'intermediates': expected a list of waypoints.",
            ));
        }
    }
    stops.push(waypoint(body.get("destination"), "destination")?);
    Ok((stops, encoding == Some("GEO_JSON_LINESTRING")))
}

async fn compute_routes(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = delayed(shared.begin()).await;
    match checked(&shared, query.as_deref(), &headers, &body) {
        Ok((stops, mask, geojson)) => answer_or_fault(fault, &stops, &mask, geojson),
        Err(refusal) => refusal.into_response(),
    }
}

/// The stops, field mask and encoding of a request Google would accept, or its refusal: the
/// key first, then the field mask, then the body.
fn checked(
    shared: &Shared,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Vec<GeoPoint>, Vec<String>, bool), Refusal> {
    let query = query_pairs(query);
    check_key(shared, headers, &query)?;
    let mask = field_mask(headers, &query)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(invalid_argument(
            "Invalid JSON payload received. The request must be application/json.",
        ));
    }
    let (stops, geojson) = read_request(body)?;
    Ok((stops, mask, geojson))
}

/// The scripted fault's answer, or the route's fields the mask names.
fn answer_or_fault(
    fault: Option<Fault>,
    stops: &[GeoPoint],
    mask: &[String],
    geojson: bool,
) -> Response {
    match fault {
        Some(Fault::RateLimited { retry_after }) => {
            let refusal = Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Compute Routes requests' and limit 'Compute Routes requests per minute' of service 'routes.googleapis.com'.",
            );
            with_retry_after(refusal.into_response(), retry_after)
        }
        Some(Fault::Internal) => Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Internal error encountered.",
        )
        .into_response(),
        Some(Fault::NoRoute) => json(StatusCode::OK, &json!({})),
        Some(Fault::Refused) => {
            invalid_argument("Request contains an invalid argument.").into_response()
        }
        Some(Fault::Garbled) => garbled(),
        Some(Fault::Delay(_)) | None => {
            let route = grid::route(stops);
            json(
                StatusCode::OK,
                &project(&answer(stops, &route, geojson), mask),
            )
        }
    }
}

/// A protobuf `Duration` in JSON: whole seconds, as Google answers.
fn duration(seconds: f64) -> String {
    format!("{}s", seconds.round() as u64)
}

fn polyline(points: &[GeoPoint], geojson: bool) -> Value {
    if geojson {
        json!({ "geoJsonLinestring": grid::geojson(points) })
    } else {
        json!({ "encodedPolyline": grid::encode(points, 5) })
    }
}

/// Every field of the answer (what the mask `*` gets) for the route through `stops`.
fn answer(stops: &[GeoPoint], route: &GridRoute, geojson: bool) -> Value {
    let legs: Vec<Value> = stops
        .windows(2)
        .zip(&route.legs)
        .map(|(ends, leg)| {
            json!({
                "distanceMeters": leg.distance_m.round() as u64,
                "duration": duration(leg.duration_s),
                "staticDuration": duration(leg.duration_s),
                "polyline": polyline(&grid::route(ends).points, geojson),
                "startLocation": { "latLng": lat_lng(&ends[0]) },
                "endLocation": { "latLng": lat_lng(&ends[1]) },
            })
        })
        .collect();
    json!({
        "routes": [{
            "legs": legs,
            "distanceMeters": route.distance_m().round() as u64,
            "duration": duration(route.duration_s()),
            "staticDuration": duration(route.duration_s()),
            "polyline": polyline(&route.points, geojson),
            "routeLabels": ["DEFAULT_ROUTE"],
        }]
    })
}

fn lat_lng(p: &GeoPoint) -> Value {
    json!({ "latitude": p.latitude.get(), "longitude": p.longitude.get() })
}

/// `value` with only the fields `mask` names (`a.b.c` paths through objects and lists; `*`
/// for everything).
fn project(value: &Value, mask: &[String]) -> Value {
    let paths: Vec<Vec<&str>> = mask.iter().map(|p| p.split('.').collect()).collect();
    if paths.iter().any(|p| p == &["*"]) {
        return value.clone();
    }
    keep(value, &paths)
}

fn keep(value: &Value, paths: &[Vec<&str>]) -> Value {
    if paths.iter().any(Vec::is_empty) {
        return value.clone();
    }
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| keep(v, paths)).collect()),
        Value::Object(fields) => {
            let mut kept = Map::new();
            for (name, field) in fields {
                let rest: Vec<Vec<&str>> = paths
                    .iter()
                    .filter(|p| p[0] == name)
                    .map(|p| p[1..].to_vec())
                    .collect();
                if !rest.is_empty() {
                    kept.insert(name.clone(), keep(field, &rest));
                }
            }
            Value::Object(kept)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_mask_keeps_only_the_fields_it_names() {
        let full = json!({ "routes": [{ "distanceMeters": 10, "duration": "2s",
            "polyline": { "encodedPolyline": "abc" },
            "legs": [{ "distanceMeters": 4, "duration": "1s", "polyline": {} }] }] });
        let mask: Vec<String> = "routes.duration,routes.legs.distanceMeters"
            .split(',')
            .map(str::to_owned)
            .collect();
        assert_eq!(
            project(&full, &mask),
            json!({ "routes": [{ "duration": "2s", "legs": [{ "distanceMeters": 4 }] }] })
        );
        assert_eq!(project(&full, &["*".to_owned()]), full);
    }
}
