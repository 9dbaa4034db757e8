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

use std::sync::Arc;
use std::time::Duration;

use crate::config::mqtt::MqttSettings;
use crate::http::router::Ctx;

pub use crate::http::mqtt::Status;

/// Every state topic is re-sent at least this often, changed or not.
pub const FULL_REFRESH: Duration = Duration::from_secs(60);

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
pub fn start(ctx: &Arc<Ctx>, s: &MqttSettings) -> Result<Option<Handle>, String> {
    if !s.enabled() {
        return Ok(None);
    }
    #[cfg(feature = "mqtt")]
    {
        run::start(ctx, s).map(|inner| Some(Handle { inner }))
    }
    #[cfg(not(feature = "mqtt"))]
    {
        let msg = "MQTT_HOST is set but MQTT support is not compiled into this build (cargo feature `mqtt`)";
        log::error!("{msg}");
        ctx.mqtt.set_error(Some(msg.into()));
        Ok(None)
    }
}
