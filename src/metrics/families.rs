//! Every metric family, once: name, type and help text ([`FAMILIES`] is what `/metrics` and
//! the README list are checked against).

/// Metric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Samples are `<name>_total`.
    Counter,
    /// Samples are `<name>_bucket`, `<name>_sum`, `<name>_count`.
    Histogram,
    /// A constant 1 carrying labels; the sample is `<name>_info` (a gauge in 0.0.4).
    Info,
}

/// One metric family: its name (without `_total`/`_info`), type and help text.
#[derive(Debug)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn def(name: &'static str, kind: Kind, help: &'static str) -> Def {
    Def { name, kind, help }
}

use Kind::{Counter, Gauge, Histogram, Info};

// Per gateway: health (always present).
pub static GATEWAY_INFO: Def = def("powerwall_gateway", Info, "Gateway description: configured name, transport mode, model (pw2 or pw3) and firmware of the last good poll");
pub static GATEWAY_STATE: Def = def(
    "powerwall_gateway_state",
    Gauge,
    "Poller state, one-hot over connecting, online, stale, offline, cooldown",
);
pub static LAST_SUCCESS: Def = def(
    "powerwall_last_success_timestamp_seconds",
    Gauge,
    "Unix time of the last successful poll",
);
pub static FAILURES: Def = def(
    "powerwall_poll_consecutive_failures",
    Gauge,
    "Poll attempts failed in a row (0 after a success)",
);
pub static POLLS: Def = def(
    "powerwall_polls",
    Counter,
    "Poll attempts by result (success or failure)",
);
pub static POLL_DURATION: Def = def(
    "powerwall_poll_duration_seconds",
    Histogram,
    "Duration of one poll attempt (all gateway requests of a tick)",
);
// Per gateway: data (only while the gateway's data is fresh).
pub static POWER: Def = def(
    "powerwall_power_watts",
    Gauge,
    "Instant power by meter in W (site > 0 importing, battery > 0 discharging), as /aggregates",
);
pub static SOE: Def = def(
    "powerwall_soe_percent",
    Gauge,
    "Battery state of energy, raw gateway scale in % (as /soe)",
);
pub static SOE_APP: Def = def(
    "powerwall_soe_app_percent",
    Gauge,
    "Battery state of energy on the Tesla app scale in % (as /api/system_status/soe)",
);
pub static RESERVE: Def = def(
    "powerwall_backup_reserve_percent",
    Gauge,
    "Backup reserve on the Tesla app scale in %",
);
pub static GRID_UP: Def = def(
    "powerwall_grid_up",
    Gauge,
    "1 when the grid is connected (grid status UP), 0 when down or syncing",
);
pub static ISLAND_STATE: Def = def("powerwall_island_state", Gauge, "Island state of the system (SystemGridConnected, SystemIslandedActive, ...), one-hot; unknown states are state=\"other\"");
pub static TIME_REMAINING: Def = def(
    "powerwall_time_remaining_seconds",
    Gauge,
    "Backup time left at the current load",
);
pub static ENERGY_REMAINING: Def = def(
    "powerwall_energy_remaining_watthours",
    Gauge,
    "Nominal energy remaining in all batteries in Wh",
);
pub static FULL_PACK: Def = def(
    "powerwall_full_pack_energy_watthours",
    Gauge,
    "Nominal full-pack energy of all batteries in Wh",
);
pub static IMPORTED: Def = def(
    "powerwall_energy_imported_watthours",
    Counter,
    "Lifetime energy imported by meter in Wh (site: from the grid; battery: charged)",
);
pub static EXPORTED: Def = def("powerwall_energy_exported_watthours", Counter, "Lifetime energy exported by meter in Wh (site: to the grid; battery: discharged; solar: produced)");
pub static METER_VOLTAGE: Def = def(
    "powerwall_meter_voltage_volts",
    Gauge,
    "Average voltage by meter in V",
);
pub static BATTERY_REMAINING: Def = def(
    "powerwall_battery_energy_remaining_watthours",
    Gauge,
    "Nominal energy remaining per Powerwall in Wh",
);
pub static BATTERY_FULL: Def = def(
    "powerwall_battery_full_pack_energy_watthours",
    Gauge,
    "Nominal full-pack energy (capacity) per Powerwall in Wh",
);
pub static BATTERY_POWER: Def = def(
    "powerwall_battery_power_watts",
    Gauge,
    "Inverter output power per Powerwall in W",
);
pub static BATTERY_FREQUENCY: Def = def(
    "powerwall_battery_frequency_hertz",
    Gauge,
    "Inverter output frequency per Powerwall in Hz",
);
pub static BATTERY_VOLTAGE: Def = def(
    "powerwall_battery_voltage_volts",
    Gauge,
    "Inverter output voltage per Powerwall in V",
);
pub static BATTERY_TEMPERATURE: Def = def(
    "powerwall_battery_temperature_celsius",
    Gauge,
    "Battery temperature per Powerwall in degrees Celsius",
);
pub static STRING_VOLTAGE: Def = def(
    "powerwall_solar_string_voltage_volts",
    Gauge,
    "Solar string voltage in V",
);
pub static STRING_CURRENT: Def = def(
    "powerwall_solar_string_current_amperes",
    Gauge,
    "Solar string current in A",
);
pub static STRING_POWER: Def = def(
    "powerwall_solar_string_power_watts",
    Gauge,
    "Solar string power in W",
);
pub static STRING_CONNECTED: Def = def(
    "powerwall_solar_string_connected",
    Gauge,
    "1 when the solar string is connected",
);
pub static ALERTS: Def = def("powerwall_alerts_active", Gauge, "Number of active alerts");
pub static ALERT: Def = def(
    "powerwall_alert_active",
    Gauge,
    "1 for each active alert (at most 64 per gateway; names outside [A-Za-z0-9_] are skipped)",
);
pub static ISLAND_FREQUENCY: Def = def(
    "powerwall_island_frequency_hertz",
    Gauge,
    "Frequency per phase on the main (grid) and load side of the island contactor in Hz",
);
pub static ISLAND_VOLTAGE: Def = def(
    "powerwall_island_voltage_volts",
    Gauge,
    "Line-to-neutral voltage per phase on the main (grid) and load side in V",
);
// Over all gateways with fresh data.
pub static AGG_POWER: Def = def(
    "powerwall_aggregate_power_watts",
    Gauge,
    "Instant power by meter summed over gateways with fresh data in W (as /api/aggregate/power)",
);
pub static AGG_REMAINING: Def = def(
    "powerwall_aggregate_energy_remaining_watthours",
    Gauge,
    "Nominal energy remaining summed over gateways in Wh (as /api/aggregate/soe)",
);
pub static AGG_FULL: Def = def(
    "powerwall_aggregate_full_pack_energy_watthours",
    Gauge,
    "Nominal full-pack energy summed over gateways in Wh (as /api/aggregate/soe)",
);
pub static AGG_SOE: Def = def(
    "powerwall_aggregate_soe_percent",
    Gauge,
    "State of energy of all gateways weighted by full-pack energy, raw scale in %",
);
pub static AGG_CONTRIBUTORS: Def = def(
    "powerwall_aggregate_contributors",
    Gauge,
    "Gateways whose fresh data is in the aggregate",
);
// The server itself.
pub static BUILD_INFO: Def = def("pypowerwall_server_build", Info, "Server version");
pub static START_TIME: Def = def(
    "pypowerwall_server_start_time_seconds",
    Gauge,
    "Unix time the server started",
);
pub static UPTIME: Def = def(
    "pypowerwall_server_uptime_seconds",
    Gauge,
    "Seconds since the server started",
);
pub static HTTP_REQUESTS: Def = def("pypowerwall_server_http_requests", Counter, "HTTP requests answered, by route family of the route table (static: UI files and not found; other: unknown POST, OPTIONS, other methods) and status class");
pub static WS_CLIENTS: Def = def(
    "pypowerwall_server_websocket_clients",
    Gauge,
    "Connected WebSocket clients",
);

/// Every family this module can emit, in output order (README documents each).
pub static FAMILIES: &[&Def] = &[
    &GATEWAY_INFO,
    &GATEWAY_STATE,
    &LAST_SUCCESS,
    &FAILURES,
    &POLLS,
    &POLL_DURATION,
    &POWER,
    &SOE,
    &SOE_APP,
    &RESERVE,
    &GRID_UP,
    &ISLAND_STATE,
    &TIME_REMAINING,
    &ENERGY_REMAINING,
    &FULL_PACK,
    &IMPORTED,
    &EXPORTED,
    &METER_VOLTAGE,
    &BATTERY_REMAINING,
    &BATTERY_FULL,
    &BATTERY_POWER,
    &BATTERY_FREQUENCY,
    &BATTERY_VOLTAGE,
    &BATTERY_TEMPERATURE,
    &STRING_VOLTAGE,
    &STRING_CURRENT,
    &STRING_POWER,
    &STRING_CONNECTED,
    &ALERTS,
    &ALERT,
    &ISLAND_FREQUENCY,
    &ISLAND_VOLTAGE,
    &AGG_POWER,
    &AGG_REMAINING,
    &AGG_FULL,
    &AGG_SOE,
    &AGG_CONTRIBUTORS,
    &BUILD_INFO,
    &START_TIME,
    &UPTIME,
    &HTTP_REQUESTS,
    &WS_CLIENTS,
];
