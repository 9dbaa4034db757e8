//! Fuzz target `map`: the body is `pypowerwall_server::fuzzing::map` (replayed by tests/fuzz_replay.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pypowerwall_server::fuzzing::map(data));
