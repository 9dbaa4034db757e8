//! Powerwall 3 vitals from the per-battery ComponentsQuery answers (`get_pw3_vitals`, 0.22.2).
//!
//! A PW3 reports almost nothing on `esCan`; its batteries answer a components query instead
//! (`pch` inverter, `pws` PV switch, `bms` packs, `hvp` HV controllers, `baggr` aggregator). For
//! each `Powerwall3*` entry of `config.battery_blocks` this builds `TEPOD--<din>` (plus matched
//! expansion packs), `PVAC--<din>`, `PVS--<din>` and `TEPINV--<din>`, with the library's key order
//! (insertion during its signal walk) and its FROZEN oddities: `PINV_Pout` in kW while
//! `PVAC_Pout` is in W, negative or null PV values shown as int 0, phantom BMS slots skipped.
//!
//! Like the library, any shape error makes the whole result `None` (the library logs and returns
//! `None`), while a battery whose answer is missing or unparseable is just skipped.

use crate::json::{Map, Value};

use super::py::{
    self, contains, get, get_or, index, item, iter, iter_or_empty, len, split, to_str, Dict,
    IsDict, Num, Py, Raise,
};
use super::vitals::signal_value;
use super::Src;

/// Signals 0.22.2 requests beyond the captured ComponentsQuery, per component group; they are
/// passed through to vitals as delivered (`null` when absent).
pub const PCH_EXTRA: &[&str] = &[
    "PCH_AmbientTemp",
    "PCH_heatsinkTemp",
    "PCH_FanSpeed_A",
    "PCH_FanSpeed_B",
    "PCH_FanDuty_A",
    "PCH_FanDuty_B",
    "PCH_AcRealPowerSum",
    "PCH_AcVoltageCN",
    "PCH_AcVoltageLL",
    "PCH_pcbaId",
    "PCH_usageId",
];
pub const BMS_EXTRA: &[&str] = &[
    "BMS_LOG_tempOutOfBounds",
    "BMS_LOG_tempOutOfBoundsCharge",
    "BMS_kwhDischargeTotal",
    "BMS_LOG_ahDischargeTotal",
    "BMS_LOG_cacAvg",
    "BMS_LOG_numFullBattCycles",
    "BMS_LOG_overDischargeCounter",
    "BMS_LOG_selfDischargeRate",
];
pub const HVP_EXTRA: &[&str] = &[
    "HVP_PackTempMax",
    "HVP_PackTempMin",
    "HVP_ShuntTemperature",
    "HVP_SafetyBiDisconnectState",
    "HVP_a061_LockoutOnIsoFaultRetry",
];
pub const PWS_EXTRA: &[&str] = &[
    "PWS_ExtSwitch_State",
    "PWS_RSDSelfTest_Result",
    "PWS_RSDSelfTest_State",
    "PWS_RSD_State",
    "PWS_assemblyId",
    "PWS_pcbaId",
    "PWS_reversePolarityStrings",
];
pub const BAGGR_EXTRA: &[&str] = &[
    "BAGGR_ExpectedEnergyRemaining",
    "BAGGR_ExpectedFullPackEnergy",
    "BAGGR_OperationType",
];

/// The six PV string letters of a PW3 inverter.
const STRINGS: [&str; 6] = ["A", "B", "C", "D", "E", "F"];

/// `get_pw3_vitals()`: the PW3 blocks, `None` when unavailable or on any shape error.
pub(crate) fn vitals(src: &Src) -> Option<Map> {
    build(src).ok().flatten()
}

/// `_component_signal_value(components, name)`: the first non-null value of `name`.
fn component_signal(components: &Value, name: &str) -> Py<Value> {
    for component in iter_or_empty(components)? {
        if !component.is_object() {
            continue;
        }
        for signal in iter_or_empty(get(&component, "signals")?)? {
            if signal.get("name").and_then(Value::as_str) != Some(name) {
                continue;
            }
            let v = signal_value(&signal);
            if !v.is_null() {
                return Ok(v);
            }
        }
    }
    Ok(Value::Null)
}

/// `int(kWh * 1000)`: energy in Wh, truncated toward zero. `None` stands for a Python int too
/// big for `i64` (a huge float, or a digit string repeated 1000 times).
fn wh(kwh: &Value) -> Py<Option<i64>> {
    let fits = |w: f64| w.abs() < 9.0e18;
    match kwh {
        Value::Str(s) => {
            // `"7" * 1000` is a string of 1000 sevens, which int() accepts.
            let b = s.as_bytes();
            let digits = !b.is_empty()
                && b.first().is_some_and(u8::is_ascii_digit)
                && b.last().is_some_and(u8::is_ascii_digit)
                && b.iter().all(|c| c.is_ascii_digit() || *c == b'_')
                && !s.contains("__");
            match digits {
                true if s.bytes().all(|c| c == b'0' || c == b'_') => Ok(Some(0)),
                true => Ok(None),
                false => Err(Raise),
            }
        }
        _ => match py::num(kwh).ok_or(Raise)? {
            Num::Int(i) => Ok(i.checked_mul(1000)),
            Num::Float(f) => {
                let w = (f * 1000.0).trunc();
                if !w.is_finite() {
                    Err(Raise)
                } else {
                    Ok(fits(w).then_some(w as i64))
                }
            }
        },
    }
}

/// Union of `activeAlerts[].name` over the first entry of each component group.
fn group_alerts(components: &Value) -> Py<Vec<Value>> {
    let mut alerts: Vec<Value> = Vec::new();
    for group in iter(components)? {
        let Some(key) = group.as_str() else {
            continue;
        };
        let entries = item(components, key)?;
        if !entries.truthy() {
            continue;
        }
        let first = index(entries, 0)?;
        if !first.is_object() {
            continue;
        }
        for alert in iter_or_empty(get(&first, "activeAlerts")?)? {
            let name = match alert.as_ref() {
                Value::Object(m) => m.get("name").cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            };
            if name.truthy() && !alerts.iter().any(|a| py::eq(a, &name)) {
                alerts.push(name);
            }
        }
    }
    Ok(alerts)
}

/// The TEPOD blocks of one PW3: its own pack (BMS index 0) and matched expansion packs.
fn tepods(
    out: &mut Map,
    components: &Value,
    battery: &Value,
    pw_din: &Value,
    alerts: &[Value],
) -> Py<()> {
    let empty = Value::Array(Vec::new());
    let bms_list = get_or(components, "bms", &empty)?;
    let hvp_list = get_or(components, "hvp", &empty)?;
    let mut expansions: Dict<Value> = Dict::new();
    let no_din = Value::Str(String::new());
    for exp in iter(get_or(battery, "battery_expansions", &empty)?)? {
        let din = get_or(&exp, "din", &no_din)?;
        let parts = split(din, "--")?;
        if let Some(serial) = parts.get(1).filter(|s| !s.is_empty()) {
            expansions.insert(Value::Str((*serial).to_string()), din.clone())?;
        }
    }
    for (bms_idx, bms) in iter(bms_list)?.iter().enumerate() {
        let (mut remaining, mut full) = (Some(0), Some(0));
        for signal in iter(get_or(bms, "signals", &empty)?)? {
            let value = get(&signal, "value")?;
            if value.is_null() {
                continue;
            }
            let name = item(&signal, "name")?;
            if name.as_str() == Some("BMS_nominalEnergyRemaining") {
                remaining = wh(value)?;
            } else if name.as_str() == Some("BMS_nominalFullPackEnergy") {
                full = wh(value)?;
            }
        }
        if full == Some(0) {
            continue;
        }
        let (Some(remaining), Some(full)) = (remaining, full) else {
            // The library would show a Python big int here.
            return Err(Raise);
        };
        let hvp = if bms_idx < len(hvp_list)? {
            index(hvp_list, bms_idx)?.into_owned()
        } else {
            Value::Null
        };
        let hvp = if hvp.is_object() {
            hvp
        } else {
            Value::object()
        };
        let hvp_serial = hvp.get("serialNumber").cloned().unwrap_or(Value::Null);
        let pod_din = if bms_idx == 0 {
            pw_din.clone()
        } else if hvp_serial.truthy() && expansions.contains(&hvp_serial)? {
            expansions.get(&hvp_serial)?.cloned().unwrap_or(Value::Null)
        } else {
            // A phantom BMS slot: neither the main pack nor a configured expansion.
            continue;
        };
        let to_charge = py::sub_n(Num::Int(full), Num::Int(remaining)).value();
        let mut block = Map::new()
            .with("alerts", alerts.to_vec())
            .with("POD_nom_energy_remaining", remaining)
            .with("POD_nom_energy_to_be_charged", to_charge)
            .with("POD_nom_full_pack_energy", full);
        let bms_group = Value::Array(vec![bms.clone().into_owned()]);
        for name in BMS_EXTRA {
            block.insert(*name, component_signal(&bms_group, name)?);
        }
        let hvp_group = Value::Array(vec![hvp]);
        for name in HVP_EXTRA {
            block.insert(*name, component_signal(&hvp_group, name)?);
        }
        out.insert(format!("TEPOD--{}", to_str(&pod_din)), block);
    }
    Ok(())
}

/// The PVAC, PVS and TEPINV blocks of one PW3, walking its `pch` signals once per string.
fn inverter(components: &Value, pch: &Value, pw_part: &str, pw_serial: &str) -> Py<[Map; 3]> {
    let mut pvac = Map::new();
    let mut pvs = Map::new();
    let mut tepinv = Map::new();
    for (group, names) in [
        (pch, PCH_EXTRA),
        (get(components, "pws")?, PWS_EXTRA),
        (get(components, "baggr")?, BAGGR_EXTRA),
    ] {
        for name in names {
            tepinv.insert(*name, component_signal(group, name)?);
        }
    }
    for n in STRINGS {
        let mut state = Value::Str("Unknown".into());
        let mut volts = Value::Int(0);
        let mut amps = Value::Int(0);
        let positive = |v: &Value| -> Py<Value> {
            Ok(if !v.is_null() && py::gt(v, &Value::Int(0))? {
                v.clone()
            } else {
                Value::Int(0)
            })
        };
        for component in iter(pch)? {
            for signal in iter(item(&component, "signals")?)? {
                let name = item(&signal, "name")?;
                let Some(name) = name.as_str() else {
                    continue;
                };
                let value = || item(&signal, "value");
                let text = || item(&signal, "textValue");
                let mut both = |pvac_key: &str, pinv_key: &str, v: &Value| {
                    pvac.insert(pvac_key, v.clone());
                    tepinv.insert(pinv_key, v.clone());
                };
                if name == format!("PCH_PvState_{n}") {
                    state = text()?.clone();
                } else if name == format!("PCH_PvVoltage{n}") {
                    volts = positive(value()?)?;
                } else if name == format!("PCH_PvCurrent{n}") {
                    amps = positive(value()?)?;
                } else if name == "PCH_AcFrequency" {
                    both("PVAC_Fout", "PINV_Fout", value()?);
                } else if name == "PCH_AcVoltageAN" {
                    both("PVAC_VL1Ground", "PINV_VSplit1", value()?);
                } else if name == "PCH_AcVoltageBN" {
                    both("PVAC_VL2Ground", "PINV_VSplit2", value()?);
                } else if name == "PCH_AcVoltageAB" {
                    both("PVAC_Vout", "PINV_Vout", value()?);
                } else if name == "PCH_BatteryPower" {
                    let watts = value()?;
                    pvac.insert("PVAC_Pout", watts.clone());
                    let kw = py::div(py::or(watts, &Value::Int(0)), &Value::Int(1000))?;
                    tepinv.insert("PINV_Pout", kw);
                } else if name == "PCH_AcMode" {
                    both("PVAC_State", "PINV_State", text()?);
                }
            }
        }
        let watts = py::mul(&volts, &amps)?;
        let connected = contains(&state, &Value::Str("Pv_Active".into()))?;
        pvac.insert(format!("PVAC_PvState_{n}"), state);
        pvac.insert(format!("PVAC_PVMeasuredVoltage_{n}"), volts);
        pvac.insert(format!("PVAC_PVCurrent_{n}"), amps);
        pvac.insert(format!("PVAC_PVMeasuredPower_{n}"), watts);
        pvac.insert("manufacturer", "TESLA");
        pvac.insert("partNumber", pw_part);
        pvac.insert("serialNumber", pw_serial);
        pvs.insert(format!("PVS_String{n}_Connected"), connected);
    }
    Ok([pvac, pvs, tepinv])
}

fn build(src: &Src) -> Py<Option<Map>> {
    if !src.components.truthy() || !src.config.is_object() {
        return Ok(None);
    }
    let mut response = Map::new();
    for battery in iter_or_empty(get(src.config, "battery_blocks")?)? {
        let pw_din = item(&battery, "vin")?;
        let [pw_part, pw_serial] = split(pw_din, "--")?[..] else {
            return Err(Raise);
        };
        if !contains(item(&battery, "type")?, &Value::Str("Powerwall3".into()))? {
            continue;
        }
        let din = pw_din.as_str().unwrap_or_default();
        let Some((_, data)) = src.batteries.iter().find(|(d, _)| d == din) else {
            continue;
        };
        // A payload without `components.pch` is logged and skipped by the library.
        let Ok(components) = item(data, "components") else {
            continue;
        };
        let Ok(pch) = item(components, "pch") else {
            continue;
        };
        let alerts = group_alerts(components)?;
        tepods(&mut response, components, &battery, pw_din, &alerts)?;
        let [pvac, pvs, tepinv] = inverter(components, pch, pw_part, pw_serial)?;
        response.insert(format!("PVAC--{din}"), pvac);
        response.insert(format!("PVS--{din}"), pvs);
        response.insert(format!("TEPINV--{din}"), tepinv);
    }
    Ok(Some(response))
}
