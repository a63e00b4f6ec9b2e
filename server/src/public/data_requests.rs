//! The data request page (`/r`): `GET` shows the form (address, what is asked, details), `POST`
//! records the request and says the same whatever the address; `/v/{token}` is the emailed
//! link: `GET` shows what would be confirmed with a button and changes nothing, `POST` verifies.
//! The decisions are the service's (`service::data_requests`).

use std::fmt::Write as _;

use assent_shared::domain::DataRequestKind;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::client::Client;
use super::error::PageError;
use super::page::Page;
use super::unsubscribe::{body, content_type, counted, fields, organisation, token};
use super::PublicState;
use crate::html::escape;
use crate::service::data_requests::{self, Ask, Verification, DETAILS_MAX};

/// The request form's name in its CSRF token, and how long a token drawn with the page lasts.
const FORM: &str = "data-request";
const FORM_MAX_AGE: i64 = 2 * 60 * 60;
/// The verification page's form's name in its CSRF token.
const VERIFY: &str = "verify";

/// What each kind of request is called on the page.
fn asked_for(kind: DataRequestKind) -> &'static str {
    match kind {
        DataRequestKind::Access => "a copy of the data we hold about you",
        DataRequestKind::Correction => "your data put right",
        DataRequestKind::Erasure => "your data erased",
    }
}

pub async fn page(State(state): State<PublicState>) -> Result<Page, PageError> {
    if !data_requests::offered(&state.db).await? {
        return Err(PageError::NotFound);
    }
    Ok(request_page(&state))
}

fn request_page(state: &PublicState) -> Page {
    let from = escape(organisation(state));
    let csrf = state.forms.stamped(FORM, crate::clock::now().timestamp());
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<p>Ask {from} about the data it holds about you. We will email you a link to confirm \
         the request comes from you, then answer within one month.</p>\n\
         <form method=\"post\">\n<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <fieldset>\n<legend>What you ask for</legend>"
    );
    for kind in DataRequestKind::ALL {
        let _ = writeln!(
            html,
            "<label><input type=\"radio\" name=\"kind\" value=\"{}\" required> {}</label>",
            kind.as_str(),
            escape(&capitalised(asked_for(*kind)))
        );
    }
    let _ = writeln!(
        html,
        "</fieldset>\n\
         <label for=\"email\">Your email address</label>\n\
         <input id=\"email\" type=\"email\" name=\"email\" autocomplete=\"email\" maxlength=\"254\" required>\n\
         <label for=\"details\">Anything we should know (optional)</label>\n\
         <textarea id=\"details\" name=\"details\" rows=\"4\" maxlength=\"{DETAILS_MAX}\"></textarea>\n\
         <p><button type=\"submit\">Send my request</button></p>\n</form>"
    );
    Page::new("Ask about your data", state.organisation.as_deref()).html(&html)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub async fn submit(
    State(state): State<PublicState>,
    client: Client,
    headers: HeaderMap,
    sent: Result<Bytes, BytesRejection>,
) -> Result<Page, PageError> {
    if !data_requests::offered(&state.db).await? {
        return Err(PageError::NotFound);
    }
    // Counted with the sign-ups: each may send an email to an address someone typed.
    let key = super::client::throttle_key(client.ip);
    let at = std::time::Instant::now();
    if let Err(wait) = state.signup_throttle.check("", key, at) {
        return Err(PageError::TooManySignups(wait));
    }
    state.signup_throttle.record_failure("", key, at);
    let sent = body(sent)?;
    let fields = fields(content_type(&headers), &sent)?;
    let value = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    // A browser names the page a form was posted from: only this site's own is taken (the
    // token names no link, so anyone can fetch one; another site's page cannot post it).
    let own = state
        .public_url
        .split_once("://")
        .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or_default()))
        .unwrap_or_default();
    let foreign_origin = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| !origin.eq_ignore_ascii_case(&own));
    let cross_site = super::forms::cross_site(&headers) || foreign_origin;
    let csrf = value("csrf").unwrap_or_default();
    let now = crate::clock::now().timestamp();
    if cross_site || !state.forms.check_stamped(FORM, &csrf, now, FORM_MAX_AGE) {
        return Err(PageError::Forbidden(
            "This form did not come from our page, or was open too long: open the page again."
                .into(),
        ));
    }
    let ask = Ask {
        email: value("email").unwrap_or_default(),
        kind: value("kind").unwrap_or_default(),
        details: value("details"),
    };
    data_requests::ask(&state.db, &state.signups, &ask).await?;
    let html = "<p class=\"done\" role=\"status\">Thank you: your request is recorded.</p>\n\
        <p>If we hold data about this address, we have emailed it a link: open it and press the \
        button there to confirm the request comes from you. We act on it once you have.</p>";
    Ok(Page::new("Request received", state.organisation.as_deref()).html(html))
}

pub async fn verification_page(
    State(state): State<PublicState>,
    client: Client,
    path: Result<Path<String>, PathRejection>,
) -> Result<Page, PageError> {
    let token = token(path)?;
    let verification = data_requests::verification(&state.db, &token).await;
    let verification = counted(&state, &client, verification)?;
    Ok(verify_page(&state, &token, &verification))
}

fn verify_page(state: &PublicState, token: &str, verification: &Verification) -> Page {
    let from = escape(organisation(state));
    let what = asked_for(verification.kind);
    if verification.verified {
        let html = format!(
            "<p class=\"done\" role=\"status\">Your request is confirmed: {from} will answer it \
             (you asked for {what}).</p>"
        );
        return Page::new("Request confirmed", state.organisation.as_deref()).html(&html);
    }
    if verification.expired {
        let html = "<p class=\"problem\">This link has run out, so nothing was confirmed. \
                    Please make your request again on our data request page.</p>";
        return Page::new("Link expired", state.organisation.as_deref()).html(html);
    }
    let csrf = state.forms.token(VERIFY, token);
    let html = format!(
        "<p>Please confirm that you asked {from} for {what}.</p>\n\
         <form method=\"post\">\n<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\">Yes, it was me</button>\n</form>\n\
         <p>If you did not ask, close this page: nothing is done unless you press the button.</p>"
    );
    Page::new("Confirm your request", state.organisation.as_deref()).html(&html)
}

pub async fn verify(
    State(state): State<PublicState>,
    client: Client,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    sent: Result<Bytes, BytesRejection>,
) -> Result<Page, PageError> {
    let token = token(path)?;
    let sent = body(sent)?;
    let fields = fields(content_type(&headers), &sent)?;
    if !super::forms::from_its_page(&state.forms, &headers, VERIFY, &token, &fields) {
        let known = data_requests::verification(&state.db, &token).await;
        return Err(super::forms::refused(
            &state,
            &client,
            known,
            "This form did not come from your confirmation page: open the link in the email again.",
        ));
    }
    let verified = data_requests::verify(&state.db, &token).await;
    let verified = counted(&state, &client, verified)?;
    Ok(verify_page(&state, &token, &verified))
}
