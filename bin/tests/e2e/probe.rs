//! `autodisco probe` against the seed played on loopback: a DNS server (hickory-server) serves
//! the customer and hoster zones, the project's own server runs its redirect site on port 80 and
//! its HTTPS service on port 443 of separate loopback addresses with a test CA, and the real
//! binary probes, as a user's mail client would, with names resolved through DNS at the URLs real
//! clients use (no ports in them).
//!
//! Every test claims its own `127.X.Y.0/24` ([`LoopbackBlock`]), so tests run in parallel.
//! `probe_safety` holds the credential, certificate and blackhole scenarios.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use autodisco_directory::{Actor, Redirect, UserOverride};
use autodisco_proto::{Domain, EmailAddress};
use autodisco_test_support::dns::{TestDns, Zone};
use autodisco_test_support::{Backend, LoopbackBlock, TestServer};
use serde_json::Value;

/// Host numbers in a test's block.
pub(crate) mod host {
    /// The HTTPS service, `autodiscover.hoster.example`, port 443.
    pub(crate) const SERVICE: u8 = 2;
    /// The redirect site, `autodiscoverredirect.hoster.example`, port 80.
    pub(crate) const REDIRECT: u8 = 3;
    /// `customer.example`: nothing listens.
    pub(crate) const CUSTOMER_ROOT: u8 = 10;
    /// `business.example`: nothing listens.
    pub(crate) const BUSINESS_ROOT: u8 = 11;
    /// `srvonly.example`: nothing listens.
    pub(crate) const SRVONLY_ROOT: u8 = 12;
    /// `proxyredirect.hoster.example`: a recording proxy to the redirect site, when a test
    /// starts one.
    pub(crate) const PROXY_REDIRECT: u8 = 13;
    /// `challenge.hoster.example`: a plain-HTTP server asking for credentials, when started.
    pub(crate) const CHALLENGE: u8 = 14;
    /// `creds.example`, when started.
    pub(crate) const CREDS_ROOT: u8 = 15;
    /// `hosted.example`, when started.
    pub(crate) const HOSTED_ROOT: u8 = 16;
    /// `foreign.example`, when started.
    pub(crate) const FOREIGN_ROOT: u8 = 18;
    /// `redirect.attacker.example`, when started.
    pub(crate) const ATTACKER_REDIRECT: u8 = 19;
    /// `autodiscover.other.example`, when started.
    pub(crate) const OTHER_SERVICE: u8 = 20;
    /// `autodiscover.attacker.example`, when started.
    pub(crate) const ATTACKER_SERVICE: u8 = 21;
    /// `autoconfig.differ.example`: a plain-HTTP server with another autoconfig document,
    /// when started.
    pub(crate) const DIFFER_AUTOCONFIG: u8 = 22;
    /// `slow.example`: the blackhole, when started.
    pub(crate) const SLOW_ROOT: u8 = 30;
    /// `wrongcert.example`: nothing listens.
    pub(crate) const WRONGCERT_ROOT: u8 = 31;
    /// The DNS server.
    pub(crate) const DNS: u8 = 53;
}

/// Users `hop0@customer.example` .. `hop{HOPS}`: each redirects to the next by address.
const HOPS: usize = 12;

/// The seed on loopback.
pub(crate) struct Seed {
    pub(crate) block: LoopbackBlock,
    pub(crate) server: TestServer,
    pub(crate) dns: TestDns,
    folder: tempfile::TempDir,
    ca_file: PathBuf,
}

/// One run of the probe binary.
#[derive(Debug)]
pub(crate) struct ProbeRun {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl ProbeRun {
    /// The `--json` report.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// The trace entries of a report.
pub(crate) fn trace(report: &Value) -> &Vec<Value> {
    report["trace"].as_array().expect("trace")
}

/// The entries whose outcome is a failure of `kind`.
pub(crate) fn failures<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    trace(report)
        .iter()
        .filter(|e| e["outcome"]["result"] == "failed" && e["outcome"]["failure"]["kind"] == kind)
        .collect()
}

impl Seed {
    /// Starts DNS, the real server and the directory content every probe test uses.
    pub(crate) async fn start() -> Self {
        let block = LoopbackBlock::claim();
        let server = TestServer::start_on(
            Backend::Sqlite,
            crate::PROFILES,
            block.addr(host::REDIRECT, 80),
            block.addr(host::SERVICE, 443),
        )
        .await;
        let redirect_target = "autodiscoverredirect.hoster.example";
        let service = "autodiscover.hoster.example";
        let v4 = |n| block.v4(n);
        let zones = vec![
            Zone::new("hoster.example")
                .a("autodiscover", v4(host::SERVICE))
                .a("autodiscoverredirect", v4(host::REDIRECT))
                .a("proxyredirect", v4(host::PROXY_REDIRECT))
                .a("challenge", v4(host::CHALLENGE))
                .a("mx", v4(host::SERVICE))
                .a("mail", v4(host::SERVICE))
                // The autoconfig MX path: the HTTPS service answers autoconfig.HOSTER.
                .a("autoconfig", v4(host::SERVICE))
                .mx("@", 10, "mx.hoster.example"),
            // The seed: the root is the customer's own web site, autodiscover is a CNAME to the
            // hoster's redirect site, and the SRV record names the hoster's service.
            Zone::new("customer.example")
                .a("@", v4(host::CUSTOMER_ROOT))
                .cname("autodiscover", redirect_target)
                .srv("_autodiscover._tcp", 0, 0, 443, service)
                // Thunderbird's plain-HTTP autoconfig candidate reaches the redirect site.
                .cname("autoconfig", redirect_target)
                .mx("@", 10, "mx.hoster.example"),
            // Straight at the service: autodiscover.direct.example has a certificate there.
            Zone::new("direct.example")
                .a("autodiscover", v4(host::SERVICE))
                .mx("@", 10, "mx.hoster.example"),
            // Nothing but MX: only the autoconfig MX path finds settings.
            Zone::new("mxonly.example").mx("@", 10, "mail.hoster.example"),
            // POX through the redirect site; autoconfig from a server of its own.
            Zone::new("differ.example")
                .cname("autodiscover", redirect_target)
                .a("autoconfig", v4(host::DIFFER_AUTOCONFIG)),
            Zone::new("business.example")
                .a("@", v4(host::BUSINESS_ROOT))
                .cname("autodiscover", redirect_target)
                .mx("@", 10, "mx.hoster.example"),
            // Only SRV: no autodiscover name at all. The port-8443 record is ignored, the
            // priority-10 one is not tried.
            Zone::new("srvonly.example")
                .a("@", v4(host::SRVONLY_ROOT))
                .srv("_autodiscover._tcp", 0, 0, 8443, "alt.hoster.example")
                .srv("_autodiscover._tcp", 10, 0, 443, "backup.hoster.example")
                .srv("_autodiscover._tcp", 0, 5, 443, service)
                .mx("@", 10, "mx.hoster.example"),
            Zone::new("slow.example")
                .a("@", v4(host::SLOW_ROOT))
                .cname("autodiscover", redirect_target),
            // A customer who pointed autodiscover straight at the hoster's HTTPS address, whose
            // certificate does not cover autodiscover.wrongcert.example.
            Zone::new("wrongcert.example")
                .a("@", v4(host::WRONGCERT_ROOT))
                .a("autodiscover", v4(host::SERVICE)),
            Zone::new("plain.example").cname("autodiscover", "challenge.hoster.example"),
            Zone::new("hosted.example")
                .a("@", v4(host::HOSTED_ROOT))
                .cname("autodiscover", "proxyredirect.hoster.example"),
            Zone::new("creds.example").a("@", v4(host::CREDS_ROOT)),
            Zone::new("foreign.example").a("@", v4(host::FOREIGN_ROOT)),
            Zone::new("evil.example").cname("autodiscover", "redirect.attacker.example"),
            Zone::new("attacker.example")
                .a("redirect", v4(host::ATTACKER_REDIRECT))
                .a("autodiscover", v4(host::ATTACKER_SERVICE)),
            Zone::new("other.example").a("autodiscover", v4(host::OTHER_SERVICE)),
        ];
        let dns = TestDns::start(block.ip(host::DNS), zones).await;

        let store = &server.store;
        let domain = |name: &str| Domain::parse(name).unwrap();
        let address = |text: &str| EmailAddress::parse(text).unwrap();
        for (name, profile) in [
            ("customer.example", "default"),
            ("business.example", "business"),
            ("srvonly.example", "default"),
            ("slow.example", "default"),
            ("wrongcert.example", "default"),
            ("hosted.example", "default"),
            ("direct.example", "default"),
            ("mxonly.example", "default"),
            ("differ.example", "default"),
        ] {
            store
                .add_domain(&Actor::Cli, &domain(name), profile)
                .await
                .unwrap();
        }
        let mut jane = UserOverride::new(address("jane@customer.example"));
        jane.display_name = Some("Jane Doe".into());
        store.put_user(&Actor::Cli, &jane).await.unwrap();
        let mut users = vec![
            (
                "moved@customer.example",
                Redirect::Address(address("moved@business.example")),
            ),
            (
                "elsewhere@customer.example",
                Redirect::Url(
                    "https://autodiscover.other.example/autodiscover/autodiscover.xml".into(),
                ),
            ),
            (
                "loop@customer.example",
                Redirect::Url(
                    "https://autodiscover.hoster.example/autodiscover/autodiscover.xml".into(),
                ),
            ),
        ];
        let hops: Vec<(String, Redirect)> = (0..HOPS)
            .map(|i| {
                (
                    format!("hop{i}@customer.example"),
                    Redirect::Address(address(&format!("hop{}@customer.example", i + 1))),
                )
            })
            .collect();
        users.extend(hops.iter().map(|(a, r)| (a.as_str(), r.clone())));
        for (user, redirect) in users {
            let mut user = UserOverride::new(address(user));
            user.redirect = Some(redirect);
            store.put_user(&Actor::Cli, &user).await.unwrap();
        }
        server.refresh().await;

        let folder = tempfile::tempdir().unwrap();
        let ca_file = folder.path().join("ca.pem");
        std::fs::write(&ca_file, server.ca.cert_pem()).unwrap();
        Self {
            block,
            server,
            dns,
            folder,
            ca_file,
        }
    }

    /// The trust file the probe reads and writes (never the user's real one).
    pub(crate) fn trust_file(&self) -> PathBuf {
        self.folder.path().join("trusted-hosts")
    }

    /// Runs `autodisco probe ADDRESS --dns DNS --ca CA --step-timeout 3s ARGS...` without a
    /// terminal, with `env` added.
    pub(crate) async fn probe(
        &self,
        address: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ProbeRun {
        let mut command = Command::new(env!("CARGO_BIN_EXE_autodisco"));
        command
            .args(["probe", address, "--dns"])
            .arg(self.dns.address().to_string())
            .arg("--ca")
            .arg(&self.ca_file)
            .args(["--step-timeout", "3s"])
            .args(args)
            .env("RUST_LOG", "warn")
            .env("AUTODISCO_TRUST_FILE", self.trust_file())
            .env_remove("AUTODISCO_PASSWORD")
            .stdin(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let output = tokio::task::spawn_blocking(move || command.output().expect("run the probe"))
            .await
            .unwrap();
        ProbeRun {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_finds_settings_through_the_http_redirect_with_consent() {
    let seed = Seed::start().await;
    let run = seed
        .probe("jane@customer.example", &["--yes", "--json"], &[])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["found"], true);
    assert_eq!(report["via"], "http_redirect");
    assert_eq!(
        report["url"],
        "https://autodiscover.hoster.example/autodiscover/autodiscover.xml"
    );
    assert_eq!(report["redirections"], 1);
    let settings = &report["settings"];
    assert_eq!(settings["user"]["display_name"], "Jane Doe");
    assert_eq!(settings["user"]["smtp_address"], "jane@customer.example");
    let imap = &settings["incoming"][0];
    assert_eq!(
        (
            &imap["protocol"],
            &imap["host"],
            &imap["port"],
            &imap["security"]
        ),
        (
            &"IMAP".into(),
            &"imap.hoster.example".into(),
            &993.into(),
            &"tls".into()
        )
    );
    let smtp = &settings["outgoing"][0];
    assert_eq!(
        (&smtp["port"], &smtp["security"]),
        (&587.into(), &"starttls".into())
    );
    assert_eq!(
        settings["ews"]["url"],
        "https://mail.hoster.example/EWS/Exchange.asmx"
    );
    assert_eq!(
        settings["free_busy_url"],
        "https://mail.hoster.example/EWS/Availability.asmx"
    );
    assert_eq!(
        settings["out_of_office_url"],
        "https://mail.hoster.example/EWS/OOF.asmx"
    );
    assert_eq!(
        settings["oab_url"],
        "https://mail.hoster.example/OAB/customer.example/"
    );
    // The default plan has no ActiveSync: the mobilesync question gets error 601.
    assert_eq!(settings["activesync"]["status"], "not_offered");

    // The trace tells the seed's story: the root refuses, the autodiscover name is a CNAME to the
    // redirect site whose port 443 is closed, the GET gets a 302, consent, the POST answers.
    let entries = trace(&report);
    let root = entries
        .iter()
        .find(|e| e["step"] == "root")
        .expect("step 1");
    assert_eq!(root["outcome"]["failure"]["kind"], "connect", "{root}");
    let step2 = entries
        .iter()
        .find(|e| e["step"] == "autodiscover_host")
        .expect("step 2");
    assert_eq!(step2["outcome"]["failure"]["kind"], "connect", "{step2}");
    assert!(
        step2["dns"][0]
            .as_str()
            .unwrap()
            .contains("autodiscover.customer.example CNAME autodiscoverredirect.hoster.example"),
        "{step2}"
    );
    let get = entries
        .iter()
        .find(|e| {
            e["request"]
                .as_str()
                .unwrap()
                .starts_with("GET http://autodiscover.customer.example/")
        })
        .expect("the GET of step 3");
    assert_eq!(get["outcome"]["result"], "http_redirect");
    assert_eq!(get["outcome"]["status"], 302);
    assert!(get["notes"].as_array().unwrap().is_empty(), "{get}");
    let consent = entries
        .iter()
        .find(|e| e["outcome"]["result"] == "consent")
        .expect("consent");
    assert_eq!(consent["outcome"]["allowed"], true);
    assert_eq!(consent["outcome"]["detail"], "--yes");
    assert!(entries.iter().any(|e| e["outcome"]["result"] == "settings"
        && e["request"]
            == "POST https://autodiscover.hoster.example/autodiscover/autodiscover.xml"));

    // The same as text: a trace, then the settings in sections.
    let run = seed.probe("jane@customer.example", &["--yes"], &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let text = &run.stdout;
    for expected in [
        "Trace",
        "GET http://autodiscover.customer.example/autodiscover/autodiscover.xml",
        "dns: autodiscover.customer.example CNAME autodiscoverredirect.hoster.example",
        "302 redirect to https://autodiscover.hoster.example/autodiscover/autodiscover.xml",
        "FOUND: settings for jane@customer.example",
        "Incoming mail\n  IMAP  imap.hoster.example:993  tls",
        "Outgoing mail\n  SMTP  smtp.hoster.example:587  starttls",
        "Exchange Web Services\n  EWS                   https://mail.hoster.example/EWS/Exchange.asmx",
        "Free/busy\n  https://mail.hoster.example/EWS/Availability.asmx",
        "Out of office\n  https://mail.hoster.example/EWS/OOF.asmx",
        "Offline address book\n  https://mail.hoster.example/OAB/customer.example/",
        "ActiveSync\n  (none: no ActiveSync service",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_refuses_the_redirect_without_consent() {
    let seed = Seed::start().await;
    // No terminal, no --yes, no --trust: the redirect (and the SRV target) are refused.
    let run = seed.probe("jane@customer.example", &["--json"], &[]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["found"], false);
    let refusals: Vec<&Value> = trace(&report)
        .iter()
        .filter(|e| e["outcome"]["result"] == "consent")
        .collect();
    assert!(!refusals.is_empty());
    for refusal in &refusals {
        assert_eq!(refusal["outcome"]["allowed"], false, "{refusal}");
        assert!(
            refusal["outcome"]["detail"]
                .as_str()
                .unwrap()
                .contains("no terminal to ask"),
            "{refusal}"
        );
    }
    assert!(
        !trace(&report).iter().any(|e| e["request"]
            .as_str()
            .unwrap()
            .starts_with("POST https://autodiscover.hoster.example")),
        "the service was asked without consent: {report:#}"
    );
    assert!(
        report["conclusion"]
            .as_str()
            .unwrap()
            .contains("not followed without consent"),
        "{}",
        report["conclusion"]
    );

    // --trust for the host, or the host in the trust file, allows it; another host does not.
    let run = seed
        .probe(
            "jane@customer.example",
            &["--trust", "Autodiscover.Hoster.Example"],
            &[],
        )
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("--trust autodiscover.hoster.example"),
        "{}",
        run.stdout
    );
    let run = seed
        .probe("jane@customer.example", &["--trust", "hoster.example"], &[])
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    std::fs::write(
        seed.trust_file(),
        "# hosts allowed always\nautodiscover.hoster.example\n",
    )
    .unwrap();
    let run = seed.probe("jane@customer.example", &[], &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("is trusted in"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_follows_redirect_addr() {
    let seed = Seed::start().await;
    let run = seed
        .probe("moved@customer.example", &["--yes", "--json"], &[])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["address"], "moved@customer.example");
    assert_eq!(report["final_address"], "moved@business.example");
    // The GET's 302, the redirectAddr, and the GET's 302 for business.example.
    assert_eq!(report["redirections"], 3);
    assert!(
        trace(&report)
            .iter()
            .any(|e| e["outcome"]["result"] == "redirect_addr"
                && e["outcome"]["address"] == "moved@business.example")
    );
    let settings = &report["settings"];
    let pop = &settings["incoming"][0];
    assert_eq!(
        (
            &pop["protocol"],
            &pop["host"],
            &pop["port"],
            &pop["login_name"]
        ),
        (
            &"POP3".into(),
            &"pop.hoster.example".into(),
            &995.into(),
            &"moved".into()
        )
    );
    assert_eq!(
        settings["ews"]["outlook_anywhere_server"],
        "rpc.hoster.example"
    );
    assert_eq!(
        settings["ews"]["mapi_http_mail_store"],
        "https://mapi.hoster.example/mapi/emsmdb/?MailboxId=moved@business.example"
    );
    // The business plan has ActiveSync.
    assert_eq!(settings["activesync"]["status"], "offered");
    assert_eq!(
        settings["activesync"]["url"],
        "https://mail.hoster.example/Microsoft-Server-ActiveSync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_follows_redirect_url_and_detects_loops() {
    use autodisco_proto::pox::{RenderOptions, render_answer};
    use autodisco_proto::{AccountSettings, Answer, ServiceProfile};
    use autodisco_test_support::recording::{RecordingServer, Reply};

    let seed = Seed::start().await;
    let answer = render_answer(
        &Answer::Settings(AccountSettings::new(
            EmailAddress::parse("elsewhere@customer.example").unwrap(),
            std::sync::Arc::new(ServiceProfile::default_for_hoster("other.example")),
        )),
        &RenderOptions::default(),
    );
    let other = RecordingServer::https(
        seed.block.addr(host::OTHER_SERVICE, 443),
        &seed.server.ca.issue(&["autodiscover.other.example"]),
        std::sync::Arc::new(move |_| Reply::xml(answer.clone())),
    )
    .await;

    // redirectUrl to another registrable domain needs consent: trusting only the hoster's
    // service is not enough, and the other host is never asked.
    let run = seed
        .probe(
            "elsewhere@customer.example",
            &["--trust", "autodiscover.hoster.example", "--json"],
            &[],
        )
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(other.requests().is_empty());
    let report = run.json();
    assert!(
        trace(&report)
            .iter()
            .any(|e| e["outcome"]["result"] == "redirect_url"
                && e["outcome"]["url"]
                    == "https://autodiscover.other.example/autodiscover/autodiscover.xml")
    );

    let run = seed
        .probe("elsewhere@customer.example", &["--yes", "--json"], &[])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(
        report["url"],
        "https://autodiscover.other.example/autodiscover/autodiscover.xml"
    );
    assert_eq!(
        report["settings"]["incoming"][0]["host"],
        "mail.other.example"
    );
    assert_eq!(report["redirections"], 2);
    // The server side saw the request exactly as Outlook sends it.
    let requests = other.requests();
    let post = requests
        .iter()
        .find(|r| r.method == "POST")
        .expect("a POST");
    assert_eq!(post.path, "/autodiscover/autodiscover.xml");
    assert_eq!(post.header("content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(post.header("host"), Some("autodiscover.other.example"));
    assert!(
        post.body
            .contains("<EMailAddress>elsewhere@customer.example</EMailAddress>"),
        "{}",
        post.body
    );
    assert!(post.body.contains("responseschema/2006a"), "{}", post.body);

    // A redirectUrl back to the URL that sent it is a loop.
    let run = seed
        .probe("loop@customer.example", &["--yes", "--json"], &[])
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert!(!failures(&report, "loop").is_empty(), "{report:#}");
    assert!(run.stdout.contains("redirection loop"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_stops_after_ten_redirections() {
    let seed = Seed::start().await;
    let run = seed
        .probe("hop0@customer.example", &["--yes", "--json"], &[])
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["found"], false);
    assert!(
        !failures(&report, "too_many_redirections").is_empty(),
        "{report:#}"
    );
    assert!(
        report["conclusion"]
            .as_str()
            .unwrap()
            .contains("more than 10 redirections"),
        "{}",
        report["conclusion"]
    );
    // Each address costs two redirections (the GET's 302 and the redirectAddr): hop0 to hop5
    // are asked, hop6 never is.
    let asked = |address: &str| trace(&report).iter().any(|e| e["address"] == address);
    assert!(asked("hop5@customer.example"));
    assert!(!asked("hop6@customer.example"));
    assert!(report["redirections"].as_u64().unwrap() <= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_finds_a_domain_by_srv_alone() {
    let seed = Seed::start().await;
    let run = seed
        .probe("jane@srvonly.example", &["--yes", "--json"], &[])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["via"], "srv");
    assert_eq!(
        report["url"],
        "https://autodiscover.hoster.example/autodiscover/autodiscover.xml"
    );
    let entries = trace(&report);
    // No autodiscover name at all: steps 2 and 3 fail on DNS.
    assert!(
        entries.iter().any(|e| e["step"] == "autodiscover_host"
            && e["outcome"]["failure"]["kind"] == "no_such_name")
    );
    let srv = entries
        .iter()
        .find(|e| e["outcome"]["result"] == "srv_target")
        .expect("the SRV entry");
    assert_eq!(srv["request"], "SRV _autodiscover._tcp.srvonly.example");
    let notes: Vec<&str> = srv["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("port 8443") && n.contains("ignored")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("backup.hoster.example") && n.contains("not tried")),
        "{notes:?}"
    );
    let consent = entries
        .iter()
        .find(|e| e["outcome"]["result"] == "consent")
        .expect("consent");
    assert!(
        consent["notes"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Outlook asks")
    );
    assert_eq!(
        report["settings"]["incoming"][0]["host"],
        "imap.hoster.example"
    );

    // --resolve pins a name as curl does: here to an address where nothing listens.
    let nowhere = seed.block.addr(250, 4443).to_string();
    let pin = format!("autodiscover.hoster.example:443:{nowhere}");
    let run = seed
        .probe(
            "jane@srvonly.example",
            &["--yes", "--json", "--resolve", &pin],
            &[],
        )
        .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let pinned = failures(&report, "connect")
        .into_iter()
        .find(|e| e["step"] == "srv")
        .expect("the SRV target failed to connect");
    assert_eq!(
        pinned["dns"][0],
        format!("autodiscover.hoster.example:443 pinned to {nowhere}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_needs_no_config_and_refuses_bad_input_with_exit_2() {
    // The probe is dispatched before the config is read: a missing config file does not matter.
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_autodisco"))
            .args(["--config", "/nonexistent/autodisco.toml", "probe"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the probe")
    };
    // A mail domain that is a public suffix is never probed at all.
    let output = run(&["jane@co.uk"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("co.uk is a public suffix"), "{stderr}");
    let output = run(&["not-an-address"]);
    assert_eq!(output.status.code(), Some(2));
    let output = run(&["jane@customer.example", "--resolve", "nonsense"]);
    assert_eq!(output.status.code(), Some(2));
    let output = run(&["jane@customer.example", "--ca", "/nonexistent/ca.pem"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/ca.pem"));
    // --user without a terminal needs the password in the environment.
    let output = run(&["jane@customer.example", "--user", "jane"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("AUTODISCO_PASSWORD"));
    let help = run(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit codes: 0 settings found, 1 not found, 2 usage"),
        "{help}"
    );
}
