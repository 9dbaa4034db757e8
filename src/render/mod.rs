//! Turns each tick's [`Facade`] into every output, once: the legacy proxy bodies, the
//! per-gateway [`Summary`] and the processed aggregates both are built from, and the history
//! point. This is where MQTT messages and metrics samples will be made too ([`Outputs`] is the
//! hook: add a field, fill it in [`tick`]).
//!
//! Why a layer of its own: the renderer used to live in `http/`, and everything below the HTTP
//! server (poller, snapshots, summary, a gateway transport) imported it; the aggregates were
//! processed twice per tick. Now the poller calls [`tick`], the snapshot stores what it
//! produced, and `http/`, `ws` (and later `mqtt`, `metrics`) only read it.
//!
//! **Invariant:** nothing here imports `http`, `poll` or `snapshot`; rendering is pure (a facade
//! and [`Settings`] in, bytes out) and never touches the network or the clock.
//! **Invariant:** a body that depends only on the facade is rendered here, once per tick, never
//! per request.
//!
//! * `legacy` — every proxy route's body, byte for byte; the offline facade's failure bodies.
//! * `summary` — the compact per-gateway summary and its weighted sum over gateways.
//! * `history` — the per-minute history body (rendered when a minute completes).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::gateway::facade::Facade;

pub mod history;
pub mod legacy;
pub mod summary;

pub use summary::Summary;

pub const JSON: &str = "application/json";
pub const CSV: &str = "text/plain; charset=utf-8";

/// A finished answer body and its content type.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Arc<[u8]>,
}

impl Body {
    pub fn json(text: String) -> Body {
        Body {
            content_type: JSON,
            bytes: Arc::from(text.into_bytes()),
        }
    }

    pub(crate) fn csv(text: String) -> Body {
        Body {
            content_type: CSV,
            bytes: Arc::from(text.into_bytes()),
        }
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or("")
    }
}

/// What the proxy answers for a gateway path it passes through (a route's pass-through rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The gateway's own document, as the facade holds it.
    Gateway,
    /// Blocked by the proxy: `{"status": "404 Response - API Disabled"}`.
    Disabled,
    /// A constant body.
    Constant(&'static str),
}

/// Proxy settings that change bodies.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub neg_solar: bool,
    pub site_zero_threshold: i64,
    pub control_enabled: bool,
    /// The gateway paths the proxy passes through and their rule, from the route table
    /// (`http::routes::pass_through`), in its order.
    pub pass_through: Vec<(&'static str, Pass)>,
}

/// Every snapshot-only legacy body, keyed by route (`/csv?headers` is keyed `/csv_headers`).
#[derive(Debug, Clone, Default)]
pub struct BodyMap {
    map: HashMap<String, Body>,
}

impl BodyMap {
    pub fn get(&self, key: &str) -> Option<&Body> {
        self.map.get(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn put(&mut self, key: &str, body: Body) {
        self.map.insert(key.to_string(), body);
    }

    pub(crate) fn json(&mut self, key: &str, text: String) {
        self.put(key, Body::json(text));
    }
}

/// A tick's legacy bodies, rendered together the first time one is asked for: once per tick
/// at most, and never for a gateway nobody reads (issue 20: a thousand gateways, each
/// re-rendering some 70 bodies every 5 s whether read or not, cost most of a core).
#[derive(Debug)]
pub struct Bodies {
    map: OnceLock<BodyMap>,
    from: Option<Unrendered>,
}

/// What the bodies are rendered from.
#[derive(Debug)]
struct Unrendered {
    facade: Arc<Facade>,
    settings: Arc<Settings>,
    aggregates: Option<crate::json::Value>,
}

impl Bodies {
    /// Bodies already rendered (the offline facade's failure bodies, made at start).
    pub fn ready(map: BodyMap) -> Bodies {
        Bodies {
            map: OnceLock::from(map),
            from: None,
        }
    }

    fn map(&self) -> &BodyMap {
        self.map.get_or_init(|| match &self.from {
            Some(u) => legacy::render_with(&u.facade, &u.settings, true, u.aggregates.as_ref()),
            None => BodyMap::default(),
        })
    }

    /// The body of route `key` (renders them all on first use).
    pub fn get(&self, key: &str) -> Option<&Body> {
        self.map().get(key)
    }
}

/// Everything one good tick produced. Immutable once made; the snapshot shares it.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub bodies: Arc<Bodies>,
    pub summary: Summary,
}

/// Renders every output of one good tick. The processed aggregates are computed once and feed
/// the summary now and the legacy bodies when first read.
pub fn tick(f: &Arc<Facade>, s: &Arc<Settings>) -> Outputs {
    let aggregates = legacy::processed_aggregates(f, s);
    let summary = Summary::from_parts(f, aggregates.as_ref());
    let bodies = Bodies {
        map: OnceLock::new(),
        from: Some(Unrendered {
            facade: f.clone(),
            settings: s.clone(),
            aggregates,
        }),
    };
    Outputs {
        bodies: Arc::new(bodies),
        summary,
    }
}

/// The failure bodies of a gateway that cannot be reached (with or without TEDAPI).
pub fn offline(tedapi: bool, s: &Settings) -> (Arc<Facade>, Arc<Bodies>) {
    let f = legacy::offline_facade(tedapi);
    let b = legacy::render(&f, s, false);
    (Arc::new(f), Arc::new(Bodies::ready(b)))
}
