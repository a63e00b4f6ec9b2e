//! Contacts: the people in the CRM. Every read and change is audited; every change keeps its
//! history, field by field, and is made against the version the caller saw.

use assent_shared::api::{Contact, ContactInput, ContactPage, FieldChange};
use assent_shared::validate::ValidContact;
use uuid::Uuid;

use super::access::{self, CONTACT_ROLES};
use super::{search_query, Actor, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::store::contacts::{ContactChange, ContactQuery};
use crate::store::history::RecordKind;
use crate::store::{self, Db, Tx, Updated};

/// A search of the contacts: text, paging, and whether deactivated ones are wanted.
#[derive(Debug, Clone, Default)]
pub struct ContactSearch<'a> {
    /// Part of a name, an email address, a phone number or a company name.
    pub text: Option<&'a str>,
    pub include_inactive: bool,
    /// The `next_cursor` of the previous page.
    pub after: Option<&'a str>,
    pub limit: Option<i64>,
}

/// One page of contacts in name order. Every contact listed is audited as read.
pub async fn search(
    db: &Db,
    actor: &Actor,
    search: &ContactSearch<'_>,
) -> ServiceResult<ContactPage> {
    access::require_any(db, actor, CONTACT_ROLES, None).await?;
    let (after, limit) = super::page(search.after, search.limit)?;
    let query = ContactQuery {
        text: search_query(search.text)?,
        include_inactive: search.include_inactive,
        after,
        limit,
    };
    let page = store::contacts::search(db, &query).await?;
    let record = actor.audit_each(
        Action::ContactListed,
        ObjectKind::Contact,
        page.items.iter().map(|item| item.id),
    );
    store::audit::record_read(db, record).await?;
    Ok(page)
}

/// Checks, inside the transaction that links them, that a company exists.
async fn check_company(tx: &mut Tx, company_id: Option<Uuid>) -> ServiceResult<()> {
    if let Some(id) = company_id {
        if store::companies::get(tx, id).await?.is_none() {
            return Err(ServiceError::field("company_id", "is not a known company"));
        }
    }
    Ok(())
}

/// Checks, inside the transaction that names them, that an owner is an active user.
async fn check_owner(tx: &mut Tx, owner_id: Option<Uuid>) -> ServiceResult<()> {
    if let Some(id) = owner_id {
        match store::users::get(tx, id).await? {
            Some((stored, _)) if stored.user.active => {}
            _ => return Err(ServiceError::field("owner_id", "is not an active user")),
        }
    }
    Ok(())
}

/// Creates a contact. A member of staff owns what they create unless a manager names another
/// owner; a contact created by anyone else (a sign-up, an import job) has no owner until a
/// manager gives it one.
pub async fn create(db: &Db, actor: &Actor, input: &ContactInput) -> ServiceResult<Contact> {
    access::require_any(db, actor, CONTACT_ROLES, None).await?;
    let valid = input.validate()?;
    let owner_id = valid.owner_id.or(actor.user_id());
    if owner_id != actor.user_id() && !access::may_assign_owner(actor) {
        let message = "Only a manager may create a contact for another owner.".into();
        return Err(access::refuse(db, actor, None, message).await);
    }
    let id = Uuid::now_v7();
    let mut tx = db.begin().await?;
    check_owner(&mut tx, owner_id).await?;
    check_company(&mut tx, valid.company_id).await?;
    let contact = store::contacts::insert(
        &mut tx,
        id,
        &valid,
        owner_id,
        actor.reference(),
        clock::now(),
    )
    .await?;
    let record = actor
        .audit(Action::ContactCreated)
        .on(ObjectKind::Contact, id);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(contact)
}

/// Loads a contact inside `tx`, or refuses with 404.
pub(super) async fn load(tx: &mut Tx, id: Uuid) -> ServiceResult<Contact> {
    store::contacts::get(tx, id)
        .await?
        .ok_or(ServiceError::NotFound("contact"))
}

/// One contact, audited as read.
pub async fn get(db: &Db, actor: &Actor, id: Uuid) -> ServiceResult<Contact> {
    let object = Some((ObjectKind::Contact, id));
    access::require_any(db, actor, CONTACT_ROLES, object).await?;
    let contact = store::contacts::read(db, id)
        .await?
        .ok_or(ServiceError::NotFound("contact"))?;
    store::audit::record_read(
        db,
        actor.audit(Action::ContactRead).on(ObjectKind::Contact, id),
    )
    .await?;
    Ok(contact)
}

/// Replaces a contact's fields. `input.version` must be the version the change was made against:
/// if someone changed the contact since, the answer is a stale-version refusal and nothing is
/// written.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    input: &ContactInput,
) -> ServiceResult<Contact> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Contact, id))).await?;
    let valid = input.validate()?;
    let version = input.version.ok_or_else(|| {
        ServiceError::field("version", "is required: send the version you edited")
    })?;
    change(db, actor, id, version, Some(&valid), Action::ContactUpdated).await
}

/// Deactivates a contact: it leaves lists and audiences but keeps its history and ledger.
pub async fn deactivate(db: &Db, actor: &Actor, id: Uuid, version: i64) -> ServiceResult<Contact> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Contact, id))).await?;
    change(db, actor, id, version, None, Action::ContactDeactivated).await
}

/// Applies a replacement (`Some`) or a deactivation (`None`) after checking the actor's rights
/// over the contact, its new owner and its company, all inside one transaction.
async fn change(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    version: i64,
    valid: Option<&ValidContact>,
    action: Action,
) -> ServiceResult<Contact> {
    let object = Some((ObjectKind::Contact, id));
    let mut tx = db.begin().await?;
    let current = load(&mut tx, id).await?;
    if !access::may_edit(actor, current.owner_id) {
        let message = "You may only change the contacts you own.".into();
        return Err(access::refuse_in(tx, actor, object, message).await?);
    }
    let change = match valid {
        Some(valid) => {
            let owner_id = valid.owner_id.or(current.owner_id);
            if owner_id != current.owner_id {
                if !access::may_assign_owner(actor) {
                    let message = "Only a manager may give a contact to another owner.".into();
                    return Err(access::refuse_in(tx, actor, object, message).await?);
                }
                check_owner(&mut tx, owner_id).await?;
            }
            check_company(&mut tx, valid.company_id).await?;
            ContactChange::Replace(valid, owner_id)
        }
        None => ContactChange::Active(false),
    };
    let now = clock::now();
    match store::contacts::update(&mut tx, &current, version, change, actor.reference(), now)
        .await?
    {
        Updated::Saved(contact) => {
            store::audit::append(&mut tx, &actor.audit(action).on(ObjectKind::Contact, id)).await?;
            tx.commit().await?;
            Ok(contact)
        }
        Updated::Stale(stale) => Err(access::stale(tx, stale).await?),
    }
}

/// Every change of a contact's fields: old value, new value, who and when; returned once
/// the read's audit record is committed.
pub async fn history(db: &Db, actor: &Actor, id: Uuid) -> ServiceResult<Vec<FieldChange>> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Contact, id))).await?;
    let mut tx = db.begin_read().await?;
    load(&mut tx, id).await?;
    let record = actor
        .audit(Action::ContactHistoryRead)
        .on(ObjectKind::Contact, id);
    let history = store::history::for_record(&mut tx, RecordKind::Contact, id).await?;
    tx.commit().await?;
    store::audit::record_read(db, record).await?;
    Ok(history)
}
