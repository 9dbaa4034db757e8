use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{HTTPVersion, Header, Method};
use crate::util::{Deadline, Phase, RefinedTcpStream};
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
///
/// pypowerwall-server patch: generic over the byte source and sink (a socket's two halves by
/// default), so [`crate::serve_stream`] drives the same code over any `Read` + `Write`.
pub struct ClientConnection<R = RefinedTcpStream, W = RefinedTcpStream>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<R>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<W>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<R>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // pypowerwall-server patch: one deadline per request (TLS handshake, head and body) and
    // one per idle wait, enforced by the socket (`util::deadline`)
    deadline: Option<Arc<Deadline>>,
    request_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    // the current request's clock is running (the first one's starts at accept)
    clock_running: bool,

    // pypowerwall-server patch: set by a request whose body could not be skipped
    closing: Arc<AtomicBool>,

    // pypowerwall-server patch: the plain TCP socket, for `Request::upgrade_tcp`
    raw_socket: Option<(Arc<std::net::TcpStream>, Arc<AtomicBool>)>,

    // pypowerwall-server patch: a handle the accept loop may shut down (its weak reference
    // ends with the connection)
    _handle: Option<Arc<std::net::TcpStream>>,

    // pypowerwall-server patch (24): the head is parsed into the line buffer and the previous
    // request's path and headers, which a request gives back when it is dropped
    line: Vec<u8>,
    recycle: Recycle,
}

/// pypowerwall-server patch (24): where a dropped request leaves its path and headers for the
/// connection's next request.
pub(crate) type Recycle = Arc<std::sync::Mutex<Option<(String, Vec<Header>)>>>;

/// pypowerwall-server patch (24): most bytes of line buffer a connection keeps between requests.
const LINE_KEEP: usize = 4 * 1024;

/// pypowerwall-server patch: longest accepted request line (longer: 414).
pub const MAX_REQUEST_LINE: usize = 8192;
/// pypowerwall-server patch: most header bytes accepted in one request (more: 431).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// pypowerwall-server patch: most header lines accepted in one request (more: 431).
pub const MAX_HEADERS: usize = 100;

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    /// pypowerwall-server patch: a well-formed request line of another HTTP version (505)
    UnsupportedVersion,
    /// pypowerwall-server patch: request line over `MAX_REQUEST_LINE` (414)
    RequestLineTooLong,
    /// pypowerwall-server patch: headers over `MAX_HEADER_BYTES` or `MAX_HEADERS` (431)
    HeadersTooLarge,
    /// pypowerwall-server patch: a `Content-Length` that is not a number (400)
    BadContentLength(HTTPVersion),
    ReadIoError(IoError),
}

impl ReadError {
    /// The status a connection answers with before closing, if any.
    fn status(&self) -> Option<(u16, HTTPVersion)> {
        let v11 = HTTPVersion(1, 1);
        match self {
            ReadError::WrongRequestLine => Some((400, v11)),
            ReadError::WrongHeader(v) | ReadError::BadContentLength(v) => Some((400, v.clone())),
            ReadError::ExpectationFailed(v) => Some((417, v.clone())),
            ReadError::UnsupportedVersion => Some((505, v11)),
            ReadError::RequestLineTooLong => Some((414, v11)),
            ReadError::HeadersTooLarge => Some((431, v11)),
            ReadError::ReadIoError(e) if e.kind() == ErrorKind::TimedOut => Some((408, v11)),
            ReadError::ReadIoError(_) => None,
        }
    }
}

/// A request line and its headers.
struct Head {
    method: Method,
    version: HTTPVersion,
}

/// pypowerwall-server patch (24): what a head is parsed into: a line buffer, and the path and
/// headers (a connection passes the previous request's, so their storage is reused).
#[derive(Default)]
struct HeadBufs {
    line: Vec<u8>,
    path: String,
    headers: Vec<Header>,
}

/// Reads one line ending in CRLF, at most `max` bytes without it (`Ok(None)`: longer); a bare
/// LF is part of the line. `on_byte` runs after every chunk the reader hands over (deadline
/// clock, closing flag).
///
/// pypowerwall-server patch (22): scans the reader's buffer (`fill_buf`) and consumes exactly
/// the line, so nothing after it is taken from the body or the next request. Upstream read
/// one byte per call through two reader layers, about 100 instructions per byte of head.
///
/// pypowerwall-server patch (24): the line goes into `buf` (cleared first; `Ok(false)`: over
/// `max`), so a connection reuses one buffer for every line.
fn read_line<R: BufRead>(
    src: &mut R,
    max: usize,
    on_byte: &mut dyn FnMut() -> IoResult<()>,
    buf: &mut Vec<u8>,
) -> IoResult<bool> {
    buf.clear();
    loop {
        let chunk = match src.fill_buf() {
            Ok([]) => return Err(IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF")),
            Ok(chunk) => chunk,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        on_byte()?;
        // The first LF whose previous byte (in this chunk or the line so far) is CR.
        let mut end = None;
        let mut from = 0;
        while let Some(i) = chunk[from..].iter().position(|&b| b == b'\n') {
            let at = from + i;
            let cr = if at == 0 {
                buf.last() == Some(&b'\r')
            } else {
                chunk[at - 1] == b'\r'
            };
            if cr {
                end = Some(at);
                break;
            }
            from = at + 1;
        }
        match end {
            Some(at) => {
                buf.extend_from_slice(&chunk[..at]);
                src.consume(at + 1);
                buf.pop(); // removing the '\r'
                return Ok(buf.len() <= max);
            }
            None => {
                let n = chunk.len();
                buf.extend_from_slice(chunk);
                src.consume(n);
                // A trailing CR may still end the line.
                if buf.len() > max.saturating_add(1) {
                    return Ok(false);
                }
            }
        }
    }
}

/// pypowerwall-server patch: reads a request head with bounded size, the way every connection
/// does. `on_first_byte` starts the request clock; `on_byte` may end the read.
fn read_head<R: BufRead>(
    src: &mut R,
    bufs: &mut HeadBufs,
    on_first_byte: &mut dyn FnMut(),
    on_byte: &mut dyn FnMut() -> IoResult<()>,
) -> Result<Head, ReadError> {
    let mut first = true;
    let mut hook = || {
        if first {
            first = false;
            on_first_byte();
        }
        on_byte()
    };
    if !read_line(src, MAX_REQUEST_LINE, &mut hook, &mut bufs.line)
        .map_err(ReadError::ReadIoError)?
    {
        return Err(ReadError::RequestLineTooLong);
    }
    let line = std::str::from_utf8(&bufs.line).map_err(|_| ReadError::WrongRequestLine)?;
    let (method, path, version) = parse_request_line(line.trim())?;
    bufs.path.clear();
    bufs.path.push_str(path);
    if version.0 != 1 {
        return Err(ReadError::UnsupportedVersion);
    }
    // a later 1.x is answered as 1.1 (RFC 9110 §2.5), not echoed back
    let version = if version.1 > 1 {
        HTTPVersion(1, 1)
    } else {
        version
    };

    // patch (24): the first `n` of `bufs.headers` are this request's; the others are
    // overwritten in place, then cut off
    let mut n = 0;
    let mut total = 0;
    loop {
        let left = MAX_HEADER_BYTES.saturating_sub(total);
        if !read_line(src, left, &mut hook, &mut bufs.line).map_err(ReadError::ReadIoError)? {
            return Err(ReadError::HeadersTooLarge);
        }
        if bufs.line.is_empty() {
            break;
        }
        total += bufs.line.len() + 2;
        if n >= MAX_HEADERS {
            return Err(ReadError::HeadersTooLarge);
        }
        let wrong = || ReadError::WrongHeader(version.clone());
        let line = std::str::from_utf8(&bufs.line).map_err(|_| wrong())?.trim();
        match bufs.headers.get_mut(n) {
            Some(header) => header.set_from_line(line).map_err(|_| wrong())?,
            None => bufs
                .headers
                .push(Header::from_str(line).map_err(|_| wrong())?),
        }
        n += 1;
    }
    bufs.headers.truncate(n);
    Ok(Head { method, version })
}

/// pypowerwall-server patch: parses one request head (request line and headers up to the
/// empty line) with the code and limits every connection uses; on error, the status the
/// connection would answer before closing (`None`: it closes silently, e.g. on a cut head).
#[allow(clippy::type_complexity)]
pub fn parse_request_head(
    data: &[u8],
) -> Result<(Method, String, HTTPVersion, Vec<Header>), Option<u16>> {
    let mut src = data;
    let mut bufs = HeadBufs::default();
    read_head(&mut src, &mut bufs, &mut || {}, &mut || Ok(()))
        .map(|h| (h.method, bufs.path, h.version, bufs.headers))
        .map_err(|e| e.status().map(|(s, _)| s))
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        ClientConnection::over(read_socket, write_socket, remote_addr, secure)
    }
}

impl<R, W> ClientConnection<R, W>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    /// pypowerwall-server patch: a connection over any byte source and sink.
    pub(crate) fn over(
        read: R,
        write: W,
        remote_addr: IoResult<Option<SocketAddr>>,
        secure: bool,
    ) -> ClientConnection<R, W> {
        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read));
        let first_header = source.next_reader();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            deadline: None,
            request_timeout: None,
            idle_timeout: None,
            clock_running: true,
            closing: Arc::new(AtomicBool::new(false)),
            raw_socket: None,
            _handle: None,
            line: Vec::new(),
            recycle: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// pypowerwall-server patch: requests (the first one from accept) must arrive within
    /// `request`, and the next request must start within `idle`.
    pub(crate) fn with_deadline(
        mut self,
        deadline: Arc<Deadline>,
        request: Option<Duration>,
        idle: Option<Duration>,
    ) -> Self {
        deadline.start(request);
        self.deadline = Some(deadline);
        self.request_timeout = request;
        self.idle_timeout = idle;
        self
    }

    /// pypowerwall-server patch: remember the plain TCP socket for protocol upgrades.
    pub(crate) fn with_raw_socket(
        mut self,
        raw: Option<(Arc<std::net::TcpStream>, Arc<AtomicBool>)>,
    ) -> Self {
        self.raw_socket = raw;
        self
    }

    /// pypowerwall-server patch: keep the accept loop's handle alive with the connection.
    pub(crate) fn with_handle(mut self, handle: Option<Arc<std::net::TcpStream>>) -> Self {
        self._handle = handle;
        self
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        let closing = self.closing.clone();
        let closed = || IoError::new(ErrorKind::ConnectionAborted, "request body left unread");
        if closing.load(Ordering::SeqCst) {
            return Err(ReadError::ReadIoError(closed()));
        }
        // pypowerwall-server patch: the idle wait has its own deadline; the request clock
        // starts with its first byte (or ran since accept, for the first request)
        if let Some(d) = &self.deadline {
            if !self.clock_running {
                d.start(self.idle_timeout);
                d.set_phase(Phase::Idle);
            }
        }
        let deadline = self.deadline.clone();
        let request_timeout = self.request_timeout;
        let mut clock_running = self.clock_running;
        // patch (24): the previous request's path and headers, if it gave them back
        let (path, headers) = self
            .recycle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        let mut bufs = HeadBufs {
            line: std::mem::take(&mut self.line),
            path,
            headers,
        };
        let head = read_head(
            &mut self.next_header_source,
            &mut bufs,
            &mut || {
                if let (Some(d), false) = (&deadline, clock_running) {
                    d.start(request_timeout);
                    d.set_phase(Phase::Head);
                }
                clock_running = true;
            },
            &mut || match closing.load(Ordering::Relaxed) {
                true => Err(closed()),
                false => Ok(()),
            },
        );
        // the next request's clock starts with its own first byte
        self.clock_running = false;
        if bufs.line.capacity() <= LINE_KEEP {
            self.line = bufs.line;
        }
        let (path, headers) = (bufs.path, bufs.headers);
        let Head { method, version } = head?;

        // building the writer for the request
        let writer = self.sink.next_writer();

        // follow-up for next potential request
        let mut data_source = self.source.next_reader();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        // pypowerwall-server patch (24): the writer is held as it is, not boxed
        let request = crate::request::new_request_to(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            // pypowerwall-server patch: a peer that left before we asked has no address (was a panic)
            self.remote_addr.as_ref().ok().copied().flatten(),
            data_source,
            crate::request::ResponseWriter::Seq(writer),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version.clone())
                }
                request::RequestCreationError::BadContentLength => {
                    ReadError::BadContentLength(version.clone())
                }
            }
        })?
        .with_raw_socket(self.raw_socket.clone())
        .with_closing_flag(self.closing.clone())
        .with_recycle(self.recycle.clone());
        let request = match &self.deadline {
            Some(d) => request.track_body(d),
            None => request,
        };

        // return the request
        Ok(request)
    }
}

impl<R, W> Iterator for ClientConnection<R, W>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        let rq = match self.read() {
            Ok(rq) => rq,
            Err(e) => {
                // pypowerwall-server patch: every refused head is answered (400, 408, 414,
                // 417, 431, 505) and the connection closed: we don't know where the next
                // request would start. Upstream answered a 2.0/3.0 request line through a
                // second writer that waited for the first one forever (a leaked thread and
                // three descriptors per request).
                self.no_more_requests = true;
                if let Some((status, version)) = e.status() {
                    let writer = self.sink.next_writer();
                    let response = Response::from_string(format!(
                        "{} {}\n",
                        status,
                        StatusCode(status).default_reason_phrase()
                    ))
                    .with_status_code(StatusCode(status))
                    .with_header(connection_close());
                    response.raw_print(writer, version, &[], false, None).ok();
                }
                return None;
            }
        };

        // updating the status of the connection
        let connection_header = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("Connection"))
            .map(|h| h.value.as_str());

        let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

        match lowercase {
            Some(ref val) if val.contains("close") => self.no_more_requests = true,
            Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
            Some(ref val)
                if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
            {
                self.no_more_requests = true
            }
            None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
            _ => (),
        };

        // returning the request
        Some(rq)
    }
}

fn connection_close() -> Header {
    Header {
        field: "Connection".parse().expect("a valid header name"),
        value: AsciiString::from_ascii("close").expect("ASCII"),
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    // pypowerwall-server patch: any `HTTP/<digit>.<digit>` parses (all but 1.x get 505)
    let (major, minor) = match version.as_bytes() {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            (major - b'0', minor - b'0')
        }
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
///
/// pypowerwall-server patch (24): the path is borrowed from the line.
fn parse_request_line(line: &str) -> Result<(Method, &str, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next();
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
