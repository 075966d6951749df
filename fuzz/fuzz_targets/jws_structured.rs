#![no_main]

use certgate_fuzz::jws_structured::{run, Input};

libfuzzer_sys::fuzz_target!(|input: Input| run(input));
