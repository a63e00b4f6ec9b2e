//! Every endpoint, once with a caller who may use it and once with one who may not (and once with
//! no session at all). The matrix is the authorisation rule written out: roles per endpoint, and
//! ownership per object.

use assent_shared::api::{Company, Contact};
use assent_shared::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{TestApp, PASSWORD};
use crate::store_test;

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: &'static str,
    denied: &'static str,
}

fn case(
    method: Method,
    path: String,
    body: Option<Value>,
    allowed: &'static str,
    denied: &'static str,
) -> Case {
    Case {
        method,
        path,
        body,
        allowed,
        denied,
    }
}

store_test! {
    async fn every_endpoint_allows_the_right_callers_and_refuses_the_others(app: TestApp) {
        let (admin_user, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let (sales_user, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let (_, other_sales) = app.user_with_token("other@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("manager@example.org", &[Role::Manager]).await;
        let (_, dpo) = app.user_with_token("dpo@example.org", &[Role::Dpo]).await;
        let token = |name: &str| match name {
            "admin" => admin.clone(),
            "sales" => sales.clone(),
            "other_sales" => other_sales.clone(),
            "manager" => manager.clone(),
            "dpo" => dpo.clone(),
            other => panic!("no caller {other}"),
        };

        let contact: Contact = app.post("/api/v1/contacts", &sales, json!({"last_name": "Doe"})).await.json();
        let company: Company = app.post("/api/v1/companies", &sales, json!({"name": "Acme Ltd"})).await.json();
        let c = format!("/api/v1/contacts/{}", contact.id);
        let co = format!("/api/v1/companies/{}", company.id);
        let edit_contact = json!({"last_name": "Doe", "version": 1});
        let edit_company = json!({"name": "Acme Ltd", "version": 1});

        let cases = vec![
            case(Method::GET, "/api/v1/me".into(), None, "sales", "-"),
            case(Method::GET, "/api/v1/sessions".into(), None, "sales", "-"),
            case(Method::GET, format!("/api/v1/users/{}/sessions", sales_user.id), None, "admin", "other_sales"),
            case(Method::POST, "/api/v1/sessions/revoke".into(), Some(json!({"user_id": sales_user.id, "device_name": "none"})), "admin", "other_sales"),
            case(Method::GET, "/api/v1/users".into(), None, "admin", "manager"),
            case(Method::POST, "/api/v1/users".into(), Some(json!({"email": "new@example.org", "display_name": "New", "roles": ["sales"], "password": PASSWORD})), "admin", "dpo"),
            case(Method::GET, format!("/api/v1/users/{}", admin_user.id), None, "admin", "sales"),
            case(Method::PATCH, format!("/api/v1/users/{}", sales_user.id), Some(json!({"display_name": "Sam", "version": 1})), "admin", "manager"),
            case(Method::GET, "/api/v1/contacts".into(), None, "sales", "admin"),
            case(Method::POST, "/api/v1/contacts".into(), Some(json!({"last_name": "Roe"})), "dpo", "admin"),
            case(Method::POST, "/api/v1/contacts".into(), Some(json!({"last_name": "Roe", "owner_id": sales_user.id})), "manager", "other_sales"),
            case(Method::GET, c.clone(), None, "other_sales", "admin"),
            case(Method::GET, format!("{c}/history"), None, "dpo", "admin"),
            case(Method::GET, format!("{c}/communications"), None, "dpo", "admin"),
            case(Method::POST, format!("{c}/communications"), Some(json!({"message": {"kind": "service", "channel": "post"}, "summary": "Sent the warranty papers."})), "other_sales", "admin"),
            case(Method::GET, "/api/v1/communications/logged-refusals".into(), None, "manager", "sales"),
            case(Method::PUT, c.clone(), Some(edit_contact.clone()), "sales", "other_sales"),
            case(Method::PUT, c.clone(), Some(json!({"last_name": "Doe", "version": 2})), "manager", "admin"),
            case(Method::POST, format!("{c}/deactivate"), Some(json!({"version": 3})), "dpo", "other_sales"),
            case(Method::GET, "/api/v1/companies".into(), None, "manager", "admin"),
            case(Method::POST, "/api/v1/companies".into(), Some(json!({"name": "Beta Ltd"})), "sales", "admin"),
            case(Method::GET, co.clone(), None, "other_sales", "admin"),
            case(Method::GET, format!("{co}/history"), None, "sales", "admin"),
            case(Method::PUT, co.clone(), Some(edit_company), "sales", "other_sales"),
            case(Method::POST, format!("{co}/deactivate"), Some(json!({"version": 2})), "manager", "other_sales"),
            case(Method::GET, format!("{c}/ledger"), None, "other_sales", "admin"),
            case(Method::POST, format!("{c}/ledger"), Some(json!({"at": "2025-01-01T00:00:00Z", "type": "tps_check", "registered": false})), "other_sales", "admin"),
            case(Method::POST, format!("{c}/ledger"), Some(json!({"at": "2025-01-02T00:00:00Z", "type": "erased"})), "dpo", "manager"),
            case(Method::GET, format!("{c}/ledger/export"), None, "sales", "admin"),
            case(Method::POST, format!("{c}/ledger/import"), Some(json!({"at": "2025-01-03T00:00:00Z", "type": "enquiry", "topic": "boilers"})), "manager", "sales"),
            case(Method::POST, "/api/v1/decisions".into(), Some(json!({"contact_id": contact.id, "message": {"kind": "service", "channel": "email"}})), "sales", "admin"),
            case(Method::POST, "/api/v1/decisions/audience".into(), Some(json!({"audience": "everyone", "message": {"kind": "service", "channel": "post"}})), "dpo", "admin"),
            case(Method::GET, "/api/v1/filters".into(), None, "sales", "admin"),
            case(Method::POST, "/api/v1/filters".into(), Some(json!({"name": "Everyone", "search": ""})), "manager", "admin"),
            case(Method::GET, "/api/v1/policy".into(), None, "sales", "-"),
            case(Method::GET, "/api/v1/policy/history".into(), None, "dpo", "manager"),
            case(Method::PUT, "/api/v1/policy".into(), Some(json!({"policy": {}})), "admin", "manager"),
            case(Method::GET, "/api/v1/topics".into(), None, "sales", "-"),
            case(Method::GET, "/api/v1/campaigns".into(), None, "dpo", "admin"),
            case(Method::POST, "/api/v1/campaigns".into(), Some(json!({"name": "Notice", "message": {"kind": "service", "channel": "email"}, "subject": "Notice", "body": "A notice.", "audience": {"contact_ids": [contact.id]}})), "sales", "dpo"),
            case(Method::GET, "/api/v1/topics/history".into(), None, "admin", "sales"),
            case(Method::PUT, "/api/v1/topics".into(), Some(json!({"topics": []})), "dpo", "manager"),
        ];
        for case in &cases {
            let what = format!("{} {}", case.method, case.path);
            let nobody = app.send(case.method.clone(), &case.path, None, case.body.clone()).await;
            assert_eq!(nobody.status, StatusCode::UNAUTHORIZED, "{what} without a session");
            if case.denied != "-" {
                let denied = app.send(case.method.clone(), &case.path, Some(&token(case.denied)), case.body.clone()).await;
                assert_eq!(denied.status, StatusCode::FORBIDDEN, "{what} as {}: {}", case.denied, denied.body);
            }
            let allowed = app.send(case.method.clone(), &case.path, Some(&token(case.allowed)), case.body.clone()).await;
            assert!(allowed.status.is_success(), "{what} as {}: {} {}", case.allowed, allowed.status, allowed.body);
        }

        // Ending one session: one's own, or anyone's as an administrator.
        let listed = app.get(&format!("/api/v1/users/{}/sessions", sales_user.id), &admin).await;
        let session_id = listed.body[0]["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/sessions/{session_id}");
        assert_eq!(app.send(Method::DELETE, &path, None, None).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(app.send(Method::DELETE, &path, Some(&other_sales), None).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.send(Method::DELETE, &path, Some(&admin), None).await.status, StatusCode::NO_CONTENT);

        // Logout and the password change need a session, and act only on the caller's own.
        assert_eq!(app.send(Method::DELETE, "/api/v1/sessions/current", None, None).await.status, StatusCode::UNAUTHORIZED);
        let change = json!({"current_password": PASSWORD, "new_password": "quiet-harbour-lamp-42"});
        assert_eq!(app.send(Method::POST, "/api/v1/me/password", None, Some(change.clone())).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(app.post("/api/v1/me/password", &dpo, change).await.status, StatusCode::NO_CONTENT);
        assert_eq!(app.send(Method::DELETE, "/api/v1/sessions/current", Some(&dpo), None).await.status, StatusCode::NO_CONTENT);
    }
}
