//! `autodisco dns records` and `autodisco domain check` against a loopback DNS server holding
//! good, missing, wrong, looping and stale records, with the real server's redirect site on port
//! 80 and its HTTPS service on port 443 of a private loopback block: each finding's words, the
//! exit status of the real binary, and the stored health (`domain list --unhealthy`, `domain
//! show`) on SQLite and PostgreSQL.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use autodisco_directory::{Actor, DomainStatus};
use autodisco_proto::{Domain, DomainRecords, HosterNames, RecordData};
use autodisco_test_support::dns::{TestDns, Zone};
use autodisco_test_support::recording::Blackhole;
use autodisco_test_support::{Backend, LoopbackBlock, TestServer};
use serde_json::Value;

use crate::admin_api::Api;

/// Host numbers in the test's block.
mod host {
    /// The HTTPS service, `autodiscover.hoster.example`, port 443.
    pub(super) const SERVICE: u8 = 2;
    /// The redirect site, `autodiscoverredirect.hoster.example`, port 80.
    pub(super) const REDIRECT: u8 = 3;
    /// `mail.oldhost.example`, where nothing listens.
    pub(super) const OLDHOST: u8 = 40;
    /// `slow.example`: a blackhole on port 443, when a test starts one.
    pub(super) const SLOW_ROOT: u8 = 41;
    /// The DNS server.
    pub(super) const DNS: u8 = 53;
}

/// A profile PACC can publish (IMAP 993 and submission 465 with implicit TLS), with an MX.
const PACC_PROFILE: &str = r#"
[profiles.pacc]
display_name = "Hoster Example Mail"
mx = ["mx.hoster.example"]
imap = [{ host = "imap.hoster.example", port = 993, security = "tls" }]
smtp = [{ host = "smtp.hoster.example", port = 465, security = "tls" }]
"#;

/// The hosted domains, all on the PACC profile.
const DOMAINS: [&str; 9] = [
    "good.example",
    "missing.example",
    "wrong.example",
    "loop.example",
    "stale.example",
    "lost.zone.example",
    "certroot.example",
    "paused.example",
    "unserved.example",
];

/// The directory, DNS and the server on loopback.
struct Setup {
    block: LoopbackBlock,
    server: TestServer,
    dns: TestDns,
    _folder: tempfile::TempDir,
    ca_file: PathBuf,
}

/// One run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// What `DomainRecords` says `domain` publishes, as the CLI computes it.
fn expected(server: &TestServer, domain: &str) -> DomainRecords {
    let domain = Domain::parse(domain).unwrap();
    let profile = server.config.profiles["pacc"].clone();
    let hoster = HosterNames {
        redirect_host: server.config.redirect_host.to_string(),
        service_host: server.config.service_host.to_string(),
    };
    DomainRecords::compute(&domain, &domain, &profile, &hoster)
}

/// A zone holding exactly the records `domain` should publish, except those `skip` rejects.
fn good_zone(server: &TestServer, domain: &str, skip: impl Fn(&RecordData) -> bool) -> Zone {
    let mut zone = Zone::new(domain);
    for record in expected(server, domain).records {
        if skip(&record.data) {
            continue;
        }
        let owner = format!("{}.", record.name);
        zone = match record.data {
            RecordData::Cname { target } => zone.cname(&owner, &target),
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => zone.srv(&owner, priority, weight, port, &target),
            RecordData::Txt { text } => zone.txt(&owner, &text),
            RecordData::Mx {
                preference,
                exchange,
            } => zone.mx(&owner, preference, &exchange),
        };
    }
    zone
}

fn is_txt(data: &RecordData) -> bool {
    matches!(data, RecordData::Txt { .. })
}

/// Asserts that `text` contains `words`, showing the whole text when it does not.
fn contains(text: &str, words: &str) {
    assert!(text.contains(words), "no {words:?} in:\n{text}");
}

impl Setup {
    async fn start(backend: Backend) -> Self {
        let block = LoopbackBlock::claim();
        let extra = format!("{}\n{PACC_PROFILE}", crate::PROFILES);
        let server = TestServer::start_on(
            backend,
            &extra,
            block.addr(host::REDIRECT, 80),
            block.addr(host::SERVICE, 443),
        )
        .await;
        let store = &server.store;
        for name in DOMAINS {
            store
                .add_domain(&Actor::Cli, &Domain::parse(name).unwrap(), "pacc")
                .await
                .unwrap();
        }
        store
            .set_status(
                &Actor::Cli,
                &Domain::parse("paused.example").unwrap(),
                DomainStatus::Suspended,
            )
            .await
            .unwrap();
        server.refresh().await;
        let dns = TestDns::start(block.ip(host::DNS), zones(&server, &block)).await;
        let folder = tempfile::tempdir().unwrap();
        let ca_file = folder.path().join("ca.pem");
        std::fs::write(&ca_file, server.ca.cert_pem()).unwrap();
        Self {
            block,
            server,
            dns,
            _folder: folder,
            ca_file,
        }
    }

    /// Runs `autodisco --config CONFIG ARGS...`; `domain check` gets the test's DNS and CA.
    async fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_autodisco"));
        command
            .arg("--config")
            .arg(&self.server.config_path)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if args.starts_with(&["domain", "check"]) {
            command
                .arg("--dns")
                .arg(self.dns.address().to_string())
                .arg("--ca")
                .arg(&self.ca_file)
                .args(["--step-timeout", "3s"]);
        }
        let output = tokio::task::spawn_blocking(move || command.output().expect("run autodisco"))
            .await
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The hoster's zone and one zone per scenario; `unserved.example` has none (the server
/// refuses it, as a broken delegation would).
fn zones(server: &TestServer, block: &LoopbackBlock) -> Vec<Zone> {
    let v4 = |n| block.v4(n);
    vec![
        Zone::new("hoster.example")
            .a("autodiscover", v4(host::SERVICE))
            .a("autodiscoverredirect", v4(host::REDIRECT))
            .a("mx", v4(host::SERVICE)),
        good_zone(server, "good.example", |_| false),
        // Nothing but the zone itself.
        Zone::new("missing.example"),
        // A customer who moved to another provider's names.
        Zone::new("wrong.example")
            .cname("autodiscover", "mail.oldhost.example")
            .srv("_imaps._tcp", 0, 0, 993, "imap.oldhost.example")
            .mx("@", 10, "mx.oldhost.example"),
        Zone::new("oldhost.example").a("mail", v4(host::OLDHOST)),
        Zone::new("loop.example")
            .cname("autodiscover", "a.loop.example")
            .cname("a", "autodiscover.loop.example"),
        // Everything right but the digest: the profile changed after it was published.
        good_zone(server, "stale.example", is_txt).txt(
            "_ua-auto-config",
            "v=UAAC1; a=sha256; d=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        ),
        // zone.example exists, lost.zone.example does not.
        Zone::new("zone.example"),
        // The web site at the root answers HTTPS with the hoster's certificate.
        good_zone(server, "certroot.example", |_| false).a("@", v4(host::SERVICE)),
        good_zone(server, "paused.example", |_| false),
        // A web site that accepts connections and never answers.
        good_zone(server, "slow.example", |_| false).a("@", v4(host::SLOW_ROOT)),
    ]
}

async fn check_reports_each_problem_in_words(backend: Backend) {
    let setup = Setup::start(backend).await;

    let good = setup.run(&["domain", "check", "good.example"]).await;
    assert_eq!(good.code, 0, "{}\n{}", good.stdout, good.stderr);
    contains(&good.stdout, "good.example: healthy");

    let all = setup.run(&["domain", "check", "--all", "--json"]).await;
    assert_eq!(all.code, 1, "{}\n{}", all.stdout, all.stderr);
    let results = all.json();
    let results = results.as_array().unwrap();
    let mut checked: Vec<&str> = results
        .iter()
        .map(|r| r["domain"].as_str().unwrap())
        .collect();
    // In the order the checks finished; suspended domains are left out of --all.
    checked.sort_unstable();
    assert_eq!(
        checked,
        [
            "certroot.example",
            "good.example",
            "loop.example",
            "lost.zone.example",
            "missing.example",
            "stale.example",
            "unserved.example",
            "wrong.example"
        ]
    );
    let result = |domain: &str| {
        results
            .iter()
            .find(|r| r["domain"] == domain)
            .unwrap_or_else(|| panic!("no result for {domain}"))
    };
    let findings = |domain: &str| -> Vec<(String, String)> {
        result(domain)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["status"].as_str().unwrap().to_owned(),
                    f["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let has = |domain: &str, status: &str, words: &str| {
        let found = findings(domain);
        assert!(
            found.iter().any(|(s, m)| s == status && m.contains(words)),
            "{domain}: no {status} finding with {words:?} in {found:#?}"
        );
    };

    assert_eq!(result("good.example")["healthy"], true);
    assert_eq!(findings("good.example"), []);
    let walk = result("good.example")["walk"].as_array().unwrap().clone();
    assert!(walk.iter().all(|s| s["status"] == "ok"), "{walk:#?}");
    assert!(
        walk[2]["detail"]
            .as_str()
            .unwrap()
            .contains("302 to https://autodiscover.hoster.example/autodiscover/autodiscover.xml"),
        "{walk:#?}"
    );

    has(
        "missing.example",
        "missing",
        "autodiscover.missing.example has no CNAME record: add autodiscover.missing.example. CNAME autodiscoverredirect.hoster.example.",
    );
    has(
        "missing.example",
        "missing",
        "missing.example has no MX record: add missing.example. MX 10 mx.hoster.example.",
    );
    let notes = result("missing.example")["notes"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("optional records not published: _autodiscover._tcp.missing.example SRV, autoconfig.missing.example CNAME, ")),
        "{notes:#?}"
    );
    assert_eq!(
        findings("missing.example").len(),
        2,
        "{:#?}",
        findings("missing.example")
    );

    has(
        "wrong.example",
        "wrong",
        "autodiscover.wrong.example points to mail.oldhost.example, not to autodiscoverredirect.hoster.example: change the CNAME",
    );
    has(
        "wrong.example",
        "wrong",
        "_imaps._tcp.wrong.example SRV names 0 0 993 imap.oldhost.example., not 0 0 993 imap.hoster.example.: change the SRV records",
    );
    has(
        "wrong.example",
        "wrong",
        "wrong.example MX names 10 mx.oldhost.example., not 10 mx.hoster.example.: change the MX records",
    );
    has(
        "wrong.example",
        "error",
        "http://autodiscover.wrong.example/autodiscover/autodiscover.xml cannot be reached",
    );

    has(
        "loop.example",
        "error",
        "the CNAME chain of autodiscover.loop.example loops (autodiscover.loop.example → a.loop.example → autodiscover.loop.example): replace autodiscover.loop.example with a CNAME to autodiscoverredirect.hoster.example",
    );

    has(
        "stale.example",
        "drift",
        "_ua-auto-config.stale.example carries the digest of an older PACC document (the profile changed since): change the TXT record to \"v=UAAC1; a=sha256; d=",
    );
    assert_eq!(
        findings("stale.example").len(),
        1,
        "{:#?}",
        findings("stale.example")
    );

    has(
        "lost.zone.example",
        "error",
        "lost.zone.example does not exist in DNS (NXDOMAIN): check that the domain is registered and delegated to its name servers",
    );
    has(
        "unserved.example",
        "error",
        "unserved.example cannot be looked up (",
    );

    has(
        "certroot.example",
        "wrong",
        "https://certroot.example answers with a certificate Outlook refuses (the certificate of certroot.example covers only autodiscover.hoster.example): Outlook stops at a certificate warning before it reaches the redirect",
    );

    // Named explicitly, a suspended domain is checked: the redirect site no longer knows it.
    let paused = setup.run(&["domain", "check", "paused.example"]).await;
    assert_eq!(paused.code, 1, "{}\n{}", paused.stdout, paused.stderr);
    contains(
        &paused.stdout,
        "http://autodiscover.paused.example/autodiscover/autodiscover.xml answers HTTP 404, not a 302 to https://autodiscover.hoster.example/autodiscover/autodiscover.xml",
    );
    contains(
        &paused.stdout,
        "does not answer autodisco-check@paused.example",
    );

    stored_health_is_listed(&setup).await;
    the_api_checks_live(&setup).await;
}

/// The admin API's checker, as `autodisco serve` builds one, with the test's DNS and CA.
struct TestChecker(autodisco_client::Checker);

impl autodisco_server::DomainChecker for TestChecker {
    fn check(
        &self,
        expected: DomainRecords,
    ) -> autodisco_server::BoxFuture<'_, autodisco_directory::DomainHealth> {
        Box::pin(async move {
            let result = self.0.check(&expected).await;
            autodisco_directory::DomainHealth {
                domain: expected.domain,
                checked_at: 1,
                status: if result.healthy {
                    autodisco_directory::HealthStatus::Healthy
                } else {
                    autodisco_directory::HealthStatus::Unhealthy
                },
                findings: serde_json::to_string(&result.findings).unwrap(),
            }
        })
    }
}

/// `POST /v1/domains/{name}/check` runs the same checks on a server with a checker, stores the
/// result for `/health`, and needs a write token.
async fn the_api_checks_live(setup: &Setup) {
    use std::sync::Arc;
    let store = &setup.server.store;
    let write = store
        .create_token(&Actor::Cli, "panel", autodisco_directory::TokenScope::Write)
        .await
        .unwrap();
    let read = store
        .create_token(
            &Actor::Cli,
            "monitor",
            autodisco_directory::TokenScope::Read,
        )
        .await
        .unwrap();
    // A second instance on the same directory, with only the admin API to speak of.
    let mut config = setup.server.config.clone();
    let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    config.http_listen = vec![any_port];
    config.https_listen = vec![any_port];
    config.admin_listen = vec![any_port];
    let client = autodisco_client::ClientConfig {
        dns: autodisco_client::DnsServer::At(setup.dns.address()),
        extra_roots_pem: vec![setup.server.ca.cert_pem().into_bytes()],
        step_timeout: std::time::Duration::from_secs(3),
        ..autodisco_client::ClientConfig::default()
    };
    let target = autodisco_client::CheckTarget {
        hoster: HosterNames {
            redirect_host: config.redirect_host.to_string(),
            service_host: config.service_host.to_string(),
        },
        service_url: url::Url::parse(&format!(
            "{}/autodiscover/autodiscover.xml",
            config.public_url
        ))
        .unwrap(),
    };
    let checker =
        autodisco_client::Checker::new(client, target, std::time::Duration::from_secs(20)).unwrap();
    let api = autodisco_server::RunningServer::start_with_checker(
        &config,
        setup.server.directory.clone(),
        Some(Arc::new(TestChecker(checker))),
    )
    .await
    .unwrap();
    let writer = Api::new(api.admin_addrs[0], &write);
    let reader = Api::new(api.admin_addrs[0], &read);
    let check = "/v1/domains/good.example/check";
    assert_eq!(reader.send("POST", check, None, &[]).await.status, 403);
    let good = writer.send("POST", check, None, &[]).await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(good.body["status"], "healthy", "{}", good.body);
    let wrong = writer
        .send("POST", "/v1/domains/wrong.example/check", None, &[])
        .await;
    assert_eq!(wrong.body["status"], "unhealthy", "{}", wrong.body);
    contains(
        &wrong.body["findings"].to_string(),
        "autodiscover.wrong.example points to mail.oldhost.example",
    );
    let stored = reader.get("/v1/domains/wrong.example/health").await;
    assert_eq!(stored.body, wrong.body);
    let nowhere = writer
        .send("POST", "/v1/domains/nowhere.example/check", None, &[])
        .await;
    assert_eq!(nowhere.status, 404, "{}", nowhere.body);
    api.shutdown().await;
}

/// `domain list` shows the stored verdicts, `--unhealthy` filters, `domain show` repeats the
/// findings.
async fn stored_health_is_listed(setup: &Setup) {
    let list = setup.run(&["domain", "list"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let line = |name: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} not listed: {}", list.stdout))
            .to_owned()
    };
    contains(&line("good.example"), "\thealthy (checked ");
    contains(&line("wrong.example"), "\tunhealthy (checked ");

    let unhealthy = setup.run(&["domain", "list", "--unhealthy"]).await;
    let names: Vec<&str> = unhealthy
        .stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "certroot.example",
            "loop.example",
            "lost.zone.example",
            "missing.example",
            "paused.example",
            "stale.example",
            "unserved.example",
            "wrong.example"
        ]
    );

    let show = setup.run(&["domain", "show", "wrong.example"]).await;
    assert_eq!(show.code, 0, "{}", show.stderr);
    contains(&show.stdout, "health:  unhealthy (checked ");
    contains(
        &show.stdout,
        "  wrong    autodiscover.wrong.example points to mail.oldhost.example, not to autodiscoverredirect.hoster.example: change the CNAME",
    );
}

on_both_backends!(check_reports_each_problem_in_words);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_records_print_in_every_format() {
    let setup = Setup::start(Backend::Sqlite).await;
    let none = setup.run(&["domain", "check"]).await;
    assert_eq!(none.code, 2, "{}", none.stderr);
    let unknown = setup.run(&["domain", "check", "nowhere.example"]).await;
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    contains(&unknown.stderr, "nowhere.example");

    let zone = setup.run(&["dns", "records", "good.example"]).await;
    assert_eq!(zone.code, 0, "{}", zone.stderr);
    contains(
        &zone.stdout,
        "autodiscover.good.example. CNAME autodiscoverredirect.hoster.example.   ; Outlook's HTTP redirect step ([MS-OXDISCO] 3.1.5.4)",
    );
    contains(&zone.stdout, "_pop3s._tcp.good.example. SRV 0 0 0 .");
    let json = setup
        .run(&["dns", "records", "--all", "--format", "json"])
        .await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    let documents = json.json();
    assert_eq!(documents.as_array().unwrap().len(), DOMAINS.len());
    let good = &documents[1];
    assert_eq!(good["domain"], "good.example");
    let txt = good["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "TXT")
        .unwrap();
    let expected_txt = expected(&setup.server, "good.example")
        .records
        .into_iter()
        .find(|r| is_txt(&r.data))
        .unwrap();
    assert_eq!(txt["name"], "_ua-auto-config.good.example");
    assert_eq!(
        format!("\"{}\"", txt["text"].as_str().unwrap()),
        expected_txt.data.to_string()
    );
    slow_steps_are_notes_and_the_domain_timeout_a_finding(&setup).await;
    let table = setup
        .run(&["dns", "records", "good.example", "--format", "table"])
        .await;
    assert!(
        table.stdout.lines().any(|l| l.starts_with("good.example ")
            && l.contains("MX")
            && l.contains("10 mx.hoster.example.")
            && l.ends_with("required")),
        "{}",
        table.stdout
    );
}

/// A web site that never answers costs Outlook the wait (a note); a domain that does not finish
/// within `--timeout` is an error, with what was found until then.
async fn slow_steps_are_notes_and_the_domain_timeout_a_finding(setup: &Setup) {
    let _blackhole = Blackhole::start(setup.block.addr(host::SLOW_ROOT, 443)).await;
    let slow = Domain::parse("slow.example").unwrap();
    setup
        .server
        .store
        .add_domain(&Actor::Cli, &slow, "pacc")
        .await
        .unwrap();

    let cut = setup
        .run(&["domain", "check", "slow.example", "--timeout", "1s"])
        .await;
    assert_eq!(cut.code, 1, "{}\n{}", cut.stdout, cut.stderr);
    contains(
        &cut.stdout,
        "  error    the check of slow.example did not finish within 1 s",
    );

    let waited = setup
        .run(&["domain", "check", "slow.example", "--json"])
        .await;
    assert_eq!(waited.code, 0, "{}\n{}", waited.stdout, waited.stderr);
    let notes = waited.json()[0]["notes"].to_string();
    contains(
        &notes,
        "https://slow.example/autodiscover/autodiscover.xml: no answer within 3 s",
    );
    contains(&notes, "Outlook waits that long before its next step");
}

/// How many domains the scale test checks: `AUTODISCO_CHECK_SCALE` or 10,000.
fn scale_domains() -> usize {
    std::env::var("AUTODISCO_CHECK_SCALE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// `domain check --all` over 10,000 healthy domains, each a zone of its own on the loopback DNS
/// server, through the real redirect site and service, results stored: the figure in README.
/// Ignored by default (minutes in a debug build); run it with
/// `cargo test --release -p autodisco --test e2e -- --ignored --nocapture check_scale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it in a release build"]
async fn check_scale() {
    let count = scale_domains();
    let block = LoopbackBlock::claim();
    // One client (the checker) makes every request: lift the per-client limits.
    let extra = format!(
        "{}\n{PACC_PROFILE}\n[limits]\nper_ip_requests_per_sec = 1000000\nper_ip_connections = 100000\n",
        crate::PROFILES
    );
    let server = TestServer::start_on(
        Backend::Sqlite,
        &extra,
        block.addr(host::REDIRECT, 80),
        block.addr(host::SERVICE, 443),
    )
    .await;
    let names: Vec<String> = (0..count).map(|i| format!("d{i:05}.example")).collect();
    let domains: Vec<Domain> = names.iter().map(|n| Domain::parse(n).unwrap()).collect();
    server
        .store
        .add_domains(&Actor::Cli, &domains, "pacc")
        .await
        .unwrap();
    server.refresh().await;
    let mut zones = vec![
        Zone::new("hoster.example")
            .a("autodiscover", block.v4(host::SERVICE))
            .a("autodiscoverredirect", block.v4(host::REDIRECT)),
    ];
    zones.extend(names.iter().map(|name| good_zone(&server, name, |_| false)));
    let dns = TestDns::start(block.ip(host::DNS), zones).await;
    let folder = tempfile::tempdir().unwrap();
    let ca_file = folder.path().join("ca.pem");
    std::fs::write(&ca_file, server.ca.cert_pem()).unwrap();
    let setup = Setup {
        block,
        server,
        dns,
        _folder: folder,
        ca_file,
    };
    let started = std::time::Instant::now();
    let run = setup.run(&["domain", "check", "--all"]).await;
    let elapsed = started.elapsed();
    let summary = run.stdout.lines().last().unwrap_or_default().to_owned();
    eprintln!(
        "checked {count} domains in {:.1} s: {summary}",
        elapsed.as_secs_f64()
    );
    assert_eq!(run.code, 0, "{}\n{}", summary, run.stderr);
    assert_eq!(
        summary,
        format!("{count} domains checked, {count} healthy, 0 with findings")
    );
    let stored = setup.server.store.all_health().await.unwrap();
    assert_eq!(stored.len(), count);
}
