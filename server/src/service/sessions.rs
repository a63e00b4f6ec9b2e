//! Sessions: logging in and out, turning a token back into the member of staff it belongs to,
//! listing and revoking sessions (a stolen laptop: revoke its device), changing a password.
//!
//! A token is shown once; the server keeps only its SHA-256, and every request looks its session
//! up again, so a revocation or a deactivated user takes effect on the very next request.

use std::net::IpAddr;
use std::time::Instant;

use assent_shared::api::{
    ActorRef, LoginRequest, LoginResponse, PasswordChange, RevokeSessions, RevokedCount,
    SessionInfo,
};
use assent_shared::domain::{parse_optional_text, parse_text, DEVICE_NAME_MAX};
use uuid::Uuid;

use super::access::{self, USER_ROLES};
use super::{Actor, ServiceError, ServiceResult, Staff};
use crate::audit::{Action, AuditRecord, ObjectKind, Outcome};
use crate::auth::throttle::LoginThrottle;
use crate::auth::{self, password, session_refusal, SessionPolicy};
use crate::clock;
use crate::store::sessions::{Revoke, SessionRow};
use crate::store::{self, Db};

/// What logins need besides the store: how long sessions live, and who has failed too often.
pub struct Gate<'a> {
    pub policy: &'a SessionPolicy,
    pub throttle: &'a LoginThrottle,
}

fn session_info(row: &SessionRow, policy: &SessionPolicy, current: Option<Uuid>) -> SessionInfo {
    SessionInfo {
        id: row.id,
        user_id: row.user_id,
        device_name: row.device_name.clone(),
        created_at: row.created_at,
        last_seen_at: row.last_seen_at,
        idle_expires_at: auth::idle_expiry(row, policy),
        absolute_expires_at: row.absolute_expires_at,
        revoked_at: row.revoked_at,
        current: Some(row.id) == current,
    }
}

/// Exchanges an email address and password for a session. A wrong password and an unknown
/// address get the same answer, after the same work; repeated failures from an account or an
/// address are throttled. Every attempt is audited.
pub async fn login(
    db: &Db,
    gate: &Gate<'_>,
    request: &LoginRequest,
    address: IpAddr,
) -> ServiceResult<LoginResponse> {
    let device_name = parse_text(&request.device_name, DEVICE_NAME_MAX)
        .map_err(|e| ServiceError::field("device_name", e.0))?;
    let account = store::users::email_key(&request.email);
    // An address no store can hold is no account's.
    let stored = if account.chars().any(char::is_control) {
        None
    } else {
        store::users::find_by_email(db, &request.email).await?
    };
    let user_id = stored.as_ref().map(|s| s.user.id);
    let on_user = |record: AuditRecord| match user_id {
        Some(id) => record.on(ObjectKind::User, id),
        None => record,
    };
    if let Err(wait) = gate.throttle.check(&account, address, Instant::now()) {
        let record = on_user(AuditRecord::new(Action::LoginThrottled, Outcome::Throttled));
        store::audit::record_refusal(db, record).await?;
        return Err(ServiceError::Throttled(wait));
    }
    let verified_hash = stored.as_ref().map(|s| s.password_hash.clone());
    let password_ok = password::verify(request.password.clone(), verified_hash.clone()).await?;
    let account = account.as_str();
    let failed = |outcome| async move {
        gate.throttle
            .record_failure(account, address, Instant::now());
        let record = on_user(AuditRecord::new(Action::LoginFailed, outcome));
        store::audit::record_refusal(db, record).await?;
        Err(ServiceError::LoginFailed)
    };
    let (user, verified_hash) = match (stored, verified_hash) {
        (Some(stored), Some(hash)) if password_ok && stored.user.active => (stored.user, hash),
        (None, _) | (_, None) => return failed(Outcome::UnknownAccount).await,
        (Some(s), _) if !s.user.active => return failed(Outcome::Deactivated).await,
        (Some(_), _) => return failed(Outcome::BadPassword).await,
    };
    let now = clock::now();
    let session = SessionRow {
        id: Uuid::now_v7(),
        user_id: user.id,
        device_name,
        created_at: now,
        last_seen_at: now,
        absolute_expires_at: now + gate.policy.absolute,
        revoked_at: None,
    };
    let (token, token_hash) = auth::new_token();
    let mut tx = db.begin().await?;
    // The session is made only if the password it was given is still the user's (a change in
    // flight would otherwise leave this login's session alive with the old password).
    if !store::sessions::insert_if_password(&mut tx, &session, &token_hash, &verified_hash).await? {
        drop(tx);
        return failed(Outcome::BadPassword).await;
    }
    let record = AuditRecord::new(Action::LoginSucceeded, Outcome::Ok)
        .by(Some(ActorRef::Staff { id: user.id }), Some(session.id))
        .on(ObjectKind::Session, session.id);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    gate.throttle.record_success(account, address);
    tracing::info!(user_id = %user.id, session_id = %session.id, "logged in");
    let session = session_info(&session, gate.policy, Some(session.id));
    Ok(LoginResponse {
        token,
        session,
        user,
    })
}

/// Sessions are marked as used at most this often, to spare the database a write per request.
const TOUCH_INTERVAL_SECONDS: i64 = 30;

/// The member of staff a bearer token belongs to, if its session may be used now. A refusal is
/// audited, naming the session and user when the token names one.
pub async fn authenticate(
    db: &Db,
    policy: &SessionPolicy,
    token: Option<&str>,
) -> ServiceResult<Staff> {
    let now = clock::now();
    let refuse = |reason: &'static str, session: Option<&SessionRow>| {
        let record = AuditRecord::new(Action::Unauthenticated, Outcome::Refused).by(
            session.map(|s| ActorRef::Staff { id: s.user_id }),
            session.map(|s| s.id),
        );
        (record, reason)
    };
    let outcome = match token {
        None => Err(refuse(
            "Log in first: this request has no bearer token.",
            None,
        )),
        Some(token) => {
            match store::sessions::find_by_token_hash(db, &auth::token_hash(token)).await? {
                None => Err(refuse("This session is not known. Log in again.", None)),
                Some((session, stored)) => match session_refusal(&session, policy, now) {
                    Some(reason) => Err(refuse(reason, Some(&session))),
                    None if stored.user.active => Ok((session, stored.user)),
                    None => Err(refuse("This account is deactivated.", Some(&session))),
                },
            }
        }
    };
    match outcome {
        Ok((session, user)) => {
            if (now - session.last_seen_at).num_seconds() >= TOUCH_INTERVAL_SECONDS {
                store::sessions::touch(db, session.id, now).await?;
            }
            Ok(Staff {
                user,
                session_id: session.id,
                device_name: session.device_name,
            })
        }
        Err((record, reason)) => {
            store::audit::record_refusal(db, record).await?;
            Err(ServiceError::Unauthenticated(reason))
        }
    }
}

/// The live sessions of `user_id` (the actor's own, or anyone's for an administrator), returned
/// once the read's audit record is committed.
pub async fn list_live(
    db: &Db,
    actor: &Actor,
    policy: &SessionPolicy,
    user_id: Uuid,
) -> ServiceResult<Vec<SessionInfo>> {
    if !access::may_act_for_user(actor, user_id) {
        access::require_any(db, actor, USER_ROLES, Some((ObjectKind::User, user_id))).await?;
    }
    let now = clock::now();
    let mut tx = db.begin_read().await?;
    if store::users::get(&mut tx, user_id).await?.is_none() {
        return Err(ServiceError::NotFound("user"));
    }
    let record = actor
        .audit(Action::SessionsListed)
        .on(ObjectKind::User, user_id);
    let rows = store::sessions::unrevoked_for_user(&mut tx, user_id).await?;
    tx.commit().await?;
    store::audit::record_read(db, record).await?;
    let current = actor.staff().map(|s| s.session_id);
    Ok(rows
        .iter()
        .filter(|row| session_refusal(row, policy, now).is_none())
        .map(|row| session_info(row, policy, current))
        .collect())
}

/// Ends the session the actor is using.
pub async fn logout(db: &Db, actor: &Actor) -> ServiceResult<()> {
    let staff = access::staff(db, actor, "has sessions").await?;
    let mut tx = db.begin().await?;
    let revoke = Revoke::Only(staff.session_id);
    store::sessions::revoke(&mut tx, staff.user.id, revoke, staff.user.id, clock::now()).await?;
    let record = actor
        .audit(Action::Logout)
        .on(ObjectKind::Session, staff.session_id);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends one session: one of the actor's own, or any user's for an administrator.
pub async fn revoke_one(db: &Db, actor: &Actor, session_id: Uuid) -> ServiceResult<()> {
    let staff = access::staff(db, actor, "has sessions").await?;
    let mut tx = db.begin().await?;
    let session = store::sessions::get(&mut tx, session_id)
        .await?
        .ok_or(ServiceError::NotFound("session"))?;
    if !access::may_act_for_user(actor, session.user_id) {
        let message = "Only an administrator may end another user's session.".into();
        let object = Some((ObjectKind::Session, session_id));
        return Err(access::refuse_in(tx, actor, object, message).await?);
    }
    let revoked = store::sessions::revoke(
        &mut tx,
        session.user_id,
        Revoke::Only(session_id),
        staff.user.id,
        clock::now(),
    )
    .await?;
    let record = actor.audit_each(Action::SessionRevoked, ObjectKind::Session, revoked);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of a user, or of one of the user's devices (a lost or stolen laptop).
/// Administrators may do this for anyone; others for themselves only.
pub async fn revoke(
    db: &Db,
    actor: &Actor,
    request: &RevokeSessions,
) -> ServiceResult<RevokedCount> {
    let staff = access::staff(db, actor, "has sessions").await?;
    if !access::may_act_for_user(actor, request.user_id) {
        let message = "Only an administrator may end another user's sessions.".into();
        let object = Some((ObjectKind::User, request.user_id));
        return Err(access::refuse(db, actor, object, message).await);
    }
    let device = parse_optional_text(request.device_name.as_deref(), DEVICE_NAME_MAX)
        .map_err(|e| ServiceError::field("device_name", e.0))?;
    let mut tx = db.begin().await?;
    if store::users::get(&mut tx, request.user_id).await?.is_none() {
        return Err(ServiceError::NotFound("user"));
    }
    let which = match &device {
        Some(device) => Revoke::Device(device),
        None => Revoke::All,
    };
    let revoked =
        store::sessions::revoke(&mut tx, request.user_id, which, staff.user.id, clock::now())
            .await?;
    let record = actor.audit_each(
        Action::SessionRevoked,
        ObjectKind::Session,
        revoked.iter().copied(),
    );
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    tracing::info!(user_id = %request.user_id, revoked = revoked.len(), "sessions revoked");
    Ok(RevokedCount {
        revoked: revoked.len() as u64,
    })
}

/// Changes the actor's password; every other session of theirs ends, in the same transaction
/// (one statement, so that none listed earlier can be missed).
pub async fn change_password(db: &Db, actor: &Actor, change: &PasswordChange) -> ServiceResult<()> {
    let staff = access::staff(db, actor, "has sessions").await?;
    let id = staff.user.id;
    let stored = store::users::find(db, id)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    if !password::verify(change.current_password.clone(), Some(stored.password_hash)).await? {
        return Err(ServiceError::field(
            "current_password",
            "is not your current password",
        ));
    }
    if let Some(reason) = password::policy_violation(&change.new_password) {
        return Err(ServiceError::field("new_password", reason));
    }
    let hash = password::hash(change.new_password.clone()).await?;
    let now = clock::now();
    let mut tx = db.begin().await?;
    // The password first: on PostgreSQL this locks the user's row, so that a login in flight
    // either made its session before (and it is revoked next) or finds the new hash.
    store::users::set_password_hash(&mut tx, id, &hash, now).await?;
    let revoked =
        store::sessions::revoke(&mut tx, id, Revoke::AllBut(staff.session_id), id, now).await?;
    let record = actor.audit_each(Action::SessionRevoked, ObjectKind::Session, revoked);
    store::audit::append(&mut tx, &record).await?;
    store::audit::append(
        &mut tx,
        &actor
            .audit(Action::PasswordChanged)
            .on(ObjectKind::User, id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
