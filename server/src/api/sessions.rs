//! `/sessions` and `/me`: logging in and out, listing and revoking sessions (a stolen laptop:
//! revoke its device), and the caller's own account (`service::sessions`).

use assent_shared::api::{
    ApiError, LoginRequest, LoginResponse, PasswordChange, RevokeSessions, RevokedCount,
    SessionInfo, User,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::caller::Caller;
use super::error::ApiResult;
use super::extract::{ClientAddress, Json, Path};
use super::AppState;
use crate::service::{sessions, Actor, ServiceError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login, list_my_sessions))
        .routes(routes!(logout))
        .routes(routes!(revoke_session))
        .routes(routes!(revoke_sessions))
        .routes(routes!(list_user_sessions))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

/// Log in: exchanges an email address and password for a session token.
///
/// The answer to a wrong password and to an unknown address is the same. Repeated failures are
/// throttled (429 with `Retry-After`).
#[utoipa::path(post, path = "/sessions", tag = "sessions", request_body = LoginRequest,
    responses((status = 201, body = LoginResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError), (status = 429, body = ApiError)))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(request): Json<LoginRequest>,
) -> ApiResult<(StatusCode, Reply<LoginResponse>)> {
    let gate = sessions::Gate {
        policy: &state.sessions,
        throttle: &state.throttle,
    };
    let response = sessions::login(&state.db, &gate, &request, address).await?;
    Ok((StatusCode::CREATED, Reply(response)))
}

/// The caller's own live sessions, on every device.
#[utoipa::path(get, path = "/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionInfo>), (status = 401, body = ApiError)))]
async fn list_my_sessions(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<Vec<SessionInfo>>> {
    let me = actor
        .user_id()
        .ok_or(ServiceError::Unauthenticated("Log in first."))?;
    Ok(Reply(
        sessions::list_live(&state.db, &actor, &state.sessions, me).await?,
    ))
}

/// Any user's live sessions: an administrator's view (anyone may ask for their own).
#[utoipa::path(get, path = "/users/{id}/sessions", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, body = Vec<SessionInfo>), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn list_user_sessions(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Vec<SessionInfo>>> {
    Ok(Reply(
        sessions::list_live(&state.db, &actor, &state.sessions, id).await?,
    ))
}

/// Log out: ends the session that makes this request.
#[utoipa::path(delete, path = "/sessions/current", tag = "sessions", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ApiError)))]
async fn logout(State(state): State<AppState>, Caller(actor): Caller) -> ApiResult<StatusCode> {
    sessions::logout(&state.db, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends one session: one of the caller's own, or any user's for an administrator.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn revoke_session(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    sessions::revoke_one(&state.db, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of a user, or of one of the user's devices (a lost or stolen laptop).
/// Administrators may do this for anyone; others for themselves only.
#[utoipa::path(post, path = "/sessions/revoke", tag = "sessions", security(("bearer" = [])),
    request_body = RevokeSessions,
    responses((status = 200, body = RevokedCount), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 413, body = ApiError),
              (status = 422, body = ApiError)))]
async fn revoke_sessions(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(request): Json<RevokeSessions>,
) -> ApiResult<Reply<RevokedCount>> {
    Ok(Reply(sessions::revoke(&state.db, &actor, &request).await?))
}

/// The caller's own account.
#[utoipa::path(get, path = "/me", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ApiError)))]
async fn me(Caller(actor): Caller) -> ApiResult<Reply<User>> {
    match actor {
        Actor::Staff(staff) => Ok(Reply(staff.user)),
        _ => Err(ServiceError::Unauthenticated("Log in first.").into()),
    }
}

/// Changes the caller's password; every other session of the caller ends.
#[utoipa::path(post, path = "/me/password", tag = "sessions", security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 204), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn change_password(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(request): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    sessions::change_password(&state.db, &actor, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}
