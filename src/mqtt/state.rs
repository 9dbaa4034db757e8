//! State topics: one gateway's facade (or the site total) → `(topic, payload)` pairs, with the
//! topic names and payload text of pypowerwall-server 0.13.0's publisher.
//!
//! Pure functions of a snapshot: no I/O, no clock. Numbers are printed as 0.13.0's f-strings
//! print them (`{:.1f}`, `{:.2f}`, `{:.0f}`), JSON as Python's `json.dumps`. Values a gateway
//! does not report are left out (0.13.0 publishes nothing for `None`), and non-finite numbers
//! are never published. Device serials and meter DINs become topic levels only when they hold
//! no `/`, `+` or `#`.

use crate::gateway::facade::Facade;
use crate::json::{Map, Value};
use crate::render::Summary;
use crate::render::{legacy, Settings};

/// 0.13.0's `raw_to_tesla_battery_percent`: the app's 0-100 % scale, clamped, computed in its
/// order of operations so the JSON prints the same digits.
pub fn tesla_percent(raw: f64) -> f64 {
    ((raw - 5.0) / 95.0 * 100.0).clamp(0.0, 100.0)
}

/// `f"{x:.{d}f}"`; `None` for NaN and infinities.
pub fn fixed(x: f64, d: usize) -> Option<String> {
    x.is_finite().then(|| format!("{x:.d$}"))
}

/// A topic level taken from gateway data: non-empty and free of MQTT separators/wildcards.
pub fn level_ok(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#', '\0'])
}

/// Python's `float(v)` for a JSON number (bools count as 0/1, like Python).
fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Str(s) => s.trim().parse::<f64>().ok(),
        v => v.as_f64(),
    }
    .filter(|f| f.is_finite())
}

/// One battery block of `system_status.battery_blocks` (1-based position kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Battery {
    pub index: usize,
    pub capacity: Option<f64>,
    pub charge: Option<f64>,
    pub serial: Option<String>,
}

/// Blocks that report a capacity or a charge (0.13.0's `_extract_battery_blocks`).
pub fn batteries(f: &Facade) -> Vec<Battery> {
    let Some(blocks) = f
        .system_status
        .as_ref()
        .and_then(|s| s.get("battery_blocks"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        if b.as_object().is_none() {
            continue;
        }
        let capacity = b.get("nominal_full_pack_energy").and_then(float);
        let charge = b.get("nominal_energy_remaining").and_then(float);
        if capacity.is_none() && charge.is_none() {
            continue;
        }
        let serial = b
            .get("PackageSerialNumber")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        out.push(Battery {
            index: i + 1,
            capacity,
            charge,
            serial,
        });
    }
    out
}

/// A whole-system battery energy (Wh): the top-level field, else the sum of the blocks.
fn battery_energy(f: &Facade, field: &str) -> Option<f64> {
    let status = f.system_status.as_ref()?;
    if let Some(v) = status.get(field).and_then(float) {
        return Some(v);
    }
    let blocks = status.get("battery_blocks")?.as_array()?;
    let vals: Vec<f64> = blocks
        .iter()
        .filter_map(|b| b.get(field).and_then(float))
        .collect();
    (!vals.is_empty()).then(|| vals.iter().sum())
}

/// The paired-string rollups (A+B, C+D, E+F, per numeric suffix) of 0.13.0.
pub fn string_pairs(strings: &Map) -> Vec<(String, String, String)> {
    let mut suffixes: Vec<&str> = Vec::new();
    for k in strings.keys() {
        let base = k.trim_end_matches(|c: char| c.is_ascii_digit());
        if ["A", "B", "C", "D", "E", "F"].contains(&base) {
            let suffix = &k[base.len()..];
            if !suffixes.contains(&suffix) {
                suffixes.push(suffix);
            }
        }
    }
    suffixes.sort();
    let mut out = Vec::new();
    for suffix in suffixes {
        for (a, b, name) in [("A", "B", "AB"), ("C", "D", "CD"), ("E", "F", "EF")] {
            out.push((
                format!("{a}{suffix}"),
                format!("{b}{suffix}"),
                format!("{name}{}", suffix.to_uppercase()),
            ));
        }
    }
    out
}

/// Tesla Remote Meter CTs from `vitals` (`TRM--<din>` blocks, `TRM_CT<n>_<Metric>` fields):
/// `(din, [(ct, fields)])` in the order the gateway lists them.
pub fn remote_meters(vitals: Option<&Value>) -> Vec<(String, Vec<(String, Map)>)> {
    let Some(vitals) = vitals.and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, block) in vitals.iter() {
        let Some(din) = key.strip_prefix("TRM--") else {
            continue;
        };
        let Some(block) = block.as_object() else {
            continue;
        };
        if !level_ok(din) {
            continue;
        }
        let mut cts: Vec<(String, Map)> = Vec::new();
        for (field, value) in block.iter() {
            let Some(rest) = field.strip_prefix("TRM_CT") else {
                continue;
            };
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let (ct, metric) = rest.split_at(digits);
            let Some(metric) = metric.strip_prefix('_').filter(|m| !m.is_empty()) else {
                continue;
            };
            if ct.is_empty() {
                continue;
            }
            match cts.iter_mut().find(|(c, _)| c == ct) {
                Some((_, m)) => m.insert(metric, value.clone()),
                None => cts.push((ct.to_string(), Map::new().with(metric, value.clone()))),
            }
        }
        if !cts.is_empty() {
            out.push((din.to_string(), cts));
        }
    }
    out
}

/// One per-unit signal of 0.13.0's catalogue (`app/core/signals.py`).
pub struct Metric {
    pub id: &'static str,
    /// The vitals / fan-speed field it reads.
    pub signal: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub decimals: usize,
    /// Topic suffix under `devices/{serial}/` and the icon (0.13.0's `DEVICE_METRIC_TOPICS`).
    pub topic: &'static str,
    pub icon: &'static str,
}

/// The catalogue, in 0.13.0's order (which decides the order signals are read in).
pub const METRICS: &[Metric] = &[
    Metric {
        id: "pack_temp_max",
        signal: "HVP_PackTempMax",
        label: "Pack temp (max)",
        unit: "°C",
        decimals: 1,
        topic: "temperature/pack_max",
        icon: "mdi:thermometer-high",
    },
    Metric {
        id: "pack_temp_min",
        signal: "HVP_PackTempMin",
        label: "Pack temp (min)",
        unit: "°C",
        decimals: 1,
        topic: "temperature/pack_min",
        icon: "mdi:thermometer-low",
    },
    Metric {
        id: "shunt_temp",
        signal: "HVP_ShuntTemperature",
        label: "Shunt temp",
        unit: "°C",
        decimals: 1,
        topic: "temperature/shunt",
        icon: "mdi:thermometer",
    },
    Metric {
        id: "inverter_ambient",
        signal: "PCH_AmbientTemp",
        label: "Inverter ambient",
        unit: "°C",
        decimals: 1,
        topic: "temperature/ambient",
        icon: "mdi:thermometer",
    },
    Metric {
        id: "controller_ambient",
        signal: "THC_AmbientTemp",
        label: "Thermal controller ambient",
        unit: "°C",
        decimals: 1,
        topic: "temperature/controller",
        icon: "mdi:thermometer",
    },
    Metric {
        id: "fan_a_rpm",
        signal: "PCH_FanSpeed_A",
        label: "Fan A speed",
        unit: "rpm",
        decimals: 0,
        topic: "fan/a/rpm",
        icon: "mdi:fan",
    },
    Metric {
        id: "fan_b_rpm",
        signal: "PCH_FanSpeed_B",
        label: "Fan B speed",
        unit: "rpm",
        decimals: 0,
        topic: "fan/b/rpm",
        icon: "mdi:fan",
    },
    Metric {
        id: "fan_rpm",
        signal: "PVAC_Fan_Speed_Actual_RPM",
        label: "Fan speed",
        unit: "rpm",
        decimals: 0,
        topic: "fan/rpm",
        icon: "mdi:fan",
    },
    Metric {
        id: "fan_target_rpm",
        signal: "PVAC_Fan_Speed_Target_RPM",
        label: "Fan target speed",
        unit: "rpm",
        decimals: 0,
        topic: "fan/target_rpm",
        icon: "mdi:speedometer",
    },
    Metric {
        id: "fan_a_duty",
        signal: "PCH_FanDuty_A",
        label: "Fan A duty",
        unit: "%",
        decimals: 1,
        topic: "fan/a/duty",
        icon: "mdi:percent",
    },
    Metric {
        id: "fan_b_duty",
        signal: "PCH_FanDuty_B",
        label: "Fan B duty",
        unit: "%",
        decimals: 1,
        topic: "fan/b/duty",
        icon: "mdi:percent",
    },
];

/// Per-unit signals: `(serial, [(metric, value)])`.
pub type UnitSignals = Vec<(String, Vec<(&'static Metric, f64)>)>;

/// A numeric signal value: ints and floats, never bools, never non-finite.
fn signal_value(v: &Value) -> Option<f64> {
    match v {
        Value::Int(_) | Value::Float(_) => v.as_f64().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn key_serial(key: &str, min_parts: usize) -> Option<&str> {
    let parts: Vec<&str> = key.split("--").collect();
    if parts.len() < min_parts {
        return None;
    }
    parts.last().copied().filter(|s| level_ok(s))
}

/// 0.13.0's `extract_unit_signals(vitals, fan_speeds)`: temperatures and fans per Powerwall,
/// keyed by unit serial; a unit with a `TEPINV` block never takes fans from its `PVAC` block.
/// `vitals`: `f`'s, unpacked once by the caller for this and [`remote_meters`].
pub fn unit_signals(f: &Facade, vitals: Option<&Value>) -> UnitSignals {
    let vitals = vitals.and_then(Value::as_object);
    let fans = f.fans.as_ref().and_then(Value::as_object);
    let block_serial = |key: &str, block: &Value| -> Option<String> {
        block
            .get("serialNumber")
            .and_then(Value::as_str)
            .filter(|s| level_ok(s))
            .or_else(|| key_serial(key, 2))
            .map(str::to_string)
    };
    let mut pw3: Vec<String> = Vec::new();
    for (k, b) in vitals.into_iter().flat_map(Map::iter) {
        if k.starts_with("TEPINV--") && b.as_object().is_some() {
            pw3.extend(block_serial(k, b));
        }
    }
    for (k, _) in fans.into_iter().flat_map(Map::iter) {
        if k.starts_with("TEPINV--") {
            pw3.extend(key_serial(k, 3).map(str::to_string));
        }
    }
    let mut units: UnitSignals = Vec::new();
    let fold = |units: &mut UnitSignals, key: &str, block: &Value, serial: String| {
        let prefix = key.split("--").next().unwrap_or("");
        if prefix == "PVAC" && pw3.contains(&serial) {
            return;
        }
        let idx = match units.iter().position(|(s, _)| *s == serial) {
            Some(i) => i,
            None => {
                units.push((serial, Vec::new()));
                units.len() - 1
            }
        };
        let Some((_, signals)) = units.get_mut(idx) else {
            return;
        };
        for m in METRICS {
            if signals.iter().any(|(have, _)| have.id == m.id) {
                continue;
            }
            if let Some(v) = block.get(m.signal).and_then(signal_value) {
                signals.push((m, v));
            }
        }
    };
    for (k, b) in vitals.into_iter().flat_map(Map::iter) {
        let prefix = k.split("--").next().unwrap_or("");
        if !["TEPOD", "TEPINV", "TETHC", "PVAC"].contains(&prefix) || b.as_object().is_none() {
            continue;
        }
        if let Some(serial) = block_serial(k, b) {
            fold(&mut units, k, b, serial);
        }
    }
    for (k, b) in fans.into_iter().flat_map(Map::iter) {
        let prefix = k.split("--").next().unwrap_or("");
        if !["PVAC", "TEPINV"].contains(&prefix) || b.as_object().is_none() {
            continue;
        }
        if let Some(serial) = key_serial(k, 3) {
            fold(&mut units, k, b, serial.to_string());
        }
    }
    units.retain(|(_, s)| !s.is_empty());
    units
}

/// Grid voltage and current from the site CT averages, when the gateway reports them.
pub fn grid_metrics(agg: Option<&Value>) -> (Option<f64>, Option<f64>) {
    let get = |k: &str| agg.and_then(|a| a.path(&["site", k])).and_then(float);
    (
        get("instant_average_voltage"),
        get("instant_average_current"),
    )
}

/// The lifetime counters: (topic, aggregates section, field).
pub const ENERGY: &[(&str, &str, &str)] = &[
    ("grid_energy_imported", "site", "energy_imported"),
    ("grid_energy_exported", "site", "energy_exported"),
    ("home_energy_imported", "load", "energy_imported"),
    ("solar_energy_exported", "solar", "energy_exported"),
    ("battery_energy_imported", "battery", "energy_imported"),
    ("battery_energy_exported", "battery", "energy_exported"),
];

/// Collects messages under one topic base.
struct Out<'a> {
    base: &'a str,
    msgs: Vec<(String, String)>,
}

impl Out<'_> {
    fn put(&mut self, sub: &str, payload: impl Into<String>) {
        self.msgs
            .push((format!("{}/{sub}", self.base), payload.into()));
    }

    fn num(&mut self, sub: &str, v: Option<f64>, d: usize) {
        if let Some(text) = v.and_then(|v| fixed(v, d)) {
            self.put(sub, text);
        }
    }
}

fn opt_num(v: Option<f64>) -> Value {
    v.filter(|f| f.is_finite())
        .map(Value::Float)
        .unwrap_or(Value::Null)
}

fn tf(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// One gateway's state messages, in 0.13.0's order. `facade` is `None` while the gateway has
/// no usable data; then only `online`, `name` and `availability` are sent.
pub fn gateway(
    base: &str,
    name: &str,
    online: bool,
    facade: Option<&Facade>,
    settings: &Settings,
) -> Vec<(String, String)> {
    let mut o = Out {
        base,
        msgs: Vec::new(),
    };
    o.put("online", tf(online));
    if !name.is_empty() {
        o.put("name", name);
    }
    if let Some(f) = facade {
        data(&mut o, f, online, settings);
    }
    o.put("availability", if online { "online" } else { "offline" });
    o.msgs
}

fn data(o: &mut Out<'_>, f: &Facade, online: bool, settings: &Settings) {
    let soe = f.level.map(tesla_percent);
    o.num("battery", soe, 1);
    o.num("battery_raw", f.level, 1);
    let total_capacity = battery_energy(f, "nominal_full_pack_energy");
    let current_charge = battery_energy(f, "nominal_energy_remaining");
    o.num("total_capacity", total_capacity, 0);
    o.num("current_charge", current_charge, 0);
    let batts = batteries(f);
    for b in &batts {
        o.num(&format!("batteries/{}/capacity", b.index), b.capacity, 0);
        o.num(&format!("batteries/{}/charge", b.index), b.charge, 0);
    }
    let batts_json = Value::Array(
        batts
            .iter()
            .map(|b| {
                Map::new()
                    .with("index", b.index)
                    .with("capacity", opt_num(b.capacity))
                    .with("charge", opt_num(b.charge))
                    .with("serial", b.serial.clone())
                    .into()
            })
            .collect(),
    );
    if !batts.is_empty() {
        o.put("batteries", batts_json.to_py());
    }
    let agg = legacy::processed_aggregates(f, settings);
    let power = |section: &str| {
        agg.as_ref()
            .and_then(|a| a.path(&[section, "instant_power"]))
            .and_then(float)
    };
    let (solar, grid, home, powerwall) = (
        power("solar"),
        power("site"),
        power("load"),
        power("battery"),
    );
    let (voltage, current) = grid_metrics(agg.as_ref());
    if let Some(a) = &agg {
        o.num("solar", solar, 1);
        o.num("grid", grid, 1);
        o.num("home", home, 1);
        o.num("powerwall", powerwall, 1);
        o.num("grid_voltage", voltage, 2);
        o.num("grid_current", current, 2);
        o.put("aggregates", a.to_py());
        for (topic, section, field) in ENERGY {
            o.num(topic, a.path(&[section, field]).and_then(float), 0);
        }
    }
    let grid_status = legacy::grid_state(f);
    if let Some(g) = grid_status {
        o.put("grid_status", g);
        o.put("grid_connected", tf(g == "UP"));
    }
    if let Some(m) = &f.mode {
        o.put("mode", m.as_str());
    }
    o.num("reserve", f.reserve, 1);
    if let Some(v) = &f.version {
        o.put("version", v.as_str());
    }
    if let Some(c) = f.grid_charging {
        o.put("grid_charging", tf(c));
    }
    if let Some(e) = &f.grid_export {
        o.put("grid_export", e.as_str());
    }
    o.num("time_remaining", f.time_remaining, 2);
    if let Some(alerts) = &f.alerts {
        o.put("alert_count", alerts.len().to_string());
    }
    if let Some(strings) = f.strings.as_ref().and_then(Value::as_object) {
        for (id, s) in strings.iter() {
            let Some(sm) = s.as_object() else {
                continue;
            };
            if !level_ok(id) {
                continue;
            }
            for metric in ["Voltage", "Current", "Power"] {
                let sub = format!("strings/{id}/{}", metric.to_ascii_lowercase());
                o.num(&sub, sm.get(metric).and_then(float), 2);
            }
            o.put(&format!("strings/{id}"), s.to_py());
        }
        for (a, b, pair) in string_pairs(strings) {
            let (Some(sa), Some(sb)) = (
                strings.get(&a).and_then(Value::as_object),
                strings.get(&b).and_then(Value::as_object),
            ) else {
                continue;
            };
            if sa.is_empty() || sb.is_empty() {
                continue;
            }
            let get = |m: &Map, k: &str| m.get(k).and_then(float);
            o.num(&format!("strings/{pair}/voltage"), get(sa, "Voltage"), 2);
            let sum = |k: &str| match (get(sa, k), get(sb, k)) {
                (None, None) => None,
                (x, y) => Some(x.unwrap_or(0.0) + y.unwrap_or(0.0)),
            };
            o.num(&format!("strings/{pair}/current"), sum("Current"), 2);
            o.num(&format!("strings/{pair}/power"), sum("Power"), 2);
        }
    }
    // Unpacked once for the meters and the units.
    let vitals = f.vitals();
    for (din, cts) in remote_meters(vitals.as_ref()) {
        for (ct, fields) in cts {
            let p = format!("meters/remote/{din}/ct{ct}");
            let get = |k: &str| fields.get(k).and_then(float);
            o.num(&format!("{p}/voltage"), get("InstVoltage"), 2);
            o.num(&format!("{p}/current"), get("InstCurrent"), 2);
            o.num(&format!("{p}/power"), get("InstRealPower"), 1);
            let wh = |k: &str| get(k).map(|ws| ws / 3600.0);
            o.num(&format!("{p}/energy_imported"), wh("EnergyImportedWs"), 0);
            o.num(&format!("{p}/energy_exported"), wh("EnergyExportedWs"), 0);
            o.put(&p, Value::Object(fields).to_py());
        }
    }
    for (serial, signals) in unit_signals(f, vitals.as_ref()) {
        let mut json = Map::new();
        for (m, v) in &signals {
            let Some(text) = fixed(*v, m.decimals) else {
                continue;
            };
            // One rounding for topic and JSON; "+ 0.0" keeps -0.04 from printing as "-0.0".
            let rounded = text.parse::<f64>().unwrap_or(*v) + 0.0;
            let text = fixed(rounded, m.decimals).unwrap_or(text);
            o.put(&format!("devices/{serial}/{}", m.topic), text);
            if m.decimals == 0 {
                json.insert(m.id, rounded as i64);
            } else {
                json.insert(m.id, rounded);
            }
        }
        o.put(&format!("devices/{serial}"), Value::Object(json).to_py());
    }
    let status = Map::new()
        .with("online", online)
        .with("soe", opt_num(soe))
        .with("soe_raw", opt_num(f.level))
        .with("total_capacity", opt_num(total_capacity))
        .with("current_charge", opt_num(current_charge))
        .with("batteries", batts_json)
        .with("solar", opt_num(solar))
        .with("grid", opt_num(grid))
        .with("grid_voltage", opt_num(voltage))
        .with("grid_current", opt_num(current))
        .with("home", opt_num(home))
        .with("powerwall", opt_num(powerwall))
        .with("grid_status", grid_status)
        .with("grid_connected", grid_status.map(|g| g == "UP"))
        .with("mode", f.mode.clone())
        .with("reserve", opt_num(f.reserve))
        .with("version", f.version.clone())
        .with("grid_charging", f.grid_charging)
        .with("grid_export", f.grid_export.clone())
        .with("time_remaining", opt_num(f.time_remaining));
    o.put("status", Value::Object(status).to_py());
}

/// The site total (`{prefix}/aggregate/…`, this server's addition for several gateways):
/// the same topic names as a gateway for the values a sum has.
pub fn aggregate(
    base: &str,
    total: &Summary,
    online: bool,
    energy: &[(usize, f64)],
) -> Vec<(String, String)> {
    let mut o = Out {
        base,
        msgs: Vec::new(),
    };
    o.put("online", tf(online));
    o.num("battery", total.soe.map(tesla_percent), 1);
    o.num("battery_raw", total.soe, 1);
    o.num("total_capacity", total.full_pack_energy, 0);
    o.num("current_charge", total.energy_remaining, 0);
    o.num("solar", total.solar, 1);
    o.num("grid", total.site, 1);
    o.num("home", total.load, 1);
    o.num("powerwall", total.battery, 1);
    for (i, wh) in energy {
        if let Some((topic, _, _)) = ENERGY.get(*i) {
            o.num(topic, Some(*wh), 0);
        }
    }
    if let Some(g) = total.grid_status {
        o.put("grid_status", g);
        o.put("grid_connected", tf(g == "UP"));
    }
    o.num("reserve", total.reserve, 1);
    o.num("time_remaining", total.time_remaining_hours, 2);
    let status = Map::new()
        .with("online", online)
        .with("soe", opt_num(total.soe.map(tesla_percent)))
        .with("soe_raw", opt_num(total.soe))
        .with("total_capacity", opt_num(total.full_pack_energy))
        .with("current_charge", opt_num(total.energy_remaining))
        .with("solar", opt_num(total.solar))
        .with("grid", opt_num(total.site))
        .with("home", opt_num(total.load))
        .with("powerwall", opt_num(total.battery))
        .with("grid_status", total.grid_status)
        .with("grid_connected", total.grid_status.map(|g| g == "UP"))
        .with("reserve", opt_num(total.reserve))
        .with("time_remaining", opt_num(total.time_remaining_hours));
    o.put("status", Value::Object(status).to_py());
    o.put("availability", if online { "online" } else { "offline" });
    o.msgs
}

/// The lifetime counters of one facade, as `(index into ENERGY, Wh)` (for the site total).
pub fn energy_counters(f: &Facade, settings: &Settings) -> Vec<(usize, f64)> {
    let Some(agg) = legacy::processed_aggregates(f, settings) else {
        return Vec::new();
    };
    ENERGY
        .iter()
        .enumerate()
        .filter_map(|(i, (_, section, field))| {
            agg.path(&[section, field]).and_then(float).map(|v| (i, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn numbers_print_like_python_f_strings() {
        assert_eq!(fixed(61.75, 1).as_deref(), Some("61.8"));
        assert_eq!(fixed(0.125, 2).as_deref(), Some("0.12"));
        assert_eq!(fixed(-0.0, 1).as_deref(), Some("-0.0"));
        assert_eq!(fixed(13500.0, 0).as_deref(), Some("13500"));
        assert_eq!(fixed(f64::NAN, 1), None);
    }

    #[test]
    fn app_scale_like_0_13_0() {
        assert_eq!(tesla_percent(4.0), 0.0);
        assert_eq!(tesla_percent(100.0), 100.0);
        assert_eq!(tesla_percent(52.5), 50.0);
    }

    #[test]
    fn pairs_and_suffixes() {
        let s = parse(r#"{"A1": {}, "B1": {}, "C": {}, "D": {}}"#).unwrap();
        let p = string_pairs(s.as_object().unwrap());
        assert_eq!(p[0], ("A".into(), "B".into(), "AB".into()));
        assert_eq!(p[3], ("A1".into(), "B1".into(), "AB1".into()));
    }

    #[test]
    fn unit_signals_prefer_tepinv_and_skip_bad_serials() {
        let f = Facade {
            vitals: Some(crate::json::Packed::new(&
                parse(
                    r#"{"TEPINV--1707000-11-J--TG1": {"serialNumber": "TG1", "PCH_AmbientTemp": 30.26, "PCH_FanSpeed_A": 1200},
                        "PVAC--1--TG1": {"PVAC_Fan_Speed_Actual_RPM": 900},
                        "TETHC--2--TG/2": {"THC_AmbientTemp": 20.0},
                        "TEPOD--1707000-11-J--TG1": {"HVP_PackTempMax": true}}"#,
                )
                .unwrap(),
            )),
            ..Facade::default()
        };
        let u = unit_signals(&f, f.vitals().as_ref());
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].0, "TG1");
        let ids: Vec<&str> = u[0].1.iter().map(|(m, _)| m.id).collect();
        assert_eq!(ids, ["inverter_ambient", "fan_a_rpm"]);
    }

    #[test]
    fn remote_meter_fields_are_grouped_per_ct() {
        let f = Facade {
            vitals: Some(crate::json::Packed::new(&
                parse(r#"{"TRM--X--EM1": {"TRM_CT0_InstVoltage": 122.7, "TRM_CT0_Location": "solar", "TRM_CT1_InstRealPower": 5, "other": 1}, "TRM--a/b": {"TRM_CT0_InstVoltage": 1}}"#)
                    .unwrap(),
            )),
            ..Facade::default()
        };
        let m = remote_meters(f.vitals().as_ref());
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0, "X--EM1");
        assert_eq!(m[0].1.len(), 2);
        assert_eq!(
            Value::Object(m[0].1[0].1.clone()).to_py(),
            r#"{"InstVoltage": 122.7, "Location": "solar"}"#
        );
    }
}
