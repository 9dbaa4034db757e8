//! The HTTP side: one listener, a fixed pool of workers, routes grouped by family.
//!
//! `server` owns the socket and the threads, `router` picks the route, and each route family
//! renders in its own file: `legacy` (the proxy's routes, pre-rendered per tick) and `status`
//! (`/stats`, `/health`, `/help`, built per request); `control` answers the control routes.
pub mod api;
pub mod control;
pub mod legacy;
pub mod metrics;
pub mod router;
pub mod routes;
pub mod server;
pub mod status;
pub mod ws;
pub mod www;
