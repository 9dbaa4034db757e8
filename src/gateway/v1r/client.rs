//! The blocking v1r LAN client of one gateway: JSON customer login for a Bearer token,
//! `GET /tedapi/din` with it, signed config reads and queries; a 401/403 triggers one re-login
//! and one re-signed retry. Owned by its poller thread; the password and token never reach
//! `Debug` or a log.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::rsa_key::RsaKey;
use crate::gateway::proto::{Body, Envelope, Message, Query};
use crate::gateway::queries::{QuerySet, SignedQueries};
use crate::gateway::tedapi::{self, Error, Expect, Reply};
use crate::gateway::{tls, Firmware};
use crate::json::{self, Value};
use crate::secret::Secret;

use super::*;

/// Connection settings of a [`V1rClient`].
#[derive(Clone)]
pub struct V1rOptions {
    /// The PW3's LAN address, `host[:port]`.
    pub host: String,
    /// The customer password (`PW_PASSWORD` or the end of `PW_GW_PWD`).
    pub password: Secret,
    pub key: Arc<RsaKey>,
    pub timeout: Duration,
    pub pin: Option<tls::Fingerprint>,
    pub query_set: QuerySet,
}

impl fmt::Debug for V1rOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1rOptions")
            .field("host", &self.host)
            .field("password", &"<redacted>")
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .field("query_set", &self.query_set)
            .finish()
    }
}

/// The blocking v1r LAN client of one gateway. Owned by its poller thread.
pub struct V1rClient {
    agent: ureq::Agent,
    base: String,
    password: Secret,
    key: Arc<RsaKey>,
    queries: std::sync::Arc<SignedQueries>,
    /// Bearer token and session cookies from the login; kept out of `Debug` and logs.
    token: Option<Secret>,
    cookies: Option<Secret>,
    /// The key problem last reported (log it once per episode).
    key_problem: bool,
}

impl fmt::Debug for V1rClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1rClient")
            .field("base", &self.base)
            .field("key", &self.key)
            .field("logged_in", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl V1rClient {
    /// The agent and its keep-alive connection, for the gateway's other fetches of a tick.
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// No network traffic; fails only on an unusable host or query set.
    pub fn new(opts: V1rOptions) -> Result<V1rClient, Error> {
        Ok(V1rClient {
            agent: tedapi::agent(opts.timeout, opts.pin),
            base: tedapi::base_url(&opts.host)?,
            password: opts.password,
            key: opts.key,
            queries: SignedQueries::shared(opts.query_set).map_err(Error::BadReply)?,
            token: None,
            cookies: None,
            key_problem: false,
        })
    }

    /// `POST /api/login/Basic` with the JSON customer login → Bearer token (and cookies).
    pub fn login(&mut self) -> Result<(), Error> {
        let mut body = String::from(r#"{"username": "customer", "password": "#);
        json::write_str(&mut body, self.password.expose());
        body.push_str(
            r#", "email": "customer@customer.domain", "clientInfo": {"timezone": "America/Chicago"}}"#,
        );
        let result = self
            .agent
            .post(&format!("{}/api/login/Basic", self.base))
            .set("Content-Type", "application/json")
            .send_string(&body);
        let (status, response) = tedapi::call(result)?;
        let cookies: Vec<String> = response
            .all("set-cookie")
            .iter()
            .filter_map(|c| c.split(';').next())
            .map(|c| c.trim().to_string())
            .filter(|c| c.contains('='))
            .collect();
        let bytes = tedapi::read_body(response).unwrap_or_default();
        match status {
            200 => {}
            401 | 403 => return Err(Error::Auth),
            code => return Err(Error::Http(code)),
        }
        let token = json::parse_bytes(&bytes)
            .ok()
            .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::BadReply("v1r login answer has no token".into()))?;
        self.token = Some(Secret::new(token));
        self.cookies = (!cookies.is_empty()).then(|| Secret::new(cookies.join("; ")));
        Ok(())
    }

    fn authorized(&self, req: ureq::Request) -> ureq::Request {
        let req = match &self.token {
            Some(t) => req.set("Authorization", &format!("Bearer {}", t.expose())),
            None => req,
        };
        match &self.cookies {
            Some(c) => req.set("Cookie", c.expose()),
            None => req,
        }
    }

    /// `GET /tedapi/din` with the Bearer token (logs in first, and again once on 401/403).
    pub fn din(&mut self) -> Result<String, Error> {
        if self.token.is_none() {
            self.login()?;
        }
        let mut relogged = false;
        loop {
            let req = self.authorized(self.agent.get(&format!("{}/tedapi/din", self.base)));
            let (status, response) = tedapi::call(req.call())?;
            let body = if status == 200 {
                tedapi::read_body(response)?
            } else {
                Vec::new()
            };
            match tedapi::decode_reply(status, &body, Expect::Din) {
                Err(Error::Auth) if !relogged => {
                    relogged = true;
                    self.login()?;
                }
                Ok(Reply::Din(din)) => return Ok(din),
                Ok(other) => return Err(Error::BadReply(format!("unexpected {other:?}"))),
                Err(e) => return Err(e),
            }
        }
    }

    /// Signs `envelope` for `leader` and posts it; the inner reply bytes. A 401/403 logs in
    /// again and re-signs once (the first signature may have expired by then).
    pub fn post(&mut self, leader: &str, envelope: &Envelope) -> Result<Vec<u8>, Error> {
        if leader.is_empty() {
            return Err(Error::BadReply("no gateway DIN to sign with".into()));
        }
        let bytes = envelope.encode();
        let mut relogged = false;
        loop {
            let now = crate::clock::unix_f64(SystemTime::now());
            let body = signed_request(&self.key, leader, &bytes, now, &uuid4())?;
            let req = self
                .agent
                .post(&format!("{}/tedapi/v1r", self.base))
                .set("Content-Type", "application/octet-stream");
            let req = self.authorized(req);
            let (status, response) = tedapi::call(req.send_bytes(&body))?;
            let reply = if status == 200 {
                tedapi::read_body(response)?
            } else {
                Vec::new()
            };
            match decode_reply(status, &reply, self.key.fingerprint()) {
                Err(Error::Auth) if !relogged => {
                    relogged = true;
                    self.login()?;
                }
                Err(Error::Rejected(why)) => {
                    if !self.key_problem {
                        log::error!("v1r: {why}");
                    }
                    self.key_problem = true;
                    return Err(Error::Rejected(why));
                }
                Ok(inner) => {
                    if self.key_problem {
                        log::info!("v1r: the gateway accepts the signed requests again");
                    }
                    self.key_problem = false;
                    return Ok(inner);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn fetch(&mut self, leader: &str, envelope: &Envelope, expect: Expect) -> Result<Reply, Error> {
        let inner = self.post(leader, envelope)?;
        decode_inner(&inner, expect)
    }

    fn json(&mut self, leader: &str, envelope: &Envelope, expect: Expect) -> Result<Value, Error> {
        match self.fetch(leader, envelope, expect)? {
            Reply::Json(v) => Ok(v),
            other => Err(Error::BadReply(format!("unexpected {other:?}"))),
        }
    }

    /// `config.json` over the FileStore (deliveryChannel 2, `authorizedClient` 1).
    pub fn config(&mut self, leader: &str) -> Result<Value, Error> {
        let envelope = config_envelope(leader);
        self.json(leader, &envelope, Expect::Config)
    }

    fn query(
        &mut self,
        leader: &str,
        din: &str,
        via: Option<&str>,
        q: std::sync::Arc<Query>,
        expect: Expect,
    ) -> Result<Value, Error> {
        let envelope = Message::request(din, via, Body::Query(q)).envelope;
        self.json(leader, &envelope, expect)
    }

    pub fn status(&mut self, leader: &str) -> Result<Value, Error> {
        let q = self.queries.basic.clone();
        self.query(leader, leader, None, q, Expect::Query)
    }

    pub fn controller(&mut self, leader: &str) -> Result<Value, Error> {
        let q = self.queries.full.clone();
        self.query(leader, leader, None, q, Expect::Query)
    }

    /// ComponentsQuery for `din` (the leader; followers are not reachable over v1r).
    pub fn components(
        &mut self,
        leader: &str,
        din: &str,
        via: Option<&str>,
    ) -> Result<Value, Error> {
        let q = self.queries.components.clone();
        self.query(leader, din, via, q, Expect::QueryStrict)
    }

    pub fn firmware(&mut self, leader: &str) -> Result<Firmware, Error> {
        let envelope = Message::request(leader, None, Body::SystemInfoRequest).envelope;
        match self.fetch(leader, &envelope, Expect::Firmware)? {
            Reply::Firmware(f) => Ok(f),
            other => Err(Error::BadReply(format!("unexpected {other:?}"))),
        }
    }
}
