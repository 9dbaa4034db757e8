//! Read side: plain structs for the `/api/timeseries/*` routes (today, daily, trend, samples,
//! status) and for merging gateways into "All sites". Units are the engine's (W, Wh, Unix
//! seconds); the route layer converts to the Python server's kW / kWh and JSON names.

use std::path::PathBuf;

use super::energy::{DayRec, FLAG_GAP, FLAG_RESET};
use super::zone::{date_string, Day};
use super::{archive::Slot, Flow, Recorder, Storage, FLOWS};

/// Where a day's energy of one flow came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Nothing recorded.
    None,
    /// The gateway's lifetime counters only.
    Meters,
    /// The integral of the power samples only (no counters, or after a reset).
    Integrated,
    /// Both, in different intervals.
    Mixed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::None => "none",
            Source::Meters => "meters",
            Source::Integrated => "integrated",
            Source::Mixed => "mixed",
        }
    }

    fn of(meters: bool, integral: bool) -> Source {
        match (meters, integral) {
            (false, false) => Source::None,
            (true, false) => Source::Meters,
            (false, true) => Source::Integrated,
            (true, true) => Source::Mixed,
        }
    }

    fn merge(self, other: Source) -> Source {
        let m = matches!(self, Source::Meters | Source::Mixed)
            || matches!(other, Source::Meters | Source::Mixed);
        let i = matches!(self, Source::Integrated | Source::Mixed)
            || matches!(other, Source::Integrated | Source::Mixed);
        Source::of(m, i)
    }
}

/// One local day's energy (`/api/timeseries/today` and `/daily`).
#[derive(Debug, Clone, PartialEq)]
pub struct DayEnergy {
    pub day: Day,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Energy per flow (Wh), indexed by [`Flow`].
    pub wh: [f64; FLOWS],
    /// The power integral per flow (Wh), for comparison with `wh`.
    pub integral_wh: [f64; FLOWS],
    pub source: [Source; FLOWS],
    /// A counter went backwards this day.
    pub counter_reset: bool,
    /// Some energy is missing (a gap with neither counters nor samples).
    pub gap: bool,
    /// Unix second of the last sample that counted, when any did.
    pub last_ts: Option<i64>,
}

impl DayEnergy {
    fn empty(day: Day) -> DayEnergy {
        DayEnergy {
            day,
            date: date_string(day),
            wh: [0.0; FLOWS],
            integral_wh: [0.0; FLOWS],
            source: [Source::None; FLOWS],
            counter_reset: false,
            gap: false,
            last_ts: None,
        }
    }

    fn from_rec(r: &DayRec) -> DayEnergy {
        DayEnergy {
            day: r.day,
            date: date_string(r.day),
            wh: r.wh,
            integral_wh: r.integral,
            source: std::array::from_fn(|q| Source::of(r.used_meters(q), r.used_integral(q))),
            counter_reset: r.flags & FLAG_RESET != 0,
            gap: r.flags & FLAG_GAP != 0,
            last_ts: (r.intervals > 0).then_some(i64::from(r.last_ts)),
        }
    }

    pub fn kwh(&self, f: Flow) -> f64 {
        self.wh[f as usize] / 1000.0
    }

    /// Self-powered share of home use (%): the part not bought from the grid.
    pub fn self_powered_pct(&self) -> Option<f64> {
        let home = self.wh[Flow::Home as usize];
        (home > 0.0)
            .then(|| ((1.0 - self.wh[Flow::GridImport as usize] / home) * 100.0).clamp(0.0, 100.0))
    }

    fn add(&mut self, o: &DayEnergy) {
        for q in 0..FLOWS {
            self.wh[q] += o.wh[q];
            self.integral_wh[q] += o.integral_wh[q];
            self.source[q] = self.source[q].merge(o.source[q]);
        }
        self.counter_reset |= o.counter_reset;
        self.gap |= o.gap;
        self.last_ts = self.last_ts.max(o.last_ts);
    }
}

/// Power over one slot or bucket (`/trend`, `/samples`).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Start (Unix seconds).
    pub ts: i64,
    /// Length (s).
    pub seconds: i64,
    /// Samples averaged.
    pub n: u32,
    /// Average power per flow (W, ≥ 0), indexed by [`Flow`].
    pub w: [f64; FLOWS],
    /// Raw SOE (%): average, minimum, maximum.
    pub soe: Option<f64>,
    pub soe_min: Option<f64>,
    pub soe_max: Option<f64>,
}

impl Point {
    fn of_slot(ts: i64, seconds: i64, s: &Slot) -> Point {
        Point {
            ts,
            seconds,
            n: u32::from(s.n),
            // The f32 a slot keeps, to 0.01 W (not the f32's binary tail).
            w: s.avg.map(|v| (f64::from(v) * 100.0).round() / 100.0),
            soe: s.soe(0),
            soe_min: s.soe(1),
            soe_max: s.soe(2),
        }
    }

    pub fn flow(&self, f: Flow) -> f64 {
        self.w[f as usize]
    }

    /// Battery power, Tesla sign (W, positive = discharging).
    pub fn battery_w(&self) -> f64 {
        self.flow(Flow::BatteryDischarge) - self.flow(Flow::BatteryCharge)
    }

    /// Grid power, Tesla sign (W, positive = importing).
    pub fn grid_w(&self) -> f64 {
        self.flow(Flow::GridImport) - self.flow(Flow::GridExport)
    }

    /// SOE on the Tesla app's scale (exact: the scale is linear in the raw value).
    pub fn soe_app(&self) -> Option<f64> {
        self.soe.map(crate::render::summary::app_scale)
    }

    /// Folds `o` (a later slot of the same bucket) into this point, weighting by samples.
    fn absorb(&mut self, o: &Point) {
        let (a, b) = (f64::from(self.n), f64::from(o.n));
        let total = (a + b).max(1.0);
        for q in 0..FLOWS {
            self.w[q] = (self.w[q] * a + o.w[q] * b) / total;
        }
        self.soe = match (self.soe, o.soe) {
            (Some(x), Some(y)) => Some((x * a + y * b) / total),
            (x, y) => x.or(y),
        };
        self.soe_min = min_opt(self.soe_min, o.soe_min);
        self.soe_max = max_opt(self.soe_max, o.soe_max);
        self.n += o.n;
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// Bucketed power over a time range.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub start: i64,
    pub end: i64,
    pub bucket_seconds: i64,
    /// Slot length of the archive the points came from.
    pub resolution_seconds: i64,
    /// Buckets with data, oldest first.
    pub points: Vec<Point>,
}

/// The most points a trend returns, whatever is asked.
pub const MAX_TREND_POINTS: usize = 10_000;

/// One archive's fill level.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveStatus {
    pub slot_seconds: i64,
    /// Slots the spec keeps at least.
    pub keep: i64,
    /// Slots in the ring.
    pub ring: i64,
    /// Slots holding data.
    pub filled: usize,
    pub oldest_ts: Option<i64>,
    pub newest_ts: Option<i64>,
}

/// Engine and storage health (`/api/timeseries/status`).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub path: Option<PathBuf>,
    /// The file is open and the last flush (if any) succeeded.
    pub persisted: bool,
    /// Fixed size of the file for this spec.
    pub file_bytes: u64,
    pub heap_bytes: usize,
    pub zone: String,
    pub step: u32,
    pub archives: Vec<ArchiveStatus>,
    /// Days holding data, and how many the ring can hold.
    pub days: usize,
    pub days_capacity: usize,
    pub first_day: Option<Day>,
    pub last_day: Option<Day>,
    pub last_sample_ts: Option<f64>,
    /// Pages changed since the last flush.
    pub dirty_pages: usize,
    pub flushes: u64,
    /// 4 KiB page writes since the file was created (journal included).
    pub page_writes: u64,
    pub write_failures: u64,
    /// The storage error being suffered, if any.
    pub last_error: Option<String>,
    /// What opening the file found (set aside, damaged pages).
    pub open_problems: Vec<String>,
}

impl Recorder {
    /// The energy of the local day containing `now` (zeros when nothing was recorded).
    pub fn today(&self, now: i64) -> DayEnergy {
        let day = self.zone.day_of(now);
        self.day(day).unwrap_or_else(|| DayEnergy::empty(day))
    }

    /// One day, when it holds data.
    pub fn day(&self, day: Day) -> Option<DayEnergy> {
        self.days.get(day).map(DayEnergy::from_rec)
    }

    /// Days `first..=last` that hold data, oldest first.
    pub fn daily(&self, first: Day, last: Day) -> Vec<DayEnergy> {
        let rows = self.days.recs.len() as i64;
        let first = i64::from(first).max(i64::from(last) - rows + 1);
        (first..=i64::from(last))
            .filter_map(|d| self.day(d as Day))
            .collect()
    }

    /// Every day kept ("All").
    pub fn all_days(&self) -> Vec<DayEnergy> {
        let mut v: Vec<DayEnergy> = self
            .days
            .recs
            .written()
            .filter(|r| r.day != Day::MIN)
            .map(DayEnergy::from_rec)
            .collect();
        v.sort_by_key(|d| d.day);
        v
    }

    /// The last `n` local days up to and including the one of `now` (`?days=n`).
    pub fn last_days(&self, now: i64, n: u32) -> Vec<DayEnergy> {
        let last = self.zone.day_of(now);
        let first = i64::from(last) - i64::from(n.max(1)) + 1;
        self.daily(first.max(i64::from(Day::MIN) + 1) as Day, last)
    }

    /// Power from `start` to `end` (Unix seconds) in at most `max_points` buckets, from the
    /// finest archive that still covers `start`.
    pub fn trend(&self, start: i64, end: i64, max_points: usize) -> Trend {
        let end = end.max(start);
        let max_points = max_points.clamp(1, MAX_TREND_POINTS) as i64;
        let pick = self
            .archives
            .iter()
            .find(|a| match a.newest() {
                Some(n) => start >= (n - a.keep + 1) * a.slot_secs,
                None => false,
            })
            .or_else(|| self.archives.last());
        let Some(a) = pick else {
            return Trend {
                start,
                end,
                bucket_seconds: 0,
                resolution_seconds: 0,
                points: Vec::new(),
            };
        };
        let slot = a.slot_secs;
        let ceil = |a: i64, b: i64| (a + b - 1) / b;
        let want = ceil(end - start, max_points).max(1);
        let bucket = ceil(want, slot) * slot;
        let mut points: Vec<Point> = Vec::new();
        for (p, s) in a.iter(start.div_euclid(slot), (end - 1).div_euclid(slot)) {
            let ts = p * slot;
            let b = ts.div_euclid(bucket) * bucket;
            let pt = Point::of_slot(ts, slot, s);
            match points.last_mut() {
                Some(last) if last.ts == b => last.absorb(&pt),
                _ => points.push(Point {
                    ts: b,
                    seconds: bucket,
                    ..pt
                }),
            }
        }
        Trend {
            start,
            end,
            bucket_seconds: bucket,
            resolution_seconds: slot,
            points,
        }
    }

    /// The newest `limit` slots of the finest archive, oldest first (`/samples?limit=`).
    pub fn samples(&self, limit: usize) -> Vec<Point> {
        let Some(a) = self.archives.first() else {
            return Vec::new();
        };
        let Some(newest) = a.newest() else {
            return Vec::new();
        };
        let limit = limit.min(a.rows() as usize);
        let mut v: Vec<Point> = a
            .iter(newest - a.rows() + 1, newest)
            .map(|(p, s)| Point::of_slot(p * a.slot_secs, a.slot_secs, s))
            .collect();
        v.drain(..v.len().saturating_sub(limit));
        v
    }

    pub fn status(&self) -> Status {
        let archives = self
            .archives
            .iter()
            .map(|a| {
                let (mut filled, mut oldest, mut newest) = (0, None, None);
                if let Some(n) = a.newest() {
                    for (p, _) in a.iter(n - a.rows() + 1, n) {
                        filled += 1;
                        oldest = oldest.or(Some(p * a.slot_secs));
                        newest = Some(p * a.slot_secs);
                    }
                }
                ArchiveStatus {
                    slot_seconds: a.slot_secs,
                    keep: a.keep,
                    ring: a.rows(),
                    filled,
                    oldest_ts: oldest,
                    newest_ts: newest,
                }
            })
            .collect();
        let days: Vec<Day> = self
            .days
            .recs
            .written()
            .map(|r| r.day)
            .filter(|&d| d != Day::MIN)
            .collect();
        let dirty = self
            .archives
            .iter()
            .map(|a| a.dirty.iter().filter(|d| **d).count())
            .sum::<usize>()
            + self.days.dirty.iter().filter(|d| **d).count()
            + usize::from(self.state_dirty);
        Status {
            path: match &self.storage {
                Storage::File(p) => Some(p.clone()),
                Storage::Memory => None,
            },
            persisted: self.store.is_some() && self.failing.is_none(),
            file_bytes: self.file_bytes(),
            heap_bytes: self.heap_bytes(),
            zone: self.zone.name().to_string(),
            step: self.spec.step,
            archives,
            days: days.len(),
            days_capacity: self.days.recs.len(),
            first_day: days.iter().copied().min(),
            last_day: days.iter().copied().max(),
            last_sample_ts: self.cursor.map(|c| c.ts),
            dirty_pages: dirty,
            flushes: self.counters.flushes,
            page_writes: self.counters.page_writes,
            write_failures: self.counters.write_failures,
            last_error: self.failing.clone(),
            open_problems: self.opened.clone(),
        }
    }
}

/// Sums several gateways' days into one list by date ("All sites").
pub fn merge_daily(parts: &[Vec<DayEnergy>]) -> Vec<DayEnergy> {
    let mut out: Vec<DayEnergy> = Vec::new();
    for d in parts.iter().flatten() {
        match out.binary_search_by_key(&d.day, |x| x.day) {
            Ok(i) => out[i].add(d),
            Err(i) => out.insert(i, d.clone()),
        }
    }
    out
}

/// Sums several gateways' points by start time ("All sites"): powers add up; SOE is the plain
/// mean of the gateways that report one.
// FIXME: weight SOE by each gateway's full-pack energy (as `Summary::total` does) once the
// recorder keeps it.
pub fn merge_points(parts: &[Vec<Point>]) -> Vec<Point> {
    let mut out: Vec<(Point, u32)> = Vec::new();
    for p in parts.iter().flatten() {
        match out.binary_search_by_key(&p.ts, |x| x.0.ts) {
            Ok(i) => {
                let (acc, k) = &mut out[i];
                for q in 0..FLOWS {
                    acc.w[q] += p.w[q];
                }
                if let Some(s) = p.soe {
                    let kk = f64::from(*k);
                    acc.soe = Some(acc.soe.map_or(s, |a| (a * kk + s) / (kk + 1.0)));
                    *k += 1;
                }
                acc.soe_min = min_opt(acc.soe_min, p.soe_min);
                acc.soe_max = max_opt(acc.soe_max, p.soe_max);
                acc.n = acc.n.max(p.n);
            }
            Err(i) => out.insert(i, (p.clone(), u32::from(p.soe.is_some()))),
        }
    }
    out.into_iter().map(|(p, _)| p).collect()
}
