//! Scripted faults: what the simulator does instead of a normal answer (`/test/fault/<kind>`),
//! and how a fault changes an answer ([`apply_fault`]).

use std::io::Write;

use super::http::Response;
use super::server::{now, Action};
use super::{data, tedapi};

/// A misbehaviour injected into every `/tedapi/*` answer (`GET /test/fault/<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Read the request, never answer (until the client gives up).
    Timeout,
    /// Read the request, drop the connection without an answer.
    Close,
    Http429,
    Http500,
    Http403,
    /// 200 with random bytes.
    Garbage,
    /// 200 with the first half of the real (protobuf) reply.
    Truncated,
    /// 200, valid protobuf, but the JSON inside is cut in half (local `/api/*`: the JSON body
    /// is cut in half).
    BadJson,
    /// 200 with `1f 8b` (the gzip magic) and junk.
    BadGzip,
    /// Announce the full `Content-Length`, send half the body, close.
    HalfBody,
    Http401,
    Http404,
    Http503,
}

impl Fault {
    pub const ALL: [Fault; 14] = [
        Fault::None,
        Fault::Timeout,
        Fault::Close,
        Fault::Http429,
        Fault::Http500,
        Fault::Http403,
        Fault::Garbage,
        Fault::Truncated,
        Fault::BadJson,
        Fault::BadGzip,
        Fault::HalfBody,
        Fault::Http401,
        Fault::Http404,
        Fault::Http503,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Timeout => "timeout",
            Fault::Close => "close",
            Fault::Http429 => "http429",
            Fault::Http500 => "http500",
            Fault::Http403 => "http403",
            Fault::Garbage => "garbage",
            Fault::Truncated => "truncated",
            Fault::BadJson => "badjson",
            Fault::BadGzip => "badgzip",
            Fault::HalfBody => "halfbody",
            Fault::Http401 => "http401",
            Fault::Http404 => "http404",
            Fault::Http503 => "http503",
        }
    }

    pub fn parse(s: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// Adds the `Retry-After` knob's header to a 429 or 503 answer.
pub(super) fn with_retry_after(action: Action, value: Option<&str>) -> Action {
    match (action, value) {
        (Action::Respond(r), Some(v)) if r.status == 429 || r.status == 503 => {
            Action::Respond(r.with_header("Retry-After", v))
        }
        (action, _) => action,
    }
}

pub(super) fn apply_fault(fault: Fault, resp: Response, gzip: bool) -> Action {
    let ok = resp.status == 200;
    let gz = |mut r: Response| {
        if gzip && r.status == 200 {
            r.body = gzip_bytes(&r.body);
        }
        r
    };
    match fault {
        Fault::None | Fault::BadJson => Action::Respond(gz(resp)),
        Fault::Timeout => Action::Hang,
        Fault::Close => Action::Close,
        Fault::Http429 => Action::Respond(Response::json(
            429,
            r#"{"code":429,"error":"Too Many Requests","message":"Rate limited"}"#,
        )),
        Fault::Http500 => Action::Respond(Response::text(500, "Internal Server Error")),
        Fault::Http403 => Action::Respond(Response::json(403, data::ACCESS_DENIED_JSON)),
        Fault::Http401 => Action::Respond(Response::json(401, data::UNAUTHORIZED_JSON)),
        Fault::Http404 => Action::Respond(Response::json(
            404,
            r#"{"code":404,"error":"Not Found","message":"Not Found"}"#,
        )),
        Fault::Http503 => Action::Respond(Response::text(503, "Service Unavailable")),
        Fault::Garbage => Action::Respond(Response::new(200, tedapi::PROTOBUF, garbage())),
        Fault::Truncated if ok => {
            let mut r = resp;
            r.body.truncate(r.body.len() / 2);
            Action::Respond(gz(r))
        }
        Fault::HalfBody if ok => Action::HalfBody(gz(resp)),
        Fault::Truncated | Fault::HalfBody => Action::Respond(resp),
        Fault::BadGzip => {
            let mut body = vec![0x1f, 0x8b];
            body.extend_from_slice(&garbage()[..32]);
            Action::Respond(Response::new(200, tedapi::PROTOBUF, body))
        }
    }
}

/// Random bytes that are neither valid protobuf (field 1 with the invalid wire type 7 first)
/// nor gzip.
fn garbage() -> Vec<u8> {
    let mut x = (now().to_bits() | 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = vec![0x0f];
    out.extend((0..95).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as u8
    }));
    out
}

fn gzip_bytes(b: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(b);
    enc.finish().unwrap_or_default()
}
