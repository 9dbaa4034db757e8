//! Control routes: both request styles against a TEDAPI gateway (the simulator) whose writes go
//! through a fake Tesla cloud; every validation error; nothing reaches the cloud without a valid
//! token or when control is disabled.
#![cfg(feature = "cloud")]

mod common;
mod fake_cloud;

use std::time::Duration;

use fake_cloud::*;
use pypowerwall_server::app::App;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::Fixture;

const DISABLED: &str =
    r#"{"error": "Control Commands Disabled - Set PW_CONTROL_SECRET to enable"}"#;

/// The simulator as the monitored gateway, the fake cloud for control.
fn start(
    name: &str,
    vars: &[(&str, &str)],
) -> (FakeCloud, pypowerwall_server::sim::SimHandle, App) {
    let fake = FakeCloud::start("access-0", "refresh-0");
    let dir = temp_dir(name);
    write_owner_files(&dir, &fake, "access-0", "refresh-0", now() + 3600);
    let sim = common::start_sim(Fixture::Pw2, true);
    let host = sim.addr().to_string();
    let mut all = vec![("PW_HOST", host.as_str()), ("PW_GW_PWD", common::GW_PWD)];
    all.extend_from_slice(vars);
    let app = start_app(&dir, &fake, &all);
    assert!(
        wait_for(Duration::from_secs(15), || request(
            &app,
            "GET",
            "/aggregates",
            &[],
            None
        )
        .body
            != "null"),
        "no data from the simulator"
    );
    (fake, sim, app)
}

#[test]
fn disabled_control_keeps_the_proxy_answers_and_reaches_nothing() {
    let (fake, _sim, app) = start("disabled", &[]);
    for p in [
        "/control/reserve",
        "/control/mode",
        "/control/grid_charging",
        "/control/grid_export",
        "/control/max_backup",
    ] {
        let r = request(&app, "GET", p, &[], None);
        assert_eq!((r.status, r.body.as_str()), (200, DISABLED), "{p}");
    }
    // Form style: the proxy's 400 (golden POST_control.reserve.json).
    let r = post_form(&app, "/control/reserve", "value=20&token=anything");
    assert_eq!((r.status, r.body.as_str()), (400, DISABLED));
    // JSON style: 403.
    let r = post_json(
        &app,
        "/control/reserve",
        Some("anything"),
        r#"{"reserve": 20}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post_json(
        &app,
        "/api/gateways/default/control/mode",
        Some("x"),
        r#"{"mode": "backup"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // Reads of the per-gateway control values work without control (from the last poll).
    let r = request(&app, "GET", "/api/gateways/default/control/mode", &[], None);
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with(r#"{"mode": ""#), "{}", r.body);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    app.stop();
}

#[test]
fn form_style_writes_and_every_validation_error() {
    let (fake, _sim, app) = start("form", &[("PW_CONTROL_SECRET", "s3cret")]);
    let post = |path: &str, body: &str| post_form(&app, path, body);

    // Reads when enabled come from the snapshot, in the proxy's shapes.
    let r = request(&app, "GET", "/control/reserve", &[], None);
    assert!(r.body.starts_with(r#"{"reserve": "#), "{}", r.body);
    let r = request(&app, "GET", "/control/max_backup", &[], None);
    assert_eq!(
        r.body,
        r#"{"error": "max_backup requires v1r LAN transport"}"#
    );

    // Requests that must not reach the cloud.
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "/control/reserve",
            "value=20&token=wrong",
            401,
            r#"{"unauthorized": "Control Command Token Invalid"}"#,
        ),
        (
            "/control/reserve",
            "value=20",
            401,
            r#"{"unauthorized": "Control Command Token Invalid"}"#,
        ),
        (
            "/control/reserve",
            "value=20&token=",
            401,
            r#"{"unauthorized": "Control Command Token Invalid"}"#,
        ),
        (
            "/control/reserve",
            "value=20&token=s3cre",
            401,
            r#"{"unauthorized": "Control Command Token Invalid"}"#,
        ),
        (
            "/control/reserve",
            "value=abc&token=s3cret",
            400,
            r#"{"error": "Control Command Value Invalid"}"#,
        ),
        (
            "/control/reserve",
            "value=-5&token=s3cret",
            400,
            r#"{"error": "Control Command Value Invalid"}"#,
        ),
        (
            "/control/reserve",
            "value=20.5&token=s3cret",
            400,
            r#"{"error": "Control Command Value Invalid"}"#,
        ),
        (
            "/control/reserve",
            "value=150&token=s3cret",
            400,
            r#"{"error": "Failed to set reserve"}"#,
        ),
        (
            "/control/reserve",
            "value=150&mode=backup&token=s3cret",
            400,
            r#"{"error": "Failed to set reserve+mode"}"#,
        ),
        (
            "/control/reserve",
            "value=20&mode=turbo&token=s3cret",
            400,
            r#"{"error": "Control Command Mode Invalid"}"#,
        ),
        (
            "/control/mode",
            "value=Backup&token=s3cret",
            400,
            r#"{"error": "Control Command Value Invalid"}"#,
        ),
        (
            "/control/mode",
            "value=backup&level=x&token=s3cret",
            400,
            r#"{"error": "Control Command Level Invalid"}"#,
        ),
        (
            "/control/grid_charging",
            "value=maybe&token=s3cret",
            400,
            r#"{"error": "Control Command Value Invalid"}"#,
        ),
        (
            "/control/grid_export",
            "value=all&token=s3cret",
            400,
            r#"{"error": "Control Command Value Invalid"}"#,
        ),
        (
            "/control/max_backup",
            "value=3600&token=s3cret",
            400,
            r#"{"error": "max_backup requires v1r LAN transport"}"#,
        ),
        (
            "/control/nope",
            "value=1&token=s3cret",
            400,
            r#"{"error": "Invalid Command Action"}"#,
        ),
        (
            "/control",
            "value=1&token=s3cret",
            400,
            r#"{"error": "Control Command Error: Invalid Request"}"#,
        ),
        (
            "/api/login/Basic",
            "value=1&token=s3cret",
            400,
            r#"{"error": "Invalid Request"}"#,
        ),
    ];
    for (path, body, status, want) in cases {
        let r = post(path, body);
        assert_eq!(
            (r.status, r.body.as_str()),
            (*status, *want),
            "{path} {body}"
        );
    }
    let big = format!("value=20&token=s3cret&pad={}", "x".repeat(5000));
    let r = post("/control/reserve", &big);
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            r#"{"error": "Control Command Error: Invalid Request"}"#
        )
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());

    // Empty values read the current setting.
    let r = post("/control/mode", "token=s3cret");
    assert!(
        r.status == 200 && r.body.starts_with(r#"{"mode": ""#),
        "{}",
        r.body
    );

    // Writes, with pypowerwall's cloud results.
    let r = post("/control/reserve", "value=35&token=s3cret");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, format!(r#"{{"set_backup_reserve_percent": {{"backup_reserve_percent": 35, "din": "{DIN}", "result": "Updated"}}}}"#).as_str())
    );
    assert_eq!(fake.state().reserve, 35);
    let r = post("/control/mode", "value=backup&token=s3cret");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, format!(r#"{{"set_operation": {{"real_mode": "backup", "din": "{DIN}", "result": "Updated"}}}}"#).as_str())
    );
    assert_eq!(fake.state().mode, "backup");
    let r = post("/control/reserve", "value=0&mode=autonomous&token=s3cret");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(r#""backup_reserve_percent": 0"#)
            && r.body.contains(r#""real_mode": "autonomous""#)
    );
    let r = post(
        "/control/mode",
        "value=self_consumption&level=80&token=s3cret",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (reserve, mode) = {
        let st = fake.state();
        (st.reserve, st.mode.clone())
    };
    assert_eq!((reserve, mode.as_str()), (80, "self_consumption"));
    let r = post("/control/grid_export", "value=NEVER&token=s3cret");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"grid_export": "Set Successfully"}"#)
    );
    let r = post("/control/grid_charging", "value=False&token=s3cret");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"grid_charging": "Set Successfully"}"#)
    );

    let writes: Vec<(String, String)> = fake
        .writes()
        .into_iter()
        .map(|c| (c.path.rsplit('/').next().unwrap().to_string(), c.body))
        .collect();
    let want: Vec<(String, String)> = [
        ("backup", r#"{"backup_reserve_percent": 35}"#),
        ("operation", r#"{"default_real_mode": "backup"}"#),
        ("backup", r#"{"backup_reserve_percent": 0}"#),
        ("operation", r#"{"default_real_mode": "autonomous"}"#),
        ("backup", r#"{"backup_reserve_percent": 80}"#),
        ("operation", r#"{"default_real_mode": "self_consumption"}"#),
        (
            "grid_import_export",
            r#"{"customer_preferred_export_rule": "never"}"#,
        ),
        (
            "grid_import_export",
            r#"{"disallow_charge_from_grid_with_solar_installed": true}"#,
        ),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(writes, want);
    assert!(fake
        .calls()
        .iter()
        .all(|c| c.authorization.as_deref() == Some("Bearer access-0")));

    // A write the cloud refuses is a 400 with the reason, as the proxy passes it on.
    fake.state().write_error = Some(500);
    let r = post("/control/reserve", "value=10&token=s3cret");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.starts_with(r#"{"error": "#), "{}", r.body);

    // Counters: successes are posts, 400s are errors (the proxy's rule).
    let stats = json::parse(&request(&app, "GET", "/stats", &[], None).body).unwrap();
    assert!(stats.get("posts").and_then(Value::as_i64).unwrap() >= 7);
    assert!(!stats.to_py().contains("s3cret"));
    app.stop();
}

#[test]
fn json_style_writes_and_every_validation_error() {
    let (fake, _sim, app) = start(
        "json",
        &[("CONTROL_ENABLED", "true"), ("CONTROL_TOKEN", "tok-123")],
    );
    let post = |path: &str, token: Option<&str>, body: &str| post_json(&app, path, token, body);
    let cases: &[(&str, Option<&str>, &str, u16)] = &[
        ("/control/reserve", None, r#"{"reserve": 20}"#, 401),
        (
            "/control/reserve",
            Some("tok-12"),
            r#"{"reserve": 20}"#,
            401,
        ),
        (
            "/control/reserve",
            Some("TOK-123"),
            r#"{"reserve": 20}"#,
            401,
        ),
        (
            "/control/reserve",
            Some("tok-123"),
            r#"{"reserve": 101}"#,
            400,
        ),
        (
            "/control/reserve",
            Some("tok-123"),
            r#"{"reserve": -1}"#,
            400,
        ),
        (
            "/control/reserve",
            Some("tok-123"),
            r#"{"reserve": "20"}"#,
            400,
        ),
        (
            "/control/reserve",
            Some("tok-123"),
            r#"{"reserve": 20.5}"#,
            400,
        ),
        ("/control/reserve", Some("tok-123"), r#"{}"#, 400),
        ("/control/reserve", Some("tok-123"), r#"not json"#, 400),
        (
            "/control/reserve",
            Some("tok-123"),
            r#"{"reserve": 20, "mode": "eco"}"#,
            400,
        ),
        (
            "/control/mode",
            Some("tok-123"),
            r#"{"mode": "Backup"}"#,
            400,
        ),
        ("/control/mode", Some("tok-123"), r#"{"reserve": 20}"#, 400),
        ("/control/mode", Some("tok-123"), r#"["backup"]"#, 400),
        ("/control/max_backup", Some("tok-123"), r#"{}"#, 404),
        (
            "/api/gateways/nope/control/mode",
            Some("tok-123"),
            r#"{"mode": "backup"}"#,
            404,
        ),
    ];
    for (path, token, body, status) in cases {
        let r = post(path, *token, body);
        assert_eq!(r.status, *status, "{path} {token:?} {body}: {}", r.body);
        assert!(r.body.starts_with(r#"{"error": "#), "{}", r.body);
        if *status == 401 {
            assert!(r
                .headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("www-authenticate") && v == "Bearer"));
        }
    }
    let big = format!(r#"{{"reserve": 20, "pad": "{}"}}"#, "x".repeat(5000));
    assert_eq!(post("/control/reserve", Some("tok-123"), &big).status, 413);
    // A bad token is refused before the body is even looked at.
    assert_eq!(post("/control/reserve", Some("bad"), "garbage").status, 401);
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());

    let r = post("/control/reserve", Some("tok-123"), r#"{"reserve": 42}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json::parse(&r.body).unwrap();
    assert_eq!(v.get("ok").and_then(Value::as_bool), Some(true));
    assert_eq!(v.get("gateway").and_then(Value::as_str), Some("default"));
    assert_eq!(v.get("reserve").and_then(Value::as_i64), Some(42));
    assert_eq!(fake.state().reserve, 42);
    let r = post("/control/mode", Some("tok-123"), r#"{"mode": "backup"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(fake.state().mode, "backup");
    let r = post(
        "/api/gateways/default/control/mode",
        Some("tok-123"),
        r#"{"mode": "autonomous", "reserve": 15}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (reserve, mode) = {
        let st = fake.state();
        (st.reserve, st.mode.clone())
    };
    assert_eq!((reserve, mode.as_str()), (15, "autonomous"));
    // The form style works with CONTROL_TOKEN too.
    let r = post_form(&app, "/control/reserve", "value=25&token=tok-123");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(fake.writes().len(), 5);

    // The cloud failing is a 502 with a reason and no token in it.
    fake.state().write_error = Some(503);
    let r = post("/control/reserve", Some("tok-123"), r#"{"reserve": 30}"#);
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(!r.body.contains("access-0") && !r.body.contains("tok-123"));
    app.stop();
}

#[test]
fn control_without_cloud_credentials() {
    let sim = common::start_sim(Fixture::Pw2, true);
    let fake = FakeCloud::start("a", "r");
    let dir = temp_dir("nocreds");
    std::fs::write(dir.join("ca.pem"), &fake.cert_pem).unwrap();
    let host = sim.addr().to_string();
    let app = start_app(
        &dir,
        &fake,
        &[
            ("PW_HOST", host.as_str()),
            ("PW_GW_PWD", common::GW_PWD),
            ("PW_CONTROL_SECRET", "s3cret"),
        ],
    );
    let r = post_form(&app, "/control/reserve", "value=20&token=s3cret");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            r#"{"error": "Control Command Error: Unable to connect to cloud mode - Run Setup"}"#
        )
    );
    let r = post_json(
        &app,
        "/control/reserve",
        Some("s3cret"),
        r#"{"reserve": 20}"#,
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(fake.calls().is_empty());
    app.stop();
}
