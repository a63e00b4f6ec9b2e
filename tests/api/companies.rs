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
