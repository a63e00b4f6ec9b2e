//! The audit trail: who did what to which object, when, from which session — as ids only.
//!
//! Records are hash-chained: each record's hash covers its own fields and the previous record's
//! hash, so altering, removing or reordering any record breaks every link after it. The chain is
//! verified by `assent-server audit verify`.
//!
//! Architecture invariant: an audit record holds ids, action names and outcomes, never personal
//! data (no names, emails, phone numbers, search terms or tokens).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash that comes "before" the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened. The names are stable: they are part of the hashed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    Logout,
    SessionsListed,
    SessionRevoked,
    PasswordChanged,
    UserCreated,
    UserRead,
    UserUpdated,
    UsersListed,
    CompanyCreated,
    CompanyRead,
    CompanyListed,
    CompanyUpdated,
    CompanyDeactivated,
    ContactCreated,
    /// A batch of synthetic contacts created by `assent-server seed` (one record a batch).
    ContactsSeeded,
    ContactRead,
    ContactListed,
    ContactUpdated,
    ContactDeactivated,
    ContactHistoryRead,
    LedgerRead,
    LedgerEventRecorded,
    LedgerExported,
    LedgerImported,
    DecisionMade,
    EvidencePackGenerated,
    PolicyChanged,
    /// A request refused for want of a valid session (401).
    Unauthenticated,
    /// A request refused for want of a role or of rights over the object (403).
    Denied,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::LoginSucceeded => "login_succeeded",
            Action::LoginFailed => "login_failed",
            Action::LoginThrottled => "login_throttled",
            Action::Logout => "logout",
            Action::SessionsListed => "sessions_listed",
            Action::SessionRevoked => "session_revoked",
            Action::PasswordChanged => "password_changed",
            Action::UserCreated => "user_created",
            Action::UserRead => "user_read",
            Action::UserUpdated => "user_updated",
            Action::UsersListed => "users_listed",
            Action::CompanyCreated => "company_created",
            Action::CompanyRead => "company_read",
            Action::CompanyListed => "company_listed",
            Action::CompanyUpdated => "company_updated",
            Action::CompanyDeactivated => "company_deactivated",
            Action::ContactCreated => "contact_created",
            Action::ContactsSeeded => "contacts_seeded",
            Action::ContactRead => "contact_read",
            Action::ContactListed => "contact_listed",
            Action::ContactUpdated => "contact_updated",
            Action::ContactDeactivated => "contact_deactivated",
            Action::ContactHistoryRead => "contact_history_read",
            Action::LedgerRead => "ledger_read",
            Action::LedgerEventRecorded => "ledger_event_recorded",
            Action::LedgerExported => "ledger_exported",
            Action::LedgerImported => "ledger_imported",
            Action::DecisionMade => "decision_made",
            Action::EvidencePackGenerated => "evidence_pack_generated",
            Action::PolicyChanged => "policy_changed",
            Action::Unauthenticated => "unauthenticated",
            Action::Denied => "denied",
        }
    }
}

/// The kind of object an audit record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    User,
    Session,
    Company,
    Contact,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::User => "user",
            ObjectKind::Session => "session",
            ObjectKind::Company => "company",
            ObjectKind::Contact => "contact",
        }
    }
}

/// One audit record before it is chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub action: String,
    pub object_kind: Option<String>,
    pub object_id: Option<Uuid>,
    /// `ok`, or the reason of a refusal (`forbidden`, `bad_password`, `throttled`...).
    pub outcome: String,
}

impl AuditRecord {
    pub fn new(action: Action, outcome: &str) -> Self {
        AuditRecord {
            at: crate::store::now(),
            actor_id: None,
            session_id: None,
            action: action.as_str().to_owned(),
            object_kind: None,
            object_id: None,
            outcome: outcome.to_owned(),
        }
    }

    pub fn by(mut self, actor_id: Option<Uuid>, session_id: Option<Uuid>) -> Self {
        self.actor_id = actor_id;
        self.session_id = session_id;
        self
    }

    pub fn on(mut self, kind: ObjectKind, id: Uuid) -> Self {
        self.object_kind = Some(kind.as_str().to_owned());
        self.object_id = Some(id);
        self
    }

    /// The record's hash as the `seq`-th link after `prev_hash`.
    pub fn chain_hash(&self, seq: i64, prev_hash: &str) -> String {
        fn opt<T: ToString>(value: &Option<T>) -> String {
            value.as_ref().map(ToString::to_string).unwrap_or_default()
        }
        let fields = [
            seq.to_string(),
            self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            opt(&self.actor_id),
            opt(&self.session_id),
            self.action.clone(),
            opt(&self.object_kind),
            opt(&self.object_id),
            self.outcome.clone(),
            prev_hash.to_owned(),
        ];
        hash_fields(&fields.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// A record as stored: its place in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedRecord {
    pub seq: i64,
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// Where a chain walk found the first broken link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub problem: String,
}

/// Walks a hash chain in `seq` order and checks each link: the audit trail, or one contact's
/// consent ledger. Feed it every link, then call [`ChainVerifier::finish`] with the chain head.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    pub checked: u64,
    pub broken: Option<BrokenLink>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            checked: 0,
            broken: None,
        }
    }
}

impl ChainVerifier {
    /// Checks one link: its place, its link to the previous one, and its stored hash against the
    /// hash recomputed from its contents.
    pub fn check_link(&mut self, seq: i64, prev_hash: &str, hash: &str, recomputed: &str) {
        if self.broken.is_some() {
            return;
        }
        self.checked += 1;
        if seq != self.expected_seq {
            self.broken = Some(BrokenLink {
                seq: self.expected_seq,
                problem: format!("the record is missing (the next one found is record {seq})"),
            });
            return;
        }
        let problem = if prev_hash != self.prev_hash {
            Some("its link to the previous record does not match that record's hash".to_owned())
        } else if recomputed != hash {
            Some("its contents do not match its hash (the record was altered)".to_owned())
        } else {
            None
        };
        match problem {
            Some(problem) => self.broken = Some(BrokenLink { seq, problem }),
            None => {
                self.expected_seq += 1;
                self.prev_hash = hash.to_owned();
            }
        }
    }

    /// Checks an audit record.
    pub fn check(&mut self, stored: &ChainedRecord) {
        let recomputed = stored.record.chain_hash(stored.seq, &stored.prev_hash);
        self.check_link(stored.seq, &stored.prev_hash, &stored.hash, &recomputed);
    }

    /// Checks that the chain ends where its head says it does (no records cut off the end).
    pub fn finish(mut self, head_seq: i64, head_hash: &str) -> Result<u64, BrokenLink> {
        if let Some(broken) = self.broken.take() {
            return Err(broken);
        }
        let last_seq = self.expected_seq - 1;
        if last_seq != head_seq || self.prev_hash != head_hash {
            return Err(BrokenLink {
                seq: last_seq + 1,
                problem: format!(
                    "the chain ends at record {last_seq} but its head records {head_seq} records (records were removed from the end)"
                ),
            });
        }
        Ok(self.checked)
    }
}

/// The SHA-256 of fields joined by unit separators, as lower-case hex. No field may contain a
/// unit separator (ids, fixed names, times, JSON without control characters).
pub fn hash_fields(fields: &[&str]) -> String {
    hex::encode(Sha256::digest(fields.join("\u{1f}").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainedRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let record = AuditRecord::new(Action::ContactRead, "ok")
                    .on(ObjectKind::Contact, Uuid::now_v7());
                let hash = record.chain_hash(seq, &prev);
                let stored = ChainedRecord {
                    seq,
                    record,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                stored
            })
            .collect()
    }

    fn verify(
        records: &[ChainedRecord],
        head_seq: i64,
        head_hash: &str,
    ) -> Result<u64, BrokenLink> {
        let mut verifier = ChainVerifier::default();
        records.iter().for_each(|r| verifier.check(r));
        verifier.finish(head_seq, head_hash)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let records = chain(5);
        assert_eq!(verify(&records, 5, &records[4].hash), Ok(5));
        assert_eq!(verify(&[], 0, GENESIS_HASH), Ok(0));
    }

    #[test]
    fn an_altered_record_is_named() {
        let mut records = chain(5);
        records[2].record.action = "contact_updated".into();
        let head = records[4].hash.clone();
        assert_eq!(verify(&records, 5, &head).unwrap_err().seq, 3);
    }

    #[test]
    fn a_removed_record_is_named() {
        let mut records = chain(5);
        records.remove(1);
        let head = records[3].hash.clone();
        assert_eq!(verify(&records, 5, &head).unwrap_err().seq, 2);
    }

    #[test]
    fn a_cut_off_tail_is_detected() {
        let records = chain(5);
        let head = records[4].hash.clone();
        assert_eq!(verify(&records[..3], 5, &head).unwrap_err().seq, 4);
    }
}
