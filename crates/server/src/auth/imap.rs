//! Checking a password with the hoster's IMAP server: a `LOGIN` over implicit TLS
//! (RFC 9051 section 6.2.3; port 993) that succeeds means the password is right.
//!
//! The connection is short: greeting, `LOGIN`, `LOGOUT`. User name and password are sent as
//! quoted strings when they are printable ASCII and as synchronising literals otherwise; a
//! value with CR, LF or NUL cannot be sent at all and is simply wrong. The password lives only
//! in the request's memory; the authenticator caches the verdict, never the password.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use autodisco_proto::EmailAddress;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{BackendFuture, PasswordBackend};
use crate::config::ImapAuth;

/// The time one check may take, connection and TLS included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The longest server line read.
const MAX_LINE: usize = 8 * 1024;

/// Why the IMAP server could not be asked (not: the password is wrong).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImapError {
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The host is not a valid TLS server name.
    #[error("{0:?} is not a valid host name for TLS")]
    ServerName(String),
    /// TLS setup failed.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Connecting, the handshake or the dialogue failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server did not answer in time.
    #[error("the IMAP server did not answer within {0:?}")]
    Timeout(Duration),
    /// The server said something that is not IMAP, or refused the command as malformed.
    #[error("unexpected answer from the IMAP server")]
    Protocol,
}

/// Checks passwords with an IMAP server.
pub struct ImapBackend {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
}

impl ImapBackend {
    /// A backend for `host:port` trusting `roots`.
    pub fn new(host: &str, port: u16, roots: RootCertStore) -> Result<Self, ImapError> {
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| ImapError::ServerName(host.to_owned()))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            host: host.to_owned(),
            port,
            server_name,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The backend `[auth_imap]` describes: its CA file, or the public web PKI roots.
    pub fn from_config(config: &ImapAuth) -> Result<Self, ImapError> {
        let roots = match &config.ca_file {
            Some(path) => roots_from_file(path)?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        Self::new(&config.host, config.port, roots)
    }

    /// Whether `LOGIN login password` succeeds.
    pub async fn login(&self, login: &str, password: &str) -> Result<bool, ImapError> {
        match tokio::time::timeout(TIMEOUT, self.dialogue(login, password)).await {
            Ok(result) => result,
            Err(_) => Err(ImapError::Timeout(TIMEOUT)),
        }
    }

    async fn dialogue(&self, login: &str, password: &str) -> Result<bool, ImapError> {
        if [login, password]
            .iter()
            .any(|v| v.contains(['\r', '\n', '\0']))
        {
            return Ok(false);
        }
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await?;
        let mut stream = BufReader::new(tls);
        let greeting = read_line(&mut stream).await?;
        if !greeting.starts_with("* OK") {
            return Err(ImapError::Protocol);
        }
        stream.get_mut().write_all(b"a1 LOGIN ").await?;
        send_astring(&mut stream, login).await?;
        stream.get_mut().write_all(b" ").await?;
        send_astring(&mut stream, password).await?;
        stream.get_mut().write_all(b"\r\n").await?;
        stream.get_mut().flush().await?;
        let verdict = loop {
            let line = read_line(&mut stream).await?;
            if let Some(status) = line.strip_prefix("a1 ") {
                let word = status.split(' ').next().unwrap_or_default();
                break match word.to_ascii_uppercase().as_str() {
                    "OK" => true,
                    "NO" => false,
                    _ => return Err(ImapError::Protocol),
                };
            }
        };
        // Polite, and not waited for long: the verdict is known.
        let _ = stream.get_mut().write_all(b"a2 LOGOUT\r\n").await;
        let _ = stream.get_mut().shutdown().await;
        Ok(verdict)
    }
}

impl PasswordBackend for ImapBackend {
    fn name(&self) -> &'static str {
        "imap"
    }

    fn verify<'a>(
        &'a self,
        _address: &'a EmailAddress,
        login: &'a str,
        password: &'a str,
    ) -> BackendFuture<'a> {
        Box::pin(async move { Ok(self.login(login, password).await?) })
    }
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, ImapError> {
    let fail = |reason: String| ImapError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        roots.add(cert).map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("no certificate in it".to_owned()));
    }
    Ok(roots)
}

type Stream = BufReader<tokio_rustls::client::TlsStream<TcpStream>>;

async fn read_line(stream: &mut Stream) -> Result<String, ImapError> {
    let mut line = Vec::new();
    let read = (&mut *stream)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 || !line.ends_with(b"\n") {
        return Err(ImapError::Protocol);
    }
    let line = String::from_utf8_lossy(&line);
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Sends an IMAP `astring`: quoted when printable ASCII, a synchronising literal otherwise
/// (RFC 9051 section 4.3), waiting for the server's continuation.
async fn send_astring(stream: &mut Stream, value: &str) -> Result<(), ImapError> {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let mut quoted = Vec::with_capacity(value.len() + 2);
        quoted.push(b'"');
        for b in value.bytes() {
            if matches!(b, b'"' | b'\\') {
                quoted.push(b'\\');
            }
            quoted.push(b);
        }
        quoted.push(b'"');
        stream.get_mut().write_all(&quoted).await?;
        return Ok(());
    }
    let header = format!("{{{}}}\r\n", value.len());
    stream.get_mut().write_all(header.as_bytes()).await?;
    stream.get_mut().flush().await?;
    let continuation = read_line(stream).await?;
    if !continuation.starts_with('+') {
        return Err(ImapError::Protocol);
    }
    stream.get_mut().write_all(value.as_bytes()).await?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::SocketAddr;

    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    use super::*;

    /// A one-trick IMAP server on loopback: accepts `LOGIN user password` for one pair, with
    /// quoted strings or literals. Returns its address, the CA to trust, and that CA as PEM.
    pub(crate) async fn fake_imap_server(
        user: &'static str,
        password: &'static str,
    ) -> (SocketAddr, RootCertStore, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut stream = BufReader::new(tls);
                    let _ = serve(&mut stream, user, password).await;
                });
            }
        });
        (address, roots, cert.pem())
    }

    async fn serve(
        stream: &mut BufReader<tokio_rustls::server::TlsStream<TcpStream>>,
        user: &str,
        password: &str,
    ) -> std::io::Result<()> {
        stream
            .get_mut()
            .write_all(b"* OK fake IMAP ready\r\n")
            .await?;
        // Read `a1 LOGIN <astring> <astring>` token by token.
        let mut head = String::new();
        stream.read_line(&mut head).await?;
        let rest = head
            .strip_prefix("a1 LOGIN ")
            .unwrap_or_default()
            .to_owned();
        let mut values = Vec::new();
        let mut line = rest;
        while values.len() < 2 {
            let trimmed = line.trim_start().to_owned();
            if let Some(quoted) = trimmed.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                values.push(value);
                line = chars.collect();
            } else if let Some(literal) = trimmed.strip_prefix('{') {
                let length: usize = literal.split('}').next().unwrap().parse().unwrap();
                stream.get_mut().write_all(b"+ go ahead\r\n").await?;
                let mut bytes = vec![0u8; length];
                stream.read_exact(&mut bytes).await?;
                values.push(String::from_utf8(bytes).unwrap());
                line = String::new();
                stream.read_line(&mut line).await?;
            } else {
                break;
            }
        }
        let ok = values.len() == 2 && values[0] == user && values[1] == password;
        let answer: &[u8] = if ok {
            b"* CAPABILITY IMAP4rev1\r\na1 OK LOGIN completed\r\n"
        } else {
            b"a1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"
        };
        stream.get_mut().write_all(answer).await?;
        Ok(())
    }

    #[tokio::test]
    async fn login_over_tls() {
        let (address, roots, _) = fake_imap_server("jdoe", "pa\"ss\\wörd").await;
        let backend = ImapBackend::new("localhost", address.port(), roots).unwrap();
        assert!(backend.login("jdoe", "pa\"ss\\wörd").await.unwrap());
        assert!(!backend.login("jdoe", "wrong").await.unwrap());
        assert!(!backend.login("jdoe", "line\r\nbreak").await.unwrap());
        assert!(!backend.login("other", "pa\"ss\\wörd").await.unwrap());
    }

    #[tokio::test]
    async fn an_untrusted_server_is_an_error_not_a_verdict() {
        let (address, _, _) = fake_imap_server("jdoe", "x").await;
        let backend =
            ImapBackend::new("localhost", address.port(), RootCertStore::empty()).unwrap();
        assert!(backend.login("jdoe", "x").await.is_err());
        let closed = ImapBackend::new("localhost", 1, RootCertStore::empty()).unwrap();
        assert!(closed.login("jdoe", "x").await.is_err());
    }
}
