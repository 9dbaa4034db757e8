//! The poller's sources for local modes: [`Local`] (customer REST, hybrid with TEDAPI vitals)
//! and [`Auto`] (one password of unknown kind: TEDAPI first, local mode when TEDAPI refuses it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{GatewayConfig, Mode};
use crate::gateway::facade::{Facade, TedapiRaw};
use crate::gateway::map::{self, LocalData};
use crate::gateway::source::{Source, Tedapi};
use crate::gateway::tedapi::Error;
use crate::json::Value;

use super::*;

/// Local mode (and hybrid mode when TEDAPI is attached).
pub struct Local {
    cfg: GatewayConfig,
    client: Option<LocalClient>,
    /// Last answers of the slow URIs.
    slow: Vec<(String, Option<Value>)>,
    slow_at: Option<Instant>,
    /// Hybrid: the embedded TEDAPI source, and whether it ever answered.
    hybrid: Option<Tedapi>,
    hybrid_ok: bool,
    pw3: bool,
    pause: Option<Duration>,
    /// Slow URIs clients asked for lately: read each tick ([`Source::wanted`]).
    wanted: Vec<&'static str>,
}

impl Local {
    /// Pure local mode, or hybrid when `cfg` has a gateway password and the reference's host.
    pub fn new(cfg: GatewayConfig) -> Local {
        let hybrid = (cfg.gw_pwd.is_some() && hybrid_host(&cfg.host)).then(|| {
            log::info!(
                "gateway '{}': hybrid mode: local REST + TEDAPI vitals",
                cfg.id
            );
            Tedapi::new(cfg.clone())
        });
        Local {
            cfg,
            client: None,
            slow: Vec::new(),
            slow_at: None,
            hybrid,
            hybrid_ok: false,
            pw3: false,
            pause: None,
            wanted: Vec::new(),
        }
    }

    /// Changes the 429 pause; for tests.
    pub fn set_pause(&mut self, pause: Duration) {
        self.pause = Some(pause);
    }

    fn client(&mut self) -> Result<&mut LocalClient, Error> {
        if self.client.is_none() {
            let mut c = LocalClient::new(LocalOptions {
                host: self.cfg.host.clone(),
                password: self.cfg.password.clone().unwrap_or_default(),
                email: self.cfg.email.clone(),
                auth_mode: self.cfg.auth_mode,
                timeout: self.cfg.timeout,
                pin: self.cfg.tls_fingerprint,
            })?;
            if let Some(p) = self.pause {
                c.set_pause(p);
            }
            self.client = Some(c);
        }
        self.client
            .as_mut()
            .ok_or_else(|| Error::BadReply("no client".into()))
    }

    fn tick(&mut self) -> Result<LocalData, Error> {
        let hybrid = self.hybrid.is_some();
        self.client()?;
        let Local {
            client: Some(client),
            slow,
            slow_at,
            wanted,
            ..
        } = self
        else {
            return Err(Error::BadReply("no client".into()));
        };
        if !client.logged_in() {
            client.login()?;
        }
        let mut value = |uri: &str| -> Result<Option<Value>, Error> {
            Ok(match client.get(uri)? {
                Fetched::Value(v) => Some(v),
                _ => None,
            })
        };
        let mut api: Vec<(String, Option<Value>)> = Vec::new();
        for uri in FAST {
            api.push((uri.to_string(), value(uri)?));
        }
        require_local(&api)?;
        let vitals = if hybrid {
            None
        } else {
            match client.get(VITALS)? {
                Fetched::Bytes(b) if !b.is_empty() => Some(b),
                _ => None,
            }
        };
        let mut value = |uri: &str| -> Result<Option<Value>, Error> {
            Ok(match client.get(uri)? {
                Fetched::Value(v) => Some(v),
                _ => None,
            })
        };
        if slow_at.is_none_or(|t| t.elapsed() >= SLOW_REFRESH) {
            let mut fresh = Vec::with_capacity(SLOW.len());
            for uri in SLOW {
                fresh.push((uri.to_string(), value(uri)?));
            }
            *slow = fresh;
            *slow_at = Some(Instant::now());
        } else {
            // Without vitals, strings and alerts come from /api/solar_powerwall; and what clients
            // asked for lately (a Telegraf `telegraf.local` scrape every 5 s): keep those fresh.
            for (uri, v) in slow.iter_mut() {
                let needed = (uri == SOLAR_POWERWALL && vitals.is_none() && !hybrid)
                    || wanted.iter().any(|w| w == uri);
                if needed {
                    *v = value(uri)?;
                }
            }
        }
        api.extend(slow.iter().cloned());

        let tedapi = match self.hybrid.as_mut() {
            None => None,
            Some(t) => match t.poll() {
                Ok(f) => {
                    self.hybrid_ok = true;
                    self.pw3 = f.pw3;
                    Some(f)
                }
                Err(Error::Auth) if !self.hybrid_ok => {
                    log::warn!(
                        "gateway '{}': TEDAPI refused the gateway password; hybrid mode off, \
                         continuing in local mode",
                        self.cfg.id
                    );
                    self.hybrid = None;
                    None
                }
                Err(e) => {
                    log::debug!("gateway '{}': hybrid TEDAPI: {e}", self.cfg.id);
                    Some(Facade {
                        tedapi: Some(TedapiRaw::default()),
                        pw3: self.pw3,
                        ..Facade::default()
                    })
                }
            },
        };
        Ok(LocalData {
            api,
            vitals,
            tedapi,
        })
    }
}

/// The answers a local tick cannot do without: aggregates (power flows) and SOE (battery level)
/// must be JSON objects with their values. Missing, not JSON, or garbage: a failed poll that
/// names what was missing, so last-good data is served and then the failure bodies.
fn require_local(api: &[(String, Option<Value>)]) -> Result<(), Error> {
    let answer = |uri: &str| {
        api.iter()
            .find(|(u, _)| u == uri)
            .and_then(|(_, v)| v.as_ref())
    };
    let mut missing = Vec::new();
    let aggregates = answer("/api/meters/aggregates");
    if !["site", "battery", "load", "solar"].iter().any(|k| {
        aggregates
            .and_then(|a| a.get(k))
            .is_some_and(|v| v.as_object().is_some())
    }) {
        missing.push("/api/meters/aggregates (no site/battery/load/solar object)");
    }
    let soe = answer("/api/system_status/soe");
    if soe.and_then(|s| s.get("percentage")).is_none() {
        missing.push("/api/system_status/soe (no percentage)");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::BadReply(format!(
        "local API gave no usable {}",
        missing.join(" and ")
    )))
}

impl Source for Local {
    fn poll(&mut self) -> Result<Facade, Error> {
        let data = self.tick()?;
        Ok(map::local(&data))
    }

    fn probe(&mut self) -> Option<Result<(), Error>> {
        Some(self.client().and_then(LocalClient::probe))
    }

    fn cooldown_remaining(&self) -> Option<Duration> {
        self.client.as_ref().and_then(LocalClient::pause_remaining)
    }

    fn mode(&self) -> &'static str {
        if self.hybrid.is_some() {
            Mode::Hybrid.name()
        } else {
            Mode::Local.name()
        }
    }

    fn wanted(&mut self, paths: &[&'static str]) {
        self.wanted = paths.to_vec();
    }

    fn forwarder(&self) -> Option<Arc<Forwarder>> {
        self.client.as_ref().map(LocalClient::forwarder)
    }
}

/// One password, two possible meanings: TEDAPI first (as the gateway password), local mode (as
/// the customer password) when TEDAPI refuses it. Until one mode has worked, each refusal
/// switches to the other; after that the working mode is kept.
pub struct Auto {
    id: String,
    tedapi: GatewayConfig,
    local: GatewayConfig,
    current: Box<dyn Source>,
    on_local: bool,
    decided: bool,
}

impl Auto {
    pub fn new(cfg: GatewayConfig) -> Auto {
        let secret = cfg.gw_pwd.clone().or_else(|| cfg.password.clone());
        let tedapi = GatewayConfig {
            gw_pwd: secret.clone(),
            password: None,
            ..cfg.clone()
        };
        let local = GatewayConfig {
            gw_pwd: None,
            password: secret,
            ..cfg.clone()
        };
        log::info!(
            "gateway '{}': one password given: trying TEDAPI (gateway password) first, local \
             mode (customer password) if TEDAPI refuses it",
            cfg.id
        );
        Auto {
            id: cfg.id.clone(),
            current: Box::new(Tedapi::new(tedapi.clone())),
            tedapi,
            local,
            on_local: false,
            decided: false,
        }
    }

    fn switch(&mut self) {
        self.on_local = !self.on_local;
        self.current = if self.on_local {
            log::warn!(
                "gateway '{}': TEDAPI refused the password (or is not reachable at this \
                 address); using local mode with it as the customer password",
                self.id
            );
            Box::new(Local::new(self.local.clone()))
        } else {
            log::warn!(
                "gateway '{}': the local customer login refused the password too; trying \
                 TEDAPI again",
                self.id
            );
            Box::new(Tedapi::new(self.tedapi.clone()))
        };
    }
}

impl Source for Auto {
    fn poll(&mut self) -> Result<Facade, Error> {
        match self.current.poll() {
            Ok(f) => {
                if !self.decided {
                    log::info!(
                        "gateway '{}': mode chosen: {} ({})",
                        self.id,
                        self.current.mode(),
                        if self.on_local {
                            "TEDAPI refused the password, the customer login accepted it"
                        } else {
                            "TEDAPI accepted the password"
                        }
                    );
                    self.decided = true;
                }
                Ok(f)
            }
            // Refused credentials, or no such endpoint (TEDAPI on a LAN address, or no local
            // API): the password is not for this mode.
            Err(Error::Auth | Error::Http(404)) if !self.decided => {
                self.switch();
                if self.on_local {
                    // Try the other meaning at once, so the first tick can already succeed.
                    self.poll()
                } else {
                    Err(Error::Auth)
                }
            }
            Err(e) if !self.decided => {
                log::debug!(
                    "gateway '{}': {} not decided yet: {e}",
                    self.id,
                    self.current.mode()
                );
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn probe(&mut self) -> Option<Result<(), Error>> {
        self.current.probe()
    }

    fn settings_changed(&mut self) {
        self.current.settings_changed()
    }

    fn wanted(&mut self, paths: &[&'static str]) {
        self.current.wanted(paths)
    }

    fn cooldown_remaining(&self) -> Option<Duration> {
        self.current.cooldown_remaining()
    }

    fn mode(&self) -> &'static str {
        self.current.mode()
    }

    fn forwarder(&self) -> Option<Arc<Forwarder>> {
        self.current.forwarder()
    }
}
