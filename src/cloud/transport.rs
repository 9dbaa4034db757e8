//! What the cloud clients need from HTTP: one blocking request/answer, behind a trait so the
//! Owner API and FleetAPI logic compiles (and is unit-tested) without the `cloud` feature.

use std::time::Duration;

use super::Error;

/// One request. `url` is absolute (`https://…`).
pub struct Request<'a> {
    pub method: &'static str,
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'a [u8],
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A blocking HTTP client.
pub trait Transport: Send {
    fn send(&mut self, req: &Request<'_>, timeout: Duration) -> Result<Response, Error>;
}

/// The HTTP/2 transport of this build (feature `cloud`), trusting `extra_roots` (PEM) too.
#[cfg(feature = "cloud")]
pub fn default_transport(extra_roots: &[u8]) -> Result<Box<dyn Transport>, Error> {
    Ok(Box::new(super::http2::H2::new(extra_roots)?))
}

/// Without the `cloud` feature there is no HTTP/2 client.
#[cfg(not(feature = "cloud"))]
pub fn default_transport(_extra_roots: &[u8]) -> Result<Box<dyn Transport>, Error> {
    Err(Error::NotCompiled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_matches_the_build() {
        let t = default_transport(b"");
        if cfg!(feature = "cloud") {
            assert!(t.is_ok());
        } else {
            assert_eq!(t.err(), Some(Error::NotCompiled));
        }
    }
}
