//! The `policy_versions` table: every version of the compliance policy, append-only.

use assent_shared::api::PolicyVersion;
use assent_shared::ledger::Policy;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{lock_sequence, to_json, Db, Sequence, StoreError, StoreResult, WriteTx};
use crate::{on_db, on_tx};

#[derive(sqlx::FromRow)]
struct PolicyRow {
    version: i64,
    policy: String,
    changed_by: Option<Uuid>,
    changed_at: DateTime<Utc>,
    note: Option<String>,
}

impl TryFrom<PolicyRow> for PolicyVersion {
    type Error = StoreError;
    fn try_from(row: PolicyRow) -> StoreResult<PolicyVersion> {
        let policy = serde_json::from_str(&row.policy).map_err(|_| {
            StoreError::corrupt("policy_versions", row.version, "the policy does not parse")
        })?;
        Ok(PolicyVersion {
            version: row.version,
            policy,
            changed_by: row.changed_by,
            changed_at: row.changed_at,
            note: row.note,
        })
    }
}

/// The built-in default, in force until the first saved version.
pub fn built_in() -> PolicyVersion {
    PolicyVersion {
        version: 0,
        policy: Policy::default(),
        changed_by: None,
        changed_at: DateTime::UNIX_EPOCH,
        note: None,
    }
}

/// The version in force at `at` (now when `None`).
pub async fn in_force(db: &Db, at: Option<DateTime<Utc>>) -> StoreResult<PolicyVersion> {
    let row: Option<PolicyRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT version, policy, changed_by, changed_at, note FROM policy_versions \
             WHERE ($1 IS NULL OR changed_at <= $1) ORDER BY version DESC LIMIT 1",
        )
        .bind(at)
        .fetch_optional(pool)
        .await?
    });
    row.map(TryInto::try_into)
        .transpose()
        .map(|v| v.unwrap_or_else(built_in))
}

/// The latest version, read inside `tx` after the versions' lock, so that a change built on it
/// is not overtaken by another before it is saved.
pub async fn latest_locked(tx: &mut WriteTx) -> StoreResult<PolicyVersion> {
    lock_sequence(tx, Sequence::PolicyVersions).await?;
    let row: Option<PolicyRow> = on_tx!(tx, conn => {
        sqlx::query_as(
            "SELECT version, policy, changed_by, changed_at, note FROM policy_versions \
             ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(conn)
        .await?
    });
    row.map(TryInto::try_into)
        .transpose()
        .map(|v| v.unwrap_or_else(built_in))
}

/// Every version, newest first, ending with the built-in default.
pub async fn history(db: &Db) -> StoreResult<Vec<PolicyVersion>> {
    let rows: Vec<PolicyRow> = on_db!(db, pool => {
        sqlx::query_as("SELECT version, policy, changed_by, changed_at, note FROM policy_versions ORDER BY version DESC")
            .fetch_all(pool)
            .await?
    });
    let mut versions: Vec<PolicyVersion> = rows
        .into_iter()
        .map(TryInto::try_into)
        .collect::<StoreResult<_>>()?;
    versions.push(built_in());
    Ok(versions)
}

/// Saves a new version and returns it, under the versions' lock ([`Sequence::PolicyVersions`]).
pub async fn save(
    tx: &mut WriteTx,
    policy: &Policy,
    by: Uuid,
    at: DateTime<Utc>,
    note: Option<&str>,
) -> StoreResult<PolicyVersion> {
    let text = to_json(policy, "a policy")?;
    lock_sequence(tx, Sequence::PolicyVersions).await?;
    let version: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "INSERT INTO policy_versions (version, policy, changed_by, changed_at, note) \
             VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions), $1, $2, $3, $4) RETURNING version",
        )
        .bind(&text)
        .bind(by)
        .bind(at)
        .bind(note)
        .fetch_one(conn)
        .await?
    });
    Ok(PolicyVersion {
        version,
        policy: policy.clone(),
        changed_by: Some(by),
        changed_at: at,
        note: note.map(str::to_owned),
    })
}
