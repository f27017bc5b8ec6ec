//! The real binary under signals: SIGHUP reloads the config (a bad one is refused and the old one
//! kept); SIGTERM finishes the request in flight and exits 0.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use autodisco_test_support::{
    SERVICE_HOST, TestCa, free_port, https_client, outlook_request, raw_exchange,
};

use crate::{body_in_two_halves, element};

struct Serving {
    child: Child,
    http: SocketAddr,
    https: SocketAddr,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(path: &Path, http: SocketAddr, https: SocketAddr, public_url: &str) {
    let text = format!(
        "hoster = \"hoster.example\"\npublic_url = \"{public_url}\"\ndatabase = \"sqlite://directory.sqlite\"\n[http]\nlisten = [\"{http}\"]\n[https]\nlisten = [\"{https}\"]\ncert = \"service.pem\"\nkey = \"service.pem\"\n[directory]\npoll_interval_ms = 200\n"
    );
    std::fs::write(path, text).unwrap();
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

async fn start(folder: &Path, ca: &TestCa) -> Serving {
    ca.issue(&[SERVICE_HOST])
        .write_combined(&folder.join("service.pem"));
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let https: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = folder.join("autodisco.toml");
    write_config(&config, http, https, "https://autodiscover.hoster.example");
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_autodisco"));
        command
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    assert!(
        run(&["domain", "add", "customer.example"])
            .status()
            .unwrap()
            .success()
    );
    let child = run(&["serve"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(https).await.is_err()
        || tokio::net::TcpStream::connect(http).await.is_err()
    {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Serving { child, http, https }
}

async fn location(http: SocketAddr) -> String {
    let request = b"GET /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.customer.example\r\nConnection: close\r\n\r\n";
    let response = raw_exchange(http, request, Duration::from_secs(5)).await;
    response
        .lines()
        .find_map(|line| line.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("no Location in {response}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_and_refuses_a_bad_one() {
    let folder = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let serving = start(folder.path(), &ca).await;
    assert_eq!(
        location(serving.http).await,
        "https://autodiscover.hoster.example/autodiscover/autodiscover.xml"
    );

    let config = folder.path().join("autodisco.toml");
    write_config(
        &config,
        serving.http,
        serving.https,
        "https://discover.hoster.example",
    );
    signal(&serving.child, "HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while location(serving.http).await
        != "https://discover.hoster.example/autodiscover/autodiscover.xml"
    {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not apply the new public_url"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    std::fs::write(&config, "hoster = \"foo..bar\"\n").unwrap();
    signal(&serving.child, "HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        location(serving.http).await,
        "https://discover.hoster.example/autodiscover/autodiscover.xml"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let folder = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let mut serving = start(folder.path(), &ca).await;
    let client = https_client(&ca, &[(SERVICE_HOST, serving.https)]);
    let url = format!(
        "https://{SERVICE_HOST}:{}/autodiscover/autodiscover.xml",
        serving.https.port()
    );

    let (body, send_second_half) =
        body_in_two_halves(outlook_request("someone@customer.example").into_bytes()).await;
    let in_flight = tokio::spawn(client.post(url).body(body).send());
    tokio::time::sleep(Duration::from_millis(300)).await;

    signal(&serving.child, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        serving.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    send_second_half().await.unwrap();
    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    let text = response.text().await.unwrap();
    assert_eq!(element(&text, "Action"), Some("settings"), "{text}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = serving.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}
