//! The HTTP/2 client (feature `cloud`): h2 over rustls (TLS 1.3 only, ALPN `h2`, ring provider),
//! driven by a private current-thread tokio runtime.
//!
//! Tesla's Owner API and FleetAPI refuse HTTP/1.1, so there is no fallback: a server that does
//! not negotiate `h2` is an error. Everything else in the server is synchronous; [`H2`] blocks the
//! calling thread for at most the time-out of one request. One connection per authority is kept
//! and reused while it is healthy; an idle one is replaced after [`MAX_IDLE`] so that a request
//! (and above all a POST, which is never retried) does not land on a connection the far end has
//! already dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::transport::{Request, Response, Transport};
use super::Error;

/// Largest response body accepted.
const MAX_BODY: usize = 4 << 20;
/// An idle connection older than this is not reused.
const MAX_IDLE: Duration = Duration::from_secs(30);

struct Conn {
    sender: h2::client::SendRequest<Bytes>,
    used: Instant,
}

/// A blocking HTTP/2 client.
pub struct H2 {
    rt: tokio::runtime::Runtime,
    tls: Arc<rustls::ClientConfig>,
    conns: HashMap<String, Conn>,
}

impl H2 {
    /// A client trusting the Mozilla roots plus the PEM certificates in `extra_roots`.
    pub fn new(extra_roots: &[u8]) -> Result<H2, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Transport(format!("runtime: {e}")))?;
        Ok(H2 {
            rt,
            tls: client_config(extra_roots)?,
            conns: HashMap::new(),
        })
    }
}

/// TLS 1.3 only, ALPN `h2` only.
pub fn client_config(extra_roots: &[u8]) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let extra: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &extra_roots[..])
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Setup(format!("PW_CLOUD_CA: {e}")))?;
    for c in extra {
        roots
            .add(c)
            .map_err(|e| Error::Setup(format!("PW_CLOUD_CA: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// `https://host[:port]/path?q` → (host, port, authority).
fn split_url(url: &str) -> Result<(String, u16, String), Error> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| Error::Setup(format!("not an https:// URL: {url}")))?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| Error::Setup(format!("bad port in {url}")))?,
        ),
        _ => (authority, 443),
    };
    if host.is_empty() {
        return Err(Error::Setup(format!("no host in {url}")));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port, authority.to_string()))
}

async fn connect(
    tls: Arc<rustls::ClientConfig>,
    host: String,
    port: u16,
) -> Result<h2::client::SendRequest<Bytes>, Error> {
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| Error::Transport(format!("connect {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(host.clone())
        .map_err(|_| Error::Setup(format!("bad host name {host}")))?;
    let stream = TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Transport(format!("TLS with {host}: {e}")))?;
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err(Error::Transport(format!(
            "{host} did not negotiate HTTP/2 (ALPN h2)"
        )));
    }
    let (sender, conn) = h2::client::handshake(stream)
        .await
        .map_err(|e| Error::Transport(format!("HTTP/2 handshake with {host}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            log::debug!("cloud: HTTP/2 connection closed: {e}");
        }
    });
    Ok(sender)
}

async fn exchange(
    sender: h2::client::SendRequest<Bytes>,
    req: &Request<'_>,
) -> Result<Response, Error> {
    let mut sender = sender
        .ready()
        .await
        .map_err(|e| Error::Transport(format!("HTTP/2: {e}")))?;
    let mut b = http::Request::builder().method(req.method).uri(req.url);
    for (k, v) in &req.headers {
        b = b.header(*k, v.as_str());
    }
    let hreq = b
        .body(())
        .map_err(|e| Error::Setup(format!("request: {e}")))?;
    let end = req.body.is_empty();
    let (resp, mut stream) = sender
        .send_request(hreq, end)
        .map_err(|e| Error::Transport(format!("HTTP/2 send: {e}")))?;
    if !end {
        stream
            .send_data(Bytes::copy_from_slice(req.body), true)
            .map_err(|e| Error::Transport(format!("HTTP/2 send: {e}")))?;
    }
    let resp = resp
        .await
        .map_err(|e| Error::Transport(format!("HTTP/2 reply: {e}")))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| Error::Transport(format!("HTTP/2 body: {e}")))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
        if out.len() > MAX_BODY {
            return Err(Error::BadReply("reply larger than 4 MB".into()));
        }
    }
    Ok(Response { status, body: out })
}

impl Transport for H2 {
    fn send(&mut self, req: &Request<'_>, timeout: Duration) -> Result<Response, Error> {
        let (host, port, authority) = split_url(req.url)?;
        let fresh = |c: &Conn| c.used.elapsed() < MAX_IDLE;
        let cached = self
            .conns
            .remove(&authority)
            .filter(fresh)
            .map(|c| c.sender);
        let tls = self.tls.clone();
        let result = self.rt.block_on(async {
            tokio::time::timeout(timeout, async {
                let sender = match cached {
                    Some(s) => match s.clone().ready().await {
                        Ok(_) => s,
                        // The connection is gone; nothing was sent on it yet.
                        Err(_) => connect(tls.clone(), host.clone(), port).await?,
                    },
                    None => connect(tls.clone(), host.clone(), port).await?,
                };
                let r = exchange(sender.clone(), req).await;
                r.map(|resp| (resp, sender))
            })
            .await
        });
        match result {
            Err(_) => Err(Error::Timeout),
            Ok(Err(e)) => Err(e),
            Ok(Ok((resp, sender))) => {
                self.conns.insert(
                    authority,
                    Conn {
                        sender,
                        used: Instant::now(),
                    },
                );
                Ok(resp)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        assert_eq!(
            split_url("https://owner-api.teslamotors.com/api/1/products").unwrap(),
            (
                "owner-api.teslamotors.com".into(),
                443,
                "owner-api.teslamotors.com".into()
            )
        );
        assert_eq!(
            split_url("https://127.0.0.1:8443/x?y=1").unwrap(),
            ("127.0.0.1".into(), 8443, "127.0.0.1:8443".into())
        );
        assert!(split_url("http://x/").is_err());
        assert!(split_url("https:///x").is_err());
    }

    #[test]
    fn tls_config_is_tls13_h2() {
        let c = client_config(b"").unwrap();
        assert_eq!(c.alpn_protocols, vec![b"h2".to_vec()]);
    }
}
