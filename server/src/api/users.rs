//! Staff accounts and their roles. Only administrators manage users.

use assent_shared::api::{NewUser, User, UserUpdate};
use assent_shared::domain::{parse_text, Role};
use assent_shared::validate::{validate_roles, FieldErrors, NAME_MAX};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use uuid::Uuid;

use super::error::{ApiResult, Error};
use super::extract::{Json, Path};
use super::AppState;
use crate::audit::{Action, AuditRecord, ObjectKind};
use crate::auth::{password, Caller};
use crate::store::{self, Db};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create))
        .routes(routes!(get_user, update_user))
}

/// Creates a user; shared by the API and the `create-user` command. `by` is the administrator
/// (user and session) who does it, or `None` from the command line.
pub async fn create_user(db: &Db, new: &NewUser, by: Option<(Uuid, Uuid)>) -> ApiResult<User> {
    let valid = new.validate();
    let policy = password::policy_violation(&new.password);
    let valid = match (valid, policy) {
        (Ok(valid), None) => valid,
        (valid, policy) => {
            let mut errors = valid.err().unwrap_or_default();
            if let Some(reason) = policy {
                errors.add("password", reason);
            }
            return Err(errors.into());
        }
    };
    if store::users::find_by_email(db, valid.email.as_str())
        .await?
        .is_some()
    {
        return Err(duplicate_email());
    }
    let hash = password::hash(new.password.clone()).await?;
    let id = Uuid::now_v7();
    let now = store::now();
    let mut tx = db.begin().await?;
    let record = store::users::NewUserRecord {
        id,
        email: valid.email.as_str(),
        display_name: &valid.display_name,
        roles: &valid.roles,
        password_hash: &hash,
        at: now,
    };
    store::users::insert(&mut tx, &record).await.map_err(|e| {
        if e.is_unique_violation() {
            duplicate_email()
        } else {
            e.into()
        }
    })?;
    let (actor, session) = by.unzip();
    store::audit::append(
        &mut tx,
        &AuditRecord::new(Action::UserCreated, "ok")
            .by(actor, session)
            .on(ObjectKind::User, id),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %id, "user created");
    Ok(User {
        id,
        email: valid.email.as_str().to_owned(),
        display_name: valid.display_name,
        roles: valid.roles,
        active: true,
        created_at: now,
    })
}

fn duplicate_email() -> Error {
    Error::Duplicate {
        field: "email",
        message: "A user with this email address already exists.".into(),
    }
}

/// Every user (administrators only).
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>), (status = 403, body = assent_shared::api::ApiError)))]
async fn list_users(State(state): State<AppState>, caller: Caller) -> ApiResult<Reply<Vec<User>>> {
    caller.require_any(&state, &[Role::Admin]).await?;
    let users = store::users::list(&state.db).await?;
    store::audit::append_now(&state.db, &[caller.audit(Action::UsersListed)]).await?;
    Ok(Reply(users))
}

/// Creates a user with a first password (administrators only).
#[utoipa::path(post, path = "/users", tag = "users", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 403, body = assent_shared::api::ApiError),
              (status = 409, body = assent_shared::api::ApiError), (status = 422, body = assent_shared::api::ApiError)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewUser>,
) -> ApiResult<(StatusCode, Reply<User>)> {
    caller.require_any(&state, &[Role::Admin]).await?;
    let user = create_user(&state.db, &new, Some((caller.user.id, caller.session_id))).await?;
    Ok((StatusCode::CREATED, Reply(user)))
}

/// One user: administrators see anyone, others only themselves.
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, body = User), (status = 403, body = assent_shared::api::ApiError), (status = 404, body = assent_shared::api::ApiError)))]
async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<User>> {
    if id != caller.user.id {
        caller
            .require_any_on(&state, &[Role::Admin], Some((ObjectKind::User, id)))
            .await?;
    }
    let stored = store::users::find(&state.db, id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    store::audit::append_now(
        &state.db,
        &[caller.audit(Action::UserRead).on(ObjectKind::User, id)],
    )
    .await?;
    Ok(Reply(stored.user))
}

/// Changes a user's name, roles or active flag (administrators only). Deactivating a user ends
/// their access on their next request. Administrators cannot remove their own admin role or
/// deactivate themselves, so that an organisation cannot lock itself out by accident.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", security(("bearer" = [])), request_body = UserUpdate,
    params(("id" = Uuid, Path, description = "The user")),
    responses((status = 200, body = User), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError), (status = 422, body = assent_shared::api::ApiError)))]
async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(update): Json<UserUpdate>,
) -> ApiResult<Reply<User>> {
    caller
        .require_any_on(&state, &[Role::Admin], Some((ObjectKind::User, id)))
        .await?;
    let mut user = store::users::find(&state.db, id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?
        .user;
    let mut errors = FieldErrors::default();
    if let Some(name) = &update.display_name {
        if let Some(name) = errors.check("display_name", parse_text(name, NAME_MAX)) {
            user.display_name = name;
        }
    }
    if let Some(roles) = &update.roles {
        user.roles = validate_roles(&mut errors, roles);
        if id == caller.user.id && !user.roles.contains(&Role::Admin) {
            errors.add("roles", "you cannot remove your own admin role");
        }
    }
    if let Some(active) = update.active {
        if id == caller.user.id && !active {
            errors.add("active", "you cannot deactivate yourself");
        }
        user.active = active;
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let mut tx = state.db.begin().await?;
    store::users::update(&mut tx, &user, store::now()).await?;
    store::audit::append(
        &mut tx,
        &caller.audit(Action::UserUpdated).on(ObjectKind::User, id),
    )
    .await?;
    tx.commit().await?;
    Ok(Reply(user))
}
