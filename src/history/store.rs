//! The history file: a fixed-size round-robin file of 4 KiB pages, one per gateway.
//!
//! # Format (version 1, little-endian)
//!
//! The file is `total_pages × 4096` bytes, fixed when it is created from the [`Layout`]
//! (1 MiB, 256 pages, for the default archives). Every page starts with the same 16 bytes:
//!
//! | bytes | field |
//! | ----- | ----- |
//! | 0..4  | CRC-32 (IEEE) of bytes 4..4096 |
//! | 4..8  | the page's own number (a page written to the wrong place fails) |
//! | 8..16 | kind-specific (below) |
//!
//! Pages, in order:
//!
//! 1. **Header** (page 0), written once at creation: bytes 8..16 magic `PWHISTRY`, then
//!    `u32` version (1), page size (4096), base step (s), archive count (1..=4), four
//!    (`u32` steps per slot, `u32` pages) pairs, `u32` day pages, journal slots, total pages,
//!    and `i64` creation time. It must equal the layout computed from the configuration;
//!    a file with another layout is set aside, never reinterpreted.
//! 2. **State** (page 1): bytes 8..16 `u64` sequence number; then `f64` last sample time
//!    (NaN: none), six `f64` last counters (Wh, NaN: absent), six `f64` last powers (W) and
//!    `u64` pages written since creation.
//! 3. **Journal header** (page 2): bytes 8..16 `u64` generation of the batch in the journal,
//!    `u32` page count, then per page `u32` target page and `u32` CRC of its image.
//! 4. **Journal slots** (pages 3..3+J, J = 8): verbatim images of the batch's pages.
//! 5. **Archives**, one after another: pages of 127 slots; page bytes 8..12 hold the `u32`
//!    period (`ts / slot seconds`) of its slot 0 in the lap it was last entered (`u32::MAX`:
//!    never). A slot is 32 bytes: six `f32` average powers (solar, home, grid import, grid
//!    export, battery charge, battery discharge, W), `u16` SOE average, minimum, maximum
//!    (1/100 %, `0xFFFF` none) and a `u16` sample count (0: empty).
//! 6. **Days**: pages of 68 records of 60 bytes: `i32` local day (days since 1970-01-01),
//!    `u16` flags (bit q: counters used for flow q; bit 8+q: power integral used; bit 6: a
//!    counter reset; bit 7: energy missing over a gap), `u16` intervals, `u32` last sample
//!    time, six `f32` energies (Wh) and six `f32` power integrals (Wh).
//!
//! # Writes and crash safety
//!
//! Changed ("dirty") pages are written every flush, never on a tick. A flush writes them in
//! rounds of at most J pages: the page images into the journal slots, then the journal header
//! naming them with their CRCs, `fdatasync`, then the same images in place, `fdatasync`. On
//! open, a journal whose header and every named image check out is replayed (idempotent); a
//! journal torn by a power cut fails its CRCs and is ignored, and the pages in place are still
//! those of the previous batch, since in-place writes only start after the journal is on disk.
//! So a power cut loses at most the batch being written. When a batch needs several rounds, the
//! state page and the day pages go in the last one, so the counters and the days they fed stay
//! consistent (archive pages are independent of each other).
//!
//! A new file is written whole under a temporary name, synced and renamed into place. A file
//! of the wrong size, or whose header is damaged or of another layout, is renamed aside
//! (`<name>.corrupt-<unix time>`) and replaced; a damaged data page is reset to empty (the
//! file is first copied aside) and rewritten at the next flush.
//!
//! # Figures for the default spec (60 s step)
//!
//! 256 pages = 1,048,576 bytes per gateway: header, state, journal (1 + 8), archives of 24
//! pages (3,048 one-minute slots ≥ 48 h), 70 pages (8,890 quarter-hours ≥ 90 days) and 139
//! pages (17,653 hours ≥ 2 years), 12 day pages (816 days). A flush at `PW_HISTORY_FLUSH=300`
//! with a 5 s poll changes 5 pages (state, today, one page per archive), written twice plus
//! the journal header: about 11 page writes (44 KiB) and 2 `fdatasync` per flush, 133 page
//! writes (532 KiB) per hour (measured by `flash_writes_at_a_five_minute_flush`).
//!
//! **Invariant:** nothing read from the file sizes an allocation: the file must have exactly the
//! size the configured layout gives, and every count in it is checked against that layout.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::HistoryError;

/// Page size (bytes): the unit of every write.
pub const PAGE: usize = 4096;
/// Bytes at the start of every page: CRC, page number, 8 kind-specific bytes.
pub(crate) const PAGE_HEADER: usize = 16;
/// Pages in the journal (the most a round writes).
pub(crate) const JOURNAL_SLOTS: usize = 8;
pub(crate) const HEADER_PAGE: u32 = 0;
pub(crate) const STATE_PAGE: u32 = 1;
const JOURNAL_PAGE: u32 = 2;
const FIRST_DATA_PAGE: u32 = 3 + JOURNAL_SLOTS as u32;
const MAGIC: &[u8; 8] = b"PWHISTRY";
const VERSION: u32 = 1;
/// Most archives a layout may have (the header has room for this many).
pub(crate) const MAX_ARCHIVES: usize = 4;

/// Where each part of the file is; computed from the configuration, checked against the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub step: u32,
    /// (steps per slot, pages) of each archive.
    pub archives: Vec<(u32, u32)>,
    pub day_pages: u32,
}

impl Layout {
    pub fn archive_base(&self, i: usize) -> u32 {
        FIRST_DATA_PAGE + self.archives.iter().take(i).map(|a| a.1).sum::<u32>()
    }

    pub fn days_base(&self) -> u32 {
        self.archive_base(self.archives.len())
    }

    pub fn total_pages(&self) -> u32 {
        self.days_base() + self.day_pages
    }

    pub fn file_bytes(&self) -> u64 {
        u64::from(self.total_pages()) * PAGE as u64
    }

    fn header_page(&self, created: i64) -> Vec<u8> {
        let mut p = vec![0u8; PAGE];
        p[8..16].copy_from_slice(MAGIC);
        let mut w = Writer(&mut p[16..]);
        for v in [VERSION, PAGE as u32, self.step, self.archives.len() as u32] {
            w.u32(v);
        }
        for i in 0..MAX_ARCHIVES {
            let (steps, pages) = self.archives.get(i).copied().unwrap_or((0, 0));
            w.u32(steps);
            w.u32(pages);
        }
        for v in [self.day_pages, JOURNAL_SLOTS as u32, self.total_pages()] {
            w.u32(v);
        }
        w.bytes(&created.to_le_bytes());
        seal(&mut p, HEADER_PAGE);
        p
    }
}

/// A little-endian writer over a page's bytes (callers stay within the page).
pub(crate) struct Writer<'a>(pub &'a mut [u8]);

impl Writer<'_> {
    pub fn bytes(&mut self, b: &[u8]) {
        let buf = std::mem::take(&mut self.0);
        let (head, tail) = buf.split_at_mut(b.len().min(buf.len()));
        head.copy_from_slice(&b[..head.len()]);
        self.0 = tail;
    }
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.bytes(&v.to_le_bytes());
    }
}

/// A little-endian reader; reads past the end give zeros.
pub(crate) struct Reader<'a>(pub &'a [u8]);

impl Reader<'_> {
    pub fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    pub fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
    pub fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.take())
    }
}

pub(crate) fn crc32(b: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(b);
    c.sum()
}

/// Writes the page number and the CRC into a page image.
pub(crate) fn seal(page: &mut [u8], no: u32) {
    page[4..8].copy_from_slice(&no.to_le_bytes());
    let crc = crc32(&page[4..]);
    page[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// The page's CRC and number check out.
pub(crate) fn valid(page: &[u8], no: u32) -> bool {
    page.len() == PAGE
        && page[4..8] == no.to_le_bytes()
        && page[0..4] == crc32(&page[4..]).to_le_bytes()
}

/// An open history file.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    file: File,
    /// Generation of the last batch written (journal header).
    gen: u64,
    /// Test hook: fail (after writing half a page) once this many page writes are done.
    #[cfg(test)]
    pub cut_after: Option<usize>,
}

/// What opening found: the store (when writable), the file's pages, and what went wrong.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    pub store: Option<Store>,
    /// All pages of a readable file of the right layout, journal replayed.
    pub image: Option<Vec<u8>>,
    /// Data pages whose CRC failed (their content must be treated as empty).
    pub bad_pages: Vec<u32>,
    /// Things to log: set-aside files, unwritable directories.
    pub problems: Vec<HistoryError>,
}

impl Store {
    /// Opens `path` for `layout`, creating it (with `fresh` as its pages) when missing, and
    /// setting a damaged file aside. Never fails outright: see [`Opened::problems`].
    pub fn open(path: &Path, layout: &Layout, now: i64, fresh: &dyn Fn() -> Vec<u8>) -> Opened {
        let mut out = Opened::default();
        let read = read_file(path, layout);
        match read {
            Ok(None) => {}
            Ok(Some(mut image)) => {
                if !header_ok(&image, layout) {
                    out.problems
                        .push(set_aside(path, now, "header or layout does not match"));
                } else {
                    let gen = replay_journal(&mut image);
                    out.bad_pages = (STATE_PAGE..layout.total_pages())
                        .filter(|&no| !(JOURNAL_PAGE..FIRST_DATA_PAGE).contains(&no))
                        .filter(|&no| !valid(page(&image, no), no))
                        .collect();
                    if !out.bad_pages.is_empty() {
                        let aside = aside_name(path, now);
                        let copied = fs::copy(path, &aside).map(|_| ());
                        out.problems.push(HistoryError::BadPages {
                            path: path.to_path_buf(),
                            pages: out.bad_pages.len(),
                            aside: copied.is_ok().then_some(aside),
                        });
                    }
                    match OpenOptions::new().read(true).write(true).open(path) {
                        Ok(file) => {
                            let mut store = Store::with(path, file, gen);
                            // Make the replayed journal durable in place (only pages that differ).
                            if let Err(e) = store.apply_journal_in_place(&image) {
                                out.problems.push(e);
                            } else {
                                out.store = Some(store);
                            }
                        }
                        Err(e) => out
                            .problems
                            .push(HistoryError::io("open for writing", path, e)),
                    }
                    out.image = Some(image);
                    return out;
                }
            }
            Err(HistoryError::WrongSize { .. }) => {
                out.problems
                    .push(set_aside(path, now, "file size does not match the layout"));
            }
            Err(e) => {
                out.problems.push(e);
                return out;
            }
        }
        match Store::create(path, layout, now, &fresh()) {
            Ok(s) => out.store = Some(s),
            Err(e) => out.problems.push(e),
        }
        out
    }

    fn with(path: &Path, file: File, gen: u64) -> Store {
        Store {
            path: path.to_path_buf(),
            file,
            gen,
            #[cfg(test)]
            cut_after: None,
        }
    }

    /// Writes a whole new file (`pages` = every page after the header) under a temporary name,
    /// then renames it into place.
    pub fn create(
        path: &Path,
        layout: &Layout,
        now: i64,
        pages: &[u8],
    ) -> Result<Store, HistoryError> {
        let tmp = path.with_extension("tmp");
        let result = (|| {
            let mut f = File::create(&tmp).map_err(|e| HistoryError::io("create", &tmp, e))?;
            f.write_all(&layout.header_page(now))
                .and_then(|_| f.write_all(pages))
                .and_then(|_| f.sync_all())
                .map_err(|e| HistoryError::io("write", &tmp, e))?;
            fs::rename(&tmp, path).map_err(|e| HistoryError::io("rename into place", path, e))?;
            if let Some(dir) = path.parent().and_then(|d| File::open(d).ok()) {
                // Best effort: makes the rename durable on filesystems that need it.
                let _ = dir.sync_all();
            }
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| HistoryError::io("open for writing", path, e))
        })();
        match result {
            Ok(file) => Ok(Store::with(path, file, 0)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn write_page(&mut self, no: u32, image: &[u8]) -> Result<(), HistoryError> {
        #[cfg(test)]
        if let Some(left) = self.cut_after.as_mut() {
            if *left == 0 {
                // A power cut in the middle of this page.
                let _ = self
                    .file
                    .write_all_at(&image[..PAGE / 2], u64::from(no) * PAGE as u64);
                return Err(HistoryError::io(
                    "write (simulated power cut)",
                    &self.path,
                    std::io::Error::other("cut"),
                ));
            }
            *left -= 1;
        }
        self.file
            .write_all_at(image, u64::from(no) * PAGE as u64)
            .map_err(|e| HistoryError::io("write", &self.path, e))
    }

    fn sync(&self) -> Result<(), HistoryError> {
        self.file
            .sync_data()
            .map_err(|e| HistoryError::io("sync", &self.path, e))
    }

    /// Writes `pages` (number, sealed image) durably, in journaled rounds of at most
    /// [`JOURNAL_SLOTS`] pages; the last pages of the list go in the last round. Returns the
    /// number of page writes made (journal included).
    pub fn write_batch(&mut self, pages: &[(u32, Vec<u8>)]) -> Result<usize, HistoryError> {
        let mut writes = 0;
        let rounds: Vec<_> = pages.rchunks(JOURNAL_SLOTS).rev().collect();
        for round in rounds {
            self.gen = self.gen.wrapping_add(1);
            let mut header = vec![0u8; PAGE];
            let mut w = Writer(&mut header[8..]);
            w.u64(self.gen);
            w.u32(round.len() as u32);
            for (k, (no, image)) in round.iter().enumerate() {
                // A journal slot holds the image verbatim (its own number and CRC inside).
                self.write_page(3 + k as u32, image)?;
                w.u32(*no);
                w.u32(u32::from_le_bytes([image[0], image[1], image[2], image[3]]));
            }
            seal(&mut header, JOURNAL_PAGE);
            self.write_page(JOURNAL_PAGE, &header)?;
            self.sync()?;
            for (no, image) in round {
                self.write_page(*no, image)?;
            }
            self.sync()?;
            writes += 2 * round.len() + 1;
        }
        Ok(writes)
    }

    /// After a replay, writes the pages the journal named where they differ on disk.
    fn apply_journal_in_place(&mut self, image: &[u8]) -> Result<(), HistoryError> {
        let Some(targets) = journal_targets(image) else {
            return Ok(());
        };
        let mut changed = false;
        for no in targets {
            let mut on_disk = vec![0u8; PAGE];
            let same = self
                .file
                .read_exact_at(&mut on_disk, u64::from(no) * PAGE as u64)
                .is_ok()
                && on_disk == page(image, no);
            if !same {
                self.write_page(no, page(image, no))?;
                changed = true;
            }
        }
        if changed {
            self.sync()?;
        }
        Ok(())
    }
}

/// Page `no` of a whole-file image (callers pass numbers below the layout's total).
pub(crate) fn page(image: &[u8], no: u32) -> &[u8] {
    let at = no as usize * PAGE;
    image.get(at..at + PAGE).unwrap_or(&[])
}

fn read_file(path: &Path, layout: &Layout) -> Result<Option<Vec<u8>>, HistoryError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(HistoryError::io("open", path, e)),
    };
    let len = f
        .metadata()
        .map_err(|e| HistoryError::io("stat", path, e))?
        .len();
    if len != layout.file_bytes() {
        return Err(HistoryError::WrongSize {
            path: path.to_path_buf(),
            len,
            want: layout.file_bytes(),
        });
    }
    // The size equals the configured layout's, so this allocation is bounded by configuration.
    let mut image = vec![0u8; layout.file_bytes() as usize];
    f.read_exact(&mut image)
        .map_err(|e| HistoryError::io("read", path, e))?;
    Ok(Some(image))
}

fn header_ok(image: &[u8], layout: &Layout) -> bool {
    let got = page(image, HEADER_PAGE);
    if !valid(got, HEADER_PAGE) || &got[8..16] != MAGIC {
        return false;
    }
    // The creation time is the only free field; compare everything else byte for byte.
    let created = Reader(&got[16 + 4 * 4 + 8 * MAX_ARCHIVES + 3 * 4..]).i64();
    layout.header_page(created) == got
}

/// The journal's target pages when its header and all its images check out.
fn journal_targets(image: &[u8]) -> Option<Vec<u32>> {
    let header = page(image, JOURNAL_PAGE);
    if !valid(header, JOURNAL_PAGE) {
        return None;
    }
    let mut r = Reader(&header[8..]);
    let _gen = r.u64();
    let count = r.u32() as usize;
    if count > JOURNAL_SLOTS {
        return None;
    }
    let total = (image.len() / PAGE) as u32;
    let mut targets = Vec::with_capacity(count);
    for k in 0..count {
        let (no, crc) = (r.u32(), r.u32());
        let slot = page(image, 3 + k as u32);
        if no < FIRST_DATA_PAGE && no != STATE_PAGE
            || no >= total
            || !valid(slot, no)
            || slot[0..4] != crc.to_le_bytes()
        {
            return None;
        }
        targets.push(no);
    }
    Some(targets)
}

/// Copies a complete journal into the image; returns the journal's generation.
fn replay_journal(image: &mut [u8]) -> u64 {
    let gen = Reader(&page(image, JOURNAL_PAGE)[8..]).u64();
    if let Some(targets) = journal_targets(image) {
        for (k, no) in targets.into_iter().enumerate() {
            let from = (3 + k) * PAGE;
            let to = no as usize * PAGE;
            image.copy_within(from..from + PAGE, to);
        }
    }
    gen
}

fn aside_name(path: &Path, now: i64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{now}"));
    PathBuf::from(name)
}

pub(crate) fn set_aside(path: &Path, now: i64, why: &'static str) -> HistoryError {
    let aside = aside_name(path, now);
    match fs::rename(path, &aside) {
        Ok(()) => HistoryError::SetAside {
            path: path.to_path_buf(),
            why,
            aside: Some(aside),
        },
        Err(_) => HistoryError::SetAside {
            path: path.to_path_buf(),
            why,
            aside: None,
        },
    }
}
