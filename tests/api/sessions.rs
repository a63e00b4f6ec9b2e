use assent_server::store;
use assent_shared::api::{LoginResponse, SessionInfo};
use assent_shared::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};
use crate::store_test;

store_test! {
    async fn a_user_logs_in_and_the_token_opens_the_api(app: TestApp) {
        let user = app.create_user("admin@example.org", &[Role::Admin]).await;
        let reply = app.login_as("Admin@Example.org", PASSWORD, "Reception PC").await;
        assert_eq!(reply.status, StatusCode::CREATED);
        let login: LoginResponse = reply.json();
        assert_eq!(login.user.id, user.id);
        assert_eq!(login.session.device_name, "Reception PC");
        assert!(login.session.absolute_expires_at > login.session.idle_expires_at);
        let me = app.get("/api/v1/me", &login.token).await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["id"], user.id.to_string());
    }
}

store_test! {
    async fn a_wrong_password_and_an_unknown_account_get_the_same_answer(app: TestApp) {
        let user = app.create_user("jane@example.org", &[Role::Sales]).await;
        let wrong = app.login_as("jane@example.org", "not-the-password-1", "laptop").await;
        let unknown = app.login_as("nobody@example.org", "not-the-password-1", "laptop").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.status, unknown.status);
        assert_eq!(wrong.body, unknown.body);
        let records = store::audit::for_object(&app.db, user.id).await.unwrap();
        assert!(records.iter().any(|r| r.action == "login_failed" && r.outcome == "bad_password"));
    }
}

store_test! {
    async fn repeated_failed_logins_are_throttled_with_retry_after(app: TestApp) {
        app.create_user("jane@example.org", &[Role::Sales]).await;
        for _ in 0..5 {
            let reply = app.login_as("jane@example.org", "wrong-password-123", "laptop").await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        }
        let reply = app.login_as("jane@example.org", PASSWORD, "laptop").await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.code(), "too_many_attempts");
        let retry: u64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry > 0 && retry <= 900);
    }
}

store_test! {
    async fn a_request_without_a_valid_token_gets_401(app: TestApp) {
        let none = app.send(Method::GET, "/api/v1/me", None, None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert_eq!(none.code(), "unauthenticated");
        let garbage = app.get("/api/v1/me", "not-a-token").await;
        assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    }
}

store_test! {
    async fn logout_ends_the_session(app: TestApp) {
        let (_, token) = app.user_with_token("jane@example.org", &[Role::Sales]).await;
        let reply = app.send(Method::DELETE, "/api/v1/sessions/current", Some(&token), None).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        let reply = app.get("/api/v1/me", &token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body["message"].as_str().unwrap().contains("revoked"));
    }
}

store_test! {
    async fn an_admin_revokes_a_stolen_device_and_its_next_request_gets_401(app: TestApp) {
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let sales = app.create_user("jane@example.org", &[Role::Sales]).await;
        let laptop = app.token("jane@example.org", "Jane's laptop").await;
        let desktop = app.token("jane@example.org", "Office desktop").await;

        let listed = app.get(&format!("/api/v1/users/{}/sessions", sales.id), &admin).await;
        assert_eq!(listed.status, StatusCode::OK);
        assert_eq!(listed.json::<Vec<SessionInfo>>().len(), 2);

        let reply = app.post("/api/v1/sessions/revoke", &admin, json!({"user_id": sales.id, "device_name": "Jane's laptop"})).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["revoked"], 1);
        assert_eq!(app.get("/api/v1/me", &laptop).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get("/api/v1/me", &desktop).await.status, StatusCode::OK, "other devices keep working");
    }
}

store_test! {
    async fn a_sales_user_cannot_revoke_someone_elses_sessions(app: TestApp) {
        let other = app.create_user("other@example.org", &[Role::Sales]).await;
        let (_, sales) = app.user_with_token("jane@example.org", &[Role::Sales]).await;
        let reply = app.post("/api/v1/sessions/revoke", &sales, json!({"user_id": other.id})).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let reply = app.get(&format!("/api/v1/users/{}/sessions", other.id), &sales).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        let mine = app.get("/api/v1/sessions", &sales).await;
        assert_eq!(mine.status, StatusCode::OK);
        assert!(mine.json::<Vec<SessionInfo>>()[0].current);
    }
}

store_test! {
    async fn a_deactivated_user_is_refused_on_the_next_request(app: TestApp) {
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let (sales, token) = app.user_with_token("jane@example.org", &[Role::Sales]).await;
        let reply = app.send(Method::PATCH, &format!("/api/v1/users/{}", sales.id), Some(&admin), Some(json!({"active": false, "version": 1}))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::UNAUTHORIZED);
        let again = app.login_as("jane@example.org", PASSWORD, "laptop").await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    }
}

store_test! {
    async fn an_idle_session_expires(app: TestApp) {
        let (_, token) = app.user_with_token("jane@example.org", &[Role::Sales]).await;
        let long_ago = match app.backend {
            crate::helpers::Backend::Sqlite => "UPDATE sessions SET last_seen_at = '2020-01-01T00:00:00+00:00'",
            crate::helpers::Backend::Postgres => "UPDATE sessions SET last_seen_at = '2020-01-01T00:00:00Z'",
        };
        app.raw_sql(long_ago).await.unwrap();
        let reply = app.get("/api/v1/me", &token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body["message"].as_str().unwrap().contains("inactivity"));
    }
}

store_test! {
    async fn changing_the_password_checks_the_policy_and_ends_other_sessions(app: TestApp) {
        let (_, token) = app.user_with_token("jane@example.org", &[Role::Sales]).await;
        let other = app.token("jane@example.org", "second device").await;
        let reply = app.post("/api/v1/me/password", &token, json!({"current_password": PASSWORD, "new_password": "password1234"})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.fields(), ["new_password"]);
        let reply = app.post("/api/v1/me/password", &token, json!({"current_password": "wrong", "new_password": "quiet-harbour-lamp-42"})).await;
        assert_eq!(reply.fields(), ["current_password"]);
        let reply = app.post("/api/v1/me/password", &token, json!({"current_password": PASSWORD, "new_password": "quiet-harbour-lamp-42"})).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::OK);
        assert_eq!(app.get("/api/v1/me", &other).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(app.login_as("jane@example.org", "quiet-harbour-lamp-42", "laptop").await.status, StatusCode::CREATED);
    }
}

store_test! {
    async fn a_login_checked_against_the_old_password_makes_no_session_once_the_password_changed(app: TestApp) {
        use assent_server::store::sessions::SessionRow;
        let (user, token) = app.user_with_token("jane@example.org", &[Role::Sales]).await;
        // A login in flight has verified the old password (argon2 takes a while) ...
        let old_hash = store::users::find(&app.db, user.id).await.unwrap().unwrap().password_hash;
        // ... when the password is changed.
        let reply = app.post("/api/v1/me/password", &token, json!({"current_password": PASSWORD, "new_password": "quince-harbour-lamp-42"})).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
        // The login's session is not made: the password it checked is no longer the user's.
        let now = assent_server::clock::now();
        let session = SessionRow {
            id: uuid::Uuid::now_v7(),
            user_id: user.id,
            device_name: "a laptop".into(),
            created_at: now,
            last_seen_at: now,
            absolute_expires_at: now + chrono::Duration::hours(1),
            revoked_at: None,
        };
        let mut tx = app.db.begin().await.unwrap();
        let made = store::sessions::insert_if_password(&mut tx, &session, "a-token-hash", &old_hash).await.unwrap();
        tx.commit().await.unwrap();
        assert!(!made, "a session was made with the old password");
        let new_hash = store::users::find(&app.db, user.id).await.unwrap().unwrap().password_hash;
        let mut tx = app.db.begin().await.unwrap();
        assert!(store::sessions::insert_if_password(&mut tx, &session, "a-token-hash", &new_hash).await.unwrap());
        drop(tx);
    }
}
