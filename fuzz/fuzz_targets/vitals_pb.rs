//! Fuzz target `vitals_pb`: the body is `pypowerwall_server::fuzzing::vitals_pb` (replayed by tests/fuzz_replay.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pypowerwall_server::fuzzing::vitals_pb(data));
