//! `template.yaml` and the workspace agree: every function the template deploys is a crate
//! under `functions/` (binary name = package name) and every such crate is deployed; every
//! WebSocket route the protocol needs exists, is wired to the right function, answers two-way
//! where the protocol expects an answer, and may invoke its function. Operations: every
//! function, stream consumer, failure queue, table, index and API has its alarm; every alarm
//! and its metrics are on the dashboard, whose body is JSON naming only what the template has;
//! and the dashboard graphs exactly the metrics the functions print as EMF lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rnd_domain::protocol::action;
use serde_yaml_ng::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml parses")
}

fn resources(t: &Value) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().expect("logical id").to_owned(), v.clone()))
        .collect()
}

fn of_type(t: &Value, kind: &str) -> BTreeMap<String, Value> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .collect()
}

/// The text inside a `!Sub`/`!Ref`/`!GetAtt` tag, or the plain string.
fn text(v: &Value) -> String {
    match v {
        Value::Tagged(t) => text(&t.value),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => items.iter().map(text).collect::<Vec<_>>().join("."),
        other => format!("{other:?}"),
    }
}

/// Package names of the crates under `functions/`.
fn function_crates() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .map(|entry| {
            let dir = entry.expect("entry").path();
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
            let name = manifest
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .and_then(|l| l.strip_suffix('"'))
                .expect("package name")
                .to_owned();
            assert_eq!(
                dir.file_name().and_then(|f| f.to_str()),
                Some(name.as_str()),
                "folder name = package name"
            );
            assert!(
                dir.join("src/main.rs").exists(),
                "{name} has a binary named after its package"
            );
            name
        })
        .collect()
}

/// Logical id → binary of every function in the template.
fn template_functions(t: &Value) -> BTreeMap<String, String> {
    of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, f)| {
            assert_eq!(
                f["Metadata"]["BuildMethod"].as_str(),
                Some("rust-cargolambda"),
                "{id}"
            );
            let binary = f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} names its binary"))
                .to_owned();
            (id, binary)
        })
        .collect()
}

#[test]
fn every_function_in_the_template_is_a_workspace_crate_and_vice_versa() {
    let t = template();
    let deployed: BTreeSet<String> = template_functions(&t).into_values().collect();
    assert_eq!(deployed, function_crates());
}

#[test]
fn functions_use_the_rust_runtime_from_the_globals() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(globals["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    assert_eq!(globals["Tracing"].as_str(), Some("Active"));
    // The Powertools-format logs' `service` key, the same for every function.
    assert_eq!(
        globals["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"].as_str(),
        Some("rnd-realtime")
    );
    for (id, f) in of_type(&t, "AWS::Serverless::Function") {
        assert!(
            f["Properties"]["Runtime"].is_null(),
            "{id} does not override the runtime"
        );
    }
}

#[test]
fn every_route_the_protocol_needs_exists_and_nothing_else() {
    let t = template();
    let routes: BTreeSet<String> = of_type(&t, "AWS::ApiGatewayV2::Route")
        .values()
        .map(|r| text(&r["Properties"]["RouteKey"]))
        .collect();
    let mut expected: BTreeSet<String> = ["$connect", "$disconnect", "$default"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    expected.extend(action::ROUTED.iter().map(|a| (*a).to_owned()));
    assert_eq!(routes, expected);
    let api = of_type(&t, "AWS::ApiGatewayV2::Api");
    let api = api.values().next().expect("a WebSocket API");
    assert_eq!(
        api["Properties"]["ProtocolType"].as_str(),
        Some("WEBSOCKET")
    );
    assert_eq!(
        api["Properties"]["RouteSelectionExpression"].as_str(),
        Some("$request.body.action")
    );
}

#[test]
fn each_route_invokes_its_function_and_message_routes_answer() {
    let t = template();
    let functions = template_functions(&t);
    let integrations = of_type(&t, "AWS::ApiGatewayV2::Integration");
    let responses: BTreeSet<String> = of_type(&t, "AWS::ApiGatewayV2::RouteResponse")
        .values()
        .map(|r| text(&r["Properties"]["RouteId"]))
        .collect();
    let permissions: Vec<Value> = of_type(&t, "AWS::Lambda::Permission")
        .into_values()
        .collect();
    let expected_binary = BTreeMap::from([
        ("$connect", "ws-connect"),
        ("$disconnect", "ws-disconnect"),
        ("$default", "ws-default"),
        (action::SUBSCRIBE_ORDER, "ws-subscribe"),
        (action::UNSUBSCRIBE_ORDER, "ws-unsubscribe"),
        (action::DRIVER_LOCATION, "ws-driver-location"),
        (action::RESUME, "ws-resume"),
    ]);
    for (route_id, route) in of_type(&t, "AWS::ApiGatewayV2::Route") {
        let key = text(&route["Properties"]["RouteKey"]);
        let target = text(&route["Properties"]["Target"]);
        let integration_id = target
            .strip_prefix("integrations/${")
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{route_id} targets an integration: {target}"));
        let integration = &integrations[integration_id];
        assert_eq!(
            integration["Properties"]["IntegrationType"].as_str(),
            Some("AWS_PROXY")
        );
        let uri = text(&integration["Properties"]["IntegrationUri"]);
        let function_id = functions
            .keys()
            .find(|id| uri.contains(&format!("${{{id}.Arn}}")))
            .unwrap_or_else(|| panic!("{route_id}'s integration invokes a template function"));
        assert_eq!(
            functions[function_id],
            expected_binary[key.as_str()],
            "{key} is handled by the right binary"
        );
        let two_way = !matches!(key.as_str(), "$connect" | "$disconnect");
        assert_eq!(
            responses.contains(&route_id),
            two_way,
            "{key}: route response only for message routes"
        );
        let permitted = permissions.iter().any(|p| {
            text(&p["Properties"]["FunctionName"]) == *function_id
                && text(&p["Properties"]["SourceArn"]).contains(&format!("/{key}"))
        });
        assert!(permitted, "{key}: API Gateway may invoke {function_id}");
        if key == "$connect" {
            assert_eq!(
                route["Properties"]["AuthorizationType"].as_str(),
                Some("CUSTOM")
            );
        }
    }
}

#[test]
fn tables_match_the_design() {
    let t = template();
    let tables = of_type(&t, "AWS::DynamoDB::Table");
    let orders = &tables["OrdersTable"]["Properties"];
    assert_eq!(
        orders["StreamSpecification"]["StreamViewType"].as_str(),
        Some("NEW_AND_OLD_IMAGES")
    );
    let gsis: Vec<String> = orders["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("GSIs")
        .iter()
        .map(|g| text(&g["IndexName"]))
        .collect();
    assert_eq!(gsis, ["gsi1", "gsi2", "gsi3", "gsi4"]);
    let connections = &tables["ConnectionsTable"]["Properties"];
    assert_eq!(
        connections["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("ttl")
    );
    for (id, table) in &tables {
        let p = &table["Properties"];
        assert_eq!(p["BillingMode"].as_str(), Some("PAY_PER_REQUEST"), "{id}");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
            Some(true),
            "{id}"
        );
        assert_eq!(
            p["SSESpecification"]["SSEEnabled"].as_bool(),
            Some(true),
            "{id}"
        );
    }
}

// ------------------------------------------------------------------ alarms and dashboard

/// A CloudWatch metric as the template names it: its dimensions' values in `!Sub` form
/// (`${Logical}` for a `!Ref`, `${Logical.Attribute}` for a `!GetAtt`, else the literal), as
/// the dashboard's body writes them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Metric {
    namespace: String,
    name: String,
    dimensions: BTreeMap<String, String>,
}

impl Metric {
    fn new(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Metric {
        Metric {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            dimensions: dimensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A `Namespace`, `MetricName`, `Dimensions` mapping (an alarm's or a `MetricStat`'s).
    fn of(m: &Value) -> Metric {
        let dimensions = m["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|d| (text(&d["Name"]), sub_form(&d["Value"])))
            .collect();
        Metric {
            namespace: text(&m["Namespace"]),
            name: text(&m["MetricName"]),
            dimensions,
        }
    }
}

/// `v` as `!Sub` would write it.
fn sub_form(v: &Value) -> String {
    match v {
        Value::Tagged(t) => match t.tag.to_string().trim_start_matches('!') {
            "Ref" | "GetAtt" => format!("${{{}}}", text(&t.value)),
            other => panic!("a dimension value of {other}"),
        },
        other => text(other),
    }
}

/// Logical id → properties of every alarm.
fn alarms(t: &Value) -> BTreeMap<String, Value> {
    of_type(t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, a)| (id, a["Properties"].clone()))
        .collect()
}

/// The metrics an alarm reads: its one metric, or each `MetricStat` of its expression.
fn alarm_metrics(alarm: &Value) -> Vec<Metric> {
    match alarm["Metrics"].as_sequence() {
        None => vec![Metric::of(alarm)],
        Some(queries) => queries
            .iter()
            .filter(|q| !q["MetricStat"].is_null())
            .map(|q| Metric::of(&q["MetricStat"]["Metric"]))
            .collect(),
    }
}

/// The alarms that read `metric`.
fn alarms_on(t: &Value, metric: &Metric) -> Vec<(String, Value)> {
    alarms(t)
        .into_iter()
        .filter(|(_, a)| alarm_metrics(a).contains(metric))
        .collect()
}

/// True if `alarm` fires on any count above zero.
fn fires_on_any(alarm: &Value) -> bool {
    alarm["ComparisonOperator"].as_str() == Some("GreaterThanThreshold")
        && alarm["Threshold"].as_i64() == Some(0)
}

/// The dashboard's body, parsed with its `${…}` placeholders left in place: each sits inside
/// a JSON string, and what CloudFormation puts there (names, ARNs, the region, the stage)
/// needs no escaping, so the body parses now exactly as it will once substituted.
fn dashboard(t: &Value) -> serde_json::Value {
    let dashboards = of_type(t, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1, "one dashboard");
    let body =
        dashboards.values().next().expect("a dashboard")["Properties"]["DashboardBody"].clone();
    let Value::Tagged(sub) = &body else {
        panic!("the body is a !Sub, so names and the region resolve")
    };
    assert_eq!(sub.tag.to_string(), "!Sub");
    let text = sub.value.as_str().expect("the body is one string");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("the dashboard body is JSON: {e}"))
}

/// Every metric the dashboard's graphs show.
fn dashboard_metrics(body: &serde_json::Value) -> BTreeSet<Metric> {
    let mut out = BTreeSet::new();
    for widget in body["widgets"].as_array().expect("widgets") {
        if widget["type"] != "metric" {
            continue;
        }
        for entry in widget["properties"]["metrics"].as_array().expect("metrics") {
            let parts: Vec<&str> = entry
                .as_array()
                .expect("a metric is an array")
                .iter()
                .map_while(serde_json::Value::as_str)
                .collect();
            assert!(
                !parts.contains(&"."),
                "no `.` shorthand, so each line reads alone: {entry}"
            );
            let (names, dimensions) = parts.split_at(2);
            assert_eq!(
                dimensions.len() % 2,
                0,
                "dimension name/value pairs: {entry}"
            );
            let pairs: Vec<(&str, &str)> = dimensions.chunks(2).map(|p| (p[0], p[1])).collect();
            out.insert(Metric::new(names[0], names[1], &pairs));
        }
    }
    out
}

#[test]
fn every_function_has_an_alarm_on_its_errors_and_one_on_its_throttles() {
    // GIVEN every function the template deploys
    let t = template();
    for id in template_functions(&t).keys() {
        for name in ["Errors", "Throttles"] {
            // WHEN we look for the alarms on its AWS/Lambda metric
            let metric = Metric::new(
                "AWS/Lambda",
                name,
                &[("FunctionName", &format!("${{{id}}}"))],
            );
            let found = alarms_on(&t, &metric);
            // THEN there is one, and it fires on any count above zero
            assert_eq!(found.len(), 1, "{id}: one alarm on {name}");
            assert!(fires_on_any(&found[0].1), "{id}: {name} above zero");
        }
    }
}

#[test]
fn every_stream_consumer_has_an_iterator_age_alarm_and_one_on_its_failure_queue() {
    // GIVEN every function fed by a DynamoDB stream
    let t = template();
    let mut consumers = 0;
    for (id, f) in of_type(&t, "AWS::Serverless::Function") {
        let events = f["Properties"]["Events"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        for (_, event) in events.iter().filter(|(_, e)| e["Type"] == "DynamoDB") {
            consumers += 1;
            let p = &event["Properties"];
            // WHEN we look for the alarm on its IteratorAge
            let age = Metric::new(
                "AWS/Lambda",
                "IteratorAge",
                &[("FunctionName", &format!("${{{id}}}"))],
            );
            let found = alarms_on(&t, &age);
            assert_eq!(found.len(), 1, "{id}: one IteratorAge alarm");
            let alarm = &found[0].1;
            // THEN it watches the oldest record, and fires well before records are dropped
            // for age (to the failure queue)
            assert_eq!(alarm["Statistic"].as_str(), Some("Maximum"), "{id}");
            let threshold_ms = alarm["Threshold"].as_i64().expect("threshold");
            let dropped_ms = p["MaximumRecordAgeInSeconds"].as_i64().expect("record age") * 1000;
            assert!(
                threshold_ms > 0 && threshold_ms * 10 <= dropped_ms,
                "{id}: {threshold_ms} ms"
            );

            // WHEN we look for the alarm on the queue its mapping sends failed batches to
            let destination = text(&p["DestinationConfig"]["OnFailure"]["Destination"]);
            let queue = destination
                .strip_suffix(".Arn")
                .unwrap_or_else(|| panic!("{id}: an on-failure queue (!GetAtt Queue.Arn)"));
            assert!(
                of_type(&t, "AWS::SQS::Queue").contains_key(queue),
                "{queue} is a queue of the template"
            );
            let visible = Metric::new(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                &[("QueueName", &format!("${{{queue}.QueueName}}"))],
            );
            let found = alarms_on(&t, &visible);
            // THEN there is one, and a single message is enough
            assert_eq!(found.len(), 1, "{queue}: one alarm");
            assert!(fires_on_any(&found[0].1), "{queue}: not empty");
        }
    }
    assert_eq!(consumers, 2, "the fan-out and the push consumer");
}

#[test]
fn every_table_and_index_has_its_throttle_events_watched() {
    // GIVEN every table, and every global secondary index
    let t = template();
    for (id, table) in of_type(&t, "AWS::DynamoDB::Table") {
        let mut scopes = vec![vec![("TableName", format!("${{{id}}}"))]];
        for index in table["Properties"]["GlobalSecondaryIndexes"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            scopes.push(vec![
                ("TableName", format!("${{{id}}}")),
                ("GlobalSecondaryIndexName", text(&index["IndexName"])),
            ]);
        }
        for scope in scopes {
            let scope: Vec<(&str, &str)> = scope.iter().map(|(k, v)| (*k, v.as_str())).collect();
            for name in ["ReadThrottleEvents", "WriteThrottleEvents"] {
                // WHEN we look for an alarm on its read and write throttle events
                let found = alarms_on(&t, &Metric::new("AWS/DynamoDB", name, &scope));
                // THEN there is one (batch writes count there; ThrottledRequests misses them)
                assert_eq!(found.len(), 1, "{name} {scope:?}");
                assert!(fires_on_any(&found[0].1), "{name} {scope:?}");
            }
        }
    }
}

#[test]
fn both_apis_have_an_alarm_on_their_server_errors() {
    let t = template();
    // GIVEN the WebSocket API, which publishes no 5xx metric
    let ws = of_type(&t, "AWS::ApiGatewayV2::Api");
    let (ws_id, _) = ws.iter().next().expect("the WebSocket API");
    for name in ["IntegrationError", "ExecutionError"] {
        // WHEN we look for alarms on its stage's failed integrations and invocations
        let metric = Metric::new(
            "AWS/ApiGateway",
            name,
            &[("ApiId", &format!("${{{ws_id}}}")), ("Stage", "${Stage}")],
        );
        // THEN there is one
        assert_eq!(alarms_on(&t, &metric).len(), 1, "{name}");
    }
    // GIVEN the HTTP API (its one stage, `$default`)
    let http = of_type(&t, "AWS::Serverless::HttpApi");
    let (http_id, _) = http.iter().next().expect("the HTTP API");
    // WHEN we look for an alarm on its 5xx
    let metric = Metric::new(
        "AWS/ApiGateway",
        "5xx",
        &[("ApiId", &format!("${{{http_id}}}"))],
    );
    let found = alarms_on(&t, &metric);
    // THEN there is one, on any count above zero
    assert_eq!(found.len(), 1);
    assert!(fires_on_any(&found[0].1));
}

#[test]
fn an_alarm_on_an_expression_adds_up_every_metric_it_reads() {
    // GIVEN every alarm on a metric math expression
    let t = template();
    for (id, alarm) in alarms(&t) {
        let Some(queries) = alarm["Metrics"].as_sequence() else {
            continue;
        };
        // WHEN we take the one expression it watches
        let watched: Vec<&Value> = queries
            .iter()
            .filter(|q| q["ReturnData"].as_bool() == Some(true))
            .collect();
        assert_eq!(watched.len(), 1, "{id} watches one expression");
        let expression = text(&watched[0]["Expression"]);
        // THEN every metric it reads is in it, and a period without data counts as zero
        for q in queries.iter().filter(|q| !q["MetricStat"].is_null()) {
            let metric_id = text(&q["Id"]);
            assert!(
                expression.contains(&format!("FILL({metric_id}, 0)")),
                "{id}: {metric_id} is added up: {expression}"
            );
            assert_eq!(q["ReturnData"].as_bool(), Some(false), "{id}: {metric_id}");
        }
    }
}

#[test]
fn every_alarm_is_on_the_dashboard_with_its_metrics() {
    // GIVEN the alarms and the dashboard
    let t = template();
    let body = dashboard(&t);
    let shown = dashboard_metrics(&body);
    let listed: BTreeSet<String> = body["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| {
            w["properties"]["alarms"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|a| a.as_str().expect("an alarm ARN").to_owned())
        .collect();
    let all = alarms(&t);
    assert!(all.len() >= 20, "the alarms are there to be checked");
    for (id, alarm) in &all {
        // WHEN we look for the alarm's state and for what it reads
        // THEN its state is on the alarm widget, and each of its metrics on a graph
        assert!(
            listed.contains(&format!("${{{id}.Arn}}")),
            "{id} on the alarm widget"
        );
        for metric in alarm_metrics(alarm) {
            assert!(shown.contains(&metric), "{id}: {metric:?} on a graph");
        }
    }
    assert_eq!(
        listed.len(),
        all.len(),
        "the alarm widget lists the alarms only"
    );
}

#[test]
fn the_dashboards_placeholders_name_what_the_template_has() {
    // GIVEN the dashboard's body
    let t = template();
    let body = dashboard(&t).to_string();
    let resources = resources(&t);
    let parameters = t["Parameters"].as_mapping().expect("Parameters");
    // WHEN we read each `${…}` placeholder in it
    let mut rest = body.as_str();
    let mut seen = 0;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').expect("a closed placeholder") + start;
        let name = &rest[start + 2..end];
        rest = &rest[end + 1..];
        seen += 1;
        // THEN it is a pseudo parameter, a parameter, or a resource (its Ref or an attribute)
        let (logical, attribute) = name.split_once('.').unwrap_or((name, ""));
        let known = match attribute {
            "" => {
                logical.starts_with("AWS::")
                    || parameters.contains_key(logical)
                    || resources.contains_key(logical)
            }
            "Arn" => resources[logical]["Type"] == "AWS::CloudWatch::Alarm",
            "QueueName" => resources[logical]["Type"] == "AWS::SQS::Queue",
            _ => false,
        };
        assert!(known, "${{{name}}} resolves");
    }
    assert!(seen > 0, "the body names the stack's resources");
}

/// (`Function`, metric name) of every metric the functions print as EMF lines, read from the
/// lines themselves: the fan-out's batch (stream lag included), the push consumer's batch
/// (a failure of every kind), and the routed ETA's counters.
fn emitted_metrics() -> BTreeSet<(String, String)> {
    use rnd_domain::push::PushError;
    use rnd_handlers::{fanout::BatchMetrics, push::PushMetrics, routed_eta::RoutingCounts};

    let at = chrono::DateTime::from_timestamp_millis(1_773_489_600_000).expect("a time");
    let reasons = [
        PushError::Unregistered,
        PushError::Throttled { retry_after: None },
        PushError::Unavailable {
            retry_after: None,
            source: "down".into(),
        },
        PushError::Unauthorized("refused".into()),
        PushError::Rejected("too large".into()),
    ]
    .map(|e| (e.reason(), 1));
    let fanout = BatchMetrics {
        stream_lag_ms: Some(1),
        ..BatchMetrics::default()
    };
    let push = PushMetrics {
        failed: reasons.into(),
        ..PushMetrics::default()
    };
    let routing = RoutingCounts {
        calls: 1,
        ..RoutingCounts::default()
    };
    let lines = [
        fanout.to_emf(at),
        push.to_emf(at),
        routing
            .emf_since(&RoutingCounts::default(), at)
            .expect("a call prints a line"),
    ];
    let mut out = BTreeSet::new();
    for line in lines {
        let line: serde_json::Value = serde_json::from_str(&line).expect("an EMF line is JSON");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            directive["Namespace"],
            rnd_handlers::fanout::METRICS_NAMESPACE
        );
        assert_eq!(directive["Dimensions"], serde_json::json!([["Function"]]));
        let function = line["Function"].as_str().expect("Function");
        for metric in directive["Metrics"].as_array().expect("Metrics") {
            out.insert((
                function.to_owned(),
                metric["Name"].as_str().expect("Name").to_owned(),
            ));
        }
    }
    out
}

#[test]
fn the_dashboard_shows_exactly_the_metrics_the_functions_print() {
    // GIVEN the metrics the functions print (their EMF lines), and the dashboard's graphs
    let emitted = emitted_metrics();
    let t = template();
    // WHEN we take the graphs' metrics in the functions' namespace
    let shown: BTreeSet<(String, String)> = dashboard_metrics(&dashboard(&t))
        .into_iter()
        .filter(|m| m.namespace == rnd_handlers::fanout::METRICS_NAMESPACE)
        .map(|m| {
            let keys: Vec<&String> = m.dimensions.keys().collect();
            assert_eq!(
                keys,
                ["Function"],
                "{m:?}: the one dimension the lines declare"
            );
            (m.dimensions["Function"].clone(), m.name)
        })
        .collect();
    // THEN each one the functions print is graphed, and no graph waits for one they never do
    let missing: Vec<_> = emitted.difference(&shown).collect();
    let invented: Vec<_> = shown.difference(&emitted).collect();
    assert!(missing.is_empty(), "printed but not graphed: {missing:?}");
    assert!(
        invented.is_empty(),
        "graphed but never printed: {invented:?}"
    );
    let functions: BTreeSet<&str> = emitted.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        functions,
        BTreeSet::from([
            rnd_handlers::fanout::METRICS_FUNCTION,
            rnd_handlers::push::METRICS_FUNCTION,
            rnd_handlers::routed_eta::METRICS_FUNCTION,
        ])
    );
}
