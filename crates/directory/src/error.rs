//! Everything that can go wrong in the directory, worded for the hoster's admin who reads it.

use std::fmt;

use autodisco_proto::{Domain, ProfileError};
use thiserror::Error;

/// What kind of object an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A service profile.
    Profile,
    /// A hosted domain, primary or alias.
    Domain,
    /// A per-user override.
    UserOverride,
    /// A user's password (for `auth = "basic"`).
    Password,
    /// An admin API token.
    Token,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Profile => "profile",
            Self::Domain => "domain",
            Self::UserOverride => "user override",
            Self::Password => "password for",
            Self::Token => "token",
        })
    }
}

/// Why a per-user override was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OverrideProblem {
    /// Nothing to override: no display name, no login name, no redirect.
    #[error(
        "it sets nothing; give a display name, a login name or a redirect (to drop an override, remove it)"
    )]
    Empty,
    /// A redirect URL that is not `https://`: clients refuse to follow anything else.
    #[error("the redirect URL must start with https://, got {url:?}")]
    RedirectUrlNotHttps {
        /// The URL as given.
        url: String,
    },
    /// A redirect to the same mailbox: clients would loop until their hop limit.
    #[error("it redirects the address to itself")]
    RedirectToSelf,
    /// An empty (or blank) display or login name.
    #[error("the {field} is empty")]
    FieldEmpty {
        /// `display name` or `login name`.
        field: &'static str,
    },
    /// A display or login name longer than any client shows or any server accepts.
    #[error("the {field} is {length} characters long; at most {max} are allowed")]
    FieldTooLong {
        /// `display name`, `login name` or `redirect URL`.
        field: &'static str,
        /// Its length in characters.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// A control character (newline, tab, ...) that would corrupt the XML or JSON answers.
    #[error("the {field} contains a control character")]
    ControlCharacter {
        /// `display name`, `login name` or `redirect URL`.
        field: &'static str,
    },
}

/// Which list of a `DirectoryData` an item or a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// `profiles`.
    Profiles,
    /// `domains`.
    Domains,
    /// `users`.
    Users,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Profiles => "profiles",
            Self::Domains => "domains",
            Self::Users => "users",
        })
    }
}

/// Why one item of an import is refused: the caller maps `(section, index)` back to its file's
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    /// The list the item is in.
    pub section: Section,
    /// Its position in that list, from 0.
    pub index: usize,
    /// What is wrong, in words.
    pub message: String,
}

/// An error from the directory's store, snapshot builder or refresher.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The database URL names no backend we support.
    #[error(
        "unsupported directory database URL scheme {scheme:?}; use sqlite://PATH or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl {
        /// The scheme given (the rest of the URL is left out: it may hold a password).
        scheme: String,
    },
    /// The database cannot be reached: connection refused or dropped, file cannot be opened,
    /// database missing, pool closed or exhausted.
    #[error("the directory database cannot be reached: {source}")]
    Unreachable {
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// The SQLite file could not be created `0600` or its mode not tightened.
    #[error("cannot protect the directory file {path} (it holds password hashes): {source}")]
    FileMode {
        /// The file.
        path: String,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },
    /// The database answered with an error.
    #[error("the directory database reported an error: {source}")]
    Database {
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// The schema migrations could not be applied.
    #[error("the directory database schema could not be brought up to date: {source}")]
    Migration {
        /// What the migrator reported.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// No such profile, domain or user override.
    #[error("{kind} {name} does not exist")]
    NotFound {
        /// What was looked for.
        kind: ObjectKind,
        /// Its name.
        name: String,
    },
    /// A profile, domain or user override with that name exists already.
    #[error("{kind} {name} already exists")]
    AlreadyExists {
        /// What was to be created.
        kind: ObjectKind,
        /// Its name.
        name: String,
    },
    /// A profile name that is empty, too long or has characters other than `A-Z a-z 0-9 . _ -`.
    #[error(
        "{name:?} is not a valid profile name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidProfileName {
        /// The name as given.
        name: String,
    },
    /// A profile that fails validation.
    #[error("profile {name} is invalid: {}", join_problems(problems))]
    InvalidProfile {
        /// The profile's name.
        name: String,
        /// Every problem found.
        problems: Vec<ProfileError>,
    },
    /// A stored profile that no longer deserialises (edited by hand, or written by a newer
    /// version). The refresher keeps the last good snapshot while this persists.
    #[error("stored profile {name} cannot be read: {error}; fix it with `profile put`")]
    CorruptProfile {
        /// The profile's name.
        name: String,
        /// What serde reported.
        error: serde_json::Error,
    },
    /// The profile is still used by domains, so it cannot be removed.
    #[error(
        "profile {profile} is still used by {total} domain(s) ({}{}); move them to another profile first",
        join_domains(domains),
        if *total as usize > domains.len() { ", ..." } else { "" }
    )]
    ProfileInUse {
        /// The profile.
        profile: String,
        /// The first few domains using it.
        domains: Vec<Domain>,
        /// How many domains use it in all.
        total: u64,
    },
    /// An alias was to point at another alias; aliases must name a primary domain.
    #[error(
        "{alias} cannot be an alias of {target}: {target} is itself an alias of {target_primary}; point {alias} at {target_primary}"
    )]
    AliasOfAlias {
        /// The alias to be created.
        alias: Domain,
        /// The alias it was to point at.
        target: Domain,
        /// The primary domain `target` points at.
        target_primary: Domain,
    },
    /// The operation needs a primary domain, and this is an alias.
    #[error("{alias} is an alias of {primary}; change {primary} instead")]
    IsAlias {
        /// The alias given.
        alias: Domain,
        /// Its primary domain.
        primary: Domain,
    },
    /// A primary domain still has aliases or user overrides, and removal was not forced.
    #[error(
        "domain {domain} still has {} alias(es){}{} and {users} user override(s); remove them first or remove with cascade",
        aliases.len(),
        if aliases.is_empty() { "" } else { " " },
        join_domains(aliases)
    )]
    DomainHasDependents {
        /// The domain to be removed.
        domain: Domain,
        /// Its aliases.
        aliases: Vec<Domain>,
        /// How many user overrides it has.
        users: u64,
    },
    /// A per-user override that makes no sense.
    #[error("the override for {address} is refused: {problem}")]
    InvalidOverride {
        /// The address it was for.
        address: String,
        /// What is wrong with it.
        #[source]
        problem: OverrideProblem,
    },
    /// A password hash that is not a PHC string (`$argon2id$...`) of sane length.
    #[error("the password hash is not a PHC string such as $argon2id$...")]
    InvalidPasswordHash,
    /// A token name that is not plain, or is one of the built-in actors `cli` and `config`.
    #[error(
        "{name:?} is not a valid token name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, other than cli and config"
    )]
    InvalidTokenName {
        /// The name as given (at most 80 characters of it).
        name: String,
    },
    /// A token scope other than `read` and `write`.
    #[error("unknown token scope {scope:?}; use read or write")]
    InvalidTokenScope {
        /// The scope as given (at most 20 characters of it).
        scope: String,
    },
    /// The system's random source failed, so no token could be made.
    #[error("the system's random number source failed: {reason}")]
    Randomness {
        /// What the system reported.
        reason: String,
    },
    /// A conditional change (HTTP If-Match) found the object changed since it was read.
    #[error("{kind} {name} changed since it was read (its version is now {current})")]
    Changed {
        /// What was to be changed.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// Its current version tag, or `none` when it no longer exists.
        current: String,
    },
    /// An import was refused, nothing written: every item that failed its checks.
    #[error(
        "the import is refused, nothing was changed: {} problem(s), the first: {}",
        problems.len(),
        problems.first().map_or("", |p| p.message.as_str())
    )]
    ImportRefused {
        /// Every problem, by section and position.
        problems: Vec<ImportProblem>,
    },
    /// The directory outgrew the compact snapshot's index width.
    #[error("the directory holds more {what} than a snapshot can index (at most {max})")]
    TooLarge {
        /// `domains`, `profiles` or `bytes of domain names`.
        what: &'static str,
        /// The limit.
        max: u64,
    },
}

fn join_problems(problems: &[ProfileError]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn join_domains(domains: &[Domain]) -> String {
    domains
        .iter()
        .map(Domain::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl DirectoryError {
    /// Whether the error means "the database is not there right now" rather than "the request
    /// or the data is wrong": the refresher retries the former by itself.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

impl From<sqlx::Error> for DirectoryError {
    fn from(source: sqlx::Error) -> Self {
        if is_unreachable(&source) {
            Self::Unreachable { source }
        } else {
            Self::Database { source }
        }
    }
}

impl From<sqlx::migrate::MigrateError> for DirectoryError {
    fn from(source: sqlx::migrate::MigrateError) -> Self {
        match source {
            sqlx::migrate::MigrateError::Execute(inner) if is_unreachable(&inner) => {
                Self::Unreachable { source: inner }
            }
            source => Self::Migration { source },
        }
    }
}

/// Sorts driver errors into "cannot reach the database" and everything else, so an outage is
/// reported as one and not as a puzzling SQL error.
fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLite reports extended result codes; the primary code is the low byte:
                // SQLITE_IOERR (10), SQLITE_CANTOPEN (14), SQLITE_NOTADB (26).
                code.parse::<i32>()
                    .is_ok_and(|code| matches!(code & 0xff, 10 | 14 | 26))
            } else {
                // PostgreSQL: connection exceptions (class 08), shutdown or termination by an
                // admin (57P01..57P03), missing database (3D000), too many connections (53300),
                // and "database is not currently accepting connections" (55000).
                code.starts_with("08")
                    || matches!(
                        &*code,
                        "57P01" | "57P02" | "57P03" | "3D000" | "53300" | "55000"
                    )
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_objects() {
        let d = |s| Domain::parse(s).unwrap();
        let e = DirectoryError::ProfileInUse {
            profile: "standard".into(),
            domains: vec![d("a.example"), d("b.example")],
            total: 3,
        };
        assert_eq!(
            e.to_string(),
            "profile standard is still used by 3 domain(s) (a.example, b.example, ...); move them to another profile first"
        );
        let e = DirectoryError::DomainHasDependents {
            domain: d("a.example"),
            aliases: vec![d("b.example")],
            users: 2,
        };
        assert_eq!(
            e.to_string(),
            "domain a.example still has 1 alias(es) b.example and 2 user override(s); remove them first or remove with cascade"
        );
        let e = DirectoryError::NotFound {
            kind: ObjectKind::UserOverride,
            name: "jane@a.example".into(),
        };
        assert_eq!(e.to_string(), "user override jane@a.example does not exist");
        let e = DirectoryError::AliasOfAlias {
            alias: d("c.example"),
            target: d("b.example"),
            target_primary: d("a.example"),
        };
        assert!(e.to_string().contains("point c.example at a.example"));
    }

    #[test]
    fn io_errors_are_unreachable() {
        let e = DirectoryError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(e.is_unreachable());
        assert!(!DirectoryError::from(sqlx::Error::RowNotFound).is_unreachable());
    }
}
