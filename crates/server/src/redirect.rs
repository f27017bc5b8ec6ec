//! The redirect site: plain HTTP, no certificate, one job.
//!
//! Customers point `autodiscover.CUSTOMER` at it with a CNAME. Outlook's unauthenticated GET
//! ([MS-OXDISCO] 3.1.5.4) arrives here and gets a 302 to the HTTPS service. The Location is built
//! only from the configured public URL and a fixed, lower-case path chosen from a whitelist, so
//! nothing a client sends can steer the redirect elsewhere (no open redirect).
//!
//! Requests for `autoconfig.CUSTOMER` on the Mozilla autoconfig paths are answered here with the
//! document itself ([`crate::dialect::autoconfig`]), not redirected.

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};

use autodisco_proto::Domain;

use crate::dialect;
use crate::request_log::RequestLog;
use crate::state::AppState;

/// The host label customers CNAME to this site for Mozilla autoconfig over plain HTTP.
const AUTOCONFIG_PREFIX: &str = "autoconfig.";

/// The redirect site's router.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(redirect).with_state(state)
}

/// The whitelisted targets: (requested path, lower-case; Location path; keep the query?).
const TARGETS: [(&str, &str, bool); 3] = [
    (
        "/autodiscover/autodiscover.xml",
        "/autodiscover/autodiscover.xml",
        false,
    ),
    (
        "/autodiscover/autodiscover.svc",
        "/autodiscover/autodiscover.svc",
        false,
    ),
    // Autodiscover v2 carries the address and protocol in the query.
    (
        "/autodiscover/autodiscover.json",
        "/autodiscover/autodiscover.json",
        true,
    ),
];

async fn redirect(State(state): State<AppState>, request: Request) -> Response {
    // Customers may point `autoconfig.CUSTOMER` here too: Thunderbird falls back to plain HTTP
    // when HTTPS fails (port 443 is closed on this site), and gets the Mozilla document.
    if dialect::autoconfig::is_autoconfig_path(request.uri().path())
        && request_host(&request).is_some_and(|host| {
            host.get(..AUTOCONFIG_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(AUTOCONFIG_PREFIX))
        })
    {
        return dialect::autoconfig::handle(state, request).await;
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD | Method::POST) {
        let mut response = (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return with_log(response, "method-not-allowed", None);
    }
    let Some(customer) = request_host(&request).and_then(|host| customer_domain(&host)) else {
        return with_log(StatusCode::NOT_FOUND.into_response(), "unknown-host", None);
    };
    let domain_label = Some(customer.to_string());
    if !state.directory.snapshot().hosts(&customer) {
        return with_log(
            StatusCode::NOT_FOUND.into_response(),
            "not-hosted",
            domain_label,
        );
    }
    let path = request.uri().path().to_ascii_lowercase();
    let Some((_, target, keep_query)) = TARGETS.iter().find(|(from, _, _)| *from == path) else {
        return with_log(
            StatusCode::NOT_FOUND.into_response(),
            "unknown-path",
            domain_label,
        );
    };
    let mut location = format!("{}{target}", state.site.load().public_url);
    if let (true, Some(query)) = (keep_query, request.uri().query()) {
        location.push('?');
        location.push_str(query);
    }
    // The query comes from a parsed URI, so it holds no CR/LF; refuse anything a header cannot carry.
    let Ok(location) = HeaderValue::from_str(&location) else {
        return with_log(
            StatusCode::BAD_REQUEST.into_response(),
            "bad-query",
            domain_label,
        );
    };
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_log(response, "redirect", domain_label)
}

fn with_log(mut response: Response, outcome: &'static str, domain: Option<String>) -> Response {
    response
        .extensions_mut()
        .insert(RequestLog::new("redirect", outcome, domain));
    response
}

/// The Host header (HTTP/1.1) or the URI's authority (HTTP/2), without port.
fn request_host(request: &Request) -> Option<String> {
    let raw = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))?;
    Some(strip_port(raw).to_owned())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // An IPv6 literal is never a customer domain; keep it whole so it fails to parse.
        return host;
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// `autodiscover.CUSTOMER` -> `CUSTOMER`, canonicalised (lower case, no trailing dot, A-labels).
fn customer_domain(host: &str) -> Option<Domain> {
    let host = Domain::parse(host).ok()?;
    let customer = host.as_str().strip_prefix("autodiscover.")?;
    Domain::parse(customer).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_domain_is_normalised() {
        assert_eq!(
            customer_domain("AutoDiscover.Customer.Example.")
                .unwrap()
                .as_str(),
            "customer.example"
        );
        assert_eq!(
            customer_domain(strip_port("autodiscover.bücher.example:80"))
                .unwrap()
                .as_str(),
            "xn--bcher-kva.example"
        );
        assert_eq!(customer_domain("customer.example"), None);
        assert_eq!(customer_domain("autodiscover.com"), None);
        assert_eq!(customer_domain("[::1]"), None);
        assert_eq!(customer_domain("autodiscover..example"), None);
    }
}
