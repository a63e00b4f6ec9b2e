//! `/filters`: saved contact filters, named searches that name audiences (`service::filters`).

use assent_shared::api::{ApiError, NewSavedFilter, SavedFilter};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::caller::Caller;
use super::error::ApiResult;
use super::extract::Json;
use super::AppState;
use crate::service::filters;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_filters, save_filter))
}

/// Every saved filter, by name.
#[utoipa::path(get, path = "/filters", tag = "filters", security(("bearer" = [])),
    responses((status = 200, body = Vec<SavedFilter>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn list_filters(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<Vec<SavedFilter>>> {
    Ok(Reply(filters::list(&state.db, &actor).await?))
}

/// Saves a named search. Names are unique, ignoring case.
#[utoipa::path(post, path = "/filters", tag = "filters", security(("bearer" = [])), request_body = NewSavedFilter,
    responses((status = 201, body = SavedFilter), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 409, body = ApiError), (status = 413, body = ApiError),
              (status = 422, body = ApiError)))]
async fn save_filter(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(new): Json<NewSavedFilter>,
) -> ApiResult<(StatusCode, Reply<SavedFilter>)> {
    let filter = filters::save(&state.db, &actor, &new).await?;
    Ok((StatusCode::CREATED, Reply(filter)))
}
