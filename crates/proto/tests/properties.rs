//! Properties of every decoder and every renderer, over generated values (issue 10).
//!
//! - Request-derived values (addresses with `<`, `&`, quotes, control characters, long local
//!   parts, IDNA forms; display and login names; URLs) either are refused up front with an error
//!   or go through every dialect (POX, mobilesync, SOAP, v2 JSON, autoconfig, mobileconfig,
//!   PACC) and come back intact from the answer.
//! - No decoder panics on arbitrary bytes, and what decodes survives a decode-encode-decode trip.
//!
//! Case counts stay modest so the suite runs in seconds; `PROPTEST_CASES` raises them.

use std::sync::Arc;

use autodisco_proto::autoconfig::ClientConfig;
use autodisco_proto::mobileconfig::{self, MobileConfig, ProfileOptions};
use autodisco_proto::mobilesync::{MobileSyncAction, MobileSyncResponse};
use autodisco_proto::pacc::PaccDocument;
use autodisco_proto::pox::{OutlookRequest, OutlookResponse, RenderOptions};
use autodisco_proto::soap::{
    self, GetUserSettingsResponse, SoapRequest, SoapRequestBody, SoapResponse, SoapResponseBody,
};
use autodisco_proto::v2::{self, V2Answer, V2Response};
use autodisco_proto::{
    AccountSettings, Answer, AutodiscoverRequest, Domain, EmailAddress, ErrorStamp, ServiceProfile,
    parse_request, round_trip,
};
use proptest::prelude::*;

/// What XML 1.0 can carry of a text value, as the decoders return it: characters XML does not
/// allow become U+FFFD (the writer's rule) and the decoders trim XML white space.
fn as_xml_text(value: &str) -> String {
    let carried: String = value
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect();
    carried.trim_matches([' ', '\t', '\r', '\n']).to_owned()
}

/// Local parts an attacker or a careless client sends: XML and HTML specials, quotes, controls,
/// spaces, non-ASCII, and lengths around the 64-byte limit.
fn local_part() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z0-9._%+'&-]{1,12}",
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("&amp;".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("\u{0}".to_owned()),
        Just("\u{7}".to_owned()),
        Just("\r\n".to_owned()),
        Just(" ".to_owned()),
        Just("]]>".to_owned()),
        Just("ü".to_owned()),
        Just("日本".to_owned()),
        Just("\u{FFFE}".to_owned()),
        "[a-z]{60,70}",
    ];
    prop::collection::vec(piece, 1..4).prop_map(|pieces| pieces.concat())
}

/// Domains in the forms clients send: any case, a trailing dot, U-labels and A-labels.
fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,20}\\.(example|org|de)",
        Just("Bücher.Example".to_owned()),
        Just("xn--bcher-kva.example".to_owned()),
        Just("EXAMPLE.ORG.".to_owned()),
        Just("例え.テスト".to_owned()),
        Just("a..b".to_owned()),
        Just("-x.example".to_owned()),
        Just("xn--zz.example".to_owned()),
        "[a-z]{64}\\.example",
    ]
}

/// Free text such as a display name or a login name: anything, controls included.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        ".{0,20}",
        Just("Jane <Doe> & \"Co\" 'Ltd'".to_owned()),
        Just("\u{1}\u{8}\u{1b}[31m".to_owned()),
        Just(" \r\n trailing \t".to_owned()),
        Just("]]><x/>".to_owned()),
    ]
}

fn profile() -> ServiceProfile {
    let mut profile = ServiceProfile::default_for_hoster("hoster.example");
    profile.activesync_url =
        Some("https://eas.hoster.example/Microsoft-Server-ActiveSync?u=%EMAILADDRESS%".into());
    let ews = profile.ews.as_mut().expect("the default profile has EWS");
    ews.url = "https://mail.hoster.example/EWS/Exchange.asmx?m=%EMAILADDRESS%".into();
    ews.owa_url =
        Some("https://mail.hoster.example/owa/?u=%EMAILLOCALPART%&d=%EMAILDOMAIN%".into());
    profile
}

fn account(
    address: EmailAddress,
    display_name: &str,
    login_name: Option<String>,
) -> AccountSettings {
    let mut account = AccountSettings::new(address, Arc::new(profile()));
    account.display_name = Some(display_name.to_owned());
    account.login_name = login_name;
    account
}

/// Every request dialect carries the address back to the server unchanged.
fn requests_carry(address: &EmailAddress, raw: &str) {
    let pox = OutlookRequest::for_address(address.clone());
    assert_eq!(
        parse_request(pox.to_xml().as_bytes()).unwrap(),
        AutodiscoverRequest::Outlook(pox)
    );
    let mobile = autodisco_proto::MobileSyncRequest {
        email_address: address.clone(),
    };
    assert_eq!(
        parse_request(mobile.to_xml().as_bytes()).unwrap(),
        AutodiscoverRequest::MobileSync(mobile)
    );
    // SOAP keeps mailboxes as sent, valid or not: the raw text must arrive as XML can carry it.
    let soap_request = SoapRequest::get_user_settings(raw, &["UserDisplayName"]);
    let SoapRequestBody::GetUserSettings(users) =
        soap::parse_request(soap_request.to_xml().as_bytes())
            .unwrap()
            .body
    else {
        panic!("a GetUserSettings request")
    };
    assert_eq!(users.mailboxes, [as_xml_text(raw)]);
    // v2 takes the address in the query or in the path, percent-encoded by the client.
    let encoded: String = form_urlencoded::byte_serialize(raw.as_bytes()).collect();
    let query = format!("Email={encoded}&Protocol=EWS");
    let request = v2::parse_request(v2::PATH, Some(&query)).unwrap();
    assert_eq!(request.email, raw.trim());
    let path_encoded =
        percent_encoding::utf8_percent_encode(raw, percent_encoding::NON_ALPHANUMERIC).to_string();
    let path = format!("{}/v1.0/{path_encoded}", v2::PATH);
    let request = v2::parse_request(&path, Some("Protocol=ActiveSync")).unwrap();
    assert_eq!(request.email, raw.trim());
}

/// Every answer dialect renders the account so that a client reads back the same values.
fn answers_carry(account: &AccountSettings) {
    let address = account.address.to_string();
    let display_name = account.display_name.as_deref().map(as_xml_text);
    let answer = Answer::Settings(account.clone());

    // POX
    let options = RenderOptions {
        mapi_http: false,
        stamp: ErrorStamp::new("00:00:00", 1),
    };
    let xml = OutlookResponse::from_answer(&answer, &options).to_xml();
    let OutlookResponse::Settings(pox) = OutlookResponse::from_xml(xml.as_bytes()).unwrap() else {
        panic!("POX settings")
    };
    assert_eq!(
        pox.user.autodiscover_smtp_address.as_deref(),
        Some(&*address)
    );
    assert_eq!(pox.user.display_name, display_name);
    let imap = pox
        .protocols
        .iter()
        .find(|p| p.kind.as_str() == "IMAP")
        .unwrap();
    let expected_login = as_xml_text(&account.username_for(&account.profile.imap[0]));
    assert_eq!(imap.login_name.as_deref(), Some(expected_login.as_str()));
    let ews_url = account.url(&account.profile.ews.as_ref().unwrap().url);
    let exch = pox
        .protocols
        .iter()
        .find(|p| p.kind.as_str() == "EXCH")
        .unwrap();
    assert_eq!(exch.ews_url.as_deref(), Some(ews_url.as_str()));

    // mobilesync
    let xml = MobileSyncResponse::from_answer(&answer, &ErrorStamp::default()).to_xml();
    let MobileSyncResponse::Action {
        user: Some(user),
        action: MobileSyncAction::Settings(servers),
        ..
    } = MobileSyncResponse::from_xml(xml.as_bytes()).unwrap()
    else {
        panic!("mobilesync settings")
    };
    assert_eq!(user.email_address, address);
    assert_eq!(
        servers[0].url,
        account.url(account.profile.activesync_url.as_ref().unwrap())
    );

    // SOAP
    let requested: Vec<String> = [
        "AutoDiscoverSMTPAddress",
        "UserDisplayName",
        "ExternalEwsUrl",
    ]
    .map(String::from)
    .to_vec();
    let response = SoapResponse::new(
        soap::SoapVersion::Soap11,
        SoapResponseBody::GetUserSettings(GetUserSettingsResponse::new(vec![
            soap::settings::user_response(&answer, &requested),
        ])),
    );
    let decoded = SoapResponse::from_xml(response.to_xml().as_bytes()).unwrap();
    let SoapResponseBody::GetUserSettings(users) = decoded.body else {
        panic!("SOAP user settings")
    };
    let user = &users.user_responses[0];
    assert_eq!(
        user.string_setting("AutoDiscoverSMTPAddress"),
        Some(&*address)
    );
    assert_eq!(
        user.string_setting("ExternalEwsUrl"),
        Some(ews_url.as_str())
    );
    assert_eq!(
        user.string_setting("UserDisplayName").map(as_xml_text),
        display_name
    );

    // v2 JSON carries every character.
    let json = v2::answer(v2::Protocol::Ews, &answer, "https://x.example/", |_| {
        Answer::NotHosted
    })
    .to_json();
    let decoded: V2Response = serde_json::from_str(&json).unwrap();
    assert_eq!(decoded.url, ews_url);
    assert!(matches!(
        v2::answer(v2::Protocol::Ews, &answer, "", |_| Answer::NotHosted),
        V2Answer::Found(_)
    ));

    // autoconfig
    let config = ClientConfig::for_account(account, account.address.domain()).unwrap();
    let decoded = ClientConfig::from_xml(config.to_xml().as_bytes()).unwrap();
    assert_eq!(decoded.domains, [account.address.domain().to_string()]);
    assert_eq!(decoded.incoming[0].username, expected_login);

    // mobileconfig: a property list carries what XML carries.
    let options = ProfileOptions {
        identifier_prefix: mobileconfig::reverse_dns("hoster.example"),
        organization: "hoster.example".to_owned(),
    };
    let bytes = MobileConfig::for_account(account, &options)
        .unwrap()
        .to_plist_xml();
    let plist_text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        plist_text
            .chars()
            .all(|c| as_xml_text(&c.to_string()) != "\u{FFFD}" || c == '\u{FFFD}'),
        "a character XML cannot carry in {plist_text}"
    );
    let value = plist::Value::from_reader_xml(bytes.as_slice()).unwrap_or_else(|e| {
        panic!(
            "not a property list: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    let mail = value.as_dictionary().unwrap()["PayloadContent"]
        .as_array()
        .unwrap()[0]
        .as_dictionary()
        .unwrap()
        .clone();
    assert_eq!(mail["EmailAddress"].as_string(), Some(&*address));
    assert_eq!(
        mail["EmailAccountName"].as_string().map(as_xml_text),
        display_name
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn addresses_survive_every_dialect_or_are_refused(
        local in local_part(),
        domain in domain(),
        display_name in text(),
        login_name in prop::option::of(text()),
    ) {
        let raw = format!("{local}@{domain}");
        match EmailAddress::parse(&raw) {
            Err(error) => {
                // Refused up front, with a reason a person can read.
                prop_assert!(!error.to_string().is_empty());
            }
            Ok(address) => {
                prop_assert_eq!(EmailAddress::parse(&address.to_string()), Ok(address.clone()));
                requests_carry(&address, &raw);
                answers_carry(&account(address, &display_name, login_name));
            }
        }
    }

    #[test]
    fn domains_are_canonical(domain in domain()) {
        if let Ok(parsed) = Domain::parse(&domain) {
            prop_assert_eq!(Domain::parse(parsed.as_str()), Ok(parsed.clone()));
            prop_assert_eq!(Domain::parse(&format!("{}.", parsed.as_str().to_uppercase())), Ok(parsed.clone()));
            prop_assert!(parsed.as_str().is_ascii());
        }
    }

    #[test]
    fn pacc_documents_carry_the_profile(name in text(), path in "[a-zA-Z0-9/?=&%._~-]{0,30}") {
        let mut profile = profile();
        profile.display_name = Some(name.clone());
        profile.documentation_url = Some(format!("https://help.hoster.example/%EMAILDOMAIN%/{path}"));
        let primary = Domain::parse("customer.example").unwrap();
        let document = PaccDocument::for_domain(&profile, &primary).unwrap();
        let json = document.to_json();
        let decoded = PaccDocument::from_json(&json).unwrap();
        prop_assert_eq!(&decoded, &document);
        prop_assert_eq!(decoded.info.provider.name, name);
        prop_assert!(autodisco_proto::pacc::record_matches(
            &autodisco_proto::pacc::digest_record(&json),
            &json
        ));
    }

    #[test]
    fn display_names_leave_every_xml_answer_well_formed(name in ".{0,30}") {
        let address = EmailAddress::parse("jane@a.example").unwrap();
        answers_carry(&account(address, &name, Some(name.clone())));
    }

    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_near_xml(document in near_xml()) {
        decode_everything(document.as_bytes());
    }
}

/// Runs every decoder; the round-trip checks panic when a decoded value does not survive.
fn decode_everything(bytes: &[u8]) {
    round_trip::request(bytes);
    round_trip::outlook_response(bytes);
    round_trip::mobilesync_response(bytes);
    round_trip::soap_request(bytes);
    round_trip::soap_response(bytes);
    round_trip::autoconfig_document(bytes);
    round_trip::autoconfig_query(bytes);
    round_trip::v2_query(bytes);
    round_trip::pacc_document(bytes);
    round_trip::host_name(bytes);
    round_trip::email_address(bytes);
}

/// Documents made of the dialects' own names, namespaces and specials, so the decoders get
/// past the XML reader and into their own rules.
fn near_xml() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("Autodiscover"),
        Just("Request"),
        Just("Response"),
        Just("EMailAddress"),
        Just("AcceptableResponseSchema"),
        Just("Account"),
        Just("Action"),
        Just("Protocol"),
        Just("Type"),
        Just("s:Envelope"),
        Just("s:Body"),
        Just("a:GetUserSettingsRequestMessage"),
        Just("a:Users"),
        Just("a:User"),
        Just("a:Mailbox"),
        Just("a:RequestedSettings"),
        Just("a:Setting"),
        Just("clientConfig"),
        Just("emailProvider"),
    ];
    let namespace = prop_oneof![
        Just(autodisco_proto::pox::REQUEST_NAMESPACE),
        Just(autodisco_proto::pox::RESPONSE_SCHEMA),
        Just(autodisco_proto::mobilesync::REQUEST_NAMESPACE),
        Just(autodisco_proto::mobilesync::RESPONSE_SCHEMA),
        Just(soap::NAMESPACE),
        Just("http://schemas.xmlsoap.org/soap/envelope/"),
    ];
    let leaf = (name.clone(), text(), prop::option::of(namespace.clone())).prop_map(
        |(name, text, namespace)| {
            let text = text.replace('&', "&amp;").replace('<', "&lt;");
            match namespace {
                Some(ns) => format!(r#"<{name} xmlns="{ns}">{text}</{name}>"#),
                None => format!("<{name}>{text}</{name}>"),
            }
        },
    );
    leaf.prop_recursive(4, 24, 4, move |inner| {
        (name.clone(), namespace.clone(), prop::collection::vec(inner, 0..4)).prop_map(
            |(name, ns, children)| {
                format!(
                    r#"<{name} xmlns="{ns}" xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="{}">{}</{name}>"#,
                    soap::NAMESPACE,
                    children.concat()
                )
            },
        )
    })
}

/// The checks the newer fuzz targets run accept their seeds: a check that refused everything
/// would fuzz nothing.
#[test]
fn fuzz_seeds_pass_their_checks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read_all = |dir: &str| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{dir} is empty");
        files
    };
    type Check = fn(&[u8]) -> bool;
    let checks: [(&str, Check); 6] = [
        ("crates/proto/tests/fixtures/autoconfig", |d| {
            round_trip::autoconfig_document(d).is_some()
        }),
        ("fuzz/seeds/autoconfig_query", |d| {
            round_trip::autoconfig_query(d).is_some()
        }),
        ("fuzz/seeds/v2_query", |d| {
            // One seed lacks the address on purpose: it exercises the refusal.
            round_trip::v2_query(d).is_some() || !String::from_utf8_lossy(d).contains('@')
        }),
        ("fuzz/seeds/host_name", |d| {
            round_trip::host_name(d).is_some()
        }),
        ("fuzz/seeds/email_address", |d| {
            round_trip::email_address(d).is_some()
        }),
        ("crates/proto/tests/fixtures/pacc", |d| {
            // The digest record beside the document is not JSON.
            round_trip::pacc_document(d).is_some() || !d.starts_with(b"{")
        }),
    ];
    for (dir, check) in checks {
        for (path, data) in read_all(dir) {
            assert!(check(&data), "{path} does not pass its check");
        }
    }
}
