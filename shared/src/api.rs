//! The request and response bodies of the Assent HTTP API (`/api/v1`), as both sides see them.
//!
//! Inputs hold what the client typed, as strings; [`crate::validate`] turns them into valid
//! domain values or a list of field errors. Outputs hold values that were valid when stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Role, SubscriberKind, SystemJob};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The one error shape of the API. `code` is stable and machine-readable; `message` is a sentence
/// for people; `fields` names each invalid input field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// On a 409 for a stale update: who changed the record first, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<StaleVersion>,
}

/// What went wrong, for programs: the server emits these and clients branch on them. Each has
/// one HTTP status (docs/API.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 422: fields are invalid; `fields` names each.
    ValidationFailed,
    /// 400: a query parameter, a cursor or the content type is wrong.
    BadRequest,
    /// 400: the body is not JSON.
    MalformedJson,
    /// 422: the JSON does not have the expected shape.
    InvalidBody,
    /// 401: no valid session.
    Unauthenticated,
    /// 401: wrong email address or password.
    LoginFailed,
    /// 403: the role or the rights over the object are missing.
    Forbidden,
    /// 404: no such object.
    NotFound,
    /// 404: no such route.
    RouteNotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409: the record changed since the version sent (`conflict` says by whom), or another
    /// change met this one at the same moment (no `conflict`): nothing was written.
    StaleVersion,
    /// 409: the object's state does not allow this now (a campaign already sending cannot be
    /// edited; only a submitted one can be approved).
    WrongState,
    /// 409: a value that must be unique is taken; `fields` names it.
    AlreadyExists,
    /// 413: the body is over the limit.
    BodyTooLarge,
    /// 429: too many failed attempts; see `Retry-After`.
    TooManyAttempts,
    /// 500: logged on the server under the incident id in `message`.
    Internal,
    /// 503: the request took too long and was dropped.
    Unavailable,
    /// A code this client does not know (a newer server): branch on the status instead.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it is written in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::LoginFailed => "login_failed",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::StaleVersion => "stale_version",
            ErrorCode::WrongState => "wrong_state",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FieldError {
    /// The input field, as a path: `emails[1]`, `address.postcode`.
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// Who did something, as a record names them: a member of staff, a data subject (through the
/// public pages), or Assent itself (which job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActorRef {
    /// A user of the CRM.
    Staff { id: Uuid },
    /// A person in the CRM, acting for themselves: `id` is their contact.
    DataSubject { id: Uuid },
    /// Assent itself.
    System { job: SystemJob },
}

// ---- sessions -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// A name for this device ("Reception PC", "Jane's laptop"), used to revoke it if stolen.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::DeviceName))]
    pub device_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LoginResponse {
    /// The bearer token: send it as `Authorization: Bearer <token>`. Shown once; the server keeps
    /// only its hash.
    pub token: String,
    pub session: SessionInfo,
    pub user: User,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SessionInfo {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_name: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// When the session ends if it is not used before then.
    pub idle_expires_at: DateTime<Utc>,
    /// When the session ends whatever happens.
    pub absolute_expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// True for the session that made this request.
    #[serde(default)]
    pub current: bool,
}

/// Revokes every live session of a user, or only those of one of the user's devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RevokeSessions {
    pub user_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::OptionalDeviceName>))]
    pub device_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RevokedCount {
    pub revoked: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PasswordChange {
    pub current_password: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::NewPassword))]
    pub new_password: String,
}

// ---- users ----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    pub id: Uuid,
    /// Moves on with every change; an update names the version it was made against.
    pub version: i64,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NewUser {
    /// An email address (checked as the server parses addresses; refused with 422).
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
    pub display_name: String,
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub roles: Vec<Role>,
    /// At least 12 characters and not a commonly used password.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::NewPassword))]
    pub password: String,
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UserUpdate {
    /// The version the change was made against: if the user changed since, the answer is 409
    /// and nothing is written.
    #[serde(deserialize_with = "crate::whole::i64")]
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::Name>))]
    pub display_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub roles: Option<Vec<Role>>,
    /// `false` deactivates the user: their sessions stop working on the next request.
    pub active: Option<bool>,
}

// ---- companies and contacts -----------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PostalAddress {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::schema::OptionalName>, max_items = 4))]
    pub lines: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::OptionalName>))]
    pub town: Option<String>,
    /// Validated and normalised as a UK postcode when `country` is `GB` (refused with 422 when it
    /// is not one); otherwise one line of up to 20 characters.
    pub postcode: Option<String>,
    /// ISO 3166-1 alpha-2; `GB` when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::Country>))]
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CompanyInput {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
    pub name: String,
    /// A UK company number: eight digits (fewer are padded) or two letters and six digits.
    pub registration_number: Option<String>,
    pub address: Option<PostalAddress>,
    /// A role or generic address (sales@...), not a named person's.
    pub generic_email: Option<String>,
    pub generic_phone: Option<String>,
    /// Required when updating: the version the change was made against.
    #[serde(default, deserialize_with = "crate::whole::option_i64")]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Company {
    pub id: Uuid,
    pub version: i64,
    pub name: String,
    pub registration_number: Option<String>,
    pub address: Option<PostalAddress>,
    pub generic_email: Option<String>,
    pub generic_phone: Option<String>,
    /// The member of staff responsible for it; none until someone is given it.
    pub owner_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: ActorRef,
    pub updated_at: DateTime<Utc>,
    pub updated_by: ActorRef,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ContactInput {
    /// A contact needs a first or a last name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::OptionalName>))]
    pub first_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::OptionalName>))]
    pub last_name: Option<String>,
    /// Email addresses, each once.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub emails: Vec<String>,
    /// Any format; numbers without a country code are read as UK numbers. Stored as E.164, each
    /// once.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub phones: Vec<String>,
    pub address: Option<PostalAddress>,
    pub company_id: Option<Uuid>,
    /// `individual` unless given. Sole traders and ordinary partnerships are individuals.
    pub subscriber_kind: Option<SubscriberKind>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::OptionalName>))]
    pub job_title: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::Notes>))]
    pub notes: Option<String>,
    /// Only a manager may give a contact to another owner; the creator owns it otherwise.
    pub owner_id: Option<Uuid>,
    /// Required when updating: the version the change was made against.
    #[serde(default, deserialize_with = "crate::whole::option_i64")]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Contact {
    pub id: Uuid,
    pub version: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub address: Option<PostalAddress>,
    pub company_id: Option<Uuid>,
    pub subscriber_kind: SubscriberKind,
    pub job_title: Option<String>,
    pub notes: Option<String>,
    /// The member of staff responsible for the contact; none for a contact nobody has been given
    /// yet (a sign-up through the public pages). Sales staff edit the contacts they own.
    pub owner_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: ActorRef,
    pub updated_at: DateTime<Utc>,
    pub updated_by: ActorRef,
}

/// One line of a contact list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ContactSummary {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_id: Option<Uuid>,
    pub company_name: Option<String>,
    pub owner_id: Option<Uuid>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ContactPage {
    pub items: Vec<ContactSummary>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CompanyPage {
    pub items: Vec<Company>,
    pub next_cursor: Option<String>,
}

/// One changed field of a contact or company, kept so that every change of personal data can be
/// shown and explained (UK GDPR Art. 5(1)(d) and 16).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FieldChange {
    /// The version the change produced.
    pub version: i64,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub changed_by: ActorRef,
    pub changed_at: DateTime<Utc>,
}

/// The body of a 409: someone else changed the record first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StaleVersion {
    pub current_version: i64,
    /// Who made the change, and the name they are shown by.
    pub updated_by: ActorRef,
    pub updated_by_name: String,
    pub updated_at: DateTime<Utc>,
}

/// The version a deactivation is made against.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VersionOnly {
    #[serde(deserialize_with = "crate::whole::i64")]
    pub version: i64,
}

// ---- the consent ledger ---------------------------------------------------------------------

/// Where an event's evidence comes from: the form and connection of a web sign-up, the
/// reference of a paper form, the recording of a call. At most 2000 characters each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct EventSource {
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::LedgerText>))]
    pub form_url: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::LedgerText>))]
    pub ip: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::LedgerText>))]
    pub user_agent: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::LedgerText>))]
    pub paper_reference: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::LedgerText>))]
    pub recording_reference: Option<String>,
    /// The email address or phone number the event was given for, where it names one (a
    /// sign-up's consent covers the address that was confirmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::LedgerText>))]
    pub contact_point: Option<String>,
}

/// A ledger event to record, in the vocabulary of the compliance scenarios (`type`, `at` and
/// the fields of its type), with its source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NewLedgerEvent {
    #[serde(flatten)]
    pub event: crate::ledger::LedgerEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<EventSource>,
}

/// Who recorded a ledger event, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RecordedVia {
    /// A user of the CRM (`recorded_by` names them).
    User,
    /// The data subject, through the public pages (`recorded_by` is their contact).
    DataSubject,
    /// An import of an earlier ledger (`recorded_by` names who imported it).
    Import,
    /// Assent itself, such as the sender recording a bounce (`recorded_by` is the job's id).
    System,
}

impl RecordedVia {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordedVia::User => "user",
            RecordedVia::DataSubject => "data_subject",
            RecordedVia::Import => "import",
            RecordedVia::System => "system",
        }
    }
}

/// A ledger event as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RecordedEvent {
    pub id: Uuid,
    pub contact_id: Uuid,
    /// The event's place in the contact's ledger, from 1.
    pub seq: i64,
    /// The id the event had in an imported file.
    pub external_id: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it, as `recorded_via` says: the user who recorded or imported it, the
    /// contact themselves, or the job. None only for events recorded before Assent named every
    /// recorder.
    pub recorded_by: Option<Uuid>,
    /// Who recorded it, in words ("Sam Patel", "the person, through the public pages").
    pub recorded_by_name: Option<String>,
    pub recorded_via: RecordedVia,
    /// The event: `type` and its fields; a consent's `wording` is the exact text shown.
    pub event: crate::ledger::EventKind,
    /// The version of the consent wording (consents only).
    pub wording_version: Option<i64>,
    pub source: Option<EventSource>,
}

/// A consent wording as recorded: each distinct text once, numbered in order of first use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConsentWording {
    pub id: Uuid,
    pub version: i64,
    /// The exact words shown to the person.
    pub text: String,
    pub first_used_at: DateTime<Utc>,
}

/// A page of consent wordings, newest version first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConsentWordingPage {
    pub items: Vec<ConsentWording>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// The answer to an import: how many events were added.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ImportSummary {
    pub imported: u64,
}

// ---- the compliance policy and decisions ----------------------------------------------------

/// One version of the organisation's compliance policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PolicyVersion {
    /// 0 is the built-in default, in force until the first change.
    pub version: i64,
    pub policy: crate::ledger::Policy,
    pub changed_by: Option<Uuid>,
    pub changed_at: DateTime<Utc>,
    pub note: Option<String>,
}

/// A new version of the policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PolicyChange {
    pub policy: crate::ledger::Policy,
    /// Why it changed, for the record.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::PolicyNote>))]
    pub note: Option<String>,
}

// ---- campaigns ------------------------------------------------------------------------------

/// What a campaign says and to whom: the part an approval covers (its hash is the campaign's
/// `content_hash`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// What staff call it (not shown to recipients).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
    pub name: String,
    /// Marketing or service, the channel, the topic (from the catalogue; required for
    /// marketing) and any third party.
    pub message: crate::ledger::Message,
    /// The email's subject, with merge fields; required for email, none for other channels.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::Name>))]
    pub subject: Option<String>,
    /// The body, with merge fields (`{{first_name}}`, `{{first_name|there}}`): CommonMark for
    /// email, plain text otherwise. Marketing email must hold `{{unsubscribe_url}}`; marketing SMS
    /// an opt-out instruction (`STOP` or `{{unsubscribe_url}}`).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Wording))]
    pub body: String,
    pub audience: Audience,
}

/// A change of a campaign: its new content and the version it was made against.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CampaignEdit {
    pub content: CampaignInput,
    #[serde(deserialize_with = "crate::whole::i64")]
    pub version: i64,
}

/// A manager's approval: of the content they read and the audience their preview showed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CampaignApproval {
    #[serde(deserialize_with = "crate::whole::i64")]
    pub version: i64,
    /// The `content_hash` of the campaign as read.
    pub content_hash: String,
    /// The `audience_hash` of the preview seen.
    pub audience_hash: String,
}

/// A manager sending a campaign back, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CampaignRejection {
    #[serde(deserialize_with = "crate::whole::i64")]
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Wording))]
    pub reason: String,
}

/// A campaign, or a one-off message (an audience of one contact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Campaign {
    pub id: Uuid,
    pub version: i64,
    pub content: CampaignInput,
    /// SHA-256 of the content, hex: what an approval names.
    pub content_hash: String,
    pub state: crate::domain::CampaignState,
    /// Phrases of the organisation's marketing list found in a service message, for the
    /// approver ("greeting cards are marketing"): such a message needs a manager's approval.
    pub flags: Vec<String>,
    pub author_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// Who last changed it (its content or its state), and when.
    pub updated_by: Uuid,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// The manager who approved or rejected it, and when.
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    /// The audience frozen at approval: how many members, and the hash of their ids.
    pub frozen_members: Option<i64>,
    pub audience_hash: Option<String>,
    /// A standing campaign sends a sign-up form's confirmations as people sign up: it is always
    /// sending, and is never edited, paused or finished by hand (retiring the form stops it).
    #[serde(default)]
    pub standing: bool,
}

/// A page of campaigns, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CampaignPage {
    pub items: Vec<Campaign>,
}

/// Where each recipient of a campaign stands, live while it sends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CampaignProgress {
    pub state: crate::domain::CampaignState,
    pub total: u64,
    pub queued: u64,
    /// Claimed by a worker: being decided or handed over now.
    pub in_flight: u64,
    pub sent: u64,
    pub failed: u64,
    /// The worker stopped while it held them: they may have been sent, and are not sent again
    /// on their own.
    pub indeterminate: u64,
    /// Decided again and refused, or not sendable (a missing merge field, no address).
    pub not_sent: u64,
}

/// A recipient whose message may or may not have gone out: the worker stopped (or the relay fell
/// silent) after the hand-over began. Never sent again on its own; the author or a manager may
/// choose to send it again (`POST /campaigns/{id}/indeterminate/resend`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IndeterminateRecipient {
    pub contact_id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The address or number the message was handed over to, when the sender got that far.
    pub contact_point: Option<String>,
    /// The Message-ID it carried: what to look for at the relay or in the recipient's mailbox.
    pub message_id: String,
    /// Why it is not known: `lease_expired` (the worker stopped while it held it) or
    /// `no_reply_after_message` (the relay fell silent after the message).
    pub outcome: Option<String>,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// The indeterminate recipients of a campaign: how many, and the first 1,000 by contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IndeterminateRecipients {
    pub total: u64,
    pub items: Vec<IndeterminateRecipient>,
}

/// The explicit choice to send indeterminate recipients their message again: each is named, and
/// each is decided again before it goes (a person who opted out meanwhile gets nothing). The
/// message keeps its Message-ID, so a copy that did arrive the first time is recognisable.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct IndeterminateResend {
    #[serde(deserialize_with = "crate::whole::i64")]
    pub version: i64,
    /// The recipients to send again (1 to 1,000), each an indeterminate one of this campaign.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub contact_ids: Vec<Uuid>,
}

/// A test send: the campaign as its first sendable recipient would get it (their merge values,
/// links that reach no one), sent to the address of the member of staff who asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CampaignTestSend {
    /// The staff member's own address.
    pub to: String,
    /// The test's own Message-ID (never one a recipient's message carries).
    pub message_id: String,
    /// Whether the relay (or the maildir) took it.
    pub delivered: bool,
    /// `accepted`, or what the relay answered, in words.
    pub outcome: String,
}

/// What the author and the approver see before approval: the audience through the engine now,
/// the recipients who cannot be sent it (a missing merge field, no address on the channel), and
/// one message rendered for the first member who would get it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CampaignPreview {
    pub content_hash: String,
    /// SHA-256 of the member ids, hex: an approval names the hash of the preview it followed.
    pub audience_hash: String,
    pub decisions: AudienceDecisionResponse,
    /// Members among the first 1,000 decisions whom the engine allows but who still cannot be
    /// sent it, and why (the first 100 of them).
    pub unsendable: Vec<Unsendable>,
    /// How many such members the first 1,000 decisions hold (the send records the rest as
    /// `not_sent` with the same reasons).
    pub unsendable_count: u64,
    pub sample: Option<RenderedMessage>,
    /// The names of the people the preview shows by name: the first 100 the engine leaves out,
    /// the unsendable listed above and the sample's recipient, in contact id order. The preview
    /// is recorded as a read of each of them.
    pub names: Vec<PersonName>,
}

/// A contact's name, as a list that names people shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PersonName {
    pub contact_id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// A member who cannot be sent the message, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Unsendable {
    pub contact_id: Uuid,
    /// `missing_merge_field` (with `field`), `no_contact_point`, or `address_bouncing` (every
    /// address of the channel is flagged as bouncing).
    pub reason: String,
    pub field: Option<String>,
}

/// One message as its recipient would get it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RenderedMessage {
    pub contact_id: Uuid,
    /// The address or number it goes to.
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
    /// Email only.
    pub html: Option<String>,
}

/// One entry of a contact's communication log: the warrant the sender wrote when it decided
/// this contact for a message (allowed or not), and where that message stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Communication {
    pub warrant_id: Uuid,
    pub contact_id: Uuid,
    /// The campaign or one-off message; a logged call or letter is a one-off message of its own.
    pub campaign_id: Uuid,
    /// What staff call the campaign.
    pub campaign_name: String,
    /// Kind, channel, topic and third party, as decided.
    pub message: crate::ledger::Message,
    /// The address or number it went to (none when it was not sent).
    pub contact_point: Option<String>,
    /// The Message-ID it carried (derived from the campaign and the contact).
    pub message_id: String,
    /// The engine's decision at send time.
    pub allowed: bool,
    pub basis: Option<crate::ledger::Basis>,
    /// Why it was refused: the engine's reasons, or `contact_inactive`.
    pub reasons: Vec<String>,
    /// The ledger events (their `seq`) the decision rests on.
    pub evidence_seqs: Vec<i64>,
    pub policy_version: i64,
    pub author_id: Uuid,
    pub approver_id: Option<Uuid>,
    pub decided_at: DateTime<Utc>,
    /// Where the message stands now.
    pub delivery: crate::domain::OutboxState,
    /// The last result: `accepted`, the relay's reply, a bounce or why it was not sent.
    pub outcome: Option<String>,
    /// When the delivery last changed.
    pub delivery_updated_at: DateTime<Utc>,
}

/// A call, letter or fax logged on a contact by staff: marketing is decided first, like a message
/// the sender sends, and gets its warrant; one the engine refused is still recorded, with its
/// "not allowed" warrant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewLoggedCommunication {
    /// Marketing or service; the channel (`phone`, `automated_call`, `post` or `fax`: email and
    /// SMS are sent as campaigns); the topic (required for marketing) and any third party.
    pub message: crate::ledger::Message,
    /// When it happened; now when left out. Not in the future.
    pub at: Option<DateTime<Utc>>,
    /// The number called or the address written to; for a call or fax, the contact's first
    /// number when left out.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::OptionalName>))]
    pub contact_point: Option<String>,
    /// What was said or sent, in a few words, for the record (never shown to the person).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Notes))]
    pub summary: String,
}

// ---- the topic catalogue --------------------------------------------------------------------

/// One topic of the organisation's catalogue: what a marketing message is about, and what
/// people choose in or out of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TopicEntry {
    /// The key the ledger, the policy and campaigns use (`boiler-cover`); it never changes.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::TopicKey))]
    pub key: String,
    /// The topic in a few words, as people see it (`Boiler cover`).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
    pub name: String,
    /// A sentence or two shown to people where they choose (the unsubscribe page, the preference
    /// centre).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::TopicDescription))]
    pub description: String,
    /// No longer offered to new campaigns. A topic is retired, never removed, so that what was
    /// sent about it, and what people chose, stays named.
    #[serde(default)]
    pub retired: bool,
}

/// One version of the topic catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TopicCatalogue {
    /// 0 is the empty catalogue in force until the first change.
    pub version: i64,
    pub topics: Vec<TopicEntry>,
    /// Groups of topic keys that count as similar for the soft opt-in (PECR reg 22(3)(b)); each
    /// version puts its groups into a policy version of the same moment.
    pub similar: Vec<Vec<String>>,
    pub changed_by: Option<Uuid>,
    pub changed_at: DateTime<Utc>,
    pub note: Option<String>,
}

/// A new version of the topic catalogue: every topic (none of the last version's left out) and
/// the similar groups.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TopicCatalogueChange {
    pub topics: Vec<TopicEntry>,
    #[serde(default)]
    pub similar: Vec<Vec<String>>,
    /// Why it changed, for the record.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::schema::PolicyNote>))]
    pub note: Option<String>,
}

/// May this message be sent to this contact?
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DecisionRequest {
    pub contact_id: Uuid,
    pub message: crate::ledger::Message,
    /// For a corporate contact: false when the message goes to a role or generic address rather
    /// than to the named person. Default true.
    pub named_person: Option<bool>,
    /// Ask as of a past moment: the ledger as it was known then and the policy then in force.
    pub as_of: Option<DateTime<Utc>>,
}

/// The engine's answer, with its basis, reasons, evidence and explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DecisionResponse {
    pub contact_id: Uuid,
    pub allowed: bool,
    pub basis: Option<crate::ledger::Basis>,
    pub reasons: Vec<crate::ledger::Reason>,
    /// The ledger events the decision rests on.
    pub evidence: Vec<Uuid>,
    /// In plain words, citing the rule.
    pub explanation: String,
    /// The moment decided for: now, or the `as_of` asked.
    pub decided_for: DateTime<Utc>,
    pub policy_version: i64,
}

/// Who an audience is: a list of contacts, or every contact a search matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// These contacts (deactivated ones are left out and counted).
    ContactIds(Vec<Uuid>),
    /// The active contacts a search finds (as `GET /api/v1/contacts?q=`); blank is everyone.
    Search(SearchText),
    /// Every active contact.
    Everyone,
    /// The active contacts a saved filter finds now.
    SavedFilter(Uuid),
}

/// The text of a search, as `GET /api/v1/contacts?q=` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(transparent)]
pub struct SearchText(pub String);

/// May this message be sent to each of these contacts?
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AudienceDecisionRequest {
    pub audience: Audience,
    pub message: crate::ledger::Message,
    /// For corporate contacts: false when the message goes to role or generic addresses.
    pub named_person: Option<bool>,
    pub as_of: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page of per-contact decisions.
    pub after: Option<Uuid>,
    /// Per-contact decisions per page (default 100).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    #[serde(default, deserialize_with = "crate::whole::option_i64")]
    pub limit: Option<i64>,
}

/// One contact's answer within an audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AudienceMember {
    pub contact_id: Uuid,
    pub allowed: bool,
    pub basis: Option<crate::ledger::Basis>,
    pub reasons: Vec<crate::ledger::Reason>,
    /// The ledger events the answer rests on, by their place (`seq`) in the contact's ledger.
    pub evidence_seqs: Vec<i64>,
}

/// A count of contacts with one basis or one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Count<T> {
    pub key: T,
    pub contacts: u64,
}

/// The audience's answer: counts over everyone, and a page of per-contact decisions in contact id
/// order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AudienceDecisionResponse {
    /// The active contacts the audience names, each decided.
    pub total: u64,
    /// Deactivated contacts the audience named and left out (an id list can name them; a
    /// search, a saved filter or everyone never does).
    pub left_out_inactive: u64,
    pub allowed: u64,
    pub denied: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub by_basis: Vec<Count<crate::ledger::Basis>>,
    /// A denied contact counts once for each reason that applies to them.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub by_reason: Vec<Count<crate::ledger::Reason>>,
    pub decisions: Vec<AudienceMember>,
    pub next_cursor: Option<Uuid>,
    pub decided_for: DateTime<Utc>,
    pub policy_version: i64,
}

/// A named contact search, kept to name an audience again ("Leeds boiler customers").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SavedFilter {
    pub id: Uuid,
    pub name: String,
    /// The search text, as `GET /api/v1/contacts?q=` takes it; empty for every active contact.
    pub search: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NewSavedFilter {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
    pub name: String,
    /// The search, as `GET /api/v1/contacts?q=` takes it; blank for every active contact.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::OptionalName))]
    pub search: String,
}

// ---- sign-up forms ----------------------------------------------------------------------------

/// A sign-up form to publish: what the organisation pastes into its website.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SignupFormInput {
    /// What staff call it (not shown to people).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Name))]
    pub name: String,
    /// The exact words people are shown above the boxes they tick, recorded with each consent
    /// given through the form ("Email me about ... You can stop at any time.").
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Wording))]
    pub wording: String,
    /// The topics offered (keys of the catalogue in force, not retired), one box each.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::schema::TopicKey>, min_items = 1, max_items = 20))]
    pub topics: Vec<String>,
    /// The origins of the websites the form is on (`https://www.example.com`): a sign-up posted
    /// from any other is refused.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::schema::LedgerText>, min_items = 1, max_items = 10))]
    pub sites: Vec<String>,
}

/// A published sign-up form, with the HTML to paste.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SignupForm {
    pub id: Uuid,
    pub name: String,
    /// The wording version the form records with each consent, and its text.
    pub wording_version: i64,
    pub wording: String,
    pub topics: Vec<TopicEntry>,
    pub sites: Vec<String>,
    /// The standing campaign that sends the form's confirmation emails (their warrants are its).
    pub campaign_id: Uuid,
    /// The standing campaign that sends a consent receipt once a sign-up is confirmed.
    pub receipt_campaign_id: Option<Uuid>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    /// Retired: sign-ups are refused; links already sent still confirm.
    pub retired_at: Option<DateTime<Utc>>,
    /// The HTML to paste into the website: a plain form that posts to the public pages.
    pub snippet: String,
}

// ---- data requests ----------------------------------------------------------------------------

/// A request a person made through the data request page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DataRequest {
    pub id: Uuid,
    pub kind: crate::domain::DataRequestKind,
    /// What the person wrote, if anything.
    pub details: Option<String>,
    /// The address the request was made for (verified once `verified_at` is set).
    pub address: String,
    /// The newest active contact holding the address when it was received; none: no email was
    /// sent to verify it, and the request is answered by other means.
    pub contact_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    /// When the person pressed the button of the emailed link: the address is theirs.
    pub verified_at: Option<DateTime<Utc>>,
    /// After this, the link no longer verifies.
    pub expires_at: DateTime<Utc>,
}

/// The data request page, once the data protection lead has published it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DataRequestPage {
    /// Where people reach it (link to it from the website and the privacy notice).
    pub url: String,
    /// The standing campaign that sends its verification emails.
    pub campaign_id: Uuid,
    pub published_by: Uuid,
    pub published_at: DateTime<Utc>,
}
