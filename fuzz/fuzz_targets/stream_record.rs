//! `stream_record`: see `rnd_fuzz_entries::stream_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rnd_fuzz_entries::stream_record::run(data));
