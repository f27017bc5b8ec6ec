//! The last live check of each domain (table `domain_health`, migration 0003).
//!
//! Health is what `autodisco domain check` found, kept so that `domain list`, `domain show` and
//! the admin API show it without checking again. It is not served data: these writes take no
//! [`Store::begin_write`] and leave `directory_revision` alone, so storing the results of a
//! check of every domain makes no running server reload its snapshot.

use std::fmt;

use autodisco_proto::Domain;
use sqlx::Row;

use super::Store;
use super::domains::{canonical, not_found};
use crate::error::DirectoryError;

/// Rows per transaction in [`Store::put_health`]: one commit (one fsync on SQLite) per chunk
/// keeps a check of 10,000 domains from spending its time committing.
const HEALTH_CHUNK: usize = 500;

/// The verdict of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// Nothing to fix.
    Healthy,
    /// At least one finding.
    Unhealthy,
}

impl HealthStatus {
    /// The name stored in the database and shown to admins.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last check of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainHealth {
    /// The domain checked.
    pub domain: Domain,
    /// When, in seconds since the Unix epoch.
    pub checked_at: u64,
    /// The verdict.
    pub status: HealthStatus,
    /// The findings as the checker wrote them (JSON text); the directory does not read it.
    pub findings: String,
}

impl Store {
    /// Stores the results of a check, replacing each domain's previous one. Domains no longer
    /// hosted (removed while the check ran) are skipped; the rest is written in chunks of a few
    /// hundred per transaction. Returns how many were stored.
    pub async fn put_health(&self, results: &[DomainHealth]) -> Result<u64, DirectoryError> {
        let mut stored = 0;
        for chunk in results.chunks(HEALTH_CHUNK) {
            let mut tx = self.pool.begin().await?;
            for health in chunk {
                // Insert-or-update in the SQL both engines share (SQLite 3.24+, PostgreSQL
                // 9.5+); the SELECT skips a removed domain instead of failing on its key.
                let written = sqlx::query(
                    "INSERT INTO domain_health (domain, checked_at, status, findings) \
                     SELECT name, $2, $3, $4 FROM domains WHERE name = $1 \
                     ON CONFLICT (domain) DO UPDATE SET checked_at = excluded.checked_at, \
                     status = excluded.status, findings = excluded.findings",
                )
                .bind(health.domain.as_str())
                .bind(i64::try_from(health.checked_at).unwrap_or(i64::MAX))
                .bind(health.status.as_str())
                .bind(&health.findings)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                stored += written;
            }
            tx.commit().await?;
        }
        Ok(stored)
    }

    /// The last check of `domain`; `None` when it was never checked.
    pub async fn health(&self, domain: &Domain) -> Result<Option<DomainHealth>, DirectoryError> {
        let mut conn = self.pool.acquire().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT name FROM domains WHERE name = $1")
            .bind(domain.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_none() {
            return Err(not_found(domain));
        }
        let row = sqlx::query(
            "SELECT domain, checked_at, status, findings FROM domain_health WHERE domain = $1",
        )
        .bind(domain.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => health_row(&row),
            None => Ok(None),
        }
    }

    /// The last check of every domain that has one, in no particular order.
    pub async fn all_health(&self) -> Result<Vec<DomainHealth>, DirectoryError> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query("SELECT domain, checked_at, status, findings FROM domain_health")
            .fetch_all(&mut *conn)
            .await?;
        let mut all = Vec::with_capacity(rows.len());
        for row in rows {
            all.extend(health_row(&row)?);
        }
        Ok(all)
    }
}

/// A stored row; `None` for a name edited into the table by hand in a non-canonical form.
fn health_row(row: &sqlx::any::AnyRow) -> Result<Option<DomainHealth>, DirectoryError> {
    let Some(domain) = canonical(&row.try_get::<String, _>(0)?) else {
        return Ok(None);
    };
    let checked_at: i64 = row.try_get(1)?;
    // The schema's CHECK allows only the two names; anything else reads as unhealthy, which
    // errs on the side of looking again.
    let status = match row.try_get::<String, _>(2)?.as_str() {
        "healthy" => HealthStatus::Healthy,
        _ => HealthStatus::Unhealthy,
    };
    Ok(Some(DomainHealth {
        domain,
        checked_at: u64::try_from(checked_at).unwrap_or(0),
        status,
        findings: row.try_get(3)?,
    }))
}
