//! `lambda-init-bench`: times each release Lambda binary (init, first and warm invocation,
//! size, peak RSS) against a local Lambda Runtime API emulator; see the library docs.
//!
//! Needs a DynamoDB-compatible endpoint (`DYNAMODB_ENDPOINT`: the test database, moto) and the
//! release binaries:
//!
//! ```text
//! cargo build --release -p ws-authorizer … -p http-api
//! scripts/moto.sh run -- cargo run -p lambda-init-bench -- --runs 5
//! ```
//!
//! (`make bench-init` does both.) Prints one JSON line per function on stdout and a table on
//! stderr; exits non-zero when any run failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use lambda_init_bench::bench::{ACCESS_KEY_ID, Bench, REGION, RunResult, SECRET_ACCESS_KEY};
use lambda_init_bench::scenario::{SCENARIOS, Scenario, ScenarioError, scenario, seed_order};
use lambda_init_bench::stats::Summary;
use rnd_domain::error::Chain;
use rnd_notifier_apigw::mock::MockManagementApi;
use rnd_store_dynamodb::{DynamoStore, TableNames, create_tables};
use serde_json::json;

/// Times each release Lambda binary against a local Lambda Runtime API emulator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Fresh processes per function.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Functions to time (comma-separated); all nine when not given.
    #[arg(long, value_delimiter = ',')]
    functions: Vec<String>,
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where each function's output is appended (`<function>.log`).
    #[arg(long, default_value = "target/lambda-init-bench")]
    log_dir: PathBuf,
    /// Longest wait for init and for each invocation, seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// The DynamoDB-compatible endpoint (`scripts/moto.sh run --` sets it).
    #[arg(long, env = "DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: String,
}

/// The tool could not set up.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("unknown function {0:?}; known: {1}")]
    UnknownFunction(String, String),
    #[error("--runs must be at least 1")]
    NoRuns,
    #[error("{0} is missing: build the release binaries first (make bench-init does)")]
    MissingBinary(PathBuf),
    #[error("the binary directory {0} is unusable")]
    BinDir(PathBuf, #[source] std::io::Error),
    #[error("could not create the log directory {0}")]
    LogDir(PathBuf, #[source] std::io::Error),
    #[error("could not create the tables in the DynamoDB endpoint")]
    Tables(#[source] rnd_domain::ports::StoreError),
    #[error("could not seed the order")]
    Seed(#[source] ScenarioError),
    #[error("could not start the FCM emulator")]
    Fcm(#[source] std::io::Error),
}

fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "static",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn chosen(args: &Args) -> Result<Vec<&'static Scenario>, SetupError> {
    if args.functions.is_empty() {
        return Ok(SCENARIOS.iter().collect());
    }
    args.functions
        .iter()
        .map(|name| {
            scenario(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = SCENARIOS.iter().map(|s| s.function).collect();
                SetupError::UnknownFunction(name.clone(), known.join(", "))
            })
        })
        .collect()
}

async fn setup(args: &Args) -> Result<(Bench, Vec<&'static Scenario>), SetupError> {
    if args.runs == 0 {
        return Err(SetupError::NoRuns);
    }
    let scenarios = chosen(args)?;
    // Absolute: each function runs in its binary's directory, as in Lambda's task root.
    let bin_dir = std::fs::canonicalize(&args.bin_dir)
        .map_err(|e| SetupError::BinDir(args.bin_dir.clone(), e))?;
    for s in &scenarios {
        let binary = bin_dir.join(s.function);
        if !binary.is_file() {
            return Err(SetupError::MissingBinary(binary));
        }
    }
    std::fs::create_dir_all(&args.log_dir)
        .map_err(|e| SetupError::LogDir(args.log_dir.clone(), e))?;
    let client = dynamodb_client(&args.dynamodb_endpoint);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let tables = TableNames {
        connections: format!("init-bench-connections-{suffix}"),
        orders: format!("init-bench-orders-{suffix}"),
    };
    create_tables(&client, &tables)
        .await
        .map_err(SetupError::Tables)?;
    let store = Arc::new(DynamoStore::new(client, tables.clone()));
    seed_order(&*store).await.map_err(SetupError::Seed)?;
    let bench = Bench {
        bin_dir,
        log_dir: args.log_dir.clone(),
        dynamodb_endpoint: args.dynamodb_endpoint.clone(),
        tables,
        store,
        management: MockManagementApi::start().await,
        fcm: rnd_fcm_emulator::start().await.map_err(SetupError::Fcm)?,
        timeout: Duration::from_secs(args.timeout_secs),
    };
    Ok((bench, scenarios))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(results: &[RunResult], value: impl Fn(&RunResult) -> Option<f64>) -> Option<Summary> {
    let values: Option<Vec<f64>> = results.iter().map(value).collect();
    Summary::of(&values?)
}

/// One function's figures.
struct Report<'a> {
    scenario: &'a Scenario,
    binary_bytes: Option<u64>,
    results: Vec<RunResult>,
    failures: Vec<String>,
}

impl Report<'_> {
    fn json(&self, runs: usize) -> serde_json::Value {
        let results = &self.results;
        json!({
            "function": self.scenario.function,
            "runs": runs,
            "succeeded": results.len(),
            "failures": self.failures,
            "init_ms": summary(results, |r| Some(ms(r.init))),
            "first_invoke_ms": summary(results, |r| Some(ms(r.first_invoke))),
            "warm_invoke_ms": summary(results, |r| Some(ms(r.warm_invoke))),
            "peak_rss_kib": summary(results, |r| r.peak_rss_kib.map(|k| k as f64)),
            "binary_bytes": self.binary_bytes,
            "first_fixture": self.scenario.first.fixture,
            "warm_fixture": self.scenario.warm.fixture,
            "answers": results.last().map(|r| r.answers.clone()),
            "management_posts": results.last().map(|r| r.posts),
        })
    }

    fn row(&self, runs: usize) -> String {
        let cell = |s: Option<Summary>, scale: f64| match s {
            Some(s) => format!(
                "{:>7.1} ({:.1}–{:.1})",
                s.p50 / scale,
                s.min / scale,
                s.max / scale
            ),
            None => format!("{:>7}", "-"),
        };
        let results = &self.results;
        format!(
            "{:<19} {:<24} {:<24} {:<22} {:>8} {:>8} {:>3}/{}",
            self.scenario.function,
            cell(summary(results, |r| Some(ms(r.init))), 1.0),
            cell(summary(results, |r| Some(ms(r.first_invoke))), 1.0),
            cell(summary(results, |r| Some(ms(r.warm_invoke))), 1.0),
            summary(results, |r| r.peak_rss_kib.map(|k| k as f64))
                .map_or("-".into(), |s| format!("{:.1}", s.max / 1024.0)),
            self.binary_bytes
                .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1_048_576.0)),
            results.len(),
            runs,
        )
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (bench, scenarios) = match setup(&args).await {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("lambda-init-bench: {}", Chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let mut reports: Vec<Report> = scenarios
        .iter()
        .map(|scenario| Report {
            scenario,
            binary_bytes: std::fs::metadata(bench.binary(scenario.function))
                .ok()
                .map(|m| m.len()),
            results: Vec::new(),
            failures: Vec::new(),
        })
        .collect();
    // Round-robin over the functions, so a burst of load on the machine is spread over all of
    // them rather than skewing one.
    for run in 1..=args.runs {
        for report in &mut reports {
            match bench.run(report.scenario).await {
                Ok(result) => report.results.push(result),
                Err(e) => {
                    let text = Chain(&e).to_string();
                    eprintln!("run {run}: {}: FAILED: {text}", report.scenario.function);
                    report.failures.push(format!("run {run}: {text}"));
                }
            }
        }
        eprintln!("run {run}/{} done", args.runs);
    }

    for report in &reports {
        println!("{}", report.json(args.runs));
    }
    eprintln!(
        "\n{:<19} {:<24} {:<24} {:<22} {:>8} {:>8} {:>5}",
        "function",
        "init ms p50 (min–max)",
        "first invoke ms",
        "warm invoke ms",
        "RSS MiB",
        "bin MiB",
        "ok"
    );
    for report in &reports {
        eprintln!("{}", report.row(args.runs));
    }
    eprintln!(
        "(RSS: peak VmHWM, max over runs; logs in {})",
        args.log_dir.display()
    );
    if reports.iter().any(|r| !r.failures.is_empty()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
