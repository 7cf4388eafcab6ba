//! The WebSocket Lambda handlers, driven by the fixtures in `events/websocket/`, against the
//! embedded store and the DynamoDB store on the test database (moto).

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rnd_domain::identity::{DEV_JWT_SECRET, JwtVerifier, Role, VerifierConfig};
use rnd_domain::ids::{ConnectionId, OrderId, UserId};
use rnd_domain::order::OrderStatus;
use rnd_domain::ports::Store;
use rnd_domain::protocol::{ErrorCode, LocationRejection, SUBPROTOCOL, ServerMessage};
use rnd_domain::rooms::Room;
use rnd_handlers::authorizer::authorize;
use rnd_handlers::connection::{connect, disconnect};
use rnd_store_conformance::fixtures::{advance, placed_order};
use serde_json::{Value, json};
use support::*;

const CUSTOMER_CONN: &str = "L0SM9cOFvHcCIhw=";
const DRIVER_CONN: &str = "Dr1vErC0nnId0Q=";
const ADMIN_CONN: &str = "Adm1nC0nnId00Q=";

fn verifier() -> JwtVerifier {
    JwtVerifier::new(VerifierConfig::hs256(DEV_JWT_SECRET)).expect("dev secret is valid")
}

fn conn(id: &str) -> ConnectionId {
    ConnectionId::parse(id).expect("valid")
}

fn order_1() -> OrderId {
    OrderId::parse("order-1").expect("valid")
}

/// order-1, accepted, and its customer connected and subscribing to it: the answer.
async fn customer_subscribed<S: Store + 'static>(store: &Arc<S>) -> ServerMessage {
    order_in(&**store, OrderStatus::Accepted).await;
    open(&**store, "customer-1", "customer", CUSTOMER_CONN).await;
    send(
        store,
        "subscribe-order",
        "customer-1",
        "customer",
        CUSTOMER_CONN,
        json!({"action": "subscribe:order", "orderId": "order-1"}),
        0,
    )
    .await
}

/// The open connections in order-1's room at `at`.
async fn in_order_room<S: Store + ?Sized>(store: &S, at: DateTime<Utc>) -> Vec<ConnectionId> {
    store
        .room_members(&Room::Order(order_1()), at)
        .await
        .expect("members")
        .open
}

/// Opens a connection for `user` through the `$connect` handler.
async fn open<S: Store + ?Sized>(store: &S, user: &str, role: &str, connection: &str) {
    let json = as_caller(fixture("connect"), user, role, connection);
    let at = request_time(&json);
    let response = connect(store, &ws_event(json), at).await;
    assert_eq!(response.status_code, 200);
}

/// The open connections in `room` at `at`.
async fn members<S: Store + ?Sized>(
    store: &S,
    room: &Room,
    at: DateTime<Utc>,
) -> Vec<ConnectionId> {
    store.room_members(room, at).await.expect("members").open
}

/// Places `order-1` (customer-1, chef-1) and moves it to `status` (driver-1 assigned on the way).
async fn order_in<S: Store + ?Sized>(store: &S, status: OrderStatus) {
    let view = placed_order(
        "order-1",
        &rnd_store_conformance::fixtures::customer(),
        rnd_store_conformance::fixtures::now(),
    );
    store.create_order(&view).await.expect("create");
    advance(store, view, status).await;
}

/// Sends `body` on `connection` as `user`, through the message routes.
async fn send<S: Store + 'static>(
    store: &Arc<S>,
    fixture_name: &str,
    user: &str,
    role: &str,
    connection: &str,
    body: Value,
    later_ms: i64,
) -> ServerMessage {
    let mut json = with_body(
        as_caller(fixture(fixture_name), user, role, connection),
        body,
    );
    let at = request_time(&json) + Duration::milliseconds(later_ms);
    json["requestContext"]["requestTimeEpoch"] = at.timestamp_millis().into();
    let response = routes(Arc::clone(store)).handle(&ws_event(json), at).await;
    assert_eq!(response.status_code, 200);
    body_message(&response)
}

fn error_code(message: &ServerMessage) -> ErrorCode {
    match message {
        ServerMessage::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Authorizer

#[tokio::test]
async fn the_authorizer_allows_a_valid_token_from_the_query_header_or_subprotocol() {
    for name in [
        "authorizer-query-token",
        "authorizer-bearer-header",
        "authorizer-subprotocol",
    ] {
        let response = authorize(&verifier(), &authorizer_event(name)).await;
        let policy = serde_json::to_value(&response).expect("serializes");
        assert_eq!(policy["principalId"], "customer-1", "{name}");
        assert_eq!(
            policy["policyDocument"]["Statement"][0]["Effect"], "Allow",
            "{name}"
        );
        assert_eq!(
            policy["policyDocument"]["Statement"][0]["Resource"][0],
            "arn:aws:execute-api:us-east-1:123456789012:abc123def4/dev/$connect"
        );
        assert_eq!(policy["context"]["userId"], "customer-1");
        assert_eq!(policy["context"]["role"], "customer");
        assert_eq!(policy["context"]["name"], "Ada Customer");
        assert_eq!(policy["context"]["exp"], 4_102_444_800_i64);
    }
}

#[tokio::test]
async fn the_authorizer_denies_expired_tampered_and_missing_tokens() {
    for name in [
        "authorizer-expired-token",
        "authorizer-tampered-token",
        "authorizer-no-token",
    ] {
        let response = authorize(&verifier(), &authorizer_event(name)).await;
        let policy = serde_json::to_value(&response).expect("serializes");
        assert_eq!(
            policy["policyDocument"]["Statement"][0]["Effect"], "Deny",
            "{name}"
        );
        assert_eq!(
            policy["context"],
            json!({}),
            "{name}: no identity leaks into a Deny"
        );
    }
}

#[tokio::test]
async fn the_authorizer_denies_a_token_signed_with_another_secret() {
    let other = JwtVerifier::new(VerifierConfig::hs256(
        "a-completely-different-secret-of-enough-length",
    ))
    .expect("valid");
    let response = authorize(&other, &authorizer_event("authorizer-query-token")).await;
    let policy = serde_json::to_value(&response).expect("serializes");
    assert_eq!(policy["policyDocument"]["Statement"][0]["Effect"], "Deny");
}

// ---------------------------------------------------------------------------------------------
// $connect / $disconnect

async fn connect_stores_the_connection_in_its_user_room<S: Store + 'static>(store: Arc<S>) {
    // GIVEN the $connect event of customer-1, authorized
    let json = fixture("connect");
    let at = request_time(&json);
    // WHEN it is handled
    let response = connect(&*store, &ws_event(json), at).await;
    // THEN the connection is stored with who, where from, and its TTL, in its user room
    assert_eq!(response.status_code, 200);
    let stored = store
        .get_connection(&conn(CUSTOMER_CONN), at)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.user_id.as_str(), "customer-1");
    assert_eq!(stored.role, Role::Customer);
    assert_eq!(stored.name.as_deref(), Some("Ada Customer"));
    assert_eq!(stored.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(stored.connected_at.timestamp_millis(), 1_769_817_600_000);
    assert_eq!(
        stored.expires_at,
        stored.connected_at + Duration::hours(2) + Duration::minutes(5)
    );
    assert_eq!(
        store
            .room_members(&"user:customer-1".parse().expect("room"), at)
            .await
            .expect("members")
            .open,
        vec![conn(CUSTOMER_CONN)]
    );
    // AND in no role room: nothing is ever sent to role:customer
    assert_eq!(
        store.rooms_of(&conn(CUSTOMER_CONN)).await.expect("rooms"),
        vec![Room::User(UserId::parse("customer-1").expect("user id"))]
    );
}

async fn a_drivers_connect_writes_no_role_membership_and_an_admins_does<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN the $connect events of a driver and of an admin, authorized
    // WHEN they are handled
    open(&*store, "driver-1", "driver", DRIVER_CONN).await;
    open(&*store, "admin-1", "admin", ADMIN_CONN).await;
    let at = request_time(&fixture("connect"));
    // THEN the driver's connection is in its user room only: no membership was written into
    // the role:driver partition that every driver shares (and so $disconnect deletes none)
    assert_eq!(
        store.rooms_of(&conn(DRIVER_CONN)).await.expect("rooms"),
        vec![Room::User(UserId::parse("driver-1").expect("user id"))]
    );
    assert!(
        members(&*store, &Room::Role(Role::Driver), at)
            .await
            .is_empty()
    );
    // AND the admin's is also in role:admin, where every order's status updates go
    let mut admin_rooms = store.rooms_of(&conn(ADMIN_CONN)).await.expect("rooms");
    admin_rooms.sort();
    let mut expected = vec![
        Room::User(UserId::parse("admin-1").expect("user id")),
        Room::Role(Role::Admin),
    ];
    expected.sort();
    assert_eq!(admin_rooms, expected);
    assert_eq!(
        members(&*store, &Room::Role(Role::Admin), at).await,
        vec![conn(ADMIN_CONN)]
    );
}

async fn connect_with_a_token_in_the_subprotocol_answers_the_fixed_protocol_name<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN upgrades offering `rnd.v1` and the token, the token alone, and the token first
    let json = fixture("connect-subprotocol");
    let offered = json["headers"]["Sec-WebSocket-Protocol"]
        .as_str()
        .expect("the fixture offers subprotocols")
        .to_owned();
    let token = offered
        .split(',')
        .map(str::trim)
        .find(|p| p.starts_with("bearer."))
        .expect("the fixture offers its token")
        .to_owned();
    for (n, protocols) in [
        offered.clone(),
        token.clone(),
        token.trim_start_matches("bearer.").to_owned(),
        format!("{token}, rnd.v1"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut json = json.clone();
        json["requestContext"]["connectionId"] = format!("conn-{n}=").into();
        json["headers"]["Sec-WebSocket-Protocol"] = protocols.clone().into();
        json["multiValueHeaders"]["Sec-WebSocket-Protocol"] = serde_json::json!([protocols]);
        let at = request_time(&json);
        // WHEN $connect answers
        let response = connect(&*store, &ws_event(json), at).await;
        // THEN it accepts with the fixed name, never reflecting what was offered
        assert_eq!(response.status_code, 200);
        let answered = response
            .headers
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        assert_eq!(answered, Some(SUBPROTOCOL), "offered {protocols:.20}…");
    }

    // GIVEN an upgrade offering no subprotocol (the token in the query)
    let json = fixture("connect");
    let at = request_time(&json);
    let response = connect(&*store, &ws_event(json), at).await;
    // THEN the answer names none
    assert_eq!(response.status_code, 200);
    assert!(!response.headers.contains_key("sec-websocket-protocol"));
}

async fn disconnect_removes_the_connection_and_every_room_it_was_in<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN a customer connected and subscribed to their order
    let answer = customer_subscribed(&store).await;
    assert!(matches!(answer, ServerMessage::Subscribed(_)), "{answer:?}");
    // WHEN the $disconnect event arrives
    let json = fixture("disconnect");
    let at = request_time(&json);
    let response = disconnect(&*store, &ws_event(json), at).await;
    // THEN the connection and all its memberships are gone
    assert_eq!(response.status_code, 200);
    assert_eq!(
        store
            .get_connection(&conn(CUSTOMER_CONN), at)
            .await
            .expect("get"),
        None
    );
    for room in ["user:customer-1", "order:order-1"] {
        let members = store
            .room_members(&room.parse().expect("room"), at)
            .await
            .expect("members")
            .open;
        assert!(members.is_empty(), "{room} still has {members:?}");
    }
    // AND a second $disconnect (API Gateway may retry) is harmless
    let again = disconnect(&*store, &ws_event(fixture("disconnect")), at).await;
    assert_eq!(again.status_code, 200);
}

async fn an_admins_disconnect_takes_it_out_of_role_admin<S: Store + 'static>(store: Arc<S>) {
    // GIVEN an admin connected through $connect, so in its user room and in role:admin
    open(&*store, "admin-1", "admin", ADMIN_CONN).await;
    let at = request_time(&fixture("connect"));
    assert_eq!(
        members(&*store, &Room::Role(Role::Admin), at).await,
        vec![conn(ADMIN_CONN)]
    );
    // WHEN its $disconnect event arrives
    let json = as_caller(fixture("disconnect"), "admin-1", "admin", ADMIN_CONN);
    let at = request_time(&json);
    let response = disconnect(&*store, &ws_event(json), at).await;
    // THEN it is in neither room any more: status updates stop going to a closed socket
    assert_eq!(response.status_code, 200);
    for room in [
        Room::Role(Role::Admin),
        Room::User(UserId::parse("admin-1").expect("user id")),
    ] {
        let left = members(&*store, &room, at).await;
        assert!(left.is_empty(), "{room} still has {left:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// subscribe:order / unsubscribe:order

async fn customer_subscribes_to_their_order_and_gets_its_tracking_at_once<S: Store + 'static>(
    store: Arc<S>,
) {
    order_in(&*store, OrderStatus::InTransit).await;
    open(&*store, "customer-1", "customer", CUSTOMER_CONN).await;
    let json = fixture("subscribe-order");
    let at = request_time(&json);
    let response = routes(Arc::clone(&store)).handle(&ws_event(json), at).await;
    let ServerMessage::Subscribed(data) = body_message(&response) else {
        panic!("{response:?}")
    };
    assert_eq!(data.order_id, order_1());
    assert_eq!(data.seq, 7, "placed + six transitions");
    assert_eq!(data.tracking.seq, 7);
    assert_eq!(data.tracking.status, OrderStatus::InTransit);
    assert_eq!(data.tracking.order_number.len(), "RND-20260131-0008".len());
    assert!(data.tracking.driver_assigned);
    assert_eq!(data.tracking.status_history.len(), 7);
    assert_eq!(in_order_room(&*store, at).await, vec![conn(CUSTOMER_CONN)]);
}

async fn the_subscribed_snapshot_is_shaped_for_its_viewer<S: Store + 'static>(store: Arc<S>) {
    // GIVEN an order whose payment is confirmed but which the chef has not accepted, and its
    // customer, its chef and an admin connected
    order_in(&*store, OrderStatus::PaymentConfirmed).await;
    let parties = [
        ("customer-1", "customer", "Cust1C0nnId0Q="),
        ("chef-1", "chef", "Chef1C0nnId0Q="),
        ("admin-1", "admin", "Adm1nC0nnId0Q="),
    ];
    let mut snapshots = Vec::new();
    for (user, role, connection) in parties {
        open(&*store, user, role, connection).await;
        // WHEN each subscribes
        let answer = send(
            &store,
            "subscribe-order",
            user,
            role,
            connection,
            json!({"action": "subscribe:order", "orderId": "order-1"}),
            0,
        )
        .await;
        let ServerMessage::Subscribed(data) = answer else {
            panic!("{answer:?}")
        };
        snapshots.push(data.tracking);
    }
    let [customer, chef, admin] = <[_; 3]>::try_from(snapshots).unwrap();
    // THEN the chef has no delivery address before accepting, the customer no chef address
    assert_eq!(chef.delivery_address, None);
    assert_eq!(chef.delivery_latitude, None);
    assert!(chef.chef_address.is_some());
    assert_eq!(customer.chef_address, None);
    assert_eq!(customer.chef_longitude, None);
    assert!(customer.delivery_address.is_some());
    // AND only the admin learns who changed each status
    assert!(
        customer
            .status_history
            .iter()
            .all(|e| e.changed_by.is_none())
    );
    assert!(chef.status_history.iter().all(|e| e.changed_by.is_none()));
    assert!(admin.status_history.iter().all(|e| e.changed_by.is_some()));
    assert!(admin.delivery_address.is_some() && admin.chef_address.is_some());
}

async fn a_connection_churning_rooms_is_rate_limited_and_told_when_to_come_back<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN a connection that sent its minute's worth of subscribe and unsubscribe messages
    order_in(&*store, OrderStatus::Accepted).await;
    open(&*store, "customer-1", "customer", CUSTOMER_CONN).await;
    let limit = rnd_domain::limits::Limit::ROOM_CHANGES_PER_CONNECTION;
    let at = request_time(&fixture("unsubscribe-order"));
    let into_window = at - limit.window_start(at);
    for n in 0..limit.per_window {
        let (fixture_name, body) = if n % 2 == 0 {
            (
                "subscribe-order",
                json!({"action": "subscribe:order", "orderId": "order-1"}),
            )
        } else {
            (
                "unsubscribe-order",
                json!({"action": "unsubscribe:order", "orderId": "order-1"}),
            )
        };
        let answer = send(
            &store,
            fixture_name,
            "customer-1",
            "customer",
            CUSTOMER_CONN,
            body,
            0,
        )
        .await;
        assert!(
            !matches!(answer, ServerMessage::Error(_)),
            "{n}: {answer:?}"
        );
    }
    // WHEN it sends one more in the same minute
    let answer = send(
        &store,
        "unsubscribe-order",
        "customer-1",
        "customer",
        CUSTOMER_CONN,
        json!({"action": "unsubscribe:order", "orderId": "order-1"}),
        0,
    )
    .await;
    // THEN it is refused rate_limited, told how long until the minute is over
    let ServerMessage::Error(e) = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(e.code, ErrorCode::RateLimited);
    let expected = (limit.window - into_window).num_milliseconds();
    assert_eq!(e.retry_after_ms, Some(u64::try_from(expected).unwrap()));
    // AND once that minute is over it may again
    let later = expected + 1;
    let answer = send(
        &store,
        "unsubscribe-order",
        "customer-1",
        "customer",
        CUSTOMER_CONN,
        json!({"action": "unsubscribe:order", "orderId": "order-1"}),
        later,
    )
    .await;
    assert!(
        matches!(answer, ServerMessage::Unsubscribed(_)),
        "{answer:?}"
    );
}

async fn customer_cannot_subscribe_to_another_customers_order<S: Store + 'static>(store: Arc<S>) {
    order_in(&*store, OrderStatus::Accepted).await;
    open(&*store, "customer-2", "customer", "Cust2C0nnId0Q=").await;
    let answer = send(
        &store,
        "subscribe-order",
        "customer-2",
        "customer",
        "Cust2C0nnId0Q=",
        json!({"action": "subscribe:order", "orderId": "order-1"}),
        0,
    )
    .await;
    let ServerMessage::Error(e) = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(e.code, ErrorCode::NotFound);
    // The answer is the same as for an order that does not exist.
    let unknown = send(
        &store,
        "subscribe-order",
        "customer-2",
        "customer",
        "Cust2C0nnId0Q=",
        json!({"action": "subscribe:order", "orderId": "order-404"}),
        0,
    )
    .await;
    assert_eq!(
        answer, unknown,
        "no way to tell someone else's order from none"
    );
    let at = request_time(&fixture("subscribe-order"));
    assert!(in_order_room(&*store, at).await.is_empty());
}

async fn unsubscribe_leaves_the_order_room<S: Store + 'static>(store: Arc<S>) {
    let subscribed = customer_subscribed(&store).await;
    assert!(matches!(subscribed, ServerMessage::Subscribed(_)));
    let json = fixture("unsubscribe-order");
    let at = request_time(&json);
    let answer = body_message(&routes(Arc::clone(&store)).handle(&ws_event(json), at).await);
    let ServerMessage::Unsubscribed(data) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(data.order_id, order_1());
    assert!(in_order_room(&*store, at).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// driver:location

async fn assigned_driver_streams_a_location_and_gets_an_eta<S: Store + 'static>(store: Arc<S>) {
    order_in(&*store, OrderStatus::InTransit).await;
    open(&*store, "driver-1", "driver", DRIVER_CONN).await;
    let json = fixture("driver-location");
    let at = request_time(&json);
    let answer = body_message(&routes(Arc::clone(&store)).handle(&ws_event(json), at).await);
    let ServerMessage::LocationAcknowledged(ack) = answer else {
        panic!("{answer:?}")
    };
    assert!(ack.accepted);
    assert_eq!(ack.seq, Some(8));
    let eta = ack.eta_minutes.expect("an ETA");
    assert!((1..30).contains(&eta), "{eta} minutes across Austin");
    let view = store
        .get_order(&order_1())
        .await
        .expect("get")
        .expect("present");
    let location = view.live.location.expect("stored");
    assert_eq!(location.latitude.get(), 30.2672);
    assert_eq!(location.longitude.get(), -97.7431);
    assert_eq!(location.heading.map(f64::from), Some(270.0));
    assert_eq!(view.live.eta.map(|e| e.eta_minutes), Some(eta));
    assert_eq!(view.live.observed_speed_mps, Some(11.2));
}

async fn a_second_location_within_a_second_is_rate_limited<S: Store + 'static>(store: Arc<S>) {
    order_in(&*store, OrderStatus::PickedUp).await;
    open(&*store, "driver-1", "driver", DRIVER_CONN).await;
    let body = fixture("driver-location")["body"]
        .as_str()
        .map(|b| serde_json::from_str::<Value>(b).expect("json"))
        .expect("body");
    let first = send(
        &store,
        "driver-location",
        "driver-1",
        "driver",
        DRIVER_CONN,
        body.clone(),
        0,
    )
    .await;
    assert!(
        matches!(&first, ServerMessage::LocationAcknowledged(a) if a.accepted),
        "{first:?}"
    );
    let second = send(
        &store,
        "driver-location",
        "driver-1",
        "driver",
        DRIVER_CONN,
        body.clone(),
        300,
    )
    .await;
    let ServerMessage::LocationAcknowledged(ack) = &second else {
        panic!("{second:?}")
    };
    assert!(!ack.accepted);
    assert_eq!(ack.reason, Some(LocationRejection::RateLimited));
    assert_eq!(ack.retry_after_ms, Some(700));
    let third = send(
        &store,
        "driver-location",
        "driver-1",
        "driver",
        DRIVER_CONN,
        body,
        1_000,
    )
    .await;
    assert!(
        matches!(&third, ServerMessage::LocationAcknowledged(a) if a.accepted),
        "{third:?}"
    );
}

async fn driver_cannot_stream_location_for_an_order_assigned_to_someone_else<S: Store + 'static>(
    store: Arc<S>,
) {
    order_in(&*store, OrderStatus::InTransit).await;
    open(&*store, "driver-2", "driver", "Dr2C0nnId0Q=").await;
    let body = json!({"action": "driver:location", "orderId": "order-1", "latitude": 30.0, "longitude": -97.0});
    let answer = send(
        &store,
        "driver-location",
        "driver-2",
        "driver",
        "Dr2C0nnId0Q=",
        body,
        0,
    )
    .await;
    assert_eq!(error_code(&answer), ErrorCode::NotFound);
    let view = store
        .get_order(&order_1())
        .await
        .expect("get")
        .expect("present");
    assert_eq!(view.live.location, None);
}

async fn the_assigned_driver_cannot_stream_after_delivery<S: Store + 'static>(store: Arc<S>) {
    order_in(&*store, OrderStatus::Delivered).await;
    open(&*store, "driver-1", "driver", DRIVER_CONN).await;
    let json = fixture("driver-location");
    let at = request_time(&json);
    let answer = body_message(&routes(Arc::clone(&store)).handle(&ws_event(json), at).await);
    assert_eq!(error_code(&answer), ErrorCode::Forbidden);
}

async fn an_invalid_location_is_refused_naming_the_field<S: Store + 'static>(store: Arc<S>) {
    order_in(&*store, OrderStatus::InTransit).await;
    let json = fixture("driver-location-invalid");
    let at = request_time(&json);
    let answer = body_message(&routes(Arc::clone(&store)).handle(&ws_event(json), at).await);
    let ServerMessage::Error(e) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(e.code, ErrorCode::InvalidMessage);
    assert!(e.message.starts_with("latitude"), "{}", e.message);
    let view = store
        .get_order(&order_1())
        .await
        .expect("get")
        .expect("present");
    assert_eq!(view.live.location, None, "nothing stored");
}

// ---------------------------------------------------------------------------------------------
// $default

async fn default_route_answers_ping_hello_and_refuses_bad_messages<S: Store + 'static>(
    store: Arc<S>,
) {
    let answer = |name: &'static str| {
        let store = Arc::clone(&store);
        async move {
            let json = fixture(name);
            let at = request_time(&json);
            body_message(&routes(store).handle(&ws_event(json), at).await)
        }
    };
    let pong = answer("default-ping").await;
    let ServerMessage::Pong(p) = pong else {
        panic!("{pong:?}")
    };
    assert_eq!(p.server_time.timestamp_millis(), 1_769_817_660_000);
    let hello = answer("default-hello").await;
    let ServerMessage::Connected(c) = hello else {
        panic!("{hello:?}")
    };
    assert_eq!(c.connection_id, conn(CUSTOMER_CONN));
    assert_eq!(c.user_id.as_str(), "customer-1");
    assert_eq!(c.role, Role::Customer);
    assert_eq!(
        error_code(&answer("default-malformed").await),
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        error_code(&answer("default-unknown-action").await),
        ErrorCode::UnknownAction
    );
    assert_eq!(
        error_code(&answer("default-expired-token").await),
        ErrorCode::TokenExpired
    );
    let huge = with_body(
        fixture("default-ping"),
        json!({"action": "ping", "pad": "x".repeat(130 * 1024)}),
    );
    let at = request_time(&huge);
    let oversize = body_message(&routes(Arc::clone(&store)).handle(&ws_event(huge), at).await);
    assert_eq!(error_code(&oversize), ErrorCode::InvalidMessage);
}

async fn error_events_never_carry_internal_error_text<S: Store + 'static>(store: Arc<S>) {
    // A route event without an authorizer context is a misconfiguration: the client gets a
    // generic internal error, the log gets the reason.
    let mut json = fixture("default-ping");
    json["requestContext"]
        .as_object_mut()
        .expect("object")
        .remove("authorizer");
    let at = request_time(&json);
    let answer = body_message(&routes(store).handle(&ws_event(json), at).await);
    let ServerMessage::Error(e) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(e.code, ErrorCode::Internal);
    assert_eq!(e.message, "internal error");
}

// ---------------------------------------------------------------------------------------------
// The authorization matrix: role × ownership × action, through the handlers.

async fn authorization_matrix_for_subscribing_and_streaming<S: Store + 'static>(store: Arc<S>) {
    order_in(&*store, OrderStatus::InTransit).await;
    // (user, role, may subscribe, location answer)
    let matrix: [(&str, &str, bool, Result<(), ErrorCode>); 7] = [
        ("customer-1", "customer", true, Err(ErrorCode::Forbidden)),
        ("customer-2", "customer", false, Err(ErrorCode::NotFound)),
        ("chef-1", "chef", true, Err(ErrorCode::Forbidden)),
        ("chef-2", "chef", false, Err(ErrorCode::NotFound)),
        ("driver-1", "driver", true, Ok(())),
        ("driver-2", "driver", false, Err(ErrorCode::NotFound)),
        ("admin-1", "admin", true, Err(ErrorCode::Forbidden)),
    ];
    for (i, (user, role, may_subscribe, location)) in matrix.into_iter().enumerate() {
        let connection = format!("MatrixC0nn{i}=");
        open(&*store, user, role, &connection).await;
        let sub = send(
            &store,
            "subscribe-order",
            user,
            role,
            &connection,
            json!({"action": "subscribe:order", "orderId": "order-1"}),
            0,
        )
        .await;
        if may_subscribe {
            assert!(
                matches!(sub, ServerMessage::Subscribed(_)),
                "{user}: {sub:?}"
            );
        } else {
            assert_eq!(error_code(&sub), ErrorCode::NotFound, "{user}");
        }
        let loc = send(
            &store,
            "driver-location",
            user,
            role,
            &connection,
            json!({"action": "driver:location", "orderId": "order-1", "latitude": 30.27, "longitude": -97.74}),
            (i as i64) * 2_000,
        )
        .await;
        match location {
            Ok(()) => assert!(
                matches!(&loc, ServerMessage::LocationAcknowledged(a) if a.accepted),
                "{user}: {loc:?}"
            ),
            Err(code) => assert_eq!(error_code(&loc), code, "{user}"),
        }
    }
}

async fn the_replaying_routes_answer_their_fixtures_after_posting_the_replay<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN the customer connected and order-1 accepted (two status updates after seq 1)
    open(&*store, "customer-1", "customer", CUSTOMER_CONN).await;
    order_in(&*store, OrderStatus::Accepted).await;
    let api = rnd_notifier_apigw::mock::MockManagementApi::start().await;
    let routes = replaying_routes(Arc::clone(&store), &api);

    // WHEN the fixtures `subscribe-order-since-seq` (sinceSeq 1) and `resume` arrive
    let since = fixture("subscribe-order-since-seq");
    let at = request_time(&since);
    let subscribed = body_message(&routes.handle(&ws_event(since), at).await);
    let resume = fixture("resume");
    let resumed = body_message(&routes.handle(&ws_event(resume), at).await);

    // THEN the two status updates were posted to the connection first, then `subscribed`
    // said continuity held; and `resume` without a cursor replayed nothing
    let posted: Vec<Value> = api
        .bodies_to(CUSTOMER_CONN)
        .iter()
        .map(|b| serde_json::from_str(b).expect("JSON"))
        .collect();
    let statuses: Vec<&str> = posted
        .iter()
        .map(|b| b["data"]["status"].as_str().expect("a status update"))
        .collect();
    assert_eq!(statuses, ["payment_confirmed", "accepted"]);
    let ServerMessage::Subscribed(data) = subscribed else {
        panic!("expected subscribed, got {subscribed:?}")
    };
    assert_eq!(data.continuity, Some(rnd_domain::inbox::Continuity::Ok));
    assert_eq!(data.replayed, Some(2));
    let ServerMessage::Resumed(data) = resumed else {
        panic!("expected resumed, got {resumed:?}")
    };
    assert_eq!(data.replayed, 0);
    assert_eq!(api.bodies_to(CUSTOMER_CONN).len(), 2);
}

// ---------------------------------------------------------------------------------------------
// driver:location's fast path

const CHEF_CONN: &str = "Ch3fC0nnId0Q=";

/// order-1 in transit, its customer and chef connected and subscribed, its driver connected.
async fn watched_order_in_transit<S: Store + ?Sized>(store: &S) {
    order_in(store, OrderStatus::InTransit).await;
    open(store, "customer-1", "customer", CUSTOMER_CONN).await;
    open(store, "chef-1", "chef", CHEF_CONN).await;
    open(store, "driver-1", "driver", DRIVER_CONN).await;
    let at = request_time(&fixture("driver-location"));
    for c in [CUSTOMER_CONN, CHEF_CONN] {
        store
            .join_room(&conn(c), &Room::Order(order_1()), at)
            .await
            .expect("join");
    }
}

/// [`watched_order_in_transit`], and routes that post through a mock Management API.
async fn watched_order_with_posting_routes<S: Store + 'static>(
    store: &Arc<S>,
) -> (
    rnd_notifier_apigw::mock::MockManagementApi,
    rnd_handlers::routes::Routes<S>,
) {
    watched_order_in_transit(&**store).await;
    let api = rnd_notifier_apigw::mock::MockManagementApi::start().await;
    let routes = replaying_routes(Arc::clone(store), &api);
    (api, routes)
}

/// The events posted to `connection`, as (event, seq).
fn posted(
    api: &rnd_notifier_apigw::mock::MockManagementApi,
    connection: &str,
) -> Vec<(String, u64)> {
    api.bodies_to(connection)
        .iter()
        .map(|b| {
            let v: Value = serde_json::from_str(b).expect("JSON");
            let seq = v["data"]["seq"].as_u64().expect("seq");
            (v["event"].as_str().expect("event").to_owned(), seq)
        })
        .collect()
}

async fn an_accepted_location_is_posted_to_the_order_room_at_once_and_marked_announced<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN order-1 in transit, watched by its customer and chef, and routes that can post
    let (api, routes) = watched_order_with_posting_routes(&store).await;
    // WHEN its driver sends a location
    let json = fixture("driver-location");
    let at = request_time(&json);
    let answer = body_message(&routes.handle(&ws_event(json), at).await);
    // THEN the driver's acknowledgement says seq 8
    let ServerMessage::LocationAcknowledged(ack) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!((ack.accepted, ack.seq), (true, Some(8)));
    // AND both watchers already have the location and the first ETA, at that seq, once each
    let expected = [
        ("driver:location_update".to_owned(), 8),
        ("order:eta_update".to_owned(), 8),
    ];
    assert_eq!(posted(&api, CUSTOMER_CONN), expected);
    assert_eq!(posted(&api, CHEF_CONN), expected);
    // AND the driver, who is not in the room, gets nothing but the acknowledgement
    assert!(api.bodies_to(DRIVER_CONN).is_empty());
    // AND the live item says its events were announced, so the stream will not post them again
    let view = store
        .get_order(&order_1())
        .await
        .expect("get")
        .expect("present");
    assert_eq!(view.live.announced_seq, Some(8));
    assert!(view.live.announced());
}

async fn a_driver_asking_for_refusals_only_hears_nothing_when_accepted_and_hears_a_refusal<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN a watched order in transit
    let (api, routes) = watched_order_with_posting_routes(&store).await;
    let body = json!({"action": "driver:location", "orderId": "order-1", "latitude": 30.2672,
                      "longitude": -97.7431, "ack": "refusals"});
    let event = |later_ms: i64| {
        let mut json = with_body(fixture("driver-location"), body.clone());
        let at = request_time(&json) + Duration::milliseconds(later_ms);
        json["requestContext"]["requestTimeEpoch"] = at.timestamp_millis().into();
        (ws_event(json), at)
    };
    // WHEN the driver sends a location asking for refusals only
    let (first, at) = event(0);
    let response = routes.handle(&first, at).await;
    // THEN the route answers with no body (API Gateway sends nothing), and the watchers have it
    assert_eq!(response.status_code, 200);
    assert!(response.body.is_none(), "{response:?}");
    assert_eq!(
        posted(&api, CUSTOMER_CONN)[0],
        ("driver:location_update".to_owned(), 8)
    );
    // WHEN it sends another 300 ms later
    let (second, at) = event(300);
    let answer = body_message(&routes.handle(&second, at).await);
    // THEN that refusal is answered, with the time to wait, and nobody else hears of it
    let ServerMessage::LocationAcknowledged(ack) = &answer else {
        panic!("{answer:?}")
    };
    assert!(!ack.accepted);
    assert_eq!(ack.reason, Some(LocationRejection::RateLimited));
    assert_eq!(ack.retry_after_ms, Some(700));
    assert_eq!(
        posted(&api, CUSTOMER_CONN).len(),
        2,
        "the first location and its ETA only"
    );
}

async fn routes_that_cannot_post_leave_the_location_to_the_stream<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN a watched order in transit, and routes without a notifier
    watched_order_in_transit(&*store).await;
    // WHEN its driver sends a location
    let json = fixture("driver-location");
    let at = request_time(&json);
    let answer = body_message(&routes(Arc::clone(&store)).handle(&ws_event(json), at).await);
    // THEN it is accepted, and the live item carries no mark: the stream's fan-out delivers it
    assert!(
        matches!(&answer, ServerMessage::LocationAcknowledged(a) if a.accepted),
        "{answer:?}"
    );
    let view = store
        .get_order(&order_1())
        .await
        .expect("get")
        .expect("present");
    assert_eq!(view.live.announced_seq, None);
    assert!(view.live.location.is_some());
}

#[tokio::test]
async fn a_route_function_without_a_management_endpoint_cannot_replay_and_says_internal() {
    // GIVEN routes wired without a notifier (as the functions of routes that never replay)
    let store = rnd_test_support::sqlite().await;
    open(&*store, "customer-1", "customer", CUSTOMER_CONN).await;
    order_in(&*store, OrderStatus::Accepted).await;
    // WHEN a replay reaches them anyway (a misrouted template)
    let json = fixture("subscribe-order-since-seq");
    let at = request_time(&json);
    let answer = body_message(&routes(Arc::clone(&store)).handle(&ws_event(json), at).await);
    // THEN the client gets an internal error that says nothing of why
    assert_eq!(error_code(&answer), ErrorCode::Internal);
    let ServerMessage::Error(e) = answer else {
        unreachable!()
    };
    assert!(!e.message.contains("Management"), "{}", e.message);
}

on_both_stores!(
    an_accepted_location_is_posted_to_the_order_room_at_once_and_marked_announced,
    a_driver_asking_for_refusals_only_hears_nothing_when_accepted_and_hears_a_refusal,
    routes_that_cannot_post_leave_the_location_to_the_stream,
    the_replaying_routes_answer_their_fixtures_after_posting_the_replay,
    connect_stores_the_connection_in_its_user_room,
    a_drivers_connect_writes_no_role_membership_and_an_admins_does,
    connect_with_a_token_in_the_subprotocol_answers_the_fixed_protocol_name,
    disconnect_removes_the_connection_and_every_room_it_was_in,
    an_admins_disconnect_takes_it_out_of_role_admin,
    customer_subscribes_to_their_order_and_gets_its_tracking_at_once,
    the_subscribed_snapshot_is_shaped_for_its_viewer,
    a_connection_churning_rooms_is_rate_limited_and_told_when_to_come_back,
    customer_cannot_subscribe_to_another_customers_order,
    unsubscribe_leaves_the_order_room,
    assigned_driver_streams_a_location_and_gets_an_eta,
    a_second_location_within_a_second_is_rate_limited,
    driver_cannot_stream_location_for_an_order_assigned_to_someone_else,
    the_assigned_driver_cannot_stream_after_delivery,
    an_invalid_location_is_refused_naming_the_field,
    default_route_answers_ping_hello_and_refuses_bad_messages,
    error_events_never_carry_internal_error_text,
    authorization_matrix_for_subscribing_and_streaming,
);
