//! How the API description states the rules text fields are checked by: schema-only types that
//! fields name with `#[schema(value_type = ...)]`, built from the same limits the validation uses
//! (`crate::validate`, `crate::domain`), so that the two cannot drift apart. Text is judged as it
//! is sent: its length, and its characters (no control characters; tabs and line breaks only in
//! text of several lines), then trimmed; a required text may not be blank.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::validate::{LEDGER_TEXT_MAX, NAME_MAX, NOTES_MAX, THIRD_PARTIES_MAX};

/// Unicode's control characters (Cc), as a regular-expression class body.
const CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";
/// The control characters text of several lines may not hold (all but tab, LF and CR).
const CONTROL_BUT_LINES: &str = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f";
/// The characters trimming removes (Unicode's White_Space).
const WHITE_SPACE: &str =
    " \\u0009-\\u000d\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/// Text made only of characters outside `forbidden`.
fn only(forbidden: &str) -> String {
    format!("^[^{forbidden}]*$")
}

/// Text made only of characters outside `forbidden`, with at least one that is not white space.
fn not_blank(forbidden: &str) -> String {
    format!("^[^{forbidden}]*[^{forbidden}{WHITE_SPACE}][^{forbidden}]*$")
}

fn text(min: usize, max: usize, pattern: String, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length((min > 0).then_some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

macro_rules! text_schema {
    ($(#[$meta:meta])* $name:ident => $schema:expr) => {
        $(#[$meta])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {}
    };
}

text_schema! {
    /// A name or other one-line text that must be given: up to 200 characters.
    Name => text(1, NAME_MAX, not_blank(CONTROL), "One line of text, not blank, no control characters.")
}

text_schema! {
    /// One-line text that may be left blank (blank means none).
    OptionalName => text(0, NAME_MAX, only(CONTROL), "One line of text, no control characters; blank means none.")
}

text_schema! {
    /// A device's name, shown when its sessions are revoked.
    DeviceName => text(1, crate::domain::DEVICE_NAME_MAX, not_blank(CONTROL), "One line of text, not blank, no control characters.")
}

text_schema! {
    /// A device's name, or blank for every device.
    OptionalDeviceName => text(0, crate::domain::DEVICE_NAME_MAX, only(CONTROL), "One line of text, no control characters; blank means every device.")
}

text_schema! {
    /// Notes of several lines.
    Notes => text(0, NOTES_MAX, only(CONTROL_BUT_LINES), "Text of several lines: no control characters but tabs and line breaks; blank means none.")
}

text_schema! {
    /// The exact words a person was shown when they consented.
    Wording => text(1, NOTES_MAX, not_blank(CONTROL_BUT_LINES), "The exact words shown: several lines allowed, not blank.")
}

text_schema! {
    /// Where a ledger event's evidence comes from (a form, a paper reference, a recording).
    LedgerText => text(1, LEDGER_TEXT_MAX, not_blank(CONTROL), "One line of text, not blank, no control characters.")
}

text_schema! {
    /// A topic's key: 1 to 64 lower-case letters, digits and hyphens, starting with a letter or digit.
    TopicKey => ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(crate::validate::TOPIC_KEY_MAX))
        .pattern(Some("^[a-z0-9][a-z0-9-]*$"))
        .description(Some("Lower-case letters, digits and hyphens, starting with a letter or digit."))
        .into()
}

text_schema! {
    /// What a topic is about, in a sentence or two that people read.
    TopicDescription => text(1, crate::validate::TOPIC_DESCRIPTION_MAX, not_blank(CONTROL), "One line of text, not blank, no control characters.")
}

text_schema! {
    /// A note on a policy change.
    PolicyNote => text(0, crate::validate::POLICY_NOTE_MAX, only(CONTROL_BUT_LINES), "Why the policy changed: several lines allowed; blank means none.")
}

text_schema! {
    /// A new password: 12 to 128 characters, not one of the commonly used ones (which only the
    /// server knows).
    NewPassword => ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(12))
        .max_length(Some(128))
        .description(Some("12 to 128 characters, and not one of the most commonly used passwords (refused with 422)."))
        .into()
}

text_schema! {
    /// The third parties a consent names.
    ThirdParties => ArrayBuilder::new()
        .items(Name::schema())
        .max_items(Some(THIRD_PARTIES_MAX))
        .description(Some("The organisations named in the consent, each by name."))
        .into()
}

text_schema! {
    /// An ISO 3166-1 alpha-2 country code, in any case; blank means GB.
    Country => ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^[{WHITE_SPACE}]*([A-Za-z]{{2}})?[{WHITE_SPACE}]*$")))
        .description(Some("A two-letter ISO 3166 country code such as GB, in any case; blank means GB."))
        .into()
}

text_schema! {
    /// A group of topics that count as similar products.
    TopicGroup => ArrayBuilder::new()
        .items(Name::schema())
        .min_items(Some(2))
        .description(Some("At least two topics, each by name."))
        .into()
}

impl PartialSchema for crate::api::SearchText {
    fn schema() -> RefOr<Schema> {
        OptionalName::schema()
    }
}

impl ToSchema for crate::api::SearchText {}
