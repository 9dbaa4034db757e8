//! History points and the per-minute history body of one gateway
//! (`/api/gateways/{id}/history`).
//!
//! The poller feeds each tick's summary into a [`HistoryRing`]; a point is the average of the
//! ticks of one minute. The points change once a minute, so their body is rendered when a
//! minute completes ([`HistoryRing::render`]), never per request. Stored history (issue: a
//! history file) will be written from the same completed points.

use std::sync::Arc;

use super::{Body, Summary};
use crate::json::{Map, Value};

/// One gateway's published history: the points and their rendered body.
#[derive(Debug, Clone)]
pub struct History {
    pub points: Arc<[Point]>,
    pub body: Body,
}

impl History {
    /// `points` with a freshly rendered body.
    pub fn new(id: &str, points: Arc<[Point]>) -> History {
        let body = body(id, &points);
        History { points, body }
    }
}

/// The body of `/api/gateways/{id}/history`.
pub fn body(id: &str, points: &[Point]) -> Body {
    Body::json(history_value(id, points).to_py())
}

pub fn history_value(id: &str, points: &[Point]) -> Value {
    let pts: Vec<Value> = points
        .iter()
        .map(|p| {
            Map::new()
                .with("ts", p.ts)
                .with("site", p.site)
                .with("solar", p.solar)
                .with("battery", p.battery)
                .with("load", p.load)
                .with("soe", p.soe.map(Value::Float).unwrap_or(Value::Null))
                .into()
        })
        .collect();
    Map::new()
        .with("id", id)
        .with("interval_seconds", 60)
        .with("points", pts)
        .into()
}

/// One minute of history: the averages of the ticks in that minute.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    /// Start of the minute (Unix seconds).
    pub ts: i64,
    pub site: f64,
    pub solar: f64,
    pub battery: f64,
    pub load: f64,
    /// Raw SOE (%), when known.
    pub soe: Option<f64>,
    pub full_pack_energy: Option<f64>,
    pub energy_remaining: Option<f64>,
}

/// Most points kept: 24 h at one per minute.
pub const HISTORY_POINTS: usize = 24 * 60;

/// Builds minute points from tick summaries; lives in the poller.
#[derive(Debug, Default)]
pub struct HistoryRing {
    points: std::collections::VecDeque<Point>,
    acc: Option<(Point, u32)>,
    published: Arc<[Point]>,
    /// The gateway id, and the body of the published points.
    id: String,
    body: Option<Body>,
}

impl HistoryRing {
    /// Adds one tick; returns true when a minute was completed (the published copy changed).
    pub fn add(&mut self, unix: i64, s: &Summary) -> bool {
        let minute = unix - unix.rem_euclid(60);
        let sample = Point {
            ts: minute,
            site: s.site.unwrap_or(0.0),
            solar: s.solar.unwrap_or(0.0),
            battery: s.battery.unwrap_or(0.0),
            load: s.load.unwrap_or(0.0),
            soe: s.soe,
            full_pack_energy: s.full_pack_energy,
            energy_remaining: s.energy_remaining,
        };
        let mut completed = false;
        match &mut self.acc {
            Some((p, n)) if p.ts == minute => {
                let k = *n as f64;
                let avg = |a: f64, b: f64| (a * k + b) / (k + 1.0);
                p.site = avg(p.site, sample.site);
                p.solar = avg(p.solar, sample.solar);
                p.battery = avg(p.battery, sample.battery);
                p.load = avg(p.load, sample.load);
                p.soe = sample.soe.or(p.soe);
                p.full_pack_energy = sample.full_pack_energy.or(p.full_pack_energy);
                p.energy_remaining = sample.energy_remaining.or(p.energy_remaining);
                *n += 1;
            }
            _ => {
                if let Some((done, _)) = self.acc.take() {
                    if self.points.len() == HISTORY_POINTS {
                        self.points.pop_front();
                    }
                    self.points.push_back(done);
                    completed = true;
                }
                self.acc = Some((sample, 1));
            }
        }
        if completed {
            self.published = self.points.iter().copied().collect();
            // Once a minute: the history body changes only now.
            self.body = Some(body(&self.id, &self.published));
        }
        completed
    }

    /// The ring of gateway `id` (its history body names it).
    pub fn new(id: &str) -> HistoryRing {
        HistoryRing {
            id: id.to_string(),
            body: Some(body(id, &[])),
            ..HistoryRing::default()
        }
    }

    /// Completed minutes, oldest first, with their body (rendered when the last minute
    /// completed; cheap to clone).
    pub fn published(&self) -> History {
        History {
            points: self.published.clone(),
            body: self
                .body
                .clone()
                .unwrap_or_else(|| body(&self.id, &self.published)),
        }
    }
}
