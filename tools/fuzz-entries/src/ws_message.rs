//! `ws_message`: the WebSocket message parser.
//!
//! The bytes are a client frame: [`parse_client_message`] reads it as every message route does
//! (`Routes::answer`), then the steps that read the parsed message's client-supplied values
//! run: a location's time is stamped ([`LocationReport::to_location`]), a `resume` cursor is
//! decoded and placed in an inbox ([`Cursor::decode`], [`inbox::replay_from`]), and a refusal
//! becomes the `error` event sent back. When the bytes are a whole WebSocket proxy event
//! (the `events/websocket/` fixtures), the caller is read from it as the routes read it
//! ([`caller`], [`request_time`]) and its body is parsed as a frame.
//!
//! Asserted: a refusal names what is wrong and its `error` event reads back as itself; a frame
//! over the size limit is refused as `invalid_message`; a device time is never trusted beyond
//! the skew; a decoded cursor is the one that was sent.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rnd_domain::ids::UserId;
use rnd_domain::inbox::{self, Cursor};
use rnd_domain::protocol::{
    ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, ServerMessage, parse_client_message,
};
use rnd_handlers::context::{caller, request_time};

/// The time the messages are handled at (the fixtures' day).
fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_769_817_660, 0)
        .single()
        .expect("a valid instant")
}

/// Runs one input; panics on a finding.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        // API Gateway hands text frames to the routes as strings.
        return;
    };
    frame(text, &UserId::parse("customer-1").expect("a valid user id"));
    if let Ok(event) = serde_json::from_str::<ApiGatewayWebsocketProxyRequest>(text) {
        let at = request_time(&event, now());
        assert!(at.timestamp_millis() > 0, "a request time after the epoch");
        let user = match caller(&event) {
            Ok(caller) => caller.identity.actor.user_id,
            Err(_) => UserId::parse("customer-1").expect("a valid user id"),
        };
        if let Some(body) = event.body.as_deref() {
            frame(body, &user);
        }
    }
}

/// Parses one frame of `user`'s and follows the parsed message where it carries client values.
fn frame(text: &str, user: &UserId) {
    match parse_client_message(text) {
        Err(refusal) => {
            assert!(!refusal.message.is_empty(), "a refusal says why");
            if text.len() > MAX_MESSAGE_BYTES {
                assert_eq!(refusal.code, ErrorCode::InvalidMessage);
            }
            let event = refusal.to_message();
            let wire: ServerMessage =
                serde_json::from_str(&event.to_json()).expect("the error event is JSON");
            assert_eq!(wire, event, "the error event reads back as itself");
        }
        Ok(ClientMessage::DriverLocation(report)) => {
            let location = report.to_location(now());
            assert!(
                location.recorded_at <= now() + Duration::seconds(30),
                "a device time in the future is not trusted"
            );
            if let Some(recorded) = report.recorded_at
                && recorded <= now()
            {
                assert_eq!(location.recorded_at, recorded, "a past device time is kept");
            }
        }
        Ok(ClientMessage::Resume {
            cursor: Some(text), ..
        }) => {
            if let Ok(cursor) = Cursor::decode(&text, user) {
                assert!(
                    cursor.encode(user).eq_ignore_ascii_case(&text),
                    "a decoded cursor is the one that was sent"
                );
                // An inbox at epoch 1 whose newest event is at position 10.
                if let Ok(from) = inbox::replay_from(cursor, 1, 10) {
                    assert!(from <= 10, "a replay starts within the inbox");
                }
            }
        }
        Ok(_) => {}
    }
}
