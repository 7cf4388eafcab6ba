//! The `rnd-loadgen` command: `simulate` drives a live scenario against a running stack, `bench`
//! measures a running stack under load (loopback only) and prints one JSON line. See the library
//! crate for what each does; `scripts/bench.sh` runs `bench` against a fresh stack of its own.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rnd_domain::error::Chain;
use rnd_domain::protocol::LocationAcks;
use rnd_local::cli::{SecretArg, raise_open_files_limit};

/// Drives a running RND Realtime local stack (`rnd-local serve`) over its public APIs.
#[derive(Debug, Parser)]
#[command(name = "rnd-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive a live scenario against a running stack: profiles, orders through their whole
    /// lifecycle, drivers moving from chef to customer.
    Simulate(SimulateArgs),
    /// Measure a running stack over real WebSockets (loopback only) and print one JSON line:
    /// `load` (the default) streams driver locations to subscribed clients and prices the work
    /// per update; `knee` sweeps the location rate and finds the highest delivered rate within a
    /// p99; `idle` holds connections and reports the server's memory per connection.
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
    /// Sweep the location rate on one set of orders and connections; print a row per rate and
    /// a JSON line with the knee: the highest delivered rate with p99 within the limit and
    /// nothing lost. The stack must accept every location (`--location-min-interval-ms 0`).
    Knee(KneeArgs),
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
    #[command(flatten)]
    deliveries: DeliveryArgs,
    #[command(flatten)]
    common: BenchCommon,
}

/// How the drivers' locations are answered and how long their deliveries are waited for (the
/// same for `load` and `knee`).
#[derive(Debug, Args)]
struct DeliveryArgs {
    /// Seconds after the last send before a missing delivery counts as lost.
    #[arg(long, default_value_t = 5)]
    grace_secs: u64,
    /// Which locations the drivers ask to have acknowledged: all, or refusals only.
    #[arg(long, value_parser = acks, default_value = "all")]
    acks: LocationAcks,
}

/// `--acks`: a wire value of `driver:location`'s `ack`.
fn acks(name: &str) -> Result<LocationAcks, String> {
    LocationAcks::parse(name).ok_or_else(|| format!("one of {}", LocationAcks::NAMES.join(", ")))
}

#[derive(Debug, Args)]
struct KneeArgs {
    /// Orders, each with an assigned driver streaming locations.
    #[arg(long, default_value_t = 1000)]
    orders: u32,
    /// Subscribed clients per order.
    #[arg(long, default_value_t = 2)]
    subscribers: u32,
    /// Locations per second per driver, swept in this order (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4,6,8,10,12,14,16,20"
    )]
    rates: Vec<f64>,
    /// How long the drivers stream at each rate, seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// The p99 a rate must keep to count, milliseconds.
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
    /// Stop after this many rates in a row miss the limit.
    #[arg(long, default_value_t = 2)]
    misses_to_stop: usize,
    #[command(flatten)]
    deliveries: DeliveryArgs,
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
    /// Drive along the routes of this OSRM server instead of straight lines (e.g. the stack's
    /// built-in emulator, http://127.0.0.1:9001/osrm, with `rnd-local serve --eta-provider osrm`)
    #[arg(long)]
    osrm: Option<String>,
    #[command(flatten)]
    secret: SecretArg,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Simulate(args) => simulate(args),
        Command::Bench(args) => bench(args),
    }
}

fn simulate(args: SimulateArgs) -> ExitCode {
    if !(args.speed_mps.is_finite() && args.speed_mps > 0.0) {
        eprintln!("rnd-loadgen simulate: --speed-mps must be positive");
        return ExitCode::FAILURE;
    }
    let options = rnd_loadgen::simulate::SimulateOptions {
        speed_mps: args.speed_mps,
        interval: Duration::from_millis(args.interval_ms),
        step_pause: Duration::from_millis(args.step_pause_ms),
        osrm: args.osrm,
        ..rnd_loadgen::simulate::SimulateOptions::new(args.url, args.orders, args.secret.jwt_secret)
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rnd-loadgen simulate: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rnd_loadgen::simulate::run(&options)) {
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
            eprintln!("rnd-loadgen simulate: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn bench(args: BenchArgs) -> ExitCode {
    raise_open_files_limit("rnd-loadgen bench");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rnd-loadgen bench: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let printed = match args.mode {
        Some(BenchMode::Idle(a)) => {
            let options = rnd_loadgen::bench::IdleOptions {
                parallelism: a.common.parallel,
                settle: Duration::from_secs(a.settle_secs),
                ..rnd_loadgen::bench::IdleOptions::new(
                    a.common.url,
                    a.connections,
                    a.common.secret.jwt_secret,
                )
            };
            runtime
                .block_on(rnd_loadgen::bench::idle(&options))
                .map(|report| {
                    eprintln!(
                        "bench idle: {} connections, server RSS {} → {} MiB, {} bytes per connection",
                        report.connections,
                        mib(report.rss_before_bytes),
                        mib(report.rss_after_bytes),
                        report.bytes_per_connection.map_or("?".into(), |b| format!("{b:.0}")),
                    );
                    eprintln!(
                        "bench idle: per connect {:.2} invocations, {:.2} WRU; per disconnect {:.2} invocations, {:.2} RRU, {:.2} WRU",
                        report.lambda_invocations_per_connection,
                        report.write_units_per_connection,
                        report.lambda_invocations_per_disconnect,
                        report.read_units_per_disconnect,
                        report.write_units_per_disconnect,
                    );
                    serde_json::to_string(&report)
                })
        }
        Some(BenchMode::Load(a)) => run_load(&runtime, a),
        Some(BenchMode::Knee(a)) => run_knee(&runtime, a),
        None => run_load(&runtime, args.load),
    };
    runtime.shutdown_background();
    match printed {
        Ok(Ok(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("rnd-loadgen bench: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("rnd-loadgen bench: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run_load(
    runtime: &tokio::runtime::Runtime,
    a: LoadArgs,
) -> Result<serde_json::Result<String>, rnd_loadgen::bench::BenchError> {
    let options = rnd_loadgen::bench::LoadOptions {
        orders: a.orders,
        subscribers: a.subscribers,
        rate_hz: a.rate_hz,
        duration: Duration::from_secs(a.duration_secs),
        idle: a.idle,
        parallelism: a.common.parallel,
        grace: Duration::from_secs(a.deliveries.grace_secs),
        acks: a.deliveries.acks,
        ..rnd_loadgen::bench::LoadOptions::new(a.common.url, a.common.secret.jwt_secret)
    };
    let report = runtime.block_on(rnd_loadgen::bench::load(&options))?;
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
    if let (Some(calls), Some(costs)) = (
        report.per_accepted_update.work.routing_calls,
        &report.routing_cost_usd,
    ) {
        let priced: Vec<String> = costs
            .iter()
            .map(|c| format!("{} ${:.2}", c.price.provider, c.per_million_updates))
            .collect();
        eprintln!(
            "bench load: {calls:.4} routing calls per update ({:.2} per order at its start); \
             per million updates at list prices: {}",
            report.routing_calls_per_order_at_start.unwrap_or(0.0),
            priced.join(", "),
        );
    }
    Ok(serde_json::to_string(&report))
}

fn run_knee(
    runtime: &tokio::runtime::Runtime,
    a: KneeArgs,
) -> Result<serde_json::Result<String>, rnd_loadgen::bench::BenchError> {
    let options = rnd_loadgen::bench::KneeOptions {
        rates: a.rates,
        p99_limit_ms: a.p99_limit_ms,
        misses_to_stop: a.misses_to_stop,
        ..rnd_loadgen::bench::KneeOptions::new(rnd_loadgen::bench::LoadOptions {
            orders: a.orders,
            subscribers: a.subscribers,
            duration: Duration::from_secs(a.duration_secs),
            parallelism: a.common.parallel,
            grace: Duration::from_secs(a.deliveries.grace_secs),
            acks: a.deliveries.acks,
            ..rnd_loadgen::bench::LoadOptions::new(a.common.url, a.common.secret.jwt_secret)
        })
    };
    eprintln!(
        "bench knee: {} orders x {} subscribers, {} s per rate, p99 limit {} ms, acks: {}",
        a.orders,
        a.subscribers,
        a.duration_secs,
        a.p99_limit_ms,
        options.load.acks.as_str()
    );
    eprintln!(
        "{:>7} {:>10} {:>10} {:>8} {:>8} {:>8} {:>6} {:>8} {:>9} {:>9}",
        "rate Hz",
        "asked/s",
        "deliv./s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "refused",
        "CPU cores",
        "bench CPU"
    );
    let report = runtime.block_on(rnd_loadgen::bench::knee(&options, |row| {
        eprintln!(
            "{:>7} {:>10.0} {:>10.0} {:>8.1} {:>8.1} {:>8.1} {:>6} {:>8} {:>9} {:>9} {}",
            row.rate_hz,
            row.asked_deliveries_per_second,
            row.deliveries_per_second,
            row.latency_ms.p50,
            row.latency_ms.p99,
            row.latency_ms.max,
            row.lost,
            row.refused,
            row.server_cpu
                .cores
                .map_or("?".into(), |c| format!("{c:.2}")),
            row.bench_cores.map_or("?".into(), |c| format!("{c:.2}")),
            if row.within_limit { "" } else { "(miss)" },
        );
    }))?;
    eprintln!(
        "bench knee: {:.0} deliveries/s within p99 {} ms{}",
        report.knee_deliveries_per_second,
        report.p99_limit_ms,
        report
            .knee_rate_hz
            .map_or(String::new(), |r| format!(" (at {r} Hz)")),
    );
    Ok(serde_json::to_string(&report))
}

/// Bytes as MiB, one decimal; `?` when unknown.
fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| format!("{:.1}", b as f64 / 1_048_576.0))
}
