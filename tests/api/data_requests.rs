//! The data request page: published by the data protection lead, a request recorded at once, its
//! address verified by the button on the emailed link's page (a real SMTP conversation with
//! Postfix's smtp-sink), and the list staff see.

use assent_server::mail::sink::SmtpSink;
use assent_shared::api::DataRequest;
use assent_shared::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::campaigns::contact;
use crate::helpers::{run_with, Backend, TestApp};
use crate::signups::{messages_to, relay_settings};
use crate::unsubscribe::{answer, public_get, FORM};

/// The CSRF token of the page's form (a stamped one: digits, a dot, hex).
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '.')
        .collect()
}

async fn ask(app: &TestApp, body: &str) -> crate::unsubscribe::Answer {
    answer(
        app.client
            .post(app.public_url("/r"))
            .header("content-type", FORM)
            .body(body.to_owned()),
    )
    .await
}

async fn requests(app: &TestApp, token: &str) -> Vec<DataRequest> {
    let list = app.get("/api/v1/data-requests", token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    list.json()
}

async fn a_data_request_is_recorded_and_verified_by_the_button(backend: Backend) {
    let sink = SmtpSink::start(&[]);
    let settings = relay_settings(&sink);
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_with(backend, &settings, |app| async move {
        let (_, dpo) = app.user_with_token("dpo@example.org", &[Role::Dpo]).await;
        let (_, sales) = app.user_with_token("sam.sales@example.org", &[Role::Sales]).await;
        let jane = contact(&app, &sales, json!({"first_name": "Jane", "last_name": "Doe",
            "emails": ["jane.doe@example.org"]})).await;

        // Not offered until the data protection lead publishes it.
        assert_eq!(public_get(&app, "/r").await.status, StatusCode::NOT_FOUND);
        let refused = app.post("/api/v1/data-requests/page", &sales, json!({})).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        let published = app.post("/api/v1/data-requests/page", &dpo, json!({})).await;
        assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
        assert_eq!(published.body["url"], "https://localhost:8444/r");
        let again = app.post("/api/v1/data-requests/page", &dpo, json!({})).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        let campaign = app.get(&format!("/api/v1/campaigns/{}", published.body["campaign_id"].as_str().unwrap()), &dpo).await;
        assert_eq!(campaign.body["standing"], true, "{}", campaign.body);

        let page = public_get(&app, "/r").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        assert!(page.html.contains("name=\"kind\" value=\"erasure\""), "{}", page.html);
        let csrf = csrf_of(&page.html);

        // Refused: without the page's token, from another site, with a bad address or kind.
        let forged = ask(&app, "kind=access&email=jane.doe%40example.org").await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
        let cross_site = answer(app.client.post(app.public_url("/r")).header("content-type", FORM)
            .header("sec-fetch-site", "cross-site")
            .body(format!("csrf={csrf}&kind=access&email=jane.doe%40example.org"))).await;
        assert_eq!(cross_site.status, StatusCode::FORBIDDEN, "{}", cross_site.html);
        let other_origin = answer(app.client.post(app.public_url("/r")).header("content-type", FORM)
            .header("origin", "https://evil.example")
            .body(format!("csrf={csrf}&kind=access&email=jane.doe%40example.org"))).await;
        assert_eq!(other_origin.status, StatusCode::FORBIDDEN, "a token fetched elsewhere, posted from another site: {}", other_origin.html);
        let bad = ask(&app, &format!("csrf={csrf}&kind=everything&email=jane")).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
        assert!(bad.html.contains("Email address is not a valid email address"), "{}", bad.html);
        assert!(bad.html.contains("What you ask for is not one of: access, correction, erasure"), "{}", bad.html);
        assert!(requests(&app, &dpo).await.is_empty(), "nothing of the refused was kept");

        // Jane asks for her data; a stranger asks about an address nobody holds. Both are told the
        // same, both are recorded, only Jane is emailed.
        let asked = ask(&app, &format!("csrf={csrf}&kind=access&email=Jane.Doe%40example.org&details=Everything+since+2020")).await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.html);
        let stranger = ask(&app, &format!("csrf={csrf}&kind=erasure&email=nobody%40example.net")).await;
        assert_eq!(stranger.status, StatusCode::OK, "{}", stranger.html);
        assert_eq!(stranger.html, asked.html, "the answer says nothing about the address");
        let listed = requests(&app, &dpo).await;
        assert_eq!(listed.len(), 2, "{listed:?}");
        let (theirs, strangers) = (&listed[1], &listed[0]);
        assert_eq!(theirs.contact_id, Some(jane.id));
        assert_eq!(theirs.kind.as_str(), "access");
        assert_eq!(theirs.details.as_deref(), Some("Everything since 2020"));
        assert!(theirs.verified_at.is_none());
        assert_eq!(strangers.contact_id, None);
        assert_eq!(strangers.kind.as_str(), "erasure");

        // The email reaches Jane's address; a GET of its link verifies nothing, the button does.
        let message = messages_to(&sink, "Jane.Doe@example.org", 1).await.remove(0);
        let start = message.find("/v/").expect("a verification link") + 3;
        let token: String = message[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        assert_eq!(token.len(), 43, "{message}");
        let path = format!("/v/{token}");
        let shown = public_get(&app, &path).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.html);
        assert!(shown.html.contains("a copy of the data we hold about you"), "{}", shown.html);
        assert!(requests(&app, &dpo).await[1].verified_at.is_none(), "a GET verifies nothing");
        let forged = answer(app.client.post(app.public_url(&path)).header("content-type", FORM).body("csrf=00")).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
        let link_csrf: String = {
            let start = shown.html.find("name=\"csrf\" value=\"").unwrap() + 19;
            shown.html[start..].chars().take_while(|c| c.is_ascii_hexdigit()).collect()
        };
        let verified = answer(app.client.post(app.public_url(&path)).header("content-type", FORM)
            .body(format!("csrf={link_csrf}"))).await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.html);
        assert!(verified.html.contains("Your request is confirmed"), "{}", verified.html);
        let listed = requests(&app, &dpo).await;
        assert!(listed[1].verified_at.is_some(), "{listed:?}");
        assert!(listed[0].verified_at.is_none());
        // Sales staff do not see the requests.
        assert_eq!(app.get("/api/v1/data-requests", &sales).await.status, StatusCode::FORBIDDEN);
        assert!(assent_server::service::audit::verify(&app.db).await.unwrap().intact());
        let unknown = public_get(&app, &format!("/v/{}", "A".repeat(43))).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_request_is_recorded_and_verified_by_the_button_on_sqlite() {
    a_data_request_is_recorded_and_verified_by_the_button(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_request_is_recorded_and_verified_by_the_button_on_postgres() {
    a_data_request_is_recorded_and_verified_by_the_button(Backend::Postgres).await;
}
