//! A [`PushMessage`] as the body of FCM HTTP v1 `messages:send`:
//!
//! ```json
//! {"message": {
//!   "token": "…",
//!   "notification": {"title": "…", "body": "…"},
//!   "data": {"event": "order:status_update", "orderId": "…", …},
//!   "android": {"collapse_key": "…", "priority": "HIGH" | "NORMAL"},
//!   "apns": {"headers": {"apns-collapse-id": "…", "apns-priority": "10" | "5"}}
//! }}
//! ```
//!
//! The collapse key goes to both platforms (Android's `collapse_key`, APNs'
//! `apns-collapse-id`) and is left out when empty; the priority too (`HIGH` / `10` wakes the
//! device now, `NORMAL` / `5` lets it save power); `data` is left out when empty.

use std::collections::BTreeMap;

use hyper::body::Bytes;
use rnd_domain::push::PushMessage;
use serde::Serialize;

#[derive(Serialize)]
struct SendRequest<'a> {
    message: Message<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    token: &'a str,
    notification: Notification<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    data: &'a BTreeMap<String, String>,
    android: Android<'a>,
    apns: Apns<'a>,
}

#[derive(Serialize)]
struct Notification<'a> {
    title: &'a str,
    body: &'a str,
}

#[derive(Serialize)]
struct Android<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    collapse_key: &'a str,
    priority: &'static str,
}

#[derive(Serialize)]
struct Apns<'a> {
    headers: ApnsHeaders<'a>,
}

#[derive(Serialize)]
struct ApnsHeaders<'a> {
    #[serde(rename = "apns-collapse-id", skip_serializing_if = "str::is_empty")]
    collapse_id: &'a str,
    #[serde(rename = "apns-priority")]
    priority: &'static str,
}

/// The JSON body of the `messages:send` request for `message`.
pub(crate) fn request_body(message: &PushMessage) -> Bytes {
    let (android_priority, apns_priority) = if message.high_priority {
        ("HIGH", "10")
    } else {
        ("NORMAL", "5")
    };
    let request = SendRequest {
        message: Message {
            token: &message.token,
            notification: Notification {
                title: &message.title,
                body: &message.body,
            },
            data: &message.data,
            android: Android {
                collapse_key: &message.collapse_key,
                priority: android_priority,
            },
            apns: Apns {
                headers: ApnsHeaders {
                    collapse_id: &message.collapse_key,
                    priority: apns_priority,
                },
            },
        },
    };
    // Strings and a map of strings: serializing cannot fail.
    Bytes::from(serde_json::to_vec(&request).expect("a message serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn message(high_priority: bool, collapse_key: &str) -> PushMessage {
        PushMessage {
            token: "device-token".to_owned(),
            title: "Order ready".to_owned(),
            body: "Your order is on its way".to_owned(),
            data: BTreeMap::new(),
            collapse_key: collapse_key.to_owned(),
            high_priority,
        }
    }

    fn body_of(message: &PushMessage) -> Value {
        serde_json::from_slice(&request_body(message)).unwrap()
    }

    #[test]
    fn a_normal_priority_message_asks_both_platforms_to_save_power() {
        // GIVEN a normal-priority message WHEN encoded THEN Android NORMAL and APNs 5
        let body = body_of(&message(false, "order-1"));
        assert_eq!(body["message"]["android"]["priority"], "NORMAL");
        assert_eq!(body["message"]["apns"]["headers"]["apns-priority"], "5");
    }

    #[test]
    fn an_empty_collapse_key_and_empty_data_are_left_out() {
        // GIVEN no collapse key and no data WHEN encoded THEN neither field is sent
        let body = body_of(&message(true, ""));
        assert_eq!(
            body,
            json!({"message": {
                "token": "device-token",
                "notification": {"title": "Order ready", "body": "Your order is on its way"},
                "android": {"priority": "HIGH"},
                "apns": {"headers": {"apns-priority": "10"}},
            }})
        );
    }
}
