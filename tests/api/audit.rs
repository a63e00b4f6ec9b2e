use assent_server::audit::{Action, ObjectKind, Outcome};
use assent_server::store::{
    self,
    audit::{ChainName, Verification},
};
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

/// Lets the test alter what the database refuses to: the triggers that keep the trail
/// append-only (an attacker with the database file can drop them too).
async fn disable_append_only(app: &TestApp) {
    for table in ["audit_records", "audit_objects"] {
        let sql = match app.backend {
            Backend::Sqlite => {
                format!("DROP TRIGGER {table}_no_update; DROP TRIGGER {table}_no_delete")
            }
            Backend::Postgres => format!("ALTER TABLE {table} DISABLE TRIGGER USER"),
        };
        app.raw_sql(&sql).await.unwrap();
    }
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    match &app.db {
        store::Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        store::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

/// The chain and record `audit verify` names as the first broken link.
async fn broken_at(app: &TestApp) -> (ChainName, i64, String) {
    match store::audit::verify(&app.db).await.unwrap() {
        Verification::Broken { chain, link } => (chain, link.seq, link.problem),
        intact => panic!("tampering went unnoticed: {intact:?}"),
    }
}

store_test! {
    async fn audit_verify_passes_and_then_names_a_row_altered_in_sql(app: TestApp) {
        some_activity(&app).await;
        let Verification::Intact { records } = store::audit::verify(&app.db).await.unwrap() else {
            panic!("a fresh chain is intact");
        };
        assert!(records >= 5, "login, create, read, denial...: {records}");
        disable_append_only(&app).await;
        app.raw_sql("UPDATE audit_records SET outcome = 'ok' WHERE action = 'denied'").await.unwrap();
        let altered = scalar(&app, "SELECT seq FROM audit_records WHERE action = 'denied'").await;
        let (chain, seq, problem) = broken_at(&app).await;
        assert!(problem.contains("altered"), "{problem}");
        assert_eq!((chain, seq), (ChainName::Chain(1), altered), "the first broken link is the altered record");
    }
}

store_test! {
    async fn audit_verify_names_a_record_whose_objects_were_removed(app: TestApp) {
        some_activity(&app).await;
        let (_, sales) = app.user_with_token("quill@example.org", &[Role::Sales]).await;
        app.get("/api/v1/contacts", &sales).await;
        disable_append_only(&app).await;
        // The list page's record names its contacts; one of them removed is named.
        let listed = scalar(&app, "SELECT seq FROM audit_records WHERE action = 'contact_listed'").await;
        app.raw_sql(&format!("DELETE FROM audit_objects WHERE chain_id = 1 AND seq = {listed}")).await.unwrap();
        let (_, seq, problem) = broken_at(&app).await;
        assert_eq!(seq, listed);
        assert!(problem.contains("names 1 objects but 0 are stored"), "{problem}");

    }
}

store_test! {
    async fn audit_verify_names_a_record_removed_from_the_middle(app: TestApp) {
        some_activity(&app).await;
        disable_append_only(&app).await;
        app.raw_sql("DELETE FROM audit_objects WHERE chain_id = 1 AND seq = 2").await.unwrap();
        app.raw_sql("DELETE FROM audit_records WHERE chain_id = 1 AND seq = 2").await.unwrap();
        let (_, seq, problem) = broken_at(&app).await;
        assert_eq!(seq, 2);
        assert!(problem.contains("missing"), "{problem}");
    }
}

store_test! {
    async fn the_database_refuses_to_update_or_delete_audit_records(app: TestApp) {
        some_activity(&app).await;
        for table in ["audit_records", "audit_objects"] {
            let update = app.raw_sql(&format!("UPDATE {table} SET seq = 99 WHERE seq = 1")).await;
            assert!(update.unwrap_err().to_string().contains("append-only"), "{table}");
            let delete = app.raw_sql(&format!("DELETE FROM {table} WHERE seq = 1")).await;
            assert!(delete.unwrap_err().to_string().contains("append-only"), "{table}");
            if app.backend == Backend::Postgres {
                assert!(app.raw_sql(&format!("TRUNCATE {table}")).await.is_err());
            }
        }
        // The chain written before format 2 is closed: nothing is appended to it.
        let appended = app.raw_sql("INSERT INTO audit_events (seq, at, action, outcome, prev_hash, hash) VALUES (1, '2026-01-01T00:00:00Z', 'logout', 'ok', 'x', 'y')").await;
        assert!(appended.unwrap_err().to_string().contains("closed"));
        assert!(matches!(store::audit::verify(&app.db).await.unwrap(), Verification::Intact { .. }));
    }
}

store_test! {
    async fn a_list_page_is_one_record_naming_every_contact_shown_and_each_finds_it(app: TestApp) {
        let (user, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        for n in 0..3 {
            let reply = app.post("/api/v1/contacts", &sales, json!({"first_name": "Page", "last_name": format!("Person {n}")})).await;
            assert_eq!(reply.status, reqwest::StatusCode::CREATED);
        }
        let before = scalar(&app, "SELECT COUNT(*) FROM audit_records").await;
        let page = app.get("/api/v1/contacts?limit=50", &sales).await;
        let shown: Vec<uuid::Uuid> = page.body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().parse().unwrap()).collect();
        assert_eq!(shown.len(), 3);
        assert_eq!(scalar(&app, "SELECT COUNT(*) FROM audit_records").await, before + 1, "one record for the page");
        for id in shown {
            let records = store::audit::for_object(&app.db, id).await.unwrap();
            let listed: Vec<_> = records.iter().filter(|r| r.action == "contact_listed").collect();
            assert_eq!(listed.len(), 1, "{records:?}");
            assert_eq!(listed[0].actor_id, Some(user.id));
            assert_eq!(listed[0].actor_kind.as_deref(), Some("staff"));
        }
    }
}

/// Every column of an audit record, as stored, with the objects it names.
#[derive(Debug, sqlx::FromRow)]
#[allow(dead_code)] // read through Debug, to be searched
struct Row {
    chain_id: i32,
    seq: i64,
    at: chrono::DateTime<chrono::Utc>,
    actor_kind: Option<String>,
    actor_id: Option<uuid::Uuid>,
    via_id: Option<uuid::Uuid>,
    action: String,
    outcome: String,
    object_count: i64,
    prev_hash: String,
    hash: String,
}

#[derive(Debug, sqlx::FromRow)]
#[allow(dead_code)] // read through Debug, to be searched
struct ObjectRow {
    chain_id: i32,
    seq: i64,
    position: i32,
    object_kind: String,
    object_id: uuid::Uuid,
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

        let sql = "SELECT chain_id, seq, at, actor_kind, actor_id, via_id, action, outcome, object_count, prev_hash, hash FROM audit_records ORDER BY chain_id, seq";
        let rows: Vec<Row> = match &app.db {
            store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        };
        let sql = "SELECT chain_id, seq, position, object_kind, object_id FROM audit_objects ORDER BY chain_id, seq, position";
        let objects: Vec<ObjectRow> = match &app.db {
            store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        };
        assert!(rows.len() >= 14, "{} records", rows.len());
        // Every text a record holds is one of a closed set of names: nothing else can be written.
        for row in &rows {
            assert!(row.action.parse::<Action>().is_ok(), "{row:?}");
            assert!(row.outcome.parse::<Outcome>().is_ok(), "{row:?}");
            assert!(row.actor_kind.as_deref().is_none_or(|k| ["staff", "data_subject", "system"].contains(&k)), "{row:?}");
        }
        for object in &objects {
            assert!(object.object_kind.parse::<ObjectKind>().is_ok(), "{object:?}");
        }
        // And nothing that went in is in any column of any record.
        let dump = format!("{rows:?}{objects:?}").to_lowercase();
        for marker in ["zebedee", "quartermaine", "unique-marker", "sales@example.org", "quill@example.org", "boiler"] {
            assert!(!dump.contains(marker), "{marker} found in the audit trail");
        }
    }
}
