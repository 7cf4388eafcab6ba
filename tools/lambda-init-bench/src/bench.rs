//! One measured run of one function: seed, spawn, wait for init, two invocations, peak RSS,
//! stop.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rnd_domain::identity::DEV_JWT_SECRET;
use rnd_notifier_apigw::mock::MockManagementApi;
use rnd_store_dynamodb::{DynamoStore, TableNames};
use tokio::process::{Child, Command};

use crate::runtime::{ErrorReport, Outcome, RuntimeApi, StartError};
use crate::scenario::{Scenario, ScenarioError, Step, seed_connections};

/// The region of every client; the test database (moto) keeps tables per account (derived from
/// the access key) and region, so the functions and this tool must agree.
pub const REGION: &str = "us-east-1";
/// The access key of every client (the test database accepts any).
pub const ACCESS_KEY_ID: &str = "local";
/// The secret key of every client.
pub const SECRET_ACCESS_KEY: &str = "local";

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The tables could not be seeded or a fixture prepared.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The Runtime API emulator did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The binary could not be started, or its log file opened.
    #[error("could not start {path}")]
    Spawn {
        /// The binary or log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The function posted `init/error`.
    #[error("init failed: {0}")]
    Init(ErrorReport),
    /// The function posted `invocation/{id}/error`.
    #[error("{step} invocation ({fixture}) failed: {report}")]
    Invocation {
        /// `first` or `warm`.
        step: &'static str,
        /// The fixture sent.
        fixture: &'static str,
        /// The report.
        report: ErrorReport,
    },
    /// The function answered, but not what the scenario expects.
    #[error("{step} invocation ({fixture}) answered {got:?}, expected {expected:?}")]
    Unexpected {
        /// `first` or `warm`.
        step: &'static str,
        /// The fixture sent.
        fixture: &'static str,
        /// What it answered.
        got: String,
        /// What it should have answered.
        expected: &'static str,
    },
    /// The process ended while it was being waited for.
    #[error("the process exited ({status}) during {during}")]
    Exited {
        /// What was being waited for.
        during: &'static str,
        /// How it ended.
        status: String,
    },
    /// Nothing happened in time.
    #[error("timed out after {timeout:?} during {during}")]
    Timeout {
        /// What was being waited for.
        during: &'static str,
        /// How long.
        timeout: Duration,
    },
}

/// What one successful run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Process start → first `invocation/next`.
    pub init: Duration,
    /// The first invocation: event handed out → response.
    pub first_invoke: Duration,
    /// The warm invocation.
    pub warm_invoke: Duration,
    /// Peak RSS (`VmHWM`) after both invocations, KiB; `None` where `/proc` is unreadable.
    pub peak_rss_kib: Option<u64>,
    /// How the first and the warm answers were described.
    pub answers: [String; 2],
    /// Messages the mock Management API accepted during the run.
    pub posts: usize,
}

/// What every run shares: where the binaries are, the tables, the mock Management API.
#[derive(Debug)]
pub struct Bench {
    /// Where the release binaries are (`target/release`).
    pub bin_dir: PathBuf,
    /// Where each function's stdout and stderr are appended (`<function>.log`).
    pub log_dir: PathBuf,
    /// The DynamoDB-compatible endpoint (the test database, moto).
    pub dynamodb_endpoint: String,
    /// The tables the functions use.
    pub tables: TableNames,
    /// The store the tables are seeded through.
    pub store: Arc<DynamoStore>,
    /// The Management API the fan-out posts to.
    pub management: MockManagementApi,
    /// The FCM the push function sends to (Google's token endpoint and FCM v1, emulated).
    pub fcm: rnd_fcm_emulator::RunningEmulator,
    /// Longest wait for init and for each invocation.
    pub timeout: Duration,
}

/// The ARN Lambda would report for `function`.
pub fn function_arn(function: &str) -> String {
    format!("arn:aws:lambda:{REGION}:123456789012:function:{function}")
}

/// The peak resident set size of process `pid` (`VmHWM` in `/proc/<pid>/status`), KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn exit_text(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("wait failed: {e}"),
    }
}

/// Waits for `work`, unless the child exits or `timeout` passes first.
async fn guarded<T>(
    child: &mut Child,
    work: impl std::future::Future<Output = T>,
    timeout: Duration,
    during: &'static str,
) -> Result<T, RunError> {
    tokio::select! {
        out = work => Ok(out),
        status = child.wait() => Err(RunError::Exited { during, status: exit_text(status) }),
        () = tokio::time::sleep(timeout) => Err(RunError::Timeout { during, timeout }),
    }
}

impl Bench {
    /// The binary of `function`.
    pub fn binary(&self, function: &str) -> PathBuf {
        self.bin_dir.join(function)
    }

    fn log_file(&self, function: &str) -> Result<File, RunError> {
        let path = self.log_dir.join(format!("{function}.log"));
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| RunError::Spawn { path, source })
    }

    /// The process as Lambda starts it: only the variables Lambda sets, plus the function's
    /// own configuration.
    fn command(
        &self,
        scenario: &Scenario,
        runtime_api: &str,
        log: &File,
    ) -> Result<Command, RunError> {
        let function = scenario.function;
        let binary = self.binary(function);
        let clone = |file: &File| {
            file.try_clone().map_err(|source| RunError::Spawn {
                path: self.log_dir.join(format!("{function}.log")),
                source,
            })
        };
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .current_dir(binary.parent().unwrap_or(Path::new(".")))
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                scenario.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!(
                    "{}/[$LATEST]{}",
                    Utc::now().format("%Y/%m/%d"),
                    uuid::Uuid::new_v4().simple()
                ),
            )
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .env("TZ", ":UTC")
            .env("LANG", "en_US.UTF-8")
            .env("PATH", "/usr/local/bin:/usr/bin/:/bin")
            .env("CONNECTIONS_TABLE", &self.tables.connections)
            .env("ORDERS_TABLE", &self.tables.orders)
            .env("DYNAMODB_ENDPOINT", &self.dynamodb_endpoint)
            .env("JWT_SECRET", DEV_JWT_SECRET)
            // A local run: the fixtures are signed with the public development secret.
            .env("JWT_ALLOW_DEV_SECRET", "true")
            .env("WEBSOCKET_API_ENDPOINT", self.management.endpoint())
            .env("FCM_CREDENTIALS", self.fcm.dev_service_account_json())
            .env("FCM_ENDPOINT", self.fcm.base_url())
            .stdin(Stdio::null())
            .stdout(Stdio::from(clone(log)?))
            .stderr(Stdio::from(clone(log)?))
            .kill_on_drop(true);
        Ok(command)
    }

    /// Runs `scenario` once in a fresh process.
    pub async fn run(&self, scenario: &Scenario) -> Result<RunResult, RunError> {
        seed_connections(&*self.store, scenario.seeds, Utc::now()).await?;
        let api = RuntimeApi::start(function_arn(scenario.function), self.timeout).await?;
        let log = self.log_file(scenario.function)?;
        let mut command = self.command(scenario, &api.runtime_api(), &log)?;
        let posts_before = self.management.posts().len();

        let started = Instant::now();
        let mut child = command.spawn().map_err(|source| RunError::Spawn {
            path: self.binary(scenario.function),
            source,
        })?;
        let result = self
            .measure(scenario, &api, &mut child, started, posts_before)
            .await;
        // Stopped however the run went; an already exited process makes these no-ops.
        let _ = child.start_kill();
        let _ = child.wait().await;
        result
    }

    async fn measure(
        &self,
        scenario: &Scenario,
        api: &RuntimeApi,
        child: &mut Child,
        started: Instant,
        posts_before: usize,
    ) -> Result<RunResult, RunError> {
        let ready = guarded(child, api.ready(), self.timeout, "init")
            .await?
            .map_err(RunError::Init)?;
        let init = ready.saturating_duration_since(started);
        let (first_invoke, first) = self.invoke(api, child, "first", &scenario.first).await?;
        let (warm_invoke, warm) = self.invoke(api, child, "warm", &scenario.warm).await?;
        let peak_rss_kib = child.id().and_then(peak_rss_kib);
        Ok(RunResult {
            init,
            first_invoke,
            warm_invoke,
            peak_rss_kib,
            answers: [first, warm],
            posts: self.management.posts().len().saturating_sub(posts_before),
        })
    }

    /// Sends `step`'s event; its duration and the described answer.
    async fn invoke(
        &self,
        api: &RuntimeApi,
        child: &mut Child,
        name: &'static str,
        step: &Step,
    ) -> Result<(Duration, String), RunError> {
        let payload = step.payload(Utc::now())?;
        let invocation = guarded(child, api.invoke(payload), self.timeout, name).await?;
        let duration = invocation.duration();
        match invocation.outcome {
            Outcome::Error(report) => Err(RunError::Invocation {
                step: name,
                fixture: step.fixture,
                report,
            }),
            Outcome::Response(body) => {
                let got = crate::scenario::describe(&body);
                if got == step.expect {
                    Ok((duration, got))
                } else {
                    Err(RunError::Unexpected {
                        step: name,
                        fixture: step.fixture,
                        got,
                        expected: step.expect,
                    })
                }
            }
        }
    }
}
