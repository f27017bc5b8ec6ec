//! Test support for autodisco's end-to-end tests: a certificate authority made at test time, and
//! the pieces that start real servers on loopback.
//!
//! - [`TestCa`]: an rcgen CA that issues server certificates, so no checked-in key ever expires.
//! - [`https_client`]: a reqwest client that trusts only the test CA and pins names to addresses.
//! - [`Backend`] and [`TestDatabase`]: a fresh SQLite file or PostgreSQL database per test.
//! - [`TestServer`]: the real server (redirect site and HTTPS service) on loopback, port 0.
//! - [`imap::ImapTestServer`]: an IMAP server over TLS for the `[auth_imap]` password backend.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use autodisco_directory::{LiveDirectory, Store};
use autodisco_server::RunningServer;
use autodisco_server::config::Config;

/// A certificate authority made for one test run.
pub struct TestCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

/// A certificate issued by the [`TestCa`], with its key.
pub struct IssuedCert {
    /// The leaf certificate followed by the CA certificate, PEM.
    pub chain_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
}

impl IssuedCert {
    /// Writes chain and key into one PEM file (the format of `certs_dir` files).
    pub fn write_combined(&self, path: &Path) {
        std::fs::write(path, format!("{}{}", self.chain_pem, self.key_pem))
            .expect("write certificate");
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A new CA named "autodisco test CA".
    pub fn new() -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "autodisco test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        Self { key, cert }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> IssuedCert {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        IssuedCert {
            chain_pem: format!("{}{}", leaf.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
        }
    }
}

/// An HTTPS client that trusts only `ca`, resolves each `(name, address)` pair to that address,
/// and never follows redirects (tests look at them).
pub fn https_client(ca: &TestCa, pins: &[(&str, SocketAddr)]) -> reqwest::Client {
    https_client_builder(ca, pins)
        .build()
        .expect("reqwest client")
}

/// The builder of [`https_client`], for tests that set more (such as a source address).
pub fn https_client_builder(ca: &TestCa, pins: &[(&str, SocketAddr)]) -> reqwest::ClientBuilder {
    let root = reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("CA for reqwest");
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20));
    for (name, address) in pins {
        builder = builder.resolve(name, *address);
    }
    builder
}

/// Which directory backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's temporary folder.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by `AUTODISCO_TEST_POSTGRES`
    /// (default `postgres://root@127.0.0.1:5432/test`).
    Postgres,
}

/// The PostgreSQL server tests use.
pub fn postgres_admin_url() -> String {
    std::env::var("AUTODISCO_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

/// A database made for one test; a PostgreSQL one is dropped when this is dropped.
pub struct TestDatabase {
    /// The URL to put in the config.
    pub url: String,
    postgres_name: Option<String>,
}

static DATABASE_COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDatabase {
    /// Creates an empty database. PostgreSQL being unreachable fails the test: CI starts it.
    pub async fn create(backend: Backend, folder: &Path) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", folder.join("directory.sqlite").display()),
                postgres_name: None,
            },
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!(
                    "autodisco_e2e_{}_{}",
                    std::process::id(),
                    DATABASE_COUNTER.fetch_add(1, Ordering::Relaxed)
                );
                let mut conn = connect_postgres(&admin).await;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("drop old test database");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base);
                Self {
                    url: format!("{base}/{name}"),
                    postgres_name: Some(name),
                }
            }
        }
    }
}

async fn connect_postgres(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is needed for this test: {e}"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        let admin = postgres_admin_url();
        // Drop runs outside any runtime the test may have; use a small one of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = connect_postgres(&admin).await;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// The hoster every end-to-end test plays.
pub const HOSTER: &str = "hoster.example";
/// Its HTTPS service.
pub const SERVICE_HOST: &str = "autodiscover.hoster.example";

/// The hoster's autoconfig host, which the HTTPS service answers with a certificate from
/// `certs_dir` (the autoconfig MX path).
pub const AUTOCONFIG_HOST: &str = "autoconfig.hoster.example";

/// The real server on loopback: redirect site and HTTPS service on port 0, a certificate from
/// the test CA for the service host, and per-name certificates for `autodiscover.direct.example`
/// and [`AUTOCONFIG_HOST`] in the certs folder.
pub struct TestServer {
    /// The test CA.
    pub ca: TestCa,
    /// The running server.
    pub server: RunningServer,
    /// The directory it serves.
    pub directory: LiveDirectory,
    /// A second handle on the same database, as an admin process would have.
    pub store: Store,
    /// The config file written for this server (for the CLI).
    pub config_path: PathBuf,
    /// The loaded config.
    pub config: Config,
    refresher: tokio::task::JoinHandle<()>,
    _database: TestDatabase,
    _folder: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server whose config text is `extra` appended to the generated base (listeners,
    /// database, certificates). `extra` may define profiles.
    pub async fn start(backend: Backend, extra: &str) -> Self {
        let any_port = "127.0.0.1:0".parse().expect("loopback address");
        Self::start_on(backend, extra, any_port, any_port).await
    }

    /// The HTTPS service's address.
    pub fn https_addr(&self) -> SocketAddr {
        self.server.https_addrs[0]
    }

    /// The redirect site's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.server.http_addrs[0]
    }

    /// The POX URL on the service host, with the bound port.
    pub fn pox_url(&self) -> String {
        format!(
            "https://{SERVICE_HOST}:{}/autodiscover/autodiscover.xml",
            self.https_addr().port()
        )
    }

    /// A client that trusts the test CA and reaches the service host and
    /// `autodiscover.direct.example` at the HTTPS address.
    pub fn client(&self) -> reqwest::Client {
        https_client(
            &self.ca,
            &[
                (SERVICE_HOST, self.https_addr()),
                ("autodiscover.direct.example", self.https_addr()),
            ],
        )
    }

    /// Reloads the directory now instead of waiting for the refresher.
    pub async fn refresh(&self) {
        self.directory.refresh().await.expect("refresh directory");
    }

    /// Stops the server and the refresher.
    pub async fn stop(self) {
        self.refresher.abort();
        self.server.shutdown().await;
    }
}

/// The Outlook request document for `address` (what Outlook posts).
pub fn outlook_request(address: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\n  <Request>\n    <EMailAddress>{address}</EMailAddress>\n    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>\n  </Request>\n</Autodiscover>\n"
    )
}

/// The ActiveSync request document for `address`.
pub fn mobilesync_request(address: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006\">\n  <Request>\n    <EMailAddress>{address}</EMailAddress>\n    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema>\n  </Request>\n</Autodiscover>\n"
    )
}

/// A free port on 127.0.0.1 (bound and released; a server started next binds it again at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Sends raw bytes to `address` and returns everything read until the server closes the
/// connection or `timeout` passes: for requests no HTTP library would send.
pub async fn raw_exchange(address: SocketAddr, request: &[u8], timeout: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("send");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(timeout, stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// An authoritative DNS server on loopback with zones built in the test.
pub mod dns;
/// An IMAP server over TLS that checks passwords, and can be unavailable or slow.
pub mod imap;
/// Servers that record what clients send, and a blackhole that never answers.
pub mod recording;

/// A /24 of loopback addresses (`127.X.Y.0/24`) that no other test uses, in this process or
/// another one running the same tests, so each test can bind the real ports 80 and 443 on its
/// own addresses and play separate hosts as DNS points to them.
///
/// Binding ports below 1024 needs root (or `CAP_NET_BIND_SERVICE`), as on the project's
/// machines and in CI.
pub struct LoopbackBlock {
    prefix: [u8; 3],
    _claim: std::net::TcpListener,
}

static BLOCK_COUNTER: AtomicU32 = AtomicU32::new(0);

impl LoopbackBlock {
    /// Claims a free block: its `.254` port 9 is held for the life of the value, which other
    /// claimants test before they take a block.
    pub fn claim() -> Self {
        // Start at a place that depends on the process, so two test runs rarely even meet.
        let start = std::process::id().wrapping_mul(7919) % 20_000;
        loop {
            let n = (start + BLOCK_COUNTER.fetch_add(1, Ordering::Relaxed)) % 20_000;
            let prefix = [127, 100 + (n / 250) as u8, 1 + (n % 250) as u8];
            let claim = SocketAddr::from(([prefix[0], prefix[1], prefix[2], 254], 9));
            if let Ok(listener) = std::net::TcpListener::bind(claim) {
                return Self {
                    prefix,
                    _claim: listener,
                };
            }
        }
    }

    /// `127.X.Y.host`.
    pub fn v4(&self, host: u8) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(self.prefix[0], self.prefix[1], self.prefix[2], host)
    }

    /// `127.X.Y.host` as an `IpAddr`.
    pub fn ip(&self, host: u8) -> std::net::IpAddr {
        self.v4(host).into()
    }

    /// `127.X.Y.host:port`.
    pub fn addr(&self, host: u8, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip(host), port)
    }
}

impl TestServer {
    /// Like [`TestServer::start`], but with the redirect site on `http` and the HTTPS service on
    /// `https` (real ports such as 80 and 443 on a [`LoopbackBlock`]), so clients reach them
    /// through DNS at the URLs real clients use: `public_url` stays `https://SERVICE_HOST`,
    /// without a port.
    pub async fn start_on(
        backend: Backend,
        extra: &str,
        http: SocketAddr,
        https: SocketAddr,
    ) -> Self {
        let folder = tempfile::tempdir().expect("temp folder");
        let database = TestDatabase::create(backend, folder.path()).await;
        let ca = TestCa::new();
        ca.issue(&[SERVICE_HOST])
            .write_combined(&folder.path().join("service.pem"));
        let certs = folder.path().join("certs");
        std::fs::create_dir(&certs).expect("certs folder");
        ca.issue(&["autodiscover.direct.example"])
            .write_combined(&certs.join("autodiscover.direct.example.pem"));
        // The autoconfig MX path: Thunderbird asks autoconfig.HOSTER for any hosted address.
        ca.issue(&[AUTOCONFIG_HOST])
            .write_combined(&certs.join(format!("{AUTOCONFIG_HOST}.pem")));
        let text = format!(
            "hoster = \"{HOSTER}\"\ndatabase = \"{}\"\n\n[http]\nlisten = [\"{http}\"]\n\n[https]\nlisten = [\"{https}\"]\ncert = \"service.pem\"\nkey = \"service.pem\"\ncerts_dir = \"certs\"\n\n[directory]\npoll_interval_ms = 1000\n\n{extra}",
            database.url
        );
        let config_path = folder.path().join("autodisco.toml");
        std::fs::write(&config_path, text).expect("write config");
        let config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let store = Store::connect(&config.database)
            .await
            .expect("open directory");
        autodisco_server::bootstrap::prepare_directory(&config, &store)
            .await
            .expect("prepare directory");
        let directory = LiveDirectory::load(store.clone())
            .await
            .expect("load directory");
        let refresher = directory.spawn_refresher(config.directory_poll);
        let server = RunningServer::start(&config, directory.clone())
            .await
            .expect("start server");
        Self {
            ca,
            server,
            directory,
            store,
            config_path,
            config,
            refresher,
            _database: database,
            _folder: folder,
        }
    }
}
