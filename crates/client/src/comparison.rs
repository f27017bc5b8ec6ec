//! The comparison of every dialect's answer for one address (`probe --dialect all`).

use serde::Serialize;

use crate::dialect::Dialect;
use crate::report::Report;
use crate::settings::{MailServer, Settings};

/// Every dialect's report for one address, and where their settings disagree.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The address asked about.
    pub address: String,
    /// One report per dialect, in [`Dialect::ALL`] order.
    pub reports: Vec<Report>,
    /// The settings that two or more dialects answered differently.
    pub disagreements: Vec<Disagreement>,
    /// One sentence: which dialects found settings and whether they agree.
    pub conclusion: String,
}

impl Comparison {
    /// Whether at least one dialect found settings.
    pub fn found(&self) -> bool {
        self.reports.iter().any(|r| r.found)
    }
}

/// One setting answered differently by two or more dialects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    /// The setting: `IMAP server`, `SMTP server`, `EWS URL`.
    pub setting: String,
    /// Each dialect that answered it, with its value.
    pub values: Vec<DialectValue>,
    /// The disagreement in words.
    pub text: String,
}

/// One dialect's value of a compared setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DialectValue {
    /// The dialect.
    pub dialect: Dialect,
    /// Its value.
    pub value: String,
}

/// The compared value of a mail server: `host:port security`, with POX's bare `SSL` on read as
/// implicit TLS.
fn server_value(server: &MailServer) -> String {
    let security = match server.security.as_str() {
        "ssl" => "tls",
        other => other,
    };
    format!(
        "{}:{} {security}",
        server.host.as_deref().unwrap_or("?").trim_end_matches('.'),
        server.port.map_or("?".to_owned(), |p| p.to_string()),
    )
}

/// The settings the dialects are compared on (`IMAP server`, `POP3 server`, `SMTP server` as
/// `host:port security`, then `EWS URL`), with their values in `settings`.
pub(crate) fn compared(settings: &Settings) -> Vec<(&'static str, Option<String>)> {
    let first = |list: &[MailServer], protocol: &str| {
        list.iter()
            .find(|s| s.protocol.eq_ignore_ascii_case(protocol))
            .map(server_value)
    };
    vec![
        ("IMAP server", first(&settings.incoming, "IMAP")),
        ("POP3 server", first(&settings.incoming, "POP3")),
        ("SMTP server", first(&settings.outgoing, "SMTP")),
        ("EWS URL", settings.ews.as_ref().and_then(|e| e.url.clone())),
    ]
}

/// Host names and URLs compare without regard to case or a trailing slash.
fn same_value(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// Builds the comparison of `reports` (one per dialect).
pub(crate) fn compare(address: String, reports: Vec<Report>) -> Comparison {
    let found: Vec<&Report> = reports.iter().filter(|r| r.found).collect();
    let mut disagreements = Vec::new();
    let names: Vec<&'static str> = compared(&Settings::default())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for (index, name) in names.iter().enumerate() {
        let values: Vec<DialectValue> = found
            .iter()
            .filter_map(|r| {
                let value = compared(r.settings.as_ref()?).swap_remove(index).1?;
                Some(DialectValue {
                    dialect: r.dialect,
                    value,
                })
            })
            .collect();
        if values
            .iter()
            .any(|v| !same_value(&v.value, &values[0].value))
        {
            let text = format!(
                "the dialects disagree on the {name}: {}",
                values
                    .iter()
                    .map(|v| format!("{} says {}", v.dialect, v.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            disagreements.push(Disagreement {
                setting: (*name).to_owned(),
                values,
                text,
            });
        }
    }
    let list = |reports: &[&Report]| {
        reports
            .iter()
            .map(|r| r.dialect.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing: Vec<&Report> = reports.iter().filter(|r| !r.found).collect();
    let conclusion = if found.is_empty() {
        format!("no dialect found settings for {address}")
    } else {
        let mut text = format!("settings for {address} found through {}", list(&found));
        if !missing.is_empty() {
            text.push_str(&format!(", not through {}", list(&missing)));
        }
        if disagreements.is_empty() {
            if found.len() > 1 {
                text.push_str("; they agree on every setting they have in common");
            }
        } else {
            let settings: Vec<&str> = disagreements.iter().map(|d| d.setting.as_str()).collect();
            text.push_str(&format!("; they disagree on {}", settings.join(", ")));
        }
        text
    };
    Comparison {
        address,
        reports,
        disagreements,
        conclusion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(protocol: &str, host: &str, port: u16, security: &str) -> MailServer {
        MailServer {
            protocol: protocol.to_owned(),
            host: Some(host.to_owned()),
            port: Some(port),
            security: security.to_owned(),
            login_name: None,
            spa: None,
            auth_required: None,
            use_pop_auth: None,
            domain_required: None,
        }
    }

    fn report(dialect: Dialect, imap_host: &str, security: &str) -> Report {
        Report {
            address: "jane@customer.example".to_owned(),
            dialect,
            found: true,
            final_address: "jane@customer.example".to_owned(),
            url: None,
            via: None,
            redirections: 0,
            conclusion: String::new(),
            settings: Some(Settings {
                incoming: vec![server("IMAP", imap_host, 993, security)],
                outgoing: vec![server("SMTP", "smtp.hoster.example", 587, "starttls")],
                ..Settings::default()
            }),
            elapsed_ms: 0,
            trace: Vec::new(),
        }
    }

    #[test]
    fn agreement_reads_ssl_as_tls_and_ignores_case() {
        let comparison = compare(
            "jane@customer.example".to_owned(),
            vec![
                report(Dialect::Pox, "imap.hoster.example", "ssl"),
                report(Dialect::Autoconfig, "IMAP.hoster.example", "tls"),
            ],
        );
        assert!(comparison.disagreements.is_empty(), "{comparison:?}");
        assert!(comparison.conclusion.contains("they agree"));
    }

    #[test]
    fn a_different_host_is_a_disagreement_in_words() {
        let mut missing = report(Dialect::V2, "x", "tls");
        missing.found = false;
        missing.settings = None;
        let comparison = compare(
            "jane@customer.example".to_owned(),
            vec![
                report(Dialect::Pox, "imap.hoster.example", "tls"),
                missing,
                report(Dialect::Autoconfig, "imap.other.example", "tls"),
            ],
        );
        assert_eq!(comparison.disagreements.len(), 1, "{comparison:?}");
        let imap = &comparison.disagreements[0];
        assert_eq!(imap.setting, "IMAP server");
        assert_eq!(
            imap.text,
            "the dialects disagree on the IMAP server: pox says imap.hoster.example:993 tls, autoconfig says imap.other.example:993 tls"
        );
        assert!(comparison.conclusion.contains("not through json"));
        assert!(comparison.conclusion.contains("disagree on IMAP server"));
    }
}
