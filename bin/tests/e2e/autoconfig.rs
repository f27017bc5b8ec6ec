//! Mozilla autoconfig through the real server: both paths, with and without `?emailaddress=`,
//! the MX path on `autoconfig.HOSTER`, the plain-HTTP site, and agreement with POX.

use std::time::Duration;

use autodisco_proto::autoconfig::{AuthMethod, ClientConfig, ServerKind, SocketType};
use autodisco_proto::pox::{Encryption, OutlookResponse, ProtocolKind};
use autodisco_test_support::{Backend, TestServer, https_client, outlook_request, raw_exchange};

use crate::{post, seeded_server};

on_both_backends!(both_paths_with_and_without_the_parameter, mx_path);

/// Host names the autoconfig tests reach over HTTPS, each with a certificate from the test CA.
pub(crate) const HTTPS_NAMES: [&str; 7] = [
    "autoconfig.customer.example",
    "customer.example",
    "autoconfig.alias.example",
    "autoconfig.hoster.example",
    "ua-auto-config.customer.example",
    "ua-auto-config.alias.example",
    "ua-auto-config.unhosted.example",
];

/// The seeded server with certificates for [`HTTPS_NAMES`] in its certs folder (as a hoster
/// would provision them), and a client that reaches all of them.
pub(crate) async fn server_with_names(backend: Backend) -> (TestServer, reqwest::Client) {
    let server = seeded_server(backend).await;
    let certs = server.config.certs_dir.clone().expect("certs folder");
    for name in HTTPS_NAMES {
        server
            .ca
            .issue(&[name])
            .write_combined(&certs.join(format!("{name}.pem")));
    }
    server.server.reload_certificates().await;
    let pins: Vec<_> = HTTPS_NAMES
        .iter()
        .map(|name| (*name, server.https_addr()))
        .chain([(autodisco_test_support::SERVICE_HOST, server.https_addr())])
        .collect();
    let client = https_client(&server.ca, &pins);
    (server, client)
}

/// GETs `https://HOST:PORT/PATH` and returns status, content type and body.
pub(crate) async fn get(
    server: &TestServer,
    client: &reqwest::Client,
    host: &str,
    path_and_query: &str,
) -> (u16, String, String) {
    let url = format!(
        "https://{host}:{}{path_and_query}",
        server.https_addr().port()
    );
    let response = client.get(&url).send().await.expect(&url);
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The autoconfig document for `address` from `autoconfig.HOSTER` (the MX path).
pub(crate) async fn autoconfig_for(
    server: &TestServer,
    client: &reqwest::Client,
    address: &str,
) -> ClientConfig {
    let (status, _, body) = get(
        server,
        client,
        "autoconfig.hoster.example",
        &format!("/mail/config-v1.1.xml?emailaddress={address}"),
    )
    .await;
    assert_eq!(status, 200, "{address}: {body}");
    ClientConfig::from_xml(body.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

async fn both_paths_with_and_without_the_parameter(backend: Backend) {
    let (server, client) = server_with_names(backend).await;
    for host in ["autoconfig.customer.example", "customer.example"] {
        for path in [
            "/mail/config-v1.1.xml",
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            "/Mail/Config-v1.1.xml",
        ] {
            for (query, imap_user) in [
                ("", "%EMAILADDRESS%"),
                (
                    "?emailaddress=someone%40customer.example",
                    "someone@customer.example",
                ),
                // Jane has a per-user login name.
                ("?emailaddress=jane@customer.example", "jdoe"),
            ] {
                let what = format!("{host}{path}{query}");
                let (status, content_type, body) =
                    get(&server, &client, host, &format!("{path}{query}")).await;
                assert_eq!(status, 200, "{what}: {body}");
                assert_eq!(content_type, "text/xml; charset=utf-8", "{what}");
                assert!(body.contains(r#"<clientConfig version="1.1">"#), "{body}");
                let config = ClientConfig::from_xml(body.as_bytes())
                    .unwrap_or_else(|e| panic!("{what}: {e}\n{body}"));
                assert_eq!(config.id, "customer.example");
                assert_eq!(config.domains, ["customer.example"]);
                assert_eq!(config.display_name, "Hoster Example Mail");
                assert_eq!(config.incoming.len(), 1, "{what}");
                let imap = &config.incoming[0];
                assert_eq!(imap.kind, ServerKind::Imap);
                assert_eq!(imap.hostname, "imap.hoster.example");
                assert_eq!(imap.port, 993);
                assert_eq!(imap.socket_type, SocketType::Ssl);
                assert_eq!(imap.username, imap_user, "{what}");
                assert_eq!(imap.authentication, AuthMethod::PasswordCleartext);
                let smtp = &config.outgoing[0];
                assert_eq!(
                    (smtp.kind.clone(), smtp.hostname.as_str(), smtp.port),
                    (ServerKind::Smtp, "smtp.hoster.example", 587)
                );
                assert_eq!(smtp.socket_type, SocketType::Starttls);
                assert_eq!(smtp.username, imap_user);
            }
        }
    }

    // An alias domain without an address: the login stays in the primary domain.
    let (status, _, body) = get(
        &server,
        &client,
        "autoconfig.alias.example",
        "/mail/config-v1.1.xml",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let config = ClientConfig::from_xml(body.as_bytes()).unwrap();
    assert_eq!(config.domains, ["alias.example", "customer.example"]);
    assert_eq!(
        config.incoming[0].username,
        "%EMAILLOCALPART%@customer.example"
    );

    // Not hosted, suspended, or asked with a malformed address.
    for (host, query, expected) in [
        (
            "autoconfig.customer.example",
            "?emailaddress=x@unhosted.example",
            404,
        ),
        (
            "autoconfig.customer.example",
            "?emailaddress=x@suspended.example",
            404,
        ),
        (
            "autoconfig.customer.example",
            "?emailaddress=not-an-address",
            400,
        ),
        // The service host is nobody's mail domain.
        (autodisco_test_support::SERVICE_HOST, "", 404),
    ] {
        let (status, _, _) = get(
            &server,
            &client,
            host,
            &format!("/mail/config-v1.1.xml{query}"),
        )
        .await;
        assert_eq!(status, expected, "{host}{query}");
    }
    let url = format!(
        "https://customer.example:{}/mail/config-v1.1.xml",
        server.https_addr().port()
    );
    let response = client.post(url).body("x").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    server.stop().await;
}

/// Thunderbird's MX path: `autoconfig.HOSTER` answers for any hosted address.
async fn mx_path(backend: Backend) {
    let (server, client) = server_with_names(backend).await;
    let config = autoconfig_for(&server, &client, "Pat@Business.Example").await;
    assert_eq!(config.id, "business.example");
    assert_eq!(config.domains, ["business.example"]);
    // The business profile has POP3 only (login is the local part) and SMTPS with CRAM.
    let pop3 = &config.incoming[0];
    assert_eq!(
        (pop3.kind.clone(), pop3.hostname.as_str(), pop3.port),
        (ServerKind::Pop3, "pop.hoster.example", 995)
    );
    assert_eq!(pop3.username, "Pat");
    let smtp = &config.outgoing[0];
    assert_eq!((smtp.port, smtp.socket_type), (465, SocketType::Ssl));
    assert_eq!(smtp.authentication, AuthMethod::PasswordEncrypted);

    // Same host, an alias address: the primary domain's settings, the alias listed.
    let alias = autoconfig_for(&server, &client, "someone@alias.example").await;
    assert_eq!(alias.domains, ["alias.example", "customer.example"]);
    assert_eq!(alias.incoming[0].username, "someone@customer.example");

    // A mailbox that moved inside the directory is configured as its new address; one served
    // by another AutoDiscover service has no autoconfig answer here.
    let moved = autoconfig_for(&server, &client, "moved@customer.example").await;
    assert_eq!(moved.id, "business.example");
    for (query, expected) in [
        ("?emailaddress=elsewhere@customer.example", 404),
        ("?emailaddress=x@unhosted.example", 404),
        // Without an address the hoster's own domain is asked about, and it is not hosted.
        ("", 404),
    ] {
        let (status, _, _) = get(
            &server,
            &client,
            "autoconfig.hoster.example",
            &format!("/mail/config-v1.1.xml{query}"),
        )
        .await;
        assert_eq!(status, expected, "{query}");
    }
    server.stop().await;
}

/// One HTTP/1.1 request to the plain-HTTP site: status line and body.
async fn http_get(server: &TestServer, method: &str, target: &str, host: &str) -> (String, String) {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    let response = raw_exchange(
        server.http_addr(),
        request.as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_http_site_answers_autoconfig_hosts() {
    let server = seeded_server(Backend::Sqlite).await;
    for (target, host, user) in [
        (
            "/mail/config-v1.1.xml",
            "autoconfig.customer.example",
            "%EMAILADDRESS%",
        ),
        (
            "/mail/config-v1.1.xml",
            "AutoConfig.Customer.Example:80",
            "%EMAILADDRESS%",
        ),
        (
            "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a%40customer.example",
            "autoconfig.customer.example",
            "a@customer.example",
        ),
        (
            "/mail/config-v1.1.xml",
            "autoconfig.alias.example",
            "%EMAILLOCALPART%@customer.example",
        ),
    ] {
        let (status, body) = http_get(&server, "GET", target, host).await;
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "{host}{target}: {status}"
        );
        let config = ClientConfig::from_xml(body.as_bytes())
            .unwrap_or_else(|e| panic!("{host}{target}: {e}\n{body}"));
        assert_eq!(config.incoming[0].username, user, "{host}{target}");
    }
    for (method, target, host, expected) in [
        (
            "GET",
            "/mail/config-v1.1.xml",
            "autoconfig.unhosted.example",
            "404",
        ),
        (
            "GET",
            "/mail/config-v1.1.xml",
            "autoconfig.suspended.example",
            "404",
        ),
        (
            "POST",
            "/mail/config-v1.1.xml",
            "autoconfig.customer.example",
            "405",
        ),
        // Only autoconfig paths are answered on autoconfig hosts, and only there.
        (
            "GET",
            "/autodiscover/autodiscover.xml",
            "autoconfig.customer.example",
            "404",
        ),
        ("GET", "/mail/config-v1.1.xml", "customer.example", "404"),
    ] {
        let (status, _) = http_get(&server, method, target, host).await;
        assert!(
            status.starts_with(&format!("HTTP/1.1 {expected}")),
            "{method} {host}{target}: {status}"
        );
    }
    // The Outlook redirect is unchanged.
    let (status, _) = http_get(
        &server,
        "GET",
        "/autodiscover/autodiscover.xml",
        "autodiscover.customer.example",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 302"), "{status}");
    server.stop().await;
}

/// Thunderbird sends the POX request in parallel and reads its IMAP/POP3/SMTP blocks: the two
/// answers must describe the same servers, ports, security and logins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoconfig_agrees_with_pox() {
    let (server, client) = server_with_names(Backend::Sqlite).await;
    for address in [
        "someone@customer.example",
        "jane@customer.example",
        "someone@alias.example",
        "pat@business.example",
    ] {
        let config = autoconfig_for(&server, &client, address).await;
        let (_, _, body) = post(&server, outlook_request(address), &[]).await;
        let OutlookResponse::Settings(pox) = OutlookResponse::from_xml(body.as_bytes()).unwrap()
        else {
            panic!("{address}: not settings\n{body}")
        };
        let pox_servers: Vec<_> = pox
            .protocols
            .iter()
            .filter(|p| {
                matches!(
                    p.kind,
                    ProtocolKind::Imap | ProtocolKind::Pop3 | ProtocolKind::Smtp
                )
            })
            .map(|p| {
                (
                    p.kind.as_str().to_ascii_lowercase(),
                    p.server.clone().unwrap(),
                    p.port.unwrap(),
                    p.encryption.unwrap(),
                    p.login_name.clone().unwrap(),
                    p.spa.unwrap(),
                )
            })
            .collect();
        let ours: Vec<_> = config
            .incoming
            .iter()
            .chain(&config.outgoing)
            .map(|s| {
                let encryption = match s.socket_type {
                    SocketType::Ssl => Encryption::Ssl,
                    SocketType::Starttls => Encryption::Tls,
                    SocketType::Plain => Encryption::None,
                };
                (
                    s.kind.as_str().to_owned(),
                    s.hostname.clone(),
                    s.port,
                    encryption,
                    s.username.clone(),
                    s.authentication == AuthMethod::PasswordEncrypted,
                )
            })
            .collect();
        assert_eq!(ours, pox_servers, "{address}");
    }
    server.stop().await;
}
