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

use autodisco_proto::autoconfig::{self, AutoconfigError, ClientConfig};
use autodisco_proto::{Domain, EmailAddress};
use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;

use crate::auth::privacy::Caller;
use crate::reply::{self, xml_response};
use crate::request_log::RequestLog;
use crate::request_parts::{query_parameter, request_host, strip_label};
use crate::state::AppState;

const DIALECT: &str = "autoconfig";

/// Answers one GET or HEAD, on either site.
pub(crate) fn handle(state: &AppState, request: &Request) -> Response {
    match document(state, request) {
        Ok((config, domain)) => xml_response(
            config.to_xml(),
            RequestLog::new(DIALECT, "settings", Some(domain)),
        ),
        Err(refusal) => refusal.into_response(),
    }
}

/// Why there is no document: each is a 404 (Thunderbird then tries its next source) but a
/// malformed address, which is the client's mistake.
enum Refusal {
    InvalidAddress,
    UnknownHost,
    NotHosted(String),
    /// The profile offers only Exchange endpoints: nothing Thunderbird can use.
    NothingToOffer(String, AutoconfigError),
}

impl Refusal {
    fn into_response(self) -> Response {
        let (status, outcome, domain) = match self {
            Self::InvalidAddress => (StatusCode::BAD_REQUEST, "invalid-address", None),
            Self::UnknownHost => (StatusCode::NOT_FOUND, "unknown-host", None),
            Self::NotHosted(domain) => (StatusCode::NOT_FOUND, "not-hosted", Some(domain)),
            Self::NothingToOffer(domain, error) => {
                tracing::debug!(%error, domain, "no autoconfig document for this profile");
                (StatusCode::NOT_FOUND, "nothing-to-offer", Some(domain))
            }
        };
        reply::empty(status, DIALECT, outcome, domain)
    }
}

/// The document a request asks for, with the (primary) domain it is about.
fn document(state: &AppState, request: &Request) -> Result<(ClientConfig, String), Refusal> {
    let address = query_parameter(request, autoconfig::ADDRESS_PARAMETER)
        .and_then(|value| {
            value
                .map(|v| EmailAddress::parse(&v).map_err(|_| ()))
                .transpose()
        })
        .map_err(|()| Refusal::InvalidAddress)?;
    let (config, domain) = match address {
        Some(address) => for_account(state, &address)?,
        None => {
            let requested = request_host(request)
                .and_then(|h| strip_label(&h, "autoconfig"))
                .ok_or(Refusal::UnknownHost)?;
            for_domain(state, &requested)?
        }
    };
    match config {
        Ok(config) => Ok((config, domain)),
        Err(error) => Err(Refusal::NothingToOffer(domain, error)),
    }
}

/// The document for one mailbox or domain, or why there is none, with the domain it is about.
type Document = (Result<ClientConfig, AutoconfigError>, String);

fn for_account(state: &AppState, address: &EmailAddress) -> Result<Document, Refusal> {
    let requested = address.domain();
    let caller = Caller::anonymous(&state.auth);
    let snapshot = state.directory.snapshot();
    match caller.settings_following_redirect(&snapshot, address) {
        Some(settings) => Ok((
            ClientConfig::for_account(&settings, requested),
            settings.address.domain().to_string(),
        )),
        None => Err(Refusal::NotHosted(requested.to_string())),
    }
}

fn for_domain(state: &AppState, requested: &Domain) -> Result<Document, Refusal> {
    match state.directory.snapshot().domain_profile(requested) {
        Some((primary, profile)) => Ok((
            ClientConfig::for_domain(&profile, &primary, requested),
            primary.to_string(),
        )),
        None => Err(Refusal::NotHosted(requested.to_string())),
    }
}
