//! The organisation's compliance policy: read by everyone, changed by administrators and the data
//! protection lead, every version kept.

use assent_shared::api::{PolicyChange, PolicyVersion};
use assent_shared::domain::{parse_notes, parse_text, Role};
use assent_shared::validate::{FieldErrors, NAME_MAX};
use axum::extract::State;
use axum::Json as Reply;

use super::error::ApiResult;
use super::extract::Json;
use super::AppState;
use crate::audit::Action;
use crate::auth::Caller;
use crate::store;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(current_policy, change_policy))
        .routes(routes!(policy_history))
}

/// The policy in force.
#[utoipa::path(get, path = "/policy", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = PolicyVersion), (status = 401, body = assent_shared::api::ApiError)))]
async fn current_policy(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Reply<PolicyVersion>> {
    Ok(Reply(store::policies::in_force(&state.db, None).await?))
}

/// Every version of the policy, newest first: who changed what, when and why.
#[utoipa::path(get, path = "/policy/history", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = Vec<PolicyVersion>), (status = 403, body = assent_shared::api::ApiError)))]
async fn policy_history(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Reply<Vec<PolicyVersion>>> {
    caller
        .require_any(&state, &[Role::Admin, Role::Dpo])
        .await?;
    Ok(Reply(store::policies::history(&state.db).await?))
}

/// Puts a new version of the policy in force (administrators and the data protection lead).
#[utoipa::path(put, path = "/policy", tag = "policy", security(("bearer" = [])), request_body = PolicyChange,
    responses((status = 200, body = PolicyVersion), (status = 403, body = assent_shared::api::ApiError),
              (status = 422, body = assent_shared::api::ApiError)))]
async fn change_policy(
    State(state): State<AppState>,
    caller: Caller,
    Json(change): Json<PolicyChange>,
) -> ApiResult<Reply<PolicyVersion>> {
    caller
        .require_any(&state, &[Role::Admin, Role::Dpo])
        .await?;
    let mut errors = FieldErrors::default();
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
        .check("note", parse_notes(change.note.as_deref(), 2000))
        .flatten();
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let mut tx = state.db.begin().await?;
    store::audit::append(&mut tx, &caller.audit(Action::PolicyChanged)).await?;
    let version = store::policies::save(
        &mut tx,
        &change.policy,
        caller.user.id,
        store::now(),
        note.as_deref(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(version = version.version, "policy changed");
    Ok(Reply(version))
}
