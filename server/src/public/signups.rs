//! Sign-ups and their confirmation: `POST /s/{form}` takes the form the organisation pasted into
//! its website (posted from another origin, so it carries no CSRF token: it is checked by its
//! `Origin` against the form's sites, a field only bots fill in, and a limit per client address);
//! `/c/{token}` is the confirmation link: `GET` shows what would be confirmed and a button, and
//! changes nothing; `POST` (with its CSRF token) confirms, or sends a fresh link for an expired
//! one. The decisions are the service's (`service::signups`).

use std::fmt::Write as _;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use uuid::Uuid;

use super::client::{throttle_key, Client};
use super::error::PageError;
use super::page::Page;
use super::unsubscribe::{body, content_type, counted, fields, organisation, token};
use super::PublicState;
use crate::html::escape;
use crate::service::signups::{self, Confirmation, Confirming, SignUp, HONEYPOT};

/// The form's name in the confirmation page's CSRF token.
const FORM: &str = "confirm";

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub async fn submit(
    State(state): State<PublicState>,
    client: Client,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    sent: Result<Bytes, BytesRejection>,
) -> Result<Page, PageError> {
    // A form id that is not one is the same page as a form that does not exist.
    let form_id: Uuid = token(path)?.parse().map_err(|_| PageError::NotFound)?;
    let key = throttle_key(client.ip);
    let now = Instant::now();
    if let Err(wait) = state.signup_throttle.check("", key, now) {
        return Err(PageError::TooManySignups(wait));
    }
    state.signup_throttle.record_failure("", key, now);
    let sent = body(sent)?;
    let fields = fields(content_type(&headers), &sent)?;
    let value = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let wording_version = match value("wording") {
        Some(v) => Some(
            v.trim()
                .parse()
                .map_err(|_| PageError::BadRequest("The form could not be read.".into()))?,
        ),
        None => None,
    };
    let input = SignUp {
        email: value("email").unwrap_or_default(),
        first_name: value("first_name"),
        last_name: value("last_name"),
        topics: fields
            .iter()
            .filter(|(n, _)| n == "topic")
            .map(|(_, v)| v.clone())
            .collect(),
        wording_version,
        page: header(&headers, "referer"),
        origin: header(&headers, "origin"),
        ip: Some(client.ip),
        user_agent: client.user_agent.clone(),
    };
    let from = escape(organisation(&state));
    let check_email = |topics: &str| {
        format!(
            "<p class=\"done\" role=\"status\">Thank you. We email a link to the address you gave: open it and press the button there to confirm.</p>\n\
             <p>Until you confirm, {from} will send you no marketing.{topics}</p>\n\
             <p>If nothing arrives in a few minutes, look in your spam folder, or use the first email we sent you. If you did not mean to sign up, ignore the email.</p>"
        )
    };
    if value(HONEYPOT).is_some_and(|v| !v.trim().is_empty()) {
        // A bot filled in the field people never see: answered as anyone is, recorded nowhere.
        return Ok(
            Page::new("Check your email", state.organisation.as_deref()).html(&check_email(""))
        );
    }
    let signed_up = signups::sign_up(&state.db, &state.signups, form_id, &input).await;
    let signed_up = counted(&state, &client, signed_up)?;
    let names: Vec<String> = signed_up.topics.iter().map(|t| escape(&t.name)).collect();
    let topics = format!(" You asked to hear about: {}.", names.join(", "));
    // The same answer whatever the address did before: it tells nobody about a sign-up pending.
    Ok(Page::new("Check your email", state.organisation.as_deref()).html(&check_email(&topics)))
}

pub async fn page(
    State(state): State<PublicState>,
    client: Client,
    path: Result<Path<String>, PathRejection>,
) -> Result<Page, PageError> {
    let token = token(path)?;
    let confirmation = signups::confirmation(&state.db, &token).await;
    let confirmation = counted(&state, &client, confirmation)?;
    Ok(confirmation_page(&state, &token, &confirmation))
}

fn confirmation_page(state: &PublicState, token: &str, confirmation: &Confirmation) -> Page {
    let from = escape(organisation(state));
    let csrf = state.forms.token(FORM, token);
    let names: Vec<String> = confirmation
        .topics
        .iter()
        .map(|t| format!("<li>{}</li>", escape(&t.name)))
        .collect();
    let mut html = String::new();
    if confirmation.confirmed_at.is_some() {
        let _ = writeln!(
            html,
            "<p class=\"done\" role=\"status\">Your sign-up is confirmed: {from} may email you about</p>\n<ul>{}</ul>\n\
             <p><a href=\"../p/{token}\">Change what you hear about, or stop it</a> at any time.</p>",
            names.join("")
        );
        return Page::new("Sign-up confirmed", state.organisation.as_deref()).html(&html);
    }
    if confirmation.expired {
        let _ = writeln!(
            html,
            "<p class=\"problem\">This confirmation link has run out, so nothing was confirmed.</p>\n\
             <form method=\"post\">\n<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
             <button type=\"submit\" name=\"resend\" value=\"1\">Email me a new link</button>\n</form>"
        );
        return Page::new("Link expired", state.organisation.as_deref()).html(&html);
    }
    let wording = escape(&confirmation.wording).replace('\n', "<br>");
    let _ = writeln!(
        html,
        "<p>Please confirm that {from} may email you about:</p>\n<ul>{}</ul>\n\
         <p class=\"hint\">What you agreed to on the form: \u{201c}{wording}\u{201d}</p>\n\
         <form method=\"post\">\n<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\">Yes, confirm my sign-up</button>\n</form>\n\
         <p>If you did not sign up, close this page: nothing is confirmed unless you press the button.</p>",
        names.join("")
    );
    Page::new("Confirm your sign-up", state.organisation.as_deref()).html(&html)
}

pub async fn confirm(
    State(state): State<PublicState>,
    client: Client,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    sent: Result<Bytes, BytesRejection>,
) -> Result<Page, PageError> {
    let token = token(path)?;
    let sent = body(sent)?;
    let fields = fields(content_type(&headers), &sent)?;
    if !super::forms::from_its_page(&state.forms, &headers, FORM, &token, &fields) {
        let known = signups::confirmation(&state.db, &token).await;
        return Err(super::forms::refused(
            &state,
            &client,
            known,
            "This form did not come from your confirmation page: open the link in the email again.",
        ));
    }
    if fields.iter().any(|(name, _)| name == "resend") {
        let sent = signups::resend(&state.db, &state.signups, &token).await;
        let sent = counted(&state, &client, sent)?;
        let text = if sent {
            "We have emailed you a new link: open it and press the button there to confirm."
        } else {
            "A new link was sent a few minutes ago: open the newest email from us and press the button there."
        };
        let html = format!("<p class=\"done\" role=\"status\">{text}</p>");
        return Ok(Page::new("Check your email", state.organisation.as_deref()).html(&html));
    }
    let via = Confirming {
        page: format!("{}/c", state.public_url),
        ip: Some(client.ip),
        user_agent: client.user_agent.clone(),
    };
    // Confirmed now, before, or expired: the page drawn again says which.
    let confirmed = signups::confirm(&state.db, &state.signups, &token, &via).await;
    counted(&state, &client, confirmed)?;
    let confirmation = signups::confirmation(&state.db, &token).await;
    let confirmation = counted(&state, &client, confirmation)?;
    Ok(confirmation_page(&state, &token, &confirmation))
}
