//! The ActiveSync question after POX found the settings: the mobilesync request at the URL that
//! gave them ([MS-ASCMD] 2.2.1.1), with the same credentials rule.

use autodisco_proto::mobilesync::{MobileSyncAction, MobileSyncRequest, MobileSyncServerType};
use autodisco_proto::{EmailAddress, ErrorCode, MobileSyncResponse};
use http::StatusCode;
use tokio::time::Instant;
use url::Url;

use super::Run;
use super::follow::{Answer, Chain, Outgoing};
use super::pox::outlook_announce;
use super::trace::{At, status_words};
use crate::report::{InFlight, Outcome, Step};
use crate::settings::ActiveSync;

impl Run<'_> {
    /// Asks for the ActiveSync endpoint at `url`, which gave the settings.
    pub(super) async fn activesync(
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
        let at = At { address, step };
        let chain = Chain {
            at,
            lane: None,
            hops: 0,
            credentials_ok,
        };
        let outgoing = Outgoing::new(body, outlook_announce());
        let answer = self.send(chain, url, Some(&outgoing)).await;
        if let Some(observer) = &self.observer {
            observer.in_flight(&[]);
        }
        let Some(Answer {
            response,
            mut exchanged,
            notes,
        }) = answer
        else {
            let why = self.last_summary();
            return ActiveSync::NotOffered { why };
        };
        exchanged.request = format!("POST {url} (ActiveSync)");
        let result = if response.status != StatusCode::OK {
            ActiveSync::NotOffered {
                why: format!("HTTP status {}", status_words(response.status)),
            }
        } else {
            read_answer(&response.body)
        };
        let mut entry = self.entry(at, exchanged, Outcome::ActiveSync, notes);
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
}

/// A 200's mobilesync answer, read.
fn read_answer(body: &[u8]) -> ActiveSync {
    match MobileSyncResponse::from_xml(body) {
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
}
