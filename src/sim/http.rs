//! Just enough HTTP/1.1 for a gateway: one request at a time per connection, `Content-Length`
//! bodies, keep-alive, and the full control over what goes on the wire that fault injection
//! needs (never answer, half a body, drop the connection).
//!
//! Reading is bounded: the head may not exceed [`Limits::max_head`], the body
//! [`Limits::max_body`], a started request must complete within [`Limits::request`] and an idle
//! keep-alive connection is closed after [`Limits::idle`]. The socket is expected to have a
//! short read timeout, so the loop also notices a stop request promptly.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_head: usize,
    pub max_body: usize,
    pub idle: Duration,
    pub request: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// The path without the query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

impl Request {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "application/json", body)
    }

    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "text/plain", body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Status line and headers, announcing `content_length` body bytes.
    pub fn head(&self, content_length: usize, keep_alive: bool) -> Vec<u8> {
        let mut h = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            h.push_str(k);
            h.push_str(": ");
            h.push_str(v);
            h.push_str("\r\n");
        }
        h.push_str(&format!("Content-Length: {content_length}\r\n"));
        if !keep_alive {
            h.push_str("Connection: close\r\n");
        }
        h.push_str("\r\n");
        h.into_bytes()
    }
}

/// Writes a whole response.
pub fn write_response<W: Write>(w: &mut W, resp: &Response, keep_alive: bool) -> io::Result<()> {
    let mut out = resp.head(resp.body.len(), keep_alive);
    out.extend_from_slice(&resp.body);
    w.write_all(&out)?;
    w.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection (or went quiet between requests for too long).
    Closed,
    /// The server is stopping.
    Stopped,
    /// A request came too slowly.
    TimedOut,
    /// Not HTTP we understand; answer this status and close.
    Bad(u16),
    Io(io::Error),
}

/// Reads one request. `buf` carries bytes read past the previous request (pipelining). Answers
/// `Expect: 100-continue` (curl sends it for larger bodies) so the client does not stall.
pub fn read_request<S: Read + Write>(
    s: &mut S,
    buf: &mut Vec<u8>,
    limits: &Limits,
    stop: &AtomicBool,
) -> Result<Request, ReadError> {
    let waiting_since = Instant::now();
    let mut started: Option<Instant> = (!buf.is_empty()).then(Instant::now);
    let mut head: Option<(usize, Request, usize)> = None; // (head length, request, body length)
    let mut chunk = [0u8; 8192];
    let mut scanned = 0;
    loop {
        if head.is_none() {
            if let Some(end) = find_head_end(buf, scanned) {
                let (req, body_len) = parse_head(&buf[..end], limits)?;
                head = Some((end, req, body_len));
            } else if buf.len() > limits.max_head {
                return Err(ReadError::Bad(431));
            } else {
                // Resume the search where it stopped (a slow client must not cost O(n²)).
                scanned = buf.len().saturating_sub(3);
            }
        }
        if let Some((end, _, body_len)) = &head {
            if buf.len() >= end + body_len {
                let (end, mut req, body_len) = head.take().ok_or(ReadError::Bad(400))?;
                req.body = buf[end..end + body_len].to_vec();
                buf.drain(..end + body_len);
                return Ok(req);
            }
        }
        if let Some((_, req, _)) = head.as_mut() {
            if req
                .header("Expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            {
                req.headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case("Expect"));
                s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .and_then(|_| s.flush())
                    .map_err(ReadError::Io)?;
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Err(ReadError::Stopped);
        }
        match started {
            Some(t) if t.elapsed() > limits.request => return Err(ReadError::TimedOut),
            None if waiting_since.elapsed() > limits.idle => return Err(ReadError::Closed),
            _ => {}
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => {
                started.get_or_insert_with(Instant::now);
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(ReadError::Closed),
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Index just past the blank line that ends the head, searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4)
}

fn parse_head(head: &[u8], limits: &Limits) -> Result<(Request, usize), ReadError> {
    let text = std::str::from_utf8(head).map_err(|_| ReadError::Bad(400))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => (m, t, v),
        _ => return Err(ReadError::Bad(400)),
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Bad(400)),
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').ok_or(ReadError::Bad(400))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        path: target.split('?').next().unwrap_or(target).to_string(),
        headers,
        body: Vec::new(),
        keep_alive: false,
    };
    if req.header("Transfer-Encoding").is_some() {
        // Gateway clients send Content-Length; chunked uploads are not supported.
        return Err(ReadError::Bad(501));
    }
    let body_len = match req.header("Content-Length") {
        Some(v) => v.parse::<usize>().map_err(|_| ReadError::Bad(400))?,
        None => 0,
    };
    if body_len > limits.max_body {
        return Err(ReadError::Bad(413));
    }
    let connection = req.header("Connection").unwrap_or("").to_ascii_lowercase();
    req.keep_alive = if http10 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    Ok((req, body_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_head: 1024,
            max_body: 64,
            idle: Duration::from_secs(1),
            request: Duration::from_secs(1),
        }
    }

    /// An in-memory connection: reads `input` one byte at a time (a slow network), collects
    /// what is written.
    struct Pipe<'a> {
        input: &'a [u8],
        output: Vec<u8>,
    }

    impl Read for Pipe<'_> {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            let n = b.len().min(1);
            self.input.read(&mut b[..n])
        }
    }

    impl Write for Pipe<'_> {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.output.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn read_all(input: &[u8]) -> Vec<Result<Request, String>> {
        read_all_with_output(input).0
    }

    fn read_all_with_output(input: &[u8]) -> (Vec<Result<Request, String>>, Vec<u8>) {
        let mut s = Pipe {
            input,
            output: Vec::new(),
        };
        let mut buf = Vec::new();
        let stop = AtomicBool::new(false);
        let mut out = Vec::new();
        loop {
            match read_request(&mut s, &mut buf, &limits(), &stop) {
                Ok(r) => out.push(Ok(r)),
                Err(ReadError::Closed) => return (out, s.output),
                Err(e) => {
                    out.push(Err(format!("{e:?}")));
                    return (out, s.output);
                }
            }
        }
    }

    #[test]
    fn pipelined_requests_with_bodies() {
        let got = read_all(
            b"POST /tedapi/v1?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\nhost: x\r\n\r\n",
        );
        assert_eq!(got.len(), 2);
        let a = got[0].as_ref().unwrap();
        assert_eq!(
            (a.method.as_str(), a.path.as_str(), a.target.as_str()),
            ("POST", "/tedapi/v1", "/tedapi/v1?x=1")
        );
        assert_eq!(a.body, b"abc");
        assert!(a.keep_alive);
        let b = got[1].as_ref().unwrap();
        assert_eq!(b.header("HOST"), Some("x"));
        assert!(!b.keep_alive);
    }

    #[test]
    fn expect_continue_is_answered() {
        let (got, written) = read_all_with_output(
            b"POST /tedapi/v1 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
        );
        assert_eq!(got[0].as_ref().unwrap().body, b"ab");
        assert_eq!(written, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn limits_and_garbage() {
        assert!(
            read_all(b"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n")[0]
                .as_ref()
                .is_err_and(|e| e.contains("413"))
        );
        let big = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 2000]].concat();
        assert!(read_all(&big)[0].as_ref().is_err_and(|e| e.contains("431")));
        assert!(read_all(b"\x16\x03\x01garbage\r\n\r\n")[0].is_err());
        assert!(read_all(b"GET / HTTP/2\r\n\r\n")[0].is_err());
        assert!(read_all(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n")[0].is_err());
        // A body that never arrives: the peer closes.
        assert!(read_all(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab").is_empty());
    }
}
