//! `http_bodies`: see `rnd_fuzz_entries::http_bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rnd_fuzz_entries::http_bodies::run(data));
