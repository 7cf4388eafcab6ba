//! The demo page at `/` and its dev-only `POST /dev/token` (the browser test drives the page
//! itself: `scripts/browser-test.sh`).
//!
//! Store-independent (static assets, token signing): these run once, on the embedded store.

use rnd_domain::identity::{DEV_JWT_SECRET, JwtVerifier, Role, VerifierConfig};
use serde_json::Value;

use crate::helpers::spawn_stack;

/// One HTTP/1.1 request over a raw socket; returns the status, the head and the body.
async fn request(stack: &rnd_local::RunningStack, text: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(stack.addr()).await.unwrap();
    socket.write_all(text.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}

fn post_json(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_and_its_assets_are_served_from_the_binary_and_load_nothing_else() {
    // GIVEN a running stack
    let stack = spawn_stack().await;
    // WHEN the page, its script, the SDK's bundle and the style sheet are fetched
    let (page_status, page_head, page) = request(&stack, &get("/")).await;
    let (js_status, js_head, js) = request(&stack, &get("/demo.js")).await;
    let (sdk_status, sdk_head, sdk) = request(&stack, &get("/sdk/realtime-client.js")).await;
    let (css_status, css_head, css) = request(&stack, &get("/demo.css")).await;
    // THEN each is served with its type and a same-origin-only policy
    assert_eq!(
        (page_status, js_status, sdk_status, css_status),
        (200, 200, 200, 200)
    );
    assert!(page_head.contains("content-type: text/html"), "{page_head}");
    for head in [&js_head, &sdk_head] {
        assert!(head.contains("content-type: text/javascript"), "{head}");
    }
    assert!(css_head.contains("content-type: text/css"), "{css_head}");
    assert!(
        page_head.contains("content-security-policy: default-src 'self'"),
        "{page_head}"
    );
    assert!(
        page.contains(r#"<script type="module" src="/demo.js">"#),
        "{page}"
    );
    // AND the page's script talks to the WebSocket API through the SDK, not a socket of its own
    assert!(js.contains("import { RealtimeClient } from '/sdk/realtime-client.js';"));
    assert!(!js.contains("new WebSocket("));
    assert!(
        sdk.contains("var RealtimeClient = class"),
        "the bundle defines the client"
    );
    // AND nothing refers to another origin (no CDN, fonts or tiles)
    for text in [&page, &js, &sdk, &css] {
        assert!(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"));
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_token_endpoint_signs_with_the_stacks_secret_and_refuses_bad_input() {
    // GIVEN a running stack (the dev secret)
    let stack = spawn_stack().await;
    // WHEN a token is asked for a chef
    let (status, _, body) = request(
        &stack,
        &post_json(
            "/dev/token",
            r#"{"sub":"chef-1","role":"chef","name":"Carla"}"#,
        ),
    )
    .await;
    // THEN it verifies with the stack's secret and names the chef
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let verifier = JwtVerifier::new(VerifierConfig::hs256(DEV_JWT_SECRET)).unwrap();
    let identity = verifier.verify(body["token"].as_str().unwrap()).unwrap();
    assert_eq!(identity.actor.user_id.as_str(), "chef-1");
    assert_eq!(identity.actor.role, Role::Chef);
    assert_eq!(identity.name.as_deref(), Some("Carla"));
    // AND an unknown role, an invalid user id or a malformed body is a 400
    for bad in [
        r#"{"sub":"chef-1","role":"boss"}"#,
        r#"{"sub":"","role":"chef"}"#,
        r#"{"role":"chef"}"#,
        "not json",
    ] {
        let (status, _, body) = request(&stack, &post_json("/dev/token", bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    stack.stop().await;
}
