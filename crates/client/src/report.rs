//! The result of a discovery as data: the settings, the conclusion, and the trace of every step.
//!
//! Everything here is [`Serialize`], so `autodisco probe --json` is one `serde_json` call; every
//! entry also carries its `summary` in words, so the JSON reads without this crate's help.

use std::fmt;

use serde::Serialize;
use thiserror::Error;

use crate::dialect::Dialect;
use crate::settings::Settings;

/// What one discovery found, and how.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The address asked about.
    pub address: String,
    /// The dialect the discovery spoke.
    pub dialect: Dialect,
    /// Whether settings were found.
    pub found: bool,
    /// The address the settings are for, when a `redirectAddr` changed it.
    pub final_address: String,
    /// The URL that answered with the settings.
    pub url: Option<String>,
    /// Which of Outlook's candidates led there.
    pub via: Option<Step>,
    /// Redirections followed on the way (at most [`MAX_REDIRECTIONS`](crate::MAX_REDIRECTIONS)).
    pub redirections: usize,
    /// One sentence: where the settings came from, or why none were found.
    pub conclusion: String,
    /// The settings, grouped by purpose.
    pub settings: Option<Settings>,
    /// How long the whole discovery took, in milliseconds.
    pub elapsed_ms: u64,
    /// Every DNS query, HTTP request, consent decision and abandoned attempt, in the order they
    /// finished.
    pub trace: Vec<TraceEntry>,
}

/// Which step of the discovery an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Candidate 1: POST `https://DOMAIN/autodiscover/autodiscover.xml` ([MS-OXDISCO] 3.1.5.2).
    Root,
    /// Candidate 2: POST `https://autodiscover.DOMAIN/autodiscover/autodiscover.xml`
    /// ([MS-OXDISCO] 3.1.5.2).
    AutodiscoverHost,
    /// Candidate 3: unauthenticated GET `http://autodiscover.DOMAIN/autodiscover/autodiscover.xml`
    /// and the POST to its redirect ([MS-OXDISCO] 3.1.5.4).
    HttpRedirect,
    /// Candidate 4: DNS SRV `_autodiscover._tcp.DOMAIN` and the POST to its target
    /// ([MS-OXDISCO] 3.1.5.3).
    Srv,
    /// The mobilesync request for the ActiveSync section, after the settings were found.
    ActiveSync,
    /// Autoconfig: `https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDRESS`.
    AutoconfigHost,
    /// Autoconfig: `https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=...`.
    AutoconfigWellKnown,
    /// Autoconfig: the same two URLs over plain `http://`.
    AutoconfigPlainHttp,
    /// Autoconfig: MX of DOMAIN, then `https://autoconfig.MXBASE/mail/config-v1.1.xml?...`.
    AutoconfigMx,
}

impl Step {
    /// The candidate's number in Outlook's order (1 to 4); `None` for ActiveSync.
    pub fn number(self) -> Option<u8> {
        match self {
            Self::Root => Some(1),
            Self::AutodiscoverHost => Some(2),
            Self::HttpRedirect => Some(3),
            Self::Srv => Some(4),
            _ => None,
        }
    }

    /// A short name for the step.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Root => "step 1, the domain itself",
            Self::AutodiscoverHost => "step 2, the autodiscover host",
            Self::HttpRedirect => "step 3, the HTTP redirect",
            Self::Srv => "step 4, the DNS SRV record",
            Self::ActiveSync => "ActiveSync",
            Self::AutoconfigHost => "autoconfig, the autoconfig host",
            Self::AutoconfigWellKnown => "autoconfig, the domain's well-known URL",
            Self::AutoconfigPlainHttp => "autoconfig over plain HTTP",
            Self::AutoconfigMx => "autoconfig, the MX host's base domain",
        }
    }

    /// A label of at most six characters for a trace line: `step 1`, `ac-mx`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Root => "step 1",
            Self::AutodiscoverHost => "step 2",
            Self::HttpRedirect => "step 3",
            Self::Srv => "step 4",
            Self::ActiveSync => "extra",
            Self::AutoconfigHost => "ac-1",
            Self::AutoconfigWellKnown => "ac-2",
            Self::AutoconfigPlainHttp => "ac-3",
            Self::AutoconfigMx => "ac-mx",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// One thing the probe did: a request, a lookup, a consent decision, an abandoned attempt.
#[derive(Debug, Clone, Serialize)]
pub struct TraceEntry {
    /// The address this was for (it changes after a `redirectAddr`).
    pub address: String,
    /// The candidate it belongs to.
    pub step: Step,
    /// What was done: `POST https://...`, `GET http://...`, `SRV _autodiscover._tcp.DOMAIN`,
    /// `consent for https://...`.
    pub request: String,
    /// When it started, in milliseconds since the discovery started.
    pub started_ms: u64,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// How the name was resolved: CNAME chain and addresses, or the pin used.
    pub dns: Vec<String>,
    /// The address connected to.
    pub peer: Option<String>,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// What came of it.
    pub outcome: Outcome,
    /// The same in words.
    pub summary: String,
    /// Deviations from the specs, warnings and remarks.
    pub notes: Vec<Note>,
}

/// What came of one trace entry.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Settings for the account (`Action` `settings`).
    Settings,
    /// `Action` `redirectAddr`: discovery restarts for this address.
    RedirectAddr {
        /// The new address.
        address: String,
    },
    /// `Action` `redirectUrl`: the next POST goes there.
    RedirectUrl {
        /// The new URL.
        url: String,
    },
    /// An HTTP redirect to follow.
    HttpRedirect {
        /// The status code.
        status: u16,
        /// The Location, resolved against the request URL.
        location: String,
    },
    /// An SRV record to use.
    SrvTarget {
        /// The URL built from its target.
        url: String,
    },
    /// 401 with a Basic challenge from a host trusted with credentials: the request is repeated
    /// with them (the next entry has the answer).
    Challenge,
    /// The user's consent was asked (or remembered).
    Consent {
        /// Whether it was given.
        allowed: bool,
        /// How, or why not.
        detail: String,
    },
    /// The ActiveSync answer (see [`Settings::activesync`](crate::Settings::activesync)).
    ActiveSync,
    /// An Autodiscover v2 answer: the URL of a protocol.
    ServiceUrl {
        /// `EWS`, `AutodiscoverV1`.
        protocol: String,
        /// Its URL.
        url: String,
    },
    /// The MX record that the autoconfig MX path uses.
    MxHost {
        /// The mail exchanger.
        host: String,
        /// The URL built from its base domain.
        url: String,
    },
    /// This attempt failed; the next candidate decides.
    Failed {
        /// Why.
        failure: Failure,
    },
    /// This attempt was still running when the discovery ended.
    Abandoned {
        /// Why it was no longer needed, and what it was waiting for.
        reason: String,
    },
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Failure {
    /// The name does not exist.
    #[error("{name} does not exist in DNS (NXDOMAIN)")]
    NoSuchName {
        /// The name.
        name: String,
    },
    /// The name exists but has no records of the type asked.
    #[error("{name} has no {record_type} record")]
    NoRecords {
        /// The name.
        name: String,
        /// A, AAAA, SRV...
        record_type: String,
    },
    /// The DNS query failed otherwise (no answer, SERVFAIL).
    #[error("the DNS query for {name} failed: {detail}")]
    Dns {
        /// The name.
        name: String,
        /// What the resolver said.
        detail: String,
    },
    /// No TCP connection.
    #[error("cannot connect to {address}: {detail}")]
    Connect {
        /// The address tried last.
        address: String,
        /// What the system said.
        detail: String,
    },
    /// The TLS handshake failed; `diagnosis` says why in words.
    #[error("{diagnosis}")]
    Tls {
        /// The name the certificate was checked for.
        host: String,
        /// What went wrong, in words ("the certificate of X covers only Y").
        diagnosis: String,
        /// The names the presented certificate covers, when one was presented.
        certificate_names: Vec<String>,
    },
    /// The step timeout passed.
    #[error("no answer within {seconds} s: {waiting_for}", seconds = format_seconds(*after_ms))]
    Timeout {
        /// The timeout, in milliseconds.
        after_ms: u64,
        /// What was still awaited ("the TLS handshake with 127.0.0.1:443").
        waiting_for: String,
    },
    /// The HTTP exchange broke off.
    #[error("the HTTP exchange failed: {detail}")]
    Http {
        /// What hyper said.
        detail: String,
    },
    /// The body exceeded the limit.
    #[error("the answer is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A status other than the one needed ([MS-OXDSCLI] 3.1.5.5: any status but 200 moves on).
    #[error("HTTP status {status}{}", reason.as_deref().map(|r| format!(" {r}")).unwrap_or_default())]
    Status {
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: Option<String>,
    },
    /// A 200 with an AutoDiscover `Error` ([MS-OXDSCLI] 2.2.4.1.1.3).
    #[error("AutoDiscover error {code}: {message}")]
    AutodiscoverError {
        /// `ErrorCode`.
        code: u32,
        /// `Message`.
        message: String,
    },
    /// A 200 whose body is no AutoDiscover response.
    #[error("the answer is not an AutoDiscover response: {detail}")]
    Decode {
        /// What the decoder said.
        detail: String,
    },
    /// 401, and credentials were not (or no longer) to be sent.
    #[error("the server asks for credentials (401): {why}")]
    Unauthorized {
        /// Why none were sent, or that they were refused.
        why: String,
    },
    /// A redirect or target that must not be followed.
    #[error("{url} is not followed: {why}")]
    Refused {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The user did not allow the redirect.
    #[error("{url} is not followed without consent: {why}")]
    NoConsent {
        /// The URL.
        url: String,
        /// Why consent was not given.
        why: String,
    },
    /// A redirect back to something already asked.
    #[error("redirection loop: {what} was already asked in this discovery")]
    Loop {
        /// The URL or address.
        what: String,
    },
    /// More than [`MAX_REDIRECTIONS`](crate::MAX_REDIRECTIONS).
    #[error("more than {limit} redirections: {next} is not followed")]
    TooManyRedirections {
        /// The limit.
        limit: usize,
        /// Where the next one pointed.
        next: String,
    },
    /// A URL that had already failed ([MS-OXDSCLI] 3.1.5: redirectUrl must not point to a URL
    /// that failed before).
    #[error("{url} already failed earlier in this discovery")]
    FailedBefore {
        /// The URL.
        url: String,
    },
    /// The step-3 GET did not answer with a redirect.
    #[error("no redirect: {detail}")]
    NoRedirect {
        /// What came instead.
        detail: String,
    },
    /// No SRV record the probe can use.
    #[error("no usable SRV record: {detail}")]
    NoUsableSrv {
        /// Which records there were.
        detail: String,
    },
}

fn format_seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        format!("{:.1}", ms as f64 / 1000.0)
    }
}

/// A remark on a trace entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// What kind of remark.
    pub kind: NoteKind,
    /// The remark in words.
    pub text: String,
}

impl Note {
    pub(crate) fn new(kind: NoteKind, text: impl Into<String>) -> Self {
        Self {
            kind,
            text: text.into(),
        }
    }
}

/// What kind of remark a [`Note`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// The server departs from the specification but the probe went on, as clients do.
    Deviation,
    /// Something that works but is likely wrong.
    Warning,
    /// Context: credentials sent, records ignored, behaviour that is Outlook's, not the spec's.
    Info,
}

/// A request in flight, for progress display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InFlight {
    /// The step it belongs to.
    pub step: Step,
    /// The request (`POST https://...`).
    pub request: String,
    /// What it is waiting for ("TLS handshake with 127.0.0.1:443").
    pub waiting_for: String,
    /// Since when, in milliseconds since the discovery started.
    pub since_ms: u64,
}

/// Watches a discovery as it runs (progress display). Called from the discovery's task: keep it
/// quick and do not block.
pub trait Observer: Send + Sync {
    /// A trace entry was made.
    fn entry(&self, entry: &TraceEntry);
    /// The requests in flight changed.
    fn in_flight(&self, requests: &[InFlight]);
}
