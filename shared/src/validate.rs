//! Turns API inputs into valid domain values, collecting every field error at once so a form can
//! show them all beside their fields.

use uuid::Uuid;

use crate::api::{CompanyInput, ContactInput, FieldError, NewUser, PostalAddress};
use crate::domain::{
    parse_country, parse_notes, parse_optional_text, parse_text, CompanyNumber, EmailAddress,
    InvalidValue, PhoneNumber, Role, SubscriberKind, UkPostcode,
};

pub const NAME_MAX: usize = 200;
pub const NOTES_MAX: usize = 20_000;
pub const ADDRESS_LINES_MAX: usize = 4;
pub const EMAILS_MAX: usize = 10;
pub const PHONES_MAX: usize = 10;
/// The longest note on a policy change.
pub const POLICY_NOTE_MAX: usize = 2000;
/// The longest topic key (`boiler-cover`) and description.
pub const TOPIC_KEY_MAX: usize = 64;
pub const TOPIC_DESCRIPTION_MAX: usize = 500;
/// The most topics a catalogue holds.
pub const TOPICS_MAX: usize = 500;
/// Third parties named in one consent: consent to more is hardly specific (UK GDPR Art. 4(11)).
pub const THIRD_PARTIES_MAX: usize = 50;

/// Field errors, gathered while checking a whole input.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Records the error of `result` under `field`, if any, and returns its value.
    pub fn check<T>(
        &mut self,
        field: impl Into<String>,
        result: Result<T, InvalidValue>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(InvalidValue(reason)) => {
                self.add(field, reason);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when no error was recorded.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, FieldErrors> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

/// A postal address whose parts are valid; the postcode is canonical for UK addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAddress {
    pub lines: Vec<String>,
    pub town: Option<String>,
    pub postcode: Option<String>,
    pub country: String,
}

impl ValidAddress {
    pub fn to_api(&self) -> PostalAddress {
        PostalAddress {
            lines: self.lines.clone(),
            town: self.town.clone(),
            postcode: self.postcode.clone(),
            country: Some(self.country.clone()),
        }
    }
}

fn validate_address(
    errors: &mut FieldErrors,
    field: &str,
    address: Option<&PostalAddress>,
) -> Option<ValidAddress> {
    let address = address?;
    let country = match address.country.as_deref().map(str::trim) {
        None | Some("") => Some("GB".to_owned()),
        Some(raw) => errors.check(format!("{field}.country"), parse_country(raw)),
    };
    if address.lines.len() > ADDRESS_LINES_MAX {
        errors.add(
            format!("{field}.lines"),
            format!("has more than {ADDRESS_LINES_MAX} lines"),
        );
    }
    let lines: Vec<String> = address
        .lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .filter_map(|(i, line)| {
            errors.check(format!("{field}.lines[{i}]"), parse_text(line, NAME_MAX))
        })
        .collect();
    let town = errors
        .check(
            format!("{field}.town"),
            parse_optional_text(address.town.as_deref(), NAME_MAX),
        )
        .flatten();
    let postcode = match address.postcode.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) if country.as_deref() == Some("GB") => errors
            .check(format!("{field}.postcode"), UkPostcode::parse(raw))
            .map(|p| p.as_str().to_owned()),
        Some(raw) => errors.check(format!("{field}.postcode"), parse_text(raw, 20)),
    };
    let country = country?;
    if lines.is_empty() && town.is_none() && postcode.is_none() {
        return None;
    }
    Some(ValidAddress {
        lines,
        town,
        postcode,
        country,
    })
}

fn validate_list<T>(
    errors: &mut FieldErrors,
    field: &str,
    raw: &[String],
    max: usize,
    parse: impl Fn(&str) -> Result<T, InvalidValue>,
) -> Vec<T>
where
    T: PartialEq,
{
    if raw.len() > max {
        errors.add(field, format!("has more than {max} entries"));
    }
    let mut values: Vec<T> = Vec::new();
    for (i, item) in raw.iter().enumerate() {
        if let Some(value) = errors.check(format!("{field}[{i}]"), parse(item)) {
            if values.contains(&value) {
                errors.add(format!("{field}[{i}]"), "is listed twice");
            } else {
                values.push(value);
            }
        }
    }
    values
}

/// A contact's fields, all valid.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidContact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub emails: Vec<EmailAddress>,
    pub phones: Vec<PhoneNumber>,
    pub address: Option<ValidAddress>,
    pub company_id: Option<Uuid>,
    pub subscriber_kind: SubscriberKind,
    pub job_title: Option<String>,
    pub notes: Option<String>,
    pub owner_id: Option<Uuid>,
}

impl ContactInput {
    pub fn validate(&self) -> Result<ValidContact, FieldErrors> {
        let mut errors = FieldErrors::default();
        let first_name = errors
            .check(
                "first_name",
                parse_optional_text(self.first_name.as_deref(), NAME_MAX),
            )
            .flatten();
        let last_name = errors
            .check(
                "last_name",
                parse_optional_text(self.last_name.as_deref(), NAME_MAX),
            )
            .flatten();
        if first_name.is_none()
            && last_name.is_none()
            && !errors.0.iter().any(|e| e.field.ends_with("_name"))
        {
            errors.add("last_name", "a contact needs a first or last name");
        }
        let emails = validate_list(
            &mut errors,
            "emails",
            &self.emails,
            EMAILS_MAX,
            EmailAddress::parse,
        );
        let phones = validate_list(
            &mut errors,
            "phones",
            &self.phones,
            PHONES_MAX,
            PhoneNumber::parse,
        );
        let address = validate_address(&mut errors, "address", self.address.as_ref());
        let job_title = errors
            .check(
                "job_title",
                parse_optional_text(self.job_title.as_deref(), NAME_MAX),
            )
            .flatten();
        let notes = errors
            .check("notes", parse_notes(self.notes.as_deref(), NOTES_MAX))
            .flatten();
        errors.into_result(|| ValidContact {
            first_name,
            last_name,
            emails,
            phones,
            address,
            company_id: self.company_id,
            subscriber_kind: self.subscriber_kind.unwrap_or(SubscriberKind::Individual),
            job_title,
            notes,
            owner_id: self.owner_id,
        })
    }
}

/// A company's fields, all valid.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCompany {
    pub name: String,
    pub registration_number: Option<CompanyNumber>,
    pub address: Option<ValidAddress>,
    pub generic_email: Option<EmailAddress>,
    pub generic_phone: Option<PhoneNumber>,
}

fn optional<T>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, InvalidValue>,
) -> Result<Option<T>, InvalidValue> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => parse(text).map(Some),
    }
}

impl CompanyInput {
    pub fn validate(&self) -> Result<ValidCompany, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", parse_text(&self.name, NAME_MAX));
        let registration_number = errors
            .check(
                "registration_number",
                optional(self.registration_number.as_deref(), CompanyNumber::parse),
            )
            .flatten();
        let address = validate_address(&mut errors, "address", self.address.as_ref());
        let generic_email = errors
            .check(
                "generic_email",
                optional(self.generic_email.as_deref(), EmailAddress::parse),
            )
            .flatten();
        let generic_phone = errors
            .check(
                "generic_phone",
                optional(self.generic_phone.as_deref(), PhoneNumber::parse),
            )
            .flatten();
        match name {
            Some(name) => errors.into_result(|| ValidCompany {
                name,
                registration_number,
                address,
                generic_email,
                generic_phone,
            }),
            None => Err(errors),
        }
    }
}

/// A new user's fields, all valid except the password, whose policy the server checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidNewUser {
    pub email: EmailAddress,
    pub display_name: String,
    pub roles: Vec<Role>,
}

/// A user must hold at least one role; duplicates are dropped.
pub fn validate_roles(errors: &mut FieldErrors, roles: &[Role]) -> Vec<Role> {
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        errors.add("roles", "a user needs at least one role");
    }
    roles
}

impl NewUser {
    pub fn validate(&self) -> Result<ValidNewUser, FieldErrors> {
        let mut errors = FieldErrors::default();
        let email = errors.check("email", EmailAddress::parse(&self.email));
        let display_name = errors.check("display_name", parse_text(&self.display_name, NAME_MAX));
        let roles = validate_roles(&mut errors, &self.roles);
        match (email, display_name) {
            (Some(email), Some(display_name)) => errors.into_result(|| ValidNewUser {
                email,
                display_name,
                roles,
            }),
            _ => Err(errors),
        }
    }
}

/// The longest topic, third-party name or source field accepted.
pub const LEDGER_TEXT_MAX: usize = 2000;

/// Checks what the event vocabulary leaves open: topics and wordings are not empty, third
/// parties are named, sources are of a sane size.
pub fn validate_ledger_event(
    event: &crate::ledger::EventKind,
    source: Option<&crate::api::EventSource>,
) -> Result<(), FieldErrors> {
    use crate::ledger::EventKind;
    let mut errors = FieldErrors::default();
    let topic = match event {
        EventKind::ConsentGiven { topic, .. }
        | EventKind::ConsentConfirmed { topic, .. }
        | EventKind::OptOut { topic, .. }
        | EventKind::Sale { topic, .. }
        | EventKind::Negotiation { topic, .. }
        | EventKind::Enquiry { topic }
        | EventKind::Support { topic, .. } => Some(topic),
        _ => None,
    };
    if let Some(topic) = topic {
        errors.check("topic", parse_text(topic, NAME_MAX));
        let scoped = matches!(
            event,
            EventKind::ConsentGiven { .. }
                | EventKind::ConsentConfirmed { .. }
                | EventKind::OptOut { .. }
        );
        if topic.trim() == crate::ledger::ALL_TOPICS && !scoped {
            errors.add(
                "topic",
                "\"*\" (every topic) is only for consents and opt-outs",
            );
        }
    }
    if let EventKind::ConsentGiven {
        wording,
        third_parties,
        ..
    } = event
    {
        errors.check(
            "wording",
            parse_notes(Some(wording), NOTES_MAX).and_then(|w| {
                w.ok_or_else(|| {
                    InvalidValue("is empty: record the exact words the person was shown".into())
                })
            }),
        );
        if third_parties.len() > THIRD_PARTIES_MAX {
            errors.add(
                "third_parties",
                format!("names more than {THIRD_PARTIES_MAX} organisations"),
            );
        }
        for (i, party) in third_parties.iter().enumerate() {
            errors.check(format!("third_parties[{i}]"), parse_text(party, NAME_MAX));
        }
    }
    if let Some(source) = source {
        for (field, value) in [
            ("source.form_url", &source.form_url),
            ("source.ip", &source.ip),
            ("source.user_agent", &source.user_agent),
            ("source.paper_reference", &source.paper_reference),
            ("source.recording_reference", &source.recording_reference),
            ("source.contact_point", &source.contact_point),
        ] {
            if let Some(value) = value {
                errors.check(field, parse_text(value, LEDGER_TEXT_MAX));
            }
        }
    }
    errors.into_result(|| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_input_reports_every_bad_field_with_its_path() {
        let input = ContactInput {
            last_name: Some("Doe".into()),
            emails: vec!["jane@example.com".into(), "not-an-email".into()],
            phones: vec!["12".into()],
            address: Some(PostalAddress {
                lines: vec!["1 High Street".into()],
                town: Some("Leeds".into()),
                postcode: Some("LS1".into()),
                country: None,
            }),
            ..Default::default()
        };
        let errors = input.validate().unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["emails[1]", "phones[0]", "address.postcode"]);
    }

    #[test]
    fn a_valid_contact_is_normalised() {
        let input = ContactInput {
            first_name: Some(" Jane ".into()),
            emails: vec!["Jane@Example.COM".into()],
            phones: vec!["07400 123456".into()],
            address: Some(PostalAddress {
                postcode: Some("ls11ba".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let contact = input.validate().unwrap();
        assert_eq!(contact.first_name.as_deref(), Some("Jane"));
        assert_eq!(contact.emails[0].as_str(), "Jane@example.com");
        assert_eq!(contact.phones[0].as_str(), "+447400123456");
        assert_eq!(
            contact.address.unwrap().postcode.as_deref(),
            Some("LS1 1BA")
        );
        assert_eq!(contact.subscriber_kind, SubscriberKind::Individual);
    }

    #[test]
    fn a_contact_without_any_name_is_refused() {
        let errors = ContactInput::default().validate().unwrap_err();
        assert_eq!(errors.0[0].field, "last_name");
    }

    #[test]
    fn the_same_phone_written_twice_is_refused() {
        let input = ContactInput {
            last_name: Some("Doe".into()),
            phones: vec!["07400 123456".into(), "+447400123456".into()],
            ..Default::default()
        };
        assert_eq!(input.validate().unwrap_err().0[0].field, "phones[1]");
    }

    #[test]
    fn a_user_needs_a_role() {
        let user = NewUser {
            email: "a@example.com".into(),
            display_name: "A".into(),
            roles: vec![],
            password: String::new(),
        };
        assert_eq!(user.validate().unwrap_err().0[0].field, "roles");
    }

    #[test]
    fn a_consent_names_at_most_fifty_third_parties() {
        use crate::ledger::{Channel, ConsentMethod, EventKind};
        let consent = |parties: usize| EventKind::ConsentGiven {
            channel: Channel::Email,
            topic: "boilers".into(),
            method: ConsentMethod::WebForm,
            wording: "Email me.".into(),
            third_parties: (0..parties).map(|i| format!("Partner {i}")).collect(),
        };
        assert!(validate_ledger_event(&consent(THIRD_PARTIES_MAX), None).is_ok());
        let errors = validate_ledger_event(&consent(THIRD_PARTIES_MAX + 1), None).unwrap_err();
        assert_eq!(errors.0[0].field, "third_parties");
    }
}
