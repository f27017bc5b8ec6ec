//! The discovery engine. A [`Run`] is one discovery of one address in one dialect; this module
//! owns its decisions: which dialect's procedure runs, how a `redirectAddr` restarts it for the
//! new address (with loop detection and the hop limit, [MS-OXDSCLI] 3.1.5), and the conclusion.
//!
//! The parts, in the order a discovery meets them:
//!
//! - [`race`]: Outlook's four candidates as lanes, started staggered and chosen by priority;
//!   [`lanes`]: the table where each lane's state is shared.
//! - [`candidates`]: candidates 3 (the HTTP redirect) and 4 (SRV), which find a URL to POST to.
//! - [`follow`]: the one redirect-and-consent follower, for GET and POST alike, with the rules
//!   for credentials in one place.
//! - one file per dialect, named as in proto and server: [`pox`] and [`soap`] (what a POST
//!   carries and how its answer reads), [`mobilesync`] (the ActiveSync question after POX),
//!   [`v2`] (Autodiscover v2 JSON, then POX) and [`autoconfig`] (Thunderbird's GETs).
//! - [`trace`]: the trace entries and the sentences made from them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autodisco_proto::EmailAddress;
use tokio::time::Instant;
use url::Url;

use crate::consent::{Consent, ConsentDecision};
use crate::dialect::Dialect;
use crate::policy;
use crate::report::{Failure, Observer, Report, Step, TraceEntry};
use crate::settings::Settings;
use crate::{Client, MAX_REDIRECTIONS};

mod autoconfig;
mod candidates;
mod consent_prompt;
mod follow;
mod lanes;
mod mobilesync;
mod pox;
mod race;
mod soap;
mod trace;
mod v2;

use trace::{At, redirections, seconds};

#[cfg(test)]
pub(crate) use soap::SOAP_SETTINGS;

/// Whether `body` reads as a POX answer Outlook acts on (settings, `redirectAddr` or
/// `redirectUrl`), as the race reads it; an `Error` or anything else is the failure. For the
/// live checks, which ask the same questions outside a discovery.
pub(crate) fn pox_answer(body: &[u8]) -> Result<(), Failure> {
    use follow::PostDialect as _;
    pox::Pox.interpret(body).map(drop)
}

/// Settings found, and where.
pub(super) struct Landing {
    settings: Box<Settings>,
    url: Url,
    step: Step,
    /// Redirections followed to get there.
    hops: usize,
    /// Whether the host that answered may be sent credentials (for the ActiveSync question).
    credentials_ok: bool,
}

/// What one procedure found for one address.
pub(super) enum Found {
    Settings(Landing),
    /// The server sends the client to another address ([MS-OXDSCLI] 2.2.4.1.1.2.9).
    RedirectAddr {
        address: EmailAddress,
        step: Step,
        hops: usize,
    },
}

/// How one round (the dialect's procedure for one address) ended.
pub(super) enum Round {
    Found(Box<Found>),
    /// Nothing found: why, and the redirections followed so far.
    NotFound {
        why: String,
        hops: usize,
    },
    /// The total timeout passed.
    TimedOut,
}

/// The procedure of a dialect that `redirectAddr` can restart for another address.
#[derive(Clone, Copy)]
enum Procedure {
    /// Outlook's four candidates, POSTing in this dialect.
    Race(&'static dyn follow::PostDialect),
    /// Autodiscover v2, then POX at the `AutodiscoverV1` URL.
    V2,
}

/// How the whole discovery ended.
struct Ended {
    /// The address last asked about.
    address: EmailAddress,
    hops: usize,
    result: Result<Landing, String>,
}

/// One discovery.
pub(crate) struct Run<'c> {
    client: &'c Client,
    dialect: Dialect,
    origin: EmailAddress,
    consent: Arc<dyn Consent>,
    observer: Option<Arc<dyn Observer>>,
    step_timeout: Duration,
    total_timeout: Duration,
    started: Instant,
    trace: Mutex<Vec<TraceEntry>>,
    /// One consent prompt at a time.
    consent_gate: tokio::sync::Mutex<()>,
    /// Consent decisions by host, for the rest of this discovery.
    decisions: Mutex<HashMap<String, ConsentDecision>>,
    /// URLs that failed: a redirect to one is not followed.
    failed_urls: Mutex<HashSet<String>>,
    /// Time spent waiting for the user, which the total timeout does not count.
    paused: Mutex<Duration>,
    prompt_open: Mutex<bool>,
}

impl<'c> Run<'c> {
    pub(crate) fn new(
        client: &'c Client,
        dialect: Dialect,
        origin: EmailAddress,
        consent: Arc<dyn Consent>,
        observer: Option<Arc<dyn Observer>>,
    ) -> Self {
        let config = client.config();
        Self {
            client,
            dialect,
            origin,
            consent,
            observer,
            step_timeout: config.step_timeout,
            total_timeout: config.total_timeout,
            started: Instant::now(),
            trace: Mutex::new(Vec::new()),
            consent_gate: tokio::sync::Mutex::new(()),
            decisions: Mutex::new(HashMap::new()),
            failed_urls: Mutex::new(HashSet::new()),
            paused: Mutex::new(Duration::ZERO),
            prompt_open: Mutex::new(false),
        }
    }

    /// Runs the discovery to its end.
    pub(crate) async fn execute(self) -> Report {
        let ended = match self.dialect {
            // The race watches the total timeout itself, so that consent prompts do not count.
            Dialect::Pox => self.follow_addresses(Procedure::Race(&pox::Pox)).await,
            Dialect::Soap => self.follow_addresses(Procedure::Race(&soap::Soap)).await,
            Dialect::V2 => {
                self.within_total(self.follow_addresses(Procedure::V2))
                    .await
            }
            Dialect::Autoconfig => self.within_total(self.autoconfig()).await,
        };
        if let Some(observer) = &self.observer {
            observer.in_flight(&[]);
        }
        self.finish(ended).await
    }

    /// Rounds of `procedure` until settings are found, following each `redirectAddr` to the
    /// next address.
    async fn follow_addresses(&self, procedure: Procedure) -> Ended {
        let mut address = self.origin.clone();
        let mut hops = 0;
        let mut seen = vec![address.lookup_key()];
        loop {
            let round = match procedure {
                Procedure::Race(dialect) => self.race(dialect, &address, hops).await,
                Procedure::V2 => self.v2_round(&address, hops).await,
            };
            let found = match round {
                Round::Found(found) => *found,
                Round::NotFound { why, hops } => return Ended::failed(address, hops, why),
                Round::TimedOut => {
                    let why = self.total_timeout_passed();
                    return Ended::failed(address, hops, why);
                }
            };
            match found {
                Found::Settings(landing) => {
                    return Ended {
                        address,
                        hops: landing.hops,
                        result: Ok(landing),
                    };
                }
                Found::RedirectAddr {
                    address: next,
                    step,
                    hops: at,
                } => {
                    let here = At {
                        address: &address,
                        step,
                    };
                    if let Err(why) = self.admit_address(here, &next, at, &seen) {
                        return Ended::failed(address, at, why);
                    }
                    hops = at + 1;
                    seen.push(next.lookup_key());
                    address = next;
                }
            }
        }
    }

    /// Whether a `redirectAddr` from `at` to `next` may be followed as redirection `hops + 1`;
    /// records why not.
    fn admit_address(
        &self,
        at: At<'_>,
        next: &EmailAddress,
        hops: usize,
        seen: &[String],
    ) -> Result<(), String> {
        let refusal = if next.lookup_key() == at.address.lookup_key() {
            Some(Failure::Loop {
                what: format!("the address {next} (a redirectAddr to itself)"),
            })
        } else if seen.contains(&next.lookup_key()) {
            Some(Failure::Loop {
                what: format!("the address {next}"),
            })
        } else if hops + 1 > MAX_REDIRECTIONS {
            Some(Failure::TooManyRedirections {
                limit: MAX_REDIRECTIONS,
                next: next.to_string(),
            })
        } else {
            policy::check_mail_domain(next.domain())
                .err()
                .map(|e| Failure::Refused {
                    url: next.to_string(),
                    why: e.to_string(),
                })
        };
        match refusal {
            None => Ok(()),
            Some(failure) => {
                let why = failure.to_string();
                self.record_failure(at, &format!("redirectAddr to {next}"), failure);
                Err(why)
            }
        }
    }

    /// `discovery`, or the end it comes to when the total timeout passes first.
    async fn within_total(&self, discovery: impl Future<Output = Ended>) -> Ended {
        match tokio::time::timeout(self.total_timeout, discovery).await {
            Ok(ended) => ended,
            Err(_) => Ended::failed(self.origin.clone(), 0, self.total_timeout_passed()),
        }
    }

    fn total_timeout_passed(&self) -> String {
        format!(
            "the total timeout of {} passed",
            seconds(self.total_timeout)
        )
    }

    /// The report, after the ActiveSync question when POX found settings.
    async fn finish(&self, ended: Ended) -> Report {
        let Ended {
            address,
            hops,
            result,
        } = ended;
        let (found, url, via, conclusion, settings) = match result {
            Ok(landing) => {
                let conclusion = self.found_at(&address, &landing);
                let mut settings = *landing.settings;
                if self.dialect == Dialect::Pox && self.client.config().ask_activesync {
                    let (url, trusted) = (&landing.url, landing.credentials_ok);
                    settings.activesync = self.activesync(&address, url, trusted).await;
                }
                let url = Some(landing.url.to_string());
                (true, url, Some(landing.step), conclusion, Some(settings))
            }
            Err(why) => {
                let conclusion = format!("no settings found for {}: {why}", self.origin);
                (false, None, None, conclusion, None)
            }
        };
        Report {
            address: self.origin.to_string(),
            dialect: self.dialect,
            found,
            final_address: address.to_string(),
            url,
            via,
            redirections: hops,
            conclusion,
            settings,
            elapsed_ms: self.ms(Instant::now()),
            trace: std::mem::take(&mut *self.trace.lock().expect("trace lock")),
        }
    }

    /// The conclusion when settings were found.
    fn found_at(&self, address: &EmailAddress, landing: &Landing) -> String {
        let (url, step, hops) = (&landing.url, landing.step.describe(), landing.hops);
        let redirections = redirections(hops);
        match self.dialect {
            Dialect::V2 => format!(
                "settings for {address} found through Autodiscover v2 ({step}) and the POX request to {url}{redirections}"
            ),
            _ => format!("settings for {address} found at {url} through {step}{redirections}"),
        }
    }

    /// Resolves when the total timeout has passed, not counting time spent on consent prompts.
    async fn total_expired(&self) {
        loop {
            let deadline =
                self.started + self.total_timeout + *self.paused.lock().expect("pause lock");
            let prompt_open = *self.prompt_open.lock().expect("prompt lock");
            let now = Instant::now();
            if now >= deadline && !prompt_open {
                return;
            }
            let wake = if prompt_open {
                now + Duration::from_millis(100)
            } else {
                deadline
            };
            tokio::time::sleep_until(wake).await;
        }
    }

    fn failed_before(&self, url: &Url) -> bool {
        self.failed_urls
            .lock()
            .expect("failed lock")
            .contains(url.as_str())
    }

    fn mark_failed(&self, url: &Url) {
        self.failed_urls
            .lock()
            .expect("failed lock")
            .insert(url.to_string());
    }
}

impl Ended {
    fn failed(address: EmailAddress, hops: usize, why: String) -> Self {
        Self {
            address,
            hops,
            result: Err(why),
        }
    }
}
