//! Sign-up forms and the double opt-in, through a real SMTP conversation (Postfix's smtp-sink):
//! a form published by a manager, a person signing up through it from the organisation's site,
//! the confirmation email, a GET of its link that confirms nothing, the button that does, and
//! what the ledger and the engine then say.

use std::time::Duration;

use assent_server::mail::sink::SmtpSink;
use assent_shared::api::{Contact, ContactPage, DecisionResponse, SignupForm};
use assent_shared::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{run_with, Backend, TestApp};
use crate::unsubscribe::{answer, ledger, public_get, Answer, FORM};

/// The site the forms are published on in these tests.
pub(crate) const SITE: &str = "https://www.harbour-heating.example";

/// A catalogue of two topics, a manager and a salesperson; the manager publishes a form offering
/// both on [`SITE`] (and `extra_site`). Their tokens and the form.
pub(crate) async fn published_form(
    app: &TestApp,
    extra_site: Option<&str>,
) -> (String, String, SignupForm) {
    let (_, dpo) = app.user_with_token("dpo@example.org", &[Role::Dpo]).await;
    let saved = app.put("/api/v1/topics", &dpo, json!({"topics": [
        {"key": "boilers", "name": "Boilers", "description": "New boilers, fitted and serviced."},
        {"key": "heat-pumps", "name": "Heat pumps", "description": "Air and ground source heat pumps."}
    ]})).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let (_, manager) = app
        .user_with_token("mia.manager@example.org", &[Role::Manager])
        .await;
    let (_, sales) = app
        .user_with_token("sam.sales@example.org", &[Role::Sales])
        .await;
    let mut sites = vec![SITE.to_owned()];
    sites.extend(extra_site.map(str::to_owned));
    let form = app.post("/api/v1/signup-forms", &manager, json!({
        "name": "Website footer",
        "wording": "Email me news and offers from Harbour Heating about the topics I tick. I can stop at any time.",
        "topics": ["boilers", "heat-pumps"],
        "sites": sites})).await;
    assert_eq!(form.status, StatusCode::CREATED, "{}", form.body);
    (manager, sales, form.json())
}

/// Posts the sign-up form as a browser on `origin` would.
pub(crate) async fn sign_up(app: &TestApp, form: &SignupForm, origin: &str, body: &str) -> Answer {
    answer(
        app.client
            .post(app.public_url(&format!("/s/{}", form.id)))
            .header("content-type", FORM)
            .header("origin", origin)
            .header("referer", format!("{origin}/news"))
            .header("user-agent", "Mozilla/5.0 (sign-up)")
            .body(body.to_owned()),
    )
    .await
}

/// The first `count` messages to `address` the sink received, once it has them (soft line
/// breaks of quoted-printable undone).
pub(crate) async fn messages_to(sink: &SmtpSink, address: &str, count: usize) -> Vec<String> {
    for _ in 0..200 {
        let received: Vec<String> = sink
            .received()
            .into_iter()
            .filter(|m| m.contains(&format!("To: {address}")))
            .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
            .collect();
        if received.len() >= count {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} messages reached {address}");
}

/// The confirmation link's token in the `count`th message to `address` the sink received.
pub(crate) async fn confirmation_token(sink: &SmtpSink, address: &str, count: usize) -> String {
    let message = &messages_to(sink, address, count).await[count - 1];
    let start = message.find("/c/").expect("a confirmation link") + 3;
    let token: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "{message}");
    token
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect()
}

async fn contacts_named(app: &TestApp, token: &str, q: &str) -> Vec<Contact> {
    let page = app.get(&format!("/api/v1/contacts?q={q}"), token).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let mut found = Vec::new();
    for summary in page.json::<ContactPage>().items {
        let contact = app
            .get(&format!("/api/v1/contacts/{}", summary.id), token)
            .await;
        assert_eq!(contact.status, StatusCode::OK, "{}", contact.body);
        found.push(contact.json());
    }
    found
}

async fn decision(app: &TestApp, token: &str, contact: &Contact, topic: &str) -> DecisionResponse {
    let decided = app
        .post(
            "/api/v1/decisions",
            token,
            json!({"contact_id": contact.id,
        "message": {"kind": "marketing", "channel": "email", "topic": topic}}),
        )
        .await;
    assert_eq!(decided.status, StatusCode::OK, "{}", decided.body);
    decided.json()
}

pub(crate) fn relay_settings(sink: &SmtpSink) -> [(&'static str, String); 3] {
    [
        ("ASSENT_MAIL_RELAY", format!("127.0.0.1:{}", sink.port)),
        ("ASSENT_MAIL_SECURITY", "plain".to_owned()),
        (
            "ASSENT_MAIL_FROM",
            "hello@harbour-heating.example".to_owned(),
        ),
    ]
}

async fn a_sign_up_is_confirmed_only_by_the_button_and_then_allows_marketing(backend: Backend) {
    let sink = SmtpSink::start(&[]);
    let settings = relay_settings(&sink);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_with(backend, &settings, |app| async move {
        let (manager, sales, form) = published_form(&app, None).await;
        assert_eq!(form.topics.len(), 2);
        assert!(form.snippet.contains(&format!("action=\"https://localhost:8444/s/{}\"", form.id)), "{}", form.snippet);
        assert!(form.snippet.contains(&format!("name=\"wording\" value=\"{}\"", form.wording_version)), "{}", form.snippet);
        assert!(form.snippet.contains("<input type=\"checkbox\" name=\"topic\" value=\"boilers\"> Boilers"), "never ticked for them: {}", form.snippet);
        assert!(form.snippet.contains("Email me news and offers"), "{}", form.snippet);
        let campaign = app.get(&format!("/api/v1/campaigns/{}", form.campaign_id), &manager).await;
        assert_eq!(campaign.body["state"], "sending", "{}", campaign.body);
        assert_eq!(campaign.body["standing"], true);
        assert_eq!(campaign.body["content"]["message"]["kind"], "service");
        // Nobody pauses, edits or cancels it by hand.
        let cancel = app.post(&format!("/api/v1/campaigns/{}/cancel", form.campaign_id), &manager,
            json!({"version": campaign.body["version"]})).await;
        assert_eq!(cancel.status, StatusCode::CONFLICT, "{}", cancel.body);
        // Only managers and the data protection lead publish forms.
        let refused = app.post("/api/v1/signup-forms", &sales, json!({"name": "x", "wording": "x",
            "topics": ["boilers"], "sites": [SITE]})).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        let invalid = app.post("/api/v1/signup-forms", &manager, json!({"name": "x", "wording": " ",
            "topics": ["pigeons"], "sites": ["www.example.com"]})).await;
        assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", invalid.body);
        let mut fields = invalid.fields();
        fields.sort();
        assert_eq!(fields, ["sites[0]", "topics[0]", "wording"]);

        let good = format!("wording={}&topic=boilers&first_name=Jane&last_name=Doe&email=Jane.Doe%40Example.org&website=", form.wording_version);
        // Refused: from another site, with nothing ticked, with a bad address, an old wording.
        let elsewhere = sign_up(&app, &form, "https://evil.example", &good).await;
        assert_eq!(elsewhere.status, StatusCode::FORBIDDEN, "{}", elsewhere.html);
        let no_origin = answer(app.client.post(app.public_url(&format!("/s/{}", form.id)))
            .header("content-type", FORM).body(good.clone())).await;
        assert_eq!(no_origin.status, StatusCode::FORBIDDEN, "{}", no_origin.html);
        let nothing_ticked = sign_up(&app, &form, SITE, &format!("wording={}&first_name=Jane&email=jane.doe%40example.org", form.wording_version)).await;
        assert_eq!(nothing_ticked.status, StatusCode::BAD_REQUEST, "{}", nothing_ticked.html);
        assert!(nothing_ticked.html.contains("tick at least one box"), "{}", nothing_ticked.html);
        let bad_address = sign_up(&app, &form, SITE, &format!("wording={}&topic=boilers&first_name=Jane&email=jane.doe", form.wording_version)).await;
        assert_eq!(bad_address.status, StatusCode::BAD_REQUEST, "{}", bad_address.html);
        assert!(bad_address.html.contains("Email address is not a valid email address"), "{}", bad_address.html);
        assert!(!bad_address.html.contains("jane.doe"), "what was sent is never echoed: {}", bad_address.html);
        let old_wording = sign_up(&app, &form, SITE, &good.replace(&format!("wording={}", form.wording_version), "wording=999")).await;
        assert_eq!(old_wording.status, StatusCode::BAD_REQUEST, "{}", old_wording.html);
        let not_offered = sign_up(&app, &form, SITE, &good.replace("topic=boilers", "topic=pigeons")).await;
        assert_eq!(not_offered.status, StatusCode::BAD_REQUEST, "{}", not_offered.html);
        let unknown_form = answer(app.client.post(app.public_url(&format!("/s/{}", uuid::Uuid::now_v7())))
            .header("content-type", FORM).header("origin", SITE).body(good.clone())).await;
        assert_eq!(unknown_form.status, StatusCode::NOT_FOUND, "{}", unknown_form.html);
        // A bot that fills in the hidden field is thanked and recorded nowhere.
        let bot = sign_up(&app, &form, SITE, &format!("{good}http%3A%2F%2Fspam.example")).await;
        assert_eq!(bot.status, StatusCode::OK, "{}", bot.html);
        assert!(contacts_named(&app, &manager, "Doe&include_inactive=true").await.is_empty(), "nothing of the refused was kept");

        // Jane signs up for boilers and heat pumps from the organisation's site: a contact is
        // made, and nothing is in her ledger until she confirms.
        let both = good.replace("topic=boilers", "topic=boilers&topic=heat-pumps");
        let signed = sign_up(&app, &form, SITE, &both).await;
        assert_eq!(signed.status, StatusCode::OK, "{}", signed.html);
        assert!(signed.html.contains("We email a link to the address you gave"), "{}", signed.html);
        assert!(signed.html.contains("You asked to hear about: Boilers, Heat pumps."), "{}", signed.html);
        assert!(contacts_named(&app, &manager, "Doe").await.is_empty(), "out of every list and audience until she confirms");
        let jane = contacts_named(&app, &manager, "Doe&include_inactive=true").await;
        assert_eq!(jane.len(), 1, "a contact made from the sign-up, waiting");
        let jane = jane[0].clone();
        assert_eq!(jane.emails, ["Jane.Doe@example.org"]);
        assert!(!jane.active);
        assert!(ledger(&app, &manager, &jane).await.is_empty(), "an unconfirmed post records no consent");
        let before = decision(&app, &manager, &jane, "boilers").await;
        assert!(!before.allowed, "{before:?}");

        // The confirmation arrives at the real SMTP server, to the address given.
        let token = confirmation_token(&sink, "Jane.Doe@example.org", 1).await;
        // Signing up again at once (through any form) sends no second email, and the answer is
        // the same as the first's: it tells nobody a sign-up is pending.
        let again = sign_up(&app, &form, SITE, &good).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.html);
        assert_eq!(again.html, signed.html.replace("Boilers, Heat pumps.", "Boilers."));

        // A GET of the link (a mail scanner's) confirms nothing.
        let path = format!("/c/{token}");
        let page = public_get(&app, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        assert!(page.html.contains("<li>Boilers</li><li>Heat pumps</li>"), "{}", page.html);
        assert!(page.html.contains("Yes, confirm my sign-up"), "{}", page.html);
        assert!(!page.html.contains("Jane"), "no personal data on the page");
        assert!(ledger(&app, &manager, &jane).await.is_empty());
        // A form that did not come from the page, or a wrong link, confirms nothing.
        let forged = answer(app.client.post(app.public_url(&path)).header("content-type", FORM).body("csrf=00")).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
        let wrong = answer(app.client.post(app.public_url(&format!("/c/{}", "A".repeat(43))))
            .header("content-type", FORM).body(format!("csrf={}", csrf_of(&page.html)))).await;
        assert_eq!(wrong.status, StatusCode::NOT_FOUND, "{}", wrong.html);
        assert!(ledger(&app, &manager, &jane).await.is_empty());

        // The button writes, per topic, the consent given on the form (as of the post, with its
        // page, IP and user agent and the form's wording) and its confirmation by this request.
        let confirmed = answer(app.client.post(app.public_url(&path))
            .header("content-type", FORM)
            .header("user-agent", "Mozilla/5.0 (confirming)")
            .body(format!("csrf={}", csrf_of(&page.html)))).await;
        assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.html);
        assert!(confirmed.html.contains("Your sign-up is confirmed"), "{}", confirmed.html);
        assert!(confirmed.html.contains(&format!("href=\"../p/{token}\"")), "{}", confirmed.html);
        let after = ledger(&app, &manager, &jane).await;
        assert_eq!(after.len(), 4, "{after:?}");
        for topic in ["boilers", "heat-pumps"] {
            let of = |kind: &str| {
                after.iter().find(|e| {
                    let event = serde_json::to_value(&e.event).unwrap();
                    event["type"] == kind && event["topic"] == topic
                }).unwrap_or_else(|| panic!("{kind} {topic}: {after:?}"))
            };
            let given = of("consent_given");
            let event = serde_json::to_value(&given.event).unwrap();
            assert_eq!(event["method"], "web_form");
            assert_eq!(event["channel"], "email");
            assert_eq!(event["wording"], form.wording, "the form's wording, never text the browser sent");
            assert_eq!(given.wording_version, Some(form.wording_version));
            assert_eq!(given.recorded_via.as_str(), "data_subject");
            let source = given.source.clone().expect("its source");
            assert_eq!(source.form_url.as_deref(), Some("https://www.harbour-heating.example/news"));
            assert_eq!(source.ip.as_deref(), Some("127.0.0.1"));
            assert_eq!(source.user_agent.as_deref(), Some("Mozilla/5.0 (sign-up)"));
            assert_eq!(source.contact_point.as_deref(), Some("Jane.Doe@example.org"));
            let confirmation = of("consent_confirmed");
            assert_eq!(confirmation.at, given.at, "both as of the button: the person's latest word");
            assert!(confirmation.seq > given.seq, "given, then confirmed");
            assert!(given.source.as_ref().unwrap().recording_reference.as_deref().unwrap().contains(", posted "),
                "the post's time is kept with the consent: {:?}", given.source);
            let source = confirmation.source.as_ref().unwrap();
            assert!(source.form_url.as_deref().unwrap().ends_with("/c"), "the page, never the token: {source:?}");
            assert_eq!(source.user_agent.as_deref(), Some("Mozilla/5.0 (confirming)"));
            assert_eq!(source.contact_point.as_deref(), Some("Jane.Doe@example.org"));
        }
        let jane_now = contacts_named(&app, &manager, "Doe").await;
        assert_eq!(jane_now.len(), 1, "confirmed, she is in the lists");
        assert!(jane_now[0].active);
        // Pressing it again records nothing more.
        let twice = answer(app.client.post(app.public_url(&path)).header("content-type", FORM)
            .body(format!("csrf={}", csrf_of(&page.html)))).await;
        assert_eq!(twice.status, StatusCode::OK, "{}", twice.html);
        assert_eq!(ledger(&app, &manager, &jane).await.len(), 4);

        // The engine now allows marketing email on both topics, on her consent.
        for topic in ["boilers", "heat-pumps"] {
            let allowed = decision(&app, &manager, &jane, topic).await;
            assert!(allowed.allowed, "{allowed:?}");
            assert_eq!(allowed.basis.map(|b| b.as_str().to_owned()).as_deref(), Some("consent"));
        }
        // Her consent receipt follows: what she agreed to, when and how, and how to withdraw.
        let received = messages_to(&sink, "Jane.Doe@example.org", 2).await;
        assert_eq!(received.len(), 2, "the second sign-up sent no second confirmation");
        let receipt = received
            .iter()
            .find(|m| m.contains("Subject: Your consent receipt"))
            .unwrap_or_else(|| panic!("a consent receipt: {received:?}"))
            .clone();
        for stated in ["Boilers, Heat pumps", "Jane.Doe@example.org", "Email me news and offers from Harbour Heating",
            "UK GDPR Article 6(1)(a)", "/p/", "Harbour Heating Ltd, 1 Quay Street, Bristol BS1 4DJ"] {
            assert!(receipt.contains(stated), "the receipt states {stated}: {receipt}");
        }
        // The confirmation and the receipt are in her communication log, each with its warrant.
        let log = app.get(&format!("/api/v1/contacts/{}/communications", jane.id), &manager).await;
        assert_eq!(log.status, StatusCode::OK, "{}", log.body);
        let log = log.body.as_array().unwrap().clone();
        assert_eq!(log.len(), 2, "{log:?}");
        let campaigns: Vec<&serde_json::Value> = log.iter().map(|c| &c["campaign_id"]).collect();
        assert!(campaigns.contains(&&json!(form.campaign_id)), "{log:?}");
        assert!(campaigns.contains(&&json!(form.receipt_campaign_id.unwrap())), "{log:?}");
        assert!(log.iter().all(|c| c["allowed"] == true), "{log:?}");

        // A second sign-up of the same address through another name adds no contact.
        let retired = app.post(&format!("/api/v1/signup-forms/{}/retire", form.id), &manager, json!({})).await;
        assert_eq!(retired.status, StatusCode::OK, "{}", retired.body);
        let after_retiring = sign_up(&app, &form, SITE, &good).await;
        assert_eq!(after_retiring.status, StatusCode::BAD_REQUEST, "{}", after_retiring.html);
        assert!(after_retiring.html.contains("no longer in use"), "{}", after_retiring.html);
        assert!(assent_server::service::audit::verify(&app.db).await.unwrap().intact());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_is_confirmed_only_by_the_button_and_then_allows_marketing_on_sqlite() {
    a_sign_up_is_confirmed_only_by_the_button_and_then_allows_marketing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_is_confirmed_only_by_the_button_and_then_allows_marketing_on_postgres() {
    a_sign_up_is_confirmed_only_by_the_button_and_then_allows_marketing(Backend::Postgres).await;
}

/// The organisation's own website, on another origin than the public pages: every path answers
/// a news page holding the snippet. Plain HTTP on loopback, served until the guard drops.
struct Website {
    origin: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Website {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Website {
    async fn start() -> (Website, tokio::sync::watch::Sender<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (page, shown) = tokio::sync::watch::channel(String::new());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let html = format!(
                    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Harbour Heating: news</title></head>\
                     <body style=\"font-family:sans-serif;max-width:40rem;margin:2rem auto\"><h1>Harbour Heating news</h1>\
                     <p>Offers on boilers and heat pumps, a few times a year.</p>{}</body></html>",
                    *shown.borrow()
                );
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0_u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                        html.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        (Website { origin, task }, page)
    }
}

/// The heading of the public page the browser is on, once it is there.
async fn heading(browser: &fantoccini::Client) -> String {
    browser
        .wait()
        .for_element(fantoccini::Locator::Css("main h1"))
        .await
        .expect("a public page")
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_on_the_organisations_site_is_confirmed_in_a_real_browser() {
    use fantoccini::Locator;
    let sink = SmtpSink::start(&[]);
    let settings = relay_settings(&sink);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_with(Backend::Sqlite, &settings, |app| async move {
        let (website, page) = Website::start().await;
        let (manager, _, form) = published_form(&app, Some(&website.origin)).await;
        // The public pages are reached at the test's listener, not the configured public_url.
        let snippet = form
            .snippet
            .replace("https://localhost:8444", &app.public_url(""));
        page.send(snippet).unwrap();
        let chromium = assent_tests::Chromium::start();
        let browser = chromium.session().await;
        browser
            .goto(&format!("{}/news", website.origin))
            .await
            .expect("the website opens");
        for (name, text) in [
            ("first_name", "Priya"),
            ("last_name", "Shah"),
            ("email", "priya.shah@example.org"),
        ] {
            browser
                .find(Locator::Css(&format!("input[name={name}]")))
                .await
                .unwrap()
                .send_keys(text)
                .await
                .unwrap();
        }
        browser
            .find(Locator::Css("input[name=topic][value=heat-pumps]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        crate::unsubscribe::screenshot(&browser, "signup-form").await;
        browser
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert_eq!(heading(&browser).await, "Check your email");
        crate::unsubscribe::screenshot(&browser, "signup-check-email").await;
        let priya = contacts_named(&app, &manager, "Shah&include_inactive=true").await;
        assert_eq!(priya.len(), 1);
        let priya = priya[0].clone();
        assert!(
            ledger(&app, &manager, &priya).await.is_empty(),
            "nothing until she confirms"
        );

        // The email reaches the real SMTP server; its link opens a page that confirms nothing.
        let token = confirmation_token(&sink, "priya.shah@example.org", 1).await;
        browser
            .goto(&app.public_url(&format!("/c/{token}")))
            .await
            .unwrap();
        assert_eq!(heading(&browser).await, "Confirm your sign-up");
        assert!(
            ledger(&app, &manager, &priya).await.is_empty(),
            "opening the link records nothing"
        );
        crate::unsubscribe::screenshot(&browser, "signup-confirm").await;
        browser
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let status = browser
            .wait()
            .for_element(Locator::Css(".done"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(status.starts_with("Your sign-up is confirmed"), "{status}");
        crate::unsubscribe::screenshot(&browser, "signup-confirmed").await;
        let confirmed = ledger(&app, &manager, &priya).await;
        assert_eq!(confirmed.len(), 2);
        assert_eq!(
            serde_json::to_value(&confirmed[1].event).unwrap(),
            json!({"type": "consent_confirmed", "channel": "email", "topic": "heat-pumps"})
        );
        let source = confirmed[0].source.clone().unwrap();
        assert!(
            source
                .form_url
                .as_deref()
                .unwrap()
                .starts_with(&website.origin),
            "the consent names the page it was given on: {source:?}"
        );
        assert!(
            source.user_agent.as_deref().unwrap().contains("Chrome"),
            "{source:?}"
        );
        assert!(decision(&app, &manager, &priya, "heat-pumps").await.allowed);

        // From there, the preference centre shows it reaching her.
        browser
            .find(Locator::LinkText("Change what you hear about, or stop it"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert_eq!(heading(&browser).await, "Your preferences");
        let ticked = browser
            .find(Locator::Css("input[name=keep][value='email:heat-pumps']"))
            .await
            .unwrap();
        assert_eq!(
            ticked.prop("checked").await.unwrap().as_deref(),
            Some("true")
        );
        drop(website);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_after_an_opt_out_is_the_persons_latest_word() {
    let sink = SmtpSink::start(&[]);
    let settings = relay_settings(&sink);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_with(Backend::Sqlite, &settings, |app| async move {
        let (manager, sales, form) = published_form(&app, None).await;
        // Ravi is a customer already; he signs up on the website.
        let ravi = crate::campaigns::contact(
            &app,
            &sales,
            json!({"first_name": "Ravi", "last_name": "Patel",
            "emails": ["ravi.patel@example.org"]}),
        )
        .await;
        let body = format!(
            "wording={}&topic=boilers&first_name=Ravi&email=ravi.patel%40example.org",
            form.wording_version
        );
        assert_eq!(
            sign_up(&app, &form, SITE, &body).await.status,
            StatusCode::OK
        );
        let token = confirmation_token(&sink, "ravi.patel@example.org", 1).await;
        // Before he opens the email, he stops all marketing (on the phone, recorded by staff).
        let now = assent_server::clock::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let stopped = app
            .post(
                &format!("/api/v1/contacts/{}/ledger", ravi.id),
                &sales,
                json!({
            "at": now, "type": "opt_out", "channel": "any", "topic": "*"}),
            )
            .await;
        assert_eq!(stopped.status, StatusCode::CREATED, "{}", stopped.body);
        assert!(!decision(&app, &manager, &ravi, "boilers").await.allowed);
        // Then he presses the button: that is his latest word, and it counts.
        let path = format!("/c/{token}");
        let page = public_get(&app, &path).await;
        let confirmed = answer(
            app.client
                .post(app.public_url(&path))
                .header("content-type", FORM)
                .body(format!("csrf={}", csrf_of(&page.html))),
        )
        .await;
        assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.html);
        let allowed = decision(&app, &manager, &ravi, "boilers").await;
        assert!(
            allowed.allowed,
            "a consent confirmed after the opt-out: {allowed:?}"
        );
        let given = ledger(&app, &manager, &ravi).await;
        let source = given
            .iter()
            .find(|e| serde_json::to_value(&e.event).unwrap()["type"] == "consent_given")
            .and_then(|e| e.source.clone())
            .unwrap();
        assert!(
            source
                .recording_reference
                .as_deref()
                .unwrap()
                .contains(", posted "),
            "the post's time is kept: {source:?}"
        );
    })
    .await;
}
