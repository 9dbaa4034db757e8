//! Request routing: one function from a request to an answer, in the proxy's dispatch order.
//!
//! Matching follows `proxy/server.py` (spec `proxy-compat.md` §2) with the allowed improvements
//! of its §10: the `PROXY_BASE_URL` prefix is stripped, query strings never change which route
//! answers (routes that read the query still see it), HEAD is answered like GET without a body,
//! and every answer carries `Content-Length` on an HTTP/1.1 keep-alive connection.

use std::io::{Cursor, Read};
use std::sync::Arc;
use std::time::Instant;

use tiny_http::{Header, Method, Request, Response, StatusCode};

use super::control::{Controller, PostReq};
use super::routes;
use super::status::Stats;
use super::www;
use crate::config::{HttpsMode, Public};
use crate::gateway::local::{ForwardError, Forwarder};
use crate::render::{Body, JSON};
use crate::snapshot::{Hub, View};

/// Largest request body we read (the proxy's POST limit).
pub const MAX_BODY: u64 = 4096;

/// Everything a request handler may read.
pub struct Ctx {
    /// The configuration without its secrets.
    pub config: Public,
    pub hub: Arc<Hub>,
    pub stats: Stats,
    /// Index of the gateway the legacy routes serve.
    pub default_gateway: usize,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub ws: super::ws::WsHub,
    pub aggregates: super::api::Aggregates,
    /// Control writes (`/control/*`, `/api/gateways/{id}/control/*`).
    pub control: Controller,
    /// `/metrics`: request counters and the cached per-gateway text.
    pub metrics: crate::metrics::Metrics,
    /// At most `PW_WORKERS` requests are being answered at once (writing the answer out is
    /// not counted, so a client that does not read cannot hold a permit).
    pub permits: super::server::Permits,
    /// The MQTT publisher's state for `/api/mqtt/status` (issue 16).
    pub mqtt: Arc<super::mqtt::Status>,
    /// `/api/timeseries/*` bodies, rendered once per history step.
    pub timeseries: super::timeseries::Cache,
}

impl Ctx {
    pub fn views(&self, now: Instant) -> Vec<View> {
        self.hub.views(now)
    }
}

/// `Arc<[u8]>` as a `Read` body without copying.
struct Shared(Arc<[u8]>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// An answer before it is written.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Arc<[u8]>,
    /// Route answers carry `Access-Control-Allow-Origin: *`; static/fallback answers do not.
    pub cors: bool,
    /// Extra headers; a borrowed (`&'static`) value is written without parsing or allocating.
    pub headers: Vec<(&'static str, std::borrow::Cow<'static, str>)>,
}

impl Answer {
    pub fn route(body: &Body) -> Answer {
        Answer {
            status: 200,
            content_type: body.content_type,
            body: body.bytes.clone(),
            cors: true,
            headers: Vec::new(),
        }
    }

    pub fn json(status: u16, text: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: JSON,
            body: Arc::from(text.into().into_bytes()),
            cors: true,
            headers: Vec::new(),
        }
    }

    pub fn text(status: u16, content_type: &'static str, text: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type,
            body: Arc::from(text.into().into_bytes()),
            cors: true,
            headers: Vec::new(),
        }
    }
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

pub fn send(rq: Request, a: Answer) {
    use std::borrow::Cow;
    // Fixed names and values go out as they are (tiny_http patch 20); only computed values
    // are parsed into headers.
    let mut headers = Vec::new();
    for (k, v) in &a.headers {
        if let Cow::Owned(v) = v {
            headers.extend(header(k, v));
        }
    }
    let len = a.body.len();
    let mut response = Response::new(
        StatusCode(a.status),
        headers,
        Cursor::new(Shared(a.body.clone())),
        Some(len),
        None,
    )
    .with_shared_bytes(a.body)
    .with_static_header("Content-Type", a.content_type);
    if a.cors {
        response = response.with_static_header("Access-Control-Allow-Origin", "*");
    }
    for (k, v) in &a.headers {
        if let Cow::Borrowed(v) = v {
            response = response.with_static_header(k, v);
        }
    }
    // A client that went away is not an error worth more than a debug line.
    if let Err(e) = rq.respond(response) {
        log::debug!("http: answer not delivered: {e}");
    }
}

/// Removes `PROXY_BASE_URL` from the front of a request target, keeping a leading `/`.
pub fn strip_base<'a>(target: &'a str, base: &str) -> std::borrow::Cow<'a, str> {
    if base != "/" {
        if let Some(rest) = target.strip_prefix(base) {
            return format!("/{rest}").into();
        }
    }
    target.into()
}

/// Handles one request.
///
/// The route sees the request's path, query and headers borrowed from it: answering a
/// keep-alive GET of a pre-rendered body allocates nothing here (issue 20).
pub fn handle(ctx: &Ctx, mut rq: Request) {
    let method = rq.method().clone();
    // A POST body is read before taking a permit, so a slow sender cannot hold one. At most
    // MAX_BODY + 1 bytes are read, whatever the client declares; a body that does not arrive
    // within the request deadline is answered 408 (tiny_http then closes the connection).
    let mut body = Vec::new();
    let content_length = rq.body_length();
    let too_big = content_length.is_some_and(|n| n as u64 > MAX_BODY);
    if method == Method::Post && !too_big {
        if let Err(e) = rq.as_reader().take(MAX_BODY + 1).read_to_end(&mut body) {
            log::debug!("http: request body not received: {e}");
            let (status, why) = match e.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    (408, "request body not received in time")
                }
                _ => (400, "request body cut short or malformed"),
            };
            let text = crate::json::Value::from(crate::json::Map::new().with("error", why));
            return send(rq, Answer::json(status, text.to_py()));
        }
    }
    let upgrade = header_str(&rq, "Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if upgrade && matches!(method, Method::Get | Method::Head) {
        // The request is handed over whole, so the route sees copies of what it reads.
        let raw = rq.url().to_string();
        let header = |name: &str| header_value(&rq, name);
        let (inm, accept, accept_encoding) = (
            header("If-None-Match"),
            header("Accept"),
            header("Accept-Encoding"),
        );
        let target = strip_base(&raw, &ctx.config.server.base_url);
        let heads = [
            inm.as_deref(),
            accept.as_deref(),
            accept_encoding.as_deref(),
        ];
        let req = Req::new(ctx, &target, heads, upgrade);
        let _permit = ctx.permits.acquire();
        return routes::upgrade(req, rq);
    }
    let answer = answer(ctx, &rq, method, &body, too_big);
    send(rq, answer);
}

/// The answer to a request that is not a WebSocket upgrade (its body, if any, read).
fn answer(ctx: &Ctx, rq: &Request, method: Method, body: &[u8], too_big: bool) -> Answer {
    let target = strip_base(rq.url(), &ctx.config.server.base_url);
    let header = |name: &str| header_str(rq, name);
    let heads = [
        header("If-None-Match"),
        header("Accept"),
        header("Accept-Encoding"),
    ];
    let req = Req::new(ctx, &target, heads, false);
    let path = req.path;
    let permit = ctx.permits.acquire();
    let answer = match method {
        Method::Get | Method::Head => routes::dispatch(req),
        Method::Post => {
            let remote = rq
                .remote_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|| "?".into());
            let post_req = PostReq {
                path,
                gateway: None,
                action: "",
                content_type: header_value(rq, "Content-Type"),
                authorization: header_value(rq, "Authorization"),
                content_length: rq.body_length(),
                body,
                too_big: too_big || body.len() as u64 > MAX_BODY,
                remote,
            };
            post(ctx, post_req)
        }
        Method::Options => Answer {
            status: 204,
            content_type: "text/plain",
            body: Arc::from(Vec::new()),
            cors: true,
            headers: vec![
                (
                    "Access-Control-Allow-Methods",
                    "GET, POST, HEAD, OPTIONS".into(),
                ),
                (
                    "Access-Control-Allow-Headers",
                    "Content-Type, Authorization".into(),
                ),
            ],
        },
        _ => Answer::json(405, r#"{"error": "Method Not Allowed"}"#),
    };
    drop(permit);
    ctx.metrics
        .requests
        .count(routes::family(&method, path), answer.status);
    answer
}

/// The value of a request header (names compare case-insensitively).
pub fn header_value(rq: &Request, name: &str) -> Option<String> {
    header_str(rq, name).map(str::to_string)
}

/// The value of a request header, borrowed from the request.
pub fn header_str<'a>(rq: &'a Request, name: &str) -> Option<&'a str> {
    rq.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// What a route handler sees of a request.
pub struct Req<'a> {
    pub ctx: &'a Ctx,
    pub path: &'a str,
    pub query: &'a str,
    /// `{name}` segments of the matched pattern.
    pub params: Vec<(&'static str, String)>,
    /// The matched route (set by `routes::dispatch`).
    pub route: Option<&'static routes::Route>,
    pub now: Instant,
    pub if_none_match: Option<&'a str>,
    /// The `Accept` header (`/metrics` picks its format from it).
    pub accept: Option<&'a str>,
    /// The `Accept-Encoding` header (`/metrics` gzips when it allows).
    pub accept_encoding: Option<&'a str>,
    /// The client asked for a WebSocket upgrade.
    pub upgrade: bool,
}

impl<'a> Req<'a> {
    /// The request for `target` (path and query, the base URL stripped) with its
    /// `If-None-Match`, `Accept` and `Accept-Encoding` headers.
    fn new(ctx: &'a Ctx, target: &'a str, heads: [Option<&'a str>; 3], upgrade: bool) -> Req<'a> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let [if_none_match, accept, accept_encoding] = heads;
        Req {
            ctx,
            path,
            query,
            params: Vec::new(),
            route: None,
            now: Instant::now(),
            if_none_match,
            accept,
            accept_encoding,
            upgrade,
        }
    }

    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// All gateway views, in configuration order.
    pub fn views(&self) -> Vec<View> {
        self.ctx.views(self.now)
    }
}

/// A POST: a route of [`routes::POST_ROUTES`], else the proxy's `Invalid Request`.
fn post(ctx: &Ctx, req: PostReq<'_>) -> Answer {
    let Some((route, params)) = routes::find_post(req.path) else {
        ctx.stats.with(|c| c.errors += 1);
        return Answer::json(400, r#"{"error": "Invalid Request"}"#);
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    let gateway = param("id").map(str::to_string);
    // Prefix routes (the proxy's `/control…`) take the action from the second segment.
    let action = param("action")
        .map(str::to_string)
        .unwrap_or_else(|| req.path.split('/').nth(2).unwrap_or("").to_string());
    let req = PostReq {
        gateway: gateway.as_deref(),
        action: &action,
        ..req
    };
    (route.handler)(ctx, &req)
}

/// The proxy's last branch: the web UI's files; else, in local modes, the gateway's own answer
/// for a non-`/api` path (forwarded with the login session); else `Not Found`. `/api/*` is never
/// forwarded. Like the proxy, these answers carry the two UI cookies (placeholder values: the
/// gateway's session cookies are never handed to clients) and no CORS header.
pub fn fallback(ctx: &Ctx, path: &str, if_none_match: Option<&str>) -> Answer {
    ctx.stats.with(|c| c.gets += 1);
    let s = &ctx.config.server;
    let (auth, user) = match s.https {
        HttpsMode::No => ("AuthCookie=local;path=/;", "UserRecord=local;path=/;"),
        _ => (
            "AuthCookie=local;path=/;SameSite=None;Secure;",
            "UserRecord=local;path=/;SameSite=None;Secure;",
        ),
    };
    let mut headers: Vec<(&'static str, std::borrow::Cow<'static, str>)> =
        vec![("Set-Cookie", auth.into()), ("Set-Cookie", user.into())];
    let Some(asset) = www::lookup(path, s.www_dir.as_deref()) else {
        headers.push(("Cache-Control", "no-cache, no-store".into()));
        // Local modes: like the proxy, other non-/api paths go to the gateway's web server
        // with the login session (normalised, bounded and time-limited in `Forwarder`).
        let forward = ctx
            .hub
            .snapshot(ctx.default_gateway)
            .and_then(|snap| snap.forward.clone());
        if let Some(forwarder) = forward {
            match forwarder.get(path) {
                Ok((content_type, body)) => {
                    return Answer {
                        status: 200,
                        content_type,
                        body: Arc::from(body),
                        cors: false,
                        headers,
                    };
                }
                Err(e) => {
                    if let Some(refusal) = forward_refusal(&e) {
                        return refusal;
                    }
                }
            }
        }
        let mut a = Answer::text(200, "text/plain", "Not Found");
        a.cors = false;
        a.headers = headers;
        return a;
    };
    let cacheable =
        ["text/css", "application/javascript", "image/png"].contains(&asset.content_type);
    headers.push((
        "Cache-Control",
        if s.browser_cache > 0 && cacheable {
            format!("max-age={}", s.browser_cache).into()
        } else {
            "no-cache".into()
        },
    ));
    headers.push(("ETag", asset.etag.clone().into()));
    let not_modified = if_none_match.is_some_and(|t| t == asset.etag);
    Answer {
        status: if not_modified { 304 } else { 200 },
        content_type: asset.content_type,
        body: if not_modified {
            Arc::from(Vec::new())
        } else {
            asset.bytes
        },
        cors: false,
        headers,
    }
}

/// The answer for a forward that was refused before reaching the gateway; `None` when the
/// proxy's `Not Found` applies.
fn forward_refusal(e: &ForwardError) -> Option<Answer> {
    match e {
        ForwardError::BadPath(why) => {
            let mut body = String::from(r#"{"error": "#);
            crate::json::write_str(&mut body, &format!("Bad Request: {why}"));
            body.push('}');
            Some(Answer::json(400, body))
        }
        ForwardError::RateLimited => {
            let mut a = Answer::json(
                429,
                format!(
                    r#"{{"error": "Too Many Requests: gateway pass-through is limited to {} requests/s"}}"#,
                    Forwarder::RATE_PER_SEC
                ),
            );
            a.headers.push(("Retry-After", "1".into()));
            Some(a)
        }
        ForwardError::Busy => {
            let mut a = Answer::json(
                503,
                format!(
                    r#"{{"error": "Service Unavailable: {} gateway pass-through requests already running"}}"#,
                    Forwarder::MAX_IN_FLIGHT
                ),
            );
            a.headers.push(("Retry-After", "1".into()));
            Some(a)
        }
        ForwardError::NotForwarded | ForwardError::Failed => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_stripped_only_when_present() {
        assert_eq!(strip_base("/pp/aggregates", "/pp/"), "/aggregates");
        assert_eq!(strip_base("/aggregates", "/pp/"), "/aggregates");
        assert_eq!(strip_base("/aggregates", "/"), "/aggregates");
    }
}
