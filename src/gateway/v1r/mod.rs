//! v1r: RSA-signed TEDAPI on the Powerwall 3 wired LAN (wire spec §3).
//!
//! Why it exists: a PW3's Ethernet "vendor" port refuses Basic-auth TEDAPI; full access there
//! needs `POST /tedapi/v1r` with a `RoutableMessage` signed by an RSA-4096 key registered
//! through Tesla's cloud (`python -m pypowerwall register`). This module is that transport:
//!
//! * The key file is `config::rsa_key` ([`RsaKey`]: RSA-4096, loaded once with the
//!   configuration); the TLV run the signature covers and the envelopes are
//!   `gateway::proto` ([`bytes_to_sign`]: signature type 7, domain 7, the **leader** DIN as
//!   personalization, `expires_at = ceil(now) + 12` big-endian, `0xFF`, the bare envelope).
//! * `reply` — [`signed_request`] (PKCS#1 v1.5 + SHA-512 in a `RoutableMessage` with a fresh
//!   UUID4) and [`decode_reply`] (pure): HTTP status and `RoutableMessage` → the inner envelope bytes or a
//!   typed error; the fault table of §3.5 (`UNKNOWN_KEY_ID`, `TIME_EXPIRED`, …), "authorization
//!   not verified" (key registered, breaker toggle pending) and empty replies.
//! * `client` — [`V1rClient`], the blocking LAN client — JSON customer login for a Bearer token,
//!   `GET /tedapi/din` with it, signed config reads (FileStore, deliveryChannel 2,
//!   `authorizedClient` 1) and the same query/firmware envelopes as Wi-Fi, minus `Message`/`Tail`.
//!   A 401/403 triggers one re-login and one re-signed retry.
//! * this file — [`V1r`], the poller's [`Source`]. With `PW_WIFI_HOST` and `PW_GW_PWD` it keeps a Basic-auth
//!   Wi-Fi client: follower Powerwalls are always queried over Wi-Fi (v1r cannot route to them;
//!   failures back off `min(60·2ⁿ, 7680)` s, 60 s after 429/503), and after 3 consecutive LAN
//!   failures (or a LAN that is down at start) every query goes over Wi-Fi until a LAN probe
//!   succeeds; probes back off `min(60·2ⁿ, 7680)` s (pypowerwall 0.22.2 failover).
//!
//! Nothing a gateway sends can panic: replies are length-checked protobuf, capped bodies, and
//! JSON with a nesting limit.

use std::time::{Duration, Instant};

pub use crate::config::rsa_key::RsaKey;
use crate::config::{GatewayConfig, Mode};
use crate::gateway::facade::Facade;
use crate::gateway::native::Native;
pub use crate::gateway::proto::{bytes_to_sign, expires_at};
use crate::gateway::source::{self, Fetch, Link, Source};
use crate::gateway::tedapi::{Client, Error};
use crate::gateway::Firmware;
use crate::json::Value;

mod client;
mod control;
mod reply;
#[cfg(test)]
mod tests;

pub use crate::config::rsa_key::{KEY_BITS, REGISTER_KEY_FILENAME};
pub use crate::gateway::proto::{config_envelope, SIGNATURE_TTL};
pub use client::{V1rClient, V1rOptions};
pub use control::{apply as apply_config_changes, reserve_app_to_raw, ConfigChange, WriteError};
pub use reply::*;

/// Consecutive LAN failures that switch leader queries to the Wi-Fi host.
pub const LAN_TRIP_AFTER: u32 = 3;

/// `min(60 · 2ⁿ, 7680)` seconds: the LAN probe and Wi-Fi follower back-off.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(60u64.saturating_mul(1u64 << n.min(8)).min(7680))
}

/// The v1r LAN client plus the optional Wi-Fi client, with the failover state.
pub(crate) struct Transport {
    id: String,
    lan: V1rClient,
    wifi: Option<Client>,
    leader: Option<String>,
    /// Leader queries go over Wi-Fi until `lan_retry_at`.
    lan_failed: bool,
    lan_fail_count: u32,
    lan_retry_at: Option<Instant>,
    /// Follower (Wi-Fi) path back-off.
    wifi_fail_count: u32,
    wifi_retry_at: Option<Instant>,
}

impl Transport {
    fn leader(&self) -> Result<String, Error> {
        self.leader
            .clone()
            .ok_or_else(|| Error::BadReply("no gateway DIN yet".into()))
    }

    fn trip(&mut self, count: u32) {
        self.lan_failed = true;
        self.lan_fail_count = count;
        let wait = backoff(count);
        self.lan_retry_at = Some(Instant::now() + wait);
        log::warn!(
            "gateway '{}': v1r LAN failed {count} time(s) in a row; using the Wi-Fi TEDAPI host, \
             LAN retry in {} s",
            self.id,
            wait.as_secs()
        );
    }

    fn lan_ok(&mut self) {
        if self.lan_failed {
            log::info!("gateway '{}': v1r LAN recovered", self.id);
        }
        self.lan_failed = false;
        self.lan_fail_count = 0;
        self.lan_retry_at = None;
    }

    /// LAN login + DIN (the connection and the recovery probe).
    fn connect_lan(&mut self) -> Result<String, Error> {
        self.lan.login()?;
        self.lan.din()
    }

    /// One leader request: over the LAN unless it has failed over, counting LAN failures.
    fn leader_call<T>(
        &mut self,
        lan: impl FnOnce(&mut V1rClient, &str) -> Result<T, Error>,
        wifi: impl FnOnce(&mut Client, &str) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let leader = self.leader()?;
        if self.lan_failed && self.lan_retry_at.is_none_or(|t| Instant::now() >= t) {
            log::info!("gateway '{}': probing the v1r LAN again", self.id);
            match self.connect_lan() {
                Ok(_) => self.lan_ok(),
                Err(e) => {
                    log::debug!("gateway '{}': LAN probe: {e}", self.id);
                    self.trip(self.lan_fail_count + 1);
                }
            }
        }
        if self.lan_failed {
            return match self.wifi.as_mut() {
                Some(w) => wifi(w, &leader),
                None => Err(Error::Unreachable("v1r LAN down".into())),
            };
        }
        let result = lan(&mut self.lan, &leader);
        match &result {
            Ok(_) => self.lan_fail_count = 0,
            Err(_) => {
                self.lan_fail_count += 1;
                if self.lan_fail_count >= LAN_TRIP_AFTER && self.wifi.is_some() {
                    self.trip(self.lan_fail_count);
                }
            }
        }
        result
    }

    /// A follower query: only over Wi-Fi, with its own back-off.
    fn follower_components(&mut self, din: &str, via: Option<&str>) -> Result<Value, Error> {
        let Some(wifi) = self.wifi.as_mut() else {
            return Err(Error::Unreachable(format!(
                "follower {din} is not reachable over v1r (set PW_WIFI_HOST and PW_GW_PWD)"
            )));
        };
        if self.wifi_retry_at.is_some_and(|t| Instant::now() < t) {
            // Not `Error::Cooldown`: that would end the whole poll.
            return Err(Error::Unreachable("Wi-Fi follower path backing off".into()));
        }
        let leader = self.leader.clone();
        match wifi.components(din, via.or(leader.as_deref())) {
            Ok(v) => {
                self.wifi_fail_count = 0;
                self.wifi_retry_at = None;
                Ok(v)
            }
            Err(e) => {
                self.wifi_fail_count += 1;
                let wait = match e {
                    Error::Http(429 | 503) | Error::Cooldown { .. } => Duration::from_secs(60),
                    _ => backoff(self.wifi_fail_count),
                };
                self.wifi_retry_at = Some(Instant::now() + wait);
                Err(e)
            }
        }
    }
}

impl Fetch for Transport {
    fn detect_pw3(&mut self) -> Result<bool, Error> {
        // v1r is PW3-only; there is no web portal to ask.
        Ok(true)
    }

    fn din(&mut self) -> Result<String, Error> {
        match self.connect_lan() {
            Ok(din) => {
                self.lan_ok();
                self.leader = Some(din.clone());
                Ok(din)
            }
            Err(e) => {
                let Some(wifi) = self.wifi.as_mut() else {
                    return Err(e);
                };
                log::warn!(
                    "gateway '{}': v1r LAN login/DIN failed ({e}); starting on the Wi-Fi host",
                    self.id
                );
                let din = wifi.din()?;
                self.leader = Some(din.clone());
                self.trip((self.lan_fail_count + 1).max(LAN_TRIP_AFTER));
                Ok(din)
            }
        }
    }

    fn config(&mut self, _din: &str) -> Result<Value, Error> {
        self.leader_call(|c, l| c.config(l), |w, l| w.config(l))
    }

    fn firmware(&mut self, _din: &str) -> Result<Firmware, Error> {
        self.leader_call(|c, l| c.firmware(l), |w, l| w.firmware(l))
    }

    fn components(&mut self, din: &str, via: Option<&str>) -> Result<Value, Error> {
        if self.leader.as_deref() != Some(din) {
            return self.follower_components(din, via);
        }
        let d = din.to_string();
        self.leader_call(
            |c, l| c.components(l, &d, via),
            |w, _| w.components(din, via),
        )
    }

    fn status(&mut self, _din: &str) -> Result<Value, Error> {
        self.leader_call(|c, l| c.status(l), |w, l| w.status(l))
    }

    fn controller(&mut self, _din: &str) -> Result<Value, Error> {
        self.leader_call(|c, l| c.controller(l), |w, l| w.controller(l))
    }
}

/// The v1r source of one gateway ("Local (v1r)" / "Local (v1r+wifi)").
pub struct V1r {
    cfg: GatewayConfig,
    link: Option<Link<Transport>>,
}

impl V1r {
    pub fn new(cfg: GatewayConfig) -> V1r {
        V1r { cfg, link: None }
    }

    fn connect(&self) -> Result<Link<Transport>, Error> {
        let cfg = &self.cfg;
        let opts = lan_options(cfg)?;
        let password = opts.password.clone();
        let lan = V1rClient::new(opts)?;
        let wifi = match (&cfg.wifi_host, &cfg.gw_pwd, cfg.mode) {
            (Some(host), Some(gw_pwd), Mode::V1rWifi) => {
                let mut o = source::options(cfg);
                o.host = host.clone();
                o.gw_pwd = gw_pwd.clone();
                // The pinned certificate is the LAN port's; the Wi-Fi side has its own.
                o.pin = None;
                let mut c = Client::new(o)?;
                c.set_cooldown_period(Duration::from_secs(60));
                Some(c)
            }
            _ => None,
        };
        // The gateway's own `/api/meters/aggregates` answers on the LAN port with the customer
        // login (one of the three REST endpoints a PW3 keeps there).
        // The customer password is passed as it is: deriving it again from a field named
        // `gw_pwd` broke the login for a `PW_PASSWORD` that is not exactly 5 characters.
        let native =
            Native::with_password(&source::options(cfg), lan.agent().clone(), Some(password))
                .ok()
                .map(|n| n.named(&cfg.id));
        Ok(Link::new(
            Transport {
                id: cfg.id.clone(),
                lan,
                wifi,
                leader: None,
                lan_failed: false,
                lan_fail_count: 0,
                lan_retry_at: None,
                wifi_fail_count: 0,
                wifi_retry_at: None,
            },
            native,
        ))
    }
}

/// The LAN client settings of a v1r gateway (the poller's and the control writer's): the key
/// loaded with the configuration and the customer password.
pub fn lan_options(cfg: &GatewayConfig) -> Result<V1rOptions, Error> {
    let key = cfg
        .rsa_key
        .clone()
        .ok_or_else(|| Error::Rejected("PW_RSA_KEY_PATH: no RSA private key was loaded".into()))?;
    let password = cfg.customer_password().ok_or_else(|| {
        Error::Rejected("v1r needs PW_PASSWORD or PW_GW_PWD (its last 5 characters)".into())
    })?;
    Ok(V1rOptions {
        host: cfg.host.clone(),
        password,
        key,
        timeout: cfg.timeout,
        pin: cfg.tls_fingerprint,
        query_set: cfg.query_set,
    })
}

/// `password`, else the last 5 characters of `gw_pwd` (upstream `gw_pwd[-5:]`).
pub fn customer_password(cfg: &GatewayConfig) -> Option<String> {
    cfg.customer_password().map(|s| s.expose().to_string())
}

impl Source for V1r {
    fn poll(&mut self) -> Result<Facade, Error> {
        if self.link.is_none() {
            self.link = Some(self.connect()?);
        }
        let link = self
            .link
            .as_mut()
            .ok_or_else(|| Error::BadReply("no link".into()))?;
        let data = source::tick(link, &self.cfg)?;
        Ok(source::map_data(&data, self.cfg.query_set))
    }

    fn cooldown_remaining(&self) -> Option<Duration> {
        let t = &self.link.as_ref()?.client;
        if t.lan_failed {
            t.wifi.as_ref()?.cooldown_remaining()
        } else {
            None
        }
    }

    fn mode(&self) -> &'static str {
        self.cfg.mode.name()
    }

    fn settings_changed(&mut self) {
        if let Some(l) = self.link.as_mut() {
            l.settings_changed();
        }
    }
}
