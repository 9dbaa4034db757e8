//! MQTT publisher with Home Assistant discovery and opt-in controls (issue 16), compatible with
//! pypowerwall-server 0.13.0's topics and payloads.
//!
//! Data flow: a poller publishes a snapshot → the hub's publish listener marks "dirty" (a flag
//! and a condvar: never blocks, never queues) → the `mqtt-publish` thread reads the *current*
//! snapshot of every gateway (latest state wins by construction), renders [`state`] and
//! [`discovery`] messages, and hands only the changed ones (all of them at least every
//! [`FULL_REFRESH`]) to the MQTT client's bounded request channel with `try_publish`. A full
//! channel drops the rest of that round and forces a full refresh later; nothing ever waits on
//! the broker except the `mqtt-conn` thread that drives the connection.
//!
//! Threads (only when `MQTT_HOST` is set): `mqtt-conn` (rumqttc's event loop: connect, TLS,
//! keep-alive, reconnect with 2 → 60 s back-off, incoming commands), `mqtt-publish`, and
//! `mqtt-control` (runs at most one control write at a time; the queue keeps one pending
//! command per gateway and control).
//!
//! Hooks into the rest of the server, kept few so this module can later hang off the render
//! layer: `config::mqtt` (settings), `Hub::on_publish` (wake-up), `app::start` (start/stop),
//! `Ctx::mqtt` + one route (`GET /api/mqtt/status`), `Controller::write` (the control path).

pub mod control;
pub mod discovery;
pub mod state;

#[cfg(feature = "mqtt")]
mod run;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::config::mqtt::MqttSettings;
use crate::http::router::{Answer, Ctx, Req};
use crate::json::{Map, Value};

/// Every state topic is re-sent at least this often, changed or not.
pub const FULL_REFRESH: Duration = Duration::from_secs(60);

/// What `/api/mqtt/status` shows; shared by the MQTT threads and the HTTP route.
pub struct Status {
    settings: MqttSettings,
    pub(crate) connected: AtomicBool,
    pub(crate) connected_since: Mutex<Option<SystemTime>>,
    /// PUBLISH packets written to the broker.
    pub(crate) sent: AtomicU64,
    /// Messages not handed to the client because its queue was full (or it was closed).
    pub(crate) dropped: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl Status {
    pub fn new(settings: &MqttSettings) -> Arc<Status> {
        Arc::new(Status {
            settings: settings.clone(),
            connected: AtomicBool::new(false),
            connected_since: Mutex::new(None),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    pub fn messages_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    pub(crate) fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = e;
    }

    /// 0.13.0's `/api/mqtt/status` object plus `connected_since`, `messages_sent`,
    /// `messages_dropped` and `last_error`. Never includes the username or password.
    pub fn to_value(&self) -> Value {
        let s = &self.settings;
        let since = *self
            .connected_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let connected = self.connected();
        Map::new()
            .with("enabled", s.enabled())
            .with("host", s.host.clone())
            .with("port", s.port as i64)
            .with("connected", connected)
            .with("topic_prefix", s.topic_prefix.as_str())
            .with("ha_discovery", s.ha_discovery)
            .with("qos", s.qos as i64)
            .with("retain", s.retain)
            .with("tls", s.tls)
            .with(
                "connected_since",
                since
                    .filter(|_| connected)
                    .map(|t| Value::from(format!("{}Z", crate::clock::iso_utc(t, false))))
                    .unwrap_or(Value::Null),
            )
            .with("messages_sent", self.messages_sent() as i64)
            .with(
                "messages_dropped",
                self.dropped.load(Ordering::SeqCst) as i64,
            )
            .with(
                "last_error",
                self.last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            )
            .into()
    }
}

/// `GET /api/mqtt/status`.
pub fn status_route(req: &Req<'_>) -> Answer {
    Answer::json(200, req.ctx.mqtt.to_value().to_py())
}

/// The running publisher (absent when MQTT is off).
pub struct Handle {
    #[cfg(feature = "mqtt")]
    inner: run::Running,
}

impl Handle {
    /// Marks every gateway offline, disconnects cleanly and stops the threads.
    pub fn stop(self) {
        #[cfg(feature = "mqtt")]
        self.inner.stop();
    }
}

/// Starts the publisher when `MQTT_HOST` is set.
pub fn start(ctx: &Arc<Ctx>) -> Result<Option<Handle>, String> {
    let s = &ctx.config.mqtt;
    if !s.enabled() {
        return Ok(None);
    }
    #[cfg(feature = "mqtt")]
    {
        run::start(ctx).map(|inner| Some(Handle { inner }))
    }
    #[cfg(not(feature = "mqtt"))]
    {
        let msg = "MQTT_HOST is set but MQTT support is not compiled into this build (cargo feature `mqtt`)";
        log::error!("{msg}");
        ctx.mqtt.set_error(Some(msg.into()));
        Ok(None)
    }
}
