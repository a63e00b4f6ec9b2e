use assent_server::store;
use assent_shared::api::{Contact, ContactPage, FieldChange};
use assent_shared::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::store_test;

fn jane() -> Value {
    json!({
        "first_name": "Jane", "last_name": "Doe",
        "emails": ["Jane.Doe@Example.COM"], "phones": ["07400 123456"],
        "address": {"lines": ["1 High Street"], "town": "Leeds", "postcode": "ls11ba"},
        "job_title": "Buyer", "notes": "Met at the trade show."
    })
}

async fn create(app: &TestApp, token: &str, body: Value) -> Contact {
    let reply = app.post("/api/v1/contacts", token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.json()
}

store_test! {
    async fn a_sales_user_creates_searches_and_updates_a_contact(app: TestApp) {
        let (sales_user, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let company = app.post("/api/v1/companies", &sales, json!({"name": "Acme Heating Ltd"})).await.json::<assent_shared::api::Company>();
        let mut body = jane();
        body["company_id"] = json!(company.id);
        let contact = create(&app, &sales, body).await;
        assert_eq!(contact.owner_id, Some(sales_user.id));
        assert_eq!(contact.emails, ["Jane.Doe@example.com"]);
        assert_eq!(contact.phones, ["+447400123456"]);
        assert_eq!(contact.address.as_ref().unwrap().postcode.as_deref(), Some("LS1 1BA"));
        assert_eq!(contact.version, 1);

        for query in ["jane", "DOE", "jane doe", "jane.doe@example", "07400 123456", "acme"] {
            let page: ContactPage = app.get(&format!("/api/v1/contacts?q={}", urlencode(query)), &sales).await.json();
            assert_eq!(page.items.len(), 1, "search {query:?}");
            assert_eq!(page.items[0].id, contact.id);
            assert_eq!(page.items[0].company_name.as_deref(), Some("Acme Heating Ltd"));
        }
        let none: ContactPage = app.get("/api/v1/contacts?q=nobody", &sales).await.json();
        assert!(none.items.is_empty());

        let mut change = jane();
        change["job_title"] = json!("Head of Purchasing");
        change["version"] = json!(1);
        let reply = app.put(&format!("/api/v1/contacts/{}", contact.id), &sales, change).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let updated: Contact = reply.json();
        assert_eq!(updated.version, 2);
        assert_eq!(updated.job_title.as_deref(), Some("Head of Purchasing"));
        assert_eq!(updated.company_id, None);
        let fetched: Contact = app.get(&format!("/api/v1/contacts/{}", contact.id), &sales).await.json();
        assert_eq!(fetched, updated);
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

store_test! {
    async fn invalid_fields_get_422_naming_each_field(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let mut body = jane();
        body["phones"] = json!(["07400 123456", "12345"]);
        body["emails"] = json!(["jane@localhost"]);
        body["address"]["postcode"] = json!("LS1");
        let reply = app.post("/api/v1/contacts", &sales, body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.code(), "validation_failed");
        assert_eq!(reply.fields(), ["emails[0]", "phones[1]", "address.postcode"]);
        let page: ContactPage = app.get("/api/v1/contacts", &sales).await.json();
        assert!(page.items.is_empty(), "nothing was written");
    }
}

store_test! {
    async fn malformed_or_mistyped_json_gets_the_error_shape(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let response = app.client.post(app.url("/api/v1/contacts")).bearer_auth(&sales)
            .header("content-type", "application/json").body("{\"last_name\": ").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "malformed_json");
        let reply = app.post("/api/v1/contacts", &sales, json!({"last_name": "Doe", "emails": "not a list"})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.code(), "invalid_body");
        let reply = app.get("/api/v1/contacts/not-a-uuid", &sales).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        let reply = app.get("/api/v1/contacts?limit=0", &sales).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        let reply = app.get("/api/v1/contacts?after=garbage", &sales).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
}

store_test! {
    async fn a_stale_update_gets_409_and_changes_nothing(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let (manager_user, manager) = app.user_with_token("manager@example.org", &[Role::Manager]).await;
        let contact = create(&app, &sales, jane()).await;
        let path = format!("/api/v1/contacts/{}", contact.id);
        let mut first = jane();
        first["job_title"] = json!("Changed by the manager");
        first["version"] = json!(1);
        assert_eq!(app.put(&path, &manager, first).await.status, StatusCode::OK);

        let mut second = jane();
        second["job_title"] = json!("Changed by sales from an old copy");
        second["version"] = json!(1);
        let reply = app.put(&path, &sales, second).await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert_eq!(reply.code(), "stale_version");
        assert_eq!(reply.body["conflict"]["current_version"], 2);
        assert_eq!(reply.body["conflict"]["updated_by"], json!({"kind": "staff", "id": manager_user.id}));
        assert_eq!(reply.body["conflict"]["updated_by_name"], manager_user.display_name);
        let message = reply.body["message"].as_str().unwrap();
        assert!(message.contains(&manager_user.display_name), "{message}");
        let now: Contact = app.get(&path, &sales).await.json();
        assert_eq!(now.job_title.as_deref(), Some("Changed by the manager"));

        let mut missing = jane();
        missing.as_object_mut().unwrap().remove("version");
        assert_eq!(app.put(&path, &sales, missing).await.fields(), ["version"]);
    }
}

store_test! {
    async fn sales_edit_only_their_own_contacts_and_managers_edit_any(app: TestApp) {
        let (_, owner) = app.user_with_token("owner@example.org", &[Role::Sales]).await;
        let (other_user, other) = app.user_with_token("other@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("manager@example.org", &[Role::Manager]).await;
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let contact = create(&app, &owner, jane()).await;
        let path = format!("/api/v1/contacts/{}", contact.id);
        let mut change = jane();
        change["version"] = json!(1);

        let reply = app.put(&path, &other, change.clone()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(app.get(&path, &other).await.status, StatusCode::OK, "reading is allowed");
        let reply = app.post(&format!("{path}/deactivate"), &other, json!({"version": 1})).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(app.get(&path, &admin).await.status, StatusCode::FORBIDDEN, "an administrator is not a CRM user");

        let mut give_away = change.clone();
        give_away["owner_id"] = json!(other_user.id);
        assert_eq!(app.put(&path, &owner, give_away.clone()).await.status, StatusCode::FORBIDDEN);
        let reply = app.put(&path, &manager, give_away).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json::<Contact>().owner_id, Some(other_user.id));

        let denied = store::audit::for_object(&app.db, contact.id).await.unwrap();
        assert!(denied.iter().filter(|r| r.action == "denied").count() >= 2);
    }
}

store_test! {
    async fn every_change_keeps_its_history(app: TestApp) {
        let (sales_user, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let contact = create(&app, &sales, jane()).await;
        let path = format!("/api/v1/contacts/{}", contact.id);
        let mut change = jane();
        change["last_name"] = json!("Smith");
        change["phones"] = json!(["+44 7400 654321"]);
        change["version"] = json!(1);
        app.put(&path, &sales, change).await;
        app.post(&format!("{path}/deactivate"), &sales, json!({"version": 2})).await;
        let history: Vec<FieldChange> = app.get(&format!("{path}/history"), &sales).await.json();
        let summary: Vec<(i64, &str, Option<&str>, Option<&str>)> = history
            .iter()
            .map(|c| (c.version, c.field.as_str(), c.old_value.as_deref(), c.new_value.as_deref()))
            .collect();
        assert_eq!(summary, [
            (2, "last_name", Some("Doe"), Some("Smith")),
            (2, "phones", Some("+447400123456"), Some("+447400654321")),
            (3, "active", Some("true"), Some("false")),
        ]);
        assert!(history.iter().all(|c| c.changed_by == assent_shared::api::ActorRef::Staff { id: sales_user.id }));
    }
}

store_test! {
    async fn pages_follow_each_other_without_gaps_or_repeats(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        for i in 0..7 {
            // Two contacts share each surname so that the id breaks ties.
            create(&app, &sales, json!({"first_name": format!("P{i}"), "last_name": format!("Surname{}", i / 2)})).await;
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(cursor) => format!("/api/v1/contacts?limit=3&after={cursor}"),
                None => "/api/v1/contacts?limit=3".to_owned(),
            };
            let page: ContactPage = app.get(&path, &sales).await.json();
            assert!(page.items.len() <= 3);
            seen.extend(page.items.iter().map(|c| (c.last_name.clone().unwrap(), c.id)));
            match page.next_cursor {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 7);
        let mut sorted = seen.clone();
        sorted.sort_by_key(|(name, id)| (name.to_lowercase(), *id));
        assert_eq!(seen, sorted, "name order, ties by id, no repeats");
    }
}

store_test! {
    async fn deactivated_contacts_leave_the_list_unless_asked_for(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let contact = create(&app, &sales, jane()).await;
        let reply = app.post(&format!("/api/v1/contacts/{}/deactivate", contact.id), &sales, json!({"version": 1})).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(!reply.json::<Contact>().active);
        let page: ContactPage = app.get("/api/v1/contacts", &sales).await.json();
        assert!(page.items.is_empty());
        let page: ContactPage = app.get("/api/v1/contacts?include_inactive=true", &sales).await.json();
        assert_eq!(page.items.len(), 1);
    }
}

store_test! {
    async fn an_unknown_company_or_owner_is_refused(app: TestApp) {
        let (_, manager) = app.user_with_token("manager@example.org", &[Role::Manager]).await;
        let mut body = jane();
        body["company_id"] = json!(uuid::Uuid::now_v7());
        assert_eq!(app.post("/api/v1/contacts", &manager, body).await.fields(), ["company_id"]);
        let mut body = jane();
        body["owner_id"] = json!(uuid::Uuid::now_v7());
        assert_eq!(app.post("/api/v1/contacts", &manager, body).await.fields(), ["owner_id"]);
    }
}

store_test! {
    async fn reads_and_changes_of_a_contact_are_audited_by_id_only(app: TestApp) {
        let (sales_user, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let contact = create(&app, &sales, jane()).await;
        app.get(&format!("/api/v1/contacts/{}", contact.id), &sales).await;
        app.get("/api/v1/contacts?q=jane", &sales).await;
        let records = store::audit::for_object(&app.db, contact.id).await.unwrap();
        let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["contact_created", "contact_read", "contact_listed"]);
        assert!(records.iter().all(|r| r.actor_kind.as_deref() == Some("staff") && r.actor_id == Some(sales_user.id) && r.via_id.is_some()));
    }
}

store_test! {
    async fn a_contact_made_by_a_system_job_has_no_owner_and_names_the_job_wherever_it_is_recorded(app: TestApp) {
        use assent_server::service::{self, Actor};
        use assent_shared::api::{ActorRef, ContactInput, NewLedgerEvent, RecordedVia};
        use assent_shared::domain::SystemJob;
        let job = Actor::System(SystemJob::Seed);
        let input = ContactInput { first_name: Some("Priya".into()), last_name: Some("Shah".into()), ..Default::default() };
        let made = service::contacts::create(&app.db, &job, &input).await.unwrap();
        assert_eq!(made.owner_id, None, "nobody owns what a job made");
        let by_job = ActorRef::System { job: SystemJob::Seed };
        assert_eq!((made.created_by, made.updated_by), (by_job, by_job));
        let renamed = ContactInput { last_name: Some("Shah-Patel".into()), version: Some(made.version), ..input.clone() };
        let renamed = service::contacts::update(&app.db, &job, made.id, &renamed).await.unwrap();
        let event: NewLedgerEvent = serde_json::from_value(json!({"at": "2025-05-10T14:03:00Z", "type": "opt_out", "channel": "email", "topic": "*"})).unwrap();
        let recorded = service::ledger::record(&app.db, &job, made.id, &event).await.unwrap();
        assert_eq!(recorded.recorded_via, RecordedVia::System);

        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let (manager_user, manager) = app.user_with_token("manager@example.org", &[Role::Manager]).await;
        let path = format!("/api/v1/contacts/{}", made.id);
        let shown: Contact = serde_json::from_value(app.get(&path, &sales).await.body).unwrap();
        assert_eq!(shown.created_by, by_job);
        let history: Vec<FieldChange> = serde_json::from_value(app.get(&format!("{path}/history"), &sales).await.body).unwrap();
        assert!(!history.is_empty() && history.iter().all(|c| c.changed_by == by_job), "{history:?}");
        let ledger = app.get(&format!("{path}/ledger"), &sales).await;
        assert_eq!(ledger.body[0]["recorded_via"], "system", "{}", ledger.body);
        assert_eq!(ledger.body[0]["recorded_by_name"], SystemJob::Seed.shown_as());

        // A contact nobody owns: sales staff may read it but not change it; a manager may.
        let edit = json!({"first_name": "Priya", "last_name": "Shah", "version": renamed.version});
        assert_eq!(app.put(&path, &sales, edit.clone()).await.status, StatusCode::FORBIDDEN);
        let edited = app.put(&path, &manager, edit).await;
        assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
        assert_eq!(edited.body["updated_by"], json!({"kind": "staff", "id": manager_user.id}));
    }
}

store_test! {
    async fn a_contact_reads_back_its_emails_and_phones_in_the_order_given(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let emails = ["zoe.adams@example.org", "a.adams@example.net", "m.adams@example.com"];
        let created = create(&app, &sales, json!({"first_name": "Zoe", "last_name": "Adams", "emails": emails})).await;
        let read: Contact = app.get(&format!("/api/v1/contacts/{}", created.id), &sales).await.json();
        assert_eq!(read.emails, emails, "as given, not sorted");
        assert!(read.phones.is_empty(), "no phones is an empty list: {:?}", read.phones);
        assert_eq!(read, created, "the one-statement read is the contact as written");
        let phones = ["+447400654321", "+447400123456"];
        let updated = app.put(&format!("/api/v1/contacts/{}", created.id), &sales,
            json!({"first_name": "Zoe", "last_name": "Adams", "phones": phones, "version": created.version})).await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
        let read: Contact = app.get(&format!("/api/v1/contacts/{}", created.id), &sales).await.json();
        assert!(read.emails.is_empty(), "{:?}", read.emails);
        assert_eq!(read.phones, phones);
    }
}
