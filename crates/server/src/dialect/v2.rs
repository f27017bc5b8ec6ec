//! `GET /autodiscover/autodiscover.json`: Autodiscover v2 (current Outlook, Outlook mobile).
//!
//! Both forms are answered: `?Email=ADDRESS&Protocol=P` and `/v1.0/ADDRESS?Protocol=P`. The
//! JSON comes from `autodisco_proto::v2`, built with serde.

use autodisco_proto::v2::{self, V2Answer};
use autodisco_proto::{Answer, EmailAddress};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::auth::privacy::Caller;
use crate::request_log::RequestLog;
use crate::service::POX_PATH;
use crate::state::AppState;

/// Whether `path` is the v2 endpoint or below it, in any case.
pub fn is_v2_path(path: &str) -> bool {
    path.get(..v2::PATH.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(v2::PATH))
        && matches!(path.as_bytes().get(v2::PATH.len()), None | Some(b'/'))
}

/// Answers one GET.
pub fn handle(state: &AppState, request: &Request) -> Response {
    let parsed = match v2::parse_request(request.uri().path(), request.uri().query()) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::debug!(%error, "v2 request refused");
            let outcome = match error {
                v2::V2RequestError::InvalidProtocol(_) => "invalid-protocol",
                _ => "invalid-request",
            };
            return json(&error.answer(), RequestLog::new("v2", outcome, None));
        }
    };
    let snapshot = state.directory.snapshot();
    // Anonymous: with authentication on, no redirect of a user's override shows here.
    let caller = Caller::anonymous(&state.auth);
    let (answer, domain) = match EmailAddress::parse(&parsed.email) {
        Ok(address) => (
            caller.answer(&snapshot, &address),
            Some(address.domain().to_string()),
        ),
        Err(_) => (Answer::NotHosted, None),
    };
    let pox_url = format!("{}{POX_PATH}", state.site.load().public_url);
    let result = v2::answer(parsed.protocol, &answer, &pox_url, |target| {
        caller.answer(&snapshot, target)
    });
    let outcome = match (&result, &answer) {
        (V2Answer::Found(_), _) => "found",
        (_, Answer::NotHosted) => "not-hosted",
        _ => "not-available",
    };
    json(&result, RequestLog::new("v2", outcome, domain))
}

fn json(answer: &V2Answer, log: RequestLog) -> Response {
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, answer.to_json()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response.extensions_mut().insert(log);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_paths() {
        assert!(is_v2_path("/autodiscover/autodiscover.json"));
        assert!(is_v2_path(
            "/AutoDiscover/AutoDiscover.JSON/v1.0/a@b.example"
        ));
        assert!(!is_v2_path("/autodiscover/autodiscover.jsonx"));
        assert!(!is_v2_path("/autodiscover/autodiscover.js"));
    }
}
