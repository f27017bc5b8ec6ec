//! Privacy with `auth = "basic"`: anonymous endpoints (`/mobileconfig`, autoconfig with
//! `?emailaddress=`, v2 JSON) show no user's override, so known users with overrides and unknown
//! local parts get the same answers; an authenticated POX or SOAP caller gets their own mailbox
//! (in any alias domain) and nobody else's.

use autodisco_directory::{Actor, Redirect, UserOverride};
use autodisco_proto::EmailAddress;
use autodisco_proto::soap::{
    SoapErrorCode, SoapRequest, SoapRequestBody, SoapResponse, SoapResponseBody,
};
use autodisco_test_support::Backend;

use crate::auth::AuthServer;
use crate::element;
use crate::mobileconfig::openssl_verify;

on_both_backends!(
    anonymous_answers_show_no_override,
    authenticated_callers_get_their_own_mailbox_only
);

const BASIC: &str = "auth = \"basic\"";

/// Addresses with an override each: a display and login name, a redirectAddr, a redirectUrl.
const WITH_OVERRIDES: [&str; 3] = [
    "jane@customer.example",
    "moved@customer.example",
    "elsewhere@customer.example",
];

fn address(text: &str) -> EmailAddress {
    EmailAddress::parse(text).unwrap()
}

async fn add_overrides(server: &AuthServer) {
    let mut jane = UserOverride::new(address("jane@customer.example"));
    jane.display_name = Some("Jane <Doe> & Co".into());
    jane.login_name = Some("jdoe".into());
    server.store.put_user(&Actor::Cli, &jane).await.unwrap();
    let mut moved = UserOverride::new(address("moved@customer.example"));
    moved.redirect = Some(Redirect::Address(address("new-home@customer.example")));
    server.store.put_user(&Actor::Cli, &moved).await.unwrap();
    let mut elsewhere = UserOverride::new(address("elsewhere@customer.example"));
    elsewhere.redirect = Some(Redirect::Url(
        "https://autodiscover.other.example/autodiscover/autodiscover.xml".into(),
    ));
    server
        .store
        .put_user(&Actor::Cli, &elsewhere)
        .await
        .unwrap();
    server.directory.refresh().await.unwrap();
}

/// Everything an anonymous client can ask about `who`: status and body of the Apple profile
/// (its signed content), autoconfig's MX-path document, and v2 JSON for two protocols.
async fn anonymous_answers(server: &AuthServer, who: &str) -> Vec<(u16, String)> {
    let client = server.client();
    let mut answers = Vec::new();
    for path in [
        format!("/mobileconfig?emailaddress={who}"),
        format!("/mail/config-v1.1.xml?emailaddress={who}"),
        format!("/autodiscover/autodiscover.json?Email={who}&Protocol=AutodiscoverV1"),
        format!("/autodiscover/autodiscover.json/v1.0/{who}?Protocol=ActiveSync"),
    ] {
        let response = client.get(server.url(&path)).send().await.unwrap();
        let status = response.status().as_u16();
        let signed = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/x-apple-aspen-config");
        let body = response.bytes().await.unwrap();
        let body = if signed {
            // The signature carries a signing time; the signed content is what must match.
            let folder = tempfile::tempdir().unwrap();
            openssl_verify(&body, &server.ca.cert_pem(), folder.path())
        } else {
            body.to_vec()
        };
        answers.push((status, String::from_utf8(body).unwrap()));
    }
    answers
}

async fn anonymous_answers_show_no_override(backend: Backend) {
    let server = AuthServer::start(backend, BASIC).await;
    add_overrides(&server).await;
    let mut with_overrides = Vec::new();
    for who in WITH_OVERRIDES {
        let answers = anonymous_answers(&server, who).await;
        // The Apple profile and the autoconfig document are there, as for any address.
        assert_eq!(
            (answers[0].0, answers[1].0),
            (200, 200),
            "{who}: {answers:?}"
        );
        for (_, body) in &answers {
            for secret in ["jdoe", "Jane", "new-home", "other.example"] {
                assert!(
                    !body.contains(secret),
                    "{secret} in the answer for {who}:\n{body}"
                );
            }
        }
        // A known user and an unknown local part: the same answer but for the address. (The
        // Apple profile's identifiers are derived from the address, so it is compared with the
        // override removed below.)
        let unknown = anonymous_answers(&server, "nobody-here@customer.example").await;
        for (known, unknown) in answers[1..].iter().zip(&unknown[1..]) {
            assert_eq!(
                known.1.replace(who, "X@customer.example"),
                unknown
                    .1
                    .replace("nobody-here@customer.example", "X@customer.example"),
            );
            assert_eq!(known.0, unknown.0);
        }
        with_overrides.push(answers);
    }
    // Byte for byte what the same addresses get with no override at all.
    for who in WITH_OVERRIDES {
        server
            .store
            .remove_user(&Actor::Cli, &address(who))
            .await
            .unwrap();
    }
    server.directory.refresh().await.unwrap();
    for (who, answers) in WITH_OVERRIDES.iter().zip(&with_overrides) {
        assert_eq!(&anonymous_answers(&server, who).await, answers, "{who}");
    }
    server.stop().await;
}

async fn authenticated_callers_get_their_own_mailbox_only(backend: Backend) {
    let server = AuthServer::start(backend, BASIC).await;
    add_overrides(&server).await;
    let output = server.cli(
        &["user", "passwd", "jane@customer.example"],
        "Jane's secret\n",
    );
    assert!(output.status.success());
    let (user, password) = ("jane@customer.example", "Jane's secret");
    let jane = Some((user, password));

    // POX: her own mailbox, in her domain or its alias, with her override.
    for own in ["jane@customer.example", "JANE@alias.example"] {
        let (status, _, body) = server.post_pox(own, jane).await;
        assert_eq!(status, 200);
        assert_eq!(
            element(&body, "DisplayName"),
            Some("Jane &lt;Doe&gt; &amp; Co"),
            "{body}"
        );
    }
    // Anyone else's, hosted or not, redirected or not: the same "not found" error.
    let mut errors = Vec::new();
    for other in [
        "joe@customer.example",
        "moved@customer.example",
        "elsewhere@alias.example",
        "x@unhosted.example",
    ] {
        let (status, _, body) = server.post_pox(other, jane).await;
        assert_eq!(status, 200);
        assert!(
            !body.contains("other.example") && !body.contains("new-home"),
            "{body}"
        );
        errors.push((
            element(&body, "ErrorCode").map(str::to_owned),
            element(&body, "Message").map(str::to_owned),
        ));
    }
    assert_eq!(errors[0].0.as_deref(), Some("500"));
    assert!(errors.iter().all(|e| e == &errors[0]), "{errors:?}");

    // SOAP: one request naming her mailbox, her alias address and three others.
    let mut request = SoapRequest::get_user_settings("jane@customer.example", &["UserDisplayName"]);
    let SoapRequestBody::GetUserSettings(users) = &mut request.body else {
        unreachable!()
    };
    users.mailboxes = [
        "jane@customer.example",
        "jane@alias.example",
        "moved@customer.example",
        "elsewhere@customer.example",
        "x@unhosted.example",
    ]
    .map(String::from)
    .to_vec();
    let response = server
        .client()
        .post(server.url("/autodiscover/autodiscover.svc"))
        .basic_auth(user, Some(password))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(request.to_xml())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().await.unwrap();
    let SoapResponseBody::GetUserSettings(answer) =
        SoapResponse::from_xml(body.as_bytes()).unwrap().body
    else {
        panic!("{body}")
    };
    let responses = &answer.user_responses;
    assert_eq!(responses.len(), 5);
    for own in &responses[..2] {
        assert_eq!(own.error_code, SoapErrorCode::NoError);
        assert_eq!(
            own.string_setting("UserDisplayName"),
            Some("Jane <Doe> & Co")
        );
    }
    for other in &responses[2..] {
        assert_eq!(other.error_code, SoapErrorCode::InvalidUser);
        assert_eq!(other, &responses[4]);
    }
    server.stop().await;
}
