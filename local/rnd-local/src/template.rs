//! What the local stack reads from `template.yaml`: the WebSocket API's route keys and the
//! DynamoDB event source mapping settings of the stream's two consumers (the fan-out and the
//! push function).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rnd_store_dynamodb::stream::StartingPosition;
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

/// The SAM template this crate was built with, so `rnd-local` runs from any directory.
pub const EMBEDDED: &str = include_str!("../../../template.yaml");

/// The logical id of the stream fan-out function in the template.
const FANOUT_FUNCTION: &str = "StreamFanoutFunction";
/// The logical id of the stream push function in the template.
const PUSH_FUNCTION: &str = "StreamPushFunction";

/// Why the template cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// Not YAML.
    #[error("template.yaml is not valid YAML")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// A filter pattern is not JSON.
    #[error("the fan-out's filter pattern is not JSON")]
    Pattern(#[from] serde_json::Error),
    /// The template declares no WebSocket route.
    #[error("template.yaml declares no AWS::ApiGatewayV2::Route")]
    NoRoutes,
    /// The fan-out's `StartingPosition` is not one a DynamoDB stream mapping accepts.
    #[error("the fan-out's StartingPosition {0:?} is not LATEST or TRIM_HORIZON")]
    StartingPosition(String),
}

/// The Lambda event source mapping of the stream fan-out (the `DynamoDB` event of
/// `StreamFanoutFunction`), or the defaults when the template has none.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSettings {
    /// `StartingPosition` (`LATEST` or `TRIM_HORIZON`; default `LATEST`): where a consumer's
    /// first start reads the DynamoDB stream from (the embedded change log is always read from
    /// its saved checkpoint, which starts at its beginning).
    pub starting_position: StartingPosition,
    /// `BatchSize`: records per invocation (default 100).
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds` (default 0).
    pub batching_window: Duration,
    /// `ParallelizationFactor` (1–10, default 1): how many batches of one shard are processed
    /// at once, each holding the records of some partition keys (so each key's records stay in
    /// order).
    pub parallelization_factor: usize,
    /// `MaximumRetryAttempts` (default 3 here; `None` = retry until the record expires).
    pub max_retry_attempts: Option<u32>,
    /// `FunctionResponseTypes` contains `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `FilterCriteria.Filters[].Pattern`, parsed; a record is delivered when it matches any
    /// (or when there is none).
    pub filters: Vec<Value>,
    /// Whether these came from the template (false: the defaults).
    pub from_template: bool,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            starting_position: StartingPosition::Latest,
            batch_size: 100,
            batching_window: Duration::ZERO,
            parallelization_factor: 1,
            max_retry_attempts: Some(3),
            report_batch_item_failures: true,
            filters: Vec::new(),
            from_template: false,
        }
    }
}

impl StreamSettings {
    /// Whether the stream record (as Lambda delivers it, JSON) passes the filter criteria.
    pub fn accepts<N: Node>(&self, record: N) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|p| matches_pattern(p, record))
    }

    /// The parts of a stream record the filter patterns look at, when they look at nothing
    /// but `eventName` and attributes of `dynamodb.NewImage` and `dynamodb.OldImage` (as the
    /// template's do); `None` when there is no filter or a pattern looks anywhere else.
    ///
    /// A pattern only ever reads the fields it names, so a record cut down to these fields
    /// (each image present when the record has it, holding only the named attributes) passes
    /// [`StreamSettings::accepts`] exactly when the whole record does: a poller can drop a
    /// record without building it.
    pub fn filter_fields(&self) -> Option<FilterFields> {
        if self.filters.is_empty() {
            return None;
        }
        let mut fields = FilterFields::default();
        for pattern in &self.filters {
            for (key, value) in pattern.as_object()? {
                match (key.as_str(), value) {
                    ("eventName", _) => fields.event_name = true,
                    ("dynamodb", Value::Object(dynamodb)) => {
                        for (image, attributes) in dynamodb {
                            let names = match image.as_str() {
                                "NewImage" => &mut fields.new_image,
                                "OldImage" => &mut fields.old_image,
                                _ => return None,
                            };
                            for (name, value) in attributes.as_object()? {
                                add_attribute(names, name, map_keys(value));
                            }
                        }
                    }
                    _ => return None,
                }
            }
        }
        Some(fields)
    }
}

/// What [`StreamSettings::filter_fields`] found the patterns look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterFields {
    /// The record's `eventName`.
    pub event_name: bool,
    /// Attributes of `dynamodb.NewImage`.
    pub new_image: ImageFields,
    /// Attributes of `dynamodb.OldImage`.
    pub old_image: ImageFields,
}

/// The attributes of an image that patterns read, by name: each whole (`None`), or only some
/// keys of its map (`Some`), when every pattern naming it reads `{"M": {key: …}}`. The push
/// filter reads `eta.M.etaMinutes` alone: the rest of the `eta` map need not be in a view.
pub type ImageFields = BTreeMap<String, Option<BTreeSet<String>>>;

/// The keys of the map attribute a pattern's `value` reads (`{"M": {key: …, …}}`), or `None`
/// when it reads the attribute otherwise (its type, its existence, the whole map).
fn map_keys(value: &Value) -> Option<BTreeSet<String>> {
    let object = value.as_object()?;
    match object.get("M") {
        Some(Value::Object(keys)) if object.len() == 1 => Some(keys.keys().cloned().collect()),
        _ => None,
    }
}

/// Adds attribute `name` with `keys` (see [`ImageFields`]): read whole if any reads it whole.
fn add_attribute(fields: &mut ImageFields, name: &str, keys: Option<BTreeSet<String>>) {
    match fields.get_mut(name) {
        None => {
            fields.insert(name.to_owned(), keys);
        }
        Some(kept) => match (kept.as_mut(), keys) {
            (Some(kept), Some(keys)) => kept.extend(keys),
            _ => *kept = None,
        },
    }
}

/// Whether `fields` read every attribute (and map key) that `other` reads.
fn image_covers(fields: &ImageFields, other: &ImageFields) -> bool {
    other
        .iter()
        .all(|(name, keys)| match (fields.get(name), keys) {
            (None, _) => false,
            (Some(None), _) => true,
            (Some(Some(_)), None) => false,
            (Some(Some(kept)), Some(keys)) => kept.is_superset(keys),
        })
}

impl FilterFields {
    /// The fields any of `fields` names: a view holding these judges each of them as its own
    /// view would (a pattern reads only the fields it names).
    pub fn union<'a>(fields: impl IntoIterator<Item = &'a FilterFields>) -> FilterFields {
        let mut all = FilterFields::default();
        for f in fields {
            all.event_name |= f.event_name;
            for (name, keys) in &f.new_image {
                add_attribute(&mut all.new_image, name, keys.clone());
            }
            for (name, keys) in &f.old_image {
                add_attribute(&mut all.old_image, name, keys.clone());
            }
        }
        all
    }

    /// Whether these fields include every one of `other`'s.
    pub fn covers(&self, other: &FilterFields) -> bool {
        (self.event_name || !other.event_name)
            && image_covers(&self.new_image, &other.new_image)
            && image_covers(&self.old_image, &other.old_image)
    }
}

/// What the local stack takes from `template.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The `RouteKey` of every `AWS::ApiGatewayV2::Route`.
    pub route_keys: Vec<String>,
    /// The fan-out's stream settings.
    pub stream: StreamSettings,
    /// The push function's stream settings.
    pub push_stream: StreamSettings,
}

impl Template {
    /// The template this crate was built with.
    ///
    /// Fails only if the repository's `template.yaml` is broken (see [`Template::parse`]).
    pub fn embedded() -> Result<Self, TemplateError> {
        Self::parse(EMBEDDED)
    }

    /// Reads the route keys and the stream consumers' settings from a SAM template.
    ///
    /// Fails when the text is not YAML, declares no route, or a filter pattern is not JSON.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let doc: Yaml = serde_yaml_ng::from_str(text)?;
        let resources = doc.get("Resources").and_then(Yaml::as_mapping);
        let mut route_keys = Vec::new();
        let mut stream = None;
        let mut push_stream = None;
        for (name, resource) in resources.into_iter().flatten() {
            let kind = resource.get("Type").and_then(Yaml::as_str);
            let props = resource.get("Properties");
            if kind == Some("AWS::ApiGatewayV2::Route")
                && let Some(key) = props.and_then(|p| p.get("RouteKey")).and_then(Yaml::as_str)
            {
                route_keys.push(key.to_owned());
            }
            let consumer = match name.as_str() {
                Some(FANOUT_FUNCTION) => &mut stream,
                Some(PUSH_FUNCTION) => &mut push_stream,
                _ => continue,
            };
            let events = props
                .and_then(|p| p.get("Events"))
                .and_then(Yaml::as_mapping);
            for event in events.into_iter().flat_map(|e| e.values()) {
                if event.get("Type").and_then(Yaml::as_str) == Some("DynamoDB") {
                    *consumer = Some(stream_settings(event.get("Properties"))?);
                }
            }
        }
        if route_keys.is_empty() {
            return Err(TemplateError::NoRoutes);
        }
        Ok(Self {
            route_keys,
            stream: stream.unwrap_or_default(),
            push_stream: push_stream.unwrap_or_default(),
        })
    }

    /// The route a message body selects, as API Gateway does with
    /// `$request.body.action`: the `action` when it is a declared route key, else `$default`
    /// (also for bodies that are not JSON objects).
    pub fn select_route(&self, body: &str) -> &str {
        let action = serde_json::from_str::<Action>(body).ok().and_then(|a| a.0);
        action
            .and_then(|a| {
                self.route_keys
                    .iter()
                    .find(|k| **k == a && !k.starts_with('$'))
            })
            .map_or("$default", String::as_str)
    }
}

/// The `action` of a message body that is a JSON object, when it is a string (the last one,
/// should the key repeat, as when the body is read whole). Every other value is checked for
/// well-formedness and skipped without being built: building the whole body was most of the
/// route selection's cost per location update.
struct Action(Option<String>);

impl<'de> serde::Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Action;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Action, A::Error> {
                let mut action = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "action" {
                        action = match map.next_value::<Value>()? {
                            Value::String(a) => Some(a),
                            _ => None,
                        };
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Action(action))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn stream_settings(props: Option<&Yaml>) -> Result<StreamSettings, TemplateError> {
    let defaults = StreamSettings::default();
    let get = |key: &str| props.and_then(|p| p.get(key));
    let number = |key: &str| get(key).and_then(Yaml::as_i64);
    let filters = get("FilterCriteria")
        .and_then(|f| f.get("Filters"))
        .and_then(Yaml::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("Pattern").and_then(Yaml::as_str))
        .map(serde_json::from_str)
        .collect::<Result<Vec<Value>, _>>()?;
    let starting_position = match get("StartingPosition").and_then(Yaml::as_str) {
        None | Some("LATEST") => StartingPosition::Latest,
        Some("TRIM_HORIZON") => StartingPosition::TrimHorizon,
        Some(other) => return Err(TemplateError::StartingPosition(other.to_owned())),
    };
    Ok(StreamSettings {
        starting_position,
        batch_size: number("BatchSize")
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(defaults.batch_size),
        batching_window: number("MaximumBatchingWindowInSeconds")
            .and_then(|n| u64::try_from(n).ok())
            .map_or(defaults.batching_window, Duration::from_secs),
        parallelization_factor: number("ParallelizationFactor")
            .and_then(|n| usize::try_from(n).ok())
            .map_or(defaults.parallelization_factor, |n| n.clamp(1, 10)),
        max_retry_attempts: match number("MaximumRetryAttempts") {
            Some(-1) => None,
            Some(n) => u32::try_from(n).ok(),
            None => defaults.max_retry_attempts,
        },
        report_batch_item_failures: get("FunctionResponseTypes")
            .and_then(Yaml::as_sequence)
            .is_some_and(|types| {
                types
                    .iter()
                    .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
            }),
        filters,
        from_template: true,
    })
}

/// Lambda's event filtering, for the patterns the template uses: objects nest, a list of
/// values matches when the record's value equals one of them, and `{"exists": true|false}` in
/// a list matches a field that is there, or not.
fn matches_pattern<N: Node>(pattern: &Value, value: N) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, expected)| match value.field(key) {
            Some(actual) => matches_pattern(expected, actual),
            None => matches_missing(expected),
        }),
        Value::Array(allowed) => allowed
            .iter()
            .any(|a| value.equals(a) || exists_rule(a) == Some(true)),
        other => value.equals(other),
    }
}

/// A stream record as a filter pattern reads it: a tree of JSON objects, whatever holds it.
/// Lambda matches patterns against the record's JSON; a poller can match them against the
/// parts it holds (a [`crate::poller::FilterView`]) without writing those as JSON first.
pub trait Node: Copy {
    /// The value of the object's field `key` (`None` when this is no object or lacks it).
    fn field(self, key: &str) -> Option<Self>;
    /// Whether this is the JSON value `expected`.
    fn equals(self, expected: &Value) -> bool;
}

impl Node for &Value {
    fn field(self, key: &str) -> Option<Self> {
        self.get(key)
    }

    fn equals(self, expected: &Value) -> bool {
        self == expected
    }
}

/// Whether `pattern` matches a field the record does not have: only `{"exists": false}` (at
/// the leaf of every nested key) does.
fn matches_missing(pattern: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.values().all(matches_missing),
        Value::Array(allowed) => allowed.iter().any(|a| exists_rule(a) == Some(false)),
        _ => false,
    }
}

/// The `b` of an `{"exists": b}` rule.
fn exists_rule(rule: &Value) -> Option<bool> {
    match rule {
        Value::Object(fields) if fields.len() == 1 => fields.get("exists")?.as_bool(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_routes_and_stream_settings_come_from_the_template() {
        // GIVEN the repository's template
        // WHEN it is read
        let template = Template::embedded().unwrap();
        // THEN every WebSocket route is there
        for key in [
            "$connect",
            "$disconnect",
            "$default",
            "subscribe:order",
            "unsubscribe:order",
            "driver:location",
            "resume",
        ] {
            assert!(template.route_keys.iter().any(|k| k == key), "{key}");
        }
        // AND the fan-out's event source mapping is the template's, not the defaults
        let stream = &template.stream;
        assert!(
            stream.from_template,
            "StreamFanoutFunction has a DynamoDB event"
        );
        assert_eq!(stream.starting_position, StartingPosition::Latest);
        assert_eq!(stream.batch_size, 100);
        assert_eq!(stream.batching_window, Duration::ZERO);
        assert_eq!(stream.parallelization_factor, 2);
        assert_eq!(stream.max_retry_attempts, Some(5));
        assert!(stream.report_batch_item_failures);
        assert_eq!(stream.filters.len(), 2);
    }

    #[test]
    fn the_starting_position_is_read_and_an_unknown_one_is_refused() {
        // GIVEN the template with another starting position, and with one streams do not have
        let with = |position: &str| {
            EMBEDDED.replace(
                "StartingPosition: LATEST",
                &format!("StartingPosition: {position}"),
            )
        };
        // WHEN they are read
        let horizon = Template::parse(&with("TRIM_HORIZON")).unwrap();
        let unknown = Template::parse(&with("AT_TIMESTAMP"));
        // THEN TRIM_HORIZON is taken and the unknown one refused, naming it
        assert_eq!(
            horizon.stream.starting_position,
            StartingPosition::TrimHorizon
        );
        assert!(
            matches!(&unknown, Err(TemplateError::StartingPosition(p)) if p == "AT_TIMESTAMP"),
            "{unknown:?}"
        );
    }

    #[test]
    fn messages_select_their_route_by_action_and_fall_back_to_default() {
        // GIVEN the template's routes
        let template = Template::embedded().unwrap();
        // WHEN bodies are routed THEN the action picks the route, anything else is $default
        assert_eq!(
            template.select_route(r#"{"action":"subscribe:order","orderId":"o"}"#),
            "subscribe:order"
        );
        assert_eq!(template.select_route(r#"{"action":"hello"}"#), "$default");
        assert_eq!(
            template.select_route(r#"{"action":"$connect"}"#),
            "$default"
        );
        assert_eq!(template.select_route("not json"), "$default");
        assert_eq!(template.select_route("[1]"), "$default");
        // AND only an object's string `action` counts, the last of repeated keys, in a body
        // that is JSON throughout
        assert_eq!(template.select_route(r#"["subscribe:order"]"#), "$default");
        assert_eq!(template.select_route(r#"{"action":7}"#), "$default");
        assert_eq!(
            template.select_route(r#"{"action":"hello","orderId":{"a":[1]},"action":"resume"}"#),
            "resume"
        );
        assert_eq!(
            template.select_route(r#"{"action":"resume","orderId":}"#),
            "$default"
        );
        assert_eq!(
            template.select_route(r#"{"action":"resume"} trailing"#),
            "$default"
        );
    }

    #[test]
    fn the_filter_keeps_order_rows_and_the_live_rows_nobody_announced() {
        // GIVEN the template's filter criteria
        let stream = Template::embedded().unwrap().stream;
        let record =
            |item_type: &str| json!({"dynamodb": {"NewImage": {"itemType": {"S": item_type}}}});
        let announced = json!({"dynamodb": {"NewImage": {
            "itemType": {"S": "live"}, "seq": {"N": "7"}, "announcedSeq": {"N": "7"}
        }}});
        // WHEN records are filtered THEN order rows and live rows without announcedSeq pass;
        // live rows whose writer announced them, counters and removals do not
        assert!(stream.accepts(&record("order")));
        assert!(stream.accepts(&record("live")));
        assert!(!stream.accepts(&announced));
        assert!(!stream.accepts(&record("counter")));
        assert!(!stream.accepts(&json!({"dynamodb": {"OldImage": {}}})));
    }

    #[test]
    fn an_exists_rule_matches_a_field_by_its_presence() {
        // GIVEN patterns asking for a field to exist, or not, under a nested key
        let absent = json!({"a": {"b": {"N": [{"exists": false}]}}});
        let present = json!({"a": {"b": {"N": [{"exists": true}]}}});
        let with_b = json!({"a": {"b": {"N": "1"}}});
        let without_b = json!({"a": {"c": {"N": "1"}}});
        // WHEN records with and without the field are matched THEN each rule takes its own
        assert!(matches_pattern(&absent, &without_b));
        assert!(!matches_pattern(&absent, &with_b));
        assert!(matches_pattern(&present, &with_b));
        assert!(!matches_pattern(&present, &without_b));
        // AND a missing parent is as missing as the field itself
        assert!(matches_pattern(&absent, &json!({})));
        assert!(!matches_pattern(&present, &json!({})));
    }

    #[test]
    fn the_push_mapping_takes_orders_and_only_live_rows_almost_there() {
        // GIVEN the push function's event source mapping from the template
        let push = Template::embedded().unwrap().push_stream;
        assert!(
            push.from_template,
            "StreamPushFunction has a DynamoDB event"
        );
        assert!(push.report_batch_item_failures);
        let live = |eta: u32| {
            json!({"dynamodb": {"NewImage": {
                "itemType": {"S": "live"},
                "eta": {"M": {"etaMinutes": {"N": eta.to_string()}}}
            }}})
        };
        // WHEN records are filtered THEN order rows pass, and live rows exactly when their ETA
        // is at or under the domain's "almost there" (the filter lists the minutes)
        assert!(push.accepts(&json!({"dynamodb": {"NewImage": {"itemType": {"S": "order"}}}})));
        let almost = rnd_domain::push::ALMOST_THERE_MINUTES;
        for eta in 0..=almost {
            assert!(push.accepts(&live(eta)), "{eta} min");
        }
        assert!(!push.accepts(&live(almost + 1)));
        assert!(!push.accepts(&live(45)));
        assert!(!push.accepts(&json!({"dynamodb": {"NewImage": {"itemType": {"S": "live"}}}})));
        assert!(!push.accepts(&json!({"dynamodb": {"NewImage": {"itemType": {"S": "counter"}}}})));
    }

    #[test]
    fn the_template_filters_look_only_at_the_new_image_attributes_they_name() {
        // GIVEN the template's two event source mappings
        let template = Template::embedded().unwrap();
        let whole = |names: &[&str]| -> ImageFields {
            names.iter().map(|n| ((*n).to_owned(), None)).collect()
        };
        // WHEN each is asked what its filter patterns read
        // THEN the fan-out's read itemType and announcedSeq of the new image, and nothing else
        assert_eq!(
            template.stream.filter_fields(),
            Some(FilterFields {
                event_name: false,
                new_image: whole(&["announcedSeq", "itemType"]),
                old_image: ImageFields::new(),
            })
        );
        // AND the push function's read itemType, and of the eta map only etaMinutes
        let mut push = whole(&["itemType"]);
        push.insert(
            "eta".to_owned(),
            Some(BTreeSet::from(["etaMinutes".to_owned()])),
        );
        assert_eq!(
            template.push_stream.filter_fields(),
            Some(FilterFields {
                new_image: push,
                ..FilterFields::default()
            })
        );
    }

    #[test]
    fn a_pattern_reading_anything_but_the_event_name_and_images_has_no_filter_fields() {
        // GIVEN mappings whose patterns read the keys, the region, an image as a whole, or
        // nothing at all
        let settings = |filters: Vec<Value>| StreamSettings {
            filters,
            ..StreamSettings::default()
        };
        for filters in [
            vec![json!({"dynamodb": {"Keys": {"pk": {"S": ["ORDER#1"]}}}})],
            vec![json!({"awsRegion": ["us-east-1"]})],
            vec![json!({"dynamodb": {"NewImage": [{"exists": true}]}})],
            vec![
                json!({"eventName": ["INSERT"]}),
                json!({"dynamodb": {"SizeBytes": [1]}}),
            ],
            vec![],
        ] {
            // WHEN each is asked what its patterns read
            // THEN it cannot say: its pollers build whole records to filter
            assert_eq!(
                settings(filters.clone()).filter_fields(),
                None,
                "{filters:?}"
            );
        }
        // AND one reading the event name and both images can
        assert_eq!(
            settings(vec![json!({
                "eventName": ["MODIFY"],
                "dynamodb": {"OldImage": {"status": {"S": ["ready"]}}, "NewImage": {}},
            })])
            .filter_fields(),
            Some(FilterFields {
                event_name: true,
                new_image: ImageFields::new(),
                old_image: ImageFields::from([("status".to_owned(), None)]),
            })
        );
    }

    #[test]
    fn map_keys_are_read_alone_only_while_every_pattern_reads_them_as_map_keys() {
        // GIVEN patterns reading keys of a map attribute, and patterns reading it otherwise
        let fields = |filters: Vec<Value>| {
            StreamSettings {
                filters,
                ..StreamSettings::default()
            }
            .filter_fields()
            .expect("image attributes only")
            .new_image
        };
        let keys = |keys: &[&str]| Some(keys.iter().map(|k| (*k).to_owned()).collect());
        let image = |pattern: Value| json!({"dynamodb": {"NewImage": pattern}});
        // WHEN two patterns read different keys of `eta`'s map
        // THEN the fields hold both keys, and nothing else of it
        assert_eq!(
            fields(vec![
                image(json!({"eta": {"M": {"etaMinutes": {"N": ["1"]}}}})),
                image(json!({"eta": {"M": {"source": {"S": ["route"]}}}})),
            ]),
            ImageFields::from([("eta".to_owned(), keys(&["etaMinutes", "source"]))])
        );
        // WHEN any pattern reads the attribute as a whole, its existence or another type
        for other in [
            json!({"eta": [{"exists": true}]}),
            json!({"eta": {"M": [{"exists": true}]}}),
            json!({"eta": {"S": ["x"]}}),
            json!({"eta": {"M": {"etaMinutes": {"N": ["1"]}}, "S": ["x"]}}),
        ] {
            // THEN the whole attribute is read
            assert_eq!(
                fields(vec![
                    image(json!({"eta": {"M": {"etaMinutes": {"N": ["1"]}}}})),
                    image(other.clone()),
                ]),
                ImageFields::from([("eta".to_owned(), None)]),
                "{other}"
            );
        }
        // AND fields with all of a map's keys cover fields with some, never the other way
        let some = FilterFields {
            new_image: ImageFields::from([("eta".to_owned(), keys(&["etaMinutes"]))]),
            ..FilterFields::default()
        };
        let more = FilterFields {
            new_image: ImageFields::from([("eta".to_owned(), keys(&["etaMinutes", "source"]))]),
            ..FilterFields::default()
        };
        let all = FilterFields {
            new_image: ImageFields::from([("eta".to_owned(), None)]),
            ..FilterFields::default()
        };
        assert!(more.covers(&some) && all.covers(&more) && all.covers(&some));
        assert!(!some.covers(&more) && !more.covers(&all) && !some.covers(&all));
        assert_eq!(FilterFields::union([&some, &more]), more);
        assert_eq!(FilterFields::union([&some, &all]), all);
    }
}
