use assent_shared::api::{Campaign, CampaignPreview, Contact};
use assent_shared::domain::{CampaignState, Role};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::store_test;

pub async fn catalogue(app: &TestApp) {
    let (_, dpo) = app.user_with_token("dpo@example.org", &[Role::Dpo]).await;
    let saved = app.put("/api/v1/topics", &dpo, json!({"topics": [
        {"key": "boilers", "name": "Boilers", "description": "New boilers, fitted and serviced."},
        {"key": "solar-panels", "name": "Solar panels", "description": "Panels on your roof.", "retired": true}
    ]})).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
}

/// The topic catalogue, a salesperson and a manager: their tokens.
pub async fn catalogue_and_staff(app: &TestApp) -> (String, String) {
    catalogue(app).await;
    let (_, sales) = app
        .user_with_token("sam.sales@example.org", &[Role::Sales])
        .await;
    let (_, manager) = app
        .user_with_token("mia.manager@example.org", &[Role::Manager])
        .await;
    (sales, manager)
}

pub async fn contact(app: &TestApp, token: &str, body: Value) -> Contact {
    let reply = app.post("/api/v1/contacts", token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.json()
}

pub async fn consent(app: &TestApp, token: &str, contact: &Contact) {
    let reply = app.post(&format!("/api/v1/contacts/{}/ledger", contact.id), token, json!({
        "at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "email", "topic": "boilers",
        "method": "paper_form", "wording": "Email me boiler offers."})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

pub fn boiler_offer(ids: &[Uuid], body: &str) -> Value {
    json!({
        "name": "Winter boiler check",
        "message": {"kind": "marketing", "channel": "email", "topic": "boilers"},
        "subject": "{{first_name}}, your boiler before winter",
        "body": body,
        "audience": {"contact_ids": ids}
    })
}

/// Submits, approves (as `manager`) and returns the boiler offer to `members`, with its preview.
pub async fn approved_offer(
    app: &TestApp,
    sales: &str,
    manager: &str,
    members: &[Uuid],
) -> (Campaign, CampaignPreview) {
    approved(app, sales, manager, boiler_offer(members, BODY)).await
}

/// Writes `content` (as `sales`), submits it, approves it (as `manager`) and returns it, with the
/// preview the approval followed.
pub async fn approved(
    app: &TestApp,
    sales: &str,
    manager: &str,
    content: Value,
) -> (Campaign, CampaignPreview) {
    let created = app.post("/api/v1/campaigns", sales, content).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let created: Campaign = created.json();
    let (_, body) = step(app, sales, &created, "submit", json!({})).await;
    let submitted: Campaign = serde_json::from_value(body).unwrap();
    let preview: CampaignPreview = app
        .get(
            &format!("/api/v1/campaigns/{}/preview", submitted.id),
            manager,
        )
        .await
        .json();
    let approval =
        json!({"content_hash": preview.content_hash, "audience_hash": preview.audience_hash});
    let (status, body) = step(app, manager, &submitted, "approve", approval).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (serde_json::from_value(body).unwrap(), preview)
}

pub const BODY: &str = "Dear {{first_name}},\n\nBook your **boiler check** before the cold.\n\n[Unsubscribe]({{unsubscribe_url}})";

pub async fn step(
    app: &TestApp,
    token: &str,
    campaign: &Campaign,
    action: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({"version": campaign.version});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let reply = app
        .post(
            &format!("/api/v1/campaigns/{}/{action}", campaign.id),
            token,
            body,
        )
        .await;
    (reply.status, reply.body)
}

store_test! {
    async fn a_campaign_goes_from_draft_to_approval_by_another_manager_only(app: TestApp) {
        catalogue(&app).await;
        let (_, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("mia.manager@example.org", &[Role::Manager]).await;
        let (_, admin) = app.user_with_token("ada.admin@example.org", &[Role::Admin, Role::Sales]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await;
        consent(&app, &sales, &jane).await;
        let bob = contact(&app, &sales, json!({"first_name": "Bob", "last_name": "Roe", "emails": ["bob.roe@example.org"]})).await;
        let nameless = contact(&app, &sales, json!({"last_name": "Okafor", "emails": ["okafor@example.org"]})).await;
        consent(&app, &sales, &nameless).await;
        let ids = [jane.id, bob.id, nameless.id];

        // Without the unsubscribe link a marketing email is a draft that cannot be submitted.
        let draft = app.post("/api/v1/campaigns", &sales, boiler_offer(&ids, "Dear {{first_name}}, book now.")).await;
        assert_eq!(draft.status, StatusCode::CREATED, "{}", draft.body);
        let draft: Campaign = draft.json();
        assert_eq!((draft.state, draft.version), (CampaignState::Draft, 1));
        let (status, body) = step(&app, &sales, &draft, "submit", json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["fields"][0]["field"], "body");
        assert!(body["fields"][0]["reason"].as_str().unwrap().contains("{{unsubscribe_url}}"), "{body}");

        let edited = app.put(&format!("/api/v1/campaigns/{}", draft.id), &sales, json!({"content": boiler_offer(&ids, BODY), "version": 1})).await;
        assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
        let edited: Campaign = edited.json();
        assert_ne!(edited.content_hash, draft.content_hash);
        let (status, body) = step(&app, &sales, &edited, "submit", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let submitted: Campaign = serde_json::from_value(body).unwrap();
        assert_eq!(submitted.state, CampaignState::Submitted);
        let waiting = app.get("/api/v1/campaigns?state=submitted", &manager).await;
        assert_eq!(waiting.body["items"][0]["id"], json!(submitted.id.to_string()));

        // The preview: Jane allowed, Bob refused for want of consent, the nameless contact
        // allowed but not sendable without a first name.
        let preview = app.get(&format!("/api/v1/campaigns/{}/preview", submitted.id), &manager).await;
        assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
        let preview: CampaignPreview = preview.json();
        assert_eq!(preview.content_hash, submitted.content_hash);
        assert_eq!((preview.decisions.total, preview.decisions.allowed), (3, 2));
        assert_eq!(preview.decisions.by_reason[0].key, assent_shared::ledger::Reason::NoConsent);
        assert_eq!(preview.unsendable.len(), 1);
        assert_eq!((preview.unsendable[0].contact_id, preview.unsendable[0].reason.as_str(), preview.unsendable[0].field.as_deref()),
            (nameless.id, "missing_merge_field", Some("first_name")));
        let sample = preview.sample.clone().unwrap();
        assert_eq!((sample.contact_id, sample.to.as_str()), (jane.id, "jane.doe@example.org"));
        assert_eq!(sample.subject.as_deref(), Some("Jane, your boiler before winter"));
        let html = sample.html.unwrap();
        assert!(html.contains("<p>Dear Jane,</p>") && html.contains("<strong>boiler check</strong>"), "{html}");
        assert!(html.contains("Harbour Heating Ltd, 1 Quay Street, Bristol BS1 4DJ"), "the sender's identity: {html}");
        assert!(sample.text.contains("Unsubscribe <https://assent.invalid/"), "{}", sample.text);
        // Everyone it shows by name is named in it: Bob and the nameless one left out, Jane the
        // sample.
        let mut named: Vec<(Uuid, Option<&str>, Option<&str>)> = preview.names.iter()
            .map(|n| (n.contact_id, n.first_name.as_deref(), n.last_name.as_deref())).collect();
        named.sort();
        let mut expected = vec![(jane.id, Some("Jane"), Some("Doe")), (bob.id, Some("Bob"), Some("Roe")), (nameless.id, None, Some("Okafor"))];
        expected.sort();
        assert_eq!(named, expected);

        // Four eyes: sales cannot approve, nor an administrator who is not a manager.
        let approval = json!({"content_hash": preview.content_hash, "audience_hash": preview.audience_hash});
        assert_eq!(step(&app, &sales, &submitted, "approve", approval.clone()).await.0, StatusCode::FORBIDDEN);
        assert_eq!(step(&app, &admin, &submitted, "approve", approval.clone()).await.0, StatusCode::FORBIDDEN);
        let (status, body) = step(&app, &manager, &submitted, "approve", json!({"content_hash": "0".repeat(64), "audience_hash": preview.audience_hash})).await;
        assert_eq!((status, body["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("content_hash")), "{body}");
        let (status, body) = step(&app, &manager, &submitted, "approve", approval.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let approved: Campaign = serde_json::from_value(body).unwrap();
        assert_eq!(approved.state, CampaignState::Approved);
        assert_eq!(approved.frozen_members, Some(3));
        assert_eq!(approved.audience_hash.as_deref(), Some(preview.audience_hash.as_str()));
        let (status, _) = step(&app, &manager, &approved, "approve", approval).await;
        assert_eq!(status, StatusCode::CONFLICT, "approved once");

        // Any edit after approval returns it to draft, its approval gone.
        let again = app.put(&format!("/api/v1/campaigns/{}", approved.id), &sales, json!({"content": boiler_offer(&[jane.id], BODY), "version": approved.version})).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        let again: Campaign = again.json();
        assert_eq!((again.state, again.decided_by, again.frozen_members), (CampaignState::Draft, None, None));
        // An edit against an older version is refused and names who changed it.
        let stale = app.put(&format!("/api/v1/campaigns/{}", approved.id), &sales, json!({"content": boiler_offer(&ids, BODY), "version": approved.version})).await;
        assert_eq!((stale.status, stale.code()), (StatusCode::CONFLICT, "stale_version"), "{}", stale.body);
        assert_eq!(stale.body["conflict"]["current_version"], again.version);
    }
}

store_test! {
    async fn a_manager_never_approves_their_own_and_a_rejection_needs_a_reason(app: TestApp) {
        catalogue(&app).await;
        let (_, mia) = app.user_with_token("mia.manager@example.org", &[Role::Manager]).await;
        let (_, max) = app.user_with_token("max.manager@example.org", &[Role::Manager, Role::Admin]).await;
        let jane = contact(&app, &mia, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await;
        let created: Campaign = app.post("/api/v1/campaigns", &mia, boiler_offer(&[jane.id], BODY)).await.json();
        let (status, body) = step(&app, &mia, &created, "submit", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let submitted: Campaign = serde_json::from_value(body).unwrap();
        let preview: CampaignPreview = app.get(&format!("/api/v1/campaigns/{}/preview", submitted.id), &mia).await.json();
        let approval = json!({"content_hash": preview.content_hash, "audience_hash": preview.audience_hash});
        let (status, body) = step(&app, &mia, &submitted, "approve", approval.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body["message"].as_str().unwrap().contains("four eyes"), "{body}");
        assert_eq!(step(&app, &mia, &submitted, "reject", json!({"reason": "No."})).await.0, StatusCode::FORBIDDEN);

        let (status, body) = step(&app, &max, &submitted, "reject", json!({"reason": "  "})).await;
        assert_eq!((status, body["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")), "{body}");
        let (status, body) = step(&app, &max, &submitted, "reject", json!({"reason": "Say which boilers, and the price."})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rejected: Campaign = serde_json::from_value(body).unwrap();
        assert_eq!(rejected.state, CampaignState::Rejected);
        assert_eq!(rejected.rejection_reason.as_deref(), Some("Say which boilers, and the price."));
        // The author may submit it again; it is then the other manager's to approve, against the
        // audience of their preview.
        let (_, body) = step(&app, &mia, &rejected, "submit", json!({})).await;
        let resubmitted: Campaign = serde_json::from_value(body).unwrap();
        let preview: CampaignPreview = app.get(&format!("/api/v1/campaigns/{}/preview", resubmitted.id), &max).await.json();
        let changed = app.put(&format!("/api/v1/contacts/{}", jane.id), &mia, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"], "version": jane.version})).await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
        let (status, body) = step(&app, &max, &resubmitted, "approve", json!({"content_hash": preview.content_hash, "audience_hash": "f".repeat(64)})).await;
        assert_eq!((status, body["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("audience_hash")), "{body}");
        let (status, body) = step(&app, &max, &resubmitted, "approve", json!({"content_hash": preview.content_hash, "audience_hash": preview.audience_hash})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let approved: Campaign = serde_json::from_value(body).unwrap();
        let (status, body) = step(&app, &mia, &approved, "cancel", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let cancelled: Campaign = serde_json::from_value(body).unwrap();
        assert_eq!(cancelled.state, CampaignState::Cancelled);
        let (status, body) = step(&app, &mia, &cancelled, "submit", json!({})).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("wrong_state")), "{body}");
    }
}

store_test! {
    async fn a_campaign_is_checked_whole_before_it_is_saved(app: TestApp) {
        catalogue(&app).await;
        let (_, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, dpo) = app.user_with_token("dan.dpo@example.org", &[Role::Dpo]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await;
        assert_eq!(app.post("/api/v1/campaigns", &dpo, boiler_offer(&[jane.id], BODY)).await.status, StatusCode::FORBIDDEN, "the DPO reads campaigns but does not write them");

        let bad = app.post("/api/v1/campaigns", &sales, json!({
            "name": " ",
            "message": {"kind": "marketing", "channel": "sms", "topic": "solar-panels"},
            "subject": "Hello",
            "body": "Hi {{frist_name}}",
            "audience": {"contact_ids": []}
        })).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
        assert_eq!(bad.fields(), ["name", "message.topic", "subject", "body", "audience.contact_ids"]);
        let no_topic = app.post("/api/v1/campaigns", &sales, json!({
            "name": "Call round", "message": {"kind": "marketing", "channel": "phone"}, "body": "Ring them.", "audience": "everyone"})).await;
        assert_eq!(no_topic.fields(), ["message.channel", "message.topic"], "{}", no_topic.body);

        // A service message whose words are promotional is flagged to its approver.
        let service = app.post("/api/v1/campaigns", &sales, json!({
            "name": "Service reminder", "message": {"kind": "service", "channel": "email", "topic": "ignored"},
            "subject": "Your service is due", "body": "Dear {{first_name|customer}}, your service is due. Season's greetings and 10% off!",
            "audience": {"contact_ids": [jane.id]}})).await;
        assert_eq!(service.status, StatusCode::CREATED, "{}", service.body);
        let service: Campaign = service.json();
        assert_eq!(service.flags, ["% off", "season's greetings"]);
        assert_eq!(service.content.message.topic, "", "a service message has no topic");
        let count = app.get("/api/v1/campaigns", &dpo).await;
        assert_eq!(count.body["items"].as_array().unwrap().len(), 1, "nothing of the refused ones was saved");
        assert_eq!(app.get(&format!("/api/v1/campaigns/{}", Uuid::now_v7()), &sales).await.status, StatusCode::NOT_FOUND);
    }
}

/// The messages the server's maildir holds, as text.
pub fn maildir(app: &TestApp) -> Vec<String> {
    let new = app.data_dir().join("mail/new");
    let mut messages: Vec<String> = std::fs::read_dir(&new)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    messages.sort();
    messages
}

/// Sends an approved campaign and waits until it is sent; its progress then.
pub async fn sent(app: &TestApp, token: &str, approved: &Campaign) -> Value {
    let (status, body) = step(app, token, approved, "send", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    progress_when_done(app, token, approved.id).await
}

pub async fn progress_when_done(app: &TestApp, token: &str, id: Uuid) -> Value {
    for _ in 0..200 {
        let progress = app
            .get(&format!("/api/v1/campaigns/{id}/progress"), token)
            .await;
        assert_eq!(progress.status, StatusCode::OK, "{}", progress.body);
        if progress.body["state"] == "sent" {
            return progress.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the campaign was not sent in 10 s");
}

store_test! {
    async fn sending_decides_each_member_again_and_writes_a_warrant_for_each(app: TestApp) {
        catalogue(&app).await;
        let (_, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("mia.manager@example.org", &[Role::Manager]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await;
        consent(&app, &sales, &jane).await;
        let ravi = contact(&app, &sales, json!({"first_name": "Ravi", "last_name": "Patel", "emails": ["ravi.patel@example.org"]})).await;
        consent(&app, &sales, &ravi).await;
        let bob = contact(&app, &sales, json!({"first_name": "Bob", "last_name": "Roe", "emails": ["bob.roe@example.org"]})).await;
        let created: Campaign = app.post("/api/v1/campaigns", &sales, boiler_offer(&[jane.id, ravi.id, bob.id], BODY)).await.json();
        let (_, body) = step(&app, &sales, &created, "submit", json!({})).await;
        let submitted: Campaign = serde_json::from_value(body).unwrap();
        let preview: CampaignPreview = app.get(&format!("/api/v1/campaigns/{}/preview", submitted.id), &manager).await.json();
        let (status, body) = step(&app, &manager, &submitted, "approve", json!({"content_hash": preview.content_hash, "audience_hash": preview.audience_hash})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let approved: Campaign = serde_json::from_value(body).unwrap();

        // Ravi opts out after approval: the send decides him again and leaves him out.
        let opt_out = app.post(&format!("/api/v1/contacts/{}/ledger", ravi.id), &sales,
            json!({"at": "2025-06-01T09:00:00Z", "type": "opt_out", "channel": "email", "topic": "*"})).await;
        assert_eq!(opt_out.status, StatusCode::CREATED, "{}", opt_out.body);
        assert_eq!(step(&app, &sales, &submitted, "send", json!({})).await.0, StatusCode::CONFLICT, "a stale version");
        let (status, body) = step(&app, &sales, &approved, "send", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "sending");

        let progress = progress_when_done(&app, &sales, approved.id).await;
        assert_eq!(progress, json!({"state": "sent", "total": 3, "queued": 0, "in_flight": 0, "sent": 1, "failed": 0, "indeterminate": 0, "not_sent": 2}));
        let messages = maildir(&app);
        assert_eq!(messages.len(), 1, "only Jane's message went out");
        let jane_mail = &messages[0];
        let message_id = format!("Message-ID: <{}.{}@localhost>", approved.id.simple(), jane.id.simple());
        assert!(jane_mail.contains(&message_id), "{jane_mail}");
        assert!(jane_mail.contains("To: jane.doe@example.org"), "{jane_mail}");
        assert!(jane_mail.contains("List-Unsubscribe: <https://localhost:8444/u/"), "{jane_mail}");
        assert!(jane_mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{jane_mail}");
        assert!(jane_mail.contains("From: \"Harbour Heating Ltd\" <assent@localhost>") || jane_mail.contains("From: Harbour Heating Ltd <assent@localhost>"), "{jane_mail}");

        // The warrants: one per member, each naming the decision made at send.
        type Row = (Uuid, bool, Option<String>, String, Option<String>);
        let sql = "SELECT contact_id, allowed, basis, reasons, contact_point FROM warrants ORDER BY seq";
        let warrants: Vec<Row> = match app.db.pool() {
            assent_server::store::Pool::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            assent_server::store::Pool::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        };
        type Shown = (String, bool, Option<String>, String, Option<String>);
        let warrants: Vec<Shown> = warrants
            .into_iter()
            .map(|(id, allowed, basis, reasons, point)| (id.to_string(), allowed, basis, reasons, point))
            .collect();
        let mut by_contact = warrants.clone();
        by_contact.sort();
        let expect = |c: &Contact, allowed: bool, basis: Option<&str>, reasons: &str, point: Option<&str>| {
            (c.id.to_string(), allowed, basis.map(str::to_owned), reasons.to_owned(), point.map(str::to_owned))
        };
        let mut wanted = vec![
            expect(&jane, true, Some("consent"), "[]", Some("jane.doe@example.org")),
            expect(&ravi, false, None, "[\"opted_out\"]", None),
            expect(&bob, false, None, "[\"no_consent\"]", None),
        ];
        wanted.sort();
        assert_eq!(by_contact, wanted);
        assert!(app.raw_sql("UPDATE warrants SET allowed = TRUE").await.unwrap_err().to_string().contains("append-only"));
        let intact = assent_server::service::audit::verify(&app.db).await.unwrap();
        assert_eq!(intact.warrants, Ok(3));
        // One with the database file can drop the triggers: `audit verify` still finds the edit.
        let unguard = match app.backend {
            crate::helpers::Backend::Sqlite => "DROP TRIGGER warrants_no_update",
            crate::helpers::Backend::Postgres => "ALTER TABLE warrants DISABLE TRIGGER USER",
        };
        app.raw_sql(unguard).await.unwrap();
        // Turns the refusals into allowances, as if they had been allowed.
        assert_eq!(app.raw_sql("UPDATE warrants SET allowed = TRUE, reasons = '[]' WHERE allowed = FALSE").await.unwrap(), 2);
        let altered = assent_server::service::audit::verify(&app.db).await.unwrap();
        let broken = altered.warrants.unwrap_err();
        assert_eq!(broken.campaign_id, approved.id);
        assert!(broken.link.problem.contains("altered"), "{:?}", broken.link);
        let again = step(&app, &sales, &approved, "send", json!({})).await;
        assert_eq!(again.0, StatusCode::CONFLICT, "sent once: {}", again.1);
    }
}

store_test! {
    async fn each_recipients_warrant_is_in_their_communication_log_and_evidence_pack(app: TestApp) {
        catalogue(&app).await;
        let (author, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (approver, manager) = app.user_with_token("mia.manager@example.org", &[Role::Manager]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await;
        consent(&app, &sales, &jane).await;
        let bob = contact(&app, &sales, json!({"first_name": "Bob", "last_name": "Roe", "emails": ["bob.roe@example.org"]})).await;
        let before = app.get(&format!("/api/v1/contacts/{}/communications", jane.id), &sales).await;
        assert_eq!((before.status, before.body.clone()), (StatusCode::OK, json!([])), "nothing decided yet");
        let (approved, _) = approved_offer(&app, &sales, &manager, &[jane.id, bob.id]).await;
        sent(&app, &sales, &approved).await;

        let log = |c: &Contact| {
            let path = format!("/api/v1/contacts/{}/communications", c.id);
            let app = &app;
            let sales = sales.clone();
            async move {
                let reply = app.get(&path, &sales).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                reply.body.as_array().unwrap().clone()
            }
        };
        let janes = log(&jane).await;
        assert_eq!(janes.len(), 1, "{janes:?}");
        let w = &janes[0];
        assert_eq!(w["campaign_id"], json!(approved.id));
        assert_eq!(w["campaign_name"], "Winter boiler check");
        assert_eq!(w["message"], json!({"kind": "marketing", "channel": "email", "topic": "boilers"}));
        assert_eq!((w["allowed"].clone(), w["basis"].clone(), w["reasons"].clone()), (json!(true), json!("consent"), json!([])));
        assert_eq!(w["evidence_seqs"], json!([1]), "the consent, the ledger's first event");
        assert_eq!((w["author_id"].clone(), w["approver_id"].clone()), (json!(author.id), json!(approver.id)));
        assert_eq!(w["contact_point"], "jane.doe@example.org");
        assert_eq!((w["delivery"].clone(), w["outcome"].clone()), (json!("sent"), json!("accepted")));
        let message_id = format!("{}.{}@localhost", approved.id.simple(), jane.id.simple());
        assert_eq!(w["message_id"], message_id);
        let bobs = log(&bob).await;
        assert_eq!(bobs.len(), 1, "a refusal is a warrant too: {bobs:?}");
        assert_eq!((bobs[0]["allowed"].clone(), bobs[0]["reasons"].clone()), (json!(false), json!(["no_consent"])));
        assert_eq!((bobs[0]["delivery"].clone(), bobs[0]["contact_point"].clone()), (json!("not_sent"), Value::Null));

        let pack = |c: &Contact| {
            let path = format!("/api/v1/contacts/{}/evidence-pack", c.id);
            let app = &app;
            let sales = sales.clone();
            async move {
                let reply = app.get(&path, &sales).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                reply.body.as_str().unwrap().to_owned()
            }
        };
        let janes = pack(&jane).await;
        for shown in ["Communication log (1 warrant)", "Winter boiler check", "allowed, on the basis of consent",
                      "ledger events 1", "<dt>Written by</dt><dd>sam.sales@example.org",
                      "<dt>Approved by</dt><dd>mia.manager@example.org", "<dt>Delivery</dt><dd>sent (accepted)",
                      &message_id, "jane.doe@example.org"] {
            assert!(janes.contains(shown), "Jane's pack shows {shown}: {janes}");
        }
        let bobs = pack(&bob).await;
        assert!(bobs.contains("not allowed (no consent)"), "{bobs}");
        assert!(!bobs.contains("jane.doe@example.org"), "one contact's pack names no one else's address");
        let nobody = app.get(&format!("/api/v1/contacts/{}/communications", Uuid::now_v7()), &sales).await;
        assert_eq!(nobody.status, StatusCode::NOT_FOUND, "{}", nobody.body);
    }
}

store_test! {
    async fn a_paused_campaign_claims_no_more_and_a_cancelled_one_sends_nothing_still_queued(app: TestApp) {
        catalogue(&app).await;
        let (_, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("mia.manager@example.org", &[Role::Manager]).await;
        let mut ids = Vec::new();
        for n in 0..5 {
            let person = contact(&app, &sales, json!({"first_name": format!("Person {n}"), "last_name": "Doe", "emails": [format!("person.{n}@example.org")]})).await;
            consent(&app, &sales, &person).await;
            ids.push(person.id);
        }
        let created: Campaign = app.post("/api/v1/campaigns", &sales, boiler_offer(&ids, BODY)).await.json();
        let (_, body) = step(&app, &sales, &created, "submit", json!({})).await;
        let submitted: Campaign = serde_json::from_value(body).unwrap();
        let preview: CampaignPreview = app.get(&format!("/api/v1/campaigns/{}/preview", submitted.id), &manager).await.json();
        let (_, body) = step(&app, &manager, &submitted, "approve", json!({"content_hash": preview.content_hash, "audience_hash": preview.audience_hash})).await;
        let approved: Campaign = serde_json::from_value(body).unwrap();
        let (_, body) = step(&app, &sales, &approved, "send", json!({})).await;
        let sending: Campaign = serde_json::from_value(body).unwrap();
        let (status, body) = step(&app, &sales, &sending, "pause", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let paused: Campaign = serde_json::from_value(body).unwrap();
        assert_eq!(paused.state, CampaignState::Paused);
        let path = format!("/api/v1/campaigns/{}/progress", paused.id);
        let progress = || app.get(&path, &sales);
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        let held = progress().await.body;
        assert_eq!((held["state"].as_str(), held["in_flight"].as_u64()), (Some("paused"), Some(0)), "{held}");
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        assert_eq!(progress().await.body["queued"], held["queued"], "nothing is claimed while paused");

        let (status, body) = step(&app, &sales, &paused, "cancel", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let done = progress().await.body;
        assert_eq!((done["state"].as_str(), done["queued"].as_u64(), done["total"].as_u64()), (Some("cancelled"), Some(0), Some(5)), "{done}");
        assert_eq!(done["not_sent"].as_u64().unwrap() + done["sent"].as_u64().unwrap(), 5, "{done}");
        assert_eq!(maildir(&app).len() as u64, done["sent"].as_u64().unwrap());
    }
}

/// The outbox rows of `campaign` in each state, read through a connection of the test's own (the
/// server closes its pools when it stops).
async fn states_of(app: &TestApp, campaign: Uuid) -> std::collections::HashMap<String, i64> {
    let sql = "SELECT state, COUNT(*) FROM outbox WHERE campaign_id = $1 GROUP BY state";
    let rows: Vec<(String, i64)> = match app.pg_url() {
        Some(url) => {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let rows = sqlx::query_as(sql)
                .bind(campaign)
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows
        }
        None => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(app.data_dir().join("assent.db"))
                .read_only(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            let rows = sqlx::query_as(sql)
                .bind(campaign)
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows
        }
    };
    rows.into_iter().collect()
}

async fn a_stop_puts_back_what_a_rate_limit_held(backend: crate::helpers::Backend) {
    let settings = [("ASSENT_MAIL_PER_SECOND", "2"), ("ASSENT_SEND_BATCH", "10")];
    crate::helpers::run_with(backend, &settings, |app| async move {
        let (sales, manager) = catalogue_and_staff(&app).await;
        let mut members = Vec::new();
        for n in 0..10 {
            let c = contact(
                &app,
                &sales,
                json!({"first_name": format!("Ana {n}"), "last_name": "Silva",
                "emails": [format!("ana.silva.{n}@example.org")]}),
            )
            .await;
            consent(&app, &sales, &c).await;
            members.push(c.id);
        }
        let (approved, _) = approved_offer(&app, &sales, &manager, &members).await;
        let (status, body) = step(&app, &sales, &approved, "send", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Two a second: the batch of ten takes five seconds. Stop the server a second in.
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        app.stop();
        // The server closes its store once its worker has finished (10 s of grace at most).
        for _ in 0..300 {
            let closed = match app.db.pool() {
                assent_server::store::Pool::Sqlite(pool) => pool.is_closed(),
                assent_server::store::Pool::Postgres(pool) => pool.is_closed(),
            };
            if closed {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let states = states_of(&app, approved.id).await;
        let count = |state: &str| states.get(state).copied().unwrap_or(0);
        let (sent, queued) = (count("sent"), count("queued"));
        assert!(
            sent >= 1 && queued >= 1,
            "some went, some were held back: {states:?}"
        );
        assert_eq!(
            sent + queued,
            10,
            "every row sent or back in the queue, none claimed or indeterminate: {states:?}"
        );
        assert_eq!(
            maildir(&app).len() as i64,
            sent,
            "exactly the sent ones were handed over"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_puts_back_what_a_rate_limit_held_on_sqlite() {
    a_stop_puts_back_what_a_rate_limit_held(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_puts_back_what_a_rate_limit_held_on_postgres() {
    a_stop_puts_back_what_a_rate_limit_held(crate::helpers::Backend::Postgres).await;
}

store_test! {
    async fn indeterminate_recipients_are_listed_and_sent_again_only_when_chosen(app: TestApp) {
        catalogue(&app).await;
        let (author, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, other_sales) = app.user_with_token("ola.sales@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("mia.manager@example.org", &[Role::Manager]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await;
        consent(&app, &sales, &jane).await;
        let ravi = contact(&app, &sales, json!({"first_name": "Ravi", "last_name": "Patel", "emails": ["ravi.patel@example.org"]})).await;
        consent(&app, &sales, &ravi).await;
        let (approved, _) = approved_offer(&app, &sales, &manager, &[jane.id, ravi.id]).await;
        sent(&app, &sales, &approved).await;
        let listed = format!("/api/v1/campaigns/{}/indeterminate", approved.id);
        assert_eq!(app.get(&listed, &sales).await.body, json!({"total": 0, "items": []}));

        // Jane's worker died while it held her row, after handing the message over (it did
        // arrive): her row is claimed, with no end written, and its lease runs out.
        let past = chrono::Utc::now() - chrono::Duration::minutes(5);
        let died = "UPDATE outbox SET state = 'claimed', contact_point = NULL, outcome = NULL, \
                    lease_owner = 'a worker that died', lease_until = $1 WHERE contact_id = $2";
        let held = match app.db.pool() {
            assent_server::store::Pool::Sqlite(pool) => sqlx::query(died).bind(past).bind(jane.id).execute(pool).await.unwrap().rows_affected(),
            assent_server::store::Pool::Postgres(pool) => sqlx::query(died).bind(past).bind(jane.id).execute(pool).await.unwrap().rows_affected(),
        };
        assert_eq!(held, 1);
        assent_server::store::outbox::expire_leases(&app.db, chrono::Utc::now()).await.unwrap();
        let shown = app.get(&listed, &manager).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
        assert_eq!(shown.body["total"], 1);
        let item = &shown.body["items"][0];
        assert_eq!(item["contact_id"], jane.id.to_string());
        assert_eq!(item["first_name"], "Jane");
        assert_eq!(item["contact_point"], "jane.doe@example.org", "the address her warrant names");
        assert_eq!(item["outcome"], "lease_expired");
        assert_eq!(item["message_id"], format!("{}.{}@localhost", approved.id.simple(), jane.id.simple()));
        assert_eq!(app.get(&format!("/api/v1/campaigns/{}/indeterminate", Uuid::now_v7()), &sales).await.status, StatusCode::NOT_FOUND);

        // Nothing goes again on its own, and a wrong choice changes nothing.
        let campaign: Campaign = app.get(&format!("/api/v1/campaigns/{}", approved.id), &sales).await.json();
        assert_eq!(campaign.state, CampaignState::Sent);
        let path = format!("/api/v1/campaigns/{}/indeterminate/resend", approved.id);
        let refused = [
            (&sales, json!({"version": campaign.version, "contact_ids": []}), StatusCode::UNPROCESSABLE_ENTITY, "1 to 1000"),
            (&sales, json!({"version": campaign.version, "contact_ids": [jane.id, jane.id]}), StatusCode::UNPROCESSABLE_ENTITY, "twice"),
            (&sales, json!({"version": campaign.version, "contact_ids": [jane.id, ravi.id]}), StatusCode::UNPROCESSABLE_ENTITY, "not indeterminate"),
            (&sales, json!({"version": campaign.version - 1, "contact_ids": [jane.id]}), StatusCode::CONFLICT, "version"),
            (&other_sales, json!({"version": campaign.version, "contact_ids": [jane.id]}), StatusCode::FORBIDDEN, "author or a manager"),
        ];
        for (token, body, status, says) in refused {
            let reply = app.post(&path, token, body.clone()).await;
            assert_eq!(reply.status, status, "{body}: {}", reply.body);
            assert!(reply.body.to_string().contains(says), "{body}: {}", reply.body);
        }
        assert_eq!(app.get(&listed, &sales).await.body["total"], 1, "still indeterminate");
        assert_eq!(maildir(&app).len(), 2);

        // The author chooses to send it again: decided again, with the same Message-ID.
        let reply = app.post(&path, &sales, json!({"version": campaign.version, "contact_ids": [jane.id]})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["state"], "sending");
        // A worker that looked before the resend (and found nothing open) cannot mark it sent.
        let mut tx = app.db.begin().await.unwrap();
        let stale = assent_server::store::campaigns::mark_sent(&mut tx, approved.id, campaign.version, chrono::Utc::now()).await.unwrap();
        assert!(!stale, "marked sent over the rows queued again");
        drop(tx);
        let progress = progress_when_done(&app, &sales, approved.id).await;
        assert_eq!(progress["sent"], 2, "{progress}");
        assert_eq!(progress["indeterminate"], 0, "{progress}");
        let to_jane: Vec<String> = maildir(&app).into_iter().filter(|m| m.contains("To: jane.doe@example.org")).collect();
        assert_eq!(to_jane.len(), 2, "the first copy had arrived; the second carries the same Message-ID");
        let id_line = format!("Message-ID: <{}.{}@localhost>", approved.id.simple(), jane.id.simple());
        assert!(to_jane.iter().all(|m| m.contains(&id_line)));
        assert_eq!(crate::audit::records_of(&app, "indeterminate_resent", author.id, Some(jane.id)).await, 1);
        // Reading the list while she was on it is recorded as a read of her (once: the author's
        // first read listed nobody).
        assert_eq!(crate::audit::records_of(&app, "indeterminate_read", author.id, Some(jane.id)).await, 1);
        let verified = assent_server::service::audit::verify(&app.db).await.unwrap();
        assert_eq!(verified.warrants, Ok(3), "Jane's second decision has a warrant of its own");
    }
}

store_test! {
    async fn a_test_send_goes_to_its_author_as_the_first_recipient_would_get_it(app: TestApp) {
        catalogue(&app).await;
        let (author, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, other_sales) = app.user_with_token("ola.sales@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("mia.manager@example.org", &[Role::Manager]).await;
        let bob = contact(&app, &sales, json!({"first_name": "Bob", "last_name": "Roe", "emails": ["bob.roe@example.org"]})).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await;
        consent(&app, &sales, &jane).await;
        let draft: Campaign = app.post("/api/v1/campaigns", &sales, boiler_offer(&[bob.id, jane.id], BODY)).await.json();
        let path = format!("/api/v1/campaigns/{}/test-send", draft.id);

        assert_eq!(app.post(&path, &other_sales, json!({})).await.status, StatusCode::FORBIDDEN);
        assert!(maildir(&app).is_empty());
        let reply = app.post(&path, &sales, json!({})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["to"], "sam.sales@example.org");
        assert_eq!(reply.body["delivered"], true);
        assert_eq!(reply.body["outcome"], "accepted");
        let messages = maildir(&app);
        assert_eq!(messages.len(), 1);
        let test = &messages[0];
        assert!(test.contains("To: sam.sales@example.org"), "{test}");
        // Jane is the one the engine allows: the message is hers, its links reach no one.
        assert!(test.contains("Subject: [Test] Jane, your boiler before winter"), "{test}");
        assert!(test.contains("Dear Jane"), "{test}");
        assert!(test.contains("List-Unsubscribe: <https://assent.invalid/"), "{test}");
        assert!(!test.contains("/u/"), "no recipient's unsubscribe link: {test}");
        assert!(!test.contains("bob.roe@") && !test.contains("jane.doe@"), "{test}");
        assert!(test.contains(&format!("Message-ID: <test.{}.", draft.id.simple())), "{test}");
        assert_eq!(crate::audit::records_of(&app, "campaign_test_sent", author.id, Some(jane.id)).await, 1);
        let outbox = app.raw_sql("UPDATE outbox SET attempts = attempts").await.unwrap();
        assert_eq!(outbox, 0, "nothing in the outbox");

        // Once it sends, a test is too late.
        let (approved, _) = approved_offer(&app, &sales, &manager, &[jane.id]).await;
        let (status, body) = step(&app, &sales, &approved, "send", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let late = app.post(&format!("/api/v1/campaigns/{}/test-send", approved.id), &sales, json!({})).await;
        assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
        assert_eq!(app.post(&format!("/api/v1/campaigns/{}/test-send", Uuid::now_v7()), &sales, json!({})).await.status, StatusCode::NOT_FOUND);
    }
}

store_test! {
    async fn a_service_message_skips_approval_only_where_the_policy_says_so_and_never_when_it_reads_like_marketing(app: TestApp) {
        let (author, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, dpo) = app.user_with_token("dora.dpo@example.org", &[Role::Dpo]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await;
        let notice = |name: &str, body: &str| json!({
            "name": name, "message": {"kind": "service", "channel": "email", "topic": ""},
            "subject": "Your boiler service is due", "body": body, "audience": {"contact_ids": [jane.id]}
        });
        let submitted = |content: Value| {
            let app = &app;
            let sales = sales.clone();
            async move {
                let created: Campaign = app.post("/api/v1/campaigns", &sales, content).await.json();
                let (status, body) = step(app, &sales, &created, "submit", json!({})).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                serde_json::from_value::<Campaign>(body).unwrap()
            }
        };
        let plain = "Dear {{first_name}}, your annual boiler service is due in January.";

        // By default a service message waits for a manager like marketing.
        let waits = submitted(notice("Service due (default)", plain)).await;
        assert_eq!(waits.state, CampaignState::Submitted);
        // And a service email ends with the neutral link to the reader's preferences.
        let preview = app.get(&format!("/api/v1/campaigns/{}/preview", waits.id), &sales).await;
        assert!(preview.body["sample"]["text"].as_str().unwrap().contains("Your contact preferences"), "{}", preview.body);

        let mut policy = app.get("/api/v1/policy", &dpo).await.body["policy"].clone();
        policy["service_messages_skip_approval"] = json!(true);
        policy["service_preferences_link"] = json!(false);
        let changed = app.put("/api/v1/policy", &dpo, json!({"policy": policy, "note": "Service notices need no approval"})).await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);

        // Now it is approved as submitted, with no approver, its audience frozen.
        let goes = submitted(notice("Service due", plain)).await;
        assert_eq!(goes.state, CampaignState::Approved);
        assert_eq!(goes.decided_by, None);
        assert_eq!(goes.frozen_members, Some(1));
        assert_eq!(crate::audit::records_of(&app, "campaign_approved_by_policy", author.id, Some(goes.id)).await, 1);
        // One that reads like marketing still waits for a manager.
        let flagged = submitted(notice("Service due, with an offer", "Dear {{first_name}}, your service is due. 10% off radiators!")).await;
        assert_eq!(flagged.state, CampaignState::Submitted);
        assert_eq!(flagged.flags, ["% off"]);

        // Sent as approved; its warrant names no approver, and the policy left out the
        // preferences link (the sender's identity stays).
        sent(&app, &sales, &goes).await;
        let messages = maildir(&app);
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("Dear Jane"), "{}", messages[0]);
        assert!(!messages[0].contains("Your contact preferences"), "{}", messages[0]);
        assert!(messages[0].contains("Harbour Heating Ltd"), "{}", messages[0]);
        let log = app.get(&format!("/api/v1/contacts/{}/communications", jane.id), &sales).await;
        assert_eq!(log.body[0]["approver_id"], Value::Null, "{}", log.body);
        assert_eq!(log.body[0]["allowed"], true, "{}", log.body);
    }
}

/// Runs `sql`, which binds one id, inside `tx`.
async fn run_in(tx: &mut assent_server::store::WriteTx, sql: &str, id: Uuid) {
    use assent_server::store::Tx;
    match &mut **tx {
        Tx::Sqlite(t) => sqlx::query(sql)
            .bind(id)
            .execute(&mut **t)
            .await
            .map(|_| ()),
        Tx::Postgres(t) => sqlx::query(sql)
            .bind(id)
            .execute(&mut **t)
            .await
            .map(|_| ()),
    }
    .unwrap();
}

/// A draft to Jane and Ravi.
async fn draft_to_two(app: &TestApp) -> Campaign {
    let (sales, _) = catalogue_and_staff(app).await;
    let jane = contact(
        app,
        &sales,
        json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]}),
    )
    .await;
    let ravi = contact(
        app,
        &sales,
        json!({"first_name": "Ravi", "last_name": "Patel", "emails": ["ravi.patel@example.org"]}),
    )
    .await;
    let draft = app
        .post(
            "/api/v1/campaigns",
            &sales,
            boiler_offer(&[jane.id, ravi.id], BODY),
        )
        .await;
    assert_eq!(draft.status, StatusCode::CREATED, "{}", draft.body);
    draft.json()
}

/// `draft` (of [`draft_to_two`]) put to sending inside `tx` (the caller decides whether the
/// worker ever sees it), with its two outbox rows queued and picked.
async fn picked_in(
    tx: &mut assent_server::store::WriteTx,
    draft: &Campaign,
) -> Vec<assent_server::store::outbox::Claimed> {
    use assent_server::store::outbox;
    let now = chrono::Utc::now();
    run_in(
        tx,
        "UPDATE campaigns SET state = 'sending' WHERE id = $1",
        draft.id,
    )
    .await;
    let assent_shared::api::Audience::ContactIds(members) = &draft.content.audience else {
        panic!("the draft names its members");
    };
    let rows: Vec<outbox::NewRow> = members
        .iter()
        .map(|contact| outbox::NewRow {
            id: Uuid::now_v7(),
            contact_id: *contact,
            message_id: format!("{}.{}@localhost", draft.id.simple(), contact.simple()),
            token: Uuid::now_v7().simple().to_string(),
        })
        .collect();
    outbox::enqueue(tx, draft.id, "email", "", &rows, now)
        .await
        .unwrap();
    let picked = outbox::pick(tx, draft.id, now, 10).await.unwrap();
    assert_eq!(picked.len(), 2);
    picked
}

store_test! {
    async fn a_lease_is_renewed_only_for_the_rows_the_worker_still_holds(app: TestApp) {
        use assent_server::store::outbox;
        let draft = draft_to_two(&app).await;
        let mut tx = app.db.begin().await.unwrap();
        let picked = picked_in(&mut tx, &draft).await;
        let now = chrono::Utc::now();
        let ids: Vec<Uuid> = picked.iter().map(|r| r.id).collect();
        outbox::claim(&mut tx, &ids, "a worker", now + chrono::Duration::minutes(2), now).await.unwrap();
        // Back to a draft before it commits, so the worker never takes the campaign's rows.
        run_in(&mut tx, "UPDATE campaigns SET state = 'draft' WHERE id = $1", draft.id).await;
        // The first row's lease ran out: it was marked indeterminate.
        run_in(&mut tx, "UPDATE outbox SET state = 'indeterminate', outcome = 'lease_expired' WHERE id = $1", ids[0]).await;
        tx.commit().await.unwrap();

        let until = now + chrono::Duration::minutes(10);
        assert!(outbox::renew(&app.db, &ids, "another worker", now, until).await.unwrap().is_empty(), "a lease is its owner's to renew");
        let later = now + chrono::Duration::minutes(3);
        assert!(outbox::renew(&app.db, &ids, "a worker", later, until).await.unwrap().is_empty(), "a lease that ran out is not renewed, marked or not");
        let renewed = outbox::renew(&app.db, &ids, "a worker", now, until).await.unwrap();
        assert_eq!(renewed, vec![ids[1]], "only the row still claimed is renewed");
        let sql = "SELECT id, state, lease_until FROM outbox WHERE campaign_id = $1";
        let rows: Vec<(Uuid, String, Option<chrono::DateTime<chrono::Utc>>)> = match app.db.pool() {
            assent_server::store::Pool::Sqlite(pool) => sqlx::query_as(sql).bind(draft.id).fetch_all(pool).await.unwrap(),
            assent_server::store::Pool::Postgres(pool) => sqlx::query_as(sql).bind(draft.id).fetch_all(pool).await.unwrap(),
        };
        let row = |id: Uuid| rows.iter().find(|r| r.0 == id).cloned().unwrap();
        assert_eq!(row(ids[0]).1, "indeterminate");
        let lease = |id| row(id).2.expect("a claimed row has a lease") - now;
        assert!(lease(ids[0]) <= chrono::Duration::minutes(2), "the row no longer held keeps its lease as it was");
        assert_eq!(row(ids[1]).1, "claimed");
        assert!(lease(ids[1]) > chrono::Duration::minutes(9), "the row still held is renewed to the new end");
    }
}

store_test! {
    async fn a_claim_fails_whole_when_a_row_it_picked_is_no_longer_queued(app: TestApp) {
        use assent_server::store::outbox;
        // Nothing here commits, so the worker never sees the campaign sending.
        let draft = draft_to_two(&app).await;
        let mut tx = app.db.begin().await.unwrap();
        let picked = picked_in(&mut tx, &draft).await;
        let now = chrono::Utc::now();
        // A row the pick holds can change under no one else; were it to, the claim (and with it
        // the step's warrants) fails rather than a row going out unclaimed.
        run_in(&mut tx, "UPDATE outbox SET state = 'not_sent' WHERE id = $1", picked[0].id).await;
        let ids: Vec<Uuid> = picked.iter().map(|r| r.id).collect();
        let claimed = outbox::claim(&mut tx, &ids, "a worker", now + chrono::Duration::minutes(2), now).await;
        let err = claimed.expect_err("a row no longer queued is not claimed quietly");
        assert!(err.to_string().contains("no longer queued"), "{err}");
    }
}

/// Two replicas on one PostgreSQL database send one campaign: both workers take steps of it at
/// once (`FOR UPDATE SKIP LOCKED`), and each recipient gets one message, with one warrant, in a
/// chain that stays whole. Rate-limited so that the send outlasts a worker's idle wait and both
/// take part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_a_campaign_and_send_each_message_once() {
    let settings = [
        ("ASSENT_SEND_BATCH", "10"),
        ("ASSENT_MAIL_PER_SECOND", "50"),
    ];
    crate::helpers::run_with(crate::helpers::Backend::Postgres, &settings, |app| async move {
        let (sales, manager) = catalogue_and_staff(&app).await;
        let mut members = Vec::new();
        for i in 0..120 {
            let reader = contact(&app, &sales, json!({"first_name": format!("Reader {i}"), "last_name": "Doe",
                "emails": [format!("reader.{i}@example.org")]})).await;
            members.push(reader.id);
        }
        let other_dir = tempfile::tempdir().unwrap();
        let other_dir_text = other_dir.path().display().to_string();
        let pg_url = app.pg_url().expect("a PostgreSQL test");
        // Starting (its migrations) is not a Send future: run here, off the async context.
        let other = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(assent_tests::start_server(&[
                ("ASSENT_DATA_DIR", other_dir_text.as_str()),
                ("ASSENT_DATABASE_URL", pg_url.as_str()),
                ("ASSENT_ORGANISATION_NAME", "Harbour Heating Ltd"),
                ("ASSENT_ORGANISATION_POSTAL_ADDRESS", "1 Quay Street, Bristol BS1 4DJ"),
                ("ASSENT_SEND_BATCH", "10"),
                ("ASSENT_MAIL_PER_SECOND", "50"),
            ]))
        });
        let notice = json!({
            "name": "Boiler service due",
            "message": {"kind": "service", "channel": "email"},
            "subject": "Your boiler service is due",
            "body": "Dear {{first_name}}, your boiler's yearly service is due. Reply to book a visit.",
            "audience": {"contact_ids": members}
        });
        let (approved, _) = approved(&app, &sales, &manager, notice).await;
        let progress = sent(&app, &sales, &approved).await;
        assert_eq!(progress["sent"], 120, "{progress}");

        let mut others: Vec<String> = std::fs::read_dir(other_dir.path().join("mail/new"))
            .map(|entries| entries.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap()).collect())
            .unwrap_or_default();
        let ours = maildir(&app);
        assert!(!ours.is_empty() && !others.is_empty(), "both replicas sent some: {} and {}", ours.len(), others.len());
        others.extend(ours);
        let mut message_ids: Vec<String> = others
            .iter()
            .map(|m| m.lines().find(|l| l.starts_with("Message-ID: ")).expect("a Message-ID").to_owned())
            .collect();
        message_ids.sort();
        message_ids.dedup();
        assert_eq!(message_ids.len(), 120, "each recipient once, between the two");
        assert_eq!(others.len(), 120, "no message twice");

        type Row = (i64, i64);
        let sql = "SELECT COUNT(*), COUNT(DISTINCT contact_id) FROM warrants";
        let warrants: Row = match app.db.pool() {
            assent_server::store::Pool::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
            assent_server::store::Pool::Sqlite(_) => unreachable!("a PostgreSQL test"),
        };
        assert_eq!(warrants, (120, 120), "one warrant a recipient");
        assert!(assent_server::store::outbox::verify(&app.db).await.unwrap().is_ok(), "the chain of warrants is whole");
        other.handle.shutdown();
        other.db.close().await;
    })
    .await;
}
