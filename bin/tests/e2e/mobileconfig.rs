//! Apple configuration profiles through the real server: signed with the service's certificate
//! (checked with `openssl cms -verify` against the test CA), parsed with the plist crate.

use std::path::Path;
use std::process::Command;

use autodisco_test_support::{Backend, SERVICE_HOST, TestCa, TestServer};
use plist::{Dictionary, Value};

use crate::{PROFILES, seeded_server};

/// GETs `https://SERVICE_HOST/PATH` and returns status, content type and body bytes.
async fn get(server: &TestServer, path_and_query: &str) -> (u16, String, Vec<u8>) {
    let url = format!(
        "https://{SERVICE_HOST}:{}{path_and_query}",
        server.https_addr().port()
    );
    let response = server.client().get(&url).send().await.expect(&url);
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// Verifies a DER CMS SignedData with openssl against `ca_pem` and returns the signed content.
///
/// `-purpose any`: the signer is a TLS server certificate (extended key usage serverAuth), which
/// iOS and macOS accept for profiles; openssl's default purpose check is S/MIME's.
pub(crate) fn openssl_verify(signed: &[u8], ca_pem: &str, folder: &Path) -> Vec<u8> {
    let input = folder.join("profile.mobileconfig");
    let ca = folder.join("ca.pem");
    let output = folder.join("profile.plist");
    std::fs::write(&input, signed).unwrap();
    std::fs::write(&ca, ca_pem).unwrap();
    let result = Command::new("openssl")
        .args([
            "cms", "-verify", "-inform", "DER", "-purpose", "any", "-CAfile",
        ])
        .arg(&ca)
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .output()
        .expect("openssl is needed for this test");
    assert!(
        result.status.success(),
        "openssl cms -verify refused the profile: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::read(&output).unwrap()
}

/// Downloads and verifies the profile for `address` and returns its top-level dictionary.
pub(crate) async fn verified_profile(server: &TestServer, address: &str) -> Dictionary {
    let (status, content_type, body) =
        get(server, &format!("/mobileconfig?emailaddress={address}")).await;
    assert_eq!(status, 200, "{address}: {}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/x-apple-aspen-config");
    let folder = tempfile::tempdir().unwrap();
    let plist = openssl_verify(&body, &server.ca.cert_pem(), folder.path());
    Value::from_reader_xml(plist.as_slice())
        .expect("the signed content is an XML plist")
        .into_dictionary()
        .expect("a dictionary at the top")
}

fn payload<'a>(profile: &'a Dictionary, kind: &str) -> Option<&'a Dictionary> {
    profile["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_dictionary)
        .find(|p| p["PayloadType"].as_string() == Some(kind))
}

fn string<'a>(d: &'a Dictionary, key: &str) -> &'a str {
    d.get(key)
        .and_then(Value::as_string)
        .unwrap_or_else(|| panic!("{key} missing in {d:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_profiles_verify_and_parse() {
    let server = seeded_server(Backend::Sqlite).await;
    let profile = verified_profile(&server, "jane@customer.example").await;
    assert_eq!(string(&profile, "PayloadType"), "Configuration");
    let mail = payload(&profile, "com.apple.mail.managed").expect("a mail payload");
    assert_eq!(string(mail, "EmailAddress"), "jane@customer.example");
    assert_eq!(string(mail, "EmailAccountName"), "Jane <Doe> & Co");
    assert_eq!(string(mail, "EmailAccountType"), "EmailTypeIMAP");
    assert_eq!(
        string(mail, "IncomingMailServerHostName"),
        "imap.hoster.example"
    );
    assert_eq!(
        mail["IncomingMailServerPortNumber"].as_unsigned_integer(),
        Some(993)
    );
    assert_eq!(mail["IncomingMailServerUseSSL"].as_boolean(), Some(true));
    // The per-user login name, as in POX and autoconfig.
    assert_eq!(string(mail, "IncomingMailServerUsername"), "jdoe");
    assert_eq!(
        string(mail, "OutgoingMailServerHostName"),
        "smtp.hoster.example"
    );
    assert_eq!(
        mail["OutgoingMailServerPortNumber"].as_unsigned_integer(),
        Some(587)
    );
    for key in ["Password", "IncomingPassword", "OutgoingPassword"] {
        assert!(!mail.contains_key(key), "{key} in the profile");
    }
    assert!(payload(&profile, "com.apple.eas.account").is_none());

    // Stable per address: the same identifiers every time, other ones for another mailbox.
    let again = verified_profile(&server, "Jane@customer.example").await;
    assert_eq!(
        string(&again, "PayloadUUID"),
        string(&profile, "PayloadUUID")
    );
    assert_eq!(
        string(&again, "PayloadIdentifier"),
        string(&profile, "PayloadIdentifier")
    );
    let other = verified_profile(&server, "joe@customer.example").await;
    assert_ne!(
        string(&other, "PayloadUUID"),
        string(&profile, "PayloadUUID")
    );
    assert!(string(&profile, "PayloadIdentifier").starts_with("example.hoster."));

    // With ActiveSync in the profile, an Exchange payload too (POP3 mail for the business plan).
    let business = verified_profile(&server, "pat@business.example").await;
    let eas = payload(&business, "com.apple.eas.account").expect("an ActiveSync payload");
    assert_eq!(string(eas, "Host"), "mail.hoster.example");
    assert_eq!(string(eas, "UserName"), "pat@business.example");
    let mail = payload(&business, "com.apple.mail.managed").unwrap();
    assert_eq!(string(mail, "EmailAccountType"), "EmailTypePOP");
    assert_eq!(string(mail, "IncomingMailServerUsername"), "pat");
    assert_eq!(
        string(mail, "OutgoingMailServerAuthentication"),
        "EmailAuthCRAMMD5"
    );

    // The form, and the refusals.
    let (status, content_type, body) = get(&server, "/mobileconfig").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    let page = String::from_utf8(body).unwrap();
    assert!(
        page.contains(r#"<form method="get" action="/mobileconfig">"#),
        "{page}"
    );
    assert!(page.contains(r#"name="emailaddress""#));
    for (query, expected) in [
        ("?emailaddress=x@unhosted.example", 404),
        ("?emailaddress=x@suspended.example", 404),
        ("?emailaddress=elsewhere@customer.example", 404),
        ("?emailaddress=%3Cscript%3E", 400),
    ] {
        let (status, _, body) = get(&server, &format!("/mobileconfig{query}")).await;
        assert_eq!(status, expected, "{query}");
        assert!(!String::from_utf8_lossy(&body).contains("<script>"));
    }
    server.stop().await;
}

/// A separate signing certificate (from another CA) signs instead of the service's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_signing_certificate_signs() {
    let folder = tempfile::tempdir().unwrap();
    let signing_ca = TestCa::new();
    let issued = signing_ca.issue(&["profiles.hoster.example"]);
    let path = folder.path().join("signing.pem");
    issued.write_combined(&path);
    let extra = format!(
        "{PROFILES}\n[signing]\ncert = \"{0}\"\nkey = \"{0}\"\n",
        path.display()
    );
    let server = TestServer::start(Backend::Sqlite, &extra).await;
    add_customer(&server).await;
    let (status, _, body) = get(&server, "/mobileconfig?emailaddress=a@customer.example").await;
    assert_eq!(status, 200);
    let plist = openssl_verify(&body, &signing_ca.cert_pem(), folder.path());
    assert!(Value::from_reader_xml(plist.as_slice()).is_ok());
    server.stop().await;
}

/// A self-signed signing certificate verifies nowhere: the profile goes out unsigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_serves_unsigned_profiles() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("self.pem");
    autodisco_server::create_self_signed(&path, &["profiles.hoster.example".to_owned()]).unwrap();
    let extra = format!(
        "{PROFILES}\n[signing]\ncert = \"{0}\"\nkey = \"{0}\"\n",
        path.display()
    );
    let server = TestServer::start(Backend::Sqlite, &extra).await;
    assert!(!server.server.signer.is_signing());
    add_customer(&server).await;
    let (status, content_type, body) =
        get(&server, "/mobileconfig?emailaddress=a@customer.example").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/x-apple-aspen-config")
    );
    assert!(body.starts_with(b"<?xml"), "not a plain plist");
    let profile = Value::from_reader_xml(body.as_slice()).unwrap();
    assert!(
        profile
            .as_dictionary()
            .unwrap()
            .contains_key("PayloadContent")
    );
    server.stop().await;
}

async fn add_customer(server: &TestServer) {
    server
        .store
        .add_domain(
            &autodisco_directory::Actor::Cli,
            &autodisco_proto::Domain::parse("customer.example").unwrap(),
            "default",
        )
        .await
        .unwrap();
    server.refresh().await;
}
