//! Wire plumbing shared by every transport to a gateway (TEDAPI, v1r, native, local) and the
//! simulator: the gateway-family [`Error`], the keep-alive `ureq` [`agent`] with the gateway TLS
//! policy ([`tls`]), [`base_url`], bounded body reading ([`read_body`], [`gunzip_if_gzip`]),
//! [`base64`] and [`hex`].
//!
//! **Invariant:** nothing here knows a gateway document or a route; Every read is bounded by [`MAX_BODY`].

use std::fmt;
use std::io::Read;
use std::time::Duration;

pub mod tls;

/// Largest body we read from a gateway, and the largest a gzip body may inflate to.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why a call to a LAN gateway failed: the error of the gateway transport family (TEDAPI,
/// v1r, the native and local REST clients); Tesla's cloud has its own (`cloud::Error`, mapped
/// into this one at the `Source` boundary). Messages name what failed and never contain a
/// secret.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// HTTP 401 or 403: wrong gateway password, or TEDAPI not reachable from this network.
    Auth,
    /// No complete answer within the timeout.
    Timeout,
    /// Connection refused, DNS failure, TLS failure (including a pin mismatch), connection
    /// closed before a reply, or an unusable host.
    Unreachable(String),
    /// A rate-limit cooldown is running; no request was sent.
    Cooldown { remaining: Duration },
    /// Any other non-200 status (429/503 also start the cooldown).
    Http(u16),
    /// The reply could not be used: undecodable protobuf, missing payload, oversized body, …
    BadReply(String),
    /// v1r: the gateway refused a signed message (a `MessageFault`, or the RSA key is unknown or
    /// still pending verification); the text says which and what to do.
    Rejected(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Auth => write!(
                f,
                "gateway refused the credentials (HTTP 401/403): check the gateway password \
                 and that TEDAPI is reachable from this network"
            ),
            Error::Timeout => write!(f, "gateway did not answer within the timeout"),
            Error::Unreachable(why) => write!(f, "gateway unreachable: {why}"),
            Error::Cooldown { remaining } => write!(
                f,
                "rate-limit cooldown after HTTP 429/503: {} s left, request not sent",
                remaining.as_secs()
            ),
            Error::Http(code @ (429 | 503)) => write!(
                f,
                "gateway answered HTTP {code} (rate limited): pausing requests for a cooldown"
            ),
            Error::Http(code) => write!(f, "gateway answered HTTP {code}"),
            Error::BadReply(why) => write!(f, "unusable reply from gateway: {why}"),
            Error::Rejected(why) => write!(f, "gateway refused the signed request: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Inflates a gzip body (`1f 8b` magic, more than 2 bytes) up to [`MAX_BODY`].
/// `Ok(None)`: not gzip, or not valid gzip (use the raw bytes). Inflating beyond the cap is an
/// error rather than a fallback, so a gzip bomb is refused outright.
pub fn gunzip_if_gzip(body: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    if body.len() <= 2 || body[..2] != [0x1f, 0x8b] {
        return Ok(None);
    }
    let mut out = Vec::new();
    let reader = flate2::read::MultiGzDecoder::new(body);
    match reader.take(MAX_BODY as u64 + 1).read_to_end(&mut out) {
        Ok(_) if out.len() > MAX_BODY => Err(Error::BadReply(format!(
            "gzip body inflates beyond {} MiB",
            MAX_BODY >> 20
        ))),
        Ok(_) => Ok(Some(out)),
        Err(e) => {
            log::debug!("TEDAPI body starts like gzip but does not inflate ({e}); using raw bytes");
            Ok(None)
        }
    }
}

/// `https://host[:port]`, refusing hosts that would change the URL's meaning.
pub fn base_url(host: &str) -> Result<String, Error> {
    let host = host.trim();
    let bad = |why: &str| Err(Error::Unreachable(format!("invalid host '{host}': {why}")));
    if host.is_empty() {
        return bad("empty");
    }
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(format!("https://[{host}]"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#@\\".contains(c))
    {
        return bad("expected host[:port]");
    }
    Ok(format!("https://{host}"))
}

/// A keep-alive agent with the gateway TLS policy and the timeout on every phase.
pub fn agent(timeout: Duration, pin: Option<tls::Fingerprint>) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .tls_config(tls::gateway_client_config(pin))
        .timeout(timeout)
        .timeout_connect(timeout)
        .build()
}

/// Status and (unread) response of a call, or the transport failure.
pub fn call(result: Result<ureq::Response, ureq::Error>) -> Result<(u16, ureq::Response), Error> {
    match result {
        Ok(r) => Ok((r.status(), r)),
        Err(ureq::Error::Status(code, r)) => Ok((code, r)),
        Err(ureq::Error::Transport(t)) => Err(transport_error(&t)),
    }
}

fn transport_error(t: &ureq::Transport) -> Error {
    if timed_out(t) {
        return Error::Timeout;
    }
    match t.kind() {
        ureq::ErrorKind::BadStatus | ureq::ErrorKind::BadHeader => {
            Error::BadReply(format!("malformed HTTP reply: {t}"))
        }
        _ => Error::Unreachable(t.to_string()),
    }
}

fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// Reads a body up to [`MAX_BODY`]; larger bodies are refused.
pub fn read_body(response: ureq::Response) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    match response
        .into_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
    {
        Ok(_) if body.len() > MAX_BODY => Err(Error::BadReply(format!(
            "reply body larger than {} MiB",
            MAX_BODY >> 20
        ))),
        Ok(_) => Ok(body),
        Err(e) if timed_out(&e) => Err(Error::Timeout),
        Err(e) => Err(Error::BadReply(format!("reply body cut short: {e}"))),
    }
}

/// Standard base64 (with padding), for the Basic-auth header.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Longest pause a gateway's `Retry-After` may impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// A `Retry-After` header in seconds (RFC 9110 delay-seconds), at least 1 s and at most
/// [`MAX_RETRY_AFTER`]; `None` when absent or not a number (an HTTP-date is not trusted: the
/// gateway's clock may be wrong), and the caller keeps its default pause.
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    let text = header?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only: a parse failure can only be an overflow, which is "very long".
    let secs = text.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(
        secs.clamp(1, MAX_RETRY_AFTER.as_secs()),
    ))
}

/// Lowercase hex of `b`.
pub fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Decodes lowercase or uppercase hex; `None` on odd length or a non-hex digit.
pub fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
