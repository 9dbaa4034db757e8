//! The proxy's request style (`proxy-compat.md` §3.8): `value=…&token=…[&mode=…|&level=…]`, its
//! exact messages and its status rule (a body containing `error` is 400, `unauthorized` 401).
//!
//! One change from the proxy: the token is checked first (after "disabled" and an unreadable
//! body, which carry no information), so "Run Setup" and every other answer need a valid token.
//! An empty `value` reads the current setting from the last poll. Additions, in the same style:
//! `islanding` (`value=off_grid&confirm=true` / `value=on_grid`), 409 while a write to the
//! gateway is in flight, 429 with `Retry-After` during the islanding cooldown.

use super::request::{digits, form_value};
use super::{
    cooldown_answer, gateway_index, read_text, Error, Island, PostReq, Write, GRID_EXPORTS, MODES,
};
use crate::cloud::Error as CloudError;
use crate::http::router::{Answer, Ctx};
use crate::json::{Map, Value};

const DISABLED: &str =
    r#"{"error": "Control Commands Disabled - Set PW_CONTROL_SECRET to enable"}"#;
const INVALID_REQUEST: &str = r#"{"error": "Control Command Error: Invalid Request"}"#;
const NO_CLOUD: &str =
    r#"{"error": "Control Command Error: Unable to connect to cloud mode - Run Setup"}"#;
const NOT_COMPILED: &str =
    r#"{"error": "Control Command Error: Cloud support is not compiled into this build"}"#;
const TOKEN_INVALID: &str = r#"{"unauthorized": "Control Command Token Invalid"}"#;
const VALUE_INVALID: &str = r#"{"error": "Control Command Value Invalid"}"#;
const NO_ACTION: &str = r#"{"error": "Invalid Command Action"}"#;

fn error_text(msg: &str) -> String {
    Value::from(Map::new().with("error", msg)).to_py()
}

/// What a form asks for: a write (with the proxy's failure message), or an immediate answer.
enum Asked {
    Write(Write, &'static str),
    Answer(String),
}

/// The proxy's validation of `value` and its companions for `action`.
fn asked(action: &str, value: &str, body: &str) -> Asked {
    let answer = |s: &str| Asked::Answer(s.to_string());
    match action {
        "reserve" if digits(value) => {
            let level = value.parse::<i64>().unwrap_or(i64::MAX);
            let mode = form_value(body, "mode");
            let failed = if mode.is_empty() {
                "Failed to set reserve"
            } else {
                "Failed to set reserve+mode"
            };
            if !mode.is_empty() && !MODES.contains(&mode.as_str()) {
                answer(r#"{"error": "Control Command Mode Invalid"}"#)
            } else if level > 100 {
                // pypowerwall refuses levels outside 0-100 before calling the cloud.
                Asked::Answer(error_text(failed))
            } else if mode.is_empty() {
                Asked::Write(Write::Reserve(level), failed)
            } else {
                Asked::Write(Write::Operation(level, mode), failed)
            }
        }
        "mode" if MODES.contains(&value) => {
            let level = form_value(body, "level");
            if digits(&level) {
                match level.parse::<i64>() {
                    Ok(n) if n <= 100 => Asked::Write(
                        Write::Operation(n, value.to_string()),
                        "Failed to set reserve+mode",
                    ),
                    _ => answer(r#"{"error": "Failed to set reserve+mode"}"#),
                }
            } else if !level.is_empty() {
                answer(r#"{"error": "Control Command Level Invalid"}"#)
            } else {
                Asked::Write(Write::Mode(value.to_string()), "Failed to set mode")
            }
        }
        "grid_charging"
            if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") =>
        {
            Asked::Write(
                Write::GridCharging(value.eq_ignore_ascii_case("true")),
                "Failed to set grid_charging",
            )
        }
        "grid_export" if GRID_EXPORTS.contains(&value.to_ascii_lowercase().as_str()) => {
            Asked::Write(
                Write::GridExport(value.to_ascii_lowercase()),
                "Failed to set grid_export",
            )
        }
        "islanding" => match value.to_ascii_lowercase().as_str() {
            "on_grid" => Asked::Write(Write::Islanding(Island::OnGrid), "Failed to reconnect"),
            "off_grid" if form_value(body, "confirm").eq_ignore_ascii_case("true") => {
                Asked::Write(Write::Islanding(Island::OffGrid), "Failed to go off-grid")
            }
            "off_grid" => answer(r#"{"error": "Going off-grid needs confirm=true"}"#),
            _ => answer(VALUE_INVALID),
        },
        "reserve" | "mode" | "grid_charging" | "grid_export" => answer(VALUE_INVALID),
        "max_backup" => answer(r#"{"error": "max_backup requires v1r LAN transport"}"#),
        _ => answer(NO_ACTION),
    }
}

/// The proxy's contract, token first.
pub fn post(ctx: &Ctx, req: &PostReq<'_>) -> Answer {
    let ctl = &ctx.control;
    if !ctl.enabled() {
        return Answer::json(400, DISABLED);
    }
    if req.too_big || req.content_length.is_none() {
        if req.too_big {
            log::warn!("control: POST body too large from {}", req.remote);
        }
        return Answer::json(400, INVALID_REQUEST);
    }
    let Ok(body) = std::str::from_utf8(req.body) else {
        return Answer::json(400, INVALID_REQUEST);
    };
    if !ctl.token_ok(&form_value(body, "token")) {
        log::warn!("control: bad or missing token from {}", req.remote);
        return Answer::json(401, TOKEN_INVALID);
    }
    let Some(i) = gateway_index(ctx, req) else {
        return Answer::json(400, error_text("Control Command Error: unknown gateway"));
    };
    if req.action.is_empty() {
        return Answer::json(400, INVALID_REQUEST);
    }
    let value = form_value(body, "value");
    let mut path = None;
    let message = if value.is_empty() {
        match req.action {
            "max_backup" => r#"{"error": "max_backup requires v1r LAN transport"}"#.to_string(),
            "islanding" => VALUE_INVALID.to_string(),
            a => read_text(ctx, i, a).unwrap_or_else(|| NO_ACTION.to_string()),
        }
    } else {
        match asked(req.action, &value, body) {
            Asked::Answer(s) => s,
            Asked::Write(w, failed) => match ctl.write(i, &w, "form", &req.remote) {
                Ok(done) => {
                    path = Some(done.path);
                    match w {
                        Write::GridCharging(_) => r#"{"grid_charging": "Set Successfully"}"#.into(),
                        Write::GridExport(_) => r#"{"grid_export": "Set Successfully"}"#.into(),
                        _ => done.result.to_py(),
                    }
                }
                Err(e @ Error::Busy) => {
                    let msg = format!("Control Command Error: {e}");
                    return Answer::json(409, error_text(&msg));
                }
                Err(e @ Error::Cooldown(s)) => {
                    return cooldown_answer(Answer::json(429, error_text(&e.to_string())), s)
                }
                Err(Error::Unsupported(why)) => error_text(&why),
                Err(e @ (Error::Refused(_) | Error::Lan(_))) => {
                    error_text(&format!("Control Command Error: {e}"))
                }
                Err(Error::NoSession(CloudError::NotCompiled)) => NOT_COMPILED.into(),
                Err(Error::NoSession(_)) => NO_CLOUD.into(),
                Err(Error::Cloud(CloudError::Setup(_))) => error_text(failed),
                Err(Error::Cloud(e)) => match w {
                    Write::GridCharging(_) | Write::GridExport(_) => error_text(failed),
                    _ => error_text(&e.to_string()),
                },
            },
        }
    };
    let status = if message.contains("error") {
        400
    } else if message.contains("unauthorized") {
        401
    } else {
        200
    };
    let mut a = Answer::json(status, message);
    if let Some(p) = path {
        a.headers.push(("X-Control-Path", p.into()));
    }
    a
}
