//! The `users` table: staff accounts, their roles and password hashes.

use assent_shared::api::User;
use assent_shared::domain::Role;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreError, StoreResult, Tx};
use crate::{on_db, on_tx};

/// A user as stored, with the password hash that never leaves the server.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    password_hash: String,
    roles: String,
    active: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for StoredUser {
    type Error = StoreError;
    fn try_from(row: UserRow) -> StoreResult<Self> {
        let roles = parse_roles(&row.roles)?;
        Ok(StoredUser {
            user: User {
                id: row.id,
                email: row.email,
                display_name: row.display_name,
                roles,
                active: row.active,
                created_at: row.created_at,
            },
            password_hash: row.password_hash,
        })
    }
}

fn parse_roles(text: &str) -> StoreResult<Vec<Role>> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.parse()
                .map_err(|_| StoreError::Corrupt(format!("unknown role {r:?} in users.roles")))
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

const COLUMNS: &str = "id, email, display_name, password_hash, roles, active, created_at";

pub struct NewUserRecord<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub display_name: &'a str,
    pub roles: &'a [Role],
    pub password_hash: &'a str,
    pub at: DateTime<Utc>,
}

/// Inserts a user. A second user with the same email is a unique violation.
pub async fn insert(tx: &mut Tx, new: &NewUserRecord<'_>) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO users (id, email, email_key, display_name, password_hash, roles, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(new.id)
        .bind(new.email)
        .bind(email_key(new.email))
        .bind(new.display_name)
        .bind(new.password_hash)
        .bind(roles_text(new.roles))
        .bind(true)
        .bind(new.at)
        .execute(conn)
        .await?.rows_affected()
    });
    Ok(())
}

pub async fn find_by_email(db: &Db, email: &str) -> StoreResult<Option<StoredUser>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email_key = $1");
    let row: Option<UserRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(email_key(email)).fetch_optional(pool).await?
    });
    row.map(TryInto::try_into).transpose()
}

pub async fn find(db: &Db, id: Uuid) -> StoreResult<Option<StoredUser>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row: Option<UserRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
    });
    row.map(TryInto::try_into).transpose()
}

pub async fn list(db: &Db) -> StoreResult<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY email_key, id");
    let rows: Vec<UserRow> = on_db!(db, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
    rows.into_iter()
        .map(|row| StoredUser::try_from(row).map(|s| s.user))
        .collect()
}

pub async fn count(db: &Db) -> StoreResult<i64> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?
    }))
}

/// Saves a user's name, roles and active flag.
pub async fn update(tx: &mut Tx, user: &User, at: DateTime<Utc>) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query("UPDATE users SET display_name = $2, roles = $3, active = $4, updated_at = $5 WHERE id = $1")
            .bind(user.id)
            .bind(&user.display_name)
            .bind(roles_text(&user.roles))
            .bind(user.active)
            .bind(at)
            .execute(conn)
            .await?.rows_affected()
    });
    Ok(())
}

pub async fn set_password_hash(
    tx: &mut Tx,
    id: Uuid,
    hash: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(hash)
            .bind(at)
            .execute(conn)
            .await?.rows_affected()
    });
    Ok(())
}
