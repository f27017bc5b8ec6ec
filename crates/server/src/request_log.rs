//! One log line per request: dialect, domain, outcome and latency; never a body or a password.
//!
//! Handlers describe their outcome by putting a [`RequestLog`] into the response's extensions;
//! the middleware reads it after the fact, so answering stays free of logging side effects.
//!
//! Every request gets an id, written in its log line and sent back in `X-Request-Id`, so a
//! support desk can find the line of the answer a customer saw. The id is ours: one a client
//! sends is not trusted into the log.

use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

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

/// The header that carries the request id back.
const REQUEST_ID: &str = "x-request-id";

/// A per-process random prefix, so ids of instances and restarts do not collide.
static ID_PREFIX: LazyLock<u32> = LazyLock::new(|| RandomState::new().hash_one(0u8) as u32);
static ID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The next request id: 8 hex digits of the process's prefix, then a counter.
fn next_request_id() -> String {
    let count = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:08x}{count:08x}", *ID_PREFIX)
}

/// The middleware: times the request and writes its line.
pub(crate) async fn log_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = next_request_id();
    let method = request.method().clone();
    // Paths are attacker-controlled: cap what reaches the log.
    let path: String = request.uri().path().chars().take(160).collect();
    let peer = request.extensions().get::<ConnectionInfo>().map(|c| c.peer);
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let latency_us = started.elapsed().as_micros() as u64;
    let status = response.status().as_u16();
    match response.extensions().get::<RequestLog>() {
        Some(log) => tracing::info!(
            target: "autodisco::request",
            request_id, %method, path, status, dialect = log.dialect,
            domain = log.domain.as_deref().unwrap_or("-"), outcome = log.outcome,
            latency_us, peer = ?peer,
        ),
        None => tracing::info!(
            target: "autodisco::request",
            request_id, %method, path, status, dialect = "-", domain = "-", outcome = "unrouted",
            latency_us, peer = ?peer,
        ),
    }
    response
}
