//! `/campaigns`: campaigns and one-off messages, from draft to approval. The rules (who may
//! write, submit, approve; what blocks a submission) are the campaign service's
//! (`service::campaigns`); these handlers extract, call and map.

use assent_shared::api::{
    ApiError, Campaign, CampaignApproval, CampaignEdit, CampaignInput, CampaignPage,
    CampaignPreview, CampaignProgress, CampaignRejection, CampaignTestSend,
    IndeterminateRecipients, IndeterminateResend, VersionOnly,
};
use assent_shared::domain::CampaignState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json as Reply;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::caller::Caller;
use super::error::ApiResult;
use super::extract::{Json, Path, Query};
use super::AppState;
use crate::service::campaigns::{self, Rules};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign, edit_campaign))
        .routes(routes!(preview_campaign))
        .routes(routes!(test_send_campaign))
        .routes(routes!(submit_campaign))
        .routes(routes!(approve_campaign))
        .routes(routes!(reject_campaign))
        .routes(routes!(cancel_campaign))
        .routes(routes!(send_campaign))
        .routes(routes!(pause_campaign))
        .routes(routes!(resume_campaign))
        .routes(routes!(campaign_progress))
        .routes(routes!(indeterminate_recipients))
        .routes(routes!(resend_indeterminate))
}

fn rules(state: &AppState) -> Rules<'_> {
    Rules {
        identity: &state.mail.settings.identity,
        marketing_phrases: &state.marketing_phrases,
        sms_takes_replies: state.mail.sms.from.takes_replies(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignListParams {
    /// Only campaigns in this state (`submitted`: those waiting for approval).
    pub state: Option<CampaignState>,
}

/// Campaigns newest first (up to 200), of one state or any.
#[utoipa::path(get, path = "/campaigns", tag = "campaigns", security(("bearer" = [])), params(CampaignListParams),
    responses((status = 200, body = CampaignPage), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError)))]
async fn list_campaigns(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(params): Query<CampaignListParams>,
) -> ApiResult<Reply<CampaignPage>> {
    Ok(Reply(
        campaigns::list(&state.db, &actor, params.state).await?,
    ))
}

/// Starts a campaign (or a one-off message: an audience of one contact) as a draft.
#[utoipa::path(post, path = "/campaigns", tag = "campaigns", security(("bearer" = [])), request_body = CampaignInput,
    responses((status = 201, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn create_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Json(input): Json<CampaignInput>,
) -> ApiResult<(StatusCode, Reply<Campaign>)> {
    let campaign = campaigns::create(&state.db, &actor, &rules(&state), &input).await?;
    Ok((StatusCode::CREATED, Reply(campaign)))
}

/// One campaign.
#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn get_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(campaigns::get(&state.db, &actor, id).await?))
}

/// Replaces a campaign's content (its author only), against `version`; a submitted, approved
/// or rejected campaign returns to draft.
#[utoipa::path(put, path = "/campaigns/{id}", tag = "campaigns", security(("bearer" = [])), request_body = CampaignEdit,
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn edit_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(edit): Json<CampaignEdit>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(
        campaigns::edit(&state.db, &actor, &rules(&state), id, &edit).await?,
    ))
}

/// The audience through the engine now (counts by basis and reason, the first 1,000 members),
/// who of them cannot be sent it and why, one rendered sample, and the hashes an approval names.
#[utoipa::path(get, path = "/campaigns/{id}/preview", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = CampaignPreview), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 422, body = ApiError)))]
async fn preview_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<CampaignPreview>> {
    Ok(Reply(
        campaigns::preview(&state.db, &actor, &rules(&state), id).await?,
    ))
}

/// Submits a draft or rejected campaign for approval (its author), after the checks that block.
#[utoipa::path(post, path = "/campaigns/{id}/submit", tag = "campaigns", security(("bearer" = [])), request_body = VersionOnly,
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn submit_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<VersionOnly>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(
        campaigns::submit(&state.db, &actor, &rules(&state), id, body.version).await?,
    ))
}

/// Approves a submitted campaign (a manager who is not its author), naming the content hash read
/// and the audience hash of the preview seen; freezes the audience.
#[utoipa::path(post, path = "/campaigns/{id}/approve", tag = "campaigns", security(("bearer" = [])), request_body = CampaignApproval,
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn approve_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(approval): Json<CampaignApproval>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(
        campaigns::approve(&state.db, &actor, id, &approval).await?,
    ))
}

/// Sends a submitted campaign back with a reason (a manager who is not its author).
#[utoipa::path(post, path = "/campaigns/{id}/reject", tag = "campaigns", security(("bearer" = [])), request_body = CampaignRejection,
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn reject_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(rejection): Json<CampaignRejection>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(
        campaigns::reject(&state.db, &actor, id, &rejection).await?,
    ))
}

/// Cancels a campaign that has not finished (its author or a manager).
#[utoipa::path(post, path = "/campaigns/{id}/cancel", tag = "campaigns", security(("bearer" = [])), request_body = VersionOnly,
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn cancel_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<VersionOnly>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(
        campaigns::cancel(&state.db, &actor, id, body.version).await?,
    ))
}

/// Starts sending an approved email campaign (its author or a manager): each frozen member is
/// decided again just before their message is handed over.
#[utoipa::path(post, path = "/campaigns/{id}/send", tag = "campaigns", security(("bearer" = [])), request_body = VersionOnly,
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn send_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<VersionOnly>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(
        campaigns::start(&state.db, &actor, &rules(&state), id, body.version).await?,
    ))
}

/// Pauses a campaign that is sending (what is in flight finishes).
#[utoipa::path(post, path = "/campaigns/{id}/pause", tag = "campaigns", security(("bearer" = [])), request_body = VersionOnly,
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn pause_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<VersionOnly>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(
        campaigns::pause_or_resume(&state.db, &actor, id, body.version, true).await?,
    ))
}

/// Resumes a paused campaign.
#[utoipa::path(post, path = "/campaigns/{id}/resume", tag = "campaigns", security(("bearer" = [])), request_body = VersionOnly,
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn resume_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<VersionOnly>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(
        campaigns::pause_or_resume(&state.db, &actor, id, body.version, false).await?,
    ))
}

/// Where each recipient stands: queued, in flight, sent, failed, indeterminate, not sent.
#[utoipa::path(get, path = "/campaigns/{id}/progress", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = CampaignProgress), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn campaign_progress(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<CampaignProgress>> {
    Ok(Reply(campaigns::progress(&state.db, &actor, id).await?))
}

/// The recipients whose message may or may not have gone (the worker stopped while it held
/// them): how many, and the first 1,000 with their names, addresses and Message-IDs.
#[utoipa::path(get, path = "/campaigns/{id}/indeterminate", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = IndeterminateRecipients), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn indeterminate_recipients(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<IndeterminateRecipients>> {
    Ok(Reply(
        campaigns::indeterminate(&state.db, &actor, id).await?,
    ))
}

/// Sends the named indeterminate recipients their message again (the author or a manager): an
/// explicit, audited choice. Each is decided again first; the message keeps its Message-ID.
#[utoipa::path(post, path = "/campaigns/{id}/indeterminate/resend", tag = "campaigns", security(("bearer" = [])),
    request_body = IndeterminateResend,
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = Campaign), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 413, body = ApiError), (status = 422, body = ApiError)))]
async fn resend_indeterminate(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<IndeterminateResend>,
) -> ApiResult<Reply<Campaign>> {
    Ok(Reply(
        campaigns::resend_indeterminate(&state.db, &actor, id, &body).await?,
    ))
}

/// Sends the campaign, as its first sendable recipient would get it (their merge values, links
/// that reach no one), to the caller's own address: the author or a manager, email only, before
/// it sends. `delivered` and `outcome` say what the relay answered.
#[utoipa::path(post, path = "/campaigns/{id}/test-send", tag = "campaigns", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The campaign")),
    responses((status = 200, body = CampaignTestSend), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
              (status = 422, body = ApiError)))]
async fn test_send_campaign(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<CampaignTestSend>> {
    Ok(Reply(
        crate::service::sending::test_send(&state.db, &actor, &rules(&state), &state.mail, id)
            .await?,
    ))
}
