//! Every gateway's poller: fetch on a fixed tick, render once, publish a snapshot.
//!
//! The gateway's transport is a [`crate::gateway::source::Source`] (built by
//! [`crate::transport::build`]); it returns one facade per tick. After a good tick the poller
//! has `render::tick` make every output once, adds a history point and swaps the snapshot in.
//! Failures back off 5 → 10 → 30 → 60 → 120 s (never faster than the tick); a 429/503 cooldown
//! (its length from `Retry-After` when the gateway sends one) is honoured with no gateway
//! traffic. While a gateway does not answer at all (refused, timed out), the source's cheap
//! probe is sent once per tick between the back-off's full polls, and a probe that is answered
//! starts a full poll at once, so fresh data is back within two ticks of the gateway returning.
//! Pollers take turns on a few threads ([`Pollers`]); a slow or dead gateway only ever delays
//! its own turn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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

/// How long a poller thread with nothing to do waits before it ends (while another remains).
const IDLE_EXIT: Duration = Duration::from_secs(30);

/// A turn this late, with no thread free, starts another thread (at most one per this long).
const SPAWN_LAG: Duration = Duration::from_millis(50);

/// The most poller threads: polls in flight at once.
const MAX_THREADS: usize = 256;

/// How often waiting gateways are checked for a control write to show at once.
const SIGNAL_SCAN: Duration = Duration::from_millis(200);

/// The pollers of every gateway, run by a few threads that take turns.
///
/// A thread per gateway kept a touched stack (~68 KiB) for each one; turns need as many threads
/// as polls are in flight at once: one while the gateways answer quickly, more while some are
/// slow. A turn late by [`SPAWN_LAG`] when no thread is free starts another (up to one per
/// gateway, at most [`MAX_THREADS`]), so a slow or dead gateway only ever delays its own turn;
/// a thread idle for [`IDLE_EXIT`] ends.
pub struct Pollers {
    shared: Arc<Shared>,
}

struct Shared {
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    turns: Mutex<Turns>,
    wake: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The gateways waiting for their turn (`None` while one is being polled), and the threads.
struct Turns {
    jobs: Vec<Option<Job>>,
    running: usize,
    idle: usize,
    last_scan: Instant,
    /// A thread could not be started (logged once per streak).
    spawn_failed: bool,
    last_spawn: Instant,
}

impl Pollers {
    /// Starts polling every gateway (`cfgs` and `keepers` in hub order); stops when `stop` is
    /// set. Fails when the OS refuses the first thread.
    pub fn start(
        cfgs: &[GatewayConfig],
        keepers: Vec<Keeper>,
        hub: Arc<Hub>,
        stop: Arc<AtomicBool>,
    ) -> Result<Pollers, String> {
        let now = Instant::now();
        let n = cfgs.len();
        let jobs = cfgs
            .iter()
            .zip(keepers)
            .enumerate()
            .map(|(i, (cfg, keeper))| {
                // Many gateways start their polls spread over one interval instead of all at
                // once, and keep that phase (1,000 TLS handshakes in the same instant time out
                // against real gateways and simulators alike).
                let first = now + start_offset(i, n, cfg.poll_interval);
                Some(Job::new(i, cfg.clone(), keeper, first))
            })
            .collect();
        let shared = Arc::new(Shared {
            hub,
            stop,
            turns: Mutex::new(Turns {
                jobs,
                running: 0,
                idle: 0,
                last_scan: now,
                spawn_failed: false,
                last_spawn: now,
            }),
            wake: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        });
        if n > 0 {
            let builder = std::thread::Builder::new().name("poll-1".into());
            spawn_worker(&shared, builder)?;
        }
        Ok(Pollers { shared })
    }

    /// How many poller threads run now.
    pub fn threads(&self) -> usize {
        lock(&self.shared.turns).running
    }

    /// Waits for every thread (after `stop` was set), then writes each gateway's last history
    /// batch to disk.
    pub fn join(self) {
        self.shared.wake.notify_all();
        loop {
            let batch = std::mem::take(&mut *lock(&self.shared.threads));
            if batch.is_empty() {
                break;
            }
            for t in batch {
                let _ = t.join();
            }
        }
        // Shutdown (SIGTERM/SIGINT or `App::stop`): the last batch goes to disk.
        for job in lock(&self.shared.turns).jobs.iter_mut().flatten() {
            job.keeper.flush();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a thread panicked while holding it; the data is still whole
    // (turns are taken and returned whole).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts one more poller thread, or says why it could not.
fn spawn_worker(shared: &Arc<Shared>, builder: std::thread::Builder) -> Result<(), String> {
    let s = shared.clone();
    lock(&shared.turns).running += 1;
    match spawn_thread(builder, move || worker(s)) {
        Ok(handle) => {
            let mut threads = lock(&shared.threads);
            threads.retain(|t| !t.is_finished());
            threads.push(handle);
            Ok(())
        }
        Err(e) => {
            lock(&shared.turns).running -= 1;
            Err(e)
        }
    }
}

/// Spawns a poller thread, or says why it could not.
fn spawn_thread(
    builder: std::thread::Builder,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, String> {
    builder
        .spawn(body)
        .map_err(|e| format!("cannot start a poller thread: {e}"))
}

/// One poller thread: takes the turn that is due first, polls, gives it back.
fn worker(shared: Arc<Shared>) {
    let mut turns = lock(&shared.turns);
    let mut idle_since = Instant::now();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        if now.duration_since(turns.last_scan) >= SIGNAL_SCAN {
            turns.last_scan = now;
            for job in turns.jobs.iter_mut().flatten() {
                if shared.hub.take_settings_changed(job.idx) {
                    job.settings_changed(now);
                }
            }
        }
        let (first, second) = two_earliest(turns.jobs.iter().map(|j| j.as_ref().map(|j| j.next)));
        let Some((i, _)) = first.filter(|&(_, at)| at <= now) else {
            // No turn is due (or every gateway is being polled by another thread).
            if idle_since.elapsed() >= IDLE_EXIT && turns.running > 1 {
                break;
            }
            let d = first.map_or(SIGNAL_SCAN, |(_, at)| (at - now).min(SIGNAL_SCAN));
            turns = wait(&shared, turns, d);
            continue;
        };
        let Some(mut job) = turns.jobs[i].take() else {
            continue;
        };
        // Another turn is late and no thread is free for it: one more thread (but not for a
        // backlog of quick polls: a few at a time, and never more than the gateways).
        let more = turns.idle == 0
            && turns.running < turns.jobs.len().min(MAX_THREADS)
            && now.duration_since(turns.last_spawn) >= SPAWN_LAG
            && second.is_some_and(|(_, t)| t + SPAWN_LAG <= now);
        if more {
            turns.last_spawn = now;
        }
        drop(turns);
        if more {
            let name = format!("poll-{}", lock(&shared.turns).running + 1);
            let builder = std::thread::Builder::new().name(name);
            let result = spawn_worker(&shared, builder);
            let mut t = lock(&shared.turns);
            match result {
                Ok(()) => t.spawn_failed = false,
                Err(e) if !t.spawn_failed => {
                    t.spawn_failed = true;
                    log::warn!("{e}; {} poller threads take turns", t.running);
                }
                Err(_) => {}
            }
        }
        let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.turn(&shared.hub)));
        if turn.is_err() {
            // Never expected; the gateway is tried again after the longest back-off.
            log::error!(
                "gateway '{}': its poll panicked; next try in {} s",
                job.cfg.id,
                BACKOFF[BACKOFF.len() - 1]
            );
            job.next = Instant::now() + Duration::from_secs(BACKOFF[BACKOFF.len() - 1]);
        }
        turns = lock(&shared.turns);
        let idx = job.idx;
        turns.jobs[idx] = Some(job);
        idle_since = Instant::now();
        // A waiting thread may now have an earlier turn to wait for.
        shared.wake.notify_one();
    }
    turns.running -= 1;
}

/// Waits up to `d` for a turn to be given back or for `stop`.
fn wait<'a>(
    shared: &'a Shared,
    mut turns: std::sync::MutexGuard<'a, Turns>,
    d: Duration,
) -> std::sync::MutexGuard<'a, Turns> {
    turns.idle += 1;
    let (mut turns, _) = shared
        .wake
        .wait_timeout(turns, d)
        .unwrap_or_else(|e| e.into_inner());
    turns.idle -= 1;
    turns
}

/// A waiting turn: its gateway's index and when it is due.
type Due = (usize, Instant);

/// The waiting turns (`None`: being polled) due first and second.
fn two_earliest(times: impl Iterator<Item = Option<Instant>>) -> (Option<Due>, Option<Due>) {
    let mut first: Option<Due> = None;
    let mut second: Option<Due> = None;
    for (i, t) in times.enumerate() {
        let Some(t) = t else { continue };
        if first.is_none_or(|(_, f)| t < f) {
            second = first;
            first = Some((i, t));
        } else if second.is_none_or(|(_, s)| t < s) {
            second = Some((i, t));
        }
    }
    (first, second)
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

/// One gateway's poller between turns: its transport, health, last good data and history.
struct Job {
    idx: usize,
    cfg: GatewayConfig,
    source: Box<dyn crate::gateway::source::Source>,
    health: Health,
    good: Option<Good>,
    keeper: Keeper,
    attempt: Attempt,
    /// When the back-off allows the next full poll, and whether the source has a probe.
    full_at: Instant,
    can_probe: bool,
    /// When its next turn is.
    next: Instant,
}

impl Job {
    fn new(idx: usize, cfg: GatewayConfig, keeper: Keeper, first: Instant) -> Job {
        let source = crate::transport::build(&cfg);
        log::info!(
            "gateway '{}': polling {} every {:?}",
            cfg.id,
            cfg.host,
            cfg.poll_interval
        );
        Job {
            idx,
            cfg,
            source,
            health: Health::default(),
            good: None,
            keeper,
            attempt: Attempt::Full,
            full_at: first,
            can_probe: true,
            next: first,
        }
    }

    /// A control write: show its result now rather than at the next tick.
    fn settings_changed(&mut self, now: Instant) {
        self.source.settings_changed();
        self.attempt = Attempt::Full;
        self.next = now;
    }

    /// One turn: a poll (or a probe), its snapshot published, and when the next turn is.
    fn turn(&mut self, hub: &Hub) {
        let (idx, cfg) = (self.idx, &self.cfg);
        let health = &mut self.health;
        let source = &mut self.source;
        let started = Instant::now();
        health.last_attempt = Some(SystemTime::now());
        // `probed`: the probe itself failed (no full poll was made).
        source.wanted(&hub.demand(idx, DEMAND_WINDOW));
        let (result, probed) = match self.attempt {
            Attempt::Full => (source.poll(), false),
            Attempt::Probe => match source.probe() {
                Some(Ok(())) => {
                    log::info!("gateway '{}': answers again; polling now", cfg.id);
                    (source.poll(), false)
                }
                Some(Err(e)) => (Err(e), true),
                None => {
                    self.can_probe = false;
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
                self.keeper.tick(&cfg.id, now, &facade, &out.summary);
                self.good = Some(Good {
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
                self.attempt = Attempt::Full;
                started + cfg.poll_interval
            }
            Err(e) => {
                // A failed probe is not another failed poll: the back-off does not grow.
                if !probed {
                    health.consecutive_failures += 1;
                    health.total_failures += 1;
                    self.full_at =
                        started + backoff(health.consecutive_failures, cfg.poll_interval);
                }
                health.last_error = Some(e.to_string());
                let cooldown = source.cooldown_remaining();
                health.cooldown_until = cooldown.map(|d| SystemTime::now() + d);
                let (next_attempt, at) = match cooldown {
                    // No traffic at all until the cooldown ends, then a full poll.
                    Some(d) => (Attempt::Full, Instant::now() + d),
                    None => after_failure(
                        started,
                        self.full_at,
                        is_down(&e),
                        self.can_probe,
                        cfg.poll_interval,
                    ),
                };
                self.attempt = next_attempt;
                if !probed
                    && (health.consecutive_failures == 1
                        || health.consecutive_failures.is_multiple_of(10))
                {
                    log::warn!(
                        "gateway '{}': poll failed ({} in a row): {e}; next {} in {:?}",
                        cfg.id,
                        health.consecutive_failures,
                        match self.attempt {
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
        self.next = next;
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
                good: self.good.clone(),
                history: self.keeper.history.clone(),
                series: Some(self.keeper.series.clone()),
            },
        );
    }
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
    fn the_turns_due_first_and_second() {
        let t0 = Instant::now();
        let due = |ms: u64| t0 + Duration::from_millis(ms);
        let times = [
            Some(due(30)),
            None,
            Some(due(10)),
            Some(due(20)),
            Some(due(10)),
        ];
        // The earlier of equal times is the lower index: gateways keep their order.
        let of = |t: &[Option<Instant>]| two_earliest(t.iter().copied());
        assert_eq!(of(&times), (Some((2, due(10))), Some((4, due(10)))));
        assert_eq!(of(&times[..1]), (Some((0, due(30))), None));
        assert_eq!(of(&times[1..2]), (None, None));
    }

    #[test]
    fn backoff_schedule() {
        let t = Duration::from_secs(5);
        let got: Vec<u64> = (1..=7).map(|n| backoff(n, t).as_secs()).collect();
        assert_eq!(got, [5, 10, 30, 60, 120, 120, 120]);
        assert_eq!(backoff(1, Duration::from_secs(15)).as_secs(), 15);
    }

    #[test]
    fn a_poller_thread_that_cannot_start_is_an_error() {
        // A stack no system can map makes the spawn fail, as an exhausted OS would.
        let builder = std::thread::Builder::new().stack_size(usize::MAX / 2);
        let e = spawn_thread(builder, || {}).expect_err("the spawn fails");
        assert!(e.starts_with("cannot start a poller thread: "), "{e}");
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
