//! Coming from the Python pypowerwall-server: a `gateways.yaml` in its format loads unchanged
//! (`server:` host/port/cors_origins; per gateway `port`, `type: inverter`, `fleetapi`,
//! `timezone`, `email`/`authpath`, `cloud_mode`) and starts the server, and its aggregate routes
//! answer in its shapes (`../shared/peer/`), with a solar-only gateway's solar left out of the
//! site total.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{same_keys, start_sim, wait_for, GW_PWD, PEER};
use pypowerwall_server::app;
use pypowerwall_server::config::{self, CliOverrides, Mode};
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::Fixture;

/// The Python server's example file, with the hosts pointed at two simulators and a solar-only
/// gateway added the way its README shows.
fn gateways_yaml(home_port: u16, garage: &str, auth: &str) -> String {
    format!(
        "\
# PyPowerwall Server - Gateway Configuration
server:
  host: 127.0.0.1
  port: 8675
  cors_origins:
    - http://localhost:3000
    - http://localhost:8675

gateways:
  - id: home
    name: Home System
    host: 127.0.0.1
    port: {home_port}
    gw_pwd: {GW_PWD}
    timezone: America/Los_Angeles

  - id: garage
    name: Garage Solar
    host: {garage}
    gw_pwd: {GW_PWD}
    type: inverter
    timezone: America/Denver

  - id: remote-site
    name: Remote Site
    email: tesla@example.com
    authpath: {auth}
    cloud_mode: true
    timezone: America/New_York

  - id: fleet-site
    name: Fleet API Site
    email: tesla@example.com
    authpath: {auth}
    fleetapi: true
    timezone: America/Chicago
"
    )
}

fn get(app: &app::App, path: &str) -> Value {
    let g = common::get(app, path);
    assert_eq!(g.status, 200, "{path}: {}", g.body);
    json::parse(&g.body).unwrap_or_else(|_| panic!("{path}: not JSON: {}", g.body))
}

fn peer(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(PEER).join(name)).expect("peer sample");
    json::parse(&text).expect("peer sample is JSON")
}

#[test]
fn its_gateways_yaml_starts_our_server_and_its_aggregate_routes_answer() {
    let home = start_sim(Fixture::Pw2, true);
    let garage = start_sim(Fixture::Pw2, true);
    // No token files: the cloud gateways stay offline and nothing leaves the machine.
    let dir = std::env::temp_dir().join(format!("pw-migration-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateways.yaml");
    std::fs::write(
        &file,
        gateways_yaml(
            home.addr().port(),
            &garage.addr().to_string(),
            dir.to_str().unwrap(),
        ),
    )
    .unwrap();
    let path = file.to_string_lossy().into_owned();
    let env = |k: &str| (k == "PW_CONFIG").then(|| path.clone());
    let mut cfg = config::load(&env, &CliOverrides::default()).expect("its file loads");

    let g = &cfg.gateways;
    assert_eq!(g.len(), 4);
    assert_eq!(g[0].host, home.addr().to_string(), "host + port joined");
    assert_eq!(g[0].timezone.as_deref(), Some("America/Los_Angeles"));
    assert!(g[1].solar_only && !g[0].solar_only, "type: inverter");
    assert_eq!(g[2].mode, Mode::Cloud);
    assert_eq!(g[3].mode, Mode::FleetApi);
    assert!(g[3].cloud.as_ref().is_some_and(|c| c.fleet));
    assert_eq!(cfg.server.bind.to_string(), "127.0.0.1");
    assert_eq!(cfg.server.port, 8675);
    cfg.server.port = 0;
    let app = app::start(cfg).expect("the server starts from it");

    let online = |id: &str| {
        get(&app, "/api/gateways")
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| {
                g.get("id").and_then(Value::as_str) == Some(id)
                    && g.get("state").and_then(Value::as_str) == Some("online")
            })
    };
    assert!(
        wait_for(Duration::from_secs(20), || online("home")
            && online("garage")),
        "{}",
        common::get(&app, "/api/gateways").body
    );

    // Its shapes: every key of its answers, with the same JSON types.
    for (route, sample, by_id) in [
        ("/api/aggregate", "api_aggregate.json", false),
        ("/api/aggregate/power", "api_aggregate_power.json", false),
        ("/api/aggregate/soe", "api_aggregate_soe.json", false),
        (
            "/api/aggregate/battery",
            "api_aggregate_battery.json",
            false,
        ),
        ("/api/aggregate/strings", "api_aggregate_strings.json", true),
        ("/api/aggregate/alerts", "api_aggregate_alerts.json", true),
    ] {
        let mut want = peer(sample);
        if let Value::Object(m) = &mut want {
            // The vitals' values are the fixture's (their shape is the golden tests' part).
            if let Some(Value::Object(g)) = m.get_mut("gateways") {
                for (_, gw) in g.iter_mut() {
                    let Value::Object(gw) = gw else { continue };
                    if let Some(Value::Object(d)) = gw.get_mut("data") {
                        d.insert("vitals", Value::Null);
                    }
                }
            }
        }
        same_keys(&want, &get(&app, route), route, by_id);
    }
    // Vitals by gateway id: each a map of device name → object, as the proxy's /vitals.
    let vitals = get(&app, "/api/aggregate/vitals");
    for id in ["home", "garage"] {
        let devices = vitals.get(id).and_then(Value::as_object).expect(id);
        assert!(devices.len() > 3 && devices.get("VITALS").is_none());
        assert!(devices.iter().all(|(_, d)| d.as_object().is_some()));
    }
    let strings = get(&app, "/api/aggregate/strings");
    assert!(strings.get("home").is_some() && strings.get("garage").is_some());
    assert!(
        strings.get("remote-site").is_none(),
        "offline gateways are left out"
    );

    // The solar-only gateway's solar is not added to the site's (its load is).
    let solar = |id: &str| {
        get(&app, &format!("/api/gateways/{id}/aggregates"))
            .path(&["solar", "instant_power"])
            .and_then(Value::as_f64)
            .unwrap()
    };
    let load = |id: &str| {
        get(&app, &format!("/api/gateways/{id}/aggregates"))
            .path(&["load", "instant_power"])
            .and_then(Value::as_f64)
            .unwrap()
    };
    let power = get(&app, "/api/aggregate/power");
    let num = |k: &str| power.get(k).and_then(Value::as_f64).unwrap();
    assert!(solar("garage") > 0.0);
    assert_eq!(num("solar"), solar("home"), "{}", power.to_py());
    assert_eq!(num("load"), load("home") + load("garage"));
    assert_eq!(num("grid"), num("site"));
    assert_eq!(
        get(&app, "/api/aggregate").get("total_solar_power"),
        Some(&Value::Float(solar("home")))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn its_keys_are_checked_like_ours() {
    let load = |yaml: &str| {
        let dir = std::env::temp_dir().join(format!(
            "pw-migration-bad-{}-{}",
            std::process::id(),
            yaml.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gateways.yaml");
        std::fs::write(&file, yaml).unwrap();
        let path = file.to_string_lossy().into_owned();
        let env = |k: &str| (k == "PW_CONFIG").then(|| path.clone());
        let out = config::load(&env, &CliOverrides::default());
        let _ = std::fs::remove_dir_all(&dir);
        out.err().map(|e| (e.key.clone(), e.to_string()))
    };
    let bad = [
        ("host: 10.0.0.2\n    port: 70000", "port"),
        ("host: 10.0.0.2:443\n    port: 8443", "port"),
        ("host: 10.0.0.2\n    type: battery", "type"),
        ("host: 10.0.0.2\n    timezone: Mars/Olympus", "timezone"),
        ("host: 10.0.0.2\n    fleetapi: maybe", "fleetapi"),
    ];
    for (entry, key) in bad {
        let yaml = format!("gateways:\n  - id: a\n    gw_pwd: ABCDEFGHIJ\n    {entry}\n");
        let (k, msg) = load(&yaml).unwrap_or_else(|| panic!("{entry}: accepted"));
        assert!(k.ends_with(key), "{entry}: error names {k}: {msg}");
    }
    // An IPv6 host gets brackets.
    let yaml =
        "gateways:\n  - id: a\n    gw_pwd: ABCDEFGHIJ\n    host: 'fd00::2'\n    port: 8443\n";
    assert!(load(yaml).is_none());
}
