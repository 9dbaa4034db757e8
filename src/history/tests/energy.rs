//! History tests on energy: DST days, counter resets, daily kWh, trends, flush cadence.

use super::*;

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
