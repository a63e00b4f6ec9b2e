use assent_shared::api::{Contact, DecisionResponse, TopicCatalogue};
use assent_shared::domain::Role;
use assent_shared::ledger::Basis;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::store_test;

fn heating_topics() -> Value {
    json!([
        {"key": "boilers", "name": "Boilers", "description": "New boilers, fitted and serviced."},
        {"key": "boiler-cover", "name": "Boiler cover", "description": "Yearly cover for repairs and a service."},
        {"key": "solar-panels", "name": "Solar panels", "description": "Panels on your roof, and the batteries that go with them."}
    ])
}

async fn policy_version(app: &TestApp, token: &str) -> (i64, Value) {
    let policy = app.get("/api/v1/policy", token).await;
    assert_eq!(policy.status, StatusCode::OK);
    (
        policy.body["version"].as_i64().unwrap(),
        policy.body["policy"]["similar_topics"].clone(),
    )
}

store_test! {
    async fn the_catalogue_names_topics_in_words_and_its_similar_groups_become_the_policy(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let (_, dpo) = app.user_with_token("dpo@example.org", &[Role::Dpo]).await;
        let empty: TopicCatalogue = app.get("/api/v1/topics", &sales).await.json();
        assert_eq!((empty.version, empty.topics.len()), (0, 0));

        let change = json!({"topics": heating_topics(), "similar": [["boilers", "boiler-cover"]], "note": "Our product lines."});
        assert_eq!(app.put("/api/v1/topics", &sales, change.clone()).await.status, StatusCode::FORBIDDEN);
        let saved = app.put("/api/v1/topics", &dpo, change).await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
        let saved: TopicCatalogue = saved.json();
        assert_eq!(saved.version, 1);
        assert_eq!(saved.topics[1].name, "Boiler cover");
        assert_eq!(app.get("/api/v1/topics", &sales).await.json::<TopicCatalogue>(), saved);
        let (version, groups) = policy_version(&app, &sales).await;
        assert_eq!((version, groups), (1, json!([["boilers", "boiler-cover"]])), "the groups are the policy's, in a version of their own");

        // The soft opt-in now reaches boiler cover for a boiler buyer.
        let jane: Contact = app.post("/api/v1/contacts", &sales, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await.json();
        let sale = app.post(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales,
            json!({"at": "2025-05-10T14:03:00Z", "type": "sale", "topic": "boilers", "refusal_offered": true})).await;
        assert_eq!(sale.status, StatusCode::CREATED, "{}", sale.body);
        let decision: DecisionResponse = app.post("/api/v1/decisions", &sales,
            json!({"contact_id": jane.id, "message": {"kind": "marketing", "channel": "email", "topic": "boiler-cover"}})).await.json();
        assert_eq!((decision.allowed, decision.basis, decision.policy_version), (true, Some(Basis::SoftOptIn), 1));

        // A new version that keeps the groups writes no policy version; descriptions are trimmed.
        let mut topics = heating_topics();
        topics[2]["description"] = json!("  Panels on your roof.  ");
        topics[2]["retired"] = json!(true);
        let second: TopicCatalogue = app.put("/api/v1/topics", &dpo, json!({"topics": topics, "similar": [["boilers", "boiler-cover"]]})).await.json();
        assert_eq!(second.version, 2);
        assert_eq!(second.topics[2].description, "Panels on your roof.");
        assert!(second.topics[2].retired);
        assert_eq!(policy_version(&app, &sales).await.0, 1);

        let history = app.get("/api/v1/topics/history", &dpo).await;
        let versions: Vec<i64> = history.body.as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
        assert_eq!(versions, [2, 1, 0]);
        assert_eq!(app.get("/api/v1/topics/history", &sales).await.status, StatusCode::FORBIDDEN);
        assert!(app.raw_sql("UPDATE topic_catalogues SET note = 'rewritten'").await.unwrap_err().to_string().contains("append-only"));
        assert!(app.raw_sql("DELETE FROM topic_catalogues").await.unwrap_err().to_string().contains("append-only"));
    }
}

store_test! {
    async fn a_catalogue_that_drops_a_topic_or_names_unknown_ones_is_refused_whole(app: TestApp) {
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let first = app.put("/api/v1/topics", &admin, json!({"topics": heating_topics()})).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);

        let bad = app.put("/api/v1/topics", &admin, json!({
            "topics": [
                {"key": "Boilers", "name": "Boilers", "description": "New boilers."},
                {"key": "boiler-cover", "name": " ", "description": "Cover."},
                {"key": "boiler-cover", "name": "Cover again", "description": "Cover."},
                {"key": "-radiators", "name": "Radiators", "description": "Radiators."}
            ],
            "similar": [["boiler-cover"], ["boiler-cover", "heat-pumps", "boiler-cover"]]
        })).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
        assert_eq!(bad.fields(), [
            "topics[0].key", "topics[1].name", "topics[2].key", "topics[3].key",
            "similar[0]", "similar[1][1]", "similar[1][2]",
        ]);

        // Leaving out a topic of the last version: retire it instead.
        let dropped = app.put("/api/v1/topics", &admin, json!({"topics": [heating_topics()[0]]})).await;
        assert_eq!(dropped.fields(), ["topics[1]", "topics[2]"], "{}", dropped.body);
        assert!(dropped.body["fields"][0]["reason"].as_str().unwrap_or_default().contains("retired"), "{}", dropped.body);

        let unchanged: TopicCatalogue = app.get("/api/v1/topics", &admin).await.json();
        assert_eq!(unchanged.version, 1, "nothing of a refused change was saved");
        assert_eq!(policy_version(&app, &admin).await.0, 0, "the first catalogue had no groups: the policy kept its version");
    }
}

store_test! {
    async fn once_a_catalogue_exists_the_policy_cannot_set_other_similar_groups(app: TestApp) {
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let saved = app.put("/api/v1/topics", &admin, json!({"topics": heating_topics(), "similar": [["boilers", "boiler-cover"]]})).await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
        let other = app.put("/api/v1/policy", &admin, json!({"policy": {"similar_topics": [["boilers", "solar-panels"]]}})).await;
        assert_eq!(other.fields(), ["policy.similar_topics"], "{}", other.body);
        let same = app.put("/api/v1/policy", &admin, json!({"policy": {"soft_opt_in": false, "similar_topics": [["boilers", "boiler-cover"]]}})).await;
        assert_eq!(same.status, StatusCode::OK, "the catalogue's groups sent unchanged: {}", same.body);
        assert_eq!(policy_version(&app, &admin).await, (2, json!([["boilers", "boiler-cover"]])));
    }
}
