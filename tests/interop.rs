//! Interop: the reference Python library (pypowerwall 0.22.2) reads our simulator in TEDAPI and
//! in local mode and must see the same gateway our own client and server see.
//!
//! Needs the virtualenv made by `scripts/test-deps.sh` (`.ci/run` makes it). Without it the test
//! is skipped with a note, except under CI (`CI=true`), where a missing venv is a failure.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::Fixture;

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI: the pypowerwall virtualenv is missing; run scripts/test-deps.sh");
    }
    eprintln!("skipping interop test: run scripts/test-deps.sh to install pypowerwall 0.22.2");
    None
}

fn read_with_pypowerwall(python: &PathBuf, host: &str) -> Value {
    run_pypowerwall(python, &[host, GW_PWD])
}

fn run_pypowerwall(python: &PathBuf, args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/read_gateway.py");
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pypowerwall failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    json::parse(stdout.trim()).unwrap_or_else(|e| panic!("bad output {stdout}: {e}"))
}

/// What pypowerwall read equals what our server serves: DIN, SOE, aggregates (from
/// `aggregates_route`), vitals keys, strings, temperatures and firmware version.
fn assert_reads_alike(theirs: &Value, app: &pypowerwall_server::app::App, aggregates_route: &str) {
    let ours = |p: &str| json::parse(&get(app, p).body).unwrap();
    assert_eq!(theirs.get("din"), ours("/pw/din").get("din"), "DIN");
    assert_eq!(theirs.get("level"), ours("/pw/level").get("level"), "SOE");
    assert_eq!(
        theirs.get("aggregates"),
        Some(&ours(aggregates_route)),
        "aggregates"
    );
    let keys: Vec<String> = ours("/pw/vitals")
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(
        theirs.get("vitals_keys"),
        Some(&sorted(keys)),
        "vitals keys"
    );
    assert_eq!(
        theirs.get("strings"),
        ours("/json").get("strings"),
        "strings"
    );
    assert_eq!(theirs.get("temps"), Some(&ours("/pw/temps")), "temps");
    assert_eq!(
        theirs.get("version"),
        ours("/pw/version").get("version"),
        "firmware version"
    );
}

/// A sorted JSON list of strings.
fn sorted(mut items: Vec<String>) -> Value {
    items.sort();
    Value::Array(items.into_iter().map(Value::Str).collect())
}

fn check(fixture: Fixture) {
    let Some(python) = python() else { return };
    let sim = start_sim(fixture, true);
    let theirs = read_with_pypowerwall(&python, &sim.addr().to_string());

    let app = start_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    assert_reads_alike(&theirs, &app, "/api/meters/aggregates");
    let ours = |p: &str| json::parse(&get(&app, p).body).unwrap();
    assert_eq!(
        theirs.get("pw3").and_then(Value::as_bool),
        ours("/stats").get("pw3").and_then(Value::as_bool),
        "PW3 detection"
    );
    app.stop();
}

#[test]
fn pypowerwall_reads_pw2_simulator_like_we_do() {
    check(Fixture::Pw2);
}

#[test]
fn pypowerwall_reads_pw3_simulator_like_we_do() {
    check(Fixture::Pw3);
}

#[test]
fn pypowerwall_reads_pw2_simulator_in_local_mode_like_we_do() {
    let Some(python) = python() else { return };
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let host = sim.addr().to_string();
    let cache = std::env::temp_dir().join(format!("ppws-interop-{}.powerwall", std::process::id()));
    let theirs = run_pypowerwall(
        &python,
        &[&host, "-", CUSTOMER_PWD, &cache.to_string_lossy()],
    );
    let _ = std::fs::remove_file(&cache);
    assert_eq!(theirs.get("mode").and_then(Value::as_str), Some("local"));
    assert_eq!(
        theirs.get("tedapi_mode").and_then(Value::as_str),
        Some("off")
    );

    let app = start_local_server(&host, &[]);
    wait_online(&app);
    assert_reads_alike(&theirs, &app, "/pw/aggregates");
    let ours = |p: &str| json::parse(&get(&app, p).body).unwrap();
    assert_eq!(
        theirs.get("site_name"),
        ours("/pw/site_name").get("site_name")
    );
    let alerts: Vec<String> = ours("/pw/alerts")
        .get("alerts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(theirs.get("alerts"), Some(&sorted(alerts)), "alerts");
    assert_eq!(
        theirs.get("grid_status").and_then(Value::as_str),
        Some("UP")
    );
    assert_eq!(ours("/freq").get("grid_status"), Some(&Value::Int(1)));
    app.stop();
}
