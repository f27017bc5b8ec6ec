//! Attacks with connections: bodies that trickle, heads that never end, HTTP/2 floods, and one
//! client taking more than its share.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use autodisco_test_support::SERVICE_HOST;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{HOSTED, Legit, Target, attacker_ip, connect_from, full};

/// Limits that let one address act as many attackers, so the site-level defences are what is
/// tested, not the per-client ones.
const DISTRIBUTED: &str =
    "[limits]\nper_ip_connections = 100000\nper_ip_requests_per_sec = 100000\n";

/// How many attack connections are open now, and the most there were at once.
#[derive(Default)]
struct OpenCount {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl OpenCount {
    fn opened(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn closed(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One attacker for `hold`: a TLS connection from `from` that sends a POX head and then one body
/// byte every `every`; when the server closes it, it connects again. The longest the server
/// kept one connection.
async fn trickle(
    config: Arc<rustls::ClientConfig>,
    from: IpAddr,
    to: std::net::SocketAddr,
    every: Duration,
    hold: Duration,
    open: Arc<OpenCount>,
) -> Duration {
    let started = Instant::now();
    let mut longest = Duration::ZERO;
    while started.elapsed() < hold {
        let Ok(tcp) = connect_from(from, to).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let name = rustls::pki_types::ServerName::try_from(SERVICE_HOST).unwrap();
        let Ok(mut tls) = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
        else {
            continue;
        };
        let head = format!(
            "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: {SERVICE_HOST}\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n"
        );
        if tls.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        open.opened();
        let connected = Instant::now();
        let (mut reader, mut writer) = tokio::io::split(tls);
        let feeding = tokio::spawn(async move {
            while writer.write_all(b"<").await.is_ok() {
                tokio::time::sleep(every).await;
            }
        });
        let mut answer = Vec::new();
        let left = hold.saturating_sub(started.elapsed());
        let _ = tokio::time::timeout(left, reader.read_to_end(&mut answer)).await;
        feeding.abort();
        open.closed();
        if !answer.is_empty() || connected.elapsed() < left {
            longest = longest.max(connected.elapsed());
        }
    }
    longest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trickling_bodies_starve_neither_site() {
    let mut target = Target::start(DISTRIBUTED).await;
    let connections = 1_100;
    let hold = Duration::from_secs(if full() { 40 } else { 15 });
    let open = Arc::new(OpenCount::default());
    let config = target.tls_config(b"http/1.1");
    let attackers: Vec<_> = (0..connections)
        .map(|n| {
            tokio::spawn(trickle(
                config.clone(),
                attacker_ip(n % 11),
                target.https,
                Duration::from_secs(2),
                hold,
                open.clone(),
            ))
        })
        .collect();
    // Let the attack take hold before measuring.
    tokio::time::sleep(hold / 3).await;
    let legit = Legit::start(&target);
    tokio::time::sleep(hold / 2).await;
    let report = legit.finish().await;
    let longest = futures_util::future::join_all(attackers)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .max()
        .unwrap_or_default();
    let most_open = open.most.load(Ordering::SeqCst);
    assert!(
        longest < Duration::from_secs(8),
        "a trickling body was kept {longest:?}"
    );
    target.report(
        &format!("{connections} attackers trickling a TLS body at 1 byte per 2 s, reconnecting ({most_open} open at most)"),
        &format!("each cut off after at most {:.1} s", longest.as_secs_f64()),
        &report,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_heads_starve_neither_site() {
    let mut target = Target::start(&format!("{DISTRIBUTED}header_timeout_secs = 3\n")).await;
    let connections = if full() { 2_000 } else { 1_000 };
    let open = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..connections)
        .map(|n| {
            // Half on each site: a plain-HTTP head and a TLS head, a byte every second.
            let to = if n % 2 == 0 { target.http } else { target.https };
            let config = (n % 2 == 1).then(|| target.tls_config(b"http/1.1"));
            let open = open.clone();
            tokio::spawn(async move {
                let tcp = connect_from(attacker_ip(n % 10), to).await.ok()?;
                open.fetch_add(1, Ordering::SeqCst);
                let started = Instant::now();
                let head = b"GET /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.customer.example\r\nX-a: ";
                let result = match config {
                    Some(config) => {
                        let name = rustls::pki_types::ServerName::try_from(SERVICE_HOST).unwrap();
                        match tokio_rustls::TlsConnector::from(config).connect(name, tcp).await {
                            Ok(tls) => drip(tls, head).await,
                            Err(_) => started.elapsed(),
                        }
                    }
                    None => drip(tcp, head).await,
                };
                open.fetch_sub(1, Ordering::SeqCst);
                Some(result)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let legit = Legit::start(&target);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let report = legit.finish().await;
    let held: Vec<Duration> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    let longest = held.iter().max().copied().unwrap_or_default();
    assert!(
        longest < Duration::from_secs(10),
        "a slow head was kept {longest:?}"
    );
    target.report(
        &format!("{connections} slowloris connections, half plain HTTP, half TLS"),
        &format!("closed after at most {:.1} s", longest.as_secs_f64()),
        &report,
    );
}

/// Writes `head` a byte a second until the server closes; how long it kept the connection.
async fn drip<S>(stream: S, head: &[u8]) -> Duration
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let head = head.to_vec();
    let feeding = tokio::spawn(async move {
        for byte in head.iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut sink)).await;
    feeding.abort();
    started.elapsed()
}

/// An HTTP/2 connection over TLS from `from`.
async fn h2_connection(
    target: &Target,
    from: IpAddr,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = connect_from(from, target.https).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(SERVICE_HOST).unwrap();
    let tls = tokio_rustls::TlsConnector::from(target.tls_config(b"h2"))
        .connect(name, tcp)
        .await
        .unwrap();
    let (sender, connection) = h2::client::handshake(tls).await.unwrap();
    (sender, tokio::spawn(connection))
}

fn h2_request() -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!(
            "https://{SERVICE_HOST}/autodiscover/autodiscover.xml"
        ))
        .header("content-type", "text/xml")
        .body(())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http2_stream_floods_are_bounded() {
    let mut target = Target::start(DISTRIBUTED).await;
    let legit = Legit::start(&target);
    // 1. Rapid reset: open streams and reset them at once, over and over.
    let (mut sender, connection) = h2_connection(&target, attacker_ip(0)).await;
    let mut resets = 0;
    for _ in 0..(if full() { 100_000 } else { 10_000 }) {
        match sender.clone().ready().await {
            Ok(mut ready) => match ready.send_request(h2_request(), false) {
                Ok((_, mut stream)) => {
                    stream.send_reset(h2::Reason::CANCEL);
                    resets += 1;
                }
                Err(_) => break,
            },
            Err(_) => break,
        }
        sender = sender.clone();
    }
    let rapid_reset_closed = tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .is_ok();
    // 2. Streams whose bodies never come, 32 asked for on each of many connections; the server
    // lets each connection have 16 at once (the client queues the rest).
    let connections = if full() { 200 } else { 50 };
    let mut parked = Vec::new();
    let mut stream_limit = 0;
    for n in 0..connections {
        let (sender, connection) = h2_connection(&target, attacker_ip(1 + n % 10)).await;
        let mut sender = sender.ready().await.unwrap();
        for _ in 0..32 {
            match sender.send_request(h2_request(), false) {
                Ok(stream) => parked.push(stream),
                Err(_) => break,
            }
            sender = sender.ready().await.unwrap();
        }
        if n == 0 {
            // By now the server's SETTINGS frame has been read.
            tokio::time::sleep(Duration::from_millis(100)).await;
            stream_limit = sender.current_max_send_streams();
        }
        drop(connection);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = legit.finish().await;
    drop(parked);
    assert!(
        rapid_reset_closed,
        "the rapid-reset connection was not closed ({resets} resets)"
    );
    assert_eq!(
        stream_limit, 16,
        "the server's SETTINGS_MAX_CONCURRENT_STREAMS"
    );
    target.report(
        &format!("HTTP/2 rapid reset ({resets} streams reset) and {connections} connections x 32 parked streams"),
        &format!("rapid-reset connection closed; at most {stream_limit} streams per connection"),
        &report,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_client_gets_only_its_share() {
    let mut target = Target::start("").await;
    let legit = Legit::start(&target);
    // Connections: 300 from one address; those past `per_ip_connections` (256) are closed at once.
    let attacker = attacker_ip(0);
    let mut streams = Vec::new();
    for _ in 0..300 {
        streams.push(connect_from(attacker, target.http).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut closed = 0;
    for stream in &mut streams {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(20), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 300 - 256, "connections closed at once");
    drop(streams);
    // Requests: 600 as fast as one keep-alive client can; past the burst (200), 429s.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .local_address(attacker)
        .resolve(&format!("autodiscover.{HOSTED}"), target.http)
        .build()
        .unwrap();
    let url = format!(
        "http://autodiscover.{HOSTED}:{}/autodiscover/autodiscover.xml",
        target.http.port()
    );
    let (mut redirected, mut limited, mut retry_after) = (0, 0, None);
    let started = Instant::now();
    for _ in 0..600 {
        let response = client.get(&url).send().await.unwrap();
        match response.status().as_u16() {
            302 => redirected += 1,
            429 => {
                limited += 1;
                retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let report = legit.finish().await;
    // A burst of 200, then 100 a second.
    let allowed = 200.0 + 100.0 * elapsed;
    assert!(
        f64::from(redirected) <= allowed + 1.0,
        "{redirected} answered in {elapsed:.2} s"
    );
    assert!(limited > 0, "no request was limited");
    assert_eq!(retry_after.as_deref(), Some("1"));
    target.report(
        "one address: 300 connections, then 600 requests back to back",
        &format!("{closed} connections closed at once; {redirected} answered, {limited} got 429 with Retry-After: 1"),
        &report,
    );
}
