//! Mozilla's autoconfig dialect: the `clientConfig` 1.1 document Thunderbird, Thunderbird for
//! Android (K-9), Evolution, KMail and many others read.
//!
//! The format is specified by Mozilla's "Thunderbird:Autoconfiguration:ConfigFileFormat" page and
//! by draft-ietf-mailmaint-autoconfig (section 3, "Config file format"); what a client checks is
//! what Thunderbird's parser (`readFromXML`) refuses: an `emailProvider` with an `id` and at
//! least one `domain`, at least one `incomingServer` (`imap` or `pop3`) and at least one
//! `outgoingServer` (`smtp`), each with `hostname`, `port`, `socketType`, `username` and
//! `authentication`.
//!
//! Two shapes are rendered from one [`ServiceProfile`]:
//!
//! - [`ClientConfig::for_account`]: the request named a mailbox (`?emailaddress=`), so usernames
//!   are expanded for it exactly as the POX answer's `LoginName` is (a per-user login name
//!   included). The two answers agree server for server: Thunderbird runs both requests and
//!   compares them.
//! - [`ClientConfig::for_domain`]: no address, only the domain from the Host header; username
//!   templates keep their placeholders (`%EMAILADDRESS%`, `%EMAILLOCALPART%`, `%EMAILDOMAIN%`),
//!   which Thunderbird expands itself (draft-ietf-mailmaint-autoconfig section 3.3).
//!
//! # Transport security mapping
//!
//! | [`Security`]  | `socketType` |
//! |---------------|--------------|
//! | `Tls`         | `SSL`        |
//! | `Starttls`    | `STARTTLS`   |
//! | `None`        | `plain`      |

use thiserror::Error;

use crate::address::Domain;
use crate::answer::AccountSettings;
use crate::decode_error::DecodeError;
use crate::profile::{Authentication, MailServer, Security, ServiceProfile};
use crate::xml::{self, Element, XmlWriter};

/// The path Thunderbird asks `autoconfig.DOMAIN` for.
pub const PATH: &str = "/mail/config-v1.1.xml";
/// The path Thunderbird asks `DOMAIN` itself for (draft-ietf-mailmaint-autoconfig section 4.1).
pub const WELL_KNOWN_PATH: &str = "/.well-known/autoconfig/mail/config-v1.1.xml";
/// The query parameter that names the mailbox (draft-ietf-mailmaint-autoconfig section 4.1).
pub const ADDRESS_PARAMETER: &str = "emailaddress";

/// Whether `path` is one of the two autoconfig paths, in any case.
pub fn is_path(path: &str) -> bool {
    path.eq_ignore_ascii_case(PATH) || path.eq_ignore_ascii_case(WELL_KNOWN_PATH)
}

/// The `version` attribute of the root element autodisco writes.
const VERSION: &str = "1.1";

/// Why a profile cannot be expressed as a `clientConfig` document Thunderbird accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AutoconfigError {
    /// The profile has no IMAP and no POP3 server (only Exchange endpoints).
    #[error("the profile has no IMAP or POP3 server, which a clientConfig document needs")]
    NoIncomingServer,
    /// The profile has no SMTP server.
    #[error("the profile has no SMTP server, which a clientConfig document needs")]
    NoOutgoingServer,
}

/// A `clientConfig` document: one email provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `emailProvider id`: a host name naming the provider (the primary domain).
    pub id: String,
    /// The `domain` elements: mail domains this configuration is for.
    pub domains: Vec<String>,
    /// `displayName`: the provider's name as clients show it.
    pub display_name: String,
    /// `displayShortName`, when known.
    pub display_short_name: Option<String>,
    /// `incomingServer` elements, most preferred first.
    pub incoming: Vec<ServerConfig>,
    /// `outgoingServer` elements, most preferred first.
    pub outgoing: Vec<ServerConfig>,
    /// `documentation`: a page explaining the settings to a person.
    pub documentation: Option<Documentation>,
}

/// One `incomingServer` or `outgoingServer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The `type` attribute.
    pub kind: ServerKind,
    /// `hostname`.
    pub hostname: String,
    /// `port`.
    pub port: u16,
    /// `socketType`.
    pub socket_type: SocketType,
    /// `username`, possibly with placeholders.
    pub username: String,
    /// `authentication`.
    pub authentication: AuthMethod,
}

/// The `type` attribute of a server element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// `imap`.
    Imap,
    /// `pop3`.
    Pop3,
    /// `smtp`.
    Smtp,
    /// A type this crate does not know (`exchange`, `jmap`, ...), as received.
    Other(String),
}

impl ServerKind {
    /// The value written for this type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Imap => "imap",
            Self::Pop3 => "pop3",
            Self::Smtp => "smtp",
            Self::Other(other) => other,
        }
    }

    fn parse(value: &str) -> Self {
        [Self::Imap, Self::Pop3, Self::Smtp]
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(value))
            .unwrap_or_else(|| Self::Other(value.to_owned()))
    }
}

/// `socketType`: how the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketType {
    /// `plain`: no encryption.
    Plain,
    /// `SSL`: TLS from the first byte.
    Ssl,
    /// `STARTTLS`: a plain connection upgraded.
    Starttls,
}

impl SocketType {
    /// The value written for this setting.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Ssl => "SSL",
            Self::Starttls => "STARTTLS",
        }
    }

    /// The socket type for a profile server's security (see the module docs).
    pub fn for_security(security: Security) -> Self {
        match security {
            Security::Tls => Self::Ssl,
            Security::Starttls => Self::Starttls,
            Security::None => Self::Plain,
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [Self::Plain, Self::Ssl, Self::Starttls]
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(value))
    }
}

/// `authentication`: how the client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `password-cleartext`.
    PasswordCleartext,
    /// `password-encrypted` (CRAM-MD5 and the like).
    PasswordEncrypted,
    /// `OAuth2`.
    OAuth2,
    /// `TLS-client-cert`.
    TlsClientCert,
    /// A method this crate does not render (`NTLM`, `GSSAPI`, `none`, ...), as received.
    Other(String),
}

impl AuthMethod {
    /// The value written for this method.
    pub fn as_str(&self) -> &str {
        match self {
            Self::PasswordCleartext => "password-cleartext",
            Self::PasswordEncrypted => "password-encrypted",
            Self::OAuth2 => "OAuth2",
            Self::TlsClientCert => "TLS-client-cert",
            Self::Other(other) => other,
        }
    }

    /// The method for a profile server's authentication.
    pub fn for_authentication(authentication: Authentication) -> Self {
        match authentication {
            Authentication::PasswordCleartext => Self::PasswordCleartext,
            Authentication::PasswordEncrypted => Self::PasswordEncrypted,
            Authentication::Oauth2 => Self::OAuth2,
            Authentication::ClientCertificate => Self::TlsClientCert,
        }
    }

    fn parse(value: &str) -> Self {
        [
            Self::PasswordCleartext,
            Self::PasswordEncrypted,
            Self::OAuth2,
            Self::TlsClientCert,
        ]
        .into_iter()
        .find(|method| method.as_str().eq_ignore_ascii_case(value))
        .unwrap_or_else(|| Self::Other(value.to_owned()))
    }
}

/// The `documentation` element: a URL and a short description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Documentation {
    /// The `url` attribute.
    pub url: String,
    /// The English `descr`, if any.
    pub description: Option<String>,
}

impl ClientConfig {
    /// The document for one mailbox: usernames expanded for `settings.address` (or replaced by
    /// its per-user login name), as in the POX answer. `requested` is the domain of the address
    /// the client asked about, which differs from the settings' primary domain for an alias.
    pub fn for_account(
        settings: &AccountSettings,
        requested: &Domain,
    ) -> Result<Self, AutoconfigError> {
        Self::build(
            &settings.profile,
            settings.address.domain(),
            requested,
            |server| settings.username_for(server),
            |template| settings.url(template),
        )
    }

    /// The document for a whole domain, no address known: username templates stay for the
    /// client to expand. For an alias domain (`requested` differs from `primary`), the address
    /// placeholders are pinned to the primary domain, because the mail servers know mailboxes
    /// only by their primary address (the same address [`ClientConfig::for_account`] uses).
    pub fn for_domain(
        profile: &ServiceProfile,
        primary: &Domain,
        requested: &Domain,
    ) -> Result<Self, AutoconfigError> {
        let pin = |template: &str| pin_to_primary(template, primary, requested);
        Self::build(profile, primary, requested, |s| pin(&s.username), pin)
    }

    fn build(
        profile: &ServiceProfile,
        primary: &Domain,
        requested: &Domain,
        username: impl Fn(&MailServer) -> String,
        url: impl Fn(&str) -> String,
    ) -> Result<Self, AutoconfigError> {
        // Every field is named: a new profile field does not compile here until this dialect
        // decides whether it has a place for it.
        let ServiceProfile {
            display_name,
            imap,
            pop3,
            smtp,
            documentation_url,
            // Exchange endpoints have no element in autoconfig 1.1.
            ews: _,
            activesync_url: _,
            mapi_http: _,
        } = profile;
        let server = |kind: ServerKind, server: &MailServer| ServerConfig {
            kind,
            hostname: server.host.clone(),
            port: server.port,
            socket_type: SocketType::for_security(server.security),
            username: username(server),
            authentication: AuthMethod::for_authentication(server.authentication),
        };
        let incoming: Vec<_> = imap
            .iter()
            .map(|s| server(ServerKind::Imap, s))
            .chain(pop3.iter().map(|s| server(ServerKind::Pop3, s)))
            .collect();
        if incoming.is_empty() {
            return Err(AutoconfigError::NoIncomingServer);
        }
        let outgoing: Vec<_> = smtp.iter().map(|s| server(ServerKind::Smtp, s)).collect();
        if outgoing.is_empty() {
            return Err(AutoconfigError::NoOutgoingServer);
        }
        let mut domains = vec![requested.to_string()];
        if primary != requested {
            domains.push(primary.to_string());
        }
        let display_name = display_name.clone().unwrap_or_else(|| primary.to_string());
        let documentation = documentation_url.as_deref().map(|u| Documentation {
            url: url(u),
            description: Some(format!("{display_name}: mail settings")),
        });
        Ok(Self {
            id: primary.to_string(),
            domains,
            display_name,
            display_short_name: None,
            incoming,
            outgoing,
            documentation,
        })
    }

    /// Encodes the document.
    pub fn to_xml(&self) -> String {
        let mut writer = XmlWriter::new();
        writer.start("clientConfig", &[("version", VERSION)]);
        writer.start("emailProvider", &[("id", &self.id)]);
        for domain in &self.domains {
            writer.leaf("domain", domain);
        }
        writer.leaf("displayName", &self.display_name);
        writer.optional_leaf("displayShortName", self.display_short_name.as_deref());
        for server in &self.incoming {
            server.write(&mut writer, "incomingServer");
        }
        for server in &self.outgoing {
            server.write(&mut writer, "outgoingServer");
        }
        if let Some(documentation) = &self.documentation {
            writer.start("documentation", &[("url", &documentation.url)]);
            if let Some(description) = &documentation.description {
                writer.leaf_with("descr", &[("lang", "en")], description);
            }
            writer.end();
        }
        writer.finish()
    }

    /// Decodes a document (the client side). Unknown elements are skipped, as Thunderbird does;
    /// what its parser requires is required here too.
    pub fn from_xml(body: &[u8]) -> Result<Self, DecodeError> {
        let root = xml::parse_document(body)?;
        if root.namespace.is_some() || root.local_name != "clientConfig" {
            return Err(DecodeError::unexpected_root(&root));
        }
        let provider = one_child(&root, "emailProvider")?.ok_or(DecodeError::MissingElement {
            element: "emailProvider",
        })?;
        let id = provider
            .attribute("id")
            .filter(|id| !id.trim().is_empty())
            .ok_or(DecodeError::MissingElement {
                element: "emailProvider id",
            })?
            .to_owned();
        let domains = children(provider, "domain")
            .map(|d| text(d, "domain"))
            .collect::<Result<Vec<_>, _>>()?;
        if domains.is_empty() {
            return Err(DecodeError::MissingElement { element: "domain" });
        }
        let display_name = optional_text(provider, "displayName")?.unwrap_or_default();
        let display_short_name = optional_text(provider, "displayShortName")?;
        let incoming = children(provider, "incomingServer")
            .map(ServerConfig::read)
            .collect::<Result<Vec<_>, _>>()?;
        if incoming.is_empty() {
            return Err(DecodeError::MissingElement {
                element: "incomingServer",
            });
        }
        let outgoing = children(provider, "outgoingServer")
            .map(ServerConfig::read)
            .collect::<Result<Vec<_>, _>>()?;
        if outgoing.is_empty() {
            return Err(DecodeError::MissingElement {
                element: "outgoingServer",
            });
        }
        // Documentation may sit in emailProvider (1.1) or beside it; the first one counts.
        let documentation = children(provider, "documentation")
            .chain(children(&root, "documentation"))
            .next()
            .and_then(|doc| {
                let url = doc.attribute("url")?.to_owned();
                let description = children(doc, "descr")
                    .next()
                    .and_then(|d| d.leaf_text())
                    .map(str::to_owned);
                Some(Documentation { url, description })
            });
        Ok(Self {
            id,
            domains,
            display_name,
            display_short_name,
            incoming,
            outgoing,
            documentation,
        })
    }
}

impl ServerConfig {
    fn write(&self, writer: &mut XmlWriter, element: &'static str) {
        writer.start(element, &[("type", self.kind.as_str())]);
        writer.leaf("hostname", &self.hostname);
        writer.leaf("port", &self.port.to_string());
        writer.leaf("socketType", self.socket_type.as_str());
        writer.leaf("username", &self.username);
        writer.leaf("authentication", self.authentication.as_str());
        writer.end();
    }

    fn read(server: &Element) -> Result<Self, DecodeError> {
        let kind = ServerKind::parse(server.attribute("type").unwrap_or_default());
        let required = |name: &'static str| {
            optional_text(server, name)?.ok_or(DecodeError::MissingElement { element: name })
        };
        let port = required("port")?;
        let socket_type = required("socketType")?;
        // Thunderbird lists several methods in preference order and takes the first it supports.
        let authentication = children(server, "authentication")
            .next()
            .map(|a| text(a, "authentication"))
            .transpose()?
            .ok_or(DecodeError::MissingElement {
                element: "authentication",
            })?;
        Ok(Self {
            kind,
            hostname: required("hostname")?,
            port: port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| DecodeError::invalid_value("port", &port))?,
            socket_type: SocketType::parse(&socket_type)
                .ok_or_else(|| DecodeError::invalid_value("socketType", &socket_type))?,
            username: required("username")?,
            authentication: AuthMethod::parse(&authentication),
        })
    }
}

/// For an alias domain, `%EMAILADDRESS%` becomes `%EMAILLOCALPART%@PRIMARY` and `%EMAILDOMAIN%`
/// becomes `PRIMARY`: what the client would expand with the alias address is not a login the
/// mail servers know.
fn pin_to_primary(template: &str, primary: &Domain, requested: &Domain) -> String {
    if primary == requested {
        return template.to_owned();
    }
    template
        .replace(
            "%EMAILADDRESS%",
            &format!("%EMAILLOCALPART%@{}", primary.as_str()),
        )
        .replace("%EMAILDOMAIN%", primary.as_str())
}

/// clientConfig has no namespace: its elements are matched by unqualified name.
fn children<'a>(parent: &'a Element, name: &'static str) -> impl Iterator<Item = &'a Element> {
    parent
        .children
        .iter()
        .filter(move |c| c.namespace.is_none() && c.local_name == name)
}

fn one_child<'a>(
    parent: &'a Element,
    name: &'static str,
) -> Result<Option<&'a Element>, DecodeError> {
    let mut found = children(parent, name);
    let first = found.next();
    if found.next().is_some() {
        return Err(DecodeError::DuplicateElement { element: name });
    }
    Ok(first)
}

fn text(element: &Element, name: &'static str) -> Result<String, DecodeError> {
    element
        .leaf_text()
        .map(str::to_owned)
        .ok_or(DecodeError::NotText { element: name })
}

fn optional_text(parent: &Element, name: &'static str) -> Result<Option<String>, DecodeError> {
    one_child(parent, name)?.map(|c| text(c, name)).transpose()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::address::EmailAddress;
    use crate::pox::{Encryption, OutlookResponse, ProtocolKind, RenderOptions};
    use crate::{Answer, ServiceProfile};

    #[test]
    fn autoconfig_paths_match_in_any_case() {
        assert!(is_path("/mail/config-v1.1.xml"));
        assert!(is_path("/MAIL/Config-v1.1.xml"));
        assert!(is_path("/.well-known/autoconfig/mail/config-v1.1.xml"));
        assert!(!is_path("/mail/config-v1.0.xml"));
    }

    fn profile() -> ServiceProfile {
        let mut profile = ServiceProfile::default_for_hoster("hoster.example");
        profile.pop3 = vec![MailServer {
            host: "pop.hoster.example".into(),
            port: 995,
            security: Security::Tls,
            authentication: Authentication::PasswordEncrypted,
            username: "%EMAILLOCALPART%".into(),
        }];
        profile.documentation_url = Some("https://hoster.example/help?d=%EMAILDOMAIN%".into());
        profile
    }

    fn domain(name: &str) -> Domain {
        Domain::parse(name).unwrap()
    }

    #[test]
    fn account_document_expands_usernames() {
        let settings = AccountSettings::new(
            EmailAddress::parse("jane@a.example").unwrap(),
            Arc::new(profile()),
        );
        let config = ClientConfig::for_account(&settings, &domain("alias.example")).unwrap();
        assert_eq!(config.id, "a.example");
        assert_eq!(config.domains, ["alias.example", "a.example"]);
        assert_eq!(config.incoming[0].username, "jane@a.example");
        assert_eq!(config.incoming[1].username, "jane");
        assert_eq!(
            config.incoming[1].authentication,
            AuthMethod::PasswordEncrypted
        );
        assert_eq!(config.outgoing[1].socket_type, SocketType::Starttls);
        assert_eq!(
            config.documentation.unwrap().url,
            "https://hoster.example/help?d=a.example"
        );
    }

    #[test]
    fn domain_document_keeps_placeholders_and_pins_aliases() {
        let config =
            ClientConfig::for_domain(&profile(), &domain("a.example"), &domain("a.example"))
                .unwrap();
        assert_eq!(config.domains, ["a.example"]);
        assert_eq!(config.incoming[0].username, "%EMAILADDRESS%");
        let alias =
            ClientConfig::for_domain(&profile(), &domain("a.example"), &domain("b.example"))
                .unwrap();
        assert_eq!(alias.incoming[0].username, "%EMAILLOCALPART%@a.example");
        assert_eq!(alias.incoming[1].username, "%EMAILLOCALPART%");
    }

    #[test]
    fn profiles_without_mail_servers_are_refused() {
        let mut no_incoming = profile();
        no_incoming.imap.clear();
        no_incoming.pop3.clear();
        let a = domain("a.example");
        assert_eq!(
            ClientConfig::for_domain(&no_incoming, &a, &a),
            Err(AutoconfigError::NoIncomingServer)
        );
        let mut no_smtp = profile();
        no_smtp.smtp.clear();
        assert_eq!(
            ClientConfig::for_domain(&no_smtp, &a, &a),
            Err(AutoconfigError::NoOutgoingServer)
        );
    }

    #[test]
    fn round_trips_and_escapes() {
        let mut p = profile();
        p.display_name = Some("Mail <&> \"Co\"".into());
        let a = domain("a.example");
        let config = ClientConfig::for_domain(&p, &a, &a).unwrap();
        let xml = config.to_xml();
        assert!(xml.contains("Mail &lt;&amp;&gt; \"Co\""), "{xml}");
        assert_eq!(ClientConfig::from_xml(xml.as_bytes()).unwrap(), config);
    }

    #[test]
    fn decoding_requires_what_thunderbird_requires() {
        let doc = |inner: &str| {
            format!(
                r#"<clientConfig version="1.1"><emailProvider id="a.example">{inner}</emailProvider></clientConfig>"#
            )
        };
        let server = |element: &str, kind: &str| {
            format!(
                r#"<{element} type="{kind}"><hostname>h.example</hostname><port>993</port><socketType>SSL</socketType><username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication></{element}>"#
            )
        };
        let imap = server("incomingServer", "imap");
        let smtp = server("outgoingServer", "smtp");
        let ok = doc(&format!("<domain>a.example</domain>{imap}{smtp}"));
        assert!(ClientConfig::from_xml(ok.as_bytes()).is_ok());
        for (inner, missing) in [
            (format!("{imap}{smtp}"), "domain"),
            (
                format!("<domain>a.example</domain>{smtp}"),
                "incomingServer",
            ),
            (
                format!("<domain>a.example</domain>{imap}"),
                "outgoingServer",
            ),
        ] {
            assert_eq!(
                ClientConfig::from_xml(doc(&inner).as_bytes()),
                Err(DecodeError::MissingElement { element: missing })
            );
        }
        let bad_socket = ok.replace("<socketType>SSL", "<socketType>TLS");
        assert!(matches!(
            ClientConfig::from_xml(bad_socket.as_bytes()),
            Err(DecodeError::InvalidValue {
                element: "socketType",
                ..
            })
        ));
    }

    /// Thunderbird runs the POX request too and compares: every IMAP, POP3 and SMTP block of
    /// the POX answer has its twin here, in the same order.
    #[test]
    fn agrees_with_pox() {
        let mut settings = AccountSettings::new(
            EmailAddress::parse("jane@a.example").unwrap(),
            Arc::new(profile()),
        );
        settings.login_name = Some("u-jane".into());
        let OutlookResponse::Settings(pox) = OutlookResponse::from_answer(
            &Answer::Settings(settings.clone()),
            &RenderOptions::default(),
        ) else {
            panic!("not settings")
        };
        let config = ClientConfig::for_account(&settings, &domain("a.example")).unwrap();
        let ours: Vec<_> = config.incoming.iter().chain(&config.outgoing).collect();
        let theirs: Vec<_> = pox
            .protocols
            .iter()
            .filter(|p| {
                matches!(
                    p.kind,
                    ProtocolKind::Imap | ProtocolKind::Pop3 | ProtocolKind::Smtp
                )
            })
            .collect();
        assert_eq!(ours.len(), theirs.len());
        for (ours, theirs) in ours.iter().zip(theirs) {
            let kind = match theirs.kind {
                ProtocolKind::Imap => ServerKind::Imap,
                ProtocolKind::Pop3 => ServerKind::Pop3,
                _ => ServerKind::Smtp,
            };
            assert_eq!(ours.kind, kind);
            assert_eq!(Some(ours.hostname.as_str()), theirs.server.as_deref());
            assert_eq!(Some(ours.port), theirs.port);
            assert_eq!(Some(ours.username.as_str()), theirs.login_name.as_deref());
            let encryption = match ours.socket_type {
                SocketType::Ssl => Encryption::Ssl,
                SocketType::Starttls => Encryption::Tls,
                SocketType::Plain => Encryption::None,
            };
            assert_eq!(Some(encryption), theirs.encryption);
            assert_eq!(
                Some(ours.authentication == AuthMethod::PasswordEncrypted),
                theirs.spa
            );
        }
    }
}
