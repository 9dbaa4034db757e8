//! Local mode: the gateway's own REST answers (and the `/api/devices/vitals` protobuf) mapped
//! to the [`Facade`], as pypowerwall 0.22.2's `PyPowerwallLocal` + `Powerwall` compute it.
//!
//! In local mode most facade calls are pass-through: `pw.poll(uri)` is the gateway's JSON
//! (or its text, when the content type is not JSON), so the answers carry the gateway's own
//! key order and number formats. What is computed here:
//! * `vitals()`: the protobuf decoded into the library's dict ([`vitals_map`]);
//! * `strings()` / `alerts()`: from the vitals, or — without vitals (firmware ≥ 23.44) — from
//!   `/api/solar_powerwall` (`pvac_status.string_vitals`, `pvac_alerts`, `pvs_alerts`);
//! * `get_time_remaining()`: `/api/system_status` `nominal_energy_remaining` / load W;
//! * hybrid mode: vitals and everything built on them (strings, temps, alerts, fans,
//!   `/tedapi/*`) come from the TEDAPI facade, the rest from local REST.
//!
//! Pure functions, no panic on any input; `None` where the library returns `None` or raises.

use std::sync::Arc;

use crate::gateway::facade::Facade;
use crate::gateway::vitals_pb::{self, AttributeKind, DeviceWithVitals, VitalValue};
use crate::json::{Map, Packed, Value};

use super::py::{self, iter, Py, Raise};
use super::views;

/// What one local-mode tick fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalData {
    /// `poll(uri)` per URI: the parsed JSON, a `Str` for a non-JSON answer, or `None` where the
    /// library returns `None` (error, empty body, negative cache). Absent URIs are `None` too.
    pub api: Vec<(String, Option<Value>)>,
    /// Raw `/api/devices/vitals` bytes; `None` when not available.
    pub vitals: Option<Vec<u8>>,
    /// Hybrid mode: the facade of the embedded TEDAPI client (its vitals replace the local ones).
    pub tedapi: Option<Facade>,
}

impl LocalData {
    /// `poll(uri)`.
    pub fn get(&self, uri: &str) -> Option<&Value> {
        self.api
            .iter()
            .find(|(k, _)| k == uri)
            .and_then(|(_, v)| v.as_ref())
            .filter(|v| !v.is_null())
    }
}

/// Decodes `/api/devices/vitals` into `vitals()`'s dict: device DIN → primary fields, attribute
/// objects, every vital by name and, when non-empty, `alerts`. Devices sharing a DIN are merged.
pub fn vitals_map(devices: &[DeviceWithVitals]) -> Map {
    let mut output = Map::new();
    let empty = vitals_pb::Device::default();
    for d in devices {
        let device = d.device.as_ref().unwrap_or(&empty);
        let name = device.din.clone().unwrap_or_default();
        if !output.contains_key(&name) {
            let mut m = Map::new();
            let strings = [
                ("componentParentDin", &device.component_parent_din),
                ("partNumber", &device.part_number),
                ("serialNumber", &device.serial_number),
                ("manufacturer", &device.manufacturer),
                ("firmwareVersion", &device.firmware_version),
            ];
            for (k, v) in strings {
                if let Some(v) = v {
                    m.insert(k, v.as_str());
                }
            }
            if let Some(t) = device.first_communication_time {
                m.insert("firstCommunicationTime", t);
            }
            if let Some(t) = device.last_communication_time {
                m.insert("lastCommunicationTime", t);
            }
            output.insert(name.clone(), m);
        }
        let Some(Value::Object(block)) = output.get_mut(&name) else {
            continue;
        };
        if let Some(kind) = device.attributes.as_ref().and_then(|a| a.kind.as_ref()) {
            let u = |x: u64| {
                i64::try_from(x)
                    .map(Value::Int)
                    .unwrap_or(Value::Float(x as f64))
            };
            let (key, attrs) = match kind {
                AttributeKind::TeslaEnergyEcu { ecu_type } => (
                    "teslaEnergyEcuAttributes",
                    Map::new().with("ecuType", *ecu_type as i64),
                ),
                AttributeKind::Generator {
                    real_power_w,
                    apparent_power_va,
                } => (
                    "generatorAttributes",
                    Map::new()
                        .with("nameplateRealPowerW", u(*real_power_w))
                        .with("nameplateApparentPowerVa", u(*apparent_power_va)),
                ),
                AttributeKind::PvInverter { real_power_w } => (
                    "pvInverterAttributes",
                    Map::new().with("nameplateRealPowerW", u(*real_power_w)),
                ),
                AttributeKind::Meter { locations } => (
                    "meterAttributes",
                    Map::new().with(
                        "meterLocation",
                        locations
                            .iter()
                            .map(|l| Value::Int(*l as i64))
                            .collect::<Vec<_>>(),
                    ),
                ),
            };
            block.insert(key, attrs);
        }
        for v in &d.vitals {
            let value = match &v.value {
                None => Value::Null,
                Some(VitalValue::Int(i)) => Value::Int(*i),
                Some(VitalValue::Float(f)) => Value::Float(*f),
                Some(VitalValue::Str(s)) => Value::Str(s.clone()),
                Some(VitalValue::Bool(b)) => Value::Bool(*b),
            };
            block.insert(v.name.clone(), value);
        }
        if !d.alerts.is_empty() {
            block.insert(
                "alerts",
                d.alerts
                    .iter()
                    .map(|a| Value::from(a.as_str()))
                    .collect::<Vec<_>>(),
            );
        }
    }
    output
}

/// `PyPowerwallLocal.vitals()`: `None` without a (non-empty) stream; `Err` when the protobuf
/// does not decode (the library raises).
pub fn decode_vitals(stream: Option<&[u8]>) -> Py<Option<Map>> {
    match stream {
        None | Some([]) => Ok(None),
        Some(b) => match vitals_pb::decode(b) {
            Ok(devices) => Ok(Some(vitals_map(&devices))),
            Err(e) => {
                log::debug!("local /api/devices/vitals: {e}");
                Err(Raise)
            }
        },
    }
}

/// `strings()` without vitals: `/api/solar_powerwall` `pvac_status.string_vitals` named
/// `A, B, C, D, A1, …` with `Connected`, `Voltage`, `Current`, `Power`.
fn strings_from_solar_powerwall(payload: Option<&Value>) -> Py<Value> {
    let mut result = Map::new();
    let Some(payload) = payload.filter(|p| p.truthy()) else {
        return Ok(Value::Object(result));
    };
    if !py::contains(payload, &Value::from("pvac_status"))? {
        return Ok(Value::Object(result));
    }
    let pvac = py::item(payload, "pvac_status")?;
    if !py::contains(pvac, &Value::from("string_vitals"))? {
        return Ok(Value::Object(result));
    }
    let names: Vec<String> = ["", "1", "2", "3", "4", "5", "6", "7", "8"]
        .iter()
        .flat_map(|n| ["A", "B", "C", "D"].map(|l| format!("{l}{n}")))
        .collect();
    for (i, s) in iter(py::item(pvac, "string_vitals")?)?.iter().enumerate() {
        let Some(name) = names.get(i) else { break };
        let entry = Map::new()
            .with("Connected", py::item(s, "connected")?.clone())
            .with("Voltage", py::item(s, "measured_voltage")?.clone())
            .with("Current", py::item(s, "current")?.clone())
            .with("Power", py::item(s, "measured_power")?.clone());
        result.insert(name.clone(), entry);
    }
    Ok(Value::Object(result))
}

/// The alerts `/api/solar_powerwall` reports as `true` (`pvac_alerts`, then `pvs_alerts`).
fn alerts_from_solar_powerwall(payload: Option<&Value>) -> Py<Vec<Value>> {
    let mut out = Vec::new();
    let empty = Value::object();
    let data = payload.filter(|p| p.truthy()).unwrap_or(&empty);
    for key in ["pvac_alerts", "pvs_alerts"] {
        let section = py::or(py::get(data, key)?, &empty);
        let Value::Object(m) = section else {
            return Err(Raise);
        };
        for (alert, v) in m.iter() {
            if *v == Value::Bool(true) {
                out.push(Value::from(alert.as_str()));
            }
        }
    }
    Ok(out)
}

/// `PyPowerwallLocal.get_time_remaining()`.
fn time_remaining(system_status: Option<&Value>, aggregates: Option<&Value>) -> Option<f64> {
    let remaining = system_status?
        .get("nominal_energy_remaining")
        .filter(|v| !v.is_null())?;
    // `power()` falls back to 0.0 for every flow when any lookup fails.
    let load = ["site", "solar", "battery", "load"]
        .iter()
        .map(|s| {
            aggregates
                .and_then(|a| a.path(&[s, "instant_power"]))
                .cloned()
        })
        .collect::<Option<Vec<Value>>>()
        .and_then(|v| v.into_iter().nth(3))
        .unwrap_or(Value::Float(0.0));
    let load = if load.truthy() { load } else { Value::Int(0) };
    if !py::gt(&load, &Value::Int(0)).ok()? {
        return None;
    }
    py::div(remaining, &load).ok()?.as_f64()
}

/// The facade of a local-mode gateway.
pub fn local(data: &LocalData) -> Facade {
    let hybrid = data.tedapi.as_ref();
    let vitals: Py<Option<Map>> = match hybrid {
        Some(t) => Ok(t.vitals().and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })),
        None => decode_vitals(data.vitals.as_deref()),
    };
    let has_vitals = matches!(&vitals, Ok(Some(m)) if !m.is_empty());
    let solar_powerwall = data.get("/api/solar_powerwall");
    let grid_status: Py<Option<Value>> = Ok(data.get("/api/system_status/grid_status").cloned());

    let (strings, strings_verbose) = if has_vitals || vitals.is_err() {
        (
            views::strings(&vitals, false).ok(),
            views::strings(&vitals, true).ok(),
        )
    } else {
        let s = strings_from_solar_powerwall(solar_powerwall).ok();
        (s.clone(), s)
    };
    let alerts = if has_vitals || vitals.is_err() {
        views::alerts(&vitals, &grid_status).ok()
    } else {
        // Fold the solar_powerwall alerts in as one pseudo-device so the grid alert and the
        // renaming follow the same code path.
        alerts_from_solar_powerwall(solar_powerwall)
            .ok()
            .and_then(|found| {
                let pseudo = Map::new().with("", Map::new().with("alerts", found));
                views::alerts(&Ok(Some(pseudo)), &grid_status).ok()
            })
    };

    let status: Py<Option<Value>> = Ok(data.get("/api/status").cloned());
    let system_status = data.get("/api/system_status").cloned();
    let operation: Py<Option<Value>> = Ok(data.get("/api/operation").cloned());

    let mut api = Vec::new();
    for (uri, v) in &data.api {
        api.push((uri.clone(), Arc::new(v.clone().unwrap_or(Value::Null))));
    }

    Facade {
        api,
        level: views::level(&Ok(data.get("/api/system_status/soe").cloned())),
        grid_status: data.get("/api/system_status/grid_status").cloned(),
        strings,
        strings_verbose,
        temps: views::temps(&vitals).ok(),
        alerts,
        fans: hybrid.and_then(|t| t.fans.clone()),
        battery_blocks: views::battery_blocks(&Ok(system_status.clone()), &vitals)
            .ok()
            .flatten(),
        reserve: views::reserve(&operation),
        mode: views::mode(&operation),
        time_remaining: time_remaining(system_status.as_ref(), data.get("/api/meters/aggregates")),
        version: views::status_str(&status, "version"),
        din: views::status_str(&status, "din"),
        uptime: views::status_str(&status, "up_time_seconds"),
        site_name: data
            .get("/api/site_info/site_name")
            .and_then(|v| v.get("site_name"))
            .and_then(Value::as_str)
            .map(str::to_string),
        status: status.ok().flatten(),
        system_status,
        tedapi: hybrid.and_then(|t| t.tedapi.clone()),
        pw3: hybrid.is_some_and(|t| t.pw3),
        grid_charging: None,
        grid_export: None,
        // Last: every field above has read `vitals` (moved into the packing, not copied).
        vitals: vitals
            .ok()
            .flatten()
            .map(|m| Packed::new(&Value::Object(m))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    const SAMPLE: &[u8] = include_bytes!("../../sim/fixtures/pw2/devices_vitals.bin");

    fn golden(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden/local")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn sample_vitals_match_the_reference_rendering() {
        let v = decode_vitals(Some(SAMPLE)).unwrap().unwrap();
        let value = Value::Object(v);
        assert_eq!(value.to_py_pretty_sorted(), golden("vitals.json"));
        assert_eq!(value.to_py(), golden("pw.vitals.json"));
    }

    #[test]
    fn no_vitals_falls_back_to_solar_powerwall() {
        let sp = parse(
            r#"{"pvac_status": {"string_vitals": [{"string_id": 1, "connected": true, "measured_voltage": 300.5, "current": 2.0, "measured_power": 601}]}, "pvac_alerts": {"PVAC_a_Hot": true, "PVAC_b": false}, "pvs_alerts": {"PVS_c": true}}"#,
        )
        .unwrap();
        let data = LocalData {
            api: vec![
                ("/api/solar_powerwall".into(), Some(sp)),
                (
                    "/api/system_status/grid_status".into(),
                    Some(parse(r#"{"grid_status": "SystemGridConnected", "grid_services_active": false}"#).unwrap()),
                ),
            ],
            vitals: None,
            tedapi: None,
        };
        let f = local(&data);
        assert_eq!(
            f.strings.as_ref().map(Value::to_py).as_deref(),
            Some(r#"{"A": {"Connected": true, "Voltage": 300.5, "Current": 2.0, "Power": 601}}"#)
        );
        assert_eq!(
            f.alerts,
            Some(vec![
                "PVAC_a_Hot".to_string(),
                "PVS_c".into(),
                "SystemConnectedToGrid".into()
            ])
        );
        assert_eq!(f.vitals, None);
    }

    #[test]
    fn time_remaining_divides_by_load() {
        let ss = parse(r#"{"nominal_energy_remaining": 9000}"#).unwrap();
        let agg = parse(r#"{"site": {"instant_power": 1}, "solar": {"instant_power": 1}, "battery": {"instant_power": 1}, "load": {"instant_power": 1500}}"#).unwrap();
        assert_eq!(time_remaining(Some(&ss), Some(&agg)), Some(6.0));
        let zero = parse(r#"{"load": {"instant_power": 1500}}"#).unwrap();
        assert_eq!(time_remaining(Some(&ss), Some(&zero)), None);
        assert_eq!(time_remaining(None, Some(&agg)), None);
    }

    #[test]
    fn hybrid_takes_vitals_fans_and_tedapi_from_the_tedapi_facade() {
        let vitals =
            parse(r#"{"TETHC--1--A": {"THC_AmbientTemp": 21.5, "alerts": ["X"]}}"#).unwrap();
        let t = Facade {
            vitals: Some(Packed::new(&vitals)),
            fans: Some(Value::object()),
            tedapi: Some(crate::gateway::facade::TedapiRaw::default()),
            pw3: false,
            ..Facade::default()
        };
        let data = LocalData {
            api: vec![(
                "/api/system_status/grid_status".into(),
                Some(
                    parse(
                        r#"{"grid_status": "SystemIslandedActive", "grid_services_active": false}"#,
                    )
                    .unwrap(),
                ),
            )],
            // Ignored in hybrid mode.
            vitals: Some(SAMPLE.to_vec()),
            tedapi: Some(t),
        };
        let f = local(&data);
        assert_eq!(
            f.temps.map(|t| t.to_py()).as_deref(),
            Some(r#"{"TETHC--1--A": 21.5}"#)
        );
        assert_eq!(
            f.alerts,
            Some(vec!["X".to_string(), "SystemIslandedActive".into()])
        );
        assert!(f.tedapi.is_some() && f.fans.is_some());
    }

    #[test]
    fn garbage_vitals_give_none_not_a_panic() {
        assert_eq!(decode_vitals(Some(&[0xff, 0xff, 0xff])), Err(Raise));
        let data = LocalData {
            vitals: Some(vec![0x0a, 0x03, 0x0a, 0x01]),
            ..LocalData::default()
        };
        let f = local(&data);
        assert_eq!(f.vitals, None);
        assert_eq!(f.strings, None);
    }
}
