//! The service profile: one protocol-neutral description of a hoster's plan.
//!
//! Every response dialect (POX, mobilesync, SOAP, v2 JSON, Mozilla autoconfig, Apple profiles) is
//! rendered from this one type, so a setting changed once shows up everywhere. It is stored as
//! JSON in the directory and written as TOML in the config; both go through serde with unknown
//! fields refused.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::address::EmailAddress;

/// A hoster's plan: the servers and web endpoints every account of a domain uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceProfile {
    /// The provider's name as clients show it ("Example Hosting Mail").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// IMAP servers, most preferred first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imap: Vec<MailServer>,
    /// POP3 servers, most preferred first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pop3: Vec<MailServer>,
    /// SMTP submission servers, most preferred first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smtp: Vec<MailServer>,
    /// Exchange Web Services and the web endpoints that come with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ews: Option<EwsEndpoints>,
    /// Exchange ActiveSync URL (`https://HOST/Microsoft-Server-ActiveSync`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activesync_url: Option<String>,
    /// MAPI over HTTP endpoints, offered only to clients that announce `X-MapiHttpCapability`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapi_http: Option<MapiHttpEndpoints>,
    /// A page that explains the settings to a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    /// The hoster's inbound mail hosts, most preferred first: the MX records a customer domain
    /// on this plan publishes (`autodisco dns records`) and the live checks expect. Empty when
    /// the hoster does not receive the domains' mail, or leaves MX to the customers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mx: Vec<String>,
}

/// One IMAP, POP3 or SMTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailServer {
    /// Host name clients connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// How the client proves who it is.
    #[serde(default)]
    pub authentication: Authentication,
    /// The login name, with placeholders (`%EMAILADDRESS%`, `%EMAILLOCALPART%`, `%EMAILDOMAIN%`).
    #[serde(default = "default_username")]
    pub username: String,
}

fn default_username() -> String {
    "%EMAILADDRESS%".to_owned()
}

/// Transport security of a mail server connection.
///
/// The POX mapping is pinned here, once, for every dialect ([MS-OXDSCLI] 2.2.4.1.1.2.2.1.5 SSL and
/// 2.2.4.1.1.2.2.1.9 Encryption): implicit TLS is `SSL on` + `Encryption SSL`; STARTTLS is
/// `Encryption TLS`; none is `SSL off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, POP3S 995, SMTPS 465).
    Tls,
    /// A plain connection upgraded with STARTTLS (IMAP 143, SMTP 587).
    Starttls,
    /// No encryption. Refused by most clients; present for completeness.
    None,
}

/// How a client authenticates to a mail server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Authentication {
    /// A password sent as is inside the protected connection (PLAIN/LOGIN).
    #[default]
    PasswordCleartext,
    /// A password proven by a challenge (CRAM-MD5, NTLM): Outlook's "SPA".
    PasswordEncrypted,
    /// OAuth 2.0 bearer tokens.
    Oauth2,
    /// A TLS client certificate.
    ClientCertificate,
}

/// Exchange Web Services and related web endpoints ([MS-OXDSCLI] 2.2.4.1.1.2.2 Protocol).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EwsEndpoints {
    /// The EWS URL (`EwsUrl`, SOAP `ExternalEwsUrl`).
    pub url: String,
    /// Availability (free/busy) service URL (`ASUrl`); defaults to the EWS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_url: Option<String>,
    /// Out-of-office service URL (`OOFUrl`); defaults to the EWS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oof_url: Option<String>,
    /// Offline address book URL (`OABUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oab_url: Option<String>,
    /// Unified messaging URL (`UMUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub um_url: Option<String>,
    /// Control panel URL (`EcpUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecp_url: Option<String>,
    /// Outlook on the web URL (`OWAUrl` in the WEB block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owa_url: Option<String>,
    /// The mailbox server name for the `EXCH` block (`Server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox_server: Option<String>,
    /// The Outlook Anywhere (RPC over HTTP) host for the `EXPR` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_http_server: Option<String>,
    /// `AuthPackage` for the EXCH/EXPR blocks: basic, ntlm, negotiate, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_package: Option<String>,
}

impl EwsEndpoints {
    /// The availability (free/busy) URL: the configured one, or the EWS URL.
    pub fn availability_url(&self) -> &str {
        self.availability_url.as_deref().unwrap_or(&self.url)
    }

    /// The out-of-office URL: the configured one, or the EWS URL.
    pub fn oof_url(&self) -> &str {
        self.oof_url.as_deref().unwrap_or(&self.url)
    }
}

/// MAPI over HTTP endpoints ([MS-OXDSCLI] 2.2.4.1.1.2.2.1 with `Type="mapiHttp"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapiHttpEndpoints {
    /// MailStore URL used inside the hoster's network.
    pub mailstore_internal_url: String,
    /// MailStore URL used from the internet.
    pub mailstore_external_url: String,
    /// AddressBook URL used inside the hoster's network.
    pub addressbook_internal_url: String,
    /// AddressBook URL used from the internet.
    pub addressbook_external_url: String,
}

/// Why a profile was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// No incoming and no Exchange endpoint: a client could configure nothing.
    #[error(
        "the profile defines no incoming server (imap, pop3), no EWS and no ActiveSync endpoint"
    )]
    NothingToOffer,
    /// A URL that is not `https://`: clients refuse them and credentials would travel in clear.
    #[error("{field} must be an https:// URL, got {value:?}")]
    NotHttps {
        /// Which setting.
        field: &'static str,
        /// What it was.
        value: String,
    },
    /// A server host name that is not a valid host name.
    #[error("{field} host {value:?} is not a valid host name")]
    InvalidHost {
        /// Which setting.
        field: &'static str,
        /// What it was.
        value: String,
    },
    /// Port 0.
    #[error("{field} port must be between 1 and 65535")]
    InvalidPort {
        /// Which setting.
        field: &'static str,
    },
    /// A placeholder we do not know, such as `%USER%`.
    #[error(
        "{field} contains an unknown placeholder in {value:?}; known are %EMAILADDRESS%, %EMAILLOCALPART%, %EMAILDOMAIN%"
    )]
    UnknownPlaceholder {
        /// Which setting.
        field: &'static str,
        /// What it was.
        value: String,
    },
}

impl ServiceProfile {
    /// Checks the whole profile, reporting every problem found.
    pub fn validate(&self) -> Result<(), Vec<ProfileError>> {
        let mut problems = Vec::new();
        if self.imap.is_empty()
            && self.pop3.is_empty()
            && self.ews.is_none()
            && self.activesync_url.is_none()
        {
            problems.push(ProfileError::NothingToOffer);
        }
        for (field, servers) in [
            ("imap", &self.imap),
            ("pop3", &self.pop3),
            ("smtp", &self.smtp),
        ] {
            for server in servers {
                if crate::address::Domain::parse(&server.host).is_err() {
                    problems.push(ProfileError::InvalidHost {
                        field,
                        value: server.host.clone(),
                    });
                }
                if server.port == 0 {
                    problems.push(ProfileError::InvalidPort { field });
                }
                if !placeholders_known(&server.username) {
                    problems.push(ProfileError::UnknownPlaceholder {
                        field,
                        value: server.username.clone(),
                    });
                }
            }
        }
        for host in &self.mx {
            if crate::address::Domain::parse(host).is_err() {
                problems.push(ProfileError::InvalidHost {
                    field: "mx",
                    value: host.clone(),
                });
            }
        }
        let mut urls: Vec<(&'static str, &str)> = Vec::new();
        if let Some(ews) = &self.ews {
            urls.push(("ews.url", &ews.url));
            for (field, url) in [
                ("ews.availability_url", &ews.availability_url),
                ("ews.oof_url", &ews.oof_url),
                ("ews.oab_url", &ews.oab_url),
                ("ews.um_url", &ews.um_url),
                ("ews.ecp_url", &ews.ecp_url),
                ("ews.owa_url", &ews.owa_url),
            ] {
                if let Some(url) = url {
                    urls.push((field, url));
                }
            }
        }
        if let Some(url) = &self.activesync_url {
            urls.push(("activesync_url", url));
        }
        if let Some(mapi) = &self.mapi_http {
            urls.push((
                "mapi_http.mailstore_internal_url",
                &mapi.mailstore_internal_url,
            ));
            urls.push((
                "mapi_http.mailstore_external_url",
                &mapi.mailstore_external_url,
            ));
            urls.push((
                "mapi_http.addressbook_internal_url",
                &mapi.addressbook_internal_url,
            ));
            urls.push((
                "mapi_http.addressbook_external_url",
                &mapi.addressbook_external_url,
            ));
        }
        for (field, url) in urls {
            if !is_https_url(url) {
                problems.push(ProfileError::NotHttps {
                    field,
                    value: url.to_owned(),
                });
            } else if !placeholders_known(url) {
                problems.push(ProfileError::UnknownPlaceholder {
                    field,
                    value: url.to_owned(),
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The profile a fresh installation gets when the config defines none: IMAP 993, SMTP 465
    /// and 587, and EWS, OAB, OOF and free/busy at `mail.HOSTER`.
    pub fn default_for_hoster(hoster: &str) -> Self {
        let mail = format!("mail.{hoster}");
        let server = |port, security| MailServer {
            host: mail.clone(),
            port,
            security,
            authentication: Authentication::PasswordCleartext,
            username: default_username(),
        };
        let ews_url = format!("https://{mail}/EWS/Exchange.asmx");
        Self {
            display_name: Some(format!("{hoster} Mail")),
            imap: vec![server(993, Security::Tls)],
            pop3: Vec::new(),
            smtp: vec![server(465, Security::Tls), server(587, Security::Starttls)],
            ews: Some(EwsEndpoints {
                url: ews_url.clone(),
                availability_url: Some(ews_url.clone()),
                oof_url: Some(ews_url),
                oab_url: Some(format!("https://{mail}/OAB/")),
                um_url: None,
                ecp_url: None,
                owa_url: None,
                mailbox_server: None,
                rpc_http_server: None,
                auth_package: None,
            }),
            activesync_url: None,
            mapi_http: None,
            documentation_url: None,
            mx: Vec::new(),
        }
    }
}

fn is_https_url(url: &str) -> bool {
    url.len() > "https://".len()
        && url[..8].eq_ignore_ascii_case("https://")
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

const PLACEHOLDERS: [&str; 3] = ["%EMAILADDRESS%", "%EMAILLOCALPART%", "%EMAILDOMAIN%"];

fn placeholders_known(value: &str) -> bool {
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        let tail = &rest[start..];
        match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
            Some(p) => rest = &tail[p.len()..],
            // A lone `%` that opens no placeholder is allowed only as a URL escape (`%2F`).
            None if tail.len() >= 3 && tail.as_bytes()[1..3].iter().all(u8::is_ascii_hexdigit) => {
                rest = &tail[3..]
            }
            None => return false,
        }
    }
    true
}

/// Expands `%EMAILADDRESS%`, `%EMAILLOCALPART%` and `%EMAILDOMAIN%` for one address.
pub fn expand_placeholders(template: &str, address: &EmailAddress) -> String {
    // One pass: a placeholder's value is never scanned again, so an address whose local part
    // contains `%EMAILDOMAIN%` is written as it is; and one allocation per URL, on every
    // answer's path.
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("%EMAILADDRESS%") {
            out.push_str(address.local_part());
            out.push('@');
            out.push_str(address.domain().as_str());
            rest = after;
        } else if let Some(after) = tail.strip_prefix("%EMAILLOCALPART%") {
            out.push_str(address.local_part());
            rest = after;
        } else if let Some(after) = tail.strip_prefix("%EMAILDOMAIN%") {
            out.push_str(address.domain().as_str());
            rest = after;
        } else {
            out.push('%');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_expanded_once() {
        let address = EmailAddress::parse("jane%EMAILDOMAIN%@customer.example").unwrap();
        assert_eq!(
            expand_placeholders(
                "https://h/%EMAILADDRESS%/%EMAILLOCALPART%?d=%EMAILDOMAIN%%",
                &address
            ),
            "https://h/jane%EMAILDOMAIN%@customer.example/jane%EMAILDOMAIN%?d=customer.example%"
        );
        let plain = EmailAddress::parse("a@b.example").unwrap();
        assert_eq!(expand_placeholders("%EMAIL%", &plain), "%EMAIL%");
        assert_eq!(
            expand_placeholders("no placeholder", &plain),
            "no placeholder"
        );
    }

    #[test]
    fn default_profile_is_valid() {
        let p = ServiceProfile::default_for_hoster("hoster.example");
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.imap[0].host, "mail.hoster.example");
        assert_eq!(
            p.ews.as_ref().unwrap().oof_url(),
            "https://mail.hoster.example/EWS/Exchange.asmx"
        );
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut p = ServiceProfile::default_for_hoster("hoster.example");
        p.imap[0].port = 0;
        p.imap[0].username = "%USER%".into();
        p.ews.as_mut().unwrap().url = "http://mail.hoster.example/EWS/Exchange.asmx".into();
        let errors = p.validate().unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(
            ServiceProfile::default().validate(),
            Err(vec![ProfileError::NothingToOffer])
        );
    }

    #[test]
    fn placeholders_expand() {
        let a = EmailAddress::parse("Jane@Example.org").unwrap();
        assert_eq!(
            expand_placeholders("%EMAILLOCALPART%+x@%EMAILDOMAIN% (%EMAILADDRESS%)", &a),
            "Jane+x@example.org (Jane@example.org)"
        );
        assert!(placeholders_known("https://x.example/a%2Fb/%EMAILDOMAIN%"));
        assert!(!placeholders_known("%EMAIL%"));
    }

    #[test]
    fn json_round_trip_refuses_unknown_fields() {
        let p = ServiceProfile::default_for_hoster("hoster.example");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<ServiceProfile>(&json).unwrap(), p);
        assert!(serde_json::from_str::<ServiceProfile>(r#"{"imapp":[]}"#).is_err());
    }
}
