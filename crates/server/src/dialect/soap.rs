//! `POST /autodiscover/autodiscover.svc`: SOAP Autodiscover ([MS-OXWSADISC]).
//!
//! Answers are HTTP 200 in the request's SOAP version, `InvalidRequest` and `InvalidUser`
//! included: an unhosted address is a normal answer with `InvalidUser` inside, since clients
//! probe with a dummy address before they authenticate. Only an envelope that cannot be read,
//! or that names no operation autodisco offers, gets a SOAP fault (HTTP 500 in SOAP 1.1, 400 in
//! SOAP 1.2, as each version's HTTP binding wants for a sender fault).

use autodisco_proto::soap::settings;
use autodisco_proto::soap::{
    self, GetDomainSettingsResponse, GetUserSettingsResponse, Operation, SoapErrorCode, SoapFault,
    SoapRequestBody, SoapResponse, SoapResponseBody, SoapVersion,
};
use autodisco_proto::{Answer, Domain, EmailAddress};
use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;

use crate::auth::privacy::Caller;
use crate::reply::{answer_outcome, private_document, read_request_body};
use crate::request_log::RequestLog;
use crate::state::AppState;

/// Answers one POST.
pub(crate) async fn handle(state: AppState, request: Request) -> Response {
    // With authentication on, only the caller's own mailbox is answered; any other gets
    // `InvalidUser`, as an address that is not hosted.
    let caller = Caller::authenticated(&state.auth, request.headers());
    let body = match read_request_body(request.into_body(), &state.limits).await {
        Ok(body) => body,
        Err(e) => {
            return fault(
                SoapVersion::Soap11,
                SoapFault::invalid_envelope(),
                e.outcome(),
            );
        }
    };
    let request = match soap::parse_request(&body) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%error, "SOAP request refused");
            return match error.operation() {
                Some(Operation::GetUserSettings) => soap_response(
                    error.version(),
                    SoapResponseBody::GetUserSettings(GetUserSettingsResponse::error(
                        SoapErrorCode::InvalidRequest,
                    )),
                    RequestLog::new("soap", "invalid-request", None),
                ),
                Some(Operation::GetDomainSettings) => soap_response(
                    error.version(),
                    SoapResponseBody::GetDomainSettings(GetDomainSettingsResponse::error(
                        SoapErrorCode::InvalidRequest,
                    )),
                    RequestLog::new("soap", "invalid-request", None),
                ),
                None => {
                    let reason = match error {
                        soap::SoapRequestError::UnknownOperation { .. } => {
                            SoapFault::action_not_supported()
                        }
                        _ => SoapFault::invalid_envelope(),
                    };
                    fault(error.version(), reason, "fault")
                }
            };
        }
    };
    let snapshot = state.directory.snapshot();
    let version = request.version;
    match request.body {
        SoapRequestBody::GetUserSettings(users) => {
            let mut log_domain = None;
            let mut log_outcome = "invalid-user";
            let responses = users
                .mailboxes
                .iter()
                .enumerate()
                .map(|(i, mailbox)| {
                    let answer = match EmailAddress::parse(mailbox) {
                        Ok(address) => {
                            if i == 0 {
                                log_domain = Some(address.domain().to_string());
                            }
                            caller.answer(&snapshot, &address)
                        }
                        Err(_) => Answer::NotHosted,
                    };
                    if i == 0 {
                        log_outcome = answer_outcome(&answer, "invalid-user");
                    }
                    settings::user_response(&answer, &users.settings)
                })
                .collect();
            soap_response(
                version,
                SoapResponseBody::GetUserSettings(GetUserSettingsResponse::new(responses)),
                RequestLog::new("soap", log_outcome, log_domain),
            )
        }
        SoapRequestBody::GetDomainSettings(domains) => {
            let mut log_domain = None;
            let responses = domains
                .domains
                .iter()
                .map(|name| {
                    let domain = Domain::parse(name).ok();
                    if log_domain.is_none() {
                        log_domain = domain.as_ref().map(ToString::to_string);
                    }
                    let hosted = domain.and_then(|domain| snapshot.domain_profile(&domain));
                    settings::domain_response(
                        hosted
                            .as_ref()
                            .map(|(primary, profile)| (primary, profile.as_ref())),
                        &domains.settings,
                    )
                })
                .collect();
            soap_response(
                version,
                SoapResponseBody::GetDomainSettings(GetDomainSettingsResponse::new(responses)),
                RequestLog::new("soap", "domain-settings", log_domain),
            )
        }
    }
}

fn soap_response(version: SoapVersion, body: SoapResponseBody, log: RequestLog) -> Response {
    let status = match &body {
        SoapResponseBody::Fault(_) if version == SoapVersion::Soap12 => StatusCode::BAD_REQUEST,
        SoapResponseBody::Fault(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    };
    let document = SoapResponse::new(version, body).to_xml();
    private_document(status, document, version.content_type(), log)
}

fn fault(version: SoapVersion, fault: SoapFault, outcome: &'static str) -> Response {
    soap_response(
        version,
        SoapResponseBody::Fault(fault),
        RequestLog::new("soap", outcome, None),
    )
}
