//! Starting and stopping the whole service: listeners, certificate reload, directory refresh.
//!
//! - `reload`: what SIGHUP may change while it runs.

mod reload;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use autodisco_directory::LiveDirectory;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::admission::{ClientLimits, SiteAdmission};
use crate::config::{Config, TlsSource};
use crate::signing::{ProfileSigner, SignerStatus, SigningError};
use crate::state::{AppState, Site};
use crate::tls::{CertStore, TlsError};
use crate::{admin, listener, routes};

/// How often certificate files are checked for changes (SIGHUP reloads at once).
const CERT_POLL: Duration = Duration::from_secs(5);

/// Why the service could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificates could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The certificate that signs Apple configuration profiles cannot be used.
    #[error("profile signing: {0}")]
    Signing(#[from] SigningError),
    /// Authentication (`auth`, `[auth_imap]`) cannot be set up.
    #[error("authentication: {0}")]
    Auth(#[from] crate::auth::AuthSetupError),
}

/// A running service; drop it or call [`RunningServer::shutdown`] to stop.
pub struct RunningServer {
    /// The bound plain-HTTP (redirect site) addresses, in config order.
    pub http_addrs: Vec<SocketAddr>,
    /// The bound HTTPS addresses, in config order.
    pub https_addrs: Vec<SocketAddr>,
    /// The bound admin API addresses, in config order; empty when the admin API is off.
    pub admin_addrs: Vec<SocketAddr>,
    /// The Apple profile signer, reloaded with the certificates.
    pub signer: Arc<ProfileSigner>,
    certs: Arc<CertStore>,
    site: Arc<ArcSwap<Site>>,
    /// The configuration in force: a reload compares the new file with it.
    config: Mutex<Config>,
    directory: LiveDirectory,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningServer {
    /// Binds every listener and starts serving. Port 0 binds a free port (tests read the result
    /// from [`RunningServer::http_addrs`] and [`RunningServer::https_addrs`]).
    pub async fn start(config: &Config, directory: LiveDirectory) -> Result<Self, ServerError> {
        Self::start_with_checker(config, directory, None).await
    }

    /// [`RunningServer::start`], with the live checker the admin API's `POST
    /// /v1/domains/{name}/check` runs (`autodisco serve` always gives one).
    pub async fn start_with_checker(
        config: &Config,
        directory: LiveDirectory,
        checker: Option<Arc<dyn crate::admin::DomainChecker>>,
    ) -> Result<Self, ServerError> {
        // Used only when a self-signed certificate has to be made.
        let self_signed_names = vec![
            config.service_host.to_string(),
            config.hoster.to_string(),
            "localhost".to_owned(),
        ];
        let (certs, report) = CertStore::load(
            config.tls.clone(),
            config.certs_dir.clone(),
            self_signed_names,
        )?;
        if let TlsSource::SelfSigned { path } = &config.tls {
            tracing::warn!(path = %path.display(), "serving a self-signed certificate: clients will not trust it; set https.cert and https.key for production");
        }
        log_cert_report(&report);
        let certs = Arc::new(certs);
        let tls = TlsAcceptor::from(Arc::new(certs.server_config()?));

        warn_on_shared_addresses(config);
        let signing_source = config.signing.clone().unwrap_or_else(|| config.tls.clone());
        let (signer, signer_status) = ProfileSigner::load(signing_source)?;
        log_signer_status(&signer_status);
        let signer = Arc::new(signer);
        let site = Arc::new(ArcSwap::from_pointee(Site::from_config(config)));
        let auth = Arc::new(crate::auth::Authenticator::from_config(
            &config.auth,
            &directory,
            config.service_host.as_str(),
        )?);
        let state = AppState {
            directory: directory.clone(),
            site: site.clone(),
            limits: config.limits.clone(),
            signer: signer.clone(),
            auth,
        };
        // Per-client tables are shared by both sites; processing slots are not, so a flood on
        // one site leaves the other answering (crate::admission).
        let clients = Arc::new(ClientLimits::new(&config.limits));
        let https_admission = SiteAdmission::new(clients.clone(), &config.limits, true);
        let http_admission = SiteAdmission::new(clients.clone(), &config.limits, false);
        let passwords_checked =
            config.auth.mode == crate::config::AuthMode::Basic && config.auth.imap.is_none();
        let https_app = routes::service_router(state.clone(), https_admission);
        let http_app = routes::redirect_router(state, http_admission);
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let admin_app = admin::router(admin::AdminState {
            directory: directory.clone(),
            site: site.clone(),
            ready: ready.clone(),
            unready_after: config.directory_unready_after,
            checker,
            passwords_checked,
        });

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut http_addrs = Vec::new();
        let mut https_addrs = Vec::new();
        for address in &config.https_listen {
            let listener = bind(*address).await?;
            https_addrs.push(listener.local_addr().map_err(|source| ServerError::Bind {
                address: *address,
                source,
            })?);
            tasks.spawn(listener::serve(
                listener,
                https_app.clone(),
                Some(tls.clone()),
                config.limits.clone(),
                clients.connections.clone(),
                shutdown_rx.clone(),
            ));
        }
        for address in &config.http_listen {
            let listener = bind(*address).await?;
            http_addrs.push(listener.local_addr().map_err(|source| ServerError::Bind {
                address: *address,
                source,
            })?);
            tasks.spawn(listener::serve(
                listener,
                http_app.clone(),
                None,
                config.limits.clone(),
                clients.connections.clone(),
                shutdown_rx.clone(),
            ));
        }
        // The admin API: loopback only (config.rs refuses other addresses), plain HTTP, stopped
        // with the others.
        let mut admin_addrs = Vec::new();
        for address in &config.admin_listen {
            let listener = bind(*address).await?;
            admin_addrs.push(listener.local_addr().map_err(|source| ServerError::Bind {
                address: *address,
                source,
            })?);
            tasks.spawn(listener::serve(
                listener,
                admin_app.clone(),
                None,
                config.limits.clone(),
                clients.connections.clone(),
                shutdown_rx.clone(),
            ));
        }
        let watched = certs.clone();
        let watched_signer = signer.clone();
        let mut stop = shutdown_rx.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(CERT_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                let store = watched.clone();
                match tokio::task::spawn_blocking(move || store.reload_if_changed()).await {
                    Ok(Some(Ok(report))) => {
                        tracing::info!("certificate files changed; reloaded");
                        log_cert_report(&report);
                        reload_signer(watched_signer.clone()).await;
                    }
                    Ok(Some(Err(e))) => tracing::error!(error = %e, "certificate files changed but cannot be loaded; still serving the previous certificates"),
                    Ok(None) | Err(_) => {}
                }
            }
        });
        for address in &https_addrs {
            tracing::info!(%address, service = %config.service_host, "HTTPS AutoDiscover service listening");
        }
        for address in &http_addrs {
            tracing::info!(%address, redirect_host = %config.redirect_host, "HTTP redirect site listening");
        }
        for address in &admin_addrs {
            tracing::info!(%address, "admin API listening (bearer tokens: autodisco token create)");
        }
        ready.store(true, std::sync::atomic::Ordering::Release);
        Ok(Self {
            http_addrs,
            https_addrs,
            admin_addrs,
            certs,
            signer,
            site,
            config: Mutex::new(config.clone()),
            directory,
            shutdown,
            tasks,
        })
    }

    /// Applies the reloadable parts of a new configuration (public URL and host names).
    /// Listen addresses and certificate paths take effect at the next start.
    fn apply_site(&self, config: &Config) {
        self.site.store(Arc::new(Site::from_config(config)));
    }

    /// Re-reads the certificate files now (SIGHUP), off the async threads.
    pub async fn reload_certificates(&self) {
        let store = self.certs.clone();
        match tokio::task::spawn_blocking(move || store.reload()).await {
            Ok(Ok(report)) => {
                tracing::info!("certificates reloaded");
                log_cert_report(&report);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "certificate reload failed; still serving the previous certificates")
            }
            Err(e) => tracing::error!(error = %e, "certificate reload did not finish"),
        }
        reload_signer(self.signer.clone()).await;
    }

    /// Stops accepting, lets requests in flight finish (up to the grace period), and returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(address: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind { address, source })
}

/// Re-reads the profile-signing certificate, off the async threads; on error the previous one
/// keeps signing.
async fn reload_signer(signer: Arc<ProfileSigner>) {
    match tokio::task::spawn_blocking(move || signer.reload()).await {
        // Only a working signer is news here; "unsigned" was said at start.
        Ok(Ok(SignerStatus::Signing { subject })) => {
            tracing::info!(%subject, "profile-signing certificate reloaded")
        }
        Ok(Ok(SignerStatus::Unsigned { reason })) => {
            tracing::debug!(reason, "Apple configuration profiles stay unsigned")
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the profile-signing certificate cannot be reloaded; still signing with the previous one")
        }
        Err(e) => tracing::error!(error = %e, "profile-signing reload did not finish"),
    }
}

fn log_signer_status(status: &SignerStatus) {
    match status {
        SignerStatus::Signing { subject } => {
            tracing::info!(%subject, "Apple configuration profiles are signed")
        }
        SignerStatus::Unsigned { reason } => {
            tracing::warn!(
                reason,
                "Apple configuration profiles are served UNSIGNED: devices show them as unverified; configure a certificate from a public CA (https.cert or [signing])"
            )
        }
    }
}

fn log_cert_report(report: &crate::tls::LoadReport) {
    if report.per_domain > 0 {
        tracing::info!(count = report.per_domain, "per-domain certificates loaded");
    }
    for skipped in &report.skipped {
        tracing::warn!(error = %skipped, "per-domain certificate skipped");
    }
    if report.kept_previous > 0 {
        tracing::warn!(
            count = report.kept_previous,
            "names whose new certificate file is unusable keep their previous certificate"
        );
    }
}

/// If `autodiscover.CUSTOMER` (the redirect site) also accepts TLS, Outlook meets the hoster's
/// certificate there and stops at a warning instead of following the redirect. The two must
/// live on different IP addresses, with port 443 closed on the redirect site's.
fn warn_on_shared_addresses(config: &Config) {
    for http in &config.http_listen {
        for https in &config.https_listen {
            let shared = http.ip() == https.ip()
                || http.ip().is_unspecified()
                || https.ip().is_unspecified();
            if shared {
                tracing::warn!(
                    http = %http, https = %https,
                    "the redirect site and the HTTPS service share an IP address: in production give the redirect site its own address with port 443 closed, or Outlook stops at a certificate warning"
                );
            }
        }
    }
}
