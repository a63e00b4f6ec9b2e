//! `/policy`: the organisation's compliance policy and its versions (`service::policy`).

use assent_shared::api::{ApiError, PolicyChange, PolicyVersion};
use axum::extract::State;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::caller::Caller;
use super::error::ApiResult;
use super::extract::Json;
use super::AppState;
use crate::service::policy;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(current_policy, change_policy))
        .routes(routes!(policy_history))
}

/// The policy in force.
#[utoipa::path(get, path = "/policy", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = PolicyVersion), (status = 401, body = ApiError)))]
async fn current_policy(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<PolicyVersion>> {
    Ok(Reply(policy::current(&state.db, &actor).await?))
}

/// Every version of the policy, newest first: who changed what, when and why.
#[utoipa::path(get, path = "/policy/history", tag = "policy", security(("bearer" = [])),
    responses((status = 200, body = Vec<PolicyVersion>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn policy_history(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<Vec<PolicyVersion>>> {
    Ok(Reply(policy::history(&state.db, &actor).await?))
}

/// Puts a new version of the policy in force (administrators and the data protection lead).
#[utoipa::path(put, path = "/policy", tag = "policy", security(("bearer" = [])), request_body = PolicyChange,
    responses((status = 200, body = PolicyVersion), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn change_policy(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(change): Json<PolicyChange>,
) -> ApiResult<Reply<PolicyVersion>> {
    Ok(Reply(policy::change(&state.db, &actor, &change).await?))
}
