//! The discovered settings, grouped by what a person sets up: incoming and outgoing mail,
//! Exchange Web Services, free/busy, out-of-office, the offline address book, ActiveSync.
//!
//! Built from the `Protocol` blocks of an Outlook response ([MS-OXDSCLI] 2.2.4.1.1.2) and, for
//! ActiveSync, from a mobilesync response ([MS-ASCMD] 2.2.3.164).

use autodisco_proto::autoconfig::{ClientConfig as AutoconfigDocument, ServerKind, SocketType};
use autodisco_proto::pox::{Encryption, OutlookSettings, ProtocolKind, ProtocolSettings};
use autodisco_proto::soap::response::{SettingValue, UserResponse};
use serde::Serialize;

/// Everything found for one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Who the account is.
    pub user: User,
    /// IMAP and POP3 servers, in the order the server listed them.
    pub incoming: Vec<MailServer>,
    /// SMTP servers, in the order the server listed them.
    pub outgoing: Vec<MailServer>,
    /// Exchange Web Services and the other Exchange endpoints.
    pub ews: Option<Ews>,
    /// The availability (free/busy) service, `ASUrl`.
    pub free_busy_url: Option<String>,
    /// The out-of-office service, `OOFUrl`.
    pub out_of_office_url: Option<String>,
    /// The offline address book, `OABUrl`.
    pub oab_url: Option<String>,
    /// The ActiveSync endpoint, from a second (mobilesync) request.
    pub activesync: ActiveSync,
}

/// The `User` element ([MS-OXDSCLI] 2.2.4.1.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct User {
    /// `DisplayName`.
    pub display_name: Option<String>,
    /// `AutoDiscoverSMTPAddress`: the mailbox's primary address.
    pub smtp_address: Option<String>,
    /// `LegacyDN`.
    pub legacy_dn: Option<String>,
    /// `DeploymentId`.
    pub deployment_id: Option<String>,
}

/// An IMAP, POP3 or SMTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailServer {
    /// `IMAP`, `POP3` or `SMTP`.
    pub protocol: String,
    /// `Server`.
    pub host: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// How the connection is protected: `tls` (implicit TLS), `starttls`, `none`, `auto`, or
    /// `ssl` when only `SSL` on was sent (the client decides by the port).
    pub security: String,
    /// `LoginName`: the user name to sign in with.
    pub login_name: Option<String>,
    /// `SPA`: secure password authentication.
    pub spa: Option<bool>,
    /// `AuthRequired` (SMTP).
    pub auth_required: Option<bool>,
    /// `UsePOPAuth` (SMTP): the incoming server's credentials.
    pub use_pop_auth: Option<bool>,
    /// `DomainRequired`.
    pub domain_required: Option<bool>,
}

/// Exchange endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ews {
    /// `EwsUrl`.
    pub url: Option<String>,
    /// `EcpUrl`: the control panel.
    pub ecp_url: Option<String>,
    /// `UMUrl`: unified messaging.
    pub um_url: Option<String>,
    /// `OWAUrl` of the `WEB` block: web mail.
    pub web_mail_url: Option<String>,
    /// `Server` of the `EXPR` block: Outlook Anywhere (RPC over HTTP).
    pub outlook_anywhere_server: Option<String>,
    /// `Server` of the `EXCH` block: the mailbox server.
    pub mailbox_server: Option<String>,
    /// `AuthPackage`.
    pub auth_package: Option<String>,
    /// MAPI over HTTP: `MailStore` `ExternalUrl` (or `InternalUrl`).
    pub mapi_http_mail_store: Option<String>,
    /// MAPI over HTTP: `AddressBook` `ExternalUrl` (or `InternalUrl`).
    pub mapi_http_address_book: Option<String>,
}

/// What the ActiveSync question gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ActiveSync {
    /// Not asked (turned off, or the Outlook settings were not found).
    #[default]
    NotAsked,
    /// The `MobileSync` server's URL.
    Offered {
        /// The URL.
        url: String,
    },
    /// The server redirects ActiveSync devices to another address (not followed).
    RedirectAddr {
        /// The address.
        address: String,
    },
    /// No ActiveSync service, or no usable answer.
    NotOffered {
        /// Why, in words.
        why: String,
    },
}

impl Settings {
    /// Groups the Outlook response's protocol blocks.
    ///
    /// EWS and the related URLs come from the first `EXCH` or `EXPR` block that has them: a probe
    /// from outside cannot tell which one Outlook would reach.
    pub fn from_outlook(response: &OutlookSettings) -> Self {
        let user = User {
            display_name: response.user.display_name.clone(),
            smtp_address: response.user.autodiscover_smtp_address.clone(),
            legacy_dn: response.user.legacy_dn.clone(),
            deployment_id: response.user.deployment_id.clone(),
        };
        let mut settings = Self {
            user,
            ..Self::default()
        };
        let exchange: Vec<&ProtocolSettings> = response
            .protocols
            .iter()
            .filter(|p| matches!(p.kind, ProtocolKind::Exch | ProtocolKind::Expr))
            .collect();
        let first = |pick: fn(&ProtocolSettings) -> Option<&String>| {
            exchange.iter().find_map(|p| pick(p).cloned())
        };
        settings.free_busy_url = first(|p| p.as_url.as_ref());
        settings.out_of_office_url = first(|p| p.oof_url.as_ref());
        settings.oab_url = first(|p| p.oab_url.as_ref());
        let mut ews = Ews {
            url: first(|p| p.ews_url.as_ref()),
            ecp_url: first(|p| p.ecp_url.as_ref()),
            um_url: first(|p| p.um_url.as_ref()),
            auth_package: first(|p| p.auth_package.as_ref()),
            ..Ews::default()
        };
        for protocol in &response.protocols {
            match &protocol.kind {
                ProtocolKind::Imap | ProtocolKind::Pop3 => {
                    settings.incoming.push(mail_server(protocol));
                }
                ProtocolKind::Smtp => settings.outgoing.push(mail_server(protocol)),
                ProtocolKind::Exch => {
                    ews.mailbox_server = ews.mailbox_server.take().or(protocol.server.clone());
                }
                ProtocolKind::Expr | ProtocolKind::ExHttp => {
                    ews.outlook_anywhere_server = ews
                        .outlook_anywhere_server
                        .take()
                        .or(protocol.server.clone());
                }
                ProtocolKind::Web => {
                    ews.web_mail_url = ews
                        .web_mail_url
                        .take()
                        .or(protocol.owa_url.as_ref().map(|o| o.url.clone()));
                }
                ProtocolKind::MapiHttp => {
                    let pick = |urls: &Option<autodisco_proto::pox::MapiHttpUrls>| {
                        urls.as_ref()
                            .and_then(|u| u.external_url.clone().or(u.internal_url.clone()))
                    };
                    ews.mapi_http_mail_store = pick(&protocol.mail_store);
                    ews.mapi_http_address_book = pick(&protocol.address_book);
                }
                ProtocolKind::Other(_) => {}
            }
        }
        if ews != Ews::default() {
            settings.ews = Some(ews);
        }
        settings
    }
}

impl Settings {
    /// Groups a SOAP `GetUserSettings` answer ([MS-OXWSADISC] 3.1.4.2.2.2): the `External*`
    /// settings, as a client outside the organisation uses them.
    pub fn from_soap(response: &UserResponse) -> Self {
        let text = |name: &str| response.string_setting(name).map(str::to_owned);
        let servers = |name: &str, protocol: &str| -> Vec<MailServer> {
            match response.setting(name) {
                Some(SettingValue::ProtocolConnections(list)) => list
                    .iter()
                    .map(|c| MailServer {
                        protocol: protocol.to_owned(),
                        host: Some(c.hostname.clone()),
                        port: Some(c.port),
                        security: match c.encryption_method.to_ascii_lowercase().as_str() {
                            "ssl" => "tls".to_owned(),
                            "tls" => "starttls".to_owned(),
                            "none" | "" => "none".to_owned(),
                            other => other.to_owned(),
                        },
                        login_name: None,
                        spa: None,
                        auth_required: None,
                        use_pop_auth: None,
                        domain_required: None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let mut incoming = servers("ExternalImap4Connections", "IMAP");
        incoming.extend(servers("ExternalPop3Connections", "POP3"));
        let web_mail_url = match response.setting("ExternalWebClientUrls") {
            Some(SettingValue::WebClientUrls(urls)) => urls.first().map(|u| u.url.clone()),
            _ => None,
        };
        let ews = Ews {
            url: text("ExternalEwsUrl"),
            ecp_url: text("ExternalEcpUrl"),
            um_url: text("ExternalUMUrl"),
            web_mail_url,
            mailbox_server: text("ExternalMailboxServer"),
            ..Ews::default()
        };
        Self {
            user: User {
                display_name: text("UserDisplayName"),
                smtp_address: text("AutoDiscoverSMTPAddress"),
                legacy_dn: text("UserDN"),
                deployment_id: text("UserDeploymentId"),
            },
            incoming,
            outgoing: servers("ExternalSmtpConnections", "SMTP"),
            ews: (ews != Ews::default()).then_some(ews),
            oab_url: text("ExternalOABUrl"),
            ..Self::default()
        }
    }

    /// Groups a Mozilla autoconfig document (clientConfig 1.1) for `address`: the placeholders
    /// in user names (`%EMAILADDRESS%`, `%EMAILLOCALPART%`, `%EMAILDOMAIN%`) are filled in.
    pub fn from_autoconfig(document: &AutoconfigDocument, address: &str) -> Self {
        let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
        let fill = |name: &str| {
            name.replace("%EMAILADDRESS%", address)
                .replace("%EMAILLOCALPART%", local)
                .replace("%EMAILDOMAIN%", domain)
        };
        let server = |s: &autodisco_proto::autoconfig::ServerConfig| MailServer {
            protocol: s.kind.as_str().to_ascii_uppercase(),
            host: Some(s.hostname.clone()),
            port: Some(s.port),
            security: match s.socket_type {
                SocketType::Ssl => "tls",
                SocketType::Starttls => "starttls",
                SocketType::Plain => "none",
            }
            .to_owned(),
            login_name: Some(fill(&s.username)),
            spa: None,
            auth_required: None,
            use_pop_auth: None,
            domain_required: None,
        };
        Self {
            incoming: document
                .incoming
                .iter()
                .filter(|s| matches!(s.kind, ServerKind::Imap | ServerKind::Pop3))
                .map(server)
                .collect(),
            outgoing: document
                .outgoing
                .iter()
                .filter(|s| s.kind == ServerKind::Smtp)
                .map(server)
                .collect(),
            ..Self::default()
        }
    }
}

fn mail_server(protocol: &ProtocolSettings) -> MailServer {
    // `Encryption` overrides `SSL` when present ([MS-OXDSCLI] 2.2.4.1.1.2).
    let security = match (protocol.encryption, protocol.ssl) {
        (Some(Encryption::Ssl), _) => "tls",
        (Some(Encryption::Tls), _) => "starttls",
        (Some(Encryption::None), _) => "none",
        (Some(Encryption::Auto), _) => "auto",
        (None, Some(true)) => "ssl",
        (None, Some(false)) => "none",
        // `SSL` means on when absent ([MS-OXDSCLI] 2.2.4.1.1.2).
        (None, None) => "ssl",
    };
    MailServer {
        protocol: protocol.kind.as_str().to_owned(),
        host: protocol.server.clone(),
        port: protocol.port,
        security: security.to_owned(),
        login_name: protocol.login_name.clone(),
        spa: protocol.spa,
        auth_required: protocol.auth_required,
        use_pop_auth: protocol.use_pop_auth,
        domain_required: protocol.domain_required,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use autodisco_proto::pox::{OutlookResponse, RenderOptions};
    use autodisco_proto::{AccountSettings, Answer, EmailAddress, ServiceProfile};

    use super::*;

    #[test]
    fn protocol_blocks_land_in_their_sections() {
        let mut profile = ServiceProfile::default_for_hoster("hoster.example");
        profile.pop3 = profile.imap.clone();
        profile.pop3[0].port = 995;
        let ews = profile.ews.as_mut().unwrap();
        ews.rpc_http_server = Some("rpc.hoster.example".into());
        ews.owa_url = Some("https://mail.hoster.example/owa/".into());
        let answer = Answer::Settings(AccountSettings::new(
            EmailAddress::parse("jane@customer.example").unwrap(),
            Arc::new(profile),
        ));
        let OutlookResponse::Settings(outlook) =
            OutlookResponse::from_answer(&answer, &RenderOptions::default())
        else {
            panic!("not settings");
        };
        let settings = Settings::from_outlook(&outlook);
        assert_eq!(
            settings.user.smtp_address.as_deref(),
            Some("jane@customer.example")
        );
        let kinds: Vec<_> = settings
            .incoming
            .iter()
            .map(|s| s.protocol.as_str())
            .collect();
        assert_eq!(kinds, ["IMAP", "POP3"]);
        assert_eq!(settings.incoming[0].security, "tls");
        assert_eq!(settings.incoming[1].port, Some(995));
        assert!(settings.outgoing.iter().all(|s| s.protocol == "SMTP"));
        assert!(settings.outgoing.iter().any(|s| s.security == "starttls"));
        let ews = settings.ews.as_ref().unwrap();
        assert_eq!(
            ews.outlook_anywhere_server.as_deref(),
            Some("rpc.hoster.example")
        );
        assert_eq!(
            ews.web_mail_url.as_deref(),
            Some("https://mail.hoster.example/owa/")
        );
        assert!(ews.url.as_deref().unwrap().ends_with("/EWS/Exchange.asmx"));
        assert!(settings.free_busy_url.is_some());
        assert!(settings.out_of_office_url.is_some());
        assert_eq!(settings.activesync, ActiveSync::NotAsked);
    }

    /// The same profile through POX, SOAP and autoconfig gives the same mail servers.
    #[test]
    fn soap_and_autoconfig_agree_with_pox() {
        let profile = ServiceProfile::default_for_hoster("hoster.example");
        let address = EmailAddress::parse("jane@customer.example").unwrap();
        let account = AccountSettings::new(address.clone(), Arc::new(profile));
        let answer = Answer::Settings(account.clone());
        let OutlookResponse::Settings(outlook) =
            OutlookResponse::from_answer(&answer, &RenderOptions::default())
        else {
            panic!("not settings");
        };
        let pox = Settings::from_outlook(&outlook);
        let requested: Vec<String> = crate::discovery::SOAP_SETTINGS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let soap = Settings::from_soap(&autodisco_proto::soap::settings::user_response(
            &answer, &requested,
        ));
        let document =
            AutoconfigDocument::for_account(&account, address.domain()).expect("autoconfig");
        let autoconfig = Settings::from_autoconfig(&document, "jane@customer.example");
        let hosts = |s: &Settings| -> Vec<(Option<String>, Option<u16>, String)> {
            s.incoming
                .iter()
                .chain(&s.outgoing)
                .filter(|m| m.protocol != "POP3")
                .map(|m| (m.host.clone(), m.port, m.security.replace("ssl", "tls")))
                .collect()
        };
        assert_eq!(hosts(&soap), hosts(&pox));
        assert_eq!(hosts(&autoconfig), hosts(&pox));
        assert_eq!(
            soap.ews.as_ref().and_then(|e| e.url.clone()),
            pox.ews.as_ref().and_then(|e| e.url.clone())
        );
        assert_eq!(
            soap.user.smtp_address.as_deref(),
            Some("jane@customer.example")
        );
        assert_eq!(
            autoconfig.incoming[0].login_name.as_deref(),
            Some("jane@customer.example")
        );
    }
}
