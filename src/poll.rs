//! One poller thread per gateway: fetch on a fixed tick, render once, publish a snapshot.
//!
//! The gateway's transport is a [`source::Source`] (TEDAPI today); it returns one facade per
//! tick. After a good tick the poller renders every legacy body once, adds a history point and
//! swaps the snapshot in. Failures back off 5 → 10 → 30 → 60 → 120 s (never faster than the
//! tick); a 429/503 cooldown is honoured with no gateway traffic. A slow or dead gateway only
//! ever delays its own thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::config::GatewayConfig;
use crate::gateway::source;
use crate::http::legacy;
use crate::snapshot::{GatewaySnapshot, Good, Health, HistoryRing, Hub};
use crate::summary::Summary;

/// Back-off after consecutive failures.
const BACKOFF: [u64; 5] = [5, 10, 30, 60, 120];

/// The back-off before the next attempt after `failures` consecutive failures.
pub fn backoff(failures: u32, tick: Duration) -> Duration {
    let i = (failures.max(1) as usize - 1).min(BACKOFF.len() - 1);
    Duration::from_secs(BACKOFF[i]).max(tick)
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

fn run(idx: usize, cfg: GatewayConfig, hub: Arc<Hub>, stop: Arc<AtomicBool>) {
    let mut health = Health::default();
    let mut good: Option<Good> = None;
    let mut source = source::build(&cfg);
    let mut history = HistoryRing::default();
    log::info!(
        "gateway '{}': polling {} every {:?}",
        cfg.id,
        cfg.host,
        cfg.poll_interval
    );
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        health.last_attempt = Some(SystemTime::now());
        let result = source.poll();
        health.poll_durations.observe(started.elapsed());
        let wait = match result {
            Ok(facade) => {
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
                let cooldown = source.cooldown_remaining();
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
                // `auto` publishes the mode it is trying or has chosen.
                mode: crate::config::Mode::parse(source.mode()).unwrap_or(cfg.mode),
                forward: source.forwarder(),
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
