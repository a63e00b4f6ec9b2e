//! `/contacts/{id}/ledger`, its export and import, the evidence pack and the consent wordings
//! (`service::ledger`, `service::evidence`).

use assent_shared::api::{
    ApiError, ConsentWordingPage, ImportSummary, NewLedgerEvent, RecordedEvent,
};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json as Reply;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::caller::Caller;
use super::error::{ApiResult, Error};
use super::extract::{Json, Path, Query};
use super::AppState;
use crate::audit::Action;
use crate::service::evidence::{self, RenderedPack};
use crate::service::ledger;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_ledger, record_event))
        .routes(routes!(export_ledger))
        .routes(routes!(import_ledger))
        .routes(routes!(evidence_pack))
        .routes(routes!(list_wordings))
}

/// Which consent wordings are wanted.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WordingParams {
    /// Part of the text, in any case. No control characters.
    #[param(value_type = Option<assent_shared::schema::OptionalName>)]
    pub q: Option<String>,
    /// The `next_before` of the previous page.
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The consent wordings recorded so far, newest version first: the texts a consent form can
/// cite exactly. A consent recorded with a new text adds a version.
#[utoipa::path(get, path = "/consent-wordings", tag = "ledger", security(("bearer" = [])),
    params(WordingParams),
    responses((status = 200, body = ConsentWordingPage), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError)))]
async fn list_wordings(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Query(params): Query<WordingParams>,
) -> ApiResult<Reply<ConsentWordingPage>> {
    let page = ledger::wordings(
        &state.db,
        &actor,
        params.q.as_deref(),
        params.before,
        params.limit,
    )
    .await?;
    Ok(Reply(page))
}

/// How an evidence pack is wanted.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackParams {
    /// `html` (default) or `pdf`.
    #[param(pattern = "^(html|pdf)$")]
    pub format: Option<String>,
}

/// The evidence pack of a contact, for when a consent is challenged: the whole ledger as a
/// timeline with each event's wording, source and recorder, the verification of the ledger's
/// hash chain, and the policy versions in force while it was kept. As HTML or PDF.
#[utoipa::path(get, path = "/contacts/{id}/evidence-pack", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact"), PackParams),
    responses((status = 200, description = "The pack, as asked for", content((String = "text/html"), (Vec<u8> = "application/pdf"))),
              (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn evidence_pack(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PackParams>,
) -> ApiResult<axum::response::Response> {
    Ok(
        match evidence::pack(&state.db, &actor, id, params.format.as_deref()).await? {
            RenderedPack::Pdf(pdf) => {
                ([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response()
            }
            RenderedPack::Html(html) => {
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
            }
        },
    )
}

/// A contact's whole ledger, in recorded order, with each consent's exact wording.
#[utoipa::path(get, path = "/contacts/{id}/ledger", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Vec<RecordedEvent>), (status = 401, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
async fn list_ledger(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Vec<RecordedEvent>>> {
    let (_, events) = ledger::read(&state.db, &actor, id, Action::LedgerRead).await?;
    Ok(Reply(events))
}

/// Records one event in a contact's ledger. Corrections are new events: nothing recorded is
/// ever changed or removed.
#[utoipa::path(post, path = "/contacts/{id}/ledger", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")), request_body = NewLedgerEvent,
    responses((status = 201, body = RecordedEvent), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 413, body = ApiError),
              (status = 422, body = ApiError)))]
async fn record_event(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    Json(new): Json<NewLedgerEvent>,
) -> ApiResult<(StatusCode, Reply<RecordedEvent>)> {
    let recorded = ledger::record(&state.db, &actor, id, &new).await?;
    Ok((StatusCode::CREATED, Reply(recorded)))
}

/// The ledger as JSON Lines in the scenario event format (`id`, `at`, `type` and its fields),
/// sorted by when things happened: ready to import elsewhere or to test against a policy.
#[utoipa::path(get, path = "/contacts/{id}/ledger/export", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, content_type = "application/x-ndjson", body = String),
              (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
async fn export_ledger(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    let body = ledger::export(&state.db, &actor, id).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body))
}

/// Imports a ledger exported elsewhere (JSON Lines, one event a line, in the scenario event
/// format), appending it to the contact's ledger. Every line is checked first: one bad line
/// rejects the whole file, naming each bad line and why, and nothing is written.
#[utoipa::path(post, path = "/contacts/{id}/ledger/import", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 201, body = ImportSummary), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 413, body = ApiError),
              (status = 422, body = ApiError)))]
async fn import_ledger(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Reply<ImportSummary>)> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| Error::BadRequest("The body is not UTF-8 text.".into()))?;
    let summary = ledger::import(&state.db, &actor, id, text).await?;
    Ok((StatusCode::CREATED, Reply(summary)))
}
