use assent_server::store;
use assent_shared::api::{ConsentWordingPage, Contact, RecordedEvent, RecordedVia};
use assent_shared::domain::Role;
use assent_shared::ledger::EventKind;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::store_test;

async fn contact(app: &TestApp, token: &str) -> Contact {
    app.post(
        "/api/v1/contacts",
        token,
        json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane@example.com"]}),
    )
    .await
    .json()
}

fn consent(topic: &str, wording: &str) -> Value {
    json!({"at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "email", "topic": topic,
           "method": "web_form", "wording": wording,
           "source": {"form_url": "https://northfield.example/offers", "ip": "192.0.2.7", "user_agent": "Firefox"}})
}

store_test! {
    async fn consent_wordings_are_listed_newest_first_searched_and_paged(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let jane = contact(&app, &sales).await;
        let path = format!("/api/v1/contacts/{}/ledger", jane.id);
        let empty: ConsentWordingPage = app.get("/api/v1/consent-wordings", &sales).await.json();
        assert!(empty.items.is_empty() && empty.next_before.is_none());
        for (topic, words) in [
            ("boilers", "Email me BOILER offers."),
            ("news", "Send me your newsletter."),
            ("boilers", "Email me boiler offers."),
            ("cover", "Email me BOILER offers."),
        ] {
            let reply = app.post(&path, &sales, consent(topic, words)).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        }

        let all: ConsentWordingPage = app.get("/api/v1/consent-wordings", &sales).await.json();
        let versions: Vec<(i64, &str)> = all.items.iter().map(|w| (w.version, w.text.as_str())).collect();
        assert_eq!(
            versions,
            [(3, "Email me boiler offers."), (2, "Send me your newsletter."), (1, "Email me BOILER offers.")],
            "each text once, newest first"
        );
        assert!(all.next_before.is_none());

        let boiler: ConsentWordingPage = app.get("/api/v1/consent-wordings?q=Boiler", &sales).await.json();
        assert_eq!(boiler.items.iter().map(|w| w.version).collect::<Vec<_>>(), [3, 1]);
        let percent: ConsentWordingPage = app.get("/api/v1/consent-wordings?q=%25", &sales).await.json();
        assert!(percent.items.is_empty(), "a % in the search is a character, not a wildcard");

        let first: ConsentWordingPage = app.get("/api/v1/consent-wordings?limit=2", &sales).await.json();
        assert_eq!(first.items.iter().map(|w| w.version).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(first.next_before, Some(2));
        let second: ConsentWordingPage = app.get("/api/v1/consent-wordings?limit=2&before=2", &sales).await.json();
        assert_eq!(second.items.iter().map(|w| w.version).collect::<Vec<_>>(), [1]);
        assert!(second.next_before.is_none());

        assert_eq!(app.get("/api/v1/consent-wordings?limit=0", &sales).await.status, StatusCode::BAD_REQUEST);
        assert_eq!(app.get("/api/v1/consent-wordings?before=x", &sales).await.status, StatusCode::BAD_REQUEST);
        assert_eq!(app.get("/api/v1/consent-wordings", &admin).await.status, StatusCode::FORBIDDEN);

        // Case is folded alike on both stores, beyond ASCII too.
        let reply = app.post(&path, &sales, consent("boilers", "ÉCRIVEZ-MOI au sujet des chaudières.")).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let accented: ConsentWordingPage = app.get("/api/v1/consent-wordings?q=%C3%A9crivez", &sales).await.json();
        assert_eq!(accented.items.iter().map(|w| w.version).collect::<Vec<_>>(), [4]);
    }
}

store_test! {
    async fn a_salesperson_records_a_consent_with_its_wording_and_source(app: TestApp) {
        let (sales_user, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales).await;
        let path = format!("/api/v1/contacts/{}/ledger", jane.id);
        let first = app.post(&path, &sales, consent("boilers", "Email me boiler offers.")).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        let first: RecordedEvent = first.json();
        assert_eq!(first.seq, 1);
        assert_eq!(first.recorded_by, Some(sales_user.id));
        assert_eq!(first.recorded_by_name.as_deref(), Some(sales_user.display_name.as_str()));
        assert_eq!(first.recorded_via, RecordedVia::User);
        assert_eq!(first.wording_version, Some(1));
        assert_eq!(first.source.as_ref().unwrap().ip.as_deref(), Some("192.0.2.7"));
        assert!(matches!(&first.event, EventKind::ConsentGiven { wording, .. } if wording == "Email me boiler offers."));

        let same_words: RecordedEvent = app.post(&path, &sales, consent("boiler-cover", "Email me boiler offers.")).await.json();
        assert_eq!(same_words.wording_version, Some(1), "the same wording is one record");
        let new_words: RecordedEvent = app.post(&path, &sales, consent("boilers", "Email me boiler offers and news.")).await.json();
        assert_eq!(new_words.wording_version, Some(2));
        let opt_out = app.post(&path, &sales, json!({"at": "2025-06-01T10:00:00Z", "type": "opt_out", "channel": "any", "topic": "*"})).await;
        assert_eq!(opt_out.status, StatusCode::CREATED);

        let ledger: Vec<RecordedEvent> = app.get(&path, &sales).await.json();
        assert_eq!(ledger.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(ledger[0], first);
    }
}

store_test! {
    async fn only_the_person_confirms_and_only_the_data_protection_lead_erases(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let (_, dpo) = app.user_with_token("dpo@example.org", &[Role::Dpo]).await;
        let (_, admin) = app.user_with_token("admin@example.org", &[Role::Admin]).await;
        let jane = contact(&app, &sales).await;
        let path = format!("/api/v1/contacts/{}/ledger", jane.id);
        let confirm = json!({"at": "2025-05-10T14:10:00Z", "type": "consent_confirmed", "channel": "email", "topic": "boilers"});
        assert_eq!(app.post(&path, &sales, confirm.clone()).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.post(&path, &dpo, confirm).await.status, StatusCode::FORBIDDEN);
        let erase = json!({"at": "2025-06-30T09:00:00Z", "type": "erased"});
        assert_eq!(app.post(&path, &sales, erase.clone()).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.post(&path, &dpo, erase).await.status, StatusCode::CREATED);
        assert_eq!(app.get(&path, &admin).await.status, StatusCode::FORBIDDEN);
        let screen = json!({"at": "2025-06-01T10:00:00Z", "type": "tps_check", "registered": false});
        assert_eq!(app.post(&path, &admin, screen).await.status, StatusCode::FORBIDDEN);
    }
}

store_test! {
    async fn bad_events_are_refused_naming_the_field_and_nothing_is_recorded(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales).await;
        let path = format!("/api/v1/contacts/{}/ledger", jane.id);
        let reply = app.post(&path, &sales, json!({"at": "2999-01-01T00:00:00Z", "type": "consent_given", "channel": "email",
            "topic": " ", "method": "paper_form", "wording": ""})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.fields(), ["topic", "wording", "at"]);
        let reply = app.post(&path, &sales, json!({"at": "2025-01-01T00:00:00Z", "type": "opt_in", "channel": "email"})).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.code(), "invalid_body");
        let reply = app.post(&path, &sales, json!({"at": "2025-01-01T00:00:00Z", "type": "sale", "topic": "*", "refusal_offered": true})).await;
        assert_eq!(reply.fields(), ["topic"]);
        let ledger: Vec<RecordedEvent> = app.get(&path, &sales).await.json();
        assert!(ledger.is_empty());
        let missing = format!("/api/v1/contacts/{}/ledger", uuid::Uuid::now_v7());
        assert_eq!(app.post(&missing, &sales, consent("boilers", "Words.")).await.status, StatusCode::NOT_FOUND);
    }
}

store_test! {
    async fn an_import_is_checked_line_by_line_and_is_all_or_nothing(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("manager@example.org", &[Role::Manager]).await;
        let jane = contact(&app, &sales).await;
        let import = format!("/api/v1/contacts/{}/ledger/import", jane.id);
        let good = [
            r#"{"id":"e1","at":"2025-01-15T10:00:00Z","type":"consent_given","channel":"email","topic":"boilers","method":"paper_form","wording":"Email me."}"#,
            r#"{"id":"e2","at":"2025-04-02T21:10:00Z","type":"opt_out","channel":"email","topic":"*"}"#,
        ];
        let bad = format!("{}\n{{\"at\":\"2025-01-01T00:00:00Z\",\"type\":\"opt_in\"}}\n{}\n{{broken", good[0], good[1]);
        let send = |token: &str, body: String| {
            app.client.post(app.url(&import)).bearer_auth(token).header("content-type", "application/x-ndjson").body(body).send()
        };
        let response = send(&manager, bad).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = response.json().await.unwrap();
        let lines: Vec<&str> = body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(lines, ["line 2", "line 4"]);
        let ledger: Vec<RecordedEvent> = app.get(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales).await.json();
        assert!(ledger.is_empty(), "nothing of a rejected file is written");

        assert_eq!(send(&sales, good.join("\n")).await.unwrap().status(), StatusCode::FORBIDDEN);
        let response = send(&manager, good.join("\n")).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.json::<Value>().await.unwrap()["imported"], 2);

        let ledger: Vec<RecordedEvent> = app.get(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales).await.json();
        assert_eq!(ledger.iter().map(|e| e.external_id.as_deref()).collect::<Vec<_>>(), [Some("e1"), Some("e2")]);
        assert!(ledger.iter().all(|e| e.recorded_via == RecordedVia::Import));

        let export = app.client.get(app.url(&format!("/api/v1/contacts/{}/ledger/export", jane.id))).bearer_auth(&sales).send().await.unwrap();
        assert_eq!(export.headers()["content-type"], "application/x-ndjson");
        let text = export.text().await.unwrap();
        let exported: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(exported.len(), 2);
        assert_eq!(exported[0]["type"], "consent_given");
        assert_eq!(exported[0]["wording"], "Email me.");
        assert_eq!(exported[1]["id"], ledger[1].id.to_string());

        let nobody = format!("/api/v1/contacts/{}/ledger/import", uuid::Uuid::now_v7());
        let response = app.client.post(app.url(&nobody)).bearer_auth(&manager)
            .header("content-type", "application/x-ndjson").body(good.join("\n")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "an import into no contact");
    }
}

store_test! {
    async fn the_database_refuses_to_change_ledger_events_or_wordings(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales).await;
        app.post(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales, consent("boilers", "Email me.")).await;
        for sql in [
            "UPDATE ledger_events SET event_type = 'opt_out'",
            "DELETE FROM ledger_events",
            "UPDATE consent_wordings SET text = 'Something else'",
            "DELETE FROM consent_wordings",
        ] {
            let error = app.raw_sql(sql).await.expect_err(sql);
            assert!(error.to_string().contains("append-only"), "{sql}: {error}");
        }
        assert_eq!(store::ledger::verify(&app.db).await.unwrap(), Ok(1));
    }
}

store_test! {
    async fn verification_names_the_contact_and_event_of_an_altered_ledger(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales).await;
        let path = format!("/api/v1/contacts/{}/ledger", jane.id);
        app.post(&path, &sales, consent("boilers", "Email me.")).await;
        app.post(&path, &sales, json!({"at": "2025-06-01T10:00:00Z", "type": "opt_out", "channel": "email", "topic": "boilers"})).await;
        let disable = match app.backend {
            Backend::Sqlite => "DROP TRIGGER ledger_events_no_update",
            Backend::Postgres => "ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_update",
        };
        app.raw_sql(disable).await.unwrap();
        // Someone hides the opt-out by turning it into an enquiry.
        app.raw_sql("UPDATE ledger_events SET event = '{\"type\":\"enquiry\",\"topic\":\"boilers\"}' WHERE seq = 2").await.unwrap();
        let broken = store::ledger::verify(&app.db).await.unwrap().unwrap_err();
        assert_eq!(broken.contact_id, jane.id);
        assert_eq!(broken.link.seq, 2);
    }
}

store_test! {
    async fn the_evidence_pack_renders_as_html_and_as_a_pdf_that_poppler_reads(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales).await;
        app.post(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales, consent("boilers", "Email me boiler offers, <please>.")).await;
        app.post(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales,
            json!({"at": "2025-06-01T10:00:00Z", "type": "opt_out", "channel": "email", "topic": "boilers"})).await;
        let path = format!("/api/v1/contacts/{}/evidence-pack", jane.id);

        let html = app.client.get(app.url(&path)).bearer_auth(&sales).send().await.unwrap();
        assert_eq!(html.status(), StatusCode::OK);
        assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
        let html = html.text().await.unwrap();
        assert!(html.contains("<h1>Evidence pack: Jane Doe</h1>"));
        assert!(html.contains("Email me boiler offers, &lt;please&gt;."), "the wording, escaped");
        assert!(html.contains("IP address: 192.0.2.7"));
        assert!(html.contains("sales@example.org"), "who recorded it");
        assert!(html.contains("hash chain of this contact&#39;s 2 ledger events is intact"));
        assert!(html.contains("Opted out of marketing by email"));

        let pdf = app.client.get(app.url(&format!("{path}?format=pdf"))).bearer_auth(&sales).send().await.unwrap();
        assert_eq!(pdf.headers()["content-type"], "application/pdf");
        let bytes = pdf.bytes().await.unwrap();
        assert!(bytes.starts_with(b"%PDF-"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pack.pdf");
        std::fs::write(&file, &bytes).unwrap();
        let rendered = std::process::Command::new("pdftoppm")
            .args(["-png", "-r", "40"]).arg(&file).arg(dir.path().join("page"))
            .output()
            .expect("pdftoppm (Debian poppler-utils; scripts/test installs it)");
        assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
        let page = std::fs::read(dir.path().join("page-1.png")).expect("page 1 rendered");
        assert!(page.len() > 1000);
        let text = std::process::Command::new("pdftotext").arg(&file).arg("-").output().unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("Evidence pack: Jane Doe"), "{text}");
        assert!(text.contains("Email me boiler offers"));

        assert_eq!(app.get(&format!("{path}?format=docx"), &sales).await.status, StatusCode::BAD_REQUEST);
        let records = store::audit::for_object(&app.db, jane.id).await.unwrap();
        assert!(records.iter().any(|r| r.action == "evidence_pack_generated"));
    }
}

store_test! {
    async fn verification_catches_an_altered_decision_copy(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales).await;
        let path = format!("/api/v1/contacts/{}/ledger", jane.id);
        app.post(&path, &sales, consent("boilers", "Email me.")).await;
        app.post(&path, &sales, json!({"at": "2025-06-01T10:00:00Z", "type": "opt_out", "channel": "email", "topic": "boilers"})).await;
        assert_eq!(store::ledger::verify(&app.db).await.unwrap(), Ok(2));
        // Someone hides the opt-out from audience decisions by cutting it off the copy.
        let cut = match app.backend {
            Backend::Sqlite => "UPDATE ledger_heads SET decision_copy = substr(decision_copy, 1, length(decision_copy) - 20)",
            Backend::Postgres => "UPDATE ledger_heads SET decision_copy = substring(decision_copy from 1 for length(decision_copy) - 20)",
        };
        app.raw_sql(cut).await.unwrap();
        let broken = store::ledger::verify(&app.db).await.unwrap().unwrap_err();
        assert_eq!(broken.contact_id, jane.id);
        assert!(broken.link.problem.contains("decision copy"), "{}", broken.link.problem);
    }
}

store_test! {
    async fn a_missing_decision_copy_is_rebuilt_from_the_events(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales).await;
        let path = format!("/api/v1/contacts/{}/ledger", jane.id);
        app.post(&path, &sales, consent("boilers", "Email me.")).await;
        // As a ledger recorded before decision copies existed.
        app.raw_sql("UPDATE ledger_heads SET decision_copy = NULL").await.unwrap();
        assert!(store::ledger::verify(&app.db).await.unwrap().is_err());
        app.post(&path, &sales, json!({"at": "2025-06-01T10:00:00Z", "type": "opt_out", "channel": "email", "topic": "boilers"})).await;
        assert_eq!(store::ledger::verify(&app.db).await.unwrap(), Ok(2));
        app.raw_sql("UPDATE ledger_heads SET decision_copy = NULL").await.unwrap();
        assert_eq!(store::ledger::backfill_decision_copies(&app.db).await.unwrap(), 1);
        assert_eq!(store::ledger::verify(&app.db).await.unwrap(), Ok(2));
        let answer = app.post("/api/v1/decisions/audience", &sales, json!({"audience": "everyone",
            "message": {"kind": "marketing", "channel": "email", "topic": "boilers"}})).await;
        assert_eq!(answer.body["by_reason"][0]["key"], "opted_out");
    }
}

store_test! {
    async fn a_batch_append_continues_each_contacts_chain_in_order(app: TestApp) {
        let (user, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales).await;
        let john = contact(&app, &sales).await;
        let first = app.post(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales, consent("boilers", "Email me about boilers.")).await;
        assert_eq!(first.status, StatusCode::CREATED);

        let event = |json: Value| -> EventKind { serde_json::from_value(json).unwrap() };
        let same_wording = event(json!({"type": "consent_given", "channel": "email", "topic": "boilers", "method": "web_form", "wording": "Email me about boilers."}));
        let new_wording = event(json!({"type": "consent_given", "channel": "sms", "topic": "*", "method": "paper_form", "wording": "Text me."}));
        let opt_out = event(json!({"type": "opt_out", "channel": "email", "topic": "*"}));
        let at = |day: u32| chrono::NaiveDate::from_ymd_opt(2025, 6, day).unwrap().and_hms_opt(9, 0, 0).unwrap().and_utc();
        let entry = |contact_id, day, kind| store::ledger::NewEntry {
            contact_id,
            at: at(day),
            kind,
            external_id: None,
            source: None,
            recorded_by: assent_shared::api::ActorRef::Staff { id: user.id },
            imported: true,
        };
        let entries = [
            entry(john.id, 1, &new_wording),
            entry(jane.id, 2, &same_wording),
            entry(john.id, 3, &opt_out),
            entry(jane.id, 4, &new_wording),
        ];
        let mut tx = app.db.begin().await.unwrap();
        let record = assent_server::audit::AuditRecord::new(assent_server::audit::Action::LedgerImported, assent_server::audit::Outcome::Ok);
        let ids = store::ledger::lock(&mut tx, &record, &[john.id, jane.id]).await.unwrap()
            .append_many(&entries, assent_server::clock::now()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(ids.len(), 4);

        let db = &app.db;
        let ledger = |id| async move {
            let mut tx = db.begin().await.unwrap();
            let events = store::ledger::for_contact(&mut tx, id).await.unwrap();
            tx.commit().await.unwrap();
            events
        };
        let jane_events = ledger(jane.id).await;
        assert_eq!(jane_events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(jane_events[1].id, ids[1]);
        assert_eq!(jane_events[2].id, ids[3]);
        // The wording already on file is reused; the new one is numbered once for both contacts.
        assert_eq!(jane_events.iter().map(|e| e.wording_version).collect::<Vec<_>>(), [Some(1), Some(1), Some(2)]);
        let john_events = ledger(john.id).await;
        assert_eq!(john_events.iter().map(|e| (e.seq, e.id)).collect::<Vec<_>>(), [(1, ids[0]), (2, ids[2])]);
        assert_eq!(john_events[0].wording_version, Some(2));

        // Each chain links up and each decision copy matches its events.
        assert_eq!(store::ledger::verify_contact(&app.db, jane.id).await.unwrap(), Ok(3));
        assert_eq!(store::ledger::verify_contact(&app.db, john.id).await.unwrap(), Ok(2));
    }
}

store_test! {
    async fn an_evidence_pack_verifies_exactly_the_ledger_it_shows_while_events_are_recorded(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales).await;
        let path = format!("/api/v1/contacts/{}/ledger", jane.id);
        let writer = {
            let (app, sales, path) = (app.clone(), sales.clone(), path.clone());
            tokio::spawn(async move {
                for day in 1..=28 {
                    let event = json!({"at": format!("2025-02-{day:02}T09:00:00Z"), "type": "tps_check", "registered": day % 2 == 0});
                    let reply = app.post(&path, &sales, event).await;
                    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
                }
            })
        };
        let mut packs = 0;
        while !writer.is_finished() || packs == 0 {
            let pack = app.get(&format!("/api/v1/contacts/{}/evidence-pack", jane.id), &sales).await;
            assert_eq!(pack.status, StatusCode::OK);
            let html = pack.body.as_str().unwrap();
            assert!(html.contains("Verified: the hash chain"), "a pack reported its own ledger as broken");
            // The events shown are the events verified.
            let shown = html.matches("Number screened").count();
            assert!(html.contains(&format!(" {shown} ledger events is intact")), "pack {packs} shows {shown} events but verified another number");
            packs += 1;
        }
        writer.await.unwrap();
        assert!(packs > 1);
    }
}

store_test! {
    async fn an_audience_read_by_id_visits_only_the_listed_ledgers_in_id_order(app: TestApp) {
        let (_, sales) = app.user_with_token("sales@example.org", &[Role::Sales]).await;
        let mut with_ledgers = Vec::new();
        for _ in 0..4 {
            let someone = contact(&app, &sales).await;
            let path = format!("/api/v1/contacts/{}/ledger", someone.id);
            assert_eq!(app.post(&path, &sales, consent("boilers", "Email me about boilers.")).await.status, StatusCode::CREATED);
            with_ledgers.push(someone.id);
        }
        // Two of the four, among more ids than one chunk of the read holds (1,000), none of the
        // others with a ledger: only the two are visited, in id order.
        let mut wanted = vec![with_ledgers[0], with_ledgers[2]];
        let mut listed: Vec<uuid::Uuid> = (0..1_500).map(|_| uuid::Uuid::new_v4()).collect();
        listed.extend(&wanted);
        listed.sort();
        wanted.sort();
        let mut visited = Vec::new();
        store::ledger::visit(&app.db, store::ledger::Ledgers::Of(&listed), None, |id, ledger| {
            assert_eq!(ledger()?.seqs, [1], "each visited ledger decodes to its one event");
            visited.push(id);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(visited, wanted);
    }
}
