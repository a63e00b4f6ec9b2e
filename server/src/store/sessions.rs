//! The `sessions` table: one row per login, found by the SHA-256 of its token (the token itself is
//! never stored).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx};
use crate::{on_db, on_tx};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_name: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub absolute_expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, user_id, device_name, created_at, last_seen_at, absolute_expires_at, revoked_at";

pub async fn insert(tx: &mut Tx, row: &SessionRow, token_hash: &str) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, device_name, created_at, last_seen_at, absolute_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.id)
        .bind(row.user_id)
        .bind(token_hash)
        .bind(&row.device_name)
        .bind(row.created_at)
        .bind(row.last_seen_at)
        .bind(row.absolute_expires_at)
        .execute(conn)
        .await?.rows_affected()
    });
    Ok(())
}

pub async fn find_by_token_hash(db: &Db, token_hash: &str) -> StoreResult<Option<SessionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE token_hash = $1");
    Ok(on_db!(db, pool => sqlx::query_as(&sql).bind(token_hash).fetch_optional(pool).await?))
}

pub async fn touch(db: &Db, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
    on_db!(db, pool => {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(pool)
            .await?.rows_affected()
    });
    Ok(())
}

pub async fn find(db: &Db, id: Uuid) -> StoreResult<Option<SessionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1");
    Ok(on_db!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
}

/// The sessions of a user that have not been revoked, newest first. Expired ones are included;
/// the caller knows the idle timeout and filters them.
pub async fn unrevoked_for_user(db: &Db, user_id: Uuid) -> StoreResult<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id"
    );
    Ok(on_db!(db, pool => sqlx::query_as(&sql).bind(user_id).fetch_all(pool).await?))
}

/// Revokes the unrevoked sessions of `user_id` (only those on `device_name` when given, only
/// session `only_id` when given) and returns the ids revoked.
pub async fn revoke(
    tx: &mut Tx,
    user_id: Uuid,
    device_name: Option<&str>,
    only_id: Option<Uuid>,
    by: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<Vec<Uuid>> {
    let ids: Vec<Uuid> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = $4, revoked_by = $5 \
             WHERE user_id = $1 AND revoked_at IS NULL \
             AND ($2 IS NULL OR device_name = $2) AND ($3 IS NULL OR id = $3) \
             RETURNING id",
        )
        .bind(user_id)
        .bind(device_name)
        .bind(only_id)
        .bind(at)
        .bind(by)
        .fetch_all(conn)
        .await?
    });
    Ok(ids)
}
