//! The simulator's test-knob API (`/test/*`): scenarios, faults, the clock, the counters.
//!
//! Tests and `pypowerwall-server sim` users steer the simulated site through these routes; the
//! gateway-compatible routes live in `server.rs`. Every answer is small and built per request.

use std::sync::atomic::Ordering;

use super::faults::Fault;
use super::http::{Request, Response};
use super::model::Model;
use super::server::{now, Shared};
use super::tedapi::Kind;

/// Request counters by kind (`GET /test/stats`). `device_routed` counts requests to
/// `/tedapi/device/<din>/v1`, which are also counted under their payload kind; `total` counts
/// every request except `/test/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub din: u64,
    pub config: u64,
    pub status: u64,
    pub controller: u64,
    pub components: u64,
    pub firmware: u64,
    pub device_routed: u64,
    pub login: u64,
    pub api: u64,
    pub other: u64,
    /// Signed v1r writes applied (refused ones count as `other`).
    pub write: u64,
    pub total: u64,
}

impl Stats {
    pub fn get(&self, kind: &str) -> Option<u64> {
        Some(match kind {
            "din" => self.din,
            "config" => self.config,
            "status" => self.status,
            "controller" => self.controller,
            "components" => self.components,
            "firmware" => self.firmware,
            "device_routed" => self.device_routed,
            "login" => self.login,
            "api" => self.api,
            "other" => self.other,
            "write" => self.write,
            "total" => self.total,
            _ => return None,
        })
    }

    pub fn to_json(&self) -> String {
        let fields: Vec<String> = Kind::ALL
            .iter()
            .map(|k| k.name())
            .chain(["total"])
            .map(|k| format!("\"{k}\":{}", self.get(k).unwrap_or(0)))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

const CONTROL_PAGE: &str =
    "<!DOCTYPE html><html><head><title>Gateway simulator</title></head><body>\
<h1>Gateway simulator</h1><ul>\
<li><a href=\"/test/toggle-grid\">/test/toggle-grid</a></li>\
<li>/test/battery-percentage/&lt;p&gt;, /test/solar-power/&lt;w&gt;</li>\
<li>/test/scenario/&lt;name&gt;: battery-exporting, solar-exporting, solar-powered, grid-powered, \
self-powered, battery-powered, grid-charging, solar-charging, sunny-day-outage, cloudy-day-outage, \
nighttime-outage; <a href=\"/test/scenario\">/test/scenario</a></li>\
<li>/test/fault/&lt;kind&gt;[/&lt;n&gt;]: none, timeout, close, http429, http500, http403, garbage, \
truncated, badjson, badgzip, halfbody, http401, http404, http503 (for the next n /tedapi requests, \
or until none); <a href=\"/test/fault\">/test/fault</a></li>\
<li>/test/local-fault/&lt;kind&gt;[/&lt;n&gt;]: the same for local /api/* GETs; \
<a href=\"/test/local-fault\">/test/local-fault</a>; /test/vitals/off, /test/vitals/on</li>\
<li>/test/advance/&lt;seconds&gt;: move the clock forward</li>\
<li>/test/retry-after/&lt;value&gt;|off: send Retry-After with the 429/503 faults</li>\
<li><a href=\"/test/stats\">/test/stats</a>, /test/stats/reset, /test/reset</li>\
</ul></body></html>";

pub(super) fn test_route(shared: &Shared, req: &Request) -> Response {
    let ok = || Response::text(200, "OK");
    let path = req.path.trim_end_matches('/');
    let arg = |prefix: &str| path.strip_prefix(prefix);
    let number = |s: &str| s.parse::<f64>().ok().filter(|x| x.is_finite());
    let mut state = shared.lock();
    state.catch_up();
    match path {
        "/test" => return Response::new(200, "text/html", CONTROL_PAGE),
        "/test/toggle-grid" => {
            let up = state.model.toggle_grid();
            return Response::text(
                200,
                if up {
                    "Grid is now connected"
                } else {
                    "Grid is now disconnected"
                },
            );
        }
        "/test/scenario" => {
            let mut body = String::from("{\"active_scenario\":");
            crate::json::write_str(&mut body, &state.model.scenario);
            body.push('}');
            return Response::json(200, body);
        }
        "/test/fault" => {
            let left = state
                .fault_left
                .map(|n| format!(",\"remaining\":{n}"))
                .unwrap_or_default();
            return Response::json(
                200,
                format!("{{\"fault\":\"{}\"{left}}}", state.fault.name()),
            );
        }
        "/test/stats" => return Response::json(200, shared.stats().to_json()),
        "/test/stats/reset" => {
            for c in shared.counters.iter().chain([&shared.total]) {
                c.store(0, Ordering::Relaxed);
            }
            return ok();
        }
        "/test/reset" => {
            state.clock_offset = 0.0;
            state.model = Model::new(&shared.site, shared.frozen, now());
            state.set_fault(Fault::None, None);
            state.set_local_fault(Fault::None, None);
            state.vitals = true;
            state.v1r_pending = false;
            state.v1r_refuse_writes = false;
            state.retry_after = None;
            return ok();
        }
        "/test/local-fault" => {
            let left = state
                .local_fault_left
                .map(|n| format!(",\"remaining\":{n}"))
                .unwrap_or_default();
            return Response::json(
                200,
                format!("{{\"fault\":\"{}\"{left}}}", state.local_fault.name()),
            );
        }
        "/test/vitals/on" | "/test/vitals/off" => {
            state.vitals = path.ends_with("/on");
            return ok();
        }
        "/test/v1r/pending/on" | "/test/v1r/pending/off" => {
            state.v1r_pending = path.ends_with("/on");
            return ok();
        }
        "/test/v1r/refuse-writes/on" | "/test/v1r/refuse-writes/off" => {
            state.v1r_refuse_writes = path.ends_with("/on");
            return ok();
        }
        "/test/v1r/logout" => {
            state.v1r_token += 1;
            return ok();
        }
        _ => {}
    }
    if let Some(p) = arg("/test/battery-percentage/") {
        return match number(p) {
            Some(p) => {
                state.model.set_battery_percentage(p);
                ok()
            }
            None => Response::text(400, "Invalid percentage"),
        };
    }
    if let Some(w) = arg("/test/solar-power/") {
        return match number(w) {
            Some(w) => {
                state.model.set_solar(w);
                ok()
            }
            None => Response::text(400, "Invalid power"),
        };
    }
    if let Some(name) = arg("/test/scenario/") {
        return if state.model.set_scenario(name) {
            ok()
        } else {
            Response::text(404, "Unknown scenario")
        };
    }
    if let Some((rest, local)) = arg("/test/fault/")
        .map(|r| (r, false))
        .or_else(|| arg("/test/local-fault/").map(|r| (r, true)))
    {
        let (kind, count) = match rest.split_once('/') {
            Some((kind, n)) => match n.parse::<u64>() {
                Ok(n) if n > 0 => (kind, Some(n)),
                _ => return Response::text(400, "Invalid count"),
            },
            None => (rest, None),
        };
        return match Fault::parse(kind) {
            Some(f) if local => {
                state.set_local_fault(f, count);
                ok()
            }
            Some(f) => {
                state.set_fault(f, count);
                ok()
            }
            None => Response::text(404, "Unknown fault"),
        };
    }
    if let Some(v) = arg("/test/retry-after/") {
        state.retry_after = (v != "off").then(|| v.to_string());
        return ok();
    }
    if let Some(s) = arg("/test/advance/") {
        return match number(s).filter(|s| (0.0..=366.0 * 86400.0).contains(s)) {
            Some(s) => {
                state.clock_offset += s;
                state.catch_up();
                ok()
            }
            None => Response::text(400, "Invalid seconds"),
        };
    }
    Response::text(404, "Invalid test command received.")
}
