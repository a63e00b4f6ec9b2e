//! The `companies` table: corporate subscribers.

use assent_shared::api::{ActorRef, Company, CompanyPage};
use assent_shared::validate::ValidCompany;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::contacts::{address_from_columns, address_lines_text};
use super::history::{self, ChangeSet, RecordKind};
use super::{actor_columns, cursor, like_pattern, StoreError, StoreResult, Tx, Updated};
use crate::on_tx;

#[derive(sqlx::FromRow)]
struct CompanyRow {
    id: Uuid,
    version: i64,
    name: String,
    name_key: String,
    registration_number: Option<String>,
    address_lines: Option<String>,
    town: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
    generic_email: Option<String>,
    generic_phone: Option<String>,
    owner_id: Option<Uuid>,
    active: bool,
    created_at: DateTime<Utc>,
    created_by_kind: String,
    created_by: Uuid,
    updated_at: DateTime<Utc>,
    updated_by_kind: String,
    updated_by: Uuid,
}

const COLUMNS: &str =
    "id, version, name, name_key, registration_number, address_lines, town, postcode, country, \
    generic_email, generic_phone, owner_id, active, created_at, created_by_kind, created_by, updated_at, \
    updated_by_kind, updated_by";

impl TryFrom<CompanyRow> for Company {
    type Error = StoreError;
    fn try_from(row: CompanyRow) -> StoreResult<Company> {
        Ok(Company {
            id: row.id,
            version: row.version,
            name: row.name,
            registration_number: row.registration_number,
            address: address_from_columns(
                ("companies", row.id),
                row.address_lines,
                row.town,
                row.postcode,
                row.country,
            )?,
            generic_email: row.generic_email,
            generic_phone: row.generic_phone,
            owner_id: row.owner_id,
            active: row.active,
            created_at: row.created_at,
            created_by: actor_columns::decode(
                ("companies", row.id),
                &row.created_by_kind,
                row.created_by,
            )?,
            updated_at: row.updated_at,
            updated_by: actor_columns::decode(
                ("companies", row.id),
                &row.updated_by_kind,
                row.updated_by,
            )?,
        })
    }
}

pub async fn get(tx: &mut Tx, id: Uuid) -> StoreResult<Option<Company>> {
    let sql = format!("SELECT {COLUMNS} FROM companies WHERE id = $1");
    let row: Option<CompanyRow> =
        on_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?);
    row.map(TryInto::try_into).transpose()
}

/// Creates a company owned by `owner_id` (nobody when `None`), created by `by`.
pub async fn insert(
    tx: &mut Tx,
    id: Uuid,
    company: &ValidCompany,
    owner_id: Option<Uuid>,
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<Company> {
    // Version 0 is invisible outside this transaction; the fields are then written as an update
    // writes them.
    let (by_kind, by_id) = actor_columns::encode(by);
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO companies (id, version, name, name_key, owner_id, active, created_at, created_by_kind, \
             created_by, updated_at, updated_by_kind, updated_by) \
             VALUES ($1, 0, '', '', $2, $3, $4, $5, $6, $4, $5, $6)",
        )
        .bind(id)
        .bind(owner_id)
        .bind(true)
        .bind(at)
        .bind(by_kind)
        .bind(by_id)
        .execute(conn)
        .await?
        .rows_affected()
    });
    write_fields(tx, id, 0, company, by, at).await?;
    get(tx, id)
        .await?
        .ok_or_else(|| StoreError::corrupt("companies", id, "vanished as it was created"))
}

/// Writes every field of `company` over row `id` if it is at `version`, moving it to the next
/// version; returns the rows written (0: the version was stale).
async fn write_fields(
    tx: &mut Tx,
    id: Uuid,
    version: i64,
    company: &ValidCompany,
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<u64> {
    let address = company.address.as_ref();
    let lines = address_lines_text(address)?;
    let (by_kind, by) = actor_columns::encode(by);
    Ok(on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE companies SET version = $2 + 1, name = $3, name_key = $4, registration_number = $5, \
             address_lines = $6, town = $7, postcode = $8, country = $9, generic_email = $10, \
             generic_phone = $11, updated_at = $12, updated_by_kind = $13, updated_by = $14 \
             WHERE id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .bind(&company.name)
        .bind(company.name.to_lowercase())
        .bind(company.registration_number.as_ref().map(|n| n.as_str().to_owned()))
        .bind(lines)
        .bind(address.and_then(|a| a.town.clone()))
        .bind(address.and_then(|a| a.postcode.clone()))
        .bind(address.map(|a| a.country.clone()))
        .bind(company.generic_email.as_ref().map(|e| e.as_str().to_owned()))
        .bind(company.generic_phone.as_ref().map(|p| p.as_str().to_owned()))
        .bind(at)
        .bind(by_kind)
        .bind(by)
        .execute(conn)
        .await?
        .rows_affected()
    }))
}

fn flatten(c: &Company) -> Vec<(&'static str, Option<String>)> {
    let address = c.address.clone().unwrap_or_default();
    vec![
        ("name", Some(c.name.clone())),
        ("registration_number", c.registration_number.clone()),
        (
            "address.lines",
            (!address.lines.is_empty()).then(|| address.lines.join(", ")),
        ),
        ("address.town", address.town),
        ("address.postcode", address.postcode),
        ("address.country", address.country),
        ("generic_email", c.generic_email.clone()),
        ("generic_phone", c.generic_phone.clone()),
        ("active", Some(c.active.to_string())),
    ]
}

/// Replaces the fields of `current` (or only deactivates it, when `company` is `None`) if it is
/// still at `expected_version`, recording every changed field.
pub async fn update(
    tx: &mut Tx,
    current: &Company,
    expected_version: i64,
    company: Option<&ValidCompany>,
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<Updated<Company>> {
    if current.version != expected_version {
        return Ok(Updated::stale(
            current.version,
            current.updated_by,
            current.updated_at,
        ));
    }
    let updated = match company {
        Some(company) => write_fields(tx, current.id, expected_version, company, by, at).await?,
        None => on_tx!(tx, conn => {
            let (by_kind, by) = actor_columns::encode(by);
            sqlx::query(
                "UPDATE companies SET version = $2 + 1, active = $3, updated_at = $4, updated_by_kind = $5, updated_by = $6 \
                 WHERE id = $1 AND version = $2",
            )
            .bind(current.id)
            .bind(expected_version)
            .bind(false)
            .bind(at)
            .bind(by_kind)
            .bind(by)
            .execute(conn)
            .await?
            .rows_affected()
        }),
    };
    if updated == 0 {
        // Another writer committed first (PostgreSQL's writers can race here): the answer
        // names the record as it is now.
        let now = get(tx, current.id).await?.ok_or_else(|| {
            StoreError::corrupt("companies", current.id, "vanished as it was updated")
        })?;
        return Ok(Updated::stale(now.version, now.updated_by, now.updated_at));
    }
    let saved = get(tx, current.id).await?.ok_or_else(|| {
        StoreError::corrupt("companies", current.id, "vanished as it was updated")
    })?;
    let changes = history::diff(&flatten(current), &flatten(&saved));
    history::record(
        tx,
        &ChangeSet {
            kind: RecordKind::Company,
            record_id: current.id,
            version: saved.version,
            changes: &changes,
            by,
            at,
        },
    )
    .await?;
    Ok(Updated::Saved(saved))
}

/// The registration-number pattern of a search: its letters and digits, upper case, when it
/// could be part of a company number (at least four characters, only letters and digits once
/// spaces are dropped); otherwise none.
fn number_pattern(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (compact.len() >= 4 && compact.len() <= 8 && compact.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| format!("%{compact}%"))
}

/// One page of companies in name order; with `text`, those whose name contains it or whose
/// registration number contains it (`123456` finds `00123456`, `sc 12` does not: too short).
pub async fn search(
    tx: &mut Tx,
    text: Option<&str>,
    include_inactive: bool,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> StoreResult<CompanyPage> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    let pattern = text.map(like_pattern);
    let number = text.and_then(number_pattern);
    // The first page starts after the smallest key there is (every id is above the nil one).
    let (after_key, after_id) = match after {
        Some((key, id)) => (key, id),
        None => (String::new(), Uuid::nil()),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM companies \
         WHERE ($1 IS NULL OR name_key LIKE $1 ESCAPE '\\' OR registration_number LIKE $6) AND ($2 OR active) \
           AND (name_key, id) > ($3, $4) \
         ORDER BY name_key, id LIMIT $5"
    );
    let rows: Vec<CompanyRow> = on_tx!(tx, conn => {
        sqlx::query_as(&sql)
            .bind(&pattern)
            .bind(include_inactive)
            .bind(&after_key)
            .bind(after_id)
            .bind(limit + 1)
            .bind(&number)
            .fetch_all(conn)
            .await?
    });
    let has_more = rows.len() as i64 > limit;
    let rows: Vec<CompanyRow> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = match rows.last() {
        Some(last) if has_more => Some(cursor::encode(&last.name_key, last.id)),
        _ => None,
    };
    Ok(CompanyPage {
        items: rows
            .into_iter()
            .map(Company::try_from)
            .collect::<StoreResult<_>>()?,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_looks_for_a_company_number_only_when_it_could_be_one() {
        assert_eq!(number_pattern("123456").as_deref(), Some("%123456%"));
        assert_eq!(number_pattern(" sc 123456 ").as_deref(), Some("%SC123456%"));
        assert_eq!(number_pattern("sc1"), None);
        assert_eq!(number_pattern("Harbour Mutual"), None);
        assert_eq!(number_pattern("1234-5678"), None);
    }
}
