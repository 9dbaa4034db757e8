//! WebSocket streaming: `/ws/gateway/{id}` and `/ws/aggregate`, one summary per second.
//!
//! Thread use is fixed: a single broadcaster thread serves every client, however many there
//! are. After the handshake (answered by an HTTP worker) the socket is taken over from tiny_http
//! (`Request::upgrade_tcp`, a vendored patch) and made non-blocking. Each round the broadcaster
//! renders one message per gateway (and one for the aggregate), shares it with every subscriber,
//! and reads whatever clients sent (pings are answered, closes completed). A client whose unsent
//! data exceeds a small cap — it does not read — is dropped; nobody else waits for it. Silent
//! clients are pinged and dropped when they stop answering.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tiny_http::{Header, Request, Response, StatusCode};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::api;
use super::router::{header_value, send, Answer, Ctx, Req};

/// How often the broadcaster looks at sockets between messages.
const POLL: Duration = Duration::from_millis(100);
/// Ping a client that sent nothing for this long; drop it after twice as long.
const PING_AFTER: Duration = Duration::from_secs(30);
/// Unsent bytes a client may have queued before it is dropped.
const MAX_QUEUED: usize = 64 * 1024;

/// WebSocket settings.
#[derive(Debug, Clone)]
pub struct WsSettings {
    pub interval: Duration,
    pub max_clients: usize,
    /// Allowed `Origin` values; empty = any.
    pub origins: Vec<String>,
}

/// The accepting side, shared by HTTP workers.
pub struct WsHub {
    tx: Mutex<Sender<Client>>,
    clients: Arc<AtomicUsize>,
    stop: std::sync::atomic::AtomicBool,
    pub settings: WsSettings,
}

/// What a client subscribed to.
#[derive(Debug, Clone, PartialEq)]
enum Topic {
    Gateway(usize),
    Aggregate,
}

struct Sock(Arc<TcpStream>);

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.0).flush()
    }
}

pub struct Client {
    ws: WebSocket<Sock>,
    topic: Topic,
    last_heard: Instant,
    pinged: bool,
}

impl WsHub {
    /// Creates the hub and the receiving end for [`spawn_broadcaster`].
    pub fn new(settings: WsSettings) -> (WsHub, Receiver<Client>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (
            WsHub {
                tx: Mutex::new(tx),
                clients: Arc::new(AtomicUsize::new(0)),
                stop: std::sync::atomic::AtomicBool::new(false),
                settings,
            },
            rx,
        )
    }

    /// Clients connected right now.
    pub fn connected(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Ends the broadcaster (its clients are dropped).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A plain GET on a WebSocket route.
pub fn not_upgraded(_req: &Req<'_>) -> Answer {
    let mut a = Answer::json(426, r#"{"error": "WebSocket upgrade required"}"#);
    a.headers.push(("Upgrade", "websocket".into()));
    a
}

fn refuse(rq: Request, status: u16, message: &str) {
    send(
        rq,
        Answer::json(
            status,
            crate::json::Value::from(crate::json::Map::new().with("error", message)).to_py(),
        ),
    );
}

/// Answers a WebSocket handshake: refuses with an HTTP error, or hands the socket over.
pub fn accept(req: &Req<'_>, rq: Request) {
    let ctx = req.ctx;
    let hub = &ctx.ws;
    let topic = if req.path == "/ws/aggregate" {
        Topic::Aggregate
    } else {
        match ctx.hub.index_of(req.param("id")) {
            Some(i) => Topic::Gateway(i),
            None => return refuse(rq, 404, "unknown gateway id"),
        }
    };
    let header = |name: &str| header_value(&rq, name);
    if !hub.settings.origins.is_empty() {
        let origin = header("Origin").unwrap_or_default();
        if !hub
            .settings
            .origins
            .iter()
            .any(|o| o == &origin || o == "*")
        {
            return refuse(rq, 403, "origin not allowed");
        }
    }
    let Some(key) = header("Sec-WebSocket-Key") else {
        return refuse(rq, 400, "missing Sec-WebSocket-Key");
    };
    if header("Sec-WebSocket-Version").as_deref() != Some("13") {
        return refuse(rq, 400, "unsupported WebSocket version (13 required)");
    }
    // Reserve a slot before upgrading, so the cap holds under a burst of handshakes.
    let taken = hub.clients.fetch_add(1, Ordering::SeqCst);
    if taken >= hub.settings.max_clients {
        hub.clients.fetch_sub(1, Ordering::SeqCst);
        return refuse(
            rq,
            503,
            &format!(
                "too many WebSocket clients (limit {})",
                hub.settings.max_clients
            ),
        );
    }
    let accept_key = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let headers: Vec<Header> = [
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Accept", accept_key.as_str()),
    ]
    .iter()
    .filter_map(|(k, v)| Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
    .collect();
    let response = Response::new(StatusCode(101), headers, std::io::empty(), Some(0), None);
    let socket = match rq.upgrade_tcp("websocket", response) {
        Ok(s) => s,
        Err(rq) => {
            hub.clients.fetch_sub(1, Ordering::SeqCst);
            return refuse(
                rq,
                501,
                "WebSocket is not available over PW_HTTPS; put a TLS-terminating proxy in front",
            );
        }
    };
    if socket.set_nonblocking(true).is_err() {
        hub.clients.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let ws = WebSocket::from_raw_socket(Sock(socket), Role::Server, Some(server_config()));
    let client = Client {
        ws,
        topic,
        last_heard: Instant::now(),
        pinged: false,
    };
    let sent = hub
        .tx
        .lock()
        .map(|tx| tx.send(client).is_ok())
        .unwrap_or(false);
    if !sent {
        hub.clients.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The limits every client socket is read and written with (also the fuzz target's).
pub fn server_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_QUEUED)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
}

/// Outcome of serving one client for one round.
enum Fate {
    Keep,
    Drop(&'static str),
}

fn write(c: &mut Client, msg: &str) -> Fate {
    match c.ws.send(Message::text(msg)) {
        Ok(()) => Fate::Keep,
        Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => Fate::Keep,
        Err(tungstenite::Error::WriteBufferFull(_)) => Fate::Drop("not reading (queue full)"),
        Err(_) => Fate::Drop("write failed"),
    }
}

/// Frames read from one client per round: a client that sends without pause (a ping flood)
/// cannot keep the broadcaster from everyone else.
const MAX_READS_PER_ROUND: usize = 64;

/// Reads what the client sent; tungstenite queues the pong / close replies.
fn read(c: &mut Client, now: Instant) -> Fate {
    for _ in 0..MAX_READS_PER_ROUND {
        match c.ws.read() {
            Ok(_) => {
                c.last_heard = now;
                c.pinged = false;
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Flush queued control frames (pong, close) without blocking.
                return match c.ws.flush() {
                    Ok(()) => Fate::Keep,
                    Err(tungstenite::Error::Io(e))
                        if e.kind() == std::io::ErrorKind::WouldBlock =>
                    {
                        Fate::Keep
                    }
                    Err(_) => Fate::Drop("flush failed"),
                };
            }
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                return Fate::Drop("closed")
            }
            Err(_) => return Fate::Drop("protocol error"),
        }
    }
    // More is waiting: the rest next round, after the others.
    match c.ws.flush() {
        Err(tungstenite::Error::Io(e)) if e.kind() != std::io::ErrorKind::WouldBlock => {
            Fate::Drop("flush failed")
        }
        Err(tungstenite::Error::Io(_)) | Ok(()) => Fate::Keep,
        Err(_) => Fate::Drop("flush failed"),
    }
}

/// Starts the broadcaster thread; fails when the OS refuses another thread.
pub fn spawn_broadcaster(ctx: Arc<Ctx>, rx: Receiver<Client>) -> Result<JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name("ws-broadcast".into())
        .spawn(move || broadcast(ctx, rx))
        .map_err(|e| format!("cannot start the WebSocket broadcaster thread: {e}"))
}

fn message(ctx: &Ctx, topic: &Topic, now: Instant) -> Option<Arc<str>> {
    match topic {
        Topic::Aggregate => Some(ctx.aggregates.get(ctx, now).message.clone()),
        Topic::Gateway(i) => ctx
            .hub
            .view(*i, now)
            .map(|v| Arc::from(api::gateway_message(&v))),
    }
}

fn broadcast(ctx: Arc<Ctx>, rx: Receiver<Client>) {
    let mut clients: Vec<Client> = Vec::new();
    let interval = ctx.ws.settings.interval;
    let mut next = Instant::now() + interval;
    while !ctx.ws.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        // New clients get the current message at once.
        loop {
            match rx.try_recv() {
                Ok(mut c) => {
                    if let Some(m) = message(&ctx, &c.topic, now) {
                        if let Fate::Drop(_) = write(&mut c, &m) {
                            ctx.ws.clients.fetch_sub(1, Ordering::SeqCst);
                            continue;
                        }
                    }
                    clients.push(c);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    if clients.is_empty() {
                        return;
                    }
                    break;
                }
            }
        }
        let tick = now >= next;
        let mut cache: Vec<(Topic, Option<Arc<str>>)> = Vec::new();
        clients.retain_mut(|c| {
            let mut fate = read(c, now);
            if matches!(fate, Fate::Keep) && tick {
                let m = match cache.iter().find(|(t, _)| *t == c.topic) {
                    Some((_, m)) => m.clone(),
                    None => {
                        let m = message(&ctx, &c.topic, now);
                        cache.push((c.topic.clone(), m.clone()));
                        m
                    }
                };
                if let Some(m) = m {
                    fate = write(c, &m);
                }
                let quiet = now.saturating_duration_since(c.last_heard);
                if matches!(fate, Fate::Keep) && quiet >= PING_AFTER && !c.pinged {
                    c.pinged = true;
                    fate = match c.ws.send(Message::Ping(Vec::new().into())) {
                        Err(tungstenite::Error::Io(e))
                            if e.kind() != std::io::ErrorKind::WouldBlock =>
                        {
                            Fate::Drop("ping failed")
                        }
                        _ => Fate::Keep,
                    };
                } else if quiet >= PING_AFTER * 2 {
                    fate = Fate::Drop("no answer to ping");
                }
            }
            match fate {
                Fate::Keep => true,
                Fate::Drop(why) => {
                    log::debug!("ws: dropping a client: {why}");
                    ctx.ws.clients.fetch_sub(1, Ordering::SeqCst);
                    false
                }
            }
        });
        if tick {
            next += interval;
            if next < now {
                next = now + interval;
            }
        }
        std::thread::sleep(
            POLL.min(next.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(5)),
        );
    }
}
