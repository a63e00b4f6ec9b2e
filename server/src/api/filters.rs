//! Saved contact filters: a named search that names an audience, for decisions now and for
//! campaigns later.

use assent_shared::api::{NewSavedFilter, SavedFilter};
use assent_shared::domain::parse_text;
use assent_shared::validate::{FieldErrors, NAME_MAX};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use uuid::Uuid;

use super::contacts::CONTACT_ROLES;
use super::error::{ApiResult, Error};
use super::extract::Json;
use super::AppState;
use crate::auth::Caller;
use crate::store;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_filters, save_filter))
}

/// Every saved filter, by name.
#[utoipa::path(get, path = "/filters", tag = "filters", security(("bearer" = [])),
    responses((status = 200, body = Vec<SavedFilter>), (status = 403, body = assent_shared::api::ApiError)))]
async fn list_filters(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Reply<Vec<SavedFilter>>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    Ok(Reply(store::filters::list(&state.db).await?))
}

/// Saves a named search. Names are unique, ignoring case.
#[utoipa::path(post, path = "/filters", tag = "filters", security(("bearer" = [])), request_body = NewSavedFilter,
    responses((status = 201, body = SavedFilter), (status = 403, body = assent_shared::api::ApiError),
              (status = 409, body = assent_shared::api::ApiError), (status = 422, body = assent_shared::api::ApiError)))]
async fn save_filter(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewSavedFilter>,
) -> ApiResult<(StatusCode, Reply<SavedFilter>)> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let mut errors = FieldErrors::default();
    let name = errors.check("name", parse_text(&new.name, NAME_MAX));
    let search = if new.search.trim().is_empty() {
        Some(String::new())
    } else {
        errors.check("search", parse_text(&new.search, NAME_MAX))
    };
    let (Some(name), Some(search)) = (name, search) else {
        return Err(errors.into());
    };
    let filter = SavedFilter {
        id: Uuid::now_v7(),
        name,
        search,
        created_by: caller.user.id,
        created_at: store::now(),
    };
    let mut tx = state.db.begin().await?;
    store::filters::insert(&mut tx, &filter)
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                Error::Duplicate {
                    field: "name",
                    message: "A saved filter with this name already exists.".into(),
                }
            } else {
                e.into()
            }
        })?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Reply(filter)))
}
