//! The LAN write path of one v1r gateway: its own signed client (not the poller's, so a write
//! never waits for a tick), logged in and with the leader DIN on first use; with
//! `PW_WIFI_V1R_FALLBACK` the same signed writes to the Wi-Fi host when the LAN cannot take
//! them; and the answers in pypowerwall 0.22.2's shapes for a v1r write.

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

    /// One signed route to the leader (the LAN port, or the Wi-Fi host).
    struct Route {
        opts: V1rOptions,
        conn: Mutex<Option<Connected>>,
    }

    impl Route {
        fn new(opts: V1rOptions) -> Route {
            Route {
                opts,
                conn: Mutex::new(None),
            }
        }

        /// Runs `f` with the connected client (logged in, leader known); a failure that is
        /// not the gateway's answer drops the connection, so the next write logs in again.
        fn with<T>(
            &self,
            f: &dyn Fn(&mut V1rClient, &str) -> Result<T, WriteError>,
        ) -> Result<T, WriteError> {
            let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            let out = (|| {
                let c = match slot.take() {
                    Some(c) => slot.insert(c),
                    None => {
                        let mut client = V1rClient::new(self.opts.clone())?;
                        client.login()?;
                        let leader = client.din()?;
                        slot.insert(Connected { client, leader })
                    }
                };
                f(&mut c.client, &c.leader)
            })();
            if let Err(WriteError::Failed(_)) = out {
                *slot = None;
            }
            out
        }
    }

    pub struct Lan {
        lan: Route,
        /// `PW_WIFI_V1R_FALLBACK`: the same signed writes to `PW_WIFI_HOST`.
        wifi: Option<Route>,
        /// The last write the LAN could not carry out (cleared by a success).
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
            let wifi = match (&cfg.wifi_host, cfg.wifi_v1r_fallback) {
                (Some(host), true) => Some(Route::new(V1rOptions {
                    host: host.clone(),
                    // The pinned certificate is the LAN port's.
                    pin: None,
                    ..opts.clone()
                })),
                _ => None,
            };
            Some(Lan {
                lan: Route::new(opts),
                wifi,
                last_error: Mutex::new(None),
            })
        }

        /// Writes may go signed to the Wi-Fi host when the LAN cannot take them.
        pub fn has_wifi(&self) -> bool {
            self.wifi.is_some()
        }

        pub fn last_error(&self) -> Option<String> {
            self.last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }

        /// `f` over the LAN, else (opt-in) over the Wi-Fi host: the result and the route
        /// (`lan`, `wifi`). A write is only sent after its signed config read succeeded on
        /// that route, so a failed route sent nothing.
        fn run<T>(
            &self,
            f: &dyn Fn(&mut V1rClient, &str) -> Result<T, WriteError>,
        ) -> Result<(T, &'static str), Failure> {
            let out = self.lan.with(f);
            let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
            let lan_error = match out {
                Ok(v) => {
                    *last = None;
                    return Ok((v, "lan"));
                }
                // The gateway answered: the LAN works.
                Err(WriteError::Refused(why)) => {
                    *last = None;
                    return Err(Failure::Refused(why));
                }
                Err(WriteError::Failed(e)) => e.to_string(),
            };
            *last = Some(lan_error.clone());
            drop(last);
            let Some(wifi) = &self.wifi else {
                return Err(Failure::Unavailable(lan_error));
            };
            match wifi.with(f) {
                Ok(v) => Ok((v, "wifi")),
                Err(WriteError::Refused(why)) => Err(Failure::Refused(why)),
                Err(WriteError::Failed(e)) => Err(Failure::Unavailable(format!(
                    "{lan_error}; over the Wi-Fi host: {e}"
                ))),
            }
        }

        /// Reserve, mode, grid charging or grid export as one signed `config.json` write.
        pub fn write(&self, w: &Write) -> Result<(Value, &'static str), Failure> {
            let changes = changes(w);
            let ((), path) = self.run(&|c, leader| c.write_config(leader, &changes))?;
            Ok((result(w), path))
        }

        /// The signed island-mode command: `{"mode", "force", "result"}` as pypowerwall
        /// 0.22.2 answers it.
        pub fn island(&self, island: Island) -> Result<(Value, &'static str), Failure> {
            let off = island == Island::OffGrid;
            let (r, path) = self.run(&|c, leader| c.set_island_mode(leader, off))?;
            let value = Map::new()
                .with("mode", if off { 6 } else { 1 })
                .with("force", off)
                .with("result", r.map_or(Value::Null, |n| Value::from(n as i64)))
                .into();
            Ok((value, path))
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
        pub fn has_wifi(&self) -> bool {
            match *self {}
        }
        pub fn last_error(&self) -> Option<String> {
            match *self {}
        }
        pub fn write(&self, _w: &Write) -> Result<(Value, &'static str), Failure> {
            match *self {}
        }
        pub fn island(&self, _i: Island) -> Result<(Value, &'static str), Failure> {
            match *self {}
        }
    }
}

pub use imp::Lan;
