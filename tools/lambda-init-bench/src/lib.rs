//! `lambda-init-bench`: times each release Lambda binary of the workspace the way Lambda runs
//! it, against a local [Runtime API emulator](runtime::RuntimeApi):
//!
//! - **init**: from spawning the process to its first `GET /runtime/invocation/next` (logs,
//!   SDK clients, configuration: everything `main` does before it polls);
//! - **first invocation**: from handing the first event out to its response (the cold
//!   handler: the first connection to the database, the first request's credential and
//!   endpoint resolution, lazy statics);
//! - **warm invocation**: the same for a second event in the same process;
//! - the binary's size and the process's peak RSS (`VmHWM`) after both invocations.
//!
//! Each function gets fresh processes, the env Lambda gives it, tables in the test database
//! (moto's DynamoDB server at `DYNAMODB_ENDPOINT`), the dev JWT secret, and the mock API Gateway Management API as its
//! `WEBSOCKET_API_ENDPOINT`; what it is fed is in [`scenario`]. An error report from the
//! function, an answer other than the expected one, an exit or a timeout fail the run: they
//! are reported, never timed as successes.

pub mod bench;
pub mod runtime;
pub mod scenario;
pub mod stats;
