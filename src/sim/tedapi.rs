//! Answers TEDAPI requests (`/tedapi/din`, `/tedapi/v1`, `/tedapi/device/<din>/v1`).
//!
//! Dispatch follows the payload kind of the request `Message` (spec §1.5–§1.6):
//! * config read → `readFileResponse` with the site's config text (and hash, except pw2: the
//!   upstream simulator sends none);
//! * firmware (system-info) request → the site's prepared reply (pw2: a bare `tail = 1`);
//! * signed query → by the operation in the query text. pw2 answers every query with its one
//!   status document, as upstream does. pw3 follows the rules the PW3 goldens were served with:
//!   `ComponentsQuery`/`PW3Query` → that battery's components, `DeviceControllerQuery` with
//!   variables → the full controller, any other `DeviceControllerQuery` → the status;
//! * V2026_06 queries (signed version 2): `DeviceControllerQuery` → the full controller of the
//!   same state reshaped by `sim::v2026`, `PW3Query` → the components limited to the requested
//!   signals;
//! * anything else → a bare `tail = 1`, as upstream.
//!
//! `sim::v1r` answers `/tedapi/v1r` by checking the signature and passing the bare envelope here.
//!
//! Replies use the envelope deliveryChannel 1, sender.din = the request's recipient DIN (pw2:
//! always the gateway DIN, as upstream), recipient.local 1, tail 1.

use super::data::Site;
use super::http::Response;
use super::model::Model;
use super::{render, Fixture};
use crate::gateway::proto::{Body, Message, Participant};

/// What a request asked for (the `/test/stats` counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Din,
    Config,
    /// `device_controller_basic` (DeviceControllerQuery without variables).
    Status,
    /// `device_controller_full` (DeviceControllerQuery with variables).
    Controller,
    Components,
    Firmware,
    /// Any request to `/tedapi/device/<din>/v1` (counted in addition to its payload kind).
    DeviceRouted,
    Login,
    Api,
    Other,
    /// A signed v1r write (config update, island mode) applied to the site.
    Write,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Din,
        Kind::Config,
        Kind::Status,
        Kind::Controller,
        Kind::Components,
        Kind::Firmware,
        Kind::DeviceRouted,
        Kind::Login,
        Kind::Api,
        Kind::Other,
        Kind::Write,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Din => "din",
            Kind::Config => "config",
            Kind::Status => "status",
            Kind::Controller => "controller",
            Kind::Components => "components",
            Kind::Firmware => "firmware",
            Kind::DeviceRouted => "device_routed",
            Kind::Login => "login",
            Kind::Api => "api",
            Kind::Other => "other",
            Kind::Write => "write",
        }
    }
}

/// The reply of a bare `Message { tail = 1 }`.
const TAIL_ONLY: [u8; 4] = [0x12, 0x02, 0x08, 0x01];

pub const PROTOBUF: &str = "application/octet-stream";

/// `GET /tedapi/din`.
pub fn din(site: &Site) -> Response {
    Response::text(200, site.din)
}

/// A query's payload kind from its signed text and variables.
pub fn classify_query(text: &str, variables: &str) -> Kind {
    if text.contains("ComponentsQuery") || text.contains("PW3Query") {
        Kind::Components
    } else if text.contains("DeviceControllerQuery") {
        let v = variables.trim();
        if v.is_empty() || v == "{}" {
            Kind::Status
        } else {
            Kind::Controller
        }
    } else {
        Kind::Other
    }
}

/// `POST /tedapi/v1` (`routed_to = None`) or `/tedapi/device/<din>/v1`. With `break_json` the
/// JSON inside a valid reply is cut in half (the `badjson` fault).
pub fn post(
    site: &Site,
    model: &Model,
    body: &[u8],
    routed_to: Option<&str>,
    break_json: bool,
) -> (Kind, Response) {
    let Ok(msg) = Message::decode(body) else {
        // Upstream answers an unparsable body with 500 and no body.
        return (Kind::Other, Response::new(500, PROTOBUF, Vec::new()));
    };
    let recipient = match &msg.envelope.recipient {
        Some(Participant::Din(d)) => d.as_str(),
        _ => "",
    };
    let sender = if site.fixture == Fixture::Pw2 || recipient.is_empty() {
        site.din
    } else {
        recipient
    };
    let breaking = |s: String| if break_json { cut(s) } else { s };
    let (kind, bytes) = match &msg.envelope.body {
        Body::ReadFile { name, .. } => {
            let (text, hash) = model.config_file(site);
            let reply = Message::reply(
                sender,
                Body::ReadFileResponse {
                    name: name.clone(),
                    blob: breaking(text.to_string()).into_bytes(),
                    hash: hash.to_vec(),
                },
            );
            (Kind::Config, reply.encode())
        }
        Body::SystemInfoRequest => (Kind::Firmware, site.firmware_reply.clone()),
        Body::Query(q) => {
            let (version, text) = q
                .text()
                .map(|(v, t)| (v, String::from_utf8_lossy(&t).into_owned()))
                .unwrap_or_default();
            let kind = classify_query(&text, &q.variables);
            let (status, data) = match (site.fixture, kind) {
                // V2026_06 (signed query version 2): the same state, reshaped (`sim::v2026`).
                (f, Kind::Status | Kind::Controller) if version == 2 => (
                    if f == Fixture::Pw2 { 0 } else { 1 },
                    super::v2026::controller(&render::controller(site, model), &text),
                ),
                (Fixture::Pw3, Kind::Components) if version == 2 => {
                    let din = [recipient, routed_to.unwrap_or("")]
                        .into_iter()
                        .find(|d| site.components_of(d).is_some())
                        .unwrap_or(site.din);
                    let doc = render::components(site, model, din).unwrap_or_default();
                    (1, super::v2026::components(&doc, &text))
                }
                (Fixture::Pw2, _) => (0, render::status(site, model)),
                (_, Kind::Status) => (1, render::status(site, model)),
                (_, Kind::Controller) => (1, render::controller(site, model)),
                (Fixture::Pw3, Kind::Components) => {
                    let din = [recipient, routed_to.unwrap_or("")]
                        .into_iter()
                        .find(|d| site.components_of(d).is_some())
                        .unwrap_or(site.din);
                    (1, render::components(site, model, din).unwrap_or_default())
                }
                // A PW2 has no PW3 components: empty groups.
                (_, Kind::Components) => (
                    1,
                    r#"{"components": {"pws": [], "pch": [], "bms": [], "hvp": [], "baggr": []}}"#
                        .to_string(),
                ),
                // An operation we do not simulate: ERROR_FULL without data.
                _ => (3, String::new()),
            };
            let reply = Message::reply(
                sender,
                Body::QueryResponse {
                    status,
                    data: breaking(data),
                },
            );
            (kind, reply.encode())
        }
        _ => (Kind::Other, TAIL_ONLY.to_vec()),
    };
    (kind, Response::new(200, PROTOBUF, bytes))
}

/// The first half of a JSON text (at a character boundary): valid UTF-8, invalid JSON.
fn cut(mut s: String) -> String {
    let mut n = s.len() / 2;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s.truncate(n);
    if s.is_empty() {
        s.push('{');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::queries::{QuerySet, SignedQueries};

    fn ask(site: &Site, body: Body, din: &str, routed: Option<&str>) -> (Kind, Message) {
        let m = Model::new(site, true, 0.0);
        let req = Message::request(din, routed.map(|_| site.din), body);
        let (kind, resp) = post(site, &m, &req.encode(), routed, false);
        assert_eq!(resp.status, 200);
        (kind, Message::decode(&resp.body).unwrap())
    }

    fn data(m: &Message) -> String {
        match &m.envelope.body {
            Body::QueryResponse { data, .. } => data.clone(),
            other => panic!("not a query response: {other:?}"),
        }
    }

    #[test]
    fn pw3_dispatch_follows_the_golden_rules() {
        let site = Site::load(Fixture::Pw3).unwrap();
        let q = SignedQueries::load(QuerySet::V2024_06).unwrap();
        let follower = "1707000-11-J--TG12000000002Z";
        let (k, m) = ask(&site, Body::Query(q.basic.clone()), site.din, None);
        assert_eq!((k, data(&m).as_str()), (Kind::Status, site.status.text));
        let (k, m) = ask(&site, Body::Query(q.full.clone()), site.din, None);
        assert_eq!(k, Kind::Controller);
        assert_eq!(data(&m), site.controller.as_ref().unwrap().text);
        let (k, m) = ask(
            &site,
            Body::Query(q.components.clone()),
            follower,
            Some(follower),
        );
        assert_eq!(k, Kind::Components);
        assert_eq!(data(&m), site.components_of(follower).unwrap().text);
        assert_eq!(
            m.envelope.sender,
            Some(Participant::Din(follower.to_string()))
        );
        // V2026: PW3Query is the components role, DeviceControllerQuery with "{}" the status.
        let q26 = SignedQueries::load(QuerySet::V2026_06).unwrap();
        assert_eq!(
            ask(&site, Body::Query(q26.components), site.din, None).0,
            Kind::Components
        );
        assert_eq!(
            ask(&site, Body::Query(q26.full), site.din, None).0,
            Kind::Status
        );
    }

    #[test]
    fn pw2_answers_like_upstream() {
        let site = Site::load(Fixture::Pw2).unwrap();
        let m = Model::new(&site, true, 0.0);
        let req = Message::request(site.din, None, Body::SystemInfoRequest);
        let (k, resp) = post(&site, &m, &req.encode(), None, false);
        assert_eq!((k, resp.body.as_slice()), (Kind::Firmware, &TAIL_ONLY[..]));
        let (k, resp) = post(&site, &m, b"\xff\xff\xff", None, false);
        assert_eq!((k, resp.status), (Kind::Other, 500));
        let q = SignedQueries::load(QuerySet::V2024_06).unwrap();
        let (k, m) = ask(&site, Body::Query(q.components), site.din, None);
        assert_eq!((k, data(&m).as_str()), (Kind::Components, site.status.text));
    }

    #[test]
    fn cut_breaks_json() {
        assert_eq!(cut("{\"a\": \"é\"}".to_string()), "{\"a\":");
        assert_eq!(cut(String::new()), "{");
    }
}
