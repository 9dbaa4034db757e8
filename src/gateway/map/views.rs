//! Facade calls built on top of the poll answers and the vitals (pypowerwall 0.22.2
//! `Powerwall.level/strings/temps/alerts/battery_blocks/get_reserve/get_mode/...` and
//! `TEDAPI.get_fan_speeds`). Each takes the already computed pieces, so one tick computes the
//! vitals once however many views read them.

use std::borrow::Cow;

use crate::json::{Map, Value};

use super::aggregates::current_power;
use super::py::{self, get, get_or, hashable, iter, iter_or_empty, lookup, or, IsDict, Py, Raise};
use super::{Derived, Src};

/// The RPM signals of a PW2 PVAC fan.
const PVAC_FAN_SIGNALS: [&str; 2] = ["PVAC_Fan_Speed_Actual_RPM", "PVAC_Fan_Speed_Target_RPM"];
/// The fan signals of a PW3 inverter (its `TEPINV` vitals block).
const PW3_FAN_SIGNALS: [&str; 4] = [
    "PCH_FanSpeed_A",
    "PCH_FanSpeed_B",
    "PCH_FanDuty_A",
    "PCH_FanDuty_B",
];

/// `pw.level()`: the raw state of energy of `/api/system_status/soe`.
pub(crate) fn level(soe: &Py<Option<Value>>) -> Option<f64> {
    soe.as_ref()
        .ok()?
        .as_ref()?
        .get("percentage")
        .and_then(Value::as_f64)
}

/// `vitals() or {}` (an error stays an error).
fn devices(vitals: &Py<Option<Map>>) -> Py<Cow<'_, Map>> {
    match vitals {
        Ok(Some(v)) => Ok(Cow::Borrowed(v)),
        Ok(None) => Ok(Cow::Owned(Map::new())),
        Err(e) => Err(*e),
    }
}

/// Whether `pw.strings()` copies a key (`PVAC_PVCurrent…`, `…PvState…`, `PVS_String…`).
fn is_string_key(e: &str) -> bool {
    [
        "PVAC_PVCurrent",
        "PVAC_PVMeasuredPower",
        "PVAC_PVMeasuredVoltage",
        "PVAC_PvState",
        "PVS_String",
    ]
    .iter()
    .any(|p| e.contains(p))
}

/// `pw.strings()` (`verbose=false`, keyed `A`, `B1`, …) or `pw.strings(verbose=True)` (per PVAC).
pub(crate) fn strings(vitals: &Py<Option<Map>>, verbose: bool) -> Py<Value> {
    const DEVICE_MAP: [&str; 9] = ["", "1", "2", "3", "4", "5", "6", "7", "8"];
    let v = devices(vitals)?;
    let mut result = Map::new();
    let mut device_idx = 0;
    for (device, block) in v.iter() {
        if device.split("--").next() != Some("PVAC") {
            continue;
        }
        let Value::Object(block) = block else {
            return Err(Raise);
        };
        let mut block = block.clone();
        let look: String = format!("PVS{}", device.chars().skip(4).collect::<String>());
        if let Some(Value::Object(pvs)) = v.get(&look) {
            for (ee, val) in pvs.iter().filter(|(ee, _)| ee.contains("String")) {
                block.insert(ee.clone(), val.clone());
            }
        }
        if verbose {
            let mut out = Map::new().with(
                "PVAC_Pout",
                block.get("PVAC_Pout").cloned().unwrap_or(Value::Null),
            );
            for (e, val) in block.iter().filter(|(e, _)| is_string_key(e)) {
                out.insert(e.clone(), val.clone());
            }
            result.insert(device.clone(), out);
            continue;
        }
        let suffix = DEVICE_MAP[device_idx % DEVICE_MAP.len()];
        for (e, val) in block.iter().filter(|(e, _)| is_string_key(e)) {
            let (field, letter) = if e.contains("Current") {
                ("Current", e.chars().last())
            } else if e.contains("Power") {
                ("Power", e.chars().last())
            } else if e.contains("Voltage") {
                ("Voltage", e.chars().last())
            } else if e.contains("State") {
                ("State", e.chars().last())
            } else if e.contains("Connected") {
                ("Connected", e.chars().nth(10))
            } else {
                ("Unknown", e.chars().last())
            };
            let name = format!("{}{suffix}", letter.ok_or(Raise)?);
            if !result.contains_key(&name) {
                result.insert(name.clone(), Map::new());
            }
            if let Some(Value::Object(entry)) = result.get_mut(&name) {
                entry.insert(field, val.clone());
            }
        }
        device_idx += 1;
    }
    // Without vitals the library falls back to `/api/solar_powerwall`, which is `{}` here.
    Ok(Value::Object(result))
}

/// `pw.temps()`: `TETHC` ambient temperatures; PW3 `HVP_PackTempMax` once any pack reports one.
pub(crate) fn temps(vitals: &Py<Option<Map>>) -> Py<Value> {
    let devices = devices(vitals)?;
    let pw3_blocks: Vec<&String> = devices
        .iter()
        .filter(|(d, b)| {
            d.starts_with("TEPOD")
                && b.as_object()
                    .is_some_and(|m| m.contains_key("HVP_PackTempMax"))
        })
        .map(|(d, _)| d)
        .collect();
    let has_reading = pw3_blocks
        .iter()
        .any(|d| !lookup(devices.get(d).unwrap_or(&py::NONE), &["HVP_PackTempMax"]).is_null());
    let mut temps = Map::new();
    for (device, block) in devices.iter() {
        if device.starts_with("TETHC") {
            temps.insert(device.clone(), get(block, "THC_AmbientTemp")?.clone());
        } else if has_reading && pw3_blocks.contains(&device) {
            temps.insert(device.clone(), lookup(block, &["HVP_PackTempMax"]).clone());
        }
    }
    Ok(Value::Object(temps))
}

/// `pw.alerts()`: every vitals block's alerts plus the grid status, `SystemGridConnected`
/// renamed `SystemConnectedToGrid`. The library returns a set; this keeps first-seen order.
pub(crate) fn alerts(vitals: &Py<Option<Map>>, grid_status: &Py<Option<Value>>) -> Py<Vec<String>> {
    let devices = devices(vitals)?;
    let mut found: Vec<Value> = Vec::new();
    let mut add = |v: Value| -> Py<()> {
        if !hashable(&v) {
            return Err(Raise);
        }
        if !found.iter().any(|f| py::eq(f, &v)) {
            found.push(v);
        }
        Ok(())
    };
    for block in devices.values() {
        let Some(alerts) = block.get("alerts") else {
            continue;
        };
        for a in iter(alerts)? {
            add(a.into_owned())?;
        }
    }
    // Without vitals the library reads `/api/solar_powerwall` alerts, which is `{}` here.
    if let Some(grid) = grid_status.clone()?.filter(Value::truthy) {
        let state = grid.get("grid_status").cloned().unwrap_or(Value::Null);
        if grid.get("grid_services_active").is_some_and(Value::truthy) {
            add(Value::Str("GridServicesActive".into()))?;
        } else if state.truthy() {
            add(state)?;
        }
    }
    let mut out: Vec<String> = Vec::new();
    for a in found {
        let Value::Str(s) = a else {
            return Err(Raise);
        };
        let s = s.replace("SystemGridConnected", "SystemConnectedToGrid");
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// `extract_fan_speeds(controller)`: PW2 PVAC fan RPMs from `esCan.bus.PVAC[].PVAC_Logging`
/// and from `components.msa[]` (the first entry for a device wins).
pub(crate) fn extract_fan_speeds(data: &Value) -> Py<Map> {
    let mut result = Map::new();
    if !data.is_object() {
        return Ok(result);
    }
    for pvac in iter_or_empty(lookup(data, &["esCan", "bus", "PVAC"]))? {
        let Value::Object(p) = pvac.as_ref() else {
            continue;
        };
        if !p.get("packageSerialNumber").is_some_and(Value::truthy) {
            continue;
        }
        let logging = or(p.get("PVAC_Logging").unwrap_or(&py::NONE), &py::NONE);
        let Value::Object(logging) = logging else {
            if logging.truthy() {
                continue;
            }
            continue;
        };
        if logging.get("isMIA").is_some_and(Value::truthy) {
            continue;
        }
        let mut fans = Map::new();
        for name in PVAC_FAN_SIGNALS {
            if let Some(v) = logging.get(name).filter(|v| !v.is_null()) {
                fans.insert(name, v.clone());
            }
        }
        if fans.is_empty() {
            continue;
        }
        let part = py::to_str(p.get("packagePartNumber").unwrap_or(&py::NONE));
        let serial = py::to_str(p.get("packageSerialNumber").unwrap_or(&py::NONE));
        result.insert(format!("PVAC--{part}--{serial}"), fans);
    }
    let components = get_or(data, "components", &py::NONE)?;
    if components.is_object() {
        let empty = Value::Array(Vec::new());
        for component in iter_or_empty(get_or(components, "msa", &empty)?)? {
            let Value::Object(c) = component.as_ref() else {
                continue;
            };
            let signals = or(c.get("signals").unwrap_or(&empty), &empty);
            let mut fans = Map::new();
            for signal in iter(signals)? {
                let Value::Object(s) = signal.as_ref() else {
                    continue;
                };
                let name = s.get("name").unwrap_or(&py::NONE);
                if !hashable(name) {
                    return Err(Raise);
                }
                let Some(name) = name.as_str().filter(|n| PVAC_FAN_SIGNALS.contains(n)) else {
                    continue;
                };
                if let Some(v) = s.get("value").filter(|v| !v.is_null()) {
                    fans.insert(name, v.clone());
                }
            }
            if fans.is_empty() {
                continue;
            }
            let part = py::to_str(c.get("partNumber").unwrap_or(&py::NONE));
            let serial = py::to_str(c.get("serialNumber").unwrap_or(&py::NONE));
            let key = format!("PVAC--{part}--{serial}");
            if !result.contains_key(&key) {
                result.insert(key, fans);
            }
        }
    }
    Ok(result)
}

/// `tedapi.get_fan_speeds()`: the PW2 map, then (PW3) each inverter's `PCH_Fan*` values.
pub(crate) fn fans(src: &Src, d: &Derived) -> Py<Value> {
    let mut fans = extract_fan_speeds(src.controller)?;
    if src.pw3 {
        for (name, block) in d.pw3.iter().flat_map(Map::iter) {
            let Value::Object(block) = block else {
                continue;
            };
            if !name.starts_with("TEPINV--") {
                continue;
            }
            let values: Map = PW3_FAN_SIGNALS
                .iter()
                .map(|s| (s.to_string(), block.get(s).cloned().unwrap_or(Value::Null)))
                .collect();
            if values.values().any(|v| !v.is_null()) {
                fans.insert(name.clone(), values);
            }
        }
    }
    Ok(Value::Object(fans))
}

/// `pw.battery_blocks()`: the system-status blocks keyed by serial, plus `THC_State` and
/// `temperature` from the `TETHC` vitals.
pub(crate) fn battery_blocks(
    system_status: &Py<Option<Value>>,
    vitals: &Py<Option<Map>>,
) -> Py<Option<Value>> {
    let Some(system_status) = system_status.clone()? else {
        return Ok(None);
    };
    let devices = devices(vitals)?;
    let mut result = Map::new();
    let empty = Value::Array(Vec::new());
    for bat in iter_or_empty(get_or(&system_status, "battery_blocks", &empty)?)? {
        let Value::Object(bat) = bat.as_ref() else {
            return Err(Raise);
        };
        let sn = bat.get("PackageSerialNumber").unwrap_or(&py::NONE);
        let mut res = Map::new();
        for (k, v) in bat.iter().filter(|(k, _)| *k != "PackageSerialNumber") {
            res.insert(k.clone(), v.clone());
        }
        result.insert(json_key(sn), res);
    }
    for (device, block) in devices.iter() {
        if !device.starts_with("TETHC--") {
            continue;
        }
        let sn = device.split("--").nth(2).ok_or(Raise)?.to_string();
        let extra = Map::new()
            .with("THC_State", get(block, "THC_State")?)
            .with("temperature", get(block, "THC_AmbientTemp")?);
        if !result.contains_key(&sn) {
            result.insert(sn.clone(), Map::new());
        }
        if let Some(Value::Object(entry)) = result.get_mut(&sn) {
            py::update(entry, extra);
        }
    }
    Ok(Some(Value::Object(result)))
}

/// How `json.dumps` writes a dict key.
fn json_key(k: &Value) -> String {
    match k {
        Value::Str(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Float(_) => k.to_py(),
        _ => py::to_str(k),
    }
}

/// Python `float(x)` for the values a config may hold.
fn py_float(v: &Value) -> Option<f64> {
    match v {
        Value::Str(s) => s.trim().parse::<f64>().ok(),
        _ => py::num(v).map(py::Num::f64),
    }
}

/// `pw.get_reserve()`: the backup reserve on the app scale, `max(0, raw/0.95 - 5/0.95)`.
/// `None` without a reserve. A result of 0 is Python's int `0`; render `0.0` as `0`.
pub(crate) fn reserve(operation: &Py<Option<Value>>) -> Option<f64> {
    let op = operation.as_ref().ok()?.as_ref()?;
    let raw = op.get("backup_reserve_percent").filter(|v| !v.is_null())?;
    let percent = py_float(raw)?;
    let scaled = percent / 0.95 - 5.0 / 0.95;
    Some(if scaled > 0.0 { scaled } else { 0.0 })
}

/// `pw.get_grid_charging()` over TEDAPI: `config.json` stores the inverse
/// (`disallow_charge_from_grid_with_solar_installed`); absent means allowed. `None` without a
/// config.
pub(crate) fn grid_charging(config: &Value) -> Option<bool> {
    config.as_object()?;
    match lookup(
        config,
        &[
            "site_info",
            "disallow_charge_from_grid_with_solar_installed",
        ],
    ) {
        Value::Null => Some(true),
        Value::Bool(disallow) => Some(!disallow),
        _ => None,
    }
}

/// `pw.get_grid_export()` over TEDAPI: `customer_preferred_export_rule`, `battery_ok` when
/// unset (Tesla's default, as the cloud reports it).
pub(crate) fn grid_export(config: &Value) -> Option<String> {
    config.as_object()?;
    let rule = lookup(config, &["site_info", "customer_preferred_export_rule"])
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("battery_ok");
    Some(rule.to_string())
}

/// `pw.get_mode()`: the configured `real_mode` when it is a non-empty string.
pub(crate) fn mode(operation: &Py<Option<Value>>) -> Option<String> {
    let op = operation.as_ref().ok()?.as_ref()?;
    op.get("real_mode")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `pw.get_time_remaining()`: hours of backup, `remaining Wh / load W`.
pub(crate) fn time_remaining(src: &Src) -> Option<f64> {
    let remaining = lookup(
        src.status,
        &["control", "systemStatus", "nominalEnergyRemainingWh"],
    );
    let load = current_power(src.status, "LOAD").ok()?;
    if !remaining.truthy() || !load.truthy() {
        return None;
    }
    py::div(remaining, &load).ok()?.as_f64()
}

/// `pw.status(key)` when the value is a string (`version`, `din`, `up_time_seconds`).
pub(crate) fn status_str(status: &Py<Option<Value>>, key: &str) -> Option<String> {
    let s = status.as_ref().ok()?.as_ref()?;
    s.get(key).and_then(Value::as_str).map(str::to_string)
}

/// `pw.site_name()`.
pub(crate) fn site_name(src: &Src) -> Option<String> {
    lookup(src.config, &["site_info", "site_name"])
        .as_str()
        .map(str::to_string)
}
