//! `rnd-loadgen`: drives a running local stack (`rnd-local serve`) from outside, over its public
//! APIs only — the HTTP API, the WebSocket API and the stack's dev-only `GET /dev/metrics` — and
//! stops by itself. The emulator and its metering stay in `rnd-local`; this crate is what is run
//! against them.
//!
//! One crate for both commands: the bench sets its orders up exactly as the simulation does
//! (the same HTTP client and lifecycle steps, [`simulate`]'s), so neither is a copy of the
//! other. From `rnd-local`, a library dependency, it takes the tokens the stack verifies
//! (`rnd_local::issue_token`), the `GET /dev/metrics` document
//! (`rnd_local::metrics::MetricsSnapshot`), the template the stack runs
//! (`rnd_local::template::EMBEDDED`) and the shared command-line pieces (`rnd_local::cli`).
//!
//! # Layout
//! - [`simulate`]: `rnd-loadgen simulate`, a live scenario (orders through their whole
//!   lifecycle, drivers moving), and the HTTP client and order set-up the bench reuses.
//! - [`bench`]: `rnd-loadgen bench`, a load generator on loopback (`load`, `idle`);
//!   [`bench::cost`]: its cost model, USD per million location updates.
//! - `main.rs`: the `rnd-loadgen` command line.

pub mod bench;
pub mod simulate;
