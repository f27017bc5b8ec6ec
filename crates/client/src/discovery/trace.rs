//! The trace: one [`TraceEntry`] per request, lookup, consent decision or abandoned attempt, told
//! to the observer as it is made, and the sentences the conclusion is built from.

use std::time::Duration;

use autodisco_proto::EmailAddress;
use http::StatusCode;
use tokio::time::Instant;

use super::Run;
use crate::net::ExchangeLog;
use crate::report::{Failure, Note, Outcome, Step, TraceEntry};

/// Where a trace entry belongs: the address asked about and the step asking.
#[derive(Clone, Copy)]
pub(super) struct At<'a> {
    pub(super) address: &'a EmailAddress,
    pub(super) step: Step,
}

/// What one request or lookup left for the trace, before its outcome is known.
pub(super) struct Exchanged {
    /// `POST https://...`, `SRV _autodiscover._tcp.DOMAIN`.
    pub(super) request: String,
    pub(super) started: Instant,
    pub(super) log: ExchangeLog,
    /// The HTTP status, when an answer came.
    pub(super) status: Option<u16>,
}

impl Exchanged {
    /// A request or lookup that starts now.
    pub(super) fn starting(request: String) -> Self {
        Self {
            request,
            started: Instant::now(),
            log: ExchangeLog::default(),
            status: None,
        }
    }
}

impl Run<'_> {
    /// The trace entry for `exchanged`, summarised from its outcome.
    pub(super) fn entry(
        &self,
        at: At<'_>,
        exchanged: Exchanged,
        outcome: Outcome,
        notes: Vec<Note>,
    ) -> TraceEntry {
        let summary = summarise(&outcome);
        let Exchanged {
            request,
            started,
            log,
            status,
        } = exchanged;
        TraceEntry {
            address: at.address.to_string(),
            step: at.step,
            request,
            started_ms: self.ms(started),
            duration_ms: started.elapsed().as_millis() as u64,
            dns: log.dns,
            peer: log.peer.map(|p| p.to_string()),
            status,
            outcome,
            summary,
            notes,
        }
    }

    pub(super) fn record_exchange(
        &self,
        at: At<'_>,
        exchanged: Exchanged,
        outcome: Outcome,
        notes: Vec<Note>,
    ) {
        let entry = self.entry(at, exchanged, outcome, notes);
        self.record(entry);
    }

    /// Records a failure that took no request: a refused redirect, a loop.
    pub(super) fn record_failure(&self, at: At<'_>, request: &str, failure: Failure) {
        let exchanged = Exchanged::starting(request.to_owned());
        self.record_exchange(at, exchanged, failed(failure), Vec::new());
    }

    pub(super) fn record(&self, entry: TraceEntry) {
        tracing::debug!(step = ?entry.step, request = %entry.request, summary = %entry.summary, "probe");
        if let Some(observer) = &self.observer {
            observer.entry(&entry);
        }
        self.trace.lock().expect("trace lock").push(entry);
    }

    /// The summary of the last entry made (why the last request failed).
    pub(super) fn last_summary(&self) -> String {
        self.trace
            .lock()
            .expect("trace lock")
            .last()
            .map(|e| e.summary.clone())
            .unwrap_or_default()
    }

    /// One sentence per step: its last entry for `address`.
    pub(super) fn why_not(&self, address: &EmailAddress, steps: &[Step]) -> String {
        let trace = self.trace.lock().expect("trace lock");
        let address = address.to_string();
        let parts: Vec<String> = steps
            .iter()
            .filter_map(|step| {
                trace
                    .iter()
                    .rev()
                    .find(|e| e.step == *step && e.address == address)
                    .map(|e| format!("{} ({})", e.summary, step.label()))
            })
            .collect();
        if parts.is_empty() {
            "no candidate answered".to_owned()
        } else {
            parts.join("; ")
        }
    }

    pub(super) fn ms(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.started).as_millis() as u64
    }
}

pub(super) fn failed(failure: Failure) -> Outcome {
    Outcome::Failed { failure }
}

/// `404 Not Found`, or the bare number.
pub(super) fn status_words(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// `10 s`, `2.5 s`.
pub(super) fn seconds(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// ` after 2 redirections`, or nothing.
pub(super) fn redirections(hops: usize) -> String {
    match hops {
        0 => String::new(),
        1 => " after 1 redirection".to_owned(),
        n => format!(" after {n} redirections"),
    }
}

fn summarise(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Settings => "settings".to_owned(),
        Outcome::RedirectAddr { address } => format!("redirectAddr: ask again for {address}"),
        Outcome::RedirectUrl { url } => format!("redirectUrl: ask {url}"),
        Outcome::HttpRedirect { status, location } => format!("{status} redirect to {location}"),
        Outcome::SrvTarget { url } => format!("SRV record points to {url}"),
        Outcome::Challenge => {
            "401: the server asks for credentials; asking again with HTTP Basic".to_owned()
        }
        Outcome::Consent {
            allowed: true,
            detail,
        } => format!("allowed ({detail})"),
        Outcome::Consent {
            allowed: false,
            detail,
        } => format!("refused ({detail})"),
        Outcome::ActiveSync => "ActiveSync answer".to_owned(),
        Outcome::ServiceUrl { protocol, url } => format!("{protocol} at {url}"),
        Outcome::MxHost { host, url } => format!("MX host {host}: ask {url}"),
        Outcome::Failed { failure } => failure.to_string(),
        Outcome::Abandoned { reason } => format!("abandoned: {reason}"),
    }
}
