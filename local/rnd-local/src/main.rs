//! The `rnd-local` command: `serve` (the default) runs the local stack, `token` prints a dev
//! JWT, `simulate` drives a live scenario against a running stack, `bench` measures a running
//! stack under load (loopback only). See the library crate for what the stack emulates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rnd_domain::error::Chain;
use rnd_local::{Config, DYNAMODB_TABLES_PREFIX, StoreConfig, dynamodb_tables};

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
    /// Drive a live scenario against a running stack: profiles, orders through their whole
    /// lifecycle, drivers moving from chef to customer.
    Simulate(SimulateArgs),
    /// Measure a running stack over real WebSockets (loopback only) and print one JSON line:
    /// `load` (the default) streams driver locations to subscribed clients and prices the work
    /// per update; `idle` holds connections and reports the server's memory per connection.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BenchArgs {
    #[command(subcommand)]
    mode: Option<BenchMode>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Subcommand)]
enum BenchMode {
    /// Drivers stream locations to subscribers (the default).
    Load(LoadArgs),
    /// Hold idle connections; report the server's memory per connection.
    Idle(IdleArgs),
}

/// The HS256 secret, in every command that signs or verifies tokens: the stack's own
/// (`JWT_SECRET`, else the public development secret).
#[derive(Debug, Args)]
struct SecretArg {
    /// HS256 secret tokens are signed and verified with (the stack's).
    #[arg(long = "jwt-secret", env = "JWT_SECRET", default_value = rnd_domain::identity::DEV_JWT_SECRET, hide_default_value = true, hide_env_values = true)]
    jwt_secret: String,
}

/// What both bench modes take.
#[derive(Debug, Args)]
struct BenchCommon {
    /// The running stack (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:9001")]
    url: String,
    /// Connections opened at once.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    #[command(flatten)]
    secret: SecretArg,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Orders, each with an assigned driver streaming locations.
    #[arg(long, default_value_t = 50)]
    orders: u32,
    /// Subscribed clients per order.
    #[arg(long, default_value_t = 4)]
    subscribers: u32,
    /// Locations per second per driver (the stack accepts about one a second per order).
    #[arg(long, default_value_t = 1.0)]
    rate_hz: f64,
    /// How long the drivers stream, seconds.
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    /// Idle connections held open besides the orders' rooms.
    #[arg(long, default_value_t = 0)]
    idle: u32,
    /// Seconds after the last send before a missing delivery counts as lost.
    #[arg(long, default_value_t = 5)]
    grace_secs: u64,
    #[command(flatten)]
    common: BenchCommon,
}

#[derive(Debug, Args)]
struct IdleArgs {
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000)]
    connections: u32,
    /// Seconds to wait after the last connect before reading the server's memory.
    #[arg(long, default_value_t = 2)]
    settle_secs: u64,
    #[command(flatten)]
    common: BenchCommon,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// How many orders to run at once.
    #[arg(long, default_value_t = 3)]
    orders: u32,
    /// The running stack.
    #[arg(long, default_value = "http://127.0.0.1:9001")]
    url: String,
    /// Driving speed, m/s (8.3 ≈ 30 km/h in town).
    #[arg(long, default_value_t = 8.3)]
    speed_mps: f64,
    /// Milliseconds between two location reports of a driver (the stack accepts one a second).
    #[arg(long, default_value_t = 2000)]
    interval_ms: u64,
    /// Milliseconds between two lifecycle steps of an order.
    #[arg(long, default_value_t = 500)]
    step_pause_ms: u64,
    #[command(flatten)]
    secret: SecretArg,
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
        Some(Command::Simulate(args)) => simulate(args),
        Some(Command::Bench(args)) => bench(args),
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

fn simulate(args: SimulateArgs) -> ExitCode {
    if !(args.speed_mps.is_finite() && args.speed_mps > 0.0) {
        eprintln!("rnd-local simulate: --speed-mps must be positive");
        return ExitCode::FAILURE;
    }
    let options = rnd_local::simulate::SimulateOptions {
        speed_mps: args.speed_mps,
        interval: Duration::from_millis(args.interval_ms),
        step_pause: Duration::from_millis(args.step_pause_ms),
        ..rnd_local::simulate::SimulateOptions::new(args.url, args.orders, args.secret.jwt_secret)
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rnd-local simulate: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rnd_local::simulate::run(&options)) {
        Ok(orders) => {
            for o in &orders {
                println!(
                    "{} {} {} ({} locations)",
                    o.order_number, o.order_id, o.status, o.locations_accepted
                );
            }
            if orders.iter().all(|o| o.status == "delivered") {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("rnd-local simulate: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Raises the open-files limit to its hard limit: 10 k WebSocket connections need 10 k
/// descriptors on each side.
fn raise_open_files_limit(command: &str) {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("rnd-local {command}: could not raise the open-files limit: {e}");
    }
}

fn bench(args: BenchArgs) -> ExitCode {
    raise_open_files_limit("bench");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rnd-local bench: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let printed = match args.mode {
        Some(BenchMode::Idle(a)) => {
            let options = rnd_local::bench::IdleOptions {
                parallelism: a.common.parallel,
                settle: Duration::from_secs(a.settle_secs),
                ..rnd_local::bench::IdleOptions::new(
                    a.common.url,
                    a.connections,
                    a.common.secret.jwt_secret,
                )
            };
            runtime
                .block_on(rnd_local::bench::idle(&options))
                .map(|report| {
                    eprintln!(
                        "bench idle: {} connections, server RSS {} → {} MiB, {} bytes per connection",
                        report.connections,
                        mib(report.rss_before_bytes),
                        mib(report.rss_after_bytes),
                        report.bytes_per_connection.map_or("?".into(), |b| format!("{b:.0}")),
                    );
                    serde_json::to_string(&report)
                })
        }
        Some(BenchMode::Load(a)) => run_load(&runtime, a),
        None => run_load(&runtime, args.load),
    };
    runtime.shutdown_background();
    match printed {
        Ok(Ok(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("rnd-local bench: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("rnd-local bench: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run_load(
    runtime: &tokio::runtime::Runtime,
    a: LoadArgs,
) -> Result<serde_json::Result<String>, rnd_local::bench::BenchError> {
    let options = rnd_local::bench::LoadOptions {
        orders: a.orders,
        subscribers: a.subscribers,
        rate_hz: a.rate_hz,
        duration: Duration::from_secs(a.duration_secs),
        idle: a.idle,
        parallelism: a.common.parallel,
        grace: Duration::from_secs(a.grace_secs),
        ..rnd_local::bench::LoadOptions::new(a.common.url, a.common.secret.jwt_secret)
    };
    let report = runtime.block_on(rnd_local::bench::load(&options))?;
    let c = &report.cost_per_million_updates_usd;
    eprintln!(
        "bench load: {} connections at the server; {} of {} updates accepted; {} of {} \
         deliveries received; latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms; \
         ${:.2} per million updates (floor ${:.2}, {:.2}×)",
        report.connections.server,
        report.updates.accepted,
        report.updates.sent,
        report.deliveries.received,
        report.deliveries.expected,
        report.latency_ms.p50,
        report.latency_ms.p99,
        report.latency_ms.max,
        c.total,
        c.floor,
        c.total_over_floor,
    );
    Ok(serde_json::to_string(&report))
}

/// Bytes as MiB, one decimal; `?` when unknown.
fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| format!("{:.1}", b as f64 / 1_048_576.0))
}

fn serve(args: ServeArgs) -> ExitCode {
    raise_open_files_limit("serve");
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
