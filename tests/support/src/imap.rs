//! An IMAP server over implicit TLS on loopback that knows a few passwords: enough of RFC 9051
//! for `LOGIN` (quoted strings and synchronising literals) and `LOGOUT`. Tests switch it to
//! answer `NO [UNAVAILABLE]` (RFC 5530 section 3), to answer slowly, and read how many logins
//! reached it and how many were open at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

use crate::TestCa;

/// The host name the server is reached at and its certificate names: an IP address, since the
/// configuration takes only host names with a dot or IP addresses.
pub const IMAP_HOST: &str = "127.0.0.1";

#[derive(Default)]
struct Shared {
    accounts: Mutex<HashMap<String, String>>,
    unavailable: AtomicBool,
    delay_ms: AtomicU64,
    logins: AtomicUsize,
    open_logins: AtomicUsize,
    peak_open_logins: AtomicUsize,
}

/// The server; it stops when dropped.
pub struct ImapTestServer {
    address: SocketAddr,
    ca: TestCa,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl ImapTestServer {
    /// Starts on `127.0.0.1`, a free port, accepting `LOGIN user password` for `accounts`.
    pub async fn start(accounts: &[(&str, &str)]) -> Self {
        let ca = TestCa::new();
        let acceptor = crate::recording::tls_acceptor(&ca.issue(&[IMAP_HOST]));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind IMAP");
        let address = listener.local_addr().expect("IMAP address");
        let shared = Arc::new(Shared::default());
        *shared.accounts.lock().unwrap() = accounts
            .iter()
            .map(|(user, password)| (user.to_string(), password.to_string()))
            .collect();
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let shared = serving.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = serve(&mut BufReader::new(tls), &shared).await;
                    }
                });
            }
        });
        Self {
            address,
            ca,
            shared,
            task,
        }
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The CA that issued its certificate, PEM (for `auth_imap.ca_file`).
    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem()
    }

    /// From now on, every `LOGIN` is answered `NO [UNAVAILABLE]` (or again normally).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.shared.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// From now on, each `LOGIN` is answered only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// `LOGIN` commands received so far.
    pub fn logins(&self) -> usize {
        self.shared.logins.load(Ordering::SeqCst)
    }

    /// The most `LOGIN` commands that were waiting for their answer at once.
    pub fn peak_open_logins(&self) -> usize {
        self.shared.peak_open_logins.load(Ordering::SeqCst)
    }
}

impl Drop for ImapTestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    stream: &mut BufReader<TlsStream<TcpStream>>,
    shared: &Shared,
) -> std::io::Result<()> {
    stream
        .get_mut()
        .write_all(b"* OK test IMAP ready\r\n")
        .await?;
    let mut head = String::new();
    stream.read_line(&mut head).await?;
    let Some(rest) = head.strip_prefix("a1 LOGIN ") else {
        stream
            .get_mut()
            .write_all(b"a1 BAD expected LOGIN\r\n")
            .await?;
        return Ok(());
    };
    let values = read_astrings(stream, rest.to_owned()).await?;
    shared.logins.fetch_add(1, Ordering::SeqCst);
    let open = shared.open_logins.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak_open_logins.fetch_max(open, Ordering::SeqCst);
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let known = match values.as_slice() {
        [user, password] => shared.accounts.lock().unwrap().get(user) == Some(password),
        _ => false,
    };
    let answer: &[u8] = if shared.unavailable.load(Ordering::SeqCst) {
        b"a1 NO [UNAVAILABLE] Temporary authentication failure\r\n"
    } else if known {
        b"* CAPABILITY IMAP4rev1\r\na1 OK LOGIN completed\r\n"
    } else {
        b"a1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"
    };
    let written = stream.get_mut().write_all(answer).await;
    shared.open_logins.fetch_sub(1, Ordering::SeqCst);
    written
}

/// The two `astring`s of a `LOGIN` whose first line after the command name is `line`: quoted
/// strings with `\` escapes, or synchronising literals answered with a continuation.
async fn read_astrings(
    stream: &mut BufReader<TlsStream<TcpStream>>,
    mut line: String,
) -> std::io::Result<Vec<String>> {
    let mut values = Vec::new();
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
            let Some(length) = literal.split('}').next().and_then(|n| n.parse().ok()) else {
                break;
            };
            stream.get_mut().write_all(b"+ go ahead\r\n").await?;
            let mut bytes = vec![0u8; length];
            stream.read_exact(&mut bytes).await?;
            values.push(String::from_utf8_lossy(&bytes).into_owned());
            line = String::new();
            stream.read_line(&mut line).await?;
        } else {
            break;
        }
    }
    Ok(values)
}
