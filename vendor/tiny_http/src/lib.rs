//! # Simple usage
//!
//! ## Creating the server
//!
//! The easiest way to create a server is to call `Server::http()`.
//!
//! The `http()` function returns an `IoResult<Server>` which will return an error
//! in the case where the server creation fails (for example if the listening port is already
//! occupied).
//!
//! ```no_run
//! let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! ```
//!
//! A newly-created `Server` will immediately start listening for incoming connections and HTTP
//! requests.
//!
//! ## Receiving requests
//!
//! Calling `server.recv()` will block until the next request is available.
//! This function returns an `IoResult<Request>`, so you need to handle the possible errors.
//!
//! ```no_run
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//!
//! loop {
//!     // blocks until the next request is received
//!     let request = match server.recv() {
//!         Ok(rq) => rq,
//!         Err(e) => { println!("error: {}", e); break }
//!     };
//!
//!     // do something with the request
//!     // ...
//! }
//! ```
//!
//! In a real-case scenario, you will probably want to spawn multiple worker tasks and call
//! `server.recv()` on all of them. Like this:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::thread;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! let server = Arc::new(server);
//! let mut guards = Vec::with_capacity(4);
//!
//! for _ in (0 .. 4) {
//!     let server = server.clone();
//!
//!     let guard = thread::spawn(move || {
//!         loop {
//!             let rq = server.recv().unwrap();
//!
//!             // ...
//!         }
//!     });
//!
//!     guards.push(guard);
//! }
//! ```
//!
//! If you don't want to block, you can call `server.try_recv()` instead.
//!
//! ## Handling requests
//!
//! The `Request` object returned by `server.recv()` contains informations about the client's request.
//! The most useful methods are probably `request.method()` and `request.url()` which return
//! the requested method (`GET`, `POST`, etc.) and url.
//!
//! To handle a request, you need to create a `Response` object. See the docs of this object for
//! more infos. Here is an example of creating a `Response` from a file:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! ```
//!
//! All that remains to do is call `request.respond()`:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! # let request = server.recv().unwrap();
//! # let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! let _ = request.respond(response);
//! ```
#![forbid(unsafe_code)]
// pypowerwall-server: upstream 0.12.0 predates these lints; keep the vendored copy quiet.
#![allow(dead_code, unused_imports)]
#![deny(rust_2018_idioms)]
#![allow(clippy::match_like_matches_macro)]


use std::error::Error;
use std::io::Error as IoError;
use std::io::ErrorKind as IoErrorKind;
use std::io::Result as IoResult;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use client::ClientConnection;
use connection::Connection;
use util::MessagesQueue;

pub use common::{HTTPVersion, Header, HeaderField, Method, StatusCode};
pub use connection::{ConfigListenAddr, ListenAddr, Listener};
pub use request::{ReadWrite, Request};
pub use response::{Response, ResponseBox};
pub use test::TestRequest;
pub use client::{parse_request_head, MAX_HEADERS, MAX_HEADER_BYTES, MAX_REQUEST_LINE};
pub use request::MAX_DRAIN;

mod client;
mod common;
mod connection;
mod request;
mod response;
mod ssl;
mod test;
mod util;

/// The main class of this library.
///
/// Destroying this object will immediately close the listening socket and the reading
///  part of all the client's connections. Requests that have already been returned by
///  the `recv()` function will not close and the responses will be transferred to the client.
pub struct Server {
    // should be false as long as the server exists
    // when set to true, all the subtasks will close within a few hundreds ms
    close: Arc<AtomicBool>,

    // queue for messages received by child threads
    messages: Arc<MessagesQueue<Message>>,

    // result of TcpListener::local_addr()
    listening_addr: ListenAddr,

    // pypowerwall-server patch: connections open right now
    open: Arc<AtomicUsize>,
}

/// pypowerwall-server patch: limits applied to every accepted connection.
#[derive(Clone)]
pub struct Limits {
    /// Socket read time-out: an idle keep-alive connection is closed after it.
    pub read_timeout: Option<Duration>,
    /// Socket write time-out: a client that does not read its answer is dropped after it.
    pub write_timeout: Option<Duration>,
    /// One deadline per request: its request line, headers and body must arrive within this
    /// time of its first byte; the first request's clock starts at accept, so it also covers
    /// the TLS handshake. (Was a deadline for the head only.)
    pub request_timeout: Option<Duration>,
    /// New connections beyond this many open ones are closed at once.
    pub max_connections: usize,
    /// TLS (`PW_HTTPS=yes`).
    #[cfg(feature = "ssl-rustls")]
    pub tls: Option<Arc<rustls::ServerConfig>>,
    #[cfg(not(feature = "ssl-rustls"))]
    pub tls_requested: bool,
    /// Answer each request on its connection's thread with this handler instead of queueing it
    /// for `recv()`.
    pub inline: Option<Arc<dyn Fn(Request) + Send + Sync>>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            read_timeout: None,
            write_timeout: None,
            request_timeout: None,
            max_connections: usize::MAX,
            #[cfg(feature = "ssl-rustls")]
            tls: None,
            #[cfg(not(feature = "ssl-rustls"))]
            tls_requested: false,
            inline: None,
        }
    }
}

/// pypowerwall-server patch: at most one "refused" warning per this interval (with a count).
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(10);

/// pypowerwall-server patch: counts refusals and says when to log them (with the count since the
/// last line): the first at once, then at most one line per `REFUSED_LOG_EVERY`.
#[derive(Default)]
struct RefusalLog {
    pending: u64,
    logged: Option<std::time::Instant>,
}

impl RefusalLog {
    fn note(&mut self, now: std::time::Instant) -> Option<u64> {
        self.pending += 1;
        let due = self
            .logged
            .map_or(true, |t| now.saturating_duration_since(t) >= REFUSED_LOG_EVERY);
        if !due {
            return None;
        }
        self.logged = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod refusal_log_tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let mut log = RefusalLog::default();
        let t0 = std::time::Instant::now();
        assert_eq!(log.note(t0), Some(1));
        for i in 1..1000 {
            assert_eq!(log.note(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(log.note(t0 + REFUSED_LOG_EVERY), Some(1000));
        assert_eq!(log.note(t0 + REFUSED_LOG_EVERY), None);
    }
}

/// pypowerwall-server patch: connections closed to make room may exceed the cap by this many
/// for the moment they take to end.
const EVICTION_MARGIN: usize = 16;

/// pypowerwall-server patch: an open TCP connection as the accept loop sees it.
struct Tracked {
    deadline: std::sync::Weak<util::Deadline>,
    socket: std::sync::Weak<TcpStream>,
}

impl Tracked {
    fn alive(&self) -> bool {
        self.deadline.strong_count() > 0 && self.socket.strong_count() > 0
    }
}

/// pypowerwall-server patch: with the table full, closes the connection that has been reading
/// a request (TLS handshake, head or body) the longest, else the longest-idle keep-alive one,
/// so a table full of slow or idle clients never locks a new client out. Connections being
/// answered are never chosen. False if none fits.
fn evict_one(tracked: &mut Vec<Tracked>) -> bool {
    tracked.retain(Tracked::alive);
    let mut best: Option<(usize, (u8, bool, Option<std::time::Instant>))> = None;
    for (i, t) in tracked.iter().enumerate() {
        let Some(d) = t.deadline.upgrade() else { continue };
        let rank = match d.phase() {
            util::Phase::Head | util::Phase::Body => 0,
            util::Phase::Idle => 1,
            _ => continue,
        };
        // Earliest deadline first; none at all last.
        let at = d.order_key();
        let key = (rank, at.is_none(), at);
        if best.map_or(true, |(_, k)| key < k) {
            best = Some((i, key));
        }
    }
    let Some((i, _)) = best else { return false };
    let t = tracked.swap_remove(i);
    if let (Some(d), Some(s)) = (t.deadline.upgrade(), t.socket.upgrade()) {
        d.set_phase(util::Phase::Evicted);
        let _ = s.shutdown(Shutdown::Both);
        log::debug!("connection table full: closed a slow or idle connection");
        return true;
    }
    false
}

/// pypowerwall-server patch: one open connection, counted until dropped.
struct OpenSlot(Arc<AtomicUsize>);

impl OpenSlot {
    fn take(open: &Arc<AtomicUsize>) -> OpenSlot {
        open.fetch_add(1, Relaxed);
        OpenSlot(open.clone())
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// pypowerwall-server patch: serves one connection read from `input` and answered to `output`
/// with the code a socket reaches (head parser and limits, body framing, pipelining, the
/// answers to refused heads), calling `handler` for each request, until the input ends or the
/// connection would close. No deadlines (there is no socket). For fuzzing and tests.
pub fn serve_stream<R, W>(input: R, output: W, mut handler: impl FnMut(Request))
where
    R: std::io::Read + Send + 'static,
    W: std::io::Write + Send + 'static,
{
    let client: ClientConnection<R, W> = ClientConnection::over(input, output, Ok(None), false);
    for rq in client {
        handler(rq);
    }
}

enum Message {
    Error(IoError),
    NewRequest(Request),
}

impl From<IoError> for Message {
    fn from(e: IoError) -> Message {
        Message::Error(e)
    }
}

impl From<Request> for Message {
    fn from(rq: Request) -> Message {
        Message::NewRequest(rq)
    }
}

// this trait is to make sure that Server implements Share and Send
#[doc(hidden)]
trait MustBeShareDummy: Sync + Send {}
#[doc(hidden)]
impl MustBeShareDummy for Server {}

pub struct IncomingRequests<'a> {
    server: &'a Server,
}

/// Represents the parameters required to create a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The addresses to try to listen to.
    pub addr: ConfigListenAddr,

    /// If `Some`, then the server will use SSL to encode the communications.
    pub ssl: Option<SslConfig>,
}

/// Configuration of the server for SSL.
#[derive(Debug, Clone)]
pub struct SslConfig {
    /// Contains the public certificate to send to clients.
    pub certificate: Vec<u8>,
    /// Contains the ultra-secret private key used to decode communications.
    pub private_key: Vec<u8>,
}

impl Server {
    /// Shortcut for a simple server on a specific address.
    #[inline]
    pub fn http<A>(addr: A) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: None,
        })
    }

    /// Shortcut for an HTTPS server on a specific address.
    #[cfg(feature = "ssl-rustls")]
    #[inline]
    pub fn https<A>(
        addr: A,
        config: SslConfig,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: Some(config),
        })
    }

    #[cfg(unix)]
    #[inline]
    /// Shortcut for a UNIX socket server at a specific path
    pub fn http_unix(
        path: &std::path::Path,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::unix_from_path(path),
            ssl: None,
        })
    }

    /// Builds a new server that listens on the specified address.
    pub fn new(config: ServerConfig) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = config.addr.bind()?;
        Self::from_listener(listener, config.ssl)
    }

    /// Builds a new server using the specified TCP listener.
    ///
    /// This is useful if you've constructed TcpListener using some less usual method
    /// such as from systemd. For other cases, you probably want the `new()` function.
    pub fn from_listener<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        if ssl_config.is_some() {
            return Err("pypowerwall-server patch: use Server::from_listener_with for TLS".into());
        }
        Server::from_listener_with(listener, Limits::default())
    }

    /// pypowerwall-server patch: a server whose connections have socket time-outs, a header
    /// deadline and a cap, whose accept loop survives accept errors (e.g. out of file
    /// descriptors), and that speaks TLS through a caller-built rustls 0.23 config.
    pub fn from_listener_with<L: Into<Listener>>(
        listener: L,
        limits: Limits,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = listener.into();
        // building the "close" variable
        let close_trigger = Arc::new(AtomicBool::new(false));

        let (server, local_addr) = {
            let local_addr = listener.local_addr()?;
            log::debug!("Server listening on {}", local_addr);
            (listener, local_addr)
        };

        #[cfg(feature = "ssl-rustls")]
        let ssl = limits.tls.clone().map(crate::ssl::SslContextImpl::from_config);
        #[cfg(not(feature = "ssl-rustls"))]
        if limits.tls_requested {
            return Err("TLS requires the ssl-rustls feature of tiny_http".into());
        }

        let messages = MessagesQueue::with_capacity(8);
        let open = Arc::new(AtomicUsize::new(0));

        let inside_close_trigger = close_trigger.clone();
        let inside_messages = messages.clone();
        let inside_open = open.clone();
        thread::spawn(move || {
            // a tasks pool is used to dispatch the connections into threads
            let tasks_pool = util::TaskPool::new();

            log::debug!("Running accept thread");
            // pypowerwall-server patch: refusals are logged once per `REFUSED_LOG_EVERY`
            let mut refusals = RefusalLog::default();
            let mut accept_errors = RefusalLog::default();
            // pypowerwall-server patch: open TCP connections, to close one when full
            let mut tracked: Vec<Tracked> = Vec::new();
            while !inside_close_trigger.load(Relaxed) {
                let sock = match server.accept() {
                    Ok((sock, _)) => sock,
                    Err(e) => {
                        // Never stop listening: EMFILE/ENFILE and aborted handshakes pass.
                        // pypowerwall-server patch: logged at most once per interval
                        if let Some(n) = accept_errors.note(std::time::Instant::now()) {
                            log::warn!(
                                "error accepting a connection: {} ({} since the last line)",
                                e,
                                n
                            );
                        }
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                let open_now = inside_open.load(Relaxed);
                if tracked.len() > 2 * open_now + 64 {
                    tracked.retain(Tracked::alive);
                }
                let full = open_now >= limits.max_connections;
                if full
                    && !(open_now < limits.max_connections.saturating_add(EVICTION_MARGIN)
                        && evict_one(&mut tracked))
                {
                    if let Some(n) = refusals.note(std::time::Instant::now()) {
                        log::warn!(
                            "refused {} connection(s): {} connections open (the limit)",
                            n,
                            limits.max_connections
                        );
                    }
                    continue;
                }
                let detached = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let mut raw = None;
                let mut handle = None;
                if let Connection::Tcp(ref tcp) = sock {
                    handle = tcp.try_clone().ok().map(Arc::new);
                    let _ = tcp.set_read_timeout(limits.read_timeout);
                    let _ = tcp.set_write_timeout(limits.write_timeout);
                    let _ = tcp.set_nodelay(true);
                    #[cfg(feature = "ssl-rustls")]
                    let plain = ssl.is_none();
                    #[cfg(not(feature = "ssl-rustls"))]
                    let plain = true;
                    if plain {
                        raw = handle.clone().map(|t| (t, detached.clone()));
                    }
                }
                use util::RefinedTcpStream;
                // pypowerwall-server patch: every read of this socket ends at the deadline
                let deadline = util::Deadline::new();
                if let Some(h) = &handle {
                    tracked.push(Tracked {
                        deadline: Arc::downgrade(&deadline),
                        socket: Arc::downgrade(h),
                    });
                }
                let sock = util::TimedConnection::new(sock, deadline.clone());
                #[cfg(feature = "ssl-rustls")]
                let pair = match ssl {
                    None => RefinedTcpStream::new_with(sock, detached),
                    Some(ref ssl) => match ssl.accept(sock) {
                        Ok(s) => RefinedTcpStream::new_with(s, detached),
                        Err(_) => continue,
                    },
                };
                #[cfg(not(feature = "ssl-rustls"))]
                let pair = RefinedTcpStream::new_with(sock, detached);
                let (read_closable, write_closable) = match pair {
                    Ok(p) => p,
                    Err(e) => {
                        log::warn!("dropping a connection: {}", e);
                        continue;
                    }
                };
                let client = ClientConnection::new(write_closable, read_closable)
                    .with_deadline(deadline, limits.request_timeout, limits.read_timeout)
                    .with_raw_socket(raw)
                    .with_handle(handle);

                let messages = inside_messages.clone();
                let inline = limits.inline.clone();
                // pypowerwall-server patch: released when the task ends or is dropped unrun
                let open = OpenSlot::take(&inside_open);
                let mut client = Some(client);
                tasks_pool.spawn(Box::new(move || {
                    let _open = open;
                    if let Some(client) = client.take() {
                        if let Some(handler) = inline.as_ref() {
                            // pypowerwall-server patch: answer on this connection's thread
                            // (no hand-off to a worker: one context switch less per request)
                            for rq in client {
                                handler(rq);
                            }
                        } else if client.secure() {
                            // Synchronization is needed for HTTPS requests to avoid a deadlock
                            let (sender, receiver) = mpsc::channel();
                            for rq in client {
                                messages.push(rq.with_notify_sender(sender.clone()).into());
                                if receiver.recv().is_err() {
                                    break;
                                }
                            }
                        } else {
                            for rq in client {
                                messages.push(rq.into());
                            }
                        }
                    }
                }));
            }
            log::debug!("Terminating accept thread");
        });

        // result
        Ok(Server {
            messages,
            close: close_trigger,
            listening_addr: local_addr,
            open,
        })
    }

    /// pypowerwall-server patch: connections currently open.
    pub fn open_connections(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// Returns an iterator for all the incoming requests.
    ///
    /// The iterator will return `None` if the server socket is shutdown.
    #[inline]
    pub fn incoming_requests(&self) -> IncomingRequests<'_> {
        IncomingRequests { server: self }
    }

    /// Returns the address the server is listening to.
    #[inline]
    pub fn server_addr(&self) -> ListenAddr {
        self.listening_addr.clone()
    }

    /// Returns the number of clients currently connected to the server.
    pub fn num_connections(&self) -> usize {
        unimplemented!()
        //self.requests_receiver.lock().len()
    }

    /// Blocks until an HTTP request has been submitted and returns it.
    pub fn recv(&self) -> IoResult<Request> {
        match self.messages.pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(rq),
            None => Err(IoError::new(IoErrorKind::Other, "thread unblocked")),
        }
    }

    /// Same as `recv()` but doesn't block longer than timeout
    pub fn recv_timeout(&self, timeout: Duration) -> IoResult<Option<Request>> {
        match self.messages.pop_timeout(timeout) {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Same as `recv()` but doesn't block.
    pub fn try_recv(&self) -> IoResult<Option<Request>> {
        match self.messages.try_pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Unblock thread stuck in recv() or incoming_requests().
    /// If there are several such threads, only one is unblocked.
    /// This method allows graceful shutdown of server.
    pub fn unblock(&self) {
        self.messages.unblock();
    }
}

impl Iterator for IncomingRequests<'_> {
    type Item = Request;
    fn next(&mut self) -> Option<Request> {
        self.server.recv().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close.store(true, Relaxed);
        // Connect briefly to ourselves to unblock the accept thread
        let maybe_stream = match &self.listening_addr {
            ListenAddr::IP(addr) => TcpStream::connect(addr).map(Connection::from),
            #[cfg(unix)]
            ListenAddr::Unix(addr) => {
                // TODO: use connect_addr when its stabilized.
                let path = addr.as_pathname().unwrap();
                std::os::unix::net::UnixStream::connect(path).map(Connection::from)
            }
        };
        if let Ok(stream) = maybe_stream {
            let _ = stream.shutdown(Shutdown::Both);
        }

        #[cfg(unix)]
        if let ListenAddr::Unix(addr) = &self.listening_addr {
            if let Some(path) = addr.as_pathname() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod serve_stream_tests {
    use super::*;
    use std::io::{Cursor, Write};
    use std::sync::Mutex;

    /// A shared output buffer.
    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);

    impl Write for Out {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn serve(input: &[u8]) -> String {
        let out = Out::default();
        serve_stream(Cursor::new(input.to_vec()), out.clone(), |rq| {
            let body = format!("{} {}", rq.method(), rq.url());
            let _ = rq.respond(Response::from_string(body));
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn pipelined_requests_and_refusals() {
        let got = serve(
            b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz\
              GET /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n\
              PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        );
        let statuses: Vec<&str> = got.matches("HTTP/1.1 ").collect();
        assert_eq!(statuses.len(), 4, "{got}");
        assert!(got.contains("GET /a") && got.contains("POST /b") && got.contains("GET /c"));
        assert!(got.contains("HTTP/1.1 505"), "{got}");
        assert!(serve(&[b'x'; 20_000]).starts_with("HTTP/1.1 414"));
        assert!(serve(b"GET / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n")
            .starts_with("HTTP/1.1 400"));
        // a huge declared body is not allocated: answered, then the connection closes
        let got = serve(b"GET /h HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nGET /x HTTP/1.1\r\n\r\n");
        assert!(got.contains("GET /h") && !got.contains("GET /x"), "{got}");
    }

    #[test]
    fn parse_request_head_reports_the_refusal_status() {
        let (m, path, v, h) = parse_request_head(b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!((m, path.as_str(), v, h.len()), (Method::Get, "/p", HTTPVersion(1, 1), 1));
        assert_eq!(parse_request_head(b"GET /p\r\n\r\n").unwrap_err(), Some(400));
        assert_eq!(parse_request_head(b"PRI * HTTP/2.0\r\n\r\n").unwrap_err(), Some(505));
        assert_eq!(parse_request_head(b"GET /p HTTP/1.1\r\nX: y").unwrap_err(), None);
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(101));
        assert_eq!(parse_request_head(many.as_bytes()).unwrap_err(), Some(431));
    }
}
