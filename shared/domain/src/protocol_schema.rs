//! The JSON Schemas of the WebSocket protocol's messages, derived from the protocol types
//! themselves ([`ClientMessage`], [`ServerMessage`] and their payloads), so the AsyncAPI document
//! (`docs/asyncapi.yaml`, whose `components.schemas` these are) cannot drift from the wire.
//!
//! Each client action gets a schema `{Name}Action` (`subscribe:order` → `SubscribeOrderAction`)
//! and each server event a schema `{Name}Event` of its whole frame, `{"event": …, "data": …}`
//! (`order:status_update` → `OrderStatusUpdateEvent`); `ClientMessage` and `ServerMessage` are
//! the union of each side. The payloads and values they refer to (`StatusUpdateData`,
//! `OrderId`, …) are schemas of their own. They are JSON Schema draft-07, which AsyncAPI 3.0's
//! default schema format extends; references point into `#/components/schemas/`.
//!
//! What the server accepts is described as it deserializes (an optional field may be absent),
//! what it sends as it serializes (a field it leaves out when empty is not required).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::protocol::{ClientMessage, ServerMessage};

/// Where the schemas live in the AsyncAPI document, as a JSON pointer.
pub const SCHEMAS_POINTER: &str = "/components/schemas";

/// `subscribe:order` → `SubscribeOrder`, `driver:location_acknowledged` →
/// `DriverLocationAcknowledged`: a wire name as a component name (AsyncAPI allows only
/// `[A-Za-z0-9._-]` there).
pub fn pascal_case(wire_name: &str) -> String {
    wire_name
        .split([':', '_'])
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The name of the schema of the client action `action`.
pub fn action_schema_name(action: &str) -> String {
    format!("{}Action", pascal_case(action))
}

/// The name of the schema of the server event `event` (its whole frame).
pub fn event_schema_name(event: &str) -> String {
    format!("{}Event", pascal_case(event))
}

/// `#/components/schemas/{name}`.
pub fn schema_ref(name: &str) -> String {
    format!("#{SCHEMAS_POINTER}/{name}")
}

fn generator(serialize: bool) -> SchemaGenerator {
    let mut settings = SchemaSettings::draft07();
    settings.definitions_path = SCHEMAS_POINTER.into();
    settings.meta_schema = None;
    let settings = if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    settings.into_generator()
}

/// The schemas of `T` (a tagged enum, tag `tag`) and of everything it refers to: `T` itself
/// becomes a `oneOf` of references to one schema per variant, named by `name` from the
/// variant's tag value.
fn split_union<T: JsonSchema>(
    serialize: bool,
    tag: &str,
    name: fn(&str) -> String,
    description: &str,
) -> Map<String, Value> {
    let mut generator = generator(serialize);
    generator.subschema_for::<T>();
    let mut schemas = generator.take_definitions(true);
    let union_name = T::schema_name().into_owned();
    let union = schemas
        .remove(&union_name)
        .unwrap_or_else(|| panic!("{union_name} has a schema"));
    let variants = union
        .get("oneOf")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{union_name} is a oneOf: {union}"));
    let mut refs = Vec::new();
    for variant in variants {
        let wire_name = variant
            .pointer(&format!("/properties/{tag}/const"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("a variant of {union_name} has a constant `{tag}`"));
        let variant_name = name(wire_name);
        refs.push(json!({ "$ref": schema_ref(&variant_name) }));
        let previous = schemas.insert(variant_name.clone(), variant.clone());
        assert!(previous.is_none(), "two schemas named {variant_name}");
    }
    let mut union_schema = Map::new();
    union_schema.insert("description".into(), description.into());
    union_schema.insert("oneOf".into(), Value::Array(refs));
    schemas.insert(union_name, Value::Object(union_schema));
    schemas
}

/// Every schema of the protocol, by name: the `components.schemas` of `docs/asyncapi.yaml`.
///
/// Panics when two types would publish different schemas under one name (a programming error
/// the tests catch).
pub fn component_schemas() -> Map<String, Value> {
    let mut schemas = split_union::<ClientMessage>(
        false,
        "action",
        action_schema_name,
        "Every message a client may send: `{\"action\": …, …fields}`.",
    );
    let mut sent = split_union::<ServerMessage>(
        true,
        "event",
        event_schema_name,
        "Every message the server sends: `{\"event\": …, \"data\": {…}}`.",
    );
    for schema in sent.values_mut() {
        absent_not_null(schema);
    }
    for (name, schema) in sent {
        if let Some(existing) = schemas.get(&name) {
            assert_eq!(
                existing, &schema,
                "{name}: the same name for two schemas (one read, one sent)"
            );
        }
        schemas.insert(name, schema);
    }
    schemas
}

/// In what the server sends, a field that is not required is left out when it has no value,
/// never sent as `null` (`skip_serializing_if`): its schema does not allow `null`.
fn absent_not_null(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let required: Vec<String> = object
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if !required.contains(name) {
                        without_null(property);
                    }
                }
            }
            for value in object.values_mut() {
                absent_not_null(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(absent_not_null),
        _ => {}
    }
}

/// `schema` without its `null` alternative: `type: [T, "null"]` → `type: T`, `anyOf: [S, {type:
/// "null"}]` → `S`.
fn without_null(schema: &mut Value) {
    let Value::Object(object) = schema else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    let null = json!({ "type": "null" });
    if let Some(Value::Array(options)) = object.get("anyOf")
        && options.len() == 2
        && options.contains(&null)
    {
        let kept = options.iter().find(|o| **o != null).cloned();
        object.remove("anyOf");
        if let Some(Value::Object(kept)) = kept {
            for (key, value) in kept {
                object.entry(key).or_insert(value);
            }
        }
    }
}
