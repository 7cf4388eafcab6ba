//! What `template.yaml` deploys for given parameters: the token settings each stage's functions
//! get, the permissions they hold, whom the alarms notify, and the deployments its rules refuse. A small evaluator
//! resolves the intrinsic functions the template uses (`Ref`, `Sub`, `If`, `Equals`, `Not`,
//! `And`, `Or`, `Condition`) as CloudFormation would for those parameters.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml parses")
}

/// The template resolved for one set of parameters (the template's defaults for the rest).
struct Deployment {
    template: Value,
    parameters: BTreeMap<String, String>,
}

impl Deployment {
    fn with(overrides: &[(&str, &str)]) -> Deployment {
        let template = template();
        let mut parameters: BTreeMap<String, String> = template["Parameters"]
            .as_mapping()
            .expect("Parameters")
            .iter()
            .map(|(name, p)| {
                let default = match &p["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Null => String::new(),
                    other => panic!("a default that is not a scalar: {other:?}"),
                };
                (name.as_str().expect("name").to_owned(), default)
            })
            .collect();
        for (name, value) in overrides {
            assert!(parameters.contains_key(*name), "no parameter {name}");
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        Deployment {
            template,
            parameters,
        }
    }

    fn condition(&self, name: &str) -> bool {
        let condition = &self.template["Conditions"][name];
        assert!(!condition.is_null(), "no condition {name}");
        self.truth(condition)
    }

    fn truth(&self, v: &Value) -> bool {
        match self.resolve(v) {
            Some(Value::Bool(b)) => b,
            other => panic!("not a condition: {other:?}"),
        }
    }

    /// `v` as CloudFormation resolves it; `None` is `AWS::NoValue`.
    fn resolve(&self, v: &Value) -> Option<Value> {
        match v {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                self.intrinsic(tag.trim_start_matches('!'), &tagged.value)
            }
            Value::Mapping(m) if m.len() == 1 => {
                let (k, arg) = m.iter().next().expect("one entry");
                match k.as_str().and_then(|k| k.strip_prefix("Fn::")) {
                    Some(name) => self.intrinsic(name, arg),
                    None if k.as_str() == Some("Ref") || k.as_str() == Some("Condition") => {
                        self.intrinsic(k.as_str().expect("key"), arg)
                    }
                    None => Some(Value::Mapping(self.mapping(m))),
                }
            }
            Value::Mapping(m) => Some(Value::Mapping(self.mapping(m))),
            Value::Sequence(items) => Some(Value::Sequence(
                items.iter().filter_map(|i| self.resolve(i)).collect(),
            )),
            other => Some(other.clone()),
        }
    }

    fn mapping(&self, m: &Mapping) -> Mapping {
        m.iter()
            .filter_map(|(k, v)| Some((k.clone(), self.resolve(v)?)))
            .collect()
    }

    fn intrinsic(&self, name: &str, arg: &Value) -> Option<Value> {
        let args = || arg.as_sequence().expect("a list of arguments");
        Some(match name {
            "Ref" => {
                let target = arg.as_str().expect("Ref names a string");
                if target == "AWS::NoValue" {
                    return None;
                }
                Value::String(
                    self.parameters
                        .get(target)
                        .cloned()
                        .unwrap_or_else(|| format!("{{{target}}}")),
                )
            }
            "Sub" => Value::String(match arg {
                Value::String(text) => self.substitute(text, &BTreeMap::new()),
                Value::Sequence(parts) => {
                    let text = parts[0].as_str().expect("Sub text");
                    let vars = parts[1]
                        .as_mapping()
                        .expect("Sub variables")
                        .iter()
                        .map(|(k, v)| {
                            let value = self.resolve(v).expect("a value");
                            (
                                k.as_str().expect("name").to_owned(),
                                value.as_str().expect("a string").to_owned(),
                            )
                        })
                        .collect();
                    self.substitute(text, &vars)
                }
                other => panic!("Sub of {other:?}"),
            }),
            "If" => {
                let a = args();
                let chosen = if self.condition(a[0].as_str().expect("condition name")) {
                    &a[1]
                } else {
                    &a[2]
                };
                return self.resolve(chosen);
            }
            "Equals" => {
                let a = args();
                Value::Bool(self.resolve(&a[0]) == self.resolve(&a[1]))
            }
            "Not" => Value::Bool(!self.truth(&args()[0])),
            "And" => Value::Bool(args().iter().all(|c| self.truth(c))),
            "Or" => Value::Bool(args().iter().any(|c| self.truth(c))),
            "Condition" => Value::Bool(self.condition(arg.as_str().expect("condition name"))),
            // Attributes and the rest stay symbolic: `{Name}`.
            _ => Value::String(format!("{{{name}}}")),
        })
    }

    /// `${Param}` replaced by its value (or `vars`'); `${AWS::…}` and attributes kept.
    fn substitute(&self, text: &str, vars: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed ${") + start;
            let name = &rest[start + 2..end];
            match vars.get(name).or_else(|| self.parameters.get(name)) {
                Some(value) => out.push_str(value),
                None => out.push_str(&rest[start..=end]),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The resolved properties of a resource.
    fn properties(&self, resource: &str) -> Value {
        let r = &self.template["Resources"][resource];
        assert!(!r.is_null(), "no resource {resource}");
        self.resolve(&r["Properties"]).expect("properties")
    }

    /// A function's environment variables.
    fn environment(&self, function: &str) -> BTreeMap<String, String> {
        self.properties(function)["Environment"]["Variables"]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().expect("name").to_owned(),
                            v.as_str().map_or_else(|| format!("{v:?}"), str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The resources a function may `ssm:GetParameter`, as resolved ARNs.
    fn readable_parameters(&self, function: &str) -> Vec<String> {
        let policies = self.properties(function)["Policies"].clone();
        let mut out = Vec::new();
        for policy in policies.as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                let reads = statement["Action"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|a| a.as_str() == Some("ssm:GetParameter"));
                if reads {
                    out.push(statement["Resource"].as_str().expect("ARN").to_owned());
                }
            }
        }
        out
    }

    /// The descriptions of the rules' assertions these parameters break.
    fn broken_rules(&self) -> Vec<String> {
        let mut broken = Vec::new();
        for (_, rule) in self.template["Rules"].as_mapping().expect("Rules") {
            let applies = rule
                .get("RuleCondition")
                .is_none_or(|condition| self.truth(condition));
            if !applies {
                continue;
            }
            for assertion in rule["Assertions"].as_sequence().expect("Assertions") {
                if !self.truth(&assertion["Assert"]) {
                    broken.push(
                        assertion["AssertDescription"]
                            .as_str()
                            .expect("a description")
                            .to_owned(),
                    );
                }
            }
        }
        broken
    }
}

/// The functions that verify tokens.
const VERIFIERS: [&str; 2] = ["WsAuthorizerFunction", "HttpApiFunction"];

const NAMED_PROD: [(&str, &str); 3] = [
    ("Stage", "prod"),
    ("JwtIssuer", "https://auth.example.com/"),
    ("JwtAudience", "rnd-realtime"),
];

fn ends_with_path(arn: &str, path: &str) -> bool {
    arn.ends_with(&format!(":parameter{path}"))
}

#[test]
fn each_stage_reads_its_own_jwt_secret_and_may_read_nothing_else() {
    for (stage, deployment) in [
        ("dev", Deployment::with(&[])),
        ("prod", Deployment::with(&NAMED_PROD)),
    ] {
        let path = format!("/rnd-realtime/{stage}/jwt-secret");
        for function in VERIFIERS {
            // GIVEN the stage deployed with its defaults
            let env = deployment.environment(function);
            // THEN its functions read the stage's own secret
            assert_eq!(
                env.get("JWT_SECRET_PARAMETER"),
                Some(&path),
                "{stage} {function}"
            );
            // AND may read that parameter and no other
            let readable = deployment.readable_parameters(function);
            assert_eq!(readable.len(), 1, "{stage} {function}: {readable:?}");
            assert!(ends_with_path(&readable[0], &path), "{readable:?}");
        }
        // AND the push function reads the stage's own FCM credentials
        let fcm = format!("/rnd-realtime/{stage}/fcm-service-account");
        assert_eq!(
            deployment
                .environment("StreamPushFunction")
                .get("FCM_CREDENTIALS_PARAMETER"),
            Some(&fcm)
        );
        let readable = deployment.readable_parameters("StreamPushFunction");
        assert!(
            readable.iter().any(|arn| ends_with_path(arn, &fcm)),
            "{readable:?}"
        );
    }
}

#[test]
fn a_named_secret_parameter_replaces_the_stage_path() {
    let deployment = Deployment::with(&[("JwtSecretParameterName", "/shared/jwt")]);
    for function in VERIFIERS {
        assert_eq!(
            deployment
                .environment(function)
                .get("JWT_SECRET_PARAMETER")
                .map(String::as_str),
            Some("/shared/jwt")
        );
        assert!(ends_with_path(
            &deployment.readable_parameters(function)[0],
            "/shared/jwt"
        ));
    }
}

#[test]
fn outside_dev_a_deployment_without_issuer_and_audience_is_refused() {
    // GIVEN prod with neither, with one, and with both
    let neither = Deployment::with(&[("Stage", "prod")]);
    let issuer_only = Deployment::with(&NAMED_PROD[..2]);
    let both = Deployment::with(&NAMED_PROD);
    // THEN the rules refuse the first two, naming what is missing, and accept the last
    assert_eq!(
        neither.broken_rules(),
        [
            "JwtIssuer is required for every stage but dev.",
            "JwtAudience is required for every stage but dev."
        ]
    );
    assert_eq!(
        issuer_only.broken_rules(),
        ["JwtAudience is required for every stage but dev."]
    );
    assert!(both.broken_rules().is_empty());
    // AND dev deploys without them
    assert!(Deployment::with(&[]).broken_rules().is_empty());
}

#[test]
fn with_a_jwks_url_the_functions_hold_no_signing_key() {
    // GIVEN prod verifying with its identity provider's JWKS
    let mut parameters = NAMED_PROD.to_vec();
    parameters.push((
        "JwtJwksUrl",
        "https://auth.example.com/.well-known/jwks.json",
    ));
    let deployment = Deployment::with(&parameters);
    assert!(deployment.broken_rules().is_empty());
    for function in VERIFIERS {
        // THEN its functions get the URL and no secret, and may read no parameter
        let env = deployment.environment(function);
        assert_eq!(
            env.get("JWT_JWKS_URL").map(String::as_str),
            Some("https://auth.example.com/.well-known/jwks.json")
        );
        assert!(!env.contains_key("JWT_SECRET_PARAMETER"), "{env:?}");
        assert!(!env.contains_key("JWT_PUBLIC_KEY_PARAMETER"), "{env:?}");
        assert!(deployment.readable_parameters(function).is_empty());
    }
}

#[test]
fn with_a_public_key_the_functions_read_that_key_only() {
    // GIVEN prod verifying with an ES256 public key kept in a parameter
    let mut parameters = NAMED_PROD.to_vec();
    parameters.push(("JwtPublicKeyParameterName", "/idp/public-key"));
    parameters.push(("JwtAlgorithm", "ES256"));
    let deployment = Deployment::with(&parameters);
    assert!(deployment.broken_rules().is_empty());
    for function in VERIFIERS {
        let env = deployment.environment(function);
        // THEN its functions get the key's parameter and algorithm, and no secret
        assert_eq!(
            env.get("JWT_PUBLIC_KEY_PARAMETER").map(String::as_str),
            Some("/idp/public-key")
        );
        assert_eq!(env.get("JWT_ALGORITHM").map(String::as_str), Some("ES256"));
        assert!(!env.contains_key("JWT_SECRET_PARAMETER"), "{env:?}");
        let readable = deployment.readable_parameters(function);
        assert_eq!(readable.len(), 1, "{readable:?}");
        assert!(ends_with_path(&readable[0], "/idp/public-key"));
    }
}

#[test]
fn a_jwks_url_and_a_public_key_together_are_refused() {
    let deployment = Deployment::with(&[
        ("JwtJwksUrl", "https://auth.example.com/jwks.json"),
        ("JwtPublicKeyParameterName", "/idp/public-key"),
    ]);
    assert_eq!(
        deployment.broken_rules(),
        ["Set JwtJwksUrl or JwtPublicKeyParameterName, not both."]
    );
}

#[test]
fn no_deployed_function_may_use_the_development_secret() {
    // GIVEN every function of a deployment
    let deployment = Deployment::with(&[]);
    let resources = deployment.template["Resources"]
        .as_mapping()
        .expect("Resources")
        .clone();
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let env = deployment.environment(id.as_str().expect("id"));
        // THEN none opts in to the public secret or carries a secret in plain text
        assert!(!env.contains_key("JWT_ALLOW_DEV_SECRET"), "{id:?}");
        assert!(!env.contains_key("JWT_SECRET"), "{id:?}");
    }
}

#[test]
fn by_default_etas_are_estimated_and_the_location_function_reads_no_routing_key() {
    // GIVEN the defaults
    let deployment = Deployment::with(&[]);
    let env = deployment.environment("WsDriverLocationFunction");
    // THEN the location function routes nothing and names no key
    assert_eq!(env.get("ETA_PROVIDER").map(String::as_str), Some("none"));
    assert_eq!(
        env.get("ROUTING_KEY_PARAMETER").map(String::as_str),
        Some("")
    );
    assert!(deployment.broken_rules().is_empty());
}

#[test]
fn a_keyed_provider_reads_the_stages_routing_key_or_the_named_one() {
    for provider in ["mapbox", "google"] {
        // GIVEN prod routing with a provider that needs a key
        let mut overrides = NAMED_PROD.to_vec();
        overrides.push(("EtaProvider", provider));
        let deployment = Deployment::with(&overrides);
        // THEN the location function reads the stage's own routing key, and may read it
        let env = deployment.environment("WsDriverLocationFunction");
        assert_eq!(env.get("ETA_PROVIDER").map(String::as_str), Some(provider));
        let path = "/rnd-realtime/prod/routing-key";
        assert_eq!(
            env.get("ROUTING_KEY_PARAMETER").map(String::as_str),
            Some(path)
        );
        let readable = deployment.readable_parameters("WsDriverLocationFunction");
        assert!(
            readable.iter().any(|arn| ends_with_path(arn, path)),
            "{readable:?}"
        );
        assert!(deployment.broken_rules().is_empty());
        // AND a named parameter replaces the stage's path
        overrides.push(("RoutingKeyParameterName", "/shared/mapbox"));
        let named = Deployment::with(&overrides);
        assert_eq!(
            named
                .environment("WsDriverLocationFunction")
                .get("ROUTING_KEY_PARAMETER")
                .map(String::as_str),
            Some("/shared/mapbox")
        );
    }
}

#[test]
fn osrm_without_its_server_is_refused_and_with_it_reads_no_key() {
    // GIVEN OSRM without a base URL, and with one
    let without = Deployment::with(&[("EtaProvider", "osrm")]);
    let with = Deployment::with(&[
        ("EtaProvider", "osrm"),
        ("RoutingBaseUrl", "https://osrm.internal.example.com"),
    ]);
    // THEN the first is refused, naming what is missing
    assert_eq!(
        without.broken_rules(),
        ["EtaProvider osrm needs RoutingBaseUrl (your OSRM server)."]
    );
    // AND the second passes the server to the function and names no key
    assert!(with.broken_rules().is_empty());
    let env = with.environment("WsDriverLocationFunction");
    assert_eq!(
        env.get("ROUTING_BASE_URL").map(String::as_str),
        Some("https://osrm.internal.example.com")
    );
    assert_eq!(
        env.get("ROUTING_KEY_PARAMETER").map(String::as_str),
        Some("")
    );
}

#[test]
fn alarms_notify_the_topic_when_one_is_given_and_no_one_otherwise() {
    // GIVEN the stack deployed without an alarm topic, and prod with one
    let topic = "arn:aws:sns:eu-west-1:123456789012:rnd-realtime-pager";
    let quiet = Deployment::with(&[]);
    let mut named = NAMED_PROD.to_vec();
    named.push(("AlarmTopicArn", topic));
    let paging = Deployment::with(&named);
    let alarms: Vec<String> = quiet.template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(id, _)| id.as_str().expect("logical id").to_owned())
        .collect();
    assert!(!alarms.is_empty(), "the template has alarms");
    let mut names = std::collections::BTreeSet::new();
    for alarm in &alarms {
        // WHEN each alarm is resolved
        let without = quiet.properties(alarm);
        let with = paging.properties(alarm);
        // THEN without a topic it notifies no one
        assert!(without.get("AlarmActions").is_none(), "{alarm}");
        assert!(without.get("OKActions").is_none(), "{alarm}");
        // AND with one it notifies the topic on ALARM and again on OK
        let to_topic = Value::Sequence(vec![Value::String(topic.to_owned())]);
        assert_eq!(with.get("AlarmActions"), Some(&to_topic), "{alarm}");
        assert_eq!(with.get("OKActions"), Some(&to_topic), "{alarm}");
        // AND its name says which stage it watches, once in the account
        let name = with["AlarmName"].as_str().expect("a name").to_owned();
        assert!(name.starts_with("rnd-realtime-prod-"), "{name}");
        assert!(names.insert(name.clone()), "{name} is unique");
    }
}
