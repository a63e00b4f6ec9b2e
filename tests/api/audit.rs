use assent_server::audit::{Action, ObjectKind, Outcome};
use assent_server::checkpoint::{CheckpointKey, Statement};
use assent_server::service;
use assent_server::store::{
    self,
    audit::{ChainName, Verification},
};
use assent_shared::domain::Role;
use serde_json::json;

use crate::helpers::{join_all, Backend, TestApp};
use crate::store_test;

async fn some_activity(app: &TestApp) {
    let (_, sales) = app
        .user_with_token("sales@example.org", &[Role::Sales])
        .await;
    let reply = app.post("/api/v1/contacts", &sales, json!({"first_name": "Zebedee", "last_name": "Quartermaine", "emails": ["zq@unique-marker.example"]})).await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    app.get(&format!("/api/v1/contacts/{id}"), &sales).await;
    app.get("/api/v1/users", &sales).await;
}

/// Lets the test alter what the database refuses to: the triggers that keep the trail
/// append-only (an attacker with the database file can drop them too).
async fn disable_append_only(app: &TestApp) {
    for table in ["audit_records", "audit_objects"] {
        let sql = match app.backend {
            Backend::Sqlite => {
                format!("DROP TRIGGER {table}_no_update; DROP TRIGGER {table}_no_delete")
            }
            Backend::Postgres => format!("ALTER TABLE {table} DISABLE TRIGGER USER"),
        };
        app.raw_sql(&sql).await.unwrap();
    }
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    match app.db.pool() {
        store::Pool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        store::Pool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

/// The chain and record `audit verify` names as the first broken link.
async fn broken_at(app: &TestApp) -> (ChainName, i64, String) {
    match store::audit::verify(&app.db).await.unwrap() {
        Verification::Broken { chain, link } => (chain, link.seq, link.problem),
        intact => panic!("tampering went unnoticed: {intact:?}"),
    }
}

store_test! {
    async fn audit_verify_passes_and_then_names_a_row_altered_in_sql(app: TestApp) {
        some_activity(&app).await;
        let Verification::Intact { records } = store::audit::verify(&app.db).await.unwrap() else {
            panic!("a fresh chain is intact");
        };
        assert!(records >= 5, "login, create, read, denial...: {records}");
        disable_append_only(&app).await;
        app.raw_sql("UPDATE audit_records SET outcome = 'ok' WHERE action = 'denied'").await.unwrap();
        let altered = scalar(&app, "SELECT seq FROM audit_records WHERE action = 'denied'").await;
        let held_by = chain_of(&app, "denied").await;
        let (chain, seq, problem) = broken_at(&app).await;
        assert!(problem.contains("altered"), "{problem}");
        assert_eq!((chain, seq), (ChainName::Chain(held_by), altered), "the first broken link is the altered record");
    }
}

store_test! {
    async fn audit_verify_names_a_record_whose_objects_were_removed(app: TestApp) {
        some_activity(&app).await;
        let (_, sales) = app.user_with_token("quill@example.org", &[Role::Sales]).await;
        app.get("/api/v1/contacts", &sales).await;
        disable_append_only(&app).await;
        // The list page's record names its contacts; one of them removed is named.
        let listed = scalar(&app, "SELECT seq FROM audit_records WHERE action = 'contact_listed'").await;
        app.raw_sql(&format!("DELETE FROM audit_objects WHERE chain_id = 1 AND seq = {listed}")).await.unwrap();
        let (_, seq, problem) = broken_at(&app).await;
        assert_eq!(seq, listed);
        assert!(problem.contains("names 1 objects but 0 are stored"), "{problem}");

    }
}

store_test! {
    async fn audit_verify_names_a_record_removed_from_the_middle(app: TestApp) {
        some_activity(&app).await;
        disable_append_only(&app).await;
        app.raw_sql("DELETE FROM audit_objects WHERE chain_id = 1 AND seq = 2").await.unwrap();
        app.raw_sql("DELETE FROM audit_records WHERE chain_id = 1 AND seq = 2").await.unwrap();
        let (_, seq, problem) = broken_at(&app).await;
        assert_eq!(seq, 2);
        assert!(problem.contains("missing"), "{problem}");
    }
}

store_test! {
    async fn the_database_refuses_to_update_or_delete_audit_records(app: TestApp) {
        some_activity(&app).await;
        for table in ["audit_records", "audit_objects"] {
            let update = app.raw_sql(&format!("UPDATE {table} SET seq = 99 WHERE seq = 1")).await;
            assert!(update.unwrap_err().to_string().contains("append-only"), "{table}");
            let delete = app.raw_sql(&format!("DELETE FROM {table} WHERE seq = 1")).await;
            assert!(delete.unwrap_err().to_string().contains("append-only"), "{table}");
            if app.backend == Backend::Postgres {
                assert!(app.raw_sql(&format!("TRUNCATE {table}")).await.is_err());
            }
        }
        // The chain written before format 2 is closed: nothing is appended to it.
        let appended = app.raw_sql("INSERT INTO audit_events (seq, at, action, outcome, prev_hash, hash) VALUES (1, '2026-01-01T00:00:00Z', 'logout', 'ok', 'x', 'y')").await;
        assert!(appended.unwrap_err().to_string().contains("closed"));
        assert!(matches!(store::audit::verify(&app.db).await.unwrap(), Verification::Intact { .. }));
    }
}

store_test! {
    async fn a_list_page_is_one_record_naming_every_contact_shown_and_each_finds_it(app: TestApp) {
        let (user, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        for n in 0..3 {
            let reply = app.post("/api/v1/contacts", &sales, json!({"first_name": "Page", "last_name": format!("Person {n}")})).await;
            assert_eq!(reply.status, reqwest::StatusCode::CREATED);
        }
        let before = scalar(&app, "SELECT COUNT(*) FROM audit_records").await;
        let page = app.get("/api/v1/contacts?limit=50", &sales).await;
        let shown: Vec<uuid::Uuid> = page.body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().parse().unwrap()).collect();
        assert_eq!(shown.len(), 3);
        assert_eq!(scalar(&app, "SELECT COUNT(*) FROM audit_records").await, before + 1, "one record for the page");
        for id in shown {
            let records = store::audit::for_object(&app.db, id).await.unwrap();
            let listed: Vec<_> = records.iter().filter(|r| r.action == "contact_listed").collect();
            assert_eq!(listed.len(), 1, "{records:?}");
            assert_eq!(listed[0].actor_id, Some(user.id));
            assert_eq!(listed[0].actor_kind.as_deref(), Some("staff"));
        }
    }
}

/// Every column of an audit record, as stored, with the objects it names.
#[derive(Debug, sqlx::FromRow)]
#[allow(dead_code)] // read through Debug, to be searched
struct Row {
    chain_id: i32,
    seq: i64,
    at: chrono::DateTime<chrono::Utc>,
    actor_kind: Option<String>,
    actor_id: Option<uuid::Uuid>,
    via_id: Option<uuid::Uuid>,
    action: String,
    outcome: String,
    object_count: i64,
    prev_hash: String,
    hash: String,
}

#[derive(Debug, sqlx::FromRow)]
#[allow(dead_code)] // read through Debug, to be searched
struct ObjectRow {
    chain_id: i32,
    seq: i64,
    position: i32,
    object_kind: String,
    object_id: uuid::Uuid,
}

store_test! {
    async fn audit_records_hold_no_personal_data(app: TestApp) {
        // Personal data goes in through every door a request has: a contact's fields, a search,
        // a device's name, a failed login for an unknown address, a saved filter, a consent.
        some_activity(&app).await;
        let (_, sales) = app.user_with_token("quill@example.org", &[Role::Sales]).await;
        app.get("/api/v1/contacts?q=Quartermaine", &sales).await;
        app.login_as("zq.nobody@unique-marker.example", "Zebedee-password-1", "Zebedee's laptop").await;
        app.token("quill@example.org", "Quartermaine's tablet").await;
        let filter = app.post("/api/v1/filters", &sales, json!({"name": "Zebedee's friends", "search": "Quartermaine"})).await;
        assert_eq!(filter.status, reqwest::StatusCode::CREATED, "{}", filter.body);
        app.get("/api/v1/filters", &sales).await;
        let found = app.get("/api/v1/contacts?q=Quartermaine", &sales).await;
        let id = found.body["items"][0]["id"].as_str().unwrap().to_owned();
        let consent = json!({"at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "email", "topic": "boilers",
                             "method": "web_form", "wording": "Zebedee agrees to boiler emails."});
        app.post(&format!("/api/v1/contacts/{id}/ledger"), &sales, consent).await;

        let sql = "SELECT chain_id, seq, at, actor_kind, actor_id, via_id, action, outcome, object_count, prev_hash, hash FROM audit_records ORDER BY chain_id, seq";
        let rows: Vec<Row> = match app.db.pool() {
            store::Pool::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            store::Pool::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        };
        let sql = "SELECT chain_id, seq, position, object_kind, object_id FROM audit_objects ORDER BY chain_id, seq, position";
        let objects: Vec<ObjectRow> = match app.db.pool() {
            store::Pool::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            store::Pool::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        };
        assert!(rows.len() >= 14, "{} records", rows.len());
        // Every text a record holds is one of a closed set of names: nothing else can be written.
        for row in &rows {
            assert!(row.action.parse::<Action>().is_ok(), "{row:?}");
            assert!(row.outcome.parse::<Outcome>().is_ok(), "{row:?}");
            assert!(row.actor_kind.as_deref().is_none_or(|k| ["staff", "data_subject", "system"].contains(&k)), "{row:?}");
        }
        for object in &objects {
            assert!(object.object_kind.parse::<ObjectKind>().is_ok(), "{object:?}");
        }
        // And nothing that went in is in any column of any record.
        let dump = format!("{rows:?}{objects:?}").to_lowercase();
        for marker in ["zebedee", "quartermaine", "unique-marker", "sales@example.org", "quill@example.org", "boiler"] {
            assert!(!dump.contains(marker), "{marker} found in the audit trail");
        }
    }
}

// Checkpoints: each tampering an attacker with the database could do is caught by `audit
// verify --checkpoint`, either by the chains' own links or by the checkpoint, on both stores.

/// A checkpoint of the database as it stands, signed and read back as `audit verify` reads it.
async fn checkpoint(app: &TestApp) -> Statement {
    let key = CheckpointKey::generate();
    let line = service::audit::checkpoint(&app.db, &key, assent_server::clock::now())
        .await
        .unwrap();
    key.public().open(&line).unwrap()
}

/// Everything `audit verify --checkpoint` reports: the first break of the trail's and of the
/// ledgers' walks, and every departure from the checkpoint.
async fn findings(app: &TestApp, checkpoint: &Statement) -> Vec<String> {
    let integrity = service::audit::verify(&app.db).await.unwrap();
    let mut found = Vec::new();
    if let Verification::Broken { chain, link } = integrity.audit {
        found.push(format!(
            "{chain} broken at record {}: {}",
            link.seq, link.problem
        ));
    }
    if let Err(broken) = integrity.ledgers {
        found.push(format!(
            "ledger broken at event {}: {}",
            broken.link.seq, broken.link.problem
        ));
    }
    let departures = service::audit::departures(&app.db, checkpoint)
        .await
        .unwrap();
    found.extend(departures.iter().map(ToString::to_string));
    found
}

/// Activity that writes records and two consent events for one contact, then one more record so
/// that the checkpoint covers the events.
async fn activity_with_a_ledger(app: &TestApp) -> String {
    let (_, sales) = app
        .user_with_token(
            &format!("{}@example.org", uuid::Uuid::new_v4()),
            &[Role::Sales],
        )
        .await;
    let reply = app.post("/api/v1/contacts", &sales, json!({"first_name": "Priya", "last_name": "Raman", "emails": ["priya.raman@example.org"]})).await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let ledger = format!("/api/v1/contacts/{id}/ledger");
    app.post(&ledger, &sales, json!({"at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "email", "topic": "newsletter", "method": "web_form", "wording": "Email me the newsletter."})).await;
    app.post(&ledger, &sales, json!({"at": "2025-06-01T10:00:00Z", "type": "opt_out", "channel": "email", "topic": "newsletter"})).await;
    app.get(&format!("/api/v1/contacts/{id}"), &sales).await;
    app.get("/api/v1/users", &sales).await;
    id
}

/// The chain that holds the records of `action` (reads and refusals go through the group commit,
/// whose chain on PostgreSQL is taken from the end; writes take the first free one).
async fn chain_of(app: &TestApp, action: &str) -> i32 {
    let sql = format!(
        "SELECT CAST(MIN(chain_id) AS BIGINT) FROM audit_records WHERE action = '{action}'"
    );
    scalar(app, &sql).await as i32
}

/// The checkpoint's head of chain 1, where the writes of these tests are recorded.
fn chain_1(checkpoint: &Statement) -> i64 {
    checkpoint.audit.seq_of(1)
}

async fn disable_ledger_append_only(app: &TestApp) {
    let sql = match app.backend {
        Backend::Sqlite => {
            "DROP TRIGGER ledger_events_no_update; DROP TRIGGER ledger_events_no_delete"
        }
        Backend::Postgres => "ALTER TABLE ledger_events DISABLE TRIGGER USER",
    };
    app.raw_sql(sql).await.unwrap();
}

store_test! {
    async fn a_checkpoint_is_extended_by_later_activity_and_covers_the_ledgers(app: TestApp) {
        activity_with_a_ledger(&app).await;
        let taken = checkpoint(&app).await;
        assert!(chain_1(&taken) >= 5, "{taken:?}");
        assert_eq!((taken.ledgers.ledgers, taken.ledgers.events), (1, 2), "both events are covered");
        // More of everything afterwards: the database still extends the checkpoint.
        activity_with_a_ledger(&app).await;
        some_activity(&app).await;
        assert_eq!(findings(&app, &taken).await, Vec::<String>::new());
        assert_eq!(checkpoint(&app).await.ledgers.events, 4);
    }
}

store_test! {
    async fn against_a_checkpoint_a_flipped_byte_is_caught(app: TestApp) {
        activity_with_a_ledger(&app).await;
        let taken = checkpoint(&app).await;
        disable_append_only(&app).await;
        let read = scalar(&app, "SELECT MIN(seq) FROM audit_records WHERE action = 'contact_read'").await;
        assert_eq!(app.raw_sql("UPDATE audit_records SET action = 'contact_reae' WHERE action = 'contact_read'").await.unwrap(), 1);
        let held_by = chain_of(&app, "contact_reae").await;
        let found = findings(&app, &taken).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(&format!("chain {held_by} broken at record {read}: its contents do not match")), "{found:?}");
    }
}

store_test! {
    async fn against_a_checkpoint_a_deleted_row_is_caught(app: TestApp) {
        activity_with_a_ledger(&app).await;
        let taken = checkpoint(&app).await;
        disable_append_only(&app).await;
        app.raw_sql("DELETE FROM audit_objects WHERE chain_id = 1 AND seq = 3").await.unwrap();
        app.raw_sql("DELETE FROM audit_records WHERE chain_id = 1 AND seq = 3").await.unwrap();
        let found = findings(&app, &taken).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("chain 1 broken at record 3: the record is missing"), "{found:?}");
    }
}

store_test! {
    async fn against_a_checkpoint_two_swapped_rows_are_caught(app: TestApp) {
        activity_with_a_ledger(&app).await;
        let taken = checkpoint(&app).await;
        disable_append_only(&app).await;
        // Records 2 and 3 trade places (their numbers stay, as the keys that objects point at).
        let columns = "at, actor_kind, actor_id, via_id, action, outcome, object_count, prev_hash, hash";
        app.raw_sql("CREATE TABLE swapped AS SELECT * FROM audit_records WHERE chain_id = 1 AND seq IN (2, 3)").await.unwrap();
        let swapped = app.raw_sql(&format!("UPDATE audit_records SET ({columns}) = \
             (SELECT {columns} FROM swapped s WHERE s.seq = 5 - audit_records.seq) WHERE chain_id = 1 AND seq IN (2, 3)")).await.unwrap();
        assert_eq!(swapped, 2);
        app.raw_sql("DROP TABLE swapped").await.unwrap();
        let found = findings(&app, &taken).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("chain 1 broken at record 2: its link to the previous record"), "{found:?}");
    }
}

store_test! {
    async fn against_a_checkpoint_an_edited_ledger_event_is_caught(app: TestApp) {
        activity_with_a_ledger(&app).await;
        let taken = checkpoint(&app).await;
        disable_ledger_append_only(&app).await;
        // The opt-out becomes an enquiry.
        app.raw_sql("UPDATE ledger_events SET event = '{\"type\":\"enquiry\",\"topic\":\"newsletter\"}' WHERE seq = 2").await.unwrap();
        let found = findings(&app, &taken).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("ledger broken at event 2"), "{found:?}");
    }
}

store_test! {
    async fn against_a_checkpoint_records_cut_off_the_end_with_the_head_rewritten_are_caught(app: TestApp) {
        activity_with_a_ledger(&app).await;
        let taken = checkpoint(&app).await;
        let held = chain_1(&taken);
        some_activity(&app).await;
        // The last records before the checkpoint and everything since go, and the head is set to
        // the new last record: every link that is left holds.
        let kept = held - 2;
        disable_append_only(&app).await;
        app.raw_sql(&format!("DELETE FROM audit_objects WHERE chain_id = 1 AND seq > {kept}")).await.unwrap();
        app.raw_sql(&format!("DELETE FROM audit_records WHERE chain_id = 1 AND seq > {kept}")).await.unwrap();
        app.raw_sql(&format!("UPDATE audit_chains SET last_seq = {kept}, last_hash = \
             (SELECT hash FROM audit_records WHERE chain_id = 1 AND seq = {kept}) WHERE id = 1")).await.unwrap();
        assert!(matches!(store::audit::verify(&app.db).await.unwrap(), Verification::Intact { .. }),
            "without the checkpoint nothing shows");
        let found = findings(&app, &taken).await;
        assert_eq!(found, vec![format!(
            "chain 1: records {} to {held} are missing (the checkpoint holds {held} records; the chain and its head end at {kept})",
            kept + 1
        )]);
    }
}

store_test! {
    async fn against_a_checkpoint_a_chain_recomputed_from_an_altered_record_is_caught(app: TestApp) {
        some_activity(&app).await;
        activity_with_a_ledger(&app).await;
        let taken = checkpoint(&app).await;
        let chain = chain_of(&app, "denied").await;
        let held = taken.audit.seq_of(chain);
        // The attacker hides a refusal and recomputes every hash from it on, and the head.
        let denied = scalar(&app, &format!("SELECT MIN(seq) FROM audit_records WHERE action = 'denied' AND chain_id = {chain}")).await;
        assert!(denied < held);
        disable_append_only(&app).await;
        let mut records = store::audit::records(&app.db, chain, denied - 1, 1_000_000).await.unwrap();
        records[0].outcome = "ok".into();
        let mut prev = records[0].prev_hash.clone();
        for record in &mut records {
            record.prev_hash = prev;
            record.hash = record.contents_hash();
            prev = record.hash.clone();
            app.raw_sql(&format!(
                "UPDATE audit_records SET outcome = '{}', prev_hash = '{}', hash = '{}' WHERE chain_id = {chain} AND seq = {}",
                record.outcome, record.prev_hash, record.hash, record.seq
            )).await.unwrap();
        }
        app.raw_sql(&format!("UPDATE audit_chains SET last_hash = '{prev}' WHERE id = {chain}")).await.unwrap();
        assert!(matches!(store::audit::verify(&app.db).await.unwrap(), Verification::Intact { .. }),
            "without the checkpoint the rewrite holds together");
        let found = findings(&app, &taken).await;
        assert_eq!(found, vec![format!(
            "chain {chain} was rewritten: record {held} is not the record the checkpoint holds (its hash differs), so the chain was altered at or before record {held} and its hashes recomputed"
        )]);
    }
}

store_test! {
    async fn against_a_checkpoint_a_ledger_cut_short_with_its_head_rewritten_is_caught(app: TestApp) {
        activity_with_a_ledger(&app).await;
        let taken = checkpoint(&app).await;
        disable_ledger_append_only(&app).await;
        // The opt-out goes, and the ledger's head is set to the consent before it.
        app.raw_sql("DELETE FROM ledger_events WHERE seq = 2").await.unwrap();
        app.raw_sql("UPDATE ledger_heads SET last_seq = 1, decision_copy = NULL, last_hash = \
             (SELECT hash FROM ledger_events e WHERE e.contact_id = ledger_heads.contact_id AND e.seq = 1)").await.unwrap();
        // The decision copy kept beside the head is rebuilt from the events that are left, with
        // Assent's own code.
        store::ledger::backfill_decision_copies(&app.db).await.unwrap();
        assert_eq!(store::ledger::verify(&app.db).await.unwrap(), Ok(1), "without the checkpoint nothing shows");
        let found = findings(&app, &taken).await;
        assert_eq!(found, vec![
            "the consent ledgers lost events: at the checkpoint 1 ledgers held 2 events, the same ledgers hold 1 events in 1 ledgers now".to_owned()
        ]);
    }
}

// The records of reads go through the group commit: many concurrent reads, one commit for
// those that arrive together, and no data returned before (or without) its record.

store_test! {
    async fn concurrent_reads_are_each_recorded_before_their_data_is_returned(app: TestApp) {
        let (_, sales) = app.user_with_token("reader@example.org", &[Role::Sales]).await;
        let reply = app.post("/api/v1/contacts", &sales, json!({"first_name": "Tomasz", "last_name": "Nowak"})).await;
        let id = reply.body["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/contacts/{id}");
        let replies = join_all((0..40).map(|_| {
            let (app, sales, path) = (app.clone(), sales.clone(), path.clone());
            async move { app.get(&path, &sales).await }
        }))
        .await;
        assert!(replies.iter().all(|r| r.status == 200), "every read is answered");
        let reads = scalar(&app, "SELECT COUNT(*) FROM audit_records WHERE action = 'contact_read'").await;
        assert_eq!(reads, 40, "one record for each read answered");
        assert!(matches!(store::audit::verify(&app.db).await.unwrap(), Verification::Intact { .. }));
        let id: uuid::Uuid = id.parse().unwrap();
        let found = store::audit::for_object(&app.db, id).await.unwrap();
        assert_eq!(found.iter().filter(|a| a.action == "contact_read").count(), 40);
    }
}

// Two replicas on one PostgreSQL database: their group commits append to the same chain, each
// in one statement while the chain stands where it left it, and through a transaction that
// takes the chain when the other moved it. Every record is kept and the chain stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_group_commits_share_their_chain_and_keep_it_whole() {
    crate::helpers::run(Backend::Postgres, two_replicas_on_one_database).await;
}

async fn two_replicas_on_one_database(app: TestApp) {
    let url = assent_server::config::Secret::new(app.pg_url().expect("a PostgreSQL test"));
    let location = store::DatabaseLocation::Postgres(url);
    // Connecting (its migrations) is not a Send future: run here, off the async context.
    let other = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(store::Db::connect(&location))
    })
    .unwrap();
    let before = scalar(&app, "SELECT COUNT(*) FROM audit_records").await;
    // Boxed as Send here, with their lifetimes known, rather than inferred through `run`.
    type Write =
        std::pin::Pin<Box<dyn std::future::Future<Output = store::StoreResult<()>> + Send>>;
    let writes: Vec<Write> = (0..200_u128)
        .map(|i| {
            let db = if i % 2 == 0 {
                app.db.clone()
            } else {
                other.clone()
            };
            let record = assent_server::audit::AuditRecord::new(Action::ContactRead, Outcome::Ok)
                .on(ObjectKind::Contact, uuid::Uuid::from_u128(i + 1));
            Box::pin(async move { store::audit::record_read(&db, record).await }) as Write
        })
        .collect();
    for written in join_all(writes).await {
        written.expect("every record is written");
    }
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM audit_records").await,
        before + 200,
        "every record, once"
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM audit_objects WHERE object_kind = 'contact'"
        )
        .await,
        200
    );
    assert!(matches!(
        store::audit::verify(&app.db).await.unwrap(),
        Verification::Intact { .. }
    ));
    other.close().await;
}

/// Makes the trail refuse every new record, as a full disk or a failing database would.
async fn refuse_new_records(app: &TestApp) {
    let refuse = match app.backend {
        Backend::Sqlite => vec!["CREATE TRIGGER audit_records_full BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'the trail is full'); END"],
        Backend::Postgres => vec![
            "CREATE FUNCTION trail_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the trail is full'; END $$",
            "CREATE TRIGGER audit_records_full BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION trail_full()",
        ],
    };
    for sql in refuse {
        app.raw_sql(sql).await.unwrap();
    }
}

store_test! {
    async fn a_read_whose_record_cannot_be_written_returns_no_data(app: TestApp) {
        let (_, sales) = app.user_with_token("reader@example.org", &[Role::Sales]).await;
        let reply = app.post("/api/v1/contacts", &sales, json!({"first_name": "Tomasz", "last_name": "Nowak"})).await;
        let id = reply.body["id"].as_str().unwrap().to_owned();
        refuse_new_records(&app).await;
        for path in [format!("/api/v1/contacts/{id}"), "/api/v1/contacts".to_owned()] {
            let reply = app.get(&path, &sales).await;
            assert_eq!(reply.status, 500, "{path}");
            assert!(!reply.body.to_string().contains("Tomasz"), "{path}: no data without its record: {}", reply.body);
        }
    }
}

/// How many records of `action` name `actor` as who acted (and `object`, when given).
pub async fn records_of(
    app: &TestApp,
    action: &str,
    actor: uuid::Uuid,
    object: Option<uuid::Uuid>,
) -> i64 {
    let records = match object {
        Some(object) => store::audit::for_object(&app.db, object).await.unwrap(),
        None => {
            let sql = "SELECT COUNT(*) FROM audit_records WHERE action = $1 AND actor_id = $2";
            return match app.db.pool() {
                store::Pool::Sqlite(pool) => sqlx::query_scalar(sql)
                    .bind(action)
                    .bind(actor)
                    .fetch_one(pool)
                    .await
                    .unwrap(),
                store::Pool::Postgres(pool) => sqlx::query_scalar(sql)
                    .bind(action)
                    .bind(actor)
                    .fetch_one(pool)
                    .await
                    .unwrap(),
            };
        }
    };
    records
        .iter()
        .filter(|r| r.action == action && r.actor_id == Some(actor))
        .count() as i64
}

store_test! {
    async fn every_read_of_personal_data_is_recorded_and_shows_nothing_when_its_record_cannot_be_written(app: TestApp) {
        let (reader, admin) = app.user_with_token("admin@example.org", &[Role::Admin, Role::Sales]).await;
        let (recorder, sales) = app.user_with_token("sam.patel@example.org", &[Role::Sales]).await;
        let reply = app.post("/api/v1/contacts", &sales, json!({"first_name": "Tomasz", "last_name": "Nowak"})).await;
        let id: uuid::Uuid = reply.body["id"].as_str().unwrap().parse().unwrap();
        let renamed = app.put(&format!("/api/v1/contacts/{id}"), &sales, json!({"first_name": "Tomek", "last_name": "Nowak", "version": 1})).await;
        assert_eq!(renamed.status, 200, "{}", renamed.body);
        let event = json!({"at": "2025-05-10T14:03:00Z", "type": "opt_out", "channel": "email", "topic": "*"});
        assert_eq!(app.post(&format!("/api/v1/contacts/{id}/ledger"), &sales, event).await.status, 201);
        let reads = [
            (format!("/api/v1/contacts/{id}/history"), "contact_history_read", Some(id), "Tomek"),
            (format!("/api/v1/contacts/{id}/communications"), "communications_read", Some(id), "[]"),
            ("/api/v1/users".to_owned(), "users_listed", None, "sam.patel@"),
            (format!("/api/v1/users/{}", recorder.id), "user_read", Some(recorder.id), "sam.patel@"),
            ("/api/v1/sessions".to_owned(), "sessions_listed", None, "test device"),
            ("/api/v1/filters".to_owned(), "filters_listed", None, "[]"),
            (format!("/api/v1/contacts/{id}/evidence-pack"), "evidence_pack_generated", Some(id), "Tomek"),
        ];
        for (path, action, object, shown) in &reads {
            let before = records_of(&app, action, reader.id, *object).await;
            let reply = app.get(path, &admin).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            assert!(reply.body.to_string().contains(shown), "{path} shows {shown}: {}", reply.body);
            assert_eq!(records_of(&app, action, reader.id, *object).await, before + 1, "{path}: one {action} record");
        }
        // The pack names who recorded the ledger's events: that is a read of the recorder too.
        let before = records_of(&app, "user_read", reader.id, Some(recorder.id)).await;
        let pack = app.get(&format!("/api/v1/contacts/{id}/evidence-pack"), &admin).await;
        assert!(pack.body.to_string().contains("sam.patel@example.org"), "the pack names the recorder");
        assert_eq!(records_of(&app, "user_read", reader.id, Some(recorder.id)).await, before + 1);

        // No read answers with its data once its record cannot be written.
        refuse_new_records(&app).await;
        for (path, _, _, shown) in &reads {
            let reply = app.get(path, &admin).await;
            assert_eq!(reply.status, 500, "{path}");
            assert!(!reply.body.to_string().contains(shown), "{path}: no data without its record: {}", reply.body);
        }
    }
}

store_test! {
    async fn a_tally_that_cannot_be_written_is_kept_and_written_with_the_next(app: TestApp) {
        let one_by_one = store::audit::REFUSALS_ONE_BY_ONE as i64;
        for _ in 0..(one_by_one + 5) {
            assert_eq!(app.get("/api/v1/contacts", "not-a-token-anyone-issued").await.status, 401);
        }
        refuse_new_records(&app).await;
        assert!(store::audit::close_refusal_windows(&app.db).await.is_err(), "the trail refuses the tally");
        let allow = match app.backend {
            Backend::Sqlite => "DROP TRIGGER audit_records_full",
            Backend::Postgres => "DROP TRIGGER audit_records_full ON audit_records",
        };
        app.raw_sql(allow).await.unwrap();
        // A second flood in a new window, then both tallies in one write.
        for _ in 0..(one_by_one + 3) {
            assert_eq!(app.get("/api/v1/contacts", "not-a-token-anyone-issued").await.status, 401);
        }
        store::audit::close_refusal_windows(&app.db).await.unwrap();
        let tallies = "SELECT CAST(COALESCE(SUM(tally), 0) AS BIGINT) FROM audit_records WHERE tally IS NOT NULL";
        assert_eq!(scalar(&app, tallies).await, 5 + 3, "the failed tally was kept, not lost");
        assert!(matches!(store::audit::verify(&app.db).await.unwrap(), Verification::Intact { .. }));
    }
}

store_test! {
    async fn a_flood_of_bad_tokens_is_recorded_one_by_one_up_to_a_limit_and_then_tallied(app: TestApp) {
        let one_by_one = store::audit::REFUSALS_ONE_BY_ONE as i64;
        for _ in 0..30 {
            assert_eq!(app.get("/api/v1/contacts", "not-a-token-anyone-issued").await.status, 401);
        }
        let refusals = "SELECT COUNT(*) FROM audit_records WHERE action = 'unauthenticated'";
        assert_eq!(scalar(&app, refusals).await, one_by_one, "the first of the window, one by one");
        // The window closes (the server does it within seconds of the window's end, and on stopping).
        store::audit::close_refusal_windows(&app.db).await.unwrap();
        assert_eq!(scalar(&app, refusals).await, one_by_one + 1, "and one record for the rest");
        let tally = scalar(&app, "SELECT tally FROM audit_records WHERE tally IS NOT NULL").await;
        assert_eq!(tally, 30 - one_by_one);
        assert!(matches!(store::audit::verify(&app.db).await.unwrap(), Verification::Intact { .. }));
        // The tally is part of the record's hash.
        disable_append_only(&app).await;
        let at = scalar(&app, "SELECT seq FROM audit_records WHERE tally IS NOT NULL").await;
        app.raw_sql("UPDATE audit_records SET tally = 1 WHERE tally IS NOT NULL").await.unwrap();
        let (_, seq, problem) = broken_at(&app).await;
        assert_eq!(seq, at);
        assert!(problem.contains("altered"), "{problem}");
    }
}
