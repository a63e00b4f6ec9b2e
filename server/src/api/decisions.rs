//! "May I send this to her?": the engine's answer for one contact and a message draft, now or as
//! of a past moment, with its basis, reasons, evidence and explanation.

use std::collections::BTreeMap;

use assent_shared::api::{
    Audience, AudienceDecisionRequest, AudienceDecisionResponse, AudienceMember, Count,
    DecisionRequest, DecisionResponse,
};
use assent_shared::domain::SubscriberKind;
use assent_shared::ledger::{Basis, Channel, LedgerEvent, Reason, Subject};
use axum::extract::State;
use axum::Json as Reply;
use uuid::Uuid;

use super::contacts::CONTACT_ROLES;
use super::error::{ApiResult, Error};
use super::extract::Json;
use super::AppState;
use crate::audit::{Action, ObjectKind};
use crate::auth::Caller;
use crate::engine::{decide, explain::explain, CompiledPolicy, Decision};
use crate::store;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(decide_one))
        .routes(routes!(decide_audience))
}

/// The largest page of per-contact decisions.
const MAX_AUDIENCE_PAGE: i64 = 1000;

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
    fn add(&mut self, contact_id: Uuid, decision: &Decision) {
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
                });
            } else {
                self.more = true;
            }
        }
    }
}

/// Decides for a whole audience — a list of contacts, a search, or everyone — and answers with
/// counts by basis and by reason over all of it, and one page of per-contact decisions in
/// contact id order (`next_cursor` for the next).
#[utoipa::path(post, path = "/decisions/audience", tag = "decisions", security(("bearer" = [])),
    request_body = AudienceDecisionRequest,
    responses((status = 200, body = AudienceDecisionResponse), (status = 403, body = assent_shared::api::ApiError),
              (status = 422, body = assent_shared::api::ApiError)))]
async fn decide_audience(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<AudienceDecisionRequest>,
) -> ApiResult<Reply<AudienceDecisionResponse>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let now = store::now();
    check_request(&request.message, request.as_of, now)?;
    let limit = request.limit.unwrap_or(100);
    if !(1..=MAX_AUDIENCE_PAGE).contains(&limit) {
        return Err(Error::field(
            "limit",
            format!("must be between 1 and {MAX_AUDIENCE_PAGE}"),
        ));
    }
    let members = match &request.audience {
        Audience::ContactIds(ids) => {
            let (found, missing) = store::contacts::audience_by_ids(&state.db, ids).await?;
            if let Some(first) = missing.first() {
                return Err(Error::field(
                    "audience.contact_ids",
                    format!(
                        "{} ids name no contact (the first is {first})",
                        missing.len()
                    ),
                ));
            }
            found
        }
        Audience::Search(text) => {
            store::contacts::audience_by_search(&state.db, Some(text)).await?
        }
        Audience::Everyone => store::contacts::audience_by_search(&state.db, None).await?,
        Audience::SavedFilter(filter_id) => {
            let filter = store::filters::get(&state.db, *filter_id)
                .await?
                .ok_or_else(|| Error::field("audience.saved_filter", "is not a saved filter"))?;
            store::contacts::audience_by_search(&state.db, Some(&filter.search)).await?
        }
    };
    let policy = store::policies::in_force(&state.db, request.as_of).await?;
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
    // Merge the members (in id order) with the ledgers streamed in contact id order; members
    // without a ledger are decided on an empty one.
    let mut next = 0;
    let decide_for =
        |tally: &mut AudienceTally, member: (Uuid, SubscriberKind), ledger: &[LedgerEvent]| {
            let subject = Subject {
                kind: member.1,
                named_person,
            };
            tally.add(
                member.0,
                &decide(&compiled, &subject, ledger, &request.message, decided_for),
            );
        };
    store::ledger::visit_all(&state.db, request.as_of, |contact_id, ledger| {
        while next < members.len() && members[next].0 < contact_id {
            decide_for(&mut tally, members[next], &[]);
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
        decide_for(&mut tally, *member, &[]);
    }
    // The per-contact answers shown are reads of those contacts' ledgers: audited one by one.
    let mut tx = state.db.begin().await?;
    for member in &tally.page {
        store::audit::append(
            &mut tx,
            &caller
                .audit(Action::DecisionMade)
                .on(ObjectKind::Contact, member.contact_id),
        )
        .await?;
    }
    tx.commit().await?;
    let next_cursor = if tally.more {
        tally.page.last().map(|m| m.contact_id)
    } else {
        None
    };
    Ok(Reply(AudienceDecisionResponse {
        total: tally.total,
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
    }))
}

/// What every decision request must satisfy: one channel, and a moment not in the future.
fn check_request(
    message: &assent_shared::ledger::Message,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<()> {
    if message.channel == Channel::Any {
        return Err(Error::field(
            "message.channel",
            "is \"any\": a message goes out on one channel",
        ));
    }
    if as_of.is_some_and(|t| t > now) {
        return Err(Error::field(
            "as_of",
            "is in the future: decisions can be asked for now or the past",
        ));
    }
    Ok(())
}

/// Decides whether a message may be sent to a contact. With `as_of`, the answer the system
/// would have given then: the ledger as it had been recorded by then, and the policy then in
/// force.
#[utoipa::path(post, path = "/decisions", tag = "decisions", security(("bearer" = [])), request_body = DecisionRequest,
    responses((status = 200, body = DecisionResponse), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError), (status = 422, body = assent_shared::api::ApiError)))]
async fn decide_one(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<DecisionRequest>,
) -> ApiResult<Reply<DecisionResponse>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let now = store::now();
    check_request(&request.message, request.as_of, now)?;
    let decided_for = request.as_of.unwrap_or(now);
    let id = request.contact_id;
    let (contact, recorded) =
        super::ledger::read_ledger(&state, &caller, id, Action::DecisionMade).await?;
    let policy = store::policies::in_force(&state.db, request.as_of).await?;
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
    Ok(Reply(DecisionResponse {
        contact_id: id,
        allowed: decision.allowed,
        basis: decision.basis,
        reasons: decision.reasons.iter().collect(),
        evidence,
        explanation: explain(&decision, &ledger, &request.message, &name),
        decided_for,
        policy_version: policy.version,
    }))
}
