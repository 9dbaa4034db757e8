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

#[test]
fn dst_days_in_los_angeles_have_23_and_25_hours_of_energy() {
    // A constant 1 kW home, no counters: the spring day holds 23 kWh, the autumn day 25 kWh.
    let mut r = Recorder::new(Spec::standard(60), Storage::Memory, la(), 0).unwrap();
    for date in ["2026-03-08", "2026-11-01"] {
        let d = parse_date(date).unwrap();
        let (start, end) = (la().day_start(d - 1), la().day_start(d + 2));
        let mut t = start;
        while t <= end {
            r.record(&Sample {
                ts: t as f64,
                home: Some(1000.0),
                ..Sample::default()
            });
            t += 60;
        }
    }
    let kwh = |date: &str| r.day(parse_date(date).unwrap()).unwrap().kwh(Flow::Home);
    assert!(
        (kwh("2026-03-08") - 23.0).abs() < 1e-6,
        "{}",
        kwh("2026-03-08")
    );
    assert!(
        (kwh("2026-11-01") - 25.0).abs() < 1e-6,
        "{}",
        kwh("2026-11-01")
    );
    assert!((kwh("2026-11-02") - 24.0).abs() < 1e-6);
    assert_eq!(
        r.day(parse_date("2026-03-08").unwrap()).unwrap().source[1],
        Source::Integrated
    );
}

#[test]
fn a_counter_reset_gives_no_negative_kwh() {
    let mut r = Recorder::new(Spec::standard(60), Storage::Memory, Zone::utc(), 0).unwrap();
    let mut meter = 5_000_000.0;
    for i in 0..1440u64 {
        // The gateway is replaced at noon: its counters start again from 0.
        if i == 720 {
            meter = 0.0;
        }
        r.record(&Sample {
            ts: T0 + 60.0 * i as f64,
            home: Some(600.0),
            meters: [None, Some(meter), None, None, None, None],
            ..Sample::default()
        });
        meter += 10.0;
    }
    let d = r.today(T0 as i64);
    assert!(d.wh.iter().all(|&v| v >= 0.0), "{:?}", d.wh);
    assert!(d.counter_reset);
    assert_eq!(d.source[Flow::Home as usize], Source::Mixed);
    let want = 1439.0 * 10.0;
    assert!(
        (d.wh[1] - want).abs() / want < 0.01,
        "{} vs {want}",
        d.wh[1]
    );
}

/// A home like the simulator's (`sim::model`): a bell of solar, a load profile with noise, a
/// battery that covers the difference, advanced in one-second steps. The counters are the exact
/// one-second integrals, rounded to Wh as a gateway reports them.
struct Home {
    t: f64,
    rng: u64,
    cloud: f64,
    noise: f64,
    soe: f64,
    power: [f64; FLOWS],
    meters: [f64; FLOWS],
}

impl Home {
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn step(&mut self) {
        self.t += 1.0;
        let hour = (self.t / 3600.0 - 8.0).rem_euclid(24.0);
        let sun = if (6.0..18.0).contains(&hour) {
            (std::f64::consts::PI * (hour - 6.0) / 12.0).sin().powi(2)
        } else {
            0.0
        };
        self.cloud = (self.cloud + 0.02 * (self.uniform() - 0.5)).clamp(0.45, 1.0);
        self.noise += -self.noise / 180.0 + 40.0 * (self.uniform() - 0.5);
        let solar = 7000.0 * sun * self.cloud;
        let load = (600.0 + 900.0 * (-(hour - 19.0).powi(2) / 8.0).exp() + self.noise).max(120.0);
        let mut battery = (load - solar).clamp(-5000.0, 5000.0);
        if (battery > 0.0 && self.soe <= 20.0) || (battery < 0.0 && self.soe >= 100.0) {
            battery = 0.0;
        }
        self.soe = (self.soe - battery / 3600.0 / 13_500.0 * 100.0).clamp(0.0, 100.0);
        let grid = load - solar - battery;
        self.power = [
            solar,
            load,
            grid.max(0.0),
            (-grid).max(0.0),
            (-battery).max(0.0),
            battery.max(0.0),
        ];
        for q in 0..FLOWS {
            self.meters[q] += self.power[q] / 3600.0;
        }
    }

    /// What a 5-second poll reads: integer watts, whole Wh counters.
    fn sample(&self) -> Sample {
        let p = |q: usize| self.power[q].round();
        Sample {
            ts: self.t,
            solar: Some(p(0)),
            home: Some(p(1)),
            grid: Some(p(2) - p(3)),
            battery: Some(p(5) - p(4)),
            soe: Some(self.soe),
            meters: self.meters.map(|m| Some(m.floor())),
        }
    }
}

#[test]
fn daily_kwh_from_counters_agree_with_the_integral_of_the_samples() {
    let zone = la();
    let d = parse_date("2026-06-21").unwrap();
    let mut home = Home {
        t: zone.day_start(d) as f64 - 600.0,
        rng: 0x9E37_79B9_7F4A_7C15,
        cloud: 0.9,
        noise: 0.0,
        soe: 50.0,
        power: [0.0; FLOWS],
        meters: [1e6; FLOWS],
    };
    let mut r = Recorder::new(Spec::standard(60), Storage::Memory, zone.clone(), 0).unwrap();
    let end = zone.day_start(d + 1) as f64 + 600.0;
    while home.t < end {
        home.step();
        if home.t as i64 % 5 == 0 {
            r.record(&home.sample());
        }
    }
    let day = r.day(d).unwrap();
    let home_kwh = day.wh[Flow::Home as usize];
    for f in Flow::ALL {
        let (m, i) = (day.wh[f as usize], day.integral_wh[f as usize]);
        assert_eq!(day.source[f as usize], Source::Meters, "{f:?}");
        // Within 5 % of the flow, or of home use for flows that are nearly zero this day.
        let tolerance = 0.05 * m.max(i).max(0.2 * home_kwh);
        assert!(
            (m - i).abs() <= tolerance,
            "{f:?}: counters {m:.0} Wh, integral {i:.0} Wh"
        );
    }
    assert!(day.kwh(Flow::Solar) > 20.0, "{day:?}");
}

#[test]
fn trend_buckets_samples_and_merging() {
    let mut r = Recorder::new(Spec::standard(60), Storage::Memory, Zone::utc(), 0).unwrap();
    for i in 0..240u64 {
        r.record(&Sample {
            ts: T0 + 30.0 * i as f64,
            solar: Some(if i < 120 { 1000.0 } else { 3000.0 }),
            battery: Some(-500.0),
            grid: Some(200.0),
            soe: Some(50.0 + i as f64 / 10.0),
            ..Sample::default()
        });
    }
    // Two hours at a 30 s tick: 120 one-minute slots.
    let t = r.trend(T0 as i64, T0 as i64 + 7200, 12);
    assert_eq!(
        (t.bucket_seconds, t.resolution_seconds, t.points.len()),
        (600, 60, 12)
    );
    let p = &t.points[0];
    assert_eq!(
        (p.ts, p.n, p.flow(Flow::Solar), p.battery_w(), p.grid_w()),
        (T0 as i64, 20, 1000.0, -500.0, 200.0)
    );
    assert_eq!((p.soe_min, p.soe_max), (Some(50.0), Some(51.9)));
    assert!((p.soe.unwrap() - 50.95).abs() < 0.01);
    assert_eq!(t.points[11].flow(Flow::Solar), 3000.0);
    // A range older than the 1-minute archive keeps comes from a coarser one.
    let old = r.trend(T0 as i64 - 5 * 86_400, T0 as i64 + 7200, 1000);
    assert_eq!(old.resolution_seconds, 900);
    let s = r.samples(3);
    assert_eq!(
        s.iter().map(|p| p.ts).collect::<Vec<_>>(),
        [T0 as i64 + 7020, T0 as i64 + 7080, T0 as i64 + 7140]
    );
    let m = merge_points(&[s.clone(), s.clone()]);
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].flow(Flow::Solar), 6000.0);
    assert_eq!(m[0].soe, s[0].soe);
    let days = merge_daily(&[r.all_days(), r.all_days()]);
    assert_eq!(days.len(), 1);
    assert!((days[0].wh[0] - 2.0 * r.today(T0 as i64).wh[0]).abs() < 1e-9);
    assert_eq!(days[0].date, "2026-11-26");
}

#[test]
fn figures_for_the_report() {
    let r = Recorder::new(Spec::standard(60), Storage::Memory, Zone::utc(), 0).unwrap();
    // 256 pages of 4 KiB: header, state, journal (1 + 8), 24 + 70 + 139 archive pages, 12 day pages.
    assert_eq!(r.file_bytes(), 1_048_576);
    assert_eq!(r.status().days_capacity, 816);
    let heap = r.heap_bytes();
    eprintln!("history heap per gateway: {heap} bytes");
    assert!(heap < 1_100_000, "{heap}");
    assert_eq!(std::mem::size_of::<Slot>(), 32);
    let bad = Spec {
        step: 0,
        ..Spec::standard(60)
    };
    assert!(Recorder::new(bad, Storage::Memory, Zone::utc(), 0).is_err());
    let huge = Spec {
        archives: (1..=4)
            .map(|steps| ArchiveSpec {
                steps,
                keep: 1_000_000,
            })
            .collect(),
        ..Spec::standard(60)
    };
    let e = Recorder::new(huge, Storage::Memory, Zone::utc(), 0).unwrap_err();
    assert!(e.to_string().starts_with("history archives: "), "{e}");
    assert!(format!("{r:?}").len() < 300);
    assert_eq!(
        file_path(Path::new("/d"), "../x y").file_name().unwrap(),
        "_.._x_y.pwh"
    );
}

#[test]
fn flash_writes_at_a_five_minute_flush() {
    // Default archives, a 5 s poll, PW_HISTORY_FLUSH=300, two days.
    let dir = TempDir::new("wear");
    let mut r = open(&Spec::standard(60), &dir.file(), T0);
    let (mut flushes, mut writes, mut most) = (0, 0, 0);
    for i in 1..=(2 * 86_400 / 5) {
        r.record(&sample(T0 + 5.0 * i as f64, i, true));
        if i % 60 == 0 {
            let done = r.flush().unwrap();
            flushes += 1;
            writes += done.writes;
            most = most.max(done.writes);
        }
    }
    let per_hour = writes as f64 / 48.0;
    eprintln!("history wear: {flushes} flushes, {per_hour:.1} page writes/h ({:.0} KiB/h), at most {most} per flush, 2 fsyncs per flush", per_hour * 4.0);
    // Per flush: state, day, one page of each archive (sometimes two), each written twice
    // (journal, in place), plus the journal header.
    assert!(per_hour <= 12.0 * 13.0, "{per_hour}");
    assert!(most <= 2 * 7 + 1);
}

#[test]
fn a_read_only_directory_keeps_the_loaded_history() {
    use std::os::unix::fs::PermissionsExt;
    // Root ignores permissions (CI runs as root); there the test only checks the writable case.
    let root = unsafe { libc::geteuid() } == 0;
    let dir = TempDir::new("ro-perm");
    let path = dir.file();
    let mut r = open(&Spec::standard(1), &path, T0);
    for i in 0..100u64 {
        r.record(&sample(T0 + i as f64, i, true));
    }
    r.flush().unwrap();
    drop(r);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o555)).unwrap();
    let mut r = open(&Spec::standard(1), &path, T0);
    assert_eq!(
        r.samples(1000).len(),
        100,
        "the history is read even when it cannot be written"
    );
    r.record(&sample(T0 + 100.0, 100, true));
    assert_eq!(r.flush().is_ok(), root);
    assert_eq!(r.status().persisted, root);
    assert_eq!(r.samples(1000).len(), 101);
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn counters_come_from_the_aggregates_document() {
    let agg = crate::json::parse(
        r#"{"site": {"instant_power": 10, "energy_exported": 5.5, "energy_imported": 100},
            "battery": {"energy_exported": 7, "energy_imported": 8},
            "load": {"energy_imported": 9}, "solar": {"energy_exported": 11, "energy_imported": -1}}"#,
    )
    .unwrap();
    assert_eq!(
        meters_from_aggregates(&agg),
        [
            Some(11.0),
            Some(9.0),
            Some(100.0),
            Some(5.5),
            Some(8.0),
            Some(7.0)
        ]
    );
    let s = crate::render::summary::Summary {
        site: Some(1.0),
        solar: Some(2.0),
        battery: Some(3.0),
        load: Some(4.0),
        soe: Some(50.0),
        ..Default::default()
    };
    let x = Sample::from_summary(T0, &s, None);
    assert_eq!(
        (x.grid, x.solar, x.battery, x.home, x.soe),
        (Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(50.0))
    );
    assert_eq!(x.meters, [None; FLOWS]);
}
