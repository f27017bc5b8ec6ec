//! `autodisco import` and `autodisco export`: the directory as a CSV of domains or as JSON.
//!
//! Parsing and line numbers live here; the store checks every item against the file and the
//! database together and applies all of it in one transaction or nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use autodisco_directory::{
    Actor, DirectoryData, DirectoryError, DomainRecord, DomainStatus, DomainTarget, ImportCounts,
    ImportReport, Redirect, Section, UserOverride,
};
use autodisco_proto::{Domain, EmailAddress, ServiceProfile};
use autodisco_server::bootstrap::{add_missing_config_profiles, ensure_default_profile};
use autodisco_server::config::Config;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::open_store;

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// A CSV of domains (header row, then domain,profile,alias_of and optionally status) or a
    /// JSON file as `export --format json` writes it.
    #[arg(
        required_unless_present = "from_automx2",
        conflicts_with = "from_automx2"
    )]
    file: Option<PathBuf>,
    /// The file's format; by default from its extension (.csv, .json).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Check everything and say what would change, without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Read an automx2 SQLite database instead: its providers, domains and servers become
    /// profiles and domains (what cannot come along is listed).
    #[arg(long, value_name = "PATH.sqlite")]
    from_automx2: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// csv: the domains only; json: profiles, domains and user overrides.
    #[arg(long, value_enum)]
    format: Format,
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Csv,
    Json,
}

/// The JSON file: profiles by name, domains, user overrides. Passwords are never in it.
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JsonFile {
    #[serde(default)]
    profiles: BTreeMap<String, ServiceProfile>,
    #[serde(default)]
    domains: Vec<JsonDomain>,
    #[serde(default)]
    users: Vec<JsonUser>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonDomain {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alias_of: Option<String>,
    #[serde(default = "active")]
    status: String,
}

fn active() -> String {
    DomainStatus::Active.as_str().to_owned()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonUser {
    address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    login_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_url: Option<String>,
}

/// The CSV columns: the first three as the issue names them, then the domain's status.
const CSV_HEADER: [&str; 4] = ["domain", "profile", "alias_of", "status"];

/// A file read into directory data, with where each item came from for error messages.
struct Parsed {
    data: DirectoryData,
    /// Per section, the place of each item: `line 7` or `domains[6]`.
    places: BTreeMap<Section, Vec<String>>,
    /// Problems found while parsing, with their places.
    problems: Vec<String>,
}

impl Parsed {
    fn new() -> Self {
        Self {
            data: DirectoryData::default(),
            places: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    fn place(&mut self, section: Section, place: String) {
        self.places.entry(section).or_default().push(place);
    }
}

pub(crate) async fn import(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    let (label, parsed) = match (&args.file, &args.from_automx2) {
        (_, Some(path)) => (path.display().to_string(), read_automx2(path).await?),
        (Some(path), None) => (path.display().to_string(), read_file(path, args.format)?),
        (None, None) => bail!("name a FILE or --from-automx2 PATH"),
    };
    let store = open_store(config).await?;
    // As `domain add`: the config's profiles and the fresh-install default exist first, so a
    // file naming them imports into a new directory.
    add_missing_config_profiles(config, &store).await?;
    ensure_default_profile(config, &store).await?;
    let mut problems = parsed.problems;
    match store.import(&Actor::Cli, &parsed.data, args.dry_run).await {
        Ok(report) if problems.is_empty() => {
            print_report(&report, args.dry_run);
            return Ok(());
        }
        Ok(_) => {}
        Err(DirectoryError::ImportRefused { problems: refused }) => {
            for problem in refused {
                let place = parsed
                    .places
                    .get(&problem.section)
                    .and_then(|places| places.get(problem.index))
                    .map_or("?", String::as_str);
                problems.push(format!("{place}: {}", problem.message));
            }
        }
        Err(e) => return Err(e.into()),
    }
    let mut message = String::new();
    for problem in &problems {
        let _ = writeln!(message, "{label}:{problem}");
    }
    eprint!("{message}");
    bail!(
        "{label}: {} problem(s); nothing was changed",
        problems.len()
    )
}

/// The automx2 database as import data; what stays behind is said on standard error.
async fn read_automx2(path: &Path) -> anyhow::Result<Parsed> {
    let import = autodisco_directory::automx2::read_automx2(path)
        .await
        .with_context(|| format!("cannot read the automx2 database {}", path.display()))?;
    for note in &import.notes {
        eprintln!("note: {note}");
    }
    let mut parsed = Parsed::new();
    for name in import.data.profiles.iter().map(|(name, _)| name.clone()) {
        parsed.place(Section::Profiles, format!("profile {name}"));
    }
    for record in &import.data.domains {
        parsed.place(Section::Domains, format!("domain {}", record.name));
    }
    parsed.data = import.data;
    Ok(parsed)
}

fn print_report(report: &ImportReport, dry_run: bool) {
    let verb = if dry_run { "would be" } else { "were" };
    for (what, counts) in [
        ("profiles", report.profiles),
        ("domains", report.domains),
        ("user overrides", report.users),
    ] {
        let ImportCounts {
            created,
            changed,
            unchanged,
        } = counts;
        println!(
            "{what}: {created} {verb} created, {changed} {verb} changed, {unchanged} unchanged"
        );
    }
    if dry_run {
        println!("dry run: nothing was written");
    }
}

fn read_file(path: &Path, format: Option<Format>) -> anyhow::Result<Parsed> {
    let format = match format {
        Some(format) => format,
        None => match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Format::Csv,
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => bail!(
                "{}: cannot tell the format from the name; give --format csv or --format json",
                path.display()
            ),
        },
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match format {
        Format::Csv => parse_csv(&text),
        Format::Json => parse_json(&text),
    }
    .with_context(|| format!("{} cannot be read", path.display()))
}

/// Reads the CSV of domains. Every row is checked; each bad one is named by its line.
fn parse_csv(text: &str) -> anyhow::Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().context("line 1: the header row")?.clone();
    let mut columns = [None; 4];
    for (position, name) in headers.iter().enumerate() {
        let Some(known) = CSV_HEADER.iter().position(|c| c.eq_ignore_ascii_case(name)) else {
            bail!(
                "line 1: unknown column {name:?}; the columns are {}",
                CSV_HEADER.join(",")
            );
        };
        columns[known] = Some(position);
    }
    if columns[0].is_none() || (columns[1].is_none() && columns[2].is_none()) {
        bail!("line 1: the header needs domain and profile or alias_of (domain,profile,alias_of)");
    }
    let mut parsed = Parsed::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                parsed.problems.push(format!("{line}: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |column: usize| {
            columns[column]
                .and_then(|i| record.get(i))
                .filter(|v| !v.is_empty())
        };
        match domain_record(field(0).unwrap_or_default(), field(1), field(2), field(3)) {
            Ok(domain) => {
                parsed.data.domains.push(domain);
                parsed.place(Section::Domains, format!("{line}"));
            }
            Err(problem) => parsed.problems.push(format!("{line}: {problem}")),
        }
    }
    Ok(parsed)
}

/// One domain from its fields; the problem in words if they do not make one.
fn domain_record(
    name: &str,
    profile: Option<&str>,
    alias_of: Option<&str>,
    status: Option<&str>,
) -> Result<DomainRecord, String> {
    let name = Domain::parse(name).map_err(|e| format!("domain {name:?}: {e}"))?;
    let status = match status {
        Some(status) => status.parse::<DomainStatus>().map_err(|e| e.to_string())?,
        None => DomainStatus::Active,
    };
    let target = match (profile, alias_of) {
        (Some(profile), None) => DomainTarget::Profile(profile.to_owned()),
        (None, Some(primary)) => DomainTarget::AliasOf(
            Domain::parse(primary).map_err(|e| format!("alias_of {primary:?}: {e}"))?,
        ),
        (Some(_), Some(_)) => {
            return Err(format!(
                "{name}: give a profile or alias_of, not both (an alias uses its primary's profile)"
            ));
        }
        (None, None) => return Err(format!("{name}: give a profile or alias_of")),
    };
    Ok(DomainRecord {
        name,
        status,
        target,
    })
}

/// Reads the JSON file. A syntax error stops at its line; then every item is checked and each
/// bad one is named by its place (`domains[6]`).
fn parse_json(text: &str) -> anyhow::Result<Parsed> {
    let file: JsonFile =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", e.line()))?;
    let mut parsed = Parsed::new();
    for (name, profile) in file.profiles {
        parsed.place(Section::Profiles, format!("profiles.{name}"));
        parsed.data.profiles.push((name, profile));
    }
    for (index, domain) in file.domains.iter().enumerate() {
        let place = format!("domains[{index}]");
        match domain_record(
            &domain.name,
            domain.profile.as_deref(),
            domain.alias_of.as_deref(),
            Some(&domain.status),
        ) {
            Ok(record) => {
                parsed.data.domains.push(record);
                parsed.place(Section::Domains, place);
            }
            Err(problem) => parsed.problems.push(format!("{place}: {problem}")),
        }
    }
    for (index, user) in file.users.iter().enumerate() {
        let place = format!("users[{index}]");
        match user_override(user) {
            Ok(user) => {
                parsed.data.users.push(user);
                parsed.place(Section::Users, place);
            }
            Err(problem) => parsed.problems.push(format!("{place}: {problem}")),
        }
    }
    Ok(parsed)
}

fn user_override(user: &JsonUser) -> Result<UserOverride, String> {
    let address =
        |text: &str| EmailAddress::parse(text).map_err(|e| format!("address {text:?}: {e}"));
    let mut stored = UserOverride::new(address(&user.address)?);
    stored.display_name = user.display_name.clone();
    stored.login_name = user.login_name.clone();
    stored.redirect = match (&user.redirect_addr, &user.redirect_url) {
        (Some(_), Some(_)) => return Err("give redirect_addr or redirect_url, not both".into()),
        (Some(target), None) => Some(Redirect::Address(address(target)?)),
        (None, Some(url)) => Some(Redirect::Url(url.clone())),
        (None, None) => None,
    };
    Ok(stored)
}

pub(crate) async fn export(config: &Config, args: ExportArgs) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let data = store.export().await?;
    let bytes = match args.format {
        Format::Csv => csv_bytes(&data)?,
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&json_file(data))?;
            text.push('\n');
            text.into_bytes()
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .context("cannot write to standard output")?,
    }
    Ok(())
}

fn csv_bytes(data: &DirectoryData) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER)?;
    for record in &data.domains {
        let (profile, alias_of) = match &record.target {
            DomainTarget::Profile(profile) => (profile.as_str(), ""),
            DomainTarget::AliasOf(primary) => ("", primary.as_str()),
        };
        writer.write_record([
            record.name.as_str(),
            profile,
            alias_of,
            record.status.as_str(),
        ])?;
    }
    writer.into_inner().context("cannot write the CSV")
}

fn json_file(data: DirectoryData) -> JsonFile {
    JsonFile {
        profiles: data.profiles.into_iter().collect(),
        domains: data
            .domains
            .into_iter()
            .map(|record| {
                let (profile, alias_of) = match record.target {
                    DomainTarget::Profile(profile) => (Some(profile), None),
                    DomainTarget::AliasOf(primary) => (None, Some(primary.to_string())),
                };
                JsonDomain {
                    name: record.name.to_string(),
                    profile,
                    alias_of,
                    status: record.status.as_str().to_owned(),
                }
            })
            .collect(),
        users: data
            .users
            .into_iter()
            .map(|user| {
                let (redirect_addr, redirect_url) = match user.redirect {
                    Some(Redirect::Address(target)) => (Some(target.to_string()), None),
                    Some(Redirect::Url(url)) => (None, Some(url)),
                    None => (None, None),
                };
                JsonUser {
                    address: user.address.to_string(),
                    display_name: user.display_name,
                    login_name: user.login_name,
                    redirect_addr,
                    redirect_url,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_checked_one_by_one() {
        let parsed = parse_csv(
            "domain,profile,alias_of\n\
             a.example,standard,\n\
             b.example,,a.example\n\
             bad domain,standard,\n\
             c.example,standard,a.example\n\
             d.example,,\n\
             e.example,standard,,extra\n\
             \"F.Example.\",standard,\n",
        )
        .unwrap();
        assert_eq!(parsed.data.domains.len(), 3);
        assert_eq!(parsed.data.domains[2].name.as_str(), "f.example");
        assert_eq!(parsed.places[&Section::Domains], vec!["2", "3", "8"]);
        let lines: Vec<&str> = parsed
            .problems
            .iter()
            .map(|p| p.split(':').next().unwrap())
            .collect();
        assert_eq!(lines, vec!["4", "5", "6", "7"], "{:?}", parsed.problems);
        assert!(parsed.problems[1].contains("not both"));
    }

    #[test]
    fn csv_headers_are_checked() {
        assert!(parse_csv("domain,plan\n").is_err());
        assert!(parse_csv("profile\n").is_err());
        let parsed = parse_csv("Alias_Of,Domain\na.example,b.example\n").unwrap();
        assert!(matches!(
            &parsed.data.domains[0].target,
            DomainTarget::AliasOf(primary) if primary.as_str() == "a.example"
        ));
    }

    #[test]
    fn json_items_are_named_by_place() {
        let parsed = parse_json(
            r#"{"domains": [{"name": "a.example", "profile": "p"},
                            {"name": "b.example", "status": "paused", "profile": "p"}],
                "users": [{"address": "not an address", "login_name": "x"}]}"#,
        )
        .unwrap();
        assert_eq!(parsed.data.domains.len(), 1);
        assert_eq!(parsed.problems.len(), 2);
        assert!(parsed.problems[0].starts_with("domains[1]: unknown domain status"));
        assert!(parsed.problems[1].starts_with("users[0]: address"));
        let error = parse_json("{\n\"domains\": [}\n").err().unwrap();
        assert!(error.to_string().starts_with("2: "), "{error}");
        assert!(parse_json(r#"{"domain": []}"#).is_err());
    }
}
