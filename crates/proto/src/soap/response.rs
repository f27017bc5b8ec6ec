//! SOAP Autodiscover responses ([MS-OXWSADISC] 3.1.4.1.2.3, 3.1.4.2.2.3): types, encoder and
//! decoder.
//!
//! Shape of every answer autodisco writes:
//!
//! - the SOAP header carries the response's WS-Addressing `Action` and `ServerVersionInfo`
//!   (exchangelib reads the server's version from it and complains without it);
//! - `Response` holds `ErrorCode` and `ErrorMessage` for the request as a whole, and each
//!   `UserResponse` (or `DomainResponse`) its own `ErrorCode`, `ErrorMessage`, `RedirectTarget`,
//!   setting errors and settings;
//! - each `UserSetting` carries its `i:type` (`StringSetting`,
//!   `ProtocolConnectionCollectionSetting`, `WebClientUrlCollectionSetting`), written with an
//!   unprefixed value because the EWS Managed API compares the attribute text as is.

use crate::decode_error::{self, DecodeError};
use crate::xml::{self, Element, XmlWriter};

use super::{ADDRESSING_NAMESPACE, NAMESPACE, Operation, SoapVersion, XSI_NAMESPACE};

/// The newest EWS schema autodisco announces. Exchange2019 does not exist as a schema name and
/// at least one popular library (exchangelib) refuses versions it does not know.
pub const NEWEST_EWS_SCHEMA: &str = "Exchange2016";

/// The WS-Addressing action of a fault.
pub const FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/soap/fault";

/// An `ErrorCode` value ([MS-OXWSADISC] 2.2.5.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SoapErrorCode {
    /// `NoError`.
    NoError,
    /// `RedirectAddress`: ask again for the address in `RedirectTarget`.
    RedirectAddress,
    /// `RedirectUrl`: ask the Autodiscover URL in `RedirectTarget`.
    RedirectUrl,
    /// `InvalidUser`: the address is not served here.
    InvalidUser,
    /// `InvalidRequest`: the request is not valid.
    InvalidRequest,
    /// `InvalidSetting`: a requested setting name is unknown.
    InvalidSetting,
    /// `SettingIsNotAvailable`: a known setting the user's profile does not have.
    SettingIsNotAvailable,
    /// `ServerBusy`.
    ServerBusy,
    /// `InvalidDomain`: the domain is not served here.
    InvalidDomain,
    /// `NotFederated`.
    NotFederated,
    /// `InternalServerError`.
    InternalServerError,
    /// A code this crate does not know, as received.
    Other(String),
}

impl SoapErrorCode {
    const KNOWN: [Self; 11] = [
        Self::NoError,
        Self::RedirectAddress,
        Self::RedirectUrl,
        Self::InvalidUser,
        Self::InvalidRequest,
        Self::InvalidSetting,
        Self::SettingIsNotAvailable,
        Self::ServerBusy,
        Self::InvalidDomain,
        Self::NotFederated,
        Self::InternalServerError,
    ];

    /// The value written for this code.
    pub fn as_str(&self) -> &str {
        match self {
            Self::NoError => "NoError",
            Self::RedirectAddress => "RedirectAddress",
            Self::RedirectUrl => "RedirectUrl",
            Self::InvalidUser => "InvalidUser",
            Self::InvalidRequest => "InvalidRequest",
            Self::InvalidSetting => "InvalidSetting",
            Self::SettingIsNotAvailable => "SettingIsNotAvailable",
            Self::ServerBusy => "ServerBusy",
            Self::InvalidDomain => "InvalidDomain",
            Self::NotFederated => "NotFederated",
            Self::InternalServerError => "InternalServerError",
            Self::Other(other) => other,
        }
    }

    /// The code for a received value.
    pub fn parse(value: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|code| code.as_str() == value)
            .unwrap_or_else(|| Self::Other(value.to_owned()))
    }

    /// The fixed `ErrorMessage` autodisco sends with this code: nothing from the request is
    /// echoed.
    pub fn message(&self) -> &'static str {
        match self {
            Self::NoError => "No error.",
            Self::RedirectAddress => "Redirection address.",
            Self::RedirectUrl => "Redirection URL.",
            Self::InvalidUser => "Invalid user.",
            Self::InvalidRequest => "The request is invalid.",
            Self::InvalidSetting => "The requested setting is invalid.",
            Self::SettingIsNotAvailable => "The requested setting is not available for this user.",
            Self::ServerBusy => "The server is busy.",
            Self::InvalidDomain => "Invalid domain.",
            Self::NotFederated => "The domain is not federated.",
            Self::InternalServerError => "The server had an internal error.",
            Self::Other(_) => "Unknown error.",
        }
    }
}

/// `ServerVersionInfo` in the SOAP header ([MS-OXWSADISC] 2.2.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersionInfo {
    /// `MajorVersion`.
    pub major_version: u32,
    /// `MinorVersion`.
    pub minor_version: u32,
    /// `MajorBuildNumber`.
    pub major_build_number: u32,
    /// `MinorBuildNumber`.
    pub minor_build_number: u32,
    /// `Version`, such as `Exchange2016`.
    pub version: Option<String>,
}

impl ServerVersionInfo {
    /// What autodisco reports: Exchange 2016 CU23 (15.1.2507.6). Exchange 2016 is the newest
    /// version every EWS library knows; exchangelib, for one, refuses `Exchange2019`.
    pub fn autodisco() -> Self {
        Self {
            major_version: 15,
            minor_version: 1,
            major_build_number: 2507,
            minor_build_number: 6,
            version: Some(NEWEST_EWS_SCHEMA.to_owned()),
        }
    }

    /// The dotted build number (`15.1.2507.6`), as `CasVersion` carries it.
    pub fn build(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.major_version,
            self.minor_version,
            self.major_build_number,
            self.minor_build_number
        )
    }
}

/// A whole response envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapResponse {
    /// The envelope's SOAP version: the request's.
    pub version: SoapVersion,
    /// `ServerVersionInfo` from the header.
    pub server_version: Option<ServerVersionInfo>,
    /// The body.
    pub body: SoapResponseBody,
}

/// The content of a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoapResponseBody {
    /// `GetUserSettingsResponseMessage`.
    GetUserSettings(GetUserSettingsResponse),
    /// `GetDomainSettingsResponseMessage`.
    GetDomainSettings(GetDomainSettingsResponse),
    /// A SOAP fault: the envelope could not be read or names no known operation.
    Fault(SoapFault),
}

/// The `Response` of a `GetUserSettings` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetUserSettingsResponse {
    /// `ErrorCode` of the request as a whole.
    pub error_code: SoapErrorCode,
    /// `ErrorMessage`.
    pub error_message: String,
    /// One `UserResponse` per requested user, in request order.
    pub user_responses: Vec<UserResponse>,
}

impl GetUserSettingsResponse {
    /// A response whose every user was answered: `NoError` at the top.
    pub fn new(user_responses: Vec<UserResponse>) -> Self {
        Self {
            error_code: SoapErrorCode::NoError,
            error_message: String::new(),
            user_responses,
        }
    }

    /// A response that refuses the request as a whole.
    pub fn error(code: SoapErrorCode) -> Self {
        Self {
            error_message: code.message().to_owned(),
            error_code: code,
            user_responses: Vec::new(),
        }
    }
}

/// One `UserResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserResponse {
    /// `ErrorCode` for this user.
    pub error_code: SoapErrorCode,
    /// `ErrorMessage`.
    pub error_message: String,
    /// `RedirectTarget`: an address or a URL, with `RedirectAddress` or `RedirectUrl`.
    pub redirect_target: Option<String>,
    /// `UserSettingErrors`.
    pub setting_errors: Vec<SettingError>,
    /// `UserSettings`.
    pub settings: Vec<UserSetting>,
}

impl UserResponse {
    /// A response that carries only `code`, with its fixed message.
    pub fn error(code: SoapErrorCode) -> Self {
        Self {
            error_message: code.message().to_owned(),
            error_code: code,
            redirect_target: None,
            setting_errors: Vec::new(),
            settings: Vec::new(),
        }
    }

    /// The setting named `name`, if returned.
    pub fn setting(&self, name: &str) -> Option<&SettingValue> {
        self.settings
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.value)
    }

    /// The value of the string setting `name`, if returned.
    pub fn string_setting(&self, name: &str) -> Option<&str> {
        match self.setting(name)? {
            SettingValue::String(value) => Some(value),
            _ => None,
        }
    }
}

/// A `UserSettingError` or `DomainSettingError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// `SettingName`, as requested.
    pub name: String,
    /// `ErrorCode`: `InvalidSetting` or `SettingIsNotAvailable`.
    pub error_code: SoapErrorCode,
    /// `ErrorMessage`.
    pub error_message: String,
}

impl SettingError {
    /// An error for the setting `name` with `code`'s fixed message.
    pub fn new(name: &str, code: SoapErrorCode) -> Self {
        Self {
            name: name.to_owned(),
            error_message: code.message().to_owned(),
            error_code: code,
        }
    }
}

/// One `UserSetting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSetting {
    /// `Name`.
    pub name: String,
    /// The value, typed by the setting's `i:type`.
    pub value: SettingValue,
}

/// The value of a `UserSetting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    /// `StringSetting`: `Value`.
    String(String),
    /// `ProtocolConnectionCollectionSetting`: `ProtocolConnections`.
    ProtocolConnections(Vec<ProtocolConnection>),
    /// `WebClientUrlCollectionSetting`: `WebClientUrls`.
    WebClientUrls(Vec<WebClientUrl>),
}

impl SettingValue {
    fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "StringSetting",
            Self::ProtocolConnections(_) => "ProtocolConnectionCollectionSetting",
            Self::WebClientUrls(_) => "WebClientUrlCollectionSetting",
        }
    }
}

/// One `ProtocolConnection` (an IMAP, POP3 or SMTP server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolConnection {
    /// `Hostname`.
    pub hostname: String,
    /// `Port`.
    pub port: u16,
    /// `EncryptionMethod`: `SSL` (implicit TLS), `TLS` (STARTTLS) or `None`, the same mapping
    /// as POX's `Encryption`.
    pub encryption_method: String,
}

/// One `WebClientUrl` (Outlook on the web).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebClientUrl {
    /// `AuthenticationMethods`, such as `Fba`.
    pub authentication_methods: String,
    /// `Url`.
    pub url: String,
}

/// The `Response` of a `GetDomainSettings` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetDomainSettingsResponse {
    /// `ErrorCode` of the request as a whole.
    pub error_code: SoapErrorCode,
    /// `ErrorMessage`.
    pub error_message: String,
    /// One `DomainResponse` per requested domain, in request order.
    pub domain_responses: Vec<DomainResponse>,
}

impl GetDomainSettingsResponse {
    /// A response whose every domain was answered.
    pub fn new(domain_responses: Vec<DomainResponse>) -> Self {
        Self {
            error_code: SoapErrorCode::NoError,
            error_message: String::new(),
            domain_responses,
        }
    }

    /// A response that refuses the request as a whole.
    pub fn error(code: SoapErrorCode) -> Self {
        Self {
            error_message: code.message().to_owned(),
            error_code: code,
            domain_responses: Vec::new(),
        }
    }
}

/// One `DomainResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainResponse {
    /// `ErrorCode` for this domain.
    pub error_code: SoapErrorCode,
    /// `ErrorMessage`.
    pub error_message: String,
    /// `DomainSettingErrors`.
    pub setting_errors: Vec<SettingError>,
    /// `DomainSettings` (all `DomainStringSetting`).
    pub settings: Vec<DomainSetting>,
    /// `RedirectTarget`.
    pub redirect_target: Option<String>,
}

impl DomainResponse {
    /// A response that carries only `code`, with its fixed message.
    pub fn error(code: SoapErrorCode) -> Self {
        Self {
            error_message: code.message().to_owned(),
            error_code: code,
            setting_errors: Vec::new(),
            settings: Vec::new(),
            redirect_target: None,
        }
    }
}

/// One `DomainSetting` (`DomainStringSetting`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSetting {
    /// `Name`.
    pub name: String,
    /// `Value`.
    pub value: String,
}

/// Who a fault blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultCode {
    /// The request is wrong (`Client` in SOAP 1.1, `Sender` in 1.2).
    Sender,
    /// The server failed (`Server` in SOAP 1.1, `Receiver` in 1.2).
    Receiver,
}

/// A SOAP fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    /// `faultcode` / `Code`.
    pub code: FaultCode,
    /// `faultstring` / `Reason`: a fixed text, never an echo of the request.
    pub reason: String,
}

impl SoapFault {
    /// The fault for a request whose envelope cannot be read.
    pub fn invalid_envelope() -> Self {
        Self {
            code: FaultCode::Sender,
            reason: "The request is not a valid SOAP Autodiscover envelope.".to_owned(),
        }
    }

    /// The fault for an operation autodisco does not offer.
    pub fn action_not_supported() -> Self {
        Self {
            code: FaultCode::Sender,
            reason: "The requested Autodiscover operation is not supported.".to_owned(),
        }
    }
}

impl SoapResponse {
    /// A response in `version` with autodisco's `ServerVersionInfo`.
    pub fn new(version: SoapVersion, body: SoapResponseBody) -> Self {
        Self {
            version,
            server_version: Some(ServerVersionInfo::autodisco()),
            body,
        }
    }

    /// The operation answered; `None` for a fault.
    pub fn operation(&self) -> Option<Operation> {
        match self.body {
            SoapResponseBody::GetUserSettings(_) => Some(Operation::GetUserSettings),
            SoapResponseBody::GetDomainSettings(_) => Some(Operation::GetDomainSettings),
            SoapResponseBody::Fault(_) => None,
        }
    }

    /// Encodes the response envelope.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.start(
            "s:Envelope",
            &[
                ("xmlns:s", self.version.namespace()),
                ("xmlns:a", ADDRESSING_NAMESPACE),
            ],
        );
        writer.start("s:Header", &[]);
        let action = self
            .operation()
            .map_or(FAULT_ACTION, Operation::response_action);
        writer.leaf_with("a:Action", &[("s:mustUnderstand", "1")], action);
        if let Some(info) = &self.server_version {
            writer.start(
                "h:ServerVersionInfo",
                &[("xmlns:h", NAMESPACE), ("xmlns:i", XSI_NAMESPACE)],
            );
            writer.leaf("h:MajorVersion", &info.major_version.to_string());
            writer.leaf("h:MinorVersion", &info.minor_version.to_string());
            writer.leaf("h:MajorBuildNumber", &info.major_build_number.to_string());
            writer.leaf("h:MinorBuildNumber", &info.minor_build_number.to_string());
            writer.optional_leaf("h:Version", info.version.as_deref());
            writer.end();
        }
        writer.end();
        writer.start("s:Body", &[]);
        match &self.body {
            SoapResponseBody::Fault(fault) => write_fault(&mut writer, self.version, fault),
            SoapResponseBody::GetUserSettings(response) => {
                writer.start(
                    Operation::GetUserSettings.response_element(),
                    &[("xmlns", NAMESPACE)],
                );
                writer.start("Response", &[("xmlns:i", XSI_NAMESPACE)]);
                writer.leaf("ErrorCode", response.error_code.as_str());
                writer.leaf("ErrorMessage", &response.error_message);
                start_list(
                    &mut writer,
                    "UserResponses",
                    response.user_responses.is_empty(),
                );
                for user in &response.user_responses {
                    write_user_response(&mut writer, user);
                }
            }
            SoapResponseBody::GetDomainSettings(response) => {
                writer.start(
                    Operation::GetDomainSettings.response_element(),
                    &[("xmlns", NAMESPACE)],
                );
                writer.start("Response", &[("xmlns:i", XSI_NAMESPACE)]);
                writer.leaf("ErrorCode", response.error_code.as_str());
                writer.leaf("ErrorMessage", &response.error_message);
                start_list(
                    &mut writer,
                    "DomainResponses",
                    response.domain_responses.is_empty(),
                );
                for domain in &response.domain_responses {
                    write_domain_response(&mut writer, domain);
                }
            }
        }
        writer.finish()
    }

    /// Decodes a response envelope (the client side).
    pub fn from_xml(body: &[u8]) -> Result<Self, DecodeError> {
        let root = xml::parse_document(body)?;
        let version = SoapVersion::from_namespace(root.namespace.as_deref())
            .filter(|_| root.local_name == "Envelope")
            .ok_or_else(|| DecodeError::unexpected_root(&root))?;
        let envelope_ns = version.namespace();
        let server_version = decode_error::optional_child(&root, envelope_ns, "Header")?
            .map(|header| decode_error::optional_child(header, NAMESPACE, "ServerVersionInfo"))
            .transpose()?
            .flatten()
            .map(read_server_version)
            .transpose()?;
        let body = decode_error::required_child(&root, envelope_ns, "Body")?;
        let message = body.children.first().ok_or(DecodeError::MissingElement {
            element: "GetUserSettingsResponseMessage",
        })?;
        let body = if message.is(envelope_ns, "Fault") {
            SoapResponseBody::Fault(read_fault(message, version)?)
        } else if message.is(NAMESPACE, Operation::GetUserSettings.response_element()) {
            let response = decode_error::required_child(message, NAMESPACE, "Response")?;
            let (error_code, error_message) = read_error(response)?;
            let user_responses = list_items(response, "UserResponses", "UserResponse")?
                .map(read_user_response)
                .collect::<Result<_, _>>()?;
            SoapResponseBody::GetUserSettings(GetUserSettingsResponse {
                error_code,
                error_message,
                user_responses,
            })
        } else if message.is(NAMESPACE, Operation::GetDomainSettings.response_element()) {
            let response = decode_error::required_child(message, NAMESPACE, "Response")?;
            let (error_code, error_message) = read_error(response)?;
            let domain_responses = list_items(response, "DomainResponses", "DomainResponse")?
                .map(read_domain_response)
                .collect::<Result<_, _>>()?;
            SoapResponseBody::GetDomainSettings(GetDomainSettingsResponse {
                error_code,
                error_message,
                domain_responses,
            })
        } else {
            return Err(DecodeError::unexpected_root(message));
        };
        Ok(Self {
            version,
            server_version,
            body,
        })
    }
}

/// Opens a list element, or writes it empty (`<Name />`) when it has no entries; an opened list
/// is closed by the caller's next `end` or by `finish`.
fn start_list(writer: &mut XmlWriter, name: &'static str, empty: bool) {
    if empty {
        writer.leaf(name, "");
    } else {
        writer.start(name, &[]);
    }
}

fn write_list_end(writer: &mut XmlWriter, empty: bool) {
    if !empty {
        writer.end();
    }
}

fn write_redirect_target(writer: &mut XmlWriter, target: Option<&str>) {
    match target {
        Some(target) => writer.leaf("RedirectTarget", target),
        None => writer.leaf_with("RedirectTarget", &[("i:nil", "true")], ""),
    }
}

fn write_setting_errors(
    writer: &mut XmlWriter,
    list: &'static str,
    item: &'static str,
    errors: &[SettingError],
) {
    start_list(writer, list, errors.is_empty());
    for error in errors {
        writer.start(item, &[]);
        writer.leaf("ErrorCode", error.error_code.as_str());
        writer.leaf("ErrorMessage", &error.error_message);
        writer.leaf("SettingName", &error.name);
        writer.end();
    }
    write_list_end(writer, errors.is_empty());
}

fn write_user_response(writer: &mut XmlWriter, user: &UserResponse) {
    writer.start("UserResponse", &[]);
    writer.leaf("ErrorCode", user.error_code.as_str());
    writer.leaf("ErrorMessage", &user.error_message);
    write_redirect_target(writer, user.redirect_target.as_deref());
    write_setting_errors(
        writer,
        "UserSettingErrors",
        "UserSettingError",
        &user.setting_errors,
    );
    start_list(writer, "UserSettings", user.settings.is_empty());
    for setting in &user.settings {
        writer.start("UserSetting", &[("i:type", setting.value.type_name())]);
        writer.leaf("Name", &setting.name);
        match &setting.value {
            SettingValue::String(value) => writer.leaf("Value", value),
            SettingValue::ProtocolConnections(connections) => {
                start_list(writer, "ProtocolConnections", connections.is_empty());
                for connection in connections {
                    writer.start("ProtocolConnection", &[]);
                    writer.leaf("EncryptionMethod", &connection.encryption_method);
                    writer.leaf("Hostname", &connection.hostname);
                    writer.leaf("Port", &connection.port.to_string());
                    writer.end();
                }
                write_list_end(writer, connections.is_empty());
            }
            SettingValue::WebClientUrls(urls) => {
                start_list(writer, "WebClientUrls", urls.is_empty());
                for url in urls {
                    writer.start("WebClientUrl", &[]);
                    writer.leaf("AuthenticationMethods", &url.authentication_methods);
                    writer.leaf("Url", &url.url);
                    writer.end();
                }
                write_list_end(writer, urls.is_empty());
            }
        }
        writer.end();
    }
    write_list_end(writer, user.settings.is_empty());
    writer.end();
}

fn write_domain_response(writer: &mut XmlWriter, domain: &DomainResponse) {
    writer.start("DomainResponse", &[]);
    writer.leaf("ErrorCode", domain.error_code.as_str());
    writer.leaf("ErrorMessage", &domain.error_message);
    write_setting_errors(
        writer,
        "DomainSettingErrors",
        "DomainSettingError",
        &domain.setting_errors,
    );
    start_list(writer, "DomainSettings", domain.settings.is_empty());
    for setting in &domain.settings {
        writer.start("DomainSetting", &[("i:type", "DomainStringSetting")]);
        writer.leaf("Name", &setting.name);
        writer.leaf("Value", &setting.value);
        writer.end();
    }
    write_list_end(writer, domain.settings.is_empty());
    write_redirect_target(writer, domain.redirect_target.as_deref());
    writer.end();
}

fn write_fault(writer: &mut XmlWriter, version: SoapVersion, fault: &SoapFault) {
    writer.start("s:Fault", &[]);
    match version {
        SoapVersion::Soap11 => {
            let code = match fault.code {
                FaultCode::Sender => "s:Client",
                FaultCode::Receiver => "s:Server",
            };
            writer.leaf("faultcode", code);
            writer.leaf("faultstring", &fault.reason);
        }
        SoapVersion::Soap12 => {
            let code = match fault.code {
                FaultCode::Sender => "s:Sender",
                FaultCode::Receiver => "s:Receiver",
            };
            writer.start("s:Code", &[]);
            writer.leaf("s:Value", code);
            writer.end();
            writer.start("s:Reason", &[]);
            writer.leaf_with("s:Text", &[("xml:lang", "en")], &fault.reason);
            writer.end();
        }
    }
    writer.end();
}

fn read_fault(fault: &Element, version: SoapVersion) -> Result<SoapFault, DecodeError> {
    let (code, reason) = match version {
        SoapVersion::Soap11 => (
            unqualified_text(fault, "faultcode")?,
            unqualified_text(fault, "faultstring")?,
        ),
        SoapVersion::Soap12 => {
            let ns = version.namespace();
            let code = decode_error::required_child(fault, ns, "Code")?;
            let reason = decode_error::required_child(fault, ns, "Reason")?;
            (
                decode_error::required_text(code, ns, "Value")?,
                decode_error::required_text(reason, ns, "Text")?,
            )
        }
    };
    // A QName: the prefix is whatever the server bound, the local part decides.
    let local = code.rsplit(':').next().unwrap_or_default();
    let code = match local {
        "Client" | "Sender" => FaultCode::Sender,
        "Server" | "Receiver" => FaultCode::Receiver,
        _ => return Err(DecodeError::invalid_value("faultcode", &code)),
    };
    Ok(SoapFault { code, reason })
}

/// The text of the one child `name` in no namespace (SOAP 1.1's `faultcode` and `faultstring`).
fn unqualified_text(parent: &Element, name: &'static str) -> Result<String, DecodeError> {
    let mut found = parent
        .children
        .iter()
        .filter(|c| c.namespace.is_none() && c.local_name == name);
    let element = found
        .next()
        .ok_or(DecodeError::MissingElement { element: name })?;
    if found.next().is_some() {
        return Err(DecodeError::DuplicateElement { element: name });
    }
    decode_error::text_of(element, name)
}

fn read_server_version(info: &Element) -> Result<ServerVersionInfo, DecodeError> {
    let number = |name: &'static str| -> Result<u32, DecodeError> {
        let text = decode_error::required_text(info, NAMESPACE, name)?;
        decode_error::parse_value(name, &text)
    };
    Ok(ServerVersionInfo {
        major_version: number("MajorVersion")?,
        minor_version: number("MinorVersion")?,
        major_build_number: number("MajorBuildNumber")?,
        minor_build_number: number("MinorBuildNumber")?,
        version: decode_error::optional_text(info, NAMESPACE, "Version")?.filter(|v| !v.is_empty()),
    })
}

fn read_error(parent: &Element) -> Result<(SoapErrorCode, String), DecodeError> {
    let code = decode_error::required_text(parent, NAMESPACE, "ErrorCode")?;
    let message =
        decode_error::optional_text(parent, NAMESPACE, "ErrorMessage")?.unwrap_or_default();
    Ok((SoapErrorCode::parse(&code), message))
}

/// The `item` children of the optional list element `list`.
fn list_items<'a>(
    parent: &'a Element,
    list: &'static str,
    item: &'static str,
) -> Result<impl Iterator<Item = &'a Element> + use<'a>, DecodeError> {
    let list = decode_error::optional_child(parent, NAMESPACE, list)?;
    Ok(list
        .into_iter()
        .flat_map(move |list| list.children_named(NAMESPACE, item)))
}

fn read_redirect_target(parent: &Element) -> Result<Option<String>, DecodeError> {
    Ok(decode_error::optional_text(parent, NAMESPACE, "RedirectTarget")?.filter(|t| !t.is_empty()))
}

fn read_setting_errors(
    parent: &Element,
    list: &'static str,
    item: &'static str,
) -> Result<Vec<SettingError>, DecodeError> {
    list_items(parent, list, item)?
        .map(|error| {
            let (error_code, error_message) = read_error(error)?;
            Ok(SettingError {
                name: decode_error::required_text(error, NAMESPACE, "SettingName")?,
                error_code,
                error_message,
            })
        })
        .collect()
}

fn read_user_response(user: &Element) -> Result<UserResponse, DecodeError> {
    let (error_code, error_message) = read_error(user)?;
    let settings = list_items(user, "UserSettings", "UserSetting")?
        .map(|setting| {
            let name = decode_error::required_text(setting, NAMESPACE, "Name")?;
            // The `i:type` attribute is namespace-qualified and not kept by the reader; the
            // children say which type a setting is just as well.
            let value = if decode_error::optional_child(setting, NAMESPACE, "ProtocolConnections")?
                .is_some()
            {
                let connections = list_items(setting, "ProtocolConnections", "ProtocolConnection")?
                    .map(|c| {
                        let port = decode_error::required_text(c, NAMESPACE, "Port")?;
                        Ok(ProtocolConnection {
                            hostname: decode_error::required_text(c, NAMESPACE, "Hostname")?,
                            port: decode_error::parse_value("Port", &port)?,
                            encryption_method: decode_error::optional_text(
                                c,
                                NAMESPACE,
                                "EncryptionMethod",
                            )?
                            .unwrap_or_default(),
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                SettingValue::ProtocolConnections(connections)
            } else if decode_error::optional_child(setting, NAMESPACE, "WebClientUrls")?.is_some() {
                let urls = list_items(setting, "WebClientUrls", "WebClientUrl")?
                    .map(|u| {
                        Ok(WebClientUrl {
                            authentication_methods: decode_error::optional_text(
                                u,
                                NAMESPACE,
                                "AuthenticationMethods",
                            )?
                            .unwrap_or_default(),
                            url: decode_error::required_text(u, NAMESPACE, "Url")?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                SettingValue::WebClientUrls(urls)
            } else {
                SettingValue::String(
                    decode_error::optional_text(setting, NAMESPACE, "Value")?.unwrap_or_default(),
                )
            };
            Ok(UserSetting { name, value })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(UserResponse {
        error_code,
        error_message,
        redirect_target: read_redirect_target(user)?,
        setting_errors: read_setting_errors(user, "UserSettingErrors", "UserSettingError")?,
        settings,
    })
}

fn read_domain_response(domain: &Element) -> Result<DomainResponse, DecodeError> {
    let (error_code, error_message) = read_error(domain)?;
    let settings = list_items(domain, "DomainSettings", "DomainSetting")?
        .map(|setting| {
            Ok(DomainSetting {
                name: decode_error::required_text(setting, NAMESPACE, "Name")?,
                value: decode_error::optional_text(setting, NAMESPACE, "Value")?
                    .unwrap_or_default(),
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(DomainResponse {
        error_code,
        error_message,
        setting_errors: read_setting_errors(domain, "DomainSettingErrors", "DomainSettingError")?,
        settings,
        redirect_target: read_redirect_target(domain)?,
    })
}
