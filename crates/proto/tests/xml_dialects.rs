//! The POX and mobilesync codecs against spec-shaped fixtures and byte-exact golden files.
//!
//! - `tests/fixtures/*.xml` are documents modelled on the examples in [MS-OXDSCLI] and
//!   [MS-ASCMD], named after the section they follow, with our own values.
//! - `tests/fixtures/golden/*.xml` are autodisco's own output. They are compared byte for byte;
//!   after an intended change, regenerate them with `UPDATE_GOLDEN=1 cargo test -p
//!   autodisco-proto` and review the diff.
//! - `tests/fixtures/hostile/*.xml` are attacks the request parser must refuse.
//!
//! Our output is also checked structurally against the spec examples: every element path of an
//! example appears in our document for the same case.

mod common;

use common::mail_server as server;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autodisco_proto::mobilesync::{self, MobileSyncAction, MobileSyncServerType};
use autodisco_proto::pox::{self, Encryption, ProtocolKind};
use autodisco_proto::profile::{Authentication, EwsEndpoints, MapiHttpEndpoints, Security};
use autodisco_proto::{
    AccountSettings, Answer, AutodiscoverRequest, Dialect, EmailAddress, ErrorCode, ErrorStamp,
    MobileSyncRequest, MobileSyncResponse, OutlookRequest, OutlookResponse, RenderOptions,
    RequestError, ServiceProfile, XmlError, parse_request, render_request_error, round_trip,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_golden(name: &str, actual: &str) {
    common::check_golden_file(&fixtures().join("golden").join(name), actual.as_bytes());
}

fn stamp() -> ErrorStamp {
    ErrorStamp::new("10:20:30.1234567", 1_234_567_890)
}

/// A profile that uses every feature the POX and mobilesync renderers know.
fn full_profile() -> ServiceProfile {
    let mut pop3 = server("pop.hoster.example", 995, Security::Tls);
    pop3.authentication = Authentication::PasswordEncrypted;
    pop3.username = "%EMAILLOCALPART%".to_owned();
    ServiceProfile {
        display_name: Some("Hoster Mail".to_owned()),
        imap: vec![server("imap.hoster.example", 993, Security::Tls)],
        pop3: vec![pop3],
        smtp: vec![
            server("smtp.hoster.example", 465, Security::Tls),
            server("smtp.hoster.example", 587, Security::Starttls),
            server("legacy.hoster.example", 25, Security::None),
        ],
        ews: Some(EwsEndpoints {
            url: "https://ews.hoster.example/EWS/Exchange.asmx".to_owned(),
            availability_url: None,
            oof_url: None,
            oab_url: Some("https://ews.hoster.example/OAB/".to_owned()),
            um_url: Some("https://ews.hoster.example/UnifiedMessaging/Service.asmx".to_owned()),
            ecp_url: Some("https://ews.hoster.example/ecp/?domain=%EMAILDOMAIN%".to_owned()),
            owa_url: Some("https://webmail.hoster.example/?user=%EMAILADDRESS%&lang=en".to_owned()),
            mailbox_server: Some("mbx01.hoster.example".to_owned()),
            rpc_http_server: Some("rpc.hoster.example".to_owned()),
            auth_package: Some("basic".to_owned()),
        }),
        activesync_url: Some("https://eas.hoster.example/Microsoft-Server-ActiveSync".to_owned()),
        mapi_http: Some(MapiHttpEndpoints {
            mailstore_internal_url:
                "https://mapi.hoster.local/mapi/emsmdb/?MailboxId=%EMAILADDRESS%".to_owned(),
            mailstore_external_url:
                "https://mapi.hoster.example/mapi/emsmdb/?MailboxId=%EMAILADDRESS%".to_owned(),
            addressbook_internal_url:
                "https://mapi.hoster.local/mapi/nspi/?MailboxId=%EMAILADDRESS%".to_owned(),
            addressbook_external_url:
                "https://mapi.hoster.example/mapi/nspi/?MailboxId=%EMAILADDRESS%".to_owned(),
        }),
        documentation_url: None,
        mx: Vec::new(),
    }
}

fn settings(profile: ServiceProfile) -> AccountSettings {
    let mut settings = AccountSettings::new(
        EmailAddress::parse("pat.lee@tenant-one.example").unwrap(),
        Arc::new(profile),
    );
    // Escaping is part of the golden output.
    settings.display_name = Some("Pat Lee <Sales & Support>".to_owned());
    settings
}

fn options(mapi_http: bool) -> RenderOptions {
    RenderOptions {
        mapi_http,
        stamp: stamp(),
    }
}

/// Every element path of a document, as `alias:Local/alias:Local/...`, with the AutoDiscover
/// namespaces shortened. Read with quick-xml directly so the check does not trust our reader.
fn element_paths(document: &[u8]) -> BTreeSet<String> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let alias = |namespace: &[u8]| match namespace {
        b"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006" => "ad",
        b"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a" => "ol",
        b"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006" => {
            "ms"
        }
        _ => "other",
    };
    let mut reader = quick_xml::NsReader::from_reader(document);
    let mut stack: Vec<String> = Vec::new();
    let mut paths = BTreeSet::new();
    loop {
        let (namespace, event) = reader.read_resolved_event().unwrap();
        let prefix = match namespace {
            ResolveResult::Bound(namespace) => alias(namespace.into_inner()),
            _ => "none",
        };
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(event, Event::Empty(_));
                let local = String::from_utf8(start.local_name().into_inner().to_vec()).unwrap();
                stack.push(format!("{prefix}:{local}"));
                paths.insert(stack.join("/"));
                if is_empty {
                    stack.pop();
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

/// Asserts that every element path of the spec-shaped `example` appears in `ours`, except
/// those containing one of `skip`.
fn assert_shape(example: &str, ours: &str, skip: &[&str]) {
    let expected = element_paths(&fixture(example));
    let actual = element_paths(ours.as_bytes());
    let missing: Vec<_> = expected
        .iter()
        .filter(|path| !skip.iter().any(|s| path.contains(s)))
        .filter(|path| !actual.contains(*path))
        .collect();
    assert!(
        missing.is_empty(),
        "{example}: our document lacks {missing:#?}\n{ours}"
    );
}

mod requests {
    use super::*;

    #[test]
    fn outlook_request_parses() {
        let request = parse_request(&fixture("ms-oxdscli-2.2.3-request.xml")).unwrap();
        let AutodiscoverRequest::Outlook(request) = request else {
            panic!("not an Outlook request")
        };
        assert_eq!(
            request,
            OutlookRequest::for_address(EmailAddress::parse("pat.lee@tenant-one.example").unwrap())
        );
        check_golden("pox-request.xml", &request.to_xml());
    }

    #[test]
    fn legacy_dn_wins_and_prefixes_do_not_matter() {
        let request = parse_request(&fixture("ms-oxdscli-2.2.3-request-legacydn.xml")).unwrap();
        let AutodiscoverRequest::Outlook(request) = request else {
            panic!("not an Outlook request")
        };
        assert_eq!(
            request.email_address.as_ref().unwrap().to_string(),
            "old.name@tenant-one.example"
        );
        // [MS-OXDSCLI] 3.2.5: with both, the LegacyDN is used.
        assert_eq!(
            request.mailbox().unwrap().to_string(),
            "pat.lee@tenant-one.example"
        );
    }

    #[test]
    fn mobilesync_request_parses() {
        let request = parse_request(&fixture("ms-ascmd-2.2.1.1-request.xml")).unwrap();
        let expected = MobileSyncRequest {
            email_address: EmailAddress::parse("sam@tenant-two.example").unwrap(),
        };
        assert_eq!(request, AutodiscoverRequest::MobileSync(expected.clone()));
        check_golden("mobilesync-request.xml", &expected.to_xml());
    }
}

mod outlook_goldens {
    use super::*;

    #[test]
    fn settings() {
        let answer = Answer::Settings(super::settings(full_profile()));
        let xml = pox::render_answer(&answer, &options(false));
        check_golden("pox-settings.xml", &xml);
        assert_shape("ms-oxdscli-2.2.4-imap-smtp-response.xml", &xml, &[]);
        // Without the client's announcement there is no mapiHttp block.
        assert!(!xml.contains("mapiHttp"));
    }

    #[test]
    fn settings_with_mapi_http() {
        let answer = Answer::Settings(super::settings(full_profile()));
        let xml = pox::render_answer(&answer, &options(true));
        check_golden("pox-settings-mapihttp.xml", &xml);
        // The spec example's WEB block nests an EXPR Protocol under External; we send EXPR as
        // its own block.
        assert_shape(
            "ms-oxdscli-4.4-mapihttp-response.xml",
            &xml,
            &["ol:External/ol:Protocol"],
        );
    }

    #[test]
    fn minimal_imap_only_profile() {
        let profile = ServiceProfile {
            imap: vec![server("mail.hoster.example", 143, Security::Starttls)],
            smtp: vec![server("mail.hoster.example", 587, Security::Starttls)],
            ..ServiceProfile::default()
        };
        let mut settings = super::settings(profile);
        settings.display_name = None;
        settings.login_name = Some("u-4711".to_owned());
        let xml = pox::render_answer(&Answer::Settings(settings), &options(true));
        check_golden("pox-settings-imap-only.xml", &xml);
        assert!(!xml.contains("EXCH") && !xml.contains("mapiHttp") && !xml.contains("DisplayName"));
    }

    #[test]
    fn redirects() {
        let address = EmailAddress::parse("pat.lee@eu.tenant-one.example").unwrap();
        let xml = pox::render_answer(&Answer::RedirectAddr(address), &options(false));
        check_golden("pox-redirect-addr.xml", &xml);
        assert_shape("ms-oxdscli-4.2-redirect-addr-response.xml", &xml, &[]);

        let url = "https://autodiscover.eu.tenant-one.example/autodiscover/autodiscover.xml";
        let xml = pox::render_answer(&Answer::RedirectUrl(url.to_owned()), &options(false));
        check_golden("pox-redirect-url.xml", &xml);
    }

    #[test]
    fn errors() {
        let xml = pox::render_answer(&Answer::NotHosted, &options(false));
        check_golden("pox-error-500.xml", &xml);
        let example = "ms-oxdscli-2.2.4.1.1.3-error-500-response.xml";
        assert_eq!(
            element_paths(xml.as_bytes()),
            element_paths(&fixture(example))
        );

        check_golden(
            "pox-error-600.xml",
            &pox::render_error(ErrorCode::InvalidRequest, &stamp()),
        );
        check_golden(
            "pox-error-601.xml",
            &pox::render_error(ErrorCode::ProviderUnavailable, &stamp()),
        );
        check_golden(
            "pox-error-603.xml",
            &pox::render_error(ErrorCode::InternalError, &stamp()),
        );
    }
}

mod mobilesync_goldens {
    use super::*;

    #[test]
    fn settings() {
        let answer = Answer::Settings(super::settings(full_profile()));
        let xml = mobilesync::render_answer(&answer, &stamp());
        check_golden("mobilesync-settings.xml", &xml);
        // The example also lists a CertEnroll server; autodisco offers only MobileSync.
        assert_shape(
            "ms-ascmd-4.2.4-server-settings-response.xml",
            &xml,
            &["ms:ServerData"],
        );
    }

    #[test]
    fn no_activesync_endpoint_is_601() {
        let mut profile = full_profile();
        profile.activesync_url = None;
        let xml = mobilesync::render_answer(&Answer::Settings(super::settings(profile)), &stamp());
        check_golden("mobilesync-error-601.xml", &xml);
        let example = "ms-ascmd-2.2.3.64-error-600-response.xml";
        assert_eq!(
            element_paths(xml.as_bytes()),
            element_paths(&fixture(example))
        );
    }

    #[test]
    fn redirect_and_not_hosted() {
        let address = EmailAddress::parse("sam@eu.tenant-two.example").unwrap();
        let xml = mobilesync::render_answer(&Answer::RedirectAddr(address), &stamp());
        check_golden("mobilesync-redirect.xml", &xml);

        let xml = mobilesync::render_answer(&Answer::NotHosted, &stamp());
        check_golden("mobilesync-error-500.xml", &xml);
        check_golden(
            "mobilesync-error-600.xml",
            &mobilesync::render_error(ErrorCode::InvalidRequest, &stamp()),
        );
    }
}

mod decoding_spec_examples {
    use super::*;

    #[test]
    fn outlook_redirect_addr() {
        let response =
            OutlookResponse::from_xml(&fixture("ms-oxdscli-4.2-redirect-addr-response.xml"))
                .unwrap();
        assert_eq!(
            response,
            OutlookResponse::RedirectAddr(
                EmailAddress::parse("pat.lee@eu.tenant-one.example").unwrap()
            )
        );
    }

    #[test]
    fn outlook_mapi_http() {
        let OutlookResponse::Settings(settings) =
            OutlookResponse::from_xml(&fixture("ms-oxdscli-4.4-mapihttp-response.xml")).unwrap()
        else {
            panic!("not settings")
        };
        assert_eq!(settings.user.display_name.as_deref(), Some("Pat Lee"));
        assert_eq!(
            settings.user.deployment_id.as_deref(),
            Some("5b0e2c9d-0a51-4f7e-b2a4-1c6f0e9d3a77")
        );
        let [mapi, web] = settings.protocols.as_slice() else {
            panic!("expected two protocol blocks")
        };
        assert_eq!(mapi.kind, ProtocolKind::MapiHttp);
        assert_eq!(mapi.version.as_deref(), Some("1"));
        assert!(
            mapi.mail_store
                .as_ref()
                .unwrap()
                .internal_url
                .as_deref()
                .unwrap()
                .contains("/mapi/emsmdb/")
        );
        assert_eq!(mapi.address_book.as_ref().unwrap().external_url, None);
        assert_eq!(web.kind, ProtocolKind::Web);
        let owa = web.owa_url.as_ref().unwrap();
        assert_eq!(owa.url, "https://mail.tenant-one.example/owa");
        assert_eq!(owa.authentication_method.as_deref(), Some("Fba"));
    }

    #[test]
    fn outlook_imap_smtp() {
        let OutlookResponse::Settings(settings) =
            OutlookResponse::from_xml(&fixture("ms-oxdscli-2.2.4-imap-smtp-response.xml")).unwrap()
        else {
            panic!("not settings")
        };
        let [imap, smtp] = settings.protocols.as_slice() else {
            panic!("expected two protocol blocks")
        };
        assert_eq!(imap.kind, ProtocolKind::Imap);
        assert_eq!(imap.port, Some(143));
        assert_eq!(
            (imap.ssl, imap.encryption),
            (Some(true), Some(Encryption::Tls))
        );
        assert_eq!(imap.login_name.as_deref(), Some("robin"));
        assert_eq!(smtp.encryption, Some(Encryption::Auto));
        assert_eq!(smtp.ssl, None);
        assert_eq!(smtp.smtp_last, Some(false));
    }

    #[test]
    fn outlook_error() {
        let OutlookResponse::Error(error) =
            OutlookResponse::from_xml(&fixture("ms-oxdscli-2.2.4.1.1.3-error-500-response.xml"))
                .unwrap()
        else {
            panic!("not an error")
        };
        assert_eq!(error.code, ErrorCode::NotHosted);
        assert_eq!(error.stamp.id, "3391047264");
    }

    #[test]
    fn mobilesync_settings() {
        let MobileSyncResponse::Action {
            culture,
            user,
            action: MobileSyncAction::Settings(servers),
        } = MobileSyncResponse::from_xml(&fixture("ms-ascmd-4.2.4-server-settings-response.xml"))
            .unwrap()
        else {
            panic!("not settings")
        };
        assert_eq!(culture.as_deref(), Some("en:us"));
        assert_eq!(user.unwrap().email_address, "sam@tenant-two.example");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].server_type, MobileSyncServerType::MobileSync);
        assert_eq!(servers[1].server_type, MobileSyncServerType::CertEnroll);
        assert_eq!(servers[1].name.as_deref(), Some(""));
        assert_eq!(
            servers[1].server_data.as_deref(),
            Some("DeviceCertTemplate")
        );
    }

    #[test]
    fn mobilesync_errors() {
        let MobileSyncResponse::Action {
            action: MobileSyncAction::Error(error),
            ..
        } = MobileSyncResponse::from_xml(&fixture("ms-ascmd-4.2.2-action-error-response.xml"))
            .unwrap()
        else {
            panic!("not an action error")
        };
        assert_eq!(error.status, Some(2));
        assert_eq!(error.debug_data.as_deref(), Some("Lookup"));

        let MobileSyncResponse::Error(error) =
            MobileSyncResponse::from_xml(&fixture("ms-ascmd-2.2.3.64-error-600-response.xml"))
                .unwrap()
        else {
            panic!("not an error")
        };
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert_eq!(error.stamp.time, "08:15:42.0730112");
    }

    #[test]
    fn dialects_do_not_mix() {
        assert!(
            OutlookResponse::from_xml(&fixture("ms-ascmd-4.2.4-server-settings-response.xml"))
                .is_err()
        );
        assert!(
            MobileSyncResponse::from_xml(&fixture("ms-oxdscli-4.4-mapihttp-response.xml")).is_err()
        );
    }
}

/// Runs the fuzz targets' round-trip checks over every fixture and golden file.
#[test]
fn round_trip_over_all_fixtures() {
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    files(&fixtures(), &mut paths);
    let (mut requests, mut outlook, mut mobile) = (0, 0, 0);
    for path in &paths {
        let data = std::fs::read(path).unwrap();
        requests += usize::from(round_trip::request(&data).is_some());
        outlook += usize::from(round_trip::outlook_response(&data).is_some());
        mobile += usize::from(round_trip::mobilesync_response(&data).is_some());
    }
    // Spec requests plus the two request goldens; spec responses plus the goldens.
    assert!(requests >= 5, "{requests} requests decoded");
    assert!(outlook >= 12, "{outlook} Outlook responses decoded");
    assert!(mobile >= 8, "{mobile} mobilesync responses decoded");
}

/// Hostile bodies: each is refused with a 600 error, quickly.
mod hostile {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(1);

    fn refused(body: &[u8]) -> RequestError {
        let start = Instant::now();
        let error = parse_request(body).unwrap_err();
        let elapsed = start.elapsed();
        assert!(elapsed < LIMIT, "took {elapsed:?}: {error}");
        assert_eq!(error.code(), ErrorCode::InvalidRequest, "{error}");
        // The error document never echoes the request.
        let rendered = render_request_error(&error, &stamp());
        assert!(rendered.contains("<ErrorCode>600</ErrorCode>"));
        assert!(rendered.contains("<DebugData />"));
        error
    }

    fn request_with_address(address: &[u8]) -> Vec<u8> {
        let mut body = br#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>"#.to_vec();
        body.extend_from_slice(address);
        body.extend_from_slice(br#"</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#);
        body
    }

    #[test]
    fn billion_laughs() {
        let error = refused(&fixture("hostile/billion-laughs.xml"));
        assert!(error.to_string().contains("DTD"), "{error}");
    }

    #[test]
    fn external_entity() {
        let error = refused(&fixture("hostile/external-entity.xml"));
        assert_eq!(error, RequestError::Xml(XmlError::DoctypeRefused));
        let error = refused(&fixture("hostile/undeclared-entity.xml"));
        assert!(error.to_string().contains("&secret;"), "{error}");
    }

    #[test]
    fn ten_megabytes() {
        let body = request_with_address(&vec![b'a'; 10 * 1024 * 1024]);
        let error = refused(&body);
        assert!(error.to_string().contains("at most 65536"), "{error}");
    }

    #[test]
    fn invalid_utf8() {
        let error = refused(&request_with_address(b"pat\xff\xfe@tenant-one.example"));
        assert!(error.to_string().contains("UTF-8"), "{error}");
        let error = refused(&request_with_address(b"pat\xc0\xaf@tenant-one.example"));
        assert!(error.to_string().contains("UTF-8"), "{error}");
    }

    #[test]
    fn ten_thousand_deep() {
        let depth = 10_000;
        let mut body = String::from(
            r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">"#,
        );
        // Only the start tags: with the end tags the body would exceed the size limit, and the
        // depth limit must trip on its own, long before the end.
        body.push_str(&"<a>".repeat(depth));
        let error = refused(body.as_bytes());
        assert!(error.to_string().contains("nested more than"), "{error}");
    }

    #[test]
    fn unknown_namespace() {
        let error = refused(&fixture("hostile/unknown-namespace.xml"));
        assert!(matches!(error, RequestError::UnknownRoot { .. }), "{error}");
    }

    #[test]
    fn missing_address() {
        let error = refused(&fixture("hostile/missing-address.xml"));
        assert_eq!(
            error,
            RequestError::NoAddress {
                dialect: Dialect::Outlook
            }
        );
        let error = refused(&request_with_address(b"   "));
        assert!(matches!(error, RequestError::NoAddress { .. }), "{error}");
        let error = refused(&request_with_address(b"not-an-address"));
        assert!(
            matches!(error, RequestError::InvalidAddress { .. }),
            "{error}"
        );
    }

    #[test]
    fn markup_in_the_address_is_never_echoed() {
        let error = refused(&request_with_address(b"&lt;script&gt;@tenant-one.example"));
        let rendered = render_request_error(&error, &stamp());
        assert!(!rendered.contains("script"), "{rendered}");
        assert_eq!(
            rendered,
            pox::render_error(ErrorCode::InvalidRequest, &stamp())
        );
    }
}
