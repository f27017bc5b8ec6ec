//! The JSON (Autodiscover v2) and autoconfig dialects: GETs tried in order, each with the same
//! transport, certificate checks, trace, consent and redirection limit as the POX race.
//!
//! # JSON, as current Outlook
//!
//! `GET https://DOMAIN/autodiscover/autodiscover.json?Email=ADDRESS&Protocol=AutodiscoverV1`,
//! then the same at `autodiscover.DOMAIN`. The first that answers gives the `AutodiscoverV1` URL;
//! the `EWS` URL is asked at the same place; then the POX request goes to the `AutodiscoverV1`
//! URL (with consent when it leaves the registrable domain of the host that named it), as
//! Outlook does. A `redirectAddr` there restarts the JSON discovery for the new address.
//!
//! # Autoconfig, as Thunderbird
//!
//! `https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDRESS`,
//! `https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ADDRESS`, the same
//! two over `http://`, then the MX path: the MX host of DOMAIN (lowest preference), its
//! registrable domain by the public suffix list, and
//! `https://autoconfig.MXBASE/mail/config-v1.1.xml?emailaddress=ADDRESS`. Credentials are never
//! sent: autoconfig needs none.

use autodisco_proto::autoconfig::{self, ClientConfig as AutoconfigDocument};
use autodisco_proto::v2::{self, V2Response};

use super::*;

/// Where a GET chain ended with a 200.
struct Fetched {
    url: Url,
    response: HttpResponse,
    log: ExchangeLog,
    started: Instant,
    hops: usize,
    notes: Vec<Note>,
}

impl Run<'_> {
    /// The JSON dialect to its end.
    pub(super) async fn execute_json(self) -> Report {
        let total = self.race.total_timeout;
        let result = tokio::time::timeout(total, self.json_discovery()).await;
        match result {
            Ok(Ok((address, url, step, hops, settings))) => {
                let conclusion = format!(
                    "settings for {address} found through Autodiscover v2 ({}) and the POX request to {url}{}",
                    step.describe(),
                    redirections(hops)
                );
                self.report(
                    &address,
                    true,
                    Some(url.to_string()),
                    Some(step),
                    hops,
                    conclusion,
                    Some(settings),
                )
            }
            Ok(Err((address, hops, why))) => {
                let conclusion = format!("no settings found for {}: {why}", self.origin);
                self.report(&address, false, None, None, hops, conclusion, None)
            }
            Err(_) => {
                let conclusion = format!(
                    "no settings found for {}: the total timeout of {} passed",
                    self.origin,
                    seconds(total)
                );
                let origin = self.origin.clone();
                self.report(&origin, false, None, None, 0, conclusion, None)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    async fn json_discovery(
        &self,
    ) -> Result<(EmailAddress, Url, Step, usize, Settings), (EmailAddress, usize, String)> {
        let mut address = self.origin.clone();
        let mut hops = 0;
        let mut seen = vec![address.lookup_key()];
        loop {
            let domain = address.domain().as_str().to_owned();
            let mut answered = None;
            for (step, host) in [
                (Step::Root, domain.clone()),
                (Step::AutodiscoverHost, format!("autodiscover.{domain}")),
            ] {
                let Some(url) = v2_url(&host, &address, "AutodiscoverV1") else {
                    continue;
                };
                if let Some(found) = self
                    .v2_get(&address, step, url, hops, "AutodiscoverV1")
                    .await
                {
                    answered = Some((step, found));
                    break;
                }
            }
            let Some((step, (json_url, v1, at))) = answered else {
                let why = self.why_not(&address, &[Step::Root, Step::AutodiscoverHost]);
                return Err((address, hops, why));
            };
            hops = at;
            // The EWS URL, from where the AutodiscoverV1 answer came.
            let mut ews_url = None;
            if let Some(host) = json_url.host_str()
                && let Some(mut url) = v2_url(host, &address, "EWS")
            {
                url.set_port(json_url.port()).ok();
                ews_url = self
                    .v2_get(&address, step, url, hops, "EWS")
                    .await
                    .map(|(_, u, _)| u);
            }
            let v1 = match Url::parse(v1.trim()) {
                Ok(url) if url.scheme() == "https" => url,
                _ => {
                    let failure = Failure::Refused {
                        url: v1.clone(),
                        why: "the AutodiscoverV1 URL is not an https URL".to_owned(),
                    };
                    let why = failure.to_string();
                    self.record_failure(&address, step, &format!("POST {v1}"), failure);
                    return Err((address, hops, why));
                }
            };
            if !self.admissible(&address, step, &v1, hops) {
                let why = self.why_not(&address, &[step]);
                return Err((address, hops, why));
            }
            let from = json_url.host_str().unwrap_or_default();
            let to = v1.host_str().unwrap_or_default();
            let mut credentials_ok = policy::same_registrable_domain(to, address.domain().as_str());
            if !policy::same_registrable_domain(from, to) {
                let reason = ConsentReason::OtherDomain {
                    from: json_url.to_string(),
                };
                if !self.ask_consent(&address, step, None, &v1, reason).await {
                    let why = self.why_not(&address, &[step]);
                    return Err((address, hops, why));
                }
                credentials_ok = true;
            }
            let (lanes, _keep) = watch::channel(vec![Lane::default()]);
            let lane = LaneHandle {
                lanes: &lanes,
                index: 0,
            };
            match self
                .post_chain(&address, step, lane, v1, credentials_ok, hops)
                .await
            {
                Some(Found::Settings {
                    settings,
                    url,
                    step,
                    hops,
                    ..
                }) => {
                    let mut settings = *settings;
                    if let Some(ews_url) = ews_url {
                        let ews = settings.ews.get_or_insert_with(Default::default);
                        if ews.url.is_none() {
                            ews.url = Some(ews_url);
                        }
                    }
                    return Ok((address, url, step, hops, settings));
                }
                Some(Found::RedirectAddr {
                    address: next,
                    step,
                    hops: at,
                }) => {
                    let label = format!("redirectAddr to {next}");
                    let failure = if seen.contains(&next.lookup_key()) {
                        Some(Failure::Loop {
                            what: format!("the address {next}"),
                        })
                    } else if at + 1 > MAX_REDIRECTIONS {
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
                    if let Some(failure) = failure {
                        let why = failure.to_string();
                        self.record_failure(&address, step, &label, failure);
                        return Err((address, at, why));
                    }
                    hops = at + 1;
                    seen.push(next.lookup_key());
                    address = next;
                }
                None => {
                    let why = self.why_not(&address, &[step]);
                    return Err((address, hops, why));
                }
            }
        }
    }

    /// One Autodiscover v2 question: the JSON URL that answered, the protocol's URL, and the
    /// redirections so far.
    async fn v2_get(
        &self,
        address: &EmailAddress,
        step: Step,
        url: Url,
        hops: usize,
        protocol: &str,
    ) -> Option<(Url, String, usize)> {
        let fetched = self.get_chain(address, step, url, hops).await?;
        let Fetched {
            url,
            response,
            log,
            started,
            hops,
            notes,
        } = fetched;
        let label = format!("GET {url}");
        let code = Some(response.status.as_u16());
        match serde_json::from_slice::<V2Response>(&response.body) {
            Ok(answer) => {
                let outcome = Outcome::ServiceUrl {
                    protocol: answer.protocol.clone(),
                    url: answer.url.clone(),
                };
                if !answer.protocol.eq_ignore_ascii_case(protocol) {
                    self.record_exchange(address, step, label, started, log, code, outcome, notes);
                    return None;
                }
                self.record_exchange(address, step, label, started, log, code, outcome, notes);
                Some((url, answer.url, hops))
            }
            Err(error) => {
                self.mark_failed(&url);
                let failure = Failure::Decode {
                    detail: format!("not an Autodiscover v2 JSON answer: {error}"),
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
                None
            }
        }
    }

    /// The autoconfig dialect to its end.
    pub(super) async fn execute_autoconfig(self) -> Report {
        let total = self.race.total_timeout;
        let address = self.origin.clone();
        let result = tokio::time::timeout(total, self.autoconfig_discovery()).await;
        match result {
            Ok(Ok((url, step, hops, settings))) => {
                let conclusion = format!(
                    "settings for {address} found at {url} through {}{}",
                    step.describe(),
                    redirections(hops)
                );
                self.report(
                    &address,
                    true,
                    Some(url.to_string()),
                    Some(step),
                    hops,
                    conclusion,
                    Some(settings),
                )
            }
            Ok(Err(why)) => {
                let conclusion = format!("no settings found for {address}: {why}");
                self.report(&address, false, None, None, 0, conclusion, None)
            }
            Err(_) => {
                let conclusion = format!(
                    "no settings found for {address}: the total timeout of {} passed",
                    seconds(total)
                );
                self.report(&address, false, None, None, 0, conclusion, None)
            }
        }
    }

    async fn autoconfig_discovery(&self) -> Result<(Url, Step, usize, Settings), String> {
        let address = &self.origin;
        let domain = address.domain().as_str();
        let candidates = [
            (
                Step::AutoconfigHost,
                "https",
                format!("autoconfig.{domain}"),
                autoconfig::PATH,
            ),
            (
                Step::AutoconfigWellKnown,
                "https",
                domain.to_owned(),
                autoconfig::WELL_KNOWN_PATH,
            ),
            (
                Step::AutoconfigPlainHttp,
                "http",
                format!("autoconfig.{domain}"),
                autoconfig::PATH,
            ),
            (
                Step::AutoconfigPlainHttp,
                "http",
                domain.to_owned(),
                autoconfig::WELL_KNOWN_PATH,
            ),
        ];
        for (step, scheme, host, path) in candidates {
            let Some(url) = autoconfig_url(scheme, &host, path, address) else {
                continue;
            };
            if let Some(found) = self.autoconfig_get(address, step, url).await {
                return Ok(found);
            }
        }
        // The MX path.
        let step = Step::AutoconfigMx;
        if let Some(url) = self.mx_candidate(address).await
            && let Some(found) = self.autoconfig_get(address, step, url).await
        {
            return Ok(found);
        }
        Err(self.why_not(
            address,
            &[
                Step::AutoconfigHost,
                Step::AutoconfigWellKnown,
                Step::AutoconfigPlainHttp,
                Step::AutoconfigMx,
            ],
        ))
    }

    /// The MX host of the mail domain and the autoconfig URL of its registrable domain.
    async fn mx_candidate(&self, address: &EmailAddress) -> Option<Url> {
        let step = Step::AutoconfigMx;
        let domain = address.domain().as_str();
        let label = format!("MX {domain}");
        let started = Instant::now();
        let result =
            match tokio::time::timeout(self.race.step_timeout, self.client.net.mx(domain)).await {
                Ok(result) => result,
                Err(_) => Err(Failure::Timeout {
                    after_ms: self.race.step_timeout.as_millis() as u64,
                    waiting_for: format!("the DNS answer for {domain}"),
                }),
            };
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
        let log = ExchangeLog {
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
        };
        let url = autoconfig_url(
            "https",
            &format!("autoconfig.{base}"),
            autoconfig::PATH,
            address,
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
        self.record_exchange(address, step, label, started, log, None, outcome, notes);
        Some(url)
    }

    /// One autoconfig URL: the settings, where they came from and the redirections.
    async fn autoconfig_get(
        &self,
        address: &EmailAddress,
        step: Step,
        url: Url,
    ) -> Option<(Url, Step, usize, Settings)> {
        let Fetched {
            url,
            response,
            log,
            started,
            hops,
            mut notes,
        } = self.get_chain(address, step, url, 0).await?;
        let label = format!("GET {url}");
        let code = Some(response.status.as_u16());
        content_type_note(&response, &mut notes);
        match AutoconfigDocument::from_xml(&response.body) {
            Ok(document) => {
                let domain = address.domain().as_str();
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
                let settings = Settings::from_autoconfig(&document, &address.to_string());
                Some((url, step, hops, settings))
            }
            Err(error) => {
                self.mark_failed(&url);
                let failure = Failure::Decode {
                    detail: format!("not a clientConfig document: {error}"),
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
                None
            }
        }
    }

    /// GETs `start` without credentials and follows HTTP redirects (counted against
    /// [`MAX_REDIRECTIONS`], never from https to http, with consent when one leaves the
    /// registrable domain). The 200 is returned unrecorded; everything else is recorded.
    async fn get_chain(
        &self,
        address: &EmailAddress,
        step: Step,
        start: Url,
        hops: usize,
    ) -> Option<Fetched> {
        let mut url = start;
        let mut hops = hops;
        let mut asked: Vec<String> = Vec::new();
        loop {
            if let Some(why) = policy::refuse_host(url.host_str().unwrap_or_default()) {
                self.record_failure(
                    address,
                    step,
                    &format!("GET {url}"),
                    Failure::Refused {
                        url: url.to_string(),
                        why,
                    },
                );
                return None;
            }
            asked.push(url.to_string());
            let request = HttpRequest {
                method: Method::GET,
                url: &url,
                body: None,
                headers: Vec::new(),
            };
            let label = format!("GET {url}");
            let (result, log, started) = self.timed_exchange(None, &request, &label).await;
            let response = match result {
                Ok(response) => response,
                Err(failure) => {
                    self.mark_failed(&url);
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
            if status == StatusCode::OK {
                return Some(Fetched {
                    url,
                    response,
                    log,
                    started,
                    hops,
                    notes: Vec::new(),
                });
            }
            if !status.is_redirection() {
                self.mark_failed(&url);
                let failure = if status == StatusCode::UNAUTHORIZED {
                    Failure::Unauthorized {
                        why: "this dialect never sends credentials".to_owned(),
                    }
                } else {
                    Failure::Status {
                        status: status.as_u16(),
                        reason: status.canonical_reason().map(str::to_owned),
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
            let Some(next) = location(&url, &response) else {
                self.mark_failed(&url);
                let failure = Failure::Status {
                    status: status.as_u16(),
                    reason: Some("without a usable Location".to_owned()),
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
            };
            let outcome = Outcome::HttpRedirect {
                status: status.as_u16(),
                location: next.to_string(),
            };
            self.record_exchange(
                address,
                step,
                label,
                started,
                log,
                code,
                outcome,
                Vec::new(),
            );
            let label = format!("redirect to {next}");
            let refusal = if !matches!(next.scheme(), "https" | "http") {
                Some(Failure::Refused {
                    url: next.to_string(),
                    why: "it is neither https nor http".to_owned(),
                })
            } else if url.scheme() == "https" && next.scheme() != "https" {
                Some(Failure::Refused {
                    url: next.to_string(),
                    why: "it leaves https for plain HTTP".to_owned(),
                })
            } else if asked.contains(&next.to_string()) {
                Some(Failure::Loop {
                    what: next.to_string(),
                })
            } else if self.failed_before(&next) {
                Some(Failure::FailedBefore {
                    url: next.to_string(),
                })
            } else {
                None
            };
            if let Some(failure) = refusal {
                self.record_failure(address, step, &label, failure);
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
                if !self.ask_consent(address, step, None, &next, reason).await {
                    return None;
                }
            }
            hops += 1;
            url = next;
        }
    }

    /// One sentence per step: its last failure for `address`.
    fn why_not(&self, address: &EmailAddress, steps: &[Step]) -> String {
        let trace = self.trace.lock().expect("trace lock");
        let address = address.to_string();
        let parts: Vec<String> = steps
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

/// `SCHEME://HOST/PATH?emailaddress=ADDRESS`.
fn autoconfig_url(scheme: &str, host: &str, path: &str, address: &EmailAddress) -> Option<Url> {
    Url::parse_with_params(
        &format!("{scheme}://{host}{path}"),
        [(autoconfig::ADDRESS_PARAMETER, address.to_string().as_str())],
    )
    .ok()
}

fn redirections(hops: usize) -> String {
    match hops {
        0 => String::new(),
        1 => " after 1 redirection".to_owned(),
        n => format!(" after {n} redirections"),
    }
}
