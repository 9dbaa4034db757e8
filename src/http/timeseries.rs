//! `/api/timeseries/*`: the energy history in pypowerwall-server 0.13.0's shapes (same keys and
//! types, so its users' scripts and the History page keep working), plus CSV.
//!
//! Every route reads the frozen recorder copies the pollers publish once per step
//! (`history::Published`), never a live recorder, and keeps what it rendered in a small cache
//! keyed by the query and the publication numbers of the gateways it read: a body is rendered
//! once per step, not per request. `?gateway=<id>` picks one gateway (unknown: 404); without it
//! every gateway counts and "All sites" sums come from `history::merge_daily` and
//! `history::merge_points`. Bad parameters answer 422 in FastAPI's error shape; counts a client
//! gives are clamped, so nothing it sends sizes an allocation.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::router::{Answer, Req};
use crate::history::{self, DayEnergy, Flow, Point, Published};
use crate::json::{Map, Value};
use crate::render::Body;

/// Most cached bytes; the oldest bodies go first.
const CACHE_BYTES: usize = 8 << 20;
/// Points a trend aims at (the Python server's ~360).
const TREND_POINTS: usize = 360;

/// Rendered bodies: (key, body), oldest first.
#[derive(Default)]
pub struct Cache {
    bodies: Mutex<Vec<(String, Body)>>,
}

impl Cache {
    fn get_or(&self, key: String, make: impl FnOnce() -> Body) -> Body {
        {
            let c = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, b)) = c.iter().find(|(k, _)| *k == key) {
                return b.clone();
            }
        }
        let body = make();
        let mut c = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        let mut total: usize = c.iter().map(|(_, b)| b.bytes.len()).sum();
        while !c.is_empty() && total + body.bytes.len() > CACHE_BYTES {
            total -= c.remove(0).1.bytes.len();
        }
        if body.bytes.len() <= CACHE_BYTES {
            c.push((key, body.clone()));
        }
        body
    }
}

/// The route being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Today,
    Daily,
    Trend,
    Samples,
    Status,
}

pub fn today(req: &Req<'_>) -> Answer {
    answer(req, Kind::Today)
}

pub fn daily(req: &Req<'_>) -> Answer {
    answer(req, Kind::Daily)
}

pub fn trend(req: &Req<'_>) -> Answer {
    answer(req, Kind::Trend)
}

pub fn samples(req: &Req<'_>) -> Answer {
    answer(req, Kind::Samples)
}

pub fn status(req: &Req<'_>) -> Answer {
    answer(req, Kind::Status)
}

/// One gateway's published history.
struct Site {
    id: String,
    name: String,
    series: Arc<Published>,
}

/// The parsed query.
#[derive(Debug, Default)]
struct Query {
    gateway: Option<String>,
    csv: bool,
    days: Option<i64>,
    hours: Option<i64>,
    limit: Option<i64>,
    points: Option<i64>,
    start: Option<String>,
    end: Option<String>,
}

/// A 422 in FastAPI's validation-error shape.
fn invalid(name: &str, msg: &str) -> Answer {
    let detail = Map::new()
        .with(
            "loc",
            Value::Array(vec![Value::from("query"), Value::from(name)]),
        )
        .with("msg", msg)
        .with("type", "value_error");
    let body = Map::new().with("detail", Value::Array(vec![detail.into()]));
    Answer::json(422, Value::Object(body).to_py())
}

/// `%XX` and `+` decoded; invalid escapes stay as they are.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Result<Query, Answer> {
    let mut out = Query::default();
    let int = |name: &str, v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| invalid(name, "value is not a valid integer"))
    };
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v);
        match k {
            "gateway" if !v.is_empty() => out.gateway = Some(v),
            "format" => match v.as_str() {
                "csv" => out.csv = true,
                "json" | "" => out.csv = false,
                _ => return Err(invalid("format", "must be json or csv")),
            },
            "days" => out.days = Some(int("days", &v)?),
            "hours" => out.hours = Some(int("hours", &v)?),
            "limit" => out.limit = Some(int("limit", &v)?),
            "points" => out.points = Some(int("points", &v)?),
            "start" if !v.is_empty() => out.start = Some(v),
            "end" if !v.is_empty() => out.end = Some(v),
            _ => {}
        }
    }
    Ok(out)
}

/// A Unix time parameter (finite, 0..=2100-01-01).
fn epoch(name: &str, v: Option<&str>) -> Result<Option<f64>, Answer> {
    match v {
        None => Ok(None),
        Some(s) => match s.trim().parse::<f64>() {
            Ok(t) if t.is_finite() && (0.0..=4_102_444_800.0).contains(&t) => Ok(Some(t)),
            _ => Err(invalid(name, "must be a Unix time in seconds")),
        },
    }
}

fn day_param(name: &str, v: Option<&str>) -> Result<Option<history::Day>, Answer> {
    match v {
        None => Ok(None),
        Some(s) => history::parse_date(s.trim())
            .map(Some)
            .ok_or_else(|| invalid(name, "must be a valid YYYY-MM-DD date")),
    }
}

fn answer(req: &Req<'_>, kind: Kind) -> Answer {
    let q = match parse_query(req.query) {
        Ok(q) => q,
        Err(a) => return a,
    };
    if q.csv && kind == Kind::Status {
        return invalid("format", "/status is JSON only");
    }
    let views = req.views();
    let all: Vec<Site> = views
        .iter()
        .filter_map(|v| {
            v.snapshot.series.clone().map(|series| Site {
                id: v.snapshot.id.clone(),
                name: v.snapshot.name.clone(),
                series,
            })
        })
        .collect();
    let sites: Vec<&Site> = match &q.gateway {
        Some(id) => match all.iter().find(|s| s.id == *id) {
            Some(s) => vec![s],
            None => {
                let ids: Vec<Value> = all.iter().map(|s| Value::from(s.id.as_str())).collect();
                let body = Map::new()
                    .with("error", "unknown gateway id")
                    .with("gateways", ids);
                return Answer::json(404, Value::Object(body).to_py());
            }
        },
        None => all.iter().collect(),
    };
    // Validate before the cache (a 422 is never cached).
    let now = crate::clock::unix_f64(SystemTime::now());
    let rendered = match kind {
        Kind::Today => Ok(None),
        Kind::Daily => daily_range(&q).map(Some),
        Kind::Trend => trend_range(&q, now).map(|r| Some((r.0 as i64, r.1 as i64))),
        Kind::Samples => epoch("start", q.start.as_deref())
            .and(epoch("end", q.end.as_deref()))
            .map(|_| None),
        Kind::Status => Ok(None),
    };
    if let Err(a) = rendered {
        return a;
    }
    let seqs: Vec<String> = sites.iter().map(|s| s.series.seq.to_string()).collect();
    let key = format!("{kind:?}|{}|{}", seqs.join(","), req.query);
    let body = req.ctx.timeseries.get_or(key, || match kind {
        Kind::Today => render_today(&sites, &q, now),
        Kind::Daily => render_daily(&sites, &q, now),
        Kind::Trend => render_trend(&sites, &q, now),
        Kind::Samples => render_samples(&sites, &q),
        Kind::Status => render_status(&sites),
    });
    Answer::route(&body)
}

/// `?start=&end=` (dates) or `?days=` (1..=1000, default 7) as a day range, or `None` for
/// "the last `days` days".
fn daily_range(q: &Query) -> Result<(i64, i64), Answer> {
    let start = day_param("start", q.start.as_deref())?;
    let end = day_param("end", q.end.as_deref())?;
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(invalid("start", "must not be after end"));
        }
    }
    Ok((
        start.map_or(i64::MIN, i64::from),
        end.map_or(i64::MAX, i64::from),
    ))
}

/// `?start=&end=` (Unix seconds) or `?hours=` (1..=17520, default 24) ending now.
fn trend_range(q: &Query, now: f64) -> Result<(f64, f64), Answer> {
    let start = epoch("start", q.start.as_deref())?;
    let end = epoch("end", q.end.as_deref())?.unwrap_or(now);
    let hours = q.hours.unwrap_or(24).clamp(1, 2 * 366 * 24);
    let start = start.unwrap_or(end - hours as f64 * 3600.0);
    if start > end {
        return Err(invalid("start", "must not be after end"));
    }
    Ok((start, end))
}

fn round(v: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v * k).round() / k
}

const DAY_FLOWS: [(Flow, &str); 6] = [
    (Flow::Solar, "solar_kwh"),
    (Flow::Home, "home_kwh"),
    (Flow::BatteryCharge, "battery_charge_kwh"),
    (Flow::BatteryDischarge, "battery_discharge_kwh"),
    (Flow::GridImport, "grid_import_kwh"),
    (Flow::GridExport, "grid_export_kwh"),
];

/// One gateway's (or the total's) day, as the Python server writes it, plus where each
/// flow's energy came from and the self-powered share.
fn day_row(id: &str, d: &DayEnergy, updated: f64) -> Value {
    let mut m = Map::new()
        .with("gateway_id", id)
        .with("day", d.date.as_str());
    for (f, name) in DAY_FLOWS {
        m.insert(name, round(d.kwh(f), 6));
    }
    let last = d.last_ts.map(|t| Value::Float(t as f64));
    m.insert("last_sample_ts", last.unwrap_or(Value::Null));
    m.insert("updated_at", updated);
    let (mut src, mut integral) = (Map::new(), Map::new());
    for f in Flow::ALL {
        src.insert(f.name(), d.source[f as usize].as_str());
        integral.insert(f.name(), round(d.integral_wh[f as usize] / 1000.0, 6));
    }
    m.insert("source", src);
    // The power samples' integral beside the counters' result, to compare.
    m.insert("integral_kwh", integral);
    m.insert(
        "self_powered_pct",
        d.self_powered_pct().map(|v| round(v, 1)),
    );
    m.insert("counter_reset", d.counter_reset);
    m.insert("gap", d.gap);
    m.into()
}

fn csv_days(rows: &[(String, DayEnergy)]) -> Body {
    let mut out = String::from("day,gateway_id");
    for (_, name) in DAY_FLOWS {
        out.push(',');
        out.push_str(name);
    }
    out.push_str(",self_powered_pct\n");
    for (id, d) in rows {
        out.push_str(&format!("{},{}", d.date, csv_field(id)));
        for (f, _) in DAY_FLOWS {
            out.push_str(&format!(",{}", round(d.kwh(f), 6)));
        }
        let sp = d.self_powered_pct().map(|v| round(v, 1).to_string());
        out.push_str(&format!(",{}\n", sp.unwrap_or_default()));
    }
    Body::csv(out)
}

/// Ids are URL-safe, but a name is never trusted in a CSV cell.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn render_today(sites: &[&Site], q: &Query, now: f64) -> Body {
    let days: Vec<DayEnergy> = sites
        .iter()
        .map(|s| s.series.rec.today(now as i64))
        .collect();
    let total = history::merge_daily(&days.iter().map(|d| vec![d.clone()]).collect::<Vec<_>>());
    if q.csv {
        let mut rows: Vec<(String, DayEnergy)> = sites
            .iter()
            .zip(&days)
            .map(|(s, d)| (s.id.clone(), d.clone()))
            .collect();
        if sites.len() > 1 {
            rows.extend(total.into_iter().map(|d| ("all".to_string(), d)));
        }
        return csv_days(&rows);
    }
    let mut gateways = Map::new();
    for (s, d) in sites.iter().zip(&days) {
        if d.last_ts.is_some() {
            gateways.insert(s.id.as_str(), day_row(&s.id, d, now));
        }
    }
    let total = total
        .first()
        .map(|d| day_row("all", d, now))
        .unwrap_or(Value::Null);
    let m = Map::new()
        .with("enabled", true)
        .with("gateways", gateways)
        .with("server_time", now)
        .with("total", total);
    Body::json(Value::Object(m).to_py())
}

fn render_daily(sites: &[&Site], q: &Query, now: f64) -> Body {
    let (start, end) = daily_range(q).unwrap_or((i64::MIN, i64::MAX));
    let days = q.days.unwrap_or(7).clamp(1, 1000);
    let per: Vec<Vec<DayEnergy>> = sites
        .iter()
        .map(|s| {
            let rec = &s.series.rec;
            if start == i64::MIN && end == i64::MAX {
                rec.last_days(now as i64, days as u32)
            } else {
                let last = if end == i64::MAX {
                    i64::from(rec.zone().day_of(now as i64))
                } else {
                    end
                };
                let first = if start == i64::MIN {
                    last - days + 1
                } else {
                    start
                };
                let clamp = |d: i64| d.clamp(i64::from(i32::MIN) + 1, i64::from(i32::MAX)) as i32;
                rec.daily(clamp(first), clamp(last))
            }
        })
        .collect();
    let total = history::merge_daily(&per);
    if q.csv {
        let mut rows: Vec<(String, DayEnergy)> = Vec::new();
        for d in total.iter().rev() {
            for (s, list) in sites.iter().zip(&per) {
                if let Some(x) = list.iter().find(|x| x.day == d.day) {
                    rows.push((s.id.clone(), x.clone()));
                }
            }
            if sites.len() > 1 {
                rows.push(("all".to_string(), d.clone()));
            }
        }
        return csv_days(&rows);
    }
    let mut last_updated: Option<i64> = None;
    let list: Vec<Value> = total
        .iter()
        .rev()
        .map(|d| {
            let mut gateways = Map::new();
            for (s, l) in sites.iter().zip(&per) {
                if let Some(x) = l.iter().find(|x| x.day == d.day) {
                    last_updated = last_updated.max(x.last_ts);
                    gateways.insert(s.id.as_str(), day_row(&s.id, x, now));
                }
            }
            Map::new()
                .with("day", d.date.as_str())
                .with("gateways", gateways)
                .with("total", day_row("all", d, now))
                .into()
        })
        .collect();
    let m = Map::new().with("enabled", true).with("days", list).with(
        "last_updated",
        last_updated
            .map(|t| Value::Float(t as f64))
            .unwrap_or(Value::Null),
    );
    Body::json(Value::Object(m).to_py())
}

fn kw(w: f64) -> f64 {
    round(w / 1000.0, 4)
}

fn soe(p: &Point) -> Value {
    p.soe_app()
        .map(|v| Value::Float(round(v, 2)))
        .unwrap_or(Value::Null)
}

fn render_trend(sites: &[&Site], q: &Query, now: f64) -> Body {
    let (start, end) = trend_range(q, now).unwrap_or((now - 86_400.0, now));
    let max = q.points.unwrap_or(TREND_POINTS as i64).clamp(1, 2000) as usize;
    let parts: Vec<history::Trend> = sites
        .iter()
        .map(|s| {
            s.series
                .rec
                .trend(start.floor() as i64, end.ceil() as i64, max)
        })
        .collect();
    let bucket = parts.iter().map(|t| t.bucket_seconds).max().unwrap_or(0);
    let points = history::merge_points(&parts.into_iter().map(|t| t.points).collect::<Vec<_>>());
    if q.csv {
        let mut out = String::from("ts,solar_kw,home_kw,battery_kw,grid_kw,battery_level\n");
        for p in &points {
            out.push_str(&format!(
                "{},{},{},{},{},{}\n",
                p.ts,
                kw(p.flow(Flow::Solar)),
                kw(p.flow(Flow::Home)),
                kw(p.battery_w()),
                kw(p.grid_w()),
                p.soe_app()
                    .map(|v| round(v, 2).to_string())
                    .unwrap_or_default()
            ));
        }
        return Body::csv(out);
    }
    let last = points.last().map(|p| (p.ts + p.seconds) as f64);
    let list: Vec<Value> = points
        .iter()
        .map(|p| {
            Map::new()
                .with("ts", p.ts as f64)
                .with("solar_kw", kw(p.flow(Flow::Solar)))
                .with("home_kw", kw(p.flow(Flow::Home)))
                .with("battery_kw", kw(p.battery_w()))
                .with("grid_kw", kw(p.grid_w()))
                .with("battery_level", soe(p))
                .into()
        })
        .collect();
    let hours = ((end - start) / 3600.0).round() as i64;
    let m = Map::new()
        .with("enabled", true)
        .with("hours", hours)
        .with("bucket_seconds", bucket as f64)
        .with("start", start)
        .with("end", end)
        .with("count", list.len())
        .with("points", list)
        .with(
            "last_updated",
            last.map(Value::Float).unwrap_or(Value::Null),
        );
    Body::json(Value::Object(m).to_py())
}

const SAMPLE_FLOWS: [(Flow, &str); 6] = [
    (Flow::Solar, "solar_w"),
    (Flow::Home, "home_w"),
    (Flow::BatteryCharge, "battery_charge_w"),
    (Flow::BatteryDischarge, "battery_discharge_w"),
    (Flow::GridImport, "grid_import_w"),
    (Flow::GridExport, "grid_export_w"),
];

fn render_samples(sites: &[&Site], q: &Query) -> Body {
    let limit = q.limit.unwrap_or(500).clamp(1, 10_000) as usize;
    let start = epoch("start", q.start.as_deref()).ok().flatten();
    let end = epoch("end", q.end.as_deref()).ok().flatten();
    let mut rows: Vec<(&str, Point)> = Vec::new();
    for s in sites {
        let pts = s.series.rec.samples(usize::MAX);
        rows.extend(
            pts.into_iter()
                .filter(|p| start.is_none_or(|t| p.ts as f64 >= t))
                .filter(|p| end.is_none_or(|t| (p.ts as f64) <= t))
                .map(|p| (s.id.as_str(), p)),
        );
    }
    rows.sort_by_key(|(_, p)| p.ts);
    rows.drain(..rows.len().saturating_sub(limit));
    if q.csv {
        let mut out = String::from("gateway_id,ts");
        for (_, name) in SAMPLE_FLOWS {
            out.push(',');
            out.push_str(name);
        }
        out.push_str(",soe\n");
        for (id, p) in &rows {
            out.push_str(&format!("{},{}", csv_field(id), p.ts));
            for (f, _) in SAMPLE_FLOWS {
                out.push_str(&format!(",{}", p.flow(f)));
            }
            let s = p.soe_app().map(|v| round(v, 2).to_string());
            out.push_str(&format!(",{}\n", s.unwrap_or_default()));
        }
        return Body::csv(out);
    }
    let list: Vec<Value> = rows
        .iter()
        .map(|(id, p)| {
            let mut m = Map::new().with("gateway_id", *id).with("ts", p.ts as f64);
            for (f, name) in SAMPLE_FLOWS {
                m.insert(name, p.flow(f));
            }
            m.insert("soe", soe(p));
            m.into()
        })
        .collect();
    let m = Map::new()
        .with("enabled", true)
        .with("count", list.len())
        .with("samples", list);
    Body::json(Value::Object(m).to_py())
}

fn render_status(sites: &[&Site]) -> Body {
    let st: Vec<&history::Status> = sites.iter().map(|s| &s.series.status).collect();
    let first = st.first();
    let retention = first
        .and_then(|s| s.archives.first())
        .map_or(0, |a| a.keep * a.slot_seconds);
    let daily_retention = first.map_or(0, |s| s.days_capacity as i64 * 86_400);
    let db_file = first
        .and_then(|s| s.path.as_ref())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let db_size: u64 = st
        .iter()
        .filter(|s| s.path.is_some())
        .map(|s| s.file_bytes)
        .sum();
    let samples: usize = st
        .iter()
        .filter_map(|s| s.archives.first())
        .map(|a| a.filled)
        .sum();
    let mut names = Map::new();
    let mut storage = Map::new();
    for s in sites {
        names.insert(s.id.as_str(), s.name.as_str());
        storage.insert(s.id.as_str(), storage_value(&s.series));
    }
    let sum = |f: fn(&history::Status) -> u64| st.iter().map(|s| f(s)).sum::<u64>();
    let m = Map::new()
        .with("enabled", true)
        .with("retention_seconds", retention)
        .with("daily_retention_seconds", daily_retention)
        .with("db_file", db_file)
        .with("db_size_bytes", db_size as i64)
        .with("samples", samples)
        .with("daily_rows", st.iter().map(|s| s.days).sum::<usize>())
        .with("signals_enabled", false)
        .with("signal_retention_seconds", 0)
        .with("signal_interval_seconds", 60)
        .with("signal_series", 0)
        .with("signal_samples", 0)
        .with("signal_daily_rows", 0)
        .with("write_failures", sum(|s| s.write_failures) as i64)
        .with("writes_pending", sum(|s| s.dirty_pages as u64) as i64)
        .with("write_rejections", 0)
        .with(
            "gateways",
            Value::Array(sites.iter().map(|s| Value::from(s.id.as_str())).collect()),
        )
        .with("gateway_names", names)
        .with("simulated", sites.iter().any(|s| s.series.simulated))
        .with("storage", storage);
    Body::json(Value::Object(m).to_py())
}

/// Our storage details of one gateway (not in the Python server's answer).
fn storage_value(p: &Published) -> Value {
    let s = &p.status;
    let opt_i = |v: Option<i64>| v.map(Value::Int).unwrap_or(Value::Null);
    let archives: Vec<Value> = s
        .archives
        .iter()
        .map(|a| {
            Map::new()
                .with("slot_seconds", a.slot_seconds)
                .with("slots", a.ring)
                .with("filled", a.filled)
                .with("oldest_ts", opt_i(a.oldest_ts))
                .with("newest_ts", opt_i(a.newest_ts))
                .into()
        })
        .collect();
    let day = |d: Option<history::Day>| {
        d.map(|d| Value::from(history::date_string(d)))
            .unwrap_or(Value::Null)
    };
    Map::new()
        .with("simulated", p.simulated)
        .with(
            "path",
            s.path
                .as_ref()
                .map(|p| Value::from(p.display().to_string()))
                .unwrap_or(Value::Null),
        )
        .with("persisted", s.persisted)
        .with("file_bytes", s.file_bytes as i64)
        .with("heap_bytes", s.heap_bytes)
        .with("zone", s.zone.as_str())
        .with("step_seconds", s.step)
        .with("archives", archives)
        .with("days", s.days)
        .with("days_capacity", s.days_capacity)
        .with("first_day", day(s.first_day))
        .with("last_day", day(s.last_day))
        .with(
            "last_sample_ts",
            s.last_sample_ts.map(Value::Float).unwrap_or(Value::Null),
        )
        .with("dirty_pages", s.dirty_pages)
        .with("flushes", s.flushes as i64)
        .with("page_writes", s.page_writes as i64)
        .with("write_failures", s.write_failures as i64)
        .with(
            "last_error",
            s.last_error
                .as_deref()
                .map(Value::from)
                .unwrap_or(Value::Null),
        )
        .with(
            "open_problems",
            Value::Array(
                s.open_problems
                    .iter()
                    .map(|p| Value::from(p.as_str()))
                    .collect(),
            ),
        )
        .into()
}
