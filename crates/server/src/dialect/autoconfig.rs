//! `GET /mail/config-v1.1.xml` and `GET /.well-known/autoconfig/mail/config-v1.1.xml`: Mozilla
//! autoconfig (draft-ietf-mailmaint-autoconfig section 4), on the HTTPS service and on the
//! plain-HTTP site.
//!
//! Which domain a request is about:
//!
//! - with `?emailaddress=ADDRESS`: the address decides, whatever the Host. This is the MX path:
//!   Thunderbird takes the base domain of the customer's MX host (the hoster's) and asks
//!   `https://autoconfig.HOSTER/mail/config-v1.1.xml?emailaddress=ADDRESS`, so one host name
//!   answers for every hosted address (draft-ietf-mailmaint-autoconfig section 4.3);
//! - without it: the Host header, `autoconfig.CUSTOMER` or `CUSTOMER`, and the document keeps
//!   its username placeholders for the client.
//!
//! A domain autodisco does not host, or a mailbox served elsewhere (a redirectUrl override), is a
//! 404: Thunderbird then tries its next source. With authentication on, overrides are not shown
//! to anonymous callers ([`crate::auth::privacy`]): every address gets its domain's document.

use autodisco_directory::Snapshot;
use autodisco_proto::autoconfig::{self, ClientConfig};
use autodisco_proto::{Answer, Domain, EmailAddress};
use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};

use crate::auth::privacy::Caller;
use crate::request_log::RequestLog;
use crate::service::xml_response;
use crate::state::AppState;

const DIALECT: &str = "autoconfig";

/// Whether `path` is one of the two autoconfig paths (matched case-insensitively).
pub fn is_autoconfig_path(path: &str) -> bool {
    path.eq_ignore_ascii_case(autoconfig::PATH)
        || path.eq_ignore_ascii_case(autoconfig::WELL_KNOWN_PATH)
}

/// Answers one request on either site.
pub async fn handle(state: AppState, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return method_not_allowed(DIALECT);
    }
    let snapshot = state.directory.snapshot();
    let address = match address_parameter(&request) {
        Ok(address) => address,
        Err(()) => return status(StatusCode::BAD_REQUEST, "invalid-address", None),
    };
    let rendered = match address {
        Some(address) => {
            let requested = address.domain().clone();
            let caller = Caller::anonymous(&state.auth);
            match settings_following_redirects(&caller, &snapshot, &address) {
                Some(settings) => (
                    ClientConfig::for_account(&settings, &requested),
                    settings.address.domain().to_string(),
                ),
                None => {
                    return status(
                        StatusCode::NOT_FOUND,
                        "not-hosted",
                        Some(requested.to_string()),
                    );
                }
            }
        }
        None => {
            let Some(requested) =
                request_host(&request).and_then(|h| strip_label(&h, "autoconfig"))
            else {
                return status(StatusCode::NOT_FOUND, "unknown-host", None);
            };
            match snapshot.domain_profile(&requested) {
                Some((primary, profile)) => (
                    ClientConfig::for_domain(&profile, &primary, &requested),
                    primary.to_string(),
                ),
                None => {
                    return status(
                        StatusCode::NOT_FOUND,
                        "not-hosted",
                        Some(requested.to_string()),
                    );
                }
            }
        }
    };
    match rendered {
        (Ok(config), domain) => xml_response(
            config.to_xml(),
            RequestLog::new(DIALECT, "settings", Some(domain)),
        ),
        (Err(error), domain) => {
            // The profile offers only Exchange endpoints: nothing Thunderbird can use.
            tracing::debug!(%error, domain, "no autoconfig document for this profile");
            status(StatusCode::NOT_FOUND, "nothing-to-offer", Some(domain))
        }
    }
}

/// The `emailaddress` parameter: `Ok(None)` when absent, `Err` when present but not an address.
fn address_parameter(request: &Request) -> Result<Option<EmailAddress>, ()> {
    let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(request.uri()) else {
        return Err(());
    };
    match pairs
        .into_iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(autoconfig::ADDRESS_PARAMETER))
    {
        None => Ok(None),
        Some((_, value)) => EmailAddress::parse(&value).map(Some).map_err(|_| ()),
    }
}

/// The settings for `address` that `caller` may have, following one redirectAddr inside the
/// directory: a mailbox that moved to another hosted address is configured as that one. A
/// redirectUrl (served by another AutoDiscover service) has no autoconfig equivalent.
pub(crate) fn settings_following_redirects(
    caller: &Caller,
    snapshot: &Snapshot,
    address: &EmailAddress,
) -> Option<autodisco_proto::AccountSettings> {
    match caller.answer(snapshot, address) {
        Answer::Settings(settings) => Some(settings),
        Answer::RedirectAddr(target) => match caller.answer(snapshot, &target) {
            Answer::Settings(settings) => Some(settings),
            _ => None,
        },
        Answer::RedirectUrl(_) | Answer::NotHosted => None,
    }
}

/// The Host header (HTTP/1.1) or the URI's authority (HTTP/2), without port.
pub(crate) fn request_host(request: &Request) -> Option<String> {
    let raw = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))?;
    if raw.starts_with('[') {
        // An IP literal is never a mail domain.
        return None;
    }
    Some(
        raw.rsplit_once(':')
            .map_or(raw, |(name, _)| name)
            .to_owned(),
    )
}

/// `LABEL.CUSTOMER` -> `CUSTOMER`, and `CUSTOMER` as it is; canonicalised.
pub(crate) fn strip_label(host: &str, label: &str) -> Option<Domain> {
    let host = Domain::parse(host).ok()?;
    match host
        .as_str()
        .strip_prefix(label)
        .and_then(|rest| rest.strip_prefix('.'))
    {
        Some(rest) => Domain::parse(rest).ok().or(Some(host)),
        None => Some(host),
    }
}

/// An empty answer with `status`, logged as `outcome`.
pub(crate) fn status(
    status: StatusCode,
    outcome: &'static str,
    domain: Option<String>,
) -> Response {
    with_log(status.into_response(), DIALECT, outcome, domain)
}

pub(crate) fn with_log(
    mut response: Response,
    dialect: &'static str,
    outcome: &'static str,
    domain: Option<String>,
) -> Response {
    response
        .extensions_mut()
        .insert(RequestLog::new(dialect, outcome, domain));
    response
}

pub(crate) fn method_not_allowed(dialect: &'static str) -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    with_log(response, dialect, "method-not-allowed", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_stripped_and_normalised() {
        let d = |h: &str| strip_label(h, "autoconfig").map(|d| d.to_string());
        assert_eq!(
            d("Autoconfig.Customer.Example."),
            Some("customer.example".into())
        );
        assert_eq!(d("customer.example"), Some("customer.example".into()));
        // "autoconfig.com" is a domain of its own, not the label on "com".
        assert_eq!(d("autoconfig.com"), Some("autoconfig.com".into()));
        assert_eq!(d("autoconfigx.example"), Some("autoconfigx.example".into()));
        assert_eq!(d("a..b"), None);
    }

    #[test]
    fn autoconfig_paths_match_in_any_case() {
        assert!(is_autoconfig_path("/mail/config-v1.1.xml"));
        assert!(is_autoconfig_path("/MAIL/Config-v1.1.xml"));
        assert!(is_autoconfig_path(
            "/.well-known/autoconfig/mail/config-v1.1.xml"
        ));
        assert!(!is_autoconfig_path("/mail/config-v1.0.xml"));
    }
}
