//! The ActiveSync ("mobilesync") AutoDiscover dialect ([MS-ASCMD] 2.2.1.1, schemas in 6.2-6.4).
//!
//! Devices post to the same URL as Outlook, with the request in [`REQUEST_NAMESPACE`]; the answer
//! is an `Autodiscover` root holding a `Response` in [`RESPONSE_SCHEMA`].
//!
//! How autodisco answers:
//!
//! | [`Answer`]                                  | response                                   |
//! |---------------------------------------------|--------------------------------------------|
//! | `Settings`, profile has `activesync_url`    | `Action`/`Settings`/`Server` (`MobileSync`) |
//! | `Settings`, no ActiveSync endpoint          | `Error` 601: no provider for this service   |
//! | `RedirectAddr`                              | `Action`/`Redirect` with the address        |
//! | `RedirectUrl`                               | `Error` 601: mobilesync cannot redirect to a URL |
//! | `NotHosted`                                 | `Error` 500, as in the Outlook dialect      |
//!
//! Errors are the `Response`-level `Error` with `Time` and `Id` ([MS-ASCMD] 2.2.3.63); the
//! `Action`-level form (`Status`, ...) is decoded for clients but never sent.

use crate::address::EmailAddress;
use crate::answer::Answer;
use crate::autodiscover_error::{AutodiscoverError, ErrorCode, ErrorStamp};
use crate::decode_error::{self, DecodeError};
use crate::pox::{self, RESPONSE_ROOT_NAMESPACE};
use crate::profile::ServiceProfile;
use crate::xml::{self, Element, XmlWriter};
use crate::xml_request::{Dialect, RequestError, RequestReader};

/// Namespace of mobilesync requests ([MS-ASCMD] 6.3).
pub const REQUEST_NAMESPACE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006";

/// The mobilesync response schema: the only value `AcceptableResponseSchema` may carry
/// ([MS-ASCMD] 2.2.3.1) and the namespace of the response's `Response` element (6.2).
pub const RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";

/// The `Culture` autodisco sends ([MS-ASCMD] 2.2.3.38): messages are in US English.
pub const CULTURE: &str = "en:us";

/// A mobilesync AutoDiscover request ([MS-ASCMD] 2.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileSyncRequest {
    /// `EMailAddress`, validated.
    pub email_address: EmailAddress,
}

impl MobileSyncRequest {
    /// Encodes the request document a device posts.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.start("Autodiscover", &[("xmlns", REQUEST_NAMESPACE)]);
        writer.start("Request", &[]);
        writer.leaf("EMailAddress", &self.email_address.to_string());
        writer.leaf("AcceptableResponseSchema", RESPONSE_SCHEMA);
        writer.finish()
    }

    /// Reads the request under an `Autodiscover` root already known to be in
    /// [`REQUEST_NAMESPACE`].
    pub(crate) fn from_root(root: &Element) -> Result<Self, RequestError> {
        let dialect = Dialect::MobileSync;
        let reader = RequestReader::new(root, dialect, REQUEST_NAMESPACE)?;
        let email_address = reader.text("EMailAddress")?;
        reader.check_schema(RESPONSE_SCHEMA)?;
        let email_address = email_address.ok_or(RequestError::NoAddress { dialect })?;
        let email_address = EmailAddress::parse(email_address)
            .map_err(|source| RequestError::InvalidAddress { dialect, source })?;
        Ok(Self { email_address })
    }
}

/// Renders the mobilesync response for the directory's answer (see the module docs).
pub fn render_answer(answer: &Answer, stamp: &ErrorStamp) -> String {
    MobileSyncResponse::from_answer(answer, stamp).to_xml()
}

/// Renders a mobilesync error response with `code`'s fixed message and empty `DebugData`.
pub fn render_error(code: ErrorCode, stamp: &ErrorStamp) -> String {
    MobileSyncResponse::Error(AutodiscoverError::new(code, stamp)).to_xml()
}

/// A mobilesync AutoDiscover response, as rendered or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MobileSyncResponse {
    /// A response with an `Action` ([MS-ASCMD] 2.2.3.6).
    Action {
        /// `Culture`, such as `en:us`.
        culture: Option<String>,
        /// `User`.
        user: Option<MobileSyncUser>,
        /// What the device should do.
        action: MobileSyncAction,
    },
    /// A `Response`-level `Error` (600, 601, ...).
    Error(AutodiscoverError),
}

/// The `User` element ([MS-ASCMD] 2.2.3.190).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileSyncUser {
    /// `DisplayName`.
    pub display_name: Option<String>,
    /// `EMailAddress`: the primary address of the mailbox.
    pub email_address: String,
}

/// The content of `Action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MobileSyncAction {
    /// `Settings`: one entry per `Server` element.
    Settings(Vec<MobileSyncServer>),
    /// `Redirect`: ask again with this address's domain ([MS-ASCMD] 2.2.3.147).
    Redirect(EmailAddress),
    /// An `Action`-level `Error`.
    Error(ActionError),
}

/// One `Server` element ([MS-ASCMD] 2.2.3.164).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileSyncServer {
    /// `Type`.
    pub server_type: MobileSyncServerType,
    /// `Url`.
    pub url: String,
    /// `Name`: for `MobileSync`, the URL again ([MS-ASCMD] 2.2.3.120.1).
    pub name: Option<String>,
    /// `ServerData` (`CertEnroll` servers).
    pub server_data: Option<String>,
}

/// The `Type` of a `Server` ([MS-ASCMD] 2.2.3.186.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MobileSyncServerType {
    /// `MobileSync`: the ActiveSync endpoint.
    MobileSync,
    /// `CertEnroll`: where to obtain a client certificate.
    CertEnroll,
    /// A type this crate does not know, as received.
    Other(String),
}

impl MobileSyncServerType {
    /// The value written for this type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MobileSync => "MobileSync",
            Self::CertEnroll => "CertEnroll",
            Self::Other(other) => other,
        }
    }

    /// The type for a received value; known names match in any case.
    pub fn parse(value: &str) -> Self {
        [Self::MobileSync, Self::CertEnroll]
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(value))
            .unwrap_or_else(|| Self::Other(value.to_owned()))
    }
}

/// An `Error` under `Action` ([MS-ASCMD] 2.2.3.63): every child optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionError {
    /// `Status` ([MS-ASCMD] 2.2.3.177.1): 2 is a protocol error.
    pub status: Option<u32>,
    /// `Message`.
    pub message: Option<String>,
    /// `DebugData`.
    pub debug_data: Option<String>,
    /// `ErrorCode` ([MS-ASCMD] 2.2.3.64).
    pub error_code: Option<u32>,
}

impl MobileSyncResponse {
    /// The response for the directory's answer (see the module docs for the mapping).
    pub fn from_answer(answer: &Answer, stamp: &ErrorStamp) -> Self {
        let error = |code| Self::Error(AutodiscoverError::new(code, stamp));
        match answer {
            Answer::Settings(settings) => match activesync_url(&settings.profile) {
                Some(url) => {
                    let url = settings.url(url);
                    Self::Action {
                        culture: Some(CULTURE.to_owned()),
                        user: Some(MobileSyncUser {
                            display_name: settings.display_name.clone(),
                            email_address: settings.address.to_string(),
                        }),
                        action: MobileSyncAction::Settings(vec![MobileSyncServer {
                            server_type: MobileSyncServerType::MobileSync,
                            name: Some(url.clone()),
                            url,
                            server_data: None,
                        }]),
                    }
                }
                // The account exists but no ActiveSync service does: no provider (601).
                None => error(ErrorCode::ProviderUnavailable),
            },
            Answer::RedirectAddr(address) => Self::Action {
                culture: Some(CULTURE.to_owned()),
                user: None,
                action: MobileSyncAction::Redirect(address.clone()),
            },
            // The schema redirects by address only; a URL cannot be expressed.
            Answer::RedirectUrl(_) => error(ErrorCode::ProviderUnavailable),
            Answer::NotHosted => error(ErrorCode::NotHosted),
        }
    }

    /// Encodes the response document.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.start("Autodiscover", &[("xmlns", RESPONSE_ROOT_NAMESPACE)]);
        writer.start("Response", &[("xmlns", RESPONSE_SCHEMA)]);
        match self {
            Self::Error(error) => error.write(&mut writer),
            Self::Action {
                culture,
                user,
                action,
            } => {
                writer.optional_leaf("Culture", culture.as_deref());
                if let Some(user) = user {
                    writer.start("User", &[]);
                    writer.optional_leaf("DisplayName", user.display_name.as_deref());
                    writer.leaf("EMailAddress", &user.email_address);
                    writer.end();
                }
                writer.start("Action", &[]);
                match action {
                    MobileSyncAction::Settings(servers) => {
                        writer.start("Settings", &[]);
                        for server in servers {
                            writer.start("Server", &[]);
                            writer.leaf("Type", server.server_type.as_str());
                            writer.leaf("Url", &server.url);
                            writer.optional_leaf("Name", server.name.as_deref());
                            writer.optional_leaf("ServerData", server.server_data.as_deref());
                            writer.end();
                        }
                        writer.end();
                    }
                    MobileSyncAction::Redirect(address) => {
                        writer.leaf("Redirect", &address.to_string());
                    }
                    MobileSyncAction::Error(error) => {
                        writer.start("Error", &[]);
                        writer.optional_leaf(
                            "Status",
                            error.status.map(|s| s.to_string()).as_deref(),
                        );
                        writer.optional_leaf("Message", error.message.as_deref());
                        writer.optional_leaf("DebugData", error.debug_data.as_deref());
                        writer.optional_leaf(
                            "ErrorCode",
                            error.error_code.map(|c| c.to_string()).as_deref(),
                        );
                        writer.end();
                    }
                }
                writer.end();
            }
        }
        writer.finish()
    }

    /// Decodes a response document (the client side).
    ///
    /// A `Response` holding only an `Error` is accepted in the mobilesync schema or in the root
    /// namespace ([MS-ASCMD] 6.4 allows both).
    pub fn from_xml(body: &[u8]) -> Result<Self, DecodeError> {
        use decode_error::{optional_child, optional_text, parse_value, required_child};
        let root = xml::parse_document(body)?;
        if !root.is(RESPONSE_ROOT_NAMESPACE, "Autodiscover") {
            return Err(DecodeError::unexpected_root(&root));
        }
        let (response, ns) =
            pox::find_response(&root, &[RESPONSE_SCHEMA, RESPONSE_ROOT_NAMESPACE])?;
        if let Some(error) = optional_child(response, ns, "Error")? {
            return AutodiscoverError::read(error, ns).map(Self::Error);
        }
        let culture = optional_text(response, ns, "Culture")?;
        let user = optional_child(response, ns, "User")?
            .map(|user| {
                Ok::<_, DecodeError>(MobileSyncUser {
                    display_name: optional_text(user, ns, "DisplayName")?,
                    email_address: decode_error::required_text(user, ns, "EMailAddress")?,
                })
            })
            .transpose()?;
        let action = required_child(response, ns, "Action")?;
        // `Action` allows its children in any order; an error wins, then a redirect.
        let action = if let Some(error) = optional_child(action, ns, "Error")? {
            let number = |name| {
                optional_text(error, ns, name)?
                    .map(|value| parse_value(name, &value))
                    .transpose()
            };
            MobileSyncAction::Error(ActionError {
                status: number("Status")?,
                message: optional_text(error, ns, "Message")?,
                debug_data: optional_text(error, ns, "DebugData")?,
                error_code: number("ErrorCode")?,
            })
        } else if let Some(redirect) = optional_text(action, ns, "Redirect")? {
            MobileSyncAction::Redirect(decode_error::parse_address("Redirect", &redirect)?)
        } else {
            let settings = required_child(action, ns, "Settings")?;
            let servers = settings
                .children_named(ns, "Server")
                .map(|server| {
                    Ok(MobileSyncServer {
                        server_type: MobileSyncServerType::parse(&decode_error::required_text(
                            server, ns, "Type",
                        )?),
                        url: decode_error::required_text(server, ns, "Url")?,
                        name: optional_text(server, ns, "Name")?,
                        server_data: optional_text(server, ns, "ServerData")?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?;
            MobileSyncAction::Settings(servers)
        };
        Ok(Self::Action {
            culture,
            user,
            action,
        })
    }
}

/// The one profile field mobilesync renders ([MS-ASCMD] 2.2.3.166.1). Every field is named: a
/// new one does not compile here until this dialect decides whether it has a place for it.
fn activesync_url(profile: &ServiceProfile) -> &Option<String> {
    let ServiceProfile {
        activesync_url,
        display_name: _,
        imap: _,
        pop3: _,
        smtp: _,
        ews: _,
        mapi_http: _,
        documentation_url: _,
    } = profile;
    activesync_url
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::answer::AccountSettings;
    use crate::profile::ServiceProfile;

    /// The request under its root, as the dispatcher (`request::parse_request`) hands it over.
    fn parse_request(body: &[u8]) -> Result<MobileSyncRequest, RequestError> {
        MobileSyncRequest::from_root(&xml::parse_document(body)?)
    }

    fn settings(activesync: bool) -> AccountSettings {
        let mut profile = ServiceProfile::default_for_hoster("hoster.example");
        if activesync {
            profile.activesync_url =
                Some("https://eas.hoster.example/Microsoft-Server-ActiveSync".into());
        }
        let mut settings = AccountSettings::new(
            EmailAddress::parse("chris@a.example").unwrap(),
            Arc::new(profile),
        );
        settings.display_name = Some("Chris & Co".into());
        settings
    }

    #[test]
    fn request_needs_address_and_schema() {
        let body = |inner: &str| {
            format!(
                r#"<Autodiscover xmlns="{REQUEST_NAMESPACE}"><Request>{inner}</Request></Autodiscover>"#
            )
        };
        let schema =
            format!("<AcceptableResponseSchema>{RESPONSE_SCHEMA}</AcceptableResponseSchema>");
        let error = parse_request(body(&schema).as_bytes()).unwrap_err();
        assert_eq!(
            error,
            RequestError::NoAddress {
                dialect: Dialect::MobileSync
            }
        );
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
        let error =
            parse_request(body("<EMailAddress>a@b.example</EMailAddress>").as_bytes()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
        let error = parse_request(
            body(&format!(
                "<EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>{}</AcceptableResponseSchema>",
                pox::RESPONSE_SCHEMA
            ))
            .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(error.code(), ErrorCode::ProviderUnavailable);
    }

    #[test]
    fn answers_map_as_documented() {
        let stamp = ErrorStamp::new("16:56:32.61", 1054084152);
        let code = |answer: &Answer| match MobileSyncResponse::from_answer(answer, &stamp) {
            MobileSyncResponse::Error(error) => Some(error.code),
            MobileSyncResponse::Action { .. } => None,
        };
        assert_eq!(code(&Answer::Settings(settings(true))), None);
        assert_eq!(
            code(&Answer::Settings(settings(false))),
            Some(ErrorCode::ProviderUnavailable)
        );
        assert_eq!(
            code(&Answer::RedirectUrl("https://x.example/".into())),
            Some(ErrorCode::ProviderUnavailable)
        );
        assert_eq!(code(&Answer::NotHosted), Some(ErrorCode::NotHosted));
        let MobileSyncResponse::Action { action, user, .. } =
            MobileSyncResponse::from_answer(&Answer::Settings(settings(true)), &stamp)
        else {
            panic!("not an action")
        };
        assert_eq!(user.unwrap().email_address, "chris@a.example");
        let MobileSyncAction::Settings(servers) = action else {
            panic!("not settings")
        };
        assert_eq!(servers[0].server_type, MobileSyncServerType::MobileSync);
        assert_eq!(servers[0].name.as_deref(), Some(servers[0].url.as_str()));
    }

    #[test]
    fn responses_round_trip() {
        let stamp = ErrorStamp::new("16:56:32.61", 1054084152);
        let mut responses: Vec<MobileSyncResponse> = [
            Answer::Settings(settings(true)),
            Answer::Settings(settings(false)),
            Answer::RedirectAddr(EmailAddress::parse("chris@b.example").unwrap()),
            Answer::NotHosted,
        ]
        .iter()
        .map(|answer| MobileSyncResponse::from_answer(answer, &stamp))
        .collect();
        responses.push(MobileSyncResponse::Action {
            culture: None,
            user: None,
            action: MobileSyncAction::Error(ActionError {
                status: Some(2),
                message: Some("directory <down>".into()),
                debug_data: Some(String::new()),
                error_code: None,
            }),
        });
        for response in responses {
            let xml = response.to_xml();
            assert!(xml.starts_with(xml::XML_DECLARATION));
            assert_eq!(
                MobileSyncResponse::from_xml(xml.as_bytes()).unwrap(),
                response,
                "{xml}"
            );
        }
    }
}
