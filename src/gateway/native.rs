//! The gateway's own REST `/api/meters/aggregates`, fetched with the customer login.
//!
//! Why it exists: TEDAPI payloads carry no lifetime energy counters, but the gateway's classic
//! local API still serves them (PW2/+, and PW3 firmware 25.x+). pypowerwall 0.22.2 merges
//! `energy_exported` / `energy_imported` from it into the TEDAPI aggregates (reference-0.22 §1.1);
//! this module is the fetch half of that, with the same rules:
//!
//! * customer password = last 5 characters of `gw_pwd` (shorter → never available);
//! * `POST /api/login/Basic` with a form-encoded body, `token` from the JSON answer, reused for
//!   3000 s;
//! * `GET /api/meters/aggregates` with `Authorization: Bearer <token>`; on 401/403 log in again
//!   and retry once;
//! * an answer counts only if `site`, `battery`, `load` and `solar` are all objects;
//! * any failure (including a missing endpoint) returns `None` and blocks new attempts for
//!   300 s; while blocked, the last good answer (however old) is returned.
//!
//! The password and the token never reach a log or an error message.

use std::fmt;
use std::time::{Duration, Instant};

use super::tedapi::{self, ClientOptions, Error};
use crate::json::{self, Packed, Value};
use crate::secret::Secret;

/// How long after a failure no new attempt is made (upstream `NATIVE_FAIL_RETRY`).
pub const FAIL_BACKOFF: Duration = Duration::from_secs(300);

/// How long a customer token is reused (upstream `CUSTOMER_TOKEN_EXPIRE`).
pub const TOKEN_TTL: Duration = Duration::from_secs(3000);

const AGGREGATES: &str = "/api/meters/aggregates";

/// Native local-API fetcher for one gateway. Owned by its poller thread.
pub struct Native {
    agent: ureq::Agent,
    base: String,
    password: Option<Secret>,
    token: Option<(Secret, Instant)>,
    /// The last answer, packed (read only while a back-off blocks fetching).
    last_good: Option<Packed>,
    blocked_until: Option<Instant>,
    backoff: Duration,
    /// The last attempt failed (log the next failure quietly).
    failing: bool,
    /// The gateway's id in log lines.
    id: String,
}

/// Hand-written so neither the password nor the token is printed.
impl fmt::Debug for Native {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Native")
            .field("base", &self.base)
            .field("available", &self.password.is_some())
            .field("logged_in", &self.token.is_some())
            .field("blocked_until", &self.blocked_until)
            .finish_non_exhaustive()
    }
}

impl Native {
    /// Uses `host` from the TEDAPI options and `agent`, the TEDAPI client's own: a tick's
    /// fetches take turns on one keep-alive connection to the gateway (a second connection
    /// cost each gateway ~17 KiB of TLS and read buffers, issue 20). No network traffic.
    /// The customer password is derived from the gateway password ([`from_gateway_password`]).
    pub fn new(opts: &ClientOptions, agent: ureq::Agent) -> Result<Native, Error> {
        Native::with_password(opts, agent, from_gateway_password(&opts.gw_pwd))
    }

    /// With a customer password given as it is (v1r: `PW_PASSWORD` or the end of `PW_GW_PWD`,
    /// [`crate::config::customer_password`]); `None` is never available.
    pub fn with_password(
        opts: &ClientOptions,
        agent: ureq::Agent,
        password: Option<Secret>,
    ) -> Result<Native, Error> {
        Ok(Native {
            agent,
            base: tedapi::base_url(&opts.host)?,
            password,
            token: None,
            last_good: None,
            blocked_until: None,
            backoff: FAIL_BACKOFF,
            failing: false,
            id: "default".into(),
        })
    }

    /// This fetcher belongs to gateway `id` (its log lines say so).
    pub fn named(mut self, id: &str) -> Native {
        self.id = id.to_string();
        self
    }

    /// True when the customer login will send `password` (tests).
    #[cfg(all(test, feature = "v1r"))]
    pub(crate) fn logs_in_with(&self, password: &str) -> bool {
        self.password.as_ref().is_some_and(|p| p.matches(password))
    }

    /// Whether a customer password could be derived (`gw_pwd` has at least 5 characters).
    pub fn available(&self) -> bool {
        self.password.is_some()
    }

    /// Changes the failure back-off (default [`FAIL_BACKOFF`]); for tests.
    pub fn set_backoff(&mut self, backoff: Duration) {
        self.backoff = backoff;
    }

    /// Until when new attempts are blocked after a failure.
    pub fn blocked_until(&self) -> Option<Instant> {
        self.blocked_until
    }

    /// One fetch per poll. `None` when this attempt failed or there never was a good answer;
    /// while a back-off runs, the last good answer is returned without network traffic.
    pub fn fetch_aggregates(&mut self, now: Instant) -> Option<Value> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return self.last_good.as_ref().map(Packed::value);
            }
            self.blocked_until = None;
        }
        match self.try_fetch(now) {
            Ok(value) => {
                self.failing = false;
                self.last_good = Some(Packed::new(&value));
                Some(value)
            }
            Err(e) => {
                // Loud once per outage, quiet on the repeats every back-off period.
                let level = if self.failing {
                    log::Level::Debug
                } else {
                    log::Level::Info
                };
                self.failing = true;
                log::log!(
                    level,
                    "gateway '{}': local API {AGGREGATES} not available ({e}); next try in {} s",
                    self.id,
                    self.backoff.as_secs()
                );
                self.blocked_until = now.checked_add(self.backoff);
                None
            }
        }
    }

    fn try_fetch(&mut self, now: Instant) -> Result<Value, Error> {
        if self.password.is_none() {
            return Err(Error::BadReply(
                "no customer password (gateway password shorter than 5 characters)".into(),
            ));
        }
        for attempt in 1..=2 {
            let token = match &self.token {
                Some((token, since)) if now.saturating_duration_since(*since) <= TOKEN_TTL => {
                    token.clone()
                }
                _ => self.login(now)?,
            };
            let result = self
                .agent
                .get(&format!("{}{AGGREGATES}", self.base))
                .set("Authorization", &format!("Bearer {}", token.expose()))
                .call();
            let (status, response) = tedapi::call(result)?;
            match status {
                200 => {
                    let body = tedapi::read_body(response)?;
                    let value = json::parse_bytes(&body)
                        .map_err(|e| Error::BadReply(format!("{AGGREGATES}: {e}")))?;
                    return if valid_aggregates(&value) {
                        Ok(value)
                    } else {
                        Err(Error::BadReply(format!(
                            "{AGGREGATES} lacks site/battery/load/solar objects"
                        )))
                    };
                }
                401 | 403 if attempt == 1 => {
                    log::debug!("gateway local API: HTTP {status}, logging in again");
                    self.token = None;
                }
                401 | 403 => return Err(Error::Auth),
                code => return Err(Error::Http(code)),
            }
        }
        Err(Error::Auth)
    }

    /// `POST /api/login/Basic`; stores and returns the token.
    fn login(&mut self, now: Instant) -> Result<Secret, Error> {
        self.token = None;
        let password = self
            .password
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default();
        let result = self
            .agent
            .post(&format!("{}/api/login/Basic", self.base))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&login_form(password));
        let (status, response) = tedapi::call(result)?;
        match status {
            200 => {}
            401 | 403 => return Err(Error::Auth),
            code => return Err(Error::Http(code)),
        }
        let body = tedapi::read_body(response)?;
        let token = json::parse_bytes(&body)
            .ok()
            .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
            .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic()))
            .ok_or_else(|| Error::BadReply("login answer has no usable token".into()))?;
        log::debug!("gateway local API: customer login ok");
        let token = Secret::new(token);
        self.token = Some((token.clone(), now));
        Ok(token)
    }
}

/// The customer password of a TEDAPI gateway: the last 5 characters of the gateway password
/// ([`crate::config::customer_password`]); none when it is shorter (upstream never logs in then).
pub fn from_gateway_password(gw_pwd: &Secret) -> Option<Secret> {
    (gw_pwd.chars() >= 5).then(|| crate::config::customer_password(None, Some(gw_pwd)))?
}

#[cfg(test)]
fn customer_password(gw_pwd: &str) -> Option<String> {
    from_gateway_password(&Secret::new(gw_pwd)).map(|s| s.expose().to_string())
}

/// The login body exactly as Python `requests` encodes upstream's dict: the nested
/// `clientInfo` object collapses to its key.
fn login_form(password: &str) -> String {
    format!(
        "username=customer&password={}&email=nobody%40nowhere.com&clientInfo=timezone",
        form_encode(password)
    )
}

/// `application/x-www-form-urlencoded` value encoding (Python `quote_plus`); also used by the
/// local-mode login.
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Valid only if the answer is an object whose site, battery, load and solar are objects.
pub fn valid_aggregates(v: &Value) -> bool {
    ["site", "battery", "load", "solar"]
        .iter()
        .all(|k| v.get(k).and_then(Value::as_object).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_last_five_characters() {
        assert_eq!(customer_password("ABCDEFGHIJ").as_deref(), Some("FGHIJ"));
        assert_eq!(customer_password("ABCDE").as_deref(), Some("ABCDE"));
        assert_eq!(customer_password("ABCD"), None);
        assert_eq!(customer_password(""), None);
        assert_eq!(customer_password("xxÄbcde").as_deref(), Some("Äbcde"));
    }

    #[test]
    fn login_body_is_form_encoded() {
        assert_eq!(
            login_form("FGHIJ"),
            "username=customer&password=FGHIJ&email=nobody%40nowhere.com&clientInfo=timezone"
        );
        assert_eq!(form_encode("a b&c=d%+~"), "a+b%26c%3Dd%25%2B~");
    }

    #[test]
    fn aggregates_need_all_four_objects() {
        let ok = json::parse(r#"{"site":{},"battery":{},"load":{},"solar":{"a":1}}"#).unwrap();
        assert!(valid_aggregates(&ok));
        for bad in [
            r#"{"site":{},"battery":{},"load":{}}"#,
            r#"{"site":{},"battery":{},"load":{},"solar":null}"#,
            r#"{"site":[],"battery":{},"load":{},"solar":{}}"#,
            r#"[]"#,
            r#"null"#,
        ] {
            assert!(!valid_aggregates(&json::parse(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn short_password_never_touches_the_network_and_backs_off() {
        let mut opts = ClientOptions::new("127.0.0.1:9", "ABCD");
        opts.timeout = Duration::from_millis(200);
        let mut native = Native::new(&opts, tedapi::agent(opts.timeout, None)).unwrap();
        assert!(!native.available());
        let now = Instant::now();
        assert_eq!(native.fetch_aggregates(now), None);
        assert_eq!(native.blocked_until(), Some(now + FAIL_BACKOFF));
        assert_eq!(native.fetch_aggregates(now + Duration::from_secs(10)), None);
    }

    #[test]
    fn native_is_send() {
        fn send<T: Send>() {}
        send::<Native>();
        send::<crate::gateway::tedapi::Client>();
    }

    #[test]
    fn debug_hides_secrets() {
        let opts = ClientOptions::new("gw", "ABCDEFGHIJ");
        let native = Native::new(&opts, tedapi::agent(opts.timeout, None)).unwrap();
        let s = format!("{native:?}");
        assert!(!s.contains("FGHIJ"), "{s}");
    }
}
