//! Fuzz target `receive`: see `regie_fuzz_harness::receive` for what it feeds where and what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| regie_fuzz_harness::receive(data));
