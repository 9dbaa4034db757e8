//! The V2026_06 query set (`PW_TEDAPI_API_VERSION=V2026_06`): its `DeviceControllerQuery`
//! answer, put back into the V2024_06 shape the mappers read (spec §1.10).
//!
//! Why it exists: pypowerwall 0.22.2 sends the V2026 queries but keeps reading the V2024
//! locations, so Meter X/Y, the TESYNC values and the site's Meter Z data disappear (and with
//! them site/solar currents and voltages). We want V2026 to be a real fallback for when Tesla
//! rotates the V2024 signing key, so before mapping:
//!
//! * `components.sync[]` (TESYNC) → `esCan.bus.SYNC` {`packagePartNumber`,
//!   `packageSerialNumber`, `METER_X_AcMeasurements`, `METER_Y_AcMeasurements`,
//!   `SYNC_InfoMsg`, `alerts.active`};
//! * `components.msa[]` (TEMSA) → `esCan.bus.MSA` {…, `METER_Z_AcMeasurements`, `MSA_InfoMsg`}
//!   — not on a Powerwall 3, whose V2024 basic answer has an empty `esCan.bus.MSA` (its Backup
//!   Switch is read from `components.msa[]` by the vitals, which V2026 still provides);
//! * a meter whose every signal is `null` is marked `isMIA: true`, as the esCan object says;
//! * fans need nothing: `esCan.bus.PVAC[].PVAC_Logging.PVAC_Fan_Speed_*` is already read.
//!
//! What V2026 cannot give (the signed query does not ask for it, and queries cannot be
//! re-signed): `THC_AmbientTemp` (PW2 battery temperatures: `/temps` keeps its devices with
//! `null`), `SYNC_Uptime` (`/api/status` uptime/start time), the 0.22.2 msa extras for TEPINV /
//! TEPOD / TETHC, Meter Z's CT C, `VL3G` and lifetime energy, and the 0.22.2 PW3 extras
//! (temperatures, fan speeds, BMS logs). Those facade values are `null` under V2026.
//!
//! The raw documents (`/tedapi/status`, `/tedapi/controller`) stay as the gateway sent them.

use crate::gateway::facade::Facade;
use crate::gateway::TedapiData;
use crate::json::{Map, Value};

/// Maps a V2026_06 poll: normalise the controller documents, map, keep the raw documents.
pub fn tedapi(data: &TedapiData) -> Facade {
    let mut shaped = data.clone();
    shaped.status = data
        .status
        .as_deref()
        .map(|d| normalize(d, data.pw3).into());
    shaped.controller = data
        .controller
        .as_deref()
        .map(|d| normalize(d, data.pw3).into());
    super::mapped(&shaped, data)
}

/// The first non-null of `value`, `boolValue`, `textValue` (0.22.2's signal rule).
fn signal_value(s: &Map) -> Value {
    ["value", "boolValue", "textValue"]
        .iter()
        .filter_map(|k| s.get(k))
        .find(|v| !v.is_null())
        .cloned()
        .unwrap_or(Value::Null)
}

/// `{name: value}` of a component's signals, in order (non-string names skipped).
fn signals(component: &Map) -> Vec<(String, Value)> {
    component
        .get("signals")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_object)
                .filter_map(|s| {
                    let name = s.get("name")?.as_str()?.to_string();
                    Some((name, signal_value(s)))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    }
}

/// An esCan package object from a generic component; `groups` = (signal prefix, group name).
fn package(component: &Map, groups: &[(&str, &str)]) -> Value {
    let sigs = signals(component);
    let mut pkg = Map::new()
        .with(
            "packagePartNumber",
            component.get("partNumber").cloned().unwrap_or(Value::Null),
        )
        .with(
            "packageSerialNumber",
            component
                .get("serialNumber")
                .cloned()
                .unwrap_or(Value::Null),
        );
    for (prefix, group) in groups {
        let members: Vec<&(String, Value)> =
            sigs.iter().filter(|(n, _)| n.starts_with(prefix)).collect();
        if members.is_empty() {
            continue;
        }
        let mut g = Map::new();
        if group.ends_with("AcMeasurements") && members.iter().all(|(_, v)| v.is_null()) {
            g.insert("isMIA", true);
        }
        for (n, v) in members {
            g.insert(n.clone(), v.clone());
        }
        pkg.insert(*group, g);
    }
    let active: Vec<Value> = component
        .get("activeAlerts")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.get("name").cloned()).collect())
        .unwrap_or_default();
    Value::Object(pkg.with("alerts", Map::new().with("active", active)))
}

fn has_serial(c: &Map) -> bool {
    c.get("serialNumber").is_some_and(Value::truthy)
}

/// A V2026 `DeviceControllerQuery` answer in the V2024 shape (see the module docs). Anything
/// unexpected is left as it is; a document that already has the V2024 objects is unchanged.
pub fn normalize(doc: &Value, pw3: bool) -> Value {
    let mut doc = doc.clone();
    let sync = doc
        .path(&["components", "sync"])
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .filter_map(Value::as_object)
                .find(|c| has_serial(c))
        })
        .map(|c| {
            package(
                c,
                &[
                    ("METER_X_", "METER_X_AcMeasurements"),
                    ("METER_Y_", "METER_Y_AcMeasurements"),
                    ("SYNC_", "SYNC_InfoMsg"),
                ],
            )
        });
    let msa = doc
        .path(&["components", "msa"])
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .filter_map(Value::as_object)
                .find(|c| has_serial(c) && signals(c).iter().any(|(n, _)| n.starts_with("METER_Z")))
        })
        .filter(|_| !pw3)
        .map(|c| {
            package(
                c,
                &[
                    ("METER_Z_", "METER_Z_AcMeasurements"),
                    ("MSA_", "MSA_InfoMsg"),
                ],
            )
        });
    let Some(bus) = doc
        .as_object_mut()
        .and_then(|m| m.get_mut("esCan"))
        .and_then(Value::as_object_mut)
        .and_then(|e| e.get_mut("bus"))
        .and_then(Value::as_object_mut)
    else {
        return doc;
    };
    if let Some(sync) = sync.filter(|_| empty(bus.get("SYNC"))) {
        bus.insert("SYNC", sync);
    }
    if let Some(msa) = msa.filter(|_| empty(bus.get("MSA"))) {
        bus.insert("MSA", msa);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn sync_and_msa_go_back_to_es_can() {
        let doc = parse(
            r#"{"esCan": {"bus": {"PVAC": []}}, "components": {
              "sync": [{"partNumber": "P", "serialNumber": "S", "signals": [
                {"name": "SYNC_appGitHash", "value": null, "textValue": "abc", "boolValue": null},
                {"name": "METER_X_CTA_InstRealPower", "value": 5, "textValue": null, "boolValue": null},
                {"name": "METER_Y_CTA_I", "value": null, "textValue": null, "boolValue": null}],
                "activeAlerts": [{"name": "A"}]}],
              "msa": [{"partNumber": "M", "serialNumber": "", "signals": [{"name": "METER_Z_CTA_I", "value": 1}]},
                      {"partNumber": "M", "serialNumber": "Z", "signals": [{"name": "METER_Z_CTA_I", "value": 2}]}]}}"#,
        )
        .unwrap();
        let n = normalize(&doc, false);
        assert_eq!(
            n.path(&["esCan", "bus", "SYNC"]).unwrap().to_py(),
            r#"{"packagePartNumber": "P", "packageSerialNumber": "S", "METER_X_AcMeasurements": {"METER_X_CTA_InstRealPower": 5}, "METER_Y_AcMeasurements": {"isMIA": true, "METER_Y_CTA_I": null}, "SYNC_InfoMsg": {"SYNC_appGitHash": "abc"}, "alerts": {"active": ["A"]}}"#
        );
        assert_eq!(
            n.path(&["esCan", "bus", "MSA", "METER_Z_AcMeasurements"])
                .unwrap()
                .to_py(),
            r#"{"METER_Z_CTA_I": 2}"#
        );
        // A PW3 keeps an empty esCan MSA (as its V2024 answer has).
        assert!(normalize(&doc, true)
            .path(&["esCan", "bus", "MSA"])
            .is_none());
        // Garbage stays garbage, without a panic.
        for text in [
            "null",
            "[]",
            r#"{"esCan": 1}"#,
            r#"{"components": {"sync": 3}}"#,
        ] {
            let v = parse(text).unwrap();
            assert_eq!(normalize(&v, false), v);
        }
    }
}
