//! MQTT commands: `{prefix}/{gateway}/control/{name}/set` with a JSON `{"value": …}` payload,
//! checked as 0.13.0 checks them, then run through `http::control::Controller::write` — the
//! code path of the HTTP control routes.
//!
//! Broker messages are hostile input: a payload over [`MAX_PAYLOAD`] bytes is refused before
//! parsing, unknown gateways and controls are refused before anything is queued, and the
//! queue holds at most one command per (gateway, control), so a burst collapses to its latest
//! value and memory cannot grow. Retained commands are never executed.

use crate::config::mqtt as cfg;
use crate::http::control::{Write, MODES};
use crate::json::{self, Value};

/// Largest command payload accepted (0.13.0's cap).
pub const MAX_PAYLOAD: usize = 1024;

/// The grid export rules a client may set.
pub const EXPORTS: &[&str] = &["battery_ok", "pv_only", "never"];

/// The controls this server executes, with their `MQTT_CONTROLS` bit.
pub const CONTROLS: &[(&str, u8)] = &[
    ("reserve", cfg::CONTROL_RESERVE),
    ("reserve_hold", cfg::CONTROL_RESERVE),
    ("mode", cfg::CONTROL_MODE),
    ("grid_charging", cfg::CONTROL_GRID_CHARGING),
    ("grid_export", cfg::CONTROL_GRID_EXPORT),
];

/// `(gateway id, control)` of a command topic, or `None` when the topic is not one.
pub fn parse_topic<'a>(prefix: &str, topic: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (gw, c, name, set) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || c != "control" || set != "set" || gw.is_empty() {
        return None;
    }
    Some((gw, name))
}

/// A short, single-line rendering of received text for log lines.
pub fn short(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// A checked command: a write, or "hold" (reserve = the current charge, resolved by the caller
/// from the latest live snapshot).
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Write(Write),
    Hold,
}

/// `reserve_hold`'s level: the app-scale charge rounded down, 0-100 (0.13.0's rule).
pub fn hold_level(app_soe: f64) -> Option<i64> {
    app_soe
        .is_finite()
        .then(|| (app_soe.floor() as i64).clamp(0, 100))
}

/// Validates one command payload for `control` (0.13.0's rules).
pub fn parse(control: &str, payload: &[u8]) -> Result<Cmd, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err(format!(
            "payload of {} bytes exceeds the {MAX_PAYLOAD} byte cap",
            payload.len()
        ));
    }
    let v = json::parse_bytes(payload).map_err(|_| "payload is not a JSON object".to_string())?;
    let Some(m) = v.as_object() else {
        return Err("payload is not a JSON object".into());
    };
    if control == "reserve_hold" {
        return if m.is_empty() {
            Ok(Cmd::Hold)
        } else {
            Err("reserve_hold requires an empty JSON object".into())
        };
    }
    let value = m.get("value").unwrap_or(&Value::Null);
    let bad = |hint: &str| format!("invalid value {} (must be {hint})", short(&value.to_py()));
    match control {
        "reserve" => match value {
            Value::Int(n) if (0..=100).contains(n) => Ok(Cmd::Write(Write::Reserve(*n))),
            Value::Float(f) if f.fract() == 0.0 && (0.0..=100.0).contains(f) => Err(format!(
                "{} has a decimal point, send {} (a whole number from 0 to 100)",
                value.to_py(),
                *f as i64
            )),
            _ => Err(bad("a whole number from 0 to 100")),
        },
        "mode" => match value.as_str() {
            Some(s) if MODES.contains(&s) => Ok(Cmd::Write(Write::Mode(s.to_string()))),
            _ => Err(bad("self_consumption, backup or autonomous")),
        },
        "grid_charging" => match value {
            Value::Bool(b) => Ok(Cmd::Write(Write::GridCharging(*b))),
            _ => Err(bad("true or false")),
        },
        "grid_export" => match value.as_str() {
            Some(s) if EXPORTS.contains(&s) => Ok(Cmd::Write(Write::GridExport(s.to_string()))),
            _ => Err(bad("battery_ok, pv_only or never")),
        },
        _ => Err("unknown control".into()),
    }
}

/// The bit of a control name.
pub fn bit(control: &str) -> Option<u8> {
    CONTROLS
        .iter()
        .find(|(n, _)| *n == control)
        .map(|(_, b)| *b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert_eq!(
            parse_topic("pw", "pw/home/control/reserve/set"),
            Some(("home", "reserve"))
        );
        assert_eq!(
            parse_topic("a/b", "a/b/home/control/mode/set"),
            Some(("home", "mode"))
        );
        for t in [
            "pw/home/control/reserve",
            "pw/home/x/reserve/set",
            "pwx/home/control/reserve/set",
            "pw//control/reserve/set",
            "pw/h/control/r/set/x",
        ] {
            assert_eq!(parse_topic("pw", t), None, "{t}");
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(
            parse("reserve", br#"{"value": 40}"#),
            Ok(Cmd::Write(Write::Reserve(40)))
        );
        assert!(parse("reserve", br#"{"value": 40.0}"#)
            .unwrap_err()
            .contains("send 40"));
        assert!(parse("reserve", br#"{"value": true}"#).is_err());
        assert!(parse("reserve", br#"{"value": 101}"#).is_err());
        assert!(parse("reserve", b"40").is_err());
        assert_eq!(
            parse("mode", br#"{"value": "backup"}"#),
            Ok(Cmd::Write(Write::Mode("backup".into())))
        );
        assert!(parse("mode", br#"{"value": "Backup"}"#).is_err());
        assert_eq!(
            parse("grid_charging", br#"{"value": false}"#),
            Ok(Cmd::Write(Write::GridCharging(false)))
        );
        assert!(parse("grid_charging", br#"{"value": "false"}"#).is_err());
        assert_eq!(
            parse("grid_export", br#"{"value": "never"}"#),
            Ok(Cmd::Write(Write::GridExport("never".into())))
        );
        let big = format!(r#"{{"value": 1, "pad": "{}"}}"#, "x".repeat(2000));
        assert!(parse("reserve", big.as_bytes())
            .unwrap_err()
            .contains("cap"));
        assert!(parse("reserve", &[0xff, 0xfe]).is_err());
        assert_eq!(parse("reserve_hold", b"{}"), Ok(Cmd::Hold));
        assert!(parse("reserve_hold", br#"{"value": 1}"#).is_err());
        assert_eq!(hold_level(61.9), Some(61));
        assert_eq!(hold_level(-3.0), Some(0));
        assert_eq!(hold_level(f64::NAN), None);
    }

    #[test]
    fn log_text_is_one_short_line() {
        assert_eq!(short("a\nb"), "a\\nb");
        assert!(short(&"x".repeat(200)).ends_with('…'));
    }
}
