//! End to end: the stack started in-process on port 0, real WebSocket clients
//! (tokio-tungstenite), orders changed through the store port, events arriving through the
//! stream poller, the fan-out and `@connections`.
//!
//! Every scenario that touches the store runs on both stores (`on_both_stores!`): as
//! `embedded::…` on the embedded SQLite store and as `dynamodb::…` on the test database, moto's
//! DynamoDB server (tables of its own, its DynamoDB stream). The few that never reach the store (upgrade
//! refusals, the HTTP API's unauthenticated answers, the demo page) run once, on the embedded
//! store.

mod continuity;
mod demo;
mod exposure;
mod fast_path;
mod helpers;
mod push;
mod routing;

use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use helpers::*;
use rnd_domain::order::OrderStatus;
use rnd_local::Config;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

on_both_stores!(
    customer_connects_with_a_token_in_the_query_and_hello_answers_connected,
    the_chef_customer_and_driver_each_hear_about_the_order_as_it_moves,
    the_customer_receives_the_drivers_location_as_the_driver_streams_it,
    the_customer_receives_an_eta_update_when_the_driver_streams_a_location,
    several_clients_on_one_order_all_receive_its_updates,
    a_client_that_reconnects_and_resubscribes_receives_updates_again,
    a_message_over_128_kb_closes_the_connection_with_1009,
    an_idle_connection_is_closed_with_1001_after_the_idle_timeout,
    a_connection_that_keeps_talking_outlives_the_idle_timeout_and_closes_once_quiet,
    the_real_management_client_posts_describes_and_deletes_a_connection,
    stopping_the_stack_closes_sockets_with_1001_and_runs_disconnect,
    a_restart_on_the_same_data_loses_no_order_and_delivers_changes_made_while_down_once,
    a_browser_token_in_the_subprotocol_is_accepted_and_the_app_protocol_answered,
    a_subscriber_past_its_token_is_told_and_closed_at_the_next_event,
);

async fn customer_connects_with_a_token_in_the_query_and_hello_answers_connected(store: StoreKind) {
    // GIVEN a running stack
    let stack = spawn_on(store).await;
    // WHEN a customer connects with a JWT in the query and says hello
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    let answer = customer.ask(json!({"action": "hello"})).await;
    // THEN the route response is `connected`
    assert_eq!(answer["event"], "connected", "{answer}");
    // AND a message that is not JSON reaches $default and is refused with a stable code
    customer.send_text("not json".into()).await;
    let refusal = customer.next().await;
    assert_eq!(refusal["event"], "error", "{refusal}");
    customer.close().await;
    stack.stop().await;
}

// Store-independent: the authorizer refuses before `$connect`, so nothing reaches the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_is_refused_with_401_and_a_bad_one_with_403_before_the_upgrade() {
    // GIVEN a running stack
    let stack = spawn_stack().await;
    let url = stack.websocket_url();
    // WHEN clients connect without a token, with a tampered one, and with one signed with
    // another secret
    let missing = refused_status(&url).await;
    let tampered = refused_status(&format!("{url}?token=a.b.c")).await;
    let foreign = rnd_local::issue_token(
        "another-secret-that-is-long-enough-0123456789",
        "customer-1",
        "customer",
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    let wrong_key = refused_status(&format!("{url}?token={foreign}")).await;
    // THEN API Gateway's statuses come back and nothing was connected
    assert_eq!(missing, 401);
    assert_eq!(tampered, 403);
    assert_eq!(wrong_key, 403);
    assert!(
        connections_of(&*stack.store(), "customer-1")
            .await
            .is_empty()
    );
    stack.stop().await;
}

async fn the_chef_customer_and_driver_each_hear_about_the_order_as_it_moves(store: StoreKind) {
    // GIVEN a chef, a driver and a customer connected
    let stack = spawn_on(store).await;
    let store = stack.store();
    let mut chef = Client::connect(&stack, "chef-1", "chef").await;
    let mut driver = Client::connect(&stack, "driver-1", "driver").await;
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;

    // WHEN the customer's order is placed
    let view = place_order(&*store, "order-1").await;
    // THEN the chef receives order:new
    let new = chef.next_event("order:new").await;
    assert_eq!(new["data"]["orderId"], "order-1", "{new}");

    // WHEN the customer subscribes and the order moves to ready for pickup
    customer.subscribe("order-1").await;
    let mut view = view;
    for expected in ["payment_confirmed", "accepted", "ready_for_pickup"] {
        view = step(&*store, view).await;
        // THEN the customer receives each status update, in order
        let update = customer.next_event("order:status_update").await;
        assert_eq!(update["data"]["status"], expected, "{update}");
    }

    // WHEN a driver is assigned
    let _view = step(&*store, view).await;
    // THEN the driver receives the assignment and the customer the update
    let assignment = driver.next_event("driver:new_assignment").await;
    assert_eq!(assignment["data"]["orderId"], "order-1", "{assignment}");
    let update = customer.next_event("order:status_update").await;
    assert_eq!(update["data"]["status"], "assigned_to_driver", "{update}");
    stack.stop().await;
}

async fn the_customer_receives_the_drivers_location_as_the_driver_streams_it(store: StoreKind) {
    // GIVEN an order picked up by driver-1, its customer subscribed
    let (stack, store, view) = spawn_with_order(store, "order-1").await;
    advance_to(&*store, view, OrderStatus::PickedUp).await;
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    customer.subscribe("order-1").await;
    let mut driver = Client::connect(&stack, "driver-1", "driver").await;

    // WHEN the driver streams a location
    driver.send_location("order-1").await;

    // THEN the customer receives it
    let update = customer.next_event("driver:location_update").await;
    assert_eq!(update["data"]["orderId"], "order-1", "{update}");
    assert_eq!(update["data"]["latitude"], 30.2672, "{update}");
    stack.stop().await;
}

async fn several_clients_on_one_order_all_receive_its_updates(store: StoreKind) {
    // GIVEN the customer on two devices and the chef, all subscribed to one order
    let (stack, store, view) = spawn_with_order(store, "order-1").await;
    let mut phone = Client::connect(&stack, "customer-1", "customer").await;
    let mut laptop = Client::connect(&stack, "customer-1", "customer").await;
    let mut chef = Client::connect(&stack, "chef-1", "chef").await;
    for client in [&mut phone, &mut laptop, &mut chef] {
        client.subscribe("order-1").await;
    }
    // WHEN the order moves on
    step(&*store, view).await;
    // THEN every one of them receives the update
    for client in [&mut phone, &mut laptop, &mut chef] {
        let update = client.next_event("order:status_update").await;
        assert_eq!(update["data"]["status"], "payment_confirmed", "{update}");
    }
    stack.stop().await;
}

async fn a_client_that_reconnects_and_resubscribes_receives_updates_again(store: StoreKind) {
    // GIVEN a subscribed customer who disconnects
    let (stack, store, view) = spawn_with_order(store, "order-1").await;
    let mut first = Client::connect(&stack, "customer-1", "customer").await;
    first.subscribe("order-1").await;
    first.close().await;
    wait_until_disconnected(&stack, "customer-1").await;

    // WHEN it reconnects and subscribes again, and the order moves
    let mut again = Client::connect(&stack, "customer-1", "customer").await;
    let tracking = again.subscribe("order-1").await;
    assert_eq!(tracking["data"]["orderId"], "order-1", "{tracking}");
    step(&*store, view).await;

    // THEN the new connection receives the update
    let update = again.next_event("order:status_update").await;
    assert_eq!(update["data"]["status"], "payment_confirmed", "{update}");
    stack.stop().await;
}

async fn a_message_over_128_kb_closes_the_connection_with_1009(store: StoreKind) {
    // GIVEN a connected client
    let stack = spawn_on(store).await;
    let mut client = Client::connect(&stack, "customer-1", "customer").await;
    // WHEN it sends a message over 128 KB
    client
        .send_text(format!(
            r#"{{"action":"hello","pad":"{}"}}"#,
            "x".repeat(129 * 1024)
        ))
        .await;
    // THEN the stack closes the socket with 1009 and runs $disconnect
    assert_eq!(client.closed_with().await, CloseCode::Size);
    wait_until_disconnected(&stack, "customer-1").await;
    stack.stop().await;
}

async fn an_idle_connection_is_closed_with_1001_after_the_idle_timeout(store: StoreKind) {
    // GIVEN a stack with a 1 s idle timeout and a connected client
    let stack = spawn_with(Config {
        idle_timeout: Duration::from_secs(1),
        ..store.config()
    })
    .await;
    let mut client = Client::connect(&stack, "customer-1", "customer").await;
    let started = std::time::Instant::now();
    // WHEN it sends nothing
    // THEN the socket is closed with 1001 after about a second and $disconnect ran
    assert_eq!(client.closed_with().await, CloseCode::Away);
    assert!(started.elapsed() >= Duration::from_millis(900));
    wait_until_disconnected(&stack, "customer-1").await;
    stack.stop().await;
}

async fn a_connection_that_keeps_talking_outlives_the_idle_timeout_and_closes_once_quiet(
    store: StoreKind,
) {
    // GIVEN a stack with a 1 s idle timeout and a connected client
    let stack = spawn_with(Config {
        idle_timeout: Duration::from_secs(1),
        ..store.config()
    })
    .await;
    let mut client = Client::connect(&stack, "customer-1", "customer").await;
    // WHEN it says hello every 400 ms for 2 s (twice the idle timeout)
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let answer = client.ask(json!({"action": "hello"})).await;
        // THEN every hello is answered: each frame moved the idle deadline on
        assert_eq!(answer["event"], "connected", "{answer}");
    }
    // WHEN it then falls quiet
    let quiet = std::time::Instant::now();
    // THEN the socket is closed with 1001 about a second later, and $disconnect ran
    assert_eq!(client.closed_with().await, CloseCode::Away);
    assert!(quiet.elapsed() >= Duration::from_millis(900));
    wait_until_disconnected(&stack, "customer-1").await;
    stack.stop().await;
}

async fn the_real_management_client_posts_describes_and_deletes_a_connection(store: StoreKind) {
    // GIVEN a connected client and the real aws-sdk-apigatewaymanagement client
    let stack = spawn_on(store).await;
    let mut client = Client::connect(&stack, "mgmt-user-1", "customer").await;
    let id = connections_of(&*stack.store(), "mgmt-user-1")
        .await
        .pop()
        .expect("the connection is stored");
    let config = rnd_notifier_apigw::mock::sdk_config();
    let api = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&config)
            .endpoint_url(stack.management_endpoint())
            .build(),
    );

    // WHEN it posts to the connection
    api.post_to_connection()
        .connection_id(id.as_str())
        .data(Blob::new(r#"{"event":"custom","data":{}}"#))
        .send()
        .await
        .expect("PostToConnection succeeds");
    // THEN the client receives the body
    assert_eq!(client.next().await["event"], "custom");

    // WHEN it describes the connection
    let described = api
        .get_connection()
        .connection_id(id.as_str())
        .send()
        .await
        .expect("GetConnection succeeds");
    // THEN it has the connection time and the client's identity
    assert!(described.connected_at().is_some());
    assert!(described.last_active_at().is_some());
    let identity = described.identity().expect("an identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));

    // WHEN it deletes the connection
    api.delete_connection()
        .connection_id(id.as_str())
        .send()
        .await
        .expect("DeleteConnection succeeds");
    // THEN the socket closes, $disconnect runs and the id is gone (410)
    assert_eq!(client.closed_with().await, CloseCode::Normal);
    wait_until_disconnected(&stack, "mgmt-user-1").await;
    let gone = api
        .post_to_connection()
        .connection_id(id.as_str())
        .data(Blob::new("{}"))
        .send()
        .await
        .expect_err("a deleted connection is gone");
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_gone_exception()),
        "{gone:?}"
    );
    stack.stop().await;
}

async fn stopping_the_stack_closes_sockets_with_1001_and_runs_disconnect(store: StoreKind) {
    // GIVEN a connected client
    let stack = spawn_on(store).await;
    let store = stack.store();
    let mut client = Client::connect(&stack, "customer-1", "customer").await;
    assert_eq!(connections_of(&*store, "customer-1").await.len(), 1);
    // WHEN the stack stops
    let stopping = tokio::spawn(stack.stop());
    // THEN the client sees 1001 and the connection is removed from the store
    assert_eq!(client.closed_with().await, CloseCode::Away);
    stopping.await.unwrap();
    assert!(connections_of(&*store, "customer-1").await.is_empty());
}

async fn a_restart_on_the_same_data_loses_no_order_and_delivers_changes_made_while_down_once(
    store: StoreKind,
) {
    // GIVEN a stack on durable data with an order whose creation the chef has received
    let config = store.durable_config();
    let stack = spawn_with(config.clone()).await;
    let mut chef = Client::connect(&stack, "chef-1", "chef").await;
    let first = place_order(&*stack.store(), "order-1").await;
    let new = chef.next_event("order:new").await;
    assert_eq!(new["data"]["orderId"], "order-1", "{new}");
    chef.close().await;
    stack.stop().await;

    // WHEN, while the stack is down, the first order moves on and a second one is placed
    let offline = open_directly(&config);
    let first = step(&*offline, first).await;
    place_order(&*offline, "order-2").await;
    drop(offline);
    // AND the stack starts again on the same data with its stream disabled, the chef
    // connects, and only then is the stream enabled
    let stack = spawn_with(Config {
        stream_enabled: false,
        ..config.clone()
    })
    .await;
    let mut chef = Client::connect(&stack, "chef-1", "chef").await;
    stack.enable_stream();

    // THEN the chef receives the order placed while the stack was down, and nothing before it:
    // the order delivered before the stop comes earlier in the stream and is not re-delivered
    let new = chef.next_event("order:new").await;
    assert_eq!(new["data"]["orderId"], "order-2", "{new}");
    chef.expect_no_event("order:new", Duration::from_millis(500))
        .await;
    // AND the first order is intact, with the change made while down
    let stored = stack
        .store()
        .get_order(&first.order.order_id)
        .await
        .unwrap()
        .expect("the order survived the restart");
    assert_eq!(stored.order.status, OrderStatus::PaymentConfirmed);
    // AND later changes reach a subscriber
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    customer.subscribe("order-1").await;
    step(&*stack.store(), first).await;
    let update = customer.next_event("order:status_update").await;
    assert_eq!(update["data"]["status"], "accepted", "{update}");
    stack.stop().await;
    remove_data(&config);
}

async fn the_customer_receives_an_eta_update_when_the_driver_streams_a_location(store: StoreKind) {
    // GIVEN an order picked up by driver-1, its customer subscribed
    let (stack, store, view) = spawn_with_order(store, "order-1").await;
    advance_to(&*store, view, OrderStatus::PickedUp).await;
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    customer.subscribe("order-1").await;
    let mut driver = Client::connect(&stack, "driver-1", "driver").await;

    // WHEN the driver streams its first location (the ETA is estimated from it)
    let ack = driver.send_location("order-1").await;
    assert!(ack["data"]["etaMinutes"].is_u64(), "{ack}");

    // THEN the customer receives the order's ETA, the one the driver's acknowledgement gave
    let eta = customer.next_event("order:eta_update").await;
    assert_eq!(eta["data"]["orderId"], "order-1", "{eta}");
    assert_eq!(
        eta["data"]["etaMinutes"], ack["data"]["etaMinutes"],
        "{eta} {ack}"
    );
    assert!(eta["data"]["estimatedDeliveryTime"].is_string(), "{eta}");
    stack.stop().await;
}

async fn a_subscriber_past_its_token_is_told_and_closed_at_the_next_event(store: StoreKind) {
    // GIVEN a customer whose token expires two seconds after connecting, watching their order,
    // and the same customer connected again with a fresh token
    let (stack, store, view) = spawn_with_order(store, "order-exp").await;
    let short = rnd_local::issue_token(
        rnd_domain::identity::DEV_JWT_SECRET,
        "customer-1",
        "customer",
        None,
        Duration::from_secs(2),
    )
    .expect("a token");
    let mut expiring = Client::connect_with(&stack.websocket_url(), &short).await;
    expiring.subscribe("order-exp").await;
    let mut fresh = Client::connect(&stack, "customer-1", "customer").await;
    fresh.subscribe("order-exp").await;

    // WHEN the token has expired and the order moves on
    tokio::time::sleep(Duration::from_millis(3100)).await;
    step(&*store, view).await;

    // THEN the expiring connection gets token_expired instead of the update, then a close
    let told = expiring.next().await;
    assert_eq!(told["event"], "error", "{told}");
    assert_eq!(told["data"]["code"], "token_expired", "{told}");
    assert_eq!(expiring.closed_with().await, CloseCode::Normal);
    // AND the fresh connection gets the update
    let update = fresh.next_event("order:status_update").await;
    assert_eq!(update["data"]["status"], "payment_confirmed", "{update}");
    stack.stop().await;
}

async fn a_browser_token_in_the_subprotocol_is_accepted_and_the_app_protocol_answered(
    store: StoreKind,
) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    // GIVEN a running stack and a browser-style request: the token rides in
    // Sec-WebSocket-Protocol next to the application protocol
    let stack = spawn_on(store).await;
    let mut request = stack.websocket_url().into_client_request().unwrap();
    let bearer = format!("bearer.{}", token("customer-1", "customer"));
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("rnd.v1, {bearer}").parse().unwrap(),
    );
    // WHEN it connects
    let (_ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds");
    // THEN the application protocol (never the token) is answered, as $connect chose it
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "rnd.v1"
    );

    // WHEN a client offers the token alone
    let head = upgrade_head(stack.addr(), &bearer).await;
    // THEN the answer still names the fixed protocol and never reflects the token
    assert!(head.starts_with("HTTP/1.1 101"), "{head:.40}");
    let answered: Vec<&str> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))
        .map(|(_, value)| value.trim())
        .collect();
    assert_eq!(answered, ["rnd.v1"]);
    assert!(!head.contains(&bearer[7..]), "the token is reflected");
    stack.stop().await;
}

/// The head of the answer to a raw WebSocket upgrade offering `protocols`.
async fn upgrade_head(addr: std::net::SocketAddr, protocols: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /realtime HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {protocols}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            socket.read(&mut byte).await.unwrap(),
            1,
            "the stack hung up"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("an HTTP head")
}

/// One HTTP/1.1 request over a raw socket; returns the status and the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_log_keeps_only_the_changes_a_stream_consumer_has_yet_to_read() {
    // GIVEN a stack on a SQLite file, a chef who has received a new order and its customer
    // subscribed to it
    let config = StoreKind::Embedded.durable_config();
    let stack = spawn_with(config.clone()).await;
    let mut chef = Client::connect(&stack, "chef-1", "chef").await;
    let first = place_order(&*stack.store(), "order-1").await;
    chef.next_event("order:new").await;
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    customer.subscribe("order-1").await;
    let rnd_local::StoreConfig::Sqlite { dir } = &config.store else {
        unreachable!("an embedded durable config is a SQLite file")
    };
    let log = rnd_store_sqlite::SqliteStore::open(&dir.join(rnd_local::DATABASE_FILE))
        .expect("open the SQLite file");

    // WHEN both stream consumers have read its changes and the stack trims its log
    let logged = || async { log.changes_after(0, 100).await.expect("read the log") };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !logged().await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log still holds {:?}",
            logged().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // THEN with the stream stopped, a change nobody has read stays in the log past a trim
    stack.disable_stream();
    tokio::time::sleep(Duration::from_millis(200)).await;
    step(&*stack.store(), first).await;
    // (five trims: the stack trims every 100 ms)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let unread = logged().await;
    assert!(!unread.is_empty());
    assert!(
        unread.iter().all(|c| c.order_id.as_str() == "order-1"),
        "{unread:?}"
    );
    // AND it is delivered once the stream runs again
    stack.enable_stream();
    let update = customer.next_event("order:status_update").await;
    assert_eq!(update["data"]["status"], "payment_confirmed", "{update}");
    stack.stop().await;
    remove_data(&config);
}

async fn http(stack: &rnd_local::RunningStack, request: &str) -> (u16, String) {
    http_to(stack.addr(), request).await
}

// Store-independent: the OpenAPI document and an unauthenticated refusal never read the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_is_served_on_the_same_port() {
    // GIVEN a running stack
    let stack = spawn_stack().await;
    let bearer = token("customer-1", "customer");
    // WHEN the OpenAPI document is fetched with a token, and a profile without one
    let (doc_status, doc) = http(
        &stack,
        &format!(
            "GET /openapi.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bearer}\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    let (anonymous, _) = http(
        &stack,
        "GET /profiles/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    // THEN the HTTP API's Router answers both, as in AWS
    assert_eq!(doc_status, 200);
    assert!(doc.contains("/orders"), "{doc}");
    assert_eq!(anonymous, 401);
    stack.stop().await;
}
