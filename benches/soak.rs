//! Soak load client (run by `benches/soak.sh`): for SECONDS, 50 keep-alive HTTP connections
//! (each paced to RATE requests/s) and 200 WebSocket clients against one server, while a fault
//! is switched on in the simulator for the first half of every minute (`GET /test/fault/<kind>`
//! through `curl -sk`). Prints requests, errors inside and outside fault windows, p50/p99
//! latency, WebSocket messages and drops, and RSS / fds / threads of SERVER_PID after warm-up
//! and at the end. Loopback only; every loop is bounded by the deadline.
//!
//! `cargo bench --bench soak -- ADDR SIM_URL SERVER_PID SECONDS [HTTP_CONNS WS_CLIENTS RATE]`

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::WebSocket;

/// Routes each HTTP connection cycles through.
const ROUTES: &[&str] = &[
    "/aggregates",
    "/soe",
    "/vitals",
    "/strings",
    "/api/aggregate/power",
    "/api/gateways",
    "/stats",
    "/health",
    "/freq",
    "/csv",
];
/// Faults switched on in turn, one per minute.
const FAULTS: &[&str] = &[
    "timeout",
    "close",
    "http500",
    "garbage",
    "truncated",
    "badjson",
    "http429",
    "halfbody",
    "http503",
    "badgzip",
];
/// A fault is on for this long at the start of each minute.
const FAULT_ON: Duration = Duration::from_secs(30);
/// Errors this long after a fault is switched off still count as inside its window (the
/// server recovers within two poll intervals, plus a back-off step).
const GRACE: Duration = Duration::from_secs(20);
/// RSS, fds and threads are first read after this: the first two history steps (60 s each)
/// allocate the published copies of the recorder (~1 MiB each), so RSS levels off in minute 3.
const WARM_UP: Duration = Duration::from_secs(180);

/// Shared counters.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    errors_in: AtomicU64,
    errors_out: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    first_errors: Mutex<Vec<String>>,
}

/// Whether `at` (since start) lies in a fault window.
fn in_fault_window(at: Duration) -> bool {
    let s = at.as_secs() % 60;
    Duration::from_secs(s) < FAULT_ON + GRACE
}

fn record_error(c: &Counts, start: Instant, what: String) {
    let at = start.elapsed();
    if in_fault_window(at) {
        c.errors_in.fetch_add(1, Ordering::Relaxed);
    } else {
        c.errors_out.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = c.first_errors.lock() {
            if e.len() < 10 {
                e.push(format!("{:.1}s: {what}", at.as_secs_f64()));
            }
        }
    }
}

/// Reads one HTTP/1.1 answer with `Content-Length`; returns the status.
fn read_answer(r: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, format!("bad line {line:?}")))?;
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len.min(4 << 20)];
    r.read_exact(&mut body)?;
    Ok(status)
}

fn http_conn(addr: String, id: usize, rate: u64, end: Instant, start: Instant, c: Arc<Counts>) {
    let pace = Duration::from_micros(1_000_000 / rate.max(1));
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let mut lat = Vec::new();
    let mut i = id;
    let mut next = Instant::now();
    while Instant::now() < end {
        if conn.is_none() {
            match TcpStream::connect(&addr).and_then(|s| {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                let r = BufReader::new(s.try_clone()?);
                Ok((s, r))
            }) {
                Ok(x) => conn = Some(x),
                Err(e) => {
                    record_error(&c, start, format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let Some((s, r)) = conn.as_mut() else {
            continue;
        };
        let path = ROUTES[i % ROUTES.len()];
        i += 1;
        let t0 = Instant::now();
        let req = format!("GET {path} HTTP/1.1\r\nHost: soak\r\n\r\n");
        let res = s.write_all(req.as_bytes()).and_then(|_| read_answer(r));
        c.requests.fetch_add(1, Ordering::Relaxed);
        match res {
            Ok(st) if st < 400 || (path == "/health" && st == 503) => {
                lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32)
            }
            Ok(st) => record_error(&c, start, format!("{path}: status {st}")),
            Err(e) => {
                record_error(&c, start, format!("{path}: {e}"));
                conn = None;
            }
        }
        next += pace;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    if let Ok(mut l) = c.latencies_us.lock() {
        l.extend(lat);
    }
}

/// All WebSocket clients on one thread (non-blocking): (messages, dropped clients).
fn ws_clients(addr: &str, n: usize, end: Instant, start: Instant, c: &Counts) -> (u64, u64) {
    let mut clients: Vec<WebSocket<TcpStream>> = Vec::with_capacity(n);
    for i in 0..n {
        let opened = TcpStream::connect(addr)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                tungstenite::client(format!("ws://{addr}/ws/aggregate"), s)
                    .map_err(|e| e.to_string())
            });
        match opened {
            Ok((ws, _)) if ws.get_ref().set_nonblocking(true).is_ok() => clients.push(ws),
            Ok(_) => record_error(c, start, format!("ws {i}: non-blocking")),
            Err(e) => record_error(c, start, format!("ws {i}: {e}")),
        }
    }
    let (mut messages, mut dropped) = (0u64, 0u64);
    while Instant::now() < end {
        let mut idle = true;
        clients.retain_mut(|ws| loop {
            match ws.read() {
                Ok(_) => {
                    messages += 1;
                    idle = false;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) => {
                    dropped += 1;
                    record_error(c, start, format!("ws dropped: {e}"));
                    return false;
                }
            }
        });
        if idle {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    (messages, dropped)
}

/// (RSS KiB, open fds, threads) of a process.
fn proc_figures(pid: &str) -> (u64, usize, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (field("VmRSS:"), fds, field("Threads:"))
}

fn set_fault(sim: &str, kind: &str) {
    let ok = std::process::Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-m", "5"])
        .arg(format!("{sim}/test/fault/{kind}"))
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("soak: could not set fault {kind}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 4 {
        eprintln!("usage: soak ADDR SIM_URL SERVER_PID SECONDS [HTTP_CONNS WS_CLIENTS RATE]");
        std::process::exit(2);
    }
    let (addr, sim, pid) = (args[0].clone(), args[1].clone(), args[2].clone());
    let num = |i: usize, d: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let secs = num(3, 600);
    let (conns, ws_n, rate) = (num(4, 50) as usize, num(5, 200) as usize, num(6, 10));
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));

    let http: Vec<_> = (0..conns)
        .map(|id| {
            let (a, c) = (addr.clone(), counts.clone());
            std::thread::spawn(move || http_conn(a, id, rate, end, start, c))
        })
        .collect();
    let ws = {
        let (a, c) = (addr.clone(), counts.clone());
        std::thread::spawn(move || ws_clients(&a, ws_n, end, start, &c))
    };
    let faults = {
        let (sim, stop) = (sim.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut on = false;
            while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                let at = start.elapsed();
                let want_on = at.as_secs() % 60 < FAULT_ON.as_secs();
                if want_on != on {
                    let kind = if want_on {
                        FAULTS[(at.as_secs() / 60) as usize % FAULTS.len()]
                    } else {
                        "none"
                    };
                    eprintln!("soak: {:>4}s fault {kind}", at.as_secs());
                    set_fault(&sim, kind);
                    on = want_on;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            if on {
                set_fault(&sim, "none");
            }
        })
    };
    // RSS at each minute mark: a leak grows with every minute, allocator warm-up levels off.
    let timeline = {
        let (pid, stop) = (pid.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut marks = Vec::new();
            let mut next = start + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    marks.push(proc_figures(&pid).0);
                    next += Duration::from_secs(60);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            marks
        })
    };
    std::thread::sleep(WARM_UP.min(Duration::from_secs(secs / 2)));
    let warm = proc_figures(&pid);
    for h in http {
        let _ = h.join();
    }
    let (messages, dropped) = ws.join().unwrap_or((0, 0));
    stop.store(true, Ordering::Relaxed);
    let _ = faults.join();
    let last = proc_figures(&pid);
    let marks = timeline.join().unwrap_or_default();

    let mut lat = counts
        .latencies_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|us| *us as f64 / 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "soak: {secs} s, {conns} keep-alive HTTP connections at {rate}/s, {ws_n} WebSocket clients"
    );
    println!(
        "requests            {}",
        counts.requests.load(Ordering::Relaxed)
    );
    println!(
        "errors outside fault windows {}",
        counts.errors_out.load(Ordering::Relaxed)
    );
    println!(
        "errors inside fault windows  {}",
        counts.errors_in.load(Ordering::Relaxed)
    );
    println!("latency p50 / p99   {:.2} / {:.2} ms", pct(0.50), pct(0.99));
    println!("ws messages         {messages} ({dropped} clients dropped)");
    println!(
        "rss after warm-up   {} KiB; at end {} KiB (growth {} KiB)",
        warm.0,
        last.0,
        last.0 as i64 - warm.0 as i64
    );
    let minutes: Vec<String> = marks.iter().map(|k| k.to_string()).collect();
    println!("rss by minute (KiB) {}", minutes.join(" "));
    if let (Some(first), Some(end)) = (marks.first(), marks.last()) {
        println!(
            "rss growth from minute 1 to {}: {} KiB",
            marks.len(),
            *end as i64 - *first as i64
        );
    }
    println!("fds                 {} -> {}", warm.1, last.1);
    println!("threads             {} -> {}", warm.2, last.2);
    let errors = counts
        .first_errors
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    for line in errors {
        println!("  error: {line}");
    }
}
