#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certgate_fuzz::vault_responses::run(data));
