//! The unsubscribe page of a message (`/u/{token}`): `GET` shows what can be stopped, with one
//! button for the message's own topic and an "everything" choice, and changes nothing (link
//! scanners open links); `POST` records the choice, including the one-click POST of RFC 8058
//! (`List-Unsubscribe=One-Click`, or an empty body, which some clients send), and answers 200
//! only once the opt-out has committed: no redirect, no cookie, no login. `/unsubscribe/mail`
//! takes the requests that reached the unsubscribe mailbox, forwarded by the organisation's mail
//! system: the token is in the subject the `mailto:` link set.

use std::fmt::Write as _;
use std::time::Instant;

use assent_shared::ledger::{Channel, ALL_TOPICS};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};

use super::client::{throttle_key, Client};
use super::error::PageError;
use super::page::Page;
use super::PublicState;
use crate::html::escape;
use crate::service::unsubscribe::{self, Choice, Offer, Unsubscribed, Via, MAIL_SUBJECT};
use crate::service::ServiceError;

pub(super) fn token(path: Result<Path<String>, PathRejection>) -> Result<String, PageError> {
    path.map(|Path(token)| token)
        .map_err(|_| PageError::NotFound)
}

/// A body that was read within its limit, or the page that says why not.
pub(super) fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, PageError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            PageError::TooLarge
        } else {
            PageError::BadRequest("What was sent could not be read.".into())
        }
    })
}

/// A service's answer, with a bad token counted against the client: a client over the limit
/// waits (429), but only after its token was found bad, so a valid token is never refused.
pub(super) fn counted<T>(
    state: &PublicState,
    client: &Client,
    result: Result<T, ServiceError>,
) -> Result<T, PageError> {
    match result {
        Err(ServiceError::NotFound(_)) => Err(bad_token(state, client, PageError::NotFound)),
        other => other.map_err(PageError::Service),
    }
}

/// Counts a bad token (or secret) from `client`: `refusal` while under the limit, then a wait.
pub(super) fn bad_token(state: &PublicState, client: &Client, refusal: PageError) -> PageError {
    let key = throttle_key(client.ip);
    let now = Instant::now();
    if let Err(wait) = state.bad_tokens.check("", key, now) {
        return PageError::Throttled(wait);
    }
    state.bad_tokens.record_failure("", key, now);
    refusal
}

/// "by email", "by text message".
pub(super) fn by(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "by email",
        Channel::Sms => "by text message",
        Channel::Phone => "by phone",
        Channel::AutomatedCall => "by automated call",
        Channel::Post => "by post",
        Channel::Fax => "by fax",
        Channel::Any => "by any means",
    }
}

pub(super) fn organisation(state: &PublicState) -> &str {
    state.organisation.as_deref().unwrap_or("The sender")
}

pub async fn page(
    State(state): State<PublicState>,
    client: Client,
    path: Result<Path<String>, PathRejection>,
) -> Result<Page, PageError> {
    let token = token(path)?;
    let offer = unsubscribe::offer(&state.db, state.organisation.as_deref(), &token).await;
    let offer = counted(&state, &client, offer)?;
    Ok(offer_page(&state, &token, &offer))
}

fn offer_page(state: &PublicState, token: &str, offer: &Offer) -> Page {
    let from = escape(organisation(state));
    let by = by(offer.channel);
    let mut html = String::new();
    match &offer.topic {
        Some(topic) => {
            let name = escape(&topic.name);
            let _ = writeln!(
                html,
                "<p>{from} sent you this message about <strong>{name}</strong> {by}.</p>\n\
                 <form method=\"post\">\n<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n\
                 <button type=\"submit\">Unsubscribe from {name} {by}</button>\n</form>"
            );
        }
        None => {
            let _ = writeln!(
                html,
                "<p>{from} sent you this message about your account or a service you use. Messages \
                 like it are not marketing and keep coming while you use the service. Here you can \
                 stop marketing.</p>"
            );
        }
    }
    if !offer.topics.is_empty() {
        let _ = writeln!(
            html,
            "<h2>Choose what to stop</h2>\n<form method=\"post\">\n\
             <input type=\"hidden\" name=\"choice\" value=\"topics\">\n\
             <fieldset>\n<legend>Marketing {by} about</legend>"
        );
        for topic in &offer.topics {
            let checked = offer.topic.as_ref().is_some_and(|own| own.key == topic.key);
            let _ = writeln!(
                html,
                "<label><input type=\"checkbox\" name=\"topic\" value=\"{}\"{}> {}{}</label>",
                escape(&topic.key),
                if checked { " checked" } else { "" },
                escape(&topic.name),
                if topic.description.is_empty() {
                    String::new()
                } else {
                    format!("<small>{}</small>", escape(&topic.description))
                }
            );
        }
        let _ = writeln!(
            html,
            "</fieldset>\n<button type=\"submit\" class=\"quiet\">Stop the topics ticked</button>\n</form>"
        );
    }
    let _ = writeln!(
        html,
        "<h2>Or stop everything</h2>\n<form method=\"post\">\n\
         <input type=\"hidden\" name=\"choice\" value=\"everything\">\n\
         <button type=\"submit\" class=\"quiet\">Stop all marketing from {from}, by every channel</button>\n</form>\n\
         <p><a href=\"../p/{}\">See and change all your preferences</a></p>",
        escape(token)
    );
    Page::new("Unsubscribe", state.organisation.as_deref()).html(&html)
}

/// The `Content-Type` of a request, when it is text.
pub(super) fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// The fields of a form body: URL-encoded, or `multipart/form-data` (RFC 8058 allows both).
pub(super) fn fields(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<(String, String)>, PageError> {
    let multipart = content_type.and_then(|t| {
        let (kind, parameters) = t.split_once(';')?;
        if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
            return None;
        }
        parameters.split(';').find_map(|p| {
            let (name, value) = p.trim().split_once('=')?;
            name.eq_ignore_ascii_case("boundary")
                .then(|| value.trim_matches('"').to_owned())
        })
    });
    match multipart {
        Some(boundary) => multipart_fields(&boundary, body),
        None => Ok(form_urlencoded::parse(body).into_owned().collect()),
    }
}

/// The text fields of a `multipart/form-data` body.
fn multipart_fields(boundary: &str, body: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    let unreadable = || PageError::BadRequest("The form could not be read.".into());
    let body = std::str::from_utf8(body).map_err(|_| unreadable())?;
    let delimiter = format!("--{boundary}");
    let mut fields = Vec::new();
    for part in body.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let (head, value) = part.split_once("\r\n\r\n").ok_or_else(unreadable)?;
        let name = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .find_map(|l| {
                l.split(';').find_map(|p| {
                    let (key, value) = p.trim().split_once('=')?;
                    (key == "name").then(|| value.trim_matches('"').to_owned())
                })
            })
            .ok_or_else(unreadable)?;
        fields.push((name, value.strip_suffix("\r\n").unwrap_or(value).to_owned()));
    }
    Ok(fields)
}

/// What a POST asks to stop.
fn choice(content_type: Option<&str>, body: &[u8]) -> Result<Choice, PageError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        // Some mail clients send the one-click POST with an empty body.
        return Ok(Choice::ThisMessage);
    }
    let fields = fields(content_type, body)?;
    let value = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    match value("choice") {
        Some("everything") => Ok(Choice::Everything),
        Some("topics") => Ok(Choice::Topics(
            fields
                .iter()
                .filter(|(n, _)| n == "topic")
                .map(|(_, v)| v.clone())
                .collect(),
        )),
        Some(_) => Err(PageError::BadRequest(
            "This form is not one of this page's.".into(),
        )),
        None => match value("List-Unsubscribe") {
            Some(v) if v.eq_ignore_ascii_case("One-Click") => Ok(Choice::ThisMessage),
            _ => Err(PageError::BadRequest(
                "This form is not one of this page's.".into(),
            )),
        },
    }
}

pub async fn submit(
    State(state): State<PublicState>,
    client: Client,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Page, PageError> {
    let token = token(path)?;
    let body = self::body(body)?;
    let choice = choice(content_type(&headers), &body)?;
    let via = Via::Link {
        page: format!("{}/u", state.public_url),
        ip: Some(client.ip),
        user_agent: client.user_agent.clone(),
    };
    let done = unsubscribe::opt_out(
        &state.db,
        state.organisation.as_deref(),
        &token,
        &choice,
        &via,
    )
    .await;
    let done = counted(&state, &client, done)?;
    Ok(done_page(&state, &token, &done))
}

fn done_page(state: &PublicState, token: &str, done: &Unsubscribed) -> Page {
    let from = escape(organisation(state));
    let mut html = String::new();
    for scope in &done.scopes {
        let _ = if scope.topic == ALL_TOPICS {
            writeln!(
                html,
                "<p class=\"done\">{from} will send you no more marketing of any kind, by any channel.</p>"
            )
        } else {
            writeln!(
                html,
                "<p class=\"done\">{from} will send you no more marketing about <strong>{}</strong> {}.</p>",
                escape(&scope.name),
                by(scope.channel)
            )
        };
    }
    let _ = writeln!(
        html,
        "<p>Messages about your account or a service you use are not marketing and may still reach you. \
         If you change your mind, tell {from}.</p>\n\
         <p><a href=\"../p/{}\">See and change all your preferences</a></p>",
        escape(token)
    );
    let title = if done.recorded == 0 {
        "You were already unsubscribed"
    } else {
        "You are unsubscribed"
    };
    Page::new(title, state.organisation.as_deref()).html(&html)
}

/// The token in the subject of a forwarded email: the last run of 43 token characters.
fn token_in_subject(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .split("\n\n")
        .next()
        .unwrap_or_default();
    // Unfold the header lines (RFC 5322 2.2.3), then find the subject.
    let unfolded = head
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", " ");
    let subject = unfolded.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("subject").then_some(value)
    })?;
    subject
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .rev()
        .find(|word| crate::auth::looks_like_token(word))
        .map(str::to_owned)
}

pub async fn forwarded_mail(
    State(state): State<PublicState>,
    client: Client,
    body: Result<Bytes, BytesRejection>,
) -> Result<Page, PageError> {
    let body = self::body(body)?;
    let token = token_in_subject(&body).ok_or_else(|| {
        PageError::BadRequest(format!(
            "The forwarded email has no unsubscribe token in its subject (\"{MAIL_SUBJECT} <token>\", as the unsubscribe link sets it)."
        ))
    })?;
    let via = Via::Email {
        mailbox: state.unsubscribe_mailto.clone(),
    };
    let done = unsubscribe::opt_out(
        &state.db,
        state.organisation.as_deref(),
        &token,
        &Choice::ThisMessage,
        &via,
    )
    .await;
    let done = counted(&state, &client, done)?;
    Ok(done_page(&state, &token, &done))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";

    #[test]
    fn the_one_click_post_is_read_in_each_form_rfc_8058_allows() {
        let form = Some("application/x-www-form-urlencoded");
        assert_eq!(choice(form, b"").unwrap(), Choice::ThisMessage);
        assert_eq!(
            choice(form, b"List-Unsubscribe=One-Click").unwrap(),
            Choice::ThisMessage
        );
        let multipart = "multipart/form-data; boundary=\"xyz\"";
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--xyz--\r\n";
        assert_eq!(choice(Some(multipart), body).unwrap(), Choice::ThisMessage);
        assert_eq!(
            choice(form, b"choice=topics&topic=boilers&topic=insurance").unwrap(),
            Choice::Topics(vec!["boilers".into(), "insurance".into()])
        );
        assert_eq!(
            choice(form, b"choice=everything").unwrap(),
            Choice::Everything
        );
        assert!(choice(form, b"List-Unsubscribe=Maybe").is_err());
        assert!(choice(form, b"choice=nothing").is_err());
        assert!(choice(Some(multipart), b"--xyz\r\nno head\r\n--xyz--").is_err());
    }

    #[test]
    fn the_token_is_found_in_a_forwarded_subject() {
        assert_eq!(TOKEN.len(), 43);
        let mail = format!(
            "From: someone@example.org\r\nSubject: Fwd: {MAIL_SUBJECT}\r\n {TOKEN}\r\n\r\nBody {}\r\n",
            TOKEN.replace('A', "B")
        );
        assert_eq!(token_in_subject(mail.as_bytes()).as_deref(), Some(TOKEN));
        assert_eq!(
            token_in_subject(b"Subject: Unsubscribe me\r\n\r\nplease"),
            None
        );
        assert_eq!(
            token_in_subject(format!("From: x\n\nSubject: {TOKEN}\n").as_bytes()),
            None,
            "only the header counts"
        );
    }
}
