//! The `campaigns` and `campaign_members` tables: campaigns and one-off messages, their state
//! and approval, and the audience frozen at approval.

use assent_shared::api::{Campaign, CampaignInput};
use assent_shared::domain::CampaignState;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{to_json, AsTx, Db, StoreError, StoreResult, Tx, WriteTx};
use crate::{on_db, on_tx};

const COLUMNS: &str = "id, version, content, content_hash, state, flags, author_id, created_at, \
                       updated_by, updated_at, submitted_at, decided_by, decided_at, rejection_reason, \
                       frozen_members, audience_hash, standing";

#[derive(sqlx::FromRow)]
struct CampaignRow {
    id: Uuid,
    version: i64,
    content: String,
    content_hash: String,
    state: String,
    flags: String,
    author_id: Uuid,
    created_at: DateTime<Utc>,
    updated_by: Uuid,
    updated_at: DateTime<Utc>,
    submitted_at: Option<DateTime<Utc>>,
    decided_by: Option<Uuid>,
    decided_at: Option<DateTime<Utc>>,
    rejection_reason: Option<String>,
    frozen_members: Option<i64>,
    audience_hash: Option<String>,
    standing: bool,
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = StoreError;
    fn try_from(row: CampaignRow) -> StoreResult<Campaign> {
        let corrupt = |what| StoreError::corrupt("campaigns", row.id, what);
        let content: CampaignInput = serde_json::from_str(&row.content)
            .map_err(|_| corrupt("the content does not parse"))?;
        Ok(Campaign {
            id: row.id,
            version: row.version,
            content,
            content_hash: row.content_hash,
            state: row
                .state
                .parse()
                .map_err(|_| corrupt("the state is not a campaign state"))?,
            flags: serde_json::from_str(&row.flags)
                .map_err(|_| corrupt("the flags do not parse"))?,
            author_id: row.author_id,
            created_at: row.created_at,
            updated_by: row.updated_by,
            updated_at: row.updated_at,
            submitted_at: row.submitted_at,
            decided_by: row.decided_by,
            decided_at: row.decided_at,
            rejection_reason: row.rejection_reason,
            frozen_members: row.frozen_members,
            audience_hash: row.audience_hash,
            standing: row.standing,
        })
    }
}

/// Saves a new campaign.
pub async fn insert(tx: &mut WriteTx, campaign: &Campaign) -> StoreResult<()> {
    let content = to_json(&campaign.content, "a campaign's content")?;
    let flags = to_json(&campaign.flags, "a campaign's flags")?;
    let sql = format!(
        "INSERT INTO campaigns ({COLUMNS}, kind) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    );
    on_tx!(tx, conn => {
        sqlx::query(&sql)
            .bind(campaign.id)
            .bind(campaign.version)
            .bind(&content)
            .bind(&campaign.content_hash)
            .bind(campaign.state.as_str())
            .bind(&flags)
            .bind(campaign.author_id)
            .bind(campaign.created_at)
            .bind(campaign.updated_by)
            .bind(campaign.updated_at)
            .bind(campaign.submitted_at)
            .bind(campaign.decided_by)
            .bind(campaign.decided_at)
            .bind(&campaign.rejection_reason)
            .bind(campaign.frozen_members)
            .bind(&campaign.audience_hash)
            .bind(campaign.standing)
            .bind(campaign.content.message.kind.as_str())
            .execute(conn)
            .await
            .map(|_| ())?
    });
    Ok(())
}

/// Writes `campaign` over the row at `expected_version` (its version is already the next one);
/// false when another writer changed it first.
pub async fn save(
    tx: &mut WriteTx,
    campaign: &Campaign,
    expected_version: i64,
) -> StoreResult<bool> {
    let content = to_json(&campaign.content, "a campaign's content")?;
    let flags = to_json(&campaign.flags, "a campaign's flags")?;
    let written = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE campaigns SET version = $3, content = $4, content_hash = $5, state = $6, flags = $7, \
             updated_at = $8, submitted_at = $9, decided_by = $10, decided_at = $11, rejection_reason = $12, \
             frozen_members = $13, audience_hash = $14, kind = $15, updated_by = $16 WHERE id = $1 AND version = $2",
        )
        .bind(campaign.id)
        .bind(expected_version)
        .bind(campaign.version)
        .bind(&content)
        .bind(&campaign.content_hash)
        .bind(campaign.state.as_str())
        .bind(&flags)
        .bind(campaign.updated_at)
        .bind(campaign.submitted_at)
        .bind(campaign.decided_by)
        .bind(campaign.decided_at)
        .bind(&campaign.rejection_reason)
        .bind(campaign.frozen_members)
        .bind(&campaign.audience_hash)
        .bind(campaign.content.message.kind.as_str())
        .bind(campaign.updated_by)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(written == 1)
}

/// Marks a campaign that is sending as sent (the worker found nothing left); false when it was
/// not sending (paused or cancelled meanwhile) or changed since the worker read it at `version`
/// (recipients sent again by choice: their rows may be queued after the worker looked).
pub async fn mark_sent(
    tx: &mut WriteTx,
    id: Uuid,
    version: i64,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let written = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE campaigns SET state = 'sent', version = version + 1, updated_at = $2 \
             WHERE id = $1 AND state = 'sending' AND version = $3",
        )
        .bind(id)
        .bind(at)
        .bind(version)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(written == 1)
}

/// The campaign, read inside `tx`; on PostgreSQL its row is locked until `tx` ends (a SQLite
/// write transaction holds the whole database already).
pub async fn get_for_update(tx: &mut WriteTx, id: Uuid) -> StoreResult<Option<Campaign>> {
    let lock = match tx.as_tx() {
        Tx::Postgres(_) => " FOR UPDATE",
        Tx::Sqlite(_) => "",
    };
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1{lock}");
    let row: Option<CampaignRow> = on_tx!(tx, conn => {
        sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?
    });
    row.map(TryInto::try_into).transpose()
}

pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<Campaign>> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1");
    let row: Option<CampaignRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
    });
    row.map(TryInto::try_into).transpose()
}

/// Campaigns newest first, of one state or any, at most `limit`.
pub async fn list(db: &Db, state: Option<CampaignState>, limit: i64) -> StoreResult<Vec<Campaign>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM campaigns WHERE ($1 = '' OR state = $1) \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let state = state.map_or("", CampaignState::as_str);
    let rows: Vec<CampaignRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(state).bind(limit).fetch_all(pool).await?
    });
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Replaces the frozen audience of `campaign_id` with `members`.
pub async fn freeze_members(
    tx: &mut WriteTx,
    campaign_id: Uuid,
    members: &[Uuid],
) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query("DELETE FROM campaign_members WHERE campaign_id = $1")
            .bind(campaign_id)
            .execute(&mut *conn)
            .await
            .map(|_| ())?
    });
    // Bounded statements: at most 30,000 binds a statement (SQLite's limit is 32,766).
    for chunk in members.chunks(15_000) {
        let mut sql =
            String::from("INSERT INTO campaign_members (campaign_id, contact_id) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("($1, ${})", i + 2));
        }
        on_tx!(tx, conn => {
            let mut query = sqlx::query(&sql)
                .persistent(super::keep_prepared(chunk.len()))
                .bind(campaign_id);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(conn).await.map(|_| ())?
        });
    }
    Ok(())
}

/// The frozen audience of a campaign, in contact id order.
pub async fn members(db: &Db, campaign_id: Uuid) -> StoreResult<Vec<Uuid>> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT contact_id FROM campaign_members WHERE campaign_id = $1 ORDER BY contact_id",
        )
        .bind(campaign_id)
        .fetch_all(pool)
        .await?
    }))
}
