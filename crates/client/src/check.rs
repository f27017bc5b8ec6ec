//! Live checks of hosted customer domains: are the DNS records a domain should publish
//! ([`DomainRecords`]) really there, and what does a mail client meet on the way to the service?
//!
//! A [`Checker`] looks at one domain in two parts, each finding said as one sentence with its
//! fix:
//!
//! - [`dns`]: each record, looked up live, is ok, missing, wrong (with what was found), drift
//!   (present but stale: a PACC digest of an older document) or an error (NXDOMAIN of the
//!   domain, SERVFAIL, timeout, a CNAME chain that loops or is too long);
//! - [`walk`]: Outlook's path, with the probe's own resolver, TLS and HTTP code: does
//!   `https://DOMAIN/autodiscover/autodiscover.xml` stop Outlook at a certificate warning or a
//!   password prompt before it reaches the redirect; is `autodiscover.DOMAIN:443` closed or
//!   covered by a certificate; does the redirect site send this host to the service; does the
//!   service answer an address in the domain.
//!
//! A missing optional record (the SRV steps, autoconfig, PACC) is a note, not a finding: the
//! domain works without it. Anything present but wrong is a finding, since clients follow it.
//! [`Checker::check_all`] checks many domains at once, with a bound and a per-domain timeout.

mod dns;
mod walk;

use std::time::{Duration, Instant};

use autodisco_proto::{DomainRecords, HosterNames};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{Client, ClientConfig, ConfigError};

/// The local part of the address the service is asked about: any address of a hosted domain
/// gets the domain's answer, so no real mailbox is named.
pub const CHECK_LOCAL_PART: &str = "autodisco-check";

/// What a record or a step came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// As it should be.
    Ok,
    /// Not there.
    Missing,
    /// There, but not what it should be.
    Wrong,
    /// There and of the right kind, but stale (a PACC digest of an older document).
    Drift,
    /// The lookup or the exchange failed (NXDOMAIN of the domain, SERVFAIL, timeout, a CNAME
    /// chain that loops or is too long, a service that cannot be reached).
    Error,
}

impl CheckStatus {
    /// The word shown in tables and stored with the findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Missing => "missing",
            Self::Wrong => "wrong",
            Self::Drift => "drift",
            Self::Error => "error",
        }
    }
}

/// One record set (owner and type) as looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCheck {
    /// The owner name.
    pub name: String,
    /// `CNAME`, `SRV`, `TXT`, `MX`.
    pub record_type: String,
    /// What should be there, in presentation format, one entry per record.
    pub expected: Vec<String>,
    /// What was found, in presentation format.
    pub found: Vec<String>,
    /// The verdict.
    pub status: CheckStatus,
    /// Whether clients fail without it.
    pub required: bool,
}

/// One step of what a client meets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStep {
    /// What was tried: `GET http://autodiscover.customer.example/autodiscover/autodiscover.xml`.
    pub request: String,
    /// The verdict.
    pub status: CheckStatus,
    /// What happened, in words.
    pub detail: String,
}

/// Something to fix: one sentence that says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The kind of problem.
    pub status: CheckStatus,
    /// The sentence, with its fix after the colon.
    pub message: String,
}

/// Everything found about one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCheck {
    /// The domain.
    pub domain: String,
    /// No findings.
    pub healthy: bool,
    /// What to fix.
    pub findings: Vec<Finding>,
    /// Worth knowing, nothing to fix (optional records not published, slow steps).
    pub notes: Vec<String>,
    /// Each record set.
    pub records: Vec<RecordCheck>,
    /// What a client meets.
    pub walk: Vec<WalkStep>,
    /// How long the check took, in milliseconds.
    pub elapsed_ms: u64,
}

/// What a check collects as it goes.
#[derive(Default)]
struct Collected {
    findings: Vec<Finding>,
    notes: Vec<String>,
    records: Vec<RecordCheck>,
    walk: Vec<WalkStep>,
}

impl Collected {
    fn finding(&mut self, status: CheckStatus, message: String) {
        self.findings.push(Finding { status, message });
    }

    /// Adds what independent checks, run at once each on its own, collected, in their order.
    fn merge(&mut self, parts: Vec<Collected>) {
        for part in parts {
            self.findings.extend(part.findings);
            self.notes.extend(part.notes);
            self.records.extend(part.records);
            self.walk.extend(part.walk);
        }
    }
}

/// The hoster's side of a check: its names and where its service answers.
#[derive(Debug, Clone)]
pub struct CheckTarget {
    /// The names the records point at.
    pub hoster: HosterNames,
    /// The URL Outlook is redirected to (`public_url` + `/autodiscover/autodiscover.xml`).
    pub service_url: Url,
}

/// Checks domains; one resolver (and its cache) for all of them.
pub struct Checker {
    client: Client,
    target: CheckTarget,
    domain_timeout: Duration,
}

impl Checker {
    /// `config` picks the DNS server, pins and extra CAs, and `step_timeout` bounds each lookup
    /// and exchange; `domain_timeout` bounds the whole check of one domain.
    pub fn new(
        config: ClientConfig,
        target: CheckTarget,
        domain_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            client: Client::new(config)?,
            target,
            domain_timeout,
        })
    }

    /// Checks one domain, within the per-domain timeout.
    pub async fn check(&self, expected: &DomainRecords) -> DomainCheck {
        let started = Instant::now();
        let mut collected = Collected::default();
        let checked = tokio::time::timeout(self.domain_timeout, async {
            dns::check_records(self, expected, &mut collected).await;
            if dns::walk_possible(&collected) {
                walk::walk(self, expected, &mut collected).await;
            }
        })
        .await;
        if checked.is_err() {
            collected.finding(
                CheckStatus::Error,
                format!(
                    "the check of {} did not finish within {} s: its name servers or web servers answer too slowly; check again, or look at the steps above",
                    expected.domain,
                    self.domain_timeout.as_secs_f32()
                ),
            );
        }
        DomainCheck {
            domain: expected.domain.to_string(),
            healthy: collected.findings.is_empty(),
            findings: collected.findings,
            notes: collected.notes,
            records: collected.records,
            walk: collected.walk,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Checks every domain, at most `concurrency` at once, yielding each result as it is
    /// ready (not in the given order).
    pub fn check_all<'a, I>(
        &'a self,
        domains: I,
        concurrency: usize,
    ) -> impl Stream<Item = DomainCheck> + 'a
    where
        I: IntoIterator<Item = DomainRecords>,
        I::IntoIter: 'a,
    {
        futures_util::stream::iter(domains)
            .map(move |expected| async move { self.check(&expected).await })
            .buffer_unordered(concurrency.max(1))
    }

    fn step_timeout(&self) -> Duration {
        self.client.config().step_timeout
    }
}
