//! Issue 13, our side of the request path: over real sockets against the real server and the
//! simulator. The local-mode forwarder decides on the normalised path and is rate-limited; a
//! reply without the required values is a failed poll; a gateway that comes back is polled at
//! once while a dead one gets one cheap request per tick; `Retry-After` is honoured (bounded);
//! secrets and the e-mail are never served; a blank control secret refuses to start;
//! `PW_WWW_DIR` serves no dotfiles and no links out of its root.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::{Fault, Fixture};

/// One raw GET with the request target exactly as given (clients would normalise it first);
/// returns status and body.
fn raw_get(addr: std::net::SocketAddr, target: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// A local-mode server that polls once and then not for a minute, so every later simulator
/// request is the forwarder's.
fn quiet_local() -> (
    pypowerwall_server::sim::SimHandle,
    pypowerwall_server::app::App,
) {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let app = start_local_server(
        &sim.addr().to_string(),
        &[("PW_CACHE_EXPIRE", "600"), ("PW_CACHE_TTL", "600")],
    );
    wait_online(&app);
    // The first tick's slow URIs are read right after the fast ones; let it finish.
    std::thread::sleep(Duration::from_millis(500));
    (sim, app)
}

#[test]
fn traversal_to_the_api_never_reaches_the_gateway() {
    let (sim, app) = quiet_local();
    let before = sim.stats().total;
    for target in [
        "/x/../api/customer",
        "/%2e%2e/api/devices/vitals",
        "/./api/customer",
        "/x/.%2e/api/customer",
        "/x/%2E%2E/api/devices/vitals",
        "/x/./../api/customer",
        "//api/customer",
        "/API/customer",
        "/%61pi/customer",
        "/api%2fcustomer",
        "/x%2f..%2fapi/customer",
        "/x\\..\\api\\customer",
        "/x/%5c../api/customer",
        "/x%00/../api/customer",
        "/x%0d%0aHost:%20evil/../api/customer",
        "/%252e%252e/api/customer",
        "/..",
        "/a/../../api/customer",
    ] {
        let (status, body) = raw_get(app.addr(), target);
        assert!(
            status == 400 || (status == 200 && body == "Not Found"),
            "{target}: {status} {body}"
        );
        assert!(
            !body.contains("customer") || body.contains("error"),
            "{target}: {body}"
        );
    }
    assert_eq!(
        sim.stats().total,
        before,
        "a refused path made a gateway request"
    );
    // A plain non-/api path is still forwarded, exactly once.
    let (status, _) = raw_get(app.addr(), "/battery");
    assert_eq!(status, 200);
    assert_eq!(sim.stats().total, before + 1);
    app.stop();
}

#[test]
fn the_forwarder_is_rate_limited_per_second() {
    let (sim, app) = quiet_local();
    let before = sim.stats().total;
    let answered = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let flood = Duration::from_millis(2500);
    let start = Instant::now();
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (answered, limited, addr) = (answered.clone(), limited.clone(), app.addr());
            std::thread::spawn(move || {
                let agent = agent();
                while start.elapsed() < flood {
                    let g = fetch(&agent, "GET", &format!("http://{addr}/battery"), None);
                    if g.status == 429 {
                        assert!(g.body.contains("Too Many Requests"), "{}", g.body);
                        limited.fetch_add(1, Ordering::Relaxed);
                    } else {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let reached = sim.stats().total - before;
    eprintln!(
        "flood: 20 connections, {secs:.1} s: {} answers ({} limited), {reached} gateway \
         requests = {:.1}/s",
        answered.load(Ordering::Relaxed) + limited.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
        reached as f64 / secs
    );
    // 10/s plus the burst of 10.
    assert!(
        reached as f64 <= 10.0 * secs + 11.0,
        "{reached} gateway requests in {secs:.1} s"
    );
    assert!(limited.load(Ordering::Relaxed) > 0);
    app.stop();
}

/// The default gateway's entry of `/stats` `gateways`.
fn gateway_state(app: &pypowerwall_server::app::App) -> Value {
    let stats = json::parse(&get(app, "/stats").body).unwrap();
    stats
        .get("gateways")
        .and_then(Value::as_array)
        .and_then(|g| g.first().cloned())
        .unwrap()
}

fn state_of(app: &pypowerwall_server::app::App) -> String {
    gateway_state(app)
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

#[test]
fn broken_json_in_valid_protobuf_is_a_failed_poll() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(
        &sim.addr().to_string(),
        &[("PW_CACHE_EXPIRE", "1"), ("PW_CACHE_TTL", "0")],
    );
    wait_online(&app);
    assert_eq!(get(&app, "/health").status, 200);
    sim.set_fault(Fault::BadJson);
    assert!(
        wait_for(Duration::from_secs(10), || get(&app, "/health").status
            == 503),
        "/health stays 200 on broken JSON"
    );
    assert_ne!(state_of(&app), "online");
    let err = gateway_state(&app)
        .get("last_error")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    assert!(err.contains("control.systemStatus"), "{err}");
    // After the TTL the failure bodies, not nulls presented as live data.
    assert_eq!(get(&app, "/aggregates").body, "null");
    sim.set_fault(Fault::None);
    assert!(wait_for(Duration::from_secs(5), || state_of(&app) == "online"));
    app.stop();
}

#[test]
fn garbage_local_answers_are_a_failed_poll() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let app = start_local_server(
        &sim.addr().to_string(),
        &[("PW_CACHE_EXPIRE", "1"), ("PW_CACHE_TTL", "0")],
    );
    wait_online(&app);
    for fault in [Fault::Garbage, Fault::BadJson, Fault::Truncated] {
        sim.set_local_fault(fault);
        assert!(
            wait_for(Duration::from_secs(10), || get(&app, "/health").status
                == 503),
            "{fault:?}: /health stays 200"
        );
        let err = gateway_state(&app)
            .get("last_error")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        assert!(err.contains("/api/meters/aggregates"), "{fault:?}: {err}");
        sim.set_local_fault(Fault::None);
        assert!(wait_for(Duration::from_secs(10), || state_of(&app) == "online"));
    }
    app.stop();
}

#[test]
fn a_gateway_that_returns_is_polled_at_once_and_a_dead_one_is_only_probed() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[("PW_CACHE_EXPIRE", "1")]);
    wait_online(&app);
    sim.set_fault(Fault::Close);
    assert!(wait_for(Duration::from_secs(5), || state_of(&app) != "online"));
    // Down long enough for the old back-off to reach 30 s (5 + 10 + …).
    let before = sim.stats().total;
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    let requests = sim.stats().total - before;
    let secs = down.elapsed().as_secs_f64();
    eprintln!("down {secs:.1} s, tick 1 s: {requests} gateway requests");
    // One per tick; a pooled keep-alive connection may be retried once by the client.
    assert!(
        requests as f64 <= secs + 2.0,
        "{requests} requests in {secs:.1} s"
    );
    sim.set_fault(Fault::None);
    let back = Instant::now();
    assert!(
        wait_for(Duration::from_secs(10), || state_of(&app) == "online"),
        "no fresh data 10 s after the gateway returned"
    );
    let recovery = back.elapsed();
    eprintln!("fresh data {recovery:?} after the gateway returned (tick 1 s)");
    assert!(recovery <= Duration::from_millis(2500), "{recovery:?}");
    app.stop();
}

#[test]
fn retry_after_is_honoured_and_bounded() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[("PW_CACHE_EXPIRE", "1")]);
    wait_online(&app);
    // A short Retry-After: back after it, not after the 300 s default cooldown.
    sim.set_retry_after(Some("2"));
    sim.fail_next(Fault::Http503, 1);
    assert!(wait_for(Duration::from_secs(5), || state_of(&app) != "online"));
    let paused = Instant::now();
    let before = sim.stats().total;
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(sim.stats().total, before, "a request during Retry-After");
    assert!(
        wait_for(Duration::from_secs(6), || state_of(&app) == "online"),
        "not back after Retry-After: 2"
    );
    assert!(paused.elapsed() < Duration::from_secs(5));
    // An absurd Retry-After is capped at 600 s.
    sim.set_retry_after(Some("99999999999999999999"));
    sim.fail_next(Fault::Http429, 1);
    assert!(wait_for(Duration::from_secs(5), || state_of(&app) != "online"));
    let next = gateway_state(&app)
        .get("next_retry")
        .and_then(Value::as_f64)
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(next - now <= 601.0 && next - now > 500.0, "{}", next - now);
    app.stop();
}

#[test]
fn secrets_and_the_email_are_never_served() {
    const EMAIL: &str = "owner.private@example.org";
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(
        &sim.addr().to_string(),
        &[
            ("PW_EMAIL", EMAIL),
            ("PW_CONTROL_SECRET", "control-secret-xyz"),
        ],
    );
    wait_online(&app);
    for path in [
        "/stats",
        "/stats/clear",
        "/help",
        "/health",
        "/api/gateways",
        "/openapi.json",
        "/",
    ] {
        let body = get(&app, path).body;
        for secret in [EMAIL, "control-secret-xyz", GW_PWD] {
            assert!(!body.contains(secret), "{path} contains {secret}");
        }
    }
    let stats = json::parse(&get(&app, "/stats").body).unwrap();
    for key in ["PW_GW_PWD", "PW_CONTROL_SECRET", "PW_EMAIL"] {
        assert_eq!(
            stats.path(&["config", key]).and_then(Value::as_str),
            Some("********"),
            "{key}"
        );
    }
    app.stop();
}

#[test]
fn a_whitespace_control_secret_refuses_to_start() {
    for value in ["   ", "\t"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pypowerwall-server"))
            .env_clear()
            .env("PW_HOST", "127.0.0.1:9")
            .env("PW_GW_PWD", "x")
            .env("PW_CONTROL_SECRET", value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("PW_CONTROL_SECRET"), "{err}");
    }
}

#[test]
fn www_dir_serves_no_dotfiles_and_no_links_out_of_the_root() {
    let base = std::env::temp_dir().join(format!("ppws-www-{}", std::process::id()));
    let root = base.join("www");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join("index.html"), "<html>ok</html>").unwrap();
    std::fs::write(root.join(".env"), "SECRET_IN_DOTFILE").unwrap();
    std::fs::write(root.join(".git/config"), "SECRET_IN_GIT").unwrap();
    std::fs::write(base.join("outside.txt"), "SECRET_OUTSIDE").unwrap();
    let _ = std::os::unix::fs::symlink(base.join("outside.txt"), root.join("link.txt"));
    let _ = std::os::unix::fs::symlink("/etc", root.join("etc"));
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(
        &sim.addr().to_string(),
        &[("PW_WWW_DIR", root.to_str().unwrap())],
    );
    assert!(get(&app, "/index.html").body.contains("ok"));
    for target in [
        "/.env",
        "/.git/config",
        "/link.txt",
        "/etc/passwd",
        "/%2e%65nv",
    ] {
        let (status, body) = raw_get(app.addr(), target);
        assert!(
            !body.contains("SECRET") && !body.contains("root:"),
            "{target}: {status} {body}"
        );
        // The proxy's fallback answer for a missing file (HTTP 200 `Not Found`).
        assert_eq!(body, "Not Found", "{target}");
    }
    app.stop();
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn ten_thousand_gateways_take_turns_on_a_few_threads() {
    // 10,000 gateways under a 600 MB address-space limit (a thread per gateway ran out of
    // it): every one is polled (port 9 refuses at once), by pooled threads taking turns.
    let dir = std::env::temp_dir().join(format!("ppws-10k-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateways.yaml");
    let mut yaml = String::from("gateways:\n");
    for i in 0..10_000 {
        yaml.push_str(&format!(
            "  - {{id: g{i}, host: \"127.0.0.1:9\", gw_pwd: x}}\n"
        ));
    }
    std::fs::write(&path, yaml).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -v 600000; exec \"$0\" --config \"$1\" --port \"$2\" --bind 127.0.0.1",
        ])
        .arg(env!("CARGO_BIN_EXE_pypowerwall-server"))
        .arg(&path)
        .arg(port.to_string())
        .env_clear()
        .stderr(log)
        .spawn()
        .unwrap();
    let agent = agent();
    let url = format!("http://127.0.0.1:{port}/api/gateways");
    let mut polled = 0;
    let ok = wait_for(Duration::from_secs(60), || {
        // Not listening yet: try again.
        let Some(body) = agent
            .get(&url)
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
        else {
            return false;
        };
        let list = json::parse(&body).unwrap();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 10_000);
        polled = list
            .iter()
            .filter(|g| g.get("state").and_then(Value::as_str) == Some("offline"))
            .count();
        polled == 10_000
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let err = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert!(
        ok,
        "{polled} of 10000 polled; {}",
        err.lines().last().unwrap_or("")
    );
    let threads: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|t| t.trim().parse().ok())
        .unwrap();
    // Not a thread per gateway: at most the pool's cap (256; on a quiet machine about 10, more
    // while the machine is busy and turns run late) and the server's own threads.
    assert!(threads <= 256 + 40, "{threads} threads");
    let _ = std::fs::remove_dir_all(&dir);
}
