//! autodisco-directory: which domains autodisco answers for, and with what.
//!
//! The data model: named service profiles ([`autodisco_proto::ServiceProfile`]), hosted primary
//! domains using a profile, alias domains pointing at a primary, and per-user overrides (display
//! name, login name, or a redirect). It lives in SQLite or PostgreSQL; requests are answered from
//! an immutable in-memory [`Snapshot`] that a background refresher replaces when the database
//! changes.
//!
//! - [`store`]: the database ([`Store`]): connect and migrate, every read and write, and loading
//!   a snapshot.
//! - [`snapshot`]: the immutable, compact in-memory directory ([`Snapshot`]) and its builder;
//!   [`Snapshot::resolve`] turns an address into an [`autodisco_proto::Answer`].
//! - [`live`]: the served directory ([`LiveDirectory`]): lock-free access to the current
//!   snapshot and the refresher that keeps it fresh.
//! - [`admin`]: who changes the directory ([`Actor`]), the audit log's entries
//!   ([`AuditEntry`]) and the admin API's tokens ([`ApiToken`], [`TokenScope`]).
//! - [`automx2`]: reading an automx2 database for import ([`automx2::read_automx2`]).
//! - [`model`]: the records the store hands out ([`DomainInfo`], [`UserOverride`], ...).
//! - [`transfer`]: bulk import and export ([`DirectoryData`], [`Store::import`],
//!   [`Store::export`]).
//! - [`error`]: what can go wrong ([`DirectoryError`]), worded for the hoster's admin.
#![warn(missing_docs)]

pub mod admin;
pub mod automx2;
pub mod error;
pub mod live;
pub mod model;
pub mod snapshot;
pub mod store;
pub mod transfer;

pub use admin::{Actor, ApiToken, AuditEntry, TokenScope, check_token_name, format_time};
pub use error::{DirectoryError, ObjectKind, OverrideProblem};
pub use live::{DEFAULT_POLL_INTERVAL, DirectoryHealth, LiveDirectory};
pub use model::{
    DomainInfo, DomainKind, DomainQuery, DomainRemoval, DomainStatus, DomainUpdate, ProfileEntry,
    Redirect, RemovedDomain, UnknownStatus, Upsert, UserOverride, check_profile_name,
    profile_version,
};
pub use snapshot::{Snapshot, SnapshotBuilder, SnapshotCounts};
pub use store::{Backend, DomainHealth, HealthStatus, Store};
pub use transfer::{
    DirectoryData, DomainRecord, DomainTarget, ImportCounts, ImportProblem, ImportReport, Section,
};
