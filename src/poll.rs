//! One poller thread per gateway: fetch on a fixed tick, render once, publish a snapshot.
//!
//! The gateway's transport is a [`crate::gateway::source::Source`] (built by
//! [`crate::transport::build`]); it returns one facade per tick. After a good tick the poller
//! has `render::tick` make every output once, adds a history point and swaps the snapshot in.
//! Failures back off 5 → 10 → 30 → 60 → 120 s (never faster than the tick); a 429/503 cooldown
//! (its length from `Retry-After` when the gateway sends one) is honoured with no gateway
//! traffic. While a gateway does not answer at all (refused, timed out), the source's cheap
//! probe is sent once per tick between the back-off's full polls, and a probe that is answered
//! starts a full poll at once, so fresh data is back within two ticks of the gateway returning.
//! A slow or dead gateway only ever delays its own thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::config::GatewayConfig;
use crate::gateway::facade::Facade;
use crate::gateway::tedapi as source_error;
use crate::history::{Published, Recorder, Sample, Zone};
use crate::render::summary::Summary;
use crate::snapshot::{GatewaySnapshot, Good, Health, History, Hub};

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

/// Starts the poller of gateway `idx`; it stops when `stop` is set. Fails (naming the gateway)
/// when the OS refuses another thread.
pub fn spawn(
    idx: usize,
    cfg: GatewayConfig,
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    keeper: Keeper,
) -> Result<Poller, String> {
    let builder = std::thread::Builder::new().name(format!("poll-{}", cfg.id));
    let id = cfg.id.clone();
    let handle = spawn_thread(builder, &id, move || run(idx, cfg, hub, stop, keeper))?;
    Ok(Poller { handle })
}

/// Spawns the thread of gateway `id`'s poller, or says why it could not.
fn spawn_thread(
    builder: std::thread::Builder,
    id: &str,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, String> {
    builder
        .spawn(body)
        .map_err(|e| format!("gateway '{id}': cannot start its poller thread: {e}"))
}

/// Whether an error means the gateway did not answer at all (so a cheap probe can tell when
/// it is back), rather than answering wrongly.
fn is_down(e: &source_error::Error) -> bool {
    matches!(
        e,
        source_error::Error::Unreachable(_) | source_error::Error::Timeout
    )
}

/// What the next attempt of a failing poller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// Poll everything.
    Full,
    /// Send the cheap probe; poll everything only if it is answered.
    Probe,
}

/// The next attempt after a failure at `now`: a full poll when the back-off is over (`full_at`),
/// a probe each tick while the gateway is down and the source can probe, else the back-off.
/// Returns the attempt and when to make it.
fn after_failure(
    now: Instant,
    full_at: Instant,
    down: bool,
    can_probe: bool,
    tick: Duration,
) -> (Attempt, Instant) {
    let probe_at = now + tick;
    if down && can_probe && probe_at < full_at {
        (Attempt::Probe, probe_at)
    } else {
        (Attempt::Full, full_at.max(probe_at))
    }
}

/// A pass-through path asked for within this long is read every tick (local mode).
const DEMAND_WINDOW: Duration = Duration::from_secs(300);

fn run(idx: usize, cfg: GatewayConfig, hub: Arc<Hub>, stop: Arc<AtomicBool>, mut keeper: Keeper) {
    let mut health = Health::default();
    let mut good: Option<Good> = None;
    let mut source = crate::transport::build(&cfg);
    log::info!(
        "gateway '{}': polling {} every {:?}",
        cfg.id,
        cfg.host,
        cfg.poll_interval
    );
    // Many gateways start their polls spread over one interval instead of all at once, and
    // keep that phase (1,000 TLS handshakes in the same instant time out against real gateways
    // and simulators alike); a few gateways start within a fraction of a second.
    let offset = start_offset(idx, hub.len(), cfg.poll_interval);
    let begin = Instant::now() + offset;
    while !stop.load(Ordering::Relaxed) && Instant::now() < begin {
        std::thread::park_timeout(
            begin
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200)),
        );
    }
    let mut attempt = Attempt::Full;
    // When the back-off allows the next full poll, and whether the source has a probe.
    let mut full_at = Instant::now();
    let mut can_probe = true;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        health.last_attempt = Some(SystemTime::now());
        // `probed`: the probe itself failed (no full poll was made).
        source.wanted(&hub.demand(idx, DEMAND_WINDOW));
        let (result, probed) = match attempt {
            Attempt::Full => (source.poll(), false),
            Attempt::Probe => match source.probe() {
                Some(Ok(())) => {
                    log::info!("gateway '{}': answers again; polling now", cfg.id);
                    (source.poll(), false)
                }
                Some(Err(e)) => (Err(e), true),
                None => {
                    can_probe = false;
                    (source.poll(), false)
                }
            },
        };
        if !probed {
            health.poll_durations.observe(started.elapsed());
        }
        let next = match result {
            Ok(facade) => {
                // Every output of this tick, rendered once.
                let facade = Arc::new(facade);
                let out = crate::render::tick(&facade, &hub.settings);
                let now = crate::clock::unix_f64(SystemTime::now());
                keeper.tick(&cfg.id, now, &facade, &out.summary);
                good = Some(Good {
                    facade,
                    bodies: out.bodies,
                    summary: out.summary,
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
                attempt = Attempt::Full;
                started + cfg.poll_interval
            }
            Err(e) => {
                // A failed probe is not another failed poll: the back-off does not grow.
                if !probed {
                    health.consecutive_failures += 1;
                    health.total_failures += 1;
                    full_at = started + backoff(health.consecutive_failures, cfg.poll_interval);
                }
                health.last_error = Some(e.to_string());
                let cooldown = source.cooldown_remaining();
                health.cooldown_until = cooldown.map(|d| SystemTime::now() + d);
                let (next_attempt, at) = match cooldown {
                    // No traffic at all until the cooldown ends, then a full poll.
                    Some(d) => (Attempt::Full, Instant::now() + d),
                    None => {
                        after_failure(started, full_at, is_down(&e), can_probe, cfg.poll_interval)
                    }
                };
                attempt = next_attempt;
                if !probed
                    && (health.consecutive_failures == 1 || health.consecutive_failures % 10 == 0)
                {
                    log::warn!(
                        "gateway '{}': poll failed ({} in a row): {e}; next {} in {:?}",
                        cfg.id,
                        health.consecutive_failures,
                        match attempt {
                            Attempt::Full => "poll",
                            Attempt::Probe => "probe",
                        },
                        at.saturating_duration_since(Instant::now())
                    );
                }
                at
            }
        };
        health.next_retry =
            Some(SystemTime::now() + next.saturating_duration_since(Instant::now()));
        hub.publish(
            idx,
            GatewaySnapshot {
                id: cfg.id.clone(),
                name: cfg.name.clone(),
                host: cfg.host.clone(),
                simulated: cfg.simulated,
                solar_only: cfg.solar_only,
                // `auto` publishes the mode it is trying or has chosen.
                mode: crate::config::Mode::parse(source.mode()).unwrap_or(cfg.mode),
                forward: source.forwarder(),
                health: health.clone(),
                good: good.clone(),
                history: keeper.history.clone(),
                series: Some(keeper.series.clone()),
            },
        );
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if hub.take_settings_changed(idx) {
                // A control write: show its result now rather than at the next tick.
                source.settings_changed();
                attempt = Attempt::Full;
                break;
            }
            if now >= next {
                break;
            }
            std::thread::park_timeout((next - now).min(Duration::from_millis(200)));
        }
    }
    // Shutdown (SIGTERM/SIGINT or `App::stop`): the last batch goes to disk.
    keeper.flush();
}

/// When gateway `idx` of `n` makes its first poll: `idx` steps of `interval / n`, but no more
/// than 20 ms per step, so the first polls of many gateways fill one interval evenly.
fn start_offset(idx: usize, n: usize, interval: Duration) -> Duration {
    let step = (interval / n.max(1) as u32).min(Duration::from_millis(20));
    step * idx.min(n) as u32
}

/// A poller's energy history: its recorder, the flush schedule and what it last published.
pub struct Keeper {
    rec: Recorder,
    flush_every: Duration,
    last_flush: Instant,
    /// `PW_TIMEZONE` was given: the gateway's own zone is not looked at.
    zone_fixed: bool,
    zone_checked: bool,
    simulated: bool,
    /// The step (`ts / PW_HISTORY_STEP`) of the last publication, and its number.
    published_step: i64,
    seq: u64,
    /// Published with every snapshot (cheap clones).
    pub series: Arc<Published>,
    pub history: Arc<History>,
}

impl Keeper {
    /// The keeper of gateway `id` around `rec` (already loaded from its file).
    pub fn new(
        id: &str,
        rec: Recorder,
        flush_every: Duration,
        zone_fixed: bool,
        simulated: bool,
    ) -> Result<Keeper, crate::history::HistoryError> {
        let series = Arc::new(rec.publish(0, simulated)?);
        let history = Arc::new(History::new(id, Some(series.clone()), None));
        Ok(Keeper {
            rec,
            flush_every,
            last_flush: Instant::now(),
            zone_fixed,
            zone_checked: false,
            simulated,
            published_step: i64::MIN,
            seq: 0,
            series,
            history,
        })
    }

    /// Records one good tick at Unix time `now`; publishes when a step completed and flushes
    /// every `PW_HISTORY_FLUSH`.
    fn tick(&mut self, id: &str, now: f64, facade: &Facade, summary: &Summary) {
        if !self.zone_fixed && !self.zone_checked {
            self.zone_checked = true;
            if let Some(name) = gateway_zone(facade) {
                match Zone::named(name) {
                    Ok(z) => {
                        log::info!("gateway '{id}': history days end at midnight {name}");
                        self.rec.set_zone(z);
                    }
                    Err(e) => log::warn!(
                        "gateway '{id}': installation_time_zone {e}: history days stay in {} \
                         (set PW_TIMEZONE)",
                        self.rec.zone().name()
                    ),
                }
            }
        }
        let aggregates = facade.api("/api/meters/aggregates");
        self.rec
            .record(&Sample::from_summary(now, summary, aggregates));
        let step = (now.floor() as i64).div_euclid(i64::from(self.rec.step()));
        let due = self.last_flush.elapsed() >= self.flush_every;
        if due {
            self.flush();
        }
        if due || step != self.published_step {
            self.published_step = step;
            self.republish(id, Some(summary));
        }
    }

    fn republish(&mut self, id: &str, summary: Option<&Summary>) {
        self.seq += 1;
        match self.rec.publish(self.seq, self.simulated) {
            Ok(p) => self.series = Arc::new(p),
            // Readers keep the last copy; the recorder itself goes on recording.
            Err(e) => log::warn!("gateway '{id}': history not republished: {e}"),
        }
        let full = summary.and_then(|s| s.full_pack_energy);
        self.history = Arc::new(History::new(id, Some(self.series.clone()), full));
    }

    /// Writes the pending batch (memory only: nothing). Errors are logged by the recorder
    /// (once per failure streak) and shown in `/api/timeseries/status`.
    pub fn flush(&mut self) {
        let _ = self.rec.flush();
        self.last_flush = Instant::now();
    }
}

/// The gateway's own IANA zone (`/api/site_info` `timezone`, the cloud's
/// `installation_time_zone`), when it reports one.
fn gateway_zone(facade: &Facade) -> Option<&str> {
    ["/api/site_info", "/api/site_info/site_name"]
        .iter()
        .find_map(|uri| facade.api(uri)?.get("timezone")?.as_str())
        .filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_polls_spread_over_one_interval() {
        let t = Duration::from_secs(5);
        assert_eq!(start_offset(0, 1, t), Duration::ZERO);
        assert_eq!(start_offset(1, 2, t), Duration::from_millis(20));
        assert_eq!(start_offset(999, 1000, t), Duration::from_millis(4995));
        assert!(start_offset(usize::MAX, 1000, t) <= t);
    }

    #[test]
    fn backoff_schedule() {
        let t = Duration::from_secs(5);
        let got: Vec<u64> = (1..=7).map(|n| backoff(n, t).as_secs()).collect();
        assert_eq!(got, [5, 10, 30, 60, 120, 120, 120]);
        assert_eq!(backoff(1, Duration::from_secs(15)).as_secs(), 15);
    }

    #[test]
    fn a_poller_that_cannot_start_is_an_error_naming_the_gateway() {
        // A stack no system can map makes the spawn fail, as an exhausted OS would.
        let builder = std::thread::Builder::new().stack_size(usize::MAX / 2);
        let e = spawn_thread(builder, "house", || {}).expect_err("the spawn fails");
        assert!(
            e.starts_with("gateway 'house': cannot start its poller thread: "),
            "{e}"
        );
    }

    #[test]
    fn a_down_gateway_is_probed_each_tick_until_the_full_poll_is_due() {
        let t0 = Instant::now();
        let tick = Duration::from_secs(5);
        let full_at = t0 + Duration::from_secs(30);
        assert_eq!(
            after_failure(t0, full_at, true, true, tick),
            (Attempt::Probe, t0 + tick)
        );
        // Answering wrongly (not down), or no probe: the back-off alone.
        assert_eq!(
            after_failure(t0, full_at, false, true, tick),
            (Attempt::Full, full_at)
        );
        assert_eq!(
            after_failure(t0, full_at, true, false, tick),
            (Attempt::Full, full_at)
        );
        // The full poll is due within a tick: no probe before it, and never faster than a tick.
        let soon = t0 + Duration::from_secs(3);
        assert_eq!(
            after_failure(t0, soon, true, true, tick),
            (Attempt::Full, t0 + tick)
        );
    }
}
