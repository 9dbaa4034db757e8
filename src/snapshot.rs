//! Immutable per-gateway snapshots, swapped in by pollers and read by request handlers.
//!
//! Each gateway has one slot, `RwLock<Arc<GatewaySnapshot>>`. Its poller builds a complete new
//! snapshot after every attempt (mapped data, pre-rendered bodies, health) and swaps the `Arc`;
//! a request clones the `Arc` under a read lock that is held for a pointer copy, then works on
//! data nobody will change. Requests never wait for the gateway and never mutate a snapshot.
//!
//! Whether last-good data may still be served is decided at read time ([`Hub::view`]) from the
//! snapshot's age, so an outage turns into failure bodies `PW_CACHE_TTL` after the last success
//! even if the poller is stuck in a long back-off.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::gateway::facade::Facade;
use crate::render::{self, Bodies, Summary};

/// What a gateway's poller is doing, as shown in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No attempt has finished yet.
    Connecting,
    /// The last poll succeeded.
    Online,
    /// The last poll failed; last-good data is still being served.
    Stale,
    /// No usable data.
    Offline,
    /// The gateway asked us to back off (HTTP 429/503); no traffic until the cooldown ends.
    Cooldown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Online => "online",
            State::Stale => "stale",
            State::Offline => "offline",
            State::Cooldown => "cooldown",
        }
    }
}

/// Poller bookkeeping for one gateway.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub last_success: Option<SystemTime>,
    pub last_attempt: Option<SystemTime>,
    pub consecutive_failures: u32,
    pub total_successes: u64,
    pub total_failures: u64,
    pub next_retry: Option<SystemTime>,
    pub last_error: Option<String>,
    /// The transport is in a gateway-imposed cooldown until this time.
    pub cooldown_until: Option<SystemTime>,
    /// Gateway requests made so far, by kind (for load checks).
    pub requests: u64,
    /// How long each poll attempt took (`/metrics` histogram).
    pub poll_durations: PollDurations,
}

/// Upper bounds (seconds) of the poll-duration histogram buckets; `+Inf` is implied.
pub const POLL_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

/// A cumulative histogram of poll-attempt durations, kept by the poller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollDurations {
    /// Attempts at or under each bound of [`POLL_BUCKETS`] (not cumulative).
    pub buckets: [u64; POLL_BUCKETS.len()],
    /// Every attempt (the `+Inf` bucket).
    pub count: u64,
    /// Sum of all durations in seconds.
    pub sum: f64,
}

impl PollDurations {
    /// Records one attempt.
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = POLL_BUCKETS.iter().position(|&b| s <= b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += s;
    }
}

/// Last-good data of one gateway.
#[derive(Debug, Clone)]
pub struct Good {
    pub facade: Arc<Facade>,
    pub bodies: Arc<Bodies>,
    pub summary: Summary,
    /// When the data was fetched (monotonic).
    pub at: Instant,
}

/// One gateway at one moment.
#[derive(Debug, Clone)]
pub struct GatewaySnapshot {
    pub id: String,
    pub name: String,
    pub host: String,
    pub simulated: bool,
    /// A solar-only gateway (`type: inverter`): see [`Summary::site_part`].
    pub solar_only: bool,
    pub mode: crate::config::Mode,
    /// Local modes: the login session the fallback branch forwards non-`/api` paths with.
    pub forward: Option<Arc<crate::gateway::local::Forwarder>>,
    pub health: Health,
    pub good: Option<Good>,
    /// One point per history step, oldest first (at most 24 h), and its rendered body.
    pub history: Arc<History>,
    /// The energy history as of the last completed step (`None` before the poller starts).
    pub series: Option<Arc<crate::history::Published>>,
}

pub use crate::render::history::Point;

/// `/api/gateways/{id}/history`: the last 24 h of the finest archive as points and their body,
/// made from the published copy the first time a request asks (at most once per step). Made
/// eagerly, every gateway rendered its 1,440 points each minute whether read or not: some
/// 300 KB held per gateway once a day was recorded (issue 20).
#[derive(Debug)]
pub struct History {
    id: String,
    series: Option<Arc<crate::history::Published>>,
    /// The full-pack energy when published (weights the SOE when gateways are summed).
    full: Option<f64>,
    made: std::sync::OnceLock<(Vec<Point>, render::Body)>,
}

impl History {
    pub fn new(
        id: &str,
        series: Option<Arc<crate::history::Published>>,
        full: Option<f64>,
    ) -> History {
        History {
            id: id.to_string(),
            series,
            full,
            made: std::sync::OnceLock::new(),
        }
    }

    /// The points, oldest first. SOE is the slot's average; power flows are the slot's
    /// averages in the Tesla sign convention.
    pub fn points(&self) -> &[Point] {
        &self.made().0
    }

    pub fn body(&self) -> &render::Body {
        &self.made().1
    }

    fn made(&self) -> &(Vec<Point>, render::Body) {
        self.made.get_or_init(|| {
            let Some(rec) = self.series.as_ref().map(|s| &s.rec) else {
                return (Vec::new(), render::history::body(&self.id, 60, &[]));
            };
            let step = i64::from(rec.step());
            let full = self.full;
            let points: Vec<Point> = rec
                .samples((86_400 / step) as usize)
                .iter()
                .map(|p| Point {
                    ts: p.ts,
                    site: p.grid_w(),
                    solar: p.flow(crate::history::Flow::Solar),
                    battery: p.battery_w(),
                    load: p.flow(crate::history::Flow::Home),
                    soe: p.soe,
                    full_pack_energy: full,
                    energy_remaining: full.zip(p.soe).map(|(f, s)| f * s / 100.0),
                })
                .collect();
            let body = render::history::body(&self.id, step, &points);
            (points, body)
        })
    }
}

/// The summaries the site total adds up: gateways with fresh data, each as
/// [`crate::render::Summary::site_part`] counts it.
pub fn site_parts(views: &[View]) -> Vec<crate::render::Summary> {
    let powerwalls = views.iter().any(|v| !v.snapshot.solar_only);
    views
        .iter()
        .filter(|v| v.fresh)
        .filter_map(|v| {
            let g = v.snapshot.good.as_ref()?;
            Some(g.summary.site_part(v.snapshot.solar_only, powerwalls))
        })
        .collect()
}

/// What a request sees of a gateway: data (live or failure bodies) and its state.
#[derive(Debug, Clone)]
pub struct View {
    pub snapshot: Arc<GatewaySnapshot>,
    pub state: State,
    /// The facade to serve from: last-good, or the offline facade.
    pub facade: Arc<Facade>,
    pub bodies: Arc<Bodies>,
    /// Data is live or last-good (not failure bodies).
    pub fresh: bool,
}

/// All gateway slots plus what is shared by every view.
pub struct Hub {
    slots: Vec<RwLock<Arc<GatewaySnapshot>>>,
    /// Incremented by every publish (cache key for bodies built from several gateways).
    generation: std::sync::atomic::AtomicUsize,
    /// Failure bodies without and with TEDAPI (`/tedapi/*` answer `null` only with it).
    offline: [(Arc<Facade>, Arc<Bodies>); 2],
    /// How long last-good data stays servable after the last success.
    pub max_age: Duration,
    pub settings: Arc<render::Settings>,
    pub started: SystemTime,
    /// Called after every publish with the gateway's index (issue 16: wakes the MQTT
    /// publisher). Must return at once: it runs on the poller's thread.
    listener: std::sync::OnceLock<Box<dyn Fn(usize) + Send + Sync>>,
    /// Per gateway, what requests tell its poller.
    signals: Vec<Signals>,
    /// At least one gateway is not solar-only (fixed by the configuration).
    powerwalls: bool,
}

/// What requests tell one gateway's poller (read by it, never the other way round).
#[derive(Default)]
struct Signals {
    /// A control write changed its settings: poll now and re-read them
    /// ([`Hub::settings_changed`]).
    changed: std::sync::atomic::AtomicBool,
    /// The pass-through paths clients asked for, with when ([`Hub::note_demand`]).
    demand: std::sync::Mutex<Vec<(&'static str, Instant)>>,
}

impl Hub {
    pub fn new(
        gateways: Vec<GatewaySnapshot>,
        settings: render::Settings,
        max_age: Duration,
        tedapi: bool,
    ) -> Hub {
        // `tedapi` (the default gateway's configured mode) is kept for callers; each view now
        // picks the failure bodies of its own gateway's current mode.
        let _ = tedapi;
        let offline = [false, true].map(|t| render::offline(t, &settings));
        Hub {
            signals: gateways.iter().map(|_| Signals::default()).collect(),
            powerwalls: gateways.iter().any(|g| !g.solar_only),
            slots: gateways
                .into_iter()
                .map(|g| RwLock::new(Arc::new(g)))
                .collect(),
            generation: std::sync::atomic::AtomicUsize::new(0),
            offline,
            max_age,
            settings: Arc::new(settings),
            started: SystemTime::now(),
            listener: std::sync::OnceLock::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The current snapshot of gateway `i`.
    pub fn snapshot(&self, i: usize) -> Option<Arc<GatewaySnapshot>> {
        let slot = self.slots.get(i)?;
        // A poisoned lock only means a writer panicked mid-swap; the Arc inside is intact.
        let guard = slot.read().unwrap_or_else(|e| e.into_inner());
        Some(guard.clone())
    }

    /// Swaps in a new snapshot for gateway `i`.
    pub fn publish(&self, i: usize, snap: GatewaySnapshot) {
        if let Some(slot) = self.slots.get(i) {
            let mut guard = slot.write().unwrap_or_else(|e| e.into_inner());
            *guard = Arc::new(snap);
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(guard);
            if let Some(f) = self.listener.get() {
                f(i);
            }
        }
    }

    /// Tells gateway `i`'s poller that a control write changed its settings: it polls within
    /// 200 ms and re-reads `config.json`.
    pub fn settings_changed(&self, i: usize) {
        if let Some(s) = self.signals.get(i) {
            s.changed.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Whether [`Hub::settings_changed`] was called for `i` since the last call (the poller's).
    pub fn take_settings_changed(&self, i: usize) -> bool {
        self.signals
            .get(i)
            .is_some_and(|s| s.changed.swap(false, std::sync::atomic::Ordering::SeqCst))
    }

    /// A client asked gateway `i` for the pass-through `path` (a route table pattern, so the
    /// list is bounded by the table): its poller keeps that path as fresh as the poll.
    pub fn note_demand(&self, i: usize, path: &'static str, now: Instant) {
        let Some(s) = self.signals.get(i) else {
            return;
        };
        let mut d = s.demand.lock().unwrap_or_else(|e| e.into_inner());
        match d.iter_mut().find(|(p, _)| *p == path) {
            Some(e) => e.1 = now,
            None => d.push((path, now)),
        }
    }

    /// The pass-through paths of gateway `i` asked for within `window`.
    pub fn demand(&self, i: usize, window: Duration) -> Vec<&'static str> {
        let Some(s) = self.signals.get(i) else {
            return Vec::new();
        };
        let d = s.demand.lock().unwrap_or_else(|e| e.into_inner());
        d.iter()
            .filter(|(_, at)| at.elapsed() <= window)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Sets the one publish listener (see `listener`); false when one is already set.
    pub fn on_publish(&self, f: Box<dyn Fn(usize) + Send + Sync>) -> bool {
        self.listener.set(f).is_ok()
    }

    /// Changes whenever any gateway publishes.
    pub fn generation(&self) -> usize {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// At least one gateway is not solar-only ([`Summary::site_part`]).
    pub fn has_powerwalls(&self) -> bool {
        self.powerwalls
    }

    /// Index of the gateway with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        (0..self.slots.len()).find(|&i| self.snapshot(i).is_some_and(|s| s.id == id))
    }

    /// What a request should see of gateway `i` right now.
    /// Every gateway's view at `now`, in configuration order.
    pub fn views(&self, now: Instant) -> Vec<View> {
        (0..self.len()).filter_map(|i| self.view(i, now)).collect()
    }

    pub fn view(&self, i: usize, now: Instant) -> Option<View> {
        let snapshot = self.snapshot(i)?;
        let cooling = snapshot
            .health
            .cooldown_until
            .is_some_and(|t| t > SystemTime::now());
        let good = snapshot
            .good
            .as_ref()
            .filter(|g| now.saturating_duration_since(g.at) <= self.max_age)
            .cloned();
        let state = match (&good, snapshot.health.last_attempt) {
            (Some(_), _) if snapshot.health.consecutive_failures == 0 => State::Online,
            (Some(_), _) => State::Stale,
            (None, _) if cooling => State::Cooldown,
            (None, None) => State::Connecting,
            (None, Some(_)) => State::Offline,
        };
        let (facade, bodies, fresh) = match good {
            Some(g) => (g.facade, g.bodies, true),
            None => {
                let (f, b) = &self.offline[snapshot.mode.proxy_labels().2 as usize];
                (f.clone(), b.clone(), false)
            }
        };
        Some(View {
            snapshot,
            state,
            facade,
            bodies,
            fresh,
        })
    }
}
