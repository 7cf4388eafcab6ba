//! Who may reach the stack: loopback unless `--allow-remote` with a secret of one's own, and
//! then no dev-only route and no Management API; on loopback, the dev-only routes answer only
//! requests addressed to localhost (no DNS rebinding).
//!
//! Store-independent (nothing here reads the store): these run once, on the embedded store.

use rnd_local::{Config, StartError};

use crate::helpers::{http_to, spawn_stack, spawn_with};

const OWN_SECRET: &str = "a-secret-of-this-deployment-and-long-enough";

/// A request to `host` (an admin token's body, for the routes that take one).
fn request(method: &str, path: &str, host: &str) -> String {
    let body = r#"{"sub":"admin-1","role":"admin"}"#;
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_on_an_address_others_reach_needs_allow_remote_and_its_own_secret() {
    // GIVEN a stack asked to listen on every address
    let everywhere = Config {
        host: "0.0.0.0".into(),
        ..Config::in_memory()
    };
    // WHEN it starts without --allow-remote, or with it and the public secret, or with it and
    // --post-over-http
    let without = rnd_local::start(everywhere.clone()).await.err();
    let dev_secret = rnd_local::start(Config {
        allow_remote: true,
        ..everywhere.clone()
    })
    .await
    .err();
    let posting = rnd_local::start(Config {
        allow_remote: true,
        jwt_secret: OWN_SECRET.into(),
        post_over_http: true,
        ..everywhere.clone()
    })
    .await
    .err();
    // THEN it refuses each, saying why
    assert!(
        matches!(without, Some(StartError::RemoteNotAllowed(ref h)) if h == "0.0.0.0"),
        "{without:?}"
    );
    assert!(
        matches!(dev_secret, Some(StartError::RemoteWithTheDevSecret)),
        "{dev_secret:?}"
    );
    assert!(
        matches!(posting, Some(StartError::RemoteWithoutManagementApi)),
        "{posting:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_stack_serves_the_apis_but_no_dev_route_or_management_api() {
    // GIVEN a stack on every address, allowed, with a secret of its own
    let stack = spawn_with(Config {
        host: "0.0.0.0".into(),
        allow_remote: true,
        jwt_secret: OWN_SECRET.into(),
        ..Config::in_memory()
    })
    .await;
    let addr = stack.addr();
    let host = format!("127.0.0.1:{}", addr.port());
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()));
    // WHEN an admin of this deployment asks for the dev-only routes and the Management API,
    // even from localhost
    let admin = rnd_local::issue_token(
        OWN_SECRET,
        "admin-1",
        "admin",
        None,
        std::time::Duration::from_secs(600),
    )
    .expect("a token");
    let ask = |method: &str, path: &str| {
        request(method, path, &host).replacen(
            "\r\n",
            &format!("\r\nAuthorization: Bearer {admin}\r\n"),
            1,
        )
    };
    let token = http_to(to, &ask("POST", "/dev/token")).await.0;
    let metrics = http_to(to, &ask("GET", "/dev/metrics")).await.0;
    let post = http_to(to, &ask("POST", "/realtime/@connections/abc="))
        .await
        .0;
    // THEN none exists: the HTTP API answers them as the unknown paths they are
    assert_eq!((token, metrics, post), (404, 404, 404));
    // AND the HTTP API and the demo page are served
    assert_eq!(http_to(to, &ask("GET", "/openapi.json")).await.0, 200);
    assert_eq!(http_to(to, &request("GET", "/", &host)).await.0, 200);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loopback_the_dev_routes_answer_only_requests_addressed_to_localhost() {
    // GIVEN a stack on loopback
    let stack = spawn_stack().await;
    let addr = stack.addr();
    for (method, path) in [
        ("POST", "/dev/token"),
        ("GET", "/dev/metrics"),
        ("POST", "/realtime/@connections/abc="),
    ] {
        // WHEN a page from another name that resolves to 127.0.0.1 asks (DNS rebinding)
        let rebound = http_to(addr, &request(method, path, "evil.example:9001"))
            .await
            .0;
        // THEN it is refused
        assert_eq!(rebound, 403, "{method} {path}");
        // AND a request addressed to localhost is served as before
        for host in [format!("127.0.0.1:{}", addr.port()), "localhost".into()] {
            let served = http_to(addr, &request(method, path, &host)).await.0;
            assert_ne!(served, 403, "{method} {path} to {host}");
        }
    }
    stack.stop().await;
}
