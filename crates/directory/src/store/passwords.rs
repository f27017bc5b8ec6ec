//! Password hashes for HTTP Basic authentication against the directory.
//!
//! The store keeps opaque PHC strings (argon2 hashes made by the server's `auth` module); it
//! never sees a password. Hashes are read per authentication, not kept in the snapshot, so
//! they never sit in every server's memory.

use autodisco_proto::EmailAddress;
use serde_json::json;
use sqlx::AnyConnection;

use super::Store;
use super::domains::{domain_row, not_found, stored_domain};
use crate::admin::Actor;
use crate::error::{DirectoryError, ObjectKind};
use crate::model::Upsert;

/// The longest hash string stored: argon2 PHC strings are about 100 characters.
const MAX_HASH_LEN: usize = 512;

impl Store {
    /// Stores the password hash of `address` (given in its primary or an alias domain),
    /// replacing any it had. The domain must be hosted. Returns the address in its primary
    /// domain.
    pub async fn set_password_hash(
        &self,
        by: &Actor,
        address: &EmailAddress,
        hash: &str,
    ) -> Result<(EmailAddress, Upsert), DirectoryError> {
        if hash.is_empty() || hash.len() > MAX_HASH_LEN || !hash.starts_with('$') {
            return Err(DirectoryError::InvalidPasswordHash);
        }
        let mut tx = self.begin_write(by).await?;
        let primary = primary_address(&mut tx, address)
            .await?
            .ok_or_else(|| not_found(address.domain()))?;
        let key = primary.lookup_key();
        let exists = sqlx::query("SELECT lookup_key FROM user_passwords WHERE lookup_key = $1")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let sql = if exists {
            "UPDATE user_passwords SET domain = $2, password_hash = $3 WHERE lookup_key = $1"
        } else {
            "INSERT INTO user_passwords (lookup_key, domain, password_hash) VALUES ($1, $2, $3)"
        };
        sqlx::query(sql)
            .bind(&key)
            .bind(primary.domain().as_str())
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        // The hash itself stays out of the log: the log is readable with a read token.
        let before = exists.then(|| json!({ "password": "set" }));
        tx.audit(
            "password.set",
            &key,
            before,
            Some(json!({ "password": "set" })),
        )
        .await?;
        tx.commit().await?;
        let upsert = if exists {
            Upsert::Replaced
        } else {
            Upsert::Created
        };
        Ok((primary, upsert))
    }

    /// The password hash of `address`; `None` when it has none or its domain is not hosted.
    pub async fn password_hash(
        &self,
        address: &EmailAddress,
    ) -> Result<Option<String>, DirectoryError> {
        let mut conn = self.pool.acquire().await?;
        let Some(primary) = primary_address(&mut conn, address).await? else {
            return Ok(None);
        };
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM user_passwords WHERE lookup_key = $1")
                .bind(primary.lookup_key())
                .fetch_optional(&mut *conn)
                .await?;
        Ok(hash)
    }

    /// Removes the password of `address`.
    pub async fn remove_password(
        &self,
        by: &Actor,
        address: &EmailAddress,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let primary = primary_address(&mut tx, address)
            .await?
            .ok_or_else(|| not_found(address.domain()))?;
        let removed = sqlx::query("DELETE FROM user_passwords WHERE lookup_key = $1")
            .bind(primary.lookup_key())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(DirectoryError::NotFound {
                kind: ObjectKind::Password,
                name: primary.lookup_key(),
            });
        }
        let key = primary.lookup_key();
        tx.audit(
            "password.remove",
            &key,
            Some(json!({ "password": "set" })),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// `address` in its primary domain; `None` when its domain is not hosted.
async fn primary_address(
    conn: &mut AnyConnection,
    address: &EmailAddress,
) -> Result<Option<EmailAddress>, DirectoryError> {
    let Some(row) = domain_row(conn, address.domain()).await? else {
        return Ok(None);
    };
    Ok(Some(match row.alias_of {
        Some(primary) => address.with_domain(stored_domain(&primary)?),
        None => address.clone(),
    }))
}
