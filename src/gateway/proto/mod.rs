//! TEDAPI protobuf messages, written by hand from the field tables of the wire spec.
//!
//! One Rust layout covers both the reverse-engineered "legacy" schema and Tesla's own names
//! (they are wire-compatible); we use Tesla's names. Only the parts we send or read are modelled:
//! the outer `Message` + `Tail`, the `MessageEnvelope` with its `Participant`s, system info
//! (field 4), FileStore config reads (field 15) and signed GraphQL queries (field 16). Any other
//! envelope payload is kept as raw bytes ([`Body::Other`]) so the simulator can still answer it.
//!
//! Decoding never panics: every length is checked by quick-protobuf's reader, and a malformed
//! message is a [`ProtoError`]. Unknown fields are skipped, as protobuf requires.

use quick_protobuf::{BytesReader, Writer};

mod routable;
pub use routable::{
    bytes_to_sign, config_envelope, expires_at, RoutableMessage, DOMAIN_ENERGY_DEVICE,
    SIGNATURE_TTL,
};

/// A message the gateway (or a client) sent that we could not decode.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtoError(pub String);

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad protobuf: {}", self.0)
    }
}

impl std::error::Error for ProtoError {}

impl From<quick_protobuf::Error> for ProtoError {
    fn from(e: quick_protobuf::Error) -> ProtoError {
        ProtoError(e.to_string())
    }
}

pub(crate) type Result<T> = std::result::Result<T, ProtoError>;

/// `deliveryChannel` values.
pub const CHANNEL_LOCAL_HTTPS: i32 = 1;
pub const CHANNEL_HERMES_COMMAND: i32 = 2;

/// GraphQL query format: signed with Tesla's ECDSA key (the only one gateways accept from us).
pub const FORMAT_SIGNED: i32 = 2;

/// FileStore domain of `config.json`.
pub const DOMAIN_CONFIG_JSON: i32 = 1;

/// Who sent or should receive an envelope (`Participant`, a oneof).
#[derive(Debug, Clone, PartialEq)]
pub enum Participant {
    Din(String),
    TeslaService(i32),
    /// 1 = INSTALLER (what Wi-Fi requests use), 2 = CUSTOMER.
    Local(i32),
    /// 1 = CUSTOMER_MOBILE_APP (v1r config and TEG requests).
    AuthorizedClient(i32),
}

/// A signed GraphQL query request (`graphql.queryRequest`, field 16.1).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// Always [`FORMAT_SIGNED`] for queries we send.
    pub format: i32,
    /// The serialised `SignedGraphQLQuery {1 version, 2 query text}` — what the signature covers.
    pub signed_query: Vec<u8>,
    /// DER ECDSA signature by Tesla.
    pub signature: Vec<u8>,
    /// Variables JSON (`"{}"` when there are none); not covered by the signature.
    pub variables: String,
}

/// The system-info answer (`common.getSystemInfoResponse`, legacy `firmware.system`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemInfo {
    pub part_number: String,
    pub serial_number: String,
    pub din: String,
    pub version: String,
    pub githash: Vec<u8>,
    pub device_type: Option<i32>,
}

/// What an envelope carries (fields 4–17 form a oneof).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Body {
    #[default]
    Empty,
    /// Field 4 with `getSystemInfoRequest` (field 2).
    SystemInfoRequest,
    /// Field 4 with `getSystemInfoResponse` (field 3).
    SystemInfoResponse(SystemInfo),
    /// Field 4 with `errorResponse` (field 1): its `google.rpc.Status` code and message.
    ErrorResponse { code: i32, message: String },
    /// Field 4 with something else: raw bytes of field 4.
    Common(Vec<u8>),
    /// Field 15 `readFileRequest` (field 1).
    ReadFile { domain: i32, name: String },
    /// Field 15 `readFileResponse` (field 2): file name, contents (field 100) and hash.
    ReadFileResponse {
        name: String,
        blob: Vec<u8>,
        hash: Vec<u8>,
    },
    /// Field 15 `updateFileRequest` (field 5): write `blob` as file `name` if the stored file
    /// still has `hash` (the hash of the preceding read: an optimistic lock). v1r only.
    UpdateFile {
        domain: i32,
        name: String,
        blob: Vec<u8>,
        hash: Vec<u8>,
    },
    /// Field 15 `updateFileResponse` (field 6): the file (name, usually no blob) and its new hash.
    UpdateFileResponse { name: String, hash: Vec<u8> },
    /// Field 5 (TEG) `setIslandModeRequest` (field 3): mode 6 + force opens the grid contactor
    /// (intentional islanding), mode 1 closes it. v1r only.
    SetIslandMode { mode: i32, force: bool },
    /// Field 5 (TEG) `setIslandModeResponse` (field 4): `result` (1 is the observed success).
    SetIslandModeResponse { result: Option<i32> },
    /// Field 16 `queryRequest` (field 1).
    /// Shared: a poller sends the same signed query every tick.
    Query(std::sync::Arc<Query>),
    /// Field 16 `queryResponse` (field 2): status and the JSON `data`.
    QueryResponse { status: i32, data: String },
    /// Any other payload field, raw.
    Other { field: u32, bytes: Vec<u8> },
}

/// `MessageEnvelope`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    pub delivery_channel: i32,
    pub sender: Option<Participant>,
    pub recipient: Option<Participant>,
    pub body: Body,
}

/// The outer `Message` (HTTP body of `/tedapi/v1`): envelope + `Tail {1 value}`.
/// `tail` is 1 for the local gateway and 2 for a request routed to a follower.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub envelope: Envelope,
    pub tail: i32,
}

// ---------------------------------------------------------------------------------------------
// Constructors for the requests we send (spec §1.6)
// ---------------------------------------------------------------------------------------------

impl Query {
    /// A signed query from the stored text/signature/variables (V2024_06 uses version 1).
    pub fn signed(version: u32, text: &[u8], signature: Vec<u8>, variables: &str) -> Query {
        let mut signed_query = Vec::new();
        {
            let mut w = Writer::new(&mut signed_query);
            // Writing into a Vec cannot fail.
            let _ = w.write_with_tag(1 << 3, |w| w.write_uint32(version));
            let _ = w.write_with_tag(2 << 3 | 2, |w| w.write_bytes(text));
        }
        Query {
            format: FORMAT_SIGNED,
            signed_query,
            signature,
            variables: variables.to_string(),
        }
    }

    /// The query's (version, GraphQL text), read back from the signed bytes.
    pub fn text(&self) -> Result<(u32, Vec<u8>)> {
        let b = &self.signed_query;
        let mut r = BytesReader::from_bytes(b);
        let (mut version, mut text) = (0, Vec::new());
        while !r.is_eof() {
            match r.next_tag(b)? {
                8 => version = r.read_uint32(b)?,
                18 => text = r.read_bytes(b)?.to_vec(),
                t => r.read_unknown(b, t)?,
            }
        }
        Ok((version, text))
    }
}

impl Message {
    /// A Wi-Fi request from the installer to `din` (tail 1), or routed from the leader to a
    /// follower (`via_leader = Some(leader DIN)`, tail 2).
    pub fn request(din: &str, via_leader: Option<&str>, body: Body) -> Message {
        let (sender, tail) = match via_leader {
            Some(leader) => (Participant::Din(leader.to_string()), 2),
            None => (Participant::Local(1), 1),
        };
        Message {
            envelope: Envelope {
                delivery_channel: CHANNEL_LOCAL_HTTPS,
                sender: Some(sender),
                recipient: Some(Participant::Din(din.to_string())),
                body,
            },
            tail,
        }
    }

    /// A gateway reply: sender = the gateway DIN, recipient = local installer, tail 1.
    pub fn reply(din: &str, body: Body) -> Message {
        Message {
            envelope: Envelope {
                delivery_channel: CHANNEL_LOCAL_HTTPS,
                sender: Some(Participant::Din(din.to_string())),
                recipient: Some(Participant::Local(1)),
                body,
            },
            tail: 1,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let env = self.envelope.encode();
        let mut tail = Vec::new();
        put_varint(&mut tail, 1, self.tail as i64);
        let mut out = Vec::with_capacity(env.len() + 8);
        put_bytes(&mut out, 1, &env);
        put_bytes(&mut out, 2, &tail);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Message> {
        let mut r = BytesReader::from_bytes(b);
        let mut m = Message::default();
        let mut seen_envelope = false;
        while !r.is_eof() {
            match r.next_tag(b)? {
                10 => {
                    m.envelope = Envelope::decode(r.read_bytes(b)?)?;
                    seen_envelope = true;
                }
                18 => {
                    let t = r.read_bytes(b)?;
                    let mut tr = BytesReader::from_bytes(t);
                    while !tr.is_eof() {
                        match tr.next_tag(t)? {
                            8 => m.tail = tr.read_int32(t)?,
                            x => tr.read_unknown(t, x)?,
                        }
                    }
                }
                t => r.read_unknown(b, t)?,
            }
        }
        if !seen_envelope && m.tail == 0 && !b.is_empty() {
            return Err(ProtoError("no envelope and no tail".into()));
        }
        Ok(m)
    }
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.delivery_channel != 0 {
            put_varint(&mut out, 1, self.delivery_channel as i64);
        }
        if let Some(p) = &self.sender {
            put_bytes(&mut out, 2, &p.encode());
        }
        if let Some(p) = &self.recipient {
            put_bytes(&mut out, 3, &p.encode());
        }
        match &self.body {
            Body::Empty => {}
            Body::SystemInfoRequest => {
                let mut inner = Vec::new();
                put_bytes(&mut inner, 2, &[]);
                put_bytes(&mut out, 4, &inner);
            }
            Body::SystemInfoResponse(info) => {
                let mut inner = Vec::new();
                put_bytes(&mut inner, 3, &info.encode());
                put_bytes(&mut out, 4, &inner);
            }
            Body::ErrorResponse { code, message } => {
                let mut status = Vec::new();
                if *code != 0 {
                    put_varint(&mut status, 1, *code as i64);
                }
                put_bytes(&mut status, 2, message.as_bytes());
                let mut err = Vec::new();
                put_bytes(&mut err, 1, &status);
                let mut inner = Vec::new();
                put_bytes(&mut inner, 1, &err);
                put_bytes(&mut out, 4, &inner);
            }
            Body::Common(raw) => put_bytes(&mut out, 4, raw),
            Body::ReadFile { domain, name } => {
                let mut req = Vec::new();
                put_varint(&mut req, 1, *domain as i64);
                put_bytes(&mut req, 2, name.as_bytes());
                let mut fs = Vec::new();
                put_bytes(&mut fs, 1, &req);
                put_bytes(&mut out, 15, &fs);
            }
            Body::ReadFileResponse { name, blob, hash } => {
                let mut resp = Vec::new();
                put_bytes(&mut resp, 1, &file(name, blob));
                if !hash.is_empty() {
                    put_bytes(&mut resp, 2, hash);
                }
                let mut fs = Vec::new();
                put_bytes(&mut fs, 2, &resp);
                put_bytes(&mut out, 15, &fs);
            }
            Body::UpdateFile {
                domain,
                name,
                blob,
                hash,
            } => {
                let mut req = Vec::new();
                put_varint(&mut req, 1, *domain as i64);
                put_bytes(&mut req, 2, &file(name, blob));
                put_bytes(&mut req, 3, hash);
                let mut fs = Vec::new();
                put_bytes(&mut fs, 5, &req);
                put_bytes(&mut out, 15, &fs);
            }
            Body::UpdateFileResponse { name, hash } => {
                let mut resp = Vec::new();
                let mut f = Vec::new();
                put_bytes(&mut f, 1, name.as_bytes());
                put_bytes(&mut resp, 1, &f);
                if !hash.is_empty() {
                    put_bytes(&mut resp, 2, hash);
                }
                let mut fs = Vec::new();
                put_bytes(&mut fs, 6, &resp);
                put_bytes(&mut out, 15, &fs);
            }
            Body::SetIslandMode { mode, force } => {
                let mut req = Vec::new();
                put_varint(&mut req, 1, *mode as i64);
                if *force {
                    put_varint(&mut req, 2, 1);
                }
                let mut teg = Vec::new();
                put_bytes(&mut teg, 3, &req);
                put_bytes(&mut out, 5, &teg);
            }
            Body::SetIslandModeResponse { result } => {
                let mut resp = Vec::new();
                if let Some(r) = result {
                    put_varint(&mut resp, 1, *r as i64);
                }
                let mut teg = Vec::new();
                put_bytes(&mut teg, 4, &resp);
                put_bytes(&mut out, 5, &teg);
            }
            Body::Query(q) => {
                let mut req = Vec::new();
                put_varint(&mut req, 1, q.format as i64);
                put_bytes(&mut req, 2, &q.signed_query);
                put_bytes(&mut req, 3, &q.signature);
                let mut vars = Vec::new();
                put_bytes(&mut vars, 1, q.variables.as_bytes());
                put_bytes(&mut req, 4, &vars);
                let mut gq = Vec::new();
                put_bytes(&mut gq, 1, &req);
                put_bytes(&mut out, 16, &gq);
            }
            Body::QueryResponse { status, data } => {
                let mut resp = Vec::new();
                if *status != 0 {
                    put_varint(&mut resp, 1, *status as i64);
                }
                put_bytes(&mut resp, 2, data.as_bytes());
                let mut gq = Vec::new();
                put_bytes(&mut gq, 2, &resp);
                put_bytes(&mut out, 16, &gq);
            }
            Body::Other { field, bytes } => put_bytes(&mut out, *field, bytes),
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Envelope> {
        let mut r = BytesReader::from_bytes(b);
        let mut e = Envelope::default();
        while !r.is_eof() {
            let tag = r.next_tag(b)?;
            let field = tag >> 3;
            match (field, tag & 7) {
                (1, 0) => e.delivery_channel = r.read_int32(b)?,
                (2, 2) => e.sender = Participant::decode(r.read_bytes(b)?)?,
                (3, 2) => e.recipient = Participant::decode(r.read_bytes(b)?)?,
                (4, 2) => e.body = decode_common(r.read_bytes(b)?)?,
                (5, 2) => e.body = decode_teg(r.read_bytes(b)?)?,
                (15, 2) => e.body = decode_filestore(r.read_bytes(b)?)?,
                (16, 2) => e.body = decode_graphql(r.read_bytes(b)?)?,
                (f, 2) if (5..=17).contains(&f) => {
                    e.body = Body::Other {
                        field: f,
                        bytes: r.read_bytes(b)?.to_vec(),
                    }
                }
                _ => r.read_unknown(b, tag)?,
            }
        }
        Ok(e)
    }
}

impl Participant {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Participant::Din(d) => put_bytes(&mut out, 1, d.as_bytes()),
            Participant::TeslaService(v) => put_varint(&mut out, 2, *v as i64),
            Participant::Local(v) => put_varint(&mut out, 3, *v as i64),
            Participant::AuthorizedClient(v) => put_varint(&mut out, 4, *v as i64),
        }
        out
    }

    fn decode(b: &[u8]) -> Result<Option<Participant>> {
        let mut r = BytesReader::from_bytes(b);
        let mut p = None;
        while !r.is_eof() {
            match r.next_tag(b)? {
                10 => p = Some(Participant::Din(r.read_string(b)?.to_string())),
                16 => p = Some(Participant::TeslaService(r.read_int32(b)?)),
                24 => p = Some(Participant::Local(r.read_int32(b)?)),
                32 => p = Some(Participant::AuthorizedClient(r.read_int32(b)?)),
                t => r.read_unknown(b, t)?,
            }
        }
        Ok(p)
    }
}

impl SystemInfo {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut ecu = Vec::new();
        put_bytes(&mut ecu, 1, self.part_number.as_bytes());
        put_bytes(&mut ecu, 2, self.serial_number.as_bytes());
        put_bytes(&mut out, 1, &ecu);
        put_bytes(&mut out, 2, self.din.as_bytes());
        let mut ver = Vec::new();
        put_bytes(&mut ver, 1, self.version.as_bytes());
        if !self.githash.is_empty() {
            put_bytes(&mut ver, 2, &self.githash);
        }
        put_bytes(&mut out, 3, &ver);
        if let Some(t) = self.device_type {
            put_varint(&mut out, 6, t as i64);
        }
        out
    }

    fn decode(b: &[u8]) -> Result<SystemInfo> {
        let mut r = BytesReader::from_bytes(b);
        let mut s = SystemInfo::default();
        while !r.is_eof() {
            match r.next_tag(b)? {
                10 => {
                    let e = r.read_bytes(b)?;
                    let mut er = BytesReader::from_bytes(e);
                    while !er.is_eof() {
                        match er.next_tag(e)? {
                            10 => s.part_number = lossy(er.read_bytes(e)?),
                            18 => s.serial_number = lossy(er.read_bytes(e)?),
                            t => er.read_unknown(e, t)?,
                        }
                    }
                }
                18 => s.din = lossy(r.read_bytes(b)?),
                26 => {
                    let v = r.read_bytes(b)?;
                    let mut vr = BytesReader::from_bytes(v);
                    while !vr.is_eof() {
                        match vr.next_tag(v)? {
                            10 => s.version = lossy(vr.read_bytes(v)?),
                            18 => s.githash = vr.read_bytes(v)?.to_vec(),
                            t => vr.read_unknown(v, t)?,
                        }
                    }
                }
                48 => s.device_type = Some(r.read_int32(b)?),
                t => r.read_unknown(b, t)?,
            }
        }
        Ok(s)
    }
}

fn decode_common(b: &[u8]) -> Result<Body> {
    let mut r = BytesReader::from_bytes(b);
    let mut body = Body::Common(b.to_vec());
    while !r.is_eof() {
        match r.next_tag(b)? {
            18 => {
                r.read_bytes(b)?;
                body = Body::SystemInfoRequest;
            }
            26 => body = Body::SystemInfoResponse(SystemInfo::decode(r.read_bytes(b)?)?),
            10 => {
                let (mut code, mut message) = (0, String::new());
                let e = r.read_bytes(b)?;
                let mut er = BytesReader::from_bytes(e);
                while !er.is_eof() {
                    match er.next_tag(e)? {
                        10 => {
                            let st = er.read_bytes(e)?;
                            let mut sr = BytesReader::from_bytes(st);
                            while !sr.is_eof() {
                                match sr.next_tag(st)? {
                                    8 => code = sr.read_int32(st)?,
                                    18 => message = lossy(sr.read_bytes(st)?),
                                    t => sr.read_unknown(st, t)?,
                                }
                            }
                        }
                        t => er.read_unknown(e, t)?,
                    }
                }
                body = Body::ErrorResponse { code, message };
            }
            t => r.read_unknown(b, t)?,
        }
    }
    Ok(body)
}

fn decode_filestore(b: &[u8]) -> Result<Body> {
    let mut r = BytesReader::from_bytes(b);
    let mut body = Body::Other {
        field: 15,
        bytes: b.to_vec(),
    };
    while !r.is_eof() {
        match r.next_tag(b)? {
            10 => {
                let q = r.read_bytes(b)?;
                let mut qr = BytesReader::from_bytes(q);
                let (mut domain, mut name) = (0, String::new());
                while !qr.is_eof() {
                    match qr.next_tag(q)? {
                        8 => domain = qr.read_int32(q)?,
                        18 => name = lossy(qr.read_bytes(q)?),
                        t => qr.read_unknown(q, t)?,
                    }
                }
                body = Body::ReadFile { domain, name };
            }
            18 => {
                let q = r.read_bytes(b)?;
                let mut qr = BytesReader::from_bytes(q);
                let (mut name, mut blob, mut hash) = (String::new(), Vec::new(), Vec::new());
                while !qr.is_eof() {
                    match qr.next_tag(q)? {
                        10 => (name, blob) = decode_file(qr.read_bytes(q)?)?,
                        18 => hash = qr.read_bytes(q)?.to_vec(),
                        t => qr.read_unknown(q, t)?,
                    }
                }
                body = Body::ReadFileResponse { name, blob, hash };
            }
            42 => {
                let q = r.read_bytes(b)?;
                let mut qr = BytesReader::from_bytes(q);
                let (mut domain, mut name, mut blob, mut hash) =
                    (0, String::new(), Vec::new(), Vec::new());
                while !qr.is_eof() {
                    match qr.next_tag(q)? {
                        8 => domain = qr.read_int32(q)?,
                        18 => (name, blob) = decode_file(qr.read_bytes(q)?)?,
                        26 => hash = qr.read_bytes(q)?.to_vec(),
                        t => qr.read_unknown(q, t)?,
                    }
                }
                body = Body::UpdateFile {
                    domain,
                    name,
                    blob,
                    hash,
                };
            }
            50 => {
                let q = r.read_bytes(b)?;
                let mut qr = BytesReader::from_bytes(q);
                let (mut name, mut hash) = (String::new(), Vec::new());
                while !qr.is_eof() {
                    match qr.next_tag(q)? {
                        10 => name = decode_file(qr.read_bytes(q)?)?.0,
                        18 => hash = qr.read_bytes(q)?.to_vec(),
                        t => qr.read_unknown(q, t)?,
                    }
                }
                body = Body::UpdateFileResponse { name, hash };
            }
            t => r.read_unknown(b, t)?,
        }
    }
    Ok(body)
}

/// `FileStoreAPIFile {1 name, 100 blob}`.
fn file(name: &str, blob: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    put_bytes(&mut f, 1, name.as_bytes());
    put_bytes(&mut f, 100, blob);
    f
}

/// `FileStoreAPIFile` → (name, blob).
fn decode_file(f: &[u8]) -> Result<(String, Vec<u8>)> {
    let mut fr = BytesReader::from_bytes(f);
    let (mut name, mut blob) = (String::new(), Vec::new());
    while !fr.is_eof() {
        match fr.next_tag(f)? {
            10 => name = lossy(fr.read_bytes(f)?),
            802 => blob = fr.read_bytes(f)?.to_vec(),
            t => fr.read_unknown(f, t)?,
        }
    }
    Ok((name, blob))
}

/// Field 5 (`TEGMessages`): the island-mode request and response; anything else stays raw.
fn decode_teg(b: &[u8]) -> Result<Body> {
    let mut r = BytesReader::from_bytes(b);
    let mut body = Body::Other {
        field: 5,
        bytes: b.to_vec(),
    };
    while !r.is_eof() {
        match r.next_tag(b)? {
            26 => {
                let q = r.read_bytes(b)?;
                let mut qr = BytesReader::from_bytes(q);
                let (mut mode, mut force) = (0, false);
                while !qr.is_eof() {
                    match qr.next_tag(q)? {
                        8 => mode = qr.read_int32(q)?,
                        16 => force = qr.read_bool(q)?,
                        t => qr.read_unknown(q, t)?,
                    }
                }
                body = Body::SetIslandMode { mode, force };
            }
            34 => {
                let q = r.read_bytes(b)?;
                let mut qr = BytesReader::from_bytes(q);
                let mut result = None;
                while !qr.is_eof() {
                    match qr.next_tag(q)? {
                        8 => result = Some(qr.read_int32(q)?),
                        t => qr.read_unknown(q, t)?,
                    }
                }
                body = Body::SetIslandModeResponse { result };
            }
            t => r.read_unknown(b, t)?,
        }
    }
    Ok(body)
}

fn decode_graphql(b: &[u8]) -> Result<Body> {
    let mut r = BytesReader::from_bytes(b);
    let mut body = Body::Other {
        field: 16,
        bytes: b.to_vec(),
    };
    while !r.is_eof() {
        match r.next_tag(b)? {
            10 => {
                let q = r.read_bytes(b)?;
                let mut qr = BytesReader::from_bytes(q);
                let mut query = Query::default();
                while !qr.is_eof() {
                    match qr.next_tag(q)? {
                        8 => query.format = qr.read_int32(q)?,
                        18 => query.signed_query = qr.read_bytes(q)?.to_vec(),
                        26 => query.signature = qr.read_bytes(q)?.to_vec(),
                        34 => {
                            let v = qr.read_bytes(q)?;
                            let mut vr = BytesReader::from_bytes(v);
                            while !vr.is_eof() {
                                match vr.next_tag(v)? {
                                    10 => query.variables = lossy(vr.read_bytes(v)?),
                                    t => vr.read_unknown(v, t)?,
                                }
                            }
                        }
                        t => qr.read_unknown(q, t)?,
                    }
                }
                body = Body::Query(std::sync::Arc::new(query));
            }
            18 => {
                let q = r.read_bytes(b)?;
                let mut qr = BytesReader::from_bytes(q);
                let (mut status, mut data) = (0, String::new());
                while !qr.is_eof() {
                    match qr.next_tag(q)? {
                        8 => status = qr.read_int32(q)?,
                        18 => data = lossy(qr.read_bytes(q)?),
                        t => qr.read_unknown(q, t)?,
                    }
                }
                body = Body::QueryResponse { status, data };
            }
            t => r.read_unknown(b, t)?,
        }
    }
    Ok(body)
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn put_varint(out: &mut Vec<u8>, field: u32, v: i64) {
    let mut w = Writer::new(out);
    // Writing into a Vec cannot fail.
    let _ = w.write_with_tag(field << 3, |w| w.write_int64(v));
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    let mut w = Writer::new(out);
    let _ = w.write_with_tag(field << 3 | 2, |w| w.write_bytes(bytes));
}

/// Deterministic pseudo-random bytes (xorshift32) for the decoders' garbage tests; `seed`
/// carries the state from one call to the next.
#[cfg(test)]
pub(crate) fn noise(seed: &mut u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            *seed as u8
        })
        .collect()
}

#[cfg(test)]
mod tests;
