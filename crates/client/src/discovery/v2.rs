//! Autodiscover v2 as current Outlook asks it.
//!
//! `GET https://DOMAIN/autodiscover/autodiscover.json?Email=ADDRESS&Protocol=AutodiscoverV1`,
//! then the same at `autodiscover.DOMAIN`. The first that answers gives the `AutodiscoverV1` URL;
//! the `EWS` URL is asked at the same place; then the POX request goes to the `AutodiscoverV1`
//! URL (with consent when it leaves the registrable domain of the host that named it), as
//! Outlook does. A `redirectAddr` there restarts the v2 discovery for the new address.

use autodisco_proto::EmailAddress;
use autodisco_proto::v2::{self, V2Response};
use url::Url;

use super::follow::{Chain, Fetched};
use super::pox::Pox;
use super::trace::{At, failed};
use super::{Found, Round, Run};
use crate::consent::ConsentReason;
use crate::report::{Failure, Outcome, Step};

/// The two places v2 is asked, in Outlook's order.
const STEPS: [Step; 2] = [Step::Root, Step::AutodiscoverHost];

/// A protocol's URL as an Autodiscover v2 answer gave it.
struct ServiceUrl {
    /// The JSON URL that answered.
    from: Url,
    /// The protocol's URL.
    url: String,
    hops: usize,
}

impl Run<'_> {
    /// One round of v2 for `address`.
    pub(super) async fn v2_round(&self, address: &EmailAddress, hops: usize) -> Round {
        let Some((step, v1)) = self.autodiscover_v1(address, hops).await else {
            let why = self.why_not(address, &STEPS);
            return Round::NotFound { why, hops };
        };
        let at = At { address, step };
        let hops = v1.hops;
        let ews_url = self.ews_url(at, &v1).await;
        let target = match Url::parse(v1.url.trim()) {
            Ok(url) if url.scheme() == "https" => url,
            _ => {
                let failure = Failure::Refused {
                    url: v1.url.clone(),
                    why: "the AutodiscoverV1 URL is not an https URL".to_owned(),
                };
                let why = failure.to_string();
                self.record_failure(at, &format!("POST {}", v1.url), failure);
                return Round::NotFound { why, hops };
            }
        };
        let not_found = || Round::NotFound {
            why: self.why_not(address, &[step]),
            hops,
        };
        if !self.admissible(at, &target, hops) {
            return not_found();
        }
        let to = target.host_str().unwrap_or_default();
        let mut credentials_ok = self.trusted_host(address, to);
        let from = v1.from.host_str().unwrap_or_default();
        if !crate::policy::same_registrable_domain(from, to) {
            let reason = ConsentReason::OtherDomain {
                from: v1.from.to_string(),
            };
            if !self.ask_consent(at, None, &target, reason).await {
                return not_found();
            }
            credentials_ok = true;
        }
        let chain = Chain {
            at,
            lane: None,
            hops,
            credentials_ok,
        };
        let Some(mut found) = self.post_chain(chain, &Pox, target).await else {
            return not_found();
        };
        if let (Found::Settings(landing), Some(ews_url)) = (&mut found, ews_url) {
            let ews = landing.settings.ews.get_or_insert_with(Default::default);
            if ews.url.is_none() {
                ews.url = Some(ews_url);
            }
        }
        Round::Found(Box::new(found))
    }

    /// The `AutodiscoverV1` URL from the first of the two places that gives it.
    async fn autodiscover_v1(
        &self,
        address: &EmailAddress,
        hops: usize,
    ) -> Option<(Step, ServiceUrl)> {
        let domain = address.domain().as_str();
        for (step, host) in STEPS
            .into_iter()
            .zip([domain.to_owned(), format!("autodiscover.{domain}")])
        {
            let Some(url) = v2_url(&host, address, "AutodiscoverV1") else {
                continue;
            };
            let at = At { address, step };
            if let Some(found) = self.v2_get(at, url, hops, "AutodiscoverV1").await {
                return Some((step, found));
            }
        }
        None
    }

    /// The EWS URL, asked where the `AutodiscoverV1` answer came from.
    async fn ews_url(&self, at: At<'_>, v1: &ServiceUrl) -> Option<String> {
        let host = v1.from.host_str()?;
        let mut url = v2_url(host, at.address, "EWS")?;
        url.set_port(v1.from.port()).ok();
        self.v2_get(at, url, v1.hops, "EWS").await.map(|s| s.url)
    }

    /// One Autodiscover v2 question: the URL of `protocol`, where it came from, and the
    /// redirections so far.
    async fn v2_get(
        &self,
        at: At<'_>,
        url: Url,
        hops: usize,
        protocol: &str,
    ) -> Option<ServiceUrl> {
        let chain = Chain {
            at,
            lane: None,
            hops,
            credentials_ok: false,
        };
        let Fetched { url, answer, hops } = self.get_chain(chain, url).await?;
        match serde_json::from_slice::<V2Response>(&answer.response.body) {
            Ok(v2) => {
                let outcome = Outcome::ServiceUrl {
                    protocol: v2.protocol.clone(),
                    url: v2.url.clone(),
                };
                self.record_exchange(at, answer.exchanged, outcome, answer.notes);
                v2.protocol
                    .eq_ignore_ascii_case(protocol)
                    .then_some(ServiceUrl {
                        from: url,
                        url: v2.url,
                        hops,
                    })
            }
            Err(error) => {
                self.mark_failed(&url);
                let failure = Failure::Decode {
                    detail: format!("not an Autodiscover v2 JSON answer: {error}"),
                };
                self.record_exchange(at, answer.exchanged, failed(failure), answer.notes);
                None
            }
        }
    }
}

/// `https://HOST/autodiscover/autodiscover.json?Email=ADDRESS&Protocol=PROTOCOL`.
fn v2_url(host: &str, address: &EmailAddress, protocol: &str) -> Option<Url> {
    Url::parse_with_params(
        &format!("https://{host}{}", v2::PATH),
        [
            ("Email", address.to_string().as_str()),
            ("Protocol", protocol),
        ],
    )
    .ok()
}
