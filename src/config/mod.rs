//! Configuration: the legacy proxy's environment variables, our own names, and CLI flags.
//!
//! Everything is read once at start-up into plain structs; nothing reads the environment later.
//! Precedence is CLI > environment > configuration file > defaults. Every key, its flag, file
//! key, default and documentation is one entry of [`keys::KEYS`] (ripgrep's flag table is the
//! model): the environment parser, the file's `server:` keys, `--help`, `/stats` and the README
//! check all read it. A value that does not parse stops start-up with a [`ConfigError`] naming
//! the variable (or flag) and the accepted values — never a silent default.
//!
//! What the settings *mean* lives here too: which mode a set of passwords selects, host rules,
//! the customer password derived from a gateway password ([`mode`]), the v1r key file (loaded
//! once, [`rsa_key`]), where pypowerwall's token files are ([`token_files`]) and the MQTT
//! publisher's settings ([`mqtt`]).
//!
//! **Invariant:** this module imports nothing above it (no `gateway`, `cloud`, `http`); every
//! password, token and secret is a [`Secret`]; request handlers get a [`Public`] view that holds
//! none of them.

use std::time::Duration;

mod env;
pub mod file;
pub mod keys;
pub mod mode;
pub mod mqtt;
#[cfg(feature = "v1r")]
pub mod rsa_key;
pub mod token_files;

pub use env::load;
pub use keys::{help, Key, KEYS};
pub use mode::{customer_password, hybrid_host, validate_host};

use crate::secret::Secret;
use crate::wire::tls::Fingerprint;

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

/// Server-wide settings (one listener, shared by every gateway). Holds no secret: the control
/// tokens live in [`ControlSettings`].
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
    /// The energy history (`PW_HISTORY_*`, `PW_TIMEZONE`).
    pub history: HistorySettings,
}

/// Where and how finely the energy history is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySettings {
    /// `PW_HISTORY_DIR`: `None` keeps the history in memory only.
    pub dir: Option<String>,
    /// `PW_HISTORY_STEP` (s).
    pub step: u32,
    /// `PW_HISTORY_FLUSH` (s).
    pub flush: Duration,
    /// `PW_TIMEZONE` when set (checked to be a known IANA name); else each gateway's own zone.
    pub timezone: Option<String>,
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

/// One gateway to watch. `Debug` is hand-written: it never shows the passwords.
#[derive(Clone)]
pub struct GatewayConfig {
    /// URL-safe id (`default` for the single-gateway environment).
    pub id: String,
    pub name: String,
    /// `host[:port]`.
    pub host: String,
    /// Gateway (QR sticker) password, for TEDAPI.
    pub gw_pwd: Option<Secret>,
    /// Customer password (local mode).
    pub password: Option<Secret>,
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
    /// v1r: that key, loaded once while the configuration was read.
    #[cfg(feature = "v1r")]
    pub rsa_key: Option<std::sync::Arc<rsa_key::RsaKey>>,
    /// v1r: the gateway's Wi-Fi TEDAPI host for followers and LAN failover (`PW_WIFI_HOST`).
    pub wifi_host: Option<String>,
    /// v1r: control writes go signed to `wifi_host` when the LAN cannot take them
    /// (`PW_WIFI_V1R_FALLBACK`).
    pub wifi_v1r_fallback: bool,
    /// Tesla cloud credentials: the transport in cloud modes, and the control path.
    pub cloud: Option<CloudAuth>,
    /// A solar-only gateway (pypowerwall-server's `type: inverter`): no batteries, and its
    /// solar is left out of the aggregate when Powerwall gateways are configured.
    pub solar_only: bool,
    /// The zone this gateway's history days end in (the file's per-gateway `timezone`, as
    /// pypowerwall-server has it); `None`: `PW_TIMEZONE`, else the gateway's own zone.
    pub timezone: Option<String>,
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
    /// Picks FleetAPI when its file exists in `authpath` (the proxy's auto-select order).
    pub fn detect(mut self) -> CloudAuth {
        let dir = token_files::dir(&self.authpath);
        self.fleet = token_files::has_fleet(&dir);
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
    pub tokens: Vec<Secret>,
    /// `PW_CONTROL_SECRET` alone (shown masked in `/stats`).
    pub secret: Option<Secret>,
    /// `PW_ISLANDING_COOLDOWN`: the wait after an islanding command before the next.
    pub islanding_cooldown: Duration,
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

/// Flags given on the command line (they win over the environment). `main` fills it from the
/// flags of [`KEYS`] ([`CliOverrides::set`]); `Debug` never shows the passwords.
#[derive(Clone, Default)]
pub struct CliOverrides {
    pub host: Option<String>,
    pub gw_pwd: Option<Secret>,
    pub password: Option<Secret>,
    pub port: Option<String>,
    pub bind: Option<String>,
    pub config: Option<String>,
    pub history_dir: Option<String>,
    pub demo: bool,
    pub debug: bool,
}

impl CliOverrides {
    /// Stores the value of a value-taking flag of [`KEYS`]; false for an unknown flag.
    pub fn set(&mut self, flag: &str, value: String) -> bool {
        match flag {
            "--host" => self.host = Some(value),
            "--gw-pwd" => self.gw_pwd = Some(Secret::new(value)),
            "--password" => self.password = Some(Secret::new(value)),
            "--port" => self.port = Some(value),
            "--bind" => self.bind = Some(value),
            "--config" => self.config = Some(value),
            "--history-dir" => self.history_dir = Some(value),
            _ => return false,
        }
        true
    }

    /// Turns on a switch of [`KEYS`]; false for an unknown switch.
    pub fn switch(&mut self, flag: &str) -> bool {
        match flag {
            "--demo" => self.demo = true,
            "--debug" => self.debug = true,
            _ => return false,
        }
        true
    }

    /// The text given with `flag`, if any.
    pub fn get(&self, flag: &str) -> Option<&str> {
        match flag {
            "--host" => self.host.as_deref(),
            "--gw-pwd" => self.gw_pwd.as_ref().map(Secret::expose),
            "--password" => self.password.as_ref().map(Secret::expose),
            "--port" => self.port.as_deref(),
            "--bind" => self.bind.as_deref(),
            "--config" => self.config.as_deref(),
            "--history-dir" => self.history_dir.as_deref(),
            "--debug" => self.debug.then_some("yes"),
            _ => None,
        }
    }
}

impl std::fmt::Debug for CliOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliOverrides")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("bind", &self.bind)
            .field("config", &self.config)
            .field("history_dir", &self.history_dir)
            .field("demo", &self.demo)
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("id", &self.id)
            .field("host", &self.host)
            .field("mode", &self.mode)
            .field("poll_interval", &self.poll_interval)
            .field("query_set", &self.query_set)
            .finish_non_exhaustive()
    }
}

/// How every set secret is shown. Fixed, unlike the proxy's one `*` per character, so a
/// secret's length is not served either.
pub const MASK: &str = "********";

/// Shows a set secret: always [`MASK`], whatever its value.
pub fn mask(secret: &Secret) -> String {
    let _ = secret;
    MASK.to_string()
}

/// The e-mail the proxy uses when `PW_EMAIL` is unset (a placeholder, not anyone's address).
pub const EMAIL_PLACEHOLDER: &str = "email@example.com";

/// Which stored signed-query set to send (`PW_TEDAPI_API_VERSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuerySet {
    #[default]
    V2024_06,
    V2026_06,
}

impl QuerySet {
    pub fn parse(s: &str) -> Option<QuerySet> {
        match s {
            "V2024_06" => Some(QuerySet::V2024_06),
            "V2026_06" => Some(QuerySet::V2026_06),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QuerySet::V2024_06 => "V2024_06",
            QuerySet::V2026_06 => "V2026_06",
        }
    }
}

/// What request handlers may see of the configuration: everything but the secrets, which are
/// replaced by their masks (`/stats`). Built once at start-up ([`Config::public`]).
#[derive(Debug, Clone)]
pub struct Public {
    pub server: ServerSettings,
    pub gateways: Vec<PublicGateway>,
    pub demo: bool,
    pub default_gateway: usize,
    /// `PW_CONTROL_SECRET`, masked.
    pub control_secret_mask: Option<String>,
}

/// A gateway's configuration without its passwords.
#[derive(Debug, Clone)]
pub struct PublicGateway {
    pub id: String,
    pub name: String,
    pub host: String,
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub query_set: QuerySet,
    pub simulated: bool,
    pub mode: Mode,
    pub rsa_key_path: Option<String>,
    pub wifi_host: Option<String>,
    pub wifi_v1r_fallback: bool,
    pub solar_only: bool,
    pub timezone: Option<String>,
    /// The masks of the gateway and customer passwords, when given.
    pub gw_pwd_mask: Option<String>,
    pub password_mask: Option<String>,
}

impl GatewayConfig {
    /// This gateway without its passwords.
    pub fn public(&self) -> PublicGateway {
        PublicGateway {
            id: self.id.clone(),
            name: self.name.clone(),
            host: self.host.clone(),
            poll_interval: self.poll_interval,
            timeout: self.timeout,
            query_set: self.query_set,
            simulated: self.simulated,
            mode: self.mode,
            rsa_key_path: self.rsa_key_path.clone(),
            wifi_host: self.wifi_host.clone(),
            wifi_v1r_fallback: self.wifi_v1r_fallback,
            solar_only: self.solar_only,
            timezone: self.timezone.clone(),
            gw_pwd_mask: self.gw_pwd.as_ref().map(mask),
            password_mask: self.password.as_ref().map(mask),
        }
    }

    /// The customer password of this gateway ([`customer_password`]).
    pub fn customer_password(&self) -> Option<Secret> {
        customer_password(self.password.as_ref(), self.gw_pwd.as_ref())
    }
}

impl Config {
    /// The configuration without secrets, for request handlers.
    pub fn public(&self) -> Public {
        Public {
            server: self.server.clone(),
            gateways: self.gateways.iter().map(GatewayConfig::public).collect(),
            demo: self.demo,
            default_gateway: self.default_gateway,
            control_secret_mask: self.server.control.secret.as_ref().map(mask),
        }
    }
}

#[cfg(test)]
mod tests;
