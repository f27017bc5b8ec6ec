//! What every handler shares to read a body and build its answer: each response carries a
//! [`RequestLog`] for the log middleware, private documents are never cached, and the 405 answer
//! names what the route allows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use autodisco_proto::{Answer, ErrorStamp};
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};

use crate::config::Limits;
use crate::request_log::RequestLog;

/// `response` with its log entry.
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

/// An answer with `status` and no body.
pub(crate) fn empty(
    status: StatusCode,
    dialect: &'static str,
    outcome: &'static str,
    domain: Option<String>,
) -> Response {
    with_log(status.into_response(), dialect, outcome, domain)
}

/// `405` with the `Allow` header the route's methods make (RFC 9110 section 15.5.6).
pub(crate) fn method_not_allowed(dialect: &'static str, allow: &'static str) -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    with_log(response, dialect, "method-not-allowed", None)
}

/// A document about one mailbox or domain: `content_type`, and `private, no-store` so no shared
/// cache keeps one caller's answer for another.
pub(crate) fn private_document(
    status: StatusCode,
    body: impl Into<Body>,
    content_type: &'static str,
    log: RequestLog,
) -> Response {
    let mut response = (status, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response.extensions_mut().insert(log);
    response
}

/// An XML answer: `text/xml; charset=utf-8`, HTTP 200 (clients treat any other status of an
/// AutoDiscover endpoint as a dead endpoint, [MS-OXDSCLI] 3.1.5.5).
pub(crate) fn xml_response(body: String, log: RequestLog) -> Response {
    private_document(StatusCode::OK, body, "text/xml; charset=utf-8", log)
}

/// The log outcome of a directory answer; each dialect may name "not hosted" its own way.
pub(crate) fn answer_outcome(answer: &Answer, not_hosted: &'static str) -> &'static str {
    match answer {
        Answer::Settings(_) => "settings",
        Answer::RedirectAddr(_) => "redirect-addr",
        Answer::RedirectUrl(_) => "redirect-url",
        Answer::NotHosted => not_hosted,
    }
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Larger than the limit.
    TooLarge,
    /// The client stopped sending or the connection broke.
    Incomplete,
}

impl BodyError {
    /// The log outcome.
    pub(crate) fn outcome(self) -> &'static str {
        match self {
            Self::TooLarge => "body-too-large",
            Self::Incomplete => "body-incomplete",
        }
    }
}

/// Reads the body of a POST dialect. It gets the header timeout, shorter than the request
/// timeout, so a slow body is answered with the protocol's error rather than cut off by the
/// backstop.
pub(crate) async fn read_request_body(body: Body, limits: &Limits) -> Result<Bytes, BodyError> {
    read_body(body, limits.max_body_bytes, limits.header_timeout).await
}

/// Reads a request body of at most `limit` bytes within `timeout`. Over-long bodies are cut off
/// as soon as the limit is passed, so a 10 MB upload costs at most `limit` bytes of memory.
async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
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

/// The `Time` and `Id` attributes of an error ([MS-OXDSCLI] 2.2.4.1.1.3.1, [MS-ASCMD] 2.2.3.63):
/// the UTC time of day with seven fractional digits, and the id of the server that answered.
pub(crate) fn error_stamp(server_id: u32) -> ErrorStamp {
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
