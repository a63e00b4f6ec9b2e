//! Whole numbers as JSON Schema counts them: `3` and `3.0` are the same integer, so a client
//! (or a generator working from the API description) that writes `3.0` for a version is not
//! refused. A number with a fraction, or out of range, is.

use serde::de::{Deserializer, Error, Visitor};

struct Whole;

impl Visitor<'_> for Whole {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("a whole number too large"))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
        // Past 2^53 a float no longer holds every whole number, so it may stand for one out of
        // range (-9223372036854775809 reads as -2^63): such a float is refused.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        if v.fract() == 0.0 && (-EXACT..=EXACT).contains(&v) {
            Ok(v as i64)
        } else {
            Err(E::custom(
                "a number that is not a whole number, or is too large",
            ))
        }
    }
}

/// An `i64` written as a JSON integer, or as a number with no fraction.
pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(Whole)
}

/// An optional `i64` (absent or `null` is `None`).
pub fn option_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Maybe;
    impl<'de> Visitor<'de> for Maybe {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number or null")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            i64(d).map(Some)
        }
    }
    d.deserialize_option(Maybe)
}

/// An optional `u32` (absent or `null` is `None`).
pub fn option_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match option_i64(d)? {
        None => Ok(None),
        Some(v) => u32::try_from(v)
            .map(Some)
            .map_err(|_| D::Error::custom("a whole number from 0 to 4294967295")),
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Sample {
        #[serde(deserialize_with = "super::i64")]
        version: i64,
        #[serde(default, deserialize_with = "super::option_u32")]
        days: Option<u32>,
    }

    #[test]
    fn whole_numbers_are_taken_in_either_spelling_and_fractions_are_refused() {
        let parse = |s: &str| serde_json::from_str::<Sample>(s);
        assert_eq!(
            parse(r#"{"version": 3}"#).unwrap(),
            Sample {
                version: 3,
                days: None
            }
        );
        assert_eq!(
            parse(r#"{"version": -3.0, "days": 28.0}"#).unwrap(),
            Sample {
                version: -3,
                days: Some(28)
            }
        );
        assert_eq!(parse(r#"{"version": 1, "days": null}"#).unwrap().days, None);
        // Near 2^52 a float's step is 0.5: the parser must round correctly (serde_json's
        // `float_roundtrip`), or a whole number reads as one with a half.
        assert_eq!(
            parse(r#"{"version": 3804863340974442.0}"#).unwrap().version,
            3_804_863_340_974_442
        );
        assert!(parse(r#"{"version": 1.5}"#).is_err());
        assert!(parse(r#"{"version": 1e300}"#).is_err());
        assert!(parse(r#"{"version": -9223372036854775809}"#).is_err());
        assert!(parse(r#"{"version": "1"}"#).is_err());
        assert!(parse(r#"{"version": 1, "days": -1}"#).is_err());
    }
}
