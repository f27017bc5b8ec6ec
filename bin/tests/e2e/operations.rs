//! What operators rely on: a request id on every answer (and in its log line), and the admin
//! listener's `/healthz` and `/readyz` for load balancers and orchestrators.

use std::time::Duration;

use autodisco_server::RunningServer;
use autodisco_test_support::{Backend, outlook_request};

use crate::seeded_server;

on_both_backends!(
    every_answer_carries_its_own_request_id,
    readiness_follows_the_directory
);

fn request_id(response: &reqwest::Response) -> String {
    let id = response
        .headers()
        .get("x-request-id")
        .expect("an X-Request-Id header")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    id
}

async fn every_answer_carries_its_own_request_id(backend: Backend) {
    let server = seeded_server(backend).await;
    let client = server.client();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let answer = client
            .post(server.pox_url())
            .header("content-type", "text/xml")
            .body(outlook_request("jane@customer.example"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        ids.push(request_id(&answer));
    }
    // The redirect site too, and a client's own id is not taken over.
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "http://{}/autodiscover/autodiscover.xml",
            server.http_addr()
        ))
        .header("host", "autodiscover.customer.example")
        .header("x-request-id", "0000000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 302);
    ids.push(request_id(&redirect));
    assert!(!ids.contains(&"0000000000000000".to_owned()), "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
}

/// `/healthz` and `/readyz` answer without a token; `/readyz` turns 503 once the directory
/// database has been unreachable for longer than `[directory] unready_after_secs`.
async fn readiness_follows_the_directory(backend: Backend) {
    let server = seeded_server(backend).await;
    // A second instance on the same directory with the admin listener and a short tolerance.
    let mut config = server.config.clone();
    let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    config.http_listen = vec![any_port];
    config.https_listen = vec![any_port];
    config.admin_listen = vec![any_port];
    config.directory_unready_after = Duration::from_secs(1);
    let instance = RunningServer::start(&config, server.directory.clone())
        .await
        .unwrap();
    let base = format!("http://{}", instance.admin_addrs[0]);
    let http = reqwest::Client::new();
    let get = |path: &'static str| http.get(format!("{base}{path}")).send();

    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready\n");

    // The database goes away: the last snapshot is still served, but after the tolerance the
    // instance says it is not ready.
    server.directory.store().close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = get("/readyz").await.unwrap();
        if ready.status() == 503 {
            let text = ready.text().await.unwrap();
            assert!(text.contains("unreachable for"), "{text}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "/readyz stayed 200");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    instance.shutdown().await;
}
