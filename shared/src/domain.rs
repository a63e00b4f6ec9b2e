//! Domain primitives that parse once and are valid for ever after ("parse, don't validate").
//!
//! Every value a person types into Assent that has a shape (an email address, a phone number, a
//! UK postcode) becomes one of these types before it reaches the store, so the rest of the code
//! never sees a raw string again. The error of each parser is a short reason in plain words, shown
//! to the user beside the field it belongs to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a value was refused, in words a salesperson understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl InvalidValue {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// An email address with strict syntax: no display name, no IP-literal domain, a dotted domain
/// whose last label is alphabetic. The domain is lower-cased (it is case-insensitive); the local
/// part is kept as given (it may legally be case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InvalidValue::new("is empty"));
        }
        if trimmed.len() > 254 {
            return Err(InvalidValue::new("is longer than 254 characters"));
        }
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        let parsed = email_address::EmailAddress::parse_with_options(trimmed, options)
            .map_err(|e| InvalidValue::new(format!("is not a valid email address ({e})")))?;
        let domain = parsed.domain().to_ascii_lowercase();
        let mut labels = domain.rsplit('.');
        let top = labels.next().unwrap_or_default();
        if labels.next().is_none() {
            return Err(InvalidValue::new(
                "is not a valid email address (the domain has no dot)",
            ));
        }
        if top.len() < 2 || !top.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(InvalidValue::new(
                "is not a valid email address (the domain does not end in a top-level domain)",
            ));
        }
        Ok(Self(format!("{}@{}", parsed.local_part(), domain)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+447400123456`). Numbers without a country code are read as
/// UK numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InvalidValue::new("is empty"));
        }
        if trimmed.len() > 40 {
            return Err(InvalidValue::new("is longer than 40 characters"));
        }
        let number = phonenumber::parse(Some(phonenumber::country::Id::GB), trimmed)
            .map_err(|_| InvalidValue::new("is not a phone number"))?;
        if !phonenumber::is_valid(&number) {
            return Err(InvalidValue::new(
                "is not a valid phone number for its country (add the country code, e.g. +44)",
            ));
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UK postcode in its canonical form: upper case, one space before the inward code (`SW1A 1AA`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UkPostcode(String);

impl UkPostcode {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let compact: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let refuse = || InvalidValue::new("is not a valid UK postcode (for example SW1A 1AA)");
        if compact == "GIR0AA" {
            return Ok(Self("GIR 0AA".to_owned()));
        }
        if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
            return Err(refuse());
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        let inward_ok = {
            let b = inward.as_bytes();
            b[0].is_ascii_digit()
                && b[1..]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() && !b"CIKMOV".contains(c))
        };
        // The outward code's shapes: A9, A99, AA9, AA99, A9A, AA9A (A: letter, 9: digit).
        let shape: String = outward
            .chars()
            .map(|c| match c {
                'A'..='Z' => 'A',
                '0'..='9' => '9',
                _ => '?',
            })
            .collect();
        let outward_ok = matches!(
            shape.as_str(),
            "A9" | "A99" | "AA9" | "AA99" | "A9A" | "AA9A"
        );
        if inward_ok && outward_ok {
            Ok(Self(format!("{outward} {inward}")))
        } else {
            Err(refuse())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A UK company registration number (Companies House): eight characters, either eight digits or
/// a two-letter prefix (SC, NI, OC, LP...) and six digits. Shorter all-digit numbers are padded
/// with leading zeros, as Companies House writes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CompanyNumber(String);

impl CompanyNumber {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let compact: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let refuse = || {
            InvalidValue::new(
                "is not a UK company number (eight digits, or two letters and six digits)",
            )
        };
        if compact.is_empty() || compact.len() > 8 || !compact.is_ascii() {
            return Err(refuse());
        }
        if compact.chars().all(|c| c.is_ascii_digit()) {
            return Ok(Self(format!("{compact:0>8}")));
        }
        let (prefix, digits) = compact.split_at(2.min(compact.len()));
        if compact.len() == 8
            && prefix.chars().all(|c| c.is_ascii_uppercase())
            && digits.chars().all(|c| c.is_ascii_digit())
        {
            Ok(Self(compact))
        } else {
            Err(refuse())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest device name a session takes.
pub const DEVICE_NAME_MAX: usize = 100;

/// Whether `c` may appear in one-line text: anything but a control character (Unicode's Cc:
/// U+0000 to U+001F and U+007F to U+009F), which no field shows and PostgreSQL cannot always
/// hold (a NUL).
fn one_line(c: char) -> bool {
    !c.is_control()
}

/// Whether `c` may appear in text of several lines: a tab, a line feed and a carriage return
/// besides what one-line text takes.
fn multi_line(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

/// Checks text as it was sent, before it is trimmed: at most `max` characters, only characters
/// `allowed` takes. (The API description states the same limits on the text as sent.)
fn check_raw(raw: &str, max: usize, allowed: fn(char) -> bool) -> Result<(), InvalidValue> {
    if raw.chars().count() > max {
        return Err(InvalidValue::new(format!(
            "is longer than {max} characters"
        )));
    }
    if !raw.chars().all(allowed) {
        return Err(InvalidValue::new("contains control characters"));
    }
    Ok(())
}

/// A short piece of free text (a name, a job title, an address line): at most `max` characters
/// and no control characters as sent, not blank; kept trimmed.
pub fn parse_text(raw: &str, max: usize) -> Result<String, InvalidValue> {
    check_raw(raw, max, one_line)?;
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(InvalidValue::new("is empty"));
    }
    Ok(trimmed.to_owned())
}

/// Like [`parse_text`] for optional fields: absent or blank is `None`.
pub fn parse_optional_text(raw: Option<&str>, max: usize) -> Result<Option<String>, InvalidValue> {
    let Some(raw) = raw else { return Ok(None) };
    check_raw(raw, max, one_line)?;
    Ok(Some(raw.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned))
}

/// Long free text (notes): may span lines, at most `max` characters as sent; blank is `None`.
pub fn parse_notes(raw: Option<&str>, max: usize) -> Result<Option<String>, InvalidValue> {
    let Some(raw) = raw else { return Ok(None) };
    check_raw(raw, max, multi_line)?;
    Ok(Some(raw.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned))
}

/// An ISO 3166-1 alpha-2 country code, upper case.
pub fn parse_country(raw: &str) -> Result<String, InvalidValue> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(InvalidValue::new(
            "is not a two-letter ISO 3166 country code (for example GB)",
        ))
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(InvalidValue(format!(
                        "is not one of: {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

/// For the ledger vocabulary's enums too.
pub(crate) use string_enum;

string_enum! {
    /// Where a campaign (or a one-off message) is in its life.
    CampaignState {
        /// Being written; the author may change it freely.
        Draft => "draft",
        /// Waiting for a manager who is not the author.
        Submitted => "submitted",
        /// Approved as it stands, with its audience frozen; any edit returns it to draft.
        Approved => "approved",
        /// Sent back with a reason; an edit returns it to draft.
        Rejected => "rejected",
        Scheduled => "scheduled",
        Sending => "sending",
        Paused => "paused",
        Sent => "sent",
        Cancelled => "cancelled",
    }
}

// `string_enum!` derives no Default, so it cannot be derived here.
#[allow(clippy::derivable_impls)]
impl Default for CampaignState {
    fn default() -> Self {
        CampaignState::Draft
    }
}

string_enum! {
    /// Where one message of the outbox stands: queued -> claimed -> sent | failed |
    /// indeterminate | not_sent. The row's own state is the sender's checkpoint.
    OutboxState {
        /// Waiting to be decided and handed over (again, after a 4xx, at its next attempt).
        Queued => "queued",
        /// Held by a worker's lease: being decided or handed over now.
        Claimed => "claimed",
        /// The relay took it.
        Sent => "sent",
        /// Refused by the relay (a hard bounce, a relay failure, or 4xx retries used up).
        Failed => "failed",
        /// Its worker stopped while it was being handed over: it may have been sent. Never sent
        /// again on its own.
        Indeterminate => "indeterminate",
        /// Decided again and refused, or not sendable (no address, a missing merge field), or
        /// its campaign was cancelled first.
        NotSent => "not_sent",
    }
}

string_enum! {
    /// What a person asks for through the data request page (UK GDPR Articles 15 to 17).
    DataRequestKind {
        /// A copy of their data (Article 15).
        Access => "access",
        /// Their data put right (Article 16).
        Correction => "correction",
        /// Their data erased (Article 17).
        Erasure => "erasure",
    }
}

string_enum! {
    /// What a user may do. A user may hold several roles.
    Role {
        /// Finds and edits contacts they own, records consents, drafts messages.
        Sales => "sales",
        /// Edits any contact, approves marketing campaigns.
        Manager => "manager",
        /// Manages users, roles, sessions and devices.
        Admin => "admin",
        /// The data protection lead: policy, subject requests, breaches, the audit trail.
        Dpo => "dpo",
    }
}

string_enum! {
    /// The PECR subscriber type. Sole traders and ordinary (non-Scottish) partnerships are
    /// individual subscribers.
    SubscriberKind {
        Individual => "individual",
        Corporate => "corporate",
    }
}

string_enum! {
    /// What Assent does by itself, when a record names Assent as who did it.
    SystemJob {
        /// An administrator at the server's command line (`assent-server create-user`).
        CommandLine => "command_line",
        /// `assent-server seed`: synthetic data for trying Assent out.
        Seed => "seed",
        /// The send worker: it decides each recipient again, writes their warrant and hands the
        /// message over.
        Sender => "sender",
        /// The reports that come back about sent messages: bounces flag addresses, complaints
        /// are recorded as opt-outs.
        MailReports => "mail_reports",
        /// The replies people send to text messages, as the SMS gateway forwards them: "STOP"
        /// is recorded as an opt-out of marketing by text.
        SmsReplies => "sms_replies",
        /// The public pages, for a person the CRM does not hold (a data request for an address
        /// no contact has).
        PublicPages => "public_pages",
    }
}

impl SystemJob {
    /// How people are told the job did something.
    pub fn shown_as(self) -> &'static str {
        match self {
            SystemJob::CommandLine => "Assent (the server's command line)",
            SystemJob::Seed => "Assent (synthetic data)",
            SystemJob::Sender => "Assent (the send worker)",
            SystemJob::MailReports => "Assent (bounce and complaint reports)",
            SystemJob::SmsReplies => "Assent (replies to text messages)",
            SystemJob::PublicPages => "Assent (the public pages)",
        }
    }
}

/// How people are told a data subject did something themselves.
pub const DATA_SUBJECT_SHOWN_AS: &str = "the person, through the public pages";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domain_is_lower_cased_and_local_part_kept() {
        let email = EmailAddress::parse("  Jane.Doe@Example.CO.UK ").unwrap();
        assert_eq!(email.as_str(), "Jane.Doe@example.co.uk");
    }

    #[test]
    fn email_without_dotted_domain_or_with_display_name_is_refused() {
        for bad in [
            "jane@localhost",
            "Jane <jane@example.com>",
            "jane@[10.0.0.1]",
            "@x.com",
            "jane",
            "a@b.c0m",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn uk_numbers_without_country_code_become_e164() {
        assert_eq!(
            PhoneNumber::parse("07400 123456").unwrap().as_str(),
            "+447400123456"
        );
        assert_eq!(
            PhoneNumber::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            PhoneNumber::parse("+1 212 555 0100").unwrap().as_str(),
            "+12125550100"
        );
    }

    #[test]
    fn impossible_phone_numbers_are_refused() {
        for bad in ["12", "not a number", "+44 7700", "0770090012345678"] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn postcodes_are_canonicalised() {
        assert_eq!(UkPostcode::parse("sw1a1aa").unwrap().as_str(), "SW1A 1AA");
        assert_eq!(UkPostcode::parse(" M1 1AE ").unwrap().as_str(), "M1 1AE");
        assert_eq!(UkPostcode::parse("b338th").unwrap().as_str(), "B33 8TH");
        assert_eq!(UkPostcode::parse("gir 0aa").unwrap().as_str(), "GIR 0AA");
    }

    #[test]
    fn malformed_postcodes_are_refused() {
        for bad in ["", "SW1A", "SW1A 1AAA", "1SW 1AA", "SW1A 1CA", "SW1A-1AA"] {
            assert!(UkPostcode::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn company_numbers_are_padded_and_prefixed_ones_kept() {
        assert_eq!(CompanyNumber::parse("123456").unwrap().as_str(), "00123456");
        assert_eq!(
            CompanyNumber::parse("sc123456").unwrap().as_str(),
            "SC123456"
        );
        assert!(CompanyNumber::parse("S1234567").is_err());
        assert!(CompanyNumber::parse("123456789").is_err());
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(parse_text("  Jane ", 10).unwrap(), "Jane");
        assert!(parse_text("   ", 10).is_err());
        assert!(parse_text("abcdefghijk", 10).is_err());
        assert!(parse_text("a\u{0}b", 10).is_err());
        // Judged as sent: a trailing line feed, or spaces past the limit, are refused too.
        assert!(parse_text("Jane\n", 10).is_err());
        assert!(parse_text("abcdefghij ", 10).is_err());
        assert_eq!(
            parse_optional_text(Some("\t"), 10).unwrap_err().0,
            "contains control characters"
        );
        assert!(parse_notes(Some("a\u{85}b"), 10).is_err());
        assert_eq!(
            parse_notes(Some(" a\tb\r\n"), 10).unwrap().as_deref(),
            Some("a\tb")
        );
        assert_eq!(parse_optional_text(Some("  "), 10).unwrap(), None);
        assert_eq!(
            parse_notes(Some("line one\nline two"), 100)
                .unwrap()
                .unwrap(),
            "line one\nline two"
        );
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), *role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
