//! Host headers an attacker would try on the redirect site: the Location is always the
//! configured service URL, or there is no redirect at all.

use std::time::Duration;

use crate::{Legit, Target, attacker_ip, connect_from, exchange, status_of};

const LOCATION: &str = "https://autodiscover.hoster.example/autodiscover/autodiscover.xml";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_header_tricks_never_steer_the_redirect() {
    let mut target = Target::start("").await;
    let legit = Legit::start(&target);
    // (Host header as sent, whether it names the hosted customer)
    let cases: [(&str, bool); 18] = [
        ("autodiscover.customer.example", true),
        ("autodiscover.customer.example:80", true),
        ("autodiscover.customer.example:65536", true),
        ("autodiscover.customer.example.", true),
        ("AutoDiscover.CUSTOMER.Example", true),
        ("autodiscover.customer.example.evil.example", false),
        ("autodiscover.customer.example@evil.example", false),
        ("evil.example/autodiscover.customer.example", false),
        ("autodiscover.customer.exampl\u{0435}", false), // Cyrillic e
        ("autodiscover.xn--customer-.example", false),
        ("autodiscover.customer.example..", false),
        ("autodiscover..customer.example", false),
        ("[::1]", false),
        ("127.0.0.1", false),
        ("", false),
        (
            "autodiscover.customer.example\r\nLocation: https://evil.example/",
            true,
        ),
        ("autodiscover.customer.example\rX: y", false),
        ("autodiscover.customer.example\0", false),
    ];
    let mut redirects = 0;
    for (n, (host, hosted)) in cases.iter().enumerate() {
        let request = format!(
            "GET /autodiscover/autodiscover.xml?x=https://evil.example/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        );
        let stream = connect_from(attacker_ip(n), target.http).await.unwrap();
        let answer = exchange(stream, request.as_bytes(), Duration::from_secs(5)).await;
        let status = status_of(&answer);
        let locations: Vec<&str> = answer
            .lines()
            .take_while(|line| !line.is_empty())
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("location").then(|| value.trim())
            })
            .collect();
        if *hosted {
            assert_eq!(status, Some(302), "{host:?}: {answer:.300}");
            redirects += 1;
        } else {
            assert!(
                matches!(status, Some(400) | Some(404)),
                "{host:?}: {answer:.300}"
            );
        }
        assert!(
            locations.iter().all(|l| *l == LOCATION),
            "{host:?} steered the redirect: {locations:?}"
        );
        assert!(locations.len() <= 1, "{host:?}: {locations:?}");
    }
    // Paths that try to smuggle another origin.
    for path in [
        "//evil.example/autodiscover/autodiscover.xml",
        "/autodiscover/autodiscover.xml/..%2f..%2f",
        "/AUTODISCOVER/AUTODISCOVER.XML#@evil.example",
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: autodiscover.customer.example\r\nConnection: close\r\n\r\n"
        );
        let stream = connect_from(attacker_ip(99), target.http).await.unwrap();
        let answer = exchange(stream, request.as_bytes(), Duration::from_secs(5)).await;
        for line in answer.lines().take_while(|l| !l.is_empty()) {
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("location")
            {
                assert_eq!(value.trim(), LOCATION, "{path}");
            }
        }
    }
    let report = legit.finish().await;
    target.report(
        "Host headers with ports, dots, case, IDNA look-alikes, CRLF and NUL; smuggling paths",
        &format!("{redirects} redirects, all to the service URL; the rest 400 or 404"),
        &report,
    );
}
