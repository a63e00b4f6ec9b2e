//! Concurrent writers, as many staff at once make them: appends to one ledger and to different
//! ledgers, new consent wordings and policy changes. Whatever the interleaving, every numbering
//! is gapless and without duplicates, and every chain verifies. On PostgreSQL the writers really
//! run at once (each holds its own audit chain); on SQLite they take turns.

use assent_server::store::{self, audit::Verification};
use assent_shared::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{join_all, TestApp};
use crate::store_test;

const WRITERS: usize = 16;

const EACH: usize = 4;

async fn contact(app: &TestApp, token: &str, n: usize) -> String {
    let reply = app
        .post(
            "/api/v1/contacts",
            token,
            json!({"first_name": "Concurrent", "last_name": format!("Person {n}")}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// Writer `w`'s event `e`: a consent with a wording no other writer uses, so that new wordings
/// are recorded at once too.
fn consent(w: usize, e: usize) -> Value {
    json!({"at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "email", "topic": "boilers",
           "method": "web_form", "wording": format!("Writer {w} may email me, form {e}.")})
}

/// The sequence numbers of a contact's ledger, in order.
async fn ledger_seqs(app: &TestApp, token: &str, id: &str) -> Vec<i64> {
    let reply = app
        .get(&format!("/api/v1/contacts/{id}/ledger"), token)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

async fn assert_every_chain_verifies(app: &TestApp) {
    let audit = store::audit::verify(&app.db).await.unwrap();
    assert!(matches!(audit, Verification::Intact { .. }), "{audit:?}");
    let ledgers = store::ledger::verify(&app.db).await.unwrap();
    assert!(ledgers.is_ok(), "{ledgers:?}");
}

async fn wording_versions(app: &TestApp, token: &str) -> Vec<i64> {
    let reply = app.get("/api/v1/consent-wordings?limit=200", token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut versions: Vec<i64> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["version"].as_i64().unwrap())
        .collect();
    versions.sort_unstable();
    versions
}

store_test! {
    async fn concurrent_appends_to_one_ledger_leave_no_gap_and_no_duplicate(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let id = contact(&app, &sales, 0).await;
        let path = format!("/api/v1/contacts/{id}/ledger");
        let writers = (0..WRITERS).map(|w| {
            let (app, sales, path) = (app.clone(), sales.clone(), path.clone());
            async move {
                for e in 0..EACH {
                    let reply = app.post(&path, &sales, consent(w, e)).await;
                    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
                }
            }
        });
        join_all(writers).await;
        let expected: Vec<i64> = (1..=(WRITERS * EACH) as i64).collect();
        assert_eq!(ledger_seqs(&app, &sales, &id).await, expected);
        assert_eq!(wording_versions(&app, &sales).await, expected, "one version per new wording, none twice");
        assert_every_chain_verifies(&app).await;
    }
}

store_test! {
    async fn concurrent_appends_to_different_ledgers_each_stay_whole(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let mut ids = Vec::new();
        for n in 0..WRITERS {
            ids.push(contact(&app, &sales, n).await);
        }
        let writers = ids.iter().enumerate().map(|(w, id)| {
            let (app, sales, path) = (app.clone(), sales.clone(), format!("/api/v1/contacts/{id}/ledger"));
            async move {
                for e in 0..EACH {
                    // The same wording for every writer's first event: recorded once.
                    let body = if e == 0 { consent(0, 0) } else { consent(w, e) };
                    let reply = app.post(&path, &sales, body).await;
                    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
                }
            }
        });
        join_all(writers).await;
        for id in &ids {
            assert_eq!(ledger_seqs(&app, &sales, id).await, (1..=EACH as i64).collect::<Vec<_>>());
        }
        let wordings = 1 + WRITERS * (EACH - 1);
        assert_eq!(wording_versions(&app, &sales).await, (1..=wordings as i64).collect::<Vec<_>>());
        assert_every_chain_verifies(&app).await;
    }
}

store_test! {
    async fn concurrent_policy_changes_each_get_their_own_version(app: TestApp) {
        let (_, dpo) = app.user_with_token("dpo@example.org", &[Role::Dpo]).await;
        let changes = (0..8).map(|n| {
            let (app, dpo) = (app.clone(), dpo.clone());
            async move {
                let body = json!({"policy": {"soft_opt_in": n % 2 == 0}, "note": format!("Change {n}")});
                let reply = app.put("/api/v1/policy", &dpo, body).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                reply.body["version"].as_i64().unwrap()
            }
        });
        let mut versions = join_all(changes).await;
        versions.sort_unstable();
        assert_eq!(versions, (1..=8).collect::<Vec<i64>>());
        assert_every_chain_verifies(&app).await;
    }
}
