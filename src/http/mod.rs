//! The HTTP side: one listener, capped connection threads, routes grouped by family.
//!
//! `server` owns the socket and the threads, `router` turns a request into a `Req`, `routes` is
//! the one route table (it also says which body answers a legacy route and which gateway paths
//! are passed through). Bodies that depend only on a snapshot were made by `render` and are
//! only looked up here; `api` (multi-gateway and aggregate routes), `status` (`/stats`,
//! `/health`, `/help`, per request), `control` (the control routes, and the write path MQTT commands share), `mqtt`
//! (`/api/mqtt/status`), `timeseries` (`/api/timeseries/*`, the energy history), `ws` and `www`
//! answer the rest.
//!
//! **Invariant:** nothing below this module imports it (the layering test checks); a request
//! never waits on a gateway except the two exceptions named in `ARCHITECTURE.md`.
pub mod api;
pub mod control;
pub mod metrics;
pub mod mqtt;
pub mod notation;
pub mod openapi;
pub mod peer;
pub mod router;
pub mod routes;
pub mod schemas;
pub mod server;
pub mod status;
pub mod timeseries;
pub mod ws;
pub mod www;
