//! A fake Tesla cloud for tests: Owner API, FleetAPI and the SSO token endpoint on 127.0.0.1,
//! over HTTP/2 only (TLS 1.3 with ALPN `h2`; a client that does not negotiate `h2` is dropped,
//! as Tesla refuses HTTP/1.1). It records every request and keeps a tiny site model: reserve,
//! mode, live power flows, and which access and refresh tokens are valid.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use pypowerwall_server::json::{self, Map, Value};
use pypowerwall_server::wire::tls;

pub const SITE_ID: i64 = 90_000_000_000_001;
pub const DIN: &str = "1232100-00-E--TGFAKE000001";

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Path with query.
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// The fake's state; tests read and change it through [`FakeCloud::state`].
#[derive(Debug)]
pub struct State {
    pub calls: Vec<Call>,
    pub access_tokens: Vec<String>,
    pub refresh_token: String,
    /// The token endpoint refuses every refresh.
    pub refresh_fails: bool,
    pub minted: u32,
    pub reserve: i64,
    pub mode: String,
    pub solar: i64,
    pub battery: i64,
    pub load: i64,
    pub grid: i64,
    pub percentage: f64,
    pub island_status: String,
    pub grid_status: String,
    /// Writes answer this error code instead of succeeding.
    pub write_error: Option<u16>,
    /// Writes (POSTs) are answered after this long.
    pub write_delay: Duration,
    /// `disallow_charge_from_grid_with_solar_installed`, as last written.
    pub disallow_grid_charging: bool,
    /// `customer_preferred_export_rule`, as last written.
    pub export_rule: String,
    /// Authorization codes handed out: (code, PKCE challenge, used).
    pub codes: Vec<(String, String, bool)>,
    /// Code exchanges whose verifier did not match the challenge.
    pub pkce_failures: u32,
    /// The e-mail in the id_token of a login.
    pub sso_email: String,
    /// `api/1/products` lists a second battery site (`SITE_ID + 1`, "Fake Cabin").
    pub second_site: bool,
    /// `api/1/products` lists no battery site.
    pub no_sites: bool,
}

pub struct FakeCloud {
    pub addr: SocketAddr,
    pub cert_pem: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FakeCloud {
    /// Starts the fake with one valid access token and one valid refresh token.
    pub fn start(access: &str, refresh: &str) -> FakeCloud {
        let (cert, key) = tls::self_signed(&["127.0.0.1", "localhost"]).unwrap();
        let base = tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let mut cfg = (*base).clone();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        let cfg = Arc::new(cfg);
        let state = Arc::new(Mutex::new(State {
            calls: Vec::new(),
            access_tokens: vec![access.to_string()],
            refresh_token: refresh.to_string(),
            refresh_fails: false,
            minted: 0,
            reserve: 20,
            mode: "self_consumption".into(),
            solar: 3210,
            battery: -1200,
            load: 1530,
            grid: -480,
            percentage: 64.5,
            island_status: "on_grid".into(),
            grid_status: "Active".into(),
            write_error: None,
            write_delay: Duration::ZERO,
            disallow_grid_charging: false,
            export_rule: "pv_only".into(),
            codes: Vec::new(),
            pkce_failures: 0,
            sso_email: EMAIL.into(),
            second_site: false,
            no_sites: false,
        }));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                while !sp.load(Ordering::Relaxed) {
                    let Ok(Ok((tcp, _))) =
                        tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
                    else {
                        continue;
                    };
                    let (acceptor, st) = (acceptor.clone(), st.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        // Tesla requires HTTP/2: no ALPN h2, no service.
                        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                            return;
                        }
                        let Ok(mut conn) = h2::server::handshake(tls).await else {
                            return;
                        };
                        while let Some(Ok((req, mut respond))) = conn.accept().await {
                            let st = st.clone();
                            tokio::spawn(async move {
                                let (parts, mut body) = req.into_parts();
                                let delay = st.lock().unwrap().write_delay;
                                if parts.method == "POST" && !delay.is_zero() {
                                    tokio::time::sleep(delay).await;
                                }
                                let mut buf = Vec::new();
                                while let Some(chunk) = body.data().await {
                                    let Ok(c) = chunk else { return };
                                    let _ = body.flow_control().release_capacity(c.len());
                                    buf.extend_from_slice(&c);
                                }
                                let (status, out) = handle(&st, &parts, &buf);
                                let resp = http::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(())
                                    .unwrap();
                                if let Ok(mut send) = respond.send_response(resp, false) {
                                    let _ = send.send_data(Bytes::from(out), true);
                                }
                            });
                        }
                    });
                }
            });
        });
        FakeCloud {
            addr,
            cert_pem: cert,
            state,
            stop,
        }
    }

    /// `https://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Recorded writes (POSTs to an energy site).
    pub fn writes(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path.contains("/energy_sites/"))
            .collect()
    }

    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `application/x-www-form-urlencoded` value of `key` (`+` and `%XX` decoded).
pub fn form(body: &str, key: &str) -> String {
    let decode = |v: &str| {
        let b = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                    out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| decode(v))
        .unwrap_or_default()
}

/// URL-safe base64 without padding (for the fake's PKCE check and id_token).
pub fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The SSO's redirect target for the `ownerapi` client.
pub const VOID_CALLBACK: &str = "https://auth.tesla.com/void/callback";

/// Handles the SSO's authorize step (the browser's part: the user logs in and lands on the
/// callback page), checking the parameters; the final URL, or an error.
fn authorize(s: &mut State, query: &str) -> (u16, String) {
    let want = [
        ("client_id", "ownerapi"),
        ("response_type", "code"),
        ("redirect_uri", VOID_CALLBACK),
        ("code_challenge_method", "S256"),
        ("scope", "openid email offline_access"),
    ];
    for (k, v) in want {
        if form(query, k) != v {
            return err(400, &format!("bad {k}"));
        }
    }
    let challenge = form(query, "code_challenge");
    let state = form(query, "state");
    if challenge.len() != 43 || state.is_empty() {
        return err(400, "bad code_challenge or state");
    }
    s.minted += 1;
    let code = format!("code-{}", s.minted);
    s.codes.push((code.clone(), challenge, false));
    (
        200,
        format!("{VOID_CALLBACK}?code={code}&state={state}&issuer=https%3A%2F%2Fauth.tesla.com%2Foauth2%2Fv3"),
    )
}

/// The token endpoint's `authorization_code` grant, PKCE checked; codes work once.
fn code_grant(s: &mut State, text: &str) -> (u16, String) {
    if form(text, "client_id") != "ownerapi" || form(text, "redirect_uri") != VOID_CALLBACK {
        return err(400, "invalid_request");
    }
    let code = form(text, "code");
    let verifier = form(text, "code_verifier");
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    let Some(entry) = s.codes.iter_mut().find(|(c, _, used)| *c == code && !used) else {
        return err(400, "invalid_grant");
    };
    entry.2 = true;
    if b64url(digest.as_ref()) != entry.1 {
        s.pkce_failures += 1;
        return err(400, "invalid_grant");
    }
    s.minted += 1;
    let access = format!("access-{}", s.minted);
    let refresh = format!("refresh-{}", s.minted);
    s.access_tokens.push(access.clone());
    s.refresh_token = refresh.clone();
    let claims = Map::new()
        .with("email", s.sso_email.as_str())
        .with("sub", "fake");
    let id_token = format!(
        "{}.{}.sig",
        b64url(br#"{"alg":"none"}"#),
        b64url(Value::from(claims).to_py().as_bytes())
    );
    (
        200,
        Value::from(
            Map::new()
                .with("access_token", access)
                .with("refresh_token", refresh)
                .with("id_token", id_token)
                .with("expires_in", 28800)
                .with("state", "ignored")
                .with("token_type", "Bearer"),
        )
        .to_py(),
    )
}

fn err(status: u16, e: &str) -> (u16, String) {
    (status, Value::from(Map::new().with("error", e)).to_py())
}

fn response(v: impl Into<Value>) -> (u16, String) {
    (
        200,
        Value::from(Map::new().with("response", v.into())).to_py(),
    )
}

fn handle(state: &Mutex<State>, parts: &http::request::Parts, body: &[u8]) -> (u16, String) {
    let mut s = state.lock().unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = String::from_utf8_lossy(body).into_owned();
    s.calls.push(Call {
        method: parts.method.to_string(),
        path: path.clone(),
        authorization: authorization.clone(),
        body: text.clone(),
    });
    let route = path.split('?').next().unwrap_or("").to_string();
    if route == "/oauth2/v3/authorize" && parts.method == "GET" {
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        return authorize(&mut s, query);
    }
    if route == "/oauth2/v3/token"
        && parts.method == "POST"
        && form(&text, "grant_type") == "authorization_code"
    {
        return code_grant(&mut s, &text);
    }
    if route == "/oauth2/v3/token" {
        if parts.method != "POST" || form(&text, "grant_type") != "refresh_token" {
            return err(400, "unsupported_grant_type");
        }
        if s.refresh_fails || form(&text, "refresh_token") != s.refresh_token {
            return err(401, "invalid_grant");
        }
        s.minted += 1;
        let access = format!("access-{}", s.minted);
        let refresh = format!("refresh-{}", s.minted);
        s.access_tokens = vec![access.clone()];
        s.refresh_token = refresh.clone();
        return (
            200,
            Value::from(
                Map::new()
                    .with("access_token", access)
                    .with("refresh_token", refresh)
                    .with("id_token", "id-token")
                    .with("expires_in", 28800)
                    .with("token_type", "Bearer"),
            )
            .to_py(),
        );
    }
    let bearer = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("");
    if !s.access_tokens.iter().any(|t| t == bearer) {
        return err(401, "invalid bearer token");
    }
    let site = format!("/api/1/energy_sites/{SITE_ID}/");
    if route == "/api/1/products" {
        let mut list = vec![Value::from(
            Map::new()
                .with("id", 1)
                .with("vehicle_id", 2)
                .with("display_name", "Car"),
        )];
        if !s.no_sites {
            list.push(Value::from(
                Map::new()
                    .with("energy_site_id", SITE_ID)
                    .with("resource_type", "battery")
                    .with("site_name", "Fake Home")
                    .with("gateway_id", DIN),
            ));
            if s.second_site {
                list.push(Value::from(
                    Map::new()
                        .with("energy_site_id", SITE_ID + 1)
                        .with("resource_type", "battery")
                        .with("site_name", "Fake Cabin")
                        .with("gateway_id", DIN),
                ));
            }
        }
        return response(list);
    }
    let second = format!("/api/1/energy_sites/{}/", SITE_ID + 1);
    let route = match route.strip_prefix(&second) {
        Some(leaf) if s.second_site => format!("{site}{leaf}"),
        _ => route,
    };
    let Some(leaf) = route.strip_prefix(&site) else {
        return err(404, "not found");
    };
    match (parts.method.as_str(), leaf) {
        ("GET", "live_status") => response(
            Map::new()
                .with("solar_power", s.solar)
                .with("percentage_charged", s.percentage)
                .with("backup_capable", true)
                .with("battery_power", s.battery)
                .with("load_power", s.load)
                .with("grid_status", s.grid_status.as_str())
                .with("grid_services_active", false)
                .with("grid_power", s.grid)
                .with("grid_services_power", 0)
                .with("generator_power", 0)
                .with("island_status", s.island_status.as_str())
                .with("storm_mode_active", false)
                .with("timestamp", "2026-01-01T12:00:00-08:00")
                .with("wall_connectors", Vec::<Value>::new()),
        ),
        ("GET", "site_info") => response(
            Map::new()
                .with("id", DIN)
                .with("site_name", "Fake Home")
                .with("backup_reserve_percent", s.reserve)
                .with("default_real_mode", s.mode.as_str())
                .with("installation_date", "2024-01-01T00:00:00-08:00")
                .with(
                    "components",
                    Map::new()
                        .with("solar", true)
                        .with("battery", true)
                        .with("grid", true)
                        .with("gateway", "teg")
                        .with("customer_preferred_export_rule", s.export_rule.as_str()),
                )
                .with("version", "25.10.1 abcdef12")
                .with("battery_count", 2)
                .with("nameplate_power", 11500)
                .with("nameplate_energy", 27000)
                .with("installation_time_zone", "America/Los_Angeles"),
        ),
        ("GET", "site_status") => response(
            Map::new()
                .with("resource_type", "battery")
                .with("gateway_id", DIN)
                .with("energy_left", 17415.0)
                .with("total_pack_energy", 27000)
                .with("percentage_charged", s.percentage),
        ),
        ("GET", "backup_time_remaining") => {
            response(Map::new().with("time_remaining_hours", 11.25))
        }
        ("POST", "backup" | "operation" | "grid_import_export") => {
            if let Some(code) = s.write_error {
                return err(code, "write refused");
            }
            let v = json::parse(&text).unwrap_or(Value::Null);
            if leaf == "backup" {
                match v.get("backup_reserve_percent").and_then(Value::as_i64) {
                    Some(n) => s.reserve = n,
                    None => return err(400, "bad backup_reserve_percent"),
                }
            }
            if leaf == "grid_import_export" {
                if let Some(b) = v
                    .get("disallow_charge_from_grid_with_solar_installed")
                    .and_then(Value::as_bool)
                {
                    s.disallow_grid_charging = b;
                }
                if let Some(r) = v
                    .get("customer_preferred_export_rule")
                    .and_then(Value::as_str)
                {
                    s.export_rule = r.to_string();
                }
            }
            if leaf == "operation" {
                match v.get("default_real_mode").and_then(Value::as_str) {
                    Some(m) => s.mode = m.to_string(),
                    None => return err(400, "bad default_real_mode"),
                }
            }
            response(Map::new().with("code", 201).with("message", "Updated"))
        }
        _ => err(404, "not found"),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the cloud and control tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pypowerwall_server::app::{self, App};
use pypowerwall_server::config::{self, CliOverrides};

pub const EMAIL: &str = "owner@example.com";

/// A fresh, empty temporary directory for token files.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ppws-cloud-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Writes `.pypowerwall.auth` (SSO URL = the fake) and the fake's CA certificate.
pub fn write_owner_files(
    dir: &Path,
    fake: &FakeCloud,
    access: &str,
    refresh: &str,
    expires_at: i64,
) {
    let doc = Map::new().with(
        EMAIL,
        Map::new().with("url", fake.url()).with(
            "sso",
            Map::new()
                .with("token_type", "Bearer")
                .with("access_token", access)
                .with("refresh_token", refresh)
                .with("expires_at", expires_at)
                .with("expires_in", 28800)
                .with("id_token", "old-id"),
        ),
    );
    std::fs::write(dir.join(".pypowerwall.auth"), Value::from(doc).to_py()).unwrap();
    std::fs::write(dir.join("ca.pem"), &fake.cert_pem).unwrap();
}

/// Writes `.pypowerwall.fleetapi` (AUDIENCE = the fake) and the fake's CA certificate.
pub fn write_fleet_files(dir: &Path, fake: &FakeCloud, access: &str, refresh: &str) {
    let doc = Map::new()
        .with("CLIENT_ID", "fake-client-id")
        .with("CLIENT_SECRET", "fake-client-secret")
        .with("DOMAIN", "example.com")
        .with("REDIRECT_URI", "https://example.com/access")
        .with("AUDIENCE", fake.url().trim_end_matches('/'))
        .with("partner_token", "partner")
        .with("partner_account", Map::new())
        .with("access_token", access)
        .with("refresh_token", refresh)
        .with("site_id", SITE_ID);
    std::fs::write(
        dir.join(".pypowerwall.fleetapi"),
        Value::from(doc).to_py_pretty(),
    )
    .unwrap();
    std::fs::write(dir.join("ca.pem"), &fake.cert_pem).unwrap();
}

/// Starts the server on a free loopback port with these variables, the token files of `dir`,
/// the fake's CA and the fake as the Owner API.
pub fn start_app(dir: &Path, fake: &FakeCloud, vars: &[(&str, &str)]) -> App {
    let ca = dir.join("ca.pem").to_string_lossy().into_owned();
    let url = fake.url();
    let mut map: HashMap<String, String> = [
        ("PW_CLOUD_OWNER_URL", url.as_str()),
        ("PW_BIND_ADDRESS", "127.0.0.1"),
        ("PW_CACHE_EXPIRE", "1"),
        ("PW_AUTH_PATH", dir.to_str().unwrap()),
        ("PW_CLOUD_CA", ca.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    let mut cfg = config::load(&|k| map.get(k).cloned(), &CliOverrides::default()).expect("config");
    cfg.server.port = 0;
    app::start(cfg).expect("server starts")
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// A request to the server with optional headers and body.
pub fn request(
    app: &App,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let mut req = agent.request(method, &format!("http://{}{}", app.addr(), path));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let res = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| (n.clone(), resp.header(&n).unwrap_or("").to_string()))
        .collect();
    Reply {
        status,
        body: resp.into_string().unwrap_or_default(),
        headers,
    }
}

/// A proxy-style form POST.
pub fn post_form(app: &App, path: &str, body: &str) -> Reply {
    request(
        app,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(body),
    )
}

/// A seed-style JSON POST with an optional bearer token.
pub fn post_json(app: &App, path: &str, token: Option<&str>, body: &str) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    request(app, "POST", path, &headers, Some(body))
}

/// Waits until `cond` holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}
