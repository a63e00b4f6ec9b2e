//! The communication log: a contact's warrants, the calls and letters staff log, and the logged
//! ones the engine refused. The rules are `service::communications`'s; these handlers extract,
//! call and map.

use assent_shared::api::{ApiError, Communication, NewLoggedCommunication};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::caller::Caller;
use super::error::ApiResult;
use super::extract::{Json, Path};
use super::AppState;
use crate::service::communications;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(contact_communications, log_communication))
        .routes(routes!(logged_refusals))
}

/// The contact's communication log: every message decided for them, oldest first, each with
/// its warrant (the decision at send time, its basis or reasons, the ledger events it rests on,
/// the policy version, author and approver) and where the message stands.
#[utoipa::path(get, path = "/contacts/{id}/communications", tag = "communications", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Vec<Communication>), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn contact_communications(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Vec<Communication>>> {
    Ok(Reply(communications::log(&state.db, &actor, id).await?))
}

/// Logs a call, letter or fax made to the contact: decided now by the engine and recorded with
/// its warrant, allowed or not (a refused one is listed for the data protection lead).
#[utoipa::path(post, path = "/contacts/{id}/communications", tag = "communications", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    request_body = NewLoggedCommunication,
    responses((status = 201, body = Communication), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)))]
async fn log_communication(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(input): Json<NewLoggedCommunication>,
) -> ApiResult<(StatusCode, Reply<Communication>)> {
    let logged = communications::log_one(&state.db, &actor, id, &input).await?;
    Ok((StatusCode::CREATED, Reply(logged)))
}

/// The calls, letters and faxes staff logged that the engine did not allow, newest first (the
/// last 200): for the data protection lead and managers.
#[utoipa::path(get, path = "/communications/logged-refusals", tag = "communications", security(("bearer" = [])),
    responses((status = 200, body = Vec<Communication>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn logged_refusals(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<Vec<Communication>>> {
    Ok(Reply(
        communications::logged_refusals(&state.db, &actor).await?,
    ))
}
