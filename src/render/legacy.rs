//! The legacy pypowerwall proxy routes, rendered once per poll from a [`Facade`].
//!
//! `proxy/server.py` builds each answer from library calls; [`render`] does the same work once
//! per tick and keeps the finished bodies, so a request is a map lookup and a copy. The shapes,
//! key orders and number formats follow the proxy byte for byte (spec `proxy-compat.md` §3);
//! the deliberate differences of its §10 (query strings ignored, HEAD, keep-alive …) live in
//! the router, not here.
//!
//! A gateway that cannot be reached is rendered from [`offline_facade`], which yields the
//! failure bodies of spec §5.3 (`null`, `{}`, zeros, `SolarOnly`).

use super::{Body, BodyMap, Pass, Settings};
use crate::gateway::facade::{Facade, TedapiRaw};
use crate::json::{py_float, Map, Packed, Value};

/// The `/pw/<name>` convenience routes.
pub const PW_NAMES: &[&str] = &[
    "level",
    "power",
    "site",
    "solar",
    "battery",
    "battery_blocks",
    "load",
    "grid",
    "home",
    "vitals",
    "temps",
    "strings",
    "din",
    "uptime",
    "version",
    "status",
    "system_status",
    "grid_status",
    "aggregates",
    "site_name",
    "alerts",
    "is_connected",
    "get_reserve",
    "get_mode",
    "get_time_remaining",
];

/// The `GET /control/<name>` bodies.
pub const CONTROL_NAMES: [&str; 5] = [
    "reserve",
    "mode",
    "grid_charging",
    "grid_export",
    "max_backup",
];

pub const CONTROL_DISABLED: &str =
    r#"{"error": "Control Commands Disabled - Set PW_CONTROL_SECRET to enable"}"#;
const TEDAPI_USE: &str = r#"{"error": "Use /tedapi/config, /tedapi/status, /tedapi/components, /tedapi/battery, /tedapi/controller"}"#;

/// What the library returns for a gateway it cannot reach (observed on the proxy, spec §5.3).
pub fn offline_facade(tedapi: bool) -> Facade {
    Facade {
        alerts: Some(Vec::new()),
        strings: Some(Value::object()),
        strings_verbose: Some(Value::object()),
        temps: Some(Value::object()),
        fans: Some(Value::object()),
        tedapi: tedapi.then(TedapiRaw::default),
        ..Facade::default()
    }
}

/// `null` for `None`, Python `json.dumps` otherwise.
fn dumps(v: Option<&Value>) -> String {
    v.map(Value::to_py).unwrap_or_else(|| "null".into())
}

fn num(v: Option<f64>) -> Value {
    v.map(Value::Float).unwrap_or(Value::Null)
}

/// `pw.get_reserve()`: Python's `max(0, app)` is the int `0` at or below zero.
fn reserve(v: Option<f64>) -> Value {
    match v {
        Some(r) if r <= 0.0 => Value::Int(0),
        other => num(other),
    }
}

fn opt_str(v: &Option<String>) -> Value {
    v.as_deref().map(Value::from).unwrap_or(Value::Null)
}

/// `pw.grid_status()`: `UP`, `DOWN`, `SYNCING` or `None`.
pub fn grid_state(f: &Facade) -> Option<&'static str> {
    let s = f.grid_status.as_ref()?.get("grid_status")?.as_str()?;
    Some(match s {
        "SystemGridConnected" => "UP",
        "SystemIslandedActive" | "SystemMicroGridFaulted" | "SystemWaitForUser" => "DOWN",
        s if s.starts_with("SystemTransition") || s == "SystemIslandedReady" => "SYNCING",
        _ => return None,
    })
}

/// `pw.grid_status("numeric")`: 1, 0, -1 or null.
fn grid_numeric(f: &Facade) -> Value {
    match grid_state(f) {
        Some("UP") => Value::Int(1),
        Some("DOWN") => Value::Int(0),
        Some(_) => Value::Int(-1),
        None => Value::Null,
    }
}

/// Python `int(x or 0)` for the `/pod` flags; a non-numeric string (where Python raises) is 0.
fn py_int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Bool(b)) => *b as i64,
        Some(Value::Int(i)) => *i,
        Some(Value::Float(f)) => f.trunc() as i64,
        Some(Value::Str(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// Python `a - b` on two JSON numbers (ints stay ints).
fn py_sub(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x
            .checked_sub(*y)
            .map(Value::Int)
            .unwrap_or(Value::Float(*x as f64 - *y as f64)),
        _ => Value::Float(a.as_f64().unwrap_or(0.0) - b.as_f64().unwrap_or(0.0)),
    }
}

fn is_negative(v: &Value) -> bool {
    v.as_f64().is_some_and(|x| x < 0.0)
}

pub use crate::gateway::parse_version;

/// The aggregates after the proxy's site-zero threshold and negative-solar processing.
pub fn processed_aggregates(f: &Facade, s: &Settings) -> Option<Value> {
    let mut agg = f.api("/api/meters/aggregates")?.clone();
    if !agg.truthy() {
        return None;
    }
    if s.site_zero_threshold > 0 {
        if let Some(site) = agg.get("site").and_then(Value::as_object) {
            let power = site.get("instant_power").and_then(Value::as_f64);
            if power.is_some_and(|p| p.abs() <= s.site_zero_threshold as f64) {
                if let Some(Value::Object(site)) =
                    agg.as_object_mut().and_then(|m| m.get_mut("site"))
                {
                    site.insert("instant_power", 0i64);
                }
            }
        }
    }
    if !s.neg_solar {
        let solar = agg.path(&["solar", "instant_power"]).cloned();
        if let Some(solar) = solar.filter(is_negative) {
            if let Some(m) = agg.as_object_mut() {
                if let Some(Value::Object(load)) = m.get_mut("load") {
                    if let Some(lp) = load.get("instant_power").filter(|v| !v.is_null()) {
                        let new = py_sub(lp, &solar);
                        load.insert("instant_power", new);
                    }
                }
                if let Some(Value::Object(sol)) = m.get_mut("solar") {
                    sol.insert("instant_power", 0i64);
                }
            }
        }
    }
    Some(agg)
}

const ZERO_FLOWS: [Value; 4] = [Value::Int(0), Value::Int(0), Value::Int(0), Value::Int(0)];

/// The four flows for `/csv` and `/json`, processed; `None` when there are no aggregates.
fn flows(f: &Facade, s: &Settings) -> Option<[Value; 4]> {
    let agg = f.api("/api/meters/aggregates").filter(|a| a.truthy())?;
    let power = |section: &str| {
        agg.path(&[section, "instant_power"])
            .cloned()
            .unwrap_or(Value::Int(0))
    };
    Some([
        power("site"),
        power("load"),
        power("solar"),
        power("battery"),
    ])
    .map(|[grid, mut home, mut solar, battery]| {
        let mut grid = grid;
        if !s.neg_solar && is_negative(&solar) {
            if !home.is_null() {
                home = py_sub(&home, &solar);
            }
            solar = Value::Int(0);
        }
        if s.site_zero_threshold > 0
            && grid
                .as_f64()
                .is_some_and(|g| g.abs() <= s.site_zero_threshold as f64)
        {
            grid = Value::Int(0);
        }
        [grid, home, solar, battery]
    })
}

/// Python `x or 0` on a JSON number.
fn or_zero(v: &Value) -> Value {
    if v.truthy() {
        v.clone()
    } else {
        Value::Int(0)
    }
}

fn csv(f: &Facade, s: &Settings, v2: bool, headers: bool) -> String {
    let [grid, home, solar, battery] = flows(f, s).unwrap_or(ZERO_FLOWS);
    let n = |v: &Value| or_zero(v).as_f64().unwrap_or(0.0);
    let level = f.level.filter(|l| *l != 0.0).unwrap_or(0.0);
    let mut out = String::new();
    if headers {
        out.push_str("Grid,Home,Solar,Battery,BatteryLevel");
        out.push_str(if v2 { ",GridStatus,Reserve\n" } else { "\n" });
    }
    out.push_str(&format!(
        "{:.2},{:.2},{:.2},{:.2},{:.2}",
        n(&grid),
        n(&home),
        n(&solar),
        n(&battery),
        level
    ));
    if v2 {
        let grid_up = (grid_state(f) == Some("UP")) as i64;
        let reserve = f.reserve.unwrap_or(0.0).trunc() as i64;
        out.push_str(&format!(",{grid_up},{reserve}"));
    }
    out.push('\n');
    out
}

fn freq(f: &Facade, vitals: Option<&Value>) -> Value {
    let mut fcv = Map::new();
    let get = |m: &Value, k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    if let Some(blocks) = f
        .system_status
        .as_ref()
        .and_then(|d| d.get("battery_blocks"))
        .and_then(Value::as_array)
    {
        for (i, block) in blocks.iter().enumerate() {
            let p = format!("PW{}_", i + 1);
            fcv.insert(format!("{p}name"), Value::Null);
            fcv.insert(format!("{p}PINV_Fout"), get(block, "f_out"));
            fcv.insert(format!("{p}PINV_VSplit1"), Value::Null);
            fcv.insert(format!("{p}PINV_VSplit2"), Value::Null);
            for k in [
                "PackagePartNumber",
                "PackageSerialNumber",
                "p_out",
                "q_out",
                "v_out",
                "f_out",
                "i_out",
            ] {
                fcv.insert(format!("{p}{k}"), get(block, k));
            }
        }
    }
    if let Some(vitals) = vitals.and_then(Value::as_object) {
        let mut idx = 1;
        for (device, d) in vitals.iter() {
            if device.starts_with("TEPINV") {
                let p = format!("PW{idx}_");
                fcv.insert(format!("{p}name"), device.as_str());
                fcv.insert(format!("{p}PINV_Fout"), get(d, "PINV_Fout"));
                fcv.insert(format!("{p}PINV_VSplit1"), get(d, "PINV_VSplit1"));
                fcv.insert(format!("{p}PINV_VSplit2"), get(d, "PINV_VSplit2"));
                idx += 1;
            }
            if device.starts_with("TESYNC") || device.starts_with("TEMSA") {
                if let Some(m) = d.as_object() {
                    for (k, v) in m.iter() {
                        if k.starts_with("ISLAND") || k.starts_with("METER") {
                            fcv.insert(k.as_str(), v.clone());
                        }
                    }
                }
            }
        }
    }
    fcv.insert("grid_status", grid_numeric(f));
    Value::Object(fcv)
}

const POD_FLAGS: &[&str] = &[
    "POD_ActiveHeating",
    "POD_ChargeComplete",
    "POD_ChargeRequest",
    "POD_DischargeComplete",
    "POD_PermanentlyFaulted",
    "POD_PersistentlyFaulted",
    "POD_enable_line",
];
const POD_VALUES: &[&str] = &[
    "POD_available_charge_power",
    "POD_available_dischg_power",
    "POD_nom_energy_remaining",
    "POD_nom_energy_to_be_charged",
    "POD_nom_full_pack_energy",
];

fn pod(f: &Facade, vitals: Option<&Value>) -> Value {
    let mut pod = Map::new();
    let get = |m: &Value, k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    let d = f.system_status.clone().unwrap_or_else(Value::object);
    if let Some(blocks) = d.get("battery_blocks").and_then(Value::as_array) {
        for (i, block) in blocks.iter().enumerate() {
            let p = format!("PW{}_", i + 1);
            pod.insert(format!("{p}name"), Value::Null);
            for k in POD_FLAGS.iter().chain(POD_VALUES) {
                pod.insert(format!("{p}{k}"), Value::Null);
            }
            pod.insert(
                format!("{p}POD_nom_energy_remaining"),
                get(block, "nominal_energy_remaining"),
            );
            pod.insert(
                format!("{p}POD_nom_full_pack_energy"),
                get(block, "nominal_full_pack_energy"),
            );
            for k in [
                "PackagePartNumber",
                "PackageSerialNumber",
                "pinv_state",
                "pinv_grid_state",
                "p_out",
                "q_out",
                "v_out",
                "f_out",
                "i_out",
                "energy_charged",
                "energy_discharged",
            ] {
                pod.insert(format!("{p}{k}"), get(block, k));
            }
            for k in [
                "off_grid",
                "vf_mode",
                "wobble_detected",
                "charge_power_clamped",
                "backup_ready",
            ] {
                pod.insert(format!("{p}{k}"), py_int(block.get(k)));
            }
            pod.insert(format!("{p}OpSeqState"), get(block, "OpSeqState"));
            pod.insert(format!("{p}version"), get(block, "version"));
        }
    }
    if let Some(vitals) = vitals.and_then(Value::as_object) {
        let mut idx = 1;
        for (device, v) in vitals.iter() {
            if device.starts_with("TEPOD") {
                let p = format!("PW{idx}_");
                pod.insert(format!("{p}name"), device.as_str());
                for k in POD_FLAGS {
                    pod.insert(format!("{p}{k}"), py_int(v.get(k)));
                }
                for k in POD_VALUES {
                    pod.insert(format!("{p}{k}"), get(v, k));
                }
                idx += 1;
            }
        }
    }
    pod.insert(
        "nominal_full_pack_energy",
        get(&d, "nominal_full_pack_energy"),
    );
    pod.insert(
        "nominal_energy_remaining",
        get(&d, "nominal_energy_remaining"),
    );
    pod.insert("time_remaining_hours", num(f.time_remaining));
    pod.insert("backup_reserve_percent", reserve(f.reserve));
    Value::Object(pod)
}

fn json_summary(f: &Facade, s: &Settings) -> Value {
    let [grid, home, solar, battery] = flows(f, s)
        .map(|a| a.map(|v| or_zero(&v)))
        .unwrap_or(ZERO_FLOWS);
    let d = f.system_status.clone().unwrap_or_else(Value::object);
    let or0 = |v: Option<f64>| match v {
        Some(x) if x != 0.0 => Value::Float(x),
        _ => Value::Int(0),
    };
    let or0v = |v: Option<&Value>| v.map(or_zero).unwrap_or(Value::Int(0));
    Map::new()
        .with("grid", grid)
        .with("home", home)
        .with("solar", solar)
        .with("battery", battery)
        .with("soe", or0(f.level))
        .with("grid_status", (grid_state(f) == Some("UP")) as i64)
        .with("reserve", or0(f.reserve))
        .with("time_remaining_hours", or0(f.time_remaining))
        .with("full_pack_energy", or0v(d.get("nominal_full_pack_energy")))
        .with("energy_remaining", or0v(d.get("nominal_energy_remaining")))
        .with(
            "strings",
            f.strings
                .clone()
                .filter(Value::truthy)
                .unwrap_or_else(Value::object),
        )
        .into()
}

fn fans_pw(f: &Facade) -> Value {
    let mut out = Map::new();
    if let Some(fans) = f.fans.as_ref().and_then(Value::as_object) {
        let mut entries: Vec<_> = fans.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (i, (_, v)) in entries.into_iter().enumerate() {
            let get = |k| v.get(k).cloned().unwrap_or(Value::Null);
            out.insert(
                format!("FAN{}_actual", i + 1),
                get("PVAC_Fan_Speed_Actual_RPM"),
            );
            out.insert(
                format!("FAN{}_target", i + 1),
                get("PVAC_Fan_Speed_Target_RPM"),
            );
        }
    }
    Value::Object(out)
}

fn pw_route(f: &Facade, vitals: Option<&Value>, name: &str, connected: bool) -> Value {
    let agg = f.api("/api/meters/aggregates");
    let section = |s: &str| agg.and_then(|a| a.get(s)).cloned().unwrap_or(Value::Null);
    let one = |k: &str, v: Value| Value::Object(Map::new().with(k, v));
    match name {
        "level" => one("level", num(f.level)),
        "power" => {
            let p = |s: &str| {
                agg.and_then(|a| a.path(&[s, "instant_power"]))
                    .filter(|v| v.as_f64().is_some())
                    .cloned()
                    .unwrap_or(Value::Float(0.0))
            };
            Map::new()
                .with("site", p("site"))
                .with("solar", p("solar"))
                .with("battery", p("battery"))
                .with("load", p("load"))
                .into()
        }
        "site" | "grid" => section("site"),
        "solar" => section("solar"),
        "battery" => section("battery"),
        "load" | "home" => section("load"),
        "battery_blocks" => f.battery_blocks.clone().unwrap_or(Value::Null),
        "vitals" => vitals.cloned().unwrap_or(Value::Null),
        "temps" => f.temps.clone().unwrap_or(Value::Null),
        "strings" => f.strings_verbose.clone().unwrap_or(Value::Null),
        "din" => one("din", opt_str(&f.din)),
        "uptime" => one("uptime", opt_str(&f.uptime)),
        "version" => one("version", opt_str(&f.version)),
        "status" => f.status.clone().unwrap_or(Value::Null),
        "system_status" => f.system_status.clone().unwrap_or(Value::Null),
        "grid_status" => f.grid_status.clone().unwrap_or_else(Value::object),
        "aggregates" => agg.cloned().unwrap_or(Value::Null),
        "site_name" => one("site_name", opt_str(&f.site_name)),
        "alerts" => one(
            "alerts",
            f.alerts
                .as_ref()
                .map(|a| Value::Array(a.iter().map(|s| Value::from(s.as_str())).collect()))
                .unwrap_or(Value::Null),
        ),
        "is_connected" => one("is_connected", Value::Bool(connected)),
        "get_reserve" => one("reserve", reserve(f.reserve)),
        "get_mode" => one("mode", opt_str(&f.mode)),
        "get_time_remaining" => one("time_remaining", num(f.time_remaining)),
        _ => one("error", Value::from("Invalid Request")),
    }
}

/// Renders every snapshot-only legacy body.
pub fn render(f: &Facade, s: &Settings, connected: bool) -> BodyMap {
    render_with(f, s, connected, processed_aggregates(f, s).as_ref())
}

/// [`render`] with the processed aggregates already computed (once per tick, [`super::tick`]).
pub fn render_with(f: &Facade, s: &Settings, connected: bool, agg: Option<&Value>) -> BodyMap {
    // Unpacked once for every body that shows it.
    let vitals = f.vitals();
    let vitals = vitals.as_ref();
    let mut b = BodyMap::default();

    b.json("/aggregates", dumps(agg));
    b.json("/soe", dumps(f.api("/api/system_status/soe")));
    b.json(
        "/api/system_status/soe",
        match f.level {
            Some(raw) => {
                Value::from(Map::new().with("percentage", raw / 0.95 - 5.0 / 0.95)).to_py()
            }
            None => "null".into(),
        },
    );
    for (key, v2, headers) in [
        ("/csv", false, false),
        ("/csv_headers", false, true),
        ("/csv/v2", true, false),
        ("/csv/v2_headers", true, true),
    ] {
        b.put(key, Body::csv(csv(f, s, v2, headers)));
    }
    b.json(
        "/vitals",
        vitals
            .map(Value::to_py_pretty_sorted)
            .unwrap_or_else(|| "null".into()),
    );
    b.json(
        "/strings",
        f.strings
            .as_ref()
            .map(Value::to_py_pretty_sorted)
            .unwrap_or_else(|| "{}".into()),
    );
    b.json(
        "/temps",
        f.temps
            .as_ref()
            .filter(|t| !t.is_null())
            .map(Value::to_py_pretty_sorted)
            .unwrap_or_else(|| "{}".into()),
    );
    let mut temps_pw = Map::new();
    if let Some(t) = f.temps.as_ref().and_then(Value::as_object) {
        for (i, v) in t.values().enumerate() {
            temps_pw.insert(format!("PW{}_temp", i + 1), v.clone());
        }
    }
    b.json("/temps/pw", Value::Object(temps_pw).to_py());
    let alerts: Option<Vec<Value>> = f
        .alerts
        .as_ref()
        .map(|a| a.iter().map(|s| Value::from(s.as_str())).collect());
    b.json(
        "/alerts",
        alerts
            .clone()
            .map(|a| Value::Array(a).to_py_pretty())
            .unwrap_or_else(|| "[]".into()),
    );
    b.json(
        "/alerts/pw",
        match &f.alerts {
            Some(a) => {
                Value::Object(a.iter().map(|s| (s.clone(), Value::Int(1))).collect()).to_py()
            }
            None => "TIMEOUT!".into(),
        },
    );
    b.json(
        "/fans",
        if f.tedapi.is_some() {
            dumps(f.fans.as_ref())
        } else {
            "{}".into()
        },
    );
    b.json(
        "/fans/pw",
        if f.tedapi.is_some() {
            fans_pw(f).to_py()
        } else {
            "{}".into()
        },
    );
    b.json("/freq", freq(f, vitals).to_py());
    b.json("/pod", pod(f, vitals).to_py());
    b.json("/json", json_summary(f, s).to_py());
    b.json(
        "/version",
        match &f.version {
            None => r#"{"version": "SolarOnly", "vint": 0}"#.into(),
            Some(v) => Value::from(
                Map::new()
                    .with("version", v.as_str())
                    .with("vint", parse_version(v)),
            )
            .to_py(),
        },
    );
    for (path, rule) in &s.pass_through {
        let text = match rule {
            Pass::Gateway => dumps(f.api(path)),
            Pass::Disabled => r#"{"status": "404 Response - API Disabled"}"#.into(),
            Pass::Constant(c) => (*c).into(),
        };
        b.json(path, text);
    }
    match &f.tedapi {
        Some(raw) => {
            b.json("/tedapi", TEDAPI_USE.into());
            b.json("/tedapi/config", dumps(raw.config.as_deref()));
            b.json(
                "/tedapi/status",
                dumps(raw.status.as_ref().map(Packed::value).as_ref()),
            );
            b.json(
                "/tedapi/components",
                dumps(raw.components.as_deref().map(Packed::value).as_ref()),
            );
            b.json(
                "/tedapi/battery",
                dumps(raw.config.as_deref().and_then(|c| c.get("battery_blocks"))),
            );
            b.json(
                "/tedapi/controller",
                dumps(raw.controller.as_ref().map(Packed::value).as_ref()),
            );
        }
        None => {
            for key in [
                "/tedapi",
                "/tedapi/config",
                "/tedapi/status",
                "/tedapi/components",
                "/tedapi/battery",
                "/tedapi/controller",
            ] {
                b.json(key, r#"{"error": "TEDAPI not enabled"}"#.into());
            }
        }
    }
    b.json("/cloud", r#"{"error": "Cloud API not enabled"}"#.into());
    b.json("/fleetapi", r#"{"error": "FleetAPI not enabled"}"#.into());
    for name in PW_NAMES {
        let v = pw_route(f, vitals, name, connected);
        let text = if *name == "grid_status" {
            v.to_py_sorted()
        } else {
            v.to_py()
        };
        b.json(&format!("/pw/{name}"), text);
    }
    b.json("/pw/", pw_route(f, vitals, "", connected).to_py());
    control_bodies(&mut b, f, s);
    b
}

/// GET `/control/*`: the proxy's disabled answer, or the current settings (from this tick's
/// facade; a read never calls the cloud).
fn control_bodies(b: &mut BodyMap, f: &Facade, s: &Settings) {
    if !s.control_enabled {
        for name in CONTROL_NAMES {
            b.json(&format!("/control/{name}"), CONTROL_DISABLED.into());
        }
        return;
    }
    let reserve = match f.reserve {
        Some(r) if r > 0.0 => py_float(r),
        _ => "0".into(),
    };
    b.json("/control/reserve", format!(r#"{{"reserve": {reserve}}}"#));
    b.json(
        "/control/mode",
        format!(
            r#"{{"mode": "{}"}}"#,
            f.mode
                .as_deref()
                .filter(|m| !m.is_empty())
                .unwrap_or("unknown")
        ),
    );
    b.json(
        "/control/grid_charging",
        format!(
            r#"{{"grid_charging": {}}}"#,
            f.grid_charging.unwrap_or(false)
        ),
    );
    b.json(
        "/control/grid_export",
        format!(
            r#"{{"grid_export": "{}"}}"#,
            f.grid_export
                .as_deref()
                .filter(|m| !m.is_empty())
                .unwrap_or("unknown")
        ),
    );
    b.json(
        "/control/max_backup",
        r#"{"error": "max_backup requires v1r LAN transport"}"#.into(),
    );
}

#[cfg(test)]
#[path = "legacy_tests.rs"]
mod tests;
