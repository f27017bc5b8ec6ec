//! Graceful shutdown: a request in flight is finished; no new connection is accepted.

use std::time::Duration;

use autodisco_test_support::{Backend, outlook_request};

use crate::{element, seeded_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight() {
    let server = seeded_server(Backend::Sqlite).await;
    let client = server.client();
    let url = server.pox_url();
    let https = server.https_addr();

    // A request whose body arrives in two parts, with the shutdown in between.
    let body = outlook_request("someone@customer.example").into_bytes();
    let (first, second) = body.split_at(body.len() / 2);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    sender.send(Ok(first.to_vec())).await.unwrap();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let in_flight = tokio::spawn(
        client
            .post(url)
            .header("Content-Type", "text/xml")
            .body(reqwest::Body::wrap_stream(stream))
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

    sender.send(Ok(second.to_vec())).await.unwrap();
    drop(sender);
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
