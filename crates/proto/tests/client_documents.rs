//! Mozilla autoconfig, Apple configuration profiles and PACC against byte-exact golden files.
//!
//! - `tests/fixtures/autoconfig/golden-*.xml`, `tests/fixtures/mobileconfig/golden-*.mobileconfig`
//!   and `tests/fixtures/pacc/golden-*.json` are autodisco's own output, compared byte for byte;
//!   after an intended change, regenerate them with `UPDATE_GOLDEN=1 cargo test -p
//!   autodisco-proto --test client_documents` and review the diff. A PACC golden change means
//!   every customer's `_ua-auto-config` TXT record changes too.
//! - `tests/fixtures/autoconfig/spec-*.xml` are documents shaped like the examples of Mozilla's
//!   config file format page and draft-ietf-mailmaint-autoconfig, with our own values; the
//!   decoder must read them.

mod common;

use common::mail_server as server;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use autodisco_proto::autoconfig::{AuthMethod, ClientConfig, ServerKind, SocketType};
use autodisco_proto::mobileconfig::{MobileConfig, ProfileOptions, reverse_dns};
use autodisco_proto::pacc::{self, PaccDocument};
use autodisco_proto::profile::{Authentication, Security};
use autodisco_proto::{AccountSettings, Domain, EmailAddress, ServiceProfile};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn check_golden(name: &str, actual: &[u8]) {
    common::check_golden_file(&fixtures().join(name), actual);
}

/// A hoster's plan with every mail feature these documents express, and values that need
/// escaping.
fn profile() -> ServiceProfile {
    let mut pop3 = server("pop.hoster.example", 995, Security::Tls);
    pop3.authentication = Authentication::PasswordEncrypted;
    pop3.username = "%EMAILLOCALPART%".to_owned();
    ServiceProfile {
        display_name: Some("Hoster <Mail> & Co".to_owned()),
        imap: vec![
            server("imap.hoster.example", 993, Security::Tls),
            server("imap.hoster.example", 143, Security::Starttls),
        ],
        pop3: vec![pop3],
        smtp: vec![
            server("smtp.hoster.example", 465, Security::Tls),
            server("smtp.hoster.example", 587, Security::Starttls),
        ],
        ews: None,
        activesync_url: Some("https://eas.hoster.example/Microsoft-Server-ActiveSync".to_owned()),
        mapi_http: None,
        documentation_url: Some("https://hoster.example/help?domain=%EMAILDOMAIN%&x=1".to_owned()),
        mx: Vec::new(),
    }
}

fn domain(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

fn settings() -> AccountSettings {
    let mut settings = AccountSettings::new(
        EmailAddress::parse("pat.lee@tenant-one.example").unwrap(),
        Arc::new(profile()),
    );
    settings.display_name = Some("Pat Lee <Sales & Support>".to_owned());
    settings
}

mod autoconfig_documents {
    use super::*;

    #[test]
    fn account_document() {
        let config = ClientConfig::for_account(&settings(), &domain("tenant-one.example")).unwrap();
        let xml = config.to_xml();
        check_golden("autoconfig/golden-account.xml", xml.as_bytes());
        assert_eq!(ClientConfig::from_xml(xml.as_bytes()).unwrap(), config);
    }

    #[test]
    fn domain_document_keeps_placeholders() {
        let primary = domain("tenant-one.example");
        let config = ClientConfig::for_domain(&profile(), &primary, &primary).unwrap();
        let xml = config.to_xml();
        check_golden("autoconfig/golden-domain.xml", xml.as_bytes());
        assert_eq!(ClientConfig::from_xml(xml.as_bytes()).unwrap(), config);
    }

    #[test]
    fn alias_domain_document_pins_the_primary() {
        let config = ClientConfig::for_domain(
            &profile(),
            &domain("tenant-one.example"),
            &domain("tenant-one-alias.example"),
        )
        .unwrap();
        check_golden(
            "autoconfig/golden-alias-domain.xml",
            config.to_xml().as_bytes(),
        );
    }

    /// A provider document in the shape of the config file format's examples: several
    /// authentication methods in preference order, types we do not render, comments.
    #[test]
    fn reads_spec_shaped_documents() {
        let body = std::fs::read(fixtures().join("autoconfig/spec-config-v1.1.xml")).unwrap();
        let config = ClientConfig::from_xml(&body).unwrap();
        assert_eq!(config.id, "provider.example");
        assert_eq!(config.domains, ["provider.example", "provider.example.net"]);
        assert_eq!(config.display_name, "Provider Example Mail");
        assert_eq!(config.display_short_name.as_deref(), Some("Provider"));
        let kinds: Vec<_> = config.incoming.iter().map(|s| s.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                ServerKind::Imap,
                ServerKind::Pop3,
                ServerKind::Other("exchange".into())
            ]
        );
        assert_eq!(config.incoming[0].authentication, AuthMethod::OAuth2);
        assert_eq!(config.incoming[1].socket_type, SocketType::Starttls);
        assert_eq!(config.outgoing[0].port, 465);
        assert_eq!(
            config.documentation.unwrap().url,
            "https://provider.example/help/mail"
        );
    }
}

mod apple_profiles {
    use super::*;

    fn options() -> ProfileOptions {
        ProfileOptions {
            identifier_prefix: reverse_dns("hoster.example"),
            organization: "hoster.example".to_owned(),
        }
    }

    #[test]
    fn account_profile() {
        let config = MobileConfig::for_account(&settings(), &options()).unwrap();
        let bytes = config.to_plist_xml();
        check_golden("mobileconfig/golden-account.mobileconfig", &bytes);
        let value = plist::Value::from_reader_xml(bytes.as_slice()).unwrap();
        let top = value.as_dictionary().unwrap();
        let content = top["PayloadContent"].as_array().unwrap();
        let mail = content[0].as_dictionary().unwrap();
        assert_eq!(
            mail["PayloadType"].as_string(),
            Some("com.apple.mail.managed")
        );
        assert_eq!(
            mail["IncomingMailServerUsername"].as_string(),
            Some("pat.lee@tenant-one.example")
        );
        assert_eq!(
            mail["OutgoingMailServerPortNumber"].as_unsigned_integer(),
            Some(465)
        );
        let keys: Vec<&String> = content
            .iter()
            .flat_map(|p| p.as_dictionary().unwrap().keys())
            .collect();
        // No password, ever: the device asks for it on installation.
        assert!(
            keys.iter().all(|k| !matches!(
                k.as_str(),
                "Password" | "IncomingPassword" | "OutgoingPassword"
            )),
            "a password key in {keys:?}"
        );
    }
}

mod pacc_documents {
    use super::*;

    #[test]
    fn domain_document_and_its_digest() {
        let doc = PaccDocument::for_domain(&profile(), &domain("tenant-one.example")).unwrap();
        let bytes = doc.to_json();
        check_golden("pacc/golden-domain.json", &bytes);
        // The golden digest pins the bytes: a change here is a DNS change for every customer.
        let record = pacc::digest_record(&bytes);
        check_golden("pacc/golden-domain.txt", record.as_bytes());
        assert!(pacc::record_matches(&record, &bytes));
        assert_eq!(PaccDocument::from_json(&bytes).unwrap(), doc);
        // The 143/STARTTLS IMAP server and the POP3 server with a local-part login are left out.
        assert_eq!(doc.protocols.pop3, None);
    }
}
