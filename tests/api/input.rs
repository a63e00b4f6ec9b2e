//! Bad input gets a clear 4xx and changes nothing, whatever door it comes through: text a store
//! cannot hold (PostgreSQL cannot hold a NUL) and bodies over the size limit.

use assent_shared::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;
use crate::store_test;

/// A cursor as the server makes them, but with a NUL in its key.
fn nul_cursor() -> String {
    use base64::Engine;
    let text = format!("{}\u{1f}doe\u{0}jane", uuid::Uuid::now_v7());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

store_test! {
    async fn text_with_a_nul_is_refused_with_a_4xx_wherever_it_enters(app: TestApp) {
        let (user, sales) = app.user_with_token("sales@example.org", &[Role::Sales, Role::Manager]).await;
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin, Role::Dpo]).await;
        let created = app.post("/api/v1/contacts", &sales, json!({"first_name": "Jane", "last_name": "Doe"})).await;
        let contact = created.body["id"].as_str().unwrap().to_owned();
        let nul = "Jane\u{0}Doe";
        let ledger = format!("/api/v1/contacts/{contact}/ledger");
        let attempts: Vec<(Method, String, Option<&str>, Option<serde_json::Value>)> = vec![
            (Method::GET, "/api/v1/contacts?q=Jane%00Doe".into(), Some(&sales), None),
            (Method::GET, "/api/v1/companies?q=Acme%00Ltd".into(), Some(&sales), None),
            (Method::GET, "/api/v1/consent-wordings?q=Email%00me".into(), Some(&sales), None),
            // A cursor whose key holds a NUL: base64 of "<id>\u{1f}doe\u{0}jane".
            (Method::GET, format!("/api/v1/contacts?after={}", nul_cursor()), Some(&sales), None),
            (Method::GET, format!("/api/v1/companies?after={}", nul_cursor()), Some(&sales), None),
            (Method::POST, "/api/v1/contacts".into(), Some(&sales), Some(json!({"last_name": nul}))),
            (Method::POST, "/api/v1/contacts".into(), Some(&sales), Some(json!({"last_name": "Doe", "notes": nul}))),
            (Method::POST, "/api/v1/companies".into(), Some(&sales), Some(json!({"name": nul}))),
            (Method::POST, ledger.clone(), Some(&sales), Some(json!({"at": "2025-01-01T00:00:00Z", "type": "opt_out", "channel": "email", "topic": nul}))),
            (Method::POST, ledger.clone(), Some(&sales), Some(json!({"at": "2025-01-01T00:00:00Z", "type": "consent_given", "channel": "email",
                "topic": "boilers", "method": "web_form", "wording": nul}))),
            (Method::POST, ledger.clone(), Some(&sales), Some(json!({"at": "2025-01-01T00:00:00Z", "type": "tps_check", "registered": false,
                "source": {"paper_reference": nul}}))),
            (Method::POST, "/api/v1/decisions/audience".into(), Some(&sales), Some(json!({"audience": {"search": nul},
                "message": {"kind": "marketing", "channel": "email", "topic": "boilers"}}))),
            (Method::POST, "/api/v1/filters".into(), Some(&sales), Some(json!({"name": nul, "search": "x"}))),
            (Method::POST, "/api/v1/filters".into(), Some(&sales), Some(json!({"name": "Leeds", "search": nul}))),
            (Method::POST, "/api/v1/sessions".into(), None, Some(json!({"email": "sales@example.org\u{0}", "password": "x", "device_name": "laptop"}))),
            (Method::POST, "/api/v1/sessions".into(), None, Some(json!({"email": "sales@example.org", "password": "x", "device_name": nul}))),
            (Method::POST, "/api/v1/sessions/revoke".into(), Some(&sales), Some(json!({"user_id": user.id, "device_name": nul}))),
            (Method::POST, "/api/v1/users".into(), Some(&admin), Some(json!({"email": "new@example.org", "display_name": nul, "roles": ["sales"], "password": "plum-orbit-canal-98"}))),
            (Method::PUT, "/api/v1/policy".into(), Some(&admin), Some(json!({"policy": {}, "note": nul}))),
        ];
        for (method, path, token, body) in attempts {
            let reply = app.send(method.clone(), &path, token, body).await;
            assert!(reply.status.is_client_error(), "{method} {path}: {} {}", reply.status, reply.body);
            assert!(reply.body["message"].is_string(), "{method} {path}: {}", reply.body);
        }
        // An import line naming an event id with a NUL.
        let import = app.client.post(app.url(&format!("{ledger}/import"))).bearer_auth(&sales)
            .header("content-type", "application/x-ndjson")
            .body("{\"id\":\"a\\u0000b\",\"at\":\"2025-01-01T00:00:00Z\",\"type\":\"tps_check\",\"registered\":false}\n")
            .send().await.unwrap();
        assert_eq!(import.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // Nothing was written: the ledger is empty and the contact is the only one.
        let events = app.get(&ledger, &sales).await;
        assert_eq!(events.body, json!([]));
        let listed = app.get("/api/v1/contacts", &sales).await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    }
}

store_test! {
    async fn a_body_over_the_limit_gets_a_clean_413_the_client_can_read(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let notes = "x".repeat(2 * 1024 * 1024);
        let body = json!({"last_name": "Doe", "notes": notes}).to_string();
        for _ in 0..3 {
            let response = app.client.post(app.url("/api/v1/contacts")).bearer_auth(&sales)
                .header("content-type", "application/json").body(body.clone())
                .send().await.expect("the server answers instead of resetting the connection");
            assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
            let error: serde_json::Value = response.json().await.unwrap();
            assert_eq!(error["code"], "body_too_large");
        }
        let import = app.client.post(app.url(&format!("/api/v1/contacts/{}/ledger/import", uuid::Uuid::now_v7())))
            .bearer_auth(&sales).header("content-type", "application/x-ndjson")
            .body("\n".repeat(3 * 1024 * 1024)).send().await.unwrap();
        assert_eq!(import.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(import.json::<serde_json::Value>().await.unwrap()["code"], "body_too_large");
        // A body just under the limit is read as usual.
        let fits = json!({"last_name": "Doe", "notes": "y".repeat(10_000)});
        assert_eq!(app.post("/api/v1/contacts", &sales, fits).await.status, StatusCode::CREATED);
    }
}

store_test! {
    async fn json_of_the_wrong_shape_is_a_422_even_where_serde_calls_it_syntax(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        // An audience names one kind of audience; this one names two (schemathesis found it).
        // As sent, in this order: serde meets the second key where it expects the object's end.
        let body = r#"{"audience": {"search": "00", "contact_ids": "01a23571-95dc-71e3-afd7-1a2485555d46"}, "message": {"channel": "any", "kind": "service", "topic": ""}}"#;
        let response = app.client.post(app.url("/api/v1/decisions/audience")).bearer_auth(&sales)
            .header("content-type", "application/json").body(body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let reply: serde_json::Value = response.json().await.unwrap();
        assert_eq!(reply["code"], "invalid_body", "{reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(message.contains("audience") && !message.contains("Failed to parse"), "{message}");
        // Text that is not JSON stays a 400.
        let response = app.client.post(app.url("/api/v1/decisions/audience")).bearer_auth(&sales)
            .header("content-type", "application/json").body("{\"audience\": {\"search\": ").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}
