//! Calls, letters and faxes logged by staff: marketing is decided first and gets its warrant like
//! a message the sender sends; one the engine refused is still recorded, with its "not allowed"
//! warrant, in the contact's log and evidence pack and in the data protection lead's list.

use assent_shared::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::campaigns::{catalogue, contact};
use crate::helpers::TestApp;
use crate::store_test;

fn call(kind: &str, summary: &str) -> Value {
    json!({"message": {"kind": kind, "channel": "phone", "topic": "boilers"}, "summary": summary})
}

store_test! {
    async fn a_logged_call_is_decided_first_and_a_refused_one_is_recorded_for_the_dpo(app: TestApp) {
        catalogue(&app).await;
        let (sam, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, dpo) = app.user_with_token("dora.dpo@example.org", &[Role::Dpo]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe", "phones": ["+447400123456"]})).await;
        let opt_out = app.post(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales,
            json!({"at": "2025-06-01T09:00:00Z", "type": "opt_out", "channel": "phone", "topic": "*"})).await;
        assert_eq!(opt_out.status, StatusCode::CREATED, "{}", opt_out.body);
        let log_on = |id: uuid::Uuid| format!("/api/v1/contacts/{id}/communications");

        // Jane opted out of calls: the call is logged all the same, with a refusal.
        let refused = app.post(&log_on(jane.id), &sales, call("marketing", "Called about the winter boiler check.")).await;
        assert_eq!(refused.status, StatusCode::CREATED, "{}", refused.body);
        let refused = refused.body;
        assert_eq!((refused["allowed"].clone(), refused["reasons"].clone()), (json!(false), json!(["opted_out", "tps_unscreened"])), "{refused}");
        assert_eq!(refused["evidence_seqs"], json!([1]), "the opt-out it rests on");
        assert_eq!((refused["delivery"].clone(), refused["outcome"].clone()), (json!("sent"), json!("logged")), "it happened");
        assert_eq!(refused["contact_point"], "+447400123456", "the contact's number by default");
        assert_eq!(refused["author_id"], json!(sam.id));

        // A service letter to someone who never agreed to marketing is allowed as service.
        let letter = app.post(&log_on(jane.id), &sales, json!({
            "message": {"kind": "service", "channel": "post"}, "at": "2026-01-05T10:00:00Z",
            "contact_point": "1 Quay Street, Bristol BS1 4DJ", "summary": "Sent the boiler's warranty papers."})).await;
        assert_eq!(letter.status, StatusCode::CREATED, "{}", letter.body);
        assert_eq!((letter.body["allowed"].clone(), letter.body["basis"].clone()), (json!(true), json!("service")));
        assert_eq!(letter.body["delivery_updated_at"], "2026-01-05T10:00:00Z");

        // Bad input: a precise 422 or 404, and nothing recorded.
        for (body, field) in [
            (json!({"message": {"kind": "marketing", "channel": "email", "topic": "boilers"}, "summary": "x"}), "message.channel"),
            (call("marketing", "   "), "summary"),
            (json!({"message": {"kind": "marketing", "channel": "phone", "topic": "kitchens"}, "summary": "x"}), "message.topic"),
            (json!({"message": {"kind": "service", "channel": "phone"}, "summary": "x", "at": "2999-01-01T00:00:00Z"}), "at"),
            (json!({"message": {"kind": "service", "channel": "phone"}, "summary": "x", "contact_point": "not a number"}), "contact_point"),
        ] {
            let reply = app.post(&log_on(jane.id), &sales, body.clone()).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", reply.body);
            assert_eq!(reply.body["fields"][0]["field"], field, "{}", reply.body);
        }
        let nobody = app.post(&log_on(uuid::Uuid::now_v7()), &sales, call("service", "x")).await;
        assert_eq!(nobody.status, StatusCode::NOT_FOUND, "{}", nobody.body);
        let log = app.get(&log_on(jane.id), &sales).await.body;
        assert_eq!(log.as_array().unwrap().len(), 2, "the call and the letter, nothing else: {log}");

        // The data protection lead sees the refusal, and only it; sales staff do not see the list.
        let listed = app.get("/api/v1/communications/logged-refusals", &dpo).await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
        let listed = listed.body.as_array().unwrap().clone();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!((listed[0]["warrant_id"].clone(), listed[0]["contact_id"].clone()), (refused["warrant_id"].clone(), json!(jane.id)));
        assert_eq!(app.get("/api/v1/communications/logged-refusals", &sales).await.status, StatusCode::FORBIDDEN);

        // The evidence pack shows it; the warrants' chains are intact.
        let pack = app.get(&format!("/api/v1/contacts/{}/evidence-pack", jane.id), &dpo).await;
        let pack = pack.body.as_str().unwrap().to_owned();
        assert!(pack.contains("Phone call (logged)") && pack.contains("not allowed (opted out, tps unscreened)"), "{pack}");
        assert!(pack.contains("Letter (logged)") && pack.contains("a service message, not marketing"), "{pack}");
        let verified = assent_server::service::audit::verify(&app.db).await.unwrap();
        assert_eq!(verified.warrants, Ok(2));
    }
}
