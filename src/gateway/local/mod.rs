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
//!
//! * this file — [`LocalClient`], the REST client (login, per-URI negative caches, the pause);
//! * `forward` — [`Forwarder`], the fallback branch's forwarding;
//! * `source` — [`Local`] and [`Auto`], the poller's sources.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::native::form_encode;
use super::tedapi::{self, Error};
use crate::config::AuthMode;
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
    Cookie(Secret),
    /// `Authorization: Bearer …`.
    Bearer(Secret),
}

impl Auth {
    fn header(&self) -> (&'static str, String) {
        match self {
            Auth::Cookie(c) => ("Cookie", c.expose().to_string()),
            Auth::Bearer(t) => ("Authorization", format!("Bearer {}", t.expose())),
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
                    (Some(a), Some(u)) if header_safe(&a) && header_safe(&u) => Some(Auth::Cookie(
                        Secret::new(format!("AuthCookie={a}; UserRecord={u}")),
                    )),
                    _ => None,
                }
            }
            AuthMode::Token => tedapi::read_body(response)
                .ok()
                .and_then(|b| json::parse_bytes(&b).ok())
                .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
                .filter(|t| !t.is_empty() && header_safe(t))
                .map(|t| Auth::Bearer(Secret::new(t))),
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

mod forward;
mod source;
#[cfg(test)]
mod tests;

pub use forward::*;
pub use source::{Auto, Local};
