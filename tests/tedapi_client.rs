//! The TEDAPI client and the native local-API fetch over real HTTPS, against a throw-away TLS
//! server in this file (the fixture certificate, canned replies). Timeouts are short so the
//! whole file runs in about a second.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pypowerwall_server::gateway::native::{Native, FAIL_BACKOFF, TOKEN_TTL};
use pypowerwall_server::gateway::proto::{Body, Message, Participant, SystemInfo};
use pypowerwall_server::gateway::tedapi::{Client, ClientOptions, Error};
use pypowerwall_server::wire::tls;

const DIN: &str = "1232100-00-E--TG123456789ABC";
const PWD: &str = "ABCDEFGHIJ";
/// base64("Tesla_Energy_Device:ABCDEFGHIJ")
const BASIC: &str = "Basic VGVzbGFfRW5lcmd5X0RldmljZTpBQkNERUZHSElK";
const FIXTURE_PIN: &str = "94:21:7C:D1:44:90:74:4A:4C:09:9C:86:42:01:38:24:F6:ED:66:2D:18:09:23:38:EB:D1:FF:A5:80:07:C7:BB";

// ---------------------------------------------------------------------------------------------
// A tiny HTTPS server
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Which TCP connection carried it (0, 1, …).
    conn: usize,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn message(&self) -> Message {
        Message::decode(&self.body).expect("client sent a valid protobuf")
    }
}

enum Action {
    Reply(u16, Vec<u8>),
    /// Accept the request and never answer (until the connection thread gives up).
    Hang,
    /// Close the connection without a reply.
    Close,
    /// Write these bytes as the whole reply, then close.
    Raw(Vec<u8>),
}

type Handler = dyn Fn(&Req) -> Action + Send + Sync;

struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    fn start(handler: impl Fn(&Req) -> Action + Send + Sync + 'static) -> Server {
        let config = tls::server_config_from_pem(
            include_bytes!("../src/sim/fixtures/certs/cert.pem"),
            include_bytes!("../src/sim/fixtures/certs/key.pem"),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let conns = Arc::new(AtomicUsize::new(0));
        let server_log = log.clone();
        thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, handler, log) = (config.clone(), handler.clone(), server_log.clone());
                let conn = conns.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || serve_connection(tcp, config, &*handler, &log, conn));
            }
        });
        Server { addr, log }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    fn options(&self) -> ClientOptions {
        let mut opts = ClientOptions::new(self.host(), PWD);
        opts.timeout = Duration::from_millis(800);
        opts
    }

    fn client(&self) -> Client {
        Client::new(self.options()).unwrap()
    }
}

fn serve_connection(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    handler: &Handler,
    log: &Mutex<Vec<Req>>,
    conn: usize,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(session) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut stream = BufReader::new(rustls::StreamOwned::new(session, tcp));
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = match (parts.next(), parts.next()) {
            (Some(m), Some(p)) => (m.to_string(), p.to_string()),
            _ => return,
        };
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if stream.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if stream.read_exact(&mut body).is_err() {
            return;
        }
        let req = Req {
            method,
            path,
            headers,
            body,
            conn,
        };
        log.lock().unwrap().push(req.clone());
        match handler(&req) {
            Action::Reply(status, body) => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                    body.len()
                );
                let out = stream.get_mut();
                if out.write_all(head.as_bytes()).is_err()
                    || out.write_all(&body).is_err()
                    || out.flush().is_err()
                {
                    return;
                }
            }
            Action::Hang => {
                thread::sleep(Duration::from_secs(3));
                return;
            }
            Action::Close => return,
            Action::Raw(bytes) => {
                let out = stream.get_mut();
                let _ = out.write_all(&bytes);
                let _ = out.flush();
                out.conn.send_close_notify();
                let _ = out.flush();
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Canned gateway answers
// ---------------------------------------------------------------------------------------------

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn query_text(req: &Req) -> String {
    match req.message().envelope.body {
        Body::Query(q) => String::from_utf8_lossy(&q.text().unwrap().1).into_owned(),
        other => panic!("not a query: {other:?}"),
    }
}

/// A PW2-ish gateway: the web portal, DIN, config, basic/full/components queries, system info.
fn gateway(req: &Req) -> Action {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => Action::Reply(200, b"<html>portal</html>".to_vec()),
        ("GET", "/tedapi/din") => Action::Reply(200, format!("{DIN}\n").into_bytes()),
        ("POST", "/tedapi/v1") => {
            let body = match req.message().envelope.body {
                Body::ReadFile { domain: 1, name } if name == "config.json" => {
                    Body::ReadFileResponse {
                        name,
                        blob: br#"{"vin": "1232100-00-E--TG123456789ABC", "site_info": {"site_name": "Home"}}"#.to_vec(),
                        hash: vec![9, 9],
                    }
                }
                Body::SystemInfoRequest => Body::SystemInfoResponse(SystemInfo {
                    part_number: "1232100-00-E".into(),
                    serial_number: "TG123456789ABC".into(),
                    din: DIN.into(),
                    version: "24.12.6 008bf6ff".into(),
                    githash: vec![0, 0x8b],
                    device_type: Some(4),
                }),
                Body::Query(_) => {
                    let text = query_text(req);
                    let data = if text.contains("ComponentsQuery") {
                        r#"{"components": {"pch": []}}"#
                    } else if text.contains("$msaComp") {
                        r#"{"control": {"full": true}}"#
                    } else {
                        r#"{"control": {"systemStatus": {"nominalEnergyRemainingWh": 1}}}"#
                    };
                    Body::QueryResponse {
                        status: 1,
                        data: data.into(),
                    }
                }
                other => panic!("unexpected request body {other:?}"),
            };
            Action::Reply(200, Message::reply(DIN, body).encode())
        }
        _ => Action::Reply(404, Vec::new()),
    }
}

// ---------------------------------------------------------------------------------------------
// TEDAPI
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trip_with_basic_auth_and_keep_alive() {
    let server = Server::start(gateway);
    let mut client = server.client();

    assert_eq!(client.detect_pw3(), Ok(false));
    assert_eq!(client.din().unwrap(), DIN);
    let config = client.config(DIN).unwrap();
    assert_eq!(
        config.to_py(),
        r#"{"vin": "1232100-00-E--TG123456789ABC", "site_info": {"site_name": "Home"}, "battery_blocks": []}"#
    );
    let status = client.status(DIN).unwrap();
    assert_eq!(
        status.path(&["control", "systemStatus", "nominalEnergyRemainingWh"]),
        Some(&1i64.into())
    );
    let controller = client.controller(DIN).unwrap();
    assert_eq!(controller.to_py(), r#"{"control": {"full": true}}"#);
    let fw = client.firmware(DIN).unwrap();
    assert_eq!(fw.version, "24.12.6 008bf6ff");
    assert_eq!(fw.device_type, Some(4));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 6);
    for r in &reqs {
        assert_eq!(
            r.header("Authorization"),
            Some(BASIC),
            "{} {}",
            r.method,
            r.path
        );
        if r.method == "POST" {
            assert_eq!(r.path, "/tedapi/v1");
            assert_eq!(r.header("Content-type"), Some("application/octet-string"));
            let m = r.message();
            assert_eq!(m.tail, 1);
            assert_eq!(m.envelope.sender, Some(Participant::Local(1)));
            assert_eq!(m.envelope.recipient, Some(Participant::Din(DIN.into())));
        }
    }
    // The exact stored query text is sent (the signature covers it).
    assert!(query_text(&reqs[3]).starts_with(" query DeviceControllerQuery {\n"));
    // Keep-alive: after the unread `GET /` reply, the rest share one connection.
    let later: Vec<usize> = reqs[1..].iter().map(|r| r.conn).collect();
    assert!(later.iter().all(|c| *c == later[0]), "{later:?}");
}

#[test]
fn gzip_bodies_are_inflated() {
    let server = Server::start(|req| match gateway(req) {
        Action::Reply(200, body) => Action::Reply(200, gzip(&body)),
        other => other,
    });
    let mut client = server.client();
    assert_eq!(client.din().unwrap(), DIN);
    assert_eq!(
        client
            .config(DIN)
            .unwrap()
            .get("battery_blocks")
            .map(|v| v.to_py()),
        Some("[]".into())
    );
    assert_eq!(client.firmware(DIN).unwrap().version, "24.12.6 008bf6ff");
}

#[test]
fn pw3_detection() {
    for (status, expect) in [
        (403, Ok(true)),
        (404, Ok(true)),
        (401, Ok(true)),
        (500, Err(Error::Http(500))),
    ] {
        let server = Server::start(move |_| Action::Reply(status, Vec::new()));
        assert_eq!(server.client().detect_pw3(), expect, "HTTP {status}");
    }
}

#[test]
fn status_errors_are_typed() {
    let server = Server::start(|req| match req.path.as_str() {
        "/tedapi/din" => Action::Reply(403, br#"{"code":403}"#.to_vec()),
        _ => Action::Reply(200, b"this is not protobuf \xff\xff\xff".to_vec()),
    });
    let mut client = server.client();
    assert_eq!(client.din(), Err(Error::Auth));
    assert!(matches!(client.status(DIN), Err(Error::BadReply(_))));
    assert!(matches!(client.config(DIN), Err(Error::BadReply(_))));
}

#[test]
fn truncated_and_malformed_http_replies_are_bad_replies() {
    let full = Message::reply(
        DIN,
        Body::QueryResponse {
            status: 1,
            data: "{}".into(),
        },
    )
    .encode();
    let mut cut = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", full.len()).into_bytes();
    cut.extend_from_slice(&full[..full.len() / 2]);
    let server = Server::start(move |_| Action::Raw(cut.clone()));
    assert!(matches!(
        server.client().status(DIN),
        Err(Error::BadReply(_))
    ));

    let server = Server::start(|_| Action::Raw(b"\x00\x01 not http at all\r\n\r\n".to_vec()));
    assert!(matches!(
        server.client().status(DIN),
        Err(Error::BadReply(_))
    ));
}

#[test]
fn rate_limit_starts_a_cooldown_without_further_requests() {
    let server = Server::start(|_| Action::Reply(429, Vec::new()));
    let mut client = server.client();
    assert_eq!(client.din(), Err(Error::Http(429)));
    let left = client.cooldown_remaining().expect("cooldown running");
    assert!(left > Duration::from_secs(290), "{left:?}");
    match client.status(DIN) {
        Err(Error::Cooldown { remaining }) => assert!(remaining <= left),
        other => panic!("{other:?}"),
    }
    assert!(matches!(client.detect_pw3(), Err(Error::Cooldown { .. })));
    assert_eq!(server.requests().len(), 1);

    // 503 too; a short cooldown ends and requests resume.
    let server = Server::start(|_| Action::Reply(503, Vec::new()));
    let mut client = server.client();
    client.set_cooldown_period(Duration::from_millis(100));
    assert_eq!(client.firmware(DIN), Err(Error::Http(503)));
    assert!(matches!(client.firmware(DIN), Err(Error::Cooldown { .. })));
    thread::sleep(Duration::from_millis(150));
    assert_eq!(client.cooldown_remaining(), None);
    assert_eq!(client.firmware(DIN), Err(Error::Http(503)));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn silent_gateway_times_out() {
    let server = Server::start(|_| Action::Hang);
    let mut opts = server.options();
    opts.timeout = Duration::from_millis(300);
    let mut client = Client::new(opts).unwrap();
    let started = Instant::now();
    assert_eq!(client.status(DIN), Err(Error::Timeout));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1000), "{took:?}");

    // A port that accepts TCP but never speaks TLS times out in the handshake.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut opts = ClientOptions::new(listener.local_addr().unwrap().to_string(), PWD);
    opts.timeout = Duration::from_millis(300);
    let started = Instant::now();
    assert_eq!(Client::new(opts).unwrap().din(), Err(Error::Timeout));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1000), "{took:?}");
    drop(listener);
}

#[test]
fn closed_connection_and_refused_port_are_unreachable() {
    let server = Server::start(|_| Action::Close);
    assert!(matches!(server.client().din(), Err(Error::Unreachable(_))));

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut opts = ClientOptions::new(format!("127.0.0.1:{port}"), PWD);
    opts.timeout = Duration::from_millis(500);
    match Client::new(opts).unwrap().din() {
        Err(e @ Error::Unreachable(_)) => assert!(!e.to_string().contains(PWD), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn certificate_pin() {
    let server = Server::start(gateway);
    let mut opts = server.options();
    opts.pin = Some([0x42; 32]);
    match Client::new(opts).unwrap().din() {
        Err(Error::Unreachable(why)) => assert!(why.contains("pin"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(server.requests().is_empty());

    let mut opts = server.options();
    opts.pin = Some(tls::parse_fingerprint(FIXTURE_PIN).unwrap());
    assert_eq!(Client::new(opts).unwrap().din().unwrap(), DIN);
}

#[test]
fn follower_routing() {
    const LEADER: &str = "1707000-11-J--TG12000000001Z";
    const FOLLOWER: &str = "1707000-11-J--TG12000000002Z";
    let server = Server::start(|req| {
        let expected = format!("/tedapi/device/{FOLLOWER}/v1");
        if req.path == "/tedapi/v1" || req.path == expected {
            gateway(&Req {
                path: "/tedapi/v1".into(),
                ..req.clone()
            })
        } else {
            Action::Reply(404, Vec::new())
        }
    });
    let mut client = server.client();
    let routed = client.components(FOLLOWER, Some(LEADER)).unwrap();
    assert_eq!(routed.to_py(), r#"{"components": {"pch": []}}"#);
    let local = client.components(FOLLOWER, None).unwrap();
    assert_eq!(local, routed);

    let reqs = server.requests();
    assert_eq!(reqs[0].path, format!("/tedapi/device/{FOLLOWER}/v1"));
    let m = reqs[0].message();
    assert_eq!(m.tail, 2);
    assert_eq!(m.envelope.sender, Some(Participant::Din(LEADER.into())));
    assert_eq!(
        m.envelope.recipient,
        Some(Participant::Din(FOLLOWER.into()))
    );
    assert!(query_text(&reqs[0]).contains("ComponentsQuery"));

    assert_eq!(reqs[1].path, "/tedapi/v1");
    let m = reqs[1].message();
    assert_eq!(m.tail, 1);
    assert_eq!(m.envelope.sender, Some(Participant::Local(1)));
    assert_eq!(
        m.envelope.recipient,
        Some(Participant::Din(FOLLOWER.into()))
    );
}

// ---------------------------------------------------------------------------------------------
// Native local API
// ---------------------------------------------------------------------------------------------

const AGGREGATES: &str = r#"{"site": {"energy_exported": 687.65, "energy_imported": 887602}, "battery": {}, "load": {}, "solar": {"energy_exported": 257720}}"#;

/// Login hands out tok1, tok2, …; aggregates need the newest token and answer `mode`.
struct NativeGateway {
    logins: usize,
    mode: u16,
}

fn native_server(state: Arc<Mutex<NativeGateway>>) -> Server {
    Server::start(move |req| {
        let mut st = state.lock().unwrap();
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/api/login/Basic") => {
                assert_eq!(
                    req.header("Content-Type"),
                    Some("application/x-www-form-urlencoded")
                );
                if req.body != b"username=customer&password=FGHIJ&email=nobody%40nowhere.com&clientInfo=timezone" {
                    return Action::Reply(401, Vec::new());
                }
                st.logins += 1;
                Action::Reply(
                    200,
                    format!(
                        r#"{{"email":"","firstname":"Tesla","token":"tok{}"}}"#,
                        st.logins
                    )
                    .into_bytes(),
                )
            }
            ("GET", "/api/meters/aggregates") => {
                let current = format!("Bearer tok{}", st.logins);
                if req.header("Authorization") != Some(current.as_str()) {
                    return Action::Reply(401, Vec::new());
                }
                match st.mode {
                    200 => Action::Reply(200, AGGREGATES.as_bytes().to_vec()),
                    0 => Action::Reply(200, br#"{"site": {}, "battery": {}}"#.to_vec()),
                    code => Action::Reply(code, Vec::new()),
                }
            }
            _ => Action::Reply(404, Vec::new()),
        }
    })
}

/// The fetcher as a TEDAPI source makes it: on the client's agent.
fn native_for(server: &Server) -> Native {
    let opts = server.options();
    let client = Client::new(opts.clone()).expect("client");
    Native::new(&opts, client.agent().clone()).expect("native")
}

fn count(server: &Server, path: &str) -> usize {
    server.requests().iter().filter(|r| r.path == path).count()
}

#[test]
fn native_login_token_reuse_and_relogin() {
    let state = Arc::new(Mutex::new(NativeGateway {
        logins: 0,
        mode: 200,
    }));
    let server = native_server(state.clone());
    let mut native = native_for(&server);
    assert!(native.available());
    let t0 = Instant::now();

    let v = native.fetch_aggregates(t0).expect("aggregates");
    assert_eq!(v.to_py(), AGGREGATES);
    assert!(native
        .fetch_aggregates(t0 + Duration::from_secs(5))
        .is_some());
    assert_eq!(count(&server, "/api/login/Basic"), 1, "token reused");

    // The gateway forgets the token: one 401, one new login, then success.
    state.lock().unwrap().logins += 10;
    assert!(native
        .fetch_aggregates(t0 + Duration::from_secs(10))
        .is_some());
    assert_eq!(count(&server, "/api/login/Basic"), 2);
    assert_eq!(count(&server, "/api/meters/aggregates"), 4);

    // After the token lifetime a fresh login happens before the read.
    let later = t0 + Duration::from_secs(10) + TOKEN_TTL + Duration::from_secs(1);
    assert!(native.fetch_aggregates(later).is_some());
    assert_eq!(count(&server, "/api/login/Basic"), 3);
    assert_eq!(count(&server, "/api/meters/aggregates"), 5);

    for r in server.requests() {
        match r.method.as_str() {
            "GET" => assert!(r.header("Authorization").unwrap().starts_with("Bearer tok")),
            _ => assert_eq!(r.header("Authorization"), None),
        }
    }
}

#[test]
fn native_failure_backs_off_and_serves_last_good() {
    let state = Arc::new(Mutex::new(NativeGateway {
        logins: 0,
        mode: 200,
    }));
    let server = native_server(state.clone());
    let mut native = native_for(&server);
    let t0 = Instant::now();
    let good = native.fetch_aggregates(t0).expect("aggregates");

    // The endpoint disappears: this call fails, then the last good answer is served with no
    // traffic until the back-off ends.
    state.lock().unwrap().mode = 404;
    assert_eq!(native.fetch_aggregates(t0 + Duration::from_secs(5)), None);
    let seen = server.requests().len();
    assert_eq!(
        native.fetch_aggregates(t0 + Duration::from_secs(6)),
        Some(good.clone())
    );
    assert_eq!(
        native.fetch_aggregates(
            t0 + Duration::from_secs(5) + FAIL_BACKOFF - Duration::from_millis(1)
        ),
        Some(good.clone())
    );
    assert_eq!(server.requests().len(), seen);

    // An answer without the four sections is also a failure.
    state.lock().unwrap().mode = 0;
    let after = t0 + Duration::from_secs(5) + FAIL_BACKOFF;
    assert_eq!(native.fetch_aggregates(after), None);
    assert_eq!(server.requests().len(), seen + 1);

    // Recovery after the next back-off.
    state.lock().unwrap().mode = 200;
    assert_eq!(native.fetch_aggregates(after + FAIL_BACKOFF), Some(good));
}

#[test]
fn native_never_logged_in_gateway_gives_none() {
    // A PW3 fixture gateway answers neither login nor aggregates.
    let server = Server::start(|_| Action::Reply(404, Vec::new()));
    let mut native = native_for(&server);
    let t0 = Instant::now();
    assert_eq!(native.fetch_aggregates(t0), None);
    assert_eq!(native.fetch_aggregates(t0 + Duration::from_secs(1)), None);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(native.blocked_until(), Some(t0 + FAIL_BACKOFF));
}
