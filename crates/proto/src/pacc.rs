//! PACC, the IETF provider auto-configuration (draft-ietf-mailmaint-pacc, "Automatic
//! Configuration of Email, Calendar, and Contact Server Settings").
//!
//! The user agent fetches `https://ua-auto-config.DOMAIN/.well-known/user-agent-configuration.json`
//! ([`HOST_LABEL`], [`PATH`]) and accepts the body only if its SHA-256 digest matches a TXT record
//! at `_ua-auto-config.DOMAIN` of the form `v=UAAC1; a=sha256; d=BASE64` ([`TXT_LABEL`],
//! [`digest_record`]). The document therefore has to be byte-stable: the same profile always
//! renders the same bytes, and a profile change changes the digest the customer must publish
//! (`autodisco domain show` prints the current record).
//!
//! The document holds no username and no port: the user agent signs in with the email address,
//! and each mail protocol runs with implicit TLS on its registered port (IMAP 993, POP3 995,
//! submission 465; RFC 8314). autodisco's choices where a profile says more than PACC can:
//!
//! - a server on another port, with STARTTLS or without TLS, or whose login is not the full
//!   address (`%EMAILADDRESS%`), is left out, and the next server of that protocol is tried;
//! - a profile with no IMAP or POP3 server that fits, or no submission server that fits, is not
//!   offered at all ([`PaccError`]): an account that can read but not send is worse than the
//!   client falling back to autoconfig or AutoDiscover;
//! - `authentication.password` is true when a published server takes a password; the profile
//!   has no OAuth issuer, so `oauth-public` is never sent;
//! - `info.provider.name` is the profile's display name (else the primary domain), and
//!   `info.help.documentation` its documentation URL when that needs no per-mailbox expansion.
//!
//! The key names follow revision -03 of the draft (`submit` for message submission).

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::address::Domain;
use crate::profile::{Authentication, MailServer, Security, ServiceProfile};

/// The host label the document is served under: `ua-auto-config.DOMAIN`.
pub const HOST_LABEL: &str = "ua-auto-config";
/// The document's well-known path.
pub const PATH: &str = "/.well-known/user-agent-configuration.json";
/// The owner label of the digest TXT record: `_ua-auto-config.DOMAIN`.
pub const TXT_LABEL: &str = "_ua-auto-config";
/// The document's media type.
pub const MEDIA_TYPE: &str = "application/json";

const IMAP_PORT: u16 = 993;
const POP3_PORT: u16 = 995;
const SUBMISSION_PORT: u16 = 465;

/// Why a profile cannot be published as a PACC document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PaccError {
    /// No IMAP or POP3 server with implicit TLS on its registered port and the address as login.
    #[error(
        "no IMAP server on 993 or POP3 server on 995 with implicit TLS and the email address as login"
    )]
    NoIncomingServer,
    /// No SMTP submission server on 465 with implicit TLS and the address as login.
    #[error("no SMTP submission server on 465 with implicit TLS and the email address as login")]
    NoSubmissionServer,
}

/// The configuration document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaccDocument {
    /// The servers, by protocol.
    pub protocols: Protocols,
    /// How the user agent authenticates.
    pub authentication: PaccAuthentication,
    /// About the provider.
    pub info: Info,
}

/// `protocols`: one entry per protocol the provider offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Protocols {
    /// IMAP (implicit TLS, port 993).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap: Option<HostEntry>,
    /// POP3 (implicit TLS, port 995).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop3: Option<HostEntry>,
    /// Message submission (implicit TLS, port 465).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit: Option<HostEntry>,
}

/// A protocol reached by host name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    /// The server's host name.
    pub host: String,
}

/// `authentication`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaccAuthentication {
    /// Whether the servers take a password.
    pub password: bool,
}

/// `info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// `provider`.
    pub provider: Provider,
    /// `help`, when there is a documentation page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<Help>,
}

/// `info.provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// The provider's name.
    pub name: String,
}

/// `info.help`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Help {
    /// A page explaining the settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation: Option<String>,
}

impl PaccDocument {
    /// The document for a hosted domain (its primary domain and profile). Alias domains get the
    /// same document as their primary: it names no domain.
    pub fn for_domain(profile: &ServiceProfile, primary: &Domain) -> Result<Self, PaccError> {
        // Every field is named: a new profile field does not compile here until this dialect
        // decides whether it has a place for it.
        let ServiceProfile {
            display_name,
            imap,
            pop3,
            smtp,
            documentation_url,
            // Exchange endpoints have no entry in draft-ietf-mailmaint-pacc-03.
            ews: _,
            activesync_url: _,
            mapi_http: _,
        } = profile;
        let pick = |servers: &[MailServer], port| {
            servers
                .iter()
                .find(|s| {
                    s.port == port && s.security == Security::Tls && s.username == "%EMAILADDRESS%"
                })
                .map(|s| (s.host.clone(), s.authentication))
        };
        let imap = pick(imap, IMAP_PORT);
        let pop3 = pick(pop3, POP3_PORT);
        let submit = pick(smtp, SUBMISSION_PORT);
        if imap.is_none() && pop3.is_none() {
            return Err(PaccError::NoIncomingServer);
        }
        if submit.is_none() {
            return Err(PaccError::NoSubmissionServer);
        }
        let password = [&imap, &pop3, &submit].iter().any(|s| {
            matches!(
                s,
                Some((
                    _,
                    Authentication::PasswordCleartext | Authentication::PasswordEncrypted
                ))
            )
        });
        let entry = |s: Option<(String, Authentication)>| s.map(|(host, _)| HostEntry { host });
        let documentation = documentation_url
            .as_deref()
            .filter(|url| !url.contains("%EMAILADDRESS%") && !url.contains("%EMAILLOCALPART%"))
            .map(|url| url.replace("%EMAILDOMAIN%", primary.as_str()));
        Ok(Self {
            protocols: Protocols {
                imap: entry(imap),
                pop3: entry(pop3),
                submit: entry(submit),
            },
            authentication: PaccAuthentication { password },
            info: Info {
                provider: Provider {
                    name: display_name.clone().unwrap_or_else(|| primary.to_string()),
                },
                help: documentation.map(|documentation| Help {
                    documentation: Some(documentation),
                }),
            },
        })
    }

    /// The document's bytes: compact JSON, keys in a fixed order, so equal documents are equal
    /// bytes and the published digest stays valid.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a PACC document always serializes")
    }

    /// Decodes a document (the client side); unknown keys are ignored, as the draft asks of
    /// user agents for forward compatibility.
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// The TXT record value that vouches for `body`: `v=UAAC1; a=sha256; d=` and the base64
/// SHA-256 digest of the exact bytes served.
pub fn digest_record(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!(
        "v=UAAC1; a=sha256; d={}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Whether one TXT record value vouches for `body` (the user agent's check): tags in any order,
/// white space around them ignored, unknown tags ignored.
pub fn record_matches(record: &str, body: &[u8]) -> bool {
    let mut version = None;
    let mut algorithm = None;
    let mut digest = None;
    for tag in record.split(';') {
        let Some((name, value)) = tag.split_once('=') else {
            continue;
        };
        match name.trim() {
            "v" => version = Some(value.trim()),
            "a" => algorithm = Some(value.trim()),
            "d" => digest = Some(value.trim()),
            _ => {}
        }
    }
    if version != Some("UAAC1") || algorithm != Some("sha256") {
        return false;
    }
    let Some(Ok(digest)) = digest.map(|d| base64::engine::general_purpose::STANDARD.decode(d))
    else {
        return false;
    };
    digest == Sha256::digest(body).as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary() -> Domain {
        Domain::parse("customer.example").unwrap()
    }

    #[test]
    fn default_profile_publishes_imap_and_submission() {
        let mut profile = ServiceProfile::default_for_hoster("hoster.example");
        profile.documentation_url = Some("https://hoster.example/help/%EMAILDOMAIN%".into());
        let doc = PaccDocument::for_domain(&profile, &primary()).unwrap();
        let json = String::from_utf8(doc.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"protocols":{"imap":{"host":"mail.hoster.example"},"submit":{"host":"mail.hoster.example"}},"authentication":{"password":true},"info":{"provider":{"name":"hoster.example Mail"},"help":{"documentation":"https://hoster.example/help/customer.example"}}}"#
        );
        assert_eq!(PaccDocument::from_json(json.as_bytes()).unwrap(), doc);
    }

    #[test]
    fn servers_pacc_cannot_express_are_left_out() {
        let mut profile = ServiceProfile::default_for_hoster("hoster.example");
        profile.imap[0].username = "%EMAILLOCALPART%".into();
        assert_eq!(
            PaccDocument::for_domain(&profile, &primary()),
            Err(PaccError::NoIncomingServer)
        );
        profile.pop3 = vec![MailServer {
            host: "pop.hoster.example".into(),
            port: 995,
            security: Security::Tls,
            authentication: Authentication::Oauth2,
            username: "%EMAILADDRESS%".into(),
        }];
        profile.smtp[0].authentication = Authentication::Oauth2;
        let doc = PaccDocument::for_domain(&profile, &primary()).unwrap();
        assert_eq!(doc.protocols.imap, None);
        assert_eq!(doc.protocols.pop3.unwrap().host, "pop.hoster.example");
        assert!(!doc.authentication.password);
        // Only STARTTLS submission left: nothing to send with, so nothing is published.
        profile.smtp.retain(|s| s.port == 587);
        assert_eq!(
            PaccDocument::for_domain(&profile, &primary()),
            Err(PaccError::NoSubmissionServer)
        );
    }

    #[test]
    fn digest_records_match_only_their_bytes() {
        let body = br#"{"a":1}"#;
        let record = digest_record(body);
        assert!(record.starts_with("v=UAAC1; a=sha256; d="));
        assert!(record_matches(&record, body));
        assert!(!record_matches(&record, br#"{"a":2}"#));
        let reordered = format!("{} ; v=UAAC1;a=sha256 ; x=future;", &record[17..]);
        assert!(record_matches(&reordered, body), "{reordered}");
        assert!(!record_matches(&record.replace("UAAC1", "UAAC2"), body));
        assert!(!record_matches("v=UAAC1; a=sha256; d=***", body));
    }
}
