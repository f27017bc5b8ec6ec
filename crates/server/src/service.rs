//! The HTTPS AutoDiscover service: routing by case-insensitive path, shared body and time limits.
//!
//! Every answer, whatever its path or status, carries `X-SOAP-Enabled: True`: the EWS Managed
//! API and its ports do an unauthenticated GET of the POX URL first and give up on a host whose
//! answer lacks it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use autodisco_proto::ErrorStamp;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use tower_http::timeout::TimeoutLayer;

use crate::admission::{SiteAdmission, admit};
use crate::request_log::{RequestLog, log_requests};
use crate::state::AppState;
use crate::{auth, dialect};

/// The POX and mobilesync endpoint ([MS-OXDISCO] 3.1.5: the path clients try on every host).
pub const POX_PATH: &str = "/autodiscover/autodiscover.xml";

/// The HTTPS router: every path is matched case-insensitively, as Exchange (IIS) does.
pub(crate) fn router(state: AppState, admission: SiteAdmission) -> Router {
    let timeout = state.limits.request_timeout;
    Router::new()
        .fallback(dispatch)
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

/// The header the EWS Managed API looks for before it tries SOAP Autodiscover.
pub const SOAP_ENABLED: &str = "x-soap-enabled";

async fn soap_enabled(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(SOAP_ENABLED, HeaderValue::from_static("True"));
    response
}

/// A POST-only endpoint behind the configured authentication: other methods get 405, missing
/// or wrong credentials the authenticator's challenge.
async fn authenticated_post<F, Fut>(
    state: AppState,
    request: Request,
    dialect: &'static str,
    handle: F,
) -> Response
where
    F: FnOnce(AppState, Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    if request.method() != Method::POST {
        return method_not_allowed(dialect);
    }
    let denied = auth::require(
        &state.auth,
        request.headers(),
        auth::peer_ip(&request),
        dialect,
    )
    .await;
    match denied {
        Some(denied) => denied,
        None => handle(state, request).await,
    }
}

async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    if path.eq_ignore_ascii_case(POX_PATH) {
        // Thunderbird and the EWS libraries probe with GET and rely on a non-2xx answer; POX
        // itself is POST only ([MS-OXDSCLI] 2.2.3).
        return authenticated_post(state, request, "pox", dialect::pox::handle).await;
    }
    if dialect::soap::is_soap_path(path) {
        return authenticated_post(state, request, "soap", dialect::soap::handle).await;
    }
    if dialect::v2::is_v2_path(path) {
        return match *request.method() {
            Method::GET | Method::HEAD => dialect::v2::handle(&state, &request),
            _ => method_not_allowed_allowing("v2", "GET, HEAD"),
        };
    }
    if dialect::autoconfig::is_autoconfig_path(path) {
        return dialect::autoconfig::handle(state, request).await;
    }
    if path.eq_ignore_ascii_case(autodisco_proto::mobileconfig::PATH) {
        return dialect::mobileconfig::handle(state, request).await;
    }
    if path.eq_ignore_ascii_case(autodisco_proto::pacc::PATH) {
        return dialect::pacc::handle(state, request).await;
    }
    let mut response = StatusCode::NOT_FOUND.into_response();
    response
        .extensions_mut()
        .insert(RequestLog::new("-", "not-found", None));
    response
}

fn method_not_allowed(dialect: &'static str) -> Response {
    method_not_allowed_allowing(dialect, "POST")
}

fn method_not_allowed_allowing(dialect: &'static str, allow: &'static str) -> Response {
    let mut response = (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
        .extensions_mut()
        .insert(RequestLog::new(dialect, "method-not-allowed", None));
    response
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit.
    TooLarge,
    /// The client stopped sending or the connection broke.
    Incomplete,
}

/// Reads a request body of at most `limit` bytes within `timeout`. Over-long bodies are cut off
/// as soon as the limit is passed, so a 10 MB upload costs at most `limit` bytes of memory.
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
    match collected {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyError::TooLarge)
        }
        Ok(Err(_)) | Err(_) => Err(BodyError::Incomplete),
    }
}

/// An XML answer: `text/xml; charset=utf-8`, HTTP 200 (clients treat any other status of an
/// AutoDiscover endpoint as a dead endpoint, [MS-OXDSCLI] 3.1.5.5).
pub fn xml_response(body: String, log: RequestLog) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response.extensions_mut().insert(log);
    response
}

/// The `Time` and `Id` attributes of an error ([MS-OXDSCLI] 2.2.4.1.1.3.1, [MS-ASCMD] 2.2.3.63):
/// the UTC time of day with seven fractional digits, and the id of the server that answered.
pub fn error_stamp(server_id: u32) -> ErrorStamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let day_secs = now.as_secs() % 86_400;
    let time = format!(
        "{:02}:{:02}:{:02}.{:07}",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60,
        now.subsec_nanos() / 100
    );
    ErrorStamp::new(time, server_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stamp_has_the_spec_shape() {
        let stamp = error_stamp(7);
        assert_eq!(stamp.time.len(), "16:32:19.3155255".len(), "{}", stamp.time);
        assert_eq!(&stamp.time[2..3], ":");
        assert!(stamp.id.parse::<u32>().is_ok());
    }

    #[tokio::test]
    async fn body_limit_cuts_off_large_bodies() {
        let big = Body::from(vec![b'a'; 100_000]);
        assert_eq!(
            read_body(big, 65_536, Duration::from_secs(1)).await,
            Err(BodyError::TooLarge)
        );
        let small = Body::from("hello");
        assert_eq!(
            read_body(small, 65_536, Duration::from_secs(1))
                .await
                .unwrap(),
            Bytes::from("hello")
        );
    }
}
