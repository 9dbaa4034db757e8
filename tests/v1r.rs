//! v1r (RSA-signed TEDAPI on the PW3 wired LAN) against the simulator: the client with valid,
//! expired, wrongly signed and pending-verification messages, the token re-login, and the
//! server end to end (with and without the Wi-Fi host, and starting with the LAN down).
#![cfg(feature = "v1r")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pypowerwall_server::gateway::queries::QuerySet;
use pypowerwall_server::gateway::tedapi::Error;
use pypowerwall_server::gateway::v1r::{RsaKey, V1rClient, V1rOptions};
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::{self, Fixture, SimHandle, SimOptions};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/v1r/{name}", env!("CARGO_MANIFEST_DIR"))
}

const KEY: &str = include_str!("fixtures/v1r/test_rsa_private.pem");
const WRONG_KEY: &str = include_str!("fixtures/v1r/wrong_rsa_private.pem");
const PUBLIC: &[u8] = include_bytes!("fixtures/v1r/test_rsa_public.der");

/// A frozen PW3 simulator that accepts the test key (customer password: the end of GW_PWD).
fn v1r_sim() -> SimHandle {
    sim::start(SimOptions {
        fixture: Fixture::Pw3,
        gw_pwd: Some(GW_PWD.into()),
        frozen: true,
        v1r_public_key: Some(PUBLIC.to_vec()),
        ..SimOptions::default()
    })
    .expect("simulator starts")
}

fn client(sim: &SimHandle, key: &str, password: &str) -> V1rClient {
    V1rClient::new(V1rOptions {
        host: sim.addr().to_string(),
        password: password.into(),
        key: Arc::new(RsaKey::from_pem(key).unwrap()),
        timeout: Duration::from_secs(5),
        pin: None,
        query_set: QuerySet::V2024_06,
    })
    .unwrap()
}

fn rejected(r: Result<Value, Error>) -> String {
    match r {
        Err(Error::Rejected(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn signed_messages_round_trip_and_bad_ones_are_refused() {
    let sim = v1r_sim();
    let leader = sim.din();
    let mut c = client(&sim, KEY, "FGHIJ");
    assert_eq!(c.din().unwrap(), leader);
    let config = c.config(leader).unwrap();
    assert_eq!(
        config.get("vin").and_then(Value::as_str),
        Some(leader),
        "config over v1r"
    );
    let status = c.status(leader).unwrap();
    assert!(status.path(&["control", "systemStatus"]).is_some());
    assert!(c
        .components(leader, leader, None)
        .unwrap()
        .get("components")
        .is_some());
    assert_eq!(c.firmware(leader).unwrap().version, "25.10.1 7d8f0a8b");
    let stats = sim.stats();
    assert!(stats.config >= 1 && stats.status >= 1 && stats.login >= 1);

    // A follower is not routable over v1r.
    let follower = "1707000-11-J--TG12000000002Z";
    let why = rejected(c.components(leader, follower, None));
    assert!(why.contains("TIMEOUT"), "{why}");
    // Personalised with another DIN than the leader's: the signature does not verify.
    let why = rejected(c.config(follower));
    assert!(why.contains("INVALID_SIGNATURE"), "{why}");

    // Expired: the gateway's clock is a minute ahead of the 12 s lifetime.
    sim.advance_clock(60.0);
    let why = rejected(c.config(leader));
    assert!(why.contains("TIME_EXPIRED"), "{why}");
    drop(sim);

    // A key the gateway does not know (wrongly signed for it).
    let sim = v1r_sim();
    let mut wrong = client(&sim, WRONG_KEY, "FGHIJ");
    let why = rejected(wrong.config(leader));
    assert!(
        why.contains("UNKNOWN_KEY_ID") && why.contains("pypowerwall register"),
        "{why}"
    );
    let fingerprint = RsaKey::from_pem(WRONG_KEY)
        .unwrap()
        .fingerprint()
        .to_string();
    assert!(why.contains(&fingerprint));

    // Registered but not verified yet (breaker toggle pending).
    let mut c = client(&sim, KEY, "FGHIJ");
    sim.set_v1r_pending(true);
    let why = rejected(c.config(leader));
    assert!(why.contains("PENDING_VERIFICATION"), "{why}");
    sim.set_v1r_pending(false);
    assert!(c.config(leader).is_ok());

    // An expired Bearer token: one re-login, then the DIN.
    let logins = sim.stats().login;
    sim.expire_v1r_token();
    assert_eq!(c.din().unwrap(), leader);
    assert_eq!(sim.stats().login, logins + 1);

    // A wrong customer password.
    let mut bad = client(&sim, KEY, "XXXXX");
    assert_eq!(bad.din(), Err(Error::Auth));
}

/// Every body that depends on gateway data, from a server in `env` mode against `sim`.
fn bodies(app: &pypowerwall_server::app::App) -> Vec<(String, String)> {
    [
        "/aggregates",
        "/api/meters/aggregates",
        "/soe",
        "/api/system_status/soe",
        "/api/system_status/grid_status",
        "/api/system_status",
        "/api/status",
        "/api/site_info",
        "/api/operation",
        "/strings",
        "/temps/pw",
        "/fans",
        "/pod",
        "/freq",
        "/version",
        "/pw/battery_blocks",
        "/tedapi/config",
        "/tedapi/battery",
        "/csv/v2",
    ]
    .iter()
    .map(|r| (r.to_string(), get(app, r).body))
    .collect()
}

fn vitals(app: &pypowerwall_server::app::App) -> Value {
    let mut v = json::parse(&get(app, "/vitals").body).unwrap();
    if let Some(Value::Object(h)) = v.as_object_mut().and_then(|m| m.get_mut("VITALS")) {
        h.remove("timestamp");
        h.remove("gateway");
    }
    v
}

fn stats(app: &pypowerwall_server::app::App) -> Value {
    json::parse(&get(app, "/stats").body).unwrap()
}

#[test]
fn server_over_v1r_matches_basic_auth_tedapi() {
    let sim = v1r_sim();
    let host = sim.addr().to_string();
    let key = fixture("test_rsa_private.pem");
    // Reference: Basic-auth TEDAPI against the same simulated site.
    let tedapi = start_server(&host, &[]);
    wait_online(&tedapi);
    // v1r with the Wi-Fi host (followers are only reachable over Wi-Fi).
    let v1r = start_server(
        &host,
        &[
            ("PW_RSA_KEY_PATH", key.as_str()),
            ("PW_WIFI_HOST", host.as_str()),
        ],
    );
    wait_online(&v1r);
    assert!(wait_for(Duration::from_secs(15), || get(&v1r, "/pod").body
        == get(&tedapi, "/pod").body));
    for ((route, a), (_, b)) in bodies(&tedapi).into_iter().zip(bodies(&v1r)) {
        assert_eq!(a, b, "{route}: TEDAPI vs v1r+wifi");
    }
    assert_eq!(vitals(&tedapi), vitals(&v1r));
    let s = stats(&v1r);
    assert_eq!(
        s.get("mode").and_then(Value::as_str),
        Some("Local (v1r+wifi)")
    );
    assert_eq!(s.get("tedapi_mode").and_then(Value::as_str), Some("v1r"));
    // /health lists the LAN transport (with the leader DIN) and the Wi-Fi one, as the proxy does.
    let h = json::parse(&get(&v1r, "/health").body).unwrap();
    assert_eq!(
        h.path(&["transports", "v1r_lan", "status"])
            .and_then(Value::as_str),
        Some("ok")
    );
    assert!(h
        .path(&["transports", "v1r_lan", "leader_din"])
        .and_then(Value::as_str)
        .is_some());
    assert!(h.path(&["transports", "wifi_tedapi"]).is_some());
    assert_eq!(
        s.path(&["config", "PW_RSA_KEY_PATH"])
            .and_then(Value::as_str),
        Some(key.as_str())
    );
    assert!(!get(&v1r, "/stats").body.contains("PRIVATE KEY"));

    // v1r alone: the leader's data, no follower.
    let lan_only = start_server(&host, &[("PW_RSA_KEY_PATH", key.as_str())]);
    wait_online(&lan_only);
    let s = stats(&lan_only);
    assert_eq!(s.get("mode").and_then(Value::as_str), Some("Local (v1r)"));
    assert_eq!(
        get(&lan_only, "/api/system_status/soe").body,
        get(&tedapi, "/api/system_status/soe").body
    );
    assert_eq!(
        get(&lan_only, "/tedapi/config").body,
        get(&tedapi, "/tedapi/config").body
    );
}

#[test]
fn unregistered_key_keeps_the_gateway_offline_with_a_clear_error() {
    let sim = v1r_sim();
    let host = sim.addr().to_string();
    let key = fixture("wrong_rsa_private.pem");
    let app = start_server(&host, &[("PW_RSA_KEY_PATH", key.as_str())]);
    let error = || {
        json::parse(&get(&app, "/health").body)
            .ok()
            .and_then(|h| {
                h.path(&["gateways"])
                    .and_then(|g| g.idx(0))
                    .and_then(|g| g.get("last_error"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    };
    assert!(
        wait_for(Duration::from_secs(15), || error()
            .contains("UNKNOWN_KEY_ID")),
        "last error: {}",
        error()
    );
    assert_eq!(get(&app, "/aggregates").body, "null");
}

#[test]
fn lan_down_at_start_uses_the_wifi_host() {
    let sim = v1r_sim();
    // Nothing listens on the LAN address.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lan = dead.local_addr().unwrap().to_string();
    drop(dead);
    let wifi = sim.addr().to_string();
    let key = fixture("test_rsa_private.pem");
    let app = start_server(
        &lan,
        &[
            ("PW_RSA_KEY_PATH", key.as_str()),
            ("PW_WIFI_HOST", wifi.as_str()),
        ],
    );
    wait_online(&app);
    assert!(get(&app, "/api/system_status/soe")
        .body
        .contains("percentage"));
}

#[test]
fn config_errors_name_the_key() {
    use pypowerwall_server::config::{self, CliOverrides};
    let load = |vars: &[(&str, &str)]| {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        config::load(&|k| map.get(k).cloned(), &CliOverrides::default())
    };
    let key = fixture("test_rsa_private.pem");
    let e = load(&[("PW_HOST", "10.42.1.10"), ("PW_RSA_KEY_PATH", "/nope.pem")]).unwrap_err();
    assert_eq!(e.key, "PW_RSA_KEY_PATH");
    let e = load(&[("PW_HOST", "10.42.1.10"), ("PW_RSA_KEY_PATH", &key)]).unwrap_err();
    assert_eq!(e.key, "PW_PASSWORD");
    let e = load(&[
        ("PW_HOST", "10.42.1.10"),
        ("PW_RSA_KEY_PATH", &key),
        ("PW_PASSWORD", "FGHIJ"),
        ("PW_WIFI_HOST", "bad host"),
    ])
    .unwrap_err();
    assert_eq!(e.key, "PW_WIFI_HOST");
    let c = load(&[
        ("PW_HOST", "10.42.1.10"),
        ("PW_RSA_KEY_PATH", &key),
        ("PW_GW_PWD", "ABCDEFGHIJ"),
        ("PW_WIFI_HOST", "192.168.91.1"),
    ])
    .unwrap();
    assert_eq!(c.gateways[0].mode, config::Mode::V1rWifi);
    assert_eq!(c.gateways[0].wifi_host.as_deref(), Some("192.168.91.1"));
    // A Wi-Fi host without the gateway password cannot be used: v1r alone.
    let c = load(&[
        ("PW_HOST", "10.42.1.10"),
        ("PW_RSA_KEY_PATH", &key),
        ("PW_PASSWORD", "FGHIJ"),
        ("PW_WIFI_HOST", "192.168.91.1"),
    ])
    .unwrap();
    assert_eq!(c.gateways[0].mode, config::Mode::V1r);
    // The file keys.
    let dir = std::env::temp_dir().join(format!("pws-v1r-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gw.yaml");
    std::fs::write(
        &file,
        format!(
            "gateways:\n  - {{id: lan, host: 10.42.1.10, gw_pwd: ABCDEFGHIJ, rsa_key_path: '{key}', wifi_host: 192.168.91.1}}\n  - {{id: bad, host: 10.42.1.11, password: x, rsa_key_path: /nope.pem}}\n"
        ),
    )
    .unwrap();
    let e = load(&[("PW_CONFIG", file.to_str().unwrap())]).unwrap_err();
    assert!(e.key.contains("gateway 'bad' rsa_key_path"), "{e}");
    std::fs::write(
        &file,
        format!("gateways:\n  - {{id: lan, host: 10.42.1.10, gw_pwd: ABCDEFGHIJ, rsa_key_path: '{key}', wifi_host: 192.168.91.1}}\n"),
    )
    .unwrap();
    let c = load(&[("PW_CONFIG", file.to_str().unwrap())]).unwrap();
    assert_eq!(c.gateways[0].mode, config::Mode::V1rWifi);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn signed_writes_change_the_site_and_refusals_are_reported() {
    use pypowerwall_server::gateway::v1r::ConfigChange;
    let sim = v1r_sim();
    let leader = sim.din();
    let mut c = client(&sim, KEY, "FGHIJ");
    assert_eq!(c.din().unwrap(), leader);
    c.write_config(
        leader,
        &[
            ConfigChange::Reserve(50.0),
            ConfigChange::Mode("backup".into()),
            ConfigChange::GridCharging(false),
            ConfigChange::GridExport("never".into()),
        ],
    )
    .unwrap();
    // Read back: raw scale on the gateway (app 50 → 52.5).
    let config = c.config(leader).unwrap();
    assert_eq!(
        config
            .path(&["site_info", "backup_reserve_percent"])
            .and_then(Value::as_f64),
        Some(52.5)
    );
    assert_eq!(
        config.get("default_real_mode").and_then(Value::as_str),
        Some("backup")
    );
    assert_eq!(
        config.path(&[
            "site_info",
            "disallow_charge_from_grid_with_solar_installed"
        ]),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        config
            .path(&["site_info", "customer_preferred_export_rule"])
            .and_then(Value::as_str),
        Some("never")
    );
    assert_eq!(config.get("vin").and_then(Value::as_str), Some(leader));
    // Island mode: off-grid then reconnect, visible in the status the poller reads.
    assert_eq!(c.set_island_mode(leader, true).unwrap(), Some(1));
    let grid = |c: &mut V1rClient| {
        c.status(leader)
            .unwrap()
            .path(&["control", "islanding", "gridOK"])
            .and_then(Value::as_bool)
    };
    assert_eq!(grid(&mut c), Some(false));
    assert_eq!(c.set_island_mode(leader, false).unwrap(), Some(1));
    assert_eq!(grid(&mut c), Some(true));
    // The knob: the gateway refuses, and says so.
    sim.set_v1r_refuse_writes(true);
    let e = c
        .write_config(leader, &[ConfigChange::Reserve(10.0)])
        .unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(c.set_island_mode(leader, false).is_err());
    sim.set_v1r_refuse_writes(false);
    // A wrong key never writes.
    let mut wrong = client(&sim, WRONG_KEY, "FGHIJ");
    let e = wrong
        .write_config(leader, &[ConfigChange::Reserve(10.0)])
        .unwrap_err();
    assert!(e.to_string().contains("UNKNOWN_KEY_ID"), "{e}");
    assert_eq!(
        c.config(leader)
            .unwrap()
            .path(&["site_info", "backup_reserve_percent"])
            .and_then(Value::as_f64),
        Some(52.5)
    );
}
