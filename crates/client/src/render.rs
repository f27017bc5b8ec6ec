//! The text a terminal shows for a [`Report`], a [`Comparison`] or a [`DomainCheck`], the consent
//! prompt and the progress line.
//!
//! Most of what is shown comes from servers: summaries quoting their error messages, redirect
//! targets, display names, host names. Every such string goes through [`Escaped`], so that a
//! hostile answer cannot move the cursor, clear the screen, ring the bell, rewrite a line with a
//! carriage return or reorder the text with bidirectional overrides. The `--json` output needs
//! none of this: serde escapes control characters itself.

use std::fmt;
use std::io::{self, Write};

use crate::check::{DomainCheck, Finding};
use crate::comparison::{Comparison, compared};
use crate::config::DnsServer;
use crate::consent::ConsentRequest;
use crate::dialect::Dialect;
use crate::report::{InFlight, NoteKind, Outcome, Report, Step, TraceEntry};
use crate::settings::{ActiveSync, MailServer, Settings};

/// A string shown with its control characters (C0, DEL, C1) and bidirectional formatting
/// characters written as escapes: `\r`, `\u{1b}`, `\u{202e}`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("a character was found");
            match c {
                '\t' | '\n' | '\r' => write!(f, "{}", c.escape_default())?,
                _ => write!(f, "{}", c.escape_unicode())?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Whether `c` could change how the terminal shows what follows.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn esc(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// One domain's check: the verdict, each finding with its status word, then the notes. Findings
/// quote DNS data and HTTP headers the customer controls, so they are escaped too.
pub fn domain_check(out: &mut impl Write, check: &DomainCheck) -> io::Result<()> {
    let verdict = if check.healthy { "healthy" } else { "FINDINGS" };
    writeln!(out, "{}: {verdict}", esc(&check.domain))?;
    findings(out, &check.findings)?;
    for note in &check.notes {
        writeln!(out, "  note     {}", esc(note))?;
    }
    Ok(())
}

/// Findings, one a line: the status word, then the sentence with its fix.
pub fn findings(out: &mut impl Write, findings: &[Finding]) -> io::Result<()> {
    for finding in findings {
        writeln!(
            out,
            "  {:<8} {}",
            finding.status.as_str(),
            esc(&finding.message)
        )?;
    }
    Ok(())
}

/// The readable report: the trace, the conclusion, then the settings in sections. `dns` is the
/// resolver the names came from.
pub fn report(out: &mut impl Write, report: &Report, dns: &DnsServer) -> io::Result<()> {
    let resolver = match dns {
        DnsServer::System => "the system's resolver".to_owned(),
        DnsServer::At(address) => format!("DNS server {address}"),
    };
    let dialect = match report.dialect {
        Dialect::Pox => String::new(),
        other => format!(" in the {other} dialect"),
    };
    writeln!(
        out,
        "Probing {}{dialect} (names from {resolver})",
        esc(&report.address)
    )?;
    writeln!(out)?;
    writeln!(out, "Trace")?;
    // In the order the steps started (the report keeps the order they finished), with a line
    // whenever a redirectAddr changed the address.
    let mut entries: Vec<&TraceEntry> = report.trace.iter().collect();
    entries.sort_by_key(|e| e.started_ms);
    let mut address = report.address.as_str();
    for entry in entries {
        if entry.address != address {
            address = &entry.address;
            writeln!(out, "  -- now for {}", esc(address))?;
        }
        trace_entry(out, entry)?;
    }
    writeln!(out)?;
    let mark = if report.found { "FOUND" } else { "NOT FOUND" };
    writeln!(
        out,
        "{mark}: {} ({:.2} s)",
        esc(&report.conclusion),
        report.elapsed_ms as f64 / 1000.0
    )?;
    if let Some(settings) = &report.settings {
        writeln!(out)?;
        self::settings(out, settings)?;
    }
    Ok(())
}

/// Every dialect's report, then their answers side by side and where they disagree.
pub fn comparison(
    out: &mut impl Write,
    comparison: &Comparison,
    dns: &DnsServer,
) -> io::Result<()> {
    for one in &comparison.reports {
        writeln!(out, "=== {} ===", one.dialect)?;
        report(out, one, dns)?;
        writeln!(out)?;
    }
    writeln!(out, "Side by side")?;
    let rows = compared(&Settings::default());
    for (index, (name, _)) in rows.iter().enumerate() {
        writeln!(out, "  {name}")?;
        for one in &comparison.reports {
            let value = match &one.settings {
                Some(settings) => compared(settings)
                    .swap_remove(index)
                    .1
                    .unwrap_or_else(|| "(none)".to_owned()),
                None => "(not found)".to_owned(),
            };
            writeln!(out, "    {:<11}{}", one.dialect.as_str(), esc(&value))?;
        }
    }
    writeln!(out)?;
    if comparison.disagreements.is_empty() {
        writeln!(out, "No disagreements.")?;
    } else {
        writeln!(out, "Disagreements")?;
        for disagreement in &comparison.disagreements {
            writeln!(out, "  ✗ {}", esc(&disagreement.text))?;
        }
    }
    writeln!(out)?;
    let mark = if comparison.found() {
        "FOUND"
    } else {
        "NOT FOUND"
    };
    writeln!(out, "{mark}: {}", esc(&comparison.conclusion))
}

/// The question the probe asks before following a redirect that needs consent.
pub fn consent_prompt(request: &ConsentRequest) -> String {
    format!(
        "\nAllow this website to configure {} server settings?\n  {}\n  (reached by {})\n[y] yes, this time   [a] always for {}   [N] no: ",
        esc(&request.address),
        esc(&request.url),
        esc(&request.reason.to_string()),
        esc(&request.host)
    )
}

/// The progress line: time so far, entries done and what the first request in flight waits
/// for, cut to `width` characters.
pub fn progress_line(elapsed_s: f64, done: usize, in_flight: &[InFlight], width: usize) -> String {
    let line = match in_flight.first() {
        Some(first) => {
            let more = match in_flight.len() {
                1 => String::new(),
                n => format!(" (+{} more)", n - 1),
            };
            format!(
                "{elapsed_s:5.1}s  {done} done  waiting: {} ({}){more}",
                esc(&first.request),
                esc(&first.waiting_for)
            )
        }
        None => format!("{elapsed_s:5.1}s  {done} done"),
    };
    line.chars().take(width.saturating_sub(1)).collect()
}

fn trace_entry(out: &mut impl Write, entry: &TraceEntry) -> io::Result<()> {
    let symbol = match &entry.outcome {
        Outcome::Failed { .. } | Outcome::Consent { allowed: false, .. } => "✗",
        Outcome::Abandoned { .. } => "…",
        _ => "✓",
    };
    let step = match (entry.step.number(), entry.step) {
        (Some(n), _) => format!("step {n}"),
        (None, Step::ActiveSync) => "extra ".to_owned(),
        (None, other) => format!("{:<6}", other.label()),
    };
    writeln!(
        out,
        "  {:>7.3}s {step}  {}  ({} ms)",
        entry.started_ms as f64 / 1000.0,
        esc(&entry.request),
        entry.duration_ms
    )?;
    let indent = "                  ";
    for line in &entry.dns {
        writeln!(out, "{indent}dns: {}", esc(line))?;
    }
    if let Some(peer) = &entry.peer {
        writeln!(out, "{indent}connected to {}", esc(peer))?;
    }
    writeln!(out, "{indent}{symbol} {}", esc(&entry.summary))?;
    for note in &entry.notes {
        let kind = match note.kind {
            NoteKind::Deviation => "deviation",
            NoteKind::Warning => "warning",
            NoteKind::Info => "note",
        };
        writeln!(out, "{indent}  {kind}: {}", esc(&note.text))?;
    }
    Ok(())
}

fn settings(out: &mut impl Write, settings: &Settings) -> io::Result<()> {
    let field = |out: &mut dyn Write, name: &str, value: &Option<String>| -> io::Result<()> {
        if let Some(value) = value {
            writeln!(out, "  {name:<22}{}", esc(value))?;
        }
        Ok(())
    };
    let user = &settings.user;
    writeln!(out, "Account")?;
    field(out, "Display name", &user.display_name)?;
    field(out, "Address", &user.smtp_address)?;
    field(out, "LegacyDN", &user.legacy_dn)?;
    field(out, "Deployment", &user.deployment_id)?;
    writeln!(out, "Incoming mail")?;
    servers(out, &settings.incoming)?;
    writeln!(out, "Outgoing mail")?;
    servers(out, &settings.outgoing)?;
    writeln!(out, "Exchange Web Services")?;
    match &settings.ews {
        Some(ews) => {
            field(out, "EWS", &ews.url)?;
            field(out, "Control panel", &ews.ecp_url)?;
            field(out, "Web mail", &ews.web_mail_url)?;
            field(out, "Outlook Anywhere", &ews.outlook_anywhere_server)?;
            field(out, "Mailbox server", &ews.mailbox_server)?;
            field(out, "Authentication", &ews.auth_package)?;
            field(out, "MAPI/HTTP mail store", &ews.mapi_http_mail_store)?;
            field(out, "MAPI/HTTP address book", &ews.mapi_http_address_book)?;
            field(out, "Unified messaging", &ews.um_url)?;
        }
        None => writeln!(out, "  (none)")?,
    }
    for (title, value) in [
        ("Free/busy", &settings.free_busy_url),
        ("Out of office", &settings.out_of_office_url),
        ("Offline address book", &settings.oab_url),
    ] {
        writeln!(out, "{title}")?;
        writeln!(out, "  {}", esc(value.as_deref().unwrap_or("(none)")))?;
    }
    writeln!(out, "ActiveSync")?;
    match &settings.activesync {
        ActiveSync::Offered { url } => writeln!(out, "  {}", esc(url)),
        ActiveSync::RedirectAddr { address } => {
            writeln!(out, "  redirects devices to {}", esc(address))
        }
        ActiveSync::NotOffered { why } => writeln!(out, "  (none: {})", esc(why)),
        ActiveSync::NotAsked => writeln!(out, "  (not asked)"),
    }
}

fn servers(out: &mut impl Write, servers: &[MailServer]) -> io::Result<()> {
    if servers.is_empty() {
        return writeln!(out, "  (none)");
    }
    for server in servers {
        let host = server.host.as_deref().unwrap_or("?");
        let port = server.port.map_or(String::new(), |p| format!(":{p}"));
        let mut extras = vec![server.security.clone()];
        if let Some(login) = &server.login_name {
            extras.push(format!("login {login}"));
        }
        if server.spa == Some(true) {
            extras.push("secure password authentication".to_owned());
        }
        if server.auth_required == Some(true) {
            extras.push("authentication required".to_owned());
        }
        if server.use_pop_auth == Some(true) {
            extras.push("same credentials as incoming".to_owned());
        }
        writeln!(
            out,
            "  {:<5} {}{port}  {}",
            esc(&server.protocol).to_string(),
            esc(host),
            esc(&extras.join(", "))
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Failure, Note};

    #[test]
    fn findings_quoting_customer_data_are_escaped() {
        let check = DomainCheck {
            domain: "customer.example".into(),
            healthy: false,
            findings: vec![Finding {
                status: crate::CheckStatus::Wrong,
                message: "x TXT is \u{1b}[2Jgone: change it".into(),
            }],
            notes: vec!["a\rb".into()],
            records: Vec::new(),
            walk: Vec::new(),
            elapsed_ms: 0,
        };
        let mut out = Vec::new();
        domain_check(&mut out, &check).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "customer.example: FINDINGS\n  wrong    x TXT is \\u{1b}[2Jgone: change it\n  note     a\\rb\n"
        );
    }

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(Escaped("plain Jürgen").to_string(), "plain Jürgen");
        assert_eq!(
            Escaped("a\u{1b}[2Jb\rc\u{7}d\u{9b}e\u{202e}f\tg\nh").to_string(),
            "a\\u{1b}[2Jb\\rc\\u{7}d\\u{9b}e\\u{202e}f\\tg\\nh"
        );
    }

    #[test]
    fn a_hostile_report_reaches_the_terminal_escaped() {
        let hostile = "evil\u{1b}]0;owned\u{7}\r\u{1b}[2KFOUND: fake\n\u{202e}txt.exe";
        let entry = TraceEntry {
            address: "jane@customer.example".to_owned(),
            step: Step::Root,
            request: format!("POST https://customer.example/{hostile}"),
            started_ms: 0,
            duration_ms: 1,
            dns: vec![hostile.to_owned()],
            peer: None,
            status: Some(200),
            outcome: Outcome::Failed {
                failure: Failure::AutodiscoverError {
                    code: 500,
                    message: hostile.to_owned(),
                },
            },
            summary: format!("AutoDiscover error 500: {hostile}"),
            notes: vec![Note::new(NoteKind::Warning, hostile)],
        };
        let mut settings = Settings::default();
        settings.user.display_name = Some(hostile.to_owned());
        settings.activesync = ActiveSync::NotOffered {
            why: hostile.to_owned(),
        };
        let hostile_report = Report {
            address: "jane@customer.example".to_owned(),
            dialect: Dialect::Pox,
            found: true,
            final_address: "jane@customer.example".to_owned(),
            url: None,
            via: None,
            redirections: 0,
            conclusion: hostile.to_owned(),
            settings: Some(settings),
            elapsed_ms: 0,
            trace: vec![entry],
        };
        let mut out = Vec::new();
        report(&mut out, &hostile_report, &DnsServer::System).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.chars().any(|c| c != '\n' && needs_escape(c)),
            "{text:?}"
        );
        // The hostile text is there, visibly, and its line break did not start a line.
        assert!(text.contains("evil\\u{1b}]0;owned\\u{7}\\r"), "{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("FOUND: fake")),
            "{text}"
        );
        assert!(text.contains("\\u{202e}txt.exe"), "{text}");
    }
}
