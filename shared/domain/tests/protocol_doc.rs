//! `docs/protocol.md` says what the code does: every action has a section, and every event has
//! one naming every field its payload can carry (each example below sets every optional field).

mod common;

use std::collections::BTreeMap;

use common::*;
use rnd_domain::protocol::{ClientMessage, LocationAcks, action, parse_client_message};

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
    for message in server_message_examples() {
        every_server_message_kind(&message);
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
