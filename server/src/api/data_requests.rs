//! `/data-requests`: the requests people make about their data on the public data request page,
//! and the page itself (`service::data_requests`).

use assent_shared::api::{ApiError, DataRequest, DataRequestPage};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::caller::Caller;
use super::error::ApiResult;
use super::AppState;
use crate::service::data_requests;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_data_requests))
        .routes(routes!(data_request_page, publish_data_request_page))
}

/// The requests, newest first (at most 500): what was asked, for which address, when it was
/// received and when the address was verified (managers and the data protection lead).
#[utoipa::path(get, path = "/data-requests", tag = "data-requests", security(("bearer" = [])),
    responses((status = 200, body = Vec<DataRequest>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn list_data_requests(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<Vec<DataRequest>>> {
    Ok(Reply(data_requests::list(&state.db, &actor).await?))
}

/// The data request page, if it is published (404 until then).
#[utoipa::path(get, path = "/data-requests/page", tag = "data-requests", security(("bearer" = [])),
    responses((status = 200, body = DataRequestPage), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn data_request_page(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<DataRequestPage>> {
    Ok(Reply(
        data_requests::page(&state.db, &actor, &state.signups).await?,
    ))
}

/// Publishes the data request page (the data protection lead), with the standing campaign that
/// sends its verification emails; 409 when it is published already.
#[utoipa::path(post, path = "/data-requests/page", tag = "data-requests", security(("bearer" = [])),
    responses((status = 201, body = DataRequestPage), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 409, body = ApiError)))]
async fn publish_data_request_page(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<(StatusCode, Reply<DataRequestPage>)> {
    let page = data_requests::publish_page(&state.db, &actor, &state.signups).await?;
    Ok((StatusCode::CREATED, Reply(page)))
}
