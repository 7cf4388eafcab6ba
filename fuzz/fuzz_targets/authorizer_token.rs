//! `authorizer_token`: see `rnd_fuzz_entries::authorizer_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rnd_fuzz_entries::authorizer_token::run(data));
