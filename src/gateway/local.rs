//! Local mode: the PW2/PW+ customer REST API (spec `gateway-protocols.md` §4), and the `auto`
//! mode that tries TEDAPI first and falls back to it.
//!
//! The rules are pypowerwall 0.22.2's `PyPowerwallLocal.poll()`:
//! * `POST /api/login/Basic`, form-encoded
//!   `username=customer&password=<pw>&email=<email>&clientInfo=timezone`; cookie mode keeps the
//!   `AuthCookie` and `UserRecord` cookies, token mode the JSON `token` (sent as `Bearer`);
//! * a 401/403 on a GET logs in again and retries once; a second 401/403 caches the URI as
//!   failed for 600 s;
//! * 404 → failed for 600 s (on `/api/devices/vitals` it also switches vitals off for good once
//!   the firmware version parses); 503 → failed for 300 s; 429 → every request pauses for 5
//!   minutes; other 4xx/5xx, an empty body or bad JSON → `None` for this tick only;
//! * `Content-Type` containing `application/json` is parsed, anything else kept as text;
//!   `/api/devices/vitals` is read as bytes.
//!
//! What differs, by design: the poller, not a client request, drives the fetches. Each tick
//! reads the URIs the proxy's routes need (aggregates, SOE, grid status, system status,
//! operation, status, vitals; `/api/solar_powerwall` when there are no vitals); the other
//! allowlisted URIs are re-read once a minute. A transport failure (refused, timed out) or a
//! refused login fails the tick, so the poller serves last-good data and then the failure
//! bodies. The session lives in memory only (no `.powerwall` cache file is written).
//!
//! Hybrid mode (the reference's rule: host `192.168.91.1[:443]` with both passwords): vitals
//! and everything built on them come from an embedded TEDAPI source.
//!
//! Secrets: the password, cookies and token never reach a log, an error or `Debug` output. The
//! [`Forwarder`] shares the session with the HTTP fallback branch (the proxy forwards non-`/api`
//! paths to the gateway with its login); it never forwards `/api/*`.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::facade::{Facade, TedapiRaw};
use super::map::{self, LocalData};
use super::native::form_encode;
use super::source::{Source, Tedapi};
use super::tedapi::{self, Error};
use crate::config::{AuthMode, GatewayConfig, Mode};
use crate::json::{self, Value};
use crate::secret::Secret;

/// How long a 404 (or a 401/403 after a fresh login) keeps a URI from being asked again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(600);
/// How long a 503 keeps a URI from being asked again.
pub const UNAVAILABLE_TTL: Duration = Duration::from_secs(300);
/// The global pause after HTTP 429.
pub const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(300);
/// How often the slowly changing allowlisted URIs are re-read.
const SLOW_REFRESH: Duration = Duration::from_secs(60);
/// Largest body read from the gateway.
const MAX_BODY: usize = 4 << 20;

pub const VITALS: &str = "/api/devices/vitals";
const SOLAR_POWERWALL: &str = "/api/solar_powerwall";

/// Read every tick: what the proxy's metric routes are built from.
const FAST: &[&str] = &[
    "/api/status",
    "/api/meters/aggregates",
    "/api/system_status/soe",
    "/api/system_status/grid_status",
    "/api/system_status",
    "/api/operation",
];

/// The other gateway URIs the proxy passes through, read once a minute. (The proxy answers
/// `/api/customer/registration` and `/api/troubleshooting/problems` itself.)
const SLOW: &[&str] = &[
    "/api/site_info/site_name",
    "/api/meters/site",
    "/api/meters/solar",
    "/api/sitemaster",
    "/api/powerwalls",
    "/api/system/update/status",
    "/api/site_info",
    "/api/system_status/grid_faults",
    "/api/site_info/grid_codes",
    "/api/solars",
    "/api/solars/brands",
    "/api/customer",
    "/api/meters",
    "/api/installer",
    "/api/networks",
    "/api/system/networks",
    "/api/meters/readings",
    "/api/synchrometer/ct_voltage_references",
    "/api/auth/toggle/supported",
    SOLAR_POWERWALL,
];

/// The gateway's Wi-Fi address, where the reference attaches TEDAPI in hybrid mode.
/// Whether a gateway with both passwords runs hybrid (the reference's host rule, kept in
/// `config` with the other rules of what a setting means).
pub use crate::config::hybrid_host;

/// The login credential sent with every request.
#[derive(Clone, PartialEq)]
enum Auth {
    /// `Cookie: AuthCookie=…; UserRecord=…`.
    Cookie(String),
    /// `Authorization: Bearer …`.
    Bearer(String),
}

impl Auth {
    fn header(&self) -> (&'static str, String) {
        match self {
            Auth::Cookie(c) => ("Cookie", c.clone()),
            Auth::Bearer(t) => ("Authorization", format!("Bearer {t}")),
        }
    }
}

/// What one GET gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// Parsed JSON, or `Value::Str` for a non-JSON answer.
    Value(Value),
    /// Raw bytes (`/api/devices/vitals`).
    Bytes(Vec<u8>),
    /// What the library returns as `None`.
    None,
}

/// Settings of a local client.
#[derive(Clone)]
pub struct LocalOptions {
    pub host: String,
    pub password: Secret,
    pub email: String,
    pub auth_mode: AuthMode,
    pub timeout: Duration,
    pub pin: Option<super::tls::Fingerprint>,
}

impl fmt::Debug for LocalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalOptions")
            .field("host", &self.host)
            .field("password", &"<redacted>")
            .field("auth_mode", &self.auth_mode)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A blocking client of the customer REST API. Owned by the poller thread.
pub struct LocalClient {
    agent: ureq::Agent,
    base: String,
    opts: LocalOptions,
    auth: Option<Auth>,
    /// URI → no request before this instant (the library's negative cache).
    negative: HashMap<String, Instant>,
    pause_until: Option<Instant>,
    pause: Duration,
    vitals_api: bool,
    last_version: Option<String>,
    forwarder: Arc<Forwarder>,
}

impl fmt::Debug for LocalClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalClient")
            .field("base", &self.base)
            .field("logged_in", &self.auth.is_some())
            .field("pause_until", &self.pause_until)
            .field("vitals_api", &self.vitals_api)
            .finish_non_exhaustive()
    }
}

impl LocalClient {
    /// Builds the agent; no network traffic.
    pub fn new(opts: LocalOptions) -> Result<LocalClient, Error> {
        let base = tedapi::base_url(&opts.host)?;
        let agent = tedapi::agent(opts.timeout, opts.pin);
        let forwarder = Arc::new(Forwarder::new(
            forward_agent(opts.timeout, opts.pin),
            base.clone(),
        ));
        Ok(LocalClient {
            agent,
            base,
            opts,
            auth: None,
            negative: HashMap::new(),
            pause_until: None,
            pause: RATE_LIMIT_PAUSE,
            vitals_api: true,
            last_version: None,
            forwarder,
        })
    }

    /// Changes the 429 pause (default [`RATE_LIMIT_PAUSE`]); for tests.
    pub fn set_pause(&mut self, pause: Duration) {
        self.pause = pause;
    }

    /// Time left of a 429 pause.
    pub fn pause_remaining(&self) -> Option<Duration> {
        let left = self.pause_until?.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Whether `/api/devices/vitals` is still asked for.
    pub fn vitals_api(&self) -> bool {
        self.vitals_api
    }

    /// Whether a login session is held.
    pub fn logged_in(&self) -> bool {
        self.auth.is_some()
    }

    /// The session shared with the HTTP fallback branch.
    pub fn forwarder(&self) -> Arc<Forwarder> {
        self.forwarder.clone()
    }

    /// `POST /api/login/Basic`. A refused login (401/403) is [`Error::Auth`].
    pub fn login(&mut self) -> Result<(), Error> {
        self.auth = None;
        self.forwarder.set(None);
        let body = format!(
            "username=customer&password={}&email={}&clientInfo=timezone",
            form_encode(self.opts.password.expose()),
            form_encode(&self.opts.email)
        );
        let result = self
            .agent
            .post(&format!("{}/api/login/Basic", self.base))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&body);
        let (status, response) = tedapi::call(result)?;
        let auth = match self.opts.auth_mode {
            AuthMode::Cookie => {
                let mut auth_cookie = None;
                let mut user_record = None;
                for line in response.all("set-cookie") {
                    let pair = line.split(';').next().unwrap_or("").trim();
                    match pair.split_once('=') {
                        Some(("AuthCookie", v)) => auth_cookie = Some(v.to_string()),
                        Some(("UserRecord", v)) => user_record = Some(v.to_string()),
                        _ => {}
                    }
                }
                let _ = tedapi::read_body(response);
                match (auth_cookie, user_record) {
                    (Some(a), Some(u)) if header_safe(&a) && header_safe(&u) => {
                        Some(Auth::Cookie(format!("AuthCookie={a}; UserRecord={u}")))
                    }
                    _ => None,
                }
            }
            AuthMode::Token => tedapi::read_body(response)
                .ok()
                .and_then(|b| json::parse_bytes(&b).ok())
                .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
                .filter(|t| !t.is_empty() && header_safe(t))
                .map(Auth::Bearer),
        };
        match auth {
            Some(a) => {
                log::debug!("local API: customer login ok (HTTP {status})");
                self.forwarder.set(Some(a.clone()));
                self.auth = Some(a);
                Ok(())
            }
            None if status == 401 || status == 403 => {
                log::warn!(
                    "local API: the gateway refused the customer login (HTTP {status}): check \
                     the customer password"
                );
                Err(Error::Auth)
            }
            None if status != 200 => Err(Error::Http(status)),
            None => Err(Error::BadReply(format!(
                "login answer has no {}",
                match self.opts.auth_mode {
                    AuthMode::Cookie => "AuthCookie/UserRecord cookies",
                    AuthMode::Token => "token",
                }
            ))),
        }
    }

    /// `poll(uri)`. `Err` only for a transport failure, a refused login or a 429 pause.
    pub fn get(&mut self, uri: &str) -> Result<Fetched, Error> {
        let now = Instant::now();
        if let Some(remaining) = self.pause_remaining() {
            return Err(Error::Cooldown { remaining });
        }
        self.pause_until = None;
        if self.negative.get(uri).is_some_and(|until| now < *until) {
            return Ok(Fetched::None);
        }
        self.negative.remove(uri);
        let raw = uri == VITALS;
        if raw && !self.vitals_api {
            return Ok(Fetched::None);
        }
        if self.auth.is_none() {
            self.login()?;
        }
        for attempt in 1..=2 {
            let mut request = self.agent.get(&format!("{}{uri}", self.base));
            if let Some(a) = &self.auth {
                let (k, v) = a.header();
                request = request.set(k, &v);
            }
            let (status, response) = tedapi::call(request.call())?;
            match status {
                200..=299 => {}
                401 | 403 if attempt == 1 => {
                    let _ = tedapi::read_body(response);
                    log::debug!("local API {uri}: HTTP {status}, logging in again");
                    self.login()?;
                    continue;
                }
                401 | 403 | 404 => {
                    log::warn!(
                        "local API {uri}: HTTP {status}; not asking again for {} s",
                        NEGATIVE_TTL.as_secs()
                    );
                    if status == 404 && raw {
                        let parses = self
                            .last_version
                            .as_deref()
                            .and_then(super::parse_version)
                            .is_some_and(|v| v >= 23440);
                        if parses {
                            log::info!("local API: firmware without {VITALS}; vitals switched off");
                            self.vitals_api = false;
                        }
                    }
                    self.negative.insert(uri.to_string(), now + NEGATIVE_TTL);
                    return Ok(Fetched::None);
                }
                429 => {
                    let pause =
                        tedapi::retry_after(response.header("retry-after")).unwrap_or(self.pause);
                    log::error!(
                        "local API {uri}: HTTP 429 (rate limited); pausing all requests for {} s",
                        pause.as_secs()
                    );
                    self.pause_until = Some(now + pause);
                    return Err(Error::Http(429));
                }
                503 => {
                    let ttl = tedapi::retry_after(response.header("retry-after"))
                        .unwrap_or(UNAVAILABLE_TTL);
                    log::warn!(
                        "local API {uri}: HTTP 503; not asking again for {} s",
                        ttl.as_secs()
                    );
                    self.negative.insert(uri.to_string(), now + ttl);
                    return Ok(Fetched::None);
                }
                _ => {
                    log::debug!("local API {uri}: HTTP {status}");
                    return Ok(Fetched::None);
                }
            }
            let json_type = response
                .header("content-type")
                .is_some_and(|c| c.contains("application/json"));
            let body = tedapi::read_body(response)?;
            if raw {
                return Ok(Fetched::Bytes(body));
            }
            if body.is_empty() {
                return Ok(Fetched::None);
            }
            if !json_type {
                return Ok(Fetched::Value(Value::Str(
                    String::from_utf8_lossy(&body).into_owned(),
                )));
            }
            return Ok(match json::parse_bytes(&body) {
                Ok(v) => {
                    if uri == "/api/status" {
                        self.last_version =
                            v.get("version").and_then(Value::as_str).map(str::to_string);
                    }
                    Fetched::Value(v)
                }
                Err(e) => {
                    log::debug!("local API {uri}: not JSON: {e}");
                    Fetched::None
                }
            });
        }
        Ok(Fetched::None)
    }
}

impl LocalClient {
    /// A cheap request that tells whether the gateway answers at all (`GET /api/status`, which
    /// needs no login): `Ok` on any HTTP answer except 429/503. Honours the 429 pause.
    pub fn probe(&mut self) -> Result<(), Error> {
        if let Some(remaining) = self.pause_remaining() {
            return Err(Error::Cooldown { remaining });
        }
        let result = self.agent.get(&format!("{}/api/status", self.base)).call();
        let (status, response) = tedapi::call(result)?;
        let pause = tedapi::retry_after(response.header("retry-after"));
        let _ = tedapi::read_body(response);
        match status {
            429 | 503 => {
                if let Some(p) = pause.or((status == 429).then_some(self.pause)) {
                    self.pause_until = Some(Instant::now() + p);
                }
                Err(Error::Http(status))
            }
            _ => Ok(()),
        }
    }
}

/// Cookie and token values must be plain header text.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b';')
}

// ---------------------------------------------------------------------------------------------
// Forwarding (the proxy's fallback branch)
// ---------------------------------------------------------------------------------------------

/// Forwards a non-`/api` GET to the gateway's web server with the current login, as the proxy's
/// fallback branch does in local mode.
///
/// The decision is made on the path the gateway would see: [`forward_path`] percent-decodes it,
/// resolves dot-segments and refuses what could change its meaning (control characters, encoded
/// slashes, backslashes, `..` above the root), and exactly that normalised path is sent, with
/// redirects off. Bounds: at most [`Forwarder::MAX_IN_FLIGHT`] at once, at most
/// [`Forwarder::RATE_PER_SEC`] per second (a token bucket, burst of the same size), each call
/// limited by `PW_TIMEOUT`. A refused forward makes no gateway request.
pub struct Forwarder {
    agent: ureq::Agent,
    base: String,
    auth: Mutex<Option<Auth>>,
    in_flight: AtomicUsize,
    bucket: Mutex<TokenBucket>,
}

impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why a forward was not made (or gave nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardError {
    /// The path is malformed (the text says how); answered 400, nothing sent.
    BadPath(&'static str),
    /// `/api/*` after normalisation, or no login yet: the proxy's `Not Found`, nothing sent.
    NotForwarded,
    /// Over the per-second budget; answered 429, nothing sent.
    RateLimited,
    /// Too many forwards running; answered 503, nothing sent.
    Busy,
    /// The gateway did not answer usably (transport failure, oversized body).
    Failed,
}

/// A token bucket: `rate` tokens per second, at most `rate` stored.
#[derive(Debug)]
struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
}

impl TokenBucket {
    fn new(rate: f64) -> TokenBucket {
        TokenBucket {
            tokens: rate,
            last: Instant::now(),
            rate,
        }
    }

    /// Takes one token if there is one.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Content types a forwarded answer may carry (anything else becomes `application/octet-stream`).
const FORWARD_TYPES: &[&str] = &[
    "application/json",
    "text/html",
    "text/plain",
    "text/css",
    "application/javascript",
    "text/javascript",
    "image/png",
    "image/svg+xml",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "image/jpeg",
    "font/woff",
    "font/woff2",
    "font/ttf",
    "application/xml",
];

/// The path the gateway would see for a request path, or why it is refused.
///
/// Percent-escapes are decoded once; a decoded `/`, `\`, `%`, `?`, `#` or control character, a raw
/// backslash or control character, invalid escapes or UTF-8, and `..` above the root are
/// refused. `.` and `..` segments are resolved and empty segments dropped, then the result is
/// re-encoded so nothing downstream (the URL parser, the gateway) can resolve it again.
pub fn forward_path(path: &str) -> Result<String, ForwardError> {
    if !path.starts_with('/') {
        return Err(ForwardError::BadPath("the path does not start with '/'"));
    }
    let mut segments: Vec<String> = Vec::new();
    for raw in path.split('/').skip(1) {
        let segment = decode_segment(raw)?;
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(ForwardError::BadPath("'..' leaves the root"));
                }
            }
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        encode_segment(s, &mut out);
    }
    if out.is_empty() {
        out.push('/');
    }
    // A trailing slash of the request is kept (`/dir/` is not `/dir`).
    if path.ends_with('/') && out != "/" {
        out.push('/');
    }
    Ok(out)
}

/// Whether the gateway would read a (normalised) path as one of its `/api` resources.
pub fn is_api_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower == "/api" || lower.starts_with("/api/")
}

fn decode_segment(raw: &str) -> Result<String, ForwardError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let decoded = if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(ForwardError::BadPath("invalid percent-escape"))?;
            if matches!(hex, b'/' | b'\\' | b'%' | b'?' | b'#') {
                return Err(ForwardError::BadPath(
                    "encoded '/', '\\', '%', '?' or '#' in the path",
                ));
            }
            i += 3;
            hex
        } else {
            if b == b'\\' {
                return Err(ForwardError::BadPath("backslash in the path"));
            }
            i += 1;
            b
        };
        if decoded.is_ascii_control() {
            return Err(ForwardError::BadPath("control character in the path"));
        }
        out.push(decoded);
    }
    String::from_utf8(out).map_err(|_| ForwardError::BadPath("the path is not UTF-8"))
}

fn encode_segment(segment: &str, out: &mut String) {
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The forwarder's agent: the gateway TLS policy and timeout, and no redirects (a redirect could
/// lead the session to a path that was never checked).
fn forward_agent(timeout: Duration, pin: Option<super::tls::Fingerprint>) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .tls_config(super::tls::gateway_client_config(pin))
        .timeout(timeout)
        .timeout_connect(timeout)
        .redirects(0)
        .build()
}

impl Forwarder {
    pub const MAX_IN_FLIGHT: usize = 2;
    /// Forwarded requests per second (and the burst).
    pub const RATE_PER_SEC: f64 = 10.0;

    fn new(agent: ureq::Agent, base: String) -> Forwarder {
        Forwarder {
            agent,
            base,
            auth: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            bucket: Mutex::new(TokenBucket::new(Self::RATE_PER_SEC)),
        }
    }

    fn set(&self, auth: Option<Auth>) {
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = auth;
    }

    /// The gateway's answer to `GET path` (content type, body), or why there is none. Only a
    /// normalised non-`/api` path is sent, with a login, within the rate and in-flight bounds.
    pub fn get(&self, path: &str) -> Result<(&'static str, Vec<u8>), ForwardError> {
        let path = forward_path(path)?;
        if is_api_path(&path) {
            return Err(ForwardError::NotForwarded);
        }
        let auth = self
            .auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(ForwardError::NotForwarded)?;
        if !self
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(Instant::now())
        {
            return Err(ForwardError::RateLimited);
        }
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= Self::MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(ForwardError::Busy);
        }
        let result = self.send(&path, &auth);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result.ok_or(ForwardError::Failed)
    }

    fn send(&self, path: &str, auth: &Auth) -> Option<(&'static str, Vec<u8>)> {
        let (k, v) = auth.header();
        let result = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set(k, &v)
            .call();
        let (_, response) = tedapi::call(result).ok()?;
        let media = response
            .header("content-type")
            .unwrap_or("text/plain")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let ct = FORWARD_TYPES
            .iter()
            .find(|t| **t == media)
            .copied()
            .unwrap_or("application/octet-stream");
        let mut body = Vec::new();
        response
            .into_reader()
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)
            .ok()?;
        (body.len() <= MAX_BODY).then_some((ct, body))
    }
}

// ---------------------------------------------------------------------------------------------
// The poller's source
// ---------------------------------------------------------------------------------------------

/// Local mode (and hybrid mode when TEDAPI is attached).
pub struct Local {
    cfg: GatewayConfig,
    client: Option<LocalClient>,
    /// Last answers of the slow URIs.
    slow: Vec<(String, Option<Value>)>,
    slow_at: Option<Instant>,
    /// Hybrid: the embedded TEDAPI source, and whether it ever answered.
    hybrid: Option<Tedapi>,
    hybrid_ok: bool,
    pw3: bool,
    pause: Option<Duration>,
}

impl Local {
    /// Pure local mode, or hybrid when `cfg` has a gateway password and the reference's host.
    pub fn new(cfg: GatewayConfig) -> Local {
        let hybrid = (cfg.gw_pwd.is_some() && hybrid_host(&cfg.host)).then(|| {
            log::info!(
                "gateway '{}': hybrid mode: local REST + TEDAPI vitals",
                cfg.id
            );
            Tedapi::new(cfg.clone())
        });
        Local {
            cfg,
            client: None,
            slow: Vec::new(),
            slow_at: None,
            hybrid,
            hybrid_ok: false,
            pw3: false,
            pause: None,
        }
    }

    /// Changes the 429 pause; for tests.
    pub fn set_pause(&mut self, pause: Duration) {
        self.pause = Some(pause);
    }

    fn client(&mut self) -> Result<&mut LocalClient, Error> {
        if self.client.is_none() {
            let mut c = LocalClient::new(LocalOptions {
                host: self.cfg.host.clone(),
                password: self.cfg.password.clone().unwrap_or_default(),
                email: self.cfg.email.clone(),
                auth_mode: self.cfg.auth_mode,
                timeout: self.cfg.timeout,
                pin: self.cfg.tls_fingerprint,
            })?;
            if let Some(p) = self.pause {
                c.set_pause(p);
            }
            self.client = Some(c);
        }
        self.client
            .as_mut()
            .ok_or_else(|| Error::BadReply("no client".into()))
    }

    fn tick(&mut self) -> Result<LocalData, Error> {
        let hybrid = self.hybrid.is_some();
        self.client()?;
        let Local {
            client: Some(client),
            slow,
            slow_at,
            ..
        } = self
        else {
            return Err(Error::BadReply("no client".into()));
        };
        if !client.logged_in() {
            client.login()?;
        }
        let mut value = |uri: &str| -> Result<Option<Value>, Error> {
            Ok(match client.get(uri)? {
                Fetched::Value(v) => Some(v),
                _ => None,
            })
        };
        let mut api: Vec<(String, Option<Value>)> = Vec::new();
        for uri in FAST {
            api.push((uri.to_string(), value(uri)?));
        }
        require_local(&api)?;
        let vitals = if hybrid {
            None
        } else {
            match client.get(VITALS)? {
                Fetched::Bytes(b) if !b.is_empty() => Some(b),
                _ => None,
            }
        };
        let mut value = |uri: &str| -> Result<Option<Value>, Error> {
            Ok(match client.get(uri)? {
                Fetched::Value(v) => Some(v),
                _ => None,
            })
        };
        if slow_at.is_none_or(|t| t.elapsed() >= SLOW_REFRESH) {
            let mut fresh = Vec::with_capacity(SLOW.len());
            for uri in SLOW {
                fresh.push((uri.to_string(), value(uri)?));
            }
            *slow = fresh;
            *slow_at = Some(Instant::now());
        } else if vitals.is_none() && !hybrid {
            // Without vitals, strings and alerts come from /api/solar_powerwall: keep it fresh.
            let v = value(SOLAR_POWERWALL)?;
            if let Some(slot) = slow.iter_mut().find(|(u, _)| u == SOLAR_POWERWALL) {
                slot.1 = v;
            }
        }
        api.extend(slow.iter().cloned());

        let tedapi = match self.hybrid.as_mut() {
            None => None,
            Some(t) => match t.poll() {
                Ok(f) => {
                    self.hybrid_ok = true;
                    self.pw3 = f.pw3;
                    Some(f)
                }
                Err(Error::Auth) if !self.hybrid_ok => {
                    log::warn!(
                        "gateway '{}': TEDAPI refused the gateway password; hybrid mode off, \
                         continuing in local mode",
                        self.cfg.id
                    );
                    self.hybrid = None;
                    None
                }
                Err(e) => {
                    log::debug!("gateway '{}': hybrid TEDAPI: {e}", self.cfg.id);
                    Some(Facade {
                        tedapi: Some(TedapiRaw::default()),
                        pw3: self.pw3,
                        ..Facade::default()
                    })
                }
            },
        };
        Ok(LocalData {
            api,
            vitals,
            tedapi,
        })
    }
}

/// The answers a local tick cannot do without: aggregates (power flows) and SOE (battery level)
/// must be JSON objects with their values. Missing, not JSON, or garbage: a failed poll that
/// names what was missing, so last-good data is served and then the failure bodies.
fn require_local(api: &[(String, Option<Value>)]) -> Result<(), Error> {
    let answer = |uri: &str| {
        api.iter()
            .find(|(u, _)| u == uri)
            .and_then(|(_, v)| v.as_ref())
    };
    let mut missing = Vec::new();
    let aggregates = answer("/api/meters/aggregates");
    if !["site", "battery", "load", "solar"].iter().any(|k| {
        aggregates
            .and_then(|a| a.get(k))
            .is_some_and(|v| v.as_object().is_some())
    }) {
        missing.push("/api/meters/aggregates (no site/battery/load/solar object)");
    }
    let soe = answer("/api/system_status/soe");
    if soe.and_then(|s| s.get("percentage")).is_none() {
        missing.push("/api/system_status/soe (no percentage)");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::BadReply(format!(
        "local API gave no usable {}",
        missing.join(" and ")
    )))
}

impl Source for Local {
    fn poll(&mut self) -> Result<Facade, Error> {
        let data = self.tick()?;
        Ok(map::local(&data))
    }

    fn probe(&mut self) -> Option<Result<(), Error>> {
        Some(self.client().and_then(LocalClient::probe))
    }

    fn cooldown_remaining(&self) -> Option<Duration> {
        self.client.as_ref().and_then(LocalClient::pause_remaining)
    }

    fn mode(&self) -> &'static str {
        if self.hybrid.is_some() {
            Mode::Hybrid.name()
        } else {
            Mode::Local.name()
        }
    }

    fn forwarder(&self) -> Option<Arc<Forwarder>> {
        self.client.as_ref().map(LocalClient::forwarder)
    }
}

/// One password, two possible meanings: TEDAPI first (as the gateway password), local mode (as
/// the customer password) when TEDAPI refuses it. Until one mode has worked, each refusal
/// switches to the other; after that the working mode is kept.
pub struct Auto {
    id: String,
    tedapi: GatewayConfig,
    local: GatewayConfig,
    current: Box<dyn Source>,
    on_local: bool,
    decided: bool,
}

impl Auto {
    pub fn new(cfg: GatewayConfig) -> Auto {
        let secret = cfg.gw_pwd.clone().or_else(|| cfg.password.clone());
        let tedapi = GatewayConfig {
            gw_pwd: secret.clone(),
            password: None,
            ..cfg.clone()
        };
        let local = GatewayConfig {
            gw_pwd: None,
            password: secret,
            ..cfg.clone()
        };
        log::info!(
            "gateway '{}': one password given: trying TEDAPI (gateway password) first, local \
             mode (customer password) if TEDAPI refuses it",
            cfg.id
        );
        Auto {
            id: cfg.id.clone(),
            current: Box::new(Tedapi::new(tedapi.clone())),
            tedapi,
            local,
            on_local: false,
            decided: false,
        }
    }

    fn switch(&mut self) {
        self.on_local = !self.on_local;
        self.current = if self.on_local {
            log::warn!(
                "gateway '{}': TEDAPI refused the password (or is not reachable at this \
                 address); using local mode with it as the customer password",
                self.id
            );
            Box::new(Local::new(self.local.clone()))
        } else {
            log::warn!(
                "gateway '{}': the local customer login refused the password too; trying \
                 TEDAPI again",
                self.id
            );
            Box::new(Tedapi::new(self.tedapi.clone()))
        };
    }
}

impl Source for Auto {
    fn poll(&mut self) -> Result<Facade, Error> {
        match self.current.poll() {
            Ok(f) => {
                if !self.decided {
                    log::info!(
                        "gateway '{}': mode chosen: {} ({})",
                        self.id,
                        self.current.mode(),
                        if self.on_local {
                            "TEDAPI refused the password, the customer login accepted it"
                        } else {
                            "TEDAPI accepted the password"
                        }
                    );
                    self.decided = true;
                }
                Ok(f)
            }
            // Refused credentials, or no such endpoint (TEDAPI on a LAN address, or no local
            // API): the password is not for this mode.
            Err(Error::Auth | Error::Http(404)) if !self.decided => {
                self.switch();
                if self.on_local {
                    // Try the other meaning at once, so the first tick can already succeed.
                    self.poll()
                } else {
                    Err(Error::Auth)
                }
            }
            Err(e) if !self.decided => {
                log::debug!(
                    "gateway '{}': {} not decided yet: {e}",
                    self.id,
                    self.current.mode()
                );
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn probe(&mut self) -> Option<Result<(), Error>> {
        self.current.probe()
    }

    fn cooldown_remaining(&self) -> Option<Duration> {
        self.current.cooldown_remaining()
    }

    fn mode(&self) -> &'static str {
        self.current.mode()
    }

    fn forwarder(&self) -> Option<Arc<Forwarder>> {
        self.current.forwarder()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_only_at_the_gateway_wifi_address() {
        assert!(hybrid_host("192.168.91.1"));
        assert!(hybrid_host("192.168.91.1:443"));
        assert!(!hybrid_host("192.168.91.1:8443"));
        assert!(!hybrid_host("10.0.0.5"));
    }

    #[test]
    fn form_encoding_like_python() {
        assert_eq!(form_encode("p@ss w&rd"), "p%40ss+w%26rd");
        assert_eq!(form_encode("email@example.com"), "email%40example.com");
    }

    #[test]
    fn debug_hides_secrets() {
        let opts = LocalOptions {
            host: "gw".into(),
            password: "SECRETPW".into(),
            email: "a@b".into(),
            auth_mode: AuthMode::Cookie,
            timeout: Duration::from_secs(1),
            pin: None,
        };
        assert!(!format!("{opts:?}").contains("SECRETPW"));
        let c = LocalClient::new(opts).unwrap();
        assert!(!format!("{c:?}").contains("SECRETPW"));
    }

    #[test]
    fn forwarder_never_forwards_api_paths_or_without_login() {
        let c = LocalClient::new(LocalOptions {
            host: "127.0.0.1:9".into(),
            password: Secret::default(),
            email: String::new(),
            auth_mode: AuthMode::Cookie,
            timeout: Duration::from_millis(200),
            pin: None,
        })
        .unwrap();
        let f = c.forwarder();
        assert_eq!(
            f.get("/battery"),
            Err(ForwardError::NotForwarded),
            "no login"
        );
        f.set(Some(Auth::Cookie("AuthCookie=x; UserRecord=y".into())));
        for p in [
            "/api/status",
            "/api",
            "/x/../api/customer",
            "/./api/customer",
            "/x/.%2e/api/customer",
            "/x/%2E%2E/api/customer",
            "//api/customer",
            "/API/customer",
            "/%61pi/customer",
        ] {
            assert_eq!(f.get(p), Err(ForwardError::NotForwarded), "{p}");
        }
        for p in [
            "battery",
            "/..",
            "/%2e%2e/api/devices/vitals",
            "/a/../../api",
            "/a%2fb",
            "/a%5Cb",
            "/a\\b",
            "/a%00b",
            "/a%0d%0aX:1",
            "/a%zz",
            "/a%2",
            "/a%ff",
            "/a%252e%252e/api",
        ] {
            assert!(
                matches!(f.get(p), Err(ForwardError::BadPath(_))),
                "{p}: {:?}",
                f.get(p)
            );
        }
        // Refused connection: Failed, and the in-flight counter is released.
        assert_eq!(f.get("/battery"), Err(ForwardError::Failed));
        assert_eq!(f.in_flight.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn forward_paths_are_normalised_and_reencoded() {
        for (raw, want) in [
            ("/", "/"),
            ("/battery", "/battery"),
            ("/a/./b/../c", "/a/c"),
            ("/a//b/", "/a/b/"),
            ("/a%20b.png", "/a%20b.png"),
            ("/%41", "/A"),
            ("/x/%2e%2e/y", "/y"),
            ("/caf%C3%A9", "/caf%C3%A9"),
        ] {
            assert_eq!(forward_path(raw).as_deref(), Ok(want), "{raw}");
        }
        assert!(is_api_path("/api"));
        assert!(is_api_path("/Api/x"));
        assert!(!is_api_path("/apix"));
    }

    #[test]
    fn token_bucket_bounds_the_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(10.0);
        b.last = start;
        let burst = (0..50).filter(|_| b.take(start)).count();
        assert_eq!(burst, 10);
        // One more token per 100 ms.
        assert!(b.take(start + Duration::from_millis(100)));
        assert!(!b.take(start + Duration::from_millis(100)));
        // A long idle time stores no more than the burst.
        let later = start + Duration::from_secs(60);
        assert_eq!((0..50).filter(|_| b.take(later)).count(), 10);
    }
}
