//! The organisation's compliance policy: read by everyone, changed by administrators and the data
//! protection lead, every version kept.

use assent_shared::api::{PolicyChange, PolicyVersion};
use assent_shared::domain::{parse_notes, parse_text};
use assent_shared::validate::{FieldErrors, NAME_MAX, POLICY_NOTE_MAX};

use super::access::{self, POLICY_ROLES};
use super::{Actor, ServiceError, ServiceResult};
use crate::audit::Action;
use crate::clock;
use crate::store::{self, Db};

/// The longest age limit a policy sets: a hundred years.
pub const MAX_AGE_DAYS: u32 = 36_500;

/// The policy in force. It is not personal data: any member of staff (and any job) reads it; a
/// data subject has no use for it.
pub async fn current(db: &Db, actor: &Actor) -> ServiceResult<PolicyVersion> {
    access::staff_or_system(db, actor, "reads the policy").await?;
    Ok(store::policies::in_force(db, None).await?)
}

/// Every version of the policy, newest first: who changed what, when and why.
pub async fn history(db: &Db, actor: &Actor) -> ServiceResult<Vec<PolicyVersion>> {
    access::require_any(db, actor, POLICY_ROLES, None).await?;
    Ok(store::policies::history(db).await?)
}

/// Puts a new version of the policy in force.
pub async fn change(db: &Db, actor: &Actor, change: &PolicyChange) -> ServiceResult<PolicyVersion> {
    access::require_any(db, actor, POLICY_ROLES, None).await?;
    let staff = access::staff(db, actor, "changes the policy").await?;
    let mut errors = FieldErrors::default();
    let policy = &change.policy;
    for (field, days) in [
        (
            "policy.soft_opt_in_max_age_days",
            policy.soft_opt_in_max_age_days,
        ),
        ("policy.consent_max_age_days", policy.consent_max_age_days),
        (
            "policy.tps_check_max_age_days",
            policy.tps_check_max_age_days,
        ),
    ] {
        if days.is_some_and(|d| !(1..=MAX_AGE_DAYS).contains(&d)) {
            errors.add(
                field,
                format!("must be between 1 and {MAX_AGE_DAYS} days, or null for no limit"),
            );
        }
    }
    for (g, group) in change.policy.similar_topics.iter().enumerate() {
        if group.len() < 2 {
            errors.add(
                format!("policy.similar_topics[{g}]"),
                "needs at least two topics to be similar",
            );
        }
        for (t, topic) in group.iter().enumerate() {
            errors.check(
                format!("policy.similar_topics[{g}][{t}]"),
                parse_text(topic, NAME_MAX),
            );
        }
    }
    let note = errors
        .check("note", parse_notes(change.note.as_deref(), POLICY_NOTE_MAX))
        .flatten();
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let mut tx = db.begin().await?;
    store::audit::append(&mut tx, &actor.audit(Action::PolicyChanged)).await?;
    // The catalogue's lock before the policy's, in the order a catalogue change takes them.
    let catalogue = store::topics::latest_locked(&mut tx).await?;
    if catalogue.version > 0 && change.policy.similar_topics != catalogue.similar {
        return Err(ServiceError::field(
            "policy.similar_topics",
            format!(
                "similar topics are kept in the topic catalogue (version {}): change them there, or send its groups unchanged",
                catalogue.version
            ),
        ));
    }
    let version = store::policies::save(
        &mut tx,
        &change.policy,
        staff.user.id,
        clock::now(),
        note.as_deref(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(version = version.version, "policy changed");
    Ok(version)
}
