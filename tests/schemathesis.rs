//! `/openapi.json` against the server itself: schemathesis (PyPI, pinned in
//! `scripts/schemathesis-deps.sh`) generates requests for every documented operation and checks
//! each answer: no 5xx, a documented status code, a documented content type, a body that matches
//! its schema. Two servers on 127.0.0.1, each in front of the simulator:
//! * the upstream simulator's data over TEDAPI, control off (the proxy's 400/403 answers);
//! * a PW3 over the v1r LAN transport with control on and schemathesis holding the token, so
//!   control POSTs really write to the simulator (and meet the islanding cooldown).
//!
//! Bounded: few examples per operation and a watchdog per run. Skipped, with a message, only
//! when schemathesis cannot be installed; under `CI=true` that fails instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pypowerwall_server::app::App;
use pypowerwall_server::sim::{self, Fixture, SimOptions};

/// Longest one schemathesis run may take.
const RUN_LIMIT: Duration = Duration::from_secs(75);
const CHECKS: &str =
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The schemathesis executable, installed when missing; `Err` says why there is none.
fn schemathesis() -> Result<PathBuf, String> {
    let bin = root().join("target/schemathesis-venv/bin/schemathesis");
    let works = |b: &Path| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(&bin) {
        return Ok(bin);
    }
    let script = root().join("scripts/schemathesis-deps.sh");
    let status = Command::new("bash").arg(&script).status();
    match status {
        Ok(s) if s.success() && works(&bin) => Ok(bin),
        Ok(s) => Err(format!("{} failed ({s})", script.display())),
        Err(e) => Err(format!("cannot run {}: {e}", script.display())),
    }
}

/// Runs schemathesis against `app`; panics with its output on any finding.
fn run(bin: &Path, app: &App, label: &str, extra: &[&str]) {
    let work = std::env::temp_dir().join(format!(
        "pypowerwall-schemathesis-{}-{label}",
        std::process::id()
    ));
    std::fs::create_dir_all(&work).unwrap();
    let url = format!("http://{}/openapi.json", app.addr());
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["run", &url, "--checks", CHECKS])
        .args([
            "--max-examples",
            "25",
            "--request-timeout",
            "10",
            "--workers",
            "2",
        ])
        .args(["--no-color", "--suppress-health-check", "all"])
        .args(extra)
        .current_dir(&work)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schemathesis starts");
    // Read the output beside the process, so a full pipe cannot stall it.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("schemathesis runs") {
            break Some(s);
        }
        if started.elapsed() > RUN_LIMIT {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    std::fs::remove_dir_all(&work).ok();
    let took = started.elapsed().as_secs_f64();
    match status {
        None => panic!("schemathesis ({label}) took over {RUN_LIMIT:?}:\n{text}"),
        Some(s) if !s.success() => panic!("schemathesis ({label}) found problems ({s}):\n{text}"),
        Some(_) => {
            let summary = text
                .lines()
                .rev()
                .find(|l| l.contains(" in "))
                .unwrap_or("");
            // The whole report (shown with --nocapture), then one line.
            eprintln!("{text}");
            eprintln!("schemathesis ({label}): {took:.1} s, {}", summary.trim());
            assert!(text.contains("Test cases:"), "no test cases ran:\n{text}");
        }
    }
}

#[test]
fn every_answer_matches_the_openapi_document() {
    let bin = match schemathesis() {
        Ok(b) => b,
        Err(why) => {
            let msg = format!("schemathesis is not available: {why}");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED every_answer_matches_the_openapi_document: {msg}");
            return;
        }
    };

    // The upstream simulator's data over TEDAPI, control off.
    let sim = common::start_sim(Fixture::Pw2, false);
    let app = common::start_server(&sim.addr().to_string(), &[]);
    common::wait_online(&app);
    run(&bin, &app, "tedapi", &[]);
    drop(app);

    // A PW3 over v1r with control on: writes go to the simulator.
    let pw3 = sim::start(SimOptions {
        fixture: Fixture::Pw3,
        gw_pwd: Some(common::GW_PWD.into()),
        v1r_public_key: Some(include_bytes!("fixtures/v1r/test_rsa_public.der").to_vec()),
        ..SimOptions::default()
    })
    .expect("simulator starts");
    let key = root().join("tests/fixtures/v1r/test_rsa_private.pem");
    let key = key.to_string_lossy();
    let app = common::start_server(
        &pw3.addr().to_string(),
        &[
            ("PW_RSA_KEY_PATH", &key),
            ("CONTROL_ENABLED", "true"),
            ("CONTROL_TOKEN", "tok-schema"),
            ("PW_CONTROL_SECRET", "tok-schema"),
            ("PW_ISLANDING_COOLDOWN", "60"),
        ],
    );
    common::wait_online(&app);
    run(
        &bin,
        &app,
        "v1r-control",
        &["-H", "Authorization: Bearer tok-schema"],
    );
}
