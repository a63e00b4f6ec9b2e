//! The `contacts`, `contact_emails` and `contact_phones` tables: the people in the CRM.

use assent_shared::api::{ActorRef, Contact, ContactPage, ContactSummary, PostalAddress};
use assent_shared::domain::SubscriberKind;
use assent_shared::validate::{ValidAddress, ValidContact};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::history::{self, ChangeSet, RecordKind};
use super::{
    actor_columns, cursor, keep_prepared, like_pattern, to_json, Db, IdList, StoreError,
    StoreResult, Tx, Updated, WriteTx, MAX_BINDS,
};
use crate::{on_db, on_tx};

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: Uuid,
    version: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    address_lines: Option<String>,
    town: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
    company_id: Option<Uuid>,
    subscriber_kind: String,
    job_title: Option<String>,
    notes: Option<String>,
    owner_id: Option<Uuid>,
    active: bool,
    created_at: DateTime<Utc>,
    created_by_kind: String,
    created_by: Uuid,
    updated_at: DateTime<Utc>,
    updated_by_kind: String,
    updated_by: Uuid,
}

const COLUMNS: &str = "id, version, first_name, last_name, address_lines, town, postcode, country, \
    company_id, subscriber_kind, job_title, notes, owner_id, active, created_at, created_by_kind, created_by, \
    updated_at, updated_by_kind, updated_by";

/// The sort key of a contact list: "last first", lower-cased.
fn sort_key(first: Option<&str>, last: Option<&str>) -> String {
    [last, first]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Address lines are kept as a JSON array in one column.
pub(super) fn address_lines_text(address: Option<&ValidAddress>) -> StoreResult<Option<String>> {
    address
        .filter(|a| !a.lines.is_empty())
        .map(|a| to_json(&a.lines, "address lines"))
        .transpose()
}

/// A postal address from its columns; `table` and `id` name the row if it does not read back.
pub(super) fn address_from_columns(
    (table, id): (&'static str, Uuid),
    lines: Option<String>,
    town: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
) -> StoreResult<Option<PostalAddress>> {
    let lines: Vec<String> = match lines {
        Some(text) => serde_json::from_str(&text)
            .map_err(|_| StoreError::corrupt(table, id, "address_lines is not a JSON list"))?,
        None => Vec::new(),
    };
    if lines.is_empty() && town.is_none() && postcode.is_none() {
        return Ok(None);
    }
    Ok(Some(PostalAddress {
        lines,
        town,
        postcode,
        country,
    }))
}

async fn load(tx: &mut Tx, row: ContactRow) -> StoreResult<Contact> {
    // Both lists in one statement: emails (0) before phones (1), each in position order.
    let listed: Vec<(i32, i32, String)> = on_tx!(tx, conn => {
        sqlx::query_as(
            "SELECT 0 AS list, position, email AS value FROM contact_emails WHERE contact_id = $1 \
             UNION ALL SELECT 1, position, phone FROM contact_phones WHERE contact_id = $1 \
             ORDER BY 1, 2",
        )
        .bind(row.id)
        .fetch_all(conn)
        .await?
    });
    let (emails, phones): (Vec<_>, Vec<_>) =
        listed.into_iter().partition(|(list, _, _)| *list == 0);
    let emails: Vec<String> = emails.into_iter().map(|(_, _, value)| value).collect();
    let phones: Vec<String> = phones.into_iter().map(|(_, _, value)| value).collect();
    contact_from(row, emails, phones)
}

/// A contact with its emails and phone numbers, each list a JSON array in position order, so
/// that one statement (one snapshot, no transaction) reads all three tables.
#[derive(sqlx::FromRow)]
struct ContactWithLists {
    #[sqlx(flatten)]
    row: ContactRow,
    emails: String,
    phones: String,
}

/// The lists of [`ContactWithLists`], per backend: the aggregates differ.
fn read_sql(postgres: bool) -> String {
    let list = |table: &str, column: &str| {
        if postgres {
            format!(
                "(SELECT COALESCE(json_agg({column} ORDER BY position), '[]'::json)::text \
                 FROM {table} WHERE contact_id = c.id)"
            )
        } else {
            format!("(SELECT json_group_array({column} ORDER BY position) FROM {table} WHERE contact_id = c.id)")
        }
    };
    format!(
        "SELECT {COLUMNS}, {} AS emails, {} AS phones FROM contacts c WHERE c.id = $1",
        list("contact_emails", "email"),
        list("contact_phones", "phone"),
    )
}

/// One contact, read outside any transaction in one statement (the read of a single contact
/// that a request makes; writers read through [`get`] inside theirs).
pub async fn read(db: &Db, id: Uuid) -> StoreResult<Option<Contact>> {
    static SQLITE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| read_sql(false));
    static POSTGRES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| read_sql(true));
    let found: Option<ContactWithLists> = match db.pool() {
        super::Pool::Sqlite(pool) => {
            sqlx::query_as(SQLITE.as_str())
                .bind(id)
                .fetch_optional(pool)
                .await?
        }
        super::Pool::Postgres(pool) => {
            sqlx::query_as(POSTGRES.as_str())
                .bind(id)
                .fetch_optional(pool)
                .await?
        }
    };
    let Some(found) = found else {
        return Ok(None);
    };
    let list = |text: &str, what: &'static str| {
        serde_json::from_str::<Vec<String>>(text)
            .map_err(|_| StoreError::corrupt("contacts", id, what))
    };
    let emails = list(&found.emails, "its emails do not read back as a list")?;
    let phones = list(
        &found.phones,
        "its phone numbers do not read back as a list",
    )?;
    contact_from(found.row, emails, phones).map(Some)
}

fn contact_from(row: ContactRow, emails: Vec<String>, phones: Vec<String>) -> StoreResult<Contact> {
    let subscriber_kind = parse_kind(row.id, &row.subscriber_kind)?;
    Ok(Contact {
        id: row.id,
        version: row.version,
        first_name: row.first_name,
        last_name: row.last_name,
        emails,
        phones,
        address: address_from_columns(
            ("contacts", row.id),
            row.address_lines,
            row.town,
            row.postcode,
            row.country,
        )?,
        company_id: row.company_id,
        subscriber_kind,
        job_title: row.job_title,
        notes: row.notes,
        owner_id: row.owner_id,
        active: row.active,
        created_at: row.created_at,
        created_by: actor_columns::decode(
            ("contacts", row.id),
            &row.created_by_kind,
            row.created_by,
        )?,
        updated_at: row.updated_at,
        updated_by: actor_columns::decode(
            ("contacts", row.id),
            &row.updated_by_kind,
            row.updated_by,
        )?,
    })
}

pub async fn get(tx: &mut Tx, id: Uuid) -> StoreResult<Option<Contact>> {
    let sql = format!("SELECT {COLUMNS} FROM contacts WHERE id = $1");
    let row: Option<ContactRow> =
        on_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?);
    match row {
        Some(row) => Ok(Some(load(tx, row).await?)),
        None => Ok(None),
    }
}

async fn write_emails_and_phones(tx: &mut Tx, id: Uuid, contact: &ValidContact) -> StoreResult<()> {
    on_tx!(&mut *tx, conn => {
        sqlx::query("DELETE FROM contact_emails WHERE contact_id = $1").bind(id).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM contact_phones WHERE contact_id = $1").bind(id).execute(&mut *conn).await?;
    });
    insert_emails_and_phones(tx, &[(id, contact)]).await
}

/// Inserts the emails and phone numbers of contacts that have none stored.
async fn insert_emails_and_phones(
    tx: &mut Tx,
    contacts: &[(Uuid, &ValidContact)],
) -> StoreResult<()> {
    let emails = positioned(contacts, |c| c.emails.iter().map(|e| e.as_str()));
    let phones = positioned(contacts, |c| c.phones.iter().map(|p| p.as_str()));
    // Emails are also kept lower-cased, to be found whatever their case.
    insert_list(tx, "contact_emails", "email", Some("email_key"), &emails).await?;
    insert_list(tx, "contact_phones", "phone", None, &phones).await
}

/// `(contact, position, value)` for every value of every contact, in order.
fn positioned<'a, I: Iterator<Item = &'a str>>(
    contacts: &[(Uuid, &'a ValidContact)],
    values: impl Fn(&'a ValidContact) -> I,
) -> Vec<(Uuid, i32, &'a str)> {
    contacts
        .iter()
        .flat_map(|&(id, contact)| {
            values(contact)
                .enumerate()
                .map(move |(i, value)| (id, i as i32, value))
        })
        .collect()
}

/// Inserts `(contact, position, value)` rows into `table`, and the value lower-cased into
/// `key_column` when there is one.
async fn insert_list(
    tx: &mut Tx,
    table: &str,
    value_column: &str,
    key_column: Option<&str>,
    rows: &[(Uuid, i32, &str)],
) -> StoreResult<()> {
    let key = key_column.map(|k| format!(", {k}")).unwrap_or_default();
    let columns = 3 + usize::from(key_column.is_some());
    for chunk in rows.chunks(MAX_BINDS / columns) {
        on_tx!(&mut *tx, conn => {
            let mut query = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {table} (contact_id, position, {value_column}{key}) "
            ));
            query.push_values(chunk, |mut row, (id, position, value)| {
                row.push_bind(*id).push_bind(*position).push_bind(*value);
                if key_column.is_some() {
                    row.push_bind(value.to_lowercase());
                }
            });
            query.build().persistent(keep_prepared(chunk.len())).execute(conn).await?.rows_affected()
        });
    }
    Ok(())
}

/// A contact about to be created.
pub struct NewContact<'a> {
    pub id: Uuid,
    pub contact: &'a ValidContact,
    pub owner_id: Option<Uuid>,
    /// False for a contact that is not in lists and audiences until something makes it so (a
    /// sign-up's, until it is confirmed).
    pub active: bool,
}

/// Creates a contact owned by `owner_id` (nobody when `None`).
pub async fn insert(
    tx: &mut Tx,
    id: Uuid,
    contact: &ValidContact,
    owner_id: Option<Uuid>,
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<Contact> {
    insert_one(tx, id, contact, owner_id, true, by, at).await
}

/// Creates a contact that stays out of lists and audiences (inactive) until it is activated: a
/// sign-up's, until it is confirmed.
pub async fn insert_pending(
    tx: &mut Tx,
    id: Uuid,
    contact: &ValidContact,
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<Contact> {
    insert_one(tx, id, contact, None, false, by, at).await
}

async fn insert_one(
    tx: &mut Tx,
    id: Uuid,
    contact: &ValidContact,
    owner_id: Option<Uuid>,
    active: bool,
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<Contact> {
    let new = NewContact {
        id,
        contact,
        owner_id,
        active,
    };
    insert_many(tx, std::slice::from_ref(&new), by, at).await?;
    get(tx, id)
        .await?
        .ok_or_else(|| StoreError::corrupt("contacts", id, "vanished as it was created"))
}

/// Creates contacts in a few multi-row statements (seeding, imports); each starts at version 1.
pub async fn insert_many(
    tx: &mut Tx,
    contacts: &[NewContact<'_>],
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let (by_kind, by) = actor_columns::encode(by);
    let address_lines: Vec<Option<String>> = contacts
        .iter()
        .map(|n| address_lines_text(n.contact.address.as_ref()))
        .collect::<StoreResult<_>>()?;
    const COLUMNS: [&str; 21] = [
        "id",
        "version",
        "first_name",
        "last_name",
        "sort_key",
        "address_lines",
        "town",
        "postcode",
        "country",
        "company_id",
        "subscriber_kind",
        "job_title",
        "notes",
        "owner_id",
        "active",
        "created_at",
        "created_by_kind",
        "created_by",
        "updated_at",
        "updated_by_kind",
        "updated_by",
    ];
    let rows: Vec<(&NewContact, &Option<String>)> = contacts.iter().zip(&address_lines).collect();
    for chunk in rows.chunks(MAX_BINDS / COLUMNS.len()) {
        on_tx!(&mut *tx, conn => {
            let mut query =
                sqlx::QueryBuilder::new(format!("INSERT INTO contacts ({}) ", COLUMNS.join(", ")));
            query.push_values(chunk, |mut row, (new, lines)| {
                let c = new.contact;
                let address = c.address.as_ref();
                row.push_bind(new.id)
                    .push_bind(1_i64)
                    .push_bind(c.first_name.as_deref())
                    .push_bind(c.last_name.as_deref())
                    .push_bind(sort_key(c.first_name.as_deref(), c.last_name.as_deref()))
                    .push_bind(lines.as_deref())
                    .push_bind(address.and_then(|a| a.town.clone()))
                    .push_bind(address.and_then(|a| a.postcode.clone()))
                    .push_bind(address.map(|a| a.country.clone()))
                    .push_bind(c.company_id)
                    .push_bind(c.subscriber_kind.as_str())
                    .push_bind(c.job_title.as_deref())
                    .push_bind(c.notes.as_deref())
                    .push_bind(new.owner_id)
                    .push_bind(new.active)
                    .push_bind(at)
                    .push_bind(by_kind)
                    .push_bind(by)
                    .push_bind(at)
                    .push_bind(by_kind)
                    .push_bind(by);
            });
            query.build().persistent(keep_prepared(chunk.len())).execute(conn).await?.rows_affected()
        });
    }
    let lists: Vec<(Uuid, &ValidContact)> = contacts.iter().map(|n| (n.id, n.contact)).collect();
    insert_emails_and_phones(tx, &lists).await
}

/// Writes every field of `contact` over row `id` if it is at `version`, and moves it to the next
/// version. Returns the number of rows written (0: the version was stale).
#[allow(clippy::too_many_arguments)]
async fn write_fields(
    tx: &mut Tx,
    id: Uuid,
    version: i64,
    contact: &ValidContact,
    owner_id: Option<Uuid>,
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<u64> {
    let address = contact.address.as_ref();
    let lines = address_lines_text(address)?;
    let (by_kind, by) = actor_columns::encode(by);
    let written = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE contacts SET version = $2 + 1, first_name = $3, last_name = $4, sort_key = $5, address_lines = $6, \
             town = $7, postcode = $8, country = $9, company_id = $10, subscriber_kind = $11, job_title = $12, \
             notes = $13, owner_id = $14, updated_at = $15, updated_by_kind = $16, updated_by = $17 \
             WHERE id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .bind(&contact.first_name)
        .bind(&contact.last_name)
        .bind(sort_key(contact.first_name.as_deref(), contact.last_name.as_deref()))
        .bind(lines)
        .bind(address.and_then(|a| a.town.clone()))
        .bind(address.and_then(|a| a.postcode.clone()))
        .bind(address.map(|a| a.country.clone()))
        .bind(contact.company_id)
        .bind(contact.subscriber_kind.as_str())
        .bind(&contact.job_title)
        .bind(&contact.notes)
        .bind(owner_id)
        .bind(at)
        .bind(by_kind)
        .bind(by)
        .execute(conn)
        .await?
        .rows_affected()
    });
    if written > 0 {
        write_emails_and_phones(tx, id, contact).await?;
    }
    Ok(written)
}

/// The fields of a contact as history records them.
fn flatten(c: &Contact) -> Vec<(&'static str, Option<String>)> {
    let address = c.address.clone().unwrap_or_default();
    let list = |items: &[String]| (!items.is_empty()).then(|| items.join(", "));
    vec![
        ("first_name", c.first_name.clone()),
        ("last_name", c.last_name.clone()),
        ("emails", list(&c.emails)),
        ("phones", list(&c.phones)),
        ("address.lines", list(&address.lines)),
        ("address.town", address.town),
        ("address.postcode", address.postcode),
        ("address.country", address.country),
        ("company_id", c.company_id.map(|id| id.to_string())),
        (
            "subscriber_kind",
            Some(c.subscriber_kind.as_str().to_owned()),
        ),
        ("job_title", c.job_title.clone()),
        ("notes", c.notes.clone()),
        ("owner_id", c.owner_id.map(|id| id.to_string())),
        ("active", Some(c.active.to_string())),
    ]
}

/// A change to a contact.
#[derive(Debug, Clone, Copy)]
pub enum ContactChange<'a> {
    /// New values for every field, and the owner (nobody when `None`).
    Replace(&'a ValidContact, Option<Uuid>),
    /// Hidden from lists (false; history and ledger kept) or shown again (true).
    Active(bool),
}

/// Applies `change` to `current` if it is still at `expected_version`, and records every changed
/// field in the history.
pub async fn update(
    tx: &mut Tx,
    current: &Contact,
    expected_version: i64,
    change: ContactChange<'_>,
    by: ActorRef,
    at: DateTime<Utc>,
) -> StoreResult<Updated<Contact>> {
    if current.version != expected_version {
        return Ok(Updated::stale(
            current.version,
            current.updated_by,
            current.updated_at,
        ));
    }
    let written = match change {
        ContactChange::Replace(contact, owner_id) => {
            write_fields(tx, current.id, expected_version, contact, owner_id, by, at).await?
        }
        ContactChange::Active(active) => on_tx!(tx, conn => {
            let (by_kind, by) = actor_columns::encode(by);
            sqlx::query(
                "UPDATE contacts SET version = $2 + 1, active = $3, updated_at = $4, updated_by_kind = $5, updated_by = $6 \
                 WHERE id = $1 AND version = $2",
            )
            .bind(current.id)
            .bind(expected_version)
            .bind(active)
            .bind(at)
            .bind(by_kind)
            .bind(by)
            .execute(conn)
            .await?
            .rows_affected()
        }),
    };
    if written == 0 {
        // Another writer committed first (PostgreSQL's writers can race here): the answer
        // names the record as it is now.
        let now = get(tx, current.id).await?.ok_or_else(|| {
            StoreError::corrupt("contacts", current.id, "vanished as it was updated")
        })?;
        return Ok(Updated::stale(now.version, now.updated_by, now.updated_at));
    }
    let saved = get(tx, current.id)
        .await?
        .ok_or_else(|| StoreError::corrupt("contacts", current.id, "vanished as it was updated"))?;
    let changes = history::diff(&flatten(current), &flatten(&saved));
    let set = ChangeSet {
        kind: RecordKind::Contact,
        record_id: current.id,
        version: saved.version,
        changes: &changes,
        by,
        at,
    };
    history::record(tx, &set).await?;
    Ok(Updated::Saved(saved))
}

/// A contact search: free text over names, email addresses, phone numbers and company names.
#[derive(Debug, Clone, Default)]
pub struct ContactQuery {
    pub text: Option<String>,
    pub include_inactive: bool,
    pub after: Option<(String, Uuid)>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    first_name: Option<String>,
    last_name: Option<String>,
    sort_key: String,
    company_id: Option<Uuid>,
    company_name: Option<String>,
    owner_id: Option<Uuid>,
    active: bool,
    email: Option<String>,
    phone: Option<String>,
}

/// The digits a phone search looks for: national numbers lose their leading zero so that
/// "07400 123456" finds "+447700900123". Too few digits to mean a phone number: none.
fn phone_pattern(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_start_matches('0');
    (digits.len() >= 4
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c)))
    .then(|| format!("%{digits}%"))
}

/// The contacts a search matches: $1 the name, email or company pattern, $2 the name pattern
/// reversed, $3 the phone pattern, $4 whether to include inactive contacts.
const SEARCH_FROM_WHERE: &str = "FROM contacts c LEFT JOIN companies co ON co.id = c.company_id \
    WHERE ($1 IS NULL \
           OR c.sort_key LIKE $1 ESCAPE '\\' OR c.sort_key LIKE $2 ESCAPE '\\' \
           OR co.name_key LIKE $1 ESCAPE '\\' \
           OR EXISTS (SELECT 1 FROM contact_emails e WHERE e.contact_id = c.id AND e.email_key LIKE $1 ESCAPE '\\') \
           OR ($3 IS NOT NULL AND EXISTS (SELECT 1 FROM contact_phones p WHERE p.contact_id = c.id AND p.phone LIKE $3))) \
      AND ($4 OR c.active)";

/// The search patterns of a free-text query: (name/email/company, reversed name, phone).
fn search_patterns(text: Option<&str>) -> (Option<String>, Option<String>, Option<String>) {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    let pattern = text.map(like_pattern);
    // "jane doe" also finds the sort key "doe jane".
    let reversed =
        text.map(|t| like_pattern(&t.split_whitespace().rev().collect::<Vec<_>>().join(" ")));
    (pattern, reversed, text.and_then(phone_pattern))
}

/// The active contacts an audience names, with their subscriber kind, in id order: those a
/// search matches (every active contact when `text` is `None`).
pub async fn audience_by_search(
    db: &Db,
    text: Option<&str>,
) -> StoreResult<Vec<(Uuid, SubscriberKind)>> {
    let (pattern, reversed, phone) = search_patterns(text);
    let sql = format!("SELECT c.id, c.subscriber_kind {SEARCH_FROM_WHERE} ORDER BY c.id");
    let rows: Vec<(Uuid, String)> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(&pattern).bind(&reversed).bind(&phone).bind(false).fetch_all(pool).await?
    });
    rows.into_iter()
        .map(|(id, kind)| Ok((id, parse_kind(id, &kind)?)))
        .collect()
}

/// The contacts of a list, as an audience holds them.
#[derive(Debug, Default)]
pub struct ListedAudience {
    /// The active contacts, with their subscriber kind, in id order, each once.
    pub active: Vec<(Uuid, SubscriberKind)>,
    /// Deactivated contacts the list names (each once).
    pub inactive: u64,
    /// Ids that name no contact, in order, each once.
    pub missing: Vec<Uuid>,
}

/// The contacts of a list, sorted into active, deactivated and unknown ids.
pub async fn audience_by_ids(db: &Db, ids: &[Uuid]) -> StoreResult<ListedAudience> {
    let mut found: Vec<(Uuid, SubscriberKind, bool)> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<(Uuid, String, bool)> = on_db!(db, pool => {
            let mut query = sqlx::QueryBuilder::new("SELECT id, subscriber_kind, active FROM contacts WHERE id");
            query.push_ids(chunk);
            let persistent = query.keeps_prepared(chunk.len());
            query.build_query_as().persistent(persistent).fetch_all(pool).await?
        });
        for (id, kind, active) in rows {
            found.push((id, parse_kind(id, &kind)?, active));
        }
    }
    found.sort_unstable_by_key(|(id, _, _)| *id);
    found.dedup_by_key(|(id, _, _)| *id);
    let mut missing: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| found.binary_search_by_key(id, |(f, _, _)| *f).is_err())
        .collect();
    missing.sort_unstable();
    missing.dedup();
    let inactive = found.iter().filter(|(_, _, active)| !active).count() as u64;
    let active = found
        .into_iter()
        .filter(|(_, _, active)| *active)
        .map(|(id, kind, _)| (id, kind))
        .collect();
    Ok(ListedAudience {
        active,
        inactive,
        missing,
    })
}

/// What a message to a contact needs: the merge values and the first address of each channel.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    /// The first email address not flagged as bouncing.
    pub email: Option<String>,
    /// Whether any of the contact's email addresses is flagged as bouncing.
    pub email_flagged: bool,
    /// The first phone number not flagged as unreachable by text.
    pub phone: Option<String>,
    /// Whether any of the contact's numbers is flagged so.
    pub phone_flagged: bool,
}

/// The recipients among `ids`, in id order (ids of no contact are left out).
pub async fn recipients(db: &Db, ids: &[Uuid]) -> StoreResult<Vec<Recipient>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<Recipient> = on_db!(db, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT c.id, c.first_name, c.last_name, co.name AS company, \
                 (SELECT e.email FROM contact_emails e WHERE e.contact_id = c.id AND NOT EXISTS \
                   (SELECT 1 FROM address_flags f WHERE f.contact_id = c.id AND f.channel = 'email' AND f.address_key = e.email_key) \
                   ORDER BY e.position LIMIT 1) AS email, \
                 EXISTS (SELECT 1 FROM address_flags f WHERE f.contact_id = c.id AND f.channel = 'email') AS email_flagged, \
                 (SELECT p.phone FROM contact_phones p WHERE p.contact_id = c.id AND NOT EXISTS \
                   (SELECT 1 FROM address_flags f WHERE f.contact_id = c.id AND f.channel = 'sms' AND f.address_key = p.phone) \
                   ORDER BY p.position LIMIT 1) AS phone, \
                 EXISTS (SELECT 1 FROM address_flags f WHERE f.contact_id = c.id AND f.channel = 'sms') AS phone_flagged \
                 FROM contacts c LEFT JOIN companies co ON co.id = c.company_id WHERE c.id",
            );
            query.push_ids(chunk);
            let persistent = query.keeps_prepared(chunk.len());
            query.build_query_as().persistent(persistent).fetch_all(pool).await?
        });
        found.extend(rows);
    }
    found.sort_unstable_by_key(|r| r.id);
    Ok(found)
}

/// The contacts holding the phone number `phone` (E.164; one indexed read), each with the
/// campaign of the last text message decided for them, if any.
pub async fn holding_phone(db: &Db, phone: &str) -> StoreResult<Vec<(Uuid, Option<Uuid>)>> {
    let mut holders: Vec<(Uuid, Option<Uuid>)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT p.contact_id, (SELECT w.campaign_id FROM warrants w WHERE w.contact_id = p.contact_id \
             AND w.channel = 'sms' ORDER BY w.decided_at DESC LIMIT 1) AS campaign_id \
             FROM contact_phones p WHERE p.phone = $1 ORDER BY p.contact_id",
        )
        .bind(phone)
        .fetch_all(pool)
        .await?
    });
    holders.dedup_by_key(|(contact, _)| *contact);
    Ok(holders)
}

/// Flags `address` of `contact_id` on `channel` as bouncing, for `reason` (a flag already there
/// is kept), with the audit record of the change.
pub async fn flag_address(
    tx: &mut WriteTx,
    record: &crate::audit::AuditRecord,
    flag: &AddressFlag<'_>,
) -> StoreResult<()> {
    super::audit::append(tx, record).await?;
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO address_flags (contact_id, channel, address_key, reason, outbox_id, flagged_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (contact_id, channel, address_key) DO NOTHING",
        )
        .bind(flag.contact_id)
        .bind(flag.channel)
        // As contact_emails keeps it.
        .bind(flag.address.to_lowercase())
        .bind(flag.reason)
        .bind(flag.outbox_id)
        .bind(flag.at)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    Ok(())
}

/// An address found to bounce.
pub struct AddressFlag<'a> {
    pub contact_id: Uuid,
    pub channel: &'a str,
    pub address: &'a str,
    /// How it was learnt, with its codes (`hard_bounce:550:5.1.1`).
    pub reason: &'a str,
    /// The message that bounced.
    pub outbox_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

fn parse_kind(id: Uuid, text: &str) -> StoreResult<SubscriberKind> {
    text.parse()
        .map_err(|_| StoreError::corrupt("contacts", id, "subscriber_kind is not a known kind"))
}

/// One page of contacts in name order: one statement, outside any transaction.
pub async fn search(db: &Db, query: &ContactQuery) -> StoreResult<ContactPage> {
    let (pattern, reversed, phone) = search_patterns(query.text.as_deref());
    // The first page starts after the smallest key there is (every id is above the nil one).
    let (after_key, after_id) = match &query.after {
        Some((key, id)) => (key.clone(), *id),
        None => (String::new(), Uuid::nil()),
    };
    let sql = format!(
        "SELECT c.id, c.first_name, c.last_name, c.sort_key, c.company_id, co.name AS company_name, c.owner_id, c.active, \
           (SELECT e.email FROM contact_emails e WHERE e.contact_id = c.id ORDER BY e.position LIMIT 1) AS email, \
           (SELECT p.phone FROM contact_phones p WHERE p.contact_id = c.id ORDER BY p.position LIMIT 1) AS phone \
         {SEARCH_FROM_WHERE} \
           AND (c.sort_key, c.id) > ($5, $6) \
         ORDER BY c.sort_key, c.id LIMIT $7"
    );
    let rows: Vec<SummaryRow> = on_db!(db, pool => {
        sqlx::query_as(&sql)
        .bind(&pattern)
        .bind(&reversed)
        .bind(&phone)
        .bind(query.include_inactive)
        .bind(&after_key)
        .bind(after_id)
        .bind(query.limit + 1)
        .fetch_all(pool)
        .await?
    });
    let has_more = rows.len() as i64 > query.limit;
    let rows: Vec<SummaryRow> = rows.into_iter().take(query.limit as usize).collect();
    let next_cursor = match rows.last() {
        Some(last) if has_more => Some(cursor::encode(&last.sort_key, last.id)),
        _ => None,
    };
    Ok(ContactPage {
        items: rows
            .into_iter()
            .map(|r| ContactSummary {
                id: r.id,
                first_name: r.first_name,
                last_name: r.last_name,
                email: r.email,
                phone: r.phone,
                company_id: r.company_id,
                company_name: r.company_name,
                owner_id: r.owner_id,
                active: r.active,
            })
            .collect(),
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_put_the_last_name_first() {
        assert_eq!(sort_key(Some("Jane"), Some("Doe")), "doe jane");
        assert_eq!(sort_key(None, Some("Doe")), "doe");
        assert_eq!(sort_key(Some("Cher"), None), "cher");
    }

    #[test]
    fn phone_searches_drop_the_national_zero() {
        assert_eq!(
            phone_pattern("07400 123456").as_deref(),
            Some("%7400123456%")
        );
        assert_eq!(phone_pattern("+44 7400").as_deref(), Some("%447400%"));
        assert_eq!(phone_pattern("jane"), None);
        assert_eq!(phone_pattern("12"), None);
    }
}
