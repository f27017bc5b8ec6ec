//! Loading the whole directory into a [`Snapshot`].

use std::time::Instant;

use futures_util::TryStreamExt;
use sqlx::{Executor, Row};

use super::domains::{canonical, parse_status};
use super::profiles::parse_profile;
use super::users::{USER_COLUMNS, user_from_row};
use super::{Backend, Store, read_revision};
use crate::error::DirectoryError;
use crate::snapshot::{Snapshot, SnapshotBuilder};

impl Store {
    /// Reads the whole directory, from one consistent view of the database, into a snapshot.
    ///
    /// Rows are streamed straight into the snapshot's compact tables, so memory stays close to
    /// the snapshot's own size even at millions of domains. A profile that cannot be read fails
    /// the whole load ([`DirectoryError::CorruptProfile`]): answering its domains as not hosted
    /// would be an outage. A domain or override row edited into nonsense by hand is skipped
    /// with a warning, since it could never match a request anyway.
    pub async fn load_snapshot(&self) -> Result<Snapshot, DirectoryError> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // Under PostgreSQL's default READ COMMITTED each query below would see the writes
            // committed meanwhile; one snapshot for the whole load keeps it consistent. A SQLite
            // read transaction sees one state of the file by itself.
            (&mut *tx)
                .execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
        }
        let revision = read_revision(&mut tx).await?;
        let sizes = sqlx::query("SELECT COUNT(*), COALESCE(SUM(LENGTH(name)), 0) FROM domains")
            .fetch_one(&mut *tx)
            .await?;
        let count: i64 = sizes.try_get(0)?;
        let name_bytes: i64 = sizes.try_get(1)?;
        let mut builder = SnapshotBuilder::new(revision);
        builder.reserve_domains(count as usize, name_bytes as usize);

        let mut rows = sqlx::query("SELECT name, settings FROM profiles").fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let name: &str = row.try_get(0)?;
            let settings: &str = row.try_get(1)?;
            builder.add_profile(name, parse_profile(name, settings)?)?;
        }
        drop(rows);

        let mut skipped = 0u64;
        let mut rows =
            sqlx::query("SELECT name, status, profile, alias_of FROM domains").fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let name: &str = row.try_get(0)?;
            if canonical(name).is_none() {
                skipped += 1;
                continue;
            }
            let status = parse_status(row.try_get(1)?);
            match (row.try_get::<Option<&str>, _>(3)?, row.try_get(2)?) {
                (Some(primary), _) => builder.push_alias(name, primary, status)?,
                (None, Some(profile)) => builder.push_domain(name, profile, status)?,
                // The schema's CHECK rules this out.
                (None, None) => skipped += 1,
            }
        }
        drop(rows);

        let sql = format!("SELECT {USER_COLUMNS} FROM user_overrides");
        let mut rows = sqlx::query(&sql).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let Some(user) = user_from_row(&row)? else {
                skipped += 1;
                continue;
            };
            if let Err(error) = builder.add_user(&user) {
                tracing::warn!(address = %user.address, %error, "skipping a stored user override");
                skipped += 1;
            }
        }
        drop(rows);
        // Nothing was written; ending the read transaction releases its snapshot.
        tx.rollback().await?;

        let snapshot = builder.build()?;
        if skipped > 0 {
            tracing::warn!(skipped, "skipped unusable rows while loading the directory");
        }
        tracing::debug!(
            revision,
            counts = ?snapshot.counts(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded directory snapshot"
        );
        Ok(snapshot)
    }
}
