//! The domain services: everything Assent does, as functions that take the store and an
//! [`Actor`] and return domain results. Every caller shares them: the staff API, the command
//! line, and (with their issues) the send worker and the public pages. They decide permissions
//! from the actor, keep each change and its audit record in one transaction, and return personal data
//! only once the record of that read is committed (`store::audit::record_read`, a group commit).
//!
//! Architecture invariant: nothing here knows HTTP. A caller turns its own input into these
//! calls (the API turns a session into an [`Actor`]) and maps [`ServiceError`] to its own
//! answers, in one place per surface.

pub mod access;
pub mod actor;
pub mod audit;
pub mod campaigns;
pub mod communications;
pub mod companies;
pub mod contacts;
pub mod data_requests;
pub mod decisions;
pub mod evidence;
pub mod filters;
pub mod ledger;
pub mod names;
pub mod policy;
pub mod preferences;
pub mod reports;
pub mod seed;
pub mod sending;
pub mod sessions;
pub mod signups;
pub mod topics;
pub mod unsubscribe;
pub mod users;

use std::time::Duration;

use assent_shared::api::StaleVersion;
use assent_shared::domain::InvalidValue;
use assent_shared::validate::FieldErrors;
use uuid::Uuid;

pub use actor::{Actor, DataSubject, Staff};

use crate::auth::AuthError;
use crate::store::{cursor, StoreError, UniqueKey};

/// What a service can refuse, or fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Fields of the input are invalid; each is named.
    #[error("the request is invalid")]
    Invalid(FieldErrors),
    /// A parameter (a page size, a cursor, a format) is not one the service takes.
    #[error("{0}")]
    BadRequest(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The actor may not do this. The refusal is already in the audit trail.
    #[error("{0}")]
    Forbidden(String),
    /// The record changed since the version the change was made against; nothing was written.
    #[error("{message}")]
    Stale {
        message: String,
        conflict: StaleVersion,
    },
    /// A value that must be unique is taken.
    #[error("{message}")]
    Duplicate {
        field: &'static str,
        message: String,
    },
    /// The object's state does not allow this now; nothing was written.
    #[error("{0}")]
    WrongState(String),
    /// Another writer changed the same thing at the same moment; nothing was written.
    #[error("{0}")]
    Conflict(&'static str),
    /// No valid session: the reason, in words for the client.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The email address or password is wrong (the same answer for both).
    #[error("the email address or password is wrong")]
    LoginFailed,
    /// Too many failed logins: try again after this long.
    #[error("too many failed attempts")]
    Throttled(Duration),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// One invalid field.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, reason);
        ServiceError::Invalid(errors)
    }
}

impl From<FieldErrors> for ServiceError {
    fn from(errors: FieldErrors) -> Self {
        ServiceError::Invalid(errors)
    }
}

impl From<StoreError> for ServiceError {
    /// The one mapping of a taken unique value to what the caller is told.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(UniqueKey::UserEmail) => ServiceError::Duplicate {
                field: "email",
                message: "A user with this email address already exists.".into(),
            },
            StoreError::Duplicate(UniqueKey::SavedFilterName) => ServiceError::Duplicate {
                field: "name",
                message: "A saved filter with this name already exists.".into(),
            },
            StoreError::Duplicate(UniqueKey::Unlisted) => ServiceError::Conflict(
                "Someone else changed this at the same moment, so nothing was saved. Try again.",
            ),
            other => ServiceError::Store(other),
        }
    }
}

/// Page sizes for lists.
pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 200;

/// The page size a list asked for (`limit`), or the default.
pub fn page_size(limit: Option<i64>) -> ServiceResult<i64> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ServiceError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    Ok(limit)
}

/// One page of a list in name order: where it starts (the previous page's `next_cursor`) and how
/// long it is.
pub fn page(
    after: Option<&str>,
    limit: Option<i64>,
) -> ServiceResult<(Option<(String, Uuid)>, i64)> {
    let limit = page_size(limit)?;
    let after = match after.filter(|a| !a.is_empty()) {
        Some(text) => Some(cursor::decode(text).ok_or_else(|| {
            ServiceError::BadRequest("after is not a cursor from a previous page".into())
        })?),
        None => None,
    };
    Ok((after, limit))
}

/// The longest search text taken.
pub const SEARCH_MAX: usize = 200;

/// A search text as the store can hold and match it: absent when blank, at most [`SEARCH_MAX`]
/// characters and no control characters as sent (PostgreSQL cannot hold a NUL), trimmed. The
/// reason it is refused is the caller's to place: a query parameter, or a field of a body.
pub fn search_text(text: Option<&str>) -> Result<Option<String>, InvalidValue> {
    assent_shared::domain::parse_optional_text(text, SEARCH_MAX)
}

/// [`search_text`] for the `q` parameter of a list: a refusal is a 400.
pub fn search_query(text: Option<&str>) -> ServiceResult<Option<String>> {
    search_text(text)
        .map_err(|InvalidValue(reason)| ServiceError::BadRequest(format!("q {reason}")))
}
