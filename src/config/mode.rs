//! What the settings mean: the mode a set of passwords selects, host rules, the customer
//! password, and the checks of a v1r gateway's key file.
//!
//! Pure rules, no I/O except reading the v1r key file once (its contents never reach a message).

use super::{ConfigError, Mode};
use crate::secret::Secret;

impl Mode {
    /// The reference's choice for the passwords given (spec §6): gateway password only →
    /// TEDAPI; both → local (hybrid at 192.168.91.1); customer password only → `Auto` (ours:
    /// TEDAPI first, as this server always read a lone `PW_PASSWORD` as the gateway password).
    pub fn select(host: &str, gw_pwd: bool, password: bool) -> Option<Mode> {
        match (gw_pwd, password) {
            (true, false) => Some(Mode::Tedapi),
            (true, true) if hybrid_host(host) => Some(Mode::Hybrid),
            (true, true) => Some(Mode::Local),
            (false, true) => Some(Mode::Auto),
            (false, false) => None,
        }
    }
}

/// True for the gateway's Wi-Fi address, where hybrid mode (local REST + TEDAPI vitals) applies:
/// `192.168.91.1`, with or without the default port.
pub fn hybrid_host(host: &str) -> bool {
    matches!(host, "192.168.91.1" | "192.168.91.1:443")
}

/// The customer password: `password` when given, else the last 5 characters of the gateway
/// password (upstream `gw_pwd[-5:]`; all of it when shorter). The one derivation every
/// transport and the simulator use.
pub fn customer_password(password: Option<&Secret>, gw_pwd: Option<&Secret>) -> Option<Secret> {
    password
        .cloned()
        .or_else(|| gw_pwd.map(|p| p.last_chars(5)))
}

/// The names a v1r error should carry (environment variables or file keys).
pub(crate) struct V1rKeys<'a> {
    pub key: &'a str,
    pub wifi: &'a str,
    pub password: &'a str,
    pub gw_pwd: &'a str,
}

/// The key file of a v1r gateway, loaded once here and shared by its transport.
#[cfg(feature = "v1r")]
pub(crate) type LoadedKey = std::sync::Arc<super::rsa_key::RsaKey>;
#[cfg(not(feature = "v1r"))]
pub(crate) type LoadedKey = std::marker::PhantomData<()>;

/// The v1r mode for a configured RSA key (spec §6): the key must load (a PEM private key as
/// pypowerwall writes it, RSA-4096), a customer password must be at hand (`password`, or the
/// last 5 characters of `gw_pwd`), and the Wi-Fi fallback needs both `wifi_host` and `gw_pwd`.
/// Returns the mode and the loaded key.
pub(crate) fn v1r_mode(
    names: V1rKeys,
    key_path: &str,
    wifi_host: Option<&str>,
    gw_pwd: bool,
    password: bool,
) -> Result<(Mode, LoadedKey), ConfigError> {
    if !cfg!(feature = "v1r") {
        return Err(ConfigError::new(
            names.key,
            "this build has no v1r support (built without the cargo feature `v1r`)",
        ));
    }
    #[cfg(feature = "v1r")]
    let key = std::sync::Arc::new(
        super::rsa_key::RsaKey::load(key_path).map_err(|e| ConfigError::new(names.key, e))?,
    );
    #[cfg(not(feature = "v1r"))]
    let key = {
        let _ = key_path;
        std::marker::PhantomData
    };
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
                Ok((Mode::V1rWifi, key))
            } else {
                log::warn!(
                    "{} is set but {} is not: the v1r Wi-Fi fallback needs the gateway password; \
                     running without it",
                    names.wifi,
                    names.gw_pwd
                );
                Ok((Mode::V1r, key))
            }
        }
        None => Ok((Mode::V1r, key)),
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
