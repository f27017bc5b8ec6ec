//! The admin API's bearer tokens: only their SHA-256 is stored.

use serde_json::json;
use sqlx::Row;
use subtle::ConstantTimeEq;

use super::Store;
use crate::admin::{
    Actor, ApiToken, TokenScope, check_token_name, new_token_secret, token_hash, unix_now,
};
use crate::error::{DirectoryError, ObjectKind};
use crate::model::hex;

impl Store {
    /// Creates the token `name` with `scope` and returns its secret, which exists nowhere else
    /// afterwards: only its hash is stored. Names are never reused, revoked ones included.
    pub async fn create_token(
        &self,
        by: &Actor,
        name: &str,
        scope: TokenScope,
    ) -> Result<String, DirectoryError> {
        check_token_name(name)?;
        let secret = new_token_secret()?;
        let mut tx = self.begin_write(by).await?;
        let exists = sqlx::query("SELECT name FROM api_tokens WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return Err(DirectoryError::AlreadyExists {
                kind: ObjectKind::Token,
                name: name.to_owned(),
            });
        }
        sqlx::query(
            "INSERT INTO api_tokens (name, scope, token_hash, created) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(scope.as_str())
        .bind(hex(&token_hash(&secret)))
        .bind(unix_now())
        .execute(&mut *tx)
        .await?;
        tx.audit(
            "token.create",
            name,
            None,
            Some(json!({ "name": name, "scope": scope.as_str() })),
        )
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// Revokes the token `name`: from now on it authenticates nothing.
    pub async fn revoke_token(&self, by: &Actor, name: &str) -> Result<ApiToken, DirectoryError> {
        let mut tx = self.begin_write(by).await?;
        let row =
            sqlx::query("SELECT name, scope, created, revoked FROM api_tokens WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(mut token) = row.as_ref().map(token_from_row).transpose()? else {
            return Err(DirectoryError::NotFound {
                kind: ObjectKind::Token,
                name: name.to_owned(),
            });
        };
        if token.revoked.is_none() {
            let now = unix_now();
            sqlx::query("UPDATE api_tokens SET revoked = $1 WHERE name = $2")
                .bind(now)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            token.revoked = Some(now);
            tx.audit(
                "token.revoke",
                name,
                Some(json!({ "name": name, "scope": token.scope.as_str() })),
                None,
            )
            .await?;
            tx.commit().await?;
        }
        Ok(token)
    }

    /// Every token, revoked ones included, sorted by name.
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>, DirectoryError> {
        let rows =
            sqlx::query("SELECT name, scope, created, revoked FROM api_tokens ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// The unrevoked token whose secret is `secret`, if any.
    ///
    /// Every unrevoked token's hash is read and compared in constant time, and the query does
    /// not depend on the secret, so the time taken tells nothing about how close a guess came.
    pub async fn authenticate_token(
        &self,
        secret: &str,
    ) -> Result<Option<ApiToken>, DirectoryError> {
        let presented = hex(&token_hash(secret));
        let rows = sqlx::query(
            "SELECT name, scope, created, revoked, token_hash FROM api_tokens WHERE revoked IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut found = None;
        for row in &rows {
            let stored: String = row.try_get(4)?;
            if bool::from(stored.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(token_from_row(row)?);
            }
        }
        Ok(found)
    }
}

fn token_from_row(row: &sqlx::any::AnyRow) -> Result<ApiToken, DirectoryError> {
    let scope: String = row.try_get(1)?;
    Ok(ApiToken {
        name: row.try_get(0)?,
        // The schema's CHECK allows only these two; a hand edit gets the lesser scope.
        scope: scope.parse().unwrap_or(TokenScope::Read),
        created: row.try_get(2)?,
        revoked: row.try_get(3)?,
    })
}
