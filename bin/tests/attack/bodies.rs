//! Attacks in the request body: amplification, namespace bombs, hostile XML, bodies too large or
//! endless, and heads with thousands of headers.

use std::time::{Duration, Instant};

use autodisco_test_support::outlook_request;

use crate::{HOSTED, Legit, Target, attacker_ip, connect_from, exchange, full, ms, status_of};

const POX_NAMESPACE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";

/// POSTs `body` to the POX or SOAP path from an attacker address; status and answer length.
async fn post(target: &Target, path: &str, body: Vec<u8>, n: usize) -> (u16, usize, String) {
    let url = format!(
        "https://{}:{}{path}",
        autodisco_test_support::SERVICE_HOST,
        target.https.port()
    );
    let response = target
        .client_from(attacker_ip(n))
        .post(url)
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, text.len(), text)
}

/// The SOAP GetUserSettings request that gave a 36 MB answer: 100 mailboxes of a hosted domain
/// and 1,400 setting names, every known one repeated and short unknown ones.
fn amplifying_soap_request() -> String {
    const KNOWN: [&str; 12] = [
        "UserDisplayName",
        "UserDN",
        "UserDeploymentId",
        "InternalEwsUrl",
        "ExternalEwsUrl",
        "ExternalOABUrl",
        "ExternalImap4Connections",
        "ExternalPop3Connections",
        "ExternalSmtpConnections",
        "EwsSupportedSchemas",
        "AutoDiscoverSMTPAddress",
        "CasVersion",
    ];
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:a="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsa="http://www.w3.org/2005/08/addressing"><s:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings</wsa:Action></s:Header><s:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users>"#,
    );
    for i in 0..100 {
        body.push_str(&format!(
            "<a:User><a:Mailbox>u{i}@{HOSTED}</a:Mailbox></a:User>"
        ));
    }
    body.push_str("</a:Users><a:RequestedSettings>");
    for i in 0..1400 {
        if i % 2 == 0 {
            body.push_str(&format!(
                "<a:Setting>{}</a:Setting>",
                KNOWN[i / 2 % KNOWN.len()]
            ));
        } else {
            body.push_str(&format!("<a:Setting>S{i}</a:Setting>"));
        }
    }
    body.push_str("</a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></s:Body></s:Envelope>");
    body
}

/// A POX body of about 62 KB: a root with a 30 KB default namespace and 8,000 empty children.
fn namespace_bomb() -> Vec<u8> {
    let mut body = format!(
        "<Autodiscover xmlns=\"{POX_NAMESPACE}/{}\">",
        "n".repeat(30_000)
    );
    body.push_str(&"<a/>".repeat(8_000));
    body.push_str("</Autodiscover>");
    body.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soap_amplification_stays_under_one_megabyte() {
    let mut target = Target::start("").await;
    let legit = Legit::start(&target);
    let request = amplifying_soap_request();
    assert!(request.len() < 64 * 1024, "{} bytes", request.len());
    let (status, size, text) = post(
        &target,
        "/autodiscover/autodiscover.svc",
        request.into_bytes(),
        0,
    )
    .await;
    let report = legit.finish().await;
    assert_eq!(status, 200, "{text:.300}");
    assert!(text.contains("Envelope"), "a SOAP answer: {text:.300}");
    assert!(size < 1024 * 1024, "a {size}-byte answer");
    target.report(
        "SOAP GetUserSettings, 100 mailboxes x 1,400 settings (59 KB)",
        &format!("HTTP {status}, {size}-byte answer"),
        &report,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_bomb_costs_little() {
    let mut target = Target::start("").await;
    // Warm the connection path first so the figures below are the body's own cost.
    let _ = post(
        &target,
        "/autodiscover/autodiscover.xml",
        outlook_request(&format!("a@{HOSTED}")).into_bytes(),
        0,
    )
    .await;
    let legit = Legit::start(&target);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let peak_before = target.peak_rss_mib();
    let cpu_before = target.cpu_time();
    let (status, _, text) = post(
        &target,
        "/autodiscover/autodiscover.xml",
        namespace_bomb(),
        0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = legit.finish().await;
    let cpu = target.cpu_time() - cpu_before;
    let grown = target.peak_rss_mib() - peak_before;
    assert_eq!(status, 200);
    assert!(text.contains("<ErrorCode>600</ErrorCode>"), "{text:.300}");
    // The CPU figure includes the legitimate client's requests in the same window.
    println!(
        "namespace bomb: {:.0} ms of server CPU (with the legitimate client's), peak RSS grew {grown:.1} MiB",
        ms(cpu)
    );
    assert!(grown < 16.0, "peak RSS grew {grown:.1} MiB");
    target.report(
        "POX root with a 30 KB xmlns and 8,000 children (62 KB)",
        "HTTP 200, error 600",
        &report,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_namespace_bombs_in_parallel_leave_legitimate_requests_fast() {
    let mut target = Target::start("").await;
    let legit = Legit::start(&target);
    let rounds = if full() { 10 } else { 3 };
    let started = Instant::now();
    for _ in 0..rounds {
        let attacks = (0..16).map(|n| {
            let target = &target;
            async move {
                post(
                    target,
                    "/autodiscover/autodiscover.xml",
                    namespace_bomb(),
                    n,
                )
                .await
            }
        });
        for (status, _, text) in futures_util::future::join_all(attacks).await {
            assert_eq!(status, 200);
            assert!(text.contains("<ErrorCode>600</ErrorCode>"));
        }
    }
    let elapsed = started.elapsed();
    let report = legit.finish().await;
    target.report(
        &format!(
            "16 namespace bombs in parallel, {rounds} rounds in {:.0} ms",
            ms(elapsed)
        ),
        "HTTP 200, error 600 each",
        &report,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_xml_gets_error_600() {
    let mut target = Target::start("").await;
    let legit = Legit::start(&target);
    let entity_bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><Autodiscover xmlns=\"{POX_NAMESPACE}\"><Request><EMailAddress>&c;@{HOSTED}</EMailAddress></Request></Autodiscover>"
    );
    let external = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Autodiscover xmlns=\"{POX_NAMESPACE}\"><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>"
    );
    let deep = format!(
        "<Autodiscover xmlns=\"{POX_NAMESPACE}\">{}{}</Autodiscover>",
        "<Request>".repeat(5_000),
        "</Request>".repeat(5_000)
    );
    let mut invalid_utf8 = outlook_request(&format!("x@{HOSTED}")).into_bytes();
    invalid_utf8.splice(5..5, [0xc3, 0x28, 0xff]);
    let attributes = format!(
        "<Autodiscover xmlns=\"{POX_NAMESPACE}\"><Request {}/></Autodiscover>",
        (0..4_000)
            .map(|i| format!("a{i}=\"\""))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let long_name = format!(
        "<Autodiscover xmlns=\"{POX_NAMESPACE}\"><{} /></Autodiscover>",
        "N".repeat(60_000)
    );
    let cases: [(&str, Vec<u8>); 6] = [
        ("entity bomb", entity_bomb.into_bytes()),
        ("external entity", external.into_bytes()),
        ("5,000 levels deep", deep.into_bytes()),
        ("invalid UTF-8", invalid_utf8),
        ("4,000 attributes", attributes.into_bytes()),
        ("a 60 KB element name", long_name.into_bytes()),
    ];
    for (n, (name, body)) in cases.into_iter().enumerate() {
        let (status, _, text) = post(&target, "/autodiscover/autodiscover.xml", body, n).await;
        assert_eq!(status, 200, "{name}");
        assert!(
            text.contains("<ErrorCode>600</ErrorCode>"),
            "{name}: {text:.300}"
        );
        assert!(!text.contains("root:"), "{name}: a file leaked");
    }
    let report = legit.finish().await;
    target.report(
        "entity bomb, external entity, deep nesting, invalid UTF-8, 4,000 attributes, long names",
        "HTTP 200, error 600 each",
        &report,
    );
}

/// Sends a POX head announcing `head_length` (or chunked when `None`) and then body bytes in
/// 64 KiB pieces until `total` bytes or the server stops reading; the server's answer.
async fn huge_body(target: &Target, head_length: Option<u64>, total: u64, n: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = connect_from(attacker_ip(n), target.https).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(target.tls_config(b"http/1.1"));
    let name =
        rustls::pki_types::ServerName::try_from(autodisco_test_support::SERVICE_HOST).unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let framing = match head_length {
        Some(length) => format!("Content-Length: {length}"),
        None => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml\r\n{framing}\r\n\r\n",
        autodisco_test_support::SERVICE_HOST
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let piece = vec![b' '; 64 * 1024];
    let mut sent = 0u64;
    let mut answer = Vec::new();
    let (mut reader, mut writer) = tokio::io::split(tls);
    let reading = tokio::spawn(async move {
        let _ =
            tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut answer)).await;
        answer
    });
    while sent < total {
        let written = if head_length.is_some() {
            writer.write_all(&piece).await
        } else {
            let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
            chunk.extend_from_slice(&piece);
            chunk.extend_from_slice(b"\r\n");
            writer.write_all(&chunk).await
        };
        if written.is_err() {
            break; // the server has answered and closed
        }
        sent += piece.len() as u64;
    }
    let _ = writer.shutdown().await;
    String::from_utf8_lossy(&reading.await.unwrap()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_megabyte_bodies_are_refused_early() {
    let mut target = Target::start("").await;
    let legit = Legit::start(&target);
    let hundred_mb = 100 * 1024 * 1024;
    let declared = huge_body(&target, Some(hundred_mb), hundred_mb, 0).await;
    let chunked = huge_body(&target, None, hundred_mb, 1).await;
    let report = legit.finish().await;
    for (name, answer) in [("declared", &declared), ("chunked", &chunked)] {
        assert_eq!(status_of(answer), Some(200), "{name}: {answer:.300}");
        assert!(
            answer.contains("<ErrorCode>600</ErrorCode>"),
            "{name}: {answer:.300}"
        );
    }
    target.report(
        "100 MB bodies, declared and chunked",
        "HTTP 200, error 600, connection closed",
        &report,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endless_chunked_bodies_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let mut target = Target::start("").await;
    let legit = Legit::start(&target);
    let count = if full() { 200 } else { 50 };
    let tasks = (0..count).map(|n| {
        let (config, https) = (target.tls_config(b"http/1.1"), target.https);
        tokio::spawn(async move {
            let tcp = connect_from(attacker_ip(n), https).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from(autodisco_test_support::SERVICE_HOST).unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap();
            let head = format!(
                "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                autodisco_test_support::SERVICE_HOST
            );
            tls.write_all(head.as_bytes()).await.unwrap();
            let started = Instant::now();
            // Ten bytes a second, forever: under the minimum rate.
            let (mut reader, mut writer) = tokio::io::split(tls);
            let feeding = tokio::spawn(async move {
                while writer.write_all(b"a\r\n<<<<<<<<<<\r\n").await.is_ok() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(30), tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut answer)).await;
            feeding.abort();
            (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
        })
    });
    let results = futures_util::future::join_all(tasks).await;
    let report = legit.finish().await;
    let slowest = results.iter().map(|r| r.as_ref().unwrap().0).max().unwrap();
    for result in &results {
        let (_, answer) = result.as_ref().unwrap();
        assert!(
            answer.contains("<ErrorCode>600</ErrorCode>"),
            "{answer:.300}"
        );
    }
    assert!(
        slowest < Duration::from_secs(12),
        "cut off after {slowest:?}"
    );
    target.report(
        &format!("{count} endless chunked bodies at 10 bytes/s"),
        &format!(
            "error 600 and closed after at most {:.1} s",
            slowest.as_secs_f64()
        ),
        &report,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_headers_are_refused() {
    let mut target = Target::start("").await;
    let legit = Legit::start(&target);
    let mut head = String::from(
        "GET /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.customer.example\r\n",
    );
    for i in 0..10_000 {
        head.push_str(&format!("X-{i}: v\r\n"));
    }
    head.push_str("\r\n");
    let stream = connect_from(attacker_ip(0), target.http).await.unwrap();
    let answer = exchange(stream, head.as_bytes(), Duration::from_secs(10)).await;
    let report = legit.finish().await;
    let status = status_of(&answer);
    assert!(matches!(status, Some(431) | Some(400)), "{answer:.300}");
    target.report(
        "10,000 headers",
        &format!("HTTP {}", status.unwrap()),
        &report,
    );
}
