//! `GET /metrics`: serves the text `crate::metrics` renders (Prometheus 0.0.4, or OpenMetrics
//! when the `Accept` header asks for it). The per-gateway part is cached per hub generation
//! there; this handler only picks the format and counts nothing itself (the router counts
//! every answer by route family).

use super::router::{Answer, Req};
use crate::metrics::{self, ServerStatus};

pub fn metrics(req: &Req<'_>) -> Answer {
    let ctx = req.ctx;
    let openmetrics = metrics::wants_openmetrics(req.accept.as_deref());
    let server = ServerStatus {
        started: ctx.stats.started,
        uptime: ctx.stats.started_at.elapsed(),
        websocket_clients: ctx.ws.connected(),
    };
    let body = ctx.metrics.body(&ctx.hub, req.now, openmetrics, &server);
    let content_type = if openmetrics {
        metrics::OPENMETRICS
    } else {
        metrics::PROMETHEUS
    };
    Answer::text(200, content_type, body)
}
