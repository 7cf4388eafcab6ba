//! The `rnd-local` command: `serve` (the default) runs the local stack, `token` prints a dev
//! JWT, `simulate` drives a live scenario against a running stack. See the library crate for
//! what the stack emulates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rnd_local::{Config, DYNAMODB_TABLES, StoreConfig};
use rnd_store_dynamodb::TableNames;

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
    /// HS256 secret to sign with (the stack's).
    #[arg(long, env = "JWT_SECRET", default_value = rnd_domain::identity::DEV_JWT_SECRET, hide_default_value = true, hide_env_values = true)]
    jwt_secret: String,
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
    /// Use DynamoDB Local at this URL instead of SQLite (tables created when missing).
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// HS256 secret tokens are verified with.
    #[arg(long, env = "JWT_SECRET", default_value = rnd_domain::identity::DEV_JWT_SECRET, hide_default_value = true, hide_env_values = true)]
    jwt_secret: String,
    /// Close connections idle this long (1001).
    #[arg(long, default_value_t = 600)]
    idle_timeout_secs: u64,
    /// Close any connection after this long (1001).
    #[arg(long, default_value_t = 7200)]
    max_connection_secs: u64,
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
    /// HS256 secret to sign with.
    #[arg(long, env = "JWT_SECRET", default_value = rnd_domain::identity::DEV_JWT_SECRET, hide_default_value = true, hide_env_values = true)]
    jwt_secret: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => token(&args),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Simulate(args)) => simulate(args),
        None => serve(cli.serve),
    }
}

fn token(args: &TokenArgs) -> ExitCode {
    match rnd_local::issue_token(
        &args.jwt_secret,
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
        ..rnd_local::simulate::SimulateOptions::new(args.url, args.orders, args.jwt_secret)
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
            eprintln!("rnd-local simulate: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let store = match (&args.dynamodb_endpoint, args.memory) {
        (Some(endpoint), _) => StoreConfig::DynamoDb {
            endpoint: endpoint.clone(),
            tables: TableNames {
                connections: DYNAMODB_TABLES.0.into(),
                orders: DYNAMODB_TABLES.1.into(),
            },
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
        StoreConfig::DynamoDb { endpoint, .. } => format!("DynamoDB Local at {endpoint}"),
    };
    let config = Config {
        host: args.host,
        port: args.port,
        store,
        jwt_secret: args.jwt_secret,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_connection: Duration::from_secs(args.max_connection_secs),
        template: None,
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
                eprintln!("rnd-local: {}", error_chain(&e));
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

/// An error and its sources, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
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
