//! What Outlook meets on its way to the service ([MS-OXDISCO] 3.1.5), with the probe's own
//! resolver, TLS verification and HTTP/1.1 code ([`crate::net`]), one request per step:
//!
//! 1. POST `https://DOMAIN/autodiscover/autodiscover.xml`: no answer is fine (Outlook moves on);
//!    a certificate Outlook refuses stops it at a warning, a 401 at a password prompt, and
//!    settings of the web site's own are used instead of the hoster's.
//! 2. POST `https://autodiscover.DOMAIN/...`: closed is right (the redirect site's port 443);
//!    a certificate that does not cover the name stops Outlook at a warning.
//! 3. GET `http://autodiscover.DOMAIN/...`: the redirect site must answer 302 with the
//!    service's URL ([MS-OXDISCO] 3.1.5.4; Outlook follows no other status).
//! 4. POST to the service for an address in the domain: the service must answer it with
//!    settings (or, with `auth = "basic"`, Autodiscover v2 must know the address).

use std::sync::Mutex;

use autodisco_proto::{DomainRecords, EmailAddress, OutlookRequest};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use url::Url;

use super::{CHECK_LOCAL_PART, CheckStatus, Checker, Collected, WalkStep};
use crate::discovery::pox_answer;
use crate::net::{ExchangeLog, HttpRequest, HttpResponse, Tracker};
use crate::report::Failure;

/// The POX path ([MS-OXDISCO] 3.1.5.2).
const POX_PATH: &str = "/autodiscover/autodiscover.xml";

/// The steps, in Outlook's order.
pub(super) async fn walk(checker: &Checker, expected: &DomainRecords, collected: &mut Collected) {
    let domain = expected.domain.as_str();
    let Ok(address) = EmailAddress::parse(&format!("{CHECK_LOCAL_PART}@{domain}")) else {
        return;
    };
    let body = Bytes::from(OutlookRequest::for_address(address.clone()).to_xml());
    // Four independent requests, made at once: a web site that stalls costs one step timeout
    // in all, and the steps are reported in Outlook's order all the same.
    let (mut first, mut second, mut third, mut fourth) = Default::default();
    tokio::join!(
        root(checker, domain, &body, &mut first),
        autodiscover_https(checker, domain, &body, &mut second),
        redirect_site(checker, domain, &mut third),
        service(checker, &address, &body, &mut fourth),
    );
    collected.merge(vec![first, second, third, fourth]);
}

/// One exchange of the walk under the step timeout.
async fn send(
    checker: &Checker,
    method: Method,
    url: &Url,
    body: Option<&Bytes>,
) -> Result<HttpResponse, Failure> {
    let mut headers = Vec::new();
    if body.is_some() {
        headers.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        ));
    }
    let request = HttpRequest {
        method,
        url,
        body: body.cloned(),
        headers,
    };
    let log = Mutex::new(ExchangeLog::default());
    let tracker = Tracker {
        log: &log,
        on_activity: &|_| {},
    };
    let net = &checker.client.net;
    net.exchange_within(&request, checker.step_timeout(), &tracker)
        .await
}

fn url(text: &str) -> Option<Url> {
    Url::parse(text).ok()
}

fn step(collected: &mut Collected, request: String, status: CheckStatus, detail: String) {
    collected.walk.push(WalkStep {
        request,
        status,
        detail,
    });
}

/// Whether a TLS failure is about the certificate (Outlook warns) rather than the handshake
/// (Outlook moves on silently).
fn certificate_problem(failure: &Failure) -> Option<&str> {
    match failure {
        Failure::Tls {
            diagnosis,
            certificate_names,
            ..
        } if !certificate_names.is_empty() || diagnosis.starts_with("the certificate") => {
            Some(diagnosis)
        }
        _ => None,
    }
}

/// Step 1: the customer's own web site.
async fn root(checker: &Checker, domain: &str, body: &Bytes, collected: &mut Collected) {
    let Some(target) = url(&format!("https://{domain}{POX_PATH}")) else {
        return;
    };
    let request = format!("POST {target}");
    let result = send(checker, Method::POST, &target, Some(body)).await;
    let (status, detail) = match &result {
        Err(failure) => match certificate_problem(failure) {
            Some(diagnosis) => {
                collected.finding(
                    CheckStatus::Wrong,
                    format!("https://{domain} answers with a certificate Outlook refuses ({diagnosis}): Outlook stops at a certificate warning before it reaches the redirect; have the web site serve a valid certificate for {domain}, or close its port 443"),
                );
                (CheckStatus::Wrong, diagnosis.to_owned())
            }
            None => {
                slow_note(failure, &target, collected);
                (CheckStatus::Ok, format!("{failure}; Outlook moves on"))
            }
        },
        Ok(response) => root_answer(domain, &target, response, collected),
    };
    step(collected, request, status, detail);
}

/// A timeout costs Outlook the wait; worth knowing, nothing the hoster must fix.
fn slow_note(failure: &Failure, target: &Url, collected: &mut Collected) {
    if let Failure::Timeout { .. } = failure {
        collected.notes.push(format!(
            "{target}: {failure}; Outlook waits that long before its next step (a closed port answers at once)"
        ));
    }
}

fn root_answer(
    domain: &str,
    target: &Url,
    response: &HttpResponse,
    collected: &mut Collected,
) -> (CheckStatus, String) {
    let status = response.status;
    if status == StatusCode::UNAUTHORIZED {
        collected.finding(
            CheckStatus::Wrong,
            format!("{target} asks for a password (HTTP 401): Outlook shows a sign-in prompt for {domain} before it reaches the redirect; make the web site answer that path with 404"),
        );
        return (CheckStatus::Wrong, "HTTP 401".to_owned());
    }
    if status == StatusCode::OK && pox_answer(&response.body).is_ok() {
        collected.finding(
            CheckStatus::Wrong,
            format!("{target} answers with AutoDiscover settings of its own: Outlook takes them and never reaches the hoster; remove that endpoint from the web site"),
        );
        return (CheckStatus::Wrong, "AutoDiscover settings".to_owned());
    }
    (
        CheckStatus::Ok,
        format!("HTTP {}; Outlook moves on", status.as_u16()),
    )
}

/// Step 2: `autodiscover.DOMAIN` over HTTPS.
async fn autodiscover_https(
    checker: &Checker,
    domain: &str,
    body: &Bytes,
    collected: &mut Collected,
) {
    let host = format!("autodiscover.{domain}");
    let Some(target) = url(&format!("https://{host}{POX_PATH}")) else {
        return;
    };
    let request = format!("POST {target}");
    let (status, detail) = match send(checker, Method::POST, &target, Some(body)).await {
        Err(failure) => match certificate_problem(&failure) {
            Some(diagnosis) => {
                collected.finding(
                    CheckStatus::Wrong,
                    format!("{host}:443 answers with a certificate that does not fit ({diagnosis}): Outlook stops at a certificate warning instead of going on to the redirect; close port 443 on the redirect site's address, or put a certificate for {host} in https.certs_dir"),
                );
                (CheckStatus::Wrong, diagnosis.to_owned())
            }
            None => {
                slow_note(&failure, &target, collected);
                (CheckStatus::Ok, format!("{failure}; Outlook moves on"))
            }
        },
        Ok(response) => (
            CheckStatus::Ok,
            format!(
                "HTTP {} with a certificate covering {host}",
                response.status.as_u16()
            ),
        ),
    };
    step(collected, request, status, detail);
}

/// Step 3: the redirect site must send this host to the service with a 302.
async fn redirect_site(checker: &Checker, domain: &str, collected: &mut Collected) {
    let host = format!("autodiscover.{domain}");
    let Some(target) = url(&format!("http://{host}{POX_PATH}")) else {
        return;
    };
    let request = format!("GET {target}");
    let service = checker.target.service_url.clone();
    let (status, detail) = match send(checker, Method::GET, &target, None).await {
        Err(failure) => {
            collected.finding(
                CheckStatus::Error,
                format!("{target} cannot be reached ({failure}): Outlook's redirect step fails; the redirect site {} must listen on port 80", checker.target.hoster.redirect_host),
            );
            (CheckStatus::Error, failure.to_string())
        }
        Ok(response) => {
            let location = response
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            redirect_answer(
                domain,
                &target,
                &service,
                response.status,
                location,
                collected,
            )
        }
    };
    step(collected, request, status, detail);
}

fn redirect_answer(
    domain: &str,
    target: &Url,
    service: &Url,
    status: StatusCode,
    location: Option<String>,
    collected: &mut Collected,
) -> (CheckStatus, String) {
    let code = status.as_u16();
    if status != StatusCode::FOUND {
        collected.finding(
            CheckStatus::Wrong,
            format!("{target} answers HTTP {code}, not a 302 to {service}: the redirect site does not send {domain} to the service (is the domain added and active? autodisco domain show {domain})"),
        );
        return (CheckStatus::Wrong, format!("HTTP {code}"));
    }
    let location = location.unwrap_or_default();
    if url(&location).as_ref() != Some(service) {
        collected.finding(
            CheckStatus::Wrong,
            format!("{target} redirects to {location}, not to {service}: autodiscover.{domain} reaches another redirect site; point its CNAME at the hoster's redirect site"),
        );
        return (CheckStatus::Wrong, format!("302 to {location}"));
    }
    (CheckStatus::Ok, format!("302 to {location}"))
}

/// Step 4: the service answers an address in the domain.
async fn service(
    checker: &Checker,
    address: &EmailAddress,
    body: &Bytes,
    collected: &mut Collected,
) {
    let target = checker.target.service_url.clone();
    let request = format!("POST {target} for {address}");
    let (status, detail) = match send(checker, Method::POST, &target, Some(body)).await {
        Err(failure) => {
            collected.finding(
                CheckStatus::Error,
                format!("the service at {target} cannot be reached ({failure}): no client gets settings; check the service and its DNS name"),
            );
            (CheckStatus::Error, failure.to_string())
        }
        Ok(response) if response.status == StatusCode::UNAUTHORIZED => {
            service_v2(checker, address, collected).await
        }
        Ok(response) => match pox_answer(&response.body) {
            Ok(()) if response.status == StatusCode::OK => {
                (CheckStatus::Ok, "AutoDiscover settings".to_owned())
            }
            Ok(()) => not_served(
                &target,
                address,
                format!("HTTP {}", response.status.as_u16()),
                collected,
            ),
            Err(failure) => not_served(&target, address, failure.to_string(), collected),
        },
    };
    step(collected, request, status, detail);
}

/// With `auth = "basic"` the POX answer needs a password; Autodiscover v2 is anonymous and
/// answers only hosted addresses (404 `InvalidUser` otherwise).
async fn service_v2(
    checker: &Checker,
    address: &EmailAddress,
    collected: &mut Collected,
) -> (CheckStatus, String) {
    let mut target = checker.target.service_url.clone();
    target.set_path(&format!("/autodiscover/autodiscover.json/v1.0/{address}"));
    target.set_query(Some("Protocol=AutodiscoverV1"));
    match send(checker, Method::GET, &target, None).await {
        Ok(response) if response.status == StatusCode::OK => (
            CheckStatus::Ok,
            "HTTP 401 (auth = \"basic\"); Autodiscover v2 knows the address".to_owned(),
        ),
        Ok(response) => {
            let why = format!("Autodiscover v2 answers HTTP {}", response.status.as_u16());
            not_served(&target, address, why, collected)
        }
        Err(failure) => not_served(&target, address, failure.to_string(), collected),
    }
}

fn not_served(
    target: &Url,
    address: &EmailAddress,
    why: String,
    collected: &mut Collected,
) -> (CheckStatus, String) {
    let domain = address.domain();
    collected.finding(
        CheckStatus::Wrong,
        format!("the service at {target} does not answer {address} ({why}): {domain} is not served; add it or resume it (autodisco domain show {domain})"),
    );
    (CheckStatus::Wrong, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Url {
        Url::parse("https://autodiscover.hoster.example/autodiscover/autodiscover.xml").unwrap()
    }

    fn redirect(status: u16, location: Option<&str>) -> (CheckStatus, Vec<String>) {
        let target =
            Url::parse("http://autodiscover.c.example/autodiscover/autodiscover.xml").unwrap();
        let mut collected = Collected::default();
        let status = StatusCode::from_u16(status).unwrap();
        let location = location.map(str::to_owned);
        let (verdict, _) = redirect_answer(
            "c.example",
            &target,
            &service(),
            status,
            location,
            &mut collected,
        );
        let messages = collected.findings.into_iter().map(|f| f.message).collect();
        (verdict, messages)
    }

    #[test]
    fn only_a_302_to_the_service_passes() {
        let service = service().to_string();
        assert_eq!(redirect(302, Some(&service)), (CheckStatus::Ok, Vec::new()));
        // Outlook follows a 302 only ([MS-OXDISCO] 3.1.5.4).
        let (verdict, messages) = redirect(301, Some(&service));
        assert_eq!(verdict, CheckStatus::Wrong);
        assert!(
            messages[0].contains("answers HTTP 301, not a 302 to"),
            "{messages:?}"
        );
        let (verdict, messages) = redirect(302, Some("https://autodiscover.other.example/x"));
        assert_eq!(verdict, CheckStatus::Wrong);
        assert!(
            messages[0].contains("redirects to https://autodiscover.other.example/x, not to"),
            "{messages:?}"
        );
    }

    #[test]
    fn a_root_that_asks_for_a_password_stops_outlook() {
        let target = Url::parse("https://c.example/autodiscover/autodiscover.xml").unwrap();
        let mut collected = Collected::default();
        let response = HttpResponse {
            status: StatusCode::UNAUTHORIZED,
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
        };
        let (verdict, _) = root_answer("c.example", &target, &response, &mut collected);
        assert_eq!(verdict, CheckStatus::Wrong);
        assert!(
            collected.findings[0]
                .message
                .contains("asks for a password (HTTP 401)")
        );
        let response = HttpResponse {
            status: StatusCode::NOT_FOUND,
            ..response
        };
        let mut collected = Collected::default();
        let (verdict, _) = root_answer("c.example", &target, &response, &mut collected);
        assert_eq!(verdict, CheckStatus::Ok);
        assert!(collected.findings.is_empty());
    }
}
