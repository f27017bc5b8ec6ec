//! One service profile, every dialect: a change to a profile's IMAP host shows up in POX,
//! Mozilla autoconfig, PACC and the Apple profile alike.

use autodisco_proto::autoconfig::ClientConfig;
use autodisco_proto::pacc::{self, PaccDocument};
use autodisco_proto::pox::{OutlookResponse, ProtocolKind};
use autodisco_test_support::{Backend, TestServer, outlook_request};

use crate::autoconfig::{autoconfig_for, get, server_with_names};
use crate::mobileconfig::verified_profile;
use crate::pacc::add_implicit_tls_submission;
use crate::post;

on_both_backends!(an_imap_host_change_reaches_every_dialect);

const ADDRESS: &str = "someone@customer.example";

/// The IMAP host each dialect announces for [`ADDRESS`]: POX, autoconfig (MX path and
/// `autoconfig.CUSTOMER`), PACC, Apple profile; and the PACC body.
async fn imap_hosts(server: &TestServer, client: &reqwest::Client) -> ([String; 5], String) {
    let (_, _, body) = post(server, outlook_request(ADDRESS), &[]).await;
    let OutlookResponse::Settings(pox) = OutlookResponse::from_xml(body.as_bytes()).unwrap() else {
        panic!("not settings: {body}")
    };
    let pox_imap = pox
        .protocols
        .iter()
        .find(|p| p.kind == ProtocolKind::Imap)
        .and_then(|p| p.server.clone())
        .unwrap();

    let mx_path = autoconfig_for(server, client, ADDRESS).await.incoming[0]
        .hostname
        .clone();
    let (status, _, body) = get(
        server,
        client,
        "autoconfig.customer.example",
        "/mail/config-v1.1.xml",
    )
    .await;
    assert_eq!(status, 200);
    let by_host = ClientConfig::from_xml(body.as_bytes()).unwrap().incoming[0]
        .hostname
        .clone();

    let (status, _, pacc_body) = get(
        server,
        client,
        "ua-auto-config.customer.example",
        pacc::PATH,
    )
    .await;
    assert_eq!(status, 200, "{pacc_body}");
    let pacc_imap = PaccDocument::from_json(pacc_body.as_bytes())
        .unwrap()
        .protocols
        .imap
        .unwrap()
        .host;

    let apple = verified_profile(server, ADDRESS).await;
    let apple_imap = apple["PayloadContent"].as_array().unwrap()[0]
        .as_dictionary()
        .unwrap()["IncomingMailServerHostName"]
        .as_string()
        .unwrap()
        .to_owned();
    (
        [pox_imap, mx_path, by_host, pacc_imap, apple_imap],
        pacc_body,
    )
}

async fn an_imap_host_change_reaches_every_dialect(backend: Backend) {
    let (server, client) = server_with_names(backend).await;
    add_implicit_tls_submission(&server).await;
    let (before, pacc_before) = imap_hosts(&server, &client).await;
    assert_eq!(before, ["imap.hoster.example"; 5].map(String::from));

    let mut profile = server.store.get_profile("default").await.unwrap();
    profile.imap[0].host = "imap2.hoster.example".into();
    server
        .store
        .put_profile(&autodisco_directory::Actor::Cli, "default", &profile)
        .await
        .unwrap();
    server.refresh().await;

    let (after, pacc_after) = imap_hosts(&server, &client).await;
    assert_eq!(after, ["imap2.hoster.example"; 5].map(String::from));
    // The PACC bytes changed, so the customer's TXT record must too: the old one no longer
    // vouches for the document.
    let old_record = pacc::digest_record(pacc_before.as_bytes());
    assert!(!pacc::record_matches(&old_record, pacc_after.as_bytes()));
    server.stop().await;
}
