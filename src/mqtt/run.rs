//! The MQTT runtime (cargo feature `mqtt`): the rumqttc client and the three threads.
//!
//! **Crate.** rumqttc 0.25 (Bytebeam, the most used Rust MQTT client, maintained): MQTT 3.1.1
//! (5 available in the same crate), a blocking `Client` + `Connection` pair whose event loop
//! runs on a private current-thread tokio runtime — the same arrangement as our cloud client —
//! and rustls through `use-rustls-no-provider`, so the TLS config (ring provider, our roots,
//! our verifier) is ours. Its request channel is bounded ([`CHANNEL_CAP`]); after a connection
//! loss the event loop moves that channel into its retry list, which is dropped on a clean
//! session, so memory stays bounded by the channel and the in-flight window.
//!
//! **Invariants.** Pollers and HTTP never wait on this module: the publish listener only sets a
//! flag. Only `mqtt-conn` touches the socket; `mqtt-publish` uses `try_publish` and never
//! blocks on a full channel; `mqtt-control` is the only thread that waits on Tesla's cloud.
//! The password goes into the CONNECT packet and nowhere else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rumqttc::{
    Client, ConnectReturnCode, Connection, ConnectionError, Event, LastWill, MqttOptions, Outgoing,
    Packet, Publish, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};

use super::{control, discovery, state, Status, FULL_REFRESH};
use crate::config::mqtt::MqttSettings;
use crate::http::control::Write;
use crate::http::router::Ctx;
use crate::snapshot::State;

/// Requests the client buffers before `try_publish` refuses (one full round of a few gateways).
const CHANNEL_CAP: usize = 512;
/// A discovered entity whose data has been absent this long is removed (empty retained config).
const REMOVE_AFTER: Duration = Duration::from_secs(600);
/// Commands arriving within this window of the first collapse to the latest per control.
const COALESCE: Duration = Duration::from_millis(50);
/// Home Assistant birth messages closer together than this re-send discovery only once (anyone
/// allowed to publish `{ha}/status` could otherwise make us flood the broker).
const BIRTH_MIN_GAP: Duration = Duration::from_secs(5);
/// Reconnect back-off.
const BACKOFF_MIN: u64 = 2;
const BACKOFF_MAX: u64 = 60;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why the publisher woke up.
#[derive(Default)]
struct Flags {
    /// A gateway published a snapshot.
    dirty: bool,
    /// (Re)connected: send availability, discovery and every state topic again.
    resend: bool,
    /// Home Assistant came online: send discovery again.
    rediscover: bool,
}

/// One command waiting for the control thread.
struct Command {
    gateway: usize,
    control: &'static str,
    write: Write,
    topic: String,
}

struct Shared {
    ctx: Arc<Ctx>,
    status: Arc<Status>,
    client: Client,
    prefix: String,
    ha: Option<String>,
    qos: QoS,
    retain: bool,
    /// The effective `MQTT_CONTROLS` mask (0 when controls are unavailable).
    controls: u8,
    stop: AtomicBool,
    flags: Mutex<Flags>,
    wake: Condvar,
    commands: Mutex<Vec<Command>>,
    command_ready: Condvar,
    last_birth: Mutex<Option<Instant>>,
}

impl Shared {
    fn mark(&self, f: impl FnOnce(&mut Flags)) {
        f(&mut lock(&self.flags));
        self.wake.notify_one();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Hands one message to the client without waiting; false when its queue is full.
    fn send(&self, topic: &str, payload: &str, retain: bool) -> bool {
        let ok = self
            .client
            .try_publish(topic, self.qos, retain, payload.as_bytes().to_vec())
            .is_ok();
        if !ok {
            self.status.dropped.fetch_add(1, Ordering::SeqCst);
        }
        ok
    }
}

/// The running threads.
pub struct Running {
    shared: Arc<Shared>,
    publisher: JoinHandle<()>,
}

fn qos(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtLeastOnce,
    }
}

/// rustls settings: the CA file, the Mozilla roots, or (explicitly) any certificate.
fn tls_config(s: &MqttSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    if s.tls_insecure {
        log::warn!("MQTT_TLS_INSECURE is set: the broker's certificate is not verified");
        return Ok(crate::wire::tls::gateway_client_config(None));
    }
    let mut roots = rustls::RootCertStore::empty();
    match &s.tls_ca_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("MQTT_TLS_CA_CERT: cannot read '{path}': {e}"))?;
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                let cert =
                    cert.map_err(|e| format!("MQTT_TLS_CA_CERT: '{path}' is not PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("MQTT_TLS_CA_CERT: bad certificate in '{path}': {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("MQTT_TLS_CA_CERT: no certificate in '{path}'"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("MQTT TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Connects (in the background) and starts the threads.
pub fn start(ctx: &Arc<Ctx>, s: &MqttSettings) -> Result<Running, String> {
    let host = s.host.clone().unwrap_or_default();
    let mut o = MqttOptions::new(s.client_id.clone(), host.clone(), s.port);
    o.set_keep_alive(Duration::from_secs(s.keepalive as u64));
    o.set_clean_session(true);
    // Incoming: commands (≤ 1 KiB) and HA's birth; outgoing: the largest JSON state topic.
    o.set_max_packet_size(64 * 1024, 1024 * 1024);
    o.set_last_will(LastWill::new(
        format!("{}/availability", s.topic_prefix),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &s.username {
        let pass = s.password.as_ref().map(|p| p.expose()).unwrap_or("");
        o.set_credentials(user.clone(), pass);
    }
    if s.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls_config(s)?,
        )));
    }
    let control_on = ctx.control.enabled();
    let controls = if s.controls == 0 {
        0
    } else if !control_on || s.username.is_none() || s.password.is_none() {
        let mut missing = Vec::new();
        if s.username.is_none() {
            missing.push("MQTT_USERNAME");
        }
        if s.password.is_none() {
            missing.push("MQTT_PASSWORD");
        }
        if !control_on {
            missing.push("PW_CONTROL_SECRET (or CONTROL_ENABLED + CONTROL_TOKEN)");
        }
        log::warn!(
            "MQTT controls requested (MQTT_CONTROLS={}) but disabled: set {}",
            s.controls,
            missing.join(", ")
        );
        0
    } else {
        s.controls & control::CONTROLS.iter().fold(0, |m, (_, b)| m | b)
    };
    let (client, connection) = Client::new(o, CHANNEL_CAP);
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        status: ctx.mqtt.clone(),
        client,
        prefix: s.topic_prefix.clone(),
        ha: s.ha_discovery.then(|| s.ha_prefix.clone()),
        qos: qos(s.qos),
        retain: s.retain,
        controls,
        stop: AtomicBool::new(false),
        flags: Mutex::new(Flags::default()),
        wake: Condvar::new(),
        commands: Mutex::new(Vec::new()),
        command_ready: Condvar::new(),
        last_birth: Mutex::new(None),
    });
    // The hub holds the listener and the listener must not keep `Shared` (which holds the
    // hub through `ctx`) alive: a weak reference breaks the cycle.
    let weak: Weak<Shared> = Arc::downgrade(&shared);
    let woken = ctx.hub.on_publish(Box::new(move |_| {
        if let Some(sh) = weak.upgrade() {
            sh.mark(|f| f.dirty = true);
        }
    }));
    if !woken {
        // Another module holds the hub's one listener: look at the snapshots every second.
        log::warn!("MQTT: the hub's publish listener is taken; checking snapshots every second");
    }
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|e| format!("MQTT: cannot start thread {name}: {e}"))
    };
    let sh = shared.clone();
    let endpoint = format!("{host}:{}", s.port);
    spawn(
        "mqtt-conn",
        Box::new(move || conn_loop(sh, connection, endpoint)),
    )?;
    let sh = shared.clone();
    let publisher = spawn(
        "mqtt-publish",
        Box::new(move || Publisher::new(sh, !woken).run()),
    )?;
    if controls != 0 {
        let sh = shared.clone();
        spawn("mqtt-control", Box::new(move || control_loop(sh)))?;
    }
    log::info!(
        "MQTT publisher starting: broker {host}:{}{}, topics under '{}/'",
        s.port,
        if s.tls { " (TLS)" } else { "" },
        s.topic_prefix
    );
    Ok(Running { shared, publisher })
}

impl Running {
    pub fn stop(self) {
        let sh = &self.shared;
        // The publisher first, so that no "online" can follow the "offline" below.
        sh.stop.store(true, Ordering::SeqCst);
        sh.mark(|_| {});
        sh.command_ready.notify_all();
        let _ = self.publisher.join();
        if sh.status.connected() {
            for i in 0..sh.ctx.hub.len() {
                if let Some(snap) = sh.ctx.hub.snapshot(i) {
                    sh.send(
                        &format!("{}/{}/availability", sh.prefix, snap.id),
                        "offline",
                        sh.retain,
                    );
                }
            }
            sh.send(&format!("{}/availability", sh.prefix), "offline", true);
        }
        let _ = sh.client.try_disconnect();
        // `mqtt-conn` ends with the disconnect (or its current connect attempt); `mqtt-control`
        // may be inside a cloud write bounded by PW_TIMEOUT. Neither is waited for.
    }
}

/// Sleeps `d` in short steps; false when stopping.
fn nap(sh: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if sh.stopping() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    !sh.stopping()
}

fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                ConnectReturnCode::BadUserNamePassword => {
                    "bad user name or password (check MQTT_USERNAME / MQTT_PASSWORD)"
                }
                ConnectReturnCode::NotAuthorized => {
                    "not authorized (check MQTT_USERNAME / MQTT_PASSWORD and the broker ACL)"
                }
                ConnectReturnCode::BadClientId => "client id rejected (check MQTT_CLIENT_ID)",
                ConnectReturnCode::RefusedProtocolVersion => "MQTT 3.1.1 not accepted",
                ConnectReturnCode::ServiceUnavailable => "service unavailable",
                ConnectReturnCode::Success => "refused with code 0",
            };
            format!("the broker refused the connection: {why}")
        }
        e => e.to_string(),
    }
}

/// Drives the connection: connect, keep-alive, reconnect with back-off, incoming messages.
fn conn_loop(sh: Arc<Shared>, mut conn: Connection, endpoint: String) {
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u32;
    // Runs until the DISCONNECT that `Running::stop` queues is written (or, when stopping, until
    // the connection fails), so the "offline" messages queued before it go out.
    loop {
        let event = match conn.recv() {
            Ok(ev) => ev,
            // The client side was dropped: nothing more to do.
            Err(_) => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                sh.status.connected.store(true, Ordering::SeqCst);
                *lock(&sh.status.connected_since) = Some(SystemTime::now());
                sh.status.set_error(None);
                backoff = BACKOFF_MIN;
                failures = 0;
                log::info!("MQTT connected to {endpoint}");
                subscribe(&sh);
                sh.mark(|f| f.resend = true);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => incoming(&sh, p),
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    log::error!(
                        "MQTT broker refused a subscription (control commands or Home Assistant \
                         status): allow this user to read {}/+/control/+/set and the HA status \
                         topic in the broker ACL",
                        sh.prefix
                    );
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(_))) => {
                sh.status.sent.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                if sh.stopping() {
                    break;
                }
                let was = sh.status.connected.swap(false, Ordering::SeqCst);
                let msg = describe(&e);
                sh.status.set_error(Some(msg.clone()));
                failures += 1;
                let refused = matches!(e, ConnectionError::ConnectionRefused(_));
                if was {
                    log::warn!(
                        "MQTT connection to {endpoint} lost: {msg}; reconnecting in {backoff} s"
                    );
                } else if failures == 1 || failures.is_multiple_of(10) {
                    let line = format!(
                        "MQTT cannot connect to {endpoint} ({failures} in a row): {msg}; retrying in {backoff} s"
                    );
                    if refused {
                        log::error!("{line}");
                    } else {
                        log::warn!("{line}");
                    }
                }
                if !nap(&sh, Duration::from_secs(backoff)) {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    sh.status.connected.store(false, Ordering::SeqCst);
}

fn subscribe(sh: &Shared) {
    if let Some(ha) = &sh.ha {
        let _ = sh
            .client
            .try_subscribe(format!("{ha}/status"), QoS::AtLeastOnce);
    }
    if sh.controls != 0 {
        let topic = format!("{}/+/control/+/set", sh.prefix);
        let _ = sh.client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
        let names: Vec<&str> = control::CONTROLS
            .iter()
            .filter(|(_, b)| sh.controls & b != 0)
            .map(|(n, _)| *n)
            .collect();
        log::info!(
            "MQTT controls subscribed to {topic} (enabled: {})",
            names.join(", ")
        );
    }
}

/// One message from the broker: HA's birth, or a command. Never trusted.
fn incoming(sh: &Shared, p: Publish) {
    let topic = p.topic.as_str();
    if let Some(ha) = &sh.ha {
        if topic.strip_prefix(ha.as_str()) == Some("/status") {
            let mut last = lock(&sh.last_birth);
            let recent = last.is_some_and(|t| t.elapsed() < BIRTH_MIN_GAP);
            if &p.payload[..] == b"online" && !recent {
                *last = Some(Instant::now());
                log::info!("MQTT: Home Assistant is online, sending discovery again");
                sh.mark(|f| f.rediscover = true);
            }
            return;
        }
    }
    let Some((gw, name)) = control::parse_topic(&sh.prefix, topic) else {
        return;
    };
    if p.payload.is_empty() {
        // How a retained command is cleared, including the echo of our own clear.
        return;
    }
    // Whatever happens below, no stored copy of this command may ever run later.
    let clear = |sh: &Shared| {
        let _ = sh
            .client
            .try_publish(topic, QoS::AtLeastOnce, true, Vec::<u8>::new());
    };
    let label = format!(
        "MQTT control '{}' for '{}'",
        control::short(name),
        control::short(gw)
    );
    if p.retain {
        log::warn!(
            "{label} ignored: retained commands are not executed (publish with retain=false)"
        );
        clear(sh);
        return;
    }
    let result = (|| {
        let i = sh.ctx.hub.index_of(gw).ok_or("unknown gateway")?;
        let (control, bit) = control::CONTROLS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or("unknown control")?;
        if sh.controls & bit == 0 {
            return Err("MQTT_CONTROLS bit not set".to_string());
        }
        if !sh.ctx.control.can_write(i) {
            return Err(
                "this gateway has no write path (v1r on the LAN, or cloud credentials)".into(),
            );
        }
        let write = match control::parse(control, &p.payload)? {
            control::Cmd::Write(w) => w,
            control::Cmd::Hold => {
                // Only a live poll counts: stale data must never freeze a reserve.
                let level = sh
                    .ctx
                    .hub
                    .view(i, Instant::now())
                    .filter(|v| v.state == State::Online)
                    .and_then(|v| v.facade.level)
                    .and_then(|raw| control::hold_level(state::tesla_percent(raw)))
                    .ok_or("battery state of charge unavailable or stale (needs a live poll)")?;
                Write::Reserve(level)
            }
        };
        Ok::<_, String>(Command {
            gateway: i,
            control,
            write,
            topic: topic.to_string(),
        })
    })();
    clear(sh);
    match result {
        Err(why) => log::warn!("{label} rejected: {why}"),
        Ok(cmd) => {
            let mut q = lock(&sh.commands);
            // Latest wins: one pending command per gateway and control.
            q.retain(|c| !(c.gateway == cmd.gateway && c.control == cmd.control));
            q.push(cmd);
            sh.command_ready.notify_one();
        }
    }
}

/// Runs queued commands one at a time through the HTTP control path.
fn control_loop(sh: Arc<Shared>) {
    loop {
        {
            let mut q = lock(&sh.commands);
            while q.is_empty() && !sh.stopping() {
                q = sh.command_ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        }
        if sh.stopping() {
            return;
        }
        // Let a burst arrive, then take only its latest values.
        std::thread::sleep(COALESCE);
        let batch = std::mem::take(&mut *lock(&sh.commands));
        for cmd in batch {
            let _ = sh
                .ctx
                .control
                .write(cmd.gateway, &cmd.write, "MQTT", &cmd.topic);
        }
    }
}

#[path = "publish.rs"]
mod publish;
use publish::Publisher;
