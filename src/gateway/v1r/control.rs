//! v1r writes (spec §3.6–§3.7): read-modify-write of `config.json` through the FileStore
//! `updateFileRequest` (the read's hash is the optimistic lock) and the TEG island-mode
//! command. [`ConfigChange`] is the one mapping of a control value to its `config.json` key.

use crate::gateway::proto::{
    Body, Envelope, Participant, CHANNEL_HERMES_COMMAND, DOMAIN_CONFIG_JSON,
};
use crate::gateway::tedapi::Error;
use crate::json::{self, Map, Value};

use super::{config_envelope, V1rClient};

/// The Tesla app hides the bottom 5 % of the battery: app → raw is `app × 0.95 + 5` (the v1r
/// write, as pypowerwall 0.22.2 converts it).
pub fn reserve_app_to_raw(app: f64) -> f64 {
    app * 0.95 + 5.0
}

/// One change to `config.json` (spec §3.7).
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigChange {
    /// Backup reserve, app scale (stored raw).
    Reserve(f64),
    /// `default_real_mode`.
    Mode(String),
    /// Grid charging allowed (stored inverted).
    GridCharging(bool),
    /// `customer_preferred_export_rule`.
    GridExport(String),
}

impl ConfigChange {
    /// The dotted path and the value stored there.
    pub fn entry(&self) -> (&'static str, Value) {
        match self {
            ConfigChange::Reserve(app) => (
                "site_info.backup_reserve_percent",
                Value::Float(reserve_app_to_raw(*app)),
            ),
            ConfigChange::Mode(m) => ("default_real_mode", Value::from(m.as_str())),
            ConfigChange::GridCharging(on) => (
                "site_info.disallow_charge_from_grid_with_solar_installed",
                Value::Bool(!on),
            ),
            ConfigChange::GridExport(e) => (
                "site_info.customer_preferred_export_rule",
                Value::from(e.as_str()),
            ),
        }
    }
}

/// Sets each dotted path in `config`, making objects where a step is missing or not an object.
pub fn apply(config: &mut Value, changes: &[ConfigChange]) -> Result<(), Error> {
    for c in changes {
        let (path, value) = c.entry();
        let mut node = &mut *config;
        let keys: Vec<&str> = path.split('.').collect();
        for (i, key) in keys.iter().enumerate() {
            let Value::Object(m) = node else {
                return Err(Error::BadReply("config.json is not a JSON object".into()));
            };
            if i + 1 == keys.len() {
                m.insert(*key, value.clone());
                break;
            }
            if !matches!(m.get(key), Some(Value::Object(_))) {
                m.insert(*key, Value::from(Map::new()));
            }
            node = m
                .get_mut(key)
                .ok_or_else(|| Error::BadReply(format!("config.json: cannot set {path}")))?;
        }
    }
    Ok(())
}

fn command(din: &str, body: Body) -> Envelope {
    Envelope {
        delivery_channel: CHANNEL_HERMES_COMMAND,
        sender: Some(Participant::AuthorizedClient(1)),
        recipient: Some(Participant::Din(din.to_string())),
        body,
    }
}

/// Why a write did not take effect: the gateway answered and said no, or the write could not
/// be carried out (LAN down, key not accepted, unusable reply) — only the second may be tried
/// another way (the cloud).
#[derive(Debug, Clone, PartialEq)]
pub enum WriteError {
    /// The gateway answered the signed write with an `errorResponse`.
    Refused(String),
    /// The write did not reach the gateway or its answer was unusable.
    Failed(Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Refused(why) => write!(f, "the gateway refused the write: {why}"),
            WriteError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl From<Error> for WriteError {
    fn from(e: Error) -> WriteError {
        WriteError::Failed(e)
    }
}

fn refused(body: &Body) -> WriteError {
    match body {
        Body::ErrorResponse { code, message } => {
            WriteError::Refused(format!("{message} (code {code})"))
        }
        other => WriteError::Failed(Error::BadReply(format!(
            "unexpected answer to a write: {other:?}"
        ))),
    }
}

impl V1rClient {
    /// Reads `config.json` with its hash, applies `changes` and writes it back.
    pub fn write_config(
        &mut self,
        leader: &str,
        changes: &[ConfigChange],
    ) -> Result<(), WriteError> {
        let inner = self.post(leader, &config_envelope(leader))?;
        let env =
            Envelope::decode(&inner).map_err(|e| Error::BadReply(format!("config read: {e}")))?;
        let Body::ReadFileResponse { blob, hash, .. } = env.body else {
            return Err(Error::BadReply("config read: no FileStore answer".into()).into());
        };
        let mut config = json::parse_bytes(&blob)
            .map_err(|_| Error::BadReply("config.json read over v1r is not JSON".into()))?;
        apply(&mut config, changes)?;
        let update = command(
            leader,
            Body::UpdateFile {
                domain: DOMAIN_CONFIG_JSON,
                name: "config.json".into(),
                blob: config.to_py().into_bytes(),
                hash,
            },
        );
        let inner = self.post(leader, &update)?;
        let env =
            Envelope::decode(&inner).map_err(|e| Error::BadReply(format!("config write: {e}")))?;
        match env.body {
            Body::UpdateFileResponse { .. } => Ok(()),
            other => Err(refused(&other)),
        }
    }

    /// Island mode: `off_grid` sends mode 6 + force (open the contactor), else mode 1. The
    /// gateway's `result` (1 observed as success).
    pub fn set_island_mode(
        &mut self,
        leader: &str,
        off_grid: bool,
    ) -> Result<Option<i32>, WriteError> {
        let (mode, force) = if off_grid { (6, true) } else { (1, false) };
        let inner = self.post(
            leader,
            &command(leader, Body::SetIslandMode { mode, force }),
        )?;
        let env =
            Envelope::decode(&inner).map_err(|e| Error::BadReply(format!("island mode: {e}")))?;
        match env.body {
            Body::SetIslandModeResponse { result } => Ok(result),
            other => Err(refused(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_map_to_the_config_keys() {
        let mut c =
            json::parse(r#"{"vin": "x", "site_info": {"backup_reserve_percent": 24}, "a": 1}"#)
                .unwrap();
        apply(
            &mut c,
            &[
                ConfigChange::Reserve(50.0),
                ConfigChange::Mode("backup".into()),
                ConfigChange::GridCharging(false),
                ConfigChange::GridExport("never".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            c.path(&["site_info", "backup_reserve_percent"])
                .and_then(Value::as_f64),
            Some(52.5)
        );
        assert_eq!(
            c.get("default_real_mode").and_then(Value::as_str),
            Some("backup")
        );
        assert_eq!(
            c.path(&[
                "site_info",
                "disallow_charge_from_grid_with_solar_installed"
            ]),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            c.path(&["site_info", "customer_preferred_export_rule"])
                .and_then(Value::as_str),
            Some("never")
        );
        // A missing or non-object step becomes an object; a non-object config is an error.
        let mut c = json::parse(r#"{"site_info": 3}"#).unwrap();
        apply(&mut c, &[ConfigChange::GridCharging(true)]).unwrap();
        assert!(c
            .path(&[
                "site_info",
                "disallow_charge_from_grid_with_solar_installed"
            ])
            .is_some());
        assert!(apply(&mut Value::from(1), &[ConfigChange::Mode("backup".into())]).is_err());
    }
}
