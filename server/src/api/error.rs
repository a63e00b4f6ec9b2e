//! The one mapping from what went wrong to an HTTP status and the API's error body
//! `{code, message, fields?, conflict?}`. Internal errors are logged here, with an id the client
//! is given, and their details never reach the client.

use std::time::Duration;

use assent_shared::api::{ApiError, ErrorCode, FieldError};
use assent_shared::validate::FieldErrors;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::service::ServiceError;
use crate::store::StoreError;

/// Everything a request can end in besides success: what a service refused or failed with, and
/// what the HTTP layer itself refuses before any service is called.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request body does not have the expected fields: {0}")]
    InvalidBody(String),
    /// A query string, content type or body that the HTTP layer cannot read.
    #[error("{0}")]
    BadRequest(String),
    /// A path whose id is not an id.
    #[error("{0}")]
    NoSuchObject(String),
    #[error("no such route")]
    RouteNotFound,
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// The limit, in bytes (a whole number of MiB).
    #[error("The request body is larger than {} MiB.", .0 / (1024 * 1024))]
    TooLarge(usize),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Service(e.into())
    }
}

impl From<FieldErrors> for Error {
    fn from(e: FieldErrors) -> Self {
        Error::Service(e.into())
    }
}

impl Error {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Error::Service(e) => match e {
                ServiceError::Invalid(_) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::ValidationFailed,
                ),
                ServiceError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
                ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
                ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
                ServiceError::Stale { .. } => (StatusCode::CONFLICT, ErrorCode::StaleVersion),
                ServiceError::Duplicate { .. } => (StatusCode::CONFLICT, ErrorCode::AlreadyExists),
                ServiceError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::StaleVersion),
                ServiceError::WrongState(_) => (StatusCode::CONFLICT, ErrorCode::WrongState),
                ServiceError::Unauthenticated(_) => {
                    (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated)
                }
                ServiceError::LoginFailed => (StatusCode::UNAUTHORIZED, ErrorCode::LoginFailed),
                ServiceError::Throttled(_) => {
                    (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyAttempts)
                }
                ServiceError::Store(_) | ServiceError::Auth(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
                }
            },
            Error::MalformedJson(_) => (StatusCode::BAD_REQUEST, ErrorCode::MalformedJson),
            Error::InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidBody),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            Error::NoSuchObject(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Error::RouteNotFound => (StatusCode::NOT_FOUND, ErrorCode::RouteNotFound),
            Error::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed)
            }
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::BodyTooLarge),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut body = ApiError {
            code,
            message: self.to_string(),
            fields: Vec::new(),
            conflict: None,
        };
        let mut retry_after = None;
        if let Error::Service(service) = self {
            match service {
                ServiceError::Invalid(FieldErrors(fields)) => {
                    body.message = match fields.as_slice() {
                        [one] => format!("{} {}", one.field, one.reason),
                        _ => format!("{} fields are invalid", fields.len()),
                    };
                    body.fields = fields;
                }
                ServiceError::Duplicate { field, .. } => {
                    body.fields = vec![FieldError {
                        field: field.to_owned(),
                        reason: "is already in use".to_owned(),
                    }];
                }
                ServiceError::Stale { conflict, .. } => body.conflict = Some(conflict),
                ServiceError::Throttled(wait) => {
                    let seconds = wait_seconds(wait);
                    retry_after = Some(seconds);
                    body.message =
                        format!("Too many failed attempts: try again in {seconds} seconds.");
                }
                ServiceError::Store(_) | ServiceError::Auth(_) => {
                    let incident = uuid::Uuid::now_v7();
                    // The detail is a database or library error, or a store error naming only a
                    // table, an id and a fixed problem: never personal data, which only ever
                    // travels in bound query parameters.
                    tracing::error!(%incident, error = %service, "internal error");
                    body.message = format!(
                        "Something went wrong on the server (incident {incident}). It has been logged."
                    );
                }
                _ => {}
            }
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

fn wait_seconds(wait: Duration) -> u64 {
    wait.as_secs().max(1)
}

pub type ApiResult<T> = Result<T, Error>;
