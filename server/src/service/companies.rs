//! Companies: corporate subscribers. The same rights as contacts: sales staff change the
//! companies they own, managers and the data protection lead any.

use assent_shared::api::{Company, CompanyInput, CompanyPage, FieldChange};
use assent_shared::validate::ValidCompany;
use uuid::Uuid;

use super::access::{self, CONTACT_ROLES};
use super::contacts::ContactSearch;
use super::{search_query, Actor, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::store::history::RecordKind;
use crate::store::{self, Db, Tx, Updated};

/// One page of companies in name order; the text matches part of the name or of the
/// registration number. Every company listed is audited as read.
pub async fn search(
    db: &Db,
    actor: &Actor,
    search: &ContactSearch<'_>,
) -> ServiceResult<CompanyPage> {
    access::require_any(db, actor, CONTACT_ROLES, None).await?;
    let (after, limit) = super::page(search.after, search.limit)?;
    let text = search_query(search.text)?;
    let mut tx = db.begin_read().await?;
    let page = store::companies::search(
        &mut tx,
        text.as_deref(),
        search.include_inactive,
        after,
        limit,
    )
    .await?;
    let record = actor.audit_each(
        Action::CompanyListed,
        ObjectKind::Company,
        page.items.iter().map(|item| item.id),
    );
    tx.commit().await?;
    store::audit::record_read(db, record).await?;
    Ok(page)
}

/// Creates a company, owned by the member of staff who creates it (nobody otherwise).
pub async fn create(db: &Db, actor: &Actor, input: &CompanyInput) -> ServiceResult<Company> {
    access::require_any(db, actor, CONTACT_ROLES, None).await?;
    let valid = input.validate()?;
    let id = Uuid::now_v7();
    let mut tx = db.begin().await?;
    let company = store::companies::insert(
        &mut tx,
        id,
        &valid,
        actor.user_id(),
        actor.reference(),
        clock::now(),
    )
    .await?;
    let record = actor
        .audit(Action::CompanyCreated)
        .on(ObjectKind::Company, id);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(company)
}

async fn load(tx: &mut Tx, id: Uuid) -> ServiceResult<Company> {
    store::companies::get(tx, id)
        .await?
        .ok_or(ServiceError::NotFound("company"))
}

/// One company, audited as read.
pub async fn get(db: &Db, actor: &Actor, id: Uuid) -> ServiceResult<Company> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Company, id))).await?;
    let mut tx = db.begin_read().await?;
    let company = load(&mut tx, id).await?;
    tx.commit().await?;
    store::audit::record_read(
        db,
        actor.audit(Action::CompanyRead).on(ObjectKind::Company, id),
    )
    .await?;
    Ok(company)
}

/// Replaces a company's fields, against the version the change was made on.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    input: &CompanyInput,
) -> ServiceResult<Company> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Company, id))).await?;
    let valid = input.validate()?;
    let version = input.version.ok_or_else(|| {
        ServiceError::field("version", "is required: send the version you edited")
    })?;
    change(db, actor, id, version, Some(&valid), Action::CompanyUpdated).await
}

/// Deactivates a company.
pub async fn deactivate(db: &Db, actor: &Actor, id: Uuid, version: i64) -> ServiceResult<Company> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Company, id))).await?;
    change(db, actor, id, version, None, Action::CompanyDeactivated).await
}

async fn change(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    version: i64,
    valid: Option<&ValidCompany>,
    action: Action,
) -> ServiceResult<Company> {
    let mut tx = db.begin().await?;
    let current = load(&mut tx, id).await?;
    if !access::may_edit(actor, current.owner_id) {
        let message = "You may only change the companies you own.".into();
        return Err(access::refuse_in(tx, actor, Some((ObjectKind::Company, id)), message).await?);
    }
    let now = clock::now();
    match store::companies::update(&mut tx, &current, version, valid, actor.reference(), now)
        .await?
    {
        Updated::Saved(company) => {
            store::audit::append(&mut tx, &actor.audit(action).on(ObjectKind::Company, id)).await?;
            tx.commit().await?;
            Ok(company)
        }
        Updated::Stale(stale) => Err(access::stale(tx, stale).await?),
    }
}

/// Every change of a company's fields, returned once the read's audit record is committed.
pub async fn history(db: &Db, actor: &Actor, id: Uuid) -> ServiceResult<Vec<FieldChange>> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Company, id))).await?;
    let mut tx = db.begin_read().await?;
    load(&mut tx, id).await?;
    let record = actor
        .audit(Action::CompanyHistoryRead)
        .on(ObjectKind::Company, id);
    let history = store::history::for_record(&mut tx, RecordKind::Company, id).await?;
    tx.commit().await?;
    store::audit::record_read(db, record).await?;
    Ok(history)
}
