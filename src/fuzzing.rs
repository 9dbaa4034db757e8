//! Fuzz target bodies, shared by the `cargo fuzz` targets (`fuzz/`) and the stable replay test
//! (`tests/fuzz_replay.rs`), so CI replays the corpora without nightly. Not a public API.
//!
//! Each function takes untrusted bytes and must return without panicking, whatever they are.
//! The HTTP target goes through tiny_http's `serve_stream` (the same request-line, header and
//! body code a socket reaches; see `vendor/tiny_http/PATCHES.md`) and then through
//! `router::handle`, ending in the bytes of the written response.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::config::{self, CliOverrides, Config};
use crate::gateway::{map, proto, vitals_pb, TedapiData};
use crate::http::router::{self, Ctx};
use crate::http::{api, server, status, ws};
use crate::json::{self, Value};
use crate::render::{self as legacy, legacy::render};
use crate::snapshot::{GatewaySnapshot, Health, Hub};

/// A target body.
pub type Target = fn(&[u8]);

/// Every target, by name (the fuzz target and corpus directory names).
pub const TARGETS: &[(&str, Target)] = &[
    ("http", http),
    ("proto", proto),
    ("json", json),
    ("vitals_pb", vitals_pb),
    ("config_env", config_env),
    ("config_file", config_file),
    ("ws", ws),
    ("map", map),
    ("history_file", history_file),
    #[cfg(feature = "mqtt")]
    ("mqtt_command", mqtt_command),
];

/// The TEDAPI protobuf messages: `Message`, `Envelope`, `RoutableMessage`; what decodes must
/// encode again and decode to the same value.
pub fn proto(data: &[u8]) {
    if let Ok(m) = proto::Message::decode(data) {
        let again = proto::Message::decode(&m.encode());
        assert!(again.is_ok(), "re-encoded Message does not decode");
    }
    // Envelopes (FileStore update, TEG island mode, error responses included) re-encode to the
    // same value.
    if let Ok(e) = proto::Envelope::decode(data) {
        let again = proto::Envelope::decode(&e.encode());
        assert!(again.is_ok(), "re-encoded Envelope does not decode");
    }
    if let Ok(m) = proto::RoutableMessage::decode(data) {
        let again = proto::RoutableMessage::decode(&m.encode());
        assert!(again.is_ok(), "re-encoded RoutableMessage does not decode");
    }
}

/// The JSON parser; what parses must print and parse again.
pub fn json(data: &[u8]) {
    if let Ok(v) = json::parse_bytes(data) {
        for text in [v.to_py(), v.to_py_pretty(), v.to_py_sorted()] {
            assert!(
                json::parse(&text).is_ok(),
                "printed JSON does not parse: {text}"
            );
        }
    }
}

/// The local-mode `/api/devices/vitals` protobuf, decoded and mapped.
pub fn vitals_pb(data: &[u8]) {
    if let Ok(devices) = vitals_pb::decode(data) {
        let _ = map::vitals_map(&devices);
    }
    let _ = map::decode_vitals(Some(data));
}

/// Keys the environment target never passes on: they name files to read.
fn file_key(key: &str) -> bool {
    key == "PW_CONFIG"
        || ["_PATH", "_FILE", "_DIR", "_CERT", "_KEY", "_CA"]
            .iter()
            .any(|s| key.ends_with(s))
}

/// `KEY=VALUE` lines as an environment, file-naming keys left out.
fn env_map(data: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !file_key(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `config::load` from a fake environment (`KEY=VALUE` lines).
pub fn config_env(data: &[u8]) {
    let env = env_map(data);
    let _ = config::load(&|k| env.get(k).cloned(), &CliOverrides::default());
}

/// The YAML/JSON configuration file (`PW_CONFIG`), read by `config::load` as at start.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if config::file::parse(text, "fuzz.yaml").is_err() {
        return;
    }
    let path = std::env::temp_dir().join(format!(
        "pypowerwall-fuzz-{}-{:?}.yaml",
        std::process::id(),
        std::thread::current().id()
    ));
    if std::fs::write(&path, text).is_err() {
        return;
    }
    let path_text = path.to_string_lossy().to_string();
    let _ = config::load(
        &|k| (k == "PW_CONFIG").then(|| path_text.clone()),
        &CliOverrides::default(),
    );
    let _ = std::fs::remove_file(&path);
}

/// A stream that reads the input and throws writes away.
struct Replay<'a> {
    input: &'a [u8],
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// WebSocket frames read as the server reads them (same `WebSocketConfig` as `http::ws`).
pub fn ws(data: &[u8]) {
    use tungstenite::protocol::{Role, WebSocket};
    let mut sock = WebSocket::from_raw_socket(
        Replay { input: data },
        Role::Server,
        Some(ws::server_config()),
    );
    // Every frame needs at least two bytes, so this bound is never what stops the loop.
    for _ in 0..=data.len() {
        if sock.read().is_err() {
            break;
        }
    }
}

/// Decoded gateway documents (a JSON object with `config`, `status`, `controller`,
/// `components`, `aggregates` keys) mapped to the facade and rendered; the same object read
/// as local-mode `/api/*` answers.
pub fn map(data: &[u8]) {
    let Ok(doc) = json::parse_bytes(data) else {
        return;
    };
    let get = |k: &str| doc.get(k).cloned();
    let tedapi = TedapiData {
        host: "fuzz".into(),
        din: "1232100-00-E--TG0123456789AB".into(),
        config: get("config").map(Into::into),
        status: get("status").map(Into::into),
        controller: get("controller").map(Into::into),
        components: get("components").map(|v| std::sync::Arc::new(crate::json::Packed::new(&v))),
        native_aggregates: get("aggregates"),
        timestamp: 1_700_000_000.0,
        ..TedapiData::default()
    };
    let settings = legacy::Settings {
        neg_solar: true,
        site_zero_threshold: 0,
        control_enabled: false,
        pass_through: crate::http::routes::pass_through(),
    };
    let facade = map::tedapi(&tedapi);
    let _ = render(&facade, &settings, true);
    let _ = crate::render::Summary::from_facade(&facade, &settings);
    let local = map::LocalData {
        api: doc
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect()
            })
            .unwrap_or_default(),
        vitals: None,
        tedapi: None,
    };
    let facade = map::local(&local);
    let _ = render(&facade, &settings, true);
    let live = get("live").unwrap_or(Value::Null);
    let info = get("site_info").unwrap_or(Value::Null);
    let cloud = crate::cloud::map::CloudData {
        fleet: doc.get("fleet").is_some(),
        live,
        site_info: info,
        site_status: get("site_status"),
        time_remaining: None,
        now: 1_700_000_000,
    };
    let _ = render(&crate::cloud::map::facade(&cloud), &settings, true);
}

/// One server context for every HTTP input (a TEDAPI gateway that has not answered yet).
fn ctx() -> &'static Ctx {
    static CTX: OnceLock<Ctx> = OnceLock::new();
    CTX.get_or_init(|| {
        let env: HashMap<&str, &str> = [
            ("PW_HOST", "192.0.2.1"),
            ("PW_GW_PWD", "FUZZPASSWD"),
            ("PW_CONTROL_SECRET", "fuzz-secret"),
        ]
        .into_iter()
        .collect();
        let cfg: Config = match config::load(
            &|k| env.get(k).map(|v| v.to_string()),
            &CliOverrides::default(),
        ) {
            Ok(cfg) => cfg,
            Err(e) => panic!("fuzz configuration: {e}"),
        };
        let snapshots = cfg
            .gateways
            .iter()
            .map(|g| GatewaySnapshot {
                id: g.id.clone(),
                name: g.name.clone(),
                host: g.host.clone(),
                simulated: false,
                solar_only: false,
                mode: g.mode,
                forward: None,
                health: Health::default(),
                good: None,
                history: Arc::new(crate::snapshot::History::new(&g.id, None, None)),
                series: None,
            })
            .collect();
        let hub = Arc::new(Hub::new(
            snapshots,
            legacy::Settings {
                neg_solar: true,
                site_zero_threshold: 0,
                control_enabled: true,
                pass_through: crate::http::routes::pass_through(),
            },
            Duration::from_secs(60),
            true,
        ));
        // The receiver is dropped: an upgraded client is refused, never kept.
        let (ws, _rx) = ws::WsHub::new(ws::WsSettings {
            interval: Duration::from_secs(1),
            max_clients: 4,
            origins: Vec::new(),
        });
        Ctx {
            control: crate::http::control::Controller::new(&cfg, hub.clone()),
            permits: server::Permits::new(cfg.server.workers),
            config: cfg.public(),
            hub,
            stats: status::Stats::new(),
            default_gateway: 0,
            tls: None,
            ws,
            aggregates: api::Aggregates::default(),
            metrics: Default::default(),
            mqtt: crate::http::mqtt::Status::new(&cfg.mqtt),
            timeseries: Default::default(),
        }
    })
}

/// A response sink the fuzz target reads back.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        // An answer is bounded by the route table; cap what a test keeps anyway.
        if out.len() < 1 << 20 {
            out.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Request bytes → one tiny_http connection (`serve_stream`: the head parser, limits, body
/// framing and pipelining a socket reaches) → `router::handle` for each request → response bytes.
pub fn http(data: &[u8]) {
    let sink = Sink::default();
    let input = std::io::Cursor::new(data.to_vec());
    tiny_http::serve_stream(input, sink.clone(), |rq| router::handle(ctx(), rq));
    let out = match sink.0.lock() {
        Ok(out) => out.clone(),
        Err(_) => return,
    };
    assert!(
        out.is_empty() || out.starts_with(b"HTTP/1.") || out.starts_with(b"HTTP/0."),
        "not an HTTP answer: {:?}",
        String::from_utf8_lossy(&out[..out.len().min(64)])
    );
}

/// The small history layout the file target uses (20 pages, so inputs stay small).
fn history_spec() -> crate::history::Spec {
    use crate::history::{ArchiveSpec, Spec};
    Spec {
        step: 60,
        archives: vec![
            ArchiveSpec {
                steps: 1,
                keep: 200,
            },
            ArchiveSpec {
                steps: 15,
                keep: 300,
            },
        ],
        days: 70,
    }
}

/// A history file image with a few days in it, made once through the real recorder.
fn history_base() -> &'static [u8] {
    use crate::history::{Recorder, Sample, Storage, Zone, FLOWS};
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let path = fuzz_path("base.pwh");
        let _ = std::fs::remove_file(&path);
        let Ok(mut rec) = Recorder::new(
            history_spec(),
            Storage::File(path.clone()),
            Zone::utc(),
            HISTORY_T0,
        ) else {
            return Vec::new();
        };
        for k in 0..3 * 24 * 12 {
            let ts = (HISTORY_T0 + k * 300) as f64;
            let wh = k as f64 * 250.0;
            rec.record(&Sample {
                ts,
                solar: Some(3000.0),
                home: Some(1200.0),
                battery: Some(-800.0),
                grid: Some(-1000.0),
                soe: Some(50.0 + (k % 40) as f64),
                meters: [Some(wh); FLOWS],
            });
        }
        let _ = rec.flush();
        let image = std::fs::read(&path).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        image
    })
}

const HISTORY_T0: i64 = 1_700_000_000;

fn fuzz_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "pypowerwall-fuzz-{}-{:?}-{name}",
        std::process::id(),
        std::thread::current().id()
    ))
}

/// A history file (`PW_HISTORY_DIR/<id>.pwh`) as the recorder opens it. The input is a list of
/// patches to a good file — `page`, `offset` (u16), `len`, then `len` bytes, and a flag byte
/// whose bit 0 re-seals the page (so its damaged content passes the CRC and reaches the
/// decoders); an input starting with 0 is the whole file instead. The recorder must open it,
/// record, answer every query and flush without panicking.
pub fn history_file(data: &[u8]) {
    use crate::history::{seal_page, Recorder, Sample, Storage, Zone, FLOWS, PAGE_BYTES};
    let base = history_base();
    if base.is_empty() {
        return;
    }
    let image = if data.first() == Some(&0) {
        data[1..].to_vec()
    } else {
        let mut image = base.to_vec();
        let pages = image.len() / PAGE_BYTES;
        let mut rest = data;
        while rest.len() >= 5 {
            let no = usize::from(rest[0]) % pages;
            let offset = usize::from(u16::from_le_bytes([rest[1], rest[2]])) % PAGE_BYTES;
            let len = usize::from(rest[3]).min(rest.len() - 5);
            let reseal = rest[4] & 1 == 1;
            let bytes = &rest[5..5 + len];
            let page = &mut image[no * PAGE_BYTES..(no + 1) * PAGE_BYTES];
            let end = (offset + len).min(PAGE_BYTES);
            page[offset..end].copy_from_slice(&bytes[..end - offset]);
            if reseal {
                seal_page(page, no as u32);
            }
            rest = &rest[5 + len..];
        }
        image
    };
    let path = fuzz_path("h.pwh");
    if std::fs::write(&path, &image).is_err() {
        return;
    }
    let now = HISTORY_T0 + 4 * 86_400;
    if let Ok(mut rec) = Recorder::new(
        history_spec(),
        Storage::File(path.clone()),
        Zone::utc(),
        now,
    ) {
        rec.record(&Sample {
            ts: now as f64,
            solar: Some(1.0),
            home: Some(2.0),
            battery: None,
            grid: Some(1.0),
            soe: Some(42.0),
            meters: [None; FLOWS],
        });
        let _ = rec.today(now);
        let _ = rec.all_days();
        let _ = rec.last_days(now, 30);
        let _ = rec.trend(HISTORY_T0 - 86_400, now, 360);
        let _ = rec.samples(10_000);
        let _ = rec.status();
        let _ = rec.flush();
        if let Ok(frozen) = rec.freeze() {
            let _ = frozen.publish(1, false);
        }
    }
    // Whatever was set aside or rewritten goes too.
    let dir = std::env::temp_dir();
    let stem = path.file_name().map(|n| n.to_string_lossy().to_string());
    if let (Ok(rd), Some(stem)) = (std::fs::read_dir(&dir), stem) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&stem) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// An MQTT command as the broker delivers it: topic, a 0 byte, payload.
#[cfg(feature = "mqtt")]
pub fn mqtt_command(data: &[u8]) {
    use crate::mqtt::control::{bit, parse, parse_topic};
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let topic = String::from_utf8_lossy(&data[..split]);
    let payload = data.get(split + 1..).unwrap_or(&[]);
    if let Some((_gateway, control)) = parse_topic("pypowerwall", &topic) {
        let _ = bit(control);
        let _ = parse(control, payload);
    }
    let _ = parse("reserve", payload);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_history_target_starts_from_a_real_file() {
        // 20 pages: header, state, journal (1 + 8), 3 + 4 archive pages, 2 day pages.
        assert_eq!(super::history_base().len(), 20 * crate::history::PAGE_BYTES);
        super::history_file(&[]);
    }
}
