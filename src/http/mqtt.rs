//! `GET /api/mqtt/status` and the status board behind it (issue 16).
//!
//! The MQTT publisher (`crate::mqtt`, a layer above this one: it writes through
//! [`super::control::Controller`]) fills in the counters; the route only reads them. The board
//! holds the broker's public settings only — never the username or password — so `Ctx` stays
//! free of secrets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::router::{Answer, Req};
use crate::atomic::AtomicU64;
use crate::config::mqtt::MqttSettings;
use crate::json::{Map, Value};

/// The settings `/api/mqtt/status` shows (no login).
#[derive(Debug, Clone)]
struct Shown {
    enabled: bool,
    host: Option<String>,
    port: u16,
    topic_prefix: String,
    ha_discovery: bool,
    qos: u8,
    retain: bool,
    tls: bool,
}

/// What `/api/mqtt/status` shows; shared by the MQTT threads and the HTTP route.
pub struct Status {
    settings: Shown,
    pub connected: AtomicBool,
    pub connected_since: Mutex<Option<SystemTime>>,
    /// PUBLISH packets written to the broker.
    pub sent: AtomicU64,
    /// Messages not handed to the client because its queue was full (or it was closed).
    pub dropped: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl Status {
    pub fn new(s: &MqttSettings) -> Arc<Status> {
        Arc::new(Status {
            settings: Shown {
                enabled: s.enabled(),
                host: s.host.clone(),
                port: s.port,
                topic_prefix: s.topic_prefix.clone(),
                ha_discovery: s.ha_discovery,
                qos: s.qos,
                retain: s.retain,
                tls: s.tls,
            },
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

    pub fn set_error(&self, e: Option<String>) {
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
            .with("enabled", s.enabled)
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
