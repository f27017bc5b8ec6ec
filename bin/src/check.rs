//! `autodisco domain check`: checks hosted domains live (the engine is
//! `autodisco_client::Checker`), prints each finding in words, stores each domain's result in
//! the directory for `domain list` and `domain show`, and exits 0 when every domain is healthy,
//! 1 when any has findings, 2 on a usage or configuration error.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use autodisco_client::{CheckTarget, Checker, ClientConfig, DnsServer, DomainCheck, render};
use autodisco_directory::{DomainHealth, HealthStatus, Store};
use autodisco_proto::{Domain, DomainRecords};
use autodisco_server::config::Config;
use clap::Args;
use futures_util::StreamExt;
use url::Url;

use crate::args::domain_arg;
use crate::dns::{JsonArray, all_records, records_for};
use crate::open_store;
use crate::probe::{NetArgs, parse_duration};

/// Results stored per transaction while a check runs, so an interrupted run keeps most of
/// what it found.
const STORE_BATCH: usize = 500;

/// The flags of `autodisco domain check`.
#[derive(Args, Debug)]
#[command(after_help = CHECK_AFTER_HELP)]
pub(crate) struct CheckArgs {
    /// The domains to check (primaries or aliases).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    domains: Vec<String>,
    /// Check every active hosted domain (suspended ones are left out).
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    net: NetArgs,
    /// Print one JSON document (every record, step and finding) instead of text.
    #[arg(long)]
    json: bool,
    /// How long one DNS query or HTTP exchange may take.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    step_timeout: Duration,
    /// How long the whole check of one domain may take.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// How many domains are checked at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// Do not store the results in the directory.
    #[arg(long)]
    no_store: bool,
}

const CHECK_AFTER_HELP: &str = "\
Each record is ok, missing, wrong (with what was found), drift (present but stale, such as the
PACC digest of an older document) or error (NXDOMAIN, SERVFAIL, timeout, a CNAME chain that
loops or is too long). A missing optional record (the SRV steps, autoconfig, PACC) is a note,
not a finding. Then what Outlook meets: https://DOMAIN (a certificate warning or a password
prompt there stops it), autodiscover.DOMAIN:443 (closed, or covered by a certificate), the
redirect site's 302 for this host, and the service's answer for an address in the domain.

Results are stored in the directory: `domain list` shows each domain's health,
`domain list --unhealthy` only the domains with findings, `domain show` the last findings.

Exit codes: 0 every domain healthy, 1 findings, 2 usage or configuration error.";

/// Runs the check and maps the outcome to the exit code.
pub(crate) async fn run(config: &Config, args: CheckArgs) -> ExitCode {
    match check(config, args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(every domain healthy)`, or a usage or configuration error.
async fn check(config: &Config, args: CheckArgs) -> anyhow::Result<bool> {
    let store = open_store(config).await?;
    let expected = expected_records(config, &store, &args).await?;
    let mut client_config = ClientConfig {
        step_timeout: args.step_timeout,
        ..ClientConfig::default()
    };
    args.net.apply(&mut client_config)?;
    let checker = Checker::new(client_config, check_target(config)?, args.timeout)
        .context("cannot set up the checks")?;
    let (total, expected) = expected;
    let mut progress = Progress::new(total, std::io::stderr().is_terminal() && !args.json);
    let mut output = Output::new(args.json);
    let mut pending = Vec::new();
    let mut stream = checker.check_all(expected, usize::from(args.concurrency));
    // Printed and stored as they finish: memory stays bounded by the concurrency and the batch,
    // however many domains there are.
    while let Some(result) = stream.next().await {
        progress.clear();
        output.add(&result)?;
        progress.advance(result.healthy);
        if !args.no_store {
            pending.push(health_of(&result)?);
            if pending.len() >= STORE_BATCH {
                store.put_health(&std::mem::take(&mut pending)).await?;
            }
        }
    }
    if !pending.is_empty() {
        store.put_health(&pending).await?;
    }
    progress.clear();
    output.finish()
}

/// The domains to check and how many there are; with `--all` computed as they are taken.
async fn expected_records(
    config: &Config,
    store: &Store,
    args: &CheckArgs,
) -> anyhow::Result<(usize, Box<dyn Iterator<Item = DomainRecords>>)> {
    if args.all {
        let (count, records) = all_records(config, store, true).await?;
        return Ok((count, Box::new(records)));
    }
    let mut expected = Vec::with_capacity(args.domains.len());
    for name in &args.domains {
        let domain: Domain = domain_arg(name)?;
        expected.push(records_for(config, store, &domain).await?);
    }
    Ok((expected.len(), Box::new(expected.into_iter())))
}

/// The stored form: the verdict and the findings as JSON.
fn health_of(result: &DomainCheck) -> anyhow::Result<DomainHealth> {
    Ok(stored(domain_arg(&result.domain)?, result))
}

/// The stored form of `result`, a check of `domain`.
fn stored(domain: Domain, result: &DomainCheck) -> DomainHealth {
    let checked_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DomainHealth {
        domain,
        checked_at,
        status: if result.healthy {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy
        },
        // Plain strings and numbers: encoding them cannot fail.
        findings: serde_json::to_string(&result.findings).unwrap_or_else(|_| "[]".to_owned()),
    }
}

/// How long the admin API's `POST /v1/domains/{name}/check` may take for one domain: below the
/// API's own request timeout (30 s).
const API_CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// The admin API's live checks: the engine of `domain check`, with `[dns] servers` (or the
/// system's resolver) and the system's certificate roots.
pub(crate) struct ApiChecker(Checker);

impl ApiChecker {
    pub(crate) fn new(config: &Config) -> anyhow::Result<Self> {
        let client_config = ClientConfig {
            step_timeout: Duration::from_secs(5),
            // The client asks one server: the first of `[dns] servers`.
            dns: config
                .dns_servers
                .first()
                .map_or(DnsServer::System, |server| DnsServer::At(*server)),
            ..ClientConfig::default()
        };
        let checker = Checker::new(client_config, check_target(config)?, API_CHECK_TIMEOUT)
            .context("cannot set up the admin API's live checks")?;
        Ok(Self(checker))
    }
}

impl autodisco_server::DomainChecker for ApiChecker {
    fn check(&self, expected: DomainRecords) -> autodisco_server::BoxFuture<'_, DomainHealth> {
        Box::pin(async move {
            let result = self.0.check(&expected).await;
            stored(expected.domain, &result)
        })
    }
}

/// What the checks compare against: the hoster's names and the service's POX URL.
fn check_target(config: &Config) -> anyhow::Result<CheckTarget> {
    let service_url = Url::parse(&format!(
        "{}{}",
        config.public_url.trim_end_matches('/'),
        autodisco_proto::pox::PATH
    ))
    .with_context(|| format!("public_url {:?} is not a URL", config.public_url))?;
    Ok(CheckTarget {
        hoster: config.record_targets(),
        service_url,
    })
}

/// Standard output: each domain's result as it finishes, then (in text) a summary line.
struct Output {
    json: Option<JsonArray>,
    checked: usize,
    unhealthy: usize,
}

impl Output {
    fn new(json: bool) -> Self {
        Self {
            json: json.then(JsonArray::default),
            checked: 0,
            unhealthy: 0,
        }
    }

    fn add(&mut self, result: &DomainCheck) -> anyhow::Result<()> {
        self.checked += 1;
        self.unhealthy += usize::from(!result.healthy);
        let mut out = std::io::stdout().lock();
        match &mut self.json {
            Some(array) => array.push(&mut out, result),
            None => Ok(render::domain_check(&mut out, result)?),
        }
    }

    /// Ends the output; `Ok(every domain healthy)`.
    fn finish(self) -> anyhow::Result<bool> {
        let mut out = std::io::stdout().lock();
        match self.json {
            Some(array) => array.finish(&mut out)?,
            None => writeln!(
                out,
                "{} domains checked, {} healthy, {} with findings",
                self.checked,
                self.checked - self.unhealthy,
                self.unhealthy
            )?,
        }
        Ok(self.unhealthy == 0)
    }
}

/// One status line on a terminal: how many domains are done, how many have findings.
struct Progress {
    enabled: bool,
    total: usize,
    done: usize,
    unhealthy: usize,
    drawn: Instant,
    shown: bool,
}

impl Progress {
    fn new(total: usize, enabled: bool) -> Self {
        Self {
            enabled,
            total,
            done: 0,
            unhealthy: 0,
            drawn: Instant::now(),
            shown: false,
        }
    }

    fn advance(&mut self, healthy: bool) {
        self.done += 1;
        self.unhealthy += usize::from(!healthy);
        // Ten redraws a second at most: a terminal is slower than 10,000 checks a minute.
        if self.enabled && self.drawn.elapsed() >= Duration::from_millis(100) {
            self.drawn = Instant::now();
            self.shown = true;
            eprint!(
                "\r\x1b[2Kchecked {}/{} domains, {} with findings",
                self.done, self.total, self.unhealthy
            );
            let _ = std::io::stderr().flush();
        }
    }

    /// Takes the line away, before a result is printed and at the end.
    fn clear(&mut self) {
        if self.shown {
            self.shown = false;
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}
