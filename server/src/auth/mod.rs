//! The mechanics of proving who someone is: opaque session tokens and the rules of a session's
//! life, password policy and argon2id hashing, and login throttling. Who may do what is the
//! services' (`service::access`); turning a request into an actor is the API's.
//!
//! A token is 256 random bits shown to the client once; the server keeps only its SHA-256, so a
//! copy of the database does not let anyone log in.

pub mod password;
pub mod throttle;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use password::AuthError;

use crate::store::sessions::SessionRow;

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle: Duration,
    /// A session ends this long after login, however much it is used.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }
}

/// A new random token and the hash the server keeps of it.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// Whether `text` has the shape of a token of [`new_token`] (43 characters of URL-safe base64),
/// so that what cannot be one is turned away before any lookup.
pub fn looks_like_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// When a session stops being usable through idleness.
pub fn idle_expiry(session: &SessionRow, policy: &SessionPolicy) -> DateTime<Utc> {
    (session.last_seen_at + policy.idle).min(session.absolute_expires_at)
}

/// Whether `session` may be used at `now`; the reason it may not, in words for the client.
pub fn session_refusal(
    session: &SessionRow,
    policy: &SessionPolicy,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    if session.revoked_at.is_some() {
        Some("This session was revoked. Log in again.")
    } else if now >= session.absolute_expires_at {
        Some("This session has reached its maximum lifetime. Log in again.")
    } else if now >= idle_expiry(session, policy) {
        Some("This session expired after a period of inactivity. Log in again.")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn session(
        last_seen_minutes_ago: i64,
        age_hours: i64,
        revoked: bool,
    ) -> (SessionRow, DateTime<Utc>) {
        let now = Utc::now();
        let created = now - Duration::hours(age_hours);
        (
            SessionRow {
                id: Uuid::now_v7(),
                user_id: Uuid::now_v7(),
                device_name: "laptop".into(),
                created_at: created,
                last_seen_at: now - Duration::minutes(last_seen_minutes_ago),
                absolute_expires_at: created + Duration::hours(12),
                revoked_at: revoked.then_some(now),
            },
            now,
        )
    }

    #[test]
    fn a_fresh_session_is_usable() {
        let (s, now) = session(1, 1, false);
        assert_eq!(session_refusal(&s, &SessionPolicy::default(), now), None);
    }

    #[test]
    fn idle_revoked_and_too_old_sessions_are_refused() {
        let policy = SessionPolicy::default();
        let (idle, now) = session(31, 1, false);
        assert!(session_refusal(&idle, &policy, now)
            .unwrap()
            .contains("inactivity"));
        let (old, now) = session(1, 13, false);
        assert!(session_refusal(&old, &policy, now)
            .unwrap()
            .contains("maximum lifetime"));
        let (revoked, now) = session(1, 1, true);
        assert!(session_refusal(&revoked, &policy, now)
            .unwrap()
            .contains("revoked"));
    }

    #[test]
    fn tokens_are_256_bits_and_only_their_hash_is_kept() {
        let (token, hash) = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_eq!(hash, token_hash(&token));
        assert_ne!(new_token().0, token);
        assert!(looks_like_token(&token));
        assert!(!looks_like_token(&token[1..]));
        assert!(!looks_like_token(&format!("{}.", &token[1..])));
    }
}
