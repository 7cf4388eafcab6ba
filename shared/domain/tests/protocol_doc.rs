//! `docs/protocol.md` says what the code does: every action has a section, and every event has
//! one naming every field its payload can carry (each example below sets every optional field).

mod common;

use std::collections::BTreeMap;

use common::*;
use rnd_domain::live::{DriverLocation, Eta, LiveState};
use rnd_domain::order::OrderStatus;
use rnd_domain::protocol::{
    ClientMessage, ConnectedData, LocationAckData, LocationAcks, LocationRejection, PongData,
    ProtocolError, ResumedData, ServerMessage, SubscribedData, UnsubscribedData, action,
    parse_client_message,
};
use rnd_domain::tracking::OrderTracking;
use rnd_domain::visibility::Visibility;
use rnd_domain::{OrderRecord, derive_events};

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    std::fs::read_to_string(path).expect("docs/protocol.md")
}

/// The text of each `### \`name\`` section, by name.
fn sections(doc: &str) -> BTreeMap<String, String> {
    doc.split("\n### `")
        .skip(1)
        .filter_map(|part| {
            let (name, body) = part.split_once('`')?;
            let body = body.split("\n## ").next().unwrap_or(body);
            Some((name.to_owned(), body.to_owned()))
        })
        .collect()
}

/// Every kind of server message: adding one fails to compile until it is listed here.
fn covered(message: &ServerMessage) {
    match message {
        ServerMessage::Connected(_)
        | ServerMessage::Subscribed(_)
        | ServerMessage::Unsubscribed(_)
        | ServerMessage::LocationAcknowledged(_)
        | ServerMessage::Pong(_)
        | ServerMessage::Resumed(_)
        | ServerMessage::Error(_)
        | ServerMessage::OrderNew(_)
        | ServerMessage::StatusUpdate(_)
        | ServerMessage::NewAssignment(_)
        | ServerMessage::LocationUpdate(_)
        | ServerMessage::EtaUpdate(_) => {}
    }
}

/// One of each, with every optional field set.
fn examples() -> Vec<ServerMessage> {
    let view = order_in(OrderStatus::InTransit);
    let mut out = vec![
        ServerMessage::Connected(ConnectedData {
            connection_id: rnd_domain::ConnectionId::parse("c-1").unwrap(),
            user_id: customer().user_id,
            role: customer().role,
            server_time: t(0),
        }),
        ServerMessage::Subscribed(Box::new(SubscribedData {
            order_id: view.order.order_id.clone(),
            seq: view.seq(),
            tracking: OrderTracking::of(&view, Visibility::ALL),
            continuity: Some(rnd_domain::inbox::Continuity::Ok),
            replayed: Some(2),
        })),
        ServerMessage::Unsubscribed(UnsubscribedData {
            order_id: view.order.order_id.clone(),
        }),
        ServerMessage::LocationAcknowledged(LocationAckData {
            order_id: view.order.order_id.clone(),
            accepted: false,
            eta_minutes: Some(5),
            reason: Some(LocationRejection::RateLimited),
            retry_after_ms: Some(300),
            seq: Some(9),
        }),
        ServerMessage::Pong(PongData { server_time: t(0) }),
        ServerMessage::Resumed(ResumedData {
            cursor: "c".into(),
            replayed: 1,
            continuity: rnd_domain::inbox::Continuity::Ok,
        }),
        ProtocolError::rate_limited("slow down", 1_500).to_message(),
    ];
    // The order events, as derived, with notes, a reason, a heading and a speed.
    let mut placed = placed();
    placed.order.notes = Some("ring twice".into());
    for o in derive_events(None, Some(&OrderRecord::Order(placed.order.clone()))) {
        out.push(o.message.delivered(Some("c".into()), true));
    }
    let ready = order_in(OrderStatus::ReadyForPickup);
    let mut assigned = ready.apply(&admin(), assign(), t(20)).unwrap();
    assigned.order.notes = Some("ring twice".into());
    for o in derive_events(
        Some(&OrderRecord::Order(ready.order.clone())),
        Some(&OrderRecord::Order(assigned.order.clone())),
    ) {
        out.push(o.message.delivered(Some("c".into()), true));
    }
    let cancelled = ready.apply(&admin(), cancel(), t(21)).unwrap();
    for o in derive_events(
        Some(&OrderRecord::Order(ready.order.clone())),
        Some(&OrderRecord::Order(cancelled.order.clone())),
    ) {
        out.push(o.message.delivered(Some("c".into()), true));
    }
    let moving: LiveState = LiveState {
        location: Some(
            serde_json::from_value::<DriverLocation>(serde_json::json!({
                "latitude": 30.27, "longitude": -97.74, "heading": 90.0, "speed": 8.0,
                "accuracy": 5.0, "recordedAt": t(30),
            }))
            .unwrap(),
        ),
        location_accepted_at_ms: Some(t(30).timestamp_millis()),
        eta: Some(Eta {
            eta_minutes: 7,
            estimated_delivery_time: t(37),
            computed_at: t(30),
        }),
        seq: view.live.seq + 1,
        ..view.live.clone()
    };
    for o in derive_events(
        Some(&OrderRecord::Live(view.live.clone())),
        Some(&OrderRecord::Live(moving)),
    ) {
        out.push(o.message);
    }
    out
}

#[test]
fn every_action_has_a_section() {
    let sections = sections(&doc());
    for name in action::ALL {
        assert!(
            sections.contains_key(name),
            "docs/protocol.md has no section for `{name}`"
        );
    }
}

#[test]
fn the_location_section_names_every_acknowledgement_mode_and_each_parses() {
    // GIVEN the driver:location section
    let sections = sections(&doc());
    let section = &sections[action::DRIVER_LOCATION];
    // WHEN each mode the code knows is looked up THEN the section names it with its field, and
    // a message carrying it parses to that mode
    assert!(section.contains("| `ack` |"), "{section}");
    let modes = [LocationAcks::All, LocationAcks::Refusals];
    for (name, mode) in LocationAcks::NAMES.into_iter().zip(modes) {
        assert!(
            section.contains(&format!("`{name}`")),
            "`{name}` in {section}"
        );
        let text = format!(
            r#"{{"action":"driver:location","orderId":"o-1","latitude":1,"longitude":2,"ack":"{name}"}}"#
        );
        match parse_client_message(&text).unwrap() {
            ClientMessage::DriverLocation(report) => assert_eq!(report.ack, mode),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn every_event_has_a_section_naming_every_field_of_its_payload() {
    let sections = sections(&doc());
    let mut seen = std::collections::BTreeSet::new();
    for message in examples() {
        covered(&message);
        let name = message.event_name();
        seen.insert(name);
        let section = sections
            .get(name)
            .unwrap_or_else(|| panic!("docs/protocol.md has no section for `{name}`"));
        let json = serde_json::to_value(&message).unwrap();
        for field in json["data"].as_object().expect("data").keys() {
            assert!(
                section.contains(&format!("| `{field}` |")),
                "docs/protocol.md: `{name}` does not document its field `{field}`"
            );
        }
    }
    assert_eq!(
        seen.len(),
        12,
        "an example of every server message: {seen:?}"
    );
}

#[test]
fn the_continuity_words_are_all_explained() {
    let doc = doc();
    for word in [
        "`resume`",
        "`resumed`",
        "`cursor`",
        "`sinceSeq`",
        "`continuity`",
        "`previousStatusSeq`",
        "gap rule",
    ] {
        assert!(doc.contains(word), "docs/protocol.md never mentions {word}");
    }
}
