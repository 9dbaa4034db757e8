//! The configuration file (`--config FILE` / `PW_CONFIG`, YAML or JSON) and `PW_GATEWAYS`.
//!
//! Both become a [`Value`] first, so one validator serves every source. Unknown keys are refused
//! (a typo must not silently drop a setting), and every error names the file, the gateway and
//! the key. `server:` keys are the [`Key::file`] names of [`KEYS`], read with the same rules as
//! the environment variable they stand for (the environment overrides the file).

use std::time::Duration;

use super::keys::{self, Key, KEYS};
use super::{validate_host, ConfigError, GatewayConfig, GatewayDefaults, Mode, QuerySet};
use crate::json::{Map, Value};
use crate::secret::Secret;
use crate::wire::tls;

const GATEWAY_KEYS: &[&str] = &[
    "id",
    "name",
    "host",
    "password",
    "gw_pwd",
    "email",
    "authpath",
    "timezone",
    "cloud_mode",
    "siteid",
    "poll_interval",
    "timeout",
    "tls_fingerprint",
    "tedapi_api_version",
    "mode",
    "rsa_key_path",
    "wifi_host",
    "wifi_v1r_fallback",
    // pypowerwall-server's gateways.yaml
    "port",
    "type",
    "fleetapi",
];

/// Reads a YAML or JSON configuration file into a value.
pub fn read(path: &str) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read the configuration file: {e}")))?;
    parse(&text, path)
}

/// Parses configuration text (JSON when it starts with `{`, else YAML).
pub fn parse(text: &str, origin: &str) -> Result<Value, ConfigError> {
    if text.trim_start().starts_with('{') {
        return crate::json::parse(text)
            .map_err(|e| ConfigError::new(origin, format!("is not valid JSON: {e}")));
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(text)
        .map_err(|e| ConfigError::new(origin, format!("is not valid YAML: {e}")))?;
    let doc = docs.into_iter().next().unwrap_or(yaml_rust2::Yaml::Null);
    let v = from_yaml(doc, origin)?;
    match v {
        Value::Object(_) => Ok(v),
        Value::Null => Ok(Value::object()),
        _ => Err(ConfigError::new(
            origin,
            "must be a mapping with 'server' and 'gateways'",
        )),
    }
}

fn from_yaml(y: yaml_rust2::Yaml, origin: &str) -> Result<Value, ConfigError> {
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::Int(i),
        Yaml::Real(r) => r
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| ConfigError::new(origin, format!("'{r}' is not a number")))?,
        Yaml::String(s) => Value::Str(s),
        Yaml::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| from_yaml(x, origin))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    _ => return Err(ConfigError::new(origin, "mapping keys must be strings")),
                };
                m.insert(key, from_yaml(v, origin)?);
            }
            Value::Object(m)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(ConfigError::new(
                origin,
                "aliases and invalid values are not supported",
            ))
        }
    })
}

/// A scalar as the text an environment variable would hold.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(crate::json::py_float(*f)),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.into()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(scalar_text)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// Checks the top level and returns the `server:` settings as (key, label, text).
pub fn server_settings(
    doc: &Value,
    path: &str,
) -> Result<Vec<(&'static Key, String, String)>, ConfigError> {
    let top = doc
        .as_object()
        .ok_or_else(|| ConfigError::new(path, "must be a mapping"))?;
    for k in top.keys() {
        if k != "server" && k != "gateways" {
            return Err(ConfigError::new(
                format!("{path}: {k}"),
                "unknown key (expected 'server' or 'gateways')",
            ));
        }
    }
    let mut out = Vec::new();
    let Some(server) = top.get("server").filter(|v| !v.is_null()) else {
        return Ok(out);
    };
    let server = server
        .as_object()
        .ok_or_else(|| ConfigError::new(format!("{path}: server"), "must be a mapping"))?;
    for (k, v) in server.iter() {
        let label = format!("{path}: server.{k}");
        let var = keys::by_file_key(k).ok_or_else(|| {
            ConfigError::new(
                &label,
                format!(
                    "unknown key (known: {})",
                    KEYS.iter()
                        .filter_map(|k| k.file)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let text = scalar_text(v)
            .ok_or_else(|| ConfigError::new(&label, "must be a value, not a mapping"))?;
        out.push((var, label, text));
    }
    Ok(out)
}

/// `host` with `port` (pypowerwall-server's separate `port:` key); `None` when the host already
/// names a port. An IPv6 literal gets brackets.
fn join_port(host: &str, port: i64) -> Option<String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.matches(':').count() > 1 {
        // IPv6: bracketed with a port after it, or a bare literal.
        if host.starts_with('[') && !host.ends_with(']') {
            return None;
        }
        return Some(format!("[{bare}]:{port}"));
    }
    if host.contains(':') {
        return None;
    }
    Some(format!("{host}:{port}"))
}

/// True for ids made of letters, digits, `-` and `_` (they appear in URLs).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !matches!(id, "history" | "control")
}

/// Parses a list of gateway entries.
pub fn gateways(
    list: &Value,
    origin: &str,
    prefix: &str,
    defaults: &GatewayDefaults,
) -> Result<Vec<GatewayConfig>, ConfigError> {
    let items = list.as_array().ok_or_else(|| {
        ConfigError::new(format!("{origin}: {prefix}"), "must be a list of gateways")
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, g)| gateway(g, origin, &format!("{prefix}[{i}]"), defaults))
        .collect()
}

fn gateway(
    v: &Value,
    origin: &str,
    at: &str,
    defaults: &GatewayDefaults,
) -> Result<GatewayConfig, ConfigError> {
    let m = v
        .as_object()
        .ok_or_else(|| ConfigError::new(format!("{origin}: {at}"), "must be a mapping"))?;
    let id = m
        .get("id")
        .and_then(scalar_text)
        .ok_or_else(|| ConfigError::new(format!("{origin}: {at}.id"), "is required"))?;
    let label = format!("{origin}: gateway '{id}'");
    let err = |key: &str, msg: String| ConfigError::new(format!("{label} {key}"), msg);
    if !valid_id(&id) {
        return Err(err(
            "id",
            "must be 1-64 letters, digits, '-' or '_' (it is used in URLs)".into(),
        ));
    }
    for k in m.keys() {
        if !GATEWAY_KEYS.contains(&k.as_str()) {
            return Err(err(
                k,
                format!("unknown key (known: {})", GATEWAY_KEYS.join(", ")),
            ));
        }
    }
    let text = |k: &str| -> Result<Option<String>, ConfigError> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => scalar_text(v)
                .filter(|s| !s.is_empty())
                .map(Some)
                .ok_or_else(|| err(k, "must be a string".into())),
        }
    };
    let seconds = |k: &str, default: Duration| -> Result<Duration, ConfigError> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_f64() {
                Some(s) if (1.0..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
                _ => Err(err(
                    k,
                    format!("'{}' is not a number of seconds from 1 to 86400", v.to_py()),
                )),
            },
        }
    };
    let flag = |key: &str| match m.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(err(key, format!("'{}' is not true or false", v.to_py()))),
    };
    let wifi_v1r_fallback = flag("wifi_v1r_fallback")?;
    // pypowerwall-server: FleetAPI credentials (`.pypowerwall.fleetapi` in `authpath`); with no
    // host the gateway is watched through the FleetAPI.
    let fleetapi = flag("fleetapi")?;
    let solar_only = match m.get("type") {
        None | Some(Value::Null) => false,
        Some(Value::Str(t)) if t == "powerwall" => false,
        Some(Value::Str(t)) if t == "inverter" => true,
        Some(v) => {
            return Err(err(
                "type",
                format!(
                    "'{}' is not one of: powerwall, inverter (solar only)",
                    scalar_text(v).unwrap_or_default()
                ),
            ))
        }
    };
    let port = match m.get("port") {
        None | Some(Value::Null) => None,
        Some(Value::Int(p)) if (1..=65535).contains(p) => Some(*p),
        Some(v) => {
            return Err(err(
                "port",
                format!(
                    "'{}' is not a port number (1-65535)",
                    scalar_text(v).unwrap_or_default()
                ),
            ))
        }
    };
    // pypowerwall-server's per-gateway zone: where this gateway's history days end.
    let timezone = match text("timezone")? {
        Some(tz) if jiff::tz::TimeZone::get(tz.trim()).is_ok() => Some(tz.trim().to_string()),
        Some(tz) => {
            return Err(err(
                "timezone",
                format!("'{tz}' is not an IANA time zone (e.g. America/Los_Angeles)"),
            ))
        }
        None => None,
    };
    let cloud_mode = flag("cloud_mode")? || (fleetapi && text("host")?.is_none());
    let siteid = match text("siteid")? {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<i64>()
                .map_err(|_| err("siteid", format!("'{v}' is not a numeric energy site id")))?,
        ),
    };
    let email = text("email")?;
    let authpath = text("authpath")?;
    // Cloud credentials: the transport with cloud_mode, else the control path.
    let cloud = (cloud_mode || fleetapi || email.is_some() || authpath.is_some()).then(|| {
        let mut auth = defaults.cloud.auth(
            authpath.as_deref().unwrap_or(&defaults.auth_path),
            email.clone(),
            siteid,
        );
        auth.fleet |= fleetapi;
        auth
    });
    let host =
        match text("host")? {
            Some(h) => h,
            None if cloud_mode => String::new(),
            None => return Err(err(
                "host",
                "is required (or set cloud_mode: true to watch the gateway through Tesla's cloud)"
                    .into(),
            )),
        };
    let host = match port {
        None => host,
        Some(p) if host.is_empty() => return Err(err("port", format!("{p} needs a 'host'"))),
        Some(p) => join_port(&host, p).ok_or_else(|| {
            err(
                "port",
                format!("the host '{host}' already has a port; give it in one place"),
            )
        })?,
    };
    if !host.is_empty() {
        validate_host(&format!("{origin}: gateway '{id}' host"), &host)?;
    }
    let mut password = text("password")?.map(Secret::new);
    let mut gw_pwd = text("gw_pwd")?.map(Secret::new);
    let need = |what: &str| {
        err(
            "gw_pwd",
            format!("is required ({what}; or 'password', the customer password)"),
        )
    };
    let rsa_key_path = text("rsa_key_path")?;
    let wifi_host = text("wifi_host")?;
    let v1r = |gw_pwd: bool, password: bool| {
        let names = (
            format!("{label} rsa_key_path"),
            format!("{label} wifi_host"),
            format!("{label} password"),
            format!("{label} gw_pwd"),
        );
        super::mode::v1r_mode(
            super::mode::V1rKeys {
                key: &names.0,
                wifi: &names.1,
                password: &names.2,
                gw_pwd: &names.3,
            },
            rsa_key_path.as_deref().unwrap_or_default(),
            wifi_host.as_deref(),
            gw_pwd,
            password,
        )
    };
    #[cfg_attr(
        not(feature = "v1r"),
        allow(unused_mut, unused_variables, unused_assignments)
    )]
    let mut rsa_key: Option<super::mode::LoadedKey> = None;
    let mode = match (cloud_mode, &cloud) {
        (true, Some(c)) if c.fleet => Mode::FleetApi,
        (true, _) => Mode::Cloud,
        _ => match text("mode")?.as_deref() {
            None | Some("auto") | Some("v1r") if rsa_key_path.is_some() => {
                let (mode, key) = v1r(gw_pwd.is_some(), password.is_some())?;
                #[cfg(feature = "v1r")]
                {
                    rsa_key = Some(key);
                }
                #[cfg(not(feature = "v1r"))]
                let _ = key;
                mode
            }
            Some("v1r") => {
                return Err(err(
                    "rsa_key_path",
                    "is required with mode 'v1r' (the registered RSA private key, PEM)".into(),
                ))
            }
            Some(other) if rsa_key_path.is_some() => {
                return Err(err(
                    "mode",
                    format!(
                        "'{other}' does not use 'rsa_key_path' (use mode 'v1r' or leave it out)"
                    ),
                ))
            }
            None | Some("auto") => Mode::select(&host, gw_pwd.is_some(), password.is_some())
                .ok_or_else(|| need("the gateway password from the QR sticker"))?,
            Some("tedapi") => {
                // The one password given is the gateway password.
                gw_pwd = gw_pwd.or_else(|| password.take());
                if gw_pwd.is_none() {
                    return Err(need("the gateway password from the QR sticker"));
                }
                Mode::Tedapi
            }
            Some("local") => {
                if password.is_none() {
                    return Err(err(
                        "password",
                        "is required with mode 'local' (the customer password)".into(),
                    ));
                }
                match Mode::select(&host, gw_pwd.is_some(), true) {
                    Some(Mode::Hybrid) => Mode::Hybrid,
                    _ => Mode::Local,
                }
            }
            Some(other) => {
                return Err(err(
                    "mode",
                    format!("'{other}' is not one of: auto, tedapi, local, v1r"),
                ))
            }
        },
    };
    let tls_fingerprint = match text("tls_fingerprint")? {
        None => None,
        Some(f) => Some(tls::parse_fingerprint(&f).map_err(|e| err("tls_fingerprint", e))?),
    };
    let query_set = match text("tedapi_api_version")? {
        None => defaults.query_set,
        Some(q) => QuerySet::parse(&q).ok_or_else(|| {
            err(
                "tedapi_api_version",
                format!("'{q}' is not one of: V2024_06, V2026_06"),
            )
        })?,
    };
    Ok(GatewayConfig {
        name: text("name")?.unwrap_or_else(|| id.clone()),
        id,
        host,
        password,
        gw_pwd,
        poll_interval: seconds("poll_interval", defaults.poll_interval)?,
        timeout: seconds("timeout", defaults.timeout)?,
        tls_fingerprint,
        query_set,
        simulated: false,
        mode,
        email: email.clone().unwrap_or_else(|| defaults.email.clone()),
        auth_mode: defaults.auth_mode,
        cloud,
        rsa_key_path: rsa_key_path.filter(|_| matches!(mode, Mode::V1r | Mode::V1rWifi)),
        #[cfg(feature = "v1r")]
        rsa_key,
        wifi_v1r_fallback: wifi_v1r_fallback && mode == Mode::V1rWifi,
        solar_only,
        timezone,
        wifi_host: wifi_host.filter(|_| mode == Mode::V1rWifi),
    })
}
