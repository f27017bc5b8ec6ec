//! The DNS records a hosted customer domain publishes, computed in one place.
//!
//! `autodisco domain add`, `domain show`, `dns records`, the live checks and the admin API all
//! call [`DomainRecords::compute`], so what the hoster tells its customers, what the checks
//! expect and what the service answers cannot drift apart. An alias domain publishes the same
//! records as its primary would, under its own name, with its primary's profile (addresses in
//! the alias get the primary's settings, and the PACC document names no domain).
//!
//! The records, each with the reason a person reads:
//!
//! - `autodiscover` CNAME to the redirect site ([MS-OXDISCO] 3.1.5.4);
//! - `_autodiscover._tcp` SRV `0 0 443` to the HTTPS service ([MS-OXDISCO] 3.1.5.5);
//! - `autoconfig` CNAME to the redirect site (Mozilla autoconfig over plain HTTP);
//! - `ua-auto-config` CNAME to the service and the `_ua-auto-config` TXT digest, when the profile
//!   can be published with PACC (draft-ietf-mailmaint-pacc);
//! - the RFC 6186 SRV records of the profile's IMAP, POP3 and submission servers, with the
//!   target `.` for a service the profile does not offer (RFC 2782: "decidedly not available");
//! - the MX records, when the profile names the hoster's inbound mail hosts (`mx`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::address::Domain;
use crate::pacc::{self, PaccDocument};
use crate::profile::{MailServer, Security, ServiceProfile};

/// The hoster's own names the customers' records point at (from the server config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HosterNames {
    /// The redirect site (`redirect_host`): the CNAME target of `autodiscover` and `autoconfig`.
    pub redirect_host: String,
    /// The HTTPS service (`service_host`): the SRV target and the `ua-auto-config` CNAME target.
    pub service_host: String,
}

/// What a record is for; the live checks word their findings by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// `autodiscover` CNAME: Outlook's HTTP redirect step.
    AutodiscoverCname,
    /// `_autodiscover._tcp` SRV: Outlook's SRV step.
    AutodiscoverSrv,
    /// `autoconfig` CNAME: Mozilla autoconfig over plain HTTP.
    AutoconfigCname,
    /// `ua-auto-config` CNAME: the PACC host.
    PaccCname,
    /// `_ua-auto-config` TXT: the PACC digest.
    PaccDigest,
    /// An RFC 6186 SRV record of a mail access or submission service.
    MailSrv,
    /// An MX record.
    Mx,
}

/// The data of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum RecordData {
    /// An alias to `target`.
    Cname {
        /// The canonical name, without the trailing dot.
        target: String,
    },
    /// A service location (RFC 2782).
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Load sharing among equal priorities; 0 when there is nothing to share.
        weight: u16,
        /// The TCP port (0 with the target `.`).
        port: u16,
        /// The host, without the trailing dot, or `.` for "not offered here".
        target: String,
    },
    /// Text, one string.
    Txt {
        /// The text.
        text: String,
    },
    /// A mail exchanger.
    Mx {
        /// Lower is tried first.
        preference: u16,
        /// The host, without the trailing dot.
        exchange: String,
    },
}

impl RecordData {
    /// The record type's mnemonic: `CNAME`, `SRV`, `TXT`, `MX`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Cname { .. } => "CNAME",
            Self::Srv { .. } => "SRV",
            Self::Txt { .. } => "TXT",
            Self::Mx { .. } => "MX",
        }
    }
}

/// Presentation format (RFC 1035 section 5.1): absolute names with their trailing dot, TXT
/// text quoted with `"` and `\` escaped.
impl fmt::Display for RecordData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cname { target } => write!(f, "{}", absolute(target)),
            Self::Srv {
                priority,
                weight,
                port,
                target,
            } => write!(f, "{priority} {weight} {port} {}", absolute(target)),
            Self::Txt { text } => {
                write!(f, "\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
            }
            Self::Mx {
                preference,
                exchange,
            } => write!(f, "{preference} {}", absolute(exchange)),
        }
    }
}

/// `name.`, and `.` stays `.`.
fn absolute(name: &str) -> String {
    if name == "." {
        ".".to_owned()
    } else {
        format!("{}.", name.trim_end_matches('.'))
    }
}

/// One record a customer domain publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// The owner name, without the trailing dot (`autodiscover.customer.example`).
    pub name: String,
    /// Type and data.
    #[serde(flatten)]
    pub data: RecordData,
    /// What it is for.
    pub purpose: Purpose,
    /// Whether clients fail without it. Optional records only add a method (the SRV steps,
    /// autoconfig, PACC); a missing one is a note, a wrong one still a finding.
    pub required: bool,
    /// Why, in a short sentence with its spec.
    pub why: String,
}

impl DnsRecord {
    /// The record as a zone-file line with its reason as a comment:
    /// `autodiscover.customer.example. CNAME autodiscoverredirect.hoster.example. ; why`.
    pub fn zone_line(&self) -> String {
        format!(
            "{}. {} {}   ; {}",
            self.name,
            self.data.type_name(),
            self.data,
            self.why
        )
    }
}

/// Every record of one customer domain; serialises as
/// `{"domain", "primary", "records": [...], "notes": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecords {
    /// The customer domain the records are published in.
    pub domain: Domain,
    /// Its primary domain (itself, unless it is an alias).
    pub primary: Domain,
    /// The records, in the order above.
    pub records: Vec<DnsRecord>,
    /// What is deliberately not published, and why (a profile PACC cannot describe).
    pub notes: Vec<String>,
}

impl DomainRecords {
    /// The records of `domain`, whose primary is `primary` (the same for a primary domain)
    /// with the primary's `profile`.
    pub fn compute(
        domain: &Domain,
        primary: &Domain,
        profile: &ServiceProfile,
        hoster: &HosterNames,
    ) -> Self {
        let mut builder = Builder {
            domain,
            records: Vec::new(),
        };
        builder.autodiscover(hoster);
        let mut notes = Vec::new();
        match PaccDocument::for_domain(profile, primary) {
            Ok(document) => builder.pacc(hoster, &document),
            Err(reason) => notes.push(format!(
                "no {}.{domain} TXT record and no {} CNAME: the profile cannot be published with PACC ({reason})",
                pacc::TXT_LABEL,
                pacc::HOST_LABEL
            )),
        }
        builder.mail_services(profile);
        builder.mx(profile);
        Self {
            domain: domain.clone(),
            primary: primary.clone(),
            records: builder.records,
            notes,
        }
    }
}

impl Serialize for DomainRecords {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut state = serializer.serialize_struct("DomainRecords", 4)?;
        state.serialize_field("domain", self.domain.as_str())?;
        state.serialize_field("primary", self.primary.as_str())?;
        state.serialize_field("records", &self.records)?;
        state.serialize_field("notes", &self.notes)?;
        state.end()
    }
}

/// Collects the records of one domain.
struct Builder<'a> {
    domain: &'a Domain,
    records: Vec<DnsRecord>,
}

impl Builder<'_> {
    fn push(&mut self, label: &str, data: RecordData, purpose: Purpose, required: bool, why: &str) {
        let name = if label.is_empty() {
            self.domain.to_string()
        } else {
            format!("{label}.{}", self.domain)
        };
        self.records.push(DnsRecord {
            name,
            data,
            purpose,
            required,
            why: why.to_owned(),
        });
    }

    fn cname(&mut self, label: &str, target: &str, purpose: Purpose, required: bool, why: &str) {
        let data = RecordData::Cname {
            target: target.trim_end_matches('.').to_owned(),
        };
        self.push(label, data, purpose, required, why);
    }

    /// Outlook's records. `autodiscover` reaches the redirect site, which answers the plain GET
    /// with a 302 to the service ([MS-OXDISCO] 3.1.5.4); its port 443 stays closed so Outlook
    /// gets that far without a certificate warning. The SRV record is Outlook's last step
    /// ([MS-OXDISCO] 3.1.5.5) and the EWS libraries': optional while the CNAME works.
    /// `autoconfig` reaches the redirect site too: Thunderbird's HTTPS attempt fails on the
    /// closed port at once and its plain-HTTP attempt gets the document there
    /// (draft-ietf-mailmaint-autoconfig section 4.1); the MX path makes it optional.
    fn autodiscover(&mut self, hoster: &HosterNames) {
        self.cname(
            "autodiscover",
            &hoster.redirect_host,
            Purpose::AutodiscoverCname,
            true,
            "Outlook's HTTP redirect step ([MS-OXDISCO] 3.1.5.4)",
        );
        let srv = RecordData::Srv {
            priority: 0,
            weight: 0,
            port: 443,
            target: hoster.service_host.trim_end_matches('.').to_owned(),
        };
        self.push(
            "_autodiscover._tcp",
            srv,
            Purpose::AutodiscoverSrv,
            false,
            "the SRV step of Outlook and the EWS libraries ([MS-OXDISCO] 3.1.5.5)",
        );
        self.cname(
            "autoconfig",
            &hoster.redirect_host,
            Purpose::AutoconfigCname,
            false,
            "Mozilla autoconfig over plain HTTP (draft-ietf-mailmaint-autoconfig 4.1)",
        );
    }

    /// PACC: `ua-auto-config` points at the HTTPS service, which needs a certificate for the
    /// name in `https.certs_dir`; `_ua-auto-config` carries the digest of the exact document
    /// (draft-ietf-mailmaint-pacc), so it changes whenever the domain's profile changes.
    fn pacc(&mut self, hoster: &HosterNames, document: &PaccDocument) {
        self.cname(
            pacc::HOST_LABEL,
            &hoster.service_host,
            Purpose::PaccCname,
            false,
            "PACC (draft-ietf-mailmaint-pacc); needs a certificate for the name in https.certs_dir",
        );
        let text = pacc::digest_record(&document.to_json());
        self.push(
            pacc::TXT_LABEL,
            RecordData::Txt { text },
            Purpose::PaccDigest,
            false,
            "PACC's digest of the document; changes whenever the profile changes",
        );
    }

    /// RFC 6186 section 3: `_imaps`/`_pop3s` and `_submissions` (RFC 8314) for
    /// implicit TLS, `_imap`/`_pop3`/`_submission` for STARTTLS. A server without TLS is not
    /// advertised (RFC 8314 asks clients not to use cleartext). A label with no server gets
    /// the single record `0 0 0 .`, so clients stop looking there.
    fn mail_services(&mut self, profile: &ServiceProfile) {
        // RFC 6186 section 3.4: the lower priority says which access protocol the domain
        // prefers; IMAP, when offered, comes before POP3.
        let pop3_base = if profile.imap.is_empty() { 0 } else { 10 };
        let services: [(&str, &[MailServer], Security, u16); 6] = [
            ("_imaps._tcp", &profile.imap, Security::Tls, 0),
            ("_imap._tcp", &profile.imap, Security::Starttls, 0),
            ("_pop3s._tcp", &profile.pop3, Security::Tls, pop3_base),
            ("_pop3._tcp", &profile.pop3, Security::Starttls, pop3_base),
            ("_submissions._tcp", &profile.smtp, Security::Tls, 0),
            ("_submission._tcp", &profile.smtp, Security::Starttls, 0),
        ];
        for (label, servers, security, base) in services {
            self.mail_service(label, servers, security, base);
        }
    }

    fn mail_service(&mut self, label: &str, servers: &[MailServer], security: Security, base: u16) {
        let mut targets: Vec<(u16, String)> = Vec::new();
        for server in servers.iter().filter(|s| s.security == security) {
            let target = (server.port, server.host.trim_end_matches('.').to_owned());
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
        if targets.is_empty() {
            let data = RecordData::Srv {
                priority: 0,
                weight: 0,
                port: 0,
                target: ".".to_owned(),
            };
            let why = "RFC 6186: not offered (target \".\", RFC 2782)";
            self.push(label, data, Purpose::MailSrv, false, why);
            return;
        }
        for (index, (port, target)) in targets.into_iter().enumerate() {
            let data = RecordData::Srv {
                priority: base.saturating_add(u16::try_from(index).unwrap_or(u16::MAX)),
                weight: 0,
                port,
                target,
            };
            self.push(label, data, Purpose::MailSrv, false, "RFC 6186 section 3");
        }
    }

    /// The MX records the profile expects, most preferred first (preference 10, 20, ...):
    /// mail for the domain goes to the hoster, and Thunderbird's MX path (autoconfig at the MX
    /// host's base domain) finds the hoster too.
    fn mx(&mut self, profile: &ServiceProfile) {
        for (index, host) in profile.mx.iter().enumerate() {
            let preference = u16::try_from((index + 1) * 10).unwrap_or(u16::MAX);
            let data = RecordData::Mx {
                preference,
                exchange: host.trim_end_matches('.').to_owned(),
            };
            self.push(
                "",
                data,
                Purpose::Mx,
                true,
                "inbound mail (RFC 5321 section 5.1); also Thunderbird's MX path",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hoster() -> HosterNames {
        HosterNames {
            redirect_host: "autodiscoverredirect.hoster.example".into(),
            service_host: "autodiscover.hoster.example".into(),
        }
    }

    fn domain(name: &str) -> Domain {
        Domain::parse(name).unwrap()
    }

    fn lines(records: &DomainRecords) -> Vec<String> {
        records
            .records
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.data.type_name(), r.data))
            .collect()
    }

    #[test]
    fn default_profile_gets_every_record() {
        let mut profile = ServiceProfile::default_for_hoster("hoster.example");
        profile.mx = vec!["mx1.hoster.example".into(), "mx2.hoster.example.".into()];
        let d = domain("customer.example");
        let records = DomainRecords::compute(&d, &d, &profile, &hoster());
        let digest =
            pacc::digest_record(&PaccDocument::for_domain(&profile, &d).unwrap().to_json());
        assert_eq!(
            lines(&records),
            vec![
                "autodiscover.customer.example CNAME autodiscoverredirect.hoster.example."
                    .to_owned(),
                "_autodiscover._tcp.customer.example SRV 0 0 443 autodiscover.hoster.example."
                    .into(),
                "autoconfig.customer.example CNAME autodiscoverredirect.hoster.example.".into(),
                "ua-auto-config.customer.example CNAME autodiscover.hoster.example.".into(),
                format!("_ua-auto-config.customer.example TXT \"{digest}\""),
                "_imaps._tcp.customer.example SRV 0 0 993 mail.hoster.example.".into(),
                "_imap._tcp.customer.example SRV 0 0 0 .".into(),
                "_pop3s._tcp.customer.example SRV 0 0 0 .".into(),
                "_pop3._tcp.customer.example SRV 0 0 0 .".into(),
                "_submissions._tcp.customer.example SRV 0 0 465 mail.hoster.example.".into(),
                "_submission._tcp.customer.example SRV 0 0 587 mail.hoster.example.".into(),
                "customer.example MX 10 mx1.hoster.example.".into(),
                "customer.example MX 20 mx2.hoster.example.".into(),
            ]
        );
        assert!(records.notes.is_empty());
        let required: Vec<&str> = records
            .records
            .iter()
            .filter(|r| r.required)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            required,
            [
                "autodiscover.customer.example",
                "customer.example",
                "customer.example"
            ]
        );
    }

    #[test]
    fn alias_gets_its_primarys_document_under_its_own_name() {
        let profile = ServiceProfile::default_for_hoster("hoster.example");
        let primary = domain("customer.example");
        let alias = domain("customer.example.net");
        let of_alias = DomainRecords::compute(&alias, &primary, &profile, &hoster());
        let of_primary = DomainRecords::compute(&primary, &primary, &profile, &hoster());
        assert_eq!(of_alias.primary, primary);
        assert!(
            of_alias
                .records
                .iter()
                .all(|r| r.name.ends_with("customer.example.net"))
        );
        let data = |r: &DomainRecords| r.records.iter().map(|r| r.data.clone()).collect::<Vec<_>>();
        assert_eq!(data(&of_alias), data(&of_primary));
    }

    #[test]
    fn profile_without_pacc_gets_a_note_and_pop3_comes_after_imap() {
        let mut profile = ServiceProfile::default_for_hoster("hoster.example");
        profile.smtp.retain(|s| s.port == 587);
        profile.pop3 = vec![MailServer {
            host: "pop.hoster.example".into(),
            port: 110,
            security: Security::Starttls,
            authentication: Default::default(),
            username: "%EMAILADDRESS%".into(),
        }];
        profile.imap[0].security = Security::None;
        let d = domain("customer.example");
        let records = DomainRecords::compute(&d, &d, &profile, &hoster());
        assert!(
            !records
                .records
                .iter()
                .any(|r| r.purpose == Purpose::PaccDigest)
        );
        assert_eq!(records.notes.len(), 1);
        assert!(
            records.notes[0].contains("cannot be published with PACC"),
            "{:?}",
            records.notes
        );
        let all = lines(&records);
        assert!(all.contains(&"_imaps._tcp.customer.example SRV 0 0 0 .".to_owned()));
        assert!(
            all.contains(&"_imap._tcp.customer.example SRV 0 0 0 .".to_owned()),
            "{all:?}"
        );
        assert!(
            all.contains(
                &"_pop3._tcp.customer.example SRV 10 0 110 pop.hoster.example.".to_owned()
            )
        );
        assert!(!all.iter().any(|l| l.contains(" MX ")));
    }

    #[test]
    fn zone_lines_and_json_carry_the_reason_and_escape_text() {
        let record = DnsRecord {
            name: "_x.customer.example".into(),
            data: RecordData::Txt {
                text: "a \"quoted\" \\ text".into(),
            },
            purpose: Purpose::PaccDigest,
            required: false,
            why: "because".into(),
        };
        assert_eq!(
            record.zone_line(),
            r#"_x.customer.example. TXT "a \"quoted\" \\ text"   ; because"#
        );
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["type"], "TXT");
        assert_eq!(json["purpose"], "pacc_digest");
        assert_eq!(serde_json::from_value::<DnsRecord>(json).unwrap(), record);
    }
}
