//! Checking a password with the hoster's IMAP server: a `LOGIN` over implicit TLS
//! (RFC 9051 section 6.2.3; port 993) that succeeds means the password is right.
//!
//! The connection is short: greeting, `LOGIN`, `LOGOUT`. User name and password are sent as
//! quoted strings when they are printable ASCII and as synchronising literals otherwise; a
//! value with CR, LF or NUL cannot be sent at all and is simply wrong. The password lives only
//! in the request's memory; the authenticator caches the verdict, never the password.
//!
//! Only a `NO` that is not temporary is a wrong password. A `NO` with a response code saying
//! the server cannot check right now (RFC 5530 section 3: `UNAVAILABLE`, `SERVERBUG`, `LIMIT`,
//! `INUSE`), a broken connection, a timeout or too many logins in flight are errors: the
//! client is asked to come back, and nothing is counted or cached against the user.
//! At most [`MAX_CONCURRENT_LOGINS`] logins run at once; a check waits at most [`QUEUE_WAIT`]
//! for its turn, so a burst of attempts can neither flood the IMAP server nor pile up here.

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
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

use super::{BackendFuture, PasswordBackend};
use crate::config::ImapAuth;

/// The time one check may take, connection and TLS included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The longest server line read.
const MAX_LINE: usize = 8 * 1024;

/// `LOGIN` dialogues open at once with the IMAP server.
pub const MAX_CONCURRENT_LOGINS: usize = 16;

/// The longest a check waits for one of the [`MAX_CONCURRENT_LOGINS`] slots.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// The `NO` response codes (RFC 5530 section 3) that say the server could not check the
/// password now, not that it is wrong.
const TEMPORARY_CODES: [&str; 4] = ["UNAVAILABLE", "SERVERBUG", "LIMIT", "INUSE"];

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
    /// The server answered `NO` with a code saying it cannot check now.
    #[error("the IMAP server cannot check passwords now ({0})")]
    Unavailable(String),
    /// Every login slot stayed taken for the whole queue wait.
    #[error("{MAX_CONCURRENT_LOGINS} logins in flight for {QUEUE_WAIT:?}")]
    Busy,
}

/// Checks passwords with an IMAP server.
pub(crate) struct ImapBackend {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    slots: Semaphore,
}

impl ImapBackend {
    /// A backend for `host:port` trusting `roots`.
    pub(crate) fn new(host: &str, port: u16, roots: RootCertStore) -> Result<Self, ImapError> {
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
            slots: Semaphore::new(MAX_CONCURRENT_LOGINS),
        })
    }

    /// The backend `[auth_imap]` describes: its CA file, or the public web PKI roots.
    pub(crate) fn from_config(config: &ImapAuth) -> Result<Self, ImapError> {
        let roots = match &config.ca_file {
            Some(path) => roots_from_file(path)?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        Self::new(&config.host, config.port, roots)
    }

    /// Whether `LOGIN login password` succeeds.
    pub(crate) async fn login(&self, login: &str, password: &str) -> Result<bool, ImapError> {
        let _slot = super::slot_within(&self.slots, QUEUE_WAIT)
            .await
            .ok_or(ImapError::Busy)?;
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
                let (word, text) = status.split_once(' ').unwrap_or((status, ""));
                break match word.to_ascii_uppercase().as_str() {
                    "OK" => true,
                    "NO" => match temporary_code(text) {
                        Some(code) => return Err(ImapError::Unavailable(code)),
                        None => false,
                    },
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

/// The response code of a tagged status's text (`[UNAVAILABLE] ...`) when it is one of the
/// [`TEMPORARY_CODES`].
fn temporary_code(text: &str) -> Option<String> {
    let code = text.strip_prefix('[')?.split([']', ' ']).next()?;
    TEMPORARY_CODES
        .iter()
        .find(|temporary| temporary.eq_ignore_ascii_case(code))
        .map(|temporary| (*temporary).to_owned())
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
    use autodisco_test_support::imap::{IMAP_HOST, ImapTestServer};

    use super::*;
    use crate::config::ImapAuth;

    /// The backend `[auth_imap]` would make for `server`; the CA file lives in `folder`.
    pub(crate) fn backend_for(server: &ImapTestServer, folder: &Path) -> ImapAuth {
        let ca_file = folder.join("imap-ca.pem");
        std::fs::write(&ca_file, server.ca_pem()).unwrap();
        ImapAuth {
            host: IMAP_HOST.into(),
            port: server.address().port(),
            ca_file: Some(ca_file),
        }
    }

    #[test]
    fn temporary_codes_are_recognised() {
        assert_eq!(
            temporary_code("[UNAVAILABLE] Temporary authentication failure"),
            Some("UNAVAILABLE".into())
        );
        assert_eq!(temporary_code("[serverbug]"), Some("SERVERBUG".into()));
        assert_eq!(
            temporary_code("[AUTHENTICATIONFAILED] Invalid credentials"),
            None
        );
        assert_eq!(temporary_code("Invalid credentials [UNAVAILABLE]"), None);
        assert_eq!(temporary_code(""), None);
    }

    #[tokio::test]
    async fn login_over_tls() {
        let server = ImapTestServer::start(&[("jdoe", "pa\"ss\\wörd")]).await;
        let folder = tempfile::tempdir().unwrap();
        let backend = ImapBackend::from_config(&backend_for(&server, folder.path())).unwrap();
        assert!(backend.login("jdoe", "pa\"ss\\wörd").await.unwrap());
        assert!(!backend.login("jdoe", "wrong").await.unwrap());
        assert!(!backend.login("jdoe", "line\r\nbreak").await.unwrap());
        assert!(!backend.login("other", "pa\"ss\\wörd").await.unwrap());
        // Temporary failures are errors, not verdicts.
        server.set_unavailable(true);
        match backend.login("jdoe", "pa\"ss\\wörd").await {
            Err(ImapError::Unavailable(code)) => assert_eq!(code, "UNAVAILABLE"),
            other => panic!("{other:?}"),
        }
        match backend.login("jdoe", "wrong").await {
            Err(ImapError::Unavailable(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_untrusted_server_is_an_error_not_a_verdict() {
        let server = ImapTestServer::start(&[("jdoe", "x")]).await;
        let backend =
            ImapBackend::new(IMAP_HOST, server.address().port(), RootCertStore::empty()).unwrap();
        assert!(backend.login("jdoe", "x").await.is_err());
        let closed = ImapBackend::new(IMAP_HOST, 1, RootCertStore::empty()).unwrap();
        assert!(closed.login("jdoe", "x").await.is_err());
    }

    /// A slow server: never more than the bound in flight, and the surplus is told to come
    /// back after the queue wait instead of waiting on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logins_in_flight_are_bounded() {
        let server = ImapTestServer::start(&[("jdoe", "x")]).await;
        server.set_delay(QUEUE_WAIT + Duration::from_secs(1));
        let folder = tempfile::tempdir().unwrap();
        let backend =
            Arc::new(ImapBackend::from_config(&backend_for(&server, folder.path())).unwrap());
        let attempts = (0..MAX_CONCURRENT_LOGINS * 2).map(|_| {
            let backend = backend.clone();
            tokio::spawn(async move { backend.login("jdoe", "x").await })
        });
        let results = futures_util::future::join_all(attempts).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r.as_ref().unwrap(), Err(ImapError::Busy)))
            .count();
        let verified = results
            .iter()
            .filter(|r| matches!(r.as_ref().unwrap(), Ok(true)))
            .count();
        assert_eq!(server.peak_open_logins(), MAX_CONCURRENT_LOGINS);
        assert_eq!(
            (verified, busy),
            (MAX_CONCURRENT_LOGINS, MAX_CONCURRENT_LOGINS)
        );
    }
}
