//! Hosted domains: primaries with a profile, and aliases pointing at a primary.

use std::collections::{HashMap, HashSet};

use autodisco_proto::Domain;
use serde_json::{Value, json};
use sqlx::AnyConnection;
use sqlx::Row;

use super::audit::Change;
use super::profiles::profile_exists;
use super::{Backend, Store};
use crate::admin::{Actor, check_version};
use crate::error::{DirectoryError, ObjectKind};
use crate::model::{
    DomainInfo, DomainKind, DomainQuery, DomainRemoval, DomainStatus, DomainUpdate, RemovedDomain,
};
use crate::transfer::{DomainRecord, DomainTarget};

/// Domains per INSERT in [`Store::add_domains`]: few enough parameters for SQLite (32766) and
/// PostgreSQL (65535), many enough to make a million rows quick.
const BULK_CHUNK: usize = 500;

/// A domain row: its status and, for an alias, its primary.
pub(super) struct DomainRow {
    pub(super) status: DomainStatus,
    pub(super) profile: Option<String>,
    pub(super) alias_of: Option<String>,
}

impl Store {
    /// Adds `domain` as an active primary domain using the existing profile `profile`.
    pub async fn add_domain(
        &self,
        by: &Actor,
        domain: &Domain,
        profile: &str,
    ) -> Result<(), DirectoryError> {
        self.add_domains(by, std::slice::from_ref(domain), profile)
            .await
            .map(drop)
    }

    /// Adds many active primary domains with one profile in one transaction: all or none. For
    /// imports; returns how many were added. Refuses, adding nothing, if any of them exists
    /// already (as a primary or an alias) or is listed twice.
    pub async fn add_domains(
        &self,
        by: &Actor,
        domains: &[Domain],
        profile: &str,
    ) -> Result<u64, DirectoryError> {
        let mut seen = HashSet::with_capacity(domains.len());
        if let Some(twice) = domains.iter().find(|d| !seen.insert(d.as_str())) {
            return Err(already_exists(twice));
        }
        drop(seen);
        let mut tx = self.begin_write(by).await?;
        if !profile_exists(&mut tx, profile).await? {
            return Err(DirectoryError::NotFound {
                kind: ObjectKind::Profile,
                name: profile.to_owned(),
            });
        }
        for chunk in domains.chunks(BULK_CHUNK) {
            let placeholders = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let select = format!("SELECT name FROM domains WHERE name IN ({placeholders})");
            let mut existing = sqlx::query_scalar::<_, String>(&select);
            for domain in chunk {
                existing = existing.bind(domain.as_str());
            }
            if let Some(name) = existing.fetch_optional(&mut *tx).await? {
                return Err(DirectoryError::AlreadyExists {
                    kind: ObjectKind::Domain,
                    name,
                });
            }
            // $1 is the profile, shared by every row; names start at $2.
            let values = (2..=chunk.len() + 1)
                .map(|i| format!("(${i}, 'active', $1)"))
                .collect::<Vec<_>>()
                .join(", ");
            let insert_sql = format!("INSERT INTO domains (name, status, profile) VALUES {values}");
            let mut insert = sqlx::query(&insert_sql).bind(profile);
            for domain in chunk {
                insert = insert.bind(domain.as_str());
            }
            insert.execute(&mut *tx).await?;
            let changes: Vec<Change> = chunk
                .iter()
                .map(|domain| {
                    let after =
                        domain_json(domain.as_str(), DomainStatus::Active, Some(profile), None);
                    ("domain.add", domain.to_string(), None, Some(after))
                })
                .collect();
            tx.audit_many(changes).await?;
        }
        tx.commit().await?;
        Ok(domains.len() as u64)
    }

    /// Adds `alias` as an active alias of the primary domain `primary`.
    ///
    /// Refused if `primary` does not exist, if it is itself an alias
    /// ([`DirectoryError::AliasOfAlias`]), or if `alias` exists already.
    pub async fn add_alias(
        &self,
        by: &Actor,
        alias: &Domain,
        primary: &Domain,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let target = domain_row(&mut tx, primary)
            .await?
            .ok_or_else(|| not_found(primary))?;
        if let Some(target_primary) = target.alias_of {
            return Err(DirectoryError::AliasOfAlias {
                alias: alias.clone(),
                target: primary.clone(),
                target_primary: stored_domain(&target_primary)?,
            });
        }
        if domain_row(&mut tx, alias).await?.is_some() {
            return Err(already_exists(alias));
        }
        sqlx::query("INSERT INTO domains (name, status, alias_of) VALUES ($1, 'active', $2)")
            .bind(alias.as_str())
            .bind(primary.as_str())
            .execute(&mut *tx)
            .await?;
        let after = domain_json(
            alias.as_str(),
            DomainStatus::Active,
            None,
            Some(primary.as_str()),
        );
        tx.audit("domain.add", alias.as_str(), None, Some(after))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a domain. An alias goes alone. A primary with aliases or user overrides is
    /// refused ([`DirectoryError::DomainHasDependents`]) unless `removal` is
    /// [`DomainRemoval::Cascade`], which removes them too, in the same transaction.
    pub async fn remove_domain(
        &self,
        by: &Actor,
        domain: &Domain,
        removal: DomainRemoval,
    ) -> Result<RemovedDomain, DirectoryError> {
        self.remove_domain_if(by, domain, removal, None).await
    }

    /// [`Store::remove_domain`], only if the domain's [`DomainInfo::version`] is `if_match`
    /// (`*`: any); [`DirectoryError::Changed`] otherwise.
    pub async fn remove_domain_if(
        &self,
        by: &Actor,
        domain: &Domain,
        removal: DomainRemoval,
        if_match: Option<&str>,
    ) -> Result<RemovedDomain, DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let row = domain_row(&mut tx, domain)
            .await?
            .ok_or_else(|| not_found(domain))?;
        if if_match.is_some() {
            let current = domain_info(&mut tx, domain).await?.version();
            check_version(
                ObjectKind::Domain,
                domain.as_str(),
                Some(&current),
                if_match,
            )?;
        }
        let mut removed = RemovedDomain::default();
        if row.alias_of.is_none() {
            removed.aliases = aliases_of(&mut tx, domain).await?;
            removed.users = user_count(&mut tx, domain).await?;
            let has_dependents = !removed.aliases.is_empty() || removed.users > 0;
            if has_dependents && removal == DomainRemoval::OnlyIfUnused {
                return Err(DirectoryError::DomainHasDependents {
                    domain: domain.clone(),
                    aliases: removed.aliases,
                    users: removed.users,
                });
            }
            for sql in [
                "DELETE FROM user_overrides WHERE domain = $1",
                "DELETE FROM domains WHERE alias_of = $1",
            ] {
                sqlx::query(sql)
                    .bind(domain.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("DELETE FROM domains WHERE name = $1")
            .bind(domain.as_str())
            .execute(&mut *tx)
            .await?;
        let mut before = row.to_json(domain.as_str());
        if row.alias_of.is_none() {
            before["aliases"] = json!(
                removed
                    .aliases
                    .iter()
                    .map(Domain::as_str)
                    .collect::<Vec<_>>()
            );
            before["users"] = json!(removed.users);
        }
        tx.audit("domain.remove", domain.as_str(), Some(before), None)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Moves the primary domain `domain` to the existing profile `profile`.
    pub async fn set_profile(
        &self,
        by: &Actor,
        domain: &Domain,
        profile: &str,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let row = domain_row(&mut tx, domain)
            .await?
            .ok_or_else(|| not_found(domain))?;
        if let Some(primary) = row.alias_of {
            return Err(DirectoryError::IsAlias {
                alias: domain.clone(),
                primary: stored_domain(&primary)?,
            });
        }
        if !profile_exists(&mut tx, profile).await? {
            return Err(DirectoryError::NotFound {
                kind: ObjectKind::Profile,
                name: profile.to_owned(),
            });
        }
        sqlx::query("UPDATE domains SET profile = $1 WHERE name = $2")
            .bind(profile)
            .bind(domain.as_str())
            .execute(&mut *tx)
            .await?;
        let before = row.to_json(domain.as_str());
        let after = domain_json(domain.as_str(), row.status, Some(profile), None);
        tx.audit(
            "domain.set_profile",
            domain.as_str(),
            Some(before),
            Some(after),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Activates or suspends a domain. Suspending a primary also silences its aliases; an
    /// alias can be suspended on its own.
    pub async fn set_status(
        &self,
        by: &Actor,
        domain: &Domain,
        status: DomainStatus,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let row = domain_row(&mut tx, domain)
            .await?
            .ok_or_else(|| not_found(domain))?;
        sqlx::query("UPDATE domains SET status = $1 WHERE name = $2")
            .bind(status.as_str())
            .bind(domain.as_str())
            .execute(&mut *tx)
            .await?;
        let before = row.to_json(domain.as_str());
        let after = DomainRow { status, ..row }.to_json(domain.as_str());
        let action = match status {
            DomainStatus::Active => "domain.resume",
            DomainStatus::Suspended => "domain.suspend",
        };
        tx.audit(action, domain.as_str(), Some(before), Some(after))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One domain with its profile, aliases and override count, or its primary if an alias.
    pub async fn get_domain(&self, domain: &Domain) -> Result<DomainInfo, DirectoryError> {
        let mut conn = self.pool.acquire().await?;
        domain_info(&mut conn, domain).await
    }

    /// Changes a domain's profile and/or status in one write, only if its
    /// [`DomainInfo::version`] is `if_match` when given; returns the domain as it is now.
    /// Changing nothing that differs writes nothing (an idempotent PUT).
    pub async fn update_domain(
        &self,
        by: &Actor,
        domain: &Domain,
        update: &DomainUpdate,
        if_match: Option<&str>,
    ) -> Result<DomainInfo, DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let before = domain_info(&mut tx, domain).await?;
        check_version(
            ObjectKind::Domain,
            domain.as_str(),
            Some(&before.version()),
            if_match,
        )?;
        let row = domain_row(&mut tx, domain)
            .await?
            .ok_or_else(|| not_found(domain))?;
        let mut after = DomainRow {
            status: update.status.unwrap_or(row.status),
            profile: row.profile.clone(),
            alias_of: row.alias_of.clone(),
        };
        if let Some(profile) = &update.profile
            && row.profile.as_deref() != Some(profile)
        {
            if let Some(primary) = &row.alias_of {
                return Err(DirectoryError::IsAlias {
                    alias: domain.clone(),
                    primary: stored_domain(primary)?,
                });
            }
            if !profile_exists(&mut tx, profile).await? {
                return Err(DirectoryError::NotFound {
                    kind: ObjectKind::Profile,
                    name: profile.clone(),
                });
            }
            after.profile = Some(profile.clone());
        }
        if after.status == row.status && after.profile == row.profile {
            // Nothing to change: leave the revision and the log alone.
            return Ok(before);
        }
        sqlx::query("UPDATE domains SET status = $1, profile = $2 WHERE name = $3")
            .bind(after.status.as_str())
            .bind(after.profile.clone())
            .bind(domain.as_str())
            .execute(&mut *tx)
            .await?;
        tx.audit(
            "domain.update",
            domain.as_str(),
            Some(row.to_json(domain.as_str())),
            Some(after.to_json(domain.as_str())),
        )
        .await?;
        let now = domain_info(&mut tx, domain).await?;
        tx.commit().await?;
        Ok(now)
    }

    /// One page of domains in name order (keyset pagination: each page starts after the last
    /// name of the one before, so a page costs the same at any depth). Every filter is an index
    /// range: `(profile, name)`, `(status, name)` or the name itself.
    pub async fn list_domains_page(
        &self,
        query: &DomainQuery,
    ) -> Result<Vec<DomainRecord>, DirectoryError> {
        let mut sql =
            String::from("SELECT name, status, profile, alias_of FROM domains WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, value: String| {
            binds.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(after) = &query.after {
            bind(&mut sql, " AND name > ?", after.clone());
        }
        if let Some(profile) = &query.profile {
            bind(&mut sql, " AND profile = ?", profile.clone());
        }
        if let Some(status) = query.status {
            bind(&mut sql, " AND status = ?", status.as_str().to_owned());
        }
        if let Some(prefix) = &query.prefix {
            // Canonical names hold only a-z, 0-9, '-' and '.', none special to LIKE; anything
            // else cannot match, so it is dropped rather than escaped.
            let clean: String = prefix
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
                .flat_map(char::to_lowercase)
                .collect();
            if !clean.is_empty() {
                // Every name with the prefix sorts at or after it, so the name index starts the
                // walk there. SQLite compares bytes, so the range also ends where the prefix
                // does (its last character plus one): a pure index range. PostgreSQL's
                // collation may not be byte order, so there LIKE alone decides where it ends.
                bind(&mut sql, " AND name >= ?", clean.clone());
                if self.backend == Backend::Sqlite {
                    let mut end = clean.clone().into_bytes();
                    if let Some(last) = end.last_mut() {
                        *last += 1;
                    }
                    let end = String::from_utf8(end).expect("ASCII stays ASCII");
                    bind(&mut sql, " AND name < ?", end);
                }
                bind(&mut sql, " AND name LIKE ?", format!("{clean}%"));
            }
        }
        let limit = query.limit.clamp(1, DomainQuery::MAX_LIMIT);
        sql.push_str(&format!(" ORDER BY name LIMIT {limit}"));
        let mut select = sqlx::query(&sql);
        for value in binds {
            select = select.bind(value);
        }
        let rows = select.fetch_all(&self.pool).await?;
        let mut page = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(name) = canonical(row.try_get(0)?) else {
                continue;
            };
            let target = match (
                row.try_get::<Option<String>, _>(2)?,
                row.try_get::<Option<String>, _>(3)?,
            ) {
                (_, Some(primary)) => DomainTarget::AliasOf(stored_domain(&primary)?),
                (Some(profile), None) => DomainTarget::Profile(profile),
                (None, None) => continue,
            };
            page.push(DomainRecord {
                name,
                status: parse_status(row.try_get(1)?),
                target,
            });
        }
        Ok(page)
    }

    /// Every domain, sorted by name, primaries with their aliases and override counts.
    ///
    /// Rows whose names are not canonical (edited into the database by hand) are skipped with a
    /// warning: no request could ever match them.
    pub async fn list_domains(&self) -> Result<Vec<DomainInfo>, DirectoryError> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query("SELECT name, status, profile, alias_of FROM domains")
            .fetch_all(&mut *conn)
            .await?;
        let counts = sqlx::query("SELECT domain, COUNT(*) FROM user_overrides GROUP BY domain")
            .fetch_all(&mut *conn)
            .await?;
        let mut users = HashMap::with_capacity(counts.len());
        for row in counts {
            users.insert(
                row.try_get::<String, _>(0)?,
                row.try_get::<i64, _>(1)? as u64,
            );
        }
        let mut domains = Vec::with_capacity(rows.len());
        let mut aliases: HashMap<String, Vec<Domain>> = HashMap::new();
        for row in rows {
            let name: String = row.try_get(0)?;
            let Some(domain) = canonical(&name) else {
                continue;
            };
            let status = parse_status(&row.try_get::<String, _>(1)?);
            let alias_of: Option<String> = row.try_get(3)?;
            let kind = match alias_of {
                Some(primary) => {
                    aliases
                        .entry(primary.clone())
                        .or_default()
                        .push(domain.clone());
                    let Some(primary) = canonical(&primary) else {
                        continue;
                    };
                    DomainKind::Alias { primary }
                }
                None => DomainKind::Primary {
                    profile: row.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                    aliases: Vec::new(),
                    users: users.get(&name).copied().unwrap_or(0),
                },
            };
            domains.push(DomainInfo {
                name: domain,
                status,
                kind,
            });
        }
        for info in &mut domains {
            let DomainKind::Primary { aliases: list, .. } = &mut info.kind else {
                continue;
            };
            if let Some(mut found) = aliases.remove(info.name.as_str()) {
                found.sort();
                *list = found;
            }
        }
        domains.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(domains)
    }
}

impl DomainRow {
    /// The row as the audit log records it.
    pub(super) fn to_json(&self, name: &str) -> Value {
        domain_json(
            name,
            self.status,
            self.profile.as_deref(),
            self.alias_of.as_deref(),
        )
    }
}

/// A domain as the audit log records it: a primary names its profile, an alias its primary.
pub(super) fn domain_json(
    name: &str,
    status: DomainStatus,
    profile: Option<&str>,
    alias_of: Option<&str>,
) -> Value {
    let mut value = json!({ "name": name, "status": status.as_str() });
    match (profile, alias_of) {
        (_, Some(primary)) => value["alias_of"] = json!(primary),
        (Some(profile), None) => value["profile"] = json!(profile),
        (None, None) => {}
    }
    value
}

/// The domain with its aliases and override count, as [`Store::get_domain`] gives it.
pub(super) async fn domain_info(
    conn: &mut AnyConnection,
    domain: &Domain,
) -> Result<DomainInfo, DirectoryError> {
    let row = domain_row(conn, domain)
        .await?
        .ok_or_else(|| not_found(domain))?;
    let kind = match (row.alias_of, row.profile) {
        (Some(primary), _) => DomainKind::Alias {
            primary: stored_domain(&primary)?,
        },
        (None, profile) => DomainKind::Primary {
            profile: profile.unwrap_or_default(),
            aliases: aliases_of(conn, domain).await?,
            users: user_count(conn, domain).await?,
        },
    };
    Ok(DomainInfo {
        name: domain.clone(),
        status: row.status,
        kind,
    })
}

pub(super) async fn domain_row(
    conn: &mut AnyConnection,
    domain: &Domain,
) -> Result<Option<DomainRow>, DirectoryError> {
    let row = sqlx::query("SELECT status, profile, alias_of FROM domains WHERE name = $1")
        .bind(domain.as_str())
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        Ok(DomainRow {
            status: parse_status(&row.try_get::<String, _>(0)?),
            profile: row.try_get(1)?,
            alias_of: row.try_get(2)?,
        })
    })
    .transpose()
}

async fn aliases_of(
    conn: &mut AnyConnection,
    domain: &Domain,
) -> Result<Vec<Domain>, DirectoryError> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM domains WHERE alias_of = $1")
        .bind(domain.as_str())
        .fetch_all(conn)
        .await?;
    let mut aliases: Vec<Domain> = names.iter().filter_map(|n| canonical(n)).collect();
    aliases.sort();
    Ok(aliases)
}

async fn user_count(conn: &mut AnyConnection, domain: &Domain) -> Result<u64, DirectoryError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_overrides WHERE domain = $1")
        .bind(domain.as_str())
        .fetch_one(conn)
        .await?;
    Ok(count as u64)
}

/// The schema's CHECK allows only these two; anything else would be a hand edit, and treating
/// it as suspended errs on the side of not answering.
pub(super) fn parse_status(status: &str) -> DomainStatus {
    status.parse().unwrap_or(DomainStatus::Suspended)
}

/// A stored name if it is canonical; warns and gives `None` otherwise.
pub(super) fn canonical(name: &str) -> Option<Domain> {
    match Domain::parse(name) {
        Ok(domain) if domain.as_str() == name => Some(domain),
        _ => {
            tracing::warn!(
                domain = name,
                "skipping a domain stored in non-canonical form; remove it with SQL and add it again"
            );
            None
        }
    }
}

/// A stored name that must be valid for the operation to go on.
pub(super) fn stored_domain(name: &str) -> Result<Domain, DirectoryError> {
    canonical(name).ok_or_else(|| DirectoryError::NotFound {
        kind: ObjectKind::Domain,
        name: name.to_owned(),
    })
}

pub(super) fn not_found(domain: &Domain) -> DirectoryError {
    DirectoryError::NotFound {
        kind: ObjectKind::Domain,
        name: domain.to_string(),
    }
}

fn already_exists(domain: &Domain) -> DirectoryError {
    DirectoryError::AlreadyExists {
        kind: ObjectKind::Domain,
        name: domain.to_string(),
    }
}
