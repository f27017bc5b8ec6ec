//! What every handler shares: the live directory and the site's settings.

use std::sync::Arc;

use arc_swap::ArcSwap;
use autodisco_directory::LiveDirectory;
use autodisco_proto::{Domain, HosterNames};

use crate::auth::Authenticator;
use crate::config::{Config, Limits};
use crate::signing::ProfileSigner;

/// The parts of the configuration handlers read; swapped as a whole on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Site {
    /// Origin of the HTTPS service (`https://autodiscover.HOSTER`), the base of every redirect.
    pub public_url: String,
    /// The `Id` of error documents: identifies the answering service ([MS-ASCMD] 2.2.3.63),
    /// stable across restarts and instances of the same service.
    pub server_id: u32,
    /// The hoster's domain: Apple profile identifiers are made under its reverse-DNS name.
    pub hoster: Domain,
    /// The names customers' DNS records point at (the admin API's `records`).
    pub record_targets: HosterNames,
}

impl Site {
    /// The site settings of a configuration.
    pub(crate) fn from_config(config: &Config) -> Self {
        Self {
            public_url: config.public_url.clone(),
            server_id: server_id(&config.service_host),
            hoster: config.hoster.clone(),
            record_targets: config.record_targets(),
        }
    }
}

/// A stable 32-bit FNV-1a hash of the service's host name.
fn server_id(service_host: &Domain) -> u32 {
    service_host
        .as_str()
        .bytes()
        .fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        })
}

/// Shared state of the routers.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The directory snapshot source.
    pub directory: LiveDirectory,
    /// The site settings in force.
    pub site: Arc<ArcSwap<Site>>,
    /// Sizes and timeouts.
    pub limits: Limits,
    /// Signs Apple configuration profiles (or knows they go out unsigned).
    pub signer: Arc<ProfileSigner>,
    /// Checks credentials when `auth = "basic"`.
    pub auth: Arc<Authenticator>,
}
