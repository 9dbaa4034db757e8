//! WebSocket fan-out load client: opens N clients, reads for T seconds from one thread
//! (non-blocking sockets), prints how many messages arrived and the worst gap between two.
//!
//! `cargo bench --bench wsload -- ADDR PATH CLIENTS SECONDS` (run by `benches/run.sh`).

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 4 {
        eprintln!("usage: wsload ADDR PATH CLIENTS SECONDS");
        std::process::exit(2);
    }
    let (addr, path) = (&args[0], &args[1]);
    let n: usize = args[2].parse().expect("CLIENTS");
    let secs: u64 = args[3].parse().expect("SECONDS");
    let mut clients: Vec<(WebSocket<TcpStream>, u64, Instant, Duration)> = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let stream = TcpStream::connect(addr).expect("connect");
        let (ws, _) = tungstenite::client(format!("ws://{addr}{path}"), stream)
            .unwrap_or_else(|e| panic!("client {i}: handshake failed: {e}"));
        ws.get_ref().set_nonblocking(true).expect("non-blocking");
        clients.push((ws, 0, Instant::now(), Duration::ZERO));
    }
    let connect_time = t0.elapsed();
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut dropped = 0;
    while Instant::now() < end {
        let mut idle = true;
        for c in clients.iter_mut() {
            loop {
                match c.0.read() {
                    Ok(Message::Text(_)) => {
                        let now = Instant::now();
                        if c.1 > 0 {
                            c.3 = c.3.max(now - c.2);
                        }
                        c.1 += 1;
                        c.2 = now;
                        idle = false;
                    }
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        dropped += 1;
                        c.1 = u64::MAX / 2;
                        break;
                    }
                }
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let msgs: u64 = clients.iter().map(|c| c.1.min(u64::MAX / 4)).sum();
    let worst = clients.iter().map(|c| c.3).max().unwrap_or_default();
    let least = clients.iter().map(|c| c.1).min().unwrap_or(0);
    println!(
        "ws_clients={n} connect_s={:.2} seconds={secs} messages={msgs} min_per_client={least} worst_gap_ms={} dropped={dropped}",
        connect_time.as_secs_f64(),
        worst.as_millis()
    );
}
