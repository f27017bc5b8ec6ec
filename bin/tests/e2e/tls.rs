//! Certificates: the hoster's for the service host, per-domain ones by SNI.

use autodisco_test_support::{Backend, https_client, outlook_request};

use crate::{element, seeded_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_domain_certificates_are_chosen_by_sni() {
    let server = seeded_server(Backend::Sqlite).await;
    server
        .store
        .add_domain(
            &autodisco_directory::Actor::Cli,
            &autodisco_proto::Domain::parse("direct.example").unwrap(),
            "default",
        )
        .await
        .unwrap();
    server.refresh().await;
    // autodiscover.direct.example is served with its own certificate from the certs folder, so
    // a client reaches the service directly (step 2 of [MS-OXDISCO] 3.1.5) without the redirect.
    let url = format!(
        "https://autodiscover.direct.example:{}/autodiscover/autodiscover.xml",
        server.https_addr().port()
    );
    let response = server
        .client()
        .post(url)
        .body(outlook_request("a@direct.example"))
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    assert_eq!(element(&body, "Action"), Some("settings"), "{body}");

    // A name with no certificate of its own gets the hoster's, which does not cover it.
    let client = https_client(
        &server.ca,
        &[("autodiscover.customer.example", server.https_addr())],
    );
    let url = format!(
        "https://autodiscover.customer.example:{}/autodiscover/autodiscover.xml",
        server.https_addr().port()
    );
    let error = client
        .post(url)
        .body(outlook_request("a@customer.example"))
        .send()
        .await
        .unwrap_err();
    assert!(
        error.is_connect() || error.to_string().contains("certificate"),
        "{error:?}"
    );
    server.stop().await;
}
