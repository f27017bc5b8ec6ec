//! `GET /autodiscover/autodiscover.json`: Autodiscover v2 (current Outlook, Outlook mobile).
//!
//! Both forms are answered: `?Email=ADDRESS&Protocol=P` and `/v1.0/ADDRESS?Protocol=P`. The
//! JSON comes from `autodisco_proto::v2`, built with serde.

use autodisco_proto::v2::{self, V2Answer};
use autodisco_proto::{Answer, EmailAddress};
use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;

use crate::auth::privacy::Caller;
use crate::reply::private_document;
use crate::request_log::RequestLog;
use crate::state::AppState;

/// Answers one GET.
pub(crate) fn handle(state: &AppState, request: &Request) -> Response {
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
    let pox_url = format!(
        "{}{}",
        state.site.load().public_url,
        autodisco_proto::pox::PATH
    );
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
    private_document(
        status,
        answer.to_json(),
        "application/json; charset=utf-8",
        log,
    )
}
