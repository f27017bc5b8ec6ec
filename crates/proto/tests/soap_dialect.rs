//! SOAP Autodiscover ([MS-OXWSADISC]) against spec-shaped fixtures and byte-exact golden files.
//!
//! - `tests/fixtures/soap/ms-oxwsadisc-*.xml` follow the examples of [MS-OXWSADISC] section 4
//!   (GetUserSettings and GetDomainSettings, request and response), with our own values.
//! - `tests/fixtures/soap/exchangelib-5.6-*.xml` is the request exchangelib 5.6 builds (one line,
//!   prefixed message element, every setting it knows of a subset), and `soap12-*.xml` a SOAP
//!   1.2 request.
//! - `tests/fixtures/soap/golden/*.xml` are autodisco's own answers, compared byte for byte;
//!   regenerate with `UPDATE_GOLDEN=1 cargo test -p autodisco-proto --test soap_dialect` and
//!   review the diff.

mod common;

use common::mail_server as server;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use autodisco_proto::profile::{EwsEndpoints, Security};
use autodisco_proto::soap::settings::{self, EWS_SUPPORTED_SCHEMAS};
use autodisco_proto::soap::{
    self, GetDomainSettingsResponse, GetUserSettingsResponse, Operation, SettingValue,
    SoapErrorCode, SoapFault, SoapRequestBody, SoapResponse, SoapResponseBody, SoapVersion,
};
use autodisco_proto::{AccountSettings, Answer, EmailAddress, ServiceProfile, round_trip};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/soap")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_golden(name: &str, actual: &str) {
    common::check_golden_file(&fixtures().join("golden").join(name), actual.as_bytes());
}

fn profile() -> ServiceProfile {
    ServiceProfile {
        display_name: Some("Hoster Mail".to_owned()),
        imap: vec![server("imap.hoster.example", 993, Security::Tls)],
        pop3: vec![],
        smtp: vec![
            server("smtp.hoster.example", 465, Security::Tls),
            server("smtp.hoster.example", 587, Security::Starttls),
        ],
        ews: Some(EwsEndpoints {
            url: "https://ews.hoster.example/EWS/Exchange.asmx".to_owned(),
            availability_url: None,
            oof_url: None,
            oab_url: Some("https://ews.hoster.example/OAB/%EMAILDOMAIN%/".to_owned()),
            um_url: None,
            ecp_url: Some("https://ews.hoster.example/ecp/".to_owned()),
            owa_url: Some("https://webmail.hoster.example/?user=%EMAILADDRESS%&lang=en".to_owned()),
            mailbox_server: Some("mbx01.hoster.example".to_owned()),
            rpc_http_server: Some("rpc.hoster.example".to_owned()),
            auth_package: Some("Basic".to_owned()),
        }),
        activesync_url: Some("https://eas.hoster.example/Microsoft-Server-ActiveSync".to_owned()),
        mapi_http: None,
        documentation_url: None,
        mx: Vec::new(),
    }
}

fn account() -> AccountSettings {
    let mut account = AccountSettings::new(
        EmailAddress::parse("pat.lee@tenant-one.example").unwrap(),
        Arc::new(profile()),
    );
    account.display_name = Some("Pat Lee <Sales & Support>".to_owned());
    account
}

fn user_answer(version: SoapVersion, answers: &[Answer], requested: &[String]) -> SoapResponse {
    let users = answers
        .iter()
        .map(|answer| settings::user_response(answer, requested))
        .collect();
    SoapResponse::new(
        version,
        SoapResponseBody::GetUserSettings(GetUserSettingsResponse::new(users)),
    )
}

fn requested(request: &soap::SoapRequest) -> Vec<String> {
    match &request.body {
        SoapRequestBody::GetUserSettings(r) => r.settings.clone(),
        SoapRequestBody::GetDomainSettings(r) => r.settings.clone(),
    }
}

#[test]
fn spec_requests_parse() {
    let request =
        soap::parse_request(&fixture("ms-oxwsadisc-4.1-getusersettings-request.xml")).unwrap();
    assert_eq!(request.version, SoapVersion::Soap11);
    assert_eq!(
        request.requested_server_version.as_deref(),
        Some("Exchange2010")
    );
    let SoapRequestBody::GetUserSettings(users) = &request.body else {
        panic!("{request:?}")
    };
    assert_eq!(users.mailboxes, ["pat.lee@tenant-one.example"]);
    assert_eq!(users.settings.len(), 8);
    assert_eq!(users.settings[7], "EwsSupportedSchemas");

    let request =
        soap::parse_request(&fixture("ms-oxwsadisc-4.2-getdomainsettings-request.xml")).unwrap();
    let SoapRequestBody::GetDomainSettings(domains) = &request.body else {
        panic!("{request:?}")
    };
    assert_eq!(domains.domains, ["tenant-one.example"]);
    assert_eq!(domains.settings, ["ExternalEwsUrl"]);

    let request =
        soap::parse_request(&fixture("exchangelib-5.6-getusersettings-request.xml")).unwrap();
    assert_eq!(request.operation(), Operation::GetUserSettings);
    assert_eq!(requested(&request).len(), 19);

    let request = soap::parse_request(&fixture("soap12-getusersettings-request.xml")).unwrap();
    assert_eq!(request.version, SoapVersion::Soap12);
    assert_eq!(request.requested_server_version, None);
}

#[test]
fn spec_responses_decode() {
    let response =
        SoapResponse::from_xml(&fixture("ms-oxwsadisc-4.1-getusersettings-response.xml")).unwrap();
    let info = response.server_version.as_ref().unwrap();
    assert_eq!((info.major_version, info.minor_build_number), (14, 21));
    let SoapResponseBody::GetUserSettings(body) = &response.body else {
        panic!("{response:?}")
    };
    assert_eq!(body.error_code, SoapErrorCode::NoError);
    let user = &body.user_responses[0];
    assert_eq!(user.redirect_target, None);
    assert_eq!(user.settings.len(), 8);
    assert_eq!(user.string_setting("CasVersion"), Some("14.00.0639.021"));

    let response =
        SoapResponse::from_xml(&fixture("ms-oxwsadisc-4.2-getdomainsettings-response.xml"))
            .unwrap();
    let SoapResponseBody::GetDomainSettings(body) = &response.body else {
        panic!("{response:?}")
    };
    assert_eq!(
        body.domain_responses[0].settings[0].value,
        "https://ews.tenant-one.example/ews/exchange.asmx"
    );
}

#[test]
fn every_fixture_survives_a_round_trip() {
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "xml") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let decoded = if name.contains("request") {
            round_trip::soap_request(&data).map(|_| ())
        } else {
            round_trip::soap_response(&data).map(|_| ())
        };
        assert!(decoded.is_some(), "{name} does not decode");
    }
    for entry in std::fs::read_dir(fixtures().join("golden")).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        assert!(
            round_trip::soap_response(&data).is_some(),
            "{} does not decode",
            path.display()
        );
    }
}

/// The element paths of a document with namespaces shortened, read with quick-xml directly so
/// the check does not trust our reader.
fn element_paths(document: &[u8]) -> BTreeSet<String> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let mut reader = quick_xml::NsReader::from_reader(document);
    let mut stack: Vec<String> = Vec::new();
    let mut paths = BTreeSet::new();
    loop {
        let (namespace, event) = reader.read_resolved_event().unwrap();
        let prefix = match namespace {
            ResolveResult::Bound(ns) => match ns.into_inner() {
                b"http://schemas.xmlsoap.org/soap/envelope/" => "s",
                b"http://www.w3.org/2005/08/addressing" => "wsa",
                b"http://schemas.microsoft.com/exchange/2010/Autodiscover" => "ad",
                _ => "other",
            },
            _ => "none",
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = String::from_utf8(e.local_name().into_inner().to_vec()).unwrap();
                let path = format!(
                    "{}/{prefix}:{local}",
                    stack.last().cloned().unwrap_or_default()
                );
                paths.insert(path.clone());
                if matches!(event, Event::Start(_)) {
                    stack.push(path);
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    paths
}

#[test]
fn our_answer_has_the_shape_of_the_spec_example() {
    let request =
        soap::parse_request(&fixture("ms-oxwsadisc-4.1-getusersettings-request.xml")).unwrap();
    let ours = user_answer(
        request.version,
        &[Answer::Settings(account())],
        &requested(&request),
    )
    .to_xml();
    let ours_paths = element_paths(ours.as_bytes());
    let spec = fixture("ms-oxwsadisc-4.1-getusersettings-response.xml");
    for path in element_paths(&spec) {
        assert!(ours_paths.contains(&path), "{path} missing from\n{ours}");
    }
    check_golden("getusersettings-spec-request.xml", &ours);
    let decoded = SoapResponse::from_xml(ours.as_bytes()).unwrap();
    let SoapResponseBody::GetUserSettings(body) = decoded.body else {
        panic!()
    };
    let user = &body.user_responses[0];
    assert_eq!(
        user.string_setting("UserDisplayName"),
        Some("Pat Lee <Sales & Support>")
    );
    assert_eq!(
        user.string_setting("InternalMailboxServer"),
        Some("mbx01.hoster.example")
    );
    assert_eq!(
        user.string_setting("EwsSupportedSchemas"),
        Some(EWS_SUPPORTED_SCHEMAS)
    );
    assert_eq!(user.string_setting("CasVersion"), Some("15.1.2507.6"));
    let unavailable: Vec<_> = user
        .setting_errors
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(unavailable, ["MailboxDN", "ActiveDirectoryServer"]);
    assert!(
        user.setting_errors
            .iter()
            .all(|e| e.error_code == SoapErrorCode::SettingIsNotAvailable)
    );
}

#[test]
fn golden_answers() {
    let everything: Vec<String> = [
        "AutoDiscoverSMTPAddress",
        "ExternalEwsUrl",
        "InternalEwsUrl",
        "ExternalOABUrl",
        "ExternalEcpUrl",
        "ExternalWebClientUrls",
        "ExternalMailboxServer",
        "ExternalMailboxServerRequiresSSL",
        "ExternalMailboxServerAuthenticationMethods",
        "ExternalImap4Connections",
        "ExternalPop3Connections",
        "ExternalSmtpConnections",
        "ExternalUMUrl",
        "ExternalActiveSyncUrl",
        "MapiHttpEnabled",
        "NotASetting",
    ]
    .map(String::from)
    .to_vec();
    let response = user_answer(
        SoapVersion::Soap11,
        &[Answer::Settings(account())],
        &everything,
    );
    let SoapResponseBody::GetUserSettings(body) = &response.body else {
        panic!()
    };
    let user = &body.user_responses[0];
    let Some(SettingValue::ProtocolConnections(smtp)) = user.setting("ExternalSmtpConnections")
    else {
        panic!("{user:?}")
    };
    assert_eq!(
        smtp.iter()
            .map(|c| (c.port, c.encryption_method.as_str()))
            .collect::<Vec<_>>(),
        [(465, "SSL"), (587, "TLS")]
    );
    assert_eq!(
        user.string_setting("ExternalOABUrl"),
        Some("https://ews.hoster.example/OAB/tenant-one.example/")
    );
    check_golden("getusersettings-settings.xml", &response.to_xml());

    let redirects = user_answer(
        SoapVersion::Soap11,
        &[
            Answer::RedirectAddr(EmailAddress::parse("pat@tenant-two.example").unwrap()),
            Answer::RedirectUrl(
                "https://autodiscover.other.example/autodiscover/autodiscover.xml".to_owned(),
            ),
            Answer::NotHosted,
        ],
        &everything,
    );
    check_golden(
        "getusersettings-redirects-and-invalid-user.xml",
        &redirects.to_xml(),
    );

    let soap12 = user_answer(
        SoapVersion::Soap12,
        &[Answer::Settings(account())],
        &["ExternalEwsUrl".to_owned()],
    );
    check_golden("getusersettings-soap12.xml", &soap12.to_xml());

    let invalid = SoapResponse::new(
        SoapVersion::Soap11,
        SoapResponseBody::GetUserSettings(GetUserSettingsResponse::error(
            SoapErrorCode::InvalidRequest,
        )),
    );
    check_golden("getusersettings-invalid-request.xml", &invalid.to_xml());

    let domains = SoapResponse::new(
        SoapVersion::Soap11,
        SoapResponseBody::GetDomainSettings(GetDomainSettingsResponse::new(vec![
            settings::domain_response(
                Some((account().address.domain(), &account().profile)),
                &["ExternalEwsUrl".to_owned(), "ExternalEwsVersion".to_owned()],
            ),
            settings::domain_response(None, &["ExternalEwsUrl".to_owned()]),
        ])),
    );
    check_golden("getdomainsettings.xml", &domains.to_xml());

    for (version, name) in [
        (SoapVersion::Soap11, "fault-soap11.xml"),
        (SoapVersion::Soap12, "fault-soap12.xml"),
    ] {
        let fault = SoapResponse::new(
            version,
            SoapResponseBody::Fault(SoapFault::action_not_supported()),
        );
        check_golden(name, &fault.to_xml());
    }
}

#[test]
fn hostile_values_are_escaped_and_inputs_refused() {
    let mut account = account();
    account.display_name = Some("</Value><Evil>&".to_owned());
    let response = user_answer(
        SoapVersion::Soap11,
        &[Answer::Settings(account)],
        &["UserDisplayName".to_owned(), "<x>&amp;".to_owned()],
    );
    let xml = response.to_xml();
    assert!(!xml.contains("<Evil>"), "{xml}");
    assert_eq!(SoapResponse::from_xml(xml.as_bytes()).unwrap(), response);

    let hostile_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile");
    for name in [
        "billion-laughs.xml",
        "external-entity.xml",
        "undeclared-entity.xml",
    ] {
        let data = std::fs::read(hostile_root.join(name)).unwrap();
        let error = soap::parse_request(&data).unwrap_err();
        assert_eq!(error.operation(), None, "{name}: {error}");
    }
}

/// A stable-Rust stand-in for a short fuzz run: every truncation of every fixture, and every
/// byte replaced by a few troublesome ones, must decode or be refused, never break the round
/// trip (which panics).
#[test]
fn mutated_fixtures_never_break_the_round_trip() {
    let mut documents: Vec<(String, Vec<u8>)> = Vec::new();
    for folder in [fixtures(), fixtures().join("golden")] {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "xml") {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                documents.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    for (name, data) in documents {
        let check = |bytes: &[u8]| {
            if name.contains("request") {
                let _ = round_trip::soap_request(bytes);
            } else {
                let _ = round_trip::soap_response(bytes);
            }
        };
        for cut in 0..data.len() {
            check(&data[..cut]);
        }
        let mut mutated = data.clone();
        for i in (0..data.len()).step_by(2) {
            for replacement in [b'<', 0xC3] {
                mutated[i] = replacement;
                check(&mutated);
            }
            mutated[i] = data[i];
        }
    }
}
