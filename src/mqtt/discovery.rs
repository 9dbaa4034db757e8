//! Home Assistant MQTT discovery: the retained `{ha_prefix}/{component}/{unique_id}/config`
//! documents that make entities appear by themselves.
//!
//! Unique ids, names, state topics, classes and units are pypowerwall-server 0.13.0's, so a user
//! who switches servers keeps entity ids and history. Additions: the DIN in the device
//! identifiers, the model from the data, an `origin` block, an alert-count sensor, and an
//! "All sites" device for the site total when there are several gateways, and the six lifetime
//! energy sensors (`device_class: energy`, `state_class: total_increasing`) in kWh for the
//! Energy dashboard: the state topics keep 0.13.0's whole-Wh payloads and a `value_template`
//! divides by 1000 (Home Assistant converts the statistics of 0.13.0's Wh entities).
//!
//! Pure: the caller decides when to send (first tick, new entities, HA birth, reconnect).

use super::state::{self, Battery, UnitSignals};
use crate::config::mqtt as cfg;
use crate::json::{Map, Value};

/// Everything discovery needs to know about one gateway this tick.
pub struct Device<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub din: Option<&'a str>,
    pub pw3: bool,
    pub strings: Vec<String>,
    pub meters: Vec<(String, Vec<(String, Map)>)>,
    pub units: UnitSignals,
    pub batteries: Vec<Battery>,
    /// Grid voltage / current are reported (0.13.0 announces only those it publishes).
    pub grid_voltage: bool,
    pub grid_current: bool,
    /// Announced control entities: `MQTT_CONTROLS` bits this gateway can execute.
    pub controls: u8,
}

/// Every control entity a gateway can have, as (component, unique-id suffix); the ones not
/// announced are cleared (0.13.0's list, including the buttons this server does not offer).
pub const CONTROL_ENTITIES: &[(&str, &str)] = &[
    ("number", "reserve_control"),
    ("button", "reserve_hold"),
    ("select", "mode_control"),
    ("switch", "grid_charging_control"),
    ("select", "grid_export_control"),
    ("button", "go_off_grid"),
    ("button", "reconnect_grid"),
];

/// The config topics of every control entity of gateway `id`.
pub fn control_topics(ha_prefix: &str, id: &str) -> Vec<String> {
    CONTROL_ENTITIES
        .iter()
        .map(|(c, s)| format!("{ha_prefix}/{c}/pypowerwall_{id}_{s}/config"))
        .collect()
}

/// 0.13.0's `_serial_slug`: upper-case alphanumerics lower-cased; anything else slugged with
/// a short hash so two serials never share an entity.
pub fn serial_slug(serial: &str) -> String {
    if !serial.is_empty()
        && serial
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return serial.to_ascii_lowercase();
    }
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, serial.as_bytes());
    let hex: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}_{hex}", slug(serial))
}

/// Lower-case, runs of non-alphanumerics to `_`, trimmed.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

struct Builder<'a> {
    ha: &'a str,
    uid_base: String,
    data: String,
    device: Value,
    avail: Value,
    origin: Value,
    out: Vec<(String, String)>,
}

/// Optional fields of one entity.
#[derive(Default)]
struct Opt<'a> {
    unit: Option<&'a str>,
    device_class: Option<&'a str>,
    state_class: Option<&'a str>,
    icon: Option<&'a str>,
    entity_category: Option<&'a str>,
    device: Option<Value>,
    /// A template that converts the published value (e.g. Wh to kWh).
    value_template: Option<&'a str>,
}

/// The lifetime counters are published in whole Wh (0.13.0's payloads) and shown in kWh.
const KWH: &str = "{{ (value | float / 1000) | round(3) }}";

const MEASUREMENT: Option<&str> = Some("measurement");

impl Builder<'_> {
    fn finish(&mut self, component: &str, uid: &str, mut m: Map) {
        m.insert("origin", self.origin.clone());
        self.out.push((
            format!("{}/{component}/{uid}/config", self.ha),
            Value::Object(m).to_py(),
        ));
    }

    fn head(&self, uid: &str, name: &str) -> Map {
        Map::new().with("name", name).with("unique_id", uid)
    }

    fn sensor(&mut self, suffix: &str, name: &str, topic: &str, o: Opt<'_>) {
        let uid = format!("{}_{suffix}", self.uid_base);
        let mut m = self
            .head(&uid, name)
            .with("state_topic", format!("{}/{topic}", self.data))
            .with("device", o.device.unwrap_or_else(|| self.device.clone()))
            .with("availability", self.avail.clone())
            .with("availability_mode", "all");
        for (k, v) in [
            ("unit_of_measurement", o.unit),
            ("device_class", o.device_class),
            ("state_class", o.state_class),
            ("icon", o.icon),
            ("entity_category", o.entity_category),
            ("value_template", o.value_template),
        ] {
            if let Some(v) = v {
                m.insert(k, v);
            }
        }
        self.finish("sensor", &uid, m);
    }

    fn binary(&mut self, suffix: &str, name: &str, topic: &str, class: Option<&str>, icon: &str) {
        let uid = format!("{}_{suffix}", self.uid_base);
        let mut m = self
            .head(&uid, name)
            .with("state_topic", format!("{}/{topic}", self.data))
            .with("payload_on", "true")
            .with("payload_off", "false")
            .with("device", self.device.clone())
            .with("availability", self.avail.clone())
            .with("availability_mode", "all");
        if let Some(c) = class {
            m.insert("device_class", c);
        }
        m.insert("icon", icon);
        self.finish("binary_sensor", &uid, m);
    }

    /// A control entity reading `state` and commanded on `control/{state}/set`; `extra` holds
    /// the component's own fields (after the command topic).
    fn control(
        &mut self,
        component: &str,
        suffix: &str,
        name: &str,
        state: &str,
        extra: Map,
        icon: &str,
    ) {
        let uid = format!("{}_{suffix}", self.uid_base);
        let mut m = self
            .head(&uid, name)
            .with("state_topic", format!("{}/{state}", self.data))
            .with(
                "command_topic",
                format!("{}/control/{state}/set", self.data),
            );
        let mut extra = extra;
        // 0.13.0 puts the unit after the availability fields.
        let unit = extra.remove("unit_of_measurement");
        for (k, v) in extra {
            m.insert(k, v);
        }
        m.insert("device", self.device.clone());
        m.insert("availability", self.avail.clone());
        m.insert("availability_mode", "all");
        if let Some(u) = unit {
            m.insert("unit_of_measurement", u);
        }
        m.insert("icon", icon);
        self.finish(component, &uid, m);
    }
}

fn availability(prefix: &str, own: &str) -> Value {
    let one = |t: String| -> Value {
        Map::new()
            .with("topic", t)
            .with("payload_available", "online")
            .with("payload_not_available", "offline")
            .into()
    };
    Value::Array(vec![
        one(format!("{own}/availability")),
        one(format!("{prefix}/availability")),
    ])
}

fn origin() -> Value {
    Map::new()
        .with("name", "pypowerwall-server (Rust)")
        .with("sw_version", env!("CARGO_PKG_VERSION"))
        .into()
}

fn power(unit: &'static str, class: &'static str, icon: &'static str) -> Opt<'static> {
    Opt {
        unit: Some(unit),
        device_class: Some(class),
        state_class: MEASUREMENT,
        icon: Some(icon),
        ..Opt::default()
    }
}

fn text(icon: &'static str) -> Opt<'static> {
    Opt {
        icon: Some(icon),
        ..Opt::default()
    }
}

/// The sensors a gateway and the site total share (0.13.0's catalogue, in its order).
fn common(b: &mut Builder<'_>, grid_voltage: bool, grid_current: bool) {
    b.sensor(
        "battery",
        "Battery",
        "battery",
        Opt {
            unit: Some("%"),
            device_class: Some("battery"),
            state_class: MEASUREMENT,
            ..Opt::default()
        },
    );
    b.sensor(
        "battery_raw",
        "Battery Raw",
        "battery_raw",
        Opt {
            unit: Some("%"),
            state_class: MEASUREMENT,
            icon: Some("mdi:battery-medium"),
            entity_category: Some("diagnostic"),
            ..Opt::default()
        },
    );
    b.sensor(
        "solar",
        "Solar Power",
        "solar",
        power("W", "power", "mdi:solar-power"),
    );
    b.sensor(
        "grid",
        "Grid Power",
        "grid",
        power("W", "power", "mdi:transmission-tower"),
    );
    if grid_voltage {
        b.sensor(
            "grid_voltage",
            "Grid Voltage",
            "grid_voltage",
            power("V", "voltage", "mdi:sine-wave"),
        );
    }
    if grid_current {
        b.sensor(
            "grid_current",
            "Grid Current",
            "grid_current",
            power("A", "current", "mdi:current-ac"),
        );
    }
    b.sensor(
        "home",
        "Home Load",
        "home",
        power("W", "power", "mdi:home-lightning-bolt"),
    );
    b.sensor(
        "powerwall",
        "Powerwall Power",
        "powerwall",
        power("W", "power", "mdi:battery-charging"),
    );
    b.sensor(
        "reserve",
        "Backup Reserve",
        "reserve",
        Opt {
            unit: Some("%"),
            state_class: MEASUREMENT,
            icon: Some("mdi:battery-lock"),
            ..Opt::default()
        },
    );
    b.sensor(
        "total_capacity",
        "Total Battery Capacity",
        "total_capacity",
        power("Wh", "energy_storage", "mdi:battery-high"),
    );
    b.sensor(
        "current_charge",
        "Current Battery Charge",
        "current_charge",
        power("Wh", "energy_storage", "mdi:battery-medium"),
    );
    for (topic, name, icon) in [
        (
            "grid_energy_imported",
            "Grid Energy Imported",
            "mdi:transmission-tower-import",
        ),
        (
            "grid_energy_exported",
            "Grid Energy Exported",
            "mdi:transmission-tower-export",
        ),
        (
            "home_energy_imported",
            "Home Energy Consumption",
            "mdi:home-lightning-bolt",
        ),
        (
            "solar_energy_exported",
            "Solar Energy Production",
            "mdi:solar-power",
        ),
        (
            "battery_energy_imported",
            "Battery Energy Charged",
            "mdi:battery-charging",
        ),
        (
            "battery_energy_exported",
            "Battery Energy Discharged",
            "mdi:battery-minus",
        ),
    ] {
        b.sensor(
            topic,
            name,
            topic,
            Opt {
                unit: Some("kWh"),
                device_class: Some("energy"),
                state_class: Some("total_increasing"),
                icon: Some(icon),
                value_template: Some(KWH),
                ..Opt::default()
            },
        );
    }
    b.sensor(
        "grid_status",
        "Grid Status",
        "grid_status",
        text("mdi:transmission-tower"),
    );
}

/// The discovery documents of one gateway, in 0.13.0's order, then this server's additions.
pub fn gateway(prefix: &str, ha: &str, d: &Device<'_>) -> Vec<(String, String)> {
    let data = format!("{prefix}/{}", d.id);
    let mut identifiers = vec![Value::from(format!("pypowerwall_{}", d.id))];
    if let Some(din) = d.din.filter(|s| !s.is_empty()) {
        identifiers.push(Value::from(din));
    }
    let version = d.version.filter(|v| !v.is_empty()).unwrap_or("unknown");
    let mut device = Map::new()
        .with("identifiers", Value::Array(identifiers))
        .with("name", d.name)
        .with("manufacturer", "Tesla")
        .with("model", if d.pw3 { "Powerwall 3" } else { "Powerwall" })
        .with("sw_version", version);
    if let Some(din) = d.din.filter(|s| !s.is_empty()) {
        device.insert("serial_number", din);
    }
    let mut b = Builder {
        ha,
        uid_base: format!("pypowerwall_{}", d.id),
        avail: availability(prefix, &data),
        data,
        device: device.into(),
        origin: origin(),
        out: Vec::new(),
    };
    common(&mut b, d.grid_voltage, d.grid_current);
    b.sensor("mode", "Operation Mode", "mode", text("mdi:cog"));
    b.sensor(
        "version",
        "Firmware Version",
        "version",
        Opt {
            icon: Some("mdi:information"),
            entity_category: Some("diagnostic"),
            ..Opt::default()
        },
    );
    b.binary(
        "online",
        "Gateway Online",
        "online",
        Some("connectivity"),
        "mdi:lan-connect",
    );
    b.binary(
        "grid_connected",
        "Grid Connected",
        "grid_connected",
        Some("connectivity"),
        "mdi:transmission-tower",
    );
    b.binary(
        "grid_charging",
        "Grid Charging",
        "grid_charging",
        None,
        "mdi:battery-charging-outline",
    );
    b.sensor(
        "grid_export",
        "Grid Export",
        "grid_export",
        text("mdi:transmission-tower-export"),
    );
    b.sensor(
        "time_remaining",
        "Time Remaining",
        "time_remaining",
        Opt {
            unit: Some("h"),
            device_class: Some("duration"),
            state_class: MEASUREMENT,
            icon: Some("mdi:timer-outline"),
            ..Opt::default()
        },
    );
    controls(&mut b, d.controls);
    strings(&mut b, &d.strings);
    meters(&mut b, &d.meters);
    for bat in &d.batteries {
        let dev = bat.serial.as_deref().map(|s| unit_device(d.id, s, version));
        let i = bat.index;
        for (metric, label, present, icon) in [
            (
                "capacity",
                "Capacity",
                bat.capacity.is_some(),
                "mdi:battery-high",
            ),
            (
                "charge",
                "Charge",
                bat.charge.is_some(),
                "mdi:battery-medium",
            ),
        ] {
            if !present {
                continue;
            }
            let name = if dev.is_some() {
                label.to_string()
            } else {
                format!("Battery {i} {label}")
            };
            b.sensor(
                &format!("battery_{i}_{metric}"),
                &name,
                &format!("batteries/{i}/{metric}"),
                Opt {
                    device: dev.clone(),
                    ..power("Wh", "energy_storage", icon)
                },
            );
        }
    }
    for (serial, signals) in &d.units {
        let dev = unit_device(d.id, serial, version);
        let slug = serial_slug(serial);
        for (m, _) in signals {
            b.sensor(
                &format!("device_{slug}_{}", m.id),
                m.label,
                &format!("devices/{serial}/{}", m.topic),
                Opt {
                    unit: Some(m.unit),
                    device_class: (m.unit == "°C").then_some("temperature"),
                    state_class: MEASUREMENT,
                    icon: Some(m.icon),
                    entity_category: Some("diagnostic"),
                    device: Some(dev.clone()),
                    value_template: None,
                },
            );
        }
    }
    b.sensor(
        "alert_count",
        "Alert Count",
        "alert_count",
        Opt {
            state_class: MEASUREMENT,
            icon: Some("mdi:alert-circle-outline"),
            entity_category: Some("diagnostic"),
            ..Opt::default()
        },
    );
    b.out
}

fn unit_device(id: &str, serial: &str, version: &str) -> Value {
    Map::new()
        .with(
            "identifiers",
            Value::Array(vec![Value::from(format!(
                "pypowerwall_{id}_{}",
                serial_slug(serial)
            ))]),
        )
        .with("name", format!("Powerwall {serial}"))
        .with("serial_number", serial)
        .with("manufacturer", "Tesla")
        .with("model", "Powerwall")
        .with("sw_version", version)
        .with("via_device", format!("pypowerwall_{id}"))
        .into()
}

fn controls(b: &mut Builder<'_>, mask: u8) {
    if mask & cfg::CONTROL_RESERVE != 0 {
        let extra = Map::new()
            .with("command_template", "{\"value\": {{ value | int }}}")
            .with("min", 0i64)
            .with("max", 100i64)
            .with("step", 1i64)
            .with("unit_of_measurement", "%");
        b.control(
            "number",
            "reserve_control",
            "Backup Reserve Control",
            "reserve",
            extra,
            "mdi:battery-lock",
        );
        // "Hold Battery": backup reserve = the current charge (0.13.0's bit-1 button).
        let uid = format!("{}_reserve_hold", b.uid_base);
        let m = b
            .head(&uid, "Hold Battery")
            .with(
                "command_topic",
                format!("{}/control/reserve_hold/set", b.data),
            )
            .with("payload_press", "{}")
            .with("device", b.device.clone())
            .with("availability", b.avail.clone())
            .with("availability_mode", "all")
            .with("icon", "mdi:battery-lock");
        b.finish("button", &uid, m);
    }
    if mask & cfg::CONTROL_MODE != 0 {
        let extra = Map::new()
            .with("command_template", "{\"value\": \"{{ value }}\"}")
            .with(
                "options",
                Value::Array(
                    crate::http::control::MODES
                        .iter()
                        .map(|m| Value::from(*m))
                        .collect(),
                ),
            );
        b.control(
            "select",
            "mode_control",
            "Operation Mode Control",
            "mode",
            extra,
            "mdi:cog",
        );
    }
    if mask & cfg::CONTROL_GRID_CHARGING != 0 {
        let extra = Map::new()
            .with("payload_on", "{\"value\": true}")
            .with("payload_off", "{\"value\": false}")
            .with("state_on", "true")
            .with("state_off", "false");
        b.control(
            "switch",
            "grid_charging_control",
            "Grid Charging Control",
            "grid_charging",
            extra,
            "mdi:battery-charging-outline",
        );
    }
    if mask & cfg::CONTROL_GRID_EXPORT != 0 {
        let extra = Map::new()
            .with("command_template", "{\"value\": \"{{ value }}\"}")
            .with(
                "options",
                Value::Array(
                    super::control::EXPORTS
                        .iter()
                        .map(|m| Value::from(*m))
                        .collect(),
                ),
            );
        b.control(
            "select",
            "grid_export_control",
            "Grid Export Control",
            "grid_export",
            extra,
            "mdi:transmission-tower-export",
        );
    }
}

fn strings(b: &mut Builder<'_>, ids: &[String]) {
    const METRICS: [(&str, &str, &str, &str, &str); 3] = [
        ("voltage", "Voltage", "V", "voltage", "mdi:lightning-bolt"),
        ("current", "Current", "A", "current", "mdi:current-ac"),
        ("power", "Power", "W", "power", "mdi:solar-power-variant"),
    ];
    let one = |b: &mut Builder<'_>, id: &str| {
        for (metric, label, unit, class, icon) in METRICS {
            b.sensor(
                &format!("string_{}_{metric}", id.to_lowercase()),
                &format!("String {id} {label}"),
                &format!("strings/{id}/{metric}"),
                Opt {
                    entity_category: Some("diagnostic"),
                    ..power(unit, class, icon)
                },
            );
        }
    };
    for id in ids {
        one(b, id);
    }
    let map: Map = ids.iter().map(|i| (i.clone(), Value::Null)).collect();
    for (a, bb, pair) in state::string_pairs(&map) {
        if ids.contains(&a) && ids.contains(&bb) {
            one(b, &pair);
        }
    }
}

fn meters(b: &mut Builder<'_>, meters: &[(String, Vec<(String, Map)>)]) {
    const METRICS: [(&str, &str, &str, &str, &str, &str); 5] = [
        (
            "voltage",
            "Voltage",
            "V",
            "voltage",
            "measurement",
            "mdi:lightning-bolt",
        ),
        (
            "current",
            "Current",
            "A",
            "current",
            "measurement",
            "mdi:current-ac",
        ),
        ("power", "Power", "W", "power", "measurement", "mdi:flash"),
        (
            "energy_imported",
            "Energy Imported",
            "Wh",
            "energy",
            "total_increasing",
            "mdi:transmission-tower-import",
        ),
        (
            "energy_exported",
            "Energy Exported",
            "Wh",
            "energy",
            "total_increasing",
            "mdi:transmission-tower-export",
        ),
    ];
    for (din, cts) in meters {
        let short = din
            .rsplit("--")
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or(din);
        let din_slug = slug(din);
        for (ct, fields) in cts {
            let mut label = format!("Remote Meter {short} CT{ct}");
            if let Some(loc) = fields.get("Location").filter(|v| v.truthy()) {
                let loc = loc
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| loc.to_py());
                label = format!("{label} ({loc})");
            }
            for (metric, mlabel, unit, class, sc, icon) in METRICS {
                b.sensor(
                    &format!("remote_meter_{din_slug}_ct{ct}_{metric}"),
                    &format!("{label} {mlabel}"),
                    &format!("meters/remote/{din}/ct{ct}/{metric}"),
                    Opt {
                        unit: Some(unit),
                        device_class: Some(class),
                        state_class: Some(sc),
                        icon: Some(icon),
                        entity_category: Some("diagnostic"),
                        device: None,
                        value_template: None,
                    },
                );
            }
        }
    }
}

/// The "All sites" device (site total under `{prefix}/aggregate`).
pub fn aggregate(prefix: &str, ha: &str) -> Vec<(String, String)> {
    let data = format!("{prefix}/aggregate");
    let mut b = Builder {
        ha,
        uid_base: "pypowerwall_aggregate".into(),
        avail: availability(prefix, &data),
        data,
        device: Map::new()
            .with(
                "identifiers",
                Value::Array(vec![Value::from("pypowerwall_aggregate")]),
            )
            .with("name", "All sites")
            .with("manufacturer", "Tesla")
            .with("model", "Powerwall (all gateways)")
            .into(),
        origin: origin(),
        out: Vec::new(),
    };
    common(&mut b, false, false);
    b.binary(
        "grid_connected",
        "Grid Connected",
        "grid_connected",
        Some("connectivity"),
        "mdi:transmission-tower",
    );
    b.sensor(
        "time_remaining",
        "Time Remaining",
        "time_remaining",
        Opt {
            unit: Some("h"),
            device_class: Some("duration"),
            state_class: MEASUREMENT,
            icon: Some("mdi:timer-outline"),
            ..Opt::default()
        },
    );
    b.out
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
