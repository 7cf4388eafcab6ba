//! What each function is fed: the state it needs in the tables, a first and a warm event (the
//! fixtures in `events/`, exactly as AWS sends them), and the answer each must give for the
//! invocation to count as a success.

use chrono::{DateTime, SecondsFormat, Utc};
use rnd_domain::identity::Actor;
use rnd_domain::ids::{ConnectionId, OrderId};
use rnd_domain::order::OrderStatus;
use rnd_domain::ports::{ConnectionStore, DeviceStore, OrderStore, StoreError};
use rnd_domain::rooms::{Room, initial_rooms};
use rnd_store_conformance::fixtures;
use serde_json::Value;

/// The customer's connection in the WebSocket fixtures.
pub const CUSTOMER_CONNECTION: &str = "L0SM9cOFvHcCIhw=";
/// The driver's connection in the WebSocket fixtures.
pub const DRIVER_CONNECTION: &str = "Dr1vErC0nnId0Q=";
/// A second customer connection, for warm invocations that must not reuse the first.
pub const SECOND_CONNECTION: &str = "S3c0ndC0nnId0Q=";
/// Every connection a scenario opens; all are closed before each run.
pub const CONNECTIONS: [&str; 3] = [CUSTOMER_CONNECTION, DRIVER_CONNECTION, SECOND_CONNECTION];
/// The order of every fixture.
pub const ORDER: &str = "order-1";

/// A fixture could not be prepared or the tables could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A fixture is not the JSON its edit expects.
    #[error("fixture {fixture}: {problem}")]
    Fixture {
        /// The fixture's path under `events/`.
        fixture: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A store call failed.
    #[error("seeding the tables failed")]
    Store(#[from] StoreError),
    /// A fixture id does not parse.
    #[error("invalid id in the scenario: {0}")]
    Id(String),
}

/// Who a seeded connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// `customer-1`, the order's customer.
    Customer,
    /// `driver-1`, the order's driver.
    Driver,
}

impl Who {
    fn actor(self) -> Actor {
        match self {
            Who::Customer => fixtures::customer(),
            Who::Driver => fixtures::driver(),
        }
    }
}

/// A connection opened before the function runs.
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    /// Its id.
    pub connection: &'static str,
    /// Whose it is (it joins the rooms `$connect` gives it: the user's room, and `role:admin`
    /// for an admin).
    pub who: Who,
    /// Whether it is also subscribed to `order:order-1`.
    pub in_order_room: bool,
}

/// A change made to a fixture before it is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edit {
    /// Sent as it is.
    None,
    /// `requestContext.connectionId` replaced.
    ConnectionId(&'static str),
    /// `requestContext.connectionId` replaced by a new unique id. For `$connect`: the row it
    /// writes takes its connection time from the fixture, long past, so it cannot be closed
    /// (it is already expired) and its id cannot be opened again.
    NewConnectionId,
    /// A `driver:location` report recorded now (`recordedAt` and `requestTimeEpoch` set to
    /// the current time), `offset` degrees north of the fixture's, so it is a fresh fix.
    FreshLocation {
        /// Degrees of latitude added.
        offset: f64,
    },
}

/// One invocation of a scenario.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The fixture's path under `events/`.
    pub fixture: &'static str,
    /// Its text.
    pub text: &'static str,
    /// The change made before sending it.
    pub edit: Edit,
    /// What [`describe`] must say of the answer.
    pub expect: &'static str,
}

impl Step {
    /// The event to send, as JSON bytes, edited as the step says at `now`.
    pub fn payload(&self, now: DateTime<Utc>) -> Result<Vec<u8>, ScenarioError> {
        let problem = |problem: &str| ScenarioError::Fixture {
            fixture: self.fixture,
            problem: problem.to_owned(),
        };
        if matches!(self.edit, Edit::None) {
            return Ok(self.text.as_bytes().to_vec());
        }
        let mut event: Value =
            serde_json::from_str(self.text).map_err(|e| problem(&e.to_string()))?;
        match self.edit {
            Edit::None => {}
            Edit::ConnectionId(id) => set_connection_id(&mut event, id.to_owned())
                .ok_or_else(|| problem("no requestContext"))?,
            Edit::NewConnectionId => {
                let id = format!("{}=", &uuid::Uuid::new_v4().simple().to_string()[..14]);
                set_connection_id(&mut event, id).ok_or_else(|| problem("no requestContext"))?
            }
            Edit::FreshLocation { offset } => {
                let body = event
                    .get("body")
                    .and_then(Value::as_str)
                    .ok_or_else(|| problem("no body"))?;
                let mut report: Value =
                    serde_json::from_str(body).map_err(|e| problem(&e.to_string()))?;
                let latitude = report
                    .get("latitude")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| problem("no latitude"))?;
                report["latitude"] = (latitude + offset).into();
                report["recordedAt"] = now.to_rfc3339_opts(SecondsFormat::Millis, true).into();
                event["body"] = report.to_string().into();
                event["requestContext"]["requestTimeEpoch"] = now.timestamp_millis().into();
            }
        }
        serde_json::to_vec(&event).map_err(|e| problem(&e.to_string()))
    }
}

fn set_connection_id(event: &mut Value, id: String) -> Option<()> {
    let context = event.get_mut("requestContext")?.as_object_mut()?;
    context.insert("connectionId".into(), id.into());
    Some(())
}

/// What a function is fed.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The function (its binary's name).
    pub function: &'static str,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, as `template.yaml` sets it.
    pub memory_mb: u32,
    /// Connections opened before it starts.
    pub seeds: &'static [Seed],
    /// The cold start's invocation.
    pub first: Step,
    /// The next one, in the same process.
    pub warm: Step,
}

macro_rules! step {
    ($path:literal, $edit:expr, $expect:literal) => {
        Step {
            fixture: $path,
            text: include_str!(concat!("../../../events/", $path)),
            edit: $edit,
            expect: $expect,
        }
    };
}

const CUSTOMER: Seed = Seed {
    connection: CUSTOMER_CONNECTION,
    who: Who::Customer,
    in_order_room: false,
};
const SUBSCRIBED_CUSTOMER: Seed = Seed {
    in_order_room: true,
    ..CUSTOMER
};
const SECOND_CUSTOMER: Seed = Seed {
    connection: SECOND_CONNECTION,
    ..CUSTOMER
};
const DRIVER: Seed = Seed {
    connection: DRIVER_CONNECTION,
    who: Who::Driver,
    in_order_room: false,
};

/// The nine functions, in `template.yaml` order.
pub const SCENARIOS: [Scenario; 11] = [
    Scenario {
        function: "ws-authorizer",
        memory_mb: 256,
        seeds: &[],
        first: step!("websocket/authorizer-query-token.json", Edit::None, "Allow"),
        warm: step!(
            "websocket/authorizer-bearer-header.json",
            Edit::None,
            "Allow"
        ),
    },
    Scenario {
        function: "ws-connect",
        memory_mb: 256,
        seeds: &[],
        first: step!("websocket/connect.json", Edit::NewConnectionId, "200"),
        warm: step!(
            "websocket/connect-subprotocol.json",
            Edit::NewConnectionId,
            "200"
        ),
    },
    Scenario {
        function: "ws-disconnect",
        memory_mb: 256,
        seeds: &[SUBSCRIBED_CUSTOMER, SECOND_CUSTOMER],
        first: step!("websocket/disconnect.json", Edit::None, "200"),
        warm: step!(
            "websocket/disconnect.json",
            Edit::ConnectionId(SECOND_CONNECTION),
            "200"
        ),
    },
    Scenario {
        function: "ws-subscribe",
        memory_mb: 256,
        seeds: &[CUSTOMER],
        first: step!(
            "websocket/subscribe-order.json",
            Edit::None,
            "200 subscribed"
        ),
        warm: step!(
            "websocket/subscribe-order-since-seq.json",
            Edit::None,
            "200 subscribed"
        ),
    },
    Scenario {
        function: "ws-unsubscribe",
        memory_mb: 256,
        seeds: &[SUBSCRIBED_CUSTOMER],
        first: step!(
            "websocket/unsubscribe-order.json",
            Edit::None,
            "200 unsubscribed"
        ),
        warm: step!(
            "websocket/unsubscribe-order.json",
            Edit::None,
            "200 unsubscribed"
        ),
    },
    Scenario {
        function: "ws-driver-location",
        memory_mb: 256,
        seeds: &[DRIVER, SUBSCRIBED_CUSTOMER],
        first: step!(
            "websocket/driver-location.json",
            Edit::FreshLocation { offset: 0.0 },
            "200 driver:location_acknowledged"
        ),
        warm: step!(
            "websocket/driver-location.json",
            Edit::FreshLocation { offset: 0.001 },
            "200 driver:location_acknowledged"
        ),
    },
    Scenario {
        function: "ws-resume",
        memory_mb: 256,
        seeds: &[CUSTOMER],
        first: step!("websocket/resume.json", Edit::None, "200 resumed"),
        warm: step!("websocket/resume.json", Edit::None, "200 resumed"),
    },
    Scenario {
        function: "ws-default",
        memory_mb: 256,
        seeds: &[CUSTOMER],
        first: step!("websocket/default-ping.json", Edit::None, "200 pong"),
        warm: step!("websocket/default-hello.json", Edit::None, "200 connected"),
    },
    Scenario {
        function: "stream-fanout",
        memory_mb: 512,
        seeds: &[SUBSCRIBED_CUSTOMER],
        first: step!(
            "stream/order-accepted.json",
            Edit::None,
            "batchItemFailures=0"
        ),
        warm: step!(
            "stream/live-location.json",
            Edit::None,
            "batchItemFailures=0"
        ),
    },
    Scenario {
        function: "stream-push",
        memory_mb: 256,
        seeds: &[],
        first: step!(
            "stream/order-insert.json",
            Edit::None,
            "batchItemFailures=0"
        ),
        warm: step!(
            "stream/order-accepted.json",
            Edit::None,
            "batchItemFailures=0"
        ),
    },
    Scenario {
        function: "http-api",
        memory_mb: 256,
        seeds: &[],
        first: step!("http/get-tracking.json", Edit::None, "200"),
        warm: step!("http/list-orders.json", Edit::None, "200"),
    },
];

/// The scenario of `function`.
pub fn scenario(function: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.function == function)
}

fn connection_id(id: &str) -> Result<ConnectionId, ScenarioError> {
    ConnectionId::parse(id).map_err(|e| ScenarioError::Id(format!("{id}: {e}")))
}

fn order_id() -> Result<OrderId, ScenarioError> {
    OrderId::parse(ORDER).map_err(|e| ScenarioError::Id(format!("{ORDER}: {e}")))
}

/// Places `order-1` (customer-1, chef-1) and moves it to in transit with driver-1: the order
/// every fixture refers to. Once per set of tables.
pub async fn seed_order<S: OrderStore + DeviceStore + ?Sized>(
    store: &S,
) -> Result<(), ScenarioError> {
    let view = fixtures::placed_order(ORDER, &fixtures::customer(), fixtures::now());
    store.create_order(&view).await?;
    fixtures::advance(store, view, OrderStatus::InTransit).await;
    // The chef's and the customer's phones, which the push function sends to.
    for actor in [fixtures::chef(), fixtures::customer()] {
        store
            .register_device(
                &fixtures::registration(&actor, "init-bench"),
                fixtures::now(),
            )
            .await?;
    }
    Ok(())
}

/// Closes every scenario connection, then opens `seeds`: the state one run starts from.
pub async fn seed_connections<S: ConnectionStore + ?Sized>(
    store: &S,
    seeds: &[Seed],
    now: DateTime<Utc>,
) -> Result<(), ScenarioError> {
    for id in CONNECTIONS {
        store.close_connection(&connection_id(id)?, now).await?;
    }
    for seed in seeds {
        let actor = seed.who.actor();
        let connection = fixtures::connection(seed.connection, &actor, now);
        store
            .open_connection(&connection, &initial_rooms(&actor))
            .await?;
        if seed.in_order_room {
            store
                .join_room(&connection.connection_id, &Room::Order(order_id()?), now)
                .await?;
        }
    }
    Ok(())
}

/// A short description of a function's answer, compared with [`Step::expect`]:
/// an authorizer's `Effect`, a proxy response's status code and its body's `event` (when the
/// body is a WebSocket message), or a stream batch's count of `batchItemFailures`.
pub fn describe(answer: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(answer) else {
        return format!("not JSON: {}", String::from_utf8_lossy(answer));
    };
    if let Some(effect) = value
        .pointer("/policyDocument/Statement/0/Effect")
        .and_then(Value::as_str)
    {
        return effect.to_owned();
    }
    if let Some(failures) = value.get("batchItemFailures").and_then(Value::as_array) {
        return format!("batchItemFailures={}", failures.len());
    }
    if let Some(status) = value.get("statusCode").and_then(Value::as_i64) {
        let event = value
            .get("body")
            .and_then(Value::as_str)
            .and_then(|body| serde_json::from_str::<Value>(body).ok())
            .and_then(|body| body.get("event").and_then(Value::as_str).map(str::to_owned));
        return match event {
            Some(event) => format!("{status} {event}"),
            None => status.to_string(),
        };
    }
    let mut text = value.to_string();
    text.truncate(200);
    format!("unrecognized answer: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_of_every_scenario_is_prepared() {
        let now = Utc::now();
        for scenario in SCENARIOS {
            for step in [scenario.first, scenario.warm] {
                let payload = step.payload(now).expect("prepared");
                serde_json::from_slice::<Value>(&payload).expect("JSON");
            }
        }
    }

    #[test]
    fn a_fresh_location_is_recorded_now_and_moved() {
        let now: DateTime<Utc> = "2026-05-01T10:00:00.123Z".parse().expect("time");
        let step = scenario("ws-driver-location").expect("scenario").warm;
        let event: Value = serde_json::from_slice(&step.payload(now).expect("payload")).unwrap();
        let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["recordedAt"], "2026-05-01T10:00:00.123Z");
        assert!((body["latitude"].as_f64().unwrap() - 30.2682).abs() < 1e-9);
        assert_eq!(
            event["requestContext"]["requestTimeEpoch"],
            now.timestamp_millis()
        );
    }

    #[test]
    fn each_connect_gets_a_new_valid_connection_id() {
        let step = scenario("ws-connect").expect("scenario").first;
        let id = |payload: Vec<u8>| {
            let event: Value = serde_json::from_slice(&payload).expect("JSON");
            let id = event["requestContext"]["connectionId"]
                .as_str()
                .unwrap()
                .to_owned();
            ConnectionId::parse(id.clone()).expect("a valid connection id");
            id
        };
        let (a, b) = (
            id(step.payload(Utc::now()).unwrap()),
            id(step.payload(Utc::now()).unwrap()),
        );
        assert_ne!(a, b);
        assert!(!CONNECTIONS.contains(&a.as_str()));
    }

    #[test]
    fn answers_are_described_by_what_tells_them_apart() {
        let authorizer = br#"{"principalId":"u","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":["execute-api:Invoke"],"Effect":"Deny","Resource":["*"]}]}}"#;
        assert_eq!(describe(authorizer), "Deny");
        let route = br#"{"statusCode":200,"body":"{\"event\":\"pong\",\"data\":{}}"}"#;
        assert_eq!(describe(route), "200 pong");
        assert_eq!(describe(br#"{"statusCode":403}"#), "403");
        assert_eq!(
            describe(br#"{"batchItemFailures":[{"itemIdentifier":"1"}]}"#),
            "batchItemFailures=1"
        );
        assert!(describe(b"oops").starts_with("not JSON"));
    }
}
