//! The topic catalogue: the topics campaigns are about and people choose in or out of, with the
//! words people see, and the groups of similar topics the soft opt-in relies on. Kept by
//! administrators and the data protection lead; every version kept, like the policy.
//!
//! The similar groups are the catalogue's: each catalogue version whose groups differ from the
//! policy in force also saves a policy version with them, in the same transaction, so that the
//! engine keeps reading one policy and a decision's policy version names the groups it used.
//! Once a catalogue exists, a policy change cannot set other groups.

use std::collections::HashSet;

use assent_shared::api::{TopicCatalogue, TopicCatalogueChange, TopicEntry};
use assent_shared::domain::{parse_notes, parse_text};
use assent_shared::validate::{
    FieldErrors, NAME_MAX, POLICY_NOTE_MAX, TOPICS_MAX, TOPIC_DESCRIPTION_MAX, TOPIC_KEY_MAX,
};

use super::access::{self, POLICY_ROLES};
use super::{Actor, ServiceResult};
use crate::audit::Action;
use crate::clock;
use crate::store::{self, Db};

/// The catalogue in force. Not personal data: any member of staff and any job reads it.
pub async fn current(db: &Db, actor: &Actor) -> ServiceResult<TopicCatalogue> {
    access::staff_or_system(db, actor, "reads the topic catalogue").await?;
    Ok(store::topics::in_force(db).await?)
}

/// Every version, newest first.
pub async fn history(db: &Db, actor: &Actor) -> ServiceResult<Vec<TopicCatalogue>> {
    access::require_any(db, actor, POLICY_ROLES, None).await?;
    Ok(store::topics::history(db).await?)
}

/// Puts a new version of the catalogue in force, and its similar groups into the policy.
pub async fn change(
    db: &Db,
    actor: &Actor,
    change: &TopicCatalogueChange,
) -> ServiceResult<TopicCatalogue> {
    access::require_any(db, actor, POLICY_ROLES, None).await?;
    let staff = access::staff(db, actor, "changes the topic catalogue").await?;
    let mut errors = FieldErrors::default();
    let topics = checked_topics(&change.topics, &mut errors);
    let keys: HashSet<&str> = change.topics.iter().map(|t| t.key.as_str()).collect();
    let similar = checked_groups(&change.similar, &keys, &mut errors);
    let note = errors
        .check("note", parse_notes(change.note.as_deref(), POLICY_NOTE_MAX))
        .flatten();
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let at = clock::now();
    let mut tx = db.begin().await?;
    store::audit::append(&mut tx, &actor.audit(Action::TopicsChanged)).await?;
    let previous = store::topics::latest_locked(&mut tx).await?;
    for (i, kept) in previous.topics.iter().enumerate() {
        if !keys.contains(kept.key.as_str()) {
            errors.add(
                format!("topics[{i}]"),
                format!(
                    "version {} has the topic {:?}, which this change leaves out: a topic is retired (\"retired\": true), never removed",
                    previous.version, kept.key
                ),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let saved = store::topics::save(
        &mut tx,
        &previous,
        &topics,
        &similar,
        staff.user.id,
        at,
        note.as_deref(),
    )
    .await?;
    let mut policy = store::policies::latest_locked(&mut tx).await?;
    if policy.policy.similar_topics != similar {
        policy.policy.similar_topics = similar.clone();
        let why = format!(
            "The similar topics of topic catalogue version {}.",
            saved.version
        );
        store::policies::save(&mut tx, &policy.policy, staff.user.id, at, Some(&why)).await?;
    }
    tx.commit().await?;
    tracing::info!(version = saved.version, "topic catalogue changed");
    Ok(saved)
}

/// Whether `key` is a topic key: lower-case letters, digits and hyphens, not starting with a
/// hyphen (`*`, every topic, is the ledger's and never a catalogue's).
pub fn is_topic_key(key: &str) -> bool {
    (1..=TOPIC_KEY_MAX).contains(&key.len())
        && !key.starts_with('-')
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn checked_topics(topics: &[TopicEntry], errors: &mut FieldErrors) -> Vec<TopicEntry> {
    if topics.len() > TOPICS_MAX {
        errors.add("topics", format!("holds more than {TOPICS_MAX} topics"));
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut checked = Vec::with_capacity(topics.len());
    for (i, topic) in topics.iter().enumerate() {
        if !is_topic_key(&topic.key) {
            errors.add(
                format!("topics[{i}].key"),
                format!("must be 1 to {TOPIC_KEY_MAX} lower-case letters, digits and hyphens, starting with a letter or digit (for example boiler-cover)"),
            );
        } else if !seen.insert(topic.key.as_str()) {
            errors.add(
                format!("topics[{i}].key"),
                format!("{:?} is in the catalogue twice", topic.key),
            );
        }
        let name = errors.check(
            format!("topics[{i}].name"),
            parse_text(&topic.name, NAME_MAX),
        );
        let description = errors.check(
            format!("topics[{i}].description"),
            parse_text(&topic.description, TOPIC_DESCRIPTION_MAX),
        );
        if let (Some(name), Some(description)) = (name, description) {
            checked.push(TopicEntry {
                key: topic.key.clone(),
                name,
                description,
                retired: topic.retired,
            });
        }
    }
    checked
}

fn checked_groups(
    groups: &[Vec<String>],
    keys: &HashSet<&str>,
    errors: &mut FieldErrors,
) -> Vec<Vec<String>> {
    for (g, group) in groups.iter().enumerate() {
        if group.len() < 2 {
            errors.add(
                format!("similar[{g}]"),
                "needs at least two topics to be similar",
            );
        }
        let mut seen = HashSet::new();
        for (t, key) in group.iter().enumerate() {
            if !keys.contains(key.as_str()) {
                errors.add(
                    format!("similar[{g}][{t}]"),
                    "is not the key of a topic in this catalogue",
                );
            } else if !seen.insert(key.as_str()) {
                errors.add(
                    format!("similar[{g}][{t}]"),
                    format!("{key:?} is in this group twice"),
                );
            }
        }
    }
    groups.to_vec()
}
