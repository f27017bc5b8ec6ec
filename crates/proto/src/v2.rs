//! Autodiscover v2: the JSON endpoint current Outlook and Outlook mobile ask first.
//!
//! There is no formal specification; this follows what current Outlook sends and what Exchange
//! answers:
//!
//! - `GET /autodiscover/autodiscover.json?Email=ADDRESS&Protocol=P[&RedirectCount=N]`, or the
//!   path form `GET /autodiscover/autodiscover.json/v1.0/ADDRESS?Protocol=P`;
//! - parameter names and the protocol value match in any case;
//! - the answer is `{"Protocol":"AutodiscoverV1","Url":"https://SERVICE/autodiscover/autodiscover.xml"}`
//!   (then Outlook posts POX there), `EWS` gives the EWS URL, `ActiveSync` the ActiveSync URL;
//! - an unknown protocol is HTTP 400 with `{"ErrorCode":"InvalidProtocol","ErrorMessage":...}`
//!   naming the supported values; the echoed value is reduced to a few safe characters.
//!
//! JSON is built and read with serde only.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::address::EmailAddress;
use crate::answer::Answer;
use crate::profile::ServiceProfile;

/// The path of the endpoint (matched case-insensitively by the server).
pub const PATH: &str = "/autodiscover/autodiscover.json";

/// Whether `path` is the endpoint or below it (`.../v1.0/ADDRESS`), in any case.
pub fn is_path(path: &str) -> bool {
    path.get(..PATH.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(PATH))
        && matches!(path.as_bytes().get(PATH.len()), None | Some(b'/'))
}

/// The protocols autodisco answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `AutodiscoverV1`: where to post the POX request.
    AutodiscoverV1,
    /// `EWS`: the EWS URL.
    Ews,
    /// `ActiveSync`: the ActiveSync URL.
    ActiveSync,
}

impl Protocol {
    const ALL: [Self; 3] = [Self::AutodiscoverV1, Self::Ews, Self::ActiveSync];

    /// The name as Exchange writes it in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AutodiscoverV1 => "AutodiscoverV1",
            Self::Ews => "EWS",
            Self::ActiveSync => "ActiveSync",
        }
    }

    /// The protocol for a request's value, in any case.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(value))
    }
}

/// A parsed v2 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Request {
    /// The address, percent-decoded, as sent (trimmed).
    pub email: String,
    /// The protocol asked for.
    pub protocol: Protocol,
    /// `RedirectCount`, which Outlook adds after following redirects: accepted, not used.
    pub redirect_count: Option<u32>,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V2Response {
    /// The protocol answered.
    #[serde(rename = "Protocol")]
    pub protocol: String,
    /// Its URL.
    #[serde(rename = "Url")]
    pub url: String,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V2Error {
    /// `InvalidProtocol`, `MandatoryParameterMissing`, `InvalidUser`, `ProtocolNotAvailable`.
    #[serde(rename = "ErrorCode")]
    pub error_code: String,
    /// A human-readable explanation; it echoes nothing but a sanitised protocol value.
    #[serde(rename = "ErrorMessage")]
    pub error_message: String,
}

/// What the server sends: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Answer {
    /// HTTP 200.
    Found(V2Response),
    /// An error with its HTTP status.
    Error {
        /// 400 for a bad request, 404 for an address or protocol autodisco cannot answer.
        status: u16,
        /// The body.
        error: V2Error,
    },
}

impl V2Answer {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Found(_) => 200,
            Self::Error { status, .. } => *status,
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        let json = match self {
            Self::Found(response) => serde_json::to_string(response),
            Self::Error { error, .. } => serde_json::to_string(error),
        };
        // Two string fields always serialise.
        json.expect("v2 answers serialise")
    }

    fn error(status: u16, code: &str, message: String) -> Self {
        Self::Error {
            status,
            error: V2Error {
                error_code: code.to_owned(),
                error_message: message,
            },
        }
    }
}

/// Why a request was refused: HTTP 400 with [`V2RequestError::answer`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum V2RequestError {
    /// No `Email` parameter and no address in the path.
    #[error("no email address in the path or the Email parameter")]
    MissingEmail,
    /// No `Protocol` parameter.
    #[error("no Protocol parameter")]
    MissingProtocol,
    /// A protocol autodisco does not know (sanitised).
    #[error("unknown protocol {0:?}")]
    InvalidProtocol(String),
    /// A path under the endpoint that is not `/v1.0/ADDRESS`.
    #[error("the path is not /autodiscover/autodiscover.json[/v1.0/ADDRESS]")]
    InvalidPath,
}

impl V2RequestError {
    /// The 400 answer for this error.
    pub fn answer(&self) -> V2Answer {
        match self {
            Self::MissingEmail => V2Answer::error(
                400,
                "MandatoryParameterMissing",
                "A valid value must be provided for the query parameter 'Email'.".to_owned(),
            ),
            Self::MissingProtocol => V2Answer::error(
                400,
                "MandatoryParameterMissing",
                "A valid value must be provided for the query parameter 'Protocol'.".to_owned(),
            ),
            Self::InvalidProtocol(value) => V2Answer::error(
                400,
                "InvalidProtocol",
                format!(
                    "The given protocol value '{value}' is invalid. Supported values are '{}'.",
                    supported()
                ),
            ),
            Self::InvalidPath => V2Answer::error(
                400,
                "InvalidRequest",
                "The request path is not valid.".to_owned(),
            ),
        }
    }
}

fn supported() -> String {
    Protocol::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most characters of a refused protocol value an answer echoes.
const MAX_ECHO: usize = 32;

/// A refused protocol value reduced to letters, digits, `.`, `_` and `-`, at most [`MAX_ECHO`]
/// characters: safe in any context a client may show it in.
fn sanitise(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(MAX_ECHO)
        .collect()
}

/// Parses a request from its path (already known to start with [`PATH`], in any case) and its
/// raw query string.
pub fn parse_request(path: &str, query: Option<&str>) -> Result<V2Request, V2RequestError> {
    let mut email = None;
    let mut protocol = None;
    let mut redirect_count = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        // The first occurrence of a parameter wins.
        if name.eq_ignore_ascii_case("Email") {
            email.get_or_insert(value.into_owned());
        } else if name.eq_ignore_ascii_case("Protocol") {
            protocol.get_or_insert(value.into_owned());
        } else if name.eq_ignore_ascii_case("RedirectCount") {
            redirect_count = redirect_count.or_else(|| value.trim().parse().ok());
        }
    }
    let rest = path.get(PATH.len()..).ok_or(V2RequestError::InvalidPath)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if !rest.is_empty() {
        let address = rest
            .get(..6)
            .filter(|prefix| prefix.eq_ignore_ascii_case("/v1.0/"))
            .and_then(|_| rest.get(6..))
            .filter(|address| !address.is_empty() && !address.contains('/'))
            .ok_or(V2RequestError::InvalidPath)?;
        // The path form wins over an Email parameter.
        email = Some(
            percent_encoding::percent_decode_str(address)
                .decode_utf8_lossy()
                .into_owned(),
        );
    }
    let email = email
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .ok_or(V2RequestError::MissingEmail)?;
    let protocol = protocol.ok_or(V2RequestError::MissingProtocol)?;
    let protocol = Protocol::parse(protocol.trim())
        .ok_or_else(|| V2RequestError::InvalidProtocol(sanitise(&protocol)))?;
    Ok(V2Request {
        email,
        protocol,
        redirect_count,
    })
}

/// The answer for `protocol` given the directory's answer about the address.
///
/// `pox_url` is the service's POX URL (`https://SERVICE/autodiscover/autodiscover.xml`).
/// `resolve` looks up a redirect's target address, one hop: a moved mailbox's EWS URL is the
/// one of the mailbox it moved to.
pub fn answer(
    protocol: Protocol,
    answer: &Answer,
    pox_url: &str,
    resolve: impl Fn(&EmailAddress) -> Answer,
) -> V2Answer {
    let found = |url: String| {
        V2Answer::Found(V2Response {
            protocol: protocol.as_str().to_owned(),
            url,
        })
    };
    let not_hosted = || {
        V2Answer::error(
            404,
            "InvalidUser",
            "The email address is not served here.".to_owned(),
        )
    };
    let not_available = || {
        V2Answer::error(
            404,
            "ProtocolNotAvailable",
            format!(
                "The protocol '{}' is not available for this user.",
                protocol.as_str()
            ),
        )
    };
    let settings_url = |answer: &Answer| match answer {
        Answer::Settings(settings) => {
            // Every field is named: a new profile field does not compile here until this dialect
            // decides whether it has a place for it.
            let ServiceProfile {
                ews,
                activesync_url,
                // Outlook takes everything else from the POX answer it is sent to.
                display_name: _,
                imap: _,
                pop3: _,
                smtp: _,
                mapi_http: _,
                documentation_url: _,
            } = &*settings.profile;
            let template = match protocol {
                Protocol::AutodiscoverV1 => return Some(pox_url.to_owned()),
                Protocol::Ews => ews.as_ref().map(|e| &e.url),
                Protocol::ActiveSync => activesync_url.as_ref(),
            };
            template.map(|t| settings.url(t))
        }
        _ => None,
    };
    match (answer, protocol) {
        (Answer::NotHosted, _) => not_hosted(),
        (Answer::Settings(_), _) => settings_url(answer).map_or_else(not_available, found),
        // POX carries the redirect itself.
        (Answer::RedirectAddr(_), Protocol::AutodiscoverV1) => found(pox_url.to_owned()),
        (Answer::RedirectAddr(target), _) => {
            settings_url(&resolve(target)).map_or_else(not_available, found)
        }
        // The other service's AutoDiscover URL; what it serves is unknown here.
        (Answer::RedirectUrl(url), Protocol::AutodiscoverV1) => found(url.clone()),
        (Answer::RedirectUrl(_), _) => not_available(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::answer::AccountSettings;
    use crate::profile::ServiceProfile;

    const POX: &str = "https://autodiscover.hoster.example/autodiscover/autodiscover.xml";

    #[test]
    fn v2_paths() {
        assert!(is_path("/autodiscover/autodiscover.json"));
        assert!(is_path("/AutoDiscover/AutoDiscover.JSON/v1.0/a@b.example"));
        assert!(!is_path("/autodiscover/autodiscover.jsonx"));
        assert!(!is_path("/autodiscover/autodiscover.js"));
    }

    fn settings(address: &str) -> Answer {
        Answer::Settings(AccountSettings::new(
            EmailAddress::parse(address).unwrap(),
            Arc::new(ServiceProfile::default_for_hoster("hoster.example")),
        ))
    }

    #[test]
    fn query_and_path_forms() {
        let request = parse_request(
            "/autodiscover/autodiscover.json",
            Some("email=jane%40a.example&PROTOCOL=ews&RedirectCount=2"),
        )
        .unwrap();
        assert_eq!(
            request,
            V2Request {
                email: "jane@a.example".into(),
                protocol: Protocol::Ews,
                redirect_count: Some(2)
            }
        );
        let request = parse_request(
            "/AutoDiscover/AutoDiscover.json/V1.0/jane%40a.example",
            Some("Protocol=AutodiscoverV1&RedirectCount=x"),
        )
        .unwrap();
        assert_eq!(request.email, "jane@a.example");
        assert_eq!(request.redirect_count, None);
        assert_eq!(
            parse_request(
                "/autodiscover/autodiscover.json/v2.0/x@a.example",
                Some("Protocol=EWS")
            ),
            Err(V2RequestError::InvalidPath)
        );
        assert_eq!(
            parse_request(PATH, Some("Protocol=EWS")),
            Err(V2RequestError::MissingEmail)
        );
        assert_eq!(
            parse_request(PATH, Some("Email=x@a.example")),
            Err(V2RequestError::MissingProtocol)
        );
    }

    #[test]
    fn invalid_protocol_is_400_with_a_sanitised_echo() {
        let error = parse_request(
            PATH,
            Some("Email=x@a.example&Protocol=%3Cscript%3E%22Rest%22%27%0A"),
        )
        .unwrap_err();
        assert_eq!(error, V2RequestError::InvalidProtocol("scriptRest".into()));
        let answer = error.answer();
        assert_eq!(answer.status(), 400);
        let json: serde_json::Value = serde_json::from_str(&answer.to_json()).unwrap();
        assert_eq!(json["ErrorCode"], "InvalidProtocol");
        let message = json["ErrorMessage"].as_str().unwrap();
        assert!(message.contains("'scriptRest'"), "{message}");
        assert!(
            message.contains("AutodiscoverV1, EWS, ActiveSync"),
            "{message}"
        );
        let long = "a".repeat(500);
        let Err(V2RequestError::InvalidProtocol(echo)) =
            parse_request(PATH, Some(&format!("Email=x@a.example&Protocol={long}")))
        else {
            panic!()
        };
        assert_eq!(echo.len(), MAX_ECHO);
    }

    #[test]
    fn answers_per_protocol() {
        let hosted = settings("jane@a.example");
        let none = |_: &EmailAddress| Answer::NotHosted;
        assert_eq!(
            answer(Protocol::AutodiscoverV1, &hosted, POX, none).to_json(),
            format!(r#"{{"Protocol":"AutodiscoverV1","Url":"{POX}"}}"#)
        );
        assert_eq!(
            answer(Protocol::Ews, &hosted, POX, none),
            V2Answer::Found(V2Response {
                protocol: "EWS".into(),
                url: "https://mail.hoster.example/EWS/Exchange.asmx".into()
            })
        );
        // The default profile has no ActiveSync endpoint.
        assert_eq!(
            answer(Protocol::ActiveSync, &hosted, POX, none).status(),
            404
        );
        assert_eq!(
            answer(Protocol::Ews, &Answer::NotHosted, POX, none).status(),
            404
        );
        let moved = Answer::RedirectAddr(EmailAddress::parse("jane@b.example").unwrap());
        assert_eq!(
            answer(Protocol::Ews, &moved, POX, |_| settings("jane@b.example")).status(),
            200
        );
        assert_eq!(
            answer(Protocol::AutodiscoverV1, &moved, POX, none).status(),
            200
        );
        let decoded: V2Response =
            serde_json::from_str(&answer(Protocol::Ews, &hosted, POX, none).to_json()).unwrap();
        assert_eq!(decoded.protocol, "EWS");
    }
}
