//! Sockets, threads, routing, fault injection and request counters.
//!
//! One accept thread hands each TLS connection to its own thread, up to [`MAX_CONNECTIONS`] (or `--max-connections`)
//! at once (more are closed at once, like an overloaded gateway). Sockets have a short read
//! timeout so every thread notices [`SimHandle::stop`] promptly, slow or dead clients are cut
//! off (see [`LIMITS`]), and stop shuts all live sockets down before it returns.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::{ServerConnection, StreamOwned};

use super::data::{self, Site};
use super::faults::Fault;
use super::faults::{apply_fault, with_retry_after};
use super::http::{self, Limits, ReadError, Request, Response};
use super::knobs::{self, Stats};
use super::model::Model;
use super::tedapi::{self, Kind};
use super::SimOptions;
use crate::wire::tls;

/// Connections served at the same time.
pub const MAX_CONNECTIONS: usize = 64;
/// Socket read timeout: how often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `timeout` fault keeps a connection open without answering.
const HANG_MAX: Duration = Duration::from_secs(300);

pub const LIMITS: Limits = Limits {
    max_head: 16 * 1024,
    max_body: 1024 * 1024,
    idle: Duration::from_secs(30),
    request: Duration::from_secs(15),
};

pub(super) struct State {
    pub(super) model: Model,
    pub(super) fault: Fault,
    /// `Some(n)`: the fault applies to the next `n` `/tedapi/*` requests only.
    pub(super) fault_left: Option<u64>,
    /// Seconds added to the wall clock (`/test/advance/<s>`), so tests can jump to the night.
    pub(super) clock_offset: f64,
    /// The fault injected into local `/api/*` GETs (not the login), and its countdown.
    pub(super) local_fault: Fault,
    pub(super) local_fault_left: Option<u64>,
    /// `/api/devices/vitals` answers (false: 404, as firmware 23.44+).
    pub(super) vitals: bool,
    /// `Retry-After` value sent with the 429/503 faults (`/test/retry-after/<value>`), as sent,
    /// so tests can also send absurd values.
    pub(super) retry_after: Option<String>,
    /// v1r: signed messages are answered "authorization not verified" (`/test/v1r/pending`).
    pub(super) v1r_pending: bool,
    /// v1r: the login generation; its token is the only Bearer accepted (`/test/v1r/logout`).
    pub(super) v1r_token: u64,
    /// v1r: config writes and island-mode commands are refused (`/test/v1r/refuse-writes`).
    pub(super) v1r_refuse_writes: bool,
}

impl State {
    pub(super) fn now(&self) -> f64 {
        now() + self.clock_offset
    }

    /// Moves the model to the (possibly advanced) present.
    pub(super) fn catch_up(&mut self) {
        let t = self.now();
        self.model.advance(t);
    }

    /// The fault for one `/tedapi/*` request, counting down a `fail_next`.
    pub(super) fn take_fault(&mut self) -> Fault {
        let fault = self.fault;
        if let Some(left) = self.fault_left.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.fault = Fault::None;
                self.fault_left = None;
            }
        }
        fault
    }

    pub(super) fn set_fault(&mut self, fault: Fault, count: Option<u64>) {
        self.fault = fault;
        self.fault_left = count.filter(|_| fault != Fault::None);
    }

    /// The fault for one local `/api/*` GET, counting down.
    pub(super) fn take_local_fault(&mut self) -> Fault {
        let fault = self.local_fault;
        if let Some(left) = self.local_fault_left.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.local_fault = Fault::None;
                self.local_fault_left = None;
            }
        }
        fault
    }

    pub(super) fn set_local_fault(&mut self, fault: Fault, count: Option<u64>) {
        self.local_fault = fault;
        self.local_fault_left = count.filter(|_| fault != Fault::None);
    }
}

pub(super) struct Shared {
    pub(super) site: Site,
    pub(super) frozen: bool,
    /// Connections served at once (`SimOptions::max_connections`).
    pub(super) max_connections: usize,
    pub(super) gw_auth: Option<String>,
    /// The customer password the local login accepts (`None`: any).
    pub(super) customer: Option<String>,
    pub(super) gzip: bool,
    /// v1r: the registered public key signed messages are verified against.
    #[cfg(feature = "v1r")]
    v1r: Option<super::v1r::V1rGate>,
    pub(super) tls: Arc<rustls::ServerConfig>,
    pub(super) state: Mutex<State>,
    pub(super) counters: [AtomicUsize; Kind::ALL.len()],
    pub(super) total: AtomicUsize,
    pub(super) stop: AtomicBool,
    pub(super) active: AtomicUsize,
    pub(super) next_id: AtomicUsize,
    pub(super) conns: Mutex<HashMap<u64, TcpStream>>,
}

/// A running simulator; stops when dropped.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://<addr>`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The gateway DIN.
    pub fn din(&self) -> &'static str {
        self.shared.site.din
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// TLS connections accepted so far (refused ones over the cap not counted).
    pub fn connections_accepted(&self) -> usize {
        self.shared.next_id.load(Ordering::Relaxed)
    }

    /// Injects `fault` into every `/tedapi/*` answer until it is set back to [`Fault::None`].
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().set_fault(fault, None);
    }

    /// Injects `fault` into the next `n` `/tedapi/*` answers only.
    pub fn fail_next(&self, fault: Fault, n: u64) {
        self.shared.lock().set_fault(fault, Some(n));
    }

    /// Injects `fault` into every local `/api/*` GET (not the login) until set back to
    /// [`Fault::None`].
    pub fn set_local_fault(&self, fault: Fault) {
        self.shared.lock().set_local_fault(fault, None);
    }

    /// Injects `fault` into the next `n` local `/api/*` GETs only.
    pub fn fail_local_next(&self, fault: Fault, n: u64) {
        self.shared.lock().set_local_fault(fault, Some(n));
    }

    /// Whether `/api/devices/vitals` answers (false: 404, as firmware 23.44+).
    pub fn set_vitals(&self, on: bool) {
        self.shared.lock().vitals = on;
    }

    /// Sends `Retry-After: <value>` with the 429/503 faults (`None`: no header).
    pub fn set_retry_after(&self, value: Option<&str>) {
        self.shared.lock().retry_after = value.map(str::to_string);
    }

    /// v1r: answer signed messages "authorization not verified" (key pending verification).
    pub fn set_v1r_pending(&self, on: bool) {
        self.shared.lock().v1r_pending = on;
    }

    /// v1r: refuse config writes and island-mode commands (a common `errorResponse`).
    pub fn set_v1r_refuse_writes(&self, on: bool) {
        self.shared.lock().v1r_refuse_writes = on;
    }

    /// v1r: invalidate the current Bearer token (the client has to log in again).
    pub fn expire_v1r_token(&self) {
        self.shared.lock().v1r_token += 1;
    }

    /// Moves the simulated clock forward (the model catches up on the next request; a frozen
    /// model does not move).
    pub fn advance_clock(&self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            self.shared.lock().clock_offset += seconds;
        }
    }

    /// Stops accepting, closes every connection, waits (briefly) for the threads to finish.
    pub fn stop(&mut self) {
        if self.shared.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept().
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let woke = TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok();
        if let Some(t) = self.accept.take() {
            // Without the wake-up connection accept() may block on: leave that thread, it
            // exits at its next connection.
            if woke {
                let _ = t.join();
            }
        }
        for (_, s) in self
            .shared
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            let _ = s.shutdown(Shutdown::Both);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.shared.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn start(opts: SimOptions) -> Result<SimHandle, String> {
    let site = Site::load(opts.fixture)?;
    let cert = opts.cert_pem.as_deref().unwrap_or(data::CERT_PEM);
    let key = opts.key_pem.as_deref().unwrap_or(data::KEY_PEM);
    let tls = tls::server_config_from_pem(cert, key)?;
    let listener =
        TcpListener::bind(opts.listen).map_err(|e| format!("sim: bind {}: {e}", opts.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let model = Model::new(&site, opts.frozen, now());
    #[cfg(feature = "v1r")]
    let v1r = match &opts.v1r_public_key {
        Some(der) => Some(super::v1r::V1rGate::new(der)?),
        None => None,
    };
    #[cfg(not(feature = "v1r"))]
    if opts.v1r_public_key.is_some() {
        return Err("sim: this build has no v1r support (cargo feature `v1r`)".into());
    }
    let shared = Arc::new(Shared {
        site,
        frozen: opts.frozen,
        max_connections: opts.max_connections.max(1),
        gw_auth: opts
            .gw_pwd
            .as_ref()
            .map(|p| crate::wire::base64(format!("Tesla_Energy_Device:{p}").as_bytes())),
        customer: super::local::customer_password(opts.password.as_deref(), opts.gw_pwd.as_deref()),
        gzip: opts.gzip,
        #[cfg(feature = "v1r")]
        v1r,
        tls,
        state: Mutex::new(State {
            model,
            fault: Fault::None,
            fault_left: None,
            clock_offset: 0.0,
            local_fault: Fault::None,
            local_fault_left: None,
            retry_after: None,
            vitals: true,
            v1r_pending: false,
            v1r_token: 0,
            v1r_refuse_writes: false,
        }),
        counters: Default::default(),
        total: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        active: AtomicUsize::new(0),
        next_id: AtomicUsize::new(0),
        conns: Mutex::new(HashMap::new()),
    });
    let accept_shared = shared.clone();
    let accept = std::thread::Builder::new()
        .name("sim-accept".into())
        .spawn(move || accept_loop(listener, accept_shared))
        .map_err(|e| format!("sim: spawning the accept thread: {e}"))?;
    Ok(SimHandle {
        addr,
        shared,
        accept: Some(accept),
    })
}

pub(super) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn count(&self, kind: Kind) {
        if let Some(i) = Kind::ALL.iter().position(|k| *k == kind) {
            self.counters[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn stats(&self) -> Stats {
        let c = |k: Kind| {
            Kind::ALL
                .iter()
                .position(|x| *x == k)
                .map_or(0, |i| self.counters[i].load(Ordering::Relaxed) as u64)
        };
        Stats {
            din: c(Kind::Din),
            config: c(Kind::Config),
            status: c(Kind::Status),
            controller: c(Kind::Controller),
            components: c(Kind::Components),
            firmware: c(Kind::Firmware),
            device_routed: c(Kind::DeviceRouted),
            login: c(Kind::Login),
            api: c(Kind::Api),
            other: c(Kind::Other),
            write: c(Kind::Write),
            total: self.total.load(Ordering::Relaxed) as u64,
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let tcp = match conn {
            Ok(t) => t,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log::warn!("sim: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if shared.active.load(Ordering::SeqCst) >= shared.max_connections {
            log::warn!(
                "sim: {} connections busy, dropping one",
                shared.max_connections
            );
            continue;
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed) as u64;
        match tcp.try_clone() {
            Ok(clone) => {
                shared
                    .conns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, clone);
            }
            Err(_) => continue,
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        let conn_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("sim-conn".into())
            .spawn(move || {
                let _guard = ConnGuard {
                    shared: conn_shared.clone(),
                    id,
                };
                serve(&conn_shared, tcp);
            });
        if spawned.is_err() {
            // The closure (and with it the guard) never ran: undo its bookkeeping.
            shared.active.fetch_sub(1, Ordering::SeqCst);
            shared
                .conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
    }
}

/// Unregisters a connection however its thread ends.
struct ConnGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What to do with a request.
pub(super) enum Action {
    Respond(Response),
    /// Never answer.
    Hang,
    /// Drop the connection without an answer.
    Close,
    /// Announce the full length, send half the body, close.
    HalfBody(Response),
}

type Tls = StreamOwned<ServerConnection, TcpStream>;

fn serve(shared: &Shared, tcp: TcpStream) {
    let setup = tcp
        .set_read_timeout(Some(POLL))
        .and_then(|_| tcp.set_write_timeout(Some(WRITE_TIMEOUT)))
        .and_then(|_| tcp.set_nodelay(true));
    if setup.is_err() {
        return;
    }
    let Ok(conn) = ServerConnection::new(shared.tls.clone()) else {
        return;
    };
    let mut stream = StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    loop {
        let req = match http::read_request(&mut stream, &mut buf, &LIMITS, &shared.stop) {
            Ok(r) => r,
            Err(ReadError::Bad(status)) => {
                let resp = Response::text(status, "Bad request");
                let _ = http::write_response(&mut stream, &resp, false);
                break;
            }
            Err(ReadError::TimedOut) => {
                let _ = http::write_response(&mut stream, &Response::text(400, "Timeout"), false);
                break;
            }
            Err(ReadError::Io(e)) => {
                log::debug!("sim: connection error: {e}");
                break;
            }
            Err(ReadError::Closed | ReadError::Stopped) => break,
        };
        log::debug!("sim: {} {}", req.method, req.target);
        match route(shared, &req) {
            Action::Respond(resp) => {
                if http::write_response(&mut stream, &resp, req.keep_alive).is_err()
                    || !req.keep_alive
                {
                    break;
                }
            }
            Action::Hang => {
                hang(&mut stream, &shared.stop);
                return drop_now(stream);
            }
            Action::Close => return drop_now(stream),
            Action::HalfBody(resp) => {
                let mut out = resp.head(resp.body.len(), false);
                out.extend_from_slice(&resp.body[..resp.body.len() / 2]);
                let _ = stream.write_all(&out).and_then(|_| stream.flush());
                return drop_now(stream);
            }
        }
    }
    stream.conn.send_close_notify();
    let _ = stream.flush();
    let _ = stream.sock.shutdown(Shutdown::Both);
}

/// Closes the TCP connection without a TLS close_notify.
fn drop_now(stream: Tls) {
    let _ = stream.sock.shutdown(Shutdown::Both);
}

/// Holds a connection without answering until the client leaves, the server stops or
/// [`HANG_MAX`] passes.
fn hang(stream: &mut Tls, stop: &AtomicBool) {
    let start = Instant::now();
    let mut scratch = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) && start.elapsed() < HANG_MAX {
        match stream.sock.read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if http::is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}

fn route(shared: &Shared, req: &Request) -> Action {
    if req.path == "/test" || req.path.starts_with("/test/") {
        return Action::Respond(cors(knobs::test_route(shared, req)));
    }
    shared.total.fetch_add(1, Ordering::Relaxed);
    if req.method == "OPTIONS" {
        shared.count(Kind::Other);
        return Action::Respond(cors(Response::new(200, "text/plain", Vec::new())));
    }
    if req.path.starts_with("/tedapi/") {
        return tedapi_route(shared, req);
    }
    #[cfg(feature = "v1r")]
    if shared.v1r.is_some()
        && shared.site.fixture == super::Fixture::Pw3
        && req.method == "POST"
        && req.path == "/api/login/Basic"
    {
        shared.count(Kind::Login);
        let generation = shared.lock().v1r_token;
        return Action::Respond(super::v1r::login(
            req,
            shared.customer.as_deref(),
            generation,
        ));
    }
    let api_get = req.method == "GET" && req.path.starts_with("/api/");
    let (model, fault, vitals, retry_after) = {
        let mut state = shared.lock();
        state.catch_up();
        let fault = if api_get {
            state.take_local_fault()
        } else {
            Fault::None
        };
        (
            state.model.clone(),
            fault,
            state.vitals,
            state.retry_after.clone(),
        )
    };
    let (kind, resp) = super::local::route(
        &shared.site,
        &model,
        req,
        shared.customer.as_deref(),
        vitals,
    );
    shared.count(kind);
    let resp = match fault {
        // Local answers are JSON themselves: `badjson` cuts the body in half.
        Fault::BadJson if resp.status == 200 => {
            let mut r = resp;
            r.body.truncate(r.body.len() / 2);
            r
        }
        _ => resp,
    };
    with_retry_after(apply_fault(fault, resp, false), retry_after.as_deref())
}

fn tedapi_route(shared: &Shared, req: &Request) -> Action {
    let site = &shared.site;
    let (fault, model, now, pending, generation, retry_after, refuse) = {
        let mut state = shared.lock();
        state.catch_up();
        (
            state.take_fault(),
            state.model.clone(),
            state.now(),
            state.v1r_pending,
            state.v1r_token,
            state.retry_after.clone(),
            state.v1r_refuse_writes,
        )
    };
    let _ = refuse;
    let _ = (now, pending);
    #[cfg(feature = "v1r")]
    let v1r_gate = shared.v1r.as_ref();
    #[cfg(not(feature = "v1r"))]
    let v1r_gate: Option<&()> = None;
    let authorized = match &shared.gw_auth {
        None => true,
        Some(expected) => req
            .header("Authorization")
            .is_some_and(|h| basic_matches(h, expected)),
    } || (v1r_gate.is_some()
        && (req.path == "/tedapi/v1r"
            || super::v1r_bearer_ok(req.header("Authorization"), generation)));
    let device = req
        .path
        .strip_prefix("/tedapi/device/")
        .and_then(|rest| rest.strip_suffix("/v1"));
    let (kind, resp) = match (req.method.as_str(), req.path.as_str(), device) {
        ("GET", "/tedapi/din", _) => (Kind::Din, tedapi::din(site)),
        #[cfg(feature = "v1r")]
        ("POST", "/tedapi/v1r", _) if v1r_gate.is_some() => match v1r_gate {
            Some(gate) => {
                let mut written = model.clone();
                let answer = super::v1r::post(
                    gate,
                    site,
                    &mut written,
                    &req.body,
                    now,
                    pending,
                    fault == Fault::BadJson,
                    refuse,
                );
                // A write changed the site: keep it (config.json and the grid contactor).
                if written.config != model.config || written.grid_up != model.grid_up {
                    let mut state = shared.lock();
                    state.model.config = written.config.clone();
                    state.model.set_grid(written.grid_up);
                    state.model.write_reserve_from(&written);
                }
                answer
            }
            None => (Kind::Other, Response::json(404, "")),
        },
        ("POST", "/tedapi/v1", _) => {
            tedapi::post(site, &model, &req.body, None, fault == Fault::BadJson)
        }
        ("POST", _, Some(din)) => {
            shared.count(Kind::DeviceRouted);
            if site.components_of(din).is_some() {
                tedapi::post(site, &model, &req.body, Some(din), fault == Fault::BadJson)
            } else {
                (
                    Kind::Other,
                    Response::json(
                        404,
                        r#"{"code":404,"error":"Not Found","message":"Unknown device"}"#,
                    ),
                )
            }
        }
        _ => (Kind::Other, Response::json(404, "")),
    };
    shared.count(kind);
    let resp = if authorized {
        resp
    } else {
        Response::json(403, data::ACCESS_DENIED_JSON)
    };
    with_retry_after(
        apply_fault(fault, resp, shared.gzip),
        retry_after.as_deref(),
    )
}

/// Whether an `Authorization` header is `Basic <credentials>` (scheme case-insensitive).
fn basic_matches(header: &str, credentials: &str) -> bool {
    header.trim().split_once(' ').is_some_and(|(scheme, cred)| {
        scheme.eq_ignore_ascii_case("basic") && cred.trim() == credentials
    })
}

fn cors(resp: Response) -> Response {
    resp.with_header("Access-Control-Allow-Origin", "*")
        .with_header("Access-Control-Allow-Methods", "GET,POST,OPTIONS")
        .with_header("Access-Control-Allow-Headers", "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_stats_render() {
        for f in Fault::ALL {
            assert_eq!(Fault::parse(f.name()), Some(f));
        }
        let s = Stats {
            status: 2,
            total: 3,
            ..Stats::default()
        };
        assert_eq!(
            s.to_json(),
            r#"{"din":0,"config":0,"status":2,"controller":0,"components":0,"firmware":0,"device_routed":0,"login":0,"api":0,"other":0,"write":0,"total":3}"#
        );
    }

    #[test]
    fn basic_auth_comparison() {
        let want = "dXNlcjpwdw==";
        assert!(basic_matches("basic dXNlcjpwdw==", want));
        assert!(!basic_matches("Bearer dXNlcjpwdw==", want));
        assert!(!basic_matches("Basic eA==", want));
        assert!(!basic_matches("", want));
    }
}
