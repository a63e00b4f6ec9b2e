//! `/signup-forms`: the sign-up forms the organisation publishes on its websites
//! (`service::signups`). The sign-ups themselves come through the public pages.

use assent_shared::api::{ApiError, SignupForm, SignupFormInput};
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
use crate::service::signups;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_signup_forms, publish_signup_form))
        .routes(routes!(get_signup_form))
        .routes(routes!(retire_signup_form))
}

/// Every sign-up form, newest first, each with its snippet (managers and the data protection
/// lead).
#[utoipa::path(get, path = "/signup-forms", tag = "signup-forms", security(("bearer" = [])),
    responses((status = 200, body = Vec<SignupForm>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
async fn list_signup_forms(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> ApiResult<Reply<Vec<SignupForm>>> {
    Ok(Reply(
        signups::forms(&state.db, &actor, &state.signups).await?,
    ))
}

/// Publishes a sign-up form (managers and the data protection lead): its wording becomes a
/// consent wording version, and a standing campaign is made to send its confirmation emails.
/// The answer holds the HTML snippet to paste into the websites named.
#[utoipa::path(post, path = "/signup-forms", tag = "signup-forms", security(("bearer" = [])), request_body = SignupFormInput,
    responses((status = 201, body = SignupForm), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn publish_signup_form(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(input): Json<SignupFormInput>,
) -> ApiResult<(StatusCode, Reply<SignupForm>)> {
    let form = signups::create_form(&state.db, &actor, &state.signups, &input).await?;
    Ok((StatusCode::CREATED, Reply(form)))
}

/// One sign-up form, with its snippet.
#[utoipa::path(get, path = "/signup-forms/{id}", tag = "signup-forms", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The sign-up form")),
    responses((status = 200, body = SignupForm), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn get_signup_form(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<SignupForm>> {
    Ok(Reply(
        signups::form(&state.db, &actor, &state.signups, id).await?,
    ))
}

/// Retires a sign-up form: sign-ups through it are refused from now on; confirmation links
/// already sent still confirm.
#[utoipa::path(post, path = "/signup-forms/{id}/retire", tag = "signup-forms", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The sign-up form")),
    responses((status = 200, body = SignupForm), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
async fn retire_signup_form(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<SignupForm>> {
    Ok(Reply(
        signups::retire_form(&state.db, &actor, &state.signups, id).await?,
    ))
}
