//! History points and the history body of one gateway (`/api/gateways/{id}/history`).
//!
//! The points are the last 24 h of the recorder's finest archive (`history`, one slot per
//! `PW_HISTORY_STEP`, 60 s by default); `snapshot::History` converts them and renders this body
//! from the published copy the first time a step's body is asked for.

use super::Body;
use crate::json::{Map, Value};

/// The body of `/api/gateways/{id}/history`.
pub fn body(id: &str, interval: i64, points: &[Point]) -> Body {
    Body::json(history_value(id, interval, points).to_py())
}

pub fn history_value(id: &str, interval: i64, points: &[Point]) -> Value {
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
        .with("interval_seconds", interval)
        .with("points", pts)
        .into()
}

/// One slot of history: the averages of the ticks in it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    /// Start of the slot (Unix seconds).
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
