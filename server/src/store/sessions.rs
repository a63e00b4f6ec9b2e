//! The `sessions` table: one row per login, found by the SHA-256 of its token (the token itself is
//! never stored).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::users::{self, StoredUser, UserRow};
use super::{with_lock, Db, StoreResult, Tx};
use crate::{on_db, on_tx, on_writer};

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

/// Inserts a session if its user is still active with the password hash the login verified, and
/// says whether it did. A password changed while the login was checking the old one leaves
/// nothing behind: on PostgreSQL the user's row is share-locked, so a password change either
/// commits first (and the hash no longer matches) or waits for this login and then revokes the
/// session it made; SQLite's writers are serialised.
pub async fn insert_if_password(
    tx: &mut Tx,
    row: &SessionRow,
    token_hash: &str,
    verified_hash: &str,
) -> StoreResult<bool> {
    let sql = with_lock(
        tx,
        "INSERT INTO sessions (id, user_id, token_hash, device_name, created_at, last_seen_at, absolute_expires_at) \
         SELECT $1, id, $3, $4, $5, $6, $7 FROM users WHERE id = $2 AND active AND password_hash = $8",
        "FOR SHARE",
    );
    let inserted = on_tx!(tx, conn => {
        sqlx::query(&sql)
            .bind(row.id)
            .bind(row.user_id)
            .bind(token_hash)
            .bind(&row.device_name)
            .bind(row.created_at)
            .bind(row.last_seen_at)
            .bind(row.absolute_expires_at)
            .bind(verified_hash)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(inserted == 1)
}

/// The session whose token hashes to `token_hash`, with its user as they are now: one round
/// trip, made on every request.
pub async fn find_by_token_hash(
    db: &Db,
    token_hash: &str,
) -> StoreResult<Option<(SessionRow, StoredUser)>> {
    #[derive(sqlx::FromRow)]
    struct Found {
        s_id: Uuid,
        s_user_id: Uuid,
        s_device_name: String,
        s_created_at: DateTime<Utc>,
        s_last_seen_at: DateTime<Utc>,
        s_absolute_expires_at: DateTime<Utc>,
        s_revoked_at: Option<DateTime<Utc>>,
        #[sqlx(flatten)]
        user: UserRow,
    }
    // Built once: it is run on every request.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT s.id AS s_id, s.user_id AS s_user_id, s.device_name AS s_device_name, \
             s.created_at AS s_created_at, s.last_seen_at AS s_last_seen_at, \
             s.absolute_expires_at AS s_absolute_expires_at, s.revoked_at AS s_revoked_at, {} \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
            users::columns_of("u")
        )
    });
    let found: Option<Found> = on_db!(db, pool => sqlx::query_as(SQL.as_str()).bind(token_hash).fetch_optional(pool).await?);
    let Some(found) = found else {
        return Ok(None);
    };
    let session = SessionRow {
        id: found.s_id,
        user_id: found.s_user_id,
        device_name: found.s_device_name,
        created_at: found.s_created_at,
        last_seen_at: found.s_last_seen_at,
        absolute_expires_at: found.s_absolute_expires_at,
        revoked_at: found.s_revoked_at,
    };
    let (user, _) = found.user.into_stored()?;
    Ok(Some((session, user)))
}

/// Moves a session's last-seen time, through the writers' connection (on SQLite, the one write
/// connection: a write on a reader's would wait on the database's lock instead of in turn).
pub async fn touch(db: &Db, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
    on_writer!(db, pool => {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// One session, read inside `tx`.
pub async fn get(tx: &mut Tx, id: Uuid) -> StoreResult<Option<SessionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1");
    Ok(on_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?))
}

/// The sessions of a user that have not been revoked, newest first, read inside `tx`. Expired
/// ones are included; the caller knows the idle timeout and filters them.
pub async fn unrevoked_for_user(tx: &mut Tx, user_id: Uuid) -> StoreResult<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id"
    );
    Ok(on_tx!(tx, conn => sqlx::query_as(&sql).bind(user_id).fetch_all(conn).await?))
}

/// Which of a user's unrevoked sessions to revoke.
#[derive(Debug, Clone, Copy)]
pub enum Revoke<'a> {
    /// Every one.
    All,
    /// Those on one device (a lost or stolen laptop).
    Device(&'a str),
    /// Just this one.
    Only(Uuid),
    /// Every one but this (a password change keeps the session that made it).
    AllBut(Uuid),
}

/// Revokes, in one statement, the unrevoked sessions of `user_id` that `which` names, and
/// returns their ids.
pub async fn revoke(
    tx: &mut Tx,
    user_id: Uuid,
    which: Revoke<'_>,
    by: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<Vec<Uuid>> {
    let (device, only, but) = match which {
        Revoke::All => (None, None, None),
        Revoke::Device(device) => (Some(device), None, None),
        Revoke::Only(id) => (None, Some(id), None),
        Revoke::AllBut(id) => (None, None, Some(id)),
    };
    let ids: Vec<Uuid> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = $5, revoked_by = $6 \
             WHERE user_id = $1 AND revoked_at IS NULL \
             AND ($2 IS NULL OR device_name = $2) AND ($3 IS NULL OR id = $3) AND ($4 IS NULL OR id <> $4) \
             RETURNING id",
        )
        .bind(user_id)
        .bind(device)
        .bind(only)
        .bind(but)
        .bind(at)
        .bind(by)
        .fetch_all(conn)
        .await?
    });
    Ok(ids)
}
