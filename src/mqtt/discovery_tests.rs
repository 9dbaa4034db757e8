//! Tests of the discovery documents (split from `discovery.rs`).

use super::*;

fn device() -> Device<'static> {
    Device {
        id: "home",
        name: "Home",
        version: Some("25.10.1"),
        din: Some("1232100-00-E--TG1"),
        pw3: true,
        strings: vec!["A".into(), "B".into()],
        meters: Vec::new(),
        units: Vec::new(),
        batteries: Vec::new(),
        grid_voltage: true,
        grid_current: false,
        controls: cfg::CONTROL_RESERVE | cfg::CONTROL_GRID_CHARGING,
    }
}

#[test]
fn energy_sensors_are_total_increasing() {
    let out = gateway("pypowerwall", "homeassistant", &device());
    let (topic, payload) = out
        .iter()
        .find(|(t, _)| t.contains("solar_energy_exported"))
        .unwrap();
    assert_eq!(
        topic,
        "homeassistant/sensor/pypowerwall_home_solar_energy_exported/config"
    );
    let v = crate::json::parse(payload).unwrap();
    assert_eq!(
        v.get("state_class").and_then(Value::as_str),
        Some("total_increasing")
    );
    assert_eq!(
        v.get("device_class").and_then(Value::as_str),
        Some("energy")
    );
    assert_eq!(
        v.get("state_topic").and_then(Value::as_str),
        Some("pypowerwall/home/solar_energy_exported")
    );
    assert_eq!(
        v.path(&["device", "sw_version"]).and_then(Value::as_str),
        Some("25.10.1")
    );
}

#[test]
fn only_masked_controls_and_reported_metrics_are_announced() {
    let out = gateway("pypowerwall", "homeassistant", &device());
    let has = |s: &str| out.iter().any(|(t, _)| t.contains(s));
    assert!(has("number/pypowerwall_home_reserve_control"));
    assert!(has("switch/pypowerwall_home_grid_charging_control"));
    assert!(!has("mode_control"));
    assert!(has("grid_voltage") && !has("grid_current"));
    assert!(has("string_ab_power"));
    let mut uids: Vec<&String> = out.iter().map(|(t, _)| t).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), out.len(), "unique ids are unique");
}

#[test]
fn serial_slugs_match_0_13_0() {
    assert_eq!(serial_slug("TG2312H0001"), "tg2312h0001");
    // sha1("TG-1.A")[:8]
    assert!(serial_slug("TG-1.A").starts_with("tg_1_a_"));
    assert_ne!(serial_slug("TG-1.A"), serial_slug("TG_1-A"));
}
