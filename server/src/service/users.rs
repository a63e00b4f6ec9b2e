//! Staff accounts and their roles. Administrators manage users (and an administrator at the
//! server's command line creates the first); everyone reads their own account.
//!
//! An organisation never locks itself out: no change leaves it without an active
//! administrator, checked inside the transaction that makes the change, and administrators
//! cannot remove their own admin role or deactivate themselves.

use assent_shared::api::{NewUser, User, UserUpdate};
use assent_shared::domain::{parse_text, Role};
use assent_shared::validate::{validate_roles, FieldErrors, NAME_MAX};
use uuid::Uuid;

use super::access::{self, USER_ROLES};
use super::{Actor, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::auth::password;
use crate::clock;
use crate::store::{self, Db, Updated};

/// Creates a user with a first password.
pub async fn create(db: &Db, actor: &Actor, new: &NewUser) -> ServiceResult<User> {
    access::require_any(db, actor, USER_ROLES, None).await?;
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
        // The same answer as the unique index gives a concurrent creation.
        return Err(store::StoreError::Duplicate(store::UniqueKey::UserEmail).into());
    }
    let hash = password::hash(new.password.clone()).await?;
    let id = Uuid::now_v7();
    let now = clock::now();
    let mut tx = db.begin().await?;
    let record = store::users::NewUserRecord {
        id,
        email: valid.email.as_str(),
        display_name: &valid.display_name,
        roles: &valid.roles,
        password_hash: &hash,
        by: actor.reference(),
        at: now,
    };
    store::users::insert(&mut tx, &record).await?;
    store::audit::append(
        &mut tx,
        &actor.audit(Action::UserCreated).on(ObjectKind::User, id),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %id, "user created");
    Ok(User {
        id,
        version: 1,
        email: valid.email.as_str().to_owned(),
        display_name: valid.display_name,
        roles: valid.roles,
        active: true,
        created_at: now,
    })
}

/// Every user, returned once the read's audit record is committed.
pub async fn list(db: &Db, actor: &Actor) -> ServiceResult<Vec<User>> {
    access::require_any(db, actor, USER_ROLES, None).await?;
    let mut tx = db.begin_read().await?;
    let users = store::users::list(&mut tx).await?;
    tx.commit().await?;
    store::audit::record_read(db, actor.audit(Action::UsersListed)).await?;
    Ok(users)
}

/// One user: administrators read anyone, others only themselves.
pub async fn get(db: &Db, actor: &Actor, id: Uuid) -> ServiceResult<User> {
    if !access::may_act_for_user(actor, id) {
        access::require_any(db, actor, USER_ROLES, Some((ObjectKind::User, id))).await?;
    }
    let mut tx = db.begin_read().await?;
    let (stored, _) = store::users::get(&mut tx, id)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    tx.commit().await?;
    store::audit::record_read(db, actor.audit(Action::UserRead).on(ObjectKind::User, id)).await?;
    Ok(stored.user)
}

/// Whether a user counts as an administrator who can let others in.
fn active_admin(user: &User) -> bool {
    user.active && user.roles.contains(&Role::Admin)
}

/// Changes a user's name, roles or active flag, against the version the change was made on.
/// Deactivating a user ends their access on their next request.
pub async fn update(db: &Db, actor: &Actor, id: Uuid, update: &UserUpdate) -> ServiceResult<User> {
    access::require_any(db, actor, USER_ROLES, Some((ObjectKind::User, id))).await?;
    let mut errors = FieldErrors::default();
    let display_name = update
        .display_name
        .as_deref()
        .and_then(|name| errors.check("display_name", parse_text(name, NAME_MAX)));
    let roles = update
        .roles
        .as_deref()
        .map(|roles| validate_roles(&mut errors, roles));
    let myself = actor.user_id() == Some(id);
    if myself && roles.as_ref().is_some_and(|r| !r.contains(&Role::Admin)) {
        errors.add("roles", "you cannot remove your own admin role");
    }
    if myself && update.active == Some(false) {
        errors.add("active", "you cannot deactivate yourself");
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let mut tx = db.begin().await?;
    // Locked before the user is read, so that two changes that each remove an administrator are
    // serialised and the second one counts what the first left.
    let admins = store::users::lock_active_admins(&mut tx).await?;
    let (stored, last) = store::users::get(&mut tx, id)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    // A change made against an old version is refused as such, whatever else it would do.
    if stored.user.version != update.version {
        let stale = store::StaleRecord {
            version: stored.user.version,
            updated_by: last.by,
            updated_at: last.at,
        };
        return Err(access::stale(tx, stale).await?);
    }
    let mut user = stored.user;
    let was_admin = active_admin(&user);
    if let Some(name) = display_name {
        user.display_name = name;
    }
    if let Some(roles) = roles {
        user.roles = roles;
    }
    if let Some(active) = update.active {
        user.active = active;
    }
    if was_admin && !active_admin(&user) && !admins.iter().any(|a| *a != id) {
        drop(tx);
        return Err(ServiceError::field(
            if user.active { "roles" } else { "active" },
            "would leave the organisation without an active administrator: make someone else an administrator first",
        ));
    }
    match store::users::update(
        &mut tx,
        &user,
        update.version,
        actor.reference(),
        clock::now(),
    )
    .await?
    {
        Updated::Saved(user) => {
            store::audit::append(
                &mut tx,
                &actor.audit(Action::UserUpdated).on(ObjectKind::User, id),
            )
            .await?;
            tx.commit().await?;
            Ok(user)
        }
        Updated::Stale(stale) => Err(access::stale(tx, stale).await?),
    }
}

/// How many users exist (0 before the first administrator is created).
pub async fn count(db: &Db) -> ServiceResult<i64> {
    Ok(store::users::count(db).await?)
}
