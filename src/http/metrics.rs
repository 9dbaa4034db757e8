//! `GET /metrics`: serves the text `crate::metrics` renders (Prometheus 0.0.4, or OpenMetrics
//! when the `Accept` header asks for it; gzip when `Accept-Encoding` allows, as Prometheus
//! does). The per-gateway part is cached per hub generation there and a whole body for up to
//! 5 s (`SERVER_PART_MAX_AGE`, one default tick); this handler only picks the variant (the
//! router counts every answer by family).

use super::router::{Answer, Req};
use crate::metrics::{self, ServerStatus};

pub fn metrics(req: &Req<'_>) -> Answer {
    let ctx = req.ctx;
    let openmetrics = metrics::wants_openmetrics(req.accept);
    let gzip = metrics::wants_gzip(req.accept_encoding);
    let server = || ServerStatus {
        started: ctx.stats.started,
        uptime: ctx.stats.started_at.elapsed(),
        websocket_clients: ctx.ws.connected(),
    };
    let content_type = if openmetrics {
        metrics::OPENMETRICS
    } else {
        metrics::PROMETHEUS
    };
    let mut a = Answer::text(200, content_type, String::new());
    a.body = ctx
        .metrics
        .cached_body(&ctx.hub, req.now, openmetrics, gzip, server);
    a.headers = vec![("Vary", "Accept, Accept-Encoding".into())];
    if gzip {
        a.headers.push(("Content-Encoding", "gzip".into()));
    }
    a
}
