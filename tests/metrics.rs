//! `/metrics` over real sockets against the simulator: `promtool check metrics` accepts the body
//! for TEDAPI PW2, PW3 (leader and followers), local mode and an outage; the values equal those
//! of `/aggregates`, `/soe` and `/api/aggregate/*`; and a real `prometheus` on 127.0.0.1 scrapes
//! it and answers a query for the series.
//!
//! promtool and prometheus come from Debian's `prometheus` package (`scripts/test-deps.sh`).
//! Without them the tests skip with a loud message — except in CI (`CI=true`), where they fail.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::Fixture;

/// The path of `tool`, or `None` (outside CI) when it is not installed.
fn tool(name: &str) -> Option<String> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p.to_string_lossy().into_owned()),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{name} is not installed (CI=true): run scripts/test-deps.sh")
        }
        None => {
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! SKIPPED: {name} is not installed; run scripts/test-deps.sh  !!!\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            None
        }
    }
}

/// `promtool check metrics` on `body`; panics with its findings when it objects.
fn promtool_check(body: &str, what: &str) {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: promtool check metrics failed:\n{}{}\n--- body ---\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One sample: name, labels, value (our own output, so a small parser suffices).
type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

fn parse(body: &str) -> Samples {
    let mut out = Vec::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        // Values here never contain `",`; escapes are checked by promtool and a unit test.
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once("=\"").expect("label");
            map.insert(k.to_string(), v.trim_end_matches('"').to_string());
        }
        out.push((name.to_string(), map, value));
    }
    out
}

/// The value of `name` with these labels (others ignored).
fn value(s: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

fn count(s: &Samples, name: &str) -> usize {
    s.iter().filter(|(n, _, _)| n == name).count()
}

fn json_at(app: &pypowerwall_server::app::App, path: &str) -> Value {
    json::parse(&get(app, path).body).unwrap_or_else(|e| panic!("{path}: {e:?}"))
}

fn metrics(app: &pypowerwall_server::app::App) -> (String, Samples) {
    let got = get(app, "/metrics");
    assert_eq!(got.status, 200);
    assert_eq!(got.content_type, "text/plain; version=0.0.4; charset=utf-8");
    let samples = parse(&got.body);
    (got.body, samples)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The four flows and lifetime energies equal `/aggregates`; SOE equals `/soe`.
fn assert_values_match(app: &pypowerwall_server::app::App, s: &Samples, gw: &str) {
    let agg = json_at(app, "/aggregates");
    for meter in ["site", "battery", "load", "solar"] {
        let want = |k: &str| agg.path(&[meter, k]).and_then(Value::as_f64);
        let l = [("gateway", gw), ("meter", meter)];
        assert_eq!(
            value(s, "powerwall_power_watts", &l),
            want("instant_power"),
            "{meter} power"
        );
        assert_eq!(
            value(s, "powerwall_energy_imported_watthours_total", &l),
            want("energy_imported"),
            "{meter} imported"
        );
        assert_eq!(
            value(s, "powerwall_energy_exported_watthours_total", &l),
            want("energy_exported"),
            "{meter} exported"
        );
    }
    let soe = json_at(app, "/soe");
    assert_eq!(
        value(s, "powerwall_soe_percent", &[("gateway", gw)]),
        soe.get("percentage").and_then(Value::as_f64),
        "raw SOE"
    );
    let app_soe = json_at(app, "/api/system_status/soe");
    let got = value(s, "powerwall_soe_app_percent", &[("gateway", gw)]).unwrap();
    let want = app_soe.get("percentage").and_then(Value::as_f64).unwrap();
    assert!(close(got, want), "app SOE {got} vs {want}");
    let grid = json_at(app, "/api/system_status/grid_status");
    let grid = grid.get("grid_status").and_then(Value::as_str);
    assert_eq!(
        value(s, "powerwall_grid_up", &[("gateway", gw)]),
        grid.map(|g| (g == "SystemGridConnected") as u8 as f64),
        "grid up"
    );
    assert_eq!(
        value(
            s,
            "powerwall_island_state",
            &[("gateway", gw), ("state", grid.unwrap_or("-"))]
        ),
        grid.map(|_| 1.0),
        "island state"
    );
    let total = json_at(app, "/api/aggregate/power");
    for meter in ["site", "battery", "load", "solar"] {
        assert_eq!(
            value(s, "powerwall_aggregate_power_watts", &[("meter", meter)]),
            total.get(meter).and_then(Value::as_f64),
            "aggregate {meter}"
        );
    }
    let total = json_at(app, "/api/aggregate/soe");
    for (name, key) in [
        (
            "powerwall_aggregate_energy_remaining_watthours",
            "remaining_wh",
        ),
        ("powerwall_aggregate_full_pack_energy_watthours", "full_wh"),
        ("powerwall_aggregate_soe_percent", "percentage_raw"),
    ] {
        assert_eq!(
            value(s, name, &[]),
            total.get(key).and_then(Value::as_f64),
            "{name}"
        );
    }
    assert_eq!(
        value(
            s,
            "powerwall_gateway_state",
            &[("gateway", gw), ("state", "online")]
        ),
        Some(1.0)
    );
}

#[test]
fn tedapi_pw2_metrics_are_valid_and_match_the_json_routes() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    // Traffic for the request counters: a legacy route, a 404-ish fallback, a bad POST.
    get(&app, "/aggregates");
    get(&app, "/no/such/path/with\"quote");
    fetch(
        &agent(),
        "POST",
        &format!("http://{}/nope", app.addr()),
        Some("x=1"),
    );
    let (body, s) = metrics(&app);
    promtool_check(&body, "TEDAPI PW2");
    assert_values_match(&app, &s, "default");
    assert_eq!(count(&s, "powerwall_solar_string_voltage_volts"), 4);
    assert_eq!(
        value(
            &s,
            "powerwall_solar_string_power_watts",
            &[("gateway", "default"), ("string", "A")]
        ),
        Some(4815.0)
    );
    assert_eq!(count(&s, "powerwall_battery_energy_remaining_watthours"), 2);
    // Request counters: families from the route table, never the raw path.
    assert!(
        value(
            &s,
            "pypowerwall_server_http_requests_total",
            &[("family", "legacy proxy"), ("code", "2xx")]
        )
        .is_some_and(|n| n >= 1.0),
        "{body}"
    );
    assert!(value(
        &s,
        "pypowerwall_server_http_requests_total",
        &[("family", "static")]
    )
    .is_some());
    assert!(value(
        &s,
        "pypowerwall_server_http_requests_total",
        &[("family", "other"), ("code", "4xx")]
    )
    .is_some());
    assert!(!body.contains("no/such"), "a raw path leaked into /metrics");
    assert_eq!(
        value(&s, "pypowerwall_server_websocket_clients", &[]),
        Some(0.0)
    );
    // Poll durations: the poller recorded at least one attempt.
    let polls = value(
        &s,
        "powerwall_poll_duration_seconds_count",
        &[("gateway", "default")],
    )
    .unwrap();
    assert!(polls >= 1.0);
    assert_eq!(
        value(
            &s,
            "powerwall_poll_duration_seconds_bucket",
            &[("gateway", "default"), ("le", "+Inf")]
        ),
        Some(polls)
    );
    // Every family has HELP and TYPE.
    for (name, _, _) in &s {
        let family = name
            .strip_suffix("_bucket")
            .or_else(|| name.strip_suffix("_sum"))
            .or_else(|| name.strip_suffix("_count"))
            .filter(|_| name.starts_with("powerwall_poll_duration"))
            .unwrap_or(name);
        assert!(body.contains(&format!("# HELP {family} ")), "{family}");
        assert!(body.contains(&format!("# TYPE {family} ")), "{family}");
    }

    // OpenMetrics on request.
    let got = {
        let r = agent()
            .get(&format!("http://{}/metrics", app.addr()))
            .set("Accept", "application/openmetrics-text; version=1.0.0")
            .call()
            .expect("openmetrics");
        let ct = r.header("Content-Type").unwrap_or("").to_string();
        (ct, r.into_string().unwrap())
    };
    assert_eq!(
        got.0,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(got.1.ends_with("# EOF\n"));
    assert!(got
        .1
        .contains("# TYPE powerwall_energy_imported_watthours counter\n"));
    assert!(got.1.contains("# TYPE powerwall_gateway info\n"));
    let gateway_part = |s: &Samples| s.iter().filter(|x| x.0.starts_with("powerwall_")).count();
    assert_eq!(
        gateway_part(&parse(&got.1)),
        gateway_part(&s),
        "same gateway samples in both formats"
    );

    // Gzip, as Prometheus asks: the compressed gateway part and a stored member for the rest.
    let r = agent()
        .get(&format!("http://{}/metrics", app.addr()))
        .set("Accept-Encoding", "gzip")
        .call()
        .expect("gzip");
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut raw).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut text)
        .unwrap();
    assert!(
        raw.len() * 2 < text.len(),
        "{} of {}",
        raw.len(),
        text.len()
    );
    assert!(text.contains("pypowerwall_server_uptime_seconds "));
    promtool_check(&text, "gzip");
    assert_eq!(gateway_part(&parse(&text)), gateway_part(&s));

    // The route table documents /metrics.
    let doc = json_at(&app, "/openapi.json");
    assert!(doc.path(&["paths", "/metrics", "get"]).is_some());
    app.stop();
}

#[test]
fn pw3_metrics_label_every_powerwall() {
    let sim = start_sim(Fixture::Pw3, true);
    let app = start_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    let (body, s) = metrics(&app);
    promtool_check(&body, "TEDAPI PW3");
    assert_values_match(&app, &s, "default");
    // Leader, follower and the expansion pack each have their own series.
    for serial in ["TG12000000001Z", "TG12000000002Z", "TG12000000004Z"] {
        assert!(
            value(
                &s,
                "powerwall_battery_full_pack_energy_watthours",
                &[("gateway", "default"), ("powerwall", serial)]
            )
            .is_some(),
            "{serial}: {body}"
        );
    }
    assert_eq!(
        value(
            &s,
            "powerwall_battery_energy_remaining_watthours",
            &[("powerwall", "TG12000000004Z")]
        ),
        Some(8500.0)
    );
    assert!(body.contains("model=\"pw3\""));
    assert_eq!(count(&s, "powerwall_solar_string_voltage_volts"), 12);
    app.stop();
}

#[test]
fn local_mode_metrics_have_temperatures_and_alerts() {
    let sim = start_sim_with_password(Fixture::Pw2, true, CUSTOMER_PWD);
    let app = start_local_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    let (body, s) = metrics(&app);
    promtool_check(&body, "local mode");
    assert_values_match(&app, &s, "default");
    let temps = json_at(&app, "/temps");
    let temps = temps.as_object().unwrap();
    assert_eq!(
        count(&s, "powerwall_battery_temperature_celsius"),
        temps.len()
    );
    for (device, t) in temps.iter() {
        let part = device.split("--").nth(1).unwrap();
        assert_eq!(
            value(
                &s,
                "powerwall_battery_temperature_celsius",
                &[("part", part)]
            ),
            t.as_f64(),
            "{device}"
        );
    }
    let alerts = json_at(&app, "/alerts");
    let alerts = alerts.as_array().unwrap();
    assert_eq!(
        value(&s, "powerwall_alerts_active", &[("gateway", "default")]),
        Some(alerts.len() as f64)
    );
    for a in alerts {
        let a = a.as_str().unwrap();
        assert_eq!(
            value(&s, "powerwall_alert_active", &[("alert", a)]),
            Some(1.0)
        );
    }
    assert!(body.contains("mode=\"local\""), "{body}");
    app.stop();
}

#[test]
fn outage_metrics_show_the_state_and_drop_the_data() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(
        &sim.addr().to_string(),
        &[
            ("PW_CACHE_EXPIRE", "1"),
            ("PW_CACHE_TTL", "2"),
            ("PW_TIMEOUT", "1"),
        ],
    );
    wait_online(&app);
    sim_get(&sim, "/test/fault/timeout");
    let gw = [("gateway", "default")];
    // The data expires (2 s) about when the timed-out poll fails (1 s after it starts): wait
    // for both.
    assert!(wait_for(Duration::from_secs(15), || get(
        &app,
        "/aggregates"
    )
    .body
        == "null"
        && value(
            &metrics(&app).1,
            "powerwall_poll_consecutive_failures",
            &gw
        )
        .is_some_and(|n| n >= 1.0)));
    let (body, s) = metrics(&app);
    promtool_check(&body, "outage");
    assert_eq!(
        value(
            &s,
            "powerwall_gateway_state",
            &[("gateway", "default"), ("state", "offline")]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        count(&s, "powerwall_power_watts"),
        0,
        "no data while offline"
    );
    assert_eq!(count(&s, "powerwall_soe_percent"), 0);
    assert!(value(&s, "powerwall_poll_consecutive_failures", &gw).is_some_and(|n| n >= 1.0));
    assert!(value(
        &s,
        "powerwall_polls_total",
        &[("gateway", "default"), ("result", "failure")]
    )
    .is_some_and(|n| n >= 1.0));
    assert!(value(&s, "powerwall_last_success_timestamp_seconds", &gw).is_some());
    assert_eq!(
        value(&s, "powerwall_aggregate_contributors", &[]),
        Some(0.0)
    );
    // Firmware of the last good poll stays in the info metric.
    assert!(body.contains("powerwall_gateway_info{gateway=\"default\""));
    app.stop();
}

#[test]
fn label_values_from_configuration_are_escaped() {
    use pypowerwall_server::metrics::{Metrics, ServerStatus};
    use pypowerwall_server::render::Settings;
    use pypowerwall_server::snapshot::{GatewaySnapshot, Health, Hub};
    let snap = |id: &str, name: &str| GatewaySnapshot {
        id: id.into(),
        name: name.into(),
        host: "192.0.2.1".into(),
        simulated: false,
        solar_only: false,
        mode: pypowerwall_server::config::Mode::Tedapi,
        forward: None,
        health: Health::default(),
        good: None,
        history: std::sync::Arc::new(pypowerwall_server::snapshot::History::new(id, None, None)),
        series: None,
    };
    let hub = Hub::new(
        vec![
            snap("home", "My \"house\" \\ garage\nnorth"),
            snap("cabin", "Cabin"),
        ],
        Settings {
            neg_solar: true,
            site_zero_threshold: 0,
            control_enabled: false,
            pass_through: Vec::new(),
        },
        Duration::from_secs(30),
        true,
    );
    let m = Metrics::default();
    m.requests.count("docs", 200);
    let status = ServerStatus {
        started: std::time::SystemTime::now(),
        uptime: Duration::from_secs(5),
        websocket_clients: 2,
    };
    let body = m.body(&hub, Instant::now(), false, &status);
    assert!(
        body.contains(r#"name="My \"house\" \\ garage\nnorth""#),
        "{body}"
    );
    promtool_check(&body, "escaped labels, connecting gateways");
    let s = parse(&body);
    assert_eq!(
        value(
            &s,
            "powerwall_gateway_state",
            &[("gateway", "cabin"), ("state", "connecting")]
        ),
        Some(1.0)
    );
    // Cached: the same text until the hub changes.
    let a = m.gateways(&hub, Instant::now());
    let b = m.gateways(&hub, Instant::now());
    assert!(Arc::ptr_eq(&a, &b));
}

/// A free loopback port (bound and released; good enough for a test).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_the_series() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    let dir = std::env::temp_dir().join(format!("ppws-prom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: pypowerwall\n    static_configs:\n      - targets: ['{}']\n",
            app.addr()
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prometheus starts");
    let mut child = Child(child);
    let query = |q: &str| -> Option<Value> {
        let url = format!("http://127.0.0.1:{port}/api/v1/query");
        let r = agent().get(&url).query("query", q).call().ok()?;
        let v = json::parse(&r.into_string().ok()?).ok()?;
        let result = v.path(&["data", "result"])?.as_array()?.clone();
        (!result.is_empty()).then_some(Value::Array(result))
    };
    let sample = |v: &Value| {
        v.idx(0)
            .and_then(|r| r.get("value"))
            .and_then(|p| p.idx(1))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
    };
    let mut got = None;
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end && got.is_none() {
        if let Ok(Some(status)) = child.0.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("prometheus exited ({status}): {err}");
        }
        got = query("powerwall_soe_percent{gateway=\"default\"}");
        if got.is_none() {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let got = got.expect("prometheus never returned powerwall_soe_percent");
    let soe = json_at(&app, "/soe");
    assert_eq!(sample(&got), soe.get("percentage").and_then(Value::as_f64));
    // The scrape itself succeeded, and counters and the info metric came through.
    let up = query("up{job=\"pypowerwall\"}").expect("up");
    assert_eq!(sample(&up), Some(1.0));
    assert!(query("powerwall_energy_imported_watthours_total{meter=\"site\"}").is_some());
    assert!(query("powerwall_gateway_info").is_some());
    assert!(query("powerwall_poll_duration_seconds_bucket").is_some());
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
    app.stop();
}

/// Per-request cost of the body in-process (run with `--ignored --nocapture`, release).
#[test]
#[ignore]
fn body_cost() {
    use pypowerwall_server::metrics::ServerStatus;
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[]);
    wait_online(&app);
    let ctx = &app.ctx;
    let status = || ServerStatus {
        started: ctx.stats.started,
        uptime: ctx.stats.started_at.elapsed(),
        websocket_clients: 0,
    };
    for i in 0..20 {
        ctx.metrics
            .requests
            .count(if i % 2 == 0 { "docs" } else { "static" }, 200 + i);
    }
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(ctx.metrics.body(&ctx.hub, Instant::now(), false, &status()));
    }
    eprintln!("body: {:?}/call", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(
            ctx.metrics
                .body_gzip(&ctx.hub, Instant::now(), false, &status()),
        );
    }
    eprintln!("body_gzip: {:?}/call", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(ctx.aggregates.get(ctx, Instant::now()));
    }
    eprintln!("aggregates: {:?}/call", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(ctx.metrics.gateways(&ctx.hub, Instant::now()));
    }
    eprintln!("gateway part: {:?}/call", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(ctx.metrics.cached_body(
            &ctx.hub,
            Instant::now(),
            false,
            true,
            status,
        ));
    }
    eprintln!("cached body: {:?}/call", t.elapsed() / n);
    app.stop();
}
