//! Mapbox Directions v5, `driving-traffic` profile:
//! `GET {base}/directions/v5/mapbox/driving-traffic/{lon},{lat};…?geometries=polyline6&overview=full&steps=false&access_token=…`.
//!
//! | Mapbox | HTTP | becomes |
//! |---|---|---|
//! | `Ok` with a route | 200 | the route (pickup = `legs[0]`; geometry at precision 6) |
//! | `NoRoute`, `NoSegment` | 200, 404, 422 | [`RoutingError::NoRoute`] |
//! | `{"message": "Not Authorized - …"}`, `Forbidden` | 401, 403 | [`RoutingError::Refused`] |
//! | `InvalidInput`, `ProfileNotFound`, any other 4xx | 422, 404, … | [`RoutingError::Refused`] |
//! | `{"message": "Too Many Requests"}` | 429 | [`RoutingError::RateLimited`], `Retry-After` or else `X-Rate-Limit-Reset` |
//! | any | 5xx | [`RoutingError::Unavailable`] |
//! | an answer that does not parse | 200 | [`RoutingError::Unavailable`] |
//!
//! The token travels in the query string, so the request URL is a secret too: it is never
//! logged nor kept, and provider text is scrubbed of the token before it goes in an error.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hyper::HeaderMap;
use rnd_domain::route::{Route, RouteRequest, Router, RoutingError};
use rnd_http_client::{HttpClient, Reply};
use serde::Deserialize;

use crate::SetupError;
use crate::wire::{self, Secret};

const PROVIDER: &str = "mapbox";

/// Mapbox's public API.
pub const MAPBOX_DEFAULT_BASE_URL: &str = "https://api.mapbox.com";

/// Mapbox's `polyline6`: six decimal places.
const PRECISION: u32 = 6;

/// The [`Router`] over Mapbox Directions v5 with live traffic. Cheap to clone; its `Debug`
/// shows no token.
#[derive(Clone)]
pub struct MapboxRouter {
    base_url: String,
    token: Secret,
    http: HttpClient,
}

impl fmt::Debug for MapboxRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapboxRouter")
            .field("base_url", &self.base_url)
            .field("token", &self.token)
            .field("http", &self.http)
            .finish()
    }
}

impl MapboxRouter {
    /// A router asking Mapbox at `base_url` ([`MAPBOX_DEFAULT_BASE_URL`], or a contract
    /// server's) with `access_token`, each call bounded by `http`'s timeout. Makes no request.
    ///
    /// Fails when `base_url` is not an absolute http(s) URL or the token is empty.
    pub fn new(base_url: &str, access_token: &str, http: HttpClient) -> Result<Self, SetupError> {
        if access_token.is_empty() {
            return Err(SetupError::MissingSecret(PROVIDER));
        }
        Ok(Self {
            base_url: wire::base_url(PROVIDER, base_url)?,
            token: Secret::new(access_token),
            http,
        })
    }

    async fn call(&self, request: &RouteRequest) -> Result<Route, RoutingError> {
        let token: String = form_urlencoded_component(self.token.expose());
        let url = format!(
            "{}/directions/v5/mapbox/driving-traffic/{}?geometries=polyline6&overview=full&steps=false&access_token={token}",
            self.base_url,
            wire::lon_lat_path(request)
        );
        let reply = self
            .http
            .get_with(&wire::uri(PROVIDER, &url)?, &HeaderMap::new())
            .await
            .map_err(|e| self.token.scrub_error(wire::transport(PROVIDER, e)))?;
        read(request, &reply, SystemTime::now()).map_err(|e| self.token.scrub_error(e))
    }
}

#[async_trait]
impl Router for MapboxRouter {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    /// One Directions request; fails as the module's table says.
    async fn route(&self, request: &RouteRequest) -> Result<Route, RoutingError> {
        wire::logged(PROVIDER, self.call(request)).await
    }
}

/// Percent-encodes a query value (Mapbox tokens are `[A-Za-z0-9._-]`, but a mistyped one
/// must not break the URL).
fn form_urlencoded_component(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    routes: Vec<wire::DirectionsRoute>,
}

/// How long Mapbox asks to wait: `Retry-After` when sent, else until `X-Rate-Limit-Reset`
/// (Unix seconds) as of `now`.
fn rate_limit_wait(reply: &Reply, now: SystemTime) -> Option<Duration> {
    if let Some(wait) = reply.answer.retry_after {
        return Some(wait);
    }
    let reset: u64 = reply
        .headers
        .get("x-rate-limit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let reset = UNIX_EPOCH + Duration::from_secs(reset);
    Some(reset.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Mapbox's `reply` to `request` as of `now` (see the module's table).
fn read(request: &RouteRequest, reply: &Reply, now: SystemTime) -> Result<Route, RoutingError> {
    let answer = &reply.answer;
    let status = answer.status;
    if status.as_u16() == 429 {
        return Err(RoutingError::RateLimited {
            retry_after: rate_limit_wait(reply, now),
        });
    }
    if status.is_server_error() {
        return Err(wire::by_status(
            PROVIDER,
            status,
            None,
            &wire::excerpt(&answer.body),
        ));
    }
    let body: Body = wire::json_body(PROVIDER, answer)?;
    let code = body.code.as_deref().unwrap_or("-");
    if matches!(code, "NoRoute" | "NoSegment") {
        return Err(RoutingError::NoRoute);
    }
    if !status.is_success() || code != "Ok" {
        let message = body.message.as_deref().unwrap_or("");
        return Err(RoutingError::Refused(format!(
            "{PROVIDER} answered {status} {code}: {}",
            wire::excerpt(message.as_bytes())
        )));
    }
    let Some(first) = body.routes.first() else {
        return Err(RoutingError::NoRoute);
    };
    first.read(PROVIDER, request, PRECISION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;
    use hyper::body::Bytes;
    use rnd_http_client::Answer;

    fn reply(status: u16, headers: &[(&'static str, &str)]) -> Reply {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        Reply {
            answer: Answer {
                status: StatusCode::from_u16(status).unwrap(),
                retry_after: None,
                max_age: None,
                body: Bytes::from_static(br#"{"message":"Too Many Requests"}"#),
            },
            headers: map,
        }
    }

    #[test]
    fn a_rate_limit_waits_until_mapboxs_reset_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let limited = reply(429, &[("x-rate-limit-reset", "1800000042")]);
        assert_eq!(
            rate_limit_wait(&limited, now),
            Some(Duration::from_secs(42))
        );
        let past = reply(429, &[("x-rate-limit-reset", "1799999999")]);
        assert_eq!(rate_limit_wait(&past, now), Some(Duration::ZERO));
        assert_eq!(rate_limit_wait(&reply(429, &[]), now), None);
    }

    #[test]
    fn a_token_is_percent_encoded_in_the_query() {
        assert_eq!(form_urlencoded_component("pk.eyJ1-_~"), "pk.eyJ1-_~");
        assert_eq!(form_urlencoded_component("a b&c"), "a%20b%26c");
    }
}
