//! Local days: which calendar day of the site a Unix second belongs to, and where days begin.
//!
//! The rules come from the IANA database embedded in the binary (`jiff` with its bundled tzdb),
//! never from `/usr/share/zoneinfo`: the `FROM scratch` image and OpenWrt have none. Only
//! `TimeZone::get` and `TimeZone::to_offset` are used; the calendar arithmetic is ours, so the
//! linker keeps little of jiff besides the data.
//!
//! **Invariant:** a day begins at the first second whose local date is that day, so a DST day is
//! 23 or 25 hours long (and a day whose midnight is skipped begins at the transition), never a
//! shifted 24 hours.

use std::fmt;

/// A local calendar day: days since 1970-01-01 in the site's time zone.
pub type Day = i32;

/// The site's time zone (a cheap clone).
#[derive(Clone)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

/// An IANA name the embedded database does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownZone(pub String);

impl fmt::Display for UnknownZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown time zone '{}' (expected an IANA name such as Europe/Berlin)",
            self.0
        )
    }
}

impl std::error::Error for UnknownZone {}

/// Offsets are within ±26 h in every zone ever defined; a day's start is searched this far out.
const MAX_OFFSET: i64 = 26 * 3600;

impl Zone {
    /// Coordinated Universal Time.
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_string(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    /// A zone by IANA name (`America/Los_Angeles`), from the embedded database.
    pub fn named(name: &str) -> Result<Zone, UnknownZone> {
        let name = name.trim();
        match jiff::tz::TimeZone::get(name) {
            Ok(tz) => Ok(Zone {
                name: name.to_string(),
                tz,
            }),
            Err(_) => Err(UnknownZone(name.to_string())),
        }
    }

    /// The first of `names` that is set and known (e.g. `PW_TIMEZONE`, then the gateway's
    /// `installation_time_zone`), else UTC; an unknown name is returned as the error beside it.
    pub fn pick<'a>(names: impl IntoIterator<Item = Option<&'a str>>) -> (Zone, Vec<UnknownZone>) {
        let mut bad = Vec::new();
        for name in names.into_iter().flatten() {
            if name.trim().is_empty() {
                continue;
            }
            match Zone::named(name) {
                Ok(z) => return (z, bad),
                Err(e) => bad.push(e),
            }
        }
        (Zone::utc(), bad)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// UTC offset in seconds at Unix second `t`.
    pub fn offset(&self, t: i64) -> i64 {
        match jiff::Timestamp::from_second(t) {
            Ok(ts) => i64::from(self.tz.to_offset(ts).seconds()),
            // Outside jiff's range (±9999 years): no offset is better than a panic.
            Err(_) => 0,
        }
    }

    /// The local day of Unix second `t`.
    pub fn day_of(&self, t: i64) -> Day {
        let local = t.saturating_add(self.offset(t));
        clamp_day(local.div_euclid(86_400))
    }

    /// The first Unix second of local day `day`.
    pub fn day_start(&self, day: Day) -> i64 {
        let midnight = i64::from(day) * 86_400;
        // day_of(lo) < day <= day_of(hi); binary search the first second of `day`. Local time
        // is monotonic except at fall-back transitions; across one that crosses midnight this
        // finds the first midnight, which is the day's start.
        let (mut lo, mut hi) = (midnight - MAX_OFFSET - 1, midnight + MAX_OFFSET);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.day_of(mid) >= day {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }

    /// Seconds in local day `day` (86 400, or 82 800 / 90 000 on DST days).
    pub fn day_len(&self, day: Day) -> i64 {
        self.day_start(day.saturating_add(1)) - self.day_start(day)
    }
}

fn clamp_day(d: i64) -> Day {
    d.clamp(i64::from(Day::MIN), i64::from(Day::MAX)) as Day
}

/// `YYYY-MM-DD` of a day number (Howard Hinnant's civil_from_days).
pub fn date_string(day: Day) -> String {
    let (y, m, d) = civil(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number of `YYYY-MM-DD`, or `None` when it is not a valid date.
pub fn parse_date(s: &str) -> Option<Day> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 || d > 31 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Rejects 2026-02-30 and friends: the round trip must give the same date.
    (civil(days) == (y, m, d)).then_some(clamp_day(days))
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        parse_date(s).unwrap()
    }

    #[test]
    fn dst_days_in_los_angeles_have_23_and_25_hours() {
        let la = Zone::named("America/Los_Angeles").unwrap();
        assert_eq!(la.day_len(day("2026-03-08")), 23 * 3600);
        assert_eq!(la.day_len(day("2026-11-01")), 25 * 3600);
        assert_eq!(la.day_len(day("2026-11-02")), 24 * 3600);
        // Midnight PST is 08:00 UTC, midnight PDT 07:00 UTC.
        assert_eq!(la.day_start(day("2026-03-08")), 1_772_956_800);
        assert_eq!(la.day_start(day("2026-03-09")), 1_772_956_800 + 23 * 3600);
        let t = la.day_start(day("2026-11-26"));
        assert_eq!(la.day_of(t), day("2026-11-26"));
        assert_eq!(la.day_of(t - 1), day("2026-11-25"));
        // The 0.13.0 sample's timestamp is on 2026-11-26 in Los Angeles.
        assert_eq!(date_string(la.day_of(1_795_712_297)), "2026-11-26");
    }

    #[test]
    fn a_skipped_midnight_starts_the_day_at_the_transition() {
        // Chile moved clocks from 00:00 to 01:00 on 2022-09-11 (America/Santiago).
        let z = Zone::named("America/Santiago").unwrap();
        let d = day("2022-09-11");
        let start = z.day_start(d);
        assert_eq!(z.day_of(start), d);
        assert_eq!(z.day_of(start - 1), d - 1);
        assert_eq!(z.day_len(d), 23 * 3600);
    }

    #[test]
    fn utc_and_names() {
        let utc = Zone::utc();
        assert_eq!(utc.day_start(day("2026-11-26")), 1_795_651_200);
        assert_eq!(utc.day_len(day("2026-11-26")), 86_400);
        assert!(Zone::named("Mars/Olympus").is_err());
        assert_eq!(
            Zone::named("Nowhere").unwrap_err().to_string(),
            "unknown time zone 'Nowhere' (expected an IANA name such as Europe/Berlin)"
        );
        let (z, bad) = Zone::pick([Some("Bogus/Zone"), None, Some("Europe/Berlin")]);
        assert_eq!(z.name(), "Europe/Berlin");
        assert_eq!(bad, vec![UnknownZone("Bogus/Zone".into())]);
        assert_eq!(Zone::pick([None, Some("")]).0.name(), "UTC");
    }

    #[test]
    fn dates_round_trip() {
        for s in ["1970-01-01", "2000-02-29", "2026-11-26", "2099-12-31"] {
            assert_eq!(date_string(day(s)), s);
        }
        assert_eq!(day("1970-01-02"), 1);
        for bad in ["2026-02-30", "2026-13-01", "x", "2026-1", "", "0-01-01"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
