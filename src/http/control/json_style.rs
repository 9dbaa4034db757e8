//! The JSON request style: `Authorization: Bearer <token>` and a JSON object body, for every
//! action. Each action takes its own field or the Python server's `value` (pypowerwall-server
//! 0.13.0), so both `{"reserve": 20}` and `{"value": 20}` work on `/control/reserve`.
//!
//! Answers: 403 disabled; 401 missing or bad token — before anything else, the body included;
//! 404 unknown action or gateway; 413 body over 4 KB; 400 invalid body; 409 a write to the
//! gateway is in flight; 429 islanding cooldown (`Retry-After`); 503 no write path (no cloud
//! credentials, islanding without LAN); 501 cloud not compiled in; 502 the cloud failed, the
//! gateway refused the LAN write, or the LAN write failed with no cloud to fall back to;
//! 200 `{"ok": true, "gateway", "action", <the values written>, "path": "lan"|"cloud",
//! "result"}` (and `X-Control-Path`).

use super::{err, gateway_index, Error, Island, PostReq, Write, ACTIONS, GRID_EXPORTS, MODES};
use crate::cloud::Error as CloudError;
use crate::http::router::{Answer, Ctx};
use crate::json::{self, Map, Value};

/// The fields an action accepts besides its own name and `value`.
fn companions(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "reserve" => &["mode"],
        "mode" => &["reserve", "level"],
        "grid_charging" | "grid_export" => &[],
        "islanding" => &["confirm"],
        _ => return None,
    })
}

fn percent(v: &Value, name: &str) -> Result<i64, String> {
    match v {
        Value::Int(n) if (0..=100).contains(n) => Ok(*n),
        _ => Err(format!("'{name}' must be an integer from 0 to 100")),
    }
}

fn mode(v: &Value, name: &str) -> Result<String, String> {
    match v {
        Value::Str(s) if MODES.contains(&s.as_str()) => Ok(s.clone()),
        _ => Err(format!("'{name}' must be one of: {}", MODES.join(", "))),
    }
}

/// Parses a JSON control body for `action` into a write, or the 400 message.
pub fn parse_json_write(action: &str, body: &[u8]) -> Result<Write, String> {
    let extra = companions(action).ok_or_else(|| format!("unknown action '{action}'"))?;
    let v = json::parse_bytes(body).map_err(|_| "the body is not JSON".to_string())?;
    let m = v
        .as_object()
        .ok_or_else(|| "the body must be a JSON object".to_string())?;
    for k in m.keys() {
        if k != action && k != "value" && !extra.contains(&k.as_str()) {
            let mut expected = vec![format!("'{action}' (or 'value')")];
            expected.extend(extra.iter().map(|e| format!("'{e}'")));
            return Err(format!(
                "unknown field '{k}' (expected {})",
                expected.join(", ")
            ));
        }
    }
    let get = |k: &str| m.get(k).filter(|v| !matches!(v, Value::Null));
    let (name, main) = match (get(action), get("value")) {
        (Some(_), Some(_)) => return Err(format!("give '{action}' or 'value', not both")),
        (Some(v), None) => (action, v),
        (None, Some(v)) => ("value", v),
        (None, None) => return Err(format!("'{action}' (or 'value') is required")),
    };
    match action {
        "reserve" => {
            let n = percent(main, name)?;
            match get("mode") {
                Some(md) => Ok(Write::Operation(n, mode(md, "mode")?)),
                None => Ok(Write::Reserve(n)),
            }
        }
        "mode" => {
            let md = mode(main, name)?;
            match (get("reserve"), get("level")) {
                (Some(_), Some(_)) => Err("give 'reserve' or 'level', not both".into()),
                (Some(r), None) => Ok(Write::Operation(percent(r, "reserve")?, md)),
                (None, Some(l)) => Ok(Write::Operation(percent(l, "level")?, md)),
                (None, None) => Ok(Write::Mode(md)),
            }
        }
        "grid_charging" => match main {
            Value::Bool(b) => Ok(Write::GridCharging(*b)),
            _ => Err(format!("'{name}' must be true or false")),
        },
        "grid_export" => match main {
            Value::Str(s) if GRID_EXPORTS.contains(&s.as_str()) => Ok(Write::GridExport(s.clone())),
            _ => Err(format!(
                "'{name}' must be one of: {}",
                GRID_EXPORTS.join(", ")
            )),
        },
        _ => {
            let confirm = match get("confirm") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err("'confirm' must be true or false".into()),
            };
            match main {
                Value::Str(s) if s == "off_grid" && confirm => {
                    Ok(Write::Islanding(Island::OffGrid))
                }
                Value::Str(s) if s == "off_grid" => {
                    Err("going off-grid needs an explicit \"confirm\": true".into())
                }
                Value::Str(s) if s == "on_grid" => Ok(Write::Islanding(Island::OnGrid)),
                _ => Err(format!("'{name}' must be \"off_grid\" or \"on_grid\"")),
            }
        }
    }
}

/// The values a write sets, as the 200 answer lists them.
fn written(m: &mut Map, w: &Write) {
    match w {
        Write::Reserve(n) => m.insert("reserve", *n),
        Write::Mode(md) => m.insert("mode", md.as_str()),
        Write::Operation(n, md) => {
            m.insert("reserve", *n);
            m.insert("mode", md.as_str())
        }
        Write::GridCharging(b) => m.insert("grid_charging", *b),
        Write::GridExport(e) => m.insert("grid_export", e.as_str()),
        Write::Islanding(i) => m.insert("islanding", i.name()),
    }
}

/// The JSON style's contract.
pub fn post(ctx: &Ctx, req: &PostReq<'_>) -> Answer {
    let ctl = &ctx.control;
    if !ctl.enabled() {
        return err(
            403,
            "control is disabled (set CONTROL_ENABLED=true and CONTROL_TOKEN, or PW_CONTROL_SECRET)",
        );
    }
    if !ctl.token_ok(req.bearer().unwrap_or("")) {
        log::warn!("control: bad or missing bearer token from {}", req.remote);
        let mut a = err(401, "missing or invalid bearer token");
        a.headers.push(("WWW-Authenticate", "Bearer".into()));
        return a;
    }
    if !ACTIONS.contains(&req.action) {
        return err(
            404,
            &format!(
                "unknown control action '{}' ({})",
                req.action,
                ACTIONS.join(", ")
            ),
        );
    }
    let Some(i) = gateway_index(ctx, req) else {
        return err(404, "unknown gateway");
    };
    if req.too_big {
        log::warn!("control: POST body too large from {}", req.remote);
        return err(413, "request body too large (limit 4096 bytes)");
    }
    let w = match parse_json_write(req.action, req.body) {
        Ok(w) => w,
        Err(m) => return err(400, &m),
    };
    let id = ctl.id(i).to_string();
    match ctl.write(i, &w, "JSON", &req.remote) {
        Ok(done) => {
            let mut m = Map::new()
                .with("ok", true)
                .with("gateway", id.as_str())
                .with("action", req.action);
            written(&mut m, &w);
            m.insert("path", done.path);
            m.insert("result", done.result);
            let mut a = Answer::json(200, Value::from(m).to_py());
            a.headers.push(("X-Control-Path", done.path.into()));
            a
        }
        Err(Error::Busy) => err(
            409,
            &format!("a write to gateway '{id}' is in progress; try again when it has finished"),
        ),
        Err(e @ Error::Cooldown(s)) => super::cooldown_answer(err(429, &e.to_string()), s),
        Err(Error::Unsupported(why)) => err(503, &why),
        Err(Error::NoSession(CloudError::NotCompiled)) => {
            err(501, &CloudError::NotCompiled.to_string())
        }
        Err(Error::NoSession(e)) => err(503, &format!("gateway '{id}' cannot be controlled: {e}")),
        Err(Error::Cloud(e)) => err(502, &e.to_string()),
        Err(e @ (Error::Refused(_) | Error::Lan(_))) => err(502, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_body_shapes() {
        let ok = |a: &str, b: &str| parse_json_write(a, b.as_bytes());
        assert_eq!(ok("reserve", r#"{"reserve": 20}"#), Ok(Write::Reserve(20)));
        assert_eq!(ok("reserve", r#"{"value": 20}"#), Ok(Write::Reserve(20)));
        assert_eq!(
            ok("reserve", r#"{"value": 20, "mode": "backup"}"#),
            Ok(Write::Operation(20, "backup".into()))
        );
        assert_eq!(
            ok("mode", r#"{"mode": "backup", "reserve": 0}"#),
            Ok(Write::Operation(0, "backup".into()))
        );
        assert_eq!(
            ok("mode", r#"{"value": "autonomous", "level": 30}"#),
            Ok(Write::Operation(30, "autonomous".into()))
        );
        assert_eq!(
            ok("grid_charging", r#"{"value": false}"#),
            Ok(Write::GridCharging(false))
        );
        assert_eq!(
            ok("grid_export", r#"{"grid_export": "pv_only"}"#),
            Ok(Write::GridExport("pv_only".into()))
        );
        assert_eq!(
            ok("islanding", r#"{"value": "off_grid", "confirm": true}"#),
            Ok(Write::Islanding(Island::OffGrid))
        );
        assert_eq!(
            ok("islanding", r#"{"islanding": "on_grid"}"#),
            Ok(Write::Islanding(Island::OnGrid))
        );
    }

    #[test]
    fn bad_bodies() {
        for (action, body) in [
            ("reserve", &br#"{"reserve": 101}"#[..]),
            ("reserve", br#"{"reserve": -1}"#),
            ("reserve", br#"{"reserve": 20.5}"#),
            ("reserve", br#"{"reserve": "20"}"#),
            ("reserve", br#"{"reserve": true}"#),
            ("reserve", br#"{}"#),
            ("reserve", br#"{"reserve": 20, "value": 20}"#),
            ("reserve", br#"{"reserve": 20, "mode": "eco"}"#),
            ("mode", br#"{"mode": "Backup"}"#),
            ("mode", br#"{"reserve": 10}"#),
            ("mode", br#"{"mode": "backup", "reserve": 1, "level": 1}"#),
            ("mode", br#"[1]"#),
            ("mode", b"not json"),
            ("mode", br#"{"mode": "backup", "token": "x"}"#),
            ("grid_charging", br#"{"value": "true"}"#),
            ("grid_charging", br#"{"value": 1}"#),
            ("grid_export", br#"{"value": "NEVER"}"#),
            ("grid_export", br#"{"value": true}"#),
            ("islanding", br#"{"value": "off_grid"}"#),
            ("islanding", br#"{"value": "off_grid", "confirm": false}"#),
            ("islanding", br#"{"value": "off_grid", "confirm": "yes"}"#),
            ("islanding", br#"{"value": "offgrid", "confirm": true}"#),
            ("max_backup", br#"{"value": 60}"#),
        ] {
            assert!(parse_json_write(action, body).is_err(), "{action} {body:?}");
        }
    }
}
