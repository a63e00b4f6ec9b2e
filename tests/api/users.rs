use assent_shared::api::User;
use assent_shared::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};
use crate::store_test;

store_test! {
    async fn an_admin_creates_a_sales_user_who_can_then_log_in(app: TestApp) {
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let reply = app.post("/api/v1/users", &admin, json!({
            "email": "Jane.Doe@Example.org", "display_name": "Jane Doe", "roles": ["sales"], "password": PASSWORD
        })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let user: User = reply.json();
        assert_eq!(user.email, "Jane.Doe@example.org");
        assert_eq!(user.roles, [Role::Sales]);
        assert_eq!(app.login_as("jane.doe@example.org", PASSWORD, "laptop").await.status, StatusCode::CREATED);
        let listed = app.get("/api/v1/users", &admin).await.json::<Vec<User>>();
        assert_eq!(listed.len(), 2);
    }
}

store_test! {
    async fn only_an_admin_manages_users(app: TestApp) {
        let (sales_user, sales) = app.user_with_token("jane@example.org", &[Role::Sales, Role::Manager]).await;
        let admin_user = app.create_user("admin@example.org", &[Role::Admin]).await;
        let create = app.post("/api/v1/users", &sales, json!({
            "email": "x@example.org", "display_name": "X", "roles": ["admin"], "password": PASSWORD
        })).await;
        assert_eq!(create.status, StatusCode::FORBIDDEN);
        assert_eq!(create.code(), "forbidden");
        assert_eq!(app.get("/api/v1/users", &sales).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.get(&format!("/api/v1/users/{}", admin_user.id), &sales).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.get(&format!("/api/v1/users/{}", sales_user.id), &sales).await.status, StatusCode::OK);
        let patch = app.send(Method::PATCH, &format!("/api/v1/users/{}", sales_user.id), Some(&sales), Some(json!({"roles": ["admin"], "version": 1}))).await;
        assert_eq!(patch.status, StatusCode::FORBIDDEN);
        let denied = assent_server::store::audit::for_object(&app.db, admin_user.id).await.unwrap();
        assert!(denied.iter().any(|r| r.action == "denied" && r.actor_id == Some(sales_user.id)));
    }
}

store_test! {
    async fn weak_passwords_and_bad_fields_are_refused_with_422(app: TestApp) {
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let reply = app.post("/api/v1/users", &admin, json!({
            "email": "not an email", "display_name": " ", "roles": [], "password": "short"
        })).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.fields(), ["email", "display_name", "roles", "password"]);
        let common = app.post("/api/v1/users", &admin, json!({
            "email": "x@example.org", "display_name": "X", "roles": ["sales"], "password": "1qaz2wsx3edc4rfv"
        })).await;
        assert_eq!(common.fields(), ["password"]);
        assert!(common.body["message"].as_str().unwrap().contains("commonly used"));
        let role = app.post("/api/v1/users", &admin, json!({
            "email": "x@example.org", "display_name": "X", "roles": ["root"], "password": PASSWORD
        })).await;
        assert_eq!(role.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(role.code(), "invalid_body");
    }
}

store_test! {
    async fn a_second_user_with_the_same_email_gets_409(app: TestApp) {
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let reply = app.post("/api/v1/users", &admin, json!({
            "email": "ADMIN@example.org", "display_name": "Again", "roles": ["sales"], "password": PASSWORD
        })).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(reply.code(), "already_exists");
        assert_eq!(reply.fields(), ["email"]);
    }
}

store_test! {
    async fn an_admin_cannot_lock_themselves_out(app: TestApp) {
        let (admin_user, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let path = format!("/api/v1/users/{}", admin_user.id);
        let reply = app.send(Method::PATCH, &path, Some(&admin), Some(json!({"roles": ["sales"], "active": false, "version": 1}))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.fields(), ["roles", "active"]);
    }
}

store_test! {
    async fn a_user_update_made_against_an_old_version_gets_409_and_changes_nothing(app: TestApp) {
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let sam = app.create_user("sam@example.org", &[Role::Sales]).await;
        let path = format!("/api/v1/users/{}", sam.id);
        // One administrator deactivates Sam; another, looking at the old version, renames Sam.
        let deactivated = app.send(Method::PATCH, &path, Some(&admin), Some(json!({"version": sam.version, "active": false}))).await;
        assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
        assert_eq!(deactivated.json::<User>().version, sam.version + 1);
        let renamed = app.send(Method::PATCH, &path, Some(&admin), Some(json!({"version": sam.version, "display_name": "Samuel"}))).await;
        assert_eq!(renamed.status, StatusCode::CONFLICT, "{}", renamed.body);
        assert_eq!(renamed.code(), "stale_version");
        assert_eq!(renamed.body["conflict"]["current_version"], sam.version + 1);
        let now: User = app.get(&path, &admin).await.json();
        assert!(!now.active, "the rename did not undo the deactivation");
        assert_eq!(now.display_name, sam.display_name);
    }
}

store_test! {
    async fn two_administrators_removing_each_other_leave_one(app: TestApp) {
        // Over several rounds, two administrators demote each other at the same moment: one
        // change may go through, never both, and the organisation keeps an administrator.
        for round in 0..5 {
            let (ann, ann_token) = app.user_with_token(&format!("ann{round}@example.org"), &[Role::Admin]).await;
            let (bob, bob_token) = app.user_with_token(&format!("bob{round}@example.org"), &[Role::Admin]).await;
            // The administrators of earlier rounds step down first, so these two are the only ones.
            let admins: Vec<User> = app.get("/api/v1/users", &ann_token).await.json();
            for other in admins.iter().filter(|u| u.active && u.roles.contains(&Role::Admin) && u.id != ann.id && u.id != bob.id) {
                let reply = app.send(Method::PATCH, &format!("/api/v1/users/{}", other.id), Some(&ann_token),
                                     Some(json!({"version": other.version, "active": false}))).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            }
            let demote = |token: String, user: User| {
                let app = app.clone();
                async move {
                    app.send(Method::PATCH, &format!("/api/v1/users/{}", user.id), Some(&token),
                             Some(json!({"version": user.version, "roles": ["sales"]}))).await
                }
            };
            let (first, second) = tokio::join!(demote(ann_token.clone(), bob.clone()), demote(bob_token.clone(), ann.clone()));
            let done = [&first, &second].iter().filter(|r| r.status == StatusCode::OK).count();
            assert!(done <= 1, "round {round}: both went through: {} {}", first.body, second.body);
            let left: Vec<User> = assent_server::service::users::list(&app.db, &assent_server::service::Actor::System(assent_shared::domain::SystemJob::CommandLine)).await.unwrap();
            let admins = left.iter().filter(|u| u.active && u.roles.contains(&Role::Admin)).count();
            assert!(admins >= 1, "round {round}: no administrator left");
            for refused in [&first, &second].iter().filter(|r| r.status != StatusCode::OK) {
                assert!([StatusCode::UNPROCESSABLE_ENTITY, StatusCode::FORBIDDEN, StatusCode::CONFLICT].contains(&refused.status), "{}", refused.body);
            }
        }
    }
}

store_test! {
    async fn no_change_leaves_the_organisation_without_an_active_administrator(app: TestApp) {
        use assent_server::service::{users, Actor};
        use assent_shared::domain::SystemJob;
        // Only a job can try it on its own (an administrator cannot demote themselves, and while
        // they can demote another, they remain); a race is the other way in (above).
        let ann = app.create_user("ann@example.org", &[Role::Admin, Role::Sales]).await;
        let job = Actor::System(SystemJob::CommandLine);
        for change in [json!({"version": ann.version, "roles": ["sales"]}), json!({"version": ann.version, "active": false})] {
            let update: assent_shared::api::UserUpdate = serde_json::from_value(change).unwrap();
            match users::update(&app.db, &job, ann.id, &update).await.unwrap_err() {
                assent_server::service::ServiceError::Invalid(fields) => {
                    assert!(fields.0[0].reason.contains("without an active administrator"), "{:?}", fields.0)
                }
                other => panic!("{other}"),
            }
        }
        app.create_user("bob@example.org", &[Role::Admin]).await;
        let update: assent_shared::api::UserUpdate = serde_json::from_value(json!({"version": ann.version, "roles": ["sales"]})).unwrap();
        let demoted = users::update(&app.db, &job, ann.id, &update).await.unwrap();
        assert_eq!(demoted.roles, [Role::Sales], "with Bob there, Ann may step down");
    }
}
