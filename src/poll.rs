//! One poller thread per gateway: fetch on a fixed tick, map once, publish a snapshot.
//!
//! Each tick makes one status (basic) and one device-controller (full) query; PW3 sites add one
//! components query per Powerwall. Config, firmware and the gateway's own components answer are
//! refreshed at start and then at most once a minute. After a good tick the poller maps the raw
//! documents to a facade, renders every legacy body once, and swaps the snapshot in. Failures
//! back off 5 → 10 → 30 → 60 → 120 s (never faster than the tick); a 429/503 cooldown is honoured
//! with no gateway traffic. A slow or dead gateway only ever delays its own thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::config::GatewayConfig;
use crate::gateway::native::Native;
use crate::gateway::tedapi::{Client, ClientOptions, Error};
use crate::gateway::{map, Firmware, TedapiData};
use crate::http::legacy;
use crate::json::Value;
use crate::snapshot::{GatewaySnapshot, Good, Health, HistoryRing, Hub};
use crate::summary::Summary;

/// How often config, firmware and the gateway's components are re-read.
const SLOW_REFRESH: Duration = Duration::from_secs(60);

/// Back-off after consecutive failures.
const BACKOFF: [u64; 5] = [5, 10, 30, 60, 120];

/// The back-off before the next attempt after `failures` consecutive failures.
pub fn backoff(failures: u32, tick: Duration) -> Duration {
    let i = (failures.max(1) as usize - 1).min(BACKOFF.len() - 1);
    Duration::from_secs(BACKOFF[i]).max(tick)
}

/// Raw state kept between ticks.
struct Link {
    client: Client,
    native: Option<Native>,
    din: Option<String>,
    pw3: bool,
    config: Option<Value>,
    firmware: Option<Firmware>,
    components: Option<Value>,
    slow_at: Option<Instant>,
    battery_components: Vec<(String, Value)>,
}

/// A running poller.
pub struct Poller {
    pub handle: JoinHandle<()>,
}

/// Starts the poller of gateway `idx`; it stops when `stop` is set.
pub fn spawn(idx: usize, cfg: GatewayConfig, hub: Arc<Hub>, stop: Arc<AtomicBool>) -> Poller {
    let handle = std::thread::Builder::new()
        .name(format!("poll-{}", cfg.id))
        .spawn(move || run(idx, cfg, hub, stop))
        // Spawning fails only when the OS is out of threads at start-up.
        .expect("spawning a poller thread");
    Poller { handle }
}

fn options(cfg: &GatewayConfig) -> ClientOptions {
    let mut o = ClientOptions::new(cfg.host.clone(), cfg.gw_pwd.clone().unwrap_or_default());
    o.timeout = cfg.timeout;
    o.pin = cfg.tls_fingerprint;
    o.query_set = cfg.query_set;
    o
}

fn run(idx: usize, cfg: GatewayConfig, hub: Arc<Hub>, stop: Arc<AtomicBool>) {
    let mut health = Health::default();
    let mut good: Option<Good> = None;
    let mut link: Option<Link> = None;
    let mut history = HistoryRing::default();
    let opts = options(&cfg);
    log::info!(
        "gateway '{}': polling {} every {:?}",
        cfg.id,
        cfg.host,
        cfg.poll_interval
    );
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        health.last_attempt = Some(SystemTime::now());
        let result = match link.as_mut() {
            Some(l) => tick(l, &cfg),
            None => match Client::new(opts.clone()) {
                Ok(client) => {
                    let native = Native::new(&opts).ok();
                    let l = link.insert(Link {
                        client,
                        native,
                        din: None,
                        pw3: false,
                        config: None,
                        firmware: None,
                        components: None,
                        slow_at: None,
                        battery_components: Vec::new(),
                    });
                    tick(l, &cfg)
                }
                Err(e) => Err(e),
            },
        };
        let wait = match result {
            Ok(data) => {
                let facade = map::tedapi(&data);
                let bodies = legacy::render(&facade, &hub.settings, true);
                let summary = Summary::from_facade(&facade, &hub.settings);
                history.add(crate::clock::unix_secs(SystemTime::now()), &summary);
                good = Some(Good {
                    facade: Arc::new(facade),
                    bodies: Arc::new(bodies),
                    summary,
                    at: Instant::now(),
                });
                if health.consecutive_failures > 0 {
                    log::info!("gateway '{}': back online", cfg.id);
                }
                health.consecutive_failures = 0;
                health.total_successes += 1;
                health.last_success = Some(SystemTime::now());
                health.last_error = None;
                health.cooldown_until = None;
                cfg.poll_interval
            }
            Err(e) => {
                health.consecutive_failures += 1;
                health.total_failures += 1;
                health.last_error = Some(e.to_string());
                let cooldown = link.as_ref().and_then(|l| l.client.cooldown_remaining());
                health.cooldown_until = cooldown.map(|d| SystemTime::now() + d);
                let wait = cooldown
                    .unwrap_or_else(|| backoff(health.consecutive_failures, cfg.poll_interval));
                if health.consecutive_failures == 1 || health.consecutive_failures % 10 == 0 {
                    log::warn!(
                        "gateway '{}': poll failed ({} in a row): {e}; next try in {:?}",
                        cfg.id,
                        health.consecutive_failures,
                        wait
                    );
                }
                wait
            }
        };
        let next = started + wait;
        health.next_retry =
            Some(SystemTime::now() + next.saturating_duration_since(Instant::now()));
        hub.publish(
            idx,
            GatewaySnapshot {
                id: cfg.id.clone(),
                name: cfg.name.clone(),
                host: cfg.host.clone(),
                simulated: cfg.simulated,
                health: health.clone(),
                good: good.clone(),
                history: history.published(),
            },
        );
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::park_timeout((next - now).min(Duration::from_millis(200)));
        }
    }
}

fn is_pw3_block(b: &Value) -> bool {
    b.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.contains("Powerwall3"))
}

/// One poll: everything the mapping needs, or the first error.
fn tick(l: &mut Link, cfg: &GatewayConfig) -> Result<TedapiData, Error> {
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
            Ok(c) => l.config = Some(c),
            Err(e) if l.config.is_some() => log::debug!("gateway '{}': config: {e}", cfg.id),
            Err(e) => return Err(e),
        }
        match l.client.firmware(&din) {
            Ok(f) => l.firmware = Some(f),
            Err(Error::Cooldown { .. }) => {}
            Err(e) => log::debug!("gateway '{}': firmware: {e}", cfg.id),
        }
        match l.client.components(&din, None) {
            Ok(c) => l.components = Some(c),
            Err(e) => log::debug!("gateway '{}': components: {e}", cfg.id),
        }
        l.slow_at = Some(Instant::now());
    }
    let status = l.client.status(&din)?;
    let controller = l.client.controller(&din)?;

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

    Ok(TedapiData {
        host: cfg.host.clone(),
        din,
        pw3: l.pw3,
        config: l.config.clone(),
        status: Some(status),
        controller: Some(controller),
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
    fn backoff_schedule() {
        let t = Duration::from_secs(5);
        let got: Vec<u64> = (1..=7).map(|n| backoff(n, t).as_secs()).collect();
        assert_eq!(got, [5, 10, 30, 60, 120, 120, 120]);
        assert_eq!(backoff(1, Duration::from_secs(15)).as_secs(), 15);
    }
}
