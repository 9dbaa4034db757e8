//! Cloud mode against a local fake Tesla cloud (HTTP/2 only): live data, token refresh and
//! write-back, a failed refresh that leaves the token file alone, FleetAPI, and HTTP/1.1 refusal.
#![cfg(feature = "cloud")]

mod fake_cloud;

use std::time::Duration;

use fake_cloud::*;
use pypowerwall_server::json::{self, Value};

fn get_json(app: &pypowerwall_server::app::App, path: &str) -> Value {
    json::parse(&request(app, "GET", path, &[], None).body).unwrap_or(Value::Null)
}

fn wait_online(app: &pypowerwall_server::app::App) {
    assert!(
        wait_for(Duration::from_secs(20), || {
            request(app, "GET", "/aggregates", &[], None).body != "null"
        }),
        "the cloud gateway never showed data: {}",
        request(app, "GET", "/api/gateways/default", &[], None).body
    );
}

#[test]
fn cloud_mode_gateway_shows_live_data() {
    let fake = FakeCloud::start("access-0", "refresh-0");
    let dir = temp_dir("live");
    write_owner_files(&dir, &fake, "access-0", "refresh-0", now() + 3600);
    // No PW_HOST and a token file: the proxy's cloud mode.
    let app = start_app(&dir, &fake, &[]);
    wait_online(&app);

    let agg = get_json(&app, "/aggregates");
    assert_eq!(
        agg.path(&["site", "instant_power"]).and_then(Value::as_i64),
        Some(-480)
    );
    assert_eq!(
        agg.path(&["solar", "instant_power"])
            .and_then(Value::as_i64),
        Some(3210)
    );
    assert_eq!(
        agg.path(&["battery", "instant_power"])
            .and_then(Value::as_i64),
        Some(-1200)
    );
    assert_eq!(
        agg.path(&["load", "instant_power"]).and_then(Value::as_i64),
        Some(1530)
    );
    assert_eq!(
        agg.path(&["battery", "num_meters_aggregated"])
            .and_then(Value::as_i64),
        Some(2)
    );
    // The cloud's app-scale charge, on the gateway scale (/soe) and back (/api/…/soe).
    let raw = get_json(&app, "/soe")
        .get("percentage")
        .and_then(Value::as_f64)
        .unwrap();
    assert!((raw - (64.5 + 5.0 / 0.95) * 0.95).abs() < 1e-9, "{raw}");
    let app_scale = get_json(&app, "/api/system_status/soe")
        .get("percentage")
        .and_then(Value::as_f64)
        .unwrap();
    assert!((app_scale - 64.5).abs() < 1e-6, "{app_scale}");
    assert_eq!(
        request(&app, "GET", "/api/system_status/grid_status", &[], None).body,
        r#"{"grid_status": "SystemGridConnected", "grid_services_active": false}"#
    );
    let vitals = get_json(&app, "/vitals");
    assert!(
        vitals.get(&format!("STSTSM--{DIN}")).is_some(),
        "{vitals:?}"
    );

    let stats = get_json(&app, "/stats");
    assert_eq!(stats.get("mode").and_then(Value::as_str), Some("Cloud"));
    assert_eq!(stats.get("cloudmode").and_then(Value::as_bool), Some(true));
    let gw = get_json(&app, "/api/gateways/default");
    assert_eq!(
        gw.get("mode").and_then(Value::as_str),
        Some("cloud"),
        "{gw:?}"
    );

    // The live status follows the cloud.
    fake.state().solar = 4444;
    assert!(wait_for(Duration::from_secs(10), || {
        get_json(&app, "/aggregates")
            .path(&["solar", "instant_power"])
            .and_then(Value::as_i64)
            == Some(4444)
    }));

    // The tokens never show up in any answer.
    for p in [
        "/stats",
        "/help",
        "/health",
        "/api/gateways",
        "/api/gateways/default",
    ] {
        let b = request(&app, "GET", p, &[], None).body;
        assert!(
            !b.contains("access-0") && !b.contains("refresh-0") && !b.contains(EMAIL),
            "{p}"
        );
    }
    // Every call the fake saw was authenticated with the stored token; nothing was written.
    let calls = fake.calls();
    assert!(calls
        .iter()
        .any(|c| c.path.contains("/live_status?counter=")));
    assert!(calls
        .iter()
        .all(|c| c.authorization.as_deref() == Some("Bearer access-0")));
    assert!(fake.writes().is_empty());
    app.stop();
}

#[test]
fn expired_access_token_is_refreshed_and_saved() {
    let fake = FakeCloud::start("unused", "refresh-0");
    let dir = temp_dir("expired");
    write_owner_files(&dir, &fake, "stale-access", "refresh-0", now() - 10);
    let app = start_app(&dir, &fake, &[]);
    wait_online(&app);

    let calls = fake.calls();
    assert_eq!(
        calls[0].path, "/oauth2/v3/token",
        "refresh comes first: {calls:?}"
    );
    assert!(calls[0].body.contains("grant_type=refresh_token"));
    assert!(calls[0].body.contains("client_id=ownerapi"));
    assert!(calls[0].body.contains("refresh_token=refresh-0"));
    assert!(calls
        .iter()
        .all(|c| c.authorization.as_deref() != Some("Bearer stale-access")));

    // The new tokens were written back, atomically, keeping the file's other fields.
    let text = std::fs::read_to_string(dir.join(".pypowerwall.auth")).unwrap();
    let doc = json::parse(&text).unwrap();
    let sso = doc.path(&[EMAIL, "sso"]).unwrap();
    assert_eq!(
        sso.get("access_token").and_then(Value::as_str),
        Some("access-1")
    );
    assert_eq!(
        sso.get("refresh_token").and_then(Value::as_str),
        Some("refresh-1")
    );
    assert_eq!(
        sso.get("id_token").and_then(Value::as_str),
        Some("id-token")
    );
    let exp = sso.get("expires_at").and_then(Value::as_i64).unwrap();
    assert!(exp > now() + 28000, "{exp}");
    assert_eq!(
        doc.path(&[EMAIL, "url"]).and_then(Value::as_str),
        Some(fake.url().as_str())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(".pypowerwall.auth"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".pypowerwall.auth", "ca.pem"],
        "no temporary file is left"
    );
    app.stop();
}

#[test]
fn refused_access_token_is_refreshed_once_and_retried() {
    let fake = FakeCloud::start("the-valid-one", "refresh-0");
    let dir = temp_dir("401");
    // Not expired by the clock, but the cloud no longer accepts it.
    write_owner_files(&dir, &fake, "revoked", "refresh-0", now() + 3600);
    let app = start_app(&dir, &fake, &[]);
    wait_online(&app);
    let calls = fake.calls();
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        &paths[..3],
        ["/api/1/products", "/oauth2/v3/token", "/api/1/products"]
    );
    assert_eq!(calls[0].authorization.as_deref(), Some("Bearer revoked"));
    assert_eq!(calls[2].authorization.as_deref(), Some("Bearer access-1"));
    app.stop();
}

#[test]
fn failed_refresh_leaves_the_token_file_intact() {
    let fake = FakeCloud::start("unused", "refresh-0");
    fake.state().refresh_fails = true;
    let dir = temp_dir("refresh-fails");
    write_owner_files(&dir, &fake, "stale-access", "refresh-0", now() - 10);
    let before = std::fs::read(dir.join(".pypowerwall.auth")).unwrap();
    let app = start_app(
        &dir,
        &fake,
        &[("CONTROL_ENABLED", "true"), ("CONTROL_TOKEN", "tok")],
    );
    assert!(wait_for(Duration::from_secs(10), || {
        fake.calls().iter().any(|c| c.path == "/oauth2/v3/token")
    }));
    // A control write needs a token too: it fails, and nothing is written to the site.
    let r = post_json(&app, "/control/reserve", Some("tok"), r#"{"reserve": 30}"#);
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("refresh failed"), "{}", r.body);
    assert!(!r.body.contains("refresh-0"));
    let r = post_form(&app, "/control/reserve", "value=30&token=tok");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(fake.writes().is_empty());
    assert!(fake.calls().iter().all(|c| c.path == "/oauth2/v3/token"));
    assert_eq!(request(&app, "GET", "/aggregates", &[], None).body, "null");
    let health = get_json(&app, "/api/gateways/default");
    assert!(
        health.to_py().contains("refresh failed"),
        "the reason is shown: {health:?}"
    );
    app.stop();
    assert_eq!(
        std::fs::read(dir.join(".pypowerwall.auth")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "no temporary file is left"
    );
}

#[test]
fn fleetapi_gateway_refreshes_and_writes() {
    let fake = FakeCloud::start("fleet-valid", "fleet-refresh");
    let dir = temp_dir("fleet");
    write_fleet_files(&dir, &fake, "fleet-expired", "fleet-refresh");
    let url = fake.url();
    let app = start_app(
        &dir,
        &fake,
        &[
            ("PW_CLOUD_AUTH_URL", url.as_str()),
            ("PW_CONTROL_SECRET", "s3cret"),
        ],
    );
    wait_online(&app);
    let stats = get_json(&app, "/stats");
    assert_eq!(stats.get("mode").and_then(Value::as_str), Some("FleetAPI"));
    assert_eq!(stats.get("fleetapi").and_then(Value::as_bool), Some(true));
    let calls = fake.calls();
    // The configured site is used without listing products; the first 401 refreshes.
    assert!(calls[0].path.ends_with("/live_status"), "{calls:?}");
    assert_eq!(calls[1].path, "/oauth2/v3/token");
    assert!(calls[1].body.contains("client_id=fake-client-id"));
    let doc =
        json::parse(&std::fs::read_to_string(dir.join(".pypowerwall.fleetapi")).unwrap()).unwrap();
    assert_eq!(
        doc.get("access_token").and_then(Value::as_str),
        Some("access-1")
    );
    assert_eq!(
        doc.get("refresh_token").and_then(Value::as_str),
        Some("refresh-1")
    );
    assert_eq!(
        doc.get("CLIENT_SECRET").and_then(Value::as_str),
        Some("fake-client-secret")
    );

    // A proxy-style write goes through FleetAPI and returns its answer as the result.
    let r = post_form(&app, "/control/reserve", "value=55&token=s3cret");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            200,
            r#"{"set_backup_reserve_percent": {"backup_reserve_percent": 55, "result": {"response": {"code": 201, "message": "Updated"}}}}"#
        )
    );
    assert_eq!(fake.state().reserve, 55);
    app.stop();
}

#[test]
fn the_fake_cloud_refuses_http1() {
    let fake = FakeCloud::start("a", "r");
    // An HTTP/1.1 client (no ALPN h2) gets no service.
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .tls_config(pypowerwall_server::wire::tls::gateway_client_config(None))
        .build();
    let r = agent.get(&format!("{}api/1/products", fake.url())).call();
    assert!(r.is_err(), "HTTP/1.1 was served");
    // The HTTP/1.1 request never reached the application.
    assert!(fake.calls().is_empty());
}
