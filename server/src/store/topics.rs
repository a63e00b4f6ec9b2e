//! The `topic_catalogues` table: every version of the topic catalogue, append-only.

use assent_shared::api::{TopicCatalogue, TopicEntry};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{lock_sequence, to_json, Db, Sequence, StoreError, StoreResult, WriteTx};
use crate::{on_db, on_tx};

#[derive(sqlx::FromRow)]
struct CatalogueRow {
    version: i64,
    topics: String,
    similar_groups: String,
    changed_by: Option<Uuid>,
    changed_at: DateTime<Utc>,
    note: Option<String>,
}

impl TryFrom<CatalogueRow> for TopicCatalogue {
    type Error = StoreError;
    fn try_from(row: CatalogueRow) -> StoreResult<TopicCatalogue> {
        let corrupt = |what| StoreError::corrupt("topic_catalogues", row.version, what);
        Ok(TopicCatalogue {
            version: row.version,
            topics: serde_json::from_str(&row.topics)
                .map_err(|_| corrupt("the topics do not parse"))?,
            similar: serde_json::from_str(&row.similar_groups)
                .map_err(|_| corrupt("the similar groups do not parse"))?,
            changed_by: row.changed_by,
            changed_at: row.changed_at,
            note: row.note,
        })
    }
}

/// The empty catalogue, in force until the first saved version.
pub fn built_in() -> TopicCatalogue {
    TopicCatalogue {
        version: 0,
        topics: Vec::new(),
        similar: Vec::new(),
        changed_by: None,
        changed_at: DateTime::UNIX_EPOCH,
        note: None,
    }
}

const COLUMNS: &str = "version, topics, similar_groups, changed_by, changed_at, note";

/// The version in force now.
pub async fn in_force(db: &Db) -> StoreResult<TopicCatalogue> {
    let sql = format!("SELECT {COLUMNS} FROM topic_catalogues ORDER BY version DESC LIMIT 1");
    let row: Option<CatalogueRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).fetch_optional(pool).await?
    });
    row.map(TryInto::try_into)
        .transpose()
        .map(|v| v.unwrap_or_else(built_in))
}

/// The version in force, read inside `tx` after the catalogue's lock, so that a change is made
/// against the version it replaces.
pub async fn latest_locked(tx: &mut WriteTx) -> StoreResult<TopicCatalogue> {
    lock_sequence(tx, Sequence::TopicCatalogues).await?;
    let sql = format!("SELECT {COLUMNS} FROM topic_catalogues ORDER BY version DESC LIMIT 1");
    let row: Option<CatalogueRow> = on_tx!(tx, conn => {
        sqlx::query_as(&sql).fetch_optional(conn).await?
    });
    row.map(TryInto::try_into)
        .transpose()
        .map(|v| v.unwrap_or_else(built_in))
}

/// Every version, newest first, ending with the empty one.
pub async fn history(db: &Db) -> StoreResult<Vec<TopicCatalogue>> {
    let sql = format!("SELECT {COLUMNS} FROM topic_catalogues ORDER BY version DESC");
    let rows: Vec<CatalogueRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).fetch_all(pool).await?
    });
    let mut versions: Vec<TopicCatalogue> = rows
        .into_iter()
        .map(TryInto::try_into)
        .collect::<StoreResult<_>>()?;
    versions.push(built_in());
    Ok(versions)
}

/// Saves the version after `previous` (read by [`latest_locked`] in the same transaction).
pub async fn save(
    tx: &mut WriteTx,
    previous: &TopicCatalogue,
    topics: &[TopicEntry],
    similar: &[Vec<String>],
    by: Uuid,
    at: DateTime<Utc>,
    note: Option<&str>,
) -> StoreResult<TopicCatalogue> {
    let version = previous.version + 1;
    let topics_text = to_json(&topics, "the topics")?;
    let similar_text = to_json(&similar, "the similar groups")?;
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO topic_catalogues (version, topics, similar_groups, changed_by, changed_at, note) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(version)
        .bind(&topics_text)
        .bind(&similar_text)
        .bind(by)
        .bind(at)
        .bind(note)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    Ok(TopicCatalogue {
        version,
        topics: topics.to_vec(),
        similar: similar.to_vec(),
        changed_by: Some(by),
        changed_at: at,
        note: note.map(str::to_owned),
    })
}
