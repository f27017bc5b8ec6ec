//! `auth = "basic"`: challenges, directory passwords set with the CLI, refusals that look alike,
//! rate limits, Basic refused over plain HTTP, and no password in the log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use autodisco_directory::{LiveDirectory, Store};
use autodisco_proto::soap::{SoapRequest, SoapResponse, SoapResponseBody};
use autodisco_server::RunningServer;
use autodisco_server::auth::FAILURE_FLOOR;
use autodisco_server::config::Config;
use autodisco_test_support::{
    Backend, HOSTER, SERVICE_HOST, TestCa, TestDatabase, https_client, outlook_request,
};

use crate::{PROFILES, element};

on_both_backends!(
    unauthenticated_posts_get_a_challenge,
    directory_passwords_set_with_the_cli,
    refusals_look_alike_and_are_rate_limited,
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
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self::start_on(backend, top, any, any).await
    }

    /// The same with the redirect site on `http` and the HTTPS service on `https`.
    pub(crate) async fn start_on(
        backend: Backend,
        top: &str,
        http: SocketAddr,
        https: SocketAddr,
    ) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let database = TestDatabase::create(backend, folder.path()).await;
        let ca = TestCa::new();
        ca.issue(&[SERVICE_HOST])
            .write_combined(&folder.path().join("service.pem"));
        let text = format!(
            "{top}\nhoster = \"{HOSTER}\"\ndatabase = \"{}\"\n\n[http]\nlisten = [\"{http}\"]\n\n[https]\nlisten = [\"{https}\"]\ncert = \"service.pem\"\nkey = \"service.pem\"\n\n{PROFILES}",
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
            .add_domain(&domain("customer.example"), "default")
            .await
            .unwrap();
        store
            .add_alias(&domain("alias.example"), &domain("customer.example"))
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

    fn client(&self) -> reqwest::Client {
        https_client(&self.ca, &[(SERVICE_HOST, self.https())])
    }

    fn url(&self, path: &str) -> String {
        format!("https://{SERVICE_HOST}:{}{path}", self.https().port())
    }

    /// POSTs the Outlook request for `address`, with `credentials` when given.
    async fn post_pox(
        &self,
        address: &str,
        credentials: Option<(&str, &str)>,
    ) -> (u16, Vec<(String, String)>, String) {
        let mut request = self
            .client()
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
            .filter(|(name, _)| *name != "date")
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        (status, headers, response.text().await.unwrap())
    }

    /// Runs the CLI against this server's config, with `stdin` as standard input.
    fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
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
        .remove_domain(&customer, autodisco_directory::DomainRemoval::Cascade)
        .await
        .unwrap();
    server.store.add_domain(&customer, "default").await.unwrap();
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
