//! Recorder tests on real files in a fresh directory each: restart, power cuts (simulated and a
//! real `kill -9`), damaged files, unwritable directories, a simulated year, DST days, counter
//! resets, and counters against the power integral.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::archive::Slot;
use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "pwh-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn file(&self) -> PathBuf {
        file_path(&self.0, "gw1")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 2026-11-26 00:00 UTC.
const T0: f64 = 1_795_651_200.0;

fn la() -> Zone {
    Zone::named("America/Los_Angeles").unwrap()
}

fn open(spec: &Spec, path: &Path, now: f64) -> Recorder {
    Recorder::new(
        spec.clone(),
        Storage::File(path.to_path_buf()),
        la(),
        now as i64,
    )
    .unwrap()
}

/// A deterministic sample: power varies with `i`, counters integrate it (when `meters`).
fn sample(ts: f64, i: u64, meters: bool) -> Sample {
    let w = (i % 97) as f64 * 10.0;
    let m = |k: f64| meters.then_some(1e6 + ts * k);
    Sample {
        ts,
        solar: Some(w),
        home: Some(500.0 + w / 2.0),
        battery: Some(if i.is_multiple_of(2) { 300.0 } else { -200.0 }),
        grid: Some(w - 250.0),
        soe: Some(40.0 + (i % 50) as f64 / 10.0),
        meters: [m(0.1), m(0.2), m(0.05), m(0.01), m(0.03), m(0.04)],
    }
}

/// Everything a recorder holds, for comparing two of them.
#[derive(Debug, PartialEq)]
struct Dump {
    archives: Vec<Vec<(i64, Slot)>>,
    days: Vec<(Day, u16, [f32; FLOWS])>,
}

fn dump(r: &Recorder) -> Dump {
    Dump {
        archives: r
            .archives
            .iter()
            .map(|a| a.iter(0, i64::MAX / 2).map(|(p, s)| (p, *s)).collect())
            .collect(),
        // Days as the file keeps them (f32).
        days: r
            .all_days()
            .iter()
            .map(|d| (d.day, 0, d.wh.map(|v| v as f32)))
            .collect(),
    }
}

#[test]
fn restart_keeps_every_archive() {
    let dir = TempDir::new("restart");
    let spec = Spec::standard(1);
    let mut r = open(&spec, &dir.file(), T0);
    assert!(r.status().persisted, "{:?}", r.status());
    for i in 0..20_000u64 {
        r.record(&sample(T0 + i as f64, i, true));
        if i % 300 == 299 {
            r.flush().unwrap();
        }
    }
    r.flush().unwrap();
    let before = dump(&r);
    let kept: Vec<usize> = before.archives.iter().map(Vec::len).collect();
    assert!(kept[0] >= 2880 && kept[0] <= 3048, "{kept:?}");
    assert_eq!(kept[1..], [1334, 334]);
    drop(r);
    let mut again = open(&spec, &dir.file(), T0 + 20_000.0);
    assert_eq!(dump(&again), before);
    assert!(again.status().open_problems.is_empty());
    // The cursor survived: the energy across the restart gap comes from the counters.
    let day = again.today(T0 as i64 + 20_000).wh;
    again.record(&sample(T0 + 20_100.0, 20_100, true));
    let after = again.today(T0 as i64 + 20_100).wh;
    assert!(
        (after[0] - day[0] - 0.1 * 101.0).abs() < 0.01,
        "{} {}",
        after[0],
        day[0]
    );
    // The slot being filled at shutdown is resumed, not restarted.
    let s = again.samples(1);
    assert_eq!(s[0].ts, T0 as i64 + 20_100);
}

#[test]
fn a_power_cut_loses_at_most_the_last_batch() {
    let dir = TempDir::new("cut");
    let spec = Spec::standard(1);
    let path = dir.file();
    let mut r = open(&spec, &path, T0);
    for i in 0..1000u64 {
        r.record(&sample(T0 + i as f64, i, true));
    }
    r.flush().unwrap();
    let old = dump(&r);
    let template = std::fs::read(&path).unwrap();
    drop(r);
    // The same next batch, cut after 0, 1, 2, … page writes.
    let mut cuts = 0;
    let mut dirty = 0;
    for k in 0.. {
        std::fs::write(&path, &template).unwrap();
        let mut r = open(&spec, &path, T0);
        for i in 1000..1300u64 {
            r.record(&sample(T0 + i as f64, i, true));
        }
        let new = dump(&r);
        dirty = r.status().dirty_pages;
        r.store_mut().unwrap().cut_after = Some(k);
        let done = r.flush().is_ok();
        drop(r);
        let back = open(&spec, &path, T0);
        assert!(
            back.status().open_problems.is_empty(),
            "cut {k}: {:?}",
            back.status()
        );
        let got = dump(&back);
        assert!(
            got == old || got == new,
            "cut after {k} writes: neither the old nor the new state"
        );
        if done {
            assert_eq!(got, new);
            break;
        }
        cuts += 1;
    }
    // One round: the journal slots, the journal header, the pages in place.
    assert!(dirty <= store::JOURNAL_SLOTS);
    assert_eq!(cuts, 2 * dirty + 1);
}

#[test]
fn a_batch_of_several_rounds_reads_back_after_any_cut() {
    let dir = TempDir::new("cut-rounds");
    let spec = Spec::standard(1);
    let path = dir.file();
    let mut r = open(&spec, &path, T0);
    r.record(&sample(T0, 0, true));
    r.flush().unwrap();
    let template = std::fs::read(&path).unwrap();
    drop(r);
    for k in (0..60).step_by(7) {
        std::fs::write(&path, &template).unwrap();
        let mut r = open(&spec, &path, T0);
        // Three days at a 15 s tick: many pages of every archive and three day records.
        for i in 1..17_280u64 {
            r.record(&sample(T0 + 15.0 * i as f64, i, true));
        }
        let new = dump(&r);
        r.store_mut().unwrap().cut_after = Some(k);
        let _ = r.flush();
        drop(r);
        let back = open(&spec, &path, T0);
        assert!(back.status().open_problems.is_empty(), "cut {k}");
        // Every slot read back is one the recorder had (old or new), and days only grow.
        for (a, got) in dump(&back).archives.iter().enumerate() {
            for slot in got {
                assert!(
                    new.archives[a].contains(slot)
                        || slot.0 == (T0 as i64).div_euclid(back.archives[a].slot_secs)
                );
            }
        }
    }
}

/// The child of [`kill_9_between_flushes`]: records and flushes until killed.
#[test]
fn kill_child() {
    let Ok(dir) = std::env::var("PWH_KILL_CHILD_DIR") else {
        return; // Only runs as the child.
    };
    let path = file_path(Path::new(&dir), "gw1");
    let mut r = open(&Spec::standard(1), &path, T0);
    let out = std::io::stdout();
    for batch in 0..100_000u64 {
        for k in 0..30 {
            let i = batch * 30 + k;
            r.record(&sample(T0 + i as f64, i, true));
        }
        r.flush().unwrap();
        let newest = r.archives[0].newest().unwrap_or(0);
        use std::io::Write;
        let mut o = out.lock();
        let _ = writeln!(o, "FLUSHED {newest}");
        let _ = o.flush();
    }
}

#[test]
fn kill_9_between_flushes() {
    let dir = TempDir::new("kill");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "history::tests::kill_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PWH_KILL_CHILD_DIR", &dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = None;
    let mut seen = 0;
    while seen < 25 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(p) = line.strip_prefix("FLUSHED ") {
            last = p.parse::<i64>().ok();
            seen += 1;
        }
    }
    // SIGKILL, probably in the middle of the next batch.
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(seen, 25, "the child stopped early");
    let r = open(&Spec::standard(1), &dir.file(), T0);
    let st = r.status();
    assert!(st.open_problems.is_empty(), "{st:?}");
    let newest = r.archives[0].newest().unwrap();
    let last = last.unwrap();
    // Everything reported flushed is there: at most the batch in progress is lost. (The child
    // may have flushed more batches than the parent read lines before the kill landed.)
    assert!(newest >= last, "newest {newest}, last flushed {last}");
    let want = (newest - T0 as i64 + 1).min(2880);
    assert_eq!(
        r.archives[0].iter(newest - want + 1, newest).count() as i64,
        want
    );
}

#[test]
fn truncated_and_corrupt_files_are_set_aside_and_replaced() {
    let dir = TempDir::new("corrupt");
    let spec = Spec::standard(1);
    let path = dir.file();
    let fill = |r: &mut Recorder| {
        for i in 0..600u64 {
            r.record(&sample(T0 + i as f64, i, true));
        }
        r.flush().unwrap();
    };
    let asides = || {
        std::fs::read_dir(&dir.0)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".corrupt-")
            })
            .count()
    };
    let mut r = open(&spec, &path, T0);
    fill(&mut r);
    let full = dump(&r);
    drop(r);
    let bytes = std::fs::read(&path).unwrap();

    // Truncated: set aside, a new empty file of the full size.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let mut r = open(&spec, &path, T0 + 1.0);
    assert_eq!(asides(), 1);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), r.file_bytes());
    assert!(
        r.status().open_problems[0].contains("file size does not match"),
        "{:?}",
        r.status()
    );
    assert!(r.samples(10).is_empty());
    fill(&mut r);
    drop(r);

    // A damaged header (or a file of another program): set aside too.
    let mut b = bytes.clone();
    b[9] ^= 0xff;
    std::fs::write(&path, &b).unwrap();
    let r = open(&spec, &path, T0 + 2.0);
    assert_eq!(asides(), 2);
    assert!(r.samples(10).is_empty());
    drop(r);

    // Another layout (PW_HISTORY_STEP changed): never reinterpreted.
    std::fs::write(&path, &bytes).unwrap();
    let r = open(&Spec::standard(2), &path, T0 + 3.0);
    assert_eq!(asides(), 3);
    assert!(r.samples(10).is_empty());
    drop(r);

    // One damaged data page: only that page is lost, the file is copied aside and repaired.
    let mut b = bytes.clone();
    let layout = spec.check().unwrap();
    // The page of the 15 s archive that holds the first slot.
    let a1 = &spec.archives[1];
    let rows = (archive::Archive::pages_for(a1.keep) * archive::PER_PAGE) as i64;
    let pos = (T0 as i64 / i64::from(a1.steps)).rem_euclid(rows) as usize;
    let page = layout.archive_base(1) as usize + pos / archive::PER_PAGE;
    b[page * store::PAGE + 100] ^= 0x55;
    // The last batch's journal still holds a good copy of that page; tear the journal too.
    b[2 * store::PAGE + 20] ^= 0x55;
    std::fs::write(&path, &b).unwrap();
    let mut r = open(&spec, &path, T0 + 4.0);
    assert_eq!(asides(), 4);
    let got = dump(&r);
    assert_eq!(got.archives[0], full.archives[0]);
    assert_eq!(got.archives[2], full.archives[2]);
    assert!(got.archives[1].len() < full.archives[1].len());
    assert!(r.status().open_problems[0].contains("1 damaged page(s)"));
    r.flush().unwrap();
    drop(r);
    let r = open(&spec, &path, T0 + 5.0);
    assert!(r.status().open_problems.is_empty());
}

#[test]
fn random_damage_never_panics() {
    let dir = TempDir::new("fuzz");
    let spec = Spec::standard(1);
    let path = dir.file();
    let mut r = open(&spec, &path, T0);
    for i in 0..2000u64 {
        r.record(&sample(T0 + i as f64, i, true));
    }
    r.flush().unwrap();
    drop(r);
    let bytes = std::fs::read(&path).unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for round in 0..48 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut b = bytes.clone();
        for k in 0..(1 + round % 4) {
            let at = ((x >> (k * 8)) as usize) % b.len();
            b[at] = b[at].wrapping_add(1 + (x >> 40) as u8 % 255);
        }
        std::fs::write(&path, &b).unwrap();
        let mut r = open(&spec, &path, T0 + round as f64);
        r.record(&sample(T0 + 5000.0, 1, true));
        let _ = r.trend(T0 as i64, T0 as i64 + 5000, 100);
        let _ = r.all_days();
        r.flush().unwrap();
    }
}

#[test]
fn an_unwritable_directory_keeps_recording_in_memory() {
    let dir = TempDir::new("ro");
    // A path under a regular file can never be created, even by root (tests run as root in CI).
    let blocker = dir.0.join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let path = file_path(&blocker, "gw1");
    let mut r = Recorder::new(
        Spec::standard(1),
        Storage::File(path.clone()),
        la(),
        T0 as i64,
    )
    .unwrap();
    assert!(!r.status().persisted);
    assert!(r.status().last_error.unwrap().contains("not-a-dir"));
    for i in 0..100u64 {
        r.record(&sample(T0 + i as f64, i, true));
    }
    assert!(r.flush().is_err());
    assert!(r.flush().is_err());
    assert_eq!(r.status().write_failures, 2);
    assert_eq!(r.samples(1000).len(), 100);
    // The directory appears (a USB stick mounted late): the next flush writes everything.
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir(&blocker).unwrap();
    let done = r.flush().unwrap();
    assert_eq!(done.pages as u64 * store::PAGE as u64, r.file_bytes());
    assert!(r.status().persisted && r.status().last_error.is_none());
    let back = open(&Spec::standard(1), &path, T0);
    assert_eq!(back.samples(1000).len(), 100);
}

#[test]
fn a_failed_write_is_retried_with_a_whole_new_file() {
    let dir = TempDir::new("fail");
    let mut r = open(&Spec::standard(1), &dir.file(), T0);
    for i in 0..100u64 {
        r.record(&sample(T0 + i as f64, i, true));
    }
    // A full disk: the write fails halfway through.
    r.store_mut().unwrap().cut_after = Some(3);
    assert!(r.flush().is_err());
    assert!(!r.status().persisted);
    r.record(&sample(T0 + 100.0, 100, true));
    r.flush().unwrap();
    let back = open(&Spec::standard(1), &dir.file(), T0);
    assert_eq!(back.samples(1000).len(), 101);
}

#[test]
fn a_simulated_year_leaves_the_file_size_unchanged() {
    let dir = TempDir::new("year");
    let spec = Spec::standard(60);
    let path = dir.file();
    let mut r = open(&spec, &path, T0);
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(size, 1_048_576, "the default archives take 1 MiB");
    let tick = 300.0;
    let n = (366.0 * 86_400.0 / tick) as u64;
    for i in 0..n {
        let ts = T0 + i as f64 * tick;
        r.record(&sample(ts, i, true));
        if i % 288 == 287 {
            r.flush().unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        }
    }
    r.flush().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    let st = r.status();
    let end = (T0 + (n - 1) as f64 * tick) as i64;
    // 48 h of 1-minute slots (one filled per 5-minute tick), 90 days of 15 min, the whole year hourly.
    assert!(st.archives[0].filled >= 48 * 12, "{:?}", st.archives[0]);
    assert!(
        st.archives[1].filled >= 90 * 96 / 3 * 3,
        "{:?}",
        st.archives[1]
    );
    assert!(st.archives[0].oldest_ts.unwrap() <= end - 48 * 3600);
    assert!(st.archives[1].oldest_ts.unwrap() <= end - 90 * 86_400);
    assert_eq!(st.archives[2].newest_ts, Some(end - end % 3600));
    assert_eq!(st.archives[2].oldest_ts, Some(T0 as i64));
    assert!(st.days >= 366, "{}", st.days);
    let back = open(&spec, &path, end as f64);
    assert_eq!(dump(&back), dump(&r));
    // A year of 5-minute flushes of this batch shape, in page writes per hour.
    let per_hour = st.page_writes as f64 / (n as f64 * tick / 3600.0);
    assert!(per_hour < 20.0, "{per_hour}");
}

// Energy, trend and counter tests.
mod energy;
