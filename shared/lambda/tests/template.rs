//! `template.yaml` and the workspace agree: every function the template deploys is a crate
//! under `functions/` (binary name = package name) and every such crate is deployed; every
//! WebSocket route the protocol needs exists, is wired to the right function, answers two-way
//! where the protocol expects an answer, and may invoke its function.

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
