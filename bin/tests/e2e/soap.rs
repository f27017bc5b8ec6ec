//! SOAP Autodiscover ([MS-OXWSADISC]) through the real HTTPS service, and one profile change
//! seen the same in POX, SOAP and v2 JSON.

use autodisco_proto::soap::{
    SettingValue, SoapErrorCode, SoapRequest, SoapResponse, SoapResponseBody, SoapVersion,
    UserResponse,
};
use autodisco_test_support::{Backend, SERVICE_HOST, TestServer, outlook_request};

use crate::{element, post, protocol_blocks, seeded_server};

on_both_backends!(
    get_user_settings,
    redirects_and_unhosted_users,
    soap12_domain_settings_and_faults,
    x_soap_enabled_on_every_answer,
    one_profile_change_shows_in_pox_soap_and_json
);

fn soap_url(server: &TestServer, path: &str) -> String {
    format!(
        "https://{SERVICE_HOST}:{}{path}",
        server.https_addr().port()
    )
}

/// POSTs `body` as the EWS libraries do (SOAP 1.1, `text/xml`, no SOAPAction) and returns the
/// status, content type, `X-SOAP-Enabled` and body.
pub(crate) async fn post_soap(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: String,
) -> (u16, String, Option<String>, String) {
    let response = server
        .client()
        .post(soap_url(server, path))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST to the SOAP URL");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (content_type, soap_enabled) = (
        header("content-type").unwrap_or_default(),
        header("x-soap-enabled"),
    );
    (
        response.status().as_u16(),
        content_type,
        soap_enabled,
        response.text().await.unwrap(),
    )
}

/// Asks for `settings` of `mailbox` and returns the one `UserResponse`.
pub(crate) async fn user_settings(
    server: &TestServer,
    mailbox: &str,
    settings: &[&str],
) -> UserResponse {
    let request = SoapRequest::get_user_settings(mailbox, settings);
    let (status, content_type, soap_enabled, body) = post_soap(
        server,
        "/autodiscover/autodiscover.svc",
        "text/xml; charset=utf-8",
        request.to_xml(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/xml; charset=utf-8");
    assert_eq!(soap_enabled.as_deref(), Some("True"));
    let response =
        SoapResponse::from_xml(body.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert_eq!(response.version, SoapVersion::Soap11);
    assert_eq!(
        response
            .server_version
            .as_ref()
            .and_then(|v| v.version.as_deref()),
        Some("Exchange2016")
    );
    assert!(
        body.contains("GetUserSettingsResponse</a:Action>"),
        "{body}"
    );
    let SoapResponseBody::GetUserSettings(mut body) = response.body else {
        panic!("{body:?}")
    };
    assert_eq!(body.error_code, SoapErrorCode::NoError);
    assert_eq!(body.user_responses.len(), 1);
    body.user_responses.remove(0)
}

async fn get_user_settings(backend: Backend) {
    let server = seeded_server(backend).await;
    let user = user_settings(
        &server,
        "jane@customer.example",
        &[
            "UserDisplayName",
            "AutoDiscoverSMTPAddress",
            "ExternalEwsUrl",
            "InternalEwsUrl",
            "EwsSupportedSchemas",
            "CasVersion",
            "ExternalOABUrl",
            "ExternalImap4Connections",
            "ExternalSmtpConnections",
            "ExternalPop3Connections",
            "NoSuchSetting",
        ],
    )
    .await;
    assert_eq!(user.error_code, SoapErrorCode::NoError);
    assert_eq!(
        user.string_setting("UserDisplayName"),
        Some("Jane <Doe> & Co")
    );
    assert_eq!(
        user.string_setting("ExternalEwsUrl"),
        Some("https://mail.hoster.example/EWS/Exchange.asmx")
    );
    assert_eq!(
        user.string_setting("InternalEwsUrl"),
        user.string_setting("ExternalEwsUrl")
    );
    let schemas = user.string_setting("EwsSupportedSchemas").unwrap();
    assert_eq!(
        schemas.split(',').map(str::trim).max(),
        Some("Exchange2016"),
        "{schemas}"
    );
    assert_eq!(
        user.string_setting("ExternalOABUrl"),
        Some("https://mail.hoster.example/OAB/customer.example/")
    );
    let Some(SettingValue::ProtocolConnections(imap)) = user.setting("ExternalImap4Connections")
    else {
        panic!("{user:?}")
    };
    assert_eq!(
        (
            imap[0].hostname.as_str(),
            imap[0].port,
            imap[0].encryption_method.as_str()
        ),
        ("imap.hoster.example", 993, "SSL")
    );
    let Some(SettingValue::ProtocolConnections(smtp)) = user.setting("ExternalSmtpConnections")
    else {
        panic!("{user:?}")
    };
    assert_eq!(
        (smtp[0].port, smtp[0].encryption_method.as_str()),
        (587, "TLS")
    );
    // Only what was asked for; the default profile has no POP3.
    assert_eq!(user.settings.len(), 9, "{user:?}");
    let errors: Vec<_> = user
        .setting_errors
        .iter()
        .map(|e| (e.name.as_str(), e.error_code.clone()))
        .collect();
    assert_eq!(
        errors,
        [
            (
                "ExternalPop3Connections",
                SoapErrorCode::SettingIsNotAvailable
            ),
            ("NoSuchSetting", SoapErrorCode::InvalidSetting)
        ]
    );

    // An alias-domain address gets the settings directly, with its primary address.
    let alias = user_settings(
        &server,
        "Someone@Alias.Example",
        &["AutoDiscoverSMTPAddress"],
    )
    .await;
    assert_eq!(
        alias.string_setting("AutoDiscoverSMTPAddress"),
        Some("Someone@customer.example")
    );
    // The path is matched in any case, and the WS-Security binding's path is accepted too.
    for path in [
        "/AutoDiscover/AutoDiscover.SVC",
        "/autodiscover/autodiscover.svc/wssecurity",
    ] {
        let (status, _, _, body) = post_soap(
            &server,
            path,
            "text/xml; charset=utf-8",
            SoapRequest::get_user_settings("x@business.example", &["ExternalEwsUrl"]).to_xml(),
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            body.contains("https://ews.hoster.example/EWS/Exchange.asmx"),
            "{body}"
        );
    }
    server.stop().await;
}

async fn redirects_and_unhosted_users(backend: Backend) {
    let server = seeded_server(backend).await;
    // Clients probe with a dummy address before authenticating: HTTP 200 with InvalidUser.
    for mailbox in [
        "DUMMY@example.com",
        "someone@suspended.example",
        "not an address",
    ] {
        let user = user_settings(&server, mailbox, &["ExternalEwsUrl"]).await;
        assert_eq!(user.error_code, SoapErrorCode::InvalidUser, "{mailbox}");
        assert!(user.settings.is_empty() && user.setting_errors.is_empty());
    }
    let moved = user_settings(&server, "moved@customer.example", &["ExternalEwsUrl"]).await;
    assert_eq!(moved.error_code, SoapErrorCode::RedirectAddress);
    assert_eq!(
        moved.redirect_target.as_deref(),
        Some("moved@business.example")
    );
    let elsewhere = user_settings(&server, "elsewhere@customer.example", &["ExternalEwsUrl"]).await;
    assert_eq!(elsewhere.error_code, SoapErrorCode::RedirectUrl);
    assert_eq!(
        elsewhere.redirect_target.as_deref(),
        Some("https://autodiscover.other.example/autodiscover/autodiscover.svc")
    );
    server.stop().await;
}

async fn soap12_domain_settings_and_faults(backend: Backend) {
    let server = seeded_server(backend).await;
    let mut request = SoapRequest::get_user_settings("x@business.example", &["ExternalEwsUrl"]);
    request.version = SoapVersion::Soap12;
    let (status, content_type, _, body) = post_soap(
        &server,
        "/autodiscover/autodiscover.svc",
        "application/soap+xml; charset=utf-8",
        request.to_xml(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/soap+xml; charset=utf-8");
    assert_eq!(
        SoapResponse::from_xml(body.as_bytes()).unwrap().version,
        SoapVersion::Soap12
    );

    let domains = r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Header><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetDomainSettings</wsa:Action></soap:Header>
  <soap:Body><a:GetDomainSettingsRequestMessage><a:Request>
    <a:Domains><a:Domain>Business.Example</a:Domain><a:Domain>unknown.example</a:Domain></a:Domains>
    <a:RequestedSettings><a:Setting>ExternalEwsUrl</a:Setting></a:RequestedSettings>
  </a:Request></a:GetDomainSettingsRequestMessage></soap:Body>
</soap:Envelope>"#;
    let (status, _, _, body) = post_soap(
        &server,
        "/autodiscover/autodiscover.svc",
        "text/xml",
        domains.to_owned(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let SoapResponseBody::GetDomainSettings(response) =
        SoapResponse::from_xml(body.as_bytes()).unwrap().body
    else {
        panic!("{body}")
    };
    assert_eq!(
        response.domain_responses[0].settings[0].value,
        "https://ews.hoster.example/EWS/Exchange.asmx"
    );
    assert_eq!(
        response.domain_responses[1].error_code,
        SoapErrorCode::InvalidDomain
    );

    // A known action with a broken body: that operation's InvalidRequest, HTTP 200.
    let broken = domains
        .replace("<a:Domains>", "<a:Nope>")
        .replace("</a:Domains>", "</a:Nope>");
    let (status, _, _, body) = post_soap(
        &server,
        "/autodiscover/autodiscover.svc",
        "text/xml",
        broken,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<ErrorCode>InvalidRequest</ErrorCode>"),
        "{body}"
    );
    // Not an envelope, or a hostile one: a SOAP fault, and nothing echoed.
    for hostile in [
        "not xml at all <x>".to_owned(),
        r#"<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#.to_owned(),
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetFederationInformationRequestMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"/></s:Body></s:Envelope>"#.to_owned(),
    ] {
        let (status, _, soap_enabled, body) =
            post_soap(&server, "/autodiscover/autodiscover.svc", "text/xml", hostile).await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(soap_enabled.as_deref(), Some("True"));
        assert!(body.contains("<faultcode>s:Client</faultcode>"), "{body}");
        assert!(!body.contains("aaaa") && !body.contains("Federation"), "{body}");
    }
    server.stop().await;
}

async fn x_soap_enabled_on_every_answer(backend: Backend) {
    let server = seeded_server(backend).await;
    let port = server.https_addr().port();
    for (host, method, path, status) in [
        (SERVICE_HOST, "GET", "/autodiscover/autodiscover.xml", 405),
        (SERVICE_HOST, "GET", "/autodiscover/autodiscover.svc", 405),
        (SERVICE_HOST, "GET", "/nothing/here", 404),
        (
            "autodiscover.direct.example",
            "GET",
            "/autodiscover/autodiscover.xml",
            405,
        ),
        ("autodiscover.direct.example", "GET", "/favicon.ico", 404),
        (
            SERVICE_HOST,
            "GET",
            "/autodiscover/autodiscover.json?Email=a@customer.example&Protocol=EWS",
            200,
        ),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = server
            .client()
            .request(method, format!("https://{host}:{port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{host}{path}");
        assert_eq!(
            response
                .headers()
                .get("x-soap-enabled")
                .map(|v| v.to_str().unwrap()),
            Some("True"),
            "{host}{path}"
        );
    }
    // The POX answer carries it too.
    let response = server
        .client()
        .post(server.pox_url())
        .body(outlook_request("a@customer.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("x-soap-enabled").unwrap(), "True");
    server.stop().await;
}

/// The issue's acceptance test: a setting changed once shows up in every dialect.
async fn one_profile_change_shows_in_pox_soap_and_json(backend: Backend) {
    let server = seeded_server(backend).await;
    let mut profile = server.store.get_profile("default").await.unwrap();
    let new_url = "https://ews2.hoster.example/EWS/Exchange.asmx";
    profile.ews.as_mut().unwrap().url = new_url.to_owned();
    server
        .store
        .put_profile(&autodisco_directory::Actor::Cli, "default", &profile)
        .await
        .unwrap();
    server.refresh().await;

    let (_, _, pox) = post(&server, outlook_request("someone@customer.example"), &[]).await;
    assert_eq!(
        element(protocol_blocks(&pox, "EXCH")[0], "EwsUrl"),
        Some(new_url),
        "{pox}"
    );

    let soap = user_settings(&server, "someone@customer.example", &["ExternalEwsUrl"]).await;
    assert_eq!(soap.string_setting("ExternalEwsUrl"), Some(new_url));

    let (status, json) = crate::v2::get_json(
        &server,
        "/autodiscover/autodiscover.json/v1.0/someone@customer.example?Protocol=EWS",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["Url"], new_url, "{json}");
    server.stop().await;
}
