//! `docs/asyncapi.yaml` says what the code does: its `components.schemas` are exactly the
//! schemas derived from the protocol types ([`rnd_domain::protocol_schema`]), every action and
//! event has its message, payload and operation, every message the code can send fits its
//! event's schema, and the parser accepts exactly the client messages the action schemas allow.
//!
//! `UPDATE_ASYNCAPI=1 cargo test -p rnd-domain --test asyncapi` rewrites the generated part
//! (everything below the marker line) from the code.

mod common;

use std::collections::BTreeSet;

use common::*;
use rnd_domain::geo::{Accuracy, Heading, Latitude, Longitude, Speed};
use rnd_domain::ids::OrderId;
use rnd_domain::limits::Limit;
use rnd_domain::protocol::{
    ClientMessage, LocationAcks, LocationReport, MAX_MESSAGE_BYTES, SUBPROTOCOL, action,
    parse_client_message,
};
use rnd_domain::protocol_schema::{
    SCHEMAS_POINTER, action_schema_name, component_schemas, event_schema_name, schema_ref,
};
use serde_json::{Value, json};

/// The line after which the document is generated.
const MARKER: &str =
    "  # Generated from the Rust protocol types below this line: do not edit by hand.\n";

const CHANNEL: &str = "realtime";

fn path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/asyncapi.yaml")
}

/// The document's text; with `UPDATE_ASYNCAPI` set, as the update writes it (so every test
/// checks what is being written).
fn text() -> String {
    let text = std::fs::read_to_string(path()).expect("docs/asyncapi.yaml");
    if std::env::var_os("UPDATE_ASYNCAPI").is_some() {
        rendered(&text)
    } else {
        text
    }
}

/// The document as JSON.
fn document() -> Value {
    serde_yaml_ng::from_str(&text()).expect("docs/asyncapi.yaml is YAML")
}

/// The document with its generated part made from the code: the written part as it is, then
/// the schemas as `components.schemas`.
fn rendered(current: &str) -> String {
    let (written, _) = current
        .split_once(MARKER)
        .expect("docs/asyncapi.yaml has the marker line of its generated part");
    let schemas = serde_yaml_ng::to_string(&json!({ "schemas": component_schemas() }))
        .expect("schemas as YAML");
    let mut out = format!("{written}{MARKER}");
    for line in schemas.lines() {
        if !line.is_empty() {
            out.push_str("  ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn the_generated_part_is_what_the_protocol_types_say() {
    // GIVEN the document on disk
    let current = std::fs::read_to_string(path()).expect("docs/asyncapi.yaml");
    // WHEN its generated part is made again from the protocol types
    let expected = rendered(&current);
    if std::env::var_os("UPDATE_ASYNCAPI").is_some() {
        std::fs::write(path(), &expected).expect("write docs/asyncapi.yaml");
        return;
    }
    // THEN nothing changed
    assert!(
        current == expected,
        "docs/asyncapi.yaml is out of date with the protocol types: run \
         `UPDATE_ASYNCAPI=1 cargo test -p rnd-domain --test asyncapi` and commit it"
    );
}

#[test]
fn the_documents_schemas_are_exactly_those_of_the_protocol_types() {
    // GIVEN the schemas in the document and the ones derived from the code
    let document = document();
    let written = document
        .pointer(SCHEMAS_POINTER)
        .and_then(Value::as_object)
        .expect("components.schemas");
    let derived = component_schemas();
    // WHEN they are compared name by name THEN every one is the same
    let names: BTreeSet<&String> = written.keys().chain(derived.keys()).collect();
    let differing: Vec<&String> = names
        .into_iter()
        .filter(|name| written.get(*name) != derived.get(*name))
        .collect();
    assert!(
        differing.is_empty(),
        "docs/asyncapi.yaml: these schemas differ from the protocol types': {differing:?} \
         (UPDATE_ASYNCAPI=1 cargo test -p rnd-domain --test asyncapi)"
    );
}

/// The document's message `name` (a key of `components.messages`): its wire name, its payload's
/// schema, and the channel's reference to it.
fn assert_message(document: &Value, key: &str, wire_name: &str) {
    let message = document
        .pointer(&format!("/components/messages/{key}"))
        .unwrap_or_else(|| panic!("docs/asyncapi.yaml has no message {key} for `{wire_name}`"));
    assert_eq!(message["name"], json!(wire_name), "{key}'s name");
    assert_eq!(
        message.pointer("/payload/$ref"),
        Some(&json!(schema_ref(key))),
        "{key}'s payload is the schema of `{wire_name}`"
    );
    assert!(
        document
            .pointer(&format!("{SCHEMAS_POINTER}/{key}"))
            .is_some(),
        "there is a schema {key}"
    );
    assert_eq!(
        document.pointer(&format!("/channels/{CHANNEL}/messages/{key}/$ref")),
        Some(&json!(format!("#/components/messages/{key}"))),
        "the channel carries {key}"
    );
}

/// The channel messages the operations of `action` (`receive` or `send`) carry, and those
/// their replies carry.
fn operation_messages(document: &Value, action: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut carried, mut replied) = (BTreeSet::new(), BTreeSet::new());
    let refs = |list: Option<&Value>| -> Vec<String> {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m["$ref"].as_str())
            .filter_map(|r| r.strip_prefix(&format!("#/channels/{CHANNEL}/messages/")))
            .map(str::to_owned)
            .collect()
    };
    for operation in document["operations"]
        .as_object()
        .expect("operations")
        .values()
    {
        if operation["action"] != json!(action) {
            continue;
        }
        carried.extend(refs(operation.get("messages")));
        replied.extend(refs(operation.pointer("/reply/messages")));
    }
    (carried, replied)
}

#[test]
fn every_action_has_its_message_and_an_operation_receiving_it() {
    // GIVEN the document
    let document = document();
    let (received, _) = operation_messages(&document, "receive");
    // WHEN each action the router knows is looked up
    for name in action::ALL {
        let key = action_schema_name(name);
        // THEN it has a message with its schema, and an operation receives it
        assert_message(&document, &key, name);
        assert!(
            received.contains(&key),
            "no receive operation carries {key}"
        );
    }
}

#[test]
fn every_event_has_its_message_and_an_operation_sending_or_answering_it() {
    // GIVEN the document
    let document = document();
    let (sent, _) = operation_messages(&document, "send");
    let (_, answered) = operation_messages(&document, "receive");
    // WHEN each kind of server message is looked up
    for message in server_message_examples() {
        every_server_message_kind(&message);
        let name = message.event_name();
        let key = event_schema_name(name);
        // THEN it has a message with its schema, sent by an operation or answering one
        assert_message(&document, &key, name);
        assert!(
            sent.contains(&key) || answered.contains(&key),
            "no operation sends or answers with {key}"
        );
    }
}

#[test]
fn the_document_has_no_message_the_code_does_not_know() {
    // GIVEN every wire name in the code
    let known: BTreeSet<String> = action::ALL
        .iter()
        .map(|a| action_schema_name(a))
        .chain(
            server_message_examples()
                .iter()
                .map(|m| event_schema_name(m.event_name())),
        )
        .collect();
    // WHEN the document's messages and the channel's are listed
    let document = document();
    for list in ["/components/messages", "/channels/realtime/messages"] {
        let keys: BTreeSet<String> = document
            .pointer(list)
            .and_then(Value::as_object)
            .expect(list)
            .keys()
            .cloned()
            .collect();
        // THEN they are exactly the code's
        assert_eq!(keys, known, "{list}");
    }
}

/// Whether `value` fits `schema` (draft-07, the keywords the protocol's schemas use), with
/// references resolved in `document`; the reasons when it does not. `strict`: every field of
/// an object must be one its schema names (the server's and our own messages), instead of
/// JSON Schema's open objects (what a foreign client may send).
fn fits(document: &Value, schema: &Value, value: &Value, strict: bool) -> Result<(), String> {
    let mut errors = Vec::new();
    check(document, schema, value, strict, "$", &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn check(
    document: &Value,
    schema: &Value,
    value: &Value,
    strict: bool,
    at: &str,
    errors: &mut Vec<String>,
) {
    let Some(schema) = schema.as_object() else {
        if schema == &json!(false) {
            errors.push(format!("{at}: nothing is allowed"));
        }
        return;
    };
    let fail = |errors: &mut Vec<String>, what: String| errors.push(format!("{at}: {what}"));
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer))
            .unwrap_or_else(|| panic!("{at}: unresolved reference {reference}"));
        check(document, target, value, strict, at, errors);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(document, s, value, strict, at, errors);
        }
    }
    for (keyword, exactly_one) in [("anyOf", false), ("oneOf", true)] {
        if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
            let fitting = options
                .iter()
                .filter(|s| fits(document, s, value, strict).is_ok())
                .count();
            if fitting == 0 || (exactly_one && fitting > 1) {
                fail(errors, format!("{fitting} of the {keyword} options fit"));
            }
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        let is = |t: &str| match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            other => panic!("{at}: type {other}"),
        };
        if !types.iter().any(|t| is(t)) {
            fail(errors, format!("{value} is not {types:?}"));
            return;
        }
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        fail(errors, format!("{value} is not {constant}"));
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        fail(errors, format!("{value} is not one of {options:?}"));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            fail(errors, format!("{n} is below {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            fail(errors, format!("{n} is above {max}"));
        }
    }
    if let Some(s) = value.as_str() {
        let chars = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && chars < min
        {
            fail(errors, format!("{s:?} is shorter than {min}"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && chars > max
        {
            fail(errors, format!("{s:?} is longer than {max}"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !regex::Regex::new(pattern).expect("pattern").is_match(s)
        {
            fail(errors, format!("{s:?} does not match {pattern}"));
        }
        if schema.get("format") == Some(&json!("date-time"))
            && chrono::DateTime::parse_from_rfc3339(s).is_err()
        {
            fail(errors, format!("{s:?} is not an RFC 3339 time"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(required) {
                fail(errors, format!("`{required}` is missing"));
            }
        }
        for (key, field) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(s) => check(document, s, field, strict, &format!("{at}.{key}"), errors),
                // A schema that only combines others (a `$ref`, `allOf`) names no fields itself.
                None if strict && properties.is_some() => {
                    fail(errors, format!("`{key}` is not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, item) in list.iter().enumerate() {
            check(document, items, item, strict, &format!("{at}[{i}]"), errors);
        }
    }
}

/// Every kind of client message: adding one fails to compile until it is listed here.
fn every_client_message_kind(message: &ClientMessage) {
    match message {
        ClientMessage::SubscribeOrder { .. }
        | ClientMessage::UnsubscribeOrder { .. }
        | ClientMessage::DriverLocation(_)
        | ClientMessage::Resume { .. }
        | ClientMessage::Ping
        | ClientMessage::Hello => {}
    }
}

/// One of each kind of client message, with every optional field set.
fn client_message_examples() -> Vec<ClientMessage> {
    let order_id = OrderId::parse("o-1").unwrap();
    vec![
        ClientMessage::SubscribeOrder {
            order_id: order_id.clone(),
            since_seq: Some(3),
        },
        ClientMessage::UnsubscribeOrder {
            order_id: order_id.clone(),
        },
        ClientMessage::DriverLocation(LocationReport {
            order_id,
            latitude: Latitude::parse(30.27).unwrap(),
            longitude: Longitude::parse(-97.74).unwrap(),
            heading: Some(Heading::parse(90.0).unwrap()),
            speed: Some(Speed::parse(8.5).unwrap()),
            accuracy: Some(Accuracy::parse(5.0).unwrap()),
            recorded_at: Some(t(3)),
            ack: LocationAcks::Refusals,
        }),
        ClientMessage::Resume {
            cursor: Some("c-1".into()),
        },
        ClientMessage::Ping,
        ClientMessage::Hello,
    ]
}

/// The schema of the client message `value` says it is (by its `action`).
fn action_schema(value: &Value) -> Value {
    json!({ "$ref": schema_ref(&action_schema_name(value["action"].as_str().expect("action"))) })
}

#[test]
fn every_client_message_fits_its_schema_and_the_parser_reads_it_back() {
    let document = document();
    let mut seen = BTreeSet::new();
    for message in client_message_examples() {
        every_client_message_kind(&message);
        // GIVEN a client message with every optional field set, as it goes on the wire
        let wire = serde_json::to_value(&message).unwrap();
        seen.insert(wire["action"].as_str().unwrap().to_owned());
        // WHEN it is checked against its action's schema and parsed by the server
        let fitting = fits(&document, &action_schema(&wire), &wire, true);
        let parsed = parse_client_message(&wire.to_string());
        // THEN it fits, naming no field the schema does not, and the server reads it whole
        assert_eq!(fitting, Ok(()), "{wire}");
        assert_eq!(parsed.as_ref(), Ok(&message), "{wire}");
    }
    assert_eq!(
        seen,
        action::ALL.iter().map(|a| a.to_string()).collect(),
        "an example of every action"
    );
}

#[test]
fn the_parser_accepts_exactly_what_the_action_schemas_allow() {
    let document = document();
    // GIVEN client messages right and wrong in the ways a client gets them wrong
    let cases = [
        json!({"action": "subscribe:order", "orderId": "o-1"}),
        json!({"action": "subscribe:order", "orderId": "o-1", "sinceSeq": null}),
        json!({"action": "subscribe:order", "orderId": "o-1", "sinceSeq": 0}),
        json!({"action": "subscribe:order", "orderId": "o-1", "sinceSeq": -1}),
        json!({"action": "subscribe:order", "orderId": "o-1", "sinceSeq": 1.5}),
        json!({"action": "subscribe:order", "orderId": "o-1", "sinceSeq": "3"}),
        json!({"action": "subscribe:order"}),
        json!({"action": "subscribe:order", "orderId": ""}),
        json!({"action": "subscribe:order", "orderId": "o 1"}),
        json!({"action": "subscribe:order", "orderId": "o".repeat(129)}),
        json!({"action": "subscribe:order", "orderId": 7}),
        json!({"action": "unsubscribe:order", "orderId": "o-1"}),
        json!({"action": "unsubscribe:order", "orderId": null}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 90, "longitude": -180}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 90.5, "longitude": 0}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 0, "longitude": 181}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": "1", "longitude": 2}),
        json!({"action": "driver:location", "orderId": "o-1", "longitude": 2}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "heading": 360, "speed": 0, "accuracy": 0}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "heading": 361}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "speed": -1}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "speed": 101}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "accuracy": 100001}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "recordedAt": "2026-01-31T00:03:00Z"}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "recordedAt": 1_769_817_780_000_i64}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "recordedAt": "yesterday"}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "recordedAt": true}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "ack": "refusals"}),
        json!({"action": "driver:location", "orderId": "o-1", "latitude": 1, "longitude": 2,
               "ack": "none"}),
        json!({"action": "resume"}),
        json!({"action": "resume", "cursor": "anything"}),
        json!({"action": "resume", "cursor": 5}),
        json!({"action": "ping"}),
        json!({"action": "hello", "extra": "ignored"}),
    ];
    for case in cases {
        // WHEN the server parses it and it is checked against its action's schema
        let accepted = parse_client_message(&case.to_string());
        let allowed = fits(&document, &action_schema(&case), &case, false);
        // THEN both say the same
        assert_eq!(
            accepted.is_ok(),
            allowed.is_ok(),
            "{case}: the parser says {accepted:?}, the schema {allowed:?}"
        );
    }
}

#[test]
fn every_server_message_fits_its_event_schema_and_nothing_else_does() {
    let document = document();
    for message in server_message_examples() {
        // GIVEN a server message with every optional field set, as it goes on the wire
        let wire = serde_json::to_value(&message).unwrap();
        let schema = json!({ "$ref": schema_ref(&event_schema_name(message.event_name())) });
        // WHEN it is checked against its event's schema THEN it fits, naming no field the
        // schema does not
        assert_eq!(fits(&document, &schema, &wire, true), Ok(()), "{wire}");
        // AND the union of every server message takes it
        let union = json!({ "$ref": schema_ref("ServerMessage") });
        assert_eq!(fits(&document, &union, &wire, true), Ok(()), "{wire}");
        // AND without any one of its data fields it no longer fits when the field is required,
        // and a field renamed never fits
        let data = wire["data"].as_object().unwrap();
        for field in data.keys() {
            let mut renamed = wire.clone();
            let value = renamed["data"]
                .as_object_mut()
                .unwrap()
                .remove(field)
                .unwrap();
            renamed["data"][format!("{field}X")] = value;
            assert!(
                fits(&document, &schema, &renamed, true).is_err(),
                "{}: `{field}` renamed still fits",
                message.event_name()
            );
        }
    }
}

#[test]
fn the_document_states_the_authentication_keep_alive_and_limits() {
    // GIVEN the document's prose and its security schemes
    let document = document();
    // (white space as one space: the prose is wrapped)
    let description = document["info"]["description"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let schemes = &document["components"]["securitySchemes"];
    // THEN it names the three ways to pass the token, the subprotocol, and the limits the code
    // and API Gateway enforce
    assert_eq!(schemes["queryToken"]["in"], json!("query"));
    assert_eq!(schemes["queryToken"]["name"], json!("token"));
    assert_eq!(schemes["bearerHeader"]["scheme"], json!("bearer"));
    assert_eq!(
        schemes["subprotocolToken"]["name"],
        json!("Sec-WebSocket-Protocol")
    );
    for words in [
        format!("\"{SUBPROTOCOL}\", \"bearer.\" + JWT"),
        format!("Sec-WebSocket-Protocol: {SUBPROTOCOL}"),
        "?token=JWT".to_owned(),
        "Authorization: Bearer JWT".to_owned(),
        "401".to_owned(),
        "403".to_owned(),
        "**10 minutes**".to_owned(),
        "**2 hours**".to_owned(),
        format!("{} KB", MAX_MESSAGE_BYTES / 1024),
        format!(
            "**{}** `subscribe:order` and `unsubscribe:order` messages a minute",
            Limit::ROOM_CHANGES_PER_CONNECTION.per_window
        ),
        "`retryAfterMs`".to_owned(),
        "`token_expired`".to_owned(),
    ] {
        assert!(
            description.contains(&words),
            "docs/asyncapi.yaml's description does not say {words:?}"
        );
    }
    assert_eq!(
        Limit::ROOM_CHANGES_PER_CONNECTION.window,
        chrono::Duration::minutes(1)
    );
}
