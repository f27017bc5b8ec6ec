//! The redirect site: plain HTTP, no certificate, one job.
//!
//! Customers point `autodiscover.CUSTOMER` at it with a CNAME. Outlook's unauthenticated GET
//! ([MS-OXDISCO] 3.1.5.4) arrives here and gets a 302 to the HTTPS service. The Location is built
//! only from the configured public URL and a fixed, lower-case path chosen from a whitelist, so
//! nothing a client sends can steer the redirect elsewhere (no open redirect).
//!
//! Requests for `autoconfig.CUSTOMER` on the Mozilla autoconfig paths are answered here with the
//! document itself ([`crate::dialect::autoconfig`]), not redirected.

use autodisco_proto::{pox, soap, v2};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::reply;
use crate::request_parts::{labelled_domain, request_host};
use crate::state::AppState;

/// The whitelisted targets: (path, lower case, which the request's path must match in any case
/// and the Location gets as it is; keep the query?).
const TARGETS: [(&str, bool); 3] = [
    (pox::PATH, false),
    (soap::PATH, false),
    // Autodiscover v2 carries the address and protocol in the query.
    (v2::PATH, true),
];

/// Answers one GET, HEAD or POST for `autodiscover.CUSTOMER`.
pub(crate) fn handle(state: &AppState, request: &Request) -> Response {
    let Some(customer) =
        request_host(request).and_then(|host| labelled_domain(&host, "autodiscover"))
    else {
        return status(StatusCode::NOT_FOUND, "unknown-host", None);
    };
    let domain_label = Some(customer.to_string());
    if !state.directory.snapshot().hosts(&customer) {
        return status(StatusCode::NOT_FOUND, "not-hosted", domain_label);
    }
    let path = request.uri().path();
    let Some((target, keep_query)) = TARGETS.iter().find(|(p, _)| p.eq_ignore_ascii_case(path))
    else {
        return status(StatusCode::NOT_FOUND, "unknown-path", domain_label);
    };
    let mut location = format!("{}{target}", state.site.load().public_url);
    if let (true, Some(query)) = (keep_query, request.uri().query()) {
        location.push('?');
        location.push_str(query);
    }
    // The query comes from a parsed URI, so it holds no CR/LF; refuse anything a header cannot carry.
    let Ok(location) = HeaderValue::from_str(&location) else {
        return status(StatusCode::BAD_REQUEST, "bad-query", domain_label);
    };
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    reply::with_log(response, "redirect", "redirect", domain_label)
}

fn status(status: StatusCode, outcome: &'static str, domain: Option<String>) -> Response {
    reply::empty(status, "redirect", outcome, domain)
}
