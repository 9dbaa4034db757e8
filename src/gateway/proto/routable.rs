//! v1r: the RSA-signed `RoutableMessage` around a bare envelope (spec §3.3), the bytes its
//! signature covers (§3.4) and the v1r config-read envelope.
//!
//! Pure encoding, shared by the client (`gateway::v1r`) and the simulator, which needs nothing
//! but this module to check a signed message. Signing itself needs the key (`config::rsa_key`).

use quick_protobuf::{BytesReader, Writer};

use super::{
    put_bytes, put_varint, Body, Envelope, Participant, ProtoError, Result, CHANNEL_HERMES_COMMAND,
    DOMAIN_CONFIG_JSON,
};

/// Lifetime of a signature: `expires_at = ceil(now) + 12` (upstream).
pub const SIGNATURE_TTL: u32 = 12;

/// `ceil(now) + 12` as the gateway reads it (fixed32 Unix seconds).
pub fn expires_at(now_unix: f64) -> u32 {
    let now = if now_unix.is_finite() && now_unix > 0.0 {
        now_unix.ceil().min(f64::from(u32::MAX))
    } else {
        0.0
    };
    (now as u32).saturating_add(SIGNATURE_TTL)
}

/// The bytes the signature covers (spec §3.4): `00 01 07 · 01 01 07 · 02 <len> <leader DIN> ·
/// 04 04 <expires_at BE> · FF · <envelope>`.
pub fn bytes_to_sign(leader_din: &str, expires_at: u32, envelope: &[u8]) -> Result<Vec<u8>> {
    let din = leader_din.as_bytes();
    let din_len = u8::try_from(din.len())
        .map_err(|_| ProtoError("the gateway DIN is too long to sign".into()))?;
    let mut out = Vec::with_capacity(16 + din.len() + envelope.len());
    out.extend_from_slice(&[0, 1, 7, 1, 1, 7, 2, din_len]);
    out.extend_from_slice(din);
    out.extend_from_slice(&[4, 4]);
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.push(0xff);
    out.extend_from_slice(envelope);
    Ok(out)
}

/// The v1r config read: deliveryChannel 2, sender `authorizedClient` 1, FileStore read.
pub fn config_envelope(din: &str) -> Envelope {
    Envelope {
        delivery_channel: CHANNEL_HERMES_COMMAND,
        sender: Some(Participant::AuthorizedClient(1)),
        recipient: Some(Participant::Din(din.to_string())),
        body: Body::ReadFile {
            domain: DOMAIN_CONFIG_JSON,
            name: "config.json".into(),
        },
    }
}

/// `Domain` of a v1r destination: the energy device.
pub const DOMAIN_ENERGY_DEVICE: i32 = 7;

/// The v1r wrapper around a bare [`Envelope`] (Tesla `universal_message.RoutableMessage`).
/// Only the fields v1r uses are modelled; unknown fields are skipped when decoding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoutableMessage {
    /// Field 6 `to_destination.domain` (7 = ENERGY_DEVICE in requests).
    pub to_domain: Option<i32>,
    /// Field 10 `protobuf_message_as_bytes`: the serialised inner envelope.
    pub payload: Vec<u8>,
    /// Field 12 `signed_message_status.message_fault` (responses; 0 = none).
    pub fault: i32,
    /// Field 13.1.1 `signature_data.signer_identity.public_key`: DER PKCS#1 RSAPublicKey.
    pub public_key: Vec<u8>,
    /// Field 13.7.1 `signature_data.rsa_data.expires_at` (fixed32, Unix seconds).
    pub expires_at: u32,
    /// Field 13.7.2 `signature_data.rsa_data.signature`.
    pub signature: Vec<u8>,
    /// Field 50 `request_uuid` (responses may echo the request's `uuid` here).
    pub request_uuid: Vec<u8>,
    /// Field 51 `uuid`: the ASCII text of a random UUID4.
    pub uuid: Vec<u8>,
}

impl RoutableMessage {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(domain) = self.to_domain {
            let mut dest = Vec::new();
            put_varint(&mut dest, 1, domain as i64);
            put_bytes(&mut out, 6, &dest);
        }
        if !self.payload.is_empty() {
            put_bytes(&mut out, 10, &self.payload);
        }
        if self.fault != 0 {
            let mut status = Vec::new();
            put_varint(&mut status, 1, self.fault as i64);
            put_bytes(&mut out, 12, &status);
        }
        if !self.public_key.is_empty() || !self.signature.is_empty() {
            let mut identity = Vec::new();
            put_bytes(&mut identity, 1, &self.public_key);
            let mut rsa = Vec::new();
            {
                let mut w = Writer::new(&mut rsa);
                // Writing into a Vec cannot fail.
                let _ = w.write_with_tag(1 << 3 | 5, |w| w.write_fixed32(self.expires_at));
            }
            put_bytes(&mut rsa, 2, &self.signature);
            let mut sig = Vec::new();
            put_bytes(&mut sig, 1, &identity);
            put_bytes(&mut sig, 7, &rsa);
            put_bytes(&mut out, 13, &sig);
        }
        if !self.request_uuid.is_empty() {
            put_bytes(&mut out, 50, &self.request_uuid);
        }
        if !self.uuid.is_empty() {
            put_bytes(&mut out, 51, &self.uuid);
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<RoutableMessage> {
        let mut r = BytesReader::from_bytes(b);
        let mut m = RoutableMessage::default();
        while !r.is_eof() {
            match r.next_tag(b)? {
                50 => {
                    let d = r.read_bytes(b)?;
                    let mut dr = BytesReader::from_bytes(d);
                    while !dr.is_eof() {
                        match dr.next_tag(d)? {
                            8 => m.to_domain = Some(dr.read_int32(d)?),
                            t => dr.read_unknown(d, t)?,
                        }
                    }
                }
                82 => m.payload = r.read_bytes(b)?.to_vec(),
                98 => {
                    let s = r.read_bytes(b)?;
                    let mut sr = BytesReader::from_bytes(s);
                    while !sr.is_eof() {
                        match sr.next_tag(s)? {
                            8 => m.fault = sr.read_int32(s)?,
                            t => sr.read_unknown(s, t)?,
                        }
                    }
                }
                106 => {
                    let s = r.read_bytes(b)?;
                    let mut sr = BytesReader::from_bytes(s);
                    while !sr.is_eof() {
                        match sr.next_tag(s)? {
                            10 => {
                                let i = sr.read_bytes(s)?;
                                let mut ir = BytesReader::from_bytes(i);
                                while !ir.is_eof() {
                                    match ir.next_tag(i)? {
                                        10 => m.public_key = ir.read_bytes(i)?.to_vec(),
                                        t => ir.read_unknown(i, t)?,
                                    }
                                }
                            }
                            58 => {
                                let d = sr.read_bytes(s)?;
                                let mut dr = BytesReader::from_bytes(d);
                                while !dr.is_eof() {
                                    match dr.next_tag(d)? {
                                        13 => m.expires_at = dr.read_fixed32(d)?,
                                        18 => m.signature = dr.read_bytes(d)?.to_vec(),
                                        t => dr.read_unknown(d, t)?,
                                    }
                                }
                            }
                            t => sr.read_unknown(s, t)?,
                        }
                    }
                }
                402 => m.request_uuid = r.read_bytes(b)?.to_vec(),
                410 => m.uuid = r.read_bytes(b)?.to_vec(),
                t => r.read_unknown(b, t)?,
            }
        }
        Ok(m)
    }
}
