//! The compact per-gateway summary (four flows, SOE, grid, reserve) and its sum over gateways.
//!
//! Computed once per tick from a facade; used by `/api/gateways/…`, `/api/aggregate/…`, the
//! WebSocket messages and the history ring. Signs follow the Tesla convention: positive site =
//! importing, positive battery = discharging.

use super::legacy;
use crate::gateway::facade::Facade;
use crate::json::{Map, Value};

/// Tesla-app scale of a raw SOE (the app hides the bottom 5 %).
pub fn app_scale(raw: f64) -> f64 {
    raw / 0.95 - 5.0 / 0.95
}

/// One gateway's (or the site total's) numbers at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub site: Option<f64>,
    pub solar: Option<f64>,
    pub battery: Option<f64>,
    pub load: Option<f64>,
    /// Raw state of energy (%).
    pub soe: Option<f64>,
    pub grid_status: Option<&'static str>,
    /// Backup reserve (app scale, %).
    pub reserve: Option<f64>,
    pub time_remaining_hours: Option<f64>,
    pub full_pack_energy: Option<f64>,
    pub energy_remaining: Option<f64>,
}

fn num(v: Option<f64>) -> Value {
    v.map(Value::Float).unwrap_or(Value::Null)
}

impl Summary {
    /// From a facade, with the proxy's negative-solar and zero-threshold processing.
    pub fn from_facade(f: &Facade, s: &super::Settings) -> Summary {
        Summary::from_parts(f, legacy::processed_aggregates(f, s).as_ref())
    }

    /// From a facade and its processed aggregates (computed once per tick, `render::tick`).
    pub fn from_parts(f: &Facade, agg: Option<&Value>) -> Summary {
        let power = |section: &str| {
            agg.as_ref()
                .and_then(|a| a.path(&[section, "instant_power"]))
                .and_then(Value::as_f64)
        };
        let status = f.system_status.as_ref();
        let energy = |k: &str| status.and_then(|d| d.get(k)).and_then(Value::as_f64);
        Summary {
            site: power("site"),
            solar: power("solar"),
            battery: power("battery"),
            load: power("load"),
            soe: f.level,
            grid_status: legacy::grid_state(f),
            reserve: f.reserve,
            time_remaining_hours: f.time_remaining,
            full_pack_energy: energy("nominal_full_pack_energy"),
            energy_remaining: energy("nominal_energy_remaining"),
        }
    }

    /// The sum of several gateways: flows add up, SOE is weighted by full-pack energy.
    /// This gateway's part of the site total: a solar-only gateway's (`type: inverter`) solar
    /// is left out when the site has Powerwall gateways (pypowerwall-server's rule). The one
    /// place `/api/aggregate/*`, `/metrics` and MQTT apply it.
    pub fn site_part(&self, solar_only: bool, site_has_powerwalls: bool) -> Summary {
        let mut s = self.clone();
        if solar_only && site_has_powerwalls {
            s.solar = None;
        }
        s
    }

    pub fn total<'a>(parts: impl IntoIterator<Item = &'a Summary>) -> Summary {
        let mut t = Summary::default();
        let add = |a: &mut Option<f64>, b: Option<f64>| {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0.0) + b);
            }
        };
        let mut grid: Vec<&str> = Vec::new();
        let mut reserves = Vec::new();
        for p in parts {
            add(&mut t.site, p.site);
            add(&mut t.solar, p.solar);
            add(&mut t.battery, p.battery);
            add(&mut t.load, p.load);
            if let (Some(full), Some(rem)) = (p.full_pack_energy, p.energy_remaining) {
                add(&mut t.full_pack_energy, Some(full));
                add(&mut t.energy_remaining, Some(rem));
            }
            grid.extend(p.grid_status);
            reserves.extend(p.reserve);
        }
        t.soe = match (t.energy_remaining, t.full_pack_energy) {
            (Some(rem), Some(full)) if full > 0.0 => Some(rem / full * 100.0),
            _ => None,
        };
        // The site is on grid only when every gateway that reports is.
        t.grid_status = if grid.is_empty() {
            None
        } else if grid.contains(&"DOWN") {
            Some("DOWN")
        } else if grid.contains(&"SYNCING") {
            Some("SYNCING")
        } else {
            Some("UP")
        };
        t.reserve = reserves.into_iter().reduce(f64::max);
        t.time_remaining_hours = match (t.energy_remaining, t.load) {
            (Some(rem), Some(load)) if load > 0.0 => Some(rem / load),
            _ => None,
        };
        t
    }

    /// The JSON form shared by REST and WebSocket messages.
    pub fn to_value(&self, id: &str, ts: f64, state: &str, simulated: bool) -> Value {
        Map::new()
            .with("type", "summary")
            .with("id", id)
            .with("ts", ts)
            .with("site", num(self.site))
            .with("solar", num(self.solar))
            .with("battery", num(self.battery))
            .with("load", num(self.load))
            .with("soe", num(self.soe))
            .with("soe_app", num(self.soe.map(app_scale)))
            .with(
                "grid_status",
                self.grid_status.map(Value::from).unwrap_or(Value::Null),
            )
            .with("reserve", num(self.reserve))
            .with("time_remaining_hours", num(self.time_remaining_hours))
            .with("full_pack_energy", num(self.full_pack_energy))
            .with("energy_remaining", num(self.energy_remaining))
            .with("state", state)
            .with("simulated", simulated)
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(full: f64, rem: f64, load: f64, grid: &'static str) -> Summary {
        Summary {
            site: Some(100.0),
            solar: Some(1000.0),
            battery: Some(-200.0),
            load: Some(load),
            soe: Some(rem / full * 100.0),
            grid_status: Some(grid),
            reserve: Some(20.0),
            full_pack_energy: Some(full),
            energy_remaining: Some(rem),
            ..Summary::default()
        }
    }

    #[test]
    fn total_weights_soe_by_full_pack_energy() {
        // 13.5 kWh at 50 % and 40.5 kWh at 10 %: (6750 + 4050) / 54000 = 20 %, not (50 + 10) / 2.
        let t = Summary::total([
            &part(13500.0, 6750.0, 500.0, "UP"),
            &part(40500.0, 4050.0, 700.0, "UP"),
        ]);
        assert_eq!(t.soe, Some(20.0));
        assert_eq!(t.full_pack_energy, Some(54000.0));
        assert_eq!(t.energy_remaining, Some(10800.0));
        assert_eq!(t.load, Some(1200.0));
        assert_eq!(t.site, Some(200.0));
        assert_eq!(t.time_remaining_hours, Some(9.0));
        assert_eq!(t.grid_status, Some("UP"));
        let t = Summary::total([
            &part(13500.0, 6750.0, 500.0, "UP"),
            &part(13500.0, 0.0, 0.0, "DOWN"),
        ]);
        assert_eq!(t.grid_status, Some("DOWN"));
        assert_eq!(t.soe, Some(25.0));
        assert_eq!(Summary::total([]).soe, None);
    }

    #[test]
    fn app_scale_matches_the_proxy() {
        assert_eq!(app_scale(24.074074074074073), 20.077972709551656);
    }
}
