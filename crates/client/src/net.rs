//! Names, connections and one HTTP/1.1 exchange at a time, each step reported as it happens.
//!
//! Connections are made by hand (hickory-resolver, a TCP connect, tokio-rustls, hyper's
//! HTTP/1.1 connection API) rather than through a pooled client, because the discovery needs to
//! know exactly how far each attempt got: a candidate whose TLS handshake has not completed loses
//! to a later one that succeeds, and a timeout must say what it was waiting for.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;

use crate::config::{ClientConfig, DnsServer, Pin};
use crate::error::ConfigError;
use crate::report::Failure;
use crate::tls::{self, TlsSetup};

/// The largest answer read. AutoDiscover responses are a few KiB.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Resolver, pins and TLS setup.
pub(crate) struct Net {
    resolver: TokioResolver,
    pins: Vec<Pin>,
    tls: TlsSetup,
    user_agent: HeaderValue,
}

/// How far an exchange has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Activity {
    /// Asking DNS for a name.
    Resolving(String),
    /// Waiting for the TCP connection.
    Connecting(SocketAddr),
    /// TCP is up; waiting for the TLS handshake.
    TlsHandshake(SocketAddr),
    /// Connected (TLS done for https); waiting for the answer.
    Waiting(SocketAddr),
    /// Reading the answer's body.
    Reading(SocketAddr),
}

impl Activity {
    /// Whether the connection is established (TLS complete for https): an answer would come
    /// from here, so a later candidate must not overtake it.
    pub(crate) fn connected(&self) -> bool {
        matches!(self, Self::Waiting(_) | Self::Reading(_))
    }

    /// What is awaited, in words.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Resolving(name) => format!("the DNS answer for {name}"),
            Self::Connecting(address) => format!("the TCP connection to {address}"),
            Self::TlsHandshake(address) => format!(
                "the TLS handshake with {address} (the TCP connection was accepted, but no TLS answer came)"
            ),
            Self::Waiting(address) => format!("the HTTP answer from {address}"),
            Self::Reading(address) => format!("the rest of the HTTP answer from {address}"),
        }
    }
}

/// What an exchange learnt along the way, kept when it fails or times out.
#[derive(Debug, Default)]
pub(crate) struct ExchangeLog {
    /// The resolution: CNAME chain and addresses, or the pin.
    pub(crate) dns: Vec<String>,
    /// The address connected to.
    pub(crate) peer: Option<SocketAddr>,
    /// How far it got.
    pub(crate) activity: Option<Activity>,
}

/// One HTTP request.
pub(crate) struct HttpRequest<'a> {
    pub(crate) method: Method,
    pub(crate) url: &'a Url,
    pub(crate) body: Option<Bytes>,
    pub(crate) headers: Vec<(header::HeaderName, HeaderValue)>,
}

/// One HTTP answer, body read.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// An SRV record.
#[derive(Debug, Clone)]
pub(crate) struct SrvRecord {
    pub(crate) priority: u16,
    pub(crate) weight: u16,
    pub(crate) port: u16,
    pub(crate) target: String,
}

impl std::fmt::Display for SrvRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "priority {} weight {} port {} target {}",
            self.priority, self.weight, self.port, self.target
        )
    }
}

/// Where an exchange reports its progress.
pub(crate) struct Tracker<'a> {
    pub(crate) log: &'a Mutex<ExchangeLog>,
    pub(crate) on_activity: &'a (dyn Fn(&Activity) + Sync),
}

impl Tracker<'_> {
    fn set(&self, activity: Activity) {
        (self.on_activity)(&activity);
        if let Ok(mut log) = self.log.lock() {
            if let Activity::Waiting(peer) = &activity {
                log.peer = Some(*peer);
            }
            log.activity = Some(activity);
        }
    }

    fn dns(&self, line: String) {
        if let Ok(mut log) = self.log.lock() {
            log.dns.push(line);
        }
    }
}

impl Net {
    pub(crate) fn new(config: &ClientConfig) -> Result<Self, ConfigError> {
        let tls = TlsSetup::new(config)?;
        let provider = TokioRuntimeProvider::default();
        let mut builder = match config.dns {
            DnsServer::System => {
                TokioResolver::builder(provider).map_err(|e| ConfigError::SystemDns {
                    detail: e.to_string(),
                })?
            }
            DnsServer::At(server) => {
                let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut name_server.connections {
                    connection.port = server.port();
                }
                let resolver_config = ResolverConfig::from_name_servers(vec![name_server]);
                let mut builder = TokioResolver::builder_with_config(resolver_config, provider);
                // `--dns` means that server alone, as dig @server does.
                builder.options_mut().use_hosts_file = ResolveHosts::Never;
                builder
            }
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = config.step_timeout;
        options.attempts = 1;
        options.preserve_intermediates = true;
        for pin in &config.pins {
            if autodisco_proto::Domain::parse(&pin.host).is_err() {
                return Err(ConfigError::BadPin {
                    host: pin.host.clone(),
                });
            }
        }
        let resolver = builder.build().map_err(|e| ConfigError::SystemDns {
            detail: e.to_string(),
        })?;
        Ok(Self {
            resolver,
            pins: config.pins.clone(),
            tls,
            user_agent: HeaderValue::from_str(&config.user_agent)
                .unwrap_or_else(|_| HeaderValue::from_static("autodisco-probe")),
        })
    }

    /// The addresses to try for `host:port`, most preferred first.
    pub(crate) async fn resolve(
        &self,
        host: &str,
        port: u16,
        tracker: &Tracker<'_>,
    ) -> Result<Vec<SocketAddr>, Failure> {
        if let Some(pin) = self
            .pins
            .iter()
            .find(|p| p.port == port && p.host.trim_end_matches('.').eq_ignore_ascii_case(host))
        {
            tracker.dns(format!("{host}:{port} pinned to {}", pin.address));
            return Ok(vec![pin.address]);
        }
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        tracker.set(Activity::Resolving(host.to_owned()));
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        let lookup = self
            .resolver
            .lookup_ip(fqdn.as_str())
            .await
            .map_err(|e| dns_failure(host, "A/AAAA", &e))?;
        for record in lookup.as_lookup().answers() {
            let name = record.name.to_string();
            let name = name.trim_end_matches('.');
            match &record.data {
                RData::CNAME(target) => {
                    tracker.dns(format!(
                        "{name} CNAME {}",
                        target.0.to_string().trim_end_matches('.')
                    ));
                }
                RData::A(a) => tracker.dns(format!("{name} A {}", a.0)),
                RData::AAAA(aaaa) => tracker.dns(format!("{name} AAAA {}", aaaa.0)),
                _ => {}
            }
        }
        let addresses: Vec<SocketAddr> =
            lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        if addresses.is_empty() {
            return Err(Failure::NoRecords {
                name: host.to_owned(),
                record_type: "A or AAAA".to_owned(),
            });
        }
        Ok(addresses)
    }

    /// The SRV records of `name`, as published.
    pub(crate) async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, Failure> {
        let records = self.lookup(name, RecordType::SRV).await?;
        Ok(records
            .iter()
            .filter_map(|data| match data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: srv.target.to_string().trim_end_matches('.').to_owned(),
                }),
                _ => None,
            })
            .collect())
    }

    /// The MX records of `name` as (preference, exchange), lowest preference first.
    pub(crate) async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, Failure> {
        let records = self.lookup(name, RecordType::MX).await?;
        let mut records: Vec<(u16, String)> = records
            .iter()
            .filter_map(|data| match data {
                RData::MX(mx) => Some((
                    mx.preference,
                    mx.exchange.to_string().trim_end_matches('.').to_owned(),
                )),
                _ => None,
            })
            .collect();
        records.sort();
        Ok(records)
    }

    /// The data of the `record_type` records of `name` (the answer's CNAMEs left out by the
    /// callers' matches).
    pub(crate) async fn lookup(
        &self,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RData>, Failure> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = self
            .resolver
            .lookup(fqdn.as_str(), record_type)
            .await
            .map_err(|e| dns_failure(name, &record_type.to_string(), &e))?;
        Ok(lookup.answers().iter().map(|r| r.data.clone()).collect())
    }

    /// [`Net::exchange`] under `step_timeout`; a timeout says what it was still waiting for.
    pub(crate) async fn exchange_within(
        &self,
        request: &HttpRequest<'_>,
        step_timeout: Duration,
        tracker: &Tracker<'_>,
    ) -> Result<HttpResponse, Failure> {
        match tokio::time::timeout(step_timeout, self.exchange(request, tracker)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout {
                after_ms: u64::try_from(step_timeout.as_millis()).unwrap_or(u64::MAX),
                waiting_for: tracker
                    .log
                    .lock()
                    .ok()
                    .and_then(|l| l.activity.as_ref().map(Activity::describe))
                    .unwrap_or_else(|| "an answer".to_owned()),
            }),
        }
    }

    /// Resolves, connects (TLS for https, with the certificate verified) and makes one HTTP/1.1
    /// request. No redirects are followed and no credentials are added here.
    pub(crate) async fn exchange(
        &self,
        request: &HttpRequest<'_>,
        tracker: &Tracker<'_>,
    ) -> Result<HttpResponse, Failure> {
        let url = request.url;
        let host = url.host_str().unwrap_or_default().to_owned();
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses = self.resolve(&bare_host, port, tracker).await?;
        let mut last_error = None;
        let mut stream = None;
        for address in &addresses {
            tracker.set(Activity::Connecting(*address));
            match TcpStream::connect(address).await {
                Ok(connected) => {
                    stream = Some((connected, *address));
                    break;
                }
                Err(e) => last_error = Some((*address, e)),
            }
        }
        let Some((stream, address)) = stream else {
            let (address, error) = last_error.expect("at least one address was tried");
            return Err(Failure::Connect {
                address: address.to_string(),
                detail: connect_detail(&error),
            });
        };
        let _ = stream.set_nodelay(true);
        if url.scheme() == "https" {
            tracker.set(Activity::TlsHandshake(address));
            let server_name =
                ServerName::try_from(bare_host.clone()).map_err(|_| Failure::Tls {
                    host: bare_host.clone(),
                    diagnosis: format!("{bare_host} cannot be checked against a certificate"),
                    certificate_names: Vec::new(),
                })?;
            let (connector, seen) = self.tls.connector();
            let tls_stream = connector.connect(server_name, stream).await.map_err(|e| {
                let leaf = seen.lock().ok().and_then(|s| s.clone());
                tls::diagnose(&bare_host, &address.to_string(), &e, leaf)
            })?;
            tracker.set(Activity::Waiting(address));
            self.send(tls_stream, request, &host, address, tracker)
                .await
        } else {
            tracker.set(Activity::Waiting(address));
            self.send(stream, request, &host, address, tracker).await
        }
    }

    async fn send<S>(
        &self,
        io: S,
        request: &HttpRequest<'_>,
        host: &str,
        address: SocketAddr,
        tracker: &Tracker<'_>,
    ) -> Result<HttpResponse, Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let http_error = |e: hyper::Error| Failure::Http {
            detail: e.to_string(),
        };
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(io))
                .await
                .map_err(http_error)?;
        // The connection is driven beside the request and dropped with it.
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let url = request.url;
        let host_header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let mut builder = Request::builder()
            .method(request.method.clone())
            .uri(target)
            .header(header::HOST, host_header)
            .header(header::USER_AGENT, self.user_agent.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let body = request.body.clone().unwrap_or_default();
        let http_request = builder.body(Full::new(body)).map_err(|e| Failure::Http {
            detail: e.to_string(),
        })?;
        let response = sender
            .send_request(http_request)
            .await
            .map_err(http_error)?;
        tracker.set(Activity::Reading(address));
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    Failure::TooLarge { limit: MAX_BODY }
                } else {
                    Failure::Http {
                        detail: e.to_string(),
                    }
                }
            })?
            .to_bytes();
        drop(driver);
        Ok(HttpResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// Aborts a spawned task when dropped, so a cancelled exchange leaves nothing behind.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn dns_failure(name: &str, record_type: &str, error: &NetError) -> Failure {
    if error.is_nx_domain() {
        Failure::NoSuchName {
            name: name.to_owned(),
        }
    } else if error.is_no_records_found() {
        Failure::NoRecords {
            name: name.to_owned(),
            record_type: record_type.to_owned(),
        }
    } else {
        Failure::Dns {
            name: name.to_owned(),
            detail: error.to_string(),
        }
    }
}

fn connect_detail(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens on that port)".to_owned()
        }
        _ => error.to_string(),
    }
}
