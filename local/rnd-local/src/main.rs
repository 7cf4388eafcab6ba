//! The `rnd-local` command: `serve` (the default) runs the local stack, `token` prints a dev
//! JWT. See the library crate for what the stack emulates; what drives a running stack
//! (`simulate`, `bench`) is `rnd-loadgen`'s (`tools/rnd-loadgen`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rnd_domain::error::Chain;
use rnd_local::cli::{SecretArg, raise_open_files_limit};
use rnd_local::{
    Config, DYNAMODB_TABLES_PREFIX, FcmConfig, RoutingConfig, StoreConfig, dynamodb_tables,
};

/// mimalloc (Microsoft's allocator, through the `mimalloc` crate): glibc's malloc was 12 % of
/// the stack's CPU under `make bench-knee`, with its arena locks contended by the two workers.
/// With mimalloc the stack uses about a sixth less CPU at the same rate, and an idle connection
/// costs about the same memory (`make bench-idle`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// RND Realtime's local stack: API Gateway WebSocket + Management API, stream fan-out.
#[derive(Debug, Parser)]
#[command(name = "rnd-local", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the stack (the default).
    Serve(ServeArgs),
    /// Print a JWT signed with the dev secret (or --jwt-secret).
    Token(TokenArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Port to listen on.
    #[arg(long, default_value_t = 9001)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Directory of the SQLite database.
    #[arg(long, default_value = "./.rnd-local/")]
    data: PathBuf,
    /// Keep everything in memory (nothing on disk).
    #[arg(long, conflicts_with = "dynamodb_endpoint")]
    memory: bool,
    /// Use any DynamoDB-compatible endpoint at this URL (with DynamoDB Streams, e.g. moto's
    /// server: `scripts/moto.sh start`) instead of SQLite: the tables and the stream
    /// poller's checkpoint table (`<orders>-stream-checkpoints`) are created when missing, and
    /// a restart resumes the stream after the last change delivered.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// With `--dynamodb-endpoint`: the tables are `<prefix>-connections` and `<prefix>-orders`.
    #[arg(long, default_value = DYNAMODB_TABLES_PREFIX, requires = "dynamodb_endpoint")]
    tables_prefix: String,
    #[command(flatten)]
    secret: SecretArg,
    /// Close connections idle this long (1001).
    #[arg(long, default_value_t = 600)]
    idle_timeout_secs: u64,
    /// Close any connection after this long (1001).
    #[arg(long, default_value_t = 7200)]
    max_connection_secs: u64,
    /// How long a user's inbox keeps an event for `resume` (the template's
    /// `InboxRetentionSeconds`).
    #[arg(long, default_value_t = 86_400)]
    inbox_retention_secs: u64,
    /// Refuse a driver's location sooner than this after the order's last accepted one
    /// (`rate_limited`; the template's `LocationMinIntervalMs`); 0 accepts every location, e.g.
    /// for `make bench-knee`'s 1–20 Hz.
    #[arg(long, default_value_t = 1_000)]
    location_min_interval_ms: u64,
    /// The stack's own functions post to connections through the real API Gateway Management
    /// API client and this stack's `@connections` endpoint (HTTP, SigV4), as the Lambdas do,
    /// instead of in-process (same outcomes and metrics, far less CPU).
    #[arg(long)]
    post_over_http: bool,
    /// Let --host be an address other machines reach (loopback only without it). Needs a JWT
    /// secret of your own; the dev-only routes (/dev/token, /dev/metrics) and the Management
    /// API (@connections) are then not served
    #[arg(long)]
    allow_remote: bool,
    /// Orders a customer may place per hour; more get 429 with Retry-After (the template's
    /// OrdersPerCustomerPerHour)
    #[arg(long, default_value_t = 10)]
    orders_per_customer_per_hour: u32,
    /// subscribe:order and unsubscribe:order messages a connection may send per minute; more
    /// get rate_limited with retryAfterMs (the template's RoomChangesPerMinute)
    #[arg(long, default_value_t = 60)]
    room_changes_per_minute: u32,
    /// Send push notifications to this FCM HTTP v1 endpoint (e.g. https://fcm.googleapis.com)
    /// instead of the built-in FCM sink at /fcm; needs --fcm-credentials.
    #[arg(long, requires = "fcm_credentials")]
    fcm_endpoint: Option<String>,
    /// The Google service-account JSON key file to send as (its token_uri is the OAuth token
    /// endpoint); needs --fcm-endpoint.
    #[arg(long, requires = "fcm_endpoint")]
    fcm_credentials: Option<PathBuf>,
    /// ETAs along a routing provider's routes: osrm, mapbox or google (the offline estimate
    /// without). `osrm` without --routing-url starts the built-in OSRM emulator (a synthetic
    /// street grid)
    #[arg(long)]
    eta_provider: Option<rnd_routing::Provider>,
    /// The provider's base URL (OSRM's own server; Mapbox's and Google's public API without it)
    #[arg(long, requires = "eta_provider")]
    routing_url: Option<String>,
    /// Mapbox's access token or Google's API key (never printed)
    #[arg(
        long,
        env = "ROUTING_KEY",
        hide_env_values = true,
        requires = "eta_provider"
    )]
    routing_key: Option<String>,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long)]
    sub: String,
    /// customer, chef, driver or admin.
    #[arg(long)]
    role: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: u64,
    #[command(flatten)]
    secret: SecretArg,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => token(&args),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn token(args: &TokenArgs) -> ExitCode {
    match rnd_local::issue_token(
        &args.secret.jwt_secret,
        &args.sub,
        &args.role,
        args.name.as_deref(),
        Duration::from_secs(args.ttl),
    ) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rnd-local token: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    raise_open_files_limit("rnd-local serve");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let store = match (&args.dynamodb_endpoint, args.memory) {
        (Some(endpoint), _) => StoreConfig::DynamoDb {
            endpoint: endpoint.clone(),
            tables: dynamodb_tables(&args.tables_prefix),
        },
        (None, true) => StoreConfig::Memory,
        (None, false) => StoreConfig::Sqlite {
            dir: args.data.clone(),
        },
    };
    let store_text = match &store {
        StoreConfig::Memory => "embedded SQLite, in memory".to_owned(),
        StoreConfig::Sqlite { dir } => {
            format!(
                "embedded SQLite, {}",
                dir.join(rnd_local::DATABASE_FILE).display()
            )
        }
        StoreConfig::DynamoDb { endpoint, .. } => format!("DynamoDB at {endpoint}"),
    };
    let fcm = match (&args.fcm_endpoint, &args.fcm_credentials) {
        (Some(endpoint), Some(file)) => match std::fs::read_to_string(file) {
            Ok(credentials) => FcmConfig::Endpoint {
                endpoint: endpoint.clone(),
                credentials,
            },
            Err(e) => {
                eprintln!("rnd-local: cannot read {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        },
        _ => FcmConfig::Builtin,
    };
    let fcm_text = match &fcm {
        FcmConfig::Builtin => "built-in FCM sink".to_owned(),
        FcmConfig::Endpoint { endpoint, .. } => format!("FCM at {endpoint}"),
    };
    let config = Config {
        host: args.host,
        port: args.port,
        store,
        jwt_secret: args.secret.jwt_secret,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_connection: Duration::from_secs(args.max_connection_secs),
        template: None,
        stream_enabled: true,
        inbox_retention: Duration::from_secs(args.inbox_retention_secs),
        location_min_interval: Duration::from_millis(args.location_min_interval_ms),
        post_over_http: args.post_over_http,
        allow_remote: args.allow_remote,
        orders_per_customer_per_hour: args.orders_per_customer_per_hour,
        room_changes_per_minute: args.room_changes_per_minute,
        fcm,
        routing: match (args.eta_provider, args.routing_url) {
            (None, _) => RoutingConfig::Offline,
            (Some(rnd_routing::Provider::Osrm), None) => RoutingConfig::BuiltinOsrm,
            (Some(provider), base_url) => RoutingConfig::Provider(rnd_routing::RouterConfig {
                provider,
                base_url,
                secret: args.routing_key,
            }),
        },
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rnd-local: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        let stack = match rnd_local::start(config).await {
            Ok(stack) => stack,
            Err(e) => {
                eprintln!("rnd-local: {}", Chain(&e));
                return ExitCode::FAILURE;
            }
        };
        println!("store           {store_text}");
        println!("WebSocket API   {}?token=JWT", stack.websocket_url());
        println!(
            "Management API  {}/@connections/{{connectionId}}",
            stack.management_endpoint()
        );
        println!(
            "HTTP API        {}/orders, /profiles/me, /openapi.json",
            stack.http_url()
        );
        println!(
            "demo page       {}/  (its POST /dev/token exists only in this local stack)",
            stack.http_url()
        );
        println!(
            "push            {fcm_text}; what a phone would show: {}/fcm/messages?token=…",
            stack.http_url()
        );
        match stack.osrm_emulator_url() {
            Some(url) => println!("ETA             routed: the built-in OSRM emulator at {url}"),
            None if stack.routing_stats().is_some() => println!("ETA             routed"),
            None => println!("ETA             the offline estimate (--eta-provider for routes)"),
        }
        println!(
            "dev token       cargo run -p rnd-local -- token --sub customer-1 --role customer"
        );
        println!("rnd-local ready on {}", stack.http_url());
        shutdown_signal().await;
        println!("rnd-local stopping");
        stack.stop().await;
        ExitCode::SUCCESS
    });
    // Everything was stopped gracefully above; do not wait on idle runtime threads.
    runtime.shutdown_background();
    code
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
