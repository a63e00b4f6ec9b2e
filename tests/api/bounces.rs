//! Hard bounces through a real relay (Postfix's smtp-sink refusing every mailbox): the address is
//! flagged on the contact, the next campaign uses the contact's next address, and a contact with
//! no address left is left out with the reason `address_bouncing`.

use assent_server::mail::sink::SmtpSink;
use assent_shared::domain::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::campaigns::{approved_offer, catalogue, consent, contact, sent};
use crate::helpers::{run_with, Backend, TestApp};

async fn outcomes(app: &TestApp, campaign: Uuid) -> Vec<(Uuid, String, String)> {
    let sql = format!(
        "SELECT contact_id, state, COALESCE(outcome, '') FROM outbox WHERE campaign_id = {} ORDER BY contact_id",
        match app.backend {
            Backend::Sqlite => format!("x'{}'", campaign.simple()),
            Backend::Postgres => format!("'{campaign}'"),
        }
    );
    match app.db.pool() {
        assent_server::store::Pool::Sqlite(pool) => {
            sqlx::query_as(&sql).fetch_all(pool).await.unwrap()
        }
        assent_server::store::Pool::Postgres(pool) => {
            sqlx::query_as(&sql).fetch_all(pool).await.unwrap()
        }
    }
}

async fn a_hard_bounce_flags_the_address_and_the_next_campaign_uses_the_next_one(backend: Backend) {
    let sink = SmtpSink::start(&["-f", "rcpt", "-B", "550 5.1.1 Recipient address rejected"]);
    let relay = format!("127.0.0.1:{}", sink.port);
    let settings = [
        ("ASSENT_MAIL_RELAY", relay.as_str()),
        ("ASSENT_MAIL_SECURITY", "plain"),
        ("ASSENT_MAIL_FROM", "news@harbour-heating.example"),
    ];
    run_with(backend, &settings, |app| async move {
        catalogue(&app).await;
        let (_, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("mia.manager@example.org", &[Role::Manager]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe",
            "emails": ["Jane.Doe@example.org", "jane@doe-family.example"]})).await;
        consent(&app, &sales, &jane).await;
        let ravi = contact(&app, &sales, json!({"first_name": "Ravi", "last_name": "Patel", "emails": ["ravi.patel@example.org"]})).await;
        consent(&app, &sales, &ravi).await;

        // Marketing goes out through the relay, which refuses both mailboxes for good.
        let (first, _) = approved_offer(&app, &sales, &manager, &[jane.id, ravi.id]).await;
        let progress = sent(&app, &sales, &first).await;
        assert_eq!(progress["failed"], 2, "{progress}");
        let mut expected = vec![
            (jane.id, "failed".to_owned(), "hard_bounce:550:5.1.1".to_owned()),
            (ravi.id, "failed".to_owned(), "hard_bounce:550:5.1.1".to_owned()),
        ];
        expected.sort();
        assert_eq!(outcomes(&app, first.id).await, expected);

        // The next campaign: Jane's next address, and Ravi, with none left, left out and why.
        let (second, preview) = approved_offer(&app, &sales, &manager, &[jane.id, ravi.id]).await;
        assert_eq!(preview.unsendable.len(), 1, "{:?}", preview.unsendable);
        assert_eq!(preview.unsendable[0].contact_id, ravi.id);
        assert_eq!(preview.unsendable[0].reason, "address_bouncing");
        sent(&app, &sales, &second).await;
        let mut expected = vec![
            (jane.id, "failed".to_owned(), "hard_bounce:550:5.1.1".to_owned()),
            (ravi.id, "not_sent".to_owned(), "address_bouncing".to_owned()),
        ];
        expected.sort();
        assert_eq!(outcomes(&app, second.id).await, expected);
        let sql = "SELECT contact_point FROM outbox WHERE state = 'failed' ORDER BY updated_at";
        let points: Vec<(String,)> = match app.db.pool() {
            assent_server::store::Pool::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            assent_server::store::Pool::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        };
        assert_eq!(points.last().map(|p| p.0.as_str()), Some("jane@doe-family.example"), "the second campaign used Jane's next address");
        let intact = assent_server::service::audit::verify(&app.db).await.unwrap();
        assert!(intact.intact(), "the trail, the ledgers and the communication log verify");
    })
    .await;
}

#[tokio::test]
async fn a_hard_bounce_flags_the_address_and_the_next_campaign_uses_the_next_one_on_sqlite() {
    a_hard_bounce_flags_the_address_and_the_next_campaign_uses_the_next_one(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_hard_bounce_flags_the_address_and_the_next_campaign_uses_the_next_one_on_postgres() {
    a_hard_bounce_flags_the_address_and_the_next_campaign_uses_the_next_one(Backend::Postgres)
        .await;
}

const SECRET: &str = "forwarded-by-postfix-7f3a9c";

/// A delivery status notification as Postfix writes one, to the tagged return path of `row`, for
/// the message `message_id`.
fn dsn(row: Uuid, message_id: &str, action: &str, status: &str) -> String {
    format!(
        "Return-Path: <>\r\nDelivered-To: bounces+{}@harbour-heating.example\r\n\
         From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <dsn.{}@mx.example.net>\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; jane.doe@example.org\r\nAction: {action}\r\nStatus: {status}\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{message_id}>\r\n\r\n--B--\r\n",
        row.simple(),
        Uuid::now_v7().simple()
    )
}

/// A complaint (ARF) about the message `message_id`, which it quotes whole.
fn complaint(message_id: &str) -> String {
    format!(
        "From: feedback@mailbox.example\r\nMessage-ID: <arf.{}@mailbox.example>\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n\
         --F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n\r\n\
         --F\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <{message_id}>\r\nSubject: Winter boiler check\r\n\r\nHello\r\n--F--\r\n",
        Uuid::now_v7().simple()
    )
}

async fn report(app: &TestApp, secret: Option<&str>, body: String) -> (StatusCode, String) {
    let mut request = app
        .client
        .post(app.public_url("/mail/reports"))
        .header("content-type", "message/rfc822")
        .body(body);
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The outbox row and Message-ID of the message `campaign` made for `contact`.
async fn made(app: &TestApp, campaign: Uuid, contact: Uuid) -> (Uuid, String) {
    let (row, message_id): (Uuid, String) = {
        let sql = "SELECT id, message_id FROM outbox WHERE campaign_id = $1 AND contact_id = $2";
        match app.db.pool() {
            assent_server::store::Pool::Sqlite(pool) => sqlx::query_as(sql)
                .bind(campaign)
                .bind(contact)
                .fetch_one(pool)
                .await
                .unwrap(),
            assent_server::store::Pool::Postgres(pool) => sqlx::query_as(sql)
                .bind(campaign)
                .bind(contact)
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    };
    (row, message_id)
}

async fn reports_flag_bounced_addresses_and_record_complaints_as_opt_outs(backend: Backend) {
    let settings = [
        ("ASSENT_MAIL_RETURN_PATH", "bounces@harbour-heating.example"),
        ("ASSENT_MAIL_REPORTS_SECRET", SECRET),
    ];
    run_with(backend, &settings, |app| async move {
        catalogue(&app).await;
        let (_, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let (_, manager) = app.user_with_token("mia.manager@example.org", &[Role::Manager]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]})).await;
        consent(&app, &sales, &jane).await;
        let ravi = contact(&app, &sales, json!({"first_name": "Ravi", "last_name": "Patel", "emails": ["ravi.patel@example.org"]})).await;
        consent(&app, &sales, &ravi).await;
        let (first, _) = approved_offer(&app, &sales, &manager, &[jane.id, ravi.id]).await;
        sent(&app, &sales, &first).await;
        let (jane_row, jane_message) = made(&app, first.id, jane.id).await;
        let (_, ravi_message) = made(&app, first.id, ravi.id).await;

        // Only the organisation's mail system, with the secret, is heard.
        let bounce = dsn(jane_row, &jane_message, "failed", "5.1.1");
        assert_eq!(report(&app, None, bounce.clone()).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(report(&app, Some("not-the-secret-at-all"), bounce.clone()).await.0, StatusCode::UNAUTHORIZED);
        // A delay is no bounce; a report about no message of ours is not found.
        let (status, page) = report(&app, Some(SECRET), dsn(jane_row, &jane_message, "delayed", "4.4.1")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("Nothing to do"), "{page}");
        let stranger = dsn(Uuid::now_v7(), "someone.else@elsewhere.example", "failed", "5.1.1");
        assert_eq!(report(&app, Some(SECRET), stranger).await.0, StatusCode::NOT_FOUND);

        // Jane's bounce, by the return path's tag: her address is flagged and her row failed.
        let (status, page) = report(&app, Some(SECRET), bounce).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("flagged as bouncing"), "{page}");
        let states = outcomes(&app, first.id).await;
        assert!(states.contains(&(jane.id, "failed".to_owned(), "bounce_report:5.1.1".to_owned())), "{states:?}");

        // Ravi's complaint, by the Message-ID it quotes: his opt-out from boiler emails.
        let (status, page) = report(&app, Some(SECRET), complaint(&ravi_message)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("recorded as the person&#39;s opt-out"), "{page}");
        let (status, page) = report(&app, Some(SECRET), complaint(&ravi_message)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("had already opted out"), "a second report records nothing more: {page}");
        let ledger: Vec<assent_shared::api::RecordedEvent> = app.get(&format!("/api/v1/contacts/{}/ledger", ravi.id), &sales).await.json();
        let last = ledger.last().unwrap();
        assert_eq!(serde_json::to_value(&last.event).unwrap(), json!({"type": "opt_out", "channel": "email", "topic": "boilers"}));
        assert_eq!(last.recorded_via.as_str(), "system");
        assert_eq!(ledger.iter().filter(|e| e.event.type_name() == "opt_out").count(), 1);

        // The next campaign leaves Jane out (no address left) and Ravi out (opted out).
        let (_, preview) = approved_offer(&app, &sales, &manager, &[jane.id, ravi.id]).await;
        assert_eq!(preview.decisions.allowed, 1, "Jane is still allowed, but cannot be reached");
        assert_eq!(preview.unsendable.len(), 1);
        assert_eq!((preview.unsendable[0].contact_id, preview.unsendable[0].reason.as_str()), (jane.id, "address_bouncing"));
        let reasons = serde_json::to_value(&preview.decisions.by_reason).unwrap();
        assert_eq!(reasons, json!([{"key": "opted_out", "contacts": 1}]));
        let intact = assent_server::service::audit::verify(&app.db).await.unwrap();
        assert!(intact.intact());
    })
    .await;
}

#[tokio::test]
async fn reports_flag_bounced_addresses_and_record_complaints_as_opt_outs_on_sqlite() {
    reports_flag_bounced_addresses_and_record_complaints_as_opt_outs(Backend::Sqlite).await;
}

#[tokio::test]
async fn reports_flag_bounced_addresses_and_record_complaints_as_opt_outs_on_postgres() {
    reports_flag_bounced_addresses_and_record_complaints_as_opt_outs(Backend::Postgres).await;
}
