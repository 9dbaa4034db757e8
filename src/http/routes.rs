//! The route table: every GET route the server answers, in the proxy's dispatch order.
//!
//! The router matches requests against [`ROUTES`] and `/openapi.json` is generated from the same
//! table, so the documentation cannot drift from what is served. Patterns are paths with
//! `{name}` segments; a trailing `*` matches any continuation (the proxy's prefix routes).

use std::borrow::Cow;

use tiny_http::Request;

use super::api;
use super::control::{self, PostReq};
use super::router::{fallback, send, Answer, Ctx, Req};
use super::schemas::{self as S, Doc};
use super::status;
use super::ws;
use crate::json::{Map, Value};
use crate::render::legacy::PW_NAMES;
use crate::render::{self, Pass};

/// A route handler.
pub type Handler = fn(&Req<'_>) -> Answer;

/// One entry of the route table.
pub struct Route {
    pub pattern: &'static str,
    /// OpenAPI tag.
    pub family: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
    /// Content type of a 200 answer (for the OpenAPI document).
    pub produces: &'static str,
    /// Which pre-rendered legacy body answers it (`None`: the handler builds its answer).
    pub body: Option<BodyKey>,
    /// A gateway path the proxy passes through, and what it answers for it. `render` renders
    /// one body per such route ([`pass_through`]).
    pub pass: Option<Pass>,
    /// What `/openapi.json` says about it: response schema, parameters, other answers.
    pub doc: &'static Doc,
}

impl Route {
    /// The same route with its documentation.
    const fn doc(self, doc: &'static Doc) -> Route {
        Route { doc, ..self }
    }
}

/// How a legacy route finds its pre-rendered body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKey {
    /// The path is the key.
    Path,
    /// Always this body.
    Fixed(&'static str),
    /// `/csv`, `/csv/v2`, with `_headers` for `?headers` or a path that says so.
    Csv,
    /// `/tedapi/<document>`, else the `/tedapi` hint.
    Tedapi,
    /// `/control/<name>` by prefix (the proxy's match), else Not Found (`/control/`).
    Control,
    /// `/pw/<name>` for a known name, else the proxy's `Invalid Request` (`/pw/`).
    Pw,
}

impl BodyKey {
    /// The body key for a request path and query (borrowed unless it is made up).
    pub fn resolve<'a>(self, path: &'a str, query: &str) -> Cow<'a, str> {
        match self {
            BodyKey::Path => path.into(),
            BodyKey::Fixed(k) => k.into(),
            BodyKey::Csv => {
                let headers = path.contains("headers") || query.contains("headers");
                let base = if path.starts_with("/csv/v2") {
                    "/csv/v2"
                } else {
                    "/csv"
                };
                format!("{base}{}", if headers { "_headers" } else { "" }).into()
            }
            BodyKey::Tedapi => match path {
                "/tedapi/config" | "/tedapi/status" | "/tedapi/components" | "/tedapi/battery"
                | "/tedapi/controller" => path.into(),
                _ => "/tedapi".into(),
            },
            BodyKey::Control => render::legacy::CONTROL_NAMES
                .iter()
                .find(|n| path.starts_with(&format!("/control/{n}")))
                .map(|n| format!("/control/{n}").into())
                .unwrap_or_else(|| "/control/".into()),
            BodyKey::Pw => match path.strip_prefix("/pw/") {
                Some(name) if PW_NAMES.contains(&name) => path.into(),
                _ => "/pw/".into(),
            },
        }
    }
}

const fn r(
    pattern: &'static str,
    family: &'static str,
    summary: &'static str,
    handler: Handler,
) -> Route {
    Route {
        pattern,
        family,
        summary,
        handler,
        produces: render::JSON,
        body: None,
        pass: None,
        doc: &S::UNDOCUMENTED,
    }
}

/// A legacy route answered by a pre-rendered body.
const fn b(
    pattern: &'static str,
    family: &'static str,
    summary: &'static str,
    body: BodyKey,
) -> Route {
    Route {
        pattern,
        family,
        summary,
        handler: legacy_body,
        produces: render::JSON,
        body: Some(body),
        pass: None,
        doc: &S::UNDOCUMENTED,
    }
}

/// A gateway path the proxy passes through.
const fn pass(
    pattern: &'static str,
    family: &'static str,
    summary: &'static str,
    rule: Pass,
) -> Route {
    Route {
        pattern,
        family,
        summary,
        handler: legacy_body,
        produces: render::JSON,
        body: Some(BodyKey::Path),
        pass: Some(rule),
        doc: &S::UNDOCUMENTED,
    }
}

const fn rt(
    pattern: &'static str,
    family: &'static str,
    summary: &'static str,
    handler: Handler,
    produces: &'static str,
) -> Route {
    Route {
        pattern,
        family,
        summary,
        handler,
        produces,
        body: None,
        pass: None,
        doc: &S::UNDOCUMENTED,
    }
}

const L: &str = "legacy proxy";
const A: &str = "legacy /api pass-through";

/// A POST route handler.
pub type PostHandler = fn(&Ctx, &PostReq<'_>) -> Answer;

/// One POST route (the router fills the request's `gateway` and `action` from the match).
pub struct PostRoute {
    /// Matched like a GET pattern (`*` = prefix).
    pub pattern: &'static str,
    /// The path shown in the OpenAPI document.
    pub doc_path: &'static str,
    pub family: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    pub handler: PostHandler,
}

const CONTROL_DOC: &str = "Two request styles, told apart per request; the token is checked before anything else. JSON: `Authorization: Bearer <token>` and a body with the action's field or `value` (the Python server's): `{\"reserve\": 0-100, \"mode\"?: …}`, `{\"mode\": \"self_consumption|backup|autonomous\", \"reserve\"|\"level\"?: 0-100}`, `{\"grid_charging\": true|false}`, `{\"grid_export\": \"battery_ok|pv_only|never\"}`, `{\"islanding\": \"off_grid|on_grid\", \"confirm\": true}` (off-grid needs confirm); 403 disabled, 401 bad token, 404 unknown action or gateway, 413 body over 4 KB, 400 invalid body, 409 a write to the gateway in flight, 429 islanding cooldown (Retry-After), 503 no write path, 502 cloud failure. Form (pypowerwall proxy): `value=…&token=…[&mode=…|&level=…|&confirm=true]`, the proxy's messages; 400 (also when disabled), 401, 409, 429. Actions: reserve, mode, grid_charging, grid_export, islanding (needs the v1r LAN transport), max_backup (form; v1r only).";

/// Every POST route, first match wins; any other POST is the proxy's 400 `Invalid Request`.
pub static POST_ROUTES: &[PostRoute] = &[
    PostRoute {
        pattern: "/api/gateways/{id}/control/{action}",
        doc_path: "/api/gateways/{id}/control/{action}",
        family: "control",
        summary: "Control one gateway: reserve, mode, grid charging, grid export, islanding",
        description: CONTROL_DOC,
        handler: control::post,
    },
    PostRoute {
        pattern: "/control*",
        doc_path: "/control/{action}",
        family: "control",
        summary: "Control the default gateway (proxy-compatible)",
        description: CONTROL_DOC,
        handler: control::post,
    },
];

/// Finds the route for a POST path.
pub fn find_post(path: &str) -> Option<(&'static PostRoute, Vec<(&'static str, String)>)> {
    POST_ROUTES
        .iter()
        .find_map(|r| matches(r.pattern, path).map(|p| (r, p)))
}

/// Every GET route, first match wins.
pub static ROUTES: &[Route] = &[
    b("/aggregates", L, "Meter aggregates (site, battery, load, solar)", BodyKey::Path).doc(&S::AGGREGATES),
    b("/api/meters/aggregates", L, "Same as /aggregates", BodyKey::Fixed("/aggregates")).doc(&S::AGGREGATES),
    b("/soe", L, "Battery state of energy, raw gateway percentage", BodyKey::Path).doc(&S::SOE),
    b("/api/system_status/soe", L, "Battery state of energy, Tesla app scale", BodyKey::Path).doc(&S::SOE),
    pass("/api/system_status/grid_status", L, "Grid status", Pass::Gateway).doc(&S::GRID_STATUS),
    Route { produces: render::CSV, ..b("/csv*", L, "Grid,Home,Solar,Battery,BatteryLevel (/csv/v2 adds GridStatus,Reserve; ?headers)", BodyKey::Csv) }.doc(&S::CSV),
    b("/vitals", L, "Device vitals (indent 4, sorted keys)", BodyKey::Path).doc(&S::VITALS),
    b("/strings", L, "Solar strings", BodyKey::Path).doc(&S::STRINGS),
    r("/stats", L, "Server statistics and configuration (secrets masked)", stats).doc(&S::STATS),
    r("/stats/clear", L, "Reset request counters, then /stats", stats).doc(&S::STATS),
    r("/health", L, "Health: 503 when no gateway has fresh data", health).doc(&S::HEALTH),
    r("/health/reset", L, "Reset health counters", health_reset).doc(&S::HEALTH_RESET),
    b("/temps", L, "Powerwall temperatures by device", BodyKey::Path).doc(&S::TEMPS),
    b("/temps/pw", L, "Powerwall temperatures as PWn_temp", BodyKey::Path).doc(&S::TEMPS_PW),
    b("/alerts", L, "Active alerts (list)", BodyKey::Path).doc(&S::ALERTS),
    b("/alerts/pw", L, "Active alerts as {alert: 1}", BodyKey::Path).doc(&S::ALERTS_PW),
    b("/freq", L, "Frequency, voltage and grid status per Powerwall", BodyKey::Path).doc(&S::FREQ),
    b("/pod", L, "Battery pod data per Powerwall and totals", BodyKey::Path).doc(&S::POD),
    b("/json", L, "Compact summary (grid, home, solar, battery, soe, …)", BodyKey::Path).doc(&S::JSON),
    b("/version", L, "Firmware version and its integer form", BodyKey::Path).doc(&S::VERSION),
    rt("/help", L, "Statistics page (HTML)", help, "text/html").doc(&S::HELP),
    pass("/api/troubleshooting/problems", A, "Constant {\"problems\": []}", Pass::Constant(r#"{"problems": []}"#)).doc(&S::PROBLEMS),
    b("/tedapi*", L, "Raw TEDAPI documents: /tedapi/{config,status,components,battery,controller}", BodyKey::Tedapi).doc(&S::TEDAPI),
    b("/cloud*", L, "Cloud mode diagnostics (not enabled)", BodyKey::Fixed("/cloud")).doc(&S::CLOUD),
    b("/fleetapi*", L, "FleetAPI diagnostics (not enabled)", BodyKey::Fixed("/fleetapi")).doc(&S::FLEETAPI),
    pass("/api/status", A, "Gateway status", Pass::Gateway).doc(&S::API_STATUS),
    pass("/api/site_info/site_name", A, "Site name and time zone", Pass::Gateway).doc(&S::API_SITE_NAME),
    pass("/api/meters/site", A, "Site meter", Pass::Gateway).doc(&S::API_METERS_SITE),
    pass("/api/meters/solar", A, "Solar meter", Pass::Gateway).doc(&S::API_METERS_SOLAR),
    pass("/api/sitemaster", A, "Site master state", Pass::Gateway).doc(&S::API_SITEMASTER),
    pass("/api/powerwalls", A, "Powerwalls", Pass::Gateway).doc(&S::API_POWERWALLS),
    pass("/api/customer/registration", A, "Disabled by the proxy", Pass::Disabled).doc(&S::API_REGISTRATION),
    pass("/api/system_status", A, "System status with battery blocks", Pass::Gateway).doc(&S::API_SYSTEM_STATUS),
    pass("/api/system/update/status", A, "Firmware update status", Pass::Gateway).doc(&S::API_UPDATE_STATUS),
    pass("/api/site_info", A, "Site information", Pass::Gateway).doc(&S::API_SITE_INFO),
    pass("/api/system_status/grid_faults", A, "Grid faults", Pass::Gateway).doc(&S::API_GRID_FAULTS),
    pass("/api/operation", A, "Operation mode and backup reserve (raw scale)", Pass::Gateway).doc(&S::API_OPERATION),
    pass("/api/site_info/grid_codes", A, "Grid codes", Pass::Gateway).doc(&S::API_TEXT_OR_NULL),
    pass("/api/solars", A, "Solar inverters", Pass::Gateway).doc(&S::API_SOLARS),
    pass("/api/solars/brands", A, "Solar brands", Pass::Gateway).doc(&S::API_BRANDS),
    pass("/api/customer", A, "Customer", Pass::Gateway).doc(&S::API_CUSTOMER),
    pass("/api/meters", A, "Meters", Pass::Gateway).doc(&S::API_METERS),
    pass("/api/installer", A, "Installer", Pass::Gateway).doc(&S::API_INSTALLER),
    pass("/api/networks", A, "Networks", Pass::Gateway).doc(&S::API_NETWORKS),
    pass("/api/system/networks", A, "System networks", Pass::Gateway).doc(&S::API_SYSTEM_NETWORKS),
    pass("/api/meters/readings", A, "Meter readings", Pass::Gateway).doc(&S::API_TEXT_OR_NULL),
    pass("/api/synchrometer/ct_voltage_references", A, "CT voltage references", Pass::Gateway).doc(&S::API_CT_REFS),
    pass("/api/auth/toggle/supported", A, "Auth toggle", Pass::Gateway).doc(&S::API_AUTH_TOGGLE),
    pass("/api/solar_powerwall", A, "Solar Powerwall", Pass::Gateway).doc(&S::API_SOLAR_POWERWALL),
    r("/control/status", "control", "Whether control is enabled and what each gateway can do (cloud, LAN, actions, active path); no token needed", control::get_status).doc(&S::CONTROL_STATUS),
    b("/control/*", "control", "Current control settings (read-only)", BodyKey::Control).doc(&S::CONTROL_GET),
    b("/fans", L, "Fan speeds by device", BodyKey::Path).doc(&S::FANS),
    b("/fans/pw*", L, "Fan speeds as FANn_actual / FANn_target", BodyKey::Fixed("/fans/pw")).doc(&S::FANS_PW),
    b("/pw/{name}", L, "pypowerwall library calls (level, power, vitals, …)", BodyKey::Pw).doc(&S::PW),
    r("/api/gateways", "gateways", "All gateways with their state", api::gateways).doc(&S::GATEWAYS),
    r("/api/gateways/{id}", "gateways", "One gateway: details and latest summary", api::gateway).doc(&S::GATEWAY),
    r("/api/gateways/{id}/control/{action}", "control", "One gateway's current reserve, mode, grid_charging or grid_export (read-only, from the last poll)", control::get_gateway).doc(&S::GATEWAY_CONTROL),
    r("/api/gateways/{id}/history", "gateways", "One gateway: 24 h at one point per history step (60 s)", api::gateway_history).doc(&S::GATEWAY_HISTORY),
    r("/api/gateways/{id}/{view}", "gateways", "One gateway in the legacy shapes: vitals, aggregates, soe, strings, temps, alerts, fans, freq, pod, battery, status, version", api::gateway_view).doc(&S::GATEWAY_VIEW),
    r("/api/aggregate/power", "aggregate", "Flows summed over gateways with fresh data", api::aggregate_power).doc(&S::AGG_POWER),
    r("/api/aggregate/soe", "aggregate", "State of energy weighted by full-pack energy", api::aggregate_soe).doc(&S::AGG_SOE),
    r("/api/aggregate/status", "aggregate", "Overall health and per-gateway state", api::aggregate_status).doc(&S::AGG_STATUS),
    r("/api/aggregate/history", "aggregate", "Site total: 24 h at one point per history step (60 s)", api::aggregate_history).doc(&S::AGG_HISTORY),
    r("/api/aggregate", "aggregate", "pypowerwall-server's aggregate object: site totals and each gateway's data", api::aggregate_peer).doc(&S::PEER_ROOT),
    r("/api/aggregate/battery", "aggregate", "pypowerwall-server's battery totals (capacity Wh, charge, power)", api::aggregate_peer).doc(&S::PEER_BATTERY),
    r("/api/aggregate/strings", "aggregate", "Solar strings by gateway id (pypowerwall-server)", api::aggregate_peer).doc(&S::PEER_STRINGS),
    r("/api/aggregate/alerts", "aggregate", "Active alerts by gateway id (pypowerwall-server)", api::aggregate_peer).doc(&S::PEER_ALERTS),
    r("/api/aggregate/vitals", "aggregate", "Vitals by gateway id (pypowerwall-server)", api::aggregate_peer).doc(&S::PEER_VITALS),
    r("/api/timeseries/today", "timeseries", "Today's kWh per gateway and in total (`?gateway=`, `?format=csv`)", super::timeseries::today).doc(&S::TS_TODAY),
    r("/api/timeseries/daily", "timeseries", "Daily kWh, newest first (`?days=`, `?start=&end=` YYYY-MM-DD, `?gateway=`, `?format=csv`)", super::timeseries::daily).doc(&S::TS_DAILY),
    r("/api/timeseries/trend", "timeseries", "Power (kW) and battery level in about 360 buckets (`?hours=`, `?start=&end=` Unix s, `?points=`, `?gateway=`, `?format=csv`)", super::timeseries::trend).doc(&S::TS_TREND),
    r("/api/timeseries/samples", "timeseries", "The finest archive's slots, oldest first (`?limit=` ≤ 10000, `?start=&end=`, `?gateway=`, `?format=csv`)", super::timeseries::samples).doc(&S::TS_SAMPLES),
    r("/api/timeseries/status", "timeseries", "History storage: archives, file, flushes, zone", super::timeseries::status).doc(&S::TS_STATUS),
    rt("/metrics", "metrics", "Prometheus metrics (text 0.0.4; OpenMetrics 1.0 with Accept: application/openmetrics-text)", super::metrics::metrics, crate::metrics::PROMETHEUS).doc(&S::METRICS),
    r("/ws/gateway/{id}", "websocket", "WebSocket: one gateway's summary every second", ws::not_upgraded).doc(&S::WS_GATEWAY),
    r("/ws/aggregate", "websocket", "WebSocket: the site total every second", ws::not_upgraded).doc(&S::WS_AGGREGATE),
    r("/api/mqtt/status", "mqtt", "MQTT publisher: settings, connection, messages sent", super::mqtt::status_route).doc(&S::MQTT_STATUS),
    r("/openapi.json", "docs", "This document (OpenAPI 3.1)", openapi).doc(&S::OPENAPI),
    rt("/console", "static", "The dashboard (the Python pypowerwall-server's page name; same page as `/`)", console_page, "text/html").doc(&S::PAGE),
    rt("/history", "static", "The energy history page", history_page, "text/html").doc(&S::PAGE),
    rt("/docs", "docs", "Interactive API documentation: every route, its parameters and a Try it button (works offline)", docs, "text/html").doc(&S::PAGE),
    rt("/redoc", "docs", "API reference (read-only, works offline)", redoc, "text/html").doc(&S::PAGE),
];

/// Matches `path` against a pattern; returns the `{name}` captures.
pub fn matches(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    // One pass over the literal head of the pattern, so the usual miss costs a byte or two:
    // this runs for every route in the table on every request.
    let (pb, xb) = (pattern.as_bytes(), path.as_bytes());
    let mut i = 0;
    while i < pb.len() {
        match pb[i] {
            b'{' => break,
            b'*' if i + 1 == pb.len() => return Some(Vec::new()),
            c if xb.get(i) != Some(&c) => return None,
            _ => i += 1,
        }
    }
    if i == pb.len() {
        return (xb.len() == pb.len()).then(Vec::new);
    }
    let mut params = Vec::new();
    let mut ps = pattern.split('/');
    let mut xs = path.split('/');
    loop {
        match (ps.next(), xs.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(x)) => {
                if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    if x.is_empty() {
                        return None;
                    }
                    params.push((name, x.to_string()));
                } else if p != x {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Finds the route for a GET path: the first match in table order, as a scan of [`ROUTES`]
/// would, through [`RouteIndex`] (a lookup for every literal path, a scan of the few patterns).
pub fn find(path: &str) -> Option<(&'static Route, Vec<(&'static str, String)>)> {
    static INDEX: std::sync::OnceLock<RouteIndex> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| RouteIndex::new(ROUTES));
    if let Some(&i) = index.literal.get(path) {
        // Resolved when the index was built: this route, or an earlier pattern that matches
        // the same path.
        let r = &ROUTES[i];
        return Some((r, matches(r.pattern, path).unwrap_or_default()));
    }
    index
        .patterns
        .iter()
        .find_map(|&i| matches(ROUTES[i].pattern, path).map(|p| (&ROUTES[i], p)))
}

/// The route table split for lookup, built once (immutable): each literal path with the route
/// that answers it (itself, or an earlier pattern matching it) and, in table order, the
/// patterns with a capture or a `*`. A literal request path costs one hash, wherever it is in
/// the table.
struct RouteIndex {
    literal: std::collections::HashMap<&'static str, usize>,
    patterns: Vec<usize>,
}

impl RouteIndex {
    fn new(routes: &'static [Route]) -> RouteIndex {
        let mut index = RouteIndex {
            literal: std::collections::HashMap::new(),
            patterns: Vec::new(),
        };
        for (i, r) in routes.iter().enumerate() {
            if r.pattern.contains(['{', '*']) {
                index.patterns.push(i);
            } else if !index.literal.contains_key(r.pattern) {
                // First match in table order: an earlier pattern that matches this literal
                // path wins over it, decided here once rather than on every request.
                let first = index
                    .patterns
                    .iter()
                    .copied()
                    .find(|&p| matches(routes[p].pattern, r.pattern).is_some())
                    .unwrap_or(i);
                index.literal.insert(r.pattern, first);
            }
        }
        index
    }
}

/// The route family a request is counted under in `/metrics`: the route table's `family`;
/// `static` for the fallback (UI files, not found, forwarded); `other` for anything else.
pub fn family(method: &tiny_http::Method, path: &str) -> &'static str {
    use tiny_http::Method;
    match method {
        Method::Get | Method::Head => find(path).map(|(r, _)| r.family).unwrap_or("static"),
        Method::Post => find_post(path).map(|(r, _)| r.family).unwrap_or("other"),
        _ => "other",
    }
}

/// Answers a GET/HEAD request.
pub fn dispatch(mut req: Req<'_>) -> Answer {
    match find(req.path) {
        Some((route, params)) => {
            req.params = params;
            req.route = Some(route);
            (route.handler)(&req)
        }
        None => fallback(req.ctx, req.path, req.if_none_match),
    }
}

/// A WebSocket upgrade request: handed to the WebSocket hub, or refused before upgrading.
pub fn upgrade(req: Req<'_>, rq: Request) {
    match find(req.path) {
        Some((route, params)) if route.family == "websocket" => {
            let mut req = req;
            req.params = params;
            ws::accept(&req, rq);
        }
        _ => {
            let a = dispatch(req);
            send(rq, a);
        }
    }
}

/// The key of the pre-rendered legacy body for a path: its route's [`BodyKey`].
pub fn legacy_key(path: &str, query: &str) -> String {
    match find(path).and_then(|(route, _)| route.body) {
        Some(key) => key.resolve(path, query).into_owned(),
        None => path.to_string(),
    }
}

/// The gateway paths the proxy passes through, with their rule, in table order (the renderer
/// makes one body for each).
pub fn pass_through() -> Vec<(&'static str, Pass)> {
    ROUTES
        .iter()
        .filter_map(|r| r.pass.map(|p| (r.pattern, p)))
        .collect()
}

/// Serves a pre-rendered legacy body of the default gateway.
fn legacy_body(req: &Req<'_>) -> Answer {
    let ctx = req.ctx;
    // The matched route says which body answers it.
    let key = match req.route.and_then(|r| r.body) {
        Some(body) => body.resolve(req.path, req.query),
        None => legacy_key(req.path, req.query).into(),
    };
    let Some(view) = ctx.hub.view(ctx.default_gateway, req.now) else {
        return fallback(ctx, req.path, None);
    };
    let pass = req.route.filter(|r| r.pass == Some(Pass::Gateway));
    if let Some(r) = pass {
        // Local mode reads these once a minute unless asked for: keep this one fresh.
        ctx.hub.note_demand(ctx.default_gateway, r.pattern, req.now);
    }
    let pass = pass.is_some();
    match view.bodies.get(&key) {
        Some(body) => {
            ctx.stats.with(|c| {
                // A pass-through `null` from a gateway that answers is the library's
                // `json.dumps(None)`, a normal answer; with no data at all it is a timeout.
                let missing = &*body.bytes == b"TIMEOUT!"
                    || (&*body.bytes == b"null" && !(pass && view.fresh));
                if missing {
                    c.timeout += 1;
                } else {
                    c.hit(req.path);
                }
            });
            Answer::route(body)
        }
        None => fallback(ctx, req.path, req.if_none_match),
    }
}

fn stats(req: &Req<'_>) -> Answer {
    let ctx = req.ctx;
    if req.path == "/stats/clear" {
        ctx.stats.with(|c| {
            c.gets = 0;
            c.errors = 0;
            c.uri = Map::new();
            c.clear = std::time::SystemTime::now();
        });
    }
    Answer::json(200, status_doc(req, status::stats).0.to_py())
}

/// Builds `/stats` or `/health` from every gateway's view and counts the request.
fn status_doc(req: &Req<'_>, build: status::Builder) -> (Value, bool) {
    let ctx = req.ctx;
    let views = req.views();
    let doc = build(
        &ctx.config,
        &ctx.stats,
        views.get(ctx.default_gateway),
        &views,
    );
    ctx.stats.with(|c| c.hit(req.path));
    (doc, views.iter().any(|v| v.fresh))
}

fn health(req: &Req<'_>) -> Answer {
    let (doc, any_fresh) = status_doc(req, status::health);
    let down = req.ctx.config.server.health_503 && !any_fresh;
    Answer::json(if down { 503 } else { 200 }, doc.to_py())
}

fn health_reset(req: &Req<'_>) -> Answer {
    req.ctx.stats.with(|c| c.hit(req.path));
    Answer::json(200, status::health_reset().to_py())
}

fn help(req: &Req<'_>) -> Answer {
    let (doc, _) = status_doc(req, status::stats);
    Answer::text(200, "text/html", status::help(&doc))
}

fn openapi(req: &Req<'_>) -> Answer {
    let ids: Vec<&str> = req
        .ctx
        .config
        .gateways
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    Answer::json(200, super::openapi::document(&ids).to_py())
}

/// `/console`: the dashboard, as `/` serves it (embedded or from `PW_WWW_DIR`).
fn console_page(req: &Req<'_>) -> Answer {
    fallback(req.ctx, "/index.html", req.if_none_match)
}

/// `/history`: the History page.
fn history_page(req: &Req<'_>) -> Answer {
    fallback(req.ctx, "/history.html", req.if_none_match)
}

fn docs(_req: &Req<'_>) -> Answer {
    Answer::text(200, "text/html; charset=utf-8", super::openapi::DOCS_PAGE)
}

fn redoc(_req: &Req<'_>) -> Answer {
    Answer::text(200, "text/html; charset=utf-8", super::openapi::REDOC_PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(
            matches("/api/gateways/{id}", "/api/gateways/a"),
            Some(vec![("id", "a".into())])
        );
        assert_eq!(matches("/api/gateways/{id}", "/api/gateways/"), None);
        assert_eq!(matches("/api/gateways/{id}", "/api/gateways/a/b"), None);
        assert_eq!(matches("/csv*", "/csvfoo"), Some(vec![]));
        assert_eq!(
            find("/api/gateways/a/history").unwrap().0.pattern,
            "/api/gateways/{id}/history"
        );
        assert_eq!(
            find("/api/gateways/a/vitals").unwrap().0.pattern,
            "/api/gateways/{id}/{view}"
        );
        assert!(find("/nope").is_none());
    }

    /// The index finds what a scan of the table in order finds, for every route and near misses.
    #[test]
    fn index_agrees_with_a_scan() {
        let scan = |path: &str| {
            ROUTES
                .iter()
                .find_map(|r| matches(r.pattern, path).map(|p| (r.pattern, p)))
        };
        for r in ROUTES {
            let p = r.pattern.replace("{id}", "a").replace("{name}", "1");
            let p = p.replace("{view}", "vitals").replace("{action}", "mode");
            let base = p.trim_end_matches('*').to_string();
            for path in [
                base.clone(),
                format!("{base}x"),
                format!("{base}/"),
                base + "/y",
            ] {
                assert_eq!(
                    find(&path).map(|(r, p)| (r.pattern, p)),
                    scan(&path),
                    "{path}"
                );
            }
        }
    }

    #[test]
    fn legacy_keys() {
        assert_eq!(legacy_key("/csv", "headers"), "/csv_headers");
        assert_eq!(legacy_key("/csv/v2", ""), "/csv/v2");
        assert_eq!(legacy_key("/csvfoo", ""), "/csv");
        assert_eq!(legacy_key("/tedapi/x", ""), "/tedapi");
        assert_eq!(legacy_key("/pw/nope", ""), "/pw/");
        assert_eq!(legacy_key("/api/meters/aggregates", ""), "/aggregates");
    }

    #[test]
    fn post_routes() {
        assert!(find_post("/control").is_some());
        assert_eq!(
            find_post("/api/gateways/a/control/mode").unwrap().1,
            vec![("id", "a".to_string()), ("action", "mode".to_string())]
        );
        assert!(find_post("/api/login/Basic").is_none());
    }
}
