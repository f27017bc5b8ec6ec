//! SIGHUP: what a new configuration file may change while the service runs.
//!
//! The file is read and checked as a whole before anything changes; a file that is refused, or
//! that the directory cannot take, leaves the old configuration in force. Profiles and the site
//! (public URL, host names) change at once. Listen addresses, certificate paths, limits and the
//! poll interval are bound at start, so a change to them is reported and waits for a restart;
//! another database is refused outright, since the running directory would silently disagree
//! with the file.

use thiserror::Error;

use super::RunningServer;
use crate::bootstrap;
use crate::config::{Config, ConfigError};

/// Why a reloaded configuration was not applied.
#[derive(Debug, Error)]
enum ReloadError {
    #[error("configuration refused; keeping the old one: {0}")]
    Refused(#[from] ConfigError),
    #[error(
        "the new configuration names another database; that needs a restart, so the old configuration stays"
    )]
    OtherDatabase,
    #[error(
        "reloaded configuration could not be applied to the directory; keeping the old one: {0}"
    )]
    Directory(#[from] autodisco_directory::DirectoryError),
}

impl RunningServer {
    /// Re-reads the configuration file (when the service was started from one) and the
    /// certificates, keeping what is in force wherever the new version cannot be used.
    pub async fn reload(&self) {
        match self.reload_config().await {
            Ok(Some(path)) => tracing::info!(config = %path, "configuration reloaded"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "configuration not reloaded"),
        }
        self.reload_certificates().await;
    }

    /// Applies the configuration file anew; `Ok(None)` when there is no file to re-read.
    async fn reload_config(&self) -> Result<Option<String>, ReloadError> {
        let current = self.config.lock().expect("config lock").clone();
        let Some(path) = current.source.clone() else {
            return Ok(None);
        };
        let new = Config::load(&path)?;
        if new.database != current.database {
            return Err(ReloadError::OtherDatabase);
        }
        bootstrap::prepare_directory(&new, self.directory.store()).await?;
        if needs_restart(&current, &new) {
            tracing::warn!(
                "listen addresses, certificate paths, limits, the poll interval or the DNS servers changed: those take effect at the next restart"
            );
        }
        self.apply_site(&new);
        *self.config.lock().expect("config lock") = new;
        Ok(Some(path.display().to_string()))
    }
}

/// Whether `new` changes anything that is bound when the service starts.
fn needs_restart(current: &Config, new: &Config) -> bool {
    new.http_listen != current.http_listen
        || new.https_listen != current.https_listen
        || new.admin_listen != current.admin_listen
        || new.tls != current.tls
        || new.certs_dir != current.certs_dir
        || new.limits != current.limits
        || new.directory_poll != current.directory_poll
        || new.dns_servers != current.dns_servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_start_time_settings_need_a_restart() {
        let current = Config::embedded_defaults();
        let mut new = current.clone();
        new.public_url = "https://elsewhere.example".into();
        assert!(!needs_restart(&current, &new));
        new.limits.per_ip_connections += 1;
        assert!(needs_restart(&current, &new));
    }
}
