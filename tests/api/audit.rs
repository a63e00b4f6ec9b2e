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
        let denied_seq = store::audit::for_object(&app.db, uuid::Uuid::nil()).await.unwrap().len();
        assert_eq!(denied_seq, 0);
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

store_test! {
    async fn audit_records_hold_no_personal_data(app: TestApp) {
        some_activity(&app).await;
        let dump: Vec<String> = match &app.db {
            store::Db::Sqlite(pool) => sqlx::query_scalar("SELECT action || ' ' || outcome || ' ' || COALESCE(object_kind, '') FROM audit_events").fetch_all(pool).await.unwrap(),
            store::Db::Postgres(pool) => sqlx::query_scalar("SELECT action || ' ' || outcome || ' ' || COALESCE(object_kind, '') FROM audit_events").fetch_all(pool).await.unwrap(),
        };
        let text = dump.join("\n");
        for marker in ["Zebedee", "Quartermaine", "unique-marker", "sales@example.org"] {
            assert!(!text.contains(marker), "{marker} found in the audit trail");
        }
    }
}
