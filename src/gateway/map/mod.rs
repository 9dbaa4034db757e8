//! The mapping from raw TEDAPI gateway documents to the pypowerwall-shaped [`Facade`].
//!
//! Why it exists: the legacy proxy's clients see what pypowerwall 0.22.2 computes from the TEDAPI
//! documents, down to key order, float bits and which value is `null`. Each submodule mirrors one
//! part of the library and follows its order of operations, so the answers are byte-identical
//! (see the golden tests in `tests.rs`).
//!
//! **Invariant:** pure functions over [`TedapiData`]; no I/O, no clock, no global state, and no
//! panic on any input. Every gateway document may be missing, `null`, the wrong type or
//! garbage-shaped: where the library would return `None` *or raise*, the facade holds `None` /
//! `Null` for that piece (the `py::Raise` convention) and everything else is still computed.
//!
//! Deliberately not here (stateful in the library): the `start_time` hold across one gateway
//! boot and the "last non-empty git hash" fallback of `/api/status`, and the native-aggregates
//! cache/backoff. The transport or poller owns that state.
//!
//! Known limits: a value the library would compute as a Python int beyond `i64` makes that piece
//! `None`; the facade's string fields (`mode`, `din`, `version`, `uptime`, `site_name`) are
//! `None` when the gateway sends a non-string there; `reserve` 0 is the library's int `0`.

mod aggregates;
mod clock;
mod local;
mod meters;
mod pw3;
mod py;
mod system;
pub mod v2026;
mod views;
mod vitals;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::gateway::facade::{Facade, TedapiRaw};
use crate::gateway::{Firmware, TedapiData};
use crate::json::{Map, Packed, Value};

pub use aggregates::compute_ll_voltage;
pub use clock::go_duration;
pub use local::{decode_vitals, local, vitals_map, LocalData};
pub use system::{boot_hold, BootHold};

use py::{Py, NONE};

/// The `VITALS.pyPowerwall` version string of the library we reproduce.
pub const PYPOWERWALL_VERSION: &str = "0.22.2";

/// The gateway documents as the library's getters return them (`None` = `Null`).
pub(crate) struct Src<'a> {
    pub config: &'a Value,
    pub status: &'a Value,
    pub controller: &'a Value,
    pub components: &'a Value,
    pub batteries: &'a [(String, Value)],
    pub firmware: Option<&'a Firmware>,
    pub native: &'a Value,
    pub host: &'a str,
    pub timestamp: f64,
    pub pw3: bool,
    pub boot: Option<BootHold>,
}

impl<'a> Src<'a> {
    /// `components`: the gateway's components document unpacked (read for a Powerwall 3 only).
    fn new(d: &'a TedapiData, components: Option<&'a Value>) -> Src<'a> {
        fn doc(v: &Option<Arc<Value>>) -> &Value {
            v.as_deref().unwrap_or(&NONE)
        }
        Src {
            config: doc(&d.config),
            status: doc(&d.status),
            controller: doc(&d.controller),
            components: components.unwrap_or(&NONE),
            batteries: &d.battery_components,
            firmware: d.firmware.as_ref(),
            native: d.native_aggregates.as_ref().unwrap_or(&NONE),
            host: &d.host,
            timestamp: d.timestamp,
            pw3: d.pw3,
            boot: d.boot,
        }
    }
}

/// Values shared by several facade calls, computed once (the library caches them per tick).
pub(crate) struct Derived {
    /// `get_pw3_vitals()`: `None` when not a PW3, on failure, or without components.
    pub pw3: Option<Map>,
    /// `TEDAPI.vitals()`; `Err` when it would raise.
    pub vitals: Py<Option<Map>>,
}

/// Maps one gateway's documents to every facade value.
pub fn tedapi(data: &TedapiData) -> Facade {
    mapped(data, data)
}

/// [`tedapi`] of `data`, with `/tedapi/*`'s raw documents from `sent` (v2026 maps reshaped
/// documents but serves the gateway's own).
pub(crate) fn mapped(data: &TedapiData, sent: &TedapiData) -> Facade {
    let components = data
        .components
        .as_deref()
        .filter(|_| data.pw3)
        .map(Packed::value);
    let src = Src::new(data, components.as_ref());
    let pw3 = if src.pw3 { pw3::vitals(&src) } else { None };
    let vitals = vitals::vitals(&src, pw3.as_ref());
    let d = Derived { pw3, vitals };

    let soe = system::soe(&src);
    let status = system::api_status(&src);
    let system_status = system::system_status(&src, &d);
    let operation = system::operation(&src);
    let grid_status = system::grid_status_api(&src);

    let mut api: Vec<(String, Arc<Value>)> = Vec::new();
    let mut put = |uri: &str, v: Py<Option<Value>>| {
        api.push((
            uri.to_string(),
            Arc::new(v.ok().flatten().unwrap_or(Value::Null)),
        ));
    };
    put("/api/devices/vitals", Ok(None));
    put("/api/meters/aggregates", aggregates::aggregates(&src, &d));
    put("/api/operation", operation.clone());
    put("/api/site_info", system::site_info(&src));
    put("/api/site_info/site_name", system::site_name_api(&src));
    put("/api/status", status.clone());
    put("/api/system_status", system_status.clone());
    put("/api/system_status/grid_status", grid_status.clone());
    put("/api/system_status/soe", soe.clone());
    api.extend(canned().iter().map(|(uri, v)| (uri.to_string(), v.clone())));
    api.extend(
        UNKNOWN_ALLOWLISTED
            .iter()
            .map(|uri| (uri.to_string(), Arc::new(unknown_api(uri)))),
    );

    Facade {
        api,
        level: views::level(&soe),
        grid_status: grid_status.clone().ok().flatten(),
        strings: views::strings(&d.vitals, false).ok(),
        strings_verbose: views::strings(&d.vitals, true).ok(),
        temps: views::temps(&d.vitals).ok(),
        alerts: views::alerts(&d.vitals, &grid_status).ok(),
        fans: views::fans(&src, &d).ok(),
        battery_blocks: views::battery_blocks(&system_status, &d.vitals)
            .ok()
            .flatten(),
        reserve: views::reserve(&operation),
        mode: views::mode(&operation),
        grid_charging: views::grid_charging(src.config),
        grid_export: views::grid_export(src.config),
        time_remaining: views::time_remaining(&src),
        version: views::status_str(&status, "version"),
        din: views::status_str(&status, "din"),
        uptime: views::status_str(&status, "up_time_seconds"),
        site_name: views::site_name(&src),
        status: status.ok().flatten(),
        system_status: system_status.ok().flatten(),
        tedapi: Some(raw(sent)),
        pw3: data.pw3,
        vitals: d
            .vitals
            .ok()
            .flatten()
            .map(|m| Packed::new(&Value::Object(m))),
    }
}

/// The raw documents `/tedapi/*` serve, as the gateway sent them.
fn raw(data: &TedapiData) -> TedapiRaw {
    TedapiRaw {
        config: data.config.clone(),
        status: data.status.as_deref().map(Packed::new),
        components: data.components.clone(),
        controller: data.controller.as_deref().map(Packed::new),
    }
}

/// `{"ERROR": "Unknown API: <uri>"}`: what `poll()` returns for a URI outside its table.
pub fn unknown_api(uri: &str) -> Value {
    Value::Object(Map::new().with("ERROR", format!("Unknown API: {uri}")))
}

/// Proxy-allowlisted URIs that the TEDAPI poll table does not know.
const UNKNOWN_ALLOWLISTED: &[&str] = &["/api/system/networks"];

/// Data-independent answers of the TEDAPI poll table (upstream `mock_data.py` and handlers).
fn canned() -> &'static [(&'static str, Arc<Value>)] {
    static CANNED: std::sync::OnceLock<Vec<(&'static str, Arc<Value>)>> =
        std::sync::OnceLock::new();
    CANNED.get_or_init(parse_canned)
}

fn parse_canned() -> Vec<(&'static str, Arc<Value>)> {
    const FILES: &[(&str, &str)] = &[
        (
            "/api/login/Basic",
            include_str!("../canned/handlers/api.login.Basic.json"),
        ),
        (
            "/api/logout",
            include_str!("../canned/handlers/api.logout.json"),
        ),
        (
            "/api/auth/toggle/supported",
            include_str!("../canned/handlers/api.auth.toggle.supported.json"),
        ),
        (
            "/api/customer",
            include_str!("../canned/handlers/api.customer.json"),
        ),
        (
            "/api/customer/registration",
            include_str!("../canned/handlers/api.customer.registration.json"),
        ),
        (
            "/api/installer",
            include_str!("../canned/handlers/api.installer.json"),
        ),
        (
            "/api/meters",
            include_str!("../canned/handlers/api.meters.json"),
        ),
        (
            "/api/meters/readings",
            include_str!("../canned/handlers/api.meters.readings.json"),
        ),
        (
            "/api/meters/site",
            include_str!("../canned/handlers/api.meters.site.json"),
        ),
        (
            "/api/meters/solar",
            include_str!("../canned/handlers/api.meters.solar.json"),
        ),
        (
            "/api/networks",
            include_str!("../canned/handlers/api.networks.json"),
        ),
        (
            "/api/powerwalls",
            include_str!("../canned/handlers/api.powerwalls.json"),
        ),
        (
            "/api/site_info/grid_codes",
            include_str!("../canned/handlers/api.site_info.grid_codes.json"),
        ),
        (
            "/api/sitemaster",
            include_str!("../canned/handlers/api.sitemaster.json"),
        ),
        (
            "/api/solar_powerwall",
            include_str!("../canned/handlers/api.solar_powerwall.json"),
        ),
        (
            "/api/solars",
            include_str!("../canned/handlers/api.solars.json"),
        ),
        (
            "/api/solars/brands",
            include_str!("../canned/handlers/api.solars.brands.json"),
        ),
        (
            "/api/synchrometer/ct_voltage_references",
            include_str!("../canned/handlers/api.synchrometer.ct_voltage_references.json"),
        ),
        (
            "/api/system/update/status",
            include_str!("../canned/handlers/api.system.update.status.json"),
        ),
        (
            "/api/system_status/grid_faults",
            include_str!("../canned/handlers/api.system_status.grid_faults.json"),
        ),
        (
            "/api/troubleshooting/problems",
            include_str!("../canned/handlers/api.troubleshooting.problems.json"),
        ),
        (
            "/api/tesla/tariff_rate",
            include_str!("../canned/mock_data/TESLA_TARIFF_RATE.json"),
        ),
    ];
    // The files are fixed build inputs; the golden tests parse every one, so `Null` never shows.
    FILES
        .iter()
        .map(|(uri, text)| {
            let v = crate::json::parse(text).unwrap_or(Value::Null);
            (*uri, Arc::new(v))
        })
        .collect()
}
