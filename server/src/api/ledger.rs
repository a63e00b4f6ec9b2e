//! Each contact's consent ledger: record an event, read the ledger, export it and import it as
//! JSON Lines in the compliance scenarios' event format.
//!
//! Who records what: sales staff, managers and the data protection lead record consents,
//! opt-outs, sales, negotiations, enquiries, support, TPS screens and preferences; only the data
//! protection lead records an erasure; a double opt-in confirmation comes only from the person
//! (the public pages). An import, a migration of history, is for managers and the data
//! protection lead, and is all or nothing.

use assent_shared::api::{
    ConsentWordingPage, Contact, FieldError, ImportSummary, NewLedgerEvent, RecordedEvent,
    RecordedVia,
};
use assent_shared::domain::Role;
use assent_shared::ledger::{EventKind, LedgerEvent};
use assent_shared::validate::validate_ledger_event;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json as Reply;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::contacts::CONTACT_ROLES;
use super::error::{ApiResult, Error};
use super::extract::{Json, Path};
use super::AppState;
use crate::audit::{Action, ObjectKind};
use crate::auth::Caller;
use crate::store::{self, ledger::NewEntry, Tx};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    /// Part of the text, in any case.
    pub q: Option<String>,
    /// The `next_before` of the previous page.
    pub before: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
}

/// The consent wordings recorded so far, newest version first: the texts a consent form can
/// cite exactly. A consent recorded with a new text adds a version.
#[utoipa::path(get, path = "/consent-wordings", tag = "ledger", security(("bearer" = [])),
    params(WordingParams),
    responses((status = 200, body = ConsentWordingPage),
              (status = 400, body = assent_shared::api::ApiError), (status = 403, body = assent_shared::api::ApiError)))]
async fn list_wordings(
    State(state): State<AppState>,
    caller: Caller,
    super::extract::Query(params): super::extract::Query<WordingParams>,
) -> ApiResult<Reply<ConsentWordingPage>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let limit = super::page_size(params.limit)?;
    // One more than a page says whether there is a next one.
    let mut items =
        store::ledger::wordings(&state.db, params.q.as_deref(), params.before, limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_before = more.then(|| items.last().map(|w| w.version)).flatten();
    Ok(Reply(ConsentWordingPage { items, next_before }))
}

/// How an evidence pack is wanted.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackFormat {
    /// `html` (default) or `pdf`.
    pub format: Option<String>,
}

/// The evidence pack of a contact, for when a consent is challenged: the whole ledger as a
/// timeline with each event's wording, source and recorder, the verification of the ledger's
/// hash chain, and the policy versions in force while it was kept. As HTML or PDF.
#[utoipa::path(get, path = "/contacts/{id}/evidence-pack", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact"), PackFormat),
    responses((status = 200, content_type = "text/html", body = String),
              (status = 200, content_type = "application/pdf", body = Vec<u8>),
              (status = 400, body = assent_shared::api::ApiError), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError)))]
async fn evidence_pack(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    super::extract::Query(params): super::extract::Query<PackFormat>,
) -> ApiResult<axum::response::Response> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let pdf = match params.format.as_deref() {
        None | Some("html") => false,
        Some("pdf") => true,
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "format {other:?} is not html or pdf"
            )))
        }
    };
    let now = store::now();
    let (contact, ledger) = read_ledger(&state, &caller, id, Action::EvidencePackGenerated).await?;
    let chain = match store::ledger::verify_contact(&state.db, id).await? {
        Ok(events) => crate::evidence::ChainStatus::Intact { events },
        Err(link) => crate::evidence::ChainStatus::Broken {
            seq: link.seq,
            problem: link.problem,
        },
    };
    let recorders: std::collections::HashMap<Uuid, String> = store::users::list(&state.db)
        .await?
        .into_iter()
        .map(|u| (u.id, format!("{} <{}>", u.display_name, u.email)))
        .collect();
    // The versions in force from the first recorded event on (the current one at least).
    let since = ledger.iter().map(|e| e.recorded_at).min().unwrap_or(now);
    let history = store::policies::history(&state.db).await?;
    let start = history
        .iter()
        .position(|p| p.changed_at <= since)
        .unwrap_or(history.len().saturating_sub(1));
    let policies = &history[..=start.min(history.len().saturating_sub(1))];
    let generated_by = format!("{} <{}>", caller.user.display_name, caller.user.email);
    let pack = crate::evidence::EvidencePack {
        contact: &contact,
        ledger: &ledger,
        recorders: &recorders,
        chain,
        policies,
        generated_at: now,
        generated_by: &generated_by,
    };
    Ok(if pdf {
        ([(header::CONTENT_TYPE, "application/pdf")], pack.pdf()).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            pack.html(),
        )
            .into_response()
    })
}

/// Clocks differ a little; an event further in the future than this is a mistake.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The most errors an import reports; past them, the answer says how many more there were.
const IMPORT_ERRORS_SHOWN: usize = 100;

fn check_time(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if at > now + CLOCK_SKEW {
        Err("is in the future: record what has happened".into())
    } else {
        Ok(())
    }
}

/// Reads a contact and its whole ledger in one transaction, recording `action` on the contact in
/// the audit trail (404 when there is no such contact).
pub(super) async fn read_ledger(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    action: Action,
) -> ApiResult<(Contact, Vec<RecordedEvent>)> {
    let mut tx = state.db.begin().await?;
    let contact = store::contacts::get(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("contact"))?;
    store::audit::append(&mut tx, &caller.audit(action).on(ObjectKind::Contact, id)).await?;
    let ledger = store::ledger::for_contact(&mut tx, id).await?;
    tx.commit().await?;
    Ok((contact, ledger))
}

async fn require_contact(tx: &mut Tx, id: Uuid) -> ApiResult<()> {
    store::contacts::get(tx, id)
        .await?
        .map(|_| ())
        .ok_or_else(|| Error::not_found("contact"))
}

/// A contact's whole ledger, in recorded order, with each consent's exact wording.
#[utoipa::path(get, path = "/contacts/{id}/ledger", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, body = Vec<RecordedEvent>), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError)))]
async fn list_ledger(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Reply<Vec<RecordedEvent>>> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let (_, events) = read_ledger(&state, &caller, id, Action::LedgerRead).await?;
    Ok(Reply(events))
}

/// Records one event in a contact's ledger. Corrections are new events: nothing recorded is
/// ever changed or removed.
#[utoipa::path(post, path = "/contacts/{id}/ledger", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")), request_body = NewLedgerEvent,
    responses((status = 201, body = RecordedEvent), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError), (status = 422, body = assent_shared::api::ApiError)))]
async fn record_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(new): Json<NewLedgerEvent>,
) -> ApiResult<(StatusCode, Reply<RecordedEvent>)> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let object = Some((ObjectKind::Contact, id));
    match new.event.kind {
        EventKind::ConsentConfirmed { .. } => {
            let message = "A double opt-in confirmation is recorded only when the person clicks their confirmation link.";
            return Err(caller.deny(&state, object, message.into()).await);
        }
        EventKind::Erased if !caller.has(Role::Dpo) => {
            let message = "Only the data protection lead carries out an erasure.";
            return Err(caller.deny(&state, object, message.into()).await);
        }
        _ => {}
    }
    let mut errors = validate_ledger_event(&new.event.kind, new.source.as_ref())
        .err()
        .unwrap_or_default();
    let now = store::now();
    if let Err(reason) = check_time(new.event.at, now) {
        errors.add("at", reason);
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let mut tx = state.db.begin().await?;
    require_contact(&mut tx, id).await?;
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::LedgerEventRecorded)
            .on(ObjectKind::Contact, id),
    )
    .await?;
    let entry = NewEntry {
        contact_id: id,
        at: new.event.at,
        kind: &new.event.kind,
        external_id: None,
        source: new.source.as_ref(),
        recorded_by: Some(caller.user.id),
        recorded_via: RecordedVia::User,
    };
    let event_id = store::ledger::append(&mut tx, &entry, now).await?;
    let recorded = store::ledger::get(&mut tx, event_id)
        .await?
        .ok_or_else(|| Error::Internal("a ledger event vanished as it was recorded".into()))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Reply(recorded)))
}

/// The ledger as JSON Lines in the scenario event format (`id`, `at`, `type` and its fields),
/// sorted by when things happened: ready to import elsewhere or to test against a policy.
#[utoipa::path(get, path = "/contacts/{id}/ledger/export", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    responses((status = 200, content_type = "application/x-ndjson", body = String),
              (status = 403, body = assent_shared::api::ApiError), (status = 404, body = assent_shared::api::ApiError)))]
async fn export_ledger(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    caller.require_any(&state, CONTACT_ROLES).await?;
    let (_, recorded) = read_ledger(&state, &caller, id, Action::LedgerExported).await?;
    let mut body = String::new();
    for event in store::ledger::for_engine(&recorded, None) {
        // A LedgerEvent is plain data: it always serialises.
        body.push_str(&serde_json::to_string(&event).unwrap_or_default());
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body))
}

/// Parses and checks every line of an import; all the problems, by line number.
fn parse_import(body: &str, now: DateTime<Utc>) -> Result<Vec<LedgerEvent>, Vec<FieldError>> {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let field = format!("line {}", index + 1);
        match serde_json::from_str::<LedgerEvent>(line) {
            Err(e) => errors.push(FieldError {
                field,
                reason: e.to_string(),
            }),
            Ok(event) => {
                let mut problems = validate_ledger_event(&event.kind, None)
                    .err()
                    .unwrap_or_default()
                    .0;
                if let Err(reason) = check_time(event.at, now) {
                    problems.push(FieldError {
                        field: "at".into(),
                        reason,
                    });
                }
                for problem in problems {
                    errors.push(FieldError {
                        field: field.clone(),
                        reason: format!("{} {}", problem.field, problem.reason),
                    });
                }
                events.push(event);
            }
        }
    }
    if events.is_empty() && errors.is_empty() {
        errors.push(FieldError {
            field: "body".into(),
            reason: "holds no events".into(),
        });
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        if errors.len() > IMPORT_ERRORS_SHOWN {
            let more = errors.len() - IMPORT_ERRORS_SHOWN;
            errors.truncate(IMPORT_ERRORS_SHOWN);
            errors.push(FieldError {
                field: "body".into(),
                reason: format!("and {more} more problems"),
            });
        }
        Err(errors)
    }
}

/// Imports a ledger exported elsewhere (JSON Lines, one event a line, in the scenario event
/// format), appending it to the contact's ledger. Every line is checked first: one bad line
/// rejects the whole file, naming each bad line and why, and nothing is written.
#[utoipa::path(post, path = "/contacts/{id}/ledger/import", tag = "ledger", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The contact")),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 201, body = ImportSummary), (status = 403, body = assent_shared::api::ApiError),
              (status = 404, body = assent_shared::api::ApiError), (status = 422, body = assent_shared::api::ApiError)))]
async fn import_ledger(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: String,
) -> ApiResult<(StatusCode, Reply<ImportSummary>)> {
    caller
        .require_any_on(
            &state,
            &[Role::Manager, Role::Dpo],
            Some((ObjectKind::Contact, id)),
        )
        .await?;
    let now = store::now();
    let events = parse_import(&body, now).map_err(Error::Validation)?;
    let mut tx = state.db.begin().await?;
    require_contact(&mut tx, id).await?;
    store::audit::append(
        &mut tx,
        &caller
            .audit(Action::LedgerImported)
            .on(ObjectKind::Contact, id),
    )
    .await?;
    let entries: Vec<NewEntry> = events
        .iter()
        .map(|event| NewEntry {
            contact_id: id,
            at: event.at,
            kind: &event.kind,
            external_id: event.id.as_deref(),
            source: None,
            recorded_by: Some(caller.user.id),
            recorded_via: RecordedVia::Import,
        })
        .collect();
    store::ledger::append_many(&mut tx, &entries, now).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Reply(ImportSummary {
            imported: events.len() as u64,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_names_every_bad_line() {
        let now = store::now();
        let body = [
            r#"{"at":"2025-01-01T00:00:00Z","type":"opt_out","channel":"email","topic":"*"}"#,
            r#"{"at":"2025-01-01T00:00:00Z","type":"opt_in"}"#,
            "",
            r#"{"at":"2025-01-01T00:00:00Z","type":"sale","topic":" ","refusal_offered":true}"#,
            r#"{"at":"2999-01-01T00:00:00Z","type":"tps_check","registered":false}"#,
        ]
        .join("\n");
        let errors = parse_import(&body, now).unwrap_err();
        let lines: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(lines, ["line 2", "line 4", "line 5"]);
        assert!(errors[1].reason.starts_with("topic is empty"));
        assert!(errors[2].reason.contains("future"));
        assert_eq!(parse_import("\n\n", now).unwrap_err()[0].field, "body");
    }
}
