//! The data-backed `/api/*` answers of the TEDAPI poll table other than aggregates (0.22.2):
//! `/api/status`, `/api/system_status` (with `get_blocks()`), `/api/system_status/soe`,
//! `/api/system_status/grid_status`, `/api/operation`, `/api/site_info` and
//! `/api/site_info/site_name`. Shapes and key order are the library's; the system-status stub is
//! the upstream template, so its key order is fixed.

use crate::gateway::Firmware;
use crate::json::{Map, Value};

use super::py::{
    self, contains, get, item, iter, iter_or_empty, len, lookup, or, split, Dict, IsDict, Num, Py,
    Raise,
};
use super::{clock, vitals, Derived, Src};

const SYSTEM_STATUS_STUB: &str = include_str!("../canned/stubs/API_SYSTEM_STATUS_STUB.json");

/// The POD signals summed into `instantaneous_max_charge/discharge_power`.
const POD_CHARGE: &str = "POD_available_charge_power";
const POD_DISCHARGE: &str = "POD_available_dischg_power";

fn obj(m: Map) -> Py<Option<Value>> {
    Ok(Some(Value::Object(m)))
}

/// `/api/system_status/soe`: `{percentage: remaining / full * 100}`, the raw state of energy.
/// `None` when either energy is 0 or missing (an empty battery gives null, FROZEN).
pub(crate) fn soe(src: &Src) -> Py<Option<Value>> {
    let energy = lookup(src.status, &["control", "systemStatus"]);
    let remaining = lookup(energy, &["nominalEnergyRemainingWh"]);
    let full = lookup(energy, &["nominalFullPackEnergyWh"]);
    if !remaining.truthy() || !full.truthy() {
        return Ok(None);
    }
    let pct = py::mul(&py::div(remaining, full)?, &Value::Int(100))?;
    obj(Map::new().with("percentage", pct))
}

/// `extract_grid_status`: the `SystemConnectedToGrid` alert first, then the ISLANDER state.
fn grid_state(status: &Value) -> Py<Option<&'static str>> {
    if status.is_null() {
        return Ok(None);
    }
    // `lookup(...) or []`: a falsy value has no alerts, anything else must support `in`.
    let alerts = lookup(status, &["control", "alerts", "active"]);
    if alerts.truthy() && contains(alerts, &Value::Str("SystemConnectedToGrid".into()))? {
        return Ok(Some("SystemGridConnected"));
    }
    let state = lookup(
        status,
        &[
            "esCan",
            "bus",
            "ISLANDER",
            "ISLAND_GridConnection",
            "ISLAND_GridConnected",
        ],
    );
    if !state.truthy() {
        return Ok(None);
    }
    if state.as_str() == Some("ISLAND_GridConnected_Connected") {
        Ok(Some("SystemGridConnected"))
    } else {
        Ok(Some("SystemIslandedActive"))
    }
}

/// `/api/system_status/grid_status`: `{grid_status, grid_services_active: null}` or `None`.
pub(crate) fn grid_status_api(src: &Src) -> Py<Option<Value>> {
    let Some(state) = grid_state(src.status)? else {
        return Ok(None);
    };
    obj(Map::new()
        .with("grid_status", state)
        .with("grid_services_active", Value::Null))
}

/// `/api/operation`: the configured mode and the backup reserve (raw scale).
pub(crate) fn operation(src: &Src) -> Py<Option<Value>> {
    if !src.config.is_object() {
        return Ok(None);
    }
    obj(Map::new()
        .with("real_mode", get(src.config, "default_real_mode")?)
        .with(
            "backup_reserve_percent",
            lookup(src.config, &["site_info", "backup_reserve_percent"]),
        ))
}

/// `/api/site_info/site_name` (an object even without a config).
pub(crate) fn site_name_api(src: &Src) -> Py<Option<Value>> {
    obj(Map::new()
        .with("site_name", lookup(src.config, &["site_info", "site_name"]))
        .with("timezone", lookup(src.config, &["site_info", "timezone"])))
}

/// `/api/site_info` from `config.site_info` (0.22.2 fixed lookup; values are not converted).
pub(crate) fn site_info(src: &Src) -> Py<Option<Value>> {
    if !src.config.is_object() {
        return Ok(None);
    }
    let info = match src.config.get("site_info") {
        Some(v @ Value::Object(_)) => v,
        _ => &py::NONE,
    };
    let s = |k: &str| lookup(info, &[k]).clone();
    obj(Map::new()
        .with("max_system_energy_kWh", s("nominal_system_energy_ac"))
        .with("max_system_power_kW", s("nominal_system_power_ac"))
        .with("site_name", s("site_name"))
        .with("timezone", s("timezone"))
        .with("max_site_meter_power_kW", s("max_site_meter_power_ac"))
        .with("min_site_meter_power_kW", s("min_site_meter_power_ac"))
        .with("nominal_system_energy_kWh", s("nominal_system_energy_ac"))
        .with("nominal_system_power_kW", s("nominal_system_power_ac"))
        .with("panel_max_current", s("panel_max_current"))
        .with(
            "grid_code",
            Map::new()
                .with("grid_code", s("grid_code"))
                .with("grid_voltage_setting", Value::Null)
                .with("grid_freq_setting", Value::Null)
                .with("grid_phase_setting", Value::Null)
                .with("country", s("country"))
                .with("state", s("state"))
                .with("utility", s("utility")),
        ))
}

/// `decode_githash`: ASCII text when printable, else lowercase hex.
pub fn decode_githash(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The gateway's start time, held fixed for one boot as pypowerwall 0.22.2 does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootHold {
    pub start: clock::GatewayTime,
    /// The uptime (ms) of the snapshot that produced or confirmed `start`.
    pub uptime_ms: f64,
}

/// Start = clock − uptime; the previous start is kept while the uptime has not dropped by more
/// than 10 000 ms (no reboot) and the new start is within 600 s of it (clock noise, not a
/// clock change). The poller keeps the result between ticks.
pub fn boot_hold(controller: &Value, previous: Option<BootHold>) -> Option<BootHold> {
    if !controller.is_object() {
        return None;
    }
    let ms = vitals::sync_uptime_ms(controller).ok()?.as_f64()?;
    let now = clock::parse_gateway_time(lookup(controller, &["system", "time"]))?;
    let start = clock::minus_ms(now, ms)?;
    Some(match previous {
        Some(p)
            if ms >= p.uptime_ms - 10_000.0
                && (start.utc_us() - p.start.utc_us()).abs() <= 600 * 1_000_000 =>
        {
            BootHold {
                start: p.start,
                uptime_ms: ms,
            }
        }
        _ => BootHold {
            start,
            uptime_ms: ms,
        },
    })
}

/// `get_gateway_uptime`: (start time text, uptime text); `held` is this boot's start.
fn gateway_uptime(controller: &Value, held: Option<BootHold>) -> Py<Option<(String, String)>> {
    if !controller.is_object() {
        return Ok(None);
    }
    let uptime = vitals::sync_uptime_ms(controller)?;
    let (Some(ms), Some(now)) = (
        uptime.as_f64(),
        clock::parse_gateway_time(lookup(controller, &["system", "time"])),
    ) else {
        return Ok(None);
    };
    let start = match held {
        Some(h) => Some(h.start),
        None => clock::minus_ms(now, ms),
    };
    let Some(start) = start.and_then(clock::format_start) else {
        return Ok(None);
    };
    let duration = match uptime {
        Value::Int(i) => clock::go_duration_int(i),
        _ => clock::go_duration(ms),
    };
    Ok(Some((start, duration)))
}

/// `/api/status`: `None` without a config.
pub(crate) fn api_status(src: &Src) -> Py<Option<Value>> {
    let config = src.config;
    let version = src
        .firmware
        .map(|f: &Firmware| Value::Str(f.version.clone()));
    if config.is_null() {
        return Ok(None);
    }
    let uptime = gateway_uptime(src.controller, src.boot)?;
    let git_hash = src
        .firmware
        .map(|f| decode_githash(&f.githash))
        .filter(|h| !h.is_empty());
    let (start, up) = match uptime {
        Some((s, u)) => (Value::Str(s), Value::Str(u)),
        None => (Value::Null, Value::Null),
    };
    obj(Map::new()
        .with("din", get(config, "vin")?)
        .with("start_time", start)
        .with("up_time_seconds", up)
        .with("is_new", false)
        .with("version", version)
        .with("git_hash", git_hash)
        .with("commission_count", 0)
        .with("device_type", Value::Null)
        .with("teg_type", "unknown")
        .with("sync_type", "unknown")
        .with("cellular_disabled", false)
        .with("can_reboot", true)
        .with(
            "battery_commission_date",
            lookup(config, &["site_info", "battery_commission_date"]),
        ))
}

/// One `battery_blocks` entry of `/api/system_status` (`get_blocks`).
fn block(kind: &str, part: &str, serial: &str, values: [Value; 7]) -> Map {
    let [pinv_state, pinv_grid_state, remaining, full, p_out, v_out, f_out] = values;
    Map::new()
        .with("Type", kind)
        .with("PackagePartNumber", part)
        .with("PackageSerialNumber", serial)
        .with("disabled_reasons", Vec::<Value>::new())
        .with("pinv_state", pinv_state)
        .with("pinv_grid_state", pinv_grid_state)
        .with("nominal_energy_remaining", remaining)
        .with("nominal_full_pack_energy", full)
        .with("p_out", p_out)
        .with("q_out", Value::Null)
        .with("v_out", v_out)
        .with("f_out", f_out)
        .with("i_out", Value::Null)
        .with("energy_charged", Value::Null)
        .with("energy_discharged", Value::Null)
        .with("off_grid", Value::Null)
        .with("vf_mode", Value::Null)
        .with("wobble_detected", Value::Null)
        .with("charge_power_clamped", Value::Null)
        .with("backup_ready", Value::Null)
        .with("OpSeqState", Value::Null)
        .with("version", Value::Null)
}

/// `get_blocks()`: one entry per `TEPINV--*` vitals block, then one per battery expansion.
pub(crate) fn blocks(src: &Src, d: &Derived) -> Py<Option<Map>> {
    let Some(vitals) = d.vitals.as_ref().map_err(|e| *e)? else {
        return Ok(None);
    };
    // `lookup(vitals, [block, key])`.
    let field = |block: &str, k: &str| match vitals.get(block) {
        Some(b) => lookup(b, &[k]).clone(),
        None => Value::Null,
    };
    let mut out = Map::new();
    for key in vitals.keys() {
        if !key.starts_with("TEPINV--") {
            continue;
        }
        let parts: Vec<&str> = key.split("--").collect();
        let (Some(part), Some(serial)) = (parts.get(1), parts.get(2)) else {
            continue;
        };
        let v = |k: &str| field(key, k);
        let tepod = format!("TEPOD--{part}--{serial}");
        let pod = |k: &str| field(&tepod, k);
        out.insert(
            format!("{part}--{serial}"),
            block(
                "",
                part,
                serial,
                [
                    v("PINV_State"),
                    v("PINV_GridState"),
                    pod("POD_nom_energy_remaining"),
                    pod("POD_nom_full_pack_energy"),
                    v("PINV_Pout"),
                    v("PINV_Vout"),
                    v("PINV_Fout"),
                ],
            ),
        );
    }
    let config = src.config;
    let key = Value::Str("battery_blocks".into());
    if config.truthy() && contains(config, &key)? {
        for battery in iter(item(config, "battery_blocks")?)? {
            let exp_key = Value::Str("battery_expansions".into());
            if !contains(&battery, &exp_key)? || !item(&battery, "battery_expansions")?.truthy() {
                continue;
            }
            for expansion in iter(item(&battery, "battery_expansions")?)? {
                let din = get(&expansion, "din")?;
                if !din.truthy() {
                    continue;
                }
                let parts = split(din, "--")?;
                let [part, serial, ..] = parts[..] else {
                    continue;
                };
                let tepod = format!("TEPOD--{}", py::to_str(din));
                let pod = |k: &str| field(&tepod, k);
                let null = || Value::Null;
                out.insert(
                    serial,
                    block(
                        "BatteryExpansion",
                        part,
                        serial,
                        [
                            null(),
                            null(),
                            pod("POD_nom_energy_remaining"),
                            pod("POD_nom_full_pack_energy"),
                            null(),
                            null(),
                            null(),
                        ],
                    ),
                );
            }
        }
    }
    Ok(Some(out))
}

/// `round(x)` of a Python number: ints stay, floats round half to even.
fn py_round(n: Num) -> Py<i64> {
    match n {
        Num::Int(i) => Ok(i),
        Num::Float(f) => {
            let r = f.round_ties_even();
            if r.is_finite() && r.abs() < 9.0e18 {
                Ok(r as i64)
            } else {
                Err(Raise)
            }
        }
    }
}

/// `inverter_nominal_usable_power`: the sum of the active inverters' positive `PINV_Pnom`.
fn inverter_usable(status: &Value) -> Py<Value> {
    let mut total = Value::Int(0);
    for pinv in iter_or_empty(lookup(status, &["esCan", "bus", "PINV"]))? {
        if lookup(&pinv, &["PINV_PowerCapability", "isMIA"]).truthy() {
            continue;
        }
        let value = lookup(&pinv, &["PINV_PowerCapability", "PINV_Pnom"]);
        if py::is_number(value) && py::gt(value, &Value::Int(0))? {
            total = py::add(&total, value)?;
        }
    }
    Ok(total)
}

/// `instantaneous_max_charge/discharge_power`: per POD serial the last usable value, summed
/// only when every POD serial supplied one (else the stub's 0).
fn instantaneous(controller: &Value) -> Py<(Value, Value)> {
    let mut pods: Dict<Map> = Dict::new();
    for component in iter_or_empty(lookup(controller, &["components", "msa"]))? {
        if !component.is_object() {
            continue;
        }
        let serial = get(&component, "serialNumber")?;
        if !serial.truthy() {
            continue;
        }
        for signal in iter_or_empty(get(&component, "signals")?)? {
            if !signal.is_object() {
                continue;
            }
            let name = match signal.get("name").and_then(Value::as_str) {
                Some(n @ (POD_CHARGE | POD_DISCHARGE)) => n,
                _ => continue,
            };
            let entry = pods.setdefault(serial.clone(), Map::new())?;
            let value = signal.get("value").unwrap_or(&py::NONE);
            let usable = match value {
                Value::Int(i) => *i >= 0,
                Value::Float(f) => f.is_finite() && *f >= 0.0,
                _ => false,
            };
            if usable {
                entry.insert(name, value.clone());
            }
        }
    }
    let sum = |name: &str| -> Py<Value> {
        let mut total = Value::Int(0);
        if pods.is_empty() {
            return Ok(total);
        }
        for signals in pods.values() {
            let Some(v) = signals.get(name) else {
                return Ok(Value::Int(0));
            };
            total = py::add(&total, v)?;
        }
        Ok(total)
    };
    Ok((sum(POD_CHARGE)?, sum(POD_DISCHARGE)?))
}

/// `/api/system_status`: the upstream stub filled from status, config and `get_blocks()`.
pub(crate) fn system_status(src: &Src, d: &Derived) -> Py<Option<Value>> {
    let (status, config) = (src.status, src.config);
    if !status.is_object() || !config.is_object() {
        return Ok(None);
    }
    let grid = grid_state(status)?;
    let energy = lookup(status, &["control", "systemStatus"]);
    let full = lookup(energy, &["nominalFullPackEnergyWh"]).clone();
    let remaining = lookup(energy, &["nominalEnergyRemainingWh"]).clone();
    let count = len(or(
        lookup(status, &["control", "batteryBlocks"]),
        &Value::Array(Vec::new()),
    ))?;
    let usable = inverter_usable(status)?;
    let nominal_kw = lookup(config, &["site_info", "nominal_system_power_ac"]);
    let nameplate = match nominal_kw {
        v if py::is_number(v) && py::gt(v, &Value::Int(0))? => {
            let kw = py::num(v).ok_or(Raise)?;
            Value::Int(py_round(py::mul_n(kw, Num::Int(1000)))?)
        }
        _ => Value::Null,
    };
    let mut max_power = Value::Null;
    for v in [&nameplate, &usable] {
        if v.truthy() && (max_power.is_null() || py::lt(v, &max_power)?) {
            max_power = v.clone();
        }
    }
    let (charge, discharge) = instantaneous(src.controller)?;
    let blocks = blocks(src, d)?.unwrap_or_default();

    let Ok(Value::Object(mut data)) = crate::json::parse(SYSTEM_STATUS_STUB) else {
        return Err(Raise);
    };
    let count = Value::Int(count as i64);
    let updates = Map::new()
        .with("nominal_full_pack_energy", full)
        .with("nominal_energy_remaining", remaining)
        .with("max_charge_power", max_power.clone())
        .with("max_discharge_power", max_power.clone())
        .with("max_apparent_power", max_power)
        .with("instantaneous_max_charge_power", charge)
        .with("instantaneous_max_discharge_power", discharge)
        .with("inverter_nominal_usable_power", usable)
        .with("grid_services_power", Value::Null)
        .with("system_island_state", grid)
        .with("available_blocks", count.clone())
        .with("solar_real_power_limit", Value::Null)
        .with("blocks_controlled", count)
        .with(
            "battery_blocks",
            blocks.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        );
    py::update(&mut data, updates);
    obj(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githash_ascii_or_hex() {
        assert_eq!(decode_githash(b"7d8f0a8b"), "7d8f0a8b");
        assert_eq!(
            decode_githash(&[0x7d, 0x8f, 0x0a, 0x8b]),
            "7d8f0a8b",
            "non-printable bytes are shown as hex"
        );
        assert_eq!(decode_githash(b"ab\tc"), "61620963");
        assert_eq!(decode_githash(b""), "");
    }
}

#[cfg(test)]
mod boot_tests {
    use super::*;
    use crate::json::parse;

    fn controller(time: &str, uptime_ms: i64) -> Value {
        parse(&format!(
            r#"{{"system": {{"time": "{time}"}}, "esCan": {{"bus": {{"SYNC": {{"packageSerialNumber": "J1"}}}}}},
               "components": {{"msa": [{{"partNumber": "P", "serialNumber": "J1", "activeAlerts": [],
               "signals": [{{"name": "SYNC_Uptime", "value": {uptime_ms}, "textValue": null, "boolValue": null}}]}}]}}}}"#
        ))
        .unwrap()
    }

    fn start_text(h: Option<BootHold>) -> String {
        h.and_then(|h| clock::format_start(h.start))
            .unwrap_or_default()
    }

    #[test]
    fn the_start_time_is_held_for_one_boot() {
        let first = boot_hold(&controller("2025-05-16T10:00:00-07:00", 45_000_000), None);
        assert_eq!(start_text(first), "2025-05-15 21:30:00 -0700");
        // 5 s later by the clock, but the uptime says 6.5 s: the computed start moves 1.5 s back;
        // the held one does not.
        let next = boot_hold(&controller("2025-05-16T10:00:05-07:00", 45_006_500), first);
        assert_eq!(start_text(next), "2025-05-15 21:30:00 -0700");
        // A reboot (uptime dropped) starts a new boot.
        let rebooted = boot_hold(&controller("2025-05-16T10:10:00-07:00", 60_000), next);
        assert_eq!(start_text(rebooted), "2025-05-16 10:09:00 -0700");
        // A clock change of more than 600 s is not noise either.
        let moved = boot_hold(&controller("2025-05-16T11:10:05-07:00", 65_000), rebooted);
        assert_eq!(start_text(moved), "2025-05-16 11:09:00 -0700");
        assert_eq!(boot_hold(&controller("garbage", 1), None), None);
    }
}
