//! Configuration: the legacy proxy's environment variables, our own names, and CLI flags.
//!
//! Everything is read once at start-up into plain structs; nothing reads the environment later.
//! Precedence is CLI > environment > defaults. A value that does not parse stops start-up with a
//! [`ConfigError`] naming the variable (or flag) and the accepted values — never a silent default.
//! Secrets (passwords, tokens) are kept here and nowhere else; [`mask`] is how they are shown.

use std::time::Duration;

pub mod file;
// MQTT publisher settings (issue 16); a separate file so it can move with the key table.
pub mod mqtt;

use crate::gateway::queries::QuerySet;
use crate::gateway::tls::{self, Fingerprint};

/// Default listening port of the pypowerwall proxy.
pub const DEFAULT_PORT: u16 = 8675;

/// The web UI styles the proxy accepts in `PW_STYLE` (and `?style=`).
pub const STYLES: &[&str] = &[
    "clear",
    "black",
    "white",
    "grafana",
    "grafana-dark",
    "dakboard",
    "solar",
];

/// A configuration value that cannot be used: which key, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// `PW_HTTPS`: `no` (plain HTTP), `yes` (TLS), `http` (plain HTTP, cookies marked Secure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpsMode {
    No,
    Yes,
    Http,
}

impl HttpsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpsMode::No => "no",
            HttpsMode::Yes => "yes",
            HttpsMode::Http => "http",
        }
    }
}

/// Server-wide settings (one listener, shared by every gateway).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Listen address; empty means all interfaces (the proxy's `""`).
    pub bind: String,
    pub port: u16,
    /// HTTP worker threads.
    pub workers: usize,
    pub https: HttpsMode,
    /// PEM files for `PW_HTTPS=yes`; a self-signed certificate is made when absent.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// `PROXY_BASE_URL`, always ending in `/`.
    pub base_url: String,
    /// `PW_STYLE` without `.js`.
    pub style: String,
    pub browser_cache: u64,
    pub neg_solar: bool,
    pub site_zero_threshold: i64,
    /// `PW_CACHE_TTL`: how long last-good data is served after a failed poll (s).
    pub cache_ttl: u64,
    pub control_secret: Option<String>,
    /// Who may write through `/control/*`.
    pub control: ControlSettings,
    /// Tesla cloud endpoints (`PW_CLOUD_OWNER_URL`, `PW_CLOUD_AUTH_URL`, `PW_FLEETAPI_URL`,
    /// `PW_CLOUD_CA`).
    pub cloud: CloudSettings,
    pub email: String,
    pub timezone: String,
    pub auth_path: String,
    pub auth_mode: String,
    pub cache_file: String,
    pub siteid: Option<String>,
    pub pool_maxsize: i64,
    /// Idle keep-alive connections and slow request headers are cut after this.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// The legacy switches that only show up in `/stats`.
    pub legacy_flags: LegacyFlags,
    /// Serve the web UI from this directory instead of the embedded copy (`PW_WWW_DIR`).
    pub www_dir: Option<String>,
    /// Debug logging.
    pub debug: bool,
    /// `/health` answers 503 when no gateway has fresh data (`PW_HEALTH_503`, default yes).
    pub health_503: bool,
    /// WebSocket message interval (`PW_WS_INTERVAL`, seconds).
    pub ws_interval: Duration,
    /// Most WebSocket clients at once (`PW_WS_MAX_CLIENTS`).
    pub ws_max_clients: usize,
    /// Allowed browser origins for WebSockets (`CORS_ORIGINS`, comma-separated; empty = any).
    pub cors_origins: Vec<String>,
}

/// Proxy switches we accept for compatibility and report in `/stats`.
#[derive(Debug, Clone)]
pub struct LegacyFlags {
    pub suppress_network_errors: bool,
    pub network_error_rate_limit: i64,
    pub fail_fast: bool,
    pub graceful_degradation: bool,
    pub health_check: bool,
    pub tedapi_recovery: bool,
    pub tedapi_probe_interval: i64,
}

/// One gateway to watch.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// URL-safe id (`default` for the single-gateway environment).
    pub id: String,
    pub name: String,
    /// `host[:port]`.
    pub host: String,
    /// Gateway (QR sticker) password, for TEDAPI.
    pub gw_pwd: Option<String>,
    /// Customer password (local mode).
    pub password: Option<String>,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub tls_fingerprint: Option<Fingerprint>,
    pub query_set: QuerySet,
    /// Started by `--demo`: the data is simulated.
    pub simulated: bool,
    /// How the gateway is reached.
    pub mode: Mode,
    /// Local login: the account e-mail sent with it (`PW_EMAIL`) and cookie or token auth.
    pub email: String,
    pub auth_mode: AuthMode,
    /// v1r: the registered RSA-4096 private key (`PW_RSA_KEY_PATH`, PEM as pypowerwall writes it).
    pub rsa_key_path: Option<String>,
    /// v1r: the gateway's Wi-Fi TEDAPI host for followers and LAN failover (`PW_WIFI_HOST`).
    pub wifi_host: Option<String>,
    /// Tesla cloud credentials: the transport in cloud modes, and the control path.
    pub cloud: Option<CloudAuth>,
}

/// Where a gateway's Tesla cloud credentials live (pypowerwall's token files) and which cloud
/// endpoints to use. The email is never shown (`Debug` hides it).
#[derive(Clone, Default, PartialEq)]
pub struct CloudAuth {
    /// Directory of `.pypowerwall.auth` / `.pypowerwall.site` / `.pypowerwall.fleetapi`.
    pub authpath: String,
    /// Account in `.pypowerwall.auth`; `None` takes the file's first entry.
    pub email: Option<String>,
    /// Energy site to use (`PW_SITEID`); `None` takes the site file or the first site.
    pub siteid: Option<i64>,
    /// FleetAPI (`.pypowerwall.fleetapi`) instead of the Owner API.
    pub fleet: bool,
    /// Owner API base URL (`PW_CLOUD_OWNER_URL`).
    pub owner_url: Option<String>,
    /// SSO base URL for token refresh (`PW_CLOUD_AUTH_URL`); default: the token file's own.
    pub auth_url: Option<String>,
    /// FleetAPI base URL (`PW_FLEETAPI_URL`); default: the file's `AUDIENCE`.
    pub fleet_url: Option<String>,
    /// Extra trusted CA certificates, PEM (`PW_CLOUD_CA`).
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for CloudAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudAuth")
            .field("authpath", &self.authpath)
            .field("fleet", &self.fleet)
            .field("siteid", &self.siteid)
            .finish_non_exhaustive()
    }
}

impl CloudAuth {
    /// The extra CA certificates (empty without `PW_CLOUD_CA`).
    pub fn ca_pem(&self) -> Result<Vec<u8>, crate::cloud::Error> {
        match &self.ca_file {
            None => Ok(Vec::new()),
            Some(p) => std::fs::read(p).map_err(|e| {
                crate::cloud::Error::Setup(format!("PW_CLOUD_CA: cannot read {p}: {e}"))
            }),
        }
    }

    /// Picks FleetAPI when its file exists in `authpath` (the proxy's auto-select order).
    pub fn detect(mut self) -> CloudAuth {
        let dir = crate::cloud::tokens::dir(&self.authpath);
        self.fleet = crate::cloud::tokens::has_fleet(&dir);
        self
    }
}

/// Server-wide cloud endpoints and the control switch.
#[derive(Debug, Clone, Default)]
pub struct CloudSettings {
    pub owner_url: Option<String>,
    pub auth_url: Option<String>,
    pub fleet_url: Option<String>,
    pub ca_file: Option<String>,
}

impl CloudSettings {
    /// Credentials in `authpath` with these endpoints.
    pub fn auth(&self, authpath: &str, email: Option<String>, siteid: Option<i64>) -> CloudAuth {
        CloudAuth {
            authpath: authpath.to_string(),
            email,
            siteid,
            fleet: false,
            owner_url: self.owner_url.clone(),
            auth_url: self.auth_url.clone(),
            fleet_url: self.fleet_url.clone(),
            ca_file: self.ca_file.clone(),
        }
        .detect()
    }
}

/// Control writes: enabled by `CONTROL_ENABLED=true` + `CONTROL_TOKEN`, or `PW_CONTROL_SECRET`.
#[derive(Clone, Default)]
pub struct ControlSettings {
    /// Accepted tokens (`CONTROL_TOKEN`, `PW_CONTROL_SECRET`); empty = control disabled.
    pub tokens: Vec<String>,
}

impl std::fmt::Debug for ControlSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ControlSettings {{ enabled: {} }}", self.enabled())
    }
}

impl ControlSettings {
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }
}

/// How a gateway is reached (the proxy's modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// TEDAPI with the gateway password (the proxy's "Local (full)").
    #[default]
    Tedapi,
    /// The customer REST API with the customer password (the proxy's "Local").
    Local,
    /// Local REST plus TEDAPI vitals (both passwords, host 192.168.91.1; "Local (hybrid)").
    Hybrid,
    /// One password of unknown kind: TEDAPI first, local mode when TEDAPI refuses it.
    Auto,
    /// Tesla Owner API (`.pypowerwall.auth`; the proxy's "Cloud").
    Cloud,
    /// Tesla FleetAPI (`.pypowerwall.fleetapi`; the proxy's "FleetAPI").
    FleetApi,
    /// RSA-signed TEDAPI on the Powerwall 3 wired LAN (`PW_RSA_KEY_PATH`; "Local (v1r)").
    V1r,
    /// v1r with the Wi-Fi TEDAPI host as follower route and LAN failover ("Local (v1r+wifi)").
    V1rWifi,
}

impl Mode {
    /// Name in the API (`/api/gateways` `mode`) and in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Tedapi => "tedapi",
            Mode::Local => "local",
            Mode::Hybrid => "hybrid",
            Mode::Auto => "auto",
            Mode::Cloud => "cloud",
            Mode::FleetApi => "fleetapi",
            Mode::V1r => "v1r",
            Mode::V1rWifi => "v1r+wifi",
        }
    }

    /// The mode of a [`Mode::name`].
    pub fn parse(s: &str) -> Option<Mode> {
        [
            Mode::Tedapi,
            Mode::Local,
            Mode::Hybrid,
            Mode::Auto,
            Mode::Cloud,
            Mode::FleetApi,
            Mode::V1r,
            Mode::V1rWifi,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }

    /// The proxy's `/stats` fields: (`mode`, `tedapi_mode`, `tedapi`, `cloudmode`, `fleetapi`).
    /// `Auto` shows what it tries first (TEDAPI) until a poll has decided.
    pub fn proxy_labels(self) -> (&'static str, &'static str, bool, bool, bool) {
        match self {
            Mode::Tedapi | Mode::Auto => ("Local (full)", "full", true, false, false),
            Mode::Local => ("Local", "off", false, false, false),
            Mode::Hybrid => ("Local (hybrid)", "hybrid", true, false, false),
            Mode::Cloud => ("Cloud", "off", false, true, false),
            Mode::FleetApi => ("FleetAPI", "off", false, true, true),
            Mode::V1r => ("Local (v1r)", "v1r", true, false, false),
            Mode::V1rWifi => ("Local (v1r+wifi)", "v1r", true, false, false),
        }
    }

    /// The reference's choice for the passwords given (spec §6): gateway password only →
    /// TEDAPI; both → local (hybrid at 192.168.91.1); customer password only → `Auto` (ours:
    /// TEDAPI first, as this server always read a lone `PW_PASSWORD` as the gateway password).
    pub fn select(host: &str, gw_pwd: bool, password: bool) -> Option<Mode> {
        match (gw_pwd, password) {
            (true, false) => Some(Mode::Tedapi),
            (true, true) if crate::gateway::local::hybrid_host(host) => Some(Mode::Hybrid),
            (true, true) => Some(Mode::Local),
            (false, true) => Some(Mode::Auto),
            (false, false) => None,
        }
    }
}

/// `PW_AUTH_MODE`: how the local login is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// The `AuthCookie` and `UserRecord` cookies (default).
    #[default]
    Cookie,
    /// `Authorization: Bearer <token>`.
    Token,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSettings,
    pub gateways: Vec<GatewayConfig>,
    /// `--demo`: start the built-in simulator and watch it.
    pub demo: bool,
    /// Index of the gateway the legacy routes serve (`PW_DEFAULT_GATEWAY`, else the first).
    pub default_gateway: usize,
    /// `MQTT_*` (issue 16): the MQTT publisher; off unless `MQTT_HOST` is set.
    pub mqtt: mqtt::MqttSettings,
}

/// Gateway settings that come from the server-wide environment unless a gateway sets its own.
#[derive(Debug, Clone)]
pub struct GatewayDefaults {
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub query_set: QuerySet,
    pub email: String,
    pub auth_mode: AuthMode,
    /// Cloud endpoints for gateways with `email` / `authpath` / `cloud_mode`.
    pub cloud: CloudSettings,
    /// `PW_AUTH_PATH`: where token files are looked for when a gateway gives no `authpath`.
    pub auth_path: String,
}

/// Flags given on the command line (they win over the environment).
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub host: Option<String>,
    pub gw_pwd: Option<String>,
    pub password: Option<String>,
    pub port: Option<String>,
    pub bind: Option<String>,
    pub config: Option<String>,
    pub demo: bool,
    pub debug: bool,
}

/// Shows a secret the way the proxy's `/stats` does: one `*` per character.
pub fn mask(secret: &str) -> String {
    "*".repeat(secret.chars().count())
}

struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    /// `server:` settings of the configuration file, as (variable, label, value).
    file: Vec<(&'static str, String, String)>,
}

impl Env<'_> {
    /// The first of `keys` that is set (even to an empty string), with the name to report:
    /// the variable itself, or the file key it came from. The environment wins over the file.
    fn raw(&self, keys: &[&str]) -> Option<(String, String)> {
        keys.iter()
            .find_map(|k| (self.get)(k).map(|v| (k.to_string(), v)))
            .or_else(|| {
                keys.iter().find_map(|k| {
                    self.file
                        .iter()
                        .find(|(var, _, _)| var == k)
                        .map(|(_, label, v)| (label.clone(), v.clone()))
                })
            })
    }

    fn string(&self, keys: &[&str], default: &str) -> String {
        self.raw(keys)
            .map(|(_, v)| v)
            .unwrap_or_else(|| default.to_string())
    }

    fn opt(&self, keys: &[&str]) -> Option<String> {
        self.raw(keys).map(|(_, v)| v).filter(|v| !v.is_empty())
    }

    /// The proxy's booleans: `yes` (any case) is true, anything else false.
    fn yes(&self, key: &str, default: bool) -> bool {
        match self.raw(&[key]) {
            Some((_, v)) => v.trim().eq_ignore_ascii_case("yes") || v.trim() == "true",
            None => default,
        }
    }

    fn int(&self, keys: &[&str], default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
        match self.raw(keys) {
            None => Ok(default),
            Some((k, v)) => parse_int(&k, &v, min, max),
        }
    }
}

impl Env<'_> {
    fn float(&self, keys: &[&str], default: f64, min: f64, max: f64) -> Result<f64, ConfigError> {
        match self.raw(keys) {
            None => Ok(default),
            Some((k, v)) => match v.trim().parse::<f64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError::new(
                    k,
                    format!("'{v}' is not a number from {min} to {max}"),
                )),
            },
        }
    }
}

fn parse_int(key: &str, v: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    match v.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            key,
            format!("'{v}' is not an integer from {min} to {max}"),
        )),
    }
}

/// Reads the configuration from an environment lookup and CLI flags.
pub fn load(
    get: &dyn Fn(&str) -> Option<String>,
    cli: &CliOverrides,
) -> Result<Config, ConfigError> {
    let file_path = cli
        .config
        .clone()
        .or_else(|| get("PW_CONFIG").filter(|p| !p.is_empty()));
    let file = match &file_path {
        Some(path) => Some(file::read(path)?),
        None => None,
    };
    let env = Env {
        get,
        file: match (&file, &file_path) {
            (Some(doc), Some(path)) => file::server_settings(doc, path)?,
            _ => Vec::new(),
        },
    };

    let port = match &cli.port {
        Some(p) => parse_int("--port", p, 0, 65535)?,
        None => env.int(&["PW_PORT", "SERVER_PORT"], DEFAULT_PORT as i64, 0, 65535)?,
    } as u16;
    let bind = match &cli.bind {
        Some(b) => b.clone(),
        None => env.string(&["PW_BIND_ADDRESS", "SERVER_HOST"], ""),
    };
    let https = match env.raw(&["PW_HTTPS"]) {
        None => HttpsMode::No,
        Some((_, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "" | "no" => HttpsMode::No,
            "yes" => HttpsMode::Yes,
            "http" => HttpsMode::Http,
            _ => {
                return Err(ConfigError::new(
                    "PW_HTTPS",
                    format!("'{v}' is not one of: no, yes, http"),
                ))
            }
        },
    };
    let style = env.string(&["PW_STYLE"], "clear");
    let style = style.trim().trim_end_matches(".js").to_string();
    if !STYLES.contains(&style.as_str()) {
        return Err(ConfigError::new(
            "PW_STYLE",
            format!("'{style}' is not one of: {}", STYLES.join(", ")),
        ));
    }
    let mut base_url = env.string(&["PROXY_BASE_URL"], "/");
    if !base_url.starts_with('/') {
        base_url.insert(0, '/');
    }
    if !base_url.ends_with('/') {
        base_url.push('/');
    }
    let cache_expire = env.int(&["PW_CACHE_EXPIRE"], 5, 1, 86_400)?;
    let timeout = env.int(&["PW_TIMEOUT"], 5, 1, 600)?;
    // The proxy treats an unparsable threshold as 0 rather than failing.
    let site_zero_threshold = env
        .opt(&["PW_SITE_ZERO_THRESHOLD"])
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let probe = env
        .opt(&["PW_TEDAPI_PROBE_INTERVAL"])
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|n| n.max(5))
        .unwrap_or(30);
    let query_set = match env.opt(&["PW_TEDAPI_API_VERSION"]) {
        None => QuerySet::V2024_06,
        Some(v) => QuerySet::parse(v.trim()).ok_or_else(|| {
            ConfigError::new(
                "PW_TEDAPI_API_VERSION",
                format!("'{v}' is not one of: V2024_06, V2026_06"),
            )
        })?,
    };
    let tls_fingerprint = match env.opt(&["PW_TLS_FINGERPRINT"]) {
        None => None,
        Some(v) => Some(
            tls::parse_fingerprint(&v).map_err(|m| ConfigError::new("PW_TLS_FINGERPRINT", m))?,
        ),
    };
    let auth_mode = env.string(&["PW_AUTH_MODE"], "cookie");
    if auth_mode != "cookie" && auth_mode != "token" {
        return Err(ConfigError::new(
            "PW_AUTH_MODE",
            format!("'{auth_mode}' is not one of: cookie, token"),
        ));
    }
    let auth_path = env.string(&["PW_AUTH_PATH"], "");
    let default_cache_file = if auth_path.is_empty() {
        ".powerwall".to_string()
    } else {
        format!("{}/.powerwall", auth_path.trim_end_matches('/'))
    };
    let idle = env.int(&["PW_IDLE_TIMEOUT"], 5, 1, 3600)?;
    let control_secret = env.opt(&["PW_CONTROL_SECRET"]);
    let control = {
        let mut tokens = Vec::new();
        if env.yes("CONTROL_ENABLED", false) {
            match env.opt(&["CONTROL_TOKEN"]) {
                Some(t) => tokens.push(t),
                None => {
                    return Err(ConfigError::new(
                        "CONTROL_TOKEN",
                        "is required with CONTROL_ENABLED=true (the bearer token for writes)",
                    ))
                }
            }
        }
        tokens.extend(control_secret.clone());
        ControlSettings { tokens }
    };
    let cloud = CloudSettings {
        owner_url: env.opt(&["PW_CLOUD_OWNER_URL"]),
        auth_url: env.opt(&["PW_CLOUD_AUTH_URL"]),
        fleet_url: env.opt(&["PW_FLEETAPI_URL"]),
        ca_file: env.opt(&["PW_CLOUD_CA"]),
    };
    for (key, url) in [
        ("PW_CLOUD_OWNER_URL", &cloud.owner_url),
        ("PW_CLOUD_AUTH_URL", &cloud.auth_url),
        ("PW_FLEETAPI_URL", &cloud.fleet_url),
    ] {
        if let Some(u) = url {
            if !u.starts_with("https://") {
                return Err(ConfigError::new(
                    key,
                    format!("'{u}' is not an https:// URL"),
                ));
            }
        }
    }
    let siteid = match env.opt(&["PW_SITEID"]) {
        None => None,
        Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
            ConfigError::new(
                "PW_SITEID",
                format!("'{v}' is not a numeric energy site id"),
            )
        })?),
    };

    let server = ServerSettings {
        bind,
        port,
        workers: env.int(&["PW_WORKERS", "SERVER_WORKERS"], 4, 1, 256)? as usize,
        https,
        tls_cert: env.opt(&["PW_TLS_CERT"]),
        tls_key: env.opt(&["PW_TLS_KEY"]),
        base_url,
        style,
        browser_cache: env.int(&["PW_BROWSER_CACHE"], 0, 0, 31_536_000)? as u64,
        neg_solar: env.yes("PW_NEG_SOLAR", true),
        site_zero_threshold,
        cache_ttl: env.int(&["PW_CACHE_TTL"], 30, 0, 86_400)? as u64,
        control_secret,
        control,
        cloud: cloud.clone(),
        email: env.string(&["PW_EMAIL"], "email@example.com"),
        timezone: env.string(&["PW_TIMEZONE"], "America/Los_Angeles"),
        auth_path,
        auth_mode,
        cache_file: env.string(&["PW_CACHE_FILE"], &default_cache_file),
        siteid: env.opt(&["PW_SITEID"]),
        pool_maxsize: env.int(&["PW_POOL_MAXSIZE"], 15, 0, 1000)?,
        idle_timeout: Duration::from_secs(idle as u64),
        max_connections: env.int(&["PW_MAX_CONNECTIONS"], 1024, 8, 65_536)? as usize,
        legacy_flags: LegacyFlags {
            suppress_network_errors: env.yes("PW_SUPPRESS_NETWORK_ERRORS", false),
            network_error_rate_limit: env.int(&["PW_NETWORK_ERROR_RATE_LIMIT"], 5, 0, 1_000_000)?,
            fail_fast: env.yes("PW_FAIL_FAST", false),
            graceful_degradation: env.yes("PW_GRACEFUL_DEGRADATION", true),
            health_check: env.yes("PW_HEALTH_CHECK", true),
            tedapi_recovery: env.yes("PW_TEDAPI_RECOVERY", true),
            tedapi_probe_interval: probe,
        },
        www_dir: env.opt(&["PW_WWW_DIR"]),
        debug: cli.debug || env.yes("PW_DEBUG", false),
        health_503: env.yes("PW_HEALTH_503", true),
        ws_interval: Duration::from_millis(
            (env.float(&["PW_WS_INTERVAL"], 1.0, 0.1, 3600.0)? * 1000.0) as u64,
        ),
        ws_max_clients: env.int(&["PW_WS_MAX_CLIENTS"], 1000, 0, 100_000)? as usize,
        cors_origins: env
            .opt(&["CORS_ORIGINS"])
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };

    let host = cli.host.clone().or_else(|| env.opt(&["PW_HOST"]));
    let gw_pwd = cli.gw_pwd.clone().or_else(|| env.opt(&["PW_GW_PWD"]));
    let password = cli.password.clone().or_else(|| env.opt(&["PW_PASSWORD"]));
    let rsa_key_path = env.opt(&["PW_RSA_KEY_PATH"]);
    let wifi_host = env.opt(&["PW_WIFI_HOST"]);

    let defaults = GatewayDefaults {
        poll_interval: Duration::from_secs(cache_expire as u64),
        timeout: Duration::from_secs(timeout as u64),
        query_set,
        email: server.email.clone(),
        auth_mode: if server.auth_mode == "token" {
            AuthMode::Token
        } else {
            AuthMode::Cookie
        },
        cloud: cloud.clone(),
        auth_path: server.auth_path.clone(),
    };
    // The proxy's cloud credentials (PW_AUTH_PATH, PW_EMAIL unless it is the placeholder).
    let env_email = env.opt(&["PW_EMAIL"]).filter(|e| e != "email@example.com");
    let env_cloud = cloud.auth(&server.auth_path, env_email, siteid);
    let mut gateways = Vec::new();
    if let (Some(doc), Some(path)) = (&file, &file_path) {
        if let Some(list) = doc.get("gateways") {
            gateways.extend(file::gateways(list, path, "gateways", &defaults)?);
        }
    }
    if let Some(text) = env.opt(&["PW_GATEWAYS"]) {
        let list = crate::json::parse(&text)
            .map_err(|e| ConfigError::new("PW_GATEWAYS", format!("is not a JSON list: {e}")))?;
        gateways.extend(file::gateways(&list, "PW_GATEWAYS", "", &defaults)?);
    }
    if !cli.demo {
        if let Some(host) = host {
            validate_host("PW_HOST", &host)?;
            let mode = match &rsa_key_path {
                Some(path) => v1r_mode(
                    V1rKeys {
                        key: "PW_RSA_KEY_PATH",
                        wifi: "PW_WIFI_HOST",
                        password: "PW_PASSWORD",
                        gw_pwd: "PW_GW_PWD",
                    },
                    path,
                    wifi_host.as_deref(),
                    gw_pwd.is_some(),
                    password.is_some(),
                )?,
                None => {
                    Mode::select(&host, gw_pwd.is_some(), password.is_some()).ok_or_else(|| {
                        ConfigError::new(
                            "PW_GW_PWD",
                            "is required with PW_HOST: the gateway password from the QR sticker \
                             (TEDAPI), or PW_PASSWORD, the customer password (local mode)",
                        )
                    })?
                }
            };
            gateways.insert(
                0,
                GatewayConfig {
                    id: "default".into(),
                    name: env.string(&["PW_NAME"], "Powerwall"),
                    host,
                    gw_pwd,
                    password,
                    poll_interval: defaults.poll_interval,
                    timeout: defaults.timeout,
                    tls_fingerprint,
                    query_set,
                    simulated: false,
                    mode,
                    email: defaults.email.clone(),
                    auth_mode: defaults.auth_mode,
                    cloud: Some(env_cloud),
                    rsa_key_path: rsa_key_path
                        .filter(|_| matches!(mode, Mode::V1r | Mode::V1rWifi)),
                    wifi_host: wifi_host.filter(|_| mode == Mode::V1rWifi),
                },
            );
        } else if gateways.is_empty() && cloud_files_exist(&env_cloud) {
            // The proxy's rule: no PW_HOST means cloud mode (FleetAPI when its file exists).
            gateways.push(GatewayConfig {
                id: "default".into(),
                name: env.string(&["PW_NAME"], "Powerwall"),
                host: String::new(),
                gw_pwd: None,
                password: None,
                poll_interval: defaults.poll_interval,
                timeout: defaults.timeout,
                tls_fingerprint: None,
                query_set,
                simulated: false,
                mode: if env_cloud.fleet {
                    Mode::FleetApi
                } else {
                    Mode::Cloud
                },
                email: defaults.email.clone(),
                auth_mode: defaults.auth_mode,
                cloud: Some(env_cloud),
                rsa_key_path: None,
                wifi_host: None,
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for g in &gateways {
        if !seen.insert(g.id.clone()) {
            return Err(ConfigError::new(
                format!("gateway '{}'", g.id),
                "id is used by more than one gateway (ids must be unique)",
            ));
        }
    }
    let default_gateway = match env.opt(&["PW_DEFAULT_GATEWAY"]) {
        None => 0,
        Some(id) => gateways.iter().position(|g| g.id == id).ok_or_else(|| {
            ConfigError::new(
                "PW_DEFAULT_GATEWAY",
                format!(
                    "'{id}' is not a configured gateway (ids: {})",
                    gateways
                        .iter()
                        .map(|g| g.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
    };
    Ok(Config {
        server,
        gateways,
        demo: cli.demo,
        default_gateway,
        mqtt: mqtt::load(&env)?,
    })
}

/// True when `auth` points at a token file.
fn cloud_files_exist(auth: &CloudAuth) -> bool {
    let dir = crate::cloud::tokens::dir(&auth.authpath);
    crate::cloud::tokens::has_fleet(&dir) || crate::cloud::tokens::has_owner(&dir)
}

/// The names a v1r error should carry (environment variables or file keys).
pub(crate) struct V1rKeys<'a> {
    pub key: &'a str,
    pub wifi: &'a str,
    pub password: &'a str,
    pub gw_pwd: &'a str,
}

/// The v1r mode for a configured RSA key (spec §6): the key must load (a PEM private key as
/// pypowerwall writes it, RSA-4096), a customer password must be at hand (`password`, or the
/// last 5 characters of `gw_pwd`), and the Wi-Fi fallback needs both `wifi_host` and `gw_pwd`.
pub(crate) fn v1r_mode(
    names: V1rKeys,
    key_path: &str,
    wifi_host: Option<&str>,
    gw_pwd: bool,
    password: bool,
) -> Result<Mode, ConfigError> {
    if !cfg!(feature = "v1r") {
        return Err(ConfigError::new(
            names.key,
            "this build has no v1r support (built without the cargo feature `v1r`)",
        ));
    }
    #[cfg(feature = "v1r")]
    crate::gateway::v1r::RsaKey::load(key_path).map_err(|e| ConfigError::new(names.key, e))?;
    #[cfg(not(feature = "v1r"))]
    let _ = key_path;
    if !password && !gw_pwd {
        return Err(ConfigError::new(
            names.password,
            format!(
                "v1r ({}) needs the customer password: {} or {} (its last 5 characters)",
                names.key, names.password, names.gw_pwd
            ),
        ));
    }
    match wifi_host {
        Some(host) => {
            validate_host(names.wifi, host)?;
            if gw_pwd {
                Ok(Mode::V1rWifi)
            } else {
                log::warn!(
                    "{} is set but {} is not: the v1r Wi-Fi fallback needs the gateway password; \
                     running without it",
                    names.wifi,
                    names.gw_pwd
                );
                Ok(Mode::V1r)
            }
        }
        None => Ok(Mode::V1r),
    }
}

/// `host` or `host:port`, as the proxy validates it (an IP or a name, port 1–65535).
pub fn validate_host(key: &str, host: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError::new(key, format!("'{host}' {why}"));
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') => (n, Some(p)),
        _ => (host, None),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
    {
        return Err(bad("is not a host name or IP address"));
    }
    if let Some(p) = port {
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => {}
            _ => return Err(bad("has a port outside 1-65535")),
        }
    }
    Ok(())
}

/// `--help` text.
pub const HELP: &str = "\
pypowerwall-server — serve Tesla Powerwall gateway data (drop-in for the pypowerwall proxy)

USAGE:
    pypowerwall-server [OPTIONS]            serve (configuration from flags and PW_* variables)
    pypowerwall-server --demo               serve simulated data (no Powerwall needed)
    pypowerwall-server sim [SIM OPTIONS]    run the gateway simulator alone
    pypowerwall-server healthcheck [URL]    exit 0 if URL (default http://127.0.0.1:8675/health) answers 2xx

OPTIONS:
    --host HOST[:PORT]   gateway address (PW_HOST)
    --gw-pwd PASSWORD    gateway Wi-Fi password from the QR sticker (PW_GW_PWD)
    --password PASSWORD  customer password, local mode (PW_PASSWORD; alone: tried as the gateway
                         password first, then as the customer password)
    --port PORT          listen port (PW_PORT, default 8675)
    --bind ADDRESS       listen address (PW_BIND_ADDRESS, default all interfaces)
    --config FILE        configuration file (PW_CONFIG)
    --demo               start the built-in simulator and watch it
    --debug              debug logging (PW_DEBUG=yes)
    --version            print the version
    --help               print this help

Every PW_* variable of the pypowerwall proxy is honoured; see README.md.
";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_with(vars: &[(&str, &str)], cli: CliOverrides) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(&|k| map.get(k).cloned(), &cli)
    }

    #[test]
    fn proxy_defaults() {
        let c = load_with(&[], CliOverrides::default()).unwrap();
        assert_eq!(c.server.port, 8675);
        assert_eq!(c.server.bind, "");
        assert_eq!(c.server.style, "clear");
        assert!(c.server.neg_solar);
        assert_eq!(c.server.cache_ttl, 30);
        assert_eq!(c.server.base_url, "/");
        assert!(c.gateways.is_empty());
    }

    #[test]
    fn single_gateway_from_env_and_cli_wins() {
        let c = load_with(
            &[
                ("PW_HOST", "192.168.91.1"),
                ("PW_GW_PWD", "ABCDEFGHIJ"),
                ("PW_PORT", "9000"),
            ],
            CliOverrides {
                port: Some("9100".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.server.port, 9100);
        assert_eq!(c.gateways.len(), 1);
        assert_eq!(c.gateways[0].id, "default");
        assert_eq!(c.gateways[0].gw_pwd.as_deref(), Some("ABCDEFGHIJ"));
        assert_eq!(c.gateways[0].poll_interval, Duration::from_secs(5));
    }

    #[test]
    fn mode_follows_the_passwords_given() {
        let c = load_with(
            &[("PW_HOST", "10.0.0.2"), ("PW_PASSWORD", "SECRET1234")],
            CliOverrides::default(),
        )
        .unwrap();
        // One password: TEDAPI first, local if TEDAPI refuses it.
        assert_eq!(c.gateways[0].mode, Mode::Auto);
        assert_eq!(c.gateways[0].password.as_deref(), Some("SECRET1234"));
        assert_eq!(c.gateways[0].gw_pwd, None);
        let both = |host: &str| {
            load_with(
                &[
                    ("PW_HOST", host),
                    ("PW_PASSWORD", "pw"),
                    ("PW_GW_PWD", "ABCDEFGHIJ"),
                    ("PW_AUTH_MODE", "token"),
                    ("PW_EMAIL", "me@example.com"),
                ],
                CliOverrides::default(),
            )
            .unwrap()
            .gateways
            .remove(0)
        };
        let g = both("10.0.0.2");
        assert_eq!(g.mode, Mode::Local);
        assert_eq!(g.auth_mode, AuthMode::Token);
        assert_eq!(g.email, "me@example.com");
        assert_eq!(both("192.168.91.1").mode, Mode::Hybrid);
        assert_eq!(both("192.168.91.1:443").mode, Mode::Hybrid);
        let g = load_with(
            &[("PW_HOST", "10.0.0.2"), ("PW_GW_PWD", "ABCDEFGHIJ")],
            CliOverrides::default(),
        )
        .unwrap();
        assert_eq!(g.gateways[0].mode, Mode::Tedapi);
        assert_eq!(g.gateways[0].auth_mode, AuthMode::Cookie);
        assert_eq!(Mode::Local.proxy_labels().0, "Local");
        assert_eq!(Mode::parse("hybrid"), Some(Mode::Hybrid));
    }

    #[test]
    fn file_mode_key() {
        let c = with_file(
            "modes.yaml",
            "gateways:\n  - {id: a, host: 10.0.0.1, password: x, mode: tedapi}\n  - {id: b, host: 10.0.0.2, password: y, mode: local}\n  - {id: c, host: 10.0.0.3, password: z}\n",
            &[],
        )
        .unwrap();
        let g = &c.gateways;
        assert_eq!(
            (g[0].mode, g[0].gw_pwd.as_deref(), g[0].password.as_deref()),
            (Mode::Tedapi, Some("x"), None)
        );
        assert_eq!(
            (g[1].mode, g[1].password.as_deref()),
            (Mode::Local, Some("y"))
        );
        assert_eq!(g[2].mode, Mode::Auto);
        for (text, key) in [
            (
                "gateways:\n  - {id: a, host: 10.0.0.1, gw_pwd: x, mode: local}\n",
                "gateway 'a' password",
            ),
            (
                "gateways:\n  - {id: a, host: 10.0.0.1, gw_pwd: x, mode: cloud}\n",
                "gateway 'a' mode",
            ),
        ] {
            let e = with_file("badmode.yaml", text, &[]).unwrap_err();
            assert!(e.key.contains(key), "{e}");
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        for (vars, key) in [
            (vec![("PW_PORT", "eighty")], "PW_PORT"),
            (vec![("PW_PORT", "70000")], "PW_PORT"),
            (vec![("PW_STYLE", "neon")], "PW_STYLE"),
            (vec![("PW_HTTPS", "maybe")], "PW_HTTPS"),
            (vec![("PW_CACHE_EXPIRE", "x")], "PW_CACHE_EXPIRE"),
            (
                vec![("PW_TEDAPI_API_VERSION", "V1")],
                "PW_TEDAPI_API_VERSION",
            ),
            (
                vec![("PW_HOST", "bad host!"), ("PW_GW_PWD", "x")],
                "PW_HOST",
            ),
            (
                vec![("PW_HOST", "10.0.0.1:0"), ("PW_GW_PWD", "x")],
                "PW_HOST",
            ),
            (vec![("PW_HOST", "10.0.0.1")], "PW_GW_PWD"),
            (vec![("PW_TLS_FINGERPRINT", "abc")], "PW_TLS_FINGERPRINT"),
        ] {
            let err = load_with(&vars, CliOverrides::default()).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
        let err = load_with(
            &[],
            CliOverrides {
                port: Some("x".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.key, "--port");
    }

    #[test]
    fn style_accepts_js_suffix_and_base_url_is_normalised() {
        let c = load_with(
            &[("PW_STYLE", "grafana-dark.js"), ("PROXY_BASE_URL", "pp")],
            CliOverrides::default(),
        )
        .unwrap();
        assert_eq!(c.server.style, "grafana-dark");
        assert_eq!(c.server.base_url, "/pp/");
    }

    fn write_temp(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("ppws-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn with_file(name: &str, text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let path = write_temp(name, text);
        load_with(
            vars,
            CliOverrides {
                config: Some(path),
                ..Default::default()
            },
        )
    }

    #[test]
    fn example_yaml_loads_and_env_overrides_the_file() {
        let text = include_str!("../../deploy/gateways.yaml");
        let c = with_file("example.yaml", text, &[("PW_PORT", "9999")]).unwrap();
        assert_eq!(c.server.port, 9999);
        assert_eq!(c.gateways.len(), 2);
        assert_eq!(c.gateways[0].id, "house");
        assert_eq!(c.gateways[1].poll_interval, Duration::from_secs(10));
        assert_eq!(c.gateways[0].poll_interval, Duration::from_secs(5));
        assert_eq!(c.default_gateway, 0);
        let c = with_file("example2.yaml", text, &[]).unwrap();
        assert_eq!(c.server.port, 8675);
    }

    #[test]
    fn json_file_and_pw_gateways() {
        let c = with_file(
            "c.json",
            r#"{"server": {"port": 9001, "default_gateway": "b"}, "gateways": [{"id": "a", "host": "10.0.0.1", "gw_pwd": "x"}]}"#,
            &[("PW_GATEWAYS", r#"[{"id": "b", "host": "10.0.0.2:8443", "password": "y"}]"#)],
        )
        .unwrap();
        assert_eq!(c.server.port, 9001);
        let ids: Vec<_> = c.gateways.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(c.default_gateway, 1);
        assert_eq!(c.gateways[1].password.as_deref(), Some("y"));
        assert_eq!(c.gateways[1].mode, Mode::Auto);
    }

    #[test]
    fn file_errors_name_the_gateway_and_key() {
        let cases = [
            ("gateways:\n  - id: a\n    host: 10.0.0.1\n    gw_pwd: x\n    colour: red\n", "gateway 'a' colour"),
            ("gateways:\n  - id: a\n    gw_pwd: x\n", "gateway 'a' host"),
            ("gateways:\n  - id: a\n    host: 10.0.0.1\n", "gateway 'a' gw_pwd"),
            ("gateways:\n  - id: a b\n    host: 10.0.0.1\n    gw_pwd: x\n", "gateway 'a b' id"),
            ("gateways:\n  - host: 10.0.0.1\n", "gateways[0].id"),
            ("gateways:\n  - id: a\n    host: 10.0.0.1\n    gw_pwd: x\n    poll_interval: fast\n", "gateway 'a' poll_interval"),
            ("gateways:\n  - id: a\n    host: 10.0.0.1\n    gw_pwd: x\n    cloud_mode: maybe\n", "gateway 'a' cloud_mode"),
            ("gateways:\n  - id: a\n    cloud_mode: true\n    siteid: abc\n", "gateway 'a' siteid"),
            ("server:\n  prot: 1\n", "server.prot"),
            ("server:\n  port: http\n", "server.port"),
            ("servers: {}\n", "servers"),
            ("gateways: [\n", "bad.yaml"),
        ];
        for (text, key) in cases {
            let err = with_file("bad.yaml", text, &[]).unwrap_err();
            assert!(err.key.contains(key), "{text:?}: got {err}");
        }
        let dup = "gateways:\n  - {id: a, host: 10.0.0.1, gw_pwd: x}\n  - {id: a, host: 10.0.0.2, gw_pwd: y}\n";
        let err = with_file("dup.yaml", dup, &[]).unwrap_err();
        assert!(err.message.contains("unique"), "{err}");
        let err = load_with(&[("PW_GATEWAYS", "{")], CliOverrides::default()).unwrap_err();
        assert_eq!(err.key, "PW_GATEWAYS");
        let err =
            load_with(&[("PW_DEFAULT_GATEWAY", "nope")], CliOverrides::default()).unwrap_err();
        assert_eq!(err.key, "PW_DEFAULT_GATEWAY");
    }

    #[test]
    fn masks_secrets() {
        assert_eq!(mask("ABCDEFGHIJ"), "**********");
    }
}
