//! `ws_message`: see `rnd_fuzz_entries::ws_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rnd_fuzz_entries::ws_message::run(data));
