//! v1r requests and replies, pure: the signed `RoutableMessage` ([`signed_request`]), the
//! HTTP status + reply → inner envelope or typed error ([`decode_reply`], the fault table of
//! spec §3.5, "authorization not verified", empty replies) and the inner envelope → document
//! ([`decode_inner`]). No network, no state; unit-tested in `tests.rs`.

use std::time::SystemTime;

use crate::config::rsa_key::RsaKey;
use crate::gateway::proto::{
    bytes_to_sign, expires_at, Body, Envelope, Message, RoutableMessage, DOMAIN_ENERGY_DEVICE,
};
use crate::gateway::tedapi::{self, Error, Expect, Reply};
use crate::gateway::Firmware;
use crate::wire::hex_lower as hex;

/// A serialised, signed `RoutableMessage` carrying `envelope` (bare `MessageEnvelope` bytes).
pub fn signed_request(
    key: &RsaKey,
    leader_din: &str,
    envelope: &[u8],
    now_unix: f64,
    uuid: &str,
) -> Result<Vec<u8>, Error> {
    let expires = expires_at(now_unix);
    let signature = key
        .sign(&bytes_to_sign(leader_din, expires, envelope).map_err(|e| Error::BadReply(e.0))?)
        .map_err(Error::BadReply)?;
    Ok(RoutableMessage {
        to_domain: Some(DOMAIN_ENERGY_DEVICE),
        payload: envelope.to_vec(),
        public_key: key.public_der().to_vec(),
        expires_at: expires,
        signature,
        uuid: uuid.as_bytes().to_vec(),
        ..RoutableMessage::default()
    }
    .encode())
}

/// A random UUID4 in its text form.
pub fn uuid4() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // No OS randomness: a time-derived id still differs per request.
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `MessageFault_E` names (spec §3.3).
pub fn fault_name(code: i32) -> &'static str {
    const NAMES: [&str; 23] = [
        "NONE",
        "BUSY",
        "TIMEOUT",
        "UNKNOWN_KEY_ID",
        "INACTIVE_KEY",
        "INVALID_SIGNATURE",
        "INVALID_TOKEN_OR_COUNTER",
        "INSUFFICIENT_PRIVILEGES",
        "INVALID_DOMAINS",
        "INVALID_COMMAND",
        "DECODING",
        "INTERNAL",
        "WRONG_PERSONALIZATION",
        "BAD_PARAMETER",
        "KEYCHAIN_IS_FULL",
        "INCORRECT_EPOCH",
        "IV_INCORRECT_LENGTH",
        "TIME_EXPIRED",
        "NOT_PROVISIONED_WITH_IDENTITY",
        "COULD_NOT_HASH_METADATA",
        "TIME_TO_LIVE_TOO_LONG",
        "REMOTE_ACCESS_DISABLED",
        "REMOTE_SERVICE_REQUEST_NOT_SUPPORTED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN_FAULT")
}

pub const FAULT_TIMEOUT: i32 = 2;
pub const FAULT_UNKNOWN_KEY_ID: i32 = 3;
pub const FAULT_INVALID_SIGNATURE: i32 = 5;
pub const FAULT_TIME_EXPIRED: i32 = 17;

const NOT_VERIFIED: &[u8] = b"authorization not verified";

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A `/tedapi/v1r` reply → the inner envelope bytes (spec §3.5). `fingerprint` goes into the
/// key-problem messages so users can compare it with what `pypowerwall register` printed.
pub fn decode_reply(status: u16, body: &[u8], fingerprint: &str) -> Result<Vec<u8>, Error> {
    match status {
        200 => {}
        401 | 403 => return Err(Error::Auth),
        code => return Err(Error::Http(code)),
    }
    let hint = |what: &str| {
        format!(
            "{what}; key fingerprint (SHA-256 of the public key): {fingerprint}; register or \
             verify the key with `python -m pypowerwall register`"
        )
    };
    let pending = || {
        Error::Rejected(format!(
            "the RSA key is registered but PENDING_VERIFICATION: switch one Powerwall's breaker \
             off for a few seconds and on again to confirm it (fingerprint {fingerprint})"
        ))
    };
    let msg = match RoutableMessage::decode(body) {
        Ok(m) => m,
        Err(_) if contains_ci(body, NOT_VERIFIED) => return Err(pending()),
        Err(e) => return Err(Error::BadReply(format!("v1r reply: {e}"))),
    };
    match msg.fault {
        0 => {}
        FAULT_UNKNOWN_KEY_ID => {
            return Err(Error::Rejected(hint(
                "UNKNOWN_KEY_ID: the gateway does not know this RSA key (wrong key file, or \
                 not registered)",
            )))
        }
        FAULT_TIMEOUT => {
            return Err(Error::Rejected(
                "TIMEOUT: the sub-device is not routable over v1r".into(),
            ))
        }
        FAULT_TIME_EXPIRED => {
            return Err(Error::Rejected(
                "TIME_EXPIRED: the signature had expired on arrival; check that this host's \
                 clock agrees with the gateway's"
                    .into(),
            ))
        }
        code => {
            return Err(Error::Rejected(format!(
                "message fault {} ({code})",
                fault_name(code)
            )))
        }
    }
    if contains_ci(body, NOT_VERIFIED) || contains_ci(&msg.payload, NOT_VERIFIED) {
        return Err(pending());
    }
    if msg.payload.is_empty() {
        return Err(Error::Rejected(hint(
            "the gateway answered without data (the RSA key may not be registered)",
        )));
    }
    Ok(msg.payload)
}

/// The inner bytes of a v1r reply → a decoded reply. They are a bare `MessageEnvelope`; a full
/// `Message` and, for JSON answers, the first balanced `{…}` in the bytes are the fallbacks.
pub fn decode_inner(inner: &[u8], expect: Expect) -> Result<Reply, Error> {
    let mut bodies = Vec::new();
    if let Ok(env) = Envelope::decode(inner) {
        bodies.push(env.body);
    }
    if let Ok(msg) = Message::decode(inner) {
        bodies.push(msg.envelope.body);
    }
    for body in bodies {
        match (expect, body) {
            (Expect::Config, Body::ReadFileResponse { blob, .. }) => {
                return tedapi::config_json(&blob).map(Reply::Json)
            }
            (Expect::Query | Expect::QueryStrict, Body::QueryResponse { data, .. }) => {
                return tedapi::query_json(&data, expect == Expect::QueryStrict).map(Reply::Json)
            }
            (Expect::Firmware, Body::SystemInfoResponse(info)) => {
                return Ok(Reply::Firmware(Firmware {
                    version: info.version,
                    githash: info.githash,
                    part_number: info.part_number,
                    serial_number: info.serial_number,
                    din: info.din,
                    device_type: info.device_type,
                }))
            }
            _ => {}
        }
    }
    match expect {
        Expect::Firmware => Ok(Reply::Firmware(Firmware::default())),
        Expect::Config | Expect::Query | Expect::QueryStrict => match first_json_object(inner) {
            Some(text) => match expect {
                Expect::Config => tedapi::config_json(text).map(Reply::Json),
                _ => tedapi::query_json(&String::from_utf8_lossy(text), true).map(Reply::Json),
            },
            None => Err(Error::BadReply("v1r reply carries no JSON document".into())),
        },
        Expect::Din => Err(Error::BadReply("no DIN in a v1r reply".into())),
    }
}

/// The first balanced `{…}` (braces counted, as upstream's fallback does).
fn first_json_object(b: &[u8]) -> Option<&[u8]> {
    let start = b.iter().position(|&c| c == b'{')?;
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate().skip(start) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return b.get(start..=i);
                }
            }
            _ => {}
        }
    }
    None
}
