//! The one error type of the desktop app. Commands return it to the front end as
//! `{kind, message, ...}`: the kind to branch on (back to login, show beside a field, offer a
//! retry), the message in plain words for people.

use assent_shared::api::{FieldError, StaleVersion};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    /// The address typed is not one the app can connect to.
    #[error("{0}")]
    BadAddress(String),
    #[error("Connect to a server first.")]
    NotConnected,
    #[error("Log in first.")]
    NotLoggedIn,
    /// The fingerprint being confirmed is not the one the server showed.
    #[error("That fingerprint is not the one this server presented. Connect again and compare the fingerprint shown.")]
    FingerprintMismatch,
    #[error("The certificate of {server} has changed: Assent refused the connection. It was {expected}; the server now presents {presented}. This can mean someone is intercepting the connection. Ask your IT team before trusting the new certificate.")]
    CertificateChanged {
        server: String,
        expected: String,
        presented: String,
    },
    #[error("Cannot reach the server at {server}: {detail}. Check the address and your network, then try again.")]
    Unreachable { server: String, detail: String },
    #[error("The server at {server} did not answer in time. Try again.")]
    Timeout { server: String },
    /// The session was revoked, expired or logged out elsewhere: the token is gone.
    #[error("{0}")]
    SessionEnded(String),
    /// Wrong email or password, or too many attempts.
    #[error("{0}")]
    LoginFailed(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The input was refused; `fields` says where.
    #[error("{message}")]
    Invalid {
        message: String,
        fields: Vec<FieldError>,
    },
    /// Someone else changed the record first.
    #[error("{message}")]
    Conflict {
        message: String,
        conflict: Option<StaleVersion>,
    },
    #[error("The server could not do that ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("The system keyring could not keep the session: {0}. Is a keyring (GNOME Keyring, KWallet) running and unlocked?")]
    Keyring(String),
    #[error("The list of trusted servers could not be used: {0}")]
    Pins(String),
    /// The webview refused a request of the app's own (such as clearing its browsing data).
    #[error("{0}")]
    Webview(String),
}

impl DesktopError {
    pub fn kind(&self) -> &'static str {
        match self {
            DesktopError::BadAddress(_) => "bad_address",
            DesktopError::NotConnected => "not_connected",
            DesktopError::NotLoggedIn => "not_logged_in",
            DesktopError::FingerprintMismatch => "fingerprint_mismatch",
            DesktopError::CertificateChanged { .. } => "certificate_changed",
            DesktopError::Unreachable { .. } => "unreachable",
            DesktopError::Timeout { .. } => "timeout",
            DesktopError::SessionEnded(_) => "session_ended",
            DesktopError::LoginFailed(_) => "login_failed",
            DesktopError::Forbidden(_) => "forbidden",
            DesktopError::NotFound(_) => "not_found",
            DesktopError::Invalid { .. } => "invalid",
            DesktopError::Conflict { .. } => "conflict",
            DesktopError::Server { .. } => "server",
            DesktopError::Keyring(_) => "keyring",
            DesktopError::Pins(_) => "pins",
            DesktopError::Webview(_) => "webview",
        }
    }
}

impl From<crate::token::TokenStoreError> for DesktopError {
    fn from(e: crate::token::TokenStoreError) -> Self {
        DesktopError::Keyring(e.0)
    }
}

impl From<crate::pin::PinStoreError> for DesktopError {
    fn from(e: crate::pin::PinStoreError) -> Self {
        DesktopError::Pins(e.to_string())
    }
}

impl Serialize for DesktopError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", self.kind())?;
        map.serialize_entry("message", &self.to_string())?;
        match self {
            DesktopError::CertificateChanged {
                server,
                expected,
                presented,
            } => {
                map.serialize_entry("server", server)?;
                map.serialize_entry("expected", expected)?;
                map.serialize_entry("presented", presented)?;
            }
            DesktopError::Invalid { fields, .. } => map.serialize_entry("fields", fields)?,
            DesktopError::Conflict {
                conflict: Some(conflict),
                ..
            } => map.serialize_entry("conflict", conflict)?,
            _ => {}
        }
        map.end()
    }
}

pub type DesktopResult<T> = Result<T, DesktopError>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_error_reaches_the_front_end_as_its_kind_its_message_and_its_details() {
        let error = DesktopError::Invalid {
            message: "Some fields are not valid.".into(),
            fields: vec![FieldError {
                field: "phones[0]".into(),
                reason: "not a phone number".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"kind": "invalid", "message": "Some fields are not valid.",
                   "fields": [{"field": "phones[0]", "reason": "not a phone number"}]})
        );
        let changed = DesktopError::CertificateChanged {
            server: "https://crm.example:8443".into(),
            expected: "AA".into(),
            presented: "BB".into(),
        };
        let value = serde_json::to_value(&changed).unwrap();
        assert_eq!(value["kind"], "certificate_changed");
        assert_eq!(value["expected"], "AA");
        assert_eq!(value["presented"], "BB");
        let message = value["message"].as_str().unwrap();
        assert!(message.contains("AA") && message.contains("BB"));
    }

    /// One error of every kind. The match has no wildcard, so a new variant does not compile
    /// until it is added here too.
    fn one_of_each() -> Vec<DesktopError> {
        let text = || String::from("x");
        let all = vec![
            DesktopError::BadAddress(text()),
            DesktopError::NotConnected,
            DesktopError::NotLoggedIn,
            DesktopError::FingerprintMismatch,
            DesktopError::CertificateChanged {
                server: text(),
                expected: text(),
                presented: text(),
            },
            DesktopError::Unreachable {
                server: text(),
                detail: text(),
            },
            DesktopError::Timeout { server: text() },
            DesktopError::SessionEnded(text()),
            DesktopError::LoginFailed(text()),
            DesktopError::Forbidden(text()),
            DesktopError::NotFound(text()),
            DesktopError::Invalid {
                message: text(),
                fields: vec![],
            },
            DesktopError::Conflict {
                message: text(),
                conflict: None,
            },
            DesktopError::Server {
                status: 500,
                message: text(),
            },
            DesktopError::Keyring(text()),
            DesktopError::Pins(text()),
            DesktopError::Webview(text()),
        ];
        for error in &all {
            match error {
                DesktopError::BadAddress(_)
                | DesktopError::NotConnected
                | DesktopError::NotLoggedIn
                | DesktopError::FingerprintMismatch
                | DesktopError::CertificateChanged { .. }
                | DesktopError::Unreachable { .. }
                | DesktopError::Timeout { .. }
                | DesktopError::SessionEnded(_)
                | DesktopError::LoginFailed(_)
                | DesktopError::Forbidden(_)
                | DesktopError::NotFound(_)
                | DesktopError::Invalid { .. }
                | DesktopError::Conflict { .. }
                | DesktopError::Server { .. }
                | DesktopError::Keyring(_)
                | DesktopError::Pins(_)
                | DesktopError::Webview(_) => {}
            }
        }
        all
    }

    #[test]
    fn the_front_end_knows_every_kind_of_error_and_no_other() {
        let rust: std::collections::BTreeSet<&str> =
            one_of_each().iter().map(DesktopError::kind).collect();
        assert_eq!(rust.len(), one_of_each().len(), "two variants share a kind");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/src/lib/errors.ts");
        let source = std::fs::read_to_string(path).unwrap();
        let union = source
            .split("export type ErrorKind =")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .expect("errors.ts declares `export type ErrorKind = ...;`");
        let typescript: std::collections::BTreeSet<&str> = union
            .split('|')
            .map(|member| member.trim().trim_matches('\''))
            .filter(|member| !member.is_empty())
            .collect();
        assert_eq!(
            typescript, rust,
            "ui/src/lib/errors.ts ErrorKind differs from DesktopError::kind"
        );
    }
}
