//! The `saved_filters` table: named contact searches that name audiences.

use assent_shared::api::SavedFilter;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{StoreResult, Tx};
use crate::on_tx;

#[derive(sqlx::FromRow)]
struct FilterRow {
    id: Uuid,
    name: String,
    search: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
}

impl From<FilterRow> for SavedFilter {
    fn from(row: FilterRow) -> Self {
        SavedFilter {
            id: row.id,
            name: row.name,
            search: row.search,
            created_by: row.created_by,
            created_at: row.created_at,
        }
    }
}

/// Saves a filter; a second filter with the same name (ignoring case) is
/// [`super::StoreError::Duplicate`].
pub async fn insert(tx: &mut Tx, filter: &SavedFilter) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query("INSERT INTO saved_filters (id, name, name_key, search, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(filter.id)
            .bind(&filter.name)
            .bind(filter.name.to_lowercase())
            .bind(&filter.search)
            .bind(filter.created_by)
            .bind(filter.created_at)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// One filter, read inside `tx`.
pub async fn get(tx: &mut Tx, id: Uuid) -> StoreResult<Option<SavedFilter>> {
    let row: Option<FilterRow> = on_tx!(tx, pool => {
        sqlx::query_as("SELECT id, name, search, created_by, created_at FROM saved_filters WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(Into::into))
}

/// Every saved filter, by name, read inside `tx`.
pub async fn list(tx: &mut Tx) -> StoreResult<Vec<SavedFilter>> {
    let rows: Vec<FilterRow> = on_tx!(tx, pool => {
        sqlx::query_as("SELECT id, name, search, created_by, created_at FROM saved_filters ORDER BY name_key")
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(Into::into).collect())
}
