//! The energy history over the real binary and the simulator (issue 15): restarts keep every
//! archive, `kill -9` loses at most one batch, damaged files are set aside, an unwritable
//! directory is logged once while serving goes on, and `/api/timeseries/*` answers in
//! pypowerwall-server 0.13.0's shapes with `?gateway=`, CSV, 404 and 422. Runs with
//! `PW_HISTORY_STEP=1` and a two-second flush so it takes seconds.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{agent, fetch, same_shape, start_sim_with_password, wait_for, CUSTOMER_PWD, PEER};
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::{Fixture, SimHandle};

struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(sim: &SimHandle, dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pypowerwall-server"))
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .env_clear()
            .env("PW_HOST", sim.addr().to_string())
            .env("PW_PASSWORD", CUSTOMER_PWD)
            .env("PW_CACHE_EXPIRE", "1")
            .env("PW_HISTORY_DIR", dir)
            .env("PW_HISTORY_STEP", "1")
            .env("PW_HISTORY_FLUSH", "2")
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(a) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(a.trim().to_string());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the server listens");
        Server {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        let g = fetch(&agent(), "GET", &format!("{}{path}", self.base), None);
        (g.status, g.content_type, g.body)
    }

    fn json(&self, path: &str) -> Value {
        let (status, _, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        json::parse(&body).unwrap_or_else(|e| panic!("{path}: {e:?}: {body}"))
    }

    fn status(&self) -> Value {
        self.json("/api/timeseries/status")
            .path(&["storage", "default"])
            .cloned()
            .expect("storage of the default gateway")
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, and the exit it causes.
    fn terminate(mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "exit after SIGTERM: {st}\n{}", self.log());
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(self.log().contains("signal received"), "{}", self.log());
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    // A failed assertion must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("pwh-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn num(v: &Value, path: &[&str]) -> f64 {
    v.path(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path:?} in {}", v.to_py()))
}

/// The slot times `/samples` has.
fn sample_times(s: &Server) -> Vec<i64> {
    let v = s.json("/api/timeseries/samples?limit=10000");
    match v.get("samples") {
        Some(Value::Array(a)) => a.iter().map(|x| num(x, &["ts"]) as i64).collect(),
        _ => panic!("no samples: {}", v.to_py()),
    }
}

#[test]
fn history_survives_restarts_and_answers_in_the_python_shapes() {
    let sim = start_sim_with_password(Fixture::Pw2, false, CUSTOMER_PWD);
    let dir = TempDir::new("restart");
    let file = dir.0.join("default.pwh");
    let s = Server::start(&sim, &dir.0);
    assert!(
        wait_for(Duration::from_secs(20), || {
            num(&s.status(), &["flushes"]) >= 2.0 && sample_times(&s).len() >= 6
        }),
        "two flushes and six samples: {}",
        s.status().to_py()
    );

    // Shapes: every key of 0.13.0's answers, with the same types.
    for (route, sample) in [
        ("today", "api_timeseries_today.json"),
        ("daily", "api_timeseries_daily.json"),
        ("trend?hours=1", "api_timeseries_trend_hours-1.json"),
        ("samples?limit=3", "api_timeseries_samples_limit-3.json"),
        ("status", "api_timeseries_status.json"),
    ] {
        let text = std::fs::read_to_string(Path::new(PEER).join(sample)).unwrap();
        let want = json::parse(&text).unwrap();
        let got = s.json(&format!("/api/timeseries/{route}"));
        same_shape(&want, &got, route, false);
    }
    let three = s.json("/api/timeseries/samples?limit=3");
    assert_eq!(num(&three, &["count"]), 3.0);

    // Daily kWh from the growing counters agree with the samples' integral within 5 %.
    let today = s.json("/api/timeseries/today");
    let row = today.path(&["gateways", "default"]).expect("today's row");
    assert_eq!(
        row.path(&["source", "home"]).and_then(Value::as_str),
        Some("meters"),
        "{}",
        row.to_py()
    );
    let (meters, integral) = (num(row, &["home_kwh"]), num(row, &["integral_kwh", "home"]));
    assert!(meters > 0.0, "{}", row.to_py());
    assert!(
        (meters - integral).abs() <= 0.05 * integral,
        "home: counters {meters} kWh vs integral {integral} kWh"
    );
    for f in [
        "solar_kwh",
        "home_kwh",
        "battery_charge_kwh",
        "battery_discharge_kwh",
        "grid_import_kwh",
        "grid_export_kwh",
    ] {
        assert!(num(row, &[f]) >= 0.0, "{f} negative: {}", row.to_py());
    }

    // ?gateway=, CSV, 404, 422.
    let one = s.json("/api/timeseries/today?gateway=default");
    assert_eq!(
        num(&one, &["gateways", "default", "home_kwh"]),
        num(&one, &["total", "home_kwh"])
    );
    let (st, ct, body) = s.get("/api/timeseries/daily?format=csv&gateway=default");
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(body.starts_with("day,gateway_id,solar_kwh,"), "{body}");
    assert!(body.lines().nth(1).is_some_and(|l| l.contains(",default,")));
    let (st, _, body) = s.get("/api/timeseries/trend?format=csv&hours=1");
    assert_eq!(st, 200);
    assert!(body.starts_with("ts,solar_kw,home_kw,battery_kw,grid_kw,battery_level\n"));
    assert_eq!(s.get("/api/timeseries/today?gateway=nope").0, 404);
    for bad in [
        "daily?days=seven",
        "daily?start=2026-02-30",
        "daily?start=2026-03-02&end=2026-03-01",
        "trend?start=inf",
        "trend?hours=1e3",
        "samples?limit=-x",
        "today?format=xml",
        "status?format=csv",
    ] {
        let (st, _, body) = s.get(&format!("/api/timeseries/{bad}"));
        assert_eq!(st, 422, "{bad}: {body}");
        assert!(body.contains("\"detail\""), "{bad}: {body}");
    }
    // Huge counts are clamped, not allocated.
    assert_eq!(s.get("/api/timeseries/samples?limit=99999999999").0, 200);
    assert_eq!(s.get("/api/timeseries/daily?days=99999999999").0, 200);
    // The legacy history body is fed by the same archive.
    let h = s.json("/api/gateways/default/history");
    assert_eq!(num(&h, &["interval_seconds"]), 1.0);

    // SIGTERM flushes: a restart keeps every archive and every slot.
    let before = sample_times(&s);
    let archives_before = s.status().get("archives").cloned().unwrap();
    s.terminate();
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 1 << 20);
    let s = Server::start(&sim, &dir.0);
    let st = s.status();
    assert!(
        st.get("open_problems")
            .is_some_and(|p| matches!(p, Value::Array(a) if a.is_empty())),
        "{}",
        st.to_py()
    );
    let after = sample_times(&s);
    for t in &before {
        assert!(after.contains(t), "slot {t} lost across a restart");
    }
    if let (Some(Value::Array(a)), Some(Value::Array(b))) =
        (Some(&archives_before), st.get("archives"))
    {
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.get("oldest_ts"), y.get("oldest_ts"), "{}", st.to_py());
        }
    }

    // kill -9 between flushes: at most the last batch (2 s + a tick) is lost; the file
    // reads back without problems.
    assert!(wait_for(Duration::from_secs(10), || num(
        &s.status(),
        &["flushes"]
    ) >= 1.0));
    std::thread::sleep(Duration::from_millis(1500));
    let killed_at = pypowerwall_server::clock::unix_secs(std::time::SystemTime::now());
    s.kill9();
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 1 << 20);
    let s = Server::start(&sim, &dir.0);
    let st = s.status();
    assert!(
        st.get("open_problems")
            .is_some_and(|p| matches!(p, Value::Array(a) if a.is_empty())),
        "{}",
        st.to_py()
    );
    let kept = sample_times(&s);
    assert!(
        kept.iter().any(|t| *t < killed_at && *t >= killed_at - 4),
        "nothing from the last 4 s before kill -9 at {killed_at}: {:?}",
        &kept[kept.len().saturating_sub(8)..]
    );
    for t in &before {
        assert!(kept.contains(t), "slot {t} lost after kill -9");
    }
    s.terminate();
}

#[test]
fn damaged_files_are_set_aside_and_an_unwritable_directory_is_logged_once() {
    let sim = start_sim_with_password(Fixture::Pw2, false, CUSTOMER_PWD);
    // A truncated, foreign file is kept aside and replaced.
    let dir = TempDir::new("damaged");
    let file = dir.0.join("default.pwh");
    std::fs::write(&file, b"not a history file").unwrap();
    let s = Server::start(&sim, &dir.0);
    assert!(wait_for(Duration::from_secs(10), || num(
        &s.status(),
        &["flushes"]
    ) >= 1.0));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 1 << 20);
    let aside: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept aside");
    assert_eq!(
        std::fs::read(aside[0].path()).unwrap(),
        b"not a history file"
    );
    let st = s.status();
    assert!(
        matches!(st.get("open_problems"), Some(Value::Array(a)) if a.len() == 1),
        "{}",
        st.to_py()
    );
    assert!(s.log().contains("replaced by a new file"), "{}", s.log());
    s.terminate();

    // A directory that cannot be written (here: below a regular file, which even root cannot
    // create): logged once, recording and serving go on in memory.
    let blocker = dir.0.join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let s = Server::start(&sim, &blocker.join("sub"));
    let at_start = s.log().matches("blocker/sub").count();
    assert!(at_start >= 1, "{}", s.log());
    assert!(wait_for(Duration::from_secs(15), || {
        num(&s.status(), &["write_failures"]) >= 2.0 && sample_times(&s).len() >= 3
    }));
    let st = s.status();
    assert_eq!(st.get("persisted"), Some(&Value::Bool(false)));
    assert!(matches!(st.get("last_error"), Some(Value::Str(_))));
    assert_eq!(s.get("/api/timeseries/today").0, 200);
    assert_eq!(s.get("/aggregates").0, 200);
    // Logged when it started, not again at each failed flush.
    let log = s.log();
    assert_eq!(log.matches("blocker/sub").count(), at_start, "{log}");
    s.terminate();
}
