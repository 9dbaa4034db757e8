//! Round-robin archives of consolidated power slots (rrdtool style), in memory.
//!
//! An archive is a ring of `rows` slots of `slot_secs` each, cut into pages of [`PER_PAGE`]
//! slots (the unit the file writes). Slot period `p` (`ts / slot_secs`) lives at position
//! `p mod rows`; each page remembers the period of its slot 0 in the lap it was last entered
//! (`first`). A slot holds data for period `p` only when its page's `first` matches and its
//! count is non-zero, so a page left over from an older lap reads as empty without a scan.
//!
//! **Invariant:** periods only move forward. A sample older than the newest slot is dropped
//! (a clock stepped back a little; more than a day back restarts from the new clock), a jump
//! forward clears the skipped slots, and entering a page in a
//! new lap clears the whole page, so retention is at least `rows - PER_PAGE + 1` slots.

use std::collections::TryReserveError;

use super::paged::Paged;
use super::{filled, Sample, FLOWS};

/// Bytes of one slot in a page: six `f32` averages, three `u16` SOE values, one `u16` count.
pub(crate) const SLOT_BYTES: usize = 32;
/// Slots per 4 KiB page (16 bytes of page header).
pub(crate) const PER_PAGE: usize = (super::store::PAGE - super::store::PAGE_HEADER) / SLOT_BYTES;
/// SOE stored in 1/100 %; this value means "no SOE in this slot".
const SOE_NONE: u16 = u16::MAX;

/// One consolidated slot: the averages of the samples recorded in its period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Slot {
    /// Average power per flow (W, each ≥ 0), indexed by [`super::Flow`].
    pub avg: [f32; FLOWS],
    /// Raw SOE average, minimum and maximum in 1/100 % ([`SOE_NONE`] when unknown).
    pub soe: [u16; 3],
    /// Samples in the slot (saturates at `u16::MAX`; 0 = empty).
    pub n: u16,
}

impl Slot {
    pub fn soe(&self, i: usize) -> Option<f64> {
        let v = *self.soe.get(i)?;
        (v != SOE_NONE && self.n > 0).then(|| f64::from(v) / 100.0)
    }

    pub fn encode(&self, out: &mut [u8]) {
        let mut at = 0;
        for v in self.avg {
            out[at..at + 4].copy_from_slice(&v.to_le_bytes());
            at += 4;
        }
        for v in self.soe.iter().chain([&self.n]) {
            out[at..at + 2].copy_from_slice(&v.to_le_bytes());
            at += 2;
        }
    }

    /// From `SLOT_BYTES` bytes; values that are not finite non-negative numbers read as 0.
    pub fn decode(b: &[u8]) -> Slot {
        let mut s = Slot::default();
        let f32_at = |i: usize| {
            let v = b
                .get(i..i + 4)
                .and_then(|x| <[u8; 4]>::try_from(x).ok())
                .map(f32::from_le_bytes)
                .unwrap_or(0.0);
            if v.is_finite() && v >= 0.0 {
                v
            } else {
                0.0
            }
        };
        let u16_at = |i: usize| {
            b.get(i..i + 2)
                .and_then(|x| <[u8; 2]>::try_from(x).ok())
                .map(u16::from_le_bytes)
                .unwrap_or(0)
        };
        for (k, v) in s.avg.iter_mut().enumerate() {
            *v = f32_at(k * 4);
        }
        for (k, v) in s.soe.iter_mut().enumerate() {
            let x = u16_at(24 + k * 2);
            *v = if x > 20_000 { SOE_NONE } else { x };
        }
        s.n = u16_at(30);
        s
    }
}

/// Running sums of the slot being filled.
#[derive(Debug, Clone, Copy)]
struct Acc {
    period: i64,
    sum: [f64; FLOWS],
    n: u32,
    soe_sum: f64,
    soe_n: u32,
    soe_min: f64,
    soe_max: f64,
}

impl Acc {
    fn new(period: i64) -> Acc {
        Acc {
            period,
            sum: [0.0; FLOWS],
            n: 0,
            soe_sum: 0.0,
            soe_n: 0,
            soe_min: f64::INFINITY,
            soe_max: f64::NEG_INFINITY,
        }
    }

    /// Resumes a slot that was stored before a restart.
    fn resume(period: i64, s: &Slot) -> Acc {
        let mut a = Acc::new(period);
        a.n = u32::from(s.n);
        for (sum, avg) in a.sum.iter_mut().zip(s.avg) {
            *sum = f64::from(avg) * f64::from(s.n);
        }
        if let (Some(avg), Some(lo), Some(hi)) = (s.soe(0), s.soe(1), s.soe(2)) {
            a.soe_n = a.n;
            a.soe_sum = avg * f64::from(s.n);
            a.soe_min = lo;
            a.soe_max = hi;
        }
        a
    }

    fn add(&mut self, flows: &[f64; FLOWS], soe: Option<f64>) {
        for (sum, w) in self.sum.iter_mut().zip(flows) {
            *sum += w;
        }
        self.n += 1;
        if let Some(s) = soe {
            self.soe_sum += s;
            self.soe_n += 1;
            self.soe_min = self.soe_min.min(s);
            self.soe_max = self.soe_max.max(s);
        }
    }

    fn slot(&self) -> Slot {
        let n = f64::from(self.n.max(1));
        let q = |v: f64| (v * 100.0).round().clamp(0.0, 20_000.0) as u16;
        Slot {
            avg: self.sum.map(|s| (s / n) as f32),
            soe: if self.soe_n > 0 {
                [
                    q(self.soe_sum / f64::from(self.soe_n)),
                    q(self.soe_min),
                    q(self.soe_max),
                ]
            } else {
                [SOE_NONE; 3]
            },
            n: self.n.min(u32::from(u16::MAX)) as u16,
        }
    }
}

/// One archive: a ring of slots plus per-page bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Archive {
    pub slot_secs: i64,
    /// Slots the spec asked to keep (the ring is larger by up to two pages).
    pub keep: i64,
    /// Period of each page's slot 0 in the lap it was last entered (`-1`: never).
    pub firsts: Vec<i64>,
    pub dirty: Vec<bool>,
    pub slots: Paged<Slot>,
    newest: Option<i64>,
    acc: Option<Acc>,
}

impl Archive {
    /// A copy, or the error when its memory cannot be had.
    pub fn try_clone(&self) -> Result<Archive, std::collections::TryReserveError> {
        Ok(Archive {
            slot_secs: self.slot_secs,
            keep: self.keep,
            firsts: super::try_copy(&self.firsts)?,
            dirty: super::try_copy(&self.dirty)?,
            slots: self.slots.try_clone()?,
            newest: self.newest,
            acc: self.acc,
        })
    }

    /// Pages for keeping `keep` slots: one more than needed, since a page is cleared whole.
    pub fn pages_for(keep: u32) -> usize {
        (keep as usize).div_ceil(PER_PAGE) + 1
    }

    /// An empty archive, or `Err` when memory for its slots cannot be had (the caller says
    /// which gateway; an allocation failure would otherwise abort the process).
    pub fn try_new(slot_secs: i64, keep: u32) -> Result<Archive, TryReserveError> {
        let pages = Archive::pages_for(keep);
        Ok(Archive {
            slot_secs,
            keep: i64::from(keep),
            firsts: filled(pages, -1)?,
            dirty: filled(pages, false)?,
            slots: Paged::try_new(pages, PER_PAGE, Slot::default())?,
            newest: None,
            acc: None,
        })
    }

    #[cfg(test)]
    pub fn new(slot_secs: i64, keep: u32) -> Archive {
        Archive::try_new(slot_secs, keep).expect("memory for a test archive")
    }

    pub fn rows(&self) -> i64 {
        self.slots.len() as i64
    }

    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    /// Position and page of period `p`, and the `first` its page has in `p`'s lap.
    fn place(&self, p: i64) -> (usize, usize, i64) {
        let pos = p.rem_euclid(self.rows()) as usize;
        let off = pos % PER_PAGE;
        (pos, pos / PER_PAGE, p - off as i64)
    }

    /// The slot of period `p`, when it holds data of that period.
    pub fn get(&self, p: i64) -> Option<&Slot> {
        let (pos, page, first) = self.place(p);
        let s = self.slots.get(pos)?;
        (self.firsts.get(page) == Some(&first) && s.n > 0).then_some(s)
    }

    /// Makes period `p` current in its page (clearing the page when entering a new lap).
    fn enter(&mut self, p: i64) -> usize {
        let (pos, page, first) = self.place(p);
        if self.firsts[page] != first {
            self.firsts[page] = first;
            self.slots.clear_page(page);
        }
        self.dirty[page] = true;
        pos
    }

    /// Adds one sample (at Unix second `t`) to its slot.
    pub fn record(&mut self, t: i64, flows: &[f64; FLOWS], soe: Option<f64>) {
        let p = t.div_euclid(self.slot_secs);
        if self
            .newest
            .is_some_and(|n| n - p > (86_400 / self.slot_secs).max(1))
        {
            // More than a day back: the clock was wrong before (a router that booted in the
            // future), not a late sample. Follow the new clock; data "from the future" stays
            // out of every range up to the new newest slot.
            self.newest = None;
            self.acc = None;
        }
        if let Some(newest) = self.newest {
            if p < newest {
                return;
            }
            // Clear what a jump forward skipped (at most one lap).
            let skipped = (p - newest - 1).clamp(0, self.rows());
            for q in p - skipped..p {
                let pos = self.enter(q);
                if self.slots.get(pos).is_some_and(|s| *s != Slot::default()) {
                    self.set(pos, Slot::default());
                }
            }
        }
        let pos = self.enter(p);
        let acc = match self.acc {
            Some(a) if a.period == p => self.acc.as_mut(),
            _ => {
                let a = match self.get(p) {
                    Some(s) => Acc::resume(p, s),
                    None => Acc::new(p),
                };
                self.acc = Some(a);
                self.acc.as_mut()
            }
        };
        // The match above always leaves `acc` set; `let else` keeps this panic-free anyway.
        let Some(acc) = acc else { return };
        acc.add(flows, soe);
        let slot = acc.slot();
        self.set(pos, slot);
        self.newest = Some(p);
    }

    fn set(&mut self, pos: usize, slot: Slot) {
        if let Some(s) = self.slots.get_mut(pos) {
            *s = slot;
        }
    }

    /// Recomputes `newest` after pages were loaded from a file.
    pub fn loaded(&mut self) {
        self.newest = None;
        self.acc = None;
        for (page, &first) in self.firsts.iter().enumerate() {
            if first < 0 {
                continue;
            }
            let base = page * PER_PAGE;
            for off in (0..PER_PAGE).rev() {
                if self.slots.get(base + off).is_some_and(|s| s.n > 0) {
                    let p = first + off as i64;
                    // A page whose slots do not map back to it is stale; ignore it.
                    if self.place(p).1 == page {
                        self.newest = Some(self.newest.map_or(p, |n| n.max(p)));
                    }
                    break;
                }
            }
        }
    }

    /// Periods `from..=to` that hold data, oldest first.
    pub fn iter(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, &Slot)> + '_ {
        let to = match self.newest {
            Some(n) => to.min(n),
            None => from - 1,
        };
        let from = from.max(to - self.rows() + 1);
        (from..=to).filter_map(move |p| self.get(p).map(|s| (p, s)))
    }

    /// Encodes page `page` into `out` (a page's payload, `PER_PAGE * SLOT_BYTES` bytes).
    pub fn encode_page(&self, page: usize, out: &mut [u8]) {
        for (slot, chunk) in self.slots.page(page).zip(out.chunks_exact_mut(SLOT_BYTES)) {
            slot.encode(chunk);
        }
    }

    /// Loads page `page` from its payload and the `first` its header gave.
    pub fn decode_page(&mut self, page: usize, first: i64, payload: &[u8]) {
        let Some(f) = self.firsts.get_mut(page) else {
            return;
        };
        *f = first;
        // Only slots with data take memory (a page never entered stays unallocated).
        self.slots.clear_page(page);
        let base = page * PER_PAGE;
        for (k, chunk) in payload.chunks_exact(SLOT_BYTES).take(PER_PAGE).enumerate() {
            let s = Slot::decode(chunk);
            if s != Slot::default() {
                self.set(base + k, s);
            }
        }
    }
}

/// Splits a sample's powers into the six non-negative flows (W).
pub(crate) fn flows_of(s: &Sample) -> [f64; FLOWS] {
    let pos = |v: Option<f64>| v.filter(|x| x.is_finite()).unwrap_or(0.0).max(0.0);
    let neg = |v: Option<f64>| (-v.filter(|x| x.is_finite()).unwrap_or(0.0)).max(0.0);
    [
        pos(s.solar),
        pos(s.home),
        pos(s.grid),
        neg(s.grid),
        neg(s.battery),
        pos(s.battery),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows(w: f64) -> [f64; FLOWS] {
        [w; FLOWS]
    }

    #[test]
    fn slots_average_and_wrap() {
        let mut a = Archive::new(60, 200);
        assert_eq!(a.rows() as usize, 3 * PER_PAGE);
        a.record(600, &flows(100.0), Some(50.0));
        a.record(630, &flows(300.0), Some(52.0));
        let s = *a.get(10).unwrap();
        assert_eq!(s.avg, [200.0; FLOWS]);
        assert_eq!(
            (s.soe(0), s.soe(1), s.soe(2), s.n),
            (Some(51.0), Some(50.0), Some(52.0), 2)
        );
        // Older than the newest slot: dropped.
        a.record(599, &flows(1.0), None);
        assert!(a.get(9).is_none());
        // A jump forward clears the skipped slots, a lap later the old data is gone.
        let lap = a.rows() * 60;
        a.record(600 + lap, &flows(7.0), None);
        assert!(a.get(10).is_none());
        assert_eq!(a.get(10 + a.rows()).unwrap().avg[0], 7.0);
        assert_eq!(a.iter(0, i64::MAX).count(), 1);
        // A clock that was a year ahead is corrected: recording follows the new clock.
        let mut a = Archive::new(60, 200);
        a.record(2_000_000_000, &flows(1.0), None);
        a.record(1_800_000_000, &flows(2.0), None);
        a.record(1_800_000_060, &flows(3.0), None);
        assert_eq!(a.newest(), Some(1_800_000_060 / 60));
        assert_eq!(
            a.iter(0, i64::MAX)
                .map(|(_, s)| s.avg[0])
                .collect::<Vec<_>>(),
            [2.0, 3.0]
        );
    }

    #[test]
    fn retention_is_at_least_what_was_asked() {
        let keep = 300;
        let mut a = Archive::new(1, keep);
        for t in 0..5_000 {
            a.record(t, &flows(t as f64), None);
            let kept = a.iter(0, t).count() as i64;
            assert!(kept >= (t + 1).min(i64::from(keep)), "t={t} kept={kept}");
        }
    }

    #[test]
    fn slot_bytes_round_trip_and_hostile_values_read_as_zero() {
        let s = Slot {
            avg: [1.5, 0.0, 3.0, 4.0, 5.0, 6.0],
            soe: [5012, 5000, 5100],
            n: 7,
        };
        let mut b = [0u8; SLOT_BYTES];
        s.encode(&mut b);
        assert_eq!(Slot::decode(&b), s);
        b[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
        b[4..8].copy_from_slice(&(-1.0f32).to_le_bytes());
        b[24..26].copy_from_slice(&60_000u16.to_le_bytes());
        let d = Slot::decode(&b);
        assert_eq!((d.avg[0], d.avg[1], d.soe(0)), (0.0, 0.0, None));
        assert_eq!(Slot::decode(&[1, 2]), Slot::default());
    }
}
