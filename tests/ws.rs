//! WebSocket streaming with a real client: both routes, the 404 before the upgrade, a client that
//! never reads (the others still get every message on time), ping/pong, a clean close, the cap.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use pypowerwall_server::json::{self, Value};
use pypowerwall_server::sim::Fixture;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn connect(app: &pypowerwall_server::app::App, path: &str) -> Result<Ws, tungstenite::Error> {
    let (ws, _) = tungstenite::connect(format!("ws://{}{}", app.addr(), path))?;
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    Ok(ws)
}

fn next_summary(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return json::parse(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn server(
    env: &[(&str, &str)],
) -> (
    pypowerwall_server::sim::SimHandle,
    pypowerwall_server::app::App,
) {
    let sim = start_sim(Fixture::Pw2, true);
    let mut vars = vec![("PW_CACHE_EXPIRE", "1"), ("PW_WS_INTERVAL", "0.5")];
    vars.extend_from_slice(env);
    let app = start_server(&sim.addr().to_string(), &vars);
    wait_online(&app);
    (sim, app)
}

#[test]
fn both_routes_stream_summaries() {
    let (_sim, app) = server(&[]);
    let mut gw = connect(&app, "/ws/gateway/default").unwrap();
    let m = next_summary(&mut gw);
    assert_eq!(m.get("type").and_then(Value::as_str), Some("summary"));
    assert_eq!(m.get("id").and_then(Value::as_str), Some("default"));
    assert_eq!(m.get("site"), Some(&Value::Float(-2100.0)));
    assert_eq!(m.get("soe"), Some(&Value::Float(24.074074074074073)));
    assert_eq!(m.get("soe_app"), Some(&Value::Float(20.077972709551656)));
    assert_eq!(m.get("state").and_then(Value::as_str), Some("online"));
    let mut agg = connect(&app, "/ws/aggregate").unwrap();
    let m = next_summary(&mut agg);
    assert_eq!(m.get("id").and_then(Value::as_str), Some("aggregate"));
    assert_eq!(m.get("load"), Some(&Value::Float(900.0)));
    // Messages keep coming at the configured interval.
    let t0 = Instant::now();
    for _ in 0..3 {
        next_summary(&mut gw);
    }
    assert!(t0.elapsed() < Duration::from_secs(3));
    app.stop();
}

#[test]
fn unknown_gateway_is_404_before_the_upgrade() {
    let (_sim, app) = server(&[]);
    match connect(&app, "/ws/gateway/nope") {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        other => panic!("expected an HTTP 404, got {:?}", other.map(|_| ())),
    }
    // A plain GET on the route asks for an upgrade.
    assert_eq!(get(&app, "/ws/aggregate").status, 426);
    app.stop();
}

#[test]
fn a_client_that_never_reads_does_not_delay_others() {
    let (_sim, app) = server(&[("PW_WS_INTERVAL", "0.2")]);
    // A raw client: handshake sent, nothing ever read again.
    let mut stalled = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(app.addr()).unwrap();
        write!(
            s,
            "GET /ws/aggregate HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        stalled.push(s);
    }
    let mut ws = connect(&app, "/ws/gateway/default").unwrap();
    next_summary(&mut ws);
    let mut last = Instant::now();
    let mut worst = Duration::ZERO;
    for _ in 0..15 {
        next_summary(&mut ws);
        worst = worst.max(last.elapsed());
        last = Instant::now();
    }
    assert!(
        worst < Duration::from_millis(600),
        "a message was late by {worst:?}"
    );
    drop(stalled);
    app.stop();
}

#[test]
fn ping_pong_and_clean_close() {
    let (_sim, app) = server(&[]);
    let mut ws = connect(&app, "/ws/aggregate").unwrap();
    ws.send(Message::Ping(b"hi".to_vec().into())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        assert!(Instant::now() < deadline, "no pong");
        if let Message::Pong(p) = ws.read().unwrap() {
            assert_eq!(&p[..], b"hi");
            break;
        }
    }
    assert_eq!(app.ctx.ws.connected(), 1);
    ws.close(None).unwrap();
    // The server answers the close; then the connection ends cleanly.
    loop {
        match ws.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
    assert!(wait_for(Duration::from_secs(3), || app.ctx.ws.connected() == 0));
    app.stop();
}

#[test]
fn clients_beyond_the_cap_are_refused_clearly() {
    let (_sim, app) = server(&[("PW_WS_MAX_CLIENTS", "2")]);
    let _a = connect(&app, "/ws/aggregate").unwrap();
    let _b = connect(&app, "/ws/aggregate").unwrap();
    match connect(&app, "/ws/aggregate") {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            let body =
                String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains("limit 2"), "{body}");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    app.stop();
}
