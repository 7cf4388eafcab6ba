//! `rnd-local`: RND Realtime on one machine, with nothing to deploy. One HTTP server emulates
//! API Gateway (the WebSocket API at `/realtime` and its Management API at
//! `/realtime/@connections/{id}`) and serves the HTTP API's Router (`rnd_http_api::router`:
//! `/orders/…`, `/profiles/me`, `/openapi.json`) on the same port, and a poller emulates the
//! Lambda event source mapping of the orders table's stream. Both call the very handlers the
//! Lambdas run (`rnd_handlers`) with the very event JSON AWS sends, over the embedded SQLite
//! store (a file, or memory) or any DynamoDB-compatible endpoint (moto's server in the tests);
//! the fan-out posts through the real `aws-sdk-apigatewaymanagement` adapter to this stack's
//! own `@connections` endpoint.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rnd_local::StartError> {
//! let stack = rnd_local::start(rnd_local::Config::in_memory()).await?;
//! println!("{}", stack.websocket_url());
//! stack.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`start`], [`Config`], [`RunningStack`], [`issue_token`] (this file): wiring and lifecycle.
//! - `ws`: the WebSocket API (authorizer, `$connect`, routes, `$disconnect`, timeouts).
//! - `demo`: the demo page at `/` and its dev-only `POST /dev/token` (local stack only).
//! - `exposure`: loopback by default; `--allow-remote` and what it turns off; the `Host` check
//!   of the dev-only routes.
//! - `management`: the Management API (`POST`/`GET`/`DELETE @connections`).
//! - `poller`: the stream pollers, one per consumer: the fan-out ([`STREAM_CONSUMER`]) and the
//!   push consumer ([`PUSH_CONSUMER`]), which sends to the built-in FCM sink (the FCM emulator
//!   at `/fcm`) unless [`Config::fcm`] says otherwise.
//! - `events`: the API Gateway event JSON the handlers receive.
//! - [`metrics`]: what AWS would bill, counted on the stack's own paths, at `GET /dev/metrics`
//!   (local stack only); `metering`: the store adapter that counts DynamoDB request units.
//! - [`template`]: route keys and stream settings read from `template.yaml`.
//! - [`cli`]: the `--jwt-secret` flag and the open-files limit, shared with the tools that drive
//!   a stack.
//!
//! What drives a running stack is not here: the live scenario (`simulate`) and the load bench
//! with its cost model (`bench`, which reads `GET /dev/metrics` as [`metrics::MetricsSnapshot`])
//! are `rnd-loadgen`'s (`tools/rnd-loadgen`).

pub mod cli;
mod demo;
mod events;
mod exposure;
mod management;
mod metering;
pub mod metrics;
mod poller;
pub mod template;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::config::{Credentials, SharedCredentialsProvider};
use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use chrono::Utc;
use rnd_domain::eta::OfflineEta;
use rnd_domain::identity::{
    JwtVerifier, Role, TokenClaims, UnknownRole, VerifierConfig, issue_hs256,
};
use rnd_domain::ids::UserId;
use rnd_domain::limits::Limit;
use rnd_domain::ports::{Notifier, Store, StoreError};
use rnd_domain::push::PushSender;
use rnd_handlers::fanout::FanoutConfig;
use rnd_handlers::push::PushConfig;
use rnd_handlers::routes::{RouteConfig, Routes};
use rnd_store_dynamodb::stream::CheckpointTable;
use rnd_store_dynamodb::{DynamoStore, TableNames};
use rnd_store_sqlite::SqliteStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use poller::{PUSH_CONSUMER, STREAM_CONSUMER};
use template::{Template, TemplateError};

/// The SQLite file inside the `--data` directory.
pub const DATABASE_FILE: &str = "rnd-local.sqlite3";
/// The prefix of the tables `--dynamodb-endpoint` uses by default.
pub const DYNAMODB_TABLES_PREFIX: &str = "rnd-local";

/// The two tables of `prefix`: `{prefix}-connections` and `{prefix}-orders`.
pub fn dynamodb_tables(prefix: &str) -> TableNames {
    TableNames {
        connections: format!("{prefix}-connections"),
        orders: format!("{prefix}-orders"),
    }
}
/// How long [`RunningStack::stop`] waits for connections to run `$disconnect`.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the stack keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Embedded SQLite in memory: nothing on disk, nothing survives a stop.
    Memory,
    /// Embedded SQLite in `dir`/[`DATABASE_FILE`]; a restart resumes the stream from its
    /// checkpoint.
    Sqlite {
        /// The data directory (created if missing).
        dir: PathBuf,
    },
    /// The DynamoDB store at `endpoint` (any DynamoDB-compatible server with streams, e.g.
    /// moto's); the tables are created when missing, and so is the
    /// stream's checkpoint table (`{orders}-stream-checkpoints`, see
    /// [`rnd_store_dynamodb::stream::CheckpointTable`]): a restart on the same tables resumes
    /// the stream after the last change delivered.
    DynamoDb {
        /// e.g. `http://127.0.0.1:8000`.
        endpoint: String,
        /// The two tables.
        tables: TableNames,
    },
}

/// How to run the stack.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`127.0.0.1`).
    pub host: String,
    /// Port to listen on (9001; 0 picks a free one).
    pub port: u16,
    /// Where data lives.
    pub store: StoreConfig,
    /// HS256 secret tokens are verified with.
    pub jwt_secret: String,
    /// A connection that sends nothing for this long is closed with 1001 (600 s).
    pub idle_timeout: Duration,
    /// Any connection is closed with 1001 after this long (7200 s).
    pub max_connection: Duration,
    /// The template's text (`None`: the `template.yaml` this crate was built with).
    pub template: Option<String>,
    /// Whether the stream poller runs from the start (true): the emulation of the event source
    /// mapping's `Enabled`. A stack started with `false` reads nothing from the stream, and its
    /// position stays where it is, until [`RunningStack::enable_stream`]; like
    /// `UpdateEventSourceMapping Enabled=false`, then `Enabled=true`.
    pub stream_enabled: bool,
    /// How long a user's inbox keeps an event (24 h; the template's `InboxRetentionSeconds`).
    pub inbox_retention: Duration,
    /// The minimum spacing between accepted locations of one order (1 s; the template's
    /// `LocationMinIntervalMs`); a location sooner than this after the last accepted one is
    /// refused `rate_limited`. Zero accepts every location.
    pub location_min_interval: Duration,
    /// Where push notifications go.
    pub fcm: FcmConfig,
    /// Whether the stack's own functions (the fan-out, the routes that post) post through the
    /// real API Gateway Management API client to this stack's `@connections` endpoint, over
    /// HTTP with SigV4, as a Lambda does (false: they post in-process, to the same
    /// PostToConnection, with the same outcomes and metrics and a fraction of the CPU).
    pub post_over_http: bool,
    /// Whether `host` may be an address other machines reach (false: loopback only). Needs a
    /// secret other than the development one; the dev-only routes and the Management API are
    /// then not served.
    pub allow_remote: bool,
    /// Orders a customer may place per hour (10; the template's `OrdersPerCustomerPerHour`).
    pub orders_per_customer_per_hour: u32,
    /// `subscribe:order`/`unsubscribe:order` messages a connection may send per minute (60; the
    /// template's `RoomChangesPerMinute`).
    pub room_changes_per_minute: u32,
    /// Where ETAs come from.
    pub routing: RoutingConfig,
}

/// Where ETAs come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoutingConfig {
    /// The offline estimate only.
    #[default]
    Offline,
    /// Routes from OSRM's contract server, served at `/osrm` on this stack's port (a synthetic
    /// street grid: the demo's routed ETA without a routing engine to hand; `rnd-loadgen
    /// simulate --osrm` drives along its routes).
    BuiltinOsrm,
    /// Routes from a provider: OSRM at its URL, Mapbox or Google with a key.
    Provider(rnd_routing::RouterConfig),
}

/// Where the push consumer sends.
#[derive(Clone, PartialEq, Eq)]
pub enum FcmConfig {
    /// The built-in FCM sink: the FCM emulator at `/fcm` on this stack's port, with its
    /// development service account; `GET /fcm/messages?token=…` shows what a phone would.
    Builtin,
    /// Any server that speaks FCM HTTP v1 at `endpoint`, as the Google service account whose
    /// JSON key file is `credentials` (its `token_uri` is the OAuth token endpoint).
    Endpoint {
        /// e.g. `https://fcm.googleapis.com`.
        endpoint: String,
        /// The service-account JSON.
        credentials: String,
    },
}

// The credentials are a private key: never print them.
impl std::fmt::Debug for FcmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FcmConfig::Builtin => f.write_str("Builtin"),
            FcmConfig::Endpoint { endpoint, .. } => f
                .debug_struct("Endpoint")
                .field("endpoint", endpoint)
                .finish_non_exhaustive(),
        }
    }
}

impl Config {
    /// The defaults of `rnd-local serve` with an in-memory store on port 0.
    pub fn in_memory() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            store: StoreConfig::Memory,
            jwt_secret: rnd_domain::identity::DEV_JWT_SECRET.into(),
            idle_timeout: Duration::from_secs(600),
            max_connection: Duration::from_secs(7200),
            template: None,
            stream_enabled: true,
            inbox_retention: Duration::from_secs(
                rnd_domain::inbox::DEFAULT_RETENTION_SECS.unsigned_abs(),
            ),
            location_min_interval: Duration::from_millis(
                rnd_handlers::routes::DEFAULT_LOCATION_MIN_INTERVAL_MS.unsigned_abs(),
            ),
            fcm: FcmConfig::Builtin,
            post_over_http: false,
            allow_remote: false,
            orders_per_customer_per_hour: Limit::ORDERS_PER_CUSTOMER.per_window,
            room_changes_per_minute: Limit::ROOM_CHANGES_PER_CONNECTION.per_window,
            routing: RoutingConfig::Offline,
        }
    }
}

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened (or the DynamoDB tables created).
    #[error("could not open the store")]
    Store(#[from] StoreError),
    /// The JWT secret is unusable (e.g. shorter than 32 bytes).
    #[error("the JWT secret is unusable")]
    Jwt(#[from] rnd_domain::identity::ConfigError),
    /// The template is unusable.
    #[error("template.yaml is unusable")]
    Template(#[from] TemplateError),
    /// The address could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The FCM credentials or endpoint are unusable.
    #[error("the FCM configuration is unusable")]
    Fcm(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The routing provider's configuration is unusable (or its emulator could not start).
    #[error("the routing configuration is unusable")]
    Routing(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The DynamoDB orders table has no stream.
    #[error("the orders table {0} has no stream")]
    NoStream(String),
    /// `host` is not loopback and remote access was not allowed.
    #[error(
        "refusing to listen on {0}, which other machines can reach: pass --allow-remote (with a secret of your own) or listen on 127.0.0.1"
    )]
    RemoteNotAllowed(String),
    /// Remote access with the public development secret: anyone could sign an admin token.
    #[error(
        "--allow-remote needs a JWT secret of your own (--jwt-secret or JWT_SECRET); the development secret is public"
    )]
    RemoteWithTheDevSecret,
    /// Remote access turns the Management API off, which posting over HTTP needs.
    #[error("--post-over-http needs the Management API, which --allow-remote turns off")]
    RemoteWithoutManagementApi,
}

/// Limits of WebSocket connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connection: Duration,
}

/// What every request handler shares.
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) verifier: JwtVerifier,
    pub(crate) routes: Routes<dyn Store>,
    pub(crate) template: Template,
    pub(crate) connections: Arc<ws::Connections>,
    pub(crate) limits: Limits,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// What AWS would bill, served at `GET /dev/metrics`.
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// The routed ETA's counters, when a routing provider is configured (`GET /dev/metrics`).
    pub(crate) routing_stats: Option<Arc<rnd_handlers::routed_eta::RoutingStats>>,
    /// `host:port` as bound, for events whose request had no `Host`.
    pub(crate) domain_name: String,
}

/// A running stack. Stop it with [`RunningStack::stop`]; dropping it closes the sockets but
/// does not wait for their `$disconnect`.
pub struct RunningStack {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    poller: JoinHandle<()>,
    push_poller: JoinHandle<()>,
    /// True while the fan-out's poller has found nothing left to deliver.
    fanout_idle: watch::Receiver<bool>,
    stream_enabled: watch::Sender<bool>,
    state: Arc<AppState>,
    routing: Routing,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("domain_name", &self.domain_name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RunningStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningStack")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningStack {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://HOST:PORT/realtime`.
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/{}", self.addr, events::STAGE)
    }

    /// The Management API endpoint to give the SDK: `http://HOST:PORT/realtime`.
    pub fn management_endpoint(&self) -> String {
        format!("http://{}/{}", self.addr, events::STAGE)
    }

    /// The store the stack runs on (to create orders in tests and tools).
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// What the routed ETA did (calls, routed, followed, …), when a provider is configured.
    pub fn routing_stats(&self) -> Option<Arc<rnd_handlers::routed_eta::RoutingStats>> {
        self.routing.stats.clone()
    }

    /// The base URL of the built-in OSRM emulator, when it runs.
    pub fn osrm_emulator_url(&self) -> Option<&str> {
        self.routing.emulator.as_ref().map(|(_, url)| url.as_str())
    }

    /// Enables the stream poller (the event source mapping's `Enabled=true`): it resumes from
    /// its position. A no-op when it runs already (see [`Config::stream_enabled`]).
    pub fn enable_stream(&self) {
        self.stream_enabled.send_replace(true);
    }

    /// Disables the stream poller (`Enabled=false`): once the batch in flight, if any, is done,
    /// nothing more is read until [`RunningStack::enable_stream`].
    pub fn disable_stream(&self) {
        self.stream_enabled.send_replace(false);
    }

    /// Waits until the stream's fan-out has delivered every change it has read and found
    /// nothing more waiting (a test's "the fan-out is done with what I wrote"): returns at once
    /// while it is idle, so call it after seeing the fan-out start on your change (e.g. its
    /// inbox append).
    pub async fn fanout_settled(&self) {
        let mut idle = self.fanout_idle.clone();
        let _ = idle.wait_for(|idle| *idle).await;
    }

    /// Stops gracefully: refuses new connections, closes every socket with 1001 and runs its
    /// `$disconnect` (waiting up to 10 s), stops the poller (its checkpoint is saved after each
    /// batch) and the server.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if tokio::time::timeout(DRAIN_TIMEOUT, self.state.connections.drained())
            .await
            .is_err()
        {
            tracing::warn!("connections did not close in time");
        }
        tracing::debug!("connections closed");
        let _ = self.poller.await;
        let _ = self.push_poller.await;
        tracing::debug!("stream pollers stopped");
        let _ = self.server.await;
        tracing::debug!("server stopped");
    }
}

/// Dummy credentials for the SDK clients that talk to this stack and to a local
/// DynamoDB-compatible server (nothing checks signatures).
fn local_sdk_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "local",
            "local",
            None,
            None,
            "rnd-local",
        )))
        .build()
}

/// Where the orders table's changes are read from, for each stream consumer.
enum StreamOrigin {
    /// The embedded store's change log.
    ChangeLog(Arc<SqliteStore>),
    /// The DynamoDB table's stream, with the consumers' checkpoint table.
    Dynamo {
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
        checkpoints: CheckpointTable,
    },
}

impl StreamOrigin {
    /// The stream's ARN, as records name it.
    fn stream_arn(&self) -> String {
        match self {
            StreamOrigin::ChangeLog(_) => format!(
                "arn:aws:dynamodb:us-east-1:000000000000:table/{}/stream/local",
                dynamodb_tables(DYNAMODB_TABLES_PREFIX).orders
            ),
            StreamOrigin::Dynamo { stream_arn, .. } => stream_arn.clone(),
        }
    }

    /// `consumer`'s source: from its checkpoint, or from `starting_position` on its first
    /// start.
    async fn source(
        &self,
        consumer: &'static str,
        starting_position: rnd_store_dynamodb::stream::StartingPosition,
    ) -> Result<poller::Source, StoreError> {
        match self {
            StreamOrigin::ChangeLog(store) => {
                poller::Source::sqlite(Arc::clone(store), consumer).await
            }
            StreamOrigin::Dynamo {
                streams,
                stream_arn,
                checkpoints,
            } => {
                poller::Source::dynamo(
                    streams.clone(),
                    stream_arn,
                    checkpoints.clone(),
                    starting_position,
                    consumer,
                )
                .await
            }
        }
    }
}

/// The store and its stream for `config`.
async fn open_store(config: &StoreConfig) -> Result<(Arc<dyn Store>, StreamOrigin), StartError> {
    match config {
        StoreConfig::Memory => {
            let store = Arc::new(SqliteStore::in_memory()?);
            Ok((store.clone(), StreamOrigin::ChangeLog(store)))
        }
        StoreConfig::Sqlite { dir } => {
            let store = Arc::new(SqliteStore::open(&dir.join(DATABASE_FILE))?);
            Ok((store.clone(), StreamOrigin::ChangeLog(store)))
        }
        StoreConfig::DynamoDb { endpoint, tables } => {
            let sdk = local_sdk_config();
            let client = aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .endpoint_url(endpoint)
                    .build(),
            );
            rnd_store_dynamodb::create_tables(&client, tables).await?;
            let checkpoints =
                CheckpointTable::new(client.clone(), CheckpointTable::name_for(&tables.orders));
            checkpoints.create().await?;
            let stream_arn = client
                .describe_table()
                .table_name(&tables.orders)
                .send()
                .await
                .map_err(StoreError::backend)?
                .table
                .and_then(|t| t.latest_stream_arn)
                .ok_or_else(|| StartError::NoStream(tables.orders.clone()))?;
            let streams = aws_sdk_dynamodbstreams::Client::from_conf(
                aws_sdk_dynamodbstreams::config::Builder::from(&sdk)
                    .endpoint_url(endpoint)
                    .build(),
            );
            let store = Arc::new(DynamoStore::new(client, tables.clone()));
            Ok((
                store,
                StreamOrigin::Dynamo {
                    streams,
                    stream_arn,
                    checkpoints,
                },
            ))
        }
    }
}

/// Starts the stack: opens the store, binds `host:port`, serves the WebSocket and Management
/// APIs and starts the stream poller. Returns once it accepts connections.
///
/// Fails when the template or JWT secret is unusable, the store cannot be opened (or the
/// DynamoDB tables created), or the address cannot be bound.
pub async fn start(config: Config) -> Result<RunningStack, StartError> {
    let exposure = exposure::Exposure::of(&config)?;
    let template = match &config.template {
        Some(text) => Template::parse(text)?,
        None => Template::embedded()?,
    };
    let verifier = JwtVerifier::new(VerifierConfig::hs256(config.jwt_secret.as_bytes()))?;
    let (store, origin) = open_store(&config.store).await?;
    let fanout_source = origin
        .source(STREAM_CONSUMER, template.stream.starting_position)
        .await?;
    let push_source = origin
        .source(PUSH_CONSUMER, template.push_stream.starting_position)
        .await?;
    let bind = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: bind.clone(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr: bind, source })?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    // The fan-out and the posting routes post to this very server's connections: in-process,
    // or (`post_over_http`) through the Management API client and `@connections`, as the
    // Lambdas post to API Gateway.
    let loopback = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let metrics = Arc::new(metrics::Metrics::default());
    let connections = Arc::new(ws::Connections::default());
    let notifier: Arc<dyn Notifier> = if config.post_over_http {
        Arc::new(rnd_notifier_apigw::ApiGatewayNotifier::from_sdk_config(
            &local_sdk_config(),
            &format!("http://{loopback}/{}", events::STAGE),
            rnd_notifier_apigw::DEFAULT_ATTEMPT_TIMEOUT,
        ))
    } else {
        Arc::new(management::InProcessNotifier {
            connections: Arc::clone(&connections),
            metrics: Arc::clone(&metrics),
        })
    };
    // Push notifications go to the built-in FCM sink (the emulator, at /fcm) unless told
    // otherwise, always through the real FCM v1 adapter.
    let fcm_emulator = rnd_fcm_emulator::FcmEmulator::new(&format!("http://{loopback}/fcm"));
    let (fcm_endpoint, fcm_credentials) = match &config.fcm {
        FcmConfig::Builtin => (
            fcm_emulator.base_url().to_owned(),
            fcm_emulator.dev_service_account_json(),
        ),
        FcmConfig::Endpoint {
            endpoint,
            credentials,
        } => (endpoint.clone(), credentials.clone()),
    };
    let account = rnd_push_fcm::ServiceAccount::from_json(&fcm_credentials)
        .map_err(|e| StartError::Fcm(Box::new(e)))?;
    let sender: Arc<dyn PushSender> = Arc::new(
        rnd_push_fcm::FcmSender::new(
            account,
            &fcm_endpoint,
            rnd_push_fcm::DEFAULT_REQUEST_TIMEOUT,
        )
        .map_err(|e| StartError::Fcm(Box::new(e)))?,
    );
    // The handlers (WebSocket routes, HTTP API, fan-out) use the store through the meter.
    let metered: Arc<dyn Store> = Arc::new(metering::MeteredStore::new(
        Arc::clone(&store),
        Arc::clone(&metrics),
    ));
    let routing = routing(&config.routing, &format!("http://{loopback}/osrm"))?;
    let routing_emulator = routing.emulator.clone();
    let state = Arc::new(AppState {
        store: Arc::clone(&metered),
        verifier,
        routes: Routes::new(
            Arc::clone(&metered),
            Arc::clone(&routing.estimator),
            RouteConfig {
                location_min_interval_ms: i64::try_from(config.location_min_interval.as_millis())
                    .unwrap_or(i64::MAX),
                room_changes: Limit {
                    per_window: config.room_changes_per_minute.max(1),
                    ..Limit::ROOM_CHANGES_PER_CONNECTION
                },
                ..RouteConfig::default()
            },
        )
        .posting_through(Arc::clone(&notifier)),
        template: template.clone(),
        connections,
        limits: Limits {
            idle_timeout: config.idle_timeout,
            max_connection: config.max_connection,
        },
        shutdown: shutdown_rx.clone(),
        domain_name: addr.to_string(),
        metrics: Arc::clone(&metrics),
        routing_stats: routing.stats.clone(),
    });

    // What exists only in this local stack, or that AWS guards with IAM: served on loopback
    // only, and there only to requests addressed to a loopback host (`exposure`).
    let local_only = Router::new()
        .route(
            &format!("/{}/@connections/{{connection_id}}", events::STAGE),
            axum::routing::post(management::post)
                .get(management::get)
                .delete(management::delete),
        )
        // What AWS would bill.
        .route("/dev/metrics", get(metrics::serve))
        .with_state(Arc::clone(&state))
        // The demo page's `POST /dev/token`.
        .merge(demo::dev_token(&config.jwt_secret))
        .layer(axum::middleware::from_fn(exposure::loopback_host_only));
    let mut app = Router::new()
        .route(&format!("/{}", events::STAGE), get(ws::upgrade))
        .with_state(Arc::clone(&state))
        // The demo page.
        .merge(demo::page())
        // The built-in FCM sink: Google's token endpoint and FCM v1 `messages:send`, and what
        // a phone would show at `GET /fcm/messages?token=…` (local stack only).
        .nest("/fcm", fcm_emulator.router());
    // The built-in OSRM emulator (`--eta-provider osrm` without a server of one's own).
    if let Some((osrm, _)) = &routing_emulator {
        app = app.nest("/osrm", osrm.router());
    }
    app = app
        // The HTTP API, exactly as its Lambda serves it; its fallback answers unknown paths.
        .merge(rnd_http_api::router(
            rnd_http_api::AppState::new(
                Arc::<dyn Store>::clone(&metered),
                Arc::new(JwtVerifier::new(VerifierConfig::hs256(
                    config.jwt_secret.as_bytes(),
                ))?),
            )
            .with_order_limit(Limit {
                per_window: config.orders_per_customer_per_hour.max(1),
                ..Limit::ORDERS_PER_CUSTOMER
            }),
        ));
    if exposure == exposure::Exposure::Loopback {
        app = app.merge(local_only);
    }
    let mut server_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        // Every frame goes out when it is written, as API Gateway's do: with Nagle's algorithm
        // a frame written while the previous one is unacknowledged waited for the client's
        // delayed ACK (up to 40 ms on Linux), the p99 of a busy stack.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
            }
        });
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = server_shutdown.wait_for(|stop| *stop).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the server stopped");
        }
    });

    let stream_arn = origin.stream_arn();
    let records = Arc::new(poller::StreamRecords::for_mappings([
        &template.stream,
        &template.push_stream,
    ]));
    let (fanout_idle_tx, fanout_idle) = watch::channel(false);
    let fanout = poller::Poller {
        source: fanout_source,
        consumer: Arc::new(poller::Fanout {
            store: Arc::clone(&metered),
            notifier,
            config: FanoutConfig {
                inbox_retention: config.inbox_retention,
                ..FanoutConfig::default()
            },
        }),
        settings: template.stream.clone(),
        stream_arn: stream_arn.clone(),
        records: Arc::clone(&records),
        idle: fanout_idle_tx,
        metrics: Arc::clone(&metrics),
    };
    let push = poller::Poller {
        source: push_source,
        consumer: Arc::new(poller::Push {
            store: Arc::clone(&metered),
            sender,
            config: PushConfig::default(),
        }),
        settings: template.push_stream.clone(),
        stream_arn,
        records,
        idle: watch::Sender::new(false),
        metrics: Arc::clone(&metrics),
    };
    let (stream_enabled, enabled_rx) = watch::channel(config.stream_enabled);
    if let StreamOrigin::ChangeLog(log) = &origin {
        tokio::spawn(trim_change_log(Arc::clone(log), shutdown_rx.clone()));
    }
    let poller = fanout.spawn(enabled_rx.clone(), shutdown_rx.clone());
    let push_poller = push.spawn(enabled_rx, shutdown_rx);

    Ok(RunningStack {
        addr,
        store,
        shutdown,
        server,
        poller,
        push_poller,
        fanout_idle,
        stream_enabled,
        state,
        routing,
    })
}

/// How often the stack drops the changes both stream consumers have read from the change log:
/// often, so each trim is short (it holds the store's lock: a file's `DELETE` once a second, at
/// 4 000 changes a second, showed in the knee's p99; an in-memory log pops what was read).
const CHANGE_LOG_TRIM_INTERVAL: Duration = Duration::from_millis(100);

/// Trims the change log to what the fan-out and push consumers have yet to read, every
/// [`CHANGE_LOG_TRIM_INTERVAL`] until shutdown. Untrimmed, the log grows with every location
/// (when it was a table of an in-memory database, SQLite's commit walked a page cache that grew
/// with it: the stack got slower the longer it ran).
async fn trim_change_log(store: Arc<SqliteStore>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(CHANGE_LOG_TRIM_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        if let Err(e) = store.trim_changes(&[STREAM_CONSUMER, PUSH_CONSUMER]).await {
            tracing::warn!(error = %e, "could not trim the change log");
        }
    }
}

/// The ETA estimator `config` asks for, its counters, and the OSRM emulator it serves (at
/// `emulator_url`, `/osrm` on this stack's port).
struct Routing {
    estimator: Arc<dyn rnd_domain::eta::EtaEstimator>,
    stats: Option<Arc<rnd_handlers::routed_eta::RoutingStats>>,
    emulator: Option<(rnd_routing::contract::ContractServer, String)>,
}

fn routing(config: &RoutingConfig, emulator_url: &str) -> Result<Routing, StartError> {
    let boxed = |e: Box<dyn std::error::Error + Send + Sync>| StartError::Routing(e);
    let (router_config, emulator) = match config {
        RoutingConfig::Offline => {
            return Ok(Routing {
                estimator: Arc::new(OfflineEta::default()),
                stats: None,
                emulator: None,
            });
        }
        RoutingConfig::BuiltinOsrm => {
            let config = rnd_routing::RouterConfig {
                provider: rnd_routing::Provider::Osrm,
                base_url: Some(emulator_url.to_owned()),
                secret: None,
            };
            let emulator = rnd_routing::contract::ContractServer::osrm();
            (config, Some((emulator, emulator_url.to_owned())))
        }
        RoutingConfig::Provider(config) => (config.clone(), None),
    };
    let http = rnd_http_client::HttpClient::new(rnd_routing::DEFAULT_REQUEST_TIMEOUT)
        .map_err(|e| boxed(Box::new(e)))?;
    let router = router_config.build(http).map_err(|e| boxed(Box::new(e)))?;
    let estimator = rnd_handlers::routed_eta::RoutedEta::new(
        router,
        OfflineEta::default(),
        rnd_domain::route::ReroutePolicy::default(),
        rnd_handlers::routed_eta::RoutingBudget::default(),
        rnd_handlers::routed_eta::BreakerSettings::default(),
    );
    Ok(Routing {
        stats: Some(estimator.stats()),
        estimator: Arc::new(estimator),
        emulator,
    })
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The user id is not valid.
    #[error("invalid user id")]
    UserId,
    /// The role is not one of customer, chef, driver, admin.
    #[error(transparent)]
    Role(#[from] UnknownRole),
    /// Signing failed (an unusable secret).
    #[error("could not sign the token")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// A JWT for `sub` with `role` (and `name`), valid for `ttl`, signed with HS256 and `secret`:
/// what `rnd-local token` prints.
///
/// Fails when the user id or role is invalid or the token cannot be signed.
pub fn issue_token(
    secret: &str,
    sub: &str,
    role: &str,
    name: Option<&str>,
    ttl: Duration,
) -> Result<String, TokenError> {
    let sub = UserId::parse(sub).map_err(|_| TokenError::UserId)?;
    let role: Role = role.parse()?;
    let now = Utc::now().timestamp();
    let claims = TokenClaims {
        sub: sub.as_str().to_owned(),
        role: role.as_str().to_owned(),
        exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        nbf: None,
        iat: Some(now),
        name: name.map(str::to_owned),
        iss: None,
        aud: None,
    };
    Ok(issue_hs256(&claims, secret.as_bytes())?)
}

/// `mutex`, locked; a mutex poisoned by a panic elsewhere is taken all the same (what it
/// guards here is counters and queues, whole after every statement).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_verifies_with_the_same_secret_and_carries_the_caller() {
        // GIVEN the dev secret
        let secret = rnd_domain::identity::DEV_JWT_SECRET;
        // WHEN a token is issued for a chef with a name
        let token = issue_token(
            secret,
            "chef-1",
            "chef",
            Some("Carla"),
            Duration::from_secs(60),
        )
        .unwrap();
        // THEN it verifies and names the chef
        let verifier = JwtVerifier::new(VerifierConfig::hs256(secret)).unwrap();
        let identity = verifier.verify(&token).unwrap();
        assert_eq!(identity.actor.user_id.as_str(), "chef-1");
        assert_eq!(identity.actor.role, Role::Chef);
        assert_eq!(identity.name.as_deref(), Some("Carla"));
        // AND an unknown role or an invalid user id is refused
        assert!(matches!(
            issue_token(secret, "chef-1", "boss", None, Duration::from_secs(60)),
            Err(TokenError::Role(_))
        ));
        assert!(matches!(
            issue_token(secret, "", "chef", None, Duration::from_secs(60)),
            Err(TokenError::UserId)
        ));
    }
}
