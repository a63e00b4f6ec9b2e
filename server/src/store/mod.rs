//! The store: one code path over SQLite (the default, a file in the data directory) and
//! PostgreSQL (production, scale-out).
//!
//! Each table is owned by exactly one submodule, which writes its SQL out in full. Queries use
//! `$1` placeholders, which both backends accept, and types that both encode the same way (UUIDs,
//! UTC times, integers, text, booleans); [`on_db!`] and [`on_tx!`] run one query text against
//! whichever pool or transaction is in use.
//!
//! Architecture invariant: nothing here updates or deletes an audit record; the database refuses
//! it too (triggers on both backends).

pub mod audit;
pub mod companies;
pub mod contacts;
pub mod filters;
pub mod history;
pub mod ledger;
pub mod policies;
pub mod sessions;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the error is a unique-constraint violation (a duplicate key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What an optimistic update came to.
#[derive(Debug)]
pub enum Updated<T> {
    Saved(T),
    /// The record changed since the version the caller saw: nothing was written.
    Stale(StaleRecord),
}

/// Where a record stands when an update made against an older version is refused.
#[derive(Debug, Clone, Copy)]
pub struct StaleRecord {
    pub version: i64,
    pub updated_by: uuid::Uuid,
    pub updated_at: DateTime<Utc>,
}

impl<T> Updated<T> {
    /// The record is at `version`, last changed by `by` at `at`.
    pub fn stale(version: i64, by: uuid::Uuid, at: DateTime<Utc>) -> Self {
        Updated::Stale(StaleRecord {
            version,
            updated_by: by,
            updated_at: at,
        })
    }
}

/// The database behind the server.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction on either backend. Every change and its audit record commit together.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$conn` bound to the pool of whichever backend `$db` is.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($conn) => $body,
            $crate::store::Db::Postgres($conn) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection of whichever backend the transaction is on.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

/// The most values one statement binds: SQLite allows 32,766 and PostgreSQL 65,535, so a
/// multi-row INSERT of rows with `n` columns takes `MAX_BINDS / n` rows at a time.
pub(crate) const MAX_BINDS: usize = 30_000;

/// Whether a multi-row statement of `rows` rows is worth keeping prepared: only with one row,
/// whose text is always the same (one contact created, one event recorded); each other batch
/// size makes a new text that would only fill the statement cache.
pub(crate) fn keep_prepared(rows: usize) -> bool {
    rows == 1
}

/// The current time as the store keeps it: UTC, whole microseconds (PostgreSQL's precision), so
/// that a time read back equals the time written (the audit chain hashes it).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Where the database is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseLocation {
    SqliteFile(std::path::PathBuf),
    Postgres(String),
}

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn connect(location: &DatabaseLocation) -> StoreResult<Db> {
        let db = match location {
            DatabaseLocation::SqliteFile(path) => Db::Sqlite(open_sqlite(path).await?),
            DatabaseLocation::Postgres(url) => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Db::Postgres(pool)
            }
        };
        db.migrate().await?;
        Ok(db)
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        on_db!(self, pool => {
            match self {
                Db::Sqlite(_) => SQLITE_MIGRATIONS.run(pool).await?,
                Db::Postgres(_) => POSTGRES_MIGRATIONS.run(pool).await?,
            }
        });
        ledger::backfill_decision_copies(self).await?;
        Ok(())
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Begins a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// transaction that reads first and writes later could otherwise deadlock with another one.
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await);
    }
}

impl Tx {
    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

async fn open_sqlite(path: &Path) -> StoreResult<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    Ok(SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?)
}

/// Escapes `%`, `_` and `\` in a search term for `LIKE ... ESCAPE '\'`, and lower-cases it.
pub fn like_pattern(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A keyset pagination cursor: the sort key and id of the last row of the previous page.
pub mod cursor {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use uuid::Uuid;

    pub fn encode(key: &str, id: Uuid) -> String {
        URL_SAFE_NO_PAD.encode(format!("{id}\u{1f}{key}"))
    }

    pub fn decode(cursor: &str) -> Option<(String, Uuid)> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (id, key) = text.split_once('\u{1f}')?;
        Some((key.to_owned(), id.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_A\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = uuid::Uuid::now_v7();
        let encoded = cursor::encode("doe jane", id);
        assert_eq!(cursor::decode(&encoded), Some(("doe jane".to_owned(), id)));
        assert_eq!(cursor::decode("not a cursor"), None);
    }
}
