//! The one redirect-and-consent follower, for GET and POST alike, and the rules for credentials.
//!
//! A chain starts at a URL and follows HTTP redirects (and, for POST, `redirectUrl`s): each
//! counts against [`MAX_REDIRECTIONS`], never goes back to a URL asked in the chain or one that
//! failed earlier in the discovery ([MS-OXDSCLI] 3.1.5), and needs the user's consent when it
//! leaves the registrable domain of the host that sent it. A POST is only ever redirected to
//! https; a GET may go from http to https but never back.
//!
//! # Credentials
//!
//! HTTP Basic, only in answer to a 401 challenge, only over verified HTTPS, only in a POST, and
//! only to hosts trusted with them: the mail domain's own hosts (after a `redirectAddr` only when
//! the new domain is under the original address's registrable domain), hosts the user consented
//! to, and hosts reached from a trusted host without leaving its registrable domain. Never over
//! plain HTTP, and never in a GET (v2's and autoconfig's questions need none, and the GET of
//! candidate 3 travels in the clear).

use std::sync::Mutex;

use autodisco_proto::EmailAddress;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderValue, Method, StatusCode};
use tokio::time::Instant;
use url::Url;

use super::lanes::{LaneHandle, LaneState};
use super::trace::{At, Exchanged, failed};
use super::{Found, Landing, Run};
use crate::MAX_REDIRECTIONS;
use crate::consent::ConsentReason;
use crate::net::{Activity, ExchangeLog, HttpRequest, HttpResponse, Tracker};
use crate::policy;
use crate::report::{Failure, Note, NoteKind, Outcome};
use crate::settings::Settings;

/// The content type every POST carries, exactly as Outlook sends it.
const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// What a dialect that POSTs (POX, SOAP) brings to the follower.
pub(super) trait PostDialect: Sync {
    /// The service URL on `host`.
    fn service_url(&self, host: &str) -> Option<Url>;
    /// The request body asking for `address`.
    fn body(&self, address: &EmailAddress) -> String;
    /// The header that tells the server which kind of client asks.
    fn announce(&self) -> (HeaderName, HeaderValue);
    /// A 200's body, read: the trace outcome and where it leads, or why it is no answer.
    fn interpret(&self, body: &[u8]) -> Result<(Outcome, Next), Failure>;
    /// Where the redirect of candidate 3 sends this dialect.
    fn redirect_target(&self, location: Url) -> Url {
        location
    }
}

/// Where a POST's answer leads.
pub(super) enum Next {
    Settings(Box<Settings>),
    RedirectAddr(EmailAddress),
    /// A `redirectUrl`: POST again there.
    Follow(Url),
}

/// Where a chain stands: the address and step it is for, the lane it runs in (none outside
/// the race), the redirections so far, and whether the current host may get credentials.
#[derive(Clone, Copy)]
pub(super) struct Chain<'a> {
    pub(super) at: At<'a>,
    pub(super) lane: Option<LaneHandle<'a>>,
    pub(super) hops: usize,
    pub(super) credentials_ok: bool,
}

/// The request a chain repeats at each URL.
#[derive(Clone, Copy)]
enum Verb<'d> {
    Get,
    Post(&'d dyn PostDialect),
}

/// A POST's body and its headers besides `Authorization`.
pub(super) struct Outgoing {
    body: Bytes,
    announce: (HeaderName, HeaderValue),
}

impl Outgoing {
    pub(super) fn new(body: String, announce: (HeaderName, HeaderValue)) -> Self {
        Self {
            body: Bytes::from(body),
            announce,
        }
    }
}

/// An answer other than a 401, with what its exchange left for the trace.
pub(super) struct Answer {
    pub(super) response: HttpResponse,
    pub(super) exchanged: Exchanged,
    pub(super) notes: Vec<Note>,
}

/// Where a GET chain ended with a 200, unrecorded: the caller reads the body.
pub(super) struct Fetched {
    pub(super) url: Url,
    pub(super) answer: Answer,
    pub(super) hops: usize,
}

/// Where a chain ended.
enum Landed {
    Found(Found),
    Fetched(Box<Fetched>),
}

/// What one answer in a chain means.
enum Turn {
    Landed(Landed),
    /// An HTTP redirect or a `redirectUrl`, to be checked before it is followed.
    Redirect(Url),
}

impl Run<'_> {
    /// POSTs `dialect`'s request to `start` and follows HTTP redirects and `redirectUrl`s.
    pub(super) async fn post_chain(
        &self,
        chain: Chain<'_>,
        dialect: &dyn PostDialect,
        start: Url,
    ) -> Option<Found> {
        match self.follow(chain, Verb::Post(dialect), start).await? {
            Landed::Found(found) => Some(found),
            Landed::Fetched(_) => None,
        }
    }

    /// GETs `start` and follows HTTP redirects to a 200, which is returned unrecorded.
    pub(super) async fn get_chain(&self, chain: Chain<'_>, start: Url) -> Option<Fetched> {
        match self.follow(chain, Verb::Get, start).await? {
            Landed::Fetched(fetched) => Some(*fetched),
            Landed::Found(_) => None,
        }
    }

    /// The follower. Everything but a GET's 200 is recorded.
    async fn follow(&self, mut chain: Chain<'_>, verb: Verb<'_>, start: Url) -> Option<Landed> {
        let (method, outgoing) = match verb {
            Verb::Get => ("GET", None),
            Verb::Post(dialect) => {
                let body = dialect.body(chain.at.address);
                ("POST", Some(Outgoing::new(body, dialect.announce())))
            }
        };
        let mut url = start;
        let mut asked: Vec<String> = Vec::new();
        loop {
            if let Some(why) = policy::refuse_host(url.host_str().unwrap_or_default()) {
                let failure = Failure::Refused {
                    url: url.to_string(),
                    why,
                };
                self.record_failure(chain.at, &format!("{method} {url}"), failure);
                return None;
            }
            asked.push(url.to_string());
            let answer = self.send(chain, &url, outgoing.as_ref()).await?;
            let next = match self.read_answer(chain, verb, &url, answer)? {
                Turn::Landed(landed) => return Some(landed),
                Turn::Redirect(next) => next,
            };
            if !self.may_follow(&mut chain, verb, &url, &next, &asked).await {
                return None;
            }
            chain.hops += 1;
            url = next;
        }
    }

    /// What an answer in a chain means; records it (but a GET's 200).
    fn read_answer(
        &self,
        chain: Chain<'_>,
        verb: Verb<'_>,
        url: &Url,
        answer: Answer,
    ) -> Option<Turn> {
        let status = answer.response.status;
        if status.is_redirection() {
            return self
                .redirected(chain, verb, url, answer)
                .map(Turn::Redirect);
        }
        if status != StatusCode::OK {
            // Any status but 200 moves on ([MS-OXDSCLI] 3.1.5.5).
            self.mark_failed(url);
            let failure = Failure::Status {
                status: status.as_u16(),
                reason: status.canonical_reason().map(str::to_owned),
            };
            self.record_exchange(chain.at, answer.exchanged, failed(failure), answer.notes);
            return None;
        }
        match verb {
            Verb::Post(dialect) => self.interpret(chain, dialect, url, answer),
            Verb::Get => Some(Turn::Landed(Landed::Fetched(Box::new(Fetched {
                url: url.clone(),
                answer,
                hops: chain.hops,
            })))),
        }
    }

    /// The Location of a redirect answer, recorded; `None` (recorded) without a usable one.
    fn redirected(
        &self,
        chain: Chain<'_>,
        verb: Verb<'_>,
        url: &Url,
        answer: Answer,
    ) -> Option<Url> {
        let Answer {
            response,
            exchanged,
            mut notes,
        } = answer;
        let status = response.status;
        let Some(next) = location(url, &response) else {
            self.mark_failed(url);
            let failure = Failure::Status {
                status: status.as_u16(),
                reason: Some("without a usable Location".to_owned()),
            };
            self.record_exchange(chain.at, exchanged, failed(failure), notes);
            return None;
        };
        if matches!(verb, Verb::Post(_)) && status != StatusCode::FOUND {
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
        self.record_exchange(chain.at, exchanged, outcome, notes);
        Some(next)
    }

    /// A 200 answering a POST, read by its dialect and recorded.
    fn interpret(
        &self,
        chain: Chain<'_>,
        dialect: &dyn PostDialect,
        url: &Url,
        answer: Answer,
    ) -> Option<Turn> {
        let Answer {
            response,
            exchanged,
            mut notes,
        } = answer;
        content_type_note(&response, &mut notes);
        let (outcome, next) = match dialect.interpret(&response.body) {
            Ok(read) => read,
            Err(failure) => {
                self.mark_failed(url);
                self.record_exchange(chain.at, exchanged, failed(failure), notes);
                return None;
            }
        };
        self.record_exchange(chain.at, exchanged, outcome, notes);
        let found = match next {
            Next::Follow(next) => return Some(Turn::Redirect(next)),
            Next::Settings(settings) => Found::Settings(Landing {
                settings,
                url: url.clone(),
                step: chain.at.step,
                hops: chain.hops,
                credentials_ok: chain.credentials_ok,
            }),
            Next::RedirectAddr(address) => Found::RedirectAddr {
                address,
                step: chain.at.step,
                hops: chain.hops,
            },
        };
        Some(Turn::Landed(Landed::Found(found)))
    }

    /// Whether the chain may go on from `url` to `next`; records why not, and asks for consent
    /// when `next` leaves the registrable domain (a host consented to may get credentials).
    async fn may_follow(
        &self,
        chain: &mut Chain<'_>,
        verb: Verb<'_>,
        url: &Url,
        next: &Url,
        asked: &[String],
    ) -> bool {
        let refusal = if let Some(why) = scheme_refusal(verb, url, next) {
            Some(Failure::Refused {
                url: next.to_string(),
                why: why.to_owned(),
            })
        } else if asked.contains(&next.to_string()) {
            Some(Failure::Loop {
                what: next.to_string(),
            })
        } else if self.failed_before(next) {
            Some(Failure::FailedBefore {
                url: next.to_string(),
            })
        } else {
            None
        };
        if let Some(failure) = refusal {
            self.record_failure(chain.at, &format!("redirect to {next}"), failure);
            return false;
        }
        if !self.admissible(chain.at, next, chain.hops + 1) {
            return false;
        }
        let from = url.host_str().unwrap_or_default();
        let to = next.host_str().unwrap_or_default();
        if !policy::same_registrable_domain(from, to) {
            let reason = ConsentReason::OtherDomain {
                from: url.to_string(),
            };
            if !self.ask_consent(chain.at, chain.lane, next, reason).await {
                return false;
            }
            chain.credentials_ok = true;
        }
        true
    }

    /// Whether `url` may be asked as the `hops`-th redirection; records why not.
    pub(super) fn admissible(&self, at: At<'_>, url: &Url, hops: usize) -> bool {
        let refusal = if hops > MAX_REDIRECTIONS {
            Some(Failure::TooManyRedirections {
                limit: MAX_REDIRECTIONS,
                next: url.to_string(),
            })
        } else {
            policy::refuse_host(url.host_str().unwrap_or_default()).map(|why| Failure::Refused {
                url: url.to_string(),
                why,
            })
        };
        match refusal {
            None => true,
            Some(failure) => {
                self.record_failure(at, &format!("redirect to {url}"), failure);
                false
            }
        }
    }

    /// One request (a POST when `outgoing` is given, else a GET), answering one Basic challenge
    /// when credentials may go to this host. `None` when it failed (recorded, and the URL
    /// marked failed).
    pub(super) async fn send(
        &self,
        chain: Chain<'_>,
        url: &Url,
        outgoing: Option<&Outgoing>,
    ) -> Option<Answer> {
        let method = if outgoing.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let label = format!("{method} {url}");
        let mut authorization: Option<HeaderValue> = None;
        loop {
            let mut headers = Vec::new();
            if let Some(outgoing) = outgoing {
                headers.push((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)));
                headers.push(outgoing.announce.clone());
            }
            if let Some(value) = &authorization {
                headers.push((header::AUTHORIZATION, value.clone()));
            }
            let request = HttpRequest {
                method: method.clone(),
                url,
                body: outgoing.map(|o| o.body.clone()),
                headers,
            };
            let (result, mut exchanged) = self.timed_exchange(chain.lane, &request, &label).await;
            let mut notes = Vec::new();
            if authorization.is_some() {
                let user = self.client.config().credentials.as_ref();
                let user = user.map_or("", |c| c.user.as_str());
                let text = format!("sent with HTTP Basic credentials for {user}");
                notes.push(Note::new(NoteKind::Info, text));
            }
            let response = match result {
                Ok(response) => response,
                Err(failure) => {
                    self.mark_failed(url);
                    self.record_exchange(chain.at, exchanged, failed(failure), notes);
                    return None;
                }
            };
            exchanged.status = Some(response.status.as_u16());
            if response.status != StatusCode::UNAUTHORIZED {
                return Some(Answer {
                    response,
                    exchanged,
                    notes,
                });
            }
            let challenge = if authorization.is_some() {
                Err("the credentials were refused".to_owned())
            } else if outgoing.is_none() {
                Err("this dialect never sends credentials".to_owned())
            } else {
                self.credentials_for(url, chain.credentials_ok, &response)
            };
            match challenge {
                Ok((value, why)) => {
                    notes.push(Note::new(NoteKind::Info, why));
                    self.record_exchange(chain.at, exchanged, Outcome::Challenge, notes);
                    authorization = Some(value);
                }
                Err(why) => {
                    self.mark_failed(url);
                    let failure = failed(Failure::Unauthorized { why });
                    self.record_exchange(chain.at, exchanged, failure, notes);
                    return None;
                }
            }
        }
    }

    /// Whether the mail domain's own hosts may be sent credentials when asking for `address`:
    /// for the user's own domain, and after a `redirectAddr` only when the new domain is under
    /// the original address's registrable domain.
    pub(super) fn own_hosts_trusted(&self, address: &EmailAddress) -> bool {
        policy::same_registrable_domain(address.domain().as_str(), self.origin.domain().as_str())
    }

    /// Whether `host` is one of the mail domain's own hosts trusted with credentials when
    /// asking for `address` (see [`Run::own_hosts_trusted`]).
    pub(super) fn trusted_host(&self, address: &EmailAddress, host: &str) -> bool {
        self.own_hosts_trusted(address)
            && policy::same_registrable_domain(host, address.domain().as_str())
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

    /// One exchange under the step timeout; the lane sees each activity as it happens.
    pub(super) async fn timed_exchange(
        &self,
        lane: Option<LaneHandle<'_>>,
        request: &HttpRequest<'_>,
        label: &str,
    ) -> (Result<HttpResponse, Failure>, Exchanged) {
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
        let result = self
            .client
            .net
            .exchange_within(request, self.step_timeout, &tracker)
            .await;
        if let Some(lane) = lane {
            lane.state(LaneState::Working);
        }
        let exchanged = Exchanged {
            request: label.to_owned(),
            started,
            log: log.into_inner().unwrap_or_default(),
            status: None,
        };
        (result, exchanged)
    }

    /// A DNS lookup of `name` under the step timeout.
    pub(super) async fn within_step<T>(
        &self,
        name: &str,
        lookup: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.step_timeout, lookup).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout {
                after_ms: self.step_timeout.as_millis() as u64,
                waiting_for: format!("the DNS answer for {name}"),
            }),
        }
    }
}

/// Why a chain must not go from `url` to `next`, by their schemes.
fn scheme_refusal(verb: Verb<'_>, url: &Url, next: &Url) -> Option<&'static str> {
    match verb {
        Verb::Post(_) if next.scheme() != "https" => Some("it is not https"),
        Verb::Get if !matches!(next.scheme(), "https" | "http") => {
            Some("it is neither https nor http")
        }
        Verb::Get if url.scheme() == "https" && next.scheme() != "https" => {
            Some("it leaves https for plain HTTP")
        }
        _ => None,
    }
}

/// The Location of a redirect, resolved against the request URL.
pub(super) fn location(base: &Url, response: &HttpResponse) -> Option<Url> {
    let value = response.headers.get(header::LOCATION)?.to_str().ok()?;
    base.join(value.trim()).ok()
}

/// A deviation note when an XML answer does not say it is XML.
pub(super) fn content_type_note(response: &HttpResponse, notes: &mut Vec<Note>) {
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
