//! The preference centre (`/p/{token}`), reached from the link in a message: what it shows, its
//! CSRF token, and what it records.

use assent_shared::api::DecisionResponse;
use assent_shared::ledger::Reason;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::store_test;
use crate::unsubscribe::{jane_sent_the_offer, ledger, public_get, public_post, FORM};

/// The values of the boxes ticked on the page.
fn ticked(html: &str) -> Vec<String> {
    html.split("name=\"keep\" value=\"")
        .skip(1)
        .filter_map(|rest| {
            rest.split_once("\" checked")
                .map(|(value, _)| value.to_owned())
        })
        .collect()
}

/// The CSRF token of the page's forms.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect()
}

store_test! {
    async fn the_preference_centre_shows_what_reaches_them_and_records_what_they_change(app: TestApp) {
        let (sales, _, jane, token) = jane_sent_the_offer(&app).await;
        let before = ledger(&app, &sales, &jane).await;
        let path = format!("/p/{token}");

        // The message's footer and the unsubscribe page both lead here.
        let message = crate::campaigns::maildir(&app).concat().replace("=\r\n", "").replace("=\n", "");
        assert!(message.contains(&format!("Your contact preferences <https://localhost:8444{path}>")), "{message}");
        let unsubscribe = public_get(&app, &format!("/u/{token}")).await;
        assert!(unsubscribe.html.contains(&format!("<a href=\"..{path}\">")), "relative, as public_url may have a path: {}", unsubscribe.html);

        // A GET (a link scanner's too) shows and changes nothing.
        let page = public_get(&app, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        assert!(page.headers.contains_key("content-security-policy"));
        assert!(page.html.contains("<legend>Boilers</legend>"), "topics in words: {}", page.html);
        assert!(page.html.contains("name=\"keep\" value=\"email:boilers\" checked"), "her consent reaches her by email: {}", page.html);
        assert!(page.html.contains("Not signed up by text message"), "{}", page.html);
        assert!(!page.html.contains("jane.doe@example.org") && !page.html.contains("Jane"), "no personal data on the page");
        assert!(!page.html.contains("Solar panels"), "a retired topic is not offered");
        assert_eq!(ledger(&app, &sales, &jane).await.len(), before.len());
        let csrf = csrf_of(&page.html);
        assert_eq!(csrf.len(), 64);

        // A form that did not come from the page is refused, and records nothing.
        let forged = public_post(&app, &path, FORM, "preferred=none").await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
        let wrong = public_post(&app, &path, FORM, &format!("csrf={}&preferred=none", "0".repeat(64))).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.html);
        assert!(wrong.html.contains("Nothing was recorded"), "{}", wrong.html);
        // A wrong link is a wrong link, whatever the form holds.
        let unknown = public_post(&app, &format!("/p/{}", "A".repeat(43)), FORM, &format!("csrf={csrf}")).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.html);
        let nonsense = public_post(&app, &path, FORM, &format!("csrf={csrf}&keep=pigeon:boilers")).await;
        assert_eq!(nonsense.status, StatusCode::BAD_REQUEST, "{}", nonsense.html);
        // Posted from another site's page (a browser says so), even with the right token.
        let cross_site = crate::unsubscribe::answer(app.client.post(app.public_url(&path))
            .header("content-type", FORM)
            .header("sec-fetch-site", "cross-site")
            .body(format!("csrf={csrf}&preferred=none"))).await;
        assert_eq!(cross_site.status, StatusCode::FORBIDDEN, "{}", cross_site.html);
        // A box the page did not show is not stopped, ticked or not: a consent recorded after the
        // page was drawn is not stopped unseen.
        let unseen = public_post(&app, &path, FORM, &format!("csrf={csrf}")).await;
        assert_eq!(unseen.status, StatusCode::OK, "{}", unseen.html);
        assert!(unseen.html.contains("nothing needed to change"), "{}", unseen.html);
        assert_eq!(ledger(&app, &sales, &jane).await.len(), before.len());

        // Boilers by email unticked (the rest left ticked: post reaches her on every topic
        // without consent), post preferred: two events, by her, with their source.
        let shown: String = ticked(&page.html).iter().map(|v| format!("&shown={v}")).collect();
        let kept: String = ticked(&page.html)
            .iter()
            .filter(|v| *v != "email:boilers")
            .map(|v| format!("&keep={v}"))
            .collect();
        assert!(kept.contains("post:boilers"), "{kept}");
        let kept = format!("{shown}{kept}");
        let saved = crate::unsubscribe::answer(app.client.post(app.public_url(&path))
            .header("content-type", FORM)
            .header("user-agent", "Mozilla/5.0 (preferences)")
            .body(format!("csrf={csrf}&preferred=post{kept}"))).await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.html);
        assert!(saved.html.contains("No more marketing about <strong>Boilers</strong> by email."), "{}", saved.html);
        assert!(saved.html.contains("Preferred contact: Post."), "{}", saved.html);
        assert!(saved.html.contains("Stopped by email"), "the page shows where she stands now: {}", saved.html);
        assert!(saved.html.contains("value=\"post\" checked"), "{}", saved.html);
        let after = ledger(&app, &sales, &jane).await;
        assert_eq!(after.len(), before.len() + 2);
        let new: Vec<_> = after.iter().filter(|e| !before.iter().any(|b| b.id == e.id)).collect();
        let events: Vec<serde_json::Value> = new.iter().map(|e| serde_json::to_value(&e.event).unwrap()).collect();
        assert!(events.contains(&json!({"type": "opt_out", "channel": "email", "topic": "boilers"})), "{events:?}");
        assert!(events.contains(&json!({"type": "preference_set", "preferred_channel": "post"})), "{events:?}");
        for event in &new {
            assert_eq!(event.recorded_via.as_str(), "data_subject");
            assert_eq!(event.recorded_by, Some(jane.id));
            let source = event.source.as_ref().expect("its source");
            assert!(source.form_url.as_deref().unwrap().ends_with("/p"), "the page, never the token: {source:?}");
            assert_eq!(source.ip.as_deref(), Some("127.0.0.1"));
            assert_eq!(source.user_agent.as_deref(), Some("Mozilla/5.0 (preferences)"));
            assert!(source.recording_reference.as_deref().unwrap().starts_with("preference centre: "), "the words shown: {source:?}");
        }

        // The same form again changes nothing.
        let again = public_post(&app, &path, FORM, &format!("csrf={csrf}&preferred=post{kept}")).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.html);
        assert!(again.html.contains("nothing needed to change"), "{}", again.html);
        assert_eq!(ledger(&app, &sales, &jane).await.len(), after.len());

        // The engine now refuses her boiler emails as opted out.
        let decision = app.post("/api/v1/decisions", &sales, json!({"contact_id": jane.id,
            "message": {"kind": "marketing", "channel": "email", "topic": "boilers"}})).await;
        assert_eq!(decision.status, StatusCode::OK, "{}", decision.body);
        let decision: DecisionResponse = decision.json();
        assert!(!decision.allowed);
        assert!(decision.reasons.contains(&Reason::OptedOut), "{:?}", decision.reasons);

        // "None" as the preferred method stops everything, whatever the policy says of it: an
        // opt-out of all marketing by every channel, beside the preference.
        let none = public_post(&app, &path, FORM, &format!("csrf={csrf}&preferred=none{kept}")).await;
        assert_eq!(none.status, StatusCode::OK, "{}", none.html);
        assert!(none.html.contains("no more marketing of any kind, by any channel"), "{}", none.html);
        let last = ledger(&app, &sales, &jane).await;
        let events: Vec<serde_json::Value> = last[after.len()..].iter().map(|e| serde_json::to_value(&e.event).unwrap()).collect();
        assert_eq!(events, [json!({"type": "opt_out", "channel": "any", "topic": "*"}), json!({"type": "preference_set", "preferred_channel": "none"})]);
    }
}

/// The preference centre in headless Chromium, reached as a person reaches it: from the
/// unsubscribe page's link. The real form carries its CSRF token; unticking a box and choosing a
/// preferred method records both, from the browser. On SQLite only: the browser's part does not
/// depend on the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preference_centre_works_in_a_real_browser() {
    use fantoccini::Locator;
    crate::helpers::run_with(crate::helpers::Backend::Sqlite, &[], |app| async move {
        let (sales, _, jane, token) = jane_sent_the_offer(&app).await;
        let before = ledger(&app, &sales, &jane).await.len();
        let chromium = assent_tests::Chromium::start();
        let browser = chromium.session().await;
        browser
            .goto(&app.public_url(&format!("/u/{token}")))
            .await
            .expect("the unsubscribe page opens");
        browser
            .find(Locator::LinkText("See and change all your preferences"))
            .await
            .expect("the link to the preference centre")
            .click()
            .await
            .unwrap();
        let heading = browser
            .wait()
            .for_element(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(heading, "Your preferences");
        assert_eq!(
            ledger(&app, &sales, &jane).await.len(),
            before,
            "opening it records nothing"
        );
        crate::unsubscribe::screenshot(&browser, "preference-centre").await;
        // On a phone's screen nothing runs off the side.
        let (width, height) = browser.get_window_size().await.unwrap();
        browser.set_window_size(390, 844).await.unwrap();
        let overflow = browser
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, json!(0), "no sideways scrolling at 390 px");
        crate::unsubscribe::screenshot(&browser, "preference-centre-phone").await;
        browser
            .set_window_size(width as u32, height as u32)
            .await
            .unwrap();

        browser
            .find(Locator::Css("input[name=keep][value='email:boilers']"))
            .await
            .expect("boilers by email, ticked")
            .click()
            .await
            .unwrap();
        browser
            .find(Locator::Css("input[name=preferred][value=post]"))
            .await
            .expect("post as the preferred method")
            .click()
            .await
            .unwrap();
        browser
            .find(Locator::XPath(
                "//button[normalize-space(.)='Save my choices']",
            ))
            .await
            .expect("the save button")
            .click()
            .await
            .unwrap();
        let done = browser
            .wait()
            .for_element(Locator::Css(".done"))
            .await
            .expect("the answer")
            .text()
            .await
            .unwrap();
        assert!(
            done.contains("No more marketing about Boilers by email."),
            "{done}"
        );
        assert!(done.contains("Preferred contact: Post."), "{done}");
        crate::unsubscribe::screenshot(&browser, "preference-centre-saved").await;
        let after = ledger(&app, &sales, &jane).await;
        assert_eq!(after.len(), before + 2, "{after:?}");
        let agent = after
            .last()
            .and_then(|e| e.source.as_ref())
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
