//! Outlook POX and ActiveSync mobilesync through the real HTTPS service.

use autodisco_test_support::{Backend, mobilesync_request, outlook_request};

use crate::{element, post, protocol_blocks, seeded_server};

on_both_backends!(
    hosted_address,
    alias_address,
    unknown_user_gets_the_domain_answer,
    overrides_and_redirects,
    unhosted_and_suspended,
    mobilesync,
    mapi_http
);

async fn hosted_address(backend: Backend) {
    let server = seeded_server(backend).await;
    let (status, content_type, body) =
        post(&server, outlook_request("someone@customer.example"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/xml; charset=utf-8");
    assert!(body.starts_with("<?xml"), "{body}");
    assert!(body.contains(r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">"#));
    assert!(body.contains(r#"<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">"#));
    assert_eq!(
        element(&body, "AutoDiscoverSMTPAddress"),
        Some("someone@customer.example")
    );
    assert_eq!(
        element(&body, "LegacyDN").map(|dn| dn.ends_with("cn=someone@customer.example")),
        Some(true)
    );
    let deployment = element(&body, "DeploymentId").unwrap();
    assert_eq!(deployment.len(), 36, "{deployment}");
    assert_eq!(element(&body, "AccountType"), Some("email"));
    assert_eq!(element(&body, "Action"), Some("settings"));
    // No override: no display name is invented.
    assert_eq!(element(&body, "DisplayName"), None);

    let exch = protocol_blocks(&body, "EXCH");
    assert_eq!(exch.len(), 1, "{body}");
    assert_eq!(
        element(exch[0], "EwsUrl"),
        Some("https://mail.hoster.example/EWS/Exchange.asmx")
    );
    assert_eq!(
        element(exch[0], "ASUrl"),
        Some("https://mail.hoster.example/EWS/Availability.asmx")
    );
    assert_eq!(
        element(exch[0], "OOFUrl"),
        Some("https://mail.hoster.example/EWS/OOF.asmx")
    );
    assert_eq!(
        element(exch[0], "OABUrl"),
        Some("https://mail.hoster.example/OAB/customer.example/")
    );

    let imap = protocol_blocks(&body, "IMAP");
    assert_eq!(imap.len(), 1);
    assert_eq!(element(imap[0], "Server"), Some("imap.hoster.example"));
    assert_eq!(element(imap[0], "Port"), Some("993"));
    assert_eq!(
        element(imap[0], "LoginName"),
        Some("someone@customer.example")
    );
    assert_eq!(element(imap[0], "SSL"), Some("on"));
    assert_eq!(element(imap[0], "Encryption"), Some("SSL"));
    assert_eq!(element(imap[0], "SPA"), Some("off"));
    assert_eq!(element(imap[0], "AuthRequired"), Some("on"));
    let smtp = protocol_blocks(&body, "SMTP");
    assert_eq!(smtp.len(), 1);
    assert_eq!(element(smtp[0], "Port"), Some("587"));
    assert_eq!(element(smtp[0], "Encryption"), Some("TLS"));
    assert_eq!(element(smtp[0], "UsePOPAuth"), Some("off"));
    assert_eq!(element(smtp[0], "SMTPLast"), Some("off"));
    // The default profile defines neither POP3, Outlook Anywhere, OWA nor MAPI/HTTP.
    for absent in ["POP3", "EXPR", "WEB", "mapiHttp"] {
        assert!(
            protocol_blocks(&body, absent).is_empty(),
            "{absent} in {body}"
        );
    }

    // The same domain always gets the same DeploymentId; another domain another one.
    let (_, _, again) = post(&server, outlook_request("other@customer.example"), &[]).await;
    assert_eq!(element(&again, "DeploymentId"), Some(deployment));
    let (_, _, business) = post(&server, outlook_request("x@business.example"), &[]).await;
    assert_ne!(element(&business, "DeploymentId"), Some(deployment));

    // The LegacyDN handed out resolves to the same mailbox, and wins over EMailAddress.
    let legacy_dn = element(&body, "LegacyDN").unwrap();
    let by_dn = format!(
        r#"<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>x@business.example</EMailAddress><LegacyDN>{legacy_dn}</LegacyDN><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#
    );
    let (_, _, answer) = post(&server, by_dn, &[]).await;
    assert_eq!(
        element(&answer, "AutoDiscoverSMTPAddress"),
        Some("someone@customer.example"),
        "{answer}"
    );
    server.stop().await;
}

async fn alias_address(backend: Backend) {
    let server = seeded_server(backend).await;
    let (status, _, body) = post(&server, outlook_request("Someone@Alias.Example"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(element(&body, "Action"), Some("settings"), "{body}");
    // Settings directly, with the primary address: a redirectAddr would restart discovery at a
    // domain the client may not reach.
    assert_eq!(
        element(&body, "AutoDiscoverSMTPAddress"),
        Some("Someone@customer.example")
    );
    let imap = protocol_blocks(&body, "IMAP");
    assert_eq!(
        element(imap[0], "LoginName"),
        Some("Someone@customer.example")
    );
    assert_eq!(
        element(protocol_blocks(&body, "EXCH")[0], "OABUrl"),
        Some("https://mail.hoster.example/OAB/customer.example/")
    );
    server.stop().await;
}

async fn unknown_user_gets_the_domain_answer(backend: Backend) {
    let server = seeded_server(backend).await;
    // jane has an override, so compare two mailboxes without one: the answers differ only by the
    // address itself, so nobody can tell from them which mailboxes exist.
    let (_, _, first) = post(
        &server,
        outlook_request("nobody-here@customer.example"),
        &[],
    )
    .await;
    let (_, _, second) = post(&server, outlook_request("ceo@customer.example"), &[]).await;
    assert_eq!(
        first.replace("nobody-here@", "X@"),
        second.replace("ceo@", "X@")
    );
    server.stop().await;
}

async fn overrides_and_redirects(backend: Backend) {
    let server = seeded_server(backend).await;
    let (_, _, jane) = post(&server, outlook_request("JANE@customer.example"), &[]).await;
    // Escaped on output.
    assert_eq!(
        element(&jane, "DisplayName"),
        Some("Jane &lt;Doe&gt; &amp; Co"),
        "{jane}"
    );
    assert_eq!(
        element(protocol_blocks(&jane, "IMAP")[0], "LoginName"),
        Some("jdoe")
    );

    let (_, _, moved) = post(&server, outlook_request("moved@customer.example"), &[]).await;
    assert_eq!(element(&moved, "Action"), Some("redirectAddr"), "{moved}");
    assert_eq!(
        element(&moved, "RedirectAddr"),
        Some("moved@business.example")
    );
    assert!(protocol_blocks(&moved, "IMAP").is_empty());

    let (_, _, elsewhere) = post(&server, outlook_request("elsewhere@alias.example"), &[]).await;
    assert_eq!(
        element(&elsewhere, "Action"),
        Some("redirectUrl"),
        "{elsewhere}"
    );
    assert_eq!(
        element(&elsewhere, "RedirectUrl"),
        Some("https://autodiscover.other.example/autodiscover/autodiscover.xml")
    );
    server.stop().await;
}

async fn unhosted_and_suspended(backend: Backend) {
    let server = seeded_server(backend).await;
    for address in ["someone@unhosted.example", "someone@suspended.example"] {
        let (status, content_type, body) = post(&server, outlook_request(address), &[]).await;
        assert_eq!(
            status, 200,
            "errors are answered with 200 ([MS-OXDSCLI] 3.1.5.5)"
        );
        assert_eq!(content_type, "text/xml; charset=utf-8");
        assert_eq!(element(&body, "ErrorCode"), Some("500"), "{body}");
        assert!(body.contains("<Error Time=\""), "{body}");
        assert!(!body.contains(address), "the address is not echoed: {body}");
    }
    server.stop().await;
}

async fn mobilesync(backend: Backend) {
    let server = seeded_server(backend).await;
    let (status, content_type, body) =
        post(&server, mobilesync_request("dev@business.example"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/xml; charset=utf-8");
    assert!(
        body.contains(
            "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
        ),
        "{body}"
    );
    assert_eq!(element(&body, "EMailAddress"), Some("dev@business.example"));
    assert_eq!(element(&body, "Type"), Some("MobileSync"));
    assert_eq!(
        element(&body, "Url"),
        Some("https://mail.hoster.example/Microsoft-Server-ActiveSync")
    );
    assert!(element(&body, "Culture").is_some());

    // The default profile has no ActiveSync endpoint: error 601, no URL.
    let (_, _, none) = post(&server, mobilesync_request("dev@customer.example"), &[]).await;
    assert_eq!(element(&none, "ErrorCode"), Some("601"), "{none}");
    assert_eq!(element(&none, "Url"), None);

    // A moved mailbox is redirected to its new address.
    let (_, _, moved) = post(&server, mobilesync_request("moved@customer.example"), &[]).await;
    assert_eq!(
        element(&moved, "Redirect"),
        Some("moved@business.example"),
        "{moved}"
    );
    server.stop().await;
}

async fn mapi_http(backend: Backend) {
    let server = seeded_server(backend).await;
    let (_, _, without) = post(&server, outlook_request("a@business.example"), &[]).await;
    assert!(
        protocol_blocks(&without, "mapiHttp").is_empty(),
        "{without}"
    );
    let (_, _, with) = post(
        &server,
        outlook_request("a@business.example"),
        &[("X-MapiHttpCapability", "1")],
    )
    .await;
    let mapi = protocol_blocks(&with, "mapiHttp");
    assert_eq!(mapi.len(), 1, "{with}");
    assert!(mapi[0].contains("Version=\"1\""), "{}", mapi[0]);
    assert!(mapi[0].contains("<MailStore>") && mapi[0].contains("<AddressBook>"));
    assert!(
        mapi[0].contains("https://mapi.hoster.example/mapi/emsmdb/?MailboxId=a@business.example")
    );
    // The business profile's Outlook Anywhere and OWA blocks.
    let expr = protocol_blocks(&with, "EXPR");
    assert_eq!(element(expr[0], "Server"), Some("rpc.hoster.example"));
    assert_eq!(element(expr[0], "AuthPackage"), Some("Ntlm"));
    assert!(protocol_blocks(&with, "WEB")[0].contains("https://ews.hoster.example/owa/"));
    // POP3 with the local part as login, SMTP with SPA.
    assert_eq!(
        element(protocol_blocks(&with, "POP3")[0], "LoginName"),
        Some("a")
    );
    assert_eq!(
        element(protocol_blocks(&with, "SMTP")[0], "SPA"),
        Some("on")
    );
    // Without a mapi_http profile, the header changes nothing.
    let (_, _, default) = post(
        &server,
        outlook_request("a@customer.example"),
        &[("X-MapiHttpCapability", "1")],
    )
    .await;
    assert!(protocol_blocks(&default, "mapiHttp").is_empty());
    server.stop().await;
}
