//! "May I send this to her?": the engine's answer for one contact, or for a whole audience, now
//! or as of a past moment, with its basis, reasons, evidence and (for one contact) explanation.
//!
//! An audience holds active contacts only, whatever names it: a search, a saved filter and
//! "everyone" find active contacts, and a list of ids that names deactivated contacts leaves
//! them out and counts them (`left_out_inactive`). A deactivated contact can still be asked
//! about on its own.

use std::collections::BTreeMap;

use assent_engine::compact::CopiedLedger;
use assent_engine::{decide, explain::explain, CompiledPolicy, Decision};
use assent_shared::api::{
    Audience, AudienceDecisionRequest, AudienceDecisionResponse, AudienceMember, Count,
    DecisionRequest, DecisionResponse,
};
use assent_shared::domain::SubscriberKind;
use assent_shared::ledger::{Basis, Channel, Message, Reason, Subject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::access::{self, CONTACT_ROLES};
use super::{Actor, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::store::{self, ledger::Ledgers, Db};

/// The largest page of per-contact decisions.
pub const MAX_AUDIENCE_PAGE: i64 = 1000;

/// Up to this many members, an audience's ledgers are read by id; past it, every ledger head is
/// streamed once (reading a large share of them by id would be slower).
const READ_BY_ID_UP_TO: usize = 20_000;

/// What every decision request must satisfy: one channel, and a moment not in the future.
fn check_request(
    message: &Message,
    as_of: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    if message.channel == Channel::Any {
        return Err(ServiceError::field(
            "message.channel",
            "is \"any\": a message goes out on one channel",
        ));
    }
    if as_of.is_some_and(|t| t > now) {
        return Err(ServiceError::field(
            "as_of",
            "is in the future: decisions can be asked for now or the past",
        ));
    }
    Ok(())
}

/// Decides whether a message may be sent to one contact. With `as_of`, the answer the system
/// would have given then: the ledger as it had been recorded by then, and the policy then in
/// force. The decision reads the contact's ledger, and is audited as that read.
pub async fn decide_one(
    db: &Db,
    actor: &Actor,
    request: &DecisionRequest,
) -> ServiceResult<DecisionResponse> {
    let object = Some((ObjectKind::Contact, request.contact_id));
    access::require_any(db, actor, CONTACT_ROLES, object).await?;
    let now = clock::now();
    check_request(&request.message, request.as_of, now)?;
    let decided_for = request.as_of.unwrap_or(now);
    let id = request.contact_id;
    let (contact, recorded) = super::ledger::read(db, actor, id, Action::DecisionMade).await?;
    let policy = store::policies::in_force(db, request.as_of).await?;
    let ledger = store::ledger::for_engine(&recorded, request.as_of);
    let subject = Subject {
        kind: contact.subscriber_kind,
        named_person: request.named_person.unwrap_or(true),
    };
    let compiled = CompiledPolicy::new(policy.policy);
    let decision = decide(&compiled, &subject, &ledger, &request.message, decided_for);
    let name = [contact.first_name.as_deref(), contact.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let evidence = decision
        .evidence
        .as_slice()
        .iter()
        .filter_map(|&i| {
            ledger[i as usize]
                .id
                .as_deref()
                .and_then(|id| id.parse::<Uuid>().ok())
        })
        .collect();
    Ok(DecisionResponse {
        contact_id: id,
        allowed: decision.allowed,
        basis: decision.basis,
        reasons: decision.reasons.iter().collect(),
        evidence,
        explanation: explain(&decision, &ledger, &request.message, &name),
        decided_for,
        policy_version: policy.version,
    })
}

/// Tallies an audience's decisions and keeps one page of them.
struct AudienceTally {
    total: u64,
    allowed: u64,
    by_basis: BTreeMap<Basis, u64>,
    by_reason: BTreeMap<Reason, u64>,
    page: Vec<AudienceMember>,
    after: Option<Uuid>,
    limit: usize,
    more: bool,
}

impl AudienceTally {
    fn add(&mut self, contact_id: Uuid, decision: &Decision, ledger: &CopiedLedger) {
        self.total += 1;
        if decision.allowed {
            self.allowed += 1;
        }
        if let Some(basis) = decision.basis {
            *self.by_basis.entry(basis).or_default() += 1;
        }
        for reason in decision.reasons.iter() {
            *self.by_reason.entry(reason).or_default() += 1;
        }
        if self.after.is_none_or(|after| contact_id > after) {
            if self.page.len() < self.limit {
                self.page.push(AudienceMember {
                    contact_id,
                    allowed: decision.allowed,
                    basis: decision.basis,
                    reasons: decision.reasons.iter().collect(),
                    evidence_seqs: ledger.cited(&decision.evidence),
                });
            } else {
                self.more = true;
            }
        }
    }
}

/// The active contacts an audience names, in id order, and how many deactivated ones it named.
pub(crate) async fn members(
    db: &Db,
    audience: &Audience,
) -> ServiceResult<(Vec<(Uuid, SubscriberKind)>, u64)> {
    Ok(match audience {
        Audience::ContactIds(ids) => {
            let listed = store::contacts::audience_by_ids(db, ids).await?;
            if let Some(first) = listed.missing.first() {
                return Err(ServiceError::field(
                    "audience.contact_ids",
                    format!(
                        "{} ids name no contact (the first is {first})",
                        listed.missing.len()
                    ),
                ));
            }
            (listed.active, listed.inactive)
        }
        Audience::Search(text) => {
            let text = super::search_text(Some(&text.0))
                .map_err(|e| ServiceError::field("audience.search", e.0))?;
            (
                store::contacts::audience_by_search(db, text.as_deref()).await?,
                0,
            )
        }
        Audience::Everyone => (store::contacts::audience_by_search(db, None).await?, 0),
        Audience::SavedFilter(filter_id) => {
            let mut tx = db.begin_read().await?;
            let filter = store::filters::get(&mut tx, *filter_id)
                .await?
                .ok_or_else(|| {
                    ServiceError::field("audience.saved_filter", "is not a saved filter")
                })?;
            drop(tx);
            let search = Some(filter.search.as_str()).filter(|s| !s.is_empty());
            (store::contacts::audience_by_search(db, search).await?, 0)
        }
    })
}

/// Decides for a whole audience and answers with counts by basis and by reason over all of it,
/// and one page of per-contact decisions in contact id order (`next_cursor` for the next). Only
/// the contacts on the page are audited as read.
pub async fn decide_audience(
    db: &Db,
    actor: &Actor,
    request: &AudienceDecisionRequest,
) -> ServiceResult<AudienceDecisionResponse> {
    access::require_any(db, actor, CONTACT_ROLES, None).await?;
    let now = clock::now();
    check_request(&request.message, request.as_of, now)?;
    let limit = request.limit.unwrap_or(100);
    if !(1..=MAX_AUDIENCE_PAGE).contains(&limit) {
        return Err(ServiceError::field(
            "limit",
            format!("must be between 1 and {MAX_AUDIENCE_PAGE}"),
        ));
    }
    let (members, left_out_inactive) = members(db, &request.audience).await?;
    decide_members(db, actor, request, &members, left_out_inactive).await
}

/// [`decide_audience`] for members already found (in contact id order): a campaign's preview
/// decides the very members whose hash its approval names.
pub(crate) async fn decide_members(
    db: &Db,
    actor: &Actor,
    request: &AudienceDecisionRequest,
    members: &[(Uuid, SubscriberKind)],
    left_out_inactive: u64,
) -> ServiceResult<AudienceDecisionResponse> {
    let now = clock::now();
    let limit = request.limit.unwrap_or(100);
    let policy = store::policies::in_force(db, request.as_of).await?;
    let compiled = CompiledPolicy::new(policy.policy);
    let decided_for = request.as_of.unwrap_or(now);
    let named_person = request.named_person.unwrap_or(true);
    let mut tally = AudienceTally {
        total: 0,
        allowed: 0,
        by_basis: BTreeMap::new(),
        by_reason: BTreeMap::new(),
        page: Vec::new(),
        after: request.after,
        limit: limit as usize,
        more: false,
    };
    let decide_for =
        |tally: &mut AudienceTally, (id, kind): (Uuid, SubscriberKind), ledger: &CopiedLedger| {
            let subject = Subject { kind, named_person };
            let decision = decide(
                &compiled,
                &subject,
                &ledger.events,
                &request.message,
                decided_for,
            );
            tally.add(id, &decision, ledger);
        };
    // Merge the members (in id order) with the ledgers read in contact id order; members without
    // a ledger are decided on an empty one.
    let ids: Vec<Uuid>;
    let which = if members.len() <= READ_BY_ID_UP_TO {
        ids = members.iter().map(|(id, _)| *id).collect();
        Ledgers::Of(&ids)
    } else {
        Ledgers::Every
    };
    let empty = CopiedLedger::default();
    let mut next = 0;
    store::ledger::visit(db, which, request.as_of, |contact_id, ledger| {
        while next < members.len() && members[next].0 < contact_id {
            decide_for(&mut tally, members[next], &empty);
            next += 1;
        }
        // Only members' ledgers are decoded.
        if next < members.len() && members[next].0 == contact_id {
            decide_for(&mut tally, members[next], &ledger()?);
            next += 1;
        }
        Ok(())
    })
    .await?;
    for member in &members[next..] {
        decide_for(&mut tally, *member, &empty);
    }
    // The per-contact answers shown are reads of those contacts' ledgers: one record names them.
    let record = actor.audit_each(
        Action::DecisionMade,
        ObjectKind::Contact,
        tally.page.iter().map(|member| member.contact_id),
    );
    store::audit::record_read(db, record).await?;
    let next_cursor = if tally.more {
        tally.page.last().map(|m| m.contact_id)
    } else {
        None
    };
    Ok(AudienceDecisionResponse {
        total: tally.total,
        left_out_inactive,
        allowed: tally.allowed,
        denied: tally.total - tally.allowed,
        by_basis: tally
            .by_basis
            .into_iter()
            .map(|(key, contacts)| Count { key, contacts })
            .collect(),
        by_reason: tally
            .by_reason
            .into_iter()
            .map(|(key, contacts)| Count { key, contacts })
            .collect(),
        decisions: tally.page,
        next_cursor,
        decided_for,
        policy_version: policy.version,
    })
}
