//! Every route of both sites, in one place: which dialect answers a path, with which methods,
//! behind which layers.
//!
//! Paths are matched case-insensitively, as Exchange (IIS) does, so routing is a small table
//! ([`Route::for_path`]) rather than axum's case-sensitive path router. The method check (405
//! with `Allow`) and authentication happen here, before any handler runs.
//!
//! Every answer of the HTTPS service, whatever its path or status, carries
//! `X-SOAP-Enabled: True`: the EWS Managed API and its ports do an unauthenticated GET of the
//! POX URL first and give up on a host whose answer lacks it.

use autodisco_proto::{autoconfig, mobileconfig, pacc, pox, soap, v2};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use tower_http::timeout::TimeoutLayer;

use crate::admission::{SiteAdmission, admit};
use crate::request_log::log_requests;
use crate::request_parts::{peer_ip, request_host};
use crate::state::AppState;
use crate::{auth, dialect, redirect, reply};

/// The header the EWS Managed API looks for before it tries SOAP Autodiscover.
const SOAP_ENABLED: &str = "x-soap-enabled";

/// The host label customers CNAME to the redirect site for Mozilla autoconfig over plain HTTP.
const AUTOCONFIG_PREFIX: &str = "autoconfig.";

/// The HTTPS service's router.
pub(crate) fn service_router(state: AppState, admission: SiteAdmission) -> Router {
    let timeout = state.limits.request_timeout;
    Router::new()
        .fallback(service)
        .with_state(state)
        // A backstop for the handler's own work; the body has been read under its own rules by
        // then. The log layer sits outside both, so refused and timed-out requests are logged.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(admission, admit))
        .layer(axum::middleware::from_fn(log_requests))
        .layer(axum::middleware::map_response(soap_enabled))
}

/// The plain-HTTP redirect site's router. A request that carries a password is refused before
/// anything reads it ([`auth::refuse_basic_over_http`]).
pub(crate) fn redirect_router(state: AppState, admission: SiteAdmission) -> Router {
    Router::new()
        .fallback(redirect_site)
        .with_state(state)
        .layer(axum::middleware::from_fn(auth::refuse_basic_over_http))
        .layer(axum::middleware::from_fn_with_state(admission, admit))
        .layer(axum::middleware::from_fn(log_requests))
}

/// What answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Outlook POX and ActiveSync mobilesync ([`dialect::pox`]).
    Pox,
    /// SOAP Autodiscover ([`dialect::soap`]).
    Soap,
    /// Autodiscover v2 JSON ([`dialect::v2`]).
    V2,
    /// Mozilla autoconfig, on both sites ([`dialect::autoconfig`]).
    Autoconfig,
    /// Apple configuration profiles ([`dialect::mobileconfig`]).
    MobileConfig,
    /// The PACC document ([`dialect::pacc`]).
    Pacc,
    /// The redirect site's 302 to the service ([`redirect`]).
    Redirect,
}

impl Route {
    /// The HTTPS service's route for `path`.
    fn for_path(path: &str) -> Option<Self> {
        if path.eq_ignore_ascii_case(pox::PATH) {
            Some(Self::Pox)
        } else if soap::is_path(path) {
            Some(Self::Soap)
        } else if v2::is_path(path) {
            Some(Self::V2)
        } else if autoconfig::is_path(path) {
            Some(Self::Autoconfig)
        } else if path.eq_ignore_ascii_case(mobileconfig::PATH) {
            Some(Self::MobileConfig)
        } else if path.eq_ignore_ascii_case(pacc::PATH) {
            Some(Self::Pacc)
        } else {
            None
        }
    }

    /// The dialect's name in the request log.
    fn dialect(self) -> &'static str {
        match self {
            Self::Pox => "pox",
            Self::Soap => "soap",
            Self::V2 => "v2",
            Self::Autoconfig => "autoconfig",
            Self::MobileConfig => "mobileconfig",
            Self::Pacc => "pacc",
            Self::Redirect => "redirect",
        }
    }

    /// The methods the route answers, as the `Allow` header lists them.
    fn allow(self) -> &'static str {
        match self {
            // POX and SOAP are POST only ([MS-OXDSCLI] 2.2.3, [MS-OXWSADISC] 3.1.4); Thunderbird
            // and the EWS libraries probe the POX URL with GET and rely on a non-2xx answer.
            Self::Pox | Self::Soap => "POST",
            Self::V2 | Self::Autoconfig | Self::MobileConfig | Self::Pacc => "GET, HEAD",
            // Outlook's redirect step is a GET ([MS-OXDISCO] 3.1.5.4); some clients POST.
            Self::Redirect => "GET, HEAD, POST",
        }
    }

    fn allows(self, method: &Method) -> bool {
        self.allow()
            .split(", ")
            .any(|allowed| allowed == method.as_str())
    }

    /// Whether the route is behind the configured authentication: the dialects that answer
    /// with one mailbox's own settings ([`auth::privacy`]).
    fn authenticated(self) -> bool {
        matches!(self, Self::Pox | Self::Soap)
    }

    /// Checks the method and the credentials, then runs the handler.
    async fn answer(self, state: AppState, request: Request) -> Response {
        if !self.allows(request.method()) {
            return reply::method_not_allowed(self.dialect(), self.allow());
        }
        if self.authenticated() {
            let peer = peer_ip(&request);
            let denied = auth::require(&state.auth, request.headers(), peer, self.dialect());
            if let Some(denied) = denied.await {
                return denied;
            }
        }
        match self {
            Self::Pox => dialect::pox::handle(state, request).await,
            Self::Soap => dialect::soap::handle(state, request).await,
            Self::V2 => dialect::v2::handle(&state, &request),
            Self::Autoconfig => dialect::autoconfig::handle(&state, &request),
            Self::MobileConfig => dialect::mobileconfig::handle(&state, &request),
            Self::Pacc => dialect::pacc::handle(&state, &request),
            Self::Redirect => redirect::handle(&state, &request),
        }
    }
}

async fn service(State(state): State<AppState>, request: Request) -> Response {
    match Route::for_path(request.uri().path()) {
        Some(route) => route.answer(state, request).await,
        None => reply::empty(StatusCode::NOT_FOUND, "-", "not-found", None),
    }
}

async fn redirect_site(State(state): State<AppState>, request: Request) -> Response {
    // Customers may point `autoconfig.CUSTOMER` here too: Thunderbird falls back to plain HTTP
    // when HTTPS fails (port 443 is closed on this site), and gets the Mozilla document.
    let autoconfig_host = request_host(&request).is_some_and(|host| {
        host.get(..AUTOCONFIG_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(AUTOCONFIG_PREFIX))
    });
    let route = if autoconfig_host && autoconfig::is_path(request.uri().path()) {
        Route::Autoconfig
    } else {
        Route::Redirect
    };
    route.answer(state, request).await
}

async fn soap_enabled(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(SOAP_ENABLED, HeaderValue::from_static("True"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_dialect_in_any_case() {
        let route = |path: &str| Route::for_path(path).map(Route::dialect);
        assert_eq!(route("/AutoDiscover/AutoDiscover.xml"), Some("pox"));
        assert_eq!(
            route("/autodiscover/autodiscover.svc/wssecurity"),
            Some("soap")
        );
        assert_eq!(
            route("/autodiscover/autodiscover.json/v1.0/a@b.example"),
            Some("v2")
        );
        assert_eq!(
            route("/.well-known/autoconfig/mail/config-v1.1.xml"),
            Some("autoconfig")
        );
        assert_eq!(route("/MOBILECONFIG"), Some("mobileconfig"));
        assert_eq!(
            route("/.well-known/user-agent-configuration.json"),
            Some("pacc")
        );
        assert_eq!(route("/autodiscover/"), None);
    }

    #[test]
    fn methods_are_checked_against_the_allow_list() {
        assert!(Route::Pox.allows(&Method::POST));
        assert!(!Route::Pox.allows(&Method::GET));
        assert!(Route::V2.allows(&Method::HEAD));
        assert!(!Route::V2.allows(&Method::POST));
        assert!(Route::Redirect.allows(&Method::POST));
        assert!(!Route::Redirect.allows(&Method::PUT));
        // Methods are case-sensitive (RFC 9110 section 9.1).
        assert!(!Route::Pox.allows(&Method::from_bytes(b"post").unwrap()));
    }
}
