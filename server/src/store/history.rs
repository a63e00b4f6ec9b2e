//! The `record_changes` table: the field-by-field history of every change of a contact's or a
//! company's personal data (old value, new value, who, when).

use assent_shared::api::{ActorRef, FieldChange};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{actor_columns, StoreResult, Tx};
use crate::on_tx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Contact,
    Company,
}

impl RecordKind {
    fn as_str(self) -> &'static str {
        match self {
            RecordKind::Contact => "contact",
            RecordKind::Company => "company",
        }
    }
}

/// The changed fields between two flattened views of a record (`field -> value`), in field order.
pub fn diff(
    old: &[(&'static str, Option<String>)],
    new: &[(&'static str, Option<String>)],
) -> Vec<(&'static str, Option<String>, Option<String>)> {
    old.iter()
        .zip(new)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, a), (_, b))| (*field, a.clone(), b.clone()))
        .collect()
}

pub struct ChangeSet<'a> {
    pub kind: RecordKind,
    pub record_id: Uuid,
    pub version: i64,
    pub changes: &'a [(&'static str, Option<String>, Option<String>)],
    pub by: ActorRef,
    pub at: DateTime<Utc>,
}

pub async fn record(tx: &mut Tx, set: &ChangeSet<'_>) -> StoreResult<()> {
    let (by_kind, by) = actor_columns::encode(set.by);
    for (field, old, new) in set.changes {
        on_tx!(tx, conn => {
            sqlx::query(
                "INSERT INTO record_changes (record_kind, record_id, version, field, old_value, new_value, \
                 changed_by_kind, changed_by, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(set.kind.as_str())
            .bind(set.record_id)
            .bind(set.version)
            .bind(*field)
            .bind(old)
            .bind(new)
            .bind(by_kind)
            .bind(by)
            .bind(set.at)
            .execute(conn)
            .await?.rows_affected()
        });
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    id: i64,
    version: i64,
    field: String,
    old_value: Option<String>,
    new_value: Option<String>,
    changed_by_kind: String,
    changed_by: Uuid,
    changed_at: DateTime<Utc>,
}

/// The history of one record, oldest change first.
pub async fn for_record(
    tx: &mut Tx,
    kind: RecordKind,
    record_id: Uuid,
) -> StoreResult<Vec<FieldChange>> {
    let rows: Vec<ChangeRow> = on_tx!(tx, conn => {
        sqlx::query_as(
            "SELECT id, version, field, old_value, new_value, changed_by_kind, changed_by, changed_at FROM record_changes \
             WHERE record_kind = $1 AND record_id = $2 ORDER BY id",
        )
        .bind(kind.as_str())
        .bind(record_id)
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|r| {
            Ok(FieldChange {
                version: r.version,
                changed_by: actor_columns::decode(
                    ("record_changes", r.id),
                    &r.changed_by_kind,
                    r.changed_by,
                )?,
                field: r.field,
                old_value: r.old_value,
                new_value: r.new_value,
                changed_at: r.changed_at,
            })
        })
        .collect()
}
