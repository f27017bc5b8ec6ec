//! exchangelib (the Python EWS library, from PyPI), unmodified, discovers through the real
//! server on loopback port 443: once through the redirect site (the customer's `autodiscover`
//! CNAME) and once through the SRV record, with `auth = "none"` and with `auth = "basic"`.
//!
//! The test needs root (ports 53, 80 and 443 on a private loopback block, and a mount namespace
//! for a private `/etc/resolv.conf`) and a Python with exchangelib: `./test` (the README's test
//! command) creates the venv and sets `AUTODISCO_EXCHANGELIB_PYTHON`; without that variable the
//! test fails and says so, because a test that passes without running proves nothing.
//! See README, "exchangelib against autodisco".

use std::io::Write;
use std::path::Path;

use autodisco_proto::{Domain, EmailAddress};
use autodisco_test_support::dns::{TestDns, Zone};
use autodisco_test_support::{Backend, LoopbackBlock};

use crate::auth::AuthServer;

/// Runs the discovery script for `email` with the resolver and CA of the test.
fn discover(
    python: &Path,
    resolv_conf: &Path,
    ca: &Path,
    email: &str,
    credentials: Option<(&str, &str)>,
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/exchangelib_discover.py");
    let mut args = vec![email.to_owned()];
    if let Some((user, password)) = credentials {
        args.push(user.to_owned());
        args.push(password.to_owned());
    }
    // A private mount namespace: this process alone sees the test's resolv.conf.
    let output = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
        .arg(resolv_conf)
        .arg(python)
        .arg(&script)
        .args(&args)
        .env("REQUESTS_CA_BUNDLE", ca)
        // exchangelib keeps an autodiscover cache in the temp folder: one per test run.
        .env(
            "TMPDIR",
            ca.parent().expect("the CA file is in the test's folder"),
        )
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exchangelib failed for {email}:\n{stderr}"
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n--- stderr\n{stderr}"))
}

/// Relays DNS over UDP from `listen` (port 53, where `/etc/resolv.conf` can point) to the test
/// DNS server, which picks its own port. Each query gets its own upstream socket.
async fn relay_udp_dns(
    listen: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
) -> tokio::task::JoinHandle<()> {
    let socket = std::sync::Arc::new(
        tokio::net::UdpSocket::bind(listen)
            .await
            .expect("bind port 53 (needs root)"),
    );
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        loop {
            let Ok((length, client)) = socket.recv_from(&mut buffer).await else {
                return;
            };
            let query = buffer[..length].to_vec();
            let socket = socket.clone();
            tokio::spawn(async move {
                let Ok(relay) = tokio::net::UdpSocket::bind((upstream.ip(), 0)).await else {
                    return;
                };
                if relay.send_to(&query, upstream).await.is_err() {
                    return;
                }
                let mut answer = vec![0u8; 4096];
                if let Ok(Ok(length)) =
                    tokio::time::timeout(std::time::Duration::from_secs(5), relay.recv(&mut answer))
                        .await
                {
                    let _ = socket.send_to(&answer[..length], client).await;
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchangelib_discovers_through_the_redirect_site_and_srv() {
    let python = std::path::PathBuf::from(std::env::var_os("AUTODISCO_EXCHANGELIB_PYTHON").expect(
        "AUTODISCO_EXCHANGELIB_PYTHON must name a Python with exchangelib 5.6.0: \
         run the README's test command, ./test, which creates that venv and sets it",
    ));
    for top in ["auth = \"none\"", "auth = \"basic\""] {
        let block = LoopbackBlock::claim();
        let (https, redirect) = (block.v4(1), block.v4(2));
        let dns = TestDns::start(
            block.ip(53),
            vec![
                Zone::new("hoster.example")
                    .a("autodiscover", https)
                    .a("autodiscoverredirect", redirect),
                // Found through the redirect site. In production this is the customer's CNAME
                // to autodiscoverredirect.hoster.example; the test DNS is authoritative only and
                // does not chase a CNAME into another zone, so it answers with the address a
                // recursive resolver would.
                Zone::new("customer.example").a("autodiscover", redirect),
                // Found through SRV only.
                Zone::new("srv.example").srv(
                    "_autodiscover._tcp",
                    0,
                    0,
                    443,
                    "autodiscover.hoster.example.",
                ),
            ],
        )
        .await;
        let relay = relay_udp_dns(block.addr(53, 53), dns.address()).await;
        let server =
            AuthServer::start_on(Backend::Sqlite, top, block.addr(2, 80), block.addr(1, 443)).await;
        server
            .store
            .add_domain(
                &autodisco_directory::Actor::Cli,
                &Domain::parse("srv.example").unwrap(),
                "default",
            )
            .await
            .unwrap();
        server.directory.refresh().await.unwrap();
        let password = "exchangelib's pass";
        for address in ["jane@customer.example", "jane@srv.example"] {
            let hash = autodisco_server::hash_password(password).unwrap();
            server
                .store
                .set_password_hash(
                    &autodisco_directory::Actor::Cli,
                    &EmailAddress::parse(address).unwrap(),
                    &hash,
                )
                .await
                .unwrap();
        }
        let folder = tempfile::tempdir().unwrap();
        let resolv_conf = folder.path().join("resolv.conf");
        std::fs::write(
            &resolv_conf,
            format!(
                "nameserver {}\noptions timeout:2 attempts:2\n",
                block.ip(53)
            ),
        )
        .unwrap();
        let ca = folder.path().join("ca.pem");
        std::fs::write(&ca, server.ca.cert_pem()).unwrap();

        for address in ["jane@customer.example", "jane@srv.example"] {
            let credentials = top.contains("basic").then_some((address, password));
            let (python, resolv_conf, ca) = (python.clone(), resolv_conf.clone(), ca.clone());
            let address_owned = address.to_owned();
            let found = tokio::task::spawn_blocking(move || {
                discover(&python, &resolv_conf, &ca, &address_owned, credentials)
            })
            .await
            .unwrap();
            assert_eq!(
                found["ews_url"], "https://mail.hoster.example/EWS/Exchange.asmx",
                "{top} {address}: {found}"
            );
            assert_eq!(found["version"], "Exchange2016", "{found}");
            assert_eq!(found["autodiscover_smtp_address"], address, "{found}");
            // Straight to the terminal, past the test harness's capture of `println!`: the
            // output of a passing run shows that exchangelib really ran, and which one.
            let _ = writeln!(
                std::io::stderr(),
                "exchangelib {} ({top}) discovered {} for {address}",
                found["exchangelib_version"].as_str().unwrap_or("?"),
                found["ews_url"],
            );
        }
        server.stop().await;
        relay.abort();
    }
}
