//! Autodiscover v2 JSON through the real HTTPS service.

use autodisco_test_support::{Backend, SERVICE_HOST, TestServer};

use crate::seeded_server;

on_both_backends!(v2_query_and_path_forms, v2_errors);

/// GETs `path_and_query` on the service host; returns the status and the parsed JSON body.
pub(crate) async fn get_json(
    server: &TestServer,
    path_and_query: &str,
) -> (u16, serde_json::Value) {
    let response = server
        .client()
        .get(format!(
            "https://{SERVICE_HOST}:{}{path_and_query}",
            server.https_addr().port()
        ))
        .send()
        .await
        .expect("GET the v2 URL");
    let status = response.status().as_u16();
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/json; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, json)
}

async fn v2_query_and_path_forms(backend: Backend) {
    let server = seeded_server(backend).await;
    let pox = "https://autodiscover.hoster.example/autodiscover/autodiscover.xml";
    for path in [
        "/autodiscover/autodiscover.json?Email=jane@customer.example&Protocol=AutodiscoverV1",
        "/autodiscover/autodiscover.json?Email=jane%40customer.example&Protocol=autodiscoverv1&RedirectCount=1",
        "/AutoDiscover/AutoDiscover.json/v1.0/jane@customer.example?Protocol=AutoDiscoverV1",
        "/autodiscover/autodiscover.json/v1.0/someone%40alias.example?Protocol=AUTODISCOVERV1&RedirectCount=3",
    ] {
        let (status, json) = get_json(&server, path).await;
        assert_eq!(status, 200, "{path}: {json}");
        assert_eq!(
            json,
            serde_json::json!({"Protocol": "AutodiscoverV1", "Url": pox}),
            "{path}"
        );
    }
    let (status, json) = get_json(
        &server,
        "/autodiscover/autodiscover.json/v1.0/x@business.example?Protocol=ews",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json,
        serde_json::json!({"Protocol": "EWS", "Url": "https://ews.hoster.example/EWS/Exchange.asmx"})
    );
    let (status, json) = get_json(
        &server,
        "/autodiscover/autodiscover.json?Email=x@business.example&Protocol=ActiveSync",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json["Url"],
        "https://mail.hoster.example/Microsoft-Server-ActiveSync"
    );
    // A moved mailbox: POX carries the redirect; EWS is the target's.
    let (_, json) = get_json(
        &server,
        "/autodiscover/autodiscover.json?Email=moved@customer.example&Protocol=EWS",
    )
    .await;
    assert_eq!(json["Url"], "https://ews.hoster.example/EWS/Exchange.asmx");
    server.stop().await;
}

async fn v2_errors(backend: Backend) {
    let server = seeded_server(backend).await;
    let (status, json) = get_json(
        &server,
        "/autodiscover/autodiscover.json?Email=x@customer.example&Protocol=%3Cb%3ERest%3C/b%3E%22",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(json["ErrorCode"], "InvalidProtocol");
    let message = json["ErrorMessage"].as_str().unwrap();
    assert!(message.contains("'bRestb'"), "{message}");
    assert!(
        message.contains("AutodiscoverV1, EWS, ActiveSync"),
        "{message}"
    );
    assert!(
        !message.contains('<') && !message.contains('"'),
        "{message}"
    );

    let (status, json) = get_json(
        &server,
        "/autodiscover/autodiscover.json?Email=x@customer.example",
    )
    .await;
    assert_eq!(
        (status, &json["ErrorCode"]),
        (400, &serde_json::json!("MandatoryParameterMissing"))
    );
    // The default profile has no ActiveSync; unhosted and suspended domains are not served.
    let (status, json) = get_json(
        &server,
        "/autodiscover/autodiscover.json?Email=x@customer.example&Protocol=ActiveSync",
    )
    .await;
    assert_eq!(
        (status, &json["ErrorCode"]),
        (404, &serde_json::json!("ProtocolNotAvailable"))
    );
    for email in ["x@unknown.example", "x@suspended.example"] {
        let (status, json) = get_json(
            &server,
            &format!("/autodiscover/autodiscover.json?Email={email}&Protocol=EWS"),
        )
        .await;
        assert_eq!(
            (status, &json["ErrorCode"]),
            (404, &serde_json::json!("InvalidUser"))
        );
    }
    // POST is not how v2 is asked.
    let response = server
        .client()
        .post(format!(
            "https://{SERVICE_HOST}:{}/autodiscover/autodiscover.json",
            server.https_addr().port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    server.stop().await;
}
