//! Fuzz target `schema`: see `regie_fuzz_harness::schema` for what it feeds where and what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| regie_fuzz_harness::schema(data));
