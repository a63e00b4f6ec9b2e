//! Each contact's consent ledger: record an event, read the ledger, export it and import it as
//! JSON Lines in the compliance scenarios' event format, and the consent wordings recorded.
//!
//! Who records what: sales staff, managers and the data protection lead record consents,
//! opt-outs, sales, negotiations, enquiries, support, TPS screens and preferences; only the data
//! protection lead records an erasure; a double opt-in confirmation comes only from the person
//! (the public pages). An import, a migration of history, is for managers and the data
//! protection lead, and is all or nothing.

use assent_shared::api::{
    ConsentWordingPage, Contact, FieldError, ImportSummary, NewLedgerEvent, RecordedEvent,
};
use assent_shared::domain::parse_text;
use assent_shared::ledger::{EventKind, LedgerEvent};
use assent_shared::validate::{validate_ledger_event, FieldErrors, NAME_MAX};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::access::{self, CONTACT_ROLES, IMPORT_ROLES};
use super::contacts::load;
use super::{search_query, Actor, ServiceError, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::store::{self, ledger::NewEntry, Db, StoreError};

/// Clocks differ a little; an event further in the future than this is a mistake.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The most errors an import reports; past them, the answer says how many more there were.
const IMPORT_ERRORS_SHOWN: usize = 100;

pub(super) fn check_time(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if at > now + CLOCK_SKEW {
        Err("is in the future: record what has happened".into())
    } else {
        Ok(())
    }
}

/// Reads a contact and its whole ledger in one transaction, recording `action` on the contact in
/// the audit trail in the same transaction.
pub async fn read(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    action: Action,
) -> ServiceResult<(Contact, Vec<RecordedEvent>)> {
    access::require_any(db, actor, CONTACT_ROLES, Some((ObjectKind::Contact, id))).await?;
    let mut tx = db.begin_read().await?;
    let contact = load(&mut tx, id).await?;
    let ledger = store::ledger::for_contact(&mut tx, id).await?;
    tx.commit().await?;
    store::audit::record_read(db, actor.audit(action).on(ObjectKind::Contact, id)).await?;
    Ok((contact, ledger))
}

/// Records one event in a contact's ledger. Corrections are new events: nothing recorded is
/// ever changed or removed.
pub async fn record(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    new: &NewLedgerEvent,
) -> ServiceResult<RecordedEvent> {
    let object = Some((ObjectKind::Contact, id));
    access::require_any(db, actor, CONTACT_ROLES, object).await?;
    match new.event.kind {
        EventKind::ConsentConfirmed { .. } => {
            let message = "A double opt-in confirmation is recorded only when the person clicks their confirmation link.";
            return Err(access::refuse(db, actor, object, message.into()).await);
        }
        EventKind::Erased if !access::may_erase(actor) => {
            let message = "Only the data protection lead carries out an erasure.";
            return Err(access::refuse(db, actor, object, message.into()).await);
        }
        _ => {}
    }
    let mut errors = validate_ledger_event(&new.event.kind, new.source.as_ref())
        .err()
        .unwrap_or_default();
    let now = clock::now();
    if let Err(reason) = check_time(new.event.at, now) {
        errors.add("at", reason);
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let mut tx = db.begin().await?;
    let record = actor
        .audit(Action::LedgerEventRecorded)
        .on(ObjectKind::Contact, id);
    let entry = NewEntry {
        contact_id: id,
        at: new.event.at,
        kind: &new.event.kind,
        external_id: None,
        source: new.source.as_ref(),
        recorded_by: actor.reference(),
        imported: false,
    };
    let mut ledger = store::ledger::lock(&mut tx, &record, &[id]).await?;
    if !ledger.holds(id) {
        return Err(ServiceError::NotFound("contact"));
    }
    let recorded = ledger.append(&entry, now).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// The ledger as JSON Lines in the scenario event format (`id`, `at`, `type` and its fields),
/// sorted by when things happened: ready to import elsewhere or to test against a policy.
pub async fn export(db: &Db, actor: &Actor, id: Uuid) -> ServiceResult<String> {
    let (_, recorded) = read(db, actor, id, Action::LedgerExported).await?;
    let mut body = String::new();
    for event in store::ledger::for_engine(&recorded, None) {
        body.push_str(
            &serde_json::to_string(&event).map_err(|_| StoreError::Encode("a ledger event"))?,
        );
        body.push('\n');
    }
    Ok(body)
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
            // The answer goes only to whoever sent the file (it is never logged), so the
            // parser's own words, which quote the line, are the most helpful.
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
                if let Some(external) = &event.id {
                    if let Err(e) = parse_text(external, NAME_MAX) {
                        problems.push(FieldError {
                            field: "id".into(),
                            reason: e.0,
                        });
                    }
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
pub async fn import(db: &Db, actor: &Actor, id: Uuid, body: &str) -> ServiceResult<ImportSummary> {
    access::require_any(db, actor, IMPORT_ROLES, Some((ObjectKind::Contact, id))).await?;
    let now = clock::now();
    let events = parse_import(body, now).map_err(|e| ServiceError::Invalid(FieldErrors(e)))?;
    let mut tx = db.begin().await?;
    let record = actor
        .audit(Action::LedgerImported)
        .on(ObjectKind::Contact, id);
    let entries: Vec<NewEntry> = events
        .iter()
        .map(|event| NewEntry {
            contact_id: id,
            at: event.at,
            kind: &event.kind,
            external_id: event.id.as_deref(),
            source: None,
            recorded_by: actor.reference(),
            imported: true,
        })
        .collect();
    let mut ledger = store::ledger::lock(&mut tx, &record, &[id]).await?;
    if !ledger.holds(id) {
        return Err(ServiceError::NotFound("contact"));
    }
    ledger.append_many(&entries, now).await?;
    tx.commit().await?;
    Ok(ImportSummary {
        imported: events.len() as u64,
    })
}

/// The consent wordings recorded so far, newest version first: the texts a consent form can
/// cite exactly. `text` searches them in any case; `before` is the previous page's
/// `next_before`.
pub async fn wordings(
    db: &Db,
    actor: &Actor,
    text: Option<&str>,
    before: Option<i64>,
    limit: Option<i64>,
) -> ServiceResult<ConsentWordingPage> {
    access::require_any(db, actor, CONTACT_ROLES, None).await?;
    let limit = super::page_size(limit)?;
    let text = search_query(text)?;
    if before.is_some_and(|b| b < 1) {
        return Err(ServiceError::BadRequest(
            "before must be a wording version (1 or more)".into(),
        ));
    }
    // One more than a page says whether there is a next one.
    let mut items = store::ledger::wordings(db, text.as_deref(), before, limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_before = more.then(|| items.last().map(|w| w.version)).flatten();
    Ok(ConsentWordingPage { items, next_before })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_names_every_bad_line() {
        let now = clock::now();
        let body = [
            r#"{"at":"2025-01-01T00:00:00Z","type":"opt_out","channel":"email","topic":"*"}"#,
            r#"{"at":"2025-01-01T00:00:00Z","type":"opt_in","name":"Zebedee Quartermaine"}"#,
            "",
            r#"{"at":"2025-01-01T00:00:00Z","type":"sale","topic":" ","refusal_offered":true}"#,
            r#"{"at":"2999-01-01T00:00:00Z","type":"tps_check","registered":false}"#,
            r#"{"id":"a\u0000b","at":"2025-01-01T00:00:00Z","type":"tps_check","registered":false}"#,
        ]
        .join("\n");
        let errors = parse_import(&body, now).unwrap_err();
        let lines: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(lines, ["line 2", "line 4", "line 5", "line 6"]);
        assert!(errors[1].reason.starts_with("topic is empty"));
        assert!(errors[2].reason.contains("future"));
        assert!(errors[3]
            .reason
            .starts_with("id contains control characters"));
        assert_eq!(parse_import("\n\n", now).unwrap_err()[0].field, "body");
    }
}
