//! Unsubscribing, for the person a message reached: through the link in the message (the page it
//! opens, or the one-click POST of RFC 8058 that mail clients send) and through the mailbox named
//! in `List-Unsubscribe`. The token of the message proves who they are: it is unguessable, bound
//! to the recipient and the message, and never expires. What they choose is recorded in their
//! ledger as opt-outs by them (a data subject actor), with its audit record, in one transaction
//! that commits before the caller answers.

use assent_shared::api::{EventSource, TopicEntry};
use assent_shared::ledger::{Channel, EventKind, MessageKind, ALL_TOPICS};
use assent_shared::validate::LEDGER_TEXT_MAX;

use super::{Actor, DataSubject, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::store::{self, ledger::NewEntry, Db};

/// The subject of a request to the unsubscribe mailbox, before the message's token: the
/// `mailto:` of `List-Unsubscribe` sets it, and the forwarded request is matched by it.
pub const MAIL_SUBJECT: &str = "Unsubscribe";

/// What the unsubscribe page offers for one message: who sent it, by which channel, about what,
/// and the topics a person can choose from. No personal data: the page is shown to whoever holds
/// the link.
#[derive(Debug, Clone)]
pub struct Offer {
    pub organisation: Option<String>,
    pub channel: Channel,
    /// The marketing topic of the message; `None` for a service message, which has none to stop.
    pub topic: Option<TopicEntry>,
    /// The topics of the catalogue a person can stop one by one: those offered today, and the
    /// message's own even when retired.
    pub topics: Vec<TopicEntry>,
}

/// What the person chose to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The message's own topic on its channel: the one-click unsubscribe.
    ThisMessage,
    /// These topics (keys of the catalogue) on the message's channel.
    Topics(Vec<String>),
    /// All marketing, by every channel.
    Everything,
}

/// How the request reached Assent, for the opt-out's recorded source.
#[derive(Debug, Clone)]
pub enum Via {
    /// The unsubscribe page or the one-click POST to its address.
    Link {
        /// The page's address without the token (the token is a credential, never kept).
        page: String,
        /// The client's address, as the trusted-proxy setting resolves it.
        ip: Option<std::net::IpAddr>,
        user_agent: Option<String>,
    },
    /// An email to the unsubscribe mailbox, forwarded by the organisation's mail system.
    Email { mailbox: Option<String> },
}

/// One opt-out scope, with its topic in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub channel: Channel,
    /// A catalogue key or `*`.
    pub topic: String,
    /// The topic's name, or "everything".
    pub name: String,
}

/// What was done.
#[derive(Debug, Clone)]
pub struct Unsubscribed {
    pub organisation: Option<String>,
    /// Every scope the person asked to stop.
    pub scopes: Vec<Scope>,
    /// How many of them were newly recorded: the others were already in force.
    pub recorded: usize,
}

/// The message a token was made for, and the person's actor.
pub(super) struct Holder {
    pub actor: Actor,
    pub contact_id: uuid::Uuid,
    pub campaign: assent_shared::api::Campaign,
}

/// The message of `token`: an unknown token is `NotFound`, the same whether it never existed or
/// is malformed, so that the answer tells a guesser nothing.
pub(super) async fn holder(db: &Db, token: &str) -> ServiceResult<Holder> {
    let not_found = || ServiceError::NotFound("unsubscribe link");
    if !crate::auth::looks_like_token(token) {
        return Err(not_found());
    }
    let row = store::outbox::by_token(db, token)
        .await?
        .ok_or_else(not_found)?;
    let campaign = store::campaigns::get(db, row.campaign_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Holder {
        actor: Actor::DataSubject(DataSubject {
            contact_id: row.contact_id,
            token_id: row.id,
        }),
        contact_id: row.contact_id,
        campaign,
    })
}

/// What the page of `token` offers.
pub async fn offer(db: &Db, organisation: Option<&str>, token: &str) -> ServiceResult<Offer> {
    let holder = holder(db, token).await?;
    offer_for(db, organisation, &holder).await
}

async fn offer_for(db: &Db, organisation: Option<&str>, holder: &Holder) -> ServiceResult<Offer> {
    let message = &holder.campaign.content.message;
    let catalogue = store::topics::in_force(db).await?;
    let named = |key: &str| {
        catalogue
            .topics
            .iter()
            .find(|t| t.key == key)
            .cloned()
            .unwrap_or_else(|| TopicEntry {
                key: key.to_owned(),
                name: key.to_owned(),
                description: String::new(),
                retired: false,
            })
    };
    let topic = (message.kind == MessageKind::Marketing).then(|| named(&message.topic));
    let mut topics: Vec<TopicEntry> = catalogue
        .topics
        .iter()
        .filter(|t| !t.retired)
        .cloned()
        .collect();
    if let Some(own) = &topic {
        if !topics.iter().any(|t| t.key == own.key) {
            topics.insert(0, own.clone());
        }
    }
    Ok(Offer {
        organisation: organisation.map(str::to_owned),
        channel: message.channel,
        topic,
        topics,
    })
}

/// The scopes `choice` stands for, checked against what the page offered.
fn scopes(offer: &Offer, choice: &Choice) -> ServiceResult<Vec<Scope>> {
    match choice {
        Choice::ThisMessage => match &offer.topic {
            Some(topic) => Ok(vec![Scope {
                channel: offer.channel,
                topic: topic.key.clone(),
                name: topic.name.clone(),
            }]),
            None => Err(ServiceError::BadRequest(
                "This message was not marketing, so there is nothing to stop for it alone: choose the topics to stop, or everything.".into(),
            )),
        },
        Choice::Topics(keys) if keys.is_empty() => Err(ServiceError::BadRequest(
            "Nothing was chosen: tick the topics to stop, or choose everything.".into(),
        )),
        Choice::Topics(keys) => {
            let mut scopes: Vec<Scope> = Vec::new();
            for key in keys {
                let Some(topic) = offer.topics.iter().find(|t| &t.key == key) else {
                    return Err(ServiceError::BadRequest(
                        "One of the topics chosen is not one this page offers.".into(),
                    ));
                };
                if !scopes.iter().any(|s| &s.topic == key) {
                    scopes.push(Scope {
                        channel: offer.channel,
                        topic: topic.key.clone(),
                        name: topic.name.clone(),
                    });
                }
            }
            Ok(scopes)
        }
        Choice::Everything => Ok(vec![Scope {
            channel: Channel::Any,
            topic: ALL_TOPICS.to_owned(),
            name: "everything".to_owned(),
        }]),
    }
}

/// Whether an opt-out covering all of `scope` is already the last word of the ledger: among the
/// latest events (by when they happened), back to the first that is not an opt-out, one covers
/// the scope. Then a second one-click POST (mail clients send it twice) records nothing more.
/// Anything after an opt-out that the engine may weigh (a consent, a sale, a preference) makes
/// the scope recorded again: a duplicate opt-out never allows more, a missing one might.
pub(super) fn already_stopped(ledger: &[assent_shared::api::RecordedEvent], scope: &Scope) -> bool {
    let covers = |channel: Channel, topic: &str| {
        channel.covers(scope.channel)
            && (topic == ALL_TOPICS || (scope.topic != ALL_TOPICS && topic == scope.topic))
    };
    let mut latest: Vec<&assent_shared::api::RecordedEvent> = ledger.iter().collect();
    latest.sort_by_key(|e| std::cmp::Reverse((e.at, e.seq)));
    for event in latest {
        match &event.event {
            EventKind::OptOut { channel, topic } if covers(*channel, topic) => return true,
            EventKind::OptOut { .. } => {}
            _ => return false,
        }
    }
    false
}

/// Text of the client kept as the source: printable, and no longer than the ledger holds.
pub(super) fn source_text(text: &str) -> Option<String> {
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(LEDGER_TEXT_MAX)
        .collect();
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_owned())
}

pub(super) fn source(via: &Via) -> EventSource {
    match via {
        Via::Link {
            page,
            ip,
            user_agent,
        } => EventSource {
            form_url: source_text(page),
            ip: ip.map(|ip| ip.to_string()),
            user_agent: user_agent.as_deref().and_then(source_text),
            paper_reference: None,
            recording_reference: None,
            contact_point: None,
        },
        Via::Email { mailbox } => EventSource {
            form_url: mailbox
                .as_deref()
                .and_then(|m| source_text(&format!("mailto:{m}"))),
            ..EventSource::default()
        },
    }
}

/// Records what the person holding `token` chose to stop, durably, before returning. A scope
/// already in force is not recorded again (a mail client that sends the one-click POST twice
/// writes one opt-out); asking again after a new consent records it again.
pub async fn opt_out(
    db: &Db,
    organisation: Option<&str>,
    token: &str,
    choice: &Choice,
    via: &Via,
) -> ServiceResult<Unsubscribed> {
    let holder = holder(db, token).await?;
    let offer = offer_for(db, organisation, &holder).await?;
    let scopes = scopes(&offer, choice)?;
    let stop = Stop {
        actor: &holder.actor,
        action: Action::Unsubscribed,
        contact_id: holder.contact_id,
        campaign_id: Some(holder.campaign.id),
        source: source(via),
    };
    let recorded = record(db, &stop, &scopes).await?;
    Ok(Unsubscribed {
        organisation: offer.organisation,
        recorded,
        scopes,
    })
}

/// What a reply to a text message led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextReply {
    /// "STOP" (or a synonym): every contact holding the number has opted out of marketing by
    /// text; `recorded` of them newly (for the others it was in force already).
    Stopped { contacts: usize, recorded: usize },
    /// "STOP" from a number no contact holds: nothing to record.
    NoOneHoldsTheNumber,
    /// Not a request to stop: nothing is recorded.
    NotAStop,
}

/// Takes a reply to a text message, as the SMS gateway forwards it (its signature checked by the
/// caller): "STOP" and its synonyms from `from` are recorded, durably before this returns, as an
/// opt-out of all marketing by text for every contact holding that number, with its source (the
/// reply and the gateway's message id). Taken by the `sms_replies` job on the person's behalf.
pub async fn text_reply(
    db: &Db,
    from: &str,
    body: &str,
    gateway_message: Option<&str>,
) -> ServiceResult<TextReply> {
    if crate::sms::Reply::of(body) != crate::sms::Reply::Stop {
        return Ok(TextReply::NotAStop);
    }
    let number = assent_shared::domain::PhoneNumber::parse(from)
        .map_err(|_| ServiceError::BadRequest("The reply's From is not a phone number.".into()))?;
    let holders = store::contacts::holding_phone(db, number.as_str()).await?;
    if holders.is_empty() {
        return Ok(TextReply::NoOneHoldsTheNumber);
    }
    let actor = Actor::System(assent_shared::domain::SystemJob::SmsReplies);
    let reply: String = body
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(20)
        .collect();
    let reference = gateway_message
        .and_then(source_text)
        .map(|m| format!(" (gateway message {m})"))
        .unwrap_or_default();
    let everything = Scope {
        channel: Channel::Sms,
        topic: ALL_TOPICS.to_owned(),
        name: "everything".to_owned(),
    };
    let mut recorded = 0;
    for (contact_id, campaign_id) in &holders {
        let stop = Stop {
            actor: &actor,
            action: Action::Unsubscribed,
            contact_id: *contact_id,
            campaign_id: *campaign_id,
            source: EventSource {
                recording_reference: source_text(&format!(
                    "text message reply \u{201c}{reply}\u{201d} from the contact's number{reference}"
                )),
                ..EventSource::default()
            },
        };
        match record(db, &stop, std::slice::from_ref(&everything)).await {
            Ok(n) => recorded += n,
            // Gone since it was found (erased, merged): the others still stop.
            Err(ServiceError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(TextReply::Stopped {
        contacts: holders.len(),
        recorded,
    })
}

/// Who stops what a message was about, and how it is recorded.
pub(crate) struct Stop<'a> {
    /// The person (through their token), or the job that took a report on their behalf.
    pub actor: &'a Actor,
    pub action: Action,
    pub contact_id: uuid::Uuid,
    /// The message's campaign, named by the audit record (none when no message is known).
    pub campaign_id: Option<uuid::Uuid>,
    pub source: EventSource,
}

/// Records an opt-out of each of `scopes` not already in force, in the contact's ledger with
/// the audit record of `stop.action`, in one transaction that commits before it returns; how
/// many were recorded. Two requests at the same moment may each find a scope new and both
/// record it: a second opt-out of the same scope changes no decision.
pub(crate) async fn record(db: &Db, stop: &Stop<'_>, scopes: &[Scope]) -> ServiceResult<usize> {
    let mut read = db.begin_read().await?;
    let ledger = store::ledger::for_contact(&mut read, stop.contact_id).await?;
    read.commit().await?;
    let kinds = opt_outs(&ledger, scopes);
    record_events(db, stop, &kinds).await
}

/// The opt-outs of `scopes` not already in force in `ledger`.
pub(super) fn opt_outs(
    ledger: &[assent_shared::api::RecordedEvent],
    scopes: &[Scope],
) -> Vec<EventKind> {
    scopes
        .iter()
        .filter(|s| !already_stopped(ledger, s))
        .map(|s| EventKind::OptOut {
            channel: s.channel,
            topic: s.topic.clone().into(),
        })
        .collect()
}

/// Records `kinds` in the contact's ledger, by `stop.actor` with `stop.source`, with the audit
/// record of `stop.action`, in one transaction that commits before it returns; how many.
pub(super) async fn record_events(
    db: &Db,
    stop: &Stop<'_>,
    kinds: &[EventKind],
) -> ServiceResult<usize> {
    let id = stop.contact_id;
    if kinds.is_empty() {
        return Ok(0);
    }
    let mut record = stop.actor.audit(stop.action).on(ObjectKind::Contact, id);
    if let Some(campaign) = stop.campaign_id {
        record = record.on(ObjectKind::Campaign, campaign);
    }
    let mut tx = db.begin().await?;
    let mut ledger = store::ledger::lock(&mut tx, &record, &[id]).await?;
    if !ledger.holds(id) {
        return Err(ServiceError::NotFound("contact"));
    }
    // Stamped once the ledger is held, just before the commit: the opt-out's time is not earlier
    // than a decision that could not yet see it.
    let now = clock::now();
    for kind in kinds {
        let entry = NewEntry {
            contact_id: id,
            at: now,
            kind,
            external_id: None,
            source: Some(&stop.source),
            recorded_by: stop.actor.reference(),
            imported: false,
        };
        ledger.append(&entry, now).await?;
    }
    tx.commit().await?;
    Ok(kinds.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_shared::api::{RecordedEvent, RecordedVia};
    use assent_shared::ledger::ConsentMethod;
    use chrono::DateTime;
    use uuid::Uuid;

    fn event(minutes: i64, kind: EventKind) -> RecordedEvent {
        RecordedEvent {
            id: Uuid::nil(),
            contact_id: Uuid::nil(),
            seq: 1,
            external_id: None,
            at: DateTime::UNIX_EPOCH + chrono::Duration::minutes(minutes),
            recorded_at: DateTime::UNIX_EPOCH,
            recorded_by: None,
            recorded_by_name: None,
            recorded_via: RecordedVia::User,
            event: kind,
            wording_version: None,
            source: None,
        }
    }

    fn opt_out(channel: Channel, topic: &str) -> EventKind {
        EventKind::OptOut {
            channel,
            topic: topic.into(),
        }
    }

    fn scope(channel: Channel, topic: &str) -> Scope {
        Scope {
            channel,
            topic: topic.into(),
            name: topic.into(),
        }
    }

    #[test]
    fn an_opt_out_is_the_last_word_until_anything_but_an_opt_out_comes_after_it() {
        let boilers = scope(Channel::Email, "boilers");
        assert!(!already_stopped(&[], &boilers));
        let stopped = [event(1, opt_out(Channel::Email, "boilers"))];
        assert!(already_stopped(&stopped, &boilers));
        assert!(
            !already_stopped(&stopped, &scope(Channel::Sms, "boilers")),
            "another channel is not covered"
        );
        assert!(
            !already_stopped(&stopped, &scope(Channel::Email, ALL_TOPICS)),
            "one topic does not cover every topic"
        );
        let everything = [event(1, opt_out(Channel::Any, ALL_TOPICS))];
        assert!(already_stopped(&everything, &boilers));
        let consent = EventKind::ConsentGiven {
            channel: Channel::Any,
            topic: "boilers".into(),
            method: ConsentMethod::WebForm,
            wording: "Yes please".into(),
            third_parties: Vec::new(),
        };
        let renewed = [
            event(1, opt_out(Channel::Email, "boilers")),
            event(2, consent.clone()),
        ];
        assert!(!already_stopped(&renewed, &boilers));
        let other_topic = [
            event(1, opt_out(Channel::Email, "boilers")),
            event(
                2,
                EventKind::OptOut {
                    channel: Channel::Sms,
                    topic: "insurance".into(),
                },
            ),
        ];
        assert!(already_stopped(&other_topic, &boilers));
        // A sale after the opt-out may give a new soft opt-in, which the engine weighs: the
        // opt-out is recorded again (the case W5 of the send benchmark found).
        let bought_again = [
            event(1, opt_out(Channel::Email, "boilers")),
            event(
                2,
                EventKind::Sale {
                    topic: "boilers".into(),
                    refusal_offered: true,
                },
            ),
        ];
        assert!(!already_stopped(&bought_again, &boilers));
    }

    #[test]
    fn a_source_keeps_printable_text_within_the_ledger_limit() {
        assert_eq!(source_text("  \u{7}  "), None);
        assert_eq!(source_text("Mozilla\n/5.0").as_deref(), Some("Mozilla/5.0"));
        assert_eq!(
            source_text(&"x".repeat(LEDGER_TEXT_MAX + 10))
                .unwrap()
                .chars()
                .count(),
            LEDGER_TEXT_MAX
        );
    }
}
