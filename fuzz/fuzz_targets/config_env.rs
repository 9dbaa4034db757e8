//! Fuzz target `config_env`: the body is `pypowerwall_server::fuzzing::config_env` (replayed by tests/fuzz_replay.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pypowerwall_server::fuzzing::config_env(data));
