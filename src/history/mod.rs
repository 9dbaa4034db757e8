//! Energy history per gateway: power archives in the spirit of rrdtool, daily energy per local
//! day, and an optional fixed-size file that survives restarts and power cuts (issue 15).
//!
//! One [`Recorder`] per gateway lives with its poller. The poller calls [`Recorder::record`]
//! once per tick with a [`Sample`] (cheap: a few additions, no I/O, no allocation), and
//! [`Recorder::flush`] every `PW_HISTORY_FLUSH` seconds and at shutdown (the only call that
//! touches the disk). Readers get plain structs from the query functions ([`Recorder::today`],
//! [`Recorder::daily`], [`Recorder::trend`], [`Recorder::samples`], [`Recorder::status`]);
//! JSON and CSV shapes belong to the route layer.
//!
//! Integration: the recorder belongs to the poller thread (it is `Send`, not shared); the
//! poller builds the route results once per completed slot and publishes them with its
//! snapshot, so a request never locks the recorder and never waits for a flush's `fsync`.
//!
//! - `archive`: consolidated slots (by default 1 min × 48 h, 15 min × 90 days, 1 h × 2 years;
//!   the base step, `PW_HISTORY_STEP`, scales all of them so tests run in seconds).
//! - `energy`: daily kWh per flow from the lifetime counters, else from the power integral.
//! - `zone`: local days with embedded IANA rules.
//! - `store`: the file format and its crash-safe, batched writes (see its module doc).
//!
//! **Invariant:** the engine never reads the clock; every time comes in through its arguments,
//! so a test can replay a year in seconds. A storage problem never stops recording: it is logged
//! once, the recorder keeps everything in memory and tries the file again at the next flush.

mod archive;
mod energy;
mod paged;
mod published;
mod query;
mod store;
pub mod zone;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use archive::{Archive, PER_PAGE, SLOT_BYTES};
use energy::{Cursor, DayCache, DayRec, Days, DAYS_PER_PAGE, DAY_BYTES};
use store::{Layout, Store, PAGE, PAGE_HEADER, STATE_PAGE};

pub use energy::MAX_INTEGRATION_GAP;
pub use published::Published;
pub use query::{
    merge_daily, merge_points, ArchiveStatus, DayEnergy, Point, Source, Status, Trend,
};
pub use zone::{date_string, parse_date, Day, UnknownZone, Zone};

/// Number of energy flows.
pub const FLOWS: usize = 6;

/// The six non-negative flows every slot and every day keeps, in storage order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Solar produced (`solar.energy_exported`).
    Solar = 0,
    /// Home used (`load.energy_imported`).
    Home = 1,
    /// Bought from the grid (`site.energy_imported`).
    GridImport = 2,
    /// Sold to the grid (`site.energy_exported`).
    GridExport = 3,
    /// Into the battery (`battery.energy_imported`).
    BatteryCharge = 4,
    /// Out of the battery (`battery.energy_exported`).
    BatteryDischarge = 5,
}

impl Flow {
    pub const ALL: [Flow; FLOWS] = [
        Flow::Solar,
        Flow::Home,
        Flow::GridImport,
        Flow::GridExport,
        Flow::BatteryCharge,
        Flow::BatteryDischarge,
    ];

    /// The name the Python server's JSON uses before `_kwh` / `_w` (`solar`, `grid_import`, …).
    pub fn name(self) -> &'static str {
        match self {
            Flow::Solar => "solar",
            Flow::Home => "home",
            Flow::GridImport => "grid_import",
            Flow::GridExport => "grid_export",
            Flow::BatteryCharge => "battery_charge",
            Flow::BatteryDischarge => "battery_discharge",
        }
    }
}

/// What one poll tick contributes. Powers follow the Tesla convention (W): battery positive
/// when discharging, grid (site) positive when importing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Unix seconds of the tick.
    pub ts: f64,
    pub solar: Option<f64>,
    pub home: Option<f64>,
    pub battery: Option<f64>,
    pub grid: Option<f64>,
    /// Raw state of energy (%), as `pw.level()` gives it.
    pub soe: Option<f64>,
    /// Lifetime counters (Wh) indexed by [`Flow`]: `solar.energy_exported`,
    /// `load.energy_imported`, `site.energy_imported`, `site.energy_exported`,
    /// `battery.energy_imported`, `battery.energy_exported` of `/api/meters/aggregates`.
    pub meters: [Option<f64>; FLOWS],
}

impl Sample {
    /// A tick from the poller's summary (`Summary::from_facade`) and the gateway's
    /// `/api/meters/aggregates` document (for the counters; `None` when absent).
    pub fn from_summary(
        ts: f64,
        s: &crate::render::summary::Summary,
        aggregates: Option<&crate::json::Value>,
    ) -> Sample {
        Sample {
            ts,
            solar: s.solar,
            home: s.load,
            battery: s.battery,
            grid: s.site,
            soe: s.soe,
            meters: aggregates
                .map(meters_from_aggregates)
                .unwrap_or([None; FLOWS]),
        }
    }
}

/// The six lifetime counters (Wh) of an `/api/meters/aggregates` document, indexed by [`Flow`].
pub fn meters_from_aggregates(agg: &crate::json::Value) -> [Option<f64>; FLOWS] {
    let get = |section: &str, key: &str| {
        agg.path(&[section, key])
            .and_then(crate::json::Value::as_f64)
            // Exactly 0 is a stub (TEDAPI without the customer login fills the document
            // with zeros), not a meter: the power integral counts instead.
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    [
        get("solar", "energy_exported"),
        get("load", "energy_imported"),
        get("site", "energy_imported"),
        get("site", "energy_exported"),
        get("battery", "energy_imported"),
        get("battery", "energy_exported"),
    ]
}

/// Samples before this (2020-01-01) come from a clock that is not set yet (a router that has
/// not reached NTP) and are dropped.
pub const MIN_TS: f64 = 1_577_836_800.0;

/// The largest history file (and heap) a spec may ask for per gateway: 64 MiB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// One archive: slots of `steps` base steps, `keep` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSpec {
    pub steps: u32,
    pub keep: u32,
}

/// What to keep. The file layout follows from it; a changed spec sets an old file aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Base step (s), `PW_HISTORY_STEP`.
    pub step: u32,
    /// Finest first; `steps` strictly increasing.
    pub archives: Vec<ArchiveSpec>,
    /// Local days of energy to keep.
    pub days: u32,
}

impl Spec {
    /// 1 step × 48 h, 15 steps × 90 days, 60 steps × 2 years (at a 60 s step), 800 days.
    pub fn standard(step: u32) -> Spec {
        Spec {
            step,
            archives: vec![
                ArchiveSpec {
                    steps: 1,
                    keep: 2 * 24 * 60,
                },
                ArchiveSpec {
                    steps: 15,
                    keep: 90 * 24 * 4,
                },
                ArchiveSpec {
                    steps: 60,
                    keep: 2 * 365 * 24,
                },
            ],
            days: 800,
        }
    }

    fn check(&self) -> Result<Layout, HistoryError> {
        let bad = |why: String| Err(HistoryError::Spec(why));
        if !(1..=3600).contains(&self.step) {
            return bad(format!("step {} s is outside 1..=3600", self.step));
        }
        if self.archives.is_empty() || self.archives.len() > store::MAX_ARCHIVES {
            return bad(format!(
                "{} archives (1..={} allowed)",
                self.archives.len(),
                store::MAX_ARCHIVES
            ));
        }
        let mut last = 0;
        for a in &self.archives {
            if a.steps <= last || a.steps > 100_000 || !(1..=1_000_000).contains(&a.keep) {
                return bad(format!(
                    "archive of {} steps × {} slots: steps must increase, keep 1..=1000000",
                    a.steps, a.keep
                ));
            }
            last = a.steps;
        }
        if !(1..=40_000).contains(&self.days) {
            return bad(format!("{} days is outside 1..=40000", self.days));
        }
        let layout = Layout {
            step: self.step,
            archives: self
                .archives
                .iter()
                .map(|a| (a.steps, Archive::pages_for(a.keep) as u32))
                .collect(),
            day_pages: Days::pages_for(self.days) as u32,
        };
        if layout.file_bytes() > MAX_FILE_BYTES {
            return bad(format!(
                "{} bytes per gateway (at most {MAX_FILE_BYTES})",
                layout.file_bytes()
            ));
        }
        Ok(layout)
    }
}

/// Where a recorder keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Nothing on disk (`PW_HISTORY_DIR` unset).
    Memory,
    /// This file (see [`file_path`]).
    File(PathBuf),
}

/// The history file of gateway `id` in `dir`: `<id>.pwh`, the id reduced to `[A-Za-z0-9._-]`.
pub fn file_path(dir: &Path, id: &str) -> PathBuf {
    let mut name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    dir.join(format!("{name}.pwh"))
}

/// What failed in the history engine.
#[derive(Debug)]
#[non_exhaustive]
pub enum HistoryError {
    /// The configured archives are out of bounds.
    Spec(String),
    /// The memory for a gateway's history (about its file size) could not be had.
    OutOfMemory {
        bytes: u64,
    },
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    WrongSize {
        path: PathBuf,
        len: u64,
        want: u64,
    },
    /// A damaged or foreign file was renamed to `aside` (or could not be) and replaced.
    SetAside {
        path: PathBuf,
        why: &'static str,
        aside: Option<PathBuf>,
    },
    /// Pages failed their CRC and were reset to empty; the file was copied to `aside`.
    BadPages {
        path: PathBuf,
        pages: usize,
        aside: Option<PathBuf>,
    },
}

impl HistoryError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> HistoryError {
        HistoryError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let aside = |a: &Option<PathBuf>| match a {
            Some(p) => format!("kept as {}", p.display()),
            None => "could not keep a copy".to_string(),
        };
        match self {
            HistoryError::Spec(why) => write!(f, "history archives: {why}"),
            HistoryError::OutOfMemory { bytes } => {
                write!(f, "no memory for its history ({bytes} bytes)")
            }
            HistoryError::Io { what, path, source } => {
                write!(
                    f,
                    "history file {}: {what} failed: {source}",
                    path.display()
                )
            }
            HistoryError::WrongSize { path, len, want } => write!(
                f,
                "history file {}: {len} bytes, the layout needs {want}",
                path.display()
            ),
            HistoryError::SetAside {
                path,
                why,
                aside: a,
            } => write!(
                f,
                "history file {}: {why}; replaced by a new file ({})",
                path.display(),
                aside(a)
            ),
            HistoryError::BadPages {
                path,
                pages,
                aside: a,
            } => write!(
                f,
                "history file {}: {pages} damaged page(s) reset to empty ({})",
                path.display(),
                aside(a)
            ),
        }
    }
}

impl std::error::Error for HistoryError {}

/// What one flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Pages whose content changed.
    pub pages: usize,
    /// Page writes made, journal included (each 4 KiB).
    pub writes: usize,
}

/// Counters for `/api/timeseries/status`.
#[derive(Debug, Clone, Default)]
struct Counters {
    flushes: u64,
    page_writes: u64,
    write_failures: u64,
}

/// The history of one gateway.
pub struct Recorder {
    spec: Spec,
    layout: Layout,
    zone: Zone,
    archives: Vec<Archive>,
    days: Days,
    cache: DayCache,
    cursor: Option<Cursor>,
    state_dirty: bool,
    storage: Storage,
    store: Option<Store>,
    /// The storage error being suffered (logged when it started), if any.
    failing: Option<String>,
    /// Problems found when the file was opened (set aside, damaged pages).
    opened: Vec<String>,
    /// The file at the path is ours (loaded or written by us), so a retry may replace it.
    owns_file: bool,
    counters: Counters,
}

impl fmt::Debug for Recorder {
    // The archives are a megabyte of slots; show what identifies the recorder instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("storage", &self.storage)
            .field("zone", &self.zone)
            .field("spec", &self.spec)
            .field("failing", &self.failing)
            .finish_non_exhaustive()
    }
}

/// Recomputes a file page's number and CRC (for the fuzz target, which feeds damaged pages
/// that still check out, so the decoders behind the CRC are reached). Not a public API.
#[doc(hidden)]
pub fn seal_page(page: &mut [u8], no: u32) {
    if page.len() == PAGE {
        store::seal(page, no);
    }
}

/// Bytes in a history file page.
pub const PAGE_BYTES: usize = PAGE;

/// `n` copies of `v`, or `Err` instead of aborting when the memory cannot be had.
/// A copy of `v`, or the error when its memory cannot be had (never an abort).
fn try_copy<T: Clone>(v: &[T]) -> Result<Vec<T>, std::collections::TryReserveError> {
    let mut out = Vec::new();
    out.try_reserve_exact(v.len())?;
    out.extend_from_slice(v);
    Ok(out)
}

fn filled<T: Clone>(n: usize, v: T) -> Result<Vec<T>, std::collections::TryReserveError> {
    let mut out = Vec::new();
    out.try_reserve_exact(n)?;
    out.resize(n, v);
    Ok(out)
}

impl Recorder {
    /// A recorder for `spec`, loading `storage` when it is a readable file of the same layout.
    /// Only an out-of-bounds spec is an error; file problems are logged and shown in
    /// [`Recorder::status`] (the recorder then works in memory). `now` (Unix seconds) names a
    /// file set aside.
    pub fn new(
        spec: Spec,
        storage: Storage,
        zone: Zone,
        now: i64,
    ) -> Result<Recorder, HistoryError> {
        let layout = spec.check()?;
        let oom = |_| HistoryError::OutOfMemory {
            bytes: layout.file_bytes(),
        };
        let mut archives = Vec::with_capacity(spec.archives.len());
        for a in &spec.archives {
            let slot_secs = i64::from(a.steps) * i64::from(spec.step);
            archives.push(Archive::try_new(slot_secs, a.keep).map_err(oom)?);
        }
        let mut rec = Recorder {
            archives,
            days: Days::try_new(spec.days).map_err(oom)?,
            spec,
            layout,
            zone,
            cache: DayCache::default(),
            cursor: None,
            state_dirty: false,
            storage: storage.clone(),
            store: None,
            failing: None,
            opened: Vec::new(),
            owns_file: false,
            counters: Counters::default(),
        };
        if let Storage::File(path) = &storage {
            let opened = Store::open(path, &rec.layout, now, &|| rec.encode_all(now));
            for p in &opened.problems {
                log::warn!("{p}");
                rec.opened.push(p.to_string());
            }
            if let Some(image) = &opened.image {
                rec.load(image, &opened.bad_pages);
            }
            rec.owns_file = opened.image.is_some() || opened.store.is_some();
            if opened.store.is_none() {
                let why = opened
                    .problems
                    .last()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| format!("history file {}: not writable", path.display()));
                log::warn!(
                    "history: keeping gateway history in memory only until {} can be written",
                    path.display()
                );
                rec.failing = Some(why);
            }
            rec.store = opened.store;
        }
        Ok(rec)
    }

    /// Adds one poll tick. No I/O; samples with a clock before [`MIN_TS`] or older than the
    /// newest slot of an archive are left out of it.
    pub fn record(&mut self, s: &Sample) {
        if !s.ts.is_finite() || s.ts < MIN_TS || s.ts > 1e11 {
            return;
        }
        let t = s.ts.floor() as i64;
        let flows = archive::flows_of(s);
        let soe = s.soe.filter(|v| v.is_finite() && (0.0..=200.0).contains(v));
        for a in &mut self.archives {
            a.record(t, &flows, soe);
        }
        let cur = Cursor {
            ts: s.ts,
            meters: s
                .meters
                .map(|m| m.filter(|v| v.is_finite()).unwrap_or(f64::NAN)),
            power: flows,
        };
        if let Some(prev) = self.cursor {
            energy::add_interval(&mut self.days, &self.zone, &mut self.cache, &prev, &cur);
        }
        // A clock stepped back restarts the energy cursor rather than adding a negative span.
        self.cursor = Some(cur);
        self.state_dirty = true;
    }

    /// Changes the zone days are cut in (e.g. once the gateway's `installation_time_zone` is
    /// known); days already recorded keep their dates.
    pub fn set_zone(&mut self, zone: Zone) {
        self.zone = zone;
        self.cache.clear();
    }

    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// Writes the pages changed since the last flush (memory only: nothing). On an error the
    /// recorder keeps the data, logs the first failure only, and at the next flush writes a
    /// whole new file; the error is returned as well.
    pub fn flush(&mut self) -> Result<Flushed, HistoryError> {
        let Storage::File(path) = &self.storage else {
            return Ok(Flushed::default());
        };
        let path = path.clone();
        let result = match self.store.take() {
            Some(mut store) => {
                let pages = self.dirty_pages();
                let n = pages.len();
                // On an error the store stays dropped (see below).
                store.write_batch(&pages).map(|writes| {
                    self.store = Some(store);
                    Flushed { pages: n, writes }
                })
            }
            None => {
                let now = self.cursor.map_or(0, |c| c.ts as i64);
                if !self.owns_file && path.exists() {
                    // A file we could not read at start: keep it rather than overwrite it.
                    let e = store::set_aside(&path, now, "could not be read at start");
                    log::warn!("{e}");
                    self.owns_file = true;
                }
                let pages = self.encode_all(now);
                Store::create(&path, &self.layout, now, &pages).map(|s| {
                    self.store = Some(s);
                    self.owns_file = true;
                    let n = self.layout.total_pages() as usize;
                    Flushed {
                        pages: n,
                        writes: n,
                    }
                })
            }
        };
        match result {
            Ok(done) if done.pages == 0 => Ok(done),
            Ok(done) => {
                self.clear_dirty();
                self.counters.flushes = self.counters.flushes.saturating_add(1);
                self.counters.page_writes =
                    self.counters.page_writes.saturating_add(done.writes as u64);
                if self.failing.take().is_some() {
                    log::info!("history: writing {} again", path.display());
                }
                Ok(done)
            }
            Err(e) => {
                self.counters.write_failures += 1;
                // The next flush starts over with a whole new file (a torn write leaves
                // nothing half-known behind: that file is written under another name).
                self.store = None;
                if self.failing.is_none() {
                    log::warn!("{e}; keeping the history in memory and retrying at each flush");
                }
                self.failing = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn dirty_pages(&self) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        for (i, a) in self.archives.iter().enumerate() {
            let base = self.layout.archive_base(i);
            for (p, _) in a.dirty.iter().enumerate().filter(|(_, d)| **d) {
                out.push((base + p as u32, self.archive_page(i, p)));
            }
        }
        let base = self.layout.days_base();
        for (p, _) in self.days.dirty.iter().enumerate().filter(|(_, d)| **d) {
            out.push((base + p as u32, self.days_page(p)));
        }
        if self.state_dirty {
            out.push((STATE_PAGE, self.state_page()));
        }
        out
    }

    fn clear_dirty(&mut self) {
        for a in &mut self.archives {
            a.dirty.fill(false);
        }
        self.days.dirty.fill(false);
        self.state_dirty = false;
    }

    fn archive_page(&self, i: usize, p: usize) -> Vec<u8> {
        let mut img = vec![0u8; PAGE];
        let a = &self.archives[i];
        let first = a.firsts.get(p).copied().unwrap_or(-1);
        let first = u32::try_from(first).unwrap_or(u32::MAX);
        img[8..12].copy_from_slice(&first.to_le_bytes());
        a.encode_page(
            p,
            &mut img[PAGE_HEADER..PAGE_HEADER + PER_PAGE * SLOT_BYTES],
        );
        store::seal(&mut img, self.layout.archive_base(i) + p as u32);
        img
    }

    fn days_page(&self, p: usize) -> Vec<u8> {
        let mut img = vec![0u8; PAGE];
        let recs = self.days.recs.page(p);
        for (k, r) in recs.enumerate() {
            let at = PAGE_HEADER + k * DAY_BYTES;
            r.encode(&mut img[at..at + DAY_BYTES]);
        }
        store::seal(&mut img, self.layout.days_base() + p as u32);
        img
    }

    fn state_page(&self) -> Vec<u8> {
        let mut img = vec![0u8; PAGE];
        let c = self.cursor.unwrap_or(Cursor {
            ts: f64::NAN,
            meters: [f64::NAN; FLOWS],
            power: [0.0; FLOWS],
        });
        let mut w = store::Writer(&mut img[8..]);
        w.u64(self.counters.flushes.saturating_add(1));
        w.f64(c.ts);
        for v in c.meters.iter().chain(&c.power) {
            w.f64(*v);
        }
        w.u64(self.counters.page_writes);
        store::seal(&mut img, STATE_PAGE);
        img
    }

    /// Every page after the header, as a new file holds them.
    fn encode_all(&self, _now: i64) -> Vec<u8> {
        let total = self.layout.total_pages() as usize;
        let mut out = vec![0u8; (total - 1) * PAGE];
        let mut put = |no: u32, img: &[u8]| {
            let at = (no as usize - 1) * PAGE;
            out[at..at + PAGE].copy_from_slice(img);
        };
        put(STATE_PAGE, &self.state_page());
        let mut journal = vec![0u8; PAGE];
        store::seal(&mut journal, 2);
        put(2, &journal);
        for (i, a) in self.archives.iter().enumerate() {
            for p in 0..a.firsts.len() {
                put(
                    self.layout.archive_base(i) + p as u32,
                    &self.archive_page(i, p),
                );
            }
        }
        for p in 0..self.days.dirty.len() {
            put(self.layout.days_base() + p as u32, &self.days_page(p));
        }
        out
    }

    /// Fills the recorder from a whole-file image whose header matched; `bad` pages stay
    /// empty and are marked for rewriting.
    fn load(&mut self, image: &[u8], bad: &[u32]) {
        let ok = |no: u32| !bad.contains(&no);
        if ok(STATE_PAGE) {
            let mut r = store::Reader(&store::page(image, STATE_PAGE)[8..]);
            let _flushes = r.u64();
            let ts = r.f64();
            let meters: [f64; FLOWS] = std::array::from_fn(|_| r.f64());
            let power: [f64; FLOWS] = std::array::from_fn(|_| r.f64());
            self.counters.page_writes = r.u64();
            let power = power.map(|v| if v.is_finite() { v.max(0.0) } else { 0.0 });
            if ts.is_finite() && ts >= MIN_TS {
                self.cursor = Some(Cursor { ts, meters, power });
            }
        } else {
            self.state_dirty = true;
        }
        for i in 0..self.archives.len() {
            let base = self.layout.archive_base(i);
            for p in 0..self.archives[i].firsts.len() {
                let no = base + p as u32;
                if !ok(no) {
                    self.archives[i].dirty[p] = true;
                    continue;
                }
                let img = store::page(image, no);
                let first = store::Reader(&img[8..12]).u32();
                let first = if first == u32::MAX {
                    -1
                } else {
                    i64::from(first)
                };
                let payload = &img[PAGE_HEADER..PAGE_HEADER + PER_PAGE * SLOT_BYTES];
                self.archives[i].decode_page(p, first, payload);
            }
            self.archives[i].loaded();
        }
        let base = self.layout.days_base();
        let rows = self.days.recs.len() as i64;
        for p in 0..self.days.dirty.len() {
            let no = base + p as u32;
            if !ok(no) {
                self.days.dirty[p] = true;
                continue;
            }
            let img = store::page(image, no);
            for k in 0..DAYS_PER_PAGE {
                let at = PAGE_HEADER + k * DAY_BYTES;
                let mut r = DayRec::decode(img.get(at..at + DAY_BYTES).unwrap_or(&[]));
                let pos = p * DAYS_PER_PAGE + k;
                // A record must sit where its day maps to; anything else is empty.
                if r.day == Day::MIN || i64::from(r.day).rem_euclid(rows) as usize != pos {
                    r = DayRec::EMPTY;
                }
                // Only days with data take memory.
                if r.day != Day::MIN || self.days.recs.get(pos).is_some_and(|x| x.day != Day::MIN) {
                    if let Some(slot) = self.days.recs.get_mut(pos) {
                        *slot = r;
                    }
                }
            }
        }
        self.cache.clear();
    }

    /// Bytes the file takes for this spec (fixed at creation).
    pub fn file_bytes(&self) -> u64 {
        self.layout.file_bytes()
    }

    /// Heap bytes this recorder holds (its archives and days; the file adds nothing).
    pub fn heap_bytes(&self) -> usize {
        let a: usize = self
            .archives
            .iter()
            .map(|a| a.slots.heap_bytes() + a.firsts.capacity() * 8 + a.dirty.capacity())
            .sum();
        a + self.days.recs.heap_bytes() + self.days.dirty.capacity()
    }

    #[cfg(test)]
    fn store_mut(&mut self) -> Option<&mut Store> {
        self.store.as_mut()
    }
}
