use assent_server::audit::{Action, ObjectKind, Outcome};
use assent_server::store::{self, audit::Verification};
use assent_shared::domain::Role;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::store_test;

async fn some_activity(app: &TestApp) {
    let (_, sales) = app
        .user_with_token("sales@example.org", &[Role::Sales])
        .await;
    let reply = app.post("/api/v1/contacts", &sales, json!({"first_name": "Zebedee", "last_name": "Quartermaine", "emails": ["zq@unique-marker.example"]})).await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    app.get(&format!("/api/v1/contacts/{id}"), &sales).await;
    app.get("/api/v1/users", &sales).await;
}

store_test! {
    async fn audit_verify_passes_and_then_names_a_row_altered_in_sql(app: TestApp) {
        some_activity(&app).await;
        let Verification::Intact { records } = store::audit::verify(&app.db).await.unwrap() else {
            panic!("a fresh chain is intact");
        };
        assert!(records >= 5, "login, create, read, denial...: {records}");
        let disable = match app.backend {
            Backend::Sqlite => "DROP TRIGGER audit_events_no_update",
            Backend::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update",
        };
        app.raw_sql(disable).await.unwrap();
        app.raw_sql("UPDATE audit_events SET outcome = 'ok' WHERE action = 'denied'").await.unwrap();
        match store::audit::verify(&app.db).await.unwrap() {
            Verification::Broken(link) => {
                assert!(link.problem.contains("altered"), "{}", link.problem);
                let altered: i64 = match &app.db {
                    store::Db::Sqlite(pool) => sqlx::query_scalar("SELECT seq FROM audit_events WHERE action = 'denied'").fetch_one(pool).await.unwrap(),
                    store::Db::Postgres(pool) => sqlx::query_scalar("SELECT seq FROM audit_events WHERE action = 'denied'").fetch_one(pool).await.unwrap(),
                };
                assert_eq!(link.seq, altered, "the first broken link is the altered record");
            }
            intact => panic!("tampering went unnoticed: {intact:?}"),
        }
    }
}

store_test! {
    async fn the_database_refuses_to_update_or_delete_audit_records(app: TestApp) {
        some_activity(&app).await;
        let update = app.raw_sql("UPDATE audit_events SET outcome = 'tampered' WHERE seq = 1").await;
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = app.raw_sql("DELETE FROM audit_events WHERE seq = 1").await;
        assert!(delete.unwrap_err().to_string().contains("append-only"));
        if app.backend == Backend::Postgres {
            assert!(app.raw_sql("TRUNCATE audit_events").await.is_err());
        }
        assert!(matches!(store::audit::verify(&app.db).await.unwrap(), Verification::Intact { .. }));
    }
}

/// Every column of an audit record, as stored.
#[derive(Debug, sqlx::FromRow)]
#[allow(dead_code)] // read through Debug, to be searched
struct Row {
    seq: i64,
    at: chrono::DateTime<chrono::Utc>,
    actor_id: Option<uuid::Uuid>,
    session_id: Option<uuid::Uuid>,
    action: String,
    object_kind: Option<String>,
    object_id: Option<uuid::Uuid>,
    outcome: String,
    prev_hash: String,
    hash: String,
}

store_test! {
    async fn audit_records_hold_no_personal_data(app: TestApp) {
        // Personal data goes in through every door a request has: a contact's fields, a search,
        // a device's name, a failed login for an unknown address, a saved filter, a consent.
        some_activity(&app).await;
        let (_, sales) = app.user_with_token("quill@example.org", &[Role::Sales]).await;
        app.get("/api/v1/contacts?q=Quartermaine", &sales).await;
        app.login_as("zq.nobody@unique-marker.example", "Zebedee-password-1", "Zebedee's laptop").await;
        app.token("quill@example.org", "Quartermaine's tablet").await;
        let filter = app.post("/api/v1/filters", &sales, json!({"name": "Zebedee's friends", "search": "Quartermaine"})).await;
        assert_eq!(filter.status, reqwest::StatusCode::CREATED, "{}", filter.body);
        app.get("/api/v1/filters", &sales).await;
        let found = app.get("/api/v1/contacts?q=Quartermaine", &sales).await;
        let id = found.body["items"][0]["id"].as_str().unwrap().to_owned();
        let consent = json!({"at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "email", "topic": "boilers",
                             "method": "web_form", "wording": "Zebedee agrees to boiler emails."});
        app.post(&format!("/api/v1/contacts/{id}/ledger"), &sales, consent).await;

        let sql = "SELECT seq, at, actor_id, session_id, action, object_kind, object_id, outcome, prev_hash, hash FROM audit_events ORDER BY seq";
        let rows: Vec<Row> = match &app.db {
            store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        };
        assert!(rows.len() >= 14, "{} records", rows.len());
        // Every text a record holds is one of a closed set of names: nothing else can be written.
        for row in &rows {
            assert!(row.action.parse::<Action>().is_ok(), "{row:?}");
            assert!(row.outcome.parse::<Outcome>().is_ok(), "{row:?}");
            assert!(row.object_kind.as_deref().is_none_or(|k| k.parse::<ObjectKind>().is_ok()), "{row:?}");
        }
        // And nothing that went in is in any column of any record.
        let dump = format!("{rows:?}").to_lowercase();
        for marker in ["zebedee", "quartermaine", "unique-marker", "sales@example.org", "quill@example.org", "boiler"] {
            assert!(!dump.contains(marker), "{marker} found in the audit trail");
        }
    }
}
