//! The three adapters against their contract servers over real HTTP: routes through a pickup
//! along the synthetic grid, every failure mapped to its `RoutingError`, timeouts within the
//! client's bound, and keys and tokens kept out of errors, `Debug` output and logs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{StatusCode, Uri};
use rnd_domain::geo::GeoPoint;
use rnd_domain::route::{Route, RouteRequest, Router, RoutingError};
use rnd_http_client::HttpClient;
use rnd_routing::contract::{ContractServer, Fault, Served, grid};
use rnd_routing::{
    GOOGLE_FIELD_MASK, GoogleRouter, MapboxRouter, OsrmRouter, Provider, RouterConfig,
};
use serde_json::{Value, json};

const MAPBOX_TOKEN: &str = "pk.eyJ1Ijoicm5kIn0.MAPBOX-SECRET-TOKEN";
const GOOGLE_KEY: &str = "AIzaSy-GOOGLE-SECRET-KEY";

fn p(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint::parse(lat, lon).unwrap()
}

/// A driver ~1.5 km south-west of the chef, the customer ~2 km east of the chef (Austin).
fn via_pickup() -> RouteRequest {
    RouteRequest {
        from: p(30.2600, -97.7500),
        via: Some(p(30.2700, -97.7450)),
        to: p(30.2650, -97.7250),
    }
}

fn http(timeout: Duration) -> HttpClient {
    HttpClient::new(timeout).unwrap()
}

/// A served contract server and an adapter pointed at it with the right secret.
async fn provider(which: Provider, timeout: Duration) -> (Served, Arc<dyn Router>) {
    let (server, secret) = match which {
        Provider::Osrm => (ContractServer::osrm(), None),
        Provider::Mapbox => (ContractServer::mapbox(MAPBOX_TOKEN), Some(MAPBOX_TOKEN)),
        Provider::Google => (ContractServer::google(GOOGLE_KEY), Some(GOOGLE_KEY)),
    };
    let served = server.serve().await.unwrap();
    let router = RouterConfig {
        provider: which,
        base_url: Some(served.base_url().to_owned()),
        secret: secret.map(str::to_owned),
    }
    .build(http(timeout))
    .unwrap();
    (served, router)
}

const ALL: [Provider; 3] = [Provider::Osrm, Provider::Mapbox, Provider::Google];

/// `route` is the grid route for `request`: its geometry within `point_m` metres point by
/// point, its distances and durations within `value_tolerance`, the pickup at the first leg.
fn assert_grid_route(route: &Route, request: &RouteRequest, point_m: f64, value_tolerance: f64) {
    let stops: Vec<GeoPoint> = std::iter::once(request.from)
        .chain(request.via)
        .chain(std::iter::once(request.to))
        .collect();
    let expected = grid::route(&stops);
    assert_eq!(route.points.len(), expected.points.len(), "point count");
    for (got, want) in route.points.iter().zip(&expected.points) {
        assert!(got.distance_m(want) <= point_m, "{got:?} is not {want:?}");
    }
    let close = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() <= value_tolerance,
            "{what}: got {got}, expected {want}"
        );
    };
    close(route.distance_m, expected.distance_m(), "distance");
    close(route.duration_s, expected.duration_s(), "duration");
    match (request.via, route.pickup) {
        (Some(_), Some(pickup)) => {
            close(
                pickup.distance_m,
                expected.legs[0].distance_m,
                "pickup distance",
            );
            close(
                pickup.duration_s,
                expected.legs[0].duration_s,
                "pickup duration",
            );
        }
        (None, None) => {}
        (via, pickup) => panic!("via {via:?} but pickup {pickup:?}"),
    }
}

#[tokio::test]
async fn osrm_routes_through_the_pickup_along_the_grid() {
    // GIVEN an OSRM contract server and the adapter pointed at it
    let (server, router) = provider(Provider::Osrm, Duration::from_secs(5)).await;
    // WHEN a route from the driver through the chef to the customer is asked for
    let route = router.route(&via_pickup()).await.unwrap();
    // THEN it follows the grid (polyline precision 5: about a metre), with OSRM's distance
    // and duration to a decimetre, and the pickup at the end of the first leg
    assert_grid_route(&route, &via_pickup(), 1.0, 0.1);
    assert!(route.distance_m > 3_000.0, "{}", route.distance_m);
    // AND the duration is the grid's 30 km/h
    assert!((route.duration_s - route.distance_m / grid::SPEED_M_S).abs() < 0.2);
    // AND one request was made
    assert_eq!(server.requests(), 1);
    assert_eq!(router.provider(), "osrm");
}

#[tokio::test]
async fn mapbox_routes_through_the_pickup_along_the_grid_at_precision_six() {
    // GIVEN a Mapbox contract server accepting our token
    let (server, router) = provider(Provider::Mapbox, Duration::from_secs(5)).await;
    // WHEN a route through the pickup is asked for
    let route = router.route(&via_pickup()).await.unwrap();
    // THEN it follows the grid to a decimetre (polyline6), with the pickup on the first leg
    assert_grid_route(&route, &via_pickup(), 0.2, 0.01);
    assert_eq!(server.requests(), 1);
    assert_eq!(router.provider(), "mapbox");
}

#[tokio::test]
async fn google_routes_through_the_pickup_along_the_grid_in_whole_metres_and_seconds() {
    // GIVEN a Routes API contract server accepting our key
    let (server, router) = provider(Provider::Google, Duration::from_secs(5)).await;
    // WHEN a route through the pickup is asked for
    let route = router.route(&via_pickup()).await.unwrap();
    // THEN it follows the grid, with Google's whole metres and seconds, and the pickup on
    // the first leg (the field mask asked for the legs' distance and duration)
    assert_grid_route(&route, &via_pickup(), 1.0, 0.5);
    assert_eq!(server.requests(), 1);
    assert_eq!(router.provider(), "google");
}

#[tokio::test]
async fn a_route_without_a_pickup_has_no_pickup_waypoint_with_any_provider() {
    for which in ALL {
        // GIVEN a provider WHEN a direct route is asked for
        let (_server, router) = provider(which, Duration::from_secs(5)).await;
        let direct = RouteRequest {
            via: None,
            ..via_pickup()
        };
        let route = router.route(&direct).await.unwrap();
        // THEN it is the grid's, with one leg and no pickup
        let tolerance = if which == Provider::Google { 0.5 } else { 0.1 };
        assert_grid_route(&route, &direct, 1.0, tolerance);
    }
}

#[tokio::test]
async fn a_rate_limit_is_rate_limited_with_the_providers_wait_then_routing_resumes() {
    for which in ALL {
        // GIVEN a provider that rate-limits the next request, asking for 30 s
        let (server, router) = provider(which, Duration::from_secs(5)).await;
        server.fail_next(
            Fault::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
            },
            1,
        );
        // WHEN a route is asked for
        let error = router.route(&via_pickup()).await.unwrap_err();
        // THEN it is rate limited, with the wait (Mapbox's is a reset time, to the second)
        let RoutingError::RateLimited {
            retry_after: Some(wait),
        } = error
        else {
            panic!("{which}: {error:?}");
        };
        assert!(
            wait <= Duration::from_secs(31) && wait >= Duration::from_secs(29),
            "{which}: {wait:?}"
        );
        assert!(error.is_transient());
        // AND the next request is routed
        assert!(router.route(&via_pickup()).await.is_ok(), "{which}");
        assert_eq!(server.requests(), 2, "{which}");
    }
}

#[tokio::test]
async fn a_rate_limit_without_a_wait_is_rate_limited_without_one() {
    for which in ALL {
        let (server, router) = provider(which, Duration::from_secs(5)).await;
        server.fail(Fault::RateLimited { retry_after: None });
        assert_eq!(
            router.route(&via_pickup()).await.unwrap_err(),
            RoutingError::RateLimited { retry_after: None },
            "{which}"
        );
    }
}

#[tokio::test]
async fn a_provider_failure_or_an_answer_that_does_not_parse_is_unavailable() {
    for which in ALL {
        for fault in [Fault::Internal, Fault::Garbled] {
            // GIVEN a provider answering 500, or 200 with a body cut short
            let (server, router) = provider(which, Duration::from_secs(5)).await;
            server.fail(fault);
            // WHEN a route is asked for THEN the provider is unavailable (worth trying later)
            let error = router.route(&via_pickup()).await.unwrap_err();
            assert!(
                matches!(error, RoutingError::Unavailable(_)),
                "{which} {fault:?}: {error:?}"
            );
            assert!(error.is_transient());
            // AND healed, it routes again
            server.heal();
            assert!(router.route(&via_pickup()).await.is_ok(), "{which}");
        }
    }
}

#[tokio::test]
async fn no_route_between_the_points_is_no_route() {
    for which in ALL {
        // GIVEN a provider finding no road between the points
        let (server, router) = provider(which, Duration::from_secs(5)).await;
        server.fail(Fault::NoRoute);
        // WHEN a route is asked for THEN there is none, and asking again will not help
        let error = router.route(&via_pickup()).await.unwrap_err();
        assert_eq!(error, RoutingError::NoRoute, "{which}");
        assert!(!error.is_transient());
    }
}

#[tokio::test]
async fn a_request_the_provider_refuses_is_refused() {
    for which in ALL {
        // GIVEN a provider refusing the request (OSRM 400 TooBig, Mapbox 422, Google 400)
        let (server, router) = provider(which, Duration::from_secs(5)).await;
        server.fail(Fault::Refused);
        // WHEN a route is asked for THEN it is refused, naming the provider's reason
        let error = router.route(&via_pickup()).await.unwrap_err();
        let RoutingError::Refused(reason) = &error else {
            panic!("{which}: {error:?}");
        };
        let expected = match which {
            Provider::Osrm => "TooBig",
            Provider::Mapbox => "InvalidInput",
            Provider::Google => "INVALID_ARGUMENT",
        };
        assert!(reason.contains(expected), "{which}: {reason}");
        assert!(!error.is_transient());
    }
}

#[tokio::test]
async fn a_slow_answer_times_out_within_the_clients_timeout() {
    for which in ALL {
        // GIVEN a provider that answers after 5 s, and a client allowing 300 ms
        let (server, router) = provider(which, Duration::from_millis(300)).await;
        server.fail(Fault::Delay(Duration::from_secs(5)));
        // WHEN a route is asked for
        let started = Instant::now();
        let error = router.route(&via_pickup()).await.unwrap_err();
        // THEN it times out, soon after the client's timeout and long before the answer
        assert_eq!(error, RoutingError::Timeout, "{which}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_millis(1_500),
            "{which}: {waited:?}"
        );
    }
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_unavailable() {
    // GIVEN a port nothing listens on any more
    let address = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let router =
        OsrmRouter::new(&format!("http://{address}"), http(Duration::from_secs(2))).unwrap();
    // WHEN a route is asked for THEN the provider is unavailable
    let error = router.route(&via_pickup()).await.unwrap_err();
    assert!(matches!(error, RoutingError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn a_wrong_token_or_key_is_refused_by_the_adapters() {
    // GIVEN Mapbox and Google contract servers expecting other secrets than ours
    let mapbox = ContractServer::mapbox("pk.the-right-token")
        .serve()
        .await
        .unwrap();
    let google = ContractServer::google("the-right-key")
        .serve()
        .await
        .unwrap();
    let timeout = Duration::from_secs(5);
    let routers: Vec<Arc<dyn Router>> = vec![
        Arc::new(MapboxRouter::new(mapbox.base_url(), MAPBOX_TOKEN, http(timeout)).unwrap()),
        Arc::new(GoogleRouter::new(google.base_url(), GOOGLE_KEY, http(timeout)).unwrap()),
    ];
    for router in routers {
        // WHEN a route is asked for THEN it is refused (retrying will not help)
        let error = router.route(&via_pickup()).await.unwrap_err();
        assert!(
            matches!(error, RoutingError::Refused(_)),
            "{}: {error:?}",
            router.provider()
        );
    }
    assert_eq!(mapbox.requests(), 1);
    assert_eq!(google.requests(), 1);
}

/// A raw GET to `url`: its status and JSON body.
async fn get_json(url: &str) -> (StatusCode, Value) {
    let answer = http(Duration::from_secs(5))
        .get(&url.parse::<Uri>().unwrap())
        .await
        .unwrap();
    (answer.status, serde_json::from_slice(&answer.body).unwrap())
}

#[tokio::test]
async fn the_mapbox_contract_server_refuses_a_missing_or_wrong_token_as_mapbox_does() {
    // GIVEN a Mapbox contract server
    let server = ContractServer::mapbox("pk.right").serve().await.unwrap();
    let path = format!(
        "{}/directions/v5/mapbox/driving-traffic/-97.75,30.26;-97.72,30.27?geometries=polyline6&overview=full",
        server.base_url()
    );
    // WHEN asked without a token, with another one, or for an unknown profile
    // THEN it answers Mapbox's bodies
    assert_eq!(
        get_json(&path).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({ "message": "Not Authorized - No Token" })
        )
    );
    assert_eq!(
        get_json(&format!("{path}&access_token=pk.wrong")).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({ "message": "Not Authorized - Invalid Token" })
        )
    );
    let (status, body) = get_json(&format!("{path}&access_token=pk.right")).await;
    assert_eq!((status, &body["code"]), (StatusCode::OK, &json!("Ok")));
    let (status, body) = get_json(&format!(
        "{}/directions/v5/mapbox/flying/-97.75,30.26;-97.72,30.27?access_token=pk.right",
        server.base_url()
    ))
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::NOT_FOUND, &json!("ProfileNotFound"))
    );
    let (status, body) = get_json(&format!(
        "{}/directions/v5/mapbox/driving/-97.75,91;-97.72,30.27?access_token=pk.right",
        server.base_url()
    ))
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("InvalidInput"))
    );
}

/// A raw computeRoutes with `headers` and `body`: its status and JSON body.
async fn compute_routes(
    base_url: &str,
    headers: &[(&'static str, &str)],
    body: &Value,
) -> (StatusCode, Value) {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let uri: Uri = format!("{base_url}/directions/v2:computeRoutes")
        .parse()
        .unwrap();
    let reply = http(Duration::from_secs(5))
        .post_with(
            &uri,
            "application/json",
            &map,
            Bytes::from(body.to_string()),
        )
        .await
        .unwrap();
    (
        reply.answer.status,
        serde_json::from_slice(&reply.answer.body).unwrap(),
    )
}

#[tokio::test]
async fn the_google_contract_server_refuses_a_missing_or_wrong_key_and_a_bad_request_as_google_does()
 {
    // GIVEN a Routes API contract server and a well-formed request
    let server = ContractServer::google("right-key").serve().await.unwrap();
    let point = json!({ "location": { "latLng": { "latitude": 30.26, "longitude": -97.75 } } });
    let other = json!({ "location": { "latLng": { "latitude": 30.27, "longitude": -97.72 } } });
    let request = json!({ "origin": point, "destination": other, "travelMode": "DRIVE" });
    let mask = ("x-goog-fieldmask", GOOGLE_FIELD_MASK);
    // WHEN it has no key THEN 403 PERMISSION_DENIED
    let (status, body) = compute_routes(server.base_url(), &[mask], &request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["code"], 403);
    // WHEN it has another key THEN 400 INVALID_ARGUMENT, reason API_KEY_INVALID
    let (status, body) = compute_routes(
        server.base_url(),
        &[mask, ("x-goog-api-key", "wrong-key")],
        &request,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");
    // WHEN the field mask is missing, or a field is unknown THEN 400 INVALID_ARGUMENT
    let key = ("x-goog-api-key", "right-key");
    let (status, body) = compute_routes(server.base_url(), &[key], &request).await;
    assert_eq!(
        (status, &body["error"]["status"]),
        (StatusCode::BAD_REQUEST, &json!("INVALID_ARGUMENT"))
    );
    let mut snake = request.clone();
    snake["travel_mode"] = json!("DRIVE");
    let (status, body) = compute_routes(server.base_url(), &[key, mask], &snake).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("travel_mode"),
        "{body}"
    );
    // WHEN all is right THEN only the masked fields come back
    let (status, body) = compute_routes(
        server.base_url(),
        &[key, ("x-goog-fieldmask", "routes.duration")],
        &request,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["routes"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["duration"]
    );
    assert_eq!(server.requests(), 5);
}

#[tokio::test]
async fn the_osrm_contract_server_refuses_unknown_options_and_bad_coordinates_as_osrm_does() {
    let server = ContractServer::osrm().serve().await.unwrap();
    let base = format!("{}/route/v1/driving", server.base_url());
    let (status, body) = get_json(&format!("{base}/-97.75,30.26;-97.72,30.27?overveiw=full")).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("InvalidQuery"))
    );
    let (status, body) = get_json(&format!("{base}/-97.75,30.26;-97.72,north")).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("InvalidUrl"))
    );
    let (status, body) = get_json(&format!("{base}/-97.75,30.26;-97.72,95")).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("InvalidValue"))
    );
    let (status, body) = get_json(&format!("{base}/-97.75,30.26")).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("InvalidOptions"))
    );
    // AND by default it answers the outline only (overview=simplified), as OSRM does
    let (status, body) = get_json(&format!("{base}/-97.75,30.26;-97.72,30.27")).await;
    assert_eq!(status, StatusCode::OK);
    let outline =
        rnd_domain::route::decode(body["routes"][0]["geometry"].as_str().unwrap()).unwrap();
    assert_eq!(outline.len(), 3);
}

#[tokio::test]
async fn the_osrm_contract_server_can_be_nested_under_a_path_prefix() {
    // GIVEN the OSRM contract server mounted at /osrm of another Router, as the local stack does
    let server = ContractServer::osrm();
    let app = axum::Router::new().nest("/osrm", server.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    // WHEN the adapter's base URL is the prefix
    let router = OsrmRouter::new(
        &format!("http://{address}/osrm/"),
        http(Duration::from_secs(5)),
    )
    .unwrap();
    let route = router.route(&via_pickup()).await.unwrap();
    // THEN it routes, and the handle counts the request
    assert_grid_route(&route, &via_pickup(), 1.0, 0.1);
    assert_eq!(server.requests(), 1);
    task.abort();
}

/// A log sink: everything written to it is kept.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn no_token_or_key_appears_in_any_error_debug_output_or_log_line() {
    // GIVEN every log line of this test captured, at every level
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let secrets = [MAPBOX_TOKEN, GOOGLE_KEY];
    let mut seen = Vec::new();
    for which in [Provider::Mapbox, Provider::Google] {
        // WHEN each outcome happens: a route, each fault, a timeout
        let (server, router) = provider(which, Duration::from_millis(300)).await;
        let timeout = http(Duration::from_secs(1));
        seen.push(match which {
            Provider::Mapbox => format!(
                "{:?}",
                MapboxRouter::new(server.base_url(), MAPBOX_TOKEN, timeout).unwrap()
            ),
            _ => format!(
                "{:?}",
                GoogleRouter::new(server.base_url(), GOOGLE_KEY, timeout).unwrap()
            ),
        });
        assert!(router.route(&via_pickup()).await.is_ok());
        for fault in [
            Fault::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
            Fault::Internal,
            Fault::NoRoute,
            Fault::Refused,
            Fault::Garbled,
            Fault::Delay(Duration::from_secs(2)),
        ] {
            server.fail(fault);
            let error = router.route(&via_pickup()).await.unwrap_err();
            seen.push(format!("{error} {error:?}"));
        }
        // AND when the server refuses our secret, and when it cannot be reached
        let (refusing, secret) = match which {
            Provider::Mapbox => (ContractServer::mapbox("pk.other"), MAPBOX_TOKEN),
            _ => (ContractServer::google("other"), GOOGLE_KEY),
        };
        let refusing = refusing.serve().await.unwrap();
        let unreachable = format!("http://{}", {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        });
        for base_url in [refusing.base_url().to_owned(), unreachable] {
            let config = RouterConfig {
                provider: which,
                base_url: Some(base_url),
                secret: Some(secret.to_owned()),
            };
            seen.push(format!("{config:?}"));
            let error = config
                .build(http(Duration::from_secs(2)))
                .unwrap()
                .route(&via_pickup())
                .await
                .unwrap_err();
            seen.push(format!("{error} {error:?}"));
        }
    }
    // THEN no error's Display or Debug, no router's or configuration's Debug, and no log line
    // holds a secret
    let logs = logs.text();
    assert!(
        logs.contains("mapbox") && logs.contains("google"),
        "nothing was logged: {logs}"
    );
    assert_eq!(seen.len(), 2 * (1 + 6 + 4));
    for secret in secrets {
        for text in &seen {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(!logs.contains(secret), "{logs}");
    }
}
