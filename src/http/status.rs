//! The proxy's own status routes: `/stats`, `/stats/clear`, `/health`, `/health/reset`, `/help`.
//!
//! These depend on request counters and the clock, so they are built per request (they are
//! small). Key order follows the proxy (clients such as Powerwall-Dashboard's `verify.sh` grep
//! them); our additions come after the proxy's keys. Secrets appear only masked.

use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use crate::clock;
use crate::config::{keys, Public as Config, PublicGateway};
use crate::json::{Map, Value};
use crate::snapshot::{State, View};

/// Most distinct paths counted in `uri` before new ones go to `other` (as the proxy does).
const URI_CAP: usize = 100;

/// Request counters (`/stats`).
#[derive(Debug, Clone)]
pub struct Counters {
    pub gets: u64,
    pub posts: u64,
    pub errors: u64,
    pub timeout: u64,
    pub uri: Map,
    pub clear: SystemTime,
}

impl Counters {
    pub fn new(now: SystemTime) -> Counters {
        Counters {
            gets: 0,
            posts: 0,
            errors: 0,
            timeout: 0,
            uri: Map::new(),
            clear: now,
        }
    }

    /// Counts a successful route answer for `path` (query already removed).
    pub fn hit(&mut self, path: &str) {
        self.gets += 1;
        // One lookup and no allocation for a path already counted (every request but the
        // first of each path).
        if let Some(Value::Int(n)) = self.uri.get_mut(path) {
            *n += 1;
            return;
        }
        let key = if self.uri.len() < URI_CAP {
            path
        } else {
            "other"
        };
        let n = self.uri.get(key).and_then(Value::as_i64).unwrap_or(0);
        self.uri.insert(key, n + 1);
    }
}

/// Shared request statistics.
pub struct Stats {
    pub counters: Mutex<Counters>,
    pub started: SystemTime,
    pub started_at: Instant,
}

impl Stats {
    pub fn new() -> Stats {
        let now = SystemTime::now();
        Stats {
            counters: Mutex::new(Counters::new(now)),
            started: now,
            started_at: Instant::now(),
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Counters) -> R) -> R {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut c)
    }
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new()
    }
}

/// Peak resident memory in KiB (the proxy's `ru_maxrss`), from `/proc/self/status`.
pub fn peak_rss_kib() -> i64 {
    proc_status_kib("VmHWM:")
}

/// Current resident memory in KiB.
pub fn rss_kib() -> i64 {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(field: &str) -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The `pypowerwall` value of `/stats` and `/health`.
pub fn version_label() -> String {
    format!("pypowerwall-server {}", env!("CARGO_PKG_VERSION"))
}

fn opt(v: &Option<String>) -> Value {
    v.as_deref().map(Value::from).unwrap_or(Value::Null)
}

/// The signature shared by [`stats`] and [`health`].
pub type Builder = fn(&Config, &Stats, Option<&View>, &[View]) -> Value;

/// `/stats`.
pub fn stats(cfg: &Config, stats: &Stats, view: Option<&View>, views: &[View]) -> Value {
    let s = &cfg.server;
    let now = SystemTime::now();
    let c = stats.with(|c| c.clone());
    let gw = cfg.gateways.get(cfg.default_gateway);
    let facade = view.map(|v| &v.facade);
    let (mode, tedapi_mode, tedapi, cloudmode, fleetapi) = view
        .map(|v| v.snapshot.mode)
        .or(gw.map(|g| g.mode))
        .map(|m| m.proxy_labels())
        .unwrap_or(("Unknown", "off", false, false, false));
    let mut m = Map::new()
        .with("pypowerwall", version_label())
        .with("mode", mode)
        .with("gets", c.gets as i64)
        .with("posts", c.posts as i64)
        .with("errors", c.errors as i64)
        .with("timeout", c.timeout as i64)
        .with("uri", Value::Object(c.uri.clone()))
        .with("ts", clock::unix_secs(now))
        .with("start", clock::unix_secs(stats.started))
        .with("clear", clock::unix_secs(c.clear))
        .with("uptime", clock::timedelta(stats.started_at.elapsed()))
        .with("mem", peak_rss_kib())
        .with(
            "site_name",
            facade.map(|f| opt(&f.site_name)).unwrap_or(Value::Null),
        )
        .with("cloudmode", cloudmode)
        .with("fleetapi", fleetapi)
        .with("tedapi", tedapi)
        .with("pw3", facade.is_some_and(|f| f.pw3))
        .with("tedapi_mode", tedapi_mode)
        .with(
            "tedapi_api_version",
            gw.map(|g| g.query_set.name()).unwrap_or("V2024_06"),
        )
        .with("siteid", opt(&s.siteid))
        .with("counter", 0)
        .with("cf", s.cache_file.as_str());
    // The proxy's keys in its order, secrets masked: one table, `config::KEYS`.
    let config = keys::stats(cfg);
    m.insert("config", Value::Object(config));
    m.insert("connection_health", connection_health(view, false));
    m.insert("fallback_mode", fallback_mode());
    m.insert(
        "mem_cache",
        Map::new()
            .with("error_counts", cache_entry(0, 0))
            .with("network_error_summary", cache_entry(0, 0))
            .with("degradation_cache", cache_entry(0, 0))
            .with("performance_cache", cache_entry(0, 0))
            .with("endpoint_stats", cache_entry(0, 0))
            .with("total_cache_bytes", 0)
            .with("total_cache_mb", 0.0),
    );
    // Ours, after the proxy's keys.
    m.insert("simulated", views.iter().any(|v| v.snapshot.simulated));
    m.insert("rss_kib", rss_kib());
    m.insert("gateways", gateway_states(views));
    Value::Object(m)
}

fn cache_entry(entries: i64, bytes: i64) -> Value {
    Map::new()
        .with("entries", entries)
        .with("size_bytes", bytes)
        .into()
}

fn fallback_mode() -> Value {
    Map::new()
        .with("is_fallback_mode", false)
        .with("fallback_since", Value::Null)
        .with("fallback_duration_seconds", Value::Null)
        .with("recovery_attempts", 0)
        .with("last_recovery_attempt", Value::Null)
        .with("recovery_enabled", true)
        .into()
}

fn connection_health(view: Option<&View>, age: bool) -> Value {
    let h = view.map(|v| v.snapshot.health.clone()).unwrap_or_default();
    let mut m = Map::new()
        .with("consecutive_failures", h.consecutive_failures as i64)
        .with("total_failures", h.total_failures as i64)
        .with("total_successes", h.total_successes as i64)
        .with("is_degraded", h.consecutive_failures >= 5)
        .with(
            "last_success_time",
            h.last_success
                .map(clock::unix_f64)
                .map(Value::Float)
                .unwrap_or(Value::Null),
        );
    if age {
        m.insert(
            "last_success_age_seconds",
            h.last_success
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map(|d| Value::Float(d.as_secs_f64()))
                .unwrap_or(Value::Null),
        );
    } else {
        m.insert("cache_size", view.map(|v| v.fresh as i64).unwrap_or(0));
    }
    Value::Object(m)
}

/// Per-gateway state list (ours; also used by `/health`).
pub fn gateway_states(views: &[View]) -> Value {
    Value::Array(
        views
            .iter()
            .map(|v| {
                let h = &v.snapshot.health;
                let t = |t: Option<SystemTime>| {
                    t.map(clock::unix_f64)
                        .map(Value::Float)
                        .unwrap_or(Value::Null)
                };
                Map::new()
                    .with("id", v.snapshot.id.as_str())
                    .with("name", v.snapshot.name.as_str())
                    .with("state", v.state.as_str())
                    .with("last_success", t(h.last_success))
                    .with("last_attempt", t(h.last_attempt))
                    .with("consecutive_failures", h.consecutive_failures as i64)
                    .with("next_retry", t(h.next_retry))
                    .with("last_error", opt(&h.last_error))
                    .into()
            })
            .collect(),
    )
}

/// `/health` `transports`, as the proxy lists them per mode.
fn transports(
    tedapi_mode: &str,
    tedapi: bool,
    status: &str,
    host: &str,
    gw: Option<&PublicGateway>,
    view: Option<&View>,
) -> Map {
    let entry = |host: &str| {
        Map::new()
            .with("active", true)
            .with("status", status)
            .with("host", host)
    };
    if tedapi_mode == "v1r" {
        let din = view
            .and_then(|v| v.facade.din.as_deref())
            .map(Value::from)
            .unwrap_or(Value::Null);
        let mut m = Map::new().with("v1r_lan", entry(host).with("leader_din", din));
        if let Some(wifi) = gw.and_then(|g| g.wifi_host.as_deref()) {
            m.insert("wifi_tedapi", entry(wifi));
        }
        m
    } else if tedapi {
        Map::new().with("wifi_tedapi", entry(host))
    } else {
        // Plain local and cloud modes have no transports (as the proxy).
        Map::new()
    }
}

/// `/health`.
pub fn health(cfg: &Config, stats: &Stats, view: Option<&View>, views: &[View]) -> Value {
    let c = stats.with(|c| c.clone());
    let status = match view.map(|v| v.state) {
        Some(State::Online) => "ok",
        Some(State::Stale) | Some(State::Cooldown) => "degraded",
        _ => "unavailable",
    };
    let gw = cfg.gateways.get(cfg.default_gateway);
    let host = gw.map(|g| g.host.as_str()).unwrap_or("");
    let (mode, tedapi_mode, tedapi, _, _) = view
        .map(|v| v.snapshot.mode)
        .or(gw.map(|g| g.mode))
        .map(|m| m.proxy_labels())
        .unwrap_or(("Unknown", "off", false, false, false));
    let mut m = Map::new()
        .with("pypowerwall", version_label())
        .with("mode", mode)
        .with("tedapi_mode", tedapi_mode)
        .with(
            "pypowerwall_cache_expire",
            gw.map(|g| g.poll_interval.as_secs() as i64).unwrap_or(5),
        )
        .with("degradation_cache_ttl_seconds", cfg.server.cache_ttl as i64)
        .with(
            "graceful_degradation",
            cfg.server.legacy_flags.graceful_degradation,
        )
        .with("fail_fast_mode", cfg.server.legacy_flags.fail_fast)
        .with("health_check_enabled", cfg.server.legacy_flags.health_check)
        .with("startup_time", clock::iso_utc(stats.started, false))
        .with("current_time", clock::iso_utc(SystemTime::now(), true))
        .with(
            "transports",
            transports(tedapi_mode, tedapi, status, host, gw, view),
        )
        .with(
            "proxy_stats",
            Map::new()
                .with("total_gets", c.gets as i64)
                .with("total_posts", c.posts as i64)
                .with("total_errors", c.errors as i64)
                .with("total_timeouts", c.timeout as i64),
        )
        .with("connection_health", connection_health(view, true))
        .with("fallback_mode", fallback_mode());
    m.insert(
        "cached_data",
        Map::new()
            .with("cache_size", view.map(|v| v.fresh as i64).unwrap_or(0))
            .with("endpoints", Value::object()),
    );
    m.insert("status", overall(views));
    m.insert("gateways", gateway_states(views));
    Value::Object(m)
}

/// `healthy` when every gateway has fresh data, `degraded` when some do, else `unhealthy`.
pub fn overall(views: &[View]) -> &'static str {
    let fresh = views.iter().filter(|v| v.fresh).count();
    match fresh {
        0 if views.is_empty() => "no_gateways",
        0 => "unhealthy",
        n if n == views.len() => "healthy",
        _ => "degraded",
    }
}

/// `/health/reset`.
pub fn health_reset() -> Value {
    Map::new()
        .with("status", "reset_complete")
        .with("health_counters_reset", true)
        .with("cache_cleared", false)
        .with("cache_entries_removed", 0)
        .with("endpoint_stats_cleared", 0)
        .into()
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// `/help`: a self-refreshing statistics page; every value is escaped.
pub fn help(stats_doc: &Value) -> String {
    let mut rows = String::new();
    let mut config = String::new();
    let mut uris = String::new();
    if let Some(m) = stats_doc.as_object() {
        for (k, v) in m.iter() {
            match k.as_str() {
                "uri" => {
                    if let Some(u) = v.as_object() {
                        for (p, n) in u.iter() {
                            uris.push_str(&format!(
                                "<tr><td>URI: {}</td><td>{}</td></tr>\n",
                                html_escape(p),
                                html_escape(&n.to_py())
                            ));
                        }
                    }
                }
                "config" => {
                    if let Some(c) = v.as_object() {
                        for (ck, cv) in c.iter() {
                            config.push_str(&format!(
                                "<tr><td>{}</td><td>{}</td></tr>\n",
                                html_escape(ck),
                                html_escape(&cv.to_py())
                            ));
                        }
                    }
                }
                _ => rows.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td></tr>\n",
                    html_escape(k),
                    html_escape(&match v {
                        Value::Str(s) => s.clone(),
                        other => other.to_py(),
                    })
                )),
            }
        }
    }
    format!(
        "<html>\n<head><meta http-equiv=\"refresh\" content=\"5\" />\n<title>pyPowerwall [{ver}] Proxy [rs]</title>\n\
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} td{{border:1px solid #ccc;padding:2px 6px}}</style></head>\n\
<body>\n<h2>pyPowerwall [{ver}] Proxy [rs]</h2>\n<p>Routes and migration notes: README.md</p>\n\
<table>\n{rows}{uris}</table>\n<details id=\"config\"><summary>Configuration</summary>\n<table>\n{config}</table>\n</details>\n\
<script>const d=document.getElementById('config');d.open=localStorage.getItem('cfg')==='1';d.ontoggle=()=>localStorage.setItem('cfg',d.open?'1':'0');</script>\n\
</body>\n</html>\n",
        ver = env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_counter_caps_at_100_paths() {
        let mut c = Counters::new(SystemTime::now());
        for i in 0..150 {
            c.hit(&format!("/p{i}"));
        }
        c.hit("/p1");
        assert_eq!(c.uri.len(), 101);
        assert_eq!(c.uri.get("other"), Some(&Value::Int(50)));
        assert_eq!(c.uri.get("/p1"), Some(&Value::Int(2)));
        assert_eq!(c.gets, 151);
    }

    #[test]
    fn help_escapes_everything() {
        let doc = Map::new()
            .with("uri", Map::new().with("/<script>alert(1)</script>", 1))
            .with("config", Map::new().with("PW_EMAIL", "<b>x</b>"));
        let page = help(&Value::Object(doc));
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<b>x</b>"));
    }
}
