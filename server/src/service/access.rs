//! Who may do what: the rules every service applies, in one place. A refusal is recorded in the
//! audit trail before it is answered.
//!
//! - Sales staff, managers and the data protection lead work with contacts and companies
//!   ([`CONTACT_ROLES`]); sales staff change only the records they own, managers and the data
//!   protection lead any; only a manager gives a record to another owner.
//! - Administrators manage users and every user's sessions; anyone their own sessions.
//! - Administrators and the data protection lead change the compliance policy.
//! - Assent's own jobs ([`Actor::System`]) act with the authority of the code that runs them.
//! - A data subject acts only on their own contact, through the services that say so.

use assent_shared::domain::Role;
use uuid::Uuid;

use super::{names, Actor, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind, Outcome};
use crate::store::{self, Db, StaleRecord, WriteTx};

/// Who works with contacts, companies and their ledgers at all.
pub const CONTACT_ROLES: &[Role] = &[Role::Sales, Role::Manager, Role::Dpo];

/// Who imports a ledger's history.
pub const IMPORT_ROLES: &[Role] = &[Role::Manager, Role::Dpo];

/// Who changes the compliance policy and reads its history.
pub const POLICY_ROLES: &[Role] = &[Role::Admin, Role::Dpo];

/// Who manages users.
pub const USER_ROLES: &[Role] = &[Role::Admin];

/// Whether `actor` holds one of `roles` (a system job always does).
pub fn holds_any(actor: &Actor, roles: &[Role]) -> bool {
    match actor {
        Actor::System(_) => true,
        Actor::Staff(_) => roles.iter().any(|r| actor.has(*r)),
        Actor::DataSubject(_) => false,
    }
}

/// Whether `actor` may change a record owned by `owner` (nobody when `None`).
pub fn may_edit(actor: &Actor, owner: Option<Uuid>) -> bool {
    match actor {
        Actor::System(_) => true,
        Actor::Staff(staff) => {
            actor.has(Role::Manager)
                || actor.has(Role::Dpo)
                || (actor.has(Role::Sales) && owner == Some(staff.user.id))
        }
        Actor::DataSubject(_) => false,
    }
}

/// Whether `actor` may carry out an erasure: the data protection lead (or a system job).
pub fn may_erase(actor: &Actor) -> bool {
    holds_any(actor, &[Role::Dpo])
}

/// Whether `actor` may act on `user_id`'s account (read it, see or end its sessions): the user
/// themselves, or whoever manages users.
pub fn may_act_for_user(actor: &Actor, user_id: Uuid) -> bool {
    actor.user_id() == Some(user_id) || holds_any(actor, USER_ROLES)
}

/// Whether `actor` may give a record to an owner other than the one it has (or to themselves).
pub fn may_assign_owner(actor: &Actor) -> bool {
    matches!(actor, Actor::System(_)) || actor.has(Role::Manager)
}

/// The words of a refusal for want of a role.
fn needs(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    format!("This needs the role {}.", names.join(" or "))
}

/// Refuses (recorded, 403) unless `actor` holds one of `roles`; `object` names what the request
/// was about.
pub async fn require_any(
    db: &Db,
    actor: &Actor,
    roles: &[Role],
    object: Option<(ObjectKind, Uuid)>,
) -> ServiceResult<()> {
    if holds_any(actor, roles) {
        return Ok(());
    }
    Err(refuse(db, actor, object, needs(roles)).await)
}

/// The acting member of staff, or a refusal (recorded) for anyone else: `what` is what only
/// staff do ("saves filters").
pub async fn staff<'a>(db: &Db, actor: &'a Actor, what: &str) -> ServiceResult<&'a super::Staff> {
    match actor.staff() {
        Some(staff) => Ok(staff),
        None => Err(refuse(db, actor, None, format!("Only a member of staff {what}.")).await),
    }
}

/// Passes for a member of staff or a system job; refuses (recorded) a data subject: `what` is
/// what only they do ("reads the policy").
pub async fn staff_or_system(db: &Db, actor: &Actor, what: &str) -> ServiceResult<()> {
    match actor {
        Actor::DataSubject(_) => {
            let message = format!("Only a member of staff {what}.");
            Err(refuse(db, actor, None, message).await)
        }
        Actor::Staff(_) | Actor::System(_) => Ok(()),
    }
}

/// Records a refusal and returns the error to answer: through the group commit, as a read's
/// record is (durable before the refusal is answered, with no write transaction of its own, so a
/// flood of refused requests does not queue behind SQLite's one writer). If it cannot be
/// recorded, the store's error is answered instead. Call it with no write transaction open (the
/// group commit needs SQLite's one writer); inside one, [`refuse_in`].
pub async fn refuse(
    db: &Db,
    actor: &Actor,
    object: Option<(ObjectKind, Uuid)>,
    message: String,
) -> ServiceError {
    let mut record = actor.record(Action::Denied, Outcome::Forbidden);
    if let Some((kind, id)) = object {
        record = record.on(kind, id);
    }
    match store::audit::record_refusal(db, record).await {
        Ok(()) => ServiceError::Forbidden(message),
        Err(e) => e.into(),
    }
}

/// Records a refusal in `tx`, which has written nothing else, commits it and returns the error
/// to answer.
pub async fn refuse_in(
    mut tx: WriteTx,
    actor: &Actor,
    object: Option<(ObjectKind, Uuid)>,
    message: String,
) -> ServiceResult<ServiceError> {
    let mut record = actor.record(Action::Denied, Outcome::Forbidden);
    if let Some((kind, id)) = object {
        record = record.on(kind, id);
    }
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(ServiceError::Forbidden(message))
}

/// The 409 for a change refused because the record is at a newer version than it was made
/// against: who changed it (by name), when, and its version now. Read in `tx`, which has written
/// nothing and is then dropped.
pub async fn stale(mut tx: WriteTx, stale: StaleRecord) -> ServiceResult<ServiceError> {
    let name = names::of(&mut tx, stale.updated_by).await?;
    drop(tx);
    Ok(ServiceError::Stale {
        message: format!(
            "This record was changed by {name} at {} (it is now version {}). Reload it and make your change again.",
            stale.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
            stale.version
        ),
        conflict: assent_shared::api::StaleVersion {
            current_version: stale.version,
            updated_by: stale.updated_by,
            updated_by_name: name,
            updated_at: stale.updated_at,
        },
    })
}
