//! "May I send this to her?": the engine's answer for one contact and a message draft, now or as
//! of a past moment, with its basis, reasons, evidence and explanation.

use assent_shared::api::{DecisionRequest, DecisionResponse};
use assent_shared::ledger::{Channel, Subject};
use axum::extract::State;
use axum::Json as Reply;
use uuid::Uuid;

use super::contacts::CONTACT_ROLES;
use super::error::{ApiResult, Error};
use super::extract::Json;
use super::AppState;
use crate::audit::{Action, ObjectKind};
use crate::auth::Caller;
use crate::engine::{decide, explain::explain, CompiledPolicy};
use crate::store;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(decide_one))
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
    if request.message.channel == Channel::Any {
        return Err(Error::field(
            "message.channel",
            "is \"any\": a message goes out on one channel",
        ));
    }
    let now = store::now();
    if request.as_of.is_some_and(|t| t > now) {
        return Err(Error::field(
            "as_of",
            "is in the future: decisions can be asked for now or the past",
        ));
    }
    let decided_for = request.as_of.unwrap_or(now);
    let id = request.contact_id;
    let mut tx = state.db.begin().await?;
    let contact = store::contacts::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("contact"))?;
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::DecisionMade)
            .on(ObjectKind::Contact, id),
    )
    .await?;
    let recorded = store::ledger::for_contact(&mut tx, id).await?;
    tx.commit().await?;
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
