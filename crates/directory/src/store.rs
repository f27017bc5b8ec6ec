//! Durable storage of the directory in SQLite or PostgreSQL, through sqlx's `Any` driver.
//!
//! One code path serves both databases: the SQL is written in the dialect both understand
//! (TEXT and BIGINT columns, `$n` placeholders, plain INSERT/UPDATE/DELETE), and the schema
//! comes from `crates/directory/migrations/`, applied at connect. Every write of served data
//! (everything but `health`, the last live check of each domain) runs in
//! one transaction that first bumps the `directory_revision` counter; taking that row first both
//! tells readers that something changed and serialises writers, so the checks a write makes
//! (does the profile exist, is the target an alias, ...) still hold when it commits. The same
//! transaction records who changed what in the audit log (`audit`), so no change goes
//! unrecorded and no record outlives a rolled-back change.

mod audit;
mod domains;
mod file_mode;
mod health;
mod load;
mod passwords;
mod profiles;
mod records;
mod tokens;
mod transfer;
mod users;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Transaction};

use crate::admin::Actor;
use crate::error::DirectoryError;

pub use health::{DomainHealth, HealthStatus};

/// The schema, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a query waits for a pooled connection (including connecting) before it reports the
/// database unreachable. Short, so the refresher notices an outage promptly and a CLI command
/// fails instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// A SQLite file, in WAL mode so one process can read while another writes.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// The directory's database: every read and write of profiles, domains and user overrides.
///
/// Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl fmt::Debug for Store {
    // The URL may carry a password, so it is not kept and not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` and brings the schema up to date.
    ///
    /// - `sqlite://PATH` (relative) or `sqlite:///ABSOLUTE/PATH`: the file is created on first
    ///   start (`mode=rwc` is added unless the URL sets a mode) and switched to WAL; writers wait
    ///   up to 5 s for each other (sqlx's busy timeout), so the server and a CLI command can
    ///   share the file. It holds password hashes, so it is created with mode `0600` and an
    ///   existing file readable by others is tightened to `0600` with a warning.
    /// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?...]`.
    pub async fn connect(url: &str) -> Result<Self, DirectoryError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = prepare_url(url)?;
        let in_memory =
            backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        if backend == Backend::Sqlite
            && !in_memory
            && let Some(path) = file_mode::sqlite_path(&url)
        {
            file_mode::protect(&path, url.contains("mode=rwc"))?;
        }
        let mut options = AnyPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .max_connections(match backend {
                // SQLite has one writer anyway; a few connections let reads overlap.
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            });
        if in_memory {
            // Every new connection would open a new, empty in-memory database: keep exactly
            // one, forever.
            options = options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = options.connect(&url).await?;
        if backend == Backend::Sqlite && !in_memory {
            // WAL lets readers and one writer work at the same time across processes. The mode
            // is stored in the file, so switch only if needed: switching takes an exclusive lock
            // the busy timeout does not wait for.
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&pool)
                .await?;
            if !mode.eq_ignore_ascii_case("wal") {
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await?;
            }
        }
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, backend })
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; later calls fail with [`DirectoryError::Unreachable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The directory revision: it changes with every committed write, from any process.
    pub async fn revision(&self) -> Result<u64, DirectoryError> {
        let mut conn = self.pool.acquire().await?;
        read_revision(&mut conn).await
    }

    /// Starts a write by `actor`: a transaction that has already bumped the revision (see the
    /// module doc) and records audit entries under it.
    async fn begin_write<'a>(&self, actor: &'a Actor) -> Result<Write<'a>, DirectoryError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE directory_revision SET revision = revision + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let revision = read_revision(&mut tx).await?;
        Ok(Write {
            tx,
            revision,
            next_seq: 0,
            actor,
        })
    }
}

/// A write transaction: the revision it will commit as, and the actor its audit entries name.
/// It derefs to the connection, so queries run on it as on a plain transaction; dropping it
/// without [`Write::commit`] rolls the change and its audit entries back together.
struct Write<'a> {
    tx: Transaction<'static, Any>,
    revision: u64,
    next_seq: u64,
    actor: &'a Actor,
}

impl Write<'_> {
    async fn commit(self) -> Result<(), DirectoryError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Deref for Write<'_> {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for Write<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

async fn read_revision(conn: &mut AnyConnection) -> Result<u64, DirectoryError> {
    let revision: i64 = sqlx::query_scalar("SELECT revision FROM directory_revision WHERE id = 1")
        .fetch_one(conn)
        .await?;
    // The counter starts at 0 and only grows, so it is never negative.
    Ok(revision as u64)
}

/// Picks the backend from the scheme and adds what the backend needs to the URL.
fn prepare_url(url: &str) -> Result<(Backend, String), DirectoryError> {
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            let query = url.split_once('?').map(|(_, q)| q);
            let has_mode = query.is_some_and(|q| q.split('&').any(|p| p.starts_with("mode=")));
            let url = match (query, has_mode) {
                (_, true) => url.to_owned(),
                (Some(_), false) => format!("{url}&mode=rwc"),
                (None, false) => format!("{url}?mode=rwc"),
            };
            Ok((Backend::Sqlite, url))
        }
        "postgres" | "postgresql" => Ok((Backend::Postgres, url.to_owned())),
        _ => Err(DirectoryError::UnsupportedUrl {
            scheme: scheme.chars().take(20).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_what_their_backend_needs() {
        assert_eq!(
            prepare_url("sqlite:///var/lib/autodisco/dir.db").unwrap(),
            (
                Backend::Sqlite,
                "sqlite:///var/lib/autodisco/dir.db?mode=rwc".into()
            )
        );
        assert_eq!(
            prepare_url("sqlite://dir.db?cache=private").unwrap().1,
            "sqlite://dir.db?cache=private&mode=rwc"
        );
        assert_eq!(
            prepare_url("sqlite://dir.db?mode=ro").unwrap().1,
            "sqlite://dir.db?mode=ro"
        );
        assert_eq!(
            prepare_url("postgres://root@127.0.0.1/test").unwrap().0,
            Backend::Postgres
        );
        match prepare_url("mysql://user:secret@host/db") {
            Err(DirectoryError::UnsupportedUrl { scheme }) => assert_eq!(scheme, "mysql"),
            other => panic!("{other:?}"),
        }
    }
}
