//! Starting a stack per test (on either store), real WebSocket clients, tokens and orders.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rnd_domain::ids::ConnectionId;
use rnd_domain::order::OrderStatus;
use rnd_domain::ports::Store;
use rnd_domain::{OrderView, Room};
use rnd_local::{Config, RunningStack, StoreConfig};
use rnd_store_conformance::fixtures;
use rnd_store_dynamodb::DynamoStore;
use rnd_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for an event before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// Expands store-dependent scenarios, each an `async fn name(store: StoreKind)`, into one
/// test per store: `embedded::name` (the embedded SQLite store) and `dynamodb::name`
/// (the test database, moto's DynamoDB server, with tables of its own; `DYNAMODB_ENDPOINT`
/// must be set).
macro_rules! on_both_stores {
    ($($scenario:ident),+ $(,)?) => {
        /// The scenarios on the embedded SQLite store.
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(crate::helpers::StoreKind::Embedded).await;
                }
            )+
        }

        /// The scenarios on the DynamoDB store (the test database, moto).
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(crate::helpers::StoreKind::DynamoDb).await;
                }
            )+
        }
    };
}
pub(crate) use on_both_stores;

/// The store a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded SQLite store (in memory, or a file for the restart scenarios).
    Embedded,
    /// The DynamoDB store on the test database at `DYNAMODB_ENDPOINT`, with tables of the
    /// test's own.
    DynamoDb,
}

impl StoreKind {
    /// A config on fresh data: in-memory SQLite, or test-database tables with random names.
    pub fn config(self) -> Config {
        match self {
            StoreKind::Embedded => Config::in_memory(),
            StoreKind::DynamoDb => on_dynamodb(),
        }
    }

    /// A config on fresh data that a restart finds again: a SQLite file in a fresh temporary
    /// directory, or test-database tables with random names. Remove it with [`remove_data`].
    pub fn durable_config(self) -> Config {
        match self {
            StoreKind::Embedded => on_disk(&temp_dir()),
            StoreKind::DynamoDb => on_dynamodb(),
        }
    }
}

/// A config on the test database with tables of its own (random names).
fn on_dynamodb() -> Config {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    Config {
        store: StoreConfig::DynamoDb {
            endpoint: rnd_store_dynamodb::testing::endpoint(),
            tables: rnd_local::dynamodb_tables(&format!("local-{suffix}")),
        },
        ..Config::in_memory()
    }
}

/// The store of `config` opened directly, as a tool would while the stack is down.
pub fn open_directly(config: &Config) -> Arc<dyn Store> {
    match &config.store {
        StoreConfig::Memory => panic!("an in-memory store cannot be opened from outside"),
        StoreConfig::Sqlite { dir } => Arc::new(
            SqliteStore::open(&dir.join(rnd_local::DATABASE_FILE)).expect("open the SQLite file"),
        ),
        StoreConfig::DynamoDb { tables, .. } => Arc::new(DynamoStore::new(
            rnd_store_dynamodb::testing::client(),
            tables.clone(),
        )),
    }
}

/// Removes the data directory of a SQLite config (the test database runs in memory).
pub fn remove_data(config: &Config) {
    if let StoreConfig::Sqlite { dir } = &config.store {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A stack on a free port with an in-memory store.
pub async fn spawn_stack() -> RunningStack {
    spawn_with(Config::in_memory()).await
}

/// A stack on a free port on fresh data in `store`.
pub async fn spawn_on(store: StoreKind) -> RunningStack {
    spawn_with(store.config()).await
}

/// A stack on `store` with the order `id` placed: the stack, its store and the order.
pub async fn spawn_with_order(
    store: StoreKind,
    id: &str,
) -> (RunningStack, std::sync::Arc<dyn Store>, OrderView) {
    let stack = spawn_on(store).await;
    let store = stack.store();
    let view = place_order(&*store, id).await;
    (stack, store, view)
}

/// A stack with `config`.
pub async fn spawn_with(config: Config) -> RunningStack {
    rnd_local::start(config).await.expect("the stack starts")
}

/// A config storing in `dir` (SQLite file).
pub fn on_disk(dir: &std::path::Path) -> Config {
    Config {
        store: StoreConfig::Sqlite {
            dir: dir.to_path_buf(),
        },
        ..Config::in_memory()
    }
}

/// A fresh temporary directory (removed by the test at its end).
pub fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rnd-local-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// A dev token for `sub` as `role`.
pub fn token(sub: &str, role: &str) -> String {
    rnd_local::issue_token(
        rnd_domain::identity::DEV_JWT_SECRET,
        sub,
        role,
        None,
        Duration::from_secs(3600),
    )
    .expect("a dev token")
}

/// A real WebSocket client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects as `sub`/`role` with the token in the query.
    pub async fn connect(stack: &RunningStack, sub: &str, role: &str) -> Client {
        Client::connect_to(&stack.websocket_url(), sub, role).await
    }

    /// Connects to the WebSocket API at `websocket_url` as `sub`/`role`.
    pub async fn connect_to(websocket_url: &str, sub: &str, role: &str) -> Client {
        Client::connect_with(websocket_url, &token(sub, role)).await
    }

    /// Connects to the WebSocket API at `websocket_url` with `token` in the query.
    pub async fn connect_with(websocket_url: &str, token: &str) -> Client {
        let url = format!("{websocket_url}?token={token}");
        let (ws, response) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the upgrade succeeds");
        assert_eq!(response.status(), 101);
        Client { ws }
    }

    /// Sends `body` as a text frame.
    pub async fn send(&mut self, body: Value) {
        self.send_text(body.to_string()).await;
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send a frame");
    }

    /// The next text frame as JSON.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("the socket is open")
                .expect("a valid frame");
            match frame {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("a JSON frame");
                }
                Message::Close(frame) => panic!("closed while waiting for a frame: {frame:?}"),
                _ => {}
            }
        }
    }

    /// The next frame whose `event` is `name` (others are skipped).
    pub async fn next_event(&mut self, name: &str) -> Value {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let message = self.next().await;
                if message["event"] == name {
                    return message;
                }
                seen.push(message);
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no {name} event; saw {seen:?}"))
    }

    /// Sends `body` and returns the route response.
    pub async fn ask(&mut self, body: Value) -> Value {
        self.send(body).await;
        self.next().await
    }

    /// Sends a location for `order_id` (Austin, heading west) and returns its acknowledgement,
    /// checking it was accepted. Events that arrive first (the assignment may still be on its
    /// way to the driver) are skipped.
    pub async fn send_location(&mut self, order_id: &str) -> Value {
        self.send(json!({"action": "driver:location", "orderId": order_id,
            "latitude": 30.2672, "longitude": -97.7431, "heading": 270}))
            .await;
        let ack = self.next_event("driver:location_acknowledged").await;
        assert_eq!(ack["data"]["accepted"], true, "{ack}");
        ack
    }

    /// Subscribes to `order_id` and checks the answer. Events the fan-out posts meanwhile
    /// (e.g. a late `order:new`) may arrive before it and are skipped.
    pub async fn subscribe(&mut self, order_id: &str) -> Value {
        self.send(json!({"action": "subscribe:order", "orderId": order_id}))
            .await;
        let answer = loop {
            let frame = self.next().await;
            if frame["event"] == "subscribed" || frame["event"] == "error" {
                break frame;
            }
        };
        assert_eq!(answer["event"], "subscribed", "{answer}");
        answer
    }

    /// Fails if an event named `name` arrives within `wait` (other frames are skipped).
    pub async fn expect_no_event(&mut self, name: &str, wait: Duration) {
        let arrived = tokio::time::timeout(wait, async {
            loop {
                let message = self.next().await;
                if message["event"] == name {
                    return message;
                }
            }
        })
        .await;
        if let Ok(message) = arrived {
            panic!("an unexpected {name} event: {message}");
        }
    }

    /// Waits for the server to close the socket and returns the close code.
    pub async fn closed_with(&mut self) -> CloseCode {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("the server closes in time");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code,
                Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("socket error instead of a close frame: {e}"),
                None => panic!("socket ended without a close frame"),
            }
        }
    }

    /// Closes from the client side.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The HTTP status an upgrade to `url` is refused with.
pub async fn refused_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

/// The open connection ids of `user` (every connection joins `user:{id}`).
pub async fn connections_of(store: &dyn Store, user: &str) -> Vec<ConnectionId> {
    let room: Room = format!("user:{user}").parse().expect("a user room");
    store
        .room_members(&room, chrono::Utc::now())
        .await
        .expect("read the room")
        .open
}

/// Places `id` (customer-1 → chef-1) directly through the store port.
pub async fn place_order(store: &dyn Store, id: &str) -> OrderView {
    let view = fixtures::placed_order(id, &fixtures::customer(), fixtures::now());
    store.create_order(&view).await.expect("create the order");
    view
}

/// Moves the order one step along the happy path.
pub async fn step(store: &dyn Store, view: OrderView) -> OrderView {
    let (actor, action) = fixtures::next_step(view.order.status).expect("the order can move on");
    let next = view
        .apply(&actor, action, fixtures::now())
        .expect("a valid transition");
    store
        .commit_transition(&view, &next)
        .await
        .expect("the transition commits");
    next
}

/// Moves the order along the happy path until it is in `status`.
pub async fn advance_to(store: &dyn Store, view: OrderView, status: OrderStatus) -> OrderView {
    fixtures::advance(store, view, status).await
}

/// One HTTP/1.1 request over a raw socket to `addr`; returns the status and the body.
pub async fn http_to(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Waits until `user`'s inbox holds an event at position `head` (the fan-out kept it).
pub async fn wait_for_inbox(store: &dyn Store, user: &str, head: u64) {
    let user = rnd_domain::UserId::parse(user).expect("a user id");
    let kept = tokio::time::timeout(WAIT, async {
        loop {
            let page = store
                .read_inbox(&user, 0, 0, chrono::Utc::now())
                .await
                .expect("read the inbox");
            if page.head >= head {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    kept.unwrap_or_else(|_| panic!("{user}'s inbox never reached position {head}"));
}

/// Waits until `user` has no open connection (its `$disconnect` ran).
pub async fn wait_until_disconnected(stack: &rnd_local::RunningStack, user: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !connections_of(&*stack.store(), user).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "$disconnect did not run for {user}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
