//! `auth = "basic"`: challenges, directory passwords set with the CLI, refusals that look alike,
//! rate limits, Basic refused over plain HTTP, and no password in the log. Against the IMAP
//! backend (a real IMAP server over TLS on loopback): concurrent guesses reach it at most the
//! free quota, an attacked user still logs in from elsewhere, `NO [UNAVAILABLE]` is a `503` and
//! not a failure, and logins in flight are bounded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use autodisco_directory::{Actor, LiveDirectory, Store};
use autodisco_proto::soap::{SoapRequest, SoapResponse, SoapResponseBody};
use autodisco_server::RunningServer;
use autodisco_server::auth_limits::FAILURE_FLOOR;
use autodisco_server::auth_limits::FREE_FAILURES_PER_ACCOUNT;
use autodisco_server::auth_limits::{MAX_CONCURRENT_LOGINS, QUEUE_WAIT};
use autodisco_server::config::Config;
use autodisco_test_support::imap::{IMAP_HOST, ImapTestServer};
use autodisco_test_support::{
    Backend, HOSTER, SERVICE_HOST, TestCa, TestDatabase, https_client, https_client_builder,
    outlook_request,
};

use crate::{PROFILES, element};

on_both_backends!(
    unauthenticated_posts_get_a_challenge,
    directory_passwords_set_with_the_cli,
    refusals_look_alike_and_are_rate_limited,
    an_attacked_user_still_logs_in_from_elsewhere,
    basic_is_refused_over_plain_http
);

/// A real server with `top` at the start of its config (top-level keys such as `auth` must
/// precede every table, which the shared `TestServer` cannot do).
pub(crate) struct AuthServer {
    pub(crate) ca: TestCa,
    pub(crate) server: RunningServer,
    pub(crate) store: Store,
    pub(crate) directory: LiveDirectory,
    pub(crate) config_path: PathBuf,
    refresher: tokio::task::JoinHandle<()>,
    _database: TestDatabase,
    _folder: tempfile::TempDir,
}

impl AuthServer {
    pub(crate) async fn start(backend: Backend, top: &str) -> Self {
        Self::start_with_tables(backend, top, "").await
    }

    /// The same with `tables` (such as `[auth_imap]`) after the listeners.
    pub(crate) async fn start_with_tables(backend: Backend, top: &str, tables: &str) -> Self {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self::launch(backend, top, tables, any, any).await
    }

    /// The same with the redirect site on `http` and the HTTPS service on `https`.
    pub(crate) async fn start_on(
        backend: Backend,
        top: &str,
        http: SocketAddr,
        https: SocketAddr,
    ) -> Self {
        Self::launch(backend, top, "", http, https).await
    }

    async fn launch(
        backend: Backend,
        top: &str,
        tables: &str,
        http: SocketAddr,
        https: SocketAddr,
    ) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let database = TestDatabase::create(backend, folder.path()).await;
        let ca = TestCa::new();
        ca.issue(&[SERVICE_HOST])
            .write_combined(&folder.path().join("service.pem"));
        let text = format!(
            "{top}\nhoster = \"{HOSTER}\"\ndatabase = \"{}\"\n\n[http]\nlisten = [\"{http}\"]\n\n[https]\nlisten = [\"{https}\"]\ncert = \"service.pem\"\nkey = \"service.pem\"\n\n{tables}\n{PROFILES}",
            database.url
        );
        let config_path = folder.path().join("autodisco.toml");
        std::fs::write(&config_path, text).unwrap();
        let config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let store = Store::connect(&config.database).await.unwrap();
        autodisco_server::bootstrap::prepare_directory(&config, &store)
            .await
            .unwrap();
        let domain = |name: &str| autodisco_proto::Domain::parse(name).unwrap();
        store
            .add_domain(&Actor::Cli, &domain("customer.example"), "default")
            .await
            .unwrap();
        store
            .add_alias(
                &Actor::Cli,
                &domain("alias.example"),
                &domain("customer.example"),
            )
            .await
            .unwrap();
        let directory = LiveDirectory::load(store.clone()).await.unwrap();
        let refresher = directory.spawn_refresher(config.directory_poll);
        let server = RunningServer::start(&config, directory.clone())
            .await
            .unwrap();
        Self {
            ca,
            server,
            store,
            directory,
            config_path,
            refresher,
            _database: database,
            _folder: folder,
        }
    }

    fn https(&self) -> SocketAddr {
        self.server.https_addrs[0]
    }

    pub(crate) fn client(&self) -> reqwest::Client {
        https_client(&self.ca, &[(SERVICE_HOST, self.https())])
    }

    /// A client whose connections come from `source` (any address of 127.0.0.0/8), so the
    /// server sees it as another client.
    ///
    /// Each request on a new connection, as a guessing attacker's would be. Reused keep-alive
    /// connections have failed here with a broken pipe on a loaded machine (about one run in
    /// ten); the cause is not found yet, and it is not what these tests look at.
    pub(crate) fn client_from(&self, source: Ipv4Addr) -> reqwest::Client {
        https_client_builder(&self.ca, &[(SERVICE_HOST, self.https())])
            .local_address(IpAddr::V4(source))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://{SERVICE_HOST}:{}{path}", self.https().port())
    }

    /// POSTs the Outlook request for `address`, with `credentials` when given.
    pub(crate) async fn post_pox(
        &self,
        address: &str,
        credentials: Option<(&str, &str)>,
    ) -> (u16, Vec<(String, String)>, String) {
        self.post_pox_from(&self.client(), address, credentials)
            .await
    }

    /// [`Self::post_pox`] with `client`.
    pub(crate) async fn post_pox_from(
        &self,
        client: &reqwest::Client,
        address: &str,
        credentials: Option<(&str, &str)>,
    ) -> (u16, Vec<(String, String)>, String) {
        let mut request = client
            .post(self.url("/autodiscover/autodiscover.xml"))
            .header("Content-Type", "text/xml")
            .body(outlook_request(address));
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            // Both differ from answer to answer whoever asks; they tell an attacker nothing.
            .filter(|(name, _)| *name != "date" && *name != "x-request-id")
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        (status, headers, response.text().await.unwrap())
    }

    /// Runs the CLI against this server's config, with `stdin` as standard input.
    pub(crate) fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_autodisco"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub(crate) async fn stop(self) {
        self.refresher.abort();
        self.server.shutdown().await;
    }
}

const BASIC: &str = "auth = \"basic\"";
const CHALLENGE: &str = "Basic realm=\"autodiscover.hoster.example\", charset=\"UTF-8\"";

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn unauthenticated_posts_get_a_challenge(backend: Backend) {
    let server = AuthServer::start(backend, BASIC).await;
    // The probe every EWS client makes: a dummy address, no credentials.
    let (status, headers, body) = server.post_pox("DUMMY@example.com", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(header(&headers, "www-authenticate"), Some(CHALLENGE));
    assert_eq!(header(&headers, "x-soap-enabled"), Some("True"));
    assert!(body.is_empty());
    let response = server
        .client()
        .post(server.url("/autodiscover/autodiscover.svc"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(SoapRequest::get_user_settings("DUMMY@example.com", &["ExternalEwsUrl"]).to_xml())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["www-authenticate"], CHALLENGE);
    // v2 JSON stays anonymous, as on Exchange.
    let response = server
        .client()
        .get(server.url(
            "/autodiscover/autodiscover.json?Email=a@customer.example&Protocol=AutodiscoverV1",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    server.stop().await;
}

async fn directory_passwords_set_with_the_cli(backend: Backend) {
    let server = AuthServer::start(backend, BASIC).await;
    let output = server.cli(
        &["user", "passwd", "Jane@Alias.Example"],
        "correct horse: battery ü\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "password for Jane@customer.example created"
    );
    // Only a hash is stored.
    let jane = autodisco_proto::EmailAddress::parse("jane@customer.example").unwrap();
    let hash = server.store.password_hash(&jane).await.unwrap().unwrap();
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains("battery"),
        "{hash}"
    );

    for user in ["jane@customer.example", "JANE@alias.example"] {
        let (status, _, body) = server
            .post_pox(
                "jane@customer.example",
                Some((user, "correct horse: battery ü")),
            )
            .await;
        assert_eq!(status, 200, "{user}: {body}");
        assert_eq!(element(&body, "Action"), Some("settings"));
    }
    // SOAP with the same credentials.
    let response = server
        .client()
        .post(server.url("/autodiscover/autodiscover.svc"))
        .basic_auth("jane@customer.example", Some("correct horse: battery ü"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(SoapRequest::get_user_settings("jane@customer.example", &["ExternalEwsUrl"]).to_xml())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().await.unwrap();
    let SoapResponseBody::GetUserSettings(answer) =
        SoapResponse::from_xml(body.as_bytes()).unwrap().body
    else {
        panic!("{body}")
    };
    assert_eq!(
        answer.user_responses[0].string_setting("ExternalEwsUrl"),
        Some("https://mail.hoster.example/EWS/Exchange.asmx")
    );

    // Unknown domains and empty passwords are refused by the CLI; removal works.
    let output = server.cli(&["user", "passwd", "x@unknown.example"], "pw\n");
    assert_eq!(output.status.code(), Some(1));
    let output = server.cli(&["user", "passwd", "jane@customer.example"], "\n");
    assert_eq!(output.status.code(), Some(1));
    let output = server.cli(&["user", "passwd", "--remove", "jane@customer.example"], "");
    assert!(output.status.success());
    assert_eq!(server.store.password_hash(&jane).await.unwrap(), None);

    // Removing the domain removes its passwords: adding it again revives none.
    let output = server.cli(&["user", "passwd", "jane@customer.example"], "again\n");
    assert!(output.status.success());
    let customer = autodisco_proto::Domain::parse("customer.example").unwrap();
    server
        .store
        .remove_domain(
            &Actor::Cli,
            &customer,
            autodisco_directory::DomainRemoval::Cascade,
        )
        .await
        .unwrap();
    server
        .store
        .add_domain(&Actor::Cli, &customer, "default")
        .await
        .unwrap();
    assert_eq!(server.store.password_hash(&jane).await.unwrap(), None);
    server.stop().await;
}

async fn refusals_look_alike_and_are_rate_limited(backend: Backend) {
    let server = AuthServer::start(backend, BASIC).await;
    let output = server.cli(
        &["user", "passwd", "joe@customer.example"],
        "joe's password\n",
    );
    assert!(output.status.success());
    let attempts = [
        ("joe@customer.example", "wrong password"),
        ("nobody@customer.example", "joe's password"),
        ("joe@unhosted.example", "joe's password"),
        ("not-an-address", "x"),
    ];
    let mut answers = Vec::new();
    let mut timings = Vec::new();
    for (user, password) in attempts {
        let started = Instant::now();
        let (status, headers, body) = server
            .post_pox("joe@customer.example", Some((user, password)))
            .await;
        timings.push(started.elapsed());
        answers.push((status, headers, body));
    }
    // Same status, headers and body for all of them.
    for answer in &answers[1..] {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(answers[0].0, 401);
    // None faster than the floor, and none much slower than the others.
    let slowest = *timings.iter().max().unwrap();
    let fastest = *timings.iter().min().unwrap();
    assert!(fastest >= FAILURE_FLOOR, "{timings:?}");
    assert!(
        slowest - fastest < Duration::from_millis(700),
        "{timings:?}"
    );

    // Joe has one failure; four more reach the limit, and then even the right password is
    // refused, the same way.
    for i in 0..4 {
        let (status, _, _) = server
            .post_pox(
                "joe@customer.example",
                Some(("joe@customer.example", &format!("guess {i}"))),
            )
            .await;
        assert_eq!(status, 401);
    }
    let limited = server
        .post_pox(
            "joe@customer.example",
            Some(("joe@customer.example", "joe's password")),
        )
        .await;
    assert_eq!(limited, answers[0]);
    server.stop().await;
}

/// The attacker's and the user's source addresses (both on loopback).
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const JANE_AT_HOME: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const JANE_PASSWORD: &str = "Jane's real password";

/// Five wrong guesses from the attacker's address back off that address only: Jane, from
/// hers, still logs in; from the attacker's address even the right password is refused alike.
async fn an_attacked_user_still_logs_in_from_elsewhere(backend: Backend) {
    let server = AuthServer::start(backend, BASIC).await;
    let output = server.cli(
        &["user", "passwd", "jane@customer.example"],
        &format!("{JANE_PASSWORD}\n"),
    );
    assert!(output.status.success());
    let attacker = server.client_from(ATTACKER);
    let guesses = (0..20).map(|i| {
        let attacker = &attacker;
        let server = &server;
        async move {
            let password = format!("guess {i}");
            server
                .post_pox_from(
                    attacker,
                    "jane@customer.example",
                    Some(("jane@customer.example", &password)),
                )
                .await
        }
    });
    let refused = futures_util::future::join_all(guesses).await;
    assert!(refused.iter().all(|answer| answer == &refused[0]));
    assert_eq!(refused[0].0, 401);
    let right = Some(("jane@customer.example", JANE_PASSWORD));
    assert_eq!(
        server
            .post_pox_from(&attacker, "jane@customer.example", right)
            .await,
        refused[0]
    );
    let (status, _, body) = server
        .post_pox_from(
            &server.client_from(JANE_AT_HOME),
            "jane@customer.example",
            right,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

/// A server whose passwords are checked by `imap`; its CA file goes into `folder`.
async fn imap_checked_server(imap: &ImapTestServer, folder: &Path) -> AuthServer {
    let ca_file = folder.join("imap-ca.pem");
    std::fs::write(&ca_file, imap.ca_pem()).unwrap();
    let tables = format!(
        "[auth_imap]\nhost = \"{IMAP_HOST}\"\nport = {}\nca_file = \"{}\"\n",
        imap.address().port(),
        ca_file.display()
    );
    AuthServer::start_with_tables(Backend::Sqlite, BASIC, &tables).await
}

/// 200 concurrent wrong guesses, half on an alias address of the same account: only the free
/// quota reaches the IMAP server (the limit is reserved before the check, not counted after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_reach_the_imap_server_at_most_the_free_quota() {
    let imap = ImapTestServer::start(&[("jane@customer.example", JANE_PASSWORD)]).await;
    // Slow answers keep all guesses in flight together, as an attacker's would be.
    imap.set_delay(Duration::from_millis(500));
    let folder = tempfile::tempdir().unwrap();
    let server = imap_checked_server(&imap, folder.path()).await;
    let attacker = server.client_from(ATTACKER);
    // Ten times the free quota, all at once; more only adds TLS handshakes that a loaded
    // machine may not finish within the handshake timeout.
    let guesses = (0..10 * FREE_FAILURES_PER_ACCOUNT).map(|i| {
        let attacker = &attacker;
        let server = &server;
        async move {
            let user = if i % 2 == 0 {
                "jane@customer.example"
            } else {
                "JANE@alias.example"
            };
            let password = format!("guess {i}");
            server
                .post_pox_from(attacker, "jane@customer.example", Some((user, &password)))
                .await
        }
    });
    let refused = futures_util::future::join_all(guesses).await;
    assert!(refused.iter().all(|answer| answer == &refused[0]));
    assert_eq!(refused[0].0, 401);
    assert_eq!(imap.logins(), FREE_FAILURES_PER_ACCOUNT as usize);
    // The attacker's address backs off, right password or not, without asking the server...
    let right = Some(("jane@customer.example", JANE_PASSWORD));
    assert_eq!(
        server
            .post_pox_from(&attacker, "jane@customer.example", right)
            .await,
        refused[0]
    );
    assert_eq!(imap.logins(), FREE_FAILURES_PER_ACCOUNT as usize);
    // ...while Jane, from her own address, is not locked out.
    let (status, _, body) = server
        .post_pox_from(
            &server.client_from(JANE_AT_HOME),
            "jane@customer.example",
            right,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

/// `NO [UNAVAILABLE]` is no wrong password: `503` with `Retry-After` (not a `401`), never
/// counted (more attempts than the free quota all reach the server) nor cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_temporary_failures_are_503_and_not_counted() {
    let imap = ImapTestServer::start(&[("jane@customer.example", JANE_PASSWORD)]).await;
    let folder = tempfile::tempdir().unwrap();
    let server = imap_checked_server(&imap, folder.path()).await;
    imap.set_unavailable(true);
    let attempts = FREE_FAILURES_PER_ACCOUNT as usize + 3;
    for _ in 0..attempts {
        let (status, headers, _) = server
            .post_pox(
                "jane@customer.example",
                Some(("jane@customer.example", JANE_PASSWORD)),
            )
            .await;
        assert_eq!(status, 503);
        assert!(header(&headers, "retry-after").is_some(), "{headers:?}");
        assert_eq!(header(&headers, "www-authenticate"), None);
    }
    let soap = server
        .client()
        .post(server.url("/autodiscover/autodiscover.svc"))
        .basic_auth("jane@customer.example", Some(JANE_PASSWORD))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(SoapRequest::get_user_settings("jane@customer.example", &["ExternalEwsUrl"]).to_xml())
        .send()
        .await
        .unwrap();
    assert_eq!(soap.status().as_u16(), 503);
    assert!(soap.headers().contains_key("retry-after"));
    assert_eq!(imap.logins(), attempts + 1);
    imap.set_unavailable(false);
    let (status, _, body) = server
        .post_pox(
            "jane@customer.example",
            Some(("jane@customer.example", JANE_PASSWORD)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

/// A slow IMAP server: never more than the bound of logins open at once, and the surplus gets
/// `503` with `Retry-After` after the bounded wait instead of queueing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_logins_in_flight_are_bounded() {
    let users: Vec<(String, String)> = (0..MAX_CONCURRENT_LOGINS * 2)
        .map(|i| (format!("u{i}@customer.example"), format!("password {i}")))
        .collect();
    let accounts: Vec<(&str, &str)> = users
        .iter()
        .map(|(user, password)| (user.as_str(), password.as_str()))
        .collect();
    let imap = ImapTestServer::start(&accounts).await;
    imap.set_delay(QUEUE_WAIT + Duration::from_secs(2));
    let folder = tempfile::tempdir().unwrap();
    let server = imap_checked_server(&imap, folder.path()).await;
    // Four client addresses, so no client reaches its own failure quota with checks in flight.
    let clients: Vec<reqwest::Client> = (10..14)
        .map(|host| server.client_from(Ipv4Addr::new(127, 0, 0, host)))
        .collect();
    let logins = users.iter().enumerate().map(|(i, (user, password))| {
        let client = &clients[i % clients.len()];
        let server = &server;
        async move {
            server
                .post_pox_from(client, user, Some((user, password)))
                .await
        }
    });
    let answers = futures_util::future::join_all(logins).await;
    let ok = answers
        .iter()
        .filter(|(status, _, _)| *status == 200)
        .count();
    let busy: Vec<_> = answers
        .iter()
        .filter(|(status, _, _)| *status == 503)
        .collect();
    assert_eq!(
        (ok, busy.len()),
        (MAX_CONCURRENT_LOGINS, MAX_CONCURRENT_LOGINS)
    );
    assert!(
        busy.iter()
            .all(|(_, headers, _)| header(headers, "retry-after").is_some())
    );
    assert_eq!(imap.peak_open_logins(), MAX_CONCURRENT_LOGINS);
    server.stop().await;
}

async fn basic_is_refused_over_plain_http(backend: Backend) {
    let server = AuthServer::start(backend, BASIC).await;
    let http = server.server.http_addrs[0];
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let url = format!("http://{}/autodiscover/autodiscover.xml", http);
    let plain = client
        .get(&url)
        .header("Host", "autodiscover.customer.example")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 302);
    let with_basic = client
        .post(&url)
        .header("Host", "autodiscover.customer.example")
        .basic_auth("jane@customer.example", Some("sent in clear"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_basic.status().as_u16(), 403);
    assert!(with_basic.headers().get("location").is_none());
    server.stop().await;
}

/// The real binary, its log on stderr: a wrong password never appears in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_never_reaches_the_log() {
    let server = AuthServer::start(Backend::Sqlite, BASIC).await;
    let output = server.cli(
        &["user", "passwd", "joe@customer.example"],
        "Right-Pa55word\n",
    );
    assert!(output.status.success());
    let config_path = server.config_path.clone();
    let https_port = server.https().port();
    // The in-process server frees its ports; the binary binds fresh ones from the same file,
    // rewritten with fixed free ports.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (http_port, serve_port) = (free(), free());
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replacen("127.0.0.1:0", &format!("127.0.0.1:{http_port}"), 1)
        .replacen("127.0.0.1:0", &format!("127.0.0.1:{serve_port}"), 1);
    let serve_config = config_path.with_file_name("serve.toml");
    std::fs::write(&serve_config, text).unwrap();
    assert_ne!(serve_port, https_port);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_autodisco"))
        .arg("--config")
        .arg(&serve_config)
        .arg("serve")
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let address: SocketAddr = ([127, 0, 0, 1], serve_port).into();
    let client = https_client(&server.ca, &[(SERVICE_HOST, address)]);
    let url = format!("https://{SERVICE_HOST}:{serve_port}/autodiscover/autodiscover.xml");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut statuses = Vec::new();
    for password in ["Wr0ng-Secret-Value", "Right-Pa55word"] {
        let status = loop {
            match client
                .post(&url)
                .basic_auth("joe@customer.example", Some(password))
                .body(outlook_request("joe@customer.example"))
                .send()
                .await
            {
                Ok(response) => break response.status().as_u16(),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("the binary does not answer: {e}"),
            }
        };
        statuses.push(status);
    }
    drop(client);
    // SIGTERM, then read everything it logged.
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let stderr = {
        use std::io::Read;
        let mut text = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let _ = child.wait();
    assert_eq!(statuses, [401, 200], "{stderr}");
    assert!(stderr.contains("authentication failed"), "{stderr}");
    for secret in ["Wr0ng-Secret-Value", "Right-Pa55word"] {
        assert!(!stderr.contains(secret), "{secret} in the log:\n{stderr}");
    }
    assert!(
        !stderr.to_ascii_lowercase().contains("basic am9l"),
        "{stderr}"
    );
    server.stop().await;
}
