//! Wired Neurio meters and Tesla Remote Meters: config lookup and per-CT readings.
//!
//! Both the vitals (`NEURIO--*`, `TRM--*` blocks) and the aggregates (site and solar fallbacks)
//! read these, so they live in one place. Mirrors pypowerwall 0.22.2 `derive_meter_config`,
//! `aggregate_neurio_data` and `aggregate_remote_meter_data`, including which CTs are skipped and
//! how duplicate meter entries merge.

use crate::json::{Map, Value};

use super::py::{
    self, get, get_or, item, iter_or_empty, lookup, or, to_str, Dict, IsDict, Py, Raise,
};

/// Meter types of a wired Neurio meter.
pub const NEURIO_TYPES: &[&str] = &["neurio_w2_tcp"];
/// Meter types of a Tesla Remote Meter (both report through `teslaRemoteMeter`).
pub const REMOTE_METER_TYPES: &[&str] = &["trm_mb", "trm_wifi"];

/// One configured meter, merged over the config entries that share its device serial.
#[derive(Debug, Clone)]
pub struct MeterConfig {
    pub kind: Value,
    pub location: Vec<Value>,
    pub cts: Vec<Value>,
    pub scale: Value,
}

/// `derive_meter_config(config, types)`: device serial → meter configuration.
pub fn derive_meter_config(config: &Value, types: &[&str]) -> Py<Dict<MeterConfig>> {
    let mut out: Dict<MeterConfig> = Dict::new();
    let meters = match config {
        Value::Object(m) => m.get("meters").unwrap_or(&py::NONE),
        _ => &py::NONE,
    };
    let Value::Array(meters) = meters else {
        return Ok(out);
    };
    let four_false = || vec![Value::Bool(false); 4];
    for meter in meters {
        if !meter.is_object() {
            continue;
        }
        let kind = get(meter, "type")?;
        if !types.iter().any(|t| py::eq(kind, &Value::Str((*t).into()))) {
            continue;
        }
        let serial = lookup(meter, &["connection", "device_serial"]);
        if !serial.truthy() {
            continue;
        }
        let cts = match meter.get("cts") {
            Some(Value::Array(a)) => a.clone(),
            _ => four_false(),
        };
        let location = get_or(meter, "location", &Value::Str(String::new()))?.clone();
        match out.position(serial)? {
            Some(i) => {
                let entry = out.value_mut(i).ok_or(Raise)?;
                for (i, ct) in cts.iter().enumerate() {
                    if !ct.truthy() {
                        continue;
                    }
                    *entry.cts.get_mut(i).ok_or(Raise)? = Value::Bool(true);
                    *entry.location.get_mut(i).ok_or(Raise)? = location.clone();
                }
            }
            None => {
                let scale = get_or(meter, "real_power_scale_factor", &Value::Int(1))?.clone();
                out.insert(
                    serial.clone(),
                    MeterConfig {
                        kind: kind.clone(),
                        location: vec![location; 4],
                        cts,
                        scale,
                    },
                )?;
            }
        }
    }
    Ok(out)
}

/// The per-CT values shared by Neurio and remote-meter readings.
struct CtReading<'a> {
    index: usize,
    ct: &'a Value,
    real_power: Value,
    location: Value,
}

/// Applies the meter configuration to one CT: `None` when the CT is switched off.
fn configured_ct<'a>(
    cfg: Option<&MeterConfig>,
    index: usize,
    ct: &'a Value,
    power: impl Fn(&Value) -> Py<Value>,
) -> Py<Option<CtReading<'a>>> {
    if let Some(cfg) = cfg {
        if cfg.cts.get(index).is_some_and(|on| !on.truthy()) {
            return Ok(None);
        }
    }
    let factor = cfg.map_or(&py::NONE, |c| &c.scale);
    let factor = or(factor, &Value::Int(1));
    let real_power = py::mul(&power(ct)?, factor)?;
    let location = cfg
        .and_then(|c| c.location.get(index).cloned())
        .unwrap_or(Value::Null);
    Ok(Some(CtReading {
        index,
        ct,
        real_power,
        location,
    }))
}

/// `aggregate_neurio_data`: (`NEURIO--<serial>` vitals blocks, `CT<i>` → CT reading).
pub fn neurio(config: &Value, status: &Value, meters: &Dict<MeterConfig>) -> Py<(Map, Map)> {
    let mut flat = Map::new();
    let mut hierarchy = Map::new();
    let readings = iter_or_empty(lookup(status, &["neurio", "readings"]))?;
    for (c, n) in readings.iter().enumerate() {
        let n: &Value = n;
        let sn = get_or(n, "serial", &Value::Str((1000 + c).to_string()))?.clone();
        let cfg = meters.get(&sn)?;
        let mut cts_flat = Map::new();
        let data_read = item(n, "dataRead")?;
        for (i, ct) in iter_or_empty(data_read)?.iter().enumerate() {
            let ct: &Value = ct;
            let power = |ct: &Value| Ok(get_or(ct, "realPowerW", &Value::Int(0))?.clone());
            let Some(r) = configured_ct(cfg, i, ct, power)? else {
                continue;
            };
            let ct_map = Map::new()
                .with("Index", r.index)
                .with("InstRealPower", r.real_power)
                .with("InstReactivePower", get(r.ct, "reactivePowerVAR")?)
                .with("InstVoltage", get(r.ct, "voltageV")?)
                .with("InstCurrent", get(r.ct, "currentA")?)
                .with("Location", r.location);
            for (k, v) in ct_map.iter().filter(|(k, _)| *k != "Index") {
                cts_flat.insert(format!("NEURIO_CT{i}_{k}"), v.clone());
            }
            hierarchy.insert(format!("CT{i}"), ct_map);
        }
        let kind = cfg.map_or(&py::NONE, |c| &c.kind);
        let manufacturer = if py::eq(kind, &Value::Str("neurio_w2_tcp".into())) {
            Value::Str("NEURIO".into())
        } else {
            Value::Null
        };
        let rest = Map::new()
            .with("componentParentDin", lookup(config, &["vin"]))
            .with("firmwareVersion", Value::Null)
            .with("lastCommunicationTime", lookup(n, &["timestamp"]))
            .with("manufacturer", manufacturer)
            .with(
                "meterAttributes",
                Map::new().with("meterLocation", Vec::<Value>::new()),
            )
            .with("serialNumber", sn.clone());
        py::update(&mut cts_flat, rest);
        flat.insert(format!("NEURIO--{}", to_str(&sn)), cts_flat);
    }
    Ok((flat, hierarchy))
}

/// `aggregate_remote_meter_data`: (`TRM--<din>` vitals blocks, `<din>:<i>` → CT reading).
pub fn remote(config: &Value, controller: &Value, meters: &Dict<MeterConfig>) -> Py<(Map, Map)> {
    let mut flat = Map::new();
    let mut hierarchy = Map::new();
    for m in iter_or_empty(lookup(controller, &["teslaRemoteMeter", "meters"]))? {
        let m: &Value = &m;
        let din = get(m, "din")?;
        if !din.truthy() {
            continue;
        }
        let empty = Value::object();
        let reading = or(get(m, "reading")?, &empty);
        let cfg = meters.get(din)?;
        let timestamp = get(reading, "timestamp")?;
        let mut cts_flat = Map::new();
        for (i, ct) in iter_or_empty(get(reading, "ctReadings")?)?
            .iter()
            .enumerate()
        {
            let ct: &Value = ct;
            let power = |ct: &Value| Ok(or(get(ct, "realPowerW")?, &Value::Int(0)).clone());
            let Some(r) = configured_ct(cfg, i, ct, power)? else {
                continue;
            };
            let ct_map = Map::new()
                .with("Index", r.index)
                .with("InstRealPower", r.real_power)
                .with("InstReactivePower", get(r.ct, "reactivePowerVAR")?)
                .with("InstVoltage", get(r.ct, "voltageV")?)
                .with("InstCurrent", get(r.ct, "currentA")?)
                .with("EnergyExportedWs", get(r.ct, "energyExportedWs")?)
                .with("EnergyImportedWs", get(r.ct, "energyImportedWs")?)
                .with("Location", r.location)
                .with("Timestamp", timestamp);
            for (k, v) in ct_map
                .iter()
                .filter(|(k, _)| *k != "Index" && *k != "Timestamp")
            {
                cts_flat.insert(format!("TRM_CT{i}_{k}"), v.clone());
            }
            hierarchy.insert(format!("{}:{i}", to_str(din)), ct_map);
        }
        let configured = cfg.is_some_and(|c| c.kind.truthy());
        let rest = Map::new()
            .with("componentParentDin", lookup(config, &["vin"]))
            .with("firmwareVersion", get(reading, "firmwareVersion")?)
            .with("lastCommunicationTime", timestamp)
            .with(
                "manufacturer",
                if configured {
                    Value::Str("TESLA".into())
                } else {
                    Value::Null
                },
            )
            .with(
                "meterAttributes",
                Map::new().with("meterLocation", Vec::<Value>::new()),
            )
            .with("serialNumber", din);
        py::update(&mut cts_flat, rest);
        flat.insert(format!("TRM--{}", to_str(din)), cts_flat);
    }
    Ok((flat, hierarchy))
}

/// `get_remote_meter_readings(config)`: the remote-meter CT readings, `{}` without a configured
/// remote meter or without a controller answer.
pub fn remote_readings(config: &Value, controller: &Value) -> Py<Map> {
    if !config.is_object() {
        return Ok(Map::new());
    }
    let meters = derive_meter_config(config, REMOTE_METER_TYPES)?;
    if meters.is_empty() || !controller.is_object() {
        return Ok(Map::new());
    }
    Ok(remote(config, controller, &meters)?.1)
}
