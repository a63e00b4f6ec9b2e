//! The public pages' listener and one-click unsubscribe: a marketing email is sent into the
//! maildir, and its link, its one-click POST and its mailbox are used as a person (and their mail
//! client) would.

use assent_shared::api::{Campaign, CampaignPreview, Contact, RecordedEvent};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::campaigns::{
    approved_offer, boiler_offer, catalogue_and_staff, consent, contact, maildir, sent, BODY,
};
use crate::helpers::{run_with, Backend, TestApp};
use crate::store_test;

/// A page of the public listener: status, headers and HTML.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

pub(crate) async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the public listener answers");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        html: response.text().await.expect("a body"),
    }
}

pub(crate) async fn public_get(app: &TestApp, path: &str) -> Answer {
    answer(app.client.get(app.public_url(path))).await
}

pub(crate) async fn public_post(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: &str,
) -> Answer {
    answer(
        app.client
            .post(app.public_url(path))
            .header("content-type", content_type)
            .body(body.to_owned()),
    )
    .await
}

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// Approves and sends the boiler offer to `members`; returns the campaign.
async fn send_offer(app: &TestApp, sales: &str, manager: &str, members: &[Uuid]) -> Campaign {
    let (approved, _) = approved_offer(app, sales, manager, members).await;
    sent(app, sales, &approved).await;
    approved
}

/// The unsubscribe token in the `List-Unsubscribe` header of the message to `address`.
pub(crate) fn token_for(app: &TestApp, address: &str) -> String {
    let messages = maildir(app);
    let message = messages
        .iter()
        .find(|m| m.contains(&format!("To: {address}")))
        .unwrap_or_else(|| panic!("a message to {address}"));
    // Headers unfolded (RFC 5322 2.2.3): a long one continues on lines that start with a space.
    let unfolded = message.replace("\r\n ", " ").replace("\n ", " ");
    let header = unfolded
        .lines()
        .find(|l| l.starts_with("List-Unsubscribe: "))
        .expect("a List-Unsubscribe header");
    let start = header.find("/u/").expect("an unsubscribe URL") + 3;
    let token: String = header[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "{header}");
    assert!(
        header.contains(&format!(
            "<mailto:unsubscribe@harbour-heating.example?subject=Unsubscribe%20{token}>"
        )),
        "{header}"
    );
    token
}

pub(crate) async fn ledger(app: &TestApp, token: &str, contact: &Contact) -> Vec<RecordedEvent> {
    let reply = app
        .get(&format!("/api/v1/contacts/{}/ledger", contact.id), token)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()
}

/// Jane, with consent for boiler emails, sent the offer: the staff tokens, Jane and her token.
pub(crate) async fn jane_sent_the_offer(app: &TestApp) -> (String, String, Contact, String) {
    let (sales, manager) = catalogue_and_staff(app).await;
    let jane = contact(
        app,
        &sales,
        json!({"first_name": "Jane", "last_name": "Doe", "emails": ["jane.doe@example.org"]}),
    )
    .await;
    consent(app, &sales, &jane).await;
    send_offer(app, &sales, &manager, &[jane.id]).await;
    let token = token_for(app, "jane.doe@example.org");
    (sales, manager, jane, token)
}

store_test! {
    async fn each_listener_serves_only_its_own_routes(app: TestApp) {
        let staff_on_public = public_get(&app, "/api/v1/openapi.json").await;
        assert_eq!(staff_on_public.status, StatusCode::NOT_FOUND);
        assert!(staff_on_public.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(!staff_on_public.html.contains("openapi"), "{}", staff_on_public.html);
        assert!(staff_on_public.headers.contains_key("content-security-policy"), "the fallback is hardened too");
        assert_eq!(staff_on_public.headers["referrer-policy"], "no-referrer");
        let sessions_on_public = public_post(&app, "/api/v1/sessions", "application/json", "{}").await;
        assert_eq!(sessions_on_public.status, StatusCode::NOT_FOUND);
        let token = "A".repeat(43);
        let public_on_staff = app.client.get(app.url(&format!("/u/{token}"))).send().await.unwrap();
        assert_eq!(public_on_staff.status(), StatusCode::NOT_FOUND);
        assert_eq!(public_on_staff.headers()["cache-control"], "no-store");
        let body: serde_json::Value = public_on_staff.json().await.unwrap();
        assert_eq!(body["code"], "route_not_found", "the staff listener answers in the API's shape");
        assert_eq!(public_get(&app, "/healthz").await.html, "ok");
        let reports = public_post(&app, "/mail/reports", "message/rfc822", "Subject: x\r\n\r\n").await;
        assert_eq!(reports.status, StatusCode::NOT_FOUND, "no reports are taken without their secret configured");
    }
}

store_test! {
    async fn one_click_records_the_opt_out_before_answering_and_the_next_campaign_leaves_them_out(app: TestApp) {
        let (sales, manager, jane, token) = jane_sent_the_offer(&app).await;
        let before = ledger(&app, &sales, &jane).await;

        // The page: a link scanner GETs it, which changes nothing.
        let page = public_get(&app, &format!("/u/{token}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        assert!(page.html.contains("Harbour Heating Ltd sent you this message about <strong>Boilers</strong> by email."), "{}", page.html);
        assert!(page.html.contains("<form method=\"post\">"), "{}", page.html);
        assert!(page.html.contains("name=\"List-Unsubscribe\" value=\"One-Click\""));
        assert!(page.html.contains("value=\"everything\""), "the everything choice");
        assert!(!page.html.contains("Solar panels"), "a retired topic is not offered");
        assert!(!page.html.contains("jane"), "no personal data on the page");
        assert!(!page.html.contains("<script"), "no script");
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"), "{csp}");
        assert_eq!(page.headers["referrer-policy"], "no-referrer");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert_eq!(page.headers["cache-control"], "no-store");
        assert!(page.headers.get("set-cookie").is_none());
        assert_eq!(ledger(&app, &sales, &jane).await.len(), before.len(), "a GET records nothing");

        // The mail client's one-click POST (RFC 8058): 200 once the opt-out is in the ledger.
        let done = answer(app.client.post(app.public_url(&format!("/u/{token}")))
            .header("content-type", FORM)
            .header("user-agent", "Mozilla/5.0 (one-click)")
            .header("x-forwarded-for", "203.0.113.9")
            .body("List-Unsubscribe=One-Click")).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.html);
        assert!(done.headers.get("location").is_none(), "no redirect");
        assert!(done.html.contains("You are unsubscribed"), "{}", done.html);
        assert!(done.html.contains("no more marketing about <strong>Boilers</strong> by email"), "{}", done.html);
        assert!(done.html.contains(&format!("<a href=\"../p/{token}\">")), "the way on to the preference centre: {}", done.html);
        let after = ledger(&app, &sales, &jane).await;
        assert_eq!(after.len(), before.len() + 1);
        let recorded = after.iter().find(|e| e.event.type_name() == "opt_out").expect("the opt-out");
        assert_eq!(serde_json::to_value(&recorded.event).unwrap(), json!({"type": "opt_out", "channel": "email", "topic": "boilers"}));
        assert_eq!(recorded.recorded_via.as_str(), "data_subject");
        assert_eq!(recorded.recorded_by, Some(jane.id));
        let source = recorded.source.as_ref().expect("its source");
        assert_eq!(source.ip.as_deref(), Some("127.0.0.1"), "an untrusted peer's X-Forwarded-For is not believed");
        assert_eq!(source.user_agent.as_deref(), Some("Mozilla/5.0 (one-click)"));
        assert!(source.form_url.as_deref().unwrap().ends_with("/u"), "the page, never the token: {source:?}");

        // Sent again, with the empty body some clients send: nothing more is recorded.
        let again = public_post(&app, &format!("/u/{token}"), FORM, "").await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.html);
        assert!(again.html.contains("You were already unsubscribed"), "{}", again.html);
        assert_eq!(ledger(&app, &sales, &jane).await.len(), after.len());

        // The next campaign to her leaves her out, opted out.
        let next: Campaign = app.post("/api/v1/campaigns", &sales, boiler_offer(&[jane.id], BODY)).await.json();
        let preview: CampaignPreview = app.get(&format!("/api/v1/campaigns/{}/preview", next.id), &manager).await.json();
        assert_eq!(preview.decisions.allowed, 0);
        let reasons = serde_json::to_value(&preview.decisions.by_reason).unwrap();
        assert_eq!(reasons, json!([{"key": "opted_out", "contacts": 1}]), "{reasons}");
    }
}

store_test! {
    async fn the_page_stops_chosen_topics_or_everything_and_the_mailbox_stops_the_message_topic(app: TestApp) {
        let (sales, _, jane, token) = jane_sent_the_offer(&app).await;
        let everything = public_post(&app, &format!("/u/{token}"), FORM, "choice=everything").await;
        assert_eq!(everything.status, StatusCode::OK, "{}", everything.html);
        assert!(everything.html.contains("no more marketing of any kind, by any channel"), "{}", everything.html);
        let events = ledger(&app, &sales, &jane).await;
        let last = serde_json::to_value(&events.last().unwrap().event).unwrap();
        assert_eq!(last, json!({"type": "opt_out", "channel": "any", "topic": "*"}));

        // Everything covers the message's topic: the mailbox's request records nothing more.
        let mail = format!("From: Jane Doe <jane.doe@example.org>\r\nTo: unsubscribe@harbour-heating.example\r\nSubject: Unsubscribe {token}\r\n\r\n\r\n");
        let forwarded = public_post(&app, "/unsubscribe/mail", "message/rfc822", &mail).await;
        assert_eq!(forwarded.status, StatusCode::OK, "{}", forwarded.html);
        assert!(forwarded.html.contains("You were already unsubscribed"), "{}", forwarded.html);
        assert_eq!(ledger(&app, &sales, &jane).await.len(), events.len());

        // A consent given again lifts it; the mailbox's request then records the topic's opt-out.
        let renewed = app.post(&format!("/api/v1/contacts/{}/ledger", jane.id), &sales, json!({
            "at": chrono::Utc::now(), "type": "consent_given", "channel": "email",
            "topic": "boilers", "method": "paper_form", "wording": "Email me boiler offers."})).await;
        assert_eq!(renewed.status, StatusCode::CREATED, "{}", renewed.body);
        let forwarded = public_post(&app, "/unsubscribe/mail", "message/rfc822", &mail).await;
        assert_eq!(forwarded.status, StatusCode::OK, "{}", forwarded.html);
        let events = ledger(&app, &sales, &jane).await;
        let last = events.last().unwrap();
        assert_eq!(serde_json::to_value(&last.event).unwrap(), json!({"type": "opt_out", "channel": "email", "topic": "boilers"}));
        assert_eq!(last.source.as_ref().unwrap().form_url.as_deref(), Some("mailto:unsubscribe@harbour-heating.example"));

        let chosen = public_post(&app, &format!("/u/{token}"), FORM, "choice=topics").await;
        assert_eq!(chosen.status, StatusCode::BAD_REQUEST, "nothing ticked");
        assert!(chosen.html.contains("Nothing was chosen"), "{}", chosen.html);
        let unknown = public_post(&app, &format!("/u/{token}"), FORM, "choice=topics&topic=boilers&topic=lawnmowers").await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
        assert!(!unknown.html.contains("lawnmowers"), "what was sent is not echoed");
        let retired = public_post(&app, &format!("/u/{token}"), FORM, "choice=topics&topic=solar-panels").await;
        assert_eq!(retired.status, StatusCode::BAD_REQUEST, "a topic the page does not offer");
        assert_eq!(ledger(&app, &sales, &jane).await.len(), events.len(), "a refused form records nothing");
    }
}

store_test! {
    async fn bad_input_gets_an_html_answer_and_bad_tokens_are_slowed_but_a_valid_one_never_refused(app: TestApp) {
        let (sales, _, jane, token) = jane_sent_the_offer(&app).await;
        let recorded = ledger(&app, &sales, &jane).await.len();
        let html = |a: &Answer| a.headers["content-type"].to_str().unwrap().starts_with("text/html");

        let forged = format!("{}x", &token[..42]);
        let unknown = public_get(&app, &format!("/u/{forged}")).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(html(&unknown) && unknown.html.contains("This link is not valid"), "{}", unknown.html);
        assert!(!unknown.html.contains(&forged), "the token is not echoed");
        assert_eq!(public_get(&app, "/u/short").await.status, StatusCode::NOT_FOUND);
        assert_eq!(public_get(&app, "/u/%FF%FE").await.status, StatusCode::NOT_FOUND);
        let method = answer(app.client.put(app.public_url(&format!("/u/{token}")))).await;
        assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(html(&method));
        let large = public_post(&app, &format!("/u/{token}"), FORM, &"choice=topics&".repeat(2000)).await;
        assert_eq!(large.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(html(&large));
        let junk = public_post(&app, &format!("/u/{token}"), FORM, "hello=world").await;
        assert_eq!(junk.status, StatusCode::BAD_REQUEST);
        let no_token = public_post(&app, "/unsubscribe/mail", "message/rfc822", "Subject: please stop\r\n\r\n").await;
        assert_eq!(no_token.status, StatusCode::BAD_REQUEST);
        assert!(no_token.html.contains("no unsubscribe token"), "{}", no_token.html);
        assert_eq!(ledger(&app, &sales, &jane).await.len(), recorded, "nothing was recorded");

        // Bad tokens from one address are answered 404 up to the limit, then 429 with a wait...
        let mut statuses = Vec::new();
        for n in 0..assent_server::public::BAD_TOKENS_ALLOWED + 2 {
            let bad = format!("{:A>43}", n);
            statuses.push(public_get(&app, &format!("/u/{bad}")).await.status);
        }
        let throttled = public_get(&app, &format!("/u/{forged}")).await;
        assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(throttled.headers.contains_key("retry-after"));
        assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::NOT_FOUND).count() as u32, assent_server::public::BAD_TOKENS_ALLOWED - 2, "two bad tokens came before: {statuses:?}");
        // ...while the valid token from the same address is served and recorded.
        let valid = public_post(&app, &format!("/u/{token}"), FORM, "List-Unsubscribe=One-Click").await;
        assert_eq!(valid.status, StatusCode::OK, "{}", valid.html);
        assert_eq!(ledger(&app, &sales, &jane).await.len(), recorded + 1);
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_address_is_the_one_it_forwarded() {
    let settings = [("ASSENT_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")];
    run_with(Backend::Sqlite, &settings, |app| async move {
        let (sales, _, jane, token) = jane_sent_the_offer(&app).await;
        let done = answer(
            app.client
                .post(app.public_url(&format!("/u/{token}")))
                .header("content-type", FORM)
                .header("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.2")
                .body("List-Unsubscribe=One-Click"),
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.html);
        let events = ledger(&app, &sales, &jane).await;
        let source = events.last().unwrap().source.clone().unwrap();
        assert_eq!(
            source.ip.as_deref(),
            Some("203.0.113.9"),
            "the hop before the trusted proxies"
        );
    })
    .await;
}

/// The unsubscribe page in a real browser, headless Chromium, as a person opens the link from
/// their mail: styled under its Content-Security-Policy with no script, it changes nothing when
/// opened, and its button (a plain form POST, which `form-action 'self'` must let through)
/// records the opt-out. On SQLite only: the browser's part does not depend on the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unsubscribe_page_works_in_a_real_browser() {
    run_with(Backend::Sqlite, &[], |app| async move {
        let (sales, _, jane, token) = jane_sent_the_offer(&app).await;
        let before = ledger(&app, &sales, &jane).await.len();
        let chromium = assent_tests::Chromium::start();
        let browser = chromium.session().await;
        browser
            .goto(&app.public_url(&format!("/u/{token}")))
            .await
            .expect("the page opens");
        let heading = browser
            .find(fantoccini::Locator::Css("h1"))
            .await
            .expect("a heading")
            .text()
            .await
            .unwrap();
        assert!(heading.contains("Unsubscribe"), "{heading}");
        // The stylesheet's hash is the one the policy names, so the browser applied it.
        let width = browser
            .execute(
                "return getComputedStyle(document.querySelector('main')).maxWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            width,
            json!("576px"),
            "the page's style was applied under its CSP"
        );
        assert_eq!(
            ledger(&app, &sales, &jane).await.len(),
            before,
            "opening it records nothing"
        );
        screenshot(&browser, "unsubscribe-page").await;

        browser
            .find(fantoccini::Locator::XPath(
                "//button[starts-with(normalize-space(.), 'Unsubscribe from')]",
            ))
            .await
            .expect("the one button for the message's topic")
            .click()
            .await
            .unwrap();
        let done = browser
            .wait()
            .for_element(fantoccini::Locator::Css(".done"))
            .await
            .expect("the answer")
            .text()
            .await
            .unwrap();
        assert!(
            done.contains("no more marketing about Boilers by email"),
            "{done}"
        );
        screenshot(&browser, "unsubscribe-done").await;
        let after = ledger(&app, &sales, &jane).await;
        assert_eq!(after.len(), before + 1);
        let recorded = after.last().unwrap();
        assert_eq!(recorded.event.type_name(), "opt_out");
        assert_eq!(recorded.recorded_via.as_str(), "data_subject");
        let agent = recorded
            .source
            .as_ref()
            .and_then(|s| s.user_agent.clone())
            .unwrap_or_default();
        assert!(
            agent.contains("HeadlessChrome"),
            "recorded from the browser: {agent}"
        );
        browser.close().await.ok();
    })
    .await;
}

/// Saves what the browser shows as `name.png` in `ASSENT_E2E_SCREENSHOTS`, when it is set
/// (`ASSENT_E2E_SCREENSHOTS=docs/screenshots scripts/test` refreshes the README's).
pub(crate) async fn screenshot(browser: &fantoccini::Client, name: &str) {
    let Some(dir) = std::env::var_os("ASSENT_E2E_SCREENSHOTS") else {
        return;
    };
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
}
