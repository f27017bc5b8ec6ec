//! What the directory decided for one address, in a form every dialect renders.

use std::sync::Arc;

use uuid::Uuid;

use crate::address::{Domain, EmailAddress};
use crate::profile::{MailServer, ServiceProfile, expand_placeholders};

/// The directory's decision for one requested address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The address is hosted: here are its settings.
    Settings(AccountSettings),
    /// The mailbox moved: discovery restarts at this address ([MS-OXDSCLI] 2.2.4.1.1.2.1.3 redirectAddr).
    RedirectAddr(EmailAddress),
    /// The mailbox is served by another AutoDiscover endpoint (redirectUrl, an https URL).
    RedirectUrl(String),
    /// Not a hosted domain, or a suspended one.
    NotHosted,
}

/// Settings for one hosted address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    /// The address in its primary domain: what `AutoDiscoverSMTPAddress` carries. For an address
    /// in an alias domain it differs from the requested one.
    pub address: EmailAddress,
    /// The display name from a per-user override; without one, clients keep what the user typed.
    pub display_name: Option<String>,
    /// A login name from a per-user override; replaces every server's username template.
    pub login_name: Option<String>,
    /// Stable per primary domain ([MS-OXDSCLI] 2.2.4.1.1.1.4 DeploymentId).
    pub deployment_id: Uuid,
    /// The domain's service profile.
    pub profile: Arc<ServiceProfile>,
}

impl AccountSettings {
    /// Builds the settings of `address` (already in its primary domain) under `profile`.
    pub fn new(address: EmailAddress, profile: Arc<ServiceProfile>) -> Self {
        let deployment_id = deployment_id(address.domain());
        Self {
            address,
            display_name: None,
            login_name: None,
            deployment_id,
            profile,
        }
    }

    /// The login name for `server`: the override, or the server's template expanded.
    pub fn username_for(&self, server: &MailServer) -> String {
        match &self.login_name {
            Some(login) => login.clone(),
            None => expand_placeholders(&server.username, &self.address),
        }
    }

    /// A profile URL with placeholders expanded for this address.
    pub fn url(&self, template: &str) -> String {
        expand_placeholders(template, &self.address)
    }

    /// The LegacyDN autodisco hands out for this address (see [`legacy_dn`]).
    pub fn legacy_dn(&self) -> String {
        legacy_dn(&self.address)
    }
}

/// Namespace for name-based DeploymentIds, so they are stable across restarts and instances
/// without storing anything.
const DEPLOYMENT_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c3a_8e4b_4d7a_9c0e_5b1f_a2d3_c4e5);

/// The DeploymentId of a domain: a UUIDv5 of its canonical name.
pub fn deployment_id(domain: &Domain) -> Uuid {
    Uuid::new_v5(&DEPLOYMENT_NAMESPACE, domain.as_str().as_bytes())
}

const LEGACY_DN_PREFIX: &str =
    "/o=autodisco/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=";

/// The LegacyDN of an address. Hosted mail systems have no X.500 directory, so the DN carries the
/// address itself: a later request that sends only this LegacyDN ([MS-OXDSCLI] 3.2.5.1, where
/// LegacyDN wins over EMailAddress) resolves to the same mailbox.
pub fn legacy_dn(address: &EmailAddress) -> String {
    format!("{LEGACY_DN_PREFIX}{address}")
}

/// The address inside a LegacyDN made by [`legacy_dn`]; `None` for any other DN.
pub fn address_from_legacy_dn(dn: &str) -> Option<EmailAddress> {
    let prefix = dn.get(..LEGACY_DN_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(LEGACY_DN_PREFIX) {
        return None;
    }
    EmailAddress::parse(&dn[LEGACY_DN_PREFIX.len()..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_id_is_stable_and_per_domain() {
        let a = Domain::parse("a.example").unwrap();
        let b = Domain::parse("b.example").unwrap();
        assert_eq!(
            deployment_id(&a),
            deployment_id(&Domain::parse("A.example.").unwrap())
        );
        assert_ne!(deployment_id(&a), deployment_id(&b));
    }

    #[test]
    fn legacy_dn_round_trips() {
        let address = EmailAddress::parse("jane@a.example").unwrap();
        assert_eq!(address_from_legacy_dn(&legacy_dn(&address)), Some(address));
        assert_eq!(address_from_legacy_dn("/o=Contoso/cn=jane"), None);
    }

    #[test]
    fn username_uses_override_first() {
        let profile = Arc::new(ServiceProfile::default_for_hoster("hoster.example"));
        let mut settings = AccountSettings::new(
            EmailAddress::parse("jane@a.example").unwrap(),
            profile.clone(),
        );
        assert_eq!(settings.username_for(&profile.imap[0]), "jane@a.example");
        settings.login_name = Some("u1234".into());
        assert_eq!(settings.username_for(&profile.imap[0]), "u1234");
    }
}
