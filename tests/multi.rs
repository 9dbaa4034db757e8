//! Multi-gateway: the real binary with a YAML configuration watching three gateways — two
//! simulators (PW2, PW3) and a closed port — over real sockets.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::{self, Fixture, SimOptions};

const PW2_PWD: &str = "HousePass-7731";
const PW3_PWD: &str = "CabinPass-2209";
const EMAIL: &str = "owner.secret@example.com";
const TOKEN: &str = "ctl-token-5d1e9";

struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &str, env: &[(&str, &str)]) -> Server {
    let dir = std::env::temp_dir().join(format!("ppws-multi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateways.yaml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pypowerwall-server"));
    cmd.args([
        "--config",
        path.to_str().unwrap(),
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--debug",
    ])
    .env_clear()
    .stderr(Stdio::piped())
    .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("binary starts");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on http://").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("server did not start: {}", log.lock().unwrap()));
    Server { child, addr, log }
}

fn get_json(s: &Server, path: &str) -> (u16, Value, String) {
    let got = fetch(&agent(), "GET", &format!("http://{}{}", s.addr, path), None);
    let v = json::parse(&got.body).unwrap_or(Value::Null);
    (got.status, v, got.body)
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn start_named_sim(fixture: Fixture, pwd: &str) -> sim::SimHandle {
    sim::start(SimOptions {
        gw_pwd: Some(pwd.into()),
        frozen: true,
        ..SimOptions::new(fixture)
    })
    .unwrap()
}

#[test]
fn three_gateways_yaml() {
    let house = start_named_sim(Fixture::Pw2, PW2_PWD);
    let cabin = start_named_sim(Fixture::Pw3, PW3_PWD);
    let dead = closed_port();
    let config = format!(
        "server:\n  poll_interval: 1\n  cache_ttl: 5\n  control_token: {TOKEN}\n\
         gateways:\n\
         \x20 - {{id: house, name: House, host: \"{}\", gw_pwd: \"{PW2_PWD}\", email: {EMAIL}}}\n\
         \x20 - {{id: cabin, name: Cabin, host: \"{}\", gw_pwd: \"{PW3_PWD}\"}}\n\
         \x20 - {{id: dead, name: Shed, host: \"127.0.0.1:{dead}\", gw_pwd: \"DeadPass-0000\", timeout: 1}}\n",
        house.addr(),
        cabin.addr()
    );
    let t0 = Instant::now();
    let s = spawn(&config, &[]);
    let mut bodies = Vec::new();

    // The two live gateways come online quickly although the third is dead.
    assert!(
        wait_for(Duration::from_secs(10), || {
            let (_, v, _) = get_json(&s, "/api/aggregate/status");
            v.get("online").and_then(Value::as_i64) == Some(2)
        }),
        "live gateways never came online: {}",
        s.log.lock().unwrap()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "a dead gateway delayed the others"
    );

    let (st, list, b) = get_json(&s, "/api/gateways");
    bodies.push(b);
    assert_eq!(st, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let state = |id: &str| {
        list.iter()
            .find(|g| g.get("id").and_then(Value::as_str) == Some(id))
            .and_then(|g| g.get("state"))
            .and_then(Value::as_str)
            .unwrap()
            .to_string()
    };
    assert_eq!(state("house"), "online");
    assert_eq!(state("cabin"), "online");
    assert!(["offline", "connecting"].contains(&state("dead").as_str()));
    let cabin_info = list
        .iter()
        .find(|g| g.get("id").and_then(Value::as_str) == Some("cabin"))
        .unwrap();
    assert_eq!(cabin_info.get("pw3"), Some(&Value::Bool(true)));
    assert_eq!(
        cabin_info.get("firmware").and_then(Value::as_str),
        Some("25.10.1 7d8f0a8b")
    );

    // Aggregate power: PW2 sim (-2100 / 6500 / -3500 / 900) + PW3 sim (100 / 3270 / -1320 / 2050).
    let (_, p, b) = get_json(&s, "/api/aggregate/power");
    bodies.push(b);
    assert_eq!(p.get("site"), Some(&Value::Float(-2000.0)));
    assert_eq!(p.get("solar"), Some(&Value::Float(9770.0)));
    assert_eq!(p.get("battery"), Some(&Value::Float(-4820.0)));
    assert_eq!(p.get("load"), Some(&Value::Float(2950.0)));
    assert_eq!(p.get("offline").unwrap().to_py(), r#"["dead"]"#);
    assert_eq!(
        p.get("contributors").unwrap().to_py(),
        r#"["house", "cabin"]"#
    );

    // SOE weighted by full-pack energy: (6500 + 25650) / (27000 + 40500) = 47.6296… %.
    let (_, soe, b) = get_json(&s, "/api/aggregate/soe");
    bodies.push(b);
    let raw = 32150.0 / 67500.0 * 100.0;
    assert_eq!(soe.get("percentage_raw"), Some(&Value::Float(raw)));
    assert_eq!(
        soe.get("percentage"),
        Some(&Value::Float(raw / 0.95 - 5.0 / 0.95))
    );
    assert_eq!(soe.get("remaining_wh"), Some(&Value::Float(32150.0)));
    assert_eq!(soe.get("full_wh"), Some(&Value::Float(67500.0)));

    let (_, status, b) = get_json(&s, "/api/aggregate/status");
    bodies.push(b);
    assert_eq!(
        status.get("status").and_then(Value::as_str),
        Some("degraded")
    );
    assert_eq!(status.get("offline").and_then(Value::as_i64), Some(1));

    // Per-gateway legacy shapes equal the legacy routes' bodies for that gateway.
    let golden = |dir: &str, f: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/golden/{dir}/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let (_, _, b) = get_json(&s, "/api/gateways/cabin/freq");
    assert_eq!(b, golden("pw3-tedapi", "freq.json"));
    let (_, _, b) = get_json(&s, "/api/gateways/house/pod");
    assert_eq!(b, golden("tedapi", "pod.json"));
    for view in [
        "vitals",
        "aggregates",
        "soe",
        "strings",
        "temps",
        "alerts",
        "fans",
        "freq",
        "pod",
        "battery",
        "status",
        "version",
    ] {
        for id in ["house", "cabin", "dead"] {
            let (st, _, b) = get_json(&s, &format!("/api/gateways/{id}/{view}"));
            assert_eq!(st, 200, "{id}/{view}");
            bodies.push(b);
        }
    }
    // The legacy routes serve the first gateway.
    let (_, _, b) = get_json(&s, "/aggregates");
    assert_eq!(b, golden("tedapi", "aggregates.json"));
    let (_, dead_agg, _) = get_json(&s, "/api/gateways/dead/aggregates");
    assert_eq!(dead_agg, Value::Null);

    // Details, history, unknown ids.
    let (st, one, b) = get_json(&s, "/api/gateways/dead");
    bodies.push(b);
    assert_eq!(st, 200);
    assert!(one
        .path(&["health", "last_error"])
        .and_then(Value::as_str)
        .is_some());
    assert!(
        one.path(&["health", "consecutive_failures"])
            .and_then(Value::as_i64)
            .unwrap()
            >= 1
    );
    let (st, one, _) = get_json(&s, "/api/gateways/house");
    assert_eq!(st, 200);
    assert_eq!(one.path(&["summary", "site"]), Some(&Value::Float(-2100.0)));
    let (st, h, _) = get_json(&s, "/api/gateways/house/history");
    assert_eq!(st, 200);
    assert_eq!(h.get("interval_seconds"), Some(&Value::Int(60)));
    let (st, _, _) = get_json(&s, "/api/aggregate/history");
    assert_eq!(st, 200);
    for bad in [
        "/api/gateways/nope",
        "/api/gateways/nope/vitals",
        "/api/gateways/house/nope",
    ] {
        let (st, v, _) = get_json(&s, bad);
        assert_eq!(st, 404, "{bad}");
        assert!(v.get("error").is_some(), "{bad}");
    }

    // OpenAPI from the route table, docs pages, health with per-gateway detail.
    let (st, doc, _) = get_json(&s, "/openapi.json");
    assert_eq!(st, 200);
    assert_eq!(doc.get("openapi").and_then(Value::as_str), Some("3.1.0"));
    assert!(doc.path(&["paths", "/api/aggregate/soe"]).is_some());
    assert!(doc.path(&["paths", "/ws/gateway/{id}"]).is_some());
    for p in ["/docs", "/redoc"] {
        let got = fetch(&agent(), "GET", &format!("http://{}{p}", s.addr), None);
        assert!(got.content_type.starts_with("text/html") && got.body.contains("openapi.json"));
    }
    let (st, health, b) = get_json(&s, "/health");
    bodies.push(b);
    assert_eq!(st, 200);
    assert_eq!(
        health
            .get("gateways")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(3)
    );

    // No secret anywhere: every body we fetched, plus /stats, /help and the debug log.
    for p in [
        "/stats",
        "/help",
        "/api/gateways/house",
        "/api/gateways/cabin",
        "/tedapi/config",
        "/vitals",
    ] {
        bodies.push(get_json(&s, p).2);
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = s.log.lock().unwrap().clone();
    for secret in [
        PW2_PWD,
        PW3_PWD,
        "DeadPass-0000",
        EMAIL,
        TOKEN,
        &PW2_PWD[PW2_PWD.len() - 5..],
    ] {
        assert!(!log.contains(secret), "the log contains a secret: {secret}");
        for b in &bodies {
            assert!(
                !b.contains(secret),
                "a response contains a secret: {secret}"
            );
        }
    }
    assert!(
        log.contains("gateway 'dead'"),
        "the log names the failing gateway"
    );
}

#[test]
fn bad_configs_exit_with_the_key() {
    for (config, key) in [
        (
            "gateways:\n  - {id: a, host: 10.0.0.1}\n",
            "gateway 'a' gw_pwd",
        ),
        (
            "gateways:\n  - {id: a, host: 10.0.0.1, gw_pwd: x, colour: red}\n",
            "gateway 'a' colour",
        ),
        ("server:\n  port: high\n", "server.port"),
    ] {
        let dir = std::env::temp_dir().join(format!("ppws-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.yaml");
        std::fs::write(&path, config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_pypowerwall-server"))
            .args(["--config", path.to_str().unwrap()])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{config}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{config}: {err}");
    }
    // No gateway at all: a message on how to configure one.
    let out = Command::new(env!("CARGO_BIN_EXE_pypowerwall-server"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--demo"));
}
