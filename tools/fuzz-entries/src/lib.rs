//! The entry functions of the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer; `make fuzz`).
//!
//! Each target is one function from raw bytes to nothing: it feeds the bytes to the code that
//! reads untrusted input in production, exactly as the Lambda handlers and the local stack call
//! it, and asserts what must hold of the result. A panic — in the code under test or in an
//! assertion here — is a finding. The fuzz targets only call these functions, and the test
//! `tests/corpus.rs` replays every committed corpus input through them on stable Rust, so the
//! corpus (and every input that once crashed) is exercised by `make test` without the fuzzer.
//!
//! | target | what it reads | entry |
//! |---|---|---|
//! | `ws_message` | a WebSocket client frame, or a whole WebSocket proxy event | [`ws_message::run`] |
//! | `stream_record` | the stream consumers' Lambda event (DynamoDB stream records) | [`stream_record::run`] |
//! | `authorizer_token` | the `$connect` authorizer's event, and tokens signed with the dev secret | [`authorizer_token::run`] |
//! | `http_bodies` | the HTTP API's request bodies (and list query), through its Router | [`http_bodies::run`] |
//!
//! Nothing here reaches the network or AWS: the HTTP API runs over [`http_bodies`]'s in-memory
//! store, and the fan-out's decoding and derivation are pure.

pub mod authorizer_token;
pub mod http_bodies;
pub mod stream_record;
pub mod ws_message;

/// The one current-thread runtime the async entry points run on (the authorizer, the Router).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
}

/// The entry function of a fuzz target: one input, panicking on a finding.
pub type Entry = fn(&[u8]);

/// Every fuzz target: its name (the file `fuzz/fuzz_targets/{name}.rs` and the corpus folder
/// `fuzz/corpus/{name}/`) and its entry function.
pub const TARGETS: [(&str, Entry); 4] = [
    ("ws_message", ws_message::run),
    ("stream_record", stream_record::run),
    ("authorizer_token", authorizer_token::run),
    ("http_bodies", http_bodies::run),
];
