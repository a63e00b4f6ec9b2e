//! The formats of ids and times, stated as patterns in the API description. OpenAPI 3.1's
//! `format` is only an annotation (a client or a generator may ignore it), so every string with
//! the format `uuid` or `date-time` also gets the pattern of exactly what the server reads: a
//! UUID in any of the spellings the `uuid` crate takes, an RFC 3339 date and time.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, Schema, SchemaFormat,
};
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::Modify;

const HEX8: &str = "[0-9A-Fa-f]{8}";
const HEX4: &str = "[0-9A-Fa-f]{4}";
const HEX12: &str = "[0-9A-Fa-f]{12}";

/// A UUID as the server reads one: hyphenated, simple (32 digits), braced, or as a URN (in any
/// case).
pub fn uuid_pattern() -> String {
    let hyphenated = format!("{HEX8}-{HEX4}-{HEX4}-{HEX4}-{HEX12}");
    format!("^(?:{hyphenated}|[0-9A-Fa-f]{{32}}|\\{{{hyphenated}\\}}|[Uu][Rr][Nn]:[Uu][Uu][Ii][Dd]:{hyphenated})$")
}

/// An RFC 3339 date and time with its offset (`T` or a space between them, in any case). (A date the calendar does not have, such as
/// 30 February, matches and is refused with 422.)
pub const DATE_TIME_PATTERN: &str = "^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])$";

pub struct Formats;

impl Modify for Formats {
    fn modify(&self, openapi: &mut OpenApi) {
        let uuid = uuid_pattern();
        let mut visit = |schema: &mut RefOr<Schema>| patterned(schema, &uuid);
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(&mut visit);
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                each_schema(operation, &mut visit);
            }
        }
    }
}

fn each_schema(operation: &mut Operation, visit: &mut impl FnMut(&mut RefOr<Schema>)) {
    for parameter in operation.parameters.iter_mut().flatten() {
        parameter.schema.iter_mut().for_each(&mut *visit);
    }
    if let Some(body) = operation.request_body.as_mut() {
        for content in body.content.values_mut() {
            content.schema.iter_mut().for_each(&mut *visit);
        }
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            for content in response.content.values_mut() {
                content.schema.iter_mut().for_each(&mut *visit);
            }
        }
    }
}

fn patterned(schema: &mut RefOr<Schema>, uuid: &str) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            match &object.format {
                Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)) => {
                    object.pattern = Some(uuid.to_owned())
                }
                Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)) => {
                    object.pattern = Some(DATE_TIME_PATTERN.to_owned())
                }
                _ => {}
            }
            for property in object.properties.values_mut() {
                patterned(property, uuid);
            }
            if let Some(additional) = object.additional_properties.as_mut() {
                if let AdditionalProperties::RefOr(inner) = additional.as_mut() {
                    patterned(inner, uuid);
                }
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                patterned(items, uuid);
            }
        }
        Schema::OneOf(one) => one.items.iter_mut().for_each(|s| patterned(s, uuid)),
        Schema::AllOf(all) => all.items.iter_mut().for_each(|s| patterned(s, uuid)),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(|s| patterned(s, uuid)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    /// Whether the server reads `text` as it reads an id or a time in a JSON body.
    fn reads<T: serde::de::DeserializeOwned>(text: &str) -> bool {
        serde_json::from_value::<T>(serde_json::Value::String(text.to_owned())).is_ok()
    }

    #[test]
    fn the_uuid_pattern_takes_exactly_what_the_server_reads() {
        let id = uuid::Uuid::now_v7();
        let samples = [
            id.hyphenated().to_string(),
            id.simple().to_string(),
            id.braced().to_string(),
            id.urn().to_string(),
            id.hyphenated().to_string().to_uppercase(),
            format!("URN:UUID:{}", id.hyphenated()),
            format!(" {}", id.hyphenated()),
            format!("{}0", id.simple()),
            id.hyphenated().to_string().replace('-', "_"),
            "".to_owned(),
            "not an id".to_owned(),
        ];
        for sample in samples {
            assert_eq!(
                matches(&uuid_pattern(), &sample),
                reads::<uuid::Uuid>(&sample),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn the_date_time_pattern_takes_what_the_server_reads_but_impossible_dates() {
        for sample in [
            "2025-05-10T14:03:00Z",
            "2025-05-10t14:03:00z",
            "2025-05-10T14:03:00.123456789+01:00",
            "2025-05-10T14:03:00-23:59",
            "2025-05-10 14:03:00Z",
            "2025-05-10T14:03Z",
            "2025-05-10T24:00:00Z",
            "2025-13-10T14:03:00Z",
            "2025-05-10T14:03:00",
            "2025-05-10T14:03:00+0100",
            "2025-05-10T14:03:00.1234567891Z",
            "2025-05-10T14:03:00.Z",
            "2025-05-10T14:03:60Z",
            "0000-05-10T14:03:00Z",
            "",
        ] {
            assert_eq!(
                matches(DATE_TIME_PATTERN, sample),
                reads::<chrono::DateTime<chrono::Utc>>(sample),
                "{sample:?}"
            );
        }
        // What a pattern cannot know: the calendar.
        assert!(matches(DATE_TIME_PATTERN, "2025-02-30T00:00:00Z"));
        assert!(!reads::<chrono::DateTime<chrono::Utc>>(
            "2025-02-30T00:00:00Z"
        ));
    }

    /// The text schemas of the description against the parsers the services use.
    #[test]
    fn the_text_patterns_take_exactly_what_the_parsers_take() {
        use assent_shared::domain::{parse_notes, parse_optional_text, parse_text};
        use assent_shared::schema::{Name, Notes, OptionalName, Wording};
        use utoipa::PartialSchema;
        fn rules(schema: RefOr<Schema>) -> (String, Option<usize>, Option<usize>) {
            // A string schema: its pattern and lengths.
            match schema {
                RefOr::T(Schema::Object(o)) => (o.pattern.unwrap(), o.min_length, o.max_length),
                _ => panic!("not a string schema"),
            }
        }
        fn takes((pattern, min, max): &(String, Option<usize>, Option<usize>), text: &str) -> bool {
            let length = text.chars().count();
            regex::Regex::new(pattern).unwrap().is_match(text)
                && min.is_none_or(|m| length >= m)
                && max.is_none_or(|m| length <= m)
        }
        let long = "x".repeat(201);
        let samples = [
            "Jane",
            " Jane ",
            "",
            " ",
            "\t",
            "Jane\n",
            "Ja\u{0}ne",
            "Ja\u{85}ne",
            "\u{a0}",
            "\u{3000}Jane",
            "\u{feff}",
            "line one\nline two",
            "\r\n",
            "é ö ß 漢字",
            long.as_str(),
        ];
        let name = rules(Name::schema());
        let optional = rules(OptionalName::schema());
        let notes = rules(Notes::schema());
        let wording = rules(Wording::schema());
        for sample in samples {
            assert_eq!(
                takes(&name, sample),
                parse_text(sample, 200).is_ok(),
                "Name {sample:?}"
            );
            assert_eq!(
                takes(&optional, sample),
                parse_optional_text(Some(sample), 200).is_ok(),
                "OptionalName {sample:?}"
            );
            assert_eq!(
                takes(&notes, sample),
                parse_notes(Some(sample), 20_000).is_ok(),
                "Notes {sample:?}"
            );
            let words = parse_notes(Some(sample), 20_000)
                .map(|w| w.is_some())
                .unwrap_or(false);
            assert_eq!(takes(&wording, sample), words, "Wording {sample:?}");
        }
        let country = rules(assent_shared::schema::Country::schema());
        for sample in [
            "GB",
            " gb ",
            "",
            "  ",
            "G",
            "GBR",
            "G1",
            "\u{85}fr\u{3000}",
            "É1",
            "\tIE",
        ] {
            let parsed = match sample.trim() {
                "" => true,
                code => assent_shared::domain::parse_country(code).is_ok(),
            };
            assert_eq!(takes(&country, sample), parsed, "Country {sample:?}");
        }
    }
}
