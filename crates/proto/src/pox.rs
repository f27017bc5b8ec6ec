//! Outlook's "plain old XML" AutoDiscover dialect ([MS-OXDSCLI] 2.2.3 request, 2.2.4 response).
//!
//! Server side: [`parse_request`](crate::parse_request) reads the request, [`render_answer`]
//! turns the directory's [`Answer`] into the response and [`render_error`] writes an error
//! document. Client side: [`OutlookRequest::to_xml`] encodes a request and
//! [`OutlookResponse::from_xml`] decodes a response.
//!
//! Rendering goes through the typed [`OutlookResponse`], which also decodes, so every document
//! autodisco writes can be read back into the value it was written from.
//!
//! # Transport security mapping
//!
//! [MS-OXDSCLI] gives IMAP, POP3 and SMTP blocks two elements for security: `SSL` (on/off) and
//! `Encryption` (`None`, `SSL`, `TLS`, `Auto`), where `Encryption`, when present, overrides
//! `SSL`. autodisco always sends both, so clients that only know `SSL` still see whether the
//! connection is protected:
//!
//! | [`Security`]  | `SSL` | `Encryption` |
//! |---------------|-------|--------------|
//! | `Tls`         | `on`  | `SSL`        |
//! | `Starttls`    | `on`  | `TLS`        |
//! | `None`        | `off` | `None`       |

use std::str::FromStr;

use crate::address::EmailAddress;
use crate::answer::{AccountSettings, Answer};
use crate::autodiscover_error::{AutodiscoverError, ErrorCode, ErrorStamp};
use crate::decode_error::{self, DecodeError};
use crate::profile::{Authentication, MailServer, Security, ServiceProfile};
use crate::xml::{self, Element, XmlWriter};
use crate::xml_request::{Dialect, RequestError, RequestReader};

/// The endpoint every AutoDiscover client tries on each candidate host ([MS-OXDISCO] 3.1.5),
/// shared with the ActiveSync mobilesync schema ([MS-ASCMD] 2.2.1.1). Servers match it in any
/// case, as Exchange (IIS) does.
pub const PATH: &str = "/autodiscover/autodiscover.xml";

/// Namespace of Outlook requests ([MS-OXDSCLI] 2.2.3).
pub const REQUEST_NAMESPACE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";

/// The Outlook response schema autodisco serves: the value a request's
/// `AcceptableResponseSchema` must carry, and the namespace of the response's `Response` element
/// ([MS-OXDSCLI] 2.2.4). Note `http://`: clients send exactly this string.
pub const RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// Namespace of the `Autodiscover` root of every XML response, Outlook and mobilesync alike
/// ([MS-OXDSCLI] 2.2.4, [MS-ASCMD] 6.4).
pub const RESPONSE_ROOT_NAMESPACE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";

/// The `AuthenticationMethod` autodisco gives the web mail URL: hosted web mail signs in through
/// a form.
const OWA_AUTHENTICATION_METHOD: &str = "Fba";

/// An Outlook AutoDiscover request ([MS-OXDSCLI] 2.2.3).
///
/// A parsed request names a mailbox by `EMailAddress`, `LegacyDN` or both, and asked for
/// [`RESPONSE_SCHEMA`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlookRequest {
    /// `EMailAddress`, validated.
    pub email_address: Option<EmailAddress>,
    /// `LegacyDN`, as sent (trimmed).
    pub legacy_dn: Option<String>,
}

impl OutlookRequest {
    /// A request for `address`, as a client sends it.
    pub fn for_address(address: EmailAddress) -> Self {
        Self {
            email_address: Some(address),
            legacy_dn: None,
        }
    }

    /// The mailbox the request is about. A `LegacyDN` that autodisco handed out wins over
    /// `EMailAddress` ([MS-OXDSCLI] 3.2.5); any other DN is not ours, so the address decides.
    /// `None` when only a foreign `LegacyDN` was sent: the caller answers "not hosted".
    pub fn mailbox(&self) -> Option<EmailAddress> {
        self.legacy_dn
            .as_deref()
            .and_then(crate::answer::address_from_legacy_dn)
            .or_else(|| self.email_address.clone())
    }

    /// Encodes the request document a client posts.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.start("Autodiscover", &[("xmlns", REQUEST_NAMESPACE)]);
        writer.start("Request", &[]);
        if let Some(address) = &self.email_address {
            writer.leaf("EMailAddress", &address.to_string());
        }
        writer.optional_leaf("LegacyDN", self.legacy_dn.as_deref());
        writer.leaf("AcceptableResponseSchema", RESPONSE_SCHEMA);
        writer.finish()
    }

    /// Reads the request under an `Autodiscover` root already known to be in
    /// [`REQUEST_NAMESPACE`].
    pub(crate) fn from_root(root: &Element) -> Result<Self, RequestError> {
        let dialect = Dialect::Outlook;
        let reader = RequestReader::new(root, dialect, REQUEST_NAMESPACE)?;
        let email_address = reader.text("EMailAddress")?;
        let legacy_dn = reader.text("LegacyDN")?;
        // The schema decides which provider answers, so it is checked before the address.
        reader.check_schema(RESPONSE_SCHEMA)?;
        if email_address.is_none() && legacy_dn.is_none() {
            return Err(RequestError::NoAddress { dialect });
        }
        let email_address = email_address
            .map(EmailAddress::parse)
            .transpose()
            .map_err(|source| RequestError::InvalidAddress { dialect, source })?;
        Ok(Self {
            email_address,
            legacy_dn: legacy_dn.map(str::to_owned),
        })
    }
}

/// What the server knows about the request beyond its body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderOptions {
    /// The request carried the `X-MapiHttpCapability` header: MAPI over HTTP may be offered
    /// (when the profile has endpoints for it).
    pub mapi_http: bool,
    /// `Time` and `Id` for an error response ([`Answer::NotHosted`]).
    pub stamp: ErrorStamp,
}

/// Renders the response for the directory's answer.
pub fn render_answer(answer: &Answer, options: &RenderOptions) -> String {
    OutlookResponse::from_answer(answer, options).to_xml()
}

/// Renders an error response with `code`'s fixed message and empty `DebugData`
/// ([MS-OXDSCLI] 2.2.4.1.1.3).
pub fn render_error(code: ErrorCode, stamp: &ErrorStamp) -> String {
    OutlookResponse::Error(AutodiscoverError::new(code, stamp)).to_xml()
}

/// An Outlook AutoDiscover response ([MS-OXDSCLI] 2.2.4), as rendered or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutlookResponse {
    /// `Action` `settings`: the account's settings.
    Settings(OutlookSettings),
    /// `Action` `redirectAddr`: ask again for this address ([MS-OXDSCLI] 2.2.4.1.1.2.8).
    RedirectAddr(EmailAddress),
    /// `Action` `redirectUrl`: ask this AutoDiscover URL instead ([MS-OXDSCLI] 2.2.4.1.1.2.9).
    RedirectUrl(String),
    /// An `Error` element ([MS-OXDSCLI] 2.2.4.1.1.3).
    Error(AutodiscoverError),
}

/// The settings of one account: who it is and how to reach each service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutlookSettings {
    /// The `User` element.
    pub user: OutlookUser,
    /// One entry per `Protocol` element, in document order.
    pub protocols: Vec<ProtocolSettings>,
}

/// The `User` element ([MS-OXDSCLI] 2.2.4.1.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutlookUser {
    /// `DisplayName`: the user's name, when the directory knows it.
    pub display_name: Option<String>,
    /// `LegacyDN`.
    pub legacy_dn: Option<String>,
    /// `AutoDiscoverSMTPAddress`: the primary address of the mailbox.
    pub autodiscover_smtp_address: Option<String>,
    /// `DeploymentId`: a GUID naming the deployment.
    pub deployment_id: Option<String>,
}

impl OutlookUser {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The `Type` of a `Protocol` element ([MS-OXDSCLI] 2.2.4.1.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProtocolKind {
    /// `EXCH`: Exchange inside the network (and EWS).
    Exch,
    /// `EXPR`: Outlook Anywhere (RPC over HTTP).
    Expr,
    /// `EXHTTP`: RPC over HTTP, newer form.
    ExHttp,
    /// `WEB`: web mail.
    Web,
    /// `IMAP`.
    Imap,
    /// `POP3`.
    Pop3,
    /// `SMTP`.
    Smtp,
    /// `Type="mapiHttp"` (an attribute, not an element): MAPI over HTTP.
    MapiHttp,
    /// A type this crate does not know, as received.
    Other(String),
}

impl ProtocolKind {
    /// The value written for this type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Exch => "EXCH",
            Self::Expr => "EXPR",
            Self::ExHttp => "EXHTTP",
            Self::Web => "WEB",
            Self::Imap => "IMAP",
            Self::Pop3 => "POP3",
            Self::Smtp => "SMTP",
            Self::MapiHttp => "mapiHttp",
            Self::Other(other) => other,
        }
    }

    /// The type for a received value; known names match in any case.
    pub fn parse(value: &str) -> Self {
        [
            Self::Exch,
            Self::Expr,
            Self::ExHttp,
            Self::Web,
            Self::Imap,
            Self::Pop3,
            Self::Smtp,
            Self::MapiHttp,
        ]
        .into_iter()
        .find(|kind| kind.as_str().eq_ignore_ascii_case(value))
        .unwrap_or_else(|| Self::Other(value.to_owned()))
    }
}

/// The `Encryption` element of an IMAP, POP3 or SMTP block; it overrides `SSL` when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// `None`: no encryption.
    None,
    /// `SSL`: TLS from the first byte.
    Ssl,
    /// `TLS`: STARTTLS.
    Tls,
    /// `Auto`: the client negotiates.
    Auto,
}

impl Encryption {
    /// The value written for this setting.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Ssl => "SSL",
            Self::Tls => "TLS",
            Self::Auto => "Auto",
        }
    }
}

impl FromStr for Encryption {
    type Err = ();
    fn from_str(value: &str) -> Result<Self, ()> {
        [Self::None, Self::Ssl, Self::Tls, Self::Auto]
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(value))
            .ok_or(())
    }
}

/// The web mail URL of a `WEB` block (`External`/`OWAUrl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwaUrl {
    /// The URL.
    pub url: String,
    /// The `AuthenticationMethod` attribute (`Basic`, `Fba`, ...).
    pub authentication_method: Option<String>,
}

/// The `InternalUrl` and `ExternalUrl` of a MAPI over HTTP endpoint (`MailStore`, `AddressBook`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapiHttpUrls {
    /// `InternalUrl`: used inside the provider's network.
    pub internal_url: Option<String>,
    /// `ExternalUrl`: used from the internet.
    pub external_url: Option<String>,
}

/// One `Protocol` element ([MS-OXDSCLI] 2.2.4.1.1.2). Every child is optional; which ones a
/// block carries depends on its [`ProtocolKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtocolSettings {
    /// `Type` (element, or attribute for `mapiHttp`).
    pub kind: ProtocolKind,
    /// The `Version` attribute (`mapiHttp` blocks).
    pub version: Option<String>,
    /// `Server`: a host name, or the mailbox server's name for `EXCH`.
    pub server: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `ASUrl`: availability (free/busy).
    pub as_url: Option<String>,
    /// `EwsUrl`.
    pub ews_url: Option<String>,
    /// `EcpUrl`: the control panel.
    pub ecp_url: Option<String>,
    /// `OOFUrl`: out of office.
    pub oof_url: Option<String>,
    /// `OABUrl`: offline address book.
    pub oab_url: Option<String>,
    /// `UMUrl`: unified messaging.
    pub um_url: Option<String>,
    /// `External`/`OWAUrl`: web mail.
    pub owa_url: Option<OwaUrl>,
    /// `LoginName`.
    pub login_name: Option<String>,
    /// `DomainRequired` (on/off).
    pub domain_required: Option<bool>,
    /// `SPA`: secure password authentication (on/off).
    pub spa: Option<bool>,
    /// `AuthPackage`: basic, ntlm, negotiate, ...
    pub auth_package: Option<String>,
    /// `SSL` (on/off).
    pub ssl: Option<bool>,
    /// `Encryption`: overrides `SSL` when present.
    pub encryption: Option<Encryption>,
    /// `AuthRequired` (on/off).
    pub auth_required: Option<bool>,
    /// `UsePOPAuth` (on/off, SMTP only).
    pub use_pop_auth: Option<bool>,
    /// `SMTPLast` (on/off, SMTP only).
    pub smtp_last: Option<bool>,
    /// `MailStore` (`mapiHttp` blocks).
    pub mail_store: Option<MapiHttpUrls>,
    /// `AddressBook` (`mapiHttp` blocks).
    pub address_book: Option<MapiHttpUrls>,
}

impl ProtocolSettings {
    /// A block of `kind` with nothing else set.
    pub fn new(kind: ProtocolKind) -> Self {
        Self {
            kind,
            version: None,
            server: None,
            port: None,
            as_url: None,
            ews_url: None,
            ecp_url: None,
            oof_url: None,
            oab_url: None,
            um_url: None,
            owa_url: None,
            login_name: None,
            domain_required: None,
            spa: None,
            auth_package: None,
            ssl: None,
            encryption: None,
            auth_required: None,
            use_pop_auth: None,
            smtp_last: None,
            mail_store: None,
            address_book: None,
        }
    }

    /// The `SSL` and `Encryption` values for a server's security (see the module docs).
    pub fn security_elements(security: Security) -> (bool, Encryption) {
        match security {
            Security::Tls => (true, Encryption::Ssl),
            Security::Starttls => (true, Encryption::Tls),
            Security::None => (false, Encryption::None),
        }
    }

    /// An `IMAP`, `POP3` or `SMTP` block for one server of the profile.
    fn mail_server(kind: ProtocolKind, server: &MailServer, settings: &AccountSettings) -> Self {
        let (ssl, encryption) = Self::security_elements(server.security);
        let smtp = kind == ProtocolKind::Smtp;
        Self {
            server: Some(server.host.clone()),
            port: Some(server.port),
            login_name: Some(settings.username_for(server)),
            // The login name is complete: no DOMAIN\user form.
            domain_required: Some(false),
            // SPA is Outlook's name for challenge-response passwords. OAuth and client
            // certificates cannot be expressed in POX; clients fall back to their defaults.
            spa: Some(server.authentication == Authentication::PasswordEncrypted),
            ssl: Some(ssl),
            encryption: Some(encryption),
            auth_required: Some(true),
            // Submission authenticates on its own, never through a prior POP3 login.
            use_pop_auth: smtp.then_some(false),
            smtp_last: smtp.then_some(false),
            ..Self::new(kind)
        }
    }

    fn write(&self, writer: &mut XmlWriter) {
        let version = self.version.as_deref();
        let mut attributes: Vec<(&'static str, &str)> = Vec::new();
        if self.kind == ProtocolKind::MapiHttp {
            attributes.push(("Type", self.kind.as_str()));
        }
        if let Some(version) = version {
            attributes.push(("Version", version));
        }
        writer.start("Protocol", &attributes);
        if self.kind != ProtocolKind::MapiHttp {
            writer.leaf("Type", self.kind.as_str());
        }
        if let Some(owa) = &self.owa_url {
            writer.start("External", &[]);
            match &owa.authentication_method {
                Some(method) => {
                    writer.leaf_with("OWAUrl", &[("AuthenticationMethod", method)], &owa.url)
                }
                None => writer.leaf("OWAUrl", &owa.url),
            }
            writer.end();
        }
        writer.optional_leaf("Server", self.server.as_deref());
        writer.optional_leaf("Port", self.port.map(|p| p.to_string()).as_deref());
        writer.optional_leaf("ASUrl", self.as_url.as_deref());
        writer.optional_leaf("EwsUrl", self.ews_url.as_deref());
        writer.optional_leaf("EcpUrl", self.ecp_url.as_deref());
        writer.optional_leaf("OOFUrl", self.oof_url.as_deref());
        writer.optional_leaf("OABUrl", self.oab_url.as_deref());
        writer.optional_leaf("UMUrl", self.um_url.as_deref());
        writer.optional_leaf("LoginName", self.login_name.as_deref());
        writer.optional_leaf("DomainRequired", self.domain_required.map(on_off));
        writer.optional_leaf("SPA", self.spa.map(on_off));
        writer.optional_leaf("AuthPackage", self.auth_package.as_deref());
        writer.optional_leaf("SSL", self.ssl.map(on_off));
        writer.optional_leaf("Encryption", self.encryption.map(Encryption::as_str));
        writer.optional_leaf("AuthRequired", self.auth_required.map(on_off));
        writer.optional_leaf("UsePOPAuth", self.use_pop_auth.map(on_off));
        writer.optional_leaf("SMTPLast", self.smtp_last.map(on_off));
        for (name, urls) in [
            ("MailStore", &self.mail_store),
            ("AddressBook", &self.address_book),
        ] {
            if let Some(urls) = urls {
                writer.start(name, &[]);
                writer.optional_leaf("InternalUrl", urls.internal_url.as_deref());
                writer.optional_leaf("ExternalUrl", urls.external_url.as_deref());
                writer.end();
            }
        }
        writer.end();
    }

    fn read(protocol: &Element, ns: &str) -> Result<Self, DecodeError> {
        use decode_error::{optional_child, optional_text};
        // `Type` is an attribute in `mapiHttp` blocks and an element everywhere else.
        let kind = match protocol.attribute("Type") {
            Some(kind) => ProtocolKind::parse(kind),
            None => ProtocolKind::parse(&decode_error::required_text(protocol, ns, "Type")?),
        };
        let flag = |name: &'static str| -> Result<Option<bool>, DecodeError> {
            optional_text(protocol, ns, name)?
                .map(|value| parse_on_off(name, &value))
                .transpose()
        };
        let mapi_urls = |name: &'static str| -> Result<Option<MapiHttpUrls>, DecodeError> {
            optional_child(protocol, ns, name)?
                .map(|urls| {
                    Ok(MapiHttpUrls {
                        internal_url: optional_text(urls, ns, "InternalUrl")?,
                        external_url: optional_text(urls, ns, "ExternalUrl")?,
                    })
                })
                .transpose()
        };
        Ok(Self {
            kind,
            version: protocol.attribute("Version").map(str::to_owned),
            server: optional_text(protocol, ns, "Server")?,
            port: optional_text(protocol, ns, "Port")?
                .map(|port| decode_error::parse_value("Port", &port))
                .transpose()?,
            as_url: optional_text(protocol, ns, "ASUrl")?,
            ews_url: optional_text(protocol, ns, "EwsUrl")?,
            ecp_url: optional_text(protocol, ns, "EcpUrl")?,
            oof_url: optional_text(protocol, ns, "OOFUrl")?,
            oab_url: optional_text(protocol, ns, "OABUrl")?,
            um_url: optional_text(protocol, ns, "UMUrl")?,
            owa_url: read_owa_url(protocol, ns)?,
            login_name: optional_text(protocol, ns, "LoginName")?,
            domain_required: flag("DomainRequired")?,
            spa: flag("SPA")?,
            auth_package: optional_text(protocol, ns, "AuthPackage")?,
            ssl: flag("SSL")?,
            encryption: optional_text(protocol, ns, "Encryption")?
                .map(|value| decode_error::parse_value("Encryption", &value))
                .transpose()?,
            auth_required: flag("AuthRequired")?,
            use_pop_auth: flag("UsePOPAuth")?,
            smtp_last: flag("SMTPLast")?,
            mail_store: mapi_urls("MailStore")?,
            address_book: mapi_urls("AddressBook")?,
        })
    }
}

/// The first `OWAUrl`, preferring `External` over `Internal`.
fn read_owa_url(protocol: &Element, ns: &str) -> Result<Option<OwaUrl>, DecodeError> {
    for container in ["External", "Internal"] {
        let owa = protocol
            .children_named(ns, container)
            .flat_map(|c| c.children_named(ns, "OWAUrl"))
            .next();
        if let Some(owa) = owa {
            return Ok(Some(OwaUrl {
                url: decode_error::text_of(owa, "OWAUrl")?,
                authentication_method: owa.attribute("AuthenticationMethod").map(str::to_owned),
            }));
        }
    }
    Ok(None)
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

fn parse_on_off(name: &'static str, value: &str) -> Result<bool, DecodeError> {
    if value.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(DecodeError::invalid_value(name, value))
    }
}

impl OutlookResponse {
    /// The response for the directory's answer.
    ///
    /// Protocol blocks appear only for what the profile defines, in this order: `mapiHttp` (when
    /// the client announced it and the profile has endpoints), `EXCH` and `EXPR` and `WEB` (from
    /// the EWS endpoints), then one block per IMAP, POP3 and SMTP server.
    pub fn from_answer(answer: &Answer, options: &RenderOptions) -> Self {
        match answer {
            Answer::Settings(settings) => Self::Settings(settings_for(settings, options)),
            Answer::RedirectAddr(address) => Self::RedirectAddr(address.clone()),
            Answer::RedirectUrl(url) => Self::RedirectUrl(url.clone()),
            Answer::NotHosted => {
                Self::Error(AutodiscoverError::new(ErrorCode::NotHosted, &options.stamp))
            }
        }
    }

    /// Encodes the response document.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.start("Autodiscover", &[("xmlns", RESPONSE_ROOT_NAMESPACE)]);
        writer.start("Response", &[("xmlns", RESPONSE_SCHEMA)]);
        match self {
            Self::Error(error) => error.write(&mut writer),
            Self::Settings(settings) => {
                if !settings.user.is_empty() {
                    let user = &settings.user;
                    writer.start("User", &[]);
                    writer.optional_leaf("DisplayName", user.display_name.as_deref());
                    writer.optional_leaf("LegacyDN", user.legacy_dn.as_deref());
                    writer.optional_leaf(
                        "AutoDiscoverSMTPAddress",
                        user.autodiscover_smtp_address.as_deref(),
                    );
                    writer.optional_leaf("DeploymentId", user.deployment_id.as_deref());
                    writer.end();
                }
                write_account_start(&mut writer, "settings");
                for protocol in &settings.protocols {
                    protocol.write(&mut writer);
                }
                writer.end();
            }
            Self::RedirectAddr(address) => {
                write_account_start(&mut writer, "redirectAddr");
                writer.leaf("RedirectAddr", &address.to_string());
                writer.end();
            }
            Self::RedirectUrl(url) => {
                write_account_start(&mut writer, "redirectUrl");
                writer.leaf("RedirectUrl", url);
                writer.end();
            }
        }
        writer.finish()
    }

    /// Decodes a response document (the client side).
    ///
    /// An error `Response` is accepted in the Outlook schema or in the root namespace (where
    /// some servers put errors about unreadable requests), and an `Error` under `Account` as
    /// early servers sent it.
    pub fn from_xml(body: &[u8]) -> Result<Self, DecodeError> {
        use decode_error::{optional_child, required_child, required_text};
        let root = xml::parse_document(body)?;
        if !root.is(RESPONSE_ROOT_NAMESPACE, "Autodiscover") {
            return Err(DecodeError::unexpected_root(&root));
        }
        let (response, ns) = find_response(&root, &[RESPONSE_SCHEMA, RESPONSE_ROOT_NAMESPACE])?;
        if let Some(error) = optional_child(response, ns, "Error")? {
            return AutodiscoverError::read(error, ns).map(Self::Error);
        }
        let account = required_child(response, ns, "Account")?;
        if let Some(error) = optional_child(account, ns, "Error")? {
            return AutodiscoverError::read(error, ns).map(Self::Error);
        }
        let action = required_text(account, ns, "Action")?;
        if action.eq_ignore_ascii_case("settings") {
            let user = match optional_child(response, ns, "User")? {
                Some(user) => read_user(user, ns)?,
                None => OutlookUser::default(),
            };
            let protocols = account
                .children_named(ns, "Protocol")
                .map(|protocol| ProtocolSettings::read(protocol, ns))
                .collect::<Result<_, _>>()?;
            Ok(Self::Settings(OutlookSettings { user, protocols }))
        } else if action.eq_ignore_ascii_case("redirectAddr") {
            let address = required_text(account, ns, "RedirectAddr")?;
            decode_error::parse_address("RedirectAddr", &address).map(Self::RedirectAddr)
        } else if action.eq_ignore_ascii_case("redirectUrl") {
            required_text(account, ns, "RedirectUrl").map(Self::RedirectUrl)
        } else {
            Err(DecodeError::invalid_value("Action", &action))
        }
    }
}

/// The one `Response` child of the root, in one of `namespaces`.
pub(crate) fn find_response<'a>(
    root: &'a Element,
    namespaces: &[&'static str],
) -> Result<(&'a Element, &'static str), DecodeError> {
    let mut responses = root.children.iter().filter(|c| c.local_name == "Response");
    let response = responses.next().ok_or(DecodeError::MissingElement {
        element: "Response",
    })?;
    if responses.next().is_some() {
        return Err(DecodeError::DuplicateElement {
            element: "Response",
        });
    }
    let ns = namespaces
        .iter()
        .find(|ns| response.namespace.as_deref() == Some(**ns))
        .ok_or_else(|| DecodeError::UnexpectedSchema {
            namespace: response.namespace.as_deref().map(xml::snippet),
        })?;
    Ok((response, ns))
}

fn write_account_start(writer: &mut XmlWriter, action: &str) {
    writer.start("Account", &[]);
    writer.leaf("AccountType", "email");
    writer.leaf("Action", action);
}

fn read_user(user: &Element, ns: &str) -> Result<OutlookUser, DecodeError> {
    use decode_error::optional_text;
    Ok(OutlookUser {
        display_name: optional_text(user, ns, "DisplayName")?,
        legacy_dn: optional_text(user, ns, "LegacyDN")?,
        autodiscover_smtp_address: optional_text(user, ns, "AutoDiscoverSMTPAddress")?,
        deployment_id: optional_text(user, ns, "DeploymentId")?,
    })
}

fn settings_for(settings: &AccountSettings, options: &RenderOptions) -> OutlookSettings {
    // Every field is named: a new profile field does not compile here until this dialect
    // decides whether it has a place for it.
    let ServiceProfile {
        imap,
        pop3,
        smtp,
        ews,
        mapi_http,
        // The mobilesync schema's, answered on the same URL ([MS-ASCMD] 2.2.1.1).
        activesync_url: _,
        // POX has no element for the provider's name or a help page ([MS-OXDSCLI] 2.2.4).
        display_name: _,
        documentation_url: _,
    } = &*settings.profile;
    let user = OutlookUser {
        display_name: settings.display_name.clone(),
        legacy_dn: Some(settings.legacy_dn()),
        autodiscover_smtp_address: Some(settings.address.to_string()),
        deployment_id: Some(settings.deployment_id.hyphenated().to_string()),
    };
    let mut protocols = Vec::new();
    if let (true, Some(mapi)) = (options.mapi_http, mapi_http) {
        protocols.push(ProtocolSettings {
            version: Some("1".to_owned()),
            mail_store: Some(MapiHttpUrls {
                internal_url: Some(settings.url(&mapi.mailstore_internal_url)),
                external_url: Some(settings.url(&mapi.mailstore_external_url)),
            }),
            address_book: Some(MapiHttpUrls {
                internal_url: Some(settings.url(&mapi.addressbook_internal_url)),
                external_url: Some(settings.url(&mapi.addressbook_external_url)),
            }),
            ..ProtocolSettings::new(ProtocolKind::MapiHttp)
        });
    }
    if let Some(ews) = ews {
        let url = |template: &str| Some(settings.url(template));
        let optional_url = |template: &Option<String>| template.as_deref().map(|t| settings.url(t));
        let exchange = |kind| ProtocolSettings {
            as_url: url(ews.availability_url()),
            ews_url: url(&ews.url),
            ecp_url: optional_url(&ews.ecp_url),
            oof_url: url(ews.oof_url()),
            oab_url: optional_url(&ews.oab_url),
            um_url: optional_url(&ews.um_url),
            auth_package: ews.auth_package.clone(),
            ..ProtocolSettings::new(kind)
        };
        protocols.push(ProtocolSettings {
            server: ews.mailbox_server.clone(),
            ..exchange(ProtocolKind::Exch)
        });
        if let Some(rpc_http_server) = &ews.rpc_http_server {
            protocols.push(ProtocolSettings {
                server: Some(rpc_http_server.clone()),
                ssl: Some(true),
                ..exchange(ProtocolKind::Expr)
            });
        }
        if let Some(owa_url) = &ews.owa_url {
            protocols.push(ProtocolSettings {
                owa_url: Some(OwaUrl {
                    url: settings.url(owa_url),
                    authentication_method: Some(OWA_AUTHENTICATION_METHOD.to_owned()),
                }),
                ..ProtocolSettings::new(ProtocolKind::Web)
            });
        }
    }
    for (kind, servers) in [
        (ProtocolKind::Imap, imap),
        (ProtocolKind::Pop3, pop3),
        (ProtocolKind::Smtp, smtp),
    ] {
        for server in servers {
            protocols.push(ProtocolSettings::mail_server(
                kind.clone(),
                server,
                settings,
            ));
        }
    }
    OutlookSettings { user, protocols }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::profile::{MapiHttpEndpoints, ServiceProfile};

    /// The request under its root, as the dispatcher (`request::parse_request`) hands it over.
    fn parse_request(body: &[u8]) -> Result<OutlookRequest, RequestError> {
        OutlookRequest::from_root(&xml::parse_document(body)?)
    }

    fn request(inner: &str) -> Result<OutlookRequest, RequestError> {
        parse_request(
            format!(
                r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{REQUEST_NAMESPACE}"><Request>{inner}</Request></Autodiscover>"#
            )
            .as_bytes(),
        )
    }

    fn schema() -> String {
        format!("<AcceptableResponseSchema>{RESPONSE_SCHEMA}</AcceptableResponseSchema>")
    }

    fn settings() -> AccountSettings {
        let mut profile = ServiceProfile::default_for_hoster("hoster.example");
        profile.pop3 = profile.imap.clone();
        profile.pop3[0].port = 995;
        profile.pop3[0].authentication = Authentication::PasswordEncrypted;
        profile.pop3[0].username = "%EMAILLOCALPART%".into();
        let ews = profile.ews.as_mut().unwrap();
        ews.rpc_http_server = Some("rpc.hoster.example".into());
        ews.owa_url = Some("https://mail.hoster.example/?user=%EMAILADDRESS%".into());
        ews.auth_package = Some("basic".into());
        profile.mapi_http = Some(MapiHttpEndpoints {
            mailstore_internal_url:
                "https://i.hoster.example/mapi/emsmdb/?MailboxId=%EMAILADDRESS%".into(),
            mailstore_external_url:
                "https://e.hoster.example/mapi/emsmdb/?MailboxId=%EMAILADDRESS%".into(),
            addressbook_internal_url: "https://i.hoster.example/mapi/nspi/".into(),
            addressbook_external_url: "https://e.hoster.example/mapi/nspi/".into(),
        });
        AccountSettings::new(
            EmailAddress::parse("jane@a.example").unwrap(),
            Arc::new(profile),
        )
    }

    #[test]
    fn parses_spec_requests() {
        let parsed = request(&format!(
            "<EMailAddress> Jane@A.example </EMailAddress>{}",
            schema()
        ))
        .unwrap();
        assert_eq!(parsed.mailbox().unwrap().to_string(), "Jane@a.example");

        // A LegacyDN we handed out wins over the address.
        let dn = crate::answer::legacy_dn(&EmailAddress::parse("b@b.example").unwrap());
        let parsed = request(&format!(
            "<EMailAddress>jane@a.example</EMailAddress><LegacyDN>{dn}</LegacyDN>{}",
            schema()
        ))
        .unwrap();
        assert_eq!(parsed.mailbox().unwrap().to_string(), "b@b.example");

        // A foreign LegacyDN alone parses but names no hosted mailbox.
        let parsed = request(&format!("<LegacyDN>/o=Contoso/cn=x</LegacyDN>{}", schema())).unwrap();
        assert_eq!(parsed.mailbox(), None);
    }

    #[test]
    fn request_errors_carry_their_code() {
        let cases: [(String, ErrorCode); 7] = [
            (schema(), ErrorCode::InvalidRequest),
            (
                "<EMailAddress>a@b.example</EMailAddress>".into(),
                ErrorCode::InvalidRequest,
            ),
            (
                format!("<EMailAddress>nope</EMailAddress>{}", schema()),
                ErrorCode::InvalidRequest,
            ),
            (
                format!(
                    "<EMailAddress>a@b.example</EMailAddress><EMailAddress>c@b.example</EMailAddress>{}",
                    schema()
                ),
                ErrorCode::InvalidRequest,
            ),
            (
                format!("<EMailAddress><x/></EMailAddress>{}", schema()),
                ErrorCode::InvalidRequest,
            ),
            (
                "<EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>https://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>".into(),
                ErrorCode::ProviderUnavailable,
            ),
            (
                "<EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema>".into(),
                ErrorCode::ProviderUnavailable,
            ),
        ];
        for (inner, code) in cases {
            let error = request(&inner).unwrap_err();
            assert_eq!(error.code(), code, "{inner}: {error}");
            assert_eq!(error.dialect(), Some(Dialect::Outlook));
        }
        // A Request element in another namespace is no Request at all.
        let error = parse_request(
            format!(r#"<Autodiscover xmlns="{REQUEST_NAMESPACE}"><Request xmlns="urn:x"/></Autodiscover>"#).as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(
            error,
            RequestError::MissingElement {
                element: "Request",
                ..
            }
        ));
    }

    #[test]
    fn settings_follow_the_profile() {
        let settings = settings();
        let options = RenderOptions {
            mapi_http: false,
            stamp: ErrorStamp::default(),
        };
        let OutlookResponse::Settings(rendered) =
            OutlookResponse::from_answer(&Answer::Settings(settings.clone()), &options)
        else {
            panic!("not settings")
        };
        let kinds: Vec<_> = rendered.protocols.iter().map(|p| p.kind.clone()).collect();
        use ProtocolKind::*;
        assert_eq!(kinds, [Exch, Expr, Web, Imap, Pop3, Smtp, Smtp]);
        let exch = &rendered.protocols[0];
        assert_eq!(exch.server, None);
        assert_eq!(exch.auth_package.as_deref(), Some("basic"));
        assert_eq!(exch.ssl, None);
        let expr = &rendered.protocols[1];
        assert_eq!(expr.server.as_deref(), Some("rpc.hoster.example"));
        assert_eq!(expr.ssl, Some(true));
        assert_eq!(
            rendered.protocols[2].owa_url.as_ref().unwrap().url,
            "https://mail.hoster.example/?user=jane@a.example"
        );
        let pop3 = &rendered.protocols[4];
        assert_eq!(pop3.spa, Some(true));
        assert_eq!(pop3.login_name.as_deref(), Some("jane"));
        assert_eq!(pop3.use_pop_auth, None);
        let (smtps, submission) = (&rendered.protocols[5], &rendered.protocols[6]);
        assert_eq!(
            (smtps.ssl, smtps.encryption),
            (Some(true), Some(Encryption::Ssl))
        );
        assert_eq!(
            (submission.ssl, submission.encryption),
            (Some(true), Some(Encryption::Tls))
        );
        assert_eq!(submission.smtp_last, Some(false));
        assert_eq!(
            ProtocolSettings::security_elements(Security::None),
            (false, Encryption::None)
        );

        // mapiHttp needs both the client's announcement and the profile's endpoints.
        let with_mapi = RenderOptions {
            mapi_http: true,
            ..options
        };
        let OutlookResponse::Settings(rendered) =
            OutlookResponse::from_answer(&Answer::Settings(settings.clone()), &with_mapi)
        else {
            panic!("not settings")
        };
        let mapi = &rendered.protocols[0];
        assert_eq!(mapi.kind, MapiHttp);
        assert_eq!(
            mapi.mail_store.as_ref().unwrap().external_url.as_deref(),
            Some("https://e.hoster.example/mapi/emsmdb/?MailboxId=jane@a.example")
        );
        let mut no_mapi = settings;
        Arc::make_mut(&mut no_mapi.profile).mapi_http = None;
        let OutlookResponse::Settings(rendered) =
            OutlookResponse::from_answer(&Answer::Settings(no_mapi), &with_mapi)
        else {
            panic!("not settings")
        };
        assert_eq!(rendered.protocols[0].kind, Exch);
    }

    #[test]
    fn every_answer_round_trips() {
        let mut settings = settings();
        settings.display_name = Some("Jane <Doe> & Co".into());
        let options = RenderOptions {
            mapi_http: true,
            stamp: ErrorStamp::new("10:11:12.5", 99),
        };
        for answer in [
            Answer::Settings(settings),
            Answer::RedirectAddr(EmailAddress::parse("jane@b.example").unwrap()),
            Answer::RedirectUrl(
                "https://autodiscover.b.example/autodiscover/autodiscover.xml?a=1&b=2".into(),
            ),
            Answer::NotHosted,
        ] {
            let response = OutlookResponse::from_answer(&answer, &options);
            let xml = response.to_xml();
            assert!(xml.starts_with(xml::XML_DECLARATION), "{xml}");
            assert_eq!(
                OutlookResponse::from_xml(xml.as_bytes()).unwrap(),
                response,
                "{xml}"
            );
        }
    }

    #[test]
    fn not_hosted_is_error_500() {
        let xml = render_answer(
            &Answer::NotHosted,
            &RenderOptions {
                mapi_http: false,
                stamp: ErrorStamp::new("01:02:03", 4),
            },
        );
        let OutlookResponse::Error(error) = OutlookResponse::from_xml(xml.as_bytes()).unwrap()
        else {
            panic!("not an error")
        };
        assert_eq!(error.code, ErrorCode::NotHosted);
        assert_eq!(error.message, ErrorCode::NotHosted.message());
        assert_eq!(error.debug_data, "");
        assert_eq!(error.stamp, ErrorStamp::new("01:02:03", 4));
    }

    #[test]
    fn decoding_is_strict_about_values() {
        let wrap = |account: &str| {
            format!(
                r#"<Autodiscover xmlns="{RESPONSE_ROOT_NAMESPACE}"><Response xmlns="{RESPONSE_SCHEMA}"><Account>{account}</Account></Response></Autodiscover>"#
            )
        };
        let bad_port =
            wrap("<Action>settings</Action><Protocol><Type>IMAP</Type><Port>x</Port></Protocol>");
        assert!(matches!(
            OutlookResponse::from_xml(bad_port.as_bytes()),
            Err(DecodeError::InvalidValue {
                element: "Port",
                ..
            })
        ));
        let bad_ssl =
            wrap("<Action>settings</Action><Protocol><Type>IMAP</Type><SSL>yes</SSL></Protocol>");
        assert!(matches!(
            OutlookResponse::from_xml(bad_ssl.as_bytes()),
            Err(DecodeError::InvalidValue { element: "SSL", .. })
        ));
        let bad_action = wrap("<Action>dance</Action>");
        assert!(matches!(
            OutlookResponse::from_xml(bad_action.as_bytes()),
            Err(DecodeError::InvalidValue {
                element: "Action",
                ..
            })
        ));
        let old_error = wrap(r#"<Error Time="t" Id="1"><ErrorCode>603</ErrorCode></Error>"#);
        assert!(matches!(
            OutlookResponse::from_xml(old_error.as_bytes()),
            Ok(OutlookResponse::Error(AutodiscoverError {
                code: ErrorCode::InternalError,
                ..
            }))
        ));
    }
}
