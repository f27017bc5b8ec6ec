//! Hostile bodies get the protocol's error response, and the server keeps answering.

use autodisco_test_support::{Backend, outlook_request};

use crate::{element, post, seeded_server};

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>&lol4;@customer.example</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#;

const EXTERNAL_ENTITY: &str = r#"<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>&xxe;</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_xml_gets_error_600_and_the_server_keeps_answering() {
    let server = seeded_server(Backend::Sqlite).await;
    let mut deep = String::from(
        r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">"#,
    );
    // Well-formed, so only the depth bound can refuse it.
    deep.push_str(&"<Request>".repeat(10_000));
    deep.push_str(&"</Request>".repeat(10_000));
    deep.push_str("</Autodiscover>");
    let mut invalid_utf8 = outlook_request("someone@customer.example").into_bytes();
    let at = invalid_utf8.iter().position(|b| *b == b'@').unwrap();
    invalid_utf8.splice(at..at, [0xff, 0xfe, 0xc3]);
    let ten_megabytes = {
        let mut body = outlook_request("someone@customer.example").into_bytes();
        body.extend(std::iter::repeat_n(b' ', 10 * 1024 * 1024));
        body
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("billion laughs", BILLION_LAUGHS.as_bytes().to_vec()),
        ("external entity", EXTERNAL_ENTITY.as_bytes().to_vec()),
        ("deep nesting", deep.into_bytes()),
        ("invalid UTF-8", invalid_utf8),
        ("10 MB body", ten_megabytes),
        ("not XML", b"{\"Email\": \"a@customer.example\"}".to_vec()),
        ("empty", Vec::new()),
        (
            "unknown namespace",
            b"<Autodiscover xmlns=\"urn:evil\"><Request/></Autodiscover>".to_vec(),
        ),
    ];
    for (name, body) in cases {
        let (status, content_type, answer) = post(&server, body, &[]).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(content_type, "text/xml; charset=utf-8", "{name}");
        assert_eq!(
            element(&answer, "ErrorCode"),
            Some("600"),
            "{name}: {answer}"
        );
        assert!(!answer.contains("root:"), "{name}: file contents leaked");
        // And the next ordinary request is answered.
        let (_, _, ok) = post(&server, outlook_request("someone@customer.example"), &[]).await;
        assert_eq!(element(&ok, "Action"), Some("settings"), "after {name}");
    }
    // An unsupported response schema is 601.
    let old_schema = outlook_request("someone@customer.example")
        .replace("responseschema/2006a", "responseschema/2006");
    let (_, _, answer) = post(&server, old_schema, &[]).await;
    assert_eq!(element(&answer, "ErrorCode"), Some("601"), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_on_the_pox_url_is_not_a_success() {
    let server = seeded_server(Backend::Sqlite).await;
    let response = server.client().get(server.pox_url()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let other = server.pox_url().replace("autodiscover.xml", "nothing.xml");
    assert_eq!(
        server
            .client()
            .post(other)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    server.stop().await;
}
