//! One signed-in Tesla account: the Owner API or FleetAPI client with its tokens and site.
//!
//! A [`Session`] reads the token file once, picks the energy site, and makes authenticated
//! calls. The access token is refreshed with the refresh token when it is missing or about to
//! expire, and after any HTTP 401 (one refresh, one retry); a successful refresh is written back
//! atomically, a failed one leaves the file exactly as it was. Tesla rotates refresh tokens, so
//! two sessions on one token file would invalidate each other: [`shared`] hands every user of a
//! token file (the cloud poller and the control routes) the same session.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::tokens::{self, FleetConfig, OwnerTokens};
use super::transport::{default_transport, Request, Transport};
use super::Error;
use crate::config::CloudAuth;
use crate::json::{self, Map, Value};
use crate::secret::Secret;

/// Default Owner API base URL.
pub const OWNER_URL: &str = "https://owner-api.teslamotors.com/";
/// Default SSO base URL (token refresh).
pub const AUTH_URL: &str = "https://auth.tesla.com/";
const OWNER_CLIENT_ID: &str = "ownerapi";
const X_TESLA_USER_AGENT: &str = "TeslaApp/4.10.0";
const OWNER_USER_AGENT: &str = "pypowerwall.cloud.teslapy/2.9.1";
/// Refresh this long before the stored expiry.
const EXPIRY_MARGIN: i64 = 60;
/// Live-status `counter` cycles through 1..=64 like teslapy's.
const COUNTER_MAX: u32 = 64;

/// Which API a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Owner,
    Fleet,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Owner => "cloud",
            Kind::Fleet => "fleetapi",
        }
    }
}

enum Creds {
    Owner(OwnerTokens),
    Fleet(FleetConfig),
}

/// The selected energy site.
#[derive(Debug, Clone, Default)]
pub struct Site {
    pub id: i64,
    pub name: Option<String>,
    pub gateway_id: Option<String>,
}

/// An authenticated client for one account and site.
pub struct Session {
    label: String,
    kind: Kind,
    dir: PathBuf,
    email: Option<String>,
    creds: Creds,
    transport: Box<dyn Transport>,
    base: String,
    token_url: String,
    auth_override: Option<String>,
    timeout: Duration,
    wanted_site: Option<i64>,
    site: Option<Site>,
    site_info: Option<(Instant, Value)>,
    counter: u32,
    /// The last refresh failed: re-read the token file before the next attempt (it may have
    /// been renewed by a new set-up in the meantime).
    reload: bool,
}

fn with_slash(u: &str) -> String {
    if u.ends_with('/') {
        u.to_string()
    } else {
        format!("{u}/")
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A short, token-free description of an error answer.
fn reason(body: &[u8]) -> String {
    let v = json::parse_bytes(body).unwrap_or(Value::Null);
    let pick = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let r = pick("error")
        .or_else(|| pick("message"))
        .or_else(|| {
            v.path(&["response", "message"])
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    r.chars().filter(|c| !c.is_control()).take(120).collect()
}

fn now_unix() -> i64 {
    crate::clock::unix_secs(SystemTime::now())
}

impl Session {
    /// Reads the token file of `auth` (no network yet).
    pub fn open(label: &str, auth: &CloudAuth, timeout: Duration) -> Result<Session, Error> {
        let transport = default_transport(&ca_pem(auth)?)?;
        Session::with_transport(label, auth, timeout, transport)
    }

    /// [`Session::open`] with a given transport (tests).
    pub fn with_transport(
        label: &str,
        auth: &CloudAuth,
        timeout: Duration,
        transport: Box<dyn Transport>,
    ) -> Result<Session, Error> {
        let dir = tokens::dir(&auth.authpath);
        let kind = if auth.fleet { Kind::Fleet } else { Kind::Owner };
        let (creds, base, token_url) = match kind {
            Kind::Owner => {
                let t = tokens::read_owner(&dir, auth.email.as_deref())?;
                let sso = with_slash(auth.auth_url.as_deref().unwrap_or(&t.sso_url));
                let base = with_slash(auth.owner_url.as_deref().unwrap_or(OWNER_URL));
                (Creds::Owner(t), base, format!("{sso}oauth2/v3/token"))
            }
            Kind::Fleet => {
                let c = tokens::read_fleet(&dir)?;
                let base = match (&auth.fleet_url, c.audience.is_empty()) {
                    (Some(u), _) => with_slash(u),
                    (None, false) => with_slash(&c.audience),
                    (None, true) => {
                        return Err(Error::Setup(format!(
                            "{} has no AUDIENCE (regional base URL)",
                            dir.join(tokens::FLEET_FILE).display()
                        )))
                    }
                };
                let sso = with_slash(auth.auth_url.as_deref().unwrap_or(AUTH_URL));
                (Creds::Fleet(c), base, format!("{sso}oauth2/v3/token"))
            }
        };
        Ok(Session {
            label: label.to_string(),
            kind,
            dir,
            email: auth.email.clone(),
            creds,
            transport,
            base,
            token_url,
            auth_override: auth.auth_url.clone(),
            timeout,
            wanted_site: auth.siteid,
            site: None,
            site_info: None,
            counter: 0,
            reload: false,
        })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The selected site, once known.
    pub fn site(&self) -> Option<&Site> {
        self.site.as_ref()
    }

    fn access(&self) -> &str {
        match &self.creds {
            Creds::Owner(t) => t.access_token.expose(),
            Creds::Fleet(c) => c.access_token.expose(),
        }
    }

    fn refresh_token(&self) -> &str {
        match &self.creds {
            Creds::Owner(t) => t.refresh_token.expose(),
            Creds::Fleet(c) => c.refresh_token.expose(),
        }
    }

    fn reload_file(&mut self) {
        let fresh = match self.kind {
            Kind::Owner => tokens::read_owner(&self.dir, self.email.as_deref()).map(Creds::Owner),
            Kind::Fleet => tokens::read_fleet(&self.dir).map(Creds::Fleet),
        };
        if let Ok(c) = fresh {
            if let Creds::Owner(t) = &c {
                if self.auth_override.is_none() {
                    self.token_url = format!("{}oauth2/v3/token", with_slash(&t.sso_url));
                }
            }
            self.creds = c;
        }
        self.reload = false;
    }

    /// Refreshes the access token now and writes it back. On failure nothing is written.
    pub fn refresh(&mut self) -> Result<(), Error> {
        if self.refresh_token().is_empty() {
            return Err(Error::Auth(
                "no refresh token stored; run setup again".into(),
            ));
        }
        let client_id = match &self.creds {
            Creds::Owner(_) => OWNER_CLIENT_ID.to_string(),
            Creds::Fleet(c) => c.client_id.clone(),
        };
        let body = format!(
            "grant_type=refresh_token&client_id={}&refresh_token={}",
            form_encode(&client_id),
            form_encode(self.refresh_token())
        );
        let url = self.token_url.clone();
        let req = Request {
            method: "POST",
            url: &url,
            headers: vec![
                ("accept", "application/json".into()),
                ("content-type", "application/x-www-form-urlencoded".into()),
            ],
            body: body.as_bytes(),
        };
        let result = self
            .transport
            .send(&req, self.timeout.max(Duration::from_secs(10)));
        let fail = |s: &mut Session, why: String| {
            s.reload = true;
            log::warn!("cloud '{}': token refresh failed: {why}", s.label);
            Err(Error::Auth(why))
        };
        let resp = match result {
            Ok(r) => r,
            Err(e) => return fail(self, e.to_string()),
        };
        if resp.status != 200 {
            let why = format!("HTTP {} {}", resp.status, reason(&resp.body));
            return fail(self, why.trim_end().to_string());
        }
        let doc = json::parse_bytes(&resp.body).unwrap_or(Value::Null);
        let Some(access) = doc
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return fail(self, "the answer holds no access token".into());
        };
        let refresh = doc
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let expires_in = doc
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(28_800);
        let written = match &mut self.creds {
            Creds::Owner(t) => {
                t.access_token = Secret::new(access);
                if let Some(r) = refresh {
                    t.refresh_token = Secret::new(r);
                }
                t.expires_at = now_unix() + expires_in;
                let mut extra = Map::new();
                for k in ["id_token", "token_type"] {
                    if let Some(v) = doc.get(k) {
                        extra.insert(k, v.clone());
                    }
                }
                tokens::write_owner(&self.dir, t, expires_in, &extra)
            }
            Creds::Fleet(c) => {
                c.access_token = Secret::new(access);
                if let Some(r) = refresh {
                    c.refresh_token = Secret::new(r);
                }
                tokens::write_fleet(&self.dir, c)
            }
        };
        match written {
            Ok(()) => log::info!("cloud '{}': access token refreshed and saved", self.label),
            // The new tokens are kept in memory; the old file stays whole.
            Err(e) => log::error!("cloud '{}': token refreshed but not saved: {e}", self.label),
        }
        Ok(())
    }

    fn ensure_token(&mut self) -> Result<(), Error> {
        if self.reload {
            self.reload_file();
        }
        let expired = match &self.creds {
            Creds::Owner(t) => t.expires_at > 0 && t.expires_at <= now_unix() + EXPIRY_MARGIN,
            Creds::Fleet(_) => false,
        };
        if self.access().is_empty() || expired {
            self.refresh()?;
        }
        Ok(())
    }

    fn send(
        &mut self,
        method: &'static str,
        path: &str,
        body: &[u8],
    ) -> Result<super::transport::Response, Error> {
        let url = format!("{}{}", self.base, path);
        let mut headers = vec![
            ("content-type", "application/json".to_string()),
            ("authorization", format!("Bearer {}", self.access())),
        ];
        if self.kind == Kind::Owner {
            headers.push(("x-tesla-user-agent", X_TESLA_USER_AGENT.into()));
            headers.push(("user-agent", OWNER_USER_AGENT.into()));
        } else {
            headers.push((
                "user-agent",
                format!("pypowerwall-server/{}", env!("CARGO_PKG_VERSION")),
            ));
        }
        let req = Request {
            method,
            url: &url,
            headers,
            body,
        };
        self.transport.send(&req, self.timeout)
    }

    /// One authenticated call; the JSON answer.
    pub fn call(
        &mut self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        self.ensure_token()?;
        let bytes = body.map(Value::to_py).unwrap_or_default();
        let mut resp = self.send(method, path, bytes.as_bytes())?;
        if resp.status == 401 {
            log::info!(
                "cloud '{}': access token refused (HTTP 401), refreshing",
                self.label
            );
            self.refresh()?;
            resp = self.send(method, path, bytes.as_bytes())?;
        }
        if !(200..300).contains(&resp.status) {
            return Err(Error::Status(resp.status, reason(&resp.body)));
        }
        json::parse_bytes(&resp.body)
            .map_err(|_| Error::BadReply(format!("{} {path}: not JSON", method)))
    }

    /// The account's energy sites (Owner API: battery sites only), from `api/1/products`.
    pub fn sites(&mut self) -> Result<Vec<Site>, Error> {
        let products = self.call("GET", "api/1/products", None)?;
        let list: Vec<Site> = products
            .get("response")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|p| {
                        self.kind == Kind::Fleet
                            || p.get("resource_type").and_then(Value::as_str) == Some("battery")
                    })
                    .filter_map(|p| {
                        Some(Site {
                            id: p.get("energy_site_id")?.as_i64()?,
                            name: p
                                .get("site_name")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            gateway_id: p
                                .get("gateway_id")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(list)
    }

    /// Picks the site: configured `siteid`, else the site file, else the first battery site.
    pub fn select_site(&mut self) -> Result<Site, Error> {
        if let Some(s) = &self.site {
            return Ok(s.clone());
        }
        let file_site = match &self.creds {
            Creds::Owner(_) => tokens::read_site(&self.dir),
            Creds::Fleet(c) => c.site_id,
        };
        if self.kind == Kind::Fleet {
            if let Some(id) = self.wanted_site.or(file_site) {
                let s = Site {
                    id,
                    ..Site::default()
                };
                self.site = Some(s.clone());
                return Ok(s);
            }
        }
        let list = self.sites()?;
        let pick = if let Some(w) = self.wanted_site {
            list.iter().find(|s| s.id == w).cloned().ok_or_else(|| {
                Error::Setup(format!("site {w} is not an energy site of this account"))
            })?
        } else {
            file_site
                .and_then(|f| list.iter().find(|s| s.id == f))
                .or(list.first())
                .cloned()
                .ok_or_else(|| Error::Setup("the account has no energy site".into()))?
        };
        log::info!(
            "cloud '{}': using energy site {} ({})",
            self.label,
            pick.id,
            pick.name.as_deref().unwrap_or("unnamed")
        );
        self.site = Some(pick.clone());
        Ok(pick)
    }

    fn site_path(&mut self, leaf: &str) -> Result<String, Error> {
        let id = self.select_site()?.id;
        Ok(format!("api/1/energy_sites/{id}/{leaf}"))
    }

    fn get_response(&mut self, leaf: &str, query: &str) -> Result<Value, Error> {
        let mut path = self.site_path(leaf)?;
        if self.kind == Kind::Owner && !query.is_empty() {
            path = format!("{path}?{query}");
        }
        let doc = self.call("GET", &path, None)?;
        match doc.get("response") {
            Some(v @ Value::Object(_)) => Ok(v.clone()),
            _ => Err(Error::BadReply(format!("{leaf}: no response object"))),
        }
    }

    /// `live_status` (power flows, grid and island status).
    pub fn live_status(&mut self) -> Result<Value, Error> {
        let q = format!("counter={}&language=en", self.counter + 1);
        let v = self.get_response("live_status", &q)?;
        self.counter = (self.counter + 1) % COUNTER_MAX;
        Ok(v)
    }

    /// `site_info` (configuration, reserve, mode), cached for `max_age`.
    pub fn site_info(&mut self, max_age: Duration) -> Result<Value, Error> {
        if let Some((at, v)) = &self.site_info {
            if at.elapsed() < max_age {
                return Ok(v.clone());
            }
        }
        let v = self.get_response("site_info", "language=en")?;
        self.site_info = Some((Instant::now(), v.clone()));
        Ok(v)
    }

    /// `site_status` (battery summary).
    pub fn site_status(&mut self) -> Result<Value, Error> {
        self.get_response("site_status", "language=en")
    }

    /// `backup_time_remaining` in hours.
    pub fn time_remaining(&mut self) -> Result<Option<f64>, Error> {
        let v = self.get_response("backup_time_remaining", "language=en")?;
        Ok(v.get("time_remaining_hours").and_then(Value::as_f64))
    }

    /// A write (`backup`, `operation`, `grid_import_export`). The Owner API answers
    /// `{"response": {"code": 201, "message": "Updated"}}`: the message is the result; FleetAPI
    /// results are the whole answer, as pypowerwall returns them.
    fn write(&mut self, leaf: &str, body: Value) -> Result<Value, Error> {
        let path = self.site_path(leaf)?;
        self.site_info = None;
        let doc = self.call("POST", &path, Some(&body))?;
        // grid_import_export is not a teslapy "command": its answer is not checked.
        if self.kind == Kind::Fleet || leaf == "grid_import_export" {
            return Ok(doc);
        }
        let resp = doc.get("response").and_then(Value::as_object);
        let field = |k: &str| {
            resp.and_then(|m| m.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)))
                .map(|(_, v)| v.clone())
        };
        match field("code").and_then(|c| c.as_i64()) {
            Some(200 | 201) => Ok(field("message").unwrap_or(Value::Null)),
            _ => Err(Error::Status(200, reason(&doc.to_py().into_bytes()))),
        }
    }

    /// Sets the backup reserve (app scale, 0–100).
    pub fn set_reserve(&mut self, percent: i64) -> Result<Value, Error> {
        self.write(
            "backup",
            Map::new().with("backup_reserve_percent", percent).into(),
        )
    }

    /// Sets the operation mode (`self_consumption`, `backup`, `autonomous`).
    pub fn set_mode(&mut self, mode: &str) -> Result<Value, Error> {
        self.write(
            "operation",
            Map::new().with("default_real_mode", mode).into(),
        )
    }
}

impl Session {
    /// Allows or forbids charging from the grid.
    pub fn set_grid_charging(&mut self, allow: bool) -> Result<Value, Error> {
        self.write(
            "grid_import_export",
            Map::new()
                .with("disallow_charge_from_grid_with_solar_installed", !allow)
                .into(),
        )
    }

    /// Sets the export rule (`battery_ok`, `pv_only`, `never`).
    pub fn set_grid_export(&mut self, rule: &str) -> Result<Value, Error> {
        self.write(
            "grid_import_export",
            Map::new()
                .with("customer_preferred_export_rule", rule)
                .into(),
        )
    }
}

/// Open sessions by token-file key (weak: a session lives as long as its users).
type Registry = Mutex<Vec<(String, Weak<Mutex<Session>>)>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
}

/// The one session of a token file (and email), opened on first use.
pub fn shared(
    label: &str,
    auth: &CloudAuth,
    timeout: Duration,
) -> Result<Arc<Mutex<Session>>, Error> {
    let dir = tokens::dir(&auth.authpath);
    let dir = dir.canonicalize().unwrap_or(dir);
    let key = format!(
        "{}|{}|{}",
        dir.display(),
        if auth.fleet { "fleet" } else { "owner" },
        auth.email.as_deref().unwrap_or("").to_ascii_lowercase()
    );
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    r.retain(|(_, w)| w.strong_count() > 0);
    if let Some(s) = r
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(s);
    }
    let s = Arc::new(Mutex::new(Session::open(label, auth, timeout)?));
    r.push((key, Arc::downgrade(&s)));
    Ok(s)
}

/// The extra CA certificates of `auth` (empty without `PW_CLOUD_CA`).
pub fn ca_pem(auth: &CloudAuth) -> Result<Vec<u8>, Error> {
    match &auth.ca_file {
        None => Ok(Vec::new()),
        Some(p) => {
            std::fs::read(p).map_err(|e| Error::Setup(format!("PW_CLOUD_CA: cannot read {p}: {e}")))
        }
    }
}
