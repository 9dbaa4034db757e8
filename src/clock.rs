//! Wall-clock formatting without a date crate: ISO 8601 (UTC) and Python's `str(timedelta)`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch as a float.
pub fn unix_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Whole seconds since the Unix epoch.
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
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

/// `YYYY-MM-DDTHH:MM:SS` in UTC, with `.ffffff` when `micros` is set.
pub fn iso_utc(t: SystemTime, micros: bool) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, da) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut s = format!(
        "{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if micros {
        s.push_str(&format!(".{:06}", d.subsec_micros()));
    }
    s
}

/// Python `str(timedelta(seconds=n))` for whole seconds: `0:00:15`, `1 day, 2:03:04`.
pub fn timedelta(d: Duration) -> String {
    let secs = d.as_secs();
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let hms = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => hms,
        1 => format!("1 day, {hms}"),
        n => format!("{n} days, {hms}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_713_430);
        assert_eq!(iso_utc(t, false), "2026-11-26T17:17:10");
        assert_eq!(
            iso_utc(t + Duration::from_micros(886_175), true),
            "2026-11-26T17:17:10.886175"
        );
        assert_eq!(iso_utc(UNIX_EPOCH, false), "1970-01-01T00:00:00");
        assert_eq!(timedelta(Duration::from_secs(15)), "0:00:15");
        assert_eq!(timedelta(Duration::from_secs(93_784)), "1 day, 2:03:04");
        assert_eq!(
            timedelta(Duration::from_secs(3 * 86_400)),
            "3 days, 0:00:00"
        );
    }
}
