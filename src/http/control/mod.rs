//! Control writes: `POST /control/{action}` and `POST /api/gateways/{id}/control/{action}`, the
//! read-only GETs beside them, `GET /control/status`, and [`Controller::write`] — the one write
//! path, which MQTT commands use too.
//!
//! Control is off unless `CONTROL_ENABLED=true` + `CONTROL_TOKEN` (seed design) or
//! `PW_CONTROL_SECRET` (the proxy) is set. Two request styles meet on the same paths and are told
//! apart per request ([`PostReq::is_json_style`]): JSON ([`json_style`]) and the proxy's form
//! ([`form_style`]). In both the token is checked before anything else about the request: without
//! a valid token a client learns only that control is enabled.
//!
//! Writes to one gateway are serialised: a second write while one is in flight is refused (409),
//! never queued. Islanding (off-grid / reconnect) has a cooldown (`PW_ISLANDING_COOLDOWN`, 429
//! with `Retry-After`) and off-grid needs an explicit confirmation.
//!
//! Paths: a gateway polled over v1r (`PW_RSA_KEY_PATH`) writes on the LAN first — a signed
//! read-modify-write of `config.json` for reserve, mode, grid charging and grid export, the
//! signed island-mode command for islanding ([`crate::gateway::v1r`]'s client, its own
//! connection, logged in on first use). When the LAN write cannot be carried out (LAN down, key
//! not accepted) and the gateway has cloud credentials, the same write goes through Tesla's
//! cloud; a gateway that answers and refuses is reported as it is (502), never retried
//! elsewhere. Without v1r every write but islanding goes through the cloud. Each answer says the
//! path it took (`X-Control-Path: lan|wifi|cloud`; `wifi`: the same signed write to the
//! Wi-Fi host, `PW_WIFI_V1R_FALLBACK`), `/control/status` which one is active, and a
//! write makes the gateway's poller poll at once and re-read `config.json`.
//!
//! Tokens are compared in constant time and never logged; every write is logged with the
//! gateway, the change, the request style and the client address. Reads of the current values
//! come from the latest snapshot and never call the cloud.

mod form_style;
mod json_style;
mod request;

use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use super::router::{Answer, Ctx, Req};
use crate::cloud::session::{self, Kind, Session};
use crate::cloud::Error as CloudError;
use crate::config::{CloudAuth, Config};
use crate::json::{py_float, Map, Value};
use crate::secret::Secret;
use crate::snapshot::Hub;

mod lan;

pub use json_style::parse_json_write;
pub use request::{ct_eq, form_value, PostReq};

/// The operation modes a client may set.
pub const MODES: &[&str] = &["self_consumption", "backup", "autonomous"];
/// The grid export rules a client may set.
pub const GRID_EXPORTS: &[&str] = &["battery_ok", "pv_only", "never"];
/// Every action of `POST /control/{action}`, in the order `/control/status` lists them.
pub const ACTIONS: &[&str] = &[
    "reserve",
    "mode",
    "grid_charging",
    "grid_export",
    "islanding",
];
/// What the cloud path can do.
const CLOUD_ACTIONS: &[&str] = &["reserve", "mode", "grid_charging", "grid_export"];

/// Intentional islanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Island {
    /// Open the grid contactor (needs an explicit confirmation).
    OffGrid,
    /// Close it again.
    OnGrid,
}

impl Island {
    pub fn name(self) -> &'static str {
        match self {
            Island::OffGrid => "off_grid",
            Island::OnGrid => "on_grid",
        }
    }
}

/// One write, whoever asked for it (HTTP in either style, MQTT).
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Reserve(i64),
    Mode(String),
    /// Reserve and mode in one call (reserve first, then mode, as pypowerwall does).
    Operation(i64, String),
    GridCharging(bool),
    GridExport(String),
    Islanding(Island),
}

impl Write {
    fn describe(&self) -> String {
        match self {
            Write::Reserve(n) => format!("reserve {n}%"),
            Write::Mode(m) => format!("mode {m}"),
            Write::Operation(n, m) => format!("reserve {n}% and mode {m}"),
            Write::GridCharging(b) => format!("grid charging {b}"),
            Write::GridExport(e) => format!("grid export {e}"),
            Write::Islanding(i) => format!("islanding {}", i.name()),
        }
    }
}

/// Why a write did not happen.
#[derive(Debug)]
pub enum Error {
    /// Another write to this gateway is in flight.
    Busy,
    /// Islanding is cooling down: seconds to wait.
    Cooldown(u64),
    /// No path of this gateway can do this action (the reason).
    Unsupported(String),
    /// The gateway's cloud session could not be opened (no credentials, not compiled in, …).
    NoSession(CloudError),
    /// The cloud refused or failed the write.
    Cloud(CloudError),
    /// The gateway answered the LAN write and refused it.
    Refused(String),
    /// The LAN write could not be carried out and no cloud path could take it.
    Lan(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Busy => write!(f, "another write to this gateway is in progress"),
            Error::Cooldown(s) => write!(
                f,
                "islanding is rate limited: wait {s} s and check the grid status first"
            ),
            Error::Unsupported(why) => write!(f, "{why}"),
            Error::NoSession(e) => write!(f, "cannot be controlled: {e}"),
            Error::Cloud(e) => write!(f, "{e}"),
            Error::Refused(why) => write!(f, "the gateway refused the write: {why}"),
            Error::Lan(why) => write!(f, "the LAN write failed: {why}"),
        }
    }
}

/// When the next islanding command may go (one per cooldown, per gateway).
#[derive(Debug, Default)]
struct Cooldown {
    last: Option<Instant>,
}

impl Cooldown {
    /// Seconds left at `now` (rounded up), or `None` when a command may go.
    fn remaining(&self, now: Instant, period: Duration) -> Option<u64> {
        let until = self.last? + period;
        let left = until.checked_duration_since(now)?;
        (!left.is_zero()).then(|| left.as_millis().div_ceil(1000) as u64)
    }
}

/// A write that took effect: the answer's `result` and the path it took.
#[derive(Debug)]
pub struct Done {
    pub result: Value,
    /// `lan`, `wifi` (signed v1r to the Wi-Fi host) or `cloud` (the `X-Control-Path` header).
    pub path: &'static str,
}

/// One gateway's control paths: its v1r LAN writer, its cloud credentials and, once opened,
/// the shared cloud session.
struct Target {
    id: String,
    lan: Option<lan::Lan>,
    auth: Option<CloudAuth>,
    timeout: Duration,
    session: Mutex<Option<Arc<Mutex<Session>>>>,
    /// Held while a write to this gateway is in flight.
    writing: Mutex<()>,
    islanding: Mutex<Cooldown>,
}

/// Who may write, and where each gateway's writes go.
pub struct Controller {
    tokens: Vec<Secret>,
    targets: Vec<Target>,
    islanding_cooldown: Duration,
    /// Told after a write, so that the gateway's poller re-reads its settings at once.
    hub: Arc<Hub>,
}

impl Controller {
    /// From the configuration. Opening a session only reads token files; when control is
    /// enabled this is done at start so that the log says which gateways can be controlled.
    pub fn new(cfg: &Config, hub: Arc<Hub>) -> Controller {
        let c = Controller {
            tokens: cfg.server.control.tokens.clone(),
            islanding_cooldown: cfg.server.control.islanding_cooldown,
            hub,
            targets: cfg
                .gateways
                .iter()
                .map(|g| Target {
                    id: g.id.clone(),
                    lan: lan::Lan::new(g),
                    auth: g.cloud.clone(),
                    timeout: g.timeout,
                    session: Mutex::new(None),
                    writing: Mutex::new(()),
                    islanding: Mutex::new(Cooldown::default()),
                })
                .collect(),
        };
        if c.enabled() {
            log::warn!("control writes are enabled: use with caution");
            for (i, t) in c.targets.iter().enumerate() {
                if t.lan.is_some() {
                    log::info!(
                        "control: gateway '{}' on the LAN (v1r signed writes){}",
                        t.id,
                        if c.can_write_cloud(i) {
                            ", cloud as fallback"
                        } else {
                            ""
                        }
                    );
                    continue;
                }
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

    fn id(&self, i: usize) -> &str {
        self.targets.get(i).map(|t| t.id.as_str()).unwrap_or("?")
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

    /// Gateway `i` has a write path: v1r on the LAN, or cloud credentials with cloud support
    /// compiled in.
    pub fn can_write(&self, i: usize) -> bool {
        self.lan(i) || self.can_write_cloud(i)
    }

    fn can_write_cloud(&self, i: usize) -> bool {
        cfg!(feature = "cloud") && self.targets.get(i).is_some_and(|t| t.auth.is_some())
    }

    /// Gateway `i`'s cloud session opens (token files present and readable): what
    /// `/control/status` reports as `cloud`.
    fn cloud_ready(&self, i: usize) -> bool {
        self.can_write_cloud(i) && self.session(i).is_ok()
    }

    /// Gateway `i` writes over the LAN (polled over v1r with its key loaded).
    pub fn lan(&self, i: usize) -> bool {
        self.targets.get(i).is_some_and(|t| t.lan.is_some())
    }

    /// The actions gateway `i` can carry out now (the LAN does all of them).
    pub fn actions(&self, i: usize) -> Vec<&'static str> {
        let lan = self.lan(i);
        let cloud = self.cloud_ready(i);
        ACTIONS
            .iter()
            .copied()
            .filter(|a| lan || (cloud && CLOUD_ACTIONS.contains(a)))
            .collect()
    }

    /// The path the next write to gateway `i` takes: `lan` unless its last LAN write could
    /// not be carried out and another route can take over (`wifi`, then `cloud`), else
    /// `cloud`, else none.
    pub fn path(&self, i: usize) -> Option<&'static str> {
        let lan = self.targets.get(i).and_then(|t| t.lan.as_ref());
        match lan.map(|l| (l.last_error().is_some(), l.has_wifi())) {
            Some((false, _)) => Some("lan"),
            Some((true, true)) => Some("wifi"),
            Some((true, false)) if self.cloud_ready(i) => Some("cloud"),
            Some((true, false)) => Some("lan"),
            None if self.cloud_ready(i) => Some("cloud"),
            None => None,
        }
    }

    /// Why the last LAN write to gateway `i` could not be carried out (cleared by a success).
    fn lan_error(&self, i: usize) -> Option<String> {
        self.targets.get(i)?.lan.as_ref()?.last_error()
    }

    /// One write on gateway `i`, logged (`style` and `origin` say where it came from). The
    /// caller has done the authorisation. A write already in flight on this gateway makes it
    /// [`Error::Busy`]; islanding within the cooldown is [`Error::Cooldown`].
    pub fn write(&self, i: usize, w: &Write, style: &str, origin: &str) -> Result<Done, Error> {
        let t = self
            .targets
            .get(i)
            .ok_or_else(|| Error::Unsupported("no such gateway".into()))?;
        let _writing = match t.writing.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                log::warn!(
                    "control: gateway '{}': set {} ({style} request from {origin}) refused: a write is in flight",
                    t.id,
                    w.describe()
                );
                return Err(Error::Busy);
            }
        };
        let out = self.write_locked(i, t, w);
        match &out {
            Ok(done) => {
                // Reads (`GET /control/*`, the API, MQTT) show the new values after this poll.
                self.hub.settings_changed(i);
                log::info!(
                    "control: gateway '{}': set {} ({style} request from {origin}): done ({})",
                    t.id,
                    w.describe(),
                    done.path
                )
            }
            Err(e) => log::warn!(
                "control: gateway '{}': set {} ({style} request from {origin}) failed: {e}",
                t.id,
                w.describe()
            ),
        }
        out
    }

    fn write_locked(&self, i: usize, t: &Target, w: &Write) -> Result<Done, Error> {
        if let Write::Islanding(island) = w {
            let mut cd = t.islanding.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = cd.remaining(Instant::now(), self.islanding_cooldown) {
                return Err(Error::Cooldown(s));
            }
            let Some(lan) = t.lan.as_ref() else {
                return Err(Error::Unsupported(
                    "islanding requires the v1r LAN transport (PW_RSA_KEY_PATH; not available \
                     for this gateway)"
                        .into(),
                ));
            };
            // The cooldown starts when a command is sent, whatever the gateway answers: the
            // contactor may have moved.
            cd.last = Some(Instant::now());
            drop(cd);
            return match lan.island(*island) {
                Ok((result, path)) => Ok(Done { result, path }),
                Err(lan::Failure::Refused(why)) => Err(Error::Refused(why)),
                Err(lan::Failure::Unavailable(why)) => Err(Error::Lan(why)),
            };
        }
        if let Some(lan) = t.lan.as_ref() {
            match lan.write(w) {
                Ok((result, path)) => return Ok(Done { result, path }),
                Err(lan::Failure::Refused(why)) => return Err(Error::Refused(why)),
                Err(lan::Failure::Unavailable(why)) if self.can_write_cloud(i) => {
                    log::warn!(
                        "control: gateway '{}': LAN write not possible ({why}); using the cloud",
                        t.id
                    );
                }
                Err(lan::Failure::Unavailable(why)) => return Err(Error::Lan(why)),
            }
        }
        let session = self.session(i).map_err(Error::NoSession)?;
        let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
        let out = match w {
            Write::Reserve(n) => operation(&mut s, Some(*n), None),
            Write::Mode(m) => operation(&mut s, None, Some(m)),
            Write::Operation(n, m) => operation(&mut s, Some(*n), Some(m)),
            Write::GridCharging(b) => s.set_grid_charging(*b),
            Write::GridExport(e) => s.set_grid_export(e),
            Write::Islanding(_) => unreachable!("handled above"),
        };
        out.map(|result| Done {
            result,
            path: "cloud",
        })
        .map_err(Error::Cloud)
    }
}

/// The facade of gateway `i` as last polled (for reads).
struct Current {
    reserve: Option<f64>,
    mode: Option<String>,
    grid_charging: Option<bool>,
    grid_export: Option<String>,
}

fn current(ctx: &Ctx, i: usize) -> Current {
    match ctx.hub.view(i, Instant::now()) {
        Some(v) => Current {
            reserve: v.facade.reserve,
            mode: v.facade.mode.clone(),
            grid_charging: v.facade.grid_charging,
            grid_export: v.facade.grid_export.clone(),
        },
        None => Current {
            reserve: None,
            mode: None,
            grid_charging: None,
            grid_export: None,
        },
    }
}

/// `{"reserve": …}` as the proxy prints `get_reserve() or 0`.
fn reserve_text(r: Option<f64>) -> String {
    match r {
        Some(r) if r > 0.0 => format!(r#"{{"reserve": {}}}"#, py_float(r)),
        _ => r#"{"reserve": 0}"#.to_string(),
    }
}

/// The current value of `action` on gateway `i` in the proxy's read shapes, or `None`.
fn read_text(ctx: &Ctx, i: usize, action: &str) -> Option<String> {
    let c = current(ctx, i);
    let one = |k: &str, v: Value| Value::from(Map::new().with(k, v)).to_py();
    Some(match action {
        "reserve" => reserve_text(c.reserve),
        "mode" => one(
            "mode",
            c.mode
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "unknown".into())
                .into(),
        ),
        "grid_charging" => one("grid_charging", c.grid_charging.unwrap_or(false).into()),
        // The proxy prints this value unquoted, which is not JSON; the contract allows the
        // valid form (spec proxy-compat §10.7), so it is quoted here.
        "grid_export" => one(
            "grid_export",
            c.grid_export
                .unwrap_or_else(|| "unknown".into())
                .to_lowercase()
                .into(),
        ),
        _ => return None,
    })
}

/// The result object of `set_operation` as pypowerwall's cloud/FleetAPI backends build it.
fn operation(s: &mut Session, level: Option<i64>, mode: Option<&str>) -> Result<Value, CloudError> {
    let din = s
        .site_info(crate::cloud::source::SITE_INFO_TTL)
        .ok()
        .and_then(|i| i.get("id").cloned())
        .unwrap_or(Value::Null);
    let owner = s.kind() == Kind::Owner;
    let mut m = Map::new();
    if let Some(n) = level {
        let result = s.set_reserve(n)?;
        let mut o = Map::new().with("backup_reserve_percent", n);
        if owner {
            o.insert("din", din.clone());
        }
        o.insert("result", result);
        m.insert("set_backup_reserve_percent", o);
    }
    if let Some(mode) = mode {
        let result = s.set_mode(mode)?;
        let mut o = Map::new().with("real_mode", mode);
        if owner {
            o.insert("din", din.clone());
        }
        o.insert("result", result);
        m.insert("set_operation", o);
    }
    Ok(m.into())
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
        json_style::post(ctx, req)
    } else {
        form_style::post(ctx, req)
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

fn err(status: u16, msg: &str) -> Answer {
    Answer::json(status, Value::from(Map::new().with("error", msg)).to_py())
}

/// A 429 with `Retry-After`.
fn cooldown_answer(mut a: Answer, secs: u64) -> Answer {
    a.status = 429;
    a.headers.push(("Retry-After", secs.to_string().into()));
    a
}

/// `GET /control/status`: whether control is enabled and, per gateway, what it can do. Needs no
/// token and reveals no secret (the Console's and the web UI's switch).
pub fn get_status(req: &Req<'_>) -> Answer {
    let ctx = req.ctx;
    ctx.stats.with(|c| c.hit(req.path));
    let ctl = &ctx.control;
    let enabled = ctl.enabled();
    let gateways: Vec<Value> = (0..ctl.targets.len())
        .map(|i| {
            let mut m = Map::new().with("id", ctl.id(i));
            m.insert("cloud", enabled && ctl.cloud_ready(i));
            m.insert("lan", enabled && ctl.lan(i));
            m.insert(
                "lan_error",
                ctl.lan_error(i)
                    .filter(|_| enabled)
                    .map_or(Value::Null, Value::from),
            );
            let actions: Vec<Value> = if enabled {
                ctl.actions(i).into_iter().map(Value::from).collect()
            } else {
                Vec::new()
            };
            m.insert("actions", actions);
            m.insert(
                "path",
                match ctl.path(i) {
                    Some(p) if enabled => Value::from(p),
                    _ => Value::Null,
                },
            );
            m.into()
        })
        .collect();
    let default = ctl.id(ctx.default_gateway).to_string();
    let body = Map::new()
        .with("enabled", enabled)
        .with("default_gateway", default)
        .with(
            "islanding_cooldown",
            ctl.islanding_cooldown.as_secs() as i64,
        )
        .with("gateways", gateways);
    Answer::json(200, Value::from(body).to_py())
}

/// `GET /api/gateways/{id}/control/{action}`: the last polled value (never the cloud);
/// `…/control/status` is that gateway's part of `GET /control/status`.
pub fn get_gateway(req: &Req<'_>) -> Answer {
    let ctx = req.ctx;
    let Some(i) = ctx.hub.index_of(req.param("id")) else {
        return err(404, "unknown gateway");
    };
    ctx.stats.with(|c| c.hit(req.path));
    match read_text(ctx, i, req.param("action")) {
        Some(body) => Answer::json(200, body),
        None => err(
            404,
            &format!(
                "unknown control value '{}' (reserve, mode, grid_charging, grid_export)",
                req.param("action")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_like_python() {
        assert_eq!(reserve_text(None), r#"{"reserve": 0}"#);
        assert_eq!(reserve_text(Some(0.0)), r#"{"reserve": 0}"#);
        assert_eq!(reserve_text(Some(20.0)), r#"{"reserve": 20.0}"#);
    }

    #[test]
    fn islanding_cooldown() {
        let t0 = Instant::now();
        let period = Duration::from_secs(300);
        let mut c = Cooldown::default();
        assert_eq!(c.remaining(t0, period), None);
        c.last = Some(t0);
        assert_eq!(c.remaining(t0, period), Some(300));
        assert_eq!(
            c.remaining(t0 + Duration::from_millis(100_500), period),
            Some(200)
        );
        assert_eq!(c.remaining(t0 + period, period), None);
        assert_eq!(c.remaining(t0 + period * 2, period), None);
        assert_eq!(c.remaining(t0, Duration::ZERO), None);
    }
}
