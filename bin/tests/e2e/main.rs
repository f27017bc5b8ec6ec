//! End-to-end tests: the real server on loopback, with a test CA, against SQLite and PostgreSQL.
//!
//! - `pox`: Outlook and ActiveSync requests through HTTPS, every element checked.
//! - `autoconfig`: Mozilla autoconfig on both paths, the MX path and the plain-HTTP site.
//! - `mobileconfig`: signed Apple profiles, verified with openssl, parsed with plist.
//! - `pacc`: the PACC document at `ua-auto-config.CUSTOMER` and its DNS digest.
//! - `check`: `dns records` and `domain check` against good, missing, wrong, looping and stale
//!   records on a loopback DNS server: each finding's words, exit codes, stored health.
//! - `consistency`: a profile change reaches POX, autoconfig, PACC and the Apple profile.
//! - `auth`: `auth = "basic"`: challenges, CLI passwords, alike refusals, rate limits, no password logged.
//! - `privacy`: with `auth = "basic"`, anonymous answers carry no user's override and an
//!   authenticated POX or SOAP caller gets their own mailbox only.
//! - `exchangelib`: the Python EWS library, unmodified, discovers via the redirect site and SRV.
//! - `soap`: SOAP Autodiscover, `X-SOAP-Enabled` everywhere, one profile change in every dialect.
//! - `v2`: Autodiscover v2 JSON, query and path forms, errors.
//! - `probe`: `autodisco probe` against the seed on loopback (DNS, redirect site, HTTPS service):
//!   step 3 with consent, refusal without it, redirectAddr, redirectUrl, loops, 10 hops, SRV.
//! - `probe_dialects`: `autodisco probe --dialect` soap, json, autoconfig (with the MX path) and
//!   all, agreeing and disagreeing.
//! - `probe_safety`: credentials only where allowed, certificate diagnosis, a blackholed root.
//! - `redirect`: the plain-HTTP redirect site, whitelisted and hostile paths and hosts.
//! - `hostile`: hostile XML and bodies get the protocol's error, and the server keeps answering.
//! - `live`: a domain added with the CLI while the server runs is answered within 2 seconds.
//! - `shutdown`: stopping the server finishes requests in flight.
//! - `signals`: the real binary under SIGHUP (config reload) and SIGTERM (graceful exit).
//! - `admin_api`: the admin API over HTTP: tokens and scopes, every resource, errors naming the
//!   field, If-Match between two concurrent writers, a created domain answered within 2 s.
//! - `contract`: schemathesis checks the running admin API against its OpenAPI description.
//! - `tls`: the hoster's certificate and per-domain certificates chosen by SNI.
//! - `transfer`: `import` and `export`: 100,000 domains from CSV (timed), identical round trips,
//!   bad rows named by line.

/// Runs each named `async fn scenario(backend: Backend)` once on SQLite and once on PostgreSQL,
/// as `scenario::sqlite` and `scenario::postgres`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(autodisco_test_support::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario(autodisco_test_support::Backend::Postgres).await;
            }
        }
    )*};
}

mod admin_api;
mod auth;
mod autoconfig;
mod check;
mod consistency;
mod contract;
mod exchangelib;
mod hostile;
mod live;
mod mobileconfig;
mod operations;
mod pacc;
mod pox;
mod privacy;
mod probe;
mod probe_dialects;
mod probe_safety;
mod redirect;
mod shutdown;
mod signals;
mod soap;
mod tls;
mod transfer;
mod v2;

use autodisco_test_support::{Backend, TestServer};

/// Profiles every end-to-end server starts with: the hoster's default plan, and a business plan
/// with ActiveSync, Outlook Anywhere and MAPI over HTTP.
pub const PROFILES: &str = r#"
[profiles.default]
display_name = "Hoster Example Mail"

[[profiles.default.imap]]
host = "imap.hoster.example"
port = 993
security = "tls"

[[profiles.default.smtp]]
host = "smtp.hoster.example"
port = 587
security = "starttls"

[profiles.default.ews]
url = "https://mail.hoster.example/EWS/Exchange.asmx"
availability_url = "https://mail.hoster.example/EWS/Availability.asmx"
oof_url = "https://mail.hoster.example/EWS/OOF.asmx"
oab_url = "https://mail.hoster.example/OAB/%EMAILDOMAIN%/"

[profiles.business]
activesync_url = "https://mail.hoster.example/Microsoft-Server-ActiveSync"

[[profiles.business.pop3]]
host = "pop.hoster.example"
port = 995
security = "tls"
username = "%EMAILLOCALPART%"

[[profiles.business.smtp]]
host = "smtp.hoster.example"
port = 465
security = "tls"
authentication = "password-encrypted"

[profiles.business.ews]
url = "https://ews.hoster.example/EWS/Exchange.asmx"
rpc_http_server = "rpc.hoster.example"
auth_package = "Ntlm"
owa_url = "https://ews.hoster.example/owa/"

[profiles.business.mapi_http]
mailstore_internal_url = "https://mapi.hoster.example/mapi/emsmdb/?MailboxId=%EMAILADDRESS%"
mailstore_external_url = "https://mapi.hoster.example/mapi/emsmdb/?MailboxId=%EMAILADDRESS%"
addressbook_internal_url = "https://mapi.hoster.example/mapi/nspi/?MailboxId=%EMAILADDRESS%"
addressbook_external_url = "https://mapi.hoster.example/mapi/nspi/?MailboxId=%EMAILADDRESS%"
"#;

/// A server with the test profiles and these domains: customer.example (default),
/// alias.example (alias of customer.example), business.example (business), and
/// suspended.example (suspended).
pub async fn seeded_server(backend: Backend) -> TestServer {
    seeded_server_with(backend, "").await
}

/// [`seeded_server`] with `extra` config (tables other than profiles) added.
pub async fn seeded_server_with(backend: Backend, extra: &str) -> TestServer {
    use autodisco_directory::{DomainStatus, Redirect, UserOverride};
    use autodisco_proto::{Domain, EmailAddress};
    let server = TestServer::start(backend, &format!("{extra}\n{PROFILES}")).await;
    let domain = |name: &str| Domain::parse(name).unwrap();
    let store = &server.store;
    store
        .add_domain(
            &autodisco_directory::Actor::Cli,
            &domain("customer.example"),
            "default",
        )
        .await
        .unwrap();
    store
        .add_alias(
            &autodisco_directory::Actor::Cli,
            &domain("alias.example"),
            &domain("customer.example"),
        )
        .await
        .unwrap();
    store
        .add_domain(
            &autodisco_directory::Actor::Cli,
            &domain("business.example"),
            "business",
        )
        .await
        .unwrap();
    store
        .add_domain(
            &autodisco_directory::Actor::Cli,
            &domain("suspended.example"),
            "default",
        )
        .await
        .unwrap();
    store
        .set_status(
            &autodisco_directory::Actor::Cli,
            &domain("suspended.example"),
            DomainStatus::Suspended,
        )
        .await
        .unwrap();
    let mut jane = UserOverride::new(EmailAddress::parse("jane@customer.example").unwrap());
    jane.display_name = Some("Jane <Doe> & Co".into());
    jane.login_name = Some("jdoe".into());
    store
        .put_user(&autodisco_directory::Actor::Cli, &jane)
        .await
        .unwrap();
    let mut moved = UserOverride::new(EmailAddress::parse("moved@customer.example").unwrap());
    moved.redirect = Some(Redirect::Address(
        EmailAddress::parse("moved@business.example").unwrap(),
    ));
    store
        .put_user(&autodisco_directory::Actor::Cli, &moved)
        .await
        .unwrap();
    let mut elsewhere =
        UserOverride::new(EmailAddress::parse("elsewhere@customer.example").unwrap());
    elsewhere.redirect = Some(Redirect::Url(
        "https://autodiscover.other.example/autodiscover/autodiscover.xml".into(),
    ));
    store
        .put_user(&autodisco_directory::Actor::Cli, &elsewhere)
        .await
        .unwrap();
    server.refresh().await;
    server
}

/// POSTs `body` to the POX URL and returns status, content type and body.
pub async fn post(
    server: &TestServer,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut request = server
        .client()
        .post(server.pox_url())
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST to the POX URL");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The text of the first `<name>` element in `xml`.
pub fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// The `<Protocol>` blocks of a POX answer whose Type (element or attribute) is `kind`.
pub fn protocol_blocks<'a>(xml: &'a str, kind: &str) -> Vec<&'a str> {
    xml.split("<Protocol")
        .skip(1)
        .filter_map(|part| part.split("</Protocol>").next())
        .filter(|block| {
            block.contains(&format!("<Type>{kind}</Type>"))
                || block.contains(&format!("Type=\"{kind}\""))
        })
        .collect()
}

/// A request body sent in two halves: the first now, the second when the returned function is
/// called. Tests use it to hold a request in flight across a shutdown.
pub async fn body_in_two_halves(
    body: Vec<u8>,
) -> (reqwest::Body, impl FnOnce() -> tokio::task::JoinHandle<()>) {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let second = body[body.len() / 2..].to_vec();
    sender
        .send(Ok(body[..body.len() / 2].to_vec()))
        .await
        .unwrap();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let finish = move || {
        tokio::spawn(async move {
            sender.send(Ok(second)).await.unwrap();
        })
    };
    (reqwest::Body::wrap_stream(stream), finish)
}
