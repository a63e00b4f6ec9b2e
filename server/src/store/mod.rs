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
pub mod campaigns;
pub mod companies;
pub mod contacts;
pub mod data_requests;
pub mod filters;
pub mod history;
pub mod keys;
pub mod ledger;
pub mod outbox;
pub mod policies;
pub mod sessions;
pub mod signups;
pub mod topics;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use assent_shared::api::ActorRef;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored row does not read back as what was written. Only the table, the row's id and a
    /// fixed description are kept: a parser's message would quote the stored value, which may be
    /// personal data, into the log of a 500.
    #[error("stored data is corrupt: {table} {id}: {problem}")]
    Corrupt {
        table: &'static str,
        id: String,
        problem: &'static str,
    },
    /// A value that must be unique is taken (a race the caller's own check could not see).
    #[error("a unique value is already taken ({0:?})")]
    Duplicate(UniqueKey),
    /// A value could not be written as the store keeps it; nothing was written.
    #[error("cannot encode {0} for the store")]
    Encode(&'static str),
    /// The group commit that holds a read's audit record failed (the database's error, as text:
    /// one failure answers every read of the group); the read's data is not returned.
    #[error("the audit record of a read was not written: {0}")]
    GroupCommit(String),
}

impl StoreError {
    /// Row `id` of `table` does not read back: `problem` says how, in fixed words.
    pub fn corrupt(table: &'static str, id: impl std::fmt::Display, problem: &'static str) -> Self {
        StoreError::Corrupt {
            table,
            id: id.to_string(),
            problem,
        }
    }
}

/// The values the schema keeps unique, as the rest of Assent names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueKey {
    UserEmail,
    SavedFilterName,
    /// Another unique index (a chain position taken by a concurrent writer, say).
    Unlisted,
}

/// Each listed unique key as each backend names it: PostgreSQL's constraint, SQLite's
/// `table.column` in its message.
const UNIQUE_KEYS: &[(UniqueKey, &str, &str)] = &[
    (
        UniqueKey::UserEmail,
        "users_email_key_key",
        "users.email_key",
    ),
    (
        UniqueKey::SavedFilterName,
        "saved_filters_name_key_key",
        "saved_filters.name_key",
    ),
];

impl From<sqlx::Error> for StoreError {
    /// The one place a unique violation is recognised, whichever statement met it.
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                let key = UNIQUE_KEYS
                    .iter()
                    .find(|(_, pg, sqlite)| {
                        db.constraint() == Some(*pg) || db.message().ends_with(sqlite)
                    })
                    .map_or(UniqueKey::Unlisted, |(key, _, _)| *key);
                return StoreError::Duplicate(key);
            }
        }
        StoreError::Database(e)
    }
}

/// JSON of a value the store keeps as text. Serialising plain data cannot fail today, but if it
/// ever did, an empty string must not be hashed into an immutable chain: the write fails.
pub(crate) fn to_json<T: serde::Serialize>(value: &T, what: &'static str) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|_| StoreError::Encode(what))
}

/// How a record names who did something: a kind and an id. A member of staff is their user id,
/// a data subject their contact id, and each system job has a fixed id of its own.
pub(crate) mod actor_columns {
    use assent_shared::api::ActorRef;
    use assent_shared::domain::SystemJob;
    use uuid::Uuid;

    use super::{StoreError, StoreResult};

    /// The fixed id of each system job (never a user's or contact's: those are version 7).
    pub fn job_id(job: SystemJob) -> Uuid {
        match job {
            SystemJob::CommandLine => Uuid::from_u128(1),
            SystemJob::Seed => Uuid::from_u128(2),
            SystemJob::Sender => Uuid::from_u128(3),
            SystemJob::MailReports => Uuid::from_u128(4),
            SystemJob::SmsReplies => Uuid::from_u128(5),
            SystemJob::PublicPages => Uuid::from_u128(6),
        }
    }

    /// The job a fixed id is the id of.
    pub fn job_of(id: Uuid) -> Option<SystemJob> {
        SystemJob::ALL
            .iter()
            .copied()
            .find(|job| job_id(*job) == id)
    }

    pub fn encode(actor: ActorRef) -> (&'static str, Uuid) {
        match actor {
            ActorRef::Staff { id } => ("staff", id),
            ActorRef::DataSubject { id } => ("data_subject", id),
            ActorRef::System { job } => ("system", job_id(job)),
        }
    }

    /// The actor row `row` of `table` names as `kind` and `id`.
    pub fn decode(
        (table, row): (&'static str, impl std::fmt::Display),
        kind: &str,
        id: Uuid,
    ) -> StoreResult<ActorRef> {
        match kind {
            "staff" => Ok(ActorRef::Staff { id }),
            "data_subject" => Ok(ActorRef::DataSubject { id }),
            "system" => job_of(id)
                .map(|job| ActorRef::System { job })
                .ok_or_else(|| StoreError::corrupt(table, row, "names an unknown system job")),
            _ => Err(StoreError::corrupt(
                table,
                row,
                "names an unknown kind of actor",
            )),
        }
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
    pub updated_by: ActorRef,
    pub updated_at: DateTime<Utc>,
}

impl<T> Updated<T> {
    /// The record is at `version`, last changed by `by` at `at`.
    pub fn stale(version: i64, by: ActorRef, at: DateTime<Utc>) -> Self {
        Updated::Stale(StaleRecord {
            version,
            updated_by: by,
            updated_at: at,
        })
    }
}

/// The database behind the server: its pool, and how writes and the records of reads reach it.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    /// SQLite's one write connection, which every write transaction takes in turn: writers queue
    /// for it in order instead of sleeping and retrying on the database's lock. Reads use
    /// [`Db::pool`]. On PostgreSQL writers use the pool.
    writer: Option<SqlitePool>,
    /// The group commit of the records of reads ([`audit::GroupCommit`]); absent in its own
    /// workers' handle, which append directly.
    reads: Option<audit::GroupCommit>,
    /// PostgreSQL: a small pool of its own for looking up the tokens of public links, so that a
    /// flood of bad tokens from the internet queues there and never takes the connections the
    /// sender and the staff need. SQLite's readers are shared (a lookup holds no lock).
    lookups: Option<PgPool>,
}

/// The connections of whichever backend the database is on.
#[derive(Clone, Debug)]
pub enum Pool {
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
        match ($db).pool() {
            $crate::store::Pool::Sqlite($conn) => $body,
            $crate::store::Pool::Postgres($conn) => $body,
        }
    };
}

/// Runs one statement outside any transaction through the writers' pool: on SQLite the one write
/// connection (a write on a reader's would wait on the database's lock instead of in turn, and
/// would not flush as `sqlite_synchronous` says), on PostgreSQL the pool.
#[macro_export]
macro_rules! on_writer {
    ($db:expr, $conn:ident => $body:expr) => {
        match ($db).write_pool() {
            $crate::store::Pool::Sqlite(pool) => {
                let $conn = &pool;
                $body
            }
            $crate::store::Pool::Postgres(pool) => {
                let $conn = &pool;
                $body
            }
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection of whichever backend the transaction (a
/// [`Tx`] or a [`WriteTx`]) is on.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $crate::store::AsTx::as_tx($tx) {
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

/// The connections of PostgreSQL's pool for public links' tokens ([`Db::lookup_pool`]).
const LOOKUP_CONNECTIONS: u32 = 4;

/// The most values one statement binds: SQLite allows 32,766 and PostgreSQL 65,535, so a
/// multi-row INSERT of rows with `n` columns takes `MAX_BINDS / n` rows at a time.
pub(crate) const MAX_BINDS: usize = 30_000;

/// `sql` with a PostgreSQL row-locking clause (`FOR SHARE`, `FOR NO KEY UPDATE`) on PostgreSQL;
/// as it is on SQLite, which has no such clause and whose writers hold the whole database.
pub(crate) fn with_lock(tx: &Tx, sql: &str, clause: &str) -> String {
    match tx {
        Tx::Sqlite(_) => sql.to_owned(),
        Tx::Postgres(_) => format!("{sql} {clause}"),
    }
}

/// A numbering whose next number is the largest so far plus one: its writers take its lock
/// first ([`lock_sequence`]), or two of them would take the same number.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sequence {
    ConsentWordings = 1,
    PolicyVersions = 2,
    TopicCatalogues = 3,
}

/// Takes `sequence`'s lock until `tx` ends: a transaction-scoped advisory lock on PostgreSQL
/// (it serialises the writers of that numbering and nothing else); on SQLite the transaction
/// already holds the database.
pub(crate) async fn lock_sequence(tx: &mut WriteTx, sequence: Sequence) -> StoreResult<()> {
    /// "AS" and the sequence: keys no other lock of Assent's uses.
    const KEY_BASE: i64 = 0x4153_0000;
    if let Tx::Postgres(t) = &mut tx.tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_BASE + sequence as i64)
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// A list of ids a statement tests a column against, as each backend takes it best: on
/// PostgreSQL one array bound to `= ANY($n)`, so that the statement's text is the same whatever
/// the list's length (parsed and planned once, kept prepared); on SQLite, which has no arrays, a
/// bind per id in `IN (...)`.
pub(crate) trait IdList {
    /// Pushes ` = ANY($n)` or ` IN ($n, ...)` for `ids`, after the column it tests.
    fn push_ids(&mut self, ids: &[Uuid]) -> &mut Self;
    /// Whether the statement, whose lists hold `rows` ids, is worth keeping prepared.
    fn keeps_prepared(&self, rows: usize) -> bool;
}

impl IdList for sqlx::QueryBuilder<'_, Postgres> {
    fn push_ids(&mut self, ids: &[Uuid]) -> &mut Self {
        self.push(" = ANY(").push_bind(ids.to_vec()).push(")")
    }

    fn keeps_prepared(&self, _rows: usize) -> bool {
        true
    }
}

impl IdList for sqlx::QueryBuilder<'_, Sqlite> {
    fn push_ids(&mut self, ids: &[Uuid]) -> &mut Self {
        self.push(" IN (");
        let mut list = self.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        self.push(")")
    }

    fn keeps_prepared(&self, rows: usize) -> bool {
        keep_prepared(rows)
    }
}

/// Whether a multi-row statement of `rows` rows is worth keeping prepared: only with one row,
/// whose text is always the same (one contact created, one event recorded); each other batch
/// size makes a new text that would only fill the statement cache.
pub(crate) fn keep_prepared(rows: usize) -> bool {
    rows == 1
}

/// How SQLite's commits are flushed (its `synchronous` setting on the one write connection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteSync {
    /// A commit survives the process being killed; the last commits before a power cut or a
    /// kernel crash may be lost (WAL with `synchronous=NORMAL`).
    #[default]
    Normal,
    /// A commit survives a power cut too: every commit waits for its flush to the disk
    /// (`synchronous=FULL`). Its cost is measured in docs/BENCHMARKS.md.
    Full,
}

/// Where the database is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseLocation {
    SqliteFile(std::path::PathBuf),
    /// A `postgres://` URL, which may hold a password: never shown.
    Postgres(crate::config::Secret),
}

impl Db {
    /// Connects, brings the schema up to date, and starts the group commit of reads' records
    /// (SQLite with [`SqliteSync::Normal`]).
    pub async fn connect(location: &DatabaseLocation) -> StoreResult<Db> {
        Db::connect_with(location, SqliteSync::default()).await
    }

    /// [`Db::connect`], with SQLite's commits flushed as `sync` says (PostgreSQL ignores it).
    pub async fn connect_with(location: &DatabaseLocation, sync: SqliteSync) -> StoreResult<Db> {
        let (pool, writer, lookups) = match location {
            DatabaseLocation::SqliteFile(path) => {
                let (readers, writer) = open_sqlite(path, sync).await?;
                (Pool::Sqlite(readers), Some(writer), None)
            }
            DatabaseLocation::Postgres(url) => {
                // The parser's message could quote the URL, password and all.
                let options = PgConnectOptions::from_str(url.expose())
                    .map_err(|_| {
                        StoreError::Database(sqlx::Error::Configuration(
                            "the PostgreSQL URL is not valid".into(),
                        ))
                    })?
                    // Every statement is prepared once per connection and then planned once, not
                    // at each execution: PostgreSQL otherwise keeps planning afresh a statement
                    // whose plan for the values at hand looks cheaper than its general one, which
                    // is every statement of arrays (an audit group, a ledger append), at a cost
                    // that measured more than the statement itself (docs/BENCHMARKS.md). The
                    // statements are written so that their general plan uses the indexes
                    // (a page after a key is a row comparison, not an `IS NULL OR`). Sent with
                    // the connection's start-up, so it costs no round trip.
                    .options([("plan_cache_mode", "force_generic_plan")]);
                // No ping before each use: a broken connection fails its statement instead (that
                // request answers 500 and the pool drops the connection). sqlx pings every connection as it
                // is released anyway, so a connection that broke while idle is seldom handed out;
                // a ping on acquire too was a round trip more on every request.
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                let lookups = PgPoolOptions::new()
                    .max_connections(LOOKUP_CONNECTIONS)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(pool.connect_options().as_ref().clone())
                    .await?;
                (Pool::Postgres(pool), None, Some(lookups))
            }
        };
        let mut db = Db {
            pool,
            writer,
            reads: None,
            lookups,
        };
        ledger::backfill_decision_copies(&db).await?;
        db.reads = Some(audit::GroupCommit::start(db.clone()));
        Ok(db)
    }

    /// The pool reads go through (and, on PostgreSQL, writes).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The pool the tokens of public links are looked up through: on PostgreSQL a small one of
    /// their own, on SQLite the readers.
    pub(crate) fn lookup_pool(&self) -> Pool {
        match &self.lookups {
            Some(lookups) => Pool::Postgres(lookups.clone()),
            None => self.pool.clone(),
        }
    }

    /// Brings the schema up to date, then builds any missing decision copies.
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.pool {
            Pool::Sqlite(pool) => migrate_sqlite(pool.connect_options().get_filename()).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        ledger::backfill_decision_copies(self).await?;
        Ok(())
    }

    /// The pool a write outside a [`WriteTx`] goes through (one that needs no audit record, such
    /// as a session's last-seen time): SQLite's one write connection, PostgreSQL's pool.
    pub(crate) fn write_pool(&self) -> Pool {
        match (&self.pool, &self.writer) {
            (Pool::Sqlite(_), Some(writer)) => Pool::Sqlite(writer.clone()),
            (pool, _) => pool.clone(),
        }
    }

    /// Whether the database answers (one round trip, no data).
    pub async fn ping(&self) -> StoreResult<()> {
        on_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await?.rows_affected());
        Ok(())
    }

    pub fn backend_name(&self) -> &'static str {
        match &self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Begins a transaction that writes, holding a chain of the audit trail for its records
    /// ([`WriteTx`]). On SQLite it takes the one write connection and the write lock at once
    /// (`BEGIN IMMEDIATE`): a transaction that reads first and writes later could otherwise
    /// deadlock with another one.
    pub async fn begin(&self) -> StoreResult<WriteTx> {
        let mut tx = match (&self.pool, &self.writer) {
            (Pool::Sqlite(_), Some(writer)) => {
                Tx::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            (Pool::Sqlite(pool), None) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            (Pool::Postgres(pool), _) => Tx::Postgres(pool.begin().await?),
        };
        let chain = audit::take_chain(&mut tx).await?;
        Ok(WriteTx { tx, chain })
    }

    /// Begins a transaction that only reads: a consistent snapshot on SQLite (WAL) without the
    /// write lock; on PostgreSQL what each statement sees, plus whatever rows it locks.
    pub async fn begin_read(&self) -> StoreResult<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A read-only transaction that sees one snapshot throughout (PostgreSQL's repeatable read;
    /// every SQLite transaction is one), for reads that must agree with one another.
    pub async fn begin_snapshot(&self) -> StoreResult<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Pool::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    /// Writes the tallies of refused requests still counting, then closes the connections.
    pub async fn close(&self) {
        if let Err(e) = audit::close_refusal_windows(self).await {
            tracing::error!(error = %e, "cannot write the tally of refused requests");
        }
        on_db!(self, pool => pool.close().await);
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        if let Some(lookups) = &self.lookups {
            lookups.close().await;
        }
    }

    /// The group commit of reads' records, unless this is its own workers' handle.
    pub(crate) fn group_commit(&self) -> Option<&audit::GroupCommit> {
        self.reads.as_ref()
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

/// Either kind of transaction, as the connection [`on_tx!`] runs a statement on.
pub trait AsTx {
    fn as_tx(&mut self) -> &mut Tx;
}

impl AsTx for Tx {
    fn as_tx(&mut self) -> &mut Tx {
        self
    }
}

impl AsTx for WriteTx {
    fn as_tx(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

/// A transaction that changes something. It holds one chain of the audit trail, taken when it
/// began and held until it ends, so its records are appended to that chain
/// ([`audit::append`]) and commit with the change they record; no other writer appends to the
/// chain meanwhile, and writers holding other chains go on. Reads inside it go through the
/// [`Tx`] it derefs to.
///
/// What else a writer must hold is a type too: a consent ledger is appended to only through a
/// [`ledger::LedgerWriter`], which has locked the heads of the ledgers it writes.
pub struct WriteTx {
    tx: Tx,
    chain: audit::HeldChain,
}

impl WriteTx {
    /// Moves the held chain's head to its last record where the statements that appended did not
    /// (SQLite), then commits.
    pub async fn commit(mut self) -> StoreResult<()> {
        audit::write_head(&mut self.tx, &self.chain).await?;
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

fn sqlite_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
}

/// Runs the SQLite migrations on a connection of their own with foreign keys off: SQLite changes
/// a constraint only by rebuilding the table, and a table that others point at can be replaced
/// only so (each migration still runs in its transaction). When a migration was applied, the
/// foreign keys are then checked, and any row that breaks one stops the start; an up-to-date
/// database is not checked again (the check reads every row: seconds on a large database).
async fn migrate_sqlite(path: &Path) -> StoreResult<()> {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = sqlite_options(path).foreign_keys(false).connect().await?;
    let before = applied_migrations(&mut conn).await?;
    SQLITE_MIGRATIONS.run(&mut conn).await?;
    let after = applied_migrations(&mut conn).await?;
    let broken: Vec<(String, Option<i64>, String, i64)> = if after > before {
        sqlx::query_as("PRAGMA foreign_key_check")
            .fetch_all(&mut conn)
            .await?
    } else {
        Vec::new()
    };
    conn.close().await?;
    match broken.first() {
        Some((table, row, _, _)) => Err(StoreError::corrupt(
            "sqlite_master",
            format!("{table} row {}", row.unwrap_or_default()),
            "breaks a foreign key after the migrations",
        )),
        None => Ok(()),
    }
}

/// How many migrations a SQLite database has had (none, for a new one).
async fn applied_migrations(conn: &mut sqlx::SqliteConnection) -> StoreResult<i64> {
    let table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match table {
        Some(_) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(&mut *conn)
                .await?
        }
        None => 0,
    })
}

/// The readers' pool and the one write connection of a SQLite database, migrated.
async fn open_sqlite(path: &Path, sync: SqliteSync) -> StoreResult<(SqlitePool, SqlitePool)> {
    migrate_sqlite(path).await?;
    let readers = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(sqlite_options(path))
        .await?;
    // The one connection is handed from writer to writer: a ping before each would only add a
    // round trip through its thread (a broken connection fails the transaction instead).
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(
            sqlite_options(path)
                .synchronous(match sync {
                    SqliteSync::Normal => SqliteSynchronous::Normal,
                    SqliteSync::Full => SqliteSynchronous::Full,
                })
                // The writer touches the indexes of the outbox, the warrants and the audit trail
                // in every batch: a page cache of 16 MiB (SQLite's default is 2 MiB) keeps them
                // instead of reading them again from the operating system's.
                .pragma("cache_size", "-16384"),
        )
        .await?;
    Ok((readers, writer))
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

    /// The key and id a cursor holds; `None` for text that is not a cursor this server made
    /// (including one whose key holds a control character, which no sort key does and
    /// PostgreSQL could not always compare).
    pub fn decode(cursor: &str) -> Option<(String, Uuid)> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (id, key) = text.split_once('\u{1f}')?;
        if key.chars().any(char::is_control) {
            return None;
        }
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
        assert_eq!(cursor::decode(&cursor::encode("doe\u{0}jane", id)), None);
    }
}
