//! Logging in and out, listing and revoking sessions (a stolen laptop: revoke its device), and
//! the caller's own account.

use std::time::Instant;

use assent_shared::api::{
    LoginRequest, LoginResponse, PasswordChange, RevokeSessions, RevokedCount, SessionInfo, User,
};
use assent_shared::domain::{parse_text, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use uuid::Uuid;

use super::error::{ApiResult, Error};
use super::extract::{ClientAddress, Json, Path};
use super::AppState;
use crate::audit::{Action, AuditRecord, ObjectKind};
use crate::auth::{self, password, session_refusal, Caller};
use crate::store::{self, sessions::SessionRow};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

pub const DEVICE_NAME_MAX: usize = 100;

fn session_info(row: &SessionRow, state: &AppState, current: Option<Uuid>) -> SessionInfo {
    SessionInfo {
        id: row.id,
        user_id: row.user_id,
        device_name: row.device_name.clone(),
        created_at: row.created_at,
        last_seen_at: row.last_seen_at,
        idle_expires_at: auth::idle_expiry(row, &state.sessions),
        absolute_expires_at: row.absolute_expires_at,
        revoked_at: row.revoked_at,
        current: Some(row.id) == current,
    }
}

/// Log in: exchanges an email address and password for a session token.
///
/// The answer to a wrong password and to an unknown address is the same. Repeated failures are
/// throttled (429 with `Retry-After`).
#[utoipa::path(post, path = "/sessions", tag = "sessions", request_body = LoginRequest,
    responses((status = 201, body = LoginResponse), (status = 401, body = assent_shared::api::ApiError),
              (status = 422, body = assent_shared::api::ApiError), (status = 429, body = assent_shared::api::ApiError)))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(request): Json<LoginRequest>,
) -> ApiResult<(StatusCode, Reply<LoginResponse>)> {
    let device_name = parse_text(&request.device_name, DEVICE_NAME_MAX)
        .map_err(|e| Error::field("device_name", e.0))?;
    let account = store::users::email_key(&request.email);
    let stored = store::users::find_by_email(&state.db, &request.email).await?;
    let user_id = stored.as_ref().map(|s| s.user.id);
    let on_user = |record: AuditRecord| match user_id {
        Some(id) => record.on(ObjectKind::User, id),
        None => record,
    };
    if let Err(wait) = state.throttle.check(&account, address, Instant::now()) {
        store::audit::append_now(
            &state.db,
            &[on_user(AuditRecord::new(
                Action::LoginThrottled,
                "throttled",
            ))],
        )
        .await?;
        return Err(Error::Throttled(wait));
    }
    let password_ok = password::verify(
        request.password,
        stored.as_ref().map(|s| s.password_hash.clone()),
    )
    .await?;
    let user = match stored {
        Some(stored) if password_ok && stored.user.active => stored.user,
        other => {
            state
                .throttle
                .record_failure(&account, address, Instant::now());
            let outcome = match other {
                None => "unknown_account",
                Some(s) if !s.user.active => "deactivated",
                Some(_) => "bad_password",
            };
            store::audit::append_now(
                &state.db,
                &[on_user(AuditRecord::new(Action::LoginFailed, outcome))],
            )
            .await?;
            return Err(Error::LoginFailed);
        }
    };
    let now = store::now();
    let session = SessionRow {
        id: Uuid::now_v7(),
        user_id: user.id,
        device_name,
        created_at: now,
        last_seen_at: now,
        absolute_expires_at: now + state.sessions.absolute,
        revoked_at: None,
    };
    let (token, token_hash) = auth::new_token();
    let mut tx = state.db.begin().await?;
    store::sessions::insert(&mut tx, &session, &token_hash).await?;
    let record = AuditRecord::new(Action::LoginSucceeded, "ok")
        .by(Some(user.id), Some(session.id))
        .on(ObjectKind::Session, session.id);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    state.throttle.record_success(&account, address);
    tracing::info!(user_id = %user.id, session_id = %session.id, "logged in");
    let session = session_info(&session, &state, Some(session.id));
    Ok((
        StatusCode::CREATED,
        Reply(LoginResponse {
            token,
            session,
            user,
        }),
    ))
}

/// The caller's own live sessions, on every device.
#[utoipa::path(get, path = "/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionInfo>), (status = 401, body = assent_shared::api::ApiError)))]
async fn list_my_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Reply<Vec<SessionInfo>>> {
    live_sessions(&state, &caller, caller.user.id)
        .await
        .map(Reply)
}

async fn live_sessions(
    state: &AppState,
    caller: &Caller,
    user_id: Uuid,
) -> ApiResult<Vec<SessionInfo>> {
    let now = store::now();
    let rows = store::sessions::unrevoked_for_user(&state.db, user_id).await?;
    store::audit::append_now(
        &state.db,
        &[caller
            .audit(Action::SessionsListed)
            .on(ObjectKind::User, user_id)],
    )
    .await?;
    Ok(rows
        .iter()
        .filter(|row| session_refusal(row, &state.sessions, now).is_none())
        .map(|row| session_info(row, state, Some(caller.session_id)))
        .collect())
}

/// An administrator's view of any user's live sessions.
#[utoipa::path(get, path = "/users/{id}/sessions", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, body = Vec<SessionInfo>), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError)))]
async fn list_user_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Vec<SessionInfo>>> {
    if id != caller.user.id {
        caller
            .require_any_on(&state, &[Role::Admin], Some((ObjectKind::User, id)))
            .await?;
    }
    if store::users::find(&state.db, id).await?.is_none() {
        return Err(Error::not_found("user"));
    }
    live_sessions(&state, &caller, id).await.map(Reply)
}

/// Log out: ends the session that makes this request.
#[utoipa::path(delete, path = "/sessions/current", tag = "sessions", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = assent_shared::api::ApiError)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    let now = store::now();
    let mut tx = state.db.begin().await?;
    store::sessions::revoke(
        &mut tx,
        caller.user.id,
        None,
        Some(caller.session_id),
        caller.user.id,
        now,
    )
    .await?;
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::Logout)
            .on(ObjectKind::Session, caller.session_id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends one session: one of the caller's own, or any user's for an administrator.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 204), (status = 403, body = assent_shared::api::ApiError), (status = 404, body = assent_shared::api::ApiError)))]
async fn revoke_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let session = store::sessions::find(&state.db, id)
        .await?
        .ok_or_else(|| Error::not_found("session"))?;
    if session.user_id != caller.user.id && !caller.has(Role::Admin) {
        return Err(caller
            .deny(
                &state,
                Some((ObjectKind::Session, id)),
                "Only an administrator may end another user's session.".into(),
            )
            .await);
    }
    let now = store::now();
    let mut tx = state.db.begin().await?;
    let revoked = store::sessions::revoke(
        &mut tx,
        session.user_id,
        None,
        Some(id),
        caller.user.id,
        now,
    )
    .await?;
    for id in revoked {
        store::audit::append(
            &mut tx,
            &caller
                .audit(Action::SessionRevoked)
                .on(ObjectKind::Session, id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of a user, or of one of the user's devices (a lost or stolen laptop).
/// Administrators may do this for anyone; others for themselves only.
#[utoipa::path(post, path = "/sessions/revoke", tag = "sessions", security(("bearer" = [])),
    request_body = RevokeSessions,
    responses((status = 200, body = RevokedCount), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError)))]
async fn revoke_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<RevokeSessions>,
) -> ApiResult<Reply<RevokedCount>> {
    if request.user_id != caller.user.id && !caller.has(Role::Admin) {
        return Err(caller
            .deny(
                &state,
                Some((ObjectKind::User, request.user_id)),
                "Only an administrator may end another user's sessions.".into(),
            )
            .await);
    }
    if store::users::find(&state.db, request.user_id)
        .await?
        .is_none()
    {
        return Err(Error::not_found("user"));
    }
    let device = request
        .device_name
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    let now = store::now();
    let mut tx = state.db.begin().await?;
    let revoked =
        store::sessions::revoke(&mut tx, request.user_id, device, None, caller.user.id, now)
            .await?;
    for id in &revoked {
        store::audit::append(
            &mut tx,
            &caller
                .audit(Action::SessionRevoked)
                .on(ObjectKind::Session, *id),
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(user_id = %request.user_id, revoked = revoked.len(), "sessions revoked");
    Ok(Reply(RevokedCount {
        revoked: revoked.len() as u64,
    }))
}

/// The caller's own account.
#[utoipa::path(get, path = "/me", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = assent_shared::api::ApiError)))]
async fn me(caller: Caller) -> Reply<User> {
    Reply(caller.user)
}

/// Changes the caller's password; every other session of the caller ends.
#[utoipa::path(post, path = "/me/password", tag = "sessions", security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 204), (status = 401, body = assent_shared::api::ApiError), (status = 422, body = assent_shared::api::ApiError)))]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    let stored = store::users::find(&state.db, caller.user.id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    if !password::verify(request.current_password, Some(stored.password_hash)).await? {
        return Err(Error::field(
            "current_password",
            "is not your current password",
        ));
    }
    if let Some(reason) = password::policy_violation(&request.new_password) {
        return Err(Error::field("new_password", reason));
    }
    let hash = password::hash(request.new_password).await?;
    let now = store::now();
    let others: Vec<Uuid> = store::sessions::unrevoked_for_user(&state.db, caller.user.id)
        .await?
        .into_iter()
        .map(|s| s.id)
        .filter(|id| *id != caller.session_id)
        .collect();
    let mut tx = state.db.begin().await?;
    store::users::set_password_hash(&mut tx, caller.user.id, &hash, now).await?;
    for id in others {
        store::sessions::revoke(&mut tx, caller.user.id, None, Some(id), caller.user.id, now)
            .await?;
        store::audit::append(
            &mut tx,
            &caller
                .audit(Action::SessionRevoked)
                .on(ObjectKind::Session, id),
        )
        .await?;
    }
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::PasswordChanged)
            .on(ObjectKind::User, caller.user.id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
