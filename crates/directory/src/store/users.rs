//! Per-user overrides, stored under the address in its primary domain.

use autodisco_proto::{Domain, EmailAddress};
use serde_json::{Value, json};
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use super::domains::{domain_row, not_found, stored_domain};
use crate::admin::Actor;
use crate::error::{DirectoryError, ObjectKind, OverrideProblem};
use crate::model::{Redirect, Upsert, UserOverride};

/// The columns [`user_from_row`] reads, in order.
pub(super) const USER_COLUMNS: &str =
    "address, display_name, login_name, redirect_addr, redirect_url";

impl Store {
    /// Stores an override, replacing any for the same mailbox. An address in an alias domain is
    /// stored as the same local part in the primary domain; the stored form is returned.
    ///
    /// Refused if the domain is not hosted, or if the override is invalid (see
    /// [`UserOverride::validate`]) or redirects the mailbox to itself, also through an alias.
    pub async fn put_user(
        &self,
        by: &Actor,
        user: &UserOverride,
    ) -> Result<(UserOverride, Upsert), DirectoryError> {
        user.validate()?;
        let mut tx = self.begin_write(by).await?;
        let mut stored = user.clone();
        stored.address = in_primary_domain(&mut tx, &user.address).await?;
        let key = stored.address.lookup_key();
        if let Some(Redirect::Address(target)) = &stored.redirect {
            let target = match domain_row(&mut tx, target.domain()).await? {
                Some(row) => match row.alias_of {
                    Some(primary) => target.with_domain(stored_domain(&primary)?),
                    None => target.clone(),
                },
                None => target.clone(),
            };
            if target.lookup_key() == key {
                return Err(DirectoryError::InvalidOverride {
                    address: user.address.to_string(),
                    problem: OverrideProblem::RedirectToSelf,
                });
            }
        }
        let before = stored_user(&mut tx, &key).await?;
        let exists = before.is_some();
        write_user(&mut tx, &stored, exists).await?;
        let before = before.as_ref().map(user_json);
        tx.audit("user.put", &key, before, Some(user_json(&stored)))
            .await?;
        tx.commit().await?;
        let outcome = if exists {
            Upsert::Replaced
        } else {
            Upsert::Created
        };
        Ok((stored, outcome))
    }

    /// The override for `address` (given in its primary or an alias domain).
    pub async fn get_user(&self, address: &EmailAddress) -> Result<UserOverride, DirectoryError> {
        let mut conn = self.pool.acquire().await?;
        let key = in_primary_domain(&mut conn, address).await?.lookup_key();
        stored_user(&mut conn, &key)
            .await?
            .ok_or(DirectoryError::NotFound {
                kind: ObjectKind::UserOverride,
                name: key,
            })
    }

    /// Removes the override for `address` (given in its primary or an alias domain).
    pub async fn remove_user(
        &self,
        by: &Actor,
        address: &EmailAddress,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let key = in_primary_domain(&mut tx, address).await?.lookup_key();
        let Some(before) = stored_user(&mut tx, &key).await? else {
            return Err(DirectoryError::NotFound {
                kind: ObjectKind::UserOverride,
                name: key,
            });
        };
        sqlx::query("DELETE FROM user_overrides WHERE lookup_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.audit("user.remove", &key, Some(user_json(&before)), None)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The overrides of one domain (for an alias: of its primary), or of all domains; sorted by
    /// domain, then local part.
    pub async fn list_users(
        &self,
        domain: Option<&Domain>,
    ) -> Result<Vec<UserOverride>, DirectoryError> {
        let mut conn = self.pool.acquire().await?;
        let rows = match domain {
            Some(domain) => {
                let row = domain_row(&mut conn, domain)
                    .await?
                    .ok_or_else(|| not_found(domain))?;
                let primary = row.alias_of.unwrap_or_else(|| domain.to_string());
                let sql = format!("SELECT {USER_COLUMNS} FROM user_overrides WHERE domain = $1");
                sqlx::query(&sql)
                    .bind(primary)
                    .fetch_all(&mut *conn)
                    .await?
            }
            None => {
                let sql = format!("SELECT {USER_COLUMNS} FROM user_overrides");
                sqlx::query(&sql).fetch_all(&mut *conn).await?
            }
        };
        let mut users = rows
            .iter()
            .filter_map(|row| user_from_row(row).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        users.sort_by_cached_key(|u| (u.address.domain().clone(), u.address.lookup_key()));
        Ok(users)
    }
}

/// Inserts `user` (already in its primary domain), or replaces the stored one if `exists`.
pub(super) async fn write_user(
    conn: &mut AnyConnection,
    user: &UserOverride,
    exists: bool,
) -> Result<(), DirectoryError> {
    let (redirect_addr, redirect_url) = match &user.redirect {
        Some(Redirect::Address(target)) => (Some(target.to_string()), None),
        Some(Redirect::Url(url)) => (None, Some(url.clone())),
        None => (None, None),
    };
    let sql = if exists {
        "UPDATE user_overrides SET domain = $2, address = $3, display_name = $4, \
         login_name = $5, redirect_addr = $6, redirect_url = $7 WHERE lookup_key = $1"
    } else {
        "INSERT INTO user_overrides (lookup_key, domain, address, display_name, login_name, \
         redirect_addr, redirect_url) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    };
    sqlx::query(sql)
        .bind(user.address.lookup_key())
        .bind(user.address.domain().as_str())
        .bind(user.address.to_string())
        .bind(user.display_name.clone())
        .bind(user.login_name.clone())
        .bind(redirect_addr)
        .bind(redirect_url)
        .execute(conn)
        .await?;
    Ok(())
}

/// The override stored under `key`, if any (and readable).
async fn stored_user(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<UserOverride>, DirectoryError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM user_overrides WHERE lookup_key = $1");
    let row = sqlx::query(&sql).bind(key).fetch_optional(conn).await?;
    Ok(row.as_ref().map(user_from_row).transpose()?.flatten())
}

/// An override as the audit log records it.
pub(super) fn user_json(user: &UserOverride) -> Value {
    let (redirect_addr, redirect_url) = match &user.redirect {
        Some(Redirect::Address(target)) => (Some(target.to_string()), None),
        Some(Redirect::Url(url)) => (None, Some(url.clone())),
        None => (None, None),
    };
    json!({
        "address": user.address.to_string(),
        "display_name": user.display_name,
        "login_name": user.login_name,
        "redirect_addr": redirect_addr,
        "redirect_url": redirect_url,
    })
}

/// `address` moved to its primary domain if its domain is an alias; the domain must exist.
async fn in_primary_domain(
    conn: &mut AnyConnection,
    address: &EmailAddress,
) -> Result<EmailAddress, DirectoryError> {
    let row = domain_row(conn, address.domain())
        .await?
        .ok_or_else(|| not_found(address.domain()))?;
    Ok(match row.alias_of {
        Some(primary) => address.with_domain(stored_domain(&primary)?),
        None => address.clone(),
    })
}

/// Reads a row of [`USER_COLUMNS`]; `None` (with a warning) for a row edited into nonsense by
/// hand, which is skipped rather than failing every listing and snapshot.
pub(super) fn user_from_row(row: &AnyRow) -> Result<Option<UserOverride>, DirectoryError> {
    let address: String = row.try_get(0)?;
    let redirect_addr: Option<String> = row.try_get(3)?;
    let redirect_url: Option<String> = row.try_get(4)?;
    let Ok(parsed) = EmailAddress::parse(&address) else {
        tracing::warn!(address, "skipping a user override with an invalid address");
        return Ok(None);
    };
    let redirect = match (redirect_addr, redirect_url) {
        (Some(target), _) => match EmailAddress::parse(&target) {
            Ok(target) => Some(Redirect::Address(target)),
            Err(_) => {
                tracing::warn!(
                    address,
                    target,
                    "skipping a user override with an invalid redirect address"
                );
                return Ok(None);
            }
        },
        (None, Some(url)) => Some(Redirect::Url(url)),
        (None, None) => None,
    };
    Ok(Some(UserOverride {
        address: parsed,
        display_name: row.try_get(1)?,
        login_name: row.try_get(2)?,
        redirect,
    }))
}
