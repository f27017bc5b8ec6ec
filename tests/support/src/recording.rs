//! Tiny HTTP and HTTPS servers that record every request (method, path, headers, body) and
//! answer as the test says: a canned response, or the answer of another server they forward to.
//! Tests use them to check on the server side what a client sent, above all that no
//! `Authorization` header arrived where none may. Also a blackhole that accepts TCP and never
//! answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::IssuedCert;

/// A TLS acceptor serving `cert`.
pub(crate) fn tls_acceptor(cert: &IssuedCert) -> tokio_rustls::TlsAcceptor {
    let chain = CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate chain");
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("private key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server certificate");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Every header, names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether it carried credentials.
    pub fn has_authorization(&self) -> bool {
        self.header("authorization").is_some()
    }
}

/// How a recording server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, headers and body.
    Respond {
        /// Status code.
        status: u16,
        /// Headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: String,
    },
    /// Whatever the plain-HTTP server at this address answers to the same request.
    Forward(SocketAddr),
}

impl Reply {
    /// A bare status.
    pub fn status(status: u16) -> Self {
        Self::Respond {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// A redirect.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::Respond {
            status,
            headers: vec![("location".into(), location.into())],
            body: String::new(),
        }
    }

    /// A 401 with an HTTP Basic challenge.
    pub fn basic_challenge() -> Self {
        Self::Respond {
            status: 401,
            headers: vec![(
                "www-authenticate".into(),
                "Basic realm=\"autodiscover\"".into(),
            )],
            body: String::new(),
        }
    }

    /// A 200 with an XML body.
    pub fn xml(body: impl Into<String>) -> Self {
        Self::Respond {
            status: 200,
            headers: vec![("content-type".into(), "text/xml; charset=utf-8".into())],
            body: body.into(),
        }
    }
}

/// Decides the reply to each request.
pub type Responder = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

/// A recording server; stops when dropped.
pub struct RecordingServer {
    address: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    task: JoinHandle<()>,
}

impl RecordingServer {
    /// Plain HTTP on `address`.
    pub async fn http(address: SocketAddr, responder: Responder) -> Self {
        Self::start(address, None, responder).await
    }

    /// HTTPS on `address` with `cert`.
    pub async fn https(address: SocketAddr, cert: &IssuedCert, responder: Responder) -> Self {
        Self::start(address, Some(tls_acceptor(cert)), responder).await
    }

    async fn start(
        address: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        responder: Responder,
    ) -> Self {
        let listener = TcpListener::bind(address)
            .await
            .unwrap_or_else(|e| panic!("bind recording server on {address}: {e}"));
        let address = listener.local_addr().expect("local address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let responder = responder.clone();
                let recorded = recorded.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        handle(request, responder.clone(), recorded.clone())
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self {
            address,
            requests,
            task,
        }
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    request: hyper::Request<Incoming>,
    responder: Responder,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let record = RecordedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or("/".to_owned(), |p| p.to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    recorded.lock().expect("requests lock").push(record.clone());
    let reply = responder(&record);
    Ok(match reply {
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut response = hyper::Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response
                .body(Full::new(Bytes::from(body)))
                .expect("response")
        }
        Reply::Forward(upstream) => forward(upstream, parts, body).await,
    })
}

/// Sends the same request to a plain-HTTP upstream and returns its answer (502 if it fails).
async fn forward(
    upstream: SocketAddr,
    parts: http::request::Parts,
    body: Bytes,
) -> hyper::Response<Full<Bytes>> {
    let bad_gateway = || {
        hyper::Response::builder()
            .status(502)
            .body(Full::new(Bytes::new()))
            .expect("response")
    };
    let Ok(stream) = tokio::net::TcpStream::connect(upstream).await else {
        return bad_gateway();
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await
    else {
        return bad_gateway();
    };
    let driver = tokio::spawn(connection);
    let request = hyper::Request::from_parts(parts, Full::new(body));
    let result = match sender.send_request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            hyper::Response::from_parts(parts, Full::new(body))
        }
        Err(_) => bad_gateway(),
    };
    driver.abort();
    result
}

/// Accepts TCP connections and never sends a byte: a domain root that stalls. Stops when
/// dropped.
pub struct Blackhole {
    task: JoinHandle<()>,
}

impl Blackhole {
    /// Listens on `address`.
    pub async fn start(address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address)
            .await
            .unwrap_or_else(|e| panic!("bind blackhole on {address}: {e}"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Self { task }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.task.abort();
    }
}
