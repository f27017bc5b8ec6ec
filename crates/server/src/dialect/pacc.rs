//! `GET https://ua-auto-config.CUSTOMER/.well-known/user-agent-configuration.json`: the PACC
//! document (draft-ietf-mailmaint-pacc) for a hosted domain.
//!
//! The bytes are a pure function of the domain's profile, so they match the digest in the
//! customer's `_ua-auto-config` TXT record (printed by `autodisco domain show`) until the profile
//! changes. The user agent fetches the document over HTTPS only, so `ua-auto-config.CUSTOMER`
//! needs a certificate in `certs_dir` (or a wildcard one), like `autodiscover.CUSTOMER` for
//! direct HTTPS.

use autodisco_proto::pacc::{self, PaccDocument};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::reply::with_log;
use crate::request_parts::{labelled_domain, request_host};
use crate::state::AppState;

const DIALECT: &str = "pacc";

/// Answers one GET or HEAD.
pub(crate) fn handle(state: &AppState, request: &Request) -> Response {
    // `ua-auto-config.CUSTOMER` -> `CUSTOMER`; any other host is none of ours.
    let customer = request_host(request).and_then(|host| labelled_domain(&host, pacc::HOST_LABEL));
    let Some(customer) = customer else {
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

fn empty(status: StatusCode, outcome: &'static str, domain: Option<String>) -> Response {
    crate::reply::empty(status, DIALECT, outcome, domain)
}
