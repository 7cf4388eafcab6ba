//! The routed ETA against a scripted routing provider (a `Router` of the test's own): it routes
//! once per leg and follows the kept route, routes again after a detour, falls back to the
//! offline estimate within its budget when the provider is slow or broken, and stops calling a
//! broken provider. (The providers' own adapters are tested against their contract servers in
//! `rnd-routing`.)

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rnd_domain::eta::{EtaEstimate, EtaEstimator, EtaRequest, OfflineEta};
use rnd_domain::geo::GeoPoint;
use rnd_domain::ids::OrderId;
use rnd_domain::live::EtaSource;
use rnd_domain::order::OrderStatus;
use rnd_domain::route::{ReroutePolicy, Route, RouteRequest, Router, RoutingError, Waypoint};
use rnd_handlers::routed_eta::{BreakerSettings, RoutedEta, RoutingBudget};

/// What the scripted provider does.
#[derive(Debug, Clone)]
enum Behaviour {
    /// A straight road from → (via) → to, a point every ~100 m, at 10 m/s.
    Road,
    /// Answers after this long.
    Slow(Duration),
    /// Fails with this.
    Fail(RoutingError),
}

struct Scripted {
    behaviour: Mutex<Behaviour>,
    calls: AtomicU64,
}

impl Scripted {
    fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour: Mutex::new(behaviour),
            calls: AtomicU64::new(0),
        })
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn straight(a: GeoPoint, b: GeoPoint) -> Vec<GeoPoint> {
    let steps = (a.distance_m(&b) / 100.0).ceil().max(1.0) as u32;
    (0..=steps)
        .map(|i| {
            let f = f64::from(i) / f64::from(steps);
            GeoPoint::parse(
                a.latitude.get() + f * (b.latitude.get() - a.latitude.get()),
                a.longitude.get() + f * (b.longitude.get() - a.longitude.get()),
            )
            .unwrap()
        })
        .collect()
}

#[async_trait]
impl Router for Scripted {
    fn provider(&self) -> &'static str {
        "scripted"
    }

    async fn route(&self, request: &RouteRequest) -> Result<Route, RoutingError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let behaviour = self.behaviour.lock().unwrap().clone();
        match behaviour {
            Behaviour::Road => {}
            Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
            Behaviour::Fail(e) => return Err(e),
        }
        let mut points = Vec::new();
        let mut pickup = None;
        if let Some(via) = request.via {
            points.extend(straight(request.from, via));
            let d = request.from.distance_m(&via);
            pickup = Some(Waypoint {
                distance_m: d,
                duration_s: d / 10.0,
            });
            points.pop();
            points.extend(straight(via, request.to));
        } else {
            points.extend(straight(request.from, request.to));
        }
        let distance_m: f64 = points.windows(2).map(|w| w[0].distance_m(&w[1])).sum();
        Ok(Route {
            points,
            distance_m,
            duration_s: distance_m / 10.0,
            pickup,
        })
    }
}

fn p(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint::parse(lat, lon).unwrap()
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

const CHEF: (f64, f64) = (30.2672, -97.7431);
const CUSTOMER: (f64, f64) = (30.3072, -97.7431); // ~4.4 km north

fn estimator(router: &Arc<Scripted>, budget: RoutingBudget, breaker: BreakerSettings) -> RoutedEta {
    RoutedEta::new(
        Arc::clone(router) as Arc<dyn Router>,
        OfflineEta::default(),
        ReroutePolicy::default(),
        budget,
        breaker,
    )
}

fn request(order: &str, status: OrderStatus, at: GeoPoint, now: DateTime<Utc>) -> EtaRequest {
    EtaRequest {
        order_id: OrderId::parse(order).unwrap(),
        driver: at,
        pickup: p(CHEF.0, CHEF.1),
        dropoff: p(CUSTOMER.0, CUSTOMER.1),
        status,
        reported_speed_mps: Some(10.0),
        observed_speed_mps: None,
        route: None,
        now,
    }
}

/// Drives on: the next request carries the route the last estimate kept (as the live item does).
fn then(
    previous: &EtaRequest,
    estimate: &EtaEstimate,
    at: GeoPoint,
    now: DateTime<Utc>,
) -> EtaRequest {
    EtaRequest {
        driver: at,
        route: estimate.route.clone().or_else(|| previous.route.clone()),
        now,
        ..previous.clone()
    }
}

#[tokio::test]
async fn a_driver_on_the_route_is_followed_without_new_calls_and_the_eta_counts_down() {
    // GIVEN a provider and a driver in transit at the chef's, with no route yet
    let router = Scripted::new(Behaviour::Road);
    let eta = estimator(
        &router,
        RoutingBudget::default(),
        BreakerSettings::default(),
    );
    let mut req = request("order-1", OrderStatus::InTransit, p(CHEF.0, CHEF.1), t(0));
    // WHEN the first location comes THEN it is routed: one call, a route to keep, a routed ETA
    let first = eta.estimate(&req).await;
    assert_eq!(router.calls(), 1);
    assert!(first.route.is_some());
    assert_eq!(first.eta.source, EtaSource::Route);
    assert_eq!(first.eta.estimated_pickup_time, None);
    // WHEN the driver moves up the road every 5 s for 50 s (on the route's pace)
    let mut last = first.clone();
    for i in 1..=10 {
        let at = p(CHEF.0 + f64::from(i) * 0.00045, CHEF.1); // 50 m per 5 s
        req = then(&req, &last, at, t(5 * i64::from(i)));
        let next = eta.estimate(&req).await;
        // THEN each is followed along the kept route: no call, nothing new to keep, and the
        // arrival time holds while the distance left shrinks
        assert_eq!(next.route, None, "location {i}");
        assert_eq!(next.eta.source, EtaSource::Route);
        assert!(next.distance_m < last.distance_m, "location {i}");
        let drift = (next.eta.estimated_delivery_time - first.eta.estimated_delivery_time)
            .num_seconds()
            .abs();
        assert!(drift <= 5, "location {i}: the arrival moved {drift} s");
        last = next;
    }
    assert_eq!(router.calls(), 1);
    let counts = eta.stats().snapshot();
    assert_eq!((counts.calls, counts.routed, counts.followed), (1, 1, 10));
}

#[tokio::test]
async fn before_the_pickup_the_route_goes_through_the_chef_and_says_when_the_driver_gets_there() {
    let router = Scripted::new(Behaviour::Road);
    let eta = estimator(
        &router,
        RoutingBudget::default(),
        BreakerSettings::default(),
    );
    // GIVEN a driver assigned 2 km south of the chef
    let req = request(
        "order-1",
        OrderStatus::AssignedToDriver,
        p(30.2492, -97.7431),
        t(0),
    );
    // WHEN the first location comes
    let first = eta.estimate(&req).await;
    // THEN the route runs through the chef, and the ETA says when the driver reaches the chef
    // (~200 s at 10 m/s) and the door (+ 2 minutes at the chef's + ~440 s)
    let route = first.route.expect("routed");
    assert_eq!(route.leg, rnd_domain::route::RouteLeg::ViaPickup);
    let at_chef = first.eta.estimated_pickup_time.expect("pickup time");
    assert!(
        ((at_chef - t(0)).num_seconds() - 200).abs() <= 5,
        "{at_chef}"
    );
    let at_door = (first.eta.estimated_delivery_time - t(0)).num_seconds();
    assert!((at_door - (200 + 120 + 445)).abs() <= 10, "{at_door}");
    // AND after the pickup, the next location routes the new leg to the customer
    let picked = EtaRequest {
        status: OrderStatus::PickedUp,
        route: Some(route),
        driver: p(CHEF.0, CHEF.1),
        now: t(400),
        ..req
    };
    let next = eta.estimate(&picked).await;
    assert_eq!(router.calls(), 2);
    assert_eq!(
        next.route.map(|r| r.leg),
        Some(rnd_domain::route::RouteLeg::ToDropoff)
    );
    assert_eq!(next.eta.estimated_pickup_time, None);
}

#[tokio::test]
async fn a_detour_off_the_route_is_routed_again_once_the_minimum_interval_has_passed() {
    let router = Scripted::new(Behaviour::Road);
    let eta = estimator(
        &router,
        RoutingBudget::default(),
        BreakerSettings::default(),
    );
    let req = request("order-1", OrderStatus::InTransit, p(CHEF.0, CHEF.1), t(0));
    let first = eta.estimate(&req).await;
    // WHEN the driver turns off 1 km east, 30 s later THEN the route is still followed
    let detour = p(CHEF.0 + 0.002, CHEF.1 + 0.0104);
    let early = eta.estimate(&then(&req, &first, detour, t(30))).await;
    assert_eq!((router.calls(), early.route.is_none()), (1, true));
    // WHEN still off the route after the minimum interval THEN it is routed again from there
    let late = eta.estimate(&then(&req, &first, detour, t(61))).await;
    assert_eq!(router.calls(), 2);
    let new_route = late.route.expect("rerouted");
    let starts = new_route.points()[0];
    assert!(
        starts.distance_m(&detour) < 5.0,
        "the new route starts at the driver"
    );
}

#[tokio::test]
async fn a_provider_slower_than_the_budget_falls_back_to_the_estimate_within_the_deadline() {
    // GIVEN a provider that answers after 5 s, and a budget of 100 ms per attempt, 250 ms in all
    let router = Scripted::new(Behaviour::Slow(Duration::from_secs(5)));
    let budget = RoutingBudget {
        attempt_timeout: Duration::from_millis(100),
        deadline: Duration::from_millis(250),
        retries: 3,
    };
    let eta = estimator(&router, budget, BreakerSettings::default());
    // WHEN a location wants a route
    let started = std::time::Instant::now();
    let got = eta
        .estimate(&request(
            "order-1",
            OrderStatus::InTransit,
            p(CHEF.0, CHEF.1),
            t(0),
        ))
        .await;
    let waited = started.elapsed();
    // THEN it tried twice (a retry fits the deadline, a third would not), and the offline estimate
    // answered well before the provider would have
    assert_eq!(router.calls(), 2);
    assert_eq!(got.eta.source, EtaSource::Estimate);
    assert_eq!(got.route, None);
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[tokio::test]
async fn a_broken_provider_opens_the_breaker_and_a_trial_call_closes_it_again() {
    // GIVEN a provider that fails, and a breaker opening after 3 failed locations for 300 ms
    let router = Scripted::new(Behaviour::Fail(RoutingError::Unavailable("503".into())));
    let breaker = BreakerSettings {
        failures_to_open: 3,
        open_for: Duration::from_millis(300),
    };
    let budget = RoutingBudget {
        attempt_timeout: Duration::from_millis(100),
        deadline: Duration::from_millis(1_000),
        retries: 1,
    };
    let eta = estimator(&router, budget, breaker);
    let at = p(CHEF.0, CHEF.1);
    // WHEN five orders' first locations come
    for i in 0..5 {
        let got = eta
            .estimate(&request(
                &format!("order-{i}"),
                OrderStatus::InTransit,
                at,
                t(i),
            ))
            .await;
        assert_eq!(got.eta.source, EtaSource::Estimate);
    }
    // THEN only the first three called (twice each: one retry); two were cut short
    assert_eq!(router.calls(), 6);
    let counts = eta.stats().snapshot();
    assert_eq!(
        (counts.estimated, counts.failures, counts.short_circuited),
        (5, 6, 2)
    );
    // WHEN the provider recovers and the open time passes THEN one trial call goes and succeeds,
    // and calls flow again
    router.set(Behaviour::Road);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let trial = eta
        .estimate(&request("order-9", OrderStatus::InTransit, at, t(9)))
        .await;
    assert_eq!(trial.eta.source, EtaSource::Route);
    let after = eta
        .estimate(&request("order-10", OrderStatus::InTransit, at, t(10)))
        .await;
    assert_eq!(after.eta.source, EtaSource::Route);
    assert_eq!(router.calls(), 8);
}

#[tokio::test]
async fn an_order_whose_call_failed_is_not_routed_again_before_the_minimum_interval() {
    // GIVEN a provider that finds no road to this customer
    let router = Scripted::new(Behaviour::Fail(RoutingError::NoRoute));
    let eta = estimator(
        &router,
        RoutingBudget::default(),
        BreakerSettings::default(),
    );
    let at = p(CHEF.0, CHEF.1);
    // WHEN the driver reports every 5 s for 55 s
    for i in 0..12 {
        let got = eta
            .estimate(&request("order-1", OrderStatus::InTransit, at, t(5 * i)))
            .await;
        assert_eq!(got.eta.source, EtaSource::Estimate);
    }
    // THEN one call was made (no retry for a final answer), and the breaker stayed closed
    assert_eq!(router.calls(), 1);
    // AND after the interval it is tried again
    eta.estimate(&request("order-1", OrderStatus::InTransit, at, t(61)))
        .await;
    assert_eq!(router.calls(), 2);
    // AND outside a driver phase nothing is routed at all
    eta.estimate(&request("order-2", OrderStatus::Accepted, at, t(62)))
        .await;
    assert_eq!(router.calls(), 2);
}

#[test]
fn the_routing_counters_become_an_emf_line_only_when_a_call_was_made_wanted_or_cut_short() {
    use rnd_handlers::routed_eta::RoutingCounts;
    let before = RoutingCounts {
        calls: 3,
        routed: 3,
        followed: 40,
        ..RoutingCounts::default()
    };
    // GIVEN a location followed along its route THEN nothing is printed
    let followed = RoutingCounts {
        followed: 41,
        ..before
    };
    assert_eq!(followed.emf_since(&before, t(0)), None);
    // GIVEN a failed call answered by the estimate THEN one line says so, in CloudWatch's format
    let failed = RoutingCounts {
        calls: 5,
        failures: 2,
        estimated: 1,
        ..before
    };
    let line: serde_json::Value =
        serde_json::from_str(&failed.emf_since(&before, t(0)).expect("a line")).unwrap();
    assert_eq!(line["Function"], "driver:location");
    assert_eq!(
        (
            &line["RoutingCalls"],
            &line["RoutingFailures"],
            &line["Estimated"]
        ),
        (&2.into(), &2.into(), &1.into())
    );
    let metrics = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(metrics["Namespace"], "RndRealtime");
    assert_eq!(metrics["Metrics"].as_array().map(Vec::len), Some(6));
}
