//! The gateway's answers in the shape of pypowerwall's library calls, computed once per tick.
//!
//! The legacy proxy (`proxy/server.py`) is a thin layer over the pypowerwall library: every route
//! calls `pw.level()`, `pw.vitals()`, `pw.poll("/api/...")` and so on. We keep that split. A
//! transport (TEDAPI today; local, v1r and cloud later) fetches raw gateway data, a mapping turns
//! it into one [`Facade`] — the value each library call would have returned — and `http/legacy`
//! shapes routes from it exactly as the proxy does. Each mapping is written once, here or in
//! `gateway/map`, never in the route code.
//!
//! `None` / `Value::Null` mean what Python's `None` means for that call.

use std::sync::Arc;

use crate::json::{Packed, Value};

/// Raw TEDAPI documents, as last fetched (served by `/tedapi/*`). The slowly refreshed ones
/// are shared with the transport, which keeps them parsed between ticks; the two answers of
/// every tick are kept packed (a sixth of their tree) until a `/tedapi/*` route asks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TedapiRaw {
    pub config: Option<Arc<Value>>,
    pub status: Option<Packed>,
    pub components: Option<Arc<Packed>>,
    pub controller: Option<Packed>,
}

/// What each pypowerwall facade call returns for one gateway at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facade {
    /// `pw.poll(uri)` for the gateway `/api/*` URIs (the 26 allowlisted ones plus
    /// `/api/meters/aggregates` and `/api/system_status/soe`), in the backend's own shape.
    /// A URI that is absent or `Null` means the library returned `None`. Shared: the
    /// data-independent documents are parsed once per process, not once per gateway and tick.
    pub api: Vec<(String, Arc<Value>)>,
    /// `pw.level()`: raw state of energy in percent (includes Tesla's hidden 5 %).
    pub level: Option<f64>,
    /// `pw.grid_status("json")` as an object `{grid_status, grid_services_active}`.
    pub grid_status: Option<Value>,
    /// `pw.vitals()`: device name → block, in insertion order. Packed: the largest document
    /// (a 9 KB text, a 38 KB tree), read only by a few routes, `/metrics` and MQTT; `Facade::vitals`.
    pub vitals: Option<Packed>,
    /// `pw.strings(jsonformat=True)` before serialisation: `{"A": {Current, Power, Voltage, State, Connected}}`.
    pub strings: Option<Value>,
    /// `pw.strings(verbose=True)`: per-PVAC verbose object (`/pw/strings`).
    pub strings_verbose: Option<Value>,
    /// `pw.temps()`: `TETHC--…` (or PW3 `TEPOD--…`) → temperature.
    pub temps: Option<Value>,
    /// `pw.alerts()`: alert names in a stable order (the proxy's order is a Python set's).
    pub alerts: Option<Vec<String>>,
    /// `pw.tedapi.get_fan_speeds()` (`None` when TEDAPI is not in use).
    pub fans: Option<Value>,
    /// `pw.system_status()` (the `/api/system_status` object).
    pub system_status: Option<Value>,
    /// `pw.battery_blocks()`: serial → block fields + `THC_State`, `temperature`.
    pub battery_blocks: Option<Value>,
    /// `pw.get_reserve()`: backup reserve on the app scale.
    pub reserve: Option<f64>,
    /// `pw.get_mode()`: `self_consumption`, `backup`, `autonomous`.
    pub mode: Option<String>,
    /// `pw.get_grid_charging()`: charging from the grid allowed (cloud modes only).
    pub grid_charging: Option<bool>,
    /// `pw.get_grid_export()`: `battery_ok`, `pv_only` or `never` (cloud modes only).
    pub grid_export: Option<String>,
    /// `pw.get_time_remaining()`: hours of backup left.
    pub time_remaining: Option<f64>,
    /// `pw.version()`: firmware version text (`Some("")` is not `None`).
    pub version: Option<String>,
    /// `pw.din()`.
    pub din: Option<String>,
    /// `pw.uptime()`.
    pub uptime: Option<String>,
    /// `pw.site_name()`.
    pub site_name: Option<String>,
    /// `pw.status()` (the `/api/status` object).
    pub status: Option<Value>,
    /// Raw TEDAPI documents when the TEDAPI transport is in use.
    pub tedapi: Option<TedapiRaw>,
    /// The gateway is a Powerwall 3 (`GET /` answered non-200).
    pub pw3: bool,
}

impl Facade {
    /// `pw.vitals()`, unpacked.
    pub fn vitals(&self) -> Option<Value> {
        self.vitals.as_ref().map(Packed::value)
    }

    /// `pw.poll(uri)`; `None` when the library would return `None`.
    pub fn api(&self, uri: &str) -> Option<&Value> {
        self.api
            .iter()
            .find(|(k, _)| k == uri)
            .map(|(_, v)| &**v)
            .filter(|v| !v.is_null())
    }
}
