//! `GET https://ua-auto-config.CUSTOMER/.well-known/user-agent-configuration.json`: the PACC
//! document (draft-ietf-mailmaint-pacc) for a hosted domain.
//!
//! The bytes are a pure function of the domain's profile, so they match the digest in the
//! customer's `_ua-auto-config` TXT record (printed by `autodisco domain show`) until the profile
//! changes. The user agent fetches the document over HTTPS only, so `ua-auto-config.CUSTOMER`
//! needs a certificate in `certs_dir` (or a wildcard one), like `autodiscover.CUSTOMER` for
//! direct HTTPS.

use autodisco_proto::Domain;
use autodisco_proto::pacc::{self, PaccDocument};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};

use crate::dialect::autoconfig::{method_not_allowed, request_host, with_log};
use crate::state::AppState;

const DIALECT: &str = "pacc";

/// Answers one request.
pub async fn handle(state: AppState, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return method_not_allowed(DIALECT);
    }
    let Some(customer) = request_host(&request).and_then(|host| customer_domain(&host)) else {
        return empty(StatusCode::NOT_FOUND, "unknown-host", None);
    };
    let snapshot = state.directory.snapshot();
    let Some((primary, profile)) = snapshot.domain_profile(&customer) else {
        return empty(
            StatusCode::NOT_FOUND,
            "not-hosted",
            Some(customer.to_string()),
        );
    };
    let document = match PaccDocument::for_domain(&profile, &primary) {
        Ok(document) => document,
        Err(error) => {
            tracing::debug!(%error, domain = %primary, "no PACC document for this profile");
            return empty(
                StatusCode::NOT_FOUND,
                "nothing-to-offer",
                Some(primary.to_string()),
            );
        }
    };
    let mut response = (StatusCode::OK, document.to_json()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(pacc::MEDIA_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_log(response, DIALECT, "settings", Some(primary.to_string()))
}

/// `ua-auto-config.CUSTOMER` -> `CUSTOMER`, canonicalised; any other host is none of ours.
fn customer_domain(host: &str) -> Option<Domain> {
    let host = Domain::parse(host).ok()?;
    let customer = host
        .as_str()
        .strip_prefix(pacc::HOST_LABEL)?
        .strip_prefix('.')?;
    Domain::parse(customer).ok()
}

fn empty(status: StatusCode, outcome: &'static str, domain: Option<String>) -> Response {
    with_log(status.into_response(), DIALECT, outcome, domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ua_auto_config_hosts_name_a_customer() {
        let d = |h: &str| customer_domain(h).map(|d| d.to_string());
        assert_eq!(
            d("UA-Auto-Config.Customer.Example."),
            Some("customer.example".into())
        );
        assert_eq!(d("customer.example"), None);
        assert_eq!(d("ua-auto-config.com"), None);
        assert_eq!(d("ua-auto-configx.customer.example"), None);
    }
}
