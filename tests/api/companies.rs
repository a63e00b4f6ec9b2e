use assent_shared::api::{Company, CompanyPage, FieldChange};
use assent_shared::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::store_test;

store_test! {
    async fn a_company_is_created_listed_and_updated_with_history(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let reply = app.post("/api/v1/companies", &sales, json!({
            "name": "Northfield Heating Ltd", "registration_number": "sc123456",
            "generic_email": "Sales@Northfield.Example", "generic_phone": "020 7946 0958",
            "address": {"lines": ["Unit 4"], "town": "Leeds", "postcode": "LS1 1BA"}
        })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let company: Company = reply.json();
        assert_eq!(company.registration_number.as_deref(), Some("SC123456"));
        assert_eq!(company.generic_email.as_deref(), Some("Sales@northfield.example"));
        assert_eq!(company.generic_phone.as_deref(), Some("+442079460958"));
        app.post("/api/v1/companies", &sales, json!({"name": "Acme Ltd"})).await;

        let page: CompanyPage = app.get("/api/v1/companies", &sales).await.json();
        let names: Vec<&str> = page.items.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Acme Ltd", "Northfield Heating Ltd"]);
        let page: CompanyPage = app.get("/api/v1/companies?q=north", &sales).await.json();
        assert_eq!(page.items.len(), 1);

        let path = format!("/api/v1/companies/{}", company.id);
        let reply = app.put(&path, &sales, json!({"name": "Northfield Heating Group Ltd", "version": 1})).await;
        assert_eq!(reply.status, StatusCode::OK);
        let stale = app.put(&path, &sales, json!({"name": "Old copy", "version": 1})).await;
        assert_eq!(stale.status, StatusCode::CONFLICT);
        let history: Vec<FieldChange> = app.get(&format!("{path}/history"), &sales).await.json();
        assert!(history.iter().any(|c| c.field == "name" && c.new_value.as_deref() == Some("Northfield Heating Group Ltd")));
    }
}

store_test! {
    async fn company_fields_are_validated_and_rights_checked(app: TestApp) {
        let (_, owner) = app.user_with_token("owner@example.org", &[Role::Sales]).await;
        let (_, other) = app.user_with_token("other@example.org", &[Role::Sales]).await;
        let reply = app.post("/api/v1/companies", &owner, json!({"name": "", "registration_number": "12-34", "generic_phone": "1"})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.fields(), ["name", "registration_number", "generic_phone"]);
        let company: Company = app.post("/api/v1/companies", &owner, json!({"name": "Acme Ltd"})).await.json();
        let path = format!("/api/v1/companies/{}", company.id);
        assert_eq!(app.put(&path, &other, json!({"name": "Mine now", "version": 1})).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.post(&format!("{path}/deactivate"), &owner, json!({"version": 1})).await.status, StatusCode::OK);
    }
}

store_test! {
    async fn companies_are_found_by_their_registration_number(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        for (name, number) in [("Harbour Mutual", Some("123456")), ("Alpine Trails Ltd", Some("SC654321")), ("Oak & Ivy", None)] {
            let reply = app.post("/api/v1/companies", &sales, json!({"name": name, "registration_number": number})).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        }
        let names = |reply: &crate::helpers::Reply| -> Vec<String> {
            reply.body["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(names(&app.get("/api/v1/companies?q=00123456", &sales).await), ["Harbour Mutual"]);
        assert_eq!(names(&app.get("/api/v1/companies?q=123456", &sales).await), ["Harbour Mutual"]);
        assert_eq!(names(&app.get("/api/v1/companies?q=sc%20654321", &sales).await), ["Alpine Trails Ltd"]);
        assert_eq!(names(&app.get("/api/v1/companies?q=trails", &sales).await), ["Alpine Trails Ltd"]);
        assert!(names(&app.get("/api/v1/companies?q=999999", &sales).await).is_empty());
    }
}

store_test! {
    async fn saved_filters_are_audited_when_listed_and_saved(app: TestApp) {
        let (user, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let saved = app.post("/api/v1/filters", &sales, json!({"name": "Leeds boiler customers", "search": "leeds"})).await;
        assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
        let id: uuid::Uuid = saved.body["id"].as_str().unwrap().parse().unwrap();
        let records = assent_server::store::audit::for_object(&app.db, id).await.unwrap();
        assert!(records.iter().any(|r| r.action == "filter_saved" && r.actor_id == Some(user.id)));
        app.get("/api/v1/filters", &sales).await;
        let sql = "SELECT COUNT(*) FROM audit_records WHERE action = 'filters_listed'";
        let listed: i64 = match app.db.pool() {
            assent_server::store::Pool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            assent_server::store::Pool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        };
        assert_eq!(listed, 1);
    }
}
