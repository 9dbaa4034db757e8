//! The simulated home: power flows, state of energy and grid state, and how they move.
//!
//! One [`Model`] backs both the TEDAPI and the local REST views, so a knob or the clock moves
//! both consistently. Sign conventions are the gateway's: battery power is positive when
//! discharging, grid power positive when importing, and `grid = load − solar − battery`.
//!
//! Without `--frozen` the model steps in (at most) one-second increments whenever a request
//! reads it: solar follows a clear-sky bell curve of the site's local time (the fixtures are in
//! America/Los_Angeles; standard time, UTC−8, is used all year) times a slowly drifting cloud
//! factor, the load follows a daily profile plus mean-reverting noise, the battery covers the
//! difference within its power limit and reserve, and the state of energy integrates the battery
//! power. With `--frozen` nothing moves on its own; only the knobs change values.
//!
//! `touched` records which groups of values differ from the fixture, so the renderer can serve
//! an untouched fixture byte for byte.

use super::data::Site;

/// Power flows a scenario pins (W).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flows {
    pub solar: f64,
    pub load: f64,
    pub battery: f64,
}

/// Which groups of values no longer equal the fixture's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Touched {
    pub power: bool,
    pub soe: bool,
    pub grid: bool,
    /// Timestamps and other clock-driven values (only when not frozen).
    pub time: bool,
}

impl Touched {
    pub fn any(&self) -> bool {
        self.power || self.soe || self.grid || self.time
    }
}

/// The upstream simulator's scenarios: (name, solar, home, battery, grid up).
pub const SCENARIOS: &[(&str, f64, f64, f64, bool)] = &[
    ("battery-exporting", 0.0, 900.0, 3000.0, true),
    ("solar-exporting", 1500.0, 400.0, 0.0, true),
    ("solar-powered", 900.0, 900.0, 0.0, true),
    ("grid-powered", 0.0, 900.0, 0.0, true),
    ("self-powered", 500.0, 900.0, 400.0, true),
    ("battery-powered", 0.0, 900.0, 900.0, true),
    ("grid-charging", 0.0, 900.0, -300.0, true),
    ("solar-charging", 1200.0, 900.0, -300.0, true),
    ("sunny-day-outage", 4300.0, 1200.0, -3100.0, false),
    ("cloudy-day-outage", 600.0, 1400.0, 800.0, false),
    ("nighttime-outage", 0.0, 900.0, 900.0, false),
];

/// `/api/meters/aggregates` counters the model keeps, in [`Model::energy`] order.
pub const COUNTERS: [(&str, &str); 6] = [
    ("site", "energy_imported"),
    ("site", "energy_exported"),
    ("battery", "energy_imported"),
    ("battery", "energy_exported"),
    ("load", "energy_imported"),
    ("solar", "energy_exported"),
];

/// Hours the site's clock is behind UTC (Pacific Standard Time).
const SITE_UTC_OFFSET_H: f64 = -8.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub frozen: bool,
    pub solar: f64,
    pub load: f64,
    pub battery: f64,
    pub grid: f64,
    /// Raw state of energy in percent (what `nominalEnergyRemainingWh / full` gives).
    pub soe_pct: f64,
    pub full_wh: f64,
    pub grid_up: bool,
    /// Name of the active upstream scenario ("" when none).
    pub scenario: String,
    pub touched: Touched,
    /// `config.json` as a v1r write left it (text, hash); `None`: the fixture's.
    pub config: Option<std::sync::Arc<(String, Vec<u8>)>>,
    /// Lifetime counters (Wh) that grow with the simulated power: [`COUNTERS`] order.
    pub energy: [f64; 6],
    /// Unix time the simulator started and the model last stepped to.
    pub started: f64,
    pub last: f64,
    hold: Option<Flows>,
    solar_override: Option<f64>,
    max_battery_w: f64,
    solar_peak_w: f64,
    reserve_pct: f64,
    load_dev: f64,
    track_err: f64,
    cloud: f64,
    rng: u64,
}

impl Model {
    /// The fixture's values at `now` (unix seconds).
    pub fn new(site: &Site, frozen: bool, now: f64) -> Model {
        let status = &site.status.tpl;
        let energy = |k: &str| {
            status
                .path(&["control", "systemStatus", k])
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0)
        };
        let full_wh = energy("nominalFullPackEnergyWh").max(1.0);
        let seed = (now.to_bits() ^ 0x9E37_79B9_7F4A_7C15) | 1;
        Model {
            frozen,
            solar: site.power("SOLAR"),
            load: site.power("LOAD"),
            battery: site.power("BATTERY"),
            grid: site.power("SITE"),
            soe_pct: energy("nominalEnergyRemainingWh") / full_wh * 100.0,
            full_wh,
            // Every fixture starts on grid (the pw2 data's TEDAPI side says "unknown", its local
            // API says connected).
            grid_up: true,
            scenario: String::new(),
            touched: Touched::default(),
            config: None,
            energy: COUNTERS.map(|(section, key)| {
                site.local_aggregates
                    .tpl
                    .path(&[section, key])
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0)
            }),
            started: now,
            last: now,
            hold: None,
            solar_override: None,
            max_battery_w: site.max_battery_w,
            solar_peak_w: site.solar_peak_w,
            reserve_pct: site.reserve_pct,
            load_dev: 0.0,
            track_err: 0.0,
            cloud: 0.9,
            rng: seed,
        }
    }

    // ---- knobs (upstream `/test/` names) ------------------------------------------------------

    /// `/test/battery-percentage/<p>`: stores `0.95·p + 5` as the raw SOE, as upstream does so
    /// that pypowerwall's app scale shows `p`.
    pub fn set_battery_percentage(&mut self, p: f64) {
        self.soe_pct = (0.95 * p + 5.0).clamp(0.0, 100.0);
        self.scenario.clear();
        self.touched.soe = true;
    }

    /// `/test/solar-power/<w>`: solar stays at `w` until a scenario or reset.
    pub fn set_solar(&mut self, w: f64) {
        self.solar_override = Some(w);
        self.solar = w;
        self.balance();
        self.touched.power = true;
    }

    /// `/test/toggle-grid`; returns whether the grid is now up.
    pub fn toggle_grid(&mut self) -> bool {
        self.grid_up = !self.grid_up;
        self.scenario.clear();
        self.balance();
        self.touched.grid = true;
        self.touched.power = true;
        self.grid_up
    }

    /// The current `config.json` text and hash.
    pub fn config_file<'a>(&'a self, site: &'a Site) -> (&'a str, &'a [u8]) {
        match &self.config {
            Some(c) => (c.0.as_str(), c.1.as_slice()),
            None => (site.config_text, site.config_hash.as_slice()),
        }
    }

    #[cfg_attr(not(feature = "v1r"), allow(dead_code))]
    /// A v1r config write: stores the text (new hash = SHA-256) and follows the reserve.
    pub fn write_config(&mut self, text: String) {
        let hash = ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
            .as_ref()
            .to_vec();
        if let Some(raw) = crate::json::parse(&text).ok().and_then(|v| {
            v.path(&["site_info", "backup_reserve_percent"])
                .and_then(|r| r.as_f64())
        }) {
            self.reserve_pct = raw.clamp(0.0, 100.0);
        }
        self.config = Some(std::sync::Arc::new((text, hash)));
    }

    #[cfg_attr(not(feature = "v1r"), allow(dead_code))]
    /// Takes the reserve a v1r write set on `other` (a copy of this model).
    pub fn write_reserve_from(&mut self, other: &Model) {
        self.reserve_pct = other.reserve_pct;
    }

    #[cfg_attr(not(feature = "v1r"), allow(dead_code))]
    /// v1r island mode: the grid contactor opens (`false`) or closes.
    pub fn set_grid(&mut self, up: bool) {
        if self.grid_up != up {
            self.toggle_grid();
        }
    }

    /// `/test/scenario/<name>`; false for an unknown name.
    pub fn set_scenario(&mut self, name: &str) -> bool {
        let Some(&(_, solar, load, battery, up)) = SCENARIOS.iter().find(|s| s.0 == name) else {
            return false;
        };
        self.scenario = name.to_string();
        self.hold = Some(Flows {
            solar,
            load,
            battery,
        });
        self.solar_override = None;
        (self.solar, self.load, self.battery, self.grid_up) = (solar, load, battery, up);
        self.balance();
        self.touched.power = true;
        self.touched.grid = true;
        true
    }

    /// Keeps `grid = load − solar − battery`; off grid the battery takes the difference.
    fn balance(&mut self) {
        if self.grid_up {
            self.grid = self.load - self.solar - self.battery;
        } else {
            self.battery = self.load - self.solar;
            self.grid = 0.0;
        }
    }

    // ---- the clock ------------------------------------------------------------------------------

    /// Moves the home forward to `now` (unix seconds); nothing happens when frozen.
    pub fn advance(&mut self, now: f64) {
        if self.frozen {
            return;
        }
        let span = now - self.last;
        if span <= 0.0 {
            return;
        }
        // One-second steps; after a long pause at most an hour's worth of (longer) steps.
        let steps = span.ceil().clamp(1.0, 3600.0);
        let dt = span / steps;
        for k in 1..=steps as u64 {
            self.step(self.last + dt * k as f64, dt);
        }
        self.last = now;
        self.touched = Touched {
            power: true,
            soe: true,
            grid: true,
            time: true,
        };
    }

    fn step(&mut self, t: f64, dt: f64) {
        let hour = local_hour(t);
        // Clouds drift slowly around 0.9 of clear sky.
        self.cloud =
            (self.cloud + 0.1 * (0.9 - self.cloud) * dt / 60.0 + 0.01 * self.gauss() * dt.sqrt())
                .clamp(0.45, 1.0);
        let natural_solar = self.solar_peak_w * sun(hour) * self.cloud;
        // Load: a daily profile plus noise that reverts to it within minutes.
        self.load_dev += -self.load_dev * (dt / 180.0).min(1.0) + 40.0 * self.gauss() * dt.sqrt();
        let natural_load = (load_profile(hour) + self.load_dev).max(120.0);

        let (solar, load) = match self.hold {
            Some(h) => (self.solar_override.unwrap_or(h.solar), h.load),
            None => (self.solar_override.unwrap_or(natural_solar), natural_load),
        };
        self.solar = solar;
        self.load = load;
        // The battery controller tracks the home's need with a small, quickly corrected error,
        // so the site meter hovers around 0 W instead of sitting on it.
        self.track_err += -self.track_err * (dt / 5.0).min(1.0) + 10.0 * self.gauss() * dt.sqrt();
        let want = match self.hold {
            Some(h) => h.battery,
            None => load - solar - self.track_err,
        };
        let empty = if self.grid_up { self.reserve_pct } else { 0.0 };
        let mut battery = want.clamp(-self.max_battery_w, self.max_battery_w);
        if (battery > 0.0 && self.soe_pct <= empty) || (battery < 0.0 && self.soe_pct >= 100.0) {
            battery = 0.0;
        }
        if self.grid_up {
            self.battery = battery;
            self.grid = load - solar - battery;
        } else {
            // Islanded: the battery must balance; what it cannot cover is shed (load) or
            // curtailed (solar).
            let need = load - solar;
            if need > battery {
                self.load = solar + battery.max(0.0);
            } else if need < battery {
                self.solar = load - battery.min(0.0);
            }
            self.battery = self.load - self.solar;
            self.grid = 0.0;
        }
        self.soe_pct =
            (self.soe_pct - self.battery * dt / 3600.0 / self.full_wh * 100.0).clamp(0.0, 100.0);
        // The meters integrate what flowed (Wh), each direction on its own counter.
        let h = dt / 3600.0;
        for (e, w) in self.energy.iter_mut().zip([
            self.grid.max(0.0),
            (-self.grid).max(0.0),
            (-self.battery).max(0.0),
            self.battery.max(0.0),
            self.load.max(0.0),
            self.solar.max(0.0),
        ]) {
            *e += w * h;
        }
    }

    /// Integer watts as the gateway reports them, with `site + battery + solar = load` exact.
    pub fn watts(&self) -> (i64, i64, i64, i64) {
        let (solar, load, battery) = (
            self.solar.round() as i64,
            self.load.round() as i64,
            self.battery.round() as i64,
        );
        (load - solar - battery, battery, load, solar)
    }

    /// Energy remaining in Wh for `full` Wh of capacity: exact while frozen (a knob's value
    /// round-trips), whole watt-hours like a real gateway otherwise.
    pub fn remaining(&self, full: f64) -> f64 {
        let wh = self.soe_pct / 100.0 * full;
        if self.frozen {
            wh
        } else {
            wh.round()
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly standard normal (Irwin–Hall of 4 uniforms, rescaled).
    fn gauss(&mut self) -> f64 {
        let s: f64 = (0..4).map(|_| self.uniform()).sum();
        (s - 2.0) * 1.732
    }
}

/// Site-local hour of day in [0, 24).
pub fn local_hour(t: f64) -> f64 {
    (t / 3600.0 + SITE_UTC_OFFSET_H).rem_euclid(24.0)
}

/// Clear-sky fraction of peak solar: a bell between 06:00 and 18:00, 0 at night.
pub fn sun(hour: f64) -> f64 {
    if !(6.0..18.0).contains(&hour) {
        return 0.0;
    }
    let s = (std::f64::consts::PI * (hour - 6.0) / 12.0).sin();
    s * s
}

/// Typical household consumption (W) by hour: base load, a morning and an evening peak.
pub fn load_profile(hour: f64) -> f64 {
    let bump =
        |center: f64, width: f64, height: f64| height * (-((hour - center) / width).powi(2)).exp();
    350.0 + bump(7.5, 1.0, 700.0) + bump(13.0, 3.0, 250.0) + bump(19.0, 1.8, 1400.0)
}

/// One moment of the demo home's simulated past.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PastSample {
    pub ts: f64,
    pub solar: f64,
    pub load: f64,
    /// Positive when discharging.
    pub battery: f64,
    /// Raw state of energy (%).
    pub soe: f64,
}

/// The demo home's past from `start` to `end`, one sample every `every` s (at most 20,000):
/// each day its own cloud cover, the live model's load profile and battery rules (27 kWh,
/// 10 kW, 20 % reserve), so `--demo` charts show a week at once.
pub fn past(start: f64, end: f64, every: f64) -> Vec<PastSample> {
    const FULL_WH: f64 = 27_000.0;
    const MAX_W: f64 = 10_000.0;
    const PEAK_W: f64 = 7_000.0;
    if !(every >= 1.0 && end > start) {
        return Vec::new();
    }
    let n = (((end - start) / every) as usize).min(20_000);
    let mut out = Vec::with_capacity(n);
    let mut soe = 50.0;
    for k in 0..n {
        let ts = start + k as f64 * every;
        let hour = local_hour(ts);
        let day = ((ts / 3600.0 + SITE_UTC_OFFSET_H) / 24.0).floor() as i64;
        // A fixed cloud cover per day (0.35..1.0) and a little wobble within it.
        let seed = (day as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let cover = 0.35 + 0.65 * (seed % 1000) as f64 / 999.0;
        let wobble = 1.0 + 0.08 * (ts / 900.0).sin();
        let solar = (PEAK_W * sun(hour) * cover * wobble).max(0.0);
        let load = load_profile(hour) * (1.0 + 0.1 * (ts / 1300.0).cos());
        let mut battery = (load - solar).clamp(-MAX_W, MAX_W);
        if (battery > 0.0 && soe <= 20.0) || (battery < 0.0 && soe >= 100.0) {
            battery = 0.0;
        }
        soe = (soe - battery * every / 3600.0 / FULL_WH * 100.0).clamp(0.0, 100.0);
        out.push(PastSample {
            ts,
            solar,
            load,
            battery,
            soe,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Fixture;

    #[test]
    fn night_has_no_sun_and_noon_is_peak() {
        assert_eq!(sun(3.0), 0.0);
        assert_eq!(sun(20.0), 0.0);
        assert!((sun(12.0) - 1.0).abs() < 1e-9);
        // 20:00 UTC = 12:00 PST
        assert!((local_hour(20.0 * 3600.0) - 12.0).abs() < 1e-9);
    }

    #[test]
    fn moving_model_balances_and_integrates() {
        let site = Site::load(Fixture::Demo).unwrap();
        let t0 = 1_718_996_400.0; // 2024-06-21 19:00 UTC = 11:00 PST
        let mut m = Model::new(&site, false, t0);
        let soe0 = m.soe_pct;
        m.advance(t0 + 600.0);
        let (site_w, battery, load, solar) = m.watts();
        assert_eq!(site_w + battery + solar, load);
        assert!(solar > 1000, "late morning sun: {solar}");
        assert!(m.soe_pct > soe0, "charging from solar");
        // Night: no solar, battery covers the load above reserve.
        let mut n = Model::new(&site, false, t0 + 12.0 * 3600.0);
        n.soe_pct = 80.0;
        n.advance(t0 + 12.0 * 3600.0 + 120.0);
        assert_eq!(n.solar, 0.0);
        assert!(n.battery > 0.0);
        assert!(
            n.grid.abs() < 200.0,
            "battery covers the load: grid {}",
            n.grid
        );
    }

    #[test]
    fn frozen_model_only_moves_by_knobs() {
        let site = Site::load(Fixture::Pw2).unwrap();
        let mut m = Model::new(&site, true, 0.0);
        m.advance(10_000.0);
        assert!(!m.touched.any());
        assert_eq!(m.watts(), (-2100, -3500, 900, 6500));
        m.set_solar(1000.0);
        assert_eq!(m.watts(), (3400, -3500, 900, 1000));
        assert!(m.set_scenario("nighttime-outage"));
        assert_eq!(m.watts(), (0, 900, 900, 0));
        assert!(!m.grid_up);
        m.set_battery_percentage(50.0);
        assert_eq!(m.soe_pct, 52.5);
        assert_eq!(m.remaining(27000.0), 14175.0);
        assert!(!m.set_scenario("nope"));
    }

    #[test]
    fn islanded_model_sheds_or_curtails() {
        let site = Site::load(Fixture::Demo).unwrap();
        let t0 = 1_718_996_400.0 + 12.0 * 3600.0; // night
        let mut m = Model::new(&site, false, t0);
        m.toggle_grid();
        m.soe_pct = 0.0;
        m.advance(t0 + 5.0);
        assert_eq!(m.grid, 0.0);
        assert_eq!(m.battery, 0.0);
        assert_eq!(m.load, 0.0, "empty battery at night, off grid: blackout");
    }
}
