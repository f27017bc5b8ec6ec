//! Asking the user's consent for a redirect: one prompt at a time, in the lanes' priority order,
//! each host's answer remembered for the rest of the discovery, and the time the user takes not
//! counted against the total timeout.

use std::sync::Mutex;

use tokio::time::Instant;
use url::Url;

use super::Run;
use super::lanes::{LaneHandle, LaneState};
use super::trace::{At, Exchanged};
use crate::consent::{ConsentDecision, ConsentReason, ConsentRequest, normalise_host};
use crate::report::{Note, NoteKind, Outcome};

impl Run<'_> {
    /// Asks (or recalls) the user's consent for `url`. Waits until no earlier lane is connected
    /// or asking, so prompts come in priority order and only when they may matter.
    pub(super) async fn ask_consent(
        &self,
        at: At<'_>,
        lane: Option<LaneHandle<'_>>,
        url: &Url,
        reason: ConsentReason,
    ) -> bool {
        let host = normalise_host(url.host_str().unwrap_or_default());
        let label = format!("consent for {url}");
        if let Some(lane) = lane {
            lane.begin(&label);
            lane.wait_for_turn_to_ask().await;
        }
        let _turn = self.consent_gate.lock().await;
        let exchanged = Exchanged::starting(label);
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
                    address: at.address.to_string(),
                    url: url.to_string(),
                    host: host.clone(),
                    reason: reason.clone(),
                };
                (self.prompt(request, exchanged.started).await, false)
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
                at.address
            )
        } else {
            format!("refused: {url} is not followed without consent ({detail}{remembered_text})")
        };
        let mut entry = self.entry(at, exchanged, Outcome::Consent { allowed, detail }, notes);
        entry.summary = summary;
        self.record(entry);
        if let Some(lane) = lane {
            lane.state(LaneState::Working);
        }
        allowed
    }

    /// Asks the caller's [`Consent`](crate::Consent) on a blocking thread and remembers the
    /// answer for the host.
    async fn prompt(&self, request: ConsentRequest, started: Instant) -> ConsentDecision {
        let consent = self.consent.clone();
        let host = request.host.clone();
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
            .insert(host, decision.clone());
        decision
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
