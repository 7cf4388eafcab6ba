//! The fuzz targets reach what they are meant to fuzz: their seeds, run through the entry
//! functions, get the answers a real client would (an accepted order, an allowed connection),
//! so the fuzzer starts from inputs that pass every check before the code under test, not
//! from inputs refused at the door.

use std::path::{Path, PathBuf};

use aws_lambda_events::iam::IamPolicyEffect;
use axum::http::StatusCode;
use rnd_fuzz_entries::{authorizer_token, http_bodies};

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
        .join(format!("seed-{name}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_http_seeds_are_answered_as_the_api_answers_a_real_client() {
    for (name, status, problem) in [
        ("create-order", StatusCode::CREATED, None),
        ("create-order-bare", StatusCode::CREATED, None),
        (
            "create-order-wrong-content-type",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type"),
        ),
        ("assign-driver", StatusCode::OK, None),
        ("cancel-order", StatusCode::OK, None),
        ("put-profile-chef", StatusCode::OK, None),
        ("put-profile-customer", StatusCode::OK, None),
        ("register-device", StatusCode::CREATED, None),
        ("list-orders", StatusCode::OK, None),
        (
            "list-orders-cursor",
            StatusCode::BAD_REQUEST,
            Some("invalid_cursor"),
        ),
    ] {
        // GIVEN a seed of the HTTP target
        let input = seed("http_bodies", name);
        // WHEN it runs through the entry function
        let answer = http_bodies::answer(&input).expect("a request");
        // THEN the API answers it as it answers that request from a client
        assert_eq!(answer.status, status, "{name}: {answer:?}");
        assert_eq!(answer.body["code"].as_str(), problem, "{name}: {answer:?}");
    }
}

#[test]
fn a_listing_answers_the_callers_seeded_orders() {
    // GIVEN the listing seed of the customer who placed both seeded orders
    let answer = http_bodies::answer(&seed("http_bodies", "list-orders")).expect("a request");
    // THEN both orders are listed
    assert_eq!(answer.body["orders"].as_array().map(Vec::len), Some(2));
}

#[test]
fn the_token_seeds_are_allowed_or_denied_as_the_fixtures_say() {
    for (name, effect) in [
        ("event-authorizer-bearer-header", IamPolicyEffect::Allow),
        ("event-authorizer-query-token", IamPolicyEffect::Allow),
        ("event-authorizer-subprotocol", IamPolicyEffect::Allow),
        ("event-authorizer-expired-token", IamPolicyEffect::Deny),
        ("event-authorizer-tampered-token", IamPolicyEffect::Deny),
        ("event-authorizer-no-token", IamPolicyEffect::Deny),
        (
            "claims-authorizer-bearer-header-at-0",
            IamPolicyEffect::Allow,
        ),
        (
            "claims-authorizer-bearer-header-at-1",
            IamPolicyEffect::Allow,
        ),
        (
            "claims-authorizer-bearer-header-at-2",
            IamPolicyEffect::Allow,
        ),
        (
            "claims-authorizer-expired-token-at-0",
            IamPolicyEffect::Deny,
        ),
        ("header-authorizer-bearer-header", IamPolicyEffect::Allow),
        ("header-kid", IamPolicyEffect::Allow),
        ("token-authorizer-bearer-header", IamPolicyEffect::Allow),
        ("token-authorizer-tampered-token", IamPolicyEffect::Deny),
    ] {
        // GIVEN a seed of the authorizer target
        let input = seed("authorizer_token", name);
        // WHEN it runs through the entry function
        let response = authorizer_token::answer(&input).expect("an authorizer event");
        // THEN the connection is allowed or denied as the fixture's token says
        assert_eq!(
            response.policy_document.statement[0].effect, effect,
            "{name}"
        );
    }
}

#[test]
fn a_token_text_that_reads_like_the_denys_own_words_is_denied_without_a_false_alarm() {
    // GIVEN the first run's only crash: raw token text (mode 3) `Some("anonymous") {`, which
    // the target once mistook for a leak because it is a substring of how it printed a Deny
    let input = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/authorizer_token/crash-harness-token-in-deny-text"),
    )
    .expect("the crash input is in the corpus");
    // WHEN it runs through the entry function
    let response = authorizer_token::answer(&input).expect("an authorizer event");
    // THEN the connection is denied, and the target's checks pass
    assert_eq!(
        response.policy_document.statement[0].effect,
        IamPolicyEffect::Deny
    );
    assert_eq!(response.principal_id.as_deref(), Some("anonymous"));
}
