//! Faults: the directory's PostgreSQL cut off mid-load, and two instances on one directory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use autodisco_test_support::{Backend, TestDatabase, outlook_request};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::{HOSTED, LEGIT_IP, Legit, Target, full, ms};

/// A TCP proxy in front of PostgreSQL that a test can cut: every open connection is closed and
/// new ones are dropped until it is restored.
struct CuttableProxy {
    address: SocketAddr,
    cut: Arc<AtomicBool>,
    cut_now: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let cut_now = Arc::new(Notify::new());
        let (is_cut, notify) = (cut.clone(), cut_now.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if is_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let notify = notify.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = notify.notified() => {}
                    }
                });
            }
        });
        Self {
            address,
            cut,
            cut_now,
            task,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.cut_now.notify_waiters();
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn upstream_of(url: &str) -> (SocketAddr, String) {
    let parsed = url::Url::parse(url).unwrap();
    let host = parsed.host_str().unwrap();
    let port = parsed.port().unwrap_or(5432);
    let address = format!("{host}:{port}").parse().unwrap();
    (address, parsed.path().to_owned())
}

/// Asks the redirect site about `autodiscover.DOMAIN` until it is redirected; how long it took.
async fn until_hosted(target: &Target, domain: &str, limit: Duration) -> Option<Duration> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .local_address(LEGIT_IP)
        .resolve(&format!("autodiscover.{domain}"), target.http)
        .build()
        .unwrap();
    let url = format!(
        "http://autodiscover.{domain}:{}/autodiscover/autodiscover.xml",
        target.http.port()
    );
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(response) = client.get(&url).send().await
            && response.status() == 302
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_cut_off_mid_load_loses_no_lookup() {
    let folder = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(Backend::Postgres, folder.path()).await;
    let (upstream, path) = upstream_of(&database.url);
    let proxy = CuttableProxy::start(upstream).await;
    let url = format!("postgres://root@{}{path}", proxy.address);
    let mut target = Target::start_with(Some(&url), "").await;
    let legit = Legit::start(&target);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outage = Duration::from_secs(if full() { 30 } else { 5 });
    proxy.cut();
    tokio::time::sleep(outage).await;
    // A change made while the database is unreachable cannot land; after it is back, one does.
    proxy.restore();
    let added = target.cli(&["domain", "add", "after-outage.example"]);
    assert!(added.status.success(), "{added:?}");
    let recovered = until_hosted(&target, "after-outage.example", Duration::from_secs(15))
        .await
        .expect("a change after the outage reaches the server");
    let report = legit.finish().await;
    target.report(
        &format!("PostgreSQL cut off for {} s under load", outage.as_secs()),
        &format!(
            "no lookup failed; a change after it served within {:.0} ms",
            ms(recovered)
        ),
        &report,
    );
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_answer_alike() {
    let folder = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(Backend::Postgres, folder.path()).await;
    let first = Target::start_with(Some(&database.url), "").await;
    let second = Target::start_second(&database.url).await;
    let domains: Vec<String> = (0..20).map(|i| format!("shared{i}.example")).collect();
    // Concurrent writers: each instance's CLI adds half of the domains at the same time.
    let (a, b) = domains.split_at(10);
    let writers = [(&first, a), (&second, b)].map(|(target, names)| {
        let commands: Vec<_> = names
            .iter()
            .map(|name| target.command_for(&["domain", "add", name]))
            .collect();
        std::thread::spawn(move || {
            let results: Vec<bool> = commands
                .into_iter()
                .map(|mut command| command.output().unwrap().status.success())
                .collect();
            results.iter().all(|ok| *ok)
        })
    });
    for writer in writers {
        assert!(writer.join().unwrap(), "a concurrent domain add failed");
    }
    for name in domains.iter().chain(std::iter::once(&HOSTED.to_owned())) {
        for target in [&first, &second] {
            until_hosted(target, name, Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("{name} not served"));
        }
        let body = outlook_request(&format!("someone@{name}"));
        let mut answers = Vec::new();
        for target in [&first, &second] {
            let answer = target
                .client_from(LEGIT_IP)
                .post(target.pox_url())
                .body(body.clone())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            answers.push(answer);
        }
        assert_eq!(answers[0], answers[1], "{name}: the instances disagree");
    }
    println!(
        "faults: two instances on one PostgreSQL answer alike for {} domains after concurrent CLI writes",
        domains.len() + 1
    );
    drop(database);
}
