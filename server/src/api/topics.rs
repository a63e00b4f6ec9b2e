//! `/topics`: the topic catalogue and its versions (`service::topics`).

use assent_shared::api::{ApiError, TopicCatalogue, TopicCatalogueChange};
use axum::extract::State;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::caller::Caller;
use super::error::ApiResult;
use super::extract::Json;
use super::AppState;
use crate::service::topics;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(current_topics, change_topics))
        .routes(routes!(topics_history))
}

/// The topic catalogue in force.
#[utoipa::path(get, path = "/topics", tag = "topics", security(("bearer" = [])),
    responses((status = 200, body = TopicCatalogue), (status = 401, body = ApiError)))]
async fn current_topics(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<TopicCatalogue>> {
    Ok(Reply(topics::current(&state.db, &actor).await?))
}

/// Every version of the topic catalogue, newest first.
#[utoipa::path(get, path = "/topics/history", tag = "topics", security(("bearer" = [])),
    responses((status = 200, body = Vec<TopicCatalogue>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn topics_history(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<Vec<TopicCatalogue>>> {
    Ok(Reply(topics::history(&state.db, &actor).await?))
}

/// Puts a new version of the topic catalogue in force (administrators and the data protection
/// lead); its similar groups become the policy's in the same step.
#[utoipa::path(put, path = "/topics", tag = "topics", security(("bearer" = [])), request_body = TopicCatalogueChange,
    responses((status = 200, body = TopicCatalogue), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn change_topics(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(change): Json<TopicCatalogueChange>,
) -> ApiResult<Reply<TopicCatalogue>> {
    Ok(Reply(topics::change(&state.db, &actor, &change).await?))
}
