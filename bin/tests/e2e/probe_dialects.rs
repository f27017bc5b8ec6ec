//! `autodisco probe --dialect`: SOAP as the EWS libraries, JSON as current Outlook, autoconfig as
//! Thunderbird (with the MX path), and all of them compared, against the seed on loopback.

use std::sync::Arc;

use autodisco_test_support::recording::{RecordingServer, Reply};
use serde_json::Value;

use crate::probe::{Seed, host, trace};

/// The first IMAP server of a report: (host, port, security).
fn imap(report: &Value) -> (String, u64, String) {
    let server = report["settings"]["incoming"]
        .as_array()
        .expect("incoming servers")
        .iter()
        .find(|s| s["protocol"] == "IMAP")
        .unwrap_or_else(|| panic!("no IMAP server: {report}"));
    (
        server["host"].as_str().unwrap().to_owned(),
        server["port"].as_u64().unwrap(),
        server["security"].as_str().unwrap().to_owned(),
    )
}

fn expected_imap() -> (String, u64, String) {
    ("imap.hoster.example".to_owned(), 993, "tls".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dialect_finds_the_same_imap_host() {
    let seed = Seed::start().await;
    let address = "jane@customer.example";

    let pox = seed.probe(address, &["--yes", "--json"], &[]).await;
    assert_eq!(pox.code, 0, "{}\n{}", pox.stdout, pox.stderr);
    let pox = pox.json();
    assert_eq!(pox["dialect"], "pox");
    assert_eq!(imap(&pox), expected_imap());

    // SOAP through the redirect site: the 302 gives the host, the .svc URL is asked there.
    let soap = seed
        .probe(address, &["--yes", "--json", "--dialect", "soap"], &[])
        .await;
    assert_eq!(soap.code, 0, "{}\n{}", soap.stdout, soap.stderr);
    let soap = soap.json();
    assert_eq!(soap["dialect"], "soap");
    assert_eq!(soap["via"], "http_redirect");
    assert_eq!(
        soap["url"],
        "https://autodiscover.hoster.example/autodiscover/autodiscover.svc"
    );
    assert_eq!(imap(&soap), expected_imap());
    assert_eq!(
        soap["settings"]["ews"]["url"],
        "https://mail.hoster.example/EWS/Exchange.asmx"
    );
    assert_eq!(soap["settings"]["user"]["display_name"], "Jane Doe");

    // Autoconfig: the https candidates fail, the plain-HTTP one reaches the redirect site.
    let autoconfig = seed
        .probe(address, &["--json", "--dialect", "autoconfig"], &[])
        .await;
    assert_eq!(
        autoconfig.code, 0,
        "{}\n{}",
        autoconfig.stdout, autoconfig.stderr
    );
    let autoconfig = autoconfig.json();
    assert_eq!(autoconfig["via"], "autoconfig_plain_http");
    assert_eq!(
        autoconfig["url"],
        "http://autoconfig.customer.example/mail/config-v1.1.xml?emailaddress=jane%40customer.example"
    );
    assert_eq!(imap(&autoconfig), expected_imap());
    assert_eq!(
        autoconfig["settings"]["incoming"][0]["login_name"],
        "jane@customer.example"
    );

    // JSON: autodiscover.direct.example answers v2, then POX at the AutodiscoverV1 URL (on
    // another registrable domain: consent).
    let json = seed
        .probe(
            "joe@direct.example",
            &["--yes", "--json", "--dialect", "json"],
            &[],
        )
        .await;
    assert_eq!(json.code, 0, "{}\n{}", json.stdout, json.stderr);
    let json = json.json();
    assert_eq!(json["via"], "autodiscover_host");
    assert_eq!(
        json["url"],
        "https://autodiscover.hoster.example/autodiscover/autodiscover.xml"
    );
    assert_eq!(imap(&json), expected_imap());
    let service_urls: Vec<&Value> = trace(&json)
        .iter()
        .filter(|e| e["outcome"]["result"] == "service_url")
        .collect();
    assert!(
        service_urls
            .iter()
            .any(|e| e["outcome"]["protocol"] == "AutodiscoverV1"),
        "{json}"
    );
    assert!(
        service_urls
            .iter()
            .any(|e| e["outcome"]["protocol"] == "EWS"
                && e["outcome"]["url"] == "https://mail.hoster.example/EWS/Exchange.asmx"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoconfig_finds_settings_through_mx_alone() {
    let seed = Seed::start().await;
    let run = seed
        .probe(
            "ann@mxonly.example",
            &["--json", "--dialect", "autoconfig"],
            &[],
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["via"], "autoconfig_mx");
    assert_eq!(
        report["url"],
        "https://autoconfig.hoster.example/mail/config-v1.1.xml?emailaddress=ann%40mxonly.example"
    );
    assert_eq!(imap(&report), expected_imap());
    let mx = trace(&report)
        .iter()
        .find(|e| e["outcome"]["result"] == "mx_host")
        .expect("the MX entry");
    assert_eq!(mx["outcome"]["host"], "mail.hoster.example");
    // No autoconfig request ever carries credentials: none were given, and the text output
    // names the MX path.
    let text = seed
        .probe("ann@mxonly.example", &["--dialect", "autoconfig"], &[])
        .await;
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    assert!(text.stdout.contains("ac-mx"), "{}", text.stdout);
    assert!(
        text.stdout.contains("imap.hoster.example:993"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_dialects_agree_on_a_consistent_profile() {
    let seed = Seed::start().await;
    let run = seed
        .probe(
            "joe@direct.example",
            &["--yes", "--json", "--dialect", "all", "--no-activesync"],
            &[],
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let comparison = run.json();
    let reports = comparison["reports"].as_array().expect("reports");
    let dialects: Vec<&str> = reports
        .iter()
        .map(|r| r["dialect"].as_str().unwrap())
        .collect();
    assert_eq!(dialects, ["pox", "soap", "json", "autoconfig"]);
    for report in reports {
        assert_eq!(report["found"], true, "{report}");
        assert_eq!(imap(report), expected_imap(), "{}", report["dialect"]);
    }
    assert_eq!(
        comparison["disagreements"].as_array().unwrap().len(),
        0,
        "{comparison}"
    );
    let text = seed
        .probe(
            "joe@direct.example",
            &["--yes", "--dialect", "all", "--no-activesync"],
            &[],
        )
        .await;
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    assert!(text.stdout.contains("Side by side"), "{}", text.stdout);
    assert!(text.stdout.contains("No disagreements."), "{}", text.stdout);
    assert!(text.stdout.contains("they agree"), "{}", text.stdout);
}

/// An autoconfig document that names another IMAP host than the profile.
const OTHER_AUTOCONFIG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="differ.example">
    <domain>differ.example</domain>
    <displayName>Differ</displayName>
    <incomingServer type="imap">
      <hostname>imap.elsewhere.example</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.hoster.example</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_dialects_report_a_disagreement() {
    let seed = Seed::start().await;
    let _autoconfig = RecordingServer::http(
        seed.block.addr(host::DIFFER_AUTOCONFIG, 80),
        Arc::new(|_| Reply::xml(OTHER_AUTOCONFIG)),
    )
    .await;
    let run = seed
        .probe(
            "sam@differ.example",
            &["--yes", "--json", "--dialect", "all", "--no-activesync"],
            &[],
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let comparison = run.json();
    let disagreements = comparison["disagreements"].as_array().expect("list");
    let imap = disagreements
        .iter()
        .find(|d| d["setting"] == "IMAP server")
        .unwrap_or_else(|| panic!("no IMAP disagreement: {comparison}"));
    let values: Vec<(&str, &str)> = imap["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["dialect"].as_str().unwrap(), v["value"].as_str().unwrap()))
        .collect();
    assert!(
        values.contains(&("pox", "imap.hoster.example:993 tls")),
        "{values:?}"
    );
    assert!(
        values.contains(&("autoconfig", "imap.elsewhere.example:993 tls")),
        "{values:?}"
    );
    assert!(
        imap["text"]
            .as_str()
            .unwrap()
            .contains("autoconfig says imap.elsewhere.example:993 tls"),
        "{imap}"
    );
    assert!(
        comparison["conclusion"]
            .as_str()
            .unwrap()
            .contains("disagree on IMAP server"),
        "{comparison}"
    );
    // The text output says it in words, after every dialect's trace.
    let text = seed
        .probe("sam@differ.example", &["--yes", "--dialect", "all"], &[])
        .await;
    assert_eq!(text.code, 0, "{}\n{}", text.stdout, text.stderr);
    for heading in [
        "=== pox ===",
        "=== soap ===",
        "=== json ===",
        "=== autoconfig ===",
        "Disagreements",
    ] {
        assert!(text.stdout.contains(heading), "{heading}: {}", text.stdout);
    }
    assert!(
        text.stdout
            .contains("autoconfig says imap.elsewhere.example:993 tls"),
        "{}",
        text.stdout
    );
    // SMTP agrees, so it is not listed.
    assert!(
        !disagreements.iter().any(|d| d["setting"] == "SMTP server"),
        "{comparison}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soap_follows_redirect_address_like_pox() {
    let seed = Seed::start().await;
    let run = seed
        .probe(
            "moved@customer.example",
            &["--yes", "--json", "--dialect", "soap"],
            &[],
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(
        report["final_address"], "moved@business.example",
        "{report}"
    );
    assert!(report["redirections"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        trace(&report)
            .iter()
            .any(|e| e["outcome"]["result"] == "redirect_addr"
                && e["outcome"]["address"] == "moved@business.example"),
        "{report}"
    );
    // The business plan of business.example offers POP3.
    let incoming = &report["settings"]["incoming"][0];
    assert_eq!(
        (&incoming["protocol"], &incoming["host"], &incoming["port"]),
        (&"POP3".into(), &"pop.hoster.example".into(), &995.into()),
        "{report}"
    );
}
