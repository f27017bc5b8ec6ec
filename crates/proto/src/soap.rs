//! SOAP Autodiscover ([MS-OXWSADISC]): the dialect of the EWS client libraries.
//!
//! Clients `POST /autodiscover/autodiscover.svc` a SOAP envelope whose body is a
//! `GetUserSettingsRequestMessage` or a `GetDomainSettingsRequestMessage` in [`NAMESPACE`].
//! Most send SOAP 1.1 as `text/xml` without a `SOAPAction` header, so the operation is read from
//! the body element, or from the WS-Addressing `Action` header when the body element is unknown
//! ([MS-OXWSADISC] 3.1.4). The answer is written in the request's SOAP version.
//!
//! - [`parse_request`] reads a request ([`SoapRequest`]) or says why it cannot
//!   ([`SoapRequestError`]: a fault for envelopes we cannot read, an `InvalidRequest` answer for
//!   an operation whose content is wrong).
//! - [`response`]: the typed response ([`SoapResponse`]) with its encoder and decoder, so every
//!   answer autodisco writes can be read back into the value it was written from.
//! - [`settings`]: which settings autodisco knows and how each is taken from the
//!   [`ServiceProfile`](crate::ServiceProfile); only requested settings are ever returned.
//!
//! Requests keep mailboxes and domains as the text that was sent: an address that is not valid
//! gets its own `InvalidUser` answer inside an otherwise normal response, as Exchange does.

pub mod response;
pub mod settings;

use std::collections::HashSet;
use std::fmt;

use thiserror::Error;

use crate::xml::{self, Element, XmlError, XmlWriter};

pub use response::{
    DomainResponse, DomainSetting, FaultCode, GetDomainSettingsResponse, GetUserSettingsResponse,
    ProtocolConnection, ServerVersionInfo, SettingError, SettingValue, SoapErrorCode, SoapFault,
    SoapResponse, SoapResponseBody, UserResponse, UserSetting, WebClientUrl,
};

/// The endpoint ([MS-OXWSADISC] 3.1.1).
pub const PATH: &str = "/autodiscover/autodiscover.svc";

/// Whether `path` is the SOAP endpoint: the plain path, or the WS-Security binding the EWS
/// Managed API uses (`.../autodiscover.svc/wssecurity`), in any case.
pub fn is_path(path: &str) -> bool {
    let Some(prefix) = path.get(..PATH.len()) else {
        return false;
    };
    if !prefix.eq_ignore_ascii_case(PATH) {
        return false;
    }
    let rest = &path[PATH.len()..];
    rest.is_empty()
        || rest == "/"
        || rest.eq_ignore_ascii_case("/wssecurity")
        || rest.eq_ignore_ascii_case("/wssecurity/")
}

/// Namespace of every Autodiscover message, request and response ([MS-OXWSADISC] 2.2.1).
pub const NAMESPACE: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";

/// Prefix of the WS-Addressing actions of the Autodiscover operations ([MS-OXWSADISC] 3.1.4).
pub const ACTION_PREFIX: &str =
    "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/";

/// WS-Addressing 1.0, for the `Action` and `To` headers.
pub const ADDRESSING_NAMESPACE: &str = "http://www.w3.org/2005/08/addressing";

/// XML Schema instance, for `i:type` and `i:nil`.
pub const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The most users one `GetUserSettings` request may ask about; Exchange refuses more with
/// `InvalidRequest` ([MS-OXWSADISC] 3.1.4.4), and so does autodisco.
pub const MAX_USERS: usize = 100;

/// The most domains one `GetDomainSettings` request may ask about, as for users.
pub const MAX_DOMAINS: usize = 100;

/// The most distinct setting names one request may ask for, unknown names included (names
/// that differ only in case are one name). The schema lists 103 user setting names
/// ([MS-OXWSADISC] 2.2.4.1, [`settings::USER_SETTINGS`]); Outlook, the EWS Managed API and
/// exchangelib ask for a few dozen at most, and a tool asking for every one still fits.
pub const MAX_SETTINGS: usize = 128;

/// The longest setting name accepted, in bytes. The longest name in the schema has 42
/// (`ExternalMailboxServerAuthenticationMethods`); an unknown name is echoed in its
/// `UserSettingError` once per user, so its length multiplies into the answer.
pub const MAX_SETTING_NAME_BYTES: usize = 64;

/// The most answers one request may ask for: users (or domains) times distinct settings. Each
/// answer is one `UserSetting` or `UserSettingError` of at most about half a KiB, so this keeps
/// the whole response under 1 MB (see the test `worst_accepted_request_has_a_small_answer`).
/// One user with every setting (103) or 100 users with 16 settings each fit: the EWS Managed
/// API batches users with the handful of settings a migration or a free/busy lookup needs.
pub const MAX_ANSWERS: usize = 1_600;

/// The SOAP version of an envelope; the answer uses the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoapVersion {
    /// SOAP 1.1 (`text/xml`), what the EWS libraries send.
    Soap11,
    /// SOAP 1.2 (`application/soap+xml`).
    Soap12,
}

impl SoapVersion {
    /// The envelope namespace of this version.
    pub fn namespace(self) -> &'static str {
        match self {
            Self::Soap11 => "http://schemas.xmlsoap.org/soap/envelope/",
            Self::Soap12 => "http://www.w3.org/2003/05/soap-envelope",
        }
    }

    /// The `Content-Type` of a message in this version.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Soap11 => "text/xml; charset=utf-8",
            Self::Soap12 => "application/soap+xml; charset=utf-8",
        }
    }

    fn from_namespace(namespace: Option<&str>) -> Option<Self> {
        [Self::Soap11, Self::Soap12]
            .into_iter()
            .find(|v| Some(v.namespace()) == namespace)
    }
}

/// The Autodiscover operations autodisco answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `GetUserSettings` ([MS-OXWSADISC] 3.1.4.2).
    GetUserSettings,
    /// `GetDomainSettings` ([MS-OXWSADISC] 3.1.4.1).
    GetDomainSettings,
}

impl Operation {
    /// The operation's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::GetUserSettings => "GetUserSettings",
            Self::GetDomainSettings => "GetDomainSettings",
        }
    }

    /// The WS-Addressing action of the request.
    pub fn request_action(self) -> &'static str {
        match self {
            Self::GetUserSettings => {
                "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"
            }
            Self::GetDomainSettings => {
                "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetDomainSettings"
            }
        }
    }

    /// The WS-Addressing action of the response.
    pub fn response_action(self) -> &'static str {
        match self {
            Self::GetUserSettings => {
                "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse"
            }
            Self::GetDomainSettings => {
                "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetDomainSettingsResponse"
            }
        }
    }

    fn request_element(self) -> &'static str {
        match self {
            Self::GetUserSettings => "GetUserSettingsRequestMessage",
            Self::GetDomainSettings => "GetDomainSettingsRequestMessage",
        }
    }

    pub(crate) fn response_element(self) -> &'static str {
        match self {
            Self::GetUserSettings => "GetUserSettingsResponseMessage",
            Self::GetDomainSettings => "GetDomainSettingsResponseMessage",
        }
    }

    const ALL: [Self; 2] = [Self::GetUserSettings, Self::GetDomainSettings];

    /// The operation a request action names. The documentation's examples spell the namespace
    /// with `https://`, so both schemes are accepted.
    fn from_request_action(action: &str) -> Option<Self> {
        let action = action.trim();
        let name = action.strip_prefix(ACTION_PREFIX).or_else(|| {
            action
                .strip_prefix("https://")
                .and_then(|rest| rest.strip_prefix(&ACTION_PREFIX[7..]))
        })?;
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A SOAP Autodiscover request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapRequest {
    /// The envelope's SOAP version.
    pub version: SoapVersion,
    /// `RequestedServerVersion` from the header (`Exchange2010`, ...): accepted and otherwise
    /// ignored, since autodisco's answers do not depend on it.
    pub requested_server_version: Option<String>,
    /// The operation and its content.
    pub body: SoapRequestBody,
}

/// The content of a request's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoapRequestBody {
    /// `GetUserSettingsRequestMessage`.
    GetUserSettings(GetUserSettingsRequest),
    /// `GetDomainSettingsRequestMessage`.
    GetDomainSettings(GetDomainSettingsRequest),
}

/// A `GetUserSettings` request ([MS-OXWSADISC] 3.1.4.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetUserSettingsRequest {
    /// Each `User`'s `Mailbox`, as sent (trimmed); at least one, at most [`MAX_USERS`].
    pub mailboxes: Vec<String>,
    /// The `RequestedSettings`, as sent (trimmed), each name once; at most [`MAX_SETTINGS`],
    /// and at most [`MAX_ANSWERS`] for all mailboxes together.
    pub settings: Vec<String>,
}

/// A `GetDomainSettings` request ([MS-OXWSADISC] 3.1.4.1.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetDomainSettingsRequest {
    /// Each `Domain`, as sent (trimmed); at least one, at most [`MAX_DOMAINS`].
    pub domains: Vec<String>,
    /// The `RequestedSettings`, as for users.
    pub settings: Vec<String>,
    /// `RequestedVersion`, when sent.
    pub requested_version: Option<String>,
}

impl SoapRequest {
    /// The operation of the request.
    pub fn operation(&self) -> Operation {
        match self.body {
            SoapRequestBody::GetUserSettings(_) => Operation::GetUserSettings,
            SoapRequestBody::GetDomainSettings(_) => Operation::GetDomainSettings,
        }
    }

    /// A SOAP 1.1 `GetUserSettings` request for `mailbox`, as the EWS libraries send it.
    pub fn get_user_settings(mailbox: &str, settings: &[&str]) -> Self {
        Self {
            version: SoapVersion::Soap11,
            requested_server_version: Some("Exchange2013".to_owned()),
            body: SoapRequestBody::GetUserSettings(GetUserSettingsRequest {
                mailboxes: vec![mailbox.to_owned()],
                settings: settings.iter().map(|s| (*s).to_owned()).collect(),
            }),
        }
    }

    /// Encodes the request envelope a client posts.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.start(
            "soap:Envelope",
            &[
                ("xmlns:soap", self.version.namespace()),
                ("xmlns:a", NAMESPACE),
                ("xmlns:wsa", ADDRESSING_NAMESPACE),
                ("xmlns:xsi", XSI_NAMESPACE),
            ],
        );
        writer.start("soap:Header", &[]);
        writer.optional_leaf(
            "a:RequestedServerVersion",
            self.requested_server_version.as_deref(),
        );
        writer.leaf("wsa:Action", self.operation().request_action());
        writer.end();
        writer.start("soap:Body", &[]);
        writer.start(self.operation().request_element(), &[("xmlns", NAMESPACE)]);
        writer.start("Request", &[]);
        match &self.body {
            SoapRequestBody::GetUserSettings(request) => {
                writer.start("Users", &[]);
                for mailbox in &request.mailboxes {
                    writer.start("User", &[]);
                    writer.leaf("Mailbox", mailbox);
                    writer.end();
                }
                writer.end();
                write_requested_settings(&mut writer, &request.settings);
            }
            SoapRequestBody::GetDomainSettings(request) => {
                writer.start("Domains", &[]);
                for domain in &request.domains {
                    writer.leaf("Domain", domain);
                }
                writer.end();
                write_requested_settings(&mut writer, &request.settings);
                writer.optional_leaf("RequestedVersion", request.requested_version.as_deref());
            }
        }
        writer.finish()
    }
}

fn write_requested_settings(writer: &mut XmlWriter, settings: &[String]) {
    if settings.is_empty() {
        writer.leaf("RequestedSettings", "");
        return;
    }
    writer.start("RequestedSettings", &[]);
    for setting in settings {
        writer.leaf("Setting", setting);
    }
    writer.end();
}

/// What is wrong with the content of a request whose operation is known.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestProblem {
    /// A required element is missing.
    #[error("the {0} element is missing")]
    MissingElement(&'static str),
    /// An element allowed once appears more often.
    #[error("the {0} element appears more than once")]
    DuplicateElement(&'static str),
    /// An element that should hold text holds elements.
    #[error("the {0} element holds elements where text was expected")]
    NotText(&'static str),
    /// A list that needs at least one entry is empty.
    #[error("the {0} list is empty")]
    Empty(&'static str),
    /// More entries than one request may carry.
    #[error("the {element} list has {count} entries; at most {limit} are accepted")]
    TooMany {
        /// The list's element name.
        element: &'static str,
        /// How many entries it had (distinct ones, for settings).
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A value longer than the element allows.
    #[error("a {element} value is {length} bytes long; at most {limit} are accepted")]
    TooLong {
        /// The element's name.
        element: &'static str,
        /// The value's length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// Users (or domains) times settings is more than [`MAX_ANSWERS`].
    #[error("{targets} targets times {settings} settings asks for more than {limit} answers")]
    TooManyAnswers {
        /// How many users or domains the request names.
        targets: usize,
        /// How many distinct settings it asks for.
        settings: usize,
        /// The limit.
        limit: usize,
    },
}

/// Why a request was refused. [`SoapRequestError::operation`] tells whether the answer is a
/// SOAP fault (`None`) or that operation's response with `ErrorCode` `InvalidRequest`.
///
/// The details are for the log; answers carry fixed messages only.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SoapRequestError {
    /// The body is not acceptable XML.
    #[error("the request is not acceptable XML: {0}")]
    Xml(#[from] XmlError),
    /// The root element is not a SOAP 1.1 or 1.2 `Envelope`.
    #[error("the root element {local_name:?} in namespace {namespace:?} is not a SOAP envelope")]
    NotAnEnvelope {
        /// The root's namespace (truncated).
        namespace: Option<String>,
        /// The root's local name (truncated).
        local_name: String,
    },
    /// The envelope has no `Body`, or two.
    #[error("the SOAP envelope has no single Body element")]
    NoBody {
        /// The envelope's SOAP version.
        version: SoapVersion,
    },
    /// Neither the body element nor the `Action` header names an operation autodisco knows.
    #[error(
        "no Autodiscover operation in the body ({element:?}) or the Action header ({action:?})"
    )]
    UnknownOperation {
        /// The envelope's SOAP version.
        version: SoapVersion,
        /// The body element's local name, if any (truncated).
        element: Option<String>,
        /// The `Action` header, if any (truncated).
        action: Option<String>,
    },
    /// The operation is known, its content is not valid.
    #[error("invalid {operation} request: {problem}")]
    InvalidRequest {
        /// The envelope's SOAP version.
        version: SoapVersion,
        /// The operation.
        operation: Operation,
        /// What is wrong.
        problem: RequestProblem,
    },
}

impl SoapRequestError {
    /// The SOAP version the answer uses (SOAP 1.1 when the envelope could not be read).
    pub fn version(&self) -> SoapVersion {
        match self {
            Self::Xml(_) | Self::NotAnEnvelope { .. } => SoapVersion::Soap11,
            Self::NoBody { version }
            | Self::UnknownOperation { version, .. }
            | Self::InvalidRequest { version, .. } => *version,
        }
    }

    /// The operation whose `InvalidRequest` response answers this error; `None` when the answer
    /// is a SOAP fault.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::InvalidRequest { operation, .. } => Some(*operation),
            _ => None,
        }
    }
}

/// Parses a request envelope.
pub fn parse_request(body: &[u8]) -> Result<SoapRequest, SoapRequestError> {
    let root = xml::parse_document(body)?;
    let version = match SoapVersion::from_namespace(root.namespace.as_deref()) {
        Some(version) if root.local_name == "Envelope" => version,
        _ => {
            return Err(SoapRequestError::NotAnEnvelope {
                namespace: root.namespace.as_deref().map(xml::snippet),
                local_name: xml::snippet(&root.local_name),
            });
        }
    };
    let envelope_ns = version.namespace();
    let header = root
        .child(envelope_ns, "Header")
        .map_err(|_| SoapRequestError::NoBody { version })?;
    let mut requested_server_version = None;
    let mut action = None;
    if let Some(header) = header {
        for entry in &header.children {
            if entry.is(NAMESPACE, "RequestedServerVersion") {
                requested_server_version = entry.leaf_text().filter(|t| !t.is_empty());
            } else if entry.is(ADDRESSING_NAMESPACE, "Action") {
                action = entry.leaf_text();
            }
        }
    }
    let body = match root.child(envelope_ns, "Body") {
        Ok(Some(body)) => body,
        _ => return Err(SoapRequestError::NoBody { version }),
    };
    let message = body.children.first();
    let operation = message
        .filter(|m| m.namespace.as_deref() == Some(NAMESPACE))
        .and_then(|m| {
            Operation::ALL
                .into_iter()
                .find(|op| op.request_element() == m.local_name)
        });
    let Some(operation) = operation else {
        // The body element is not one we know; an action we know still says which operation
        // the client meant, so it gets that operation's InvalidRequest.
        return Err(match action.and_then(Operation::from_request_action) {
            Some(operation) => SoapRequestError::InvalidRequest {
                version,
                operation,
                problem: RequestProblem::MissingElement(operation.request_element()),
            },
            None => SoapRequestError::UnknownOperation {
                version,
                element: message.map(|m| xml::snippet(&m.local_name)),
                action: action.map(xml::snippet),
            },
        });
    };
    let message = message.expect("an operation was found in it");
    let invalid = |problem| SoapRequestError::InvalidRequest {
        version,
        operation,
        problem,
    };
    let request = one_child(message, "Request").map_err(invalid)?;
    let settings = requested_settings(request).map_err(invalid)?;
    let body = match operation {
        Operation::GetUserSettings => {
            let users = one_child(request, "Users").map_err(invalid)?;
            let count = users.children_named(NAMESPACE, "User").count();
            if count == 0 {
                return Err(invalid(RequestProblem::Empty("Users")));
            }
            if count > MAX_USERS {
                return Err(invalid(RequestProblem::TooMany {
                    element: "Users",
                    count,
                    limit: MAX_USERS,
                }));
            }
            // Users are not merged like settings: answers match users by position.
            let mailboxes: Vec<String> = users
                .children_named(NAMESPACE, "User")
                .map(|user| text(one_child(user, "Mailbox")?, "Mailbox"))
                .collect::<Result<_, _>>()
                .map_err(invalid)?;
            check_answers(mailboxes.len(), settings.len()).map_err(invalid)?;
            SoapRequestBody::GetUserSettings(GetUserSettingsRequest {
                mailboxes,
                settings,
            })
        }
        Operation::GetDomainSettings => {
            let domains = list(request, "Domains", "Domain", MAX_DOMAINS, true).map_err(invalid)?;
            check_answers(domains.len(), settings.len()).map_err(invalid)?;
            let requested_version = match request.child(NAMESPACE, "RequestedVersion") {
                Ok(Some(element)) => Some(text(element, "RequestedVersion").map_err(invalid)?)
                    .filter(|v| !v.is_empty()),
                Ok(None) => None,
                Err(_) => {
                    return Err(invalid(RequestProblem::DuplicateElement(
                        "RequestedVersion",
                    )));
                }
            };
            SoapRequestBody::GetDomainSettings(GetDomainSettingsRequest {
                domains,
                settings,
                requested_version,
            })
        }
    };
    Ok(SoapRequest {
        version,
        requested_server_version: requested_server_version.map(str::to_owned),
        body,
    })
}

fn one_child<'a>(parent: &'a Element, name: &'static str) -> Result<&'a Element, RequestProblem> {
    parent
        .child(NAMESPACE, name)
        .map_err(|_| RequestProblem::DuplicateElement(name))?
        .ok_or(RequestProblem::MissingElement(name))
}

fn text(element: &Element, name: &'static str) -> Result<String, RequestProblem> {
    element
        .leaf_text()
        .map(str::to_owned)
        .ok_or(RequestProblem::NotText(name))
}

/// The `RequestedSettings`: each name once (the first spelling of names that differ only in
/// case), at most [`MAX_SETTINGS`] of them, none longer than [`MAX_SETTING_NAME_BYTES`].
fn requested_settings(request: &Element) -> Result<Vec<String>, RequestProblem> {
    let container = one_child(request, "RequestedSettings")?;
    let mut seen = HashSet::new();
    let mut settings = Vec::new();
    for element in container.children_named(NAMESPACE, "Setting") {
        let name = text(element, "Setting")?;
        if name.len() > MAX_SETTING_NAME_BYTES {
            return Err(RequestProblem::TooLong {
                element: "Setting",
                length: name.len(),
                limit: MAX_SETTING_NAME_BYTES,
            });
        }
        if seen.insert(name.to_ascii_lowercase()) {
            settings.push(name);
        }
    }
    if settings.len() > MAX_SETTINGS {
        return Err(RequestProblem::TooMany {
            element: "RequestedSettings",
            count: settings.len(),
            limit: MAX_SETTINGS,
        });
    }
    Ok(settings)
}

/// Refuses a request whose answer would hold more than [`MAX_ANSWERS`] settings.
fn check_answers(targets: usize, settings: usize) -> Result<(), RequestProblem> {
    if targets.saturating_mul(settings) > MAX_ANSWERS {
        return Err(RequestProblem::TooManyAnswers {
            targets,
            settings,
            limit: MAX_ANSWERS,
        });
    }
    Ok(())
}

/// The texts of the `item` children of the one `container` child of `parent`.
fn list(
    parent: &Element,
    container: &'static str,
    item: &'static str,
    limit: usize,
    required: bool,
) -> Result<Vec<String>, RequestProblem> {
    let container_element = one_child(parent, container)?;
    let items: Vec<String> = container_element
        .children_named(NAMESPACE, item)
        .map(|element| text(element, item))
        .collect::<Result<_, _>>()?;
    if required && items.is_empty() {
        return Err(RequestProblem::Empty(container));
    }
    if items.len() > limit {
        return Err(RequestProblem::TooMany {
            element: container,
            count: items.len(),
            limit,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A realistic profile with every endpoint set, as a hoster running the whole suite has it.
    fn full_profile() -> crate::ServiceProfile {
        let mut profile = crate::ServiceProfile::default_for_hoster("mail-hosting-company.example");
        profile.pop3 = vec![profile.imap[0].clone()];
        profile.pop3[0].port = 995;
        profile.activesync_url =
            Some("https://mail.mail-hosting-company.example/Microsoft-Server-ActiveSync".into());
        let ews = profile.ews.as_mut().expect("the default profile has EWS");
        ews.um_url =
            Some("https://mail.mail-hosting-company.example/UnifiedMessaging/Service.asmx".into());
        ews.ecp_url =
            Some("https://mail.mail-hosting-company.example/ecp/?mailbox=%EMAILADDRESS%".into());
        ews.owa_url =
            Some("https://mail.mail-hosting-company.example/owa/?user=%EMAILADDRESS%".into());
        ews.mailbox_server = Some("mailbox-server-01.mail-hosting-company.example".into());
        ews.rpc_http_server = Some("outlook-anywhere.mail-hosting-company.example".into());
        ews.auth_package = Some("negotiate".into());
        profile
    }

    #[test]
    fn soap_paths() {
        for path in [
            "/autodiscover/autodiscover.svc",
            "/AutoDiscover/AutoDiscover.SVC",
            "/autodiscover/autodiscover.svc/WSSecurity",
            "/autodiscover/autodiscover.svc/",
        ] {
            assert!(is_path(path), "{path}");
        }
        for path in [
            "/autodiscover/autodiscover.svcx",
            "/autodiscover/autodiscover.svc/other",
            "/autodiscover/autodiscover.sv",
        ] {
            assert!(!is_path(path), "{path}");
        }
    }

    fn envelope_for(mailboxes: &[String], settings: &[String]) -> String {
        let users: String = mailboxes
            .iter()
            .map(|m| format!("<a:User><a:Mailbox>{m}</a:Mailbox></a:User>"))
            .collect();
        let settings: String = settings
            .iter()
            .map(|s| format!("<a:Setting>{s}</a:Setting>"))
            .collect();
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="{NAMESPACE}"><s:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users>{users}</a:Users><a:RequestedSettings>{settings}</a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></s:Body></s:Envelope>"#
        )
    }

    /// The answer the server renders: every mailbox hosted with the full profile and a long
    /// display name, every requested setting answered.
    fn rendered_answer(request: &SoapRequest) -> String {
        let SoapRequestBody::GetUserSettings(users) = &request.body else {
            panic!("a GetUserSettings request")
        };
        let profile = std::sync::Arc::new(full_profile());
        let responses = users
            .mailboxes
            .iter()
            .map(|mailbox| {
                let address = crate::EmailAddress::parse(mailbox).expect("a valid mailbox");
                let mut account = crate::AccountSettings::new(address, profile.clone());
                account.display_name = Some("D".repeat(64));
                settings::user_response(&crate::Answer::Settings(account), &users.settings)
            })
            .collect();
        SoapResponse::new(
            request.version,
            SoapResponseBody::GetUserSettings(GetUserSettingsResponse::new(responses)),
        )
        .to_xml()
    }

    /// Issue 10: 100 mailboxes times 1,400 setting names gave a 36 MB answer. Whatever the
    /// request, the answer now stays under 1 MB: the largest accepted shapes are rendered here.
    #[test]
    fn worst_accepted_request_has_a_small_answer() {
        const LIMIT: usize = 1_000_000;
        let mailbox = |i: usize| format!("{}{i:03}@mail-hosting-company.example", "u".repeat(60));
        // The settings with the longest values, then the rest of the schema's names.
        let mut known: Vec<String> = [
            "ExternalImap4Connections",
            "InternalImap4Connections",
            "ExternalPop3Connections",
            "InternalPop3Connections",
            "ExternalSmtpConnections",
            "InternalSmtpConnections",
            "ExternalWebClientUrls",
            "InternalWebClientUrls",
        ]
        .map(String::from)
        .to_vec();
        let rest: Vec<String> = settings::USER_SETTINGS
            .iter()
            .map(|s| (*s).to_owned())
            .filter(|s| !known.contains(s))
            .collect();
        known.extend(rest);
        let unknown = |i: usize| format!("{i:04}{}", "x".repeat(MAX_SETTING_NAME_BYTES - 4));
        let every_known_name = MAX_ANSWERS / known.len();
        let shapes: [(usize, Vec<String>); 4] = [
            // One user, every known name and unknown ones up to the settings cap.
            (
                1,
                known
                    .iter()
                    .cloned()
                    .chain((0..).map(unknown))
                    .take(MAX_SETTINGS)
                    .collect(),
            ),
            // All users, the largest values.
            (MAX_USERS, known[..MAX_ANSWERS / MAX_USERS].to_vec()),
            // All users, the longest unknown names (each echoed once per user).
            (
                MAX_USERS,
                (0..MAX_ANSWERS / MAX_USERS).map(unknown).collect(),
            ),
            // Every known name, for as many users as the answer cap allows.
            (every_known_name, known.clone()),
        ];
        for (users, names) in shapes {
            let mailboxes: Vec<String> = (0..users).map(mailbox).collect();
            let request = parse_request(envelope_for(&mailboxes, &names).as_bytes())
                .unwrap_or_else(|e| panic!("{users} users x {} settings: {e}", names.len()));
            let size = rendered_answer(&request).len();
            eprintln!("{users} users x {} settings: {size} bytes", names.len());
            assert!(size < LIMIT, "{users} x {}: {size} bytes", names.len());
        }
    }

    #[test]
    fn settings_are_merged_and_capped() {
        let mailboxes = vec!["a@example.org".to_owned()];
        let names: Vec<String> = ["ExternalEwsUrl", "externalewsurl", "Bogus", "BOGUS"]
            .map(String::from)
            .to_vec();
        let request = parse_request(envelope_for(&mailboxes, &names).as_bytes()).unwrap();
        let SoapRequestBody::GetUserSettings(users) = request.body else {
            panic!("a GetUserSettings request")
        };
        assert_eq!(users.settings, ["ExternalEwsUrl", "Bogus"]);

        let problem = |mailboxes: &[String], names: &[String]| match parse_request(
            envelope_for(mailboxes, names).as_bytes(),
        ) {
            Err(SoapRequestError::InvalidRequest {
                operation: Operation::GetUserSettings,
                problem,
                ..
            }) => problem,
            other => panic!("not refused as InvalidRequest: {other:?}"),
        };
        // 1,400 names that differ only in case are one name; 1,400 different ones are too many.
        let same: Vec<String> = (0..1_400)
            .map(|i| if i % 2 == 0 { "UserDN" } else { "userdn" }.to_owned())
            .collect();
        assert!(parse_request(envelope_for(&mailboxes, &same).as_bytes()).is_ok());
        // The attack from issue 10: 100 mailboxes, 1,400 setting names.
        let users: Vec<String> = (0..MAX_USERS)
            .map(|i| format!("u{i}@example.org"))
            .collect();
        let attack: Vec<String> = (0..1_400).map(|i| format!("S{i}")).collect();
        assert!(matches!(
            problem(&users, &attack),
            RequestProblem::TooMany { count: 1_400, .. }
        ));
        let many: Vec<String> = (0..=MAX_SETTINGS).map(|i| format!("S{i}")).collect();
        assert_eq!(
            problem(&mailboxes, &many),
            RequestProblem::TooMany {
                element: "RequestedSettings",
                count: MAX_SETTINGS + 1,
                limit: MAX_SETTINGS
            }
        );
        let long = vec!["x".repeat(MAX_SETTING_NAME_BYTES + 1)];
        assert!(matches!(
            problem(&mailboxes, &long),
            RequestProblem::TooLong {
                element: "Setting",
                ..
            }
        ));
        let per_user = MAX_ANSWERS / MAX_USERS;
        let names: Vec<String> = (0..=per_user).map(|i| format!("S{i}")).collect();
        assert_eq!(
            problem(&users, &names),
            RequestProblem::TooManyAnswers {
                targets: MAX_USERS,
                settings: per_user + 1,
                limit: MAX_ANSWERS
            }
        );
        assert!(parse_request(envelope_for(&users, &names[..per_user]).as_bytes()).is_ok());
    }

    #[test]
    fn actions_name_operations_in_either_scheme() {
        assert_eq!(
            Operation::from_request_action(Operation::GetUserSettings.request_action()),
            Some(Operation::GetUserSettings)
        );
        assert_eq!(
            Operation::from_request_action(
                " https://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetDomainSettings\n"
            ),
            Some(Operation::GetDomainSettings)
        );
        assert_eq!(
            Operation::from_request_action("urn:x/GetUserSettings"),
            None
        );
        assert_eq!(
            Operation::from_request_action(&format!("{ACTION_PREFIX}GetFederationInformation")),
            None
        );
    }

    #[test]
    fn requests_round_trip_in_both_versions() {
        for version in [SoapVersion::Soap11, SoapVersion::Soap12] {
            let mut request =
                SoapRequest::get_user_settings("a&b@example.org", &["ExternalEwsUrl", "<x>"]);
            request.version = version;
            assert_eq!(parse_request(request.to_xml().as_bytes()), Ok(request));
        }
        let request = SoapRequest {
            version: SoapVersion::Soap11,
            requested_server_version: None,
            body: SoapRequestBody::GetDomainSettings(GetDomainSettingsRequest {
                domains: vec!["example.org".into()],
                settings: vec![],
                requested_version: Some("Exchange2010".into()),
            }),
        };
        assert_eq!(parse_request(request.to_xml().as_bytes()), Ok(request));
    }

    #[test]
    fn bad_requests_say_how_to_answer() {
        let envelope = |body: &str| {
            format!(
                r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="{NAMESPACE}" xmlns:w="{ADDRESSING_NAMESPACE}"><s:Header><w:Action>{ACTION_PREFIX}GetUserSettings</w:Action></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
            )
        };
        let error = parse_request(envelope("<a:Nothing/>").as_bytes()).unwrap_err();
        assert_eq!(error.operation(), Some(Operation::GetUserSettings));
        let error = parse_request(
            envelope("<a:GetUserSettingsRequestMessage><a:Request><a:Users/><a:RequestedSettings/></a:Request></a:GetUserSettingsRequestMessage>")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(
            error,
            SoapRequestError::InvalidRequest {
                problem: RequestProblem::Empty("Users"),
                ..
            }
        ));
        let error = parse_request(b"<Autodiscover/>").unwrap_err();
        assert_eq!(
            (error.operation(), error.version()),
            (None, SoapVersion::Soap11)
        );
        let error = parse_request(
            br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x/></s:Body></s:Envelope>"#,
        )
        .unwrap_err();
        assert_eq!(
            (error.operation(), error.version()),
            (None, SoapVersion::Soap12)
        );
        let many: String = (0..=MAX_USERS)
            .map(|i| format!("<a:User><a:Mailbox>u{i}@example.org</a:Mailbox></a:User>"))
            .collect();
        let error = parse_request(
            envelope(&format!("<a:GetUserSettingsRequestMessage><a:Request><a:Users>{many}</a:Users><a:RequestedSettings/></a:Request></a:GetUserSettingsRequestMessage>"))
                .as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(
            error,
            SoapRequestError::InvalidRequest {
                problem: RequestProblem::TooMany { count: 101, .. },
                ..
            }
        ));
    }
}
