//! The user's consent to a redirect, as Outlook asks it: "Allow this website to configure
//! someone@CUSTOMER server settings?"
//!
//! [MS-OXDISCO] 3.1.5.4 asks the client to warn the user before following the HTTP redirect;
//! Outlook also asks before using an SRV target (its behaviour, not a spec rule), and the probe
//! asks before a redirect leaves the registrable domain of the host that sent it. The caller
//! decides how to ask: a terminal prompt, a list of trusted hosts, a flag.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

/// Why consent is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConsentReason {
    /// The unauthenticated GET of [MS-OXDISCO] 3.1.5.4 answered with a redirect.
    HttpRedirect {
        /// The URL that answered.
        from: String,
        /// The status (302, or a deviation such as 301).
        status: u16,
    },
    /// The target of the SRV record `_autodiscover._tcp.DOMAIN` ([MS-OXDISCO] 3.1.5.3). Outlook
    /// asks here too, though the spec does not require it.
    SrvRecord {
        /// The record's owner name.
        name: String,
    },
    /// A redirect (an HTTP redirect answering a POST, or `redirectUrl`) to a host outside the
    /// registrable domain of the host that sent it.
    OtherDomain {
        /// The URL that sent the redirect.
        from: String,
    },
}

impl fmt::Display for ConsentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HttpRedirect { from, status } => {
                write!(f, "the HTTP redirect ({status}) from {from}")
            }
            Self::SrvRecord { name } => write!(f, "the DNS SRV record {name}"),
            Self::OtherDomain { from } => write!(f, "a redirect from {from} to another domain"),
        }
    }
}

/// What the user is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentRequest {
    /// The address being configured.
    pub address: String,
    /// The URL that would configure it.
    pub url: String,
    /// That URL's host: the unit consent is remembered by.
    pub host: String,
    /// How the probe came to this URL.
    pub reason: ConsentReason,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ConsentDecision {
    /// Go ahead; `how` says why, for the trace ("--yes", "trusted host").
    Allow {
        /// How consent was given.
        how: String,
    },
    /// Do not; `why` says why, for the trace ("no terminal to ask").
    Deny {
        /// Why not.
        why: String,
    },
}

impl ConsentDecision {
    /// Whether the redirect may be followed.
    pub fn allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

/// Decides on redirects that need the user's consent.
///
/// The engine calls [`decide`](Self::decide) on a blocking thread, one request at a time, and
/// remembers the answer per host for the rest of the discovery; an implementation may block
/// on a prompt. Time spent here does not count toward the total timeout.
pub trait Consent: Send + Sync + 'static {
    /// Decides one request.
    fn decide(&self, request: &ConsentRequest) -> ConsentDecision;
}

/// Refuses every redirect that needs consent (scripts without `--yes` or `--trust`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

impl Consent for DenyAll {
    fn decide(&self, _request: &ConsentRequest) -> ConsentDecision {
        ConsentDecision::Deny {
            why: "no consent was given".to_owned(),
        }
    }
}

/// Allows every redirect (`--yes`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Consent for AllowAll {
    fn decide(&self, _request: &ConsentRequest) -> ConsentDecision {
        ConsentDecision::Allow {
            how: "every redirect allowed".to_owned(),
        }
    }
}

/// Allows redirects to the listed hosts and refuses the rest.
#[derive(Debug, Clone, Default)]
pub struct TrustedHosts {
    hosts: HashSet<String>,
}

impl TrustedHosts {
    /// Trusts these hosts (compared case-insensitively, trailing dot ignored).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(hosts: I) -> Self {
        Self {
            hosts: hosts
                .into_iter()
                .map(|h| normalise_host(h.as_ref()))
                .collect(),
        }
    }

    /// Whether `host` is trusted.
    pub fn contains(&self, host: &str) -> bool {
        self.hosts.contains(&normalise_host(host))
    }
}

impl Consent for TrustedHosts {
    fn decide(&self, request: &ConsentRequest) -> ConsentDecision {
        if self.contains(&request.host) {
            ConsentDecision::Allow {
                how: format!("{} is trusted", request.host),
            }
        } else {
            ConsentDecision::Deny {
                why: format!("{} is not among the trusted hosts", request.host),
            }
        }
    }
}

/// Lower case, no trailing dot: the form hosts are compared in.
pub fn normalise_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}
