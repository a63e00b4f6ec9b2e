//! The `public_pages` and `data_requests` tables: the pages the organisation chose to offer (and
//! the standing campaign that sends each one's emails), and the requests people make about their
//! data.

use assent_shared::api::DataRequest;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, IdList, StoreError, StoreResult, WriteTx};
use crate::{on_db, on_tx};

/// The name of the data request page in `public_pages`.
pub const DATA_REQUEST_PAGE: &str = "data_requests";

/// A published page: its standing campaign, who published it and when.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublishedPage {
    pub campaign_id: Uuid,
    pub published_by: Uuid,
    pub published_at: DateTime<Utc>,
}

/// The page `name`, if it is published.
pub async fn page(db: &Db, name: &str) -> StoreResult<Option<PublishedPage>> {
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT campaign_id, published_by, published_at FROM public_pages WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await?
    }))
}

/// Publishes the page `name`; false when it was published already (by another, at once).
pub async fn publish(tx: &mut WriteTx, name: &str, page: &PublishedPage) -> StoreResult<bool> {
    let written = on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO public_pages (name, campaign_id, published_by, published_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(page.campaign_id)
        .bind(page.published_by)
        .bind(page.published_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(written == 1)
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: Uuid,
    kind: String,
    details: Option<String>,
    address: String,
    contact_id: Option<Uuid>,
    outbox_id: Option<Uuid>,
    received_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    verified_at: Option<DateTime<Utc>>,
}

/// A request as stored, with the email that verifies it.
#[derive(Debug, Clone)]
pub struct StoredRequest {
    pub request: DataRequest,
    pub outbox_id: Option<Uuid>,
}

impl TryFrom<RequestRow> for StoredRequest {
    type Error = StoreError;
    fn try_from(row: RequestRow) -> StoreResult<StoredRequest> {
        Ok(StoredRequest {
            request: DataRequest {
                id: row.id,
                kind: row
                    .kind
                    .parse()
                    .map_err(|_| StoreError::corrupt("data_requests", row.id, "an unknown kind"))?,
                details: row.details,
                address: row.address,
                contact_id: row.contact_id,
                received_at: row.received_at,
                verified_at: row.verified_at,
                expires_at: row.expires_at,
            },
            outbox_id: row.outbox_id,
        })
    }
}

const COLUMNS: &str =
    "id, kind, details, address, contact_id, outbox_id, received_at, expires_at, verified_at";

/// Records a request; `address_key` finds it again.
pub async fn insert(
    tx: &mut WriteTx,
    stored: &StoredRequest,
    address_key: &str,
) -> StoreResult<()> {
    let r = &stored.request;
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO data_requests (id, kind, details, address, address_key, contact_id, outbox_id, received_at, expires_at, verified_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.id)
        .bind(r.kind.as_str())
        .bind(&r.details)
        .bind(&r.address)
        .bind(address_key)
        .bind(r.contact_id)
        .bind(stored.outbox_id)
        .bind(r.received_at)
        .bind(r.expires_at)
        .bind(r.verified_at)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    Ok(())
}

/// Whether a verification email went to `address_key` at or after `since` for a request not yet
/// verified (read in the writing transaction, the address serialised by the caller).
pub async fn mailed_since(
    tx: &mut WriteTx,
    address_key: &str,
    since: DateTime<Utc>,
) -> StoreResult<bool> {
    let found: Option<Uuid> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "SELECT id FROM data_requests WHERE address_key = $1 AND received_at >= $2 \
             AND outbox_id IS NOT NULL AND verified_at IS NULL LIMIT 1",
        )
        .bind(address_key)
        .bind(since)
        .fetch_optional(conn)
        .await?
    });
    Ok(found.is_some())
}

/// The request whose verification email is `outbox_id`.
pub async fn by_message(db: &Db, outbox_id: Uuid) -> StoreResult<Option<StoredRequest>> {
    let sql = format!("SELECT {COLUMNS} FROM data_requests WHERE outbox_id = $1");
    let row: Option<RequestRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(outbox_id).fetch_optional(pool).await?
    });
    row.map(TryInto::try_into).transpose()
}

/// The address each of these verification emails goes to, by outbox id.
pub async fn addresses(db: &Db, outbox_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, String)>> {
    let mut found = Vec::with_capacity(outbox_ids.len());
    for chunk in outbox_ids.chunks(500) {
        let rows: Vec<(Uuid, String)> = on_db!(db, pool => {
            let mut query = sqlx::QueryBuilder::new("SELECT outbox_id, address FROM data_requests WHERE outbox_id");
            query.push_ids(chunk);
            query.build_query_as().fetch_all(pool).await?
        });
        found.extend(rows);
    }
    Ok(found)
}

/// Marks a request verified at `at`; false when it was verified already.
pub async fn verify(tx: &mut WriteTx, id: Uuid, at: DateTime<Utc>) -> StoreResult<bool> {
    let written = on_tx!(tx, conn => {
        sqlx::query("UPDATE data_requests SET verified_at = $2 WHERE id = $1 AND verified_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(written == 1)
}

/// Requests newest first, at most `limit`.
pub async fn list(db: &Db, limit: i64) -> StoreResult<Vec<DataRequest>> {
    let sql =
        format!("SELECT {COLUMNS} FROM data_requests ORDER BY received_at DESC, id DESC LIMIT $1");
    let rows: Vec<RequestRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?
    });
    rows.into_iter()
        .map(|row| StoredRequest::try_from(row).map(|s| s.request))
        .collect()
}
