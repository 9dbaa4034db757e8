//! Cloud documents → [`Facade`]: what pypowerwall 0.22.2 returns in cloud (Owner API) and
//! FleetAPI mode, computed from `live_status`, `site_info`, `site_status` and
//! `backup_time_remaining` (spec `gateway-protocols.md` §5).
//!
//! Pure: no I/O, no clock (the caller passes the time), no panic on any document shape.
//! Known limits: the mock `/api/*` answers of pypowerwall's cloud mode (customer, installer,
//! meters, …) are not reproduced (they answer `null`); `strings`, `temps` are empty and `fans`
//! absent, as the cloud has no per-device data.

use std::sync::Arc;

use crate::gateway::facade::Facade;
use crate::json::{Map, Packed, Value};

/// What one cloud poll fetched (each the `response` object of its endpoint).
#[derive(Debug, Clone, Default)]
pub struct CloudData {
    /// FleetAPI rules (soe from live status; grid status from `grid_status` only).
    pub fleet: bool,
    pub live: Value,
    pub site_info: Value,
    /// Owner API `site_status` (battery summary); `None` when it failed or for FleetAPI.
    pub site_status: Option<Value>,
    pub time_remaining: Option<f64>,
    /// Unix time of the poll (`lastCommunicationTime` of the simulated vitals block).
    pub now: i64,
}

fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    v.get(key).unwrap_or(&NULL)
}

/// Python's `x or 0` for a number.
fn or_zero(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn app_to_raw(percent: f64) -> f64 {
    (percent + (5.0 / 0.95)) * 0.95
}

fn grid_connected_text(live: &Value) -> bool {
    match get(live, "grid_status") {
        Value::Str(s) if s.is_empty() => true,
        Value::Str(s) => s == "Active" || s == "Unknown",
        v => !v.truthy(),
    }
}

fn meter_template(timeout: i64, total_current: Value, with_count: bool) -> Map {
    let mut m = Map::new()
        .with("last_communication_time", Value::Null)
        .with("instant_power", Value::Null)
        .with("instant_reactive_power", 0)
        .with("instant_apparent_power", 0)
        .with("frequency", 0)
        .with("energy_exported", 0)
        .with("energy_imported", 0)
        .with("instant_average_voltage", 0)
        .with("instant_average_current", 0)
        .with("i_a_current", 0)
        .with("i_b_current", 0)
        .with("i_c_current", 0)
        .with(
            "last_phase_voltage_communication_time",
            "0001-01-01T00:00:00Z",
        )
        .with(
            "last_phase_power_communication_time",
            "0001-01-01T00:00:00Z",
        )
        .with(
            "last_phase_energy_communication_time",
            "0001-01-01T00:00:00Z",
        )
        .with("timeout", timeout);
    if with_count {
        m.insert("num_meters_aggregated", Value::Null);
    }
    m.insert("instant_total_current", total_current);
    m
}

/// `/api/meters/aggregates`: pypowerwall's template with the live power flows.
pub fn aggregates(live: &Value, info: &Value) -> Value {
    let ts = get(live, "timestamp").clone();
    let inverters = info.path(&["components", "inverters"]);
    let solar_count: Value = match inverters {
        Some(Value::Array(a)) => Value::from(a.len()),
        Some(v) if !v.is_null() => Value::Null,
        _ if info
            .path(&["components", "solar"])
            .is_some_and(Value::truthy) =>
        {
            Value::Int(1)
        }
        _ => Value::Int(0),
    };
    let mut site = meter_template(1_500_000_000, Value::Null, true);
    site.insert("last_communication_time", ts.clone());
    site.insert("instant_power", get(live, "grid_power").clone());
    // The template's site meter counts 1; keep it.
    site.insert("num_meters_aggregated", 1);
    let mut battery = meter_template(1_500_000_000, Value::Int(0), true);
    battery.insert("last_communication_time", ts.clone());
    battery.insert("instant_power", get(live, "battery_power").clone());
    battery.insert("num_meters_aggregated", get(info, "battery_count").clone());
    let mut load = meter_template(1_500_000_000, Value::Int(0), false);
    load.insert("last_communication_time", ts.clone());
    load.insert("instant_power", get(live, "load_power").clone());
    let mut solar = meter_template(1_000_000_000, Value::Int(0), true);
    solar.insert("last_communication_time", ts);
    solar.insert("instant_power", get(live, "solar_power").clone());
    solar.insert("num_meters_aggregated", solar_count);
    Map::new()
        .with("site", site)
        .with("battery", battery)
        .with("load", load)
        .with("solar", solar)
        .into()
}

/// `/api/system_status/grid_status`.
pub fn grid_status(live: &Value) -> Value {
    let connected = grid_connected_text(live);
    Map::new()
        .with(
            "grid_status",
            if connected {
                "SystemGridConnected"
            } else {
                "SystemIslandedActive"
            },
        )
        .with(
            "grid_services_active",
            get(live, "grid_services_active").clone(),
        )
        .into()
}

/// `/api/operation` (reserve on the raw gateway scale).
pub fn operation(info: &Value) -> Value {
    Map::new()
        .with("real_mode", get(info, "default_real_mode").clone())
        .with(
            "backup_reserve_percent",
            app_to_raw(or_zero(get(info, "backup_reserve_percent"))),
        )
        .into()
}

/// `/api/status`: what the site API knows (no uptime, git hash or start time).
pub fn status(info: &Value) -> Value {
    Map::new()
        .with("din", get(info, "id").clone())
        .with("start_time", Value::Null)
        .with("up_time_seconds", Value::Null)
        .with("is_new", false)
        .with("version", get(info, "version").clone())
        .with("git_hash", Value::Null)
        .with("commission_count", 0)
        .with(
            "device_type",
            info.path(&["components", "gateway"])
                .cloned()
                .unwrap_or(Value::Null),
        )
        .with("teg_type", "unknown")
        .with("sync_type", "unknown")
        .with("cellular_disabled", false)
        .with("can_reboot", true)
        .with("installation_date", get(info, "installation_date").clone())
        .into()
}

/// `/api/site_info`.
pub fn site_info(info: &Value) -> Value {
    let kw = |k: &str| (or_zero(get(info, k)).trunc()) / 1000.0;
    let energy = kw("nameplate_energy");
    let power = kw("nameplate_power");
    Map::new()
        .with("max_system_energy_kWh", energy)
        .with("max_system_power_kW", power)
        .with("site_name", get(info, "site_name").clone())
        .with("timezone", get(info, "installation_time_zone").clone())
        .with(
            "max_site_meter_power_kW",
            get(info, "max_site_meter_power_ac").clone(),
        )
        .with(
            "min_site_meter_power_kW",
            get(info, "min_site_meter_power_ac").clone(),
        )
        .with("nominal_system_energy_kWh", energy)
        .with("nominal_system_power_kW", power)
        .with("panel_max_current", Value::Null)
        .with(
            "grid_code",
            Map::new()
                .with("grid_code", Value::Null)
                .with("grid_voltage_setting", Value::Null)
                .with("grid_freq_setting", Value::Null)
                .with("grid_phase_setting", Value::Null)
                .with("country", Value::Null)
                .with("state", Value::Null)
                .with(
                    "utility",
                    info.path(&["tariff_content", "utility"])
                        .cloned()
                        .unwrap_or(Value::Null),
                ),
        )
        .into()
}

/// `/api/system_status`: pypowerwall's stub with the values the cloud has.
pub fn system_status(live: &Value, info: &Value, battery: &Value, fleet: bool) -> Value {
    let islanded = if fleet {
        !grid_connected_text(live)
    } else {
        get(live, "island_status").as_str() != Some("on_grid")
            && !matches!(
                get(live, "grid_status").as_str(),
                Some("Active" | "Unknown")
            )
    };
    let nameplate = get(info, "nameplate_power").clone();
    let count = get(info, "battery_count").clone();
    Map::new()
        .with("command_source", "Configuration")
        .with("battery_target_power", 0)
        .with("battery_target_reactive_power", 0)
        .with(
            "nominal_full_pack_energy",
            get(battery, "total_pack_energy").clone(),
        )
        .with(
            "nominal_energy_remaining",
            get(battery, "energy_left").clone(),
        )
        .with("max_power_energy_remaining", 0)
        .with("max_power_energy_to_be_charged", 0)
        .with("max_charge_power", nameplate.clone())
        .with("max_discharge_power", nameplate.clone())
        .with("max_apparent_power", nameplate)
        .with("instantaneous_max_discharge_power", 0)
        .with("instantaneous_max_charge_power", 0)
        .with("instantaneous_max_apparent_power", 0)
        .with("hardware_capability_charge_power", 0)
        .with("hardware_capability_discharge_power", 0)
        .with(
            "grid_services_power",
            get(live, "grid_services_power").clone(),
        )
        .with(
            "system_island_state",
            if islanded {
                "SystemIslandedActive"
            } else {
                "SystemGridConnected"
            },
        )
        .with("available_blocks", count.clone())
        .with("available_charger_blocks", 0)
        .with("battery_blocks", Value::Array(Vec::new()))
        .with("ffr_power_availability_high", 0)
        .with("ffr_power_availability_low", 0)
        .with("load_charge_constraint", 0)
        .with("max_sustained_ramp_rate", 0)
        .with("grid_faults", Value::Array(Vec::new()))
        .with("can_reboot", "Yes")
        .with("smart_inv_delta_p", 0)
        .with("smart_inv_delta_q", 0)
        .with("last_toggle_timestamp", "2023-10-13T04:08:05.957195-07:00")
        .with("solar_real_power_limit", get(live, "solar_power").clone())
        .with("score", 10000)
        .with("blocks_controlled", count)
        .with("primary", true)
        .with("auxiliary_load", 0)
        .with("all_enable_lines_high", true)
        .with("inverter_nominal_usable_power", 0)
        .with("expected_energy_remaining", 0)
        .into()
}

/// The simulated `STSTSM--<din>` vitals block.
pub fn vitals(live: &Value, info: &Value, now: i64) -> Option<Value> {
    let din = get(info, "id").as_str()?;
    let parts: Vec<&str> = din.split("--").collect();
    let (part, serial) = match parts.as_slice() {
        [p, s] => (Value::from(*p), Value::from(*s)),
        _ => (Value::Null, Value::Null),
    };
    let alert = match get(live, "island_status").as_str() {
        Some("on_grid") => "SystemConnectedToGrid",
        Some("off_grid_intentional") => "ScheduledIslandContactorOpen",
        Some("off_grid") => "UnscheduledIslandContactorOpen",
        _ if matches!(
            get(live, "grid_status").as_str(),
            Some("Active" | "Unknown")
        ) =>
        {
            "SystemConnectedToGrid"
        }
        _ => "",
    };
    let name = format!(
        "STSTSM--{}--{}",
        part.as_str().unwrap_or("None"),
        serial.as_str().unwrap_or("None")
    );
    let alerts: Vec<Value> = if alert.is_empty() {
        Vec::new()
    } else {
        vec![Value::from(alert)]
    };
    let block = Map::new()
        .with("partNumber", part)
        .with("serialNumber", serial)
        .with("manufacturer", "Simulated")
        .with("firmwareVersion", get(info, "version").clone())
        .with("lastCommunicationTime", now)
        .with("teslaEnergyEcuAttributes", Map::new().with("ecuType", 207))
        .with("STSTSM-Location", "Simulated")
        .with("alerts", alerts);
    Some(Map::new().with(name, block).into())
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Every facade value of a cloud-mode gateway.
pub fn facade(d: &CloudData) -> Facade {
    let live = &d.live;
    let info = &d.site_info;
    // Owner API: the battery summary; FleetAPI (or a failed summary): the live status.
    let battery_src = match &d.site_status {
        Some(s) if !d.fleet => Some(s),
        _ => Some(live),
    }
    .filter(|b| b.as_object().is_some());
    let soe = battery_src.map(|b| {
        Value::from(Map::new().with(
            "percentage",
            app_to_raw(or_zero(get(b, "percentage_charged"))),
        ))
    });
    let grid = grid_status(live);
    let operation = operation(info);
    let status = status(info);
    let system_status = battery_src.map(|b| system_status(live, info, b, d.fleet));
    let vitals = vitals(live, info, d.now);

    let mut alerts: Vec<String> = Vec::new();
    if let Some(Value::Object(v)) = &vitals {
        for block in v.values() {
            for a in block
                .get("alerts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(s) = a.as_str() {
                    alerts.push(s.to_string());
                }
            }
        }
    }
    if grid.get("grid_services_active").is_some_and(Value::truthy) {
        alerts.push("GridServicesActive".into());
    } else if let Some(s) = grid.get("grid_status").and_then(Value::as_str) {
        alerts.push(s.to_string());
    }
    let mut alerts: Vec<String> = alerts
        .into_iter()
        .map(|a| a.replace("SystemGridConnected", "SystemConnectedToGrid"))
        .collect();
    alerts.sort();
    alerts.dedup();

    let reserve = operation
        .get("backup_reserve_percent")
        .and_then(Value::as_f64)
        .map(|p| (p / 0.95 - 5.0 / 0.95).max(0.0));
    let api = vec![
        ("/api/devices/vitals".to_string(), Value::Null),
        ("/api/meters/aggregates".to_string(), aggregates(live, info)),
        ("/api/operation".to_string(), operation.clone()),
        ("/api/site_info".to_string(), site_info(info)),
        (
            "/api/site_info/site_name".to_string(),
            Map::new()
                .with("site_name", get(info, "site_name").clone())
                .with("timezone", get(info, "installation_time_zone").clone())
                .into(),
        ),
        ("/api/status".to_string(), status.clone()),
        (
            "/api/system_status".to_string(),
            system_status.clone().unwrap_or(Value::Null),
        ),
        ("/api/system_status/grid_status".to_string(), grid.clone()),
        (
            "/api/system_status/soe".to_string(),
            soe.clone().unwrap_or(Value::Null),
        ),
    ];
    Facade {
        api: api.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        level: soe
            .as_ref()
            .and_then(|s| s.get("percentage"))
            .and_then(Value::as_f64),
        grid_status: Some(grid),
        vitals: vitals.as_ref().map(Packed::new),
        strings: Some(Value::object()),
        strings_verbose: Some(Value::object()),
        temps: Some(Value::object()),
        alerts: Some(alerts),
        fans: None,
        system_status,
        battery_blocks: Some(Value::object()),
        reserve,
        mode: text(info, "default_real_mode"),
        grid_charging: Some(
            !info
                .path(&[
                    "components",
                    "disallow_charge_from_grid_with_solar_installed",
                ])
                .is_some_and(Value::truthy),
        ),
        grid_export: Some(
            if info
                .path(&["components", "non_export_configured"])
                .is_some_and(Value::truthy)
            {
                "never".to_string()
            } else {
                info.path(&["components", "customer_preferred_export_rule"])
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("battery_ok")
                    .to_string()
            },
        ),
        time_remaining: d.time_remaining,
        version: text(info, "version"),
        din: text(info, "id"),
        uptime: None,
        site_name: text(info, "site_name"),
        status: Some(status),
        tedapi: None,
        pw3: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn data() -> CloudData {
        CloudData {
            fleet: false,
            live: parse(r#"{"solar_power": 1290, "percentage_charged": 82.5, "battery_power": -220, "load_power": 1070, "grid_status": "Active", "grid_services_active": false, "grid_power": 0, "island_status": "on_grid", "timestamp": "2023-12-17T14:23:31-08:00"}"#).unwrap(),
            site_info: parse(r#"{"id": "1232100-00-E--TG123", "site_name": "Home", "backup_reserve_percent": 20, "default_real_mode": "self_consumption", "version": "23.28.2 27626f98", "battery_count": 2, "nameplate_power": 10800, "nameplate_energy": 27000, "installation_time_zone": "America/Los_Angeles", "components": {"gateway": "teg", "solar": true}}"#).unwrap(),
            site_status: Some(parse(r#"{"percentage_charged": 82.5, "energy_left": 21000, "total_pack_energy": 27000}"#).unwrap()),
            time_remaining: Some(7.5),
            now: 1_700_000_000,
        }
    }

    #[test]
    fn live_status_maps_like_pypowerwall() {
        let f = facade(&data());
        let agg = f.api("/api/meters/aggregates").unwrap();
        assert_eq!(
            agg.path(&["solar", "instant_power"]),
            Some(&Value::Int(1290))
        );
        assert_eq!(
            agg.path(&["battery", "num_meters_aggregated"]),
            Some(&Value::Int(2))
        );
        assert_eq!(
            agg.path(&["solar", "num_meters_aggregated"]),
            Some(&Value::Int(1))
        );
        assert_eq!(f.level, Some((82.5 + 5.0 / 0.95) * 0.95));
        // 20 % on the app scale survives the round trip through the raw scale.
        assert!((f.reserve.unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(f.mode.as_deref(), Some("self_consumption"));
        assert_eq!(
            f.alerts.as_deref(),
            Some(&["SystemConnectedToGrid".to_string()][..])
        );
        let v = f.vitals().unwrap();
        assert!(v.get("STSTSM--1232100-00-E--TG123").is_some());
        assert_eq!(f.din.as_deref(), Some("1232100-00-E--TG123"));
    }

    #[test]
    fn islanded_and_garbage() {
        let mut d = data();
        d.live = parse(r#"{"grid_status": "Inactive", "island_status": "off_grid"}"#).unwrap();
        let f = facade(&d);
        assert_eq!(
            f.grid_status.unwrap().get("grid_status").unwrap().as_str(),
            Some("SystemIslandedActive")
        );
        let f = facade(&CloudData::default());
        assert!(f.vitals.is_none());
        assert_eq!(f.level, None);
    }
}
