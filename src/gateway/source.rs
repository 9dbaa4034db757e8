//! A gateway transport as the poller sees it: one call per tick that yields a facade.
//!
//! Each mode (TEDAPI, local, v1r, cloud) keeps its own connection state between ticks and
//! decides what to fetch when. `crate::transport::build` picks the mode from the gateway's
//! configuration; the poller never knows which one it drives. This module holds the trait, the
//! Basic-auth TEDAPI source and the per-tick TEDAPI sequence ([`tick`]) that v1r reuses; it
//! builds nothing (so `gateway` never needs `cloud`).

use std::sync::Arc;

use std::time::{Duration, Instant, SystemTime};

use super::facade::Facade;
use super::native::Native;
use super::queries::QuerySet;
use super::tedapi::{Client, ClientOptions, Error};
use super::{map, Firmware, TedapiData};
use crate::config::GatewayConfig;
use crate::json::{Packed, Value};

/// Most Powerwall 3 blocks asked for components per tick: the list comes from the gateway's
/// `config.json`, so it must not decide how many requests a tick makes (Tesla sites have at most
/// a handful).
const MAX_PW3_BLOCKS: usize = 16;

/// How often config, firmware and the gateway's components are re-read.
const SLOW_REFRESH: Duration = Duration::from_secs(60);

/// A gateway transport driven by a poller thread.
pub trait Source: Send {
    /// Fetches what this tick needs and maps it; the first error ends the tick.
    fn poll(&mut self) -> Result<Facade, Error>;
    /// One cheap request that tells whether a gateway that stopped answering answers again
    /// (the poller sends it each interval while the gateway is down, and polls at once when it
    /// succeeds). `None`: this transport has no cheap probe; the poller keeps its back-off.
    fn probe(&mut self) -> Option<Result<(), Error>> {
        None
    }
    /// Time left of a gateway-imposed cooldown (no traffic until it ends).
    fn cooldown_remaining(&self) -> Option<Duration>;
    /// Mode name shown in the API (`tedapi`, `local`, `v1r`, `cloud`, …).
    fn mode(&self) -> &'static str;
    /// The login session the proxy's fallback branch forwards non-`/api` paths with (local
    /// modes only).
    fn forwarder(&self) -> Option<std::sync::Arc<super::local::Forwarder>> {
        None
    }
    /// A control write changed the gateway's settings: the next poll re-reads what it
    /// otherwise refreshes once a minute (`config.json`), so reads show the new values at once.
    fn settings_changed(&mut self) {}
    /// The pass-through paths clients asked for lately: a transport that otherwise refreshes
    /// them once a minute (local mode) reads these each tick.
    fn wanted(&mut self, _paths: &[&'static str]) {}
}

/// pypowerwall 0.22.2 falls back to the last non-empty git hash when a firmware answer has none.
pub fn keep_githash(mut fresh: Firmware, previous: Option<&Firmware>) -> Firmware {
    if fresh.githash.is_empty() {
        if let Some(old) = previous.filter(|o| !o.githash.is_empty()) {
            fresh.githash = old.githash.clone();
        }
    }
    fresh
}

/// The TEDAPI calls one poll makes, whichever transport carries them (Basic-auth TEDAPI here,
/// RSA-signed v1r in `gateway::v1r`).
pub(crate) trait Fetch {
    /// `GET /`: is the gateway a Powerwall 3?
    fn detect_pw3(&mut self) -> Result<bool, Error>;
    fn din(&mut self) -> Result<String, Error>;
    fn config(&mut self, din: &str) -> Result<Value, Error>;
    fn firmware(&mut self, din: &str) -> Result<Firmware, Error>;
    fn components(&mut self, din: &str, via_leader: Option<&str>) -> Result<Value, Error>;
    fn status(&mut self, din: &str) -> Result<Value, Error>;
    fn controller(&mut self, din: &str) -> Result<Value, Error>;
}

impl Fetch for Client {
    fn detect_pw3(&mut self) -> Result<bool, Error> {
        Client::detect_pw3(self)
    }
    fn din(&mut self) -> Result<String, Error> {
        Client::din(self)
    }
    fn config(&mut self, din: &str) -> Result<Value, Error> {
        Client::config(self, din)
    }
    fn firmware(&mut self, din: &str) -> Result<Firmware, Error> {
        Client::firmware(self, din)
    }
    fn components(&mut self, din: &str, via_leader: Option<&str>) -> Result<Value, Error> {
        Client::components(self, din, via_leader)
    }
    fn status(&mut self, din: &str) -> Result<Value, Error> {
        Client::status(self, din)
    }
    fn controller(&mut self, din: &str) -> Result<Value, Error> {
        Client::controller(self, din)
    }
}

/// Maps one poll's documents with the mapper of the query set that fetched them.
pub(crate) fn map_data(data: &TedapiData, set: QuerySet) -> Facade {
    match set {
        QuerySet::V2024_06 => map::tedapi(data),
        QuerySet::V2026_06 => map::v2026::tedapi(data),
    }
}

/// TEDAPI over HTTPS with the gateway password (the proxy's "Local (full)").
pub struct Tedapi {
    cfg: GatewayConfig,
    link: Option<Link<Client>>,
}

impl Tedapi {
    pub fn new(cfg: GatewayConfig) -> Tedapi {
        Tedapi { cfg, link: None }
    }
}

/// The connection state of a TEDAPI source, made on first use (no network traffic).
fn link<'a>(
    link: &'a mut Option<Link<Client>>,
    cfg: &GatewayConfig,
) -> Result<&'a mut Link<Client>, Error> {
    if link.is_none() {
        let opts = options(cfg);
        let client = Client::new(opts.clone())?;
        let native = Native::new(&opts, client.agent().clone());
        *link = Some(Link::new(client, native.ok().map(|n| n.named(&cfg.id))));
    }
    link.as_mut().ok_or(Error::BadReply("no link".into()))
}

impl Source for Tedapi {
    fn poll(&mut self) -> Result<Facade, Error> {
        let data = tick(link(&mut self.link, &self.cfg)?, &self.cfg)?;
        Ok(map_data(&data, self.cfg.query_set))
    }

    fn probe(&mut self) -> Option<Result<(), Error>> {
        Some(link(&mut self.link, &self.cfg).and_then(|l| l.client.probe()))
    }

    fn cooldown_remaining(&self) -> Option<Duration> {
        self.link
            .as_ref()
            .and_then(|l| l.client.cooldown_remaining())
    }

    fn mode(&self) -> &'static str {
        "tedapi"
    }

    fn settings_changed(&mut self) {
        if let Some(l) = self.link.as_mut() {
            l.settings_changed();
        }
    }
}

/// Raw state kept between ticks.
pub(crate) struct Link<C> {
    pub(crate) client: C,
    native: Option<Native>,
    din: Option<String>,
    pw3: bool,
    config: Option<Arc<Value>>,
    firmware: Option<Firmware>,
    components: Option<Arc<Packed>>,
    slow_at: Option<Instant>,
    battery_components: Vec<(String, Value)>,
    /// The gateway start time held across ticks of one boot.
    boot: Option<map::BootHold>,
}

impl<C: Fetch> Link<C> {
    pub(crate) fn new(client: C, native: Option<Native>) -> Link<C> {
        Link {
            client,
            native,
            din: None,
            pw3: false,
            config: None,
            firmware: None,
            components: None,
            slow_at: None,
            battery_components: Vec::new(),
            boot: None,
        }
    }
}

impl<C> Link<C> {
    /// The next tick re-reads config, firmware and components.
    pub(crate) fn settings_changed(&mut self) {
        self.slow_at = None;
    }

    /// The native `/api/meters/aggregates` fetcher of this link (tests).
    #[cfg(all(test, feature = "v1r"))]
    pub(crate) fn native(&self) -> Option<&Native> {
        self.native.as_ref()
    }
}

pub(crate) fn options(cfg: &GatewayConfig) -> ClientOptions {
    let mut o = ClientOptions::new(cfg.host.clone(), cfg.gw_pwd.clone().unwrap_or_default());
    o.timeout = cfg.timeout;
    o.pin = cfg.tls_fingerprint;
    o.query_set = cfg.query_set;
    o
}

fn is_pw3_block(b: &Value) -> bool {
    b.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.contains("Powerwall3"))
}

/// A status answer must carry what the metric routes are built from; a valid reply whose JSON is
/// broken (decoded as `{}`) or lacks these is a failed poll, not a good poll with empty data.
pub(crate) fn require_status(status: &Value) -> Result<(), Error> {
    let control = status.get("control");
    let missing: Vec<&str> = [
        ("systemStatus", "control.systemStatus (battery energy)"),
        ("meterAggregates", "control.meterAggregates (power flows)"),
    ]
    .into_iter()
    .filter(|(key, _)| control.and_then(|c| c.get(key)).is_none())
    .map(|(_, what)| what)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::BadReply(format!(
        "status query answer lacks {}",
        missing.join(" and ")
    )))
}

/// A controller answer must be a non-empty object (broken JSON decodes as `{}`).
pub(crate) fn require_controller(controller: &Value) -> Result<(), Error> {
    match controller.as_object() {
        Some(m) if !m.is_empty() => Ok(()),
        _ => Err(Error::BadReply(
            "controller query answer is empty (no JSON object in the payload)".into(),
        )),
    }
}

/// The first [`MAX_PW3_BLOCKS`] Powerwall 3 blocks (a debug line names the gateway when more
/// were listed; this runs every tick).
fn cap_blocks(mut blocks: Vec<String>, id: &str) -> Vec<String> {
    if blocks.len() > MAX_PW3_BLOCKS {
        log::debug!(
            "gateway '{id}': config.json lists {} Powerwall 3 blocks; asking the first \
             {MAX_PW3_BLOCKS} only",
            blocks.len()
        );
        blocks.truncate(MAX_PW3_BLOCKS);
    }
    blocks
}

/// One poll: everything the mapping needs, or the first error.
pub(crate) fn tick<C: Fetch>(l: &mut Link<C>, cfg: &GatewayConfig) -> Result<TedapiData, Error> {
    let din = match &l.din {
        Some(d) => d.clone(),
        None => {
            l.pw3 = l.client.detect_pw3().unwrap_or(l.pw3);
            let d = l.client.din()?;
            log::info!(
                "gateway '{}': connected, {} ({})",
                cfg.id,
                d,
                if l.pw3 {
                    "Powerwall 3"
                } else {
                    "Powerwall 2/+"
                }
            );
            l.din = Some(d.clone());
            d
        }
    };
    let slow_due = l.slow_at.is_none_or(|t| t.elapsed() >= SLOW_REFRESH) || l.config.is_none();
    if slow_due {
        match l.client.config(&din) {
            Ok(c) => l.config = Some(Arc::new(c)),
            Err(e) if l.config.is_some() => log::debug!("gateway '{}': config: {e}", cfg.id),
            Err(e) => return Err(e),
        }
        match l.client.firmware(&din) {
            Ok(f) => l.firmware = Some(keep_githash(f, l.firmware.as_ref())),
            Err(Error::Cooldown { .. }) => {}
            Err(e) => log::debug!("gateway '{}': firmware: {e}", cfg.id),
        }
        match l.client.components(&din, None) {
            Ok(c) => l.components = Some(Arc::new(Packed::new(&c))),
            Err(e) => log::debug!("gateway '{}': components: {e}", cfg.id),
        }
        l.slow_at = Some(Instant::now());
    }
    let status = l.client.status(&din)?;
    require_status(&status)?;
    // V2026_06 has one DeviceControllerQuery for both roles: ask once.
    let controller = match cfg.query_set {
        QuerySet::V2026_06 => status.clone(),
        QuerySet::V2024_06 => {
            let c = l.client.controller(&din)?;
            require_controller(&c)?;
            c
        }
    };

    if l.pw3 {
        let blocks: Vec<String> = l
            .config
            .as_ref()
            .and_then(|c| c.get("battery_blocks"))
            .and_then(Value::as_array)
            .map(|bs| {
                bs.iter()
                    .filter(|b| is_pw3_block(b))
                    .filter_map(|b| b.get("vin").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let blocks = cap_blocks(blocks, &cfg.id);
        let routed = blocks.len() > 1;
        let mut fresh = Vec::with_capacity(blocks.len());
        for bdin in blocks {
            let via = routed.then_some(din.as_str());
            match l.client.components(&bdin, via) {
                Ok(v) => fresh.push((bdin, v)),
                Err(e @ Error::Cooldown { .. }) => return Err(e),
                Err(e) => {
                    log::debug!("gateway '{}': components of {bdin}: {e}", cfg.id);
                    // Keep the last good answer for this Powerwall.
                    if let Some(old) = l.battery_components.iter().find(|(d, _)| *d == bdin) {
                        fresh.push(old.clone());
                    }
                }
            }
        }
        l.battery_components = fresh;
    }

    let native_aggregates = l
        .native
        .as_mut()
        .and_then(|n| n.fetch_aggregates(Instant::now()));

    l.boot = map::boot_hold(&controller, l.boot);
    Ok(TedapiData {
        boot: l.boot,
        host: cfg.host.clone(),
        din,
        pw3: l.pw3,
        config: l.config.clone(),
        status: Some(Arc::new(status)),
        controller: Some(Arc::new(controller)),
        components: l.components.clone(),
        battery_components: l.battery_components.clone(),
        firmware: l.firmware.clone(),
        native_aggregates,
        timestamp: crate::clock::unix_f64(SystemTime::now()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_cannot_make_a_tick_ask_for_unbounded_blocks() {
        let many: Vec<String> = (0..10_000).map(|i| format!("B{i}")).collect();
        let capped = cap_blocks(many, "gw");
        assert_eq!(capped.len(), MAX_PW3_BLOCKS);
        assert_eq!(capped[0], "B0");
        assert_eq!(cap_blocks(vec!["A".into()], "gw"), vec!["A".to_string()]);
    }

    #[test]
    fn a_status_without_the_required_values_is_an_error_naming_them() {
        let parse = |s: &str| crate::json::parse(s).unwrap();
        assert!(require_status(&parse(
            r#"{"control": {"systemStatus": {}, "meterAggregates": []}}"#
        ))
        .is_ok());
        let e = require_status(&parse("{}")).unwrap_err().to_string();
        assert!(e.contains("control.systemStatus") && e.contains("control.meterAggregates"));
        let e = require_status(&parse(r#"{"control": {"systemStatus": {}}}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("meterAggregates") && !e.contains("systemStatus"),
            "{e}"
        );
        assert!(require_controller(&parse("{}")).is_err());
        assert!(require_controller(&parse("[1]")).is_err());
        assert!(require_controller(&parse(r#"{"esCan": {}}"#)).is_ok());
    }

    #[test]
    fn an_empty_git_hash_keeps_the_last_one() {
        let old = Firmware {
            githash: vec![0x7d, 0x8f],
            ..Firmware::default()
        };
        let fresh = Firmware {
            version: "25.10.1 7d8f0a8b".into(),
            ..Firmware::default()
        };
        assert_eq!(
            keep_githash(fresh.clone(), Some(&old)).githash,
            vec![0x7d, 0x8f]
        );
        assert!(keep_githash(fresh, None).githash.is_empty());
    }
}
