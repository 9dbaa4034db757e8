//! The web UI in a real browser: starts the server in demo mode (plus a second simulated gateway,
//! so the gateway selector and "All sites" have something to do) behind a path prefix, then runs
//! `tests/ui/check.mjs`, which drives Debian's headless Chromium through playwright-core.
//!
//! With the `cloud` feature a third gateway, "home", is watched through a fake Tesla cloud
//! (HTTP/2, `tests/fake_cloud`) and control is on, so the check drives the control card: a reserve
//! written through the card shows after the next poll.
//!
//! Needs `/usr/bin/chromium`, `node` and `tests/ui/node_modules` (`scripts/ui-deps.sh` installs
//! them). Without them the test is skipped with a message, except under `CI=true`, where it fails.
//! A second server (no demo) has `PW_STYLE=solar` and, next to a simulated gateway, one that
//! never answers (`127.0.0.1:1`): the check sees the solar-only page and the Offline state there.
//!
//! Screenshots land in `target/ui-shots/`.

mod common;
#[cfg(feature = "cloud")]
mod fake_cloud;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pypowerwall_server::app;
use pypowerwall_server::config::{self, CliOverrides};
use pypowerwall_server::sim::Fixture;

const PREFIX: &str = "/pw/";
const BUDGET: Duration = Duration::from_secs(300);

fn missing_tools(root: &Path, chromium: &str) -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(chromium).is_file() {
        missing.push(format!("{chromium} (apt-get install chromium)"));
    }
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node_ok {
        missing.push("node".into());
    }
    if !root
        .join("tests/ui/node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push("tests/ui/node_modules (npm ci in tests/ui)".into());
    }
    missing
}

#[test]
fn web_ui_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing = missing_tools(root, &chromium);
    if !missing.is_empty() {
        let msg = format!(
            "UI test needs {}; run scripts/ui-deps.sh",
            missing.join(", ")
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED web_ui_in_headless_chromium: {msg}");
        return;
    }

    // A second gateway next to the demo one.
    let cabin = common::start_sim(Fixture::Pw3, false);
    let mut gateways = format!(
        r#"[{{"id": "cabin", "name": "Cabin", "host": "{}", "gw_pwd": "{}"}}"#,
        cabin.addr(),
        common::GW_PWD
    );
    #[cfg_attr(not(feature = "cloud"), allow(unused_mut))]
    let mut control_args: Vec<String> = Vec::new();
    #[cfg_attr(not(feature = "cloud"), allow(unused_mut))]
    let mut extra: Vec<(&str, String)> = Vec::new();
    // A cloud-mode gateway with control (the fake cloud applies writes; polls read them back).
    #[cfg(feature = "cloud")]
    let _fake = {
        let fake = fake_cloud::FakeCloud::start("access-0", "refresh-0");
        let dir = fake_cloud::temp_dir("ui-home");
        fake_cloud::write_owner_files(
            &dir,
            &fake,
            "access-0",
            "refresh-0",
            fake_cloud::now() + 3600,
        );
        gateways.push_str(&format!(
            r#", {{"id": "home", "name": "Home", "cloud_mode": true, "authpath": "{}"}}"#,
            dir.display()
        ));
        extra.push(("PW_CLOUD_OWNER_URL", fake.url()));
        extra.push(("PW_CLOUD_CA", dir.join("ca.pem").display().to_string()));
        extra.push(("PW_CONTROL_SECRET", "ui-s3cret".into()));
        control_args.extend([
            "--control".into(),
            "home".into(),
            "--control-token".into(),
            "ui-s3cret".into(),
        ]);
        fake
    };
    gateways.push(']');
    let vars: HashMap<&str, String> = [
        ("PW_GATEWAYS", gateways),
        ("PW_BIND_ADDRESS", "127.0.0.1".to_string()),
        ("PROXY_BASE_URL", PREFIX.to_string()),
        ("PW_STYLE", "grafana-dark".to_string()),
        ("PW_CACHE_EXPIRE", "2".to_string()),
    ]
    .into_iter()
    .chain(extra)
    .collect();
    let cli = CliOverrides {
        demo: true,
        ..Default::default()
    };
    let mut cfg = config::load(&|k| vars.get(k).cloned(), &cli).expect("config");
    cfg.server.port = 0;
    let app = app::start(cfg).expect("server starts");
    let default_id = "cabin"; // the first configured gateway serves the legacy routes
    let online = |path: &str| {
        let body = common::get(&app, path).body;
        !body.is_empty() && body != "null" && !body.contains("\"summary\": null")
    };
    assert!(
        common::wait_for(Duration::from_secs(20), || online("/api/meters/aggregates")
            && online("/api/gateways/demo")
            && online("/api/gateways/cabin")
            && (control_args.is_empty() || online("/api/gateways/home"))),
        "the gateways never came online"
    );

    // The solar-only server: a simulated gateway and an unreachable one.
    let sun = common::start_sim(Fixture::Pw2, false);
    let solar_vars: HashMap<&str, String> = [
        (
            "PW_GATEWAYS",
            format!(
                r#"[{{"id": "sun", "name": "Sun", "host": "{}", "gw_pwd": "{pwd}"}}, {{"id": "shed", "name": "Shed", "host": "127.0.0.1:1", "gw_pwd": "{pwd}"}}]"#,
                sun.addr(),
                pwd = common::GW_PWD
            ),
        ),
        ("PW_BIND_ADDRESS", "127.0.0.1".to_string()),
        ("PW_STYLE", "solar".to_string()),
        ("PW_CACHE_EXPIRE", "2".to_string()),
    ]
    .into_iter()
    .collect();
    let mut solar_cfg = config::load(&|k| solar_vars.get(k).cloned(), &CliOverrides::default())
        .expect("solar config");
    solar_cfg.server.port = 0;
    let solar = app::start(solar_cfg).expect("solar server starts");
    assert!(
        common::wait_for(Duration::from_secs(20), || common::get(
            &solar,
            "/api/gateways/sun"
        )
        .body
        .contains("\"state\": \"online\"")),
        "the solar server's gateway never came online"
    );

    let base = format!("http://{}/", app.addr());
    let solar_base = format!("http://{}/", solar.addr());
    let out = root.join("target/ui-shots");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(root.join("tests/ui/check.mjs"))
        .arg(&base)
        .args(["--prefix", PREFIX, "--default-gateway", default_id])
        .args(&control_args)
        .arg("--solar-base")
        .arg(&solar_base)
        .arg("--out")
        .arg(&out)
        .env("CHROMIUM", &chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .current_dir(root.join("tests/ui"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break Some(status);
        }
        if started.elapsed() > BUDGET {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    println!("{stdout}");
    if !stderr.trim().is_empty() {
        println!("--- stderr ---\n{stderr}");
    }
    app.stop();
    solar.stop();
    match status {
        None => panic!("the UI check took longer than {BUDGET:?}"),
        Some(s) => assert!(
            s.success(),
            "the UI check failed ({s}); see the output above"
        ),
    }
}
