//! Campaigns and one-off messages, from draft to approval: what they say and to whom, the checks
//! that block a submission, the preview through the engine, and four eyes.
//!
//! Who may do what is decided here, from the actor, for every caller:
//! - sales staff and managers write campaigns; only the author edits or submits one;
//! - only a manager who is not the author approves or rejects one. No role bypasses this, admin
//!   included: an administrator who is not also a manager approves nothing, and a manager never
//!   approves their own;
//! - the author or a manager cancels one.
//!
//! A service message may skip approval where the policy says so
//! (`service_messages_skip_approval`), unless its text reads like marketing; it is then approved
//! at submission with no approver, audited as `campaign_approved_by_policy`.
//!
//! An approval names the content hash the approver read and the audience hash of the preview
//! they saw; the audience is found again at approval and must be the one previewed, and then it is
//! frozen. Any edit after submission returns the campaign to draft (and drops its approval).

use assent_shared::api::{
    AudienceDecisionRequest, Campaign, CampaignApproval, CampaignEdit, CampaignInput, CampaignPage,
    CampaignPreview, CampaignRejection, IndeterminateRecipients, IndeterminateResend, PersonName,
    RenderedMessage, Unsendable,
};
use assent_shared::domain::{
    parse_notes, parse_optional_text, parse_text, CampaignState, OutboxState, Role,
};
use assent_shared::ledger::{Channel, Message, MessageKind};
use assent_shared::validate::{FieldErrors, NAME_MAX, NOTES_MAX};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::access::{self, CONTACT_ROLES};
use super::{decisions, Actor, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::config::SenderIdentity;
use crate::store::{self, contacts::Recipient, Db, StaleRecord};
use crate::template::{markdown_escape, render, ConsentValues, MergeField, Template, Values};

/// Who writes campaigns.
pub const AUTHOR_ROLES: &[Role] = &[Role::Sales, Role::Manager];

/// The longest SMS body: four concatenated GSM segments.
pub const SMS_MAX: usize = 612;

/// The link shown in a preview where each recipient gets their own (`.invalid` is reserved:
/// it reaches no one).
pub const PREVIEW_LINK: &str = "https://assent.invalid/your-own-link";

/// What the checks of a campaign need from the configuration.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    pub identity: &'a SenderIdentity,
    pub marketing_phrases: &'a [String],
    /// Whether people can reply to the text messages' sender id: when they cannot (an
    /// alphanumeric id), "Reply STOP" is no way to opt out and a marketing SMS needs the link.
    pub sms_takes_replies: bool,
}

/// The first page of campaigns, newest first, of one state or any.
pub async fn list(
    db: &Db,
    actor: &Actor,
    state: Option<CampaignState>,
) -> ServiceResult<CampaignPage> {
    access::require_any(db, actor, CONTACT_ROLES, None).await?;
    Ok(CampaignPage {
        items: store::campaigns::list(db, state, 200).await?,
    })
}

pub async fn get(db: &Db, actor: &Actor, id: Uuid) -> ServiceResult<Campaign> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Campaign, id))).await?;
    store::campaigns::get(db, id)
        .await?
        .ok_or(ServiceError::NotFound("campaign"))
}

/// Starts a campaign as a draft written by the actor.
pub async fn create(
    db: &Db,
    actor: &Actor,
    rules: &Rules<'_>,
    input: &CampaignInput,
) -> ServiceResult<Campaign> {
    access::require_any(db, actor, AUTHOR_ROLES, None).await?;
    let staff = access::staff(db, actor, "writes a campaign").await?;
    let content = checked_content(db, input).await?;
    let flags = flags(&content, rules);
    let campaign = new_campaign(content, flags, CampaignState::Draft, staff.user.id)?;
    let mut tx = db.begin().await?;
    store::campaigns::insert(&mut tx, &campaign).await?;
    store::audit::append(
        &mut tx,
        &actor
            .audit(Action::CampaignCreated)
            .on(ObjectKind::Campaign, campaign.id),
    )
    .await?;
    tx.commit().await?;
    Ok(campaign)
}

/// A campaign as its author first writes it down, in `state`, now: version 1, nothing decided.
pub(crate) fn new_campaign(
    content: CampaignInput,
    flags: Vec<String>,
    state: CampaignState,
    author_id: Uuid,
) -> ServiceResult<Campaign> {
    let now = clock::now();
    Ok(Campaign {
        id: Uuid::now_v7(),
        version: 1,
        content_hash: content_hash(&content)?,
        flags,
        content,
        state,
        author_id,
        created_at: now,
        updated_by: author_id,
        updated_at: now,
        submitted_at: None,
        decided_by: None,
        decided_at: None,
        rejection_reason: None,
        frozen_members: None,
        audience_hash: None,
        standing: false,
    })
}

/// Replaces the content (the author only). A campaign submitted, approved or rejected returns to
/// draft; one that is scheduled, sending or done cannot be edited.
pub async fn edit(
    db: &Db,
    actor: &Actor,
    rules: &Rules<'_>,
    id: Uuid,
    edit: &CampaignEdit,
) -> ServiceResult<Campaign> {
    access::require_any(db, actor, AUTHOR_ROLES, Some((ObjectKind::Campaign, id))).await?;
    let content = checked_content(db, &edit.content).await?;
    let hash = content_hash(&content)?;
    let flags = flags(&content, rules);
    transition(db, actor, id, edit.version, Action::CampaignUpdated, |campaign, who| {
        if !who.is_author {
            return Err(Refusal::Forbidden(
                "Only the campaign's author may change it.".into(),
            ));
        }
        match campaign.state {
            CampaignState::Draft
            | CampaignState::Submitted
            | CampaignState::Approved
            | CampaignState::Rejected => {}
            other => return Err(Refusal::State(format!(
                "The campaign is {other}: it can no longer be changed (cancel it and write a new one)."
            ))),
        }
        campaign.content = content;
        campaign.content_hash = hash;
        campaign.flags = flags;
        back_to_draft(campaign);
        Ok(Freeze::Drop)
    })
    .await
}

/// Submits a draft (or a rejected campaign) for approval, after the checks that block; a service
/// message the policy lets skip approval is approved as it is submitted (no approver).
pub async fn submit(
    db: &Db,
    actor: &Actor,
    rules: &Rules<'_>,
    id: Uuid,
    version: i64,
) -> ServiceResult<Campaign> {
    access::require_any(db, actor, AUTHOR_ROLES, Some((ObjectKind::Campaign, id))).await?;
    let read = store::campaigns::get(db, id)
        .await?
        .ok_or(ServiceError::NotFound("campaign"))?;
    // A service message the policy lets go without a manager, and whose text does not read like
    // marketing, is approved as it is submitted: its audience found now (before the row is
    // locked) and frozen. The version check below sees any change since this read.
    let policy = store::policies::in_force(db, None).await?.policy;
    // The phrases as configured now, not as they were at the last edit; and the campaign as read
    // here, whose audience is the one found.
    let read_version = read.version;
    let skips_approval = |campaign: &Campaign| {
        policy.service_messages_skip_approval
            && campaign.version == read_version
            && campaign.content.message.kind == MessageKind::Service
            && flags(&campaign.content, rules).is_empty()
    };
    let frozen = if skips_approval(&read) {
        let (members, _) = decisions::members(db, &read.content.audience).await?;
        Some(members.iter().map(|(id, _)| *id).collect::<Vec<Uuid>>())
    } else {
        None
    };
    let action = if frozen.is_some() {
        Action::CampaignApprovedByPolicy
    } else {
        Action::CampaignSubmitted
    };
    transition(db, actor, id, version, action, |campaign, who| {
        if !who.is_author {
            return Err(Refusal::Forbidden(
                "Only the campaign's author may submit it.".into(),
            ));
        }
        if !matches!(
            campaign.state,
            CampaignState::Draft | CampaignState::Rejected
        ) {
            return Err(Refusal::State(format!(
                "The campaign is {}: only a draft or a rejected campaign is submitted.",
                campaign.state
            )));
        }
        blocking_checks(&campaign.content, rules).map_err(Refusal::Invalid)?;
        campaign.submitted_at = Some(who.at);
        campaign.decided_by = None;
        campaign.rejection_reason = None;
        match frozen {
            Some(ids) if skips_approval(campaign) => {
                campaign.state = CampaignState::Approved;
                campaign.decided_at = Some(who.at);
                campaign.frozen_members = Some(ids.len() as i64);
                campaign.audience_hash = Some(audience_hash(&ids));
                Ok(Freeze::Members(ids))
            }
            _ => {
                campaign.state = CampaignState::Submitted;
                campaign.decided_at = None;
                Ok(Freeze::Keep)
            }
        }
    })
    .await
}

/// Approves a submitted campaign: a manager who is not its author, naming the content they read
/// and the preview they saw. The audience is found again and must be the previewed one; it is
/// then frozen.
pub async fn approve(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    approval: &CampaignApproval,
) -> ServiceResult<Campaign> {
    let object = Some((ObjectKind::Campaign, id));
    access::require_any(db, actor, &[Role::Manager], object).await?;
    let campaign = store::campaigns::get(db, id)
        .await?
        .ok_or(ServiceError::NotFound("campaign"))?;
    // Found before the campaign's row is locked: a large audience is read without holding it.
    let (members, _) = decisions::members(db, &campaign.content.audience).await?;
    let ids: Vec<Uuid> = members.iter().map(|(id, _)| *id).collect();
    let found_hash = audience_hash(&ids);
    transition(db, actor, id, approval.version, Action::CampaignApproved, |campaign, who| {
        if who.is_author {
            return Err(Refusal::Forbidden(
                "You wrote this campaign: another manager must approve it (four eyes; no role bypasses this).".into(),
            ));
        }
        if campaign.state != CampaignState::Submitted {
            return Err(Refusal::State(format!(
                "The campaign is {}: only a submitted campaign is approved.",
                campaign.state
            )));
        }
        let mut errors = FieldErrors::default();
        if approval.content_hash != campaign.content_hash {
            errors.add(
                "content_hash",
                "is not the content of this campaign: read it again before approving",
            );
        }
        if approval.audience_hash != found_hash {
            errors.add(
                "audience_hash",
                format!(
                    "is not the audience as it is now ({} members): preview the campaign again before approving",
                    ids.len()
                ),
            );
        }
        if !errors.is_empty() {
            return Err(Refusal::Invalid(errors));
        }
        campaign.state = CampaignState::Approved;
        campaign.decided_by = Some(who.user_id);
        campaign.decided_at = Some(who.at);
        campaign.frozen_members = Some(ids.len() as i64);
        campaign.audience_hash = Some(found_hash.clone());
        Ok(Freeze::Members(ids.clone()))
    })
    .await
}

/// Sends a submitted campaign back to its author with a reason (a manager who is not its author).
pub async fn reject(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    rejection: &CampaignRejection,
) -> ServiceResult<Campaign> {
    let object = Some((ObjectKind::Campaign, id));
    access::require_any(db, actor, &[Role::Manager], object).await?;
    let reason = parse_notes(Some(&rejection.reason), NOTES_MAX)
        .map_err(|e| ServiceError::field("reason", e.0))?
        .ok_or_else(|| ServiceError::field("reason", "is empty: say what must change"))?;
    transition(db, actor, id, rejection.version, Action::CampaignRejected, |campaign, who| {
        if who.is_author {
            return Err(Refusal::Forbidden(
                "You wrote this campaign: another manager decides on it (edit it to withdraw it).".into(),
            ));
        }
        if campaign.state != CampaignState::Submitted {
            return Err(Refusal::State(format!(
                "The campaign is {}: only a submitted campaign is rejected.",
                campaign.state
            )));
        }
        campaign.state = CampaignState::Rejected;
        campaign.decided_by = Some(who.user_id);
        campaign.decided_at = Some(who.at);
        campaign.rejection_reason = Some(reason);
        Ok(Freeze::Keep)
    })
    .await
}

/// Cancels a campaign that has not finished (its author or a manager).
pub async fn cancel(db: &Db, actor: &Actor, id: Uuid, version: i64) -> ServiceResult<Campaign> {
    access::require_any(db, actor, AUTHOR_ROLES, Some((ObjectKind::Campaign, id))).await?;
    let manager = actor.has(Role::Manager);
    transition(
        db,
        actor,
        id,
        version,
        Action::CampaignCancelled,
        |campaign, who| {
            if !who.is_author && !manager {
                return Err(Refusal::Forbidden(
                    "Only the campaign's author or a manager may cancel it.".into(),
                ));
            }
            if matches!(
                campaign.state,
                CampaignState::Sent | CampaignState::Cancelled
            ) {
                return Err(Refusal::State(format!(
                    "The campaign is {}: there is nothing left to cancel.",
                    campaign.state
                )));
            }
            campaign.state = CampaignState::Cancelled;
            // What the worker holds now finishes; nothing queued goes out.
            Ok(Freeze::CancelQueued)
        },
    )
    .await
}

/// Starts sending an approved campaign (its author or a manager): an outbox row for each frozen
/// member, each decided again when the worker claims it.
pub async fn start(
    db: &Db,
    actor: &Actor,
    rules: &Rules<'_>,
    id: Uuid,
    version: i64,
) -> ServiceResult<Campaign> {
    access::require_any(db, actor, AUTHOR_ROLES, Some((ObjectKind::Campaign, id))).await?;
    let manager = actor.has(Role::Manager);
    // Read before the row is locked; a change of the frozen audience needs a new approval, which
    // the version check below would see.
    let members = store::campaigns::members(db, id).await?;
    let domain = rules.identity.message_id_domain().to_owned();
    transition(
        db,
        actor,
        id,
        version,
        Action::CampaignSendStarted,
        |campaign, who| {
            if !who.is_author && !manager {
                return Err(Refusal::Forbidden(
                    "Only the campaign's author or a manager may start sending it.".into(),
                ));
            }
            if campaign.state != CampaignState::Approved {
                return Err(Refusal::State(format!(
                    "The campaign is {}: only an approved campaign is sent.",
                    campaign.state
                )));
            }
            let rows = members
                .iter()
                .map(|contact_id| store::outbox::NewRow {
                    id: Uuid::now_v7(),
                    contact_id: *contact_id,
                    message_id: format!(
                        "{}.{}@{domain}",
                        campaign.id.simple(),
                        contact_id.simple()
                    ),
                    // The token itself is kept: the link is made again for each attempt.
                    token: crate::auth::new_token().0,
                })
                .collect();
            campaign.state = CampaignState::Sending;
            Ok(Freeze::Enqueue(rows))
        },
    )
    .await
}

/// Pauses a campaign that is sending, or resumes a paused one (its author or a manager). What the
/// worker has claimed is finished; nothing more is claimed while paused.
pub async fn pause_or_resume(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    version: i64,
    pause: bool,
) -> ServiceResult<Campaign> {
    access::require_any(db, actor, AUTHOR_ROLES, Some((ObjectKind::Campaign, id))).await?;
    let manager = actor.has(Role::Manager);
    let (from, to, action) = if pause {
        (
            CampaignState::Sending,
            CampaignState::Paused,
            Action::CampaignPaused,
        )
    } else {
        (
            CampaignState::Paused,
            CampaignState::Sending,
            Action::CampaignResumed,
        )
    };
    transition(db, actor, id, version, action, |campaign, who| {
        if !who.is_author && !manager {
            return Err(Refusal::Forbidden(
                "Only the campaign's author or a manager may pause or resume it.".into(),
            ));
        }
        if campaign.state != from {
            return Err(Refusal::State(format!(
                "The campaign is {}: only a campaign that is {from} can be made {to}.",
                campaign.state
            )));
        }
        campaign.state = to;
        Ok(Freeze::Keep)
    })
    .await
}

/// Where each recipient of a campaign stands.
pub async fn progress(
    db: &Db,
    actor: &Actor,
    id: Uuid,
) -> ServiceResult<assent_shared::api::CampaignProgress> {
    let campaign = get(db, actor, id).await?;
    let mut progress = assent_shared::api::CampaignProgress {
        state: campaign.state,
        ..Default::default()
    };
    for (state, count) in store::outbox::progress(db, id).await? {
        let count = count as u64;
        *match state {
            OutboxState::Queued => &mut progress.queued,
            OutboxState::Claimed => &mut progress.in_flight,
            OutboxState::Sent => &mut progress.sent,
            OutboxState::Failed => &mut progress.failed,
            OutboxState::Indeterminate => &mut progress.indeterminate,
            OutboxState::NotSent => &mut progress.not_sent,
        } += count;
    }
    progress.total = progress.queued
        + progress.in_flight
        + progress.sent
        + progress.failed
        + progress.indeterminate
        + progress.not_sent;
    Ok(progress)
}

/// The most indeterminate recipients one answer lists, and one resend names.
pub const INDETERMINATE_MAX: usize = 1000;

/// The indeterminate recipients of a campaign (names and addresses: the read is audited, naming
/// each contact listed).
pub async fn indeterminate(
    db: &Db,
    actor: &Actor,
    id: Uuid,
) -> ServiceResult<IndeterminateRecipients> {
    get(db, actor, id).await?;
    let mut tx = db.begin_read().await?;
    let (total, items) =
        store::outbox::indeterminate(&mut tx, id, INDETERMINATE_MAX as i64).await?;
    tx.commit().await?;
    let record = actor
        .audit(Action::IndeterminateRead)
        .on(ObjectKind::Campaign, id)
        .on_each(ObjectKind::Contact, items.iter().map(|r| r.contact_id));
    store::audit::record_read(db, record).await?;
    Ok(IndeterminateRecipients {
        total: total as u64,
        items,
    })
}

/// The explicit, audited choice (the author's or a manager's) to send the named indeterminate
/// recipients their message again: their rows are queued once more and each is decided again
/// before it goes, with the same Message-ID. A campaign that had finished sends again.
pub async fn resend_indeterminate(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    input: &IndeterminateResend,
) -> ServiceResult<Campaign> {
    access::require_any(db, actor, AUTHOR_ROLES, Some((ObjectKind::Campaign, id))).await?;
    let mut errors = FieldErrors::default();
    let mut seen = std::collections::HashSet::new();
    if input.contact_ids.is_empty() || input.contact_ids.len() > INDETERMINATE_MAX {
        errors.add(
            "contact_ids",
            format!("must name 1 to {INDETERMINATE_MAX} recipients"),
        );
    } else if let Some(twice) = input.contact_ids.iter().find(|id| !seen.insert(**id)) {
        errors.add("contact_ids", format!("names {twice} twice"));
    }
    errors.into_result(|| ())?;
    let manager = actor.has(Role::Manager);
    transition(
        db,
        actor,
        id,
        input.version,
        Action::IndeterminateResent,
        |campaign, who| {
            if !who.is_author && !manager {
                return Err(Refusal::Forbidden(
                    "Only the campaign's author or a manager may send its indeterminate recipients again."
                        .into(),
                ));
            }
            match campaign.state {
                CampaignState::Sent => campaign.state = CampaignState::Sending,
                CampaignState::Sending | CampaignState::Paused => {}
                other => {
                    return Err(Refusal::State(format!(
                        "The campaign is {other}: only a campaign that is sending, paused or sent has indeterminate recipients to send again."
                    )))
                }
            }
            Ok(Freeze::Requeue(input.contact_ids.clone()))
        },
    )
    .await
}

/// The audience through the engine now, with its hash (what an approval names), the allowed
/// members of the first page who still cannot be sent it, and one message rendered for the
/// first who can.
pub async fn preview(
    db: &Db,
    actor: &Actor,
    rules: &Rules<'_>,
    id: Uuid,
) -> ServiceResult<CampaignPreview> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Campaign, id))).await?;
    let campaign = store::campaigns::get(db, id)
        .await?
        .ok_or(ServiceError::NotFound("campaign"))?;
    let (members, left_out) = decisions::members(db, &campaign.content.audience).await?;
    let ids: Vec<Uuid> = members.iter().map(|(id, _)| *id).collect();
    let request = decision_request(&campaign, decisions::MAX_AUDIENCE_PAGE);
    // Audits the decisions shown as reads of those contacts.
    let decided = decisions::decide_members(db, actor, &request, &members, left_out).await?;
    let allowed = allowed_in(&decided);
    // Named in the preview: the first ones the engine leaves out (the rest are counted).
    let mut named: Vec<Uuid> = decided
        .decisions
        .iter()
        .filter(|m| !m.allowed)
        .take(NAMED_IN_PREVIEW)
        .map(|m| m.contact_id)
        .collect();
    let template = Templates::parse(&campaign.content)?;
    let links = preview_links(db, &decided).await?;
    let mut unsendable = Vec::new();
    let mut sample = None;
    // Decisions come in contact id order, so `allowed` is sorted.
    let mut read = allowed.clone();
    read.extend_from_slice(&named);
    let recipients = store::contacts::recipients(db, &read).await?;
    for recipient in recipients
        .iter()
        .filter(|r| allowed.binary_search(&r.id).is_ok())
    {
        match template.render(&campaign.content, rules, recipient, links) {
            Ok(message) => {
                if sample.is_none() {
                    named.push(message.contact_id);
                    sample = Some(message);
                }
            }
            Err(why) => {
                if unsendable.len() < NAMED_IN_PREVIEW {
                    named.push(why.contact_id);
                }
                unsendable.push(why);
            }
        }
    }
    let unsendable_count = unsendable.len() as u64;
    unsendable.truncate(NAMED_IN_PREVIEW);
    named.sort_unstable();
    let names = recipients
        .iter()
        .filter(|r| named.binary_search(&r.id).is_ok())
        .map(|r| PersonName {
            contact_id: r.id,
            first_name: r.first_name.clone(),
            last_name: r.last_name.clone(),
        })
        .collect();
    Ok(CampaignPreview {
        content_hash: campaign.content_hash,
        audience_hash: audience_hash(&ids),
        decisions: decided,
        unsendable,
        unsendable_count,
        sample,
        names,
    })
}

/// The message as the first member of the campaign's audience who may be sent it now would get
/// it (the preview's sample), or none when nobody among the preview's first 1,000 can be.
/// Members are decided in contact id order a few at a time, stopping at the first whose message
/// renders, so only those decided are recorded as read.
pub(crate) async fn first_sendable(
    db: &Db,
    actor: &Actor,
    rules: &Rules<'_>,
    campaign: &Campaign,
) -> ServiceResult<Option<RenderedMessage>> {
    const AT_ONCE: usize = 50;
    let (members, _) = decisions::members(db, &campaign.content.audience).await?;
    let template = Templates::parse(&campaign.content)?;
    // Among the members the preview decides (the first page), so the test is its sample.
    let first_page = members.len().min(decisions::MAX_AUDIENCE_PAGE as usize);
    for some in members[..first_page].chunks(AT_ONCE) {
        let request = decision_request(campaign, some.len() as i64);
        let decided = decisions::decide_members(db, actor, &request, some, 0).await?;
        let allowed = allowed_in(&decided);
        if allowed.is_empty() {
            continue;
        }
        let links = preview_links(db, &decided).await?;
        for recipient in store::contacts::recipients(db, &allowed).await? {
            if let Ok(message) = template.render(&campaign.content, rules, &recipient, links) {
                return Ok(Some(message));
            }
        }
    }
    Ok(None)
}

/// The members a page of decisions allows, in contact id order.
fn allowed_in(decided: &assent_shared::api::AudienceDecisionResponse) -> Vec<Uuid> {
    decided
        .decisions
        .iter()
        .filter(|m| m.allowed)
        .map(|m| m.contact_id)
        .collect()
}

/// How many of those left out (by the engine, or as unsendable) a preview names.
const NAMED_IN_PREVIEW: usize = 100;

/// The request that decides a page of `limit` of the campaign's audience for its message, now.
fn decision_request(campaign: &Campaign, limit: i64) -> AudienceDecisionRequest {
    AudienceDecisionRequest {
        audience: campaign.content.audience.clone(),
        message: campaign.content.message.clone(),
        named_person: None,
        as_of: None,
        after: None,
        limit: Some(limit),
    }
}

/// The links of a previewed message (they lead nowhere), with the footer the policy the
/// audience's decisions were made under asks for.
async fn preview_links(
    db: &Db,
    decided: &assent_shared::api::AudienceDecisionResponse,
) -> ServiceResult<Links<'static>> {
    let policy = store::policies::in_force(db, Some(decided.decided_for)).await?;
    Ok(Links {
        unsubscribe: PREVIEW_LINK,
        preferences: PREVIEW_LINK,
        confirm: None,
        consent: None,
        preferences_footer: policy.policy.service_preferences_link,
    })
}

/// The links a message carries for its recipient.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    pub unsubscribe: &'a str,
    pub preferences: &'a str,
    /// The page that confirms the sign-up a standing campaign's message answers.
    pub confirm: Option<&'a str>,
    /// What the consent receipt a standing campaign's message is states.
    pub consent: Option<&'a ConsentValues>,
    /// A service email ends with the link to the reader's preferences (the policy's
    /// `service_preferences_link`).
    pub preferences_footer: bool,
}

/// A campaign's subject and body, parsed once for all its recipients.
pub struct Templates {
    subject: Option<Template>,
    body: Template,
}

impl Templates {
    pub fn parse(content: &CampaignInput) -> ServiceResult<Templates> {
        let corrupt = |e: crate::template::TemplateError| {
            // A saved campaign's templates were checked when it was saved.
            ServiceError::BadRequest(format!("the campaign's template no longer parses: {e}"))
        };
        Ok(Templates {
            subject: content
                .subject
                .as_deref()
                .map(Template::parse)
                .transpose()
                .map_err(corrupt)?,
            body: Template::parse(&content.body).map_err(corrupt)?,
        })
    }

    /// Where `recipient`'s message goes, or why it cannot be sent to them: everything
    /// [`Self::render`] would refuse (no address, every address bouncing, a merge field without a
    /// value), found without rendering anything.
    pub fn address(
        &self,
        content: &CampaignInput,
        recipient: &Recipient,
    ) -> Result<String, Unsendable> {
        // The links are always there: they never make a field missing; nor do a sign-up form's
        // own fields, which only its standing campaigns (no one writes them by hand) use.
        let consent = ConsentValues::default();
        let links = Links {
            unsubscribe: PREVIEW_LINK,
            preferences: PREVIEW_LINK,
            confirm: Some(PREVIEW_LINK),
            consent: Some(&consent),
            preferences_footer: false,
        };
        let values = values_of(recipient, links);
        self.checked_address(content, recipient, &values)
    }

    fn checked_address(
        &self,
        content: &CampaignInput,
        recipient: &Recipient,
        values: &Values<'_>,
    ) -> Result<String, Unsendable> {
        let (to, flagged) = match content.message.channel {
            Channel::Email => (recipient.email.clone(), recipient.email_flagged),
            _ => (recipient.phone.clone(), recipient.phone_flagged),
        };
        let Some(to) = to else {
            // Every address or number bounced, or there is none.
            let bouncing = flagged;
            return Err(Unsendable {
                contact_id: recipient.id,
                reason: if bouncing {
                    "address_bouncing"
                } else {
                    "no_contact_point"
                }
                .into(),
                field: None,
            });
        };
        let mut absent = self.body.missing(values);
        if let Some(subject) = &self.subject {
            absent.extend(subject.missing(values));
        }
        absent.sort();
        match absent.first() {
            Some(first) => Err(missing_field(recipient, *first)),
            None => Ok(to),
        }
    }

    /// The message `recipient` gets, or why they cannot be sent it.
    pub fn render(
        &self,
        content: &CampaignInput,
        rules: &Rules<'_>,
        recipient: &Recipient,
        links: Links<'_>,
    ) -> Result<RenderedMessage, Unsendable> {
        let values = values_of(recipient, links);
        let to = self.checked_address(content, recipient, &values)?;
        let channel = content.message.channel;
        let missing = |field: MergeField| missing_field(recipient, field);
        let subject = self.subject.as_ref().and_then(|s| s.fill(&values));
        if channel != Channel::Email {
            let text = self
                .body
                .fill(&values)
                .ok_or(missing(MergeField::FirstName))?;
            return Ok(RenderedMessage {
                contact_id: recipient.id,
                to,
                subject: None,
                text,
                html: None,
            });
        }
        let mut markdown = self
            .body
            .markdown(&values)
            .ok_or(missing(MergeField::FirstName))?;
        markdown.push_str(&footer(content.message.kind, rules.identity, links));
        let (html, text) = render(&markdown);
        Ok(RenderedMessage {
            contact_id: recipient.id,
            to,
            subject,
            text,
            html: Some(html),
        })
    }
}

/// The merge values of `recipient`'s message.
fn values_of<'a>(recipient: &'a Recipient, links: Links<'a>) -> Values<'a> {
    Values {
        first_name: recipient.first_name.as_deref(),
        last_name: recipient.last_name.as_deref(),
        company: recipient.company.as_deref(),
        unsubscribe_url: links.unsubscribe,
        preferences_url: links.preferences,
        confirm_url: links.confirm,
        consent: links.consent,
    }
}

/// `recipient` has no value for `field`, which the message uses without a default.
fn missing_field(recipient: &Recipient, field: MergeField) -> Unsendable {
    Unsendable {
        contact_id: recipient.id,
        reason: "missing_merge_field".into(),
        field: Some(field.name().into()),
    }
}

/// The footer of every email: who sends it (name and postal address), and a neutral link to the
/// reader's preference centre: always in marketing (whose unsubscribe link is in the body), and in
/// a service email when the policy says so (`service_preferences_link`; nothing there asks them to
/// opt in: such an email would itself be marketing).
fn footer(kind: MessageKind, identity: &SenderIdentity, links: Links<'_>) -> String {
    let mut footer = String::from("\n\n----\n\n");
    let who: Vec<String> = [
        identity.organisation.as_deref(),
        identity.postal_address.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(markdown_escape)
    .collect();
    if !who.is_empty() {
        footer.push_str(&who.join(", "));
        footer.push_str("\n\n");
    }
    if kind == MessageKind::Marketing || links.preferences_footer {
        footer.push_str(&format!(
            "[Your contact preferences]({})\n",
            links.preferences
        ));
    }
    footer
}

/// What the actor is to the campaign in a transition.
struct Who {
    user_id: Uuid,
    is_author: bool,
    at: chrono::DateTime<chrono::Utc>,
}

/// Why a transition is refused.
enum Refusal {
    Forbidden(String),
    State(String),
    Invalid(FieldErrors),
}

/// What a transition writes besides the campaign: the frozen audience, or the outbox.
enum Freeze {
    Keep,
    Drop,
    Members(Vec<Uuid>),
    /// The outbox rows of every frozen member (sending starts).
    Enqueue(Vec<store::outbox::NewRow>),
    /// The rows still queued end `not_sent` (the campaign is cancelled).
    CancelQueued,
    /// The indeterminate rows of these contacts are queued again (each must be indeterminate).
    Requeue(Vec<Uuid>),
}

/// Loads the campaign for update in one transaction, checks its version, lets `change` move it
/// (or refuse), and saves it with its audit record. A refusal of rights is audited.
async fn transition(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    version: i64,
    action: Action,
    change: impl FnOnce(&mut Campaign, &Who) -> Result<Freeze, Refusal>,
) -> ServiceResult<Campaign> {
    let object = Some((ObjectKind::Campaign, id));
    let staff = access::staff(db, actor, "changes a campaign").await?;
    let mut tx = db.begin().await?;
    let mut campaign = store::campaigns::get_for_update(&mut tx, id)
        .await?
        .ok_or(ServiceError::NotFound("campaign"))?;
    if campaign.standing {
        return Err(ServiceError::WrongState(
            "This campaign sends a sign-up form's confirmations as people sign up: it is not changed by hand. Retire the form to stop it.".into(),
        ));
    }
    let who = Who {
        user_id: staff.user.id,
        is_author: campaign.author_id == staff.user.id,
        at: clock::now(),
    };
    let current = campaign.version;
    let stale = StaleRecord {
        version: current,
        updated_by: assent_shared::api::ActorRef::Staff {
            id: campaign.updated_by,
        },
        updated_at: campaign.updated_at,
    };
    let freeze = match change(&mut campaign, &who) {
        Ok(freeze) => freeze,
        Err(Refusal::Forbidden(message)) => {
            return Err(access::refuse_in(tx, actor, object, message).await?)
        }
        Err(Refusal::State(message)) => return Err(ServiceError::WrongState(message)),
        Err(Refusal::Invalid(errors)) => return Err(errors.into()),
    };
    if current != version {
        return Err(access::stale(tx, stale).await?);
    }
    campaign.version = current + 1;
    campaign.updated_by = who.user_id;
    campaign.updated_at = who.at;
    let mut named = Vec::new();
    match freeze {
        Freeze::Keep => {}
        Freeze::Drop => store::campaigns::freeze_members(&mut tx, id, &[]).await?,
        Freeze::Members(ids) => store::campaigns::freeze_members(&mut tx, id, &ids).await?,
        Freeze::Enqueue(rows) => {
            let channel = campaign.content.message.channel.as_str();
            store::outbox::enqueue(&mut tx, id, channel, "", &rows, who.at).await?
        }
        Freeze::CancelQueued => store::outbox::cancel_queued(&mut tx, id, who.at).await?,
        Freeze::Requeue(contacts) => {
            let requeued =
                store::outbox::requeue_indeterminate(&mut tx, id, &contacts, who.at).await?;
            if requeued.len() != contacts.len() {
                let mut errors = FieldErrors::default();
                errors.add(
                    "contact_ids",
                    format!(
                        "names {} recipients who are not indeterminate in this campaign: nothing was sent again",
                        contacts.len() - requeued.len()
                    ),
                );
                return Err(errors.into());
            }
            named = contacts;
        }
    }
    if !store::campaigns::save(&mut tx, &campaign, current).await? {
        return Err(ServiceError::Conflict(
            "Someone else changed this campaign at the same moment, so nothing was saved. Try again.",
        ));
    }
    let record = actor
        .audit(action)
        .on(ObjectKind::Campaign, id)
        .on_each(ObjectKind::Contact, named);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(campaign)
}

/// An edit drops the approval and any decision on the campaign.
fn back_to_draft(campaign: &mut Campaign) {
    campaign.state = CampaignState::Draft;
    campaign.submitted_at = None;
    campaign.decided_by = None;
    campaign.decided_at = None;
    campaign.rejection_reason = None;
    campaign.frozen_members = None;
    campaign.audience_hash = None;
}

/// The topic of a marketing `message`, one the catalogue offers today (a refusal is added to
/// `errors` as `message.topic`); none for a service message.
pub(super) async fn checked_topic(
    db: &Db,
    message: &Message,
    errors: &mut FieldErrors,
) -> ServiceResult<String> {
    if message.kind != MessageKind::Marketing {
        return Ok(String::new());
    }
    let catalogue = store::topics::in_force(db).await?;
    match catalogue.topics.iter().find(|t| t.key == message.topic) {
        Some(entry) if entry.retired => errors.add(
            "message.topic",
            "is retired in the topic catalogue: choose a current topic",
        ),
        Some(entry) => return Ok(entry.key.clone()),
        None if message.topic.is_empty() => errors.add(
            "message.topic",
            "is required for marketing: choose a topic of the catalogue",
        ),
        None => errors.add("message.topic", "is not a topic of the catalogue"),
    }
    Ok(String::new())
}

/// The content as saved: text trimmed, templates parsed, the topic one the catalogue offers.
async fn checked_content(db: &Db, input: &CampaignInput) -> ServiceResult<CampaignInput> {
    let mut errors = FieldErrors::default();
    let name = errors.check("name", parse_text(&input.name, NAME_MAX));
    let message = &input.message;
    match message.channel {
        Channel::Email | Channel::Sms => {}
        Channel::Any => errors.add(
            "message.channel",
            "is \"any\": a message goes out on one channel",
        ),
        _ => errors.add(
            "message.channel",
            "phone, post and fax are logged on the contact, not sent: a campaign is email or sms",
        ),
    }
    let topic = checked_topic(db, message, &mut errors).await?;
    let third_party = errors
        .check(
            "message.third_party",
            parse_optional_text(message.third_party.as_deref(), NAME_MAX),
        )
        .flatten();
    let subject = match (message.channel, input.subject.as_deref()) {
        (Channel::Email, Some(subject)) => errors
            .check("subject", parse_text(subject, NAME_MAX))
            .inspect(|s| match Template::parse(s) {
                Err(e) => errors.add("subject", e.to_string()),
                Ok(t) => {
                    if let Some(field) = signup_only(&t) {
                        errors.add("subject", signup_only_problem(field));
                    }
                }
            }),
        (Channel::Email, None) => {
            errors.add("subject", "is required for an email");
            None
        }
        (_, Some(_)) => {
            errors.add("subject", "only an email has a subject");
            None
        }
        (_, None) => None,
    };
    let max = if message.channel == Channel::Sms {
        SMS_MAX
    } else {
        NOTES_MAX
    };
    let body = match errors.check("body", parse_notes(Some(&input.body), max)) {
        Some(Some(body)) => {
            match Template::parse(&body) {
                Err(e) => errors.add("body", e.to_string()),
                Ok(t) => {
                    if let Some(field) = signup_only(&t) {
                        errors.add("body", signup_only_problem(field));
                    }
                }
            }
            Some(body)
        }
        Some(None) => {
            errors.add("body", "is empty");
            None
        }
        None => None,
    };
    if let assent_shared::api::Audience::ContactIds(ids) = &input.audience {
        if ids.is_empty() {
            errors.add(
                "audience.contact_ids",
                "is empty: name at least one contact",
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    Ok(CampaignInput {
        // Each is Some once no field is in error.
        name: name.unwrap_or_default(),
        message: Message {
            kind: message.kind,
            channel: message.channel,
            topic,
            third_party,
        },
        subject,
        body: body.unwrap_or_default(),
        audience: input.audience.clone(),
    })
}

/// The first field of `template` that only a sign-up form's messages have.
fn signup_only(template: &Template) -> Option<MergeField> {
    MergeField::ALL
        .into_iter()
        .find(|f| f.is_signup_only() && template.uses(*f))
}

fn signup_only_problem(field: MergeField) -> String {
    format!(
        "{{{{{}}}}} is only in the messages a sign-up form sends",
        field.name()
    )
}

/// What blocks a submission: a marketing email without its unsubscribe link or without the
/// sender's name and postal address; a marketing SMS without an opt-out instruction.
fn blocking_checks(content: &CampaignInput, rules: &Rules<'_>) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::default();
    if content.message.kind != MessageKind::Marketing {
        return Ok(());
    }
    let Ok(body) = Template::parse(&content.body) else {
        errors.add("body", "does not parse");
        return Err(errors);
    };
    match content.message.channel {
        Channel::Email => {
            if !body.uses(MergeField::UnsubscribeUrl) {
                errors.add(
                    "body",
                    "a marketing email must hold the unsubscribe link {{unsubscribe_url}} (PECR reg 22(2) and 23)",
                );
            }
            let identity = rules.identity;
            if identity.organisation.is_none() || identity.postal_address.is_none() {
                errors.add(
                    "sender_identity",
                    "marketing names its sender: organisation_name and organisation_postal_address must be configured (ask an administrator)",
                );
            }
        }
        Channel::Sms => {
            let says_stop = body
                .literal_text()
                .split(|c: char| !c.is_alphanumeric())
                .any(|word| word == "STOP");
            let linked = body.uses(MergeField::UnsubscribeUrl);
            if !rules.sms_takes_replies && !linked {
                errors.add(
                    "body",
                    "text messages come from a sender id people cannot reply to (sms_from): a marketing SMS must hold the opt-out link {{unsubscribe_url}}",
                );
            } else if !says_stop && !linked {
                errors.add(
                    "body",
                    "a marketing SMS must say how to opt out: \"Reply STOP to opt out\", or the link {{unsubscribe_url}}",
                );
            }
        }
        _ => {}
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The organisation's marketing phrases found in a service message's subject and body.
fn flags(content: &CampaignInput, rules: &Rules<'_>) -> Vec<String> {
    if content.message.kind != MessageKind::Service {
        return Vec::new();
    }
    let text = format!(
        "{} {}",
        content.subject.as_deref().unwrap_or_default(),
        content.body
    )
    .to_lowercase();
    rules
        .marketing_phrases
        .iter()
        .filter(|phrase| contains_phrase(&text, phrase))
        .cloned()
        .collect()
}

/// Whether `phrase` stands in `text` as words (not inside a longer word: "sale" is not in
/// "wholesale").
fn contains_phrase(text: &str, phrase: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    text.match_indices(phrase).any(|(at, found)| {
        let before = text[..at].chars().next_back();
        let after = text[at + found.len()..].chars().next();
        let starts = !phrase.starts_with(char::is_alphanumeric) || !word(before);
        let ends = !phrase.ends_with(char::is_alphanumeric) || !word(after);
        starts && ends
    })
}

/// SHA-256 of the content as saved, hex.
pub(super) fn content_hash(content: &CampaignInput) -> ServiceResult<String> {
    let bytes = serde_json::to_vec(content)
        .map_err(|_| ServiceError::Store(store::StoreError::Encode("a campaign's content")))?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

/// SHA-256 of the member ids in order, hex.
pub fn audience_hash(ids: &[Uuid]) -> String {
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_shared::api::Audience;

    fn marketing(channel: Channel, body: &str) -> CampaignInput {
        CampaignInput {
            name: "Winter".into(),
            message: Message {
                kind: MessageKind::Marketing,
                channel,
                topic: "boilers".into(),
                third_party: None,
            },
            subject: None,
            body: body.into(),
            audience: Audience::Everyone,
        }
    }

    fn fields(result: Result<(), FieldErrors>) -> Vec<String> {
        result
            .err()
            .map(|e| e.0.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn marketing_needs_its_opt_out_and_its_sender_named() {
        let nobody = SenderIdentity {
            organisation: None,
            postal_address: Some("1 Quay Street, Bristol".into()),
            from: "news@harbour-heating.example".into(),
            reply_to: None,
        };
        let known = SenderIdentity {
            organisation: Some("Harbour Heating Ltd".into()),
            ..nobody.clone()
        };
        let rules = |identity| Rules {
            identity,
            marketing_phrases: &[],
            sms_takes_replies: true,
        };
        let email = marketing(Channel::Email, "Hi. [Unsubscribe]({{unsubscribe_url}})");
        assert_eq!(
            fields(blocking_checks(&email, &rules(&known))),
            Vec::<String>::new()
        );
        assert_eq!(
            fields(blocking_checks(&email, &rules(&nobody))),
            ["sender_identity"]
        );
        let sms = |body| blocking_checks(&marketing(Channel::Sms, body), &rules(&nobody));
        assert_eq!(
            fields(sms("Boilers half price. Reply STOP to opt out")),
            Vec::<String>::new()
        );
        assert_eq!(
            fields(sms("Boilers: {{unsubscribe_url}}")),
            Vec::<String>::new()
        );
        assert_eq!(
            fields(sms("Boilers half price. Stop by our shop")),
            ["body"]
        );
        assert_eq!(fields(sms("Boilers half price. NONSTOP deals")), ["body"]);
        let alphanumeric = Rules {
            sms_takes_replies: false,
            ..rules(&nobody)
        };
        let from_a_name = |body| blocking_checks(&marketing(Channel::Sms, body), &alphanumeric);
        assert_eq!(
            fields(from_a_name("Boilers half price. Reply STOP to opt out")),
            ["body"],
            "no one can reply STOP to a name"
        );
        assert_eq!(
            fields(from_a_name("Boilers: {{unsubscribe_url}}")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_phrase_is_found_as_words_only() {
        assert!(contains_phrase("our winter sale starts", "sale"));
        assert!(!contains_phrase("wholesale prices", "sale"));
        assert!(contains_phrase("20% off today", "% off"));
        assert!(contains_phrase("season's greetings!", "season's greetings"));
        assert!(!contains_phrase("an offering", "offer"));
    }
}
