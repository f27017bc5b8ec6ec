//! SOAP `GetUserSettings` as the EWS libraries send it ([MS-OXWSADISC]): the same race as POX at
//! `/autodiscover/autodiscover.svc`, with the step-3 redirect giving only the host.

use autodisco_proto::soap::{SoapErrorCode, SoapResponseBody};
use autodisco_proto::{EmailAddress, SoapRequest, SoapResponse};
use http::HeaderValue;
use http::header::HeaderName;
use url::Url;

use super::follow::{Next, PostDialect};
use crate::report::{Failure, Outcome};
use crate::settings::Settings;

/// The SOAP action of `GetUserSettings`, which the EWS libraries send as `SOAPAction`.
const SOAP_ACTION: &str =
    "\"http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings\"";

/// The user settings the SOAP dialect asks for.
pub(crate) const SOAP_SETTINGS: &[&str] = &[
    "UserDisplayName",
    "AutoDiscoverSMTPAddress",
    "UserDN",
    "UserDeploymentId",
    "ExternalEwsUrl",
    "ExternalEcpUrl",
    "ExternalUMUrl",
    "ExternalOABUrl",
    "ExternalWebClientUrls",
    "ExternalMailboxServer",
    "ExternalImap4Connections",
    "ExternalPop3Connections",
    "ExternalSmtpConnections",
];

/// The EWS libraries' SOAP dialect.
pub(super) struct Soap;

impl PostDialect for Soap {
    fn service_url(&self, host: &str) -> Option<Url> {
        Url::parse(&format!("https://{host}{}", autodisco_proto::soap::PATH)).ok()
    }

    fn body(&self, address: &EmailAddress) -> String {
        SoapRequest::get_user_settings(&address.to_string(), SOAP_SETTINGS).to_xml()
    }

    fn announce(&self) -> (HeaderName, HeaderValue) {
        (
            HeaderName::from_static("soapaction"),
            HeaderValue::from_static(SOAP_ACTION),
        )
    }

    fn interpret(&self, body: &[u8]) -> Result<(Outcome, Next), Failure> {
        soap_result(body)
    }

    /// The EWS libraries use the redirect only for its host: the SOAP service is asked at the
    /// .svc URL there.
    fn redirect_target(&self, location: Url) -> Url {
        let mut target = location;
        target.set_path(autodisco_proto::soap::PATH);
        target.set_query(None);
        target
    }
}

/// The outcome of a SOAP `GetUserSettings` answer for its first user.
fn soap_result(body: &[u8]) -> Result<(Outcome, Next), Failure> {
    let decode = |detail: String| Failure::Decode { detail };
    let body = match SoapResponse::from_xml(body).map_err(|e| decode(e.to_string()))? {
        SoapResponse {
            body: SoapResponseBody::GetUserSettings(body),
            ..
        } => body,
        SoapResponse {
            body: SoapResponseBody::Fault(fault),
            ..
        } => return Err(decode(format!("a SOAP fault: {}", fault.reason))),
        _ => return Err(decode("not a GetUserSettings response".to_owned())),
    };
    let soap_error = |code: &SoapErrorCode, message: &str| Failure::AutodiscoverError {
        code: 0,
        message: format!(
            "{}: {}",
            code.as_str(),
            if message.is_empty() {
                code.message()
            } else {
                message
            }
        ),
    };
    if body.error_code != SoapErrorCode::NoError {
        return Err(soap_error(&body.error_code, &body.error_message));
    }
    let user = body
        .user_responses
        .first()
        .ok_or_else(|| decode("the response has no UserResponse".to_owned()))?;
    let target = user.redirect_target.as_deref().unwrap_or("").trim();
    match &user.error_code {
        SoapErrorCode::NoError => Ok((
            Outcome::Settings,
            Next::Settings(Box::new(Settings::from_soap(user))),
        )),
        SoapErrorCode::RedirectAddress => {
            let next = EmailAddress::parse(target).map_err(|_| Failure::Refused {
                url: target.to_owned(),
                why: "the RedirectAddress target is not an address".to_owned(),
            })?;
            Ok((
                Outcome::RedirectAddr {
                    address: next.to_string(),
                },
                Next::RedirectAddr(next),
            ))
        }
        SoapErrorCode::RedirectUrl => {
            let next = Url::parse(target).map_err(|_| Failure::Refused {
                url: target.to_owned(),
                why: "the RedirectUrl target is not a URL".to_owned(),
            })?;
            Ok((
                Outcome::RedirectUrl {
                    url: next.to_string(),
                },
                Next::Follow(next),
            ))
        }
        other => Err(soap_error(other, &user.error_message)),
    }
}
