//! The audit log: written inside every write's transaction, read newest first.

use serde_json::Value;
use sqlx::Row;

use super::{Store, Write};
use crate::admin::{AuditEntry, unix_now};
use crate::error::DirectoryError;

/// Audit rows per INSERT in [`Write::audit_many`]: 8 parameters each, far below SQLite's and
/// PostgreSQL's limits.
const AUDIT_CHUNK: usize = 500;

/// The most entries one read returns, whatever the caller asks: bounded work per request.
const MAX_AUDIT_PAGE: u32 = 1000;

/// One change to record: action, object, before, after.
pub(super) type Change = (&'static str, String, Option<Value>, Option<Value>);

impl Write<'_> {
    /// Records one change under this write's revision and actor.
    pub(super) async fn audit(
        &mut self,
        action: &'static str,
        object: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Result<(), DirectoryError> {
        self.audit_many(vec![(action, object.to_owned(), before, after)])
            .await
    }

    /// Records many changes (an import) with few statements.
    pub(super) async fn audit_many(&mut self, changes: Vec<Change>) -> Result<(), DirectoryError> {
        let now = unix_now();
        let revision = self.revision as i64;
        let actor = self.actor.name().to_owned();
        let mut changes = changes.into_iter().peekable();
        while changes.peek().is_some() {
            let chunk: Vec<Change> = changes.by_ref().take(AUDIT_CHUNK).collect();
            let values = (0..chunk.len())
                .map(|i| {
                    let p = i * 8;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6,
                        p + 7,
                        p + 8
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO audit_log (revision, seq, logged_at, actor, action, object, \
                 before_json, after_json) VALUES {values}"
            );
            let mut insert = sqlx::query(&sql);
            for (action, object, before, after) in chunk {
                insert = insert
                    .bind(revision)
                    .bind(self.next_seq as i64)
                    .bind(now)
                    .bind(actor.clone())
                    .bind(action)
                    .bind(object)
                    .bind(before.map(|v| v.to_string()))
                    .bind(after.map(|v| v.to_string()));
                self.next_seq += 1;
            }
            insert.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Audit entries, newest first: at most `limit` (capped at [`MAX_AUDIT_PAGE`]), older than
    /// the position `(revision, seq)` of `before` when given (the next page).
    pub async fn audit_log(
        &self,
        limit: u32,
        before: Option<(u64, u64)>,
    ) -> Result<Vec<AuditEntry>, DirectoryError> {
        let limit = i64::from(limit.min(MAX_AUDIT_PAGE));
        let columns = "revision, seq, logged_at, actor, action, object, before_json, after_json";
        let rows = match before {
            Some((revision, seq)) => {
                let sql = format!(
                    "SELECT {columns} FROM audit_log WHERE revision < $1 OR (revision = $1 AND seq < $2) \
                     ORDER BY revision DESC, seq DESC LIMIT $3"
                );
                sqlx::query(&sql)
                    .bind(revision as i64)
                    .bind(seq as i64)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {columns} FROM audit_log ORDER BY revision DESC, seq DESC LIMIT $1"
                );
                sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    revision: row.try_get::<i64, _>(0)? as u64,
                    seq: row.try_get::<i64, _>(1)? as u64,
                    time: row.try_get(2)?,
                    actor: row.try_get(3)?,
                    action: row.try_get(4)?,
                    object: row.try_get(5)?,
                    before: json_column(row.try_get(6)?),
                    after: json_column(row.try_get(7)?),
                })
            })
            .collect()
    }
}

/// A stored JSON column; text that no longer parses (a hand edit) is shown as a string rather
/// than hiding the entry.
fn json_column(text: Option<String>) -> Option<Value> {
    text.map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)))
}
