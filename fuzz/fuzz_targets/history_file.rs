//! Fuzz target `history_file`: the body is `pypowerwall_server::fuzzing::history_file` (replayed by tests/fuzz_replay.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pypowerwall_server::fuzzing::history_file(data));
