//! The plain-HTTP redirect site ([MS-OXDISCO] 3.1.5.4).

use std::time::Duration;

use autodisco_test_support::{Backend, raw_exchange};

use crate::seeded_server;

/// Sends one HTTP/1.1 request to the redirect site and returns the status line and Location.
async fn get(
    address: std::net::SocketAddr,
    method: &str,
    target: &str,
    host: &str,
) -> (String, Option<String>) {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    let response = raw_exchange(address, request.as_bytes(), Duration::from_secs(5)).await;
    let status = response.lines().next().unwrap_or_default().to_owned();
    let location = response
        .lines()
        .find_map(|line| {
            line.strip_prefix("location: ")
                .or_else(|| line.strip_prefix("Location: "))
        })
        .map(str::to_owned);
    (status, location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_domains_are_redirected_to_the_service() {
    let server = seeded_server(Backend::Sqlite).await;
    let http = server.http_addr();
    let service = "https://autodiscover.hoster.example";
    for (path, expected) in [
        (
            "/autodiscover/autodiscover.xml",
            "/autodiscover/autodiscover.xml",
        ),
        (
            "/Autodiscover/Autodiscover.xml",
            "/autodiscover/autodiscover.xml",
        ),
        (
            "/AUTODISCOVER/AUTODISCOVER.XML",
            "/autodiscover/autodiscover.xml",
        ),
        (
            "/autodiscover/autodiscover.svc",
            "/autodiscover/autodiscover.svc",
        ),
        (
            "/autodiscover/autodiscover.xml?x=1",
            "/autodiscover/autodiscover.xml",
        ),
        (
            "/autodiscover/autodiscover.json?Email=a%40customer.example&Protocol=EWS",
            "/autodiscover/autodiscover.json?Email=a%40customer.example&Protocol=EWS",
        ),
    ] {
        for method in ["GET", "HEAD", "POST"] {
            let (status, location) = get(http, method, path, "autodiscover.customer.example").await;
            assert!(
                status.starts_with("HTTP/1.1 302"),
                "{method} {path}: {status}"
            );
            assert_eq!(
                location.as_deref(),
                Some(format!("{service}{expected}").as_str()),
                "{method} {path}"
            );
        }
    }
    // Host normalisation: case, port, trailing dot; aliases are hosted too.
    for host in [
        "AutoDiscover.Customer.Example:80",
        "autodiscover.customer.example.",
        "autodiscover.alias.example",
    ] {
        let (status, _) = get(http, "GET", "/autodiscover/autodiscover.xml", host).await;
        assert!(status.starts_with("HTTP/1.1 302"), "{host}: {status}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_hosts_and_paths_get_404() {
    let server = seeded_server(Backend::Sqlite).await;
    let http = server.http_addr();
    for host in [
        "autodiscover.unhosted.example",
        "autodiscover.suspended.example",
        "customer.example",
        "autodiscoverredirect.hoster.example",
        "127.0.0.1",
    ] {
        let (status, location) = get(http, "GET", "/autodiscover/autodiscover.xml", host).await;
        assert!(status.starts_with("HTTP/1.1 404"), "{host}: {status}");
        assert_eq!(location, None);
    }
    // Malformed Host headers may also be refused by the HTTP layer itself.
    for host in ["[::1]:80", "autodiscover.customer.example@evil.example"] {
        let (status, location) = get(http, "GET", "/autodiscover/autodiscover.xml", host).await;
        assert!(
            status.starts_with("HTTP/1.1 404") || status.starts_with("HTTP/1.1 400"),
            "{host}: {status}"
        );
        assert_eq!(location, None);
    }
    for path in [
        "/",
        "/autodiscover/",
        "/autodiscover/autodiscover.xml/x",
        "/mail/config-v1.1.xml",
        "/autodiscover/autodiscover.xml%00",
    ] {
        let (status, location) = get(http, "GET", path, "autodiscover.customer.example").await;
        assert!(status.starts_with("HTTP/1.1 404"), "{path}: {status}");
        assert_eq!(location, None);
    }
    let (status, _) = get(
        http,
        "DELETE",
        "/autodiscover/autodiscover.xml",
        "autodiscover.customer.example",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 405"), "{status}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_never_change_the_location_host() {
    let server = seeded_server(Backend::Sqlite).await;
    let http = server.http_addr();
    let hostile_targets = [
        "//evil.example/autodiscover/autodiscover.xml",
        "http://evil.example/autodiscover/autodiscover.xml",
        "/autodiscover/../autodiscover/autodiscover.xml",
        "/autodiscover/autodiscover.xml/..%2f..%2fevil.example",
        "/autodiscover/autodiscover.json?x=%0d%0aSet-Cookie:%20a=b",
        "/autodiscover/autodiscover.json?@evil.example",
        "/%2F%2Fevil.example%2Fautodiscover/autodiscover.xml",
    ];
    for target in hostile_targets {
        let (status, location) = get(http, "GET", target, "autodiscover.customer.example").await;
        if let Some(location) = &location {
            assert!(
                location
                    .starts_with("https://autodiscover.hoster.example/autodiscover/autodiscover."),
                "{target} -> {location}"
            );
            assert!(!location.contains('\r') && !location.contains('\n'));
        } else {
            assert!(!status.starts_with("HTTP/1.1 3"), "{target}: {status}");
        }
    }
    server.stop().await;
}
