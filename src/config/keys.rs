//! The configuration-key table: every environment variable, flag and `server:` file key, once.
//!
//! ripgrep's flag table is the model: [`KEYS`] is the one list, and everything else reads it —
//! the environment parser (`env.rs`), the configuration file's `server:` keys (`file.rs`),
//! `--help` ([`help`]), the `config` section of `/stats` ([`Key::stats`], in the proxy's order,
//! which is the order of this table), and the test that checks the README table against it.
//! Adding a key is one entry here (plus the line in `env.rs` that gives it a meaning).

use crate::json::Value;

use super::Public;

/// Where the README documents a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// A row of the configuration table (`| Variable (flag) | Default | Meaning |`).
    Table,
    /// The "also accepted for compatibility" list under it.
    Compat,
    /// A command-line switch only (`--help`).
    Cli,
    /// A row of the MQTT table (`| Variable (file key `server.mqtt_…`) | Default | Meaning |`).
    Mqtt,
}

/// A command-line flag.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// Position in `--help`.
    pub order: u8,
    pub name: &'static str,
    /// The value's placeholder; `None` for a switch.
    pub value: Option<&'static str>,
    /// The `--help` line.
    pub help: &'static str,
}

/// One configuration key.
pub struct Key {
    /// Environment variables, the proxy's name first; the first one set wins.
    pub env: &'static [&'static str],
    /// `server:` key of the configuration file.
    pub file: Option<&'static str>,
    /// Command-line flag (wins over the environment).
    pub flag: Option<Flag>,
    /// The default as the README shows it.
    pub default: &'static str,
    /// The README's meaning column.
    pub doc: &'static str,
    pub readme: Doc,
    /// Its value in `/stats` `config` (the proxy's keys), from the configuration without secrets.
    pub stats: Option<fn(&Public) -> Value>,
}

impl Key {
    /// The name errors and `/stats` use: the first environment variable, else the flag.
    pub fn name(&self) -> &'static str {
        match (self.env.first(), self.flag) {
            (Some(e), _) => e,
            (None, Some(f)) => f.name,
            (None, None) => "",
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.name())
    }
}

pub(super) const fn key(
    env: &'static [&'static str],
    default: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        env,
        file: None,
        flag: None,
        default,
        doc,
        readme: Doc::Table,
        stats: None,
    }
}

impl Key {
    pub(super) const fn file(mut self, k: &'static str) -> Key {
        self.file = Some(k);
        self
    }
    const fn flag(
        mut self,
        order: u8,
        name: &'static str,
        value: &'static str,
        help: &'static str,
    ) -> Key {
        self.flag = Some(Flag {
            order,
            name,
            value: Some(value),
            help,
        });
        self
    }
    const fn switch(mut self, order: u8, name: &'static str, help: &'static str) -> Key {
        self.flag = Some(Flag {
            order,
            name,
            value: None,
            help,
        });
        self
    }
    pub(super) const fn compat(mut self) -> Key {
        self.readme = Doc::Compat;
        self
    }
    pub(super) const fn mqtt(mut self) -> Key {
        self.readme = Doc::Mqtt;
        self
    }
    pub(super) const fn cli(mut self) -> Key {
        self.readme = Doc::Cli;
        self
    }
    pub(super) const fn stats(mut self, f: fn(&Public) -> Value) -> Key {
        self.stats = Some(f);
        self
    }
}

fn gw(c: &Public) -> Option<&super::PublicGateway> {
    c.gateways.get(c.default_gateway)
}

fn opt(v: Option<&str>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

pub const BIND: Key = key(
    &["PW_BIND_ADDRESS", "SERVER_HOST"],
    "all interfaces",
    "Listen address",
)
.file("host")
.flag(5, "--bind", "ADDRESS", "listen address")
.stats(|c| c.server.bind.as_str().into());
pub const PASSWORD: Key = key(
    &["PW_PASSWORD"],
    "—",
    "Customer password (local mode); alone, it is tried as the gateway password first",
)
.flag(
    3,
    "--password",
    "PASSWORD",
    "customer password, local mode; alone, tried as the gateway password first",
)
.stats(|c| opt(gw(c).and_then(|g| g.password_mask.as_deref())));
pub const EMAIL: Key = key(&["PW_EMAIL"], "`email@example.com`", "E-mail sent with the local login; in cloud mode the Tesla account in `.pypowerwall.auth` (default: the file's first)")
    // Personal data: only the proxy's placeholder is shown as it is.
    .stats(|c| match c.server.email.as_str() {
        super::EMAIL_PLACEHOLDER => super::EMAIL_PLACEHOLDER.into(),
        _ => super::MASK.into(),
    });
pub const HOST: Key = key(&["PW_HOST"], "—", "Gateway `host[:port]`")
    .flag(1, "--host", "HOST[:PORT]", "gateway address")
    .stats(|c| opt(gw(c).map(|g| g.host.as_str())));
pub const TIMEZONE: Key = key(
    &["PW_TIMEZONE"],
    "the gateway's `installation_time_zone`, else `UTC`",
    "IANA time zone whose midnights end the history's days (rules embedded; `/stats` shows `America/Los_Angeles` when unset, as the proxy does)",
)
.file("timezone")
.stats(|c| c.server.timezone.as_str().into());
pub const DEBUG: Key = key(&["PW_DEBUG"], "`no`", "Debug logging")
    .file("debug")
    .switch(8, "--debug", "debug logging")
    .stats(|c| c.server.debug.into());
pub const CACHE_EXPIRE: Key = key(&["PW_CACHE_EXPIRE"], "`5`", "Poll interval (s)")
    .file("poll_interval")
    .stats(|c| Value::Int(gw(c).map(|g| g.poll_interval.as_secs() as i64).unwrap_or(5)));
pub const BROWSER_CACHE: Key = key(&["PW_BROWSER_CACHE"], "`0`", "Shown in `/stats`")
    .file("browser_cache")
    .compat()
    .stats(|c| Value::Int(c.server.browser_cache as i64));
pub const TIMEOUT: Key = key(&["PW_TIMEOUT"], "`5`", "Gateway request time-out (s)")
    .file("timeout")
    .stats(|c| Value::Int(gw(c).map(|g| g.timeout.as_secs() as i64).unwrap_or(5)));
pub const POOL_MAXSIZE: Key = key(&["PW_POOL_MAXSIZE"], "`15`", "Shown in `/stats`")
    .compat()
    .stats(|c| Value::Int(c.server.pool_maxsize));
pub const HTTPS: Key = key(&["PW_HTTPS"], "`no`", "`yes` serves TLS (`PW_TLS_CERT`/`PW_TLS_KEY`, else a fresh self-signed cert); `http` marks cookies Secure")
    .file("https")
    .stats(|c| c.server.https.as_str().into());
pub const PORT: Key = key(
    &["PW_PORT", "SERVER_PORT"],
    "`8675`",
    "Listen port (0 picks a free port; the log says which)",
)
.file("port")
.flag(4, "--port", "PORT", "listen port")
.stats(|c| Value::Int(i64::from(c.server.port)));
pub const STYLE: Key = key(
    &["PW_STYLE"],
    "`clear`",
    "Power-flow style: clear, black, white, grafana, grafana-dark, dakboard, solar",
)
.file("style")
.stats(|c| format!("{}.js", c.server.style).into());
pub const SITEID: Key = key(
    &["PW_SITEID"],
    "site file, else first site",
    "Energy site id for cloud mode and control",
)
.stats(|c| opt(c.server.siteid.as_deref()));
pub const AUTH_PATH: Key = key(&["PW_AUTH_PATH"], "`\"\"` (working dir)", "Directory of pypowerwall's token files `.pypowerwall.auth`, `.pypowerwall.site`, `.pypowerwall.fleetapi`")
    .file("auth_path")
    .stats(|c| c.server.auth_path.as_str().into());
pub const AUTH_MODE: Key = key(
    &["PW_AUTH_MODE"],
    "`cookie`",
    "Local login sent as the `AuthCookie`/`UserRecord` cookies or (`token`) a Bearer token",
)
.stats(|c| c.server.auth_mode.as_str().into());
pub const CACHE_FILE: Key = key(
    &["PW_CACHE_FILE"],
    "`.powerwall`",
    "Shown in `/stats` (the local session is kept in memory, never written to disk)",
)
.compat()
.stats(|c| c.server.cache_file.as_str().into());
pub const CONTROL_SECRET: Key = key(
    &["PW_CONTROL_SECRET"],
    "—",
    "Enables control writes (the proxy's switch); the form `token` and also a valid bearer token",
)
.file("control_secret")
.stats(|c| opt(c.control_secret_mask.as_deref()));
pub const GW_PWD: Key = key(&["PW_GW_PWD"], "—", "Gateway password (TEDAPI)")
    .flag(
        2,
        "--gw-pwd",
        "PASSWORD",
        "gateway Wi-Fi password from the QR sticker",
    )
    .stats(|c| opt(gw(c).and_then(|g| g.gw_pwd_mask.as_deref())));
pub const RSA_KEY_PATH: Key = key(&["PW_RSA_KEY_PATH"], "—", "v1r: the registered RSA-4096 private key (PEM, PKCS#1 `RSA PRIVATE KEY` as pypowerwall writes it; PKCS#8 also read)")
    .stats(|c| opt(gw(c).and_then(|g| g.rsa_key_path.as_deref())));
pub const WIFI_HOST: Key = key(
    &["PW_WIFI_HOST"],
    "—",
    "v1r: the gateway's Wi-Fi TEDAPI host (needs `PW_GW_PWD`) for followers and LAN failover",
)
.stats(|c| opt(gw(c).and_then(|g| g.wifi_host.as_deref())));
pub const WIFI_V1R_FALLBACK: Key = key(
    &["PW_WIFI_V1R_FALLBACK"],
    "`no`",
    "v1r: `yes` sends control writes signed (v1r) to `PW_WIFI_HOST` when the LAN cannot take them, before the cloud (pypowerwall 0.22.2's opt-in `wifi_v1r_fallback`)",
)
.stats(|c| gw(c).is_some_and(|g| g.wifi_v1r_fallback).into());
pub const NEG_SOLAR: Key = key(
    &["PW_NEG_SOLAR"],
    "`yes`",
    "`no` clamps negative solar to 0 and adds it to load",
)
.file("neg_solar")
.stats(|c| c.server.neg_solar.into());
pub const SITE_ZERO_THRESHOLD: Key = key(
    &["PW_SITE_ZERO_THRESHOLD"],
    "`0`",
    "Site power with \\|W\\| ≤ N is reported as 0",
)
.file("site_zero_threshold")
.stats(|c| Value::Int(c.server.site_zero_threshold));
pub const SUPPRESS_NETWORK_ERRORS: Key =
    key(&["PW_SUPPRESS_NETWORK_ERRORS"], "`no`", "Shown in `/stats`")
        .compat()
        .stats(|c| c.server.legacy_flags.suppress_network_errors.into());
pub const NETWORK_ERROR_RATE_LIMIT: Key =
    key(&["PW_NETWORK_ERROR_RATE_LIMIT"], "`5`", "Shown in `/stats`")
        .compat()
        .stats(|c| Value::Int(c.server.legacy_flags.network_error_rate_limit));
pub const FAIL_FAST: Key = key(&["PW_FAIL_FAST"], "`no`", "Shown in `/stats`")
    .compat()
    .stats(|c| c.server.legacy_flags.fail_fast.into());
pub const GRACEFUL_DEGRADATION: Key =
    key(&["PW_GRACEFUL_DEGRADATION"], "`yes`", "Shown in `/stats`")
        .compat()
        .stats(|c| c.server.legacy_flags.graceful_degradation.into());
pub const HEALTH_CHECK: Key = key(&["PW_HEALTH_CHECK"], "`yes`", "Shown in `/stats`")
    .compat()
    .stats(|c| c.server.legacy_flags.health_check.into());
pub const CACHE_TTL: Key = key(
    &["PW_CACHE_TTL"],
    "`30`",
    "How long last-good data is served after a failed poll (s)",
)
.file("cache_ttl")
.stats(|c| Value::Int(c.server.cache_ttl as i64));
pub const TEDAPI_RECOVERY: Key = key(&["PW_TEDAPI_RECOVERY"], "`yes`", "Shown in `/stats`")
    .compat()
    .stats(|c| c.server.legacy_flags.tedapi_recovery.into());
pub const TEDAPI_PROBE_INTERVAL: Key =
    key(&["PW_TEDAPI_PROBE_INTERVAL"], "`30`", "Shown in `/stats`")
        .compat()
        .stats(|c| Value::Int(c.server.legacy_flags.tedapi_probe_interval));
// Ours (not in the proxy's `/stats`).
pub const CONFIG: Key = key(
    &["PW_CONFIG"],
    "—",
    "Configuration file, YAML or JSON (below)",
)
.flag(6, "--config", "FILE", "configuration file");
pub const GATEWAYS: Key = key(&["PW_GATEWAYS"], "—", "Gateways as a JSON list (below)");
pub const NAME: Key = key(
    &["PW_NAME"],
    "`Powerwall`",
    "Name of the single gateway given by `PW_HOST`",
);
pub const DEMO: Key = key(&[], "", "")
    .switch(7, "--demo", "start the built-in simulator and watch it")
    .cli();
pub const TEDAPI_API_VERSION: Key = key(&["PW_TEDAPI_API_VERSION"], "`V2024_06`", "Signed query set (`V2024_06`, `V2026_06`). V2026_06 is the fallback for when Tesla rotates the V2024 signing key: every legacy route gives the same answer, except values its signed queries do not request, which are `null` — PW2 battery temperatures (`/temps`), the gateway uptime (`/api/status` `up_time_seconds`, `start_time`) and the lifetime energy of Meter X/Z in `/vitals` and `/freq`")
    .file("tedapi_api_version");
pub const TLS_FINGERPRINT: Key = key(
    &["PW_TLS_FINGERPRINT"],
    "—",
    "SHA-256 pin of the gateway certificate (`AA:BB:…`); any other certificate is refused",
);
pub const TLS_CERT: Key = key(
    &["PW_TLS_CERT"],
    "—",
    "PEM certificate chain for `PW_HTTPS=yes`",
)
.file("tls_cert");
pub const TLS_KEY: Key =
    key(&["PW_TLS_KEY"], "—", "PEM private key for `PW_HTTPS=yes`").file("tls_key");
pub const PROXY_BASE_URL: Key = key(
    &["PROXY_BASE_URL"],
    "`/`",
    "Path prefix when behind a reverse proxy (prefixed and bare paths both work)",
)
.file("base_url");
pub const WORKERS: Key = key(
    &["PW_WORKERS", "SERVER_WORKERS"],
    "`4`",
    "Requests answered at once (each on its connection's thread)",
)
.file("workers");
pub const IDLE_TIMEOUT: Key = key(
    &["PW_IDLE_TIMEOUT"],
    "`5`",
    "Idle keep-alive connections and slow request headers are cut after this (s)",
)
.file("idle_timeout");
pub const MAX_CONNECTIONS: Key = key(
    &["PW_MAX_CONNECTIONS"],
    "`1024`",
    "Open connections beyond this are refused",
)
.file("max_connections");
pub const DEFAULT_GATEWAY: Key = key(
    &["PW_DEFAULT_GATEWAY"],
    "first",
    "Gateway id the legacy routes serve",
)
.file("default_gateway");
pub const HEALTH_503: Key = key(
    &["PW_HEALTH_503"],
    "`yes`",
    "`/health` answers 503 when no gateway has fresh data (for Docker/Kubernetes probes)",
)
.file("health_503_when_offline");
pub const WS_INTERVAL: Key = key(
    &["PW_WS_INTERVAL"],
    "`1`",
    "Seconds between WebSocket messages",
)
.file("ws_interval");
pub const WS_MAX_CLIENTS: Key = key(
    &["PW_WS_MAX_CLIENTS"],
    "`1000`",
    "WebSocket clients beyond this are refused (503)",
)
.file("ws_max_clients");
pub const CORS_ORIGINS: Key = key(
    &["CORS_ORIGINS"],
    "any",
    "Comma-separated browser origins allowed to open WebSockets",
)
.file("cors_origins");
pub const WWW_DIR: Key = key(
    &["PW_WWW_DIR"],
    "embedded",
    "Serve the web UI from this directory (development)",
)
.file("www_dir");
pub const HISTORY_DIR: Key = key(
    &["PW_HISTORY_DIR"],
    "— (memory only)",
    "Directory of the energy history files, one fixed-size 1 MiB file per gateway (`<id>.pwh`); unset keeps the history in memory",
)
.file("history_dir")
.flag(9, "--history-dir", "DIR", "keep the energy history in DIR");
pub const HISTORY_STEP: Key = key(
    &["PW_HISTORY_STEP"],
    "`60`",
    "Finest history step (s, 1–3600); the 15-step and 60-step archives scale with it",
)
.file("history_step");
pub const HISTORY_FLUSH: Key = key(
    &["PW_HISTORY_FLUSH"],
    "`300`",
    "Seconds between history writes to disk (flash wear), and at SIGTERM/SIGINT",
)
.file("history_flush");
pub const CONTROL_ENABLED: Key = key(
    &["CONTROL_ENABLED"],
    "`no`",
    "Enables control writes (seed design) with `CONTROL_TOKEN`",
)
.file("control_enabled");
pub const CONTROL_TOKEN: Key = key(
    &["CONTROL_TOKEN"],
    "—",
    "The bearer token for control writes; required with `CONTROL_ENABLED=true`",
)
.file("control_token");
pub const ISLANDING_COOLDOWN: Key = key(
    &["PW_ISLANDING_COOLDOWN"],
    "`300`",
    "Seconds after an islanding command (off-grid / reconnect) before the next is accepted (429 until then)",
)
.file("islanding_cooldown");
pub const CLOUD_OWNER_URL: Key = key(
    &["PW_CLOUD_OWNER_URL"],
    "`https://owner-api.teslamotors.com/`",
    "Owner API base URL",
)
.file("cloud_owner_url");
pub const CLOUD_AUTH_URL: Key = key(
    &["PW_CLOUD_AUTH_URL"],
    "the token file's `url` (`https://auth.tesla.com/`)",
    "SSO base URL for token refresh (`.cn` for China)",
)
.file("cloud_auth_url");
pub const FLEETAPI_URL: Key = key(
    &["PW_FLEETAPI_URL"],
    "the file's `AUDIENCE`",
    "FleetAPI base URL (regional host)",
)
.file("fleetapi_url");
pub const CLOUD_CA: Key = key(
    &["PW_CLOUD_CA"],
    "—",
    "PEM file of extra CA certificates trusted for the cloud (a TLS-inspecting proxy, tests)",
)
.file("cloud_ca");

// MQTT publisher (issue 16): its keys live beside their meaning.
pub use super::mqtt::{
    MQTT_CLIENT_ID, MQTT_CONTROLS, MQTT_HA_DISCOVERY, MQTT_HA_PREFIX, MQTT_HOST, MQTT_KEEPALIVE,
    MQTT_PASSWORD, MQTT_PORT, MQTT_QOS, MQTT_RETAIN, MQTT_TLS, MQTT_TLS_CA_CERT, MQTT_TLS_INSECURE,
    MQTT_TOPIC_PREFIX, MQTT_USERNAME,
};

/// Every key. The first block is the proxy's `/stats` `config` section, in its order.
pub static KEYS: &[&Key] = &[
    &BIND,
    &PASSWORD,
    &EMAIL,
    &HOST,
    &TIMEZONE,
    &DEBUG,
    &CACHE_EXPIRE,
    &BROWSER_CACHE,
    &TIMEOUT,
    &POOL_MAXSIZE,
    &HTTPS,
    &PORT,
    &STYLE,
    &SITEID,
    &AUTH_PATH,
    &AUTH_MODE,
    &CACHE_FILE,
    &CONTROL_SECRET,
    &GW_PWD,
    &RSA_KEY_PATH,
    &WIFI_HOST,
    &WIFI_V1R_FALLBACK,
    &NEG_SOLAR,
    &SITE_ZERO_THRESHOLD,
    &SUPPRESS_NETWORK_ERRORS,
    &NETWORK_ERROR_RATE_LIMIT,
    &FAIL_FAST,
    &GRACEFUL_DEGRADATION,
    &HEALTH_CHECK,
    &CACHE_TTL,
    &TEDAPI_RECOVERY,
    &TEDAPI_PROBE_INTERVAL,
    // Ours.
    &CONFIG,
    &GATEWAYS,
    &NAME,
    &DEMO,
    &TEDAPI_API_VERSION,
    &TLS_FINGERPRINT,
    &TLS_CERT,
    &TLS_KEY,
    &PROXY_BASE_URL,
    &WORKERS,
    &IDLE_TIMEOUT,
    &MAX_CONNECTIONS,
    &DEFAULT_GATEWAY,
    &HEALTH_503,
    &WS_INTERVAL,
    &WS_MAX_CLIENTS,
    &CORS_ORIGINS,
    &WWW_DIR,
    &HISTORY_DIR,
    &HISTORY_STEP,
    &HISTORY_FLUSH,
    &CONTROL_ENABLED,
    &CONTROL_TOKEN,
    &ISLANDING_COOLDOWN,
    &CLOUD_OWNER_URL,
    &CLOUD_AUTH_URL,
    &FLEETAPI_URL,
    &CLOUD_CA,
    &MQTT_HOST,
    &MQTT_PORT,
    &MQTT_USERNAME,
    &MQTT_PASSWORD,
    &MQTT_TLS,
    &MQTT_TLS_CA_CERT,
    &MQTT_TLS_INSECURE,
    &MQTT_TOPIC_PREFIX,
    &MQTT_RETAIN,
    &MQTT_QOS,
    &MQTT_HA_DISCOVERY,
    &MQTT_HA_PREFIX,
    &MQTT_CLIENT_ID,
    &MQTT_KEEPALIVE,
    &MQTT_CONTROLS,
];

/// The key of a `server:` file key.
pub fn by_file_key(k: &str) -> Option<&'static Key> {
    KEYS.iter().copied().find(|key| key.file == Some(k))
}

/// `/stats` `config`: the proxy's keys, in its order.
pub fn stats(c: &Public) -> crate::json::Map {
    let mut m = crate::json::Map::new();
    for k in KEYS {
        if let Some(f) = k.stats {
            m.insert(k.name(), f(c));
        }
    }
    m
}

/// `--help` text: usage, then one line per flag of [`KEYS`].
pub fn help() -> String {
    let mut out = String::from(
        "pypowerwall-server — serve Tesla Powerwall gateway data (drop-in for the pypowerwall proxy)

USAGE:
    pypowerwall-server [OPTIONS]            serve (configuration from flags and PW_* variables)
    pypowerwall-server --demo               serve simulated data (no Powerwall needed)
    pypowerwall-server setup [--cn] [--redirect-url URL] [--site ID] [--email EMAIL]
                                            log in to Tesla (Owner API) and write the token files
                                            into PW_AUTH_PATH (alias: --setup)
    pypowerwall-server sim [SIM OPTIONS]    run the gateway simulator alone
    pypowerwall-server healthcheck [URL]    exit 0 if URL (default http://127.0.0.1:8675/health) answers 2xx

OPTIONS:
",
    );
    let mut flagged: Vec<(&Key, Flag)> = KEYS
        .iter()
        .filter_map(|k| k.flag.map(|f| (*k, f)))
        .collect();
    flagged.sort_by_key(|(_, f)| f.order);
    for (k, f) in flagged {
        let head = match f.value {
            Some(v) => format!("{} {v}", f.name),
            None => f.name.to_string(),
        };
        let tail = match (k.env.first(), k.default) {
            (Some(e), "—") | (Some(e), "") => format!(" ({e})"),
            (Some(e), d) => format!(" ({e}, default {})", d.trim_matches('`')),
            (None, _) => String::new(),
        };
        out.push_str(&format!("    {head:<20} {}{tail}\n", f.help));
    }
    out.push_str(
        "    --version            print the version
    --help               print this help

Every PW_* variable of the pypowerwall proxy is honoured; see README.md.
",
    );
    out
}

/// The README row of a table key.
pub fn readme_row(k: &Key) -> String {
    let mut name = k
        .env
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(" / ");
    if let Some(f) = k.flag {
        name.push_str(&format!(" (`{}`)", f.name));
    }
    format!("| {name} | {} | {} |", k.default, k.doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_orders_are_unique() {
        let mut orders: Vec<u8> = KEYS
            .iter()
            .filter_map(|k| k.flag.map(|f| f.order))
            .collect();
        let n = orders.len();
        orders.sort_unstable();
        orders.dedup();
        assert_eq!(orders.len(), n, "two flags share a --help position");
    }

    #[test]
    fn names_flags_and_file_keys_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in KEYS {
            for n in k.env.iter().copied().chain(k.flag.map(|f| f.name)) {
                assert!(seen.insert(n), "{n} is listed twice");
            }
            if let Some(f) = k.file {
                assert!(seen.insert(f), "file key {f} is listed twice");
            }
            assert!(!k.name().is_empty());
        }
    }

    #[test]
    fn every_key_is_documented() {
        for k in KEYS {
            match k.readme {
                Doc::Cli => assert!(k.flag.is_some(), "{k:?}"),
                _ => assert!(!k.doc.is_empty() && !k.default.is_empty(), "{k:?}"),
            }
        }
    }

    /// The README's configuration table is this table: same rows, same text.
    #[test]
    fn readme_table_matches() {
        let readme = include_str!("../../README.md");
        let rows: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| Variable (flag) | Default | Meaning |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let want: Vec<String> = KEYS
            .iter()
            .filter(|k| k.readme == Doc::Table)
            .map(|k| readme_row(k))
            .collect();
        for w in &want {
            assert!(rows.contains(&w.as_str()), "README lacks the row:\n{w}");
        }
        for r in &rows {
            assert!(want.iter().any(|w| w == r), "README row not in KEYS:\n{r}");
        }
        let mqtt_rows: Vec<&str> = readme
            .lines()
            .skip_while(|l| {
                !l.starts_with("| Variable (file key `server.mqtt_…`) | Default | Meaning |")
            })
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let mqtt: Vec<String> = KEYS
            .iter()
            .filter(|k| k.readme == Doc::Mqtt)
            .map(|k| readme_row(k))
            .collect();
        assert_eq!(
            mqtt_rows, mqtt,
            "the README's MQTT table is not the MQTT keys of KEYS"
        );
        let compat = readme
            .lines()
            .skip_while(|l| !l.starts_with("Also accepted for compatibility"))
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        for k in KEYS.iter().filter(|k| k.readme == Doc::Compat) {
            assert!(
                compat.contains(&format!("`{}`", k.name())),
                "{k:?} not in the README's compatibility list"
            );
        }
    }

    #[test]
    fn help_lists_every_flag() {
        let h = help();
        for k in KEYS {
            if let Some(f) = k.flag {
                assert!(h.contains(f.name), "{}", f.name);
            }
        }
        assert!(
            h.contains("--port PORT          listen port (PW_PORT, default 8675)"),
            "{h}"
        );
    }
}
