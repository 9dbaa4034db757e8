//! The aggregate routes of the Python pypowerwall-server (0.13.0) that ours has no shape for:
//! `GET /api/aggregate` (its whole aggregate object), `/api/aggregate/battery`, and the
//! per-gateway maps `/api/aggregate/{strings,alerts,vitals}` — so its users' scripts and
//! Telegraf inputs keep working. Keys and JSON types follow its answers
//! (`../shared/peer/pypowerwall-server-0.13.0/`); values come from the same snapshot and site
//! total as our own aggregate routes, built once per hub change and only when asked for.

use std::time::SystemTime;

use crate::clock;
use crate::config::{Mode, PublicGateway};
use crate::json::{Map, Value};
use crate::render::summary::app_scale;
use crate::render::{Body, Summary};
use crate::snapshot::{State, View};

/// The bodies, rendered together the first time one is asked for.
pub struct PeerBodies {
    pub root: Body,
    pub battery: Body,
    pub strings: Body,
    pub alerts: Body,
    pub vitals: Body,
}

/// 0.13.0 prints its totals as floats, 0.0 when nothing contributes.
fn float(v: Option<f64>) -> Value {
    Value::Float(v.unwrap_or(0.0))
}

fn opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map(Into::into).unwrap_or(Value::Null)
}

fn list(v: Value) -> Value {
    if matches!(v, Value::Array(_)) {
        v
    } else {
        Value::Null
    }
}

fn object(v: Value) -> Value {
    if matches!(v, Value::Object(_)) {
        v
    } else {
        Value::Null
    }
}

fn unix(t: Option<SystemTime>) -> Value {
    t.map(|t| Value::Float(clock::unix_f64(t)))
        .unwrap_or(Value::Null)
}

/// Its `gateway` object: what the configuration says about a gateway.
fn gateway_info(v: &View, cfg: Option<&PublicGateway>) -> Value {
    let s = &v.snapshot;
    let mode = s.mode;
    Map::new()
        .with("id", s.id.as_str())
        .with("name", s.name.as_str())
        .with("host", s.host.as_str())
        .with("port", Value::Null)
        .with(
            "rsa_key_configured",
            matches!(mode, Mode::V1r | Mode::V1rWifi),
        )
        .with("wifi_host", opt(cfg.and_then(|c| c.wifi_host.as_deref())))
        .with("site_id", Value::Null)
        .with("timezone", opt(cfg.and_then(|c| c.timezone.as_deref())))
        .with("basic_lan", mode == Mode::Local)
        .with("tedapi_expected", mode == Mode::Tedapi)
        .with("cloud_mode", matches!(mode, Mode::Cloud | Mode::FleetApi))
        .with("fleetapi", mode == Mode::FleetApi)
        .with(
            "type",
            if s.solar_only {
                "inverter"
            } else {
                "powerwall"
            },
        )
        .with("online", v.state == State::Online)
        .with("last_error", opt(s.health.last_error.as_deref()))
        .into()
}

/// `pw.vitals()` without the proxy's `VITALS` header entry (0.13.0 has only the devices).
fn devices(f: &crate::gateway::facade::Facade) -> Option<Value> {
    let vitals = f.vitals()?;
    let Value::Object(m) = &vitals else {
        return Some(vitals);
    };
    let mut out = Map::new();
    for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "VITALS") {
        out.insert(k.as_str(), v.clone());
    }
    Some(out.into())
}

/// Its `data` object: the gateway's last good poll in the library calls' shapes.
fn gateway_data(v: &View) -> Value {
    let f = &v.facade;
    let api = |uri: &str| f.api(uri).cloned().unwrap_or(Value::Null);
    let summary = v.snapshot.good.as_ref().map(|g| &g.summary);
    let status = f.status.clone();
    let device_type = status
        .as_ref()
        .and_then(|s| s.get("device_type"))
        .cloned()
        .unwrap_or(Value::Null);
    let cloud = matches!(v.snapshot.mode, Mode::Cloud | Mode::FleetApi);
    Map::new()
        .with("vitals", opt(devices(f)))
        .with("strings", opt(f.strings.clone()))
        .with("aggregates", api("/api/meters/aggregates"))
        .with(
            "alerts",
            opt(f
                .alerts
                .as_ref()
                .map(|a| Value::Array(a.iter().map(|s| Value::from(s.as_str())).collect()))),
        )
        .with("temps", opt(f.temps.clone()))
        .with("grid_status", opt(summary.and_then(|s| s.grid_status)))
        .with("grid_status_detail", opt(f.grid_status.clone()))
        .with("reserve", opt(f.reserve))
        .with("time_remaining", opt(f.time_remaining))
        .with("system_status", opt(f.system_status.clone()))
        .with("fan_speeds", opt(f.fans.clone()))
        // The canned TEDAPI answers include placeholders ("TIMEOUT!"): data or null.
        .with("networks", list(api("/api/networks")))
        .with("powerwalls", object(api("/api/powerwalls")))
        .with("meters", list(api("/api/meters")))
        .with("solars", list(api("/api/solars")))
        .with("solar_powerwall", object(api("/api/solar_powerwall")))
        .with("soe_raw", opt(f.level))
        .with("soe", opt(f.level.map(app_scale)))
        .with("freq", Value::Null)
        .with("din", opt(f.din.as_deref()))
        .with("uptime", opt(f.uptime.as_deref()))
        .with("version", opt(f.version.as_deref()))
        .with("status", opt(status))
        .with("device_type", device_type)
        .with("site_name", opt(f.site_name.as_deref()))
        .with("site_info", api("/api/site_info"))
        .with("mode", opt(f.mode.as_deref()))
        .with("grid_charging", opt(f.grid_charging))
        .with("grid_export", opt(f.grid_export.as_deref()))
        .with("pw3", f.pw3)
        .with(
            "tedapi_mode",
            match v.snapshot.mode {
                Mode::Tedapi => Value::from("full"),
                Mode::V1r | Mode::V1rWifi => Value::from("v1r"),
                _ => Value::Null,
            },
        )
        .with("connection_mode", if cloud { "Cloud" } else { "Local" })
        .with("tedapi_config", Value::Null)
        .with("timestamp", unix(v.snapshot.health.last_success))
        .into()
}

/// A map of gateway id → `pick(view)` over the gateways that have data.
fn per_gateway(views: &[View], pick: impl Fn(&View) -> Value) -> Body {
    let mut m = Map::new();
    for v in views.iter().filter(|v| v.fresh) {
        m.insert(v.snapshot.id.as_str(), pick(v));
    }
    Body::json(Value::from(m).to_py())
}

/// The bodies from `views` and the site total (the one `/api/aggregate/*` use).
pub fn build(views: &[View], total: &Summary, config: &[PublicGateway]) -> PeerBodies {
    let now = clock::unix_f64(SystemTime::now());
    let online = views.iter().filter(|v| v.state == State::Online).count() as i64;
    let degraded = views
        .iter()
        .filter(|v| v.fresh && v.state != State::Online)
        .count() as i64;
    let mut gateways = Map::new();
    for v in views.iter().filter(|v| v.fresh) {
        gateways.insert(
            v.snapshot.id.as_str(),
            Map::new()
                .with(
                    "gateway",
                    gateway_info(v, config.iter().find(|c| c.id == v.snapshot.id)),
                )
                .with("data", gateway_data(v))
                .with("online", v.state == State::Online)
                .with("last_updated", unix(v.snapshot.health.last_success))
                .with("error", opt(v.snapshot.health.last_error.as_deref())),
        );
    }
    let root = Map::new()
        .with("total_battery_percent_raw", float(total.soe))
        .with("total_battery_percent", float(total.soe.map(app_scale)))
        .with("total_battery_capacity", float(total.full_pack_energy))
        .with("total_site_power", float(total.site))
        .with("total_battery_power", float(total.battery))
        .with("total_load_power", float(total.load))
        .with("total_solar_power", float(total.solar))
        .with("total_grid_power", float(total.site))
        .with("grid_status", opt(total.grid_status))
        .with("num_gateways", views.len() as i64)
        .with("num_online", online)
        .with("num_degraded", degraded)
        .with("gateways", gateways)
        .with("timestamp", now);
    let battery = Map::new()
        .with("total_capacity", float(total.full_pack_energy))
        .with("battery_percent", float(total.soe.map(app_scale)))
        .with("battery_percent_raw", float(total.soe))
        .with("battery_power", float(total.battery))
        .with("num_gateways", views.len() as i64)
        .with("num_online", online)
        .with("timestamp", now);
    PeerBodies {
        root: Body::json(Value::from(root).to_py()),
        battery: Body::json(Value::from(battery).to_py()),
        strings: per_gateway(views, |v| {
            v.facade
                .strings
                .clone()
                .unwrap_or_else(|| Value::from(Map::new()))
        }),
        alerts: per_gateway(views, |v| {
            Value::Array(
                v.facade
                    .alerts
                    .iter()
                    .flatten()
                    .map(|s| Value::from(s.as_str()))
                    .collect(),
            )
        }),
        vitals: per_gateway(views, |v| {
            devices(&v.facade).unwrap_or_else(|| Value::from(Map::new()))
        }),
    }
}
