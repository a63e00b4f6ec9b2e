//! `POST /sms/inbound`: the replies to text messages, as the SMS gateway forwards them (a form,
//! signed in `X-Twilio-Signature` with the gateway's auth token over this address as
//! `public_url` names it); without a gateway configured the address is not served. What a reply
//! leads to is `service::unsubscribe::text_reply`'s.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::client::Client;
use super::error::PageError;
use super::unsubscribe;
use super::PublicState;
use crate::service::unsubscribe::{text_reply, TextReply};

/// The path the gateway is configured to post replies to, under `public_url`.
pub const INBOUND_PATH: &str = "/sms/inbound";

pub async fn inbound(
    State(state): State<PublicState>,
    client: Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let Some(token) = &state.sms_auth_token else {
        return Err(PageError::NotFound);
    };
    let body = unsubscribe::body(body)?;
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let url = format!("{}{INBOUND_PATH}", state.public_url);
    let given = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !crate::sms::signed(token.expose(), &url, &fields, given) {
        // A forged or mistaken signature counts as a bad token: guessing is slowed.
        return Err(unsubscribe::bad_token(
            &state,
            &client,
            PageError::Unauthorised,
        ));
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let (Some(from), Some(text)) = (field("From"), field("Body")) else {
        return Err(PageError::BadRequest(
            "A reply needs its From and its Body.".into(),
        ));
    };
    let taken = text_reply(&state.db, from, text, field("MessageSid")).await?;
    match taken {
        TextReply::Stopped { contacts, recorded } => {
            tracing::info!(
                contacts,
                recorded,
                "a STOP reply was recorded as an opt-out of marketing by text"
            )
        }
        TextReply::NoOneHoldsTheNumber => {
            tracing::warn!("a STOP reply came from a number no contact holds: nothing was recorded")
        }
        TextReply::NotAStop => {}
    }
    // An empty TwiML answer: the gateway sends no reply of its own making.
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
    )
        .into_response())
}
