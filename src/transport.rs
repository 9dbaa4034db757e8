//! Builds the transport of a configured gateway: the one place that knows every mode.
//!
//! It sits above `gateway` and `cloud` (the cloud source implements `gateway::source::Source`),
//! so neither of them needs the other's constructors and `config` ↔ `gateway` ↔ `cloud` has no
//! circle. **Invariant:** only the poller calls [`build`], once per gateway thread.

#[cfg(not(feature = "v1r"))]
use std::time::Duration;

use crate::config::{GatewayConfig, Mode};
#[cfg(not(feature = "v1r"))]
use crate::gateway::facade::Facade;
use crate::gateway::source::{self, Source};
#[cfg(not(feature = "v1r"))]
use crate::wire::Error;

/// The transport for a configured gateway.
pub fn build(cfg: &GatewayConfig) -> Box<dyn Source> {
    match cfg.mode {
        Mode::Tedapi => Box::new(source::Tedapi::new(cfg.clone())),
        Mode::Local | Mode::Hybrid => Box::new(crate::gateway::local::Local::new(cfg.clone())),
        Mode::Auto => Box::new(crate::gateway::local::Auto::new(cfg.clone())),
        Mode::Cloud | Mode::FleetApi => Box::new(crate::cloud::source::Cloud::new(cfg.clone())),
        #[cfg(feature = "v1r")]
        Mode::V1r | Mode::V1rWifi => Box::new(crate::gateway::v1r::V1r::new(cfg.clone())),
        #[cfg(not(feature = "v1r"))]
        Mode::V1r | Mode::V1rWifi => Box::new(Unsupported("v1r (cargo feature `v1r`)")),
    }
}

/// A mode this build was compiled without: every poll fails, naming what is missing.
#[cfg(not(feature = "v1r"))]
struct Unsupported(&'static str);

#[cfg(not(feature = "v1r"))]
impl Source for Unsupported {
    fn poll(&mut self) -> Result<Facade, Error> {
        Err(Error::Unreachable(format!(
            "this build has no {} support",
            self.0
        )))
    }
    fn cooldown_remaining(&self) -> Option<Duration> {
        None
    }
    fn mode(&self) -> &'static str {
        "v1r"
    }
}
