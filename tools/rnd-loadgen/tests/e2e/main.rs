//! End to end: `rnd-loadgen`'s simulation and bench against a stack started in-process on a free
//! port (`rnd_local::start`), over real HTTP and WebSockets, as the commands drive a stack.
//!
//! The simulation runs on both stores: as `embedded::…` on the embedded SQLite store and as
//! `dynamodb::…` on the test database, moto's DynamoDB server (`make test`, or
//! `scripts/moto.sh run -- cargo test -p rnd-loadgen`). The bench runs on the embedded store.

mod bench;
mod helpers;
mod simulate;
