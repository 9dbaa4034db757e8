//! Reads the environment, the flags and the configuration file's `server:` keys into a
//! [`Config`], one [`Key`] of [`super::KEYS`] at a time.
//!
//! The only code that reads configuration input; it gives each key its meaning and range, and
//! every error names the variable, flag or file key that was wrong.

use std::time::Duration;

use super::keys::{self, Key};
use super::mode::{v1r_mode, V1rKeys};
use super::{
    file, validate_host, AuthMode, CliOverrides, CloudAuth, CloudSettings, Config, ConfigError,
    ControlSettings, GatewayConfig, GatewayDefaults, HistorySettings, HttpsMode, LegacyFlags, Mode,
    QuerySet, ServerSettings, DEFAULT_PORT, EMAIL_PLACEHOLDER, STYLES,
};
use crate::secret::Secret;
use crate::wire::tls;

/// The inputs of one load; `config::mqtt` reads its keys through it too.
pub(super) struct Env<'a> {
    pub(super) get: &'a dyn Fn(&str) -> Option<String>,
    pub(super) cli: &'a CliOverrides,
    /// `server:` settings of the configuration file, as (key, label, value).
    pub(super) file: Vec<(&'static Key, String, String)>,
}

impl Env<'_> {
    /// The value of `key` (even an empty string), with the name to report: the flag, the
    /// variable itself, or the file key it came from. Flag > environment > file.
    pub(super) fn raw(&self, key: &Key) -> Option<(String, String)> {
        if let Some(v) = key.flag.and_then(|f| self.cli.get(f.name)) {
            let name = key.flag.map_or("", |f| f.name);
            return Some((name.to_string(), v.to_string()));
        }
        key.env
            .iter()
            .find_map(|k| (self.get)(k).map(|v| (k.to_string(), v)))
            .or_else(|| {
                self.file
                    .iter()
                    .find(|(k, _, _)| k.name() == key.name())
                    .map(|(_, label, v)| (label.clone(), v.clone()))
            })
    }

    pub(super) fn string(&self, key: &Key, default: &str) -> String {
        self.raw(key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| default.to_string())
    }

    pub(super) fn opt(&self, key: &Key) -> Option<String> {
        self.raw(key).map(|(_, v)| v).filter(|v| !v.is_empty())
    }

    pub(super) fn secret(&self, key: &Key) -> Option<Secret> {
        self.opt(key).map(Secret::new)
    }

    /// The proxy's booleans: `yes` (any case) is true, anything else false.
    pub(super) fn yes(&self, key: &Key, default: bool) -> bool {
        match self.raw(key) {
            Some((_, v)) => v.trim().eq_ignore_ascii_case("yes") || v.trim() == "true",
            None => default,
        }
    }

    pub(super) fn int(
        &self,
        key: &Key,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some((k, v)) => parse_int(&k, &v, min, max),
        }
    }

    pub(super) fn float(
        &self,
        key: &Key,
        default: f64,
        min: f64,
        max: f64,
    ) -> Result<f64, ConfigError> {
        match self.raw(key) {
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

/// Refuses a secret made only of whitespace: it would enable what it guards with a value no one
/// meant to set.
fn refuse_blank_secret(key: &str, value: Option<&Secret>) -> Result<(), ConfigError> {
    match value {
        Some(v) if v.expose().trim().is_empty() => Err(ConfigError::new(
            key,
            "is only whitespace: set a real secret, or leave it unset to keep control disabled",
        )),
        _ => Ok(()),
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
        .or_else(|| keys::CONFIG.env.iter().find_map(|k| get(k)))
        .filter(|p| !p.is_empty());
    let file = match &file_path {
        Some(path) => Some(file::read(path)?),
        None => None,
    };
    let env = Env {
        get,
        cli,
        file: match (&file, &file_path) {
            (Some(doc), Some(path)) => file::server_settings(doc, path)?,
            _ => Vec::new(),
        },
    };

    let port = env.int(&keys::PORT, DEFAULT_PORT as i64, 0, 65535)? as u16;
    let bind = env.string(&keys::BIND, "");
    let https = match env.raw(&keys::HTTPS) {
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
    let style = env.string(&keys::STYLE, "clear");
    let style = style.trim().trim_end_matches(".js").to_string();
    if !STYLES.contains(&style.as_str()) {
        return Err(ConfigError::new(
            "PW_STYLE",
            format!("'{style}' is not one of: {}", STYLES.join(", ")),
        ));
    }
    let mut base_url = env.string(&keys::PROXY_BASE_URL, "/");
    if !base_url.starts_with('/') {
        base_url.insert(0, '/');
    }
    if !base_url.ends_with('/') {
        base_url.push('/');
    }
    let cache_expire = env.int(&keys::CACHE_EXPIRE, 5, 1, 86_400)?;
    let timeout = env.int(&keys::TIMEOUT, 5, 1, 600)?;
    // The proxy treats an unparsable threshold as 0 rather than failing.
    let site_zero_threshold = env
        .opt(&keys::SITE_ZERO_THRESHOLD)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let probe = env
        .opt(&keys::TEDAPI_PROBE_INTERVAL)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|n| n.max(5))
        .unwrap_or(30);
    let query_set = match env.opt(&keys::TEDAPI_API_VERSION) {
        None => QuerySet::V2024_06,
        Some(v) => QuerySet::parse(v.trim()).ok_or_else(|| {
            ConfigError::new(
                "PW_TEDAPI_API_VERSION",
                format!("'{v}' is not one of: V2024_06, V2026_06"),
            )
        })?,
    };
    let tls_fingerprint = match env.opt(&keys::TLS_FINGERPRINT) {
        None => None,
        Some(v) => Some(
            tls::parse_fingerprint(&v).map_err(|m| ConfigError::new("PW_TLS_FINGERPRINT", m))?,
        ),
    };
    let auth_mode = env.string(&keys::AUTH_MODE, "cookie");
    if auth_mode != "cookie" && auth_mode != "token" {
        return Err(ConfigError::new(
            "PW_AUTH_MODE",
            format!("'{auth_mode}' is not one of: cookie, token"),
        ));
    }
    let auth_path = env.string(&keys::AUTH_PATH, "");
    let default_cache_file = if auth_path.is_empty() {
        ".powerwall".to_string()
    } else {
        format!("{}/.powerwall", auth_path.trim_end_matches('/'))
    };
    let idle = env.int(&keys::IDLE_TIMEOUT, 5, 1, 3600)?;
    let control_secret = env.secret(&keys::CONTROL_SECRET);
    refuse_blank_secret("PW_CONTROL_SECRET", control_secret.as_ref())?;
    let control = {
        let mut tokens = Vec::new();
        if env.yes(&keys::CONTROL_ENABLED, false) {
            match env.secret(&keys::CONTROL_TOKEN) {
                Some(t) => {
                    refuse_blank_secret("CONTROL_TOKEN", Some(&t))?;
                    tokens.push(t)
                }
                None => {
                    return Err(ConfigError::new(
                        "CONTROL_TOKEN",
                        "is required with CONTROL_ENABLED=true (the bearer token for writes)",
                    ))
                }
            }
        }
        tokens.extend(control_secret.clone());
        ControlSettings {
            tokens,
            secret: control_secret,
            islanding_cooldown: Duration::from_secs(env.int(
                &keys::ISLANDING_COOLDOWN,
                300,
                0,
                86_400,
            )? as u64),
        }
    };
    let cloud = CloudSettings {
        owner_url: env.opt(&keys::CLOUD_OWNER_URL),
        auth_url: env.opt(&keys::CLOUD_AUTH_URL),
        fleet_url: env.opt(&keys::FLEETAPI_URL),
        ca_file: env.opt(&keys::CLOUD_CA),
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
    let siteid = match env.opt(&keys::SITEID) {
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
        workers: env.int(&keys::WORKERS, 4, 1, 256)? as usize,
        https,
        tls_cert: env.opt(&keys::TLS_CERT),
        tls_key: env.opt(&keys::TLS_KEY),
        base_url,
        style,
        browser_cache: env.int(&keys::BROWSER_CACHE, 0, 0, 31_536_000)? as u64,
        neg_solar: env.yes(&keys::NEG_SOLAR, true),
        site_zero_threshold,
        cache_ttl: env.int(&keys::CACHE_TTL, 30, 0, 86_400)? as u64,
        control,
        cloud: cloud.clone(),
        email: env.string(&keys::EMAIL, EMAIL_PLACEHOLDER),
        timezone: env.string(&keys::TIMEZONE, "America/Los_Angeles"),
        auth_path,
        auth_mode,
        cache_file: env.string(&keys::CACHE_FILE, &default_cache_file),
        siteid: env.opt(&keys::SITEID),
        pool_maxsize: env.int(&keys::POOL_MAXSIZE, 15, 0, 1000)?,
        idle_timeout: Duration::from_secs(idle as u64),
        max_connections: env.int(&keys::MAX_CONNECTIONS, 1024, 8, 65_536)? as usize,
        legacy_flags: LegacyFlags {
            suppress_network_errors: env.yes(&keys::SUPPRESS_NETWORK_ERRORS, false),
            network_error_rate_limit: env.int(&keys::NETWORK_ERROR_RATE_LIMIT, 5, 0, 1_000_000)?,
            fail_fast: env.yes(&keys::FAIL_FAST, false),
            graceful_degradation: env.yes(&keys::GRACEFUL_DEGRADATION, true),
            health_check: env.yes(&keys::HEALTH_CHECK, true),
            tedapi_recovery: env.yes(&keys::TEDAPI_RECOVERY, true),
            tedapi_probe_interval: probe,
        },
        www_dir: env.opt(&keys::WWW_DIR),
        debug: env.yes(&keys::DEBUG, false),
        health_503: env.yes(&keys::HEALTH_503, true),
        ws_interval: Duration::from_millis(
            (env.float(&keys::WS_INTERVAL, 1.0, 0.1, 3600.0)? * 1000.0) as u64,
        ),
        ws_max_clients: env.int(&keys::WS_MAX_CLIENTS, 1000, 0, 100_000)? as usize,
        cors_origins: env
            .opt(&keys::CORS_ORIGINS)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        history: HistorySettings {
            dir: env.opt(&keys::HISTORY_DIR),
            step: env.int(&keys::HISTORY_STEP, 60, 1, 3600)? as u32,
            flush: Duration::from_secs(env.int(&keys::HISTORY_FLUSH, 300, 1, 86_400)? as u64),
            timezone: match env.raw(&keys::TIMEZONE) {
                Some((k, v)) if !v.trim().is_empty() => {
                    let v = v.trim().to_string();
                    // The embedded tzdb that `history::Zone` uses (config is below history).
                    if jiff::tz::TimeZone::get(&v).is_err() {
                        return Err(ConfigError::new(
                            k,
                            format!("'{v}' is not a known IANA time zone (e.g. Europe/Berlin)"),
                        ));
                    }
                    Some(v)
                }
                _ => None,
            },
        },
    };

    let host = env.opt(&keys::HOST);
    let gw_pwd = env.secret(&keys::GW_PWD);
    let password = env.secret(&keys::PASSWORD);
    let rsa_key_path = env.opt(&keys::RSA_KEY_PATH);
    let wifi_host = env.opt(&keys::WIFI_HOST);
    let wifi_v1r_fallback = env.yes(&keys::WIFI_V1R_FALLBACK, false);

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
    let env_email = env.opt(&keys::EMAIL).filter(|e| e != EMAIL_PLACEHOLDER);
    let env_cloud = cloud.auth(&server.auth_path, env_email, siteid);
    let mut gateways = Vec::new();
    if let (Some(doc), Some(path)) = (&file, &file_path) {
        if let Some(list) = doc.get("gateways") {
            gateways.extend(file::gateways(list, path, "gateways", &defaults)?);
        }
    }
    if let Some(text) = env.opt(&keys::GATEWAYS) {
        let list = crate::json::parse(&text)
            .map_err(|e| ConfigError::new("PW_GATEWAYS", format!("is not a JSON list: {e}")))?;
        gateways.extend(file::gateways(&list, "PW_GATEWAYS", "", &defaults)?);
    }
    if !cli.demo {
        if let Some(host) = host {
            validate_host("PW_HOST", &host)?;
            #[cfg_attr(
                not(feature = "v1r"),
                allow(unused_mut, unused_variables, unused_assignments)
            )]
            let mut rsa_key: Option<super::mode::LoadedKey> = None;
            let mode = match &rsa_key_path {
                Some(path) => {
                    let (mode, key) = v1r_mode(
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
                    )?;
                    #[cfg(feature = "v1r")]
                    {
                        rsa_key = Some(key);
                    }
                    #[cfg(not(feature = "v1r"))]
                    let _ = key;
                    mode
                }
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
                    name: env.string(&keys::NAME, "Powerwall"),
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
                    #[cfg(feature = "v1r")]
                    rsa_key,
                    wifi_v1r_fallback: wifi_v1r_fallback && mode == Mode::V1rWifi,
                    solar_only: false,
                    timezone: None,
                    wifi_host: wifi_host.filter(|_| mode == Mode::V1rWifi),
                },
            );
        } else if gateways.is_empty() && cloud_files_exist(&env_cloud) {
            // The proxy's rule: no PW_HOST means cloud mode (FleetAPI when its file exists).
            gateways.push(GatewayConfig {
                id: "default".into(),
                name: env.string(&keys::NAME, "Powerwall"),
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
                #[cfg(feature = "v1r")]
                rsa_key: None,
                wifi_host: None,
                wifi_v1r_fallback: false,
                solar_only: false,
                timezone: None,
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
    let default_gateway = match env.opt(&keys::DEFAULT_GATEWAY) {
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
        mqtt: super::mqtt::load(&env)?,
    })
}

/// True when `auth` points at a token file.
fn cloud_files_exist(auth: &CloudAuth) -> bool {
    let dir = super::token_files::dir(&auth.authpath);
    super::token_files::has_fleet(&dir) || super::token_files::has_owner(&dir)
}
