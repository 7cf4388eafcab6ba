//! What the three adapters share: coordinates on the wire, the status table, the pickup
//! waypoint, redaction of secrets, and the debug event of each call.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use hyper::{StatusCode, Uri};
use rnd_domain::geo::GeoPoint;
use rnd_domain::route::{Route, RouteRequest, RoutingError, Waypoint};
use rnd_http_client::{Answer, TransportError};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::SetupError;

/// Longest part of a provider's text kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// A key or token: shown as `[redacted]` by `Debug`, and never by `Display`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: &str) -> Self {
        Self(value.to_owned())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `[redacted]`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "[redacted]")
        }
    }

    /// `error` with the secret scrubbed from its text.
    pub(crate) fn scrub_error(&self, error: RoutingError) -> RoutingError {
        match error {
            RoutingError::Unavailable(text) => RoutingError::Unavailable(self.scrub(&text)),
            RoutingError::Refused(text) => RoutingError::Refused(self.scrub(&text)),
            other => other,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The stops of `request` in order: from, via (when given), to.
pub(crate) fn stops(request: &RouteRequest) -> Vec<GeoPoint> {
    std::iter::once(request.from)
        .chain(request.via)
        .chain(std::iter::once(request.to))
        .collect()
}

/// The stops as OSRM and Mapbox take them in a path: `lon,lat;lon,lat…` (six decimals, about
/// ten centimetres).
pub(crate) fn lon_lat_path(request: &RouteRequest) -> String {
    stops(request)
        .iter()
        .map(|p| format!("{:.6},{:.6}", p.longitude.get(), p.latitude.get()))
        .collect::<Vec<_>>()
        .join(";")
}

/// `base` without its trailing slashes, checked to be an absolute http(s) URL.
pub(crate) fn base_url(provider: &'static str, base: &str) -> Result<String, SetupError> {
    let base = base.trim_end_matches('/');
    let uri: Uri = base.parse().map_err(|_| SetupError::BaseUrl(provider))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(SetupError::BaseUrl(provider));
    }
    Ok(base.to_owned())
}

/// A URL built from a checked base; a failure here is a bug of ours or a strange base, and
/// the request cannot be made.
pub(crate) fn uri(provider: &'static str, url: &str) -> Result<Uri, RoutingError> {
    url.parse()
        .map_err(|_| RoutingError::Refused(format!("{provider}: the request URL does not parse")))
}

/// A request that got no whole answer: the client's timeout is [`RoutingError::Timeout`],
/// anything else (connecting, TLS, reading) [`RoutingError::Unavailable`] with its causes.
pub(crate) fn transport(provider: &'static str, error: TransportError) -> RoutingError {
    if let TransportError::Timeout(_) = error {
        return RoutingError::Timeout;
    }
    let mut text = format!("{provider}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    RoutingError::Unavailable(text)
}

/// What every provider's status says when its body does not say more: 429 rate limited, 5xx
/// unavailable, any other non-success refused.
pub(crate) fn by_status(
    provider: &'static str,
    status: StatusCode,
    retry_after: Option<Duration>,
    message: &str,
) -> RoutingError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        RoutingError::RateLimited { retry_after }
    } else if status.is_server_error() {
        RoutingError::Unavailable(format!("{provider} answered {status}: {message}"))
    } else {
        RoutingError::Refused(format!("{provider} answered {status}: {message}"))
    }
}

/// An answer that does not parse as the provider's.
pub(crate) fn unparseable(provider: &'static str, what: impl fmt::Display) -> RoutingError {
    RoutingError::Unavailable(format!("{provider}: unexpected answer: {what}"))
}

/// The provider's JSON `answer` as a `T`; when it is not one, what its status says: an
/// unparseable success is [`RoutingError::Unavailable`], anything else [`by_status`].
pub(crate) fn json_body<T: DeserializeOwned>(
    provider: &'static str,
    answer: &Answer,
) -> Result<T, RoutingError> {
    serde_json::from_slice(&answer.body).map_err(|e| {
        if answer.status.is_success() {
            unparseable(provider, e)
        } else {
            by_status(
                provider,
                answer.status,
                answer.retry_after,
                &excerpt(&answer.body),
            )
        }
    })
}

/// The start of a provider's text, for an error message.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A route from the provider's geometry at `precision`, totals and legs (distance, duration);
/// the pickup is the first leg's end when the request went through one.
pub(crate) fn route(
    provider: &'static str,
    request: &RouteRequest,
    geometry: &str,
    precision: u32,
    totals: (f64, f64),
    legs: &[(f64, f64)],
) -> Result<Route, RoutingError> {
    let points = rnd_domain::route::decode_with(geometry, precision)
        .ok_or_else(|| unparseable(provider, "the geometry is not an encoded polyline"))?;
    if points.is_empty() {
        return Err(unparseable(provider, "the geometry is empty"));
    }
    let expected_legs = if request.via.is_some() { 2 } else { 1 };
    if legs.len() != expected_legs {
        return Err(unparseable(
            provider,
            format_args!("{} legs for {expected_legs}", legs.len()),
        ));
    }
    let pickup = request.via.map(|_| Waypoint {
        distance_m: legs[0].0,
        duration_s: legs[0].1,
    });
    Ok(Route {
        points,
        distance_m: totals.0,
        duration_s: totals.1,
        pickup,
    })
}

/// The route of OSRM's answer, and of Mapbox's (whose Directions API grew from OSRM's): the
/// fields read of `routes[0]`.
#[derive(Debug, Deserialize)]
pub(crate) struct DirectionsRoute {
    geometry: String,
    distance: f64,
    duration: f64,
    legs: Vec<DirectionsLeg>,
}

#[derive(Debug, Deserialize)]
struct DirectionsLeg {
    distance: f64,
    duration: f64,
}

impl DirectionsRoute {
    /// The route for `request`, its geometry at `precision`.
    pub(crate) fn read(
        &self,
        provider: &'static str,
        request: &RouteRequest,
        precision: u32,
    ) -> Result<Route, RoutingError> {
        let legs: Vec<(f64, f64)> = self.legs.iter().map(|l| (l.distance, l.duration)).collect();
        route(
            provider,
            request,
            &self.geometry,
            precision,
            (self.distance, self.duration),
            &legs,
        )
    }
}

/// Runs `call` and emits its debug event: provider, outcome and time taken. Never a URL
/// (Mapbox's holds the token) nor a header.
pub(crate) async fn logged(
    provider: &'static str,
    call: impl Future<Output = Result<Route, RoutingError>>,
) -> Result<Route, RoutingError> {
    let started = Instant::now();
    let result = call.await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(route) => tracing::debug!(
            provider,
            elapsed_ms,
            distance_m = route.distance_m,
            duration_s = route.duration_s,
            "routed"
        ),
        Err(error) => tracing::debug!(provider, elapsed_ms, %error, "routing failed"),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_redacted_in_debug_and_scrubbed_from_text() {
        let secret = Secret::new("pk.abc123");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(
            secret.scrub("token pk.abc123 refused"),
            "token [redacted] refused"
        );
    }

    #[test]
    fn a_long_provider_text_is_cut_to_an_excerpt() {
        let long = "é".repeat(1_000);
        let cut = excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(excerpt(b"  short  "), "short");
    }

    #[test]
    fn a_base_url_must_be_absolute_http() {
        assert_eq!(
            base_url("osrm", "http://osrm:5000/").unwrap(),
            "http://osrm:5000"
        );
        assert!(base_url("osrm", "osrm:5000").is_err());
        assert!(base_url("osrm", "ftp://osrm").is_err());
        assert!(base_url("osrm", "").is_err());
    }
}
