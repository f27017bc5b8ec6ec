//! Bulk import and export: the whole directory (or a part of it) as plain data.
//!
//! The file formats (CSV, JSON, automx2's database) are read and written by the binary; the
//! store takes and gives these types, checks every item against the file and the database
//! together, and applies all of it in one transaction or nothing.

use autodisco_proto::{Domain, ServiceProfile};

pub use crate::error::{ImportProblem, Section};
use crate::model::{DomainStatus, UserOverride};

/// What an import brings, or an export holds, in the order it is applied: profiles, domains
/// (primaries before their aliases, whatever the order given), user overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectoryData {
    /// Named service profiles.
    pub profiles: Vec<(String, ServiceProfile)>,
    /// Domains, primaries and aliases.
    pub domains: Vec<DomainRecord>,
    /// Per-user overrides.
    pub users: Vec<UserOverride>,
}

/// One domain as imported or exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    /// The canonical name.
    pub name: Domain,
    /// Its own status.
    pub status: DomainStatus,
    /// Its profile, or the primary it is an alias of.
    pub target: DomainTarget,
}

/// What a domain is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainTarget {
    /// A primary domain with this profile.
    Profile(String),
    /// An alias of this primary domain.
    AliasOf(Domain),
}

/// How many items of one kind an import creates, changes, or finds as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// New.
    pub created: u64,
    /// Existing, different before.
    pub changed: u64,
    /// Existing and identical: nothing to do.
    pub unchanged: u64,
}

/// What an import did, or with `dry_run` would do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Profiles.
    pub profiles: ImportCounts,
    /// Domains.
    pub domains: ImportCounts,
    /// User overrides.
    pub users: ImportCounts,
}
