use assent_shared::api::{Contact, DecisionResponse, RecordedEvent};
use assent_shared::domain::Role;
use assent_shared::ledger::{Basis, Reason};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::store_test;

async fn jane(app: &TestApp, token: &str) -> Contact {
    app.post(
        "/api/v1/contacts",
        token,
        json!({"first_name": "Jane", "last_name": "Doe"}),
    )
    .await
    .json()
}

async fn record(
    app: &TestApp,
    token: &str,
    contact: &Contact,
    event: serde_json::Value,
) -> RecordedEvent {
    let reply = app
        .post(
            &format!("/api/v1/contacts/{}/ledger", contact.id),
            token,
            event,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.json()
}

async fn ask(app: &TestApp, token: &str, body: serde_json::Value) -> DecisionResponse {
    let reply = app.post("/api/v1/decisions", token, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()
}

store_test! {
    async fn may_i_send_answers_with_the_basis_the_evidence_and_plain_words(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = jane(&app, &sales).await;
        let consent = record(&app, &sales, &jane, json!({"at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "email",
            "topic": "boilers", "method": "paper_form", "wording": "Email me boiler offers."})).await;

        let boilers = ask(&app, &sales, json!({"contact_id": jane.id, "message": {"kind": "marketing", "channel": "email", "topic": "boilers"}})).await;
        assert!(boilers.allowed);
        assert_eq!(boilers.basis, Some(Basis::Consent));
        assert_eq!(boilers.evidence, [consent.id]);
        assert_eq!(boilers.policy_version, 0);
        assert!(boilers.explanation.starts_with("Allowed: Jane Doe consented on 10 May 2025"), "{}", boilers.explanation);

        let radiators = ask(&app, &sales, json!({"contact_id": jane.id, "message": {"kind": "marketing", "channel": "email", "topic": "radiators"}})).await;
        assert!(!radiators.allowed);
        assert_eq!(radiators.reasons, [Reason::NoConsent]);
        assert!(radiators.explanation.contains("Jane Doe has not consented to marketing emails about radiators"));

        let any = app.post("/api/v1/decisions", &sales, json!({"contact_id": jane.id, "message": {"kind": "marketing", "channel": "any", "topic": "x"}})).await;
        assert_eq!(any.fields(), ["message.channel"]);
        let nobody = app.post("/api/v1/decisions", &sales, json!({"contact_id": uuid::Uuid::now_v7(), "message": {"kind": "service", "channel": "email"}})).await;
        assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    }
}

store_test! {
    async fn a_decision_as_of_the_past_uses_the_ledger_and_policy_known_then(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let (_, dpo) = app.user_with_token("dpo@example.org", &[Role::Dpo]).await;
        let jane = jane(&app, &sales).await;
        let sale = record(&app, &sales, &jane, json!({"at": "2025-05-10T14:03:00Z", "type": "sale", "topic": "boilers", "refusal_offered": true})).await;
        let message = json!({"kind": "marketing", "channel": "email", "topic": "boilers"});

        let before_anything = ask(&app, &sales, json!({"contact_id": jane.id, "message": message})).await;
        assert_eq!(before_anything.basis, Some(Basis::SoftOptIn));
        assert_eq!(before_anything.evidence, [sale.id]);
        let then = before_anything.decided_for;

        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let policy = app.put("/api/v1/policy", &dpo, json!({"policy": {"soft_opt_in": false}, "note": "Consent only from now on."})).await;
        assert_eq!(policy.status, StatusCode::OK, "{}", policy.body);
        record(&app, &sales, &jane, json!({"at": "2025-05-01T09:00:00Z", "type": "opt_out", "channel": "email", "topic": "*"})).await;

        let today = ask(&app, &sales, json!({"contact_id": jane.id, "message": message})).await;
        assert!(!today.allowed);
        assert_eq!(today.policy_version, 1);
        assert_eq!(today.reasons, [Reason::OptedOut, Reason::NoConsent], "an opt-out, and soft opt-in is now off");

        let as_of_then = ask(&app, &sales, json!({"contact_id": jane.id, "message": message, "as_of": then})).await;
        assert!(as_of_then.allowed, "the answer the system gave then: {}", as_of_then.explanation);
        assert_eq!(as_of_then.basis, Some(Basis::SoftOptIn));
        assert_eq!(as_of_then.policy_version, 0);
        assert_eq!(as_of_then.decided_for, then);

        let future = app.post("/api/v1/decisions", &sales, json!({"contact_id": jane.id, "message": message, "as_of": "2999-01-01T00:00:00Z"})).await;
        assert_eq!(future.fields(), ["as_of"]);
    }
}

store_test! {
    async fn the_policy_is_changed_only_by_admin_or_dpo_and_every_version_is_kept(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let change = json!({"policy": {"similar_topics": [["boilers", "boiler-cover"]]}});
        assert_eq!(app.put("/api/v1/policy", &sales, change.clone()).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.get("/api/v1/policy/history", &sales).await.status, StatusCode::FORBIDDEN);
        let bad = app.put("/api/v1/policy", &admin, json!({"policy": {"similar_topics": [["boilers"]]}})).await;
        assert_eq!(bad.fields(), ["policy.similar_topics[0]"]);
        let unknown = app.put("/api/v1/policy", &admin, json!({"policy": {"soft_opt_out": true}})).await;
        assert_eq!(unknown.code(), "invalid_body");
        assert_eq!(app.put("/api/v1/policy", &admin, change).await.status, StatusCode::OK);
        let current = app.get("/api/v1/policy", &sales).await;
        assert_eq!(current.body["version"], 1);
        assert_eq!(current.body["policy"]["similar_topics"][0][1], "boiler-cover");
        assert_eq!(current.body["policy"]["soft_opt_in"], true, "absent keys keep their defaults");
        let history = app.get("/api/v1/policy/history", &admin).await;
        let versions: Vec<i64> = history.body.as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
        assert_eq!(versions, [1, 0]);
        assert!(app.raw_sql("UPDATE policy_versions SET note = 'rewritten'").await.unwrap_err().to_string().contains("append-only"));
    }
}

store_test! {
    async fn an_audience_is_counted_by_basis_and_reason_and_paged(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let mut people = Vec::new();
        for (name, kind) in [("Ann Consent", "individual"), ("Bob Optout", "individual"), ("Cat Buyer", "individual"),
                             ("Dan Nobody", "individual"), ("Eve Corp", "corporate")] {
            let (first, last) = name.split_once(' ').unwrap();
            let contact: Contact = app.post("/api/v1/contacts", &sales, json!({"first_name": first, "last_name": last, "subscriber_kind": kind})).await.json();
            people.push(contact);
        }
        record(&app, &sales, &people[0], json!({"at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "email",
            "topic": "boilers", "method": "paper_form", "wording": "Email me boiler offers."})).await;
        record(&app, &sales, &people[1], json!({"at": "2025-05-10T14:03:00Z", "type": "opt_out", "channel": "any", "topic": "*"})).await;
        record(&app, &sales, &people[2], json!({"at": "2025-05-10T14:03:00Z", "type": "sale", "topic": "boilers", "refusal_offered": true})).await;
        let message = json!({"kind": "marketing", "channel": "email", "topic": "boilers"});

        let everyone = app.post("/api/v1/decisions/audience", &sales, json!({"audience": "everyone", "message": message, "limit": 2})).await;
        assert_eq!(everyone.status, StatusCode::OK, "{}", everyone.body);
        let first: assent_shared::api::AudienceDecisionResponse = everyone.json();
        assert_eq!((first.total, first.allowed, first.denied), (5, 2, 3));
        let counts = |items: &[assent_shared::api::Count<String>]| items.iter().map(|c| (c.key.clone(), c.contacts)).collect::<Vec<_>>();
        let by_basis: Vec<assent_shared::api::Count<String>> = serde_json::from_value(everyone.body["by_basis"].clone()).unwrap();
        assert_eq!(counts(&by_basis), [("consent".to_owned(), 1), ("soft_opt_in".to_owned(), 1)]);
        let by_reason: Vec<assent_shared::api::Count<String>> = serde_json::from_value(everyone.body["by_reason"].clone()).unwrap();
        assert_eq!(counts(&by_reason), [("opted_out".to_owned(), 1), ("no_consent".to_owned(), 3)]);

        let mut seen: Vec<uuid::Uuid> = first.decisions.iter().map(|d| d.contact_id).collect();
        let mut cursor = first.next_cursor;
        while let Some(after) = cursor {
            let page: assent_shared::api::AudienceDecisionResponse = app
                .post("/api/v1/decisions/audience", &sales, json!({"audience": "everyone", "message": message, "limit": 2, "after": after}))
                .await
                .json();
            assert!(page.decisions.len() <= 2);
            seen.extend(page.decisions.iter().map(|d| d.contact_id));
            cursor = page.next_cursor;
        }
        let mut expected: Vec<uuid::Uuid> = people.iter().map(|p| p.id).collect();
        expected.sort();
        assert_eq!(seen, expected, "every contact once, in id order");

        let listed: assent_shared::api::AudienceDecisionResponse = app
            .post("/api/v1/decisions/audience", &sales, json!({"audience": {"contact_ids": [people[0].id, people[3].id]}, "message": message}))
            .await
            .json();
        assert_eq!((listed.total, listed.allowed), (2, 1));
        let searched: assent_shared::api::AudienceDecisionResponse = app
            .post("/api/v1/decisions/audience", &sales, json!({"audience": {"search": "buyer"}, "message": message}))
            .await
            .json();
        assert_eq!((searched.total, searched.decisions[0].basis), (1, Some(Basis::SoftOptIn)));

        let filter = app.post("/api/v1/filters", &sales, json!({"name": "Buyers", "search": "buyer"})).await;
        assert_eq!(filter.status, StatusCode::CREATED, "{}", filter.body);
        let filter: assent_shared::api::SavedFilter = filter.json();
        let again = app.post("/api/v1/filters", &sales, json!({"name": "BUYERS", "search": "anything"})).await;
        assert_eq!((again.status, again.fields()), (StatusCode::CONFLICT, vec!["name".to_owned()]));
        let saved: assent_shared::api::AudienceDecisionResponse = app
            .post("/api/v1/decisions/audience", &sales, json!({"audience": {"saved_filter": filter.id}, "message": message}))
            .await
            .json();
        assert_eq!((saved.total, saved.allowed), (1, 1));
        let no_filter = app.post("/api/v1/decisions/audience", &sales, json!({"audience": {"saved_filter": uuid::Uuid::now_v7()}, "message": message})).await;
        assert_eq!(no_filter.fields(), ["audience.saved_filter"]);
        let listed = app.get("/api/v1/filters", &sales).await;
        assert_eq!(listed.body.as_array().unwrap().len(), 1);

        let unknown = app.post("/api/v1/decisions/audience", &sales, json!({"audience": {"contact_ids": [uuid::Uuid::now_v7()]}, "message": message})).await;
        assert_eq!(unknown.fields(), ["audience.contact_ids"]);
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        assert_eq!(app.post("/api/v1/decisions/audience", &admin, json!({"audience": "everyone", "message": message})).await.status, StatusCode::FORBIDDEN);
    }
}

store_test! {
    async fn an_audience_holds_active_contacts_only_whatever_names_it(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let ann = jane(&app, &sales).await;
        let gone = jane(&app, &sales).await;
        let reply = app.post(&format!("/api/v1/contacts/{}/deactivate", gone.id), &sales, json!({"version": gone.version})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let message = json!({"kind": "marketing", "channel": "post", "topic": "boilers"});
        let audience = |audience: serde_json::Value| {
            let (app, sales, message) = (app.clone(), sales.clone(), message.clone());
            async move {
                let reply = app.post("/api/v1/decisions/audience", &sales, json!({"audience": audience, "message": message})).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                reply.json::<assent_shared::api::AudienceDecisionResponse>()
            }
        };
        let listed = audience(json!({"contact_ids": [ann.id, gone.id, gone.id]})).await;
        assert_eq!((listed.total, listed.left_out_inactive), (1, 1));
        assert_eq!(listed.decisions.iter().map(|d| d.contact_id).collect::<Vec<_>>(), [ann.id]);
        for other in [json!("everyone"), json!({"search": "doe"})] {
            let answer = audience(other).await;
            assert_eq!((answer.total, answer.left_out_inactive), (1, 0));
        }
        // On its own, a deactivated contact can still be asked about.
        let alone = ask(&app, &sales, json!({"contact_id": gone.id, "message": message})).await;
        assert_eq!(alone.basis, Some(Basis::LegitimateInterest));
    }
}

store_test! {
    async fn an_audience_cites_the_same_evidence_as_a_decision_for_one(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let mut people = Vec::new();
        for _ in 0..3 {
            people.push(jane(&app, &sales).await);
        }
        // Recorded out of time order, so that a place in the sorted ledger is not a seq.
        record(&app, &sales, &people[0], json!({"at": "2025-06-01T09:00:00Z", "type": "opt_out", "channel": "email", "topic": "*"})).await;
        record(&app, &sales, &people[0], json!({"at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "email",
            "topic": "boilers", "method": "paper_form", "wording": "Email me boiler offers."})).await;
        record(&app, &sales, &people[1], json!({"at": "2025-05-10T14:03:00Z", "type": "sale", "topic": "boilers", "refusal_offered": true})).await;
        record(&app, &sales, &people[1], json!({"at": "2025-04-10T14:03:00Z", "type": "tps_check", "registered": false})).await;
        record(&app, &sales, &people[2], json!({"at": "2025-04-10T14:03:00Z", "type": "consent_given", "channel": "email",
            "topic": "boilers", "method": "paper_form", "wording": "Email me boiler offers."})).await;
        let message = json!({"kind": "marketing", "channel": "email", "topic": "boilers"});
        let ids: Vec<uuid::Uuid> = people.iter().map(|p| p.id).collect();
        for audience in [json!({"contact_ids": ids}), json!("everyone")] {
            let answer: assent_shared::api::AudienceDecisionResponse = app
                .post("/api/v1/decisions/audience", &sales, json!({"audience": audience, "message": message}))
                .await
                .json();
            for member in &answer.decisions {
                let one = ask(&app, &sales, json!({"contact_id": member.contact_id, "message": message})).await;
                let ledger: Vec<RecordedEvent> = app.get(&format!("/api/v1/contacts/{}/ledger", member.contact_id), &sales).await.json();
                let mut cited: Vec<i64> = one.evidence.iter().map(|id| ledger.iter().find(|e| e.id == *id).unwrap().seq).collect();
                let mut from_audience = member.evidence_seqs.clone();
                cited.sort();
                from_audience.sort();
                assert_eq!((member.allowed, from_audience), (one.allowed, cited), "{}", member.contact_id);
            }
            assert!(answer.decisions.iter().any(|m| m.evidence_seqs == [1]), "the opt-out, recorded first");
        }
    }
}
