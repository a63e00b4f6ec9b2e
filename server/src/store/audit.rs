//! The audit trail's tables: the chains (`audit_chains`, `audit_records`, `audit_objects`) that
//! records are appended to, and the closed chain written before format 2 (`audit_events`,
//! `audit_chain_head`), which is only read.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rand::Rng;
use uuid::Uuid;

use super::{keep_prepared, Db, StoreError, StoreResult, Tx, WriteTx, MAX_BINDS};
use crate::audit::{genesis, Action, AuditRecord, LegacyRecord, Outcome, StoredRecord};
use crate::chain::{BrokenLink, ChainVerifier};
use crate::checkpoint::{self, AuditHeads, ChainHead};
use crate::store::actor_columns;
use crate::{on_db, on_tx};

/// How many chains the trail has: as many writers as this append at once without waiting for
/// one another (a PostgreSQL pool holds 16 connections; two replicas fill them).
pub const CHAINS: i32 = 32;

/// The chain a [`WriteTx`] holds, and where it stands.
#[derive(Debug)]
pub(super) struct HeldChain {
    id: i32,
    /// The chain's last record number when this transaction took it.
    taken_at: i64,
    seq: i64,
    hash: String,
    /// The last record number the chain's row holds: the head is written at commit only when
    /// the transaction appended past it.
    written: i64,
}

impl HeldChain {
    /// The chain and its last record number when this transaction took it: every record the
    /// transaction appends comes after it, and every transaction that commits later takes the
    /// chain at or beyond the transaction's last record.
    pub(super) fn taken_at(&self) -> (i32, i64) {
        (self.id, self.taken_at)
    }
}

/// Takes a chain for a new transaction. On PostgreSQL: the first that no other transaction
/// holds (`SKIP LOCKED`), so concurrent writers each take their own; when every chain is held,
/// one at random, waited for. On SQLite, whose writers hold the whole database one at a time:
/// chain 1.
pub(super) async fn take_chain(tx: &mut Tx) -> StoreResult<HeldChain> {
    const COLUMNS: &str = TAKE_COLUMNS;
    let row: ChainRow = match tx {
        Tx::Sqlite(t) => {
            sqlx::query_as(&format!("{COLUMNS} WHERE c.id = 1"))
                .fetch_one(&mut **t)
                .await?
        }
        Tx::Postgres(t) => {
            let free: Option<ChainRow> = sqlx::query_as(&format!(
                "{COLUMNS} ORDER BY c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED"
            ))
            .fetch_optional(&mut **t)
            .await?;
            match free {
                Some(row) => row,
                None => {
                    let id = rand::thread_rng().gen_range(1..=CHAINS);
                    return take_this_chain(t, id).await;
                }
            }
        }
    };
    Ok(held(row))
}

const TAKE_COLUMNS: &str = "SELECT c.id, c.last_seq, c.last_hash, h.last_hash \
                            FROM audit_chains c CROSS JOIN audit_chain_head h";
type ChainRow = (i32, i64, Option<String>, String);

/// PostgreSQL: the last chain no one holds (the group commit's), or when every chain is held the
/// last one, waited for.
async fn take_chain_from_the_end(
    t: &mut sqlx::Transaction<'static, sqlx::Postgres>,
) -> StoreResult<HeldChain> {
    let free: Option<ChainRow> = sqlx::query_as(&format!(
        "{TAKE_COLUMNS} ORDER BY c.id DESC LIMIT 1 FOR UPDATE OF c SKIP LOCKED"
    ))
    .fetch_optional(&mut **t)
    .await?;
    match free {
        Some(row) => Ok(held(row)),
        None => take_this_chain(t, CHAINS).await,
    }
}

/// PostgreSQL: takes chain `id`, waiting for whoever holds it.
async fn take_this_chain(
    t: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    id: i32,
) -> StoreResult<HeldChain> {
    let row: ChainRow = sqlx::query_as(&format!("{TAKE_COLUMNS} WHERE c.id = $1 FOR UPDATE OF c"))
        .bind(id)
        .fetch_one(&mut **t)
        .await?;
    Ok(held(row))
}

fn held(row: ChainRow) -> HeldChain {
    let (id, seq, hash, closed_head) = row;
    HeldChain {
        id,
        taken_at: seq,
        seq,
        hash: hash.unwrap_or_else(|| genesis(id, &closed_head)),
        written: seq,
    }
}

/// Writes the held chain's head, if the transaction appended past what its row holds.
pub(super) async fn write_head(tx: &mut Tx, chain: &HeldChain) -> StoreResult<()> {
    if chain.seq != chain.written {
        on_tx!(tx, conn => {
            sqlx::query("UPDATE audit_chains SET last_seq = $2, last_hash = $3 WHERE id = $1")
                .bind(chain.id)
                .bind(chain.seq)
                .bind(&chain.hash)
                .execute(conn)
                .await?
                .rows_affected()
        });
    }
    Ok(())
}

/// Appends `record` to the chain `tx` holds, so it commits or rolls back with the change it
/// records.
pub async fn append(tx: &mut WriteTx, record: &AuditRecord) -> StoreResult<()> {
    append_all(tx, std::slice::from_ref(record)).await
}

/// A record's row as it is inserted.
struct RecordInsert<'a> {
    seq: i64,
    record: &'a AuditRecord,
    actor: Option<(&'static str, Uuid)>,
    prev_hash: String,
    hash: String,
}

/// Appends `records`, in order, to the chain `tx` holds, with the objects they name: one
/// statement on PostgreSQL; on SQLite the records, then the objects.
pub async fn append_all(tx: &mut WriteTx, records: &[AuditRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    match &mut tx.tx {
        Tx::Postgres(conn) => {
            // Built once: this runs for every write transaction's records.
            static SQL: std::sync::LazyLock<String> =
                std::sync::LazyLock::new(|| format!("{APPENDING} SELECT 1"));
            appending(SQL.as_str(), &mut tx.chain, records)
                .execute(&mut **conn)
                .await?;
            Ok(())
        }
        Tx::Sqlite(conn) => {
            let rows = chain_rows(&mut tx.chain, records);
            insert_values(conn, tx.chain.id, &rows, &objects_of(&rows)).await
        }
    }
}

/// The records' insert of [`bind_unnested`] as a `WITH` member named `records`, left open so that
/// a condition can follow it (close it with `)`), and the objects' insert.
macro_rules! unnested_records {
    () => {
        "records AS (INSERT INTO audit_records (chain_id, seq, at, actor_kind, actor_id, via_id, \
         action, outcome, object_count, tally, prev_hash, hash) \
         SELECT $1, r.* FROM UNNEST($2::bigint[], $3::timestamptz[], $4::text[], $5::uuid[], \
         $6::uuid[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::text[]) AS r"
    };
}
macro_rules! unnested_objects {
    () => {
        "INSERT INTO audit_objects (chain_id, seq, position, object_kind, object_id) \
         SELECT $1, o.* FROM UNNEST($13::bigint[], $14::integer[], $15::text[], $16::uuid[]) AS o"
    };
}
const UNNESTED_RECORDS: &str = unnested_records!();
const UNNESTED_OBJECTS: &str = unnested_objects!();

/// PostgreSQL: the members of a `WITH` that append records to the chain a transaction holds,
/// with their objects, and move the chain's row to the last of them (`head`, `records`,
/// `objects`), bound as `$1` to `$18` by [`appending`]: a statement that follows them (from
/// `$19` on) runs in the same round trip, and the head is not written again at commit.
pub(super) const APPENDING: &str = concat!(
    "WITH head AS (UPDATE audit_chains SET last_seq = $17, last_hash = $18 WHERE id = $1), ",
    unnested_records!(),
    "), objects AS (",
    unnested_objects!(),
    ")"
);

/// `sql` (which begins with [`APPENDING`]) bound to `records` appended to `chain`, which moves
/// to the last of them; its row is written by the statement.
pub(super) fn appending<'q>(
    sql: &'q str,
    chain: &mut HeldChain,
    records: &[AuditRecord],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let rows = chain_rows(chain, records);
    let objects = objects_of(&rows);
    chain.written = chain.seq;
    bind_unnested(sqlx::query(sql), chain.id, &rows, &objects)
        .bind(chain.seq)
        .bind(chain.hash.clone())
}

/// The rows of `records` appended to `chain`, which moves to the last of them.
fn chain_rows<'a>(chain: &mut HeldChain, records: &'a [AuditRecord]) -> Vec<RecordInsert<'a>> {
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        let seq = chain.seq + 1;
        let hash = record.chain_hash(chain.id, seq, &chain.hash);
        let prev_hash = std::mem::replace(&mut chain.hash, hash.clone());
        chain.seq = seq;
        rows.push(RecordInsert {
            seq,
            record,
            actor: record.actor.map(actor_columns::encode),
            prev_hash,
            hash,
        });
    }
    rows
}

/// `(seq, position, kind, id)` of every object the rows name, in order.
fn objects_of<'a>(rows: &[RecordInsert<'a>]) -> Vec<(i64, i32, &'a str, Uuid)> {
    rows.iter()
        .flat_map(|r| {
            r.record
                .objects
                .iter()
                .enumerate()
                .map(move |(position, (kind, id))| (r.seq, position as i32, kind.as_str(), *id))
        })
        .collect()
}

/// Binds `$1` to `$16` of [`UNNESTED_RECORDS`] and [`UNNESTED_OBJECTS`]: the chain, then each
/// column as an array.
fn bind_unnested<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    chain_id: i32,
    rows: &[RecordInsert<'_>],
    objects: &[(i64, i32, &str, Uuid)],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let text = |f: &dyn Fn(&RecordInsert<'_>) -> String| rows.iter().map(f).collect::<Vec<_>>();
    query
        .bind(chain_id)
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.record.at).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.actor.map(|(kind, _)| kind.to_owned()))
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.actor.map(|(_, id)| id))
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.record.via).collect::<Vec<_>>())
        .bind(text(&|r| r.record.action.as_str().to_owned()))
        .bind(text(&|r| r.record.outcome.as_str().to_owned()))
        .bind(
            rows.iter()
                .map(|r| r.record.objects.len() as i64)
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.record.tally).collect::<Vec<_>>())
        .bind(text(&|r| r.prev_hash.clone()))
        .bind(text(&|r| r.hash.clone()))
        .bind(objects.iter().map(|o| o.0).collect::<Vec<_>>())
        .bind(objects.iter().map(|o| o.1).collect::<Vec<_>>())
        .bind(objects.iter().map(|o| o.2.to_owned()).collect::<Vec<_>>())
        .bind(objects.iter().map(|o| o.3).collect::<Vec<_>>())
}

/// SQLite: multi-row VALUES, in chunks its limit on parameters allows.
async fn insert_values(
    conn: &mut sqlx::SqliteConnection,
    chain_id: i32,
    rows: &[RecordInsert<'_>],
    objects: &[(i64, i32, &str, Uuid)],
) -> StoreResult<()> {
    for chunk in rows.chunks(MAX_BINDS / 12) {
        let mut query = sqlx::QueryBuilder::new(
            "INSERT INTO audit_records (chain_id, seq, at, actor_kind, actor_id, via_id, action, \
             outcome, object_count, tally, prev_hash, hash) ",
        );
        query.push_values(chunk, |mut row, r| {
            row.push_bind(chain_id)
                .push_bind(r.seq)
                .push_bind(r.record.at)
                .push_bind(r.actor.map(|(kind, _)| kind))
                .push_bind(r.actor.map(|(_, id)| id))
                .push_bind(r.record.via)
                .push_bind(r.record.action.as_str())
                .push_bind(r.record.outcome.as_str())
                .push_bind(r.record.objects.len() as i64)
                .push_bind(r.record.tally)
                .push_bind(r.prev_hash.as_str())
                .push_bind(r.hash.as_str());
        });
        query
            .build()
            .persistent(keep_prepared(chunk.len()))
            .execute(&mut *conn)
            .await?;
    }
    for chunk in objects.chunks(MAX_BINDS / 5) {
        let mut query = sqlx::QueryBuilder::new(
            "INSERT INTO audit_objects (chain_id, seq, position, object_kind, object_id) ",
        );
        query.push_values(chunk, |mut row, (seq, position, kind, id)| {
            row.push_bind(chain_id)
                .push_bind(*seq)
                .push_bind(*position)
                .push_bind(*kind)
                .push_bind(*id);
        });
        query
            .build()
            .persistent(keep_prepared(chunk.len()))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Appends `records` in one transaction of their own, for records that change nothing else: the
/// group commit's groups on SQLite, the refusal tallies, and any record of a store handle
/// without a group commit.
pub async fn append_now(db: &Db, records: &[AuditRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    append_all(&mut tx, records).await?;
    tx.commit().await
}

/// The group commit of the records of reads. A read is recorded before its data is returned, but
/// it changes nothing, so its record need not share the read's transaction: it is handed here,
/// and the records of every read that arrives while a commit is in flight go together in the next
/// transaction, one commit (one fsync) for all of them. Each caller waits for the commit that
/// holds its record, so the guarantee is kept: the record is durable before the data is
/// returned, and if it cannot be written the caller gets the error instead of the data. Readers
/// no longer take a chain or the write lock each.
///
/// One worker commits, on both stores: while it commits, the records of the reads that arrive
/// wait for the next commit. (On PostgreSQL four workers, each holding a chain, and no group
/// commit at all, each read committing its record on a chain of its own, measured no better on
/// this machine: docs/BENCHMARKS.md.)
#[derive(Clone)]
pub struct GroupCommit {
    queue: tokio::sync::mpsc::UnboundedSender<PendingRecord>,
    refusals: std::sync::Arc<RefusalTally>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

/// A read's records and whoever waits for their commit.
struct PendingRecord {
    records: Vec<AuditRecord>,
    committed: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The most records one group commit writes (the rest wait for the next).
const GROUP_LIMIT: usize = 512;

impl GroupCommit {
    /// Starts the worker, which appends through `db` (a handle without a group commit of its own).
    pub(super) fn start(db: Db) -> Self {
        let (queue, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(commit_groups(db.clone(), receiver));
        let refusals = std::sync::Arc::new(RefusalTally::default());
        tokio::spawn(close_windows(db, std::sync::Arc::downgrade(&refusals)));
        GroupCommit { queue, refusals }
    }
}

/// Refusals from callers nobody knows (no actor, no object: a bad bearer token, a login to an
/// address that is no account's) arrive as fast as anyone on the internet can send them. In each
/// window of [`REFUSAL_WINDOW`] the first [`REFUSALS_ONE_BY_ONE`] of each action and outcome are
/// recorded one by one (through the group commit, before the refusal is answered); the rest are
/// counted, and one record with their `tally` is written when the window closes (within
/// [`REFUSAL_SWEEP`] of its end, so at most 70 seconds after its first refusal, and when the store
/// closes). A flood costs a few records a minute, not a write each. A tally that cannot be
/// written is kept and written with the next. What a crash loses is the count of the windows not
/// yet written: at most a window's tally of each kind, never a refusal recorded one by one.
#[derive(Default)]
pub(crate) struct RefusalTally {
    windows: std::sync::Mutex<HashMap<(Action, Outcome), RefusalWindow>>,
    /// Tallies of closed windows whose write failed, written with the next.
    unwritten: std::sync::Mutex<Vec<AuditRecord>>,
    /// Held from taking tallies to writing them, so that the store's close waits for a sweep
    /// in flight instead of closing the connections under it.
    writing: tokio::sync::Mutex<()>,
}

struct RefusalWindow {
    opened: DateTime<Utc>,
    one_by_one: u32,
    tallied: i64,
}

pub const REFUSAL_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
pub const REFUSALS_ONE_BY_ONE: u32 = 10;
const REFUSAL_SWEEP: std::time::Duration = std::time::Duration::from_secs(10);

impl RefusalTally {
    /// Whether `record` (a refusal nobody is known for) is recorded now; else it is counted.
    fn admit(&self, record: &AuditRecord) -> bool {
        // A panic elsewhere while the lock was held leaves counts that are still counts.
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows
            .entry((record.action, record.outcome))
            .or_insert(RefusalWindow {
                opened: record.at,
                one_by_one: 0,
                tallied: 0,
            });
        if window.one_by_one < REFUSALS_ONE_BY_ONE {
            window.one_by_one += 1;
            true
        } else {
            window.tallied += 1;
            false
        }
    }

    /// Closes the windows opened before `closing_before` (every window with `None`): the tally
    /// records of those that counted refusals.
    fn close(&self, closing_before: Option<DateTime<Utc>>) -> Vec<AuditRecord> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let closed: Vec<(Action, Outcome)> = windows
            .iter()
            .filter(|(_, w)| closing_before.is_none_or(|before| w.opened < before))
            .map(|(key, _)| *key)
            .collect();
        closed
            .into_iter()
            .filter_map(|key| windows.remove(&key).map(|w| (key, w)))
            .filter(|(_, w)| w.tallied > 0)
            .map(|((action, outcome), w)| AuditRecord::new(action, outcome).tallied(w.tallied))
            .collect()
    }

    /// Writes the tallies of the windows opened before `closing_before` (every window with
    /// `None`), with any whose earlier write failed; on failure they are kept for the next.
    async fn write(&self, db: &Db, closing_before: Option<DateTime<Utc>>) -> StoreResult<()> {
        let _writing = self.writing.lock().await;
        let mut records = std::mem::take(&mut *self.unwritten());
        records.extend(self.close(closing_before));
        let written = append_now(db, &records).await;
        if written.is_err() {
            self.unwritten().extend(records);
        }
        written
    }

    fn unwritten(&self) -> std::sync::MutexGuard<'_, Vec<AuditRecord>> {
        // A panic elsewhere while the lock was held leaves records that are still whole.
        self.unwritten.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every [`REFUSAL_SWEEP`], writes the tallies of the windows that have ended, until the store is
/// gone.
async fn close_windows(db: Db, tally: std::sync::Weak<RefusalTally>) {
    let mut ticks = tokio::time::interval(REFUSAL_SWEEP);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(tally) = tally.upgrade() else { return };
        let ended = Some(crate::clock::now() - REFUSAL_WINDOW);
        if let Err(e) = tally.write(&db, ended).await {
            tracing::error!(error = %e, "cannot write the tally of refused requests");
        }
    }
}

/// Records a refusal: one nobody is known for through the window's tally ([`RefusalTally`]),
/// any other as a read's record is.
pub async fn record_refusal(db: &Db, record: AuditRecord) -> StoreResult<()> {
    let anonymous = record.actor.is_none() && record.objects.is_empty();
    if let (true, Some(group)) = (anonymous, db.group_commit()) {
        if !group.refusals.admit(&record) {
            return Ok(());
        }
    }
    record_read(db, record).await
}

/// Writes the tallies of every open window now (the store is closing; a test that counts).
pub async fn close_refusal_windows(db: &Db) -> StoreResult<()> {
    let Some(group) = db.group_commit() else {
        return Ok(());
    };
    group.refusals.write(db, None).await
}

/// The worker: takes whatever records are waiting (at least one), commits them together
/// ([`commit_group`]), and tells each waiter how it went.
async fn commit_groups(db: Db, mut queue: tokio::sync::mpsc::UnboundedReceiver<PendingRecord>) {
    let mut head = None;
    loop {
        let mut group = Vec::new();
        match queue.recv().await {
            Some(first) => group.push(first),
            // Every handle is gone: the store is closing.
            None => return,
        }
        while group.len() < GROUP_LIMIT {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let mut records = Vec::new();
        let mut waiters = Vec::with_capacity(group.len());
        for pending in group {
            records.extend(pending.records);
            waiters.push(pending.committed);
        }
        let result = commit_group(&db, &records, &mut head)
            .await
            .map_err(|e| e.to_string());
        for waiter in waiters {
            // A waiter that went away (its request was cancelled) needs no answer.
            let _ = waiter.send(result.clone());
        }
    }
}

/// Where the group commit's chain stood after its last commit (PostgreSQL): which chain, its last
/// record's number and hash.
struct GroupHead {
    chain: i32,
    seq: i64,
    hash: String,
}

/// Commits a group's records. On PostgreSQL the group commit keeps to one chain, taken from the
/// end (writers take the first free chain, so they seldom reach it, and two replicas' workers
/// each take their own). Once the worker knows where its chain stood after its last commit, in
/// one statement of its own (no BEGIN, no COMMIT: one round trip where a
/// transaction was five) that moves the chain's head only if the chain still stands there, under
/// the head row's lock, and inserts the records and their objects only if it moved. When it did
/// not (a writer appended to the chain meanwhile), and for the first group and on SQLite, in a
/// transaction that takes the chain first. After an error the worker forgets where the chain
/// stood (a statement cut off by a lost connection may have committed or not), so the next group
/// reads it again.
async fn commit_group(
    db: &Db,
    records: &[AuditRecord],
    head: &mut Option<GroupHead>,
) -> StoreResult<()> {
    let known = head.take();
    let super::Pool::Postgres(pool) = db.pool() else {
        return append_now(db, records).await;
    };
    if records.is_empty() {
        *head = known;
        return Ok(());
    }
    if let Some(known) = known {
        let mut chain = HeldChain {
            id: known.chain,
            taken_at: known.seq,
            seq: known.seq,
            hash: known.hash.clone(),
            written: known.seq,
        };
        let rows = chain_rows(&mut chain, records);
        let objects = objects_of(&rows);
        // Built once: this runs for every group.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "WITH head AS (UPDATE audit_chains SET last_seq = $17, last_hash = $18 \
                 WHERE id = $1 AND last_seq = $19 AND last_hash = $20 RETURNING id), \
                 {UNNESTED_RECORDS} WHERE EXISTS (SELECT 1 FROM head)), \
                 objects AS ({UNNESTED_OBJECTS} WHERE EXISTS (SELECT 1 FROM head)) \
                 SELECT COUNT(*) FROM head"
            )
        });
        let moved: i64 = bind_unnested(sqlx::query(SQL.as_str()), known.chain, &rows, &objects)
            .bind(chain.seq)
            .bind(&chain.hash)
            .bind(known.seq)
            .bind(&known.hash)
            .fetch_one(pool)
            .await
            .and_then(|row| sqlx::Row::try_get(&row, 0))?;
        if moved == 1 {
            *head = Some(GroupHead {
                chain: chain.id,
                seq: chain.seq,
                hash: chain.hash,
            });
            return Ok(());
        }
    }
    let mut taking = pool.begin().await?;
    let chain = take_chain_from_the_end(&mut taking).await?;
    let mut tx = WriteTx {
        tx: Tx::Postgres(taking),
        chain,
    };
    append_all(&mut tx, records).await?;
    let (chain, seq, hash) = (tx.chain.id, tx.chain.seq, tx.chain.hash.clone());
    tx.commit().await?;
    *head = Some(GroupHead { chain, seq, hash });
    Ok(())
}

/// Records a read: durably, before the caller returns what it read (see [`record_reads`]).
pub async fn record_read(db: &Db, record: AuditRecord) -> StoreResult<()> {
    record_reads(db, vec![record]).await
}

/// Records a read's records, in order and together: durably, before the caller returns what it
/// read. Through the group commit when `db` has one; else in a transaction of their own.
pub async fn record_reads(db: &Db, records: Vec<AuditRecord>) -> StoreResult<()> {
    let Some(group) = db.group_commit() else {
        return append_now(db, &records).await;
    };
    let (committed, outcome) = tokio::sync::oneshot::channel();
    let lost =
        || StoreError::GroupCommit("the group commit stopped before the record was written".into());
    group
        .queue
        .send(PendingRecord { records, committed })
        .map_err(|_| lost())?;
    outcome
        .await
        .map_err(|_| lost())?
        .map_err(StoreError::GroupCommit)
}

/// A chain of the trail: the closed one written before format 2, or one of the chains since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainName {
    Closed,
    Chain(i32),
}

impl std::fmt::Display for ChainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainName::Closed => f.write_str("the chain written before format 2"),
            ChainName::Chain(id) => write!(f, "chain {id}"),
        }
    }
}

/// The result of walking every chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Intact { records: u64 },
    Broken { chain: ChainName, link: BrokenLink },
}

#[derive(sqlx::FromRow)]
struct LegacyRow {
    seq: i64,
    at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    session_id: Option<Uuid>,
    action: String,
    object_kind: Option<String>,
    object_id: Option<Uuid>,
    outcome: String,
    prev_hash: String,
    hash: String,
}

impl From<LegacyRow> for LegacyRecord {
    fn from(row: LegacyRow) -> Self {
        LegacyRecord {
            seq: row.seq,
            at: row.at,
            actor_id: row.actor_id,
            session_id: row.session_id,
            action: row.action,
            object_kind: row.object_kind,
            object_id: row.object_id,
            outcome: row.outcome,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    chain_id: i32,
    seq: i64,
    at: DateTime<Utc>,
    actor_kind: Option<String>,
    actor_id: Option<Uuid>,
    via_id: Option<Uuid>,
    action: String,
    outcome: String,
    object_count: i64,
    tally: Option<i64>,
    prev_hash: String,
    hash: String,
}

impl RecordRow {
    fn into_record(self, objects: Vec<(String, Uuid)>) -> StoredRecord {
        StoredRecord {
            chain: self.chain_id,
            seq: self.seq,
            at: self.at,
            actor_kind: self.actor_kind,
            actor_id: self.actor_id,
            via: self.via_id,
            action: self.action,
            outcome: self.outcome,
            object_count: self.object_count,
            objects,
            tally: self.tally,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

const PAGE: i64 = 10_000;

/// Walks the closed chain and every chain since, in pages, checking every link and each head.
pub async fn verify(db: &Db) -> StoreResult<Verification> {
    let mut records = 0;
    let (closed_seq, closed_hash): (i64, String) = on_db!(db, pool => {
        sqlx::query_as("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = 1")
            .fetch_one(pool)
            .await?
    });
    match verify_closed(db, closed_seq, &closed_hash).await? {
        Ok(checked) => records += checked,
        Err(link) => {
            return Ok(Verification::Broken {
                chain: ChainName::Closed,
                link,
            })
        }
    }
    let heads: Vec<(i32, i64, Option<String>)> = on_db!(db, pool => {
        sqlx::query_as("SELECT id, last_seq, last_hash FROM audit_chains ORDER BY id")
            .fetch_all(pool)
            .await?
    });
    for (id, last_seq, last_hash) in heads {
        let genesis = genesis(id, &closed_hash);
        let head_hash = last_hash.unwrap_or_else(|| genesis.clone());
        match verify_chain(db, id, &genesis, last_seq, &head_hash).await? {
            Ok(checked) => records += checked,
            Err(link) => {
                return Ok(Verification::Broken {
                    chain: ChainName::Chain(id),
                    link,
                })
            }
        }
    }
    Ok(Verification::Intact { records })
}

/// A record of either format, as a chain walk checks it.
trait Link {
    fn seq(&self) -> i64;
    fn check(&self, verifier: &mut ChainVerifier);
}

impl Link for LegacyRecord {
    fn seq(&self) -> i64 {
        self.seq
    }
    fn check(&self, verifier: &mut ChainVerifier) {
        LegacyRecord::check(self, verifier)
    }
}

impl Link for StoredRecord {
    fn seq(&self) -> i64 {
        self.seq
    }
    fn check(&self, verifier: &mut ChainVerifier) {
        StoredRecord::check(self, verifier)
    }
}

/// A walk of one chain in pages of [`PAGE`] records: feed it each page read after
/// [`Walk::after`] while [`Walk::wants_more`], then check the end against the head.
struct Walk {
    verifier: ChainVerifier,
    after: i64,
    ended: bool,
}

impl Walk {
    fn new(verifier: ChainVerifier) -> Self {
        Walk {
            verifier,
            after: 0,
            ended: false,
        }
    }

    fn wants_more(&self) -> bool {
        !self.ended
    }

    /// Checks a page's records in order; a short page, or a broken link, ends the walk.
    fn feed<R: Link>(&mut self, records: &[R]) {
        for record in records {
            record.check(&mut self.verifier);
        }
        self.after = records.last().map_or(self.after, Link::seq);
        self.ended = self.verifier.broken.is_some() || (records.len() as i64) < PAGE;
    }

    fn finish(self, head_seq: i64, head_hash: &str) -> Result<u64, BrokenLink> {
        self.verifier.finish(head_seq, head_hash)
    }
}

async fn verify_closed(
    db: &Db,
    head_seq: i64,
    head_hash: &str,
) -> StoreResult<Result<u64, BrokenLink>> {
    let mut walk = Walk::new(ChainVerifier::default());
    while walk.wants_more() {
        let rows: Vec<LegacyRow> = on_db!(db, pool => {
            sqlx::query_as(
                "SELECT seq, at, actor_id, session_id, action, object_kind, object_id, outcome, \
                 prev_hash, hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(walk.after)
            .bind(PAGE)
            .fetch_all(pool)
            .await?
        });
        let records: Vec<LegacyRecord> = rows.into_iter().map(LegacyRecord::from).collect();
        walk.feed(&records);
    }
    Ok(walk.finish(head_seq, head_hash))
}

async fn verify_chain(
    db: &Db,
    chain: i32,
    genesis: &str,
    head_seq: i64,
    head_hash: &str,
) -> StoreResult<Result<u64, BrokenLink>> {
    let mut walk = Walk::new(ChainVerifier::from_genesis(genesis));
    while walk.wants_more() {
        let records = records(db, chain, walk.after, PAGE).await?;
        walk.feed(&records);
    }
    Ok(walk.finish(head_seq, head_hash))
}

/// Up to `limit` records of `chain` after record `after`, in order, each with the objects stored
/// for it (the objects of a record that is not there are left over: a walk names the record).
pub async fn records(
    db: &Db,
    chain: i32,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<StoredRecord>> {
    let rows: Vec<RecordRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT chain_id, seq, at, actor_kind, actor_id, via_id, action, outcome, object_count, \
             tally, prev_hash, hash FROM audit_records WHERE chain_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(chain)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    let mut objects = match (rows.first(), rows.last()) {
        (Some(first), Some(last)) => objects_between(db, chain, first.seq, last.seq).await?,
        _ => HashMap::new(),
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            let named = objects.remove(&row.seq).unwrap_or_default();
            row.into_record(named)
        })
        .collect())
}

/// The objects named by records `from..=to` of `chain`, by record, in position order.
async fn objects_between(
    db: &Db,
    chain: i32,
    from: i64,
    to: i64,
) -> StoreResult<HashMap<i64, Vec<(String, Uuid)>>> {
    let rows: Vec<(i64, String, Uuid)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT seq, object_kind, object_id FROM audit_objects \
             WHERE chain_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, position",
        )
        .bind(chain)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?
    });
    let mut by_record: HashMap<i64, Vec<(String, Uuid)>> = HashMap::new();
    for (seq, kind, id) in rows {
        by_record.entry(seq).or_default().push((kind, id));
    }
    Ok(by_record)
}

/// Where every chain stands in `tx`'s snapshot: the closed chain's head and each chain that has
/// records, for a checkpoint.
pub async fn heads(tx: &mut Tx) -> StoreResult<AuditHeads> {
    let (closed_seq, closed_hash): (i64, String) = on_tx!(&mut *tx, conn => {
        sqlx::query_as("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = 1")
            .fetch_one(conn)
            .await?
    });
    let chains: Vec<(i32, i64, String)> = on_tx!(&mut *tx, conn => {
        sqlx::query_as(
            "SELECT id, last_seq, last_hash FROM audit_chains \
             WHERE last_seq > 0 AND last_hash IS NOT NULL ORDER BY id",
        )
        .fetch_all(conn)
        .await?
    });
    Ok(AuditHeads {
        closed: checkpoint::Head {
            seq: closed_seq,
            hash: closed_hash,
        },
        chains: chains
            .into_iter()
            .map(|(chain, seq, hash)| ChainHead { chain, seq, hash })
            .collect(),
    })
}

/// Where one chain stands in `tx`'s snapshot, and the hash of its record `seq` (if there is one).
pub async fn head_and_hash_at(
    tx: &mut Tx,
    chain: i32,
    seq: i64,
) -> StoreResult<(i64, Option<String>)> {
    let head: Option<i64> = on_tx!(&mut *tx, conn => {
        sqlx::query_scalar("SELECT last_seq FROM audit_chains WHERE id = $1")
            .bind(chain)
            .fetch_optional(conn)
            .await?
    });
    let hash: Option<String> = on_tx!(&mut *tx, conn => {
        sqlx::query_scalar("SELECT hash FROM audit_records WHERE chain_id = $1 AND seq = $2")
            .bind(chain)
            .bind(seq)
            .fetch_optional(conn)
            .await?
    });
    Ok((head.unwrap_or(0), hash))
}

/// One access to an object, as the trail has it: what was done, when, by whom.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Access {
    pub at: DateTime<Utc>,
    pub actor_kind: Option<String>,
    pub actor_id: Option<Uuid>,
    pub via_id: Option<Uuid>,
    pub action: String,
    pub outcome: String,
}

/// Every record about one object, oldest first, from both formats: one query, each half read
/// through its index (`audit_objects_by_object`, `audit_events_by_object`).
pub async fn for_object(db: &Db, object_id: Uuid) -> StoreResult<Vec<Access>> {
    let rows: Vec<Access> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT r.at, r.actor_kind, r.actor_id, r.via_id, r.action, r.outcome \
             FROM audit_objects o JOIN audit_records r ON r.chain_id = o.chain_id AND r.seq = o.seq \
             WHERE o.object_id = $1 \
             UNION ALL \
             SELECT at, CASE WHEN actor_id IS NULL THEN NULL ELSE 'staff' END, actor_id, session_id, \
             action, outcome FROM audit_events WHERE object_id = $1 \
             ORDER BY 1",
        )
        .bind(object_id)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_beyond_its_limit_and_closes_only_once_it_has_ended() {
        let tally = RefusalTally::default();
        let record = AuditRecord::new(Action::Unauthenticated, Outcome::Refused);
        for _ in 0..REFUSALS_ONE_BY_ONE {
            assert!(tally.admit(&record));
        }
        assert!(!tally.admit(&record));
        assert!(!tally.admit(&record));
        let other = AuditRecord::new(Action::LoginFailed, Outcome::UnknownAccount);
        assert!(
            tally.admit(&other),
            "each action and outcome has its own window"
        );
        assert!(tally.close(Some(record.at)).is_empty(), "not ended yet");
        let closed = tally.close(Some(record.at + REFUSAL_WINDOW));
        assert_eq!(
            closed.len(),
            1,
            "a window with nothing counted needs no tally"
        );
        assert_eq!(
            (closed[0].action, closed[0].tally),
            (Action::Unauthenticated, Some(2))
        );
        assert!(
            tally.admit(&record),
            "a new window records one by one again"
        );
    }
}
