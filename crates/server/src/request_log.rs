//! One log line per request: dialect, domain, outcome and latency; never a body or a password.
//!
//! Handlers describe their outcome by putting a [`RequestLog`] into the response's extensions;
//! the middleware reads it after the fact, so answering stays free of logging side effects.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::request_parts::ConnectionInfo;

/// What a handler reports about the request it answered.
#[derive(Debug, Clone)]
pub(crate) struct RequestLog {
    /// Which protocol answered: `pox`, `mobilesync`, `redirect`, ...
    pub dialect: &'static str,
    /// The (canonical) mail domain the request was about, when known.
    pub domain: Option<String>,
    /// What happened, in one word: `settings`, `redirect-addr`, `not-hosted`, `invalid-request`, ...
    pub outcome: &'static str,
}

impl RequestLog {
    /// A log entry for `dialect` with `outcome`.
    pub(crate) fn new(
        dialect: &'static str,
        outcome: &'static str,
        domain: Option<String>,
    ) -> Self {
        Self {
            dialect,
            domain,
            outcome,
        }
    }
}

/// The middleware: times the request and writes its line.
pub(crate) async fn log_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // Paths are attacker-controlled: cap what reaches the log.
    let path: String = request.uri().path().chars().take(160).collect();
    let peer = request.extensions().get::<ConnectionInfo>().map(|c| c.peer);
    let response = next.run(request).await;
    let latency_us = started.elapsed().as_micros() as u64;
    let status = response.status().as_u16();
    match response.extensions().get::<RequestLog>() {
        Some(log) => tracing::info!(
            target: "autodisco::request",
            %method, path, status, dialect = log.dialect,
            domain = log.domain.as_deref().unwrap_or("-"), outcome = log.outcome,
            latency_us, peer = ?peer,
        ),
        None => tracing::info!(
            target: "autodisco::request",
            %method, path, status, dialect = "-", domain = "-", outcome = "unrouted",
            latency_us, peer = ?peer,
        ),
    }
    response
}
