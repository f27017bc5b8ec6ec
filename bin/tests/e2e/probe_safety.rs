//! `autodisco probe` where it must be careful or fast: credentials go only where they may (the
//! server side checks that no `Authorization` header arrived anywhere else), a certificate that
//! does not cover the name is explained in words, and a domain root that accepts TCP and never
//! answers costs (almost) nothing.

use std::sync::Arc;
use std::time::Instant;

use autodisco_test_support::recording::{Blackhole, RecordedRequest, RecordingServer, Reply};
use base64::Engine as _;

use crate::probe::{Seed, failures, host, trace};

const PASSWORD: &str = "s3cret!";

fn basic(user: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"))
    )
}

fn with_authorization(requests: &[RecordedRequest]) -> usize {
    requests.iter().filter(|r| r.has_authorization()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_never_sends_credentials_over_plain_http() {
    let seed = Seed::start().await;
    // autodiscover.plain.example is a plain-HTTP server that asks for credentials.
    let challenge = RecordingServer::http(
        seed.block.addr(host::CHALLENGE, 80),
        Arc::new(|_| Reply::basic_challenge()),
    )
    .await;
    let run = seed
        .probe(
            "jane@plain.example",
            &["--yes", "--user", "jane@plain.example", "--json"],
            &[("AUTODISCO_PASSWORD", PASSWORD)],
        )
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let requests = challenge.requests();
    assert!(!requests.is_empty(), "the GET of step 3 was not made");
    assert_eq!(with_authorization(&requests), 0, "{requests:?}");
    let report = run.json();
    let refused = failures(&report, "unauthorized");
    assert!(
        refused
            .iter()
            .any(|e| e["summary"].as_str().unwrap().contains("plain HTTP")),
        "{report:#}"
    );
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_sends_credentials_to_the_mail_domain_but_not_to_the_redirect_site() {
    let seed = Seed::start().await;
    // hosted.example's own web site asks for credentials (allowed: it is the mail domain's
    // step-1 host over verified HTTPS), then has nothing.
    let root = RecordingServer::https(
        seed.block.addr(host::HOSTED_ROOT, 443),
        &seed.server.ca.issue(&["hosted.example"]),
        Arc::new(|request: &RecordedRequest| {
            if request.has_authorization() {
                Reply::status(404)
            } else {
                Reply::basic_challenge()
            }
        }),
    )
    .await;
    // Its autodiscover name reaches the project's real redirect site through a recording proxy.
    let proxy = RecordingServer::http(
        seed.block.addr(host::PROXY_REDIRECT, 80),
        Arc::new({
            let upstream = seed.block.addr(host::REDIRECT, 80);
            move |_| Reply::Forward(upstream)
        }),
    )
    .await;
    let user = "jane@hosted.example";
    let run = seed
        .probe(
            user,
            &[
                "--trust",
                "autodiscover.hoster.example",
                "--user",
                user,
                "--json",
            ],
            &[("AUTODISCO_PASSWORD", PASSWORD)],
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["via"], "http_redirect");

    let root_requests = root.requests();
    assert_eq!(root_requests.len(), 2, "{root_requests:?}");
    assert!(!root_requests[0].has_authorization());
    assert_eq!(
        root_requests[1].header("authorization"),
        Some(basic(user).as_str())
    );
    let proxied = proxy.requests();
    assert!(!proxied.is_empty(), "the redirect site was not asked");
    assert_eq!(with_authorization(&proxied), 0, "{proxied:?}");
    assert!(
        trace(&report)
            .iter()
            .any(|e| e["outcome"]["result"] == "challenge")
    );
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_keeps_credentials_from_a_domain_reached_by_redirect_addr() {
    redirect_addr_keeps_credentials_from_the_new_domain(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_json_keeps_credentials_from_a_domain_reached_by_redirect_addr() {
    redirect_addr_keeps_credentials_from_the_new_domain(&["--dialect", "json"]).await;
}

/// creds.example (the user's own domain) asks for credentials, then sends the client to
/// jane@foreign.example, whose own host asks too: it was neither the user's domain nor consented
/// to, so it must not get them. In v2 (`dialect_args` `--dialect json`) each host answers
/// `autodiscover.json` with its own POX URL, so no consent is asked on the way.
async fn redirect_addr_keeps_credentials_from_the_new_domain(dialect_args: &[&str]) {
    let seed = Seed::start().await;
    let user = "jane@creds.example";
    let creds = RecordingServer::https(
        seed.block.addr(host::CREDS_ROOT, 443),
        &seed.server.ca.issue(&["creds.example"]),
        Arc::new(|request: &RecordedRequest| {
            if request.method == "GET" {
                v2_answer("https://creds.example/autodiscover/autodiscover.xml")
            } else if request.has_authorization() {
                Reply::xml(
                    autodisco_proto::pox::OutlookResponse::RedirectAddr(
                        autodisco_proto::EmailAddress::parse("jane@foreign.example").unwrap(),
                    )
                    .to_xml(),
                )
            } else {
                Reply::basic_challenge()
            }
        }),
    )
    .await;
    let foreign = RecordingServer::https(
        seed.block.addr(host::FOREIGN_ROOT, 443),
        &seed.server.ca.issue(&["foreign.example"]),
        Arc::new(|request: &RecordedRequest| {
            if request.method == "GET" {
                v2_answer("https://foreign.example/autodiscover/autodiscover.xml")
            } else {
                Reply::basic_challenge()
            }
        }),
    )
    .await;
    let mut args = vec!["--user", user, "--json"];
    args.extend_from_slice(dialect_args);
    let run = seed
        .probe(user, &args, &[("AUTODISCO_PASSWORD", PASSWORD)])
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(with_authorization(&creds.requests()), 1);
    let foreign_requests = foreign.requests();
    assert!(
        foreign_requests.iter().any(|r| r.method == "POST"),
        "foreign.example was not asked: {foreign_requests:?}"
    );
    assert_eq!(
        with_authorization(&foreign_requests),
        0,
        "{foreign_requests:?}"
    );
    let report = run.json();
    assert_eq!(report["final_address"], "jane@foreign.example");
    assert!(
        failures(&report, "unauthorized")
            .iter()
            .any(|e| e["summary"]
                .as_str()
                .unwrap()
                .contains("credentials are not sent to foreign.example")),
        "{report:#}"
    );
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_never_contacts_an_unconsented_redirect_target() {
    let seed = Seed::start().await;
    // autodiscover.evil.example points to an attacker's redirect site, which sends the client to
    // the attacker's HTTPS server (with a valid certificate) asking for credentials.
    let _redirect = RecordingServer::http(
        seed.block.addr(host::ATTACKER_REDIRECT, 80),
        Arc::new(|_| {
            Reply::redirect(
                302,
                "https://autodiscover.attacker.example/autodiscover/autodiscover.xml",
            )
        }),
    )
    .await;
    let attacker = RecordingServer::https(
        seed.block.addr(host::ATTACKER_SERVICE, 443),
        &seed.server.ca.issue(&["autodiscover.attacker.example"]),
        Arc::new(|_| Reply::basic_challenge()),
    )
    .await;
    let user = "jane@evil.example";
    let env = [("AUTODISCO_PASSWORD", PASSWORD)];
    let run = seed.probe(user, &["--user", user, "--json"], &env).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(attacker.requests().is_empty(), "{:?}", attacker.requests());

    // Once the user consents to that host, it is trusted like the user's own: it gets the
    // challenge answered (and refuses the credentials, here).
    let run = seed
        .probe(
            user,
            &[
                "--trust",
                "autodiscover.attacker.example",
                "--user",
                user,
                "--json",
            ],
            &env,
        )
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let requests = attacker.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[1].header("authorization"),
        Some(basic(user).as_str())
    );
    assert!(
        failures(&run.json(), "unauthorized")
            .iter()
            .any(|e| e["summary"].as_str().unwrap().contains("refused")),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_diagnoses_a_certificate_that_does_not_cover_the_name() {
    let seed = Seed::start().await;
    // autodiscover.wrongcert.example points straight at the hoster's HTTPS service, whose
    // certificate names only autodiscover.hoster.example.
    let run = seed.probe("jane@wrongcert.example", &[], &[]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "the certificate of autodiscover.wrongcert.example covers only autodiscover.hoster.example"
        ),
        "{}",
        run.stdout
    );
    let run = seed.probe("jane@wrongcert.example", &["--json"], &[]).await;
    let report = run.json();
    let tls = failures(&report, "tls");
    assert_eq!(tls.len(), 1, "{report:#}");
    assert_eq!(
        tls[0]["outcome"]["failure"]["certificate_names"],
        serde_json::json!(["autodiscover.hoster.example"])
    );
    assert_eq!(tls[0]["step"], "autodiscover_host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_completes_past_a_blackholed_domain_root_within_the_step_timeout() {
    let seed = Seed::start().await;
    // slow.example's root accepts TCP on 443 and never says a word.
    let _blackhole = Blackhole::start(seed.block.addr(host::SLOW_ROOT, 443)).await;
    let started = Instant::now();
    let run = seed
        .probe(
            "jane@slow.example",
            &["--yes", "--json", "--step-timeout", "5s"],
            &[],
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["via"], "http_redirect");
    // Outlook would wait out the root's timeout (5 s here) first; the probe finishes well
    // within one step timeout.
    assert!(
        report["elapsed_ms"].as_u64().unwrap() < 2500,
        "took {} ms",
        report["elapsed_ms"]
    );
    assert!(elapsed.as_millis() < 5000, "took {elapsed:?}");
    let root = trace(&report)
        .iter()
        .find(|e| e["step"] == "root")
        .expect("step 1 is in the trace");
    assert_eq!(root["outcome"]["result"], "abandoned", "{root}");
    assert!(
        root["summary"].as_str().unwrap().contains("TLS handshake"),
        "{root}"
    );
}

/// A 200 with a JSON body.
fn json_reply(body: String) -> Reply {
    Reply::Respond {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    }
}

/// An Autodiscover v2 answer naming `url` as the AutodiscoverV1 URL.
fn v2_answer(url: &str) -> Reply {
    json_reply(serde_json::json!({ "Protocol": "AutodiscoverV1", "Url": url }).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_escapes_control_characters_from_a_hostile_server() {
    let seed = Seed::start().await;
    // The answer tries to set the terminal's title, ring the bell, wipe the line and print a
    // fake verdict on a line of its own.
    let hostile = "x\u{1b}]0;pwned\u{7}\r\u{1b}[2KFOUND: all good\n\u{9b}31m";
    let _foreign = RecordingServer::https(
        seed.block.addr(host::FOREIGN_ROOT, 443),
        &seed.server.ca.issue(&["foreign.example"]),
        Arc::new(move |_: &RecordedRequest| v2_answer(hostile)),
    )
    .await;
    let run = seed
        .probe("jane@foreign.example", &["--dialect", "json"], &[])
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let shown: Vec<char> = run
        .stdout
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(shown.is_empty(), "{shown:?} in {:?}", run.stdout);
    assert!(
        run.stdout
            .contains("x\\u{1b}]0;pwned\\u{7}\\r\\u{1b}[2KFOUND: all good\\n\\u{9b}31m"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.lines().any(|line| line.starts_with("FOUND")),
        "{}",
        run.stdout
    );
    // The JSON report keeps the text as it came, escaped by JSON itself.
    let run = seed
        .probe(
            "jane@foreign.example",
            &["--dialect", "json", "--json"],
            &[],
        )
        .await;
    let report = run.json();
    assert!(
        trace(&report)
            .iter()
            .any(|e| e["outcome"]["url"].as_str() == Some(hostile)),
        "{report:#}"
    );
}
