//! `autodisco dns records`: what each customer domain publishes, as zone lines, a table or
//! JSON. The records themselves come from `autodisco_proto::records` (one computation for this
//! command, `domain add`/`show`, the checks and the API); this module finds each domain's
//! profile in the directory and prints.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use autodisco_directory::{DomainKind, DomainStatus, Store};
use autodisco_proto::{Domain, DomainRecords, ServiceProfile};
use autodisco_server::config::Config;
use clap::{Subcommand, ValueEnum};

use crate::args::domain_arg;
use crate::open_store;

#[derive(Subcommand)]
pub(crate) enum DnsCommand {
    /// Print the DNS records each customer domain publishes: autodiscover and autoconfig
    /// CNAMEs, the _autodiscover._tcp SRV record, the PACC CNAME and TXT digest (when the
    /// profile can be published with PACC), the RFC 6186 SRV records of the profile's IMAP,
    /// POP3 and submission servers (target "." for what it does not offer), and the MX records
    /// the profile names.
    Records {
        /// The domains (primaries or aliases).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        domains: Vec<String>,
        /// Every hosted domain.
        #[arg(long)]
        all: bool,
        /// zone: lines for a zone file, each with its reason as a comment; table: aligned
        /// columns for people; json: one document for control panels.
        #[arg(long, value_enum, default_value_t = Format::Zone)]
        format: Format,
    },
}

/// The output formats of `dns records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Zone-file lines with comments.
    Zone,
    /// A table.
    Table,
    /// JSON.
    Json,
}

pub(crate) async fn dns(config: &Config, command: DnsCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    match command {
        DnsCommand::Records {
            domains,
            all,
            format,
        } => {
            if all {
                let (_, records) = all_records(config, &store, false).await?;
                return print_records(records, format);
            }
            let mut records = Vec::with_capacity(domains.len());
            for name in &domains {
                records.push(records_for(config, &store, &domain_arg(name)?).await?);
            }
            print_records(records, format)
        }
    }
}

/// Zone lines and JSON are written domain by domain (a listing of every domain needs no memory
/// for all of them); a table needs every row for its widths.
fn print_records(
    records: impl IntoIterator<Item = DomainRecords>,
    format: Format,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let mut array = JsonArray::default();
            for domain in records {
                array.push(&mut out, &domain)?;
            }
            array.finish(&mut out)?;
        }
        Format::Zone => {
            for domain in records {
                writeln!(out, "; {}", domain.domain)?;
                for line in zone_lines(&domain) {
                    writeln!(out, "{line}")?;
                }
            }
        }
        Format::Table => write_table(&mut out, &records.into_iter().collect::<Vec<_>>())?,
    }
    Ok(())
}

/// A JSON array written one element at a time.
#[derive(Default)]
pub(crate) struct JsonArray {
    written: usize,
}

impl JsonArray {
    pub(crate) fn push(
        &mut self,
        out: &mut impl Write,
        value: &impl serde::Serialize,
    ) -> anyhow::Result<()> {
        out.write_all(if self.written == 0 { b"[\n" } else { b",\n" })?;
        serde_json::to_writer_pretty(&mut *out, value).context("cannot write JSON")?;
        self.written += 1;
        Ok(())
    }

    pub(crate) fn finish(self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(if self.written == 0 { b"[]\n" } else { b"\n]\n" })
    }
}

/// The zone lines of one domain, then its notes as comments.
pub(crate) fn zone_lines(records: &DomainRecords) -> Vec<String> {
    let mut lines: Vec<String> = records.records.iter().map(|r| r.zone_line()).collect();
    lines.extend(records.notes.iter().map(|note| format!("; {note}")));
    lines
}

fn write_table(out: &mut impl Write, records: &[DomainRecords]) -> std::io::Result<()> {
    let mut rows = vec![[
        "NAME".to_owned(),
        "TYPE".to_owned(),
        "VALUE".to_owned(),
        "NEEDED".to_owned(),
    ]];
    for domain in records {
        for record in &domain.records {
            let needed = if record.required {
                "required"
            } else {
                "optional"
            };
            rows.push([
                record.name.clone(),
                record.data.type_name().to_owned(),
                record.data.to_string(),
                needed.to_owned(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..3)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )?;
    }
    for domain in records {
        for note in &domain.notes {
            writeln!(out, "{}: {note}", domain.domain)?;
        }
    }
    Ok(())
}

/// The records of one hosted domain (an alias gets its primary's profile).
pub(crate) async fn records_for(
    config: &Config,
    store: &Store,
    domain: &Domain,
) -> anyhow::Result<DomainRecords> {
    Ok(store
        .domain_records(domain, &config.record_targets())
        .await?)
}

/// The records of every hosted domain, from one listing and one read of the profiles (not a
/// query per domain), computed as they are taken; `active_only` leaves suspended domains out.
/// Also returns how many there are.
pub(crate) async fn all_records(
    config: &Config,
    store: &Store,
    active_only: bool,
) -> anyhow::Result<(usize, impl Iterator<Item = DomainRecords> + use<>)> {
    let profiles: HashMap<String, ServiceProfile> = store
        .list_profiles()
        .await?
        .into_iter()
        .map(|entry| (entry.name, entry.profile))
        .collect();
    let mut domains = store.list_domains().await?;
    if active_only {
        domains.retain(|info| info.status == DomainStatus::Active);
    }
    let primaries: HashMap<Domain, String> = domains
        .iter()
        .filter_map(|info| match &info.kind {
            DomainKind::Primary { profile, .. } => Some((info.name.clone(), profile.clone())),
            DomainKind::Alias { .. } => None,
        })
        .collect();
    // An alias is answered only while its primary is (suspending a primary silences it).
    domains.retain(|info| match &info.kind {
        DomainKind::Primary { .. } => true,
        DomainKind::Alias { primary } => primaries.contains_key(primary),
    });
    let hoster = config.record_targets();
    let count = domains.len();
    let records = domains.into_iter().filter_map(move |info| {
        let primary = match &info.kind {
            DomainKind::Primary { .. } => &info.name,
            DomainKind::Alias { primary } => primary,
        };
        let profile = profiles.get(primaries.get(primary)?)?;
        Some(DomainRecords::compute(
            &info.name, primary, profile, &hoster,
        ))
    });
    Ok((count, records))
}
