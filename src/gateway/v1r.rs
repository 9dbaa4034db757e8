//! v1r: RSA-signed TEDAPI on the Powerwall 3 wired LAN (wire spec §3).
//!
//! Why it exists: a PW3's Ethernet "vendor" port refuses Basic-auth TEDAPI; full access there
//! needs `POST /tedapi/v1r` with a `RoutableMessage` signed by an RSA-4096 key registered
//! through Tesla's cloud (`python -m pypowerwall register`). This module is that transport:
//!
//! * [`RsaKey`]: the private key file as pypowerwall writes it (`tedapi_rsa_private.pem`,
//!   PKCS#1 "RSA PRIVATE KEY"; PKCS#8 "PRIVATE KEY" is accepted too), RSA-4096 only, and the
//!   DER PKCS#1 public key the gateway identifies us by. The key never reaches a log.
//! * [`bytes_to_sign`] / [`signed_request`] (pure): the TLV run (signature type 7, domain 7, the
//!   **leader** DIN as personalization, `expires_at = ceil(now) + 12` big-endian, `0xFF`, the
//!   bare envelope), signed with PKCS#1 v1.5 + SHA-512, wrapped in a `RoutableMessage` with a
//!   fresh UUID4.
//! * [`decode_reply`] (pure): HTTP status and `RoutableMessage` → the inner envelope bytes or a
//!   typed error; the fault table of §3.5 (`UNKNOWN_KEY_ID`, `TIME_EXPIRED`, …), "authorization
//!   not verified" (key registered, breaker toggle pending) and empty replies.
//! * [`V1rClient`]: the blocking LAN client — JSON customer login for a Bearer token,
//!   `GET /tedapi/din` with it, signed config reads (FileStore, deliveryChannel 2,
//!   `authorizedClient` 1) and the same query/firmware envelopes as Wi-Fi, minus `Message`/`Tail`.
//!   A 401/403 triggers one re-login and one re-signed retry.
//! * [`V1r`]: the poller's [`Source`]. With `PW_WIFI_HOST` and `PW_GW_PWD` it keeps a Basic-auth
//!   Wi-Fi client: follower Powerwalls are always queried over Wi-Fi (v1r cannot route to them;
//!   failures back off `min(60·2ⁿ, 7680)` s, 60 s after 429/503), and after 3 consecutive LAN
//!   failures (or a LAN that is down at start) every query goes over Wi-Fi until a LAN probe
//!   succeeds; probes back off `min(60·2ⁿ, 7680)` s (pypowerwall 0.22.2 failover).
//!
//! Nothing a gateway sends can panic: replies are length-checked protobuf, capped bodies, and
//! JSON with a nesting limit.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use crate::config::rsa_key::{RsaKey, KEY_BITS, REGISTER_KEY_FILENAME};
use crate::wire::hex_lower as hex;

use super::facade::Facade;
use super::native::Native;
use super::proto::{
    Body, Envelope, Message, Participant, Query, RoutableMessage, CHANNEL_HERMES_COMMAND,
    DOMAIN_CONFIG_JSON, DOMAIN_ENERGY_DEVICE,
};
use super::queries::{QuerySet, SignedQueries};
use super::source::{self, Fetch, Link, Source};
use super::tedapi::{self, Client, Error, Expect, Reply};
use super::{tls, Firmware};
use crate::config::{GatewayConfig, Mode};
use crate::json::{self, Value};
use crate::secret::Secret;

/// Lifetime of a signature: `expires_at = ceil(now) + 12` (upstream).
pub const SIGNATURE_TTL: u32 = 12;

/// Consecutive LAN failures that switch leader queries to the Wi-Fi host.
pub const LAN_TRIP_AFTER: u32 = 3;

/// `min(60 · 2ⁿ, 7680)` seconds: the LAN probe and Wi-Fi follower back-off.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(60u64.saturating_mul(1u64 << n.min(8)).min(7680))
}

// ---------------------------------------------------------------------------------------------
// Signing and reply decoding (pure)
// ---------------------------------------------------------------------------------------------

/// `ceil(now) + 12` as the gateway reads it (fixed32 Unix seconds).
pub fn expires_at(now_unix: f64) -> u32 {
    let now = if now_unix.is_finite() && now_unix > 0.0 {
        now_unix.ceil().min(f64::from(u32::MAX))
    } else {
        0.0
    };
    (now as u32).saturating_add(SIGNATURE_TTL)
}

/// The bytes the signature covers (spec §3.4): `00 01 07 · 01 01 07 · 02 <len> <leader DIN> ·
/// 04 04 <expires_at BE> · FF · <envelope>`.
pub fn bytes_to_sign(leader_din: &str, expires_at: u32, envelope: &[u8]) -> Result<Vec<u8>, Error> {
    let din = leader_din.as_bytes();
    let din_len = u8::try_from(din.len())
        .map_err(|_| Error::BadReply("the gateway DIN is too long to sign".into()))?;
    let mut out = Vec::with_capacity(16 + din.len() + envelope.len());
    out.extend_from_slice(&[0, 1, 7, 1, 1, 7, 2, din_len]);
    out.extend_from_slice(din);
    out.extend_from_slice(&[4, 4]);
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.push(0xff);
    out.extend_from_slice(envelope);
    Ok(out)
}

/// A serialised, signed `RoutableMessage` carrying `envelope` (bare `MessageEnvelope` bytes).
pub fn signed_request(
    key: &RsaKey,
    leader_din: &str,
    envelope: &[u8],
    now_unix: f64,
    uuid: &str,
) -> Result<Vec<u8>, Error> {
    let expires = expires_at(now_unix);
    let signature = key
        .sign(&bytes_to_sign(leader_din, expires, envelope)?)
        .map_err(Error::BadReply)?;
    Ok(RoutableMessage {
        to_domain: Some(DOMAIN_ENERGY_DEVICE),
        payload: envelope.to_vec(),
        public_key: key.public_der().to_vec(),
        expires_at: expires,
        signature,
        uuid: uuid.as_bytes().to_vec(),
        ..RoutableMessage::default()
    }
    .encode())
}

/// A random UUID4 in its text form.
pub fn uuid4() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // No OS randomness: a time-derived id still differs per request.
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `MessageFault_E` names (spec §3.3).
pub fn fault_name(code: i32) -> &'static str {
    const NAMES: [&str; 23] = [
        "NONE",
        "BUSY",
        "TIMEOUT",
        "UNKNOWN_KEY_ID",
        "INACTIVE_KEY",
        "INVALID_SIGNATURE",
        "INVALID_TOKEN_OR_COUNTER",
        "INSUFFICIENT_PRIVILEGES",
        "INVALID_DOMAINS",
        "INVALID_COMMAND",
        "DECODING",
        "INTERNAL",
        "WRONG_PERSONALIZATION",
        "BAD_PARAMETER",
        "KEYCHAIN_IS_FULL",
        "INCORRECT_EPOCH",
        "IV_INCORRECT_LENGTH",
        "TIME_EXPIRED",
        "NOT_PROVISIONED_WITH_IDENTITY",
        "COULD_NOT_HASH_METADATA",
        "TIME_TO_LIVE_TOO_LONG",
        "REMOTE_ACCESS_DISABLED",
        "REMOTE_SERVICE_REQUEST_NOT_SUPPORTED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN_FAULT")
}

pub const FAULT_TIMEOUT: i32 = 2;
pub const FAULT_UNKNOWN_KEY_ID: i32 = 3;
pub const FAULT_INVALID_SIGNATURE: i32 = 5;
pub const FAULT_TIME_EXPIRED: i32 = 17;

const NOT_VERIFIED: &[u8] = b"authorization not verified";

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A `/tedapi/v1r` reply → the inner envelope bytes (spec §3.5). `fingerprint` goes into the
/// key-problem messages so users can compare it with what `pypowerwall register` printed.
pub fn decode_reply(status: u16, body: &[u8], fingerprint: &str) -> Result<Vec<u8>, Error> {
    match status {
        200 => {}
        401 | 403 => return Err(Error::Auth),
        code => return Err(Error::Http(code)),
    }
    let hint = |what: &str| {
        format!(
            "{what}; key fingerprint (SHA-256 of the public key): {fingerprint}; register or \
             verify the key with `python -m pypowerwall register`"
        )
    };
    let pending = || {
        Error::Rejected(format!(
            "the RSA key is registered but PENDING_VERIFICATION: switch one Powerwall's breaker \
             off for a few seconds and on again to confirm it (fingerprint {fingerprint})"
        ))
    };
    let msg = match RoutableMessage::decode(body) {
        Ok(m) => m,
        Err(_) if contains_ci(body, NOT_VERIFIED) => return Err(pending()),
        Err(e) => return Err(Error::BadReply(format!("v1r reply: {e}"))),
    };
    match msg.fault {
        0 => {}
        FAULT_UNKNOWN_KEY_ID => {
            return Err(Error::Rejected(hint(
                "UNKNOWN_KEY_ID: the gateway does not know this RSA key (wrong key file, or \
                 not registered)",
            )))
        }
        FAULT_TIMEOUT => {
            return Err(Error::Rejected(
                "TIMEOUT: the sub-device is not routable over v1r".into(),
            ))
        }
        FAULT_TIME_EXPIRED => {
            return Err(Error::Rejected(
                "TIME_EXPIRED: the signature had expired on arrival; check that this host's \
                 clock agrees with the gateway's"
                    .into(),
            ))
        }
        code => {
            return Err(Error::Rejected(format!(
                "message fault {} ({code})",
                fault_name(code)
            )))
        }
    }
    if contains_ci(body, NOT_VERIFIED) || contains_ci(&msg.payload, NOT_VERIFIED) {
        return Err(pending());
    }
    if msg.payload.is_empty() {
        return Err(Error::Rejected(hint(
            "the gateway answered without data (the RSA key may not be registered)",
        )));
    }
    Ok(msg.payload)
}

/// The inner bytes of a v1r reply → a decoded reply. They are a bare `MessageEnvelope`; a full
/// `Message` and, for JSON answers, the first balanced `{…}` in the bytes are the fallbacks.
pub fn decode_inner(inner: &[u8], expect: Expect) -> Result<Reply, Error> {
    let mut bodies = Vec::new();
    if let Ok(env) = Envelope::decode(inner) {
        bodies.push(env.body);
    }
    if let Ok(msg) = Message::decode(inner) {
        bodies.push(msg.envelope.body);
    }
    for body in bodies {
        match (expect, body) {
            (Expect::Config, Body::ReadFileResponse { blob, .. }) => {
                return tedapi::config_json(&blob).map(Reply::Json)
            }
            (Expect::Query | Expect::QueryStrict, Body::QueryResponse { data, .. }) => {
                return tedapi::query_json(&data, expect == Expect::QueryStrict).map(Reply::Json)
            }
            (Expect::Firmware, Body::SystemInfoResponse(info)) => {
                return Ok(Reply::Firmware(Firmware {
                    version: info.version,
                    githash: info.githash,
                    part_number: info.part_number,
                    serial_number: info.serial_number,
                    din: info.din,
                    device_type: info.device_type,
                }))
            }
            _ => {}
        }
    }
    match expect {
        Expect::Firmware => Ok(Reply::Firmware(Firmware::default())),
        Expect::Config | Expect::Query | Expect::QueryStrict => match first_json_object(inner) {
            Some(text) => match expect {
                Expect::Config => tedapi::config_json(text).map(Reply::Json),
                _ => tedapi::query_json(&String::from_utf8_lossy(text), true).map(Reply::Json),
            },
            None => Err(Error::BadReply("v1r reply carries no JSON document".into())),
        },
        Expect::Din => Err(Error::BadReply("no DIN in a v1r reply".into())),
    }
}

/// The first balanced `{…}` (braces counted, as upstream's fallback does).
fn first_json_object(b: &[u8]) -> Option<&[u8]> {
    let start = b.iter().position(|&c| c == b'{')?;
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate().skip(start) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return b.get(start..=i);
                }
            }
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The LAN client
// ---------------------------------------------------------------------------------------------

/// Connection settings of a [`V1rClient`].
#[derive(Clone)]
pub struct V1rOptions {
    /// The PW3's LAN address, `host[:port]`.
    pub host: String,
    /// The customer password (`PW_PASSWORD` or the end of `PW_GW_PWD`).
    pub password: Secret,
    pub key: Arc<RsaKey>,
    pub timeout: Duration,
    pub pin: Option<tls::Fingerprint>,
    pub query_set: QuerySet,
}

impl fmt::Debug for V1rOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1rOptions")
            .field("host", &self.host)
            .field("password", &"<redacted>")
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .field("query_set", &self.query_set)
            .finish()
    }
}

/// The blocking v1r LAN client of one gateway. Owned by its poller thread.
pub struct V1rClient {
    agent: ureq::Agent,
    base: String,
    password: Secret,
    key: Arc<RsaKey>,
    queries: SignedQueries,
    /// Bearer token and session cookies from the login; kept out of `Debug` and logs.
    token: Option<String>,
    cookies: Option<String>,
    /// The key problem last reported (log it once per episode).
    key_problem: bool,
}

impl fmt::Debug for V1rClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1rClient")
            .field("base", &self.base)
            .field("key", &self.key)
            .field("logged_in", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl V1rClient {
    /// No network traffic; fails only on an unusable host or query set.
    pub fn new(opts: V1rOptions) -> Result<V1rClient, Error> {
        Ok(V1rClient {
            agent: tedapi::agent(opts.timeout, opts.pin),
            base: tedapi::base_url(&opts.host)?,
            password: opts.password,
            key: opts.key,
            queries: SignedQueries::load(opts.query_set).map_err(Error::BadReply)?,
            token: None,
            cookies: None,
            key_problem: false,
        })
    }

    /// `POST /api/login/Basic` with the JSON customer login → Bearer token (and cookies).
    pub fn login(&mut self) -> Result<(), Error> {
        let mut body = String::from(r#"{"username": "customer", "password": "#);
        json::write_str(&mut body, self.password.expose());
        body.push_str(
            r#", "email": "customer@customer.domain", "clientInfo": {"timezone": "America/Chicago"}}"#,
        );
        let result = self
            .agent
            .post(&format!("{}/api/login/Basic", self.base))
            .set("Content-Type", "application/json")
            .send_string(&body);
        let (status, response) = tedapi::call(result)?;
        let cookies: Vec<String> = response
            .all("set-cookie")
            .iter()
            .filter_map(|c| c.split(';').next())
            .map(|c| c.trim().to_string())
            .filter(|c| c.contains('='))
            .collect();
        let bytes = tedapi::read_body(response).unwrap_or_default();
        match status {
            200 => {}
            401 | 403 => return Err(Error::Auth),
            code => return Err(Error::Http(code)),
        }
        let token = json::parse_bytes(&bytes)
            .ok()
            .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::BadReply("v1r login answer has no token".into()))?;
        self.token = Some(token);
        self.cookies = (!cookies.is_empty()).then(|| cookies.join("; "));
        Ok(())
    }

    fn authorized(&self, req: ureq::Request) -> ureq::Request {
        let req = match &self.token {
            Some(t) => req.set("Authorization", &format!("Bearer {t}")),
            None => req,
        };
        match &self.cookies {
            Some(c) => req.set("Cookie", c),
            None => req,
        }
    }

    /// `GET /tedapi/din` with the Bearer token (logs in first, and again once on 401/403).
    pub fn din(&mut self) -> Result<String, Error> {
        if self.token.is_none() {
            self.login()?;
        }
        let mut relogged = false;
        loop {
            let req = self.authorized(self.agent.get(&format!("{}/tedapi/din", self.base)));
            let (status, response) = tedapi::call(req.call())?;
            let body = if status == 200 {
                tedapi::read_body(response)?
            } else {
                Vec::new()
            };
            match tedapi::decode_reply(status, &body, Expect::Din) {
                Err(Error::Auth) if !relogged => {
                    relogged = true;
                    self.login()?;
                }
                Ok(Reply::Din(din)) => return Ok(din),
                Ok(other) => return Err(Error::BadReply(format!("unexpected {other:?}"))),
                Err(e) => return Err(e),
            }
        }
    }

    /// Signs `envelope` for `leader` and posts it; the inner reply bytes. A 401/403 logs in
    /// again and re-signs once (the first signature may have expired by then).
    pub fn post(&mut self, leader: &str, envelope: &Envelope) -> Result<Vec<u8>, Error> {
        if leader.is_empty() {
            return Err(Error::BadReply("no gateway DIN to sign with".into()));
        }
        let bytes = envelope.encode();
        let mut relogged = false;
        loop {
            let now = crate::clock::unix_f64(SystemTime::now());
            let body = signed_request(&self.key, leader, &bytes, now, &uuid4())?;
            let req = self
                .agent
                .post(&format!("{}/tedapi/v1r", self.base))
                .set("Content-Type", "application/octet-stream");
            let req = self.authorized(req);
            let (status, response) = tedapi::call(req.send_bytes(&body))?;
            let reply = if status == 200 {
                tedapi::read_body(response)?
            } else {
                Vec::new()
            };
            match decode_reply(status, &reply, self.key.fingerprint()) {
                Err(Error::Auth) if !relogged => {
                    relogged = true;
                    self.login()?;
                }
                Err(Error::Rejected(why)) => {
                    if !self.key_problem {
                        log::error!("v1r: {why}");
                    }
                    self.key_problem = true;
                    return Err(Error::Rejected(why));
                }
                Ok(inner) => {
                    if self.key_problem {
                        log::info!("v1r: the gateway accepts the signed requests again");
                    }
                    self.key_problem = false;
                    return Ok(inner);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn fetch(&mut self, leader: &str, envelope: &Envelope, expect: Expect) -> Result<Reply, Error> {
        let inner = self.post(leader, envelope)?;
        decode_inner(&inner, expect)
    }

    fn json(&mut self, leader: &str, envelope: &Envelope, expect: Expect) -> Result<Value, Error> {
        match self.fetch(leader, envelope, expect)? {
            Reply::Json(v) => Ok(v),
            other => Err(Error::BadReply(format!("unexpected {other:?}"))),
        }
    }

    /// `config.json` over the FileStore (deliveryChannel 2, `authorizedClient` 1).
    pub fn config(&mut self, leader: &str) -> Result<Value, Error> {
        let envelope = config_envelope(leader);
        self.json(leader, &envelope, Expect::Config)
    }

    fn query(
        &mut self,
        leader: &str,
        din: &str,
        via: Option<&str>,
        q: Query,
        expect: Expect,
    ) -> Result<Value, Error> {
        let envelope = Message::request(din, via, Body::Query(q)).envelope;
        self.json(leader, &envelope, expect)
    }

    pub fn status(&mut self, leader: &str) -> Result<Value, Error> {
        let q = self.queries.basic.clone();
        self.query(leader, leader, None, q, Expect::Query)
    }

    pub fn controller(&mut self, leader: &str) -> Result<Value, Error> {
        let q = self.queries.full.clone();
        self.query(leader, leader, None, q, Expect::Query)
    }

    /// ComponentsQuery for `din` (the leader; followers are not reachable over v1r).
    pub fn components(
        &mut self,
        leader: &str,
        din: &str,
        via: Option<&str>,
    ) -> Result<Value, Error> {
        let q = self.queries.components.clone();
        self.query(leader, din, via, q, Expect::QueryStrict)
    }

    pub fn firmware(&mut self, leader: &str) -> Result<Firmware, Error> {
        let envelope = Message::request(leader, None, Body::SystemInfoRequest).envelope;
        match self.fetch(leader, &envelope, Expect::Firmware)? {
            Reply::Firmware(f) => Ok(f),
            other => Err(Error::BadReply(format!("unexpected {other:?}"))),
        }
    }
}

/// The v1r config read: deliveryChannel 2, sender `authorizedClient` 1, FileStore read.
pub fn config_envelope(din: &str) -> Envelope {
    Envelope {
        delivery_channel: CHANNEL_HERMES_COMMAND,
        sender: Some(Participant::AuthorizedClient(1)),
        recipient: Some(Participant::Din(din.to_string())),
        body: Body::ReadFile {
            domain: DOMAIN_CONFIG_JSON,
            name: "config.json".into(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// LAN + Wi-Fi routing, and the poller's source
// ---------------------------------------------------------------------------------------------

/// The v1r LAN client plus the optional Wi-Fi client, with the failover state.
pub(crate) struct Transport {
    id: String,
    lan: V1rClient,
    wifi: Option<Client>,
    leader: Option<String>,
    /// Leader queries go over Wi-Fi until `lan_retry_at`.
    lan_failed: bool,
    lan_fail_count: u32,
    lan_retry_at: Option<Instant>,
    /// Follower (Wi-Fi) path back-off.
    wifi_fail_count: u32,
    wifi_retry_at: Option<Instant>,
}

impl Transport {
    fn leader(&self) -> Result<String, Error> {
        self.leader
            .clone()
            .ok_or_else(|| Error::BadReply("no gateway DIN yet".into()))
    }

    fn trip(&mut self, count: u32) {
        self.lan_failed = true;
        self.lan_fail_count = count;
        let wait = backoff(count);
        self.lan_retry_at = Some(Instant::now() + wait);
        log::warn!(
            "gateway '{}': v1r LAN failed {count} time(s) in a row; using the Wi-Fi TEDAPI host, \
             LAN retry in {} s",
            self.id,
            wait.as_secs()
        );
    }

    fn lan_ok(&mut self) {
        if self.lan_failed {
            log::info!("gateway '{}': v1r LAN recovered", self.id);
        }
        self.lan_failed = false;
        self.lan_fail_count = 0;
        self.lan_retry_at = None;
    }

    /// LAN login + DIN (the connection and the recovery probe).
    fn connect_lan(&mut self) -> Result<String, Error> {
        self.lan.login()?;
        self.lan.din()
    }

    /// One leader request: over the LAN unless it has failed over, counting LAN failures.
    fn leader_call<T>(
        &mut self,
        lan: impl FnOnce(&mut V1rClient, &str) -> Result<T, Error>,
        wifi: impl FnOnce(&mut Client, &str) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let leader = self.leader()?;
        if self.lan_failed && self.lan_retry_at.is_none_or(|t| Instant::now() >= t) {
            log::info!("gateway '{}': probing the v1r LAN again", self.id);
            match self.connect_lan() {
                Ok(_) => self.lan_ok(),
                Err(e) => {
                    log::debug!("gateway '{}': LAN probe: {e}", self.id);
                    self.trip(self.lan_fail_count + 1);
                }
            }
        }
        if self.lan_failed {
            return match self.wifi.as_mut() {
                Some(w) => wifi(w, &leader),
                None => Err(Error::Unreachable("v1r LAN down".into())),
            };
        }
        let result = lan(&mut self.lan, &leader);
        match &result {
            Ok(_) => self.lan_fail_count = 0,
            Err(_) => {
                self.lan_fail_count += 1;
                if self.lan_fail_count >= LAN_TRIP_AFTER && self.wifi.is_some() {
                    self.trip(self.lan_fail_count);
                }
            }
        }
        result
    }

    /// A follower query: only over Wi-Fi, with its own back-off.
    fn follower_components(&mut self, din: &str, via: Option<&str>) -> Result<Value, Error> {
        let Some(wifi) = self.wifi.as_mut() else {
            return Err(Error::Unreachable(format!(
                "follower {din} is not reachable over v1r (set PW_WIFI_HOST and PW_GW_PWD)"
            )));
        };
        if self.wifi_retry_at.is_some_and(|t| Instant::now() < t) {
            // Not `Error::Cooldown`: that would end the whole poll.
            return Err(Error::Unreachable("Wi-Fi follower path backing off".into()));
        }
        let leader = self.leader.clone();
        match wifi.components(din, via.or(leader.as_deref())) {
            Ok(v) => {
                self.wifi_fail_count = 0;
                self.wifi_retry_at = None;
                Ok(v)
            }
            Err(e) => {
                self.wifi_fail_count += 1;
                let wait = match e {
                    Error::Http(429 | 503) | Error::Cooldown { .. } => Duration::from_secs(60),
                    _ => backoff(self.wifi_fail_count),
                };
                self.wifi_retry_at = Some(Instant::now() + wait);
                Err(e)
            }
        }
    }
}

impl Fetch for Transport {
    fn detect_pw3(&mut self) -> Result<bool, Error> {
        // v1r is PW3-only; there is no web portal to ask.
        Ok(true)
    }

    fn din(&mut self) -> Result<String, Error> {
        match self.connect_lan() {
            Ok(din) => {
                self.lan_ok();
                self.leader = Some(din.clone());
                Ok(din)
            }
            Err(e) => {
                let Some(wifi) = self.wifi.as_mut() else {
                    return Err(e);
                };
                log::warn!(
                    "gateway '{}': v1r LAN login/DIN failed ({e}); starting on the Wi-Fi host",
                    self.id
                );
                let din = wifi.din()?;
                self.leader = Some(din.clone());
                self.trip((self.lan_fail_count + 1).max(LAN_TRIP_AFTER));
                Ok(din)
            }
        }
    }

    fn config(&mut self, _din: &str) -> Result<Value, Error> {
        self.leader_call(|c, l| c.config(l), |w, l| w.config(l))
    }

    fn firmware(&mut self, _din: &str) -> Result<Firmware, Error> {
        self.leader_call(|c, l| c.firmware(l), |w, l| w.firmware(l))
    }

    fn components(&mut self, din: &str, via: Option<&str>) -> Result<Value, Error> {
        if self.leader.as_deref() != Some(din) {
            return self.follower_components(din, via);
        }
        let d = din.to_string();
        self.leader_call(
            |c, l| c.components(l, &d, via),
            |w, _| w.components(din, via),
        )
    }

    fn status(&mut self, _din: &str) -> Result<Value, Error> {
        self.leader_call(|c, l| c.status(l), |w, l| w.status(l))
    }

    fn controller(&mut self, _din: &str) -> Result<Value, Error> {
        self.leader_call(|c, l| c.controller(l), |w, l| w.controller(l))
    }
}

/// The v1r source of one gateway ("Local (v1r)" / "Local (v1r+wifi)").
pub struct V1r {
    cfg: GatewayConfig,
    link: Option<Link<Transport>>,
}

impl V1r {
    pub fn new(cfg: GatewayConfig) -> V1r {
        V1r { cfg, link: None }
    }

    fn connect(&self) -> Result<Link<Transport>, Error> {
        let cfg = &self.cfg;
        // Loaded once, when the configuration was read.
        let key = cfg.rsa_key.clone().ok_or_else(|| {
            Error::Rejected("PW_RSA_KEY_PATH: no RSA private key was loaded".into())
        })?;
        let password = cfg.customer_password().ok_or_else(|| {
            Error::Rejected("v1r needs PW_PASSWORD or PW_GW_PWD (its last 5 characters)".into())
        })?;
        let lan = V1rClient::new(V1rOptions {
            host: cfg.host.clone(),
            password: password.clone(),
            key,
            timeout: cfg.timeout,
            pin: cfg.tls_fingerprint,
            query_set: cfg.query_set,
        })?;
        let wifi = match (&cfg.wifi_host, &cfg.gw_pwd, cfg.mode) {
            (Some(host), Some(gw_pwd), Mode::V1rWifi) => {
                let mut o = source::options(cfg);
                o.host = host.clone();
                o.gw_pwd = gw_pwd.clone();
                // The pinned certificate is the LAN port's; the Wi-Fi side has its own.
                o.pin = None;
                let mut c = Client::new(o)?;
                c.set_cooldown_period(Duration::from_secs(60));
                Some(c)
            }
            _ => None,
        };
        // The gateway's own `/api/meters/aggregates` answers on the LAN port with the customer
        // login (one of the three REST endpoints a PW3 keeps there).
        // The customer password is passed as it is: deriving it again from a field named
        // `gw_pwd` broke the login for a `PW_PASSWORD` that is not exactly 5 characters.
        let native = Native::with_password(&source::options(cfg), Some(password)).ok();
        Ok(Link::new(
            Transport {
                id: cfg.id.clone(),
                lan,
                wifi,
                leader: None,
                lan_failed: false,
                lan_fail_count: 0,
                lan_retry_at: None,
                wifi_fail_count: 0,
                wifi_retry_at: None,
            },
            native,
        ))
    }
}

/// `password`, else the last 5 characters of `gw_pwd` (upstream `gw_pwd[-5:]`).
pub fn customer_password(cfg: &GatewayConfig) -> Option<String> {
    cfg.customer_password().map(|s| s.expose().to_string())
}

impl Source for V1r {
    fn poll(&mut self) -> Result<Facade, Error> {
        if self.link.is_none() {
            self.link = Some(self.connect()?);
        }
        let link = self
            .link
            .as_mut()
            .ok_or_else(|| Error::BadReply("no link".into()))?;
        let data = source::tick(link, &self.cfg)?;
        Ok(source::map_data(&data, self.cfg.query_set))
    }

    fn cooldown_remaining(&self) -> Option<Duration> {
        let t = &self.link.as_ref()?.client;
        if t.lan_failed {
            t.wifi.as_ref()?.cooldown_remaining()
        } else {
            None
        }
    }

    fn mode(&self) -> &'static str {
        self.cfg.mode.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: &str = include_str!("../../tests/fixtures/v1r/test_rsa_private.pem");
    const TEST_PUB: &[u8] = include_bytes!("../../tests/fixtures/v1r/test_rsa_public.der");
    const DIN: &str = "1232100-00-E--TG123456789ABC";

    #[test]
    fn tlv_matches_appendix_a() {
        let env = config_envelope(DIN).encode();
        let tlv = bytes_to_sign(DIN, 0x6700_0000, &env).unwrap();
        let expect_head = format!("000107010107021c{}040467000000ff", hex(DIN.as_bytes()));
        assert_eq!(hex(&tlv), format!("{expect_head}{}", hex(&env)));
        assert!(hex(&tlv).ends_with("6a736f6e"));
        assert!(bytes_to_sign(&"D".repeat(256), 1, &env).is_err());
    }

    #[test]
    fn expiry_is_ceil_now_plus_12() {
        assert_eq!(expires_at(1000.0), 1012);
        assert_eq!(expires_at(1000.2), 1013);
        assert_eq!(expires_at(f64::NAN), 12);
        assert_eq!(expires_at(1e20), u32::MAX);
    }

    #[test]
    fn key_loads_signs_and_never_prints() {
        let key = RsaKey::from_pem(TEST_KEY).unwrap();
        assert_eq!(key.bits(), 4096);
        assert_eq!(key.public_der(), TEST_PUB);
        assert_eq!(key.fingerprint().len(), 64);
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("PRIVATE") && dbg.contains(key.fingerprint()));
        let sig = key.sign(b"hello").unwrap();
        assert_eq!(sig.len(), 512);
        // PKCS#1 v1.5 is deterministic.
        assert_eq!(sig, key.sign(b"hello").unwrap());
        for bad in [
            "",
            "hello",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        ] {
            assert!(RsaKey::from_pem(bad).is_err());
        }
        let e = RsaKey::load("/nonexistent/tedapi_rsa_private.pem").unwrap_err();
        assert!(e.contains("pypowerwall register"), "{e}");
    }

    #[test]
    fn signed_request_layout() {
        let key = RsaKey::from_pem(TEST_KEY).unwrap();
        let env = config_envelope(DIN).encode();
        let uuid = uuid4();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        let bytes = signed_request(&key, DIN, &env, 1000.5, &uuid).unwrap();
        let m = RoutableMessage::decode(&bytes).unwrap();
        assert_eq!(m.to_domain, Some(DOMAIN_ENERGY_DEVICE));
        assert_eq!(m.payload, env);
        assert_eq!(m.expires_at, 1013);
        assert_eq!(m.public_key, TEST_PUB);
        assert_eq!(m.uuid, uuid.as_bytes());
        assert_eq!(
            m.signature,
            key.sign(&bytes_to_sign(DIN, 1013, &env).unwrap()).unwrap()
        );
        assert!(hex(&bytes).starts_with("32020807"));
    }

    fn reply(fault: i32, payload: &[u8]) -> Vec<u8> {
        RoutableMessage {
            fault,
            payload: payload.to_vec(),
            ..RoutableMessage::default()
        }
        .encode()
    }

    #[test]
    fn fault_table() {
        let ok = Envelope::decode(&[]).unwrap().encode();
        assert_eq!(
            decode_reply(200, &reply(0, b"\x08\x01"), "fp"),
            Ok(vec![8, 1])
        );
        let _ = ok;
        assert_eq!(decode_reply(401, b"", "fp"), Err(Error::Auth));
        assert_eq!(decode_reply(403, b"", "fp"), Err(Error::Auth));
        assert_eq!(decode_reply(500, b"", "fp"), Err(Error::Http(500)));
        for (fault, text) in [
            (FAULT_UNKNOWN_KEY_ID, "UNKNOWN_KEY_ID"),
            (FAULT_TIME_EXPIRED, "TIME_EXPIRED"),
            (FAULT_TIMEOUT, "TIMEOUT"),
            (FAULT_INVALID_SIGNATURE, "INVALID_SIGNATURE"),
            (1, "BUSY"),
            (99, "UNKNOWN_FAULT"),
        ] {
            match decode_reply(200, &reply(fault, b"\x08\x01"), "abcd") {
                Err(Error::Rejected(why)) => assert!(why.contains(text), "{why}"),
                other => panic!("{fault}: {other:?}"),
            }
        }
        match decode_reply(200, &reply(FAULT_UNKNOWN_KEY_ID, b""), "abcd") {
            Err(Error::Rejected(why)) => assert!(why.contains("abcd")),
            other => panic!("{other:?}"),
        }
        for body in [
            reply(0, b"Authorization NOT verified"),
            b"authorization not verified".to_vec(),
        ] {
            match decode_reply(200, &body, "fp") {
                Err(Error::Rejected(why)) => assert!(why.contains("PENDING_VERIFICATION")),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            decode_reply(200, &reply(0, b""), "fp"),
            Err(Error::Rejected(_))
        ));
        assert!(matches!(
            decode_reply(200, b"\xff\xff\xff", "fp"),
            Err(Error::BadReply(_))
        ));
    }

    #[test]
    fn inner_replies_and_fallbacks() {
        let env = Message::reply(
            DIN,
            Body::QueryResponse {
                status: 1,
                data: r#"{"a":1}"#.into(),
            },
        );
        let bare = env.envelope.encode();
        let full = env.encode();
        for bytes in [&bare, &full] {
            match decode_inner(bytes, Expect::Query) {
                Ok(Reply::Json(v)) => assert_eq!(v.to_py(), r#"{"a": 1}"#),
                other => panic!("{other:?}"),
            }
        }
        match decode_inner(b"xx{\"vin\": \"X\", \"b\": {}}yy", Expect::Config) {
            Ok(Reply::Json(v)) => {
                assert_eq!(v.to_py(), r#"{"vin": "X", "b": {}, "battery_blocks": []}"#)
            }
            other => panic!("{other:?}"),
        }
        assert!(decode_inner(b"no json", Expect::Query).is_err());
        assert_eq!(
            decode_inner(b"", Expect::Firmware),
            Ok(Reply::Firmware(Firmware::default()))
        );
        let mut seed = 0x2545_f491u32;
        for len in 0..300 {
            let bytes = crate::gateway::proto::noise(&mut seed, len);
            let _ = decode_reply(200, &bytes, "fp");
            for e in [
                Expect::Config,
                Expect::Query,
                Expect::QueryStrict,
                Expect::Firmware,
            ] {
                let _ = decode_inner(&bytes, e);
            }
        }
    }

    #[test]
    fn three_lan_failures_switch_to_wifi_and_a_probe_switches_back() {
        use crate::gateway::tedapi::ClientOptions;
        use crate::sim::{self, Fault, Fixture, SimOptions};
        let gw_pwd = "ABCDEFGHIJ";
        let lan_sim = sim::start(SimOptions {
            fixture: Fixture::Pw3,
            gw_pwd: Some(gw_pwd.into()),
            frozen: true,
            v1r_public_key: Some(TEST_PUB.to_vec()),
            ..SimOptions::default()
        })
        .unwrap();
        let wifi_sim = sim::start(SimOptions {
            fixture: Fixture::Pw3,
            gw_pwd: Some(gw_pwd.into()),
            frozen: true,
            ..SimOptions::default()
        })
        .unwrap();
        let lan = V1rClient::new(V1rOptions {
            host: lan_sim.addr().to_string(),
            password: "FGHIJ".into(),
            key: Arc::new(RsaKey::from_pem(TEST_KEY).unwrap()),
            timeout: Duration::from_secs(5),
            pin: None,
            query_set: QuerySet::V2024_06,
        })
        .unwrap();
        let wifi = Client::new(ClientOptions::new(wifi_sim.addr().to_string(), gw_pwd)).unwrap();
        let mut t = Transport {
            id: "t".into(),
            lan,
            wifi: Some(wifi),
            leader: None,
            lan_failed: false,
            lan_fail_count: 0,
            lan_retry_at: None,
            wifi_fail_count: 0,
            wifi_retry_at: None,
        };
        let din = t.din().unwrap();
        assert!(t.status(&din).is_ok());
        assert_eq!(wifi_sim.stats().status, 0);
        // Followers only over Wi-Fi.
        let follower = "1707000-11-J--TG12000000002Z";
        assert!(t.components(follower, Some(&din)).is_ok());
        assert_eq!(wifi_sim.stats().components, 1);
        lan_sim.set_fault(Fault::Http500);
        for _ in 0..LAN_TRIP_AFTER {
            assert!(t.status(&din).is_err());
        }
        assert!(t.lan_failed);
        assert_eq!(t.lan_retry_at.map(|at| at > Instant::now()), Some(true));
        assert!(t.status(&din).is_ok());
        assert!(t.config(&din).is_ok());
        assert_eq!(wifi_sim.stats().status, 1);
        // The LAN is back; the probe runs once its time has come.
        lan_sim.set_fault(Fault::None);
        t.lan_retry_at = Some(Instant::now());
        assert!(t.status(&din).is_ok());
        assert!(!t.lan_failed);
        assert_eq!(wifi_sim.stats().status, 1);
    }

    #[test]
    fn backoffs() {
        assert_eq!(backoff(0).as_secs(), 60);
        assert_eq!(backoff(3).as_secs(), 480);
        assert_eq!(backoff(7).as_secs(), 7680);
        assert_eq!(backoff(100).as_secs(), 7680);
    }

    #[test]
    fn customer_password_is_the_end_of_gw_pwd() {
        let mut cfg = GatewayConfig {
            id: "x".into(),
            name: "x".into(),
            host: "h".into(),
            gw_pwd: Some("ABCDEFGHIJ".into()),
            password: None,
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            tls_fingerprint: None,
            query_set: QuerySet::V2024_06,
            simulated: false,
            mode: Mode::V1r,
            email: String::new(),
            auth_mode: crate::config::AuthMode::Cookie,
            rsa_key_path: None,
            rsa_key: None,
            wifi_host: None,
            cloud: None,
        };
        assert_eq!(customer_password(&cfg).as_deref(), Some("FGHIJ"));
        cfg.password = Some("pw".into());
        assert_eq!(customer_password(&cfg).as_deref(), Some("pw"));
        cfg.password = None;
        cfg.gw_pwd = Some("ÄBC".into());
        assert_eq!(customer_password(&cfg).as_deref(), Some("ÄBC"));
    }

    /// See: issue 14. A `PW_PASSWORD` that is not exactly 5 characters broke the v1r native
    /// login: it was written into a `gw_pwd` field and its last 5 characters taken again.
    #[test]
    fn r14_native_login_uses_the_customer_password_as_given() {
        let key = include_str!("../../tests/fixtures/v1r/test_rsa_private.pem");
        let key = Arc::new(RsaKey::from_pem(key).unwrap());
        for (password, gw_pwd, want) in [
            (Some("Secret-12345"), Some("ABCDEFGHIJ"), "Secret-12345"),
            (Some("abc"), None, "abc"),
            (None, Some("ABCDEFGHIJ"), "FGHIJ"),
        ] {
            let cfg = GatewayConfig {
                id: "x".into(),
                name: "x".into(),
                host: "127.0.0.1:9".into(),
                gw_pwd: gw_pwd.map(Secret::from),
                password: password.map(Secret::from),
                poll_interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1),
                tls_fingerprint: None,
                query_set: QuerySet::V2024_06,
                simulated: false,
                mode: Mode::V1r,
                email: String::new(),
                auth_mode: crate::config::AuthMode::Cookie,
                rsa_key_path: Some("test_rsa_private.pem".into()),
                rsa_key: Some(key.clone()),
                wifi_host: None,
                cloud: None,
            };
            let link = V1r::new(cfg).connect().unwrap();
            let native = link.native().expect("a native fetcher");
            assert!(native.logs_in_with(want), "{password:?} / {gw_pwd:?}");
        }
    }
}
