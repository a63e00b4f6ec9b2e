//! `/users`: staff accounts and their roles (`service::users`).

use assent_shared::api::{ApiError, NewUser, User, UserUpdate};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::caller::Caller;
use super::error::ApiResult;
use super::extract::{Json, Path};
use super::AppState;
use crate::service::users;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create))
        .routes(routes!(get_user, update_user))
}

/// Every user (administrators only).
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn list_users(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<Vec<User>>> {
    Ok(Reply(users::list(&state.db, &actor).await?))
}

/// Creates a user with a first password (administrators only).
#[utoipa::path(post, path = "/users", tag = "users", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 409, body = ApiError), (status = 413, body = ApiError),
              (status = 422, body = ApiError)))]
async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(new): Json<NewUser>,
) -> ApiResult<(StatusCode, Reply<User>)> {
    let user = users::create(&state.db, &actor, &new).await?;
    Ok((StatusCode::CREATED, Reply(user)))
}

/// One user: administrators see anyone, others only themselves.
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, body = User), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn get_user(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<User>> {
    Ok(Reply(users::get(&state.db, &actor, id).await?))
}

/// Changes a user's name, roles or active flag (administrators only), against the `version`
/// the change was made on (409 if someone changed the user since). Deactivating a user ends
/// their access on their next request. No change may leave the organisation without an active
/// administrator, and administrators cannot remove their own admin role or deactivate
/// themselves (422).
#[utoipa::path(patch, path = "/users/{id}", tag = "users", security(("bearer" = [])), request_body = UserUpdate,
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, body = User), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn update_user(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(update): Json<UserUpdate>,
) -> ApiResult<Reply<User>> {
    Ok(Reply(users::update(&state.db, &actor, id, &update).await?))
}
