//! Google's Routes API: `POST {base}/directions/v2:computeRoutes` with the key in
//! `X-Goog-Api-Key`, the fields wanted in `X-Goog-FieldMask` ([`GOOGLE_FIELD_MASK`]), and a
//! JSON `ComputeRoutesRequest` (driving, traffic aware, encoded polyline).
//!
//! | Google | HTTP | becomes |
//! |---|---|---|
//! | `{"routes": [...]}` | 200 | the route (pickup = `legs[0]`; durations such as `"123s"`) |
//! | `{}` (no route) | 200 | [`RoutingError::NoRoute`] |
//! | `INVALID_ARGUMENT` (a bad key, a bad request), `PERMISSION_DENIED`, `UNAUTHENTICATED` | 400, 403, 401 | [`RoutingError::Refused`] |
//! | `RESOURCE_EXHAUSTED` | 429 | [`RoutingError::RateLimited`] with `Retry-After` |
//! | `INTERNAL`, `UNAVAILABLE`, … | 5xx | [`RoutingError::Unavailable`] |
//! | an answer that does not parse | 200 | [`RoutingError::Unavailable`] |
//!
//! Google answers errors as `google.rpc.Status` (`{"error": {"code", "message", "status"}}`);
//! its messages do not quote the key, and are scrubbed of it anyway.

use std::fmt;

use async_trait::async_trait;
use hyper::HeaderMap;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use rnd_domain::geo::GeoPoint;
use rnd_domain::route::{Route, RouteRequest, Router, RoutingError};
use rnd_http_client::google_rpc::RpcStatus;
use rnd_http_client::{Answer, HttpClient};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::SetupError;
use crate::wire::{self, Secret};

const PROVIDER: &str = "google";

/// Google's Routes API.
pub const GOOGLE_DEFAULT_BASE_URL: &str = "https://routes.googleapis.com";

/// The fields asked for (Google bills by them, and answers only those).
pub const GOOGLE_FIELD_MASK: &str = "routes.distanceMeters,routes.duration,routes.polyline.encodedPolyline,routes.legs.distanceMeters,routes.legs.duration";

/// The [`Router`] over Google's Routes API. Cheap to clone; its `Debug` shows no key.
#[derive(Clone)]
pub struct GoogleRouter {
    base_url: String,
    key: Secret,
    /// The headers sent with each request, the key marked sensitive.
    headers: HeaderMap,
    http: HttpClient,
}

impl fmt::Debug for GoogleRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleRouter")
            .field("base_url", &self.base_url)
            .field("key", &self.key)
            .field("http", &self.http)
            .finish()
    }
}

impl GoogleRouter {
    /// A router asking the Routes API at `base_url` ([`GOOGLE_DEFAULT_BASE_URL`], or a
    /// contract server's) with `api_key`, each call bounded by `http`'s timeout. Makes no
    /// request.
    ///
    /// Fails when `base_url` is not an absolute http(s) URL, or the key is empty or not a
    /// header value.
    pub fn new(base_url: &str, api_key: &str, http: HttpClient) -> Result<Self, SetupError> {
        let mut key = HeaderValue::from_str(api_key)
            .ok()
            .filter(|_| !api_key.is_empty())
            .ok_or(SetupError::MissingSecret(PROVIDER))?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("x-goog-api-key"), key);
        headers.insert(
            HeaderName::from_static("x-goog-fieldmask"),
            HeaderValue::from_static(GOOGLE_FIELD_MASK),
        );
        Ok(Self {
            base_url: wire::base_url(PROVIDER, base_url)?,
            key: Secret::new(api_key),
            headers,
            http,
        })
    }

    async fn call(&self, request: &RouteRequest) -> Result<Route, RoutingError> {
        let url = format!("{}/directions/v2:computeRoutes", self.base_url);
        let body = Bytes::from(request_body(request).to_string());
        let reply = self
            .http
            .post_with(
                &wire::uri(PROVIDER, &url)?,
                "application/json",
                &self.headers,
                body,
            )
            .await
            .map_err(|e| self.key.scrub_error(wire::transport(PROVIDER, e)))?;
        read(request, &reply.answer).map_err(|e| self.key.scrub_error(e))
    }
}

#[async_trait]
impl Router for GoogleRouter {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// One `computeRoutes` request; fails as the module's table says.
    async fn route(&self, request: &RouteRequest) -> Result<Route, RoutingError> {
        wire::logged(PROVIDER, self.call(request)).await
    }
}

/// A `Waypoint` at `point`.
fn waypoint(point: &GeoPoint) -> Value {
    json!({
        "location": {
            "latLng": {
                "latitude": point.latitude.get(),
                "longitude": point.longitude.get(),
            }
        }
    })
}

/// The `ComputeRoutesRequest` for `request`.
fn request_body(request: &RouteRequest) -> Value {
    let mut body = json!({
        "origin": waypoint(&request.from),
        "destination": waypoint(&request.to),
        "travelMode": "DRIVE",
        "routingPreference": "TRAFFIC_AWARE",
        "polylineEncoding": "ENCODED_POLYLINE",
    });
    if let Some(via) = &request.via {
        body["intermediates"] = json!([waypoint(via)]);
    }
    body
}

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    routes: Vec<GoogleRoute>,
}

/// proto3 JSON leaves out zero values: a zero-metre route has no `distanceMeters`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GoogleRoute {
    #[serde(default)]
    distance_meters: u64,
    #[serde(default)]
    duration: Option<String>,
    polyline: Polyline,
    #[serde(default)]
    legs: Vec<Leg>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Polyline {
    encoded_polyline: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Leg {
    #[serde(default)]
    distance_meters: u64,
    #[serde(default)]
    duration: Option<String>,
}

/// A protobuf `Duration` in JSON (`"123s"`, `"1.5s"`) as seconds; absent is zero.
fn seconds(duration: Option<&str>) -> Result<f64, RoutingError> {
    let Some(text) = duration else {
        return Ok(0.0);
    };
    text.strip_suffix('s')
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| wire::unparseable(PROVIDER, format_args!("duration {text:?}")))
}

/// Google's `answer` to `request` (see the module's table).
fn read(request: &RouteRequest, answer: &Answer) -> Result<Route, RoutingError> {
    let status = answer.status;
    if !status.is_success() {
        let error = RpcStatus::from_body(&answer.body);
        let message = if error.status.is_empty() {
            wire::excerpt(&answer.body)
        } else {
            format!(
                "{} {}",
                error.status,
                wire::excerpt(error.message.as_bytes())
            )
        };
        return Err(wire::by_status(
            PROVIDER,
            status,
            answer.retry_after,
            &message,
        ));
    }
    let body: Body =
        serde_json::from_slice(&answer.body).map_err(|e| wire::unparseable(PROVIDER, e))?;
    let Some(first) = body.routes.first() else {
        return Err(RoutingError::NoRoute);
    };
    let legs = first
        .legs
        .iter()
        .map(|l| Ok((l.distance_meters as f64, seconds(l.duration.as_deref())?)))
        .collect::<Result<Vec<_>, RoutingError>>()?;
    wire::route(
        PROVIDER,
        request,
        &first.polyline.encoded_polyline,
        rnd_domain::route::POLYLINE_PRECISION,
        (
            first.distance_meters as f64,
            seconds(first.duration.as_deref())?,
        ),
        &legs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_durations_read_as_seconds() {
        assert_eq!(seconds(Some("123s")).unwrap(), 123.0);
        assert_eq!(seconds(Some("1.5s")).unwrap(), 1.5);
        assert_eq!(seconds(None).unwrap(), 0.0);
        assert!(matches!(
            seconds(Some("12 minutes")),
            Err(RoutingError::Unavailable(_))
        ));
    }

    #[test]
    fn the_request_names_the_pickup_as_the_one_intermediate() {
        let p = |lat, lon| GeoPoint::parse(lat, lon).unwrap();
        let request = RouteRequest {
            from: p(30.0, -97.0),
            via: Some(p(30.01, -97.01)),
            to: p(30.02, -97.02),
        };
        let body = request_body(&request);
        assert_eq!(
            body["intermediates"][0]["location"]["latLng"]["latitude"],
            30.01
        );
        assert_eq!(body["travelMode"], "DRIVE");
        let direct = request_body(&RouteRequest {
            via: None,
            ..request
        });
        assert!(direct.get("intermediates").is_none());
    }
}
