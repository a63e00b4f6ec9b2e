//! The `signup_forms` and `signups` tables: the forms the organisation publishes, and each
//! request to confirm a sign-up (its confirmation message, when it expires, when it was
//! confirmed). The consents themselves are in the ledger.

use assent_shared::api::EventSource;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{to_json, Db, IdList, StoreError, StoreResult, Tx, WriteTx};
use crate::{on_db, on_tx};

/// A sign-up form as stored, with its wording.
#[derive(Debug, Clone)]
pub struct FormRow {
    pub id: Uuid,
    pub name: String,
    pub wording_id: Uuid,
    pub wording_version: i64,
    pub wording: String,
    pub topics: Vec<String>,
    pub sites: Vec<String>,
    pub campaign_id: Uuid,
    /// The standing campaign of its consent receipts (none for a form published before them).
    pub receipt_campaign_id: Option<Uuid>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct FormColumns {
    id: Uuid,
    name: String,
    wording_id: Uuid,
    wording_version: i64,
    wording: String,
    topics: String,
    sites: String,
    campaign_id: Uuid,
    receipt_campaign_id: Option<Uuid>,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

impl TryFrom<FormColumns> for FormRow {
    type Error = StoreError;
    fn try_from(row: FormColumns) -> StoreResult<FormRow> {
        let list = |text: &str, what| {
            serde_json::from_str::<Vec<String>>(text)
                .map_err(|_| StoreError::corrupt("signup_forms", row.id, what))
        };
        Ok(FormRow {
            topics: list(&row.topics, "the topics do not parse")?,
            sites: list(&row.sites, "the sites do not parse")?,
            id: row.id,
            name: row.name,
            wording_id: row.wording_id,
            wording_version: row.wording_version,
            wording: row.wording,
            campaign_id: row.campaign_id,
            receipt_campaign_id: row.receipt_campaign_id,
            created_by: row.created_by,
            created_at: row.created_at,
            retired_at: row.retired_at,
        })
    }
}

const FORM_SELECT: &str = "SELECT f.id, f.name, f.wording_id, w.version AS wording_version, \
     w.text AS wording, f.topics, f.sites, f.campaign_id, f.receipt_campaign_id, f.created_by, f.created_at, f.retired_at \
     FROM signup_forms f JOIN consent_wordings w ON w.id = f.wording_id";

pub async fn insert_form(tx: &mut WriteTx, form: &FormRow) -> StoreResult<()> {
    let topics = to_json(&form.topics, "a form's topics")?;
    let sites = to_json(&form.sites, "a form's sites")?;
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO signup_forms (id, name, wording_id, topics, sites, campaign_id, created_by, created_at, retired_at, receipt_campaign_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(form.id)
        .bind(&form.name)
        .bind(form.wording_id)
        .bind(&topics)
        .bind(&sites)
        .bind(form.campaign_id)
        .bind(form.created_by)
        .bind(form.created_at)
        .bind(form.retired_at)
        .bind(form.receipt_campaign_id)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    Ok(())
}

pub async fn form(db: &Db, id: Uuid) -> StoreResult<Option<FormRow>> {
    let sql = format!("{FORM_SELECT} WHERE f.id = $1");
    let row: Option<FormColumns> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
    });
    row.map(TryInto::try_into).transpose()
}

/// The form whose standing campaign (of confirmations or of receipts) is `campaign_id`.
pub async fn form_by_campaign(db: &Db, campaign_id: Uuid) -> StoreResult<Option<FormRow>> {
    let sql = format!("{FORM_SELECT} WHERE f.campaign_id = $1 OR f.receipt_campaign_id = $1");
    let row: Option<FormColumns> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(campaign_id).fetch_optional(pool).await?
    });
    row.map(TryInto::try_into).transpose()
}

/// Every form, newest first.
pub async fn forms(db: &Db) -> StoreResult<Vec<FormRow>> {
    let sql = format!("{FORM_SELECT} ORDER BY f.created_at DESC, f.id DESC");
    let rows: Vec<FormColumns> = on_db!(db, pool => {
        sqlx::query_as(&sql).fetch_all(pool).await?
    });
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Retires a form at `at`; false when it was retired already.
pub async fn retire(tx: &mut WriteTx, id: Uuid, at: DateTime<Utc>) -> StoreResult<bool> {
    let written = on_tx!(tx, conn => {
        sqlx::query("UPDATE signup_forms SET retired_at = $2 WHERE id = $1 AND retired_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(written == 1)
}

/// One request to confirm a sign-up.
#[derive(Debug, Clone)]
pub struct Signup {
    pub id: Uuid,
    pub form_id: Uuid,
    pub contact_id: Uuid,
    pub address: String,
    pub address_key: String,
    pub topics: Vec<String>,
    /// Where the form was posted from: the source of its `consent_given` events.
    pub source: EventSource,
    /// Whether the sign-up made its contact (inactive until it is confirmed).
    pub created_contact: bool,
    /// Other active contacts that held the address when it signed up.
    pub others: Vec<Uuid>,
    /// The confirmation message: its token is the link's.
    pub outbox_id: Uuid,
    /// When the form was posted: the time of its consents.
    pub created_at: DateTime<Utc>,
    /// When its confirmation was queued.
    pub mailed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The consent receipt sent once it was confirmed.
    pub receipt_outbox_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct SignupColumns {
    id: Uuid,
    form_id: Uuid,
    contact_id: Uuid,
    address: String,
    address_key: String,
    topics: String,
    source: String,
    created_contact: bool,
    others: String,
    outbox_id: Uuid,
    created_at: DateTime<Utc>,
    mailed_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    receipt_outbox_id: Option<Uuid>,
}

impl TryFrom<SignupColumns> for Signup {
    type Error = StoreError;
    fn try_from(row: SignupColumns) -> StoreResult<Signup> {
        let corrupt = |what| StoreError::corrupt("signups", row.id, what);
        Ok(Signup {
            topics: serde_json::from_str(&row.topics)
                .map_err(|_| corrupt("the topics do not parse"))?,
            others: serde_json::from_str(&row.others)
                .map_err(|_| corrupt("the other contacts do not parse"))?,
            source: serde_json::from_str(&row.source)
                .map_err(|_| corrupt("the source does not parse"))?,
            created_contact: row.created_contact,
            id: row.id,
            form_id: row.form_id,
            contact_id: row.contact_id,
            address: row.address,
            address_key: row.address_key,
            outbox_id: row.outbox_id,
            created_at: row.created_at,
            mailed_at: row.mailed_at,
            expires_at: row.expires_at,
            confirmed_at: row.confirmed_at,
            receipt_outbox_id: row.receipt_outbox_id,
        })
    }
}

const SIGNUP_COLUMNS: &str = "id, form_id, contact_id, address, address_key, topics, source, created_contact, others, \
                              outbox_id, created_at, mailed_at, expires_at, confirmed_at, receipt_outbox_id";

pub async fn insert(tx: &mut WriteTx, signup: &Signup) -> StoreResult<()> {
    let topics = to_json(&signup.topics, "a sign-up's topics")?;
    let others = to_json(&signup.others, "a sign-up's other contacts")?;
    let source = to_json(&signup.source, "a sign-up's source")?;
    let sql = format!(
        "INSERT INTO signups ({SIGNUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    on_tx!(tx, conn => {
        sqlx::query(&sql)
            .bind(signup.id)
            .bind(signup.form_id)
            .bind(signup.contact_id)
            .bind(&signup.address)
            .bind(&signup.address_key)
            .bind(&topics)
            .bind(&source)
            .bind(signup.created_contact)
            .bind(&others)
            .bind(signup.outbox_id)
            .bind(signup.created_at)
            .bind(signup.mailed_at)
            .bind(signup.expires_at)
            .bind(signup.confirmed_at)
            .bind(signup.receipt_outbox_id)
            .execute(conn)
            .await
            .map(|_| ())?
    });
    Ok(())
}

/// Whether `address_key` has a sign-up (through any form) whose confirmation was queued at or
/// after `since` and that is not confirmed, read in the writing transaction (SQLite's one writer, or PostgreSQL's lock on the
/// address taken by [`lock_address`]).
pub async fn pending_since(
    tx: &mut WriteTx,
    address_key: &str,
    since: DateTime<Utc>,
) -> StoreResult<bool> {
    let found: Option<Uuid> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "SELECT id FROM signups WHERE address_key = $1 AND mailed_at >= $2 AND confirmed_at IS NULL LIMIT 1",
        )
        .bind(address_key)
        .bind(since)
        .fetch_optional(conn)
        .await?
    });
    Ok(found.is_some())
}

/// Serialises the sign-ups of one address until the transaction ends (PostgreSQL: a
/// transaction-scoped advisory lock on the address key's hash; SQLite's one writer already
/// does), so that two at once cannot both send a confirmation.
pub async fn lock_address(tx: &mut WriteTx, address_key: &str) -> StoreResult<()> {
    if let Tx::Postgres(conn) = &mut **tx {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7205))")
            .bind(address_key)
            .execute(&mut **conn)
            .await?;
    }
    Ok(())
}

/// The request whose confirmation message is `outbox_id`.
pub async fn by_message(tx: &mut Tx, outbox_id: Uuid) -> StoreResult<Option<Signup>> {
    let sql = format!("SELECT {SIGNUP_COLUMNS} FROM signups WHERE outbox_id = $1");
    let row: Option<SignupColumns> = on_tx!(tx, conn => {
        sqlx::query_as(&sql).bind(outbox_id).fetch_optional(conn).await?
    });
    row.map(TryInto::try_into).transpose()
}

/// The sign-ups that these messages (confirmations or receipts, by outbox id) answer.
pub async fn for_messages(db: &Db, outbox_ids: &[Uuid]) -> StoreResult<Vec<Signup>> {
    let mut found = Vec::with_capacity(outbox_ids.len());
    for chunk in outbox_ids.chunks(500) {
        let rows: Vec<SignupColumns> = on_db!(db, pool => {
            let mut query = sqlx::QueryBuilder::new(format!("SELECT {SIGNUP_COLUMNS} FROM signups WHERE outbox_id"));
            query.push_ids(chunk);
            query.push(" OR receipt_outbox_id");
            query.push_ids(chunk);
            query.build_query_as().fetch_all(pool).await?
        });
        for row in rows {
            found.push(row.try_into()?);
        }
    }
    Ok(found)
}

/// Marks a request confirmed at `at`, with the receipt it is sent (if any); false when it was
/// confirmed already.
pub async fn confirm(
    tx: &mut WriteTx,
    id: Uuid,
    at: DateTime<Utc>,
    receipt_outbox_id: Option<Uuid>,
) -> StoreResult<bool> {
    let written = on_tx!(tx, conn => {
        sqlx::query("UPDATE signups SET confirmed_at = $2, receipt_outbox_id = $3 WHERE id = $1 AND confirmed_at IS NULL")
            .bind(id)
            .bind(at)
            .bind(receipt_outbox_id)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(written == 1)
}

/// The active contacts holding the email address `address_key`, newest first.
pub async fn contacts_holding(tx: &mut WriteTx, address_key: &str) -> StoreResult<Vec<Uuid>> {
    let mut ids: Vec<Uuid> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "SELECT c.id FROM contacts c JOIN contact_emails e ON e.contact_id = c.id \
             WHERE e.email_key = $1 AND c.active ORDER BY c.created_at DESC, c.id DESC",
        )
        .bind(address_key)
        .fetch_all(conn)
        .await?
    });
    ids.dedup();
    Ok(ids)
}

/// The contact an unconfirmed sign-up of `address_key` made, still waiting (inactive), if any:
/// a second sign-up of the address is its, not a contact of its own.
pub async fn pending_contact(tx: &mut WriteTx, address_key: &str) -> StoreResult<Option<Uuid>> {
    Ok(on_tx!(tx, conn => {
        sqlx::query_scalar(
            "SELECT s.contact_id FROM signups s JOIN contacts c ON c.id = s.contact_id \
             WHERE s.address_key = $1 AND s.created_contact AND s.confirmed_at IS NULL AND NOT c.active AND c.version = 1 \
             ORDER BY s.created_at DESC LIMIT 1",
        )
        .bind(address_key)
        .fetch_optional(conn)
        .await?
    }))
}

/// Which of the email address keys `keys` are flagged as bouncing (for any contact).
pub async fn bouncing(db: &Db, keys: &[String]) -> StoreResult<Vec<String>> {
    let mut found = Vec::new();
    for chunk in keys.chunks(500) {
        let rows: Vec<String> = on_db!(db, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT DISTINCT address_key FROM address_flags WHERE channel = 'email' AND address_key IN (",
            );
            let mut list = query.separated(", ");
            for key in chunk {
                list.push_bind(key.as_str());
            }
            query.push(")");
            query.build_query_scalar().fetch_all(pool).await?
        });
        found.extend(rows);
    }
    Ok(found)
}

/// The contact holding the email address `address_key`, active or not (an active one first,
/// then the newest): whose data a request about the address is about.
pub async fn any_contact_holding(tx: &mut WriteTx, address_key: &str) -> StoreResult<Option<Uuid>> {
    Ok(on_tx!(tx, conn => {
        sqlx::query_scalar(
            "SELECT c.id FROM contacts c JOIN contact_emails e ON e.contact_id = c.id \
             WHERE e.email_key = $1 ORDER BY c.active DESC, c.created_at DESC, c.id DESC LIMIT 1",
        )
        .bind(address_key)
        .fetch_optional(conn)
        .await?
    }))
}
