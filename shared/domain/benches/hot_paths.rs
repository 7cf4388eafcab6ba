//! Micro-benchmarks of the domain's hot paths:
//!
//! - `serialize/*`: [`ServerMessage::to_json`], the JSON text the fan-out posts, for each event
//!   the fan-out sends per stream record (status, location and ETA updates; the same values the
//!   `events/stream/` fixtures produce);
//! - `jwt_verify/*`: [`JwtVerifier::verify`] of a valid token: HS256 (the shared-secret path the
//!   deployed stack and the local stack use), RS256 and ES256 (public-key configurations, with
//!   the test keys in `tests/keys/`).
//!
//! `cargo bench -p rnd-domain --bench hot_paths` prints the figures (`make bench-micro`); under
//! `cargo test --all-targets` each benchmark runs once, as a check that it still works.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rnd_domain::identity::{
    DEV_JWT_SECRET, JwtVerifier, KeySource, TokenClaims, VerifierConfig, issue_hs256,
};
use rnd_domain::ids::{OrderId, UserId};
use rnd_domain::order::OrderStatus;
use rnd_domain::protocol::{EtaUpdateData, LocationUpdateData, ServerMessage, StatusUpdateData};

const RSA_PRIVATE: &str = include_str!("../tests/keys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../tests/keys/rsa_public.pem");
const EC_PRIVATE: &str = include_str!("../tests/keys/ec_private.pem");
const EC_PUBLIC: &str = include_str!("../tests/keys/ec_public.pem");

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a valid RFC 3339 time")
}

fn order_id() -> OrderId {
    OrderId::parse("order-1").expect("a valid order id")
}

fn user(id: &str) -> UserId {
    UserId::parse(id).expect("a valid user id")
}

/// The three events the fan-out sends most, as `order-accepted.json`, `live-location.json`
/// and `live-eta-change.json` derive them.
fn messages() -> [(&'static str, ServerMessage); 3] {
    [
        (
            "status_update",
            ServerMessage::StatusUpdate(StatusUpdateData {
                order_id: order_id(),
                order_number: "RND-20260314-0001".into(),
                status: OrderStatus::Accepted,
                previous_status: OrderStatus::PaymentConfirmed,
                changed_by: Some(user("chef-1")),
                timestamp: at("2026-03-14T12:05:00Z"),
                reason: None,
                seq: 3,
                previous_status_seq: Some(2),
                cursor: None,
                replayed: false,
            }),
        ),
        (
            "location_update",
            ServerMessage::LocationUpdate(LocationUpdateData {
                order_id: order_id(),
                driver_id: user("driver-1"),
                latitude: 30.2701,
                longitude: -97.7375,
                heading: Some(330.0),
                speed: Some(8.5),
                timestamp: at("2026-03-14T12:26:05Z"),
                seq: 9,
            }),
        ),
        (
            "eta_update",
            ServerMessage::EtaUpdate(EtaUpdateData {
                order_id: order_id(),
                eta_minutes: 13,
                estimated_delivery_time: at("2026-03-14T12:38:20Z"),
                eta_source: rnd_domain::live::EtaSource::Route,
                estimated_pickup_time: None,
                seq: 9,
            }),
        ),
    ]
}

fn serialize(c: &mut Criterion) {
    let mut group = c.benchmark_group("serialize");
    for (name, message) in messages() {
        group.bench_function(name, |b| b.iter(|| black_box(&message).to_json()));
    }
    group.finish();
}

/// Claims of a customer token valid for an hour.
fn claims() -> TokenClaims {
    let now = Utc::now().timestamp();
    TokenClaims {
        sub: "customer-1".into(),
        role: "customer".into(),
        exp: now + 3600,
        nbf: None,
        iat: Some(now),
        name: Some("Ada Customer".into()),
        iss: None,
        aud: None,
    }
}

fn signed(algorithm: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), &claims(), key).expect("the claims sign")
}

fn verifier(keys: KeySource) -> JwtVerifier {
    JwtVerifier::new(VerifierConfig {
        keys,
        ..VerifierConfig::hs256(DEV_JWT_SECRET)
    })
    .expect("the bench keys are usable")
}

fn jwt_verify(c: &mut Criterion) {
    let hs256 = (
        verifier(KeySource::Hs256Secret(DEV_JWT_SECRET.into())),
        issue_hs256(&claims(), DEV_JWT_SECRET.as_bytes()).expect("the claims sign"),
    );
    let rs256 = (
        verifier(KeySource::Rs256PublicKeyPem(RSA_PUBLIC.into())),
        signed(
            Algorithm::RS256,
            &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("the RSA test key parses"),
        ),
    );
    let es256 = (
        verifier(KeySource::Es256PublicKeyPem(EC_PUBLIC.into())),
        signed(
            Algorithm::ES256,
            &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("the EC test key parses"),
        ),
    );
    let mut group = c.benchmark_group("jwt_verify");
    for (name, (verifier, token)) in [("hs256", hs256), ("rs256", rs256), ("es256", es256)] {
        // A benchmark of a refusal would measure nothing useful: check the token verifies.
        verifier.verify(&token).expect("the bench token verifies");
        group.bench_function(name, |b| {
            b.iter(|| verifier.verify(black_box(&token)).expect("verifies"))
        });
    }
    group.finish();
}

criterion_group!(benches, serialize, jwt_verify);
criterion_main!(benches);
