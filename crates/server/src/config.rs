//! The TOML configuration: parsed, checked as a whole, and reported with file, line and reason.
//!
//! Nothing here starts anything: [`Config::load`] either returns a complete, valid configuration
//! or every problem it found. A reload parses the file again the same way, so a bad edit is
//! refused while the old configuration keeps serving.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use autodisco_proto::{Domain, HosterNames, ServiceProfile};
use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

/// The hoster name the embedded defaults use when no config file is given. `.test` is reserved
/// (RFC 2606), so the defaults can never point a client at somebody else's servers.
pub const DEFAULT_HOSTER: &str = "hoster.test";
/// The SQLite file the embedded defaults use, in the working folder.
pub const DEFAULT_DATABASE: &str = "sqlite://autodisco.sqlite";
/// The embedded defaults' plain-HTTP listener.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
/// The embedded defaults' HTTPS listener.
pub const DEFAULT_HTTPS_LISTEN: &str = "127.0.0.1:8443";
/// Where the embedded defaults keep the self-signed certificate they create on first start.
pub const DEFAULT_SELF_SIGNED: &str = "autodisco-selfsigned.pem";
/// The largest request body any endpoint reads (the bound; Outlook's requests are < 1 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A configuration that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from; `None` for the embedded defaults.
    pub source: Option<PathBuf>,
    /// The hoster's domain (`hoster.example`).
    pub hoster: Domain,
    /// The HTTPS service's host name (default `autodiscover.HOSTER`).
    pub service_host: Domain,
    /// The redirect site's host name, the CNAME target customers use (default
    /// `autodiscoverredirect.HOSTER`).
    pub redirect_host: Domain,
    /// Origin of the HTTPS service as clients reach it, without a trailing slash
    /// (default `https://autodiscover.HOSTER`, no port).
    pub public_url: String,
    /// `sqlite://PATH` or `postgres://...`.
    pub database: String,
    /// Plain-HTTP listeners for the redirect site.
    pub http_listen: Vec<SocketAddr>,
    /// HTTPS listeners for the AutoDiscover service.
    pub https_listen: Vec<SocketAddr>,
    /// Listeners of the admin API (`[admin] listen`), loopback only; empty: no admin API.
    pub admin_listen: Vec<SocketAddr>,
    /// DNS servers for the service's own lookups (`[dns] servers`, the admin API's live
    /// checks); empty: the system's resolver configuration.
    pub dns_servers: Vec<SocketAddr>,
    /// Where the certificate comes from.
    pub tls: TlsSource,
    /// A folder of per-domain certificates (`NAME.pem`, chain and key), served by SNI.
    pub certs_dir: Option<PathBuf>,
    /// A separate certificate and key for signing Apple configuration profiles; `None` signs
    /// with the HTTPS service's own ([`Config::tls`]).
    pub signing: Option<TlsSource>,
    /// Timeouts and sizes.
    pub limits: Limits,
    /// Profiles defined in the config, written to the directory at start and on reload.
    pub profiles: BTreeMap<String, ServiceProfile>,
    /// How often the directory's revision is polled for changes made by other processes.
    pub directory_poll: Duration,
    /// How long the directory database may be unreachable before `/readyz` answers 503
    /// (`[directory] unready_after_secs`); the last good snapshot is served all the while.
    pub directory_unready_after: Duration,
    /// Whether the AutoDiscover POSTs need HTTP Basic credentials, and who checks them.
    pub auth: AuthConfig,
}

/// `auth` and `[auth_imap]`: optional HTTP Basic authentication (see `crate::auth`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthConfig {
    /// `auth = "none"` (the default) or `"basic"`.
    pub mode: AuthMode,
    /// `[auth_imap]`: check passwords with this IMAP server instead of the directory.
    pub imap: Option<ImapAuth>,
}

/// Whether requests need credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Anonymous, as most hosters run AutoDiscover.
    #[default]
    None,
    /// HTTP Basic over TLS on the POX and SOAP endpoints.
    Basic,
}

/// The IMAP server that checks passwords (`[auth_imap]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapAuth {
    /// Its host name; the TLS certificate must cover it.
    pub host: String,
    /// Its implicit-TLS port (default 993).
    pub port: u16,
    /// A PEM file of CA certificates to trust instead of the public web PKI.
    pub ca_file: Option<PathBuf>,
}

/// Where the hoster's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files given in the config.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A self-signed certificate, created at this path on first start (embedded defaults and
    /// configs that name no certificate).
    SelfSigned {
        /// Combined PEM file: certificate then key.
        path: PathBuf,
    },
}

/// Timeouts and limits of the listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body read, at most [`MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// Time allowed for the request head to arrive.
    pub header_timeout: Duration,
    /// Time allowed for a whole request, body included, to be answered.
    pub request_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Connections held open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Time allowed for a whole request body to arrive once the head is in.
    pub body_timeout: Duration,
    /// Bytes per second a request body must keep up, after a two-second grace; slower bodies are
    /// cut off so that trickling clients hold nothing but their own connection.
    pub body_min_rate: u32,
    /// How long a connection may stay open with no request in progress (HTTP/1.1 keep-alive and
    /// HTTP/2 alike); before its first request it gets [`Limits::header_timeout`].
    pub idle_timeout: Duration,
    /// Requests processed at once per site (the redirect site and the HTTPS service each have
    /// this many, so neither can starve the other).
    pub max_requests_in_flight: usize,
    /// How long a request may wait for a processing slot before it is answered `503`.
    pub queue_timeout: Duration,
    /// Connections one client may hold open at once (an IPv4 address, or an IPv6 /64).
    pub per_ip_connections: usize,
    /// Requests per second one client may make (a token bucket with a burst of twice this);
    /// beyond it `429 Too Many Requests` with `Retry-After`.
    pub per_ip_requests_per_sec: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_BYTES,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 20_000,
            shutdown_grace: Duration::from_secs(20),
            body_timeout: Duration::from_secs(10),
            body_min_rate: 1024,
            idle_timeout: Duration::from_secs(60),
            max_requests_in_flight: 512,
            queue_timeout: Duration::from_secs(1),
            // README, "Reliability": chosen so a corporate NAT in front of thousands of Outlook
            // users stays far below them, while one attacker cannot hold more than a sliver.
            per_ip_connections: 256,
            per_ip_requests_per_sec: 100,
        }
    }
}

/// One problem found in a config file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// What is wrong, in words.
    pub reason: String,
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read, but has problems; all of them are listed.
    #[error("{}", ProblemList { path, problems })]
    Invalid {
        /// The file (or `<embedded defaults>`).
        path: PathBuf,
        /// Every problem found.
        problems: Vec<ConfigProblem>,
    },
}

struct ProblemList<'a> {
    path: &'a Path,
    problems: &'a [ConfigProblem],
}

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.path.display())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
                if let Some(column) = p.column {
                    write!(f, ":{column}")?;
                }
            }
            write!(f, ": {}", p.reason)?;
        }
        Ok(())
    }
}

/// The file's shape, as serde reads it. Every field that a later check may refuse is `Spanned`,
/// so the refusal can name its line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hoster: Spanned<String>,
    #[serde(default)]
    service_host: Option<Spanned<String>>,
    #[serde(default)]
    redirect_host: Option<Spanned<String>>,
    #[serde(default)]
    public_url: Option<Spanned<String>>,
    #[serde(default)]
    database: Option<Spanned<String>>,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    https: Option<RawHttps>,
    #[serde(default)]
    admin: Option<RawAdmin>,
    #[serde(default)]
    dns: Option<RawDns>,
    #[serde(default)]
    limits: Option<Spanned<RawLimits>>,
    #[serde(default)]
    directory: Option<RawDirectory>,
    #[serde(default)]
    auth: Option<Spanned<String>>,
    #[serde(default)]
    auth_imap: Option<Spanned<RawAuthImap>>,
    #[serde(default)]
    signing: Option<RawSigning>,
    #[serde(default)]
    profiles: BTreeMap<String, Spanned<ServiceProfile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    cert: Spanned<String>,
    key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    listen: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    #[serde(default)]
    servers: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    #[serde(default)]
    listen: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttps {
    #[serde(default)]
    listen: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    cert: Option<Spanned<String>>,
    #[serde(default)]
    key: Option<Spanned<String>>,
    #[serde(default)]
    certs_dir: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_body_bytes: Option<usize>,
    header_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    handshake_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    shutdown_grace_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    body_min_bytes_per_sec: Option<u32>,
    idle_timeout_secs: Option<u64>,
    max_requests_in_flight: Option<usize>,
    queue_timeout_ms: Option<u64>,
    per_ip_connections: Option<usize>,
    per_ip_requests_per_sec: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthImap {
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    poll_interval_ms: Option<Spanned<u64>>,
    unready_after_secs: Option<Spanned<u64>>,
}

/// Maps byte offsets in the file to 1-based lines and columns.
struct Positions<'a> {
    text: &'a str,
}

impl Positions<'_> {
    fn at(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn problem<T>(&self, spanned: &Spanned<T>, reason: impl Into<String>) -> ConfigProblem {
        let (line, column) = self.at(spanned.span().start);
        ConfigProblem {
            line: Some(line),
            column: Some(column),
            reason: reason.into(),
        }
    }
}

impl Config {
    /// The embedded defaults: `hoster.test`, SQLite in the working folder, HTTP on
    /// 127.0.0.1:8080, HTTPS on 127.0.0.1:8443 with a self-signed certificate.
    pub fn embedded_defaults() -> Self {
        let hoster = Domain::parse(DEFAULT_HOSTER).expect("the default hoster is a valid name");
        Self::from_text(
            &format!("hoster = \"{hoster}\"\n"),
            Path::new("<embedded defaults>"),
            Path::new("."),
        )
        .expect("the embedded defaults are valid")
    }

    /// Reads and checks a config file. Relative paths inside it are relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::from_text(&text, path, base)?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Parses and checks config text; `path` names it in errors, `base` anchors relative paths.
    pub fn from_text(text: &str, path: &Path, base: &Path) -> Result<Self, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        };
        let positions = Positions { text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| positions.at(s.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            invalid(vec![ConfigProblem {
                line,
                column,
                reason: e.message().trim().to_owned(),
            }])
        })?;
        let mut problems = Vec::new();
        let config = Self::check(raw, &positions, base, &mut problems);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(invalid(problems)),
        }
    }

    fn check(
        raw: RawConfig,
        positions: &Positions<'_>,
        base: &Path,
        problems: &mut Vec<ConfigProblem>,
    ) -> Option<Self> {
        let mut domain =
            |spanned: &Spanned<String>, what: &str| match Domain::parse(spanned.get_ref()) {
                Ok(d) => Some(d),
                Err(e) => {
                    problems.push(positions.problem(spanned, format!("{what}: {e}")));
                    None
                }
            };
        let hoster = domain(&raw.hoster, "hoster");
        // A name derived from a valid hoster can still be too long for DNS.
        let mut derived_problems = Vec::new();
        let mut derive = |label: &str, what: &str| match hoster.as_ref()?.with_prefix(label) {
            Ok(name) => Some(name),
            Err(e) => {
                derived_problems.push(positions.problem(
                    &raw.hoster,
                    format!("{what} ({label}.HOSTER): {e}; set {what} explicitly"),
                ));
                None
            }
        };
        let service_host = match &raw.service_host {
            Some(s) => domain(s, "service_host"),
            None => derive("autodiscover", "service_host"),
        };
        let redirect_host = match &raw.redirect_host {
            Some(s) => domain(s, "redirect_host"),
            None => derive("autodiscoverredirect", "redirect_host"),
        };
        problems.append(&mut derived_problems);
        let public_url = match &raw.public_url {
            Some(url) => match check_public_url(url.get_ref()) {
                Ok(url) => Some(url),
                Err(reason) => {
                    problems.push(positions.problem(url, format!("public_url: {reason}")));
                    None
                }
            },
            None => service_host.as_ref().map(|h| format!("https://{h}")),
        };

        let database = match &raw.database {
            Some(db) => match check_database_url(db.get_ref(), base) {
                Ok(url) => url,
                Err(reason) => {
                    problems.push(positions.problem(db, format!("database: {reason}")));
                    String::new()
                }
            },
            None => check_database_url(DEFAULT_DATABASE, base).expect("default database URL"),
        };

        let mut addresses = |list: Option<&Spanned<Vec<Spanned<String>>>>,
                             default: &str,
                             what: &str| {
            let Some(list) = list else {
                return vec![default.parse().expect("default listen address")];
            };
            if list.get_ref().is_empty() {
                problems.push(positions.problem(
                    list,
                    format!(
                        "{what} is empty: give at least one address, or leave it out for {default}"
                    ),
                ));
            }
            list.get_ref()
                .iter()
                .filter_map(|entry| match entry.get_ref().parse::<SocketAddr>() {
                    Ok(addr) => Some(addr),
                    Err(_) => {
                        problems.push(positions.problem(
                            entry,
                            format!("{what}: {:?} is not an IP address and port such as 0.0.0.0:443 or [::]:443", entry.get_ref()),
                        ));
                        None
                    }
                })
                .collect()
        };
        let http_listen = addresses(
            raw.http.as_ref().and_then(|h| h.listen.as_ref()),
            DEFAULT_HTTP_LISTEN,
            "http.listen",
        );
        let https_listen = addresses(
            raw.https.as_ref().and_then(|h| h.listen.as_ref()),
            DEFAULT_HTTPS_LISTEN,
            "https.listen",
        );
        // `[dns] servers`: each entry an IP address and port; leaving the key out (or the list
        // empty) means the system's resolver.
        let dns_servers = match raw.dns.as_ref().and_then(|d| d.servers.as_ref()) {
            Some(list) if !list.get_ref().is_empty() => {
                addresses(Some(list), DEFAULT_HTTP_LISTEN, "dns.servers")
            }
            _ => Vec::new(),
        };
        // The admin API is off unless asked for, and then only on loopback: it speaks plain
        // HTTP, and a bearer token must not cross a network in clear text.
        let admin_list = raw.admin.as_ref().and_then(|a| a.listen.as_ref());
        let admin_listen = match admin_list {
            Some(list) if !list.get_ref().is_empty() => {
                let parsed = addresses(Some(list), DEFAULT_HTTP_LISTEN, "admin.listen");
                for entry in list.get_ref() {
                    let Ok(address) = entry.get_ref().parse::<SocketAddr>() else {
                        continue;
                    };
                    if !address.ip().is_loopback() {
                        problems.push(positions.problem(
                            entry,
                            format!(
                                "admin.listen: {address} is not a loopback address; the admin API speaks plain HTTP with bearer tokens, so keep it on 127.0.0.1 or [::1] and put a TLS proxy in front for control panels elsewhere"
                            ),
                        ));
                    }
                }
                parsed
            }
            _ => Vec::new(),
        };

        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let https = raw.https.as_ref();
        let tls = match (
            https.and_then(|h| h.cert.as_ref()),
            https.and_then(|h| h.key.as_ref()),
        ) {
            (Some(cert), Some(key)) => TlsSource::Files {
                cert: resolve(cert.get_ref()),
                key: resolve(key.get_ref()),
            },
            (Some(only), None) | (None, Some(only)) => {
                problems.push(positions.problem(only, "https: cert and key go together; give both or neither (neither creates a self-signed certificate)"));
                TlsSource::SelfSigned {
                    path: resolve(DEFAULT_SELF_SIGNED),
                }
            }
            (None, None) => TlsSource::SelfSigned {
                path: resolve(DEFAULT_SELF_SIGNED),
            },
        };
        let certs_dir = https
            .and_then(|h| h.certs_dir.as_ref())
            .map(|d| resolve(d.get_ref()));
        let signing = raw.signing.as_ref().map(|s| TlsSource::Files {
            cert: resolve(s.cert.get_ref()),
            key: resolve(s.key.get_ref()),
        });

        let mut limits = Limits::default();
        if let Some(raw_limits) = &raw.limits {
            let l = raw_limits.get_ref();
            if let Some(max) = l.max_body_bytes {
                if max == 0 || max > MAX_BODY_BYTES {
                    problems.push(positions.problem(
                        raw_limits,
                        format!("limits.max_body_bytes must be between 1 and {MAX_BODY_BYTES}"),
                    ));
                } else {
                    limits.max_body_bytes = max;
                }
            }
            let secs = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
            limits.header_timeout = secs(l.header_timeout_secs, limits.header_timeout);
            limits.request_timeout = secs(l.request_timeout_secs, limits.request_timeout);
            limits.handshake_timeout = secs(l.handshake_timeout_secs, limits.handshake_timeout);
            limits.shutdown_grace = secs(l.shutdown_grace_secs, limits.shutdown_grace);
            limits.body_timeout = secs(l.body_timeout_secs, limits.body_timeout);
            limits.idle_timeout = secs(l.idle_timeout_secs, limits.idle_timeout);
            limits.queue_timeout = l
                .queue_timeout_ms
                .map_or(limits.queue_timeout, Duration::from_millis);
            let or = |v: Option<usize>, default: usize| v.unwrap_or(default);
            limits.max_connections = or(l.max_connections, limits.max_connections);
            limits.max_requests_in_flight =
                or(l.max_requests_in_flight, limits.max_requests_in_flight);
            limits.per_ip_connections = or(l.per_ip_connections, limits.per_ip_connections);
            limits.per_ip_requests_per_sec = l
                .per_ip_requests_per_sec
                .unwrap_or(limits.per_ip_requests_per_sec);
            limits.body_min_rate = l.body_min_bytes_per_sec.unwrap_or(limits.body_min_rate);
            let zero_time = [
                limits.header_timeout,
                limits.request_timeout,
                limits.handshake_timeout,
                limits.body_timeout,
                limits.idle_timeout,
                limits.queue_timeout,
            ]
            .contains(&Duration::ZERO);
            let zero_count = [
                limits.max_connections,
                limits.max_requests_in_flight,
                limits.per_ip_connections,
                limits.per_ip_requests_per_sec as usize,
                limits.body_min_rate as usize,
            ]
            .contains(&0);
            if zero_time || zero_count {
                problems.push(positions.problem(
                    raw_limits,
                    "limits: every timeout, count and rate must be greater than zero",
                ));
            }
        }

        // Each `[directory]` number within its range, or the default (the problem recorded).
        let mut within = |value: Option<&Spanned<u64>>, range: RangeInclusive<u64>, what: &str| {
            let value = value?;
            if range.contains(value.get_ref()) {
                return Some(*value.get_ref());
            }
            problems.push(positions.problem(
                value,
                format!(
                    "directory.{what} must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            ));
            None
        };
        let directory = raw.directory.as_ref();
        let directory_poll = within(
            directory.and_then(|d| d.poll_interval_ms.as_ref()),
            50..=60_000,
            "poll_interval_ms",
        )
        .map_or(Duration::from_secs(1), Duration::from_millis);
        let directory_unready_after = within(
            directory.and_then(|d| d.unready_after_secs.as_ref()),
            1..=86_400,
            "unready_after_secs",
        )
        .map_or(Duration::from_secs(60), Duration::from_secs);

        let mut auth = AuthConfig::default();
        if let Some(mode) = &raw.auth {
            match mode.get_ref().as_str() {
                "none" => auth.mode = AuthMode::None,
                "basic" => auth.mode = AuthMode::Basic,
                other => problems.push(positions.problem(
                    mode,
                    format!("auth must be \"none\" or \"basic\", not {other:?}"),
                )),
            }
        }
        if let Some(imap) = &raw.auth_imap {
            let raw_imap = imap.get_ref();
            let host_ok = Domain::parse(&raw_imap.host).is_ok()
                || raw_imap.host.parse::<std::net::IpAddr>().is_ok();
            if !host_ok {
                problems.push(positions.problem(
                    imap,
                    format!("auth_imap.host: {:?} is not a host name", raw_imap.host),
                ));
            }
            if raw_imap.port == Some(0) {
                problems.push(positions.problem(imap, "auth_imap.port must not be 0"));
            }
            if auth.mode == AuthMode::None {
                problems.push(positions.problem(
                    imap,
                    "auth_imap is set but auth is not \"basic\": set auth = \"basic\" or remove [auth_imap]",
                ));
            }
            auth.imap = Some(ImapAuth {
                host: raw_imap.host.clone(),
                port: raw_imap.port.unwrap_or(993),
                ca_file: raw_imap.ca_file.as_deref().map(resolve),
            });
        }

        let mut profiles = BTreeMap::new();
        for (name, profile) in raw.profiles {
            if let Err(reason) = autodisco_directory::check_profile_name(&name) {
                problems.push(positions.problem(&profile, format!("profiles.{name}: {reason}")));
            }
            if let Err(errors) = profile.get_ref().validate() {
                for e in errors {
                    problems.push(positions.problem(&profile, format!("profiles.{name}: {e}")));
                }
            }
            profiles.insert(name, profile.into_inner());
        }

        Some(Self {
            source: None,
            hoster: hoster?,
            service_host: service_host?,
            redirect_host: redirect_host?,
            public_url: public_url?,
            database,
            http_listen,
            https_listen,
            admin_listen,
            dns_servers,
            tls,
            certs_dir,
            signing,
            limits,
            profiles,
            directory_poll,
            directory_unready_after,
            auth,
        })
    }

    /// The hoster's names customers' DNS records point at: the redirect site and the service.
    pub fn record_targets(&self) -> HosterNames {
        HosterNames {
            redirect_host: self.redirect_host.to_string(),
            service_host: self.service_host.to_string(),
        }
    }

    /// Where this config came from, for log lines.
    pub fn origin(&self) -> String {
        self.source.as_ref().map_or_else(
            || "<embedded defaults>".to_owned(),
            |p| p.display().to_string(),
        )
    }
}

/// The public URL becomes every redirect's Location: it must be an https origin, nothing more.
fn check_public_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("{url:?} must start with https://"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "{url:?} must be a scheme and host (and port) only, without a path"
        ));
    }
    let host = Domain::parse(host).map_err(|e| format!("{url:?}: {e}"))?;
    match port {
        Some(port) => {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("{url:?} has an invalid port"))?;
            Ok(format!("https://{host}:{port}"))
        }
        None => Ok(format!("https://{host}")),
    }
}

fn check_database_url(url: &str, base: &Path) -> Result<String, String> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let (path, query) = path
            .split_once('?')
            .map_or((path, None), |(p, q)| (p, Some(q)));
        if path.is_empty() {
            return Err(
                "sqlite:// needs a file path, such as sqlite:///var/lib/autodisco/directory.sqlite"
                    .into(),
            );
        }
        let full = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            base.join(path)
        };
        let mut out = format!("sqlite://{}", full.display());
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        Ok(out)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(url.to_owned())
    } else {
        Err(format!(
            "{url:?} is neither sqlite://PATH nor postgres://..."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_text(text, Path::new("/etc/autodisco.toml"), Path::new("/etc"))
    }

    #[test]
    fn embedded_defaults() {
        let c = Config::embedded_defaults();
        assert_eq!(c.service_host.as_str(), "autodiscover.hoster.test");
        assert_eq!(c.redirect_host.as_str(), "autodiscoverredirect.hoster.test");
        assert_eq!(c.public_url, "https://autodiscover.hoster.test");
        assert_eq!(c.database, "sqlite://./autodisco.sqlite");
        assert_eq!(c.http_listen, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(c.https_listen, vec!["127.0.0.1:8443".parse().unwrap()]);
        assert!(matches!(c.tls, TlsSource::SelfSigned { .. }));
    }

    #[test]
    fn the_sample_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/autodisco.toml");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.profiles.contains_key("default"));
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = parse("hoster = \"h.example\"\n[http]\nlisten = [\"1.2.3.4:80\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/etc/autodisco.toml:"), "{text}");
        let err = parse("hoster = \"h.example\"\nunknown_key = 1\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/etc/autodisco.toml:2:1: unknown field `unknown_key`"),
            "{err}"
        );
    }

    #[test]
    fn every_semantic_problem_is_reported_with_its_line() {
        let text =
            "hoster = \"foo..bar\"\ndatabase = \"mysql://x\"\n[http]\nlisten = [\"nowhere\"]\n";
        let ConfigError::Invalid { problems, .. } = parse(text).unwrap_err() else {
            panic!()
        };
        let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(1), Some(2), Some(4)], "{problems:?}");
        assert!(problems[0].reason.contains("empty label"));
    }

    #[test]
    fn dns_servers_are_addresses_with_ports() {
        let c = parse("hoster = \"h.example\"\n").unwrap();
        assert!(c.dns_servers.is_empty());
        let c = parse("hoster = \"h.example\"\n[dns]\nservers = [\"192.0.2.53:53\"]\n").unwrap();
        assert_eq!(c.dns_servers, vec!["192.0.2.53:53".parse().unwrap()]);
        let err = parse("hoster = \"h.example\"\n[dns]\nservers = [\"192.0.2.53\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":3:") && err.contains("dns.servers"), "{err}");
    }

    #[test]
    fn admin_listens_on_loopback_only() {
        let c = parse("hoster = \"h.example\"\n").unwrap();
        assert!(c.admin_listen.is_empty());
        let c = parse(
            "hoster = \"h.example\"\n[admin]\nlisten = [\"127.0.0.1:8444\", \"[::1]:8444\"]\n",
        )
        .unwrap();
        assert_eq!(c.admin_listen.len(), 2);
        let err = parse("hoster = \"h.example\"\n[admin]\nlisten = [\"0.0.0.0:8444\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":3:") && err.contains("not a loopback address"),
            "{err}"
        );
    }

    #[test]
    fn listen_defaults_and_empty_lists() {
        let c =
            parse("hoster = \"h.example\"\n[https]\ncert = \"c.pem\"\nkey = \"k.pem\"\n").unwrap();
        assert_eq!(c.https_listen, vec!["127.0.0.1:8443".parse().unwrap()]);
        let err = parse("hoster = \"h.example\"\n[http]\nlisten = []\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/autodisco.toml:3:"), "{err}");
        let long = format!(
            "hoster = \"{}.example\"\n",
            [
                "a".repeat(58),
                "b".repeat(58),
                "c".repeat(58),
                "d".repeat(58)
            ]
            .join(".")
        );
        let err = parse(&long).unwrap_err().to_string();
        assert!(err.contains("service_host"), "{err}");
    }

    #[test]
    fn public_url_is_an_origin_only() {
        assert_eq!(
            check_public_url("https://Auto.Example/").unwrap(),
            "https://auto.example"
        );
        assert_eq!(
            check_public_url("https://auto.example:8443").unwrap(),
            "https://auto.example:8443"
        );
        assert!(check_public_url("http://auto.example").is_err());
        assert!(check_public_url("https://auto.example/path").is_err());
        assert!(check_public_url("https://user@auto.example").is_err());
    }

    #[test]
    fn invalid_profile_is_refused_with_its_line() {
        let text =
            "hoster = \"h.example\"\n\n[profiles.basic]\nactivesync_url = \"http://x.example/\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains("/etc/autodisco.toml:3") || err.contains("/etc/autodisco.toml:4"),
            "{err}"
        );
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn a_separate_signing_certificate_needs_cert_and_key() {
        let c = parse("hoster = \"h.example\"\n[signing]\ncert = \"s.pem\"\nkey = \"/k.pem\"\n")
            .unwrap();
        assert_eq!(
            c.signing,
            Some(TlsSource::Files {
                cert: "/etc/s.pem".into(),
                key: "/k.pem".into()
            })
        );
        assert_eq!(parse("hoster = \"h.example\"\n").unwrap().signing, None);
        let err = parse("hoster = \"h.example\"\n[signing]\ncert = \"s.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/autodisco.toml:"), "{err}");
        assert!(err.contains("key"), "{err}");
    }

    #[test]
    fn auth_settings() {
        assert_eq!(
            parse("hoster = \"h.example\"\n").unwrap().auth,
            AuthConfig::default()
        );
        let c = parse("hoster = \"h.example\"\nauth = \"basic\"\n").unwrap();
        assert_eq!((c.auth.mode, c.auth.imap), (AuthMode::Basic, None));
        let c = parse(
            "hoster = \"h.example\"\nauth = \"basic\"\n[auth_imap]\nhost = \"imap.h.example\"\nca_file = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            c.auth.imap,
            Some(ImapAuth {
                host: "imap.h.example".into(),
                port: 993,
                ca_file: Some("/etc/ca.pem".into())
            })
        );
        let err = parse("hoster = \"h.example\"\nauth = \"digest\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/autodisco.toml:2:"), "{err}");
        assert!(err.contains("\"none\" or \"basic\""), "{err}");
        let err = parse("hoster = \"h.example\"\n[auth_imap]\nhost = \"bad host\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth_imap.host") && err.contains("auth is not"),
            "{err}"
        );
    }

    #[test]
    fn paths_are_relative_to_the_config_file() {
        let c = parse("hoster = \"h.example\"\ndatabase = \"sqlite://d.sqlite\"\n[https]\nlisten = [\"[::]:443\"]\ncert = \"c.pem\"\nkey = \"/k.pem\"\n").unwrap();
        assert_eq!(c.database, "sqlite:///etc/d.sqlite");
        assert_eq!(
            c.tls,
            TlsSource::Files {
                cert: "/etc/c.pem".into(),
                key: "/k.pem".into()
            }
        );
    }
}
