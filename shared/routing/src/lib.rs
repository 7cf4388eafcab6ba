//! The [`Router`](rnd_domain::route::Router) port over three routing providers, each speaking
//! the provider's real wire format through `rnd-http-client`:
//!
//! - [`OsrmRouter`]: a self-hosted OSRM (`GET /route/v1/driving/…`, polyline at precision 5);
//!   there is no public default, so its base URL is required.
//! - [`MapboxRouter`]: Mapbox Directions v5 with the `driving-traffic` profile (`polyline6`),
//!   authenticated with an `access_token` query parameter.
//! - [`GoogleRouter`]: Google's Routes API (`POST /directions/v2:computeRoutes`, traffic aware),
//!   authenticated with the `X-Goog-Api-Key` header, answers trimmed by `X-Goog-FieldMask`.
//!
//! Each adapter makes one request per [`route`](rnd_domain::route::Router::route) call (no
//! retries: the caller owns the retry and circuit-breaking policy) and maps the provider's
//! answers to [`RoutingError`](rnd_domain::route::RoutingError) the same way: 429 is
//! `RateLimited` (with the provider's `Retry-After` or reset time), 5xx, connection failures and
//! answers that do not parse are `Unavailable`, the client's timeout is `Timeout`, 400 / 401 /
//! 403 / 422 are `Refused`, and the provider's "no route" is `NoRoute`. A route through a
//! pickup (`via`) carries the pickup as a waypoint: the first leg's distance and duration.
//!
//! Keys and tokens are secrets: no error message, log line or `Debug` output holds one (the
//! `Debug` impls are written by hand, and provider text is scrubbed of the secret before it is
//! kept in an error).
//!
//! [`RouterConfig`] picks a provider by name ([`Provider`]: `osrm`, `mapbox`, `google`) and
//! builds the adapter as an `Arc<dyn Router>`.
//!
//! With the `contract` feature, [`contract`] holds a contract server per provider: axum
//! Routers speaking the same wire formats over a deterministic synthetic street grid, with
//! scriptable failures and a request counter, for tests, the local stack and the load bench.
//!
//! # Layout
//! - `config`: [`Provider`], [`RouterConfig`], [`SetupError`].
//! - `osrm`, `mapbox`, `google`: the adapters, each with its answers' shapes and error table.
//! - `wire`: what the adapters share (coordinates, the status table, redaction, pickups, the
//!   OSRM-shaped route Mapbox answers too, the debug event of each call).
//! - [`contract`] (feature `contract`): the contract servers and their grid.

mod config;
mod google;
mod mapbox;
mod osrm;
mod wire;

#[cfg(feature = "contract")]
pub mod contract;

pub use config::{DEFAULT_REQUEST_TIMEOUT, Provider, RouterConfig, SetupError, UnknownProvider};
pub use google::{GOOGLE_DEFAULT_BASE_URL, GOOGLE_FIELD_MASK, GoogleRouter};
pub use mapbox::{MAPBOX_DEFAULT_BASE_URL, MapboxRouter};
pub use osrm::OsrmRouter;
