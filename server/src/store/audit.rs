//! The `audit_events` and `audit_chain_head` tables: appending to the chain and reading it back.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, StoreResult, Tx};
use crate::audit::{AuditRecord, StoredRecord};
use crate::chain::{BrokenLink, ChainVerifier};
use crate::{on_db, on_tx};

#[derive(sqlx::FromRow)]
struct AuditRow {
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

impl From<AuditRow> for StoredRecord {
    fn from(row: AuditRow) -> Self {
        StoredRecord {
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

/// Appends `record` to the chain inside `tx`, so it commits or rolls back with the change it
/// records. Taking the head row first serialises concurrent appends on both backends.
pub async fn append(tx: &mut Tx, record: &AuditRecord) -> StoreResult<i64> {
    let (seq, prev_hash): (i64, String) = on_tx!(tx, conn => {
        sqlx::query_as(
            "UPDATE audit_chain_head SET last_seq = last_seq + 1 WHERE id = 1 \
             RETURNING last_seq, last_hash",
        )
        .fetch_one(conn)
        .await?
    });
    let hash = record.chain_hash(seq, &prev_hash);
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO audit_events \
             (seq, at, actor_id, session_id, action, object_kind, object_id, outcome, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(seq)
        .bind(record.at)
        .bind(record.actor_id)
        .bind(record.session_id)
        .bind(record.action.as_str())
        .bind(record.object.map(|(kind, _)| kind.as_str()))
        .bind(record.object.map(|(_, id)| id))
        .bind(record.outcome.as_str())
        .bind(&prev_hash)
        .bind(&hash)
        .execute(conn)
        .await?.rows_affected()
    });
    on_tx!(tx, conn => {
        sqlx::query("UPDATE audit_chain_head SET last_hash = $1 WHERE id = 1")
            .bind(&hash)
            .execute(conn)
            .await?.rows_affected()
    });
    Ok(seq)
}

/// Appends `records`, in order, inside `tx`.
pub async fn append_all(tx: &mut Tx, records: &[AuditRecord]) -> StoreResult<()> {
    for record in records {
        append(tx, record).await?;
    }
    Ok(())
}

/// Appends `records` in one transaction of their own: for events that change nothing else (a
/// denied request, a failed login, a read).
pub async fn append_now(db: &Db, records: &[AuditRecord]) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    append_all(&mut tx, records).await?;
    tx.commit().await
}

/// The result of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Intact { records: u64 },
    Broken(BrokenLink),
}

/// Walks the whole chain in pages and checks every link and the head.
pub async fn verify(db: &Db) -> StoreResult<Verification> {
    const PAGE: i64 = 10_000;
    let mut verifier = ChainVerifier::default();
    let mut after = 0_i64;
    loop {
        let rows: Vec<AuditRow> = on_db!(db, pool => {
            sqlx::query_as(
                "SELECT seq, at, actor_id, session_id, action, object_kind, object_id, outcome, \
                 prev_hash, hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(pool)
            .await?
        });
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let full_page = rows.len() as i64 == PAGE;
        for row in rows {
            StoredRecord::from(row).check(&mut verifier);
        }
        if verifier.broken.is_some() || !full_page {
            break;
        }
    }
    let (head_seq, head_hash): (i64, String) = on_db!(db, pool => {
        sqlx::query_as("SELECT last_seq, last_hash FROM audit_chain_head WHERE id = 1")
            .fetch_one(pool)
            .await?
    });
    Ok(match verifier.finish(head_seq, &head_hash) {
        Ok(records) => Verification::Intact { records },
        Err(broken) => Verification::Broken(broken),
    })
}

/// The records about one object, oldest first (for tests and, later, the evidence pack).
pub async fn for_object(db: &Db, object_id: Uuid) -> StoreResult<Vec<StoredRecord>> {
    let rows: Vec<AuditRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT seq, at, actor_id, session_id, action, object_kind, object_id, outcome, \
             prev_hash, hash FROM audit_events WHERE object_id = $1 ORDER BY seq",
        )
        .bind(object_id)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Into::into).collect())
}
