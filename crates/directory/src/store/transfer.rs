//! Bulk import and export, in one transaction each.

use std::collections::{HashMap, HashSet};

use autodisco_proto::ServiceProfile;
use futures_util::TryStreamExt;
use sqlx::{AnyConnection, Executor, Row};

use super::audit::Change;
use super::domains::{DomainRow, canonical, domain_json, parse_status, stored_domain};
use super::profiles::parse_profile;
use super::users::{USER_COLUMNS, user_from_row, user_json, write_user};
use super::{Backend, Store};
use crate::admin::Actor;
use crate::error::DirectoryError;
use crate::model::{UserOverride, check_profile_name};
use crate::transfer::{
    DirectoryData, DomainRecord, DomainTarget, ImportProblem, ImportReport, Section,
};

/// Names per `IN (...)` lookup and rows per INSERT: few enough parameters for SQLite (32766)
/// and PostgreSQL (65535) at 4 per row.
const CHUNK: usize = 500;

impl Store {
    /// The whole directory, from one consistent view of the database: profiles by name, domains
    /// by name, user overrides by address. Password hashes are not part of it.
    pub async fn export(&self) -> Result<DirectoryData, DirectoryError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // As in load_snapshot: one view for all three reads.
            (&mut *tx)
                .execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
        }
        let mut data = DirectoryData::default();
        let mut rows = sqlx::query("SELECT name, settings FROM profiles").fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let name: String = row.try_get(0)?;
            let settings: &str = row.try_get(1)?;
            let profile = parse_profile(&name, settings)?;
            data.profiles.push((name, profile));
        }
        drop(rows);
        let mut rows =
            sqlx::query("SELECT name, status, profile, alias_of FROM domains").fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let Some(name) = canonical(row.try_get(0)?) else {
                continue;
            };
            let status = parse_status(row.try_get(1)?);
            let target = match (row.try_get::<Option<String>, _>(2)?, row.try_get(3)?) {
                (_, Some(primary)) => DomainTarget::AliasOf(stored_domain(primary)?),
                (Some(profile), None) => DomainTarget::Profile(profile),
                (None, None) => continue,
            };
            data.domains.push(DomainRecord {
                name,
                status,
                target,
            });
        }
        drop(rows);
        let sql = format!("SELECT {USER_COLUMNS} FROM user_overrides");
        let mut rows = sqlx::query(&sql).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            if let Some(user) = user_from_row(&row)? {
                data.users.push(user);
            }
        }
        drop(rows);
        tx.rollback().await?;
        data.profiles.sort_by(|a, b| a.0.cmp(&b.0));
        data.domains.sort_by(|a, b| a.name.cmp(&b.name));
        data.users
            .sort_by_cached_key(|u| (u.address.domain().clone(), u.address.lookup_key()));
        Ok(data)
    }

    /// Creates or updates everything in `data`, all or nothing, and says what changed. Nothing
    /// is removed. With `dry_run` the same checks run and the report says what would change,
    /// but the transaction is rolled back.
    ///
    /// Every item is checked against the file and the database together before anything is
    /// written; if any is refused, [`DirectoryError::ImportRefused`] lists every problem.
    /// A domain keeps its kind: a primary cannot become an alias by import or the reverse
    /// (remove it first), since that would silently drop its aliases or users.
    pub async fn import(
        &self,
        by: &Actor,
        data: &DirectoryData,
        dry_run: bool,
    ) -> Result<ImportReport, DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let mut plan = Plan::default();
        plan.profiles(&mut tx, data).await?;
        plan.domains(&mut tx, data).await?;
        plan.users(&mut tx, data).await?;
        if !plan.problems.is_empty() {
            plan.problems.sort_by_key(|p| (p.section, p.index));
            return Err(DirectoryError::ImportRefused {
                problems: plan.problems,
            });
        }
        if dry_run {
            return Ok(plan.report);
        }
        for (name, settings, exists) in &plan.profile_writes {
            let sql = if *exists {
                "UPDATE profiles SET settings = $2 WHERE name = $1"
            } else {
                "INSERT INTO profiles (name, settings) VALUES ($1, $2)"
            };
            sqlx::query(sql)
                .bind(name)
                .bind(settings)
                .execute(&mut *tx)
                .await?;
        }
        // Primaries first: an alias's foreign key needs its primary in place.
        let (primaries, aliases): (Vec<&DomainRecord>, Vec<&DomainRecord>) = plan
            .new_domains
            .iter()
            .map(|&i| &data.domains[i])
            .partition(|r| matches!(r.target, DomainTarget::Profile(_)));
        for chunk in primaries.chunks(CHUNK).chain(aliases.chunks(CHUNK)) {
            insert_domains(&mut tx, chunk).await?;
        }
        for &i in &plan.changed_domains {
            let record = &data.domains[i];
            let update = match &record.target {
                DomainTarget::Profile(profile) => {
                    sqlx::query("UPDATE domains SET status = $1, profile = $3 WHERE name = $2")
                        .bind(record.status.as_str())
                        .bind(record.name.as_str())
                        .bind(profile.as_str())
                }
                DomainTarget::AliasOf(_) => {
                    sqlx::query("UPDATE domains SET status = $1 WHERE name = $2")
                        .bind(record.status.as_str())
                        .bind(record.name.as_str())
                }
            };
            update.execute(&mut *tx).await?;
        }
        for (user, exists) in &plan.user_writes {
            write_user(&mut tx, user, *exists).await?;
        }
        tx.audit_many(std::mem::take(&mut plan.changes)).await?;
        tx.commit().await?;
        Ok(plan.report)
    }
}

/// What an import will write, found while checking.
#[derive(Default)]
struct Plan {
    problems: Vec<ImportProblem>,
    report: ImportReport,
    changes: Vec<Change>,
    /// Profile names known after the import: the database's and the file's.
    profile_names: HashSet<String>,
    /// (name, settings JSON, exists already).
    profile_writes: Vec<(String, String, bool)>,
    /// Indexes into `data.domains`.
    new_domains: Vec<usize>,
    changed_domains: Vec<usize>,
    /// Domain name to its primary (itself for a primary), for every domain of the file and
    /// every domain the file's aliases and users name, as the directory will have them.
    primary_of: HashMap<String, Option<String>>,
    /// (override in its primary domain, exists already).
    user_writes: Vec<(UserOverride, bool)>,
}

impl Plan {
    fn refuse(&mut self, section: Section, index: usize, message: String) {
        self.problems.push(ImportProblem {
            section,
            index,
            message,
        });
    }

    async fn profiles(
        &mut self,
        conn: &mut AnyConnection,
        data: &DirectoryData,
    ) -> Result<(), DirectoryError> {
        let mut existing: HashMap<String, String> = HashMap::new();
        let mut rows = sqlx::query("SELECT name, settings FROM profiles").fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            existing.insert(row.try_get(0)?, row.try_get(1)?);
        }
        drop(rows);
        self.profile_names = existing.keys().cloned().collect();
        let mut seen = HashSet::new();
        for (index, (name, profile)) in data.profiles.iter().enumerate() {
            if let Err(e) = check_profile_name(name) {
                self.refuse(Section::Profiles, index, e.to_string());
                continue;
            }
            if !seen.insert(name.as_str()) {
                self.refuse(
                    Section::Profiles,
                    index,
                    format!("profile {name} is listed twice"),
                );
                continue;
            }
            if let Err(problems) = profile.validate() {
                let error = DirectoryError::InvalidProfile {
                    name: name.clone(),
                    problems,
                };
                self.refuse(Section::Profiles, index, error.to_string());
                continue;
            }
            self.profile_names.insert(name.clone());
            let after = serde_json::to_value(profile).expect("a ServiceProfile always serialises");
            let before = existing.get(name);
            let unchanged = before.is_some_and(|text| {
                serde_json::from_str::<ServiceProfile>(text).ok().as_ref() == Some(profile)
            });
            let counts = &mut self.report.profiles;
            if unchanged {
                counts.unchanged += 1;
                continue;
            }
            if before.is_some() {
                counts.changed += 1;
            } else {
                counts.created += 1;
            }
            let before_json = before.map(|text| {
                serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.clone()))
            });
            self.profile_writes
                .push((name.clone(), after.to_string(), before.is_some()));
            self.changes
                .push(("profile.put", name.clone(), before_json, Some(after)));
        }
        Ok(())
    }

    async fn domains(
        &mut self,
        conn: &mut AnyConnection,
        data: &DirectoryData,
    ) -> Result<(), DirectoryError> {
        // The rows of every name the file mentions, as domain or as alias target.
        let mut wanted: Vec<&str> = data.domains.iter().map(|r| r.name.as_str()).collect();
        wanted.extend(data.domains.iter().filter_map(|r| match &r.target {
            DomainTarget::AliasOf(primary) => Some(primary.as_str()),
            DomainTarget::Profile(_) => None,
        }));
        wanted.extend(data.users.iter().map(|u| u.address.domain().as_str()));
        wanted.sort_unstable();
        wanted.dedup();
        let existing = existing_domains(conn, &wanted).await?;
        for (name, row) in &existing {
            let primary = row.alias_of.clone().unwrap_or_else(|| name.clone());
            self.primary_of.insert(name.clone(), Some(primary));
        }
        // Every domain of the file as it will be, known before any alias is checked, whatever
        // the order; a kind change is refused below, so the stored kind wins for those.
        for record in &data.domains {
            let stored_kind_differs = existing.get(record.name.as_str()).is_some_and(|r| {
                r.alias_of.is_some() != matches!(record.target, DomainTarget::AliasOf(_))
            });
            if stored_kind_differs {
                continue;
            }
            let primary = match &record.target {
                DomainTarget::Profile(_) => record.name.to_string(),
                DomainTarget::AliasOf(primary) => primary.to_string(),
            };
            self.primary_of
                .insert(record.name.to_string(), Some(primary));
        }
        let mut in_file = HashSet::with_capacity(data.domains.len());
        for (index, record) in data.domains.iter().enumerate() {
            let name = record.name.as_str();
            if !in_file.insert(name) {
                self.refuse(
                    Section::Domains,
                    index,
                    format!("domain {name} is listed twice"),
                );
                continue;
            }
            let before = existing.get(name);
            let problem = match (&record.target, before) {
                (DomainTarget::Profile(profile), _) if !self.profile_names.contains(profile) => {
                    Some(format!(
                        "profile {profile} does not exist (neither in the directory nor in the file)"
                    ))
                }
                (DomainTarget::Profile(_), Some(row)) if row.alias_of.is_some() => Some(format!(
                    "{name} exists as an alias of {}; remove it first to make it a primary",
                    row.alias_of.as_deref().unwrap_or_default()
                )),
                (DomainTarget::AliasOf(primary), _) if primary == &record.name => {
                    Some(format!("{name} cannot be an alias of itself"))
                }
                (DomainTarget::AliasOf(primary), _) => {
                    match self.primary_of.get(primary.as_str()) {
                        Some(Some(p)) if p == primary.as_str() => match before {
                            Some(row) if row.alias_of.is_none() => Some(format!(
                                "{name} exists as a primary domain; remove it first to make it an alias"
                            )),
                            Some(row) if row.alias_of.as_deref() != Some(primary.as_str()) => {
                                Some(format!(
                                    "{name} is an alias of {}; remove it first to point it at {primary}",
                                    row.alias_of.as_deref().unwrap_or_default()
                                ))
                            }
                            _ => None,
                        },
                        Some(Some(p)) => Some(format!(
                            "{name} cannot be an alias of {primary}: {primary} is itself an alias of {p}; point {name} at {p}"
                        )),
                        _ => Some(format!(
                            "{name} cannot be an alias of {primary}: {primary} is not hosted (neither in the directory nor in the file as a primary)"
                        )),
                    }
                }
                _ => None,
            };
            if let Some(message) = problem {
                self.refuse(Section::Domains, index, message);
                continue;
            }
            let profile = match &record.target {
                DomainTarget::Profile(profile) => Some(profile.as_str()),
                DomainTarget::AliasOf(_) => None,
            };
            let alias_of = match &record.target {
                DomainTarget::AliasOf(primary) => Some(primary.as_str()),
                DomainTarget::Profile(_) => None,
            };
            let after = domain_json(name, record.status, profile, alias_of);
            match before {
                None => {
                    self.report.domains.created += 1;
                    self.new_domains.push(index);
                    self.changes
                        .push(("domain.add", name.to_owned(), None, Some(after)));
                }
                Some(row) if row.status == record.status && row.profile.as_deref() == profile => {
                    self.report.domains.unchanged += 1;
                }
                Some(row) => {
                    self.report.domains.changed += 1;
                    self.changed_domains.push(index);
                    self.changes.push((
                        "domain.update",
                        name.to_owned(),
                        Some(row.to_json(name)),
                        Some(after),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn users(
        &mut self,
        conn: &mut AnyConnection,
        data: &DirectoryData,
    ) -> Result<(), DirectoryError> {
        let mut stored_users = Vec::with_capacity(data.users.len());
        let mut keys = Vec::with_capacity(data.users.len());
        for (index, user) in data.users.iter().enumerate() {
            let domain = user.address.domain().as_str();
            let Some(Some(primary)) = self.primary_of.get(domain) else {
                self.refuse(
                    Section::Users,
                    index,
                    format!(
                        "domain {domain} is not hosted (neither in the directory nor in the file)"
                    ),
                );
                continue;
            };
            let mut stored = user.clone();
            if primary != domain {
                stored.address = user.address.with_domain(stored_domain(primary)?);
            }
            if let Err(e) = stored.validate() {
                self.refuse(Section::Users, index, e.to_string());
                continue;
            }
            keys.push(stored.address.lookup_key());
            stored_users.push((index, stored));
        }
        let existing = existing_users(conn, &keys).await?;
        let mut seen = HashSet::with_capacity(keys.len());
        for ((index, stored), key) in stored_users.into_iter().zip(keys) {
            if !seen.insert(key.clone()) {
                self.refuse(
                    Section::Users,
                    index,
                    format!("the override for {key} is listed twice (an alias address counts as its primary)"),
                );
                continue;
            }
            let before = existing.get(&key);
            if before == Some(&stored) {
                self.report.users.unchanged += 1;
                continue;
            }
            if before.is_some() {
                self.report.users.changed += 1;
            } else {
                self.report.users.created += 1;
            }
            self.changes.push((
                "user.put",
                key,
                before.map(user_json),
                Some(user_json(&stored)),
            ));
            self.user_writes.push((stored, before.is_some()));
        }
        Ok(())
    }
}

/// The stored rows of `names`, looked up a chunk at a time.
async fn existing_domains(
    conn: &mut AnyConnection,
    names: &[&str],
) -> Result<HashMap<String, DomainRow>, DirectoryError> {
    let mut found = HashMap::new();
    for chunk in names.chunks(CHUNK) {
        let sql = format!(
            "SELECT name, status, profile, alias_of FROM domains WHERE name IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for name in chunk {
            query = query.bind(*name);
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.insert(
                row.try_get(0)?,
                DomainRow {
                    status: parse_status(row.try_get(1)?),
                    profile: row.try_get(2)?,
                    alias_of: row.try_get(3)?,
                },
            );
        }
    }
    Ok(found)
}

/// The stored overrides under `keys`, looked up a chunk at a time.
async fn existing_users(
    conn: &mut AnyConnection,
    keys: &[String],
) -> Result<HashMap<String, UserOverride>, DirectoryError> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let sql = format!(
            "SELECT {USER_COLUMNS}, lookup_key FROM user_overrides WHERE lookup_key IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            if let Some(user) = user_from_row(&row)? {
                found.insert(row.try_get(5)?, user);
            }
        }
    }
    Ok(found)
}

async fn insert_domains(
    conn: &mut AnyConnection,
    records: &[&DomainRecord],
) -> Result<(), DirectoryError> {
    let values = (0..records.len())
        .map(|i| format!("({})", placeholders(i * 4 + 1, 4)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO domains (name, status, profile, alias_of) VALUES {values}");
    let mut insert = sqlx::query(&sql);
    for record in records {
        let (profile, alias_of) = match &record.target {
            DomainTarget::Profile(profile) => (Some(profile.clone()), None),
            DomainTarget::AliasOf(primary) => (None, Some(primary.to_string())),
        };
        insert = insert
            .bind(record.name.as_str())
            .bind(record.status.as_str())
            .bind(profile)
            .bind(alias_of);
    }
    insert.execute(conn).await?;
    Ok(())
}

/// `$first, $first+1, ...`, `count` of them.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
