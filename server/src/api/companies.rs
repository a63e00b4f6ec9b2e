//! `/companies`: corporate subscribers. The rules are the company service's
//! (`service::companies`); these handlers extract, call and map.

use assent_shared::api::{ApiError, Company, CompanyInput, CompanyPage, FieldChange, VersionOnly};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::caller::Caller;
use super::contacts::ListParams;
use super::error::ApiResult;
use super::extract::{Json, Path, Query};
use super::AppState;
use crate::service::companies;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_companies, create_company))
        .routes(routes!(get_company, update_company))
        .routes(routes!(deactivate_company))
        .routes(routes!(company_history))
}

/// Companies in name order, a page at a time; `q` matches part of the name or of the
/// registration number (`123456` finds `00123456`).
#[utoipa::path(get, path = "/companies", tag = "companies", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = CompanyPage), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError)))]
async fn list_companies(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Reply<CompanyPage>> {
    Ok(Reply(
        companies::search(&state.db, &actor, &params.search()).await?,
    ))
}

/// Creates a company owned by the caller.
#[utoipa::path(post, path = "/companies", tag = "companies", security(("bearer" = [])), request_body = CompanyInput,
    responses((status = 201, body = Company), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn create_company(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(input): Json<CompanyInput>,
) -> ApiResult<(StatusCode, Reply<Company>)> {
    let company = companies::create(&state.db, &actor, &input).await?;
    Ok((StatusCode::CREATED, Reply(company)))
}

/// One company.
#[utoipa::path(get, path = "/companies/{id}", tag = "companies", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The company")),
    responses((status = 200, body = Company), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn get_company(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Company>> {
    Ok(Reply(companies::get(&state.db, &actor, id).await?))
}

/// Replaces a company's fields, against the `version` the change was made on (409 if stale).
#[utoipa::path(put, path = "/companies/{id}", tag = "companies", security(("bearer" = [])), request_body = CompanyInput,
    params(("id" = Uuid, Path, description = "The company")),
    responses((status = 200, body = Company), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn update_company(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(input): Json<CompanyInput>,
) -> ApiResult<Reply<Company>> {
    Ok(Reply(
        companies::update(&state.db, &actor, id, &input).await?,
    ))
}

/// Deactivates a company.
#[utoipa::path(post, path = "/companies/{id}/deactivate", tag = "companies", security(("bearer" = [])), request_body = VersionOnly,
    params(("id" = Uuid, Path, description = "The company")),
    responses((status = 200, body = Company), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn deactivate_company(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(request): Json<VersionOnly>,
) -> ApiResult<Reply<Company>> {
    Ok(Reply(
        companies::deactivate(&state.db, &actor, id, request.version).await?,
    ))
}

/// Every change of a company's fields.
#[utoipa::path(get, path = "/companies/{id}/history", tag = "companies", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The company")),
    responses((status = 200, body = Vec<FieldChange>), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn company_history(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Vec<FieldChange>>> {
    Ok(Reply(companies::history(&state.db, &actor, id).await?))
}
