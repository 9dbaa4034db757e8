//! The proxy's fallback branch in local modes: a non-`/api` path that is not a UI file is
//! forwarded to the gateway with the poller's login ([`Forwarder`]). Paths are normalised and
//! refused when they could leave the gateway's web root; at most two forwards run at once and a
//! token bucket bounds the rate. `/api/*` is never forwarded.

use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::gateway::tedapi::{self};

use super::*;

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
    pub(super) in_flight: AtomicUsize,
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
pub(super) struct TokenBucket {
    pub(super) tokens: f64,
    pub(super) last: Instant,
    pub(super) rate: f64,
}

impl TokenBucket {
    pub(super) fn new(rate: f64) -> TokenBucket {
        TokenBucket {
            tokens: rate,
            last: Instant::now(),
            rate,
        }
    }

    /// Takes one token if there is one.
    pub(super) fn take(&mut self, now: Instant) -> bool {
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
pub(super) fn forward_agent(
    timeout: Duration,
    pin: Option<crate::wire::tls::Fingerprint>,
) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .tls_config(crate::wire::tls::gateway_client_config(pin))
        .timeout(timeout)
        .timeout_connect(timeout)
        .redirects(0)
        .build()
}

impl Forwarder {
    pub const MAX_IN_FLIGHT: usize = 2;
    /// Forwarded requests per second (and the burst).
    pub const RATE_PER_SEC: f64 = 10.0;

    pub(super) fn new(agent: ureq::Agent, base: String) -> Forwarder {
        Forwarder {
            agent,
            base,
            auth: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            bucket: Mutex::new(TokenBucket::new(Self::RATE_PER_SEC)),
        }
    }

    pub(super) fn set(&self, auth: Option<Auth>) {
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
