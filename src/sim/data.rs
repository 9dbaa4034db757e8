//! The embedded fixtures and what each simulated site is made of.
//!
//! Everything is compiled in (`include_str!`/`include_bytes!`): the simulator never reads files
//! at run time. `pw2/` is the upstream simulator's data, `pw3/` the composed PW3 site (see the
//! shared `fixtures/README.md`), `demo/` a composed, quirk-free variant of the pw2 site.

use super::Fixture;
use crate::gateway::proto::{Body, Message, SystemInfo};
use crate::json::{self, Value};

/// Cookies the local login sets; an API request whose `Cookie` header contains [`MAGIC`] (or
/// that carries any `Authorization` header) is authenticated, as in the upstream simulator.
pub const LOGIN_SET_COOKIE: &str = include_str!("fixtures/pw2/login_set_cookie.txt");
pub const MAGIC: &str = "1234567890qwertyuiopasdfghjklZXcvbnm";
pub const LOGIN_JSON: &str = include_str!("fixtures/pw2/api.login.Basic.json");
pub const UNAUTHORIZED_JSON: &str = include_str!("fixtures/pw2/unauthorized_401.json");
pub const VITALS_BIN: &[u8] = include_bytes!("fixtures/pw2/devices_vitals.bin");
pub const API_STATUS_SERVED: &str = include_str!("fixtures/pw2/api.status.served.json");
pub const LOCAL_AGGREGATES: &str = include_str!("fixtures/pw2/api.meters.aggregates.json");
pub const LOCAL_SOE: &str = include_str!("fixtures/pw2/api.system_status.soe.json");
#[cfg(test)]
pub const LOCAL_GRID_STATUS: &str = include_str!("fixtures/pw2/api.system_status.grid_status.json");

pub const CERT_PEM: &[u8] = include_bytes!("fixtures/certs/cert.pem");
pub const KEY_PEM: &[u8] = include_bytes!("fixtures/certs/key.pem");

/// The static part of the upstream simulator's `/api/*` table (path → body). The three
/// state-backed entries (aggregates, SOE, grid status) and `/api/status` are rendered instead.
pub const LOCAL_STATIC: &[(&str, &str)] = &[
    (
        "/api/site_info/site_name",
        include_str!("fixtures/pw2/api.site_info.site_name.json"),
    ),
    (
        "/api/sitemaster",
        include_str!("fixtures/pw2/api.sitemaster.json"),
    ),
    (
        "/api/troubleshooting/problems",
        include_str!("fixtures/pw2/api.troubleshooting.problems.json"),
    ),
    (
        "/api/customer/registration",
        include_str!("fixtures/pw2/api.customer.registration.json"),
    ),
    (
        "/api/system_status/grid_faults",
        include_str!("fixtures/pw2/api.system_status.grid_faults.json"),
    ),
    (
        "/api/networks",
        include_str!("fixtures/pw2/api.networks.json"),
    ),
    (
        "/api/site_info",
        include_str!("fixtures/pw2/api.site_info.json"),
    ),
    (
        "/api/powerwalls",
        include_str!("fixtures/pw2/api.powerwalls.json"),
    ),
    (
        "/api/auth/toggle/supported",
        include_str!("fixtures/pw2/api.auth.toggle.supported.json"),
    ),
    (
        "/api/solar_powerwall",
        include_str!("fixtures/pw2/api.solar_powerwall.json"),
    ),
];

/// The 403 body of a PW3 (and of a wrong gateway password).
pub const ACCESS_DENIED_JSON: &str = r#"{"code":403,"error":"Unable to GET to resource","message":"User does not have adequate access rights"}"#;

/// Demo firmware version (the pw2 data has none, the pw3 data has its own reply).
pub const DEMO_VERSION: &str = "24.44.1 a1b2c3d4";
const DEMO_GITHASH: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

/// A JSON document kept both as its exact fixture text (served while untouched) and parsed
/// (the template the renderer patches).
pub struct Doc {
    pub text: &'static str,
    pub tpl: Value,
}

impl Doc {
    fn new(name: &str, text: &'static str) -> Result<Doc, String> {
        let tpl = json::parse(text).map_err(|e| format!("embedded fixture {name}: {e}"))?;
        Ok(Doc { text, tpl })
    }
}

/// One simulated site: its documents and the physical constants of its model.
pub struct Site {
    pub fixture: Fixture,
    /// Gateway (leader) DIN, the body of `GET /tedapi/din`.
    pub din: &'static str,
    pub config_text: &'static str,
    /// File hash sent with the config (empty: none, as the upstream simulator).
    pub config_hash: Vec<u8>,
    /// `device_controller_basic` answer.
    pub status: Doc,
    /// `device_controller_full` answer; `None` = the status document (pw2).
    pub controller: Option<Doc>,
    /// PW3: ComponentsQuery answers per battery DIN (also the DINs `/tedapi/device/<din>/v1`
    /// routes to).
    pub components: Vec<(&'static str, Doc)>,
    /// Demo: `components.msa[]` added to the full controller answer.
    pub msa: Option<Value>,
    /// Reply to the firmware (system-info) request, serialised.
    pub firmware_reply: Vec<u8>,
    /// The local `/api/meters/aggregates` template (the upstream simulator's).
    pub local_aggregates: Doc,
    /// `PINV_Pout` is in kW (a real gateway) rather than W (the upstream data).
    pub pinv_kw: bool,
    /// Model constants: battery power limit (W), clear-sky solar peak (W), the reserve the
    /// battery keeps when the grid is up (raw %).
    pub max_battery_w: f64,
    pub solar_peak_w: f64,
    pub reserve_pct: f64,
    /// `system.time` format: true = `2024-01-24 12:00:00 +0000` (upstream), false = RFC 3339.
    pub time_upstream_style: bool,
}

impl Site {
    pub fn load(fixture: Fixture) -> Result<Site, String> {
        match fixture {
            Fixture::Pw2 => Ok(Site {
                fixture,
                din: include_str!("fixtures/pw2/tedapi_din.txt"),
                config_text: include_str!("fixtures/pw2/tedapi_config.json"),
                config_hash: Vec::new(),
                status: Doc::new(
                    "pw2/tedapi_status.json",
                    include_str!("fixtures/pw2/tedapi_status.json"),
                )?,
                controller: None,
                components: Vec::new(),
                msa: None,
                // Upstream answers the firmware request with a Message holding only tail = 1
                // (no envelope at all), so clients report the version "".
                firmware_reply: vec![0x12, 0x02, 0x08, 0x01],
                local_aggregates: Doc::new("pw2/api.meters.aggregates.json", LOCAL_AGGREGATES)?,
                pinv_kw: false,
                max_battery_w: 10000.0,
                solar_peak_w: 6500.0,
                reserve_pct: 5.0,
                time_upstream_style: true,
            }),
            Fixture::Pw3 => Ok(Site {
                fixture,
                din: include_str!("fixtures/pw3/tedapi_din.txt"),
                config_text: include_str!("fixtures/pw3/tedapi_config.json"),
                config_hash: vec![1, 2, 3, 4],
                status: Doc::new(
                    "pw3/tedapi_status.json",
                    include_str!("fixtures/pw3/tedapi_status.json"),
                )?,
                controller: Some(Doc::new(
                    "pw3/tedapi_controller.json",
                    include_str!("fixtures/pw3/tedapi_controller.json"),
                )?),
                components: vec![
                    (
                        "1707000-11-J--TG12000000001Z",
                        Doc::new(
                            "pw3 leader components",
                            include_str!(
                                "fixtures/pw3/components_1707000-11-J--TG12000000001Z.json"
                            ),
                        )?,
                    ),
                    (
                        "1707000-11-J--TG12000000002Z",
                        Doc::new(
                            "pw3 follower components",
                            include_str!(
                                "fixtures/pw3/components_1707000-11-J--TG12000000002Z.json"
                            ),
                        )?,
                    ),
                ],
                msa: None,
                firmware_reply: include_bytes!("fixtures/pw3/firmware_response.bin").to_vec(),
                local_aggregates: Doc::new("pw2/api.meters.aggregates.json", LOCAL_AGGREGATES)?,
                pinv_kw: true,
                max_battery_w: 23000.0,
                solar_peak_w: 9500.0,
                reserve_pct: 24.0,
                time_upstream_style: false,
            }),
            Fixture::Demo => {
                let din = include_str!("fixtures/pw2/tedapi_din.txt");
                let config_text = include_str!("fixtures/demo/tedapi_config.json");
                let (part, serial) = din.split_once("--").unwrap_or((din, ""));
                let reply = Message::reply(
                    din,
                    Body::SystemInfoResponse(SystemInfo {
                        part_number: part.into(),
                        serial_number: serial.into(),
                        din: din.into(),
                        version: DEMO_VERSION.into(),
                        githash: crate::wire::hex(DEMO_GITHASH).unwrap_or_default(),
                        device_type: Some(4),
                    }),
                );
                let hash = ring::digest::digest(&ring::digest::SHA256, config_text.as_bytes());
                Ok(Site {
                    fixture,
                    din,
                    config_text,
                    config_hash: hash.as_ref().to_vec(),
                    status: Doc::new(
                        "demo/tedapi_status.json",
                        include_str!("fixtures/demo/tedapi_status.json"),
                    )?,
                    controller: None,
                    components: Vec::new(),
                    msa: Some(
                        Doc::new(
                            "demo/controller_msa.json",
                            include_str!("fixtures/demo/controller_msa.json"),
                        )?
                        .tpl,
                    ),
                    firmware_reply: reply.encode(),
                    local_aggregates: Doc::new("pw2/api.meters.aggregates.json", LOCAL_AGGREGATES)?,
                    pinv_kw: true,
                    max_battery_w: 10000.0,
                    solar_peak_w: 6500.0,
                    reserve_pct: 24.0,
                    time_upstream_style: false,
                })
            }
        }
    }

    /// The fixture status's `realPowerW` at `location` (SITE, BATTERY, LOAD, SOLAR); 0 if absent.
    pub fn power(&self, location: &str) -> f64 {
        self.status
            .tpl
            .path(&["control", "meterAggregates"])
            .and_then(|v| v.as_array())
            .and_then(|a| {
                a.iter().find(|m| {
                    m.get("location")
                        .and_then(|l| l.as_str())
                        .is_some_and(|l| l.eq_ignore_ascii_case(location))
                })
            })
            .and_then(|m| m.get("realPowerW"))
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
    }

    /// Components document of a battery DIN.
    pub fn components_of(&self, din: &str) -> Option<&Doc> {
        self.components
            .iter()
            .find(|(d, _)| *d == din)
            .map(|(_, doc)| doc)
    }
}
