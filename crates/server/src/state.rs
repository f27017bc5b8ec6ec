//! What every handler shares: the live directory and the site's settings.

use std::sync::Arc;

use arc_swap::ArcSwap;
use autodisco_directory::LiveDirectory;
use autodisco_proto::Domain;

use crate::config::{Config, Limits};

/// The parts of the configuration handlers read; swapped as a whole on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Origin of the HTTPS service (`https://autodiscover.HOSTER`), the base of every redirect.
    pub public_url: String,
    /// The HTTPS service's host name.
    pub service_host: Domain,
    /// The redirect site's host name.
    pub redirect_host: Domain,
}

impl Site {
    /// The site settings of a configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            public_url: config.public_url.clone(),
            service_host: config.service_host.clone(),
            redirect_host: config.redirect_host.clone(),
        }
    }
}

/// Shared state of the routers.
#[derive(Clone)]
pub struct AppState {
    /// The directory snapshot source.
    pub directory: LiveDirectory,
    /// The site settings in force.
    pub site: Arc<ArcSwap<Site>>,
    /// Sizes and timeouts.
    pub limits: Limits,
}
