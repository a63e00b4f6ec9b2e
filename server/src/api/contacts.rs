//! Contacts: the people in the CRM. Sales staff edit the contacts they own; managers and the data
//! protection lead edit any. Every read and change is audited; every change keeps its history.

use assent_shared::api::{
    Contact, ContactInput, ContactPage, FieldChange, StaleVersion, VersionOnly,
};
use assent_shared::domain::Role;
use assent_shared::validate::ValidContact;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::{ApiResult, Error};
use super::extract::{Json, Path, Query};
use super::{page_size, AppState};
use crate::audit::{Action, ObjectKind};
use crate::auth::Caller;
use crate::store::contacts::{ContactChange, ContactQuery};
use crate::store::history::RecordKind;
use crate::store::{self, cursor, StaleRecord, Tx, Updated};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(get_contact, update_contact))
        .routes(routes!(deactivate_contact))
        .routes(routes!(contact_history))
}

/// Who works with contacts at all.
pub const CONTACT_ROLES: &[Role] = &[Role::Sales, Role::Manager, Role::Dpo];

/// Whether `caller` may change a record owned by `owner_id`.
pub fn may_edit(caller: &Caller, owner_id: Uuid) -> bool {
    caller.has(Role::Manager)
        || caller.has(Role::Dpo)
        || (caller.has(Role::Sales) && owner_id == caller.user.id)
}

/// Paging and search parameters of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Free text: part of a name, an email address, a phone number or a company name.
    pub q: Option<String>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// Include deactivated records.
    pub include_inactive: Option<bool>,
}

impl ListParams {
    pub fn page(&self) -> ApiResult<(Option<(String, Uuid)>, i64)> {
        let limit = page_size(self.limit)?;
        let after = match &self.after {
            Some(text) => Some(cursor::decode(text).ok_or_else(|| {
                Error::BadRequest("after is not a cursor from a previous page".into())
            })?),
            None => None,
        };
        Ok((after, limit))
    }
}

/// Checks that a contact's company exists, inside the transaction that links it.
async fn check_company(tx: &mut Tx, company_id: Option<Uuid>) -> ApiResult<()> {
    if let Some(id) = company_id {
        if store::companies::get(tx, id).await?.is_none() {
            return Err(Error::field("company_id", "is not a known company"));
        }
    }
    Ok(())
}

/// Searches contacts in name order, a page at a time.
#[utoipa::path(get, path = "/contacts", tag = "contacts", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = ContactPage), (status = 400, body = assent_shared::api::ApiError),
              (status = 403, body = assent_shared::api::ApiError)))]
async fn list_contacts(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Reply<ContactPage>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let (after, limit) = params.page()?;
    let query = ContactQuery {
        text: params.q.clone(),
        include_inactive: params.include_inactive.unwrap_or(false),
        after,
        limit,
    };
    let mut tx = state.db.begin().await?;
    let page = store::contacts::search(&mut tx, &query).await?;
    for item in &page.items {
        store::audit::append(
            &mut tx,
            &caller
                .audit(Action::ContactListed)
                .on(ObjectKind::Contact, item.id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Reply(page))
}

/// Creates a contact, owned by the caller (a manager may name another owner).
#[utoipa::path(post, path = "/contacts", tag = "contacts", security(("bearer" = [])), request_body = ContactInput,
    responses((status = 201, body = Contact), (status = 403, body = assent_shared::api::ApiError),
              (status = 422, body = assent_shared::api::ApiError)))]
async fn create_contact(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<ContactInput>,
) -> ApiResult<(StatusCode, Reply<Contact>)> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let valid = input.validate()?;
    let owner_id = valid.owner_id.unwrap_or(caller.user.id);
    if owner_id != caller.user.id && !caller.has(Role::Manager) {
        return Err(caller
            .deny(
                &state,
                None,
                "Only a manager may create a contact for another owner.".into(),
            )
            .await);
    }
    check_owner(&state, owner_id).await?;
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    check_company(&mut tx, valid.company_id).await?;
    let contact =
        store::contacts::insert(&mut tx, id, &valid, owner_id, caller.user.id, store::now())
            .await?;
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::ContactCreated)
            .on(ObjectKind::Contact, id),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Reply(contact)))
}

/// An owner must be an active user.
pub async fn check_owner(state: &AppState, owner_id: Uuid) -> ApiResult<()> {
    match store::users::find(&state.db, owner_id).await? {
        Some(stored) if stored.user.active => Ok(()),
        _ => Err(Error::field("owner_id", "is not an active user")),
    }
}

/// Loads a contact inside `tx` or answers 404.
async fn load(tx: &mut Tx, id: Uuid) -> ApiResult<Contact> {
    store::contacts::get(tx, id)
        .await?
        .ok_or_else(|| Error::not_found("contact"))
}

/// One contact.
#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Contact), (status = 403, body = assent_shared::api::ApiError), (status = 404, body = assent_shared::api::ApiError)))]
async fn get_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Contact>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let mut tx = state.db.begin().await?;
    let contact = load(&mut tx, id).await?;
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::ContactRead)
            .on(ObjectKind::Contact, id),
    )
    .await?;
    tx.commit().await?;
    Ok(Reply(contact))
}

/// The 409 for an update refused because `stale` is newer than the version it was made against:
/// who changed the record (by name), when, and its version now.
pub(super) async fn stale_error(db: &store::Db, stale: StaleRecord) -> ApiResult<Error> {
    let name = store::users::find(db, stale.updated_by)
        .await?
        .ok_or_else(|| {
            store::StoreError::Corrupt("a record names a user who does not exist".into())
        })?
        .user
        .display_name;
    Ok(Error::Stale {
        message: format!(
            "This record was changed by {name} at {} (it is now version {}). Reload it and make your change again.",
            stale.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
            stale.version
        ),
        conflict: StaleVersion {
            current_version: stale.version,
            updated_by: stale.updated_by,
            updated_by_name: name,
            updated_at: stale.updated_at,
        },
    })
}

/// Replaces a contact's fields. `version` must be the version the change was made against: if
/// someone changed the contact since, the answer is 409 and nothing is written.
#[utoipa::path(put, path = "/contacts/{id}", tag = "contacts", security(("bearer" = [])), request_body = ContactInput,
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Contact), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError), (status = 409, body = assent_shared::api::ApiError),
              (status = 422, body = assent_shared::api::ApiError)))]
async fn update_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(input): Json<ContactInput>,
) -> ApiResult<Reply<Contact>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let valid = input.validate()?;
    let version = input
        .version
        .ok_or_else(|| Error::field("version", "is required: send the version you edited"))?;
    change(
        &state,
        &caller,
        id,
        version,
        Some(&valid),
        Action::ContactUpdated,
    )
    .await
}

/// Applies a replacement (`Some`) or a deactivation (`None`) after checking the caller's rights
/// over the contact, its new owner and its company.
async fn change(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    version: i64,
    valid: Option<&ValidContact>,
    action: Action,
) -> ApiResult<Reply<Contact>> {
    let mut tx = state.db.begin().await?;
    let current = load(&mut tx, id).await?;
    let object = Some((ObjectKind::Contact, id));
    if !may_edit(caller, current.owner_id) {
        drop(tx);
        return Err(caller
            .deny(
                state,
                object,
                "You may only change the contacts you own.".into(),
            )
            .await);
    }
    let change = match valid {
        Some(valid) => {
            let owner_id = valid.owner_id.unwrap_or(current.owner_id);
            if owner_id != current.owner_id {
                if !caller.has(Role::Manager) {
                    drop(tx);
                    let message = "Only a manager may give a contact to another owner.".into();
                    return Err(caller.deny(state, object, message).await);
                }
                check_owner(state, owner_id).await?;
            }
            check_company(&mut tx, valid.company_id).await?;
            ContactChange::Replace(valid, owner_id)
        }
        None => ContactChange::Deactivate,
    };
    match store::contacts::update(
        &mut tx,
        &current,
        version,
        change,
        caller.user.id,
        store::now(),
    )
    .await?
    {
        Updated::Saved(contact) => {
            store::audit::append(&mut tx, &caller.audit(action).on(ObjectKind::Contact, id))
                .await?;
            tx.commit().await?;
            Ok(Reply(contact))
        }
        Updated::Stale(stale) => {
            // Nothing was written; the connection goes back before the name is looked up.
            drop(tx);
            Err(stale_error(&state.db, stale).await?)
        }
    }
}

/// Deactivates a contact: it leaves lists (unless asked for) but keeps its history and ledger.
#[utoipa::path(post, path = "/contacts/{id}/deactivate", tag = "contacts", security(("bearer" = [])), request_body = VersionOnly,
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Contact), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError), (status = 409, body = assent_shared::api::ApiError)))]
async fn deactivate_contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(request): Json<VersionOnly>,
) -> ApiResult<Reply<Contact>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    change(
        &state,
        &caller,
        id,
        request.version,
        None,
        Action::ContactDeactivated,
    )
    .await
}

/// Every change of a contact's fields: old value, new value, who and when.
#[utoipa::path(get, path = "/contacts/{id}/history", tag = "contacts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Vec<FieldChange>), (status = 403, body = assent_shared::api::ApiError), (status = 404, body = assent_shared::api::ApiError)))]
async fn contact_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Vec<FieldChange>>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let mut tx = state.db.begin().await?;
    load(&mut tx, id).await?;
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::ContactHistoryRead)
            .on(ObjectKind::Contact, id),
    )
    .await?;
    tx.commit().await?;
    Ok(Reply(
        store::history::for_record(&state.db, RecordKind::Contact, id).await?,
    ))
}
