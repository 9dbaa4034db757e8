//! The simulator's answers to the Tesla-signed V2026_06 queries (spec §1.10), rendered from the
//! same state as the V2024_06 answers.
//!
//! The V2026 `DeviceControllerQuery` is answered from the full-controller document of the
//! V2024 set, reshaped the way the V2026 query text asks for it:
//! * `esCan.bus.SYNC` becomes `components.sync[]` (one TESYNC component whose signals are the
//!   requested `METER_X_*` / `METER_Y_*` / `SYNC_*` values found in the SYNC object, or in a msa
//!   component with the SYNC serial);
//! * `esCan.bus.MSA` and the msa components that carry `MSA_*` / `METER_Z_*` signals become
//!   `components.msa[]` (TEMSA only);
//! * the PVAC fan speeds of the msa list move into `esCan.bus.PVAC[].PVAC_Logging`;
//! * everything else of the old msa list (TETHC temperatures, `SYNC_Uptime`, PINV/POD signals)
//!   is gone: the V2026 query does not ask for it.
//!
//! Signals are limited to the names the query text requests, as a gateway answers them
//! (`{name, value, textValue, boolValue}`). The `PW3Query` answer is the battery's components
//! document with each group's signals limited the same way.

use crate::json::{self, Map, Value};

/// `(alias, requested signal names)` of every `alias:components(…){… signals(names:[…])` in a
/// GraphQL text, in order.
pub fn requested_signals(text: &str) -> Vec<(String, Vec<String>)> {
    const MARK: &str = ":components(";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(MARK) {
        let alias = rest[..i]
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default()
            .to_string();
        let after = &rest[i + MARK.len()..];
        let next = after.find(MARK).unwrap_or(after.len());
        let names = after[..next]
            .find("names:[")
            .and_then(|j| {
                let s = &after[j + 7..next];
                s.find(']').map(|k| &s[..k])
            })
            .map(|list| {
                list.split('"')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.push((alias, names));
        rest = after;
    }
    out
}

fn names_of<'a>(req: &'a [(String, Vec<String>)], alias: &str) -> &'a [String] {
    req.iter()
        .find(|(a, _)| a == alias)
        .map(|(_, n)| n.as_slice())
        .unwrap_or(&[])
}

/// A `{name, value, textValue, boolValue}` signal for a plain value.
fn signal(name: &str, v: &Value) -> Value {
    let (value, text, boolean) = match v {
        Value::Str(_) => (Value::Null, v.clone(), Value::Null),
        Value::Bool(_) => (Value::Null, Value::Null, v.clone()),
        _ => (v.clone(), Value::Null, Value::Null),
    };
    Value::Object(
        Map::new()
            .with("name", name)
            .with("value", value)
            .with("textValue", text)
            .with("boolValue", boolean),
    )
}

/// `name` in `obj` or one of its sub-objects (`METER_X_AcMeasurements`, `SYNC_InfoMsg`, …).
fn find_in_groups<'a>(obj: &'a Map, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.values()
            .filter_map(Value::as_object)
            .find_map(|g| g.get(name))
    })
}

fn signal_named<'a>(component: &'a Value, name: &str) -> Option<&'a Value> {
    component
        .get("signals")?
        .as_array()?
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
}

fn alerts(obj: &Map) -> Value {
    let names = obj
        .get("alerts")
        .and_then(|a| a.get("active"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|n| Value::Object(Map::new().with("name", n.clone())))
                .collect()
        })
        .unwrap_or_default();
    Value::Array(names)
}

/// An esCan package object (`SYNC`, `MSA`) as a generic component with the requested signals
/// (looked up in the object, then in `extra` components with the same serial).
fn component_from_package(pkg: &Map, names: &[String], extra: &[Value], sub: bool) -> Value {
    let serial = pkg
        .get("packageSerialNumber")
        .cloned()
        .unwrap_or(Value::Null);
    let mut signals = Vec::new();
    for name in names {
        let from_pkg = find_in_groups(pkg, name).cloned();
        let from_extra = || {
            extra
                .iter()
                .filter(|c| c.get("serialNumber") == Some(&serial))
                .find_map(|c| signal_named(c, name))
                .map(|s| {
                    let mut s = s.clone();
                    if let Some(m) = s.as_object_mut() {
                        m.remove("timestamp");
                    }
                    s
                })
        };
        match from_pkg {
            Some(v) => signals.push(signal(name, &v)),
            None => signals.extend(from_extra()),
        }
    }
    let mut c = Map::new()
        .with(
            "partNumber",
            pkg.get("packagePartNumber").cloned().unwrap_or(Value::Null),
        )
        .with("serialNumber", serial);
    if sub {
        c = c
            .with("subPackagePartNumber", Value::Null)
            .with("subPackageSerialNumber", Value::Null);
    }
    Value::Object(
        c.with("signals", Value::Array(signals))
            .with("activeAlerts", alerts(pkg)),
    )
}

/// A msa component limited to the requested signals (without `timestamp`).
fn limited(component: &Value, names: &[String], keep_ids: bool) -> Value {
    let mut out = Map::new();
    if keep_ids {
        for k in ["partNumber", "serialNumber"] {
            out.insert(k, component.get(k).cloned().unwrap_or(Value::Null));
        }
    }
    // The component's own signal order, limited to the requested names.
    let signals = component
        .get("signals")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|s| {
            s.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| names.iter().any(|x| x == n))
        })
        .map(|s| {
            let mut s = s.clone();
            if let Some(m) = s.as_object_mut() {
                m.remove("timestamp");
            }
            s
        })
        .collect();
    out.insert("signals", Value::Array(signals));
    out.insert(
        "activeAlerts",
        component
            .get("activeAlerts")
            .cloned()
            .unwrap_or(Value::Array(Vec::new())),
    );
    Value::Object(out)
}

fn is_temsa(component: &Value) -> bool {
    component
        .get("signals")
        .and_then(Value::as_array)
        .is_some_and(|sigs| {
            sigs.iter().any(|s| {
                s.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with("MSA_") || n.starts_with("METER_Z"))
            })
        })
}

/// The V2026 `DeviceControllerQuery` answer for `controller` (the V2024 full-controller JSON
/// text of the same state) and the query `text`.
pub fn controller(controller: &str, text: &str) -> String {
    let Ok(mut doc) = json::parse(controller) else {
        return controller.to_string();
    };
    let req = requested_signals(text);
    let old_msa = doc
        .path(&["components", "msa"])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(root) = doc.as_object_mut() else {
        return controller.to_string();
    };
    root.remove("components");
    let mut sync = Vec::new();
    let mut msa = Vec::new();
    if let Some(bus) = root
        .get_mut("esCan")
        .and_then(Value::as_object_mut)
        .and_then(|e| e.get_mut("bus"))
        .and_then(Value::as_object_mut)
    {
        if let Some(Value::Object(pkg)) = bus.remove("SYNC") {
            if pkg.get("packageSerialNumber").is_some_and(Value::truthy) {
                sync.push(component_from_package(
                    &pkg,
                    names_of(&req, "sync"),
                    &old_msa,
                    true,
                ));
            }
        }
        if let Some(Value::Object(pkg)) = bus.remove("MSA") {
            if pkg.get("packageSerialNumber").is_some_and(Value::truthy) {
                msa.push(component_from_package(
                    &pkg,
                    names_of(&req, "msa"),
                    &[],
                    false,
                ));
            }
        }
        if let Some(Value::Array(pvacs)) = bus.get_mut("PVAC") {
            for pvac in pvacs.iter_mut() {
                let (part, serial) = (
                    pvac.get("packagePartNumber"),
                    pvac.get("packageSerialNumber"),
                );
                let fans: Vec<(String, Value)> = old_msa
                    .iter()
                    .filter(|c| {
                        serial.is_some_and(Value::truthy)
                            && c.get("partNumber") == part
                            && c.get("serialNumber") == serial
                    })
                    .flat_map(|c| {
                        ["PVAC_Fan_Speed_Actual_RPM", "PVAC_Fan_Speed_Target_RPM"]
                            .into_iter()
                            .filter_map(|n| {
                                signal_named(c, n)
                                    .and_then(|s| s.get("value"))
                                    .map(|v| (n.to_string(), v.clone()))
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
                if let Some(Value::Object(log)) =
                    pvac.as_object_mut().and_then(|p| p.get_mut("PVAC_Logging"))
                {
                    for (k, v) in fans {
                        log.insert(k, v);
                    }
                }
            }
        }
    }
    let known: Vec<Value> = msa
        .iter()
        .filter_map(|c| c.get("serialNumber").cloned())
        .collect();
    for c in old_msa.iter().filter(|c| is_temsa(c)) {
        if c.get("serialNumber").is_some_and(|s| known.contains(s)) {
            continue;
        }
        msa.push(limited(c, names_of(&req, "msa"), true));
    }
    root.insert(
        "components",
        Map::new()
            .with("sync", Value::Array(sync))
            .with("msa", Value::Array(msa)),
    );
    doc.to_py()
}

/// The V2026 `PW3Query` answer: the components document with each group's signals limited to
/// the requested names.
pub fn components(doc: &str, text: &str) -> String {
    let Ok(mut v) = json::parse(doc) else {
        return doc.to_string();
    };
    let req = requested_signals(text);
    if let Some(Value::Object(groups)) = v.as_object_mut().and_then(|m| m.get_mut("components")) {
        for (alias, list) in groups.iter_mut() {
            let names = names_of(&req, alias);
            if let Value::Array(entries) = list {
                for e in entries.iter_mut() {
                    let ids = e.get("partNumber").is_some();
                    *e = limited(e, names, ids);
                }
            }
        }
    }
    v.to_py()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::queries::{QuerySet, SignedQueries};

    #[test]
    fn parses_the_requested_signals() {
        let q = SignedQueries::load(QuerySet::V2026_06).unwrap();
        let text = String::from_utf8(q.full.text().unwrap().1).unwrap();
        let req = requested_signals(&text);
        let aliases: Vec<&str> = req.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(aliases, ["sync", "msa"]);
        assert_eq!(req[0].1.len(), 26);
        assert!(req[1].1.contains(&"METER_Z_VL2G".to_string()));
        let text = String::from_utf8(q.components.text().unwrap().1).unwrap();
        let aliases: Vec<String> = requested_signals(&text)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(aliases, ["pws", "pch", "bms", "hvp", "baggr"]);
    }
}
