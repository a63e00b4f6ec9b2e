//! Who is calling and what they may do: opaque session tokens, the authenticated [`Caller`], role
//! checks, password policy and login throttling.
//!
//! A token is 256 random bits shown to the client once; the server keeps only its SHA-256, so a
//! copy of the database does not let anyone log in. Every request looks its session up again, so
//! a revocation or a deactivated user takes effect on the very next request.

pub mod password;
pub mod throttle;

use assent_shared::api::User;
use assent_shared::domain::Role;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::api::error::{ApiResult, Error};
use crate::api::AppState;
use crate::audit::{Action, AuditRecord, ObjectKind};
use crate::store::{self, sessions::SessionRow};

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

/// The authenticated user of a request, and the session it came through.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub session_id: Uuid,
    pub device_name: String,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.user.roles.contains(&role)
    }

    /// An audit record of `action` by this caller, outcome `ok`.
    pub fn audit(&self, action: Action) -> AuditRecord {
        AuditRecord::new(action, "ok").by(Some(self.user.id), Some(self.session_id))
    }

    /// Refuses (403, audited) unless the caller holds one of `roles`.
    pub async fn require_any(&self, state: &AppState, roles: &[Role]) -> ApiResult<()> {
        self.require_any_on(state, roles, None).await
    }

    /// Like [`Caller::require_any`], naming in the audit trail the object the request was about.
    pub async fn require_any_on(
        &self,
        state: &AppState,
        roles: &[Role],
        object: Option<(ObjectKind, Uuid)>,
    ) -> ApiResult<()> {
        if roles.iter().any(|r| self.has(*r)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(self
            .deny(
                state,
                object,
                format!("This needs the role {}.", names.join(" or ")),
            )
            .await)
    }

    /// Records a refusal in the audit trail and returns the 403 to send.
    pub async fn deny(
        &self,
        state: &AppState,
        object: Option<(ObjectKind, Uuid)>,
        message: String,
    ) -> Error {
        let mut record = AuditRecord::new(Action::Denied, "forbidden")
            .by(Some(self.user.id), Some(self.session_id));
        if let Some((kind, id)) = object {
            record = record.on(kind, id);
        }
        if let Err(e) = store::audit::append_now(&state.db, &[record]).await {
            return e.into();
        }
        Error::Forbidden(message)
    }
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// Sessions are marked as used at most this often, to spare the database a write per request.
const TOUCH_INTERVAL_SECONDS: i64 = 30;

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let now = store::now();
        let refuse = |reason: &'static str, session: Option<&SessionRow>| {
            let record = AuditRecord::new(Action::Unauthenticated, "refused")
                .by(session.map(|s| s.user_id), session.map(|s| s.id));
            (record, Error::Unauthenticated(reason))
        };
        let outcome = match bearer_token(parts) {
            None => Err(refuse(
                "Log in first: this request has no bearer token.",
                None,
            )),
            Some(token) => {
                match store::sessions::find_by_token_hash(&state.db, &token_hash(token)).await? {
                    None => Err(refuse("This session is not known. Log in again.", None)),
                    Some(session) => match session_refusal(&session, &state.sessions, now) {
                        Some(reason) => Err(refuse(reason, Some(&session))),
                        None => match store::users::find(&state.db, session.user_id).await? {
                            Some(stored) if stored.user.active => Ok((session, stored.user)),
                            _ => Err(refuse("This account is deactivated.", Some(&session))),
                        },
                    },
                }
            }
        };
        match outcome {
            Ok((session, user)) => {
                if (now - session.last_seen_at).num_seconds() >= TOUCH_INTERVAL_SECONDS {
                    store::sessions::touch(&state.db, session.id, now).await?;
                }
                Ok(Caller {
                    user,
                    session_id: session.id,
                    device_name: session.device_name,
                })
            }
            Err((record, error)) => {
                store::audit::append_now(&state.db, &[record]).await?;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
