//! Every fixture in `events/` is an event exactly as AWS's own types parse it, and every one is
//! used by a test (the same files serve `sam local invoke -e`, `cargo lambda invoke
//! --data-file` and the tests).

use std::path::{Path, PathBuf};

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayV2httpRequest,
    ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::dynamodb::Event as DynamoDbEvent;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() && !matches!(name, "target" | "node_modules" | ".git" | ".aws-sam") {
            files(&path, ext, out);
        } else if path.extension().and_then(|e| e.to_str()) == Some(ext) {
            out.push(path);
        }
    }
}

fn fixtures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    files(&root().join("events"), "json", &mut out);
    out.sort();
    assert!(!out.is_empty(), "events/ has fixtures");
    out
}

#[test]
fn every_fixture_parses_as_the_event_aws_sends_for_its_kind() {
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).expect("read");
        let kind = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .expect("in a folder of its kind");
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let parsed = match (kind, stem.starts_with("authorizer-")) {
            ("websocket", true) => {
                serde_json::from_str::<ApiGatewayCustomAuthorizerRequestTypeRequest>(&text)
                    .map(|e| assert_eq!(e.type_.as_deref(), Some("REQUEST")))
            }
            ("websocket", false) => serde_json::from_str::<ApiGatewayWebsocketProxyRequest>(&text)
                .map(|e| {
                    let ctx = &e.request_context;
                    assert!(ctx.route_key.is_some(), "{stem}: routeKey");
                    assert!(ctx.connection_id.is_some(), "{stem}: connectionId");
                    assert!(ctx.connected_at > 0, "{stem}: connectedAt");
                    assert!(ctx.request_time_epoch > 0, "{stem}: requestTimeEpoch");
                }),
            ("stream", _) => serde_json::from_str::<DynamoDbEvent>(&text)
                .map(|e| assert!(!e.records.is_empty(), "{stem}: has records")),
            ("http", _) => serde_json::from_str::<ApiGatewayV2httpRequest>(&text)
                .map(|e| assert_eq!(e.version.as_deref(), Some("2.0"), "{stem}: payload v2")),
            (other, _) => panic!("{}: unknown fixture kind {other}", path.display()),
        };
        parsed.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn every_fixture_is_used_by_a_test() {
    let mut sources = Vec::new();
    for dir in ["shared", "functions", "local"] {
        files(&root().join(dir), "rs", &mut sources);
    }
    let text: String = sources
        .iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "tests"))
        .map(|p| std::fs::read_to_string(p).expect("read"))
        .collect();
    for path in fixtures() {
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("name");
        // Fixtures are loaded by name: fixture("connect"), include_str!(".../connect.json").
        let quoted = format!("\"{stem}\"");
        let file = format!("{stem}.json");
        if stem == "fixtures" {
            continue;
        }
        assert!(
            text.contains(&quoted) || text.contains(&file),
            "{} is not used by any test",
            path.display()
        );
    }
}
