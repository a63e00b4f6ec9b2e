//! The `users` table: staff accounts, their roles and password hashes.

use std::collections::HashMap;

use assent_shared::api::{ActorRef, User};
use assent_shared::domain::Role;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{actor_columns, with_lock, Db, StoreError, StoreResult, Tx, Updated};
use crate::{on_db, on_tx};

/// A user as stored, with the password hash that never leaves the server.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    version: i64,
    email: String,
    display_name: String,
    password_hash: String,
    roles: String,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    updated_by_kind: String,
    updated_by: Uuid,
}

/// Who last changed a user, and when.
#[derive(Debug, Clone, Copy)]
pub struct LastChange {
    pub by: ActorRef,
    pub at: DateTime<Utc>,
}

impl UserRow {
    pub(super) fn into_stored(self) -> StoreResult<(StoredUser, LastChange)> {
        let roles = parse_roles(self.id, &self.roles)?;
        let by = actor_columns::decode(("users", self.id), &self.updated_by_kind, self.updated_by)?;
        Ok((
            StoredUser {
                user: User {
                    id: self.id,
                    version: self.version,
                    email: self.email,
                    display_name: self.display_name,
                    roles,
                    active: self.active,
                    created_at: self.created_at,
                },
                password_hash: self.password_hash,
            },
            LastChange {
                by,
                at: self.updated_at,
            },
        ))
    }
}

fn parse_roles(id: Uuid, text: &str) -> StoreResult<Vec<Role>> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.parse()
                .map_err(|_| StoreError::corrupt("users", id, "roles names an unknown role"))
        })
        .collect()
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The lookup key of an email address: login is case-insensitive.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

const COLUMNS: &str =
    "id, version, email, display_name, password_hash, roles, active, created_at, \
    updated_at, updated_by_kind, updated_by";

/// [`COLUMNS`] of the table named `alias` in a join.
pub(super) fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(',')
        .map(|column| format!("{alias}.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub struct NewUserRecord<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub display_name: &'a str,
    pub roles: &'a [Role],
    pub password_hash: &'a str,
    pub by: ActorRef,
    pub at: DateTime<Utc>,
}

/// Inserts a user at version 1. A second user with the same email is
/// [`StoreError::Duplicate`].
pub async fn insert(tx: &mut Tx, new: &NewUserRecord<'_>) -> StoreResult<()> {
    let (by_kind, by) = actor_columns::encode(new.by);
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO users (id, version, email, email_key, display_name, password_hash, roles, active, created_at, \
             updated_at, updated_by_kind, updated_by) VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
        )
        .bind(new.id)
        .bind(new.email)
        .bind(email_key(new.email))
        .bind(new.display_name)
        .bind(new.password_hash)
        .bind(roles_text(new.roles))
        .bind(true)
        .bind(new.at)
        .bind(by_kind)
        .bind(by)
        .execute(conn)
        .await?.rows_affected()
    });
    Ok(())
}

/// The account an email address logs in to (outside any transaction: a login reads it before it
/// hashes the password).
pub async fn find_by_email(db: &Db, email: &str) -> StoreResult<Option<StoredUser>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email_key = $1");
    let row: Option<UserRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(email_key(email)).fetch_optional(pool).await?
    });
    row.map(|r| r.into_stored().map(|(s, _)| s)).transpose()
}

/// A user, outside any transaction (authenticating a request).
pub async fn find(db: &Db, id: Uuid) -> StoreResult<Option<StoredUser>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row: Option<UserRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
    });
    row.map(|r| r.into_stored().map(|(s, _)| s)).transpose()
}

/// A user, read inside `tx`, with when it last changed.
pub async fn get(tx: &mut Tx, id: Uuid) -> StoreResult<Option<(StoredUser, LastChange)>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row: Option<UserRow> =
        on_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?);
    row.map(UserRow::into_stored).transpose()
}

/// Every user, by email address, read inside `tx`.
pub async fn list(tx: &mut Tx) -> StoreResult<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY email_key, id");
    let rows: Vec<UserRow> = on_tx!(tx, conn => sqlx::query_as(&sql).fetch_all(conn).await?);
    rows.into_iter()
        .map(|row| row.into_stored().map(|(s, _)| s.user))
        .collect()
}

/// The display names and email addresses of the given users, read inside `tx`.
pub async fn names(tx: &mut Tx, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, (String, String)>> {
    let mut names = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<(Uuid, String, String)> = on_tx!(&mut *tx, conn => {
            let mut query = sqlx::QueryBuilder::new("SELECT id, display_name, email FROM users WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(")");
            query.build_query_as().fetch_all(conn).await?
        });
        for (id, name, email) in rows {
            names.insert(id, (name, email));
        }
    }
    Ok(names)
}

pub async fn count(db: &Db) -> StoreResult<i64> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?
    }))
}

/// The active administrators, locked until `tx` ends on PostgreSQL (SQLite's writers hold the
/// whole database already), so that two transactions that each remove an administrator are
/// serialised and the second sees the first's change. The lock is `FOR NO KEY UPDATE`, the one an
/// update of a user's row takes anyway: it does not stop a transaction that only names the user
/// (a foreign key's share lock, as a policy change or a new contact takes), so none waits here
/// while holding what this transaction needs next.
pub async fn lock_active_admins(tx: &mut Tx) -> StoreResult<Vec<Uuid>> {
    let sql = with_lock(
        tx,
        "SELECT id FROM users WHERE active AND (',' || roles || ',') LIKE '%,admin,%' ORDER BY id",
        "FOR NO KEY UPDATE",
    );
    Ok(on_tx!(tx, conn => sqlx::query_scalar(&sql).fetch_all(conn).await?))
}

/// Saves `user`'s name, roles and active flag if the stored user is still at `expected_version`,
/// and moves it to the next version.
pub async fn update(
    tx: &mut Tx,
    user: &User,
    expected_version: i64,
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<Updated<User>> {
    let (by_kind, by) = actor_columns::encode(by);
    let written = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE users SET version = version + 1, display_name = $3, roles = $4, active = $5, updated_at = $6, \
             updated_by_kind = $7, updated_by = $8 WHERE id = $1 AND version = $2",
        )
        .bind(user.id)
        .bind(expected_version)
        .bind(&user.display_name)
        .bind(roles_text(&user.roles))
        .bind(user.active)
        .bind(at)
        .bind(by_kind)
        .bind(by)
        .execute(conn)
        .await?
        .rows_affected()
    });
    let (stored, last) = get(tx, user.id)
        .await?
        .ok_or_else(|| StoreError::corrupt("users", user.id, "vanished as it was updated"))?;
    if written == 0 {
        return Ok(Updated::stale(stored.user.version, last.by, last.at));
    }
    Ok(Updated::Saved(stored.user))
}

/// Sets a user's password hash (a change by the user themselves), moving them to the next
/// version.
pub async fn set_password_hash(
    tx: &mut Tx,
    id: Uuid,
    hash: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let (by_kind, by) = actor_columns::encode(ActorRef::Staff { id });
    on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE users SET version = version + 1, password_hash = $2, updated_at = $3, updated_by_kind = $4, \
             updated_by = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(hash)
        .bind(at)
        .bind(by_kind)
        .bind(by)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(())
}
