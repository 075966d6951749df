#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certgate_fuzz::jws::body(data));
