//! `TEDAPI.vitals()` of pypowerwall 0.22.2: device blocks built from the full device controller.
//!
//! Blocks come out in the library's order (VITALS header, NEURIO, TRM, PVAC, PVS, STSTSM, TEPINV,
//! TEPOD, TESLA, TESYNC, TETHC, TEMSA), each with its keys in the library's order, including the
//! placeholders that are always `null` and the FROZEN quirks (`TESYNC--None--None`, the
//! `TESLA--<MSA serial>` block). The PW3 blocks of [`super::pw3`] are merged over them last.
//! `PVAC_PVMeasuredPower_X` is the DC power V × I, in the library's operand order.

use std::borrow::Cow;

use crate::json::{Map, Value};

use super::py::{
    self, contains, get, get_or, get_or_empty, index, item, iter, iter_or_empty, len, lookup, or,
    to_str, Dict, IsDict, Py, Raise, NONE,
};
use super::views::extract_fan_speeds;
use super::{meters, Src, PYPOWERWALL_VERSION};

fn ecu(kind: i64) -> Map {
    Map::new().with("ecuType", kind)
}

/// The identity keys every Tesla ECU block ends with, in the reference's order.
trait EcuIdentity {
    fn with_ecu_identity(self, part: Value, serial: Value, ecu_type: i64) -> Self;
}

impl EcuIdentity for Map {
    fn with_ecu_identity(self, part: Value, serial: Value, ecu_type: i64) -> Map {
        self.with("firmwareVersion", Value::Null)
            .with("lastCommunicationTime", Value::Null)
            .with("manufacturer", "TESLA")
            .with("partNumber", part)
            .with("serialNumber", serial)
            .with("teslaEnergyEcuAttributes", ecu(ecu_type))
    }
}

fn alerts_of(v: &Value) -> Value {
    or(lookup(v, &["alerts", "active"]), &Value::Array(Vec::new())).clone()
}

/// `_signal_value`: the first non-null of `value`, `boolValue`, `textValue`.
pub(crate) fn signal_value(signal: &Value) -> Value {
    let Value::Object(m) = signal else {
        return Value::Null;
    };
    ["value", "boolValue", "textValue"]
        .iter()
        .filter_map(|k| m.get(k))
        .find(|v| !v.is_null())
        .cloned()
        .unwrap_or(Value::Null)
}

fn signals_of(component: &Value) -> Py<Vec<Cow<'_, Value>>> {
    iter_or_empty(get(component, "signals")?)
}

/// `_msa_signals(component, prefix)`: `{name: value}` of the signals named `<prefix>*`.
fn msa_signals(component: &Value, prefix: &str) -> Py<Map> {
    let mut out = Map::new();
    for s in signals_of(component)? {
        if let Some(Value::Str(name)) = s.get("name") {
            if name.starts_with(prefix) {
                out.insert(name.clone(), signal_value(&s));
            }
        }
    }
    Ok(out)
}

/// `_msa_family(component)`: the one signal-name prefix (`THC`, `PINV`, …), or `""`.
fn msa_family(component: &Value) -> Py<String> {
    let mut families: Vec<&str> = Vec::new();
    let signals = signals_of(component)?;
    for s in &signals {
        if let Some(Value::Str(name)) = s.get("name") {
            let family = name.split('_').next().unwrap_or("");
            if !families.contains(&family) {
                families.push(family);
            }
        }
    }
    Ok(match families.as_slice() {
        [one] => one.to_string(),
        _ => String::new(),
    })
}

/// A dict component with a truthy serial and the given signal family.
fn is_family(c: &Value, family: &str) -> Py<bool> {
    Ok(c.is_object()
        && c.get("serialNumber").is_some_and(Value::truthy)
        && msa_family(c)? == family)
}

/// `_pw2_msa_module_pairing`: package serial → msa TEPINV component, paired by response order;
/// empty whenever the pairing cannot be proven.
fn pw2_module_pairing<'a>(msa: &'a Value, package_serials: &[Value]) -> Py<Dict<&'a Value>> {
    let mut known: Dict<()> = Dict::new();
    for s in package_serials {
        known.insert(s.clone(), ())?;
    }
    let mut pairs: Dict<&Value> = Dict::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut pending: Option<&str> = None;
    let components = match msa {
        Value::Array(a) if !a.is_empty() => a.as_slice(),
        v if !v.truthy() => &[],
        _ => {
            // Iterating a dict or string yields no dict components.
            iter(msa)?;
            &[]
        }
    };
    for component in components {
        let Some(Value::Str(serial)) = component.get("serialNumber") else {
            continue;
        };
        if serial.is_empty() {
            continue;
        }
        let serial = serial.as_str();
        match msa_family(component)?.as_str() {
            "THC" => {
                if pending.is_some() || seen.contains(&serial) || !known.contains(&serial.into())? {
                    return Ok(Dict::new());
                }
                seen.push(serial);
                pending = Some(serial);
            }
            "PINV" => {
                let Some(package) = pending.filter(|_| !seen.contains(&serial)) else {
                    return Ok(Dict::new());
                };
                seen.push(serial);
                pairs.insert(package.into(), component)?;
                pending = None;
            }
            _ if pending.is_some() => return Ok(Dict::new()),
            _ => {}
        }
    }
    if pending.is_some() || pairs.len() != known.len() {
        return Ok(Dict::new());
    }
    Ok(pairs)
}

/// `_sync_uptime_ms`: `SYNC_Uptime` (ms) from the msa component carrying the SYNC serial.
pub(crate) fn sync_uptime_ms(controller: &Value) -> Py<Value> {
    let Value::Str(serial) = lookup(controller, &["esCan", "bus", "SYNC", "packageSerialNumber"])
    else {
        return Ok(Value::Null);
    };
    if serial.is_empty() {
        return Ok(Value::Null);
    }
    for component in iter_or_empty(lookup(controller, &["components", "msa"]))? {
        if component.get("serialNumber").and_then(Value::as_str) != Some(serial.as_str()) {
            continue;
        }
        for signal in signals_of(&component)? {
            if signal.get("name").and_then(Value::as_str) != Some("SYNC_Uptime") {
                continue;
            }
            let value = signal.get("value").unwrap_or(&NONE);
            if py::is_number(value) && value.as_f64().is_some_and(|v| v.is_finite() && v >= 0.0) {
                return Ok(value.clone());
            }
        }
    }
    Ok(Value::Null)
}

/// `p['packageSerialNumber']` truthy, and the `part--serial` names of a package entry.
fn package(p: &Value, i: usize) -> Py<Option<(Value, Value)>> {
    if !item(p, "packageSerialNumber")?.truthy() {
        return Ok(None);
    }
    let fallback = Value::Str(i.to_string());
    let part = get_or(p, "packagePartNumber", &fallback)?.clone();
    let serial = get_or(p, "packageSerialNumber", &fallback)?.clone();
    Ok(Some((part, serial)))
}

fn pair_name(prefix: &str, part: &Value, serial: &Value) -> String {
    format!("{prefix}--{}--{}", to_str(part), to_str(serial))
}

/// PVAC, PVS and TESLA (inverter) blocks from `esCan.bus.PVAC` / `PVS` and `config.solars`.
fn inverters(config: &Value, status: &Value, vin: &Value) -> Py<(Map, Map, Map)> {
    let (mut pvac, mut pvs, mut tesla) = (Map::new(), Map::new(), Map::new());
    let empty = Value::object();
    let pvac_list = lookup(status, &["esCan", "bus", "PVAC"]);
    let pvs_list = lookup(status, &["esCan", "bus", "PVS"]);
    len(or(pvac_list, &empty))?;
    len(or(pvs_list, &empty))?;
    let fans = extract_fan_speeds(status)?;
    for (i, p) in iter_or_empty(pvac_list)?.iter().enumerate() {
        let Some((part, serial)) = package(p, i)? else {
            continue;
        };
        let name = pair_name("PVAC", &part, &serial);
        let logging = item(p, "PVAC_Logging")?;
        let mut v = Vec::new();
        for x in ["A", "B", "C", "D"] {
            v.push(item(logging, &format!("PVAC_PVMeasuredVoltage_{x}"))?.clone());
        }
        let mut c = Vec::new();
        for x in ["A", "B", "C", "D"] {
            c.push(item(logging, &format!("PVAC_PVCurrent_{x}"))?.clone());
        }
        let mut w = Vec::new();
        for (volts, amps) in v.iter().zip(&c) {
            w.push(py::mul(volts, amps)?);
        }
        let status_of = |k: &str| lookup(p, &["PVAC_Status", k]).clone();
        let logging_of = |k: &str| lookup(p, &["PVAC_Logging", k]).clone();
        let mut block = Map::new()
            .with("PVAC_Fout", status_of("PVAC_Fout"))
            .with("PVAC_GridState", Value::Null)
            .with("PVAC_InvState", Value::Null)
            .with("PVAC_Iout", Value::Null)
            .with("PVAC_LifetimeEnergyPV_Total", Value::Null);
        for (x, amps) in ["A", "B", "C", "D"].iter().zip(&c) {
            block.insert(format!("PVAC_PVCurrent_{x}"), amps.clone());
        }
        for (x, watts) in ["A", "B", "C", "D"].iter().zip(&w) {
            block.insert(format!("PVAC_PVMeasuredPower_{x}"), watts.clone());
        }
        for (x, volts) in ["A", "B", "C", "D"].iter().zip(&v) {
            block.insert(format!("PVAC_PVMeasuredVoltage_{x}"), volts.clone());
        }
        block.insert("PVAC_Pout", status_of("PVAC_Pout"));
        for x in ["A", "B", "C", "D"] {
            block.insert(format!("PVAC_PvState_{x}"), Value::Null);
        }
        let mut block = block
            .with("PVAC_Qout", Value::Null)
            .with("PVAC_State", status_of("PVAC_State"))
            .with("PVAC_VHvMinusChassisDC", Value::Null)
            .with("PVAC_VL1Ground", logging_of("PVAC_VL1Ground"))
            .with("PVAC_VL2Ground", logging_of("PVAC_VL2Ground"))
            .with("PVAC_Vout", status_of("PVAC_Vout"))
            .with("alerts", alerts_of(p))
            .with("PVI-PowerStatusSetpoint", Value::Null)
            .with("componentParentDin", Value::Null)
            .with_ecu_identity(part.clone(), serial.clone(), 296);
        if let Some(Value::Object(f)) = fans.get(&name).filter(|f| f.truthy()) {
            let rpm = |k: &str| f.get(k).cloned().unwrap_or(Value::Null);
            block.insert(
                "PVAC_Fan_Speed_Actual_RPM",
                rpm("PVAC_Fan_Speed_Actual_RPM"),
            );
            block.insert(
                "PVAC_Fan_Speed_Target_RPM",
                rpm("PVAC_Fan_Speed_Target_RPM"),
            );
        }

        if i < len(pvs_list)? {
            let pvs_i = index(pvs_list, i)?;
            let pvs_of = |k: &str| lookup(&pvs_i, &["PVS_Status", k]).clone();
            let strings: Vec<Value> = ["A", "B", "C", "D"]
                .iter()
                .map(|x| pvs_of(&format!("PVS_String{x}_Connected")))
                .collect();
            for (x, on) in ["A", "B", "C", "D"].iter().zip(&strings) {
                let state = if on.truthy() {
                    "PV_Active"
                } else {
                    "PV_Disabled"
                };
                block.insert(format!("PVAC_PvState_{x}"), state);
            }
            let mut pvs_block = Map::new()
                .with("PVS_EnableOutput", Value::Null)
                .with("PVS_SelfTestState", pvs_of("PVS_SelfTestState"))
                .with("PVS_State", pvs_of("PVS_State"));
            for (x, on) in ["A", "B", "C", "D"].iter().zip(strings) {
                pvs_block.insert(format!("PVS_String{x}_Connected"), on);
            }
            let pvs_block = pvs_block
                .with("PVS_vLL", pvs_of("PVS_vLL"))
                .with("alerts", alerts_of(&pvs_i))
                .with("componentParentDin", name.clone())
                .with_ecu_identity(part.clone(), serial.clone(), 297);
            pvs.insert(pair_name("PVS", &part, &serial), pvs_block);
        }
        pvac.insert(name, block);

        let (nameplate, brand) = solar_entry(config, i)?;
        let manufacturer = match &brand {
            Value::Str(b) if !b.is_empty() => Value::Str(b.to_uppercase()),
            b if !b.truthy() => Value::Str("TESLA".into()),
            _ => return Err(Raise),
        };
        tesla.insert(
            pair_name("TESLA", &part, &serial),
            Map::new()
                .with("componentParentDin", format!("STSTSM--{}", to_str(vin)))
                .with("firmwareVersion", Value::Null)
                .with("lastCommunicationTime", Value::Null)
                .with("manufacturer", manufacturer)
                .with(
                    "pvInverterAttributes",
                    Map::new().with("nameplateRealPowerW", nameplate),
                )
                .with(
                    "serialNumber",
                    format!("{}--{}", to_str(&part), to_str(&serial)),
                ),
        );
    }
    Ok((pvac, pvs, tesla))
}

/// `config['solars'][i]`'s (`power_rating_watts`, `brand`), when that entry exists.
fn solar_entry(config: &Value, i: usize) -> Py<(Value, Value)> {
    let default = Value::Array(vec![Value::object()]);
    if !contains(config, &"solars".into())? || i >= len(get_or(config, "solars", &default)?)? {
        return Ok((Value::Null, Value::Null));
    }
    let entry = index(item(config, "solars")?, i)?;
    Ok((
        get(&entry, "power_rating_watts")?.clone(),
        get(&entry, "brand")?.clone(),
    ))
}

/// The STSTSM (gateway) block.
fn ststsm(status: &Value, vin: &Value) -> Map {
    let (part, serial) = match vin {
        Value::Str(s) => (
            Value::Str(s.split("--").next().unwrap_or("").to_string()),
            Value::Str(s.split("--").last().unwrap_or("").to_string()),
        ),
        _ => (Value::Null, Value::Null),
    };
    Map::new().with(
        format!("STSTSM--{}", to_str(vin)),
        Map::new()
            .with("STSTSM-Location", "Gateway")
            .with("alerts", alerts_of(lookup(status, &["control"])))
            .with_ecu_identity(part, serial, 207),
    )
}

/// msa signals of the PW2 battery packages, looked up by package serial.
struct Pw2Msa {
    temps: Dict<Value>,
    thc: Dict<Map>,
    pinv: Dict<Map>,
    pod: Dict<Map>,
}

fn pw2_msa(status: &Value) -> Py<Pw2Msa> {
    let msa = lookup(status, &["components", "msa"]);
    let mut temps: Dict<Value> = Dict::new();
    for c in iter_or_empty(msa)? {
        let signals = "signals".into();
        let serial_key = "serialNumber".into();
        if !(contains(&c, &signals)? && contains(&c, &serial_key)?) {
            continue;
        }
        let serial = item(&c, "serialNumber")?;
        if !serial.truthy() {
            continue;
        }
        for s in iter(item(&c, "signals")?)? {
            if contains(&s, &"name".into())?
                && py::eq(item(&s, "name")?, &"THC_AmbientTemp".into())
                && contains(&s, &"value".into())?
            {
                temps.insert(serial.clone(), item(&s, "value")?.clone())?;
            }
        }
    }
    let mut thc: Dict<Map> = Dict::new();
    for c in iter_or_empty(msa)? {
        if is_family(&c, "THC")? {
            let signals = msa_signals(&c, "THC_")?;
            thc.setdefault(item(&c, "serialNumber")?.clone(), signals)?;
        }
    }
    let mut package_serials = Vec::new();
    for t in iter_or_empty(lookup(status, &["esCan", "bus", "THC"]))? {
        if let Some(s) = t.get("packageSerialNumber").filter(|s| s.truthy()) {
            package_serials.push(s.clone());
        }
    }
    let modules = pw2_module_pairing(msa, &package_serials)?;
    let mut pinv: Dict<Map> = Dict::new();
    for (pkg, c) in modules.iter() {
        pinv.insert(pkg.clone(), msa_signals(c, "PINV_")?)?;
    }
    if !package_serials.is_empty() && pinv.is_empty() {
        // The library evaluates this only to log; it still raises on a bad component.
        for c in iter_or_empty(msa)? {
            if is_family(&c, "PINV")? {
                break;
            }
        }
    }
    let mut tepods: Dict<Value> = Dict::new();
    for c in iter_or_empty(msa)? {
        if is_family(&c, "POD")? {
            tepods.insert(item(&c, "serialNumber")?.clone(), c.into_owned())?;
        }
    }
    let mut pod: Dict<Map> = Dict::new();
    for (pkg, module) in modules.iter() {
        let serial = get(module, "serialNumber")?;
        if let Some(c) = tepods.get(serial)? {
            pod.insert(pkg.clone(), msa_signals(c, "POD_")?)?;
        }
    }
    Ok(Pw2Msa {
        temps,
        thc,
        pinv,
        pod,
    })
}

/// TETHC, TEPINV and TEPOD blocks, one triple per `esCan.bus.THC` package.
fn batteries(status: &Value, vin: &Value) -> Py<(Map, Map, Map)> {
    let (mut tethc, mut tepinv, mut tepod) = (Map::new(), Map::new(), Map::new());
    let msa = pw2_msa(status)?;
    let parent_din = format!("STSTSM--{}", to_str(vin));
    let empty_list = Value::Array(Vec::new());
    let empty = Value::object();
    for (i, p) in iter_or_empty(lookup(status, &["esCan", "bus", "THC"]))?
        .iter()
        .enumerate()
    {
        let Some((part, serial)) = package(p, i)? else {
            continue;
        };
        let parent = pair_name("TETHC", &part, &serial);
        let thc_state = match msa.thc.get(&serial)? {
            Some(m) => m.get("THC_State").cloned().unwrap_or(Value::Null),
            None => Value::Null,
        };
        tethc.insert(
            parent.clone(),
            Map::new()
                .with("THC_AmbientTemp", msa.temps.get(&serial)?.cloned())
                .with("THC_State", thc_state)
                .with("alerts", alerts_of(p))
                .with("componentParentDin", parent_din.clone())
                .with_ecu_identity(part.clone(), serial.clone(), 224),
        );

        let aligned = |list: &'static str| -> Py<Value> {
            let data = or(lookup(status, &["esCan", "bus", list]), &empty_list);
            Ok(if i < len(data)? {
                index(data, i)?.into_owned()
            } else {
                empty.clone()
            })
        };
        let pod = aligned("POD")?;
        let remaining = lookup(&pod, &["POD_EnergyStatus", "POD_nom_energy_remaining"]);
        let full = lookup(&pod, &["POD_EnergyStatus", "POD_nom_full_pack_energy"]);
        let to_charge = if remaining.truthy() && full.truthy() {
            py::sub(full, remaining)?
        } else {
            Value::Null
        };
        let pod_msa = msa.pod.get(&serial)?;
        let pod_sig = |k: &str| {
            pod_msa
                .and_then(|m| m.get(k))
                .cloned()
                .unwrap_or(Value::Null)
        };
        tepod.insert(
            pair_name("TEPOD", &part, &serial),
            Map::new()
                .with("POD_ActiveHeating", Value::Null)
                .with("POD_CCVhold", Value::Null)
                .with("POD_ChargeComplete", Value::Null)
                .with("POD_ChargeRequest", Value::Null)
                .with("POD_DischargeComplete", Value::Null)
                .with("POD_PermanentlyFaulted", Value::Null)
                .with("POD_PersistentlyFaulted", Value::Null)
                .with(
                    "POD_available_charge_power",
                    pod_sig("POD_available_charge_power"),
                )
                .with(
                    "POD_available_dischg_power",
                    pod_sig("POD_available_dischg_power"),
                )
                .with("POD_enable_line", Value::Null)
                .with("POD_nom_energy_remaining", remaining)
                .with("POD_nom_energy_to_be_charged", to_charge)
                .with("POD_nom_full_pack_energy", full)
                .with("POD_state", Value::Null)
                .with("alerts", alerts_of(p))
                .with("componentParentDin", parent.clone())
                .with_ecu_identity(part.clone(), serial.clone(), 226),
        );

        let pinv = aligned("PINV")?;
        let pinv_msa = msa.pinv.get(&serial)?;
        let m = |k: &str| {
            pinv_msa
                .and_then(|m| m.get(k))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let s = |group: &str, k: &str| lookup(&pinv, &[group, k]).clone();
        tepinv.insert(
            pair_name("TEPINV", &part, &serial),
            Map::new()
                .with("PINV_EnergyCharged", m("PINV_EnergyCharged"))
                .with("PINV_EnergyDischarged", m("PINV_EnergyDischarged"))
                .with("PINV_Fout", s("PINV_Status", "PINV_Fout"))
                .with("PINV_GridState", s("PINV_Status", "PINV_GridState"))
                .with("PINV_HardwareEnableLine", m("PINV_HardwareEnableLine"))
                .with("PINV_HeatsinkTemp", m("PINV_HeatsinkTemp"))
                .with(
                    "PINV_LifetimeEnergyCharged",
                    m("PINV_LifetimeEnergyCharged"),
                )
                .with(
                    "PINV_LifetimeEnergyDischarged",
                    m("PINV_LifetimeEnergyDischarged"),
                )
                .with("PINV_PllFrequency", m("PINV_PllFrequency"))
                .with("PINV_PllLocked", m("PINV_PllLocked"))
                .with("PINV_Pnom", s("PINV_PowerCapability", "PINV_Pnom"))
                .with("PINV_Pout", s("PINV_Status", "PINV_Pout"))
                .with("PINV_PowerLimiter", m("PINV_PowerLimiter"))
                .with("PINV_Qout", m("PINV_Qout"))
                .with("PINV_ReadyForGridForming", m("PINV_ReadyForGridForming"))
                .with("PINV_State", s("PINV_Status", "PINV_State"))
                .with("PINV_VSplit1", s("PINV_AcMeasurements", "PINV_VSplit1"))
                .with("PINV_VSplit2", s("PINV_AcMeasurements", "PINV_VSplit2"))
                .with("PINV_Vout", s("PINV_Status", "PINV_Vout"))
                .with("alerts", alerts_of(&pinv))
                .with("componentParentDin", parent.clone())
                .with_ecu_identity(part.clone(), serial.clone(), 253),
        );
    }
    Ok((tethc, tepinv, tepod))
}

const ISLAND_KEYS: &[&str] = &[
    "ISLAND_FreqL1_Load",
    "ISLAND_FreqL1_Main",
    "ISLAND_FreqL2_Load",
    "ISLAND_FreqL2_Main",
    "ISLAND_FreqL3_Load",
    "ISLAND_FreqL3_Main",
    "ISLAND_GridConnected",
    "ISLAND_GridState",
    "ISLAND_L1L2PhaseDelta",
    "ISLAND_L1L3PhaseDelta",
    "ISLAND_L1MicrogridOk",
    "ISLAND_L2L3PhaseDelta",
    "ISLAND_L2MicrogridOk",
    "ISLAND_L3MicrogridOk",
    "ISLAND_PhaseL1_Main_Load",
    "ISLAND_PhaseL2_Main_Load",
    "ISLAND_PhaseL3_Main_Load",
    "ISLAND_ReadyForSynchronization",
    "ISLAND_VL1N_Load",
    "ISLAND_VL1N_Main",
    "ISLAND_VL2N_Load",
    "ISLAND_VL2N_Main",
    "ISLAND_VL3N_Load",
    "ISLAND_VL3N_Main",
];

/// The `METER_<X|Y|Z>_*` keys of one meter, in the library's order.
fn meter_keys(meter: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for ct in ["A", "B", "C"] {
        for k in ["I", "InstReactivePower", "InstRealPower"] {
            keys.push(format!("METER_{meter}_CT{ct}_{k}"));
        }
    }
    keys.push(format!("METER_{meter}_LifetimeEnergyExport"));
    keys.push(format!("METER_{meter}_LifetimeEnergyImport"));
    for n in 1..=3 {
        keys.push(format!("METER_{meter}_VL{n}N"));
    }
    keys
}

/// The TESYNC (Backup Gateway sync board) block; always present (FROZEN `TESYNC--None--None`).
fn tesync(status: &Value, vin: &Value) -> Py<Map> {
    let sync = lookup(status, &["esCan", "bus", "SYNC"]);
    let islander = lookup(status, &["esCan", "bus", "ISLANDER"]);
    let part = get_or_empty(sync, "packagePartNumber", &NONE)?;
    let serial = get_or_empty(sync, "packageSerialNumber", &NONE)?;
    let mut sync_msa = Map::new();
    for c in iter_or_empty(lookup(status, &["components", "msa"]))? {
        if c.is_object()
            && serial.truthy()
            && c.get("serialNumber").is_some_and(|s| py::eq(s, serial))
        {
            for (k, v) in msa_signals(&c, "SYNC_")? {
                if !matches!(sync_msa.get(&k), Some(old) if !old.is_null()) {
                    sync_msa.insert(k, v);
                }
            }
        }
    }
    let mut block = Map::new();
    for k in ISLAND_KEYS {
        let group = if *k == "ISLAND_GridConnected" {
            "ISLAND_GridConnection"
        } else {
            "ISLAND_AcMeasurements"
        };
        block.insert(*k, lookup(islander, &[group, k]).clone());
    }
    for meter in ["X", "Y"] {
        let group = format!("METER_{meter}_AcMeasurements");
        for k in meter_keys(meter) {
            let v = lookup(sync, &[&group, &k]).clone();
            block.insert(k, v);
        }
    }
    let msa_sig = |k: &str| sync_msa.get(k).cloned().unwrap_or(Value::Null);
    let block = block
        .with("SYNC_ExternallyPowered", msa_sig("SYNC_ExternallyPowered"))
        .with("SYNC_SiteSwitchEnabled", msa_sig("SYNC_SiteSwitchEnabled"))
        .with("SYNC_Uptime", sync_uptime_ms(status)?)
        .with("alerts", alerts_of(sync))
        .with("componentParentDin", format!("STSTSM--{}", to_str(vin)))
        .with("firmwareVersion", Value::Null)
        .with("manufacturer", "TESLA")
        .with("partNumber", part.clone())
        .with("serialNumber", serial.clone())
        .with("teslaEnergyEcuAttributes", ecu(259));
    Ok(Map::new().with(pair_name("TESYNC", part, serial), block))
}

/// The PW3 Backup Switch: the first msa component with a serial and a `METER_Z*` signal, as
/// an `esCan.bus.MSA`-shaped object (`METER_Z_VL{n}G` shown as `METER_Z_VL{n}N`).
fn pw3_msa(status: &Value) -> Py<Option<Value>> {
    for component in iter_or_empty(lookup(status, &["components", "msa"]))? {
        if !get(&component, "serialNumber")?.truthy() {
            continue;
        }
        let signals = get_or(&component, "signals", &Value::Array(Vec::new()))?.clone();
        let mut meter_z = false;
        for s in iter(&signals)? {
            match get_or(&s, "name", &Value::Str(String::new()))? {
                Value::Str(name) if name.starts_with("METER_Z") => {
                    meter_z = true;
                    break;
                }
                Value::Str(_) => {}
                _ => return Err(Raise),
            }
        }
        if !meter_z {
            continue;
        }
        let mut by_name: Dict<Value> = Dict::new();
        for s in iter(&signals)? {
            if contains(&s, &"name".into())? {
                by_name.insert(item(&s, "name")?.clone(), get(&s, "value")?.clone())?;
            }
        }
        let sig =
            |k: &str| -> Py<Value> { Ok(by_name.get(&k.into())?.cloned().unwrap_or(Value::Null)) };
        let mut meter = Map::new();
        for k in meter_keys("Z") {
            let source = match k.strip_suffix('N') {
                Some(vl) if k.starts_with("METER_Z_VL") => format!("{vl}G"),
                _ => k.clone(),
            };
            meter.insert(k, sig(&source)?);
        }
        return Ok(Some(Value::Object(
            Map::new()
                .with("packagePartNumber", get(&component, "partNumber")?)
                .with("packageSerialNumber", get(&component, "serialNumber")?)
                .with("METER_Z_AcMeasurements", meter),
        )));
    }
    Ok(None)
}

/// The TEMSA block (when a serial is found) and the FROZEN `TESLA--<serial>` meter block.
fn temsa(status: &Value, vin: &Value) -> Py<(Map, Map)> {
    let mut msa = lookup(status, &["esCan", "bus", "MSA"]).clone();
    let mut part = get_or_empty(&msa, "packagePartNumber", &NONE)?.clone();
    let mut serial = get_or_empty(&msa, "packageSerialNumber", &NONE)?.clone();
    if !serial.truthy() {
        if let Some(found) = pw3_msa(status)? {
            part = lookup(&found, &["packagePartNumber"]).clone();
            serial = lookup(&found, &["packageSerialNumber"]).clone();
            msa = found;
        }
    }
    let parent = format!("STSTSM--{}", to_str(vin));
    let mut temsa = Map::new();
    if serial.truthy() {
        let mut block = Map::new();
        for k in meter_keys("Z") {
            let v = lookup(&msa, &["METER_Z_AcMeasurements", &k]).clone();
            block.insert(k, v);
        }
        let block = block
            .with("alerts", alerts_of(&msa))
            .with("componentParentDin", parent.clone())
            .with("firmwareVersion", Value::Null)
            .with("manufacturer", "TESLA")
            .with("partNumber", part.clone())
            .with("serialNumber", serial.clone())
            .with("teslaEnergyEcuAttributes", ecu(300));
        temsa.insert(pair_name("TEMSA", &part, &serial), block);
    }
    let tesla = Map::new().with(
        format!("TESLA--{}", to_str(&serial)),
        Map::new()
            .with("componentParentDin", parent)
            .with("lastCommunicationTime", Value::Null)
            .with("manufacturer", "TESLA")
            .with(
                "meterAttributes",
                Map::new().with("meterLocation", vec![Value::Int(1)]),
            )
            .with("serialNumber", serial),
    );
    Ok((temsa, tesla))
}

/// `TEDAPI.vitals()`: `None` without a config and controller object; `Err` where it raises.
pub(crate) fn vitals(src: &Src, pw3: Option<&Map>) -> Py<Option<Map>> {
    let (config, status) = (src.config, src.controller);
    if !status.is_object() || !config.is_object() {
        return Ok(None);
    }
    let header = Map::new().with(
        "VITALS",
        Map::new()
            .with(
                "text",
                "Device vitals generated from Tesla Powerwall Gateway TEDAPI",
            )
            .with("timestamp", src.timestamp)
            .with("gateway", src.host)
            .with("pyPowerwall", PYPOWERWALL_VERSION),
    );
    let neurio_cfg = meters::derive_meter_config(config, meters::NEURIO_TYPES)?;
    let (neurio, _) = meters::neurio(config, status, &neurio_cfg)?;
    let remote_cfg = meters::derive_meter_config(config, meters::REMOTE_METER_TYPES)?;
    let (remote, _) = meters::remote(config, status, &remote_cfg)?;
    let vin = lookup(config, &["vin"]);
    let (pvac, pvs, mut tesla) = inverters(config, status, vin)?;
    let ststsm = ststsm(status, vin);
    let (tethc, tepinv, tepod) = batteries(status, vin)?;
    let tesync = tesync(status, vin)?;
    let (temsa, tesla_meter) = temsa(status, vin)?;
    py::update(&mut tesla, tesla_meter);

    let mut vitals = header;
    for group in [
        neurio, remote, pvac, pvs, ststsm, tepinv, tepod, tesla, tesync, tethc, temsa,
    ] {
        py::update(&mut vitals, group);
    }
    if let Some(pw3) = pw3 {
        py::update(&mut vitals, pw3.clone());
    }
    Ok(Some(vitals))
}
