//! The discovery engine: Outlook's four candidates, started staggered and chosen by priority,
//! then redirects with consent, hop limit and loop detection.
//!
//! The SOAP dialect runs the same race with `/autodiscover/autodiscover.svc` and a
//! `GetUserSettings` body (the step-3 redirect gives only the host); the JSON and autoconfig
//! dialects are in [`other`].
//!
//! # Candidates ([MS-OXDISCO] 3.1.5, in Outlook's order)
//!
//! 1. POST `https://DOMAIN/autodiscover/autodiscover.xml` (3.1.5.2)
//! 2. POST `https://autodiscover.DOMAIN/autodiscover/autodiscover.xml` (3.1.5.2)
//! 3. GET `http://autodiscover.DOMAIN/autodiscover/autodiscover.xml`, unauthenticated; a 302 to
//!    an https URL is a candidate once the user consents (3.1.5.4)
//! 4. SRV `_autodiscover._tcp.DOMAIN`; the target is a candidate once the user consents (3.1.5.3;
//!    the consent is Outlook's behaviour, not a spec rule)
//!
//! # Faster than Outlook
//!
//! The specs allow the candidates in any order or in parallel. Each "lane" starts when the lanes
//! before it have gone [`RaceConfig::stagger`] without a connection, or at once when the lane
//! just before it failed, as Happy Eyeballs does (RFC 8305). The winner is chosen by priority
//! with one exception: a later lane that succeeds while an earlier one has not even completed
//! its TLS handshake wins. An earlier lane that is connected is waited for (up to its step
//! timeout), since its answer would win. A lane asks for consent only when no earlier lane is
//! connected or asking, so prompts come one at a time and in priority order.
//!
//! # The exchange ([MS-OXDSCLI] 3.1.5)
//!
//! Each POST carries an Outlook request with `Content-Type: text/xml; charset=utf-8`. Any status
//! but 200, or an `Error` inside a 200, fails the lane ([MS-OXDSCLI] 3.1.5.5). An HTTP redirect
//! in answer to a POST is followed with a new POST; `redirectUrl` likewise (https only, never a
//! URL that failed before); both count as redirections and need consent when they leave the
//! registrable domain of the host that sent them. `redirectAddr` restarts the whole discovery for
//! the new address. At most [`MAX_REDIRECTIONS`] in all.
//!
//! # Credentials
//!
//! HTTP Basic, only in answer to a 401 challenge, only over verified HTTPS, and only to hosts
//! trusted with them: the mail domain's own hosts of candidates 1 and 2, hosts the user
//! consented to, and hosts reached from a trusted host without leaving its registrable domain.
//! Never over plain HTTP (the GET of candidate 3 never carries them).

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autodisco_proto::mobilesync::{MobileSyncAction, MobileSyncRequest, MobileSyncServerType};
use autodisco_proto::soap::{SoapErrorCode, SoapResponseBody};
use autodisco_proto::{
    EmailAddress, ErrorCode, MobileSyncResponse, OutlookRequest, OutlookResponse, SoapRequest,
    SoapResponse,
};
use base64::Engine as _;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::{HeaderValue, Method, StatusCode, header};
use tokio::sync::watch;
use tokio::time::Instant;
use url::Url;

use crate::consent::{Consent, ConsentDecision, ConsentReason, ConsentRequest, normalise_host};
use crate::dialect::Dialect;
use crate::net::{Activity, ExchangeLog, HttpRequest, HttpResponse, Tracker};
use crate::policy;
use crate::report::{
    Failure, InFlight, Note, NoteKind, Observer, Outcome, Report, Step, TraceEntry,
};
use crate::settings::{ActiveSync, Settings};
use crate::{Client, MAX_REDIRECTIONS};

mod other;

/// The content type every request carries, exactly as Outlook sends it.
const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// The path of the POX AutoDiscover URL ([MS-OXDISCO] 3.1.5.2).
const POX_PATH: &str = "/autodiscover/autodiscover.xml";

/// The path of the SOAP Autodiscover service ([MS-OXWSADISC] 3.1).
const SOAP_PATH: &str = "/autodiscover/autodiscover.svc";

/// The SOAP action of `GetUserSettings`, which the EWS libraries send as `SOAPAction`.
const SOAP_ACTION: &str =
    "\"http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings\"";

/// The user settings the SOAP dialect asks for.
pub(crate) const SOAP_SETTINGS: &[&str] = &[
    "UserDisplayName",
    "AutoDiscoverSMTPAddress",
    "UserDN",
    "UserDeploymentId",
    "ExternalEwsUrl",
    "ExternalEcpUrl",
    "ExternalUMUrl",
    "ExternalOABUrl",
    "ExternalWebClientUrls",
    "ExternalMailboxServer",
    "ExternalImap4Connections",
    "ExternalPop3Connections",
    "ExternalSmtpConnections",
];

/// The four candidates, in Outlook's priority.
const LANES: [Step; 4] = [
    Step::Root,
    Step::AutodiscoverHost,
    Step::HttpRedirect,
    Step::Srv,
];

/// The parts of [`ClientConfig`](crate::ClientConfig) the race uses.
struct RaceConfig {
    stagger: Duration,
    step_timeout: Duration,
    total_timeout: Duration,
}

/// Where a lane stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LaneState {
    NotStarted,
    /// Running, without an established connection (resolving, connecting, TLS handshake,
    /// between requests).
    Working,
    /// Connected (TLS complete for https) and waiting for an answer.
    Connected,
    /// Waiting for its turn to ask consent, or for the answer.
    AwaitingConsent,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
struct Lane {
    state: LaneState,
    request: Option<String>,
    activity: Option<Activity>,
    since: Option<Instant>,
}

impl Default for Lane {
    fn default() -> Self {
        Self {
            state: LaneState::NotStarted,
            request: None,
            activity: None,
            since: None,
        }
    }
}

/// A lane's handle on the shared lane table.
#[derive(Clone, Copy)]
struct LaneHandle<'a> {
    lanes: &'a watch::Sender<Vec<Lane>>,
    index: usize,
}

impl LaneHandle<'_> {
    fn begin(&self, request: &str) {
        self.lanes.send_modify(|lanes| {
            let lane = &mut lanes[self.index];
            lane.state = LaneState::Working;
            lane.request = Some(request.to_owned());
            lane.activity = None;
            lane.since = Some(Instant::now());
        });
    }

    fn activity(&self, activity: &Activity) {
        self.lanes.send_modify(|lanes| {
            let lane = &mut lanes[self.index];
            lane.state = if activity.connected() {
                LaneState::Connected
            } else {
                LaneState::Working
            };
            lane.activity = Some(activity.clone());
        });
    }

    fn state(&self, state: LaneState) {
        self.lanes
            .send_modify(|lanes| lanes[self.index].state = state);
    }
}

/// What a lane found.
enum Found {
    Settings {
        settings: Box<Settings>,
        url: Url,
        step: Step,
        hops: usize,
        credentials_ok: bool,
    },
    RedirectAddr {
        address: EmailAddress,
        step: Step,
        hops: usize,
    },
}

enum RaceOutcome {
    Found(Box<Found>),
    NotFound,
    TimedOut,
}

enum Decision {
    Winner(usize),
    Wait,
    AllFailed,
}

/// What a POST gave, before interpretation.
struct Answer {
    response: HttpResponse,
    log: ExchangeLog,
    started: Instant,
    notes: Vec<Note>,
}

/// What an Outlook (or SOAP) POST gave, interpreted.
enum PostResult {
    Settings(Box<Settings>),
    RedirectAddr(EmailAddress),
    Follow(Url),
    Failed,
}

/// One discovery.
pub(crate) struct Run<'c> {
    client: &'c Client,
    dialect: Dialect,
    origin: EmailAddress,
    consent: Arc<dyn Consent>,
    observer: Option<Arc<dyn Observer>>,
    race: RaceConfig,
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
            race: RaceConfig {
                stagger: config.stagger,
                step_timeout: config.step_timeout,
                total_timeout: config.total_timeout,
            },
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
        match self.dialect {
            Dialect::Json => return self.execute_json().await,
            Dialect::Autoconfig => return self.execute_autoconfig().await,
            Dialect::Pox | Dialect::Soap => {}
        }
        let mut address = self.origin.clone();
        let mut hops = 0;
        let mut seen_addresses = vec![address.lookup_key()];
        let result: Result<Found, String> = loop {
            // The hosts of candidates 1 and 2 are trusted with credentials for the user's own
            // domain; after a redirectAddr, only if the new domain is under the same
            // registrable domain.
            let trusted = policy::same_registrable_domain(
                address.domain().as_str(),
                self.origin.domain().as_str(),
            );
            let outcome = self.race(&address, hops, trusted).await;
            match outcome {
                RaceOutcome::Found(found) if matches!(*found, Found::Settings { .. }) => {
                    break Ok(*found);
                }
                RaceOutcome::Found(found) => {
                    let Found::RedirectAddr {
                        address: next,
                        step,
                        hops: at,
                    } = *found
                    else {
                        unreachable!("settings are matched above");
                    };
                    let label = format!("redirectAddr to {next}");
                    let refuse = |failure: Failure| {
                        let text = failure.to_string();
                        self.record_failure(&address, step, &label, failure);
                        text
                    };
                    if next.lookup_key() == address.lookup_key() {
                        break Err(refuse(Failure::Loop {
                            what: format!("the address {next} (a redirectAddr to itself)"),
                        }));
                    }
                    if seen_addresses.contains(&next.lookup_key()) {
                        break Err(refuse(Failure::Loop {
                            what: format!("the address {next}"),
                        }));
                    }
                    if at + 1 > MAX_REDIRECTIONS {
                        break Err(refuse(Failure::TooManyRedirections {
                            limit: MAX_REDIRECTIONS,
                            next: next.to_string(),
                        }));
                    }
                    if let Err(e) = policy::check_mail_domain(next.domain()) {
                        break Err(refuse(Failure::Refused {
                            url: next.to_string(),
                            why: e.to_string(),
                        }));
                    }
                    hops = at + 1;
                    seen_addresses.push(next.lookup_key());
                    address = next;
                }
                RaceOutcome::NotFound => break Err(self.why_not_found(&address)),
                RaceOutcome::TimedOut => {
                    break Err(format!(
                        "the total timeout of {} passed",
                        seconds(self.race.total_timeout)
                    ));
                }
            }
        };
        if let Some(observer) = &self.observer {
            observer.in_flight(&[]);
        }
        match result {
            Ok(Found::Settings {
                settings,
                url,
                step,
                hops,
                credentials_ok,
            }) => {
                let mut found = *settings;
                if self.dialect == Dialect::Pox && self.client.config().ask_activesync {
                    found.activesync = self.activesync(&address, &url, credentials_ok).await;
                }
                let redirections = match hops {
                    0 => String::new(),
                    1 => " after 1 redirection".to_owned(),
                    n => format!(" after {n} redirections"),
                };
                let conclusion = format!(
                    "settings for {address} found at {url} through {}{redirections}",
                    step.describe()
                );
                self.report(
                    &address,
                    true,
                    Some(url.to_string()),
                    Some(step),
                    hops,
                    conclusion,
                    Some(found),
                )
            }
            Ok(Found::RedirectAddr { .. }) => unreachable!("redirectAddr restarts the loop"),
            Err(why) => {
                let conclusion = format!("no settings found for {}: {why}", self.origin);
                self.report(&address, false, None, None, hops, conclusion, None)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        address: &EmailAddress,
        found: bool,
        url: Option<String>,
        via: Option<Step>,
        redirections: usize,
        conclusion: String,
        settings: Option<Settings>,
    ) -> Report {
        Report {
            address: self.origin.to_string(),
            dialect: self.dialect,
            found,
            final_address: address.to_string(),
            url,
            via,
            redirections,
            conclusion,
            settings,
            elapsed_ms: self.ms(Instant::now()),
            trace: std::mem::take(&mut *self.trace.lock().expect("trace lock")),
        }
    }

    /// One sentence per candidate: its last failure for `address`.
    fn why_not_found(&self, address: &EmailAddress) -> String {
        let trace = self.trace.lock().expect("trace lock");
        let address = address.to_string();
        let parts: Vec<String> = LANES
            .iter()
            .filter_map(|step| {
                trace
                    .iter()
                    .rev()
                    .find(|e| e.step == *step && e.address == address)
                    .map(|e| format!("{} ({})", e.summary, step_short(*step)))
            })
            .collect();
        if parts.is_empty() {
            "no candidate answered".to_owned()
        } else {
            parts.join("; ")
        }
    }

    /// Runs the four candidates for `address`.
    async fn race(&self, address: &EmailAddress, hops: usize, trusted: bool) -> RaceOutcome {
        let (lanes_tx, mut lanes_rx) = watch::channel(vec![Lane::default(); LANES.len()]);
        let lanes_tx = &lanes_tx;
        type LaneFuture<'f> = Pin<Box<dyn Future<Output = (usize, Option<Found>)> + Send + 'f>>;
        let mut running: FuturesUnordered<LaneFuture<'_>> = FuturesUnordered::new();
        let mut results: Vec<Option<Found>> = (0..LANES.len()).map(|_| None).collect();
        let mut next = 0;
        let mut last_start = Instant::now();
        let mut reported: Vec<InFlight> = Vec::new();
        loop {
            let lanes = lanes_rx.borrow_and_update().clone();
            self.report_in_flight(&lanes, &mut reported);
            match decide(&lanes) {
                Decision::Winner(index) => {
                    self.abandon(address, &lanes, Some(index));
                    return RaceOutcome::Found(Box::new(
                        results[index].take().expect("a winner has a result"),
                    ));
                }
                Decision::AllFailed => return RaceOutcome::NotFound,
                Decision::Wait => {}
            }
            let start_at = start_time(&lanes, next, last_start, self.race.stagger);
            if let Some(at) = start_at
                && at <= Instant::now()
            {
                {
                    let index = next;
                    next += 1;
                    last_start = Instant::now();
                    let handle = LaneHandle {
                        lanes: lanes_tx,
                        index,
                    };
                    handle.begin(&format!("{} for {address}", LANES[index].describe()));
                    running.push(Box::pin(async move {
                        (index, self.run_lane(address, hops, trusted, handle).await)
                    }));
                    continue;
                }
            }
            tokio::select! {
                Some((index, found)) = running.next() => {
                    let state = if found.is_some() { LaneState::Succeeded } else { LaneState::Failed };
                    results[index] = found;
                    lanes_tx.send_modify(|lanes| {
                        lanes[index].state = state;
                        lanes[index].request = None;
                        lanes[index].activity = None;
                    });
                }
                Ok(()) = lanes_rx.changed() => {}
                () = sleep_until_or_forever(start_at) => {}
                () = self.total_expired() => {
                    self.abandon(address, &lanes_rx.borrow().clone(), None);
                    return RaceOutcome::TimedOut;
                }
            }
        }
    }

    /// Runs one candidate.
    async fn run_lane(
        &self,
        address: &EmailAddress,
        hops: usize,
        trusted: bool,
        lane: LaneHandle<'_>,
    ) -> Option<Found> {
        let step = LANES[lane.index];
        let domain = address.domain().as_str();
        match step {
            Step::Root => {
                let url = self.service_url(domain)?;
                self.post_chain(address, step, lane, url, trusted, hops)
                    .await
            }
            Step::AutodiscoverHost => {
                let url = self.service_url(&format!("autodiscover.{domain}"))?;
                self.post_chain(address, step, lane, url, trusted, hops)
                    .await
            }
            Step::HttpRedirect => self.http_redirect(address, hops, lane).await,
            Step::Srv => self.srv(address, hops, lane).await,
            _ => None,
        }
    }

    /// Candidate 3: the unauthenticated GET and, with consent, its target ([MS-OXDISCO] 3.1.5.4).
    async fn http_redirect(
        &self,
        address: &EmailAddress,
        hops: usize,
        lane: LaneHandle<'_>,
    ) -> Option<Found> {
        let step = Step::HttpRedirect;
        let url = Url::parse(&format!(
            "http://autodiscover.{}{POX_PATH}",
            address.domain()
        ))
        .ok()?;
        // No body, no credentials: this request travels in the clear.
        let request = HttpRequest {
            method: Method::GET,
            url: &url,
            body: None,
            headers: Vec::new(),
        };
        let label = format!("GET {url}");
        let (result, log, started) = self.timed_exchange(Some(lane), &request, &label).await;
        let response = match result {
            Ok(response) => response,
            Err(failure) => {
                self.record_exchange(
                    address,
                    step,
                    label,
                    started,
                    log,
                    None,
                    failed(failure),
                    Vec::new(),
                );
                return None;
            }
        };
        let status = response.status;
        let code = Some(status.as_u16());
        if !status.is_redirection() {
            let failure = if status == StatusCode::UNAUTHORIZED {
                Failure::Unauthorized {
                    why: "this is plain HTTP, over which credentials are never sent".to_owned(),
                }
            } else {
                Failure::NoRedirect {
                    detail: format!(
                        "HTTP status {} instead of a 302 to the AutoDiscover service",
                        status_words(status)
                    ),
                }
            };
            self.record_exchange(
                address,
                step,
                label,
                started,
                log,
                code,
                failed(failure),
                Vec::new(),
            );
            return None;
        }
        let mut notes = Vec::new();
        let Some(next) = location(&url, &response) else {
            let failure = Failure::NoRedirect {
                detail: format!("a {} without a usable Location", status.as_u16()),
            };
            self.record_exchange(
                address,
                step,
                label,
                started,
                log,
                code,
                failed(failure),
                notes,
            );
            return None;
        };
        if status != StatusCode::FOUND {
            notes.push(Note::new(
                NoteKind::Deviation,
                format!(
                    "[MS-OXDISCO] 3.1.5.4 expects a 302; this is a {}, followed as Outlook does",
                    status.as_u16()
                ),
            ));
        }
        if !next.path().eq_ignore_ascii_case(POX_PATH) {
            notes.push(Note::new(
                NoteKind::Warning,
                format!(
                    "the redirect points to {}, not to an autodiscover.xml URL",
                    next.path()
                ),
            ));
        }
        let outcome = Outcome::HttpRedirect {
            status: status.as_u16(),
            location: next.to_string(),
        };
        self.record_exchange(address, step, label, started, log, code, outcome, notes);
        // The EWS libraries use the redirect only for its host: the SOAP service is asked at
        // the .svc URL there.
        let mut next = next;
        if self.dialect == Dialect::Soap {
            next.set_path(SOAP_PATH);
            next.set_query(None);
        }
        if next.scheme() != "https" {
            self.record_failure(
                address,
                step,
                &format!("redirect to {next}"),
                Failure::Refused {
                    url: next.to_string(),
                    why: "it is not https: the AutoDiscover request would travel unencrypted"
                        .to_owned(),
                },
            );
            return None;
        }
        if !self.admissible(address, step, &next, hops + 1) {
            return None;
        }
        let reason = ConsentReason::HttpRedirect {
            from: url.to_string(),
            status: status.as_u16(),
        };
        if !self
            .ask_consent(address, step, Some(lane), &next, reason)
            .await
        {
            return None;
        }
        self.post_chain(address, step, lane, next, true, hops + 1)
            .await
    }

    /// Candidate 4: the SRV record and, with consent, its target ([MS-OXDISCO] 3.1.5.3).
    async fn srv(
        &self,
        address: &EmailAddress,
        hops: usize,
        lane: LaneHandle<'_>,
    ) -> Option<Found> {
        let step = Step::Srv;
        let name = format!("_autodiscover._tcp.{}", address.domain());
        let label = format!("SRV {name}");
        lane.begin(&label);
        lane.activity(&Activity::Resolving(name.clone()));
        let started = Instant::now();
        let result =
            match tokio::time::timeout(self.race.step_timeout, self.client.net.srv(&name)).await {
                Ok(result) => result,
                Err(_) => Err(Failure::Timeout {
                    after_ms: self.race.step_timeout.as_millis() as u64,
                    waiting_for: format!("the DNS answer for {name}"),
                }),
            };
        lane.state(LaneState::Working);
        let records = match result {
            Ok(records) => records,
            Err(failure) => {
                self.record_exchange(
                    address,
                    step,
                    label,
                    started,
                    ExchangeLog::default(),
                    None,
                    failed(failure),
                    Vec::new(),
                );
                return None;
            }
        };
        let mut notes = Vec::new();
        let mut usable: Vec<_> = Vec::new();
        for record in &records {
            if record.target.is_empty() || record.target == "." {
                notes.push(Note::new(
                    NoteKind::Info,
                    format!("{record}: the target \".\" means no service"),
                ));
            } else if record.port != 443 {
                notes.push(Note::new(
                    NoteKind::Info,
                    format!(
                        "{record}: ignored, Outlook and the EWS libraries use only records for port 443"
                    ),
                ));
            } else {
                usable.push(record.clone());
            }
        }
        // Lowest priority first, then the highest weight ([MS-OXDISCO] 3.1.5.3, RFC 2782).
        usable.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
        let dns: Vec<String> = records.iter().map(|r| format!("{name} SRV {r}")).collect();
        let log = ExchangeLog {
            dns,
            ..ExchangeLog::default()
        };
        let Some(best) = usable.first() else {
            let failure = Failure::NoUsableSrv {
                detail: format!("{} record(s), none for port 443", records.len()),
            };
            self.record_exchange(
                address,
                step,
                label,
                started,
                log,
                None,
                failed(failure),
                notes,
            );
            return None;
        };
        for other in &usable[1..] {
            notes.push(Note::new(
                NoteKind::Info,
                format!("{other}: not tried, only the best record is used"),
            ));
        }
        // The URL carries no port: the record's port is 443 ([MS-OXDISCO] 3.1.5.3).
        let Some(url) = self.service_url(&best.target) else {
            let failure = Failure::NoUsableSrv {
                detail: format!("the target {} is not a host name", best.target),
            };
            self.record_exchange(
                address,
                step,
                label,
                started,
                log,
                None,
                failed(failure),
                notes,
            );
            return None;
        };
        let outcome = Outcome::SrvTarget {
            url: url.to_string(),
        };
        self.record_exchange(address, step, label, started, log, None, outcome, notes);
        if !self.admissible(address, step, &url, hops) {
            return None;
        }
        let reason = ConsentReason::SrvRecord { name };
        if !self
            .ask_consent(address, step, Some(lane), &url, reason)
            .await
        {
            return None;
        }
        self.post_chain(address, step, lane, url, true, hops).await
    }

    /// POSTs to `url` and follows HTTP redirects and `redirectUrl`s from there.
    async fn post_chain(
        &self,
        address: &EmailAddress,
        step: Step,
        lane: LaneHandle<'_>,
        start: Url,
        credentials_ok: bool,
        hops: usize,
    ) -> Option<Found> {
        let mut url = start;
        let mut hops = hops;
        let mut credentials_ok = credentials_ok;
        let mut asked: Vec<String> = Vec::new();
        loop {
            if let Some(why) = policy::refuse_host(url.host_str().unwrap_or_default()) {
                self.record_failure(
                    address,
                    step,
                    &format!("POST {url}"),
                    Failure::Refused {
                        url: url.to_string(),
                        why,
                    },
                );
                return None;
            }
            asked.push(url.to_string());
            match self.post(address, step, lane, &url, credentials_ok).await {
                PostResult::Settings(settings) => {
                    return Some(Found::Settings {
                        settings,
                        url,
                        step,
                        hops,
                        credentials_ok,
                    });
                }
                PostResult::RedirectAddr(next) => {
                    return Some(Found::RedirectAddr {
                        address: next,
                        step,
                        hops,
                    });
                }
                PostResult::Failed => return None,
                PostResult::Follow(next) => {
                    let label = format!("redirect to {next}");
                    if next.scheme() != "https" {
                        self.record_failure(
                            address,
                            step,
                            &label,
                            Failure::Refused {
                                url: next.to_string(),
                                why: "it is not https".to_owned(),
                            },
                        );
                        return None;
                    }
                    if asked.contains(&next.to_string()) {
                        self.record_failure(
                            address,
                            step,
                            &label,
                            Failure::Loop {
                                what: next.to_string(),
                            },
                        );
                        return None;
                    }
                    if self.failed_before(&next) {
                        self.record_failure(
                            address,
                            step,
                            &label,
                            Failure::FailedBefore {
                                url: next.to_string(),
                            },
                        );
                        return None;
                    }
                    if !self.admissible(address, step, &next, hops + 1) {
                        return None;
                    }
                    let from = url.host_str().unwrap_or_default();
                    let to = next.host_str().unwrap_or_default();
                    if !policy::same_registrable_domain(from, to) {
                        let reason = ConsentReason::OtherDomain {
                            from: url.to_string(),
                        };
                        if !self
                            .ask_consent(address, step, Some(lane), &next, reason)
                            .await
                        {
                            return None;
                        }
                        credentials_ok = true;
                    }
                    hops += 1;
                    url = next;
                }
            }
        }
    }

    /// The service URL on `host` in this run's dialect.
    fn service_url(&self, host: &str) -> Option<Url> {
        match self.dialect {
            Dialect::Soap => soap_url(host),
            _ => pox_url(host),
        }
    }

    /// Whether `url` may be asked as the `hops`-th redirection; records why not.
    fn admissible(&self, address: &EmailAddress, step: Step, url: &Url, hops: usize) -> bool {
        let label = format!("redirect to {url}");
        if hops > MAX_REDIRECTIONS {
            self.record_failure(
                address,
                step,
                &label,
                Failure::TooManyRedirections {
                    limit: MAX_REDIRECTIONS,
                    next: url.to_string(),
                },
            );
            return false;
        }
        if let Some(why) = policy::refuse_host(url.host_str().unwrap_or_default()) {
            self.record_failure(
                address,
                step,
                &label,
                Failure::Refused {
                    url: url.to_string(),
                    why,
                },
            );
            return false;
        }
        true
    }

    /// One Outlook POST, interpreted.
    async fn post(
        &self,
        address: &EmailAddress,
        step: Step,
        lane: LaneHandle<'_>,
        url: &Url,
        credentials_ok: bool,
    ) -> PostResult {
        let body = match self.dialect {
            Dialect::Soap => {
                SoapRequest::get_user_settings(&address.to_string(), SOAP_SETTINGS).to_xml()
            }
            _ => OutlookRequest::for_address(address.clone()).to_xml(),
        };
        let Some(answer) = self
            .post_raw(address, step, Some(lane), url, body, credentials_ok)
            .await
        else {
            return PostResult::Failed;
        };
        let Answer {
            response,
            log,
            started,
            mut notes,
        } = answer;
        let label = format!("POST {url}");
        let status = response.status;
        let code = Some(status.as_u16());
        if status.is_redirection() {
            // A redirect answering the POST: POST again to its https Location.
            let Some(next) = location(url, &response) else {
                let failure = Failure::Status {
                    status: status.as_u16(),
                    reason: Some("without a usable Location".to_owned()),
                };
                self.mark_failed(url);
                self.record_exchange(
                    address,
                    step,
                    label,
                    started,
                    log,
                    code,
                    failed(failure),
                    notes,
                );
                return PostResult::Failed;
            };
            if status != StatusCode::FOUND {
                notes.push(Note::new(
                    NoteKind::Deviation,
                    format!(
                        "a {} answering the POST; a 302 is what Exchange sends, followed with a new POST all the same",
                        status.as_u16()
                    ),
                ));
            }
            let outcome = Outcome::HttpRedirect {
                status: status.as_u16(),
                location: next.to_string(),
            };
            self.record_exchange(address, step, label, started, log, code, outcome, notes);
            return PostResult::Follow(next);
        }
        if status != StatusCode::OK {
            // Any status but 200 moves on ([MS-OXDSCLI] 3.1.5.5).
            self.mark_failed(url);
            let failure = Failure::Status {
                status: status.as_u16(),
                reason: status.canonical_reason().map(str::to_owned),
            };
            self.record_exchange(
                address,
                step,
                label,
                started,
                log,
                code,
                failed(failure),
                notes,
            );
            return PostResult::Failed;
        }
        content_type_note(&response, &mut notes);
        if self.dialect == Dialect::Soap {
            return self.interpret_soap(
                address,
                step,
                url,
                label,
                (started, log, code),
                &response,
                notes,
            );
        }
        match OutlookResponse::from_xml(&response.body) {
            Ok(OutlookResponse::Settings(settings)) => {
                self.record_exchange(
                    address,
                    step,
                    label,
                    started,
                    log,
                    code,
                    Outcome::Settings,
                    notes,
                );
                PostResult::Settings(Box::new(Settings::from_outlook(&settings)))
            }
            Ok(OutlookResponse::RedirectAddr(next)) => {
                let outcome = Outcome::RedirectAddr {
                    address: next.to_string(),
                };
                self.record_exchange(address, step, label, started, log, code, outcome, notes);
                PostResult::RedirectAddr(next)
            }
            Ok(OutlookResponse::RedirectUrl(next)) => match Url::parse(next.trim()) {
                Ok(next_url) => {
                    let outcome = Outcome::RedirectUrl {
                        url: next_url.to_string(),
                    };
                    self.record_exchange(address, step, label, started, log, code, outcome, notes);
                    PostResult::Follow(next_url)
                }
                Err(_) => {
                    self.mark_failed(url);
                    let failure = Failure::Refused {
                        url: next,
                        why: "the redirectUrl is not a URL".to_owned(),
                    };
                    self.record_exchange(
                        address,
                        step,
                        label,
                        started,
                        log,
                        code,
                        failed(failure),
                        notes,
                    );
                    PostResult::Failed
                }
            },
            Ok(OutlookResponse::Error(error)) => {
                // A POX error inside a 200 moves on as well ([MS-OXDSCLI] 3.1.5.5).
                self.mark_failed(url);
                let failure = Failure::AutodiscoverError {
                    code: error.code.number(),
                    message: if error.message.is_empty() {
                        error.code.message().to_owned()
                    } else {
                        error.message.clone()
                    },
                };
                self.record_exchange(
                    address,
                    step,
                    label,
                    started,
                    log,
                    code,
                    failed(failure),
                    notes,
                );
                PostResult::Failed
            }
            Err(error) => {
                self.mark_failed(url);
                let failure = Failure::Decode {
                    detail: error.to_string(),
                };
                self.record_exchange(
                    address,
                    step,
                    label,
                    started,
                    log,
                    code,
                    failed(failure),
                    notes,
                );
                PostResult::Failed
            }
        }
    }

    /// A 200 answering a SOAP `GetUserSettings` request, interpreted for the first user.
    #[allow(clippy::too_many_arguments)]
    fn interpret_soap(
        &self,
        address: &EmailAddress,
        step: Step,
        url: &Url,
        label: String,
        (started, log, code): (Instant, ExchangeLog, Option<u16>),
        response: &HttpResponse,
        notes: Vec<Note>,
    ) -> PostResult {
        match soap_result(&response.body) {
            Ok((outcome, result)) => {
                self.record_exchange(address, step, label, started, log, code, outcome, notes);
                result
            }
            Err(failure) => {
                self.mark_failed(url);
                self.record_exchange(
                    address,
                    step,
                    label,
                    started,
                    log,
                    code,
                    failed(failure),
                    notes,
                );
                PostResult::Failed
            }
        }
    }

    /// POSTs `body`, answering one Basic challenge when credentials may go to this host.
    /// `None` when the request failed (recorded, and the URL marked failed).
    async fn post_raw(
        &self,
        address: &EmailAddress,
        step: Step,
        lane: Option<LaneHandle<'_>>,
        url: &Url,
        body: String,
        credentials_ok: bool,
    ) -> Option<Answer> {
        let label = format!("POST {url}");
        let body = bytes::Bytes::from(body);
        let mut authorization: Option<HeaderValue> = None;
        loop {
            let mut headers = vec![(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))];
            if self.dialect == Dialect::Soap && step != Step::ActiveSync {
                headers.push((
                    header::HeaderName::from_static("soapaction"),
                    HeaderValue::from_static(SOAP_ACTION),
                ));
            } else {
                // Outlook announces MAPI over HTTP so that servers offering it say so.
                headers.push((
                    header::HeaderName::from_static("x-mapihttpcapability"),
                    HeaderValue::from_static("1"),
                ));
            }
            if let Some(value) = &authorization {
                headers.push((header::AUTHORIZATION, value.clone()));
            }
            let request = HttpRequest {
                method: Method::POST,
                url,
                body: Some(body.clone()),
                headers,
            };
            let (result, log, started) = self.timed_exchange(lane, &request, &label).await;
            let mut notes = Vec::new();
            if authorization.is_some() {
                notes.push(Note::new(
                    NoteKind::Info,
                    format!(
                        "sent with HTTP Basic credentials for {}",
                        self.client
                            .config()
                            .credentials
                            .as_ref()
                            .map_or("", |c| c.user.as_str())
                    ),
                ));
            }
            let response = match result {
                Ok(response) => response,
                Err(failure) => {
                    self.mark_failed(url);
                    self.record_exchange(
                        address,
                        step,
                        label,
                        started,
                        log,
                        None,
                        failed(failure),
                        notes,
                    );
                    return None;
                }
            };
            if response.status != StatusCode::UNAUTHORIZED {
                return Some(Answer {
                    response,
                    log,
                    started,
                    notes,
                });
            }
            let code = Some(401);
            if authorization.is_some() {
                self.mark_failed(url);
                let failure = Failure::Unauthorized {
                    why: "the credentials were refused".to_owned(),
                };
                self.record_exchange(
                    address,
                    step,
                    label,
                    started,
                    log,
                    code,
                    failed(failure),
                    notes,
                );
                return None;
            }
            match self.credentials_for(url, credentials_ok, &response) {
                Ok((value, why)) => {
                    notes.push(Note::new(NoteKind::Info, why));
                    self.record_exchange(
                        address,
                        step,
                        label.clone(),
                        started,
                        log,
                        code,
                        Outcome::Challenge,
                        notes,
                    );
                    authorization = Some(value);
                }
                Err(why) => {
                    self.mark_failed(url);
                    let failure = Failure::Unauthorized { why };
                    self.record_exchange(
                        address,
                        step,
                        label,
                        started,
                        log,
                        code,
                        failed(failure),
                        notes,
                    );
                    return None;
                }
            }
        }
    }

    /// The Authorization header for a 401 from `url`, or why credentials are not sent there.
    fn credentials_for(
        &self,
        url: &Url,
        credentials_ok: bool,
        response: &HttpResponse,
    ) -> Result<(HeaderValue, String), String> {
        let host = url.host_str().unwrap_or_default();
        let Some(credentials) = &self.client.config().credentials else {
            return Err("no credentials were given".to_owned());
        };
        if url.scheme() != "https" {
            return Err("credentials are never sent over plain HTTP".to_owned());
        }
        if !credentials_ok {
            return Err(format!(
                "credentials are not sent to {host}: it is neither the mail domain's own AutoDiscover host nor a host the user allowed"
            ));
        }
        let schemes: Vec<String> = response
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        if !schemes.iter().any(|s| s.eq_ignore_ascii_case("basic")) {
            return Err(format!(
                "the server offers {} and the probe answers only HTTP Basic",
                if schemes.is_empty() {
                    "no authentication scheme".to_owned()
                } else {
                    schemes.join(", ")
                }
            ));
        }
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.user, credentials.password));
        let mut value = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| "the credentials cannot be put in a header".to_owned())?;
        value.set_sensitive(true);
        Ok((
            value,
            format!("credentials may go to {host}: verified HTTPS to a trusted host"),
        ))
    }

    /// Asks for the ActiveSync endpoint at the URL that gave the settings ([MS-ASCMD] 2.2.1.1).
    async fn activesync(
        &self,
        address: &EmailAddress,
        url: &Url,
        credentials_ok: bool,
    ) -> ActiveSync {
        let step = Step::ActiveSync;
        let body = MobileSyncRequest {
            email_address: address.clone(),
        }
        .to_xml();
        if let Some(observer) = &self.observer {
            observer.in_flight(&[InFlight {
                step,
                request: format!("POST {url} (ActiveSync)"),
                waiting_for: "the ActiveSync answer".to_owned(),
                since_ms: self.ms(Instant::now()),
            }]);
        }
        let answer = self
            .post_raw(address, step, None, url, body, credentials_ok)
            .await;
        if let Some(observer) = &self.observer {
            observer.in_flight(&[]);
        }
        let Some(Answer {
            response,
            log,
            started,
            notes,
        }) = answer
        else {
            let why = self
                .trace
                .lock()
                .expect("trace lock")
                .last()
                .map(|e| e.summary.clone())
                .unwrap_or_default();
            return ActiveSync::NotOffered { why };
        };
        let label = format!("POST {url} (ActiveSync)");
        let code = Some(response.status.as_u16());
        let result = if response.status != StatusCode::OK {
            ActiveSync::NotOffered {
                why: format!("HTTP status {}", status_words(response.status)),
            }
        } else {
            match MobileSyncResponse::from_xml(&response.body) {
                Ok(MobileSyncResponse::Action { action, .. }) => match action {
                    MobileSyncAction::Settings(servers) => servers
                        .iter()
                        .find(|s| s.server_type == MobileSyncServerType::MobileSync)
                        .map(|s| ActiveSync::Offered { url: s.url.clone() })
                        .unwrap_or(ActiveSync::NotOffered {
                            why: "the answer lists no MobileSync server".to_owned(),
                        }),
                    MobileSyncAction::Redirect(to) => ActiveSync::RedirectAddr {
                        address: to.to_string(),
                    },
                    MobileSyncAction::Error(error) => ActiveSync::NotOffered {
                        why: format!(
                            "ActiveSync error {}",
                            error.status.or(error.error_code).unwrap_or_default()
                        ),
                    },
                },
                Ok(MobileSyncResponse::Error(error)) => ActiveSync::NotOffered {
                    why: match error.code {
                        ErrorCode::ProviderUnavailable => {
                            "no ActiveSync service (AutoDiscover error 601)".to_owned()
                        }
                        code => format!("AutoDiscover error {code}"),
                    },
                },
                Err(error) => ActiveSync::NotOffered {
                    why: format!("the answer is not a mobilesync response: {error}"),
                },
            }
        };
        let mut entry = self.entry(
            address,
            step,
            label,
            started,
            log,
            code,
            Outcome::ActiveSync,
            notes,
        );
        entry.summary = match &result {
            ActiveSync::Offered { url } => format!("ActiveSync at {url}"),
            ActiveSync::RedirectAddr { address } => {
                format!("ActiveSync redirects to {address} (not followed)")
            }
            ActiveSync::NotOffered { why } => format!("no ActiveSync: {why}"),
            ActiveSync::NotAsked => "not asked".to_owned(),
        };
        self.record(entry);
        result
    }

    /// Asks (or recalls) the user's consent for `url`. Waits until no earlier lane is connected
    /// or asking, so prompts come in priority order and only when they may matter.
    async fn ask_consent(
        &self,
        address: &EmailAddress,
        step: Step,
        lane: Option<LaneHandle<'_>>,
        url: &Url,
        reason: ConsentReason,
    ) -> bool {
        let host = normalise_host(url.host_str().unwrap_or_default());
        let label = format!("consent for {url}");
        if let Some(lane) = lane {
            lane.begin(&label);
            lane.state(LaneState::AwaitingConsent);
            let mut rx = lane.lanes.subscribe();
            let _ = rx.wait_for(|lanes| gate_open(lanes, lane.index)).await;
        }
        let _turn = self.consent_gate.lock().await;
        let started = Instant::now();
        let remembered = self
            .decisions
            .lock()
            .expect("decisions lock")
            .get(&host)
            .cloned();
        let (decision, remembered) = match remembered {
            Some(decision) => (decision, true),
            None => {
                let request = ConsentRequest {
                    address: address.to_string(),
                    url: url.to_string(),
                    host: host.clone(),
                    reason: reason.clone(),
                };
                let consent = self.consent.clone();
                // Reset even when this lane is abandoned while the prompt is open.
                let open = PromptOpen::new(&self.prompt_open);
                let decision = tokio::task::spawn_blocking(move || consent.decide(&request))
                    .await
                    .unwrap_or(ConsentDecision::Deny {
                        why: "the consent prompt failed".to_owned(),
                    });
                drop(open);
                *self.paused.lock().expect("pause lock") += started.elapsed();
                self.decisions
                    .lock()
                    .expect("decisions lock")
                    .insert(host.clone(), decision.clone());
                (decision, false)
            }
        };
        let mut notes = Vec::new();
        if matches!(reason, ConsentReason::SrvRecord { .. }) {
            notes.push(Note::new(
                NoteKind::Info,
                "Outlook asks before using an SRV target; [MS-OXDISCO] 3.1.5.3 does not require it",
            ));
        }
        let (allowed, detail) = match &decision {
            ConsentDecision::Allow { how } => (true, how.clone()),
            ConsentDecision::Deny { why } => (false, why.clone()),
        };
        let remembered_text = if remembered {
            ", as decided earlier in this discovery"
        } else {
            ""
        };
        let summary = if allowed {
            format!(
                "allowed for {} ({detail}{remembered_text}), reached by {reason}",
                address
            )
        } else {
            format!("refused: {url} is not followed without consent ({detail}{remembered_text})")
        };
        let outcome = Outcome::Consent { allowed, detail };
        let mut entry = self.entry(
            address,
            step,
            label,
            started,
            ExchangeLog::default(),
            None,
            outcome,
            notes,
        );
        entry.summary = summary;
        self.record(entry);
        if let Some(lane) = lane {
            lane.state(LaneState::Working);
        }
        allowed
    }

    /// One exchange under the step timeout; the lane sees each activity as it happens.
    async fn timed_exchange(
        &self,
        lane: Option<LaneHandle<'_>>,
        request: &HttpRequest<'_>,
        label: &str,
    ) -> (Result<HttpResponse, Failure>, ExchangeLog, Instant) {
        if let Some(lane) = lane {
            lane.begin(label);
        }
        let log = Mutex::new(ExchangeLog::default());
        let on_activity = |activity: &Activity| {
            if let Some(lane) = lane {
                lane.activity(activity);
            }
        };
        let tracker = Tracker {
            log: &log,
            on_activity: &on_activity,
        };
        let started = Instant::now();
        let result = match tokio::time::timeout(
            self.race.step_timeout,
            self.client.net.exchange(request, &tracker),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout {
                after_ms: self.race.step_timeout.as_millis() as u64,
                waiting_for: log
                    .lock()
                    .ok()
                    .and_then(|l| l.activity.as_ref().map(Activity::describe))
                    .unwrap_or_else(|| "an answer".to_owned()),
            }),
        };
        if let Some(lane) = lane {
            lane.state(LaneState::Working);
        }
        (result, log.into_inner().unwrap_or_default(), started)
    }

    /// Records trace entries for the lanes still running when the race ended.
    fn abandon(&self, address: &EmailAddress, lanes: &[Lane], winner: Option<usize>) {
        for (index, lane) in lanes.iter().enumerate() {
            if Some(index) == winner
                || !matches!(
                    lane.state,
                    LaneState::Working | LaneState::Connected | LaneState::AwaitingConsent
                )
            {
                continue;
            }
            let waiting_for = match (&lane.activity, lane.state) {
                (_, LaneState::AwaitingConsent) => {
                    "the user's consent, or its turn to ask".to_owned()
                }
                (Some(activity), _) => activity.describe(),
                (None, _) => "its next step".to_owned(),
            };
            let reason = match winner {
                Some(winner) => format!(
                    "not needed: {} answered first while this was still waiting for {waiting_for}",
                    LANES[winner].describe()
                ),
                None => format!(
                    "the total timeout of {} passed while this was waiting for {waiting_for}",
                    seconds(self.race.total_timeout)
                ),
            };
            let started = lane.since.unwrap_or_else(Instant::now);
            let request = lane
                .request
                .clone()
                .unwrap_or_else(|| LANES[index].describe().to_owned());
            let entry = self.entry(
                address,
                LANES[index],
                request,
                started,
                ExchangeLog::default(),
                None,
                Outcome::Abandoned { reason },
                Vec::new(),
            );
            self.record(entry);
        }
    }

    /// Tells the observer about the requests in flight, when they changed.
    fn report_in_flight(&self, lanes: &[Lane], reported: &mut Vec<InFlight>) {
        let Some(observer) = &self.observer else {
            return;
        };
        let now: Vec<InFlight> = lanes
            .iter()
            .enumerate()
            .filter(|(_, lane)| {
                matches!(
                    lane.state,
                    LaneState::Working | LaneState::Connected | LaneState::AwaitingConsent
                )
            })
            .filter_map(|(index, lane)| {
                Some(InFlight {
                    step: LANES[index],
                    request: lane.request.clone()?,
                    waiting_for: match (lane.state, &lane.activity) {
                        (LaneState::AwaitingConsent, _) => "consent".to_owned(),
                        (_, Some(activity)) => activity.describe(),
                        (_, None) => "starting".to_owned(),
                    },
                    since_ms: self.ms(lane.since.unwrap_or(self.started)),
                })
            })
            .collect();
        if &now != reported {
            observer.in_flight(&now);
            *reported = now;
        }
    }

    /// Resolves when the total timeout has passed, not counting time spent on consent prompts.
    async fn total_expired(&self) {
        loop {
            let deadline =
                self.started + self.race.total_timeout + *self.paused.lock().expect("pause lock");
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

    fn ms(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.started).as_millis() as u64
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &self,
        address: &EmailAddress,
        step: Step,
        request: String,
        started: Instant,
        log: ExchangeLog,
        status: Option<u16>,
        outcome: Outcome,
        notes: Vec<Note>,
    ) -> TraceEntry {
        let summary = summarise(&outcome);
        TraceEntry {
            address: address.to_string(),
            step,
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

    #[allow(clippy::too_many_arguments)]
    fn record_exchange(
        &self,
        address: &EmailAddress,
        step: Step,
        request: String,
        started: Instant,
        log: ExchangeLog,
        status: Option<u16>,
        outcome: Outcome,
        notes: Vec<Note>,
    ) {
        let entry = self.entry(address, step, request, started, log, status, outcome, notes);
        self.record(entry);
    }

    fn record_failure(&self, address: &EmailAddress, step: Step, request: &str, failure: Failure) {
        self.record_exchange(
            address,
            step,
            request.to_owned(),
            Instant::now(),
            ExchangeLog::default(),
            None,
            failed(failure),
            Vec::new(),
        );
    }

    fn record(&self, entry: TraceEntry) {
        tracing::debug!(step = ?entry.step, request = %entry.request, summary = %entry.summary, "probe");
        if let Some(observer) = &self.observer {
            observer.entry(&entry);
        }
        self.trace.lock().expect("trace lock").push(entry);
    }
}

/// Marks a consent prompt as open (the total timeout waits) until dropped.
struct PromptOpen<'a>(&'a Mutex<bool>);

impl<'a> PromptOpen<'a> {
    fn new(flag: &'a Mutex<bool>) -> Self {
        *flag.lock().expect("prompt lock") = true;
        Self(flag)
    }
}

impl Drop for PromptOpen<'_> {
    fn drop(&mut self) {
        if let Ok(mut open) = self.0.lock() {
            *open = false;
        }
    }
}

/// The winner, if one can be chosen now.
fn decide(lanes: &[Lane]) -> Decision {
    for (index, lane) in lanes.iter().enumerate() {
        match lane.state {
            LaneState::Failed => {}
            LaneState::Succeeded => return Decision::Winner(index),
            // Its answer would win: wait for it.
            LaneState::Connected | LaneState::NotStarted => return Decision::Wait,
            // Not even connected: a later success may overtake it.
            LaneState::Working | LaneState::AwaitingConsent => {}
        }
    }
    if lanes.iter().all(|lane| lane.state == LaneState::Failed) {
        Decision::AllFailed
    } else {
        Decision::Wait
    }
}

/// When the next lane may start: now if the lane before it failed, after the stagger delay if
/// the started ones are still unconnected, never while one of them is connected or has won.
fn start_time(
    lanes: &[Lane],
    next: usize,
    last_start: Instant,
    stagger: Duration,
) -> Option<Instant> {
    if next >= lanes.len() {
        return None;
    }
    let started = &lanes[..next];
    if started
        .iter()
        .any(|lane| matches!(lane.state, LaneState::Connected | LaneState::Succeeded))
    {
        return None;
    }
    match started.last() {
        None => Some(Instant::now()),
        Some(lane) if lane.state == LaneState::Failed => Some(Instant::now()),
        Some(_) => Some(last_start + stagger),
    }
}

/// Whether lane `index` may ask for consent: every earlier lane has failed or is still without
/// a connection (and not asking itself).
fn gate_open(lanes: &[Lane], index: usize) -> bool {
    lanes[..index]
        .iter()
        .all(|lane| matches!(lane.state, LaneState::Failed | LaneState::Working))
}

async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn pox_url(host: &str) -> Option<Url> {
    Url::parse(&format!("https://{host}{POX_PATH}")).ok()
}

fn soap_url(host: &str) -> Option<Url> {
    Url::parse(&format!("https://{host}{SOAP_PATH}")).ok()
}

/// The outcome of a SOAP `GetUserSettings` answer for its first user.
fn soap_result(body: &[u8]) -> Result<(Outcome, PostResult), Failure> {
    let decode = |detail: String| Failure::Decode { detail };
    let body = match SoapResponse::from_xml(body).map_err(|e| decode(e.to_string()))? {
        SoapResponse {
            body: SoapResponseBody::GetUserSettings(body),
            ..
        } => body,
        SoapResponse {
            body: SoapResponseBody::Fault(fault),
            ..
        } => return Err(decode(format!("a SOAP fault: {}", fault.reason))),
        _ => return Err(decode("not a GetUserSettings response".to_owned())),
    };
    let soap_error = |code: &SoapErrorCode, message: &str| Failure::AutodiscoverError {
        code: 0,
        message: format!(
            "{}: {}",
            code.as_str(),
            if message.is_empty() {
                code.message()
            } else {
                message
            }
        ),
    };
    if body.error_code != SoapErrorCode::NoError {
        return Err(soap_error(&body.error_code, &body.error_message));
    }
    let user = body
        .user_responses
        .first()
        .ok_or_else(|| decode("the response has no UserResponse".to_owned()))?;
    let target = user.redirect_target.as_deref().unwrap_or("").trim();
    match &user.error_code {
        SoapErrorCode::NoError => Ok((
            Outcome::Settings,
            PostResult::Settings(Box::new(Settings::from_soap(user))),
        )),
        SoapErrorCode::RedirectAddress => {
            let next = EmailAddress::parse(target).map_err(|_| Failure::Refused {
                url: target.to_owned(),
                why: "the RedirectAddress target is not an address".to_owned(),
            })?;
            Ok((
                Outcome::RedirectAddr {
                    address: next.to_string(),
                },
                PostResult::RedirectAddr(next),
            ))
        }
        SoapErrorCode::RedirectUrl => {
            let next = Url::parse(target).map_err(|_| Failure::Refused {
                url: target.to_owned(),
                why: "the RedirectUrl target is not a URL".to_owned(),
            })?;
            Ok((
                Outcome::RedirectUrl {
                    url: next.to_string(),
                },
                PostResult::Follow(next),
            ))
        }
        other => Err(soap_error(other, &user.error_message)),
    }
}

/// The Location of a redirect, resolved against the request URL.
fn location(base: &Url, response: &HttpResponse) -> Option<Url> {
    let value = response.headers.get(header::LOCATION)?.to_str().ok()?;
    base.join(value.trim()).ok()
}

fn content_type_note(response: &HttpResponse, notes: &mut Vec<Note>) {
    let content_type = response
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("text/xml") && !essence.eq_ignore_ascii_case("application/xml")
    {
        notes.push(Note::new(
            NoteKind::Deviation,
            format!(
                "the answer's Content-Type is {:?}, not text/xml",
                if content_type.is_empty() {
                    "(none)"
                } else {
                    content_type
                }
            ),
        ));
    }
}

fn failed(failure: Failure) -> Outcome {
    Outcome::Failed { failure }
}

fn status_words(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
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

fn step_short(step: Step) -> &'static str {
    match step {
        Step::Root => "step 1",
        Step::AutodiscoverHost => "step 2",
        Step::HttpRedirect => "step 3",
        Step::Srv => "step 4",
        other => other.label(),
    }
}

fn seconds(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(states: &[LaneState]) -> Vec<Lane> {
        states
            .iter()
            .map(|&state| Lane {
                state,
                ..Lane::default()
            })
            .collect()
    }

    use LaneState::*;

    #[test]
    fn priority_with_the_unconnected_exception() {
        // An earlier success wins.
        assert!(matches!(
            decide(&lanes(&[Succeeded, Succeeded, NotStarted, NotStarted])),
            Decision::Winner(0)
        ));
        // A later success overtakes an earlier lane that has not connected...
        assert!(matches!(
            decide(&lanes(&[Working, Failed, Succeeded, NotStarted])),
            Decision::Winner(2)
        ));
        assert!(matches!(
            decide(&lanes(&[
                AwaitingConsent,
                Succeeded,
                NotStarted,
                NotStarted
            ])),
            Decision::Winner(1)
        ));
        // ...but not a connected one, whose answer would win.
        assert!(matches!(
            decide(&lanes(&[Connected, Failed, Succeeded, NotStarted])),
            Decision::Wait
        ));
        assert!(matches!(
            decide(&lanes(&[Failed, Failed, Failed, Failed])),
            Decision::AllFailed
        ));
        assert!(matches!(
            decide(&lanes(&[Failed, Working, NotStarted, NotStarted])),
            Decision::Wait
        ));
    }

    #[test]
    fn staggered_start() {
        let stagger = Duration::from_millis(250);
        let last = Instant::now();
        let at = |states: &[LaneState], next| start_time(&lanes(states), next, last, stagger);
        assert!(at(&[NotStarted; 4], 0).unwrap() <= Instant::now());
        // Still connecting: the next one starts after the stagger delay.
        assert_eq!(
            at(&[Working, NotStarted, NotStarted, NotStarted], 1),
            Some(last + stagger)
        );
        // The previous one failed: start now.
        assert!(at(&[Working, Failed, NotStarted, NotStarted], 2).unwrap() <= Instant::now());
        // A connected one is waited for.
        assert_eq!(
            at(&[Connected, NotStarted, NotStarted, NotStarted], 1),
            None
        );
        assert_eq!(at(&[Failed, Failed, Failed, Failed], 4), None);
    }

    #[test]
    fn consent_waits_for_earlier_lanes() {
        assert!(gate_open(&lanes(&[Failed, Working, AwaitingConsent]), 2));
        assert!(!gate_open(&lanes(&[Failed, Connected, AwaitingConsent]), 2));
        assert!(!gate_open(
            &lanes(&[AwaitingConsent, Working, AwaitingConsent]),
            2
        ));
        assert!(!gate_open(&lanes(&[Succeeded, Failed, AwaitingConsent]), 2));
    }
}
