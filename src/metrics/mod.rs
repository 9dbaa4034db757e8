//! `GET /metrics`: the gateways' data and the server's own counters in the Prometheus text
//! exposition format 0.0.4, or OpenMetrics 1.0 when the scraper asks for it.
//!
//! Pure rendering: this module reads snapshot views and counters and returns text; it knows
//! nothing about HTTP (the route handler in `http/` only picks the format and serves the body).
//! The per-gateway part depends only on snapshots, so it is rendered once per change — a new
//! snapshot or a gateway's data expiring, the same key as the aggregate bodies — in both formats
//! and cached; the server part (uptime, request counters, WebSocket clients) is a few lines
//! appended per request.
//!
//! Every family has `HELP` and `TYPE`, values are in base units (W, Wh, s, V, A, Hz, °C, %),
//! and label values come from configuration (gateway id and name) or from the gateway (serial
//! numbers, string and alert names: bounded in count and charset); nothing a client sends
//! becomes a label. Label values are escaped (`\`, `"`, newline).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

mod families;
#[cfg(test)]
mod tests;

pub use families::*;
use Kind::{Counter, Gauge, Histogram, Info};

use crate::clock;
use crate::json::Value;
use crate::render::summary::{app_scale, Summary};
use crate::snapshot::{Hub, State, View, POLL_BUCKETS};

/// Content type of the Prometheus text format.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (Prometheus ≥ 2.5 does by default).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Whether an `Accept-Encoding` header accepts gzip (Prometheus sends `gzip`); `q=0` refuses.
pub fn wants_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|h| {
        h.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let gzip = parts
                .next()
                .is_some_and(|c| c.eq_ignore_ascii_case("gzip") || c == "*");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            gzip && !refused
        })
    })
}

/// One gzip member of `data`. Several members in a row are one valid gzip stream (RFC 1952
/// §2.2; Go's reader, which Prometheus uses, reads them all), so the cached gateway part is
/// compressed once and the per-request server part is appended as a [`stored_member`].
fn gzip(data: &[u8], level: flate2::Compression) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), level);
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// A gzip member holding `data` in stored (uncompressed) deflate blocks: a header, the bytes
/// and a CRC — no compressor state to set up per request.
fn stored_member(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32 + data.len() / 65535 * 5);
    // ID1 ID2, CM = deflate, no flags, no mtime, XFL 0, OS unknown.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    let mut chunks = data.chunks(u16::MAX as usize).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(last as u8);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// The island states pypowerwall knows (`grid_status.grid_status`).
const ISLAND_STATES: &[&str] = &[
    "SystemGridConnected",
    "SystemIslandedActive",
    "SystemIslandedReady",
    "SystemTransitionToGrid",
    "SystemTransitionToIsland",
    "SystemMicroGridFaulted",
    "SystemWaitForUser",
];

const STATES: [State; 5] = [
    State::Connecting,
    State::Online,
    State::Stale,
    State::Offline,
    State::Cooldown,
];

const METERS: [&str; 4] = ["site", "battery", "load", "solar"];

/// Most solar strings and alerts listed per gateway (labels stay bounded whatever it sends).
const MAX_STRINGS: usize = 64;
const MAX_ALERTS: usize = 64;
/// Longest gateway-supplied label value kept.
const MAX_LABEL: usize = 64;

/// Appends a label value with the exposition format's escapes.
fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `name="value",…` (escaped), without braces.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_into(&mut out, v);
        out.push('"');
    }
    out
}

/// A sample value as Prometheus parses it (`+Inf`, `-Inf`, `NaN`; no exponent needed).
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

struct Sample {
    suffix: &'static str,
    labels: String,
    value: f64,
}

/// Families with their samples, in first-use order; writes both formats.
#[derive(Default)]
struct Registry {
    families: Vec<(&'static Def, Vec<Sample>)>,
}

impl Registry {
    fn family(&mut self, d: &'static Def) -> &mut Vec<Sample> {
        let i = match self.families.iter().position(|(f, _)| f.name == d.name) {
            Some(i) => i,
            None => {
                self.families.push((d, Vec::new()));
                self.families.len() - 1
            }
        };
        &mut self.families[i].1
    }

    /// Adds one sample; a repeated label set (a gateway listing a device twice) is dropped.
    fn add_suffixed(&mut self, d: &'static Def, suffix: &'static str, labels: String, value: f64) {
        let samples = self.family(d);
        if samples
            .iter()
            .any(|s| s.suffix == suffix && s.labels == labels)
        {
            return;
        }
        samples.push(Sample {
            suffix,
            labels,
            value,
        });
    }

    fn add(&mut self, d: &'static Def, labels: String, value: f64) {
        let suffix = match d.kind {
            Counter => "_total",
            Info => "_info",
            Gauge | Histogram => "",
        };
        self.add_suffixed(d, suffix, labels, value);
    }

    fn add_opt(&mut self, d: &'static Def, labels: String, value: Option<f64>) {
        if let Some(v) = value {
            self.add(d, labels, v);
        }
    }

    fn write(&self, out: &mut String, openmetrics: bool) {
        // Families in the order of FAMILIES, so both formats and every state agree.
        for d in FAMILIES {
            let Some((_, samples)) = self.families.iter().find(|(f, _)| f.name == d.name) else {
                continue;
            };
            if samples.is_empty() {
                continue;
            }
            let (type_name, type_word) = match (d.kind, openmetrics) {
                (Counter, false) => (format!("{}_total", d.name), "counter"),
                (Counter, true) => (d.name.to_string(), "counter"),
                (Info, false) => (format!("{}_info", d.name), "gauge"),
                (Info, true) => (d.name.to_string(), "info"),
                (Gauge, _) => (d.name.to_string(), "gauge"),
                (Histogram, _) => (d.name.to_string(), "histogram"),
            };
            let _ = writeln!(out, "# HELP {type_name} {}", d.help);
            let _ = writeln!(out, "# TYPE {type_name} {type_word}");
            for s in samples {
                out.push_str(d.name);
                out.push_str(s.suffix);
                if !s.labels.is_empty() {
                    out.push('{');
                    out.push_str(&s.labels);
                    out.push('}');
                }
                out.push(' ');
                write_value(out, s.value);
                out.push('\n');
            }
        }
    }
}

/// A gateway-supplied label value: trimmed to [`MAX_LABEL`] characters.
fn bounded(s: &str) -> &str {
    match s.char_indices().nth(MAX_LABEL) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(|v| match v {
        Value::Bool(b) => Some(*b as i64 as f64),
        v => v.as_f64(),
    })
}

/// The per-gateway and aggregate families of these views.
fn render_gateways(views: &[View]) -> Registry {
    let mut r = Registry::default();
    for v in views {
        gateway_health(&mut r, v);
    }
    for v in views.iter().filter(|v| v.fresh) {
        gateway_data(&mut r, v);
    }
    aggregate(&mut r, views);
    r
}

fn gateway_health(r: &mut Registry, v: &View) {
    let s = &v.snapshot;
    let id = s.id.as_str();
    let g = labels(&[("gateway", id)]);
    // Firmware and model of the last good poll, even while the gateway is offline.
    let last = s.good.as_ref().map(|g| &g.facade);
    let model = match last {
        Some(f) if f.pw3 => "pw3",
        Some(_) => "pw2",
        None => "",
    };
    let firmware = last.and_then(|f| f.version.as_deref()).unwrap_or("");
    r.add(
        &GATEWAY_INFO,
        labels(&[
            ("gateway", id),
            ("name", &s.name),
            ("mode", s.mode.name()),
            ("model", model),
            ("firmware", bounded(firmware)),
        ]),
        1.0,
    );
    for st in STATES {
        r.add(
            &GATEWAY_STATE,
            labels(&[("gateway", id), ("state", st.as_str())]),
            (v.state == st) as u8 as f64,
        );
    }
    let h = &s.health;
    r.add_opt(
        &LAST_SUCCESS,
        g.clone(),
        h.last_success.map(clock::unix_f64),
    );
    r.add(&FAILURES, g.clone(), h.consecutive_failures as f64);
    for (result, n) in [
        ("success", h.total_successes),
        ("failure", h.total_failures),
    ] {
        r.add(
            &POLLS,
            labels(&[("gateway", id), ("result", result)]),
            n as f64,
        );
    }
    let d = &h.poll_durations;
    let mut cumulative = 0;
    for (bound, n) in POLL_BUCKETS.iter().zip(d.buckets) {
        cumulative += n;
        let le = format!("{bound}");
        r.add_suffixed(
            &POLL_DURATION,
            "_bucket",
            labels(&[("gateway", id), ("le", &le)]),
            cumulative as f64,
        );
    }
    r.add_suffixed(
        &POLL_DURATION,
        "_bucket",
        labels(&[("gateway", id), ("le", "+Inf")]),
        d.count as f64,
    );
    r.add_suffixed(&POLL_DURATION, "_sum", g.clone(), d.sum);
    r.add_suffixed(&POLL_DURATION, "_count", g, d.count as f64);
}

fn gateway_data(r: &mut Registry, v: &View) {
    let Some(good) = v.snapshot.good.as_ref() else {
        return;
    };
    let id = v.snapshot.id.as_str();
    let f = &good.facade;
    let sm = &good.summary;
    let g = || labels(&[("gateway", id)]);
    let meter = |m: &str| labels(&[("gateway", id), ("meter", m)]);
    for (m, p) in METERS.iter().zip([sm.site, sm.battery, sm.load, sm.solar]) {
        r.add_opt(&POWER, meter(m), p);
    }
    r.add_opt(&SOE, g(), sm.soe);
    r.add_opt(&SOE_APP, g(), sm.soe.map(app_scale));
    r.add_opt(&RESERVE, g(), sm.reserve);
    r.add_opt(
        &GRID_UP,
        g(),
        sm.grid_status.map(|s| (s == "UP") as u8 as f64),
    );
    if let Some(raw) = f
        .grid_status
        .as_ref()
        .and_then(|g| g.get("grid_status"))
        .and_then(Value::as_str)
    {
        let known = ISLAND_STATES.contains(&raw);
        for st in ISLAND_STATES.iter().copied().chain(["other"]) {
            let on = if known { st == raw } else { st == "other" };
            r.add(
                &ISLAND_STATE,
                labels(&[("gateway", id), ("state", st)]),
                on as u8 as f64,
            );
        }
    }
    r.add_opt(
        &TIME_REMAINING,
        g(),
        sm.time_remaining_hours.map(|h| h * 3600.0),
    );
    r.add_opt(&ENERGY_REMAINING, g(), sm.energy_remaining);
    r.add_opt(&FULL_PACK, g(), sm.full_pack_energy);
    if let Some(agg) = f.api("/api/meters/aggregates") {
        for m in METERS {
            let section = agg.get(m);
            let field = |k: &str| num(section.and_then(|s| s.get(k)));
            r.add_opt(&IMPORTED, meter(m), field("energy_imported"));
            r.add_opt(&EXPORTED, meter(m), field("energy_exported"));
            r.add_opt(&METER_VOLTAGE, meter(m), field("instant_average_voltage"));
        }
    }
    if let Some(blocks) = f
        .system_status
        .as_ref()
        .and_then(|d| d.get("battery_blocks"))
        .and_then(Value::as_array)
    {
        for b in blocks {
            let text = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("");
            let serial = bounded(text("PackageSerialNumber"));
            let part = bounded(text("PackagePartNumber"));
            if serial.is_empty() && part.is_empty() {
                continue;
            }
            let pw = || labels(&[("gateway", id), ("powerwall", serial), ("part", part)]);
            let field = |k: &str| num(b.get(k));
            r.add_opt(&BATTERY_REMAINING, pw(), field("nominal_energy_remaining"));
            r.add_opt(&BATTERY_FULL, pw(), field("nominal_full_pack_energy"));
            r.add_opt(&BATTERY_POWER, pw(), field("p_out"));
            r.add_opt(&BATTERY_FREQUENCY, pw(), field("f_out"));
            r.add_opt(&BATTERY_VOLTAGE, pw(), field("v_out"));
        }
    }
    // `TETHC--<part>--<serial>` (PW3: `TEPOD--…`) → °C.
    if let Some(temps) = f.temps.as_ref().and_then(Value::as_object) {
        for (device, t) in temps.iter() {
            let mut it = device.splitn(3, "--").skip(1);
            let (part, serial) = match (it.next(), it.next()) {
                (Some(p), Some(s)) => (p, s),
                _ => ("", device.as_str()),
            };
            r.add_opt(
                &BATTERY_TEMPERATURE,
                labels(&[
                    ("gateway", id),
                    ("powerwall", bounded(serial)),
                    ("part", bounded(part)),
                ]),
                num(Some(t)),
            );
        }
    }
    if let Some(strings) = f.strings.as_ref().and_then(Value::as_object) {
        for (name, s) in strings.iter().take(MAX_STRINGS) {
            let l = || labels(&[("gateway", id), ("string", bounded(name))]);
            r.add_opt(&STRING_VOLTAGE, l(), num(s.get("Voltage")));
            r.add_opt(&STRING_CURRENT, l(), num(s.get("Current")));
            r.add_opt(&STRING_POWER, l(), num(s.get("Power")));
            r.add_opt(&STRING_CONNECTED, l(), num(s.get("Connected")));
        }
    }
    if let Some(alerts) = f.alerts.as_ref() {
        r.add(&ALERTS, g(), alerts.len() as f64);
        let valid = |a: &&String| {
            !a.is_empty()
                && a.len() <= MAX_LABEL
                && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        for a in alerts.iter().filter(valid).take(MAX_ALERTS) {
            r.add(&ALERT, labels(&[("gateway", id), ("alert", a)]), 1.0);
        }
    }
    island(r, id, f.vitals().as_ref());
}

/// `ISLAND_FreqL1_Main`, `ISLAND_VL1N_Load`, … from the synchronizer's vitals block.
fn island(r: &mut Registry, id: &str, vitals: Option<&Value>) {
    let Some(vitals) = vitals.and_then(Value::as_object) else {
        return;
    };
    for (device, d) in vitals.iter() {
        if !(device.starts_with("TESYNC") || device.starts_with("TEMSA")) {
            continue;
        }
        for phase in ["L1", "L2", "L3"] {
            for side in ["Main", "Load"] {
                let l = || {
                    labels(&[
                        ("gateway", id),
                        ("phase", phase),
                        ("side", if side == "Main" { "main" } else { "load" }),
                    ])
                };
                let freq = num(d.get(&format!("ISLAND_Freq{phase}_{side}")));
                r.add_opt(&ISLAND_FREQUENCY, l(), freq);
                let volts = num(d.get(&format!("ISLAND_V{phase}N_{side}")));
                r.add_opt(&ISLAND_VOLTAGE, l(), volts);
            }
        }
    }
}

/// The site total, computed exactly as `/api/aggregate/*` are.
fn aggregate(r: &mut Registry, views: &[View]) {
    let fresh = crate::snapshot::site_parts(views);
    let total = Summary::total(&fresh);
    for (m, p) in METERS
        .iter()
        .zip([total.site, total.battery, total.load, total.solar])
    {
        r.add_opt(&AGG_POWER, labels(&[("meter", m)]), p);
    }
    r.add_opt(&AGG_REMAINING, String::new(), total.energy_remaining);
    r.add_opt(&AGG_FULL, String::new(), total.full_pack_energy);
    r.add_opt(&AGG_SOE, String::new(), total.soe);
    r.add(&AGG_CONTRIBUTORS, String::new(), fresh.len() as f64);
}

/// The cached per-gateway part in both formats, plain and as a gzip member.
#[derive(Debug)]
pub struct Rendered {
    pub prometheus: String,
    pub openmetrics: String,
    pub prometheus_gz: Vec<u8>,
    pub openmetrics_gz: Vec<u8>,
}

/// Renders the per-gateway part of these views.
pub fn render(views: &[View]) -> Rendered {
    let r = render_gateways(views);
    let mut prometheus = String::with_capacity(8192);
    r.write(&mut prometheus, false);
    let mut openmetrics = String::with_capacity(8192);
    r.write(&mut openmetrics, true);
    let level = flate2::Compression::default();
    Rendered {
        prometheus_gz: gzip(prometheus.as_bytes(), level),
        openmetrics_gz: gzip(openmetrics.as_bytes(), level),
        prometheus,
        openmetrics,
    }
}

/// Status classes `1xx` … `5xx`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// HTTP answers by route family and status class. Families are `&'static str` from the route
/// table, so the label set is bounded by it.
#[derive(Default)]
pub struct Requests {
    counts: Mutex<Vec<(&'static str, [u64; 5])>>,
}

impl Requests {
    /// Counts one answer.
    pub fn count(&self, family: &'static str, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match c.iter_mut().find(|(f, _)| *f == family) {
            Some((_, n)) => n[class] += 1,
            None => {
                let mut n = [0; 5];
                n[class] = 1;
                c.push((family, n));
            }
        }
    }

    fn snapshot(&self) -> Vec<(&'static str, [u64; 5])> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What the server part reads besides the request counters.
pub struct ServerStatus {
    pub started: SystemTime,
    pub uptime: Duration,
    pub websocket_clients: usize,
}

/// Built part with the hub generation it was built at and the earliest data expiry.
type Cached = (usize, Option<Instant>, Arc<Rendered>);

/// How long a whole body (with its server lines) is reused: request counters and uptime in a
/// scrape are at most this old. One default poll interval, so the body is built about once
/// per tick like every other body, and a request is an `Arc` clone like `/aggregates`.
pub const SERVER_PART_MAX_AGE: Duration = Duration::from_secs(5);

/// A whole body, the gateway part it was built from, and when.
type Full = (Arc<Rendered>, Instant, Arc<[u8]>);

/// `/metrics` state: the request counters, the cached per-gateway part and the last whole body
/// of each variant (0.0.4 / OpenMetrics × plain / gzip).
#[derive(Default)]
pub struct Metrics {
    pub requests: Requests,
    cache: Mutex<Option<Cached>>,
    full: Mutex<[Option<Full>; 4]>,
}

impl Metrics {
    /// The per-gateway part, re-rendered only after a publish or a gateway's data expiring.
    pub fn gateways(&self, hub: &Hub, now: Instant) -> Arc<Rendered> {
        let generation = hub.generation();
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, until, part)) = c.as_ref() {
            if *g == generation && until.is_none_or(|u| now < u) {
                return part.clone();
            }
        }
        let views: Vec<View> = (0..hub.len()).filter_map(|i| hub.view(i, now)).collect();
        let until = views
            .iter()
            .filter(|v| v.fresh)
            .filter_map(|v| v.snapshot.good.as_ref().map(|g| g.at + hub.max_age))
            .min();
        let part = Arc::new(render(&views));
        *c = Some((generation, until, part.clone()));
        part
    }

    /// The body a request gets: the last one built for this variant while it is from the
    /// current gateway part and under [`SERVER_PART_MAX_AGE`] old (an `Arc` clone), else a new
    /// one ([`Metrics::body`] / [`Metrics::body_gzip`]).
    pub fn cached_body(
        &self,
        hub: &Hub,
        now: Instant,
        openmetrics: bool,
        gzip: bool,
        server: impl FnOnce() -> ServerStatus,
    ) -> Arc<[u8]> {
        let part = self.gateways(hub, now);
        let slot = openmetrics as usize * 2 + gzip as usize;
        let mut full = self.full.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, built, body)) = &full[slot] {
            if Arc::ptr_eq(p, &part) && now.saturating_duration_since(*built) < SERVER_PART_MAX_AGE
            {
                return body.clone();
            }
        }
        let server = server();
        let body: Arc<[u8]> = if gzip {
            Arc::from(self.body_gzip(hub, now, openmetrics, &server))
        } else {
            Arc::from(self.body(hub, now, openmetrics, &server).into_bytes())
        };
        full[slot] = Some((part, now, body.clone()));
        body
    }

    /// The whole body: the cached gateway part plus the server part (and `# EOF`).
    pub fn body(
        &self,
        hub: &Hub,
        now: Instant,
        openmetrics: bool,
        server: &ServerStatus,
    ) -> String {
        let part = self.gateways(hub, now);
        let cached = if openmetrics {
            &part.openmetrics
        } else {
            &part.prometheus
        };
        let mut out = String::with_capacity(cached.len() + 2048);
        out.push_str(cached);
        out.push_str(&self.server_text(server, openmetrics));
        out
    }

    /// [`Metrics::body`] gzipped: the cached compressed gateway part, then the server part as
    /// a stored (uncompressed) gzip member, so a request costs a copy and a CRC, not a deflate.
    pub fn body_gzip(
        &self,
        hub: &Hub,
        now: Instant,
        openmetrics: bool,
        server: &ServerStatus,
    ) -> Vec<u8> {
        let part = self.gateways(hub, now);
        let cached = if openmetrics {
            &part.openmetrics_gz
        } else {
            &part.prometheus_gz
        };
        let tail = stored_member(self.server_text(server, openmetrics).as_bytes());
        let mut out = Vec::with_capacity(cached.len() + tail.len());
        out.extend_from_slice(cached);
        out.extend_from_slice(&tail);
        out
    }

    /// The server families (and `# EOF` for OpenMetrics).
    fn server_text(&self, server: &ServerStatus, openmetrics: bool) -> String {
        let mut out = String::with_capacity(2048);
        self.server_part(server).write(&mut out, openmetrics);
        if openmetrics {
            out.push_str("# EOF\n");
        }
        out
    }

    fn server_part(&self, s: &ServerStatus) -> Registry {
        let mut r = Registry::default();
        r.add(
            &BUILD_INFO,
            labels(&[("version", env!("CARGO_PKG_VERSION"))]),
            1.0,
        );
        r.add(&START_TIME, String::new(), clock::unix_f64(s.started));
        r.add(&UPTIME, String::new(), s.uptime.as_secs_f64());
        for (family, counts) in self.requests.snapshot() {
            for (class, n) in CLASSES.iter().zip(counts) {
                if n > 0 {
                    r.add(
                        &HTTP_REQUESTS,
                        labels(&[("family", family), ("code", class)]),
                        n as f64,
                    );
                }
            }
        }
        r.add(&WS_CLIENTS, String::new(), s.websocket_clients as f64);
        r
    }
}
