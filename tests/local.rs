//! Local mode against the simulator: login and session reuse, re-login on 401/403, the
//! negative caches (404 → 600 s, 503 → 300 s, 401 after a fresh login → 600 s), the 429 pause,
//! vitals switched off on firmware without them, token auth, the one-password `auto` choice,
//! forwarding of non-`/api` paths, and that no credential reaches an answer.

mod common;

use std::time::Duration;

use common::*;
use pypowerwall_server::config::AuthMode;
use pypowerwall_server::gateway::local::{Fetched, LocalClient, LocalOptions, VITALS};
use pypowerwall_server::gateway::tedapi::Error;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::{Fault, Fixture, SimHandle};

fn client(sim: &SimHandle, password: &str, auth_mode: AuthMode) -> LocalClient {
    LocalClient::new(LocalOptions {
        host: sim.addr().to_string(),
        password: password.into(),
        email: "email@example.com".into(),
        auth_mode,
        timeout: Duration::from_secs(2),
        pin: None,
    })
    .unwrap()
}

fn value(f: Fetched) -> Value {
    match f {
        Fetched::Value(v) => v,
        other => panic!("expected a value, got {other:?}"),
    }
}

#[test]
fn login_is_reused_and_renewed_once_on_401() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let mut c = client(&sim, CUSTOMER_PWD, AuthMode::Cookie);
    let soe = value(c.get("/api/system_status/soe").unwrap());
    assert_eq!(soe.get("percentage"), Some(&Value::Float(23.975388)));
    c.get("/api/status").unwrap();
    assert_eq!(sim.stats().login, 1, "one login for several requests");

    // The session expires: one 401, a new login, the retry succeeds.
    sim.fail_local_next(Fault::Http401, 1);
    assert!(matches!(c.get("/api/status").unwrap(), Fetched::Value(_)));
    assert_eq!(sim.stats().login, 2);

    // 403 after the fresh login too: the URI is cached as failed (600 s), not asked again.
    sim.fail_local_next(Fault::Http403, 2);
    assert_eq!(c.get("/api/sitemaster").unwrap(), Fetched::None);
    let asked = sim.stats().api;
    assert_eq!(c.get("/api/sitemaster").unwrap(), Fetched::None);
    assert_eq!(sim.stats().api, asked, "negative cache: no request");
    // Other URIs are unaffected.
    assert!(matches!(c.get("/api/status").unwrap(), Fetched::Value(_)));
}

#[test]
fn not_found_and_unavailable_are_cached_and_429_pauses_everything() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let mut c = client(&sim, CUSTOMER_PWD, AuthMode::Cookie);
    sim.fail_local_next(Fault::Http404, 1);
    assert_eq!(c.get("/api/networks").unwrap(), Fetched::None);
    sim.fail_local_next(Fault::Http503, 1);
    assert_eq!(c.get("/api/site_info").unwrap(), Fetched::None);
    let asked = sim.stats().api;
    assert_eq!(c.get("/api/networks").unwrap(), Fetched::None);
    assert_eq!(c.get("/api/site_info").unwrap(), Fetched::None);
    assert_eq!(sim.stats().api, asked);

    // A 500 is not cached: asked again next time.
    sim.fail_local_next(Fault::Http500, 1);
    assert_eq!(c.get("/api/status").unwrap(), Fetched::None);
    assert!(matches!(c.get("/api/status").unwrap(), Fetched::Value(_)));

    // 429: every request pauses, without traffic, until the pause ends.
    c.set_pause(Duration::from_millis(600));
    sim.fail_local_next(Fault::Http429, 1);
    assert_eq!(c.get("/api/status"), Err(Error::Http(429)));
    let asked = sim.stats().api;
    assert!(matches!(
        c.get("/api/meters/aggregates"),
        Err(Error::Cooldown { .. })
    ));
    assert!(c.pause_remaining().is_some());
    assert_eq!(sim.stats().api, asked);
    std::thread::sleep(Duration::from_millis(700));
    assert!(matches!(c.get("/api/status").unwrap(), Fetched::Value(_)));
}

#[test]
fn vitals_are_switched_off_on_firmware_without_them() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let mut c = client(&sim, CUSTOMER_PWD, AuthMode::Token);
    assert!(matches!(c.get(VITALS).unwrap(), Fetched::Bytes(b) if b.len() > 1000));
    sim.set_vitals(false);
    // The version is known (23.44.0): a 404 turns vitals off for good.
    c.get("/api/status").unwrap();
    assert_eq!(c.get(VITALS).unwrap(), Fetched::None);
    assert!(!c.vitals_api());
    sim.set_vitals(true);
    let asked = sim.stats().api;
    assert_eq!(c.get(VITALS).unwrap(), Fetched::None);
    assert_eq!(sim.stats().api, asked);
}

#[test]
fn wrong_customer_password_is_an_auth_error() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    for mode in [AuthMode::Cookie, AuthMode::Token] {
        let mut c = client(&sim, "not-it", mode);
        assert_eq!(c.login(), Err(Error::Auth));
        assert_eq!(c.get("/api/status"), Err(Error::Auth));
    }
}

#[test]
fn server_in_local_mode_without_vitals_uses_solar_powerwall() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    sim.set_vitals(false);
    let app = start_local_server(
        &sim.addr().to_string(),
        &[("PW_CACHE_EXPIRE", "1"), ("PW_AUTH_MODE", "token")],
    );
    wait_online(&app);
    assert_eq!(get(&app, "/vitals").body, "null");
    // Strings and alerts come from /api/solar_powerwall instead.
    let strings = json::parse(&get(&app, "/strings").body).unwrap();
    assert_eq!(
        strings.path(&["B", "Connected"]),
        Some(&Value::Bool(false)),
        "{strings:?}"
    );
    assert_eq!(strings.path(&["D", "Voltage"]), Some(&Value::Float(10.3)));
    let alerts = json::parse(&get(&app, "/alerts/pw").body).unwrap();
    let mut names: Vec<String> = alerts
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    assert_eq!(
        names,
        [
            "PVS_a018_MciStringB",
            "PVS_a059_MciOpen",
            "SystemConnectedToGrid"
        ]
    );
    assert_eq!(
        get(&app, "/version").body,
        r#"{"version": "23.44.0 9064fc6a", "vint": 234400}"#
    );
    app.stop();
}

#[test]
fn one_password_picks_tedapi_or_local_and_says_which() {
    let mode_of = |app: &pypowerwall_server::app::App| {
        let v = json::parse(&get(app, "/api/gateways").body).unwrap();
        v.idx(0)
            .and_then(|g| g.get("mode"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    // The gateway password: TEDAPI accepts it.
    let app = start_server(
        &sim.addr().to_string(),
        &[("PW_GW_PWD", ""), ("PW_PASSWORD", GW_PWD)],
    );
    wait_online(&app);
    assert_eq!(mode_of(&app).as_deref(), Some("tedapi"));
    let stats = json::parse(&get(&app, "/stats").body).unwrap();
    assert_eq!(
        stats.get("mode").and_then(Value::as_str),
        Some("Local (full)")
    );
    app.stop();

    // The customer password: TEDAPI refuses it, local mode takes it.
    let app = start_local_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    assert_eq!(mode_of(&app).as_deref(), Some("local"));
    let stats = json::parse(&get(&app, "/stats").body).unwrap();
    assert_eq!(
        stats.get("tedapi_mode").and_then(Value::as_str),
        Some("off")
    );
    assert_eq!(
        get(&app, "/tedapi/config").body,
        r#"{"error": "TEDAPI not enabled"}"#
    );
    app.stop();

    // Neither: the gateway stays offline and says why.
    let app = start_server(
        &sim.addr().to_string(),
        &[("PW_GW_PWD", ""), ("PW_PASSWORD", "wrong-password")],
    );
    assert!(wait_for(Duration::from_secs(10), || {
        let v = json::parse(&get(&app, "/api/gateways").body).unwrap();
        v.idx(0)
            .and_then(|g| g.get("state"))
            .and_then(Value::as_str)
            == Some("offline")
    }));
    assert!(!get(&app, "/stats").body.contains("wrong-password"));
    app.stop();
}

#[test]
fn knobs_move_the_local_view_and_forwarding_stops_at_api() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let app = start_local_server(&sim.addr().to_string(), &[("PW_CACHE_EXPIRE", "1")]);
    wait_online(&app);
    sim_get(&sim, "/test/battery-percentage/50");
    sim_get(&sim, "/test/solar-power/4321");
    assert!(wait_for(Duration::from_secs(5), || {
        get(&app, "/soe").body == r#"{"percentage": 52.5}"#
    }));
    let agg = json::parse(&get(&app, "/aggregates").body).unwrap();
    assert_eq!(
        agg.path(&["solar", "instant_power"]),
        Some(&Value::Int(4321))
    );

    // Non-/api paths go to the gateway with the session; /api/* never does.
    let other = sim.stats().other;
    let got = get(&app, "/battery");
    assert_eq!(
        (got.status, got.content_type.as_str()),
        (200, "application/json")
    );
    assert_eq!(got.body, "");
    assert_eq!(sim.stats().other, other + 1);
    let got = get(&app, "/api/config");
    assert_eq!(
        (got.content_type.as_str(), got.body.as_str()),
        ("text/plain", "Not Found")
    );

    // No answer carries the password or the session cookie.
    for path in [
        "/battery",
        "/stats",
        "/health",
        "/api/gateways",
        "/help",
        "/pw/status",
    ] {
        let got = get(&app, path);
        let all = format!("{:?} {}", got.headers, got.body);
        assert!(!all.contains(CUSTOMER_PWD), "{path} leaks the password");
        assert!(
            !all.contains("1234567890qwertyuiop"),
            "{path} leaks the gateway session"
        );
    }
    app.stop();
}

#[test]
fn simulator_local_knobs_over_http() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let mut c = client(&sim, CUSTOMER_PWD, AuthMode::Cookie);
    assert_eq!(sim_get(&sim, "/test/local-fault/http503/1").status, 200);
    assert_eq!(
        sim_get(&sim, "/test/local-fault").body,
        r#"{"fault":"http503","remaining":1}"#
    );
    assert_eq!(c.get("/api/meters").unwrap(), Fetched::None);
    assert_eq!(
        sim_get(&sim, "/test/local-fault").body,
        r#"{"fault":"none"}"#
    );
    assert_eq!(sim_get(&sim, "/test/vitals/off").status, 200);
    c.get("/api/status").unwrap();
    assert_eq!(c.get(VITALS).unwrap(), Fetched::None);
    assert_eq!(sim_get(&sim, "/test/local-fault/nope").status, 404);
    // The login takes the configured customer password only.
    assert_eq!(
        client(&sim, "FGHIJ", AuthMode::Token).login(),
        Err(Error::Auth)
    );
}

#[test]
fn garbage_from_the_gateway_never_breaks_the_server() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let app = start_local_server(
        &sim.addr().to_string(),
        &[("PW_CACHE_EXPIRE", "1"), ("PW_TIMEOUT", "1")],
    );
    wait_online(&app);
    let good = get(&app, "/vitals").body;
    for fault in [
        Fault::Garbage,
        Fault::Truncated,
        Fault::HalfBody,
        Fault::Close,
        Fault::BadGzip,
        Fault::Http500,
    ] {
        sim.set_local_fault(fault);
        std::thread::sleep(Duration::from_millis(1300));
        for path in [
            "/aggregates",
            "/vitals",
            "/strings",
            "/pod",
            "/freq",
            "/api/status",
        ] {
            assert_eq!(get(&app, path).status, 200, "{fault:?} {path}");
        }
    }
    sim.set_local_fault(Fault::None);
    assert!(
        wait_for(Duration::from_secs(15), || get(&app, "/vitals").body
            == good),
        "recovers"
    );
    app.stop();
}

#[test]
fn scraped_pass_through_paths_are_as_fresh_as_the_poll() {
    // Powerwall-Dashboard's telegraf.local scrapes allowlisted /api/* paths every 5 s: those
    // are read each tick, the others once a minute; the gateway's own `null` is not a timeout.
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let app = start_local_server(&sim.addr().to_string(), &[("PW_CACHE_EXPIRE", "1")]);
    wait_online(&app);
    std::thread::sleep(Duration::from_millis(1500));
    let api_requests_in = |secs: u64| {
        let before = sim.stats().api;
        std::thread::sleep(Duration::from_secs(secs));
        sim.stats().api - before
    };
    let idle = api_requests_in(4);
    assert_eq!(get(&app, "/api/meters/site").status, 200);
    let scraped = api_requests_in(4);
    assert!(
        scraped >= idle + 3,
        "gateway /api requests in 4 s: {idle} without a scrape, {scraped} with /api/meters/site asked for"
    );
    let stats = || json::parse(&get(&app, "/stats").body).unwrap();
    let timeouts = stats().get("timeout").and_then(Value::as_i64);
    for _ in 0..3 {
        get(&app, "/api/meters/solar");
    }
    assert_eq!(
        stats().get("timeout").and_then(Value::as_i64),
        timeouts,
        "/api/meters/solar answers {}",
        get(&app, "/api/meters/solar").body
    );
    app.stop();
}
