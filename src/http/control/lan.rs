//! The LAN write path of one v1r gateway: its own signed client (not the poller's, so a write
//! never waits for a tick), logged in and with the leader DIN on first use, and the answers in
//! pypowerwall 0.22.2's shapes for a v1r write.

#[cfg(feature = "v1r")]
use std::sync::Mutex;

use super::{Island, Write};
use crate::config::GatewayConfig;
use crate::json::Value;

/// Why a LAN write did not take effect.
#[derive(Debug)]
#[cfg_attr(not(feature = "v1r"), allow(dead_code))]
pub enum Failure {
    /// The gateway answered and refused (not retried elsewhere).
    Refused(String),
    /// The write could not be carried out (LAN down, key not accepted, bad reply).
    Unavailable(String),
}

#[cfg(feature = "v1r")]
mod imp {
    use super::*;
    use crate::gateway::v1r::{self, ConfigChange, V1rClient, V1rOptions, WriteError};
    use crate::json::Map;

    /// The client once connected, with the leader's DIN.
    struct Connected {
        client: V1rClient,
        leader: String,
    }

    pub struct Lan {
        opts: V1rOptions,
        conn: Mutex<Option<Connected>>,
        /// The last write that could not be carried out (cleared by a success).
        last_error: Mutex<Option<String>>,
    }

    fn changes(w: &Write) -> Vec<ConfigChange> {
        match w {
            Write::Reserve(n) => vec![ConfigChange::Reserve(*n as f64)],
            Write::Mode(m) => vec![ConfigChange::Mode(m.clone())],
            // One config write for both: no race between two commands.
            Write::Operation(n, m) => vec![
                ConfigChange::Reserve(*n as f64),
                ConfigChange::Mode(m.clone()),
            ],
            Write::GridCharging(b) => vec![ConfigChange::GridCharging(*b)],
            Write::GridExport(e) => vec![ConfigChange::GridExport(e.clone())],
            Write::Islanding(_) => Vec::new(),
        }
    }

    fn updated(message: &str) -> Value {
        let response = Map::new().with("Message", message).with("Code", 200);
        Map::new().with("response", response).into()
    }

    /// The result pypowerwall 0.22.2 returns for a v1r write (`post_api_operation`): the
    /// reserve as written (raw scale), or `true` for grid charging and export.
    fn result(w: &Write) -> Value {
        let reserve = |n: i64| {
            Map::new()
                .with(
                    "backup_reserve_percent",
                    Value::Float(v1r::reserve_app_to_raw(n as f64)),
                )
                .with("result", updated("Backup reserve updated"))
        };
        let mode = |m: &str| {
            Map::new()
                .with("real_mode", m)
                .with("result", updated("Operation mode updated"))
        };
        match w {
            Write::Reserve(n) => Map::new()
                .with("set_backup_reserve_percent", reserve(*n))
                .into(),
            Write::Mode(m) => Map::new().with("set_operation", mode(m)).into(),
            Write::Operation(n, m) => Map::new()
                .with("set_backup_reserve_percent", reserve(*n))
                .with("set_operation", mode(m))
                .into(),
            Write::GridCharging(_) | Write::GridExport(_) => Value::Bool(true),
            Write::Islanding(_) => Value::Null,
        }
    }

    impl Lan {
        /// A LAN writer for a gateway polled over v1r with its key loaded, else `None`.
        pub fn new(cfg: &GatewayConfig) -> Option<Lan> {
            if !matches!(
                cfg.mode,
                crate::config::Mode::V1r | crate::config::Mode::V1rWifi
            ) {
                return None;
            }
            let opts = v1r::lan_options(cfg).ok()?;
            Some(Lan {
                opts,
                conn: Mutex::new(None),
                last_error: Mutex::new(None),
            })
        }

        pub fn last_error(&self) -> Option<String> {
            self.last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }

        /// Runs `f` with the connected client; a failure drops the connection (the next write
        /// logs in again) and is remembered for `/control/status`.
        fn with<T>(
            &self,
            f: impl FnOnce(&mut V1rClient, &str) -> Result<T, WriteError>,
        ) -> Result<T, Failure> {
            let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            let out =
                (|| {
                    if slot.is_none() {
                        let mut client = V1rClient::new(self.opts.clone())?;
                        client.login()?;
                        let leader = client.din()?;
                        *slot = Some(Connected { client, leader });
                    }
                    let c = slot.as_mut().ok_or(WriteError::Failed(
                        crate::wire::Error::Unreachable("no LAN connection".into()),
                    ))?;
                    f(&mut c.client, &c.leader)
                })();
            let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
            match out {
                Ok(v) => {
                    *last = None;
                    Ok(v)
                }
                // The gateway answered: the LAN works.
                Err(WriteError::Refused(why)) => {
                    *last = None;
                    Err(Failure::Refused(why))
                }
                Err(WriteError::Failed(e)) => {
                    *slot = None;
                    *last = Some(e.to_string());
                    Err(Failure::Unavailable(e.to_string()))
                }
            }
        }

        /// Reserve, mode, grid charging or grid export as one signed `config.json` write.
        pub fn write(&self, w: &Write) -> Result<Value, Failure> {
            let changes = changes(w);
            self.with(|c, leader| c.write_config(leader, &changes))?;
            Ok(result(w))
        }

        /// The signed island-mode command: `{"mode", "force", "result"}` as pypowerwall
        /// 0.22.2 answers it.
        pub fn island(&self, island: Island) -> Result<Value, Failure> {
            let off = island == Island::OffGrid;
            let r = self.with(|c, leader| c.set_island_mode(leader, off))?;
            Ok(Map::new()
                .with("mode", if off { 6 } else { 1 })
                .with("force", off)
                .with("result", r.map_or(Value::Null, |n| Value::from(n as i64)))
                .into())
        }
    }
}

#[cfg(not(feature = "v1r"))]
mod imp {
    use super::*;

    /// Without v1r support there is no LAN write path: no value of this type exists.
    pub enum Lan {}

    impl Lan {
        pub fn new(_cfg: &GatewayConfig) -> Option<Lan> {
            None
        }
        pub fn last_error(&self) -> Option<String> {
            match *self {}
        }
        pub fn write(&self, _w: &Write) -> Result<Value, Failure> {
            match *self {}
        }
        pub fn island(&self, _i: Island) -> Result<Value, Failure> {
            match *self {}
        }
    }
}

pub use imp::Lan;
