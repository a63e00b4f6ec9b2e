//! The one mapping from what went wrong to an HTTP status and the API's error body
//! `{code, message, fields?}`. Internal errors are logged here, with an id the client is given,
//! and their details never reach the client.

use std::time::Duration;

use assent_shared::api::{ApiError, FieldError, StaleVersion};
use assent_shared::validate::FieldErrors;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::password::PasswordError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request body does not have the expected fields: {0}")]
    InvalidBody(String),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("the email address or password is wrong")]
    LoginFailed,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("no such route")]
    RouteNotFound,
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    #[error("{message}")]
    Stale {
        message: String,
        conflict: StaleVersion,
    },
    #[error("{message}")]
    Duplicate {
        field: &'static str,
        message: String,
    },
    #[error("too many failed attempts")]
    Throttled(Duration),
    #[error("the request body is too large")]
    TooLarge,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError {
            field: field.to_owned(),
            reason: reason.into(),
        }])
    }

    pub fn not_found(what: &str) -> Self {
        Error::NotFound(format!("no such {what}"))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            Error::InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            Error::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Error::LoginFailed => (StatusCode::UNAUTHORIZED, "login_failed"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::RouteNotFound => (StatusCode::NOT_FOUND, "route_not_found"),
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::Stale { .. } => (StatusCode::CONFLICT, "stale_version"),
            Error::Duplicate { .. } => (StatusCode::CONFLICT, "already_exists"),
            Error::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            Error::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<PasswordError> for Error {
    fn from(e: PasswordError) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<FieldErrors> for Error {
    fn from(e: FieldErrors) -> Self {
        Error::Validation(e.0)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            Error::Throttled(wait) => Some(wait.as_secs().max(1)),
            _ => None,
        };
        let mut body = ApiError {
            code: code.to_owned(),
            message: self.to_string(),
            fields: Vec::new(),
            conflict: None,
        };
        match self {
            Error::Validation(fields) => {
                body.message = match fields.as_slice() {
                    [one] => format!("{} {}", one.field, one.reason),
                    _ => format!("{} fields are invalid", fields.len()),
                };
                body.fields = fields;
            }
            Error::Duplicate { field, .. } => {
                body.fields = vec![FieldError {
                    field: field.to_owned(),
                    reason: "is already in use".to_owned(),
                }];
            }
            Error::Stale { conflict, .. } => body.conflict = Some(conflict),
            Error::Throttled(_) => {
                let seconds = retry_after.unwrap_or(1);
                body.message = format!("Too many failed attempts: try again in {seconds} seconds.");
            }
            Error::Internal(detail) => {
                let incident = uuid::Uuid::now_v7();
                // The detail is a database or library error: never personal data, which only
                // ever travels in bound query parameters.
                tracing::error!(%incident, error = %detail, "internal error");
                body.message = format!(
                    "Something went wrong on the server (incident {incident}). It has been logged."
                );
            }
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, Error>;
