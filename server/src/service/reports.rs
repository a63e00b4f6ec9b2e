//! The reports that come back about messages already sent, forwarded by the organisation's
//! mail system (`mail::reports` reads them): a bounce reported later flags the address the
//! message went to, as a hard bounce at send does; a complaint (the person marked it as
//! unwanted) is recorded as their opt-out from the message's topic on its channel. Both are the
//! `mail_reports` system job's doing, audited, and committed before the caller answers.

use assent_shared::api::EventSource;
use assent_shared::domain::SystemJob;
use assent_shared::ledger::{MessageKind, ALL_TOPICS};

use super::unsubscribe::{self, Scope, Stop};
use super::{Actor, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::mail::reports::{self, ReportKind};
use crate::store::contacts::AddressFlag;
use crate::store::outbox::{self, MessageRef};
use crate::store::{self, Db};

/// What was done with a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The address the message went to is flagged as bouncing.
    AddressFlagged,
    /// The complaint is recorded as an opt-out (0 when one was already in force).
    OptOut { recorded: usize },
    /// Nothing to do: the report is not a hard bounce nor a complaint (a delay, a success, a
    /// refusal of the message rather than the mailbox), or the message never went out.
    Nothing,
}

/// Takes one report, as received. `return_path` is the configured return path (its local part
/// tags messages). A report about no message Assent made is `NotFound`.
pub async fn take(db: &Db, return_path: Option<&str>, raw: &[u8]) -> ServiceResult<Taken> {
    let local = return_path.and_then(|p| p.split_once('@')).map(|(l, _)| l);
    let report = reports::read(raw, local);
    if report.kind == ReportKind::Other {
        return Ok(Taken::Nothing);
    }
    let mut made = None;
    let tagged = report
        .tags
        .iter()
        .filter_map(|t| uuid::Uuid::try_parse(t).ok())
        .map(MessageRef::Row);
    let named = report
        .message_ids
        .iter()
        .map(|m| MessageRef::MessageId(m.as_str()));
    for reference in tagged.chain(named) {
        if let Some(found) = outbox::made(db, reference).await? {
            made = Some(found);
            break;
        }
    }
    let made = made.ok_or(ServiceError::NotFound("message"))?;
    let actor = Actor::System(SystemJob::MailReports);
    let now = clock::now();
    match report.kind {
        ReportKind::HardBounce { status } => {
            let Some(address) = made.contact_point.as_deref() else {
                return Ok(Taken::Nothing);
            };
            let reason = format!("bounce_report:{status}");
            let flag = AddressFlag {
                contact_id: made.contact_id,
                channel: "email",
                address,
                reason: &reason,
                outbox_id: Some(made.id),
                at: now,
            };
            let record = actor
                .audit(Action::AddressFlagged)
                .on(ObjectKind::Contact, made.contact_id);
            outbox::bounced_later(db, &flag, &record).await?;
            Ok(Taken::AddressFlagged)
        }
        ReportKind::Complaint { feedback_type } => {
            let campaign = store::campaigns::get(db, made.campaign_id)
                .await?
                .ok_or(ServiceError::NotFound("message"))?;
            let message = &campaign.content.message;
            // A complaint about a service message still objects to being marketed to: every
            // topic, on that channel.
            let (topic, name) = match message.kind {
                MessageKind::Marketing => (message.topic.clone(), message.topic.clone()),
                MessageKind::Service => (ALL_TOPICS.to_owned(), "everything".to_owned()),
            };
            let scope = Scope {
                channel: message.channel,
                topic,
                name,
            };
            let stop = Stop {
                actor: &actor,
                action: Action::ComplaintRecorded,
                contact_id: made.contact_id,
                campaign_id: Some(made.campaign_id),
                source: EventSource {
                    recording_reference: Some(format!(
                        "complaint: a feedback report ({feedback_type}) about message <{}>",
                        made.message_id
                    )),
                    ..EventSource::default()
                },
            };
            let recorded = unsubscribe::record(db, &stop, std::slice::from_ref(&scope)).await?;
            Ok(Taken::OptOut { recorded })
        }
        ReportKind::Other => Ok(Taken::Nothing),
    }
}
