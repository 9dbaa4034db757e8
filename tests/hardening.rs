//! The HTTP server's limits (vendored tiny_http patches), measured over real sockets:
//! idle keep-alive and slow headers are cut, stalled connections do not starve others or grow
//! memory without bound, running out of file descriptors never leaves the server deaf, and the
//! open-file limit is raised at start.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pypowerwall_server::sim::Fixture;

fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let end = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

fn rss_kib() -> i64 {
    pypowerwall_server::http::status::rss_kib()
}

#[test]
fn idle_and_slow_connections_are_cut() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[("PW_IDLE_TIMEOUT", "1")]);
    wait_online(&app);

    // Idle keep-alive: one request, then silence.
    let mut s = TcpStream::connect(app.addr()).unwrap();
    write!(s, "GET /soe HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(s.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let t0 = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(4)),
        "idle connection kept open"
    );
    assert!(t0.elapsed() >= Duration::from_millis(700));

    // Slow headers: a byte every 300 ms keeps the socket busy but never finishes the request.
    let mut s = TcpStream::connect(app.addr()).unwrap();
    let t0 = Instant::now();
    let mut cut = false;
    for b in
        "GET /aggregates HTTP/1.1\r\nHost: slowloris.example\r\nX-Pad: aaaaaaaaaaaaaaaaaaaa".bytes()
    {
        if s.write_all(&[b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        if t0.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    assert!(
        cut || closed_within(&mut s, Duration::from_secs(2)),
        "slow headers never cut"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "slow headers took {:?} to cut",
        t0.elapsed()
    );
    app.stop();
}

#[test]
fn stalled_connections_do_not_starve_others() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[("PW_IDLE_TIMEOUT", "2")]);
    wait_online(&app);
    let before = rss_kib();
    let mut stalled = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(app.addr()).unwrap();
        if i % 2 == 0 {
            // half send a partial request, half nothing at all
            let _ = s.write_all(b"GET /vitals HTTP/1.1\r\nHost:");
        }
        stalled.push(s);
    }
    let agent = agent();
    let t0 = Instant::now();
    for _ in 0..20 {
        let got = fetch(
            &agent,
            "GET",
            &format!("http://{}/aggregates", app.addr()),
            None,
        );
        assert_eq!(got.status, 200);
    }
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "20 requests took {took:?} beside 200 stalled connections"
    );
    let grown = rss_kib() - before;
    eprintln!("200 stalled connections: RSS grew {grown} KiB, 20 requests in {took:?}");
    assert!(grown < 64 * 1024, "RSS grew {grown} KiB");
    // They are all cut after the idle time-out (a connection queued behind busy reader
    // threads starts its clock when a thread takes it, so allow twice the time-out).
    std::thread::sleep(Duration::from_millis(5000));
    let mut open = 0;
    for s in stalled.iter_mut() {
        if !closed_within(s, Duration::from_millis(50)) {
            open += 1;
        }
    }
    assert_eq!(open, 0, "{open} stalled connections still open");
    app.stop();
}

fn spawn_limited(
    shell: &str,
) -> (
    std::process::Child,
    String,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    let mut child = Command::new("sh")
        .args([
            "-c",
            &format!("{shell}; exec \"$0\" --demo --port 0 --bind 127.0.0.1"),
        ])
        .arg(env!("CARGO_BIN_EXE_pypowerwall-server"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(a) = line.split("listening on http://").nth(1) {
                let _ = tx.send(a.trim().to_string());
            }
            if let Ok(mut l) = sink.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server starts");
    (child, addr, log)
}

#[test]
fn running_out_of_descriptors_never_leaves_the_server_deaf() {
    // A tiny descriptor budget (hard limit too, so the server cannot raise it).
    let (mut child, addr, log) = spawn_limited("ulimit -n 48");
    let mut held = Vec::new();
    for _ in 0..60 {
        if let Ok(s) = TcpStream::connect(&addr) {
            held.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    // Once descriptors are free again, the server answers.
    let ok = wait_for(Duration::from_secs(8), || {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build()
            .get(&format!("http://{addr}/soe"))
            .call()
            .is_ok()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "server deaf after running out of file descriptors");
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("error accepting a connection") || log.contains("dropping a connection"),
        "the descriptor limit was never hit:\n{log}"
    );
}

#[test]
fn open_file_limit_is_raised_at_start() {
    let (mut child, _addr, _log) = spawn_limited("ulimit -S -n 256");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums[0], nums[1], "soft limit not raised: {line}");
}
