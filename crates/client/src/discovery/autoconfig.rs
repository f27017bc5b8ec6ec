//! Mozilla autoconfig as Thunderbird fetches it.
//!
//! `https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDRESS`,
//! `https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ADDRESS`, the same
//! two over `http://`, then the MX path: the MX host of DOMAIN (lowest preference), its
//! registrable domain by the public suffix list, and
//! `https://autoconfig.MXBASE/mail/config-v1.1.xml?emailaddress=ADDRESS`. Credentials are never
//! sent: autoconfig needs none.

use autodisco_proto::EmailAddress;
use autodisco_proto::autoconfig::{self, ClientConfig as AutoconfigDocument};
use url::Url;

use super::follow::{Chain, Fetched, content_type_note};
use super::trace::{At, Exchanged, failed};
use super::{Ended, Landing, Run};
use crate::net::ExchangeLog;
use crate::policy;
use crate::report::{Failure, Note, NoteKind, Outcome, Step};
use crate::settings::Settings;

/// Every step, in Thunderbird's order.
const STEPS: [Step; 4] = [
    Step::AutoconfigHost,
    Step::AutoconfigWellKnown,
    Step::AutoconfigPlainHttp,
    Step::AutoconfigMx,
];

impl Run<'_> {
    /// The autoconfig dialect to its end.
    pub(super) async fn autoconfig(&self) -> Ended {
        let address = &self.origin;
        let domain = address.domain().as_str();
        let autoconfig_host = format!("autoconfig.{domain}");
        let candidates = [
            (
                Step::AutoconfigHost,
                "https",
                &*autoconfig_host,
                autoconfig::PATH,
            ),
            (
                Step::AutoconfigWellKnown,
                "https",
                domain,
                autoconfig::WELL_KNOWN_PATH,
            ),
            (
                Step::AutoconfigPlainHttp,
                "http",
                &*autoconfig_host,
                autoconfig::PATH,
            ),
            (
                Step::AutoconfigPlainHttp,
                "http",
                domain,
                autoconfig::WELL_KNOWN_PATH,
            ),
        ];
        for (step, scheme, host, path) in candidates {
            let Some(url) = autoconfig_url(scheme, host, path, address) else {
                continue;
            };
            if let Some(landing) = self.autoconfig_get(At { address, step }, url).await {
                return self.landed(landing);
            }
        }
        let at = At {
            address,
            step: Step::AutoconfigMx,
        };
        if let Some(url) = self.mx_candidate(at).await
            && let Some(landing) = self.autoconfig_get(at, url).await
        {
            return self.landed(landing);
        }
        Ended::failed(address.clone(), 0, self.why_not(address, &STEPS))
    }

    fn landed(&self, landing: Landing) -> Ended {
        Ended {
            address: self.origin.clone(),
            hops: landing.hops,
            result: Ok(landing),
        }
    }

    /// The MX host of the mail domain and the autoconfig URL of its registrable domain.
    async fn mx_candidate(&self, at: At<'_>) -> Option<Url> {
        let domain = at.address.domain().as_str();
        let mut exchanged = Exchanged::starting(format!("MX {domain}"));
        let records = match self.within_step(domain, self.client.net.mx(domain)).await {
            Ok(records) => records,
            Err(failure) => {
                self.record_exchange(at, exchanged, failed(failure), Vec::new());
                return None;
            }
        };
        exchanged.log = ExchangeLog {
            dns: records
                .iter()
                .map(|(preference, host)| format!("{domain} MX {preference} {host}"))
                .collect(),
            ..ExchangeLog::default()
        };
        let usable = records
            .iter()
            .map(|(_, host)| host.as_str())
            .find(|host| !host.is_empty() && *host != ".");
        let base = usable.and_then(policy::registrable_domain);
        let (Some(host), Some(base)) = (usable, base) else {
            let failure = Failure::NoRecords {
                name: domain.to_owned(),
                record_type: "usable MX".to_owned(),
            };
            self.record_exchange(at, exchanged, failed(failure), Vec::new());
            return None;
        };
        let url = autoconfig_url(
            "https",
            &format!("autoconfig.{base}"),
            autoconfig::PATH,
            at.address,
        )?;
        let notes = vec![Note::new(
            NoteKind::Info,
            format!(
                "Thunderbird takes the MX host's base domain ({base}, by the public suffix list) and asks autoconfig.{base}"
            ),
        )];
        let outcome = Outcome::MxHost {
            host: host.to_owned(),
            url: url.to_string(),
        };
        self.record_exchange(at, exchanged, outcome, notes);
        Some(url)
    }

    /// One autoconfig URL: the settings, where they came from and the redirections.
    async fn autoconfig_get(&self, at: At<'_>, url: Url) -> Option<Landing> {
        let chain = Chain {
            at,
            lane: None,
            hops: 0,
            credentials_ok: false,
        };
        let Fetched { url, answer, hops } = self.get_chain(chain, url).await?;
        let mut notes = answer.notes;
        content_type_note(&answer.response, &mut notes);
        match AutoconfigDocument::from_xml(&answer.response.body) {
            Ok(document) => {
                let domain = at.address.domain().as_str();
                if !document
                    .domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(domain))
                {
                    notes.push(Note::new(
                        NoteKind::Info,
                        format!("the document does not list {domain} among its domains"),
                    ));
                }
                self.record_exchange(at, answer.exchanged, Outcome::Settings, notes);
                let settings = Settings::from_autoconfig(&document, &at.address.to_string());
                Some(Landing {
                    settings: Box::new(settings),
                    url,
                    step: at.step,
                    hops,
                    credentials_ok: false,
                })
            }
            Err(error) => {
                self.mark_failed(&url);
                let failure = Failure::Decode {
                    detail: format!("not a clientConfig document: {error}"),
                };
                self.record_exchange(at, answer.exchanged, failed(failure), notes);
                None
            }
        }
    }
}

/// `SCHEME://HOST/PATH?emailaddress=ADDRESS`.
fn autoconfig_url(scheme: &str, host: &str, path: &str, address: &EmailAddress) -> Option<Url> {
    Url::parse_with_params(
        &format!("{scheme}://{host}{path}"),
        [(autoconfig::ADDRESS_PARAMETER, address.to_string().as_str())],
    )
    .ok()
}
