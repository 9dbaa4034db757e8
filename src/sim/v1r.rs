//! The PW3 wired-LAN side of the simulator: JSON customer login for a Bearer token and
//! `POST /tedapi/v1r` with RSA-signed `RoutableMessage`s (spec §3).
//!
//! A signed message is checked the way the gateway's fault table says (§3.3, §3.5), in this
//! order: undecodable → `DECODING`; destination domain not 7 → `INVALID_DOMAINS`; public key not
//! the configured one → `UNKNOWN_KEY_ID`; expired → `TIME_EXPIRED`; expiring more than
//! [`MAX_TTL`] s ahead → `TIME_TO_LIVE_TOO_LONG`; signature not valid for the TLV run with the
//! **leader** DIN → `INVALID_SIGNATURE`; recipient a follower → `TIMEOUT` (not routable over
//! v1r). The `/test/v1r/pending` knob answers "authorization not verified" instead (a key that
//! is registered but awaits the breaker toggle). A good message's bare envelope is answered
//! exactly as `/tedapi/v1` would answer it, with the config read (deliveryChannel 2) included.
//! Any key size verifies here; the client insists on RSA-4096.

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::sha2::Sha512;
use rsa::signature::Verifier;

use super::data::Site;
use super::http::{Request, Response};
use super::model::Model;
use super::tedapi::{self, Kind, PROTOBUF};
use crate::gateway::proto::bytes_to_sign;
use crate::gateway::proto::{
    Body, Envelope, Message, Participant, RoutableMessage, DOMAIN_CONFIG_JSON, DOMAIN_ENERGY_DEVICE,
};

/// Longest signature lifetime accepted (clients use 12 s).
pub const MAX_TTL: f64 = 60.0;

const FAULT_TIMEOUT: i32 = 2;
const FAULT_UNKNOWN_KEY_ID: i32 = 3;
const FAULT_INVALID_SIGNATURE: i32 = 5;
const FAULT_INVALID_DOMAINS: i32 = 8;
const FAULT_DECODING: i32 = 10;
const FAULT_TIME_EXPIRED: i32 = 17;
const FAULT_TTL_TOO_LONG: i32 = 20;

/// What the simulator checks signed messages against.
pub struct V1rGate {
    public_der: Vec<u8>,
    verifier: VerifyingKey<Sha512>,
}

impl V1rGate {
    /// From the registered public key (DER PKCS#1, as `tedapi_rsa_public.der`).
    pub fn new(public_der: &[u8]) -> Result<V1rGate, String> {
        let key = rsa::PublicKey::from_pkcs1_der(public_der)
            .map_err(|e| format!("sim: the v1r public key is not DER PKCS#1: {e}"))?;
        Ok(V1rGate {
            public_der: public_der.to_vec(),
            verifier: VerifyingKey::<Sha512>::new(key),
        })
    }
}

/// The Bearer token of login generation `generation`.
pub fn token(generation: u64) -> String {
    format!("sim-v1r-token-{generation}")
}

/// `POST /api/login/Basic` on the LAN port: the customer password (JSON or form body) → token.
pub fn login(req: &Request, customer: Option<&str>, generation: u64) -> Response {
    let body = String::from_utf8_lossy(&req.body);
    let password = crate::json::parse(&body).ok().and_then(|v| {
        v.get("password")
            .and_then(|p| p.as_str())
            .map(str::to_string)
    });
    if customer.is_some_and(|c| password.as_deref() != Some(c)) {
        return Response::json(
            401,
            r#"{"code":401,"error":"bad credentials","message":"Login Error"}"#,
        );
    }
    Response::json(
        200,
        format!(
            r#"{{"email":"customer@customer.domain","firstname":"Tesla","lastname":"Energy","roles":["Home_Owner"],"token":"{}","provider":"Basic","loginTime":"2024-06-21T12:00:00.000000000-08:00"}}"#,
            token(generation)
        ),
    )
}

/// Whether `header` is `Bearer <token of generation>`.
pub fn bearer_ok(header: Option<&str>, generation: u64) -> bool {
    header
        .and_then(|h| h.trim().split_once(' '))
        .is_some_and(|(scheme, t)| {
            scheme.eq_ignore_ascii_case("bearer") && t.trim() == token(generation)
        })
}

fn fault(code: i32, uuid: &[u8]) -> Response {
    let m = RoutableMessage {
        fault: code,
        request_uuid: uuid.to_vec(),
        ..RoutableMessage::default()
    };
    Response::new(200, PROTOBUF, m.encode())
}

/// `POST /tedapi/v1r`: (the payload kind for the counters, the answer).
#[allow(clippy::too_many_arguments)]
pub fn post(
    gate: &V1rGate,
    site: &Site,
    model: &mut Model,
    body: &[u8],
    now: f64,
    pending: bool,
    break_json: bool,
    refuse_writes: bool,
) -> (Kind, Response) {
    let Ok(msg) = RoutableMessage::decode(body) else {
        return (Kind::Other, fault(FAULT_DECODING, &[]));
    };
    let uuid = msg.uuid.clone();
    if msg.to_domain != Some(DOMAIN_ENERGY_DEVICE) {
        return (Kind::Other, fault(FAULT_INVALID_DOMAINS, &uuid));
    }
    if msg.public_key != gate.public_der {
        return (Kind::Other, fault(FAULT_UNKNOWN_KEY_ID, &uuid));
    }
    let expires = f64::from(msg.expires_at);
    if expires < now {
        return (Kind::Other, fault(FAULT_TIME_EXPIRED, &uuid));
    }
    if expires > now + MAX_TTL {
        return (Kind::Other, fault(FAULT_TTL_TOO_LONG, &uuid));
    }
    let signed = match bytes_to_sign(site.din, msg.expires_at, &msg.payload) {
        Ok(b) => b,
        Err(_) => return (Kind::Other, fault(FAULT_INVALID_SIGNATURE, &uuid)),
    };
    let valid = Signature::try_from(msg.signature.as_slice())
        .is_ok_and(|sig| gate.verifier.verify(&signed, &sig).is_ok());
    if !valid {
        return (Kind::Other, fault(FAULT_INVALID_SIGNATURE, &uuid));
    }
    if pending {
        let m = RoutableMessage {
            payload: b"authorization not verified".to_vec(),
            request_uuid: uuid,
            ..RoutableMessage::default()
        };
        return (Kind::Other, Response::new(200, PROTOBUF, m.encode()));
    }
    let Ok(envelope) = Envelope::decode(&msg.payload) else {
        return (Kind::Other, fault(FAULT_DECODING, &uuid));
    };
    if let Some(Participant::Din(d)) = &envelope.recipient {
        if d != site.din {
            return (Kind::Other, fault(FAULT_TIMEOUT, &uuid));
        }
    }
    if let Some(body) = write(site, model, &envelope.body, refuse_writes) {
        let kind = match body {
            Body::ErrorResponse { .. } => Kind::Other,
            _ => Kind::Write,
        };
        let reply = Envelope {
            delivery_channel: envelope.delivery_channel,
            sender: Some(Participant::Din(site.din.to_string())),
            recipient: envelope.sender.clone(),
            body,
        };
        let m = RoutableMessage {
            payload: reply.encode(),
            request_uuid: uuid,
            ..RoutableMessage::default()
        };
        return (kind, Response::new(200, PROTOBUF, m.encode()));
    }
    // Answer the bare envelope as `/tedapi/v1` answers it inside a Message.
    let wrapped = Message { envelope, tail: 1 };
    let (kind, resp) = tedapi::post(site, model, &wrapped.encode(), None, break_json);
    let inner = Message::decode(&resp.body)
        .map(|m| m.envelope.encode())
        .unwrap_or_default();
    let reply = RoutableMessage {
        payload: inner,
        request_uuid: uuid,
        ..RoutableMessage::default()
    };
    (kind, Response::new(200, PROTOBUF, reply.encode()))
}

/// A write (config update, island mode) applied to `model`, or `None` for a read. With
/// `refuse` (`/test/v1r/refuse-writes/on`) every write gets a common `errorResponse`.
fn write(site: &Site, model: &mut Model, body: &Body, refuse: bool) -> Option<Body> {
    let error = |code: i32, message: &str| Body::ErrorResponse {
        code,
        message: message.to_string(),
    };
    match body {
        Body::UpdateFile { .. } | Body::SetIslandMode { .. } if refuse => {
            Some(error(7, "write refused by the gateway (simulator knob)"))
        }
        Body::UpdateFile {
            domain,
            name,
            blob,
            hash,
        } => {
            if *domain != DOMAIN_CONFIG_JSON || name != "config.json" {
                return Some(error(5, "unknown file"));
            }
            if hash.as_slice() != model.config_file(site).1 {
                return Some(error(
                    10,
                    "hash mismatch: config.json changed since it was read",
                ));
            }
            let Some(text) = std::str::from_utf8(blob)
                .ok()
                .filter(|t| crate::json::parse(t).is_ok_and(|v| v.as_object().is_some()))
            else {
                return Some(error(3, "config.json must be a JSON object"));
            };
            model.write_config(text.to_string());
            Some(Body::UpdateFileResponse {
                name: name.clone(),
                hash: model.config_file(site).1.to_vec(),
            })
        }
        Body::SetIslandMode {
            mode: 6,
            force: true,
        } => {
            model.set_grid(false);
            Some(Body::SetIslandModeResponse { result: Some(1) })
        }
        Body::SetIslandMode { mode: 1, .. } => {
            model.set_grid(true);
            Some(Body::SetIslandModeResponse { result: Some(1) })
        }
        Body::SetIslandMode { .. } => Some(Body::SetIslandModeResponse { result: Some(0) }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::v1r::{config_envelope, signed_request, RsaKey};
    use crate::sim::Fixture;

    const KEY: &str = include_str!("../../tests/fixtures/v1r/test_rsa_private.pem");
    const WRONG: &str = include_str!("../../tests/fixtures/v1r/wrong_rsa_private.pem");
    const PUB: &[u8] = include_bytes!("../../tests/fixtures/v1r/test_rsa_public.der");

    fn answer(
        key: &RsaKey,
        sign_din: &str,
        env: &Envelope,
        signed_at: f64,
        now: f64,
    ) -> RoutableMessage {
        let site = Site::load(Fixture::Pw3).unwrap();
        let mut model = Model::new(&site, true, 0.0);
        let gate = V1rGate::new(PUB).unwrap();
        let req = signed_request(key, sign_din, &env.encode(), signed_at, "u").unwrap();
        let (_, resp) = post(&gate, &site, &mut model, &req, now, false, false, false);
        assert_eq!(resp.status, 200);
        RoutableMessage::decode(&resp.body).unwrap()
    }

    #[test]
    fn verifies_signatures_expiry_and_routing() {
        let site = Site::load(Fixture::Pw3).unwrap();
        let key = RsaKey::from_pem(KEY).unwrap();
        let env = config_envelope(site.din);
        let ok = answer(&key, site.din, &env, 1000.0, 1000.0);
        assert_eq!(ok.fault, 0);
        assert_eq!(ok.request_uuid, b"u");
        match Envelope::decode(&ok.payload).unwrap().body {
            Body::ReadFileResponse { blob, .. } => assert_eq!(blob, site.config_text.as_bytes()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            answer(&key, site.din, &env, 1000.0, 1013.5).fault,
            FAULT_TIME_EXPIRED
        );
        assert_eq!(
            answer(&key, site.din, &env, 1000.0, 900.0).fault,
            FAULT_TTL_TOO_LONG
        );
        let wrong = RsaKey::from_pem(WRONG).unwrap();
        assert_eq!(
            answer(&wrong, site.din, &env, 1000.0, 1000.0).fault,
            FAULT_UNKNOWN_KEY_ID
        );
        // Personalised with another DIN: the signature does not verify.
        assert_eq!(
            answer(&key, "1707000-11-J--TG12000000002Z", &env, 1000.0, 1000.0).fault,
            FAULT_INVALID_SIGNATURE
        );
        let follower = config_envelope("1707000-11-J--TG12000000002Z");
        assert_eq!(
            answer(&key, site.din, &follower, 1000.0, 1000.0).fault,
            FAULT_TIMEOUT
        );
        // A tampered signature.
        let mut model = Model::new(&site, true, 0.0);
        let gate = V1rGate::new(PUB).unwrap();
        let mut m = RoutableMessage::decode(
            &signed_request(&key, site.din, &env.encode(), 1000.0, "u").unwrap(),
        )
        .unwrap();
        if let Some(b) = m.signature.last_mut() {
            *b ^= 1;
        }
        let (_, resp) = post(
            &gate,
            &site,
            &mut model,
            &m.encode(),
            1000.0,
            false,
            false,
            false,
        );
        assert_eq!(
            RoutableMessage::decode(&resp.body).unwrap().fault,
            FAULT_INVALID_SIGNATURE
        );
        let (_, resp) = post(
            &gate,
            &site,
            &mut model,
            b"\xff\xff",
            1000.0,
            false,
            false,
            false,
        );
        assert_eq!(
            RoutableMessage::decode(&resp.body).unwrap().fault,
            FAULT_DECODING
        );
    }

    #[test]
    fn tokens() {
        assert!(bearer_ok(Some("Bearer sim-v1r-token-3"), 3));
        assert!(!bearer_ok(Some("Bearer sim-v1r-token-2"), 3));
        assert!(!bearer_ok(None, 0));
    }
}
