//! autodisco-client: Outlook's AutoDiscover discovery as a library, faster and safer, with every
//! step explained.
//!
//! Give it an address; it finds the account's settings the way Outlook does ([MS-OXDISCO] 3.1.5
//! for locating the server, [MS-OXDSCLI] 3.1.5 for the exchange), or in another [`Dialect`] the
//! way the EWS libraries, current Outlook's v2 JSON or Thunderbird do, and returns a [`Report`]: the
//! settings in sections a person understands, and the trace of every DNS query and HTTP request,
//! how long it took and why it was rejected. Printing the report is the caller's job.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use autodisco_client::{Client, ClientConfig, DenyAll};
//!
//! let client = Client::new(ClientConfig::default())?;
//! let address = "jane@customer.example".parse()?;
//! let report = client.discover(&address, Arc::new(DenyAll), None).await?;
//! println!("{}", report.conclusion);
//! # Ok(()) }
//! ```
//!
//! Modules: [`render`] turns a [`Report`] or a [`Comparison`] into the text a terminal shows,
//! with every server-supplied string escaped. The rest is inside, its types re-exported here:
//!
//! - `config`: [`ClientConfig`]: DNS server, pinned names, extra CA, credentials, timeouts.
//! - `dialect`: [`Dialect`] (POX, SOAP, v2 JSON, Mozilla autoconfig) for
//!   [`Client::discover_in`]; `comparison`: the [`Comparison`] of [`Client::discover_all`].
//! - `consent`: the [`Consent`] trait the caller implements ("Allow this website to configure
//!   ...?"), and ready-made answers.
//! - `report`: the [`Report`] and its [`TraceEntry`]s, serialisable for `--json`.
//! - `settings`: the discovered [`Settings`], grouped by what they are for.
//! - `policy`: which hosts may be contacted and trusted, by the public suffix list.
//! - `error`: errors that stop a discovery before it starts.
//! - `discovery`: the race of the candidates, the one redirect-and-consent follower, the trace,
//!   and one file per dialect (`pox`, `soap`, `mobilesync`, `v2`, `autoconfig`).
//! - `check`: the live checks of hosted domains ([`Checker`]): their DNS records against
//!   [`autodisco_proto::DomainRecords`], then what a client meets on the way to the service.
//! - `net` resolves names and speaks HTTP/1.1; `tls` verifies certificates and explains
//!   failures in words.

mod check;
mod comparison;
mod config;
mod consent;
mod dialect;
mod discovery;
mod error;
mod net;
mod policy;
pub mod render;
mod report;
mod settings;
mod tls;

use std::sync::Arc;

use autodisco_proto::EmailAddress;

pub use check::{
    CHECK_LOCAL_PART, CheckStatus, CheckTarget, Checker, DomainCheck, Finding, RecordCheck,
    WalkStep,
};
pub use comparison::{Comparison, DialectValue, Disagreement};
pub use config::{ClientConfig, Credentials, DnsServer, Pin};
pub use consent::{
    AllowAll, Consent, ConsentDecision, ConsentReason, ConsentRequest, DenyAll, TrustedHosts,
    normalise_host,
};
pub use dialect::Dialect;
pub use error::{ConfigError, DiscoverError};
pub use report::{Failure, InFlight, Note, NoteKind, Observer, Outcome, Report, Step, TraceEntry};
pub use settings::{ActiveSync, Ews, MailServer, Settings, User};
/// The most redirections one discovery follows: HTTP redirects, `redirectUrl` and `redirectAddr`
/// together ("The client application should stop redirecting after 10 redirects", the
/// `RedirectUrl` element's documentation for [MS-OXDSCLI] 2.2.4.1.1.2.9).
pub const MAX_REDIRECTIONS: usize = 10;

/// The discovery engine: a resolver, a TLS setup and the configuration, ready to probe any number
/// of addresses (one at a time or concurrently).
pub struct Client {
    config: ClientConfig,
    net: net::Net,
}

impl Client {
    /// Builds the resolver and the certificate store. Fails on an unusable configuration (a CA
    /// file without certificates, no system DNS configuration).
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        let net = net::Net::new(&config)?;
        Ok(Self { config, net })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Discovers the settings of `address`.
    ///
    /// `consent` is asked before any redirect that needs the user's agreement (the HTTP redirect
    /// of [MS-OXDISCO] 3.1.5.4, an SRV target, a redirect to another registrable domain); it is
    /// called on a blocking thread, so it may prompt. `observer`, when given, sees each trace
    /// entry as it is made and the requests in flight, for progress display.
    ///
    /// "Not found" is a [`Report`] with `found == false`, not an error: errors are reserved for
    /// addresses that must not be probed at all (a mail domain that is a public suffix).
    pub async fn discover(
        &self,
        address: &EmailAddress,
        consent: Arc<dyn Consent>,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Report, DiscoverError> {
        self.discover_in(Dialect::Pox, address, consent, observer)
            .await
    }

    /// Discovers the settings of `address` in `dialect`, as the clients speaking it do (see
    /// [`Dialect`]). The same transport, certificate checks, consent, credential policy and
    /// redirection limit as [`Client::discover`]; autoconfig never sends credentials.
    pub async fn discover_in(
        &self,
        dialect: Dialect,
        address: &EmailAddress,
        consent: Arc<dyn Consent>,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Report, DiscoverError> {
        policy::check_mail_domain(address.domain())?;
        Ok(
            discovery::Run::new(self, dialect, address.clone(), consent, observer)
                .execute()
                .await,
        )
    }

    /// Discovers `address` in every dialect concurrently and compares what they found: the
    /// IMAP, POP3 and SMTP servers (host, port, security) and the EWS URL.
    pub async fn discover_all(
        &self,
        address: &EmailAddress,
        consent: Arc<dyn Consent>,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Comparison, DiscoverError> {
        policy::check_mail_domain(address.domain())?;
        let runs = Dialect::ALL.map(|dialect| {
            discovery::Run::new(
                self,
                dialect,
                address.clone(),
                consent.clone(),
                observer.clone(),
            )
            .execute()
        });
        let reports = futures_util::future::join_all(runs).await;
        Ok(comparison::compare(address.to_string(), reports))
    }
}
