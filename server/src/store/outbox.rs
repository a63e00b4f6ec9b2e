//! The `outbox`, `warrants` and `warrant_heads` tables: what the sender has to send, where each
//! message stands, and the communication log's warrant for each decision it made.

use std::collections::HashMap;

use assent_shared::api::{Communication, IndeterminateRecipient};
use assent_shared::domain::OutboxState;
use assent_shared::ledger::{Message, MessageKind};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{keep_prepared, to_json, Db, IdList, Pool, StoreError, StoreResult, Tx, WriteTx};
use crate::chain::{hash_fields, BrokenLink, ChainVerifier, GENESIS_HASH};
use crate::{on_db, on_tx, on_writer};

/// One recipient of a campaign, to be made into an outbox row.
pub struct NewRow {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub message_id: String,
    pub token: String,
}

/// Makes the outbox rows of a campaign (queued, due at `now`); a row that exists already for a
/// (campaign, contact, channel, occasion) is left as it is. A campaign's one message per
/// recipient has no occasion (`""`); a standing campaign's names what it answers (a sign-up).
pub async fn enqueue(
    tx: &mut WriteTx,
    campaign_id: Uuid,
    channel: &str,
    occasion: &str,
    rows: &[NewRow],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for chunk in rows.chunks(1000) {
        let persistent = keep_prepared(chunk.len());
        on_tx!(tx, conn => {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO outbox (id, campaign_id, contact_id, channel, message_id, token, state, attempts, next_attempt_at, updated_at, occasion) ",
            );
            query.push_values(chunk, |mut row, new| {
                row.push_bind(new.id)
                    .push_bind(campaign_id)
                    .push_bind(new.contact_id)
                    .push_bind(channel)
                    .push_bind(new.message_id.as_str())
                    .push_bind(new.token.as_str())
                    .push_bind(OutboxState::Queued.as_str())
                    .push_bind(0_i64)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(occasion);
            });
            query.push(" ON CONFLICT (campaign_id, contact_id, channel, occasion) DO NOTHING");
            query.build().persistent(persistent).execute(conn).await.map(|_| ())?
        });
    }
    Ok(())
}

/// A due queued row the worker holds in its claiming transaction; once decided, it is either
/// claimed (the allowed) or ended `not_sent` (the refused), in that same transaction.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub message_id: String,
    pub token: String,
    /// Attempts counted with this one once it is claimed.
    pub attempts: i64,
}

/// Picks up to `limit` due queued rows of `campaign_id`, in contact id order, if the campaign is
/// still sending; nothing is written. On PostgreSQL the rows are locked until the transaction
/// ends (`FOR UPDATE`) and rows other workers hold are skipped, not waited for (`SKIP LOCKED`);
/// a SQLite write transaction holds the database. Each row picked is then claimed ([`claim`])
/// or ended ([`end_not_sent`]) in the same transaction, so that a refused row is written once.
pub async fn pick(
    tx: &mut WriteTx,
    campaign_id: Uuid,
    now: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<Claimed>> {
    // The campaign must still be sending, read in this transaction: a pause or cancel that
    // committed first stops the claim. On PostgreSQL the row is held (FOR SHARE) until the claim
    // commits, so a pause waits for it and then no later batch is claimed.
    let (share, lock) = match super::AsTx::as_tx(tx) {
        Tx::Postgres(_) => (" FOR SHARE", " FOR UPDATE SKIP LOCKED"),
        Tx::Sqlite(_) => ("", ""),
    };
    let check = format!("SELECT state FROM campaigns WHERE id = $1{share}");
    let state: Option<String> = on_tx!(tx, conn => {
        sqlx::query_scalar(&check).bind(campaign_id).fetch_optional(&mut *conn).await?
    });
    if state.as_deref() != Some("sending") {
        return Ok(Vec::new());
    }
    // The first due rows by (next_attempt_at, id), as the index outbox_due orders them.
    let sql = format!(
        "SELECT id, contact_id, message_id, token, attempts + 1 AS attempts FROM outbox \
         WHERE campaign_id = $1 AND state = 'queued' AND next_attempt_at <= $2 \
         ORDER BY next_attempt_at, id LIMIT $3{lock}"
    );
    let mut rows: Vec<Claimed> = on_tx!(tx, conn => {
        sqlx::query_as(&sql)
            .bind(campaign_id)
            .bind(now)
            .bind(limit)
            .fetch_all(conn)
            .await?
    });
    rows.sort_unstable_by_key(|r| r.contact_id);
    Ok(rows)
}

/// Whether `campaign_id` has a queued row due at `now`: one read of the index `outbox_due`, so
/// that a standing campaign with nothing to send costs no write transaction.
pub async fn has_due(db: &Db, campaign_id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
    let found: Option<Uuid> = on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT id FROM outbox WHERE campaign_id = $1 AND state = 'queued' AND next_attempt_at <= $2 LIMIT 1",
        )
        .bind(campaign_id)
        .bind(now)
        .fetch_optional(pool)
        .await?
    });
    Ok(found.is_some())
}

/// Claims rows picked in this transaction for `owner` until `lease_until`, counting the attempt:
/// from here a crash leaves them to become indeterminate. Every row must still be queued (the
/// pick holds them: `FOR UPDATE` on PostgreSQL, the one writer on SQLite); if one is not, the
/// claim fails, so that the transaction with its warrants rolls back rather than a row being
/// handed over that is not claimed.
pub async fn claim(
    tx: &mut WriteTx,
    rows: &[Uuid],
    owner: &str,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for chunk in rows.chunks(500) {
        on_tx!(tx, conn => {
            let mut query = sqlx::QueryBuilder::new("UPDATE outbox SET state = 'claimed', lease_owner = ");
            query.push_bind(owner);
            query.push(", lease_until = ").push_bind(lease_until);
            query.push(", attempts = attempts + 1, updated_at = ").push_bind(now);
            query.push(" WHERE state = 'queued' AND id");
            query.push_ids(chunk);
            let persistent = query.keeps_prepared(chunk.len());
            let claimed = query.build().persistent(persistent).execute(conn).await?.rows_affected();
            if claimed != chunk.len() as u64 {
                return Err(StoreError::corrupt(
                    "outbox",
                    chunk[0],
                    "a row picked to be claimed was no longer queued",
                ));
            }
        });
    }
    Ok(())
}

/// The message an unsubscribe token was made for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenHolder {
    /// The outbox row: the token's id in the audit trail.
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub contact_id: Uuid,
}

/// The message whose unsubscribe token is `token`, if any (one indexed read: the token is unique).
pub async fn by_token(db: &Db, token: &str) -> StoreResult<Option<TokenHolder>> {
    let sql = "SELECT id, campaign_id, contact_id FROM outbox WHERE token = $1";
    // Through the lookups' own pool: a flood of bad tokens queues there.
    Ok(match db.lookup_pool() {
        Pool::Sqlite(pool) => {
            sqlx::query_as(sql)
                .bind(token)
                .fetch_optional(&pool)
                .await?
        }
        Pool::Postgres(pool) => {
            sqlx::query_as(sql)
                .bind(token)
                .fetch_optional(&pool)
                .await?
        }
    })
}

/// Ends a claimed row: its state, why, and the address or number used. Only the lease's owner
/// writes it; a row marked indeterminate while its owner was still sending takes the result the
/// owner knows.
pub async fn end(
    db: &Db,
    id: Uuid,
    owner: &str,
    state: OutboxState,
    outcome: &str,
    contact_point: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let written = on_writer!(db, pool => {
        sqlx::query(END)
        .bind(id)
        .bind(owner)
        .bind(state.as_str())
        .bind(outcome)
        .bind(contact_point)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(written == 1)
}

const END: &str = "UPDATE outbox SET state = $3, outcome = $4, contact_point = COALESCE($5, contact_point), \
                   lease_owner = NULL, lease_until = NULL, updated_at = $6 WHERE id = $1 AND lease_owner = $2";

/// Ends claimed rows `sent` (`accepted`), each with the address or number it went to, in one
/// statement per 500 rows; only rows whose lease `owner` still holds are written. How many were.
pub async fn end_sent(
    db: &Db,
    owner: &str,
    rows: &[(Uuid, &str)],
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    if let Pool::Postgres(pool) = db.write_pool() {
        // One text whatever the number of rows: the rows are two arrays, joined by position.
        let (ids, points): (Vec<Uuid>, Vec<&str>) = rows.iter().copied().unzip();
        let written = sqlx::query(
            "UPDATE outbox o SET state = $1, outcome = $2, contact_point = v.point, lease_owner = NULL, \
             lease_until = NULL, updated_at = $3 FROM UNNEST($4::uuid[], $5::text[]) AS v(id, point) \
             WHERE o.id = v.id AND o.lease_owner = $6",
        )
        .bind(OutboxState::Sent.as_str())
        .bind(ACCEPTED)
        .bind(now)
        .bind(ids)
        .bind(points)
        .bind(owner)
        .execute(&pool)
        .await?
        .rows_affected();
        return Ok(written);
    }
    let mut written = 0;
    for chunk in rows.chunks(500) {
        let persistent = keep_prepared(chunk.len());
        written += on_writer!(db, pool => {
            let mut query = sqlx::QueryBuilder::new("UPDATE outbox SET state = ");
            query.push_bind(OutboxState::Sent.as_str());
            query.push(", outcome = ").push_bind(ACCEPTED);
            query.push(", contact_point = CASE id");
            for (id, point) in chunk {
                query.push(" WHEN ").push_bind(*id).push(" THEN ").push_bind(*point);
            }
            query.push(" END, lease_owner = NULL, lease_until = NULL, updated_at = ");
            query.push_bind(now);
            query.push(" WHERE lease_owner = ").push_bind(owner);
            query.push(" AND id IN (");
            let mut ids = query.separated(", ");
            for (id, _) in chunk {
                ids.push_bind(*id);
            }
            query.push(")");
            query.build().persistent(persistent).execute(pool).await?.rows_affected()
        });
    }
    Ok(written)
}

/// Ends a claimed row `failed` for a hard bounce and, in the same transaction, flags the address
/// on its contact (with `record`, the audit record of that change), as [`end`] does for the
/// lease's owner only.
pub async fn end_bounced(
    db: &Db,
    owner: &str,
    flag: &super::contacts::AddressFlag<'_>,
    record: &crate::audit::AuditRecord,
) -> StoreResult<bool> {
    let id = flag
        .outbox_id
        .ok_or(StoreError::Encode("a bounce without its message"))?;
    let mut tx = db.begin().await?;
    let written = on_tx!(&mut tx, conn => {
        sqlx::query(END)
            .bind(id)
            .bind(owner)
            .bind(OutboxState::Failed.as_str())
            .bind(flag.reason)
            .bind(flag.address)
            .bind(flag.at)
            .execute(conn)
            .await?
            .rows_affected()
    });
    if written == 1 {
        super::contacts::flag_address(&mut tx, record, flag).await?;
    }
    tx.commit().await?;
    Ok(written == 1)
}

/// How a report names the message it is about.
#[derive(Debug, Clone, Copy)]
pub enum MessageRef<'a> {
    /// The outbox row's id (the tag of the return path).
    Row(Uuid),
    /// The Message-ID, without angle brackets.
    MessageId(&'a str),
}

/// Writes the outbox row of a message staff logged (a call, a letter): it happened, so it is
/// `sent` at `at`, with `outcome` and the contact point used.
pub async fn insert_logged(
    tx: &mut WriteTx,
    row: &NewRow,
    campaign_id: Uuid,
    channel: &str,
    contact_point: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO outbox (id, campaign_id, contact_id, channel, message_id, token, state, attempts, \
             next_attempt_at, updated_at, outcome, contact_point) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8, $9, $10)",
        )
        .bind(row.id)
        .bind(campaign_id)
        .bind(row.contact_id)
        .bind(channel)
        .bind(row.message_id.as_str())
        .bind(row.token.as_str())
        .bind(OutboxState::Sent.as_str())
        .bind(at)
        .bind(LOGGED)
        .bind(contact_point)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    Ok(())
}

/// The outcome of a message the relay or the gateway took.
pub const ACCEPTED: &str = "accepted";

/// The outcome of a message staff logged rather than sent.
pub const LOGGED: &str = "logged";

/// A message the sender made, as a report finds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Made {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub contact_id: Uuid,
    pub message_id: String,
    /// The address it went to, once handed over.
    pub contact_point: Option<String>,
}

/// The message `reference` names, if the sender made it.
pub async fn made(db: &Db, reference: MessageRef<'_>) -> StoreResult<Option<Made>> {
    const COLUMNS: &str =
        "SELECT id, campaign_id, contact_id, message_id, contact_point FROM outbox WHERE ";
    Ok(match reference {
        MessageRef::Row(id) => on_db!(db, pool => {
            sqlx::query_as(&format!("{COLUMNS}id = $1")).bind(id).fetch_optional(pool).await?
        }),
        MessageRef::MessageId(message_id) => on_db!(db, pool => {
            sqlx::query_as(&format!("{COLUMNS}message_id = $1")).bind(message_id).fetch_optional(pool).await?
        }),
    })
}

/// A hard bounce reported after the relay took the message: the row, sent, becomes failed with
/// `flag.reason`, and the address is flagged (with `record`), in one transaction.
pub async fn bounced_later(
    db: &Db,
    flag: &super::contacts::AddressFlag<'_>,
    record: &crate::audit::AuditRecord,
) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    if let Some(id) = flag.outbox_id {
        on_tx!(&mut tx, conn => {
            sqlx::query(
                "UPDATE outbox SET state = 'failed', outcome = $2, updated_at = $3 WHERE id = $1 AND state = 'sent'",
            )
            .bind(id)
            .bind(flag.reason)
            .bind(flag.at)
            .execute(conn)
            .await
            .map(|_| ())?
        });
    }
    super::contacts::flag_address(&mut tx, record, flag).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends rows `not_sent` inside the claiming transaction (those the engine refused, or that cannot
/// be sent), each with its outcome: one statement per outcome and 500 rows (a batch holds a few
/// outcomes: the engine's reasons), so that a campaign most of whose audience is refused costs no
/// round trip per refusal.
pub async fn end_not_sent(
    tx: &mut WriteTx,
    rows: &[(Uuid, String)],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let mut by_outcome: std::collections::BTreeMap<&str, Vec<Uuid>> = Default::default();
    for (id, outcome) in rows {
        by_outcome.entry(outcome.as_str()).or_default().push(*id);
    }
    for (outcome, ids) in by_outcome {
        for chunk in ids.chunks(500) {
            on_tx!(tx, conn => {
                let mut query = sqlx::QueryBuilder::new("UPDATE outbox SET state = ");
                query.push_bind(OutboxState::NotSent.as_str());
                query.push(", outcome = ").push_bind(outcome);
                query.push(", lease_owner = NULL, lease_until = NULL, updated_at = ");
                query.push_bind(now);
                query.push(" WHERE id");
                query.push_ids(chunk);
                let persistent = query.keeps_prepared(chunk.len());
                query.build().persistent(persistent).execute(conn).await.map(|_| ())?
            });
        }
    }
    Ok(())
}

/// Extends to `until` the lease of the rows among `ids` that `owner` still holds claimed, on a
/// lease that has not run out by `now`; the ids of those, sorted. A row missing from the answer
/// is no longer the owner's to send: its lease ran out (it is, or is about to be marked,
/// indeterminate) or it has ended.
pub async fn renew(
    db: &Db,
    ids: &[Uuid],
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<Vec<Uuid>> {
    let mut renewed = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<Uuid> = on_writer!(db, pool => {
            let mut query = sqlx::QueryBuilder::new("UPDATE outbox SET lease_until = ");
            query.push_bind(until);
            query.push(" WHERE lease_owner = ").push_bind(owner);
            query.push(" AND lease_until >= ").push_bind(now);
            query.push(" AND state = 'claimed' AND id");
            query.push_ids(chunk);
            query.push(" RETURNING id");
            let persistent = query.keeps_prepared(chunk.len());
            query.build_query_scalar().persistent(persistent).fetch_all(pool).await?
        });
        renewed.extend(rows);
    }
    renewed.sort_unstable();
    Ok(renewed)
}

/// Puts a claimed row that was never handed over back in the queue as it was (its claim not
/// counted as an attempt); only the lease's owner does.
pub async fn release(db: &Db, id: Uuid, owner: &str) -> StoreResult<bool> {
    let written = on_writer!(db, pool => {
        sqlx::query(
            "UPDATE outbox SET state = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state = 'claimed'",
        )
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(written == 1)
}

/// Puts a claimed row back in the queue, due at `at` (the relay did not take it for now).
pub async fn retry_at(
    db: &Db,
    id: Uuid,
    owner: &str,
    at: DateTime<Utc>,
    outcome: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    // Only from `claimed`: a row another worker found expired (indeterminate) stays so, since
    // its owner cannot know any more than that the relay did not take it this time.
    let written = on_writer!(db, pool => {
        sqlx::query(
            "UPDATE outbox SET state = 'queued', next_attempt_at = $3, outcome = $4, lease_owner = NULL, lease_until = NULL, \
             updated_at = $5 WHERE id = $1 AND lease_owner = $2 AND state = 'claimed'",
        )
        .bind(id)
        .bind(owner)
        .bind(at)
        .bind(outcome)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(written == 1)
}

/// Marks every claimed row whose lease ended before `now` indeterminate (its worker stopped
/// mid-send: it may have been sent); returns how many.
pub async fn expire_leases(db: &Db, now: DateTime<Utc>) -> StoreResult<u64> {
    Ok(on_writer!(db, pool => {
        sqlx::query(
            "UPDATE outbox SET state = 'indeterminate', outcome = 'lease_expired', updated_at = $1 \
             WHERE state = 'claimed' AND lease_until < $1",
        )
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()
    }))
}

/// How many rows of a campaign are in each state.
pub async fn progress(db: &Db, campaign_id: Uuid) -> StoreResult<Vec<(OutboxState, i64)>> {
    let counts: Vec<(String, i64)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT state, COUNT(*) FROM outbox WHERE campaign_id = $1 GROUP BY state",
        )
        .bind(campaign_id)
        .fetch_all(pool)
        .await?
    });
    counts
        .into_iter()
        .map(|(state, count)| Ok((state_of(&state, campaign_id)?, count)))
        .collect()
}

/// The indeterminate rows of a campaign: how many, and the first `limit` in contact order with
/// the contact's name (one read, inside `tx`).
pub async fn indeterminate(
    tx: &mut Tx,
    campaign_id: Uuid,
    limit: i64,
) -> StoreResult<(i64, Vec<IndeterminateRecipient>)> {
    let total: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE campaign_id = $1 AND state = 'indeterminate'",
        )
        .bind(campaign_id)
        .fetch_one(&mut *conn)
        .await?
    });
    let rows: Vec<IndeterminateRow> = on_tx!(tx, conn => {
        sqlx::query_as(
            // A row is given its contact point when it ends; one that never ended has it in the
            // warrant written when it was claimed (found through the contact's warrants).
            "SELECT o.contact_id, c.first_name, c.last_name, \
             COALESCE(o.contact_point, (SELECT w.contact_point FROM warrants w \
               WHERE w.contact_id = o.contact_id AND w.outbox_id = o.id ORDER BY w.seq DESC LIMIT 1)) AS contact_point, \
             o.message_id, o.outcome, o.updated_at \
             FROM outbox o JOIN contacts c ON c.id = o.contact_id \
             WHERE o.campaign_id = $1 AND o.state = 'indeterminate' ORDER BY o.contact_id LIMIT $2",
        )
        .bind(campaign_id)
        .bind(limit)
        .fetch_all(conn)
        .await?
    });
    let items = rows
        .into_iter()
        .map(|row| IndeterminateRecipient {
            contact_id: row.contact_id,
            first_name: row.first_name,
            last_name: row.last_name,
            contact_point: row.contact_point,
            message_id: row.message_id,
            outcome: row.outcome,
            since: row.updated_at,
        })
        .collect();
    Ok((total, items))
}

#[derive(sqlx::FromRow)]
struct IndeterminateRow {
    contact_id: Uuid,
    first_name: Option<String>,
    last_name: Option<String>,
    contact_point: Option<String>,
    message_id: String,
    outcome: Option<String>,
    updated_at: DateTime<Utc>,
}

/// Queues the indeterminate rows of `campaign_id` for `contact_ids` again, due at `now`, with a
/// fresh allowance of attempts; returns the contacts whose rows were queued (a contact whose row
/// is not indeterminate is left out).
pub async fn requeue_indeterminate(
    tx: &mut WriteTx,
    campaign_id: Uuid,
    contact_ids: &[Uuid],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Uuid>> {
    let mut requeued = Vec::with_capacity(contact_ids.len());
    for chunk in contact_ids.chunks(500) {
        let ids: Vec<Uuid> = on_tx!(tx, conn => {
            let mut query = sqlx::QueryBuilder::new(
                "UPDATE outbox SET state = 'queued', attempts = 0, lease_owner = NULL, lease_until = NULL, \
                 outcome = NULL, next_attempt_at = ",
            );
            query
                .push_bind(now)
                .push(", updated_at = ")
                .push_bind(now)
                .push(" WHERE campaign_id = ")
                .push_bind(campaign_id)
                .push(" AND state = 'indeterminate' AND contact_id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(") RETURNING contact_id");
            query.build_query_scalar().fetch_all(conn).await?
        });
        requeued.extend(ids);
    }
    Ok(requeued)
}

/// A stored state, read back; `id` names the row (or campaign) in the error.
fn state_of(text: &str, id: Uuid) -> StoreResult<OutboxState> {
    text.parse()
        .map_err(|_| StoreError::corrupt("outbox", id, "an unknown state"))
}

/// The campaigns in `state`, oldest change first.
pub async fn campaigns_in(db: &Db, state: &str) -> StoreResult<Vec<Uuid>> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar("SELECT id FROM campaigns WHERE state = $1 ORDER BY updated_at")
            .bind(state)
            .fetch_all(pool)
            .await?
    }))
}

/// A warrant as the sender writes it.
#[derive(Debug, Clone)]
pub struct Warrant {
    pub id: Uuid,
    pub outbox_id: Uuid,
    pub campaign_id: Uuid,
    pub contact_id: Uuid,
    pub channel: String,
    pub kind: String,
    pub topic: String,
    pub third_party: Option<String>,
    pub contact_point: Option<String>,
    pub message_id: String,
    pub allowed: bool,
    pub basis: Option<String>,
    pub reasons: Vec<String>,
    pub evidence_seqs: Vec<i64>,
    pub policy_version: i64,
    pub author_id: Uuid,
    pub approver_id: Option<Uuid>,
    pub decided_at: DateTime<Utc>,
}

/// Appends `warrants` to their campaign's chain (the head's row locked on PostgreSQL, made at the
/// genesis when missing).
pub async fn append_warrants(
    tx: &mut WriteTx,
    campaign_id: Uuid,
    warrants: &[Warrant],
) -> StoreResult<()> {
    if warrants.is_empty() {
        return Ok(());
    }
    // The chain's head, created at the genesis on its first warrant; the upsert holds the row
    // (on PostgreSQL) until the transaction ends, so chains do not fork.
    let (mut seq, mut hash): (i64, String) = on_tx!(tx, conn => {
        sqlx::query_as(
            "INSERT INTO warrant_heads (campaign_id, last_seq, last_hash) VALUES ($1, 0, $2) \
             ON CONFLICT (campaign_id) DO UPDATE SET campaign_id = excluded.campaign_id \
             RETURNING last_seq, last_hash",
        )
        .bind(campaign_id)
        .bind(GENESIS_HASH)
        .fetch_one(conn)
        .await?
    });
    if let Tx::Postgres(conn) = super::AsTx::as_tx(tx) {
        let mut columns = WarrantColumns::default();
        for w in warrants {
            seq += 1;
            let reasons = to_json(&w.reasons, "a warrant's reasons")?;
            let evidence = to_json(&w.evidence_seqs, "a warrant's evidence")?;
            let next = warrant_hash(w, seq, &hash, &reasons, &evidence);
            columns.push(
                w,
                seq,
                std::mem::replace(&mut hash, next.clone()),
                next,
                reasons,
                evidence,
            );
        }
        columns.insert(conn).await?;
    } else {
        insert_warrant_rows(tx, warrants, &mut seq, &mut hash).await?;
    }
    on_tx!(tx, conn => {
        sqlx::query("UPDATE warrant_heads SET last_seq = $2, last_hash = $3 WHERE campaign_id = $1")
            .bind(campaign_id)
            .bind(seq)
            .bind(&hash)
            .execute(conn)
            .await
            .map(|_| ())?
    });
    Ok(())
}

/// Warrants as columns, for PostgreSQL: one array a column, inserted by one statement whose text
/// is the same for any number of rows (parsed and planned once, kept prepared).
#[derive(Default)]
struct WarrantColumns {
    id: Vec<Uuid>,
    outbox_id: Vec<Uuid>,
    campaign_id: Vec<Uuid>,
    contact_id: Vec<Uuid>,
    seq: Vec<i64>,
    channel: Vec<String>,
    kind: Vec<String>,
    topic: Vec<String>,
    third_party: Vec<Option<String>>,
    contact_point: Vec<Option<String>>,
    message_id: Vec<String>,
    allowed: Vec<bool>,
    basis: Vec<Option<String>>,
    reasons: Vec<String>,
    evidence_seqs: Vec<String>,
    policy_version: Vec<i64>,
    author_id: Vec<Uuid>,
    approver_id: Vec<Option<Uuid>>,
    decided_at: Vec<DateTime<Utc>>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

impl WarrantColumns {
    fn push(
        &mut self,
        w: &Warrant,
        seq: i64,
        prev: String,
        hash: String,
        reasons: String,
        evidence: String,
    ) {
        self.id.push(w.id);
        self.outbox_id.push(w.outbox_id);
        self.campaign_id.push(w.campaign_id);
        self.contact_id.push(w.contact_id);
        self.seq.push(seq);
        self.channel.push(w.channel.clone());
        self.kind.push(w.kind.clone());
        self.topic.push(w.topic.clone());
        self.third_party.push(w.third_party.clone());
        self.contact_point.push(w.contact_point.clone());
        self.message_id.push(w.message_id.clone());
        self.allowed.push(w.allowed);
        self.basis.push(w.basis.clone());
        self.reasons.push(reasons);
        self.evidence_seqs.push(evidence);
        self.policy_version.push(w.policy_version);
        self.author_id.push(w.author_id);
        self.approver_id.push(w.approver_id);
        self.decided_at.push(w.decided_at);
        self.prev_hash.push(prev);
        self.hash.push(hash);
    }

    async fn insert(self, conn: &mut sqlx::PgConnection) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO warrants (id, outbox_id, campaign_id, contact_id, seq, channel, kind, topic, third_party, \
             contact_point, message_id, allowed, basis, reasons, evidence_seqs, policy_version, author_id, approver_id, \
             decided_at, prev_hash, hash) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::boolean[], $13::text[], $14::text[], \
             $15::text[], $16::bigint[], $17::uuid[], $18::uuid[], $19::timestamptz[], $20::text[], $21::text[])",
        )
        .bind(self.id)
        .bind(self.outbox_id)
        .bind(self.campaign_id)
        .bind(self.contact_id)
        .bind(self.seq)
        .bind(self.channel)
        .bind(self.kind)
        .bind(self.topic)
        .bind(self.third_party)
        .bind(self.contact_point)
        .bind(self.message_id)
        .bind(self.allowed)
        .bind(self.basis)
        .bind(self.reasons)
        .bind(self.evidence_seqs)
        .bind(self.policy_version)
        .bind(self.author_id)
        .bind(self.approver_id)
        .bind(self.decided_at)
        .bind(self.prev_hash)
        .bind(self.hash)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// SQLite: warrants as multi-row INSERTs of 500 rows, `seq` and `hash` moved along the chain.
async fn insert_warrant_rows(
    tx: &mut WriteTx,
    warrants: &[Warrant],
    seq: &mut i64,
    hash: &mut String,
) -> StoreResult<()> {
    for chunk in warrants.chunks(500) {
        let mut rows = Vec::with_capacity(chunk.len());
        for w in chunk {
            *seq += 1;
            let reasons = to_json(&w.reasons, "a warrant's reasons")?;
            let evidence = to_json(&w.evidence_seqs, "a warrant's evidence")?;
            let next = warrant_hash(w, *seq, hash, &reasons, &evidence);
            rows.push((w, *seq, hash.clone(), next.clone(), reasons, evidence));
            *hash = next;
        }
        let persistent = keep_prepared(chunk.len());
        on_tx!(tx, conn => {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO warrants (id, outbox_id, campaign_id, contact_id, seq, channel, kind, topic, third_party, \
                 contact_point, message_id, allowed, basis, reasons, evidence_seqs, policy_version, author_id, approver_id, \
                 decided_at, prev_hash, hash) ",
            );
            query.push_values(&rows, |mut row, (w, seq, prev, next, reasons, evidence)| {
                row.push_bind(w.id)
                    .push_bind(w.outbox_id)
                    .push_bind(w.campaign_id)
                    .push_bind(w.contact_id)
                    .push_bind(*seq)
                    .push_bind(w.channel.as_str())
                    .push_bind(w.kind.as_str())
                    .push_bind(w.topic.as_str())
                    .push_bind(w.third_party.as_deref())
                    .push_bind(w.contact_point.as_deref())
                    .push_bind(w.message_id.as_str())
                    .push_bind(w.allowed)
                    .push_bind(w.basis.as_deref())
                    .push_bind(reasons.as_str())
                    .push_bind(evidence.as_str())
                    .push_bind(w.policy_version)
                    .push_bind(w.author_id)
                    .push_bind(w.approver_id)
                    .push_bind(w.decided_at)
                    .push_bind(prev.as_str())
                    .push_bind(next.as_str());
            });
            query.build().persistent(persistent).execute(conn).await.map(|_| ())?
        });
    }
    Ok(())
}

/// A warrant's link in its campaign's chain: every field it states, and the previous hash.
fn warrant_hash(w: &Warrant, seq: i64, prev: &str, reasons: &str, evidence: &str) -> String {
    let id = w.id.to_string();
    let outbox = w.outbox_id.to_string();
    let campaign = w.campaign_id.to_string();
    let contact = w.contact_id.to_string();
    let seq = seq.to_string();
    let policy = w.policy_version.to_string();
    let author = w.author_id.to_string();
    let approver = w.approver_id.map(|a| a.to_string()).unwrap_or_default();
    let at = w
        .decided_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    hash_fields(&[
        "warrant/1",
        &id,
        &outbox,
        &campaign,
        &contact,
        &seq,
        &w.channel,
        &w.kind,
        &w.topic,
        w.third_party.as_deref().unwrap_or_default(),
        w.contact_point.as_deref().unwrap_or_default(),
        &w.message_id,
        if w.allowed { "allowed" } else { "refused" },
        w.basis.as_deref().unwrap_or_default(),
        reasons,
        evidence,
        &policy,
        &author,
        &approver,
        &at,
        prev,
    ])
}

/// Where a campaign's chain of warrants is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenWarrants {
    pub campaign_id: Uuid,
    pub link: BrokenLink,
}

#[derive(sqlx::FromRow)]
struct WarrantRow {
    id: Uuid,
    outbox_id: Uuid,
    campaign_id: Uuid,
    contact_id: Uuid,
    seq: i64,
    channel: String,
    kind: String,
    topic: String,
    third_party: Option<String>,
    contact_point: Option<String>,
    message_id: String,
    allowed: bool,
    basis: Option<String>,
    reasons: String,
    evidence_seqs: String,
    policy_version: i64,
    author_id: Uuid,
    approver_id: Option<Uuid>,
    decided_at: DateTime<Utc>,
    prev_hash: String,
    hash: String,
}

/// Walks every campaign's chain of warrants against its head; the warrants checked, or the
/// first break. (A campaign whose head row was deleted with its warrants is caught by the
/// audit checkpoint, not here.)
pub async fn verify(db: &Db) -> StoreResult<Result<u64, BrokenWarrants>> {
    let heads: Vec<(Uuid, i64, String)> = on_db!(db, pool => {
        sqlx::query_as("SELECT campaign_id, last_seq, last_hash FROM warrant_heads ORDER BY campaign_id")
            .fetch_all(pool)
            .await?
    });
    let mut checked = 0;
    for (campaign_id, head_seq, head_hash) in heads {
        let rows: Vec<WarrantRow> = on_db!(db, pool => {
            sqlx::query_as(
                "SELECT id, outbox_id, campaign_id, contact_id, seq, channel, kind, topic, third_party, contact_point, \
                 message_id, allowed, basis, reasons, evidence_seqs, policy_version, author_id, approver_id, decided_at, \
                 prev_hash, hash FROM warrants WHERE campaign_id = $1 AND seq <= $2 ORDER BY seq",
            )
            .bind(campaign_id)
            .bind(head_seq)
            .fetch_all(pool)
            .await?
        });
        let mut verifier = ChainVerifier::default();
        for row in &rows {
            let warrant = Warrant {
                id: row.id,
                outbox_id: row.outbox_id,
                campaign_id: row.campaign_id,
                contact_id: row.contact_id,
                channel: row.channel.clone(),
                kind: row.kind.clone(),
                topic: row.topic.clone(),
                third_party: row.third_party.clone(),
                contact_point: row.contact_point.clone(),
                message_id: row.message_id.clone(),
                allowed: row.allowed,
                basis: row.basis.clone(),
                reasons: Vec::new(),
                evidence_seqs: Vec::new(),
                policy_version: row.policy_version,
                author_id: row.author_id,
                approver_id: row.approver_id,
                decided_at: row.decided_at,
            };
            let recomputed = if row.campaign_id == campaign_id {
                warrant_hash(
                    &warrant,
                    row.seq,
                    &row.prev_hash,
                    &row.reasons,
                    &row.evidence_seqs,
                )
            } else {
                "moved to another campaign".to_owned()
            };
            verifier.check_link(row.seq, &row.prev_hash, &row.hash, &recomputed);
        }
        match verifier.finish(head_seq, &head_hash) {
            Ok(n) => checked += n,
            Err(link) => return Ok(Err(BrokenWarrants { campaign_id, link })),
        }
    }
    Ok(Ok(checked))
}

#[derive(sqlx::FromRow)]
struct LogRow {
    id: Uuid,
    campaign_id: Uuid,
    contact_id: Uuid,
    content: String,
    channel: String,
    kind: String,
    topic: String,
    third_party: Option<String>,
    contact_point: Option<String>,
    message_id: String,
    allowed: bool,
    basis: Option<String>,
    reasons: String,
    evidence_seqs: String,
    policy_version: i64,
    author_id: Uuid,
    approver_id: Option<Uuid>,
    decided_at: DateTime<Utc>,
    state: String,
    outcome: Option<String>,
    updated_at: DateTime<Utc>,
}

/// The columns of a communication log entry: a warrant, its campaign, and its outbox row.
const LOG_SELECT: &str = "SELECT w.id, w.campaign_id, w.contact_id, c.content, w.channel, w.kind, w.topic, w.third_party, \
     w.contact_point, w.message_id, w.allowed, w.basis, w.reasons, \
     w.evidence_seqs, w.policy_version, w.author_id, w.approver_id, w.decided_at, o.state, o.outcome, o.updated_at \
     FROM warrants w JOIN outbox o ON o.id = w.outbox_id JOIN campaigns c ON c.id = w.campaign_id";

/// The communication log of `contact_id`: every warrant written for them, oldest decision
/// first, each with where its message stands now (one indexed read, `warrants_by_contact`).
pub async fn log_of(tx: &mut Tx, contact_id: Uuid) -> StoreResult<Vec<Communication>> {
    let sql = format!("{LOG_SELECT} WHERE w.contact_id = $1 ORDER BY w.decided_at, w.seq");
    let rows: Vec<LogRow> = on_tx!(tx, conn => {
        sqlx::query_as(&sql).bind(contact_id).fetch_all(conn).await?
    });
    communications(rows)
}

/// The messages staff logged (calls, letters, faxes: the `channels`) that the engine did not
/// allow, newest first, at most `limit`: what the data protection lead looks into.
pub async fn logged_refusals(
    tx: &mut Tx,
    channels: &[&str],
    limit: i64,
) -> StoreResult<Vec<Communication>> {
    let rows: Vec<LogRow> = on_tx!(tx, conn => {
        let mut query = sqlx::QueryBuilder::new(LOG_SELECT);
        query.push(" WHERE NOT w.allowed AND w.channel IN (");
        let mut list = query.separated(", ");
        for channel in channels {
            list.push_bind(*channel);
        }
        query.push(") ORDER BY w.decided_at DESC, w.id DESC LIMIT ").push_bind(limit);
        query.build_query_as().fetch_all(conn).await?
    });
    communications(rows)
}

/// Log rows as the API shows them.
fn communications(rows: Vec<LogRow>) -> StoreResult<Vec<Communication>> {
    /// The one field of a campaign's content the log shows.
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
    }
    let mut names: HashMap<Uuid, String> = HashMap::new();
    rows.into_iter()
        .map(|row| {
            let corrupt = |problem| StoreError::corrupt("warrants", row.id, problem);
            let campaign_name = match names.entry(row.campaign_id) {
                std::collections::hash_map::Entry::Occupied(name) => name.get().clone(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let named: Named = serde_json::from_str(&row.content).map_err(|_| {
                        StoreError::corrupt(
                            "campaigns",
                            row.campaign_id,
                            "content is not a campaign",
                        )
                    })?;
                    slot.insert(named.name).clone()
                }
            };
            let kind = match row.kind.as_str() {
                "marketing" => MessageKind::Marketing,
                "service" => MessageKind::Service,
                _ => return Err(corrupt("an unknown kind")),
            };
            Ok(Communication {
                warrant_id: row.id,
                contact_id: row.contact_id,
                campaign_id: row.campaign_id,
                campaign_name,
                message: Message {
                    kind,
                    channel: row
                        .channel
                        .parse()
                        .map_err(|_| corrupt("an unknown channel"))?,
                    topic: row.topic,
                    third_party: row.third_party,
                },
                contact_point: row.contact_point,
                message_id: row.message_id,
                allowed: row.allowed,
                basis: row
                    .basis
                    .map(|b| b.parse())
                    .transpose()
                    .map_err(|_| corrupt("an unknown basis"))?,
                reasons: serde_json::from_str(&row.reasons)
                    .map_err(|_| corrupt("reasons are not a list"))?,
                evidence_seqs: serde_json::from_str(&row.evidence_seqs)
                    .map_err(|_| corrupt("evidence is not a list"))?,
                policy_version: row.policy_version,
                author_id: row.author_id,
                approver_id: row.approver_id,
                decided_at: row.decided_at,
                delivery: row
                    .state
                    .parse()
                    .map_err(|_| corrupt("an unknown delivery state"))?,
                outcome: row.outcome,
                delivery_updated_at: row.updated_at,
            })
        })
        .collect()
}

/// Ends the queued rows of a cancelled campaign `not_sent` (in the cancelling transaction).
pub async fn cancel_queued(
    tx: &mut WriteTx,
    campaign_id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE outbox SET state = 'not_sent', outcome = 'cancelled', updated_at = $2 \
             WHERE campaign_id = $1 AND state = 'queued'",
        )
        .bind(campaign_id)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    Ok(())
}
