//! Outlook's four candidates as lanes of a race ([MS-OXDISCO] 3.1.5, in Outlook's order):
//!
//! 1. POST `https://DOMAIN/autodiscover/autodiscover.xml` (3.1.5.2)
//! 2. POST `https://autodiscover.DOMAIN/autodiscover/autodiscover.xml` (3.1.5.2)
//! 3. GET `http://autodiscover.DOMAIN/autodiscover/autodiscover.xml`, unauthenticated; a 302 to
//!    an https URL is a candidate once the user consents (3.1.5.4)
//! 4. SRV `_autodiscover._tcp.DOMAIN`; the target is a candidate once the user consents (3.1.5.3;
//!    the consent is Outlook's behaviour, not a spec rule)
//!
//! The SOAP dialect runs the same race at `/autodiscover/autodiscover.svc`.
//!
//! # Faster than Outlook
//!
//! The specs allow the candidates in any order or in parallel. Each lane starts when the lanes
//! before it have gone [`ClientConfig::stagger`](crate::ClientConfig::stagger) without a
//! connection, or at once when the lane just before it failed, as Happy Eyeballs does (RFC 8305).
//! The winner is chosen by priority with one exception: a later lane that succeeds while an
//! earlier one has not even completed its TLS handshake wins. An earlier lane that is connected
//! is waited for (up to its step timeout), since its answer would win. A lane asks for consent
//! only when no earlier lane is connected or asking, so prompts come one at a time and in
//! priority order.

use std::pin::Pin;

use autodisco_proto::EmailAddress;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use super::follow::{Chain, PostDialect};
use super::lanes::{Lane, LaneHandle, LaneState};
use super::trace::{At, Exchanged, seconds};
use super::{Found, Round, Run};
use crate::report::{InFlight, Outcome, Step};

/// The four candidates, in Outlook's priority.
pub(super) const LANES: [Step; 4] = [
    Step::Root,
    Step::AutodiscoverHost,
    Step::HttpRedirect,
    Step::Srv,
];

enum Decision {
    Winner(usize),
    Wait,
    AllFailed,
}

/// The lanes' futures, each giving its index and what it found.
type Running<'f> =
    FuturesUnordered<Pin<Box<dyn Future<Output = (usize, Option<Found>)> + Send + 'f>>>;

impl Run<'_> {
    /// Runs the four candidates for `address`, POSTing in `dialect`.
    pub(super) async fn race(
        &self,
        dialect: &dyn PostDialect,
        address: &EmailAddress,
        hops: usize,
    ) -> Round {
        let (lanes_tx, mut lanes_rx) = watch::channel(vec![Lane::default(); LANES.len()]);
        let lanes_tx = &lanes_tx;
        // The mail domain's own hosts (candidates 1 and 2) may be sent credentials.
        let credentials_ok = self.own_hosts_trusted(address);
        let mut running: Running<'_> = FuturesUnordered::new();
        let mut results: Vec<Option<Found>> = (0..LANES.len()).map(|_| None).collect();
        let (mut next, mut last_start) = (0, Instant::now());
        let mut reported: Vec<InFlight> = Vec::new();
        loop {
            let lanes = lanes_rx.borrow_and_update().clone();
            self.report_in_flight(&lanes, &mut reported);
            match decide(&lanes) {
                Decision::Winner(index) => {
                    self.abandon(address, &lanes, Some(index));
                    let found = results[index].take().expect("a winner has a result");
                    return Round::Found(Box::new(found));
                }
                Decision::AllFailed => {
                    let why = self.why_not(address, &LANES);
                    return Round::NotFound { why, hops };
                }
                Decision::Wait => {}
            }
            let start_at = start_time(&lanes, next, last_start, self.client.config().stagger);
            if let Some(at) = start_at
                && at <= Instant::now()
            {
                let lane = LaneHandle {
                    lanes: lanes_tx,
                    index: next,
                };
                let chain = Chain {
                    at: At {
                        address,
                        step: LANES[next],
                    },
                    lane: Some(lane),
                    hops,
                    credentials_ok,
                };
                lane.begin(&format!("{} for {address}", LANES[next].describe()));
                running.push(Box::pin(async move {
                    (lane.index, self.run_lane(dialect, chain).await)
                }));
                (next, last_start) = (next + 1, Instant::now());
                continue;
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
                    return Round::TimedOut;
                }
            }
        }
    }

    /// Runs one candidate.
    async fn run_lane(&self, dialect: &dyn PostDialect, chain: Chain<'_>) -> Option<Found> {
        let domain = chain.at.address.domain().as_str();
        match chain.at.step {
            Step::Root => {
                let url = dialect.service_url(domain)?;
                self.post_chain(chain, dialect, url).await
            }
            Step::AutodiscoverHost => {
                let url = dialect.service_url(&format!("autodiscover.{domain}"))?;
                self.post_chain(chain, dialect, url).await
            }
            Step::HttpRedirect => self.http_redirect(dialect, chain).await,
            Step::Srv => self.srv(dialect, chain).await,
            _ => None,
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
            .filter(|(_, lane)| lane.running())
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

    /// Records trace entries for the lanes still running when the race ended.
    fn abandon(&self, address: &EmailAddress, lanes: &[Lane], winner: Option<usize>) {
        for (index, lane) in lanes.iter().enumerate() {
            if Some(index) == winner || !lane.running() {
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
                    seconds(self.total_timeout)
                ),
            };
            let request = lane
                .request
                .clone()
                .unwrap_or_else(|| LANES[index].describe().to_owned());
            let mut exchanged = Exchanged::starting(request);
            exchanged.started = lane.since.unwrap_or(exchanged.started);
            let at = At {
                address,
                step: LANES[index],
            };
            self.record_exchange(at, exchanged, Outcome::Abandoned { reason }, Vec::new());
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

async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::lanes::lanes;
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
}
