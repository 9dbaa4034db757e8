//! pypowerwall-server: watches Tesla Powerwall gateways and serves their data.
//!
//! See `ARCHITECTURE.md` for the data flow. In short: `gateway` fetches and maps, `poll` runs one
//! thread per gateway and swaps immutable `snapshot`s, `http` serves from the latest snapshot,
//! `sim` is a wire-compatible gateway simulator, `app` wires them together.

pub mod app;
pub mod atomic;
pub mod clock;
pub mod cloud;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod history;
pub mod http;
pub mod json;
pub mod metrics;
pub mod mqtt;
pub mod poll;
pub mod render;
pub mod secret;
pub mod sim;
pub mod snapshot;
pub mod transport;
pub mod wire;
