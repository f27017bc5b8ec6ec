//! Candidates 3 and 4, which first find the URL to POST to: the unauthenticated GET whose
//! redirect names it ([MS-OXDISCO] 3.1.5.4) and the SRV record whose target does (3.1.5.3).
//! Both need the user's consent before the POST.

use http::{Method, StatusCode};
use url::Url;

use super::follow::{Chain, PostDialect, location};
use super::lanes::LaneState;
use super::trace::{Exchanged, failed, status_words};
use super::{Found, Run};
use crate::consent::ConsentReason;
use crate::net::{Activity, ExchangeLog, HttpRequest, HttpResponse, SrvRecord};
use crate::report::{Failure, Note, NoteKind, Outcome};
use autodisco_proto::pox::PATH as POX_PATH;

impl Run<'_> {
    /// Candidate 3: the unauthenticated GET and, with consent, its target ([MS-OXDISCO] 3.1.5.4).
    pub(super) async fn http_redirect(
        &self,
        dialect: &dyn PostDialect,
        chain: Chain<'_>,
    ) -> Option<Found> {
        let at = chain.at;
        let url = Url::parse(&format!(
            "http://autodiscover.{}{POX_PATH}",
            at.address.domain()
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
        let (result, mut exchanged) = self.timed_exchange(chain.lane, &request, &label).await;
        let response = match result {
            Ok(response) => response,
            Err(failure) => {
                self.record_exchange(at, exchanged, failed(failure), Vec::new());
                return None;
            }
        };
        let status = response.status;
        exchanged.status = Some(status.as_u16());
        let next = match redirect_of(&url, &response) {
            Ok((next, notes)) => {
                let outcome = Outcome::HttpRedirect {
                    status: status.as_u16(),
                    location: next.to_string(),
                };
                self.record_exchange(at, exchanged, outcome, notes);
                next
            }
            Err(failure) => {
                self.record_exchange(at, exchanged, failed(failure), Vec::new());
                return None;
            }
        };
        let next = dialect.redirect_target(next);
        if next.scheme() != "https" {
            let failure = Failure::Refused {
                url: next.to_string(),
                why: "it is not https: the AutoDiscover request would travel unencrypted"
                    .to_owned(),
            };
            self.record_failure(at, &format!("redirect to {next}"), failure);
            return None;
        }
        if !self.admissible(at, &next, chain.hops + 1) {
            return None;
        }
        let reason = ConsentReason::HttpRedirect {
            from: url.to_string(),
            status: status.as_u16(),
        };
        if !self.ask_consent(at, chain.lane, &next, reason).await {
            return None;
        }
        let chain = Chain {
            hops: chain.hops + 1,
            credentials_ok: true,
            ..chain
        };
        self.post_chain(chain, dialect, next).await
    }

    /// Candidate 4: the SRV record and, with consent, its target ([MS-OXDISCO] 3.1.5.3).
    pub(super) async fn srv(&self, dialect: &dyn PostDialect, chain: Chain<'_>) -> Option<Found> {
        let at = chain.at;
        let name = format!("_autodiscover._tcp.{}", at.address.domain());
        let mut exchanged = Exchanged::starting(format!("SRV {name}"));
        if let Some(lane) = chain.lane {
            lane.begin(&exchanged.request);
            lane.activity(&Activity::Resolving(name.clone()));
        }
        let result = self.within_step(&name, self.client.net.srv(&name)).await;
        if let Some(lane) = chain.lane {
            lane.state(LaneState::Working);
        }
        let records = match result {
            Ok(records) => records,
            Err(failure) => {
                self.record_exchange(at, exchanged, failed(failure), Vec::new());
                return None;
            }
        };
        exchanged.log = ExchangeLog {
            dns: records.iter().map(|r| format!("{name} SRV {r}")).collect(),
            ..ExchangeLog::default()
        };
        let (best, notes) = best_srv(&records);
        // The URL carries no port: the record's port is 443 ([MS-OXDISCO] 3.1.5.3).
        let url = match best {
            None => Err(Failure::NoUsableSrv {
                detail: format!("{} record(s), none for port 443", records.len()),
            }),
            Some(best) => dialect
                .service_url(&best.target)
                .ok_or(Failure::NoUsableSrv {
                    detail: format!("the target {} is not a host name", best.target),
                }),
        };
        let url = match url {
            Ok(url) => url,
            Err(failure) => {
                self.record_exchange(at, exchanged, failed(failure), notes);
                return None;
            }
        };
        let outcome = Outcome::SrvTarget {
            url: url.to_string(),
        };
        self.record_exchange(at, exchanged, outcome, notes);
        if !self.admissible(at, &url, chain.hops) {
            return None;
        }
        let reason = ConsentReason::SrvRecord { name };
        if !self.ask_consent(at, chain.lane, &url, reason).await {
            return None;
        }
        let chain = Chain {
            credentials_ok: true,
            ..chain
        };
        self.post_chain(chain, dialect, url).await
    }
}

/// Where candidate 3's answer redirects, with remarks on how; or why it is no redirect.
fn redirect_of(url: &Url, response: &HttpResponse) -> Result<(Url, Vec<Note>), Failure> {
    let status = response.status;
    if !status.is_redirection() {
        return Err(if status == StatusCode::UNAUTHORIZED {
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
        });
    }
    let Some(next) = location(url, response) else {
        return Err(Failure::NoRedirect {
            detail: format!("a {} without a usable Location", status.as_u16()),
        });
    };
    let mut notes = Vec::new();
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
    Ok((next, notes))
}

/// The SRV record to use, with remarks on the others: records for port 443 only, the lowest
/// priority first, then the highest weight ([MS-OXDISCO] 3.1.5.3, RFC 2782).
fn best_srv(records: &[SrvRecord]) -> (Option<&SrvRecord>, Vec<Note>) {
    let mut notes = Vec::new();
    let mut usable: Vec<&SrvRecord> = Vec::new();
    for record in records {
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
            usable.push(record);
        }
    }
    usable.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
    for other in usable.iter().skip(1) {
        notes.push(Note::new(
            NoteKind::Info,
            format!("{other}: not tried, only the best record is used"),
        ));
    }
    (usable.first().copied(), notes)
}
