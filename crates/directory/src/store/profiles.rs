//! Service profiles: named plans stored as the JSON of [`ServiceProfile`].

use autodisco_proto::{Domain, ServiceProfile};
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::Row;

use super::Store;
use crate::admin::{Actor, check_version};
use crate::error::{DirectoryError, ObjectKind};
use crate::model::{ProfileEntry, Upsert, check_profile_name, profile_version};

/// How many of the domains using a profile [`DirectoryError::ProfileInUse`] names.
const IN_USE_SAMPLE: usize = 10;

impl Store {
    /// Stores `profile` under `name`, replacing any profile of that name. Domains using it see
    /// the change with the next snapshot.
    ///
    /// Refuses names that are not plain ([`DirectoryError::InvalidProfileName`]) and profiles
    /// that fail [`ServiceProfile::validate`] ([`DirectoryError::InvalidProfile`]).
    pub async fn put_profile(
        &self,
        by: &Actor,
        name: &str,
        profile: &ServiceProfile,
    ) -> Result<Upsert, DirectoryError> {
        self.put_profile_if(by, name, profile, None).await
    }

    /// [`Store::put_profile`], only if the stored profile's [`profile_version`] is `if_match`
    /// (`*`: any existing one); [`DirectoryError::Changed`] otherwise.
    pub async fn put_profile_if(
        &self,
        by: &Actor,
        name: &str,
        profile: &ServiceProfile,
        if_match: Option<&str>,
    ) -> Result<Upsert, DirectoryError> {
        check_profile_name(name)?;
        profile
            .validate()
            .map_err(|problems| DirectoryError::InvalidProfile {
                name: name.to_owned(),
                problems,
            })?;
        let after = serde_json::to_value(profile).expect("a ServiceProfile always serialises");
        let settings = after.to_string();
        let mut tx = self.begin_write(by).await?;
        let before = stored_settings(&mut tx, name).await?;
        let current = before.as_deref().map(|text| stored_version(name, text));
        check_version(ObjectKind::Profile, name, current.as_deref(), if_match)?;
        let outcome = if before.is_some() {
            sqlx::query("UPDATE profiles SET settings = $1 WHERE name = $2")
                .bind(settings)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            Upsert::Replaced
        } else {
            sqlx::query("INSERT INTO profiles (name, settings) VALUES ($1, $2)")
                .bind(name)
                .bind(settings)
                .execute(&mut *tx)
                .await?;
            Upsert::Created
        };
        let before = before.map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)));
        tx.audit("profile.put", name, before, Some(after)).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// The profile stored under `name`.
    pub async fn get_profile(&self, name: &str) -> Result<ServiceProfile, DirectoryError> {
        let settings: Option<String> =
            sqlx::query_scalar("SELECT settings FROM profiles WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        let settings = settings.ok_or_else(|| DirectoryError::NotFound {
            kind: ObjectKind::Profile,
            name: name.to_owned(),
        })?;
        parse_profile(name, &settings)
    }

    /// Every profile with the number of domains using it, sorted by name.
    pub async fn list_profiles(&self) -> Result<Vec<ProfileEntry>, DirectoryError> {
        let rows = sqlx::query(
            "SELECT p.name, p.settings, \
             (SELECT COUNT(*) FROM domains d WHERE d.profile = p.name) AS domains \
             FROM profiles p",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut profiles = rows
            .iter()
            .map(|row| {
                let name: String = row.try_get(0)?;
                let settings: String = row.try_get(1)?;
                let domains: i64 = row.try_get(2)?;
                Ok(ProfileEntry {
                    profile: parse_profile(&name, &settings)?,
                    name,
                    domains: domains as u64,
                })
            })
            .collect::<Result<Vec<_>, DirectoryError>>()?;
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(profiles)
    }

    /// Removes the profile `name`; refused with [`DirectoryError::ProfileInUse`] while any
    /// domain uses it.
    pub async fn remove_profile(&self, by: &Actor, name: &str) -> Result<(), DirectoryError> {
        self.remove_profile_if(by, name, None).await
    }

    /// [`Store::remove_profile`], only if the stored profile's [`profile_version`] is
    /// `if_match`; [`DirectoryError::Changed`] otherwise.
    pub async fn remove_profile_if(
        &self,
        by: &Actor,
        name: &str,
        if_match: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let Some(before) = stored_settings(&mut tx, name).await? else {
            return Err(DirectoryError::NotFound {
                kind: ObjectKind::Profile,
                name: name.to_owned(),
            });
        };
        let current = stored_version(name, &before);
        check_version(ObjectKind::Profile, name, Some(&current), if_match)?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM domains WHERE profile = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if total > 0 {
            let names: Vec<String> =
                sqlx::query_scalar("SELECT name FROM domains WHERE profile = $1 LIMIT 100")
                    .bind(name)
                    .fetch_all(&mut *tx)
                    .await?;
            let mut domains: Vec<Domain> =
                names.iter().filter_map(|n| Domain::parse(n).ok()).collect();
            domains.sort();
            domains.truncate(IN_USE_SAMPLE);
            return Err(DirectoryError::ProfileInUse {
                profile: name.to_owned(),
                domains,
                total: total as u64,
            });
        }
        sqlx::query("DELETE FROM profiles WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let before = serde_json::from_str(&before).unwrap_or(Value::String(before));
        tx.audit("profile.remove", name, Some(before), None).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The version tag of a stored profile; one that no longer reads (a hand edit) still has one,
/// of its text, so it can be replaced or removed.
fn stored_version(name: &str, settings: &str) -> String {
    match parse_profile(name, settings) {
        Ok(profile) => profile_version(&profile),
        Err(_) => crate::model::version_tag(settings.as_bytes()),
    }
}

/// The stored JSON of profile `name`, if it exists.
async fn stored_settings(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<String>, DirectoryError> {
    Ok(
        sqlx::query_scalar("SELECT settings FROM profiles WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?,
    )
}

pub(super) async fn profile_exists(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<bool, DirectoryError> {
    Ok(sqlx::query("SELECT name FROM profiles WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Reads a stored profile. Unknown fields are refused as everywhere else: a profile written by a
/// newer autodisco must not be half understood.
pub(super) fn parse_profile(name: &str, settings: &str) -> Result<ServiceProfile, DirectoryError> {
    serde_json::from_str(settings).map_err(|error| DirectoryError::CorruptProfile {
        name: name.to_owned(),
        error,
    })
}
