//! Every control action in both request styles, on both route families, with the right, a
//! wrong and a missing token: the token is checked before anything else (no "Run Setup", no
//! "unknown gateway" without it), writes land in the (fake, HTTP/2-only) cloud, a second write
//! while one is in flight is 409, off-grid needs a confirmation, and `GET /control/status` says
//! what each gateway can do.
#![cfg(feature = "cloud")]

mod common;
mod fake_cloud;

use std::time::Duration;

use fake_cloud::*;
use pypowerwall_server::app::App;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::{Fixture, SimHandle};

const TOKEN_INVALID: &str = r#"{"unauthorized": "Control Command Token Invalid"}"#;

fn start(name: &str, creds: bool, vars: &[(&str, &str)]) -> (FakeCloud, SimHandle, App) {
    let fake = FakeCloud::start("access-0", "refresh-0");
    let dir = temp_dir(name);
    if creds {
        write_owner_files(&dir, &fake, "access-0", "refresh-0", now() + 3600);
    } else {
        std::fs::write(dir.join("ca.pem"), &fake.cert_pem).unwrap();
    }
    let sim = common::start_sim(Fixture::Pw2, true);
    let host = sim.addr().to_string();
    let mut all = vec![("PW_HOST", host.as_str()), ("PW_GW_PWD", common::GW_PWD)];
    all.extend_from_slice(vars);
    let app = start_app(&dir, &fake, &all);
    (fake, sim, app)
}

/// A JSON write with the Python server's header style (bearer + `application/json`).
fn json_post(app: &App, path: &str, token: Option<&str>, body: &str) -> Reply {
    post_json(app, path, token, body)
}

fn form(value: &str, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("{value}&token={t}"),
        None => value.to_string(),
    }
}

fn is_401_json(r: &Reply) -> bool {
    r.status == 401
        && r.body == r#"{"error": "missing or invalid bearer token"}"#
        && r.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("www-authenticate") && v == "Bearer")
}

#[test]
fn every_action_in_both_styles_with_every_token() {
    let (fake, _sim, app) = start(
        "actions",
        true,
        &[
            ("CONTROL_ENABLED", "true"),
            ("CONTROL_TOKEN", "tok-123"),
            ("PW_CONTROL_SECRET", "s3cret"),
            ("PW_ISLANDING_COOLDOWN", "120"),
        ],
    );
    // (action, JSON body, form fields, what the fake cloud shows after the JSON write, after
    // the form write).
    type Check = fn(&State) -> bool;
    let cases: &[(&str, &str, &str, Check, Check)] = &[
        (
            "reserve",
            r#"{"value": 33}"#,
            "value=35",
            |s| s.reserve == 33,
            |s| s.reserve == 35,
        ),
        (
            "reserve",
            r#"{"reserve": 44, "mode": "backup"}"#,
            "value=45&mode=self_consumption",
            |s| s.reserve == 44 && s.mode == "backup",
            |s| s.reserve == 45 && s.mode == "self_consumption",
        ),
        (
            "mode",
            r#"{"value": "backup", "level": 12}"#,
            "value=autonomous",
            |s| s.mode == "backup" && s.reserve == 12,
            |s| s.mode == "autonomous",
        ),
        (
            "grid_charging",
            r#"{"value": false}"#,
            "value=true",
            |s| s.disallow_grid_charging,
            |s| !s.disallow_grid_charging,
        ),
        (
            "grid_export",
            r#"{"grid_export": "never"}"#,
            "value=battery_ok",
            |s| s.export_rule == "never",
            |s| s.export_rule == "battery_ok",
        ),
    ];
    for prefix in ["/control/", "/api/gateways/default/control/"] {
        for (action, json_body, fields, after_json, after_form) in cases {
            let path = format!("{prefix}{action}");
            // Wrong and missing tokens: 401 in the style's shape, nothing reaches the cloud.
            for token in [None, Some("tok-12"), Some("S3CRET"), Some("")] {
                fake.clear_calls();
                let r = json_post(&app, &path, token, json_body);
                assert!(is_401_json(&r), "{path} {token:?}: {} {}", r.status, r.body);
                let r = post_form(&app, &path, &form(fields, token));
                assert_eq!((r.status, r.body.as_str()), (401, TOKEN_INVALID), "{path}");
                assert!(fake.writes().is_empty(), "{path} {token:?}");
            }
            // The right token (either accepted token in either style).
            let r = json_post(&app, &path, Some("tok-123"), json_body);
            assert_eq!(r.status, 200, "{path} {json_body}: {}", r.body);
            let v = json::parse(&r.body).unwrap();
            assert_eq!(v.get("ok").and_then(Value::as_bool), Some(true));
            assert_eq!(v.get("action").and_then(Value::as_str), Some(*action));
            assert_eq!(v.get("gateway").and_then(Value::as_str), Some("default"));
            assert!(after_json(&fake.state()), "{path} {json_body}");
            let r = post_form(&app, &path, &form(fields, Some("s3cret")));
            assert_eq!(r.status, 200, "{path} {fields}: {}", r.body);
            assert!(!r.body.contains("error"), "{}", r.body);
            assert!(after_form(&fake.state()), "{path} {fields}");
            let r = post_form(&app, &path, &form(fields, Some("tok-123")));
            assert_eq!(r.status, 200, "{path} {fields}: {}", r.body);
        }
        // Islanding: there is no cloud path; off-grid needs a confirmation first.
        let path = format!("{prefix}islanding");
        fake.clear_calls();
        for token in [None, Some("nope")] {
            let r = json_post(&app, &path, token, r#"{"value": "on_grid"}"#);
            assert!(is_401_json(&r), "{path}: {}", r.body);
            let r = post_form(&app, &path, &form("value=on_grid", token));
            assert_eq!((r.status, r.body.as_str()), (401, TOKEN_INVALID));
        }
        let r = json_post(&app, &path, Some("tok-123"), r#"{"value": "off_grid"}"#);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("confirm"), "{}", r.body);
        let r = post_form(&app, &path, "value=off_grid&token=s3cret");
        assert_eq!(
            (r.status, r.body.as_str()),
            (400, r#"{"error": "Going off-grid needs confirm=true"}"#)
        );
        let r = json_post(
            &app,
            &path,
            Some("tok-123"),
            r#"{"islanding": "off_grid", "confirm": true}"#,
        );
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.body.contains("v1r LAN"), "{}", r.body);
        let r = post_form(&app, &path, "value=on_grid&token=s3cret");
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("v1r LAN"), "{}", r.body);
        assert!(fake.writes().is_empty());
    }

    // Token first: unknown gateways and actions, bad bodies, big bodies say nothing without it.
    for path in [
        "/api/gateways/nope/control/reserve",
        "/control/bogus",
        "/api/gateways/default/control/bogus",
    ] {
        let r = json_post(&app, path, Some("bad"), "not json");
        assert!(is_401_json(&r), "{path}: {}", r.body);
        let r = post_form(&app, path, "value=1&token=bad");
        assert_eq!((r.status, r.body.as_str()), (401, TOKEN_INVALID), "{path}");
    }
    let big = format!(r#"{{"value": 20, "pad": "{}"}}"#, "x".repeat(5000));
    assert!(is_401_json(&json_post(
        &app,
        "/control/reserve",
        None,
        &big
    )));
    // With the token: the precise answers.
    let r = json_post(
        &app,
        "/api/gateways/nope/control/reserve",
        Some("tok-123"),
        r#"{"value": 1}"#,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = post_form(
        &app,
        "/api/gateways/nope/control/reserve",
        "value=1&token=s3cret",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = json_post(&app, "/control/bogus", Some("tok-123"), "{}");
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        json_post(&app, "/control/reserve", Some("tok-123"), &big).status,
        413
    );

    // Serialised writes: a second write while one is in flight is refused, never queued.
    fake.state().write_delay = Duration::from_millis(1500);
    let addr = app.addr();
    let first = std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(20))
            .build();
        agent
            .post(&format!("http://{addr}/control/reserve"))
            .set("Authorization", "Bearer tok-123")
            .set("Content-Type", "application/json")
            .send_string(r#"{"value": 61}"#)
            .map(|r| r.status())
            .unwrap_or(0)
    });
    std::thread::sleep(Duration::from_millis(400));
    let r = json_post(
        &app,
        "/control/mode",
        Some("tok-123"),
        r#"{"value": "backup"}"#,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let r = post_form(
        &app,
        "/api/gateways/default/control/grid_export",
        "value=never&token=s3cret",
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.starts_with(r#"{"error": "#), "{}", r.body);
    assert_eq!(first.join().unwrap(), 200);
    fake.state().write_delay = Duration::ZERO;
    assert_eq!(fake.state().reserve, 61);
    let r = json_post(
        &app,
        "/control/mode",
        Some("tok-123"),
        r#"{"value": "backup"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Status: no token needed, no secret in it.
    let r = request(&app, "GET", "/control/status", &[], None);
    assert_eq!(r.status, 200);
    let v = json::parse(&r.body).unwrap();
    assert_eq!(v.get("enabled").and_then(Value::as_bool), Some(true));
    assert_eq!(
        v.get("islanding_cooldown").and_then(Value::as_i64),
        Some(120)
    );
    let gw = &v.get("gateways").and_then(Value::as_array).unwrap()[0];
    assert_eq!(gw.get("id").and_then(Value::as_str), Some("default"));
    assert_eq!(gw.get("cloud").and_then(Value::as_bool), Some(true));
    assert_eq!(gw.get("lan").and_then(Value::as_bool), Some(false));
    assert_eq!(gw.get("path").and_then(Value::as_str), Some("cloud"));
    assert_eq!(
        gw.get("actions").unwrap().to_py(),
        r#"["reserve", "mode", "grid_charging", "grid_export"]"#
    );
    assert!(!r.body.contains("s3cret") && !r.body.contains("tok-123"));
    // Per-gateway reads of every value.
    for a in ["reserve", "mode", "grid_charging", "grid_export"] {
        let r = request(
            &app,
            "GET",
            &format!("/api/gateways/default/control/{a}"),
            &[],
            None,
        );
        assert_eq!(r.status, 200, "{a}");
        assert!(r.body.starts_with(&format!(r#"{{"{a}": "#)), "{}", r.body);
    }
    app.stop();
}

#[test]
fn without_cloud_credentials_the_token_still_comes_first() {
    let (fake, _sim, app) = start("nocreds2", false, &[("PW_CONTROL_SECRET", "s3cret")]);
    for action in [
        "reserve",
        "mode",
        "grid_charging",
        "grid_export",
        "islanding",
    ] {
        let path = format!("/control/{action}");
        let r = post_form(&app, &path, "value=20&token=wrong");
        assert_eq!((r.status, r.body.as_str()), (401, TOKEN_INVALID), "{path}");
        let r = json_post(&app, &path, Some("wrong"), r#"{"value": 20}"#);
        assert!(is_401_json(&r), "{path}: {}", r.body);
    }
    let r = post_form(&app, "/control/grid_charging", "value=true&token=s3cret");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            r#"{"error": "Control Command Error: Unable to connect to cloud mode - Run Setup"}"#
        )
    );
    let r = json_post(
        &app,
        "/control/grid_export",
        Some("s3cret"),
        r#"{"value": "never"}"#,
    );
    assert_eq!(r.status, 503, "{}", r.body);
    let r = request(&app, "GET", "/control/status", &[], None);
    let v = json::parse(&r.body).unwrap();
    let gw = &v.get("gateways").and_then(Value::as_array).unwrap()[0];
    assert_eq!(gw.get("path"), Some(&Value::Null));
    assert_eq!(gw.get("actions").unwrap().to_py(), "[]");
    assert!(fake.calls().is_empty());
    app.stop();
}
