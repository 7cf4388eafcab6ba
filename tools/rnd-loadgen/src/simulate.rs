//! `rnd-loadgen simulate`: a live scenario against a running stack, over its public APIs only.
//!
//! For each of `orders` orders, at once: a chef (with a pickup location around central Austin),
//! a customer and a driver save their profiles; the customer places an order; the admin
//! confirms the payment and, once the chef has accepted it and marked it ready, assigns the
//! driver; the driver picks it up, starts the trip and streams `driver:location` over the
//! WebSocket API along the straight line from the chef to the customer at `speed_mps`, one
//! report every `interval`; then delivers it. Tokens are signed with the stack's secret.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// How to run a simulation.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// The stack, `http://HOST:PORT`.
    pub url: String,
    /// How many orders to run at once.
    pub orders: u32,
    /// The secret to sign tokens with (the stack's).
    pub jwt_secret: String,
    /// Driving speed, m/s (8.3 ≈ 30 km/h in town).
    pub speed_mps: f64,
    /// Time between two location reports of a driver (the stack accepts one a second).
    pub interval: Duration,
    /// Pause between two lifecycle steps of an order.
    pub step_pause: Duration,
    /// Show a progress bar on stderr (drawn only on a terminal).
    pub progress: bool,
    /// Drive along this OSRM server's routes (its base URL) instead of straight lines.
    pub osrm: Option<String>,
}

impl SimulateOptions {
    /// The defaults of `rnd-loadgen simulate` against `url`.
    pub fn new(url: impl Into<String>, orders: u32, jwt_secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            orders,
            jwt_secret: jwt_secret.into(),
            speed_mps: 8.3,
            interval: Duration::from_secs(2),
            step_pause: Duration::from_millis(500),
            progress: true,
            osrm: None,
        }
    }
}

/// How one simulated order ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedOrder {
    /// The order.
    pub order_id: String,
    /// Its number (`RND-…`).
    pub order_number: String,
    /// Its final status, as `GET /orders/{id}/tracking` answers it.
    pub status: String,
    /// Location reports the stack accepted.
    pub locations_accepted: u32,
}

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The URL is not `http://HOST:PORT`.
    #[error("the URL must be http://HOST:PORT, not {0}")]
    Url(String),
    /// The stack could not be reached.
    #[error("could not reach the stack")]
    Io(#[from] std::io::Error),
    /// An HTTP request to the stack failed (connection, protocol).
    #[error("HTTP request to the stack failed")]
    Request(#[from] hyper_util::client::legacy::Error),
    /// An HTTP response could not be read.
    #[error("could not read the stack's HTTP response")]
    Response(#[from] hyper::Error),
    /// The stack answered an HTTP request with an error.
    #[error("{method} {path} answered {status}: {body}")]
    Http {
        /// The method.
        method: &'static str,
        /// The path.
        path: String,
        /// The status.
        status: u16,
        /// The body.
        body: String,
    },
    /// The stack's answer was not what the API promises.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The WebSocket API failed.
    #[error("WebSocket")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// A token could not be issued.
    #[error("could not issue a token")]
    Token(#[from] rnd_local::TokenError),
    /// The OSRM server to drive along gave no route.
    #[error("the OSRM server gave no route")]
    Routing(#[from] rnd_domain::route::RoutingError),
    /// The OSRM server's URL is unusable.
    #[error("the OSRM server's URL is unusable")]
    RoutingSetup(#[from] rnd_routing::SetupError),
}

/// Central Austin, where the simulated chefs cook.
const CENTRE: (f64, f64) = (30.2672, -97.7431);
const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// A straight line from `from` to `to` cut into steps of at most `step_m` metres: the points
/// after `from`, ending at `to`.
pub fn straight_path(from: (f64, f64), to: (f64, f64), step_m: f64) -> Vec<(f64, f64)> {
    let distance = distance_m(from, to);
    let steps = (distance / step_m.max(1.0)).ceil().max(1.0) as u32;
    (1..=steps)
        .map(|i| {
            let f = f64::from(i) / f64::from(steps);
            (from.0 + (to.0 - from.0) * f, from.1 + (to.1 - from.1) * f)
        })
        .collect()
}

/// The points of `line` (after its first) resampled every `step_m` metres along it, ending at
/// its last point: a driver following a road at a steady pace.
pub fn path_along(line: &[(f64, f64)], step_m: f64) -> Vec<(f64, f64)> {
    let step_m = step_m.max(1.0);
    let mut out = Vec::new();
    let mut carried = 0.0; // metres driven since the last reported point
    for pair in line.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let length = distance_m(a, b);
        let mut at = step_m - carried; // where the next report falls on this segment
        while at <= length {
            let f = at / length;
            out.push((a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f));
            at += step_m;
        }
        carried = length - (at - step_m);
    }
    if let Some(last) = line.last().filter(|l| out.last() != Some(*l)) {
        out.push(*last);
    }
    out
}

/// The route from `from` to `to` of the OSRM server `router`, as points.
async fn osrm_route(
    router: &rnd_routing::OsrmRouter,
    from: (f64, f64),
    to: (f64, f64),
) -> Result<Vec<(f64, f64)>, SimulateError> {
    use rnd_domain::route::{RouteRequest, Router, RoutingError};
    let point = |(lat, lng): (f64, f64)| {
        rnd_domain::geo::GeoPoint::parse(lat, lng)
            .map_err(|e| RoutingError::Refused(format!("{} {}", e.field, e.message)))
    };
    let route = router
        .route(&RouteRequest {
            from: point(from)?,
            via: None,
            to: point(to)?,
        })
        .await?;
    Ok(route
        .points
        .iter()
        .map(|p| (p.latitude.get(), p.longitude.get()))
        .collect())
}

/// Great-circle distance, metres.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dla = la2 - la1;
    let dlo = (b.1 - a.1).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// The stack at `http://HOST:PORT` and an HTTP/1.1 client for it (hyper's, pooled).
#[derive(Debug, Clone)]
pub(crate) struct Client {
    authority: String,
    http: HttpClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub(crate) fn new(url: &str) -> Result<Self, SimulateError> {
        let authority = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| SimulateError::Url(url.to_owned()))?;
        Ok(Self {
            authority: authority.to_owned(),
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// `HOST:PORT`.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// `method path` with the bearer `token` and a JSON `body`; the JSON answer (`Null` when
    /// empty). Fails with [`SimulateError::Http`] on a non-2xx answer.
    pub(crate) async fn call(
        &self,
        method: &'static str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Value, SimulateError> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.authority))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/json");
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SimulateError::Protocol(format!("{method} {path}: {e}")))?;
        let response = self.http.request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !(200..300).contains(&status) {
            return Err(SimulateError::Http {
                method,
                path: path.to_owned(),
                status,
                body: text,
            });
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| SimulateError::Protocol(format!("{method} {path}: {e}")))
    }
}

/// Counts the work done, for the progress bar.
pub(crate) trait Tick: Send + Sync {
    fn tick(&self, message: Option<String>);
}

impl Tick for indicatif::ProgressBar {
    fn tick(&self, message: Option<String>) {
        self.inc(1);
        if let Some(m) = message {
            self.set_message(m);
        }
    }
}

/// Lifecycle steps of one order counted by the progress bar (profiles … deliver).
const STEPS_PER_ORDER: u64 = 9;

struct Plan {
    index: u32,
    chef: (f64, f64),
    customer: (f64, f64),
    path: Vec<(f64, f64)>,
}

/// Runs the scenario: every order through its whole lifecycle, at once. Returns how each
/// ended, in order.
///
/// Fails on the first error of any order (an unreachable stack, a refused request, a closed
/// WebSocket).
pub async fn run(options: &SimulateOptions) -> Result<Vec<SimulatedOrder>, SimulateError> {
    let client = Client::new(&options.url)?;
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let step_m = options.speed_mps * options.interval.as_secs_f64();
    let mut plans: Vec<Plan> = (0..options.orders)
        .map(|index| {
            // Chefs within ~2 km of the centre; customers 1–3 km from their chef.
            let chef = (
                CENTRE.0 + (fastrand::f64() - 0.5) * 0.036,
                CENTRE.1 + (fastrand::f64() - 0.5) * 0.04,
            );
            let angle = fastrand::f64() * std::f64::consts::TAU;
            let reach_m = 1000.0 + fastrand::f64() * 2000.0;
            let customer = (
                chef.0 + (reach_m * angle.sin() / EARTH_RADIUS_M).to_degrees(),
                chef.1
                    + (reach_m * angle.cos() / (EARTH_RADIUS_M * chef.0.to_radians().cos()))
                        .to_degrees(),
            );
            let path = straight_path(chef, customer, step_m);
            Plan {
                index,
                chef,
                customer,
                path,
            }
        })
        .collect();
    // Along the roads of an OSRM server, when given one: what a routed ETA follows.
    if let Some(osrm) = &options.osrm {
        let http = rnd_http_client::HttpClient::new(rnd_routing::DEFAULT_REQUEST_TIMEOUT)?;
        let router = rnd_routing::OsrmRouter::new(osrm, http)?;
        for plan in &mut plans {
            plan.path = path_along(
                &osrm_route(&router, plan.chef, plan.customer).await?,
                step_m,
            );
        }
    }
    let total: u64 = plans
        .iter()
        .map(|p| STEPS_PER_ORDER + p.path.len() as u64 + 1)
        .sum();
    let bar = if options.progress {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let admin = rnd_local::issue_token(
        &options.jwt_secret,
        &format!("sim-admin-{run_id}"),
        "admin",
        Some("Simulated Admin"),
        Duration::from_secs(3600),
    )?;
    let runs = plans.into_iter().map(|plan| {
        let client = client.clone();
        let admin = admin.clone();
        let bar = bar.clone();
        async move { run_order(options, &client, run_id, &admin, plan, &bar).await }
    });
    let results = futures::future::try_join_all(runs).await;
    bar.finish_with_message("done");
    results
}

/// What [`order_in_transit`] needs besides the order's own plan.
pub(crate) struct OrderSetup<'a> {
    /// The stack's HTTP API.
    pub(crate) client: &'a Client,
    /// The secret to sign tokens with.
    pub(crate) jwt_secret: &'a str,
    /// Makes this run's user ids unique (`sim-{role}-{run_id}-{n}`).
    pub(crate) run_id: &'a str,
    /// The admin token that confirms payments and assigns drivers.
    pub(crate) admin: &'a str,
    /// Pause between two lifecycle steps.
    pub(crate) step_pause: Duration,
}

/// An order driven to `in_transit`, and the tokens of its three users.
#[derive(Debug, Clone)]
pub(crate) struct PreparedOrder {
    pub(crate) order_id: String,
    pub(crate) order_number: String,
    pub(crate) chef: String,
    pub(crate) customer: String,
    pub(crate) driver: String,
}

/// Order number `n` of the run, over the HTTP API only: the chef (cooking at `chef_at`), the
/// customer and the driver save their profiles, the customer orders (delivery to
/// `customer_at`), the admin confirms the payment, the chef accepts and marks it ready, the
/// admin assigns the driver, who picks it up and starts the trip.
///
/// Fails on the first refused request or an unreachable stack.
pub(crate) async fn order_in_transit(
    setup: &OrderSetup<'_>,
    n: u32,
    chef_at: (f64, f64),
    customer_at: (f64, f64),
    progress: &dyn Tick,
) -> Result<PreparedOrder, SimulateError> {
    let (client, run_id, admin) = (setup.client, setup.run_id, setup.admin);
    let token = |role: &str, name: String| {
        rnd_local::issue_token(
            setup.jwt_secret,
            &format!("sim-{role}-{run_id}-{n}"),
            role,
            Some(&name),
            Duration::from_secs(3600),
        )
    };
    let chef = token("chef", format!("Chef {n}"))?;
    let customer = token("customer", format!("Customer {n}"))?;
    let driver_id = format!("sim-driver-{run_id}-{n}");
    let driver = token("driver", format!("Driver {n}"))?;

    client
        .call(
            "PUT",
            "/profiles/me",
            &chef,
            Some(&json!({
                "name": format!("Chef {n}"), "businessName": format!("Kitchen {n}"),
                "address": format!("{n} Simulated St, Austin, TX"),
                "latitude": chef_at.0, "longitude": chef_at.1,
            })),
        )
        .await?;
    client
        .call(
            "PUT",
            "/profiles/me",
            &customer,
            Some(&json!({"name": format!("Customer {n}")})),
        )
        .await?;
    client
        .call(
            "PUT",
            "/profiles/me",
            &driver,
            Some(&json!({"name": format!("Driver {n}"), "phone": "+1 512 555 0100"})),
        )
        .await?;
    progress.tick(Some(format!("order {n}: profiles saved")));

    let order = client
        .call(
            "POST",
            "/orders",
            &customer,
            Some(&json!({
                "chefId": format!("sim-chef-{run_id}-{n}"),
                "deliveryAddress": format!("{n} Customer Ave, Austin, TX"),
                "deliveryLatitude": customer_at.0, "deliveryLongitude": customer_at.1,
                "items": [{"name": "Tamales", "quantity": 6}],
            })),
        )
        .await?;
    let order_id = order["orderId"]
        .as_str()
        .ok_or_else(|| SimulateError::Protocol(format!("no orderId in {order}")))?
        .to_owned();
    let order_number = order["orderNumber"].as_str().unwrap_or_default().to_owned();
    progress.tick(Some(format!("{order_number}: placed")));

    let assign = json!({ "driverId": driver_id });
    let steps: [(&str, &str, Option<&Value>); 6] = [
        (admin, "confirm-payment", None),
        (&chef, "accept", None),
        (&chef, "ready", None),
        (admin, "assign", Some(&assign)),
        (&driver, "pickup", None),
        (&driver, "in-transit", None),
    ];
    for (who, action, body) in steps {
        tokio::time::sleep(setup.step_pause).await;
        client
            .call("POST", &format!("/orders/{order_id}/{action}"), who, body)
            .await?;
        progress.tick(Some(format!("{order_number}: {action}")));
    }

    Ok(PreparedOrder {
        order_id,
        order_number,
        chef,
        customer,
        driver,
    })
}

async fn run_order(
    options: &SimulateOptions,
    client: &Client,
    run_id: &str,
    admin: &str,
    plan: Plan,
    progress: &dyn Tick,
) -> Result<SimulatedOrder, SimulateError> {
    let setup = OrderSetup {
        client,
        jwt_secret: &options.jwt_secret,
        run_id,
        admin,
        step_pause: options.step_pause,
    };
    let PreparedOrder {
        order_id,
        order_number,
        customer,
        driver,
        ..
    } = order_in_transit(&setup, plan.index + 1, plan.chef, plan.customer, progress).await?;

    // The drive: the chef's door, then each point of the straight line to the customer.
    let ws_url = format!("ws://{}/realtime?token={driver}", client.authority);
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await?;
    let mut accepted = 0;
    for (i, point) in std::iter::once(plan.chef).chain(plan.path).enumerate() {
        if i > 0 {
            tokio::time::sleep(options.interval).await;
        }
        accepted += report(&mut ws, &order_id, point).await?;
        progress.tick(None);
    }
    let _ = ws.close(None).await;

    tokio::time::sleep(options.step_pause).await;
    client
        .call(
            "POST",
            &format!("/orders/{order_id}/deliver"),
            &driver,
            None,
        )
        .await?;
    let tracking = client
        .call(
            "GET",
            &format!("/orders/{order_id}/tracking"),
            &customer,
            None,
        )
        .await?;
    let status = tracking["status"].as_str().unwrap_or_default().to_owned();
    progress.tick(Some(format!("{order_number}: {status}")));
    Ok(SimulatedOrder {
        order_id,
        order_number,
        status,
        locations_accepted: accepted,
    })
}

/// Sends one `driver:location` and waits for its acknowledgement; a rate-limited report is
/// sent again after `retryAfterMs`. Returns 1 when accepted, 0 when refused otherwise.
async fn report<S>(ws: &mut S, order_id: &str, (lat, lng): (f64, f64)) -> Result<u32, SimulateError>
where
    S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    let message = json!({
        "action": "driver:location", "orderId": order_id,
        "latitude": lat, "longitude": lng,
    })
    .to_string();
    for _ in 0..5 {
        ws.send(Message::text(message.clone())).await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .map_err(|_| SimulateError::Protocol("no acknowledgement in 10 s".into()))?
                .ok_or_else(|| SimulateError::Protocol("the WebSocket closed".into()))??;
            let Message::Text(text) = frame else { continue };
            let event: Value = serde_json::from_str(text.as_str())
                .map_err(|e| SimulateError::Protocol(e.to_string()))?;
            match event["event"].as_str() {
                Some("driver:location_acknowledged") => {
                    let data = &event["data"];
                    if data["accepted"] == true {
                        return Ok(1);
                    }
                    if data["reason"] == "rate_limited" {
                        let wait = data["retryAfterMs"].as_u64().unwrap_or(1000);
                        tokio::time::sleep(Duration::from_millis(wait + 50)).await;
                        break;
                    }
                    return Ok(0);
                }
                Some("error") => return Err(SimulateError::Protocol(event.to_string())),
                _ => {}
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_path_ends_at_the_customer_in_steps_no_longer_than_asked() {
        let (from, to) = ((30.2672, -97.7431), (30.2850, -97.7300));
        let path = straight_path(from, to, 200.0);
        assert_eq!(*path.last().unwrap(), to);
        let mut previous = from;
        for p in &path {
            assert!(distance_m(previous, *p) <= 200.0 + 1e-6);
            previous = *p;
        }
        assert!(path.len() >= 2);
    }

    #[test]
    fn a_path_along_a_road_keeps_to_its_corners_at_a_steady_step_and_ends_at_its_end() {
        // GIVEN an L: ~1 km north, then ~480 m east
        let road = [
            (30.2672, -97.7431),
            (30.2762, -97.7431),
            (30.2762, -97.7381),
        ];
        // WHEN it is driven in steps of 100 m
        let path = path_along(&road, 100.0);
        // THEN each step is 100 m along the road (the one around the corner cuts it, so is
        // shorter in a straight line), the corner is passed, and it ends at the road's end
        let total = distance_m(road[0], road[1]) + distance_m(road[1], road[2]);
        assert_eq!(path.len(), (total / 100.0).ceil() as usize);
        let mut previous = road[0];
        for p in &path {
            assert!(distance_m(previous, *p) <= 100.0 + 1e-6);
            previous = *p;
        }
        assert_eq!(*path.last().unwrap(), road[2]);
        assert!(
            path.iter()
                .all(|p| p.1 <= -97.7381 + 1e-9 && p.0 <= 30.2762 + 1e-9)
        );
        assert!(
            path.iter()
                .any(|p| (p.0 - 30.2762).abs() < 1e-9 && p.1 > -97.7431)
        );
    }

    #[test]
    fn only_a_plain_http_host_and_port_is_accepted_as_the_stack() {
        assert!(Client::new("https://x").is_err());
        assert!(Client::new("http://127.0.0.1:9001/path").is_err());
        assert!(Client::new("http://127.0.0.1:9001/").is_ok());
    }
}
