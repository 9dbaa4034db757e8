//! Multi-gateway routes: `/api/gateways/…` (each gateway) and `/api/aggregate/…` (the site total).
//!
//! Per-gateway bodies reuse the legacy bodies rendered at each tick. Aggregate bodies depend on
//! every gateway, so they are built once per change — a new snapshot or a gateway's data
//! expiring — and cached until the next one ([`Aggregates`]); requests between changes copy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::router::{Answer, Ctx, Req};
use crate::clock;
use crate::json::{Map, Value};
use crate::render::summary::{app_scale, Summary};
use crate::render::Body;
use crate::snapshot::{Point, State, View};

fn not_found(req: &Req<'_>, what: &str) -> Answer {
    let ids: Vec<Value> = req
        .views()
        .iter()
        .map(|v| Value::from(v.snapshot.id.as_str()))
        .collect();
    let body = Map::new().with("error", what).with("gateways", ids);
    Answer::json(404, Value::Object(body).to_py())
}

fn age(v: &View) -> Value {
    v.snapshot
        .good
        .as_ref()
        .map(|g| Value::Float(g.at.elapsed().as_secs_f64()))
        .unwrap_or(Value::Null)
}

fn battery_count(v: &View) -> Value {
    let status = v.facade.system_status.as_ref();
    status
        .and_then(|s| s.get("available_blocks"))
        .and_then(Value::as_i64)
        .or_else(|| {
            status
                .and_then(|s| s.get("battery_blocks"))
                .and_then(Value::as_array)
                .map(|a| a.len() as i64)
        })
        .map(Value::Int)
        .unwrap_or(Value::Null)
}

/// The public description of a gateway (never a credential).
fn info(v: &View, is_default: bool) -> Map {
    let s = &v.snapshot;
    let f = &v.facade;
    let t = |t: Option<SystemTime>| {
        t.map(clock::unix_f64)
            .map(Value::Float)
            .unwrap_or(Value::Null)
    };
    Map::new()
        .with("id", s.id.as_str())
        .with("name", s.name.as_str())
        .with("host", s.host.as_str())
        .with("mode", s.mode.name())
        .with("state", v.state.as_str())
        .with(
            "firmware",
            f.version.as_deref().map(Value::from).unwrap_or(Value::Null),
        )
        .with(
            "site_name",
            f.site_name
                .as_deref()
                .map(Value::from)
                .unwrap_or(Value::Null),
        )
        .with("pw3", f.pw3)
        .with("battery_count", battery_count(v))
        .with("simulated", s.simulated)
        .with("default", is_default)
        .with("last_success", t(s.health.last_success))
        .with("age_seconds", age(v))
}

fn find<'a>(views: &'a [View], id: &str) -> Option<&'a View> {
    views.iter().find(|v| v.snapshot.id == id)
}

fn summary_value(v: &View) -> Value {
    let ts = v
        .snapshot
        .health
        .last_success
        .map(clock::unix_f64)
        .unwrap_or(0.0);
    let summary = match (&v.snapshot.good, v.fresh) {
        (Some(g), true) => g.summary.clone(),
        _ => Summary::default(),
    };
    summary.to_value(&v.snapshot.id, ts, v.state.as_str(), v.snapshot.simulated)
}

/// The WebSocket message of one gateway.
pub fn gateway_message(v: &View) -> String {
    summary_value(v).to_py()
}

pub fn gateways(req: &Req<'_>) -> Answer {
    let d = req.ctx.default_gateway;
    let list: Vec<Value> = req
        .views()
        .iter()
        .enumerate()
        .map(|(i, v)| info(v, i == d).into())
        .collect();
    Answer::json(200, Value::Array(list).to_py())
}

pub fn gateway(req: &Req<'_>) -> Answer {
    let views = req.views();
    let Some(v) = find(&views, req.param("id")) else {
        return not_found(req, "unknown gateway id");
    };
    let is_default = views
        .iter()
        .position(|x| std::ptr::eq(x, v))
        .is_some_and(|i| i == req.ctx.default_gateway);
    let h = &v.snapshot.health;
    let t = |t: Option<SystemTime>| {
        t.map(clock::unix_f64)
            .map(Value::Float)
            .unwrap_or(Value::Null)
    };
    let mut m = info(v, is_default);
    m.insert(
        "health",
        Map::new()
            .with("last_success", t(h.last_success))
            .with("last_attempt", t(h.last_attempt))
            .with("consecutive_failures", h.consecutive_failures as i64)
            .with("next_retry", t(h.next_retry))
            .with(
                "last_error",
                h.last_error
                    .as_deref()
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            ),
    );
    m.insert("summary", summary_value(v));
    Answer::json(200, Value::Object(m).to_py())
}

/// `/api/gateways/{id}/{view}` → the legacy body it stands for.
pub fn view_key(view: &str) -> Option<&'static str> {
    Some(match view {
        "vitals" => "/vitals",
        "aggregates" => "/aggregates",
        "soe" => "/soe",
        "strings" => "/strings",
        "temps" => "/temps",
        "alerts" => "/alerts",
        "fans" => "/fans",
        "freq" => "/freq",
        "pod" => "/pod",
        "battery" => "/pw/battery_blocks",
        "status" => "/api/status",
        "version" => "/version",
        _ => return None,
    })
}

pub fn gateway_view(req: &Req<'_>) -> Answer {
    let views = req.views();
    let Some(v) = find(&views, req.param("id")) else {
        return not_found(req, "unknown gateway id");
    };
    let body = view_key(req.param("view")).and_then(|k| v.bodies.get(k));
    match body {
        Some(b) => Answer::route(b),
        None => not_found(req, "unknown view (vitals, aggregates, soe, strings, temps, alerts, fans, freq, pod, battery, status, version)"),
    }
}

pub fn gateway_history(req: &Req<'_>) -> Answer {
    let views = req.views();
    match find(&views, req.param("id")) {
        // Rendered when the minute completed, not per request.
        Some(v) => Answer::route(v.snapshot.history.body()),
        None => not_found(req, "unknown gateway id"),
    }
}

/// The aggregate bodies, built once per change.
pub struct AggregateBodies {
    pub power: Body,
    pub soe: Body,
    pub status: Body,
    /// `/api/aggregate/history`, summed over every gateway's 24 h when first asked for (the
    /// dearest body: with 1,000 gateways it made every status request wait for it).
    history: std::sync::OnceLock<Body>,
    /// The `/ws/aggregate` message.
    pub message: Arc<str>,
    /// pypowerwall-server's shapes, built from the views of the first request that asks for
    /// them (the bodies keep no views: holding every gateway's snapshot until the next rebuild
    /// kept a second facade per gateway alive, ~150 KiB each).
    peer: std::sync::OnceLock<super::peer::PeerBodies>,
}

/// Cache of [`AggregateBodies`], keyed by the hub generation and the earliest data expiry.
///
/// With many gateways the generation moves with every poll (200 times a second at 1,000
/// gateways, 5 s polls) and a rebuild reads every view, so a request must not wait for one
/// (issue 20: `/api/aggregate/*` p99 ≤ 5 ms at 1,000 gateways). A cheap build (under
/// [`INLINE_COST`], a few gateways) is made by the request that finds the bodies out of date, so
/// they follow every publish. A dear one is made on a thread of its own while requests get the
/// bodies it replaces, and at most one per [`REBUILD_RATIO`] times its cost (never more than
/// [`MAX_LAG`] behind the newest publish, plus the build itself).
#[derive(Default)]
pub struct Aggregates {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    cache: Mutex<Option<Cached>>,
    building: std::sync::atomic::AtomicBool,
}

/// A build costing less than this is made by the request itself.
const INLINE_COST: Duration = Duration::from_millis(1);
/// Rebuilds take at most about 1 / (1 + this) of the time.
const REBUILD_RATIO: u32 = 10;
/// The most the aggregate bodies lag the newest publish (besides the build itself).
const MAX_LAG: Duration = Duration::from_secs(1);

/// Built bodies, the hub generation they were built at, the earliest data expiry, and when and
/// at what cost they were built.
struct Cached {
    generation: usize,
    until: Option<Instant>,
    built: Instant,
    cost: Duration,
    bodies: Arc<AggregateBodies>,
}

/// Clears the "rebuilding" flag however the build ends.
struct Building(Arc<Shared>);

impl Drop for Building {
    fn drop(&mut self) {
        (self.0)
            .building
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Aggregates {
    pub fn get(&self, ctx: &Ctx, now: Instant) -> Arc<AggregateBodies> {
        use std::sync::atomic::Ordering;
        let generation = ctx.hub.generation();
        let stale = {
            let c = self.shared.cache.lock().unwrap_or_else(|e| e.into_inner());
            match c.as_ref() {
                Some(c) => {
                    let expired = c.until.is_some_and(|u| now >= u);
                    let lag = (c.cost * REBUILD_RATIO).min(MAX_LAG);
                    let recent = now.saturating_duration_since(c.built) < lag;
                    if !expired && (c.generation == generation || recent) {
                        return c.bodies.clone();
                    }
                    if self.shared.building.swap(true, Ordering::AcqRel) {
                        return c.bodies.clone();
                    }
                    (c.cost >= INLINE_COST).then(|| c.bodies.clone())
                }
                None => {
                    self.shared.building.store(true, Ordering::Release);
                    None
                }
            }
        };
        let building = Building(self.shared.clone());
        if let Some(old) = stale {
            let hub = ctx.hub.clone();
            let spawned = std::thread::Builder::new()
                .name("aggregates".into())
                .spawn(move || rebuild(&building.0, &hub, generation, Instant::now()));
            match spawned {
                Ok(_) => return old,
                // No thread to be had (the flag went with the closure): build here instead.
                Err(e) => log::debug!("aggregate bodies built inline: {e}"),
            }
            return rebuild(&self.shared, &ctx.hub, generation, now);
        }
        let bodies = rebuild(&self.shared, &ctx.hub, generation, now);
        drop(building);
        bodies
    }
}

/// Builds the bodies from every view of `hub` and caches them as of `generation`.
fn rebuild(
    shared: &Shared,
    hub: &crate::snapshot::Hub,
    generation: usize,
    now: Instant,
) -> Arc<AggregateBodies> {
    let started = Instant::now();
    let views = hub.views(now);
    let until = views
        .iter()
        .filter_map(|v| {
            v.snapshot
                .good
                .as_ref()
                .filter(|_| v.fresh)
                .map(|g| g.at + hub.max_age)
        })
        .min();
    let bodies = Arc::new(build(&views));
    // The bodies replaced are freed when this returns, after the lock is released.
    let _replaced = {
        let mut c = shared.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.replace(Cached {
            generation,
            until,
            built: now,
            cost: started.elapsed(),
            bodies: bodies.clone(),
        })
    };
    bodies
}

fn ids<'a>(views: impl Iterator<Item = &'a View>) -> Value {
    Value::Array(views.map(|v| Value::from(v.snapshot.id.as_str())).collect())
}

fn num(v: Option<f64>) -> Value {
    v.map(Value::Float).unwrap_or(Value::Null)
}

fn build(views: &[View]) -> AggregateBodies {
    let now = clock::unix_f64(SystemTime::now());
    let fresh: Vec<&View> = views.iter().filter(|v| v.fresh).collect();
    let total = Summary::total(&crate::snapshot::site_parts(views));
    let power = Map::new()
        .with("site", num(total.site))
        .with("solar", num(total.solar))
        .with("battery", num(total.battery))
        .with("load", num(total.load))
        .with("contributors", ids(fresh.iter().copied()))
        .with(
            "stale",
            ids(views.iter().filter(|v| v.state == State::Stale)),
        )
        .with("offline", ids(views.iter().filter(|v| !v.fresh)))
        .with("ts", now)
        // pypowerwall-server's names for the same values.
        .with("grid", num(total.site))
        .with("timestamp", now);
    let soe = Map::new()
        .with("percentage", num(total.soe.map(app_scale)))
        .with("percentage_raw", num(total.soe))
        .with("remaining_wh", num(total.energy_remaining))
        .with("full_wh", num(total.full_pack_energy))
        .with(
            "contributors",
            ids(fresh.iter().copied().filter(|v| {
                v.snapshot
                    .good
                    .as_ref()
                    .is_some_and(|g| g.summary.full_pack_energy.is_some())
            })),
        )
        // pypowerwall-server's names.
        .with("raw_percentage", num(total.soe))
        .with(
            "num_gateways",
            fresh
                .iter()
                .filter(|v| {
                    v.snapshot
                        .good
                        .as_ref()
                        .is_some_and(|g| g.summary.soe.is_some())
                })
                .count() as i64,
        )
        .with("timestamp", now);
    let count = |s: State| views.iter().filter(|v| v.state == s).count() as i64;
    let list: Vec<Value> = views
        .iter()
        .map(|v| {
            Map::new()
                .with("id", v.snapshot.id.as_str())
                .with("name", v.snapshot.name.as_str())
                .with("state", v.state.as_str())
                .with("age_seconds", age(v))
                .with(
                    "last_error",
                    v.snapshot
                        .health
                        .last_error
                        .as_deref()
                        .map(Value::from)
                        .unwrap_or(Value::Null),
                )
                .into()
        })
        .collect();
    let status = Map::new()
        .with("status", super::status::overall(views))
        .with("online", count(State::Online))
        .with("stale", count(State::Stale))
        .with(
            "offline",
            views.len() as i64 - count(State::Online) - count(State::Stale),
        )
        .with("gateways", list);
    let any_sim = views.iter().any(|v| v.snapshot.simulated);
    let state = super::status::overall(views);
    let message: Arc<str> = Arc::from(total.to_value("aggregate", now, state, any_sim).to_py());
    AggregateBodies {
        power: Body::json(Value::Object(power).to_py()),
        soe: Body::json(Value::Object(soe).to_py()),
        status: Body::json(Value::Object(status).to_py()),
        history: std::sync::OnceLock::new(),
        message,
        peer: std::sync::OnceLock::new(),
    }
}

/// Slot-aligned sum of every gateway's history (SOE weighted by full-pack energy).
fn sum_history(views: &[View]) -> Vec<Point> {
    let mut by_minute: BTreeMap<i64, (Point, f64, f64, Vec<f64>)> = BTreeMap::new();
    for v in views {
        for p in v.snapshot.history.points().iter() {
            let e = by_minute.entry(p.ts).or_insert_with(|| {
                (
                    Point {
                        ts: p.ts,
                        ..Point::default()
                    },
                    0.0,
                    0.0,
                    Vec::new(),
                )
            });
            e.0.site += p.site;
            e.0.solar += p.solar;
            e.0.battery += p.battery;
            e.0.load += p.load;
            match (p.full_pack_energy, p.energy_remaining) {
                (Some(full), Some(rem)) => {
                    e.1 += full;
                    e.2 += rem;
                }
                _ => e.3.extend(p.soe),
            }
        }
    }
    by_minute
        .into_values()
        .map(|(mut p, full, rem, plain)| {
            p.soe = if full > 0.0 {
                Some(rem / full * 100.0)
            } else if !plain.is_empty() {
                Some(plain.iter().sum::<f64>() / plain.len() as f64)
            } else {
                None
            };
            p
        })
        .collect()
}

fn aggregate(req: &Req<'_>, pick: fn(&AggregateBodies) -> &Body) -> Answer {
    let bodies = req.ctx.aggregates.get(req.ctx, req.now);
    Answer::route(pick(&bodies))
}

pub fn aggregate_power(req: &Req<'_>) -> Answer {
    aggregate(req, |b| &b.power)
}

pub fn aggregate_soe(req: &Req<'_>) -> Answer {
    aggregate(req, |b| &b.soe)
}

pub fn aggregate_status(req: &Req<'_>) -> Answer {
    aggregate(req, |b| &b.status)
}

pub fn aggregate_history(req: &Req<'_>) -> Answer {
    let bodies = req.ctx.aggregates.get(req.ctx, req.now);
    Answer::route(bodies.history(|| req.views()))
}

impl AggregateBodies {
    fn history(&self, views: impl FnOnce() -> Vec<View>) -> &Body {
        self.history.get_or_init(|| {
            let views = views();
            let interval = views
                .iter()
                .find_map(|v| v.snapshot.series.as_ref().map(|s| i64::from(s.rec.step())))
                .unwrap_or(60);
            let h =
                crate::render::history::history_value("aggregate", interval, &sum_history(&views));
            Body::json(h.to_py())
        })
    }

    fn peer(
        &self,
        config: &[crate::config::PublicGateway],
        views: impl FnOnce() -> Vec<View>,
    ) -> &super::peer::PeerBodies {
        self.peer.get_or_init(|| {
            let views = views();
            let total = Summary::total(&crate::snapshot::site_parts(&views));
            super::peer::build(&views, &total, config)
        })
    }
}

/// `GET /api/aggregate`, `/api/aggregate/{battery,strings,alerts,vitals}`: pypowerwall-server's
/// shapes (`super::peer`).
pub fn aggregate_peer(req: &Req<'_>) -> Answer {
    let bodies = req.ctx.aggregates.get(req.ctx, req.now);
    let p = bodies.peer(&req.ctx.config.gateways, || req.views());
    Answer::route(match req.path.trim_end_matches('/').rsplit('/').next() {
        Some("battery") => &p.battery,
        Some("strings") => &p.strings,
        Some("alerts") => &p.alerts,
        Some("vitals") => &p.vitals,
        _ => &p.root,
    })
}
