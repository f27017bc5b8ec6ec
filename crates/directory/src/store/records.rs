//! The DNS records a hosted domain publishes, computed from what the directory stores.

use autodisco_proto::{Domain, DomainRecords, HosterNames};

use super::Store;
use crate::error::{DirectoryError, ObjectKind};
use crate::model::DomainKind;

impl Store {
    /// The records of `domain` ([`DomainRecords::compute`]): an alias gets its primary's
    /// profile. The one place the CLI (`domain add`, `domain show`, `dns records`, `domain
    /// check`) and the admin API (`/v1/domains/{name}/records`) take them from.
    pub async fn domain_records(
        &self,
        domain: &Domain,
        hoster: &HosterNames,
    ) -> Result<DomainRecords, DirectoryError> {
        let info = self.get_domain(domain).await?;
        let (primary, profile) = match info.kind {
            DomainKind::Primary { profile, .. } => (info.name.clone(), profile),
            DomainKind::Alias { primary } => match self.get_domain(&primary).await?.kind {
                DomainKind::Primary { profile, .. } => (primary, profile),
                // The store never links an alias to an alias.
                DomainKind::Alias { .. } => {
                    return Err(DirectoryError::NotFound {
                        kind: ObjectKind::Domain,
                        name: primary.to_string(),
                    });
                }
            },
        };
        let profile = self.get_profile(&profile).await?;
        Ok(DomainRecords::compute(domain, &primary, &profile, hoster))
    }
}
