//! Fuzz target `http`: the body is `pypowerwall_server::fuzzing::http` (replayed by tests/fuzz_replay.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pypowerwall_server::fuzzing::http(data));
