//! The `MQTT_*` settings of pypowerwall-server 0.13.0 (publisher, Home Assistant discovery,
//! opt-in controls), read once with the rest of the configuration.
//!
//! `MQTT_HOST` switches the publisher on; every other key has 0.13.0's default. A value that
//! does not parse stops start-up with an error naming the key, like every other setting here.
//! `MQTT_PASSWORD` is a [`Secret`]: `Debug` never shows it and nothing serves it. The keys
//! themselves (names, file keys `server.mqtt_*`, defaults, README text) are defined at the end
//! of this file and listed in [`super::KEYS`]; this file also gives them their meaning.

use super::env::Env;
use super::keys::{self, key, Key};
use super::ConfigError;
use crate::secret::Secret;

/// `MQTT_CONTROLS` bits (0.8.1's bitmask; 16, islanding, is not offered by this server).
pub const CONTROL_RESERVE: u8 = 1;
pub const CONTROL_MODE: u8 = 2;
pub const CONTROL_GRID_CHARGING: u8 = 4;
pub const CONTROL_GRID_EXPORT: u8 = 8;
/// Every bit `MQTT_CONTROLS` accepts (0.13.0 accepts 0-31; bit 16 is accepted and ignored).
pub const CONTROLS_ALL: u8 = 31;

/// Everything the MQTT publisher needs; `host: None` means MQTT is off. `Debug` is
/// hand-written (it holds the broker password).
#[derive(Clone, PartialEq)]
pub struct MqttSettings {
    /// `MQTT_HOST`: the broker (enables publishing).
    pub host: Option<String>,
    /// `MQTT_PORT` (default 1883).
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `MQTT_TLS`: connect with TLS (rustls).
    pub tls: bool,
    /// `MQTT_TLS_CA_CERT`: PEM file of the CA(s) to trust instead of the built-in roots.
    pub tls_ca_cert: Option<String>,
    /// `MQTT_TLS_INSECURE`: accept any broker certificate (explicit choice only).
    pub tls_insecure: bool,
    /// `MQTT_TOPIC_PREFIX` (default `pypowerwall`).
    pub topic_prefix: String,
    /// `MQTT_RETAIN` for state topics (default true).
    pub retain: bool,
    /// `MQTT_QOS`: 0, 1 (default) or 2.
    pub qos: u8,
    /// `MQTT_HA_DISCOVERY` (default true).
    pub ha_discovery: bool,
    /// `MQTT_HA_PREFIX` (default `homeassistant`).
    pub ha_prefix: String,
    /// `MQTT_CLIENT_ID` (default `pypowerwall-server`).
    pub client_id: String,
    /// `MQTT_KEEPALIVE` in seconds (default 60).
    pub keepalive: u16,
    /// `MQTT_CONTROLS` bitmask (default 0: monitoring only).
    pub controls: u8,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("tls", &self.tls)
            .field("tls_ca_cert", &self.tls_ca_cert)
            .field("tls_insecure", &self.tls_insecure)
            .field("topic_prefix", &self.topic_prefix)
            .field("retain", &self.retain)
            .field("qos", &self.qos)
            .field("ha_discovery", &self.ha_discovery)
            .field("ha_prefix", &self.ha_prefix)
            .field("client_id", &self.client_id)
            .field("keepalive", &self.keepalive)
            .field("controls", &self.controls)
            .finish()
    }
}

impl MqttSettings {
    pub fn enabled(&self) -> bool {
        self.host.is_some()
    }
}

/// 0.13.0's lenient booleans: true/yes/on/1 and false/no/off/0, any case; empty = default.
fn flag(env: &Env, key: &Key, default: bool) -> Result<bool, ConfigError> {
    let Some((k, v)) = env.raw(key) else {
        return Ok(default);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(ConfigError::new(
            k,
            format!("'{v}' is not a boolean (true/false, yes/no, on/off, 1/0)"),
        )),
    }
}

/// A topic prefix may not be empty, contain wildcards or start/end with `/`.
fn prefix(env: &Env, key: &Key, default: &str) -> Result<String, ConfigError> {
    let (label, v) = env
        .raw(key)
        .filter(|(_, v)| !v.is_empty())
        .unwrap_or_else(|| (key.name().to_string(), default.to_string()));
    let v = v.trim().to_string();
    if v.is_empty() || v.contains(['+', '#', '\0']) || v.starts_with('/') || v.ends_with('/') {
        return Err(ConfigError::new(
            label,
            format!("'{v}' is not a usable topic prefix (no '+', '#', or leading/trailing '/')"),
        ));
    }
    Ok(v)
}

pub(super) fn load(env: &Env) -> Result<MqttSettings, ConfigError> {
    let host = env
        .opt(&keys::MQTT_HOST)
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    let tls_ca_cert = env.opt(&keys::MQTT_TLS_CA_CERT);
    if let Some(path) = &tls_ca_cert {
        if host.is_some() && std::fs::metadata(path).is_err() {
            return Err(ConfigError::new(
                "MQTT_TLS_CA_CERT",
                format!("cannot read '{path}'"),
            ));
        }
    }
    let client_id = env
        .opt(&keys::MQTT_CLIENT_ID)
        .unwrap_or_else(|| "pypowerwall-server".into());
    if client_id.len() > 256 {
        return Err(ConfigError::new(
            "MQTT_CLIENT_ID",
            "is longer than 256 bytes",
        ));
    }
    Ok(MqttSettings {
        host,
        port: env.int(&keys::MQTT_PORT, 1883, 1, 65535)? as u16,
        username: env.opt(&keys::MQTT_USERNAME),
        password: env.secret(&keys::MQTT_PASSWORD),
        tls: flag(env, &keys::MQTT_TLS, false)?,
        tls_ca_cert,
        tls_insecure: flag(env, &keys::MQTT_TLS_INSECURE, false)?,
        topic_prefix: prefix(env, &keys::MQTT_TOPIC_PREFIX, "pypowerwall")?,
        retain: flag(env, &keys::MQTT_RETAIN, true)?,
        qos: env.int(&keys::MQTT_QOS, 1, 0, 2)? as u8,
        ha_discovery: flag(env, &keys::MQTT_HA_DISCOVERY, true)?,
        ha_prefix: prefix(env, &keys::MQTT_HA_PREFIX, "homeassistant")?,
        client_id,
        keepalive: env.int(&keys::MQTT_KEEPALIVE, 60, 5, 65535)? as u16,
        controls: env.int(&keys::MQTT_CONTROLS, 0, 0, CONTROLS_ALL as i64)? as u8,
    })
}

// The `MQTT_*` keys: the names and defaults of pypowerwall-server 0.13.0 (rows of `KEYS`).
pub const MQTT_HOST: Key = key(&["MQTT_HOST"], "—", "Broker host; enables MQTT")
    .file("mqtt_host")
    .mqtt();
pub const MQTT_PORT: Key = key(
    &["MQTT_PORT"],
    "`1883`",
    "Broker port (8883 is usual for TLS)",
)
.file("mqtt_port")
.mqtt();
pub const MQTT_USERNAME: Key = key(&["MQTT_USERNAME"], "—", "Broker login")
    .file("mqtt_username")
    .mqtt();
pub const MQTT_PASSWORD: Key = key(
    &["MQTT_PASSWORD"],
    "—",
    "Broker password; never logged or served",
)
.file("mqtt_password")
.mqtt();
pub const MQTT_TLS: Key = key(
    &["MQTT_TLS"],
    "`false`",
    "TLS (rustls); trusts the Mozilla roots unless `MQTT_TLS_CA_CERT` is set",
)
.file("mqtt_tls")
.mqtt();
pub const MQTT_TLS_CA_CERT: Key = key(
    &["MQTT_TLS_CA_CERT"],
    "—",
    "PEM file of the CA(s) to trust instead",
)
.file("mqtt_tls_ca_cert")
.mqtt();
pub const MQTT_TLS_INSECURE: Key = key(
    &["MQTT_TLS_INSECURE"],
    "`false`",
    "Accept any broker certificate (explicit choice; logged as a warning)",
)
.file("mqtt_tls_insecure")
.mqtt();
pub const MQTT_TOPIC_PREFIX: Key = key(
    &["MQTT_TOPIC_PREFIX"],
    "`pypowerwall`",
    "State topics prefix",
)
.file("mqtt_topic_prefix")
.mqtt();
pub const MQTT_RETAIN: Key = key(&["MQTT_RETAIN"], "`true`", "Retain state topics")
    .file("mqtt_retain")
    .mqtt();
pub const MQTT_QOS: Key = key(
    &["MQTT_QOS"],
    "`1`",
    "QoS of state and discovery messages (0, 1, 2)",
)
.file("mqtt_qos")
.mqtt();
pub const MQTT_HA_DISCOVERY: Key = key(
    &["MQTT_HA_DISCOVERY"],
    "`true`",
    "Publish Home Assistant discovery",
)
.file("mqtt_ha_discovery")
.mqtt();
pub const MQTT_HA_PREFIX: Key = key(&["MQTT_HA_PREFIX"], "`homeassistant`", "Discovery prefix")
    .file("mqtt_ha_prefix")
    .mqtt();
pub const MQTT_CLIENT_ID: Key = key(
    &["MQTT_CLIENT_ID"],
    "`pypowerwall-server`",
    "Client id (unique per broker)",
)
.file("mqtt_client_id")
.mqtt();
pub const MQTT_KEEPALIVE: Key = key(&["MQTT_KEEPALIVE"], "`60`", "Keep-alive, seconds (5–65535)")
    .file("mqtt_keepalive")
    .mqtt();
pub const MQTT_CONTROLS: Key = key(
    &["MQTT_CONTROLS"],
    "`0`",
    "Control bitmask: 1 reserve, 2 mode, 4 grid charging, 8 grid export (15 = all)",
)
.file("mqtt_controls")
.mqtt();

#[cfg(test)]
mod tests {
    use super::*;

    fn load_from(vars: &[(&str, &str)]) -> Result<MqttSettings, ConfigError> {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = move |k: &str| map.get(k).cloned();
        let cli = super::super::CliOverrides::default();
        let env = Env {
            get: &get,
            cli: &cli,
            file: Vec::new(),
        };
        load(&env)
    }

    #[test]
    fn defaults_are_0_13_0s() {
        let m = load_from(&[]).unwrap();
        assert!(!m.enabled());
        assert_eq!(m.port, 1883);
        assert_eq!(m.topic_prefix, "pypowerwall");
        assert_eq!(m.ha_prefix, "homeassistant");
        assert_eq!(m.client_id, "pypowerwall-server");
        assert_eq!(
            (m.qos, m.retain, m.ha_discovery, m.tls),
            (1, true, true, false)
        );
        assert_eq!((m.keepalive, m.controls), (60, 0));
    }

    #[test]
    fn errors_name_the_key() {
        for (k, v) in [
            ("MQTT_PORT", "x"),
            ("MQTT_QOS", "3"),
            ("MQTT_TLS", "maybe"),
            ("MQTT_CONTROLS", "32"),
            ("MQTT_TOPIC_PREFIX", "a/#"),
            ("MQTT_HA_PREFIX", "/ha"),
        ] {
            let e = load_from(&[("MQTT_HOST", "b"), (k, v)]).unwrap_err();
            assert_eq!(e.key, k, "{e}");
        }
    }

    #[test]
    fn file_keys_work_and_errors_name_them() {
        let get = |_: &str| None;
        let cli = super::super::CliOverrides::default();
        let file = |key: &str, v: &str| Env {
            get: &get,
            cli: &cli,
            file: vec![(
                keys::by_file_key(key).unwrap(),
                format!("gw.yaml: server.{key}"),
                v.to_string(),
            )],
        };
        let m = load(&file("mqtt_host", "broker")).unwrap();
        assert_eq!(m.host.as_deref(), Some("broker"));
        let e = load(&file("mqtt_qos", "7")).unwrap_err();
        assert_eq!(e.key, "gw.yaml: server.mqtt_qos");
        let e = load(&file("mqtt_topic_prefix", "a/+")).unwrap_err();
        assert_eq!(e.key, "gw.yaml: server.mqtt_topic_prefix");
    }

    #[test]
    fn password_is_redacted() {
        let m = load_from(&[("MQTT_HOST", "b"), ("MQTT_PASSWORD", "hunter2")]).unwrap();
        assert!(!format!("{m:?}").contains("hunter2"));
        assert_eq!(m.password.unwrap().expose(), "hunter2");
    }
}
