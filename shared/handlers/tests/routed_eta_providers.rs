//! The routed ETA over the real adapters of OSRM, Mapbox and Google, each against its contract
//! server (the provider's own request and answer formats, over a synthetic street grid: north or
//! south first, then east or west): a driver on the route is followed without new requests, a
//! detour is routed again, a slow provider falls back to the estimate within the budget, and a
//! broken one opens the breaker so that no more requests go.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rnd_domain::eta::{EtaEstimator, EtaRequest, OfflineEta};
use rnd_domain::geo::GeoPoint;
use rnd_domain::ids::OrderId;
use rnd_domain::live::EtaSource;
use rnd_domain::order::OrderStatus;
use rnd_domain::route::{ReroutePolicy, StoredRoute};
use rnd_handlers::routed_eta::{BreakerSettings, RoutedEta, RoutingBudget};
use rnd_routing::contract::{ContractServer, Fault, Served};
use rnd_routing::{Provider, RouterConfig};

const SECRET: &str = "contract-secret-0123456789";

/// Each provider's contract server, served, and the routed ETA over its adapter.
async fn providers(budget: RoutingBudget, breaker: BreakerSettings) -> Vec<(Served, RoutedEta)> {
    let mut out = Vec::new();
    for provider in [Provider::Osrm, Provider::Mapbox, Provider::Google] {
        let server = match provider {
            Provider::Osrm => ContractServer::osrm(),
            Provider::Mapbox => ContractServer::mapbox(SECRET),
            Provider::Google => ContractServer::google(SECRET),
        };
        let served = server.serve().await.expect("the contract server serves");
        let router = RouterConfig {
            provider,
            base_url: Some(served.base_url().to_owned()),
            secret: provider.needs_secret().then(|| SECRET.to_owned()),
        }
        .build(rnd_http_client::HttpClient::new(Duration::from_secs(5)).expect("a client"))
        .expect("the adapter builds");
        let eta = RoutedEta::new(
            router,
            OfflineEta::default(),
            ReroutePolicy::default(),
            budget,
            breaker,
        );
        out.push((served, eta));
    }
    out
}

fn p(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint::parse(lat, lon).unwrap()
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

/// The chef's and the customer's: the customer 3.3 km north and 1 km east.
const CHEF: (f64, f64) = (30.2672, -97.7431);
const CUSTOMER: (f64, f64) = (30.2972, -97.7331);

/// A location of order `order`'s driver at `at`, with the route the live item keeps.
fn request(
    order: &str,
    at: GeoPoint,
    now: DateTime<Utc>,
    route: Option<&StoredRoute>,
) -> EtaRequest {
    EtaRequest {
        order_id: OrderId::parse(order).unwrap(),
        driver: at,
        pickup: p(CHEF.0, CHEF.1),
        dropoff: p(CUSTOMER.0, CUSTOMER.1),
        status: OrderStatus::InTransit,
        reported_speed_mps: Some(8.3),
        observed_speed_mps: None,
        route: route.cloned(),
        now,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_on_the_providers_route_is_followed_without_new_requests_and_a_detour_is_routed_again()
 {
    for (server, eta) in providers(RoutingBudget::default(), BreakerSettings::default()).await {
        let name = server.provider();
        // GIVEN a driver in transit at the chef's: the first location is routed
        let first = eta
            .estimate(&request("order-1", p(CHEF.0, CHEF.1), t(0), None))
            .await;
        assert_eq!(first.eta.source, EtaSource::Route, "{name}");
        assert_eq!(server.requests(), 1, "{name}");
        // WHEN the driver drives the grid's first stretch north, a location every 5 s for 50 s
        let kept = first.route.expect("a route to keep");
        for i in 1..=10 {
            let at = p(CHEF.0 + f64::from(i) * 0.0004, CHEF.1);
            let next = eta
                .estimate(&request("order-1", at, t(5 * i64::from(i)), Some(&kept)))
                .await;
            // THEN each is followed along the kept route: no request, the ETA still routed
            assert_eq!(next.eta.source, EtaSource::Route, "{name} location {i}");
            assert!(next.route.is_none(), "{name} location {i}");
        }
        assert_eq!(server.requests(), 1, "{name}");
        // WHEN the driver turns off 1 km west, a minute and a half after the route
        let detour = p(CHEF.0 + 0.004, CHEF.1 - 0.0104);
        let rerouted = eta
            .estimate(&request("order-1", detour, t(90), Some(&kept)))
            .await;
        // THEN the provider is asked again, from where the driver is
        assert_eq!(server.requests(), 2, "{name}");
        let route = rerouted.route.expect("a new route");
        assert!(route.points()[0].distance_m(&detour) < 5.0, "{name}");
        assert_eq!(route.provider, name.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_provider_falls_back_to_the_estimate_within_the_budget() {
    let budget = RoutingBudget {
        attempt_timeout: Duration::from_millis(200),
        deadline: Duration::from_millis(500),
        retries: 1,
    };
    for (server, eta) in providers(budget, BreakerSettings::default()).await {
        let name = server.provider();
        // GIVEN a provider answering after 3 s
        server.fail(Fault::Delay(Duration::from_secs(3)));
        // WHEN a location wants a route
        let started = std::time::Instant::now();
        let got = eta
            .estimate(&request("order-1", p(CHEF.0, CHEF.1), t(0), None))
            .await;
        // THEN the estimate answers after two attempts, well before the provider would have
        assert_eq!(got.eta.source, EtaSource::Estimate, "{name}");
        assert!(got.route.is_none(), "{name}");
        assert_eq!(server.requests(), 2, "{name}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_provider_opens_the_breaker_and_no_more_requests_go() {
    let breaker = BreakerSettings {
        failures_to_open: 3,
        open_for: Duration::from_secs(60),
    };
    let budget = RoutingBudget {
        retries: 0,
        ..RoutingBudget::default()
    };
    for (server, eta) in providers(budget, breaker).await {
        let name = server.provider();
        // GIVEN a provider answering 500 to everything
        server.fail(Fault::Internal);
        // WHEN six orders' first locations come
        for i in 0..6 {
            let got = eta
                .estimate(&request(
                    &format!("order-{i}"),
                    p(CHEF.0, CHEF.1),
                    t(i),
                    None,
                ))
                .await;
            assert_eq!(got.eta.source, EtaSource::Estimate, "{name}");
        }
        // THEN three requests went, then the breaker opened and the others were not sent
        assert_eq!(server.requests(), 3, "{name}");
        assert_eq!(eta.stats().snapshot().short_circuited, 3, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_with_no_route_or_a_refusal_is_not_asked_again_for_that_order_within_a_minute() {
    for fault in [Fault::NoRoute, Fault::Refused] {
        for (server, eta) in providers(RoutingBudget::default(), BreakerSettings::default()).await {
            let name = server.provider();
            // GIVEN a provider that finds no route (or refuses the request)
            server.fail(fault);
            // WHEN the order's driver reports every 5 s for 55 s
            for i in 0..12 {
                let got = eta
                    .estimate(&request("order-1", p(CHEF.0, CHEF.1), t(5 * i), None))
                    .await;
                assert_eq!(got.eta.source, EtaSource::Estimate, "{name} {fault:?}");
            }
            // THEN one request went (a final answer is not retried)
            assert_eq!(server.requests(), 1, "{name} {fault:?}");
        }
    }
}

#[test]
fn the_contract_servers_secret_is_not_the_adapters_debug() {
    // (the adapters keep keys out of Debug, errors and logs: rnd-routing's own tests; here the
    // routed estimator's Debug names the provider only)
    let router = RouterConfig {
        provider: Provider::Google,
        base_url: Some("http://127.0.0.1:1".into()),
        secret: Some(SECRET.into()),
    }
    .build(rnd_http_client::HttpClient::new(Duration::from_secs(1)).unwrap())
    .unwrap();
    let eta = RoutedEta::new(
        router,
        OfflineEta::default(),
        ReroutePolicy::default(),
        RoutingBudget::default(),
        BreakerSettings::default(),
    );
    let shown = format!("{eta:?}");
    assert!(
        shown.contains("google") && !shown.contains(SECRET),
        "{shown}"
    );
}
