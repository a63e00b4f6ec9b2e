//! The authenticated caller of a staff API request: its bearer token turned into the
//! [`Actor`] every service takes. The session rules are the services'
//! (`service::sessions::authenticate`); this only reads the header.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::Error;
use super::AppState;
use crate::service::{sessions, Actor};

/// A member of staff with a live session, as an actor.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let staff = sessions::authenticate(&state.db, &state.sessions, bearer_token(parts)).await?;
        Ok(Caller(Actor::Staff(staff)))
    }
}
