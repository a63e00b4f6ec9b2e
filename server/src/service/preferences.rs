//! The preference centre, for the person a message reached (`/p/{token}`, linked from every
//! message): for each topic of the catalogue and each channel marketing goes out by, whether it
//! reaches them now, and their preferred contact method. They can stop any of what reaches them,
//! stop everything, and say how they prefer to be contacted (or not at all). Each change is an
//! event in their ledger, recorded by them (a data subject actor) with its source: the page, their
//! address and browser, and the words the page showed. The message's token proves who they are,
//! as on the unsubscribe page; the page shows nothing of their other data.
//!
//! What reaches them is the engine's decision, made now for a marketing message of that topic
//! and channel, so the page never shows as wanted what the ledger would not allow, nor as stopped
//! what it would.

use assent_engine::{decide, CompiledPolicy};
use assent_shared::api::TopicEntry;
use assent_shared::ledger::{
    Channel, EventKind, Message, MessageKind, PreferredChannel, Reason, Subject, ALL_TOPICS,
};

use super::unsubscribe::{self, Scope, Stop, Via};
use super::{ServiceError, ServiceResult};
use crate::audit::Action;
use crate::clock;
use crate::store::{self, Db};

/// The channels the preference centre offers, in the order it shows them: those marketing goes
/// out by that a person can stop one topic at a time. Calls are screened against the TPS and
/// stopped through the preferred method ("none") or "everything".
pub const CHANNELS: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Post];

/// Where a topic stands for the person on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Marketing about it may reach them now.
    Receiving,
    /// They stopped it (an opt-out, a preferred method of none) or were erased.
    Stopped,
    /// Nothing they gave allows it (no consent), so it does not reach them.
    NotAskedFor,
}

/// One topic of the catalogue, and where it stands on each of [`CHANNELS`].
#[derive(Debug, Clone)]
pub struct TopicRow {
    pub topic: TopicEntry,
    pub standing: [Standing; CHANNELS.len()],
}

/// What the preference centre shows.
#[derive(Debug, Clone)]
pub struct Centre {
    pub topics: Vec<TopicRow>,
    /// The latest preferred contact method they gave, if any.
    pub preferred: Option<PreferredChannel>,
}

impl Centre {
    /// Whether marketing about `topic` reaches them on `channel` now.
    fn receiving(&self, channel: Channel, topic: &str) -> Option<&TopicRow> {
        let at = CHANNELS.iter().position(|c| *c == channel)?;
        self.topics
            .iter()
            .find(|row| row.topic.key == topic && row.standing[at] == Standing::Receiving)
    }
}

/// What the person asked for on the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The (channel, topic) pairs the page showed as reaching them: only these can be stopped,
    /// so a consent recorded (or a topic added) after the page was drawn is not stopped unseen.
    pub shown: Vec<(Channel, String)>,
    /// The (channel, topic) pairs left ticked: every other one shown that still reaches them is
    /// stopped.
    pub keep: Vec<(Channel, String)>,
    /// Their preferred contact method, when they chose one. `none` stops all marketing too.
    pub preferred: Option<PreferredChannel>,
    /// Stop all marketing, by every channel.
    pub everything: bool,
}

/// What was done.
#[derive(Debug, Clone, Default)]
pub struct Changed {
    /// What they stopped, in words.
    pub stopped: Vec<Scope>,
    /// The preferred method, when it changed.
    pub preferred: Option<PreferredChannel>,
    /// How many events were recorded (0: nothing changed).
    pub recorded: usize,
}

/// The wording the preference centre shows beside its choices, kept with what it records.
pub const WORDING: &str = "Untick what you no longer want to receive, or stop everything. \
Your preferred way to be contacted is used for marketing only; choose \u{201c}none\u{201d} to receive no marketing at all.";

/// What the preference centre of `token` shows.
pub async fn centre(db: &Db, token: &str) -> ServiceResult<Centre> {
    let holder = unsubscribe::holder(db, token).await?;
    let (centre, _) = read(db, holder.contact_id).await?;
    Ok(centre)
}

/// Where the person stands now, and their ledger as read.
async fn read(
    db: &Db,
    contact_id: uuid::Uuid,
) -> ServiceResult<(Centre, Vec<assent_shared::api::RecordedEvent>)> {
    let listed = store::contacts::audience_by_ids(db, &[contact_id]).await?;
    // A deactivated contact's link is as unknown as a wrong one.
    let Some((_, kind)) = listed.active.first() else {
        return Err(ServiceError::NotFound("preference centre"));
    };
    let mut tx = db.begin_read().await?;
    let recorded = store::ledger::for_contact(&mut tx, contact_id).await?;
    tx.commit().await?;
    let (policy, catalogue) = futures_util::try_join!(
        store::policies::in_force(db, None),
        store::topics::in_force(db)
    )?;
    let ledger = store::ledger::for_engine(&recorded, None);
    let compiled = CompiledPolicy::new(policy.policy);
    let subject = Subject {
        kind: *kind,
        named_person: true,
    };
    let now = clock::now();
    let topics = catalogue
        .topics
        .into_iter()
        .filter(|t| !t.retired)
        .map(|topic| {
            let standing = CHANNELS.map(|channel| {
                let message = Message {
                    kind: MessageKind::Marketing,
                    channel,
                    topic: topic.key.clone(),
                    third_party: None,
                };
                let decision = decide(&compiled, &subject, &ledger, &message, now);
                let stopped = [Reason::OptedOut, Reason::PreferenceNone, Reason::Suppressed];
                if decision.allowed {
                    Standing::Receiving
                } else if decision.reasons.iter().any(|r| stopped.contains(&r)) {
                    Standing::Stopped
                } else {
                    Standing::NotAskedFor
                }
            });
            TopicRow { topic, standing }
        })
        .collect();
    let preferred = recorded
        .iter()
        .filter_map(|e| match &e.event {
            EventKind::PreferenceSet { preferred_channel } => {
                Some((e.at, e.seq, *preferred_channel))
            }
            _ => None,
        })
        .max_by_key(|(at, seq, _)| (*at, *seq))
        .map(|(_, _, p)| p);
    Ok((Centre { topics, preferred }, recorded))
}

/// Records what the person holding `token` changed, durably, before returning: an opt-out for
/// each (channel, topic) the page showed as reaching them that still does and is no longer
/// ticked (or one of everything, which "none" as the preferred method also records, so that
/// "none" stops marketing whatever the policy, and choosing a method again later does not start
/// it without a new sign-up), and their preferred method when it changed. A pair the page showed
/// for a topic retired since is passed over.
pub async fn change(db: &Db, token: &str, changes: &Changes, via: &Via) -> ServiceResult<Changed> {
    let holder = unsubscribe::holder(db, token).await?;
    let (centre, ledger) = read(db, holder.contact_id).await?;
    let everything = changes.everything || changes.preferred == Some(PreferredChannel::None);
    let scopes: Vec<Scope> = if everything {
        vec![Scope {
            channel: Channel::Any,
            topic: ALL_TOPICS.to_owned(),
            name: "everything".to_owned(),
        }]
    } else {
        let mut scopes: Vec<Scope> = Vec::new();
        for (channel, topic) in &changes.shown {
            let kept = changes.keep.iter().any(|(c, t)| c == channel && t == topic);
            let duplicate = scopes
                .iter()
                .any(|s| s.channel == *channel && &s.topic == topic);
            if kept || duplicate {
                continue;
            }
            if let Some(row) = centre.receiving(*channel, topic) {
                scopes.push(Scope {
                    channel: *channel,
                    topic: row.topic.key.clone(),
                    name: row.topic.name.clone(),
                });
            }
        }
        scopes
    };
    let mut kinds = unsubscribe::opt_outs(&ledger, &scopes);
    let preferred = changes.preferred.filter(|p| Some(*p) != centre.preferred);
    if let Some(preferred_channel) = preferred {
        kinds.push(EventKind::PreferenceSet { preferred_channel });
    }
    let mut source = unsubscribe::source(via);
    source.paper_reference = None;
    source.recording_reference = Some(format!("preference centre: \u{201c}{WORDING}\u{201d}"));
    let stop = Stop {
        actor: &holder.actor,
        action: Action::PreferencesChanged,
        contact_id: holder.contact_id,
        campaign_id: Some(holder.campaign.id),
        source,
    };
    let recorded = unsubscribe::record_events(db, &stop, &kinds).await?;
    Ok(Changed {
        stopped: scopes,
        preferred,
        recorded,
    })
}
