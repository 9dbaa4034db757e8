//! Tesla's cloud: the Owner API and FleetAPI, for monitoring a gateway without a LAN path and
//! for control writes (backup reserve, operation mode).
//!
//! * `transport` — the blocking request trait; `http2` (feature `cloud`) implements it with h2
//!   over rustls, TLS 1.3 and ALPN `h2` only, as Tesla requires.
//! * `tokens` — pypowerwall's token files in `authpath`, read compatibly, written atomically.
//! * `session` — an authenticated client: site selection, live status, site info, writes,
//!   refresh on expiry or 401; one shared session per token file.
//! * `setup` — `pypowerwall-server setup`: the Owner API login (OAuth 2.0 + PKCE) that writes
//!   the token files.
//! * `map` — cloud documents → [`crate::gateway::facade::Facade`] (pypowerwall's cloud mode).
//! * `source` — the poller's [`crate::gateway::source::Source`] for `cloud_mode` gateways.
//!
//! Without the `cloud` feature everything but the HTTP/2 transport still compiles; opening a
//! session then fails with [`Error::NotCompiled`].

use std::fmt;

#[cfg(feature = "cloud")]
pub mod http2;
pub mod map;
pub mod session;
pub mod setup;
pub mod source;
pub mod tokens;
pub mod transport;

/// What can go wrong talking to Tesla's cloud. Messages never contain tokens or emails.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// This build has no HTTP/2 client (built without the `cloud` feature).
    NotCompiled,
    /// Token files missing or unusable, bad configuration: run pypowerwall's setup.
    Setup(String),
    /// The refresh token was refused or the refresh failed.
    Auth(String),
    /// Connection, TLS or HTTP/2 failure.
    Transport(String),
    /// No answer within the time-out.
    Timeout,
    /// Tesla answered with an error status (and a short reason).
    Status(u16, String),
    /// An answer that could not be used.
    BadReply(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotCompiled => write!(f, "cloud support is not compiled into this build"),
            Error::Setup(why) => write!(f, "cloud set-up: {why}"),
            Error::Auth(why) => write!(f, "Tesla token refresh failed: {why}"),
            Error::Transport(why) => write!(f, "Tesla cloud unreachable: {why}"),
            Error::Timeout => write!(f, "Tesla cloud did not answer within the timeout"),
            Error::Status(code, why) if why.is_empty() => {
                write!(f, "Tesla cloud answered HTTP {code}")
            }
            Error::Status(code, why) => write!(f, "Tesla cloud answered HTTP {code}: {why}"),
            Error::BadReply(why) => write!(f, "unusable answer from Tesla cloud: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for crate::wire::Error {
    fn from(e: Error) -> Self {
        use crate::wire::Error as G;
        match e {
            Error::Timeout => G::Timeout,
            Error::Status(code, _) if code != 200 => G::Http(code),
            Error::Transport(_) => G::Unreachable(e.to_string()),
            other => G::BadReply(other.to_string()),
        }
    }
}
