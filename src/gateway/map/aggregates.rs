//! `/api/meters/aggregates` in TEDAPI mode (pypowerwall 0.22.2 `get_api_meters_aggregates`).
//!
//! Starts from the upstream stub and fills each section from the status document: power from
//! `control.meterAggregates`, voltage from the meter or inverter that has one, current = power /
//! voltage, a `disclaimer` naming the source, then the SolarMeterComms hold and the merge of the
//! gateway's own (native) energy counters. Section and key order come from the stub, so they
//! match the library byte for byte.

use crate::json::{Map, Value};

use super::meters;
use super::py::{
    self, get_or, get_or_empty, index, iter_or_empty, len, lookup, or, IsDict, Py, Raise,
};
use super::{clock, Derived, Src};

const STUB: &str = include_str!("../canned/stubs/API_METERS_AGGREGATES_STUB.json");

/// Below this a voltage leg counts as residual, not active (`SIGNIFICANT_VOLTAGE`).
const SIGNIFICANT_VOLTAGE: f64 = 100.0;
/// Gateway solar at or below this (W) counts as missing during SolarMeterComms.
const SOLAR_METER_HOLD_ZERO_W: f64 = 10.0;
/// How far (s) a retained remote-meter reading may be from the gateway clock to be held.
const SOLAR_METER_HOLD_MAX_AGE: f64 = 60.0;

fn zero() -> Value {
    Value::Int(0)
}

/// `compute_LL_voltage(v1n, v2n, v3n)`: line-to-line voltage for 1, 2 (split) or 3 phase legs.
///
/// Legs count as active when non-null with |v| > 100. None active: the plain sum (treating
/// `null` as 0); one: its value; two: their sum; three: the mean of `sqrt(a² + b² + a·b)` over the
/// pairs (1,2), (2,3), (3,1). Ints stay ints where Python keeps them. `None` for a non-number
/// (where the library raises).
pub fn compute_ll_voltage(v1n: &Value, v2n: &Value, v3n: &Value) -> Option<Value> {
    ll_voltage(v1n, v2n, v3n).ok()
}

pub(crate) fn ll_voltage(v1n: &Value, v2n: &Value, v3n: &Value) -> Py<Value> {
    let mut active = Vec::new();
    for v in [v1n, v2n, v3n] {
        if v.truthy() && py::gt(&py::abs(v)?, &Value::Float(SIGNIFICANT_VOLTAGE))? {
            active.push(v);
        }
    }
    let z = zero();
    match active.as_slice() {
        [] => py::add(&py::add(or(v1n, &z), or(v2n, &z))?, or(v3n, &z)),
        [a] => Ok((*a).clone()),
        [a, b] => py::add(a, b),
        _ => {
            let pair = |a: &Value, b: &Value| -> Py<f64> {
                let (a, b) = (
                    py::num(or(a, &z)).ok_or(Raise)?,
                    py::num(or(b, &z)).ok_or(Raise)?,
                );
                let sq = py::add_n(py::add_n(py::mul_n(a, a), py::mul_n(b, b)), py::mul_n(a, b));
                Ok(sq.f64().sqrt())
            };
            let (v12, v23, v31) = (pair(v1n, v2n)?, pair(v2n, v3n)?, pair(v3n, v1n)?);
            Ok(Value::Float((v12 + v23 + v31) / 3.0))
        }
    }
}

/// `TEDAPI.current_power(location)`: `realPowerW` of a `meterAggregates` location.
pub(crate) fn current_power(status: &Value, location: &str) -> Py<Value> {
    let Value::Array(list) = lookup(status, &["control", "meterAggregates"]) else {
        return Ok(Value::Null);
    };
    let mut power = Map::new();
    for meter in list {
        let loc = py::get(meter, "location")?;
        if loc.is_null() {
            continue;
        }
        let Value::Str(loc) = loc else {
            return Err(Raise);
        };
        power.insert(loc.to_uppercase(), py::get(meter, "realPowerW")?.clone());
    }
    Ok(power
        .get(&location.to_uppercase())
        .cloned()
        .unwrap_or(Value::Null))
}

/// `x / vll if vll and x is not None else None`.
fn current(power: &Value, vll: &Value) -> Py<Value> {
    if vll.truthy() && !power.is_null() {
        py::div(power, vll)
    } else {
        Ok(Value::Null)
    }
}

/// `if v == 0: v = None`.
fn zero_to_none(v: Value) -> Value {
    if py::eq(&v, &zero()) {
        Value::Null
    } else {
        v
    }
}

/// Site voltage and current from a meter's CTs (`METER_X` or `METER_Z`).
fn meter_phases(status: &Value, meter: &Value, name: &str) -> Py<([Value; 3], [Value; 3])> {
    let islander = lookup(
        status,
        &["esCan", "bus", "ISLANDER", "ISLAND_AcMeasurements"],
    );
    let z = zero();
    let mut v = [Value::Null, Value::Null, Value::Null];
    for (slot, n) in v.iter_mut().zip(1..) {
        *slot = get_or_empty(islander, &format!("ISLAND_VL{n}N_Main"), &z)?.clone();
    }
    let mut i = [Value::Null, Value::Null, Value::Null];
    for (slot, ct) in i.iter_mut().zip(["A", "B", "C"]) {
        *slot = get_or(meter, &format!("METER_{name}_CT{ct}_I"), &z)?.clone();
    }
    for (slot, ct) in i.iter_mut().zip(["A", "B", "C"]) {
        let p = py::get(meter, &format!("METER_{name}_CT{ct}_InstRealPower"))?;
        if !p.is_null() && py::lt(p, &z)? {
            *slot = py::sub(&z, &py::abs(slot)?)?;
        }
    }
    Ok((v, i))
}

fn site(status: &Value, config: &Value, remote: &Map) -> Py<Map> {
    let grid_power = current_power(status, "site")?;
    let meter_x = lookup(status, &["esCan", "bus", "SYNC", "METER_X_AcMeasurements"]);
    let meter_z = lookup(status, &["esCan", "bus", "MSA", "METER_Z_AcMeasurements"]);
    let neurio_readings = lookup(status, &["neurio", "readings"]);
    let mut v = [zero(), zero(), zero()];
    let mut i = [zero(), zero(), zero()];
    let mut used_meter: Option<&str> = None;
    let no = Value::Bool(false);
    if meter_x.truthy() && !get_or(meter_x, "isMIA", &no)?.truthy() {
        (v, i) = meter_phases(status, meter_x, "X")?;
        used_meter = Some("Meter X");
    } else if meter_z.truthy() && !get_or(meter_z, "isMIA", &no)?.truthy() {
        (v, i) = meter_phases(status, meter_z, "Z")?;
        used_meter = Some("Meter Z");
    } else if neurio_readings.truthy() && len(neurio_readings)? > 0 {
        let cfg = meters::derive_meter_config(config, meters::NEURIO_TYPES)?;
        let (_, cts) = meters::neurio(config, status, &cfg)?;
        let mut phase = 0;
        for d in cts.values() {
            if !py::eq(py::get(d, "Location")?, &Value::Str("site".into())) {
                continue;
            }
            let c = py::copysign(
                get_or(d, "InstCurrent", &zero())?,
                get_or(d, "InstRealPower", &zero())?,
            )?;
            let volts = get_or(d, "InstVoltage", &zero())?.clone();
            if let (Some(vs), Some(is)) = (v.get_mut(phase), i.get_mut(phase)) {
                *vs = volts;
                *is = c;
            }
            phase += 1;
            used_meter = Some("Neurio");
        }
    }
    if used_meter.is_none() {
        let mut any = false;
        for d in remote.values() {
            if !py::eq(py::get(d, "Location")?, &Value::Str("site".into())) {
                continue;
            }
            any = true;
            let Some(idx) = py::get(d, "Index")?.as_i64().filter(|n| (0..3).contains(n)) else {
                continue;
            };
            let z = zero();
            let c = py::copysign(
                or(py::get(d, "InstCurrent")?, &z),
                or(py::get(d, "InstRealPower")?, &z),
            )?;
            let volts = or(py::get(d, "InstVoltage")?, &z).clone();
            let idx = idx as usize;
            if let (Some(vs), Some(is)) = (v.get_mut(idx), i.get_mut(idx)) {
                *vs = volts;
                *is = c;
            }
        }
        if any {
            used_meter = Some("Remote Meter");
        }
    }
    let [v1, v2, v3] = v;
    let vll = zero_to_none(ll_voltage(&v1, &v2, &zero_to_none(v3))?);
    measured(
        grid_power,
        vll,
        i,
        1,
        format!(
            "site: voltage/current from {}",
            used_meter.unwrap_or("unknown")
        ),
    )
}

/// The measured keys of a site, load or solar section, in the reference's order: power, line
/// voltage, the current derived from both, per-phase currents, meter count, disclaimer.
fn measured(
    power: Value,
    vll: Value,
    phases: [Value; 3],
    meters: impl Into<Value>,
    disclaimer: impl Into<Value>,
) -> Py<Map> {
    let amps = current(&power, &vll)?;
    let [ia, ib, ic] = phases;
    Ok(Map::new()
        .with("instant_power", power)
        .with("instant_average_voltage", vll)
        .with("instant_average_current", amps.clone())
        .with("i_a_current", ia)
        .with("i_b_current", ib)
        .with("i_c_current", ic)
        .with("instant_total_current", amps)
        .with("num_meters_aggregated", meters)
        .with("disclaimer", disclaimer))
}

fn load(status: &Value) -> Py<Map> {
    let power = current_power(status, "load")?;
    let islander = lookup(
        status,
        &["esCan", "bus", "ISLANDER", "ISLAND_AcMeasurements"],
    );
    let z = zero();
    let v1 = get_or_empty(islander, "ISLAND_VL1N_Load", &z)?;
    let v2 = get_or_empty(islander, "ISLAND_VL2N_Load", &z)?;
    let v3 = get_or_empty(islander, "ISLAND_VL3N_Load", &z)?;
    let vll = zero_to_none(ll_voltage(v1, v2, v3)?);
    measured(
        power,
        vll,
        [Value::Int(0), Value::Int(0), Value::Int(0)],
        1,
        "load: voltage from ISLAND_AcMeasurements, current calculated from power",
    )
}

/// Sum and count of the truthy `<key>` values of the PW3 vitals blocks named `<prefix>*`.
fn pw3_voltages(pw3: Option<&Map>, prefix: &str, key: &str) -> Py<(Value, usize)> {
    let mut sum = zero();
    let mut count = 0;
    for (name, block) in pw3.into_iter().flat_map(Map::iter) {
        if !name.starts_with(prefix) {
            continue;
        }
        let v = py::get(block, key)?;
        if v.truthy() {
            sum = py::add(&sum, v)?;
            count += 1;
        }
    }
    Ok((sum, count))
}

fn solar(status: &Value, pw3: Option<&Map>, remote: &Map) -> Py<Map> {
    let power = current_power(status, "solar")?;
    let (mut sum, mut count) = pw3_voltages(pw3, "PVAC--", "PVAC_Vout")?;
    for p in iter_or_empty(lookup(status, &["esCan", "bus", "PVAC"]))? {
        if !py::item(&p, "packageSerialNumber")?.truthy() {
            continue;
        }
        let v = lookup(&p, &["PVAC_Status", "PVAC_Vout"]);
        if v.truthy() {
            sum = py::add(&sum, v)?;
            count += 1;
        }
    }
    let mut vll = if count > 0 {
        py::div(&sum, &Value::Int(count as i64))?
    } else {
        zero()
    };
    let mut voltage_source = vll.truthy().then_some("PVAC");
    let meter_y = lookup(status, &["esCan", "bus", "SYNC", "METER_Y_AcMeasurements"]);
    let z = zero();
    let mut yi = [
        get_or_empty(meter_y, "METER_Y_CTA_I", &z)?.clone(),
        get_or_empty(meter_y, "METER_Y_CTB_I", &z)?.clone(),
        get_or_empty(meter_y, "METER_Y_CTC_I", &z)?.clone(),
    ];
    let mut current_source = yi.iter().any(Value::truthy).then_some("Meter Y");
    if !vll.truthy() {
        let yv1 = get_or_empty(meter_y, "METER_Y_VL1N", &z)?;
        let yv2 = get_or_empty(meter_y, "METER_Y_VL2N", &z)?;
        let yv3 = get_or_empty(meter_y, "METER_Y_VL3N", &z)?;
        vll = ll_voltage(yv1, yv2, yv3)?;
        if vll.truthy() {
            voltage_source = Some("Meter Y");
        }
    }
    if !vll.truthy() || current_source.is_none() {
        let mut solar_cts = Vec::new();
        for d in remote.values() {
            if py::eq(py::get(d, "Location")?, &Value::Str("solar".into())) {
                solar_cts.push(d);
            }
        }
        if !solar_cts.is_empty() {
            let mut v = [zero(), zero(), zero()];
            let mut currents = [zero(), zero(), zero()];
            for d in solar_cts {
                let Some(idx) = py::get(d, "Index")?.as_i64().filter(|n| (0..3).contains(n)) else {
                    continue;
                };
                let idx = idx as usize;
                let c = py::copysign(
                    or(py::get(d, "InstCurrent")?, &z),
                    or(py::get(d, "InstRealPower")?, &z),
                )?;
                let volts = or(py::get(d, "InstVoltage")?, &z).clone();
                if let (Some(cs), Some(vs)) = (currents.get_mut(idx), v.get_mut(idx)) {
                    *cs = c;
                    *vs = volts;
                }
            }
            if current_source.is_none() {
                yi = currents;
                current_source = Some("Remote Meter");
            }
            if !vll.truthy() {
                let [v1, v2, v3] = v;
                vll = or(&ll_voltage(&v1, &v2, &zero_to_none(v3))?, &z).clone();
                if vll.truthy() {
                    voltage_source = Some("Remote Meter");
                }
            }
        }
    }
    let current_desc = match current_source {
        Some(s) => format!("current from {s}"),
        None => "calculated current from power".to_string(),
    };
    let disclaimer = format!(
        "solar: voltage from {}, {current_desc}",
        voltage_source.unwrap_or("unknown")
    );
    let vll = zero_to_none(vll);
    measured(power, vll, yi, count, disclaimer)
}

fn battery(status: &Value, pw3: Option<&Map>) -> Py<Map> {
    let power = current_power(status, "battery")?;
    let (mut sum, mut count) = pw3_voltages(pw3, "TEPINV--", "PINV_Vout")?;
    let empty = Value::Array(Vec::new());
    let pinv = or(lookup(status, &["esCan", "bus", "PINV"]), &empty);
    for p in 0..len(pinv)? {
        let entry = index(pinv, p)?;
        let v = lookup(&entry, &["PINV_Status", "PINV_Vout"]).clone();
        if v.truthy() {
            sum = py::add(&sum, &v)?;
            count += 1;
        }
    }
    let vll = if count > 0 {
        py::div(&sum, &Value::Int(count as i64))?
    } else {
        zero()
    };
    let vll = zero_to_none(vll);
    let amps = current(&power, &vll)?;
    Ok(Map::new()
        .with("instant_power", power)
        .with("instant_average_voltage", vll)
        .with("instant_average_current", amps.clone())
        .with("instant_total_current", amps)
        .with("num_meters_aggregated", count)
        .with(
            "disclaimer",
            "battery: voltage from PINV, calculated current from power",
        ))
}

/// `_hold_solar_through_meter_comms`: during a SolarMeterComms dropout, hold solar at the remote
/// meter's retained reading and give the missing power back to load. Leaves both untouched when
/// any condition fails (the library swallows its own exceptions here too).
fn hold_solar(solar: &mut Map, load: &mut Map, status: &Value, remote: &Map) -> Py<()> {
    let alerts = lookup(status, &["control", "alerts", "active"]);
    let Value::Array(alerts) = alerts else {
        return Ok(());
    };
    if !alerts.iter().any(|a| a.as_str() == Some("SolarMeterComms")) {
        return Ok(());
    }
    let gateway_solar = solar.get("instant_power").cloned().unwrap_or(Value::Null);
    if !gateway_solar.is_null() {
        let in_range = py::is_number(&gateway_solar)
            && py::num(&gateway_solar)
                .is_some_and(|n| (0.0..=SOLAR_METER_HOLD_ZERO_W).contains(&n.f64()));
        if !in_range {
            return Ok(());
        }
    }
    let solar_cts: Vec<&Map> = remote
        .values()
        .filter_map(Value::as_object)
        .filter(|d| d.get("Location").and_then(Value::as_str) == Some("solar"))
        .collect();
    if solar_cts.is_empty() {
        return Ok(());
    }
    let z = zero();
    let mut retained = zero();
    for d in &solar_cts {
        retained = py::add(&retained, or(d.get("InstRealPower").unwrap_or(&z), &z))?;
    }
    if py::le(&retained, &z)? {
        return Ok(());
    }
    let Some(system_time) = clock::parse_gateway_time(lookup(status, &["system", "time"])) else {
        return Ok(());
    };
    let mut ages = Vec::new();
    for d in &solar_cts {
        let Some(reading) = clock::parse_gateway_time(d.get("Timestamp").unwrap_or(&Value::Null))
        else {
            return Ok(());
        };
        ages.push((system_time.utc_us() - reading.utc_us()) as f64 / 1e6);
    }
    let age = ages.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let newest = ages.iter().copied().fold(f64::INFINITY, f64::min);
    if age > SOLAR_METER_HOLD_MAX_AGE || newest < -SOLAR_METER_HOLD_MAX_AGE {
        return Ok(());
    }

    // Compute everything first, then assign, as the library does.
    let mut solar_updates = Map::new().with("instant_power", retained.clone());
    let v_solar = solar.get("instant_average_voltage").unwrap_or(&Value::Null);
    if py::num(v_solar).is_some_and(|n| n.truthy()) {
        let amps = py::div(&retained, v_solar)?;
        solar_updates.insert("instant_average_current", amps.clone());
        solar_updates.insert("instant_total_current", amps);
    }
    let shown_age = if age > 0.0 { age } else { 0.0 };
    let note = format!(
        "solar held from remote meter reading during SolarMeterComms (age {shown_age:.0}s)"
    );
    solar_updates.insert("disclaimer", with_note(solar.get("disclaimer"), &note));
    let mut load_updates = Map::new();
    let load_power = load.get("instant_power").unwrap_or(&Value::Null);
    if py::is_number(load_power) {
        let new_load = py::sub(&py::add(load_power, &retained)?, or(&gateway_solar, &z))?;
        let v_load = load.get("instant_average_voltage").unwrap_or(&Value::Null);
        if py::num(v_load).is_some_and(|n| n.truthy()) {
            let amps = py::div(&new_load, v_load)?;
            load_updates.insert("instant_average_current", amps.clone());
            load_updates.insert("instant_total_current", amps);
        }
        load_updates.insert("instant_power", new_load);
    }
    py::update(solar, solar_updates);
    py::update(load, load_updates);
    Ok(())
}

/// `"<existing>; <note>"`, or just the note when there is no existing text.
fn with_note(existing: Option<&Value>, note: &str) -> Value {
    match existing.filter(|e| e.truthy()) {
        Some(e) => Value::Str(format!("{}; {note}", py::to_str(e))),
        None => Value::Str(note.to_string()),
    }
}

/// Copies the gateway's own energy counters into each section (0.22.2 native merge).
fn merge_native(data: &mut Map, native: &Value) {
    let Value::Object(native) = native else {
        return;
    };
    let sections = ["site", "battery", "load", "solar"];
    if !sections
        .iter()
        .all(|s| native.get(s).is_some_and(Value::is_object))
    {
        return;
    }
    for section in sections {
        let (Some(Value::Object(from)), Some(Value::Object(to))) =
            (native.get(section), data.get_mut(section))
        else {
            continue;
        };
        let mut merged = false;
        for field in ["energy_exported", "energy_imported"] {
            if let Some(v) = from.get(field).filter(|v| py::is_number(v)) {
                to.insert(field, v.clone());
                merged = true;
            }
        }
        if merged {
            let note = with_note(to.get("disclaimer"), "energy from gateway local API");
            to.insert("disclaimer", note);
        }
    }
}

/// `poll('/api/meters/aggregates')`: `None` without a config or status object.
pub(crate) fn aggregates(src: &Src, d: &Derived) -> Py<Option<Value>> {
    if !src.config.is_object() || !src.status.is_object() {
        return Ok(None);
    }
    let status = src.status;
    let timestamp = lookup(status, &["system", "time"]).clone();
    let Ok(Value::Object(mut data)) = crate::json::parse(STUB) else {
        return Err(Raise);
    };
    let remote = meters::remote_readings(src.config, src.controller)?;
    let pw3 = d.pw3.as_ref();

    let site = site(status, src.config, &remote)?;
    let mut load = load(status)?;
    let mut solar = solar(status, pw3, &remote)?;
    // The hold assigns only after its last fallible step, so an error leaves both untouched.
    let _ = hold_solar(&mut solar, &mut load, status, &remote);
    let battery = battery(status, pw3)?;

    for (name, values) in [
        ("site", site),
        ("load", load),
        ("solar", solar),
        ("battery", battery),
    ] {
        if let Some(Value::Object(section)) = data.get_mut(name) {
            py::update(section, values);
            section.insert("last_communication_time", timestamp.clone());
        }
    }
    merge_native(&mut data, src.native);
    Ok(Some(Value::Object(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(v: [Value; 3]) -> Option<String> {
        let [a, b, c] = v;
        compute_ll_voltage(&a, &b, &c).map(|v| v.to_py())
    }

    #[test]
    fn compute_ll_by_active_legs() {
        use Value::{Float as F, Int as I, Null as N};
        // No active leg: the plain sum, with null as 0 (int stays int).
        assert_eq!(ll([I(0), I(0), I(0)]).as_deref(), Some("0"));
        assert_eq!(ll([N, N, N]).as_deref(), Some("0"));
        assert_eq!(ll([F(50.0), I(20), N]).as_deref(), Some("70.0"));
        // One active leg (single phase): its value.
        assert_eq!(ll([F(230.1), F(3.0), N]).as_deref(), Some("230.1"));
        assert_eq!(ll([I(-240), I(0), I(0)]).as_deref(), Some("-240"));
        // Two (split phase): the sum.
        assert_eq!(ll([F(120.2), F(120.3), N]).as_deref(), Some("240.5"));
        // Three (120 degrees apart): the mean line-to-line voltage.
        let three = ll([F(230.0), F(231.0), F(229.0)]);
        let want = {
            let p = |a: f64, b: f64| (a * a + b * b + a * b).sqrt();
            (p(230.0, 231.0) + p(231.0, 229.0) + p(229.0, 230.0)) / 3.0
        };
        assert_eq!(three, Some(crate::json::py_float(want)));
        assert_eq!(
            ll([I(230), I(230), I(230)]).as_deref(),
            Some("398.37168574084177")
        );
        // A string leg: the library raises.
        assert_eq!(ll([Value::Str("x".into()), N, N]), None);
    }
}
