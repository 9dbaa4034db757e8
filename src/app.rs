//! Wiring: configuration in, a running server (pollers + HTTP + optional simulator) out.
//!
//! `main` and the integration tests both start the product through [`start`], so tests run the
//! same code path users do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, GatewayConfig, HttpsMode};
use crate::gateway::queries::QuerySet;
use crate::http::api::Aggregates;
use crate::http::router::Ctx;
use crate::http::server::{self, Running};
use crate::http::status::Stats;
use crate::http::ws::{self, WsHub, WsSettings};
use crate::poll::{self, Pollers};
use crate::sim;
use crate::snapshot::{GatewaySnapshot, Health, Hub};
use crate::wire::tls;

/// The gateway password the demo simulator is started with.
const DEMO_PASSWORD: &str = "DEMO-PASSWORD";

/// A running server.
pub struct App {
    pub http: Running,
    pub hub: Arc<Hub>,
    pub ctx: Arc<Ctx>,
    pollers: Option<Pollers>,
    broadcaster: std::thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
    mqtt: Option<crate::mqtt::Handle>,
    _sim: Option<sim::SimHandle>,
}

impl App {
    /// The address the HTTP server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.http.addr
    }

    /// Stops pollers and the HTTP server.
    pub fn stop(self) {
        if let Some(m) = self.mqtt {
            m.stop();
        }
        self.stop.store(true, Ordering::Relaxed);
        self.http.stop();
        self.ctx.ws.stop();
        let _ = self.broadcaster.join();
        if let Some(p) = self.pollers {
            p.join();
        }
    }

    /// Serves until SIGTERM or SIGINT, then stops cleanly: every poller flushes its history
    /// to disk before the process exits.
    pub fn wait(self) {
        install_signal_handlers();
        loop {
            if self.http.stopped_within(Duration::from_millis(200)) {
                return;
            }
            if SIGNALLED.load(Ordering::Relaxed) {
                log::info!("signal received: writing the history and stopping");
                self.stop();
                return;
            }
        }
    }
}

/// Set by the SIGTERM/SIGINT handler; [`App::wait`] polls it (a handler may do nothing more
/// than store to an atomic).
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
}

/// One history keeper per gateway: the recorder loaded from `PW_HISTORY_DIR` (or in memory),
/// its days in `PW_TIMEZONE` (else the gateway's own zone once known, else UTC); `--demo`'s
/// gateway gets a simulated week when it has no history yet.
fn keepers(cfg: &Config) -> Result<Vec<poll::Keeper>, String> {
    use crate::history::{file_path, HistoryError, Recorder, Spec, Storage, Zone};
    let h = &cfg.server.history;
    let now = crate::clock::unix_f64(std::time::SystemTime::now());
    if let Some(dir) = &h.dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            log::warn!("PW_HISTORY_DIR: cannot create {dir}: {e}");
        }
    }
    let zone = match &h.timezone {
        Some(name) => Zone::named(name).map_err(|e| format!("PW_TIMEZONE: {e}"))?,
        None => Zone::utc(),
    };
    let mut out = Vec::with_capacity(cfg.gateways.len());
    for g in &cfg.gateways {
        let storage = match &h.dir {
            Some(dir) => Storage::File(file_path(std::path::Path::new(dir), &g.id)),
            None => Storage::Memory,
        };
        // A gateway's own `timezone` (configuration file) comes before PW_TIMEZONE.
        let own = g.timezone.as_deref().and_then(|n| Zone::named(n).ok());
        let fixed = own.is_some() || h.timezone.is_some();
        let zone = own.unwrap_or_else(|| zone.clone());
        let no_memory = |e: HistoryError, had: usize| {
            format!(
                "gateway '{}': {e} ({had} of {} pollers had theirs; configure fewer gateways, \
                 a shorter history or raise the memory limit)",
                g.id,
                cfg.gateways.len()
            )
        };
        let mut rec = match Recorder::new(Spec::standard(h.step), storage, zone, now as i64) {
            Ok(rec) => rec,
            Err(e @ HistoryError::OutOfMemory { .. }) => return Err(no_memory(e, out.len())),
            Err(e) => return Err(format!("PW_HISTORY_STEP: {e}")),
        };
        if g.simulated && rec.status().last_sample_ts.is_none() {
            backfill(&mut rec, now);
        }
        let keeper = poll::Keeper::new(&g.id, rec, h.flush, fixed, g.simulated)
            .map_err(|e| no_memory(e, out.len()))?;
        out.push(keeper);
    }
    Ok(out)
}

/// A simulated week up to `now` for `--demo`, one sample a minute (or a step when longer).
fn backfill(rec: &mut crate::history::Recorder, now: f64) {
    let every = f64::from(rec.step()).max(60.0);
    for p in sim::past(now - 7.0 * 86_400.0, now - every, every) {
        rec.record(&crate::history::Sample {
            ts: p.ts,
            solar: Some(p.solar),
            home: Some(p.load),
            battery: Some(p.battery),
            grid: Some(p.load - p.solar - p.battery),
            soe: Some(p.soe),
            meters: [None; crate::history::FLOWS],
        });
    }
}

fn listen_addr(cfg: &Config) -> String {
    let host = match cfg.server.bind.as_str() {
        "" => "0.0.0.0",
        h => h,
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", cfg.server.port)
    } else {
        format!("{host}:{}", cfg.server.port)
    }
}

fn https_config(cfg: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    if cfg.server.https != HttpsMode::Yes {
        return Ok(None);
    }
    let (cert, key) = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
        (Some(c), Some(k)) => (
            std::fs::read(c).map_err(|e| format!("PW_TLS_CERT: cannot read '{c}': {e}"))?,
            std::fs::read(k).map_err(|e| format!("PW_TLS_KEY: cannot read '{k}': {e}"))?,
        ),
        (None, None) => {
            log::info!("PW_HTTPS=yes without PW_TLS_CERT/PW_TLS_KEY: using a fresh self-signed certificate");
            let (c, k) = tls::self_signed(&["localhost", "pypowerwall"])?;
            (c.into_bytes(), k.into_bytes())
        }
        _ => return Err("PW_TLS_CERT and PW_TLS_KEY must be given together".into()),
    };
    tls::server_config_from_pem(&cert, &key).map(Some)
}

/// Starts everything the configuration asks for.
pub fn start(mut cfg: Config) -> Result<App, String> {
    server::raise_fd_limit();
    server::limit_malloc_arenas();
    let mut sim_handle = None;
    if cfg.demo {
        let handle = sim::start(sim::SimOptions {
            listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
            fixture: sim::Fixture::Demo,
            gw_pwd: Some(DEMO_PASSWORD.into()),
            password: None,
            frozen: false,
            gzip: false,
            cert_pem: None,
            key_pem: None,
            v1r_public_key: None,
            max_connections: sim::MAX_CONNECTIONS,
        })?;
        log::warn!(
            "DEMO MODE: serving SIMULATED data from the built-in gateway simulator at {}",
            handle.addr()
        );
        cfg.gateways.push(GatewayConfig {
            id: "demo".into(),
            name: "Demo home (simulated)".into(),
            host: handle.addr().to_string(),
            gw_pwd: Some(DEMO_PASSWORD.into()),
            password: None,
            poll_interval: Duration::from_secs(
                cfg.gateways
                    .first()
                    .map(|g| g.poll_interval.as_secs())
                    .unwrap_or(5),
            ),
            timeout: Duration::from_secs(5),
            tls_fingerprint: None,
            query_set: QuerySet::V2024_06,
            simulated: true,
            mode: crate::config::Mode::Tedapi,
            email: cfg.server.email.clone(),
            auth_mode: crate::config::AuthMode::Cookie,
            cloud: None,
            rsa_key_path: None,
            #[cfg(feature = "v1r")]
            rsa_key: None,
            wifi_host: None,
            wifi_v1r_fallback: false,
            solar_only: false,
            timezone: None,
        });
        sim_handle = Some(handle);
    }
    if cfg.gateways.is_empty() {
        return Err(
            "no gateway configured: set PW_HOST and PW_GW_PWD or PW_PASSWORD (or --host and \
                    --gw-pwd/--password), or run with --demo to see simulated data"
                .into(),
        );
    }
    let tls = https_config(&cfg)?;
    let settings = crate::render::Settings {
        neg_solar: cfg.server.neg_solar,
        site_zero_threshold: cfg.server.site_zero_threshold,
        control_enabled: cfg.server.control.enabled(),
        // The route table says which gateway paths are passed through.
        pass_through: crate::http::routes::pass_through(),
    };
    // Last-good data stays servable for PW_CACHE_TTL, and never less than two poll intervals
    // (a slow poll interval must not make healthy data look stale between ticks).
    let slowest = cfg
        .gateways
        .iter()
        .map(|g| g.poll_interval)
        .max()
        .unwrap_or_default();
    let max_age = Duration::from_secs(cfg.server.cache_ttl).max(slowest * 2);
    let keepers = keepers(&cfg)?;
    let snapshots = cfg
        .gateways
        .iter()
        .zip(&keepers)
        .map(|(g, k)| GatewaySnapshot {
            id: g.id.clone(),
            name: g.name.clone(),
            host: g.host.clone(),
            simulated: g.simulated,
            solar_only: g.solar_only,
            mode: g.mode,
            forward: None,
            health: Health::default(),
            good: None,
            history: k.history.clone(),
            series: Some(k.series.clone()),
        })
        .collect();
    let default_mode = cfg.gateways.get(cfg.default_gateway).map(|g| g.mode);
    let tedapi = default_mode.is_some_and(|m| m.proxy_labels().2);
    let hub = Arc::new(Hub::new(snapshots, settings, max_age, tedapi));
    let (ws, ws_rx) = WsHub::new(WsSettings {
        interval: cfg.server.ws_interval,
        max_clients: cfg.server.ws_max_clients,
        origins: cfg.server.cors_origins.clone(),
    });
    let ctx = Arc::new(Ctx {
        config: cfg.public(),
        hub: hub.clone(),
        stats: Stats::new(),
        default_gateway: cfg.default_gateway,
        tls,
        ws,
        aggregates: Aggregates::default(),
        control: crate::http::control::Controller::new(&cfg, hub.clone()),
        metrics: Default::default(),
        permits: server::Permits::new(cfg.server.workers),
        mqtt: crate::mqtt::Status::new(&cfg.mqtt),
        timeseries: Default::default(),
    });
    // The MQTT publisher reads the hub and writes through `ctx.control`; it gets the settings
    // with the broker password here (`ctx.config` holds no secret).
    let mqtt = crate::mqtt::start(&ctx, &cfg.mqtt)?;
    let broadcaster = match ws::spawn_broadcaster(ctx.clone(), ws_rx) {
        Ok(b) => b,
        Err(e) => {
            if let Some(m) = mqtt {
                m.stop();
            }
            return Err(e);
        }
    };
    let http = match server::start(&listen_addr(&cfg), ctx.clone()) {
        Ok(h) => h,
        Err(e) => {
            if let Some(m) = mqtt {
                m.stop();
            }
            ctx.ws.stop();
            let _ = broadcaster.join();
            return Err(e);
        }
    };
    log::info!(
        "listening on {}://{}",
        if cfg.server.https == HttpsMode::Yes {
            "https"
        } else {
            "http"
        },
        http.addr
    );
    let stop = Arc::new(AtomicBool::new(false));
    let pollers = match Pollers::start(&cfg.gateways, keepers, hub.clone(), stop.clone()) {
        Ok(p) => p,
        Err(e) => {
            // Stop what already runs, then say why polling could not start.
            App {
                http,
                hub,
                ctx,
                pollers: None,
                broadcaster,
                stop,
                mqtt,
                _sim: sim_handle,
            }
            .stop();
            return Err(format!(
                "{e}: the OS is out of threads or memory ({} gateways configured)",
                cfg.gateways.len()
            ));
        }
    };
    Ok(App {
        http,
        hub,
        ctx,
        pollers: Some(pollers),
        broadcaster,
        stop,
        mqtt,
        _sim: sim_handle,
    })
}
