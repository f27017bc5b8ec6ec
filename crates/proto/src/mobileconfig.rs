//! Apple configuration profiles (`.mobileconfig`) for iPhone, iPad and Mac Mail.
//!
//! A profile is a property list with a `Configuration` payload holding, from the one
//! [`ServiceProfile`] every dialect renders:
//!
//! - a `com.apple.mail.managed` payload (Apple's "Configuration Profile Reference", Mail
//!   payload): one incoming server (the first IMAP server, else the first POP3 server) and one
//!   outgoing server (the first SMTP server), with the same host, port and login the POX
//!   answer gives;
//! - a `com.apple.eas.account` payload (Exchange ActiveSync payload) when the profile has an
//!   ActiveSync URL.
//!
//! It never holds a password: the device asks for it on installation. Payload identifiers and
//! UUIDs are derived from the address (UUIDv5), so the profile for one mailbox is the same on
//! every request and every instance, and installing it again replaces the old one instead of
//! adding a second account.
//!
//! Signing (CMS SignedData over these bytes) is the server's job: it needs the certificate.
//!
//! # Mappings
//!
//! | profile            | Apple                                                            |
//! |--------------------|------------------------------------------------------------------|
//! | `security` tls     | `UseSSL` true (implicit TLS on 993/995/465)                      |
//! | `security` starttls| `UseSSL` true (Mail upgrades with STARTTLS on 143/110/587)       |
//! | `security` none    | `UseSSL` false                                                   |
//! | `password-cleartext` | `EmailAuthPassword`                                            |
//! | `password-encrypted` | `EmailAuthCRAMMD5`                                             |
//! | `oauth2`           | `EmailAuthPassword`: profiles cannot carry OAuth for custom providers; the user enters an app password |
//! | `client-certificate` | `EmailAuthNone`: the certificate comes in its own payload      |

use plist::{Dictionary, Value};
use thiserror::Error;
use uuid::Uuid;

use crate::answer::AccountSettings;
use crate::profile::{Authentication, MailServer, Security, ServiceProfile};
use crate::xml;

/// The path of the profile download and of its HTML form.
pub const PATH: &str = "/mobileconfig";
/// The media type iOS and macOS install profiles from.
pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// Namespace of the derived payload UUIDs.
const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x3b0c_7a52_91e4_4f0d_8a6b_2d5e_c1f3_9a77);

/// Why no profile can be made for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MobileConfigError {
    /// Neither an incoming plus an outgoing mail server nor ActiveSync: only Exchange web
    /// services, which Apple Mail cannot configure from a profile.
    #[error("the profile has neither IMAP or POP3 with SMTP nor ActiveSync")]
    NothingToOffer,
}

/// What the server adds to every profile it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileOptions {
    /// Reverse-DNS prefix of every payload identifier (`example.hoster`).
    pub identifier_prefix: String,
    /// `PayloadOrganization` when the service profile has no display name.
    pub organization: String,
}

/// A configuration profile for one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileConfig {
    /// `PayloadIdentifier` of the profile.
    pub identifier: String,
    /// `PayloadUUID` of the profile.
    pub uuid: Uuid,
    /// `PayloadDisplayName`: what the device lists.
    pub display_name: String,
    /// `PayloadOrganization`.
    pub organization: String,
    /// The mailbox.
    pub email_address: String,
    /// The `com.apple.mail.managed` payload, when the profile has mail servers.
    pub mail: Option<MailPayload>,
    /// The `com.apple.eas.account` payload, when the profile has ActiveSync.
    pub exchange: Option<ExchangePayload>,
}

/// The `com.apple.mail.managed` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailPayload {
    /// `PayloadIdentifier`.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: Uuid,
    /// `EmailAccountType`: `EmailTypeIMAP` or `EmailTypePOP`.
    pub account_type: &'static str,
    /// `EmailAccountName`: the user's name, when the directory knows it.
    pub account_name: Option<String>,
    /// The incoming server.
    pub incoming: AppleServer,
    /// The outgoing server.
    pub outgoing: AppleServer,
}

/// One server of the mail payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppleServer {
    /// `...MailServerHostName`.
    pub host: String,
    /// `...MailServerPortNumber`.
    pub port: u16,
    /// `...MailServerUseSSL`.
    pub use_ssl: bool,
    /// `...MailServerAuthentication`.
    pub authentication: &'static str,
    /// `...MailServerUsername`.
    pub username: String,
}

/// The `com.apple.eas.account` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangePayload {
    /// `PayloadIdentifier`.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: Uuid,
    /// `Host`: the ActiveSync URL's host.
    pub host: String,
    /// `UserName`.
    pub username: String,
}

impl MobileConfig {
    /// The profile for `settings`' mailbox.
    pub fn for_account(
        settings: &AccountSettings,
        options: &ProfileOptions,
    ) -> Result<Self, MobileConfigError> {
        // Every field is named: a new profile field does not compile here until this dialect
        // decides whether it has a place for it.
        let ServiceProfile {
            imap,
            pop3,
            smtp,
            activesync_url,
            display_name,
            // Apple's mail and Exchange payloads have no keys for these.
            ews: _,
            mapi_http: _,
            documentation_url: _,
        } = &*settings.profile;
        let address = settings.address.to_string();
        let key = settings.address.lookup_key();
        let uuid = |kind: &str| Uuid::new_v5(&UUID_NAMESPACE, format!("{kind}:{key}").as_bytes());
        let profile_uuid = uuid("profile");
        let identifier = format!("{}.autodisco.{}", options.identifier_prefix, profile_uuid);
        let incoming = imap
            .first()
            .map(|s| ("EmailTypeIMAP", s))
            .or_else(|| pop3.first().map(|s| ("EmailTypePOP", s)));
        let mail = match (incoming, smtp.first()) {
            (Some((account_type, incoming)), Some(outgoing)) => Some(MailPayload {
                identifier: format!("{identifier}.mail"),
                uuid: uuid("mail"),
                account_type,
                account_name: settings.display_name.clone(),
                incoming: AppleServer::new(incoming, settings),
                outgoing: AppleServer::new(outgoing, settings),
            }),
            _ => None,
        };
        let exchange = activesync_url.as_deref().and_then(|url| {
            Some(ExchangePayload {
                identifier: format!("{identifier}.eas"),
                uuid: uuid("eas"),
                host: url_host(&settings.url(url))?,
                // ActiveSync signs in with the address unless the directory has a login name.
                username: settings
                    .login_name
                    .clone()
                    .unwrap_or_else(|| address.clone()),
            })
        });
        if mail.is_none() && exchange.is_none() {
            return Err(MobileConfigError::NothingToOffer);
        }
        let organization = display_name
            .clone()
            .unwrap_or_else(|| options.organization.clone());
        Ok(Self {
            identifier,
            uuid: profile_uuid,
            display_name: format!("{organization}: {address}"),
            organization,
            email_address: address,
            mail,
            exchange,
        })
    }

    /// The profile as a property list value.
    pub fn to_value(&self) -> Value {
        let mut content = Vec::new();
        if let Some(mail) = &self.mail {
            let mut d = Dictionary::new();
            d.insert(
                "EmailAccountDescription".into(),
                self.organization.clone().into(),
            );
            if let Some(name) = &mail.account_name {
                d.insert("EmailAccountName".into(), name.clone().into());
            }
            d.insert("EmailAccountType".into(), mail.account_type.into());
            d.insert("EmailAddress".into(), self.email_address.clone().into());
            mail.incoming.insert_into(&mut d, "Incoming");
            mail.outgoing.insert_into(&mut d, "Outgoing");
            // The device asks once and uses the password for both servers.
            d.insert("OutgoingPasswordSameAsIncomingPassword".into(), true.into());
            insert_payload_keys(
                &mut d,
                "com.apple.mail.managed",
                &mail.identifier,
                mail.uuid,
                &format!("Mail: {}", self.email_address),
            );
            content.push(Value::Dictionary(d));
        }
        if let Some(eas) = &self.exchange {
            let mut d = Dictionary::new();
            d.insert("EmailAddress".into(), self.email_address.clone().into());
            d.insert("Host".into(), eas.host.clone().into());
            d.insert("SSL".into(), true.into());
            d.insert("UserName".into(), eas.username.clone().into());
            insert_payload_keys(
                &mut d,
                "com.apple.eas.account",
                &eas.identifier,
                eas.uuid,
                &format!("Exchange ActiveSync: {}", self.email_address),
            );
            content.push(Value::Dictionary(d));
        }
        let mut top = Dictionary::new();
        top.insert("PayloadContent".into(), Value::Array(content));
        top.insert(
            "PayloadDescription".into(),
            format!("Mail settings for {}", self.email_address).into(),
        );
        top.insert(
            "PayloadDisplayName".into(),
            self.display_name.clone().into(),
        );
        top.insert("PayloadIdentifier".into(), self.identifier.clone().into());
        top.insert(
            "PayloadOrganization".into(),
            self.organization.clone().into(),
        );
        top.insert("PayloadRemovalDisallowed".into(), false.into());
        top.insert("PayloadType".into(), "Configuration".into());
        top.insert("PayloadUUID".into(), uuid_string(self.uuid).into());
        top.insert("PayloadVersion".into(), 1.into());
        let mut value = Value::Dictionary(top);
        make_xml_safe(&mut value);
        value
    }

    /// The profile as an XML property list, the bytes that are signed and served.
    pub fn to_plist_xml(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        self.to_value()
            .to_writer_xml(&mut out)
            .expect("writing a property list to memory cannot fail");
        out
    }
}

impl AppleServer {
    fn new(server: &MailServer, settings: &AccountSettings) -> Self {
        Self {
            host: server.host.clone(),
            port: server.port,
            use_ssl: server.security != Security::None,
            authentication: match server.authentication {
                Authentication::PasswordCleartext | Authentication::Oauth2 => "EmailAuthPassword",
                Authentication::PasswordEncrypted => "EmailAuthCRAMMD5",
                Authentication::ClientCertificate => "EmailAuthNone",
            },
            username: settings.username_for(server),
        }
    }

    fn insert_into(&self, d: &mut Dictionary, direction: &str) {
        let key = |name: &str| format!("{direction}MailServer{name}");
        d.insert(key("Authentication"), self.authentication.into());
        d.insert(key("HostName"), self.host.clone().into());
        d.insert(key("PortNumber"), u64::from(self.port).into());
        d.insert(key("UseSSL"), self.use_ssl.into());
        d.insert(key("Username"), self.username.clone().into());
    }
}

fn insert_payload_keys(d: &mut Dictionary, kind: &str, identifier: &str, uuid: Uuid, name: &str) {
    d.insert("PayloadDisplayName".into(), name.into());
    d.insert("PayloadIdentifier".into(), identifier.into());
    d.insert("PayloadType".into(), kind.into());
    d.insert("PayloadUUID".into(), uuid_string(uuid).into());
    d.insert("PayloadVersion".into(), 1.into());
}

/// Replaces the characters XML 1.0 cannot carry (section 2.2) in every string with U+FFFD, as
/// the XML dialects' writer does: the property list writer escapes markup but writes control
/// characters as they are, and a device refuses a profile that is not well-formed XML.
fn make_xml_safe(value: &mut Value) {
    match value {
        Value::String(text) if !text.chars().all(xml::is_xml_char) => {
            *text = text
                .chars()
                .map(|c| if xml::is_xml_char(c) { c } else { '\u{FFFD}' })
                .collect();
        }
        Value::Array(items) => items.iter_mut().for_each(make_xml_safe),
        Value::Dictionary(entries) => entries.values_mut().for_each(make_xml_safe),
        _ => {}
    }
}

/// Apple writes payload UUIDs in upper case.
fn uuid_string(uuid: Uuid) -> String {
    uuid.hyphenated()
        .encode_upper(&mut Uuid::encode_buffer())
        .to_owned()
}

/// The host of an `https://HOST[:PORT]/...` URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url
        .get(..8)?
        .eq_ignore_ascii_case("https://")
        .then(|| &url[8..])?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The reverse-DNS form of a domain (`hoster.example` gives `example.hoster`), for
/// [`ProfileOptions::identifier_prefix`].
pub fn reverse_dns(domain: &str) -> String {
    domain.rsplit('.').collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::address::EmailAddress;
    use crate::profile::ServiceProfile;

    fn options() -> ProfileOptions {
        ProfileOptions {
            identifier_prefix: reverse_dns("hoster.example"),
            organization: "hoster.example".into(),
        }
    }

    fn settings(profile: ServiceProfile, address: &str) -> AccountSettings {
        AccountSettings::new(EmailAddress::parse(address).unwrap(), Arc::new(profile))
    }

    #[test]
    fn identifiers_are_stable_per_address() {
        let profile = ServiceProfile::default_for_hoster("hoster.example");
        let a = MobileConfig::for_account(&settings(profile.clone(), "Jane@a.example"), &options())
            .unwrap();
        let again =
            MobileConfig::for_account(&settings(profile.clone(), "jane@A.example"), &options())
                .unwrap();
        let other =
            MobileConfig::for_account(&settings(profile, "joe@a.example"), &options()).unwrap();
        assert_eq!(a.uuid, again.uuid);
        assert_eq!(a.identifier, again.identifier);
        assert_eq!(a.uuid.get_version_num(), 5);
        assert_ne!(a.uuid, other.uuid);
        assert!(a.identifier.starts_with("example.hoster.autodisco."));
        let mail = a.mail.unwrap();
        assert_ne!(mail.uuid, a.uuid);
        assert_eq!(mail.identifier, format!("{}.mail", a.identifier));
    }

    /// Found by the property tests: a display name with a control character made a property
    /// list that is not XML, which a device refuses.
    #[test]
    fn control_characters_never_reach_the_property_list() {
        let mut account = settings(
            ServiceProfile::default_for_hoster("hoster.example"),
            "jane@a.example",
        );
        account.display_name = Some("Jane\u{1}\u{1b}[31m".into());
        let bytes = MobileConfig::for_account(&account, &options())
            .unwrap()
            .to_plist_xml();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.chars().all(xml::is_xml_char), "{text}");
        assert!(
            text.contains("<string>Jane\u{FFFD}\u{FFFD}[31m</string>"),
            "{text}"
        );
    }

    #[test]
    fn mail_and_activesync_payloads_follow_the_profile() {
        let mut profile = ServiceProfile::default_for_hoster("hoster.example");
        profile.activesync_url =
            Some("https://EAS.hoster.example:443/Microsoft-Server-ActiveSync".into());
        let mut s = settings(profile, "jane@a.example");
        s.login_name = Some("jdoe".into());
        s.display_name = Some("Jane <Doe> & Co".into());
        let config = MobileConfig::for_account(&s, &options()).unwrap();
        let mail = config.mail.as_ref().unwrap();
        assert_eq!(mail.account_type, "EmailTypeIMAP");
        assert_eq!(
            (
                mail.incoming.host.as_str(),
                mail.incoming.port,
                mail.incoming.use_ssl
            ),
            ("mail.hoster.example", 993, true)
        );
        assert_eq!(mail.incoming.username, "jdoe");
        assert_eq!(mail.outgoing.port, 465);
        let eas = config.exchange.as_ref().unwrap();
        assert_eq!(eas.host, "eas.hoster.example");
        assert_eq!(eas.username, "jdoe");

        let xml = String::from_utf8(config.to_plist_xml()).unwrap();
        assert!(xml.contains("Jane &lt;Doe&gt; &amp; Co"), "{xml}");
        assert!(!xml.contains("<key>IncomingPassword</key>"), "{xml}");
        assert!(!xml.contains("<key>Password</key>"), "{xml}");
        let parsed = Value::from_reader_xml(xml.as_bytes()).unwrap();
        assert_eq!(parsed, config.to_value());
        let top = parsed.as_dictionary().unwrap();
        assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
        let content = top["PayloadContent"].as_array().unwrap();
        assert_eq!(
            content[1].as_dictionary().unwrap()["PayloadType"].as_string(),
            Some("com.apple.eas.account")
        );
    }

    #[test]
    fn pop_only_and_exchange_only_profiles() {
        let mut pop = ServiceProfile::default_for_hoster("hoster.example");
        pop.pop3 = pop.imap.drain(..).collect();
        pop.pop3[0].security = Security::Starttls;
        pop.pop3[0].port = 110;
        let config = MobileConfig::for_account(&settings(pop, "a@a.example"), &options()).unwrap();
        let mail = config.mail.unwrap();
        assert_eq!(mail.account_type, "EmailTypePOP");
        assert!(mail.incoming.use_ssl);

        let mut ews_only = ServiceProfile::default_for_hoster("hoster.example");
        ews_only.imap.clear();
        assert_eq!(
            MobileConfig::for_account(&settings(ews_only, "a@a.example"), &options()),
            Err(MobileConfigError::NothingToOffer)
        );
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://A.example/x").as_deref(),
            Some("a.example")
        );
        assert_eq!(
            url_host("https://u@a.example:8443").as_deref(),
            Some("a.example")
        );
        assert_eq!(url_host("http://a.example/"), None);
        assert_eq!(url_host("https:///x"), None);
    }
}
