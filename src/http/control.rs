//! Control writes through Tesla's cloud: `POST /control/{action}` and
//! `POST /api/gateways/{id}/control/{action}`, plus the per-gateway read-only GETs.
//!
//! Control is off unless `CONTROL_ENABLED=true` + `CONTROL_TOKEN` (seed design) or
//! `PW_CONTROL_SECRET` (the proxy) is set. Two request styles meet on the same paths and are told
//! apart per request:
//!
//! * **JSON** (seed design) — `Authorization: Bearer <token>` or `Content-Type: application/json`.
//!   Body `{"reserve": 0-100, "mode": "…"}` (either or both, on `reserve` or `mode`). Answers:
//!   403 disabled, 413 body over 4 KB, 401 missing or bad token (checked before the body is
//!   looked at), 400 invalid body, 503 no cloud credentials, 501 cloud not compiled in, 502 the
//!   cloud failed, 200 `{"ok": true, "gateway", "reserve"?, "mode"?}`.
//! * **Form** (the proxy, `proxy-compat.md` §3.8) — `value=…&token=…[&mode=…|&level=…]`, processed
//!   in the proxy's order with its exact messages and its 200/400/401 rule (a body containing
//!   `error` is 400, `unauthorized` 401). Disabled is the proxy's 400 `Control Commands Disabled`.
//!
//! Tokens are compared in constant time and never logged; every write is logged with the
//! gateway, the change, the request style and the client address. A request never reaches the
//! cloud without a valid token. Reads of the current reserve and mode (GET routes) come from the
//! latest snapshot and never call the cloud.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::router::{Answer, Ctx, Req};
use crate::cloud::session::{self, Kind, Session};
use crate::cloud::Error as CloudError;
use crate::config::{CloudAuth, Config};
use crate::json::{self, py_float, Map, Value};
use crate::secret::Secret;

/// The operation modes a client may set.
pub const MODES: &[&str] = &["self_consumption", "backup", "autonomous"];

const DISABLED_FORM: &str =
    r#"{"error": "Control Commands Disabled - Set PW_CONTROL_SECRET to enable"}"#;
const INVALID_REQUEST: &str = r#"{"error": "Control Command Error: Invalid Request"}"#;
const NO_CLOUD: &str =
    r#"{"error": "Control Command Error: Unable to connect to cloud mode - Run Setup"}"#;
const NOT_COMPILED: &str =
    r#"{"error": "Control Command Error: Cloud support is not compiled into this build"}"#;
const TOKEN_INVALID: &str = r#"{"unauthorized": "Control Command Token Invalid"}"#;

/// A POST as the control routes see it.
pub struct PostReq<'a> {
    pub path: &'a str,
    /// `{id}` of `/api/gateways/{id}/control/{action}`; `None` for `/control/*`.
    pub gateway: Option<&'a str>,
    pub action: &'a str,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    /// The declared `Content-Length`, when there was one.
    pub content_length: Option<usize>,
    pub body: &'a [u8],
    /// The body was larger than the 4 KB limit (and was not read).
    pub too_big: bool,
    pub remote: String,
}

impl PostReq<'_> {
    /// The seed design's style: a bearer token or a JSON body.
    pub fn is_json_style(&self) -> bool {
        self.authorization
            .as_deref()
            .is_some_and(|a| bearer_token(a).is_some())
            || self.content_type.as_deref().is_some_and(|c| {
                c.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            })
    }
}

/// One gateway's control path: its cloud credentials and, once opened, the shared session.
struct Target {
    id: String,
    auth: Option<CloudAuth>,
    timeout: Duration,
    session: Mutex<Option<Arc<Mutex<Session>>>>,
}

/// Who may write, and where each gateway's writes go.
pub struct Controller {
    tokens: Vec<Secret>,
    targets: Vec<Target>,
}

impl Controller {
    /// From the configuration. Opening a session only reads token files; when control is
    /// enabled this is done at start so that the log says which gateways can be controlled.
    pub fn new(cfg: &Config) -> Controller {
        let c = Controller {
            tokens: cfg.server.control.tokens.clone(),
            targets: cfg
                .gateways
                .iter()
                .map(|g| Target {
                    id: g.id.clone(),
                    auth: g.cloud.clone(),
                    timeout: g.timeout,
                    session: Mutex::new(None),
                })
                .collect(),
        };
        if c.enabled() {
            log::warn!("control writes are enabled: use with caution");
            for (i, t) in c.targets.iter().enumerate() {
                match c.session(i) {
                    Ok(s) => {
                        let kind = s.lock().map(|s| s.kind()).unwrap_or(Kind::Owner);
                        log::info!(
                            "control: gateway '{}' through the {}",
                            t.id,
                            if kind == Kind::Fleet {
                                "FleetAPI"
                            } else {
                                "Owner API"
                            }
                        );
                    }
                    Err(e) => log::warn!("control: gateway '{}' cannot be controlled: {e}", t.id),
                }
            }
        }
        c
    }

    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Constant-time check against every accepted token.
    fn token_ok(&self, given: &str) -> bool {
        let mut ok = false;
        for t in &self.tokens {
            ok |= t.matches(given);
        }
        ok && !given.is_empty()
    }

    fn session(&self, i: usize) -> Result<Arc<Mutex<Session>>, CloudError> {
        let t = self
            .targets
            .get(i)
            .ok_or_else(|| CloudError::Setup("no such gateway".into()))?;
        if !cfg!(feature = "cloud") {
            return Err(CloudError::NotCompiled);
        }
        let mut slot = t.session.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let auth = t.auth.as_ref().ok_or_else(|| {
            CloudError::Setup("no cloud credentials configured (email / authpath)".into())
        })?;
        let s = session::shared(&t.id, auth, t.timeout)?;
        *slot = Some(s.clone());
        Ok(s)
    }
}

/// A write that does not come from an HTTP request (issue 16: MQTT commands).
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Reserve(i64),
    Mode(String),
    GridCharging(bool),
    GridExport(String),
}

impl Controller {
    /// Gateway `i` has a write path: cloud credentials configured and cloud support compiled in.
    pub fn can_write(&self, i: usize) -> bool {
        cfg!(feature = "cloud") && self.targets.get(i).is_some_and(|t| t.auth.is_some())
    }

    /// One write on gateway `i` through the session the HTTP routes use, logged like them
    /// (`style` and `origin` name where it came from). The caller has done the authorisation.
    pub fn write(
        &self,
        i: usize,
        w: &Write,
        style: &str,
        origin: &str,
    ) -> Result<Value, CloudError> {
        let id = self.targets.get(i).map(|t| t.id.as_str()).unwrap_or("?");
        let what = match w {
            Write::Reserve(n) => format!("reserve {n}%"),
            Write::Mode(m) => format!("mode {m}"),
            Write::GridCharging(b) => format!("grid charging {b}"),
            Write::GridExport(e) => format!("grid export {e}"),
        };
        let out = self.session(i).and_then(|session| {
            let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
            match w {
                Write::Reserve(n) => apply(
                    &mut s,
                    &Change {
                        reserve: Some(*n),
                        mode: None,
                    },
                ),
                Write::Mode(m) => apply(
                    &mut s,
                    &Change {
                        reserve: None,
                        mode: Some(m.clone()),
                    },
                ),
                Write::GridCharging(b) => s.set_grid_charging(*b),
                Write::GridExport(e) => s.set_grid_export(e),
            }
        });
        log_write(id, &what, style, origin, &out);
        out
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box((x ^ y) as u64);
    }
    diff == 0
}

/// Python's `parse_qs(body)[key][0]`: `+` is a space, `%XX` decoded, blank values dropped.
pub fn form_value(body: &str, key: &str) -> String {
    for pair in body.split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if unescape(k) == key {
            let v = unescape(v);
            if !v.is_empty() {
                return v;
            }
        }
    }
    String::new()
}

/// The token of an `Authorization: Bearer <token>` value (scheme in any case). Slices with
/// `get`, so a non-ASCII value cannot split a character.
fn bearer_token(authorization: &str) -> Option<&str> {
    let scheme = authorization.get(..7)?;
    let token = authorization.get(7..)?;
    (scheme.eq_ignore_ascii_case("bearer ") && !token.is_empty()).then(|| token.trim())
}

fn unescape(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'+' {
            out.push(b' ');
        } else if c == b'%' && i + 2 < b.len() {
            match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(c),
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The facade of gateway `i` as last polled (for reads).
fn current(ctx: &Ctx, i: usize) -> (Option<f64>, Option<String>, Option<bool>, Option<String>) {
    match ctx.hub.view(i, std::time::Instant::now()) {
        Some(v) => (
            v.facade.reserve,
            v.facade.mode.clone(),
            v.facade.grid_charging,
            v.facade.grid_export.clone(),
        ),
        None => (None, None, None, None),
    }
}

/// `{"reserve": …}` as the proxy prints `get_reserve() or 0`.
fn reserve_text(r: Option<f64>) -> String {
    match r {
        Some(r) if r > 0.0 => format!(r#"{{"reserve": {}}}"#, py_float(r)),
        _ => r#"{"reserve": 0}"#.to_string(),
    }
}

/// The result object of `set_operation` as pypowerwall's cloud/FleetAPI backends build it.
fn operation_result(
    kind: Kind,
    din: &Value,
    level: Option<(i64, Value)>,
    mode: Option<(&str, Value)>,
) -> Value {
    let mut m = Map::new();
    if let Some((n, result)) = level {
        let mut o = Map::new().with("backup_reserve_percent", n);
        if kind == Kind::Owner {
            o.insert("din", din.clone());
        }
        o.insert("result", result);
        m.insert("set_backup_reserve_percent", o);
    }
    if let Some((mode, result)) = mode {
        let mut o = Map::new().with("real_mode", mode);
        if kind == Kind::Owner {
            o.insert("din", din.clone());
        }
        o.insert("result", result);
        m.insert("set_operation", o);
    }
    m.into()
}

/// What a write changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub reserve: Option<i64>,
    pub mode: Option<String>,
}

impl Change {
    fn describe(&self) -> String {
        match (&self.reserve, &self.mode) {
            (Some(r), Some(m)) => format!("reserve {r}% and mode {m}"),
            (Some(r), None) => format!("reserve {r}%"),
            (None, Some(m)) => format!("mode {m}"),
            (None, None) => "nothing".into(),
        }
    }
}

/// Performs a reserve and/or mode write: reserve first, then mode (as pypowerwall does).
fn apply(s: &mut Session, c: &Change) -> Result<Value, CloudError> {
    let din = s
        .site_info(crate::cloud::source::SITE_INFO_TTL)
        .ok()
        .and_then(|i| i.get("id").cloned())
        .unwrap_or(Value::Null);
    let level = match c.reserve {
        Some(n) => Some((n, s.set_reserve(n)?)),
        None => None,
    };
    let mode = match &c.mode {
        Some(m) => Some((m.as_str(), s.set_mode(m)?)),
        None => None,
    };
    Ok(operation_result(s.kind(), &din, level, mode))
}

fn log_write(id: &str, what: &str, style: &str, remote: &str, outcome: &Result<Value, CloudError>) {
    match outcome {
        Ok(_) => {
            log::info!("control: gateway '{id}': set {what} ({style} request from {remote}): done")
        }
        Err(e) => log::warn!(
            "control: gateway '{id}': set {what} ({style} request from {remote}) failed: {e}"
        ),
    }
}

fn count(ctx: &Ctx, a: &Answer) {
    ctx.stats.with(|c| {
        if a.status == 200 {
            c.posts += 1
        } else if a.status == 400 {
            c.errors += 1
        }
    });
}

/// Answers a control POST (either style).
pub fn post(ctx: &Ctx, req: &PostReq<'_>) -> Answer {
    let a = if req.is_json_style() {
        post_json(ctx, req)
    } else {
        post_form(ctx, req)
    };
    count(ctx, &a);
    a
}

fn gateway_index(ctx: &Ctx, req: &PostReq<'_>) -> Option<usize> {
    match req.gateway {
        None => Some(ctx.default_gateway),
        Some(id) => ctx.hub.index_of(id),
    }
}

/// The proxy's contract, in its order (spec §3.8).
fn post_form(ctx: &Ctx, req: &PostReq<'_>) -> Answer {
    let ctl = &ctx.control;
    if !ctl.enabled() {
        return Answer::json(400, DISABLED_FORM);
    }
    let Some(i) = gateway_index(ctx, req) else {
        return Answer::json(400, INVALID_REQUEST);
    };
    if req.action.is_empty() || req.too_big || req.content_length.is_none() {
        if req.too_big {
            log::warn!("control: POST body too large from {}", req.remote);
        }
        return Answer::json(400, INVALID_REQUEST);
    }
    let Ok(body) = std::str::from_utf8(req.body) else {
        return Answer::json(400, INVALID_REQUEST);
    };
    let session = match ctl.session(i) {
        Ok(s) => s,
        Err(CloudError::NotCompiled) => return Answer::json(400, NOT_COMPILED),
        Err(e) => {
            log::warn!("control: gateway '{}': {e}", ctl.targets[i].id);
            return Answer::json(400, NO_CLOUD);
        }
    };
    if !ctl.token_ok(&form_value(body, "token")) {
        log::warn!("control: bad or missing token from {}", req.remote);
        return Answer::json(401, TOKEN_INVALID);
    }
    let value = form_value(body, "value");
    let id = ctl.targets[i].id.clone();
    let (reserve, mode, grid_charging, grid_export) = current(ctx, i);
    let write = |c: Change, failed: &str| -> String {
        let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
        let out = if c.reserve.is_some_and(|r| r > 100) {
            // pypowerwall refuses levels outside 0-100 before calling the cloud.
            Err(CloudError::Setup("level outside 0-100".into()))
        } else {
            apply(&mut s, &c)
        };
        log_write(&id, &c.describe(), "form", &req.remote, &out);
        match out {
            Ok(v) => v.to_py(),
            Err(CloudError::Setup(_)) => format!(r#"{{"error": "{failed}"}}"#),
            Err(e) => Value::from(Map::new().with("error", e.to_string())).to_py(),
        }
    };
    let message = match req.action {
        "reserve" => {
            if value.is_empty() {
                reserve_text(reserve)
            } else if digits(&value) {
                let level = value.parse::<i64>().unwrap_or(i64::MAX);
                let mode = form_value(body, "mode");
                if MODES.contains(&mode.as_str()) {
                    write(
                        Change {
                            reserve: Some(level),
                            mode: Some(mode),
                        },
                        "Failed to set reserve+mode",
                    )
                } else if !mode.is_empty() {
                    r#"{"error": "Control Command Mode Invalid"}"#.into()
                } else {
                    write(
                        Change {
                            reserve: Some(level),
                            mode: None,
                        },
                        "Failed to set reserve",
                    )
                }
            } else {
                r#"{"error": "Control Command Value Invalid"}"#.into()
            }
        }
        "mode" => {
            if value.is_empty() {
                format!(
                    r#"{{"mode": "{}"}}"#,
                    mode.as_deref()
                        .filter(|m| !m.is_empty())
                        .unwrap_or("unknown")
                )
            } else if MODES.contains(&value.as_str()) {
                let level = form_value(body, "level");
                if digits(&level) {
                    write(
                        Change {
                            reserve: Some(level.parse::<i64>().unwrap_or(i64::MAX)),
                            mode: Some(value),
                        },
                        "Failed to set reserve+mode",
                    )
                } else if !level.is_empty() {
                    r#"{"error": "Control Command Level Invalid"}"#.into()
                } else {
                    write(
                        Change {
                            reserve: None,
                            mode: Some(value),
                        },
                        "Failed to set mode",
                    )
                }
            } else {
                r#"{"error": "Control Command Value Invalid"}"#.into()
            }
        }
        "grid_charging" => {
            if value.is_empty() {
                format!(r#"{{"grid_charging": {}}}"#, grid_charging.unwrap_or(false))
            } else if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
                let allow = value.eq_ignore_ascii_case("true");
                let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
                let out = s.set_grid_charging(allow);
                log_write(
                    &id,
                    &format!("grid charging {allow}"),
                    "form",
                    &req.remote,
                    &out,
                );
                match out {
                    Ok(_) => r#"{"grid_charging": "Set Successfully"}"#.into(),
                    Err(_) => r#"{"error": "Failed to set grid_charging"}"#.into(),
                }
            } else {
                r#"{"error": "Control Command Value Invalid"}"#.into()
            }
        }
        "grid_export" => {
            let lower = value.to_ascii_lowercase();
            if value.is_empty() {
                // The proxy prints this value unquoted, which is not JSON; the contract allows
                // the valid form (spec proxy-compat §10.7), so it is quoted here.
                let v = grid_export
                    .unwrap_or_else(|| "unknown".into())
                    .to_lowercase();
                crate::json::Value::from(crate::json::Map::new().with("grid_export", v)).to_py()
            } else if ["battery_ok", "pv_only", "never"].contains(&lower.as_str()) {
                let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
                let out = s.set_grid_export(&lower);
                log_write(
                    &id,
                    &format!("grid export {lower}"),
                    "form",
                    &req.remote,
                    &out,
                );
                match out {
                    Ok(_) => r#"{"grid_export": "Set Successfully"}"#.into(),
                    Err(_) => r#"{"error": "Failed to set grid_export"}"#.into(),
                }
            } else {
                r#"{"error": "Control Command Value Invalid"}"#.into()
            }
        }
        "max_backup" => r#"{"error": "max_backup requires v1r LAN transport"}"#.into(),
        _ => r#"{"error": "Invalid Command Action"}"#.into(),
    };
    let status = if message.contains("error") {
        400
    } else if message.contains("unauthorized") {
        401
    } else {
        200
    };
    Answer::json(status, message)
}

fn err(status: u16, msg: &str) -> Answer {
    Answer::json(status, Value::from(Map::new().with("error", msg)).to_py())
}

/// Parses a JSON control body for `action` into a change, or the 400 message.
pub fn parse_json_change(action: &str, body: &[u8]) -> Result<Change, String> {
    let v = json::parse_bytes(body).map_err(|_| "the body is not JSON".to_string())?;
    let m = v
        .as_object()
        .ok_or_else(|| "the body must be a JSON object".to_string())?;
    for k in m.keys() {
        if k != "reserve" && k != "mode" {
            return Err(format!(
                "unknown field '{k}' (expected 'reserve' and/or 'mode')"
            ));
        }
    }
    let reserve = match m.get("reserve") {
        None | Some(Value::Null) => None,
        Some(Value::Int(n)) if (0..=100).contains(n) => Some(*n),
        Some(_) => return Err("'reserve' must be an integer from 0 to 100".into()),
    };
    let mode = match m.get("mode") {
        None | Some(Value::Null) => None,
        Some(Value::Str(s)) if MODES.contains(&s.as_str()) => Some(s.clone()),
        Some(_) => {
            return Err(format!("'mode' must be one of: {}", MODES.join(", ")));
        }
    };
    match action {
        "reserve" if reserve.is_none() => Err("'reserve' is required".into()),
        "mode" if mode.is_none() => Err("'mode' is required".into()),
        _ => Ok(Change { reserve, mode }),
    }
}

/// The seed design's contract.
fn post_json(ctx: &Ctx, req: &PostReq<'_>) -> Answer {
    let ctl = &ctx.control;
    if req.action != "reserve" && req.action != "mode" {
        return err(
            404,
            &format!("unknown control action '{}' (reserve, mode)", req.action),
        );
    }
    let Some(i) = gateway_index(ctx, req) else {
        return err(404, "unknown gateway");
    };
    if !ctl.enabled() {
        return err(
            403,
            "control is disabled (set CONTROL_ENABLED=true and CONTROL_TOKEN, or PW_CONTROL_SECRET)",
        );
    }
    if req.too_big {
        log::warn!("control: POST body too large from {}", req.remote);
        return err(413, "request body too large (limit 4096 bytes)");
    }
    let bearer = req
        .authorization
        .as_deref()
        .and_then(bearer_token)
        .unwrap_or("");
    if !ctl.token_ok(bearer) {
        log::warn!("control: bad or missing bearer token from {}", req.remote);
        let mut a = err(401, "missing or invalid bearer token");
        a.headers.push(("WWW-Authenticate", "Bearer".into()));
        return a;
    }
    let change = match parse_json_change(req.action, req.body) {
        Ok(c) => c,
        Err(m) => return err(400, &m),
    };
    let id = ctl.targets[i].id.clone();
    let session = match ctl.session(i) {
        Ok(s) => s,
        Err(CloudError::NotCompiled) => return err(501, &CloudError::NotCompiled.to_string()),
        Err(e) => return err(503, &format!("gateway '{id}' cannot be controlled: {e}")),
    };
    let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
    let out = apply(&mut s, &change);
    drop(s);
    log_write(&id, &change.describe(), "JSON", &req.remote, &out);
    match out {
        Ok(result) => {
            let mut m = Map::new().with("ok", true).with("gateway", id.as_str());
            if let Some(r) = change.reserve {
                m.insert("reserve", r);
            }
            if let Some(md) = &change.mode {
                m.insert("mode", md.as_str());
            }
            m.insert("result", result);
            Answer::json(200, Value::from(m).to_py())
        }
        Err(e) => err(502, &e.to_string()),
    }
}

/// `GET /api/gateways/{id}/control/{reserve|mode}`: the last polled value (never the cloud).
pub fn get_gateway(req: &Req<'_>) -> Answer {
    let ctx = req.ctx;
    let Some(i) = ctx.hub.index_of(req.param("id")) else {
        return err(404, "unknown gateway");
    };
    let (reserve, mode, _, _) = current(ctx, i);
    ctx.stats.with(|c| c.hit(req.path));
    match req.param("action") {
        "reserve" => Answer::json(200, reserve_text(reserve)),
        "mode" => Answer::json(
            200,
            Value::from(Map::new().with("mode", mode.unwrap_or_else(|| "unknown".into()))).to_py(),
        ),
        other => err(
            404,
            &format!("unknown control action '{other}' (reserve, mode)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret1"));
        assert!(!ct_eq(b"", b"x"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn form_values_like_parse_qs() {
        assert_eq!(form_value("value=20&token=a%2Bb", "token"), "a+b");
        assert_eq!(form_value("value=a+b&token=x", "value"), "a b");
        assert_eq!(form_value("value=&value=3", "value"), "3");
        assert_eq!(form_value("token", "token"), "");
        assert_eq!(form_value("v=%zz%4", "v"), "%zz%4");
    }

    #[test]
    fn json_bodies() {
        assert_eq!(
            parse_json_change("reserve", br#"{"reserve": 20}"#),
            Ok(Change {
                reserve: Some(20),
                mode: None
            })
        );
        assert_eq!(
            parse_json_change("mode", br#"{"mode": "backup", "reserve": 0}"#),
            Ok(Change {
                reserve: Some(0),
                mode: Some("backup".into())
            })
        );
        for (action, body) in [
            ("reserve", &br#"{"reserve": 101}"#[..]),
            ("reserve", br#"{"reserve": -1}"#),
            ("reserve", br#"{"reserve": 20.5}"#),
            ("reserve", br#"{"reserve": "20"}"#),
            ("reserve", br#"{}"#),
            ("mode", br#"{"mode": "Backup"}"#),
            ("mode", br#"{"reserve": 10}"#),
            ("mode", br#"[1]"#),
            ("mode", b"not json"),
            ("mode", br#"{"mode": "backup", "token": "x"}"#),
        ] {
            assert!(parse_json_change(action, body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn reserve_like_python() {
        assert_eq!(reserve_text(None), r#"{"reserve": 0}"#);
        assert_eq!(reserve_text(Some(0.0)), r#"{"reserve": 0}"#);
        assert_eq!(reserve_text(Some(20.0)), r#"{"reserve": 20.0}"#);
    }
}
