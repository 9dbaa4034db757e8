//! Gateway timestamps: just enough ISO 8601 to do what pypowerwall does with them.
//!
//! pypowerwall 0.22.2 parses the controller's `system.time` with `datetime.fromisoformat` (Python
//! 3.11) to derive the gateway start time from `SYNC_Uptime`, and compares Tesla Remote Meter
//! reading times with it. This module parses the forms those gateways send (and the common ISO
//! variants 3.11 accepts), formats a start time like `strftime("%Y-%m-%d %H:%M:%S %z")`, and writes
//! an uptime like Go's `time.Duration.String()`. Pure functions; no clock is read here.

use crate::json::Value;

const US_PER_SEC: i64 = 1_000_000;
const US_PER_DAY: i64 = 86_400 * US_PER_SEC;

/// An offset-aware moment: wall-clock time in the gateway's own offset, plus that offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayTime {
    /// Microseconds since 0001-01-01T00:00:00 of the local wall clock.
    pub local_us: i64,
    /// UTC offset in microseconds (east positive).
    pub offset_us: i64,
}

impl GatewayTime {
    /// Microseconds since 0001-01-01T00:00:00 UTC (for comparing two moments).
    pub fn utc_us(self) -> i64 {
        self.local_us - self.offset_us
    }
}

/// `_parse_gateway_time`: an offset-aware time, or `None` (not a string, unparseable, or naive).
pub fn parse_gateway_time(v: &Value) -> Option<GatewayTime> {
    let text = v.as_str()?.trim();
    if text.is_empty() {
        return None;
    }
    parse_iso(text)
}

fn digits(s: &[u8], n: usize) -> Option<i64> {
    let part = s.get(..n)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(part.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
}

/// Date `YYYY-MM-DD` or `YYYYMMDD`; returns (days since 0001-01-01, bytes used).
fn parse_date(s: &[u8]) -> Option<(i64, usize)> {
    let year = digits(s, 4)?;
    let (month, day, used) = if s.get(4) == Some(&b'-') {
        (digits(s.get(5..)?, 2)?, digits(s.get(8..)?, 2)?, 10)
    } else {
        (digits(s.get(4..)?, 2)?, digits(s.get(6..)?, 2)?, 8)
    };
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((days_from_civil(year, month, day), used))
}

/// Time `HH[:MM[:SS[.fff]]]` or `HH[MM[SS[.fff]]]`, in microseconds since midnight.
fn parse_time(s: &[u8]) -> Option<i64> {
    let hour = digits(s, 2)?;
    let mut rest = &s[2..];
    let extended = rest.first() == Some(&b':');
    let mut fields = [hour, 0, 0];
    for field in fields.iter_mut().skip(1) {
        if rest.is_empty() {
            break;
        }
        if extended {
            rest = rest.strip_prefix(b":")?;
        }
        *field = digits(rest, 2)?;
        rest = &rest[2..];
    }
    let mut micros = 0;
    if let Some((&sep, frac)) = rest.split_first() {
        if sep != b'.' && sep != b',' {
            return None;
        }
        if !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for i in 0..6 {
            micros = micros * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
        }
    }
    let [h, m, sec] = fields;
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Some(((h * 60 + m) * 60 + sec) * US_PER_SEC + micros)
}

/// Offset `Z`, `±HH`, `±HH:MM[:SS[.ffffff]]` or `±HHMM[SS]`, in microseconds.
fn parse_offset(s: &[u8]) -> Option<i64> {
    if s == b"Z" || s == b"z" {
        return Some(0);
    }
    let (&sign, body) = s.split_first()?;
    let sign = match sign {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let us = parse_time(body)?;
    if us >= US_PER_DAY {
        return None;
    }
    Some(sign * us)
}

fn parse_iso(text: &str) -> Option<GatewayTime> {
    let b = text.as_bytes();
    let (days, used) = parse_date(b)?;
    // A date alone is naive; any single character separates date and time.
    let rest = b.get(used + 1..)?;
    if !text.is_char_boundary(used + 1) {
        return None;
    }
    let split = rest
        .iter()
        .position(|c| matches!(c, b'+' | b'-' | b'Z' | b'z'))?;
    let (time, offset) = rest.split_at(split);
    let time = time.strip_suffix(b" ").unwrap_or(time);
    let local_us = days * US_PER_DAY + parse_time(time)?;
    let offset_us = parse_offset(offset)?;
    Some(GatewayTime {
        local_us,
        offset_us,
    })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 0001-01-01 (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y1 = y - 1;
    let mut days = y1 * 365 + y1 / 4 - y1 / 100 + y1 / 400;
    for month in 1..m {
        days += days_in_month(y, month);
    }
    days + d - 1
}

/// The civil date of a day count since 0001-01-01.
fn civil_from_days(mut days: i64) -> (i64, i64, i64) {
    // 400-year cycles have 146097 days.
    let cycles = days.div_euclid(146_097);
    days = days.rem_euclid(146_097);
    let mut year = cycles * 400 + 1;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let mut month = 1;
    while days >= days_in_month(year, month) {
        days -= days_in_month(year, month);
        month += 1;
    }
    (year, month, days + 1)
}

/// `strftime("%Y-%m-%d %H:%M:%S %z")` of a gateway time (the fraction is dropped).
pub fn format_start(t: GatewayTime) -> Option<String> {
    let days = t.local_us.div_euclid(US_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return None;
    }
    let secs = t.local_us.rem_euclid(US_PER_DAY) / US_PER_SEC;
    let sign = if t.offset_us < 0 { '-' } else { '+' };
    let off = t.offset_us.abs();
    let (off_s, off_us) = (off / US_PER_SEC, off % US_PER_SEC);
    let mut zone = format!("{sign}{:02}{:02}", off_s / 3600, off_s / 60 % 60);
    if off_s % 60 != 0 || off_us != 0 {
        zone.push_str(&format!("{:02}", off_s % 60));
        if off_us != 0 {
            zone.push_str(&format!(".{off_us:06}"));
        }
    }
    Some(format!(
        "{year}-{month:02}-{day:02} {:02}:{:02}:{:02} {zone}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

/// `now - timedelta(milliseconds=uptime_ms)`; `None` when it leaves the datetime range.
pub fn minus_ms(now: GatewayTime, uptime_ms: f64) -> Option<GatewayTime> {
    let us = (uptime_ms * 1000.0).round_ties_even();
    // timedelta allows at most 999999999 days; datetime starts at year 1.
    if !us.is_finite() || us.abs() >= 999_999_999.0 * US_PER_DAY as f64 {
        return None;
    }
    let local_us = now.local_us.checked_sub(us as i64)?;
    if local_us < 0 {
        return None;
    }
    Some(GatewayTime { local_us, ..now })
}

/// `go_duration`: milliseconds as Go's `time.Duration.String()` writes them ("398h29m44.192s").
pub fn go_duration(milliseconds: f64) -> String {
    let ms = milliseconds.round_ties_even();
    if ms <= 0.0 || ms.is_nan() {
        return "0s".into();
    }
    // Saturates far beyond any real uptime (Python would use a big int).
    go_duration_int(ms as i64)
}

/// [`go_duration`] of an integer number of milliseconds.
pub fn go_duration_int(ms: i64) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rem) = (rem / 60_000, rem % 60_000);
    let (seconds, frac) = (rem / 1000, rem % 1000);
    let sec = if frac != 0 {
        format!("{seconds}.{frac:03}")
            .trim_end_matches('0')
            .to_string()
    } else {
        seconds.to_string()
    };
    if hours != 0 {
        format!("{hours}h{minutes}m{sec}s")
    } else if minutes != 0 {
        format!("{minutes}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<GatewayTime> {
        parse_gateway_time(&Value::Str(s.into()))
    }

    #[test]
    fn parses_what_python_311_parses() {
        let base = t("2024-01-24T12:00:00+00:00").map(GatewayTime::utc_us);
        for same in [
            "2024-01-24 12:00:00 +0000",
            "2024-01-24T12:00:00Z",
            "2024-01-24T13:00:00+01:00",
            "20240124T130000+0100",
            "2024-01-24x13:00+01",
            " 2024-01-24T05:00:00-07:00 ",
        ] {
            assert_eq!(t(same).map(GatewayTime::utc_us), base, "{same}");
        }
        let frac = t("2025-06-01T12:00:00.123456789-07:00");
        assert_eq!(frac.map(|g| g.local_us % US_PER_SEC), Some(123_456));
        for bad in [
            "2024-01-24",
            "2024-01-24T24:00:00+00:00",
            "garbage",
            "",
            "2024-02-30T00:00Z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
        assert_eq!(parse_gateway_time(&Value::Int(5)), None);
    }

    #[test]
    fn start_time_in_gateway_offset() {
        let now = t("2025-06-01T12:00:00.123456789-07:00").unwrap_or(GatewayTime {
            local_us: 0,
            offset_us: 0,
        });
        let start = minus_ms(now, 1_434_584_192.0).and_then(format_start);
        assert_eq!(start.as_deref(), Some("2025-05-15 21:30:15 -0700"));
        assert_eq!(minus_ms(now, 1e300), None);
    }

    #[test]
    fn go_durations() {
        for (ms, want) in [
            (0.0, "0s"),
            (-5.0, "0s"),
            (999.0, "999ms"),
            (1500.0, "1.5s"),
            (60_000.0, "1m0s"),
            (3_600_000.0, "1h0m0s"),
            (1_434_584_192.0, "398h29m44.192s"),
            (0.5, "0s"),
            (1.5, "2ms"),
        ] {
            assert_eq!(go_duration(ms), want, "{ms}");
        }
    }
}
