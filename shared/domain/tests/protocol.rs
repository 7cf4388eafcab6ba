//! The WebSocket wire format: parsing client messages and the shape of server messages.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use rnd_domain::order::OrderStatus;
use rnd_domain::protocol::{
    ClientMessage, ErrorCode, LocationAckData, LocationAcks, MAX_MESSAGE_BYTES, PongData,
    ServerMessage, SubscribedData, parse_client_message,
};
use rnd_domain::tracking::OrderTracking;
use rnd_domain::visibility::Visibility;
use serde_json::json;

fn code(text: &str) -> ErrorCode {
    parse_client_message(text).unwrap_err().code
}

fn message(text: &str) -> String {
    parse_client_message(text).unwrap_err().message
}

#[test]
fn subscribe_unsubscribe_ping_and_hello_parse() {
    assert!(matches!(
        parse_client_message(r#"{"action":"subscribe:order","orderId":"o-1"}"#).unwrap(),
        ClientMessage::SubscribeOrder { order_id, since_seq: None } if order_id.as_str() == "o-1"
    ));
    assert!(matches!(
        parse_client_message(r#"{"action":"unsubscribe:order","orderId":"o-1"}"#).unwrap(),
        ClientMessage::UnsubscribeOrder { .. }
    ));
    assert_eq!(
        parse_client_message(r#"{"action":"ping"}"#).unwrap(),
        ClientMessage::Ping
    );
    assert_eq!(
        parse_client_message(r#"{"action":"hello","extra":1}"#).unwrap(),
        ClientMessage::Hello
    );
}

#[test]
fn a_driver_location_parses_with_its_optional_fields() {
    let msg = parse_client_message(
        r#"{"action":"driver:location","orderId":"o-1","latitude":30.2672,"longitude":-97.7431,
            "heading":270,"speed":12.5,"accuracy":4,"recordedAt":"2026-01-31T00:25:00Z"}"#,
    )
    .unwrap();
    let ClientMessage::DriverLocation(r) = msg else {
        panic!()
    };
    assert_eq!(r.latitude.get(), 30.2672);
    assert_eq!(r.longitude.get(), -97.7431);
    assert_eq!(r.heading.map(f64::from), Some(270.0));
    assert_eq!(r.speed.map(f64::from), Some(12.5));
    assert_eq!(r.accuracy.map(f64::from), Some(4.0));
    assert_eq!(
        r.recorded_at,
        Some(Utc.with_ymd_and_hms(2026, 1, 31, 0, 25, 0).unwrap())
    );
    let minimal =
        parse_client_message(r#"{"action":"driver:location","orderId":"o-1","latitude":0,"longitude":0,"recordedAt":1769819100000}"#)
            .unwrap();
    let ClientMessage::DriverLocation(m) = minimal else {
        panic!()
    };
    assert!(m.heading.is_none() && m.speed.is_none() && m.accuracy.is_none());
    assert_eq!(m.recorded_at.unwrap().timestamp_millis(), 1_769_819_100_000);
}

#[test]
fn a_driver_location_is_acknowledged_always_unless_it_asks_for_refusals_only() {
    // GIVEN locations without `ack`, with each mode, and with a mode nobody knows
    let with = |ack: &str| {
        format!(r#"{{"action":"driver:location","orderId":"o-1","latitude":0,"longitude":0{ack}}}"#)
    };
    let ack = |text: &str| match parse_client_message(text).unwrap() {
        ClientMessage::DriverLocation(r) => r.ack,
        other => panic!("{other:?}"),
    };
    // WHEN they are parsed THEN the default and "all" acknowledge every location, "refusals"
    // only refused ones
    assert_eq!(ack(&with("")), LocationAcks::All);
    assert_eq!(ack(&with(r#","ack":null"#)), LocationAcks::All);
    assert_eq!(ack(&with(r#","ack":"all""#)), LocationAcks::All);
    assert_eq!(ack(&with(r#","ack":"refusals""#)), LocationAcks::Refusals);
    assert!(LocationAcks::All.accepted() && !LocationAcks::Refusals.accepted());
    // AND anything else is refused, naming the field and its values
    for bad in [
        r#","ack":"none""#,
        r#","ack":true"#,
        r#","ack":["refusals"]"#,
    ] {
        assert_eq!(code(&with(bad)), ErrorCode::InvalidMessage, "{bad}");
        assert_eq!(message(&with(bad)), r#"ack must be "all" or "refusals""#);
    }
}

#[test]
fn malformed_and_non_object_messages_are_invalid() {
    assert_eq!(code("not json"), ErrorCode::InvalidMessage);
    assert_eq!(code("[1,2]"), ErrorCode::InvalidMessage);
    assert_eq!(code("\"ping\""), ErrorCode::InvalidMessage);
    assert_eq!(code("{}"), ErrorCode::InvalidMessage);
    assert_eq!(message("{}"), "action is required");
    assert_eq!(code(r#"{"action":7}"#), ErrorCode::InvalidMessage);
}

#[test]
fn unknown_actions_have_their_own_code() {
    assert_eq!(
        code(r#"{"action":"order:delete"}"#),
        ErrorCode::UnknownAction
    );
}

#[test]
fn missing_or_invalid_fields_are_named() {
    let cases = [
        (r#"{"action":"subscribe:order"}"#, "orderId"),
        (r#"{"action":"subscribe:order","orderId":5}"#, "orderId"),
        (r#"{"action":"subscribe:order","orderId":"a#b"}"#, "orderId"),
        (
            r#"{"action":"driver:location","orderId":"o","longitude":1}"#,
            "latitude",
        ),
        (
            r#"{"action":"driver:location","orderId":"o","latitude":91,"longitude":1}"#,
            "latitude",
        ),
        (
            r#"{"action":"driver:location","orderId":"o","latitude":1,"longitude":-181}"#,
            "longitude",
        ),
        (
            r#"{"action":"driver:location","orderId":"o","latitude":"1","longitude":1}"#,
            "latitude",
        ),
        (
            r#"{"action":"driver:location","orderId":"o","latitude":1,"longitude":1,"heading":400}"#,
            "heading",
        ),
        (
            r#"{"action":"driver:location","orderId":"o","latitude":1,"longitude":1,"speed":-3}"#,
            "speed",
        ),
        (
            r#"{"action":"driver:location","orderId":"o","latitude":1,"longitude":1,"accuracy":-1}"#,
            "accuracy",
        ),
        (
            r#"{"action":"driver:location","orderId":"o","latitude":1,"longitude":1,"recordedAt":"yesterday"}"#,
            "recordedAt",
        ),
    ];
    for (text, field) in cases {
        let err = parse_client_message(text).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMessage, "{text}");
        assert!(err.message.starts_with(field), "{text}: {}", err.message);
    }
}

#[test]
fn a_message_over_128_kb_is_refused_without_being_parsed() {
    let padding = "x".repeat(MAX_MESSAGE_BYTES);
    let text = format!(r#"{{"action":"ping","pad":"{padding}"}}"#);
    assert_eq!(code(&text), ErrorCode::InvalidMessage);
    assert!(message(&text).contains("larger than"));
}

#[test]
fn a_device_time_far_in_the_future_is_replaced_by_the_server_time() {
    let ClientMessage::DriverLocation(r) = parse_client_message(
        r#"{"action":"driver:location","orderId":"o","latitude":1,"longitude":1,"recordedAt":"2099-01-01T00:00:00Z"}"#,
    )
    .unwrap() else {
        panic!()
    };
    let now = t(5);
    assert_eq!(r.to_location(now).recorded_at, now);
}

#[test]
fn server_messages_have_the_event_and_data_envelope() {
    let pong = ServerMessage::Pong(PongData { server_time: t(1) });
    assert_eq!(
        serde_json::to_value(&pong).unwrap(),
        json!({"event": "pong", "data": {"serverTime": "2026-01-31T00:01:00Z"}})
    );
    let err = ServerMessage::error(ErrorCode::TokenExpired, "the token has expired");
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({"event": "error", "data": {"code": "token_expired", "message": "the token has expired"}})
    );
    let ack = ServerMessage::LocationAcknowledged(LocationAckData {
        order_id: rnd_domain::OrderId::parse("o-1").unwrap(),
        accepted: false,
        eta_minutes: None,
        reason: Some(rnd_domain::protocol::LocationRejection::RateLimited),
        retry_after_ms: Some(400),
        seq: None,
    });
    assert_eq!(
        serde_json::to_value(&ack).unwrap(),
        json!({"event": "driver:location_acknowledged",
               "data": {"orderId": "o-1", "accepted": false, "reason": "rate_limited", "retryAfterMs": 400}})
    );
    // And they read back (clients and tests parse them).
    let back: ServerMessage = serde_json::from_str(&ack.to_json()).unwrap();
    assert_eq!(back, ack);
}

#[test]
fn the_subscribed_answer_carries_the_tracking_payload_with_the_seeds_names() {
    let view = order_in(OrderStatus::InTransit);
    let msg = ServerMessage::Subscribed(Box::new(SubscribedData {
        order_id: view.order.order_id.clone(),
        seq: view.seq(),
        tracking: OrderTracking::of(&view, Visibility::ALL),
        continuity: None,
        replayed: None,
    }));
    let v = serde_json::to_value(&msg).unwrap();
    assert_eq!(v["event"], "subscribed");
    assert_eq!(v["data"]["seq"], 7);
    let tracking = &v["data"]["tracking"];
    for key in [
        "orderId",
        "orderNumber",
        "status",
        "customerName",
        "deliveryAddress",
        "deliveryLatitude",
        "deliveryLongitude",
        "chefName",
        "chefBusinessName",
        "chefAddress",
        "chefLatitude",
        "chefLongitude",
        "driverAssigned",
        "driverName",
        "driverPhone",
        "statusHistory",
        "createdAt",
        "paymentConfirmedAt",
        "acceptedAt",
        "readyAt",
        "assignedAt",
        "pickedUpAt",
        "seq",
    ] {
        assert!(tracking.get(key).is_some(), "missing {key}");
    }
    assert_eq!(tracking["status"], "in_transit");
    assert_eq!(tracking["driverAssigned"], true);
    assert_eq!(tracking["statusHistory"][0]["status"], "pending");
    assert_eq!(tracking["statusHistory"][0]["changedBy"], "customer-1");
    assert!(
        tracking.get("deliveredAt").is_none(),
        "absent until delivered"
    );
}

#[test]
fn subscribe_with_since_seq_and_resume_with_or_without_a_cursor_parse() {
    assert!(matches!(
        parse_client_message(r#"{"action":"subscribe:order","orderId":"o-1","sinceSeq":4}"#)
            .unwrap(),
        ClientMessage::SubscribeOrder {
            since_seq: Some(4),
            ..
        }
    ));
    assert_eq!(
        parse_client_message(r#"{"action":"resume","cursor":"abc"}"#).unwrap(),
        ClientMessage::Resume {
            cursor: Some("abc".into())
        }
    );
    assert_eq!(
        parse_client_message(r#"{"action":"resume"}"#).unwrap(),
        ClientMessage::Resume { cursor: None }
    );
}

#[test]
fn a_since_seq_or_cursor_of_the_wrong_type_is_an_invalid_message_naming_it() {
    for text in [
        r#"{"action":"subscribe:order","orderId":"o-1","sinceSeq":-1}"#,
        r#"{"action":"subscribe:order","orderId":"o-1","sinceSeq":1.5}"#,
        r#"{"action":"subscribe:order","orderId":"o-1","sinceSeq":"3"}"#,
    ] {
        assert_eq!(code(text), ErrorCode::InvalidMessage, "{text}");
        assert!(message(text).contains("sinceSeq"), "{text}");
    }
    let text = r#"{"action":"resume","cursor":7}"#;
    assert_eq!(code(text), ErrorCode::InvalidMessage);
    assert!(message(text).contains("cursor"));
}
