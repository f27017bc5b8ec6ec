//! The lane table: where each of the race's candidates stands, shared (through a watch
//! channel) by the race, which decides on it, and by the lanes, which report their progress and
//! wait on it for their turn to ask consent.

use tokio::sync::watch;
use tokio::time::Instant;

use crate::net::Activity;

/// Where a lane stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LaneState {
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
pub(super) struct Lane {
    pub(super) state: LaneState,
    pub(super) request: Option<String>,
    pub(super) activity: Option<Activity>,
    pub(super) since: Option<Instant>,
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
pub(super) struct LaneHandle<'a> {
    pub(super) lanes: &'a watch::Sender<Vec<Lane>>,
    pub(super) index: usize,
}

impl LaneHandle<'_> {
    pub(super) fn begin(&self, request: &str) {
        self.lanes.send_modify(|lanes| {
            let lane = &mut lanes[self.index];
            lane.state = LaneState::Working;
            lane.request = Some(request.to_owned());
            lane.activity = None;
            lane.since = Some(Instant::now());
        });
    }

    pub(super) fn activity(&self, activity: &Activity) {
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

    pub(super) fn state(&self, state: LaneState) {
        self.lanes
            .send_modify(|lanes| lanes[self.index].state = state);
    }

    /// Waits until no earlier lane is connected or asking for consent.
    pub(super) async fn wait_for_turn_to_ask(&self) {
        self.state(LaneState::AwaitingConsent);
        let mut rx = self.lanes.subscribe();
        let _ = rx.wait_for(|lanes| gate_open(lanes, self.index)).await;
    }
}

impl Lane {
    /// Whether the lane is still at work (or waiting to ask).
    pub(super) fn running(&self) -> bool {
        matches!(
            self.state,
            LaneState::Working | LaneState::Connected | LaneState::AwaitingConsent
        )
    }
}

/// Whether lane `index` may ask for consent: every earlier lane has failed or is still without
/// a connection (and not asking itself).
fn gate_open(lanes: &[Lane], index: usize) -> bool {
    lanes[..index]
        .iter()
        .all(|lane| matches!(lane.state, LaneState::Failed | LaneState::Working))
}

#[cfg(test)]
pub(super) fn lanes(states: &[LaneState]) -> Vec<Lane> {
    states
        .iter()
        .map(|&state| Lane {
            state,
            ..Lane::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::LaneState::*;
    use super::*;

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
