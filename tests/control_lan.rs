//! Control over the v1r LAN against the simulator (which verifies every signature and applies
//! the writes to its state): every action in both request styles writes locally
//! (`X-Control-Path: lan`) and the next poll — started at once — shows it; off-grid needs a
//! confirmation and starts the cooldown (429 + `Retry-After`); a refusing gateway is reported
//! (502 / the proxy's 400); a LAN that cannot take the write (unregistered key) falls back to the
//! cloud, and `/control/status` says which path is active.
#![cfg(all(feature = "v1r", feature = "cloud"))]

mod common;
mod fake_cloud;

use std::time::Duration;

use fake_cloud::*;
use pypowerwall_server::app::App;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::{self, Fixture, SimHandle, SimOptions};

const PUBLIC: &[u8] = include_bytes!("fixtures/v1r/test_rsa_public.der");

fn key(name: &str) -> String {
    format!("{}/tests/fixtures/v1r/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A frozen PW3 simulator that accepts the test key.
fn v1r_sim() -> SimHandle {
    sim::start(SimOptions {
        fixture: Fixture::Pw3,
        gw_pwd: Some(common::GW_PWD.into()),
        frozen: true,
        v1r_public_key: Some(PUBLIC.to_vec()),
        ..SimOptions::default()
    })
    .expect("simulator starts")
}

const CONTROL: &[(&str, &str)] = &[
    ("CONTROL_ENABLED", "true"),
    ("CONTROL_TOKEN", "tok-lan"),
    ("PW_CONTROL_SECRET", "form-secret"),
    ("PW_ISLANDING_COOLDOWN", "60"),
];

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn get_json(app: &App, path: &str) -> Value {
    let r = request(app, "GET", path, &[], None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    json::parse(&r.body).unwrap_or_else(|_| panic!("GET {path}: not JSON: {}", r.body))
}

fn status_of(app: &App) -> Value {
    get_json(app, "/control/status")
        .path(&["gateways"])
        .and_then(|g| g.idx(0))
        .cloned()
        .expect("one gateway in /control/status")
}

/// The reserve `GET /control/reserve` shows (app scale).
fn reserve(app: &App) -> f64 {
    get_json(app, "/control/reserve")
        .get("reserve")
        .and_then(Value::as_f64)
        .unwrap_or(-1.0)
}

fn online(app: &App) {
    assert!(
        wait_for(Duration::from_secs(15), || reserve(app) > 0.0),
        "the gateway never came online over v1r"
    );
}

#[test]
fn every_action_writes_on_the_lan_and_the_next_poll_shows_it() {
    let sim = v1r_sim();
    let host = sim.addr().to_string();
    let k = key("test_rsa_private.pem");
    let mut env = vec![("PW_RSA_KEY_PATH", k.as_str())];
    env.extend_from_slice(CONTROL);
    let app = common::start_server(&host, &env);
    online(&app);

    let st = status_of(&app);
    assert_eq!(st.get("lan"), Some(&Value::Bool(true)), "{st:?}");
    assert_eq!(st.get("cloud"), Some(&Value::Bool(false)));
    assert_eq!(st.get("path").and_then(Value::as_str), Some("lan"));
    let actions: Vec<&str> = st
        .get("actions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        actions,
        [
            "reserve",
            "mode",
            "grid_charging",
            "grid_export",
            "islanding"
        ]
    );

    // No token, a wrong token: nothing is written, nothing is learnt.
    let before = reserve(&app);
    assert_eq!(
        post_json(&app, "/control/reserve", None, r#"{"value": 77}"#).status,
        401
    );
    assert_eq!(
        post_json(&app, "/control/reserve", Some("nope"), r#"{"value": 77}"#).status,
        401
    );
    assert_eq!(
        post_form(&app, "/control/reserve", "value=77&token=nope").status,
        401
    );
    assert_eq!(sim.stats().write, 0, "a write without a valid token");
    assert_eq!(reserve(&app), before);

    // JSON style: reserve (the gateway stores raw scale: app 50 → 52.5).
    let r = post_json(
        &app,
        "/control/reserve",
        Some("tok-lan"),
        r#"{"value": 50}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(header(&r, "X-Control-Path"), Some("lan"));
    let v = json::parse(&r.body).unwrap();
    assert_eq!(v.get("path").and_then(Value::as_str), Some("lan"));
    assert_eq!(sim.stats().write, 1, "one signed write applied");
    assert_eq!(
        v.path(&[
            "result",
            "set_backup_reserve_percent",
            "backup_reserve_percent"
        ])
        .and_then(Value::as_f64),
        Some(52.5)
    );
    // config.json is otherwise re-read once a minute: the write makes the poller re-read it now.
    assert!(
        wait_for(Duration::from_secs(3), || (reserve(&app) - 50.0).abs()
            < 1e-6),
        "reserve after the write: {}",
        reserve(&app)
    );

    // Form style (the proxy's): mode with a level, in one config write.
    let r = post_form(
        &app,
        "/control/mode",
        "value=backup&level=30&token=form-secret",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(header(&r, "X-Control-Path"), Some("lan"));
    let v = json::parse(&r.body).unwrap();
    assert_eq!(
        v.path(&["set_operation", "real_mode"])
            .and_then(Value::as_str),
        Some("backup")
    );
    assert!(wait_for(Duration::from_secs(3), || {
        get_json(&app, "/control/mode")
            .get("mode")
            .and_then(Value::as_str)
            == Some("backup")
            && (reserve(&app) - 30.0).abs() < 1e-6
    }));

    // Grid charging (JSON, the Python server's body) and grid export (form).
    let r = post_json(
        &app,
        "/control/grid_charging",
        Some("tok-lan"),
        r#"{"grid_charging": false}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_form(
        &app,
        "/control/grid_export",
        "value=never&token=form-secret",
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"grid_export": "Set Successfully"}"#)
    );
    assert!(wait_for(Duration::from_secs(3), || {
        get_json(&app, "/control/grid_charging").get("grid_charging") == Some(&Value::Bool(false))
            && get_json(&app, "/control/grid_export")
                .get("grid_export")
                .and_then(Value::as_str)
                == Some("never")
    }));
    let id = st.get("id").and_then(Value::as_str).unwrap().to_string();
    assert_eq!(
        get_json(&app, &format!("/api/gateways/{id}/control/grid_export"))
            .get("grid_export")
            .and_then(Value::as_str),
        Some("never")
    );

    // Islanding: off-grid needs the confirmation, then opens the contactor.
    let r = post_json(
        &app,
        "/control/islanding",
        Some("tok-lan"),
        r#"{"value": "off_grid"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post_json(
        &app,
        &format!("/api/gateways/{id}/control/islanding"),
        Some("tok-lan"),
        r#"{"value": "off_grid", "confirm": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json::parse(&r.body).unwrap();
    assert_eq!(
        v.get("result").map(|r| r.to_py()),
        Some(r#"{"mode": 6, "force": true, "result": 1}"#.to_string())
    );
    // The gateway's own status, as the poller last read it.
    let grid_ok = || {
        get_json(&app, "/tedapi/status")
            .path(&["control", "islanding", "gridOK"])
            .and_then(Value::as_bool)
    };
    assert!(
        wait_for(Duration::from_secs(3), || grid_ok() == Some(false)),
        "gridOK after off-grid: {:?}",
        grid_ok()
    );
    // The cooldown started with the command: reconnecting now is refused, with Retry-After.
    let r = post_form(
        &app,
        "/control/islanding",
        "value=on_grid&token=form-secret",
    );
    assert_eq!(r.status, 429, "{}", r.body);
    let wait: u64 = header(&r, "Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");

    // A gateway that refuses: reported as such, nothing retried elsewhere.
    sim.set_v1r_refuse_writes(true);
    let r = post_json(
        &app,
        "/control/reserve",
        Some("tok-lan"),
        r#"{"value": 10}"#,
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("refused"), "{}", r.body);
    let r = post_form(&app, "/control/reserve", "value=10&token=form-secret");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("refused"), "{}", r.body);
    sim.set_v1r_refuse_writes(false);
    assert_eq!(
        status_of(&app).get("path").and_then(Value::as_str),
        Some("lan")
    );
    assert!((reserve(&app) - 30.0).abs() < 1e-6);
}

#[test]
fn a_lan_that_cannot_write_falls_back_to_the_cloud() {
    let sim = v1r_sim();
    let fake = FakeCloud::start("access-0", "refresh-0");
    let dir = temp_dir("control-lan-fallback");
    write_owner_files(&dir, &fake, "access-0", "refresh-0", now() + 3600);
    let host = sim.addr().to_string();
    // A key the gateway does not know: every LAN write is refused before it is read.
    let k = key("wrong_rsa_private.pem");
    let mut env = vec![
        ("PW_HOST", host.as_str()),
        ("PW_GW_PWD", common::GW_PWD),
        ("PW_RSA_KEY_PATH", k.as_str()),
    ];
    env.extend_from_slice(CONTROL);
    let app = start_app(&dir, &fake, &env);

    let st = status_of(&app);
    assert_eq!(st.get("lan"), Some(&Value::Bool(true)), "{st:?}");
    assert_eq!(st.get("cloud"), Some(&Value::Bool(true)));
    assert_eq!(st.get("path").and_then(Value::as_str), Some("lan"));

    let r = post_json(
        &app,
        "/control/reserve",
        Some("tok-lan"),
        r#"{"value": 40}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(header(&r, "X-Control-Path"), Some("cloud"));
    assert_eq!(fake.state().reserve, 40);
    let r = post_form(&app, "/control/mode", "value=autonomous&token=form-secret");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(header(&r, "X-Control-Path"), Some("cloud"));

    let st = status_of(&app);
    assert_eq!(st.get("path").and_then(Value::as_str), Some("cloud"));
    let why = st.get("lan_error").and_then(Value::as_str).unwrap_or("");
    assert!(why.contains("UNKNOWN_KEY_ID"), "lan_error: {why}");
    assert!(!get_json(&app, "/control/status")
        .to_py()
        .contains("PRIVATE KEY"));

    // Islanding has no cloud path here: the LAN failure is the answer.
    let r = post_json(
        &app,
        "/control/islanding",
        Some("tok-lan"),
        r#"{"value": "on_grid"}"#,
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("LAN write failed"), "{}", r.body);
    assert_eq!(sim.stats().write, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
