//! Companies: corporate subscribers. The same rights as contacts: sales staff edit the companies
//! they own, managers and the data protection lead edit any.

use assent_shared::api::{Company, CompanyInput, CompanyPage, FieldChange, VersionOnly};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use uuid::Uuid;

use super::contacts::{may_edit, stale_error as stale, ListParams, CONTACT_ROLES};
use super::error::{ApiResult, Error};
use super::extract::{Json, Path, Query};
use super::AppState;
use crate::audit::{Action, ObjectKind};
use crate::auth::Caller;
use crate::store::history::RecordKind;
use crate::store::{self, Tx, Updated};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_companies, create_company))
        .routes(routes!(get_company, update_company))
        .routes(routes!(deactivate_company))
        .routes(routes!(company_history))
}

async fn load(tx: &mut Tx, id: Uuid) -> ApiResult<Company> {
    store::companies::get(tx, id)
        .await?
        .ok_or_else(|| Error::not_found("company"))
}

/// Companies in name order, a page at a time; `q` matches part of the name.
#[utoipa::path(get, path = "/companies", tag = "companies", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = CompanyPage), (status = 400, body = assent_shared::api::ApiError),
              (status = 403, body = assent_shared::api::ApiError)))]
async fn list_companies(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Reply<CompanyPage>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let (after, limit) = params.page()?;
    let mut tx = state.db.begin().await?;
    let page = store::companies::search(
        &mut tx,
        params.q.as_deref(),
        params.include_inactive.unwrap_or(false),
        after,
        limit,
    )
    .await?;
    for item in &page.items {
        store::audit::append(
            &mut tx,
            &caller
                .audit(Action::CompanyListed)
                .on(ObjectKind::Company, item.id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Reply(page))
}

/// Creates a company owned by the caller.
#[utoipa::path(post, path = "/companies", tag = "companies", security(("bearer" = [])), request_body = CompanyInput,
    responses((status = 201, body = Company), (status = 403, body = assent_shared::api::ApiError),
              (status = 422, body = assent_shared::api::ApiError)))]
async fn create_company(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CompanyInput>,
) -> ApiResult<(StatusCode, Reply<Company>)> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let valid = input.validate()?;
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    let company =
        store::companies::insert(&mut tx, id, &valid, caller.user.id, store::now()).await?;
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::CompanyCreated)
            .on(ObjectKind::Company, id),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Reply(company)))
}

/// One company.
#[utoipa::path(get, path = "/companies/{id}", tag = "companies", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The company")),
    responses((status = 200, body = Company), (status = 403, body = assent_shared::api::ApiError), (status = 404, body = assent_shared::api::ApiError)))]
async fn get_company(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Company>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let mut tx = state.db.begin().await?;
    let company = load(&mut tx, id).await?;
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::CompanyRead)
            .on(ObjectKind::Company, id),
    )
    .await?;
    tx.commit().await?;
    Ok(Reply(company))
}

/// Replaces a company's fields, against the `version` the change was made on (409 if stale).
#[utoipa::path(put, path = "/companies/{id}", tag = "companies", security(("bearer" = [])), request_body = CompanyInput,
    params(("id" = Uuid, Path, description = "The company")),
    responses((status = 200, body = Company), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError), (status = 409, body = assent_shared::api::ApiError),
              (status = 422, body = assent_shared::api::ApiError)))]
async fn update_company(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(input): Json<CompanyInput>,
) -> ApiResult<Reply<Company>> {
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
        Action::CompanyUpdated,
    )
    .await
}

/// Deactivates a company.
#[utoipa::path(post, path = "/companies/{id}/deactivate", tag = "companies", security(("bearer" = [])), request_body = VersionOnly,
    params(("id" = Uuid, Path, description = "The company")),
    responses((status = 200, body = Company), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError), (status = 409, body = assent_shared::api::ApiError)))]
async fn deactivate_company(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(request): Json<VersionOnly>,
) -> ApiResult<Reply<Company>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    change(
        &state,
        &caller,
        id,
        request.version,
        None,
        Action::CompanyDeactivated,
    )
    .await
}

async fn change(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    version: i64,
    valid: Option<&assent_shared::validate::ValidCompany>,
    action: Action,
) -> ApiResult<Reply<Company>> {
    let mut tx = state.db.begin().await?;
    let current = load(&mut tx, id).await?;
    if !may_edit(caller, current.owner_id) {
        drop(tx);
        return Err(caller
            .deny(
                state,
                Some((ObjectKind::Company, id)),
                "You may only change the companies you own.".into(),
            )
            .await);
    }
    match store::companies::update(
        &mut tx,
        &current,
        version,
        valid,
        caller.user.id,
        store::now(),
    )
    .await?
    {
        Updated::Saved(company) => {
            store::audit::append(&mut tx, &caller.audit(action).on(ObjectKind::Company, id))
                .await?;
            tx.commit().await?;
            Ok(Reply(company))
        }
        Updated::Stale(record) => {
            // Nothing was written; the connection goes back before the name is looked up.
            drop(tx);
            Err(stale(&state.db, record).await?)
        }
    }
}

/// Every change of a company's fields.
#[utoipa::path(get, path = "/companies/{id}/history", tag = "companies", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The company")),
    responses((status = 200, body = Vec<FieldChange>), (status = 403, body = assent_shared::api::ApiError), (status = 404, body = assent_shared::api::ApiError)))]
async fn company_history(
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
            .audit(Action::CompanyRead)
            .on(ObjectKind::Company, id),
    )
    .await?;
    tx.commit().await?;
    Ok(Reply(
        store::history::for_record(&state.db, RecordKind::Company, id).await?,
    ))
}
