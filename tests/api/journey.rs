//! The foundation's whole story in one run, as the issue tells it: an administrator sets up a
//! salesperson, who works on a contact until the laptop is stolen and revoked; the audit trail
//! verifies, and then catches tampering.

use assent_server::store::{
    self,
    audit::{ChainName, Verification},
};
use assent_shared::api::{Contact, ContactPage, LoginResponse, User};
use assent_shared::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, PASSWORD};
use crate::store_test;

store_test! {
    async fn an_admin_sets_up_sales_who_works_until_the_laptop_is_revoked(app: TestApp) {
        app.create_user("admin@example.org", &[Role::Admin]).await;
        let admin = app.login_as("admin@example.org", PASSWORD, "IT desk").await.json::<LoginResponse>().token;
        let sales_user: User = app
            .post("/api/v1/users", &admin, json!({"email": "sam@example.org", "display_name": "Sam Seller", "roles": ["sales"], "password": PASSWORD}))
            .await
            .json();

        let login = app.login_as("sam@example.org", PASSWORD, "Sam's laptop").await;
        assert_eq!(login.status, StatusCode::CREATED);
        let sales = login.json::<LoginResponse>().token;

        let created = app.post("/api/v1/contacts", &sales, json!({"first_name": "Jane", "last_name": "Doe", "phones": ["07400 123456"]})).await;
        assert_eq!(created.status, StatusCode::CREATED);
        let contact: Contact = created.json();
        let found: ContactPage = app.get("/api/v1/contacts?q=doe", &sales).await.json();
        assert_eq!(found.items[0].id, contact.id);

        let path = format!("/api/v1/contacts/{}", contact.id);
        let bad_phone = app.put(&path, &sales, json!({"last_name": "Doe", "phones": ["0740"], "version": 1})).await;
        assert_eq!(bad_phone.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad_phone.fields(), ["phones[0]"]);
        let updated = app.put(&path, &sales, json!({"first_name": "Jane", "last_name": "Doe-Smith", "version": 1})).await;
        assert_eq!(updated.status, StatusCode::OK);
        let stale = app.put(&path, &sales, json!({"last_name": "Doe", "version": 1})).await;
        assert_eq!(stale.status, StatusCode::CONFLICT);

        assert_eq!(app.get("/api/v1/users", &sales).await.status, StatusCode::FORBIDDEN);

        let revoked = app.post("/api/v1/sessions/revoke", &admin, json!({"user_id": sales_user.id, "device_name": "Sam's laptop"})).await;
        assert_eq!(revoked.body["revoked"], 1);
        assert_eq!(app.get("/api/v1/contacts", &sales).await.status, StatusCode::UNAUTHORIZED);

        assert!(matches!(store::audit::verify(&app.db).await.unwrap(), Verification::Intact { .. }));
        let disable = match app.backend {
            Backend::Sqlite => "DROP TRIGGER audit_records_no_update",
            Backend::Postgres => "ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_update",
        };
        app.raw_sql(disable).await.unwrap();
        app.raw_sql("UPDATE audit_records SET actor_id = NULL WHERE chain_id = 1 AND seq = 3").await.unwrap();
        match store::audit::verify(&app.db).await.unwrap() {
            Verification::Broken { chain, link } => assert_eq!((chain, link.seq), (ChainName::Chain(1), 3)),
            intact => panic!("tampering went unnoticed: {intact:?}"),
        }
    }
}
