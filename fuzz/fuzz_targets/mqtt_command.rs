//! Fuzz target `mqtt_command`: the body is `pypowerwall_server::fuzzing::mqtt_command` (replayed by tests/fuzz_replay.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pypowerwall_server::fuzzing::mqtt_command(data));
