//! `POST /autodiscover/autodiscover.xml`: Outlook POX and ActiveSync mobilesync.
//!
//! Every answer is HTTP 200 with an XML document, errors included ([MS-OXDSCLI] 3.1.5.5: clients
//! treat another status as a dead endpoint and move on). The parser refuses DTDs and entities,
//! bounds depth, and never sees more than the body limit.

use autodisco_proto::pox::{self, RenderOptions};
use autodisco_proto::{
    Answer, AutodiscoverRequest, ErrorCode, mobilesync, parse_request, render_request_error,
};
use axum::extract::Request;
use axum::response::Response;

use crate::auth::privacy::Caller;
use crate::reply::{answer_outcome, error_stamp, read_request_body, xml_response};
use crate::request_log::RequestLog;
use crate::state::AppState;

/// The header by which Outlook announces MAPI over HTTP support ([MS-OXDSCLI] 2.2.2.1).
const MAPI_HTTP_CAPABILITY: &str = "x-mapihttpcapability";

/// Answers one POST.
pub(crate) async fn handle(state: AppState, request: Request) -> Response {
    let mapi_http = request
        .headers()
        .get(MAPI_HTTP_CAPABILITY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok())
        .is_some_and(|version| version >= 1);
    let stamp = error_stamp(state.site.load().server_id);
    // With authentication on, only the caller's own mailbox is answered.
    let caller = Caller::authenticated(&state.auth, request.headers());
    let body = match read_request_body(request.into_body(), &state.limits).await {
        Ok(body) => body,
        Err(e) => {
            let document = pox::render_error(ErrorCode::InvalidRequest, &stamp);
            return xml_response(document, RequestLog::new("pox", e.outcome(), None));
        }
    };
    match parse_request(&body) {
        Err(error) => {
            tracing::debug!(%error, id = %stamp.id, "request refused");
            let dialect = match error.dialect() {
                Some(autodisco_proto::Dialect::MobileSync) => "mobilesync",
                _ => "pox",
            };
            let outcome = match error.code() {
                ErrorCode::ProviderUnavailable => "unsupported-schema",
                _ => "invalid-request",
            };
            xml_response(
                render_request_error(&error, &stamp),
                RequestLog::new(dialect, outcome, None),
            )
        }
        Ok(AutodiscoverRequest::Outlook(outlook)) => {
            let mailbox = outlook.mailbox();
            let domain = mailbox.as_ref().map(|m| m.domain().to_string());
            let answer = match &mailbox {
                Some(address) => caller.answer(&state.directory.snapshot(), address),
                // Only a LegacyDN that is not ours: nothing here can answer for it.
                None => Answer::NotHosted,
            };
            let document = pox::render_answer(&answer, &RenderOptions { mapi_http, stamp });
            let outcome = answer_outcome(&answer, "not-hosted");
            xml_response(document, RequestLog::new("pox", outcome, domain))
        }
        Ok(AutodiscoverRequest::MobileSync(request)) => {
            let address = &request.email_address;
            let answer = caller.answer(&state.directory.snapshot(), address);
            let outcome = match &answer {
                Answer::Settings(settings) if settings.profile.activesync_url.is_none() => {
                    "no-activesync"
                }
                other => answer_outcome(other, "not-hosted"),
            };
            let document = mobilesync::render_answer(&answer, &stamp);
            xml_response(
                document,
                RequestLog::new("mobilesync", outcome, Some(address.domain().to_string())),
            )
        }
    }
}
