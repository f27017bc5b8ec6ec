//! PACC (draft-ietf-mailmaint-pacc) through the real server: the document at
//! `ua-auto-config.CUSTOMER`, and the digest record `autodisco domain show` prints for it.

use autodisco_proto::pacc::{self, PaccDocument};
use autodisco_proto::profile::{Authentication, MailServer, Security};
use autodisco_test_support::{Backend, SERVICE_HOST, TestServer};

use crate::autoconfig::{get, server_with_names};

on_both_backends!(document_and_digest);

const PATH: &str = "/.well-known/user-agent-configuration.json";

/// Adds SMTP submission on 465 with implicit TLS to the default profile, the one submission
/// server PACC can describe.
pub(crate) async fn add_implicit_tls_submission(server: &TestServer) {
    let mut profile = server.store.get_profile("default").await.unwrap();
    profile.smtp.insert(
        0,
        MailServer {
            host: "smtp.hoster.example".into(),
            port: 465,
            security: Security::Tls,
            authentication: Authentication::PasswordCleartext,
            username: "%EMAILADDRESS%".into(),
        },
    );
    server
        .store
        .put_profile(&autodisco_directory::Actor::Cli, "default", &profile)
        .await
        .unwrap();
    server.refresh().await;
}

/// The `autodisco domain show` output for `domain`.
pub(crate) fn domain_show(server: &TestServer, domain: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_autodisco"))
        .arg("--config")
        .arg(&server.config_path)
        .args(["domain", "show", domain])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run autodisco");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn document_and_digest(backend: Backend) {
    let (server, client) = server_with_names(backend).await;
    // The seeded default profile submits on 587 with STARTTLS, which PACC cannot describe:
    // nothing is published rather than an account that cannot send.
    let (status, _, _) = get(&server, &client, "ua-auto-config.customer.example", PATH).await;
    assert_eq!(status, 404);
    let show = domain_show(&server, "customer.example");
    assert!(
        show.contains("; no _ua-auto-config.customer.example TXT record"),
        "{show}"
    );

    add_implicit_tls_submission(&server).await;
    let (status, content_type, body) =
        get(&server, &client, "UA-Auto-Config.Customer.Example", PATH).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    let document = PaccDocument::from_json(body.as_bytes()).unwrap();
    assert_eq!(document.protocols.imap.unwrap().host, "imap.hoster.example");
    assert_eq!(
        document.protocols.submit.unwrap().host,
        "smtp.hoster.example"
    );
    assert_eq!(document.protocols.pop3, None);
    assert!(document.authentication.password);
    assert_eq!(document.info.provider.name, "Hoster Example Mail");

    // The TXT record the CLI prints vouches for exactly these bytes.
    let show = domain_show(&server, "customer.example");
    let record = pacc::digest_record(body.as_bytes());
    assert!(
        show.contains(&format!(
            "_ua-auto-config.customer.example. TXT \"{record}\""
        )),
        "{show}"
    );
    assert!(
        show.contains("autoconfig.customer.example. CNAME autodiscoverredirect.hoster.example.")
    );
    assert!(show.contains("ua-auto-config.customer.example. CNAME autodiscover.hoster.example."));
    assert!(pacc::record_matches(&record, body.as_bytes()));

    // An alias domain gets the same bytes, so the same record.
    let (status, _, alias_body) = get(&server, &client, "ua-auto-config.alias.example", PATH).await;
    assert_eq!(status, 200);
    assert_eq!(alias_body, body);
    assert!(domain_show(&server, "alias.example").contains(&record));

    for (host, expected) in [
        ("ua-auto-config.unhosted.example", 404),
        // The document is served under ua-auto-config.CUSTOMER only.
        (SERVICE_HOST, 404),
        ("customer.example", 404),
    ] {
        let (status, _, _) = get(&server, &client, host, PATH).await;
        assert_eq!(status, expected, "{host}");
    }
    let url = format!(
        "https://ua-auto-config.customer.example:{}{PATH}",
        server.https_addr().port()
    );
    let response = client.post(url).body("{}").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    server.stop().await;
}
