//! Daily energy per local day, from the gateway's lifetime meter counters or, without them, from
//! the integral of the power samples.
//!
//! Each interval between two samples adds, per flow, the counter delta when both samples carry
//! that counter and it moved forward by a plausible amount; otherwise (counter absent, reset to a
//! lower value, or a glitch) it adds the trapezoid integral of the two samples' powers. Every day
//! records which of the two it used, per flow, and keeps the power integral beside the result so
//! the two can be compared. An interval that spans midnight (or a restart of several days) is
//! split across the days by time, so an outage of this server loses no energy when counters exist.
//!
//! **Invariant:** energy is never negative; a reset costs at most one interval's counter delta,
//! which the integral replaces.

use std::collections::TryReserveError;

use super::paged::Paged;
use super::zone::{Day, Zone};
use super::{filled, FLOWS};

/// Bytes of one day record in a page.
pub(crate) const DAY_BYTES: usize = 60;
/// Day records per 4 KiB page.
pub(crate) const DAYS_PER_PAGE: usize =
    (super::store::PAGE - super::store::PAGE_HEADER) / DAY_BYTES;
/// The longest interval whose power integral is trusted (s); longer gaps add no integral.
pub const MAX_INTEGRATION_GAP: f64 = 600.0;
/// A counter delta above this average power (W, over at least a minute) is a glitch.
const MAX_PLAUSIBLE_W: f64 = 1_000_000.0;
/// Counters that step back by less than this (Wh) are rounding noise, not a reset.
const COUNTER_JITTER_WH: f64 = 1.0;

/// Flag bits of a day: bit `q` = meters used for flow `q`, bit `8 + q` = integral used.
const METER_BIT: u16 = 1;
const INTEGRAL_BIT: u16 = 1 << 8;
/// A counter went backwards this day (a reset or meter swap).
pub(crate) const FLAG_RESET: u16 = 1 << 6;
/// Some interval had neither counters nor a short enough gap: energy is missing.
pub(crate) const FLAG_GAP: u16 = 1 << 7;

/// One local day's energy, as kept in memory (f64) and in the file (f32).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DayRec {
    /// `Day::MIN` for an empty record.
    pub day: Day,
    pub flags: u16,
    /// Intervals added (saturating).
    pub intervals: u16,
    /// Unix second of the last sample that added to this day.
    pub last_ts: u32,
    /// Energy per flow (Wh).
    pub wh: [f64; FLOWS],
    /// Trapezoid integral of the power samples per flow (Wh), whatever `wh` came from.
    pub integral: [f64; FLOWS],
}

impl DayRec {
    pub const EMPTY: DayRec = DayRec {
        day: Day::MIN,
        flags: 0,
        intervals: 0,
        last_ts: 0,
        wh: [0.0; FLOWS],
        integral: [0.0; FLOWS],
    };

    fn new(day: Day) -> DayRec {
        DayRec {
            day,
            ..DayRec::EMPTY
        }
    }

    pub fn used_meters(&self, q: usize) -> bool {
        self.flags & (METER_BIT << q) != 0
    }

    pub fn used_integral(&self, q: usize) -> bool {
        self.flags & (INTEGRAL_BIT << q) != 0
    }

    pub fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.day.to_le_bytes());
        out[4..6].copy_from_slice(&self.flags.to_le_bytes());
        out[6..8].copy_from_slice(&self.intervals.to_le_bytes());
        out[8..12].copy_from_slice(&self.last_ts.to_le_bytes());
        for (k, v) in self.wh.iter().chain(&self.integral).enumerate() {
            out[12 + 4 * k..16 + 4 * k].copy_from_slice(&(*v as f32).to_le_bytes());
        }
    }

    /// From `DAY_BYTES` bytes; non-finite or negative energies read as 0.
    pub fn decode(b: &[u8]) -> DayRec {
        let arr4 = |i: usize| {
            b.get(i..i + 4)
                .and_then(|x| <[u8; 4]>::try_from(x).ok())
                .unwrap_or([0; 4])
        };
        let u16_at = |i: usize| {
            b.get(i..i + 2)
                .and_then(|x| <[u8; 2]>::try_from(x).ok())
                .map(u16::from_le_bytes)
                .unwrap_or(0)
        };
        let f = |k: usize| {
            let v = f64::from(f32::from_le_bytes(arr4(12 + 4 * k)));
            if v.is_finite() && v >= 0.0 {
                v
            } else {
                0.0
            }
        };
        DayRec {
            day: i32::from_le_bytes(arr4(0)),
            flags: u16_at(4),
            intervals: u16_at(6),
            last_ts: u32::from_le_bytes(arr4(8)),
            wh: std::array::from_fn(f),
            integral: std::array::from_fn(|k| f(FLOWS + k)),
        }
    }
}

/// The ring of days (`day mod rows`), each record naming its own day.
#[derive(Debug, Clone)]
pub(crate) struct Days {
    pub recs: Paged<DayRec>,
    pub dirty: Vec<bool>,
    /// Days the spec asked to keep.
    pub keep: i64,
}

impl Days {
    /// A copy, or the error when its memory cannot be had.
    pub fn try_clone(&self) -> Result<Days, std::collections::TryReserveError> {
        Ok(Days {
            recs: self.recs.try_clone()?,
            dirty: super::try_copy(&self.dirty)?,
            keep: self.keep,
        })
    }

    pub fn pages_for(keep: u32) -> usize {
        (keep as usize).div_ceil(DAYS_PER_PAGE)
    }

    /// Empty days, or `Err` when memory for them cannot be had.
    pub fn try_new(keep: u32) -> Result<Days, TryReserveError> {
        let pages = Days::pages_for(keep);
        Ok(Days {
            recs: Paged::try_new(pages, DAYS_PER_PAGE, DayRec::EMPTY)?,
            dirty: filled(pages, false)?,
            keep: i64::from(keep),
        })
    }

    #[cfg(test)]
    pub fn new(keep: u32) -> Days {
        Days::try_new(keep).expect("memory for test days")
    }

    fn pos(&self, day: Day) -> usize {
        i64::from(day).rem_euclid(self.recs.len() as i64) as usize
    }

    pub fn get(&self, day: Day) -> Option<&DayRec> {
        self.recs.get(self.pos(day)).filter(|r| r.day == day)
    }

    /// The record of `day`, replacing the day in its place (a lap older, or — after a clock
    /// that ran years ahead was corrected — a lap newer).
    fn entry(&mut self, day: Day) -> Option<&mut DayRec> {
        let pos = self.pos(day);
        let rec = self.recs.get_mut(pos)?;
        if rec.day != day {
            *rec = DayRec::new(day);
        }
        if let Some(d) = self.dirty.get_mut(pos / DAYS_PER_PAGE) {
            *d = true;
        }
        Some(rec)
    }

    /// The newest day with a record.
    #[cfg(test)]
    pub fn newest(&self) -> Option<Day> {
        self.recs
            .written()
            .map(|r| r.day)
            .filter(|&d| d != Day::MIN)
            .max()
    }
}

/// The last sample, which the next interval starts from (kept in the file's state page).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cursor {
    pub ts: f64,
    /// Lifetime counters (Wh, NaN = absent).
    pub meters: [f64; FLOWS],
    /// Powers of the flows (W).
    pub power: [f64; FLOWS],
}

/// Caches the bounds of the day being filled, so a tick costs no time-zone lookup.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DayCache {
    day: Day,
    start: i64,
    end: i64,
}

impl DayCache {
    pub fn day_of(&mut self, zone: &Zone, t: i64) -> Day {
        if t < self.start || t >= self.end {
            let day = zone.day_of(t);
            *self = DayCache {
                day,
                start: zone.day_start(day),
                end: zone.day_start(day.saturating_add(1)),
            };
        }
        self.day
    }

    pub fn clear(&mut self) {
        *self = DayCache::default();
    }
}

/// Adds the interval from `prev` to `cur` to the days it covers.
pub(crate) fn add_interval(
    days: &mut Days,
    zone: &Zone,
    cache: &mut DayCache,
    prev: &Cursor,
    cur: &Cursor,
) {
    let dt = cur.ts - prev.ts;
    if dt.is_nan() || dt <= 0.0 {
        return;
    }
    let mut wh = [0.0; FLOWS];
    let mut integral = [0.0; FLOWS];
    let mut flags = 0u16;
    for q in 0..FLOWS {
        let trapezoid = (prev.power[q] + cur.power[q]) / 2.0 * dt / 3600.0;
        let trusted = dt <= MAX_INTEGRATION_GAP;
        integral[q] = if trusted { trapezoid } else { 0.0 };
        let (a, b) = (prev.meters[q], cur.meters[q]);
        let delta = b - a;
        let meter = if a.is_finite() && b.is_finite() {
            if delta < -COUNTER_JITTER_WH {
                flags |= FLAG_RESET;
                None
            } else if delta > MAX_PLAUSIBLE_W * dt.max(60.0) / 3600.0 {
                None
            } else {
                Some(delta.max(0.0))
            }
        } else {
            None
        };
        match meter {
            Some(d) => {
                wh[q] = d;
                flags |= METER_BIT << q;
            }
            None if trusted => {
                wh[q] = trapezoid.max(0.0);
                flags |= INTEGRAL_BIT << q;
            }
            None => flags |= FLAG_GAP,
        }
    }
    let (t0, t1) = (prev.ts.floor() as i64, cur.ts.floor() as i64);
    let last_ts = u32::try_from(t1.max(0)).unwrap_or(u32::MAX);
    let d1 = cache.day_of(zone, t1);
    let d0 = if t0 >= cache.start {
        d1
    } else {
        zone.day_of(t0)
    };
    if d0 == d1 {
        add_to(days, d1, 1.0, &wh, &integral, flags, last_ts);
        return;
    }
    // Split by time across the days covered; days older than the ring are skipped.
    let first = d0.max(d1.saturating_sub(days.keep.min(i64::from(i32::MAX)) as i32));
    let span = (t1 - t0).max(1) as f64;
    for d in first..=d1 {
        let (s, e) = (zone.day_start(d).max(t0), zone.day_start(d + 1).min(t1));
        if e > s {
            let share = (e - s) as f64 / span;
            add_to(days, d, share, &wh, &integral, flags, last_ts.min(e as u32));
        }
    }
}

fn add_to(
    days: &mut Days,
    day: Day,
    share: f64,
    wh: &[f64; FLOWS],
    integral: &[f64; FLOWS],
    flags: u16,
    last_ts: u32,
) {
    let Some(rec) = days.entry(day) else {
        return;
    };
    for q in 0..FLOWS {
        rec.wh[q] += wh[q] * share;
        rec.integral[q] += integral[q] * share;
    }
    rec.flags |= flags;
    rec.intervals = rec.intervals.saturating_add(1);
    rec.last_ts = rec.last_ts.max(last_ts);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(ts: f64, power: f64, meters: Option<f64>) -> Cursor {
        Cursor {
            ts,
            meters: [meters.unwrap_or(f64::NAN); FLOWS],
            power: [power; FLOWS],
        }
    }

    #[test]
    fn meters_integral_reset_and_gap() {
        let z = Zone::utc();
        let mut days = Days::new(10);
        let mut c = DayCache::default();
        let t = 1_795_651_200.0; // 2026-11-26 00:00 UTC
        let d = z.day_of(t as i64);
        add_interval(
            &mut days,
            &z,
            &mut c,
            &cursor(t, 1000.0, Some(100.0)),
            &cursor(t + 60.0, 1000.0, Some(117.0)),
        );
        let r = *days.get(d).unwrap();
        assert_eq!(r.wh[0], 17.0);
        assert!((r.integral[0] - 1000.0 / 60.0).abs() < 1e-9);
        assert!(r.used_meters(0) && !r.used_integral(0));
        // A reset: the counter falls to 3; the interval uses the integral, never a negative.
        add_interval(
            &mut days,
            &z,
            &mut c,
            &cursor(t + 60.0, 1000.0, Some(117.0)),
            &cursor(t + 120.0, 1000.0, Some(3.0)),
        );
        let r = *days.get(d).unwrap();
        assert!((r.wh[0] - (17.0 + 1000.0 / 60.0)).abs() < 1e-9);
        assert!(r.flags & FLAG_RESET != 0 && r.used_integral(0));
        // Rounding jitter is not a reset.
        add_interval(
            &mut days,
            &z,
            &mut c,
            &cursor(t + 120.0, 0.0, Some(3.0)),
            &cursor(t + 180.0, 0.0, Some(2.5)),
        );
        assert!((days.get(d).unwrap().wh[0] - (17.0 + 1000.0 / 60.0)).abs() < 1e-9);
        // A long gap without counters adds nothing and says so.
        add_interval(
            &mut days,
            &z,
            &mut c,
            &cursor(t + 180.0, 1000.0, None),
            &cursor(t + 7200.0, 1000.0, None),
        );
        let r = *days.get(d).unwrap();
        assert!(r.flags & FLAG_GAP != 0);
        assert!((r.wh[0] - (17.0 + 1000.0 / 60.0)).abs() < 1e-9);
        // An absurd jump is a glitch: the (untrusted, long) integral is 0 and so is the day's gain.
        add_interval(
            &mut days,
            &z,
            &mut c,
            &cursor(t + 7200.0, 0.0, Some(0.0)),
            &cursor(t + 7260.0, 0.0, Some(1e9)),
        );
        assert!(days.get(d).unwrap().wh[0] < 40.0);
    }

    #[test]
    fn an_interval_over_midnight_is_split_by_time() {
        let z = Zone::named("America/Los_Angeles").unwrap();
        let mut days = Days::new(10);
        let mut c = DayCache::default();
        let d = super::super::zone::parse_date("2026-11-26").unwrap();
        let mid = z.day_start(d) as f64;
        // Three hours of server downtime from 23:00 to 02:00: 3 kWh on the counters.
        add_interval(
            &mut days,
            &z,
            &mut c,
            &cursor(mid - 3600.0, 0.0, Some(0.0)),
            &cursor(mid + 7200.0, 0.0, Some(3000.0)),
        );
        assert!((days.get(d - 1).unwrap().wh[2] - 1000.0).abs() < 1e-6);
        assert!((days.get(d).unwrap().wh[2] - 2000.0).abs() < 1e-6);
    }

    #[test]
    fn day_bytes_round_trip() {
        let mut r = DayRec::new(20_418);
        r.flags = 0x3f | FLAG_RESET;
        r.intervals = 12;
        r.last_ts = 1_795_712_297;
        r.wh = [1.5, 2.0, 3.0, 4.0, 5.0, 6.0];
        r.integral = [6.0, 5.0, 4.0, 3.0, 2.0, 1.5];
        let mut b = [0u8; DAY_BYTES];
        r.encode(&mut b);
        assert_eq!(DayRec::decode(&b), r);
        assert_eq!(DayRec::decode(&[0xff; 3]).day, 0);
    }

    #[test]
    fn the_ring_replaces_by_position() {
        let mut days = Days::new(3);
        let rows = days.recs.len() as Day;
        assert!(days.entry(100).is_some());
        assert!(days.entry(100 + rows).is_some());
        assert_eq!(days.newest(), Some(100 + rows));
        assert!(days.get(100).is_none());
        assert!(days.entry(100).is_some());
        assert!(days.get(100 + rows).is_none());
    }
}
