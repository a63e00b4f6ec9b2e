//! The `ledger_events`, `ledger_heads` and `consent_wordings` tables: each contact's consent
//! ledger, append-only and hash-chained per contact, and the exact wordings consents point at.
//!
//! An event is kept as its JSON in the scenario vocabulary, with a consent's wording moved to
//! `consent_wordings` (one row per distinct text, numbered in order of first use) and put back
//! when the event is read.

use assent_shared::api::{ActorRef, ConsentWording, EventSource, RecordedEvent, RecordedVia};
use assent_shared::domain::DATA_SUBJECT_SHOWN_AS;
use assent_shared::ledger::{EventKind, LedgerEvent};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use std::collections::HashMap;

use super::{
    actor_columns, keep_prepared, lock_sequence, to_json, Db, IdList, Sequence, StoreError,
    StoreResult, Tx, WriteTx, MAX_BINDS,
};
use crate::audit::AuditRecord;
use crate::chain::{hash_fields, BrokenLink, ChainVerifier, GENESIS_HASH};
use crate::checkpoint::{AuditHeads, LedgerDigest, LedgerSummary};
use crate::{on_db, on_tx};
use assent_engine::compact;

/// An event about to be recorded.
pub struct NewEntry<'a> {
    pub contact_id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: &'a EventKind,
    pub external_id: Option<&'a str>,
    pub source: Option<&'a EventSource>,
    pub recorded_by: ActorRef,
    /// Part of an import of an earlier ledger (by a member of staff, or the seed job).
    pub imported: bool,
}

impl NewEntry<'_> {
    /// How the event's recorder is kept: `recorded_via` and the id in `recorded_by` (the user, the
    /// contact, or the job). These two columns are part of the event's hash.
    fn recorder(&self) -> (RecordedVia, Uuid) {
        let (_, id) = actor_columns::encode(self.recorded_by);
        let via = match (self.recorded_by, self.imported) {
            (_, true) => RecordedVia::Import,
            (ActorRef::Staff { .. }, false) => RecordedVia::User,
            (ActorRef::DataSubject { .. }, false) => RecordedVia::DataSubject,
            (ActorRef::System { .. }, false) => RecordedVia::System,
        };
        (via, id)
    }
}

/// Who recorded an event, in words, from how it is kept.
fn recorder_name(
    via: RecordedVia,
    recorded_by: Option<Uuid>,
    user_name: Option<String>,
) -> Option<String> {
    let job = || {
        recorded_by
            .and_then(actor_columns::job_of)
            .map(|job| job.shown_as().to_owned())
    };
    match via {
        // An import by a job (the seed) names the job.
        RecordedVia::User | RecordedVia::Import => user_name.or_else(job),
        RecordedVia::DataSubject => Some(DATA_SUBJECT_SHOWN_AS.to_owned()),
        RecordedVia::System => job(),
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    contact_id: Uuid,
    seq: i64,
    at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    recorded_by: Option<Uuid>,
    recorded_by_name: Option<String>,
    recorded_via: String,
    external_id: Option<String>,
    event_type: String,
    event: String,
    wording_text: Option<String>,
    wording_hash: Option<String>,
    wording_version: Option<i64>,
    source: Option<String>,
    prev_hash: String,
    hash: String,
}

/// Events with their wordings; `{recorder}` is the recorder's name, or NULL where it is not
/// shown (verification reads only what the hashes cover).
macro_rules! select_events {
    ($recorder:literal, $join:literal) => {
        select_events!($recorder, "ledger_events", $join)
    };
    ($recorder:literal, $from:literal, $join:literal) => {
        concat!(
            "SELECT e.id, e.contact_id, e.seq, e.at, e.recorded_at, e.recorded_by, ",
            $recorder,
            " AS recorded_by_name, e.recorded_via, e.external_id, e.event_type, e.event, \
             w.text AS wording_text, w.text_hash AS wording_hash, w.version AS wording_version, \
             e.source, e.prev_hash, e.hash \
             FROM ",
            $from,
            " e LEFT JOIN consent_wordings w ON w.id = e.wording_id",
            $join
        )
    };
}
/// Events as they are shown: with the name of who recorded each.
const SELECT: &str = select_events!(
    "u.display_name",
    " LEFT JOIN users u ON u.id = e.recorded_by"
);
/// Events as they are verified.
const SELECT_FOR_VERIFY: &str = select_events!("CAST(NULL AS TEXT)", "");

fn micros(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn text_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The hash of one event as the `seq`-th link of its contact's chain after `prev_hash`.
#[allow(clippy::too_many_arguments)]
fn event_hash(
    contact_id: Uuid,
    seq: i64,
    at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    recorded_by: Option<Uuid>,
    recorded_via: &str,
    external_id: Option<&str>,
    event_type: &str,
    event: &str,
    wording_hash: Option<&str>,
    source: Option<&str>,
    prev_hash: &str,
) -> String {
    let recorded_by = recorded_by.map(|id| id.to_string()).unwrap_or_default();
    hash_fields(&[
        &seq.to_string(),
        &contact_id.to_string(),
        &micros(at),
        &micros(recorded_at),
        &recorded_by,
        recorded_via,
        external_id.unwrap_or_default(),
        event_type,
        event,
        wording_hash.unwrap_or_default(),
        source.unwrap_or_default(),
        prev_hash,
    ])
}

/// The event JSON as stored: a consent's wording is kept in `consent_wordings` instead.
fn stored_event(kind: &EventKind) -> StoreResult<(String, Option<&str>)> {
    let mut stored = kind.clone();
    let wording = match kind {
        EventKind::ConsentGiven { wording, .. } => Some(wording.as_str()),
        _ => None,
    };
    if let EventKind::ConsentGiven { wording, .. } = &mut stored {
        wording.clear();
    }
    Ok((to_json(&stored, "a ledger event")?, wording))
}

/// The id of the wording whose text hashes to `hash`, if it is recorded.
async fn wording_by_hash(tx: &mut Tx, hash: &str) -> StoreResult<Option<Uuid>> {
    Ok(on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT id FROM consent_wordings WHERE text_hash = $1").bind(hash).fetch_optional(conn).await?
    }))
}

/// The wording's id and hash, recording it on first use. A new wording is recorded under the
/// wordings' lock ([`Sequence::ConsentWordings`]): two writers recording the same new text, or
/// two new texts, would otherwise race to one text or one version number.
async fn wording(tx: &mut WriteTx, text: &str, at: DateTime<Utc>) -> StoreResult<(Uuid, String)> {
    let hash = text_hash(text);
    if let Some(id) = wording_by_hash(tx, &hash).await? {
        return Ok((id, hash));
    }
    lock_sequence(tx, Sequence::ConsentWordings).await?;
    if let Some(id) = wording_by_hash(tx, &hash).await? {
        return Ok((id, hash));
    }
    let id = Uuid::now_v7();
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO consent_wordings (id, version, text, text_hash, first_used_at) \
             VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM consent_wordings), $2, $3, $4)",
        )
        .bind(id)
        .bind(text)
        .bind(&hash)
        .bind(at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok((id, hash))
}

/// The id and version of the wording `text`, recording it on first use (a sign-up form names
/// the version it shows before anyone has consented through it).
pub async fn record_wording(
    tx: &mut WriteTx,
    text: &str,
    at: DateTime<Utc>,
) -> StoreResult<(Uuid, i64)> {
    let (id, _) = wording(tx, text, at).await?;
    let version: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT version FROM consent_wordings WHERE id = $1").bind(id).fetch_one(conn).await?
    });
    Ok((id, version))
}

/// The ledgers of some contacts, their heads locked for the rest of a transaction: the only way
/// to append to a ledger. Holding the head is what keeps a ledger's numbers free of races (two
/// writers would otherwise both append event `n + 1`), so no append compiles without it. And no
/// ledger changes without its audit record: [`lock`] appends the record of the change first, so
/// every event sits below its chain's next head, where a checkpoint covers it:
///
/// ```compile_fail
/// # async fn without_the_lock(tx: &mut assent_server::store::WriteTx, entry: &assent_server::store::ledger::NewEntry<'_>) {
/// assent_server::store::ledger::append(tx, entry, assent_server::clock::now()).await;
/// # }
/// ```
///
/// ```no_run
/// # async fn with_the_lock(tx: &mut assent_server::store::WriteTx, entry: &assent_server::store::ledger::NewEntry<'_>, record: &assent_server::audit::AuditRecord) {
/// let mut ledger = assent_server::store::ledger::lock(tx, record, &[entry.contact_id]).await.unwrap();
/// ledger.append(entry, assent_server::clock::now()).await.unwrap();
/// # }
/// ```
pub struct LedgerWriter<'t> {
    tx: &'t mut WriteTx,
    heads: HashMap<Uuid, Head>,
}

/// Appends `record` (the audit record of the change about to be made) to the trail in `tx`, then
/// locks the heads of `contact_ids`' ledgers until `tx` ends. On PostgreSQL the existing heads
/// are locked `FOR UPDATE` in id order (so that two writers of overlapping sets do not
/// deadlock), in the statement that appends the record; contacts whose ledgers have no head yet
/// are then given one at the genesis, locked in id order among themselves (after the existing
/// ones, so two writers each creating heads the other already holds could still meet in a
/// deadlock, which PostgreSQL breaks by failing one); writers of other ledgers go on. On SQLite the
/// transaction already holds the database. An id that is not a contact's is not held
/// ([`LedgerWriter::holds`]).
pub async fn lock<'t>(
    tx: &'t mut WriteTx,
    record: &AuditRecord,
    contact_ids: &[Uuid],
) -> StoreResult<LedgerWriter<'t>> {
    let mut ids = contact_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let rows = match &mut tx.tx {
        Tx::Postgres(conn) => {
            // Built once: this runs for every change of a ledger.
            static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                format!(
                    "{} SELECT contact_id, last_seq, last_hash, decision_copy FROM ledger_heads \
                     WHERE contact_id = ANY($19) ORDER BY contact_id FOR UPDATE",
                    super::audit::APPENDING
                )
            });
            let record = std::slice::from_ref(record);
            let found = super::audit::appending(SQL.as_str(), &mut tx.chain, record)
                .bind(&ids)
                .fetch_all(&mut **conn)
                .await?;
            let mut rows = decode_heads(found)?;
            let missing = without_heads(&ids, &rows);
            if !missing.is_empty() {
                rows.extend(genesis_heads(conn, &missing).await?);
            }
            rows
        }
        Tx::Sqlite(_) => {
            super::audit::append(tx, record).await?;
            sqlite_heads(tx, &ids).await?
        }
    };
    let mut heads = HashMap::with_capacity(rows.len());
    for (contact_id, seq, hash, copy) in rows {
        let copy = match copy {
            Some(copy) => copy,
            // Start-up builds missing copies (`backfill_decision_copies`); this covers a copy
            // lost since: rebuilt from the events recorded so far, under the head's lock.
            None => rebuild_copy(tx, contact_id).await?,
        };
        heads.insert(contact_id, Head { seq, hash, copy });
    }
    Ok(LedgerWriter { tx, heads })
}

/// A ledger head as it is read: contact, last number, last hash, decision copy (if kept).
type HeadRow = (Uuid, i64, String, Option<Vec<u8>>);

/// The ids (sorted) that have no head among `rows`.
fn without_heads(ids: &[Uuid], rows: &[HeadRow]) -> Vec<Uuid> {
    let held: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.0).collect();
    ids.iter()
        .copied()
        .filter(|id| !held.contains(id))
        .collect()
}

fn decode_heads(rows: Vec<sqlx::postgres::PgRow>) -> StoreResult<Vec<HeadRow>> {
    use sqlx::FromRow;
    Ok(rows
        .iter()
        .map(HeadRow::from_row)
        .collect::<Result<_, _>>()?)
}

/// PostgreSQL: gives each contact among `ids` a head at the genesis (an id that is not a
/// contact's gets none; a head another writer gave meanwhile is kept), and locks them.
async fn genesis_heads(conn: &mut sqlx::PgConnection, ids: &[Uuid]) -> StoreResult<Vec<HeadRow>> {
    sqlx::query(
        "INSERT INTO ledger_heads (contact_id, last_seq, last_hash, decision_copy) \
         SELECT id, 0, $2, ''::bytea FROM contacts WHERE id = ANY($1) \
         ON CONFLICT (contact_id) DO NOTHING",
    )
    .bind(ids)
    .bind(GENESIS_HASH)
    .execute(&mut *conn)
    .await?;
    let rows = sqlx::query(
        "SELECT contact_id, last_seq, last_hash, decision_copy FROM ledger_heads \
         WHERE contact_id = ANY($1) ORDER BY contact_id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    decode_heads(rows)
}

impl LedgerWriter<'_> {
    /// Appends an event to its contact's ledger.
    pub async fn append(
        &mut self,
        entry: &NewEntry<'_>,
        recorded_at: DateTime<Utc>,
    ) -> StoreResult<RecordedEvent> {
        let rows = self.link(std::slice::from_ref(entry), recorded_at).await?;
        let id = rows[0].id;
        let moved = moved(&self.heads, &rows);
        let shown: Option<EventRow> = match &mut self.tx.tx {
            Tx::Postgres(conn) => {
                // Built once: this runs for every event recorded one at a time.
                static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    let shown = select_events!(
                        "u.display_name",
                        "appended",
                        " LEFT JOIN users u ON u.id = e.recorded_by"
                    );
                    format!("{APPENDING_EVENTS} {shown}")
                });
                let args = bind_appended(&rows, &moved, recorded_at, self.tx.chain.taken_at())?;
                sqlx::query_as_with(SQL.as_str(), args)
                    .fetch_optional(&mut **conn)
                    .await?
            }
            Tx::Sqlite(_) => {
                insert_sqlite(self.tx, &rows, &moved, recorded_at).await?;
                let sql = format!("{SELECT} WHERE e.id = $1");
                on_tx!(&mut *self.tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?)
            }
        };
        shown
            .ok_or_else(|| StoreError::corrupt("ledger_events", id, "vanished as it was recorded"))?
            .try_into()
    }

    /// Whether `contact_id`'s ledger is held: it is, once locked, unless it is not a contact's.
    pub fn holds(&self, contact_id: Uuid) -> bool {
        self.heads.contains_key(&contact_id)
    }

    /// The transaction, for reads and other writes between appends.
    pub fn tx(&mut self) -> &mut WriteTx {
        self.tx
    }
}

/// Where a contact's chain stands while events are appended to it.
struct Head {
    seq: i64,
    hash: String,
    copy: Vec<u8>,
}

/// A contact and its ledger head, if it has one.
type ContactHeadRow = (Uuid, Option<i64>, Option<String>, Option<Vec<u8>>);

/// SQLite: the heads of the contacts among `contact_ids`, a contact whose ledger has none yet at
/// the genesis (an id that is no contact's gets none), in one statement a chunk. The
/// transaction holds the database, so no other writer moves them before it ends ([`lock`]);
/// `UNIQUE (contact_id, seq)` is the backstop.
async fn sqlite_heads(tx: &mut WriteTx, contact_ids: &[Uuid]) -> StoreResult<Vec<HeadRow>> {
    let mut heads = Vec::with_capacity(contact_ids.len());
    for chunk in contact_ids.chunks(MAX_BINDS) {
        let rows: Vec<ContactHeadRow> = on_tx!(&mut *tx, conn => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT c.id, h.last_seq, h.last_hash, h.decision_copy FROM contacts c \
                 LEFT JOIN ledger_heads h ON h.contact_id = c.id WHERE c.id IN (",
            );
            let mut ids = query.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            query.push(")");
            query.build_query_as().persistent(keep_prepared(chunk.len())).fetch_all(conn).await?
        });
        heads.extend(
            rows.into_iter()
                .map(|(id, seq, hash, copy)| match (seq, hash) {
                    (Some(seq), Some(hash)) => (id, seq, hash, copy),
                    _ => (id, 0, GENESIS_HASH.to_owned(), Some(Vec::new())),
                }),
        );
    }
    Ok(heads)
}

/// An event row as it is inserted.
struct EventInsert<'a> {
    id: Uuid,
    entry: &'a NewEntry<'a>,
    recorded_by: Uuid,
    recorded_via: RecordedVia,
    seq: i64,
    at: DateTime<Utc>,
    event: String,
    wording_id: Option<Uuid>,
    source: Option<String>,
    prev_hash: String,
    hash: String,
}

impl LedgerWriter<'_> {
    /// Appends events, in order, to their contacts' ledgers (an import, a seeded batch): every
    /// contact's head was locked and read by [`lock`], every link and decision copy is computed
    /// here, and the rows go in a few multi-row statements. Returns the new events' ids in the order
    /// of `entries`.
    pub async fn append_many(
        &mut self,
        entries: &[NewEntry<'_>],
        recorded_at: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        let rows = self.link(entries, recorded_at).await?;
        let moved = moved(&self.heads, &rows);
        match &mut self.tx.tx {
            Tx::Postgres(conn) => {
                // Built once: this runs for every import and seeded batch.
                static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!("{APPENDING_EVENTS} SELECT COUNT(*) FROM appended")
                });
                let args = bind_appended(&rows, &moved, recorded_at, self.tx.chain.taken_at())?;
                sqlx::query_scalar_with::<_, i64, _>(SQL.as_str(), args)
                    .fetch_one(&mut **conn)
                    .await?;
            }
            Tx::Sqlite(_) => insert_sqlite(self.tx, &rows, &moved, recorded_at).await?,
        }
        Ok(rows.iter().map(|r| r.id).collect())
    }

    /// Links `entries`, in order, to their contacts' chains: every contact's head was locked and
    /// read by [`lock`]; each event's hash and the decision copies are computed here, and the
    /// heads move to the last of them.
    async fn link<'e>(
        &mut self,
        entries: &'e [NewEntry<'e>],
        recorded_at: DateTime<Utc>,
    ) -> StoreResult<Vec<EventInsert<'e>>> {
        let tx = &mut *self.tx;
        let heads = &mut self.heads;
        let mut wordings: HashMap<String, (Uuid, String)> = HashMap::new();
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            // Microseconds, as PostgreSQL keeps them, so that both stores and the copy agree.
            let at = entry.at.trunc_subsecs(6);
            let (event, wording_text) = stored_event(entry.kind)?;
            let wording = match wording_text {
                Some(text) => match wordings.get(text) {
                    Some(known) => Some(known.clone()),
                    None => {
                        let found = wording(tx, text, recorded_at).await?;
                        wordings.insert(text.to_owned(), found.clone());
                        Some(found)
                    }
                },
                None => None,
            };
            let source = entry
                .source
                .map(|s| to_json(s, "an event's source"))
                .transpose()?;
            let head = heads.get_mut(&entry.contact_id).ok_or_else(|| {
                StoreError::corrupt(
                    "ledger_heads",
                    entry.contact_id,
                    "is not a contact's, or was not locked by this transaction's ledger writer",
                )
            })?;
            let seq = head.seq + 1;
            let (via, recorded_by) = entry.recorder();
            let hash = event_hash(
                entry.contact_id,
                seq,
                at,
                recorded_at,
                Some(recorded_by),
                via.as_str(),
                entry.external_id,
                entry.kind.type_name(),
                &event,
                wording.as_ref().map(|(_, h)| h.as_str()),
                source.as_deref(),
                &head.hash,
            );
            compact::push(&mut head.copy, at, recorded_at, entry.kind);
            let prev_hash = std::mem::replace(&mut head.hash, hash.clone());
            head.seq = seq;
            rows.push(EventInsert {
                id: Uuid::now_v7(),
                entry,
                recorded_by,
                recorded_via: via,
                seq,
                at,
                event,
                wording_id: wording.map(|(id, _)| id),
                source,
                prev_hash,
                hash,
            });
        }
        Ok(rows)
    }
}

/// The heads that `rows` moved, each once.
fn moved<'h>(heads: &'h HashMap<Uuid, Head>, rows: &[EventInsert<'_>]) -> Vec<(Uuid, &'h Head)> {
    let mut ids: Vec<Uuid> = rows.iter().map(|r| r.entry.contact_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .filter_map(|id| heads.get(&id).map(|head| (id, head)))
        .collect()
}

/// PostgreSQL: a data-modifying `WITH` that inserts linked events (`appended`, every column of
/// each) and moves their contacts' heads, each column bound as an array by [`bind_appended`],
/// so that the text is the same whatever the number of events; the statement that follows it
/// reads `appended` in the same round trip.
const APPENDING_EVENTS: &str = "WITH appended AS (INSERT INTO ledger_events (id, contact_id, seq, \
     at, recorded_at, recorded_by, recorded_via, external_id, event_type, event, wording_id, \
     source, prev_hash, hash, audit_chain, audit_seq) \
     SELECT n.id, n.contact_id, n.seq, n.at, $1, n.recorded_by, n.recorded_via, n.external_id, \
     n.event_type, n.event, n.wording_id, n.source, n.prev_hash, n.hash, $2, $3 \
     FROM UNNEST($4::uuid[], $5::uuid[], $6::bigint[], $7::timestamptz[], $8::uuid[], \
     $9::text[], $10::text[], $11::text[], $12::text[], $13::uuid[], $14::text[], $15::text[], \
     $16::text[]) AS n(id, contact_id, seq, at, recorded_by, recorded_via, external_id, \
     event_type, event, wording_id, source, prev_hash, hash) RETURNING *), \
     heads AS (UPDATE ledger_heads h SET last_seq = m.seq, last_hash = m.hash, \
     decision_copy = m.copy FROM UNNEST($17::uuid[], $18::bigint[], $19::text[], $20::bytea[]) \
     AS m(contact_id, seq, hash, copy) WHERE h.contact_id = m.contact_id)";

/// Binds [`APPENDING_EVENTS`]: when the events were recorded, where the trail stood (the
/// checkpoints' boundary, migration 0008), each event column and each moved head's.
fn bind_appended(
    rows: &[EventInsert<'_>],
    moved: &[(Uuid, &Head)],
    recorded_at: DateTime<Utc>,
    audit_position: (i32, i64),
) -> StoreResult<sqlx::postgres::PgArguments> {
    fn column<'r, T>(rows: &'r [EventInsert<'_>], f: impl Fn(&'r EventInsert<'_>) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    let mut args = sqlx::postgres::PgArguments::default();
    let failed = |_| StoreError::Encode("the columns of ledger events");
    use sqlx::Arguments;
    args.add(recorded_at).map_err(failed)?;
    args.add(audit_position.0).map_err(failed)?;
    args.add(audit_position.1).map_err(failed)?;
    args.add(column(rows, |r| r.id)).map_err(failed)?;
    args.add(column(rows, |r| r.entry.contact_id))
        .map_err(failed)?;
    args.add(column(rows, |r| r.seq)).map_err(failed)?;
    args.add(column(rows, |r| r.at)).map_err(failed)?;
    args.add(column(rows, |r| r.recorded_by)).map_err(failed)?;
    args.add(column(rows, |r| r.recorded_via.as_str()))
        .map_err(failed)?;
    args.add(column(rows, |r| r.entry.external_id))
        .map_err(failed)?;
    args.add(column(rows, |r| r.entry.kind.type_name()))
        .map_err(failed)?;
    args.add(column(rows, |r| r.event.as_str()))
        .map_err(failed)?;
    args.add(column(rows, |r| r.wording_id)).map_err(failed)?;
    args.add(column(rows, |r| r.source.as_deref()))
        .map_err(failed)?;
    args.add(column(rows, |r| r.prev_hash.as_str()))
        .map_err(failed)?;
    args.add(column(rows, |r| r.hash.as_str()))
        .map_err(failed)?;
    args.add(moved.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .map_err(failed)?;
    args.add(moved.iter().map(|(_, h)| h.seq).collect::<Vec<_>>())
        .map_err(failed)?;
    args.add(
        moved
            .iter()
            .map(|(_, h)| h.hash.as_str())
            .collect::<Vec<_>>(),
    )
    .map_err(failed)?;
    args.add(
        moved
            .iter()
            .map(|(_, h)| h.copy.as_slice())
            .collect::<Vec<_>>(),
    )
    .map_err(failed)?;
    Ok(args)
}

/// SQLite: the events, then the heads, in multi-row statements its limit on parameters allows.
async fn insert_sqlite(
    tx: &mut WriteTx,
    rows: &[EventInsert<'_>],
    moved: &[(Uuid, &Head)],
    recorded_at: DateTime<Utc>,
) -> StoreResult<()> {
    let audit_position = tx.chain.taken_at();

    for chunk in rows.chunks(MAX_BINDS / 16) {
        on_tx!(&mut *tx, conn => {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO ledger_events (id, contact_id, seq, at, recorded_at, recorded_by, recorded_via, \
                 external_id, event_type, event, wording_id, source, prev_hash, hash, audit_chain, \
                 audit_seq) ",
            );
            query.push_values(chunk, |mut row, e| {
                row.push_bind(e.id)
                    .push_bind(e.entry.contact_id)
                    .push_bind(e.seq)
                    .push_bind(e.at)
                    .push_bind(recorded_at)
                    .push_bind(e.recorded_by)
                    .push_bind(e.recorded_via.as_str())
                    .push_bind(e.entry.external_id)
                    .push_bind(e.entry.kind.type_name())
                    .push_bind(e.event.as_str())
                    .push_bind(e.wording_id)
                    .push_bind(e.source.as_deref())
                    .push_bind(e.prev_hash.as_str())
                    .push_bind(e.hash.as_str())
                    .push_bind(audit_position.0)
                    .push_bind(audit_position.1);
            });
            query.build().persistent(keep_prepared(chunk.len())).execute(conn).await?.rows_affected()
        });
    }
    for chunk in moved.chunks(MAX_BINDS / 4) {
        on_tx!(&mut *tx, conn => {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO ledger_heads (contact_id, last_seq, last_hash, decision_copy) ",
            );
            query.push_values(chunk, |mut row, (id, head)| {
                row.push_bind(*id)
                    .push_bind(head.seq)
                    .push_bind(head.hash.as_str())
                    .push_bind(head.copy.as_slice());
            });
            query.push(
                " ON CONFLICT (contact_id) DO UPDATE SET last_seq = excluded.last_seq, \
                 last_hash = excluded.last_hash, decision_copy = excluded.decision_copy",
            );
            query.build().persistent(keep_prepared(chunk.len())).execute(conn).await?.rows_affected()
        });
    }
    Ok(())
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = StoreError;
    fn try_from(row: EventRow) -> StoreResult<RecordedEvent> {
        let corrupt = |problem| StoreError::corrupt("ledger_events", row.id, problem);
        let mut event: EventKind =
            serde_json::from_str(&row.event).map_err(|_| corrupt("its event does not parse"))?;
        if let EventKind::ConsentGiven { wording, .. } = &mut event {
            *wording = row
                .wording_text
                .clone()
                .ok_or_else(|| corrupt("its wording is missing"))?;
        }
        let recorded_via = match row.recorded_via.as_str() {
            "user" => RecordedVia::User,
            "data_subject" => RecordedVia::DataSubject,
            "import" => RecordedVia::Import,
            "system" => RecordedVia::System,
            _ => return Err(corrupt("recorded_via is not a known way")),
        };
        let source = match &row.source {
            Some(text) => {
                Some(serde_json::from_str(text).map_err(|_| corrupt("its source does not parse"))?)
            }
            None => None,
        };
        let recorded_by_name =
            recorder_name(recorded_via, row.recorded_by, row.recorded_by_name.clone());
        Ok(RecordedEvent {
            id: row.id,
            contact_id: row.contact_id,
            seq: row.seq,
            external_id: row.external_id,
            at: row.at,
            recorded_at: row.recorded_at,
            recorded_by: row.recorded_by,
            recorded_by_name,
            recorded_via,
            event,
            wording_version: row.wording_version,
            source,
        })
    }
}

/// Consent wordings, newest version first: those whose text contains `text` (in any case), older
/// than version `before`, at most `limit`. The text is matched here, not in SQL, so that both
/// stores fold case alike (SQLite's `LOWER` folds only ASCII); the rows are read newest first
/// and only until the page is full.
pub async fn wordings(
    db: &Db,
    text: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<ConsentWording>> {
    use futures_util::TryStreamExt;
    let needle = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase);
    let wanted = usize::try_from(limit).unwrap_or(0);
    let mut found = Vec::new();
    let sql = "SELECT id, version, text, first_used_at FROM consent_wordings \
               WHERE version < $1 ORDER BY version DESC";
    on_db!(db, pool => {
        let mut rows = sqlx::query_as::<_, (Uuid, i64, String, DateTime<Utc>)>(sql)
            .bind(before.unwrap_or(i64::MAX))
            .fetch(pool);
        while found.len() < wanted {
            let Some((id, version, text, first_used_at)) = rows.try_next().await? else {
                break;
            };
            if needle.as_ref().is_none_or(|n| text.to_lowercase().contains(n.as_str())) {
                found.push(ConsentWording { id, version, text, first_used_at });
            }
        }
    });
    Ok(found)
}

/// A contact's ledger in recorded order.
pub async fn for_contact(tx: &mut Tx, contact_id: Uuid) -> StoreResult<Vec<RecordedEvent>> {
    let sql = format!("{SELECT} WHERE e.contact_id = $1 ORDER BY e.seq");
    let rows: Vec<EventRow> =
        on_tx!(tx, conn => sqlx::query_as(&sql).bind(contact_id).fetch_all(conn).await?);
    rows.into_iter().map(RecordedEvent::try_from).collect()
}

/// A contact's ledger as the engine reads it: sorted by when things happened (ties in recorded
/// order), each event's id its UUID. `known_at` keeps only what had been recorded by then, for
/// a decision "as of" a past moment.
pub fn for_engine(recorded: &[RecordedEvent], known_at: Option<DateTime<Utc>>) -> Vec<LedgerEvent> {
    let mut ledger: Vec<LedgerEvent> = recorded
        .iter()
        .filter(|e| known_at.is_none_or(|t| e.recorded_at <= t))
        .map(|e| LedgerEvent {
            id: Some(e.id.to_string()),
            at: e.at,
            kind: e.event.clone(),
        })
        .collect();
    assent_engine::sort_ledger(&mut ledger);
    ledger
}

/// The decision copy of a contact's ledger, built from its events (when, when recorded, the
/// stored event JSON) in recorded order.
fn copy_of<'a>(
    rows: impl IntoIterator<Item = (DateTime<Utc>, DateTime<Utc>, &'a str)>,
    contact_id: Uuid,
) -> StoreResult<Vec<u8>> {
    let mut copy = Vec::new();
    for (at, recorded_at, event) in rows {
        let kind: EventKind = serde_json::from_str(event).map_err(|_| {
            StoreError::corrupt(
                "ledger_events",
                contact_id,
                "an event of this contact does not parse",
            )
        })?;
        compact::push(&mut copy, at, recorded_at, &kind);
    }
    Ok(copy)
}

async fn rebuild_copy(tx: &mut Tx, contact_id: Uuid) -> StoreResult<Vec<u8>> {
    let rows: Vec<(DateTime<Utc>, DateTime<Utc>, String)> = on_tx!(tx, conn => {
        sqlx::query_as("SELECT at, recorded_at, event FROM ledger_events WHERE contact_id = $1 ORDER BY seq")
            .bind(contact_id)
            .fetch_all(conn)
            .await?
    });
    copy_of(
        rows.iter().map(|(a, r, e)| (*a, *r, e.as_str())),
        contact_id,
    )
}

/// Builds the decision copies missing from ledgers recorded before copies existed. Run at start;
/// a partial index finds them without reading every head. A ledger whose events cannot be read
/// is left without a copy (its decisions fail, `audit verify` reports it) rather than stopping
/// the start, and a head that moved meanwhile (another server appended) is left alone.
pub async fn backfill_decision_copies(db: &Db) -> StoreResult<u64> {
    let missing: Vec<(Uuid, i64)> = on_db!(db, pool => {
        sqlx::query_as("SELECT contact_id, last_seq FROM ledger_heads WHERE decision_copy IS NULL").fetch_all(pool).await?
    });
    let mut built = 0;
    for (contact_id, seq) in missing {
        let mut tx = db.begin().await?;
        let copy = match rebuild_copy(&mut tx, contact_id).await {
            Ok(copy) => copy,
            Err(StoreError::Corrupt { .. }) => {
                tracing::warn!(%contact_id, "a ledger's events do not parse, so its decision copy cannot be built; audit verify names the event");
                continue;
            }
            Err(other) => return Err(other),
        };
        built += on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE ledger_heads SET decision_copy = $3 WHERE contact_id = $1 AND last_seq = $2 AND decision_copy IS NULL")
                .bind(contact_id)
                .bind(seq)
                .bind(&copy)
                .execute(conn)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
    }
    Ok(built)
}

/// Which contacts' ledgers a visit reads.
#[derive(Debug, Clone, Copy)]
pub enum Ledgers<'a> {
    /// Every contact's, streamed from the one row per contact that `ledger_heads` keeps.
    Every,
    /// Only these contacts' (ids in ascending order), read by id a chunk at a time: an audience of
    /// a few contacts does not read every ledger head.
    Of(&'a [Uuid]),
}

/// Contacts' ledgers, one contact at a time in contact id order, from their decision copies:
/// `visit(contact_id, ledger)` is called for each contact that has events (and is wanted), and
/// `ledger()` decodes that contact's ledger as the engine reads it (only events recorded by
/// `known_at`, all when `None`, sorted by time, with each event's place) for the contacts the
/// visitor wants.
pub async fn visit(
    db: &Db,
    which: Ledgers<'_>,
    known_at: Option<DateTime<Utc>>,
    mut visit: impl FnMut(Uuid, &dyn Fn() -> StoreResult<compact::CopiedLedger>) -> StoreResult<()>,
) -> StoreResult<()> {
    use futures_util::TryStreamExt;
    let mut decode = |contact_id: Uuid, copy: Option<Vec<u8>>| {
        let ledger = || {
            let copy = copy.as_deref().ok_or_else(|| {
                StoreError::corrupt("ledger_heads", contact_id, "has no decision copy")
            })?;
            compact::ledger(copy, known_at).map_err(|_| {
                StoreError::corrupt("ledger_heads", contact_id, "its decision copy is damaged")
            })
        };
        visit(contact_id, &ledger)
    };
    match which {
        Ledgers::Every => {
            // One row per contact: the decision copy, not the events.
            let sql = "SELECT contact_id, decision_copy FROM ledger_heads ORDER BY contact_id";
            on_db!(db, pool => {
                let mut rows = sqlx::query_as::<_, (Uuid, Option<Vec<u8>>)>(sql).fetch(pool);
                while let Some((contact_id, copy)) = rows.try_next().await? {
                    decode(contact_id, copy)?;
                }
            });
        }
        Ledgers::Of(ids) => {
            for chunk in ids.chunks(1000) {
                on_db!(db, pool => {
                    let mut query = sqlx::QueryBuilder::new(
                        "SELECT contact_id, decision_copy FROM ledger_heads WHERE contact_id",
                    );
                    query.push_ids(chunk).push(" ORDER BY contact_id");
                    let persistent = query.keeps_prepared(chunk.len());
                    let rows: Vec<(Uuid, Option<Vec<u8>>)> = query
                        .build_query_as()
                        .persistent(persistent)
                        .fetch_all(pool)
                        .await?;
                    for (contact_id, copy) in rows {
                        decode(contact_id, copy)?;
                    }
                });
            }
        }
    }
    Ok(())
}

/// The consent ledgers as they stood when the audit trail stood at `heads` (a checkpoint's):
/// each ledger's last event among those appended below its chain's head there (and every
/// event from before migration 0008), read in contact order within `tx`'s snapshot.
pub async fn summary_as_of(tx: &mut Tx, heads: &AuditHeads) -> StoreResult<LedgerSummary> {
    use futures_util::TryStreamExt;
    let mut digest = LedgerDigest::default();
    let mut last: Option<(Uuid, i64, String)> = None;
    let covered = |chain: Option<i32>, seq: Option<i64>| match (chain, seq) {
        (Some(chain), Some(seq)) => seq < heads.seq_of(chain),
        _ => true,
    };
    on_tx!(&mut *tx, conn => {
        let mut rows = sqlx::query_as::<_, (Uuid, i64, String, Option<i32>, Option<i64>)>(
            "SELECT contact_id, seq, hash, audit_chain, audit_seq FROM ledger_events \
             ORDER BY contact_id, seq",
        )
        .fetch(conn);
        while let Some((contact_id, seq, hash, chain, audit_seq)) = rows.try_next().await? {
            if !covered(chain, audit_seq) {
                continue;
            }
            // The events come in seq order: a ledger's last one is the one before the next id.
            if let Some((previous, previous_seq, previous_hash)) = last.take() {
                if previous != contact_id {
                    digest.add(previous, previous_seq, &previous_hash);
                }
            }
            last = Some((contact_id, seq, hash));
        }
    });
    if let Some((id, seq, hash)) = last {
        digest.add(id, seq, &hash);
    }
    Ok(digest.finish())
}

/// Where a contact's ledger chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLedger {
    pub contact_id: Uuid,
    pub link: BrokenLink,
}

/// Walks every contact's chain.
pub async fn verify(db: &Db) -> StoreResult<Result<u64, BrokenLedger>> {
    let heads: Vec<Uuid> = on_db!(db, pool => {
        sqlx::query_scalar("SELECT contact_id FROM ledger_heads ORDER BY contact_id").fetch_all(pool).await?
    });
    let mut checked = 0;
    for contact_id in heads {
        match verify_contact(db, contact_id).await? {
            Ok(n) => checked += n,
            Err(link) => return Ok(Err(BrokenLedger { contact_id, link })),
        }
    }
    Ok(Ok(checked))
}

/// A contact's chain head: where the chain ends, and the decision copy kept beside it. Locked
/// against appends until `tx` ends on PostgreSQL (an append moves the head), so that the events
/// read next in `tx` are exactly the ones the head counts; SQLite's transactions are snapshots.
async fn head_for_reading(
    tx: &mut Tx,
    contact_id: Uuid,
) -> StoreResult<(i64, String, Option<Vec<u8>>)> {
    let head: Option<(i64, String, Option<Vec<u8>>)> = on_tx!(tx, conn => {
        sqlx::query_as("SELECT last_seq, last_hash, decision_copy FROM ledger_heads WHERE contact_id = $1")
            .bind(contact_id)
            .fetch_optional(conn)
            .await?
    });
    Ok(head.unwrap_or((0, GENESIS_HASH.to_owned(), None)))
}

/// Checks one contact's events (in `seq` order) against its head: every event's place, link and
/// hash, the text of every wording against the wording's hash, and the decision copy against
/// the events.
fn check_chain(
    contact_id: Uuid,
    rows: &[EventRow],
    (head_seq, head_hash, copy): (i64, String, Option<Vec<u8>>),
) -> StoreResult<Result<u64, BrokenLink>> {
    let mut verifier = ChainVerifier::default();
    for row in rows {
        let wording_altered = matches!((&row.wording_text, &row.wording_hash), (Some(text), Some(hash)) if text_hash(text) != *hash);
        let recomputed = if wording_altered {
            "the wording was altered".to_owned()
        } else {
            event_hash(
                row.contact_id,
                row.seq,
                row.at,
                row.recorded_at,
                row.recorded_by,
                &row.recorded_via,
                row.external_id.as_deref(),
                &row.event_type,
                &row.event,
                row.wording_hash.as_deref(),
                row.source.as_deref(),
                &row.prev_hash,
            )
        };
        verifier.check_link(row.seq, &row.prev_hash, &row.hash, &recomputed);
    }
    let chain = verifier.finish(head_seq, &head_hash);
    if chain.is_ok() && head_seq > 0 {
        let events = rows.iter().map(|r| (r.at, r.recorded_at, r.event.as_str()));
        if copy.as_deref() != Some(copy_of(events, contact_id)?.as_slice()) {
            return Ok(Err(BrokenLink {
                seq: head_seq,
                problem:
                    "the decision copy of the ledger does not match its events (it was altered)"
                        .to_owned(),
            }));
        }
    }
    Ok(chain)
}

/// Walks one contact's chain (see [`check_chain`]), in a snapshot of its own.
pub async fn verify_contact(db: &Db, contact_id: Uuid) -> StoreResult<Result<u64, BrokenLink>> {
    let mut tx = db.begin_snapshot().await?;
    let head = head_for_reading(&mut tx, contact_id).await?;
    let sql = format!("{SELECT_FOR_VERIFY} WHERE e.contact_id = $1 ORDER BY e.seq");
    let rows: Vec<EventRow> =
        on_tx!(&mut tx, conn => sqlx::query_as(&sql).bind(contact_id).fetch_all(conn).await?);
    let chain = check_chain(contact_id, &rows, head)?;
    tx.commit().await?;
    Ok(chain)
}

/// A contact's ledger in recorded order and the verification of its chain, both from the same
/// rows, read once inside `tx`: what is shown is exactly what was verified (the evidence pack).
/// `tx` must be a snapshot ([`Db::begin_snapshot`]), so that the head and the events agree
/// whatever is appended meanwhile: a lock could not hold the head of a ledger that has none yet.
pub async fn read_verified(
    tx: &mut Tx,
    contact_id: Uuid,
) -> StoreResult<(Vec<RecordedEvent>, Result<u64, BrokenLink>)> {
    let head = head_for_reading(tx, contact_id).await?;
    let sql = format!("{SELECT} WHERE e.contact_id = $1 ORDER BY e.seq");
    let rows: Vec<EventRow> =
        on_tx!(tx, conn => sqlx::query_as(&sql).bind(contact_id).fetch_all(conn).await?);
    let chain = check_chain(contact_id, &rows, head)?;
    let events = rows
        .into_iter()
        .map(RecordedEvent::try_from)
        .collect::<StoreResult<_>>()?;
    Ok((events, chain))
}
