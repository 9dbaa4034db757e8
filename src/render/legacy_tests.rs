//! Tests of the legacy bodies: processing, CSV rounding, the offline bodies.

use super::*;
use crate::json::parse;

fn settings() -> Settings {
    Settings {
        neg_solar: true,
        site_zero_threshold: 0,
        control_enabled: false,
        pass_through: vec![("/api/status", Pass::Gateway)],
    }
}

fn facade_with_aggregates(site: i64, load: i64, solar: i64, battery: i64) -> Facade {
    let agg = parse(&format!(
        r#"{{"site": {{"instant_power": {site}}}, "battery": {{"instant_power": {battery}}}, "load": {{"instant_power": {load}}}, "solar": {{"instant_power": {solar}}}}}"#
    ))
    .unwrap();
    Facade {
        api: vec![("/api/meters/aggregates".into(), agg.into())],
        level: Some(50.0),
        ..Facade::default()
    }
}

#[test]
fn version_parsing_like_the_proxy() {
    assert_eq!(parse_version("23.44.0 9064fc6a"), Some(234400));
    assert_eq!(parse_version("21.1.1"), Some(210101));
    assert_eq!(parse_version("25.42.2"), Some(254202));
    assert_eq!(parse_version("24.12.6-PW3-AFCI 008bf6ff"), Some(241263));
    assert_eq!(parse_version(""), None);
    assert_eq!(parse_version("unknown"), None);
    assert_eq!(parse_version("1/2.3"), None);
}

#[test]
fn negative_solar_moves_to_load_when_disallowed() {
    let f = facade_with_aggregates(100, 2000, -500, 0);
    let s = Settings {
        neg_solar: false,
        ..settings()
    };
    let b = render(&f, &s, true);
    let agg = parse(b.get("/aggregates").unwrap().text()).unwrap();
    assert_eq!(agg.path(&["solar", "instant_power"]), Some(&Value::Int(0)));
    assert_eq!(
        agg.path(&["load", "instant_power"]),
        Some(&Value::Int(2500))
    );
    assert_eq!(
        b.get("/csv").unwrap().text(),
        "100.00,2500.00,0.00,0.00,50.00\n"
    );
    // allowed (default): kept
    let b = render(&f, &settings(), true);
    assert_eq!(
        b.get("/csv").unwrap().text(),
        "100.00,2000.00,-500.00,0.00,50.00\n"
    );
}

#[test]
fn csv_rounding_and_headers() {
    let agg = parse(r#"{"site": {"instant_power": 123.456}, "load": {"instant_power": 456.789}, "solar": {"instant_power": 234.567}, "battery": {"instant_power": -345.678}}"#).unwrap();
    let f = Facade {
        api: vec![("/api/meters/aggregates".into(), agg.into())],
        level: Some(67.89),
        reserve: Some(20.9),
        ..Facade::default()
    };
    let b = render(&f, &settings(), true);
    assert_eq!(
        b.get("/csv").unwrap().text(),
        "123.46,456.79,234.57,-345.68,67.89\n"
    );
    assert_eq!(
        b.get("/csv/v2_headers").unwrap().text(),
        "Grid,Home,Solar,Battery,BatteryLevel,GridStatus,Reserve\n123.46,456.79,234.57,-345.68,67.89,0,20\n"
    );
}

#[test]
fn site_zero_threshold() {
    let f = facade_with_aggregates(-30, 500, 0, 0);
    let s = Settings {
        site_zero_threshold: 50,
        ..settings()
    };
    let b = render(&f, &s, true);
    assert!(b
        .get("/aggregates")
        .unwrap()
        .text()
        .starts_with(r#"{"site": {"instant_power": 0}"#));
    assert!(b
        .get("/json")
        .unwrap()
        .text()
        .starts_with(r#"{"grid": 0, "home": 500"#));
}

#[test]
fn offline_bodies_match_the_proxy_outage() {
    let b = render(&offline_facade(false), &settings(), false);
    for (key, want) in [
        ("/aggregates", "null"),
        ("/soe", "null"),
        ("/api/system_status/soe", "null"),
        ("/vitals", "null"),
        ("/strings", "{}"),
        ("/temps", "{}"),
        ("/temps/pw", "{}"),
        ("/alerts", "[]"),
        ("/alerts/pw", "{}"),
        ("/fans", "{}"),
        ("/fans/pw", "{}"),
        ("/freq", r#"{"grid_status": null}"#),
        (
            "/pod",
            r#"{"nominal_full_pack_energy": null, "nominal_energy_remaining": null, "time_remaining_hours": null, "backup_reserve_percent": null}"#,
        ),
        (
            "/json",
            r#"{"grid": 0, "home": 0, "solar": 0, "battery": 0, "soe": 0, "grid_status": 0, "reserve": 0, "time_remaining_hours": 0, "full_pack_energy": 0, "energy_remaining": 0, "strings": {}}"#,
        ),
        ("/version", r#"{"version": "SolarOnly", "vint": 0}"#),
        ("/csv", "0.00,0.00,0.00,0.00,0.00\n"),
        ("/csv/v2", "0.00,0.00,0.00,0.00,0.00,0,0\n"),
        (
            "/pw/power",
            r#"{"site": 0.0, "solar": 0.0, "battery": 0.0, "load": 0.0}"#,
        ),
        ("/pw/level", r#"{"level": null}"#),
        ("/pw/is_connected", r#"{"is_connected": false}"#),
        ("/pw/grid_status", "{}"),
        ("/api/status", "null"),
        ("/tedapi", r#"{"error": "TEDAPI not enabled"}"#),
    ] {
        assert_eq!(b.get(key).map(Body::text), Some(want), "{key}");
    }
}
