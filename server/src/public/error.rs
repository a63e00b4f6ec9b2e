//! The one mapping from what went wrong on a public page to an HTTP status and an HTML page in
//! plain words. A page never echoes what it was sent (a token, a form's text) and never shows an
//! internal detail: an internal error is logged with an incident id, which the page gives.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::page::Page;
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A form or a forwarded email that cannot be read; the reason, in words for the person.
    #[error("{0}")]
    BadRequest(String),
    #[error("no such page")]
    NotFound,
    /// A machine's request without the credential it needs.
    #[error("not authorised")]
    Unauthorised,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// A form that did not come from its page (its CSRF token is missing or wrong); the reason,
    /// in words for the person.
    #[error("{0}")]
    Forbidden(String),
    #[error("the request is too large")]
    TooLarge,
    /// Too many bad links from this address: try again after this long.
    #[error("too many links that are not valid")]
    Throttled(Duration),
    /// Too many sign-ups (or data requests) from this address: try again after this long.
    #[error("too many sign-ups")]
    TooManySignups(Duration),
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Service(e.into())
    }
}

/// The page for a link that is not (or no longer) one of ours, whatever the reason.
const NOT_VALID: &str = "This link is not valid. It may have been cut short when it was copied: \
                         open it again from the message you received.";

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, text) = match &self {
            PageError::Service(ServiceError::NotFound(_)) | PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Link not valid",
                NOT_VALID.to_owned(),
            ),
            PageError::Service(
                ServiceError::BadRequest(reason) | ServiceError::WrongState(reason),
            )
            | PageError::BadRequest(reason) => (
                StatusCode::BAD_REQUEST,
                "Nothing was changed",
                format!("{reason} Nothing was recorded."),
            ),
            PageError::Service(ServiceError::Invalid(errors)) => (
                StatusCode::BAD_REQUEST,
                "Please check the form",
                format!(
                    "Go back to the form and check: {}. Nothing was recorded.",
                    errors
                        .0
                        .iter()
                        .map(|e| format!("{} {}", e.field, e.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            PageError::Service(ServiceError::Forbidden(reason)) => (
                StatusCode::FORBIDDEN,
                "Nothing was changed",
                format!("{reason} Nothing was recorded."),
            ),
            PageError::Service(ServiceError::Conflict(_)) => (
                StatusCode::CONFLICT,
                "Please try again",
                "Something else changed at the same moment, so nothing was recorded. Try again."
                    .to_owned(),
            ),
            PageError::Unauthorised => (
                StatusCode::UNAUTHORIZED,
                "Not authorised",
                "This address takes requests only from the organisation's own systems.".to_owned(),
            ),
            PageError::Forbidden(reason) => (
                StatusCode::FORBIDDEN,
                "Nothing was changed",
                format!("{reason} Nothing was recorded."),
            ),
            PageError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Not available",
                "This page cannot be used this way.".to_owned(),
            ),
            PageError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "What was sent is larger than this page takes. Nothing was recorded.".to_owned(),
            ),
            PageError::Throttled(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Please wait",
                format!(
                    "Too many links that are not valid came from your network. Try again in {} minutes.",
                    wait.as_secs().div_ceil(60).max(1)
                ),
            ),
            PageError::TooManySignups(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Please wait",
                format!(
                    "Too many forms were sent from your network. Try again in {} minutes.",
                    wait.as_secs().div_ceil(60).max(1)
                ),
            ),
            PageError::Service(service) => {
                let incident = uuid::Uuid::now_v7();
                // A database or library error, or a store error naming a table, an id and a fixed
                // problem: never personal data, which only travels in bound query parameters.
                tracing::error!(%incident, error = %service, "internal error on a public page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    format!(
                        "Something went wrong on our side, and nothing was recorded (incident {incident}). Please try again later."
                    ),
                )
            }
        };
        let mut response = Page::new(title, None)
            .status(status)
            .html(&format!(
                "<p class=\"problem\">{}</p>\n",
                crate::html::escape(&text)
            ))
            .into_response();
        if let PageError::Throttled(wait) | PageError::TooManySignups(wait) = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
        }
        response
    }
}
