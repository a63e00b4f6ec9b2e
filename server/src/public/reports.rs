//! `POST /mail/reports`: the bounce and complaint reports the organisation's mail system
//! forwards (the whole report as the body), with the configured secret as its bearer token
//! (`mail_reports_secret`); without one configured the address is not served. What each report
//! leads to is `service::reports`'s.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use super::client::Client;
use super::error::PageError;
use super::page::Page;
use super::unsubscribe;
use super::PublicState;
use crate::service::reports::{self, Taken};

/// Whether `headers` carry `secret` as their bearer token (compared as digests, so that the
/// time taken says nothing of how much of it matched).
fn authorised(headers: &HeaderMap, secret: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    Sha256::digest(given.as_bytes()) == Sha256::digest(secret.as_bytes())
}

pub async fn take(
    State(state): State<PublicState>,
    client: Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Page, PageError> {
    let Some(secret) = &state.reports_secret else {
        return Err(PageError::NotFound);
    };
    if !authorised(&headers, secret.expose()) {
        // A wrong secret counts as a bad token: guessing is slowed like guessing links.
        return Err(unsubscribe::bad_token(
            &state,
            &client,
            PageError::Unauthorised,
        ));
    }
    let body = unsubscribe::body(body)?;
    let taken = reports::take(&state.db, state.return_path.as_deref(), &body).await?;
    let text = match taken {
        Taken::AddressFlagged => {
            "The address the message went to is flagged as bouncing.".to_owned()
        }
        Taken::OptOut { recorded: 0 } => {
            "The complaint is noted: the person had already opted out.".to_owned()
        }
        Taken::OptOut { .. } => "The complaint is recorded as the person's opt-out.".to_owned(),
        Taken::Nothing => {
            "Nothing to do: the report is neither a hard bounce nor a complaint.".to_owned()
        }
    };
    Ok(Page::new("Report taken", None).paragraph(&text))
}
