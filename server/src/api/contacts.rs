//! `/contacts`: the people in the CRM. The rules are the contact service's
//! (`service::contacts`); these handlers extract, call and map.

use assent_shared::api::{ApiError, Contact, ContactInput, ContactPage, FieldChange, VersionOnly};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::caller::Caller;
use super::error::ApiResult;
use super::extract::{Json, Path, Query};
use super::AppState;
use crate::service::contacts::{self, ContactSearch};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(get_contact, update_contact))
        .routes(routes!(deactivate_contact))
        .routes(routes!(contact_history))
}

/// Paging and search parameters of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Free text: part of a name, an email address, a phone number or a company name (for
    /// companies: part of the name or of the registration number). No control characters.
    #[param(value_type = Option<assent_shared::schema::OptionalName>)]
    pub q: Option<String>,
    /// The `next_cursor` of the previous page (blank: the first page); anything else is 400.
    pub after: Option<String>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Include deactivated records.
    pub include_inactive: Option<bool>,
}

impl ListParams {
    pub fn search(&self) -> ContactSearch<'_> {
        ContactSearch {
            text: self.q.as_deref(),
            include_inactive: self.include_inactive.unwrap_or(false),
            after: self.after.as_deref(),
            limit: self.limit,
        }
    }
}

/// Searches contacts in name order, a page at a time.
#[utoipa::path(get, path = "/contacts", tag = "contacts", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = ContactPage), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError)))]
async fn list_contacts(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Reply<ContactPage>> {
    Ok(Reply(
        contacts::search(&state.db, &actor, &params.search()).await?,
    ))
}

/// Creates a contact, owned by the caller (a manager may name another owner).
#[utoipa::path(post, path = "/contacts", tag = "contacts", security(("bearer" = [])), request_body = ContactInput,
    responses((status = 201, body = Contact), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn create_contact(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(input): Json<ContactInput>,
) -> ApiResult<(StatusCode, Reply<Contact>)> {
    let contact = contacts::create(&state.db, &actor, &input).await?;
    Ok((StatusCode::CREATED, Reply(contact)))
}

/// One contact.
#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Contact), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn get_contact(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Contact>> {
    Ok(Reply(contacts::get(&state.db, &actor, id).await?))
}

/// Replaces a contact's fields. `version` must be the version the change was made against: if
/// someone changed the contact since, the answer is 409 and nothing is written.
#[utoipa::path(put, path = "/contacts/{id}", tag = "contacts", security(("bearer" = [])), request_body = ContactInput,
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Contact), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn update_contact(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(input): Json<ContactInput>,
) -> ApiResult<Reply<Contact>> {
    Ok(Reply(
        contacts::update(&state.db, &actor, id, &input).await?,
    ))
}

/// Deactivates a contact: it leaves lists and audiences but keeps its history and ledger.
#[utoipa::path(post, path = "/contacts/{id}/deactivate", tag = "contacts", security(("bearer" = [])), request_body = VersionOnly,
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Contact), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn deactivate_contact(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(request): Json<VersionOnly>,
) -> ApiResult<Reply<Contact>> {
    Ok(Reply(
        contacts::deactivate(&state.db, &actor, id, request.version).await?,
    ))
}

/// Every change of a contact's fields: old value, new value, who and when.
#[utoipa::path(get, path = "/contacts/{id}/history", tag = "contacts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Vec<FieldChange>), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn contact_history(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Vec<FieldChange>>> {
    Ok(Reply(contacts::history(&state.db, &actor, id).await?))
}
