//! What a [`Client`](crate::Client) is built from.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Which DNS server answers the probe's queries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DnsServer {
    /// The system's configuration (`/etc/resolv.conf`), including the hosts file.
    #[default]
    System,
    /// This server only, over UDP with TCP fallback; the hosts file is not read.
    At(SocketAddr),
}

/// A name pinned to an address, as curl's `--resolve HOST:PORT:ADDR` does: connections to
/// `host:port` go to `address` without asking DNS.
///
/// `address` may carry another port than `port` (like curl's `--connect-to`), which lets a test
/// reach `https://name/` (port 443) on a server bound to a high port. URLs, Host headers and
/// certificate checks still use `host` and `port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The host name, compared case-insensitively.
    pub host: String,
    /// The port in the URL (443 for `https://host/`).
    pub port: u16,
    /// Where to connect instead.
    pub address: SocketAddr,
}

/// A user name and password for HTTP Basic, sent only as [`crate::policy`] allows.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (often the address itself).
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// Everything a [`Client`](crate::Client) needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The DNS server to ask.
    pub dns: DnsServer,
    /// Names pinned to addresses; checked before DNS.
    pub pins: Vec<Pin>,
    /// Trust the Mozilla root programme's CAs (webpki-roots). On by default.
    pub webpki_roots: bool,
    /// Extra trusted CA certificates, PEM (a private CA, `--ca FILE`).
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// Credentials for HTTP Basic, answered only to challenges from trusted hosts over
    /// verified HTTPS.
    pub credentials: Option<Credentials>,
    /// How long one request (DNS, connect, TLS, request and answer) may take.
    pub step_timeout: Duration,
    /// How long the whole discovery may take, not counting the time a consent prompt waits for
    /// the user.
    pub total_timeout: Duration,
    /// How long a candidate may go without a connection before the next one starts, as Happy
    /// Eyeballs does between addresses (RFC 8305 3 recommends 250 ms).
    pub stagger: Duration,
    /// After finding the Outlook settings, also ask the same URL in the ActiveSync
    /// (mobilesync) dialect, for the ActiveSync section.
    pub ask_activesync: bool,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            dns: DnsServer::System,
            pins: Vec::new(),
            webpki_roots: true,
            extra_roots_pem: Vec::new(),
            credentials: None,
            step_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(60),
            stagger: Duration::from_millis(250),
            ask_activesync: true,
            user_agent: format!("autodisco-probe/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}
