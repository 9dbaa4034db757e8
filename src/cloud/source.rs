//! The poller's transport for a `cloud_mode` gateway: Owner API or FleetAPI live status.
//!
//! Per tick: `live_status`, plus `site_status` (Owner API battery summary). `site_info` is
//! re-read once a minute (59 s, as pypowerwall caches it) and `backup_time_remaining` once a
//! minute; a failure of those two keeps the last good answer. The session is shared with the
//! control routes (one per token file).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::map::{self, CloudData};
use super::session::{self, Kind, Session};
use crate::config::GatewayConfig;
use crate::gateway::facade::Facade;
use crate::gateway::source::Source;
use crate::json::Value;
use crate::wire::Error;

/// `site_info` cache age (pypowerwall's SITE_CONFIG TTL).
pub const SITE_INFO_TTL: Duration = Duration::from_secs(59);
const SLOW: Duration = Duration::from_secs(60);

/// A gateway watched through Tesla's cloud.
pub struct Cloud {
    cfg: GatewayConfig,
    session: Option<Arc<Mutex<Session>>>,
    time_remaining: Option<f64>,
    slow_at: Option<Instant>,
}

impl Cloud {
    pub fn new(cfg: GatewayConfig) -> Cloud {
        Cloud {
            cfg,
            session: None,
            time_remaining: None,
            slow_at: None,
        }
    }
}

impl Source for Cloud {
    fn poll(&mut self) -> Result<Facade, Error> {
        if self.session.is_none() {
            let auth = self
                .cfg
                .cloud
                .as_ref()
                .ok_or_else(|| Error::BadReply("no cloud credentials configured".into()))?;
            self.session = Some(session::shared(&self.cfg.id, auth, self.cfg.timeout)?);
        }
        let shared = self
            .session
            .clone()
            .ok_or_else(|| Error::BadReply("no session".into()))?;
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        let fleet = s.kind() == Kind::Fleet;
        let live = s.live_status()?;
        let site_info = s.site_info(SITE_INFO_TTL)?;
        let site_status = if fleet {
            None
        } else {
            match s.site_status() {
                Ok(v) => Some(v),
                Err(e) => {
                    log::debug!("gateway '{}': site_status: {e}", self.cfg.id);
                    None
                }
            }
        };
        if self.slow_at.is_none_or(|t| t.elapsed() >= SLOW) {
            match s.time_remaining() {
                Ok(t) => self.time_remaining = t.or(Some(0.0)),
                Err(e) => log::debug!("gateway '{}': backup_time_remaining: {e}", self.cfg.id),
            }
            self.slow_at = Some(Instant::now());
        }
        drop(s);
        Ok(map::facade(&CloudData {
            fleet,
            live,
            site_info,
            site_status,
            time_remaining: self.time_remaining,
            now: crate::clock::unix_secs(SystemTime::now()),
        }))
    }

    fn cooldown_remaining(&self) -> Option<Duration> {
        None
    }

    fn mode(&self) -> &'static str {
        self.cfg.mode.name()
    }
}

/// Reads what the control routes show: the site's current reserve (app scale) and mode.
pub fn current(s: &mut Session) -> Result<(Option<f64>, Option<String>), super::Error> {
    let info = s.site_info(SITE_INFO_TTL)?;
    Ok((
        info.get("backup_reserve_percent").and_then(Value::as_f64),
        info.get("default_real_mode")
            .and_then(Value::as_str)
            .map(str::to_string),
    ))
}
