//! Graceful shutdown: a request in flight is finished; no new connection is accepted.

use std::time::Duration;

use autodisco_test_support::{Backend, outlook_request};

use crate::{body_in_two_halves, element, seeded_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight() {
    let server = seeded_server(Backend::Sqlite).await;
    let client = server.client();
    let url = server.pox_url();
    let https = server.https_addr();

    // A request whose body arrives in two parts, with the shutdown in between.
    let (body, send_second_half) =
        body_in_two_halves(outlook_request("someone@customer.example").into_bytes()).await;
    let in_flight = tokio::spawn(
        client
            .post(url)
            .header("Content-Type", "text/xml")
            .body(body)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown must wait for the request in flight"
    );
    // New connections are no longer accepted.
    assert!(
        tokio::net::TcpStream::connect(https).await.is_err(),
        "listener still open"
    );

    send_second_half().await.unwrap();
    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    assert_eq!(element(&text, "Action"), Some("settings"), "{text}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown completes once the request is done")
        .unwrap();
}
