//! Text messages through the SMS gateway's double (the Twilio Messages API over HTTPS on
//! loopback): a marketing SMS campaign reaches exactly the allowed recipients, a number the
//! gateway calls unreachable is flagged, a signed STOP reply opts the person out of marketing by
//! text, and an unsigned one changes nothing. Without a gateway, text messages are kept in the
//! spool and the reply address is not served.

use assent_server::sms::double::{Fault, GatewayDouble};
use assent_shared::api::{Campaign, CampaignPreview, Contact};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::campaigns::{approved, catalogue_and_staff, contact, progress_when_done, step};
use crate::helpers::{run_with, Backend, TestApp};

const JANE: &str = "+447400123456";
const BOB: &str = "+447400123457";
const RAVI: &str = "+447400123458";
const MIA: &str = "+447400123459";

async fn sms_consent(app: &TestApp, token: &str, contact: &Contact) {
    let reply = app
        .post(
            &format!("/api/v1/contacts/{}/ledger", contact.id),
            token,
            json!({
        "at": "2025-05-10T14:03:00Z", "type": "consent_given", "channel": "sms", "topic": "boilers",
        "method": "paper_form", "wording": "Text me boiler offers."}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

fn text_offer(ids: &[uuid::Uuid], body: &str) -> Value {
    json!({
        "name": "Boiler check by text",
        "message": {"kind": "marketing", "channel": "sms", "topic": "boilers"},
        "body": body,
        "audience": {"contact_ids": ids}
    })
}

/// The catalogue, a salesperson and a manager (their tokens), and Jane, who agreed to boiler
/// offers by text.
async fn sales_manager_and_jane(app: &TestApp) -> (String, String, Contact) {
    let (sales, manager) = catalogue_and_staff(app).await;
    let jane = contact(
        app,
        &sales,
        json!({"first_name": "Jane", "last_name": "Doe", "phones": [JANE]}),
    )
    .await;
    sms_consent(app, &sales, &jane).await;
    (sales, manager, jane)
}

/// Posts a reply as the gateway forwards it, with `signature`.
async fn post_reply(
    app: &TestApp,
    fields: &[(String, String)],
    signature: &str,
) -> (StatusCode, String) {
    let reply = app
        .client
        .post(app.public_url("/sms/inbound"))
        .header("X-Twilio-Signature", signature)
        .form(fields)
        .send()
        .await
        .expect("the public listener answers");
    (reply.status(), reply.text().await.unwrap_or_default())
}

async fn decision(app: &TestApp, token: &str, contact: &Contact) -> Value {
    let reply = app
        .post(
            "/api/v1/decisions",
            token,
            json!({"contact_id": contact.id,
        "message": {"kind": "marketing", "channel": "sms", "topic": "boilers"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn through_the_gateway_and_stop_replies(backend: Backend) {
    let gateway = std::sync::Arc::new(GatewayDouble::start().await);
    gateway.fail(RAVI, Fault::Status(400, Some(21211)));
    gateway.fail(MIA, Fault::Status(400, Some(21610)));
    let (url, ca) = (gateway.messages_url(), gateway.ca.display().to_string());
    let (account, token) = (gateway.account.clone(), gateway.token.clone());
    let settings = [
        ("ASSENT_SMS_GATEWAY_URL", url.as_str()),
        ("ASSENT_SMS_ACCOUNT", account.as_str()),
        ("ASSENT_SMS_AUTH_TOKEN", token.as_str()),
        ("ASSENT_SMS_GATEWAY_CA", ca.as_str()),
        ("ASSENT_SMS_FROM", "+447400000001"),
    ];
    let double = gateway.clone();
    run_with(backend, &settings, |app| async move {
        let (sales, manager, jane) = sales_manager_and_jane(&app).await;
        let bob = contact(
            &app,
            &sales,
            json!({"first_name": "Bob", "last_name": "Roe", "phones": [BOB]}),
        )
        .await;
        let ravi = contact(
            &app,
            &sales,
            json!({"first_name": "Ravi", "last_name": "Patel", "phones": [RAVI]}),
        )
        .await;
        sms_consent(&app, &sales, &ravi).await;
        let mia = contact(
            &app,
            &sales,
            json!({"first_name": "Mia", "last_name": "Wong", "phones": [MIA]}),
        )
        .await;
        sms_consent(&app, &sales, &mia).await;

        let body =
            "Hi {{first_name}}, boiler checks are half price this month. Reply STOP to opt out";
        let (campaign, _) = approved(
            &app,
            &sales,
            &manager,
            text_offer(&[jane.id, bob.id, ravi.id, mia.id], body),
        )
        .await;
        let (status, reply) = step(&app, &sales, &campaign, "send", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        let progress = progress_when_done(&app, &sales, campaign.id).await;
        assert_eq!(
            (
                progress["sent"].clone(),
                progress["failed"].clone(),
                progress["not_sent"].clone()
            ),
            (json!(1), json!(2), json!(1)),
            "Jane sent, Ravi's number unreachable and Mia stopped at the gateway, Bob never consented: {progress}"
        );
        let received = double.received();
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(
            (received[0].to.as_str(), received[0].from.as_str()),
            (JANE, "+447400000001")
        );
        assert_eq!(
            received[0].body,
            "Hi Jane, boiler checks are half price this month. Reply STOP to opt out"
        );
        let log = app
            .get(
                &format!("/api/v1/contacts/{}/communications", jane.id),
                &sales,
            )
            .await
            .body;
        assert_eq!(
            (log[0]["contact_point"].clone(), log[0]["delivery"].clone()),
            (json!(JANE), json!("sent")),
            "{log}"
        );
        let ravis = app
            .get(
                &format!("/api/v1/contacts/{}/communications", ravi.id),
                &sales,
            )
            .await
            .body;
        assert_eq!(ravis[0]["outcome"], "hard_bounce:400:21211", "{ravis}");

        // Mia had stopped texts at the gateway (21610): that is her opt-out now.
        let mias = decision(&app, &sales, &mia).await;
        assert_eq!((mias["allowed"].clone(), mias["reasons"].clone()), (json!(false), json!(["opted_out"])), "{mias}");

        // Ravi's only number is flagged: the next campaign leaves him out, and says why.
        let created: Campaign = app
            .post("/api/v1/campaigns", &sales, text_offer(&[ravi.id], body))
            .await
            .json();
        let (_, submitted) = step(&app, &sales, &created, "submit", json!({})).await;
        let submitted: Campaign = serde_json::from_value(submitted).unwrap();
        let preview: CampaignPreview = app
            .get(
                &format!("/api/v1/campaigns/{}/preview", submitted.id),
                &manager,
            )
            .await
            .json();
        assert_eq!(preview.unsendable.len(), 1);
        assert_eq!(preview.unsendable[0].reason, "address_bouncing");

        // Jane replies STOP. The gateway signs the reply over the address it was given (the
        // configured public_url), which is not the test's own loopback address.
        let signed_for = "https://localhost:8444/sms/inbound";
        assert_eq!(decision(&app, &sales, &jane).await["allowed"], true);
        let (forged, _) = double.reply(signed_for, JANE, "+447400000001", "STOP");
        let (status, _) = post_reply(&app, &forged, "bm90IHRoZSBzaWduYXR1cmU=").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a reply without the gateway's signature"
        );
        assert_eq!(
            decision(&app, &sales, &jane).await["allowed"],
            true,
            "and nothing recorded"
        );
        let (fields, signature) = double.reply(signed_for, JANE, "+447400000001", "Stop");
        let (status, text) = post_reply(&app, &fields, &signature).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(
            text.contains("<Response></Response>"),
            "an empty TwiML answer: {text}"
        );
        let after = decision(&app, &sales, &jane).await;
        assert_eq!(after["allowed"], false, "{after}");
        assert_eq!(after["reasons"], json!(["opted_out"]), "{after}");
        let ledger = app
            .get(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales)
            .await
            .body;
        let last = ledger.as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (
                last["event"]["type"].clone(),
                last["event"]["channel"].clone(),
                last["event"]["topic"].clone()
            ),
            (json!("opt_out"), json!("sms"), json!("*")),
            "{last}"
        );
        assert!(
            last["source"]["recording_reference"]
                .as_str()
                .unwrap()
                .contains("\u{201c}Stop\u{201d}"),
            "{last}"
        );
        // The same reply again (a gateway retrying) records nothing more.
        let (status, _) = post_reply(&app, &fields, &signature).await;
        assert_eq!(status, StatusCode::OK);
        let again = app
            .get(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales)
            .await
            .body;
        assert_eq!(
            again.as_array().unwrap().len(),
            ledger.as_array().unwrap().len()
        );
        // Anything but a stop word records nothing.
        let (fields, signature) = double.reply(signed_for, BOB, "+447400000001", "Who is this?");
        assert_eq!(
            post_reply(&app, &fields, &signature).await.0,
            StatusCode::OK
        );
        let bobs = app
            .get(&format!("/api/v1/contacts/{}/ledger", bob.id), &sales)
            .await
            .body;
        assert_eq!(bobs, json!([]), "{bobs}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_campaign_goes_through_the_gateway_and_a_signed_stop_opts_out_on_sqlite() {
    through_the_gateway_and_stop_replies(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_campaign_goes_through_the_gateway_and_a_signed_stop_opts_out_on_postgres() {
    through_the_gateway_and_stop_replies(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_gateway_text_messages_are_kept_in_the_spool_and_need_the_link() {
    run_with(Backend::Sqlite, &[], |app| async move {
        let (sales, manager, jane) = sales_manager_and_jane(&app).await;
        // The default sender id is a name, which no one can reply STOP to.
        let stop_only = app
            .post(
                "/api/v1/campaigns",
                &sales,
                text_offer(&[jane.id], "Boilers half price. Reply STOP to opt out"),
            )
            .await;
        let draft: Campaign = stop_only.json();
        let (status, body) = step(&app, &sales, &draft, "submit", json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains("cannot reply"), "{body}");

        let (campaign, _) = approved(
            &app,
            &sales,
            &manager,
            text_offer(
                &[jane.id],
                "Hi {{first_name}}, boilers half price: {{unsubscribe_url}}",
            ),
        )
        .await;
        let (status, body) = step(&app, &sales, &campaign, "send", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            progress_when_done(&app, &sales, campaign.id).await["sent"],
            1
        );
        let spool = app.data_dir().join("sms/new");
        let kept: Vec<String> = std::fs::read_dir(&spool)
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(kept[0].contains(&format!("To: {JANE}")), "{}", kept[0]);
        assert!(kept[0].contains("From: Assent"), "{}", kept[0]);
        assert!(
            kept[0].contains("Hi Jane, boilers half price: https://localhost:8444/u/"),
            "{}",
            kept[0]
        );

        // No gateway, no replies taken.
        let reply = app
            .client
            .post(app.public_url("/sms/inbound"))
            .form(&[("From", JANE), ("Body", "STOP")])
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    })
    .await;
}
