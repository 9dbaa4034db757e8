//! Everything that talks to or about a Tesla gateway: wire formats, transports, and the mapping
//! from gateway documents to the pypowerwall-shaped [`facade::Facade`].
//!
//! Data flow: a transport (`tedapi`) fetches raw documents into [`TedapiData`]; `map` turns them
//! into a [`facade::Facade`]; nothing here knows about HTTP routes.

pub mod facade;
pub mod local;
pub mod map;
pub mod native;
pub mod proto;
pub mod queries;
pub mod source;
pub mod tedapi;
#[cfg(feature = "v1r")]
pub mod v1r;
pub mod vitals_pb;

/// The gateway TLS policy lives with the other wire plumbing.
pub use crate::wire::tls;

use std::sync::Arc;

use crate::json::{Packed, Value};

/// pypowerwall's `parse_version` (firmware version → integer): digits of the first word, three fields, `major·10000 + minor·100 + patch`.
pub fn parse_version(version: &str) -> Option<i64> {
    let first = version.split(' ').next().unwrap_or("");
    let mut val: String = first
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | '/' | '\\'))
        .collect();
    while val.split('.').count() < 3 {
        val.push_str(".0");
    }
    let mut total: i64 = 0;
    for part in val.split('.') {
        let n: i64 = if part.is_empty() || !part.chars().all(|c| c.is_ascii_digit()) {
            return None;
        } else {
            part.parse().ok()?
        };
        total = total.checked_mul(100)?.checked_add(n)?;
    }
    Some(total)
}

/// The firmware (system-info) answer. A gateway that answers the firmware request without a
/// system-info part gives `version == ""` (pypowerwall reports `""`, not `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Firmware {
    pub version: String,
    pub githash: Vec<u8>,
    pub part_number: String,
    pub serial_number: String,
    pub din: String,
    pub device_type: Option<i32>,
}

/// Raw documents fetched from one TEDAPI gateway; the input of `map::tedapi`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TedapiData {
    /// `host[:port]` as configured (shown as `VITALS.gateway`).
    pub host: String,
    /// Gateway DIN from `GET /tedapi/din`.
    pub din: String,
    /// `GET /` answered non-200 (and not 429/5xx).
    pub pw3: bool,
    /// `config.json` from the FileStore read.
    pub config: Option<Arc<Value>>,
    /// `device_controller_basic` query answer.
    pub status: Option<Arc<Value>>,
    /// `device_controller_full` query answer.
    pub controller: Option<Arc<Value>>,
    /// `components` query answer from the gateway itself (`/tedapi/components`), packed: it
    /// is kept between refreshes and read by the Powerwall 3 mapping only (unpacked per tick).
    pub components: Option<Arc<Packed>>,
    /// PW3: ComponentsQuery answer per battery DIN, in `config.battery_blocks` order.
    pub battery_components: Vec<(String, Value)>,
    /// System-info answer; `None` when the request failed.
    pub firmware: Option<Firmware>,
    /// The gateway's own REST `/api/meters/aggregates` (customer login), when it answered.
    pub native_aggregates: Option<Value>,
    /// Unix time of the fetch (`VITALS.timestamp`).
    pub timestamp: f64,
    /// The gateway's start time held for this boot (`map::boot_hold`), when known.
    pub boot: Option<map::BootHold>,
}
