//! `/decisions`: "May I send this to her?" for one contact or a whole audience
//! (`service::decisions`).

use assent_shared::api::{
    ApiError, AudienceDecisionRequest, AudienceDecisionResponse, DecisionRequest, DecisionResponse,
};
use axum::extract::State;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::caller::Caller;
use super::error::ApiResult;
use super::extract::Json;
use super::AppState;
use crate::service::decisions;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(decide_one))
        .routes(routes!(decide_audience))
}

/// Decides for a whole audience — a list of contacts, a search, a saved filter or everyone;
/// active contacts only — and answers with counts by basis and by reason over all of it, and one
/// page of per-contact decisions in contact id order (`next_cursor` for the next).
#[utoipa::path(post, path = "/decisions/audience", tag = "decisions", security(("bearer" = [])),
    request_body = AudienceDecisionRequest,
    responses((status = 200, body = AudienceDecisionResponse), (status = 400, body = ApiError),
              (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 413, body = ApiError),
              (status = 422, body = ApiError)))]
async fn decide_audience(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(request): Json<AudienceDecisionRequest>,
) -> ApiResult<Reply<AudienceDecisionResponse>> {
    Ok(Reply(
        decisions::decide_audience(&state.db, &actor, &request).await?,
    ))
}

/// Decides whether a message may be sent to a contact. With `as_of`, the answer the system
/// would have given then: the ledger as it had been recorded by then, and the policy then in
/// force.
#[utoipa::path(post, path = "/decisions", tag = "decisions", security(("bearer" = [])), request_body = DecisionRequest,
    responses((status = 200, body = DecisionResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 413, body = ApiError),
              (status = 422, body = ApiError)))]
async fn decide_one(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(request): Json<DecisionRequest>,
) -> ApiResult<Reply<DecisionResponse>> {
    Ok(Reply(
        decisions::decide_one(&state.db, &actor, &request).await?,
    ))
}
