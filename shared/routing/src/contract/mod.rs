//! Contract servers for the three providers (feature `contract`): each an axum `Router`
//! speaking the provider's wire format, validating requests as the real service does, and
//! routing over a deterministic synthetic street grid ([`grid`]). The adapters' tests run
//! against them over real HTTP, and the local stack and the load bench can mount them.
//!
//! [`ContractServer`] is the handle (cheap to clone; clones share the state):
//! [`ContractServer::osrm`], [`ContractServer::mapbox`] (with the access token it accepts) and
//! [`ContractServer::google`] (with the API key it accepts) make one;
//! [`ContractServer::router`] gives its `Router` to serve or to nest under a path prefix
//! (`axum::Router::new().nest("/osrm", server.router())`); [`ContractServer::serve`] serves it
//! on a free loopback port and gives its base URL, which is what the adapters take.
//!
//! Scripting failures: [`ContractServer::fail`] answers every request with a [`Fault`] until
//! [`ContractServer::heal`], [`ContractServer::fail_next`] only the next few. A fault is
//! applied after the key or token check, so a wrong secret is refused whatever is scripted,
//! except [`Fault::Delay`], which holds every answer (refusals included) that long.
//! Each request received takes one of [`ContractServer::fail_next`]'s count, refused ones
//! included. [`ContractServer::requests`] counts the routing requests received, refused and
//! failed ones included: what a test or the load bench reads as "routing calls made".
//!
//! # HTTP API
//! Paths are relative to where the Router is served:
//! - OSRM: `GET /route/v1/{profile}/{lon},{lat};…` with `overview` (`simplified` by default,
//!   `full`, `false`), `geometries` (`polyline` by default, `polyline6`, `geojson`), `steps`,
//!   and OSRM's other options; an unknown option is 400 `InvalidQuery`, a malformed coordinate
//!   400 `InvalidUrl`, one off the globe 400 `InvalidValue`, fewer than two 400
//!   `InvalidOptions`. Answers `{"code": "Ok", "routes": [{"geometry", "distance", "duration",
//!   "weight", "weight_name", "legs": [{"distance", "duration", "weight", "summary",
//!   "steps"}]}], "waypoints": [{"hint", "distance", "name", "location"}]}`.
//! - Mapbox: `GET /directions/v5/mapbox/{profile}/{lon},{lat};…?access_token=…` with
//!   `geometries`, `overview`, `steps`. No token or another one is 401 `{"message": "Not
//!   Authorized - No Token" | "Not Authorized - Invalid Token"}`; an unknown profile 404
//!   `ProfileNotFound`; bad coordinates or option values 422 `InvalidInput`. Answers
//!   `{"code": "Ok", "routes": [{"geometry", "distance", "duration", "weight", "weight_name",
//!   "legs": [...]}], "waypoints": [...], "uuid"}`.
//! - Google: `POST /directions/v2:computeRoutes` with `X-Goog-Api-Key` (or `?key=`),
//!   `X-Goog-FieldMask` (or `?$fields=` / `?fields=`) and a JSON `ComputeRoutesRequest`. No
//!   key is 403 `PERMISSION_DENIED`, another key 400 `INVALID_ARGUMENT` (`API_KEY_INVALID`), no
//!   field mask, a body that is not JSON, an unknown field, a bad enum value or a waypoint
//!   without `location.latLng` 400 `INVALID_ARGUMENT`, all as `google.rpc.Status`. Answers
//!   `{"routes": [...]}` holding only the fields the mask names (`*` for all), `{}` for no
//!   route.
//!
//! # Layout
//! - [`ContractServer`], [`Fault`], [`Served`] (this file).
//! - [`grid`]: the street grid the routes follow.
//! - `osrm`, `mapbox`, `google`: each provider's endpoint, checks and answers.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rnd_domain::geo::GeoPoint;
use serde_json::Value;

use crate::Provider;

mod google;
pub mod grid;
mod mapbox;
mod osrm;

/// A scripted failure: how to answer instead of routing, in the provider's own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer as usual, but only after this long (for timeouts).
    Delay(Duration),
    /// 429, with `Retry-After` (OSRM's proxy, Google) or `X-Rate-Limit-Reset` (Mapbox) when
    /// given.
    RateLimited {
        /// How long to ask the client to wait.
        retry_after: Option<Duration>,
    },
    /// 500: OSRM's proxy's page, Mapbox's `{"message"}`, Google's `INTERNAL`.
    Internal,
    /// The provider's "no route": OSRM's 400 `NoRoute`, Mapbox's 200 `NoRoute`, Google's `{}`.
    NoRoute,
    /// The provider's refusal of a well-formed-looking request: OSRM's 400 `TooBig`, Mapbox's
    /// 422 `InvalidInput`, Google's 400 `INVALID_ARGUMENT`.
    Refused,
    /// 200 with a JSON body cut short (a broken proxy or a truncated answer).
    Garbled,
}

#[derive(Debug)]
struct Script {
    fault: Fault,
    /// How many more requests get it; `None` for all until healed.
    remaining: Option<usize>,
}

/// What a contract server's handlers share.
pub(crate) struct Shared {
    provider: Provider,
    secret: Option<String>,
    requests: AtomicUsize,
    script: Mutex<Option<Script>>,
}

impl Shared {
    /// Counts a request and gives the fault it gets, if any.
    pub(crate) fn begin(&self) -> Option<Fault> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut script = self.script.lock().unwrap_or_else(|e| e.into_inner());
        let current = script.as_mut()?;
        let fault = current.fault;
        if let Some(remaining) = current.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                *script = None;
            }
        }
        Some(fault)
    }

    /// The key or token requests must carry (Mapbox, Google).
    pub(crate) fn secret(&self) -> &str {
        self.secret.as_deref().unwrap_or_default()
    }
}

/// Sleeps for a [`Fault::Delay`]; hands back the other faults.
pub(crate) async fn delayed(fault: Option<Fault>) -> Option<Fault> {
    if let Some(Fault::Delay(wait)) = fault {
        tokio::time::sleep(wait).await;
        return None;
    }
    fault
}

/// A contract server for one provider (see the module docs). Clones share the state; its
/// `Debug` shows no secret.
#[derive(Clone)]
pub struct ContractServer {
    shared: Arc<Shared>,
}

impl fmt::Debug for ContractServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContractServer")
            .field("provider", &self.shared.provider)
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl ContractServer {
    fn new(provider: Provider, secret: Option<&str>) -> Self {
        Self {
            shared: Arc::new(Shared {
                provider,
                secret: secret.map(str::to_owned),
                requests: AtomicUsize::new(0),
                script: Mutex::new(None),
            }),
        }
    }

    /// An OSRM (`osrm-routed`): no key.
    pub fn osrm() -> Self {
        Self::new(Provider::Osrm, None)
    }

    /// Mapbox Directions v5, accepting only `access_token`.
    pub fn mapbox(access_token: &str) -> Self {
        Self::new(Provider::Mapbox, Some(access_token))
    }

    /// Google's Routes API, accepting only `api_key`.
    pub fn google(api_key: &str) -> Self {
        Self::new(Provider::Google, Some(api_key))
    }

    /// The provider it stands in for.
    pub fn provider(&self) -> Provider {
        self.shared.provider
    }

    /// The Router serving the provider's endpoint (see the module docs), to serve or to nest.
    pub fn router(&self) -> axum::Router {
        let shared = Arc::clone(&self.shared);
        match self.shared.provider {
            Provider::Osrm => osrm::router(shared),
            Provider::Mapbox => mapbox::router(shared),
            Provider::Google => google::router(shared),
        }
    }

    /// How many routing requests it has received, refused and failed ones included.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Answers every request with `fault` from now on, until [`ContractServer::heal`].
    pub fn fail(&self, fault: Fault) {
        self.script(Script {
            fault,
            remaining: None,
        });
    }

    /// Answers the next `times` requests with `fault`, then routes again.
    pub fn fail_next(&self, fault: Fault, times: usize) {
        if times > 0 {
            self.script(Script {
                fault,
                remaining: Some(times),
            });
        }
    }

    /// Routes again (drops the scripted fault).
    pub fn heal(&self) {
        *self.shared.script.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn script(&self, script: Script) {
        *self.shared.script.lock().unwrap_or_else(|e| e.into_inner()) = Some(script);
    }

    /// Serves it on a free port of 127.0.0.1, in a task of the current tokio runtime, until
    /// the [`Served`] is dropped.
    ///
    /// Fails when no loopback port can be bound.
    pub async fn serve(&self) -> std::io::Result<Served> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = self.router();
        let provider = self.provider();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(%provider, error = %e, "the routing contract server stopped");
            }
        });
        Ok(Served {
            server: self.clone(),
            addr,
            base_url: format!("http://{addr}"),
            task,
        })
    }
}

/// A contract server served by [`ContractServer::serve`]; dereferences to it. Stops serving
/// when dropped.
#[derive(Debug)]
pub struct Served {
    server: ContractServer,
    addr: SocketAddr,
    base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// The base URL to give the adapter: `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Deref for Served {
    type Target = ContractServer;

    fn deref(&self) -> &ContractServer {
        &self.server
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// The answer of [`Fault::Garbled`].
pub(crate) fn garbled() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        r#"{"code":"Ok","routes":[{"geometry":"_p~iF~ps|U_ul"#,
    )
        .into_response()
}

/// Adds `Retry-After` in whole seconds (rounded up) when there is a wait.
pub(crate) fn with_retry_after(mut response: Response, wait: Option<Duration>) -> Response {
    if let Some(wait) = wait {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// How OSRM and Mapbox are asked to draw a route (`overview`, `geometries`); both default
/// to the outline as a polyline at precision 5.
pub(crate) struct Shape {
    pub(crate) overview: String,
    pub(crate) geometries: String,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            overview: "simplified".into(),
            geometries: "polyline".into(),
        }
    }
}

impl Shape {
    /// A Directions answer's route: `fields` with `route`'s geometry as asked, and the
    /// `waypoints` of `stops`, each where it was asked (the grid's roads pass through every
    /// point) with `waypoint` (its other fields, which OSRM and Mapbox name differently).
    pub(crate) fn route_and_waypoints(
        &self,
        route: &grid::GridRoute,
        mut fields: Value,
        stops: &[rnd_domain::geo::GeoPoint],
        waypoint: &Value,
    ) -> (Value, Vec<Value>) {
        if let Some(geometry) = self.geometry(route) {
            fields["geometry"] = geometry;
        }
        let waypoints = stops
            .iter()
            .map(|p| {
                let mut w = waypoint.clone();
                w["location"] = serde_json::json!([p.longitude.get(), p.latitude.get()]);
                w
            })
            .collect();
        (fields, waypoints)
    }

    /// `route`'s geometry as asked: all its points or its outline, encoded or GeoJSON; `None`
    /// for `overview=false`.
    pub(crate) fn geometry(&self, route: &grid::GridRoute) -> Option<Value> {
        let points = match self.overview.as_str() {
            "full" => &route.points,
            "simplified" => &route.outline,
            _ => return None,
        };
        Some(match self.geometries.as_str() {
            "polyline6" => Value::String(grid::encode(points, 6)),
            "geojson" => grid::geojson(points),
            _ => Value::String(grid::encode(points, 5)),
        })
    }
}

/// Why a `lon,lat;lon,lat…` path does not hold coordinates.
pub(crate) enum BadCoordinates {
    /// A part is not two numbers.
    Malformed(String),
    /// A number is off the globe.
    OutOfRange(String),
}

/// The points of a `lon,lat;lon,lat…` path segment (OSRM's and Mapbox's).
pub(crate) fn lon_lat_points(segment: &str) -> Result<Vec<GeoPoint>, BadCoordinates> {
    segment
        .split(';')
        .map(|pair| {
            let (lon, lat) = pair
                .split_once(',')
                .and_then(|(lon, lat)| {
                    Some((
                        lon.trim().parse::<f64>().ok()?,
                        lat.trim().parse::<f64>().ok()?,
                    ))
                })
                .filter(|(lon, lat)| lon.is_finite() && lat.is_finite())
                .ok_or_else(|| BadCoordinates::Malformed(pair.to_owned()))?;
            GeoPoint::parse(lat, lon).map_err(|_| BadCoordinates::OutOfRange(pair.to_owned()))
        })
        .collect()
}

/// The pairs of a query string, decoded.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}
