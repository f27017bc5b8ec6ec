//! Bringing the directory in line with the configuration, at start and on reload.

use autodisco_directory::{Actor, DirectoryError, Store};
use autodisco_proto::ServiceProfile;

use crate::config::Config;

/// The profile `domain add` uses when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// Writes the config's profiles into the directory (the config wins for the names it defines).
/// On a fresh installation without any profile, creates [`DEFAULT_PROFILE`] from the hoster name
/// (IMAP 993, SMTP 465 and 587, EWS, OAB, OOF and free/busy at `mail.HOSTER`) and logs it, so the
/// embedded defaults answer something real.
pub async fn prepare_directory(config: &Config, store: &Store) -> Result<(), DirectoryError> {
    write_config_profiles(config, store).await?;
    ensure_default_profile(config, store).await
}

/// Writes the profiles the config defines, where the directory's differ.
pub async fn write_config_profiles(config: &Config, store: &Store) -> Result<(), DirectoryError> {
    for (name, profile) in &config.profiles {
        let current = store.get_profile(name).await;
        if current.as_ref().ok() != Some(profile) {
            store.put_profile(&Actor::Config, name, profile).await?;
            tracing::info!(profile = %name, "profile from the config written to the directory");
        }
    }
    Ok(())
}

/// Writes the config's profiles that the directory does not have yet, leaving existing ones as
/// they are (for admin commands: a `profile set` since the last start must not be undone).
pub async fn add_missing_config_profiles(
    config: &Config,
    store: &Store,
) -> Result<(), DirectoryError> {
    for (name, profile) in &config.profiles {
        if matches!(
            store.get_profile(name).await,
            Err(DirectoryError::NotFound { .. })
        ) {
            store.put_profile(&Actor::Config, name, profile).await?;
        }
    }
    Ok(())
}

/// Creates [`DEFAULT_PROFILE`] when neither the config nor the directory has any profile.
pub async fn ensure_default_profile(config: &Config, store: &Store) -> Result<(), DirectoryError> {
    if config.profiles.is_empty() && store.list_profiles().await?.is_empty() {
        let profile = ServiceProfile::default_for_hoster(config.hoster.as_str());
        store
            .put_profile(&Actor::Config, DEFAULT_PROFILE, &profile)
            .await?;
        tracing::info!(
            profile = DEFAULT_PROFILE,
            mail_host = %profile.imap[0].host,
            "no profile defined: created the default profile (IMAP 993, SMTP 465 and 587, EWS/OAB/OOF/free-busy) from the hoster name"
        );
    }
    Ok(())
}
