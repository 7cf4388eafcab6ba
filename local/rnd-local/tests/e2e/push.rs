//! Push notifications end to end: a device registered over the HTTP API, an order placed while
//! the chef has no socket open, and the push arriving at the built-in FCM sink through the
//! stream's second consumer and the real FCM v1 adapter — on both stores.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

on_both_stores!(a_chef_with_no_socket_open_gets_a_push_for_a_new_order);

/// What a phone with `token` would show, from the built-in FCM sink.
async fn phone(stack: &rnd_local::RunningStack, token: &str) -> Vec<Value> {
    let (status, body) = http_to(
        stack.addr(),
        &format!(
            "GET /fcm/messages?token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("a JSON list")
}

async fn a_chef_with_no_socket_open_gets_a_push_for_a_new_order(store: StoreKind) {
    // GIVEN a chef whose phone registered its FCM token, and whose app is closed (no socket)
    let stack = spawn_on(store).await;
    let chef = token("chef-1", "chef");
    let body = json!({"token": "chef-phone:APA91b-e2e", "platform": "android"}).to_string();
    let (status, answer) = http_to(
        stack.addr(),
        &format!(
            "POST /devices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {chef}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 201, "{answer}");

    // WHEN an order for the chef is placed
    place_order(&*stack.store(), "order-1").await;

    // THEN the chef's phone shows the new order, woken at once
    let arrived = tokio::time::timeout(WAIT, async {
        loop {
            let shown = phone(&stack, "chef-phone:APA91b-e2e").await;
            if !shown.is_empty() {
                return shown;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a push in time");
    assert_eq!(arrived.len(), 1, "{arrived:?}");
    let push = &arrived[0];
    assert!(
        push["title"]
            .as_str()
            .unwrap_or("")
            .starts_with("New order"),
        "{push}"
    );
    assert_eq!(push["data"]["event"], "order:new");
    assert_eq!(push["data"]["orderId"], "order-1");
    assert_eq!(push["highPriority"], true);
    stack.stop().await;
}
