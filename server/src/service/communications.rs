//! The communication log: every message Assent decided for a contact, with its warrant (the
//! decision at send time and what it rested on) and where the message stands. Staff read it on
//! the contact; the evidence pack lists the same warrants. Staff also log the calls, letters and
//! faxes they make: marketing is decided first and gets its warrant like a message the sender
//! sends, and one the engine refused is still recorded, and listed for the data protection lead.

use assent_engine::{decide, CompiledPolicy};
use assent_shared::api::{Audience, CampaignInput, Communication, NewLoggedCommunication};
use assent_shared::domain::{parse_notes, parse_optional_text, CampaignState, PhoneNumber, Role};
use assent_shared::ledger::{Channel, Message, Subject};
use assent_shared::validate::{FieldErrors, NAME_MAX, NOTES_MAX};
use uuid::Uuid;

use super::access::{self, CONTACT_ROLES};
use super::contacts::load;
use super::{Actor, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::store::{self, outbox, Db};

/// The communication log of contact `id`, oldest decision first; returned once the read's audit
/// record is committed.
pub async fn log(db: &Db, actor: &Actor, id: Uuid) -> ServiceResult<Vec<Communication>> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Contact, id))).await?;
    let mut tx = db.begin_read().await?;
    load(&mut tx, id).await?;
    let record = actor
        .audit(Action::CommunicationsRead)
        .on(ObjectKind::Contact, id);
    let log = store::outbox::log_of(&mut tx, id).await?;
    tx.commit().await?;
    store::audit::record_read(db, record).await?;
    Ok(log)
}

/// The channels staff log rather than send.
const LOGGED_CHANNELS: &[Channel] = &[
    Channel::Phone,
    Channel::AutomatedCall,
    Channel::Post,
    Channel::Fax,
];

/// What a logged message is called in the campaign list.
fn logged_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Phone => "Phone call (logged)",
        Channel::AutomatedCall => "Automated call (logged)",
        Channel::Post => "Letter (logged)",
        _ => "Fax (logged)",
    }
}

/// Who reads the logged messages the engine refused.
const REFUSALS_ROLES: &[Role] = &[Role::Dpo, Role::Manager];

/// The longest postal address a letter is logged with.
const ADDRESS_MAX: usize = 500;

/// Logs a call, letter or fax staff made to contact `id`: decided by the engine for the moment it
/// happened (on the whole ledger, under the policy then in force), recorded as a one-off message that was sent (it happened) with its
/// warrant, allowed or not, in one transaction with its audit record. Returns its log entry.
pub async fn log_one(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    input: &NewLoggedCommunication,
) -> ServiceResult<Communication> {
    let object = Some((ObjectKind::Contact, id));
    access::require_any(db, actor, CONTACT_ROLES, object).await?;
    let staff = access::staff(db, actor, "logs a call or a letter").await?;
    let now = clock::now();
    let mut errors = FieldErrors::default();
    let channel = input.message.channel;
    if !LOGGED_CHANNELS.contains(&channel) {
        errors.add(
            "message.channel",
            "is not logged: log a call (phone, automated_call), a letter (post) or a fax; email and sms are sent as campaigns",
        );
    }
    let topic = super::campaigns::checked_topic(db, &input.message, &mut errors).await?;
    let third_party = errors
        .check(
            "message.third_party",
            parse_optional_text(input.message.third_party.as_deref(), NAME_MAX),
        )
        .flatten();
    let summary = errors
        .check("summary", parse_notes(Some(&input.summary), NOTES_MAX))
        .flatten();
    if summary.is_none() && errors.is_empty() {
        errors.add(
            "summary",
            "is empty: say in a few words what was said or sent",
        );
    }
    let at = input.at.unwrap_or(now);
    if let Err(reason) = super::ledger::check_time(at, now) {
        errors.add("at", reason);
    }
    let given_point = match (channel, input.contact_point.as_deref()) {
        (_, None) => None,
        (Channel::Post, Some(address)) => errors
            .check(
                "contact_point",
                parse_optional_text(Some(address), ADDRESS_MAX),
            )
            .flatten(),
        (_, Some(number)) => errors
            .check("contact_point", PhoneNumber::parse(number))
            .map(|n| n.as_str().to_owned()),
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let message = Message {
        kind: input.message.kind,
        channel,
        topic,
        third_party,
    };
    let mut read = db.begin_read().await?;
    let contact = load(&mut read, id).await?;
    let recorded = store::ledger::for_contact(&mut read, id).await?;
    read.commit().await?;
    let contact_point = given_point.or_else(|| match channel {
        Channel::Post => None,
        _ => contact.phones.first().cloned(),
    });
    let policy = store::policies::in_force(db, Some(at)).await?;
    let ledger = store::ledger::for_engine(&recorded, None);
    let subject = Subject {
        kind: contact.subscriber_kind,
        named_person: true,
    };
    // Decided for the moment it happened, on everything the ledger holds (an opt-out recorded
    // later but made before the call counts against it), under the policy then in force.
    let decision = decide(
        &CompiledPolicy::new(policy.policy),
        &subject,
        &ledger,
        &message,
        at,
    );
    let evidence_seqs: Vec<i64> = decision
        .evidence
        .as_slice()
        .iter()
        .filter_map(|&i| ledger[i as usize].id.as_deref())
        .filter_map(|event| recorded.iter().find(|e| e.id.to_string() == event))
        .map(|e| e.seq)
        .collect();
    let content = CampaignInput {
        name: logged_name(channel).to_owned(),
        message: message.clone(),
        subject: None,
        // Checked above: a summary that is not blank.
        body: summary.unwrap_or_default(),
        audience: Audience::ContactIds(vec![id]),
    };
    let campaign =
        super::campaigns::new_campaign(content, Vec::new(), CampaignState::Sent, staff.user.id)?;
    let row = outbox::NewRow {
        id: Uuid::now_v7(),
        contact_id: id,
        message_id: format!("{}.{}@logged", campaign.id.simple(), id.simple()),
        token: crate::auth::new_token().0,
    };
    let warrant = outbox::Warrant {
        id: Uuid::now_v7(),
        outbox_id: row.id,
        campaign_id: campaign.id,
        contact_id: id,
        channel: channel.as_str().to_owned(),
        kind: message.kind.as_str().to_owned(),
        topic: message.topic.clone(),
        third_party: message.third_party.clone(),
        contact_point: contact_point.clone(),
        message_id: row.message_id.clone(),
        allowed: decision.allowed,
        basis: decision.basis.map(|b| b.as_str().to_owned()),
        reasons: decision
            .reasons
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        evidence_seqs,
        policy_version: policy.version,
        author_id: staff.user.id,
        approver_id: None,
        // The moment the decision is for: when it happened.
        decided_at: at,
    };
    let record = actor
        .audit(Action::CommunicationLogged)
        .on(ObjectKind::Contact, id)
        .on(ObjectKind::Campaign, campaign.id);
    let mut tx = db.begin().await?;
    store::campaigns::insert(&mut tx, &campaign).await?;
    outbox::insert_logged(
        &mut tx,
        &row,
        campaign.id,
        channel.as_str(),
        contact_point.as_deref(),
        at,
    )
    .await?;
    outbox::append_warrants(&mut tx, campaign.id, std::slice::from_ref(&warrant)).await?;
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    if !warrant.allowed {
        tracing::warn!(
            campaign = %campaign.id,
            "a logged message was not allowed by the engine: it is recorded with its warrant for the data protection lead"
        );
    }
    Ok(Communication {
        warrant_id: warrant.id,
        contact_id: id,
        campaign_id: campaign.id,
        campaign_name: campaign.content.name,
        message,
        contact_point,
        message_id: row.message_id,
        allowed: warrant.allowed,
        basis: decision.basis,
        reasons: warrant.reasons,
        evidence_seqs: warrant.evidence_seqs,
        policy_version: policy.version,
        author_id: staff.user.id,
        approver_id: None,
        decided_at: at,
        delivery: assent_shared::domain::OutboxState::Sent,
        outcome: Some(outbox::LOGGED.to_owned()),
        delivery_updated_at: at,
    })
}

/// The calls, letters and faxes staff logged that the engine did not allow, newest first (the
/// last 200), for the data protection lead and managers; each contact shown is audited as read.
pub async fn logged_refusals(db: &Db, actor: &Actor) -> ServiceResult<Vec<Communication>> {
    access::require_any(db, actor, REFUSALS_ROLES, None).await?;
    let channels: Vec<&str> = LOGGED_CHANNELS.iter().map(|c| c.as_str()).collect();
    let mut tx = db.begin_read().await?;
    let refusals = outbox::logged_refusals(&mut tx, &channels, 200).await?;
    tx.commit().await?;
    let record = actor.audit_each(
        Action::CommunicationsRead,
        ObjectKind::Contact,
        refusals.iter().map(|c| c.contact_id),
    );
    store::audit::record_read(db, record).await?;
    Ok(refusals)
}
