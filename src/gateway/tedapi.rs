//! Blocking TEDAPI client: Basic-auth HTTPS to a gateway (wire spec §1).
//!
//! Why it exists: every TEDAPI document the proxy serves (DIN, `config.json`, the signed status /
//! controller / components queries, system info) comes through these few HTTPS calls. This module
//! owns the transport only: one keep-alive `ureq` agent, Basic auth
//! `Tesla_Energy_Device:<gw_pwd>`, a per-request timeout, optional certificate pinning, the 300 s
//! rate-limit cooldown after HTTP 429/503, bounded gzip handling, and typed errors. Caching and
//! back-off belong to the poller; the client never retries on its own (apart from `ureq`
//! transparently re-opening a stale pooled keep-alive connection for a body-less GET).
//!
//! Reply handling is the pure function [`decode_reply`], unit-tested without a network. Nothing a
//! gateway sends can panic the process or make it allocate without bound: bodies and inflated
//! gzip are capped at [`MAX_BODY`], protobuf decoding is length-checked, JSON nesting is limited.

use std::fmt;
use std::time::{Duration, Instant};

use super::proto::{Body, Message};
use super::queries::{QuerySet, SignedQueries};
use super::{tls, Firmware};
use crate::json::{self, Value};
use crate::secret::Secret;
pub use crate::wire::MAX_RETRY_AFTER;
pub(crate) use crate::wire::{agent, base64, base_url, call, read_body, retry_after};
pub use crate::wire::{gunzip_if_gzip, Error, MAX_BODY};

/// How long every call is refused after HTTP 429 or 503 (upstream: 5 minutes).
pub const RATE_LIMIT_COOLDOWN: Duration = Duration::from_secs(300);

/// Basic-auth user name of the TEDAPI installer account.
const TEDAPI_USER: &str = "Tesla_Energy_Device";

/// Connection settings for one gateway.
#[derive(Clone)]
pub struct ClientOptions {
    /// `host[:port]`; an IPv6 literal may be given bare or in brackets.
    pub host: String,
    /// Full gateway password from the QR sticker (usually 10 characters).
    pub gw_pwd: Secret,
    /// Timeout of each request (connect + send + whole reply). Default 5 s.
    pub timeout: Duration,
    /// Accept only the certificate with this SHA-256 fingerprint (default: any certificate).
    pub pin: Option<tls::Fingerprint>,
    /// Which stored signed-query set to send.
    pub query_set: QuerySet,
}

impl ClientOptions {
    /// Options with the defaults: 5 s timeout, no pin, V2024_06 queries.
    pub fn new(host: impl Into<String>, gw_pwd: impl Into<Secret>) -> ClientOptions {
        ClientOptions {
            host: host.into(),
            gw_pwd: gw_pwd.into(),
            ..ClientOptions::default()
        }
    }
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            host: "192.168.91.1".into(),
            gw_pwd: Secret::default(),
            timeout: Duration::from_secs(5),
            pin: None,
            query_set: QuerySet::default(),
        }
    }
}

/// Hand-written so the password never reaches a log through `{:?}`.
impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("host", &self.host)
            .field("gw_pwd", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("pin", &self.pin.as_ref().map(tls::format_fingerprint))
            .field("query_set", &self.query_set)
            .finish()
    }
}

/// What a reply is expected to carry; selects the decoding in [`decode_reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `GET /tedapi/din`: plain text.
    Din,
    /// FileStore read of `config.json`.
    Config,
    /// Signed query answer; invalid JSON in the payload gives `{}` (status, controller).
    Query,
    /// Signed query answer; invalid or empty JSON is an error (components, as upstream's
    /// `strict` decoding, so a broken answer is not mistaken for "no components").
    QueryStrict,
    /// System-info answer.
    Firmware,
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Din(String),
    Json(Value),
    Firmware(Firmware),
}

/// Turns an HTTP status and body into a result, without any network or state.
///
/// 401/403 → [`Error::Auth`]; other non-200 → [`Error::Http`] (the caller starts the cooldown
/// for 429/503). A gzip body (`1f 8b`) is inflated (bounded by [`MAX_BODY`]); if inflating fails
/// the raw bytes are used.
pub fn decode_reply(status: u16, body: &[u8], expect: Expect) -> Result<Reply, Error> {
    match status {
        200 => {}
        401 | 403 => return Err(Error::Auth),
        code => return Err(Error::Http(code)),
    }
    let owned;
    let body = match gunzip_if_gzip(body)? {
        Some(inflated) => {
            owned = inflated;
            &owned[..]
        }
        None => body,
    };
    match expect {
        Expect::Din => {
            let text = std::str::from_utf8(body)
                .map_err(|_| Error::BadReply("DIN reply is not UTF-8 text".into()))?;
            let din = text.trim();
            if din.is_empty() {
                return Err(Error::BadReply("empty DIN reply".into()));
            }
            Ok(Reply::Din(din.to_string()))
        }
        Expect::Config => match decode_message(body)?.envelope.body {
            Body::ReadFileResponse { blob, .. } => Ok(Reply::Json(config_json(&blob)?)),
            other => Err(Error::BadReply(format!(
                "config reply has no config.json file ({})",
                body_kind(&other)
            ))),
        },
        Expect::Query | Expect::QueryStrict => match decode_message(body)?.envelope.body {
            Body::QueryResponse { status, data } => {
                if status == 3 {
                    log::warn!(
                        "TEDAPI query answered ERROR_FULL; if this persists after a firmware \
                         update, Tesla may have rotated the query signing keys (try V2024_06)"
                    );
                }
                query_json(&data, expect == Expect::QueryStrict).map(Reply::Json)
            }
            other => Err(Error::BadReply(format!(
                "query reply has no query response ({})",
                body_kind(&other)
            ))),
        },
        Expect::Firmware => match decode_message(body)?.envelope.body {
            Body::SystemInfoResponse(info) => Ok(Reply::Firmware(Firmware {
                version: info.version,
                githash: info.githash,
                part_number: info.part_number,
                serial_number: info.serial_number,
                din: info.din,
                device_type: info.device_type,
            })),
            // pypowerwall reads the (absent) version as "" rather than failing.
            _ => Ok(Reply::Firmware(Firmware::default())),
        },
    }
}

fn decode_message(body: &[u8]) -> Result<Message, Error> {
    Message::decode(body).map_err(|e| Error::BadReply(e.to_string()))
}

fn body_kind(body: &Body) -> String {
    match body {
        Body::Empty => "empty envelope".into(),
        Body::SystemInfoRequest | Body::SystemInfoResponse(_) | Body::Common(_) => {
            "system-info part".into()
        }
        Body::ErrorResponse { code, message } => format!("error response {code} ({message})"),
        Body::ReadFile { .. }
        | Body::ReadFileResponse { .. }
        | Body::UpdateFile { .. }
        | Body::UpdateFileResponse { .. } => "FileStore part".into(),
        Body::SetIslandMode { .. } | Body::SetIslandModeResponse { .. } => "TEG part".into(),
        Body::Query(_) | Body::QueryResponse { .. } => "query part".into(),
        Body::Other { field, .. } => format!("envelope field {field}"),
    }
}

/// `config.json` text → object. Invalid JSON gives `{}` (as upstream); a missing
/// `battery_blocks` is added as `[]`. Valid JSON that is not an object is an error.
pub(crate) fn config_json(blob: &[u8]) -> Result<Value, Error> {
    let mut value = match json::parse_bytes(blob) {
        Ok(v) => v,
        Err(e) => {
            log::error!("TEDAPI config.json: {e}; using {{}}");
            Value::object()
        }
    };
    let map = value
        .as_object_mut()
        .ok_or_else(|| Error::BadReply("config.json is not a JSON object".into()))?;
    if !map.contains_key("battery_blocks") {
        map.insert("battery_blocks", Value::Array(Vec::new()));
    }
    Ok(value)
}

/// Query payload → JSON. Invalid JSON gives `{}` unless `strict`; JSON `null` is an error.
pub(crate) fn query_json(data: &str, strict: bool) -> Result<Value, Error> {
    match json::parse(data) {
        Ok(Value::Null) => Err(Error::BadReply("query payload is JSON null".into())),
        Ok(v) => Ok(v),
        Err(e) if strict => Err(Error::BadReply(format!("query payload: {e}"))),
        Err(e) => {
            log::error!("TEDAPI query payload: {e}; using {{}}");
            Ok(Value::object())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// A blocking TEDAPI client for one gateway. Not shared between threads: the poller owns it.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    /// `Basic <base64>`; kept out of `Debug`.
    authorization: Secret,
    queries: std::sync::Arc<SignedQueries>,
    cooldown_period: Duration,
    cooldown_until: Option<Instant>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("cooldown_until", &self.cooldown_until)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the agent; no network traffic. Fails only on an unusable host or query set.
    pub fn new(opts: ClientOptions) -> Result<Client, Error> {
        let base = base_url(&opts.host)?;
        let queries = SignedQueries::shared(opts.query_set).map_err(Error::BadReply)?;
        let credentials = format!("{TEDAPI_USER}:{}", opts.gw_pwd.expose());
        Ok(Client {
            agent: agent(opts.timeout, opts.pin),
            base,
            authorization: Secret::new(format!("Basic {}", base64(credentials.as_bytes()))),
            queries,
            cooldown_period: RATE_LIMIT_COOLDOWN,
            cooldown_until: None,
        })
    }

    /// The agent and its keep-alive connection, for the gateway's other fetches of a tick.
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// Changes the cooldown started by HTTP 429/503 (default [`RATE_LIMIT_COOLDOWN`]); for tests.
    pub fn set_cooldown_period(&mut self, period: Duration) {
        self.cooldown_period = period;
    }

    /// Time left in the rate-limit cooldown, if one is running.
    pub fn cooldown_remaining(&self) -> Option<Duration> {
        let until = self.cooldown_until?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// `GET /`: PW2/+ serve their web portal (200 → `false`); a PW3 answers anything else
    /// (→ `true`). 429 and 5xx are transient: `Err`, and the caller keeps its previous value.
    pub fn detect_pw3(&mut self) -> Result<bool, Error> {
        let (status, _response) = self.send("GET", "/", None)?;
        match status {
            200 => Ok(false),
            429 | 500..=599 => Err(Error::Http(status)),
            _ => Ok(true),
        }
    }

    /// `GET /tedapi/din`: the gateway DIN, trimmed.
    pub fn din(&mut self) -> Result<String, Error> {
        match self.fetch("GET", "/tedapi/din", None, Expect::Din)? {
            Reply::Din(din) => Ok(din),
            other => Err(unexpected(other)),
        }
    }

    /// FileStore read of `config.json` from the gateway `din`.
    pub fn config(&mut self, din: &str) -> Result<Value, Error> {
        let request = Message::request(
            din,
            None,
            Body::ReadFile {
                domain: super::proto::DOMAIN_CONFIG_JSON,
                name: "config.json".into(),
            },
        );
        self.post_json("/tedapi/v1", &request, Expect::Config)
    }

    /// The `device_controller_basic` query (power flows, SOE, alerts).
    pub fn status(&mut self, din: &str) -> Result<Value, Error> {
        let request = Message::request(din, None, Body::Query(self.queries.basic.clone()));
        self.post_json("/tedapi/v1", &request, Expect::Query)
    }

    /// The `device_controller_full` query (status plus component signals).
    pub fn controller(&mut self, din: &str) -> Result<Value, Error> {
        let request = Message::request(din, None, Body::Query(self.queries.full.clone()));
        self.post_json("/tedapi/v1", &request, Expect::Query)
    }

    /// The ComponentsQuery for `din`. `via_leader = None`: sent to `/tedapi/v1` (the gateway
    /// itself, or the only Powerwall of a single-PW3 site). `Some(leader)`: routed to a
    /// Powerwall of a multi-PW3 site (sender = leader DIN, tail 2, `/tedapi/device/<din>/v1`).
    /// An empty or invalid JSON payload is an error here, not `{}`.
    pub fn components(&mut self, din: &str, via_leader: Option<&str>) -> Result<Value, Error> {
        let request = Message::request(
            din,
            via_leader,
            Body::Query(self.queries.components.clone()),
        );
        let path = match via_leader {
            Some(_) => format!("/tedapi/device/{}/v1", path_segment(din)?),
            None => "/tedapi/v1".to_string(),
        };
        self.post_json(&path, &request, Expect::QueryStrict)
    }

    /// The system-info request. A reply without a system-info part gives `version == ""`.
    pub fn firmware(&mut self, din: &str) -> Result<Firmware, Error> {
        let request = Message::request(din, None, Body::SystemInfoRequest);
        match self.fetch(
            "POST",
            "/tedapi/v1",
            Some(&request.encode()),
            Expect::Firmware,
        )? {
            Reply::Firmware(fw) => Ok(fw),
            other => Err(unexpected(other)),
        }
    }

    fn post_json(&mut self, path: &str, request: &Message, expect: Expect) -> Result<Value, Error> {
        match self.fetch("POST", path, Some(&request.encode()), expect)? {
            Reply::Json(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    fn fetch(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        expect: Expect,
    ) -> Result<Reply, Error> {
        let (status, response) = self.send(method, path, body)?;
        let bytes = if status == 200 {
            read_body(response)?
        } else {
            Vec::new()
        };
        let reply = decode_reply(status, &bytes, expect);
        if let Err(e) = &reply {
            log::debug!("TEDAPI {method} {path}: {e}");
        }
        reply
    }

    /// One request: cooldown check, send, and cooldown start on 429/503. No retries.
    fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, ureq::Response), Error> {
        if let Some(remaining) = self.cooldown_remaining() {
            return Err(Error::Cooldown { remaining });
        }
        self.cooldown_until = None;
        let request = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", self.authorization.expose());
        let result = match body {
            Some(bytes) => request
                .set("Content-type", "application/octet-string")
                .send_bytes(bytes),
            None => request.call(),
        };
        let (status, response) = call(result)?;
        if status == 429 || status == 503 {
            let pause = retry_after(response.header("retry-after")).unwrap_or(self.cooldown_period);
            log::error!(
                "TEDAPI {method} {path}: HTTP {status}, possibly rate limited; pausing requests \
                 for {} s",
                pause.as_secs()
            );
            self.cooldown_until = Some(Instant::now() + pause);
        }
        Ok((status, response))
    }

    /// A cheap request that tells whether the gateway answers at all (`GET /tedapi/din`, no
    /// parsing): `Ok` on any HTTP answer except 429/503 (which start the cooldown).
    pub fn probe(&mut self) -> Result<(), Error> {
        let (status, response) = self.send("GET", "/tedapi/din", None)?;
        let _ = read_body(response);
        match status {
            429 | 503 => Err(Error::Http(status)),
            _ => Ok(()),
        }
    }
}

fn unexpected(reply: Reply) -> Error {
    Error::BadReply(format!("unexpected reply kind {reply:?}"))
}

/// A DIN used as a URL path segment: refuse anything that would change the path.
fn path_segment(din: &str) -> Result<&str, Error> {
    if din.is_empty()
        || !din
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Error::BadReply(format!(
            "'{din}' is not a DIN usable in a URL"
        )));
    }
    Ok(din)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::proto::SystemInfo;
    use std::io::Write;

    const DIN: &str = "1232100-00-E--TG123456789ABC";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn query_reply(data: &str) -> Vec<u8> {
        Message::reply(
            DIN,
            Body::QueryResponse {
                status: 1,
                data: data.into(),
            },
        )
        .encode()
    }

    fn config_reply(text: &str) -> Vec<u8> {
        Message::reply(
            DIN,
            Body::ReadFileResponse {
                name: "config.json".into(),
                blob: text.as_bytes().to_vec(),
                hash: vec![1],
            },
        )
        .encode()
    }

    fn json_of(r: Result<Reply, Error>) -> String {
        match r {
            Ok(Reply::Json(v)) => v.to_py(),
            other => panic!("expected JSON, got {other:?}"),
        }
    }

    #[test]
    fn din_is_trimmed_and_may_be_gzipped() {
        let expect = Ok(Reply::Din(DIN.into()));
        assert_eq!(
            decode_reply(200, format!("  {DIN}\n").as_bytes(), Expect::Din),
            expect
        );
        assert_eq!(
            decode_reply(200, &gzip(format!("{DIN}\r\n").as_bytes()), Expect::Din),
            expect
        );
        assert!(matches!(
            decode_reply(200, b" \n", Expect::Din),
            Err(Error::BadReply(_))
        ));
        assert!(matches!(
            decode_reply(200, &[0xff, 0xfe, 0x00], Expect::Din),
            Err(Error::BadReply(_))
        ));
    }

    #[test]
    fn statuses_map_to_typed_errors() {
        for expect in [Expect::Din, Expect::Config, Expect::Query, Expect::Firmware] {
            assert_eq!(decode_reply(401, b"", expect), Err(Error::Auth));
            assert_eq!(decode_reply(403, b"denied", expect), Err(Error::Auth));
            assert_eq!(decode_reply(429, b"", expect), Err(Error::Http(429)));
            assert_eq!(decode_reply(500, b"", expect), Err(Error::Http(500)));
            assert_eq!(decode_reply(404, b"", expect), Err(Error::Http(404)));
        }
    }

    #[test]
    fn config_reply_decodes_and_gets_battery_blocks() {
        let r = decode_reply(200, &config_reply(r#"{"vin":"X"}"#), Expect::Config);
        assert_eq!(json_of(r), r#"{"vin": "X", "battery_blocks": []}"#);
        let r = decode_reply(
            200,
            &config_reply(r#"{"battery_blocks":[{"vin":"A"}],"vin":"X"}"#),
            Expect::Config,
        );
        assert_eq!(
            json_of(r),
            r#"{"battery_blocks": [{"vin": "A"}], "vin": "X"}"#
        );
        // Invalid JSON inside the file degrades to {} (plus battery_blocks), as upstream.
        let r = decode_reply(200, &config_reply("{not json"), Expect::Config);
        assert_eq!(json_of(r), r#"{"battery_blocks": []}"#);
        // Gzip of the whole protobuf body.
        let r = decode_reply(200, &gzip(&config_reply("{}")), Expect::Config);
        assert_eq!(json_of(r), r#"{"battery_blocks": []}"#);
        // JSON that is not an object is unusable.
        assert!(matches!(
            decode_reply(200, &config_reply("[1]"), Expect::Config),
            Err(Error::BadReply(_))
        ));
    }

    #[test]
    fn config_reply_without_file_is_bad() {
        for body in [Vec::new(), query_reply("{}")] {
            assert!(matches!(
                decode_reply(200, &body, Expect::Config),
                Err(Error::BadReply(_))
            ));
        }
    }

    #[test]
    fn query_reply_decodes() {
        let r = decode_reply(200, &query_reply(r#"{"control":{"a":1}}"#), Expect::Query);
        assert_eq!(json_of(r), r#"{"control": {"a": 1}}"#);
        let r = decode_reply(200, &gzip(&query_reply(r#"{"b":2.5}"#)), Expect::Query);
        assert_eq!(json_of(r), r#"{"b": 2.5}"#);
    }

    #[test]
    fn bad_query_json_is_empty_object_unless_strict() {
        for data in ["", "{\"a\":", "garbage"] {
            let r = decode_reply(200, &query_reply(data), Expect::Query);
            assert_eq!(json_of(r), "{}");
            assert!(matches!(
                decode_reply(200, &query_reply(data), Expect::QueryStrict),
                Err(Error::BadReply(_))
            ));
        }
        assert!(matches!(
            decode_reply(200, &query_reply("null"), Expect::Query),
            Err(Error::BadReply(_))
        ));
        // Deep nesting is refused by the parser rather than overflowing the stack.
        let deep = "[".repeat(100_000);
        assert_eq!(
            json_of(decode_reply(200, &query_reply(&deep), Expect::Query)),
            "{}"
        );
    }

    #[test]
    fn query_reply_without_payload_is_bad() {
        for body in [Vec::new(), config_reply("{}")] {
            assert!(matches!(
                decode_reply(200, &body, Expect::Query),
                Err(Error::BadReply(_))
            ));
        }
    }

    #[test]
    fn firmware_reply() {
        let info = SystemInfo {
            part_number: "1707000-11-J".into(),
            serial_number: "TG12000000001Z".into(),
            din: DIN.into(),
            version: "25.10.1 7d8f0a8b".into(),
            githash: vec![0x7d, 0x8f],
            device_type: Some(4),
        };
        let body = Message::reply(DIN, Body::SystemInfoResponse(info)).encode();
        match decode_reply(200, &body, Expect::Firmware) {
            Ok(Reply::Firmware(fw)) => {
                assert_eq!(fw.version, "25.10.1 7d8f0a8b");
                assert_eq!(fw.part_number, "1707000-11-J");
                assert_eq!(fw.serial_number, "TG12000000001Z");
                assert_eq!(fw.din, DIN);
                assert_eq!(fw.githash, vec![0x7d, 0x8f]);
                assert_eq!(fw.device_type, Some(4));
            }
            other => panic!("{other:?}"),
        }
        let fixture = include_bytes!("../sim/fixtures/pw3/firmware_response.bin");
        match decode_reply(200, &gzip(fixture), Expect::Firmware) {
            Ok(Reply::Firmware(fw)) => assert_eq!(fw.version, "25.10.1 7d8f0a8b"),
            other => panic!("{other:?}"),
        }
        // A reply without the system-info part is version "", not an error.
        assert_eq!(
            decode_reply(200, &query_reply("{}"), Expect::Firmware),
            Ok(Reply::Firmware(Firmware::default()))
        );
        assert_eq!(
            decode_reply(200, b"", Expect::Firmware),
            Ok(Reply::Firmware(Firmware::default()))
        );
    }

    #[test]
    fn garbage_and_truncation_are_bad_replies_never_panics() {
        let good = query_reply(r#"{"a":[1,2,3],"b":"xyz"}"#);
        for cut in 1..good.len() {
            for expect in [Expect::Config, Expect::Query, Expect::Firmware] {
                // Must not panic; most cuts are BadReply.
                let _ = decode_reply(200, &good[..cut], expect);
            }
        }
        assert!(matches!(
            decode_reply(200, &good[..good.len() / 2], Expect::Query),
            Err(Error::BadReply(_))
        ));
        let mut seed = 0x9e37_79b9u32;
        for len in 0..400 {
            let bytes = crate::gateway::proto::noise(&mut seed, len);
            for expect in [Expect::Din, Expect::Config, Expect::Query, Expect::Firmware] {
                let _ = decode_reply(200, &bytes, expect);
            }
        }
        assert!(matches!(
            decode_reply(200, b"<html>hello</html>", Expect::Query),
            Err(Error::BadReply(_))
        ));
    }

    #[test]
    fn bad_gzip_falls_back_to_raw_bytes() {
        // Gzip magic but a broken stream: the raw bytes are tried, and they are not protobuf.
        let mut broken = gzip(&query_reply("{}"));
        broken.truncate(broken.len() / 2);
        assert_eq!(gunzip_if_gzip(&broken), Ok(None));
        assert!(matches!(
            decode_reply(200, &broken, Expect::Query),
            Err(Error::BadReply(_))
        ));
        assert_eq!(gunzip_if_gzip(&[0x1f, 0x8b]), Ok(None));
        assert_eq!(gunzip_if_gzip(b"plain"), Ok(None));
        assert_eq!(gunzip_if_gzip(&[0x1f, 0x8b, b'A']), Ok(None));
    }

    #[test]
    fn gzip_bomb_is_refused() {
        let zeros = vec![0u8; MAX_BODY + 1];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 100_000);
        assert!(matches!(gunzip_if_gzip(&bomb), Err(Error::BadReply(_))));
        assert!(matches!(
            decode_reply(200, &bomb, Expect::Query),
            Err(Error::BadReply(_))
        ));
    }

    #[test]
    fn retry_after_is_bounded() {
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(retry_after(Some("10")), s(10));
        assert_eq!(retry_after(Some(" 0 ")), s(1));
        assert_eq!(retry_after(Some("99999999999999999999999")), s(600));
        assert_eq!(retry_after(Some("601")), s(600));
        for bad in ["", "-5", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "10s"] {
            assert_eq!(retry_after(Some(bad)), None, "{bad}");
        }
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            (
                "Tesla_Energy_Device:ABCDEFGHIJ",
                "VGVzbGFfRW5lcmd5X0RldmljZTpBQkNERUZHSElK",
            ),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(base_url("192.168.91.1").unwrap(), "https://192.168.91.1");
        assert_eq!(base_url(" gw:8443 ").unwrap(), "https://gw:8443");
        assert_eq!(base_url("fe80::1").unwrap(), "https://[fe80::1]");
        assert_eq!(base_url("[fe80::1]:443").unwrap(), "https://[fe80::1]:443");
        for bad in ["", "a/b", "user@host", "h?x", "h#x", "a b"] {
            assert!(matches!(base_url(bad), Err(Error::Unreachable(_))), "{bad}");
        }
        assert!(path_segment("1707000-11-J--TG12000000001Z").is_ok());
        assert!(path_segment("../x").is_err());
        assert!(path_segment("").is_err());
    }

    #[test]
    fn messages_never_contain_the_password() {
        let opts = ClientOptions::new("127.0.0.1:9", "SECRETPWD1");
        assert!(!format!("{opts:?}").contains("SECRETPWD1"));
        let client = Client::new(opts).unwrap();
        assert!(!format!("{client:?}").contains("SECRETPWD1"));
        assert!(!format!("{client:?}").contains(&base64(b"Tesla_Energy_Device:SECRETPWD1")));
        for e in [
            Error::Auth,
            Error::Timeout,
            Error::Http(429),
            Error::Cooldown {
                remaining: Duration::from_secs(12),
            },
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn cooldown_refuses_without_network() {
        // Port 9 on localhost is never contacted: the cooldown answers first.
        let mut client = Client::new(ClientOptions::new("127.0.0.1:9", "x")).unwrap();
        assert_eq!(client.cooldown_remaining(), None);
        client.cooldown_until = Some(Instant::now() + Duration::from_secs(60));
        assert!(
            matches!(client.din(), Err(Error::Cooldown { remaining }) if remaining.as_secs() >= 59)
        );
        assert!(matches!(client.status(DIN), Err(Error::Cooldown { .. })));
        client.cooldown_until = Some(Instant::now());
        assert_eq!(client.cooldown_remaining(), None);
    }
}
