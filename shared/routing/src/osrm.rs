//! A self-hosted OSRM's route service:
//! `GET {base}/route/v1/driving/{lon},{lat};…?overview=full&geometries=polyline&steps=false`.
//!
//! | OSRM | HTTP | becomes |
//! |---|---|---|
//! | `Ok` with a route | 200 | the route (pickup = `legs[0]`) |
//! | `Ok` without a route | 200 | [`RoutingError::NoRoute`] |
//! | `NoRoute`, `NoSegment` (a point off the road network) | 400 | [`RoutingError::NoRoute`] |
//! | `InvalidQuery`, `InvalidValue`, `InvalidUrl`, `InvalidOptions`, `TooBig`, … | 400 | [`RoutingError::Refused`] |
//! | (a proxy's page) | 429 | [`RoutingError::RateLimited`] with `Retry-After` |
//! | (a proxy's page) | 5xx | [`RoutingError::Unavailable`] |
//! | an answer that does not parse | 200 | [`RoutingError::Unavailable`] |

use std::fmt;

use async_trait::async_trait;
use rnd_domain::route::{Route, RouteRequest, Router, RoutingError};
use rnd_http_client::{Answer, HttpClient};
use serde::Deserialize;

use crate::SetupError;
use crate::wire;

const PROVIDER: &str = "osrm";

/// The [`Router`] over a self-hosted OSRM (`osrm-routed`). Cheap to clone.
#[derive(Clone)]
pub struct OsrmRouter {
    base_url: String,
    http: HttpClient,
}

impl fmt::Debug for OsrmRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OsrmRouter")
            .field("base_url", &self.base_url)
            .field("http", &self.http)
            .finish()
    }
}

impl OsrmRouter {
    /// A router asking the OSRM served at `base_url` (e.g. `http://osrm:5000`), each call
    /// bounded by `http`'s timeout. Makes no request.
    ///
    /// Fails when `base_url` is not an absolute http(s) URL.
    pub fn new(base_url: &str, http: HttpClient) -> Result<Self, SetupError> {
        Ok(Self {
            base_url: wire::base_url(PROVIDER, base_url)?,
            http,
        })
    }

    async fn call(&self, request: &RouteRequest) -> Result<Route, RoutingError> {
        let url = format!(
            "{}/route/v1/driving/{}?overview=full&geometries=polyline&steps=false",
            self.base_url,
            wire::lon_lat_path(request)
        );
        let answer = self
            .http
            .get(&wire::uri(PROVIDER, &url)?)
            .await
            .map_err(|e| wire::transport(PROVIDER, e))?;
        read(request, &answer)
    }
}

#[async_trait]
impl Router for OsrmRouter {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// One `route` request; fails as the module's table says.
    async fn route(&self, request: &RouteRequest) -> Result<Route, RoutingError> {
        wire::logged(PROVIDER, self.call(request)).await
    }
}

#[derive(Debug, Deserialize)]
struct Body {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    routes: Vec<wire::DirectionsRoute>,
}

/// OSRM's `answer` to `request` (see the module's table).
fn read(request: &RouteRequest, answer: &Answer) -> Result<Route, RoutingError> {
    let status = answer.status;
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(wire::by_status(
            PROVIDER,
            status,
            answer.retry_after,
            &wire::excerpt(&answer.body),
        ));
    }
    let body: Body = wire::json_body(PROVIDER, answer)?;
    match body.code.as_str() {
        "Ok" if status.is_success() => {
            let Some(first) = body.routes.first() else {
                return Err(RoutingError::NoRoute);
            };
            first.read(PROVIDER, request, rnd_domain::route::POLYLINE_PRECISION)
        }
        "NoRoute" | "NoSegment" => Err(RoutingError::NoRoute),
        code => Err(RoutingError::Refused(format!(
            "{PROVIDER} answered {status} {code}: {}",
            wire::excerpt(body.message.as_bytes())
        ))),
    }
}
